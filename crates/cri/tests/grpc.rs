//! The client and the server together: a small in-memory fake runtime served with
//! `serve_unix` on a socket in a temporary directory, called through `RemoteRuntime` the way
//! the kubelet calls containerd.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cri::v1::*;
use cri::{serve_unix, ContainerRuntime, CriError, ImageService, RemoteRuntime, RuntimeService};

/// Sandboxes by ID; everything the tests do not use answers Unimplemented.
#[derive(Default)]
struct Fake {
    sandboxes: Mutex<BTreeMap<String, PodSandboxConfig>>,
}

fn not_found(what: &str, id: &str) -> CriError {
    CriError::NotFound(format!("{what} {id:?} does not exist"))
}

/// The impl of `$trait` for Fake: the methods written out, plus the listed ones answering
/// Unimplemented. (One macro for the whole impl: async_trait must see every method expanded.)
macro_rules! fake_impl {
    ($trait:ident { $($written:tt)* } unimplemented: $($method:ident($req:ty) -> $resp:ty;)*) => {
        #[async_trait]
        impl $trait for Fake {
            $($written)*
            $(
                async fn $method(&self, _req: $req) -> Result<$resp, CriError> {
                    Err(CriError::Unimplemented(stringify!($method).into()))
                }
            )*
        }
    };
}

