//! Storage benchmark: put, get, list (10k keys) and one-write-to-N-watchers fan-out at 1, 8 and 64
//! concurrent clients, for the embedded store (fsync on) and the etcd backend against a real etcd
//! started here, plus raw `etcd-client` puts against the same etcd. Prints throughput and p50/p99
//! latency per row, then the ratios the storage issue sets targets for:
//! embedded puts >= 3x etcd-backend puts; etcd-backend puts >= 0.9x raw etcd-client puts.
//!
//! `cargo bench -p storage --bench storage` (add `-- --quick` for a short smoke run).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use storage::embedded::{EmbeddedConfig, EmbeddedStore, DATA_FILE};
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::{ListOptions, Precondition, Storage, WatchEvent};

const CONCURRENCY: [usize; 3] = [1, 8, 64];
const VALUE_BYTES: usize = 512;

struct Settings {
    /// Operations per client for puts and gets.
    ops_per_client: usize,
    list_keys: usize,
    fanout_writes: usize,
    history_updates: usize,
}

#[derive(Clone)]
struct Row {
    backend: &'static str,
    op: String,
    clients: usize,
    ops: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Row {
    fn per_second(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[index]
    }

    fn print(&self) {
        println!(
            "{:<14} {:<26} {:>7} {:>8} {:>12.0} {:>10.3} {:>10.3}",
            self.backend,
            self.op,
            self.clients,
            self.ops,
            self.per_second(),
            self.percentile(0.50).as_secs_f64() * 1e3,
            self.percentile(0.99).as_secs_f64() * 1e3,
        );
    }
}

fn value() -> Vec<u8> {
    vec![b'v'; VALUE_BYTES]
}

/// Runs `clients` tasks doing `per_client` operations each; `op(client, i)` is one operation.
async fn run_clients<F, Fut>(clients: usize, per_client: usize, op: F) -> (Duration, Vec<Duration>)
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for i in 0..per_client {
                let t = Instant::now();
                op(client, i).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        match task.await {
            Ok(latencies) => all.extend(latencies),
            Err(err) => panic!("benchmark client failed: {err}"),
        }
    }
    (started.elapsed(), all)
}

/// Runs `op` from `clients` clients, `per_client` times each, and prints and returns its row.
async fn measure<F, Fut>(
    backend: &'static str,
    op: impl Into<String>,
    clients: usize,
    per_client: usize,
    f: F,
) -> Row
where
    F: Fn(usize, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (elapsed, latencies) = run_clients(clients, per_client, f).await;
    let row = Row {
        backend,
        op: op.into(),
        clients,
        ops: clients * per_client,
        elapsed,
        latencies,
    };
    row.print();
    row
}

async fn bench_store(
    backend: &'static str,
    store: Arc<dyn Storage>,
    settings: &Settings,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for clients in CONCURRENCY {
        let per_client = settings.ops_per_client;
        let s = store.clone();
        rows.push(
            measure(backend, "put", clients, per_client, move |c, i| {
                let s = s.clone();
                async move {
                    s.create(&format!("/bench/put/c{clients}/{c}/{i}"), value())
                        .await
                        .unwrap_or_else(|err| panic!("put failed: {err}"));
                }
            })
            .await,
        );
        let s = store.clone();
        rows.push(
            measure(backend, "get", clients, per_client, move |c, i| {
                let s = s.clone();
                async move {
                    let kv = s
                        .get(&format!("/bench/put/c{clients}/{c}/{i}"))
                        .await
                        .unwrap_or_else(|err| panic!("get failed: {err}"));
                    assert!(kv.is_some());
                }
            })
            .await,
        );
    }

    // Lists of a 10k-key prefix.
    load_keys(&store, "/bench/list/", settings.list_keys).await;
    for clients in CONCURRENCY {
        let per_client = (16 / clients).max(1);
        let s = store.clone();
        let expected = settings.list_keys;
        let op = format!("list {}k keys", settings.list_keys / 1000);
        rows.push(
            measure(backend, op, clients, per_client, move |_, _| {
                let s = s.clone();
                async move {
                    let page = s
                        .list("/bench/list/", ListOptions::default())
                        .await
                        .unwrap_or_else(|err| panic!("list failed: {err}"));
                    assert_eq!(page.items.len(), expected);
                }
            })
            .await,
        );
    }

    for watchers in CONCURRENCY {
        let row = fanout(backend, &store, watchers, settings.fanout_writes).await;
        row.print();
        rows.push(row);
    }
    rows
}

