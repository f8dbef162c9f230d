//! kube-scheduler against the real kube-apiserver, with nodes created through the API and
//! driven by the real kubectl (and the Python client): pods land where the rules say, an
//! unschedulable pod says why and is retried when a fitting node appears, preemption evicts
//! the lowest-priority victim and binds the preemptor, a bad configuration fails at start, and
//! two schedulers share the work through leader election.

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, Daemon};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

/// A Ready node with `cpu` cores, 8Gi of memory, 110 pods, `labels` and `taints` (YAML flow
/// lists), without the not-ready taint the apiserver gives new nodes.
fn add_node(server: &ApiServer, name: &str, cpu: &str, labels: &str, taints: &str) {
    apply(
        server,
        &format!("{name}.yaml"),
        &format!(
            r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: "{name}"{labels}}}
spec:
  taints: [{taints}]
"#
        ),
    );
    let status = format!(
        r#"{{"status": {{"capacity": {{"cpu": "{cpu}", "memory": "8Gi", "pods": "110"}},
            "allocatable": {{"cpu": "{cpu}", "memory": "8Gi", "pods": "110"}},
            "conditions": [{{"type": "Ready", "status": "True", "reason": "KubeletReady"}}]}}}}"#
    );
    server.kubectl([
        "patch",
        "node",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        status.as_str(),
    ]);
    let out = server.kubectl_unchecked([
        "taint",
        "node",
        name,
        "node.kubernetes.io/not-ready:NoSchedule-",
    ]);
    let _ = out;
}

fn pod(name: &str, cpu: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  labels: {{app: {name}}}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    resources:
      requests:
        cpu: "{cpu}"
{extra_spec}"#
    )
}

fn get_pod(server: &ApiServer, name: &str) -> Value {
    let out = server.kubectl_stdout(["get", "pod", name, "-o", "json"]);
    serde_json::from_str(&out).unwrap_or(Value::Null)
}

fn wait_bound(server: &ApiServer, name: &str) -> String {
    wait_for(&format!("pod {name} bound"), TIMEOUT, || {
        get_pod(server, name)["spec"]["nodeName"]
            .as_str()
            .map(str::to_string)
    })
}

fn events_for(server: &ApiServer, name: &str, reason: &str) -> Vec<Value> {
    server.get_json(Some("default"), "events")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .collect()
}

#[test]
fn pods_land_where_the_rules_say() {
    let server = ApiServer::start(Backend::Embedded);
    let _scheduler = Daemon::scheduler(&server, &[]);
    add_node(&server, "small", "1", ", disk: hdd", "");
    add_node(&server, "big", "8", ", disk: ssd", "");
    add_node(
        &server,
        "gpu",
        "8",
        ", disk: ssd",
        "{key: gpu, value: \"true\", effect: NoSchedule}",
    );

    // nodeSelector: only ssd nodes; the tainted one is not tolerated.
    apply(
        &server,
        "sel.yaml",
        &pod("sel", "100m", "  nodeSelector: {disk: ssd}\n"),
    );
    assert_eq!(wait_bound(&server, "sel"), "big");
    // Resource fit: 2 cores fit only on the 8-core nodes, and the untolerated taint rules out gpu.
    apply(&server, "fit.yaml", &pod("fit", "2", ""));
    assert_eq!(wait_bound(&server, "fit"), "big");
    // A toleration plus required node affinity to the tainted node.
    apply(
        &server,
        "tol.yaml",
        &pod(
            "tol",
            "100m",
            r#"  tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: kubernetes.io/hostname, operator: In, values: [gpu]}]
"#,
        ),
    );
    assert_eq!(wait_bound(&server, "tol"), "gpu");
    // Host ports: two pods asking for the same host port land on different nodes.
    for name in ["port-a", "port-b"] {
        apply(
            &server,
            &format!("{name}.yaml"),
            &format!(
                r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
    ports: [{{containerPort: 80, hostPort: 8080}}]
"#
            ),
        );
    }
    let a = wait_bound(&server, "port-a");
    let b = wait_bound(&server, "port-b");
    assert_ne!(a, b, "two pods with host port 8080 share {a}");

    // The Scheduled event and the PodScheduled condition, read by kubectl.
    let events = events_for(&server, "sel", "Scheduled");
    let message = events[0]["message"].as_str().unwrap_or_default();
    assert_eq!(message, "Successfully assigned default/sel to big");
    assert_eq!(events[0]["source"]["component"], "default-scheduler");
}

