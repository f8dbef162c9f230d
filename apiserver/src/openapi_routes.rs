//! `/openapi/v2` (protobuf for kubectl, JSON on request) and `/openapi/v3` (+ one document per
//! group-version), built once from the resource table by the `openapi` crate and kept.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::errors::{self, ApiResult};
use crate::handlers::Query;
use crate::resources::RESOURCES;
use crate::server::Body;

/// The v2 protobuf media type as upstream answers it (kubectl asks with `@v1.0`, but Go's MIME
/// parser rejects `@` in a response Content-Type, so the answer uses `.v1.0`).
const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

struct Documents {
    v2_json: Bytes,
    v2_protobuf: Bytes,
    v3_root: Bytes,
    /// (path under /openapi/v3/, e.g. "apis/apps/v1", document JSON)
    v3: Vec<(String, Bytes)>,
}

fn catalog() -> Vec<openapi::Resource<'static>> {
    static SUBRESOURCES: OnceLock<Vec<Vec<&'static str>>> = OnceLock::new();
    let subs = SUBRESOURCES.get_or_init(|| {
        RESOURCES
            .iter()
            .map(|r| r.subresources.iter().map(|s| s.name).collect())
            .collect()
    });
    RESOURCES
        .iter()
        .zip(subs.iter())
        .map(|(r, subresources)| openapi::Resource {
            group: r.group,
            version: r.version,
            kind: r.kind,
            plural: r.plural,
            namespaced: r.namespaced,
            verbs: r.verbs,
            subresources: subresources.as_slice(),
        })
        .collect()
}

fn documents() -> Result<&'static Documents, String> {
    static DOCS: OnceLock<Result<Documents, String>> = OnceLock::new();
    DOCS.get_or_init(|| {
        let catalog = catalog();
        let to_bytes = |v: &Value| Bytes::from(serde_json::to_vec(v).unwrap_or_default());
        let v2_protobuf = openapi::v2_protobuf(&catalog).map_err(|e| e.to_string())?;
        let mut v3 = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for r in &catalog {
            if seen.insert((r.group, r.version)) {
                if let Some(doc) = openapi::v3_group_version(&catalog, r.group, r.version) {
                    let path = if r.group.is_empty() {
                        format!("api/{}", r.version)
                    } else {
                        format!("apis/{}/{}", r.group, r.version)
                    };
                    v3.push((path, to_bytes(&doc)));
                }
            }
        }
        Ok(Documents {
            v2_json: to_bytes(&openapi::v2_json(&catalog)),
            v2_protobuf: Bytes::from(v2_protobuf),
            v3_root: to_bytes(&openapi::v3_root(&catalog)),
            v3,
        })
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Builds the documents ahead of the first request, so that kubectl's first call is fast.
pub fn warm_up() {
    if let Err(err) = documents() {
        tracing::error!(%err, "building the OpenAPI documents failed");
    }
}

pub fn serve(path: &str, headers: &HeaderMap, _query: &Query) -> ApiResult<Response<Body>> {
    let docs = documents().map_err(errors::internal)?;
    match path {
        "/openapi/v2" => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("protobuf") {
                Ok(bytes(V2_PROTOBUF, docs.v2_protobuf.clone()))
            } else {
                Ok(bytes("application/json", docs.v2_json.clone()))
            }
        }
        "/openapi/v3" => Ok(bytes("application/json", docs.v3_root.clone())),
        p => {
            let rest = p.trim_start_matches("/openapi/v3/");
            docs.v3
                .iter()
                .find(|(path, _)| path == rest)
                .map(|(_, doc)| bytes("application/json", doc.clone()))
                .ok_or_else(errors::route_not_found)
        }
    }
}

fn bytes(content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
