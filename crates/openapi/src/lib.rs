//! The `/openapi/v2` and `/openapi/v3` documents the apiserver serves for its built-in types.
//!
//! # What kubectl (1.27 … 1.33) asks for, and why each piece is here
//! (read in kubernetes/kubernetes `staging/src/k8s.io/...` and kubernetes/client-go)
//!
//! - **v2** — `client-go/discovery/discovery_client.go` `OpenAPISchema[WithContext]()`:
//!   `GET /openapi/v2` with `Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`,
//!   then `proto.Unmarshal` into gnostic's `openapi_v2.Document`. There is no JSON fallback: a JSON
//!   body fails to decode and the error is returned, so [`v2_protobuf`] exists. A 404 is an error
//!   too. Callers: `kubectl/pkg/cmd/util/factory_client_access.go` `OpenAPISchema()` (cached
//!   parser over kube-openapi `proto.NewOpenAPIData`, which rejects unknown `$ref`s and arrays
//!   without exactly one `items`), used by `Validator()` (eagerly in older releases, lazily via
//!   `validation.NewSchemaValidation(f)` later), by `apply/patcher.go` `patchSimple` when the v3
//!   patch path did not produce a patch, and by `explain --output plaintext-openapiv2`.
//! - **v3 root** — `client-go/openapi/client.go` `Paths()`: `GET /openapi/v3` (JSON), decoded as
//!   kube-openapi `handler3.OpenAPIV3Discovery`: `{"paths": {"apis/apps/v1": {"serverRelativeURL":
//!   "/openapi/v3/apis/apps/v1?hash=…"}}}` (keys without a leading slash; core is `api/v1`).
//! - **v3 group-version** — `client-go/openapi/groupversion.go` `Schema(contentType)`:
//!   `GET <serverRelativeURL>` with `Accept: application/json` (kubectl always asks for JSON).
//!   Users:
//!   - `cli-runtime/pkg/resource/query_param_verifier_v3.go` `supportsQueryParamV3`: for the GVK,
//!     finds a path whose **patch** operation carries `x-kubernetes-group-version-kind` (one
//!     object) equal to it, then looks for a parameter named `fieldValidation` with `in: query`
//!     **on that operation** (not path-level). Found: server-side validation, no client work.
//!     Not found: `paramUnsupportedError`; other errors fall back to the v2 verifier
//!     (`query_param_verifier.go` `supportsQueryParam`, same check on the protobuf paths).
//!   - `kubectl/pkg/cmd/apply/patcher.go` `gvkSupportsPatchOpenAPIV3` (patch op with the GVK and
//!     `requestBody.content` containing `application/strategic-merge-patch+json`), then
//!     `buildStrategicMergePatchFromOpenAPIV3`: the `components.schemas` entry whose
//!     `x-kubernetes-group-version-kind` list contains the GVK, walked with
//!     `strategicpatch.PatchMetaFromOpenAPIV3` reading `x-kubernetes-patch-strategy` /
//!     `x-kubernetes-patch-merge-key` on properties. Enabled unless `KUBECTL_OPENAPIV3_PATCH` is
//!     off (`cmdutil.OpenAPIV3Patch.IsDisabled()`).
//!   - `kubectl/pkg/cmd/explain/explain.go` `Run` → `explain/v2` `PrintModelDescription`: the
//!     `plaintext` template finds the GVK on a get/post/put/patch/delete operation of
//!     `/apis/<g>/<v>[/namespaces/{namespace}]/<plural>[/{name}]`, then the schema whose GVK list
//!     contains that exact `{group, kind, version}` map; it follows `$ref`, one-element `allOf`,
//!     `items`, `additionalProperties`. If `Paths()` fails it falls back to v2.
//!
//! # Where the schemas come from
//! k8s-openapi 0.29's `schemars` feature (upstream descriptions, types, `required`), generated on
//! first use ([`definitions`]), plus our GVK extensions, `<Kind>List` definitions, and patch /
//! list-type markers from [`patch_meta`] (k8s-openapi drops those struct tags).

mod definitions;
mod kinds;
pub mod patch_meta;
mod paths;
mod proto;

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use definitions::{
    catalog, closure, to_object, to_v3_schema, DELETE_OPTIONS, PATCH, STATUS, V2_REF_PREFIX,
};
use paths::{resource_paths, Flavor};

