//! Small accessors over `serde_json::Value` shared by defaulting and validation. Input is
//! untrusted JSON, so every accessor treats a missing field, a `null` and a field of the wrong
//! JSON type alike (as upstream's decoder would have left the Go zero value), and never panics.

use serde_json::{Map, Value};

pub(crate) type Obj = Map<String, Value>;

/// Whether `v` is what Go would decode into a zero value: absent, `null`, `""`, `0`, `false`,
/// or an empty list or map.
pub(crate) fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Bool(b)) => !b,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
    }
}

/// Sets `key` unless it holds a value: for Go pointer fields, where only `nil` is unset.
pub(crate) fn default_ptr(m: &mut Obj, key: &str, value: impl Into<Value>) {
    if matches!(m.get(key), None | Some(Value::Null)) {
        m.insert(key.to_string(), value.into());
    }
}

/// Sets `key` when it holds Go's zero value: for plain (non-pointer) string and number fields,
/// where `""` and `0` also count as unset.
pub(crate) fn default_zero(m: &mut Obj, key: &str, value: impl Into<Value>) {
    if is_zero(m.get(key)) {
        m.insert(key.to_string(), value.into());
    }
}

/// The object under `key`, created as `{}` when absent or `null`; `None` when the field holds
/// another JSON type (the object is left alone rather than clobbered).
pub(crate) fn child_obj<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    if matches!(m.get(key), None | Some(Value::Null)) {
        m.insert(key.to_string(), Value::Object(Map::new()));
    }
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// The object under `key` only when it is already present.
pub(crate) fn existing_obj<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key).and_then(Value::as_object_mut)
}

/// Runs `f` on every object element of the list under `key`.
pub(crate) fn each_obj_mut(m: &mut Obj, key: &str, mut f: impl FnMut(&mut Obj)) {
    if let Some(items) = m.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// Read-only helpers over an object, a value, or an optional one. The receivers are shared
/// references (`Copy`), so results borrow from the underlying JSON, not from a temporary.
pub(crate) trait Get<'a>: Copy {
    fn field(self, key: &str) -> Option<&'a Value>;

    fn str_of(self, key: &str) -> &'a str {
        self.field(key).and_then(Value::as_str).unwrap_or("")
    }

    /// A string field, `None` when absent or not a string (a Go `*string`).
    fn opt_str(self, key: &str) -> Option<&'a str> {
        self.field(key).and_then(Value::as_str)
    }

    fn int_of(self, key: &str) -> Option<i64> {
        self.field(key).and_then(Value::as_i64)
    }

    fn bool_of(self, key: &str) -> bool {
        self.field(key).and_then(Value::as_bool).unwrap_or(false)
    }

    fn obj_of(self, key: &str) -> Option<&'a Obj> {
        self.field(key).and_then(Value::as_object)
    }

    fn arr_of(self, key: &str) -> &'a [Value] {
        self.field(key)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether the field holds a non-null value.
    fn has(self, key: &str) -> bool {
        !matches!(self.field(key), None | Some(Value::Null))
    }
}

impl<'a> Get<'a> for &'a Obj {
    fn field(self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }
}

impl<'a> Get<'a> for Option<&'a Obj> {
    fn field(self, key: &str) -> Option<&'a Value> {
        self.and_then(|m| m.get(key))
    }
}

impl<'a> Get<'a> for &'a Value {
    fn field(self, key: &str) -> Option<&'a Value> {
        self.get(key)
    }
}

impl<'a> Get<'a> for Option<&'a Value> {
    fn field(self, key: &str) -> Option<&'a Value> {
        self.and_then(|v| v.get(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn zero_values_count_as_unset() {
        for v in [
            json!(null),
            json!(""),
            json!(0),
            json!(false),
            json!([]),
            json!({}),
        ] {
            assert!(is_zero(Some(&v)), "{v}");
        }
        assert!(is_zero(None));
        assert!(!is_zero(Some(&json!("x"))));
    }

    #[test]
    fn defaulting_respects_pointer_semantics() {
        let mut m = json!({"a": 0, "b": "", "c": null})
            .as_object()
            .cloned()
            .unwrap_or_default();
        default_ptr(&mut m, "a", 5);
        default_zero(&mut m, "b", "x");
        default_ptr(&mut m, "c", true);
        assert_eq!(Value::Object(m), json!({"a": 0, "b": "x", "c": true}));
    }

    #[test]
    fn child_obj_does_not_clobber_wrong_types() {
        let mut m = json!({"s": "str"}).as_object().cloned().unwrap_or_default();
        assert!(child_obj(&mut m, "s").is_none());
        assert!(child_obj(&mut m, "t").is_some());
        assert_eq!(m.get("t"), Some(&json!({})));
    }
}
