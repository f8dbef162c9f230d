//! DefaultBinder (upstream's `defaultbinder`): binds the pod by POSTing a `v1.Binding` to
//! `/api/v1/namespaces/{ns}/pods/{name}/binding`. The binding carries the pod's UID, so the
//! apiserver refuses it if the pod was deleted and recreated meanwhile.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::framework::{BindPlugin, CycleState, Handle, Plugin, Status};

pub const NAME: &str = "DefaultBinder";

pub struct DefaultBinder {
    client: Option<client::Client>,
}

pub fn new(_args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(DefaultBinder {
        client: handle.client.clone(),
    }))
}

/// The `v1.Binding` that puts `pod` on `node`.
pub fn binding_for(pod: &Pod, node: &str) -> Binding {
    Binding {
        metadata: ObjectMeta {
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    }
}

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}

impl BindPlugin for DefaultBinder {
    fn bind<'a>(
        &'a self,
        _state: &'a CycleState,
        pod: &'a Pod,
        node: &'a str,
    ) -> BoxFuture<'a, Status> {
        async move {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            tracing::debug!(pod = %format!("{ns}/{name}"), node, "attempting to bind pod to node");
            let Some(client) = self.client.as_ref() else {
                return Status::error("DefaultBinder has no API client");
            };
            let api = client.api::<Pod>(Some(ns));
            match api
                .create_subresource::<Binding, serde_json::Value>(
                    "binding",
                    name,
                    &binding_for(pod, node),
                )
                .await
            {
                Ok(_) => Status::success(),
                // The server's message alone, as client-go's StatusError prints.
                Err(client::Error::Api(e)) => Status::error(e.message.clone()),
                Err(e) => Status::error(e.to_string()),
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "prod", "uid": "uid-1"},
            "spec": {"containers": []},
        }))
        .expect("pod")
    }

    #[test]
    fn the_binding_names_the_pod_its_uid_and_the_node() {
        let b = serde_json::to_value(binding_for(&pod(), "node-a")).expect("json");
        assert_eq!(
            b,
            json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": "web", "namespace": "prod", "uid": "uid-1"},
                "target": {"kind": "Node", "name": "node-a"},
            })
        );
    }

    #[tokio::test]
    async fn without_a_client_binding_is_an_error() {
        let pl = new(None, &Handle::for_tests()).expect("plugin");
        let status = pl
            .bind()
            .expect("bind point")
            .bind(&CycleState::new(), &pod(), "node-a")
            .await;
        assert_eq!(status.code(), Code::Error);
    }

    /// Serves one HTTP request with `status` and `body`, handing back what was asked.
    async fn serve_once(
        status: &'static str,
        body: &'static str,
    ) -> (String, tokio::task::JoinHandle<(String, String)>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, request_body) = loop {
                let n = conn.read(&mut chunk).await.expect("read");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break (head, text[end + 4..end + 4 + len].to_string());
                    }
                }
                if n == 0 {
                    break (text, String::new());
                }
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            conn.write_all(response.as_bytes()).await.expect("write");
            let request_line = head.lines().next().unwrap_or("").to_string();
            (request_line, request_body)
        });
        (url, task)
    }

    fn client_for(url: &str) -> client::Client {
        client::Client::new(
            kube::Config::new(url.parse().expect("url")),
            client::ClientOptions::new("test").rate(-1.0, 0),
        )
        .expect("client")
    }

    #[tokio::test]
    async fn binds_through_the_binding_subresource() {
        let (url, server) = serve_once(
            "201 Created",
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":201}"#,
        )
        .await;
        let handle = Handle {
            client: Some(client_for(&url)),
            ..Handle::for_tests()
        };
        let pl = new(None, &handle).expect("plugin");
        let status = pl
            .bind()
            .expect("bind point")
            .bind(&CycleState::new(), &pod(), "node-a")
            .await;
        assert!(status.is_success(), "{status}");
        let (request_line, body) = server.await.expect("server");
        // kube's request builder leaves an empty query ("...binding?").
        let target = request_line.split(' ').nth(1).unwrap_or("");
        assert!(request_line.starts_with("POST "), "{request_line}");
        assert_eq!(
            target.trim_end_matches('?'),
            "/api/v1/namespaces/prod/pods/web/binding"
        );
        let body: serde_json::Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(body["kind"], "Binding");
        assert_eq!(body["metadata"]["uid"], "uid-1");
        assert_eq!(body["target"], json!({"kind": "Node", "name": "node-a"}));
    }

    #[tokio::test]
    async fn a_refused_binding_is_an_error_with_the_servers_message() {
        let (url, server) = serve_once(
            "404 Not Found",
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web\" not found","reason":"NotFound","code":404}"#,
        )
        .await;
        let handle = Handle {
            client: Some(client_for(&url)),
            ..Handle::for_tests()
        };
        let pl = new(None, &handle).expect("plugin");
        let status = pl
            .bind()
            .expect("bind point")
            .bind(&CycleState::new(), &pod(), "node-a")
            .await;
        assert_eq!(status.code(), Code::Error);
        assert_eq!(status.message(), "pods \"web\" not found");
        server.await.expect("server");
    }
}
