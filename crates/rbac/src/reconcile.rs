//! Reconciliation of one bootstrap object against the stored one, as kube-apiserver does on every
//! start (upstream's `reconciliation` package with `RemoveExtraPermissions`/`RemoveExtraSubjects`
//! off): missing labels and annotations are added (stored values win), missing permissions are
//! added as the atomic rules the stored role lacks, missing aggregation selectors and subjects
//! are appended. Nothing is ever removed. An object annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left alone.

use serde_json::{Map, Value};

use crate::rule::{uncovered, PolicyRule};
use crate::AUTO_UPDATE_ANNOTATION;

/// The object to write in place of `existing` so it grants at least what `wanted` does, or
/// `None` when nothing changes. For a binding whose `roleRef` differs (immutable upstream),
/// returns `wanted` itself: the caller must delete `existing` and create it, as upstream's
/// `ReconcileRecreate` does.
pub fn reconcile(wanted: &Value, existing: &Value) -> Option<Value> {
    let protected = existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTO_UPDATE_ANNOTATION))
        .and_then(Value::as_str)
        == Some("false");
    if protected {
        return None;
    }
    let is_binding = wanted.get("roleRef").is_some();
    if is_binding && wanted.get("roleRef") != existing.get("roleRef") {
        return Some(wanted.clone());
    }
    let mut result = existing.clone();
    let mut changed = false;
    for key in ["annotations", "labels"] {
        changed |= merge_map(&mut result, wanted, key);
    }
    changed |= if is_binding {
        add_subjects(&mut result, wanted)
    } else {
        add_rules(&mut result, wanted, existing) | add_selectors(&mut result, wanted)
    };
    changed.then_some(result)
}

