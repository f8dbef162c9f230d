//! The DaemonSet controller against the real kube-apiserver and kube-controller-manager
//! binaries, driven by kubectl: one pod per node pinned by node affinity, nodes coming and
//! going, taints and nodeSelector, status counts, ControllerRevisions and a rolling update with
//! maxUnavailable 1. No scheduler or kubelet runs: the test binds pods through `pods/binding`
//! and fakes readiness where a step needs it.

use std::collections::BTreeMap;
use std::time::Duration;

use e2e::{make_pods_ready, wait_for, ApiServer, Backend, ControllerManager, Method};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(&server, &["--controllers=daemonset-controller"]);
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

/// A Ready node with `labels` and `taints` given as YAML flow lists.
fn node(name: &str, labels: &str, taints: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels: {{kubernetes.io/hostname: {name}{labels}}}
spec:
  taints: [{taints}]
status:
  conditions:
  - type: Ready
    status: "True"
"#
    )
}

/// Creates a node and lifts the `node.kubernetes.io/not-ready:NoSchedule` taint the apiserver
/// gives every new node (TaintNodesByCondition), as the node lifecycle controller does once the
/// node reports Ready; until then no daemon pod may start there.
fn add_node(server: &ApiServer, name: &str, labels: &str, taints: &str) {
    apply(server, &format!("{name}.yaml"), &node(name, labels, taints));
    server.kubectl([
        "taint",
        "node",
        name,
        "node.kubernetes.io/not-ready:NoSchedule-",
    ]);
}

fn daemon_set(name: &str, ns: &str, image: &str, extra_pod_spec: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  selector:
    matchLabels:
      app: {name}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  template:
    metadata:
      labels:
        app: {name}
    spec:
      terminationGracePeriodSeconds: 0
      containers:
      - name: main
        image: {image}
{extra_pod_spec}"#
    )
}

/// Live (not terminating) pods of `app` in `ns`.
fn live_pods(server: &ApiServer, ns: &str, app: &str) -> Vec<Value> {
    let selector = format!("app={app}");
    let out = server.kubectl_stdout(["get", "pods", "-n", ns, "-l", &selector, "-o", "json"]);
    let list: Value = match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(err) => panic!("kubectl get pods printed invalid JSON ({err}): {out}"),
    };
    list["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect()
}

/// The node a daemon pod is pinned to by its required node affinity.
fn pinned_node(pod: &Value) -> String {
    let terms = &pod["spec"]["affinity"]["nodeAffinity"]
        ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    let field = &terms[0]["matchFields"][0];
    assert_eq!(
        field["key"], "metadata.name",
        "pod pinned by node name: {pod}"
    );
    assert_eq!(field["operator"], "In");
    field["values"][0].as_str().unwrap_or_default().to_string()
}

/// Node name -> pod names, by the pods' affinity.
fn pods_by_node(pods: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pod in pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        map.entry(pinned_node(pod))
            .or_default()
            .push(name.to_string());
    }
    map
}

fn nodes_with_pods(server: &ApiServer, ns: &str, app: &str) -> Vec<String> {
    pods_by_node(&live_pods(server, ns, app))
        .into_keys()
        .collect()
}

fn wait_for_nodes(server: &ApiServer, ns: &str, app: &str, want: &[&str]) {
    wait_for(&format!("{app} pods on exactly {want:?}"), TIMEOUT, || {
        let map = pods_by_node(&live_pods(server, ns, app));
        let one_each = map.values().all(|pods| pods.len() == 1);
        (one_each && map.keys().map(String::as_str).eq(want.iter().copied())).then_some(())
    });
}

fn status(server: &ApiServer, ns: &str, name: &str) -> Value {
    let out = server.kubectl_stdout(["get", "daemonset", name, "-n", ns, "-o", "json"]);
    match serde_json::from_str::<Value>(&out) {
        Ok(v) => v["status"].clone(),
        Err(err) => panic!("kubectl get daemonset printed invalid JSON ({err}): {out}"),
    }
}

