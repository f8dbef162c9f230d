//! Container probes (upstream's prober manager, `pkg/kubelet/prober`): one async worker per
//! (pod uid, container name, probe kind) while that container runs, probing every
//! `periodSeconds` after `initialDelaySeconds`, and a result per container instance (container
//! ID), so a restarted container starts over. Readiness starts as failure, liveness as success,
//! startup as "not started"; a result only flips after `successThreshold` / `failureThreshold`
//! consecutive outcomes. While a startup probe has not succeeded, liveness and readiness do not
//! probe. Handlers: exec (CRI ExecSync), httpGet, tcpSocket, grpc (grpc.health.v1 Health/Check
//! over HTTP/2, SERVING is success). HTTPS probes do not verify the server's certificate, as
//! upstream's.
//!
//! The pod worker reads the verdicts ([`ProbeManager::verdicts`], [`ProbeManager::kill_reason`])
//! and does the killing; the manager only wakes it ([`ProbeManager::set_wake`]) when a result
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::events::CoreEventRecorder;
use cri::v1::ExecSyncRequest;
use cri::RuntimeService;
use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::task::AbortHandle;

use crate::kuberuntime::actions::{RuntimePodStatus, State};

/// Upstream's prober User-Agent.
pub const USER_AGENT: &str = "kube-probe/1.33";

/// Called with a pod's uid when one of its probe results changes.
pub type Wake = Arc<dyn Fn(&str) + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    /// As upstream's events say it ("Liveness probe failed: ...").
    pub fn title(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }

    fn of(self, c: &Container) -> Option<&Probe> {
        match self {
            ProbeKind::Liveness => c.liveness_probe.as_ref(),
            ProbeKind::Readiness => c.readiness_probe.as_ref(),
            ProbeKind::Startup => c.startup_probe.as_ref(),
        }
    }
}

const KINDS: [ProbeKind; 3] = [
    ProbeKind::Startup,
    ProbeKind::Liveness,
    ProbeKind::Readiness,
];

/// What one probe run said.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Success,
    Failure(String),
    /// The prober itself failed (e.g. exec on a vanished container): the result is thrown away.
    Error(String),
}

type Key = (String, String, ProbeKind);

struct WorkerEntry {
    container_id: String,
    /// The current result; None while unknown (startup before its verdict).
    result: Option<bool>,
    abort: AbortHandle,
}

#[derive(Default)]
struct Inner {
    workers: HashMap<Key, WorkerEntry>,
    /// Per pod uid: container name -> (has readiness probe, has startup probe).
    declared: HashMap<String, HashMap<String, (bool, bool)>>,
}

/// The probe workers and results of one node's pods.
pub struct ProbeManager {
    runtime: Arc<dyn RuntimeService>,
    recorder: Option<CoreEventRecorder>,
    wake: Mutex<Option<Wake>>,
    inner: Mutex<Inner>,
}

impl Drop for ProbeManager {
    fn drop(&mut self) {
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        for w in inner.workers.values() {
            w.abort.abort();
        }
    }
}

/// A container that may carry probes: regular containers and sidecars.
fn probed_containers(pod: &Pod) -> Vec<&Container> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers.iter().chain(sidecars).collect()
}

impl ProbeManager {
    pub fn new(
        runtime: Arc<dyn RuntimeService>,
        recorder: Option<CoreEventRecorder>,
    ) -> ProbeManager {
        ProbeManager {
            runtime,
            recorder,
            wake: Mutex::default(),
            inner: Mutex::default(),
        }
    }

