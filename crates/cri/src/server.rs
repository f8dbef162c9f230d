//! [`serve_unix`]: puts anything implementing [`RuntimeService`] + [`ImageService`] on a unix
//! socket as a real CRI gRPC server, so a simulated runtime can be reached exactly like
//! containerd (and tests can drive [`crate::RemoteRuntime`] against a fake).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::v1::image_service_server::{ImageService as GrpcImageService, ImageServiceServer};
use crate::v1::runtime_service_server::{
    RuntimeService as GrpcRuntimeService, RuntimeServiceServer,
};
use crate::v1::*;
use crate::{CriError, ImageService, RuntimeService, MAX_MESSAGE_SIZE};

/// How long [`CriServer::shutdown`] lets calls in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A CRI server running on a unix socket. Dropping it stops the server and removes the socket
/// file; [`CriServer::shutdown`] does the same gracefully.
#[derive(Debug)]
pub struct CriServer {
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), tonic::transport::Error>>>,
}

/// Binds `path` (removing a stale socket left there, creating the parent directory) and serves
/// `service` on it in a background task until the returned [`CriServer`] is shut down or
/// dropped. The socket accepts connections when this returns. Must be called within a Tokio
/// runtime.
pub fn serve_unix<S>(path: impl AsRef<Path>, service: S) -> Result<CriServer, CriError>
where
    S: RuntimeService + ImageService + 'static,
{
    let path = path.as_ref().to_path_buf();
    let serve_error = |message: String| CriError::Serve {
        path: path.display().to_string(),
        message,
    };
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            return Err(serve_error("exists and is not a socket".into()));
        }
        std::fs::remove_file(&path)
            .map_err(|err| serve_error(format!("removing the stale socket: {err}")))?;
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|err| serve_error(format!("creating {}: {err}", parent.display())))?;
    }
    let listener = UnixListener::bind(&path).map_err(|err| serve_error(err.to_string()))?;

    let service = Arc::new(service);
    let runtime = RuntimeServiceServer::new(Adapter(Arc::clone(&service)))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let images = ImageServiceServer::new(Adapter(service))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(runtime)
            .add_service(images)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );
    tracing::debug!(path = %path.display(), "serving CRI");
    Ok(CriServer {
        path,
        stop: Some(stop),
        task: Some(task),
    })
}

impl CriServer {
    /// The socket it listens on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The endpoint a client passes as `--container-runtime-endpoint`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// Stops accepting, lets calls in flight finish (for a few seconds at most), and removes
    /// the socket.
    pub async fn shutdown(mut self) -> Result<(), CriError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let mut result = Ok(());
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => {
                    result = Err(CriError::Serve {
                        path: self.path.display().to_string(),
                        message: err.to_string(),
                    })
                }
                Ok(Err(join)) => {
                    result = Err(CriError::Serve {
                        path: self.path.display().to_string(),
                        message: join.to_string(),
                    })
                }
                Err(_) => task.abort(),
            }
        }
        let _ = std::fs::remove_file(&self.path);
        result
    }
}

impl Drop for CriServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The tonic-generated server traits, answered by our traits.
struct Adapter<S>(Arc<S>);

/// Writes the whole impl (async_trait must see the methods expanded).
macro_rules! adapt {
    ($grpc:ident for $trait:ident: $($method:ident($req:ty) -> $resp:ty;)*) => {
        #[tonic::async_trait]
        impl<S: RuntimeService + ImageService + 'static> $grpc for Adapter<S> {
            $(
                async fn $method(
                    &self,
                    request: Request<$req>,
                ) -> Result<Response<$resp>, Status> {
                    $trait::$method(&*self.0, request.into_inner())
                        .await
                        .map(Response::new)
                        .map_err(Status::from)
                }
            )*
        }
    };
}

adapt!(GrpcRuntimeService for RuntimeService:
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
    update_container_resources(UpdateContainerResourcesRequest)
        -> UpdateContainerResourcesResponse;
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
);

adapt!(GrpcImageService for ImageService:
    list_images(ListImagesRequest) -> ListImagesResponse;
    image_status(ImageStatusRequest) -> ImageStatusResponse;
    pull_image(PullImageRequest) -> PullImageResponse;
    remove_image(RemoveImageRequest) -> RemoveImageResponse;
    image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
);
