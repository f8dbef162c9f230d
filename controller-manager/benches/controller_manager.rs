//! kube-controller-manager benchmark (issue 6): a ReplicaSet of 10,000 pods (time until all
//! exist, against the client QPS limit, and the manager's CPU time and peak RSS), and a
//! Deployment of 1,000 pods rolled to a new image end to end with readiness faked by this
//! process (the kubelet's part).
//!
//! `cargo bench -p controller-manager --bench controller_manager` (`-- --pods N --deploy M
//! --qps Q` for other sizes; the manager's `--kube-api-qps`/`--kube-api-burst` are set to Q).
//!
//! The apiserver runs inside this process (the library, on the embedded store); the manager is
//! the real `kube-controller-manager` binary as a child, so its CPU and RSS are its own. Figures
//! are printed, never asserted.

use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use client::{Api, Client, ClientOptions};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use serde_json::json;

struct Settings {
    pods: usize,
    deploy: usize,
    qps: u32,
}

fn settings() -> anyhow::Result<Settings> {
    let mut s = Settings {
        pods: 10_000,
        deploy: 1_000,
        qps: 1_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || -> anyhow::Result<usize> {
            args.next()
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{arg} N"))
        };
        match arg.as_str() {
            "--pods" => s.pods = value()?,
            "--deploy" => s.deploy = value()?,
            "--qps" => s.qps = u32::try_from(value()?)?,
            _ => {}
        }
    }
    Ok(s)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// (CPU seconds, VmHWM KiB) of a process.
fn usage(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name's closing parenthesis; utime and stime are 14th and 15th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    let hwm = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(f64::NAN);
    (ticks / 100.0, hwm)
}

struct Manager(Child);

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn main() -> anyhow::Result<()> {
    let s = settings()?;
    let dir = tempfile::Builder::new().prefix("kcm-bench").tempdir()?;
    let port = free_port()?;
    let options = apiserver::Options::try_parse_from([
        "kube-apiserver".to_string(),
        "--data-dir".into(),
        dir.path().join("data").display().to_string(),
        "--secure-port".into(),
        "0".into(),
        "--insecure-port".into(),
        port.to_string(),
    ])?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build();
        if let Ok(runtime) = runtime {
            if let Err(err) = runtime.block_on(apiserver::run(options)) {
                eprintln!("kube-apiserver: {err:#}");
            }
        }
    });
    let url = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(&s, &url, dir.path()))
}

