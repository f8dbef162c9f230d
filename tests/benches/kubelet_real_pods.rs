//! Pod startup latency with a real containerd (issue 8's benchmark, the half the hollow-node
//! bench in `kubelet/benches/pod_startup.rs` cannot give): the release `kube-apiserver`
//! (embedded store) and the release kubelet, driving the e2e harness's containerd (its own
//! network namespace and temporary directory, busybox and pause images already imported, a CNI
//! bridge). Pods run busybox `sleep 3600` with `imagePullPolicy: IfNotPresent` (image present,
//! no pull), are created already bound with `spec.nodeName` (no scheduler), one after another
//! at a fixed interval, and a pod's startup latency is the time from sending its create to
//! seeing it Running in a watch, as upstream's pod startup SLO measures it. Also the kubelet's
//! RSS idle, with the first batch and with the whole lot, and containerd's (plus its shims') for
//! context. Figures are printed with the SLO (p99 <= 5 s) and the target (p99 <= 2 s), never
//! asserted.
//!
//! `cargo build --release -p kubelet -p apiserver --bins` first, then
//! `cargo bench -p e2e --bench kubelet_real_pods` (30 pods, then up to 100 in all, 200 ms apart);
//! `-- --pods N --total M --interval-ms I --scale-timeout-s S` for other sizes, `--kubelet-log
//! PATH` and `--containerd-log PATH` to keep the logs.
//!
//! The harness starts the debug binaries it finds under `$CARGO_TARGET_DIR/debug`; to run the
//! release ones through it unchanged, this bench points `CARGO_TARGET_DIR` at a temporary
//! directory whose `debug/` holds links to `target/release/{kubelet,kube-apiserver}`
//! (`--debug-binaries` skips that).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use client::{Api, Client, ClientOptions, WatchEvent};
use e2e::containerd::{Containerd, BUSYBOX_IMAGE};
use e2e::{free_port, workspace_root, ApiServer, Backend, Daemon};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, ListParams, WatchParams};
use serde_json::json;

const NODE: &str = "node1";
const NAMESPACE: &str = "default";
const SLO_P99_S: f64 = 5.0;
const TARGET_P99_S: f64 = 2.0;
const NODE_READY_TIMEOUT: Duration = Duration::from_secs(120);
const FIRST_BATCH_TIMEOUT: Duration = Duration::from_secs(300);
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

struct Settings {
    /// Pods in the measured batch.
    pods: usize,
    /// Pods in all after scaling up.
    total: usize,
    /// Time between two creates.
    interval: Duration,
    /// How long the scale-up may take before the bench reports what it reached.
    scale_timeout: Duration,
    /// Run the debug binaries the harness finds by default instead of the release ones.
    debug_binaries: bool,
    /// Where to copy the kubelet's log before the harness removes it.
    kubelet_log: Option<PathBuf>,
    /// Where to copy containerd's log (its CRI calls, timestamped) before the harness removes it.
    containerd_log: Option<PathBuf>,
}

