//! kubelet: the node agent. So far, the node side: it registers its Node, keeps the Node's
//! status (capacity and allocatable, addresses, nodeInfo, the pressure and Ready conditions) and
//! renews its Lease, over a container runtime abstracted as [`runtime::NodeRuntime`]. With
//! `--container-runtime-endpoint sim://` the runtime is simulated, and `--hollow-nodes N` runs N
//! simulated nodes in one process (like kubemark's hollow nodes), each a pair of tasks, with a
//! simulated machine of its own (4 CPUs, 16Gi) and the process's address.
//!
//! The parts: [`options`] (flags) and [`config`] (the KubeletConfiguration file, defaults and
//! flag overrides); [`runtime`] and [`runtime_state`] (the runtime and its health);
//! [`nodestatus`] (registration, status setters, the status patch) and [`nodelease`];
//! [`resources`] and [`eviction`] (allocatable arithmetic, thresholds, pressure); [`agent`]
//! (one node's tasks); [`healthz`].

pub mod admission;
pub mod agent;
pub mod cni;
pub mod config;
pub mod envvars;
pub mod eviction;
pub mod healthz;
pub mod kuberuntime;
pub mod nodelease;
pub mod nodestatus;
pub mod object_cache;
pub mod options;
pub mod pleg;
pub mod pods;
pub mod podstatus;
pub mod prober;
pub mod pull_secrets;
pub mod resources;
pub mod runtime;
pub mod runtime_state;
pub mod server;
pub mod simcri;
pub mod static_pods;
pub mod status_manager;
pub mod volumes;

use std::sync::Arc;

use anyhow::{anyhow, Context};
use client::{Client, ClientOptions};
use tokio::sync::watch;

use crate::agent::{AgentSpec, Shared};
use crate::config::KubeletConfig;
use crate::eviction::{HostPressure, NoPressure};
use crate::nodestatus::addresses;
use crate::nodestatus::machine::{HostIdentity, MachineInfo};
use crate::nodestatus::register::NodeIdentity;
pub use crate::options::Options;
use crate::runtime_state::{RuntimeState, RUNTIME_POLL_PERIOD};

/// The host's name as the kubelet uses it: lower-cased, trimmed.
pub fn os_hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .trim()
        .to_lowercase()
}

/// With `failSwapOn`, a host with active swap is refused (upstream's check and message).
pub fn check_swap(proc_swaps: &str) -> Result<(), String> {
    let active: Vec<&str> = proc_swaps
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if active.is_empty() {
        return Ok(());
    }
    Err(format!(
        "running with swap on is not supported, please disable swap or set --fail-swap-on flag to false. /proc/swaps contained: [{}]",
        active.join(" ")
    ))
}

/// Where pod log directories go: upstream's /var/log/pods for the default root dir, else a
/// directory inside the root dir (so tests and hollow nodes leave the host's alone).
pub fn pod_logs_root(root_dir: &std::path::Path) -> std::path::PathBuf {
    if root_dir == std::path::Path::new("/var/lib/kubelet") {
        std::path::PathBuf::from("/var/log/pods")
    } else {
        root_dir.join("pod-logs")
    }
}

/// The names of hollow nodes: `<base>-0` ... `<base>-<n-1>`.
pub fn hollow_node_names(base: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| format!("{base}-{i}")).collect()
}

