//! [`RemoteRuntime`]: the CRI client the kubelet uses for a real runtime, gRPC over the unix
//! socket named by `--container-runtime-endpoint`.
//!
//! The connection is made lazily and remade on demand: creating a `RemoteRuntime` never
//! fails because the runtime is down, and a runtime that restarts is reached again by the next
//! call. While it is down every call fails fast with [`CriError::Unavailable`].
//!
//! Every call has a deadline, sent to the runtime as `grpc-timeout` and enforced here as
//! well: the runtime request timeout (upstream's `--runtime-request-timeout`, 2 minutes by
//! default), stretched like upstream's for the calls that wait by design: StopContainer gets
//! the grace period on top, ExecSync the command's own timeout on top (and no deadline when the
//! command has none), PullImage its own, longer, deadline.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::v1::image_service_client::ImageServiceClient;
use crate::v1::runtime_service_client::RuntimeServiceClient;
use crate::v1::*;
use crate::{CriError, ImageService, RuntimeService};

/// Upstream kubelet's default `--runtime-request-timeout`.
pub const DEFAULT_RUNTIME_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a PullImage may take. Upstream's kubelet gives pulls no deadline at all; one
/// stuck pull would then hold its pod worker forever, so ours is long but finite.
pub const DEFAULT_IMAGE_PULL_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Largest message either way, as upstream's kubelet (16 MiB; ExecSync output and big
/// ListContainers answers need more than gRPC's 4 MiB default).
pub const MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// How long establishing the socket connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The socket path of a `--container-runtime-endpoint`: `unix:///run/containerd/containerd.sock`
/// or, as upstream still accepts, a bare path. Other schemes (`tcp://`, `npipe://`) are refused.
pub fn parse_endpoint(endpoint: &str) -> Result<PathBuf, CriError> {
    let invalid = |reason: &str| CriError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    if endpoint.is_empty() {
        return Err(invalid("the endpoint is empty"));
    }
    let path = match endpoint.split_once("://") {
        Some(("unix", path)) => path,
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "protocol {scheme:?} is not supported, only unix sockets (unix:///path/to.sock)"
            )))
        }
        None => endpoint,
    };
    if path.is_empty() {
        return Err(invalid("the socket path is empty"));
    }
    if !path.starts_with('/') {
        return Err(invalid("the socket path must be absolute"));
    }
    Ok(PathBuf::from(path))
}

/// A CRI runtime reached over gRPC on a unix socket; implements [`RuntimeService`] and
/// [`ImageService`]. Cheap to clone: clones share one HTTP/2 connection.
#[derive(Clone)]
pub struct RemoteRuntime {
    endpoint: String,
    socket: Arc<PathBuf>,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    timeout: Duration,
    pull_timeout: Option<Duration>,
}

impl std::fmt::Debug for RemoteRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteRuntime")
            .field("endpoint", &self.endpoint)
            .field("timeout", &self.timeout)
            .field("pull_timeout", &self.pull_timeout)
            .finish()
    }
}

impl RemoteRuntime {
    /// A client for `endpoint` (see [`parse_endpoint`]) with upstream's default timeouts. No
    /// connection is made yet. Must be called within a Tokio runtime.
    pub fn new(endpoint: &str) -> Result<RemoteRuntime, CriError> {
        let socket = Arc::new(parse_endpoint(endpoint)?);
        let connect_to = Arc::clone(&socket);
        // The URI only fills the :authority header; the connector ignores it and dials the
        // socket.
        let channel = Endpoint::from_static("http://localhost")
            .connect_timeout(CONNECT_TIMEOUT)
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = Arc::clone(&connect_to);
                async move { UnixStream::connect(path.as_path()).await.map(TokioIo::new) }
            }));
        Ok(RemoteRuntime {
            endpoint: endpoint.to_string(),
            socket,
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            images: ImageServiceClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
            timeout: DEFAULT_RUNTIME_REQUEST_TIMEOUT,
            pull_timeout: Some(DEFAULT_IMAGE_PULL_TIMEOUT),
        })
    }

    /// Sets the runtime request timeout (`--runtime-request-timeout`).
    pub fn with_timeout(mut self, timeout: Duration) -> RemoteRuntime {
        self.timeout = timeout;
        self
    }

    /// Sets PullImage's deadline; `None` waits as long as the pull takes.
    pub fn with_pull_timeout(mut self, timeout: Option<Duration>) -> RemoteRuntime {
        self.pull_timeout = timeout;
        self
    }

    /// The endpoint as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The unix socket it dials.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Sends `req` through `call` with `deadline` both announced to the server and enforced here.
