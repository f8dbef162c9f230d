//! The kubelet against a real containerd 1.6 + runc + CNI (each test with a containerd of its
//! own in a temporary directory and network namespace), the real apiserver and the real
//! kubectl: the kubelet writes the CNI configuration for its podCIDR, a busybox pod becomes
//! Running with an address from that bridge network and
//! serves HTTP to the node, its output lands in the CRI log file, a container that fails under
//! `restartPolicy: Never` fails the pod with its exit code, and deleting the pod removes its
//! sandbox and containers from containerd.

use std::time::Duration;

use cri::v1::ListPodSandboxRequest;
use cri::{RemoteRuntime, RuntimeService};
use e2e::containerd::{Containerd, BUSYBOX_IMAGE};
use e2e::pods::{apply, wait_phase};
use e2e::{wait_for, ApiServer, Backend, Daemon};

const TIMEOUT: Duration = Duration::from_secs(90);

fn sandboxes(containerd: &Containerd) -> usize {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => panic!("{err}"),
    };
    rt.block_on(async {
        let runtime = match RemoteRuntime::new(&containerd.endpoint()) {
            Ok(r) => r,
            Err(err) => panic!("{err}"),
        };
        runtime
            .list_pod_sandbox(ListPodSandboxRequest::default())
            .await
            .map(|r| r.items.len())
            .unwrap_or(usize::MAX)
    })
}

#[test]
fn a_busybox_pod_runs_serves_http_and_is_removed_with_its_sandbox() {
    let containerd = Containerd::start();
    let server = ApiServer::start(Backend::Embedded);
    let endpoint = format!("--container-runtime-endpoint={}", containerd.endpoint());
    let root = server.work_dir().join("kubelet-root");
    let root_flag = format!("--root-dir={}", root.display());
    // The kubelet writes the runtime's CNI configuration for its podCIDR.
    let cni_flag = format!("--cni-conf-dir={}", containerd.cni_conf_dir().display());
    let _kubelet = Daemon::kubelet(
        &server,
        &[
            endpoint.as_str(),
            root_flag.as_str(),
            cni_flag.as_str(),
            "--pod-cidr=10.88.0.0/24",
            "--hostname-override=node1",
            "--fail-swap-on=false",
        ],
    );
    let conflist = wait_for("the kubelet's CNI conflist", TIMEOUT, || {
        std::fs::read_to_string(containerd.cni_conf_dir().join("10-kubelet-bridge.conflist")).ok()
    });
    assert!(conflist.contains("10.88.0.0/24"), "{conflist}");
    let pod = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 2
  containers:
  - name: web
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'echo hello from $POD_NAME; mkdir -p /tmp/www; echo served > /tmp/www/index.html; exec httpd -f -p 8080 -h /tmp/www']
    env:
    - name: POD_NAME
      valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}
"#
    );
    apply(&server, "web.yaml", &pod);
    let p = wait_phase(&server, "web", "Running", TIMEOUT);
    let ip = p["status"]["podIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.starts_with("10.88.0."), "{}", p["status"]);
    let c = &p["status"]["containerStatuses"][0];
    assert!(c["containerID"]
        .as_str()
        .is_some_and(|id| id.starts_with("containerd://")));
    assert!(
        c["imageID"]
            .as_str()
            .is_some_and(|id| id.starts_with("sha256:")),
        "{c}"
    );
    // Reachable from the node (the containerd's network namespace is the node's network).
    let body = wait_for("the pod's httpd", TIMEOUT, || {
        let out = containerd
            .in_netns("curl")
            .args(["-s", "--max-time", "2", &format!("http://{ip}:8080/")])
            .output()
            .ok()?;
        let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!body.is_empty()).then_some(body)
    });
    assert_eq!(body, "served");
    // The container's output in the CRI log under the kubelet's pod log directory.
    let uid = p["metadata"]["uid"].as_str().unwrap_or_default();
    let log = root
        .join("pod-logs")
        .join(format!("default_web_{uid}"))
        .join("web")
        .join("0.log");
    let text = wait_for("the container log", TIMEOUT, || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("hello from web"))
    });
    assert!(text.contains(" stdout F hello from web"), "{text}");

    // A failing container under Never fails the pod with its exit code.
    apply(
        &server,
        "fail.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: fail, namespace: default}}\nspec:\n  nodeName: node1\n  automountServiceAccountToken: false\n  restartPolicy: Never\n  containers:\n  - name: c\n    image: {BUSYBOX_IMAGE}\n    command: [sh, -c, 'exit 7']\n"
        ),
    );
    let p = wait_phase(&server, "fail", "Failed", TIMEOUT);
    let t = &p["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(t["exitCode"], 7, "{t}");
    assert_eq!(t["reason"], "Error");

    // Deleting both: the kubelet stops them, finishes the deletions and removes the sandboxes.
    server.kubectl(["delete", "pod", "web", "fail", "--wait=false"]);
    wait_for("the pods gone", TIMEOUT, || {
        let out = server.kubectl_stdout(["get", "pods", "-o", "name"]);
        out.trim().is_empty().then_some(())
    });
    wait_for("no sandboxes left in containerd", TIMEOUT, || {
        (sandboxes(&containerd) == 0).then_some(())
    });
}
