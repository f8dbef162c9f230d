//! The etcd backend against real etcd processes, for what the shared conformance suite cannot
//! show on one healthy member: surviving a killed cluster member, TLS with client
//! certificates, an unreachable etcd at start-up, progress notifications, etcd's compaction
//! errors and its request size limit.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::{
    Error, ListOptions, Precondition, Storage, WatchEvent, WatchStream, MAX_VALUE_BYTES,
};
use test_etcd::{Etcd, EtcdCluster};

/// How long one write may keep failing transiently (while a new leader is elected, or while
/// the client notices a dead member) before the test gives up on it.
const WRITE_RETRY_BUDGET: Duration = Duration::from_secs(15);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}

async fn connect(endpoints: Vec<String>, prefix: &str) -> anyhow::Result<EtcdStore> {
    let config = EtcdConfig {
        prefix: prefix.to_string(),
        connect_timeout: Duration::from_secs(20),
        ..EtcdConfig::new(endpoints)
    };
    Ok(EtcdStore::connect(config).await?)
}

/// Creates `key`, retrying transient failures. A retry can find the key already there when
/// an earlier attempt was applied but its answer lost: that counts as success if the value is
/// ours. Returns the write's revision.
async fn create_with_retry(store: &EtcdStore, key: &str, value: &[u8]) -> anyhow::Result<u64> {
    let deadline = Instant::now() + WRITE_RETRY_BUDGET;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let err = match store.create(key, value.to_vec()).await {
            Ok(kv) => return Ok(kv.mod_revision),
            Err(Error::AlreadyExists { .. }) if attempts > 1 => {
                let kv = get_with_retry(store, key)
                    .await?
                    .with_context(|| format!("{key} exists but cannot be read"))?;
                if kv.value != value {
                    bail!("{key} was created by someone else");
                }
                return Ok(kv.mod_revision);
            }
            Err(err) if err.is_transient() => err,
            Err(err) => return Err(err).with_context(|| format!("creating {key}")),
        };
        if Instant::now() >= deadline {
            bail!("creating {key} still fails after {WRITE_RETRY_BUDGET:?} ({attempts} attempts): {err}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_with_retry(store: &EtcdStore, key: &str) -> anyhow::Result<Option<storage::KeyValue>> {
    let deadline = Instant::now() + WRITE_RETRY_BUDGET;
    loop {
        match store.get(key).await {
            Ok(kv) => return Ok(kv),
            Err(err) if err.is_transient() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err).with_context(|| format!("reading {key}")),
        }
    }
}

async fn next_event(
    stream: &mut WatchStream,
    timeout: Duration,
) -> anyhow::Result<storage::Result<WatchEvent>> {
    tokio::time::timeout(timeout, stream.next())
        .await
        .context("no watch event in time")?
        .context("watch stream ended")
}

/// Writes keys to a 3-member cluster while one member is killed: writes keep succeeding (after
/// retries while the client and the cluster notice), revisions keep increasing, and every
/// acknowledged write is readable afterwards and visible to a watch from before the failure.
async fn writes_survive_killing(victim: Victim) -> anyhow::Result<()> {
    init_tracing();
    let mut cluster = EtcdCluster::start(3)?;
    let store = connect(cluster.endpoints(), "/ha").await?;
    let start_revision = store.current_revision().await?;

    let mut written = BTreeMap::new();
    let mut last_revision = start_revision;
    let write = |i: usize| {
        let key = format!("/items/{i:05}");
        let value = format!("value-{i}").into_bytes();
        (key, value)
    };
    for i in 0..30 {
        let (key, value) = write(i);
        let revision = create_with_retry(&store, &key, &value).await?;
        assert!(
            revision > last_revision,
            "revision went from {last_revision} to {revision}"
        );
        last_revision = revision;
        written.insert(key, value);
    }

    let leader = cluster.wait_for_leader(Duration::from_secs(10))?;
    let killed = match victim {
        Victim::Member0 => 0,
        Victim::Leader => leader,
    };
    cluster.kill(killed)?;
    let killed_at = Instant::now();
    eprintln!("killed member {killed} (the leader was member {leader})");

    let mut after_kill = 0;
    let mut first_write_after_kill = None;
    for i in 30..130 {
        let (key, value) = write(i);
        let revision = create_with_retry(&store, &key, &value).await?;
        first_write_after_kill.get_or_insert_with(|| killed_at.elapsed());
        assert!(
            revision > last_revision,
            "revision went from {last_revision} to {revision}"
        );
        last_revision = revision;
        written.insert(key, value);
        after_kill += 1;
    }
    eprintln!(
        "first write after the kill acknowledged after {:?}",
        first_write_after_kill.unwrap_or_default()
    );
    assert!(after_kill >= 50, "only {after_kill} writes after the kill");

    for (key, value) in &written {
        let kv = get_with_retry(&store, key)
            .await?
            .with_context(|| format!("{key} is missing"))?;
        assert_eq!(&kv.value, value, "{key}");
    }
    let listed = store.list("/items/", ListOptions::default()).await?;
    let listed: Vec<_> = listed.items.into_iter().map(|kv| kv.key).collect();
    assert_eq!(listed, written.keys().cloned().collect::<Vec<_>>());

    // A watch from before the failure replays every write, in order, from the survivors.
    let mut stream = store.watch("/items/", start_revision).await?;
    let mut seen = Vec::new();
    while seen.len() < written.len() {
        match next_event(&mut stream, Duration::from_secs(10)).await?? {
            WatchEvent::Created(kv) => seen.push(kv.key),
            WatchEvent::Progress { .. } => {}
            other => bail!("unexpected event {other:?}"),
        }
    }
    assert_eq!(seen, written.keys().cloned().collect::<Vec<_>>());
    Ok(())
}

enum Victim {
    Member0,
    Leader,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_continue_after_member_0_is_killed() -> anyhow::Result<()> {
    writes_survive_killing(Victim::Member0).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_continue_after_the_leader_is_killed() -> anyhow::Result<()> {
    writes_survive_killing(Victim::Leader).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificates() -> anyhow::Result<()> {
    init_tracing();
    let (etcd, files) = Etcd::start_tls()?;
    let config = EtcdConfig {
        prefix: "/tls".to_string(),
        ca_file: Some(files.ca.clone()),
        cert_file: Some(files.cert.clone()),
        key_file: Some(files.key.clone()),
        connect_timeout: Duration::from_secs(10),
        ..EtcdConfig::new(etcd.endpoints())
    };
    let store = EtcdStore::connect(config.clone()).await?;

    let mut stream = store.watch("/things/", 0).await?;
    let created = store.create("/things/a", b"1".to_vec()).await?;
    assert_eq!(store.get("/things/a").await?, Some(created.clone()));
    let listed = store.list("/things/", ListOptions::default()).await?;
    assert_eq!(listed.items, vec![created.clone()]);
    loop {
        match next_event(&mut stream, Duration::from_secs(5)).await?? {
            WatchEvent::Progress { .. } => continue,
            event => {
                assert_eq!(event, WatchEvent::Created(created));
                break;
            }
        }
    }

    // Without a client certificate etcd refuses the connection: connect gives up after its
    // timeout with an error naming the endpoint, instead of hanging.
    let without_cert = EtcdConfig {
        cert_file: None,
        key_file: None,
        connect_timeout: Duration::from_secs(2),
        ..config
    };
    let started = Instant::now();
    let result = EtcdStore::connect(without_cert).await;
    let elapsed = started.elapsed();
    let err = match result {
        Ok(_) => bail!("connected to a client-cert-auth etcd without a certificate"),
        Err(err) => err,
    };
    let message = error_chain(&err);
    eprintln!("without a client certificate ({elapsed:?}): {message}");
    assert!(matches!(err, Error::Unavailable { .. }), "{message}");
    assert!(message.contains(&etcd.endpoints()[0]), "{message}");
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_etcd_fails_after_the_connect_timeout() -> anyhow::Result<()> {
    init_tracing();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let config = EtcdConfig {
        connect_timeout: Duration::from_secs(1),
        ..EtcdConfig::new(vec![endpoint.clone()])
    };
    let started = Instant::now();
    let result = EtcdStore::connect(config).await;
    let elapsed = started.elapsed();
    let err = match result {
        Ok(_) => bail!("connected to a closed port"),
        Err(err) => err,
    };
    let message = error_chain(&err);
    eprintln!("unreachable ({elapsed:?}): {message}");
    assert!(matches!(err, Error::Unavailable { .. }), "{message}");
    assert!(err.is_transient());
    assert!(message.contains(&endpoint), "{message}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "gave up early: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watch_gets_progress_notifications() -> anyhow::Result<()> {
    init_tracing();
    let etcd = Etcd::start()?;
    let store = connect(etcd.endpoints(), "/progress").await?;
    store.create("/elsewhere/x", b"1".to_vec()).await?;
    let current = store.current_revision().await?;

    let mut stream = store.watch("/idle/", 0).await?;
    match next_event(&mut stream, Duration::from_secs(5)).await?? {
        WatchEvent::Progress { revision } => assert!(revision >= current, "{revision} < {current}"),
        other => bail!("expected a progress notification, got {other:?}"),
    }
    Ok(())
}

/// The store gives every request a 10s deadline; a watch is one long request and must not be
/// cut by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_outlives_the_request_timeout() -> anyhow::Result<()> {
    init_tracing();
    let etcd = Etcd::start()?;
    let store = connect(etcd.endpoints(), "/long").await?;
    let mut stream = store.watch("/w/", 0).await?;
    let until = Instant::now() + Duration::from_secs(12);
    let mut progress = 0;
    while Instant::now() < until {
        match next_event(&mut stream, Duration::from_secs(5)).await?? {
            WatchEvent::Progress { .. } => progress += 1,
            other => bail!("unexpected event {other:?}"),
        }
    }
    assert!(
        progress > 5,
        "only {progress} progress notifications in 12s"
    );
    let created = store.create("/w/late", b"1".to_vec()).await?;
    loop {
        match next_event(&mut stream, Duration::from_secs(5)).await?? {
            WatchEvent::Progress { .. } => continue,
            event => {
                assert_eq!(event, WatchEvent::Created(created));
                return Ok(());
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_revisions_are_refused() -> anyhow::Result<()> {
    init_tracing();
    let etcd = Etcd::start()?;
    let store = connect(etcd.endpoints(), "/compaction").await?;
    let created = store.create("/k/a", b"0".to_vec()).await?;
    let mut latest = created.clone();
    for i in 1..=5 {
        latest = store
            .update(
                "/k/a",
                format!("{i}").into_bytes(),
                Precondition::ModRevision(latest.mod_revision),
            )
            .await?;
    }
    store.compact(latest.mod_revision).await?;
    // Compacting to the same revision again is not an error.
    store.compact(latest.mod_revision).await?;
    store.compact(created.mod_revision).await?;

    let old = created.mod_revision;
    match store.watch("/k/", old).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (old + 1, latest.mod_revision));
        }
        Err(err) => bail!("expected Compacted, got {err}"),
        Ok(mut stream) => match next_event(&mut stream, Duration::from_secs(5)).await? {
            Err(Error::Compacted {
                requested,
                compacted,
            }) => {
                assert_eq!((requested, compacted), (old + 1, latest.mod_revision));
                assert!(
                    tokio::time::timeout(Duration::from_secs(1), stream.next())
                        .await?
                        .is_none(),
                    "the stream ends after the error"
                );
            }
            other => bail!("expected Compacted, got {other:?}"),
        },
    }

    let at_old = ListOptions::at_revision(old);
    match store.list("/k/", at_old).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => {
            assert_eq!((requested, compacted), (old, latest.mod_revision));
        }
        other => bail!("expected Compacted, got {other:?}"),
    }

    // The compacted revision itself is still readable, and the future is not.
    let at_latest = ListOptions::at_revision(latest.mod_revision);
    assert_eq!(
        store.list("/k/", at_latest).await?.items,
        vec![latest.clone()]
    );
    let future = latest.mod_revision + 100;
    let at_future = ListOptions::at_revision(future);
    match store.list("/k/", at_future).await {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (future, latest.mod_revision));
        }
        other => bail!("expected FutureRevision, got {other:?}"),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_over_the_limit_are_refused_before_reaching_etcd() -> anyhow::Result<()> {
    init_tracing();
    let etcd = Etcd::start()?;
    let store = connect(etcd.endpoints(), "/limits").await?;

    let too_large = vec![b'x'; MAX_VALUE_BYTES + 1];
    match store.create("/big/a", too_large.clone()).await {
        Err(Error::TooLarge { key, size, limit }) => {
            assert_eq!(
                (key.as_str(), size, limit),
                ("/big/a", MAX_VALUE_BYTES + 1, MAX_VALUE_BYTES)
            );
        }
        other => bail!("expected TooLarge, got {other:?}"),
    }
    assert_eq!(store.get("/big/a").await?, None);

    // Exactly the limit fits (the harness raises etcd's own request limit above it), and an
    // update over the limit leaves the stored value alone.
    let at_limit = vec![b'y'; MAX_VALUE_BYTES];
    let kv = store.create("/big/b", at_limit.clone()).await?;
    assert!(matches!(
        store.update("/big/b", too_large, Precondition::None).await,
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(store.get("/big/b").await?, Some(kv));
    Ok(())
}

/// An error with all its sources, as a log line would show it.
fn error_chain(err: &Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        message.push_str(": ");
        message.push_str(&inner.to_string());
        source = inner.source();
    }
    message
}
