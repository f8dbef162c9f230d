//! Probe workers against the simulated runtime (exec) and servers the test runs on 127.0.0.1
//! (httpGet, tcpSocket): thresholds, timeouts, the initial delay, startup gating, and results
//! that start over with a new container instance.

use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::kuberuntime::actions::{RuntimeContainer, RuntimeSandbox};
use crate::kuberuntime::{literal_env, RuntimeManager};
use crate::simcri::SimCri;

fn pod(containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "uid-1"},
        "spec": {"containers": containers}
    }))
    .unwrap_or_else(|e| panic!("pod: {e}"))
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
}

/// A runtime status with one running instance `id` of container `c`.
fn running(c: &str, id: &str) -> RuntimePodStatus {
    RuntimePodStatus {
        sandboxes: vec![RuntimeSandbox {
            id: "sb".into(),
            attempt: 0,
            ready: true,
            created_at: now_nanos(),
            ips: vec!["127.0.0.1".into()],
            host_network: false,
        }],
        containers: vec![RuntimeContainer {
            id: id.into(),
            name: c.into(),
            sandbox_id: "sb".into(),
            attempt: 0,
            state: State::Running,
            created_at: now_nanos(),
            started_at: now_nanos(),
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image: "busybox".into(),
            image_ref: "sha256:x".into(),
            hash: String::new(),
        }],
    }
}

