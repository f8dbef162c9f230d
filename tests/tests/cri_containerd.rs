//! The CRI client (`cri::RemoteRuntime`) against a real containerd 1.6 + runc + CNI, each test
//! with a containerd of its own in a temporary directory and network namespace
//! (`e2e::containerd::Containerd`): images, a host-network pod from sandbox to removal, and a
//! pod-network sandbox that gets its address from a bridge + host-local conflist and serves
//! HTTP to the node.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cri::v1::*;
use cri::{ImageService, RemoteRuntime, RuntimeService};
use e2e::containerd::{Containerd, BUSYBOX_IMAGE, PAUSE_IMAGE};

const TIMEOUT: Duration = Duration::from_secs(60);

fn image(name: &str) -> Option<ImageSpec> {
    Some(ImageSpec {
        image: name.to_string(),
        ..Default::default()
    })
}

/// A sandbox config as the kubelet would write it for pod `name` in namespace `default`.
fn sandbox_config(
    containerd: &Containerd,
    name: &str,
    network: NamespaceMode,
) -> (PodSandboxConfig, PathBuf) {
    let uid = format!("{name}-uid");
    let log_directory = containerd
        .pods_log_dir()
        .join(format!("default_{name}_{uid}"));
    if let Err(err) = std::fs::create_dir_all(&log_directory) {
        panic!("creating {}: {err}", log_directory.display());
    }
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid,
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: if network == NamespaceMode::Node {
            String::new()
        } else {
            name.to_string()
        },
        log_directory: log_directory.display().to_string(),
        dns_config: Some(DnsConfig {
            servers: vec!["10.96.0.10".into()],
            searches: vec![
                "default.svc.cluster.local".into(),
                "svc.cluster.local".into(),
            ],
            options: vec!["ndots:5".into()],
        }),
        labels: [
            ("io.kubernetes.pod.name".to_string(), name.to_string()),
            (
                "io.kubernetes.pod.namespace".to_string(),
                "default".to_string(),
            ),
        ]
        .into(),
        annotations: [("kubernetes.io/config.source".to_string(), "api".to_string())].into(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: network as i32,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    (config, log_directory)
}

fn container_config(name: &str, command: &[&str], sandbox: &PodSandboxConfig) -> ContainerConfig {
    let network = sandbox
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map(|n| n.network)
        .unwrap_or_default();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.to_string(),
            attempt: 0,
        }),
        image: image(BUSYBOX_IMAGE),
        command: command.iter().map(|s| s.to_string()).collect(),
        envs: vec![KeyValue {
            key: "GREETING".into(),
            value: "hello".into(),
        }],
        labels: [("io.kubernetes.container.name".to_string(), name.to_string())].into(),
        log_path: format!("{name}/0.log"),
        linux: Some(LinuxContainerConfig {
            resources: Some(LinuxContainerResources {
                cpu_shares: 2,
                oom_score_adj: 1000,
                ..Default::default()
            }),
            security_context: Some(LinuxContainerSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network,
                    pid: NamespaceMode::Container as i32,
                    ipc: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

fn connect(containerd: &Containerd) -> RemoteRuntime {
    match RemoteRuntime::new(&containerd.endpoint()) {
        Ok(runtime) => runtime.with_timeout(TIMEOUT),
        Err(err) => panic!("{err}"),
    }
}

/// Waits for NetworkReady, failing with the runtime's verbose status (containerd puts its
/// last CNI load error there).
async fn wait_for_network_ready(runtime: &RemoteRuntime) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let status = runtime
            .status(StatusRequest { verbose: true })
            .await
            .expect("Status");
        if condition(&status, "NetworkReady").is_some_and(|c| c.status) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("NetworkReady still false after {TIMEOUT:?}: {status:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_until<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {TIMEOUT:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition(status: &StatusResponse, kind: &str) -> Option<RuntimeCondition> {
    status
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.r#type == kind)
        .cloned()
}

/// The lines of a CRI log file as (stream, tag, content), checking each timestamp is RFC 3339.
fn cri_log_lines(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let mut parts = line.splitn(4, ' ');
            let time = parts.next().unwrap_or_default();
            assert!(
                time.len() >= 20 && time.as_bytes().get(10) == Some(&b'T'),
                "not an RFC 3339 timestamp in CRI log line {line:?}"
            );
            let stream = parts.next().unwrap_or_default().to_string();
            let tag = parts.next().unwrap_or_default().to_string();
            let content = parts.next().unwrap_or_default().to_string();
            (stream, tag, content)
        })
        .collect()
}

#[tokio::test]
async fn images_and_runtime_status() {
    let containerd = Containerd::start();
    let runtime = connect(&containerd);

    let version = runtime
        .version(VersionRequest {
            version: "v1".into(),
        })
        .await
        .expect("Version");
    assert_eq!(version.runtime_name, "containerd", "{version:?}");
    assert!(version.runtime_version.starts_with("1."), "{version:?}");
    assert_eq!(version.runtime_api_version, "v1", "{version:?}");

    // No conflist yet: the runtime is ready, its network is not.
    let status = runtime
        .status(StatusRequest { verbose: false })
        .await
        .expect("Status");
    let ready = condition(&status, "RuntimeReady").expect("RuntimeReady condition");
    assert!(ready.status, "{status:?}");
    let network = condition(&status, "NetworkReady").expect("NetworkReady condition");
    assert!(!network.status, "{status:?}");
    assert_eq!(network.reason, "NetworkPluginNotReady", "{status:?}");

    let busybox = runtime
        .image_status(ImageStatusRequest {
            image: image(BUSYBOX_IMAGE),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .image
        .expect("the imported busybox is there");
    assert!(busybox.id.starts_with("sha256:"), "{busybox:?}");
    assert!(
        busybox.repo_tags.contains(&BUSYBOX_IMAGE.to_string()),
        "{busybox:?}"
    );
    assert!(busybox.size > 1_000_000, "{busybox:?}");
    // CRI normalises names: the short form finds the same image.
    let short = runtime
        .image_status(ImageStatusRequest {
            image: image("busybox:test"),
            verbose: false,
        })
        .await
        .expect("ImageStatus")
        .image
        .expect("busybox:test is docker.io/library/busybox:test");
    assert_eq!(short.id, busybox.id);
    let absent = runtime
        .image_status(ImageStatusRequest {
            image: image("docker.io/library/nothing:here"),
            verbose: false,
        })
        .await
        .expect("ImageStatus of an absent image is no error");
    assert!(absent.image.is_none(), "{absent:?}");

    let images = runtime
        .list_images(ListImagesRequest::default())
        .await
        .expect("ListImages")
        .images;
    let tags: Vec<&String> = images.iter().flat_map(|i| &i.repo_tags).collect();
    assert!(tags.iter().any(|t| *t == BUSYBOX_IMAGE), "{tags:?}");
    assert!(tags.iter().any(|t| *t == PAUSE_IMAGE), "{tags:?}");

    let fs = runtime
        .image_fs_info(ImageFsInfoRequest {})
        .await
        .expect("ImageFsInfo");
    let usage = fs.image_filesystems.first().expect("one image filesystem");
    let mountpoint = usage
        .fs_id
        .as_ref()
        .map(|f| f.mountpoint.clone())
        .unwrap_or_default();
    assert!(
        mountpoint.starts_with(&containerd.root_dir().display().to_string()),
        "images live in the test's directory: {fs:?}"
    );

    // A Rust client of a runtime from before RuntimeConfig: Unimplemented, told apart.
    let err = runtime
        .runtime_config(RuntimeConfigRequest {})
        .await
        .expect_err("containerd 1.6 predates RuntimeConfig");
    assert!(err.is_unimplemented(), "{err:?}");

    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

#[tokio::test]
async fn host_network_pod_runs_a_container_from_start_to_removal() {
    let containerd = Containerd::start();
    let runtime = connect(&containerd);

    let (config, log_directory) = sandbox_config(&containerd, "hostnet", NamespaceMode::Node);
    let sandbox_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .pod_sandbox_id;
    let status = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .status
        .expect("a sandbox status");
    assert_eq!(status.state(), PodSandboxState::SandboxReady, "{status:?}");
    assert!(status.created_at > 0, "{status:?}");
    assert_eq!(
        status.metadata.as_ref().map(|m| m.name.as_str()),
        Some("hostnet")
    );
    assert_eq!(
        status
            .annotations
            .get("kubernetes.io/config.source")
            .map(String::as_str),
        Some("api"),
        "annotations come back unchanged"
    );
    let listed = runtime
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: [("io.kubernetes.pod.name".to_string(), "hostnet".to_string())]
                    .into(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListPodSandbox")
        .items;
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        vec![sandbox_id.as_str()]
    );

    let container_id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(container_config(
                "main",
                &["sh", "-c", "echo $GREETING; echo oops >&2; sleep 1000"],
                &config,
            )),
            sandbox_config: Some(config.clone()),
        })
        .await
        .expect("CreateContainer")
        .container_id;
    let created = runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .status
        .expect("a container status");
    assert_eq!(
        created.state(),
        ContainerState::ContainerCreated,
        "{created:?}"
    );
    runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("StartContainer");
    let running = runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .status
        .expect("a container status");
    assert_eq!(
        running.state(),
        ContainerState::ContainerRunning,
        "{running:?}"
    );
    assert!(running.started_at > 0, "{running:?}");
    assert!(running.image_ref.starts_with("sha256:"), "{running:?}");
    let log_path = PathBuf::from(&running.log_path);
    assert_eq!(log_path, log_directory.join("main/0.log"), "{running:?}");

    let containers = runtime
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                pod_sandbox_id: sandbox_id.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("ListContainers")
        .containers;
    assert_eq!(containers.len(), 1, "{containers:?}");
    assert_eq!(containers[0].id, container_id);

    // Host network: the node's hostname (this machine's: containerd shares our UTS namespace).
    let hostname = runtime
        .exec_sync(ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec!["cat".into(), "/etc/hostname".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync");
    assert_eq!(hostname.exit_code, 0, "{hostname:?}");
    let node_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    assert_eq!(
        String::from_utf8_lossy(&hostname.stdout).trim(),
        node_name.trim()
    );
    let failing = runtime
        .exec_sync(ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec!["sh".into(), "-c".into(), "echo to-err >&2; exit 3".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync of a failing command is no error");
    assert_eq!(failing.exit_code, 3, "{failing:?}");
    assert_eq!(String::from_utf8_lossy(&failing.stderr), "to-err\n");
    assert!(failing.stdout.is_empty(), "{failing:?}");

    // The container's output, in the CRI log format, where the kubelet asked.
    let lines = wait_until("hello in the CRI log", || {
        let lines = cri_log_lines(&log_path);
        async move {
            let complete = lines.iter().any(|(s, _, c)| s == "stdout" && c == "hello")
                && lines.iter().any(|(s, _, c)| s == "stderr" && c == "oops");
            complete.then_some(lines)
        }
    })
    .await;
    assert!(lines.iter().all(|(_, tag, _)| tag == "F"), "{lines:?}");

    // The streaming calls answer with a URL on the runtime's stream server.
    let exec = runtime
        .exec(ExecRequest {
            container_id: container_id.clone(),
            cmd: vec!["sh".into()],
            stdin: true,
            stdout: true,
            ..Default::default()
        })
        .await
        .expect("Exec");
    assert!(exec.url.starts_with("http://127.0.0.1:"), "{exec:?}");
    let port_forward = runtime
        .port_forward(PortForwardRequest {
            pod_sandbox_id: sandbox_id.clone(),
            port: vec![80],
        })
        .await
        .expect("PortForward");
    assert!(
        port_forward.url.starts_with("http://127.0.0.1:"),
        "{port_forward:?}"
    );

    let stats = runtime
        .list_container_stats(ListContainerStatsRequest::default())
        .await
        .expect("ListContainerStats")
        .stats;
    assert!(
        stats
            .iter()
            .any(|s| s.attributes.as_ref().is_some_and(|a| a.id == container_id)),
        "{stats:?}"
    );

    // sh is PID 1 of its namespace and ignores SIGTERM: the kill comes after the grace period.
    let started = Instant::now();
    runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 1,
        })
        .await
        .expect("StopContainer");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let exited = runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .status
        .expect("a container status");
    assert_eq!(
        exited.state(),
        ContainerState::ContainerExited,
        "{exited:?}"
    );
    assert_eq!(exited.exit_code, 137, "{exited:?}");
    assert!(exited.finished_at >= exited.started_at, "{exited:?}");
    runtime
        .stop_container(StopContainerRequest {
            container_id: container_id.clone(),
            timeout: 0,
        })
        .await
        .expect("StopContainer is idempotent");
    runtime
        .remove_container(RemoveContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("RemoveContainer");
    let gone = runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect_err("a removed container has no status");
    assert!(gone.is_not_found(), "{gone:?}");
    runtime
        .remove_container(RemoveContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("RemoveContainer is idempotent");

    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .expect("StopPodSandbox is idempotent");
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .expect("RemovePodSandbox");
    let gone = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.clone(),
            verbose: false,
        })
        .await
        .expect_err("a removed sandbox has no status");
    assert!(gone.is_not_found(), "{gone:?}");

    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

#[tokio::test]
async fn pod_network_sandbox_gets_an_address_from_cni() {
    let containerd = Containerd::start();
    let runtime = connect(&containerd);
    containerd
        .write_bridge_conflist("10.88.0.0/24")
        .expect("writing the conflist");
    wait_for_network_ready(&runtime).await;

    let (config, _) = sandbox_config(&containerd, "web", NamespaceMode::Pod);
    let sandbox_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .pod_sandbox_id;
    let status = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .status
        .expect("a sandbox status");
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        ip.starts_with("10.88.0."),
        "pod IP {ip:?} from the conflist's subnet"
    );
    assert!(
        containerd.ipam_dir().join("kt-bridge").join(&ip).exists(),
        "host-local recorded the lease in the test's directory"
    );

    let container_id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(container_config(
                "httpd",
                &[
                    "sh",
                    "-c",
                    "hostname > /www/index.html; exec httpd -f -p 8080 -h /www",
                ],
                &config,
            )),
            sandbox_config: Some(config.clone()),
        })
        .await
        .expect("CreateContainer")
        .container_id;
    runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("StartContainer");

    // The pod's own hostname and resolv.conf, from the sandbox config.
    let hostname = runtime
        .exec_sync(ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec!["cat".into(), "/etc/hostname".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync");
    assert_eq!(String::from_utf8_lossy(&hostname.stdout).trim(), "web");
    let resolv = runtime
        .exec_sync(ExecSyncRequest {
            container_id: container_id.clone(),
            cmd: vec!["cat".into(), "/etc/resolv.conf".into()],
            timeout: 10,
        })
        .await
        .expect("ExecSync");
    let resolv = String::from_utf8_lossy(&resolv.stdout).into_owned();
    assert!(resolv.contains("nameserver 10.96.0.10"), "{resolv}");
    assert!(
        resolv.contains("search default.svc.cluster.local svc.cluster.local"),
        "{resolv}"
    );
    assert!(resolv.contains("options ndots:5"), "{resolv}");

    // The node (containerd's namespace, where the bridge is) reaches the pod.
    let url = format!("http://{ip}:8080/");
    let body = wait_until("the pod's httpd to answer the node", || {
        let mut curl = containerd.in_netns("curl");
        curl.args(["-sS", "--max-time", "2", &url]);
        async move {
            let output = curl.output().ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        }
    })
    .await;
    assert_eq!(body.trim(), "web");

    runtime
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .expect("StopPodSandbox");
    let after_stop = runtime
        .container_status(ContainerStatusRequest {
            container_id: container_id.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .status
        .expect("a container status");
    assert_eq!(
        after_stop.state(),
        ContainerState::ContainerExited,
        "{after_stop:?}"
    );
    assert!(
        !containerd.ipam_dir().join("kt-bridge").join(&ip).exists(),
        "StopPodSandbox released the address"
    );
    runtime
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: sandbox_id.clone(),
        })
        .await
        .expect("RemovePodSandbox (and its container)");
    let gone = runtime
        .container_status(ContainerStatusRequest {
            container_id,
            verbose: false,
        })
        .await
        .expect_err("removed with its sandbox");
    assert!(gone.is_not_found(), "{gone:?}");

    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

/// Starts a pod-network sandbox with one `sleep` container; returns (sandbox, container).
async fn run_sleeping_pod(
    containerd: &Containerd,
    runtime: &RemoteRuntime,
    name: &str,
) -> (String, String) {
    let (config, _) = sandbox_config(containerd, name, NamespaceMode::Pod);
    let sandbox_id = runtime
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .expect("RunPodSandbox")
        .pod_sandbox_id;
    let container_id = runtime
        .create_container(CreateContainerRequest {
            pod_sandbox_id: sandbox_id.clone(),
            config: Some(container_config("sleeper", &["sleep", "1000"], &config)),
            sandbox_config: Some(config),
        })
        .await
        .expect("CreateContainer")
        .container_id;
    runtime
        .start_container(StartContainerRequest {
            container_id: container_id.clone(),
        })
        .await
        .expect("StartContainer");
    (sandbox_id, container_id)
}

fn cni_cache_entries(sandbox_id: &str) -> Vec<String> {
    std::fs::read_dir("/var/lib/cni/results")
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(sandbox_id))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn dropping_the_harness_cleans_up_a_running_pod() {
    let containerd = Containerd::start();
    let runtime = connect(&containerd);
    containerd
        .write_bridge_conflist("10.88.1.0/24")
        .expect("writing the conflist");
    wait_for_network_ready(&runtime).await;
    let (sandbox_id, _) = run_sleeping_pod(&containerd, &runtime, "left").await;
    assert!(
        !cni_cache_entries(&sandbox_id).is_empty(),
        "libcni caches the ADD"
    );

    // Everything still running: the harness must take it all down.
    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
    assert_eq!(cni_cache_entries(&sandbox_id), Vec::<String>::new());
}

#[tokio::test]
async fn a_crashed_containerd_is_unavailable_then_recovers_its_pods() {
    let mut containerd = Containerd::start();
    let runtime = connect(&containerd).with_timeout(Duration::from_secs(5));
    containerd
        .write_bridge_conflist("10.88.2.0/24")
        .expect("writing the conflist");
    wait_for_network_ready(&runtime).await;
    let (sandbox_id, container_id) = run_sleeping_pod(&containerd, &runtime, "survivor").await;

    containerd.kill();
    let started = Instant::now();
    let down = runtime
        .version(VersionRequest::default())
        .await
        .expect_err("containerd is down");
    assert!(down.is_unavailable(), "{down:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "fails fast: {:?}",
        started.elapsed()
    );

    containerd.restart().expect("restarting containerd");
    // The same client reconnects; the pod kept running through the outage.
    let status = wait_until("the container's status after the restart", || {
        let runtime = runtime.clone();
        let container_id = container_id.clone();
        async move {
            runtime
                .container_status(ContainerStatusRequest {
                    container_id,
                    verbose: false,
                })
                .await
                .ok()?
                .status
        }
    })
    .await;
    assert_eq!(
        status.state(),
        ContainerState::ContainerRunning,
        "{status:?}"
    );
    let sandbox = runtime
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: sandbox_id,
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .status
        .expect("a sandbox status");
    assert_eq!(
        sandbox.state(),
        PodSandboxState::SandboxReady,
        "{sandbox:?}"
    );
    assert!(
        sandbox
            .network
            .is_some_and(|n| n.ip.starts_with("10.88.2.")),
        "the address survives the restart"
    );

    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
}

#[tokio::test]
async fn dropping_after_a_crash_still_cleans_up() {
    let mut containerd = Containerd::start();
    let runtime = connect(&containerd);
    containerd
        .write_bridge_conflist("10.88.3.0/24")
        .expect("writing the conflist");
    wait_for_network_ready(&runtime).await;
    let (sandbox_id, _) = run_sleeping_pod(&containerd, &runtime, "orphan").await;

    // No containerd to ask: runc, the shims and the mounts are taken down by force.
    containerd.kill();
    let footprint = containerd.footprint();
    drop(containerd);
    assert_eq!(footprint.leftovers(), Vec::<String>::new());
    assert_eq!(cni_cache_entries(&sandbox_id), Vec::<String>::new());
}
