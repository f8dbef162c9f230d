//! Behaviour tests for strategic merge patch, one table per concern; each case states the
//! upstream behaviour it pins.

use serde_json::{json, Value};

use super::apply;
use crate::meta::builtin;

fn pod_meta() -> Option<&'static crate::PatchMeta> {
    builtin("", "v1", "Pod")
}

fn deployment_meta() -> Option<&'static crate::PatchMeta> {
    builtin("apps", "v1", "Deployment")
}

/// (what, doc, patch, expected), applied with the Pod metadata.
fn run_pod_cases(cases: &[(&str, Value, Value, Value)]) {
    for (what, doc, patch, want) in cases {
        let got = apply(doc, patch, pod_meta());
        assert_eq!(got.as_ref(), Ok(want), "{what}");
    }
}

#[test]
fn maps_and_nulls() {
    run_pod_cases(&[
        (
            "null deletes a member, other members merge",
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"b": null, "c": "3"}}}),
            json!({"metadata": {"labels": {"a": "1", "c": "3"}}}),
        ),
        (
            "null for a missing member is ignored, not stored",
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"labels": null}}),
            json!({"metadata": {"name": "p"}}),
        ),
        (
            "a new map is inserted without its nulls",
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"annotations": {"x": null, "y": "1"}}}),
            json!({"metadata": {"name": "p", "annotations": {"y": "1"}}}),
        ),
        (
            "$patch: replace on a map replaces it",
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            json!({"metadata": {"labels": {"c": "3"}}}),
        ),
        (
            "$patch: delete on a map empties it",
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {}}),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            json!({"metadata": {"labels": {}}, "spec": {}}),
        ),
        (
            "a scalar replaces a map",
            json!({"spec": {"nodeSelector": {"a": "b"}}}),
            json!({"spec": {"nodeSelector": "x"}}),
            json!({"spec": {"nodeSelector": "x"}}),
        ),
        (
            "a null patch changes nothing",
            json!({"a": 1}),
            Value::Null,
            json!({"a": 1}),
        ),
    ]);
}

#[test]
fn keyed_lists_merge_and_order() {
    let doc = json!({"spec": {"containers": [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:1"},
    ]}});
    run_pod_cases(&[
        (
            "containers merge by name",
            doc.clone(),
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}]}}),
            json!({"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}}),
        ),
        (
            "without $setElementOrder a new element lands before the live ones",
            doc.clone(),
            json!({"spec": {"containers": [{"name": "c", "image": "c:1"}]}}),
            json!({"spec": {"containers": [
                {"name": "c", "image": "c:1"}, {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"},
            ]}}),
        ),
        (
            "patched and new elements interleave by live position",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "x"}, {"name": "d"}]}}),
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b", "image": "x"}, {"name": "d"}, {"name": "c"}]}}),
        ),
        (
            "$setElementOrder puts a new element where the order says",
            doc.clone(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}],
                "containers": [{"name": "c", "image": "c:1"}],
            }}),
            json!({"spec": {"containers": [
                {"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"},
            ]}}),
        ),
        (
            "$setElementOrder alone reorders the live list",
            doc.clone(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "b:1"}, {"name": "a", "image": "a:1"}]}}),
        ),
        (
            "$patch: delete removes an element by key",
            doc.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            json!({"spec": {"containers": [{"name": "b", "image": "b:1"}]}}),
        ),
        (
            "$patch: replace as an element replaces the list with the other elements",
            doc.clone(),
            json!({"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}),
            json!({"spec": {"containers": [{"name": "z"}]}}),
        ),
        (
            "an env var is deleted with $patch: delete inside a merged container",
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}}),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}]}]}}),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}]}]}}),
        ),
        (
            "ports merge by containerPort",
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443}]}]}}),
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}),
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}]}]}}),
        ),
        (
            "a volume switching source with $retainKeys drops the old source",
            json!({"spec": {"volumes": [{"name": "v", "configMap": {"name": "c"}}]}}),
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]}}),
            json!({"spec": {"volumes": [{"name": "v", "secret": {"secretName": "s"}}]}}),
        ),
        (
            "tolerations have no merge strategy: the list is replaced",
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
            json!({"spec": {"tolerations": [{"key": "c"}]}}),
            json!({"spec": {"tolerations": [{"key": "c"}]}}),
        ),
        (
            "a primitive list without strategy is replaced",
            json!({"spec": {"containers": [{"name": "a", "args": ["x", "y"]}]}}),
            json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
            json!({"spec": {"containers": [{"name": "a", "args": ["z"]}]}}),
        ),
    ]);
}

#[test]
fn primitive_sets() {
    run_pod_cases(&[
        (
            "finalizers are a union, live order first",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        ),
        (
            "a finalizer the live list lacks is listed first",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["c", "a", "b"]}}),
        ),
        (
            "$deleteFromPrimitiveList removes values",
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            json!({"metadata": {"finalizers": ["a", "c"]}}),
        ),
        (
            "$deleteFromPrimitiveList on a missing list adds nothing",
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            json!({"metadata": {"name": "p"}}),
        ),
        (
            "kubectl apply: add b, drop c, order [b, a]",
            json!({"metadata": {"finalizers": ["a", "c"]}}),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["b", "a"],
                "$deleteFromPrimitiveList/finalizers": ["c"],
                "finalizers": ["b"],
            }}),
            json!({"metadata": {"finalizers": ["b", "a"]}}),
        ),
    ]);
}

