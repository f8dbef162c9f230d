//! The pods of one node (upstream's pod workers, PLEG and `generateAPIPodStatus`): an informer
//! over the pods bound to the node, one worker task per pod that syncs it through the runtime
//! manager on every change and every second (a relist, standing in for PLEG), and the API
//! status each sync produces, handed to the status manager. Container probes run in the
//! node's [`ProbeManager`]: their verdicts feed the ready/started fields, and a failed liveness
//! or startup probe kills the container so the sync restarts it under the restart policy.
//!
//! A pod being deleted is stopped with its grace period; once nothing of it runs, the status
//! manager deletes the object (grace 0), and when the object is gone the worker removes the
//! pod's sandboxes and containers and ends.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::events::CoreEventRecorder;
use client::informer::{Event, Scope};
use client::{Client, Informer, SharedInformerFactory};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, HostIP, Pod, PodIP, PodStatus, Secret, Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admission;
use crate::envvars;
use crate::kuberuntime::actions::{RuntimePodStatus, State};
use crate::kuberuntime::{convert, ContainerExtras, RuntimeManager};
use crate::object_cache::ObjectCache;
use crate::pleg::Pleg;
use crate::podstatus;
use crate::prober::ProbeManager;
use crate::pull_secrets;
use crate::status_manager::StatusManager;
use crate::volumes::{self, PodSources, VolumeManager};

/// A pod's namespace and the configMaps and secrets it refers to.
type References = (String, Vec<String>, Vec<String>);

/// How often a worker looks at its pod in the runtime without being told to.
const RELIST: Duration = Duration::from_secs(1);

/// What a worker is told: the newest pod, or that it is gone from the API.
#[derive(Clone)]
enum Update {
    Pod(Arc<Pod>),
    Gone(Arc<Pod>),
}

