//! Bad input and failures with a real containerd: a command that does not exist (upstream's
//! StartError, then CrashLoopBackOff, with the runtime's message), and a runtime that goes
//! away (the node turns NotReady saying so, and Ready again when it is back, with the running
//! pod untouched).

use std::time::Duration;

use e2e::containerd::BUSYBOX_IMAGE;
use e2e::pods::{apply, condition, get_pod, node_ready, wait_phase, RealNode};
use e2e::{wait_for, ApiServer};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

fn node_condition(server: &ApiServer, node: &str, kind: &str) -> Value {
    let out = server.kubectl_unchecked(["get", "node", node, "-o", "json"]);
    let node: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind).cloned())
        .unwrap_or_default()
}

#[test]
fn missing_commands_and_a_runtime_that_goes_away() {
    let mut node = RealNode::start();
    let server = &node.server;
    node_ready(server, "node1", TIMEOUT);
    let pod = |name: &str, command: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  nodeName: node1\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: app\n    image: {BUSYBOX_IMAGE}\n    command: {command}\n"
        )
    };
    apply(server, "steady.yaml", &pod("steady", "[sleep, '3600']"));
    apply(server, "typo.yaml", &pod("typo", "[no-such-command]"));
    let steady = wait_phase(server, "steady", "Running", TIMEOUT);
    let steady_id = steady["status"]["containerStatuses"][0]["containerID"].clone();

    // The missing command: the runtime's StartError (exit code 128 and its message) as the
    // last state, then CrashLoopBackOff.
    let typo = wait_for("typo in CrashLoopBackOff", TIMEOUT, || {
        let p = get_pod(server, "typo");
        let status = &p["status"]["containerStatuses"][0];
        (status["state"]["waiting"]["reason"] == "CrashLoopBackOff").then(|| status.clone())
    });
    let last = &typo["lastState"]["terminated"];
    assert_eq!(last["reason"], "StartError", "{typo}");
    assert_eq!(last["exitCode"], 128, "{typo}");
    let message = last["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no-such-command") && message.contains("not found"),
        "{message}"
    );
    assert_eq!(get_pod(server, "typo")["status"]["phase"], "Running");

    // containerd goes away: the node says why it is not ready.
    node.containerd.kill();
    let ready = wait_for("node1 NotReady", TIMEOUT, || {
        let c = node_condition(server, "node1", "Ready");
        (c["status"] == "False").then_some(c)
    });
    assert_eq!(ready["reason"], "KubeletNotReady", "{ready}");
    assert!(
        ready["message"]
            .as_str()
            .is_some_and(|m| m.contains("container runtime is down")),
        "{ready}"
    );

    // It comes back: Ready again, and the pod that ran before still runs, untouched.
    if let Err(err) = node.containerd.restart() {
        panic!("{err:#}");
    }
    wait_for("node1 Ready again", TIMEOUT, || {
        (node_condition(server, "node1", "Ready")["status"] == "True").then_some(())
    });
    let after = wait_for("steady still ready", TIMEOUT, || {
        let p = get_pod(server, "steady");
        (condition(&p, "Ready")["status"] == "True").then_some(p)
    });
    let status = &after["status"]["containerStatuses"][0];
    assert_eq!(status["containerID"], steady_id, "{status}");
    assert_eq!(status["restartCount"], 0, "{status}");
    assert_eq!(after["status"]["phase"], "Running");
}
