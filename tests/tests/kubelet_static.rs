//! Static pods on the simulated runtime: manifests in `--pod-manifest-path` run on the node
//! and show in the API as mirror pods (owned by the Node, with their status); a deleted mirror
//! pod comes back while the pod keeps running; an edited manifest replaces the pod; a removed
//! one stops it and deletes its mirror; a malformed one is reported on the Node while every
//! other pod keeps running.

use std::time::Duration;

use e2e::pods::{apply, events_for, get_pod, node_ready, wait_phase};
use e2e::{wait_for, ApiServer, Backend, Daemon};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn manifest(image: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {{tier: static}}\nspec:\n  containers:\n  - name: app\n    image: {image}\n"
    )
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn mirror_hash(pod: &Value) -> String {
    pod["metadata"]["annotations"]["kubernetes.io/config.mirror"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The mirror pod once it exists with `phase` and (if given) not with `old_uid`.
fn wait_mirror(server: &ApiServer, phase: &str, not_uid: Option<&str>) -> Value {
    let what = match not_uid {
        Some(_) => format!("a new mirror pod web-n1 {phase}"),
        None => format!("mirror pod web-n1 {phase}"),
    };
    wait_for(&what, TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "json"]);
        let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
        let fresh = not_uid.is_none_or(|old| uid(&pod) != old);
        (fresh && pod["status"]["phase"] == phase).then_some(pod)
    })
}

#[test]
fn static_pods_run_from_files_and_mirror_into_the_api() {
    let server = ApiServer::start(Backend::Embedded);
    let dir = server.work_dir().join("manifests");
    if let Err(err) = std::fs::create_dir_all(&dir) {
        panic!("{err}");
    }
    let write = |name: &str, text: &str| {
        if let Err(err) = std::fs::write(dir.join(name), text) {
            panic!("{err}");
        }
    };
    write("web.yaml", &manifest("busybox:1"));
    write(
        "broken.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
    );
    let path_flag = format!("--pod-manifest-path={}", dir.display());
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1", path_flag.as_str()]);
    node_ready(&server, "n1", TIMEOUT);
    // An ordinary pod on the same node, which must keep running throughout.
    apply(
        &server,
        "api.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: api, namespace: default}\nspec:\n  nodeName: n1\n  automountServiceAccountToken: false\n  containers:\n  - {name: app, image: busybox:1}\n",
    );
    let api_uid = uid(&wait_phase(&server, "api", "Running", TIMEOUT));

    // The mirror pod: the static pod's name, labels and status; owned by the Node.
    let mirror = wait_mirror(&server, "Running", None);
    let hash = mirror_hash(&mirror);
    assert_eq!(hash.len(), 32, "{mirror}");
    assert_eq!(
        mirror["metadata"]["annotations"]["kubernetes.io/config.source"],
        "file"
    );
    assert_eq!(mirror["metadata"]["labels"]["tier"], "static");
    assert_eq!(mirror["spec"]["nodeName"], "n1");
    let owner = &mirror["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["name"], "n1");
    assert_eq!(owner["controller"], true);
    assert_eq!(
        mirror["status"]["containerStatuses"][0]["ready"], true,
        "{mirror}"
    );

    // The malformed manifest is reported on the Node.
    let events = wait_for("the Node's FailedToCreateStaticPod event", TIMEOUT, || {
        let found = events_for(&server, "n1", "FailedToCreateStaticPod");
        (!found.is_empty()).then_some(found)
    });
    let message = events[0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("broken.yaml"), "{message}");
    assert_eq!(events[0]["type"], "Warning");

    // Deleting the mirror pod does not stop the static pod: the mirror comes back.
    server.kubectl(["delete", "pod", "web-n1", "--wait=false"]);
    let again = wait_mirror(&server, "Running", Some(&uid(&mirror)));
    assert_eq!(mirror_hash(&again), hash);
    assert_eq!(
        again["status"]["containerStatuses"][0]["restartCount"], 0,
        "the static pod kept running: {again}"
    );

    // An edited manifest is another pod: the mirror is replaced.
    write("web.yaml", &manifest("busybox:2"));
    let edited = wait_for("the edited mirror pod", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "json"]);
        let pod: Value = serde_json::from_slice(&out.stdout).ok()?;
        (mirror_hash(&pod) != hash
            && !mirror_hash(&pod).is_empty()
            && pod["status"]["phase"] == "Running")
            .then_some(pod)
    });
    assert_eq!(edited["spec"]["containers"][0]["image"], "busybox:2");

    // A removed manifest stops the pod and deletes its mirror.
    if let Err(err) = std::fs::remove_file(dir.join("web.yaml")) {
        panic!("{err}");
    }
    wait_for("the mirror pod deleted", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web-n1", "-o", "name"]);
        (!out.status.success()).then_some(())
    });

    // The API's pod ran through all of it.
    let api = get_pod(&server, "api");
    assert_eq!(uid(&api), api_uid);
    assert_eq!(api["status"]["phase"], "Running");
    assert_eq!(api["status"]["containerStatuses"][0]["restartCount"], 0);
}