/// Runs the kubelet until SIGTERM/SIGINT.
pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = Arc::new(KubeletConfig::load(&options)?);
    std::fs::create_dir_all(&config.root_dir)
        .with_context(|| format!("creating the root dir {}", config.root_dir.display()))?;
    if config.fail_swap_on && !config.simulated() {
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        check_swap(&swaps).map_err(|err| anyhow!(err))?;
    }
    if !config.simulated() {
        for ip in &config.node_ips {
            addresses::validate_node_ip(*ip).map_err(|err| anyhow!("--node-ip: {err}"))?;
        }
    }
    let runtimes = runtime::connect(
        &config.container_runtime_endpoint,
        &config.image_service_endpoint,
    )
    .map_err(|err| anyhow!("{err}"))?;
    let runtime = runtimes.node.clone();
    let mut manager = kuberuntime::RuntimeManager::new(
        runtimes.cri.clone(),
        runtimes.images.clone(),
        pod_logs_root(&config.root_dir),
        &runtimes.runtime_type,
    );
    manager.cluster_dns = config.cluster_dns.iter().map(|ip| ip.to_string()).collect();
    manager.cluster_domain = config.cluster_domain.clone();
    let manager = Arc::new(manager);
    let runtime_state = Arc::new(RuntimeState::default());
    // One check before anything registers, so the first status already says how it is.
    runtime_state.update_runtime_up(runtime.as_ref()).await;

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(
        runtime_state
            .clone()
            .run(runtime.clone(), RUNTIME_POLL_PERIOD, stop_rx.clone()),
    );
    if config.healthz_port != 0 {
        let checks: Vec<healthz::Check> = vec![("ping".to_string(), Arc::new(|| Ok(())))];
        tokio::spawn(healthz::serve(
            config.healthz_bind_address,
            config.healthz_port,
            Arc::new(checks),
            None,
            stop_rx.clone(),
        ));
    }

    let hostname = config.hostname_override.clone().unwrap_or_else(os_hostname);
    let standalone = options.client.kubeconfig.is_none() && options.client.master.is_none();
    if config.hollow_nodes == 0 {
        start_server(
            &options,
            &config,
            &hostname,
            standalone,
            runtimes.cri.clone(),
            stop_rx.clone(),
        )
        .await?;
    }
    if standalone {
        tracing::info!("No API server defined - no node status update will be sent");
        start_standalone(&config, manager, &hostname, stop_rx);
    } else {
        start_agents(
            &options,
            &config,
            runtime_state,
            manager,
            &hostname,
            stop_rx,
        )
        .await?;
    }
    serving::shutdown_signal().await;
    stop_tx.send_replace(true);
    Ok(())
}

/// A kubelet without an API server: only its static pods run (upstream's standalone mode,
/// how a control plane's own static pods start before there is an apiserver).
fn start_standalone(
    config: &Arc<KubeletConfig>,
    manager: Arc<kuberuntime::RuntimeManager>,
    hostname: &str,
    stop: watch::Receiver<bool>,
) {
    let Some(dir) = config.static_pod_path.clone() else {
        return;
    };
    let pleg = pleg::Pleg::new(manager.clone());
    tokio::spawn(pleg.clone().run(stop.clone()));
    let status = status_manager::StatusManager::offline();
    let agent = pods::PodAgent::new(
        hostname,
        config.node_ips.iter().map(|ip| ip.to_string()).collect(),
        manager.clone(),
        status,
        Arc::new(volumes::VolumeManager::new(config.root_dir.clone(), None)),
        None,
    )
    .with_pleg(pleg);
    let agent = Arc::new(agent);
    agent.start_standalone();
    let static_pods = static_pods::StaticPods {
        dir,
        node: hostname.to_string(),
        client: None,
        agent: Arc::downgrade(&agent),
        recorder: None,
    };
    tokio::spawn(async move {
        // The loop holds the agent only weakly; this task keeps it alive.
        let _agent = agent;
        static_pods.run(stop).await;
    });
}

/// The kubelet's own API on `--port` (only for a real node: hollow nodes share one process).
async fn start_server(
    options: &Options,
    config: &Arc<KubeletConfig>,
    hostname: &str,
    standalone: bool,
    runtime: Arc<dyn cri::RuntimeService>,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let client = if standalone {
        None
    } else {
        let kube_config = options
            .client
            .load()
            .await
            .context("kubelet cannot load its kubeconfig")?;
        Some(Client::new(kube_config, ClientOptions::new("kubelet"))?)
    };
    let mut hosts = vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    let node_ips = addresses::node_ips(&config.node_ips, hostname).unwrap_or_default();
    hosts.extend(node_ips.iter().map(|ip| ip.to_string()));
    let auth = match server::auth::KubeletAuth::new(config, client.clone(), hostname) {
        Ok(auth) => auth,
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "the kubelet server cannot start");
            return Ok(());
        }
    };
    let server = Arc::new(server::KubeletServer {
        logs_root: pod_logs_root(&config.root_dir),
        root_dir: config.root_dir.clone(),
        node_name: hostname.to_string(),
        client,
        auth,
        runtime: Some(runtime),
    });
    // Like the pod logs: a root dir of its own keeps the host's (and other kubelets') certs alone.
    let mut config = (**config).clone();
    if config.cert_dir == std::path::Path::new("/var/lib/kubelet/pki")
        && config.root_dir != std::path::Path::new("/var/lib/kubelet")
    {
        config.cert_dir = config.root_dir.join("pki");
    }
    // The node's work goes on without its API (e.g. the port is taken by another kubelet).
    if let Err(err) = server::serve(&config, server, hosts, stop).await {
        tracing::error!(error = %format!("{err:#}"), "the kubelet server cannot start");
    }
    Ok(())
}

