//! Node-side controllers of kube-controller-manager against the real apiserver: pod CIDR
//! allocation (node IPAM), pod garbage collection, and node lifecycle (taints, zone-aware
//! NoExecute tainting, taint-based eviction).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
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

/// A node with `labels`, Ready as of now, and (when `lease`) a Lease renewed now.
fn ready_node(server: &ApiServer, name: &str, labels: &str, lease: bool) {
    apply(
        server,
        &format!("{name}.yaml"),
        &format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n"),
    );
    report_ready(server, name);
    if lease {
        apply(
            server,
            &format!("{name}-lease.yaml"),
            &format!(
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {{name: {name}, namespace: kube-node-lease}}\nspec: {{holderIdentity: {name}, leaseDurationSeconds: 40, renewTime: '{}'}}\n",
                renew_time()
            ),
        );
    }
}

/// Posts a Ready=True condition with a fresh heartbeat, as a kubelet does.
fn report_ready(server: &ApiServer, name: &str) {
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
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
}

fn intolerant_pod(server: &ApiServer, name: &str, node: &str, tolerations: &str) {
    apply(
        server,
        &format!("{name}.yaml"),
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec: {{nodeName: {node}, tolerations: {tolerations}, containers: [{{name: c, image: busybox}}]}}\n"
        ),
    );
}

/// `key:effect` of a node's taints, space separated.
fn taints(server: &ApiServer, node: &str) -> String {
    e2e::stdout(&server.kubectl_unchecked([
        "get",
        "node",
        node,
        "-o",
        "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
    ]))
    .trim()
    .to_string()
}

/// Names of the pods being deleted (evicted pods stay Terminating with no kubelet to finish them,
/// as upstream's pods on an unreachable node do).
fn terminating(server: &ApiServer) -> String {
    e2e::stdout(&server.kubectl_unchecked([
        "get",
        "pods",
        "-o",
        "jsonpath={range .items[?(@.metadata.deletionTimestamp)]}{.metadata.name} {end}",
    ]))
    .trim()
    .to_string()
}

/// Runs `body` while a thread renews the Leases of the nodes named in `beating` (which `body`
/// may change) about every 300 ms, as their kubelets would.
fn with_heartbeats<T>(
    server: &ApiServer,
    beating: &Mutex<Vec<String>>,
    body: impl FnOnce() -> T,
) -> T {
    struct StopOnDrop<'a>(&'a AtomicBool);
    impl Drop for StopOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let names = beating.lock().map(|n| n.clone()).unwrap_or_default();
                for name in names {
                    let patch = format!(r#"{{"spec":{{"renewTime":"{}"}}}}"#, renew_time());
                    let _ = server.kubectl_unchecked([
                        "patch",
                        "lease",
                        &name,
                        "-n",
                        "kube-node-lease",
                        "--type=merge",
                        "-p",
                        &patch,
                    ]);
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        // Stops the renewals even when `body` panics, so the scope can end.
        let _stop = StopOnDrop(&done);
        body()
    })
}

