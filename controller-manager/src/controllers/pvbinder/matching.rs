//! Which PersistentVolume a claim may bind to: upstream's `FindMatchingVolume` and the access-mode
//! index around it (`persistentVolumeOrderedIndex.findByClaim`), `IsVolumeBoundToClaim`,
//! `CheckVolumeModeMismatches`, `CheckAccessModes` and `checkVolumeSatisfyClaim`. Pure.

use std::collections::BTreeSet;
use std::sync::Arc;

use apimachinery::labels::Selector;
use apimachinery::quantity::Quantity;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

/// The beta annotation that still wins over `storageClassName`, as upstream's helpers.
pub const ANN_BETA_STORAGE_CLASS: &str = "volume.beta.kubernetes.io/storage-class";

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// Upstream's `GetPersistentVolumeClaimClass`.
pub fn claim_class(claim: &PersistentVolumeClaim) -> &str {
    if let Some(class) = annotation(&claim.metadata, ANN_BETA_STORAGE_CLASS) {
        return class;
    }
    claim
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

/// Upstream's `GetPersistentVolumeClass`.
pub fn volume_class(volume: &PersistentVolume) -> &str {
    if let Some(class) = annotation(&volume.metadata, ANN_BETA_STORAGE_CLASS) {
        return class;
    }
    volume
        .spec
        .as_ref()
        .and_then(|s| s.storage_class_name.as_deref())
        .unwrap_or("")
}

fn storage(
    map: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >,
) -> Quantity {
    map.and_then(|m| m.get("storage"))
        .and_then(|q| Quantity::parse(&q.0).ok())
        .unwrap_or(Quantity::ZERO)
}

pub fn requested_storage(claim: &PersistentVolumeClaim) -> Quantity {
    storage(
        claim
            .spec
            .as_ref()
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref()),
    )
}

pub fn volume_storage(volume: &PersistentVolume) -> Quantity {
    storage(volume.spec.as_ref().and_then(|s| s.capacity.as_ref()))
}

fn claim_modes(claim: &PersistentVolumeClaim) -> BTreeSet<&str> {
    claim
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect()
}

fn volume_modes(volume: &PersistentVolume) -> BTreeSet<&str> {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.access_modes.as_deref())
        .unwrap_or_default()
        .iter()
        .map(String::as_str)
        .collect()
}

/// Upstream's `CheckAccessModes`: the volume offers every mode the claim asks for.
pub fn access_modes_satisfied(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    claim_modes(claim).is_subset(&volume_modes(volume))
}

/// Upstream's `CheckVolumeModeMismatches`; an unset mode is `Filesystem`.
pub fn volume_mode_mismatch(claim: &PersistentVolumeClaim, volume: &PersistentVolume) -> bool {
    let claim_mode = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    let volume_mode = volume
        .spec
        .as_ref()
        .and_then(|s| s.volume_mode.as_deref())
        .unwrap_or("Filesystem");
    claim_mode != volume_mode
}

/// Upstream's `IsVolumeBoundToClaim`: the claimRef names the claim (and its UID, when set).
pub fn is_volume_bound_to_claim(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> bool {
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    if claim_ref.name != claim.metadata.name || claim_ref.namespace != claim.metadata.namespace {
        return false;
    }
    match claim_ref.uid.as_deref() {
        None | Some("") => true,
        Some(uid) => claim.metadata.uid.as_deref() == Some(uid),
    }
}

/// Upstream's `checkVolumeSatisfyClaim`, for a claim that names its volume.
pub fn check_volume_satisfies_claim(
    volume: &PersistentVolume,
    claim: &PersistentVolumeClaim,
) -> Result<(), String> {
    if requested_storage(claim) > volume_storage(volume) {
        return Err("requested PV is too small".into());
    }
    if volume_class(volume) != claim_class(claim) {
        return Err("storageClassName does not match".into());
    }
    if volume_mode_mismatch(claim, volume) {
        return Err("incompatible volumeMode".into());
    }
    if !access_modes_satisfied(claim, volume) {
        return Err("incompatible accessMode".into());
    }
    Ok(())
}

fn claim_selector(claim: &PersistentVolumeClaim) -> Result<Option<Selector>, String> {
    let Some(selector) = claim.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return Ok(None);
    };
    let value = serde_json::to_value(selector).map_err(|err| err.to_string())?;
    Selector::from_label_selector(&value)
        .map(Some)
        .map_err(|err| format!("error creating internal label selector for claim: {err}"))
}

/// How a candidate volume ranks: fewer access modes, then smaller, then by name.
type Rank<'a> = (usize, Quantity, &'a str);

