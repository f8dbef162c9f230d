//! The schema definitions shared by both documents: generated once from k8s-openapi's
//! `JsonSchema` impls (upstream's field descriptions), then given the Kubernetes extensions
//! kubectl reads (`x-kubernetes-group-version-kind`, patch strategy and merge key, list type).
//!
//! Definitions are kept in the v2 shape (`#/definitions/<name>` references with sibling
//! `description`s, as upstream's `/openapi/v2` has them); [`to_v3_schema`] turns one into the
//! shape upstream's `/openapi/v3` uses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

use crate::patch_meta::{ListType, PATCH_META};

/// Every definition name, in the `io.k8s.api.apps.v1.Deployment` form upstream uses.
pub(crate) type Definitions = BTreeMap<String, Value>;

pub(crate) const V2_REF_PREFIX: &str = "#/definitions/";
pub(crate) const V3_REF_PREFIX: &str = "#/components/schemas/";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

/// A kind k8s-openapi knows, with the definition that describes it.
#[derive(Debug, Clone)]
pub(crate) struct RootKind {
    pub definition: String,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub list_kind: Option<&'static str>,
}

/// Collects the roots while schemars walks their schemas.
pub(crate) struct Registry {
    pub generator: SchemaGenerator,
    pub roots: Vec<RootKind>,
}

/// The generated definitions and the kinds they describe; built once per process.
#[derive(Debug)]
pub(crate) struct Catalog {
    pub definitions: Definitions,
    /// (group, version, kind) -> definition name, lists included.
    pub kinds: BTreeMap<(String, String, String), String>,
}

impl Catalog {
    pub fn definition_for(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_owned(), version.to_owned(), kind.to_owned()))
            .map(String::as_str)
    }
}

/// The process-wide catalog. Generating it walks ~700 schemas and costs a few milliseconds
/// (measured in the `catalog_builds_quickly` test), so it is done on first use, not at startup.
pub(crate) fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(build_catalog)
}

fn build_catalog() -> Catalog {
    let settings = SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/definitions".into();
        s.meta_schema = None;
    });
    let mut registry = Registry {
        generator: settings.into_generator(),
        roots: Vec::new(),
    };
    crate::kinds::register_all(&mut registry);
    // Referenced by every group-version's operations, whether or not a kind embeds them.
    registry
        .generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>();
    registry
        .generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Patch>();
    registry
        .generator
        .subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>();
    let mut definitions: Definitions = registry
        .generator
        .take_definitions(false)
        .into_iter()
        .collect();

    let mut kinds = BTreeMap::new();
    let mut group_versions = BTreeSet::new();
    for root in &registry.roots {
        group_versions.insert((root.group, root.version));
        if let Some(schema) = definitions.get_mut(&root.definition) {
            set_gvk(schema, root.group, root.version, root.kind);
        }
        kinds.insert(
            (
                root.group.to_owned(),
                root.version.to_owned(),
                root.kind.to_owned(),
            ),
            root.definition.clone(),
        );
        if let Some(list_kind) = root.list_kind {
            let list_name = format!("{}List", root.definition);
            definitions.insert(list_name.clone(), list_schema(root, list_kind));
            kinds.insert(
                (
                    root.group.to_owned(),
                    root.version.to_owned(),
                    list_kind.to_owned(),
                ),
                list_name,
            );
        }
    }
    // Upstream lists every group-version on DeleteOptions: kubectl sends it to all of them.
    if let Some(delete_options) = definitions.get_mut(DELETE_OPTIONS) {
        for (group, version) in &group_versions {
            set_gvk(delete_options, group, version, "DeleteOptions");
        }
    }
    apply_patch_meta(&mut definitions);
    // Upstream's v2 document gives these two a string type; k8s-openapi leaves it out.
    for name in [INT_OR_STRING, QUANTITY] {
        if let Some(Value::Object(schema)) = definitions.get_mut(name) {
            schema.insert("type".into(), json!("string"));
            if name == INT_OR_STRING {
                schema.insert("format".into(), json!("int-or-string"));
            }
            schema.remove("x-kubernetes-int-or-string");
        }
    }
    Catalog { definitions, kinds }
}

/// Appends one `{group, kind, version}` to the schema's GVK list (upstream's key order).
fn set_gvk(schema: &mut Value, group: &str, version: &str, kind: &str) {
    let Value::Object(map) = schema else { return };
    let entry = json!({"group": group, "kind": kind, "version": version});
    match map.get_mut("x-kubernetes-group-version-kind") {
        Some(Value::Array(list)) => {
            if !list.contains(&entry) {
                list.push(entry);
            }
        }
        _ => {
            map.insert("x-kubernetes-group-version-kind".into(), json!([entry]));
        }
    }
}