#[test]
fn an_unschedulable_pod_says_why_and_is_retried_when_a_node_fits() {
    let server = ApiServer::start(Backend::Embedded);
    let _scheduler = Daemon::scheduler(&server, &[]);
    add_node(&server, "n1", "2", "", "");
    add_node(
        &server,
        "n2",
        "2",
        "",
        "{key: dedicated, value: infra, effect: NoSchedule}",
    );
    apply(&server, "huge.yaml", &pod("huge", "4", ""));

    let event = wait_for("a FailedScheduling event", TIMEOUT, || {
        events_for(&server, "huge", "FailedScheduling")
            .into_iter()
            .next()
    });
    assert_eq!(event["type"], "Warning");
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(
            "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint {dedicated: infra}."
        ),
        "{message}"
    );
    assert!(
        message.contains("preemption: 0/2 nodes are available"),
        "{message}"
    );
    let condition = wait_for("PodScheduled=False", TIMEOUT, || {
        get_pod(&server, "huge")["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "PodScheduled").cloned())
    });
    assert_eq!(condition["status"], "False");
    assert_eq!(condition["reason"], "Unschedulable");

    // An unrelated change (a label on a node that still does not fit) and time alone do not
    // bind it; a node with room does.
    server.kubectl(["label", "node", "n1", "touched=yes"]);
    std::thread::sleep(Duration::from_secs(3));
    assert!(get_pod(&server, "huge")["spec"]["nodeName"].is_null());
    add_node(&server, "roomy", "8", "", "");
    assert_eq!(wait_bound(&server, "huge"), "roomy");
}

#[test]
fn preemption_evicts_the_lowest_priority_victim_and_binds_the_preemptor() {
    let server = ApiServer::start(Backend::Embedded);
    let _scheduler = Daemon::scheduler(&server, &[]);
    apply(
        &server,
        "classes.yaml",
        r#"apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: low}
value: 100
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: mid}
value: 500
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: high}
value: 1000
"#,
    );
    add_node(&server, "only", "2", "", "");
    apply(
        &server,
        "low.yaml",
        &pod("low", "1", "  priorityClassName: low\n"),
    );
    apply(
        &server,
        "mid.yaml",
        &pod("mid", "1", "  priorityClassName: mid\n"),
    );
    wait_bound(&server, "low");
    wait_bound(&server, "mid");

    apply(
        &server,
        "high.yaml",
        &pod("high", "1", "  priorityClassName: high\n"),
    );
    assert_eq!(wait_bound(&server, "high"), "only");
    // The lowest-priority pod went; the other stayed.
    wait_for("the low-priority victim gone", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "low", "-o", "name"]);
        (!out.status.success()).then_some(())
    });
    assert_eq!(get_pod(&server, "mid")["spec"]["nodeName"], "only");
    // The victim's Preempted event (events.k8s.io, as upstream's scheduler records it).
    let events =
        server.kubectl_stdout(["get", "events.events.k8s.io", "-n", "default", "-o", "json"]);
    let events: Value = serde_json::from_str(&events).unwrap_or(Value::Null);
    let preempted = events["items"]
        .as_array()
        .and_then(|items| items.iter().find(|e| e["reason"] == "Preempted").cloned())
        .unwrap_or(Value::Null);
    assert_eq!(preempted["regarding"]["name"], "low", "{events}");
    let note = preempted["note"].as_str().unwrap_or_default();
    assert!(
        note.starts_with("Preempted by pod ") && note.ends_with(" on node only"),
        "{note}"
    );
}

