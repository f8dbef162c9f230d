//! The secure port every daemon but the apiserver serves (upstream's `--secure-port`,
//! `--bind-address`, `--cert-dir`, `--tls-cert-file`, `--tls-private-key-file`): HTTPS with the
//! given certificate or a self-signed one generated into the cert dir, answering `/healthz`,
//! `/livez`, `/readyz` (200 `ok` while the daemon's health check passes, 500 naming the failure
//! otherwise) and `/metrics` (the process's Prometheus registry).
//!
//! [`serve_with_auth`] puts upstream's delegated authentication and authorization in front
//! ([`filter`], [`authn`], [`authz`]): client certificates, bearer tokens (TokenReview) and
//! anonymous users, then always-allowed groups and paths and a SubjectAccessReview. The
//! apiserver-backed halves live in the client crate (`client::delegated`), so this crate does
//! not depend on the client. [`serve`] alone answers every client, for tests and tools.

pub mod authn;
pub mod authz;
pub mod filter;
pub mod insecure;
pub mod upgrade;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

pub use filter::ServingAuth;

/// Why a request could not be authenticated or authorized, or why the settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The credentials were refused (401), or the authority refused to decide.
    #[error("{0}")]
    Rejected(String),
    /// The authority (the apiserver) could not be asked or gave no usable answer.
    #[error("{0}")]
    Unavailable(String),
    /// The flags or files do not make a usable configuration.
    #[error("{0}")]
    Config(String),
}

/// A daemon's `main` after flag parsing: logs to stderr at upstream's `-v` levels (0-1 info, 2-4
/// debug, 5+ trace; `RUST_LOG` overrides), runs `run` on a multi-threaded runtime, and turns its
/// error into one line on stderr and a failing exit code.
pub fn run_daemon<F>(name: &str, verbosity: u8, run: F) -> std::process::ExitCode
where
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let level = match verbosity {
        0..=1 => "info",
        2..=4 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("{name}: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct SecureServing {
    pub bind_address: std::net::IpAddr,
    /// 0 disables serving, as upstream.
    pub port: u16,
    pub cert_dir: PathBuf,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    /// The base name of generated files (`kube-controller-manager` -> `kube-controller-manager.crt`).
    pub name: String,
}

/// The daemon's health: `Err(reason)` makes /healthz and /readyz answer 500.
pub type HealthCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// Loads or generates the certificate and starts serving every client, without authentication;
/// returns the bound address.
pub async fn serve(
    config: SecureServing,
    health: HealthCheck,
) -> anyhow::Result<Option<SocketAddr>> {
    serve_inner(config, health, None).await
}

/// As [`serve`], with `auth` deciding who may see what; when it verifies client certificates,
/// the handshake asks for one (without requiring it).
pub async fn serve_with_auth(
    config: SecureServing,
    health: HealthCheck,
    auth: Arc<ServingAuth>,
) -> anyhow::Result<Option<SocketAddr>> {
    serve_inner(config, health, Some(auth)).await
}

async fn serve_inner(
    config: SecureServing,
    health: HealthCheck,
    auth: Option<Arc<ServingAuth>>,
) -> anyhow::Result<Option<SocketAddr>> {
    if config.port == 0 {
        return Ok(None);
    }
    let client_cas = auth
        .as_ref()
        .map(|a| a.authentication.client_cas())
        .unwrap_or_default();
    let acceptor = tls_acceptor(&config, &client_cas)?;
    let listener = TcpListener::bind((config.bind_address, config.port))
        .await
        .with_context(|| format!("listening on {}:{}", config.bind_address, config.port))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving securely");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let health = health.clone();
            let auth = auth.clone();
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
                    let health = health.clone();
                    let auth = auth.clone();
                    let client_certs = client_certs.clone();
                    async move {
                        if let Some(auth) = &auth {
                            if let Err(refused) = auth.check(&req, client_certs.as_deref()).await {
                                return Ok::<_, std::convert::Infallible>(refused);
                            }
                        }
                        Ok(route(&req, &health))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(Some(addr))
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    response
}

fn route(req: &Request<Incoming>, health: &HealthCheck) -> Response<Full<Bytes>> {
    if req.method() != http::Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "method not allowed\n".into(),
        );
    }
    match req.uri().path() {
        "/healthz" | "/livez" | "/readyz" => match health() {
            Ok(()) => text(StatusCode::OK, "text/plain; charset=utf-8", "ok".into()),
            Err(reason) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("[-]{reason}\nhealthz check failed\n"),
            ),
        },
        "/metrics" => text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            metrics::global().render(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "404 page not found\n".into(),
        ),
    }
}

fn tls_acceptor(
    config: &SecureServing,
    client_cas: &[rustls::pki_types::CertificateDer<'static>],
) -> anyhow::Result<TlsAcceptor> {
    let (cert_path, key_path) = match (&config.cert_file, &config.key_file) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        (None, None) => self_signed(
            &config.cert_dir,
            &config.name,
            &["localhost".into(), "127.0.0.1".into()],
        )?,
        _ => anyhow::bail!("--tls-cert-file and --tls-private-key-file must be given together"),
    };
    let (certs, key) = load_cert_and_key(&cert_path, &key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = if client_cas.is_empty() {
        builder.with_no_client_auth()
    } else {
        builder.with_client_cert_verifier(Arc::new(authn::RequestClientCert::new(
            client_cas, provider,
        )))
    };
    let mut tls = builder
        .with_single_cert(certs, key)
        .context("the serving certificate and key do not match")?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// A serving certificate chain and its key from PEM files, with errors naming the file.
pub fn load_cert_and_key(
    cert_path: &Path,
    key_path: &Path,
) -> anyhow::Result<(
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
)> {
    let cert_pem =
        std::fs::read(cert_path).with_context(|| format!("reading {}", cert_path.display()))?;
    let key_pem =
        std::fs::read(key_path).with_context(|| format!("reading {}", key_path.display()))?;
    let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .with_context(|| format!("{} holds no valid PEM certificate", cert_path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", cert_path.display());
    }
    let key =
        <rustls::pki_types::PrivateKeyDer as rustls::pki_types::pem::PemObject>::from_pem_slice(
            &key_pem,
        )
        .with_context(|| format!("{} holds no valid PEM private key", key_path.display()))?;
    Ok((certs, key))
}

/// `<cert_dir>/<name>.crt` and `.key`: reused when present, else generated self-signed for
/// `hosts` (upstream daemons do the same into `--cert-dir`).
pub fn self_signed(
    cert_dir: &Path,
    name: &str,
    hosts: &[String],
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let cert = cert_dir.join(format!("{name}.crt"));
    let key = cert_dir.join(format!("{name}.key"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(cert_dir)
        .with_context(|| format!("creating --cert-dir {}", cert_dir.display()))?;
    let made = rcgen::generate_simple_self_signed(hosts.to_vec())
        .context("generating a self-signed serving certificate")?;
    std::fs::write(&cert, made.cert.pem())
        .with_context(|| format!("writing {}", cert.display()))?;
    write_private(&key, made.signing_key.serialize_pem().as_bytes())?;
    tracing::info!(cert = %cert.display(), "generated a self-signed serving certificate");
    Ok((cert, key))
}

/// Writes a secret (a private key) readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (logging which), the daemons' signal to shut down cleanly;
/// never resolves when the handlers cannot be installed.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}
