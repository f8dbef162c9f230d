//! The two CRI services as Rust traits, [`RuntimeService`] and [`ImageService`]: one async
//! method per RPC, request message in, response message or [`CriError`] out.
//!
//! The kubelet holds an `Arc<dyn RuntimeService>` and an `Arc<dyn ImageService>` and does not
//! know what is behind them: [`crate::RemoteRuntime`] (gRPC to containerd or any CRI runtime
//! over a unix socket) or a simulated runtime living in the same process. Anything
//! implementing both can also be put on a unix socket with [`crate::serve_unix`].
//!
//! The contracts are upstream's: Stop*/Remove* are idempotent (stopping or removing what is
//! already gone succeeds); *Status and *Stats of an unknown ID fail with
//! [`CriError::NotFound`]; [`ImageService::image_status`] of an absent image succeeds with
//! `image: None`; Exec/Attach/PortForward do not stream themselves but answer with the URL of
//! the runtime's streaming server.

use std::sync::Arc;

use async_trait::async_trait;

use crate::v1::*;
use crate::CriError;

/// Pod sandboxes, containers, streaming endpoints, stats and runtime status.
#[async_trait]
pub trait RuntimeService: Send + Sync {
    /// The runtime's name and version, and the CRI version it speaks.
    async fn version(&self, req: VersionRequest) -> Result<VersionResponse, CriError>;

