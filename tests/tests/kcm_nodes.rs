//! Node-side controllers of kube-controller-manager against the real apiserver: pod CIDR
//! allocation (node IPAM) and pod garbage collection.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};

fn apply(server: &ApiServer, name: &str, yaml: &str) {
    let file = server.write_file(name, yaml);
    let out = server.kubectl(["apply", "-f", file.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
}

fn pod_cidr(server: &ApiServer, node: &str) -> Option<String> {
    let out = server.kubectl_unchecked(["get", "node", node, "-o", "jsonpath={.spec.podCIDR}"]);
    let cidr = e2e::stdout(&out);
    (!cidr.is_empty()).then_some(cidr)
}

#[test]
fn nodes_get_pod_cidrs_that_are_never_handed_out_twice() {
    let server = ApiServer::start(Backend::Embedded);
    // A node that already has a block (from an earlier manager) keeps it, and it is not reused.
    apply(
        &server,
        "n0.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n0}\nspec: {podCIDR: 10.244.0.0/24, podCIDRs: [10.244.0.0/24]}\n",
    );
    let _kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=node-ipam-controller",
            "--allocate-node-cidrs",
            "--cluster-cidr=10.244.0.0/16",
            "--node-cidr-mask-size=24",
        ],
    );
    apply(
        &server,
        "n1.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    apply(
        &server,
        "n2.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n2}\n",
    );
    let n1 = wait_for("n1's block", Duration::from_secs(20), || {
        pod_cidr(&server, "n1")
    });
    let n2 = wait_for("n2's block", Duration::from_secs(20), || {
        pod_cidr(&server, "n2")
    });
    let mut got = vec![n1, n2.clone()];
    got.sort();
    assert_eq!(got, ["10.244.1.0/24", "10.244.2.0/24"]);
    assert_eq!(pod_cidr(&server, "n0").as_deref(), Some("10.244.0.0/24"));
    // A node that goes frees its block for the next one.
    let out = server.kubectl(["delete", "node", "n2"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    std::thread::sleep(Duration::from_millis(500));
    apply(
        &server,
        "n3.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n3}\n",
    );
    let n3 = wait_for("n3's block", Duration::from_secs(20), || {
        pod_cidr(&server, "n3")
    });
    assert_eq!(n3, n2);
}

#[test]
fn pod_gc_removes_excess_terminated_and_orphaned_pods() {
    let server = ApiServer::start(Backend::Embedded);
    apply(
        &server,
        "n1.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    for (name, node) in [
        ("done-1", "n1"),
        ("done-2", "n1"),
        ("running", "n1"),
        ("lost", "ghost"),
    ] {
        apply(
            &server,
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: {node}, containers: [{{name: c, image: busybox}}]}}\n"
            ),
        );
        std::thread::sleep(Duration::from_millis(1100)); // distinct creation times
    }
    for name in ["done-1", "done-2"] {
        let out = server.kubectl([
            "patch",
            "pod",
            name,
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Succeeded"}}"#,
        ]);
        assert!(out.status.success(), "{}", e2e::stderr(&out));
    }
    let _kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=pod-garbage-collector-controller",
            "--terminated-pod-gc-threshold=1",
        ],
    );
    // One pass (every 20 s, the first at start) keeps the newest terminated pod and drops the
    // pod on a node that does not exist.
    let left = wait_for("pod GC", Duration::from_secs(45), || {
        let out =
            server.kubectl_unchecked(["get", "pods", "-o", "jsonpath={.items[*].metadata.name}"]);
        let mut names: Vec<String> = e2e::stdout(&out)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        names.sort();
        (names.len() == 2).then_some(names)
    });
    assert_eq!(left, ["done-2", "running"]);
}

fn renew_time() -> String {
    // MicroTime, as kubelets write it.
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%6NZ"])
        .output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

#[test]
fn a_node_whose_lease_stops_is_tainted_and_its_intolerant_pods_evicted() {
    let server = ApiServer::start_with(Backend::Embedded, |_| {
        // Without the 300 s default tolerations, an intolerant pod goes at once.
        vec!["--disable-admission-plugins=DefaultTolerationSeconds".into()]
    });
    apply(
        &server,
        "n1.yaml",
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\n",
    );
    let status = format!(
        r#"{{"status":{{"conditions":[{{"type":"Ready","status":"True","reason":"KubeletReady","lastHeartbeatTime":"{t}","lastTransitionTime":"{t}"}}]}}}}"#,
        t = renew_time()
            .get(..19)
            .map(|s| format!("{s}Z"))
            .unwrap_or_default()
    );
    let out = server.kubectl([
        "patch",
        "node",
        "n1",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    apply(
        &server,
        "lease.yaml",
        &format!(
            "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: n1, namespace: kube-node-lease}}\nspec: {{holderIdentity: n1, leaseDurationSeconds: 40, renewTime: '{}'}}\n",
            renew_time()
        ),
    );
    for (name, tolerations) in [
        ("intolerant", "[]".to_string()),
        (
            "patient",
            "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 3600}]".to_string(),
        ),
    ] {
        apply(
            &server,
            &format!("{name}.yaml"),
            &format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: n1, tolerations: {tolerations}, containers: [{{name: c, image: busybox}}]}}\n"
            ),
        );
    }
    let _kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=node-lifecycle-controller,taint-eviction-controller",
            "--node-monitor-grace-period=4s",
            "--node-monitor-period=500ms",
        ],
    );
    let taints = || {
        e2e::stdout(&server.kubectl_unchecked([
            "get",
            "node",
            "n1",
            "-o",
            "jsonpath={.spec.taints[*].key}",
        ]))
    };
    // While the lease is renewed, longer than the grace period, the node stays healthy.
    let renewing_until = std::time::Instant::now() + Duration::from_secs(7);
    while std::time::Instant::now() < renewing_until {
        let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, renew_time());
        let out = server.kubectl([
            "patch",
            "lease",
            "n1",
            "-n",
            "kube-node-lease",
            "--type=merge",
            "-p",
            &patch,
        ]);
        assert!(out.status.success(), "{}", e2e::stderr(&out));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(taints(), "", "a node renewing its lease is not tainted");
    // The lease stops: Unknown, tainted, and the intolerant pod evicted.
    wait_for("the unreachable taints", Duration::from_secs(20), || {
        (taints() == "node.kubernetes.io/unreachable node.kubernetes.io/unreachable").then_some(())
    });
    let reason = server.kubectl_stdout([
        "get", "node", "n1", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}/{.status.conditions[?(@.type==\"Ready\")].reason}",
    ]);
    assert_eq!(reason, "Unknown/NodeStatusUnknown");
    // Evicted = deleted gracefully: with no kubelet to finish it, it stays Terminating, as
    // upstream's pods on an unreachable node do.
    let terminating = || {
        e2e::stdout(&server.kubectl_unchecked([
            "get",
            "pods",
            "-o",
            "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name} {end}",
        ]))
    };
    wait_for(
        "the intolerant pod to be evicted",
        Duration::from_secs(20),
        || (terminating().trim() == "intolerant").then_some(()),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        terminating().trim(),
        "intolerant",
        "the patient pod tolerates the taint for an hour"
    );
}
