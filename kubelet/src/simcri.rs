//! A simulated CRI runtime (`--container-runtime-endpoint sim://`): sandboxes and containers
//! live in memory, containers run as soon as they are started, images are always pullable,
//! probes' exec calls succeed. It implements the same `cri` traits as the gRPC client, so the
//! kubelet's sync loop cannot tell it from containerd; hollow nodes share one.
//!
//! Images under [`PRIVATE_REGISTRY`] pull only with [`PRIVATE_CREDENTIALS`] (as a pull
//! secret would give them), so pull secrets are testable too.
//!
//! One convention makes failures testable: a container whose last command word is
//! `exit <N>` (e.g. `command: ["sh", "-c", "exit 3"]`) exits with N as soon as it starts.

/// A registry whose images need credentials.
pub const PRIVATE_REGISTRY: &str = "registry.private.test/";
/// The only username and password [`PRIVATE_REGISTRY`] accepts.
pub const PRIVATE_CREDENTIALS: (&str, &str) = ("bob", "hunter2");

fn authorized(auth: Option<&cri::v1::AuthConfig>) -> bool {
    let Some(auth) = auth else {
        return false;
    };
    let (user, password) = PRIVATE_CREDENTIALS;
    if auth.username == user && auth.password == password {
        return true;
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(auth.auth.trim())
        .ok()
        .is_some_and(|decoded| decoded == format!("{user}:{password}").as_bytes())
}
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use cri::v1::*;
use cri::{CriError, ImageService, RuntimeService};

#[derive(Debug, Clone)]
struct Sandbox {
    id: String,
    config: PodSandboxConfig,
    ready: bool,
    created_at: i64,
    ip: String,
}

#[derive(Debug, Clone)]
struct SimContainer {
    id: String,
    sandbox_id: String,
    config: ContainerConfig,
    state: ContainerState,
    created_at: i64,
    started_at: i64,
    finished_at: i64,
    exit_code: i32,
    reason: String,
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, Sandbox>,
    containers: HashMap<String, SimContainer>,
    images: HashMap<String, Image>,
}

/// The simulated runtime. Pod IPs come from 10.(244+n/65536)... a /8-sized counter; only
/// uniqueness matters.
pub struct SimCri {
    state: Mutex<State>,
    next: AtomicU64,
}

impl Default for SimCri {
    fn default() -> Self {
        SimCri::new()
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

fn matches_labels(selector: &HashMap<String, String>, labels: &HashMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// `exit <N>` as the last word of the command line: the container exits with N at once.
fn scripted_exit(config: &ContainerConfig) -> Option<i32> {
    let line = config
        .command
        .iter()
        .chain(config.args.iter())
        .last()?
        .trim()
        .to_string();
    let code = line.strip_prefix("exit ")?.trim().parse().ok()?;
    Some(code)
}

impl SimCri {
    pub fn new() -> SimCri {
        SimCri {
            state: Mutex::default(),
            next: AtomicU64::new(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn id(&self) -> (u64, String) {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        (n, format!("{n:064x}"))
    }

    /// How many sandboxes and containers it holds (for tests and the hollow-node bench).
    pub fn counts(&self) -> (usize, usize) {
        let s = self.lock();
        (s.sandboxes.len(), s.containers.len())
    }

    fn image_of(name: &str) -> Image {
        if name.starts_with("sha256:") {
            return Image {
                id: name.to_string(),
                size: 1_000_000,
                ..Default::default()
            };
        }
        let digest = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Image {
            id: format!("sha256:{digest:064x}"),
            repo_tags: vec![name.to_string()],
            size: 1_000_000,
            ..Default::default()
        }
    }
}

#[async_trait]
impl RuntimeService for SimCri {
    async fn version(&self, _req: VersionRequest) -> Result<VersionResponse, CriError> {
        Ok(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "sim".into(),
            runtime_version: "0.1.0".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        req: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, CriError> {
        let config = req
            .config
            .ok_or_else(|| CriError::InvalidArgument("no sandbox config".into()))?;
        let (n, id) = self.id();
        let host_network = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .is_some_and(|o| o.network == NamespaceMode::Node as i32);
        let ip = if host_network {
            String::new()
        } else {
            let n = u32::try_from(n % (1 << 20)).unwrap_or(1);
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 128, 0, 0)) + n).to_string()
        };
        self.lock().sandboxes.insert(
            id.clone(),
            Sandbox {
                id: id.clone(),
                config,
                ready: true,
                created_at: now_nanos(),
                ip,
            },
        );
        Ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    async fn stop_pod_sandbox(
        &self,
        req: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse, CriError> {
        let mut s = self.lock();
        if let Some(sb) = s.sandboxes.get_mut(&req.pod_sandbox_id) {
            sb.ready = false;
        }
        let now = now_nanos();
        for c in s.containers.values_mut() {
            if c.sandbox_id == req.pod_sandbox_id && c.state == ContainerState::ContainerRunning {
                c.state = ContainerState::ContainerExited;
                c.finished_at = now;
                c.exit_code = 137;
                c.reason = "Error".into();
            }
        }
        Ok(StopPodSandboxResponse {})
    }

    async fn remove_pod_sandbox(
        &self,
        req: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse, CriError> {
        let mut s = self.lock();
        s.sandboxes.remove(&req.pod_sandbox_id);
        s.containers
            .retain(|_, c| c.sandbox_id != req.pod_sandbox_id);
        Ok(RemovePodSandboxResponse {})
    }

    async fn pod_sandbox_status(
        &self,
        req: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse, CriError> {
        let s = self.lock();
        let sb = s
            .sandboxes
            .get(&req.pod_sandbox_id)
            .ok_or_else(|| CriError::NotFound(format!("sandbox {}", req.pod_sandbox_id)))?;
        let ns = sb
            .config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.clone());
        Ok(PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                id: sb.id.clone(),
                metadata: sb.config.metadata.clone(),
                state: if sb.ready {
                    PodSandboxState::SandboxReady as i32
                } else {
                    PodSandboxState::SandboxNotready as i32
                },
                created_at: sb.created_at,
                network: (!sb.ip.is_empty()).then(|| PodSandboxNetworkStatus {
                    ip: sb.ip.clone(),
                    additional_ips: Vec::new(),
                }),
                linux: Some(LinuxPodSandboxStatus {
                    namespaces: Some(Namespace { options: ns }),
                }),
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
                runtime_handler: String::new(),
            }),
            ..Default::default()
        })
    }

    async fn list_pod_sandbox(
        &self,
        req: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse, CriError> {
        let filter = req.filter.unwrap_or_default();
        let s = self.lock();
        let items =
            s.sandboxes
                .values()
                .filter(|sb| filter.id.is_empty() || sb.id == filter.id)
                .filter(|sb| matches_labels(&filter.label_selector, &sb.config.labels))
                .filter(|sb| {
                    filter.state.as_ref().is_none_or(|st| {
                        (st.state == PodSandboxState::SandboxReady as i32) == sb.ready
                    })
                })
                .map(|sb| PodSandbox {
                    id: sb.id.clone(),
                    metadata: sb.config.metadata.clone(),
                    state: if sb.ready {
                        PodSandboxState::SandboxReady as i32
                    } else {
                        PodSandboxState::SandboxNotready as i32
                    },
                    created_at: sb.created_at,
                    labels: sb.config.labels.clone(),
                    annotations: sb.config.annotations.clone(),
                    runtime_handler: String::new(),
                })
                .collect();
        Ok(ListPodSandboxResponse { items })
    }

    async fn create_container(
        &self,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, CriError> {
        let config = req
            .config
            .ok_or_else(|| CriError::InvalidArgument("no container config".into()))?;
        let (_, id) = self.id();
        let mut s = self.lock();
        if !s.sandboxes.contains_key(&req.pod_sandbox_id) {
            return Err(CriError::NotFound(format!(
                "sandbox {}",
                req.pod_sandbox_id
            )));
        }
        s.containers.insert(
            id.clone(),
            SimContainer {
                id: id.clone(),
                sandbox_id: req.pod_sandbox_id,
                config,
                state: ContainerState::ContainerCreated,
                created_at: now_nanos(),
                started_at: 0,
                finished_at: 0,
                exit_code: 0,
                reason: String::new(),
            },
        );
        Ok(CreateContainerResponse { container_id: id })
    }

    async fn start_container(
        &self,
        req: StartContainerRequest,
    ) -> Result<StartContainerResponse, CriError> {
        let mut s = self.lock();
        let c = s
            .containers
            .get_mut(&req.container_id)
            .ok_or_else(|| CriError::NotFound(format!("container {}", req.container_id)))?;
        let now = now_nanos();
        c.started_at = now;
        match scripted_exit(&c.config) {
            Some(code) => {
                c.state = ContainerState::ContainerExited;
                c.finished_at = now + 1;
                c.exit_code = code;
                c.reason = if code == 0 { "Completed" } else { "Error" }.into();
            }
            None => c.state = ContainerState::ContainerRunning,
        }
        Ok(StartContainerResponse {})
    }

    async fn stop_container(
        &self,
        req: StopContainerRequest,
    ) -> Result<StopContainerResponse, CriError> {
        let mut s = self.lock();
        if let Some(c) = s.containers.get_mut(&req.container_id) {
            if c.state == ContainerState::ContainerRunning {
                c.state = ContainerState::ContainerExited;
                c.finished_at = now_nanos();
                // Ended by SIGTERM within the grace period (128 + 15), or SIGKILLed at once
                // (128 + 9), as a process that does not handle signals would.
                c.exit_code = if req.timeout > 0 { 143 } else { 137 };
                c.reason = "Error".into();
            } else if c.state == ContainerState::ContainerCreated {
                c.state = ContainerState::ContainerExited;
            }
        }
        Ok(StopContainerResponse {})
    }

    async fn remove_container(
        &self,
        req: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse, CriError> {
        self.lock().containers.remove(&req.container_id);
        Ok(RemoveContainerResponse {})
    }

    async fn list_containers(
        &self,
        req: ListContainersRequest,
    ) -> Result<ListContainersResponse, CriError> {
        let filter = req.filter.unwrap_or_default();
        let s = self.lock();
        let containers = s
            .containers
            .values()
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| filter.pod_sandbox_id.is_empty() || c.sandbox_id == filter.pod_sandbox_id)
            .filter(|c| {
                filter
                    .state
                    .as_ref()
                    .is_none_or(|st| st.state == c.state as i32)
            })
            .filter(|c| matches_labels(&filter.label_selector, &c.config.labels))
            .map(|c| Container {
                id: c.id.clone(),
                pod_sandbox_id: c.sandbox_id.clone(),
                metadata: c.config.metadata.clone(),
                image: c.config.image.clone(),
                image_ref: c
                    .config
                    .image
                    .as_ref()
                    .map(|i| SimCri::image_of(&i.image).id)
                    .unwrap_or_default(),
                state: c.state as i32,
                created_at: c.created_at,
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                image_id: String::new(),
            })
            .collect();
        Ok(ListContainersResponse { containers })
    }

    async fn container_status(
        &self,
        req: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse, CriError> {
        let s = self.lock();
        let c = s
            .containers
            .get(&req.container_id)
            .ok_or_else(|| CriError::NotFound(format!("container {}", req.container_id)))?;
        let image = c.config.image.clone();
        let image_ref = image
            .as_ref()
            .map(|i| SimCri::image_of(&i.image).id)
            .unwrap_or_default();
        Ok(ContainerStatusResponse {
            status: Some(ContainerStatus {
                id: c.id.clone(),
                metadata: c.config.metadata.clone(),
                state: c.state as i32,
                created_at: c.created_at,
                started_at: c.started_at,
                finished_at: c.finished_at,
                exit_code: c.exit_code,
                image,
                image_ref,
                reason: c.reason.clone(),
                labels: c.config.labels.clone(),
                annotations: c.config.annotations.clone(),
                log_path: c.config.log_path.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn update_container_resources(
        &self,
        _req: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse, CriError> {
        Ok(UpdateContainerResourcesResponse {})
    }

    async fn reopen_container_log(
        &self,
        _req: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse, CriError> {
        Ok(ReopenContainerLogResponse {})
    }

    async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse, CriError> {
        let running = self
            .lock()
            .containers
            .get(&req.container_id)
            .is_some_and(|c| c.state == ContainerState::ContainerRunning);
        if !running {
            return Err(CriError::NotFound(format!(
                "container {} is not running",
                req.container_id
            )));
        }
        Ok(ExecSyncResponse::default())
    }

    async fn exec(&self, _req: ExecRequest) -> Result<ExecResponse, CriError> {
        Err(CriError::Unimplemented(
            "the simulated runtime has no streaming".into(),
        ))
    }

    async fn attach(&self, _req: AttachRequest) -> Result<AttachResponse, CriError> {
        Err(CriError::Unimplemented(
            "the simulated runtime has no streaming".into(),
        ))
    }

    async fn port_forward(
        &self,
        _req: PortForwardRequest,
    ) -> Result<PortForwardResponse, CriError> {
        Err(CriError::Unimplemented(
            "the simulated runtime has no streaming".into(),
        ))
    }

    async fn container_stats(
        &self,
        req: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse, CriError> {
        let filter = ContainerStatsFilter {
            id: req.container_id.clone(),
            ..Default::default()
        };
        let listed = self
            .list_container_stats(ListContainerStatsRequest {
                filter: Some(filter),
            })
            .await?;
        match listed.stats.into_iter().next() {
            Some(stats) => Ok(ContainerStatsResponse { stats: Some(stats) }),
            None => Err(CriError::NotFound(format!(
                "container {}",
                req.container_id
            ))),
        }
    }

    /// Made-up but consistent figures: a running container uses 1% of a core, a few MiB of
    /// memory and one file in its writable layer; its CPU time grows with the time it ran. A
    /// stopped one uses nothing but keeps the CPU time it had.
    async fn list_container_stats(
        &self,
        req: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse, CriError> {
        const NANO_CORES: u64 = 10_000_000;
        fn stats_of(c: &SimContainer, now: i64) -> ContainerStats {
            let running = c.state == ContainerState::ContainerRunning;
            let until = if running { now } else { c.finished_at };
            let ran = if c.started_at > 0 {
                u64::try_from(until.saturating_sub(c.started_at)).unwrap_or(0)
            } else {
                0
            };
            let value = |value: u64| Some(UInt64Value { value });
            let live = |bytes: u64| value(if running { bytes } else { 0 });
            ContainerStats {
                attributes: Some(ContainerAttributes {
                    id: c.id.clone(),
                    metadata: c.config.metadata.clone(),
                    labels: c.config.labels.clone(),
                    annotations: c.config.annotations.clone(),
                }),
                cpu: Some(CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: value(ran / (1_000_000_000 / NANO_CORES)),
                    usage_nano_cores: live(NANO_CORES),
                    psi: None,
                }),
                memory: Some(MemoryUsage {
                    timestamp: now,
                    working_set_bytes: live(4 << 20),
                    available_bytes: None,
                    usage_bytes: live(5 << 20),
                    rss_bytes: live(3 << 20),
                    page_faults: value(0),
                    major_page_faults: value(0),
                    psi: None,
                }),
                writable_layer: Some(FilesystemUsage {
                    timestamp: now,
                    fs_id: Some(FilesystemIdentifier {
                        mountpoint: "/var/lib/sim".into(),
                    }),
                    used_bytes: value(4096),
                    inodes_used: value(1),
                }),
                swap: None,
                io: None,
            }
        }
        let filter = req.filter.unwrap_or_default();
        let now = now_nanos();
        let s = self.lock();
        let stats = s
            .containers
            .values()
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| filter.pod_sandbox_id.is_empty() || c.sandbox_id == filter.pod_sandbox_id)
            .filter(|c| matches_labels(&filter.label_selector, &c.config.labels))
            .map(|c| stats_of(c, now))
            .collect();
        Ok(ListContainerStatsResponse { stats })
    }

    async fn pod_sandbox_stats(
        &self,
        req: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse, CriError> {
        let filter = PodSandboxStatsFilter {
            id: req.pod_sandbox_id.clone(),
            ..Default::default()
        };
        let listed = self
            .list_pod_sandbox_stats(ListPodSandboxStatsRequest {
                filter: Some(filter),
            })
            .await?;
        match listed.stats.into_iter().next() {
            Some(stats) => Ok(PodSandboxStatsResponse { stats: Some(stats) }),
            None => Err(CriError::NotFound(format!(
                "sandbox {}",
                req.pod_sandbox_id
            ))),
        }
    }

    /// Each sandbox's containers' stats, and their sums as the pod's.
    async fn list_pod_sandbox_stats(
        &self,
        req: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse, CriError> {
        let filter = req.filter.unwrap_or_default();
        let attributes: Vec<PodSandboxAttributes> = self
            .lock()
            .sandboxes
            .values()
            .filter(|sb| filter.id.is_empty() || sb.id == filter.id)
            .filter(|sb| matches_labels(&filter.label_selector, &sb.config.labels))
            .map(|sb| PodSandboxAttributes {
                id: sb.id.clone(),
                metadata: sb.config.metadata.clone(),
                labels: sb.config.labels.clone(),
                annotations: sb.config.annotations.clone(),
            })
            .collect();
        let mut stats = Vec::with_capacity(attributes.len());
        for attributes in attributes {
            let containers = self
                .list_container_stats(ListContainerStatsRequest {
                    filter: Some(ContainerStatsFilter {
                        pod_sandbox_id: attributes.id.clone(),
                        ..Default::default()
                    }),
                })
                .await?
                .stats;
            let total = |pick: fn(&ContainerStats) -> Option<UInt64Value>| {
                Some(UInt64Value {
                    value: containers.iter().filter_map(pick).map(|v| v.value).sum(),
                })
            };
            let now = now_nanos();
            let linux = LinuxPodSandboxStats {
                cpu: Some(CpuUsage {
                    timestamp: now,
                    usage_core_nano_seconds: total(|c| c.cpu?.usage_core_nano_seconds),
                    usage_nano_cores: total(|c| c.cpu?.usage_nano_cores),
                    psi: None,
                }),
                memory: Some(MemoryUsage {
                    timestamp: now,
                    working_set_bytes: total(|c| c.memory?.working_set_bytes),
                    usage_bytes: total(|c| c.memory?.usage_bytes),
                    rss_bytes: total(|c| c.memory?.rss_bytes),
                    ..Default::default()
                }),
                containers,
                ..Default::default()
            };
            stats.push(PodSandboxStats {
                attributes: Some(attributes),
                linux: Some(linux),
                windows: None,
            });
        }
        Ok(ListPodSandboxStatsResponse { stats })
    }

    async fn update_runtime_config(
        &self,
        _req: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse, CriError> {
        Ok(UpdateRuntimeConfigResponse {})
    }

    async fn status(&self, _req: StatusRequest) -> Result<StatusResponse, CriError> {
        let condition = |t: &str| RuntimeCondition {
            r#type: t.into(),
            status: true,
            ..Default::default()
        };
        Ok(StatusResponse {
            status: Some(RuntimeStatus {
                conditions: vec![condition("RuntimeReady"), condition("NetworkReady")],
            }),
            ..Default::default()
        })
    }
}

#[async_trait]
impl ImageService for SimCri {
    async fn list_images(&self, _req: ListImagesRequest) -> Result<ListImagesResponse, CriError> {
        Ok(ListImagesResponse {
            images: self.lock().images.values().cloned().collect(),
        })
    }

    async fn image_status(&self, req: ImageStatusRequest) -> Result<ImageStatusResponse, CriError> {
        let name = req.image.map(|i| i.image).unwrap_or_default();
        Ok(ImageStatusResponse {
            image: self.lock().images.get(&name).cloned(),
            ..Default::default()
        })
    }

    async fn pull_image(&self, req: PullImageRequest) -> Result<PullImageResponse, CriError> {
        let name = req.image.map(|i| i.image).unwrap_or_default();
        if name.is_empty() {
            return Err(CriError::InvalidArgument("no image".into()));
        }
        if name.starts_with(PRIVATE_REGISTRY) && !authorized(req.auth.as_ref()) {
            return Err(CriError::rpc(
                tonic::Code::Unknown,
                format!(
                    "failed to pull and unpack image \"{name}\": failed to resolve reference \"{name}\": pull access denied, repository does not exist or may require authorization: server message: insufficient_scope: authorization failed"
                ),
            ));
        }
        let image = SimCri::image_of(&name);
        let id = image.id.clone();
        self.lock().images.insert(name, image);
        Ok(PullImageResponse { image_ref: id })
    }

    async fn remove_image(&self, req: RemoveImageRequest) -> Result<RemoveImageResponse, CriError> {
        let name = req.image.map(|i| i.image).unwrap_or_default();
        self.lock().images.remove(&name);
        Ok(RemoveImageResponse {})
    }

    async fn image_fs_info(
        &self,
        _req: ImageFsInfoRequest,
    ) -> Result<ImageFsInfoResponse, CriError> {
        Ok(ImageFsInfoResponse::default())
    }
}
