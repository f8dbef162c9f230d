//! NodeVolumeLimits (upstream's `nodevolumelimits/csi.go`): a node can attach only so many
//! volumes of each CSI driver. The limit comes from the node's CSINode
//! (`spec.drivers[].allocatable.count`) or, for old nodes, from `attachable-volumes-*` in the
//! node's allocatable; the pod fits if the volumes already attached there (each counted once,
//! however many pods share it) plus the pod's new ones stay within it ("node(s) exceed max
//! volume count", Unschedulable: preempting pods frees attachments).
//!
//! A claim's driver and volume handle come from its bound PV's CSI source; an unbound claim is
//! counted against its StorageClass's provisioner with a per-claim placeholder handle.
//! In-tree volume plugins migrated to CSI are not translated: in-tree volumes (and classes
//! with in-tree `kubernetes.io/*` provisioners) are not counted.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};
use rand::Rng;

use client::informer::store::Store;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, Code, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreFilterResult,
    QueueingHint, Snapshot, Status,
};
use crate::plugins::volumebinding::events;
use crate::plugins::volumebinding::listers::VolumeListers;
use crate::plugins::volumebinding::storage::{
    pod_volumes, pvc_class, pvc_volume_name, volume_claim_name, volume_is_for_pod,
};

pub const NAME: &str = "NodeVolumeLimits";

pub const ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED: &str = "node(s) exceed max volume count";

const ATTACHABLE_VOLUMES_PREFIX: &str = "attachable-volumes-";
const CSI_ATTACH_LIMIT_PREFIX: &str = "attachable-volumes-csi-";
const RESOURCE_NAME_LENGTH_LIMIT: usize = 63;

/// The node resource holding a CSI driver's attach limit (upstream's `GetCSIAttachLimitKey`):
/// long driver names are cut to 23 characters plus 16 hex digits of their SHA-1.
pub fn csi_attach_limit_key(driver: &str) -> String {
    if CSI_ATTACH_LIMIT_PREFIX.len() + driver.len() >= RESOURCE_NAME_LENGTH_LIMIT {
        let head = driver.get(..23).unwrap_or(driver);
        let hash = sha1_hex(driver.as_bytes());
        return format!("{CSI_ATTACH_LIMIT_PREFIX}{head}{}", &hash[..16]);
    }
    format!("{CSI_ATTACH_LIMIT_PREFIX}{driver}")
}

/// SHA-1, needed only for the key above (not for anything secret).
fn sha1_hex(data: &[u8]) -> String {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(v);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

pub struct CsiLimits {
    csi_nodes: Store<CSINode>,
    pvs: Store<PersistentVolume>,
    pvcs: Store<PersistentVolumeClaim>,
    classes: Store<StorageClass>,
    /// Placeholder handles of unbound claims start with this, so they never collide with a
    /// real handle.
    random_volume_id_prefix: String,
}

pub fn new(_args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(CsiLimits::with_listers(&VolumeListers {
        csi_nodes: VolumeListers::store_of(handle),
        pvs: VolumeListers::store_of(handle),
        pvcs: VolumeListers::store_of(handle),
        classes: VolumeListers::store_of(handle),
        ..VolumeListers::default()
    })))
}

/// Why a pod's volumes cannot be counted.
enum CountError {
    /// A claim of the pod being scheduled does not exist (it never runs without it).
    ClaimNotFound(String),
    Other(String),
}

impl CsiLimits {
    pub fn with_listers(listers: &VolumeListers) -> CsiLimits {
        let prefix: String = rand::rng()
            .sample_iter(rand::distr::Alphanumeric)
            .take(32)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        CsiLimits {
            csi_nodes: listers.csi_nodes.clone(),
            pvs: listers.pvs.clone(),
            pvcs: listers.pvcs.clone(),
            classes: listers.classes.clone(),
            random_volume_id_prefix: prefix,
        }
    }

