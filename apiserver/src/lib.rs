//! kube-apiserver: the REST + watch API in front of the storage layer.
//!
//! `main.rs` parses flags and calls [`run`]; tests call [`start`] with a [`Config`] whose ports
//! may be 0 and get back the bound addresses.
//!
//! A request goes: `server.rs` (listen, route) -> `request.rs` (what is asked) -> `handlers.rs`
//! (verbs, negotiation) -> `chain.rs` (authentication, authorization, admission, validation) ->
//! `registry.rs` (metadata rules, compare-and-swap on storage). Watches and `resourceVersion=0`
//! lists are served from `cache.rs` (one watch cache per resource).

mod admission;
mod admission_plugins;
mod allocator;
mod apply;
mod auditing;
mod authn;
mod bootstrap;
mod cache;
pub mod chain;
pub mod config;
mod discovery;
mod encrypted;
pub mod errors;
mod fieldmanager;
mod fieldvalidation;
mod handlers;
mod health;
mod metrics;
mod negotiation;
mod node_authz;
mod object;
mod openapi_routes;
mod patching;
mod podlogs;
mod pods;
mod podsecurity;
mod podstream;
mod quota;
mod rbac_authz;
mod registry;
pub mod request;
pub mod resources;
mod reviews;
mod scale;
mod selectors;
mod server;
mod serviceaccounts;
mod services;
mod strategy;
mod table;
mod validation;
mod watch;
mod webhooks;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch as signal;

pub use config::Options;

/// Where the data lives.
#[derive(Clone, Debug)]
pub enum StorageConfig {
    Embedded { data_dir: PathBuf },
    Etcd(storage::etcd::EtcdConfig),
}

/// Everything [`start`] needs, already validated.
#[derive(Clone, Debug)]
pub struct Config {
    pub storage: StorageConfig,
    pub compaction_interval: Duration,
    /// Plain HTTP, full access; `None` disables it.
    pub insecure_listen: Option<SocketAddr>,
    /// HTTPS; `None` disables it.
    pub secure_listen: Option<SocketAddr>,
    pub cert_dir: PathBuf,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub advertise_address: Option<IpAddr>,
    pub client_ca_file: Option<PathBuf>,
    pub token_auth_file: Option<PathBuf>,
    pub service_account_tokens: serviceaccounts::TokenConfig,
    pub anonymous_auth: bool,
    pub authorization_mode: Vec<String>,
    pub service_range: allocator::Cidr,
    pub service_range_text: String,
    pub node_port_range: (u16, u16),
    pub watch_cache: watch_cache::Config,
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
    pub audit: auditing::AuditConfig,
    pub encryption_provider_config: Option<PathBuf>,
    pub enable_admission_plugins: Vec<String>,
    /// Services (admission webhooks' `clientConfig.service`) are reached at an endpoint's
    /// address rather than the cluster IP.
    pub enable_aggregator_routing: bool,
    pub disable_admission_plugins: Vec<String>,
}

