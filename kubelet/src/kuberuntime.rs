//! The kubelet's side of CRI (upstream's `kuberuntime` manager): what the runtime holds for a
//! pod ([`RuntimeManager::pod_status`]), one sync that moves it one step towards the pod's spec
//! ([`RuntimeManager::sync_pod`], planned by [`actions::compute_pod_actions`]), killing a pod
//! with its grace period, and the API container statuses made from all that
//! ([`convert::container_statuses`]).

pub mod actions;
pub mod backoff;
pub mod convert;
pub mod labels;
pub mod lifecycle;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cri::v1::{
    self, ContainerConfig, ContainerFilter, ContainerMetadata, CreateContainerRequest, DnsConfig,
    ImageSpec, ImageStatusRequest, KeyValue, LinuxContainerConfig, LinuxContainerResources,
    LinuxPodSandboxConfig, ListContainersRequest, ListPodSandboxRequest, PodSandboxConfig,
    PodSandboxFilter, PodSandboxMetadata, PodSandboxStatusRequest, PortMapping, PullImageRequest,
    RemoveContainerRequest, RunPodSandboxRequest, StartContainerRequest, StopContainerRequest,
    StopPodSandboxRequest,
};
use cri::{CriError, ImageService, RuntimeService};
use k8s_openapi::api::core::v1::{Container, Pod};
use tokio::time::Instant;

use actions::{compute_pod_actions, RuntimeContainer, RuntimePodStatus, RuntimeSandbox, State};
use backoff::Backoff;

/// Why a container is waiting, kept from the last sync that tried to start it (upstream's
/// "sync results": ErrImagePull, ImagePullBackOff, CrashLoopBackOff, CreateContainerError, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// Reasons with upstream's spelling.
pub const ERR_IMAGE_PULL: &str = "ErrImagePull";
pub const IMAGE_PULL_BACKOFF: &str = "ImagePullBackOff";
pub const ERR_IMAGE_NEVER_PULL: &str = "ErrImageNeverPull";
pub const CRASH_LOOP_BACKOFF: &str = "CrashLoopBackOff";
pub const CREATE_CONTAINER_ERROR: &str = "CreateContainerError";
pub const CREATE_CONTAINER_CONFIG_ERROR: &str = "CreateContainerConfigError";
pub const RUN_CONTAINER_ERROR: &str = "RunContainerError";

/// What a container needs beyond its spec, computed by the kubelet before it is created:
/// resolved environment and the volume mounts.
#[derive(Debug, Clone, Default)]
pub struct ContainerExtras {
    pub env: Vec<(String, String)>,
    pub mounts: Vec<v1::Mount>,
    /// Registry credentials for the container's image, from the pod's imagePullSecrets.
    pub pull_auth: Option<v1::AuthConfig>,
}

/// Resolves a container's environment and mounts (the volume manager and the env resolver
/// live elsewhere); an Err becomes CreateContainerConfigError.
pub type ExtrasFn<'a> =
    &'a (dyn Fn(&Pod, &Container) -> Result<ContainerExtras, String> + Send + Sync);

/// No environment and no mounts beyond the spec's literal values.
pub fn literal_env(_pod: &Pod, c: &Container) -> Result<ContainerExtras, String> {
    Ok(ContainerExtras {
        env: c
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
            .collect(),
        mounts: Vec::new(),
        pull_auth: None,
    })
}

/// The runtime manager: one per kubelet (or per hollow node).
pub struct RuntimeManager {
    pub runtime: Arc<dyn RuntimeService>,
    pub images: Arc<dyn ImageService>,
    /// Where pod log directories go (upstream: /var/log/pods).
    pub pod_logs_root: PathBuf,
    /// "containerd" etc., for `containerID: <type>://<id>`.
    pub runtime_type: String,
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    pub cgroup_parent: String,
    backoff: Backoff,
    pull_backoff: Backoff,
    /// The last pull failure per container (pod uid/name#pull), shown in ImagePullBackOff.
    pull_errors: Mutex<HashMap<String, String>>,
    waiting: Mutex<HashMap<String, Waiting>>,
    /// Where hook failures are recorded as events (set once the API client exists).
    pub recorder: std::sync::OnceLock<client::events::CoreEventRecorder>,
}

