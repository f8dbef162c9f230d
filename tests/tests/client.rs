//! The project's client library (`crates/client`) against the real server: shared informers that
//! converge after 10,000 random writes, a server restart and a compaction that forces a relist;
//! ten informers on pods sharing one watch; leader election across processes (kill -9, SIGSTOP);
//! the event recorder's series; the dynamic client; and clear errors for bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client::discovery::{Discovery, DynamicObject};
use client::informer::{Deleted, Event, Scope};
use client::{Api, Client, ClientOptions, SharedInformerFactory};
use e2e::{wait_for, ApiServer, Backend};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{ListParams, Patch, PatchParams};
use rand::{Rng, SeedableRng};

const NAMESPACE: &str = "churn";
const NAMES: usize = 320;
const OPS_PER_PHASE: usize = 5_000;
const WRITERS: usize = 16;
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(90);

fn runtime() -> tokio::runtime::Runtime {
    // The client's warnings (failed lists, refused watches) go to the test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("E2E_LOG")
                .unwrap_or_else(|_| "client=info".into()),
        )
        .with_test_writer()
        .try_init();
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => panic!("building a tokio runtime: {err}"),
    }
}

/// A client for `url` with no rate limit and its own metrics registry.
fn client_for(rt: &tokio::runtime::Runtime, url: &str, registry: &metrics::Registry) -> Client {
    let _guard = rt.enter();
    let uri = match url.parse() {
        Ok(uri) => uri,
        Err(err) => panic!("{url}: {err}"),
    };
    match Client::with_registry(
        kube::Config::new(uri),
        ClientOptions::new("e2e-client").rate(-1.0, 0),
        registry,
    ) {
        Ok(client) => client,
        Err(err) => panic!("building a client: {err}"),
    }
}

fn create_namespace(rt: &tokio::runtime::Runtime, client: &Client, name: &str) {
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    if let Err(err) = rt.block_on(client.api::<Namespace>(None).create(&ns)) {
        panic!("creating namespace {name}: {err}");
    }
}

fn config_map(name: &str, value: u64) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("v".to_string(), value.to_string())])),
        ..Default::default()
    }
}

