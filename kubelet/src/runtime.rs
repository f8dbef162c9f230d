//! What the node side of the kubelet needs from a container runtime: its name and version (CRI
//! `Version`) and whether it and its network are ready (CRI `Status`). [`NodeRuntime`] is small
//! and object-safe so that one `Arc<dyn NodeRuntime>` serves every node agent of a process; the
//! CRI client implements it for containerd, and [`SimRuntime`] for simulated nodes.

use std::sync::Mutex;

use async_trait::async_trait;

/// CRI's condition types.
pub const RUNTIME_READY: &str = "RuntimeReady";
pub const NETWORK_READY: &str = "NetworkReady";

/// A runtime call that failed: the runtime is unreachable or answered with an error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuntimeError(pub String);

/// CRI `VersionResponse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeVersion {
    /// `containerd`, `sim`.
    pub runtime_name: String,
    /// `1.6.20`.
    pub runtime_version: String,
    /// The CRI version the runtime speaks (`v1`).
    pub runtime_api_version: String,
}

impl RuntimeVersion {
    /// `status.nodeInfo.containerRuntimeVersion`: `containerd://1.6.20`.
    pub fn node_info_string(&self) -> String {
        format!("{}://{}", self.runtime_name, self.runtime_version)
    }
}

/// CRI `RuntimeCondition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeCondition {
    pub type_: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl std::fmt::Display for RuntimeCondition {
    /// Upstream's rendering, which the Ready condition's message quotes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}={} reason:{} message:{}",
            self.type_, self.status, self.reason, self.message
        )
    }
}

/// CRI `RuntimeStatus`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeStatus {
    pub conditions: Vec<RuntimeCondition>,
}

impl RuntimeStatus {
    pub fn condition(&self, type_: &str) -> Option<&RuntimeCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// The runtime as the node agent sees it.
#[async_trait]
pub trait NodeRuntime: Send + Sync {
    /// CRI `Version`.
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError>;
    /// CRI `Status`.
    async fn status(&self) -> Result<RuntimeStatus, RuntimeError>;
}

/// A runtime where everything is ready at once; tests can make it (or its network) not ready,
/// or unreachable, to see the node react.
pub struct SimRuntime {
    state: Mutex<SimState>,
}

#[derive(Clone)]
struct SimState {
    runtime_ready: RuntimeCondition,
    network_ready: RuntimeCondition,
    down: bool,
}

impl Default for SimRuntime {
    fn default() -> Self {
        SimRuntime::new()
    }
}

impl SimRuntime {
    pub const NAME: &'static str = "sim";

    pub fn new() -> SimRuntime {
        let ready = |type_: &str| RuntimeCondition {
            type_: type_.to_string(),
            status: true,
            reason: String::new(),
            message: String::new(),
        };
        SimRuntime {
            state: Mutex::new(SimState {
                runtime_ready: ready(RUNTIME_READY),
                network_ready: ready(NETWORK_READY),
                down: false,
            }),
        }
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut SimState) -> T) -> T {
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Sets the RuntimeReady condition.
    pub fn set_runtime_ready(&self, ready: bool, reason: &str, message: &str) {
        self.with_state(|s| {
            s.runtime_ready.status = ready;
            s.runtime_ready.reason = reason.to_string();
            s.runtime_ready.message = message.to_string();
        });
    }

    /// Sets the NetworkReady condition.
    pub fn set_network_ready(&self, ready: bool, reason: &str, message: &str) {
        self.with_state(|s| {
            s.network_ready.status = ready;
            s.network_ready.reason = reason.to_string();
            s.network_ready.message = message.to_string();
        });
    }

    /// Makes every call fail, as a runtime whose socket is gone.
    pub fn set_down(&self, down: bool) {
        self.with_state(|s| s.down = down);
    }

    fn check_up(&self) -> Result<SimState, RuntimeError> {
        let state = self.with_state(|s| s.clone());
        if state.down {
            return Err(RuntimeError(
                "rpc error: code = Unavailable desc = connection error: the simulated runtime is down"
                    .to_string(),
            ));
        }
        Ok(state)
    }
}

#[async_trait]
impl NodeRuntime for SimRuntime {
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        self.check_up()?;
        Ok(RuntimeVersion {
            runtime_name: SimRuntime::NAME.to_string(),
            runtime_version: env!("CARGO_PKG_VERSION").to_string(),
            runtime_api_version: "v1".to_string(),
        })
    }

