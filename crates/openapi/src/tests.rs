//! Document-level tests: shape, GVKs, patch markers, and what kubectl's checks need.

use super::*;
use prost::Message;

const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
];

fn served() -> Vec<Resource<'static>> {
    vec![
        Resource {
            group: "",
            version: "v1",
            kind: "Pod",
            plural: "pods",
            namespaced: true,
            verbs: ALL,
            subresources: &["status"],
        },
        Resource {
            group: "",
            version: "v1",
            kind: "Namespace",
            plural: "namespaces",
            namespaced: false,
            verbs: ALL,
            subresources: &["status"],
        },
        Resource {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
            namespaced: true,
            verbs: ALL,
            subresources: &["status", "scale"],
        },
        Resource {
            group: "batch",
            version: "v1",
            kind: "Job",
            plural: "jobs",
            namespaced: true,
            verbs: ALL,
            subresources: &["status"],
        },
    ]
}

#[test]
fn catalog_builds_quickly() {
    let start = std::time::Instant::now();
    let catalog = definitions::catalog();
    let elapsed = start.elapsed();
    assert!(
        catalog.definitions.len() > 500,
        "{}",
        catalog.definitions.len()
    );
    // Debug build on a shared 2-core machine; release is far below this.
    assert!(elapsed.as_secs() < 5, "catalog took {elapsed:?}");
    eprintln!(
        "catalog: {} definitions in {elapsed:?}",
        catalog.definitions.len()
    );
}

#[test]
fn every_served_kind_has_a_definition_with_its_gvk() {
    let v2 = v2_json(&served());
    for r in served() {
        let name = definitions::catalog()
            .definition_for(r.group, r.version, r.kind)
            .unwrap_or_default();
        let gvks = &v2["definitions"][name]["x-kubernetes-group-version-kind"];
        let want = json!({"group": r.group, "kind": r.kind, "version": r.version});
        assert!(
            gvks.as_array().is_some_and(|l| l.contains(&want)),
            "{name}: {gvks}"
        );
        let list = &v2["definitions"][format!("{name}List")]["x-kubernetes-group-version-kind"];
        assert_eq!(list[0]["kind"], json!(format!("{}List", r.kind)));
    }
    assert_eq!(
        v2["definitions"]["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"],
        json!([{"group": "apps", "kind": "Deployment", "version": "v1"}])
    );
}

#[test]
fn pod_spec_containers_merge_on_name() {
    let v2 = v2_json(&served());
    let containers = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(
        containers["items"]["$ref"],
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    let v3 = v3_group_version(&served(), "", "v1").unwrap_or_default();
    let containers =
        &v3["components"]["schemas"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"];
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
}

/// What kube-openapi's `proto.NewOpenAPIData` would reject makes kubectl fail outright.
#[test]
fn every_v2_reference_resolves_and_arrays_have_items() {
    let v2 = v2_json(&served());
    let defs = v2["definitions"].as_object().cloned().unwrap_or_default();
    let mut stack: Vec<&Value> = vec![&v2];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let name = r.strip_prefix("#/definitions/").unwrap_or_default();
                    assert!(defs.contains_key(name), "dangling {r}");
                }
                if map.get("type") == Some(&json!("array")) {
                    assert!(
                        map.get("items").is_some_and(Value::is_object),
                        "array without items: {value}"
                    );
                }
                assert!(
                    !map.get("type").is_some_and(Value::is_array),
                    "multi-type: {value}"
                );
                for (k, v) in map {
                    if !k.starts_with("x-") && k != "enum" && k != "default" {
                        stack.push(v);
                    }
                }
            }
            Value::Array(list) => stack.extend(list),
            _ => {}
        }
    }
}

