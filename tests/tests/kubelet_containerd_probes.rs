//! Probes and init containers with a real containerd (exec probes through CRI ExecSync in the
//! running container): init containers run in order before the app; readiness follows a file
//! the test creates and removes with `kubectl exec`; a failing liveness probe restarts the
//! container (restartCount rises, lastState says how it ended, a Killing event says why).

use std::time::Duration;

use e2e::containerd::BUSYBOX_IMAGE;
use e2e::pods::{apply, condition, events_for, get_pod, wait_phase, RealNode};
use e2e::{wait_for, ApiServer};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

fn exec(server: &ApiServer, args: &[&str]) -> String {
    let mut all = vec!["exec", "app", "--"];
    all.extend_from_slice(args);
    let out = server.kubectl_unchecked(&all);
    assert!(
        out.status.success(),
        "kubectl exec {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn ready(server: &ApiServer) -> Value {
    condition(&get_pod(server, "app"), "Ready")["status"].clone()
}

#[test]
fn init_containers_probes_and_restarts_with_containerd() {
    let node = RealNode::start();
    node.allow_kubelet_api();
    let server = &node.server;
    apply(
        server,
        "app.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: app, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  volumes:
  - {{name: shared, emptyDir: {{}}}}
  initContainers:
  - name: first
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'sleep 1; echo first >> /shared/order']
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  - name: second
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'echo second >> /shared/order']
    volumeMounts: [{{name: shared, mountPath: /shared}}]
  containers:
  - name: main
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'cp /shared/order /tmp/order; exec sleep 3600']
    volumeMounts: [{{name: shared, mountPath: /shared}}]
    readinessProbe:
      exec: {{command: [test, -f, /tmp/ready]}}
      periodSeconds: 1
      failureThreshold: 1
    livenessProbe:
      exec: {{command: [sh, -c, 'test ! -f /tmp/die']}}
      periodSeconds: 1
      failureThreshold: 1
"#
        ),
    );
    let pod = wait_phase(server, "app", "Running", TIMEOUT);
    for init in pod["status"]["initContainerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert_eq!(init["state"]["terminated"]["reason"], "Completed", "{init}");
    }
    // The init containers ran one after the other, in order, before the app.
    assert_eq!(exec(server, &["cat", "/tmp/order"]), "first\nsecond\n");

    // Readiness follows the probe: not ready, ready, not ready again.
    assert_eq!(ready(server), "False");
    exec(server, &["touch", "/tmp/ready"]);
    wait_for("app Ready", TIMEOUT, || {
        (ready(server) == "True").then_some(())
    });
    exec(server, &["rm", "/tmp/ready"]);
    wait_for("app not Ready", TIMEOUT, || {
        (ready(server) == "False").then_some(())
    });

    // The liveness probe fails: the container is killed and started again.
    exec(server, &["touch", "/tmp/die"]);
    let status = wait_for("the restart", TIMEOUT, || {
        let p = get_pod(server, "app");
        let status = p["status"]["containerStatuses"][0].clone();
        (status["restartCount"].as_i64() >= Some(1) && status["state"]["running"].is_object())
            .then_some(status)
    });
    let last = &status["lastState"]["terminated"];
    assert!(
        last["exitCode"].as_i64().is_some_and(|c| c != 0),
        "{status}"
    );
    assert!(last["finishedAt"].is_string(), "{status}");
    let killing = events_for(server, "app", "Killing");
    assert!(
        killing
            .iter()
            .any(|e| e["message"] == "Container main failed liveness probe, will be restarted"),
        "{killing:?}"
    );
    // The new container starts clean (no /tmp/die), so it stays alive.
    std::thread::sleep(Duration::from_secs(3));
    let after = get_pod(server, "app")["status"]["containerStatuses"][0].clone();
    assert_eq!(after["restartCount"], status["restartCount"], "{after}");
}
