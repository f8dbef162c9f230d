//! Client-library benchmark (issue 5): a shared informer's initial sync of 100k pods (time and
//! peak RSS of the informer's process) and its steady-state event rate, printed beside the
//! apiserver's raw list time for the same data.
//!
//! `cargo bench -p apiserver --bench informer` (`-- --pods N` for another size).
//!
//! The real `kube-apiserver` runs as a child over the embedded store. This process fills it with
//! ~1 KiB pods through the client library, times raw lists (bytes only, no decoding: the floor
//! any client pays), then runs the informer in a second child process of its own, so its RSS is
//! the informer's alone. The informer child reports when it has synced; this process then patches
//! pods as fast as 32 writers can while the child counts the events its handler receives.
//! Figures are printed, never asserted.

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use client::{Api, Client, ClientOptions, SharedInformerFactory};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Patch, PatchParams};
use serde_json::json;

// The allocator the daemons run with (kube-apiserver's main.rs sets the same).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CHILD_ENV: &str = "INFORMER_BENCH_CHILD";
const NAMESPACE: &str = "bench";
const WRITERS: usize = 32;

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return child(&spec);
    }
    let mut pods = 100_000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--pods" {
            pods = args
                .next()
                .and_then(|v| v.parse().ok())
                .context("--pods N")?;
        }
    }
    let updates = (pods / 5).max(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(parent(pods, updates))
}

struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server() -> anyhow::Result<Server> {
    let dir = tempfile::Builder::new()
        .prefix("informer-bench")
        .tempdir()?;
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    let log = std::fs::File::create(dir.path().join("kube-apiserver.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_kube-apiserver"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--secure-port", "0", "--insecure-port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("spawning kube-apiserver")?;
    Ok(Server {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    })
}

fn client_for(url: &str, component: &str) -> anyhow::Result<Client> {
    Ok(Client::new(
        kube::Config::new(url.parse()?),
        ClientOptions::new(component).rate(-1.0, 0),
    )?)
}

fn pod(name: &str, index: usize) -> anyhow::Result<Pod> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": "bench", "tier": "backend", "shard": format!("s{}", index % 16)},
            "annotations": {"kubernetes.io/description": "informer benchmark pod"},
        },
        "spec": {
            "containers": [{
                "name": "app",
                "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
                "args": ["netexec", "--http-port=8080"],
                "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                "env": [
                    {"name": "POD_INDEX", "value": index.to_string()},
                    {"name": "UPSTREAM_URL", "value": "http://backend.bench.svc.cluster.local:8080"},
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "128Mi"},
                    "limits": {"cpu": "500m", "memory": "256Mi"},
                },
                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
            }],
            "restartPolicy": "Always",
        },
    }))?)
}

async fn wait_ready(client: &Client) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = http::Request::get("/readyz").body(Vec::new())?;
        if client.send_bytes(probe).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("kube-apiserver not ready in 30 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `count` jobs over `WRITERS` tasks, printing progress every 10%.
async fn fan_out<F, Fut>(what: &str, count: usize, job: F) -> anyhow::Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let (job, next) = (job.clone(), next.clone());
        let what = what.to_string();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), anyhow::Error>(());
                }
                job(i).await?;
                if count >= 10 && (i + 1) % (count / 10) == 0 {
                    eprintln!("  {what}: {} / {count}", i + 1);
                }
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(started.elapsed())
}