/// Writes `count` keys (a multiple of 50) under `prefix` from 50 clients.
async fn load_keys(store: &Arc<dyn Storage>, prefix: &str, count: usize) {
    let s = store.clone();
    let prefix = prefix.to_string();
    run_clients(50, count / 50, move |c, i| {
        let s = s.clone();
        let key = format!("{prefix}{c:02}-{i:06}");
        async move {
            s.create(&key, value())
                .await
                .unwrap_or_else(|err| panic!("load failed: {err}"));
        }
    })
    .await;
}

/// One writer, `watchers` watchers on the same prefix: the latency from starting a write to each
/// watcher receiving it.
async fn fanout(
    backend: &'static str,
    store: &Arc<dyn Storage>,
    watchers: usize,
    writes: usize,
) -> Row {
    let prefix = format!("/bench/fanout/{watchers}/");
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let mut watch = store
            .watch(&prefix, 0)
            .await
            .unwrap_or_else(|err| panic!("watch failed: {err}"));
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(writes);
            while latencies.len() < writes {
                match tokio::time::timeout(Duration::from_secs(30), watch.next()).await {
                    Ok(Some(Ok(WatchEvent::Created(kv)))) => {
                        let now = Instant::now();
                        let started = sent.lock().ok().and_then(|m| m.get(&kv.key).copied());
                        if let Some(started) = started {
                            latencies.push(now.duration_since(started));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    other => panic!("fan-out watch ended: {other:?}"),
                }
            }
            latencies
        }));
    }
    let started = Instant::now();
    for i in 0..writes {
        let key = format!("{prefix}{i}");
        if let Ok(mut map) = sent.lock() {
            map.insert(key.clone(), Instant::now());
        }
        store
            .create(&key, value())
            .await
            .unwrap_or_else(|err| panic!("fan-out write failed: {err}"));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        match task.await {
            Ok(l) => latencies.extend(l),
            Err(err) => panic!("watcher failed: {err}"),
        }
    }
    Row {
        backend,
        op: "fan-out (watchers)".into(),
        clients: watchers,
        ops: writes * watchers,
        elapsed: started.elapsed(),
        latencies,
    }
}

async fn raw_etcd_puts(endpoints: &[String], settings: &Settings) -> Vec<Row> {
    let client = etcd_client::Client::connect(endpoints, None)
        .await
        .unwrap_or_else(|err| panic!("raw etcd-client connect failed: {err}"));
    let mut rows = Vec::new();
    for (op, as_txn) in [("put", false), ("txn create-if-absent", true)] {
        for clients in CONCURRENCY {
            let per_client = settings.ops_per_client;
            let client = client.clone();
            rows.push(
                measure("raw etcd-client", op, clients, per_client, move |c, i| {
                    let mut client = client.clone();
                    async move {
                        let key = format!("/raw/{op}/c{clients}/{c}/{i}");
                        let done = if as_txn {
                            // What a create costs on etcd itself: the same transaction the
                            // backend sends, with no client-side work around it.
                            let txn = etcd_client::Txn::new()
                                .when([etcd_client::Compare::create_revision(
                                    key.clone(),
                                    etcd_client::CompareOp::Equal,
                                    0,
                                )])
                                .and_then([etcd_client::TxnOp::put(key, value(), None)]);
                            client.txn(txn).await.map(|_| ())
                        } else {
                            client.put(key, value(), None).await.map(|_| ())
                        };
                        done.unwrap_or_else(|err| panic!("raw {op} failed: {err}"));
                    }
                })
                .await,
            );
        }
    }
    rows
}