#[test]
fn a_node_whose_lease_stops_is_tainted_and_its_intolerant_pods_evicted() {
    let server = ApiServer::start_with(Backend::Embedded, |_| {
        // Without the 300 s default tolerations, an intolerant pod goes at once.
        vec!["--disable-admission-plugins=DefaultTolerationSeconds".into()]
    });
    // n2 stays healthy: with n1 alone down its zone is not fully disrupted, so n1's NoExecute
    // taint is not held back (the first node of a zone goes at once: the bucket starts full).
    ready_node(&server, "n1", "", true);
    ready_node(&server, "n2", "", true);
    intolerant_pod(&server, "intolerant", "n1", "[]");
    intolerant_pod(
        &server,
        "patient",
        "n1",
        "[{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 3600}]",
    );
    let _kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=node-lifecycle-controller,taint-eviction-controller",
            "--node-monitor-grace-period=4s",
            "--node-monitor-period=500ms",
        ],
    );
    let beating = Mutex::new(vec!["n1".to_string(), "n2".to_string()]);
    with_heartbeats(&server, &beating, || {
        // While the lease is renewed, longer than the grace period, the node stays healthy.
        std::thread::sleep(Duration::from_secs(7));
        assert_eq!(
            taints(&server, "n1"),
            "",
            "a node renewing its lease is not tainted"
        );
        // n1's lease stops: Unknown, tainted, and the intolerant pod evicted.
        if let Ok(mut names) = beating.lock() {
            names.retain(|n| n != "n1");
        }
        wait_for("the unreachable taints", Duration::from_secs(20), || {
            (taints(&server, "n1")
                == "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute")
                .then_some(())
        });
        let reason = server.kubectl_stdout([
            "get", "node", "n1", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}/{.status.conditions[?(@.type==\"Ready\")].reason}",
        ]);
        assert_eq!(reason, "Unknown/NodeStatusUnknown");
        wait_for(
            "the intolerant pod to be evicted",
            Duration::from_secs(20),
            || (terminating(&server) == "intolerant").then_some(()),
        );
        std::thread::sleep(Duration::from_secs(2));
        assert_eq!(
            terminating(&server),
            "intolerant",
            "the patient pod tolerates the taint for an hour"
        );
        assert_eq!(taints(&server, "n2"), "", "the healthy node is left alone");
    });
}

#[test]
fn when_every_zone_is_down_no_execute_tainting_stops_until_a_node_is_back() {
    let server = ApiServer::start_with(Backend::Embedded, |_| {
        vec!["--disable-admission-plugins=DefaultTolerationSeconds".into()]
    });
    let zone =
        |z: &str| format!("topology.kubernetes.io/region: r1, topology.kubernetes.io/zone: {z}");
    ready_node(&server, "a1", &zone("a"), true);
    ready_node(&server, "a2", &zone("a"), false);
    ready_node(&server, "b1", &zone("b"), false);
    intolerant_pod(&server, "intolerant", "a2", "[]");
    let kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=node-lifecycle-controller,taint-eviction-controller",
            "--node-monitor-grace-period=4s",
            "--node-monitor-period=500ms",
            "--node-eviction-rate=100",
        ],
    );
    let log = || std::fs::read_to_string(kcm.log_path()).unwrap_or_default();
    // No node posts anything: all of them go Unknown together, every zone is fully disrupted,
    // and the controller blames itself: NoSchedule taints only, no evictions.
    wait_for("the NoSchedule taints", Duration::from_secs(20), || {
        ["a1", "a2", "b1"]
            .iter()
            .all(|n| taints(&server, n) == "node.kubernetes.io/unreachable:NoSchedule")
            .then_some(())
    });
    std::thread::sleep(Duration::from_secs(3));
    for node in ["a1", "a2", "b1"] {
        assert_eq!(
            taints(&server, node),
            "node.kubernetes.io/unreachable:NoSchedule",
            "{node}: no NoExecute taint in master disruption mode"
        );
    }
    assert_eq!(terminating(&server), "", "nothing is evicted");
    assert!(
        log().contains("Entering master disruption mode"),
        "{}",
        e2e::log_tail(kcm.log_path())
    );
    // a1's kubelet is back: zone a has a Ready node, zone b alone is fully disrupted, so the
    // mode ends and the silent nodes get their NoExecute taints at the normal rate.
    let beating = Mutex::new(vec!["a1".to_string()]);
    with_heartbeats(&server, &beating, || {
        report_ready(&server, "a1");
        wait_for(
            "the intolerant pod to be evicted",
            Duration::from_secs(20),
            || (terminating(&server) == "intolerant").then_some(()),
        );
        for node in ["a2", "b1"] {
            wait_for("the NoExecute taints", Duration::from_secs(10), || {
                (taints(&server, node)
                    == "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute")
                    .then_some(())
            });
        }
        assert_eq!(taints(&server, "a1"), "", "a1 is Ready again");
    });
    assert!(log().contains("Exiting master disruption mode"));
}
