//! RFC 7386 JSON merge patch, as evanphx/json-patch's `MergePatch` applies it for the apiserver.
//!
//! One difference from the RFC's pseudo-code is kept because upstream has it: values a patch
//! inserts are stripped of `null` members at every depth, including inside objects that sit in
//! arrays (`{"a": [{"b": null}]}` inserts `[{}]`). Arrays themselves keep their `null` elements.

use serde_json::{Map, Value};

/// Applies a merge patch to `doc`.
///
/// An object patch merges member by member (`null` deletes); any other patch replaces the whole
/// document. A non-object `doc` is treated as an empty object when the patch is an object.
pub fn apply(doc: &Value, patch: &Value) -> Value {
    match patch {
        Value::Object(patch) => {
            let mut base = match doc {
                Value::Object(doc) => doc.clone(),
                _ => Map::new(),
            };
            merge_into(&mut base, patch);
            Value::Object(base)
        }
        other => pruned(other),
    }
}

fn merge_into(doc: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        if value.is_null() {
            doc.remove(key);
            continue;
        }
        match doc.get_mut(key) {
            Some(Value::Object(current)) => match value {
                Value::Object(value) => merge_into(current, value),
                // Upstream hands back a non-object patch value here without pruning it.
                other => {
                    doc.insert(key.clone(), other.clone());
                }
            },
            _ => {
                doc.insert(key.clone(), pruned(value));
            }
        }
    }
}

/// A copy of `value` without `null` object members, at any depth.
fn pruned(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), pruned(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(pruned).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// RFC 7386 appendix A: (target, patch, result).
    #[test]
    fn rfc7386_appendix_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply(&doc, &patch), want, "target {doc} patch {patch}");
        }
    }

    #[test]
    fn kubernetes_shapes() {
        let cases = [
            // labels: add one, drop one, keep the rest
            (
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}}),
                json!({"metadata": {"labels": {"b": null, "c": "3"}}}),
                json!({"metadata": {"labels": {"a": "1", "c": "3"}}, "spec": {"replicas": 1}}),
            ),
            // lists are replaced wholesale, never merged
            (
                json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
                json!({"spec": {"containers": [{"name": "c", "x": null}]}}),
                json!({"spec": {"containers": [{"name": "c"}]}}),
            ),
            // an object replacing a scalar is inserted without its nulls
            (
                json!({"a": 1}),
                json!({"a": {"b": null, "c": 2}}),
                json!({"a": {"c": 2}}),
            ),
        ];
        for (doc, patch, want) in cases {
            assert_eq!(apply(&doc, &patch), want, "patch {patch}");
        }
    }

    #[test]
    fn deep_patch_does_not_overflow() {
        let mut text = String::new();
        for _ in 0..126 {
            text.push_str("{\"a\":");
        }
        text.push_str("null");
        for _ in 0..126 {
            text.push('}');
        }
        let patch: Value = serde_json::from_str(&text).expect("parse");
        let out = apply(&patch, &patch);
        assert!(out.is_object());
    }
}