fake_impl!(RuntimeService {
    async fn version(&self, req: VersionRequest) -> Result<VersionResponse, CriError> {
        Ok(VersionResponse {
            version: req.version,
            runtime_name: "fake".into(),
            runtime_version: "0.0.1".into(),
            runtime_api_version: "v1".into(),
        })
    }

    async fn run_pod_sandbox(
        &self,
        req: RunPodSandboxRequest,
    ) -> Result<RunPodSandboxResponse, CriError> {
        let config = req
            .config
            .ok_or_else(|| CriError::InvalidArgument("config is required".into()))?;
        let mut sandboxes = self
            .sandboxes
            .lock()
            .map_err(|_| CriError::rpc(tonic::Code::Internal, "poisoned"))?;
        let id = format!("sandbox-{}", sandboxes.len() + 1);
        sandboxes.insert(id.clone(), config);
        Ok(RunPodSandboxResponse { pod_sandbox_id: id })
    }

    async fn pod_sandbox_status(
        &self,
        req: PodSandboxStatusRequest,
    ) -> Result<PodSandboxStatusResponse, CriError> {
        let sandboxes = self
            .sandboxes
            .lock()
            .map_err(|_| CriError::rpc(tonic::Code::Internal, "poisoned"))?;
        let config = sandboxes
            .get(&req.pod_sandbox_id)
            .ok_or_else(|| not_found("sandbox", &req.pod_sandbox_id))?;
        Ok(PodSandboxStatusResponse {
            status: Some(PodSandboxStatus {
                id: req.pod_sandbox_id.clone(),
                metadata: config.metadata.clone(),
                state: PodSandboxState::SandboxReady as i32,
                created_at: 1,
                network: Some(PodSandboxNetworkStatus {
                    ip: "10.88.0.2".into(),
                    additional_ips: vec![],
                }),
                labels: config.labels.clone(),
                annotations: config.annotations.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn exec_sync(&self, req: ExecSyncRequest) -> Result<ExecSyncResponse, CriError> {
        // `yes N`: N bytes of output, to cross gRPC's 4 MiB default message size.
        let n: usize = req.cmd.get(1).and_then(|n| n.parse().ok()).unwrap_or(0);
        Ok(ExecSyncResponse {
            stdout: vec![b'y'; n],
            stderr: b"done".to_vec(),
            exit_code: 3,
        })
    }

    async fn status(&self, _req: StatusRequest) -> Result<StatusResponse, CriError> {
        // Slow on purpose: the deadline test.
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(StatusResponse::default())
    }

} unimplemented:
        stop_pod_sandbox(StopPodSandboxRequest) -> StopPodSandboxResponse;
        remove_pod_sandbox(RemovePodSandboxRequest) -> RemovePodSandboxResponse;
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
        exec(ExecRequest) -> ExecResponse;
        attach(AttachRequest) -> AttachResponse;
        port_forward(PortForwardRequest) -> PortForwardResponse;
        container_stats(ContainerStatsRequest) -> ContainerStatsResponse;
        list_container_stats(ListContainerStatsRequest) -> ListContainerStatsResponse;
        pod_sandbox_stats(PodSandboxStatsRequest) -> PodSandboxStatsResponse;
        list_pod_sandbox_stats(ListPodSandboxStatsRequest) -> ListPodSandboxStatsResponse;
        update_runtime_config(UpdateRuntimeConfigRequest) -> UpdateRuntimeConfigResponse;
);

fake_impl!(ImageService {
    async fn image_status(&self, req: ImageStatusRequest) -> Result<ImageStatusResponse, CriError> {
        let name = req.image.map(|spec| spec.image).unwrap_or_default();
        let image = (name == "docker.io/library/busybox:test").then(|| Image {
            id: "sha256:abc".into(),
            repo_tags: vec![name],
            size: 1,
            ..Default::default()
        });
        Ok(ImageStatusResponse {
            image,
            info: Default::default(),
        })
    }

} unimplemented:
        list_images(ListImagesRequest) -> ListImagesResponse;
        pull_image(PullImageRequest) -> PullImageResponse;
        remove_image(RemoveImageRequest) -> RemoveImageResponse;
        image_fs_info(ImageFsInfoRequest) -> ImageFsInfoResponse;
);

fn sandbox_config(name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        labels: [("app".to_string(), name.to_string())].into(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec!["default.svc.cluster.local".into()],
            options: vec!["ndots:5".into()],
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn calls_round_trip_through_grpc() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_unix(dir.path().join("cri.sock"), Fake::default()).expect("serve");
    let remote = RemoteRuntime::new(&server.endpoint()).expect("endpoint");
    // What the kubelet holds: one object, seen as either service.
    let both: Arc<dyn ContainerRuntime> = Arc::new(remote);
    let runtime: Arc<dyn RuntimeService> = both.clone();
    let images: Arc<dyn ImageService> = both;

    let version = runtime
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .expect("Version");
    assert_eq!(version.runtime_name, "fake");
    assert_eq!(version.runtime_api_version, "v1");
    assert_eq!(version.version, "v1");

    let id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config("web")),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .pod_sandbox_id;
    assert_eq!(id, "sandbox-1");
    let status = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .status
        .expect("a status");
    assert_eq!(status.id, id);
    assert_eq!(status.state(), PodSandboxState::SandboxReady);
    assert_eq!(
        status.metadata.map(|m| m.name).as_deref(),
        Some("web"),
        "metadata comes back"
    );
    assert_eq!(status.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(status.network.map(|n| n.ip).as_deref(), Some("10.88.0.2"));

    let missing = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: "nope".into(),
            verbose: false,
        })
        .await
        .expect_err("unknown sandbox");
    assert!(missing.is_not_found(), "{missing:?}");
    assert_eq!(missing.message(), "sandbox \"nope\" does not exist");

    let invalid = runtime
        .run_pod_sandbox(RunPodSandboxRequest::default())
        .await
        .expect_err("no config");
    assert!(
        matches!(invalid, CriError::InvalidArgument(_)),
        "{invalid:?}"
    );

    let unimplemented = runtime
        .list_containers(ListContainersRequest::default())
        .await
        .expect_err("not in the fake");
    assert!(unimplemented.is_unimplemented(), "{unimplemented:?}");
    // The trait's default, through the wire.
    let config = runtime
        .runtime_config(RuntimeConfigRequest {})
        .await
        .expect_err("default RuntimeConfig");
    assert!(config.is_unimplemented(), "{config:?}");

    let present = images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: "docker.io/library/busybox:test".into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("ImageStatus");
    assert_eq!(present.image.map(|i| i.id).as_deref(), Some("sha256:abc"));
    let absent = images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: "docker.io/library/nothing:1".into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .expect("ImageStatus of an absent image is no error");
    assert!(absent.image.is_none());

    server.shutdown().await.expect("shutdown");
    assert!(!dir.path().join("cri.sock").exists(), "socket removed");
}

#[tokio::test]
async fn a_shared_runtime_object_can_be_served() {
    // A simulated runtime shared between its owner and the server.
    let fake: Arc<dyn ContainerRuntime> = Arc::new(Fake::default());
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_unix(dir.path().join("cri.sock"), Arc::clone(&fake)).expect("serve");
    let remote = RemoteRuntime::new(&server.endpoint()).expect("endpoint");
    let id = remote
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config("shared")),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox over gRPC")
        .pod_sandbox_id;
    // The owner sees what the gRPC client made.
    let status = fake
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id,
            verbose: false,
        })
        .await
        .expect("in-process PodSandboxStatus");
    assert_eq!(
        status
            .status
            .and_then(|s| s.metadata)
            .map(|m| m.name)
            .as_deref(),
        Some("shared")
    );
}

#[tokio::test]
async fn messages_up_to_16_mib_pass() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_unix(dir.path().join("cri.sock"), Fake::default()).expect("serve");
    let runtime = RemoteRuntime::new(&server.endpoint()).expect("endpoint");
    let big = 6 * 1024 * 1024;
    let out = runtime
        .exec_sync(ExecSyncRequest {
            container_id: "c".into(),
            cmd: vec!["yes".into(), big.to_string()],
            timeout: 0,
        })
        .await
        .expect("ExecSync");
    assert_eq!(out.stdout.len(), big);
    assert_eq!(out.stderr, b"done");
    assert_eq!(out.exit_code, 3);
}