impl Config {
    pub fn from_options(o: &Options) -> anyhow::Result<Config> {
        let storage = if o.etcd_servers.is_empty() {
            StorageConfig::Embedded {
                data_dir: o.data_dir.clone(),
            }
        } else {
            let mut etcd = storage::etcd::EtcdConfig::new(o.etcd_servers.clone());
            etcd.prefix = o.etcd_prefix.clone();
            etcd.ca_file = o.etcd_cafile.clone();
            etcd.cert_file = o.etcd_certfile.clone();
            etcd.key_file = o.etcd_keyfile.clone();
            StorageConfig::Etcd(etcd)
        };
        let service_range = allocator::Cidr::parse(&o.service_cluster_ip_range)
            .map_err(|e| anyhow::anyhow!("--service-cluster-ip-range: {e}"))?;
        let node_port_range = allocator::parse_port_range(&o.service_node_port_range)
            .map_err(|e| anyhow::anyhow!("--service-node-port-range: {e}"))?;
        Ok(Config {
            storage,
            compaction_interval: o.etcd_compaction_interval,
            insecure_listen: (o.insecure_port != 0)
                .then(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), o.insecure_port)),
            secure_listen: (o.secure_port != 0)
                .then(|| SocketAddr::new(o.bind_address, o.secure_port)),
            cert_dir: o.cert_dir.clone(),
            tls_cert_file: o.tls_cert_file.clone(),
            tls_private_key_file: o.tls_private_key_file.clone(),
            advertise_address: o.advertise_address,
            client_ca_file: o.client_ca_file.clone(),
            token_auth_file: o.token_auth_file.clone(),
            service_account_tokens: serviceaccounts::TokenConfig {
                signing_key_file: o.service_account_signing_key_file.clone(),
                key_files: o.service_account_key_file.clone(),
                issuers: o.service_account_issuer.clone(),
                api_audiences: o.api_audiences.clone(),
                max_expiration_seconds: i64::try_from(
                    o.service_account_max_token_expiration.as_secs(),
                )
                .unwrap_or(i64::MAX),
            },
            anonymous_auth: o.anonymous_auth,
            authorization_mode: o.authorization_mode.clone(),
            service_range,
            service_range_text: o.service_cluster_ip_range.clone(),
            node_port_range,
            watch_cache: watch_cache::Config::default(),
            max_requests_inflight: o.max_requests_inflight,
            max_mutating_requests_inflight: o.max_mutating_requests_inflight,
            encryption_provider_config: o.encryption_provider_config.clone(),
            enable_admission_plugins: o.enable_admission_plugins.clone(),
            enable_aggregator_routing: o.enable_aggregator_routing,
            disable_admission_plugins: o.disable_admission_plugins.clone(),
            audit: auditing::AuditConfig {
                policy_file: o.audit_policy_file.clone(),
                log_path: o.audit_log_path.clone(),
                max_age_days: o.audit_log_maxage,
                max_backups: o.audit_log_maxbackup,
                max_size_mb: o.audit_log_maxsize,
            },
        })
    }

    /// A config for tests: embedded store in `data_dir`, insecure port on an ephemeral loopback
    /// port, no HTTPS.
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            storage: StorageConfig::Embedded {
                data_dir: data_dir.into(),
            },
            compaction_interval: Duration::from_secs(300),
            insecure_listen: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)),
            secure_listen: None,
            cert_dir: PathBuf::from("/nonexistent"),
            tls_cert_file: None,
            tls_private_key_file: None,
            advertise_address: None,
            client_ca_file: None,
            token_auth_file: None,
            service_account_tokens: serviceaccounts::TokenConfig::default(),
            anonymous_auth: false,
            authorization_mode: vec!["AlwaysAllow".into()],
            service_range: allocator::Cidr::parse("10.0.0.0/24")
                .unwrap_or_else(|_| unreachable_cidr()),
            service_range_text: "10.0.0.0/24".into(),
            node_port_range: (30000, 32767),
            watch_cache: watch_cache::Config {
                history_capacity: 200,
                watcher_buffer: 1000,
                bookmark_interval: Duration::from_secs(1),
            },
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            audit: auditing::AuditConfig::default(),
            encryption_provider_config: None,
            enable_admission_plugins: Vec::new(),
            enable_aggregator_routing: false,
            disable_admission_plugins: Vec::new(),
        }
    }
}

#[allow(clippy::unreachable)]
fn unreachable_cidr() -> allocator::Cidr {
    unreachable!("a constant CIDR parses")
}

/// A started apiserver.
pub struct Running {
    pub insecure_addr: Option<SocketAddr>,
    pub secure_addr: Option<SocketAddr>,
    stop: signal::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    state: Arc<server::State>,
}

impl Running {
    /// `http://127.0.0.1:<port>` of the insecure port.
    pub fn url(&self) -> Option<String> {
        self.insecure_addr.map(|a| format!("http://{a}"))
    }

