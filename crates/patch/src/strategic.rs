//! Strategic merge patch, applied the way k8s.io/apimachinery/pkg/util/strategicpatch applies it
//! server-side (`StrategicMergeMapPatch`: parallel lists merged, unmatched nulls ignored).
//!
//! Maps merge recursively and `null` deletes a member. A list is replaced unless its field has
//! patch strategy `merge`: lists of objects then merge element by element on the merge key, lists
//! of primitives become a union. Directives: `$patch: replace | delete` on a map, `$patch:
//! replace | delete` as a list element, `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
//! `$setElementOrder/<field>`. Anything else named `$patch` is rejected, as upstream does.
//!
//! Order of a merged list, as upstream: with `$setElementOrder` the listed order wins, then the
//! patch's, then the live object's. Without it, items named in the patch take the patch's
//! relative order, the others keep the live order, and the two are interleaved by live position,
//! so an item the live list lacks lands *before* the remaining live items (the new container of
//! `kubectl patch` is listed first).
//!
//! Where upstream would copy a value the live object lacks verbatim and rely on decoding into a Go
//! struct to drop leftovers, this module strips them itself (nulls and directive keys), because
//! here the result is stored as JSON as it is.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::json_patch::go_kind;
use crate::meta::{FieldMeta, PatchMeta};
use crate::PatchError;

const DIRECTIVE_MARKER: &str = "$patch";
const DELETE_DIRECTIVE: &str = "delete";
const REPLACE_DIRECTIVE: &str = "replace";
const MERGE_DIRECTIVE: &str = "merge";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";

// Upstream's sentinel errors (k8s.io/apimachinery/pkg/util/mergepatch), which its apiserver maps
// to 400 or 422; every other failure reaches the client as a 500.
const ERR_BAD_JSON_DOC: &str = "invalid JSON document";
const ERR_NO_LIST_OF_LISTS: &str = "lists of lists are not supported";
const ERR_BAD_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_BAD_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_BAD_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";

/// Applies a strategic merge patch to `doc`. `meta` is the kind's patch metadata (see
/// [`crate::builtin`]); without it every list is atomic and every map merges.
///
/// `doc` must be an object; `patch` must be an object (a `null` patch changes nothing).
pub fn apply(doc: &Value, patch: &Value, meta: Option<&PatchMeta>) -> Result<Value, PatchError> {
    let Value::Object(original) = doc else {
        return Err(PatchError::BadRequest(ERR_BAD_JSON_DOC.to_string()));
    };
    let patch = match patch {
        Value::Object(patch) => patch.clone(),
        Value::Null => return Ok(doc.clone()),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_kind(other)
            )))
        }
    };
    merge_map(original.clone(), patch, meta.map(PatchMeta::field_slice)).map(Value::Object)
}

/// The metadata in scope while merging one map: the fields of its struct type, if known.
type Fields = Option<&'static [FieldMeta]>;

/// What the merge needs to know about one field.
#[derive(Clone, Copy, Default)]
struct FieldInfo {
    merges: bool,
    replaces: bool,
    merge_key: Option<&'static str>,
    meta: Option<&'static PatchMeta>,
}

impl FieldInfo {
    fn of(fields: Fields, name: &str) -> Self {
        match fields.and_then(|f| f.iter().find(|f| f.name == name)) {
            None => FieldInfo::default(),
            Some(f) => FieldInfo {
                merges: f.strategy.is_some_and(|s| s.merges()),
                replaces: f.strategy.is_some_and(|s| s.replaces()),
                merge_key: f.merge_key,
                meta: f.meta,
            },
        }
    }

    fn child(&self) -> Fields {
        self.meta.map(PatchMeta::field_slice)
    }
}

fn internal(msg: String) -> PatchError {
    PatchError::Internal(msg)
}

/// Go's type name for a decoded JSON value, used in upstream's type assertion errors.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

fn expected_map(got: &Value) -> PatchError {
    internal(format!(
        "expected a map[string]interface {{}}, but received a {}",
        go_type(got)
    ))
}

fn expected_slice(got: &Value) -> PatchError {
    internal(format!(
        "expected a []interface {{}}, but received a {}",
        go_type(got)
    ))
}

