//! The storage contract, run against both backends: the embedded store in a temporary directory
//! and a real etcd started on free loopback ports for each test.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use rand::{Rng, SeedableRng};
use storage::embedded::{EmbeddedConfig, EmbeddedStore};
use storage::etcd::{EtcdConfig, EtcdStore};
use storage::{
    Error, KeyValue, ListOptions, Precondition, Storage, WatchEvent, WatchStream, MAX_VALUE_BYTES,
};

/// Keeps whatever backs a store (a temporary directory, an etcd process) alive for a test.
#[allow(dead_code)]
enum Guard {
    Dir(tempfile::TempDir),
    Etcd(test_etcd::Etcd),
}

async fn embedded() -> (Arc<dyn Storage>, Guard) {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(EmbeddedConfig::new(dir.path())).unwrap();
    (Arc::new(store), Guard::Dir(dir))
}

async fn etcd() -> (Arc<dyn Storage>, Guard) {
    let etcd = tokio::task::spawn_blocking(test_etcd::Etcd::start)
        .await
        .unwrap()
        .unwrap();
    let config = EtcdConfig {
        prefix: "/registry-test".to_string(),
        ..EtcdConfig::new(etcd.endpoints())
    };
    let store = EtcdStore::connect(config).await.unwrap();
    (Arc::new(store), Guard::Etcd(etcd))
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _guard) = super::embedded().await;
                    super::$case(store).await;
                }
            )*
        }
        mod etcd_backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (store, _guard) = super::etcd().await;
                    super::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    create_and_get,
    create_refuses_an_existing_key,
    update_is_compare_and_swap,
    delete_with_precondition,
    list_at_a_past_revision,
    pagination_reads_one_snapshot_across_concurrent_writes,
    watch_delivers_changes_in_order_with_previous_values,
    watch_from_an_old_revision_replays_exactly_the_missed_events,
    compaction_expires_old_revisions,
    concurrent_compare_and_swap_never_loses_an_update,
    values_over_the_limit_are_refused,
    randomized_history_matches_every_watcher,
);

fn bytes(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

/// The next event of a watch that is not a progress report, or `None` after `wait`.
async fn next_change(
    watch: &mut WatchStream,
    wait: Duration,
) -> Option<storage::Result<WatchEvent>> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, watch.next()).await {
            Ok(Some(Ok(WatchEvent::Progress { .. }))) => continue,
            Ok(other) => return other,
            Err(_) => return None,
        }
    }
}

async fn collect_changes(watch: &mut WatchStream, count: usize) -> Vec<WatchEvent> {
    let mut events = Vec::new();
    while events.len() < count {
        match next_change(watch, Duration::from_secs(20)).await {
            Some(Ok(event)) => events.push(event),
            Some(Err(err)) => panic!("watch failed after {} events: {err}", events.len()),
            None => panic!("watch stalled after {} of {count} events", events.len()),
        }
    }
    events
}

async fn create_and_get(store: Arc<dyn Storage>) {
    let before = store.current_revision().await.unwrap();
    let created = store.create("/pods/default/a", bytes("one")).await.unwrap();
    assert!(created.mod_revision > before);
    assert_eq!(created.create_revision, created.mod_revision);
    assert_eq!(
        store.current_revision().await.unwrap(),
        created.mod_revision
    );

    let got = store.get("/pods/default/a").await.unwrap().unwrap();
    assert_eq!(got, created);
    assert_eq!(got.value, b"one");
    assert!(store.get("/pods/default/missing").await.unwrap().is_none());

    let second = store.create("/pods/default/b", bytes("two")).await.unwrap();
    assert!(
        second.mod_revision > created.mod_revision,
        "revisions increase"
    );
}

async fn create_refuses_an_existing_key(store: Arc<dyn Storage>) {
    let first = store.create("/cm/ns/x", bytes("first")).await.unwrap();
    let err = store.create("/cm/ns/x", bytes("second")).await.unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { ref key } if key == "/cm/ns/x"),
        "{err}"
    );
    assert_eq!(store.get("/cm/ns/x").await.unwrap().unwrap(), first);
    assert_eq!(store.current_revision().await.unwrap(), first.mod_revision);
}

