//! VolumeZone (upstream's `plugins/volumezone`): a pod whose bound PersistentVolumes carry zone
//! or region labels (`topology.kubernetes.io/zone|region` and the old
//! `failure-domain.beta.kubernetes.io/*`) fits only nodes in those zones ("node(s) had no
//! available volume zone"). A node without any such label fits (single-zone clusters); a
//! volume label may list several zones joined by `__`. Unbound WaitForFirstConsumer claims
//! are left to VolumeBinding.

use std::collections::BTreeSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;

use client::informer::store::Store;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreFilterResult,
    QueueingHint, Snapshot, Status,
};
use crate::plugins::volumebinding::events;
use crate::plugins::volumebinding::listers::VolumeListers;
use crate::plugins::volumebinding::storage::{
    label_zones_to_set, pod_volumes, pvc_class, pvc_volume_name, BINDING_WAIT_FOR_FIRST_CONSUMER,
};

pub const NAME: &str = "VolumeZone";
const STATE_KEY: &str = "PreFilterVolumeZone";

pub const ERR_REASON_CONFLICT: &str = "node(s) had no available volume zone";

const BETA_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";
const BETA_REGION: &str = "failure-domain.beta.kubernetes.io/region";
const ZONE: &str = "topology.kubernetes.io/zone";
const REGION: &str = "topology.kubernetes.io/region";
const TOPOLOGY_LABELS: [&str; 4] = [BETA_ZONE, BETA_REGION, ZONE, REGION];

/// A beta label on the volume also matches the GA label on the node.
fn to_ga_label(label: &str) -> &str {
    match label {
        BETA_REGION => REGION,
        BETA_ZONE => ZONE,
        other => other,
    }
}

/// One topology label of one of the pod's volumes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PvTopology {
    pv_name: String,
    key: &'static str,
    values: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct State {
    topologies: Arc<Vec<PvTopology>>,
}

fn pv_topologies(pv: &PersistentVolume) -> Vec<PvTopology> {
    let name = pv.metadata.name.clone().unwrap_or_default();
    let Some(labels) = pv.metadata.labels.as_ref() else {
        return Vec::new();
    };
    TOPOLOGY_LABELS
        .iter()
        .filter_map(|key| {
            let value = labels.get(*key)?;
            match label_zones_to_set(value) {
                Ok(values) => Some(PvTopology {
                    pv_name: name.clone(),
                    key,
                    values,
                }),
                Err(e) => {
                    tracing::info!(label = %format!("{key}:{value}"), err = %e, "failed to parse label, ignoring the label");
                    None
                }
            }
        })
        .collect()
}

pub struct VolumeZone {
    pvs: Store<PersistentVolume>,
    pvcs: Store<PersistentVolumeClaim>,
    classes: Store<StorageClass>,
}

pub fn new(_args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(VolumeZone::with_listers(&VolumeListers {
        pvs: VolumeListers::store_of(handle),
        pvcs: VolumeListers::store_of(handle),
        classes: VolumeListers::store_of(handle),
        ..VolumeListers::default()
    })))
}

impl VolumeZone {
    pub fn with_listers(listers: &VolumeListers) -> VolumeZone {
        VolumeZone {
            pvs: listers.pvs.clone(),
            pvcs: listers.pvcs.clone(),
            classes: listers.classes.clone(),
        }
    }

    /// Upstream's `getPVbyPod`.
    fn pod_topologies(&self, pod: &Pod) -> Result<Vec<PvTopology>, Status> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut out = Vec::new();
        for claim in pod_volumes(pod)
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
        {
            let name = claim.claim_name.as_str();
            if name.is_empty() {
                return Err(Status::unresolvable("PersistentVolumeClaim had no name"));
            }
            let Some(pvc) = self.pvcs.get_namespaced(Some(ns), name) else {
                return Err(Status::unresolvable(format!(
                    "persistentvolumeclaim {name:?} not found"
                )));
            };
            let pv_name = pvc_volume_name(&pvc);
            if pv_name.is_empty() {
                let class = pvc_class(&pvc);
                if class.is_empty() {
                    return Err(Status::unresolvable(
                        "PersistentVolumeClaim had no pv name and storageClass name",
                    ));
                }
                let Some(sc) = self.classes.get(&class) else {
                    return Err(Status::unresolvable(format!(
                        "storageclass.storage.k8s.io {class:?} not found"
                    )));
                };
                match sc.volume_binding_mode.as_deref() {
                    None => {
                        return Err(Status::unresolvable(format!(
                            "VolumeBindingMode not set for StorageClass {class:?}"
                        )))
                    }
                    Some(BINDING_WAIT_FOR_FIRST_CONSUMER) => continue,
                    Some(_) => return Err(Status::unresolvable("PersistentVolume had no name")),
                }
            }
            let Some(pv) = self.pvs.get(pv_name) else {
                return Err(Status::unresolvable(format!(
                    "persistentvolume {pv_name:?} not found"
                )));
            };
            out.extend(pv_topologies(&pv));
        }
        Ok(out)
    }
}

