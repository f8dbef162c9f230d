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
    let _kcm = ControllerManager::start(&server, &[&port_arg, "--bind-address=127.0.0.1"]);
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