async fn start_agents(
    options: &Options,
    config: &Arc<KubeletConfig>,
    runtime_state: Arc<RuntimeState>,
    runtime_manager: Arc<kuberuntime::RuntimeManager>,
    hostname: &str,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let kube_config = options
        .client
        .load()
        .await
        .context("kubelet cannot load its kubeconfig")?;
    // Hollow nodes stand for N kubelets, each of which would have its own limiter.
    let nodes = config.hollow_nodes.max(1);
    let qps = config.kube_api_qps * nodes as f32;
    let burst = config.kube_api_burst.saturating_mul(nodes);
    let client = Client::new(
        kube_config.clone(),
        ClientOptions::new("kubelet").rate(qps, burst),
    )?;
    let heartbeat = Client::new(kube_config, ClientOptions::new("kubelet").rate(0.0, 0))?;
    let factory = client::SharedInformerFactory::new(client.clone()).stripping_managed_fields();
    let pleg = pleg::Pleg::new(runtime_manager.clone());
    tokio::spawn(pleg.clone().run(stop.clone()));
    let shared = Shared {
        config: config.clone(),
        client,
        heartbeat,
        runtime_state,
        runtime_manager,
        factory: factory.clone(),
        pleg: Some(pleg),
    };
    let node_ips = addresses::node_ips(&config.node_ips, hostname).map_err(|err| anyhow!(err))?;
    let identity = |name: &str| NodeIdentity {
        name: name.to_string(),
        hostname: name.to_string(),
        labels: config.node_labels.clone(),
        taints: config.register_with_taints.clone(),
        enable_controller_attach_detach: config.enable_controller_attach_detach,
        provider_id: config.provider_id.clone(),
    };
    if config.hollow_nodes > 0 {
        let host = HostIdentity::read();
        let names = hollow_node_names(hostname, config.hollow_nodes);
        tracing::info!(
            nodes = names.len(),
            first = %names.first().map(String::as_str).unwrap_or(""),
            "starting hollow nodes"
        );
        for name in names {
            let spec = AgentSpec {
                identity: identity(&name),
                machine: MachineInfo::hollow(&name, &host),
                node_ips: node_ips.clone(),
                pressure: Arc::new(NoPressure),
            };
            agent::spawn(&shared, spec, stop.clone());
        }
    } else {
        let machine = MachineInfo::host(&config.root_dir).map_err(|err| anyhow!(err))?;
        let pressure = HostPressure {
            root_dir: config.root_dir.clone(),
            memory_capacity: machine.memory_capacity,
            thresholds: config.eviction_hard.clone(),
        };
        let spec = AgentSpec {
            identity: identity(hostname),
            machine,
            node_ips,
            pressure: Arc::new(pressure),
        };
        tracing::info!(node = %hostname, endpoint = %config.container_runtime_endpoint, "starting the node agent");
        if !options.cni_conf_dir.as_os_str().is_empty() && !config.simulated() {
            tokio::spawn(cni::run(
                shared.client.clone(),
                hostname.to_string(),
                options.cni_conf_dir.clone(),
                config.root_dir.join("cni-ipam"),
                config.pod_cidr.clone(),
                stop.clone(),
            ));
        }
        agent::spawn(&shared, spec, stop);
    }
    factory.start();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_is_refused_only_when_active() {
        let header = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(check_swap(header).is_ok());
        assert!(check_swap("").is_ok());
        let err = check_swap(&format!("{header}/swapfile file 1048572 0 -2\n")).unwrap_err();
        assert!(
            err.starts_with("running with swap on is not supported"),
            "{err}"
        );
        assert!(err.contains("/swapfile"), "{err}");
    }

    #[test]
    fn hollow_names_count_from_zero() {
        assert_eq!(hollow_node_names("h", 3), vec!["h-0", "h-1", "h-2"]);
        assert!(hollow_node_names("h", 0).is_empty());
        assert!(!os_hostname().is_empty());
    }
}
