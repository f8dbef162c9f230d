//! Content negotiation: which representation a client accepts (JSON, YAML, a server-side Table)
//! and which body formats it may send.

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::errors::{self, bad_request, ApiResult};
use crate::handlers::Query;
use crate::server::Body;

/// The representation an answer is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/vnd.kubernetes.protobuf`, for clients that accept nothing else.
    Protobuf,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`.
    Table {
        include_object: IncludeObject,
    },
}

/// What each Table row carries besides its cells (`?includeObject=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    /// Decided by the query (default: metadata only).
    FromQuery,
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn resolve(self, query: &Query) -> IncludeObject {
        match self {
            IncludeObject::FromQuery => match query.get("includeObject").map(String::as_str) {
                Some("None") => IncludeObject::None,
                Some("Object") => IncludeObject::Object,
                _ => IncludeObject::Metadata,
            },
            other => other,
        }
    }
}

/// Picks the first acceptable media type of the `Accept` header, in the client's order.
pub fn output(headers: &HeaderMap) -> ApiResult<Output> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if accept.trim().is_empty() {
        return Ok(Output::Json);
    }
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut params = std::collections::HashMap::new();
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                params.insert(k.trim().to_string(), v.trim().to_string());
            }
        }
        let as_kind = params.get("as").map(String::as_str);
        match (media.as_str(), as_kind) {
            ("application/json", Some("Table")) | ("*/*", Some("Table")) => {
                let group_ok = params.get("g").is_none_or(|g| g == "meta.k8s.io");
                let version_ok = params.get("v").is_none_or(|v| v == "v1");
                if group_ok && version_ok {
                    return Ok(Output::Table {
                        include_object: IncludeObject::FromQuery,
                    });
                }
            }
            ("application/json", None) | ("application/*", None) | ("*/*", None) => {
                return Ok(Output::Json)
            }
            ("application/yaml", None) => return Ok(Output::Yaml),
            ("application/vnd.kubernetes.protobuf", None) => {
                // Prefer JSON when the client also takes it (every JSON answer, including
                // Status and Table, then works); protobuf only for protobuf-only clients.
                if accept.split(',').any(|c| {
                    let m = c.split(';').next().unwrap_or("").trim();
                    m == "application/json" || m == "*/*" || m == "application/*"
                }) {
                    continue;
                }
                return Ok(Output::Protobuf);
            }
            _ => {}
        }
    }
    Err(errors::not_acceptable(accept))
}

/// Parses a JSON or YAML request body.
pub fn parse_body(content_type: &str, bytes: &[u8]) -> ApiResult<Value> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" | "" | "*/*" => serde_json::from_slice(bytes).map_err(|err| {
            bad_request(format!(
                "couldn't get version/kind; json parse error: {err}"
            ))
        }),
        "application/vnd.kubernetes.protobuf" => kube_protobuf::decode(bytes)
            .map_err(|err| bad_request(format!("failed to decode protobuf request body: {err}"))),
        "application/yaml" => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| bad_request("the request body is not valid UTF-8"))?;
            serde_yaml::from_str::<Value>(text)
                .map_err(|err| bad_request(format!("error converting YAML to JSON: {err}")))
        }
        _ => Err(errors::unsupported_media_type(content_type)),
    }
}

/// A body in the representation the client asked for.
pub fn respond(code: StatusCode, body: &Value, output: &Output) -> ApiResult<Response<Body>> {
    match output {
        Output::Protobuf
            if kube_protobuf::supports(
                body.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
                body.get("kind").and_then(Value::as_str).unwrap_or(""),
            ) =>
        {
            let bytes = kube_protobuf::encode(body).map_err(errors::internal)?;
            Ok(bytes_response(
                code,
                "application/vnd.kubernetes.protobuf",
                bytes,
            ))
        }
        Output::Yaml => {
            let text = serde_yaml::to_string(body).map_err(errors::internal)?;
            Ok(bytes_response(code, "application/yaml", text.into_bytes()))
        }
        _ => Ok(json_response(code, body)),
    }
}

pub fn json_response(code: StatusCode, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    bytes_response(code, "application/json", bytes)
}

pub fn bytes_response(
    code: StatusCode,
    content_type: &'static str,
    bytes: Vec<u8>,
) -> Response<Body> {
    let mut response = Response::new(
        Full::new(bytes::Bytes::from(bytes))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> ApiResult<Output> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        output(&headers)
    }

    #[test]
    fn kubectl_get_asks_for_a_table_first() {
        let kubectl = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(matches!(accept(kubectl).unwrap(), Output::Table { .. }));
        assert_eq!(accept("application/json").unwrap(), Output::Json);
        assert_eq!(accept("*/*").unwrap(), Output::Json);
        assert_eq!(
            accept("application/vnd.kubernetes.protobuf, application/json").unwrap(),
            Output::Json
        );
        assert_eq!(accept("application/yaml").unwrap(), Output::Yaml);
        assert_eq!(
            accept("application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json").unwrap(),
            Output::Json
        );
        assert_eq!(accept("text/html").unwrap_err().code, 406);
    }

    #[test]
    fn bodies_parse_as_json_or_yaml() {
        assert_eq!(
            parse_body("application/json", b"{\"a\":1}").unwrap()["a"],
            1
        );
        assert_eq!(parse_body("application/yaml", b"a: 1\n").unwrap()["a"], 1);
        assert_eq!(parse_body("application/json", b"{").unwrap_err().code, 400);
        assert_eq!(parse_body("text/plain", b"x").unwrap_err().code, 415);
    }
}
