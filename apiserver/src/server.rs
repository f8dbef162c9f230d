//! Listening and routing: the insecure loopback port, the HTTPS port (rustls, with a self-signed
//! certificate when none is given), and the dispatch of every path to its handler.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::chain::Chain;
use crate::errors::{self, ApiError};
use crate::handlers::{self, error_response, parse_query};
use crate::metrics::Metrics;
use crate::negotiation::json_response;
use crate::registry::Registry;
use crate::request::{self, Target};
use crate::{discovery, health, openapi_routes};

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Every response body: whole documents and streamed watches alike.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// What every request handler shares.
pub struct State {
    pub registry: Registry,
    pub chain: Chain,
    pub metrics: Metrics,
    pub health: health::Health,
    pub caches: Arc<crate::cache::Caches>,
    /// The RBAC authorizer, when RBAC is an authorization mode (for SelfSubjectRulesReview).
    pub rbac: Option<Arc<crate::rbac_authz::RbacAuthorizer>>,
    /// Signs TokenRequest tokens, when a signing key is configured.
    pub token_issuer: Option<crate::serviceaccounts::TokenIssuer>,
    /// Flips to true when the server shuts down: open watches end.
    pub shutdown: watch::Receiver<bool>,
    pub config: crate::Config,
    /// `--max-requests-inflight` / `--max-mutating-requests-inflight` (watches are exempt).
    pub inflight: Inflight,
    /// The audit log, when configured.
    pub auditor: Option<crate::auditing::Auditor>,
}

/// Limits on concurrent requests; `None` is unlimited.
pub struct Inflight {
    pub readonly: Option<tokio::sync::Semaphore>,
    pub mutating: Option<tokio::sync::Semaphore>,
}

impl Inflight {
    pub fn new(readonly: usize, mutating: usize) -> Inflight {
        let limit = |n: usize| (n > 0).then(|| tokio::sync::Semaphore::new(n));
        Inflight {
            readonly: limit(readonly),
            mutating: limit(mutating),
        }
    }
}

fn too_many_requests() -> Response<Body> {
    let mut response = error_response(&errors::too_many_requests(
        "Too many requests, please try again later.".into(),
    ));
    response.headers_mut().insert(
        http::header::RETRY_AFTER,
        http::HeaderValue::from_static("1"),
    );
    response
}

/// Routes one request.
pub async fn route(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let connection = parts
        .extensions
        .get::<crate::authn::Connection>()
        .cloned()
        .unwrap_or_default();
    let query = parse_query(parts.uri.query());
    let watch_param = handlers::query_bool(&query, "watch") == Some(true);
    let path = parts.uri.path().to_string();
    let target = request::parse(&parts.method, &path, watch_param);
    let (verb, resource_label) = match &target {
        Target::Resource(r) => (
            r.verb,
            Some((
                r.group.clone(),
                r.version.clone(),
                r.resource.clone(),
                r.subresource.clone(),
                r.namespace.is_empty(),
            )),
        ),
        _ => ("", None),
    };
    // Watches are long-running and exempt from the in-flight limits, as upstream's.
    let limit = match (
        verb == "watch",
        !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS),
    ) {
        (true, _) => None,
        (false, true) => state.inflight.mutating.as_ref(),
        (false, false) => state.inflight.readonly.as_ref(),
    };
    let _permit = match limit.map(|s| s.try_acquire()) {
        Some(Ok(permit)) => Some(permit),
        Some(Err(_)) => return too_many_requests(),
        None => None,
    };
    // Auditing needs to know who asked; only then is the identity worked out here too.
    let pending = state.auditor.as_ref().and_then(|auditor| {
        let user = state
            .chain
            .identify(&connection.credentials(&parts.headers))
            .ok();
        let agent = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        auditor.begin(
            user.as_ref(),
            &parts.method,
            &parts.uri,
            &target,
            &agent,
            connection.peer,
            chrono::Utc::now(),
        )
    });
    let level = pending.as_ref().map(|p| p.level);
    let records_bodies = level.is_some_and(|l| l >= audit::Level::Request);
    let mut request_body = None;
    let body =
        if records_bodies && matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
            let read = handlers::read_incoming(body).await;
            if let Ok(bytes) = &read {
                request_body = serde_json::from_slice::<serde_json::Value>(bytes).ok();
            }
            handlers::RequestBody::Buffered(read)
        } else {
            handlers::RequestBody::Incoming(body)
        };
    let result: Result<Response<Body>, ApiError> = match target {
        // Connect subresources (exec, attach, portforward) take the connection over.
        Target::Resource(r) => match crate::resources::find(&r.group, &r.version, &r.resource)
            .filter(|resource| crate::podstream::handles(&r, resource))
        {
            Some(resource) => {
                let on_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
                crate::podstream::serve(
                    &state,
                    &r,
                    resource,
                    &connection,
                    &parts.method,
                    &parts.headers,
                    parts.uri.query(),
                    on_upgrade,
                )
                .await
            }
            None => handlers::serve(state.clone(), r, connection, parts.headers, query, body).await,
        },
        // Everything else needs an authenticated user allowed to get the path.
        _ if !connection.insecure => {
            let attributes = crate::chain::Attributes::non_resource(&parts.method, &path);
            match state
                .chain
                .authorize(&connection.credentials(&parts.headers), &attributes)
            {
                Ok(_) => {
                    non_resource_target(&state, &parts.method, &parts.headers, target, &query).await
                }
                Err(err) => Err(err),
            }
        }
        other => non_resource_target(&state, &parts.method, &parts.headers, other, &query).await,
    };
    let response = result.unwrap_or_else(|err| error_response(&err));
    let mut response = response;
    if let (Some(auditor), Some(pending)) = (state.auditor.as_ref(), pending) {
        let code = response.status().as_u16();
        let streaming = verb == "watch" && code == 200;
        let mut response_body = None;
        if level == Some(audit::Level::RequestResponse) && !streaming {
            // Whole answers are small enough to hold; watches are never buffered.
            let (head, body) = response.into_parts();
            let bytes = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            response_body = serde_json::from_slice::<serde_json::Value>(&bytes).ok();
            response = Response::from_parts(
                head,
                http_body_util::Full::new(bytes)
                    .map_err(|e| match e {})
                    .boxed_unsync(),
            );
        }
        auditor.finish(pending, code, request_body.as_ref(), response_body.as_ref());
    }
    let is_watch = verb == "watch" && response.status() == StatusCode::OK;
    if !is_watch {
        state.metrics.observe_request(
            if verb.is_empty() {
                parts.method.as_str()
            } else {
                verb
            },
            resource_label.as_ref(),
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    response
}

async fn non_resource_target(
    state: &Arc<State>,
    method: &Method,
    headers: &http::HeaderMap,
    target: Target,
    query: &handlers::Query,
) -> Result<Response<Body>, ApiError> {
    match target {
        Target::Group { group } => only_get(method).and_then(|()| discovery::group(&group)),
        Target::GroupVersion { group, version } => {
            only_get(method).and_then(|()| discovery::group_version(&group, &version))
        }
        Target::NonResource(path) => non_resource(state, method, headers, &path, query).await,
        Target::Resource(_) => Err(errors::route_not_found()),
    }
}

fn only_get(method: &Method) -> Result<(), ApiError> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(errors::method_not_allowed())
    }
}