async fn bench(s: &Settings, url: &str, dir: &std::path::Path) -> anyhow::Result<()> {
    let client = Client::new(
        kube::Config::new(url.parse()?),
        ClientOptions::new("kcm-bench").rate(-1.0, 0),
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while client
        .send_bytes(http::Request::get("/readyz").body(Vec::new())?)
        .await
        .is_err()
    {
        if Instant::now() > deadline {
            bail!("the apiserver did not get ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = std::fs::File::create(dir.join("kcm.log"))?;
    let child = Command::new(env!("CARGO_BIN_EXE_kube-controller-manager"))
        .args([
            format!("--master={url}"),
            "--leader-elect=false".into(),
            "--secure-port=0".into(),
            "--controllers=replicaset-controller,deployment-controller".into(),
            format!("--kube-api-qps={}", s.qps),
            format!("--kube-api-burst={}", s.qps),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("spawning kube-controller-manager")?;
    let manager = Manager(child);
    eprintln!(
        "apiserver ready at {url}; kube-controller-manager started (pid {})",
        manager.0.id()
    );
    let pid = manager.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. A ReplicaSet of `pods` replicas.
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "big", "namespace": "default"},
        "spec": {
            "replicas": s.pods,
            "selector": {"matchLabels": {"app": "big"}},
            "template": {"metadata": {"labels": {"app": "big"}},
                         "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}},
        },
    }))?;
    let (cpu0, _) = usage(pid);
    let started = Instant::now();
    client
        .api::<ReplicaSet>(Some("default"))
        .create(&rs)
        .await?;
    let pods: Api<Pod> = client.api(Some("default"));
    let mut last_report = Instant::now();
    loop {
        let n = count(&pods).await?;
        if n >= s.pods {
            break;
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            eprintln!(
                "  {n} / {} pods after {:.0} s",
                s.pods,
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("only {n} pods after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let fill = started.elapsed();
    let (cpu1, hwm) = usage(pid);
    let floor = s.pods as f64 / f64::from(s.qps);
    println!("kube-controller-manager benchmark (release build, embedded store, apiserver in the bench process)");
    println!(
        "  ReplicaSet of {} pods: all exist after {:.1} s ({:.0} pods/s); the client limit alone allows it in {floor:.1} s (qps {}) -> {:.2}x that floor",
        s.pods,
        fill.as_secs_f64(),
        s.pods as f64 / fill.as_secs_f64(),
        s.qps,
        fill.as_secs_f64() / floor
    );
    println!(
        "    manager CPU {:.1} s ({:.0} us per pod), peak RSS {:.0} MiB",
        cpu1 - cpu0,
        (cpu1 - cpu0) * 1e6 / s.pods as f64,
        hwm / 1024.0
    );
    // Scale to zero so the next part has the machine to itself.
    let patch = json!({"spec": {"replicas": 0}});
    client
        .api::<ReplicaSet>(Some("default"))
        .patch(
            "big",
            &Default::default(),
            &client::client::Patch::Merge(&patch),
        )
        .await?;
    while count(&pods).await? > 0 {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // 2. A Deployment of `deploy` pods, rolled to a new image with readiness faked here.
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "roll", "namespace": "default"},
        "spec": {
            "replicas": s.deploy,
            "selector": {"matchLabels": {"app": "roll"}},
            "template": {"metadata": {"labels": {"app": "roll"}},
                         "spec": {"containers": [{"name": "c", "image": "example/app:1"}]}},
        },
    }))?;
    let deployments: Api<Deployment> = client.api(Some("default"));
    deployments.create(&deployment).await?;
    let created = Instant::now();
    settle(&client, &deployments, s.deploy, 1).await?;
    eprintln!(
        "  initial rollout of {} pods: {:.1} s",
        s.deploy,
        created.elapsed().as_secs_f64()
    );
    let (cpu2, _) = usage(pid);
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "example/app:2"}]}}}});
    let rolled = Instant::now();
    deployments
        .patch(
            "roll",
            &Default::default(),
            &client::client::Patch::Strategic(&patch),
        )
        .await?;
    let patched = settle(&client, &deployments, s.deploy, 2).await?;
    let (cpu3, hwm) = usage(pid);
    println!(
        "  Deployment of {} pods rolled to a new image (maxSurge/maxUnavailable 25%): {:.1} s end to end, {patched} pods made ready by the bench; manager CPU {:.1} s, peak RSS {:.0} MiB",
        s.deploy,
        rolled.elapsed().as_secs_f64(),
        cpu3 - cpu2,
        hwm / 1024.0
    );
    drop(manager);
    Ok(())
}

/// Pods in the namespace (the bench's only pods there), from one small page: an unfiltered
/// list reports how many items remain, a label-filtered one does not.
async fn count(pods: &Api<Pod>) -> anyhow::Result<usize> {
    let list = pods
        .list(&ListParams {
            limit: Some(1),
            ..ListParams::default()
        })
        .await?;
    let rest = list.metadata.remaining_item_count.unwrap_or(0);
    Ok(list.items.len() + usize::try_from(rest).unwrap_or(0))
}

/// Makes pods ready until the deployment reports `replicas` updated and available at
/// `generation`; returns how many pods it made ready.
async fn settle(
    client: &Client,
    deployments: &Api<Deployment>,
    replicas: usize,
    generation: i64,
) -> anyhow::Result<usize> {
    let pods: Api<Pod> = client.api(Some("default"));
    let made = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    loop {
        let d = deployments.get("roll").await?;
        let status = d.status.clone().unwrap_or_default();
        let done = d.metadata.generation == Some(generation)
            && status.observed_generation == Some(generation)
            && status.updated_replicas.unwrap_or(0) as usize == replicas
            && status.available_replicas.unwrap_or(0) as usize == replicas
            && status.replicas.unwrap_or(0) as usize == replicas;
        if done {
            return Ok(made.load(Ordering::Relaxed));
        }
        if started.elapsed() > Duration::from_secs(1800) {
            bail!("the deployment did not settle: {status:?}");
        }
        let (list, _) = pods
            .list_all(&ListParams::default().labels("app=roll"), 500)
            .await?;
        let pending: Vec<Pod> = list
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && !p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .collect();
        let pending = Arc::new(tokio::sync::Mutex::new(pending));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (pending, pods, made) = (pending.clone(), pods.clone(), made.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let Some(pod) = pending.lock().await.pop() else { return };
                    let name = pod.metadata.name.clone().unwrap_or_default();
                    let now = "2026-01-01T00:00:00Z";
                    let patch = json!({"status": {
                        "phase": "Running",
                        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
                    }});
                    if pods
                        .patch_status(&name, &Default::default(), &client::client::Patch::Merge(&patch))
                        .await
                        .is_ok()
                    {
                        made.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