async fn unary<Req, Resp, F, Fut>(
    method: &'static str,
    deadline: Option<Duration>,
    req: Req,
    call: F,
) -> Result<Resp, CriError>
where
    F: FnOnce(tonic::Request<Req>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let mut request = tonic::Request::new(req);
    let started = Instant::now();
    let result = match deadline {
        Some(deadline) => {
            request.set_timeout(deadline);
            match tokio::time::timeout(deadline, call(request)).await {
                Ok(result) => result,
                Err(_) => return Err(deadline_exceeded(method, deadline)),
            }
        }
        None => call(request).await,
    };
    match result {
        Ok(response) => Ok(response.into_inner()),
        // A tonic server enforcing our grpc-timeout answers Cancelled "Timeout expired" (Go
        // servers answer DeadlineExceeded): either way it is our deadline that passed.
        Err(status)
            if status.code() == tonic::Code::Cancelled
                && deadline.is_some_and(|d| started.elapsed() >= d) =>
        {
            Err(deadline_exceeded(method, deadline.unwrap_or_default()))
        }
        Err(status) if is_broken_connection(&status) => {
            let err = CriError::Unavailable(format!("{method}: {}", error_chain(&status)));
            tracing::debug!(method, error = %err, "CRI call failed");
            Err(err)
        }
        Err(status) => {
            let err = CriError::from(status);
            tracing::debug!(method, error = %err, "CRI call failed");
            Err(err)
        }
    }
}

/// True for a status tonic made up locally because the connection itself failed (the runtime
/// died with the connection open: "transport error", code Unknown). gRPC's own clients call
/// that Unavailable, and so must we: the runtime is down, not refusing this call. A status
/// that came from the runtime carries no source error, so it is never mistaken for one.
fn is_broken_connection(status: &tonic::Status) -> bool {
    if status.code() != tonic::Code::Unknown {
        return false;
    }
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if err.is::<tonic::transport::Error>() || err.is::<std::io::Error>() {
            return true;
        }
        source = err.source();
    }
    false
}

/// "transport error: connection closed: ...", the whole chain on one line.
fn error_chain(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        let part = err.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = err.source();
    }
    text
}

fn deadline_exceeded(method: &str, deadline: Duration) -> CriError {
    CriError::DeadlineExceeded(format!("{method} did not answer within {deadline:?}"))
}

/// A whole number of seconds from a CRI timeout field, negative counted as zero.
fn seconds(value: i64) -> Duration {
    Duration::from_secs(u64::try_from(value).unwrap_or(0))
}

/// Writes the impl of `$trait`: the listed methods take the plain runtime request timeout,
/// the methods after them are written out. (The whole impl comes from the macro because
/// async_trait must see every method expanded.)
macro_rules! remote_impl {
    (
        $trait:ident via $client:ident:
        $($method:ident($req:ty) -> $resp:ty, $name:literal;)*
        { $($special:tt)* }
    ) => {
        #[async_trait]
        impl $trait for RemoteRuntime {
            $(
                async fn $method(&self, req: $req) -> Result<$resp, CriError> {
                    let mut client = self.$client.clone();
                    unary($name, Some(self.timeout), req, |r| async move {
                        client.$method(r).await
                    })
                    .await
                }
            )*
            $($special)*
        }
    };
}

