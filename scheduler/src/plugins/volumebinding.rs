//! VolumeBinding (upstream's `plugins/volumebinding`): a pod's PersistentVolumeClaims decide
//! where it may run. PreFilter rejects pods whose claims are missing, lost, being deleted or
//! still waiting for the PV controller (Immediate binding), and narrows the nodes to those a
//! bound local volume pins; Filter checks bound volumes' node affinity and, for
//! WaitForFirstConsumer claims, finds a matching Available volume or a class that can
//! provision there; Reserve assumes the choice; PreBind writes it through the API and waits
//! for the claims to be bound; Unreserve reverts the assumption.
//!
//! Scoring by volume capacity is behind upstream's `StorageCapacityScoring` feature gate, off by
//! default: Score is registered (so profiles listing it load) but PreScore always skips it.
//!
//! The binder and its caches live in the submodules; [`storage`], [`selectors`] and [`listers`]
//! are shared with the other volume plugins.

pub mod assume_cache;
pub mod binder;
pub mod events;
pub mod listers;
pub mod selectors;
pub mod storage;

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreBindPlugin, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, QueueingHint, ReservePlugin, ScorePlugin, Snapshot, Status,
};

use binder::{ClientVolumeApi, PodVolumeClaims, PodVolumes, VolumeApi, VolumeBinder};
use listers::VolumeListers;
use storage::{
    pod_volumes, pvc_volume_name, volume_claim_name, volume_is_for_pod, CLAIM_LOST,
    MIGRATED_PLUGINS_ANNOTATION,
};

pub const NAME: &str = "VolumeBinding";
const STATE_KEY: &str = "VolumeBinding";

/// Upstream's default `bindTimeoutSeconds`.
pub const DEFAULT_BIND_TIMEOUT_SECONDS: i64 = 600;

/// `VolumeBindingArgs` (kubescheduler.config.k8s.io/v1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Args {
    // Accepted as in any typed args object, otherwise unused.
    #[allow(dead_code)]
    api_version: Option<String>,
    #[allow(dead_code)]
    kind: Option<String>,
    bind_timeout_seconds: Option<i64>,
    shape: Option<serde_json::Value>,
}

/// The bind timeout the args ask for, validated as upstream's `ValidateVolumeBindingArgs`
/// (with the StorageCapacityScoring gate off, as by default).
pub fn parse_args(args: Option<&serde_json::Value>) -> anyhow::Result<Duration> {
    let args: Args = match args {
        None | Some(serde_json::Value::Null) => return Ok(Duration::from_secs(600)),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("decoding VolumeBindingArgs: {e}"))?,
    };
    let timeout = args
        .bind_timeout_seconds
        .unwrap_or(DEFAULT_BIND_TIMEOUT_SECONDS);
    let mut errs = Vec::new();
    if timeout < 0 {
        errs.push(format!(
            "bindTimeoutSeconds: Invalid value: {timeout}: invalid BindTimeoutSeconds, should not be a negative value"
        ));
    }
    if let Some(shape) = &args.shape {
        errs.push(format!(
            "shape: Invalid value: {shape}: unexpected field `shape`, remove it or turn on the feature gate StorageCapacityScoring"
        ));
    }
    if !errs.is_empty() {
        anyhow::bail!("{}", errs.join(", "));
    }
    Ok(Duration::from_secs(timeout.unsigned_abs()))
}

/// What PreFilter learnt and Filter / Reserve / PreBind add to. Shared between clones of the
/// cycle state (as upstream's pointer), hence the locks.
#[derive(Default)]
struct State {
    claims: PodVolumeClaims,
    /// What binding takes on each node that passed Filter.
    by_node: Mutex<HashMap<String, PodVolumes>>,
    all_bound: AtomicBool,
}

impl State {
    fn by_node(&self) -> MutexGuard<'_, HashMap<String, PodVolumes>> {
        self.by_node
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Clone, Default)]
struct StateRef(Arc<State>);

fn read_state(state: &CycleState) -> Result<&Arc<State>, Status> {
    state
        .read::<StateRef>(STATE_KEY)
        .map(|s| &s.0)
        .ok_or_else(|| {
            Status::error(format!(
                "error reading {STATE_KEY:?} from cycleState: not found"
            ))
        })
}

pub struct VolumeBinding {
    binder: VolumeBinder,
}

pub fn new(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    let timeout = parse_args(args)?;
    let api = handle
        .client
        .clone()
        .map(|c| Arc::new(ClientVolumeApi(c)) as Arc<dyn VolumeApi>);
    Ok(Arc::new(VolumeBinding::with_listers(
        VolumeListers::from_handle(handle),
        timeout,
        api,
    )))
}