async fn non_resource(
    state: &Arc<State>,
    method: &Method,
    headers: &http::HeaderMap,
    path: &str,
    query: &handlers::Query,
) -> Result<Response<Body>, ApiError> {
    only_get(method)?;
    let trimmed = path.trim_end_matches('/');
    match trimmed {
        "/api" => discovery::core_versions(headers),
        "/apis" => discovery::groups(headers),
        "/version" => Ok(json_response(StatusCode::OK, &discovery::version())),
        "/metrics" => Ok(state.metrics.render(state)),
        "" => Ok(json_response(StatusCode::OK, &discovery::root_paths())),
        p if p.starts_with("/openapi") => openapi_routes::serve(p, headers, query),
        p if p == "/healthz"
            || p == "/livez"
            || p == "/readyz"
            || p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            state.health.serve(p, query).await
        }
        _ => Err(errors::route_not_found()),
    }
}

/// Accepts connections on `listener` until `shutdown` flips, handing each to `serve`.
async fn accept_loop<F, Fut>(listener: TcpListener, mut shutdown: watch::Receiver<bool>, serve: F)
where
    F: Fn(tokio::net::TcpStream, SocketAddr) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                tokio::spawn(serve(stream, peer));
            }
            Err(err) => tracing::warn!(%err, "accept failed"),
        }
    }
}

/// Serves plain HTTP (HTTP/1.1 and h2c) on `listener` until `shutdown` flips.
pub async fn serve_plain(
    state: Arc<State>,
    listener: TcpListener,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, shutdown, move |stream, peer| {
        let state = state.clone();
        let connection = crate::authn::Connection {
            insecure: true,
            client_certs: None,
            peer: Some(peer),
        };
        async move { serve_connection(state, TokioIo::new(stream), peer, connection).await }
    })
    .await
}

/// Serves HTTPS on `listener` until `shutdown` flips.
pub async fn serve_tls(
    state: Arc<State>,
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: watch::Receiver<bool>,
) {
    accept_loop(listener, shutdown, move |stream, peer| {
        let state = state.clone();
        let acceptor = acceptor.clone();
        async move {
            match acceptor.accept(stream).await {
                Ok(tls) => {
                    let certs = tls.get_ref().1.peer_certificates().map(|chain| {
                        Arc::new(
                            chain
                                .iter()
                                .map(|c| c.clone().into_owned())
                                .collect::<Vec<_>>(),
                        )
                    });
                    let connection = crate::authn::Connection {
                        insecure: false,
                        client_certs: certs,
                        peer: Some(peer),
                    };
                    serve_connection(state, TokioIo::new(tls), peer, connection).await
                }
                Err(err) => tracing::debug!(%peer, %err, "TLS handshake failed"),
            }
        }
    })
    .await
}

async fn serve_connection<I>(
    state: Arc<State>,
    io: I,
    peer: SocketAddr,
    connection: crate::authn::Connection,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let state = state.clone();
        req.extensions_mut().insert(connection.clone());
        async move { Ok::<_, Infallible>(route(state, req).await) }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // A client that does not finish sending its request headers in time is dropped (slow
    // clients cannot hold connections open forever).
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    if let Err(err) = builder.serve_connection_with_upgrades(io, service).await {
        tracing::debug!(%peer, %err, "connection ended with an error");
    }
}

/// The TLS settings for the secure port: the given certificate, or a self-signed one written to
/// `cert_dir` (reused on the next start, like upstream's `apiserver.crt`/`apiserver.key`).
pub fn tls_acceptor(
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
    cert_dir: &Path,
    hosts: &[String],
    client_cas: &[rustls::pki_types::CertificateDer<'static>],
) -> anyhow::Result<TlsAcceptor> {
    let (cert_path, key_path) = match (cert_file, key_file) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => serving::self_signed(cert_dir, "apiserver", hosts)?,
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file must be given together"),
    };
    let (certs, key) = serving::load_cert_and_key(&cert_path, &key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(Arc::new(crate::authn::RequestClientCert::new(
            client_cas, provider,
        )))
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .context("the serving certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
