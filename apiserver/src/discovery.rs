//! Discovery: `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`, aggregated
//! discovery (`apidiscovery.k8s.io/v2`) on `/api` and `/apis`, and `/version`. All built from the
//! resource table.

use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::errors::{self, ApiResult};
use crate::negotiation::{bytes_response, json_response};
use crate::resources::{in_group_version, version_of, Resource, GROUP_ORDER};
use crate::server::Body;

/// The Kubernetes version this server reports and implements.
pub const MAJOR: &str = "1";
pub const MINOR: &str = "33";
pub const GIT_VERSION: &str = "v1.33.0";

const AGGREGATED_V2: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

pub fn version() -> Value {
    json!({
        "major": MAJOR,
        "minor": MINOR,
        "emulationMajor": MAJOR,
        "emulationMinor": MINOR,
        "minCompatibilityMajor": MAJOR,
        "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "rust",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /`: the paths this server serves.
pub fn root_paths() -> Value {
    let mut paths = vec![
        "/api".to_string(),
        "/api/v1".to_string(),
        "/apis".to_string(),
        "/healthz".to_string(),
        "/livez".to_string(),
        "/metrics".to_string(),
        "/openapi/v2".to_string(),
        "/openapi/v3".to_string(),
        "/readyz".to_string(),
        "/version".to_string(),
    ];
    for group in GROUP_ORDER.iter().filter(|g| !g.is_empty()) {
        paths.push(format!("/apis/{group}"));
        if let Some(version) = version_of(group) {
            paths.push(format!("/apis/{group}/{version}"));
        }
    }
    paths.sort();
    json!({ "paths": paths })
}

/// Whether the client prefers aggregated discovery (and which version of it).
fn aggregated(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for clause in accept.split(',') {
        let clause: String = clause.chars().filter(|c| !c.is_whitespace()).collect();
        let has = |p: &str| clause.split(';').any(|x| x == p);
        if clause.starts_with("application/json")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some(AGGREGATED_V2);
            }
            if has("v=v2beta1") {
                return Some(AGGREGATED_V2BETA1);
            }
        }
        if clause.starts_with("application/json") && !clause.contains("as=") {
            return None;
        }
    }
    None
}

pub fn core_versions(headers: &HeaderMap) -> ApiResult<http::Response<Body>> {
    if let Some(media) = aggregated(headers) {
        return Ok(aggregated_response(media, &[""]));
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
        }),
    ))
}

pub fn groups(headers: &HeaderMap) -> ApiResult<http::Response<Body>> {
    let named: Vec<&str> = GROUP_ORDER
        .iter()
        .copied()
        .filter(|g| !g.is_empty())
        .collect();
    if let Some(media) = aggregated(headers) {
        return Ok(aggregated_response(media, &named));
    }
    let groups: Vec<Value> = named.iter().filter_map(|g| api_group(g)).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
    ))
}

fn api_group(group: &str) -> Option<Value> {
    let version = version_of(group)?;
    let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
    Some(json!({
        "name": group,
        "versions": [gv.clone()],
        "preferredVersion": gv,
    }))
}

pub fn group(group: &str) -> ApiResult<http::Response<Body>> {
    let mut body = api_group(group).ok_or_else(errors::route_not_found)?;
    body["kind"] = "APIGroup".into();
    body["apiVersion"] = "v1".into();
    Ok(json_response(StatusCode::OK, &body))
}

pub fn group_version(group: &str, version: &str) -> ApiResult<http::Response<Body>> {
    let served = in_group_version(group, version);
    if served.is_empty() {
        return Err(errors::route_not_found());
    }
    let mut resources = Vec::new();
    for r in &served {
        resources.push(api_resource(r));
        for sub in r.subresources {
            let (g, v, kind) = sub.kind.unwrap_or((r.group, r.version, r.kind));
            let mut entry = json!({
                "name": format!("{}/{}", r.plural, sub.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": sub.verbs,
            });
            if (g, v) != (r.group, r.version) {
                entry["group"] = g.into();
                entry["version"] = v.into();
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }),
    ))
}

fn api_resource(r: &Resource) -> Value {
    let mut entry = json!({
        "name": r.plural,
        "singularName": r.singular,
        "namespaced": r.namespaced,
        "kind": r.kind,
        "verbs": r.verbs,
        "storageVersionHash": storage_version_hash(r),
    });
    if !r.short_names.is_empty() {
        entry["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        entry["categories"] = json!(r.categories);
    }
    entry
}

/// A stable hash of the storage group/version/kind, as upstream publishes (base64 of the first
/// 8 bytes of a SHA-256 upstream; any stable opaque string serves clients equally).
fn storage_version_hash(r: &Resource) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (r.group, r.version, r.kind).hash(&mut h);
    let bytes = h.finish().to_be_bytes();
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, bytes)
}

fn aggregated_response(media: &'static str, groups: &[&str]) -> http::Response<Body> {
    let items: Vec<Value> = groups.iter().filter_map(|g| aggregated_group(g)).collect();
    let api_version = if media == AGGREGATED_V2 {
        "apidiscovery.k8s.io/v2"
    } else {
        "apidiscovery.k8s.io/v2beta1"
    };
    let body = json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    });
    let mut response = bytes_response(
        StatusCode::OK,
        "application/json",
        serde_json::to_vec(&body).unwrap_or_default(),
    );
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    response
}

fn aggregated_group(group: &str) -> Option<Value> {
    let version = version_of(group)?;
    let resources: Vec<Value> = in_group_version(group, version)
        .into_iter()
        .map(|r| {
            let subresources: Vec<Value> = r
                .subresources
                .iter()
                .map(|s| {
                    let (g, v, kind) = s.kind.unwrap_or((r.group, r.version, r.kind));
                    json!({
                        "subresource": s.name,
                        "responseKind": {"group": g, "version": v, "kind": kind},
                        "verbs": s.verbs,
                    })
                })
                .collect();
            let mut entry = json!({
                "resource": r.plural,
                "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                "singularResource": r.singular,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            if !subresources.is_empty() {
                entry["subresources"] = json!(subresources);
            }
            entry
        })
        .collect();
    let mut metadata = json!({"creationTimestamp": null});
    if !group.is_empty() {
        metadata["name"] = group.into();
    }
    Some(json!({
        "metadata": metadata,
        "versions": [{"version": version, "resources": resources, "freshness": "Current"}],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::RESOURCES;

    #[test]
    fn every_served_resource_appears_in_aggregated_discovery() {
        let groups: Vec<&str> = GROUP_ORDER.to_vec();
        let items: Vec<Value> = groups.iter().filter_map(|g| aggregated_group(g)).collect();
        let count: usize = items
            .iter()
            .map(|i| i["versions"][0]["resources"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(count, RESOURCES.len());
    }

    #[test]
    fn kubectl_accept_header_selects_aggregated_v2() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"),
        );
        assert_eq!(aggregated(&headers), Some(AGGREGATED_V2));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, */*"),
        );
        assert_eq!(aggregated(&headers), None);
    }
}