/// Failures building a document.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A schema nested deeper than the protobuf encoder allows.
    #[error("schema nests deeper than {0} levels")]
    TooDeep(usize),
}

/// One served resource, as the apiserver's discovery lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    /// API group; empty for the core group.
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    /// The URL segment, e.g. `deployments`.
    pub plural: &'a str,
    pub namespaced: bool,
    /// Discovery verbs: `get`, `list`, `create`, `update`, `patch`, `delete`, `deletecollection`.
    pub verbs: &'a [&'a str],
    /// Subresource names; `status` and `scale` get operations.
    pub subresources: &'a [&'a str],
}

impl Resource<'_> {
    /// The v3 discovery key: `api/v1` or `apis/<group>/<version>`.
    fn group_version_path(&self) -> String {
        group_version_path(self.group, self.version)
    }
}

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn info() -> Value {
    json!({"title": "Kubernetes", "version": "v1.33.0"})
}

/// The swagger 2.0 document: `info`, `paths` for the served resources, and every definition.
pub fn v2_json(resources: &[Resource<'_>]) -> Value {
    let catalog = catalog();
    let mut paths = Map::new();
    for resource in resources {
        for (path, item) in resource_paths(catalog, resource, Flavor::V2) {
            paths.insert(path, item);
        }
    }
    let definitions = to_object(
        &catalog.definitions,
        catalog.definitions.keys().map(String::as_str),
        |_, schema| schema.clone(),
    );
    json!({
        "swagger": "2.0",
        "info": info(),
        "paths": paths,
        "definitions": definitions,
    })
}

/// [`v2_json`] encoded as gnostic's `openapi_v2.Document` protobuf, the only encoding
/// client-go's `OpenAPISchema()` decodes.
pub fn v2_protobuf(resources: &[Resource<'_>]) -> Result<Vec<u8>, Error> {
    proto::encode(&v2_json(resources))
}

/// A stable content hash for `serverRelativeURL`'s `hash=` (FNV-1a, upper-case hex); clients
/// treat it as an opaque cache key.
pub fn content_hash(document: &Value) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in document.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016X}")
}

/// The `/openapi/v3` discovery document: one entry per served group-version.
pub fn v3_root(resources: &[Resource<'_>]) -> Value {
    let group_versions: BTreeSet<(&str, &str)> =
        resources.iter().map(|r| (r.group, r.version)).collect();
    let mut paths = Map::new();
    for (group, version) in group_versions {
        let key = group_version_path(group, version);
        let hash = v3_group_version(resources, group, version)
            .map(|doc| content_hash(&doc))
            .unwrap_or_default();
        paths.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
    }
    json!({"paths": paths})
}

/// The OpenAPI 3.0 document of one group-version, or `None` when nothing is served there.
pub fn v3_group_version(resources: &[Resource<'_>], group: &str, version: &str) -> Option<Value> {
    let served: Vec<&Resource<'_>> = resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if served.is_empty() {
        return None;
    }
    let catalog = catalog();
    let mut paths = Map::new();
    let mut roots: Vec<&str> = vec![DELETE_OPTIONS, STATUS, PATCH];
    for resource in &served {
        for (path, item) in resource_paths(catalog, resource, Flavor::V3) {
            paths.insert(path, item);
        }
        if let Some(name) = catalog.definition_for(group, version, resource.kind) {
            roots.push(name);
        }
        if let Some(name) =
            catalog.definition_for(group, version, &format!("{}List", resource.kind))
        {
            roots.push(name);
        }
        if resource.subresources.contains(&"scale") {
            roots.push("io.k8s.api.autoscaling.v1.Scale");
        }
    }
    let names = closure(&catalog.definitions, roots);
    let schemas = to_object(&catalog.definitions, names, to_v3_schema);
    debug_assert!(served.iter().all(|r| !r.group_version_path().is_empty()));
    Some(json!({
        "openapi": "3.0.0",
        "info": info(),
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

/// The v2 `$ref` prefix, for callers (CRD publishing) that add their own definitions.
pub const DEFINITIONS_REF_PREFIX: &str = V2_REF_PREFIX;

#[cfg(test)]
mod tests;