/// The pod names of the containers running in `endpoint`'s runtime (by their CRI labels).
fn running_pods(endpoint: &str) -> Vec<String> {
    let endpoint = endpoint.to_string();
    let worker = std::thread::spawn(move || -> Option<Vec<String>> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        rt.block_on(async move {
            use cri::v1::{ContainerState, ListContainersRequest};
            use cri::RuntimeService;
            let runtime = cri::RemoteRuntime::new(&endpoint).ok()?;
            let containers = runtime
                .list_containers(ListContainersRequest::default())
                .await
                .ok()?
                .containers;
            Some(
                containers
                    .into_iter()
                    .filter(|c| c.state == ContainerState::ContainerRunning as i32)
                    .filter_map(|c| c.labels.get("io.kubernetes.pod.name").cloned())
                    .collect(),
            )
        })
    });
    worker.join().ok().flatten().unwrap_or_default()
}

/// A kubelet with no API server at all (no kubeconfig): upstream's standalone mode, which
/// runs only the static pods — how a control plane's static pods start before there is an
/// apiserver.
#[test]
fn a_standalone_kubelet_runs_static_pods_on_containerd() {
    let containerd = e2e::containerd::Containerd::start();
    if let Err(err) = containerd.write_bridge_conflist("10.88.0.0/24") {
        panic!("{err:#}");
    }
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(err) => panic!("{err}"),
    };
    let manifests = dir.path().join("manifests");
    if let Err(err) = std::fs::create_dir_all(&manifests) {
        panic!("{err}");
    }
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {}\n    command: [sleep, '3600']\n",
        e2e::containerd::BUSYBOX_IMAGE
    );
    if let Err(err) = std::fs::write(manifests.join("web.yaml"), manifest) {
        panic!("{err}");
    }
    let port = match e2e::free_port() {
        Ok(port) => port,
        Err(err) => panic!("{err:#}"),
    };
    let log = match std::fs::File::create(dir.path().join("kubelet.log")) {
        Ok(log) => log,
        Err(err) => panic!("{err}"),
    };
    let log_err = match log.try_clone() {
        Ok(log) => log,
        Err(err) => panic!("{err}"),
    };
    let mut kubelet = match std::process::Command::new(e2e::binary("kubelet", "kubelet"))
        .arg(format!(
            "--container-runtime-endpoint={}",
            containerd.endpoint()
        ))
        .arg(format!("--root-dir={}", dir.path().join("root").display()))
        .arg(format!("--cert-dir={}", dir.path().join("certs").display()))
        .arg(format!("--pod-manifest-path={}", manifests.display()))
        .arg(format!("--port={port}"))
        .args([
            "--hostname-override=node1",
            "--fail-swap-on=false",
            "--healthz-port=0",
        ])
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => panic!("spawning the kubelet: {err}"),
    };
    let log_text = || std::fs::read_to_string(dir.path().join("kubelet.log")).unwrap_or_default();
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for("the static pod running", TIMEOUT, || {
            running_pods(&containerd.endpoint())
                .iter()
                .any(|p| p == "web-node1")
                .then_some(())
        });
        // The manifest goes: so does the pod.
        if let Err(err) = std::fs::remove_file(manifests.join("web.yaml")) {
            panic!("{err}");
        }
        wait_for("the static pod stopped", TIMEOUT, || {
            running_pods(&containerd.endpoint())
                .is_empty()
                .then_some(())
        });
    }));
    let _ = kubelet.kill();
    let _ = kubelet.wait();
    if let Err(panic) = started {
        eprintln!("--- kubelet log ---\n{}", log_text());
        std::panic::resume_unwind(panic);
    }
}
