//! `/exec/<ns>/<pod>/<container>`, `/attach/<ns>/<pod>/<container>` and
//! `/portForward/<ns>/<pod>`: the kubelet's streaming endpoints, as upstream's server answers
//! them. The container (or the pod's sandbox) is found in the runtime, the runtime is asked for
//! a streaming URL (CRI `Exec`, `Attach`, `PortForward`), and the client's connection is joined
//! to the runtime's streaming server there:
//!
//! - SPDY/3.1 clients (kubectl's fallback, older kubectls, the apiserver passing them on) are
//!   proxied to the runtime untouched: the runtime speaks SPDY itself (`serving::upgrade`).
//! - WebSocket clients of the remote-command protocol (`v5.channel.k8s.io` from kubectl 1.30+,
//!   `v4.channel.k8s.io` from the Python client) are translated to SPDY, which is all
//!   containerd 1.6 speaks with stdin half-close ([`super::translate`]).
//! - WebSocket port-forward tunnels (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+) carry SPDY
//!   frames in binary messages: unwrapped onto a SPDY connection to the runtime.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;

use cri::v1::{
    AttachRequest, ContainerFilter, ContainerState, ExecRequest, ListContainersRequest,
    ListPodSandboxRequest, PodSandboxFilter, PodSandboxState, PodSandboxStateValue,
    PortForwardRequest,
};

use super::translate::{self, Channels};
use super::{plain, Body};
use crate::kuberuntime::labels;

/// The remote-command WebSocket protocols translated here, most preferred first.
pub const CHANNEL_PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];
/// kubectl's port-forward over WebSocket: SPDY frames tunnelled in binary messages.
pub const PORT_FORWARD_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Which endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Attach,
    PortForward,
}

/// The query of an exec or attach request (upstream's `input`, `output`, `error`, `tty` and
/// `command`, with kubectl's `stdin`/`stdout`/`stderr` spellings accepted too).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamQuery {
    pub command: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    pub ports: Vec<i32>,
}

impl StreamQuery {
    pub fn parse(query: &str) -> Result<StreamQuery, String> {
        let mut out = StreamQuery::default();
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let on = matches!(value.as_ref(), "1" | "true" | "True" | "TRUE" | "t" | "T");
            match key.as_ref() {
                "command" => out.command.push(value.to_string()),
                "input" | "stdin" => out.stdin = on,
                "output" | "stdout" => out.stdout = on,
                "error" | "stderr" => out.stderr = on,
                "tty" => out.tty = on,
                "port" => {
                    for port in value.split(',').filter(|p| !p.is_empty()) {
                        let parsed = port
                            .parse::<i32>()
                            .ok()
                            .filter(|p| (1..=65535).contains(p))
                            .ok_or_else(|| format!("invalid port {port:?}"))?;
                        out.ports.push(parsed);
                    }
                }
                _ => {}
            }
        }
        // A terminal merges stderr into stdout (the runtime refuses both).
        if out.tty {
            out.stderr = false;
        }
        Ok(out)
    }
}