/// The pods of one node.
pub struct PodAgent {
    pub node_name: String,
    pub host_ips: Vec<String>,
    pub manager: Arc<RuntimeManager>,
    pub status: Arc<StatusManager>,
    pub volumes: Arc<VolumeManager>,
    /// None for tests without an apiserver (no configMaps, secrets or tokens then).
    pub client: Option<Client>,
    /// The node's allocatable resources, for resourceFieldRef limits a container lacks.
    pub node_allocatable: BTreeMap<String, f64>,
    /// What admission checks pods against (cpu, memory, ephemeral-storage, pods); empty
    /// turns admission off.
    pub allocatable_for_admission: BTreeMap<String, f64>,
    pub recorder: Option<CoreEventRecorder>,
    /// The probes of this node's containers.
    pub prober: Arc<ProbeManager>,
    services: Mutex<Option<Informer<Service>>>,
    /// The configMaps and secrets the pods refer to, watched.
    config_maps: ObjectCache<ConfigMap>,
    secrets: ObjectCache<Secret>,
    /// What each pod (by uid) refers to: namespace, configMaps, secrets.
    references: Mutex<HashMap<String, References>>,
    /// The runtime pod cache and its relist (None: every read goes to the runtime).
    pleg: Option<Arc<Pleg>>,
    workers: Mutex<HashMap<String, watch::Sender<Update>>>,
    /// Pods refused at admission (by uid): never started, never admitted again.
    rejected: Mutex<std::collections::HashSet<String>>,
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// The API status of `pod` given what the runtime holds (upstream's `generateAPIPodStatus`).
pub fn generate_status(
    pod: &Pod,
    runtime: &RuntimePodStatus,
    manager: &RuntimeManager,
    host_ips: &[String],
    terminal: bool,
) -> PodStatus {
    generate_status_with_probes(pod, runtime, manager, host_ips, terminal, &|_| (None, None))
}

/// [`generate_status`] with the probes' (ready, started) verdicts per container.
pub fn generate_status_with_probes(
    pod: &Pod,
    runtime: &RuntimePodStatus,
    manager: &RuntimeManager,
    host_ips: &[String],
    terminal: bool,
    probes_of: &convert::ProbesOf<'_>,
) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let spec = pod.spec.clone().unwrap_or_default();
    let (init, containers) = convert::container_statuses(
        pod,
        runtime,
        &manager.runtime_type,
        &|c| manager.waiting_reason(pod, c),
        probes_of,
    );
    let all: Vec<_> = init.iter().chain(containers.iter()).cloned().collect();
    let mut phase = podstatus::pod_phase(pod, &all, terminal);
    // A terminal phase never goes back.
    if let Some(old_phase @ ("Succeeded" | "Failed")) = old.phase.as_deref() {
        phase = if old_phase == "Succeeded" {
            podstatus::PHASE_SUCCEEDED
        } else {
            podstatus::PHASE_FAILED
        };
    }
    let mut conditions: Vec<_> = old
        .conditions
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !podstatus::KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .collect();
    let sandbox_ready = runtime.sandboxes.first().is_some_and(|s| s.ready);
    let statuses = (!runtime.containers.is_empty() || !all.is_empty()).then_some(&all[..]);
    let generated = [
        podstatus::ready_to_start_containers_condition(sandbox_ready),
        podstatus::initialized_condition(&spec, statuses, phase),
        podstatus::pod_ready_condition(&spec, &conditions, statuses, phase),
        podstatus::containers_ready_condition(&spec, statuses, phase),
        k8s_openapi::api::core::v1::PodCondition {
            type_: "PodScheduled".into(),
            status: "True".into(),
            ..Default::default()
        },
    ];
    let old_conditions = old.conditions.clone().unwrap_or_default();
    for mut c in generated {
        // lastTransitionTime moves only when the status does (upstream's status manager).
        let previous = old_conditions.iter().find(|o| o.type_ == c.type_);
        c.last_transition_time = match previous {
            Some(p) if p.status == c.status => p.last_transition_time.clone(),
            _ => Some(now()),
        };
        c.last_probe_time = None;
        conditions.push(c);
    }
    let host_network = spec.host_network.unwrap_or(false);
    let mut pod_ips = runtime.ips();
    if host_network && pod_ips.is_empty() {
        pod_ips = host_ips.to_vec();
    }
    let (reason, message) = if Some(phase) == old.phase.as_deref() {
        (old.reason.clone(), old.message.clone())
    } else {
        (None, None)
    };
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: host_ips.first().cloned(),
        host_ips: (!host_ips.is_empty()).then(|| {
            host_ips
                .iter()
                .map(|ip| HostIP { ip: ip.clone() })
                .collect()
        }),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time: old.start_time.clone().or_else(|| Some(now())),
        qos_class: Some(podstatus::qos_class(&spec).to_string()),
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(containers),
        nominated_node_name: old.nominated_node_name.clone(),
        reason,
        message,
        ..Default::default()
    }
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn is_terminal_phase(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

impl PodAgent {
    pub fn new(
        node_name: &str,
        host_ips: Vec<String>,
        manager: Arc<RuntimeManager>,
        status: Arc<StatusManager>,
        volumes: Arc<VolumeManager>,
        client: Option<Client>,
    ) -> PodAgent {
        let recorder = client
            .as_ref()
            .map(|c| CoreEventRecorder::new(c, "kubelet", Some(node_name)));
        let prober = Arc::new(ProbeManager::new(manager.runtime.clone(), recorder.clone()));
        if let Some(recorder) = &recorder {
            let _ = manager.recorder.set(recorder.clone());
        }
        let cache_client = client.clone();
        PodAgent {
            prober,
            node_name: node_name.to_string(),
            host_ips,
            manager,
            status,
            volumes,
            client,
            node_allocatable: BTreeMap::new(),
            allocatable_for_admission: BTreeMap::new(),
            recorder,
            services: Mutex::default(),
            config_maps: ObjectCache::new(cache_client.clone()),
            secrets: ObjectCache::new(cache_client),
            references: Mutex::default(),
            pleg: None,
            workers: Mutex::default(),
            rejected: Mutex::default(),
        }
    }

    /// The node's allocatable resources (cpu in cores, memory and storage in bytes, pods), for
    /// admission and for resourceFieldRef limits a container does not set.
    pub fn with_allocatable(mut self, allocatable: BTreeMap<String, f64>) -> PodAgent {
        self.node_allocatable = allocatable.clone();
        self.allocatable_for_admission = allocatable;
        self
    }

    /// Probes with this manager instead of the agent's own (one per node).
    /// Reads pods' runtime state from `pleg`'s cache, and syncs a pod when it changes.
    pub fn with_pleg(mut self, pleg: Arc<Pleg>) -> PodAgent {
        self.pleg = Some(pleg);
        self
    }

    /// The pod's runtime state: cached (if read after `newer_than`) or read now.
    async fn runtime_status(
        &self,
        id: &str,
        newer_than: Option<Instant>,
    ) -> Result<RuntimePodStatus, cri::CriError> {
        match &self.pleg {
            Some(pleg) => pleg.status(id, newer_than).await,
            None => self.manager.pod_status(id).await,
        }
    }

    /// The pod's runtime state read now (after acting on it).
    async fn fresh_status(&self, id: &str) -> Result<RuntimePodStatus, cri::CriError> {
        match &self.pleg {
            Some(pleg) => pleg.refresh(id).await,
            None => self.manager.pod_status(id).await,
        }
    }

    pub fn with_prober(mut self, prober: Arc<ProbeManager>) -> PodAgent {
        self.prober = prober;
        self
    }

    fn warn_event(&self, pod: &Pod, reason: &str, message: &str) {
        if let Some(r) = &self.recorder {
            r.warning(&client::events::object_reference(pod), reason, message);
        }
    }

    /// The service-link variables for a pod: the namespace's services plus `kubernetes`
    /// from default (upstream: only when enableServiceLinks, which defaults to true; the
    /// master service always).
    fn service_env(&self, pod: &Pod) -> Vec<(String, String)> {
        let Some(informer) = self
            .services
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Vec::new();
        };
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let links = pod
            .spec
            .as_ref()
            .and_then(|s| s.enable_service_links)
            .unwrap_or(true);
        let mut services: Vec<Service> = informer
            .store()
            .list()
            .into_iter()
            .filter(|s| {
                let sns = s.metadata.namespace.as_deref().unwrap_or_default();
                let name = s.metadata.name.as_deref().unwrap_or_default();
                (links && sns == ns) || (sns == "default" && name == "kubernetes")
            })
            .map(|s| (*s).clone())
            .collect();
        services.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        envvars::service_env(&services)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Sender<Update>>> {
        self.workers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches this node's pods (through `factory`, which the caller starts) and runs their
    /// workers until the process ends.
    pub fn start(self: &Arc<Self>, factory: &SharedInformerFactory) {
        let scope = Scope::all().fields(&format!("spec.nodeName={}", self.node_name));
        let informer = factory.informer_for::<Pod>(scope);
        let this = self.clone();
        informer.add_event_handler(None, move |event| this.handle(event));
        self.wire_wakeups();
        *self.services.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(factory.informer::<Service>());
    }

    /// Runs without an API server (a standalone kubelet): only static pods come.
    pub fn start_standalone(self: &Arc<Self>) {
        self.wire_wakeups();
    }

    /// Runtime changes and probe results wake the pod's worker.
    fn wire_wakeups(self: &Arc<Self>) {
        // A runtime change (seen by the relist) wakes the pod's worker.
        if let Some(pleg) = &self.pleg {
            let weak = Arc::downgrade(self);
            pleg.subscribe(Arc::new(move |uid: &str| {
                if let Some(this) = weak.upgrade() {
                    if let Some(tx) = this.lock().get(uid) {
                        tx.send_modify(|_| {});
                    }
                }
            }));
        }
        // A probe result that changes wakes the pod's worker, so readiness shows promptly.
        let weak = Arc::downgrade(self);
        self.prober.set_wake(Arc::new(move |uid: &str| {
            if let Some(this) = weak.upgrade() {
                if let Some(tx) = this.lock().get(uid) {
                    tx.send_modify(|_| {});
                }
            }
        }));
    }

    /// How many pods have a worker.
    pub fn worker_count(&self) -> usize {
        self.lock().len()
    }

    /// Runs a static pod (from a manifest file) as if the API had bound it here.
    pub fn add_static(self: &Arc<Self>, pod: Arc<Pod>) {
        self.update(Update::Pod(pod));
    }

    /// Stops a static pod whose manifest is gone.
    pub fn remove_static(self: &Arc<Self>, pod: Arc<Pod>) {
        self.update(Update::Gone(pod));
    }

    fn handle(self: &Arc<Self>, event: Event<Pod>) {
        let pod: &Pod = match &event {
            Event::Add(pod) | Event::Update { new: pod, .. } => pod,
            Event::Delete(deleted) => deleted.object(),
        };
        // Mirror pods are the API's view of static pods, which run from their files.
        if crate::static_pods::is_mirror(pod) {
            return;
        }
        match event {
            Event::Add(pod) | Event::Update { new: pod, .. } => self.update(Update::Pod(pod)),
            Event::Delete(deleted) => self.update(Update::Gone(deleted.object().clone())),
        }
    }

    fn update(self: &Arc<Self>, update: Update) {
        let (Update::Pod(pod) | Update::Gone(pod)) = &update;
        let id = uid(pod);
        if id.is_empty() {
            return;
        }
        let mut workers = self.lock();
        if let Some(tx) = workers.get(&id) {
            tx.send_replace(update);
            return;
        }
        if let Update::Pod(pod) = &update {
            let mut rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
            if rejected.contains(&id) {
                return;
            }
            let fresh = pod.metadata.deletion_timestamp.is_none() && !is_terminal_phase(pod);
            if fresh && !self.allocatable_for_admission.is_empty() {
                let active: Vec<Arc<Pod>> = workers
                    .values()
                    .filter_map(|tx| match &*tx.borrow() {
                        Update::Pod(p) if !is_terminal_phase(p) => Some(p.clone()),
                        _ => None,
                    })
                    .collect();
                let refs: Vec<&Pod> = active.iter().map(|p| p.as_ref()).collect();
                if let Err(rejection) =
                    admission::admit(pod, &refs, &self.allocatable_for_admission)
                {
                    rejected.insert(id.clone());
                    drop(rejected);
                    drop(workers);
                    tracing::info!(pod = %key(pod), reason = %rejection.reason, "pod rejected at admission");
                    self.warn_event(pod, &rejection.reason, &rejection.message);
                    let mut status = pod.status.clone().unwrap_or_default();
                    status.phase = Some(podstatus::PHASE_FAILED.into());
                    status.reason = Some(rejection.reason);
                    status.message = Some(rejection.message);
                    self.status.set_pod_status(pod, &status, false);
                    return;
                }
            }
        } else {
            self.rejected
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        // A pod gone before it had a worker still gets one: it cleans up what may be left.
        let (tx, rx) = watch::channel(update);
        workers.insert(id.clone(), tx);
        drop(workers);
        let this = self.clone();
        tokio::spawn(async move {
            this.worker(rx).await;
            this.lock().remove(&id);
        });
    }

    /// One pod's worker: syncs on each update and every second until the pod is gone.
    async fn worker(&self, mut rx: watch::Receiver<Update>) {
        // When this worker last asked the runtime to change the pod: older cached states are
        // not good enough to act on.
        let mut last_action: Option<Instant> = None;
        loop {
            let update = rx.borrow_and_update().clone();
            match update {
                Update::Gone(pod) => {
                    self.finish(&pod).await;
                    return;
                }
                Update::Pod(pod) => self.sync(&pod, &mut last_action).await,
            }
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep(RELIST) => {}
            }
        }
    }

    /// One sync of a pod the API still has.
    async fn sync(&self, pod: &Pod, last_action: &mut Option<Instant>) {
        let id = uid(pod);
        let runtime = match self.runtime_status(&id, *last_action).await {
            Ok(s) => s,
            Err(err) => {
                tracing::warn!(pod = %key(pod), error = %err, "reading the pod's state from the runtime");
                return;
            }
        };
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if deleting || is_terminal_phase(pod) {
            let grace = pod.metadata.deletion_grace_period_seconds.or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            });
            let after = if runtime_has_running(&runtime) {
                if let Err(err) = self.manager.kill_pod(pod, &runtime, grace).await {
                    tracing::warn!(pod = %key(pod), error = %err, "stopping the pod");
                }
                *last_action = Some(Instant::now());
                self.fresh_status(&id).await.unwrap_or(runtime)
            } else {
                runtime
            };
            self.prober
                .update_pod(pod, &after, after.ips().first().map(String::as_str));
            let status = generate_status_with_probes(
                pod,
                &after,
                &self.manager,
                &self.host_ips,
                true,
                &|c| self.prober.verdicts(&id, c),
            );
            self.status
                .set_pod_status(pod, &status, deleting && !runtime_has_running(&after));
            return;
        }
        let (runtime, killed) = self.kill_unhealthy(pod, runtime).await;
        if killed {
            *last_action = Some(Instant::now());
        }
        let mut acted = false;
        match self.prepare(pod, &runtime).await {
            Ok((sources, vols)) => {
                let ips = runtime.ips();
                let host_ip = self.host_ips.first().cloned().unwrap_or_default();
                let service_env = self.service_env(pod);
                let extras = |pod: &Pod, c: &Container| -> Result<ContainerExtras, String> {
                    let ctx = envvars::Context {
                        pod,
                        host_ip: &host_ip,
                        pod_ips: &ips,
                        node_allocatable: &self.node_allocatable,
                        service_env: service_env.clone(),
                    };
                    Ok(ContainerExtras {
                        env: envvars::container_env(&ctx, c, &sources)?,
                        mounts: volumes::container_mounts(c, &vols)?,
                        pull_auth: pull_secrets::auth_for(
                            pod,
                            c.image.as_deref().unwrap_or(""),
                            &sources,
                        ),
                    })
                };
                match self.manager.sync_pod(pod, &runtime, &extras).await {
                    Ok(did) => acted = did,
                    Err(message) => {
                        acted = true;
                        tracing::warn!(pod = %key(pod), error = %message, "syncing the pod");
                        self.warn_event(pod, "FailedCreatePodSandBox", &message);
                    }
                }
            }
            Err(message) => {
                tracing::warn!(pod = %key(pod), error = %message, "setting up the pod's volumes");
                self.warn_event(pod, "FailedMount", &message);
            }
        }
        let after = if acted {
            *last_action = Some(Instant::now());
            self.fresh_status(&id).await.unwrap_or(runtime)
        } else {
            runtime
        };
        self.manager.prune_dead_containers(&after).await;
        self.prober
            .update_pod(pod, &after, after.ips().first().map(String::as_str));
        let status =
            generate_status_with_probes(pod, &after, &self.manager, &self.host_ips, false, &|c| {
                self.prober.verdicts(&id, c)
            });
        self.status.set_pod_status(pod, &status, false);
    }

    /// Stops the running containers whose liveness or startup probe failed (upstream's
    /// computePodActions), so this sync restarts them under the pod's restart policy; returns
    /// the runtime's state afterwards.
    async fn kill_unhealthy(
        &self,
        pod: &Pod,
        runtime: RuntimePodStatus,
    ) -> (RuntimePodStatus, bool) {
        let id = uid(pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let mut killed = false;
        for c in runtime
            .containers
            .iter()
            .filter(|c| c.state == State::Running)
        {
            if runtime.latest(&c.name).map(|l| l.id.as_str()) != Some(c.id.as_str()) {
                continue;
            }
            let Some(reason) = self.prober.kill_reason(&id, &c.id) else {
                continue;
            };
            let container = spec
                .containers
                .iter()
                .chain(spec.init_containers.iter().flatten())
                .find(|s| s.name == c.name);
            let probe = container.and_then(|s| {
                if reason.contains("liveness") {
                    s.liveness_probe.as_ref()
                } else {
                    s.startup_probe.as_ref()
                }
            });
            let grace = probe
                .and_then(|p| p.termination_grace_period_seconds)
                .or(spec.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(0);
            let restart = spec.restart_policy.as_deref().unwrap_or("Always") != "Never";
            let mut message = format!("Container {} {reason}", c.name);
            if restart {
                message.push_str(", will be restarted");
            }
            tracing::info!(pod = %key(pod), container = %c.name, %reason, "killing container");
            if let Some(r) = &self.recorder {
                let mut reference = client::events::object_reference(pod);
                reference.field_path = Some(crate::prober::field_path(pod, &c.name));
                r.normal(&reference, "Killing", &message);
            }
            if let Err(err) = self
                .manager
                .kill_container(pod, &c.name, &c.id, grace)
                .await
            {
                tracing::warn!(pod = %key(pod), container = %c.name, error = %err, "killing an unhealthy container");
            }
            killed = true;
        }
        if !killed {
            return (runtime, false);
        }
        match self.fresh_status(&id).await {
            Ok(after) => (after, true),
            Err(_) => (runtime, true),
        }
    }

    /// What a sync needs before containers start: the pod's configMaps and secrets, and its
    /// volumes set up (refreshed on every sync, so source changes reach the containers).
    async fn prepare(
        &self,
        pod: &Pod,
        runtime: &RuntimePodStatus,
    ) -> Result<(PodSources, HashMap<String, std::path::PathBuf>), String> {
        self.track_references(pod);
        let sources = volumes::fetch_sources(&self.config_maps, &self.secrets, pod).await?;
        let host_ip = self.host_ips.first().cloned().unwrap_or_default();
        let vols = self
            .volumes
            .setup(pod, &sources, &host_ip, &runtime.ips())
            .await?;
        Ok((sources, vols))
    }

    /// Watches what the pod refers to (and stops watching what it no longer does).
    fn track_references(&self, pod: &Pod) {
        let id = uid(pod);
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let (cms, secrets) = volumes::referenced(pod);
        let mut refs = self.references.lock().unwrap_or_else(|e| e.into_inner());
        let wanted = (namespace, cms, secrets);
        if refs.get(&id) == Some(&wanted) {
            return;
        }
        for name in &wanted.1 {
            self.config_maps.register(&wanted.0, name);
        }
        for name in &wanted.2 {
            self.secrets.register(&wanted.0, name);
        }
        if let Some((ns, cms, secrets)) = refs.insert(id, wanted) {
            for name in &cms {
                self.config_maps.unregister(&ns, name);
            }
            for name in &secrets {
                self.secrets.unregister(&ns, name);
            }
        }
    }

    fn forget_references(&self, id: &str) {
        let removed = self
            .references
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        if let Some((ns, cms, secrets)) = removed {
            for name in &cms {
                self.config_maps.unregister(&ns, name);
            }
            for name in &secrets {
                self.secrets.unregister(&ns, name);
            }
        }
    }

    /// The pod is gone from the API: stop and remove everything of it.
    async fn finish(&self, pod: &Pod) {
        let id = uid(pod);
        if let Ok(runtime) = self.manager.pod_status(&id).await {
            let _ = self.manager.kill_pod(pod, &runtime, Some(0)).await;
            let after = self.manager.pod_status(&id).await.unwrap_or(runtime);
            if let Err(err) = self.manager.remove_pod(&after).await {
                tracing::warn!(pod = %key(pod), error = %err, "removing the pod's sandboxes and containers");
            }
        }
        self.manager.forget_pod(&id);
        if let Some(pleg) = &self.pleg {
            pleg.forget(&id);
        }
        self.forget_references(&id);
        self.prober.remove_pod(&id);
        self.volumes.teardown(&id).await;
        self.status.remove(&id);
    }
}

fn runtime_has_running(s: &RuntimePodStatus) -> bool {
    s.containers
        .iter()
        .any(|c| matches!(c.state, State::Running | State::Created))
        || s.sandboxes.iter().any(|sb| sb.ready)
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}