    /// Who to tell when a result changes (the pod workers, set once they exist).
    pub fn set_wake(&self, wake: Wake) {
        *self.wake.lock().unwrap_or_else(|e| e.into_inner()) = Some(wake);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a worker for each probe of a newly running container instance and stops the
    /// workers of instances that no longer run.
    pub fn update_pod(
        self: &Arc<Self>,
        pod: &Pod,
        status: &RuntimePodStatus,
        pod_ip: Option<&str>,
    ) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if uid.is_empty() {
            return;
        }
        let pod_arc = Arc::new(pod.clone());
        let mut inner = self.lock();
        let declared: HashMap<String, (bool, bool)> = probed_containers(pod)
            .iter()
            .filter(|c| {
                c.readiness_probe.is_some()
                    || c.startup_probe.is_some()
                    || c.liveness_probe.is_some()
            })
            .map(|c| {
                (
                    c.name.clone(),
                    (c.readiness_probe.is_some(), c.startup_probe.is_some()),
                )
            })
            .collect();
        inner.declared.insert(uid.clone(), declared);
        for c in probed_containers(pod) {
            let running = status.latest(&c.name).filter(|r| r.state == State::Running);
            for kind in KINDS {
                let key = (uid.clone(), c.name.clone(), kind);
                let Some(probe) = kind.of(c) else {
                    if let Some(old) = inner.workers.remove(&key) {
                        old.abort.abort();
                    }
                    continue;
                };
                let Some(instance) = running else {
                    if let Some(old) = inner.workers.remove(&key) {
                        old.abort.abort();
                    }
                    continue;
                };
                if inner
                    .workers
                    .get(&key)
                    .is_some_and(|w| w.container_id == instance.id)
                {
                    continue;
                }
                if let Some(old) = inner.workers.remove(&key) {
                    old.abort.abort();
                }
                let worker = Worker {
                    manager: Arc::downgrade(self),
                    key: key.clone(),
                    kind,
                    probe: probe.clone(),
                    container: c.clone(),
                    container_id: instance.id.clone(),
                    started_at: instance.started_at,
                    pod: pod_arc.clone(),
                    pod_ip: pod_ip.unwrap_or_default().to_string(),
                    gated: kind != ProbeKind::Startup && c.startup_probe.is_some(),
                };
                let abort = tokio::spawn(worker.run()).abort_handle();
                let result = match kind {
                    ProbeKind::Liveness => Some(true),
                    ProbeKind::Readiness => Some(false),
                    ProbeKind::Startup => None,
                };
                inner.workers.insert(
                    key,
                    WorkerEntry {
                        container_id: instance.id.clone(),
                        result,
                        abort,
                    },
                );
            }
        }
    }

    fn result(&self, uid: &str, name: &str, kind: ProbeKind) -> Option<bool> {
        self.lock()
            .workers
            .get(&(uid.to_string(), name.to_string(), kind))
            .and_then(|w| w.result)
    }

    /// (ready, started) for convert's `probes_of`: None when the container has no such probe;
    /// readiness is false until its first success, started false until the startup probe's.
    pub fn verdicts(&self, uid: &str, container_name: &str) -> (Option<bool>, Option<bool>) {
        let (has_readiness, has_startup) = self
            .lock()
            .declared
            .get(uid)
            .and_then(|d| d.get(container_name).copied())
            .unwrap_or((false, false));
        let ready = has_readiness
            .then(|| self.result(uid, container_name, ProbeKind::Readiness) == Some(true));
        let started =
            has_startup.then(|| self.result(uid, container_name, ProbeKind::Startup) == Some(true));
        (ready, started)
    }

    fn failed(&self, uid: &str, container_id: &str, kind: ProbeKind) -> bool {
        self.lock().workers.iter().any(|((u, _, k), w)| {
            u == uid && *k == kind && w.container_id == container_id && w.result == Some(false)
        })
    }

    /// Whether the instance's liveness probe failed `failureThreshold` times in a row.
    pub fn liveness_failed(&self, uid: &str, container_id: &str) -> bool {
        self.failed(uid, container_id, ProbeKind::Liveness)
    }

    /// Whether the instance's startup probe failed `failureThreshold` times in a row.
    pub fn startup_failed(&self, uid: &str, container_id: &str) -> bool {
        self.failed(uid, container_id, ProbeKind::Startup)
    }

    /// Why the instance must be killed, as upstream's computePodActions words it
    /// ("failed liveness probe"), or None.
    pub fn kill_reason(&self, uid: &str, container_id: &str) -> Option<&'static str> {
        if self.liveness_failed(uid, container_id) {
            Some("failed liveness probe")
        } else if self.startup_failed(uid, container_id) {
            Some("failed startup probe")
        } else {
            None
        }
    }

    /// Stops every worker of the pod and forgets its results.
    pub fn remove_pod(&self, uid: &str) {
        let mut inner = self.lock();
        inner.declared.remove(uid);
        inner.workers.retain(|(u, _, _), w| {
            if u == uid {
                w.abort.abort();
                false
            } else {
                true
            }
        });
    }

    /// How many workers run (for tests).
    pub fn worker_count(&self) -> usize {
        self.lock().workers.len()
    }

    /// Stores a result; true when it changed.
    fn set_result(&self, key: &Key, container_id: &str, result: bool) -> bool {
        let mut inner = self.lock();
        match inner.workers.get_mut(key) {
            Some(w) if w.container_id == container_id && w.result != Some(result) => {
                w.result = Some(result);
                true
            }
            _ => false,
        }
    }

    fn wake(&self, uid: &str) {
        let wake = self.wake.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(wake) = wake {
            wake(uid);
        }
    }
}

