//! `GET /api/v1/namespaces/<ns>/pods/<name>/log`: upstream's pod log REST, a proxy to the
//! kubelet of the pod's node (`https://<InternalIP>:<kubeletEndpoint port>/containerLogs/...`)
//! whose body is streamed through, so `follow=true` keeps going as long as the kubelet does.
//!
//! The kubelet's serving certificate is self-signed by default, and this apiserver has no
//! `--kubelet-certificate-authority` yet, so the kubelet is not verified (as upstream without
//! that flag) and no client certificate is presented.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

use crate::chain::Attributes;
use crate::errors::{self, ApiError, ApiResult};
use crate::handlers::Query;
use crate::request::ResourceRequest;
use crate::resources::{self, Resource};
use crate::server::{Body, State};

/// The `PodLogOptions` passed on to the kubelet (`container` goes into the path).
const PASSED_PARAMS: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "sinceSeconds",
    "sinceTime",
    "limitBytes",
];

/// How long connecting to the kubelet may take.
const DIAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves one pods/log request.
pub async fn serve(
    state: &State,
    request: &ResourceRequest,
    resource: &'static Resource,
    connection: &crate::authn::Connection,
    headers: &HeaderMap,
    query: &Query,
) -> ApiResult<Response<Body>> {
    let attributes = Attributes::for_request(request, resource, None);
    state
        .chain
        .authorize(&connection.credentials(headers), &attributes)?;
    let namespace = request.namespace.as_str();
    let name = request.name.as_str();
    let pod = state.registry.get(resource, namespace, name).await?;
    let container = choose_container(&pod, name, query.get("container").map(String::as_str))?;
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return Err(errors::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let nodes = resources::find("", "v1", "nodes").ok_or_else(errors::route_not_found)?;
    let node = state.registry.get(nodes, "", node_name).await?;
    let (host, port) = kubelet_location(&node, node_name)?;
    let path = format!(
        "/containerLogs/{namespace}/{name}/{container}{}",
        kubelet_query(query)
    );
    fetch(&host, port, &path).await
}

/// The container the request means: `container=`, else the pod's only container; upstream's
/// messages otherwise.
pub fn choose_container(pod: &Value, name: &str, asked: Option<&str>) -> ApiResult<String> {
    let names = |field: &str| -> Vec<String> {
        pod["spec"][field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let containers = names("containers");
    let init = names("initContainers");
    let ephemeral = names("ephemeralContainers");
    match asked.filter(|c| !c.is_empty()) {
        Some(asked) => {
            if containers
                .iter()
                .chain(&init)
                .chain(&ephemeral)
                .any(|c| c == asked)
            {
                Ok(asked.to_string())
            } else {
                let mut message = format!("container {asked} is not valid for pod {name}");
                if !containers.is_empty() {
                    message = format!("{message}, choose one of: [{}]", containers.join(" "));
                }
                Err(errors::bad_request(message))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            if !ephemeral.is_empty() {
                message.push_str(&format!(
                    " or one of the ephemeral containers: [{}]",
                    ephemeral.join(" ")
                ));
            }
            Err(errors::bad_request(message))
        }
    }
}

/// Where the node's kubelet listens: its InternalIP (else any address) and
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_location(node: &Value, node_name: &str) -> ApiResult<(String, u16)> {
    let addresses: Vec<&Value> = node["status"]["addresses"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    let address_of = |kind: &str| {
        addresses
            .iter()
            .find(|a| a["type"].as_str() == Some(kind))
            .and_then(|a| a["address"].as_str())
    };
    let host = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|kind| address_of(kind))
        .ok_or_else(|| {
            let known: Vec<String> = addresses
                .iter()
                .map(|a| {
                    format!(
                        "{{{} {}}}",
                        a["type"].as_str().unwrap_or(""),
                        a["address"].as_str().unwrap_or("")
                    )
                })
                .collect();
            errors::bad_request(format!(
                "no preferred addresses found; known addresses: [{}]",
                known.join(" ")
            ))
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            errors::bad_request(format!(
                "node {node_name} does not report its kubelet's port"
            ))
        })?;
    Ok((host.to_string(), port))
}

/// The query for the kubelet: the log options the client gave, encoded again.
pub fn kubelet_query(query: &Query) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for key in PASSED_PARAMS {
        if let Some(value) = query.get(*key) {
            out.append_pair(key, value);
            any = true;
        }
    }
    if any {
        format!("?{}", out.finish())
    } else {
        String::new()
    }
}

pub fn kubelet_error(code: u16, message: String) -> ApiError {
    let reason = match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        401 => "Unauthorized",
        _ => "InternalError",
    };
    ApiError {
        code,
        status: json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    }
}

/// `host:port` as a URL authority (IPv6 addresses in brackets).
pub fn authority(host: &str, port: u16) -> String {
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(_)) => format!("[{host}]:{port}"),
        _ => format!("{host}:{port}"),
    }
}

