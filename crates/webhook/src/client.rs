//! The HTTPS round trip to one webhook: an AdmissionReview POSTed to `clientConfig.url` over
//! HTTP/1.1 and rustls, trusting only `clientConfig.caBundle`, within `timeoutSeconds`.

use crate::review::{parse_review_response, review_request};
use crate::{Error, Request, Response};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Upstream's default `timeoutSeconds`, and the most validation allows.
const DEFAULT_TIMEOUT_SECONDS: u64 = 10;
const MAX_TIMEOUT_SECONDS: u64 = 30;
/// An answer carries at most an object and a patch of it; anything larger is not one.
const MAX_RESPONSE_BYTES: usize = 16 << 20;

/// Calls one webhook with the AdmissionReview for `request` and returns its checked answer.
/// Whether the answer is a denial, and what a failure means, is the caller's to decide
/// ([`crate::denial_status`], [`crate::fails_closed`]).
pub async fn call(webhook: &Value, request: &Request<'_>) -> Result<Response, Error> {
    call_resolved(webhook, request, None).await
}

/// Where a Service's traffic goes, as the apiserver resolves it: the Service's cluster IP and
/// port (upstream's default), or one of its endpoints (`--enable-aggregator-routing`).
pub trait ServiceResolver: Send + Sync {
    /// The host and port to dial for port `port` of Service `namespace/name`.
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Result<(String, u16), String>;
}

/// [`call`], with `clientConfig.service` resolved by `resolver`: the request goes to
/// `https://<name>.<namespace>.svc:<port><path>` (the name the webhook's certificate must
/// carry) at the address the resolver gives.
pub async fn call_resolved(
    webhook: &Value,
    request: &Request<'_>,
    resolver: Option<&dyn ServiceResolver>,
) -> Result<Response, Error> {
    let client_config = webhook.get("clientConfig").unwrap_or(&Value::Null);
    let service = client_config.get("service").filter(|s| !s.is_null());
    let (url, dial) = match (client_config.get("url").and_then(Value::as_str), service) {
        (Some(url), _) => (url.to_string(), None),
        (None, Some(service)) => {
            let Some(resolver) = resolver else {
                return Err(Error::ServiceNotSupported);
            };
            let text = |field: &str| service.get(field).and_then(Value::as_str).unwrap_or("");
            let (namespace, name) = (text("namespace"), text("name"));
            let port = service
                .get("port")
                .and_then(Value::as_u64)
                .and_then(|p| u16::try_from(p).ok())
                .unwrap_or(443);
            let path = match text("path") {
                "" => "/".to_string(),
                p if p.starts_with('/') => p.to_string(),
                p => format!("/{p}"),
            };
            let url = format!("https://{name}.{namespace}.svc:{port}{path}");
            let dial =
                resolver
                    .resolve(namespace, name, port)
                    .map_err(|reason| Error::Transport {
                        url: url.clone(),
                        reason,
                    })?;
            (url, Some(dial))
        }
        (None, None) => return Err(Error::NoClientConfig),
    };
    let url = url.as_str();
    let seconds = webhook
        .get("timeoutSeconds")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .map_or(DEFAULT_TIMEOUT_SECONDS, |s| s.min(MAX_TIMEOUT_SECONDS));
    // client-go's rest client tells the server its deadline, and upstream's errors name
    // the URL with it.
    let separator = if url.contains('?') { '&' } else { '?' };
    let full_url = format!("{url}{separator}timeout={seconds}s");
    let mut target = Target::parse(&full_url)?;
    target.dial = dial;
    let tls = tls_config(client_config)?;
    let uid = uuid::Uuid::new_v4().to_string();
    let body = review_request(request, &uid).to_string();
    tracing::debug!(webhook = ?webhook.get("name"), url = %full_url, "calling admission webhook");
    let answer = tokio::time::timeout(
        Duration::from_secs(seconds),
        post(&target, tls, Bytes::from(body)),
    )
    .await
    .map_err(|_| Error::Timeout {
        url: full_url.clone(),
    })?
    .map_err(|e| match e {
        PostError::Transport(reason) => Error::Transport {
            url: full_url.clone(),
            reason,
        },
        PostError::Status { code, body } => Error::HttpStatus { code, body },
    })?;
    let review: Value = serde_json::from_slice(&answer)
        .map_err(|e| Error::InvalidResponse(format!("decoding the AdmissionReview: {e}")))?;
    parse_review_response(&review, &uid)
}

/// Where to connect and what to ask for.
struct Target {
    host: String,
    port: u16,
    /// Where to connect instead of `host:port` (a resolved Service); TLS still names `host`.
    dial: Option<(String, u16)>,
    authority: String,
    path_and_query: String,
}

impl Target {
    fn parse(url: &str) -> Result<Target, Error> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("https") {
            return Err(invalid("the scheme must be https"));
        }
        let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Ok(Target {
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(443),
            dial: None,
            authority: authority.as_str().to_string(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
        })
    }
}

/// A client TLS configuration whose only roots are the webhook's `caBundle`: a webhook is
/// trusted for what its configuration says, never for what the host's store says.
fn tls_config(client_config: &Value) -> Result<Arc<rustls::ClientConfig>, Error> {
    let bad = |m: String| Error::InvalidCaBundle(m);
    let encoded = client_config
        .get("caBundle")
        .and_then(Value::as_str)
        .unwrap_or("");
    if encoded.is_empty() {
        return Err(bad(
            "none given, and the system trust roots are not used".into()
        ));
    }
    let pem = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(format!("bad PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("bad certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(bad("no PEM certificates".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

enum PostError {
    Transport(String),
    Status { code: u16, body: String },
}

/// Stops the connection task when the call is dropped (e.g. at the deadline), so a webhook
/// that never answers does not keep a socket open.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn post(
    target: &Target,
    tls: Arc<rustls::ClientConfig>,
    body: Bytes,
) -> Result<Bytes, PostError> {
    let transport = |e: &dyn std::fmt::Display| PostError::Transport(e.to_string());
    let server_name = ServerName::try_from(target.host.clone()).map_err(|e| transport(&e))?;
    let (dial_host, dial_port) = match &target.dial {
        Some((host, port)) => (host.as_str(), *port),
        None => (target.host.as_str(), target.port),
    };
    let tcp = tokio::net::TcpStream::connect((dial_host, dial_port))
        .await
        .map_err(|e| transport(&e))?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(server_name, tcp)
        .await
        .map_err(|e| transport(&e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport(&e))?;
    let _connection = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "admission webhook connection ended");
        }
    }));
    let request = http::Request::post(target.path_and_query.as_str())
        .header(http::header::HOST, target.authority.as_str())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json, */*")
        .body(Full::new(body))
        .map_err(|e| transport(&e))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| transport(&e))?;
    let status = response.status();
    let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| transport(&e))?
        .to_bytes();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes);
        return Err(PostError::Status {
            code: status.as_u16(),
            body: text.chars().take(1024).collect(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests;