    /// Stops listening, ends open watches, and waits for the serving tasks.
    pub async fn shutdown(self) {
        self.state
            .health
            .shutting_down
            .store(true, Ordering::Release);
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

async fn open_storage(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    let store = open_backend(config).await?;
    let Some(path) = &config.encryption_provider_config else {
        return Ok(store);
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let encryption = encryption::EncryptionConfig::parse(&text)
        .with_context(|| format!("--encryption-provider-config {}", path.display()))?;
    Ok(Arc::new(encrypted::EncryptedStorage::new(
        store, encryption,
    )))
}

async fn open_backend(config: &Config) -> anyhow::Result<Arc<dyn Storage>> {
    Ok(match &config.storage {
        StorageConfig::Embedded { data_dir } => {
            let store = storage::embedded::EmbeddedStore::open(
                storage::embedded::EmbeddedConfig::new(data_dir),
            )
            .with_context(|| format!("opening the embedded store in {}", data_dir.display()))?;
            Arc::new(store)
        }
        StorageConfig::Etcd(etcd) => Arc::new(
            storage::etcd::EtcdStore::connect(etcd.clone())
                .await
                .context("connecting to etcd")?,
        ),
    })
}

/// Opens storage, starts the watch caches, ensures the built-in objects, and starts listening.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let store = open_storage(&config).await?;
    if !config.compaction_interval.is_zero() {
        storage::compactor::spawn_compactor(store.clone(), config.compaction_interval);
    }
    let caches = Arc::new(
        cache::Caches::start(store.clone(), config.watch_cache.clone())
            .await
            .context("starting the watch caches")?,
    );
    let (stop, stopped) = signal::channel(false);
    let client_cas = match &config.client_ca_file {
        Some(path) => authn::read_certificates(path).context("--client-ca-file")?,
        None => Vec::new(),
    };
    let (chain, rbac) = build_chain(&config, &client_cas, &caches)?;
    let state = Arc::new(server::State {
        registry: registry::Registry::new(store.clone()),
        chain,
        rbac,
        token_issuer: serviceaccounts::TokenIssuer::from_config(&config.service_account_tokens)?,
        metrics: metrics::Metrics::default(),
        health: health::Health::new(store.clone()),
        caches,
        shutdown: stopped.clone(),
        config: config.clone(),
        inflight: server::Inflight::new(
            config.max_requests_inflight,
            config.max_mutating_requests_inflight,
        ),
        auditor: auditing::Auditor::from_config(&config.audit)?,
    });
    openapi_routes::warm_up();

    let mut tasks = Vec::new();
    let mut insecure_addr = None;
    if let Some(addr) = config.insecure_listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        insecure_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, "serving insecurely on loopback");
        tasks.push(tokio::spawn(server::serve_plain(
            state.clone(),
            listener,
            stopped.clone(),
        )));
    }
    let mut secure_addr = None;
    if let Some(addr) = config.secure_listen {
        let mut hosts = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            config.service_range.first().to_string(),
        ];
        if let Some(a) = config.advertise_address {
            hosts.push(a.to_string());
        }
        let acceptor = server::tls_acceptor(
            config.tls_cert_file.as_deref(),
            config.tls_private_key_file.as_deref(),
            &config.cert_dir,
            &hosts,
            &client_cas,
        )?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        secure_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %listener.local_addr()?, "serving securely");
        tasks.push(tokio::spawn(server::serve_tls(
            state.clone(),
            listener,
            acceptor,
            stopped.clone(),
        )));
    }

    let endpoint = secure_addr.map(|addr| bootstrap::Endpoint {
        address: config
            .advertise_address
            .unwrap_or(if addr.ip().is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                addr.ip()
            }),
        port: addr.port(),
    });
    bootstrap::ensure(&state, config.service_range.first(), endpoint)
        .await
        .map_err(|e| anyhow::anyhow!("creating the built-in objects: {e}"))?;
    bootstrap::ensure_rbac(&state)
        .await
        .map_err(|e| anyhow::anyhow!("creating the bootstrap RBAC policy: {e}"))?;
    wait_for_bootstrap_in_caches(&state).await;
    state.health.bootstrapped.store(true, Ordering::Release);
    Ok(Running {
        insecure_addr,
        secure_addr,
        stop,
        tasks,
        state,
    })
}

