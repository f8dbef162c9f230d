//! The binder's decisions as data: given a claim or a volume and the cached objects around it,
//! the ordered API writes and events upstream's `syncClaim` / `syncVolume` would make. Pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimStatus,
    PersistentVolumeStatus,
};
use k8s_openapi::api::storage::v1::StorageClass;

use super::matching::{
    check_volume_satisfies_claim, claim_class, find_best_match, is_volume_bound_to_claim,
    volume_mode_mismatch,
};
use crate::framework::reference;

pub const ANN_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANN_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const ANN_DYNAMICALLY_PROVISIONED: &str = "pv.kubernetes.io/provisioned-by";
pub const ANN_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const ANN_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANN_BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// The provisioner of StorageClasses whose volumes are only ever created by hand.
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

/// One step of a sync, in the order it must happen.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// PUT the volume (spec and metadata).
    Volume(PersistentVolume),
    /// PUT the volume's status subresource.
    VolumeStatus(PersistentVolume),
    Claim(PersistentVolumeClaim),
    ClaimStatus(PersistentVolumeClaim),
    DeleteVolume(String),
    Event {
        object: ObjectReference,
        warning: bool,
        reason: &'static str,
        message: String,
    },
    /// Sync this claim (`namespace/name`) soon.
    EnqueueClaim(String),
}

/// What the claim sync reads from the caches.
pub struct Cache<'a> {
    pub volumes: &'a [Arc<PersistentVolume>],
    pub classes: &'a [Arc<StorageClass>],
}

impl Cache<'_> {
    fn volume(&self, name: &str) -> Option<&Arc<PersistentVolume>> {
        self.volumes
            .iter()
            .find(|v| v.metadata.name.as_deref() == Some(name))
    }

    fn class(&self, name: &str) -> Option<&Arc<StorageClass>> {
        self.classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }
}

fn has_annotation(meta: &kube::api::ObjectMeta, key: &str) -> bool {
    meta.annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(key))
}

fn set_annotation(meta: &mut kube::api::ObjectMeta, key: &str, value: &str) {
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(key.into(), value.into());
}

fn event(
    object: ObjectReference,
    warning: bool,
    reason: &'static str,
    message: impl Into<String>,
) -> Write {
    Write::Event {
        object,
        warning,
        reason,
        message: message.into(),
    }
}

fn claim_phase(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn volume_phase(volume: &PersistentVolume) -> Option<&str> {
    volume.status.as_ref().and_then(|s| s.phase.as_deref())
}

fn claim_key(claim: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        claim.metadata.namespace.as_deref().unwrap_or(""),
        claim.metadata.name.as_deref().unwrap_or("")
    )
}

/// Upstream's `updateClaimStatus` for a phase without a volume.
fn claim_phase_write(claim: &PersistentVolumeClaim, phase: &str) -> Option<Write> {
    if claim_phase(claim) == Some(phase) {
        return None;
    }
    let mut updated = claim.clone();
    updated
        .status
        .get_or_insert_with(PersistentVolumeClaimStatus::default)
        .phase = Some(phase.into());
    Some(Write::ClaimStatus(updated))
}

/// Upstream's `updateClaimStatusWithEvent(Lost)`: the event only when the phase changes.
fn claim_lost(claim: &PersistentVolumeClaim, reason: &'static str, message: &str) -> Vec<Write> {
    match claim_phase_write(claim, "Lost") {
        Some(write) => vec![write, event(reference(claim), true, reason, message)],
        None => Vec::new(),
    }
}

fn volume_phase_write(
    volume: &PersistentVolume,
    phase: &str,
    message: Option<&str>,
) -> Option<Write> {
    if volume_phase(volume) == Some(phase) {
        return None;
    }
    let mut updated = volume.clone();
    let status = updated
        .status
        .get_or_insert_with(PersistentVolumeStatus::default);
    status.phase = Some(phase.into());
    status.message = message.map(str::to_string);
    Some(Write::VolumeStatus(updated))
}

