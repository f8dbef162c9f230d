//! The `paths` of both documents: per served resource the REST operations upstream publishes,
//! each with `x-kubernetes-action` and `x-kubernetes-group-version-kind`, and on writes the
//! `dryRun` / `fieldManager` / `fieldValidation` (and on patch `force`) query parameters that
//! kubectl's query-param verifiers look for.
//!
//! The verifiers only look at parameters listed on the PATCH operation itself (not path-level
//! ones), so those query parameters are always written inline on the operation.

use serde_json::{json, Map, Value};

use crate::definitions::{Catalog, DELETE_OPTIONS, PATCH, STATUS, V2_REF_PREFIX, V3_REF_PREFIX};
use crate::Resource;

/// Which document an operation is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    V2,
    V3,
}

impl Flavor {
    fn reference(self, name: &str) -> Value {
        match self {
            Flavor::V2 => json!({"$ref": format!("{V2_REF_PREFIX}{name}")}),
            Flavor::V3 => json!({"$ref": format!("{V3_REF_PREFIX}{name}")}),
        }
    }
}

const PATCH_CONTENT_TYPES: [&str; 4] = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const PRODUCES: [&str; 3] = [
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
];

const DRY_RUN: &str = "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed";
const FIELD_MANAGER: &str = "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.";
const FIELD_VALIDATION: &str = "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered.";
const FORCE: &str = "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests.";

/// One operation, before it is rendered for a flavor.
struct Op<'a> {
    method: &'static str,
    action: &'static str,
    operation_id: String,
    description: String,
    gvk: (&'a str, &'a str, &'a str),
    /// Query parameters: name, type, description.
    query: Vec<(&'static str, &'static str, &'static str)>,
    /// Request body definition (PATCH uses `Patch` and the patch content types).
    body: Option<String>,
    /// Response definition for 200.
    response: String,
    tag: String,
}

fn write_query(patch: bool) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut query = vec![
        ("dryRun", "string", DRY_RUN),
        ("fieldManager", "string", FIELD_MANAGER),
        ("fieldValidation", "string", FIELD_VALIDATION),
    ];
    if patch {
        query.push(("force", "boolean", FORCE));
    }
    query
}