/// One probe of one container instance.
struct Worker {
    manager: std::sync::Weak<ProbeManager>,
    key: Key,
    kind: ProbeKind,
    probe: Probe,
    container: Container,
    container_id: String,
    /// Nanoseconds since the epoch.
    started_at: i64,
    pod: Arc<Pod>,
    pod_ip: String,
    /// Liveness/readiness of a container with a startup probe: wait for it.
    gated: bool,
}

fn seconds(v: Option<i32>, default: i32, min: i32) -> u64 {
    u64::try_from(v.unwrap_or(default).max(min)).unwrap_or(0)
}

impl Worker {
    async fn run(self) {
        let period = Duration::from_secs(seconds(self.probe.period_seconds, 10, 1));
        let timeout = Duration::from_secs(seconds(self.probe.timeout_seconds, 1, 1));
        let success_threshold = seconds(self.probe.success_threshold, 1, 1);
        let failure_threshold = seconds(self.probe.failure_threshold, 3, 1);
        let initial = i64::from(self.probe.initial_delay_seconds.unwrap_or(0).max(0));
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0);
        let ready_at = self
            .started_at
            .saturating_add(initial.saturating_mul(1_000_000_000));
        if ready_at > now {
            tokio::time::sleep(Duration::from_nanos(
                u64::try_from(ready_at - now).unwrap_or(0),
            ))
            .await;
        }
        let uid = self.key.0.clone();
        let mut last: Option<bool> = None;
        let mut run = 0u64;
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(manager) = self.manager.upgrade() else {
                return;
            };
            if self.gated {
                let started = manager.result(&uid, &self.container.name, ProbeKind::Startup);
                if started != Some(true) {
                    continue;
                }
            }
            let outcome = self.probe_once(&manager, timeout).await;
            let success = match &outcome {
                Outcome::Success => true,
                Outcome::Failure(output) => {
                    self.event(
                        &manager,
                        &format!("{} probe failed: {output}", self.kind.title()),
                    );
                    false
                }
                Outcome::Error(err) => {
                    self.event(
                        &manager,
                        &format!("{} probe errored: {err}", self.kind.title()),
                    );
                    continue;
                }
            };
            if last == Some(success) {
                run += 1;
            } else {
                last = Some(success);
                run = 1;
            }
            let threshold = if success {
                success_threshold
            } else {
                failure_threshold
            };
            if run < threshold {
                continue;
            }
            if manager.set_result(&self.key, &self.container_id, success) {
                manager.wake(&uid);
            }
            // A started container is never probed for startup again; a failed liveness or
            // startup probe waits for the pod worker to kill this instance.
            let done = match self.kind {
                ProbeKind::Startup => true,
                ProbeKind::Liveness => !success,
                ProbeKind::Readiness => false,
            };
            if done {
                return;
            }
        }
    }

    fn event(&self, manager: &ProbeManager, message: &str) {
        tracing::debug!(container = %self.container.name, %message, "probe");
        if let Some(r) = &manager.recorder {
            let mut reference = client::events::object_reference(self.pod.as_ref());
            reference.field_path = Some(field_path(&self.pod, &self.container.name));
            r.warning(&reference, "Unhealthy", message);
        }
    }

    async fn probe_once(&self, manager: &ProbeManager, timeout: Duration) -> Outcome {
        let p = &self.probe;
        if let Some(exec) = &p.exec {
            return exec_probe(
                manager.runtime.as_ref(),
                &self.container_id,
                exec.command.clone().unwrap_or_default(),
                timeout,
            )
            .await;
        }
        if let Some(http) = &p.http_get {
            let Some(port) = resolve_port(&http.port, &self.container) else {
                return Outcome::Error(format!("unable to find port {:?}", http.port));
            };
            let https = http
                .scheme
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("HTTPS"));
            let host = http
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| self.pod_ip.clone());
            let headers: Vec<(String, String)> = http
                .http_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect();
            let path = http.path.clone().unwrap_or_default();
            return http_probe_scheme(https, &host, port, &path, &headers, timeout).await;
        }
        if let Some(tcp) = &p.tcp_socket {
            let Some(port) = resolve_port(&tcp.port, &self.container) else {
                return Outcome::Error(format!("unable to find port {:?}", tcp.port));
            };
            let host = tcp
                .host
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| self.pod_ip.clone());
            return tcp_probe(&host, port, timeout).await;
        }
        if let Some(grpc) = &p.grpc {
            let Ok(port) = u16::try_from(grpc.port) else {
                return Outcome::Error(format!("invalid port {}", grpc.port));
            };
            let service = grpc.service.clone().unwrap_or_default();
            // Upstream's gRPC probe has no host: always the pod's IP.
            return grpc_probe(&self.pod_ip, port, &service, timeout).await;
        }
        Outcome::Error("missing probe handler".into())
    }
}

