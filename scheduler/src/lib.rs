//! kube-scheduler: watches pods without a node and nodes through shared informers, picks a node
//! for each pod by filter -> score, and binds it through `pods/binding`.
//!
//! The parts, as upstream: [`framework`] (extension points, cycle state, statuses, the runtime
//! that runs a profile's plugins), [`plugins`] (one module per in-tree plugin, and the
//! registry), [`queue`] (activeQ / backoffQ / unschedulable pods with event-driven requeue),
//! [`cache`] (nodes and pods, assumed pods, snapshots), [`schedule_one`] and [`scheduler`]
//! (the cycle and the loop), [`eventhandlers`] (informers into cache and queue), [`config`]
//! (`KubeSchedulerConfiguration`).

pub mod cache;
pub mod config;
pub mod eventhandlers;
pub mod framework;
pub mod options;
pub mod plugins;
pub mod queue;
pub mod registry;
pub mod schedule_one;
pub mod scheduler;
pub mod unknown_profiles;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use client::leaderelection::{default_identity, LeaderElector, Outcome};
use client::{Client, SharedInformerFactory};
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSINode, StorageClass};

use crate::config::KubeSchedulerConfiguration;
use crate::framework::{EventResource, Framework, Handle, PodInfo, PodNominator};
pub use crate::options::Options;
use crate::queue::{hint_registry, QueueOptions, SchedulingQueue};
use crate::scheduler::{Scheduler, SchedulerMetrics, COMPONENT};

const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// The queue's nominations for plugins built before the queue exists (the queue needs the
/// profiles' QueueSort and hints, the plugins need the nominator).
struct LateNominator(Arc<OnceLock<Arc<SchedulingQueue>>>);

impl PodNominator for LateNominator {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.0
            .get()
            .map(|q| q.nominated_pods_for_node(node))
            .unwrap_or_default()
    }

    fn all_nominations(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        self.0
            .get()
            .map(|q| q.all_nominations())
            .unwrap_or_default()
    }
}

/// The configuration `--config` names (or the defaults), with the deprecated flags applied
/// when there is no file, as upstream.
pub fn load_config(options: &Options) -> anyhow::Result<KubeSchedulerConfiguration> {
    match &options.config {
        Some(path) => KubeSchedulerConfiguration::load(path),
        None => {
            let mut config = KubeSchedulerConfiguration::default_config();
            let cc = &mut config.client_connection;
            if let Some(qps) = options.client.kube_api_qps {
                cc.qps = Some(qps);
            }
            if let Some(burst) = options.client.kube_api_burst {
                cc.burst = i32::try_from(burst).ok();
            }
            config.leader_election.leader_elect = Some(options.leader_election.leader_elect);
            Ok(config)
        }
    }
}

/// Builds one framework per profile (fails on unknown plugins or bad args: a clear error at
/// start, as upstream).
pub fn build_profiles(
    config: &KubeSchedulerConfiguration,
    handle: &Handle,
) -> anyhow::Result<HashMap<String, Arc<Framework>>> {
    let mut profiles = HashMap::new();
    for (i, profile) in config.profiles.iter().enumerate() {
        let name = profile
            .scheduler_name
            .clone()
            .unwrap_or_else(|| COMPONENT.to_string());
        let fw = registry::build_framework(
            profile,
            handle,
            config.percentage_of_nodes_to_score,
            usize::try_from(config.parallelism.unwrap_or(16)).unwrap_or(16),
        )
        .with_context(|| format!("initializing profiles[{i}] ({name:?})"))?;
        profiles.insert(name, Arc::new(fw));
    }
    Ok(profiles)
}

