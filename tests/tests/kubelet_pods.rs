//! The kubelet's pod side on the simulated runtime, against the real apiserver and driven by the
//! real kubectl (and the Python client): pods bound to the node come up Running with an IP and
//! upstream's conditions, init containers run first, a crashing container backs off under
//! `Always` and fails the pod under `Never`, deletion completes, a pod that does not fit is
//! refused with `OutOfcpu`, a missing configMap holds the pod with a `FailedMount` event until
//! it exists, and 100 hollow nodes run 1,000 pods placed by the scheduler.

use std::time::Duration;

use e2e::pods::{apply, condition, events_for, get_pod, node_ready, wait_phase};
use e2e::{wait_for, ApiServer, Backend, Daemon};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

fn phase(server: &ApiServer, name: &str) -> String {
    get_pod(server, name)["status"]["phase"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn pod(name: &str, extra_spec: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  nodeName: n1\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 5\n{extra_spec}  containers:\n{containers}"
    )
}

#[test]
fn pods_come_up_running_with_upstream_status_and_go_when_deleted() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    apply(
        &server,
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: default\ndata:\n  mode: fast\n",
    );
    apply(
        &server,
        "web.yaml",
        &pod(
            "web",
            "  initContainers:\n  - name: setup\n    image: busybox:1\n    command: [sh, -c, 'exit 0']\n  volumes:\n  - name: cfg\n    configMap: {name: settings}\n",
            "  - name: app\n    image: busybox:1\n    env:\n    - name: MODE\n      valueFrom: {configMapKeyRef: {name: settings, key: mode}}\n    volumeMounts:\n    - {name: cfg, mountPath: /etc/cfg}\n    resources:\n      requests: {cpu: 100m, memory: 64Mi}\n      limits: {cpu: 100m, memory: 64Mi}\n  - name: sidecar\n    image: busybox:1\n",
        ),
    );
    wait_phase(&server, "web", "Running", TIMEOUT);
    let p = wait_for("web Ready", TIMEOUT, || {
        let p = get_pod(&server, "web");
        (condition(&p, "Ready")["status"] == "True").then_some(p)
    });
    let _ = p;
    let p = get_pod(&server, "web");
    let status = &p["status"];
    assert!(
        status["podIP"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("10.")),
        "{status}"
    );
    assert!(status["hostIP"].as_str().is_some_and(|ip| !ip.is_empty()));
    assert!(status["startTime"].is_string());
    assert_eq!(status["qosClass"], "Burstable");
    for c in [
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
        "Ready",
        "PodScheduled",
    ] {
        assert_eq!(condition(&p, c)["status"], "True", "{c}: {status}");
    }
    let init = &status["initContainerStatuses"][0];
    assert_eq!(init["state"]["terminated"]["reason"], "Completed");
    assert_eq!(init["ready"], true);
    let app = status["containerStatuses"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "app").cloned())
        .unwrap_or_default();
    assert!(app["state"]["running"]["startedAt"].is_string());
    assert_eq!(
        (
            app["ready"].clone(),
            app["started"].clone(),
            app["restartCount"].clone()
        ),
        (Value::Bool(true), Value::Bool(true), Value::from(0))
    );
    assert!(app["containerID"]
        .as_str()
        .is_some_and(|id| id.starts_with("sim://")));
    // kubectl's table, as for upstream.
    let table = server.kubectl_stdout(["get", "pod", "web", "--no-headers"]);
    let cols: Vec<&str> = table.split_whitespace().collect();
    assert_eq!(&cols[..3], &["web", "2/2", "Running"], "{table}");

    // Deleting: the kubelet stops it and finishes the deletion.
    server.kubectl(["delete", "pod", "web", "--wait=false"]);
    wait_for("web gone", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "pod", "web", "-o", "name"]);
        (!out.status.success()).then_some(())
    });
}