fn no_merge_key(map: &Map<String, Value>, key: &str) -> PatchError {
    internal(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(map.clone())
    ))
}

fn bad_patch_type(directive: &Value, map: &Map<String, Value>) -> PatchError {
    let directive = match directive {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    internal(format!(
        "unknown patch type: {directive} in map: {}",
        Value::Object(map.clone())
    ))
}

/// Splits `$prefix/field` into `field`.
fn extract_key<'k>(key: &'k str, prefix: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Ok(field),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST_PREFIX => {
            Err(PatchError::BadRequest(ERR_BAD_PRIMITIVE_LIST.to_string()))
        }
        _ => Err(PatchError::BadRequest(
            ERR_BAD_SET_ELEMENT_ORDER.to_string(),
        )),
    }
}

fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    fields: Fields,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE_MARKER) {
        return match directive.as_str() {
            Some(REPLACE_DIRECTIVE) => {
                patch.remove(DIRECTIVE_MARKER);
                Ok(patch)
            }
            Some(DELETE_DIRECTIVE) => Ok(Map::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }

    apply_retain_keys(&mut original, &mut patch)?;
    merge_set_element_order(&mut original, &mut patch, fields)?;

    // Upstream walks a Go map, in no fixed order; deletion lists go first here so that a patch
    // both deleting and adding the same primitive ends with it added.
    let (deletions, others): (Vec<_>, Vec<_>) = patch
        .into_iter()
        .partition(|(k, _)| k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX));
    for (raw_key, patch_v) in deletions.into_iter().chain(others) {
        let is_delete_list = raw_key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX);
        let key = if is_delete_list {
            extract_key(&raw_key, DELETE_FROM_PRIMITIVE_LIST_PREFIX)?.to_string()
        } else {
            raw_key
        };

        if patch_v.is_null() {
            original.remove(&key);
            continue;
        }

        let Some(slot) = original.get_mut(&key) else {
            if !is_delete_list {
                if let Some(v) = strip_new_value(patch_v) {
                    original.insert(key, v);
                }
            }
            continue;
        };

        if std::mem::discriminant(slot) != std::mem::discriminant(&patch_v) {
            if !is_delete_list {
                match strip_new_value(patch_v) {
                    Some(v) => *slot = v,
                    None => {
                        original.remove(&key);
                    }
                }
            }
            continue;
        }

        let info = FieldInfo::of(fields, &key);
        match (slot, patch_v) {
            (Value::Object(current), Value::Object(patch_map)) => {
                if info.replaces {
                    *current = patch_map;
                } else {
                    let taken = std::mem::take(current);
                    *current = merge_map(taken, patch_map, info.child())?;
                }
            }
            (Value::Array(current), Value::Array(patch_list)) => {
                let taken = std::mem::take(current);
                *current = merge_slice_handler(taken, patch_list, &info, is_delete_list)?;
            }
            (slot, patch_v) => *slot = patch_v,
        }
    }
    Ok(original)
}

/// `$retainKeys`: the map keeps only the listed keys, and the patch may not set any other.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let Value::Array(list) = retain else {
        return Err(PatchError::BadRequest(ERR_BAD_RETAIN_KEYS.to_string()));
    };
    let keep: HashSet<&str> = list.iter().filter_map(Value::as_str).collect();
    let violates = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !k.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !keep.contains(k.as_str())
    });
    if violates {
        return Err(PatchError::BadRequest(ERR_BAD_RETAIN_KEYS.to_string()));
    }
    original.retain(|k, _| keep.contains(k.as_str()));
    Ok(())
}