/// Waits until the status has these (field, value) pairs.
fn wait_for_status(server: &ApiServer, ns: &str, name: &str, want: &[(&str, i64)]) -> Value {
    wait_for(
        &format!("status of {ns}/{name} to have {want:?}"),
        TIMEOUT,
        || {
            let s = status(server, ns, name);
            want.iter()
                .all(|(field, value)| s[*field].as_i64().unwrap_or(0) == *value)
                .then_some(s)
        },
    )
}

/// Binds every unbound live pod of `app` to the node its affinity names, as the scheduler would.
fn bind_pods(server: &ApiServer, ns: &str, app: &str) -> usize {
    let mut bound = 0;
    for pod in live_pods(server, ns, app) {
        if pod["spec"]["nodeName"].is_string() {
            continue;
        }
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        let binding = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns},
            "target": {"apiVersion": "v1", "kind": "Node", "name": pinned_node(&pod)},
        });
        let response = server.http(
            Method::Post,
            &format!("/api/v1/namespaces/{ns}/pods/{name}/binding"),
            Some("application/json"),
            binding.to_string().as_bytes(),
        );
        assert!(
            response.status == 201 || response.status == 200 || response.status == 409,
            "binding {name}: {} {}",
            response.status,
            response.text()
        );
        bound += 1;
    }
    bound
}

fn event_reasons(server: &ApiServer, ns: &str) -> Vec<String> {
    server.get_json(Some(ns), "events")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| e["reason"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn one_pod_per_node_follows_nodes_and_taints() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "ds1"]);
    add_node(&server, "n1", "", "");
    add_node(&server, "n2", "", "");
    apply(
        &server,
        "ds.yaml",
        &daemon_set("agent", "ds1", "registry.k8s.io/pause:3.10", ""),
    );
    wait_for_nodes(&server, "ds1", "agent", &["n1", "n2"]);

    // Placed by the scheduler: unbound, labelled, tolerating the daemon taints.
    let pods = live_pods(&server, "ds1", "agent");
    for pod in &pods {
        assert!(pod["spec"]["nodeName"].is_null(), "{pod}");
        let labels = &pod["metadata"]["labels"];
        assert!(labels["controller-revision-hash"].is_string(), "{pod}");
        assert!(labels["pod-template-generation"].is_string(), "{pod}");
        assert_eq!(
            pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet",
            "{pod}"
        );
        let tolerations = pod["spec"]["tolerations"].to_string();
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
            "node.kubernetes.io/unschedulable",
        ] {
            assert!(tolerations.contains(key), "{key} missing: {tolerations}");
        }
    }
    let revisions = server.get_json(Some("ds1"), "controllerrevisions");
    let revisions = revisions["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(
        revisions[0]["metadata"]["labels"]["controller-revision-hash"],
        pods[0]["metadata"]["labels"]["controller-revision-hash"]
    );
    // Pending pods: scheduled in the controller's sense, neither ready nor available.
    wait_for_status(
        &server,
        "ds1",
        "agent",
        &[
            ("desiredNumberScheduled", 2),
            ("currentNumberScheduled", 2),
            ("updatedNumberScheduled", 2),
            ("numberReady", 0),
            ("numberAvailable", 0),
            ("numberUnavailable", 2),
            ("numberMisscheduled", 0),
            ("observedGeneration", 1),
        ],
    );

    // A new node gets a pod.
    add_node(&server, "n3", "", "");
    wait_for_nodes(&server, "ds1", "agent", &["n1", "n2", "n3"]);

    // A deleted node's (unbound) pod goes.
    server.kubectl(["delete", "node", "n2"]);
    wait_for_nodes(&server, "ds1", "agent", &["n1", "n3"]);

    // A NoSchedule taint the pod does not tolerate keeps it off a new node.
    add_node(
        &server,
        "n4",
        "",
        "{key: dedicated, value: db, effect: NoSchedule}",
    );
    wait_for_status(
        &server,
        "ds1",
        "agent",
        &[("desiredNumberScheduled", 2), ("currentNumberScheduled", 2)],
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(nodes_with_pods(&server, "ds1", "agent"), vec!["n1", "n3"]);

    // A NoExecute taint added later evicts the pod from its node.
    server.kubectl(["taint", "node", "n3", "evict=now:NoExecute"]);
    wait_for_nodes(&server, "ds1", "agent", &["n1"]);
    wait_for_status(
        &server,
        "ds1",
        "agent",
        &[("desiredNumberScheduled", 1), ("currentNumberScheduled", 1)],
    );

    let reasons = event_reasons(&server, "ds1");
    assert!(
        reasons.iter().any(|r| r == "SuccessfulCreate"),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r == "SuccessfulDelete"),
        "{reasons:?}"
    );
}

