//! Storage helpers the volume plugins share (upstream's `component-helpers/storage/volume` and
//! `storage/ephemeral`): claim and volume classes, the annotations the scheduler and the PV
//! controller talk through, generic ephemeral claim names, and the claim-to-volume matching
//! rules (`FindMatchingVolume`).

use std::collections::{BTreeMap, HashSet};

use apimachinery::quantity::Quantity;
use apimachinery::LabelSelector;
use k8s_openapi::api::core::v1::{
    Node, ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

use crate::plugins::helper::match_node_selector_terms;

/// Set on a PVC once the PV controller has finished binding it.
pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Set on a PV (and PVC) bound by a controller rather than pre-bound by a user.
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// Set by the scheduler on a PVC to ask for dynamic provisioning reachable from that node.
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// A storage class provisioner that means "no dynamic provisioning".
pub const NOT_SUPPORTED_PROVISIONER: &str = "kubernetes.io/no-provisioner";
/// The old way of naming a class, still honoured before `storageClassName`.
pub const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
/// The CSINode annotation listing in-tree plugins migrated to CSI on the node.
pub const MIGRATED_PLUGINS_ANNOTATION: &str = "storage.alpha.kubernetes.io/migrated-plugins";

pub const BINDING_WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
pub const CLAIM_LOST: &str = "Lost";
pub const VOLUME_AVAILABLE: &str = "Available";
pub const READ_WRITE_ONCE_POD: &str = "ReadWriteOncePod";
const STORAGE: &str = "storage";
const FILESYSTEM: &str = "Filesystem";

fn annotation<'a>(annotations: Option<&'a BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations.and_then(|a| a.get(key)).map(String::as_str)
}

/// The class a claim asks for ("" for none): the beta annotation first, as upstream.
pub fn pvc_class(pvc: &PersistentVolumeClaim) -> String {
    if let Some(class) = annotation(
        pvc.metadata.annotations.as_ref(),
        BETA_STORAGE_CLASS_ANNOTATION,
    ) {
        return class.to_string();
    }
    pvc.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The class of a volume ("" for none).
pub fn pv_class(pv: &PersistentVolume) -> String {
    if let Some(class) = annotation(
        pv.metadata.annotations.as_ref(),
        BETA_STORAGE_CLASS_ANNOTATION,
    ) {
        return class.to_string();
    }
    pv.spec
        .as_ref()
        .and_then(|s| s.storage_class_name.clone())
        .unwrap_or_default()
}

/// The claim a volume of the pod uses, and whether it is a generic ephemeral volume (whose
/// claim is named `<pod>-<volume>`); `None` for volumes without a claim.
pub fn volume_claim_name(pod: &Pod, volume: &Volume) -> Option<(String, bool)> {
    if let Some(claim) = volume.persistent_volume_claim.as_ref() {
        return Some((claim.claim_name.clone(), false));
    }
    volume.ephemeral.as_ref().map(|_| {
        (
            format!(
                "{}-{}",
                pod.metadata.name.as_deref().unwrap_or(""),
                volume.name
            ),
            true,
        )
    })
}

pub fn pod_volumes(pod: &Pod) -> &[Volume] {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or(&[])
}

/// Upstream's `ephemeral.VolumeIsForPod`: the claim of a generic ephemeral volume must be
/// controlled by the pod.
pub fn volume_is_for_pod(pod: &Pod, pvc: &PersistentVolumeClaim) -> Result<(), String> {
    let pod_ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let pvc_ns = pvc.metadata.namespace.as_deref().unwrap_or("");
    let controlled =
        pvc.metadata.owner_references.iter().flatten().any(|o| {
            o.controller == Some(true) && Some(o.uid.as_str()) == pod.metadata.uid.as_deref()
        });
    if pvc_ns != pod_ns || !controlled {
        return Err(format!(
            "PVC {}/{} was not created for pod {}/{} (pod is not owner)",
            pvc_ns,
            pvc.metadata.name.as_deref().unwrap_or(""),
            pod_ns,
            pod.metadata.name.as_deref().unwrap_or("")
        ));
    }
    Ok(())
}

/// An amount in nano-units (0 when absent or malformed), for exact comparisons.
pub fn quantity_nanos(q: Option<&ApiQuantity>) -> i128 {
    q.and_then(|q| Quantity::parse(&q.0).ok())
        .map_or(0, Quantity::nanos)
}

/// The storage a claim requests.
pub fn requested_storage(pvc: &PersistentVolumeClaim) -> i128 {
    quantity_nanos(
        pvc.spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get(STORAGE)),
    )
}