impl Plugin for VolumeZone {
    fn name(&self) -> &'static str {
        NAME
    }
    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![
            // A new WaitForFirstConsumer class (the binding mode is immutable).
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::StorageClass,
                    ActionType::ADD,
                    "StorageClassAdd",
                ),
                Arc::new(class_added),
            ),
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD | ActionType::UPDATE_NODE_LABEL,
                "NodeChange",
            )),
            // A new claim, or a claim that got its volume.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::PersistentVolumeClaim,
                    ActionType::ADD | ActionType::UPDATE,
                    "PersistentVolumeClaimChange",
                ),
                Arc::new(claim_changed),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::PersistentVolume,
                    ActionType::ADD | ActionType::UPDATE,
                    "PersistentVolumeChange",
                ),
                Arc::new(volume_changed),
            ),
        ]
    }
}

impl PreFilterPlugin for VolumeZone {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        match self.pod_topologies(&pod.pod) {
            Err(status) => (None, status),
            Ok(t) if t.is_empty() => (None, Status::skip()),
            Ok(t) => {
                state.write(
                    STATE_KEY,
                    State {
                        topologies: Arc::new(t),
                    },
                );
                (None, Status::success())
            }
        }
    }
}

impl FilterPlugin for VolumeZone {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod_volumes(&pod.pod).is_empty() {
            return Status::success();
        }
        let computed;
        let topologies: &[PvTopology] = match state.read::<State>(STATE_KEY) {
            Some(s) => &s.topologies,
            None => match self.pod_topologies(&pod.pod) {
                Ok(t) => {
                    computed = t;
                    &computed
                }
                Err(status) => return status,
            },
        };
        let empty = std::collections::BTreeMap::new();
        let labels = node
            .node()
            .and_then(|n| n.metadata.labels.as_ref())
            .unwrap_or(&empty);
        // A node without zone labels fits (single-zone clusters often have none).
        if !TOPOLOGY_LABELS.iter().any(|l| labels.contains_key(*l)) {
            return Status::success();
        }
        for t in topologies {
            let value = labels.get(t.key).or_else(|| labels.get(to_ga_label(t.key)));
            if !value.is_some_and(|v| t.values.contains(v)) {
                tracing::trace!(pod = %pod.key(), node = node.name(), pv = %t.pv_name, key = t.key, "volume zone mismatch");
                return Status::unresolvable(ERR_REASON_CONFLICT);
            }
        }
        Status::success()
    }
}

fn class_added(
    _pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let sc = events::required_json(new)?;
    let mode = sc
        .get("volumeBindingMode")
        .and_then(serde_json::Value::as_str);
    Ok(if mode == Some(BINDING_WAIT_FOR_FIRST_CONSUMER) {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    })
}

fn claim_changed(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let pvc = events::required_json(new)?;
    let ns = events::meta(pvc, "namespace");
    let name = events::meta(pvc, "name");
    let uses = pod.metadata.namespace.as_deref().unwrap_or("") == ns
        && pod_volumes(pod)
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .any(|c| c.claim_name == name);
    Ok(if uses {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    })
}