fn prober() -> (Arc<ProbeManager>, Arc<AtomicUsize>) {
    let sim = Arc::new(SimCri::new());
    let m = Arc::new(ProbeManager::new(sim, None));
    let wakes = Arc::new(AtomicUsize::new(0));
    let w = wakes.clone();
    m.set_wake(Arc::new(move |uid: &str| {
        assert_eq!(uid, "uid-1");
        w.fetch_add(1, Ordering::SeqCst);
    }));
    (m, wakes)
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An HTTP server answering every request with the current `code`; it keeps the last
/// request's head.
async fn http_server(code: Arc<AtomicU16>, last: Arc<Mutex<String>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let code = code.clone();
            let last = last.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                *last.lock().unwrap_or_else(|e| e.into_inner()) =
                    String::from_utf8_lossy(&buf).into_owned();
                let code = code.load(Ordering::SeqCst);
                let resp =
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = conn.write_all(resp.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn http_readiness_follows_the_server_with_thresholds() {
    let code = Arc::new(AtomicU16::new(200));
    let last = Arc::new(Mutex::new(String::new()));
    let port = http_server(code.clone(), last.clone()).await;
    let p = pod(json!([{"name": "c", "image": "busybox", "readinessProbe": {
        "httpGet": {"host": "127.0.0.1", "port": port, "path": "/healthz",
                    "httpHeaders": [{"name": "X-Probe", "value": "yes"}]},
        "periodSeconds": 1, "failureThreshold": 2}}]));
    let (m, wakes) = prober();
    assert_eq!(m.verdicts("uid-1", "c"), (None, None));
    m.update_pod(&p, &running("c", "id-1"), Some("127.0.0.1"));
    assert_eq!(m.worker_count(), 1);
    assert_eq!(m.verdicts("uid-1", "c"), (Some(false), None));
    wait_until("ready", 5, || {
        m.verdicts("uid-1", "c") == (Some(true), None)
    })
    .await;
    assert_eq!(wakes.load(Ordering::SeqCst), 1);
    let head = last.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert!(head.starts_with("GET /healthz HTTP/1.1"), "{head}");
    assert!(
        head.to_lowercase().contains("user-agent: kube-probe/1.33"),
        "{head}"
    );
    assert!(head.to_lowercase().contains("x-probe: yes"), "{head}");
    // One failure is not enough with failureThreshold 2.
    code.store(500, Ordering::SeqCst);
    let failed_at = Instant::now();
    wait_until("unready", 6, || {
        m.verdicts("uid-1", "c") == (Some(false), None)
    })
    .await;
    assert!(failed_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(wakes.load(Ordering::SeqCst), 2);
    // Readiness never kills.
    assert!(!m.liveness_failed("uid-1", "id-1"));
    m.remove_pod("uid-1");
    assert_eq!(m.worker_count(), 0);
    assert_eq!(m.verdicts("uid-1", "c"), (None, None));
}

#[tokio::test]
async fn tcp_liveness_fails_after_the_threshold_and_a_restart_starts_over() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        l.local_addr().map(|a| a.port()).unwrap_or(0)
    };
    let p = pod(json!([{"name": "c", "image": "busybox", "livenessProbe": {
        "tcpSocket": {"port": "probe"}, "periodSeconds": 1, "failureThreshold": 2},
        "ports": [{"name": "probe", "containerPort": closed}]}]));
    let (m, _) = prober();
    m.update_pod(&p, &running("c", "id-1"), Some("127.0.0.1"));
    // Liveness starts as success.
    assert!(!m.liveness_failed("uid-1", "id-1"));
    assert_eq!(m.kill_reason("uid-1", "id-1"), None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !m.liveness_failed("uid-1", "id-1"),
        "one failure is not enough"
    );
    wait_until("liveness failure", 5, || m.liveness_failed("uid-1", "id-1")).await;
    assert_eq!(
        m.kill_reason("uid-1", "id-1"),
        Some("failed liveness probe")
    );
    assert_eq!(m.verdicts("uid-1", "c"), (None, None));
    // The restarted instance gets a fresh worker and a fresh result.
    m.update_pod(&p, &running("c", "id-2"), Some("127.0.0.1"));
    assert_eq!(m.worker_count(), 1);
    assert!(!m.liveness_failed("uid-1", "id-2"));
    assert!(!m.liveness_failed("uid-1", "id-1"));
    // A stopped container has no worker.
    m.update_pod(&p, &RuntimePodStatus::default(), None);
    assert_eq!(m.worker_count(), 0);
}

#[tokio::test]
async fn the_initial_delay_holds_the_first_probe() {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let p = pod(json!([{"name": "c", "image": "busybox", "readinessProbe": {
        "tcpSocket": {"port": port}, "initialDelaySeconds": 2, "periodSeconds": 1}}]));
    let (m, _) = prober();
    let start = Instant::now();
    m.update_pod(&p, &running("c", "id-1"), Some("127.0.0.1"));
    wait_until("ready", 6, || m.verdicts("uid-1", "c").0 == Some(true)).await;
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        start.elapsed()
    );
    drop(listener);
}

#[tokio::test]
async fn http_and_tcp_probes_time_out() {
    // Accepts, never answers.
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let start = Instant::now();
    let out = http_probe("127.0.0.1", port, "/", &[], Duration::from_millis(300)).await;
    assert!(start.elapsed() < Duration::from_secs(2));
    match out {
        Outcome::Failure(msg) => assert!(
            msg.contains("context deadline exceeded") && msg.contains(&format!("127.0.0.1:{port}")),
            "{msg}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        tcp_probe("127.0.0.1", port, Duration::from_secs(1)).await,
        Outcome::Success
    );
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        l.local_addr().map(|a| a.port()).unwrap_or(0)
    };
    assert_eq!(
        tcp_probe("127.0.0.1", closed, Duration::from_secs(1)).await,
        Outcome::Failure(format!(
            "dial tcp 127.0.0.1:{closed}: connect: connection refused"
        ))
    );
    let code = Arc::new(AtomicU16::new(500));
    let port = http_server(code.clone(), Arc::default()).await;
    assert_eq!(
        http_probe("127.0.0.1", port, "/", &[], Duration::from_secs(1)).await,
        Outcome::Failure("HTTP probe failed with statuscode: 500".into())
    );
    code.store(302, Ordering::SeqCst);
    assert_eq!(
        http_probe("127.0.0.1", port, "", &[], Duration::from_secs(1)).await,
        Outcome::Success
    );
}

#[tokio::test]
async fn exec_probes_run_through_cri_and_startup_gates_readiness() {
    let sim = Arc::new(SimCri::new());
    let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let rm = RuntimeManager::new(sim.clone(), sim.clone(), logs.path().to_path_buf(), "sim");
    let p = pod(json!([{"name": "c", "image": "busybox",
        "startupProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1},
        "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]));
    let before = rm.pod_status("uid-1").await.unwrap_or_default();
    rm.sync_pod(&p, &before, &literal_env)
        .await
        .unwrap_or_else(|e| panic!("sync: {e}"));
    let st = rm.pod_status("uid-1").await.unwrap_or_default();
    let id = st
        .latest("c")
        .map(|c| c.id.clone())
        .unwrap_or_else(|| panic!("no container"));
    let m = Arc::new(ProbeManager::new(sim.clone(), None));
    m.update_pod(&p, &st, st.ips().first().map(String::as_str));
    assert_eq!(m.worker_count(), 2);
    assert_eq!(m.verdicts("uid-1", "c"), (Some(false), Some(false)));
    wait_until("started and ready", 5, || {
        m.verdicts("uid-1", "c") == (Some(true), Some(true))
    })
    .await;
    // ExecSync on a container that is gone is a prober error: thrown away, not a failure.
    let out = exec_probe(
        sim.as_ref(),
        "nope",
        vec!["true".into()],
        Duration::from_secs(1),
    )
    .await;
    assert!(matches!(out, Outcome::Error(_)), "{out:?}");
    assert_eq!(
        exec_probe(
            sim.as_ref(),
            &id,
            vec!["true".into()],
            Duration::from_secs(1)
        )
        .await,
        Outcome::Success
    );
}

#[tokio::test]
async fn a_failing_startup_probe_asks_for_a_kill_and_holds_liveness() {
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        l.local_addr().map(|a| a.port()).unwrap_or(0)
    };
    let p = pod(json!([{"name": "c", "image": "busybox",
        "startupProbe": {"tcpSocket": {"port": closed}, "periodSeconds": 1, "failureThreshold": 1},
        "livenessProbe": {"tcpSocket": {"port": closed}, "periodSeconds": 1, "failureThreshold": 1}}]));
    let (m, _) = prober();
    m.update_pod(&p, &running("c", "id-1"), Some("127.0.0.1"));
    wait_until("startup failure", 5, || m.startup_failed("uid-1", "id-1")).await;
    assert_eq!(m.kill_reason("uid-1", "id-1"), Some("failed startup probe"));
    // Liveness never ran: the startup probe had not succeeded.
    assert!(!m.liveness_failed("uid-1", "id-1"));
    assert_eq!(m.verdicts("uid-1", "c"), (None, Some(false)));
}

#[test]
fn ports_resolve_by_number_or_name() {
    let c: Container = serde_json::from_value(
        json!({"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}),
    )
    .unwrap_or_default();
    assert_eq!(resolve_port(&IntOrString::Int(80), &c), Some(80));
    assert_eq!(
        resolve_port(&IntOrString::String("http".into()), &c),
        Some(8080)
    );
    assert_eq!(
        resolve_port(&IntOrString::String("8081".into()), &c),
        Some(8081)
    );
    assert_eq!(resolve_port(&IntOrString::String("nope".into()), &c), None);
    assert_eq!(resolve_port(&IntOrString::Int(0), &c), None);
}

/// A grpc.health.v1 server: "" and "ok" are SERVING, "down" NOT_SERVING, anything else
/// NotFound.
async fn grpc_health_server() -> u16 {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let svc = hyper::service::service_fn(
                |req: http::Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|c| c.to_bytes())
                        .unwrap_or_default();
                    let service = body
                        .get(7..)
                        .map(|s| String::from_utf8_lossy(s).into_owned())
                        .unwrap_or_default();
                    let mut trailers = http::HeaderMap::new();
                    let mut frames = Vec::new();
                    let status = match service.as_str() {
                        _ if path != "/grpc.health.v1.Health/Check" => None,
                        "" | "ok" => Some(1u8),
                        "down" => Some(2u8),
                        _ => None,
                    };
                    match status {
                        Some(s) => {
                            frames.push(Frame::data(bytes::Bytes::from(vec![
                                0, 0, 0, 0, 2, 0x08, s,
                            ])));
                            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        }
                        None => {
                            trailers.insert("grpc-status", http::HeaderValue::from_static("5"));
                            trailers.insert(
                                "grpc-message",
                                http::HeaderValue::from_static("unknown service"),
                            );
                        }
                    }
                    frames.push(Frame::trailers(trailers));
                    let stream = futures::stream::iter(
                        frames.into_iter().map(Ok::<_, std::convert::Infallible>),
                    );
                    let resp = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .body(StreamBody::new(stream))
                        .unwrap_or_else(|e| panic!("{e}"));
                    Ok::<_, std::convert::Infallible>(resp)
                },
            );
            tokio::spawn(async move {
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                        .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn grpc_probes_call_the_health_service() {
    let port = grpc_health_server().await;
    let t = Duration::from_secs(1);
    assert_eq!(grpc_probe("127.0.0.1", port, "", t).await, Outcome::Success);
    assert_eq!(
        grpc_probe("127.0.0.1", port, "ok", t).await,
        Outcome::Success
    );
    assert_eq!(
        grpc_probe("127.0.0.1", port, "down", t).await,
        Outcome::Failure("service unhealthy (responded with \"NOT_SERVING\")".into())
    );
    assert_eq!(
        grpc_probe("127.0.0.1", port, "other", t).await,
        Outcome::Failure(
            "error: health rpc probe failed: rpc error: code = NotFound desc = unknown service"
                .into()
        )
    );
    // Through a worker, with the pod's IP.
    let p = pod(json!([{"name": "c", "image": "busybox", "readinessProbe": {
        "grpc": {"port": port, "service": "ok"}, "periodSeconds": 1}}]));
    let (m, _) = prober();
    m.update_pod(&p, &running("c", "id-1"), Some("127.0.0.1"));
    wait_until("ready", 5, || m.verdicts("uid-1", "c").0 == Some(true)).await;
}

#[tokio::test]
async fn https_probes_skip_certificate_verification() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (cert, key) = serving::self_signed(dir.path(), "probe", &["elsewhere.example".into()])
        .unwrap_or_else(|e| panic!("cert: {e}"));
    let (certs, key) =
        serving::load_cert_and_key(&cert, &key).unwrap_or_else(|e| panic!("load: {e}"));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap_or_else(|e| panic!("{e}"))
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(conn).await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let code = if buf.starts_with(b"GET /bad ") {
                    503
                } else {
                    204
                };
                let resp =
                    format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    let t = Duration::from_secs(2);
    assert_eq!(
        http_probe_scheme(true, "127.0.0.1", port, "/", &[], t).await,
        Outcome::Success
    );
    assert_eq!(
        http_probe_scheme(true, "127.0.0.1", port, "/bad", &[], t).await,
        Outcome::Failure("HTTP probe failed with statuscode: 503".into())
    );
}