/// Runs until SIGTERM/SIGINT (Ok) or until leadership is lost (Err).
pub async fn run(options: Options) -> anyhow::Result<()> {
    let config = load_config(&options)?;
    if let Some(path) = &options.write_config_to {
        let text = serde_yaml::to_string(&config)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote the configuration");
        return Ok(());
    }
    let mut client_args = options.client.clone();
    if let Some(kubeconfig) = config
        .client_connection
        .kubeconfig
        .as_ref()
        .filter(|k| !k.is_empty())
    {
        client_args.kubeconfig = Some(kubeconfig.into());
    }
    let qps = config.client_connection.qps.unwrap_or(50.0);
    let burst = u32::try_from(config.client_connection.burst.unwrap_or(100)).unwrap_or(100);
    let client = Client::from_args(&client_args, "kube-scheduler", qps, burst)
        .await
        .context("kube-scheduler cannot reach its apiserver")?;

    // Validate the profiles before anything else: a bad config fails at start.
    let factory = SharedInformerFactory::new(client.clone()).stripping_managed_fields();
    let queue_cell: Arc<OnceLock<Arc<SchedulingQueue>>> = Arc::default();
    let handle = Handle {
        client: Some(client.clone()),
        informers: Some(factory.clone()),
        nominator: Arc::new(LateNominator(queue_cell.clone())),
        waiting_pods: framework::WaitingPods::default(),
    };
    let profiles = build_profiles(&config, &handle)?;

    let serving = serving::SecureServing {
        bind_address: options.bind_address,
        port: options.secure_port,
        cert_dir: options.cert_dir.clone(),
        cert_file: options.tls_cert_file.clone(),
        key_file: options.tls_private_key_file.clone(),
        name: "kube-scheduler".into(),
    };
    if options.secure_port != 0 {
        // Upstream's scheduler tolerates a failed lookup of the published client CA.
        let auth = options
            .delegated_auth
            .build("kube-scheduler", true)
            .await
            .context("kube-scheduler's secure port authentication and authorization")?;
        serving::serve_with_auth(serving, Arc::new(|| Ok(())), Arc::new(auth)).await?;
    }

    let leader_elect = config.leader_election.leader_elect.unwrap_or(true);
    let start = {
        let (client, config, options) = (client.clone(), config.clone(), options.clone());
        move || start_scheduling(client, factory, profiles, &config, &options, queue_cell)
    };
    if !leader_elect {
        let stop = start()?;
        serving::shutdown_signal().await;
        stop();
        return Ok(());
    }
    let mut le_args = options.leader_election.clone();
    let le = &config.leader_election;
    if let Some(name) = le.resource_name.clone() {
        le_args.resource_name = Some(name);
    }
    if let Some(ns) = le.resource_namespace.clone() {
        le_args.resource_namespace = ns;
    }
    let le_config = le_args
        .config("kube-scheduler", default_identity())
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let elector = LeaderElector::new(&client, le_config).map_err(|err| anyhow::anyhow!("{err}"))?;
    let start = std::sync::Mutex::new(Some(start));
    let outcome = elector
        .run(serving::shutdown_signal(), move |mut leadership: client::leaderelection::Leadership| {
            let start = start.lock().ok().and_then(|mut s| s.take());
            async move {
                let Some(start) = start else { return };
                match start() {
                    Ok(stop) => {
                        leadership.lost().await;
                        stop();
                    }
                    Err(err) => {
                        tracing::error!(error = %format!("{err:#}"), "starting the scheduler failed");
                    }
                }
            }
        })
        .await;
    match outcome {
        Outcome::Lost => anyhow::bail!("leaderelection lost"),
        Outcome::NeverLed | Outcome::Released => Ok(()),
    }
}