    async fn status(&self) -> Result<RuntimeStatus, RuntimeError> {
        let state = self.check_up()?;
        Ok(RuntimeStatus {
            conditions: vec![state.runtime_ready, state.network_ready],
        })
    }
}

/// Everything a kubelet process uses of its runtime: the node side's view and the CRI services
/// the pod side syncs through.
pub struct Runtimes {
    pub node: std::sync::Arc<dyn NodeRuntime>,
    pub cri: std::sync::Arc<dyn cri::RuntimeService>,
    pub images: std::sync::Arc<dyn cri::ImageService>,
    /// The `<type>` of `containerID: <type>://<id>` ("containerd", "sim").
    pub runtime_type: String,
}

/// The node side's view of any CRI runtime.
pub struct CriNodeRuntime(pub std::sync::Arc<dyn cri::RuntimeService>);

fn cri_error(err: cri::CriError) -> RuntimeError {
    RuntimeError(err.to_string())
}

#[async_trait]
impl NodeRuntime for CriNodeRuntime {
    async fn version(&self) -> Result<RuntimeVersion, RuntimeError> {
        let v = self
            .0
            .version(cri::v1::VersionRequest {
                version: "v1".into(),
            })
            .await
            .map_err(cri_error)?;
        Ok(RuntimeVersion {
            runtime_name: v.runtime_name,
            runtime_version: v.runtime_version,
            runtime_api_version: v.runtime_api_version,
        })
    }

    async fn status(&self) -> Result<RuntimeStatus, RuntimeError> {
        let s = self
            .0
            .status(cri::v1::StatusRequest { verbose: false })
            .await
            .map_err(cri_error)?;
        Ok(RuntimeStatus {
            conditions: s
                .status
                .map(|st| st.conditions)
                .unwrap_or_default()
                .into_iter()
                .map(|c| RuntimeCondition {
                    type_: c.r#type,
                    status: c.status,
                    reason: c.reason,
                    message: c.message,
                })
                .collect(),
        })
    }
}

/// The runtime an endpoint names: `sim://` for the simulated runtime, else a CRI socket
/// (`unix:///run/containerd/containerd.sock` or a path); `image_endpoint` (empty: the same)
/// for the image service.
pub fn connect(endpoint: &str, image_endpoint: &str) -> Result<Runtimes, RuntimeError> {
    use std::sync::Arc;
    if endpoint == crate::config::SIM_ENDPOINT {
        let sim = Arc::new(crate::simcri::SimCri::new());
        return Ok(Runtimes {
            node: Arc::new(SimRuntime::new()),
            cri: sim.clone(),
            images: sim,
            runtime_type: SimRuntime::NAME.into(),
        });
    }
    let remote = Arc::new(
        cri::RemoteRuntime::new(endpoint)
            .map_err(|e| RuntimeError(format!("container runtime endpoint {endpoint:?}: {e}")))?,
    );
    let images: Arc<dyn cri::ImageService> =
        if image_endpoint.is_empty() || image_endpoint == endpoint {
            remote.clone()
        } else {
            Arc::new(cri::RemoteRuntime::new(image_endpoint).map_err(|e| {
                RuntimeError(format!("image service endpoint {image_endpoint:?}: {e}"))
            })?)
        };
    Ok(Runtimes {
        node: Arc::new(CriNodeRuntime(remote.clone())),
        cri: remote,
        images,
        runtime_type: "containerd".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sim_runtime_reports_and_can_fail() {
        let sim = SimRuntime::new();
        let v = sim.version().await.unwrap();
        assert_eq!(
            v.node_info_string(),
            format!("sim://{}", env!("CARGO_PKG_VERSION"))
        );
        let s = sim.status().await.unwrap();
        assert!(s.condition(RUNTIME_READY).unwrap().status);
        assert!(s.condition(NETWORK_READY).unwrap().status);
        sim.set_network_ready(false, "NetworkPluginNotReady", "cni plugin not initialized");
        let s = sim.status().await.unwrap();
        assert_eq!(
            s.condition(NETWORK_READY).unwrap().to_string(),
            "NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized"
        );
        sim.set_down(true);
        assert!(sim.status().await.is_err());
        assert!(sim.version().await.is_err());
        assert!(connect("sim://", "").is_ok());
        // A socket nobody listens on still connects lazily; a bad endpoint does not.
        assert!(connect("unix:///run/nothing/here.sock", "").is_ok());
        assert!(connect("tcp://1.2.3.4:5", "").is_err());
    }
}