/// Whether the claim requests storage at all (capacity checks are skipped otherwise).
pub fn has_storage_request(pvc: &PersistentVolumeClaim) -> bool {
    pvc.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .is_some_and(|r| r.contains_key(STORAGE))
}

pub fn pv_capacity(pv: &PersistentVolume) -> i128 {
    quantity_nanos(
        pv.spec
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .and_then(|c| c.get(STORAGE)),
    )
}

/// The volume the claim names (`spec.volumeName`, "" when unbound).
pub fn pvc_volume_name(pvc: &PersistentVolumeClaim) -> &str {
    pvc.spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("")
}

/// Bound and the PV controller done with it.
pub fn is_pvc_fully_bound(pvc: &PersistentVolumeClaim) -> bool {
    !pvc_volume_name(pvc).is_empty()
        && annotation(pvc.metadata.annotations.as_ref(), ANN_BIND_COMPLETED).is_some()
}

pub fn pvc_access_modes(pvc: &PersistentVolumeClaim) -> &[String] {
    pvc.spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or(&[])
}

fn claim_ref(pv: &PersistentVolume) -> Option<&ObjectReference> {
    pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref())
}

/// Upstream's `IsVolumeBoundToClaim`: pre-bound or bound to this claim (the UID must match
/// when the reference has one).
pub fn is_volume_bound_to_claim(pv: &PersistentVolume, pvc: &PersistentVolumeClaim) -> bool {
    let Some(r) = claim_ref(pv) else {
        return false;
    };
    if r.name != pvc.metadata.name || r.namespace != pvc.metadata.namespace {
        return false;
    }
    match r.uid.as_deref() {
        Some(uid) if !uid.is_empty() => pvc.metadata.uid.as_deref() == Some(uid),
        _ => true,
    }
}

/// Whether the volume offers every access mode the claim asks for.
pub fn check_access_modes(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let offered: HashSet<&str> = pv
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    pvc_access_modes(pvc)
        .iter()
        .all(|m| offered.contains(m.as_str()))
}

/// Block vs Filesystem differ (an unset mode is Filesystem).
pub fn volume_mode_mismatch(pvc: &PersistentVolumeClaim, pv: &PersistentVolume) -> bool {
    let want = pvc
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or(FILESYSTEM);
    let have = pv
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or(FILESYSTEM);
    want != have
}

/// The node as volume node affinity sees it: its labels only (upstream's `CheckNodeAffinity`
/// matches a node built from the labels, so `matchFields` never match). Build it once per node.
pub fn labels_only(labels: &BTreeMap<String, String>) -> Node {
    let mut node = Node::default();
    node.metadata.labels = Some(labels.clone());
    node
}

/// Upstream's `CheckNodeAffinity`: the volume's required node affinity against `probe` (from
/// [`labels_only`]); terms that do not parse match nothing.
pub fn check_node_affinity(pv: &PersistentVolume, probe: &Node) -> bool {
    let Some(required) = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
    else {
        return true;
    };
    match_node_selector_terms(probe, required).unwrap_or(false)
}

/// The node names a local volume is pinned to through `kubernetes.io/hostname In [...]`
/// (upstream's `GetLocalPersistentVolumeNodeNames`); `None` when it is not pinned.
pub fn local_volume_node_names(pv: &PersistentVolume) -> Option<Vec<String>> {
    let required = pv
        .spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())?;
    let mut result: Option<std::collections::BTreeSet<String>> = None;
    for term in &required.node_selector_terms {
        let mut nodes: Option<std::collections::BTreeSet<String>> = None;
        for expr in term.match_expressions.iter().flatten() {
            if expr.key == "kubernetes.io/hostname" && expr.operator == "In" {
                let values: std::collections::BTreeSet<String> =
                    expr.values.iter().flatten().cloned().collect();
                nodes = Some(match nodes {
                    None => values,
                    Some(n) => n.intersection(&values).cloned().collect(),
                });
            }
        }
        if let Some(nodes) = nodes {
            result.get_or_insert_with(Default::default).extend(nodes);
        }
    }
    result
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
}

fn claim_selector(pvc: &PersistentVolumeClaim) -> Result<Option<LabelSelector>, String> {
    let Some(selector) = pvc.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Ok(None);
    };
    let value = serde_json::to_value(selector).map_err(|e| e.to_string())?;
    LabelSelector::from_label_selector(&value)
        .map(Some)
        .map_err(|e| {
            format!(
                "error creating internal label selector for claim: {}/{}: {e}",
                pvc.metadata.namespace.as_deref().unwrap_or(""),
                pvc.metadata.name.as_deref().unwrap_or("")
            )
        })
}