/// A latest list must cost the same however much superseded history sits under it.
async fn list_vs_history(settings: &Settings) -> Vec<Row> {
    let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
    let store: Arc<dyn Storage> = Arc::new(
        EmbeddedStore::open(EmbeddedConfig::new(dir.path()))
            .unwrap_or_else(|err| panic!("open: {err}")),
    );
    load_keys(&store, "/hist/", settings.list_keys).await;
    let list_all = || {
        let s = store.clone();
        move |_, _| {
            let s = s.clone();
            async move {
                s.list("/hist/", ListOptions::default())
                    .await
                    .unwrap_or_else(|err| panic!("list failed: {err}"));
            }
        }
    };
    let before = measure("embedded", "list, no history", 1, 10, list_all()).await;
    // Churn: update keys of the listed prefix over and over, without compacting.
    let keys: Vec<String> = store
        .list("/hist/", ListOptions::default())
        .await
        .map(|page| page.items.into_iter().map(|kv| kv.key).collect())
        .unwrap_or_default();
    let keys = Arc::new(keys);
    let s = store.clone();
    let per_client = settings.history_updates / 64;
    run_clients(64, per_client, move |c, i| {
        let s = s.clone();
        let keys = keys.clone();
        async move {
            let key = &keys[(c * 7919 + i) % keys.len()];
            s.update(key, value(), Precondition::None)
                .await
                .unwrap_or_else(|err| panic!("update failed: {err}"));
        }
    })
    .await;
    let label = format!("list, +{}k history", settings.history_updates / 1000);
    let after = measure("embedded", label, 1, 10, list_all()).await;
    let size = std::fs::metadata(dir.path().join(DATA_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "{:<14} data file with {}k keys and {}k uncompacted updates: {:.1} MiB",
        "embedded",
        settings.list_keys / 1000,
        settings.history_updates / 1000,
        size as f64 / (1024.0 * 1024.0)
    );
    vec![before, after]
}

fn find<'a>(rows: &'a [Row], backend: &str, op: &str, clients: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.backend == backend && r.op == op && r.clients == clients)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let settings = if quick {
        Settings {
            ops_per_client: 20,
            list_keys: 1000,
            fanout_writes: 20,
            history_updates: 6400,
        }
    } else {
        Settings {
            ops_per_client: 200,
            list_keys: 10_000,
            fanout_writes: 200,
            history_updates: 64_000,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("runtime: {err}"));
    runtime.block_on(async move {
        println!(
            "{:<14} {:<26} {:>7} {:>8} {:>12} {:>10} {:>10}",
            "backend", "operation", "clients", "ops", "ops/s", "p50 ms", "p99 ms"
        );
        let mut rows = Vec::new();

        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("tempdir: {err}"));
        let embedded: Arc<dyn Storage> = Arc::new(
            EmbeddedStore::open(EmbeddedConfig::new(dir.path()))
                .unwrap_or_else(|err| panic!("open: {err}")),
        );
        rows.extend(bench_store("embedded", embedded, &settings).await);

        let etcd = tokio::task::spawn_blocking(test_etcd::Etcd::start)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
            .unwrap_or_else(|err| panic!("starting etcd: {err:#}"));
        let etcd_store: Arc<dyn Storage> = Arc::new(
            EtcdStore::connect(EtcdConfig::new(etcd.endpoints()))
                .await
                .unwrap_or_else(|err| panic!("connect: {err}")),
        );
        rows.extend(bench_store("etcd backend", etcd_store, &settings).await);
        rows.extend(raw_etcd_puts(&etcd.endpoints(), &settings).await);
        rows.extend(list_vs_history(&settings).await);

        println!();
        for clients in CONCURRENCY {
            let embedded = find(&rows, "embedded", "put", clients);
            let backend = find(&rows, "etcd backend", "put", clients);
            let raw = find(&rows, "raw etcd-client", "put", clients);
            let raw_txn = find(&rows, "raw etcd-client", "txn create-if-absent", clients);
            if let (Some(e), Some(b), Some(r), Some(t)) = (embedded, backend, raw, raw_txn) {
                println!(
                    "clients={clients:<3} embedded/etcd-backend puts = {:.2}x (target >= 3x)   \
                     etcd-backend/raw etcd-client puts = {:.2} (target >= 0.90)   \
                     etcd-backend/raw etcd-client txns = {:.2}",
                    e.per_second() / b.per_second(),
                    b.per_second() / r.per_second(),
                    b.per_second() / t.per_second(),
                );
            }
        }
    });
}