#[test]
fn deployment_strategy_retain_keys() {
    let doc = json!({"spec": {"replicas": 1, "strategy": {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
    }}});
    let cases = [
        (
            "RollingUpdate -> Recreate with $retainKeys clears rollingUpdate",
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
            json!({"spec": {"replicas": 1, "strategy": {"type": "Recreate"}}}),
        ),
        (
            "without the directive the map merges and rollingUpdate stays",
            json!({"spec": {"strategy": {"type": "Recreate"}}}),
            json!({"spec": {"replicas": 1, "strategy": {
                "type": "Recreate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
            }}}),
        ),
    ];
    for (what, patch, want) in cases {
        assert_eq!(
            apply(&doc, &patch, deployment_meta()).as_ref(),
            Ok(&want),
            "{what}"
        );
    }
}

#[test]
fn kubectl_apply_three_way_shapes() {
    let live = json!({
        "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
            "name": "app", "image": "nginx:1.24",
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        }]}}},
    });
    let patch = json!({
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"}, "labels": {"old": null}},
        "spec": {"replicas": 3, "template": {"spec": {
            "$setElementOrder/containers": [{"name": "app"}, {"name": "sidecar"}],
            "containers": [
                {"name": "app", "image": "nginx:1.25", "$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}]},
                {"name": "sidecar", "image": "busybox"},
            ],
        }}},
    });
    let want = json!({
        "metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"new\":1}"}},
        "spec": {"replicas": 3, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}], "env": [{"name": "A", "value": "1"}]},
            {"name": "sidecar", "image": "busybox"},
        ]}}},
    });
    assert_eq!(apply(&live, &patch, deployment_meta()), Ok(want));
}

#[test]
fn without_metadata_lists_are_atomic() {
    let doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
    let patch = json!({"spec": {"containers": [{"name": "c"}]}});
    assert_eq!(
        apply(&doc, &patch, None),
        Ok(json!({"spec": {"containers": [{"name": "c"}]}}))
    );
}

#[test]
fn errors_follow_upstream() {
    // (what, doc, patch, message prefix, status)
    let cases = [
        (
            "patch must be an object",
            json!({}),
            json!([1]),
            "json: cannot unmarshal array into Go value of type map[string]interface {}",
            400,
        ),
        (
            "doc must be an object",
            json!([1]),
            json!({}),
            "invalid JSON document",
            400,
        ),
        (
            "unknown $patch on a map",
            json!({"metadata": {"labels": {}}}),
            json!({"metadata": {"labels": {"$patch": "frob"}}}),
            "unknown patch type: frob in map: ",
            500,
        ),
        (
            "$patch: merge on a map is unknown",
            json!({"metadata": {"labels": {}}}),
            json!({"metadata": {"labels": {"$patch": "merge"}}}),
            "unknown patch type: merge in map: ",
            500,
        ),
        (
            "$patch: merge as a list element",
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"spec": {"containers": [{"$patch": "merge"}]}}),
            "merging lists cannot yet be specified in the patch",
            500,
        ),
        (
            "unknown $patch as a list element",
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"spec": {"containers": [{"name": "a", "$patch": "frob"}]}}),
            "unknown patch type: frob in map: ",
            500,
        ),
        (
            "element without the merge key",
            json!({"spec": {"containers": [{"name": "a"}]}}),
            json!({"spec": {"containers": [{"image": "x"}]}}),
            "map: {\"image\":\"x\"} does not contain declared merge key: name",
            500,
        ),
        (
            "$retainKeys must be a list",
            json!({"spec": {}}),
            json!({"spec": {"$retainKeys": "x"}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "patch sets a key $retainKeys does not list",
            json!({"spec": {"strategy": {"type": "A"}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "B", "rollingUpdate": {}}}}),
            "invalid patch format of retainKeys",
            400,
        ),
        (
            "malformed parallel list key",
            json!({"metadata": {}}),
            json!({"metadata": {"$deleteFromPrimitiveListfinalizers": ["a"]}}),
            "invalid patch format of primitive list",
            400,
        ),
        (
            "malformed $setElementOrder key",
            json!({"spec": {}}),
            json!({"spec": {"$setElementOrder": []}}),
            "invalid patch format of setElementOrder list",
            400,
        ),
        (
            "patch order contradicts $setElementOrder",
            json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}),
            json!({"spec": {"$setElementOrder/containers": [{"name": "a"}], "containers": [{"name": "b", "image": "x"}]}}),
            "the order in patch list:",
            500,
        ),
        (
            "lists of lists",
            json!({"metadata": {"finalizers": [["a"]]}}),
            json!({"metadata": {"finalizers": [["b"]]}}),
            "lists of lists are not supported",
            422,
        ),
        (
            "mixed element types",
            json!({"metadata": {"finalizers": ["a"]}}),
            json!({"metadata": {"finalizers": [1]}}),
            "list element types are not identical",
            500,
        ),
    ];
    for (what, doc, patch, msg, code) in cases {
        let err = apply(&doc, &patch, pod_meta()).expect_err(what);
        assert!(err.to_string().starts_with(msg), "{what}: {err}");
        assert_eq!(err.status_code(), code, "{what}");
    }
}

#[test]
fn deep_input_does_not_overflow() {
    let mut text = String::new();
    for _ in 0..126 {
        text.push_str("{\"a\":");
    }
    text.push_str("{\"$patch\":\"replace\"}");
    for _ in 0..126 {
        text.push('}');
    }
    let deep: Value = serde_json::from_str(&text).expect("parse");
    assert!(apply(&deep, &deep, pod_meta()).is_ok());
    assert!(apply(&json!({}), &deep, pod_meta()).is_ok());
}