/// A TLS connection (HTTP/1.1) to the kubelet at `host:port`.
pub async fn dial_kubelet(
    host: &str,
    port: u16,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let tcp = tokio::time::timeout(
        DIAL_TIMEOUT,
        tokio::net::TcpStream::connect(authority(host, port)),
    )
    .await
    .map_err(|_| "dial timeout".to_string())?
    .map_err(|e| e.to_string())?;
    let server_name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    tokio_rustls::TlsConnector::from(tls_config()?)
        .connect(server_name, tcp)
        .await
        .map_err(|e| e.to_string())
}

async fn fetch(host: &str, port: u16, path: &str) -> ApiResult<Response<Body>> {
    let unavailable =
        |err: String| kubelet_error(500, format!("Get \"https://{host}:{port}{path}\": {err}"));
    let authority = authority(host, port);
    let tls = dial_kubelet(host, port).await.map_err(unavailable)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get(path)
        .header(http::header::HOST, authority.as_str())
        .body(Full::new(Bytes::new()))
        .map_err(|e| unavailable(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let status = response.status();
    if status != StatusCode::OK {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).trim().to_string();
        return Err(kubelet_error(status.as_u16(), text));
    }
    let body = response
        .into_body()
        .map_err(std::io::Error::other)
        .boxed_unsync();
    let mut out = Response::new(body);
    out.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    Ok(out)
}

/// Upstream's behaviour without `--kubelet-certificate-authority`: the kubelet's certificate is
/// not verified (the handshake's signatures still are).
fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    serving::insecure::unverified_client_config(&[b"http/1.1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let list = |names: &[&str]| names.iter().map(|n| json!({"name": n})).collect::<Vec<_>>();
        json!({"spec": {"containers": list(containers), "initContainers": list(init)}})
    }

    fn message(err: ApiError) -> String {
        err.status["message"].as_str().unwrap_or("").to_string()
    }

    #[test]
    fn the_only_container_is_the_default() {
        assert_eq!(
            choose_container(&pod(&["a"], &[]), "web", None).unwrap(),
            "a"
        );
        assert_eq!(
            choose_container(&pod(&["a", "b"], &[]), "web", Some("b")).unwrap(),
            "b"
        );
        assert_eq!(
            choose_container(&pod(&["a", "b"], &["i"]), "web", Some("i")).unwrap(),
            "i"
        );
    }

    #[test]
    fn several_containers_need_a_name() {
        let err = choose_container(&pod(&["a", "b"], &[]), "web", None).unwrap_err();
        assert_eq!(err.code, 400);
        assert_eq!(
            message(err),
            "a container name must be specified for pod web, choose one of: [a b]"
        );
        let err = choose_container(&pod(&["a", "b"], &["i"]), "web", None).unwrap_err();
        assert_eq!(
            message(err),
            "a container name must be specified for pod web, choose one of: [a b] or one of the init containers: [i]"
        );
        let err = choose_container(&pod(&["a"], &[]), "web", Some("x")).unwrap_err();
        assert_eq!(
            message(err),
            "container x is not valid for pod web, choose one of: [a]"
        );
    }

    #[test]
    fn kubelet_address_and_port() {
        let node = json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}
        }});
        assert_eq!(
            kubelet_location(&node, "n1").unwrap(),
            ("10.0.0.5".to_string(), 10250)
        );
        assert!(kubelet_location(&json!({"status": {}}), "n1").is_err());
    }

    #[test]
    fn only_log_options_reach_the_kubelet() {
        let query: Query = [
            ("follow", "true"),
            ("container", "c"),
            ("sinceTime", "2026-01-01T00:00:00Z"),
            ("pretty", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            kubelet_query(&query),
            "?follow=true&sinceTime=2026-01-01T00%3A00%3A00Z"
        );
        assert_eq!(kubelet_query(&Query::new()), "");
    }
}
