//! RFC 6902 JSON patch, with the behaviour of evanphx/json-patch v4 as kube-apiserver runs it.
//!
//! Upstream's quirks are kept on purpose, since clients depend on them: negative array indices
//! count from the end; `replace` of a missing object key adds it; `copy` from a missing object key
//! copies `null`; a `test` for `null` passes on a missing key; the first segment of a path is
//! ignored even when it is not empty. Error messages are upstream's, so that the 422 a client gets
//! reads the same.

use serde_json::{Map, Value};

use crate::PatchError;

/// The most operations kube-apiserver accepts in one JSON patch (`maxJSONPatchOperations`).
pub const MAX_OPERATIONS: usize = 10_000;

/// The apiserver's default bound on how many bytes `copy` operations may add
/// (`JSONPatchMaxCopyBytes`, 3 MiB): without it a few `copy` operations double a document each.
pub const MAX_COPY_BYTES: usize = 3 * 1024 * 1024;

/// Limits applied while decoding and applying a patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum number of operations; more is [`PatchError::TooManyOperations`].
    pub max_operations: usize,
    /// Maximum total size in bytes of values copied by `copy`; 0 means unlimited.
    pub max_copy_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: MAX_OPERATIONS,
            max_copy_bytes: MAX_COPY_BYTES,
        }
    }
}

/// Applies a JSON patch (an array of operations) to `doc` with the apiserver's default limits.
///
/// A malformed patch is [`PatchError::BadRequest`], too many operations
/// [`PatchError::TooManyOperations`], and an operation that does not apply (missing path, failed
/// `test`, bad index) [`PatchError::Unprocessable`]. Operations apply in order and all or nothing.
pub fn apply(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    apply_with_limits(doc, patch, Limits::default())
}

/// [`apply`] with explicit limits.
pub fn apply_with_limits(doc: &Value, patch: &Value, limits: Limits) -> Result<Value, PatchError> {
    let ops = decode(patch)?;
    if ops.len() > limits.max_operations {
        return Err(PatchError::TooManyOperations {
            max: limits.max_operations,
            got: ops.len(),
        });
    }
    let mut out = doc.clone();
    let mut copied = 0usize;
    for op in ops {
        apply_op(&mut out, op, limits, &mut copied).map_err(PatchError::Unprocessable)?;
    }
    Ok(out)
}

/// Checks the patch's outer shape the way Go's decoder does: an array of objects (a `null`
/// element decodes to an empty operation, which later fails as an unknown kind). A `null` patch
/// has no operations.
fn decode(patch: &Value) -> Result<Vec<Option<&Map<String, Value>>>, PatchError> {
    let items = match patch {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Patch",
                go_kind(other)
            )))
        }
    };
    items
        .iter()
        .map(|item| match item {
            Value::Object(op) => Ok(Some(op)),
            Value::Null => Ok(None),
            other => Err(PatchError::BadRequest(format!(
                "json: cannot unmarshal {} into Go value of type jsonpatch.Operation",
                go_kind(other)
            ))),
        })
        .collect()
}

/// The word Go's encoding/json uses for a JSON value's type in its unmarshal errors.
pub(crate) fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

const MISSING: &str = "missing value";
const INVALID_INDEX: &str = "invalid index referenced";

/// Reads a string member (`path` or `from`). `Ok(None)` when absent or null.
fn string_member<'a>(
    op: Option<&'a Map<String, Value>>,
    name: &str,
) -> Result<Option<&'a str>, String> {
    match op.and_then(|op| op.get(name)) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go value of type string",
            go_kind(other)
        )),
    }
}

fn path_of(op: Option<&Map<String, Value>>) -> Result<&str, String> {
    string_member(op, "path")?.ok_or_else(|| format!("operation missing path field: {MISSING}"))
}

fn from_of(op: Option<&Map<String, Value>>) -> Result<&str, String> {
    string_member(op, "from")?.ok_or_else(|| format!("operation, missing from field: {MISSING}"))
}

/// The operation's value: an absent `value` and an explicit `null` are both Go's nil node.
fn value_of(op: Option<&Map<String, Value>>) -> Value {
    op.and_then(|op| op.get("value"))
        .cloned()
        .unwrap_or(Value::Null)
}

