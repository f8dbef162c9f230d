//! The node agent against an in-process apiserver (embedded store), on a simulated runtime the
//! test drives: the Ready condition follows the runtime (upstream's reasons and messages, a new
//! transition time and a NodeReady event on recovery), a Node that exists already gets its
//! default labels back, and the Lease is created, renewed and owned by the Node.

use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use client::{Api, Client, ClientOptions};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, NodeCondition};
use kubelet::agent::{self, AgentSpec, Shared};
use kubelet::config::{KubeletConfig, KubeletConfiguration};
use kubelet::eviction::NoPressure;
use kubelet::nodelease::LEASE_NAMESPACE;
use kubelet::nodestatus::machine::{HostIdentity, MachineInfo};
use kubelet::nodestatus::register::NodeIdentity;
use kubelet::runtime::SimRuntime;
use kubelet::runtime_state::RuntimeState;
use kubelet::Options;
use tokio::sync::watch;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Cluster {
    client: Client,
    _server: apiserver::Running,
    _dir: tempfile::TempDir,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let server = apiserver::start(apiserver::Config::for_tests(dir.path().join("data")))
        .await
        .unwrap();
    let url = server.url().unwrap();
    let client = Client::new(
        kube::Config::new(url.parse().unwrap()),
        ClientOptions::new("kubelet-test"),
    )
    .unwrap();
    Cluster {
        client,
        _server: server,
        _dir: dir,
    }
}

fn config(flags: &[&str]) -> Arc<KubeletConfig> {
    let mut args = vec!["kubelet", "--container-runtime-endpoint=sim://"];
    args.extend_from_slice(flags);
    let options = Options::try_parse_from(args).unwrap();
    Arc::new(KubeletConfig::resolve(KubeletConfiguration::default(), &options, None).unwrap())
}

fn identity(name: &str) -> NodeIdentity {
    NodeIdentity {
        name: name.to_string(),
        hostname: name.to_string(),
        enable_controller_attach_detach: true,
        ..NodeIdentity::default()
    }
}

fn start_agent(
    cluster: &Cluster,
    config: Arc<KubeletConfig>,
    runtime_state: Arc<RuntimeState>,
    name: &str,
) -> watch::Sender<bool> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let sim = Arc::new(kubelet::simcri::SimCri::new());
    let root = config.root_dir.clone();
    let shared = Shared {
        config,
        client: cluster.client.clone(),
        heartbeat: cluster.client.clone(),
        runtime_state,
        runtime_manager: Arc::new(kubelet::kuberuntime::RuntimeManager::new(
            sim.clone(),
            sim,
            kubelet::pod_logs_root(&root),
            "sim",
        )),
        factory: client::SharedInformerFactory::new(cluster.client.clone()),
        pleg: None,
    };
    agent::spawn(
        &shared,
        AgentSpec {
            identity: identity(name),
            machine: MachineInfo::hollow(name, &HostIdentity::read()),
            node_ips: vec!["10.0.0.9".parse().unwrap()],
            pressure: Arc::new(NoPressure),
        },
        stop_rx,
    );
    stop_tx
}

