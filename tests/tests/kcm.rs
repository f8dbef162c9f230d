//! kube-controller-manager as a process: flags, its secure port, and the per-namespace defaults
//! (the `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap).

use std::time::Duration;

use e2e::{wait_for, ApiServer, Backend, ControllerManager};

#[test]
fn new_namespaces_get_a_default_service_account_and_the_root_ca() {
    let server = ApiServer::start(Backend::Embedded);
    let ca = server.write_file(
        "ca.crt",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let ca_arg = format!("--root-ca-file={}", ca.display());
    let _kcm = ControllerManager::start(&server, &[&ca_arg]);
    let out = server.kubectl(["create", "namespace", "team-a"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for(
        "the default service account",
        Duration::from_secs(20),
        || {
            let out = server.kubectl_unchecked([
                "get",
                "serviceaccount",
                "default",
                "-n",
                "team-a",
                "-o",
                "name",
            ]);
            (e2e::stdout(&out).trim() == "serviceaccount/default").then_some(())
        },
    );
    let data = wait_for("kube-root-ca.crt", Duration::from_secs(20), || {
        let out = server.kubectl_unchecked([
            "get",
            "configmap",
            "kube-root-ca.crt",
            "-n",
            "team-a",
            "-o",
            "jsonpath={.data.ca\\.crt}",
        ]);
        out.status.success().then(|| e2e::stdout(&out))
    });
    assert!(data.starts_with("-----BEGIN CERTIFICATE-----"), "{data}");
    // Deleted defaults come back.
    let out = server.kubectl(["delete", "serviceaccount", "default", "-n", "team-a"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for(
        "the default service account again",
        Duration::from_secs(20),
        || {
            let out = server.kubectl_unchecked([
                "get",
                "serviceaccount",
                "default",
                "-n",
                "team-a",
                "-o",
                "name",
            ]);
            out.status.success().then_some(())
        },
    );
}

#[test]
fn unknown_controllers_are_refused_by_name() {
    let server = ApiServer::start(Backend::Embedded);
    let mut kcm = ControllerManager::start(&server, &["--controllers=*,nosuch"]);
    let status = wait_for(
        "the controller manager to exit",
        Duration::from_secs(20),
        || kcm.try_wait(),
    );
    assert!(!status.success());
    let log = std::fs::read_to_string(kcm.log_path()).unwrap_or_default();
    assert!(
        log.contains("\"nosuch\" is not in the list of known controllers"),
        "{log}"
    );
}

#[test]
fn the_secure_port_serves_health_and_metrics() {
    let server = ApiServer::start(Backend::Embedded);
    let port = match e2e::free_port() {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let port_arg = format!("--secure-port={port}");
    // No auth kubeconfigs here: /metrics is opened like health (kcm_secure_port.rs covers
    // delegated authorization).
    let _kcm = ControllerManager::start(
        &server,
        &[
            &port_arg,
            "--bind-address=127.0.0.1",
            "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
        ],
    );
    let curl = |path: &str| -> Option<String> {
        let out = std::process::Command::new("curl")
            .args([
                "-sk",
                "--max-time",
                "5",
                &format!("https://127.0.0.1:{port}{path}"),
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).to_string())
    };
    let health = wait_for("/healthz", Duration::from_secs(20), || curl("/healthz"));
    assert_eq!(health, "ok");
    let metrics = wait_for("client metrics", Duration::from_secs(20), || {
        curl("/metrics").filter(|m| m.contains("rest_client_requests_total"))
    });
    assert!(
        metrics.contains("# TYPE rest_client_requests_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("workqueue_adds_total{name=\"serviceaccount\"}"),
        "{metrics}"
    );
}

fn pods_of(server: &ApiServer, selector: &str) -> Vec<String> {
    let out = server.kubectl_unchecked([
        "get",
        "pods",
        "-l",
        selector,
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let mut names: Vec<String> = e2e::stdout(&out)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

#[test]
fn two_controller_managers_one_leader_and_a_clean_takeover() {
    let server = ApiServer::start(Backend::Embedded);
    let flags = [
        "--leader-elect=true",
        "--leader-elect-lease-duration=4s",
        "--leader-elect-renew-deadline=3s",
        "--leader-elect-retry-period=500ms",
        "--controllers=replicaset-controller",
    ];
    let mut a = ControllerManager::start(&server, &flags);
    let mut b = ControllerManager::start(&server, &flags);
    let log = |kcm: &ControllerManager| std::fs::read_to_string(kcm.log_path()).unwrap_or_default();
    let leading = |kcm: &ControllerManager| log(kcm).contains("started controller");
    wait_for("a leader", Duration::from_secs(20), || {
        (leading(&a) || leading(&b)).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        leading(&a) != leading(&b),
        "exactly one manager runs controllers"
    );

    let rs = server.write_file(
        "rs.yaml",
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata: {name: web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    let out = server.kubectl(["apply", "-f", rs.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for("3 pods", Duration::from_secs(20), || {
        (pods_of(&server, "app=web").len() == 3).then_some(())
    });

    // kill -9 the leader; the other takes over and finishes a scale-up without duplicates.
    let (leader, follower) = if leading(&a) {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(
        !leading(follower),
        "the follower has not started controllers"
    );
    leader.kill();
    let out = server.kubectl(["scale", "replicaset", "web", "--replicas=6"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for("the follower to take over", Duration::from_secs(20), || {
        leading(follower).then_some(())
    });
    wait_for("6 pods", Duration::from_secs(20), || {
        (pods_of(&server, "app=web").len() == 6).then_some(())
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        pods_of(&server, "app=web").len(),
        6,
        "no duplicate pods after the takeover"
    );
}
