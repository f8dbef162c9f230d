//! Reading and writing the `metadata` of objects held as `serde_json::Value`, and the stored form
//! of an object: JSON without `resourceVersion`, which comes from the storage revision on the way
//! out (as upstream's etcd3 store does).

use serde_json::{Map, Value};

use crate::errors::{bad_request, ApiResult};

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

/// The object's `metadata`, created empty when absent. Callers have already checked that the
/// object itself is a JSON object.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    object_field(obj, "metadata")
}

/// `obj[field]` as an object, replacing whatever else is there with `{}`. The caller has already
/// checked that `obj` itself is a JSON object.
pub fn object_field<'a>(obj: &'a mut Value, field: &str) -> &'a mut Map<String, Value> {
    if !obj.get(field).is_some_and(Value::is_object) {
        obj[field] = Value::Object(Map::new());
    }
    match obj.get_mut(field).and_then(Value::as_object_mut) {
        Some(map) => map,
        None => unreachable_object(),
    }
}

/// `object_field` just inserted an object: this cannot happen, but must not panic either.
#[allow(clippy::unreachable)]
fn unreachable_object() -> ! {
    unreachable!("the field was just set to an object")
}

/// Appends `item` to the array `parent[field]`, creating the array when absent.
pub fn push_item(parent: &mut Value, field: &str, item: Value) {
    match parent.get_mut(field).and_then(Value::as_array_mut) {
        Some(list) => list.push(item),
        None => parent[field] = Value::Array(vec![item]),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    meta(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    meta_str(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    meta_str(obj, "namespace")
}

pub fn resource_version(obj: &Value) -> &str {
    meta_str(obj, "resourceVersion")
}

pub fn uid(obj: &Value) -> &str {
    meta_str(obj, "uid")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn is_deleting(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|t| !t.is_null()))
}

/// Parses a `resourceVersion` the way upstream does: empty means "none"; anything else must be a
/// positive integer.
pub fn parse_resource_version(text: &str) -> ApiResult<Option<u64>> {
    if text.is_empty() {
        return Ok(None);
    }
    match text.parse::<u64>() {
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(bad_request(format!("invalid resource version: {text:?}"))),
    }
}

/// The bytes stored for an object.
pub fn encode(obj: &Value) -> Vec<u8> {
    let mut stored = obj.clone();
    if let Some(meta) = stored.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("selfLink");
    }
    // Serializing a Value cannot fail: every key is a string.
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// The object a stored value holds, with its `resourceVersion`.
pub fn decode(kv: &storage::KeyValue) -> Result<Value, String> {
    let mut obj: Value = serde_json::from_slice(&kv.value)
        .map_err(|err| format!("stored object at {} is not JSON: {err}", kv.key))?;
    if !obj.is_object() {
        return Err(format!("stored object at {} is not a JSON object", kv.key));
    }
    meta_mut(&mut obj).insert(
        "resourceVersion".into(),
        Value::String(kv.mod_revision.to_string()),
    );
    Ok(obj)
}

/// An RFC 3339 timestamp with second precision, as `metav1.Time` serializes.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Characters upstream's name generator uses (no vowels, no confusable digits).
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` plus five random characters, truncated like upstream so the result stays a
/// valid name (at most 63 characters of prefix).
pub fn generate_name(prefix: &str) -> String {
    let prefix: String = prefix.chars().take(58).collect();
    let mut name = prefix;
    for _ in 0..5 {
        let at = rand_index(NAME_ALPHABET.len());
        name.push(char::from(NAME_ALPHABET[at]));
    }
    name
}

fn rand_index(len: usize) -> usize {
    // uuid v4 is already a dependency and is backed by the OS RNG.
    let bytes = uuid::Uuid::new_v4();
    let n = u64::from_le_bytes(bytes.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    (n % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stored_objects_carry_no_resource_version_and_get_it_back_from_the_revision() {
        let obj = json!({"metadata": {"name": "a", "resourceVersion": "7"}});
        let bytes = encode(&obj);
        assert!(!String::from_utf8_lossy(&bytes).contains("resourceVersion"));
        let kv = storage::KeyValue {
            key: "/x/a".into(),
            value: bytes,
            create_revision: 3,
            mod_revision: 9,
        };
        assert_eq!(resource_version(&decode(&kv).unwrap()), "9");
    }

    #[test]
    fn generated_names_keep_the_prefix() {
        let name = generate_name("web-");
        assert!(name.starts_with("web-"));
        assert_eq!(name.len(), 9);
        assert!(name[4..].bytes().all(|b| NAME_ALPHABET.contains(&b)));
    }

    #[test]
    fn resource_versions_must_be_numbers() {
        assert_eq!(parse_resource_version("").unwrap(), None);
        assert_eq!(parse_resource_version("12").unwrap(), Some(12));
        assert_eq!(parse_resource_version("x").unwrap_err().code, 400);
    }
}