#[tokio::test]
async fn a_slow_call_hits_the_request_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = serve_unix(dir.path().join("cri.sock"), Fake::default()).expect("serve");
    let runtime = RemoteRuntime::new(&server.endpoint())
        .expect("endpoint")
        .with_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let err = runtime
        .status(StatusRequest { verbose: false })
        .await
        .expect_err("Status sleeps 5 s");
    assert!(matches!(err, CriError::DeadlineExceeded(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The connection is still good for the next call.
    runtime
        .version(VersionRequest::default())
        .await
        .expect("Version after a timeout");
}

#[tokio::test]
async fn a_runtime_that_is_down_is_unavailable_until_it_returns() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("cri.sock");
    let runtime = RemoteRuntime::new(&format!("unix://{}", socket.display()))
        .expect("endpoint")
        .with_timeout(Duration::from_secs(5));

    let down = runtime
        .version(VersionRequest::default())
        .await
        .expect_err("nothing listens yet");
    assert!(down.is_unavailable(), "{down:?}");

    let server = serve_unix(&socket, Fake::default()).expect("serve");
    let mut last = None;
    for _ in 0..50 {
        match runtime.version(VersionRequest::default()).await {
            Ok(version) => {
                last = Some(Ok(version));
                break;
            }
            Err(err) => last = Some(Err(err)),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    match last {
        Some(Ok(version)) => assert_eq!(version.runtime_name, "fake"),
        other => panic!("the runtime never came back: {other:?}"),
    }

    server.shutdown().await.expect("shutdown");
    let mut gone = None;
    for _ in 0..50 {
        match runtime.version(VersionRequest::default()).await {
            Err(err) => {
                gone = Some(err);
                break;
            }
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let gone = gone.expect("calls fail once the server is gone");
    assert!(gone.is_unavailable(), "{gone:?}");
}

#[tokio::test]
async fn serving_refuses_a_path_that_is_not_a_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, b"data").expect("write");
    let err = serve_unix(&file, Fake::default()).expect_err("a regular file is in the way");
    assert!(matches!(err, CriError::Serve { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).expect("still there"), b"data");
}

#[test]
fn auth_config_debug_hides_secrets() {
    let auth = AuthConfig {
        username: "me".into(),
        password: "hunter2".into(),
        auth: "bWU6aHVudGVyMg==".into(),
        ..Default::default()
    };
    let shown = format!("{auth:?}");
    assert!(shown.contains("me"), "{shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("bWU6"),
        "{shown}"
    );
}