/// Handles every `$setElementOrder/<field>` of this map together with the `<field>` list it
/// orders, which is then removed from the patch.
fn merge_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    fields: Fields,
) -> Result<(), PatchError> {
    let directive_keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive_key in directive_keys {
        let Some(order) = patch.remove(&directive_key) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(expected_slice(&order));
        };
        let field = extract_key(&directive_key, SET_ELEMENT_ORDER_PREFIX)?.to_string();
        let original_list = list_member(original, &field)?;
        let patch_list = list_member(patch, &field)?;
        let info = FieldInfo::of(fields, &field);
        validate_patch_with_set_order(
            patch_list.as_deref().unwrap_or(&[]),
            &order,
            info.merge_key,
        )?;

        let original_items = original_list.clone().unwrap_or_default();
        let patch_items = patch_list.clone().unwrap_or_default();
        let merged = match (original_list, patch_list) {
            (Some(current), None) => current,
            (None, Some(added)) => added.into_iter().filter_map(strip_new_value).collect(),
            (Some(current), Some(patch_list)) => {
                merge_slice_handler(current, patch_list, &info, false)?
            }
            (None, None) => continue,
        };

        let (in_order, server_only) = partition(merged, &order, info.merge_key)?;
        let kind = element_kind(&[&original_items, &patch_items])?;
        let both = normalize_element_order(
            in_order,
            server_only,
            &order,
            &original_items,
            info.merge_key,
            kind == Kind::Object,
        )?;
        original.insert(field.clone(), Value::Array(both));
        patch.remove(&field);
    }
    Ok(())
}

fn list_member(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(expected_slice(other)),
    }
}

/// Upstream's check that the patch list's items appear in `$setElementOrder` in the same
/// relative order (deletions and other directive items aside).
fn validate_patch_with_set_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(patch_list.len());
    for item in patch_list {
        if merge_key.is_some() {
            let Value::Object(map) = item else {
                return Err(expected_map(item));
            };
            if map.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some(DELETE_DIRECTIVE) {
                continue;
            }
        }
        items.push(item);
    }
    let (mut pi, mut oi) = (0, 0);
    while let (Some(item), Some(ordered)) = (items.get(pi), order.get(oi)) {
        if item
            .as_object()
            .is_some_and(|m| m.contains_key(DIRECTIVE_MARKER))
        {
            pi += 1;
            continue;
        }
        if merge_key_value_equal(item, ordered, merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order.len() {
        return Err(internal(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}",
            Value::Array(patch_list.to_vec()),
            Value::Array(order.to_vec())
        )));
    }
    Ok(())
}

fn merge_key_value_equal(
    left: &Value,
    right: &Value,
    merge_key: Option<&str>,
) -> Result<bool, PatchError> {
    let Some(key) = merge_key else {
        return Ok(left == right);
    };
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let bad = if left.is_object() { right } else { left };
        return Err(expected_map(bad));
    };
    let lv = l.get(key).ok_or_else(|| no_merge_key(l, key))?;
    let rv = r.get(key).ok_or_else(|| no_merge_key(r, key))?;
    Ok(lv == rv)
}

fn merge_slice_handler(
    original: Vec<Value>,
    patch: Vec<Value>,
    info: &FieldInfo,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if info.merges {
        merge_slice(original, patch, info, is_delete_list)
    } else {
        Ok(patch.into_iter().filter_map(strip_new_value).collect())
    }
}

/// The JSON type of list elements: a merged list must hold one type, and never lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

fn kind_of(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Null,
        Value::Bool(_) => Kind::Bool,
        Value::Number(_) => Kind::Number,
        Value::String(_) => Kind::String,
        Value::Array(_) => Kind::Array,
        Value::Object(_) => Kind::Object,
    }
}

fn element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for item in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(item);
        match kind {
            None if k == Kind::Array => {
                return Err(PatchError::Unprocessable(ERR_NO_LIST_OF_LISTS.to_string()))
            }
            None => kind = Some(k),
            Some(prev) if prev != k => {
                let shown: Vec<Value> = lists.iter().map(|l| Value::Array(l.to_vec())).collect();
                return Err(internal(format!(
                    "list element types are not identical: {}",
                    Value::Array(shown)
                )));
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| internal("no elements in any of the given slices".to_string()))
}

/// A hashable identity for matching items: the merge key's value for objects in a keyed list, the
/// item itself otherwise. `None` when an object lacks the key (such items match each other, as
/// Go's nil does).
fn identity(item: &Value, merge_key: Option<&str>) -> Option<String> {
    let v = match merge_key {
        Some(key) => item.as_object()?.get(key)?,
        None => item,
    };
    serde_json::to_string(v).ok()
}

/// First position of each identity in a list.
struct Positions(HashMap<Option<String>, usize>);

impl Positions {
    fn new(list: &[Value], merge_key: Option<&str>) -> Self {
        let mut map = HashMap::with_capacity(list.len());
        for (i, item) in list.iter().enumerate() {
            map.entry(identity(item, merge_key)).or_insert(i);
        }
        Positions(map)
    }