/// The event field path of a container (`spec.containers{name}` or `spec.initContainers{name}`).
pub fn field_path(pod: &Pod, name: &str) -> String {
    let is_init = pod
        .spec
        .as_ref()
        .is_some_and(|s| s.init_containers.iter().flatten().any(|c| c.name == name));
    if is_init {
        format!("spec.initContainers{{{name}}}")
    } else {
        format!("spec.containers{{{name}}}")
    }
}

/// A port number, or a named port of the container.
pub fn resolve_port(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|p| *p > 0),
        IntOrString::String(name) => {
            if let Ok(n) = name.parse::<u16>() {
                return Some(n);
            }
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Go's dial error text ("dial tcp 127.0.0.1:1: connect: connection refused").
fn dial_error(addr: &str, err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => {
            format!("dial tcp {addr}: connect: connection refused")
        }
        _ => format!("dial tcp {addr}: {err}"),
    }
}

/// Connects within the timeout.
pub async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> Outcome {
    let addr = host_port(host, port);
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => Outcome::Success,
        Ok(Err(err)) => Outcome::Failure(dial_error(&addr, &err)),
        Err(_) => Outcome::Failure(format!("dial tcp {addr}: i/o timeout")),
    }
}

/// An HTTP GET; 200..399 is success.
pub async fn http_probe(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    http_probe_scheme(false, host, port, path, headers, timeout).await
}

