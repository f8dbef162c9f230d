//! A node agent: one node's registration and status loop and its Lease, as two tasks. A
//! process runs one agent for its own node, or N for hollow nodes; they share the clients, the
//! runtime and its health ([`Shared`]), so a hollow node costs two tasks, an event recorder and
//! its own small state, not threads or connections.

use std::net::IpAddr;
use std::sync::Arc;

use client::events::CoreEventRecorder;
use client::Client;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::KubeletConfig;
use crate::eviction::PressureObserver;
use crate::nodelease::{NodeLeaseController, LEASE_NAMESPACE};
use crate::nodestatus::machine::MachineInfo;
use crate::nodestatus::register::NodeIdentity;
use crate::nodestatus::{node_reference, NodeStatusManager};
use crate::runtime_state::RuntimeState;

/// What every agent of the process shares.
pub struct Shared {
    pub config: Arc<KubeletConfig>,
    /// Registration and events (rate-limited).
    pub client: Client,
    /// Status and Lease (not rate-limited, as upstream's heartbeat client).
    pub heartbeat: Client,
    pub runtime_state: Arc<RuntimeState>,
    /// The pod side's CRI manager, shared by every agent of the process.
    pub runtime_manager: Arc<crate::kuberuntime::RuntimeManager>,
    /// Informers (each agent's pods, services); started once every agent has asked.
    pub factory: client::SharedInformerFactory,
    /// The runtime pod cache and its relist, shared by every agent of the process (None:
    /// each pod worker reads the runtime itself).
    pub pleg: Option<Arc<crate::pleg::Pleg>>,
}

/// What one agent is.
pub struct AgentSpec {
    pub identity: NodeIdentity,
    pub machine: MachineInfo,
    pub node_ips: Vec<IpAddr>,
    pub pressure: Arc<dyn PressureObserver>,
}

/// Starts the agent's tasks; they end when `stop` turns true.
pub fn spawn(shared: &Shared, spec: AgentSpec, stop: watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
    let name = spec.identity.name.clone();
    let pods = pod_agent(shared, &spec, &name);
    let recorder = CoreEventRecorder::new(&shared.client, "kubelet", Some(&name));
    recorder.normal(&node_reference(&name), "Starting", "Starting kubelet.");
    let static_pods =
        shared
            .config
            .static_pod_path
            .clone()
            .map(|dir| crate::static_pods::StaticPods {
                dir,
                node: name.clone(),
                client: Some(shared.client.clone()),
                agent: Arc::downgrade(&pods),
                recorder: Some(recorder.clone()),
            });
    let manager = NodeStatusManager {
        identity: spec.identity,
        machine: spec.machine,
        node_ips: spec.node_ips,
        pressure: spec.pressure,
        config: shared.config.clone(),
        runtime_state: shared.runtime_state.clone(),
        nodes: shared.client.api(None),
        heartbeat_nodes: shared.heartbeat.api(None),
        recorder: Some(recorder),
        images: Some(shared.runtime_manager.images.clone()),
        image_cache: std::sync::Mutex::new(None),
    };
    let lease = NodeLeaseController::new(
        &name,
        shared.config.node_lease_duration_seconds,
        shared.heartbeat.api(Some(LEASE_NAMESPACE)),
        shared.heartbeat.api(None),
    );
    let status = pods.status.clone();
    let mut status_stop = stop.clone();
    let mut tasks = Vec::new();
    if let Some(static_pods) = static_pods {
        tasks.push(tokio::spawn(static_pods.run(stop.clone())));
    }
    tasks.extend([
        tokio::spawn(manager.run(stop.clone())),
        tokio::spawn(lease.run(stop)),
        tokio::spawn(async move {
            status
                .run(async move {
                    let _ = status_stop.wait_for(|s| *s).await;
                })
                .await
        }),
    ]);
    tasks
}

/// The agent's pod side: the pods bound to this node, synced through the shared runtime
/// manager, with this node's volumes and status writes.
fn pod_agent(shared: &Shared, spec: &AgentSpec, name: &str) -> Arc<crate::pods::PodAgent> {
    let config = &shared.config;
    let volumes_root = if config.hollow_nodes > 0 {
        config.root_dir.join("hollow").join(name)
    } else {
        config.root_dir.clone()
    };
    let capacity = spec.machine.capacity(config.max_pods);
    let reservation = crate::resources::allocatable_reservation(
        &capacity,
        &config.system_reserved,
        &config.kube_reserved,
        &config.eviction_hard,
    );
    let allocatable: std::collections::BTreeMap<String, f64> =
        crate::resources::allocatable(&capacity, &reservation)
            .into_iter()
            .map(|(k, nanos)| (k, nanos as f64 / 1e9))
            .collect();
    let agent = crate::pods::PodAgent::new(
        name,
        spec.node_ips.iter().map(|ip| ip.to_string()).collect(),
        shared.runtime_manager.clone(),
        crate::status_manager::StatusManager::new(shared.heartbeat.clone()),
        Arc::new(crate::volumes::VolumeManager::new(
            volumes_root,
            Some(shared.client.clone()),
        )),
        Some(shared.client.clone()),
    )
    .with_allocatable(allocatable);
    // The node's probes, reporting through the pod side's event recorder.
    let prober = Arc::new(crate::prober::ProbeManager::new(
        shared.runtime_manager.runtime.clone(),
        agent.recorder.clone(),
    ));
    let mut agent = agent.with_prober(prober);
    if let Some(pleg) = &shared.pleg {
        agent = agent.with_pleg(pleg.clone());
    }
    let agent = Arc::new(agent);
    agent.start(&shared.factory);
    agent
}