#[test]
fn v3_references_resolve_within_the_group_version() {
    for (group, version) in [("", "v1"), ("apps", "v1"), ("batch", "v1")] {
        let doc = v3_group_version(&served(), group, version).unwrap_or_default();
        let schemas = doc["components"]["schemas"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for name in definitions::references(&doc, definitions::V3_REF_PREFIX) {
            assert!(
                schemas.contains_key(name),
                "{group}/{version}: dangling {name}"
            );
        }
        assert!(definitions::references(&doc, "#/definitions/").is_empty());
    }
}

#[test]
fn v3_root_lists_served_group_versions() {
    let root = v3_root(&served());
    let paths = root["paths"].as_object().cloned().unwrap_or_default();
    let keys: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(keys, ["api/v1", "apis/apps/v1", "apis/batch/v1"]);
    let url = paths["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap_or_default();
    assert!(url.starts_with("/openapi/v3/apis/apps/v1?hash="), "{url}");
    assert!(v3_group_version(&served(), "policy", "v1").is_none());
}

/// Mirrors cli-runtime's `supportsQueryParamV3` and kubectl's `gvkSupportsPatchOpenAPIV3`.
#[test]
fn v3_patch_operations_support_field_validation_and_strategic_merge() {
    let doc = v3_group_version(&served(), "apps", "v1").unwrap_or_default();
    let gvk = json!({"group": "apps", "kind": "Deployment", "version": "v1"});
    let patch_ops: Vec<&Value> = doc["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
        .filter_map(|item| item.get("patch"))
        .filter(|op| op["x-kubernetes-group-version-kind"] == gvk)
        .collect();
    assert_eq!(patch_ops.len(), 2, "item and status");
    for op in patch_ops {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for name in ["dryRun", "fieldManager", "fieldValidation", "force"] {
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "query"),
                "{name}"
            );
        }
        assert!(op["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some());
        assert_eq!(op["x-kubernetes-action"], "patch");
    }
    let scale =
        &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"];
    assert_eq!(scale["x-kubernetes-group-version-kind"]["kind"], "Scale");
}

/// The explain template looks up the GVK on these exact paths and then in the schemas.
#[test]
fn explain_can_find_deployment_strategy() {
    let doc = v3_group_version(&served(), "apps", "v1").unwrap_or_default();
    let gvk = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["get"]
        ["x-kubernetes-group-version-kind"];
    assert_eq!(
        gvk,
        &json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["io.k8s.api.apps.v1.Deployment"]["x-kubernetes-group-version-kind"]
            .as_array()
            .is_some_and(|l| l.contains(gvk))
    );
    let spec = &schemas["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec["description"].as_str().is_some_and(|d| !d.is_empty()));
    let strategy = &schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"];
    assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
    assert_eq!(
        strategy["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentStrategy"
    );
    assert!(
        schemas["io.k8s.api.apps.v1.DeploymentStrategy"]["properties"]["rollingUpdate"].is_object()
    );
    let ios = &schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(ios["x-kubernetes-int-or-string"], true);
}

#[test]
fn v2_protobuf_round_trips_the_fields_kubectl_reads() {
    let bytes = v2_protobuf(&served()).unwrap_or_default();
    let doc = proto::Document::decode(bytes.as_slice()).unwrap_or_default();
    assert_eq!(doc.swagger, "2.0");
    let defs = doc.definitions.unwrap_or_default().additional_properties;
    let pod_spec = defs
        .iter()
        .find(|d| d.name == "io.k8s.api.core.v1.PodSpec")
        .and_then(|d| d.value.clone())
        .unwrap_or_default();
    let containers = pod_spec
        .properties
        .unwrap_or_default()
        .additional_properties
        .into_iter()
        .find(|p| p.name == "containers")
        .and_then(|p| p.value)
        .unwrap_or_default();
    assert_eq!(containers.r#type.unwrap_or_default().value, ["array"]);
    assert_eq!(
        containers.items.unwrap_or_default().schema[0].r#ref,
        "#/definitions/io.k8s.api.core.v1.Container"
    );
    let ext: Vec<(String, String)> = containers
        .vendor_extension
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default().yaml))
        .collect();
    assert!(
        ext.contains(&("x-kubernetes-patch-merge-key".into(), "\"name\"".into())),
        "{ext:?}"
    );
    // The v2 query-param verifier reads the patch operation's GVK and query parameter names.
    let paths = doc.paths.unwrap_or_default().path;
    let item = paths
        .iter()
        .find(|p| p.name == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        .and_then(|p| p.value.clone())
        .unwrap_or_default();
    let patch = item.patch.unwrap_or_default();
    let gvk = patch
        .vendor_extension
        .iter()
        .find(|e| e.name == "x-kubernetes-group-version-kind");
    let yaml = gvk.and_then(|e| e.value.clone()).unwrap_or_default().yaml;
    assert_eq!(
        serde_json::from_str::<Value>(&yaml).unwrap_or_default(),
        json!({"group": "apps", "kind": "Deployment", "version": "v1"})
    );
    let names: Vec<String> = patch
        .parameters
        .iter()
        .filter_map(|p| match &p.oneof {
            Some(proto::parameters_item::Oneof::Parameter(proto::Parameter {
                oneof:
                    Some(proto::parameter::Oneof::NonBodyParameter(proto::NonBodyParameter {
                        oneof: Some(proto::non_body_parameter::Oneof::QueryParameterSubSchema(q)),
                    })),
            })) => Some(q.name.clone()),
            _ => None,
        })
        .collect();
    assert!(names.contains(&"fieldValidation".to_owned()), "{names:?}");
}

#[test]
fn deeply_nested_schema_is_refused_not_overflowed() {
    let mut value = json!({"type": "string"});
    for _ in 0..100 {
        value = json!({"type": "array", "items": value});
    }
    assert!(matches!(
        proto::schema_message(&value, 0),
        Err(Error::TooDeep(_))
    ));
}

#[test]
fn unknown_kinds_get_no_paths() {
    let crd = Resource {
        group: "example.com",
        version: "v1",
        kind: "Widget",
        plural: "widgets",
        namespaced: true,
        verbs: ALL,
        subresources: &[],
    };
    let v2 = v2_json(&[crd]);
    assert_eq!(v2["paths"], json!({}));
}