fn key(pod: &Pod, container: &str) -> String {
    format!(
        "{}/{container}",
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// `name_namespace(uid)`, upstream's `format.Pod`.
pub fn pod_full_name(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

fn nanos_to_instant(nanos: i64) -> Instant {
    let now_ns = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
    let ago = Duration::from_nanos(u64::try_from(now_ns.saturating_sub(nanos)).unwrap_or(0));
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

fn state_of(s: i32) -> State {
    match v1::ContainerState::try_from(s) {
        Ok(v1::ContainerState::ContainerCreated) => State::Created,
        Ok(v1::ContainerState::ContainerRunning) => State::Running,
        Ok(v1::ContainerState::ContainerExited) => State::Exited,
        _ => State::Unknown,
    }
}

impl RuntimeManager {
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        images: Arc<dyn ImageService>,
        pod_logs_root: PathBuf,
        runtime_type: &str,
    ) -> RuntimeManager {
        RuntimeManager {
            runtime,
            images,
            pod_logs_root,
            runtime_type: runtime_type.to_string(),
            cluster_dns: Vec::new(),
            cluster_domain: "cluster.local".into(),
            cgroup_parent: String::new(),
            backoff: Backoff::default(),
            pull_backoff: Backoff::default(),
            pull_errors: Mutex::default(),
            waiting: Mutex::default(),
            recorder: std::sync::OnceLock::new(),
        }
    }

    /// Records an event on container `name` of `pod`.
    fn container_event(&self, pod: &Pod, name: &str, warning: bool, reason: &str, message: &str) {
        let Some(recorder) = self.recorder.get() else {
            return;
        };
        let mut reference = client::events::object_reference(pod);
        reference.field_path = Some(crate::prober::field_path(pod, name));
        if warning {
            recorder.warning(&reference, reason, message);
        } else {
            recorder.normal(&reference, reason, message);
        }
    }

    /// Stops a container after its preStop hook (if it has one and is running), which may use
    /// up to the grace period; the runtime gets what is left of it.
    async fn stop_with_hook(
        &self,
        pod: &Pod,
        name: &str,
        id: &str,
        running: bool,
        grace_seconds: i64,
    ) -> Result<(), CriError> {
        let mut grace = grace_seconds.max(0);
        let spec = pod.spec.as_ref();
        let container = spec
            .into_iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name);
        if let Some((c, handler)) =
            container.and_then(|c| lifecycle::Hook::PreStop.handler(c).map(|h| (c, h)))
        {
            if running && grace > 0 {
                let started = std::time::Instant::now();
                let timeout = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
                let ran = lifecycle::run(self.runtime.as_ref(), pod, c, id, handler, timeout);
                match tokio::time::timeout(timeout, ran).await {
                    Ok(Ok(())) => {}
                    Ok(Err(message)) => {
                        tracing::info!(pod = %pod_full_name(pod), container = %name, %message, "preStop hook failed");
                        self.container_event(pod, name, true, "FailedPreStopHook", &message);
                    }
                    Err(_) => {
                        tracing::info!(pod = %pod_full_name(pod), container = %name, "preStop hook did not finish within the grace period");
                    }
                }
                grace = lifecycle::remaining_grace(grace, started.elapsed());
            }
        }
        match self
            .runtime
            .stop_container(StopContainerRequest {
                container_id: id.to_string(),
                timeout: grace,
            })
            .await
        {
            Ok(_) | Err(CriError::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn set_waiting(&self, pod: &Pod, container: &str, reason: &str, message: String) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                key(pod, container),
                Waiting {
                    reason: reason.into(),
                    message,
                },
            );
    }

    fn clear_waiting(&self, pod: &Pod, container: &str) {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key(pod, container));
    }

    /// Why the container is waiting, if a sync said so.
    pub fn waiting_reason(&self, pod: &Pod, container: &str) -> Option<Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key(pod, container))
            .cloned()
    }

    /// Forgets a pod's back-offs and reasons (the pod is gone).
    pub fn forget_pod(&self, uid: &str) {
        let prefix = format!("{uid}/");
        self.backoff.forget_prefix(&prefix);
        self.pull_backoff.forget_prefix(&prefix);
        self.pull_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| !k.starts_with(&prefix));
    }

    /// What the runtime holds for the pod with this uid: sandboxes and container instances,
    /// newest first.
    pub async fn pod_status(&self, uid: &str) -> Result<RuntimePodStatus, CriError> {
        let selector = HashMap::from([(labels::POD_UID.to_string(), uid.to_string())]);
        let sandboxes = self
            .runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    label_selector: selector.clone(),
                    ..Default::default()
                }),
            })
            .await?
            .items;
        let mut status = RuntimePodStatus::default();
        for sb in sandboxes {
            let s = match self
                .runtime
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: sb.id.clone(),
                    verbose: false,
                })
                .await
            {
                Ok(r) => r.status,
                Err(CriError::NotFound(_)) => continue,
                Err(err) => return Err(err),
            };
            let Some(s) = s else { continue };
            let network = s.network.unwrap_or_default();
            let mut ips: Vec<String> = Vec::new();
            if !network.ip.is_empty() {
                ips.push(network.ip.clone());
            }
            ips.extend(network.additional_ips.into_iter().map(|p| p.ip));
            let host_network = s
                .linux
                .and_then(|l| l.namespaces)
                .and_then(|n| n.options)
                .is_some_and(|o| o.network == v1::NamespaceMode::Node as i32);
            status.sandboxes.push(RuntimeSandbox {
                id: s.id,
                attempt: s.metadata.map_or(0, |m| m.attempt),
                ready: s.state == v1::PodSandboxState::SandboxReady as i32,
                created_at: s.created_at,
                ips,
                host_network,
            });
        }
        status
            .sandboxes
            .sort_by_key(|s| std::cmp::Reverse(s.created_at));
        let containers = self
            .runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    label_selector: selector,
                    ..Default::default()
                }),
            })
            .await?
            .containers;
        for c in containers {
            let s = match self
                .runtime
                .container_status(v1::ContainerStatusRequest {
                    container_id: c.id.clone(),
                    verbose: false,
                })
                .await
            {
                Ok(r) => r.status,
                Err(CriError::NotFound(_)) => continue,
                Err(err) => return Err(err),
            };
            let Some(s) = s else { continue };
            let name = s
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .or_else(|| s.metadata.as_ref().map(|m| m.name.clone()))
                .unwrap_or_default();
            status.containers.push(RuntimeContainer {
                id: s.id,
                name,
                sandbox_id: c.pod_sandbox_id,
                attempt: s.metadata.map_or(0, |m| m.attempt),
                state: state_of(s.state),
                created_at: s.created_at,
                started_at: s.started_at,
                finished_at: s.finished_at,
                exit_code: s.exit_code,
                reason: s.reason,
                message: s.message,
                image: s.image.map(|i| i.image).unwrap_or_default(),
                image_ref: s.image_ref,
                hash: s
                    .annotations
                    .get(labels::CONTAINER_HASH)
                    .cloned()
                    .unwrap_or_default(),
            });
        }
        status
            .containers
            .sort_by_key(|c| std::cmp::Reverse(c.created_at));
        Ok(status)
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> PodSandboxConfig {
        let spec = pod.spec.clone().unwrap_or_default();
        let host_network = spec.host_network.unwrap_or(false);
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let hostname = spec.hostname.clone().unwrap_or_else(|| name.clone());
        let dns_policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
        // Host-network pods use the node's resolv.conf unless ClusterFirstWithHostNet; "Default"
        // means the node's too.
        let node_dns = (host_network && dns_policy != "ClusterFirstWithHostNet")
            || dns_policy == "Default"
            || self.cluster_dns.is_empty();
        let dns_config = (!node_dns).then(|| DnsConfig {
            servers: self.cluster_dns.clone(),
            searches: vec![
                format!("{namespace}.svc.{}", self.cluster_domain),
                format!("svc.{}", self.cluster_domain),
                self.cluster_domain.clone(),
            ],
            options: vec!["ndots:5".into()],
        });
        let port_mappings = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) != 0 || host_network)
            .map(|p| PortMapping {
                protocol: match p.protocol.as_deref() {
                    Some("UDP") => v1::Protocol::Udp as i32,
                    Some("SCTP") => v1::Protocol::Sctp as i32,
                    _ => v1::Protocol::Tcp as i32,
                },
                container_port: p.container_port,
                host_port: p.host_port.unwrap_or(0),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
            .collect();
        let namespace_options = v1::NamespaceOption {
            network: if host_network {
                v1::NamespaceMode::Node as i32
            } else {
                v1::NamespaceMode::Pod as i32
            },
            pid: if spec.host_pid.unwrap_or(false) {
                v1::NamespaceMode::Node as i32
            } else {
                v1::NamespaceMode::Container as i32
            },
            ipc: if spec.host_ipc.unwrap_or(false) {
                v1::NamespaceMode::Node as i32
            } else {
                v1::NamespaceMode::Pod as i32
            },
            ..Default::default()
        };
        PodSandboxConfig {
            metadata: Some(PodSandboxMetadata {
                name,
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                namespace,
                attempt,
            }),
            hostname: if host_network {
                String::new()
            } else {
                hostname
            },
            log_directory: labels::pod_log_dir(&self.pod_logs_root, pod)
                .display()
                .to_string(),
            dns_config,
            port_mappings,
            labels: labels::sandbox_labels(pod),
            annotations: labels::sandbox_annotations(pod),
            linux: Some(LinuxPodSandboxConfig {
                cgroup_parent: self.cgroup_parent.clone(),
                security_context: Some(v1::LinuxSandboxSecurityContext {
                    namespace_options: Some(namespace_options),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Moves the pod one step towards its spec; Ok(true) when it asked the runtime to change
    /// something. Errors of single containers are recorded as their waiting reasons, not
    /// returned; an Err means the sandbox could not be made.
    pub async fn sync_pod(
        &self,
        pod: &Pod,
        status: &RuntimePodStatus,
        extras: ExtrasFn<'_>,
    ) -> Result<bool, String> {
        let actions = compute_pod_actions(pod, status);
        let acts = actions.kill_pod
            || actions.create_sandbox
            || actions.next_init_container.is_some()
            || !actions.init_containers_to_start.is_empty()
            || !actions.containers_to_start.is_empty()
            || !actions.containers_to_kill.is_empty();
        let spec = pod.spec.clone().unwrap_or_default();
        if actions.kill_pod {
            let grace = spec.termination_grace_period_seconds.unwrap_or(30);
            self.kill_pod(pod, status, Some(grace))
                .await
                .map_err(|e| format!("killing the pod's old sandbox: {e}"))?;
        }
        let mut sandbox_id = actions.sandbox_id.clone();
        let config = self.sandbox_config(pod, actions.attempt);
        if actions.create_sandbox {
            std::fs::create_dir_all(&config.log_directory).ok();
            let res = self
                .runtime
                .run_pod_sandbox(RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: String::new(),
                })
                .await
                .map_err(|e| format!("Failed to create pod sandbox: {e}"))?;
            sandbox_id = res.pod_sandbox_id;
        } else if actions.kill_pod {
            return Ok(acts);
        }
        for (id, why) in &actions.containers_to_kill {
            tracing::info!(container = %id, reason = %why, pod = %pod_full_name(pod), "killing container");
            let grace = spec.termination_grace_period_seconds.unwrap_or(30);
            let found = status.containers.iter().find(|c| &c.id == id);
            let name = found.map(|c| c.name.as_str()).unwrap_or("");
            let running = found.is_some_and(|c| c.state == State::Running);
            let _ = self.stop_with_hook(pod, name, id, running, grace).await;
        }
        let init = spec.init_containers.clone().unwrap_or_default();
        for i in &actions.init_containers_to_start {
            if let Some(c) = init.get(*i) {
                self.start_container(pod, c, &sandbox_id, &config, status, extras)
                    .await;
            }
        }
        if let Some(i) = actions.next_init_container {
            if let Some(c) = init.get(i) {
                self.start_container(pod, c, &sandbox_id, &config, status, extras)
                    .await;
            }
            return Ok(acts);
        }
        for i in &actions.containers_to_start {
            if let Some(c) = spec.containers.get(*i) {
                self.start_container(pod, c, &sandbox_id, &config, status, extras)
                    .await;
            }
        }
        Ok(acts)
    }

    /// Pulls (per imagePullPolicy), creates and starts one container; failures are recorded
    /// as its waiting reason.
    async fn start_container(
        &self,
        pod: &Pod,
        c: &Container,
        sandbox_id: &str,
        sandbox_config: &PodSandboxConfig,
        status: &RuntimePodStatus,
        extras: ExtrasFn<'_>,
    ) {
        let k = key(pod, &c.name);
        let previous = status.latest(&c.name);
        let restart_count = previous.map_or(0, |p| p.attempt + 1);
        // Crash loop back-off: counted from when the last instance finished.
        if let Some(prev) = previous.filter(|p| p.state == State::Exited) {
            let finished = nanos_to_instant(prev.finished_at);
            if let Some(delay) = self.backoff.in_backoff(&k, finished, Instant::now()) {
                self.container_event(
                    pod,
                    &c.name,
                    true,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {} in pod {}",
                        c.name,
                        pod_full_name(pod)
                    ),
                );
                self.set_waiting(
                    pod,
                    &c.name,
                    CRASH_LOOP_BACKOFF,
                    format!(
                        "back-off {} restarting failed container={} pod={}",
                        go_duration(delay),
                        c.name,
                        pod_full_name(pod)
                    ),
                );
                return;
            }
            self.backoff.next(&k, Instant::now());
        }
        let image = c.image.clone().unwrap_or_default();
        // The environment and mounts first: they also carry the pull credentials.
        let extras = match extras(pod, c) {
            Ok(e) => e,
            Err(message) => {
                self.container_event(pod, &c.name, true, "Failed", &format!("Error: {message}"));
                self.set_waiting(pod, &c.name, CREATE_CONTAINER_CONFIG_ERROR, message);
                return;
            }
        };
        let auth = extras.pull_auth.clone();
        let image_ref = match self
            .ensure_image(pod, c, &image, sandbox_config, auth)
            .await
        {
            Ok(r) => r,
            Err(w) => {
                self.set_waiting(pod, &c.name, &w.reason, w.message);
                return;
            }
        };
        let log_path = labels::container_log_path(&c.name, restart_count);
        if let Some(dir) = std::path::Path::new(&sandbox_config.log_directory)
            .join(&c.name)
            .to_str()
        {
            std::fs::create_dir_all(dir).ok();
        }
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: c.name.clone(),
                attempt: restart_count,
            }),
            image: Some(ImageSpec {
                image: image_ref.clone(),
                user_specified_image: image.clone(),
                ..Default::default()
            }),
            command: c.command.clone().unwrap_or_default(),
            args: c.args.clone().unwrap_or_default(),
            working_dir: c.working_dir.clone().unwrap_or_default(),
            envs: extras
                .env
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
            mounts: extras.mounts,
            labels: labels::container_labels(pod, c),
            annotations: labels::container_annotations(pod, c, restart_count),
            log_path,
            stdin: c.stdin.unwrap_or(false),
            stdin_once: c.stdin_once.unwrap_or(false),
            tty: c.tty.unwrap_or(false),
            linux: Some(LinuxContainerConfig {
                resources: Some(linux_resources(c)),
                security_context: Some(security_context(c)),
            }),
            ..Default::default()
        };
        let id = match self
            .runtime
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await
        {
            Ok(r) => r.container_id,
            Err(err) => {
                self.container_event(pod, &c.name, true, "Failed", &format!("Error: {err}"));
                self.set_waiting(pod, &c.name, CREATE_CONTAINER_ERROR, err.to_string());
                return;
            }
        };
        self.container_event(
            pod,
            &c.name,
            false,
            "Created",
            &format!("Created container {}", c.name),
        );
        if let Err(err) = self
            .runtime
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            self.container_event(pod, &c.name, true, "Failed", &format!("Error: {err}"));
            self.set_waiting(pod, &c.name, RUN_CONTAINER_ERROR, err.to_string());
            return;
        }
        self.container_event(
            pod,
            &c.name,
            false,
            "Started",
            &format!("Started container {}", c.name),
        );
        if let Some(handler) = lifecycle::Hook::PostStart.handler(c) {
            let ran = lifecycle::run(
                self.runtime.as_ref(),
                pod,
                c,
                &id,
                handler,
                lifecycle::POST_START_TIMEOUT,
            )
            .await;
            if let Err(message) = ran {
                tracing::info!(pod = %pod_full_name(pod), container = %c.name, %message, "postStart hook failed");
                self.container_event(pod, &c.name, true, "FailedPostStartHook", &message);
                self.container_event(pod, &c.name, false, "Killing", "FailedPostStartHook");
                let grace = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
                    .unwrap_or(30);
                let _ = self.kill_container(pod, &c.name, &id, grace).await;
            }
        }
        self.clear_waiting(pod, &c.name);
    }

    /// The image's reference once present, pulling it per the container's imagePullPolicy
    /// (with back-off after failures).
    async fn ensure_image(
        &self,
        pod: &Pod,
        c: &Container,
        image: &str,
        sandbox_config: &PodSandboxConfig,
        auth: Option<v1::AuthConfig>,
    ) -> Result<String, Waiting> {
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if image.ends_with(":latest") || !image.rsplit('/').next().unwrap_or("").contains(':') {
                "Always".into()
            } else {
                "IfNotPresent".into()
            }
        });
        let spec = ImageSpec {
            image: image.to_string(),
            ..Default::default()
        };
        let present = self
            .images
            .image_status(ImageStatusRequest {
                image: Some(spec.clone()),
                verbose: false,
            })
            .await
            .ok()
            .and_then(|r| r.image);
        let event = |warning: bool, reason: &str, message: &str| {
            self.container_event(pod, &c.name, warning, reason, message)
        };
        if policy != "Always" {
            if let Some(img) = &present {
                event(
                    false,
                    "Pulled",
                    &format!("Container image {image:?} already present on machine"),
                );
                return Ok(img.id.clone());
            }
            if policy == "Never" {
                let message =
                    format!("Container image {image:?} is not present with pull policy of Never");
                event(true, ERR_IMAGE_NEVER_PULL, &message);
                event(true, "Failed", &format!("Error: {ERR_IMAGE_NEVER_PULL}"));
                return Err(Waiting {
                    reason: ERR_IMAGE_NEVER_PULL.into(),
                    message,
                });
            }
        }
        let k = format!("{}#pull", key(pod, &c.name));
        if self
            .pull_backoff
            .in_backoff(&k, Instant::now(), Instant::now())
            .is_some()
        {
            let mut message = format!("Back-off pulling image {image:?}");
            event(false, "BackOff", &message);
            event(true, "Failed", &format!("Error: {IMAGE_PULL_BACKOFF}"));
            // The status also says why the last pull failed (upstream's too, since 1.30).
            if let Some(last) = self
                .pull_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&k)
            {
                message = format!("{message}: {ERR_IMAGE_PULL}: {last}");
            }
            return Err(Waiting {
                reason: IMAGE_PULL_BACKOFF.into(),
                message,
            });
        }
        event(false, "Pulling", &format!("Pulling image {image:?}"));
        let started = std::time::Instant::now();
        match self
            .images
            .pull_image(PullImageRequest {
                image: Some(spec),
                auth,
                sandbox_config: Some(sandbox_config.clone()),
            })
            .await
        {
            Ok(r) => {
                self.pull_backoff.reset(&k);
                self.pull_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&k);
                let took = go_duration(started.elapsed());
                event(
                    false,
                    "Pulled",
                    &format!(
                        "Successfully pulled image {image:?} in {took} ({took} including waiting)"
                    ),
                );
                Ok(r.image_ref)
            }
            Err(err) => {
                self.pull_backoff.next(&k, Instant::now());
                let message = format!("failed to pull and unpack image {image:?}: {err}");
                self.pull_errors
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(k.clone(), message.clone());
                event(
                    true,
                    "Failed",
                    &format!("Failed to pull image {image:?}: {message}"),
                );
                event(true, "Failed", &format!("Error: {ERR_IMAGE_PULL}"));
                Err(Waiting {
                    reason: ERR_IMAGE_PULL.into(),
                    message,
                })
            }
        }
    }

    /// Stops every container of the pod (each with the grace period), then its sandboxes.
    pub async fn kill_pod(
        &self,
        pod: &Pod,
        status: &RuntimePodStatus,
        grace_seconds: Option<i64>,
    ) -> Result<(), CriError> {
        let grace = grace_seconds.unwrap_or(30).max(0);
        let running: Vec<&RuntimeContainer> = status
            .containers
            .iter()
            .filter(|c| matches!(c.state, State::Running | State::Created | State::Unknown))
            .collect();
        let stops = running.iter().map(|c| {
            tracing::debug!(container = %c.name, pod = %pod_full_name(pod), "stopping container");
            self.stop_with_hook(pod, &c.name, &c.id, c.state == State::Running, grace)
        });
        for r in futures::future::join_all(stops).await {
            r?;
        }
        for sb in status.sandboxes.iter().filter(|s| s.ready) {
            match self
                .runtime
                .stop_pod_sandbox(StopPodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await
            {
                Ok(_) | Err(CriError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Stops one container with the grace period (a failed liveness or startup probe).
    pub async fn kill_container(
        &self,
        pod: &Pod,
        name: &str,
        id: &str,
        grace_seconds: i64,
    ) -> Result<(), CriError> {
        self.stop_with_hook(pod, name, id, true, grace_seconds)
            .await
    }

    /// Removes every container and sandbox of a pod that is gone (after kill_pod).
    pub async fn remove_pod(&self, status: &RuntimePodStatus) -> Result<(), CriError> {
        for c in &status.containers {
            match self
                .runtime
                .remove_container(RemoveContainerRequest {
                    container_id: c.id.clone(),
                })
                .await
            {
                Ok(_) | Err(CriError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        for sb in &status.sandboxes {
            match self
                .runtime
                .remove_pod_sandbox(v1::RemovePodSandboxRequest {
                    pod_sandbox_id: sb.id.clone(),
                })
                .await
            {
                Ok(_) | Err(CriError::NotFound(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Removes exited instances beyond the newest two per container (upstream keeps the last
    /// one for `--previous` logs; garbage collection proper comes later).
    pub async fn prune_dead_containers(&self, status: &RuntimePodStatus) {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for c in &status.containers {
            let n = seen.entry(c.name.as_str()).or_default();
            *n += 1;
            if *n > 2 && c.state == State::Exited {
                let _ = self
                    .runtime
                    .remove_container(RemoveContainerRequest {
                        container_id: c.id.clone(),
                    })
                    .await;
            }
        }
    }
}

/// Go's `time.Duration` text for whole seconds and minutes ("10s", "1m20s", "5m0s").
pub fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{secs}s")
    }
}

/// The container's requests and limits as cgroup settings (upstream's
/// `generateLinuxContainerResources`): shares from the cpu request, quota from the cpu limit,
/// memory limit in bytes.
pub fn linux_resources(c: &Container) -> LinuxContainerResources {
    let res = c.resources.clone().unwrap_or_default();
    let get =
        |m: &Option<BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
         k: &str| {
            m.as_ref()
                .and_then(|m| m.get(k))
                .and_then(|q| crate::podstatus::parse_quantity(&q.0))
        };
    let cpu_request = get(&res.requests, "cpu").or_else(|| get(&res.limits, "cpu"));
    let cpu_limit = get(&res.limits, "cpu");
    let memory_limit = get(&res.limits, "memory");
    // 1024 shares per CPU, at least 2 (upstream's MinShares).
    let shares = cpu_request.map_or(2, |cpu| ((cpu * 1024.0).round() as i64).max(2));
    let period = 100_000;
    LinuxContainerResources {
        cpu_period: if cpu_limit.is_some() { period } else { 0 },
        cpu_quota: cpu_limit.map_or(0, |cpu| ((cpu * period as f64).round() as i64).max(1000)),
        cpu_shares: shares,
        memory_limit_in_bytes: memory_limit.map_or(0, |m| m as i64),
        ..Default::default()
    }
}

/// The container's security context basics as CRI settings.
pub fn security_context(c: &Container) -> v1::LinuxContainerSecurityContext {
    let sc = c.security_context.clone().unwrap_or_default();
    v1::LinuxContainerSecurityContext {
        privileged: sc.privileged.unwrap_or(false),
        run_as_user: sc.run_as_user.map(|value| v1::Int64Value { value }),
        run_as_group: sc.run_as_group.map(|value| v1::Int64Value { value }),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        capabilities: sc.capabilities.map(|caps| v1::Capability {
            add_capabilities: caps.add.unwrap_or_default(),
            drop_capabilities: caps.drop.unwrap_or_default(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
