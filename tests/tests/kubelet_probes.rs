//! The kubelet's probes on the simulated runtime, against the real apiserver: a readiness
//! httpGet probe against a server this test runs on 127.0.0.1 turns the pod's Ready condition
//! True, then False when the server answers 500 (with `Unhealthy` events); a liveness tcpSocket
//! probe to a closed port restarts the container (restartCount, lastState.terminated, and
//! upstream's `Unhealthy` and `Killing` events).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use e2e::pods::{apply, condition, events_for, get_pod, node_ready};
use e2e::{wait_for, ApiServer, Backend, Daemon};

const TIMEOUT: Duration = Duration::from_secs(60);

fn pod(name: &str, containers: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: default\nspec:\n  nodeName: n1\n  automountServiceAccountToken: false\n  terminationGracePeriodSeconds: 5\n  containers:\n{containers}"
    )
}

/// An HTTP server on 127.0.0.1 answering every request with the current `code`.
fn http_server(code: Arc<AtomicU16>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let code = code.load(Ordering::SeqCst);
            let resp =
                format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let _ = conn.write_all(resp.as_bytes());
        }
    });
    port
}

#[test]
fn readiness_follows_an_http_probe() {
    let code = Arc::new(AtomicU16::new(200));
    let port = http_server(code.clone());
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    apply(
        &server,
        "ready.yaml",
        &pod(
            "ready",
            &format!("  - name: app\n    image: busybox:1\n    readinessProbe:\n      httpGet: {{host: 127.0.0.1, port: {port}, path: /healthz}}\n      periodSeconds: 1\n      failureThreshold: 1\n"),
        ),
    );
    wait_for("ready Ready", TIMEOUT, || {
        let p = get_pod(&server, "ready");
        (condition(&p, "Ready")["status"] == "True").then_some(())
    });
    let p = get_pod(&server, "ready");
    assert_eq!(condition(&p, "ContainersReady")["status"], "True");
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], true);
    code.store(500, Ordering::SeqCst);
    let p = wait_for("ready not Ready", TIMEOUT, || {
        let p = get_pod(&server, "ready");
        (condition(&p, "Ready")["status"] == "False").then_some(p)
    });
    assert_eq!(condition(&p, "Ready")["reason"], "ContainersNotReady");
    assert_eq!(p["status"]["containerStatuses"][0]["ready"], false);
    assert_eq!(p["status"]["phase"], "Running");
    let events = wait_for("Unhealthy event", TIMEOUT, || {
        let e = events_for(&server, "ready", "Unhealthy");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(
        events[0]["message"],
        "Readiness probe failed: HTTP probe failed with statuscode: 500"
    );
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(
        events[0]["involvedObject"]["fieldPath"],
        "spec.containers{app}"
    );
    // Healthy again: Ready again, same container.
    code.store(200, Ordering::SeqCst);
    let p = wait_for("ready Ready again", TIMEOUT, || {
        let p = get_pod(&server, "ready");
        (condition(&p, "Ready")["status"] == "True").then_some(p)
    });
    assert_eq!(p["status"]["containerStatuses"][0]["restartCount"], 0);
}

#[test]
fn a_failing_liveness_probe_restarts_the_container() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        l.local_addr().map(|a| a.port()).unwrap_or(0)
    };
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=n1"]);
    node_ready(&server, "n1", TIMEOUT);
    apply(
        &server,
        "live.yaml",
        &pod(
            "live",
            &format!("  - name: app\n    image: busybox:1\n    livenessProbe:\n      tcpSocket: {{host: 127.0.0.1, port: {closed}}}\n      periodSeconds: 1\n      failureThreshold: 2\n"),
        ),
    );
    let p = wait_for("live restarted", TIMEOUT, || {
        let p = get_pod(&server, "live");
        let c = &p["status"]["containerStatuses"][0];
        (c["restartCount"].as_i64().unwrap_or(0) >= 1 && c["lastState"]["terminated"].is_object())
            .then_some(p)
    });
    let c = &p["status"]["containerStatuses"][0];
    assert!(
        c["lastState"]["terminated"]["finishedAt"].is_string(),
        "{c}"
    );
    assert!(c["lastState"]["terminated"]["containerID"]
        .as_str()
        .is_some_and(|id| id.starts_with("sim://")));
    let killing = wait_for("Killing event", TIMEOUT, || {
        let e = events_for(&server, "live", "Killing");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(
        killing[0]["message"],
        "Container app failed liveness probe, will be restarted"
    );
    assert_eq!(killing[0]["type"], "Normal");
    let unhealthy = events_for(&server, "live", "Unhealthy");
    assert!(!unhealthy.is_empty());
    let message = unhealthy[0]["message"].as_str().unwrap_or_default();
    assert_eq!(
        message,
        format!("Liveness probe failed: dial tcp 127.0.0.1:{closed}: connect: connection refused")
    );
}