    fn of(&self, item: &Value, merge_key: Option<&str>) -> Option<usize> {
        self.0.get(&identity(item, merge_key)).copied()
    }
}

fn merge_slice(
    original: Vec<Value>,
    patch: Vec<Value>,
    info: &FieldInfo,
    is_delete_list: bool,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    let kind = element_kind(&[&original, &patch])?;
    if kind != Kind::Object {
        if is_delete_list {
            let doomed: HashSet<Option<String>> = patch.iter().map(|v| identity(v, None)).collect();
            return Ok(original
                .into_iter()
                .filter(|v| !doomed.contains(&identity(v, None)))
                .collect());
        }
        let mut seen = HashSet::new();
        let merged: Vec<Value> = original
            .iter()
            .chain(patch.iter())
            .filter(|v| seen.insert(identity(v, None)))
            .cloned()
            .collect();
        let (in_patch, server_only) = partition(merged, &patch, None)?;
        return normalize_element_order(in_patch, server_only, &patch, &original, None, false);
    }

    let Some(key) = info.merge_key else {
        return Err(internal(
            "cannot merge lists without merge key for type map".to_string(),
        ));
    };
    let (original, patch) = merge_slice_with_special_elements(original, patch, key)?;
    let server_order = original.clone();
    let merged = merge_slice_without_special_elements(original, &patch, key, info.meta)?;
    let (in_patch, server_only) = partition(merged, &patch, Some(key))?;
    normalize_element_order(
        in_patch,
        server_only,
        &patch,
        &server_order,
        Some(key),
        true,
    )
}

/// Applies the list-element directives: `$patch: delete` removes every live element with that
/// key, `$patch: replace` makes the remaining patch elements the whole list.
fn merge_slice_with_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(map) = &item else {
            return Err(expected_map(&item));
        };
        let Some(directive) = map.get(DIRECTIVE_MARKER) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some(DELETE_DIRECTIVE) => {
                let value = map.get(key).ok_or_else(|| no_merge_key(map, key))?;
                let mut kept = Vec::with_capacity(original.len());
                for (i, live) in original.into_iter().enumerate() {
                    let Value::Object(live_map) = &live else {
                        return Err(internal(format!("value for key {i} is not a map.")));
                    };
                    if live_map.get(key) != Some(value) {
                        kept.push(live);
                    }
                }
                original = kept;
            }
            // Keep scanning so the other directive elements are dropped too.
            Some(REPLACE_DIRECTIVE) => replace = true,
            Some(MERGE_DIRECTIVE) => {
                return Err(internal(
                    "merging lists cannot yet be specified in the patch".to_string(),
                ))
            }
            _ => return Err(bad_patch_type(directive, map)),
        }
    }
    if replace {
        Ok((plain, Vec::new()))
    } else {
        Ok((original, plain))
    }
}

/// Merges each patch element into the first live element with the same key, appending those
/// the live list lacks (ordering happens afterwards).
fn merge_slice_without_special_elements(
    mut original: Vec<Value>,
    patch: &[Value],
    key: &str,
    meta: Option<&'static PatchMeta>,
) -> Result<Vec<Value>, PatchError> {
    let mut index: HashMap<String, usize> = HashMap::with_capacity(original.len());
    for (i, live) in original.iter().enumerate() {
        let Value::Object(live_map) = live else {
            return Err(internal(format!("value for key {i} is not a map.")));
        };
        if let Some(id) = live_map
            .get(key)
            .and_then(|v| serde_json::to_string(v).ok())
        {
            index.entry(id).or_insert(i);
        }
    }
    for item in patch {
        let Value::Object(map) = item else {
            return Err(expected_map(item));
        };
        let value = map.get(key).ok_or_else(|| no_merge_key(map, key))?;
        let id = serde_json::to_string(value).unwrap_or_default();
        match index.get(&id).and_then(|&i| original.get_mut(i)) {
            Some(Value::Object(live)) => {
                let taken = std::mem::take(live);
                *live = merge_map(taken, map.clone(), meta.map(PatchMeta::field_slice))?;
            }
            _ => {
                if let Some(v) = strip_new_value(item.clone()) {
                    index.insert(id, original.len());
                    original.push(v);
                }
            }
        }
    }
    Ok(original)
}

