//! kube-apiserver benchmark: the real `kube-apiserver` binary, started as a child process on a
//! loopback port, driven over HTTP/1.1 (one keep-alive connection per client) with ~1 KiB pods.
//! For each backend (embedded store; etcd started here) it measures pod creates and gets at 1, 8
//! and 64 clients, whole lists of 10k pods (from storage, and `resourceVersion=0` from the watch
//! cache), and one write fanned out to 1,000 watch connections, with the delivery latency measured
//! from just before the write is sent to the moment each watcher reads the event. It then opens
//! the same storage directly in this process and measures raw `create`s of 1 KiB values at the
//! same concurrency, and prints the ratios issue 3 sets targets for.
//!
//! `cargo bench -p apiserver --bench apiserver` (add `-- --quick` for a short smoke run).
//!
//! Failures of the server (non-2xx answers, timeouts, missed watch events) are counted and
//! printed, never asserted: the bench reports, it does not judge timings.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::{Bytes, BytesMut};
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use storage::embedded::{EmbeddedConfig, EmbeddedStore};
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::Storage;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const CONCURRENCY: [usize; 3] = [1, 8, 64];
/// Every request; generous, so that a slow server shows as latency, not as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a watcher waits for its next event before giving up on the rest.
const WATCH_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
const SERVER_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The annotation carrying `<write index>-<nanoseconds since the bench's epoch>` of a fan-out
/// write; watchers find it in the raw event line, without parsing the whole object.
const SENT_ANNOTATION: &str = "bench.kube.io/sent";
const RAW_VALUE_BYTES: usize = 1024;

struct Settings {
    /// Total pod creates for 1, 8 and 64 clients; the 64-client row fills the list namespace.
    creates: [usize; 3],
    /// Total gets for 1, 8 and 64 clients.
    gets: [usize; 3],
    /// Whole lists for 1 and 8 clients.
    lists: [usize; 2],
    watchers: usize,
    fanout_writes: usize,
}

impl Settings {
    fn list_pods(&self) -> usize {
        self.creates[2]
    }
}

#[derive(Clone)]
struct Row {
    backend: &'static str,
    op: String,
    clients: usize,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl Row {
    fn per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let index = ((sorted.len() as f64 - 1.0) * p).round().max(0.0) as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn print(&self) {
        println!(
            "{:<10} {:<28} {:>7} {:>8} {:>10.0} {:>9.3} {:>9.3} {:>9.3}",
            self.backend,
            self.op,
            self.clients,
            self.ops,
            self.per_second(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
            self.percentile(1.0).as_secs_f64() * 1e3,
        );
        if self.errors > 0 {
            println!(
                "           ^ {} failed; first: {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("?")
            );
        }
    }
}

fn find<'a>(rows: &'a [Row], backend: &str, op: &str, clients: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.backend == backend && r.op == op && r.clients == clients)
}

// ---------------------------------------------------------------------------------------------
// The server under test.

