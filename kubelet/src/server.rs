//! The kubelet's API on `--port` (10250): HTTPS with `--tls-cert-file`/`--tls-private-key-file`
//! or a self-signed `kubelet.crt` generated into `--cert-dir`, answering `/healthz`, `/pods`
//! (the node's pods as the API has them), `/containerLogs/<ns>/<pod>/<container>` (the CRI log
//! files, see [`logs`]) and `/metrics`.
//!
//! Every request is authenticated and authorized first ([`auth`]: client certificates,
//! TokenReview, anonymous; SubjectAccessReview on `nodes/<subresource>` or AlwaysAllow).

pub mod auth;
pub mod logs;
pub mod stats;
pub mod streaming;
pub mod translate;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::config::KubeletConfig;
use logs::{EntryParser, LogOptions};

/// How often a followed log file is read again.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How many idle polls pass between asking whether the container still runs.
const IDLE_POLLS_PER_CHECK: u32 = 10;

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What the handlers need: where logs are, and the API to read the node's pods from.
pub struct KubeletServer {
    pub logs_root: PathBuf,
    /// `--root-dir`: the filesystem `/stats/summary` reports for the node.
    pub root_dir: PathBuf,
    pub node_name: String,
    pub client: Option<client::Client>,
    pub auth: auth::KubeletAuth,
    /// The runtime asked for exec, attach and port-forward URLs.
    pub runtime: Option<Arc<dyn cri::RuntimeService>>,
}