fn apply_op(
    doc: &mut Value,
    op: Option<&Map<String, Value>>,
    limits: Limits,
    copied: &mut usize,
) -> Result<(), String> {
    let kind = match op.and_then(|op| op.get("op")) {
        Some(Value::String(kind)) => kind.as_str(),
        _ => "unknown",
    };
    match kind {
        "add" => op_add(doc, op),
        "remove" => op_remove(doc, op),
        "replace" => op_replace(doc, op),
        "move" => op_move(doc, op),
        "test" => op_test(doc, op),
        "copy" => op_copy(doc, op, limits, copied),
        other => Err(format!("Unexpected kind: {other}")),
    }
}

fn op_add(doc: &mut Value, op: Option<&Map<String, Value>>) -> Result<(), String> {
    let path =
        path_of(op).map_err(|_| format!("add operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("add operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    container_add(con, &key, value_of(op))
        .map_err(|e| format!("error in add for path: '{path}': {e}"))
}

fn op_remove(doc: &mut Value, op: Option<&Map<String, Value>>) -> Result<(), String> {
    let path =
        path_of(op).map_err(|_| format!("remove operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("remove operation does not apply: doc is missing path: \"{path}\": {MISSING}")
    })?;
    container_remove(con, &key)
        .map(drop)
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn op_replace(doc: &mut Value, op: Option<&Map<String, Value>>) -> Result<(), String> {
    let path = path_of(op).map_err(|e| format!("replace operation failed to decode path: {e}"))?;
    if path.is_empty() {
        let value = value_of(op);
        if !(value.is_object() || value.is_array()) {
            return Err("replace operation value must be object or array".to_string());
        }
        *doc = value;
        return Ok(());
    }
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("replace operation does not apply: doc is missing path: {path}: {MISSING}")
    })?;
    if container_get(con, &key).is_err() {
        return Err(format!(
            "replace operation does not apply: doc is missing key: {path}: {MISSING}"
        ));
    }
    container_set(con, &key, value_of(op))
        .map_err(|e| format!("error in remove for path: '{path}': {e}"))
}

fn op_move(doc: &mut Value, op: Option<&Map<String, Value>>) -> Result<(), String> {
    let from = from_of(op).map_err(|e| format!("move operation failed to decode from: {e}"))?;
    let (con, key) = find_object(doc, from).ok_or_else(|| {
        format!("move operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    container_get(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let value =
        container_remove(con, &key).map_err(|e| format!("error in move for path: '{key}': {e}"))?;
    let path = path_of(op).map_err(|e| format!("move operation failed to decode path: {e}"))?;
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("move operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    container_add(con, &key, value).map_err(|e| format!("error in move for path: '{path}': {e}"))
}

fn op_test(doc: &mut Value, op: Option<&Map<String, Value>>) -> Result<(), String> {
    let path = path_of(op).map_err(|e| format!("test operation failed to decode path: {e}"))?;
    let failed = || format!("testing value {path} failed: test failed");
    let expected = op.and_then(|op| op.get("value"));
    if path.is_empty() {
        return if expected == Some(&*doc) {
            Ok(())
        } else {
            Err(failed())
        };
    }
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("test operation does not apply: is missing path: {path}: {MISSING}")
    })?;
    let actual =
        container_get(con, &key).map_err(|e| format!("error in test for path: '{path}': {e}"))?;
    // Go decodes both a missing member and a JSON null to a nil node, and nil matches only nil.
    let actual = actual.filter(|v| !v.is_null());
    let expected = expected.filter(|v| !v.is_null());
    match (actual, expected) {
        (None, None) => Ok(()),
        (Some(a), Some(e)) if a == e => Ok(()),
        _ => Err(failed()),
    }
}

fn op_copy(
    doc: &mut Value,
    op: Option<&Map<String, Value>>,
    limits: Limits,
    copied: &mut usize,
) -> Result<(), String> {
    let from = from_of(op).map_err(|e| format!("copy operation failed to decode from: {e}"))?;
    let (con, key) = find_object(doc, from).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing from path: {from}: {MISSING}")
    })?;
    let value = container_get(con, &key)
        .map_err(|e| format!("error in copy for from: '{from}': {e}"))?
        .cloned();
    let path =
        path_of(op).map_err(|_| format!("copy operation failed to decode path: {MISSING}"))?;
    let (con, key) = find_object(doc, path).ok_or_else(|| {
        format!("copy operation does not apply: doc is missing destination path: {path}: {MISSING}")
    })?;
    // Upstream counts the encoded size of what it copies; a missing source copies nothing (nil).
    let size = match &value {
        Some(v) => serde_json::to_vec(v).map(|b| b.len()).unwrap_or(0),
        None => 0,
    };
    *copied = copied.saturating_add(size);
    if limits.max_copy_bytes > 0 && *copied > limits.max_copy_bytes {
        return Err(format!(
            "Unable to complete the copy, the accumulated size increase of copy is {}, exceeding the limit {}",
            copied, limits.max_copy_bytes
        ));
    }
    container_add(con, &key, value.unwrap_or(Value::Null))
        .map_err(|e| format!("error while adding value during copy: {e}"))
}