/// An HTTP or HTTPS GET; 200..399 is success.
pub async fn http_probe_scheme(
    https: bool,
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    let addr = host_port(host, port);
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let scheme = if https { "https" } else { "http" };
    let url = format!("{scheme}://{addr}{path}");
    let get = async {
        let tcp = tokio::net::TcpStream::connect(&addr)
            .await
            .map_err(|err| dial_error(&addr, &err))?;
        if !https {
            return http_get(tcp, &addr, &path, headers).await;
        }
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .map_err(|err| err.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(insecure_tls()?)
            .connect(name, tcp)
            .await
            .map_err(|err| err.to_string())?;
        http_get(tls, &addr, &path, headers).await
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(Ok(code)) if (200..400).contains(&code) => Outcome::Success,
        Ok(Ok(code)) => Outcome::Failure(format!("HTTP probe failed with statuscode: {code}")),
        Ok(Err(err)) => Outcome::Failure(format!("Get \"{url}\": {err}")),
        Err(_) => Outcome::Failure(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

/// A TLS client that accepts any server certificate (upstream's probes skip verification)
/// but still checks the handshake's signatures.
fn insecure_tls() -> Result<Arc<rustls::ClientConfig>, String> {
    serving::insecure::unverified_client_config(&[])
}

async fn http_get<I>(
    io: I,
    addr: &str,
    path: &str,
    headers: &[(String, String)],
) -> Result<u16, String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|err| err.to_string())?;
    let conn = tokio::spawn(conn);
    let mut req = http::Request::get(path);
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("host") {
        req = req.header(http::header::HOST, addr);
    }
    if !has("user-agent") {
        req = req.header(http::header::USER_AGENT, USER_AGENT);
    }
    if !has("accept") {
        req = req.header(http::header::ACCEPT, "*/*");
    }
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|err| err.to_string())?;
    let result = sender
        .send_request(req)
        .await
        .map(|resp| resp.status().as_u16())
        .map_err(|err| err.to_string());
    conn.abort();
    result
}

/// grpc.health.v1 HealthCheckResponse.ServingStatus names.
fn serving_status_name(status: u64) -> String {
    match status {
        0 => "UNKNOWN".into(),
        1 => "SERVING".into(),
        2 => "NOT_SERVING".into(),
        3 => "SERVICE_UNKNOWN".into(),
        n => n.to_string(),
    }
}

/// gRPC status code names, for failure messages.
fn grpc_code_name(code: &str) -> &str {
    match code {
        "1" => "Canceled",
        "2" => "Unknown",
        "3" => "InvalidArgument",
        "4" => "DeadlineExceeded",
        "5" => "NotFound",
        "7" => "PermissionDenied",
        "12" => "Unimplemented",
        "13" => "Internal",
        "14" => "Unavailable",
        "16" => "Unauthenticated",
        other => other,
    }
}

/// Calls grpc.health.v1.Health/Check for `service`; SERVING is success (upstream's messages).
pub async fn grpc_probe(host: &str, port: u16, service: &str, timeout: Duration) -> Outcome {
    let addr = host_port(host, port);
    match tokio::time::timeout(timeout, grpc_check(&addr, service, timeout)).await {
        Ok(Ok(1)) => Outcome::Success,
        Ok(Ok(status)) => Outcome::Failure(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(status)
        )),
        Ok(Err(err)) => Outcome::Failure(err),
        Err(_) => Outcome::Failure(format!(
            "timeout: health rpc did not complete within {}",
            crate::kuberuntime::go_duration(timeout)
        )),
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// The `status` field (1, varint) of a HealthCheckResponse; absent is UNKNOWN (0).
fn health_status(msg: &[u8]) -> Result<u64, String> {
    let mut rest = msg;
    let mut status = 0;
    while !rest.is_empty() {
        let (tag, n) = get_varint(rest).ok_or("malformed health response")?;
        rest = &rest[n..];
        match tag & 7 {
            0 => {
                let (v, n) = get_varint(rest).ok_or("malformed health response")?;
                rest = &rest[n..];
                if tag >> 3 == 1 {
                    status = v;
                }
            }
            2 => {
                let (len, n) = get_varint(rest).ok_or("malformed health response")?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| l.checked_add(n))
                    .filter(|e| *e <= rest.len())
                    .ok_or("malformed health response")?;
                rest = &rest[end..];
            }
            _ => return Err("malformed health response".into()),
        }
    }
    Ok(status)
}

async fn grpc_check(addr: &str, service: &str, timeout: Duration) -> Result<u64, String> {
    use http_body_util::BodyExt;
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|err| {
        format!(
            "timeout: failed to connect service {addr:?} within {}: {}",
            crate::kuberuntime::go_duration(timeout),
            dial_error(addr, &err)
        )
    })?;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .map_err(|err| format!("error: health rpc probe failed: {err}"))?;
    let conn = tokio::spawn(conn);
    let mut msg = Vec::new();
    if !service.is_empty() {
        msg.push(0x0a);
        put_varint(&mut msg, service.len() as u64);
        msg.extend_from_slice(service.as_bytes());
    }
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(msg.len()).unwrap_or(u32::MAX).to_be_bytes());
    body.extend_from_slice(&msg);
    let req = http::Request::post(format!("http://{addr}/grpc.health.v1.Health/Check"))
        .header(http::header::CONTENT_TYPE, "application/grpc")
        .header(http::header::TE, "trailers")
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .map_err(|err| err.to_string())?;
    let result = async {
        let resp = sender
            .send_request(req)
            .await
            .map_err(|err| format!("error: health rpc probe failed: {err}"))?;
        let (parts, body) = resp.into_parts();
        let collected = body
            .collect()
            .await
            .map_err(|err| format!("error: health rpc probe failed: {err}"))?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let header = |name: &str| {
            trailers
                .get(name)
                .or_else(|| parts.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let code = header("grpc-status").unwrap_or_else(|| "2".into());
        if code != "0" {
            return Err(format!(
                "error: health rpc probe failed: rpc error: code = {} desc = {}",
                grpc_code_name(&code),
                header("grpc-message").unwrap_or_default()
            ));
        }
        let data = collected.to_bytes();
        let msg = data
            .get(5..)
            .ok_or("error: health rpc probe failed: empty response")?;
        health_status(msg)
    }
    .await;
    conn.abort();
    result
}

/// Runs the command in the container through CRI ExecSync; exit code 0 is success.
pub async fn exec_probe(
    runtime: &dyn RuntimeService,
    container_id: &str,
    cmd: Vec<String>,
    timeout: Duration,
) -> Outcome {
    let display = format!("{cmd:?}");
    let req = ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd,
        timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
    };
    // The runtime enforces the timeout; ours is a backstop for one that does not.
    match tokio::time::timeout(timeout + Duration::from_secs(1), runtime.exec_sync(req)).await {
        Ok(Ok(resp)) if resp.exit_code == 0 => Outcome::Success,
        Ok(Ok(resp)) => {
            let mut out = String::from_utf8_lossy(&resp.stdout).into_owned();
            out.push_str(&String::from_utf8_lossy(&resp.stderr));
            Outcome::Failure(out)
        }
        Ok(Err(err)) => Outcome::Error(err.to_string()),
        Err(_) => Outcome::Failure(format!("command {display} timed out")),
    }
}

#[cfg(test)]
mod tests;