/// Upstream's `FindMatchingVolume` on the scheduler path (a node is given): a volume pre-bound
/// to the claim wins (unless its node affinity rules the node out, then nothing matches);
/// otherwise the smallest Available volume of the claim's class with enough capacity, the same
/// volume mode, matching labels, access modes and node affinity. `excluded` are volumes
/// already chosen for other claims of the pod.
pub fn find_matching_volume<'a>(
    pvc: &PersistentVolumeClaim,
    volumes: &'a [std::sync::Arc<PersistentVolume>],
    probe: &Node,
    excluded: &HashSet<String>,
) -> Result<Option<&'a std::sync::Arc<PersistentVolume>>, String> {
    let requested = requested_storage(pvc);
    let class = pvc_class(pvc);
    let selector = claim_selector(pvc)?;
    let mut smallest: Option<(&std::sync::Arc<PersistentVolume>, i128)> = None;
    for pv in volumes {
        let name = pv.metadata.name.as_deref().unwrap_or("");
        if excluded.contains(name) {
            continue;
        }
        if claim_ref(pv).is_some() && !is_volume_bound_to_claim(pv, pvc) {
            continue;
        }
        let capacity = pv_capacity(pv);
        if capacity < requested {
            continue;
        }
        if volume_mode_mismatch(pvc, pv) {
            continue;
        }
        if pv.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let affinity_ok = check_node_affinity(pv, probe);
        if is_volume_bound_to_claim(pv, pvc) {
            return Ok(affinity_ok.then_some(pv));
        }
        let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some(VOLUME_AVAILABLE) {
            continue;
        }
        if let Some(selector) = &selector {
            let empty = BTreeMap::new();
            if !selector.matches(pv.metadata.labels.as_ref().unwrap_or(&empty)) {
                continue;
            }
        }
        if pv_class(pv) != class || !affinity_ok || !check_access_modes(pvc, pv) {
            continue;
        }
        if smallest.is_none_or(|(_, size)| size > capacity) {
            smallest = Some((pv, capacity));
        }
    }
    Ok(smallest.map(|(pv, _)| pv))
}

/// Upstream's `GetBindVolumeToClaim`: the volume with `claimRef` pointing at the claim and the
/// bound-by-controller annotation, and whether anything changed.
pub fn bind_volume_to_claim(
    pv: &PersistentVolume,
    pvc: &PersistentVolumeClaim,
) -> (PersistentVolume, bool) {
    let should_set_bound_by_controller = !is_volume_bound_to_claim(pv, pvc);
    let mut out = pv.clone();
    let mut dirty = false;
    let current = claim_ref(pv);
    let same = current.is_some_and(|r| {
        r.name == pvc.metadata.name
            && r.namespace == pvc.metadata.namespace
            && r.uid == pvc.metadata.uid
    });
    if !same {
        let spec = out.spec.get_or_insert_with(Default::default);
        spec.claim_ref = Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            name: pvc.metadata.name.clone(),
            namespace: pvc.metadata.namespace.clone(),
            uid: pvc.metadata.uid.clone(),
            resource_version: pvc.metadata.resource_version.clone(),
            field_path: None,
        });
        dirty = true;
    }
    let has_annotation =
        annotation(out.metadata.annotations.as_ref(), ANN_BOUND_BY_CONTROLLER).is_some();
    if should_set_bound_by_controller && !has_annotation {
        out.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(ANN_BOUND_BY_CONTROLLER.into(), "yes".into());
        dirty = true;
    }
    (out, dirty)
}