async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ready(node: &Node) -> Option<NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_follows_the_runtime() {
    let cluster = cluster().await;
    let sim = SimRuntime::new();
    let state = Arc::new(RuntimeState::default());
    state.update_runtime_up(&sim).await;
    let _stop = start_agent(&cluster, config(&[]), state.clone(), "rt1");
    let nodes: Api<Node> = cluster.client.api(None);
    let first = wait_for("rt1 Ready", || async {
        nodes
            .get_opt("rt1")
            .await
            .ok()
            .flatten()
            .and_then(|n| ready(&n))
            .filter(|c| c.status == "True")
    })
    .await;

    // The network plugin goes away: NotReady at once (the agent hears of the change), with the
    // runtime's reason in upstream's words.
    sim.set_network_ready(false, "NetworkPluginNotReady", "cni plugin not initialized");
    state.update_runtime_up(&sim).await;
    let not_ready = wait_for("rt1 NotReady", || async {
        nodes
            .get_opt("rt1")
            .await
            .ok()
            .flatten()
            .and_then(|n| ready(&n))
            .filter(|c| c.status == "False")
    })
    .await;
    assert_eq!(not_ready.reason.as_deref(), Some("KubeletNotReady"));
    assert_eq!(
        not_ready.message.as_deref(),
        Some(
            "container runtime network not ready: NetworkReady=false \
             reason:NetworkPluginNotReady message:cni plugin not initialized"
        )
    );
    assert!(not_ready.last_transition_time >= first.last_transition_time);

    // Back: Ready again, and a NodeReady event.
    sim.set_network_ready(true, "", "");
    state.update_runtime_up(&sim).await;
    let back = wait_for("rt1 Ready again", || async {
        nodes
            .get_opt("rt1")
            .await
            .ok()
            .flatten()
            .and_then(|n| ready(&n))
            .filter(|c| c.status == "True")
    })
    .await;
    assert_eq!(back.reason.as_deref(), Some("KubeletReady"));
    let events: Api<Event> = cluster.client.api(Some("default"));
    let reasons = wait_for("the NodeReady event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        let reasons: Vec<String> = list
            .items
            .iter()
            .filter(|e| e.involved_object.name.as_deref() == Some("rt1"))
            .filter_map(|e| e.reason.clone())
            .collect();
        reasons.iter().any(|r| r == "NodeReady").then_some(reasons)
    })
    .await;
    for want in [
        "Starting",
        "NodeHasSufficientMemory",
        "NodeNotReady",
        "NodeReady",
    ] {
        assert!(reasons.iter().any(|r| r == want), "{want} in {reasons:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_node_is_reconciled_and_the_lease_is_owned() {
    let cluster = cluster().await;
    let nodes: Api<Node> = cluster.client.api(None);
    // Someone registered "old" before, with a wrong architecture label and no annotation.
    let mut stale = Node::default();
    stale.metadata.name = Some("old".into());
    stale.metadata.labels = Some(
        [
            ("kubernetes.io/arch".to_string(), "s390x".to_string()),
            ("team".to_string(), "x".to_string()),
        ]
        .into_iter()
        .collect(),
    );
    let created = nodes.create(&stale).await.unwrap();

    let sim = SimRuntime::new();
    let state = Arc::new(RuntimeState::default());
    state.update_runtime_up(&sim).await;
    // A short lease: renewed every second.
    let file = KubeletConfiguration {
        node_lease_duration_seconds: Some(4),
        ..KubeletConfiguration::default()
    };
    let options =
        Options::try_parse_from(["kubelet", "--container-runtime-endpoint=sim://"]).unwrap();
    let config = Arc::new(KubeletConfig::resolve(file, &options, None).unwrap());
    let _stop = start_agent(&cluster, config, state, "old");

    let node = wait_for("old reconciled and Ready", || async {
        nodes.get_opt("old").await.ok().flatten().filter(|n| {
            let labels = n.metadata.labels.clone().unwrap_or_default();
            labels.get("kubernetes.io/arch").map(String::as_str)
                == Some(kubelet::nodestatus::setters::go_arch())
                && ready(n).is_some_and(|c| c.status == "True")
        })
    })
    .await;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kubernetes.io/hostname"], "old");
    assert_eq!(labels["team"], "x", "labels the kubelet does not own stay");
    assert_eq!(
        node.metadata.annotations.unwrap_or_default()
            ["volumes.kubernetes.io/controller-managed-attach-detach"],
        "true"
    );
    assert_eq!(node.metadata.uid, created.metadata.uid, "the same Node");

    let leases: Api<Lease> = cluster.client.api(Some(LEASE_NAMESPACE));
    let first = wait_for("old's Lease", || async {
        leases.get_opt("old").await.ok().flatten()
    })
    .await;
    let spec = first.spec.clone().unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("old"));
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let renewed = wait_for("old's Lease renewed and owned", || async {
        leases.get_opt("old").await.ok().flatten().filter(|l| {
            let renew = l.spec.as_ref().and_then(|s| s.renew_time.clone());
            let owned = l.metadata.owner_references.as_ref().is_some_and(|o| {
                o.iter()
                    .any(|o| Some(&o.uid) == created.metadata.uid.as_ref())
            });
            renew != spec.renew_time && owned
        })
    })
    .await;
    let owner = &renewed.metadata.owner_references.unwrap_or_default()[0];
    assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Node", "old"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_register_node_nothing_is_created() {
    let cluster = cluster().await;
    let sim = SimRuntime::new();
    let state = Arc::new(RuntimeState::default());
    state.update_runtime_up(&sim).await;
    let _stop = start_agent(
        &cluster,
        config(&[
            "--register-node=false",
            "--node-status-update-frequency=200ms",
        ]),
        state,
        "ghost",
    );
    // The Lease is still kept (upstream renews it whether or not it registers)...
    let leases: Api<Lease> = cluster.client.api(Some(LEASE_NAMESPACE));
    wait_for("ghost's Lease", || async {
        leases.get_opt("ghost").await.ok().flatten()
    })
    .await;
    // ... but no Node appears.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let nodes: Api<Node> = cluster.client.api(None);
    assert!(nodes.get_opt("ghost").await.unwrap().is_none());
}