fn settings() -> anyhow::Result<Settings> {
    let mut s = Settings {
        pods: 30,
        total: 100,
        interval: Duration::from_millis(200),
        scale_timeout: Duration::from_secs(240),
        debug_binaries: false,
        kubelet_log: None,
        containerd_log: None,
    };
    let mut args = std::env::args().skip(1);
    let number = |v: Option<String>, flag: &str| -> anyhow::Result<u64> {
        v.and_then(|v| v.parse().ok())
            .with_context(|| format!("{flag} takes a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--pods" => s.pods = number(args.next(), "--pods")? as usize,
            "--total" => s.total = number(args.next(), "--total")? as usize,
            "--interval-ms" => {
                s.interval = Duration::from_millis(number(args.next(), "--interval-ms")?)
            }
            "--scale-timeout-s" => {
                s.scale_timeout = Duration::from_secs(number(args.next(), "--scale-timeout-s")?)
            }
            "--debug-binaries" => s.debug_binaries = true,
            "--kubelet-log" => {
                s.kubelet_log = Some(args.next().context("--kubelet-log takes a path")?.into())
            }
            "--containerd-log" => {
                s.containerd_log =
                    Some(args.next().context("--containerd-log takes a path")?.into())
            }
            // cargo bench passes `--bench`.
            _ => {}
        }
    }
    s.total = s.total.max(s.pods);
    Ok(s)
}

/// Makes the harness's `binary()` find the release daemons: a directory whose `debug/` links to
/// `<target>/release/<name>`, set as `CARGO_TARGET_DIR` (read by the harness at each start).
fn use_release_binaries(dir: &Path) -> anyhow::Result<()> {
    let workspace = workspace_root();
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    let debug = dir.join("debug");
    std::fs::create_dir_all(&debug).with_context(|| format!("creating {}", debug.display()))?;
    for (name, package) in [("kubelet", "kubelet"), ("kube-apiserver", "apiserver")] {
        let release = target.join("release").join(name);
        if !release.is_file() {
            bail!(
                "{} does not exist: build it first with `cargo build --release -p {package} --bins` \
                 (or run with `-- --debug-binaries`)",
                release.display()
            );
        }
        std::os::unix::fs::symlink(&release, debug.join(name))
            .with_context(|| format!("linking {}", release.display()))?;
    }
    // Single-threaded here: nothing else reads the environment yet.
    std::env::set_var("CARGO_TARGET_DIR", dir);
    Ok(())
}

fn rss_mib(pid: u32) -> f64 {
    kib_field(&format!("/proc/{pid}/status"), "VmRSS:")
}

/// Proportional set size: shared pages (the shims' common binary) counted once in all.
fn pss_mib(pid: u32) -> f64 {
    kib_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// A `<field> <n> kB` line of a /proc file, in MiB.
fn kib_field(path: &str, field: &str) -> f64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Count, summed RSS and summed PSS (MiB) of the containerd shims serving `socket` (their
/// command line names it with `-address`).
fn shims_memory_mib(socket: &Path) -> (usize, f64, f64) {
    let socket = socket.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0, f64::NAN, f64::NAN);
    };
    let mut count = 0;
    let mut rss = 0.0;
    let mut pss = 0.0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args
            .first()
            .is_some_and(|a| a.ends_with("containerd-shim-runc-v2"));
        if is_shim && args.contains(&socket) {
            let (r, p) = (rss_mib(pid), pss_mib(pid));
            if r.is_finite() && p.is_finite() {
                count += 1;
                rss += r;
                pss += p;
            }
        }
    }
    (count, rss, pss)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn pod(name: &str) -> anyhow::Result<Pod> {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"bench": "kubelet-real-pods"}},
        "spec": {
            "nodeName": NODE,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "containers": [{
                "name": "c",
                "image": BUSYBOX_IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"],
            }],
        },
    }))
    .context("building the pod")
}

/// When each pod was first seen Running, and which failed, as the watch saw them.
#[derive(Default)]
struct Seen {
    running: HashMap<String, Instant>,
    failed: HashMap<String, String>,
}

/// Watches the pods until the bench ends, reopening the watch when the server closes it.
async fn watch_pods(pods: Api<Pod>, seen: Arc<Mutex<Seen>>) -> anyhow::Result<()> {
    loop {
        let mut stream = Box::pin(pods.watch(&WatchParams::default(), "0").await?);
        while let Some(event) = stream.next().await {
            let (WatchEvent::Added(p) | WatchEvent::Modified(p)) = event? else {
                continue;
            };
            let name = p.metadata.name.clone().unwrap_or_default();
            let status = p.status.as_ref();
            let phase = status.and_then(|s| s.phase.as_deref());
            let mut seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            match phase {
                Some("Running") => {
                    seen.running.entry(name).or_insert_with(Instant::now);
                }
                Some("Failed") => {
                    let why = status
                        .and_then(|s| s.message.clone().or_else(|| s.reason.clone()))
                        .unwrap_or_default();
                    seen.failed.entry(name).or_insert(why);
                }
                _ => {}
            }
        }
    }
}

/// Creates pods `from..to`, `interval` apart; returns when each create was sent.
async fn create_pods(
    pods: &Api<Pod>,
    from: usize,
    to: usize,
    interval: Duration,
    sent: &mut HashMap<String, Instant>,
) -> anyhow::Result<()> {
    let mut next = Instant::now();
    for i in from..to {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let name = format!("real-{i:03}");
        let spec = pod(&name)?;
        sent.insert(name.clone(), Instant::now());
        pods.create(&spec)
            .await
            .with_context(|| format!("creating {name}"))?;
    }
    Ok(())
}