    /// Adds `driver/handle -> limit key` for each of the pod's CSI volumes to `out`.
    fn attachable_volumes(
        &self,
        pod: &Pod,
        new_pod: bool,
        out: &mut HashMap<String, String>,
    ) -> Result<(), CountError> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        for volume in pod_volumes(pod) {
            let Some((claim, ephemeral)) = volume_claim_name(pod, volume) else {
                continue;
            };
            if claim.is_empty() {
                return Err(CountError::Other(
                    "PersistentVolumeClaim had no name".into(),
                ));
            }
            let Some(pvc) = self.pvcs.get_namespaced(Some(ns), &claim) else {
                if new_pod {
                    return Err(CountError::ClaimNotFound(format!(
                        "looking up PVC {ns}/{claim}: persistentvolumeclaim {claim:?} not found"
                    )));
                }
                // Not counted: nothing says it belongs to the running pod.
                continue;
            };
            if ephemeral {
                volume_is_for_pod(pod, &pvc).map_err(CountError::Other)?;
            }
            let Some((driver, handle)) = self.csi_driver_info(&pvc) else {
                continue;
            };
            out.insert(format!("{driver}/{handle}"), csi_attach_limit_key(&driver));
        }
        Ok(())
    }

    /// The driver and volume handle of a claim: from its PV, else from its class.
    fn csi_driver_info(&self, pvc: &PersistentVolumeClaim) -> Option<(String, String)> {
        let pv_name = pvc_volume_name(pvc);
        if pv_name.is_empty() {
            return self.csi_driver_info_from_class(pvc);
        }
        let Some(pv) = self.pvs.get(pv_name) else {
            // Deleted, or pre-bound to a volume not created yet: count by class.
            return self.csi_driver_info_from_class(pvc);
        };
        let csi = pv.spec.as_ref()?.csi.as_ref()?;
        if csi.driver.is_empty() || csi.volume_handle.is_empty() {
            return None;
        }
        Some((csi.driver.clone(), csi.volume_handle.clone()))
    }

    fn csi_driver_info_from_class(&self, pvc: &PersistentVolumeClaim) -> Option<(String, String)> {
        let class = pvc_class(pvc);
        // Without a class the claim binds before scheduling (Immediate): not counted.
        if class.is_empty() {
            return None;
        }
        let sc = self.classes.get(&class)?;
        let provisioner = sc.provisioner.as_str();
        if provisioner.is_empty() || provisioner.starts_with("kubernetes.io/") {
            return None;
        }
        // A claim bound meanwhile to a volume used by another pod would be counted twice;
        // upstream accepts the same over-count.
        let handle = format!(
            "{}-{}/{}",
            self.random_volume_id_prefix,
            pvc.metadata.namespace.as_deref().unwrap_or(""),
            pvc.metadata.name.as_deref().unwrap_or("")
        );
        Some((provisioner.to_string(), handle))
    }
}

/// The node's attach limits by resource name: `attachable-volumes-*` from allocatable,
/// overridden by the CSINode's per-driver counts.
fn volume_limits(node: &NodeInfo, csi_node: Option<&CSINode>) -> BTreeMap<String, i64> {
    let mut limits: BTreeMap<String, i64> = node
        .allocatable
        .scalar
        .iter()
        .filter(|(k, _)| k.starts_with(ATTACHABLE_VOLUMES_PREFIX))
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    for driver in csi_node.map(|c| c.spec.drivers.as_slice()).unwrap_or(&[]) {
        if let Some(count) = driver.allocatable.as_ref().and_then(|a| a.count) {
            limits.insert(csi_attach_limit_key(&driver.name), i64::from(count));
        }
    }
    limits
}

impl Plugin for CsiLimits {
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
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::CSINode,
                ActionType::ADD,
                "CSINodeAdd",
            )),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::DELETE,
                    "AssignedPodDelete",
                ),
                Arc::new(pod_deleted),
            ),
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

impl PreFilterPlugin for CsiLimits {
    /// Only pods with claims (or generic ephemeral volumes) can use CSI attachments.
    fn pre_filter(
        &self,
        _state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let uses_claims = pod_volumes(&pod.pod)
            .iter()
            .any(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some());
        if uses_claims {
            (None, Status::success())
        } else {
            (None, Status::skip())
        }
    }
}

