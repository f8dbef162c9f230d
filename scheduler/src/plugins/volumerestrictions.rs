//! VolumeRestrictions (upstream's `plugins/volumerestrictions`): volumes that cannot be shared.
//!
//! - A PersistentVolumeClaim with the `ReadWriteOncePod` access mode may be used by one pod in
//!   the whole cluster: while another pod uses it, no node fits ("node has pod using
//!   PersistentVolumeClaim with the same name and ReadWriteOncePod access mode",
//!   Unschedulable, so preempting that pod can help).
//! - The in-tree disks that only one node may mount read-write (GCE PD unless every mount is
//!   read-only, AWS EBS always, Ceph RBD and iSCSI unless read-only) conflict with the same disk
//!   used by a pod already on the node ("node(s) had no available disk").

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Volume};

use client::informer::store::Store;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreFilterExtensions, PreFilterPlugin,
    PreFilterResult, QueueingHint, Snapshot, Status,
};
use crate::plugins::volumebinding::events;
use crate::plugins::volumebinding::listers::VolumeListers;
use crate::plugins::volumebinding::storage::{pod_volumes, pvc_access_modes, READ_WRITE_ONCE_POD};

pub const NAME: &str = "VolumeRestrictions";
const STATE_KEY: &str = "PreFilterVolumeRestrictions";

pub const ERR_REASON_DISK_CONFLICT: &str = "node(s) had no available disk";
pub const ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT: &str =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";

/// The pod's ReadWriteOncePod claims and how many scheduled pods use them.
#[derive(Debug, Clone, Default)]
struct State {
    read_write_once_pod_pvcs: Arc<HashSet<String>>,
    conflicting_pvc_ref_count: i64,
}

impl State {
    /// Counts claims by name as upstream does (the namespace is not compared).
    fn conflicts_of(&self, pod: &Pod) -> i64 {
        pod_volumes(pod)
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .filter(|c| self.read_write_once_pod_pvcs.contains(&c.claim_name))
            .count() as i64
    }
}

pub struct VolumeRestrictions {
    pvcs: Store<PersistentVolumeClaim>,
}

pub fn new(_args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(VolumeRestrictions::with_pvcs(
        VolumeListers::store_of::<PersistentVolumeClaim>(handle),
    )))
}

impl VolumeRestrictions {
    pub fn with_pvcs(pvcs: Store<PersistentVolumeClaim>) -> VolumeRestrictions {
        VolumeRestrictions { pvcs }
    }

    fn read_write_once_pod_pvcs(&self, pod: &Pod) -> Result<HashSet<String>, String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let mut names = HashSet::new();
        for claim in pod_volumes(pod)
            .iter()
            .filter_map(|v| v.persistent_volume_claim.as_ref())
        {
            let Some(pvc) = self.pvcs.get_namespaced(Some(ns), &claim.claim_name) else {
                return Err(format!(
                    "persistentvolumeclaim {:?} not found",
                    claim.claim_name
                ));
            };
            if pvc_access_modes(&pvc)
                .iter()
                .any(|m| m == READ_WRITE_ONCE_POD)
            {
                names.insert(claim.claim_name.clone());
            }
        }
        Ok(names)
    }
}

fn needs_restrictions_check(v: &Volume) -> bool {
    v.gce_persistent_disk.is_some()
        || v.aws_elastic_block_store.is_some()
        || v.rbd.is_some()
        || v.iscsi.is_some()
}

fn have_overlap(a: &[String], b: &[String]) -> bool {
    a.iter().any(|x| b.contains(x))
}