/// `ops` random creates, merge patches and deletes by `WRITERS` tasks, each over its own names
/// and knowing which exist, so every write is meant to succeed. A write cut off by the server's
/// restart leaves its outcome unknown: the writer reads the object back and goes on. Returns how
/// many writes succeeded.
async fn churn(client: Client, ops: usize, seed: u64) -> usize {
    let mut tasks = Vec::new();
    for writer in 0..WRITERS {
        let api: Api<ConfigMap> = client.api(Some(NAMESPACE));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed * 1000 + writer as u64);
        tasks.push(tokio::spawn(async move {
            let names: Vec<String> = (0..NAMES / WRITERS)
                .map(|i| format!("cm-{writer}-{i}"))
                .collect();
            let mut exists: BTreeMap<String, bool> = BTreeMap::new();
            for name in &names {
                exists.insert(name.clone(), read_back(&api, name).await);
            }
            let mut ok = 0;
            for _ in 0..ops / WRITERS {
                let name = &names[rng.random_range(0..names.len())];
                let value: u64 = rng.random();
                let present = exists.get(name).copied().unwrap_or(false);
                let result = if !present {
                    api.create(&config_map(name, value)).await.map(|_| true)
                } else if rng.random_bool(0.6) {
                    let patch = serde_json::json!({"data": {"v": value.to_string()}});
                    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map(|_| true)
                } else {
                    api.delete(name, &Default::default()).await.map(|_| false)
                };
                match result {
                    Ok(now_present) => {
                        ok += 1;
                        exists.insert(name.clone(), now_present);
                    }
                    Err(err) if err.is_unreachable() => {
                        exists.insert(name.clone(), read_back(&api, name).await);
                    }
                    Err(err) => panic!("unexpected write error on {name}: {err}"),
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for task in tasks {
        ok += task.await.unwrap_or(0);
    }
    ok
}

/// Whether `name` exists, asking until the server answers.
async fn read_back(api: &Api<ConfigMap>, name: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match api.get_opt(name).await {
            Ok(found) => return found.is_some(),
            Err(err) if Instant::now() < deadline => {
                eprintln!("reading {name} back: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(err) => panic!("reading {name} back: {err}"),
        }
    }
}

type Snapshot = BTreeMap<String, String>;

fn rv_of(cm: &ConfigMap) -> String {
    cm.metadata.resource_version.clone().unwrap_or_default()
}

/// Waits until the informer's cache, the handler's own view and a fresh list all agree.
fn converge(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    informer: &client::Informer<ConfigMap>,
    view: &Mutex<Snapshot>,
) -> usize {
    let api: Api<ConfigMap> = client.api(Some(NAMESPACE));
    let deadline = Instant::now() + CONVERGE_TIMEOUT;
    loop {
        let fresh: Snapshot = match rt.block_on(api.list(&ListParams::default())) {
            Ok(list) => list
                .items
                .iter()
                .map(|cm| (client::informer::store::key_of(cm), rv_of(cm)))
                .collect(),
            Err(err) => panic!("listing: {err}"),
        };
        let cached: Snapshot = informer
            .store()
            .list()
            .iter()
            .map(|cm| (client::informer::store::key_of(cm.as_ref()), rv_of(cm)))
            .collect();
        let handled = view.lock().map(|v| v.clone()).unwrap_or_default();
        if fresh == cached && fresh == handled {
            return fresh.len();
        }
        if Instant::now() > deadline {
            let missing: Vec<_> = fresh
                .iter()
                .filter(|(k, v)| cached.get(*k) != Some(v))
                .take(5)
                .collect();
            let extra: Vec<_> = cached
                .iter()
                .filter(|(k, v)| fresh.get(*k) != Some(v))
                .take(5)
                .collect();
            panic!(
                "the informer did not converge: fresh list {} objects, cache {}, handler view {}; \
                 differing in the cache: {missing:?} / {extra:?}",
                fresh.len(),
                cached.len(),
                handled.len()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn informer_converges(backend: Backend) {
    let mut server = ApiServer::start(backend);
    let rt = runtime();
    let registry = metrics::Registry::new();
    let client = client_for(&rt, &server.url(), &registry);
    create_namespace(&rt, &client, NAMESPACE);

    let factory = SharedInformerFactory::new(client.clone());
    let informer = factory.informer_for::<ConfigMap>(Scope::namespace(NAMESPACE));
    let view: Arc<Mutex<Snapshot>> = Arc::default();
    let tombstones: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let registration = {
        let _guard = rt.enter();
        let (view, tombstones) = (view.clone(), tombstones.clone());
        informer.add_event_handler(None, move |event| {
            let Ok(mut view) = view.lock() else { return };
            match event {
                Event::Add(obj) | Event::Update { new: obj, .. } => {
                    view.insert(client::informer::store::key_of(obj.as_ref()), rv_of(&obj));
                }
                Event::Delete(deleted) => {
                    let key = client::informer::store::key_of(deleted.object().as_ref());
                    view.remove(&key);
                    if let Deleted::Tombstone(t) = deleted {
                        if let Ok(mut tombstones) = tombstones.lock() {
                            tombstones.insert(t.key);
                        }
                    }
                }
            }
        })
    };
    {
        let _guard = rt.enter();
        factory.start();
    }
    assert!(rt.block_on(factory.wait_for_cache_sync(Duration::from_secs(30))));
    wait_for(
        "the handler's initial sync",
        Duration::from_secs(10),
        || registration.has_synced().then_some(()),
    );

    // Phase 1: churn, with the server killed and restarted in the middle of it.
    let writes = rt.spawn(churn(client.clone(), OPS_PER_PHASE, 1));
    std::thread::sleep(Duration::from_millis(1500));
    server.restart();
    let ok1 = rt.block_on(writes).unwrap_or(0);
    // Phase 2: churn on the restarted server.
    let ok2 = rt.block_on(churn(client.clone(), OPS_PER_PHASE, 2));
    // Only writes cut off by the restart may fail.
    assert!(
        ok1 + ok2 >= 2 * OPS_PER_PHASE - 2 * WRITERS,
        "too few writes succeeded: {ok1} + {ok2}"
    );
    let count = converge(&rt, &client, &informer, &view);
    eprintln!("converged on {count} objects after {ok1} + {ok2} successful writes and a restart");

    // Phase 3: while the server is down, another server on the same data deletes objects the
    // informer holds, writes more, and compacts history past the informer's resourceVersion.
    let doomed: Vec<String> = {
        let mut keys = informer.store().keys();
        keys.sort();
        keys.into_iter().take(20).collect()
    };
    assert_eq!(doomed.len(), 20, "the churn left fewer than 20 objects");
    if let Ok(mut t) = tombstones.lock() {
        t.clear();
    }
    let relists_before = informer.stats().relists_after_gone.load(Ordering::Relaxed);
    server.while_down(&["--etcd-compaction-interval", "1s"], |url| {
        let offline = client_for(&rt, url, &metrics::Registry::new());
        let api: Api<ConfigMap> = offline.api(Some(NAMESPACE));
        rt.block_on(async {
            for key in &doomed {
                let (_, name) = client::informer::store::split_key(key);
                if let Err(err) = api.delete(name, &Default::default()).await {
                    panic!("deleting {name} offline: {err}");
                }
            }
            for i in 0..5 {
                if let Err(err) = api.create(&config_map(&format!("offline-{i}"), i)).await {
                    panic!("creating offline-{i}: {err}");
                }
            }
            // Two compactor ticks: the second compacts to a revision after these writes.
            tokio::time::sleep(Duration::from_millis(2500)).await;
        });
    });
    converge(&rt, &client, &informer, &view);
    let relists_after = informer.stats().relists_after_gone.load(Ordering::Relaxed);
    assert!(
        relists_after > relists_before,
        "the informer did not relist after the compaction ({relists_before} -> {relists_after})"
    );
    let got: BTreeSet<String> = tombstones.lock().map(|t| t.clone()).unwrap_or_default();
    let want: BTreeSet<String> = doomed.into_iter().collect();
    assert_eq!(
        got, want,
        "tombstones must name exactly the objects deleted while disconnected"
    );
    factory.shutdown();
}

#[test]
fn informer_converges_after_churn_restart_and_compaction_embedded() {
    informer_converges(Backend::Embedded);
}

#[test]
fn informer_converges_after_churn_restart_and_compaction_etcd() {
    informer_converges(Backend::Etcd);
}

/// The value of `apiserver_registered_watchers` for `kind` on the server's /metrics.
fn server_watchers(server: &ApiServer, kind: &str) -> i64 {
    let response = server.http(e2e::Method::Get, "/metrics", None, b"");
    let text = response.text();
    let needle = format!("kind=\"{kind}\",version=\"v1\"}} ");
    text.lines()
        .filter(|l| {
            l.starts_with("apiserver_registered_watchers{group=\"\"") && l.contains(&needle)
        })
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<i64>().ok()))
        .sum()
}

#[test]
fn ten_informers_on_pods_open_one_watch() {
    let server = ApiServer::start(Backend::Embedded);
    let rt = runtime();
    let registry = metrics::Registry::new();
    let client = client_for(&rt, &server.url(), &registry);
    let factory = SharedInformerFactory::new(client.clone());
    let informers: Vec<client::Informer<Pod>> =
        (0..10).map(|_| factory.informer::<Pod>()).collect();
    assert_eq!(
        factory.len(),
        1,
        "ten asks for the pod informer must give one informer"
    );
    let _guard = rt.enter();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for informer in &informers {
        let seen = seen.clone();
        informer.add_event_handler(None, move |_| {
            seen.fetch_add(1, Ordering::Relaxed);
        });
    }
    factory.start();
    assert!(rt.block_on(factory.wait_for_cache_sync(Duration::from_secs(30))));
    wait_for("the pod watch to open", Duration::from_secs(10), || {
        (server_watchers(&server, "Pod") >= 1).then_some(())
    });
    // Give a second watch every chance to show up before counting.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        server_watchers(&server, "Pod"),
        1,
        "the apiserver must see exactly one pod watch"
    );
    let rendered = registry.render();
    assert!(
        rendered.contains("rest_client_open_watches{resource=\"pods\"} 1"),
        "the client's own gauge must show one watch:\n{rendered}"
    );
    assert_eq!(
        informers[0].stats().lists.load(Ordering::Relaxed),
        1,
        "one list"
    );

    // Every one of the ten handlers hears about a new pod, through the one watch.
    let out = server.kubectl(["run", "p1", "--image=busybox", "--restart=Never"]);
    assert!(out.status.success(), "{}", e2e::stderr(&out));
    wait_for(
        "ten handlers to see the pod",
        Duration::from_secs(10),
        || (seen.load(Ordering::Relaxed) >= 10).then_some(()),
    );
    assert!(registry
        .render()
        .contains("rest_client_requests_total{code=\"200\""));
    factory.shutdown();
    drop(_guard);
}

// ----------------------------------------------------------------------------------------------
// Leader election across processes. The candidates are this test binary run again in "candidate
// mode" (an environment variable), so each is a real process that can be killed or paused.

const CANDIDATE_ENV: &str = "E2E_LEADER_CANDIDATE";
const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);

fn unix_millis() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// Candidate mode: campaign, and while leading append "<identity> <unix ms>" to the log every
/// 50 ms, checking `is_leading` before each line as real work must.
fn candidate(url: &str, identity: &str, log: &str) -> ! {
    let rt = runtime();
    let client = client_for(&rt, url, &metrics::Registry::new());
    let mut config = client::leaderelection::LeaderElectionConfig::new(
        "kube-system",
        "e2e-lock",
        identity.to_string(),
    );
    config.lease_duration = LEASE;
    config.renew_deadline = RENEW;
    config.retry_period = RETRY;
    let elector = match client::leaderelection::LeaderElector::new(&client, config) {
        Ok(e) => e,
        Err(err) => panic!("{err}"),
    };
    let log = log.to_string();
    let id = identity.to_string();
    // SIGTERM is a clean shutdown: the candidate releases the lease on its way out.
    let shutdown = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    let outcome = rt.block_on(elector.run(shutdown, |leadership| async move {
        loop {
            if leadership.is_leading() {
                use std::io::Write;
                if let Ok(mut f) = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                {
                    let _ = writeln!(f, "{id} {}", unix_millis());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }));
    eprintln!("candidate {identity}: {outcome:?}");
    std::process::exit(if outcome == client::leaderelection::Outcome::Lost {
        3
    } else {
        0
    });
}

fn spawn_candidate(url: &str, identity: &str, log: &std::path::Path) -> std::process::Child {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => panic!("current_exe: {err}"),
    };
    let mut command = std::process::Command::new("/usr/bin/setpriv");
    command
        .args(["--pdeathsig", "KILL"])
        .arg(exe)
        .args([
            "--exact",
            "leader_election_candidate_mode",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CANDIDATE_ENV, format!("{url} {identity} {}", log.display()))
        .stdout(std::process::Stdio::null());
    match command.spawn() {
        Ok(child) => child,
        Err(err) => panic!("spawning candidate {identity}: {err}"),
    }
}

/// Not a test by itself: the entry point of candidate processes (does nothing otherwise).
#[test]
fn leader_election_candidate_mode() {
    if let Ok(spec) = std::env::var(CANDIDATE_ENV) {
        let parts: Vec<&str> = spec.splitn(3, ' ').collect();
        if let [url, identity, log] = parts.as_slice() {
            candidate(url, identity, log);
        }
    }
}

/// (identity, unix ms) lines of the acting log.
fn acting(log: &std::path::Path) -> Vec<(String, u128)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (id, ms) = l.split_once(' ')?;
            Some((id.to_string(), ms.parse().ok()?))
        })
        .collect()
}

fn signal(pid: u32, sig: &str) {
    let out = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .output();
    assert!(
        out.map(|o| o.status.success()).unwrap_or(false),
        "kill {sig} {pid}"
    );
}

#[test]
fn leader_election_fails_over_and_a_paused_leader_stops_acting() {
    let server = ApiServer::start(Backend::Embedded);
    let log = server.work_dir().join("acting.log");
    let url = server.url();
    let mut a = spawn_candidate(&url, "a", &log);
    let mut b = spawn_candidate(&url, "b", &log);
    let mut children = vec![];

    // Exactly one leads.
    let first = wait_for("a leader to act", Duration::from_secs(20), || {
        acting(&log).first().map(|(id, _)| id.clone())
    });
    std::thread::sleep(LEASE);
    let ids: BTreeSet<String> = acting(&log).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids.len(), 1, "two candidates acted at once: {ids:?}");

    // kill -9 the leader: the other leads within the lease duration plus one retry period.
    let (leader, follower, follower_id) = if first == "a" {
        (&mut a, &mut b, "b")
    } else {
        (&mut b, &mut a, "a")
    };
    let killed_at = unix_millis();
    let _ = leader.kill();
    let _ = leader.wait();
    let took_over = wait_for("the follower to take over", Duration::from_secs(20), || {
        acting(&log)
            .iter()
            .find(|(id, t)| id == follower_id && *t > killed_at)
            .map(|(_, t)| *t)
    });
    let failover = Duration::from_millis(u64::try_from(took_over - killed_at).unwrap_or(u64::MAX));
    eprintln!("failover took {failover:?} (lease {LEASE:?} + retry {RETRY:?})");
    // The bound is the (lease + retry), with room for a debug build on a busy machine.
    assert!(
        failover <= LEASE + RETRY + Duration::from_secs(3),
        "failover took {failover:?}"
    );

    // Pause the leader; a third candidate takes over; the paused one, resumed, must not act.
    let mut c = spawn_candidate(&url, "c", &log);
    std::thread::sleep(Duration::from_secs(1));
    let paused_pid = follower.id();
    signal(paused_pid, "-STOP");
    let stopped_at = unix_millis();
    wait_for(
        "c to take over from the paused leader",
        Duration::from_secs(20),
        || {
            acting(&log)
                .iter()
                .any(|(id, t)| id == "c" && *t > stopped_at)
                .then_some(())
        },
    );
    signal(paused_pid, "-CONT");
    let status = wait_for(
        "the resumed leader to give up",
        Duration::from_secs(15),
        || follower.try_wait().ok().flatten(),
    );
    assert_eq!(
        status.code(),
        Some(3),
        "the resumed leader must report lost leadership"
    );
    let late: Vec<_> = acting(&log)
        .into_iter()
        .filter(|(id, t)| id == follower_id && *t >= stopped_at)
        .collect();
    assert!(
        late.is_empty(),
        "the paused leader acted after it lost its lease: {late:?}"
    );
    // A clean shutdown releases the lease: the holder is cleared at once, not after 3 s.
    children.push(c.id());
    signal(c.id(), "-TERM");
    let status = wait_for("c to shut down", Duration::from_secs(10), || {
        c.try_wait().ok().flatten()
    });
    assert_eq!(
        status.code(),
        Some(0),
        "a clean shutdown is not a lost lease"
    );
    let holder = server.kubectl_stdout([
        "get",
        "lease",
        "-n",
        "kube-system",
        "e2e-lock",
        "-o",
        "jsonpath={.spec.holderIdentity}|{.spec.leaseDurationSeconds}",
    ]);
    assert_eq!(holder, "|1", "the released lease names no holder");
    let _ = a.kill();
    let _ = b.kill();
    let _ = a.wait();
    let _ = b.wait();
}

// ----------------------------------------------------------------------------------------------

#[test]
fn repeated_events_become_one_series() {
    let server = ApiServer::start(Backend::Embedded);
    let rt = runtime();
    let client = client_for(&rt, &server.url(), &metrics::Registry::new());
    let cm = match rt.block_on(client.api::<ConfigMap>(Some("default")).create(&ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("evented".into()),
            ..Default::default()
        },
        ..Default::default()
    })) {
        Ok(cm) => cm,
        Err(err) => panic!("{err}"),
    };
    let reference = client::events::object_reference(&cm);
    let recorder = {
        let _guard = rt.enter();
        client::events::EventRecorder::with_refresh(
            &client,
            "e2e-controller",
            "e2e-1",
            Duration::from_millis(200),
        )
    };
    for i in 0..5 {
        recorder.normal(&reference, "Synced", "Sync", &format!("synced {i}"));
    }
    recorder.warning(&reference, "Failed", "Sync", "it broke");
    let events = wait_for(
        "a series of 5 and one warning",
        Duration::from_secs(15),
        || {
            let out = server.kubectl([
                "get",
                "events.v1.events.k8s.io",
                "-n",
                "default",
                "-o",
                "json",
            ]);
            let list: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
            let items = list["items"].as_array()?.clone();
            let synced = items.iter().find(|e| e["reason"] == "Synced")?;
            (items.len() == 2 && synced["series"]["count"] == 5).then_some(items)
        },
    );
    let synced = events
        .iter()
        .find(|e| e["reason"] == "Synced")
        .cloned()
        .unwrap_or_default();
    assert_eq!(synced["regarding"]["name"], "evented");
    assert_eq!(synced["regarding"]["kind"], "ConfigMap");
    assert_eq!(synced["reportingController"], "e2e-controller");
    assert_eq!(
        synced["note"], "synced 0",
        "the series keeps the first note"
    );
    let warning = events
        .iter()
        .find(|e| e["reason"] == "Failed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(warning["type"], "Warning");
    assert!(warning["series"].is_null());
}

#[test]
fn the_dynamic_client_finds_resources_by_discovery() {
    let server = ApiServer::start(Backend::Embedded);
    let rt = runtime();
    let client = client_for(&rt, &server.url(), &metrics::Registry::new());
    let discovery = match rt.block_on(Discovery::run(&client)) {
        Ok(d) => d,
        Err(err) => panic!("{err}"),
    };
    let cm = match discovery.resolve("cm") {
        Ok(d) => d.clone(),
        Err(err) => panic!("{err}"),
    };
    assert_eq!(cm.resource.kind, "ConfigMap");
    assert!(cm.namespaced);
    let deploy = match discovery.resolve("deployments.apps") {
        Ok(d) => d,
        Err(err) => panic!("{err}"),
    };
    assert!(deploy.subresources.iter().any(|s| s == "scale"));
    let api: Api<DynamicObject> = client.api_with(Some("default"), &cm.resource);
    let mut obj = DynamicObject::new("dyn", &cm.resource);
    obj.data = serde_json::json!({"data": {"k": "v"}});
    if let Err(err) = rt.block_on(api.create(&obj)) {
        panic!("creating through the dynamic client: {err}");
    }
    let got = match rt.block_on(api.get("dyn")) {
        Ok(got) => got,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(got.data["data"]["k"], "v");
    let out = server.kubectl_stdout(["get", "cm", "dyn", "-o", "jsonpath={.data.k}"]);
    assert_eq!(out, "v");
    let err = discovery
        .resolve("widgets")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert_eq!(
        err,
        "invalid client configuration: the server doesn't have a resource type \"widgets\""
    );
}

#[test]
fn an_unreachable_server_is_retried_then_named() {
    let rt = runtime();
    let port = match e2e::free_port() {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let _guard = rt.enter();
    let client = match Client::with_registry(
        kube::Config::new(match url.parse() {
            Ok(u) => u,
            Err(err) => panic!("{err}"),
        }),
        ClientOptions::new("e2e").max_retries(2),
        &metrics::Registry::new(),
    ) {
        Ok(c) => c,
        Err(err) => panic!("{err}"),
    };
    let err = match rt.block_on(client.api::<ConfigMap>(Some("default")).get("x")) {
        Ok(_) => panic!("a get from nothing succeeded"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert!(err.is_unreachable(), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(text.contains("3 attempts"), "{text}");
    assert!(text.to_lowercase().contains("connection refused"), "{text}");
}

/// A server on its secure port with a token file (user `alice`, no RBAC grants) and the default
/// Node,RBAC authorization; returns it and the secure port.
fn secure_server() -> (ApiServer, u16) {
    let port = match e2e::free_port() {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let server = ApiServer::start_with(Backend::Embedded, |dir| {
        if let Err(err) = std::fs::write(dir.join("tokens.csv"), "alice-token,alice,uid-alice\n") {
            panic!("writing the token file: {err}");
        }
        vec![
            "--secure-port".into(),
            port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--cert-dir".into(),
            dir.join("certs").display().to_string(),
            "--token-auth-file".into(),
            dir.join("tokens.csv").display().to_string(),
        ]
    });
    (server, port)
}

fn kubeconfig(
    server: &ApiServer,
    name: &str,
    port: u16,
    cluster_extra: &str,
) -> std::path::PathBuf {
    server.write_file(
        name,
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n{cluster_extra}\
             contexts:\n- name: x\n  context: {{cluster: c, user: alice}}\ncurrent-context: x\n\
             users:\n- name: alice\n  user: {{token: alice-token}}\n"
        ),
    )
}

fn client_from_kubeconfig(rt: &tokio::runtime::Runtime, path: &std::path::Path) -> Client {
    let _guard = rt.enter();
    let config = match rt.block_on(client::config::load_config(Some(path), None, None)) {
        Ok(config) => config,
        Err(err) => panic!("loading {}: {err}", path.display()),
    };
    match Client::with_registry(
        config,
        ClientOptions::new("e2e").rate(-1.0, 0),
        &metrics::Registry::new(),
    ) {
        Ok(client) => client,
        Err(err) => panic!("{err}"),
    }
}

#[test]
fn a_wrong_ca_is_named_and_not_retried() {
    let (server, port) = secure_server();
    let rt = runtime();
    // A CA that did not sign the server's certificate: the server's own cert dir has one we
    // did not trust, so use a fresh self-signed one.
    let dir = server.work_dir();
    let out = std::process::Command::new("openssl")
        .current_dir(&dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "other.key",
            "-out",
            "other.crt",
            "-days",
            "1",
            "-subj",
            "/CN=other-ca",
        ])
        .output();
    assert!(
        out.map(|o| o.status.success()).unwrap_or(false),
        "openssl failed"
    );
    let path = kubeconfig(
        &server,
        "wrong-ca",
        port,
        &format!(
            "    certificate-authority: {}\n",
            dir.join("other.crt").display()
        ),
    );
    let client = client_from_kubeconfig(&rt, &path);
    let started = Instant::now();
    let err = match rt.block_on(client.api::<ConfigMap>(Some("default")).get("x")) {
        Ok(_) => panic!("a server with an untrusted certificate was trusted"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(
        text.contains("certificate"),
        "the error must say it is the certificate: {text}"
    );
    assert!(
        text.contains("(1 attempt)"),
        "a certificate failure is not transient: {text}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_forbidden_watch_is_reported_and_retried_until_granted() {
    let (server, port) = secure_server();
    let rt = runtime();
    let path = kubeconfig(
        &server,
        "alice",
        port,
        "    insecure-skip-tls-verify: true\n",
    );
    let client = client_from_kubeconfig(&rt, &path);
    let api: Api<Pod> = client.api(None);
    let watch = rt.block_on(api.watch(&Default::default(), "0"));
    let err = match watch {
        Ok(_) => panic!("alice may not watch pods"),
        Err(err) => err,
    };
    assert!(err.is_forbidden(), "{err}");
    assert_eq!(
        err.to_string(),
        "error from server (Forbidden): pods is forbidden: User \"alice\" cannot watch resource \"pods\" in API group \"\" at the cluster scope"
    );

    // An informer keeps trying (with backoff) instead of failing, and syncs once RBAC allows it.
    let factory = SharedInformerFactory::new(client.clone());
    let informer = factory.informer::<Pod>();
    {
        let _guard = rt.enter();
        factory.start();
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(!informer.has_synced());
    assert!(
        informer.stats().lists.load(Ordering::Relaxed) >= 2,
        "the list must be retried"
    );
    for args in [
        vec![
            "create",
            "clusterrole",
            "pod-reader",
            "--verb=get,list,watch",
            "--resource=pods",
        ],
        vec![
            "create",
            "clusterrolebinding",
            "alice-reads",
            "--clusterrole=pod-reader",
            "--user=alice",
        ],
    ] {
        let out = server.kubectl(args);
        assert!(out.status.success(), "{}", e2e::stderr(&out));
    }
    assert!(
        rt.block_on(informer.wait_synced_for(Duration::from_secs(40))),
        "the informer never synced after the grant"
    );
    factory.shutdown();
}

#[test]
fn bookmarks_move_a_quiet_informer_forward_and_resync_nudges_handlers() {
    let server = ApiServer::start(Backend::Embedded);
    let rt = runtime();
    let client = client_for(&rt, &server.url(), &metrics::Registry::new());
    create_namespace(&rt, &client, "quiet");
    create_namespace(&rt, &client, "busy");
    let quiet: Api<ConfigMap> = client.api(Some("quiet"));
    let mut cm = config_map("only", 1);
    cm.metadata.namespace = Some("quiet".into());
    if let Err(err) = rt.block_on(quiet.create(&cm)) {
        panic!("{err}");
    }
    let factory = SharedInformerFactory::new(client.clone());
    let informer = factory.informer_for::<ConfigMap>(Scope::namespace("quiet"));
    let nudges = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let _guard = rt.enter();
        let nudges = nudges.clone();
        informer.add_event_handler(Some(Duration::from_secs(1)), move |event| {
            if let Event::Update { old, new } = event {
                if Arc::ptr_eq(&old, &new) {
                    nudges.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        factory.start();
    }
    assert!(rt.block_on(informer.wait_synced_for(Duration::from_secs(30))));
    let synced_at: u64 = informer.last_resource_version().parse().unwrap_or(0);

    // Writes in another namespace never reach this informer as events, only as bookmarks.
    let busy: Api<ConfigMap> = client.api(Some("busy"));
    let mut last_write = 0;
    for i in 0..3 {
        let mut cm = config_map(&format!("b{i}"), i);
        cm.metadata.namespace = Some("busy".into());
        match rt.block_on(busy.create(&cm)) {
            Ok(created) => last_write = rv_of(&created).parse().unwrap_or(0),
            Err(err) => panic!("{err}"),
        }
    }
    assert!(last_write > synced_at);
    // The server sends a bookmark about once a minute, as upstream's cacher does.
    let resumed_at = wait_for(
        "a bookmark past the other namespace's writes",
        Duration::from_secs(90),
        || {
            let rv: u64 = informer.last_resource_version().parse().unwrap_or(0);
            (rv >= last_write).then_some(rv)
        },
    );
    assert!(resumed_at >= last_write);
    assert!(
        informer.stats().events.load(Ordering::Relaxed) > 0,
        "bookmarks are counted as events seen"
    );
    assert_eq!(informer.store().len(), 1);

    // The resync handler is nudged with the cached object itself (old and new the same).
    wait_for("a resync nudge", Duration::from_secs(10), || {
        (nudges.load(Ordering::Relaxed) >= 1).then_some(())
    });
    factory.shutdown();
}