/// Starts serving on `config.address:config.port`; returns the bound address.
pub async fn serve(
    config: &KubeletConfig,
    server: Arc<KubeletServer>,
    hosts: Vec<String>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let (cert, key) = match (&config.tls_cert_file, &config.tls_private_key_file) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone()),
        _ => serving::self_signed(&config.cert_dir, "kubelet", &hosts)?,
    };
    let (certs, key) = serving::load_cert_and_key(&cert, &key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let client_cas = server.auth.authentication.client_cas();
    let builder = if client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(Arc::new(serving::authn::RequestClientCert::new(
            &client_cas,
            provider,
        )))
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .context("the kubelet's serving certificate and key do not match")?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind((config.address, config.port))
        .await
        .with_context(|| format!("listening on {}:{}", config.address, config.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "kubelet server listening");
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stop.wait_for(|s| *s) => return,
            };
            let Ok((stream, _peer)) = accepted else {
                continue;
            };
            let acceptor = acceptor.clone();
            let server = server.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let client_certs: Option<Arc<[rustls::pki_types::CertificateDer<'static>]>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|chain| chain.iter().map(|c| c.clone().into_owned()).collect());
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let server = server.clone();
                    let client_certs = client_certs.clone();
                    async move {
                        let checked = server
                            .auth
                            .check(
                                req.method(),
                                req.uri().path(),
                                req.headers(),
                                client_certs.as_deref(),
                            )
                            .await;
                        let response = match checked {
                            Ok(_) => route(&server, req).await,
                            Err(auth::Refusal::Unauthorized) => {
                                plain(StatusCode::UNAUTHORIZED, "Unauthorized")
                            }
                            Err(auth::Refusal::Forbidden(message)) => {
                                plain(StatusCode::FORBIDDEN, message)
                            }
                            Err(auth::Refusal::Failed(message)) => {
                                plain(StatusCode::INTERNAL_SERVER_ERROR, message)
                            }
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn plain(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", body)
}

async fn route(server: &KubeletServer, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if let Some((kind, rest)) = streaming_path(&path) {
        if req.method() != http::Method::GET && req.method() != http::Method::POST {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        }
        let parts: Vec<String> = rest
            .trim_end_matches('/')
            .split('/')
            .map(str::to_string)
            .collect();
        let wanted = if kind == streaming::Kind::PortForward {
            2
        } else {
            3
        };
        if parts.len() != wanted || parts.iter().any(String::is_empty) {
            return plain(StatusCode::NOT_FOUND, "404 page not found\n");
        }
        return streaming::serve(
            server.runtime.as_ref(),
            kind,
            &parts[0],
            &parts[1],
            parts.get(2).map(String::as_str),
            req,
        )
        .await;
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let query = req.uri().query().unwrap_or("").to_string();
    match path.as_str() {
        "/healthz" => plain(StatusCode::OK, "ok"),
        "/metrics" => full(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::global().render(),
        ),
        "/pods" | "/pods/" => pods(server).await,
        "/stats/summary" | "/stats/summary/" => stats::summary(server, &query).await,
        "/metrics/resource" => stats::metrics(server, false).await,
        "/metrics/cadvisor" => stats::metrics(server, true).await,
        _ => match path.strip_prefix("/containerLogs/") {
            Some(rest) => {
                let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
                match parts.as_slice() {
                    [namespace, pod, container]
                        if ![namespace, pod, container].iter().any(|p| p.is_empty()) =>
                    {
                        container_logs(server, namespace, pod, container, &query).await
                    }
                    _ => plain(
                        StatusCode::BAD_REQUEST,
                        format!("Invalid container logs path {path:?}\n"),
                    ),
                }
            }
            None => plain(StatusCode::NOT_FOUND, "404 page not found\n"),
        },
    }
}

/// The streaming endpoint a path is for, and the rest of the path after it.
fn streaming_path(path: &str) -> Option<(streaming::Kind, &str)> {
    [
        ("/exec/", streaming::Kind::Exec),
        ("/attach/", streaming::Kind::Attach),
        ("/portForward/", streaming::Kind::PortForward),
    ]
    .into_iter()
    .find_map(|(prefix, kind)| path.strip_prefix(prefix).map(|rest| (kind, rest)))
}

/// The node's pods as a PodList (upstream reads its pod manager; this kubelet asks the API for
/// the pods bound to it, which is what the pod manager is fed from).
async fn pods(server: &KubeletServer) -> Response<Body> {
    let Some(client) = &server.client else {
        return full(
            StatusCode::OK,
            "application/json",
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#,
        );
    };
    let path = format!(
        "/api/v1/pods?fieldSelector=spec.nodeName%3D{}",
        server.node_name
    );
    match client.get_json::<serde_json::Value>(&path).await {
        Ok(mut list) => {
            if let Some(obj) = list.as_object_mut() {
                obj.insert("kind".into(), "PodList".into());
                obj.insert("apiVersion".into(), "v1".into());
            }
            full(StatusCode::OK, "application/json", list.to_string())
        }
        Err(err) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the node's pods: {err}\n"),
        ),
    }
}

async fn container_logs(
    server: &KubeletServer,
    namespace: &str,
    pod: &str,
    container: &str,
    query: &str,
) -> Response<Body> {
    let options = match LogOptions::from_query(query, chrono::Utc::now()) {
        Ok(options) => options,
        Err(err) => return plain(StatusCode::BAD_REQUEST, format!("{err}\n")),
    };
    let path = match logs::find_log_file(
        &server.logs_root,
        namespace,
        pod,
        container,
        options.previous,
    ) {
        Ok(path) => path,
        Err(err) => return plain(StatusCode::NOT_FOUND, format!("{err}\n")),
    };
    let data = match tokio::fs::read(&path).await {
        Ok(data) => data,
        Err(err) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to open log file {:?}: {err}\n", path.display()),
            )
        }
    };
    let mut parser = EntryParser::default();
    let (first, consumed) = logs::render_file(&data, &options, &mut parser);
    let mut remaining = options.limit_bytes;
    let first = logs::limit(first, &mut remaining);
    if !options.follow || options.previous || remaining == Some(0) {
        return plain(StatusCode::OK, first);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let _ = tx.try_send(Bytes::from(first));
    let follow = Follow {
        logs_root: server.logs_root.clone(),
        path,
        offset: consumed as u64,
        parser,
        options: LogOptions {
            tail_lines: None,
            ..options
        },
        remaining,
        client: server.client.clone(),
        namespace: namespace.to_string(),
        pod: pod.to_string(),
        container: container.to_string(),
    };
    tokio::spawn(follow.run(tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(Frame::data(chunk)), rx))
    });
    let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// One `follow=true` stream: reads what the runtime appends until the container is gone (and
/// its file stopped growing) or the client went away.
struct Follow {
    logs_root: PathBuf,
    path: PathBuf,
    offset: u64,
    parser: EntryParser,
    options: LogOptions,
    remaining: Option<u64>,
    client: Option<client::Client>,
    namespace: String,
    pod: String,
    container: String,
}

impl Follow {
    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        let mut idle = 0u32;
        loop {
            tokio::time::sleep(FOLLOW_POLL).await;
            if tx.is_closed() {
                return;
            }
            let Some(data) = self.read_new().await else {
                return;
            };
            let (text, consumed) = logs::render_file(&data, &self.options, &mut self.parser);
            self.offset += consumed as u64;
            if consumed == 0 {
                idle += 1;
                if idle.is_multiple_of(IDLE_POLLS_PER_CHECK) && self.container_gone().await {
                    return;
                }
                continue;
            }
            idle = 0;
            let text = logs::limit(text, &mut self.remaining);
            if !text.is_empty() && tx.send(Bytes::from(text)).await.is_err() {
                return;
            }
            if self.remaining == Some(0) {
                return;
            }
        }
    }

    /// The bytes after the offset; `None` once the file is gone.
    async fn read_new(&self) -> Option<Vec<u8>> {
        let mut file = tokio::fs::File::open(&self.path).await.ok()?;
        file.seek(std::io::SeekFrom::Start(self.offset))
            .await
            .ok()?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).await.ok()?;
        Some(data)
    }

    /// True when the container restarted (a newer log file) or the API no longer shows it
    /// running.
    async fn container_gone(&self) -> bool {
        let restarted = logs::find_log_file(
            &self.logs_root,
            &self.namespace,
            &self.pod,
            &self.container,
            false,
        )
        .map_or(true, |current| current != self.path);
        if restarted {
            return true;
        }
        let Some(client) = &self.client else {
            return false;
        };
        let path = format!("/api/v1/namespaces/{}/pods/{}", self.namespace, self.pod);
        let Ok(pod) = client.get_json::<serde_json::Value>(&path).await else {
            return false;
        };
        let statuses = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .chain(pod["status"]["initContainerStatuses"].as_array())
            .flatten();
        let running = statuses
            .filter(|s| s["name"].as_str() == Some(self.container.as_str()))
            .any(|s| s["state"]["running"].is_object());
        !running
    }
}