/// A `kube-apiserver` child process; killed (by its pid, through `Child`) and reaped on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    log_path: PathBuf,
    // Dropped after the process is gone, so the directory outlives its writer.
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(etcd_endpoints: Option<&[String]>) -> anyhow::Result<Server> {
        let dir = tempfile::Builder::new()
            .prefix("apiserver-bench")
            .tempdir()
            .context("temporary directory")?;
        // Port 0 is not accepted for the insecure port, so choose one and release it.
        let port = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("choosing a free port")?
            .port();
        let log_path = dir.path().join("kube-apiserver.log");
        let log = std::fs::File::create(&log_path).context("creating the server log")?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_kube-apiserver"));
        command
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--cert-dir")
            .arg(dir.path().join("certs"))
            .args(["--secure-port", "0", "--insecure-port", &port.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if let Some(endpoints) = etcd_endpoints {
            command.arg("--etcd-servers").arg(endpoints.join(","));
        }
        let child = command.spawn().context("spawning kube-apiserver")?;
        Ok(Server {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            log_path,
            _dir: dir,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `/readyz` until it answers 200, or fails with the log's tail.
    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + SERVER_READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "kube-apiserver exited with {status}; log:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(mut conn) = Conn::connect(self.addr).await {
                if let Ok((StatusCode::OK, _)) = conn.request(Method::GET, "/readyz", None).await {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "kube-apiserver not ready within {SERVER_READY_TIMEOUT:?}; log:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn rss_mib(&self) -> Option<f64> {
        rss_mib(self.pid())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Warnings and errors the server logged, for the report.
    fn log_problems(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log_path)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` of a process, in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// A lean HTTP/1.1 client: one keep-alive connection, one request at a time.

struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // The connection ends when the client drops `sender` or the server hangs up; either
            // way the next request on it reports the error.
            let _ = connection.await;
        });
        Ok(Conn { sender })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<http::Response<Incoming>> {
        self.sender.ready().await.context("connection closed")?;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "127.0.0.1")
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(body.unwrap_or_default()))?;
        Ok(self.sender.send_request(request).await?)
    }

    /// One request with its whole answer, within [`REQUEST_TIMEOUT`].
    async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let exchange = async {
            let response = self.send(method, path, body).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            anyhow::Ok((status, body))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| anyhow!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// A request that must answer `expected`; anything else is an error quoting the answer.
    async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        expected: StatusCode,
    ) -> anyhow::Result<Bytes> {
        let (status, answer) = self.request(method.clone(), path, body).await?;
        if status != expected {
            let text = String::from_utf8_lossy(&answer);
            let text: String = text.chars().take(300).collect();
            bail!("{method} {path}: {status}: {text}");
        }
        Ok(answer)
    }
}

// ---------------------------------------------------------------------------------------------
// Workload.

/// A realistic pod of about 1 KiB as sent: one container with ports, env, probes and resources.
fn pod(namespace: &str, name: &str, index: usize, extra_annotation: Option<String>) -> Bytes {
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        "kubernetes.io/description".into(),
        json!("benchmark pod created by apiserver/benches/apiserver.rs"),
    );
    if let Some(sent) = extra_annotation {
        annotations.insert(SENT_ANNOTATION.into(), json!(sent));
    }
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app": "bench",
                "tier": "backend",
                "release": "stable",
                "shard": format!("s{}", index % 16),
            },
            "annotations": annotations,
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "POD_INDEX", "value": index.to_string()},
                    {"name": "LOG_LEVEL", "value": "info"},
                    {"name": "UPSTREAM_URL", "value": "http://backend.bench.svc.cluster.local:8080"},
                    {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "readinessProbe": {
                    "httpGet": {"path": "/healthz", "port": 8080},
                    "periodSeconds": 10,
                },
                "imagePullPolicy": "IfNotPresent",
            }],
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532},
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "nodeSelector": {"kubernetes.io/os": "linux"},
        },
    });
    Bytes::from(pod.to_string())
}

fn pods_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/pods")
}

#[derive(Clone)]
enum Op {
    Create { namespace: String },
    Get { namespace: String, pods: usize },
    List { namespace: String, from_cache: bool },
}

impl Op {
    async fn perform(&self, conn: &mut Conn, i: usize) -> anyhow::Result<()> {
        match self {
            Op::Create { namespace } => {
                let body = pod(namespace, &format!("pod-{i:06}"), i, None);
                conn.expect(
                    Method::POST,
                    &pods_path(namespace),
                    Some(body),
                    StatusCode::CREATED,
                )
                .await?;
            }
            Op::Get { namespace, pods } => {
                let n = (i * 7919) % (*pods).max(1);
                let path = format!("{}/pod-{n:06}", pods_path(namespace));
                conn.expect(Method::GET, &path, None, StatusCode::OK)
                    .await?;
            }
            Op::List {
                namespace,
                from_cache,
            } => {
                let mut path = pods_path(namespace);
                if *from_cache {
                    path.push_str("?resourceVersion=0");
                }
                conn.expect(Method::GET, &path, None, StatusCode::OK)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Per-client results: latencies of the successful operations, and the failures.
#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
}

impl Outcome {
    fn fail(&mut self, err: impl std::fmt::Display) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(err.to_string());
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

/// `clients` connections share `total` operations (client `c` does indexes `c, c + clients, ..`).
async fn http_row(
    backend: &'static str,
    label: &str,
    addr: SocketAddr,
    clients: usize,
    total: usize,
    op: Op,
) -> Row {
    let mut conns = Vec::with_capacity(clients);
    let mut outcome = Outcome::default();
    for _ in 0..clients {
        match Conn::connect(addr).await {
            Ok(conn) => conns.push(conn),
            Err(err) => outcome.fail(format!("connect: {err:#}")),
        }
    }
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for (c, mut conn) in conns.into_iter().enumerate() {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            for i in (c..total).step_by(clients.max(1)) {
                let t = Instant::now();
                match op.perform(&mut conn, i).await {
                    Ok(()) => outcome.latencies.push(t.elapsed()),
                    Err(err) => outcome.fail(format!("{err:#}")),
                }
            }
            outcome
        }));
    }
    for task in tasks {
        match task.await {
            Ok(o) => outcome.merge(o),
            Err(err) => outcome.fail(format!("client task: {err}")),
        }
    }
    let row = Row {
        backend,
        op: label.to_string(),
        clients,
        ops: total,
        elapsed: started.elapsed(),
        latencies: outcome.latencies,
        errors: outcome.errors,
        first_error: outcome.first_error,
    };
    row.print();
    row
}

async fn create_namespace(conn: &mut Conn, name: &str) -> anyhow::Result<()> {
    let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    conn.expect(
        Method::POST,
        "/api/v1/namespaces",
        Some(Bytes::from(body.to_string())),
        StatusCode::CREATED,
    )
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fan-out.

/// What one watcher saw.
#[derive(Default)]
struct Seen {
    writes: HashSet<usize>,
    latencies: Vec<Duration>,
    unexpected: Vec<String>,
}

/// Reads `writes` events from a watch response, timing each against the send time it carries.
async fn watch_events(response: http::Response<Incoming>, writes: usize, epoch: Instant) -> Seen {
    let mut seen = Seen::default();
    let mut body = response.into_body();
    let mut buffer = BytesMut::new();
    while seen.writes.len() < writes {
        let frame = match tokio::time::timeout(WATCH_IDLE_TIMEOUT, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(err))) => {
                seen.unexpected.push(format!("watch body error: {err}"));
                break;
            }
            Ok(None) => {
                seen.unexpected.push("watch ended early".into());
                break;
            }
            Err(_) => {
                seen.unexpected
                    .push(format!("no event for {WATCH_IDLE_TIMEOUT:?}"));
                break;
            }
        };
        let received = Instant::now();
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buffer.extend_from_slice(&data);
        while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
            let line = buffer.split_to(end + 1);
            match sent_mark(&line) {
                Some((index, sent_nanos)) if line.starts_with(br#"{"type":"ADDED""#) => {
                    let sent = epoch + Duration::from_nanos(sent_nanos);
                    seen.latencies
                        .push(received.saturating_duration_since(sent));
                    seen.writes.insert(index);
                }
                _ => {
                    let text = String::from_utf8_lossy(&line);
                    seen.unexpected.push(text.chars().take(200).collect());
                }
            }
        }
    }
    seen
}

/// The `<index>-<nanos>` value of [`SENT_ANNOTATION`] in a raw event line.
fn sent_mark(line: &[u8]) -> Option<(usize, u64)> {
    let needle = format!("\"{SENT_ANNOTATION}\"");
    let needle = needle.as_bytes();
    let at = line.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let rest = line.get(at..)?;
    let open = rest.iter().position(|&b| b == b'"')? + 1;
    let rest = rest.get(open..)?;
    let close = rest.iter().position(|&b| b == b'"')?;
    let value = std::str::from_utf8(rest.get(..close)?).ok()?;
    let (index, nanos) = value.split_once('-')?;
    Some((index.parse().ok()?, nanos.parse().ok()?))
}

/// `watchers` watch connections on one namespace's pods, then `writes` pod creates one after
/// another; every watcher must see every create.
async fn fanout(
    backend: &'static str,
    addr: SocketAddr,
    server_pid: u32,
    namespace: &str,
    watchers: usize,
    writes: usize,
) -> anyhow::Result<Row> {
    let mut conn = Conn::connect(addr).await?;
    create_namespace(&mut conn, namespace).await?;
    // List-then-watch, as informers do: the watch starts at the (empty) list's revision, so no
    // write can slip between the watch starting and the writes below.
    let list = conn
        .expect(Method::GET, &pods_path(namespace), None, StatusCode::OK)
        .await?;
    let list: serde_json::Value = serde_json::from_slice(&list)?;
    let rv = list
        .pointer("/metadata/resourceVersion")
        .and_then(|v| v.as_str())
        .context("list without resourceVersion")?
        .to_string();
    let watch_path = format!("{}?watch=1&resourceVersion={rv}", pods_path(namespace));

    let epoch = Instant::now();
    // Bounded so that a thousand connects do not overflow the listen backlog at once.
    let connecting = Arc::new(Semaphore::new(64));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<Result<(), String>>(watchers);
    let mut tasks = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let connecting = connecting.clone();
        let ready_tx = ready_tx.clone();
        let watch_path = watch_path.clone();
        tasks.push(tokio::spawn(async move {
            let opened = async {
                let _permit = connecting.acquire().await?;
                let mut conn = Conn::connect(addr).await?;
                let response = conn.send(Method::GET, &watch_path, None).await?;
                if response.status() != StatusCode::OK {
                    bail!("watch answered {}", response.status());
                }
                anyhow::Ok((conn, response))
            };
            match opened.await {
                Ok((conn, response)) => {
                    let _ = ready_tx.send(Ok(())).await;
                    let seen = watch_events(response, writes, epoch).await;
                    drop(conn);
                    seen
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(format!("{err:#}"))).await;
                    Seen::default()
                }
            }
        }));
    }
    drop(ready_tx);
    let connect_started = Instant::now();
    let mut open = 0;
    let mut failed_to_open = Vec::new();
    // Each watcher reports once, as soon as its watch answered (or failed to).
    for _ in 0..watchers {
        match ready_rx.recv().await {
            Some(Ok(())) => open += 1,
            Some(Err(err)) => failed_to_open.push(err),
            None => break,
        }
    }
    let connect_time = connect_started.elapsed();
    let rss_with_watchers = rss_mib(server_pid);

    let started = Instant::now();
    let mut write_errors = Vec::new();
    for i in 0..writes {
        let sent = epoch.elapsed().as_nanos();
        let body = pod(
            namespace,
            &format!("fanout-{i:06}"),
            i,
            Some(format!("{i}-{sent}")),
        );
        if let Err(err) = conn
            .expect(
                Method::POST,
                &pods_path(namespace),
                Some(body),
                StatusCode::CREATED,
            )
            .await
        {
            write_errors.push(format!("{err:#}"));
        }
    }
    let writes_done = started.elapsed();

    let mut latencies = Vec::with_capacity(watchers * writes);
    let mut complete = 0;
    let mut missing_events = 0;
    let mut unexpected = Vec::new();
    for task in tasks {
        match task.await {
            Ok(seen) => {
                if seen.writes.len() == writes {
                    complete += 1;
                }
                missing_events += writes.saturating_sub(seen.writes.len());
                latencies.extend(seen.latencies);
                unexpected.extend(seen.unexpected);
            }
            Err(err) => unexpected.push(format!("watcher task: {err}")),
        }
    }
    let elapsed = started.elapsed();

    let errors = failed_to_open.len() + write_errors.len() + unexpected.len();
    let first_error = failed_to_open
        .first()
        .or(write_errors.first())
        .or(unexpected.first())
        .cloned();
    let row = Row {
        backend,
        op: format!("fan-out {writes} writes"),
        clients: watchers,
        ops: latencies.len(),
        elapsed,
        latencies,
        errors,
        first_error,
    };
    row.print();
    let summary = format!(
        "{backend}: {open}/{watchers} watches opened in {:.2} s; {complete}/{watchers} watchers \
         got all {writes} events ({missing_events} (watcher, event) pairs missing); writes took \
         {:.3} s ({:.1} ms each); server RSS with the watches open: {}",
        connect_time.as_secs_f64(),
        writes_done.as_secs_f64(),
        writes_done.as_secs_f64() * 1e3 / writes.max(1) as f64,
        rss_with_watchers.map_or("?".to_string(), |m| format!("{m:.1} MiB")),
    );
    println!("           {summary}");
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// One backend through the apiserver, then its raw store.

struct BackendReport {
    rows: Vec<Row>,
    rss_baseline: Option<f64>,
    rss_after: Option<f64>,
    pods_stored: usize,
    fanout_complete: bool,
    pod_sizes: (usize, usize),
    log_problems: Vec<String>,
}

async fn bench_apiserver(
    backend: &'static str,
    etcd_endpoints: Option<Vec<String>>,
    settings: &Settings,
) -> anyhow::Result<BackendReport> {
    let mut server =
        tokio::task::spawn_blocking(move || Server::start(etcd_endpoints.as_deref())).await??;
    server.wait_ready().await?;
    let addr = server.addr;
    let mut rows = Vec::new();
    // Let start-up work (bootstrap objects, caches filling) settle before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_baseline = server.rss_mib();

    let mut admin = Conn::connect(addr).await?;
    let namespaces = ["bench-c1", "bench-c8", "bench-list"];
    for ns in namespaces {
        create_namespace(&mut admin, ns).await?;
    }
    let mut pods_stored = 0;
    for ((clients, total), ns) in CONCURRENCY
        .into_iter()
        .zip(settings.creates)
        .zip(namespaces)
    {
        let op = Op::Create {
            namespace: ns.to_string(),
        };
        let row = http_row(backend, "create pod", addr, clients, total, op).await;
        pods_stored += total - row.errors.min(total);
        rows.push(row);
    }
    let rss_after = server.rss_mib();

    let list_pods = settings.list_pods();
    let sample = admin
        .expect(
            Method::GET,
            &format!("{}/pod-000000", pods_path("bench-list")),
            None,
            StatusCode::OK,
        )
        .await?;
    let pod_sizes = (pod("bench-list", "pod-000000", 0, None).len(), sample.len());
    for (clients, total) in CONCURRENCY.into_iter().zip(settings.gets) {
        let op = Op::Get {
            namespace: "bench-list".into(),
            pods: list_pods,
        };
        rows.push(http_row(backend, "get pod", addr, clients, total, op).await);
    }

    for from_cache in [false, true] {
        // An untimed first list checks the count, so timed lists need not parse 10 MiB.
        let path = if from_cache {
            format!("{}?resourceVersion=0", pods_path("bench-list"))
        } else {
            pods_path("bench-list")
        };
        let list = admin
            .expect(Method::GET, &path, None, StatusCode::OK)
            .await?;
        let items = serde_json::from_slice::<serde_json::Value>(&list)?
            .get("items")
            .and_then(|i| i.as_array())
            .map(Vec::len)
            .unwrap_or(0);
        if items != list_pods {
            println!("           ! {path} returned {items} pods, expected {list_pods}");
        }
        let label = format!(
            "list {}k pods{}",
            list_pods / 1000,
            if from_cache { " (rv=0)" } else { "" }
        );
        for (clients, total) in [1, 8].into_iter().zip(settings.lists) {
            let op = Op::List {
                namespace: "bench-list".into(),
                from_cache,
            };
            rows.push(http_row(backend, &label, addr, clients, total, op).await);
        }
        if !from_cache {
            println!(
                "           one list of {list_pods} pods is {:.1} MiB of JSON",
                list.len() as f64 / (1024.0 * 1024.0)
            );
        }
    }

    if let Some(rss) = server.rss_mib() {
        println!("           server RSS after the lists: {rss:.1} MiB");
    }

    let row = fanout(
        backend,
        addr,
        server.pid(),
        "bench-fanout",
        settings.watchers,
        settings.fanout_writes,
    )
    .await?;
    let fanout_complete = row.errors == 0 && row.ops == settings.watchers * settings.fanout_writes;
    rows.push(row);

    let log_problems = server.log_problems();
    drop(server);
    Ok(BackendReport {
        rows,
        rss_baseline,
        rss_after,
        pods_stored,
        fanout_complete,
        pod_sizes,
        log_problems,
    })
}

/// Raw `create`s of 1 KiB values straight into `store`, from `clients` tasks.
async fn raw_row(
    backend: &'static str,
    store: Arc<dyn Storage>,
    prefix: &str,
    clients: usize,
    total: usize,
) -> Row {
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let store = store.clone();
        let prefix = format!("{prefix}/c{clients}/");
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::default();
            for i in (c..total).step_by(clients.max(1)) {
                let t = Instant::now();
                match store
                    .create(&format!("{prefix}{i:06}"), vec![b'v'; RAW_VALUE_BYTES])
                    .await
                {
                    Ok(_) => outcome.latencies.push(t.elapsed()),
                    Err(err) => outcome.fail(err),
                }
            }
            outcome
        }));
    }
    let mut outcome = Outcome::default();
    for task in tasks {
        match task.await {
            Ok(o) => outcome.merge(o),
            Err(err) => outcome.fail(format!("task: {err}")),
        }
    }
    let row = Row {
        backend,
        op: "raw store create 1KiB".into(),
        clients,
        ops: total,
        elapsed: started.elapsed(),
        latencies: outcome.latencies,
        errors: outcome.errors,
        first_error: outcome.first_error,
    };
    row.print();
    row
}

async fn bench_raw(
    backend: &'static str,
    store: Arc<dyn Storage>,
    settings: &Settings,
) -> Vec<Row> {
    // Untimed warm-up, after a pause: the server just killed may still be freeing memory and
    // writing back its files, which showed as a 10x slower first raw row.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..200 {
        if let Err(err) = store
            .create(
                &format!("/rawbench/warm-up/{i}"),
                vec![b'v'; RAW_VALUE_BYTES],
            )
            .await
        {
            println!("           ! raw warm-up create failed: {err}");
            break;
        }
    }
    let mut rows = Vec::new();
    for (clients, total) in CONCURRENCY.into_iter().zip(settings.creates) {
        rows.push(raw_row(backend, store.clone(), "/rawbench", clients, total).await);
    }
    rows
}

// ---------------------------------------------------------------------------------------------

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "NOT MET"
    }
}

fn print_targets(reports: &[(&'static str, BackendReport)], settings: &Settings) {
    let rows: Vec<Row> = reports
        .iter()
        .flat_map(|(_, r)| r.rows.iter().cloned())
        .collect();
    println!();
    println!("targets:");
    if let Some(r) = find(&rows, "embedded", "create pod", 64) {
        let p99 = r.percentile(0.99).as_secs_f64() * 1e3;
        println!(
            "  embedded creates at 64 clients = {:.0}/s (target >= 5000): {}; p99 = {p99:.1} ms \
             (target <= 50): {}",
            r.per_second(),
            verdict(r.per_second() >= 5000.0 && r.errors == 0),
            verdict(p99 <= 50.0),
        );
    }
    for (backend, _) in reports {
        for clients in CONCURRENCY {
            let api = find(&rows, backend, "create pod", clients);
            let raw = find(&rows, backend, "raw store create 1KiB", clients);
            if let (Some(a), Some(r)) = (api, raw) {
                let ratio = a.per_second() / r.per_second().max(f64::MIN_POSITIVE);
                println!(
                    "  {backend:<8} clients={clients:<3} apiserver creates/s / raw puts/s = \
                     {:.0}/{:.0} = {ratio:.2} (target >= 0.5): {}",
                    a.per_second(),
                    r.per_second(),
                    verdict(ratio >= 0.5),
                );
            }
        }
    }
    let fanout_op = format!("fan-out {} writes", settings.fanout_writes);
    for (backend, report) in reports {
        if let Some(r) = find(&rows, backend, &fanout_op, settings.watchers) {
            let p99 = r.percentile(0.99).as_secs_f64() * 1e3;
            println!(
                "  {backend:<8} fan-out to {} watchers: every watcher got every event: {}; \
                 delivery p50 = {:.1} ms, p99 = {p99:.1} ms (target <= 100): {}",
                settings.watchers,
                verdict(report.fanout_complete),
                r.percentile(0.50).as_secs_f64() * 1e3,
                verdict(p99 <= 100.0),
            );
        }
    }
    for (backend, report) in reports {
        match (report.rss_baseline, report.rss_after) {
            (Some(base), Some(after)) if report.pods_stored > 0 => println!(
                "  {backend:<8} RSS: {base:.1} MiB fresh, {after:.1} MiB with {} pods stored \
                 = {:.1} MiB per 10k pods (pod: {} bytes sent, {} bytes as served)",
                report.pods_stored,
                (after - base) * 10_000.0 / report.pods_stored as f64,
                report.pod_sizes.0,
                report.pod_sizes.1,
            ),
            _ => println!("  {backend:<8} RSS: not available"),
        }
    }
    for (backend, report) in reports {
        if !report.log_problems.is_empty() {
            println!();
            println!(
                "{backend}: the server logged {} warnings/errors; the first few:",
                report.log_problems.len()
            );
            for line in report.log_problems.iter().take(5) {
                println!("  {line}");
            }
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    println!(
        "{:<10} {:<28} {:>7} {:>8} {:>10} {:>9} {:>9} {:>9}",
        "backend", "operation", "clients", "ops", "ops/s", "p50 ms", "p99 ms", "max ms"
    );
    let mut reports = Vec::new();

    let embedded = bench_apiserver("embedded", None, &settings).await?;
    let dir = tempfile::tempdir().context("tempdir")?;
    let store: Arc<dyn Storage> = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path()))?);
    let mut embedded = embedded;
    embedded
        .rows
        .extend(bench_raw("embedded", store.clone(), &settings).await);
    drop(store);
    reports.push(("embedded", embedded));

    let etcd = tokio::task::spawn_blocking(test_etcd::Etcd::start)
        .await?
        .context("starting etcd")?;
    let mut report = bench_apiserver("etcd", Some(etcd.endpoints()), &settings).await?;
    let mut config = EtcdConfig::new(etcd.endpoints());
    config.prefix = "/rawbench".into();
    let store: Arc<dyn Storage> = Arc::new(EtcdStore::connect(config).await?);
    report
        .rows
        .extend(bench_raw("etcd", store.clone(), &settings).await);
    drop(store);
    reports.push(("etcd", report));
    drop(etcd);

    print_targets(&reports, &settings);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            creates: [200, 400, 1000],
            gets: [200, 400, 1000],
            lists: [4, 8],
            watchers: 1000,
            fanout_writes: 5,
        }
    } else {
        Settings {
            creates: [1000, 4000, 10_000],
            gets: [2000, 8000, 20_000],
            lists: [8, 16],
            watchers: 1000,
            fanout_writes: 50,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(settings))
}