remote_impl!(RuntimeService via runtime:
    version(VersionRequest) -> VersionResponse, "Version";
    run_pod_sandbox(RunPodSandboxRequest) -> RunPodSandboxResponse, "RunPodSandbox";
    stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse, "StopPodSandbox";
    remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse, "RemovePodSandbox";
    pod_sandbox_status(PodSandboxStatusRequest) -> PodSandboxStatusResponse, "PodSandboxStatus";
    list_pod_sandbox(ListPodSandboxRequest) -> ListPodSandboxResponse, "ListPodSandbox";
    create_container(CreateContainerRequest) -> CreateContainerResponse, "CreateContainer";
    start_container(StartContainerRequest) -> StartContainerResponse, "StartContainer";
    remove_container(RemoveContainerRequest) -> RemoveContainerResponse, "RemoveContainer";
    list_containers(ListContainersRequest) -> ListContainersResponse, "ListContainers";
    container_status(ContainerStatusRequest) -> ContainerStatusResponse, "ContainerStatus";
    update_container_resources(UpdateContainerResourcesRequest)
        -> UpdateContainerResourcesResponse, "UpdateContainerResources";
    reopen_container_log(ReopenContainerLogRequest) -> ReopenContainerLogResponse,
        "ReopenContainerLog";
    exec(ExecRequest) -> ExecResponse, "Exec";
    attach(AttachRequest) -> AttachResponse, "Attach";
    port_forward(PortForwardRequest) -> PortForwardResponse, "PortForward";
    container_stats(ContainerStatsRequest) -> ContainerStatsResponse, "ContainerStats";
    list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse,
        "ListContainerStats";
    pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse, "PodSandboxStats";
    list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse,
        "ListPodSandboxStats";
    update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse,
        "UpdateRuntimeConfig";
    status(StatusRequest) -> StatusResponse, "Status";
    runtime_config(RuntimeConfigRequest) -> RuntimeConfigResponse, "RuntimeConfig";
    {
        async fn stop_container(
            &self,
            req: StopContainerRequest,
        ) -> Result<StopContainerResponse, CriError> {
            // The runtime waits up to the grace period before it kills: not slowness.
            let deadline = self.timeout + seconds(req.timeout);
            let mut client = self.runtime.clone();
            unary("StopContainer", Some(deadline), req, |r| async move {
                client.stop_container(r).await
            })
            .await
        }

        async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse, CriError> {
            // Like upstream: a command without a timeout may run as long as it likes.
            let deadline = (req.timeout > 0).then(|| self.timeout + seconds(req.timeout));
            let mut client = self.runtime.clone();
            unary("ExecSync", deadline, req, |r| async move {
                client.exec_sync(r).await
            })
            .await
        }
    }
);

remote_impl!(ImageService via images:
    list_images(ListImagesRequest) -> ListImagesResponse, "ListImages";
    image_status(ImageStatusRequest) -> ImageStatusResponse, "ImageStatus";
    remove_image(RemoveImageRequest) -> RemoveImageResponse, "RemoveImage";
    image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse, "ImageFsInfo";
    {
        async fn pull_image(&self, req: PullImageRequest) -> Result<PullImageResponse, CriError> {
            let mut client = self.images.clone();
            unary("PullImage", self.pull_timeout, req, |r| async move {
                client.pull_image(r).await
            })
            .await
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_like_upstream() {
        let ok = [
            (
                "unix:///run/containerd/containerd.sock",
                "/run/containerd/containerd.sock",
            ),
            (
                "/run/containerd/containerd.sock",
                "/run/containerd/containerd.sock",
            ),
            ("unix:///tmp/x y/cri.sock", "/tmp/x y/cri.sock"),
        ];
        for (endpoint, want) in ok {
            assert_eq!(
                parse_endpoint(endpoint),
                Ok(PathBuf::from(want)),
                "{endpoint}"
            );
        }
        let bad = [
            "",
            "unix://",
            "tcp://127.0.0.1:1234",
            "npipe:////./pipe/containerd",
            "relative.sock",
            "unix://relative.sock",
        ];
        for endpoint in bad {
            let err = parse_endpoint(endpoint).expect_err(endpoint);
            assert!(
                matches!(err, CriError::InvalidEndpoint { .. }),
                "{endpoint}: {err}"
            );
        }
    }

    #[test]
    fn timeouts_in_seconds_ignore_negatives() {
        assert_eq!(seconds(30), Duration::from_secs(30));
        assert_eq!(seconds(0), Duration::ZERO);
        assert_eq!(seconds(-5), Duration::ZERO);
    }

    #[test]
    fn only_local_transport_failures_count_as_unavailable() {
        let from_runtime = tonic::Status::unknown("failed to create containerd task");
        assert!(!is_broken_connection(&from_runtime));
        let broken = tonic::Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::BrokenPipe,
            "broken pipe",
        )));
        assert_eq!(broken.code(), tonic::Code::Unknown);
        assert!(is_broken_connection(&broken));
        assert!(error_chain(&broken).contains("broken pipe"));
        let not_found = tonic::Status::not_found("no such container");
        assert!(!is_broken_connection(&not_found));
    }

    #[tokio::test]
    async fn a_new_client_makes_no_connection() {
        let runtime = RemoteRuntime::new("unix:///nonexistent/dir/cri.sock")
            .expect("valid endpoint")
            .with_timeout(Duration::from_secs(5));
        assert_eq!(
            runtime.socket_path(),
            Path::new("/nonexistent/dir/cri.sock")
        );
        let err = runtime
            .version(VersionRequest::default())
            .await
            .expect_err("nobody listens");
        assert!(err.is_unavailable(), "{err}");
    }
}
