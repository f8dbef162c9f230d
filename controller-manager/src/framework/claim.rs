//! Adoption and release of the objects a controller selects (upstream's `ControllerRefManager`
//! in `controller_ref_manager.go`): an object belongs to a controller through its controller
//! ownerReference; a matching orphan is adopted, an owned object that stopped matching is
//! released, and either write is a strategic merge patch carrying the object's UID as a
//! precondition, so an object recreated under the same name is never taken or dropped by
//! mistake. Adoption happens only after a fresh read of the controller confirms it is still the
//! same object and not being deleted (`RecheckDeletionTimestamp`): the cached one may be stale.

use std::sync::Arc;

use anyhow::anyhow;
use client::client::{Patch, PatchParams};
use client::informer::Object;
use client::{Api, Client};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::core::Resource;
use serde_json::json;

use super::{controller_ref, is_invalid, new_controller_ref};

/// What a controller does with one object it sees (upstream's `ClaimObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and still matching.
    Keep,
    /// Not ours to touch: another controller's, a non-matching orphan, an orphan being
    /// deleted, or we are being deleted ourselves.
    Ignore,
    /// A matching orphan: take it (after re-checking the controller).
    Adopt,
    /// Ours but no longer matching: drop our controller reference.
    Release,
}

/// upstream `ClaimObject`'s decision for `object` and the controller `owner`; `matches`: whether
/// the controller's selector (and any filter of its own) selects the object.
pub fn claim(object: &ObjectMeta, owner: &ObjectMeta, matches: bool) -> Claim {
    let owner_deleting = owner.deletion_timestamp.is_some();
    match controller_ref(object) {
        Some(r) if Some(&r.uid) != owner.uid.as_ref() => Claim::Ignore,
        Some(_) if matches => Claim::Keep,
        // Releasing while being deleted would orphan objects the GC is about to remove.
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches || object.deletion_timestamp.is_some() => Claim::Ignore,
        None if object.namespace != owner.namespace => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// The strategic merge patch that makes `owner_ref` the controller of the object with `uid`.
pub fn adopt_patch(owner_ref: &OwnerReference, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [owner_ref], "uid": uid}})
}

/// The strategic merge patch that drops the reference to the owner with `owner_uid` from the
/// object with `uid`.
pub fn release_patch(owner_uid: &str, uid: &str) -> serde_json::Value {
    json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}})
}

/// upstream `RecheckDeletionTimestamp`: `Ok` when the live `owner` is the same object (same UID)
/// and not being deleted; else why not to adopt for it.
pub async fn recheck_owner<K>(client: &Client, owner: &K) -> Result<(), String>
where
    K: Object + Resource<DynamicType = ()>,
{
    let meta = owner.meta();
    let (ns, name) = (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    );
    let api: Api<K> = client.api(Some(ns));
    let fresh = api.get(name).await.map_err(|err| err.to_string())?;
    let fresh_meta = fresh.meta();
    if fresh_meta.uid != meta.uid {
        return Err(format!(
            "original {} {ns}/{name} is gone: got uid {}, wanted {}",
            K::kind(&()),
            fresh_meta.uid.as_deref().unwrap_or(""),
            meta.uid.as_deref().unwrap_or("")
        ));
    }
    if let Some(ts) = &fresh_meta.deletion_timestamp {
        return Err(format!("{ns}/{name} has just been deleted at {}", ts.0));
    }
    Ok(())
}

