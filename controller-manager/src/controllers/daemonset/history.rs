//! The DaemonSet's template history as ControllerRevisions (upstream's `constructHistory`,
//! `snapshot` and `cleanupHistory`): a revision stores the template as the patch
//! `{"spec":{"template":{..., "$patch":"replace"}}}`, is named `<daemonset>-<hash>` and labelled
//! `controller-revision-hash: <hash>`; the revision matching the current template is the
//! current one (renumbered to the highest number when a rollback makes an old one current);
//! old revisions no live pod uses are pruned down to `revisionHistoryLimit`.
//!
//! Not implemented: adopting orphaned revisions and deduplicating equal revisions (upstream's
//! `dedupCurHistories`); we take the highest-numbered match.

use std::collections::HashSet;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

use super::plan::REVISION_HASH_LABEL;

/// The apiserver's default `revisionHistoryLimit`.
pub const DEFAULT_HISTORY_LIMIT: i32 = 10;

/// FNV-1a, 32 bits: the hash upstream's `ComputeHash` uses.
fn fnv32a(chunks: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in chunks.iter().flat_map(|c| c.iter()) {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// upstream `rand.SafeEncodeString`: no vowels, so hashes never spell words.
fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|b| char::from(ALPHANUMS[usize::from(b) % ALPHANUMS.len()]))
        .collect()
}

/// The revision hash of the DaemonSet's template and collision count. Upstream hashes Go's
/// dump of the struct; we hash its JSON, so values differ from upstream's but are stable, and a
/// bumped collision count gives a new name.
pub fn compute_hash(ds: &DaemonSet, collision_count: Option<i32>) -> String {
    let template = ds.spec.as_ref().map(|s| &s.template);
    // Serializing a typed object cannot fail.
    let bytes = serde_json::to_vec(&template).unwrap_or_default();
    let count = collision_count.map(|c| c.to_le_bytes()).unwrap_or_default();
    let count: &[u8] = if collision_count.is_some() {
        &count
    } else {
        &[]
    };
    safe_encode(&fnv32a(&[&bytes, count]).to_string())
}

/// upstream `getPatch`: the template as a replacing strategic merge patch.
pub fn revision_data(ds: &DaemonSet) -> serde_json::Value {
    let template = ds.spec.as_ref().map(|s| &s.template);
    let mut template = serde_json::to_value(template).unwrap_or_default();
    if let Some(obj) = template.as_object_mut() {
        obj.insert("$patch".into(), "replace".into());
    }
    serde_json::json!({ "spec": { "template": template } })
}

/// upstream `Match`: whether `revision` stores the DaemonSet's current template.
pub fn matches(ds: &DaemonSet, revision: &ControllerRevision) -> bool {
    revision.data.as_ref().map(|d| &d.0) == Some(&revision_data(ds))
}

/// The revision hash a revision carries (its label), if any.
pub fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision
        .metadata
        .labels
        .as_ref()?
        .get(REVISION_HASH_LABEL)
        .map(String::as_str)
}

/// upstream `snapshot`'s object: the revision for the current template.
pub fn new_revision(
    ds: &DaemonSet,
    owner: OwnerReference,
    hash: &str,
    number: i64,
) -> ControllerRevision {
    let mut labels = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_string(), hash.to_string());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!(
                "{}-{hash}",
                ds.metadata.name.as_deref().unwrap_or("")
            )),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: ds.metadata.annotations.clone(),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(revision_data(ds))),
        revision: number,
    }
}

/// What `constructHistory` finds among the DaemonSet's revisions.
#[derive(Debug, Clone, PartialEq)]
pub enum Current {
    /// This revision is current; `renumber` when it must become the newest (a rollback).
    Existing {
        name: String,
        hash: String,
        renumber: Option<i64>,
    },
    /// No revision matches: create one with this number.
    Create { number: i64 },
}

/// Picks the current revision among the DaemonSet's `revisions`.
pub fn find_current(ds: &DaemonSet, revisions: &[&ControllerRevision]) -> Current {
    let (current, old): (Vec<&ControllerRevision>, Vec<&ControllerRevision>) =
        revisions.iter().partition(|r| matches(ds, r));
    let newest_old = old.iter().map(|r| r.revision).max().unwrap_or(0);
    match current.iter().max_by_key(|r| r.revision) {
        None => Current::Create {
            number: newest_old + 1,
        },
        Some(cur) => {
            let name = cur.metadata.name.clone().unwrap_or_default();
            // A revision without our label (made by something else) still names a hash.
            let hash = hash_of(cur).map(str::to_string).unwrap_or_else(|| {
                let prefix = format!("{}-", ds.metadata.name.as_deref().unwrap_or(""));
                name.strip_prefix(&prefix).unwrap_or(&name).to_string()
            });
            Current::Existing {
                name,
                hash,
                renumber: (cur.revision <= newest_old).then_some(newest_old + 1),
            }
        }
    }
}