async fn update_is_compare_and_swap(store: Arc<dyn Storage>) {
    let v1 = store.create("/cm/ns/x", bytes("v1")).await.unwrap();
    let v2 = store
        .update(
            "/cm/ns/x",
            bytes("v2"),
            Precondition::ModRevision(v1.mod_revision),
        )
        .await
        .unwrap();
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);

    let err = store
        .update(
            "/cm/ns/x",
            bytes("stale"),
            Precondition::ModRevision(v1.mod_revision),
        )
        .await
        .unwrap_err();
    match err {
        Error::Conflict {
            expected, actual, ..
        } => {
            assert_eq!(expected, v1.mod_revision);
            assert_eq!(actual, v2.mod_revision);
        }
        other => panic!("expected a conflict, got {other}"),
    }
    assert_eq!(store.get("/cm/ns/x").await.unwrap().unwrap().value, b"v2");

    let v3 = store
        .update("/cm/ns/x", bytes("v3"), Precondition::None)
        .await
        .unwrap();
    assert!(v3.mod_revision > v2.mod_revision);

    let err = store
        .update("/cm/ns/missing", bytes("x"), Precondition::None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(store.get("/cm/ns/missing").await.unwrap().is_none());
}

async fn delete_with_precondition(store: Arc<dyn Storage>) {
    let v1 = store.create("/s/ns/x", bytes("v1")).await.unwrap();
    let v2 = store
        .update("/s/ns/x", bytes("v2"), Precondition::None)
        .await
        .unwrap();
    let err = store
        .delete("/s/ns/x", Precondition::ModRevision(v1.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(store.get("/s/ns/x").await.unwrap().is_some());

    let deleted = store
        .delete("/s/ns/x", Precondition::ModRevision(v2.mod_revision))
        .await
        .unwrap();
    assert_eq!(deleted, v2, "delete returns the last value");
    assert!(store.get("/s/ns/x").await.unwrap().is_none());
    assert!(store.current_revision().await.unwrap() > v2.mod_revision);

    let err = store
        .delete("/s/ns/x", Precondition::None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

async fn list_at_a_past_revision(store: Arc<dyn Storage>) {
    let a1 = store.create("/p/a", bytes("a1")).await.unwrap();
    let b1 = store.create("/p/b", bytes("b1")).await.unwrap();
    let c1 = store.create("/p/c", bytes("c1")).await.unwrap();
    store.create("/other/z", bytes("z")).await.unwrap();
    store.create("/p2/a", bytes("not under /p/")).await.unwrap();
    let snapshot = store.current_revision().await.unwrap();

    store
        .update("/p/a", bytes("a2"), Precondition::None)
        .await
        .unwrap();
    store.delete("/p/b", Precondition::None).await.unwrap();
    let d1 = store.create("/p/d", bytes("d1")).await.unwrap();

    let past = store
        .list("/p/", ListOptions::at_revision(snapshot))
        .await
        .unwrap();
    assert_eq!(past.revision, snapshot);
    assert_eq!(past.items, vec![a1, b1, c1.clone()]);
    assert!(past.continue_token.is_none());

    let latest = store.list("/p/", ListOptions::default()).await.unwrap();
    assert_eq!(latest.revision, store.current_revision().await.unwrap());
    let keys: Vec<_> = latest.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/c", "/p/d"]);
    assert_eq!(latest.items[0].value, b"a2");
    assert_eq!(latest.items[1], c1);
    assert_eq!(latest.items[2], d1);

    let future = store
        .list("/p/", ListOptions::at_revision(latest.revision + 1000))
        .await
        .unwrap_err();
    assert!(matches!(future, Error::FutureRevision { .. }), "{future}");
}

async fn pagination_reads_one_snapshot_across_concurrent_writes(store: Arc<dyn Storage>) {
    for i in 0..25 {
        store
            .create(&format!("/pg/k{i:02}"), bytes(&format!("v{i}")))
            .await
            .unwrap();
    }
    let expected = store.list("/pg/", ListOptions::default()).await.unwrap();
    assert_eq!(expected.items.len(), 25);

    let first = store
        .list(
            "/pg/",
            ListOptions {
                limit: Some(7),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 7);
    assert_eq!(first.revision, expected.revision);
    let mut pages = vec![first.clone()];
    let mut token = first.continue_token.clone();

    // Writers change the prefix between pages: updates, deletes and new keys at both ends.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 0..25 {
                let key = format!("/pg/k{i:02}");
                if i % 3 == 0 {
                    store.delete(&key, Precondition::None).await.unwrap();
                } else {
                    store
                        .update(&key, bytes("changed"), Precondition::None)
                        .await
                        .unwrap();
                }
                store
                    .create(&format!("/pg/new{i:02}"), bytes("new"))
                    .await
                    .unwrap();
            }
        })
    };
    while let Some(next) = token {
        let page = store
            .list(
                "/pg/",
                ListOptions {
                    limit: Some(7),
                    continue_token: Some(next),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(
            page.revision, expected.revision,
            "every page reads the first page's revision"
        );
        token = page.continue_token.clone();
        pages.push(page);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.await.unwrap();
    assert_eq!(pages.len(), 4, "25 items in pages of 7");
    let remaining: Vec<Option<u64>> = pages.iter().map(|p| p.remaining).collect();
    assert_eq!(
        remaining,
        vec![Some(18), Some(11), Some(4), None],
        "each page says how many items of the snapshot follow it"
    );
    let all: Vec<KeyValue> = pages.into_iter().flat_map(|p| p.items).collect();
    assert_eq!(all, expected.items);

    let broken = store
        .list(
            "/pg/",
            ListOptions {
                limit: Some(7),
                continue_token: Some("not-a-token".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(broken, Error::InvalidContinue { .. }), "{broken}");
}

async fn watch_delivers_changes_in_order_with_previous_values(store: Arc<dyn Storage>) {
    let mut watch = store.watch("/w/", 0).await.unwrap();
    let a = store.create("/w/a", bytes("a1")).await.unwrap();
    store
        .create("/elsewhere/x", bytes("ignored"))
        .await
        .unwrap();
    let a2 = store
        .update("/w/a", bytes("a2"), Precondition::None)
        .await
        .unwrap();
    let b = store.create("/w/b", bytes("b1")).await.unwrap();
    store.delete("/w/a", Precondition::None).await.unwrap();

    let events = collect_changes(&mut watch, 4).await;
    assert_eq!(events[0], WatchEvent::Created(a.clone()));
    assert_eq!(
        events[1],
        WatchEvent::Modified {
            current: a2.clone(),
            prev: Some(a.clone())
        }
    );
    assert_eq!(events[2], WatchEvent::Created(b));
    match &events[3] {
        WatchEvent::Deleted {
            key,
            revision,
            prev,
        } => {
            assert_eq!(key, "/w/a");
            assert_eq!(prev.as_ref(), Some(&a2), "a delete carries the last value");
            assert_eq!(*revision, store.current_revision().await.unwrap());
        }
        other => panic!("expected a delete, got {other:?}"),
    }
    let revisions: Vec<u64> = events.iter().map(WatchEvent::revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "{revisions:?}");
    assert!(
        next_change(&mut watch, Duration::from_millis(300))
            .await
            .is_none(),
        "no event outside the prefix"
    );
}

async fn watch_from_an_old_revision_replays_exactly_the_missed_events(store: Arc<dyn Storage>) {
    let mut written = Vec::new();
    for i in 0..20 {
        written.push(
            store
                .create(&format!("/r/k{i}"), bytes(&format!("{i}")))
                .await
                .unwrap(),
        );
    }
    let resume_after = written[9].mod_revision;
    let mut watch = store.watch("/r/", resume_after).await.unwrap();
    let replayed = collect_changes(&mut watch, 10).await;
    let expected: Vec<WatchEvent> = written[10..]
        .iter()
        .cloned()
        .map(WatchEvent::Created)
        .collect();
    assert_eq!(replayed, expected);

    // The replay hands over to live events without a gap or a duplicate.
    let live = store.create("/r/live", bytes("live")).await.unwrap();
    let next = collect_changes(&mut watch, 1).await;
    assert_eq!(next, vec![WatchEvent::Created(live)]);
    assert!(next_change(&mut watch, Duration::from_millis(300))
        .await
        .is_none());
}

async fn compaction_expires_old_revisions(store: Arc<dyn Storage>) {
    let v1 = store.create("/c/x", bytes("1")).await.unwrap();
    for i in 2..=5 {
        store
            .update("/c/x", bytes(&i.to_string()), Precondition::None)
            .await
            .unwrap();
    }
    let latest = store.current_revision().await.unwrap();
    store.compact(latest).await.unwrap();
    // Compacting again to the same (or an older) revision is harmless.
    store.compact(latest).await.unwrap();

    let mut watch = store.watch("/c/", v1.mod_revision).await.unwrap();
    match next_change(&mut watch, Duration::from_secs(10)).await {
        Some(Err(Error::Compacted { .. })) => {}
        other => panic!("expected a compacted error, got {other:?}"),
    }
    let err = store
        .list("/c/", ListOptions::at_revision(v1.mod_revision))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Compacted { .. }), "{err}");

    // The latest state survives compaction, and so does the compacted revision itself.
    assert_eq!(store.get("/c/x").await.unwrap().unwrap().value, b"5");
    let at_compacted = store
        .list("/c/", ListOptions::at_revision(latest))
        .await
        .unwrap();
    assert_eq!(at_compacted.items.len(), 1);
    let mut from_latest = store.watch("/c/", latest).await.unwrap();
    let next = store
        .update("/c/x", bytes("6"), Precondition::None)
        .await
        .unwrap();
    let events = collect_changes(&mut from_latest, 1).await;
    assert_eq!(events[0].revision(), next.mod_revision);
}

async fn concurrent_compare_and_swap_never_loses_an_update(store: Arc<dyn Storage>) {
    const WRITERS: usize = 8;
    const INCREMENTS: usize = 25;
    store.create("/counter", bytes("0")).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..WRITERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut successes = 0usize;
            let mut conflicts = 0usize;
            while successes < INCREMENTS {
                let current = store.get("/counter").await.unwrap().unwrap();
                let n: usize = std::str::from_utf8(&current.value)
                    .unwrap()
                    .parse()
                    .unwrap();
                match store
                    .update(
                        "/counter",
                        (n + 1).to_string().into_bytes(),
                        Precondition::ModRevision(current.mod_revision),
                    )
                    .await
                {
                    Ok(_) => successes += 1,
                    Err(Error::Conflict { .. }) => conflicts += 1,
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            (successes, conflicts)
        }));
    }
    let mut total = 0;
    for task in tasks {
        let (successes, _conflicts) = task.await.unwrap();
        total += successes;
    }
    let end = store.get("/counter").await.unwrap().unwrap();
    let value: usize = std::str::from_utf8(&end.value).unwrap().parse().unwrap();
    assert_eq!(total, WRITERS * INCREMENTS);
    assert_eq!(
        value, total,
        "every successful compare-and-swap is counted once"
    );
}

async fn values_over_the_limit_are_refused(store: Arc<dyn Storage>) {
    let before = store.current_revision().await.unwrap();
    let err = store
        .create("/big/x", vec![b'x'; MAX_VALUE_BYTES + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(store.get("/big/x").await.unwrap().is_none());
    assert_eq!(
        store.current_revision().await.unwrap(),
        before,
        "nothing written"
    );

    store.create("/big/y", bytes("small")).await.unwrap();
    let err = store
        .update(
            "/big/y",
            vec![b'y'; MAX_VALUE_BYTES + 1],
            Precondition::None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert_eq!(store.get("/big/y").await.unwrap().unwrap().value, b"small");

    // Just under the limit is fine (leave room for etcd's request framing and the key).
    let near = MAX_VALUE_BYTES - 4096;
    store.create("/big/z", vec![b'z'; near]).await.unwrap();
    assert_eq!(
        store.get("/big/z").await.unwrap().unwrap().value.len(),
        near
    );
}

/// What a writer saw succeed, to check watchers against.
#[derive(Debug, Clone)]
enum Written {
    Put(KeyValue),
    Deleted(KeyValue),
}

async fn randomized_history_matches_every_watcher(store: Arc<dyn Storage>) {
    const WRITERS: u64 = 4;
    const OPS: usize = 60;
    let prefixes = ["/h/a/", "/h/b/"];
    let start = store.current_revision().await.unwrap();

    // A watcher over everything from the start is the reference; others join later, on one
    // prefix, from a revision in the middle of the run.
    let reference = store.watch("/h/", start).await.unwrap();
    let mut writers = Vec::new();
    for seed in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut log = Vec::new();
            for _ in 0..OPS {
                let prefix = prefixes[rng.random_range(0..2)];
                let key = format!("{prefix}k{}", rng.random_range(0..6));
                let value = format!("w{seed}-{}", rng.random::<u32>()).into_bytes();
                let outcome = match rng.random_range(0..3) {
                    0 => store.create(&key, value).await.map(Written::Put),
                    1 => store
                        .update(&key, value, Precondition::None)
                        .await
                        .map(Written::Put),
                    _ => store
                        .delete(&key, Precondition::None)
                        .await
                        .map(Written::Deleted),
                };
                match outcome {
                    Ok(written) => log.push(written),
                    Err(Error::AlreadyExists { .. } | Error::NotFound { .. }) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            log
        }));
    }
    tokio::time::sleep(Duration::from_millis(30)).await;
    let middle = store.current_revision().await.unwrap();
    let late_watchers: Vec<(&str, WatchStream)> = {
        let mut watchers = Vec::new();
        for prefix in prefixes {
            watchers.push((prefix, store.watch(prefix, middle).await.unwrap()));
        }
        watchers
    };

    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }
    let end = store.current_revision().await.unwrap();

    let drain = |mut watch: WatchStream, after: u64| async move {
        let mut events = Vec::new();
        let mut last = after;
        while last < end {
            match next_change(&mut watch, Duration::from_secs(20)).await {
                Some(Ok(event)) => {
                    last = event.revision();
                    events.push(event);
                }
                Some(Err(err)) => panic!("watch failed: {err}"),
                None => panic!("watch stalled at {last}, store at {end}"),
            }
        }
        events
    };
    let history = drain(reference, start).await;

    // The reference stream is exactly what the writers did: same count, every put at its
    // revision with its value, every delete with the deleted value, strictly increasing.
    assert_eq!(
        history.len(),
        written.len(),
        "one event per successful write"
    );
    let revisions: Vec<u64> = history.iter().map(WatchEvent::revision).collect();
    assert!(
        revisions.windows(2).all(|w| w[0] < w[1]),
        "ordered, no duplicates"
    );
    let by_revision: HashMap<u64, &WatchEvent> =
        history.iter().map(|e| (e.revision(), e)).collect();
    let mut deletes: BTreeMap<(String, u64), usize> = BTreeMap::new();
    for write in &written {
        match write {
            Written::Put(kv) => match by_revision.get(&kv.mod_revision) {
                Some(WatchEvent::Created(seen))
                | Some(WatchEvent::Modified { current: seen, .. }) => {
                    assert_eq!(seen, kv)
                }
                other => panic!("put at {} seen as {other:?}", kv.mod_revision),
            },
            Written::Deleted(kv) => {
                *deletes
                    .entry((kv.key.clone(), kv.mod_revision))
                    .or_default() += 1;
            }
        }
    }
    for event in &history {
        if let WatchEvent::Deleted { key, prev, .. } = event {
            let prev = prev.as_ref().expect("deletes carry the previous value");
            assert_eq!(&prev.key, key);
            let seen = deletes
                .get_mut(&(key.clone(), prev.mod_revision))
                .expect("a delete that happened");
            *seen -= 1;
        }
    }
    assert!(deletes.values().all(|n| *n == 0), "every delete seen once");

    // Every late watcher sees exactly the reference history for its prefix after its start.
    for (prefix, mut watch) in late_watchers {
        let expected: Vec<WatchEvent> = history
            .iter()
            .filter(|e| e.revision() > middle && e.key().is_some_and(|k| k.starts_with(prefix)))
            .cloned()
            .collect();
        let seen = collect_changes(&mut watch, expected.len()).await;
        assert_eq!(seen, expected, "watcher on {prefix} from {middle}");
        assert!(
            next_change(&mut watch, Duration::from_millis(200))
                .await
                .is_none(),
            "no extra event on {prefix}"
        );
    }
}