/// Starts informers, the queue's flushes and the scheduling loop; returns what stops them.
fn start_scheduling(
    client: Client,
    factory: SharedInformerFactory,
    profiles: HashMap<String, Arc<Framework>>,
    config: &KubeSchedulerConfiguration,
    options: &Options,
    queue_cell: Arc<OnceLock<Arc<SchedulingQueue>>>,
) -> anyhow::Result<impl FnOnce()> {
    let unknown_grace = options.unknown_scheduler_warning_after;
    let first = profiles
        .values()
        .next()
        .cloned()
        .context("no scheduling profile")?;
    // One registry for all profiles: they were built with the same handle.
    let waiting_pods = first.handle().waiting_pods.clone();
    let less: queue::LessFn = Arc::new(move |a, b| first.queue_sort_less(a, b));
    let by_name = profiles.clone();
    let pre_enqueue: queue::PreEnqueueFn =
        Arc::new(
            move |pod: &Pod| match by_name.get(config::scheduler_name(pod)) {
                Some(fw) => fw.run_pre_enqueue(pod),
                None => framework::Status::success(),
            },
        );
    let hints = hint_registry(profiles.values().map(|f| f.as_ref()));
    // One pod informer for everyone (plugins ask the factory for the same one); terminal pods
    // are skipped by the handlers.
    let pods = factory.informer::<Pod>();
    let namespaces = factory.informer::<Namespace>();
    let seconds = |s: Option<i64>, default: u64| {
        Duration::from_secs(s.and_then(|s| u64::try_from(s).ok()).unwrap_or(default))
    };
    let options = QueueOptions {
        pod_initial_backoff: seconds(config.pod_initial_backoff_seconds, 1),
        pod_max_backoff: seconds(config.pod_max_backoff_seconds, 10),
        pod_max_in_unschedulable_pods_duration: options.pod_max_in_unschedulable_pods_duration,
        namespace_labels: Some(Arc::new(
            move |ns: &str| -> Option<BTreeMap<String, String>> {
                namespaces
                    .store()
                    .get_namespaced(None, ns)
                    .and_then(|n| n.metadata.labels.clone())
            },
        )),
        pod_lister: Some({
            let pods = pods.clone();
            Arc::new(move |ns: &str, name: &str| pods.store().get_namespaced(Some(ns), name))
        }),
        ..QueueOptions::default()
    };
    let queue = Arc::new(SchedulingQueue::new(less, pre_enqueue, hints, options));
    let _ = queue_cell.set(queue.clone());
    let cache = Arc::new(cache::Cache::new(Duration::ZERO));
    let routing = Arc::new(eventhandlers::PodRouting {
        cache: cache.clone(),
        queue: queue.clone(),
        profiles: profiles.keys().cloned().collect::<HashSet<_>>(),
        waiting_pods,
    });
    // What scheduling waits for: the kinds every cluster serves. Plugins' other informers
    // (CSIStorageCapacity, PDBs, ...) fill in as they list; an apiserver that does not serve
    // one of them must not stall scheduling.
    let mut essential: Vec<futures::future::BoxFuture<'static, bool>> = Vec::new();
    {
        let pods = pods.clone();
        essential.push(Box::pin(async move { pods.wait_synced().await }));
    }
    pods.add_event_handler(None, move |e| routing.handle(e));
    let unknown = Arc::new(unknown_profiles::UnknownProfiles::new(
        profiles.keys().cloned(),
        unknown_grace,
    ));
    if !unknown_grace.is_zero() {
        let unknown = unknown.clone();
        pods.add_event_handler(None, move |e| unknown.handle(e));
    }
    {
        let (cache, queue) = (cache.clone(), queue.clone());
        let nodes = factory.informer::<Node>();
        nodes.add_event_handler(None, move |e| eventhandlers::handle_node(&cache, &queue, e));
        essential.push(Box::pin(async move { nodes.wait_synced().await }));
    }
    macro_rules! watch_kind {
        ($kind:ty, $resource:expr, $label:expr) => {{
            let queue = queue.clone();
            let informer = factory.informer::<$kind>();
            informer.add_event_handler(None, move |e| {
                eventhandlers::handle_other(&queue, $resource, $label, e)
            });
            essential.push(Box::pin(async move { informer.wait_synced().await }));
        }};
    }
    watch_kind!(
        PersistentVolume,
        EventResource::PersistentVolume,
        "PersistentVolume"
    );
    watch_kind!(
        PersistentVolumeClaim,
        EventResource::PersistentVolumeClaim,
        "PersistentVolumeClaim"
    );
    watch_kind!(StorageClass, EventResource::StorageClass, "StorageClass");
    watch_kind!(CSINode, EventResource::CSINode, "CSINode");

    let scheduler = Arc::new(Scheduler {
        client: client.clone(),
        profiles,
        queue: queue.clone(),
        cache,
        recorder: client::events::CoreEventRecorder::new(&client, COMPONENT, None),
        metrics: SchedulerMetrics::register(metrics::global()),
    });
    factory.start();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    {
        let (queue, stop) = (queue.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move { queue.run_flushes(stop).await });
    }
    {
        let (cache, stop) = (scheduler.cache.clone(), stopped(stop_rx.clone()));
        tokio::spawn(async move { cache.run(stop).await });
    }
    {
        let recorder = scheduler.recorder.clone();
        let stop = stopped(stop_rx);
        tokio::spawn(async move { unknown.run(recorder, stop).await });
    }
    let loop_queue = queue.clone();
    tokio::spawn(async move {
        let synced = tokio::time::timeout(CACHE_SYNC_TIMEOUT, futures::future::join_all(essential))
            .await
            .is_ok_and(|all| all.into_iter().all(|ok| ok));
        if synced {
            tracing::info!("caches are synced; scheduling");
        } else {
            tracing::warn!(
                "caches did not sync within {CACHE_SYNC_TIMEOUT:?}; scheduling with what they have"
            );
        }
        scheduler.run().await;
    });
    Ok(move || {
        stop_tx.send_replace(true);
        loop_queue.close();
    })
}