/// Serves one streaming request for `namespace`/`pod` (and `container` unless port-forward).
pub async fn serve(
    runtime: Option<&Arc<dyn cri::RuntimeService>>,
    kind: Kind,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    mut req: Request<Incoming>,
) -> Response<Body> {
    let Some(runtime) = runtime else {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "streaming is not available without a container runtime\n",
        );
    };
    let query = match StreamQuery::parse(req.uri().query().unwrap_or("")) {
        Ok(query) => query,
        Err(err) => return plain(StatusCode::BAD_REQUEST, format!("{err}\n")),
    };
    let Some(upgrade) = serving::upgrade::requested(req.headers()) else {
        return plain(StatusCode::BAD_REQUEST, "Upgrade request required\n");
    };
    let websocket = upgrade.eq_ignore_ascii_case("websocket");
    let protocol = if websocket {
        let offered = offered_protocols(req.headers());
        let wanted: &[&str] = match kind {
            Kind::PortForward => &[PORT_FORWARD_TUNNEL_PROTOCOL],
            _ => CHANNEL_PROTOCOLS,
        };
        match wanted.iter().find(|w| offered.iter().any(|o| o == *w)) {
            Some(protocol) => Some(*protocol),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "unable to upgrade: none of the WebSocket protocols {offered:?} is supported (want one of {wanted:?})\n"
                    ),
                )
            }
        }
    } else if upgrade.to_ascii_lowercase().starts_with("spdy/") {
        None
    } else {
        return plain(
            StatusCode::BAD_REQUEST,
            format!("unable to upgrade: unsupported protocol {upgrade:?}\n"),
        );
    };
    let url = match streaming_url(runtime.as_ref(), kind, namespace, pod, container, &query).await {
        Ok(url) => url,
        Err((status, message)) => return plain(status, format!("{message}\n")),
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The runtime is asked for the same protocol the client asked for (SPDY pass-through), or
    // for SPDY when this side translates.
    let mut backend_request = Request::builder()
        .method(if protocol.is_some() {
            Method::POST
        } else {
            req.method().clone()
        })
        .body(Empty::<Bytes>::new())
        .unwrap_or_default();
    match protocol {
        None => serving::upgrade::copy_headers(
            req.headers(),
            backend_request.headers_mut(),
            serving::upgrade::REQUEST_HEADERS,
        ),
        Some(_) => {
            let headers = backend_request.headers_mut();
            headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("Upgrade"),
            );
            headers.insert(
                http::header::UPGRADE,
                http::HeaderValue::from_static("SPDY/3.1"),
            );
            let version = match kind {
                Kind::PortForward => "portforward.k8s.io",
                _ => "v4.channel.k8s.io",
            };
            headers.insert(
                "x-stream-protocol-version",
                http::HeaderValue::from_static(version),
            );
        }
    }
    let backend = match dial(&url, backend_request).await {
        Ok(backend) => backend,
        Err((status, message)) => return plain(status, format!("{message}\n")),
    };
    let (head, upgraded) = backend;
    match protocol {
        None => {
            tokio::spawn(serving::upgrade::splice(on_upgrade, upgraded));
            serving::upgrade::switching_protocols(&head)
        }
        Some(protocol) => {
            let Some(accept) = websocket_accept(req.headers()) else {
                return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key\n");
            };
            let mut response = Response::new(Body::default());
            *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let headers = response.headers_mut();
            headers.insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("Upgrade"),
            );
            headers.insert(
                http::header::UPGRADE,
                http::HeaderValue::from_static("websocket"),
            );
            if let Ok(accept) = http::HeaderValue::from_str(&accept) {
                headers.insert("sec-websocket-accept", accept);
            }
            headers.insert(
                "sec-websocket-protocol",
                http::HeaderValue::from_static(protocol),
            );
            if kind == Kind::PortForward {
                tokio::spawn(translate::tunnel(on_upgrade, upgraded));
            } else {
                let channels = Channels {
                    stdin: query.stdin,
                    stdout: query.stdout,
                    stderr: query.stderr,
                    tty: query.tty,
                    v5: protocol == CHANNEL_PROTOCOLS[0],
                };
                tokio::spawn(translate::remote_command(on_upgrade, upgraded, channels));
            }
            response
        }
    }
}

/// Every protocol in `Sec-WebSocket-Protocol` (several headers, comma-separated lists).
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