/// Adds `wanted`'s metadata entries missing from `result`; returns whether any was.
fn merge_map(result: &mut Value, wanted: &Value, key: &str) -> bool {
    let Some(want) = wanted
        .get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_object)
    else {
        return false;
    };
    if want.is_empty() {
        return false;
    }
    let Some(metadata) = result.get_mut("metadata").and_then(Value::as_object_mut) else {
        return false;
    };
    let slot = metadata
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    let Some(have) = slot.as_object_mut() else {
        return false;
    };
    let mut changed = false;
    for (k, v) in want {
        if !have.contains_key(k) {
            have.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

fn add_rules(result: &mut Value, wanted: &Value, existing: &Value) -> bool {
    let missing = uncovered(
        &PolicyRule::list_from(existing),
        &PolicyRule::list_from(wanted),
    );
    if missing.is_empty() {
        return false;
    }
    let Some(obj) = result.as_object_mut() else {
        return false;
    };
    let rules = obj
        .entry("rules")
        .or_insert_with(|| Value::Array(Vec::new()));
    if !rules.is_array() {
        *rules = Value::Array(Vec::new());
    }
    if let Some(list) = rules.as_array_mut() {
        list.extend(missing.iter().map(PolicyRule::to_value));
    }
    true
}

/// Appends the `items` of `wanted[outer][inner]` that `result` lacks (compared exactly).
fn append_missing(
    result: &mut Value,
    wanted_items: &[Value],
    outer: &str,
    inner: Option<&str>,
) -> bool {
    let Some(obj) = result.as_object_mut() else {
        return false;
    };
    let mut target = obj.entry(outer).or_insert(Value::Null);
    if let Some(inner) = inner {
        if !target.is_object() {
            *target = Value::Object(Map::new());
        }
        let Some(o) = target.as_object_mut() else {
            return false;
        };
        target = o.entry(inner).or_insert(Value::Null);
    }
    if !target.is_array() {
        *target = Value::Array(Vec::new());
    }
    let Some(have) = target.as_array_mut() else {
        return false;
    };
    let missing: Vec<Value> = wanted_items
        .iter()
        .filter(|w| !have.contains(w))
        .cloned()
        .collect();
    let changed = !missing.is_empty();
    have.extend(missing);
    changed
}

fn add_selectors(result: &mut Value, wanted: &Value) -> bool {
    match wanted
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
    {
        Some(want) if !want.is_empty() => append_missing(
            result,
            want,
            "aggregationRule",
            Some("clusterRoleSelectors"),
        ),
        _ => false,
    }
}

fn add_subjects(result: &mut Value, wanted: &Value) -> bool {
    match wanted.get("subjects").and_then(Value::as_array) {
        Some(want) if !want.is_empty() => append_missing(result, want, "subjects", None),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn role(annotations: Value, labels: Value, rules: Value) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": "r", "annotations": annotations, "labels": labels}, "rules": rules})
    }

    #[test]
    fn role_table() {
        let wanted = role(
            json!({AUTO_UPDATE_ANNOTATION: "true"}),
            json!({"kubernetes.io/bootstrapping": "rbac-defaults"}),
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]),
        );
        let full = json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]);
        let meta_ok = (
            json!({AUTO_UPDATE_ANNOTATION: "true"}),
            json!({"kubernetes.io/bootstrapping": "rbac-defaults"}),
        );
        let cases: Vec<(&str, Value, Option<Value>)> = vec![
            (
                "identical",
                role(meta_ok.0.clone(), meta_ok.1.clone(), full.clone()),
                None,
            ),
            (
                "covered by wildcard, extra rules kept",
                role(
                    meta_ok.0.clone(),
                    meta_ok.1.clone(),
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["x"], "nonResourceURLs": ["/x"]}]),
                ),
                None,
            ),
            (
                "missing verb added as atomic rule",
                role(
                    meta_ok.0.clone(),
                    meta_ok.1.clone(),
                    json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]),
                ),
                Some(role(
                    meta_ok.0.clone(),
                    meta_ok.1.clone(),
                    json!([
                        {"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]},
                        {"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]},
                    ]),
                )),
            ),
            (
                "missing labels and annotations added, existing values win",
                role(
                    json!({"other": "x"}),
                    json!({"kubernetes.io/bootstrapping": "mine"}),
                    full.clone(),
                ),
                Some(role(
                    json!({"other": "x", AUTO_UPDATE_ANNOTATION: "true"}),
                    json!({"kubernetes.io/bootstrapping": "mine"}),
                    full.clone(),
                )),
            ),
            (
                "autoupdate false is left alone",
                role(
                    json!({AUTO_UPDATE_ANNOTATION: "false"}),
                    json!({}),
                    json!([]),
                ),
                None,
            ),
        ];
        for (what, existing, want) in cases {
            assert_eq!(reconcile(&wanted, &existing), want, "{what}");
        }
    }

    #[test]
    fn missing_rules_and_metadata_on_bare_object() {
        let wanted = role(
            json!({AUTO_UPDATE_ANNOTATION: "true"}),
            json!({}),
            json!([{"verbs": ["get"], "nonResourceURLs": ["/a", "/b"]}]),
        );
        let existing = json!({"kind": "ClusterRole", "metadata": {"name": "r"}, "rules": null});
        let got = reconcile(&wanted, &existing);
        assert_eq!(
            got,
            Some(
                json!({"kind": "ClusterRole", "metadata": {"name": "r", "annotations": {AUTO_UPDATE_ANNOTATION: "true"}}, "rules": [
                    {"verbs": ["get"], "nonResourceURLs": ["/a"]},
                    {"verbs": ["get"], "nonResourceURLs": ["/b"]},
                ]})
            )
        );
    }

    #[test]
    fn aggregation_selectors_appended() {
        let sel = |k: &str| json!({"matchLabels": {k: "true"}});
        let wanted = json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [sel("a")]}, "rules": null});
        let existing = json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [sel("mine")]}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
        let got = reconcile(&wanted, &existing);
        assert_eq!(
            got.and_then(|g| g.pointer("/aggregationRule/clusterRoleSelectors").cloned()),
            Some(json!([sel("mine"), sel("a")]))
        );
        let already = json!({"metadata": {"name": "admin"}, "aggregationRule": {"clusterRoleSelectors": [sel("a")]}, "rules": [{"verbs": ["x"], "apiGroups": ["y"], "resources": ["z"]}]});
        assert_eq!(
            reconcile(&wanted, &already),
            None,
            "aggregated rules are never touched"
        );
    }

    #[test]
    fn binding_table() {
        let subj =
            |n: &str| json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": n});
        let rr = |n: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": n});
        let b = |role: &str, subjects: Value| json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b", "annotations": {AUTO_UPDATE_ANNOTATION: "true"}}, "roleRef": rr(role), "subjects": subjects});
        let wanted = b("r", json!([subj("a")]));
        let cases: Vec<(&str, Value, Option<Value>)> = vec![
            ("same", b("r", json!([subj("a")])), None),
            (
                "extra subjects kept",
                b("r", json!([subj("z"), subj("a")])),
                None,
            ),
            (
                "missing subject appended",
                b("r", json!([subj("z")])),
                Some(b("r", json!([subj("z"), subj("a")]))),
            ),
            (
                "no subjects at all",
                json!({"kind": "ClusterRoleBinding", "metadata": {"name": "b", "annotations": {AUTO_UPDATE_ANNOTATION: "true"}}, "roleRef": rr("r")}),
                Some(b("r", json!([subj("a")]))),
            ),
            (
                "different roleRef recreates",
                b("other", json!([subj("a")])),
                Some(wanted.clone()),
            ),
        ];
        for (what, existing, want) in cases {
            assert_eq!(reconcile(&wanted, &existing), want, "{what}");
        }
        // A binding without subjects upstream (system:node) never adds any.
        let bare = json!({"metadata": {"name": "system:node"}, "roleRef": rr("system:node")});
        assert_eq!(
            reconcile(&bare, &b("system:node", json!([subj("x")]))),
            None
        );
    }
}
