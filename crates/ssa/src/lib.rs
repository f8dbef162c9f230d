//! Server-side apply and `metadata.managedFields`, as upstream's
//! k8s.io/apimachinery/pkg/util/managedfields and sigs.k8s.io/structured-merge-diff do them:
//! pure logic over `serde_json::Value`, no I/O.
//!
//! - [`apply`] serves `PATCH` with `application/apply-patch+yaml`: merge the applied configuration
//!   onto the live object, detect conflicts with other managers, prune what the applier stopped
//!   applying, and record the applier's `Apply` entry.
//! - [`update`] records ownership for every other write (create, update, patch) in the writer's
//!   `Update` entry.
//!
//! Per-kind list and map semantics come from [`schema_for`]. The field sets exclude what upstream
//! strips (`apiVersion`, `kind`, `metadata.name`, `uid`, `resourceVersion`, `managedFields`, ...)
//! and what the resource's strategy resets: `status` on the main resource, everything but
//! `status` and `metadata` on the status subresource.

mod error;
pub mod fieldpath;
mod managed;
mod schema;
mod typed;

use serde_json::{Map, Value};

pub use error::{conflicts_message, ApplyError, Conflict};
pub use fieldpath::{Path, PathElement, Set};
pub use managed::Operation;
pub use schema::{schema_for, Field, FieldKind, ListKey, ListType, Schema, DEDUCED};

use managed::Entry;
use typed::Ty;

/// How deep the walks go: well past the JSON parser's own limit of 128, well within the stack.
pub(crate) const MAX_DEPTH: usize = 256;

/// Who is writing: the field manager name (`?fieldManager=` or derived from the user agent) and
/// the subresource written (`""` for the main resource, `"status"`, `"scale"`).
#[derive(Debug, Clone, Copy)]
pub struct Manager<'a> {
    /// The manager name.
    pub name: &'a str,
    /// The subresource, `""` for the main resource.
    pub subresource: &'a str,
}

/// Paths upstream's strip-meta manager removes from every field set.
/// The metadata no manager owns, built once.
fn strip_set() -> &'static Set {
    static STRIP: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    STRIP.get_or_init(build_strip_set)
}

fn build_strip_set() -> Set {
    let mut s = Set::new();
    let f = |n: &str| PathElement::Field(n.to_string());
    for top in ["apiVersion", "kind", "metadata"] {
        s.insert(&[f(top)]);
    }
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[f("metadata"), f(name)]);
    }
    s
}

/// Drops what the manager may not own: stripped metadata, and the fields the subresource's
/// strategy resets.
fn filter_set(set: &Set, subresource: &str) -> Set {
    static STATUS_RESET: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    static MAIN_RESET: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    let field = |n: &str| PathElement::Field(n.to_string());
    let filtered = if subresource == "status" {
        let reset = STATUS_RESET.get_or_init(|| {
            let mut reset = Set::new();
            reset.insert(&[field("metadata"), field("ownerReferences")]);
            reset.insert(&[field("metadata"), field("deletionTimestamp")]);
            reset
        });
        let (status, metadata) = (field("status"), field("metadata"));
        set.retain_top(|pe| *pe == status || *pe == metadata)
            .recursive_difference(reset)
    } else {
        let reset = MAIN_RESET.get_or_init(|| {
            let mut reset = Set::new();
            reset.insert(&[field("status")]);
            reset
        });
        set.recursive_difference(reset)
    };
    filtered.difference(strip_set())
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    v
}

fn set_managed_fields(v: &mut Value, entries: &[Entry]) {
    let encoded = managed::encode(entries);
    let Value::Object(obj) = v else { return };
    let meta = obj
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(meta) = meta {
        if encoded.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(encoded));
        }
    }
}

/// Upstream's `IgnoreManagedFieldsTimestampsTransformer`: when a write changes nothing but
/// managedFields timestamps, the old managedFields are kept, so a repeated apply is a no-op.
fn keep_old_times_on_noop(old: Option<&Value>, new: &mut Value) {
    let Some(old) = old else { return };
    if without_managed_fields(old) != without_managed_fields(new) {
        return;
    }
    let old_mf = old.pointer("/metadata/managedFields").cloned();
    let new_mf = new.pointer("/metadata/managedFields").cloned();
    let strip_time = |mf: &Option<Value>| -> Option<Vec<Value>> {
        let mut items = mf.as_ref()?.as_array()?.clone();
        for item in &mut items {
            if let Some(o) = item.as_object_mut() {
                o.remove("time");
            }
        }
        Some(items)
    };
    let (Some(o), Some(n)) = (strip_time(&old_mf), strip_time(&new_mf)) else {
        return;
    };
    if o.len() == n.len() && n.iter().all(|e| o.contains(e)) {
        if let (Some(meta), Some(old_mf)) = (
            new.get_mut("metadata").and_then(Value::as_object_mut),
            old_mf,
        ) {
            meta.insert("managedFields".into(), old_mf);
        }
    }
}

