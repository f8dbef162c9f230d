//! `persistentVolumeClaimRetentionPolicy` (upstream's StatefulSetAutoDeletePVC, GA): which
//! owner references a pod's claims carry so that the garbage collector deletes them with the
//! set (`whenDeleted: Delete`: the set controls the claim) or with a scaled-down pod
//! (`whenScaled: Delete`: the condemned pod controls it). Claims whose references point at an
//! older set or pod of the same name are left alone, and a claim controlled by someone else
//! only loses our references. Nothing here does I/O.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::identity::{Retention, SetView};

/// An object that may own a claim: the set or one of its pods.
#[derive(Debug, Clone)]
pub struct Owner<'a> {
    pub api_version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    /// "" for a pod not created yet.
    pub uid: &'a str,
}

impl<'a> Owner<'a> {
    pub fn set(set: &SetView<'a>) -> Owner<'a> {
        Owner {
            api_version: "apps/v1",
            kind: "StatefulSet",
            name: set.name,
            uid: set.uid,
        }
    }

    pub fn pod(name: &'a str, uid: &'a str) -> Owner<'a> {
        Owner {
            api_version: "v1",
            kind: "Pod",
            name,
            uid,
        }
    }

    /// upstream `metav1.NewControllerRef`.
    fn controller_ref(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.to_string(),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            uid: self.uid.to_string(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }
    }

    fn matches(&self, r: &OwnerReference) -> bool {
        r.api_version == self.api_version && r.kind == self.kind && r.name == self.name
    }
}

fn refs(claim: &PersistentVolumeClaim) -> &[OwnerReference] {
    claim
        .metadata
        .owner_references
        .as_deref()
        .unwrap_or_default()
}

/// The claim names `owner` (by name and kind) with another UID: a leftover of a previous
/// object of that name.
pub fn has_stale_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    refs(claim)
        .iter()
        .find(|r| owner.matches(r))
        .is_some_and(|r| r.uid != owner.uid)
}

fn has_owner_ref(claim: &PersistentVolumeClaim, owner: &Owner) -> bool {
    !owner.uid.is_empty() && refs(claim).iter().any(|r| r.uid == owner.uid)
}

/// upstream `hasUnexpectedController`: under a Delete policy, a controller that is neither
/// this set nor this pod (or one of their stale namesakes).
fn has_unexpected_controller(
    claim: &PersistentVolumeClaim,
    set: &SetView,
    set_owner: &Owner,
    pod: &Owner,
) -> bool {
    if set.when_deleted == Retention::Retain && set.when_scaled == Retention::Retain {
        return false;
    }
    refs(claim).iter().any(|r| {
        if set_owner.matches(r) {
            return r.uid != set_owner.uid;
        }
        if pod.matches(r) {
            return r.uid != pod.uid;
        }
        r.controller == Some(true)
    })
}

/// upstream `hasNonControllerOwner`.
fn has_non_controller_owner(claim: &PersistentVolumeClaim, set_owner: &Owner, pod: &Owner) -> bool {
    refs(claim).iter().any(|r| {
        (r.uid == set_owner.uid || (!pod.uid.is_empty() && r.uid == pod.uid))
            && r.controller != Some(true)
    })
}

/// upstream `isClaimOwnerUpToDate`: whether the claim's references already follow the policy
/// for this pod (`scaled_down`: the pod's ordinal is outside the set's range).
pub fn claim_owner_up_to_date(
    claim: &PersistentVolumeClaim,
    set: &SetView,
    pod: &Owner,
    scaled_down: bool,
) -> bool {
    let set_owner = Owner::set(set);
    if has_stale_owner_ref(claim, &set_owner) || has_stale_owner_ref(claim, pod) {
        // Managed by an earlier set or pod of the same name: not ours to touch.
        return true;
    }
    if has_unexpected_controller(claim, set, &set_owner, pod) {
        return !(has_owner_ref(claim, &set_owner) || has_owner_ref(claim, pod));
    }
    if has_non_controller_owner(claim, &set_owner, pod) {
        return false;
    }
    let (has_set, has_pod) = (has_owner_ref(claim, &set_owner), has_owner_ref(claim, pod));
    match (set.when_scaled, set.when_deleted) {
        (Retention::Retain, Retention::Retain) => !has_set && !has_pod,
        (Retention::Retain, Retention::Delete) => has_set && !has_pod,
        (Retention::Delete, Retention::Retain) => !has_set && scaled_down == has_pod,
        (Retention::Delete, Retention::Delete) => scaled_down != has_set && scaled_down == has_pod,
    }
}

/// upstream `updateClaimOwnerRefForSetAndPod`: the claim's owner references rewritten for the
/// policy. Our references are dropped first; a claim with a foreign controller gets none back.
pub fn owner_refs_for_policy(
    claim: &PersistentVolumeClaim,
    set: &SetView,
    pod: &Owner,
    scaled_down: bool,
) -> Vec<OwnerReference> {
    let set_owner = Owner::set(set);
    let unexpected = has_unexpected_controller(claim, set, &set_owner, pod);
    let mut out: Vec<OwnerReference> = refs(claim)
        .iter()
        .filter(|r| !set_owner.matches(r) && !pod.matches(r))
        .cloned()
        .collect();
    if unexpected {
        return out;
    }
    let mut add = |owner: &Owner| {
        if !owner.uid.is_empty() && !out.iter().any(|r| r.uid == owner.uid) {
            out.push(owner.controller_ref());
        }
    };
    match (set.when_scaled, set.when_deleted) {
        (Retention::Retain, Retention::Retain) => {}
        (Retention::Retain, Retention::Delete) => add(&set_owner),
        (Retention::Delete, Retention::Retain) => {
            if scaled_down {
                add(pod);
            }
        }
        (Retention::Delete, Retention::Delete) => {
            if scaled_down {
                add(pod);
            } else {
                add(&set_owner);
            }
        }
    }
    out
}

/// upstream `PodClaimIsStale`: under `whenScaled: Delete`, an existing claim that a previous
/// pod of this name still owns must go (the garbage collector is on it) before the pod is
/// created again, or the new pod would mount a volume about to be deleted.
pub fn claim_is_stale(claim: &PersistentVolumeClaim, set: &SetView, pod: &Owner) -> bool {
    set.when_scaled == Retention::Delete && has_stale_owner_ref(claim, pod)
}
