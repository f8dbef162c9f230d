//! Lifecycle hooks and live volume updates with a real containerd: postStart runs after the
//! container starts (and a failing one is reported and the container killed), preStop runs
//! when the pod is deleted and the deletion still ends within the grace period, and a
//! configMap volume shows the configMap's new data inside the running container.

use std::path::Path;
use std::time::{Duration, Instant};

use e2e::containerd::BUSYBOX_IMAGE;
use e2e::pods::{apply, events_for, wait_phase, RealNode};
use e2e::{wait_for, ApiServer};

const TIMEOUT: Duration = Duration::from_secs(90);

fn exec_cat(server: &ApiServer, pod: &str, path: &str) -> Option<String> {
    let out = server.kubectl_unchecked(["exec", pod, "--", "cat", path]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// How many configMap requests with `verb` (GET, LIST, ...) the apiserver has answered.
fn configmap_requests(server: &ApiServer, verb: &str) -> f64 {
    let verb = format!("verb=\"{verb}\"");
    let out = server.kubectl_unchecked(["get", "--raw", "/metrics"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{"))
        .filter(|l| l.contains("resource=\"configmaps\"") && l.contains(&verb))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn hooks_run_and_configmap_volumes_follow_their_source() {
    let node = RealNode::start();
    node.allow_kubelet_api();
    let server = &node.server;
    let shared = server.work_dir().join("shared");
    if let Err(err) = std::fs::create_dir_all(&shared) {
        panic!("{err}");
    }
    server.kubectl([
        "create",
        "configmap",
        "settings",
        "--from-literal=colour=blue",
    ]);
    // The main process ignores SIGTERM: only the SIGKILL at the end of the 6 s grace period
    // stops it, after the preStop hook.
    apply(
        server,
        "hooks.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: hooks, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 6
  volumes:
  - name: shared
    hostPath: {{path: {shared}, type: Directory}}
  - name: settings
    configMap: {{name: settings}}
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'trap "" TERM; while true; do sleep 1; done']
    volumeMounts:
    - {{name: shared, mountPath: /shared}}
    - {{name: settings, mountPath: /etc/settings}}
    lifecycle:
      postStart:
        exec: {{command: [sh, -c, 'echo started > /shared/post-start']}}
      preStop:
        exec: {{command: [sh, -c, 'echo stopping > /shared/pre-stop; sleep 1']}}
"#,
            shared = shared.display()
        ),
    );
    wait_phase(server, "hooks", "Running", TIMEOUT);
    let post_start = std::fs::read_to_string(shared.join("post-start")).unwrap_or_default();
    assert_eq!(post_start, "started\n");
    assert!(!shared.join("pre-stop").exists());

    // The configMap's data, then its new data once it changes (the kubelet rewrites the
    // volume atomically while the container runs).
    let first = wait_for("the configMap in the container", TIMEOUT, || {
        exec_cat(server, "hooks", "/etc/settings/colour")
    });
    assert_eq!(first, "blue");
    server.kubectl([
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"colour":"green","size":"L"}}"#,
    ]);
    wait_for("the configMap's update in the container", TIMEOUT, || {
        (exec_cat(server, "hooks", "/etc/settings/colour").as_deref() == Some("green"))
            .then_some(())
    });
    assert_eq!(
        exec_cat(server, "hooks", "/etc/settings/size").as_deref(),
        Some("L")
    );
    // The kubelet watches the configMap rather than reading it on every sync (once a second):
    // over 4 seconds it asks the API for it at most once.
    let before = configmap_requests(server, "GET");
    std::thread::sleep(Duration::from_secs(4));
    let after = configmap_requests(server, "GET");
    assert!(
        configmap_requests(server, "LIST") >= 1.0,
        "the kubelet's watch starts with a list"
    );
    assert!(
        after - before <= 1.0,
        "the kubelet read the configMap {} times in 4 s",
        after - before
    );

    // A failing postStart hook: reported, and the container is killed (and restarted).
    apply(
        server,
        "bad-hook.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: bad-hook, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    command: [sleep, '3600']
    lifecycle:
      postStart:
        exec: {{command: [sh, -c, 'exit 7']}}
"#
        ),
    );
    let event = wait_for("the FailedPostStartHook event", TIMEOUT, || {
        events_for(server, "bad-hook", "FailedPostStartHook")
            .into_iter()
            .next()
    });
    let message = event["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("Exec lifecycle hook ([sh -c exit 7]) for Container \"main\" in Pod \"bad-hook_default("),
        "{message}"
    );
    assert_eq!(event["type"], "Warning");

    // Deleting runs preStop first; the deletion ends within the grace period (6 s, plus the
    // time the kubelet and the API need to notice), not after the runtime's default.
    let started = Instant::now();
    server.kubectl(["delete", "pod", "hooks", "--wait=true", "--timeout=60s"]);
    let took = started.elapsed();
    let pre_stop = std::fs::read_to_string(shared.join("pre-stop")).unwrap_or_default();
    assert_eq!(pre_stop, "stopping\n");
    assert!(
        took < Duration::from_secs(30),
        "deleting a pod with a 6 s grace period took {took:?}"
    );
    assert!(
        took >= Duration::from_secs(5),
        "the container ignores SIGTERM, so only the grace period's end stops it; took {took:?}"
    );
    assert!(Path::new(&shared).exists());
}