/// The best volume for `claim` among `volumes`: one pre-bound to it (big enough), else the
/// smallest Available, unclaimed volume of the claim's class whose labels match its selector,
/// whose volumeMode matches and which is big enough, looking first among volumes with the fewest
/// access modes that still include the claim's (upstream's access-mode index). With
/// `delay_binding` only pre-bound volumes are returned: the scheduler picks the others.
pub fn find_best_match(
    claim: &PersistentVolumeClaim,
    volumes: &[Arc<PersistentVolume>],
    delay_binding: bool,
) -> Result<Option<Arc<PersistentVolume>>, String> {
    let requested = requested_storage(claim);
    let class = claim_class(claim);
    let selector = claim_selector(claim)?;
    let wanted = claim_modes(claim);

    // Upstream searches one access-mode group at a time, groups ordered by how many modes they
    // have; within a group the smallest volume wins. (fewer modes, size, name) reproduces that
    // and makes ties deterministic.
    let mut best: Option<(Rank<'_>, &Arc<PersistentVolume>)> = None;
    for volume in volumes {
        let modes = volume_modes(volume);
        if !wanted.is_subset(&modes) {
            continue;
        }
        let size = volume_storage(volume);
        if volume_mode_mismatch(claim, volume) || volume.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if is_volume_bound_to_claim(volume, claim) {
            if size < requested {
                continue;
            }
            return Ok(Some(volume.clone()));
        }
        if delay_binding {
            continue;
        }
        let phase = volume.status.as_ref().and_then(|s| s.phase.as_deref());
        let claimed = volume.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
        if phase != Some("Available") || claimed {
            continue;
        }
        let labels = volume.metadata.labels.clone().unwrap_or_default();
        if selector.as_ref().is_some_and(|s| !s.matches(&labels)) {
            continue;
        }
        if volume_class(volume) != class || size < requested {
            continue;
        }
        let key = (
            modes.len(),
            size,
            volume.metadata.name.as_deref().unwrap_or(""),
        );
        if best.as_ref().is_none_or(|(k, _)| key < *k) {
            best = Some((key, volume));
        }
    }
    Ok(best.map(|(_, v)| v.clone()))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        ObjectReference, PersistentVolumeClaimSpec, PersistentVolumeSpec, PersistentVolumeStatus,
        VolumeResourceRequirements,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as Q;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
    use std::collections::BTreeMap;

    pub fn pv(name: &str, size: &str, class: &str, modes: &[&str]) -> PersistentVolume {
        PersistentVolume {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeSpec {
                capacity: Some(BTreeMap::from([("storage".to_string(), Q(size.into()))])),
                access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
                storage_class_name: (!class.is_empty()).then(|| class.to_string()),
                persistent_volume_reclaim_policy: Some("Retain".into()),
                ..Default::default()
            }),
            status: Some(PersistentVolumeStatus {
                phase: Some("Available".into()),
                ..Default::default()
            }),
        }
    }

    pub fn pvc(
        name: &str,
        size: &str,
        class: Option<&str>,
        modes: &[&str],
    ) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_string(), Q(size.into()))])),
                    ..Default::default()
                }),
                storage_class_name: class.map(str::to_string),
                ..Default::default()
            }),
            status: Some(k8s_openapi::api::core::v1::PersistentVolumeClaimStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    pub fn claim_ref_to(claim: &PersistentVolumeClaim, with_uid: bool) -> ObjectReference {
        ObjectReference {
            kind: Some("PersistentVolumeClaim".into()),
            namespace: claim.metadata.namespace.clone(),
            name: claim.metadata.name.clone(),
            uid: if with_uid {
                claim.metadata.uid.clone()
            } else {
                None
            },
            ..Default::default()
        }
    }

    const RWO: &[&str] = &["ReadWriteOnce"];

    fn labelled(mut v: PersistentVolume, key: &str, value: &str) -> PersistentVolume {
        v.metadata.labels = Some(BTreeMap::from([(key.to_string(), value.to_string())]));
        v
    }

    fn with_phase(mut v: PersistentVolume, phase: &str) -> PersistentVolume {
        if let Some(s) = v.status.as_mut() {
            s.phase = Some(phase.into());
        }
        v
    }

    fn with_mode(mut v: PersistentVolume, mode: &str) -> PersistentVolume {
        if let Some(s) = v.spec.as_mut() {
            s.volume_mode = Some(mode.into());
        }
        v
    }

    #[test]
    fn matching_table() {
        let claim = pvc("c", "5Gi", None, RWO);
        let mut fast_claim = pvc("c", "5Gi", Some("fast"), RWO);
        fast_claim.metadata.annotations = None;
        let mut selecting = pvc("c", "1Gi", None, RWO);
        if let Some(s) = selecting.spec.as_mut() {
            s.selector = Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("tier".to_string(), "gold".to_string())])),
                ..Default::default()
            });
        }
        let rwx_claim = pvc("c", "1Gi", None, &["ReadWriteMany"]);
        let mut prebound = pv("pre", "5Gi", "other-class", RWO);
        if let Some(s) = prebound.spec.as_mut() {
            s.claim_ref = Some(claim_ref_to(&claim, false));
        }
        let mut taken = pv("taken", "5Gi", "", RWO);
        if let Some(s) = taken.spec.as_mut() {
            s.claim_ref = Some(claim_ref_to(&pvc("other", "1Gi", None, RWO), true));
        }

        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            &PersistentVolumeClaim,
            Vec<PersistentVolume>,
            bool,
            Option<&str>,
        )> = vec![
            (
                "smallest fit",
                &claim,
                vec![
                    pv("big", "10Gi", "", RWO),
                    pv("fit", "5Gi", "", RWO),
                    pv("small", "1Gi", "", RWO),
                ],
                false,
                Some("fit"),
            ),
            (
                "too small",
                &claim,
                vec![pv("small", "4Gi", "", RWO)],
                false,
                None,
            ),
            (
                "empty class only matches empty class",
                &claim,
                vec![pv("fast", "5Gi", "fast", RWO)],
                false,
                None,
            ),
            (
                "class",
                &fast_claim,
                vec![pv("slow", "5Gi", "", RWO), pv("fast", "8Gi", "fast", RWO)],
                false,
                Some("fast"),
            ),
            (
                "modes must be offered",
                &rwx_claim,
                vec![pv("rwo", "5Gi", "", RWO)],
                false,
                None,
            ),
            (
                "fewest extra modes first",
                &claim,
                vec![
                    pv("many", "5Gi", "", &["ReadWriteOnce", "ReadOnlyMany"]),
                    pv("exact", "9Gi", "", RWO),
                ],
                false,
                Some("exact"),
            ),
            (
                "selector",
                &selecting,
                vec![
                    labelled(pv("plain", "1Gi", "", RWO), "tier", "bronze"),
                    labelled(pv("gold", "2Gi", "", RWO), "tier", "gold"),
                ],
                false,
                Some("gold"),
            ),
            (
                "volume mode",
                &claim,
                vec![with_mode(pv("block", "5Gi", "", RWO), "Block")],
                false,
                None,
            ),
            (
                "only Available volumes",
                &claim,
                vec![
                    with_phase(pv("pending", "5Gi", "", RWO), "Pending"),
                    with_phase(pv("released", "5Gi", "", RWO), "Released"),
                ],
                false,
                None,
            ),
            (
                "claimed volumes are skipped",
                &claim,
                vec![taken.clone()],
                false,
                None,
            ),
            (
                "pre-bound wins regardless of class and size order",
                &claim,
                vec![pv("fit", "5Gi", "", RWO), prebound.clone()],
                false,
                Some("pre"),
            ),
            (
                "delayed binding takes only pre-bound",
                &claim,
                vec![pv("fit", "5Gi", "", RWO)],
                true,
                None,
            ),
            (
                "delayed binding still takes pre-bound",
                &claim,
                vec![prebound.clone()],
                true,
                Some("pre"),
            ),
        ];
        for (name, claim, volumes, delay, want) in cases {
            let volumes: Vec<Arc<PersistentVolume>> = volumes.into_iter().map(Arc::new).collect();
            let got = match find_best_match(claim, &volumes, delay) {
                Ok(v) => v.and_then(|v| v.metadata.name.clone()),
                Err(err) => panic!("{name}: {err}"),
            };
            assert_eq!(got.as_deref(), want, "{name}");
        }
    }

    #[test]
    fn requested_volume_checks() {
        let claim = pvc("c", "5Gi", None, RWO);
        let cases = [
            (pv("v", "5Gi", "", RWO), Ok(())),
            (pv("v", "1Gi", "", RWO), Err("requested PV is too small")),
            (
                pv("v", "5Gi", "gold", RWO),
                Err("storageClassName does not match"),
            ),
            (
                with_mode(pv("v", "5Gi", "", RWO), "Block"),
                Err("incompatible volumeMode"),
            ),
            (
                pv("v", "5Gi", "", &["ReadOnlyMany"]),
                Err("incompatible accessMode"),
            ),
        ];
        for (volume, want) in cases {
            assert_eq!(
                check_volume_satisfies_claim(&volume, &claim),
                want.map_err(str::to_string)
            );
        }
    }
}