impl FilterPlugin for CsiLimits {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod_volumes(&pod.pod).is_empty() {
            return Status::success();
        }
        let csi_node = self.csi_nodes.get(node.name());
        let mut new_volumes = HashMap::new();
        match self.attachable_volumes(&pod.pod, true, &mut new_volumes) {
            Ok(()) => {}
            Err(CountError::ClaimNotFound(e)) => return Status::unresolvable(e),
            Err(CountError::Other(e)) => return Status::error(e),
        }
        if new_volumes.is_empty() {
            return Status::success();
        }
        let limits = volume_limits(node, csi_node.as_deref());
        if limits.is_empty() {
            return Status::success();
        }
        let mut attached = HashMap::new();
        for existing in &node.pods {
            match self.attachable_volumes(&existing.pod, false, &mut attached) {
                Ok(()) => {}
                Err(CountError::ClaimNotFound(e) | CountError::Other(e)) => {
                    return Status::error(e)
                }
            }
        }
        let mut attached_count: HashMap<String, i64> = HashMap::new();
        for (unique, key) in attached {
            // A volume the pod shares with a pod already there costs nothing more.
            new_volumes.remove(&unique);
            *attached_count.entry(key).or_default() += 1;
        }
        let mut new_count: HashMap<String, i64> = HashMap::new();
        for key in new_volumes.into_values() {
            *new_count.entry(key).or_default() += 1;
        }
        for (key, count) in new_count {
            if let Some(max) = limits.get(&key) {
                let current = attached_count.get(&key).copied().unwrap_or(0);
                if current + count > *max {
                    tracing::trace!(
                        node = node.name(),
                        key,
                        max,
                        current,
                        count,
                        "volume limit exceeded"
                    );
                    return Status::new(Code::Unschedulable, ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED);
                }
            }
        }
        Status::success()
    }
}