/// RFC 6901 unescaping: `~1` before `~0`, so `~01` stays `~1`.
fn decode_token(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// Walks to the container holding the last token of `path`. Like upstream, the first segment is
/// dropped unread (it is the empty string before the leading `/` in a well-formed pointer), and a
/// path through a missing member, a `null` or a scalar has no container.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let mut segments = path.split('/');
    segments.next();
    let mut tokens: Vec<&str> = segments.collect();
    let last = tokens.pop()?;
    let mut cur = doc;
    for token in tokens {
        let next = match container_get_mut(cur, &decode_token(token)) {
            Ok(Some(next)) => next,
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    if cur.is_object() || cur.is_array() {
        Some((cur, decode_token(last)))
    } else {
        None
    }
}

/// Go's `strconv.Atoi` error text for a token that is not an integer.
fn atoi(key: &str) -> Result<i64, String> {
    key.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {key:?}: invalid syntax"))
}

fn invalid_index(idx: i64) -> String {
    format!("Unable to access invalid index: {idx}: {INVALID_INDEX}")
}

/// Resolves an existing element index, negative ones counting from the end.
fn element_index(idx: i64, len: usize) -> Result<usize, String> {
    let len_i = i64::try_from(len).map_err(|_| invalid_index(idx))?;
    let resolved = if idx < 0 { idx + len_i } else { idx };
    if resolved < 0 || resolved >= len_i {
        return Err(invalid_index(idx));
    }
    usize::try_from(resolved).map_err(|_| invalid_index(idx))
}

fn container_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(map) => Ok(map.get(key)),
        Value::Array(items) => {
            let idx = element_index(atoi(key)?, items.len())?;
            Ok(items.get(idx))
        }
        _ => Ok(None),
    }
}

fn container_get_mut<'a>(con: &'a mut Value, key: &str) -> Result<Option<&'a mut Value>, String> {
    match con {
        Value::Object(map) => Ok(map.get_mut(key)),
        Value::Array(items) => {
            let idx = element_index(atoi(key)?, items.len())?;
            Ok(items.get_mut(idx))
        }
        _ => Ok(None),
    }
}

fn container_set(con: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match con {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            let idx = element_index(atoi(key)?, items.len())?;
            match items.get_mut(idx) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(invalid_index(i64::try_from(idx).unwrap_or(i64::MAX))),
            }
        }
        _ => Err(MISSING.to_string()),
    }
}

fn container_add(con: &mut Value, key: &str, value: Value) -> Result<(), String> {
    match con {
        Value::Object(map) => {
            map.insert(key.to_string(), value);
            Ok(())
        }
        Value::Array(items) => {
            if key == "-" {
                items.push(value);
                return Ok(());
            }
            let idx = atoi(key)
                .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
            // Inserting may target one past the end, so the bound is the grown length.
            let idx = element_index(idx, items.len().saturating_add(1))?;
            items.insert(idx, value);
            Ok(())
        }
        _ => Err(MISSING.to_string()),
    }
}