    /// Creates and starts a sandbox, ready on success.
    async fn run_pod_sandbox(
        &self,
        req: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, CriError>;
    /// Stops the sandbox's processes and releases its network. Idempotent.
    async fn stop_pod_sandbox(
        &self,
        req: StopPodSandboxRequest,
    ) -> Result<StopPodSandboxResponse, CriError>;
    /// Removes the sandbox and its containers. Idempotent.
    async fn remove_pod_sandbox(
        &self,
        req: RemovePodSandboxRequest,
    ) -> Result<RemovePodSandboxResponse, CriError>;
    /// [`CriError::NotFound`] for an unknown sandbox.
    async fn pod_sandbox_status(
        &self,
        req: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse, CriError>;
    async fn list_pod_sandbox(
        &self,
        req: ListPodSandboxRequest,
    ) -> Result<ListPodSandboxResponse, CriError>;

    async fn create_container(
        &self,
        req: CreateContainerRequest,
    ) -> Result<CreateContainerResponse, CriError>;
    async fn start_container(
        &self,
        req: StartContainerRequest,
    ) -> Result<StartContainerResponse, CriError>;
    /// Stop signal, then SIGKILL after `req.timeout` seconds. Idempotent.
    async fn stop_container(
        &self,
        req: StopContainerRequest,
    ) -> Result<StopContainerResponse, CriError>;
    /// Idempotent; forcibly removes a running container.
    async fn remove_container(
        &self,
        req: RemoveContainerRequest,
    ) -> Result<RemoveContainerResponse, CriError>;
    async fn list_containers(
        &self,
        req: ListContainersRequest,
    ) -> Result<ListContainersResponse, CriError>;
    /// [`CriError::NotFound`] for an unknown container.
    async fn container_status(
        &self,
        req: ContainerStatusRequest,
    ) -> Result<ContainerStatusResponse, CriError>;
    async fn update_container_resources(
        &self,
        req: UpdateContainerResourcesRequest,
    ) -> Result<UpdateContainerResourcesResponse, CriError>;
    async fn reopen_container_log(
        &self,
        req: ReopenContainerLogRequest,
    ) -> Result<ReopenContainerLogResponse, CriError>;

    /// Runs a command to completion in the container.
    async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse, CriError>;
    /// The URL of a streaming exec session.
    async fn exec(&self, req: ExecRequest) -> Result<ExecResponse, CriError>;
    /// The URL of a streaming attach session.
    async fn attach(&self, req: AttachRequest) -> Result<AttachResponse, CriError>;
    /// The URL of a streaming port-forward session.
    async fn port_forward(&self, req: PortForwardRequest) -> Result<PortForwardResponse, CriError>;

    async fn container_stats(
        &self,
        req: ContainerStatsRequest,
    ) -> Result<ContainerStatsResponse, CriError>;
    async fn list_container_stats(
        &self,
        req: ListContainerStatsRequest,
    ) -> Result<ListContainerStatsResponse, CriError>;
    async fn pod_sandbox_stats(
        &self,
        req: PodSandboxStatsRequest,
    ) -> Result<PodSandboxStatsResponse, CriError>;
    async fn list_pod_sandbox_stats(
        &self,
        req: ListPodSandboxStatsRequest,
    ) -> Result<ListPodSandboxStatsResponse, CriError>;

    /// Tells the runtime the node's pod CIDR.
    async fn update_runtime_config(
        &self,
        req: UpdateRuntimeConfigRequest,
    ) -> Result<UpdateRuntimeConfigResponse, CriError>;
    /// RuntimeReady / NetworkReady conditions.
    async fn status(&self, req: StatusRequest) -> Result<StatusResponse, CriError>;
    /// The runtime's cgroup driver. Runtimes speaking CRI older than 1.28 (containerd 1.6)
    /// answer [`CriError::Unimplemented`], which is also the default here; the kubelet then
    /// keeps its own `cgroupDriver` setting, as upstream does.
    async fn runtime_config(
        &self,
        _req: RuntimeConfigRequest,
    ) -> Result<RuntimeConfigResponse, CriError> {
        Err(CriError::Unimplemented(
            "RuntimeConfig is not implemented by this runtime".into(),
        ))
    }
}

/// Images on the node: list, status, pull, remove, filesystem usage.
#[async_trait]
pub trait ImageService: Send + Sync {
    async fn list_images(&self, req: ListImagesRequest) -> Result<ListImagesResponse, CriError>;
    /// `image: None` (not an error) when the image is absent.
    async fn image_status(&self, req: ImageStatusRequest) -> Result<ImageStatusResponse, CriError>;
    async fn pull_image(&self, req: PullImageRequest) -> Result<PullImageResponse, CriError>;
    /// Idempotent.
    async fn remove_image(&self, req: RemoveImageRequest) -> Result<RemoveImageResponse, CriError>;
    async fn image_fs_info(&self, req: ImageFsInfoRequest)
        -> Result<ImageFsInfoResponse, CriError>;
}

/// Both services in one object, for holders that want a single `Arc<dyn ContainerRuntime>`
/// (it upcasts to `Arc<dyn RuntimeService>` and `Arc<dyn ImageService>`). Implemented for
/// everything that implements both.
pub trait ContainerRuntime: RuntimeService + ImageService {}

impl<T: RuntimeService + ImageService + ?Sized> ContainerRuntime for T {}

/// Forwards every method of a trait to what an `Arc` points at, so `Arc<Runtime>` (and
/// `Arc<dyn RuntimeService>`) can be passed wherever a service is expected, e.g. to
/// [`crate::serve_unix`] while the caller keeps a handle on the same runtime.
macro_rules! forward_arc {
    ($trait:ident { $($method:ident($req:ty) -> $resp:ty;)* }) => {
        #[async_trait]
        impl<T: $trait + ?Sized> $trait for Arc<T> {
            $(
                async fn $method(&self, req: $req) -> Result<$resp, CriError> {
                    (**self).$method(req).await
                }
            )*
        }
    };
}

forward_arc!(RuntimeService {
    version(VersionRequest) -> VersionResponse;
    run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse;
    stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
    remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
    pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse;
    list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse;
    create_container(CreateContainerRequest) -> CreateContainerResponse;
    start_container(StartContainerRequest) -> StartContainerResponse;
    stop_container(StopContainerRequest) -> StopContainerResponse;
    remove_container(RemoveContainerRequest) -> RemoveContainerResponse;
    list_containers(ListContainersRequest) -> ListContainersResponse;
    container_status(ContainerStatusRequest) -> ContainerStatusResponse;
    update_container_resources(UpdateContainerResourcesRequest) -> UpdateContainerResourcesResponse;
    reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse;
    exec_sync(ExecSyncRequest) -> ExecSyncResponse;
    exec(ExecRequest) -> ExecResponse;
    attach(AttachRequest) -> AttachResponse;
    port_forward(PortForwardRequest) -> PortForwardResponse;
    container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
    list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
    pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
    list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
    update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
    status(StatusRequest) -> StatusResponse;
    runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse;
});

forward_arc!(ImageService {
    list_images(ListImagesRequest) -> ListImagesResponse;
    image_status(ImageStatusRequest) -> ImageStatusResponse;
    pull_image(PullImageRequest) -> PullImageResponse;
    remove_image(RemoveImageRequest) -> RemoveImageResponse;
    image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
});