async fn parent(pods: usize, updates: usize) -> anyhow::Result<()> {
    let server = start_server()?;
    let client = client_for(&server.url, "informer-bench")?;
    wait_ready(&client).await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    client.api::<Namespace>(None).create(&ns).await?;

    eprintln!("creating {pods} pods with {WRITERS} writers");
    let api: Api<Pod> = client.api(Some(NAMESPACE));
    let creator = api.clone();
    let fill = fan_out("created", pods, move |i| {
        let api = creator.clone();
        async move {
            api.create(&pod(&format!("pod-{i:06}"), i)?).await?;
            Ok(())
        }
    })
    .await?;

    // Raw lists: the bytes a client must at least read, paged as the informer lists.
    let mut paged = Duration::MAX;
    let mut bytes = 0usize;
    for _ in 0..3 {
        let started = Instant::now();
        let mut token: Option<String> = None;
        bytes = 0;
        loop {
            let mut path = "/api/v1/pods?limit=500".to_string();
            if let Some(t) = &token {
                path.push_str("&continue=");
                path.push_str(&form_encode(t));
            }
            let body = client
                .send_bytes(http::Request::get(path).body(Vec::new())?)
                .await?;
            bytes += body.len();
            let page: serde_json::Value = serde_json::from_slice(
                // Only the continue token is needed; it sits in the list's metadata.
                &body,
            )?;
            token = page["metadata"]["continue"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        paged = paged.min(started.elapsed());
    }
    let mut whole = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let body = client
            .send_bytes(http::Request::get("/api/v1/pods?resourceVersion=0").body(Vec::new())?)
            .await?;
        std::hint::black_box(body.len());
        whole = whole.min(started.elapsed());
    }

    let field = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    println!("informer benchmark, {pods} pods of ~1 KiB, embedded store, release build");
    println!(
        "  fill: {pods} creates by {WRITERS} writers in {:.1} s ({:.0}/s)",
        fill.as_secs_f64(),
        pods as f64 / fill.as_secs_f64()
    );
    println!(
        "  raw list, pages of 500 (consistent):  {:.2} s ({:.1} MiB read, no decoding)",
        paged.as_secs_f64(),
        bytes as f64 / 1048576.0
    );
    println!(
        "  raw list, whole, resourceVersion=0:   {:.2} s",
        whole.as_secs_f64()
    );
    for (round, strip) in [(0usize, false), (1, true)] {
        let run = informer_round(&server.url, &api, pods, updates, round, strip).await?;
        let sync_secs = field(&run.synced, "sync_secs");
        let what = if strip {
            "managedFields stripped (as the daemons run it)"
        } else {
            "whole objects"
        };
        println!("  informer, {what}:");
        println!(
            "    initial sync {sync_secs:.2} s = {:.2}x the raw paged list; RSS after sync {:.0} MiB, peak {:.0} MiB (baseline {:.0} MiB)",
            sync_secs / paged.as_secs_f64(),
            field(&run.synced, "rss_kib") / 1024.0,
            field(&run.synced, "hwm_kib") / 1024.0,
            field(&run.synced, "base_kib") / 1024.0,
        );
        println!(
            "    steady state: {updates} patches by {WRITERS} writers in {:.2} s ({:.0}/s); the informer handled {:.0} events/s, its last event {:.0} ms after the last write returned",
            run.writes.as_secs_f64(),
            updates as f64 / run.writes.as_secs_f64(),
            field(&run.steady, "events_per_sec"),
            field(&run.steady, "last_event_unix_ms") - run.writes_done_ms as f64,
        );
    }
    Ok(())
}

struct Round {
    synced: String,
    steady: String,
    writes: Duration,
    writes_done_ms: u128,
}

/// One informer child: waits for its sync, patches `updates` pods, collects its report.
async fn informer_round(
    url: &str,
    api: &Api<Pod>,
    pods: usize,
    updates: usize,
    round: usize,
    strip: bool,
) -> anyhow::Result<Round> {
    let exe = std::env::current_exe()?;
    let mut child = Command::new(exe)
        .env(
            CHILD_ENV,
            format!(
                "{url} {} {}",
                pods + updates,
                if strip { "strip" } else { "whole" }
            ),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let synced = lines.next().context("the informer child ended early")??;
    eprintln!("informer child: {synced}");
    let patcher = api.clone();
    let writes = fan_out("patched", updates, move |i| {
        let api = patcher.clone();
        async move {
            let name = format!("pod-{:06}", i % pods);
            let patch = json!({"metadata": {"labels": {"round": format!("{round}-{i}")}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            Ok(())
        }
    })
    .await?;
    let writes_done_ms = unix_ms();
    let steady = lines
        .next()
        .context("the informer child ended before counting")??;
    let _ = child.wait();
    Ok(Round {
        synced,
        steady,
        writes,
        writes_done_ms,
    })
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn unix_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The informer process: sync, report, then count `expected` events in total (adds included)
/// and report the steady-state rate.
fn child(spec: &str) -> anyhow::Result<()> {
    let mut parts = spec.split(' ');
    let url = parts.next().context("child spec: url")?;
    let expected: usize = parts.next().context("child spec: count")?.parse()?;
    let strip = parts.next() == Some("strip");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let client = client_for(url, "informer-bench-child")?;
        let base = status_kib("VmRSS:");
        let factory = if strip {
            SharedInformerFactory::new(client).stripping_managed_fields()
        } else {
            SharedInformerFactory::new(client)
        };
        let informer = factory.informer::<Pod>();
        let seen = Arc::new(AtomicUsize::new(0));
        let first_update = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let last = Arc::new(std::sync::Mutex::new(Instant::now()));
        {
            let (seen, first_update, last) = (seen.clone(), first_update.clone(), last.clone());
            informer.add_event_handler(None, move |event| {
                if let client::informer::Event::Update { .. } = event {
                    if let Ok(mut first) = first_update.lock() {
                        first.get_or_insert_with(Instant::now);
                    }
                }
                seen.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = last.lock() {
                    *last = Instant::now();
                }
            });
        }
        let started = Instant::now();
        factory.start();
        if !informer.wait_synced().await {
            bail!("the informer stopped before syncing");
        }
        let sync = started.elapsed();
        println!(
            "synced sync_secs={:.3} base_kib={base} hwm_kib={} rss_kib={} objects={}",
            sync.as_secs_f64(),
            status_kib("VmHWM:"),
            status_kib("VmRSS:"),
            informer.store().len()
        );
        let deadline = Instant::now() + Duration::from_secs(600);
        while seen.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let done = Instant::now();
        let first = first_update.lock().ok().and_then(|f| *f).unwrap_or(done);
        let last_event = last.lock().map(|l| *l).unwrap_or(done);
        let updates = seen
            .load(Ordering::Relaxed)
            .saturating_sub(informer.store().len());
        let span = last_event
            .saturating_duration_since(first)
            .as_secs_f64()
            .max(1e-9);
        let ago = done.saturating_duration_since(last_event);
        println!(
            "steady events={updates} events_per_sec={:.0} last_event_unix_ms={}",
            updates as f64 / span,
            unix_ms().saturating_sub(ago.as_millis())
        );
        factory.shutdown();
        Ok(())
    })
}