/// The `<Kind>List` definition upstream publishes for every listable kind.
fn list_schema(root: &RootKind, list_kind: &str) -> Value {
    json!({
        "description": format!("{list_kind} is a list of {}.", root.kind),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "items": {
                "description": format!("List of {}.", root.kind),
                "type": "array",
                "items": {"$ref": format!("{V2_REF_PREFIX}{}", root.definition)}
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": {
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "$ref": format!("{V2_REF_PREFIX}{LIST_META}")
            }
        },
        "x-kubernetes-group-version-kind": [
            {"group": root.group, "kind": list_kind, "version": root.version}
        ],
    })
}

/// Puts the table's strategic-merge-patch and list-type markers on the properties upstream marks.
fn apply_patch_meta(definitions: &mut Definitions) {
    for entry in PATCH_META {
        let Some(property) = definitions
            .get_mut(entry.definition)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(entry.property))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(strategy) = entry.patch_strategy {
            property.insert("x-kubernetes-patch-strategy".into(), json!(strategy));
        }
        if let Some(key) = entry.patch_merge_key {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        match entry.list_type {
            Some(ListType::Atomic) => {
                property.insert("x-kubernetes-list-type".into(), json!("atomic"));
            }
            Some(ListType::Set) => {
                property.insert("x-kubernetes-list-type".into(), json!("set"));
            }
            Some(ListType::Map(keys)) => {
                property.insert("x-kubernetes-list-type".into(), json!("map"));
                property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
            }
            None => {}
        }
    }
}

/// The names a schema refers to directly (`$ref`s anywhere inside it, with `prefix`).
pub(crate) fn references<'a>(schema: &'a Value, prefix: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    // An explicit stack keeps deep schemas from growing the call stack.
    let mut stack = vec![schema];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    if key == "$ref" {
                        if let Some(name) = child.as_str().and_then(|r| r.strip_prefix(prefix)) {
                            found.push(name);
                        }
                    } else {
                        stack.push(child);
                    }
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    found
}

/// `roots` plus every definition reachable from them through `$ref`s.
pub(crate) fn closure<'a>(
    definitions: &'a Definitions,
    roots: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut pending: Vec<&str> = roots.into_iter().collect();
    while let Some(name) = pending.pop() {
        let Some((key, schema)) = definitions.get_key_value(name) else {
            continue;
        };
        if !seen.insert(key.as_str()) {
            continue;
        }
        pending.extend(references(schema, V2_REF_PREFIX));
    }
    seen
}

/// Rewrites one v2-shaped schema into upstream's v3 shape: references point into
/// `components/schemas`, a reference with sibling keys is wrapped in a one-element `allOf`
/// (kube-openapi's builder3 does the same, and kubectl's explain and patch code follow it),
/// and int-or-string types become the `anyOf` upstream publishes.
pub(crate) fn to_v3_schema(name: &str, schema: &Value) -> Value {
    if name == INT_OR_STRING || name == QUANTITY {
        let description = schema.get("description").cloned().unwrap_or(Value::Null);
        let mut out = json!({
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "x-kubernetes-int-or-string": true,
        });
        if let (Value::Object(map), Value::String(_)) = (&mut out, &description) {
            map.insert("description".into(), description);
        }
        return out;
    }
    let mut out = schema.clone();
    let mut stack: Vec<&mut Value> = vec![&mut out];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let target = match reference.strip_prefix(V2_REF_PREFIX) {
                        Some(rest) => format!("{V3_REF_PREFIX}{rest}"),
                        None => reference.clone(),
                    };
                    if map.len() > 1 {
                        map.remove("$ref");
                        map.insert("allOf".into(), json!([{"$ref": target}]));
                    } else {
                        map.insert("$ref".into(), Value::String(target));
                    }
                }
                for (key, child) in map.iter_mut() {
                    // Extension values and enums are data, not schemas.
                    if !key.starts_with("x-") && key != "enum" && key != "default" {
                        stack.push(child);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    out
}

/// Definitions as one JSON object (serde_json keeps them sorted by name).
pub(crate) fn to_object<'a>(
    definitions: &'a Definitions,
    names: impl IntoIterator<Item = &'a str>,
    shape: impl Fn(&str, &Value) -> Value,
) -> Map<String, Value> {
    names
        .into_iter()
        .filter_map(|name| {
            definitions
                .get(name)
                .map(|schema| (name.to_owned(), shape(name, schema)))
        })
        .collect()
}