fn object_type(v: &Value) -> (&str, &str) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    (s("apiVersion"), s("kind"))
}

/// Removes from every other manager the fields `new` changed relative to `old` (and the fields
/// it removed), or reports those changes as conflicts when `force` is false. Upstream's
/// `Updater.update`.
fn take_ownership(
    entries: &mut [Entry],
    skip: Option<usize>,
    changed: &Set,
    removed: &Set,
    force: bool,
) -> Result<(), Vec<Conflict>> {
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == skip {
            continue;
        }
        for path in e.set.intersection(changed).paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: path.to_string(),
                described: e.describe(),
                identifier: e.identifier(),
            });
        }
    }
    if !force && !conflicts.is_empty() {
        conflicts.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        return Err(conflicts);
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != skip {
            e.set = e.set.difference(changed).difference(removed);
        }
    }
    Ok(())
}

/// Server-side apply of `config` (the applied configuration, parsed from YAML into JSON) by
/// `manager` onto `live` (`None`: the object does not exist and apply creates it).
///
/// Returns the new object with `metadata.managedFields` updated: the manager's `Apply` entry
/// holds exactly the fields in `config`; fields it applied before and no longer does are removed
/// from the object unless another manager owns them. Fails with the conflicts when another
/// manager owns a field whose value `config` changes and `force` is false; with `force`, the
/// applier takes those fields over. `api_version` is the resource's group/version (`apps/v1`),
/// `now` the RFC 3339 time recorded in the entry.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &Manager,
    api_version: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let Value::Object(cfg) = config else {
        return Err(ApplyError::Invalid(
            "the applied configuration must be an object".into(),
        ));
    };
    let cfg_version = cfg.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or("");
    if cfg_version.is_empty() || kind.is_empty() {
        return Err(ApplyError::Invalid(
            "the applied configuration must set apiVersion and kind".into(),
        ));
    }
    if cfg_version != api_version {
        return Err(ApplyError::Invalid(format!(
            "Incorrect version specified in apply patch. Specified patch version: {cfg_version}, expected: {api_version}"
        )));
    }
    let name = config
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err(ApplyError::Invalid(
            "metadata.name is required in an apply patch".into(),
        ));
    }
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(|v| !v.is_null())
    {
        return Err(ApplyError::Invalid(
            "metadata.managedFields must be nil".into(),
        ));
    }
    if let Some(live) = live {
        let (_, live_kind) = object_type(live);
        if !live_kind.is_empty() && live_kind != kind {
            return Err(ApplyError::Invalid(format!(
                "the kind of the applied configuration ({kind}) does not match the object ({live_kind})"
            )));
        }
    }

    let schema = schema::schema_for_object(api_version, kind);
    let ty = Ty::root(schema);
    let applied = typed::to_set(config, ty, true).map_err(|e| {
        ApplyError::Invalid(format!(
            "failed to create typed patch object ({api_version}, Kind={kind}): {e}"
        ))
    })?;
    let applied = filter_set(&applied, manager.subresource);

    let mut entries = match live {
        Some(live) => managed::decode(live.pointer("/metadata/managedFields"))
            .map_err(ApplyError::ManagedFields)?,
        None => Vec::new(),
    };
    let base = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut merged = typed::merge(&base, config, ty);

    let me = |e: &Entry| e.same_manager(manager.name, Operation::Apply, manager.subresource, "");
    let last = entries.iter().position(me).map(|i| entries.remove(i).set);
    entries.push(Entry {
        manager: manager.name.to_string(),
        operation: Operation::Apply,
        api_version: api_version.to_string(),
        subresource: manager.subresource.to_string(),
        time: Some(now.to_string()),
        set: applied,
    });
    let mine = entries.len() - 1;

    if let Some(last) = last.filter(|s| !s.is_empty()) {
        let everyone = entries.iter().fold(Set::new(), |acc, e| acc.union(&e.set));
        typed::prune(&mut merged, ty, &last, Some(&everyone), 0);
    }

    let (mut before, mut after) = (base.clone(), merged.clone());
    typed::fill_skeleton(&mut before, schema, 0);
    typed::fill_skeleton(&mut after, schema, 0);
    let cmp = typed::compare(&before, &after, ty).map_err(ApplyError::Invalid)?;
    let changed = filter_set(&cmp.added.union(&cmp.modified), manager.subresource);
    let removed = filter_set(&cmp.removed, manager.subresource);
    take_ownership(&mut entries, Some(mine), &changed, &removed, force)
        .map_err(ApplyError::Conflicts)?;
    for e in &mut entries {
        e.set = e.set.difference(strip_set());
    }

    set_managed_fields(&mut merged, &entries);
    keep_old_times_on_noop(live, &mut merged);
    Ok(merged)
}