#[test]
fn bad_pods_get_a_failed_scheduling_event_and_the_rest_are_still_scheduled() {
    let server = ApiServer::start(Backend::Embedded);
    let _scheduler = Daemon::scheduler(&server, &["--unknown-scheduler-warning-after=2s"]);
    add_node(&server, "n1", "4", ", tier: \"3\"", "");
    add_node(&server, "n2", "4", ", tier: \"5\"", "");

    // A typo in schedulerName: no profile here has that name. The pod is left alone (another
    // scheduler could own the name) but gets one warning saying why nothing happens.
    apply(
        &server,
        "typo.yaml",
        &pod("typo", "100m", "  schedulerName: defualt-scheduler\n"),
    );
    // Malformed affinity the apiserver accepts (as upstream's validation does: Gt needs one
    // value, not an integer). A required term that cannot parse matches no node; a preferred
    // one is an error of NodeAffinity's PreScore.
    let gt = |kind: &str| {
        let term = r#"{matchExpressions: [{key: tier, operator: Gt, values: ["three"]}]}"#;
        match kind {
            "required" => format!("  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: [{term}]\n"),
            _ => format!("  affinity:\n    nodeAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n      - weight: 10\n        preference: {term}\n"),
        }
    };
    apply(
        &server,
        "required.yaml",
        &pod("required", "100m", &gt("required")),
    );
    apply(
        &server,
        "preferred.yaml",
        &pod("preferred", "100m", &gt("preferred")),
    );
    // A pod with a malformed operator is refused by the apiserver with the field's path.
    let path = server.write_file(
        "operator.yaml",
        &pod(
            "operator",
            "100m",
            "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n        nodeSelectorTerms: [{matchExpressions: [{key: tier, operator: Bigger, values: [\"3\"]}]}]\n",
        ),
    );
    let path = path.display().to_string();
    let out = server.kubectl_unchecked(["apply", "-f", path.as_str()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Bigger\": not a valid selector operator"),
        "{stderr}"
    );

    // Everything else is still scheduled.
    apply(&server, "good.yaml", &pod("good", "100m", ""));
    wait_bound(&server, "good");

    let event = wait_for("the required pod's FailedScheduling", TIMEOUT, || {
        events_for(&server, "required", "FailedScheduling")
            .into_iter()
            .next()
    });
    assert_eq!(
        event["message"].as_str().unwrap_or_default(),
        "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let event = wait_for("the preferred pod's FailedScheduling", TIMEOUT, || {
        events_for(&server, "preferred", "FailedScheduling")
            .into_iter()
            .next()
    });
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("running PreScore plugin \"NodeAffinity\"")
            && message.contains("for 'Gt', 'Lt' operators, the value must be an integer"),
        "{message}"
    );
    let event = wait_for("the typo pod's warning", TIMEOUT, || {
        events_for(&server, "typo", "FailedScheduling")
            .into_iter()
            .next()
    });
    assert_eq!(event["type"], "Warning");
    assert_eq!(
        event["message"].as_str().unwrap_or_default(),
        "no profile of this scheduler is named \"defualt-scheduler\" (its profiles: \"default-scheduler\"); the pod stays pending until a scheduler with that name runs"
    );
    // Left alone otherwise: not bound, no condition written by this scheduler; and warned
    // about once.
    std::thread::sleep(Duration::from_secs(3));
    let typo = get_pod(&server, "typo");
    assert!(typo["spec"]["nodeName"].is_null());
    assert!(typo["status"]["conditions"].is_null(), "{typo}");
    assert_eq!(
        events_for(&server, "typo", "FailedScheduling")[0]["count"],
        1
    );
    for name in ["required", "preferred"] {
        assert!(get_pod(&server, name)["spec"]["nodeName"].is_null());
    }
    // A pod added later is still scheduled.
    apply(&server, "later.yaml", &pod("later", "100m", ""));
    wait_bound(&server, "later");
}