#[test]
fn node_selector_restricts_nodes() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "ds2"]);
    add_node(&server, "a", ", disk: ssd", "");
    add_node(&server, "b", ", disk: hdd", "");
    apply(
        &server,
        "ds.yaml",
        &daemon_set(
            "fast",
            "ds2",
            "registry.k8s.io/pause:3.10",
            "      nodeSelector:\n        disk: ssd\n",
        ),
    );
    wait_for_nodes(&server, "ds2", "fast", &["a"]);
    wait_for_status(&server, "ds2", "fast", &[("desiredNumberScheduled", 1)]);

    // Relabelling moves the daemon: b gains a pod, a loses its pod.
    server.kubectl(["label", "node", "b", "disk=ssd", "--overwrite"]);
    wait_for_nodes(&server, "ds2", "fast", &["a", "b"]);
    server.kubectl(["label", "node", "a", "disk=hdd", "--overwrite"]);
    wait_for_nodes(&server, "ds2", "fast", &["b"]);

    // A failed daemon pod is deleted and replaced, with a FailedDaemonPod warning.
    let pods = live_pods(&server, "ds2", "fast");
    let failed = pods[0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let response = server.http(
        Method::Patch,
        &format!("/api/v1/namespaces/ds2/pods/{failed}/status"),
        Some("application/merge-patch+json"),
        br#"{"status":{"phase":"Failed"}}"#,
    );
    assert_eq!(response.status, 200, "{}", response.text());
    wait_for("the failed pod to be replaced", TIMEOUT, || {
        let pods = live_pods(&server, "ds2", "fast");
        let replaced = pods.len() == 1 && pods[0]["metadata"]["name"] != failed.as_str();
        replaced.then_some(())
    });
    wait_for_nodes(&server, "ds2", "fast", &["b"]);
    let reasons = event_reasons(&server, "ds2");
    assert!(
        reasons.iter().any(|r| r == "FailedDaemonPod"),
        "{reasons:?}"
    );
}