/// Whether `volume` conflicts with a volume of `existing` (same disk, not all read-only).
fn is_volume_conflict(volume: &Volume, existing: &Pod) -> bool {
    pod_volumes(existing).iter().any(|ev| {
        if let (Some(d), Some(e)) = (&volume.gce_persistent_disk, &ev.gce_persistent_disk) {
            if d.pd_name == e.pd_name && !(d.read_only == Some(true) && e.read_only == Some(true)) {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.aws_elastic_block_store, &ev.aws_elastic_block_store) {
            if d.volume_id == e.volume_id {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.iscsi, &ev.iscsi) {
            if d.iqn == e.iqn && !(d.read_only == Some(true) && e.read_only == Some(true)) {
                return true;
            }
        }
        if let (Some(d), Some(e)) = (&volume.rbd, &ev.rbd) {
            if have_overlap(&d.monitors, &e.monitors)
                && d.pool == e.pool
                && d.image == e.image
                && !(d.read_only == Some(true) && e.read_only == Some(true))
            {
                return true;
            }
        }
        false
    })
}

fn satisfies_volume_conflicts<'a>(
    pod: &Pod,
    others: impl Iterator<Item = &'a Pod> + Clone,
) -> bool {
    pod_volumes(pod)
        .iter()
        .filter(|v| needs_restrictions_check(v))
        .all(|v| {
            others
                .clone()
                .all(|existing| !is_volume_conflict(v, existing))
        })
}

impl Plugin for VolumeRestrictions {
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
            // Volumes are released when the pods using them go; pod updates cannot change
            // volumes (immutable).
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::DELETE,
                    "AssignedPodDelete",
                ),
                Arc::new(pod_deleted),
            ),
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD,
                "NodeAdd",
            )),
            // The claim must exist to read its access modes.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::PersistentVolumeClaim,
                    ActionType::ADD,
                    "PersistentVolumeClaimAdd",
                ),
                Arc::new(claim_added),
            ),
        ]
    }
}

impl PreFilterPlugin for VolumeRestrictions {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let needs_check = pod_volumes(&pod.pod).iter().any(needs_restrictions_check);
        let pvcs = match self.read_write_once_pod_pvcs(&pod.pod) {
            Ok(p) => p,
            Err(e) => return (None, Status::unresolvable(e)),
        };
        let ns = pod.namespace();
        // At most one pod can use a ReadWriteOncePod claim.
        let conflicting = pvcs
            .iter()
            .filter(|name| snapshot.is_pvc_used_by_pods(&format!("{ns}/{name}")))
            .count() as i64;
        if !needs_check && conflicting == 0 {
            return (None, Status::skip());
        }
        state.write(
            STATE_KEY,
            State {
                read_write_once_pod_pvcs: Arc::new(pvcs),
                conflicting_pvc_ref_count: conflicting,
            },
        );
        (None, Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for VolumeRestrictions {
    fn add_pod(
        &self,
        state: &mut CycleState,
        _pod: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        _node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<State>(STATE_KEY) else {
            return Status::error(format!("cannot read {STATE_KEY:?} from cycleState"));
        };
        s.conflicting_pvc_ref_count += s.conflicts_of(&pod_to_add.pod);
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        _pod: &PodInfo,
        pod_to_remove: &Arc<PodInfo>,
        _node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<State>(STATE_KEY) else {
            return Status::error(format!("cannot read {STATE_KEY:?} from cycleState"));
        };
        s.conflicting_pvc_ref_count -= s.conflicts_of(&pod_to_remove.pod);
        Status::success()
    }
}

impl FilterPlugin for VolumeRestrictions {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if !satisfies_volume_conflicts(&pod.pod, node.pods.iter().map(|p| p.pod.as_ref())) {
            return Status::unschedulable(ERR_REASON_DISK_CONFLICT);
        }
        let Some(s) = state.read::<State>(STATE_KEY) else {
            return Status::error(format!("cannot read {STATE_KEY:?} from cycleState"));
        };
        if s.conflicting_pvc_ref_count > 0 {
            return Status::unschedulable(ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT);
        }
        Status::success()
    }
}

/// A deleted pod in the namespace that held one of the pod's disks or claims.
fn pod_deleted(
    pod: &Pod,
    old: Option<&EventObject>,
    _new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let deleted = events::pod_of(old)?;
    if deleted.metadata.namespace != pod.metadata.namespace {
        return Ok(QueueingHint::Skip);
    }
    if !satisfies_volume_conflicts(pod, std::iter::once(deleted)) {
        return Ok(QueueingHint::Queue);
    }
    // The access mode is not looked up here (it would cost a claim lookup per event).
    let claims: HashSet<&str> = pod_volumes(pod)
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.as_str())
        .collect();
    let shares = pod_volumes(deleted)
        .iter()
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .any(|c| claims.contains(c.claim_name.as_str()));
    Ok(if shares {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    })
}