/// A claimRef to `claim` as `reference.GetReference` makes it.
fn claim_ref(claim: &PersistentVolumeClaim) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("PersistentVolumeClaim".into()),
        namespace: claim.metadata.namespace.clone(),
        name: claim.metadata.name.clone(),
        uid: claim.metadata.uid.clone(),
        resource_version: claim.metadata.resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// Upstream's `bind`: the volume points at the claim (bound-by-controller when we chose it) and is
/// Bound; the claim names the volume (bind-completed, bound-by-controller when we chose it) and
/// is Bound with the volume's access modes and capacity. Each write only when it changes
/// something, so a finished binding plans nothing.
pub fn bind(volume: &PersistentVolume, claim: &PersistentVolumeClaim) -> Vec<Write> {
    let mut writes = Vec::new();

    let mut bound_volume = volume.clone();
    let mut dirty = false;
    let set_by_controller = !is_volume_bound_to_claim(volume, claim);
    let current = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
    let same = current.is_some_and(|r| {
        r.name == claim.metadata.name
            && r.namespace == claim.metadata.namespace
            && r.uid == claim.metadata.uid
    });
    if !same {
        bound_volume
            .spec
            .get_or_insert_with(Default::default)
            .claim_ref = Some(claim_ref(claim));
        dirty = true;
    }
    if set_by_controller && !has_annotation(&bound_volume.metadata, ANN_BOUND_BY_CONTROLLER) {
        set_annotation(&mut bound_volume.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        dirty = true;
    }
    if dirty {
        writes.push(Write::Volume(bound_volume.clone()));
    }
    writes.extend(volume_phase_write(&bound_volume, "Bound", None));

    let volume_name = volume.metadata.name.clone().unwrap_or_default();
    let mut bound_claim = claim.clone();
    let mut dirty = false;
    let spec = bound_claim.spec.get_or_insert_with(Default::default);
    if spec.volume_name.as_deref() != Some(volume_name.as_str()) {
        spec.volume_name = Some(volume_name);
        if !has_annotation(&bound_claim.metadata, ANN_BOUND_BY_CONTROLLER) {
            set_annotation(&mut bound_claim.metadata, ANN_BOUND_BY_CONTROLLER, "yes");
        }
        dirty = true;
    }
    if !has_annotation(&bound_claim.metadata, ANN_BIND_COMPLETED) {
        set_annotation(&mut bound_claim.metadata, ANN_BIND_COMPLETED, "yes");
        dirty = true;
    }
    if dirty {
        writes.push(Write::Claim(bound_claim.clone()));
    }

    let volume_spec = volume.spec.clone().unwrap_or_default();
    let capacity = volume_spec
        .capacity
        .as_ref()
        .and_then(|c| c.get("storage"))
        .map(|q| BTreeMap::from([("storage".to_string(), q.clone())]));
    let status = bound_claim
        .status
        .get_or_insert_with(PersistentVolumeClaimStatus::default);
    let mut dirty = false;
    if status.phase.as_deref() != Some("Bound") {
        status.phase = Some("Bound".into());
        dirty = true;
    }
    if status.access_modes != volume_spec.access_modes {
        status.access_modes = volume_spec.access_modes.clone();
        dirty = true;
    }
    if capacity.is_some()
        && status.capacity.as_ref().and_then(|c| c.get("storage"))
            != capacity.as_ref().and_then(|c| c.get("storage"))
    {
        status
            .capacity
            .get_or_insert_with(BTreeMap::new)
            .extend(capacity.unwrap_or_default());
        dirty = true;
    }
    if dirty {
        writes.push(Write::ClaimStatus(bound_claim));
    }
    writes
}

/// Upstream's `shouldDelayBinding`: WaitForFirstConsumer claims wait for the scheduler's
/// selected-node annotation. A class without a binding mode is an error upstream.
fn should_delay_binding(claim: &PersistentVolumeClaim, cache: &Cache<'_>) -> Result<bool, String> {
    if has_annotation(&claim.metadata, ANN_SELECTED_NODE) {
        return Ok(false);
    }
    let name = claim_class(claim);
    if name.is_empty() {
        return Ok(false);
    }
    let Some(class) = cache.class(name) else {
        return Ok(false);
    };
    match class.volume_binding_mode.as_deref() {
        None => Err(format!(
            "VolumeBindingMode not set for StorageClass {name:?}"
        )),
        Some(mode) => Ok(mode == "WaitForFirstConsumer"),
    }
}

/// No volume fits a claim of a class: hand it to the class's external provisioner by annotating
/// it (upstream's `provisionClaim` for out-of-tree provisioners); in-tree plugins are not ours.
fn provision(claim: &PersistentVolumeClaim, cache: &Cache<'_>) -> Vec<Write> {
    let Some(class) = cache.class(claim_class(claim)) else {
        return Vec::new();
    };
    let provisioner = class.provisioner.as_str();
    if provisioner == NO_PROVISIONER || provisioner.is_empty() {
        return Vec::new();
    }
    let annotations = claim.metadata.annotations.clone().unwrap_or_default();
    let mut writes = Vec::new();
    if annotations.get(ANN_STORAGE_PROVISIONER).map(String::as_str) != Some(provisioner)
        || annotations
            .get(ANN_BETA_STORAGE_PROVISIONER)
            .map(String::as_str)
            != Some(provisioner)
    {
        let mut updated = claim.clone();
        set_annotation(&mut updated.metadata, ANN_STORAGE_PROVISIONER, provisioner);
        set_annotation(
            &mut updated.metadata,
            ANN_BETA_STORAGE_PROVISIONER,
            provisioner,
        );
        writes.push(Write::Claim(updated));
    }
    writes.push(event(
        reference(claim),
        false,
        "ExternalProvisioning",
        format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."),
    ));
    writes
}

/// Upstream's `syncClaim`.
pub fn sync_claim(claim: &PersistentVolumeClaim, cache: &Cache<'_>) -> Result<Vec<Write>, String> {
    if claim.metadata.deletion_timestamp.is_some() {
        return Ok(Vec::new());
    }
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("");
    if !has_annotation(&claim.metadata, ANN_BIND_COMPLETED) {
        return sync_unbound_claim(claim, volume_name, cache);
    }
    // syncBoundClaim
    if volume_name.is_empty() {
        return Ok(claim_lost(
            claim,
            "ClaimLost",
            "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
        ));
    }
    let Some(volume) = cache.volume(volume_name) else {
        return Ok(claim_lost(
            claim,
            "ClaimLost",
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
        ));
    };
    let claimed = volume.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
    if !claimed || is_volume_bound_to_claim(volume, claim) {
        return Ok(bind(volume, claim));
    }
    Ok(claim_lost(
        claim,
        "ClaimMisbound",
        "Two claims are bound to the same volume, this one is bound incorrectly",
    ))
}

fn sync_unbound_claim(
    claim: &PersistentVolumeClaim,
    volume_name: &str,
    cache: &Cache<'_>,
) -> Result<Vec<Write>, String> {
    if volume_name.is_empty() {
        let delay = should_delay_binding(claim, cache)?;
        if let Some(volume) = find_best_match(claim, cache.volumes, delay)? {
            return Ok(bind(&volume, claim));
        }
        let mut writes = if delay {
            vec![event(
                reference(claim),
                false,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
            )]
        } else if !claim_class(claim).is_empty() {
            provision(claim, cache)
        } else {
            vec![event(
                reference(claim),
                false,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
            )]
        };
        writes.extend(claim_phase_write(claim, "Pending"));
        return Ok(writes);
    }
    // The user asked for a volume by name.
    let Some(volume) = cache.volume(volume_name) else {
        return Ok(claim_phase_write(claim, "Pending").into_iter().collect());
    };
    let claimed = volume.spec.as_ref().is_some_and(|s| s.claim_ref.is_some());
    if !claimed {
        if let Err(err) = check_volume_satisfies_claim(volume, claim) {
            let mut writes = vec![event(
                reference(claim),
                true,
                "VolumeMismatch",
                format!("Cannot bind to requested volume {volume_name:?}: {err}"),
            )];
            writes.extend(claim_phase_write(claim, "Pending"));
            return Ok(writes);
        }
        return Ok(bind(volume, claim));
    }
    if is_volume_bound_to_claim(volume, claim) {
        return Ok(bind(volume, claim));
    }
    if !has_annotation(&claim.metadata, ANN_BOUND_BY_CONTROLLER) {
        let mut writes = vec![event(
            reference(claim),
            true,
            "FailedBinding",
            format!("volume {volume_name:?} already bound to a different claim."),
        )];
        writes.extend(claim_phase_write(claim, "Pending"));
        return Ok(writes);
    }
    Err(format!(
        "invalid binding of claim {:?} to volume {volume_name:?}: volume already claimed by another claim",
        claim_key(claim)
    ))
}

/// Upstream's `unbindVolume`: a volume we bound to a claim that went elsewhere returns to the
/// pool; one the user pre-bound keeps the name of its claim but forgets the UID.
fn unbind(volume: &PersistentVolume) -> Vec<Write> {
    let mut updated = volume.clone();
    let by_controller = has_annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER);
    if let Some(spec) = updated.spec.as_mut() {
        if by_controller {
            spec.claim_ref = None;
        } else if let Some(r) = spec.claim_ref.as_mut() {
            r.uid = None;
        }
    }
    if let Some(annotations) = updated.metadata.annotations.as_mut() {
        annotations.remove(ANN_BOUND_BY_CONTROLLER);
    }
    let mut writes = vec![Write::Volume(updated.clone())];
    writes.extend(volume_phase_write(&updated, "Available", None));
    writes
}