/// upstream `cleanupHistory`: the old revisions to delete, oldest first, so that at most
/// `limit` remain; revisions a live pod was made from are kept.
pub fn revisions_to_prune(
    old: &[&ControllerRevision],
    live_hashes: &HashSet<String>,
    limit: i32,
) -> Vec<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    let Some(mut excess) = old.len().checked_sub(limit).filter(|n| *n > 0) else {
        return Vec::new();
    };
    let mut candidates: Vec<&&ControllerRevision> = old
        .iter()
        .filter(|r| hash_of(r).is_none_or(|h| !live_hashes.contains(h)))
        .collect();
    candidates.sort_by_key(|r| r.revision);
    let mut doomed = Vec::new();
    for r in candidates {
        if excess == 0 {
            break;
        }
        doomed.push(r.metadata.name.clone().unwrap_or_default());
        excess -= 1;
    }
    doomed
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};

    use super::*;

    fn ds(image: &str) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            spec: Some(DaemonSetSpec {
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "agent".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "main".into(),
                            image: Some(image.into()),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..DaemonSetSpec::default()
            }),
            status: None,
        }
    }

    fn revision_of(d: &DaemonSet, number: i64) -> ControllerRevision {
        let hash = compute_hash(d, None);
        new_revision(d, OwnerReference::default(), &hash, number)
    }

    #[test]
    fn hash_moves_with_template_and_collisions() {
        let a = compute_hash(&ds("a"), None);
        assert_eq!(a, compute_hash(&ds("a"), None), "stable");
        assert_ne!(a, compute_hash(&ds("b"), None));
        assert_ne!(a, compute_hash(&ds("a"), Some(1)));
        assert!(a.chars().all(|c| !"aeiou".contains(c)));
    }

    #[test]
    fn revision_carries_template_and_labels() {
        let d = ds("a");
        let r = revision_of(&d, 3);
        assert!(matches(&d, &r));
        assert!(!matches(&ds("b"), &r));
        let hash = compute_hash(&d, None);
        assert_eq!(r.metadata.name, Some(format!("agent-{hash}")));
        assert_eq!(hash_of(&r), Some(hash.as_str()));
        assert_eq!(r.revision, 3);
        assert_eq!(
            r.data
                .as_ref()
                .map(|d| d.0["spec"]["template"]["$patch"].clone()),
            Some(serde_json::json!("replace"))
        );
    }

    #[test]
    fn current_revision_is_found_created_or_renumbered() {
        let (v1, v2) = (ds("v1"), ds("v2"));
        let r1 = revision_of(&v1, 1);
        let r2 = revision_of(&v2, 2);
        assert_eq!(find_current(&v1, &[]), Current::Create { number: 1 });
        assert_eq!(
            find_current(&ds("v3"), &[&r1, &r2]),
            Current::Create { number: 3 }
        );
        let Current::Existing { hash, renumber, .. } = find_current(&v2, &[&r1, &r2]) else {
            panic!("v2 has a revision");
        };
        assert_eq!(hash, compute_hash(&v2, None));
        assert_eq!(renumber, None);
        // Rolling back to v1 makes its revision the newest.
        let Current::Existing { renumber, .. } = find_current(&v1, &[&r1, &r2]) else {
            panic!("v1 has a revision");
        };
        assert_eq!(renumber, Some(3));
    }

    #[test]
    fn pruning_keeps_the_limit_and_live_revisions() {
        let revisions: Vec<ControllerRevision> = (1..=5)
            .map(|n| revision_of(&ds(&format!("v{n}")), n))
            .collect();
        let refs: Vec<&ControllerRevision> = revisions.iter().collect();
        let live: HashSet<String> = [compute_hash(&ds("v1"), None)].into();
        let doomed = revisions_to_prune(&refs, &live, 2);
        let names = |n: i64| {
            revisions[usize::try_from(n - 1).unwrap_or(0)]
                .metadata
                .name
                .clone()
                .unwrap_or_default()
        };
        assert_eq!(doomed, vec![names(2), names(3), names(4)], "v1 is live");
        assert!(revisions_to_prune(&refs, &live, 10).is_empty());
        assert_eq!(
            revisions_to_prune(&refs, &HashSet::new(), 4),
            vec![names(1)]
        );
    }
}