fn websocket_accept(headers: &HeaderMap) -> Option<String> {
    let key = headers.get("sec-websocket-key")?;
    Some(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

type Failure = (StatusCode, String);

/// Asks the runtime for the session's URL (upstream's messages when the pod or container is
/// not there).
async fn streaming_url(
    runtime: &dyn cri::RuntimeService,
    kind: Kind,
    namespace: &str,
    pod: &str,
    container: Option<&str>,
    query: &StreamQuery,
) -> Result<String, Failure> {
    let pod_labels = HashMap::from([
        (labels::POD_NAMESPACE.to_string(), namespace.to_string()),
        (labels::POD_NAME.to_string(), pod.to_string()),
    ]);
    let internal = |e: cri::CriError| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    if kind == Kind::PortForward {
        let sandboxes = runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    state: Some(PodSandboxStateValue {
                        state: PodSandboxState::SandboxReady as i32,
                    }),
                    label_selector: pod_labels,
                    ..Default::default()
                }),
            })
            .await
            .map_err(internal)?
            .items;
        let Some(sandbox) = sandboxes.into_iter().max_by_key(|s| s.created_at) else {
            return Err((StatusCode::NOT_FOUND, "pod does not exist".to_string()));
        };
        return runtime
            .port_forward(PortForwardRequest {
                pod_sandbox_id: sandbox.id,
                port: query.ports.clone(),
            })
            .await
            .map(|r| r.url)
            .map_err(internal);
    }
    let container = container.unwrap_or("");
    let containers = runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: pod_labels,
                ..Default::default()
            }),
        })
        .await
        .map_err(internal)?
        .containers;
    if containers.is_empty() {
        return Err((StatusCode::NOT_FOUND, "pod does not exist".to_string()));
    }
    let running = containers
        .into_iter()
        .filter(|c| c.state == ContainerState::ContainerRunning as i32)
        .filter(|c| c.labels.get(labels::CONTAINER_NAME).map(String::as_str) == Some(container))
        .max_by_key(|c| c.created_at);
    let Some(found) = running else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({container:?})"),
        ));
    };
    let answer = match kind {
        Kind::Exec => {
            if query.command.is_empty() {
                return Err((
                    StatusCode::BAD_REQUEST,
                    "missing required command".to_string(),
                ));
            }
            runtime
                .exec(ExecRequest {
                    container_id: found.id,
                    cmd: query.command.clone(),
                    tty: query.tty,
                    stdin: query.stdin,
                    stdout: query.stdout,
                    stderr: query.stderr,
                    ..Default::default()
                })
                .await
                .map(|r| r.url)
        }
        _ => runtime
            .attach(AttachRequest {
                container_id: found.id,
                stdin: query.stdin,
                tty: query.tty,
                stdout: query.stdout,
                stderr: query.stderr,
                ..Default::default()
            })
            .await
            .map(|r| r.url),
    };
    answer.map_err(internal)
}

/// Connects to the runtime's streaming URL (plain HTTP, as containerd serves it by default)
/// and upgrades.
async fn dial(
    url: &str,
    mut request: Request<Empty<Bytes>>,
) -> Result<(Response<()>, hyper::upgrade::Upgraded), Failure> {
    let failed = |message: String| (StatusCode::INTERNAL_SERVER_ERROR, message);
    let uri: http::Uri = url
        .parse()
        .map_err(|e| failed(format!("the runtime's streaming URL {url:?}: {e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(failed(format!(
            "the runtime's streaming URL {url:?} is not plain http (TLS streaming is not supported)"
        )));
    }
    let Some(authority) = uri.authority().cloned() else {
        return Err(failed(format!(
            "the runtime's streaming URL {url:?} has no host"
        )));
    };
    let port = authority.port_u16().unwrap_or(80);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let tcp = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| failed(format!("dialing {authority}: timeout")))?
    .map_err(|e| failed(format!("dialing {authority}: {e}")))?;
    *request.uri_mut() = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e| failed(format!("{e}")))?;
    if let Ok(host) = http::HeaderValue::from_str(authority.as_str()) {
        request.headers_mut().insert(http::header::HOST, host);
    }
    serving::upgrade::connect(tcp, request)
        .await
        .map_err(|err| match err {
            serving::upgrade::UpgradeError::Refused { status, body } => (status, body),
            serving::upgrade::UpgradeError::Transport(err) => failed(err),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_in_both_spellings() {
        let q =
            StreamQuery::parse("command=cat&command=%2Fetc%2Fhostname&input=1&output=1&error=1")
                .unwrap();
        assert_eq!(q.command, ["cat", "/etc/hostname"]);
        assert!(q.stdin && q.stdout && q.stderr && !q.tty);
        let q = StreamQuery::parse("stdin=true&stdout=true&stderr=true&tty=true").unwrap();
        assert!(q.stdin && q.stdout && q.tty);
        assert!(!q.stderr, "a terminal has no separate stderr");
        let q = StreamQuery::parse("port=80&port=8080,9090").unwrap();
        assert_eq!(q.ports, [80, 8080, 9090]);
        assert!(StreamQuery::parse("port=0").is_err());
        assert!(StreamQuery::parse("port=http").is_err());
    }

    #[test]
    fn offered_protocols_are_read_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            "sec-websocket-protocol",
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        headers.append("sec-websocket-protocol", "channel.k8s.io".parse().unwrap());
        assert_eq!(
            offered_protocols(&headers),
            ["v5.channel.k8s.io", "v4.channel.k8s.io", "channel.k8s.io"]
        );
    }
}