fn container_remove(con: &mut Value, key: &str) -> Result<Value, String> {
    match con {
        Value::Object(map) => map
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: {MISSING}")),
        Value::Array(items) => {
            let idx = element_index(atoi(key)?, items.len())?;
            if idx < items.len() {
                Ok(items.remove(idx))
            } else {
                Err(invalid_index(i64::try_from(idx).unwrap_or(i64::MAX)))
            }
        }
        _ => Err(MISSING.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 6902 appendix A examples that must succeed: (doc, patch, expected).
    #[test]
    fn rfc6902_appendix_successes() {
        let cases = [
            // A.1 adding an object member
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux"}]),
                json!({"baz": "qux", "foo": "bar"}),
            ),
            // A.2 adding an array element
            (
                json!({"foo": ["bar", "baz"]}),
                json!([{"op": "add", "path": "/foo/1", "value": "qux"}]),
                json!({"foo": ["bar", "qux", "baz"]}),
            ),
            // A.3 removing an object member
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "remove", "path": "/baz"}]),
                json!({"foo": "bar"}),
            ),
            // A.4 removing an array element
            (
                json!({"foo": ["bar", "qux", "baz"]}),
                json!([{"op": "remove", "path": "/foo/1"}]),
                json!({"foo": ["bar", "baz"]}),
            ),
            // A.5 replacing a value
            (
                json!({"baz": "qux", "foo": "bar"}),
                json!([{"op": "replace", "path": "/baz", "value": "boo"}]),
                json!({"baz": "boo", "foo": "bar"}),
            ),
            // A.6 moving a value
            (
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}]),
                json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}}),
            ),
            // A.7 moving an array element
            (
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}]),
                json!({"foo": ["all", "cows", "eat", "grass"]}),
            ),
            // A.8 testing a value: success
            (
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
                json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}]),
                json!({"baz": "qux", "foo": ["a", 2, "c"]}),
            ),
            // A.10 adding a nested member object
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}]),
                json!({"foo": "bar", "child": {"grandchild": {}}}),
            ),
            // A.11 ignoring unrecognized elements
            (
                json!({"foo": "bar"}),
                json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}]),
                json!({"foo": "bar", "baz": "qux"}),
            ),
            // A.14 ~ escape ordering
            (
                json!({"/": 9, "~1": 10}),
                json!([{"op": "test", "path": "/~01", "value": 10}]),
                json!({"/": 9, "~1": 10}),
            ),
            // A.16 adding an array value
            (
                json!({"foo": ["bar"]}),
                json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}]),
                json!({"foo": ["bar", ["abc", "def"]]}),
            ),
            // copy
            (
                json!({"a": {"b": 1}}),
                json!([{"op": "copy", "from": "/a", "path": "/c"}]),
                json!({"a": {"b": 1}, "c": {"b": 1}}),
            ),
            // ~1 is '/'
            (
                json!({"metadata": {"labels": {}}}),
                json!([{"op": "add", "path": "/metadata/labels/app.kubernetes.io~1name", "value": "x"}]),
                json!({"metadata": {"labels": {"app.kubernetes.io/name": "x"}}}),
            ),
            // upstream quirks: negative indices count from the end
            (
                json!({"a": [1, 2, 3]}),
                json!([{"op": "remove", "path": "/a/-1"}]),
                json!({"a": [1, 2]}),
            ),
            (
                json!({"a": [1, 2, 3]}),
                json!([{"op": "add", "path": "/a/-1", "value": 4}]),
                json!({"a": [1, 2, 3, 4]}),
            ),
            (
                json!({"a": [1, 2, 3]}),
                json!([{"op": "replace", "path": "/a/-3", "value": 0}]),
                json!({"a": [0, 2, 3]}),
            ),
            // replace of a missing object key adds it
            (
                json!({"a": 1}),
                json!([{"op": "replace", "path": "/b", "value": 2}]),
                json!({"a": 1, "b": 2}),
            ),
            // add without value adds null
            (
                json!({}),
                json!([{"op": "add", "path": "/a"}]),
                json!({"a": null}),
            ),
            // test for null matches a missing key and a null
            (
                json!({"n": null}),
                json!([{"op": "test", "path": "/missing", "value": null}, {"op": "test", "path": "/n", "value": null}]),
                json!({"n": null}),
            ),
            // replace the whole document
            (
                json!({"a": 1}),
                json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
                json!({"b": 2}),
            ),
            // test the whole document
            (
                json!({"a": 1}),
                json!([{"op": "test", "path": "", "value": {"a": 1}}]),
                json!({"a": 1}),
            ),
            // copy from a missing key copies null
            (
                json!({"a": 1}),
                json!([{"op": "copy", "from": "/x", "path": "/b"}]),
                json!({"a": 1, "b": null}),
            ),
            // a null patch has no operations
            (json!({"a": 1}), json!(null), json!({"a": 1})),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply(&doc, &patch).as_ref(), Ok(&want), "patch {patch}");
        }
    }

    /// Operations that must fail, with upstream's message and status: (doc, patch, message, code).
    #[test]
    fn failures_carry_upstream_messages() {
        let cases = [
            // A.9 testing a value: error
            (json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}]), "testing value /baz failed: test failed", 422),
            // A.12 adding to a nonexistent target
            (json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}]), "add operation does not apply: doc is missing path: \"/baz/bat\": missing value", 422),
            // A.15 comparing strings and numbers
            (json!({"/": 9, "~1": 10}), json!([{"op": "test", "path": "/~01", "value": "10"}]), "testing value /~01 failed: test failed", 422),
            (json!({"a": 1}), json!([{"op": "remove", "path": "/b"}]), "error in remove for path: '/b': Unable to remove nonexistent key: b: missing value", 422),
            (json!({"a": [1]}), json!([{"op": "remove", "path": "/a/5"}]), "error in remove for path: '/a/5': Unable to access invalid index: 5: invalid index referenced", 422),
            (json!({"a": [1]}), json!([{"op": "add", "path": "/a/3", "value": 1}]), "error in add for path: '/a/3': Unable to access invalid index: 3: invalid index referenced", 422),
            (json!({"a": [1]}), json!([{"op": "add", "path": "/a/x", "value": 1}]), "error in add for path: '/a/x': value was not a proper array index: 'x': strconv.Atoi: parsing \"x\": invalid syntax", 422),
            (json!({"a": [1]}), json!([{"op": "replace", "path": "/a/1", "value": 1}]), "replace operation does not apply: doc is missing key: /a/1: missing value", 422),
            (json!({"a": 1}), json!([{"op": "move", "from": "/x", "path": "/y"}]), "error in move for path: 'x': Unable to remove nonexistent key: x: missing value", 422),
            (json!({"a": 1}), json!([{"op": "test", "path": "/a"}]), "testing value /a failed: test failed", 422),
            (json!({"a": 1}), json!([{"op": "frob", "path": "/a"}]), "Unexpected kind: frob", 422),
            (json!({"a": 1}), json!([{"path": "/a"}]), "Unexpected kind: unknown", 422),
            (json!({"a": 1}), json!([null]), "Unexpected kind: unknown", 422),
            (json!({"a": 1}), json!([{"op": "add", "value": 1}]), "add operation failed to decode path: missing value", 422),
            (json!({"a": 1}), json!([{"op": "replace", "path": 3, "value": 1}]), "replace operation failed to decode path: json: cannot unmarshal number into Go value of type string", 422),
            (json!({"a": 1}), json!([{"op": "move", "path": "/b"}]), "move operation failed to decode from: operation, missing from field: missing value", 422),
            (json!({"a": 1}), json!([{"op": "add", "path": "", "value": 1}]), "add operation does not apply: doc is missing path: \"\": missing value", 422),
            (json!({"a": "s"}), json!([{"op": "add", "path": "/a/b", "value": 1}]), "add operation does not apply: doc is missing path: \"/a/b\": missing value", 422),
            // the whole patch is all or nothing, and the patch must be an array of objects
            (json!({}), json!({"op": "add"}), "json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400),
            (json!({}), json!(["add"]), "json: cannot unmarshal string into Go value of type jsonpatch.Operation", 400),
        ];
        for (doc, patch, msg, code) in cases {
            let err = apply(&doc, &patch).expect_err(&format!("patch {patch} must fail"));
            assert_eq!(err.to_string(), msg, "patch {patch}");
            assert_eq!(err.status_code(), code, "patch {patch}");
        }
    }

    #[test]
    fn operation_limit_is_413() {
        let ops: Vec<Value> = (0..=MAX_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/a", "value": 1}))
            .collect();
        let err = apply(&json!({"a": 1}), &Value::Array(ops)).expect_err("too many");
        assert_eq!(err.status_code(), 413);
        assert_eq!(
            err.to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn copy_amplification_is_bounded() {
        let limits = Limits {
            max_operations: 100,
            max_copy_bytes: 1024,
        };
        let ops: Vec<Value> = (0..20)
            .map(|_| json!({"op": "copy", "from": "/a", "path": "/a/-"}))
            .collect();
        let err = apply_with_limits(&json!({"a": ["0123456789"]}), &Value::Array(ops), limits)
            .expect_err("must hit the copy limit");
        assert!(
            err.to_string().starts_with("Unable to complete the copy"),
            "{err}"
        );
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn failed_patch_leaves_input_untouched_and_is_atomic() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 2}]);
        assert!(apply(&doc, &patch).is_err());
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn deep_documents_do_not_overflow() {
        let mut text = String::new();
        for _ in 0..126 {
            text.push_str("{\"a\":");
        }
        text.push('1');
        for _ in 0..126 {
            text.push('}');
        }
        let doc: Value = serde_json::from_str(&text).expect("parse");
        let path = "/a".repeat(126);
        let patch = json!([{"op": "test", "path": path, "value": 1}, {"op": "copy", "from": "/a", "path": "/b"}]);
        assert!(apply(&doc, &patch).is_ok());
    }
}