#[test]
fn crashing_containers_follow_the_restart_policy() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    let crash = "  - name: c\n    image: busybox:1\n    command: [sh, -c, 'exit 3']\n";
    apply(
        &server,
        "never.yaml",
        &pod("never", "  restartPolicy: Never\n", crash),
    );
    apply(&server, "always.yaml", &pod("always", "", crash));

    let p = wait_phase(&server, "never", "Failed", TIMEOUT);
    let c = &p["status"]["containerStatuses"][0];
    assert_eq!(c["state"]["terminated"]["exitCode"], 3);
    assert_eq!(c["state"]["terminated"]["reason"], "Error");
    assert_eq!(c["restartCount"], 0);
    assert_eq!(condition(&p, "Ready")["reason"], "PodFailed");

    let p = wait_for("always in CrashLoopBackOff", TIMEOUT, || {
        let p = get_pod(&server, "always");
        let c = &p["status"]["containerStatuses"][0];
        (c["state"]["waiting"]["reason"] == "CrashLoopBackOff").then(|| p.clone())
    });
    let c = &p["status"]["containerStatuses"][0];
    assert!(c["restartCount"].as_i64().is_some_and(|n| n >= 1), "{c}");
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3);
    assert!(c["state"]["waiting"]["message"].as_str().is_some_and(
        |m| m.starts_with("back-off 10s restarting failed container=c pod=always_default(")
    ));
    assert_eq!(p["status"]["phase"], "Running");
    let table = server.kubectl_stdout(["get", "pod", "always", "--no-headers"]);
    assert!(table.contains("CrashLoopBackOff"), "{table}");
}

#[test]
fn a_pod_that_does_not_fit_is_refused_and_a_missing_configmap_holds_a_pod() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    apply(
        &server,
        "huge.yaml",
        &pod(
            "huge",
            "",
            "  - name: c\n    image: busybox:1\n    resources:\n      requests: {cpu: '500'}\n",
        ),
    );
    let p = wait_phase(&server, "huge", "Failed", TIMEOUT);
    assert_eq!(p["status"]["reason"], "OutOfcpu");
    assert!(p["status"]["message"]
        .as_str()
        .is_some_and(|m| m.starts_with("Pod was rejected: Node didn't have enough resource: cpu, requested: 500000, used: 0, capacity: ")));
    wait_for("an OutOfcpu event", TIMEOUT, || {
        events_for(&server, "huge", "OutOfcpu").into_iter().next()
    });

    apply(
        &server,
        "needs.yaml",
        &pod("needs", "  volumes:\n  - name: cfg\n    configMap: {name: later}\n", "  - name: c\n    image: busybox:1\n    volumeMounts:\n    - {name: cfg, mountPath: /cfg}\n"),
    );
    let event = wait_for("a FailedMount event", TIMEOUT, || {
        events_for(&server, "needs", "FailedMount")
            .into_iter()
            .next()
    });
    assert_eq!(event["type"], "Warning");
    assert_eq!(
        event["message"],
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"later\" not found"
    );
    assert_eq!(phase(&server, "needs"), "Pending");
    apply(
        &server,
        "later.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: later\n  namespace: default\ndata:\n  k: v\n",
    );
    wait_phase(&server, "needs", "Running", TIMEOUT);
    // The Python client reads the same status.
    let seen = server.python("kubelet_pod.py", &["default", "needs"]);
    assert_eq!(seen["phase"], "Running");
    assert_eq!(seen["conditions"]["Ready"], "True");
    assert_eq!(seen["containers"]["c"]["ready"], true);
    assert!(seen["podIP"]
        .as_str()
        .is_some_and(|ip| ip.starts_with("10.")));
}