/// Waits until every pod in `names` was seen Running (true), or `timeout` passes (false),
/// printing progress every 5 s.
async fn wait_running(
    seen: &Arc<Mutex<Seen>>,
    names: &[String],
    timeout: Duration,
    what: &str,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let (running, failed) = {
            let seen = seen.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            let running = names
                .iter()
                .filter(|n| seen.running.contains_key(*n))
                .count();
            let failed: Vec<String> = names
                .iter()
                .filter_map(|n| seen.failed.get(n).map(|why| format!("{n}: {why}")))
                .collect();
            (running, failed)
        };
        if !failed.is_empty() {
            bail!("{what}: pods failed: {}", failed.join("; "));
        }
        if running == names.len() {
            return Ok(true);
        }
        if started.elapsed() > timeout {
            return Ok(false);
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            eprintln!(
                "  ... {what}: {running}/{} Running after {:.0} s",
                names.len(),
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sorted startup latencies (s) of the pods in `names` that were seen Running.
fn latencies(
    seen: &Arc<Mutex<Seen>>,
    sent: &HashMap<String, Instant>,
    names: &[String],
) -> Vec<f64> {
    let Ok(seen) = seen.lock() else {
        return Vec::new();
    };
    let mut l: Vec<f64> = names
        .iter()
        .filter_map(|n| {
            let at = seen.running.get(n)?;
            Some(at.duration_since(*sent.get(n)?).as_secs_f64())
        })
        .collect();
    l.sort_by(f64::total_cmp);
    l
}

fn report_latencies(label: &str, l: &[f64]) {
    let (p50, p99) = (percentile(l, 0.50), percentile(l, 0.99));
    let max = l.last().copied().unwrap_or(f64::NAN);
    println!(
        "  {label}: {} pods, p50 {p50:.3} s, p90 {:.3} s, p99 {p99:.3} s, max {max:.3} s; \
         SLO p99 <= {SLO_P99_S} s: {} ({:.2}x); target p99 <= {TARGET_P99_S} s: {} ({:.2}x)",
        l.len(),
        percentile(l, 0.90),
        if p99 <= SLO_P99_S { "met" } else { "missed" },
        p99 / SLO_P99_S,
        if p99 <= TARGET_P99_S { "met" } else { "missed" },
        p99 / TARGET_P99_S,
    );
}

async fn node_ready(client: &Client) -> anyhow::Result<()> {
    let nodes: Api<Node> = client.api(None);
    let started = Instant::now();
    loop {
        let ready = nodes.get_opt(NODE).await?.is_some_and(|n| {
            n.status
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        });
        if ready {
            return Ok(());
        }
        if started.elapsed() > NODE_READY_TIMEOUT {
            bail!("node {NODE} not Ready after {NODE_READY_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Pids {
    kubelet: u32,
    containerd: u32,
    socket: PathBuf,
}

impl Pids {
    fn rss_line(&self, label: &str) -> String {
        let (shims, shims_rss, shims_pss) = shims_memory_mib(&self.socket);
        format!(
            "  RSS {label}: kubelet {:.1} MiB; containerd {:.1} MiB; {shims} shims {shims_rss:.1} MiB \
             (PSS {shims_pss:.1} MiB)",
            rss_mib(self.kubelet),
            rss_mib(self.containerd),
        )
    }
}

async fn bench(
    s: &Settings,
    server: &ApiServer,
    pids: &Pids,
    kubelet_started: Instant,
) -> anyhow::Result<()> {
    let client = Client::new(
        kube::Config::new(server.url().parse()?),
        ClientOptions::new("kubelet-real-pods-bench").rate(-1.0, 0),
    )?;
    node_ready(&client).await?;
    let ready_after = kubelet_started.elapsed();
    eprintln!(
        "node {NODE} Ready {:.1} s after the kubelet started",
        ready_after.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = pids.rss_line("idle (node Ready, no pods)");
    eprintln!("{idle}");

    let pods: Api<Pod> = client.api(Some(NAMESPACE));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let watcher = tokio::spawn(watch_pods(pods.clone(), seen.clone()));
    let mut sent = HashMap::new();

    eprintln!(
        "creating {} pods, one every {} ms ...",
        s.pods,
        s.interval.as_millis()
    );
    let started = Instant::now();
    create_pods(&pods, 0, s.pods, s.interval, &mut sent).await?;
    let first: Vec<String> = (0..s.pods).map(|i| format!("real-{i:03}")).collect();
    if !wait_running(&seen, &first, FIRST_BATCH_TIMEOUT, "first batch").await? {
        bail!(
            "the first {} pods were not all Running after {FIRST_BATCH_TIMEOUT:?}",
            s.pods
        );
    }
    let first_all = started.elapsed();
    let first_latencies = latencies(&seen, &sent, &first);
    eprintln!(
        "all {} Running {:.1} s after the first create",
        s.pods,
        first_all.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let with_first = pids.rss_line(&format!("with {} pods", s.pods));
    eprintln!("{with_first}");

    let mut scale_report = None;
    if s.total > s.pods {
        eprintln!(
            "scaling to {} pods, one every {} ms ...",
            s.total,
            s.interval.as_millis()
        );
        let scale_started = Instant::now();
        create_pods(&pods, s.pods, s.total, s.interval, &mut sent).await?;
        let rest: Vec<String> = (s.pods..s.total).map(|i| format!("real-{i:03}")).collect();
        let remaining = s.scale_timeout.saturating_sub(scale_started.elapsed());
        let all = wait_running(&seen, &rest, remaining, "scale-up").await?;
        let took = scale_started.elapsed();
        let rest_latencies = latencies(&seen, &sent, &rest);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let reached = s.pods + rest_latencies.len();
        let rss = pids.rss_line(&format!("with {reached} pods"));
        eprintln!("{rss}");
        scale_report = Some((all, took, reached, rest_latencies, rss));
    }

    eprintln!("deleting the pods ...");
    let delete_started = Instant::now();
    let names: Vec<String> = sent.keys().cloned().collect();
    for name in &names {
        pods.delete(name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting {name}"))?;
    }
    let selector = ListParams::default().labels("bench=kubelet-real-pods");
    loop {
        let left = pods.list(&selector).await?.items.len();
        if left == 0 {
            break;
        }
        if delete_started.elapsed() > DELETE_TIMEOUT {
            eprintln!("{left} pods still not gone after {DELETE_TIMEOUT:?}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let deleted_after = delete_started.elapsed();
    watcher.abort();

    println!(
        "kubelet real-pod startup benchmark (release kubelet and kube-apiserver (embedded store), \
         containerd 1.6 + runc + CNI bridge in its own netns; busybox `sleep 3600`, image present)"
    );
    println!(
        "  node Ready {:.1} s after the kubelet started",
        ready_after.as_secs_f64()
    );
    println!("{idle}");
    println!(
        "  {} pods created one after another, one every {} ms, all Running {:.1} s after the first create",
        s.pods,
        s.interval.as_millis(),
        first_all.as_secs_f64()
    );
    report_latencies(
        "startup latency (create sent -> Running seen by watch)",
        &first_latencies,
    );
    println!("{with_first}");
    if let Some((all, took, reached, rest_latencies, rss)) = scale_report {
        println!(
            "  scale-up to {} pods ({} more, same pace): {} Running after {:.1} s{}",
            s.total,
            s.total - s.pods,
            reached,
            took.as_secs_f64(),
            if all {
                String::new()
            } else {
                format!(
                    " (stopped waiting at {} s: {} of {} reached)",
                    s.scale_timeout.as_secs(),
                    reached,
                    s.total
                )
            }
        );
        report_latencies(
            &format!("startup latency of pods {}..{}", s.pods + 1, s.total),
            &rest_latencies,
        );
        println!("{rss}");
    }
    println!(
        "  all {} pods deleted and gone after {:.1} s",
        names.len(),
        deleted_after.as_secs_f64()
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let s = settings()?;
    let links = tempfile::Builder::new()
        .prefix("kubelet-real-pods-bin-")
        .tempdir()?;
    if !s.debug_binaries {
        use_release_binaries(links.path())?;
    }
    // Started from this thread: containerd and the daemons die with it (parent-death signal).
    // Dropped in reverse: the kubelet, then the apiserver, then containerd (which removes the
    // sandboxes through CRI and undoes its netns, mounts and directory).
    eprintln!("starting containerd ...");
    let containerd = Containerd::try_start()?;
    containerd.write_bridge_conflist("10.88.0.0/24")?;
    eprintln!("starting kube-apiserver ...");
    let server = ApiServer::start(Backend::Embedded);
    let port = free_port()?;
    let endpoint = format!("--container-runtime-endpoint={}", containerd.endpoint());
    let root = format!(
        "--root-dir={}",
        server.work_dir().join("kubelet-root").display()
    );
    let port = format!("--port={port}");
    eprintln!("starting the kubelet ...");
    let kubelet_started = Instant::now();
    let kubelet = Daemon::kubelet(
        &server,
        &[
            endpoint.as_str(),
            root.as_str(),
            port.as_str(),
            "--hostname-override=node1",
            "--fail-swap-on=false",
            // The shared disk may be quite full: nodefs pressure would evict the pods.
            "--eviction-hard=memory.available<100Mi,nodefs.available<1%",
        ],
    );
    let pids = Pids {
        kubelet: kubelet.pid().context("the kubelet is not running")?,
        containerd: containerd.pid().context("containerd is not running")?,
        socket: containerd.socket().to_path_buf(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("bench-client")
        .build()?;
    let result = runtime.block_on(bench(&s, &server, &pids, kubelet_started));
    drop(runtime);
    for (copy, log) in [
        (&s.kubelet_log, kubelet.log_path()),
        (&s.containerd_log, containerd.log_path()),
    ] {
        if let Some(path) = copy {
            if let Err(err) = std::fs::copy(log, path) {
                eprintln!("copying {} to {}: {err}", log.display(), path.display());
            }
        }
    }
    if let Err(err) = &result {
        eprintln!(
            "{err:#}\n--- kubelet log tail ---\n{}\n--- containerd log tail ---\n{}",
            e2e::log_tail(kubelet.log_path()),
            e2e::log_tail(containerd.log_path())
        );
    }
    drop(kubelet);
    drop(server);
    drop(containerd);
    result
}