#[test]
fn template_change_rolls_pods_one_node_at_a_time() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "ds3"]);
    for n in ["r1", "r2", "r3"] {
        add_node(&server, n, "", "");
    }
    apply(
        &server,
        "ds.yaml",
        &daemon_set("roll", "ds3", "registry.k8s.io/pause:3.9", ""),
    );
    wait_for_nodes(&server, "ds3", "roll", &["r1", "r2", "r3"]);
    // Scheduler and kubelet, faked.
    bind_pods(&server, "ds3", "roll");
    make_pods_ready(&server, "ds3", "");
    let before = wait_for_status(
        &server,
        "ds3",
        "roll",
        &[
            ("numberReady", 3),
            ("numberAvailable", 3),
            ("numberUnavailable", 0),
        ],
    );
    assert_eq!(before["updatedNumberScheduled"], 3);
    let old_hash = live_pods(&server, "ds3", "roll")[0]["metadata"]["labels"]
        ["controller-revision-hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    apply(
        &server,
        "ds.yaml",
        &daemon_set("roll", "ds3", "registry.k8s.io/pause:3.10", ""),
    );
    // One old pod is replaced; while its replacement is not ready, the other two stay.
    let new_pod = wait_for("the first replacement pod", TIMEOUT, || {
        live_pods(&server, "ds3", "roll")
            .into_iter()
            .find(|p| p["metadata"]["labels"]["controller-revision-hash"] != old_hash.as_str())
    });
    assert_eq!(
        new_pod["spec"]["containers"][0]["image"],
        "registry.k8s.io/pause:3.10"
    );
    std::thread::sleep(Duration::from_secs(2));
    let pods = live_pods(&server, "ds3", "roll");
    let old: Vec<&Value> = pods
        .iter()
        .filter(|p| p["metadata"]["labels"]["controller-revision-hash"] == old_hash.as_str())
        .collect();
    assert_eq!(
        (pods.len(), old.len()),
        (3, 2),
        "maxUnavailable 1: only one node is replaced at a time"
    );
    wait_for_status(
        &server,
        "ds3",
        "roll",
        &[("updatedNumberScheduled", 1), ("numberUnavailable", 1)],
    );

    // Each replacement becoming ready lets the next old pod go.
    wait_for("the rollout to finish", Duration::from_secs(60), || {
        bind_pods(&server, "ds3", "roll");
        make_pods_ready(&server, "ds3", "");
        let s = status(&server, "ds3", "roll");
        let done = s["updatedNumberScheduled"] == 3
            && s["numberAvailable"] == 3
            && s["observedGeneration"] == 2;
        let pods = live_pods(&server, "ds3", "roll");
        let all_new = pods.len() == 3
            && pods
                .iter()
                .all(|p| p["metadata"]["labels"]["controller-revision-hash"] != old_hash.as_str());
        if !done || !all_new {
            std::thread::sleep(Duration::from_millis(200));
        }
        (done && all_new).then_some(())
    });
    wait_for_nodes(&server, "ds3", "roll", &["r1", "r2", "r3"]);
    let revisions = server.get_json(Some("ds3"), "controllerrevisions");
    let numbers: Vec<i64> = revisions["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r["revision"].as_i64())
        .collect();
    assert_eq!(numbers.len(), 2, "{revisions}");
    assert!(numbers.contains(&2), "{numbers:?}");
}

#[test]
fn a_template_the_api_refuses_is_reported_while_other_sets_keep_working() {
    let (server, _kcm) = start();
    server.kubectl(["create", "namespace", "locked"]);
    server.kubectl(["create", "namespace", "open"]);
    // PodSecurity "restricted" refuses the plain pods of this template; the DaemonSet itself is
    // accepted (kubectl prints the warning on stderr).
    server.kubectl([
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    add_node(&server, "n1", "", "");
    let path = server.write_file(
        "locked.yaml",
        &daemon_set("agent", "locked", "registry.k8s.io/pause:3.10", ""),
    );
    let path = path.display().to_string();
    let out = server.kubectl_unchecked(["apply", "-f", path.as_str()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    apply(
        &server,
        "open.yaml",
        &daemon_set("agent", "open", "registry.k8s.io/pause:3.10", ""),
    );

    let event = wait_for("a FailedCreate warning", TIMEOUT, || {
        server.get_json(Some("locked"), "events")["items"]
            .as_array()
            .and_then(|items| {
                items
                    .iter()
                    .find(|e| e["reason"] == "FailedCreate")
                    .cloned()
            })
    });
    assert_eq!(event["type"], "Warning", "{event}");
    assert_eq!(event["involvedObject"]["kind"], "DaemonSet", "{event}");
    assert_eq!(
        event["source"]["component"], "daemonset-controller",
        "{event}"
    );
    let message = event["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Error creating: "), "{message}");
    assert!(message.contains("forbidden"), "{message}");
    assert!(live_pods(&server, "locked", "agent").is_empty());

    // The other DaemonSet follows nodes all along.
    wait_for_nodes(&server, "open", "agent", &["n1"]);
    add_node(&server, "n2", "", "");
    wait_for_nodes(&server, "open", "agent", &["n1", "n2"]);

    // Lifting the restriction lets the refused set recover through its back-off.
    server.kubectl([
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce-",
    ]);
    wait_for("the refused set's pods", Duration::from_secs(90), || {
        let map = pods_by_node(&live_pods(&server, "locked", "agent"));
        map.keys()
            .map(String::as_str)
            .eq(["n1", "n2"])
            .then_some(())
    });
}