/// The request chain the flags ask for.
fn build_chain(
    config: &Config,
    client_cas: &[rustls::pki_types::CertificateDer<'static>],
    caches: &Arc<cache::Caches>,
) -> anyhow::Result<(chain::Chain, Option<Arc<rbac_authz::RbacAuthorizer>>)> {
    let mut rbac = None;
    let mut chain = chain::Chain::allow_all();
    chain.anonymous = config.anonymous_auth;
    if !client_cas.is_empty() {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        chain
            .authenticators
            .push(Arc::new(authn::X509Authenticator::new(
                client_cas, provider,
            )?));
    }
    if let Some(path) = &config.token_auth_file {
        chain
            .authenticators
            .push(Arc::new(authn::TokenFileAuthenticator::from_file(path)?));
    }
    chain
        .authenticators
        .push(Arc::new(serviceaccounts::BootstrapTokenAuthenticator::new(
            caches.clone(),
        )));
    if let Some(sa) = serviceaccounts::ServiceAccountAuthenticator::from_config(
        &config.service_account_tokens,
        caches.clone(),
    )? {
        chain.authenticators.push(Arc::new(sa));
    }
    chain
        .authenticators
        .push(Arc::new(authn::RejectUnknownBearer));
    install_admission(&mut chain, config, caches)?;
    let mut authorizers: Vec<Arc<dyn chain::Authorizer>> = vec![Arc::new(chain::PrivilegedGroup)];
    for mode in &config.authorization_mode {
        match mode.as_str() {
            "AlwaysAllow" => authorizers.push(Arc::new(chain::AlwaysAllow)),
            "AlwaysDeny" => authorizers.push(Arc::new(chain::AlwaysDeny)),
            "Node" => authorizers.push(Arc::new(node_authz::NodeAuthorizer::new(caches.clone()))),
            "RBAC" => {
                let authorizer = Arc::new(rbac_authz::RbacAuthorizer::new(caches.clone()));
                rbac = Some(authorizer.clone());
                authorizers.push(authorizer);
            }
            other => anyhow::bail!("--authorization-mode: unsupported mode {other:?} (supported: Node, RBAC, AlwaysAllow, AlwaysDeny)"),
        }
    }
    chain.authorizers = authorizers;
    Ok((chain, rbac))
}

/// Upstream's admission plugins in upstream's order; the ones this server implements, with the
/// ones on by default marked.
const ADMISSION_PLUGINS: &[(&str, bool)] = &[
    ("NamespaceLifecycle", true),
    ("LimitRanger", true),
    ("ServiceAccount", true),
    ("NodeRestriction", false),
    ("TaintNodesByCondition", true),
    ("PodSecurity", true),
    ("Priority", true),
    ("DefaultTolerationSeconds", true),
    ("DefaultStorageClass", true),
    ("StorageObjectInUseProtection", true),
    ("MutatingAdmissionWebhook", true),
    ("ValidatingAdmissionWebhook", true),
    ("ResourceQuota", true),
];

/// Installs the admission plugins `--enable-admission-plugins` / `--disable-admission-plugins`
/// leave on, in upstream's order.
fn install_admission(
    chain: &mut chain::Chain,
    config: &Config,
    caches: &Arc<cache::Caches>,
) -> anyhow::Result<()> {
    for name in config
        .enable_admission_plugins
        .iter()
        .chain(&config.disable_admission_plugins)
    {
        if !ADMISSION_PLUGINS.iter().any(|(known, _)| known == name) {
            anyhow::bail!(
                "admission plugin {name:?} is not supported (supported: {})",
                ADMISSION_PLUGINS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    for (name, default_on) in ADMISSION_PLUGINS {
        let on = (*default_on || config.enable_admission_plugins.iter().any(|e| e == name))
            && !config.disable_admission_plugins.iter().any(|d| d == name);
        if !on {
            continue;
        }
        match *name {
            "LimitRanger" => {
                let plugin = Arc::new(quota::LimitRanger::new(caches.clone()));
                chain.mutating.push(plugin.clone());
                chain.validating.push(plugin);
            }
            "ServiceAccount" => chain
                .mutating
                .push(Arc::new(admission_plugins::ServiceAccount)),
            "TaintNodesByCondition" => chain
                .mutating
                .push(Arc::new(admission_plugins::TaintNodesByCondition)),
            "Priority" => chain
                .mutating
                .push(Arc::new(admission_plugins::Priority::new(caches.clone()))),
            "DefaultTolerationSeconds" => chain
                .mutating
                .push(Arc::new(admission_plugins::DefaultTolerationSeconds)),
            "StorageObjectInUseProtection" => chain
                .mutating
                .push(Arc::new(admission_plugins::StorageObjectInUseProtection)),
            "NodeRestriction" => chain
                .validating
                .push(Arc::new(admission_plugins::NodeRestriction)),
            "PodSecurity" => chain
                .validating
                .push(Arc::new(podsecurity::PodSecurity::new(caches.clone()))),
            "DefaultStorageClass" => {
                chain
                    .mutating
                    .push(Arc::new(admission_plugins::DefaultStorageClass::new(
                        caches.clone(),
                    )))
            }
            "MutatingAdmissionWebhook" => chain.mutating.push(Arc::new(
                webhooks::Webhooks::mutating(caches.clone(), config.enable_aggregator_routing),
            )),
            "ValidatingAdmissionWebhook" => {
                chain
                    .validating
                    .push(Arc::new(webhooks::Webhooks::validating(
                        caches.clone(),
                        config.enable_aggregator_routing,
                    )))
            }
            "ResourceQuota" => chain
                .validating
                .push(Arc::new(quota::ResourceQuota::new(caches.clone()))),
            // NamespaceLifecycle runs in the handlers (it needs the store).
            _ => {}
        }
    }
    Ok(())
}

/// Admission reads the caches: ready means they hold what bootstrap wrote (bounded wait).
async fn wait_for_bootstrap_in_caches(state: &server::State) {
    let wanted = [
        (
            "scheduling.k8s.io",
            "priorityclasses",
            "system-node-critical",
        ),
        ("", "namespaces", "kube-system"),
        ("rbac.authorization.k8s.io", "clusterroles", "cluster-admin"),
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    for (group, plural, name) in wanted {
        let Some(resource) =
            resources::find(group, resources::version_of(group).unwrap_or("v1"), plural)
        else {
            continue;
        };
        let Some(cache) = state.caches.get(resource) else {
            continue;
        };
        while cache.get(&resource.key("", name)).0.is_none()
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Runs until SIGINT or SIGTERM.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = Config::from_options(&options)?;
    let running = start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