/// Splits `items` into those present in `by` (by identity) and the rest, keeping their order.
/// In a keyed list every item must be an object carrying the key.
fn partition(
    items: Vec<Value>,
    by: &[Value],
    merge_key: Option<&str>,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if let Some(key) = merge_key {
        if let Some(i) = by.iter().position(|item| !item.is_object()) {
            return Err(internal(format!("value for key {i} is not a map.")));
        }
        for item in &items {
            let Value::Object(map) = item else {
                return Err(expected_map(item));
            };
            if !map.contains_key(key) {
                return Err(no_merge_key(map, key));
            }
        }
    }
    let present: HashSet<Option<String>> = by
        .iter()
        .map(|v| identity(v, merge_key))
        .filter(|id| merge_key.is_none() || id.is_some())
        .collect();
    Ok(items
        .into_iter()
        .partition(|item| present.contains(&identity(item, merge_key))))
}

/// Orders `in_patch` by `patch_order` and `server_only` by `server_order`, then interleaves them
/// by live position (upstream's `normalizeElementOrder` + `mergeSortedSlice`).
fn normalize_element_order(
    in_patch: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
    keyed: bool,
) -> Result<Vec<Value>, PatchError> {
    let in_patch = normalize_slice_order(in_patch, patch_order, merge_key, keyed)?;
    let server_only = normalize_slice_order(server_only, server_order, merge_key, keyed)?;

    let live = Positions::new(server_order, merge_key);
    let mut out = Vec::with_capacity(in_patch.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = in_patch.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // A live-only item goes first only when both are live and it comes earlier.
            (Some(l), Some(r)) => matches!(
                (live.of(l, merge_key), live.of(r, merge_key)),
                (Some(a), Some(b)) if a < b
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// Stable sort of `items` by position in `order`; items missing from `order` sort first, and
/// `$patch: delete` elements go last.
fn normalize_slice_order(
    items: Vec<Value>,
    order: &[Value],
    merge_key: Option<&str>,
    keyed: bool,
) -> Result<Vec<Value>, PatchError> {
    let mut deletes = Vec::new();
    let mut rest = Vec::with_capacity(items.len());
    if keyed {
        let key = merge_key.unwrap_or_default();
        for item in items.iter().chain(order.iter()) {
            let Value::Object(map) = item else {
                return Err(expected_map(item));
            };
            if !map.contains_key(key) {
                return Err(no_merge_key(map, key));
            }
        }
        for item in items {
            let is_delete = item
                .get(DIRECTIVE_MARKER)
                .and_then(Value::as_str)
                .is_some_and(|d| d == DELETE_DIRECTIVE);
            if is_delete {
                deletes.push(item);
            } else {
                rest.push(item);
            }
        }
    } else {
        rest = items;
    }
    let positions = Positions::new(order, merge_key);
    let mut keyed_items: Vec<(Option<usize>, Value)> = rest
        .into_iter()
        .map(|item| (positions.of(&item, merge_key), item))
        .collect();
    keyed_items.sort_by_key(|(pos, _)| *pos);
    let mut out: Vec<Value> = keyed_items.into_iter().map(|(_, item)| item).collect();
    out.extend(deletes);
    Ok(out)
}

/// Prepares a patch value the live object lacks: nulls and directives are dropped, and a map that
/// is itself a `$patch` directive vanishes (upstream's `discardNullValuesFromPatch` and
/// `removeDirectives`; the parallel-list and retainKeys keys go too, see the module comment).
fn strip_new_value(value: Value) -> Option<Value> {
    match value {
        Value::Object(map) => {
            if map.contains_key(DIRECTIVE_MARKER) {
                return None;
            }
            let mut out = Map::new();
            for (k, v) in map {
                if v.is_null() || is_directive_key(&k) {
                    continue;
                }
                if let Some(v) = strip_new_value(v) {
                    out.insert(k, v);
                }
            }
            Some(Value::Object(out))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(strip_new_value).collect(),
        )),
        other => Some(other),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == RETAIN_KEYS_DIRECTIVE
        || key.starts_with(SET_ELEMENT_ORDER_PREFIX)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
}

#[cfg(test)]
mod tests;