#[test]
fn hundred_hollow_nodes_run_a_thousand_pods() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(
        &server,
        &["--hollow-nodes=100", "--hostname-override=hollow"],
    );
    let _scheduler = Daemon::scheduler(&server, &[]);
    // The node lifecycle controller lifts the not-ready taint new nodes get.
    let _kcm = Daemon::start(&server, &["--controllers=node-lifecycle-controller"]);
    wait_for("100 Ready hollow nodes", Duration::from_secs(120), || {
        let nodes = server.get_json(None, "nodes");
        let ready = nodes["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|n| {
                    n["status"]["conditions"].as_array().is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
                })
                .count()
        });
        (ready == 100).then_some(())
    });
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..1000 {
        list.push_str(&format!(
            "- apiVersion: v1\n  kind: Pod\n  metadata: {{name: p-{i}, namespace: default}}\n  spec:\n    automountServiceAccountToken: false\n    containers:\n    - {{name: c, image: 'busybox:1', resources: {{requests: {{cpu: 10m}}}}}}\n"
        ));
    }
    let path = server.write_file("pods.yaml", &list);
    let path = path.display().to_string();
    server.kubectl(["create", "-f", path.as_str()]);
    wait_for("1000 pods Running", Duration::from_secs(300), || {
        let pods = server.get_json(Some("default"), "pods");
        let running = pods["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|p| p["status"]["phase"] == "Running")
                .count()
        });
        (running == 1000).then_some(())
    });
    // Spread over the nodes by the scheduler.
    let pods = server.get_json(Some("default"), "pods");
    let nodes: std::collections::HashSet<String> = pods["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(nodes.len() >= 90, "pods on {} nodes", nodes.len());
}

#[test]
fn image_pull_secrets_reach_the_runtime() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    // The simulated runtime's private registry takes bob/hunter2 only.
    let image = "registry.private.test/team/app:1";
    let private = |name: &str, secrets: &str| {
        pod(
            name,
            secrets,
            &format!("  - name: app\n    image: {image}\n    imagePullPolicy: Always\n"),
        )
    };
    apply(&server, "nosecret.yaml", &private("nosecret", ""));
    server.kubectl([
        "create",
        "secret",
        "docker-registry",
        "regcred",
        "--docker-server=registry.private.test",
        "--docker-username=bob",
        "--docker-password=hunter2",
    ]);
    server.kubectl([
        "create",
        "secret",
        "docker-registry",
        "wrongcred",
        "--docker-server=registry.private.test",
        "--docker-username=bob",
        "--docker-password=guess",
    ]);
    apply(
        &server,
        "withsecret.yaml",
        &private(
            "withsecret",
            "  imagePullSecrets:\n  - name: missing\n  - name: regcred\n",
        ),
    );
    apply(
        &server,
        "wrongsecret.yaml",
        &private("wrongsecret", "  imagePullSecrets:\n  - name: wrongcred\n"),
    );
    wait_phase(&server, "withsecret", "Running", TIMEOUT);
    for name in ["nosecret", "wrongsecret"] {
        let waiting = wait_for(&format!("{name} failing to pull"), TIMEOUT, || {
            let p = get_pod(&server, name);
            let waiting = p["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            matches!(
                waiting["reason"].as_str(),
                Some("ErrImagePull" | "ImagePullBackOff")
            )
            .then_some(waiting)
        });
        assert!(
            waiting["message"]
                .as_str()
                .is_some_and(|m| m.contains("authorization failed")),
            "{waiting}"
        );
        assert_eq!(phase(&server, name), "Pending");
    }
    // The events say what happened, as kubectl describe shows them.
    let failed = events_for(&server, "nosecret", "Failed");
    assert!(
        failed.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("Failed to pull image \"{image}\": ")))),
        "{failed:?}"
    );
    let pulling = events_for(&server, "withsecret", "Pulling");
    assert_eq!(
        pulling[0]["message"],
        format!("Pulling image \"{image}\"").as_str()
    );
    let pulled = events_for(&server, "withsecret", "Pulled");
    assert!(
        pulled[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(&format!("Successfully pulled image \"{image}\" in "))),
        "{pulled:?}"
    );
}