#[test]
fn a_bad_configuration_fails_at_start_with_the_reason() {
    let server = ApiServer::start(Backend::Embedded);
    let path = server.write_file(
        "bad.yaml",
        "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\nprofiles:\n- schedulerName: x\n  plugins:\n    filter:\n      enabled:\n      - name: NoSuchPlugin\n",
    );
    let config = format!("--config={}", path.display());
    let mut scheduler = Daemon::scheduler(&server, &[config.as_str()]);
    let status = wait_for("the scheduler to exit", TIMEOUT, || scheduler.try_wait());
    assert!(!status.success());
    let log = std::fs::read_to_string(scheduler.log_path()).unwrap_or_default();
    assert!(log.contains("\"NoSuchPlugin\" does not exist"), "{log}");
}

#[test]
fn a_second_profile_schedules_its_own_pods_and_the_python_client_sees_them() {
    let server = ApiServer::start(Backend::Embedded);
    let path = server.write_file(
        "two.yaml",
        r#"apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
leaderElection: {leaderElect: false}
profiles:
- schedulerName: default-scheduler
- schedulerName: packer
  pluginConfig:
  - name: NodeResourcesFit
    args:
      scoringStrategy:
        type: MostAllocated
        resources: [{name: cpu, weight: 1}]
"#,
    );
    let config = format!("--config={}", path.display());
    let _scheduler = Daemon::scheduler(&server, &[config.as_str()]);
    add_node(&server, "a", "4", "", "");
    add_node(&server, "b", "4", "", "");
    // MostAllocated packs: every pod of the packer profile lands on the node the first took.
    apply(
        &server,
        "p0.yaml",
        &pod("p0", "1", "  schedulerName: packer\n"),
    );
    let first = wait_bound(&server, "p0");
    for i in 1..3 {
        let name = format!("p{i}");
        apply(
            &server,
            &format!("{name}.yaml"),
            &pod(&name, "1", "  schedulerName: packer\n"),
        );
        assert_eq!(wait_bound(&server, &name), first, "{name}");
    }
    // A pod naming a scheduler nobody runs is left alone.
    apply(
        &server,
        "orphan.yaml",
        &pod("orphan", "100m", "  schedulerName: nobody\n"),
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(get_pod(&server, "orphan")["spec"]["nodeName"].is_null());
    assert!(events_for(&server, "orphan", "FailedScheduling").is_empty());

    let seen = server.python("scheduler.py", &["p0"]);
    assert_eq!(seen["node"], first.as_str());
    assert_eq!(seen["scheduler"], "packer");
    assert_eq!(seen["scheduled"], "True");
}

#[test]
fn two_schedulers_with_leader_election_hand_over() {
    let server = ApiServer::start(Backend::Embedded);
    let flags = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=3s",
        "--leader-elect-renew-deadline=2s",
        "--leader-elect-retry-period=500ms",
    ];
    let mut first = Daemon::scheduler(&server, &flags);
    let holder = wait_for("a scheduler to lead", TIMEOUT, || {
        let lease = server.get_json(Some("kube-system"), "lease/kube-scheduler");
        lease["spec"]["holderIdentity"].as_str().map(str::to_string)
    });
    let mut second = Daemon::scheduler(&server, &flags);
    add_node(&server, "node-1", "8", "", "");
    apply(&server, "one.yaml", &pod("one", "100m", ""));
    wait_bound(&server, "one");
    // The standby did nothing: its log has no bind.
    std::thread::sleep(Duration::from_secs(1));
    let second_log = std::fs::read_to_string(second.log_path()).unwrap_or_default();
    assert!(
        !second_log.contains("caches are synced; scheduling"),
        "{second_log}"
    );

    first.kill();
    let new_holder = wait_for("the standby to take over", Duration::from_secs(60), || {
        let lease = server.get_json(Some("kube-system"), "lease/kube-scheduler");
        lease["spec"]["holderIdentity"]
            .as_str()
            .filter(|h| *h != holder)
            .map(str::to_string)
    });
    assert_ne!(new_holder, holder);
    apply(&server, "two.yaml", &pod("two", "100m", ""));
    wait_bound(&server, "two");
    assert!(second.try_wait().is_none());
}