impl VolumeBinding {
    pub fn with_listers(
        listers: VolumeListers,
        bind_timeout: Duration,
        api: Option<Arc<dyn VolumeApi>>,
    ) -> VolumeBinding {
        VolumeBinding {
            binder: VolumeBinder::new(listers, bind_timeout, api),
        }
    }

    pub fn binder(&self) -> &VolumeBinder {
        &self.binder
    }

    /// Upstream's `podHasPVCs`: whether the pod uses claims, or why it cannot use them.
    fn pod_has_pvcs(&self, pod: &Pod) -> Result<bool, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut has = false;
        for volume in pod_volumes(pod) {
            let Some((name, ephemeral)) = volume_claim_name(pod, volume) else {
                continue;
            };
            has = true;
            let Some(pvc) = self.binder.listers.pvc(ns, &name) else {
                return Err(if ephemeral {
                    format!(
                        "waiting for ephemeral volume controller to create the persistentvolumeclaim {name:?}"
                    )
                } else {
                    format!("persistentvolumeclaim {name:?} not found")
                });
            };
            if pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(CLAIM_LOST) {
                return Err(format!(
                    "persistentvolumeclaim {name:?} bound to non-existent persistentvolume {:?}",
                    pvc_volume_name(&pvc)
                ));
            }
            if pvc.metadata.deletion_timestamp.is_some() {
                return Err(format!("persistentvolumeclaim {name:?} is being deleted"));
            }
            if ephemeral {
                volume_is_for_pod(pod, &pvc)?;
            }
        }
        Ok(has)
    }
}

impl Plugin for VolumeBinding {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }
    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
    fn reserve(&self) -> Option<&dyn ReservePlugin> {
        Some(self)
    }
    fn pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        let add_update = ActionType::ADD | ActionType::UPDATE;
        vec![
            // A missing or mis-configured class (allowedTopologies, binding mode) may be fixed.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::StorageClass,
                    add_update,
                    "StorageClassChange",
                ),
                Arc::new(storage_class_changed),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::PersistentVolumeClaim,
                    add_update,
                    "PersistentVolumeClaimChange",
                ),
                Arc::new(claim_changed),
            ),
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::PersistentVolume,
                add_update,
                "PersistentVolumeChange",
            )),
            // Node labels decide volume node affinity and allowed topologies.
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD | ActionType::UPDATE_NODE_LABEL,
                "NodeChange",
            )),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(EventResource::CSINode, add_update, "CSINodeChange"),
                Arc::new(csi_node_changed),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::CSIDriver,
                    ActionType::UPDATE,
                    "CSIDriverUpdate",
                ),
                Arc::new(csi_driver_changed),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::CSIStorageCapacity,
                    add_update,
                    "CSIStorageCapacityChange",
                ),
                Arc::new(capacity_changed),
            ),
        ]
    }
}

impl PreFilterPlugin for VolumeBinding {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        match self.pod_has_pvcs(&pod.pod) {
            Err(reason) => return (None, Status::unresolvable(reason)),
            Ok(false) => {
                state.write(STATE_KEY, StateRef::default());
                return (None, Status::skip());
            }
            Ok(true) => {}
        }
        let claims = match self.binder.get_pod_volume_claims(&pod.pod) {
            Ok(c) => c,
            Err(e) => return (None, Status::error(e)),
        };
        if !claims.unbound_immediate.is_empty() {
            // The PV controller binds these; the claim update requeues the pod.
            return (
                None,
                Status::unresolvable("pod has unbound immediate PersistentVolumeClaims"),
            );
        }
        let result = self
            .binder
            .get_eligible_nodes(&claims.bound)
            .map(|nodes| PreFilterResult {
                node_names: Some(nodes),
            });
        state.write(
            STATE_KEY,
            StateRef(Arc::new(State {
                claims,
                ..State::default()
            })),
        );
        (result, Status::success())
    }
}

impl FilterPlugin for VolumeBinding {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let s = match read_state(state) {
            Ok(s) => s,
            Err(status) => return status,
        };
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        match self.binder.find_pod_volumes(&pod.pod, &s.claims, n) {
            Err(e) => Status::error(e),
            Ok((_, reasons)) if !reasons.is_empty() => Status::with_reasons(
                crate::framework::Code::UnschedulableAndUnresolvable,
                reasons.into_iter().map(String::from).collect(),
            ),
            Ok((volumes, _)) => {
                s.by_node().insert(node.name().to_string(), volumes);
                Status::success()
            }
        }
    }
}

