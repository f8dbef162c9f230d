//! The ReplicaSet and ReplicationController controllers against the real kube-apiserver and
//! kube-controller-manager binaries, driven by kubectl: scaling with upstream's scale-down
//! order, status counts, adoption and release, RCs, and a template the API refuses.

use std::time::Duration;

use e2e::{make_pods_ready, wait_for, ApiServer, Backend, ControllerManager};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let kcm = ControllerManager::start(
        &server,
        &["--controllers=replicaset-controller,replicationcontroller-controller"],
    );
    (server, kcm)
}

fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

fn replica_set(name: &str, ns: &str, app: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: {name}
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
"#
    )
}

/// Pods in `ns` matching `selector` that are not being deleted.
fn live_pods(server: &ApiServer, ns: &str, selector: &str) -> Vec<Value> {
    let out = server.kubectl_stdout(["get", "pods", "-n", ns, "-l", selector, "-o", "json"]);
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

fn names(pods: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = pods
        .iter()
        .map(|p| {
            p["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    names.sort();
    names
}

fn get(server: &ApiServer, ns: &str, resource: &str) -> Value {
    server.get_json(Some(ns), resource)
}

/// Waits until exactly `count` live pods match and stay so for a moment (no over-creation).
fn wait_for_pods(server: &ApiServer, ns: &str, selector: &str, count: usize) -> Vec<Value> {
    wait_for(&format!("{count} pods {selector} in {ns}"), TIMEOUT, || {
        let pods = live_pods(server, ns, selector);
        (pods.len() == count).then_some(())
    });
    std::thread::sleep(Duration::from_millis(700));
    let pods = live_pods(server, ns, selector);
    assert_eq!(
        pods.len(),
        count,
        "pod count changed after settling: {:?}",
        names(&pods)
    );
    pods
}

fn controller_uid(pod: &Value) -> Option<String> {
    pod["metadata"]["ownerReferences"]
        .as_array()?
        .iter()
        .find(|r| r["controller"] == true)
        .and_then(|r| r["uid"].as_str())
        .map(str::to_string)
}

#[test]
fn replica_set_scales_up_and_down_deleting_unready_pods_first() {
    let (server, _kcm) = start();
    apply(
        &server,
        "web.yaml",
        &replica_set("web", "default", "web", 3),
    );
    let rs = get(&server, "default", "replicaset/web");
    let uid = rs["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let pods = wait_for_pods(&server, "default", "app=web", 3);
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        assert!(name.starts_with("web-"), "generateName <owner>-: {name}");
        assert_eq!(controller_uid(pod).as_deref(), Some(uid.as_str()));
    }

    // Status follows readiness.
    assert_eq!(make_pods_ready(&server, "default", "node-1"), 3);
    let ready = names(&pods);
    let status = wait_for("status with 3 ready and available", TIMEOUT, || {
        let rs = get(&server, "default", "replicaset/web");
        let s = &rs["status"];
        (s["readyReplicas"] == 3 && s["availableReplicas"] == 3).then(|| rs.clone())
    });
    assert_eq!(status["status"]["replicas"], 3);
    assert_eq!(status["status"]["fullyLabeledReplicas"], 3);
    assert_eq!(
        status["status"]["observedGeneration"],
        status["metadata"]["generation"]
    );

    // Scale up: two new (Pending, unready) pods.
    server.kubectl(["scale", "replicaset/web", "--replicas=5"]);
    let five = wait_for_pods(&server, "default", "app=web", 5);
    let fresh: Vec<String> = names(&five)
        .into_iter()
        .filter(|n| !ready.contains(n))
        .collect();
    assert_eq!(fresh.len(), 2, "{:?}", names(&five));

    // Scale down: the unready pods go, the Ready ones stay.
    server.kubectl(["scale", "replicaset/web", "--replicas=3"]);
    let three = wait_for_pods(&server, "default", "app=web", 3);
    assert_eq!(names(&three), ready, "the Pending pods were deleted first");
    wait_for("status back to 3 replicas", TIMEOUT, || {
        let rs = get(&server, "default", "replicaset/web");
        (rs["status"]["replicas"] == 3 && rs["status"]["readyReplicas"] == 3).then_some(())
    });

    // Events as upstream words them.
    let events = get(&server, "default", "events");
    let messages: Vec<String> = events["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "web")
        .map(|e| {
            format!(
                "{} {}",
                e["reason"].as_str().unwrap_or(""),
                e["message"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("SuccessfulCreate Created pod: web-")),
        "{messages:?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("SuccessfulDelete Deleted pod: web-")),
        "{messages:?}"
    );

    // Scale to zero.
    server.kubectl(["scale", "replicaset/web", "--replicas=0"]);
    wait_for_pods(&server, "default", "app=web", 0);
}

#[test]
fn replica_set_adopts_orphans_and_releases_relabelled_pods() {
    let (server, _kcm) = start();
    apply(
        &server,
        "orphan.yaml",
        r#"apiVersion: v1
kind: Pod
metadata:
  name: orphan
  namespace: default
  labels:
    app: adopt
spec:
  containers:
  - name: main
    image: registry.k8s.io/pause:3.10
"#,
    );
    apply(
        &server,
        "rs.yaml",
        &replica_set("keeper", "default", "adopt", 1),
    );
    let uid = get(&server, "default", "replicaset/keeper")["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // The orphan is adopted instead of a new pod being made.
    wait_for("the orphan to be adopted", TIMEOUT, || {
        let pod = get(&server, "default", "pod/orphan");
        (controller_uid(&pod).as_deref() == Some(uid.as_str())).then_some(())
    });
    let pods = wait_for_pods(&server, "default", "app=adopt", 1);
    assert_eq!(names(&pods), vec!["orphan"]);
    let owner = &get(&server, "default", "pod/orphan")["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "ReplicaSet");
    assert_eq!(owner["name"], "keeper");
    assert_eq!(owner["blockOwnerDeletion"], true);

    // Relabelled: released, and replaced.
    server.kubectl(["label", "pod", "orphan", "app=elsewhere", "--overwrite"]);
    wait_for("the relabelled pod to be released", TIMEOUT, || {
        let pod = get(&server, "default", "pod/orphan");
        controller_uid(&pod).is_none().then_some(())
    });
    let replacement = wait_for_pods(&server, "default", "app=adopt", 1);
    assert_ne!(names(&replacement), vec!["orphan"]);
    assert_eq!(
        controller_uid(&replacement[0]).as_deref(),
        Some(uid.as_str())
    );
    assert_eq!(live_pods(&server, "default", "app=elsewhere").len(), 1);
}

#[test]
fn replication_controllers_are_managed_too() {
    let (server, _kcm) = start();
    apply(
        &server,
        "rc.yaml",
        r#"apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
  namespace: default
spec:
  replicas: 2
  selector:
    app: legacy
  template:
    metadata:
      labels:
        app: legacy
    spec:
      containers:
      - name: main
        image: registry.k8s.io/pause:3.10
"#,
    );
    let pods = wait_for_pods(&server, "default", "app=legacy", 2);
    for pod in &pods {
        let owner = &pod["metadata"]["ownerReferences"][0];
        assert_eq!(owner["kind"], "ReplicationController");
        assert_eq!(owner["apiVersion"], "v1");
        assert_eq!(owner["name"], "legacy");
    }
    assert_eq!(make_pods_ready(&server, "default", "node-1"), 2);
    wait_for("rc status", TIMEOUT, || {
        let rc = get(&server, "default", "rc/legacy");
        let s = &rc["status"];
        (s["replicas"] == 2
            && s["readyReplicas"] == 2
            && s["availableReplicas"] == 2
            && s["fullyLabeledReplicas"] == 2
            && s["observedGeneration"] == rc["metadata"]["generation"])
            .then_some(())
    });
    server.kubectl(["scale", "rc/legacy", "--replicas=1"]);
    wait_for_pods(&server, "default", "app=legacy", 1);
    wait_for("rc status at 1", TIMEOUT, || {
        let rc = get(&server, "default", "rc/legacy");
        (rc["status"]["replicas"] == 1).then_some(())
    });
}

#[test]
fn a_template_the_api_refuses_is_reported_while_others_keep_working() {
    let (server, _kcm) = start();
    // PodSecurity "restricted" refuses the plain pod on create, though the ReplicaSet itself
    // is accepted (its template is only warned about).
    server.kubectl(["create", "namespace", "locked"]);
    server.kubectl([
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce=restricted",
    ]);
    let path = server.write_file("broken.yaml", &replica_set("broken", "locked", "broken", 2));
    let path = path.display().to_string();
    // kubectl prints the PodSecurity warning on stderr; the object is created.
    let out = server.kubectl_unchecked(["apply", "-f", path.as_str()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    apply(
        &server,
        "fine.yaml",
        &replica_set("fine", "default", "fine", 2),
    );

    let condition = wait_for("the ReplicaFailure condition", TIMEOUT, || {
        let rs = get(&server, "locked", "replicaset/broken");
        rs["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "ReplicaFailure").cloned())
    });
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "FailedCreate");
    let message = condition["message"].as_str().unwrap_or_default();
    assert!(message.contains("forbidden"), "{message}");

    let event = wait_for("a FailedCreate warning", TIMEOUT, || {
        let events = get(&server, "locked", "events");
        events["items"].as_array().and_then(|items| {
            items
                .iter()
                .find(|e| e["reason"] == "FailedCreate" && e["involvedObject"]["name"] == "broken")
                .cloned()
        })
    });
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["involvedObject"]["kind"], "ReplicaSet");
    let text = event["message"].as_str().unwrap_or_default();
    assert!(text.starts_with("Error creating: "), "{text}");
    assert_eq!(event["source"]["component"], "replicaset-controller");
    assert!(live_pods(&server, "locked", "app=broken").is_empty());

    // The other ReplicaSet is served all along, and still is after scaling.
    wait_for_pods(&server, "default", "app=fine", 2);
    server.kubectl(["scale", "replicaset/fine", "--replicas=4"]);
    wait_for_pods(&server, "default", "app=fine", 4);

    // Fixing the namespace lets the broken one recover and clears the condition.
    server.kubectl([
        "label",
        "namespace",
        "locked",
        "pod-security.kubernetes.io/enforce-",
    ]);
    wait_for_pods(&server, "locked", "app=broken", 2);
    wait_for("the condition to clear", Duration::from_secs(60), || {
        let rs = get(&server, "locked", "replicaset/broken");
        let failing = rs["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().any(|c| c["type"] == "ReplicaFailure"));
        (!failing && rs["status"]["replicas"] == 2).then_some(())
    });
}
