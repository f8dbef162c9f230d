//! `pods/exec`, `pods/attach` and `pods/portforward`: upstream's connect subresources, handed
//! to the kubelet of the pod's node (`/exec/<ns>/<pod>/<container>?command=..&input=1..`,
//! `/attach/..`, `/portForward/<ns>/<pod>`) as an upgrade-aware proxy. The client's upgrade
//! request (WebSocket `v5.channel.k8s.io` from kubectl 1.30+, `SPDY/3.1+portforward.k8s.io`
//! WebSocket tunnels for port-forward, or plain SPDY/3.1 from older clients) goes on to the
//! kubelet with its negotiating headers; the kubelet's 101 comes back, and the two connections
//! are spliced. The kubelet speaks every one of those protocols, so nothing is translated here.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::Empty;
use hyper::upgrade::OnUpgrade;
use serde_json::Value;

use crate::chain::Attributes;
use crate::errors::{self, ApiResult};
use crate::podlogs::{authority, choose_container, dial_kubelet, kubelet_error, kubelet_location};
use crate::request::ResourceRequest;
use crate::resources::{self, Resource};
use crate::server::{Body, State};

/// True for the subresources this module serves.
pub fn handles(request: &ResourceRequest, resource: &Resource) -> bool {
    resource.group.is_empty()
        && resource.kind == "Pod"
        && matches!(
            request.subresource.as_str(),
            "exec" | "attach" | "portforward"
        )
        && request.rest.is_empty()
        && matches!(request.verb, "create" | "get")
}

/// The options of one request, from its query (where `command` repeats).
#[derive(Debug, Default, PartialEq)]
struct StreamOptions {
    container: Option<String>,
    command: Vec<String>,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
    ports: Vec<String>,
}

impl StreamOptions {
    fn parse(query: Option<&str>) -> ApiResult<StreamOptions> {
        let mut options = StreamOptions::default();
        for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let flag = || -> ApiResult<bool> {
                match value.as_ref() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" | "" => Ok(true),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
                    other => Err(errors::bad_request(format!(
                        "strconv.ParseBool: parsing {other:?}: invalid syntax"
                    ))),
                }
            };
            match key.as_ref() {
                "container" => options.container = Some(value.to_string()),
                "command" => options.command.push(value.to_string()),
                "stdin" => options.stdin = flag()?,
                "stdout" => options.stdout = flag()?,
                "stderr" => options.stderr = flag()?,
                "tty" => options.tty = flag()?,
                "ports" => options.ports.push(value.to_string()),
                _ => {}
            }
        }
        Ok(options)
    }

    /// The kubelet's query: upstream's `input`/`output`/`error`/`tty` flags and `command`s.
    fn kubelet_query(&self, subresource: &str) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        if subresource == "portforward" {
            for port in &self.ports {
                out.append_pair("port", port);
            }
        } else {
            for command in &self.command {
                out.append_pair("command", command);
            }
            for (on, key) in [
                (self.stdin, "input"),
                (self.stdout, "output"),
                (self.stderr, "error"),
                (self.tty, "tty"),
            ] {
                if on {
                    out.append_pair(key, "1");
                }
            }
        }
        let query = out.finish();
        if query.is_empty() {
            query
        } else {
            format!("?{query}")
        }
    }
}

/// Serves one exec, attach or portforward request.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    request: &ResourceRequest,
    resource: &'static Resource,
    connection: &crate::authn::Connection,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    on_upgrade: Option<OnUpgrade>,
) -> ApiResult<Response<Body>> {
    let attributes = Attributes::for_request(request, resource, None);
    state
        .chain
        .authorize(&connection.credentials(headers), &attributes)?;
    let options = StreamOptions::parse(query)?;
    let subresource = request.subresource.as_str();
    if subresource != "portforward" && !(options.stdin || options.stdout || options.stderr) {
        return Err(errors::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    if subresource == "exec" && options.command.is_empty() {
        return Err(errors::bad_request("you must specify at least 1 command"));
    }
    let namespace = request.namespace.as_str();
    let name = request.name.as_str();
    let pod: Value = state.registry.get(resource, namespace, name).await?;
    let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
    if node_name.is_empty() {
        return Err(errors::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let path = match subresource {
        "portforward" => format!("/portForward/{namespace}/{name}"),
        _ => {
            let container = choose_container(&pod, name, options.container.as_deref())?;
            format!("/{subresource}/{namespace}/{name}/{container}")
        }
    } + &options.kubelet_query(subresource);
    let Some(upgrade) = serving::upgrade::requested(headers) else {
        return Err(errors::bad_request("Upgrade request required"));
    };
    let Some(on_upgrade) = on_upgrade else {
        return Err(errors::bad_request("Upgrade request required"));
    };
    let nodes = resources::find("", "v1", "nodes").ok_or_else(errors::route_not_found)?;
    let node = state.registry.get(nodes, "", node_name).await?;
    let (host, port) = kubelet_location(&node, node_name)?;
    let authority = authority(&host, port);
    let dial_error = |err: String| kubelet_error(500, format!("error dialing backend: {err}"));
    let tls = dial_kubelet(&host, port).await.map_err(dial_error)?;
    let mut backend = Request::builder()
        .method(method.clone())
        .uri(path.as_str())
        .header(http::header::HOST, authority.as_str())
        .body(Empty::<Bytes>::new())
        .map_err(|e| dial_error(e.to_string()))?;
    serving::upgrade::copy_headers(
        headers,
        backend.headers_mut(),
        serving::upgrade::REQUEST_HEADERS,
    );
    tracing::debug!(%path, %upgrade, node = node_name, "proxying a stream to the kubelet");
    let (head, upgraded) =
        serving::upgrade::connect(tls, backend)
            .await
            .map_err(|err| match err {
                serving::upgrade::UpgradeError::Refused { status, body } => {
                    kubelet_error(status.as_u16(), body)
                }
                serving::upgrade::UpgradeError::Transport(err) => dial_error(err),
            })?;
    tokio::spawn(serving::upgrade::splice(on_upgrade, upgraded));
    Ok(serving::upgrade::switching_protocols(&head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_options_become_the_kubelets_flags() {
        let options = StreamOptions::parse(Some(
            "command=sh&command=-c&command=echo+a%26b&container=c&stdin=true&stdout=true&tty=false",
        ))
        .unwrap();
        assert_eq!(options.command, ["sh", "-c", "echo a&b"]);
        assert_eq!(options.container.as_deref(), Some("c"));
        assert_eq!(
            options.kubelet_query("exec"),
            "?command=sh&command=-c&command=echo+a%26b&input=1&output=1"
        );
        let forward = StreamOptions::parse(Some("ports=8080&ports=9090")).unwrap();
        assert_eq!(forward.kubelet_query("portforward"), "?port=8080&port=9090");
        assert!(StreamOptions::parse(Some("stdin=maybe")).is_err());
    }
}