/// Upstream's `reclaimVolume` for a Released volume, with no volume plugins: Retain keeps it,
/// Delete removes the PersistentVolume object unless an external provisioner owns it, Recycle
/// (deprecated, plugin-only) fails.
fn reclaim(volume: &PersistentVolume) -> Vec<Write> {
    let policy = volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain");
    match policy {
        "Delete" if has_annotation(&volume.metadata, ANN_DYNAMICALLY_PROVISIONED) => Vec::new(),
        // Already deleted; the pv-protection finalizer holds it.
        "Delete" if volume.metadata.deletion_timestamp.is_some() => Vec::new(),
        "Delete" => vec![Write::DeleteVolume(
            volume.metadata.name.clone().unwrap_or_default(),
        )],
        "Recycle" => {
            let message = "No recycler plugin found for the volume!";
            let mut writes = vec![event(
                reference(volume),
                true,
                "VolumeFailedRecycle",
                message,
            )];
            writes.extend(volume_phase_write(volume, "Failed", Some(message)));
            writes
        }
        _ => Vec::new(),
    }
}

/// Upstream's `syncVolume`. `claim` is the cached claim the volume's claimRef names, if any.
pub fn sync_volume(volume: &PersistentVolume, claim: Option<&PersistentVolumeClaim>) -> Vec<Write> {
    let Some(claim_ref) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return volume_phase_write(volume, "Available", None)
            .into_iter()
            .collect();
    };
    let uid = claim_ref.uid.as_deref().unwrap_or("");
    if uid.is_empty() {
        // Pre-bound by the user; waits for its claim.
        return volume_phase_write(volume, "Available", None)
            .into_iter()
            .collect();
    }
    // A claim with the same name but another UID is a new claim: the old one is gone.
    let claim = claim.filter(|c| c.metadata.uid.as_deref() == Some(uid));
    let Some(claim) = claim else {
        let mut writes = Vec::new();
        let mut current = volume.clone();
        if !matches!(volume_phase(volume), Some("Released" | "Failed")) {
            if let Some(Write::VolumeStatus(released)) =
                volume_phase_write(volume, "Released", None)
            {
                current = released.clone();
                writes.push(Write::VolumeStatus(released));
            }
        }
        if volume_phase(&current) == Some("Released") {
            writes.extend(reclaim(&current));
        }
        return writes;
    };
    let name = volume.metadata.name.as_deref().unwrap_or("");
    let claim_volume = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .unwrap_or("");
    if claim_volume.is_empty() {
        if volume_mode_mismatch(claim, volume) {
            return vec![event(
                reference(volume),
                true,
                "VolumeMismatch",
                format!(
                    "Cannot bind PersistentVolume to requested PersistentVolumeClaim {:?} due to incompatible volumeMode.",
                    claim.metadata.name.as_deref().unwrap_or("")
                ),
            )];
        }
        // Half-way bound: the claim sync finishes (or repairs) it.
        return vec![Write::EnqueueClaim(claim_key(claim))];
    }
    if claim_volume == name {
        return volume_phase_write(volume, "Bound", None)
            .into_iter()
            .collect();
    }
    // The claim is bound to another volume.
    let policy_delete = volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        == Some("Delete");
    if has_annotation(&volume.metadata, ANN_DYNAMICALLY_PROVISIONED) && policy_delete {
        // Provisioned for this claim, which went elsewhere: release it to its provisioner.
        return volume_phase_write(volume, "Released", None)
            .into_iter()
            .collect();
    }
    if has_annotation(&volume.metadata, ANN_BOUND_BY_CONTROLLER) {
        return unbind(volume);
    }
    // Created with this claimRef by the user: left alone until the claim goes.
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::super::matching::tests::{claim_ref_to, pv, pvc};
    use super::*;

    const RWO: &[&str] = &["ReadWriteOnce"];

    fn summary(writes: &[Write]) -> Vec<String> {
        writes
            .iter()
            .map(|w| match w {
                Write::Volume(v) => format!(
                    "volume {} claimRef={} byController={}",
                    v.metadata.name.as_deref().unwrap_or(""),
                    v.spec
                        .as_ref()
                        .and_then(|s| s.claim_ref.as_ref())
                        .and_then(|r| r.name.clone())
                        .unwrap_or_default(),
                    has_annotation(&v.metadata, ANN_BOUND_BY_CONTROLLER)
                ),
                Write::VolumeStatus(v) => format!(
                    "volume {} phase {}",
                    v.metadata.name.as_deref().unwrap_or(""),
                    volume_phase(v).unwrap_or("")
                ),
                Write::Claim(c) => format!(
                    "claim {} volumeName={} bindCompleted={} byController={}",
                    c.metadata.name.as_deref().unwrap_or(""),
                    c.spec
                        .as_ref()
                        .and_then(|s| s.volume_name.clone())
                        .unwrap_or_default(),
                    has_annotation(&c.metadata, ANN_BIND_COMPLETED),
                    has_annotation(&c.metadata, ANN_BOUND_BY_CONTROLLER)
                ),
                Write::ClaimStatus(c) => format!(
                    "claim {} phase {}",
                    c.metadata.name.as_deref().unwrap_or(""),
                    claim_phase(c).unwrap_or("")
                ),
                Write::DeleteVolume(n) => format!("delete {n}"),
                Write::Event {
                    reason, message, ..
                } => format!("event {reason}: {message}"),
                Write::EnqueueClaim(k) => format!("enqueue {k}"),
            })
            .collect()
    }

    fn arcs(v: Vec<PersistentVolume>) -> Vec<Arc<PersistentVolume>> {
        v.into_iter().map(Arc::new).collect()
    }

    fn sync(
        claim: &PersistentVolumeClaim,
        volumes: Vec<PersistentVolume>,
        classes: Vec<StorageClass>,
    ) -> Vec<String> {
        let volumes = arcs(volumes);
        let classes: Vec<Arc<StorageClass>> = classes.into_iter().map(Arc::new).collect();
        let cache = Cache {
            volumes: &volumes,
            classes: &classes,
        };
        match sync_claim(claim, &cache) {
            Ok(w) => summary(&w),
            Err(err) => vec![format!("error: {err}")],
        }
    }

    fn class(name: &str, provisioner: &str, mode: &str) -> StorageClass {
        StorageClass {
            metadata: kube::api::ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            provisioner: provisioner.into(),
            volume_binding_mode: Some(mode.into()),
            ..Default::default()
        }
    }

    /// The claim and volume after a completed bind.
    fn bound_pair() -> (PersistentVolumeClaim, PersistentVolume) {
        let claim = pvc("c", "1Gi", None, RWO);
        let volume = pv("v", "1Gi", "", RWO);
        let mut bound_claim = claim.clone();
        let mut bound_volume = volume.clone();
        for w in bind(&volume, &claim) {
            match w {
                Write::Volume(v) | Write::VolumeStatus(v) => bound_volume = v,
                Write::Claim(c) | Write::ClaimStatus(c) => bound_claim = c,
                _ => {}
            }
        }
        (bound_claim, bound_volume)
    }

    #[test]
    fn unbound_claims() {
        let claim = pvc("c", "1Gi", None, RWO);
        assert_eq!(
            sync(&claim, vec![pv("v", "2Gi", "", RWO)], vec![]),
            [
                "volume v claimRef=c byController=true",
                "volume v phase Bound",
                "claim c volumeName=v bindCompleted=true byController=true",
                "claim c phase Bound",
            ]
        );
        let mut pending = claim.clone();
        pending.status = None;
        assert_eq!(
            sync(&pending, vec![], vec![]),
            [
                "event FailedBinding: no persistent volumes available for this claim and no storage class is set",
                "claim c phase Pending",
            ]
        );
        let late = pvc("c", "1Gi", Some("local"), RWO);
        let wffc = class(
            "local",
            "kubernetes.io/no-provisioner",
            "WaitForFirstConsumer",
        );
        assert_eq!(
            sync(&late, vec![pv("v", "2Gi", "local", RWO)], vec![wffc.clone()]),
            ["event WaitForFirstConsumer: waiting for first consumer to be created before binding"]
        );
        let mut selected = late.clone();
        selected.metadata.annotations = Some(BTreeMap::from([(
            ANN_SELECTED_NODE.to_string(),
            "n1".to_string(),
        )]));
        assert_eq!(
            sync(&selected, vec![pv("v", "2Gi", "local", RWO)], vec![wffc])[3],
            "claim c phase Bound"
        );
        let external = pvc("c", "1Gi", Some("csi"), RWO);
        assert_eq!(
            sync(&external, vec![], vec![class("csi", "ebs.csi.aws.com", "Immediate")]),
            [
                "claim c volumeName= bindCompleted=false byController=false",
                "event ExternalProvisioning: Waiting for a volume to be created either by the external provisioner 'ebs.csi.aws.com' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.",
            ]
        );
    }

    #[test]
    fn claims_naming_a_volume() {
        let mut claim = pvc("c", "1Gi", None, RWO);
        if let Some(s) = claim.spec.as_mut() {
            s.volume_name = Some("v".into());
        }
        // User-chosen: the claim is not bound-by-controller, the volume is.
        assert_eq!(
            sync(&claim, vec![pv("v", "1Gi", "", RWO)], vec![])[2],
            "claim c volumeName=v bindCompleted=true byController=false"
        );
        assert_eq!(
            sync(&claim, vec![pv("v", "1Gi", "gold", RWO)], vec![]),
            ["event VolumeMismatch: Cannot bind to requested volume \"v\": storageClassName does not match"]
        );
        let mut other = pv("v", "1Gi", "", RWO);
        if let Some(s) = other.spec.as_mut() {
            s.claim_ref = Some(claim_ref_to(&pvc("x", "1Gi", None, RWO), true));
        }
        assert_eq!(
            sync(&claim, vec![other], vec![]),
            ["event FailedBinding: volume \"v\" already bound to a different claim."]
        );
        assert!(
            sync(&claim, vec![], vec![]).is_empty(),
            "missing volume: stays Pending"
        );
        // Pre-bound volume (claimRef without UID) binds; the volume is not bound-by-controller.
        let plain = pvc("c", "1Gi", None, RWO);
        let mut pre = pv("pre", "1Gi", "", RWO);
        if let Some(s) = pre.spec.as_mut() {
            s.claim_ref = Some(claim_ref_to(&plain, false));
        }
        assert_eq!(
            sync(&plain, vec![pre], vec![])[0],
            "volume pre claimRef=c byController=false"
        );
    }

    #[test]
    fn bound_claims() {
        let (claim, volume) = bound_pair();
        assert!(
            sync(&claim, vec![volume.clone()], vec![]).is_empty(),
            "a finished bind plans nothing"
        );
        assert_eq!(
            sync(&claim, vec![], vec![]),
            ["claim c phase Lost", "event ClaimLost: Bound claim has lost its PersistentVolume. Data on the volume is lost!"]
        );
        let mut stolen = volume.clone();
        if let Some(s) = stolen.spec.as_mut() {
            s.claim_ref = Some(claim_ref_to(&pvc("x", "1Gi", None, RWO), true));
        }
        assert_eq!(
            sync(&claim, vec![stolen], vec![]),
            ["claim c phase Lost", "event ClaimMisbound: Two claims are bound to the same volume, this one is bound incorrectly"]
        );
    }

    #[test]
    fn volumes() {
        let mut fresh = pv("v", "1Gi", "", RWO);
        if let Some(s) = fresh.status.as_mut() {
            s.phase = Some("Pending".into());
        }
        assert_eq!(
            summary(&sync_volume(&fresh, None)),
            ["volume v phase Available"]
        );

        let (claim, volume) = bound_pair();
        assert!(
            sync_volume(&volume, Some(&claim)).is_empty(),
            "bound and consistent"
        );
        assert_eq!(
            summary(&sync_volume(&volume, None)),
            ["volume v phase Released"],
            "Retain keeps it"
        );
        let mut recreated = claim.clone();
        recreated.metadata.uid = Some("new".into());
        assert_eq!(
            summary(&sync_volume(&volume, Some(&recreated))),
            ["volume v phase Released"]
        );

        let mut delete = volume.clone();
        if let Some(s) = delete.spec.as_mut() {
            s.persistent_volume_reclaim_policy = Some("Delete".into());
        }
        assert_eq!(
            summary(&sync_volume(&delete, None)),
            ["volume v phase Released", "delete v"]
        );
        let mut terminating = delete.clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        if let Some(s) = terminating.status.as_mut() {
            s.phase = Some("Released".into());
        }
        assert!(sync_volume(&terminating, None).is_empty(), "deleted once");
        let mut provisioned = delete.clone();
        set_annotation(
            &mut provisioned.metadata,
            ANN_DYNAMICALLY_PROVISIONED,
            "ebs.csi.aws.com",
        );
        assert_eq!(
            summary(&sync_volume(&provisioned, None)),
            ["volume v phase Released"],
            "left to the provisioner"
        );
        let mut recycle = volume.clone();
        if let Some(s) = recycle.spec.as_mut() {
            s.persistent_volume_reclaim_policy = Some("Recycle".into());
        }
        assert_eq!(
            summary(&sync_volume(&recycle, None)),
            [
                "volume v phase Released",
                "event VolumeFailedRecycle: No recycler plugin found for the volume!",
                "volume v phase Failed"
            ]
        );

        // Half-way: the volume points at the claim, the claim not yet at the volume.
        let unbound = pvc("c", "1Gi", None, RWO);
        assert_eq!(
            summary(&sync_volume(&volume, Some(&unbound))),
            ["enqueue ns/c"]
        );
        // We bound it, but the claim went to another volume: back to the pool.
        let mut elsewhere = claim.clone();
        if let Some(s) = elsewhere.spec.as_mut() {
            s.volume_name = Some("other".into());
        }
        assert_eq!(
            summary(&sync_volume(&volume, Some(&elsewhere))),
            [
                "volume v claimRef= byController=false",
                "volume v phase Available"
            ]
        );
    }
}