/// Upstream's operation ids: `readAppsV1NamespacedDeployment`, `listCoreV1Pod`, ...
fn operation_id(
    verb: &str,
    group: &str,
    version: &str,
    kind: &str,
    namespaced: bool,
    suffix: &str,
) -> String {
    let group_part: String = if group.is_empty() {
        "Core".into()
    } else {
        group
            .trim_end_matches(".k8s.io")
            .split(['.', '-'])
            .map(capitalize)
            .collect()
    };
    let scope = if namespaced { "Namespaced" } else { "" };
    format!(
        "{verb}{group_part}{}{scope}{kind}{suffix}",
        capitalize(version)
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn has(list: &[&str], item: &str) -> bool {
    list.contains(&item)
}

/// Every path of one resource, rendered for `flavor`; skipped when the catalog has no
/// definition for its kind (the document could not describe its bodies).
pub(crate) fn resource_paths(
    catalog: &Catalog,
    resource: &Resource<'_>,
    flavor: Flavor,
) -> Vec<(String, Value)> {
    let Some(definition) = catalog.definition_for(resource.group, resource.version, resource.kind)
    else {
        return Vec::new();
    };
    let list_definition = catalog
        .definition_for(
            resource.group,
            resource.version,
            &format!("{}List", resource.kind),
        )
        .unwrap_or(definition)
        .to_owned();
    let definition = definition.to_owned();
    let root = if resource.group.is_empty() {
        format!("/api/{}", resource.version)
    } else {
        format!("/apis/{}/{}", resource.group, resource.version)
    };
    let scoped = if resource.namespaced {
        format!("{root}/namespaces/{{namespace}}/{}", resource.plural)
    } else {
        format!("{root}/{}", resource.plural)
    };
    let gvk = (resource.group, resource.version, resource.kind);
    let tag = if resource.group.is_empty() {
        format!("core_{}", resource.version)
    } else {
        format!(
            "{}_{}",
            resource
                .group
                .trim_end_matches(".k8s.io")
                .replace(['.', '-'], ""),
            resource.version
        )
    };
    let id = |verb: &str, suffix: &str| {
        operation_id(
            verb,
            resource.group,
            resource.version,
            resource.kind,
            resource.namespaced,
            suffix,
        )
    };
    let op = |method,
              action,
              operation_id,
              description: String,
              query,
              body: Option<&str>,
              response: &str| Op {
        method,
        action,
        operation_id,
        description,
        gvk,
        query,
        body: body.map(str::to_owned),
        response: response.to_owned(),
        tag: tag.clone(),
    };
    let verbs = resource.verbs;
    let kind = resource.kind;
    let mut paths = Vec::new();

    let mut collection = Vec::new();
    if has(verbs, "list") {
        collection.push(op(
            "get",
            "list",
            id("list", ""),
            format!("list or watch objects of kind {kind}"),
            vec![],
            None,
            &list_definition,
        ));
    }
    if has(verbs, "create") {
        collection.push(op(
            "post",
            "post",
            id("create", ""),
            format!("create a {kind}"),
            write_query(false),
            Some(&definition),
            &definition,
        ));
    }
    if has(verbs, "deletecollection") {
        collection.push(op(
            "delete",
            "deletecollection",
            id("deleteCollection", ""),
            format!("delete collection of {kind}"),
            vec![("dryRun", "string", DRY_RUN)],
            Some(DELETE_OPTIONS),
            STATUS,
        ));
    }
    if !collection.is_empty() {
        let params = if resource.namespaced {
            vec!["namespace"]
        } else {
            vec![]
        };
        paths.push((scoped.clone(), render_path(&collection, &params, flavor)));
    }

    let mut item = Vec::new();
    if has(verbs, "get") {
        item.push(op(
            "get",
            "get",
            id("read", ""),
            format!("read the specified {kind}"),
            vec![],
            None,
            &definition,
        ));
    }
    if has(verbs, "update") {
        item.push(op(
            "put",
            "put",
            id("replace", ""),
            format!("replace the specified {kind}"),
            write_query(false),
            Some(&definition),
            &definition,
        ));
    }
    if has(verbs, "patch") {
        item.push(op(
            "patch",
            "patch",
            id("patch", ""),
            format!("partially update the specified {kind}"),
            write_query(true),
            Some(PATCH),
            &definition,
        ));
    }
    if has(verbs, "delete") {
        item.push(op(
            "delete",
            "delete",
            id("delete", ""),
            format!("delete a {kind}"),
            vec![("dryRun", "string", DRY_RUN)],
            Some(DELETE_OPTIONS),
            &definition,
        ));
    }
    let item_params = if resource.namespaced {
        vec!["name", "namespace"]
    } else {
        vec!["name"]
    };
    if !item.is_empty() {
        paths.push((
            format!("{scoped}/{{name}}"),
            render_path(&item, &item_params, flavor),
        ));
    }

    if resource.namespaced && has(verbs, "list") {
        let all = op(
            "get",
            "list",
            operation_id(
                "list",
                resource.group,
                resource.version,
                kind,
                false,
                "ForAllNamespaces",
            ),
            format!("list or watch objects of kind {kind}"),
            vec![],
            None,
            &list_definition,
        );
        paths.push((
            format!("{root}/{}", resource.plural),
            render_path(&[all], &[], flavor),
        ));
    }

    for sub in resource.subresources {
        let (sub_definition, sub_gvk) = match *sub {
            "status" => (definition.clone(), gvk),
            "scale" => (
                "io.k8s.api.autoscaling.v1.Scale".to_owned(),
                ("autoscaling", "v1", "Scale"),
            ),
            _ => continue,
        };
        let suffix = capitalize(sub);
        let mut ops = vec![
            op(
                "get",
                "get",
                id("read", &suffix),
                format!("read {sub} of the specified {kind}"),
                vec![],
                None,
                &sub_definition,
            ),
            op(
                "put",
                "put",
                id("replace", &suffix),
                format!("replace {sub} of the specified {kind}"),
                write_query(false),
                Some(&sub_definition),
                &sub_definition,
            ),
            op(
                "patch",
                "patch",
                id("patch", &suffix),
                format!("partially update {sub} of the specified {kind}"),
                write_query(true),
                Some(PATCH),
                &sub_definition,
            ),
        ];
        for o in &mut ops {
            o.gvk = sub_gvk;
        }
        paths.push((
            format!("{scoped}/{{name}}/{sub}"),
            render_path(&ops, &item_params, flavor),
        ));
    }
    paths
}

fn path_parameter(name: &str, flavor: Flavor) -> Value {
    let description = match name {
        "namespace" => "object name and auth scope, such as for teams and projects",
        _ => "name of the resource",
    };
    match flavor {
        Flavor::V2 => json!({
            "name": name, "in": "path", "required": true, "type": "string",
            "uniqueItems": true, "description": description,
        }),
        Flavor::V3 => json!({
            "name": name, "in": "path", "required": true, "description": description,
            "schema": {"type": "string", "uniqueItems": true},
        }),
    }
}

fn query_parameter((name, ty, description): (&str, &str, &str), flavor: Flavor) -> Value {
    match flavor {
        Flavor::V2 => json!({
            "name": name, "in": "query", "type": ty, "uniqueItems": true, "description": description,
        }),
        Flavor::V3 => json!({
            "name": name, "in": "query", "description": description,
            "schema": {"type": ty, "uniqueItems": true},
        }),
    }
}

fn render_path(ops: &[Op<'_>], path_params: &[&str], flavor: Flavor) -> Value {
    let mut item = Map::new();
    for op in ops {
        item.insert(op.method.to_owned(), render_op(op, flavor));
    }
    let mut parameters: Vec<Value> = path_params
        .iter()
        .map(|p| path_parameter(p, flavor))
        .collect();
    parameters.push(query_parameter(
        ("pretty", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."),
        flavor,
    ));
    item.insert("parameters".into(), Value::Array(parameters));
    Value::Object(item)
}

fn render_op(op: &Op<'_>, flavor: Flavor) -> Value {
    let (group, version, kind) = op.gvk;
    let mut out = Map::new();
    out.insert("description".into(), json!(op.description));
    out.insert("operationId".into(), json!(op.operation_id));
    out.insert("tags".into(), json!([op.tag]));
    let mut parameters: Vec<Value> = op
        .query
        .iter()
        .map(|q| query_parameter(*q, flavor))
        .collect();
    let consumes: Vec<&str> = if op.method == "patch" {
        PATCH_CONTENT_TYPES.to_vec()
    } else {
        vec!["*/*"]
    };
    match flavor {
        Flavor::V2 => {
            if let Some(body) = &op.body {
                parameters.insert(
                    0,
                    json!({"name": "body", "in": "body", "required": op.method != "delete", "schema": flavor.reference(body)}),
                );
            }
            out.insert("consumes".into(), json!(consumes));
            out.insert("produces".into(), json!(PRODUCES));
            out.insert("schemes".into(), json!(["https"]));
            out.insert(
                "responses".into(),
                json!({
                    "200": {"description": "OK", "schema": flavor.reference(&op.response)},
                    "401": {"description": "Unauthorized"},
                }),
            );
        }
        Flavor::V3 => {
            if let Some(body) = &op.body {
                let content: Map<String, Value> = consumes
                    .iter()
                    .map(|c| ((*c).to_owned(), json!({"schema": flavor.reference(body)})))
                    .collect();
                let mut request = json!({"content": content});
                if op.method != "delete" {
                    if let Value::Object(map) = &mut request {
                        map.insert("required".into(), json!(true));
                    }
                }
                out.insert("requestBody".into(), request);
            }
            let content: Map<String, Value> = PRODUCES
                .iter()
                .map(|c| {
                    (
                        (*c).to_owned(),
                        json!({"schema": flavor.reference(&op.response)}),
                    )
                })
                .collect();
            out.insert(
                "responses".into(),
                json!({
                    "200": {"description": "OK", "content": content},
                    "401": {"description": "Unauthorized"},
                }),
            );
        }
    }
    out.insert("parameters".into(), Value::Array(parameters));
    out.insert("x-kubernetes-action".into(), json!(op.action));
    out.insert(
        "x-kubernetes-group-version-kind".into(),
        json!({"group": group, "kind": kind, "version": version}),
    );
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_upstream() {
        let cases = [
            (
                "read",
                "apps",
                "v1",
                "Deployment",
                true,
                "",
                "readAppsV1NamespacedDeployment",
            ),
            (
                "list",
                "",
                "v1",
                "Pod",
                false,
                "ForAllNamespaces",
                "listCoreV1PodForAllNamespaces",
            ),
            (
                "patch",
                "rbac.authorization.k8s.io",
                "v1",
                "ClusterRole",
                false,
                "",
                "patchRbacAuthorizationV1ClusterRole",
            ),
            (
                "create",
                "networking.k8s.io",
                "v1",
                "Ingress",
                true,
                "",
                "createNetworkingV1NamespacedIngress",
            ),
            (
                "replace",
                "apps",
                "v1",
                "Deployment",
                true,
                "Status",
                "replaceAppsV1NamespacedDeploymentStatus",
            ),
        ];
        for (verb, group, version, kind, namespaced, suffix, want) in cases {
            assert_eq!(
                operation_id(verb, group, version, kind, namespaced, suffix),
                want
            );
        }
    }
}
