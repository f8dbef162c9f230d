//! The set's revision history (upstream's `pkg/controller/history` as the StatefulSet
//! controller uses it): each distinct pod template is stored once as a ControllerRevision named
//! `<set>-<hash>` whose data is the patch `{"spec":{"template":{..., "$patch":"replace"}}}`
//! (the format `kubectl rollout undo` applies), numbered by `revision`. Choosing the update
//! revision reuses the newest one when the template is unchanged, renumbers an older equal one
//! (a rollback), or creates a new one; the current revision is the one `status.currentRevision`
//! names. Old revisions no pod uses are deleted beyond `revisionHistoryLimit`.
//!
//! The hash is upstream's: FNV-1 (32 bit) over the revision data bytes, then the collision
//! count in decimal, rendered with `SafeEncodeString`. The bytes are our canonical JSON (keys
//! sorted, as Go's map encoding sorts them) of the template as the apiserver returned it;
//! upstream encodes its Go structs, which print a few empty fields we omit, so names can differ
//! from upstream's for the same template. They are stable for us, which is what matters.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{json, Value};

/// The label carrying a revision's hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// FNV-1, 32 bits (Go's `fnv.New32`; note: not FNV-1a).
pub fn fnv1_32(chunks: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for chunk in chunks {
        for b in *chunk {
            hash = hash.wrapping_mul(0x0100_0193);
            hash ^= u32::from(*b);
        }
    }
    hash
}

/// Upstream's `rand.SafeEncodeString`: each character mapped onto an alphabet without vowels.
pub fn safe_encode(s: &str) -> String {
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    s.bytes()
        .map(|c| char::from(ALPHANUMS[usize::from(c) % ALPHANUMS.len()]))
        .collect()
}

/// The revision data for a template: a strategic merge patch replacing `spec.template`.
pub fn revision_data(template: &PodTemplateSpec) -> Value {
    let mut template = serde_json::to_value(template).unwrap_or_else(|_| json!({}));
    if let Some(map) = template.as_object_mut() {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    json!({"spec": {"template": template}})
}

/// upstream `HashControllerRevision`.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    // serde_json's default map is ordered, so this is canonical (sorted keys).
    let bytes = serde_json::to_vec(data).unwrap_or_default();
    let probe = collision_count.map(|c| c.to_string()).unwrap_or_default();
    safe_encode(&fnv1_32(&[&bytes, probe.as_bytes()]).to_string())
}

/// upstream `ControllerRevisionName`: the set's name (cut to 223 characters) and the hash.
pub fn revision_name(set_name: &str, hash: &str) -> String {
    let prefix: String = set_name.chars().take(223).collect();
    format!("{prefix}-{hash}")
}

/// upstream `newRevision`: the revision for the set's current template, numbered `number`,
/// labelled with the template's labels and the hash, annotated with the set's annotations.
pub fn new_revision(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    owner: OwnerReference,
    number: i64,
    collision_count: i32,
) -> ControllerRevision {
    let data = revision_data(template);
    let hash = hash(&data, Some(collision_count));
    let mut labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.to_string(), hash.clone());
    let annotations: BTreeMap<String, String> =
        set.metadata.annotations.clone().unwrap_or_default();
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(
                set.metadata.name.as_deref().unwrap_or_default(),
                &hash,
            )),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    }
}

/// Renames `revision` for `collision_count` (after a name collision with different data).
pub fn rehash(revision: &mut ControllerRevision, set_name: &str, collision_count: i32) {
    let data = revision
        .data
        .as_ref()
        .map(|d| d.0.clone())
        .unwrap_or(Value::Null);
    let hash = hash(&data, Some(collision_count));
    revision.metadata.name = Some(revision_name(set_name, &hash));
    revision
        .metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(HASH_LABEL.to_string(), hash);
}

/// upstream `ApplyRevision`: the template a revision restores.
pub fn template_of(revision: &ControllerRevision) -> Result<PodTemplateSpec, String> {
    let name = revision.metadata.name.as_deref().unwrap_or_default();
    let mut template = revision
        .data
        .as_ref()
        .and_then(|d| d.0.pointer("/spec/template"))
        .cloned()
        .ok_or_else(|| format!("ControllerRevision {name} has no spec.template"))?;
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    serde_json::from_value(template)
        .map_err(|err| format!("ControllerRevision {name} holds an invalid template: {err}"))
}

/// upstream `EqualRevision`: the same data (compared as JSON values, so key order and
/// whitespace from the apiserver do not matter).
pub fn equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    let data = |r: &ControllerRevision| r.data.as_ref().map(|d| d.0.clone());
    data(a) == data(b)
}

/// upstream `SortControllerRevisions`: by revision number, then creation time, then name.
pub fn sort(revisions: &mut [Arc<ControllerRevision>]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                let created =
                    |r: &ControllerRevision| r.metadata.creation_timestamp.as_ref().map(|t| t.0);
                match (created(a), created(b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    _ => Ordering::Equal,
                }
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// upstream `nextRevision` over sorted revisions.
pub fn next_number(sorted: &[Arc<ControllerRevision>]) -> i64 {
    sorted.last().map_or(1, |r| r.revision + 1)
}

/// How the update revision is obtained.
#[derive(Debug, Clone)]
pub enum UpdateRevision {
    /// The newest revision already holds the template.
    Existing(Arc<ControllerRevision>),
    /// An older revision holds it (a rollback): give it this number, the newest.
    Renumber(Arc<ControllerRevision>, i64),
    /// No revision holds it: create this one.
    Create(Box<ControllerRevision>),
}

/// upstream `getStatefulSetRevisions`, the decision half: `candidate` is the revision for the
/// set's template (from [`new_revision`] numbered [`next_number`]).
pub fn choose_update(
    sorted: &[Arc<ControllerRevision>],
    candidate: ControllerRevision,
) -> UpdateRevision {
    let newest_equal = sorted.iter().rev().find(|r| equal(r, &candidate));
    match (newest_equal, sorted.last()) {
        (Some(found), Some(last)) if Arc::ptr_eq(found, last) => {
            UpdateRevision::Existing(found.clone())
        }
        (Some(found), _) => UpdateRevision::Renumber(found.clone(), candidate.revision),
        (None, _) => UpdateRevision::Create(Box::new(candidate)),
    }
}

/// The revision `status.currentRevision` names, if it still exists.
pub fn find_current<'a>(
    sorted: &'a [Arc<ControllerRevision>],
    current_name: Option<&str>,
) -> Option<&'a Arc<ControllerRevision>> {
    let name = current_name?;
    sorted
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
}

/// upstream `truncateHistory`: the names of the oldest revisions to delete so that at most
/// `limit` revisions remain that are neither current, update, nor used by a pod.
pub fn to_truncate(
    sorted: &[Arc<ControllerRevision>],
    live: &HashSet<&str>,
    limit: i32,
) -> Vec<String> {
    let history: Vec<&Arc<ControllerRevision>> = sorted
        .iter()
        .filter(|r| !live.contains(r.metadata.name.as_deref().unwrap_or_default()))
        .collect();
    let limit = usize::try_from(limit).unwrap_or(0);
    if history.len() <= limit {
        return Vec::new();
    }
    history[..history.len() - limit]
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .collect()
}