/// A new volume, or one whose topology labels changed.
fn volume_changed(
    _pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let new = events::required_json(new)?;
    let Some(old) = events::json(old) else {
        return Ok(QueueingHint::Queue);
    };
    let topology = |v: &serde_json::Value| -> Result<Vec<PvTopology>, String> {
        let pv: PersistentVolume = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
        Ok(pv_topologies(&pv))
    };
    Ok(if topology(old)? != topology(new)? {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use crate::plugins::volumebinding::testing::*;
    use serde_json::{json, Value};

    fn labelled_pv(name: &str, labels: Value) -> PersistentVolume {
        let mut v = bound_pv(name, "pvc-a", None);
        v.metadata.labels = Some(from(labels));
        v
    }

    fn run(pl: &VolumeZone, pod: &Pod, node_labels: Value) -> Status {
        let mut state = CycleState::new();
        let info = pod_info(pod.clone());
        let (_, status) = PreFilterPlugin::pre_filter(pl, &mut state, &info, &Snapshot::default());
        if !status.is_success() {
            return status;
        }
        FilterPlugin::filter(pl, &state, &info, &node_info(node("n", node_labels)))
    }

    #[test]
    fn volume_zones_against_node_labels() {
        let pod = pod_with_claims("p", &["pvc-a"]);
        let cases: Vec<(&str, Value, Value, Code)> = vec![
            (
                "same zone",
                json!({ZONE: "a"}),
                json!({ZONE: "a"}),
                Code::Success,
            ),
            (
                "other zone",
                json!({ZONE: "a"}),
                json!({ZONE: "b"}),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "one of several zones",
                json!({ZONE: "a__b"}),
                json!({ZONE: "b"}),
                Code::Success,
            ),
            (
                "beta volume label, GA node label",
                json!({BETA_ZONE: "a"}),
                json!({ZONE: "a"}),
                Code::Success,
            ),
            (
                "region mismatch",
                json!({REGION: "r1"}),
                json!({REGION: "r2", ZONE: "a"}),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "node without zone labels",
                json!({ZONE: "a"}),
                json!({"other": "x"}),
                Code::Success,
            ),
            (
                "node lacks the volume's key",
                json!({REGION: "r1"}),
                json!({ZONE: "a"}),
                Code::UnschedulableAndUnresolvable,
            ),
            (
                "malformed volume label is ignored",
                json!({ZONE: "a____b"}),
                json!({ZONE: "c"}),
                Code::Skip,
            ),
        ];
        for (name, pv_labels, node_labels, want) in cases {
            let f = Fixture::new()
                .pvc(pvc("pvc-a", "", Some("pv-a")))
                .pv(labelled_pv("pv-a", pv_labels));
            let status = run(&VolumeZone::with_listers(&f.listers), &pod, node_labels);
            assert_eq!(status.code(), want, "{name}: {status:?}");
            if want == Code::UnschedulableAndUnresolvable {
                assert_eq!(status.reasons(), [ERR_REASON_CONFLICT], "{name}");
            }
        }
    }

    #[test]
    fn claims_that_cannot_be_resolved() {
        let pod = pod_with_claims("p", &["pvc-a"]);
        let cases: Vec<(&str, Fixture, Code, &str)> = vec![
            (
                "missing claim",
                Fixture::new(),
                Code::UnschedulableAndUnresolvable,
                "persistentvolumeclaim \"pvc-a\" not found",
            ),
            (
                "missing volume",
                Fixture::new().pvc(pvc("pvc-a", "", Some("pv-a"))),
                Code::UnschedulableAndUnresolvable,
                "persistentvolume \"pv-a\" not found",
            ),
            (
                "unbound without class",
                Fixture::new().pvc(pvc("pvc-a", "", None)),
                Code::UnschedulableAndUnresolvable,
                "PersistentVolumeClaim had no pv name and storageClass name",
            ),
            (
                "unbound immediate",
                Fixture::new()
                    .pvc(pvc("pvc-a", "std", None))
                    .class(class("std", "Immediate", "x")),
                Code::UnschedulableAndUnresolvable,
                "PersistentVolume had no name",
            ),
            (
                "unbound WaitForFirstConsumer is skipped",
                Fixture::new().pvc(pvc("pvc-a", "wffc", None)).class(class(
                    "wffc",
                    BINDING_WAIT_FOR_FIRST_CONSUMER,
                    "x",
                )),
                Code::Skip,
                "",
            ),
        ];
        for (name, f, want, reason) in cases {
            let status = run(
                &VolumeZone::with_listers(&f.listers),
                &pod,
                json!({ZONE: "a"}),
            );
            assert_eq!(status.code(), want, "{name}: {status:?}");
            if !reason.is_empty() {
                assert_eq!(status.reasons(), [reason], "{name}");
            }
        }
    }

    #[test]
    fn queueing_hints() {
        let pod = pod_with_claims("p", &["pvc-a"]);
        let other = |v: Value| EventObject::Other(Arc::new(v));
        let sc = |mode: &str| other(json!({"metadata": {"name": "s"}, "volumeBindingMode": mode}));
        assert_eq!(
            class_added(&pod, None, Some(&sc("WaitForFirstConsumer"))).unwrap(),
            QueueingHint::Queue
        );
        assert_eq!(
            class_added(&pod, None, Some(&sc("Immediate"))).unwrap(),
            QueueingHint::Skip
        );
        let claim = other(json!({"metadata": {"namespace": "ns", "name": "pvc-a"}}));
        assert_eq!(
            claim_changed(&pod, None, Some(&claim)).unwrap(),
            QueueingHint::Queue
        );
        let pv = |zone: &str| other(json!({"metadata": {"name": "pv-a", "labels": {ZONE: zone}}}));
        assert_eq!(
            volume_changed(&pod, None, Some(&pv("a"))).unwrap(),
            QueueingHint::Queue
        );
        assert_eq!(
            volume_changed(&pod, Some(&pv("a")), Some(&pv("a"))).unwrap(),
            QueueingHint::Skip
        );
        assert_eq!(
            volume_changed(&pod, Some(&pv("a")), Some(&pv("b"))).unwrap(),
            QueueingHint::Queue
        );
    }
}