fn claim_added(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::volumebinding::testing::*;
    use serde_json::{json, Value};

    fn pod_with(name: &str, volumes: Value) -> Pod {
        from(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c"}], "volumes": volumes},
        }))
    }

    fn gce(pd: &str, ro: bool) -> Value {
        json!([{"name": "v", "gcePersistentDisk": {"pdName": pd, "readOnly": ro}}])
    }

    fn node_with(pods: &[Pod]) -> NodeInfo {
        let mut n = node_info(node("node-a", json!({})));
        for p in pods {
            n.add_pod(Arc::new(pod_info(p.clone())));
        }
        n
    }

    fn rwop_claim(name: &str) -> PersistentVolumeClaim {
        let mut c = pvc(name, "", Some("pv"));
        if let Some(s) = c.spec.as_mut() {
            s.access_modes = Some(vec![READ_WRITE_ONCE_POD.into()]);
        }
        c
    }

    fn run(pl: &VolumeRestrictions, pod: &Pod, node: &NodeInfo) -> Status {
        let snapshot = Snapshot::from_node_infos(vec![node.clone()]);
        let mut state = CycleState::new();
        let info = pod_info(pod.clone());
        let (_, status) = PreFilterPlugin::pre_filter(pl, &mut state, &info, &snapshot);
        if !status.is_success() {
            return status;
        }
        FilterPlugin::filter(pl, &state, &info, node)
    }

    #[test]
    fn disk_conflicts() {
        let pl = VolumeRestrictions::with_pvcs(Store::default());
        let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
            (
                "same GCE disk",
                gce("d1", false),
                gce("d1", false),
                Some(ERR_REASON_DISK_CONFLICT),
            ),
            (
                "GCE disk read-only on both",
                gce("d1", true),
                gce("d1", true),
                None,
            ),
            ("other GCE disk", gce("d1", false), gce("d2", false), None),
            (
                "same EBS volume even read-only",
                json!([{"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1", "readOnly": true}}]),
                json!([{"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1", "readOnly": true}}]),
                Some(ERR_REASON_DISK_CONFLICT),
            ),
            (
                "RBD sharing a monitor, pool and image",
                json!([{"name": "v", "rbd": {"monitors": ["a", "b"], "pool": "p", "image": "i"}}]),
                json!([{"name": "v", "rbd": {"monitors": ["b", "c"], "pool": "p", "image": "i"}}]),
                Some(ERR_REASON_DISK_CONFLICT),
            ),
            (
                "RBD with disjoint monitors",
                json!([{"name": "v", "rbd": {"monitors": ["a"], "pool": "p", "image": "i"}}]),
                json!([{"name": "v", "rbd": {"monitors": ["c"], "pool": "p", "image": "i"}}]),
                None,
            ),
            (
                "same iSCSI IQN",
                json!([{"name": "v", "iscsi": {"targetPortal": "t", "iqn": "iqn.1", "lun": 0}}]),
                json!([{"name": "v", "iscsi": {"targetPortal": "t", "iqn": "iqn.1", "lun": 0}}]),
                Some(ERR_REASON_DISK_CONFLICT),
            ),
        ];
        for (name, mine, theirs, want) in cases {
            let status = run(
                &pl,
                &pod_with("p", mine),
                &node_with(&[pod_with("q", theirs)]),
            );
            match want {
                None => assert!(status.is_success(), "{name}: {status:?}"),
                Some(reason) => {
                    assert_eq!(
                        status.code(),
                        crate::framework::Code::Unschedulable,
                        "{name}"
                    );
                    assert_eq!(status.reasons(), [reason], "{name}");
                }
            }
        }
        // No disks at all: nothing to check.
        let mut state = CycleState::new();
        let (_, status) = PreFilterPlugin::pre_filter(
            &pl,
            &mut state,
            &pod_info(pod_with("p", json!([]))),
            &Snapshot::default(),
        );
        assert!(status.is_skip());
    }

    #[test]
    fn read_write_once_pod_claims_are_exclusive() {
        let f = Fixture::new()
            .pvc(rwop_claim("data"))
            .pvc(pvc("shared", "", Some("pv2")));
        let pl = VolumeRestrictions::with_pvcs(f.listers.pvcs.clone());
        let holder = pod_with_claims("holder", &["data"]);
        let me = pod_with_claims("me", &["data"]);
        let status = run(&pl, &me, &node_with(std::slice::from_ref(&holder)));
        assert_eq!(status.code(), crate::framework::Code::Unschedulable);
        assert_eq!(status.reasons(), [ERR_REASON_READ_WRITE_ONCE_POD_CONFLICT]);
        // Nobody uses it: fine, and a claim without the mode never conflicts.
        assert!(run(&pl, &me, &node_with(&[])).is_skip());
        assert!(run(
            &pl,
            &pod_with_claims("x", &["shared"]),
            &node_with(&[pod_with_claims("y", &["shared"])])
        )
        .is_skip());
        // A missing claim cannot be resolved by preemption.
        let status = run(&pl, &pod_with_claims("z", &["nope"]), &node_with(&[]));
        assert_eq!(
            status.code(),
            crate::framework::Code::UnschedulableAndUnresolvable
        );
        assert_eq!(
            status.reasons(),
            ["persistentvolumeclaim \"nope\" not found"]
        );
    }

    #[test]
    fn preemption_of_the_holder_frees_the_claim() {
        let f = Fixture::new().pvc(rwop_claim("data"));
        let pl = VolumeRestrictions::with_pvcs(f.listers.pvcs.clone());
        let holder = Arc::new(pod_info(pod_with_claims("holder", &["data"])));
        let mut node = node_with(&[holder.pod.as_ref().clone()]);
        let snapshot = Snapshot::from_node_infos(vec![node.clone()]);
        let me = pod_info(pod_with_claims("me", &["data"]));
        let mut state = CycleState::new();
        let (_, status) = PreFilterPlugin::pre_filter(&pl, &mut state, &me, &snapshot);
        assert!(status.is_success());
        node.remove_pod(holder.uid());
        assert!(PreFilterExtensions::remove_pod(&pl, &mut state, &me, &holder, &node).is_success());
        assert!(FilterPlugin::filter(&pl, &state, &me, &node).is_success());
        assert!(PreFilterExtensions::add_pod(&pl, &mut state, &me, &holder, &node).is_success());
        assert!(!FilterPlugin::filter(&pl, &state, &me, &node).is_success());
    }

    #[test]
    fn queueing_hints() {
        let pod = pod_with(
            "p",
            json!([
            {"name": "d", "gcePersistentDisk": {"pdName": "d1"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "data"}}]),
        );
        let deleted = |p: Pod| EventObject::Pod(Arc::new(p));
        let hint = |old: EventObject| pod_deleted(&pod, Some(&old), None).unwrap();
        assert_eq!(
            hint(deleted(pod_with("q", gce("d1", false)))),
            QueueingHint::Queue
        );
        assert_eq!(
            hint(deleted(pod_with_claims("q", &["data"]))),
            QueueingHint::Queue
        );
        assert_eq!(
            hint(deleted(pod_with_claims("q", &["other"]))),
            QueueingHint::Skip
        );
        let pvc = |ns: &str, name: &str| {
            EventObject::Other(Arc::new(
                json!({"metadata": {"namespace": ns, "name": name}}),
            ))
        };
        assert_eq!(
            claim_added(&pod, None, Some(&pvc("ns", "data"))).unwrap(),
            QueueingHint::Queue
        );
        assert_eq!(
            claim_added(&pod, None, Some(&pvc("ns", "x"))).unwrap(),
            QueueingHint::Skip
        );
        assert_eq!(
            claim_added(&pod, None, Some(&pvc("other", "data"))).unwrap(),
            QueueingHint::Skip
        );
    }
}