/// upstream `ClaimPods`: of `candidates` (pods of the owner's namespace), the ones `owner`
/// controls after adopting the matching orphans and releasing its pods that stopped matching;
/// `matches` is the owner's selector (and filter). The owner is re-read once per call, and only
/// when there is something to adopt. A pod that is gone or was replaced (the UID precondition)
/// is skipped; any other failed adoption or release fails the call, after all were tried.
pub async fn claim_pods<K>(
    client: &Client,
    owner: &K,
    candidates: impl IntoIterator<Item = Arc<Pod>>,
    matches: impl Fn(&Pod) -> bool,
) -> anyhow::Result<Vec<Arc<Pod>>>
where
    K: Object + Resource<DynamicType = ()>,
{
    let meta = owner.meta();
    let api: Api<Pod> = client.api(Some(meta.namespace.as_deref().unwrap_or_default()));
    let owner_uid = meta.uid.clone().unwrap_or_default();
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    let mut can_adopt: Option<Result<(), String>> = None;
    for pod in candidates {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
        let (patch, adopting) = match claim(&pod.metadata, meta, matches(&pod)) {
            Claim::Keep => {
                claimed.push(pod);
                continue;
            }
            Claim::Ignore => continue,
            Claim::Adopt => {
                if can_adopt.is_none() {
                    can_adopt = Some(recheck_owner(client, owner).await);
                }
                if let Some(Err(err)) = &can_adopt {
                    errors.push(format!("cannot adopt pod {pod_name}: {err}"));
                    continue;
                }
                (adopt_patch(&new_controller_ref(owner), &pod_uid), true)
            }
            Claim::Release => (release_patch(&owner_uid, &pod_uid), false),
        };
        match api
            .patch(&pod_name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(adopted) if adopting => claimed.push(Arc::new(adopted)),
            Ok(_) => {}
            // Gone, or replaced by a pod of the same name (the UID precondition).
            Err(err) if err.is_not_found() || is_invalid(&err) => {}
            Err(err) if adopting => errors.push(format!("adopting pod {pod_name}: {err}")),
            Err(err) => errors.push(format!("releasing pod {pod_name}: {err}")),
        }
    }
    if errors.is_empty() {
        Ok(claimed)
    } else {
        Err(anyhow!("{}", errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn meta(ns: &str, uid: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(uid.into()),
            namespace: Some(ns.into()),
            uid: Some(uid.into()),
            ..ObjectMeta::default()
        }
    }

    fn owned_by(mut object: ObjectMeta, uid: &str, controller: bool) -> ObjectMeta {
        object.owner_references = Some(vec![OwnerReference {
            uid: uid.into(),
            controller: Some(controller),
            ..OwnerReference::default()
        }]);
        object
    }

    fn deleting(mut object: ObjectMeta) -> ObjectMeta {
        object.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        object
    }

    #[test]
    fn claim_decisions() {
        let owner = meta("ns", "owner");
        let pod = meta("ns", "pod");
        let cases = [
            (
                "ours and matching: keep",
                owned_by(pod.clone(), "owner", true),
                &owner,
                true,
                Claim::Keep,
            ),
            (
                "ours, not matching: release",
                owned_by(pod.clone(), "owner", true),
                &owner,
                false,
                Claim::Release,
            ),
            (
                "ours, not matching, owner deleting: leave it",
                owned_by(pod.clone(), "owner", true),
                &deleting(owner.clone()),
                false,
                Claim::Ignore,
            ),
            (
                "ours, matching, owner deleting: keep",
                owned_by(pod.clone(), "owner", true),
                &deleting(owner.clone()),
                true,
                Claim::Keep,
            ),
            (
                "another controller's",
                owned_by(pod.clone(), "other", true),
                &owner,
                true,
                Claim::Ignore,
            ),
            (
                "a non-controller reference is no claim",
                owned_by(pod.clone(), "other", false),
                &owner,
                true,
                Claim::Adopt,
            ),
            (
                "matching orphan: adopt",
                pod.clone(),
                &owner,
                true,
                Claim::Adopt,
            ),
            (
                "non-matching orphan",
                pod.clone(),
                &owner,
                false,
                Claim::Ignore,
            ),
            (
                "orphan being deleted",
                deleting(pod.clone()),
                &owner,
                true,
                Claim::Ignore,
            ),
            (
                "orphan, owner deleting",
                pod.clone(),
                &deleting(owner.clone()),
                true,
                Claim::Ignore,
            ),
            (
                "orphan of another namespace",
                meta("elsewhere", "pod"),
                &owner,
                true,
                Claim::Ignore,
            ),
        ];
        for (case, object, owner, matches, want) in cases {
            assert_eq!(claim(&object, owner, matches), want, "{case}");
        }
    }

    #[test]
    fn patches_carry_the_uid_precondition() {
        let owner = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "rs".into(),
            uid: "rs-uid".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        assert_eq!(
            adopt_patch(&owner, "pod-uid"),
            json!({"metadata": {
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "rs-uid",
                    "controller": true, "blockOwnerDeletion": true,
                }],
                "uid": "pod-uid",
            }})
        );
        assert_eq!(
            release_patch("rs-uid", "pod-uid"),
            json!({"metadata": {
                "ownerReferences": [{"$patch": "delete", "uid": "rs-uid"}],
                "uid": "pod-uid",
            }})
        );
    }
}