impl PreScorePlugin for VolumeBinding {
    /// No scorer without the StorageCapacityScoring gate: always Skip.
    fn pre_score(
        &self,
        _state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        Status::skip()
    }
}

impl ScorePlugin for VolumeBinding {
    fn score(&self, _state: &CycleState, _pod: &PodInfo, _node: &NodeInfo) -> (i64, Status) {
        (0, Status::success())
    }
}

impl ReservePlugin for VolumeBinding {
    fn reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status {
        let s = match read_state(state) {
            Ok(s) => s.clone(),
            Err(status) => return status,
        };
        let mut by_node = s.by_node();
        let all_bound = match by_node.get_mut(node) {
            Some(volumes) => match self.binder.assume_pod_volumes(pod, node, volumes) {
                Ok(all_bound) => all_bound,
                Err(e) => return Status::error(e),
            },
            // No claims at all.
            None => true,
        };
        s.all_bound.store(all_bound, Ordering::Relaxed);
        Status::success()
    }

    fn unreserve(&self, state: &mut CycleState, _pod: &Pod, node: &str) {
        let Ok(s) = read_state(state) else {
            return;
        };
        if let Some(volumes) = s.by_node().get(node) {
            self.binder.revert_assumed_pod_volumes(volumes);
        }
    }
}

impl PreBindPlugin for VolumeBinding {
    fn pre_bind<'a>(
        &'a self,
        state: &'a CycleState,
        pod: &'a Pod,
        node: &'a str,
    ) -> BoxFuture<'a, Status> {
        Box::pin(async move {
            let s = match read_state(state) {
                Ok(s) => s.clone(),
                Err(status) => return status,
            };
            if s.all_bound.load(Ordering::Relaxed) {
                return Status::success();
            }
            let Some(volumes) = s.by_node().get(node).cloned() else {
                return Status::error(format!("no pod volumes found for node {node:?}"));
            };
            tracing::debug!(
                pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or(""), pod.metadata.name.as_deref().unwrap_or("")),
                node,
                "binding volumes for pod"
            );
            match self.binder.bind_pod_volumes(pod, node, &volumes).await {
                Ok(()) => Status::success(),
                Err(e) => Status::error(e),
            }
        })
    }
}

// Queueing hints (upstream's `isSchedulableAfter...`).

fn storage_class_changed(
    _pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let new = events::required_json(new)?;
    let Some(old) = events::json(old) else {
        return Ok(QueueingHint::Queue);
    };
    if old.get("allowedTopologies") != new.get("allowedTopologies") {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

fn claim_changed(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let pvc = events::required_json(new)?;
    if events::pod_uses_claim(
        pod,
        events::meta(pvc, "namespace"),
        events::meta(pvc, "name"),
    ) {
        Ok(QueueingHint::Queue)
    } else {
        Ok(QueueingHint::Skip)
    }
}

fn csi_node_changed(
    _pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let new = events::required_json(new)?;
    let Some(old) = events::json(old) else {
        return Ok(QueueingHint::Queue);
    };
    if events::annotation(old, MIGRATED_PLUGINS_ANNOTATION)
        != events::annotation(new, MIGRATED_PLUGINS_ANNOTATION)
    {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

/// A driver of the pod's inline CSI volumes stopped tracking capacity.
fn csi_driver_changed(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let new = events::required_json(new)?;
    let old = events::required_json(old)?;
    let name = events::meta(new, "name");
    let capacity = |v: &serde_json::Value| v.pointer("/spec/storageCapacity") == Some(&true.into());
    let uses = pod_volumes(pod)
        .iter()
        .any(|v| v.csi.as_ref().is_some_and(|c| c.driver == name));
    if uses && capacity(old) && !capacity(new) {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

/// A new capacity, or a larger volume limit.
fn capacity_changed(
    _pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let new = events::required_json(new)?;
    let Some(old) = events::json(old) else {
        return Ok(QueueingHint::Queue);
    };
    let limit = |v: &serde_json::Value| {
        v.get("maximumVolumeSize")
            .or_else(|| v.get("capacity"))
            .and_then(serde_json::Value::as_str)
            .map(|q| {
                storage::quantity_nanos(Some(
                    &k8s_openapi::apimachinery::pkg::api::resource::Quantity(q.to_string()),
                ))
            })
    };
    match (limit(old), limit(new)) {
        (_, None) => Ok(QueueingHint::Skip),
        (None, Some(_)) => Ok(QueueingHint::Queue),
        (Some(o), Some(n)) if n > o => Ok(QueueingHint::Queue),
        _ => Ok(QueueingHint::Skip),
    }
}