/// A deleted pod that was bound to a node and used claims freed attachments.
fn pod_deleted(
    _pod: &Pod,
    old: Option<&EventObject>,
    _new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let deleted = events::pod_of(old)?;
    let on_node = deleted
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let uses_claims = pod_volumes(deleted)
        .iter()
        .any(|v| v.persistent_volume_claim.is_some() || v.ephemeral.is_some());
    Ok(if on_node && uses_claims {
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
    Ok(
        if events::pod_uses_claim(
            pod,
            events::meta(pvc, "namespace"),
            events::meta(pvc, "name"),
        ) {
            QueueingHint::Queue
        } else {
            QueueingHint::Skip
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::volumebinding::testing::*;
    use serde_json::{json, Value};

    const DRIVER: &str = "ebs.csi.aws.com";

    fn csi_pv(name: &str, claim: &str, driver: &str) -> PersistentVolume {
        let mut v = bound_pv(name, claim, None);
        if let Some(spec) = v.spec.as_mut() {
            spec.csi = Some(from(
                json!({"driver": driver, "volumeHandle": format!("h-{name}")}),
            ));
        }
        v
    }

    fn csi_node(name: &str, driver: &str, count: i32) -> Value {
        json!({"metadata": {"name": name}, "spec": {"drivers": [
            {"name": driver, "nodeID": name, "allocatable": {"count": count}}]}})
    }

    /// Claims c1..c4 bound to CSI volumes v1..v4, and c-new unbound with a CSI class.
    fn fixture(limit: i32) -> Fixture {
        let mut f = Fixture::new()
            .json(|l| &l.csi_nodes, csi_node("node-a", DRIVER, limit))
            .class(class("csi", "WaitForFirstConsumer", DRIVER))
            .pvc(pvc("c-new", "csi", None))
            .pvc(pvc("c-missing-pv", "csi", Some("gone")));
        for i in 1..=4 {
            f = f
                .pvc(pvc(&format!("c{i}"), "", Some(&format!("v{i}"))))
                .pv(csi_pv(&format!("v{i}"), &format!("c{i}"), DRIVER));
        }
        f
    }

    fn node_with(pods: &[Pod]) -> NodeInfo {
        let mut n = node_info(node("node-a", json!({})));
        for p in pods {
            n.add_pod(Arc::new(pod_info(p.clone())));
        }
        n
    }

    fn run(pl: &CsiLimits, pod: Pod, node: &NodeInfo) -> Status {
        let info = pod_info(pod);
        let mut state = CycleState::new();
        let (_, status) = PreFilterPlugin::pre_filter(pl, &mut state, &info, &Snapshot::default());
        if !status.is_success() {
            return status;
        }
        FilterPlugin::filter(pl, &state, &info, node)
    }

    #[test]
    fn attach_limits() {
        let existing = [
            pod_with_claims("e1", &["c1", "c2"]),
            pod_with_claims("e2", &["c2"]),
        ];
        // (name, limit, pod claims, want success)
        let cases: Vec<(&str, i32, Vec<&str>, bool)> = vec![
            ("room for one more", 3, vec!["c3"], true),
            ("over the limit", 2, vec!["c3"], false),
            ("a shared volume is counted once", 2, vec!["c2"], true),
            ("two new volumes over the limit", 3, vec!["c3", "c4"], false),
            (
                "unbound claim counted by its class",
                2,
                vec!["c-new"],
                false,
            ),
            (
                "claim whose volume is gone counted by its class",
                2,
                vec!["c-missing-pv"],
                false,
            ),
            ("unbound claim within the limit", 3, vec!["c-new"], true),
        ];
        for (name, limit, claims, want) in cases {
            let pl = CsiLimits::with_listers(&fixture(limit).listers);
            let status = run(&pl, pod_with_claims("p", &claims), &node_with(&existing));
            if want {
                assert!(status.is_success(), "{name}: {status:?}");
            } else {
                assert_eq!(status.code(), Code::Unschedulable, "{name}");
                assert_eq!(
                    status.reasons(),
                    [ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED],
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn limits_from_node_allocatable_and_other_drivers() {
        // No CSINode: the node's attachable-volumes-csi-* allocatable applies.
        let f = Fixture::new()
            .pvc(pvc("c1", "", Some("v1")))
            .pv(csi_pv("v1", "c1", DRIVER))
            .pvc(pvc("c2", "", Some("v2")))
            .pv(csi_pv("v2", "c2", "other.csi.io"));
        let pl = CsiLimits::with_listers(&f.listers);
        let mut n = node_info(from(json!({"metadata": {"name": "node-a"},
            "status": {"allocatable": {format!("attachable-volumes-csi-{DRIVER}"): "0"}}})));
        let status = FilterPlugin::filter(
            &pl,
            &CycleState::new(),
            &pod_info(pod_with_claims("p", &["c1"])),
            &n,
        );
        assert_eq!(status.reasons(), [ERR_REASON_MAX_VOLUME_COUNT_EXCEEDED]);
        // A driver without a limit is unlimited.
        let status = FilterPlugin::filter(
            &pl,
            &CycleState::new(),
            &pod_info(pod_with_claims("p", &["c2"])),
            &n,
        );
        assert!(status.is_success());
        n.allocatable.scalar.clear();
        let status = FilterPlugin::filter(
            &pl,
            &CycleState::new(),
            &pod_info(pod_with_claims("p", &["c1"])),
            &n,
        );
        assert!(status.is_success());
    }

    #[test]
    fn missing_claims_and_pods_without_claims() {
        let pl = CsiLimits::with_listers(&fixture(1).listers);
        let status = run(&pl, pod_with_claims("p", &["nope"]), &node_with(&[]));
        assert_eq!(status.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(
            status.reasons(),
            ["looking up PVC ns/nope: persistentvolumeclaim \"nope\" not found"]
        );
        assert!(run(&pl, pod_with_claims("p", &[]), &node_with(&[])).is_skip());
        // A missing claim of a pod already on the node is just not counted.
        let status = run(
            &pl,
            pod_with_claims("p", &["c1"]),
            &node_with(&[pod_with_claims("e", &["nope"])]),
        );
        assert!(status.is_success(), "{status:?}");
    }

    #[test]
    fn attach_limit_keys() {
        assert_eq!(
            csi_attach_limit_key("ebs.csi.aws.com"),
            "attachable-volumes-csi-ebs.csi.aws.com"
        );
        let long = "a-very-long-csi-driver-name.storage.example.com";
        let key = csi_attach_limit_key(long);
        assert_eq!(
            key,
            format!(
                "attachable-volumes-csi-a-very-long-csi-driver-{}",
                &sha1_hex(long.as_bytes())[..16]
            )
        );
        assert_eq!(key.len(), 23 + 23 + 16);
        assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(sha1_hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn queueing_hints() {
        let pod = pod_with_claims("p", &["c1"]);
        let deleted = |spec: Value| {
            EventObject::Pod(Arc::new(from(
                json!({"metadata": {"name": "q", "namespace": "ns"}, "spec": spec}),
            )))
        };
        let with_claim = deleted(json!({"nodeName": "n", "containers": [],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "x"}}]}));
        assert_eq!(
            pod_deleted(&pod, Some(&with_claim), None).unwrap(),
            QueueingHint::Queue
        );
        let unscheduled = deleted(json!({"containers": [],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "x"}}]}));
        assert_eq!(
            pod_deleted(&pod, Some(&unscheduled), None).unwrap(),
            QueueingHint::Skip
        );
        let pvc = |name: &str| {
            EventObject::Other(Arc::new(
                json!({"metadata": {"namespace": "ns", "name": name}}),
            ))
        };
        assert_eq!(
            claim_added(&pod, None, Some(&pvc("c1"))).unwrap(),
            QueueingHint::Queue
        );
        assert_eq!(
            claim_added(&pod, None, Some(&pvc("c2"))).unwrap(),
            QueueingHint::Skip
        );
    }
}