/// The managedFields a write starts from (upstream's `decodeLiveOrNew`): the request's own
/// entries when it sets some (`[]` or `[{}]` resets them), else the live object's. A subresource
/// write always keeps the live ones.
fn entries_for_update(old: Option<&Value>, new: &Value, subresource: &str) -> Option<Vec<Entry>> {
    let live = || managed::decode(old.and_then(|o| o.pointer("/metadata/managedFields")));
    if !subresource.is_empty() {
        return live().ok();
    }
    match new.pointer("/metadata/managedFields") {
        Some(Value::Array(items)) if items.is_empty() => Some(Vec::new()),
        Some(Value::Array(items))
            if items.len() == 1 && items.first() == Some(&Value::Object(Map::new())) =>
        {
            Some(Vec::new())
        }
        Some(mf) => match managed::decode(Some(mf)) {
            Ok(entries) if !entries.is_empty() => Some(entries),
            _ => live().ok(),
        },
        None => live().ok(),
    }
}

/// Ownership bookkeeping for a write that is not an apply (create, update, patch) by `manager`,
/// recorded as operation `Update` (upstream's `FieldManager.Update`).
///
/// The fields whose values differ between `old` (`None` for a create) and `new` move to the
/// manager's `Update` entry and leave every other manager; fields `new` drops leave everyone.
/// The entry's time changes only when it gained fields. An update of an object that has no
/// managedFields yet is not tracked (upstream's skip-non-applied manager). Returns `new` with its
/// `metadata.managedFields` set.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    manager: &Manager,
    api_version: &str,
    now: &str,
) -> Value {
    let mut out = without_managed_fields(new);
    let Some(mut entries) = entries_for_update(old, new, manager.subresource) else {
        // Undecodable managedFields: upstream resets them rather than failing the write.
        return out;
    };
    if old.is_some() && entries.is_empty() {
        return out;
    }
    let (_, kind) = object_type(new);
    let schema = schema::schema_for_object(api_version, kind);
    let ty = Ty::root(schema);
    let mut base = old
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    typed::fill_skeleton(&mut base, schema, 0);
    let mut after = out.clone();
    typed::fill_skeleton(&mut after, schema, 0);
    let Ok(cmp) = typed::compare(&base, &after, ty) else {
        return out;
    };
    let changed = filter_set(&cmp.added.union(&cmp.modified), manager.subresource);
    let removed = filter_set(&cmp.removed, manager.subresource);
    // Upstream runs the write as a transient manager, so the writer's own entry is just another
    // manager here and gets the changed fields back below.
    if take_ownership(&mut entries, None, &changed, &removed, true).is_err() {
        return out;
    }
    let gained = changed;
    if !gained.is_empty() {
        let me = |e: &Entry| {
            e.same_manager(
                manager.name,
                Operation::Update,
                manager.subresource,
                api_version,
            )
        };
        match entries.iter_mut().find(|e| me(e)) {
            Some(e) => {
                e.set = e.set.union(&gained);
                e.time = Some(now.to_string());
            }
            None => entries.push(Entry {
                manager: manager.name.to_string(),
                operation: Operation::Update,
                api_version: api_version.to_string(),
                subresource: manager.subresource.to_string(),
                time: Some(now.to_string()),
                set: gained,
            }),
        }
    }
    for e in &mut entries {
        e.set = e.set.difference(strip_set());
    }
    set_managed_fields(&mut out, &entries);
    keep_old_times_on_noop(old, &mut out);
    out
}

#[cfg(test)]
mod tests;