/// Upstream's `LabelZonesToSet`: a zone label may list several zones separated by `__`; an
/// empty element makes the whole value invalid.
pub fn label_zones_to_set(value: &str) -> Result<std::collections::BTreeSet<String>, String> {
    let mut set = std::collections::BTreeSet::new();
    for zone in value.split("__") {
        let zone = zone.trim();
        if zone.is_empty() {
            return Err(format!(
                "\"__\" separated list ({value:?}) must not contain an empty string"
            ));
        }
        set.insert(zone.to_string());
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn pv(v: serde_json::Value) -> Arc<PersistentVolume> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn pvc(v: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(v).unwrap()
    }

    fn available(name: &str, size: &str, class: &str) -> serde_json::Value {
        json!({
            "metadata": {"name": name, "labels": {"tier": "fast"}},
            "spec": {"capacity": {"storage": size}, "storageClassName": class,
                     "accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Available"},
        })
    }

    fn claim() -> PersistentVolumeClaim {
        pvc(json!({
            "metadata": {"name": "data", "namespace": "ns", "uid": "c1"},
            "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "5Gi"}}},
        }))
    }

    #[test]
    fn the_smallest_fitting_available_volume_matches() {
        let volumes = vec![
            pv(available("big", "100Gi", "local")),
            pv(available("small", "1Gi", "local")),
            pv(available("right", "10Gi", "local")),
            pv(available("other-class", "6Gi", "slow")),
        ];
        let labels = BTreeMap::new();
        let found =
            find_matching_volume(&claim(), &volumes, &labels_only(&labels), &HashSet::new())
                .unwrap();
        assert_eq!(
            found.and_then(|p| p.metadata.name.as_deref()),
            Some("right")
        );
        let excluded: HashSet<String> = ["right".to_string()].into();
        let found =
            find_matching_volume(&claim(), &volumes, &labels_only(&labels), &excluded).unwrap();
        assert_eq!(found.and_then(|p| p.metadata.name.as_deref()), Some("big"));
    }

    #[test]
    fn a_prebound_volume_wins_unless_its_node_affinity_fails() {
        let mut prebound = available("pre", "50Gi", "local");
        prebound["spec"]["claimRef"] = json!({"name": "data", "namespace": "ns"});
        prebound["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}});
        let volumes = vec![pv(available("right", "10Gi", "local")), pv(prebound)];
        let in_a: BTreeMap<String, String> = [("zone".to_string(), "a".to_string())].into();
        let found =
            find_matching_volume(&claim(), &volumes, &labels_only(&in_a), &HashSet::new()).unwrap();
        assert_eq!(found.and_then(|p| p.metadata.name.as_deref()), Some("pre"));
        let in_b: BTreeMap<String, String> = [("zone".to_string(), "b".to_string())].into();
        let found =
            find_matching_volume(&claim(), &volumes, &labels_only(&in_b), &HashSet::new()).unwrap();
        assert!(found.is_none());
    }

    #[test]
    fn selector_access_modes_and_phase_filter_volumes() {
        let mut c = claim();
        if let Some(spec) = c.spec.as_mut() {
            spec.selector = serde_json::from_value(json!({"matchLabels": {"tier": "slow"}})).ok();
        }
        let volumes = vec![pv(available("right", "10Gi", "local"))];
        let labels = BTreeMap::new();
        assert!(
            find_matching_volume(&c, &volumes, &labels_only(&labels), &HashSet::new())
                .unwrap()
                .is_none()
        );
        let mut rwx = claim();
        if let Some(spec) = rwx.spec.as_mut() {
            spec.access_modes = Some(vec!["ReadWriteMany".into()]);
        }
        assert!(
            find_matching_volume(&rwx, &volumes, &labels_only(&labels), &HashSet::new())
                .unwrap()
                .is_none()
        );
        let mut released = available("released", "10Gi", "local");
        released["status"]["phase"] = json!("Released");
        assert!(find_matching_volume(
            &claim(),
            &[pv(released)],
            &labels_only(&labels),
            &HashSet::new()
        )
        .unwrap()
        .is_none());
    }

    #[test]
    fn binding_sets_the_claim_ref_and_annotation_once() {
        let volume = pv(available("right", "10Gi", "local"));
        let (bound, dirty) = bind_volume_to_claim(&volume, &claim());
        assert!(dirty);
        let r = bound
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .unwrap();
        assert_eq!(r.name.as_deref(), Some("data"));
        assert_eq!(r.uid.as_deref(), Some("c1"));
        assert_eq!(
            bound
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_BOUND_BY_CONTROLLER)),
            Some(&"yes".to_string())
        );
        let (_, again) = bind_volume_to_claim(&bound, &claim());
        assert!(!again);
    }

    #[test]
    fn local_volume_node_names_follow_hostname_terms() {
        let v = pv(
            json!({"metadata": {"name": "l"}, "spec": {"nodeAffinity": {"required": {
            "nodeSelectorTerms": [
                {"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]},
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2", "n3"]}]},
                {"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n4"]}]},
            ]}}}}),
        );
        assert_eq!(
            local_volume_node_names(&v),
            Some(vec!["n2".to_string(), "n4".to_string()])
        );
        let zonal = pv(
            json!({"metadata": {"name": "z"}, "spec": {"nodeAffinity": {"required": {
            "nodeSelectorTerms": [{"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]}]}]}}}}),
        );
        assert_eq!(local_volume_node_names(&zonal), None);
    }

    #[test]
    fn zone_labels_split_on_double_underscore() {
        assert_eq!(
            label_zones_to_set("a__b")
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert!(label_zones_to_set("a____b").is_err());
    }
}
