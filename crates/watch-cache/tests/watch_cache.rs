//! The watch cache against the real embedded store in a temporary directory: what clients see
//! through it must be exactly what storage holds and emits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures::{FutureExt, StreamExt};
use serde_json::{json, Value};
use storage::embedded::{EmbeddedConfig, EmbeddedStore};
use storage::{ListOptions, Precondition, Storage, WatchEvent};
use watch_cache::{everything, Config, Decoder, Error, Event, Filter, Start, WatchCache, Watcher};

const PODS: &str = "/registry/pods/";
const WAIT: Duration = Duration::from_secs(10);

struct Harness {
    store: Arc<dyn Storage>,
    _dir: tempfile::TempDir,
}

fn harness() -> Result<Harness> {
    let dir = tempfile::tempdir()?;
    let config = EmbeddedConfig {
        // Short, so that writes under other prefixes reach the cache as progress quickly.
        watch_progress_interval: Duration::from_millis(50),
        ..EmbeddedConfig::new(dir.path())
    };
    let store: Arc<dyn Storage> = Arc::new(EmbeddedStore::open(config)?);
    Ok(Harness { store, _dir: dir })
}

fn decoder() -> Decoder<Value> {
    Arc::new(|kv: &storage::KeyValue| serde_json::from_slice(&kv.value).map_err(|e| e.to_string()))
}

fn config() -> Config {
    Config {
        history_capacity: 1000,
        watcher_buffer: 1000,
        bookmark_interval: Duration::from_secs(60),
    }
}

async fn cache(h: &Harness, config: Config) -> Result<Arc<WatchCache<Value>>> {
    Ok(WatchCache::start(h.store.clone(), PODS.to_string(), decoder(), config).await?)
}

fn pod(key: &str, app: &str, n: u64) -> Vec<u8> {
    json!({"key": key, "app": app, "n": n})
        .to_string()
        .into_bytes()
}

async fn create(h: &Harness, key: &str, app: &str) -> Result<u64> {
    Ok(h.store.create(key, pod(key, app, 0)).await?.mod_revision)
}

async fn update(h: &Harness, key: &str, app: &str, n: u64) -> Result<u64> {
    Ok(h.store
        .update(key, pod(key, app, n), Precondition::None)
        .await?
        .mod_revision)
}

async fn delete(h: &Harness, key: &str) -> Result<u64> {
    h.store.delete(key, Precondition::None).await?;
    Ok(h.store.current_revision().await?)
}

fn field(object: &Value, name: &str) -> String {
    object
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// An event as (type, key, app, revision), for comparisons.
type Shape = (&'static str, String, String, u64);

fn shape(event: &Event<Value>) -> Shape {
    match event {
        Event::Added(o, r) => ("ADDED", field(o, "key"), field(o, "app"), *r),
        Event::Modified(o, r) => ("MODIFIED", field(o, "key"), field(o, "app"), *r),
        Event::Deleted(o, r) => ("DELETED", field(o, "key"), field(o, "app"), *r),
        Event::Bookmark(r) => ("BOOKMARK", String::new(), String::new(), *r),
        Event::InitialEventsEnd(r) => ("INITIAL_END", String::new(), String::new(), *r),
    }
}

fn storage_shape(event: &WatchEvent) -> Option<Shape> {
    let app = |kv: &storage::KeyValue| {
        serde_json::from_slice::<Value>(&kv.value)
            .map(|v| field(&v, "app"))
            .unwrap_or_default()
    };
    match event {
        WatchEvent::Created(kv) => Some(("ADDED", kv.key.clone(), app(kv), kv.mod_revision)),
        WatchEvent::Modified { current, .. } => Some((
            "MODIFIED",
            current.key.clone(),
            app(current),
            current.mod_revision,
        )),
        WatchEvent::Deleted {
            key,
            revision,
            prev,
        } => Some((
            "DELETED",
            key.clone(),
            prev.as_ref().map(app).unwrap_or_default(),
            *revision,
        )),
        WatchEvent::Progress { .. } => None,
    }
}

async fn next(watcher: &mut Watcher<Value>) -> Result<Event<Value>> {
    tokio::time::timeout(WAIT, watcher.next())
        .await
        .context("no event in time")?
        .ok_or_else(|| anyhow!("watcher closed"))
}

async fn take(watcher: &mut Watcher<Value>, n: usize) -> Result<Vec<Shape>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(shape(&next(watcher).await?));
    }
    Ok(out)
}

/// Asserts nothing more is queued right now (without waiting for the future).
fn assert_quiet(watcher: &mut Watcher<Value>) -> Result<()> {
    if let Some(Some(event)) = watcher.next().now_or_never() {
        bail!("unexpected event {:?}", shape(&event));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_get_equal_storage() -> Result<()> {
    let h = harness()?;
    for (ns, name, app) in [("a", "x", "web"), ("a", "y", "db"), ("b", "z", "web")] {
        create(&h, &format!("{PODS}{ns}/{name}"), app).await?;
    }
    create(&h, "/registry/services/a/x", "web").await?;
    let cache = cache(&h, config()).await?;
    create(&h, &format!("{PODS}a/w"), "web").await?;
    let revision = delete(&h, &format!("{PODS}b/z")).await?;
    assert!(cache.wait_for_revision(revision, WAIT).await);

    let stored = h.store.list(PODS, ListOptions::default()).await?;
    let (items, at) = cache.list(PODS, &|_| true);
    assert_eq!(at, stored.revision);
    let want: Vec<Value> = stored
        .items
        .iter()
        .map(|kv| serde_json::from_slice(&kv.value))
        .collect::<Result<_, _>>()?;
    let got: Vec<Value> = items.iter().map(|v| (**v).clone()).collect();
    assert_eq!(got, want);

    // A namespace sub-prefix with a filter, in key order.
    let (web, _) = cache.list(&format!("{PODS}a/"), &|v| field(v, "app") == "web");
    let keys: Vec<String> = web.iter().map(|v| field(v, "key")).collect();
    assert_eq!(keys, vec![format!("{PODS}a/w"), format!("{PODS}a/x")]);

    let (found, _) = cache.get(&format!("{PODS}a/y"));
    assert_eq!(found.map(|v| field(&v, "app")), Some("db".to_string()));
    assert!(cache.get(&format!("{PODS}b/z")).0.is_none());
    assert!(cache.get("/registry/services/a/x").0.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_watchers_each_see_the_storage_history() -> Result<()> {
    let h = harness()?;
    let cache = cache(&h, config()).await?;
    let start = cache.revision();
    create(&h, "/registry/services/ns/s", "x").await?;
    let mut direct = h.store.watch(PODS, start).await?;
    let watchers: Vec<_> = (0..100)
        .map(|_| cache.watch(PODS, Start::After(start), everything(), false))
        .collect::<Result<_, _>>()?;
    assert_eq!(cache.metrics().watchers_open(), 100);

    let mut writes = 0;
    for i in 0..20u64 {
        let key = format!("{PODS}ns/p{}", i % 5);
        if cache.get(&key).0.is_some() {
            if i % 3 == 0 {
                delete(&h, &key).await?;
            } else {
                update(&h, &key, "web", i).await?;
            }
        } else {
            create(&h, &key, "web").await?;
        }
        writes += 1;
        // Writes elsewhere must not show up.
        update(&h, "/registry/services/ns/s", "x", i).await?;
        // Wait on one cache read so that the `get` above sees the latest state.
        let revision = h.store.current_revision().await?;
        assert!(cache.wait_for_revision(revision, WAIT).await);
    }

    let mut want = Vec::new();
    while want.len() < writes {
        let event = tokio::time::timeout(WAIT, direct.next())
            .await?
            .ok_or_else(|| anyhow!("storage watch ended"))??;
        want.extend(storage_shape(&event));
    }
    let tasks: Vec<_> = watchers
        .into_iter()
        .map(|mut w| tokio::spawn(async move { take(&mut w, writes).await.map(|s| (s, w)) }))
        .collect();
    for task in tasks {
        let (seen, mut watcher) = task.await??;
        assert_eq!(seen, want);
        assert_quiet(&mut watcher)?;
    }
    assert_eq!(
        cache.metrics().watchers_open(),
        0,
        "dropped watchers unregister"
    );
    assert_eq!(cache.metrics().events_dispatched(), 100 * writes as u64);
    assert_eq!(cache.metrics().watchers_closed_slow(), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_the_missed_changes() -> Result<()> {
    let h = harness()?;
    let cache = cache(&h, config()).await?;
    let a = format!("{PODS}ns/a");
    let r1 = create(&h, &a, "web").await?;
    let r2 = update(&h, &a, "web", 1).await?;
    let r3 = update(&h, &a, "db", 2).await?;
    let r4 = delete(&h, &a).await?;
    assert!(cache.wait_for_revision(r4, WAIT).await);

    let mut watcher = cache.watch(PODS, Start::After(r2), everything(), false)?;
    assert_eq!(
        take(&mut watcher, 2).await?,
        vec![
            ("MODIFIED", a.clone(), "db".to_string(), r3),
            ("DELETED", a.clone(), "db".to_string(), r4),
        ]
    );
    assert_quiet(&mut watcher)?;
    let r5 = create(&h, &a, "web").await?;
    assert_eq!(
        take(&mut watcher, 1).await?,
        vec![("ADDED", a.clone(), "web".to_string(), r5)]
    );

    // From the very start of the window: everything.
    let mut all = cache.watch(PODS, Start::After(r1 - 1), everything(), false)?;
    let revisions: Vec<u64> = take(&mut all, 5).await?.into_iter().map(|s| s.3).collect();
    assert_eq!(revisions, vec![r1, r2, r3, r4, r5]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revision_older_than_the_window_is_expired() -> Result<()> {
    let h = harness()?;
    let cache = cache(
        &h,
        Config {
            history_capacity: 3,
            ..config()
        },
    )
    .await?;
    let mut revisions = Vec::new();
    for i in 0..6 {
        revisions.push(create(&h, &format!("{PODS}ns/p{i}"), "web").await?);
    }
    let last = revisions.last().copied().unwrap_or_default();
    assert!(cache.wait_for_revision(last, WAIT).await);
    // Six changes, three kept: resuming after the third still works, after the second does not.
    let (second, third) = (revisions[1], revisions[2]);
    match cache.watch(PODS, Start::After(second), everything(), false) {
        Err(err @ Error::Expired { .. }) => {
            assert!(
                matches!(err, Error::Expired { requested, oldest } if requested == second && oldest == third)
            );
            assert_eq!(
                err.to_string(),
                format!("too old resource version: {second} ({third})")
            );
        }
        Err(other) => bail!("unexpected error {other}"),
        Ok(_) => bail!("watch from a compacted-away revision succeeded"),
    }
    let mut watcher = cache.watch(PODS, Start::After(third), everything(), false)?;
    let got: Vec<u64> = take(&mut watcher, 3)
        .await?
        .into_iter()
        .map(|s| s.3)
        .collect();
    assert_eq!(got, revisions[3..].to_vec());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_turn_updates_into_added_and_deleted() -> Result<()> {
    let h = harness()?;
    let cache = cache(&h, config()).await?;
    let web: Filter<Value> = Arc::new(|v: &Value| field(v, "app") == "web");
    let mut watcher = cache.watch(PODS, Start::After(cache.revision()), web, false)?;
    let (a, b) = (format!("{PODS}ns/a"), format!("{PODS}ns/b"));
    let r1 = create(&h, &a, "web").await?;
    let r2 = update(&h, &a, "db", 1).await?;
    create(&h, &b, "db").await?;
    update(&h, &b, "db", 1).await?;
    let r5 = update(&h, &a, "web", 2).await?;
    let r6 = update(&h, &a, "web", 3).await?;
    let r7 = delete(&h, &a).await?;
    assert_eq!(
        take(&mut watcher, 5).await?,
        vec![
            ("ADDED", a.clone(), "web".to_string(), r1),
            // Stopped matching: the last matching state, at the update's revision.
            ("DELETED", a.clone(), "web".to_string(), r2),
            ("ADDED", a.clone(), "web".to_string(), r5),
            ("MODIFIED", a.clone(), "web".to_string(), r6),
            ("DELETED", a.clone(), "web".to_string(), r7),
        ]
    );
    assert!(cache.wait_for_revision(r7, WAIT).await);
    assert_quiet(&mut watcher)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_never_reads_is_closed_and_the_others_keep_going() -> Result<()> {
    let h = harness()?;
    let buffer = 16;
    let cache = cache(
        &h,
        Config {
            watcher_buffer: buffer,
            ..config()
        },
    )
    .await?;
    let now = Start::Now {
        initial_events: false,
        initial_events_end_bookmark: false,
    };
    let mut slow = cache.watch(PODS, now, everything(), false)?;
    let mut fast = cache.watch(PODS, now, everything(), false)?;
    let writes = 40;
    for i in 0..writes {
        let revision = create(&h, &format!("{PODS}ns/p{i:02}"), "web").await?;
        assert_eq!(next(&mut fast).await?.revision(), revision);
    }
    assert_eq!(cache.metrics().watchers_closed_slow(), 1);
    assert_eq!(cache.metrics().watchers_open(), 1);
    // The slow watcher gets what was queued before it was closed, in order, then its stream ends.
    let mut queued = Vec::new();
    while let Some(event) = tokio::time::timeout(WAIT, slow.next()).await? {
        queued.push(event.revision());
    }
    assert_eq!(queued.len(), buffer);
    assert!(queued.windows(2).all(|w| w[0] < w[1]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_now_sends_every_object_then_the_end_marker() -> Result<()> {
    let h = harness()?;
    for name in ["c", "a", "b"] {
        create(&h, &format!("{PODS}ns1/{name}"), "web").await?;
    }
    create(&h, &format!("{PODS}ns2/a"), "web").await?;
    let cache = cache(&h, config()).await?;
    let revision = cache.revision();
    let start = Start::Now {
        initial_events: true,
        initial_events_end_bookmark: true,
    };
    let mut watcher = cache.watch(&format!("{PODS}ns1/"), start, everything(), true)?;
    let initial = take(&mut watcher, 4).await?;
    let kinds: Vec<(&str, String)> = initial.iter().map(|s| (s.0, s.1.clone())).collect();
    assert_eq!(
        kinds,
        vec![
            ("ADDED", format!("{PODS}ns1/a")),
            ("ADDED", format!("{PODS}ns1/b")),
            ("ADDED", format!("{PODS}ns1/c")),
            ("INITIAL_END", String::new()),
        ]
    );
    assert_eq!(initial.last().map(|s| s.3), Some(revision));
    let live = create(&h, &format!("{PODS}ns1/d"), "web").await?;
    let other = create(&h, &format!("{PODS}ns2/d"), "web").await?;
    assert_eq!(
        take(&mut watcher, 1).await?,
        vec![("ADDED", format!("{PODS}ns1/d"), "web".to_string(), live)]
    );

    // Without initial events: nothing until something changes.
    assert!(cache.wait_for_revision(other, WAIT).await);
    let bare = Start::Now {
        initial_events: false,
        initial_events_end_bookmark: false,
    };
    let mut quiet = cache.watch(PODS, bare, everything(), false)?;
    assert_quiet(&mut quiet)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_watchers_get_bookmarks_that_follow_progress() -> Result<()> {
    let h = harness()?;
    let cache = cache(
        &h,
        Config {
            bookmark_interval: Duration::from_millis(100),
            ..config()
        },
    )
    .await?;
    let now = Start::Now {
        initial_events: false,
        initial_events_end_bookmark: false,
    };
    let mut watcher = cache.watch(PODS, now, everything(), true)?;
    let mut without = cache.watch(PODS, now, everything(), false)?;
    let first = next(&mut watcher).await?;
    assert!(matches!(first, Event::Bookmark(r) if r == cache.revision()));

    // A write under another resource moves the cache only by storage progress; the next
    // bookmarks carry it forward.
    let elsewhere = create(&h, "/registry/services/ns/s", "x").await?;
    loop {
        match next(&mut watcher).await? {
            Event::Bookmark(r) if r >= elsewhere => break,
            Event::Bookmark(_) => continue,
            other => bail!("unexpected {:?}", shape(&other)),
        }
    }
    assert_quiet(&mut without)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_for_revision_follows_writes_anywhere() -> Result<()> {
    let h = harness()?;
    let cache = cache(&h, config()).await?;
    let here = create(&h, &format!("{PODS}ns/a"), "web").await?;
    assert!(cache.wait_for_revision(here, WAIT).await);
    assert!(cache.get(&format!("{PODS}ns/a")).0.is_some());
    let elsewhere = create(&h, "/registry/services/ns/s", "x").await?;
    assert!(cache.wait_for_revision(elsewhere, WAIT).await);
    assert!(cache.revision() >= elsewhere);
    assert!(
        !cache
            .wait_for_revision(elsewhere + 100, Duration::from_millis(200))
            .await
    );
    Ok(())
}

mod relist {
    //! A store whose watches can be broken on demand, to check what the cache does when its
    //! storage watch fails.

    use super::*;
    use async_trait::async_trait;
    use storage::{KeyValue, ListResult, WatchStream};
    use tokio::sync::watch;

    struct Flaky {
        inner: Arc<dyn Storage>,
        breaks: watch::Sender<u64>,
    }

    #[async_trait]
    impl Storage for Flaky {
        async fn get(&self, key: &str) -> storage::Result<Option<KeyValue>> {
            self.inner.get(key).await
        }
        async fn list(&self, prefix: &str, options: ListOptions) -> storage::Result<ListResult> {
            self.inner.list(prefix, options).await
        }
        async fn create(&self, key: &str, value: Vec<u8>) -> storage::Result<KeyValue> {
            self.inner.create(key, value).await
        }
        async fn update(
            &self,
            key: &str,
            value: Vec<u8>,
            precondition: Precondition,
        ) -> storage::Result<KeyValue> {
            self.inner.update(key, value, precondition).await
        }
        async fn delete(&self, key: &str, precondition: Precondition) -> storage::Result<KeyValue> {
            self.inner.delete(key, precondition).await
        }
        async fn watch(&self, prefix: &str, after_revision: u64) -> storage::Result<WatchStream> {
            let mut broken = self.breaks.subscribe();
            let stream = self.inner.watch(prefix, after_revision).await?;
            let failure = futures::stream::once(async {
                Err(storage::Error::WatchClosed("broken by the test".into()))
            });
            Ok(Box::pin(
                stream
                    .take_until(async move {
                        let _ = broken.changed().await;
                    })
                    .chain(failure),
            ))
        }
        async fn current_revision(&self) -> storage::Result<u64> {
            self.inner.current_revision().await
        }
        async fn compact(&self, revision: u64) -> storage::Result<()> {
            self.inner.compact(revision).await
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_storage_watch_relists_and_closes_watchers() -> Result<()> {
        let h = harness()?;
        let (breaks, _) = watch::channel(0);
        let flaky = Arc::new(Flaky {
            inner: h.store.clone(),
            breaks,
        });
        let cache = WatchCache::start(flaky.clone(), PODS.to_string(), decoder(), config()).await?;
        let a = format!("{PODS}ns/a");
        let start = cache.revision();
        let r1 = create(&h, &a, "web").await?;
        let mut watcher = cache.watch(PODS, Start::After(start), everything(), false)?;
        assert_eq!(next(&mut watcher).await?.revision(), r1);

        flaky.breaks.send_modify(|n| *n += 1);
        // The watcher is closed (its client re-watches from r1) ...
        assert!(tokio::time::timeout(WAIT, watcher.next()).await?.is_none());
        // ... and the cache follows storage again after its re-list.
        let r2 = update(&h, &a, "db", 1).await?;
        assert!(cache.wait_for_revision(r2, WAIT).await);
        assert_eq!(cache.get(&a).0.map(|v| field(&v, "app")), Some("db".into()));
        assert_eq!(cache.metrics().relists(), 1);
        assert_eq!(cache.metrics().watchers_open(), 0);

        // The re-list happened at r1: a client resuming from r1 misses nothing and gets r2 from
        // the new window; one resuming from before the re-list cannot be served (410).
        let mut resumed = cache.watch(PODS, Start::After(r1), everything(), false)?;
        assert_eq!(
            take(&mut resumed, 1).await?,
            vec![("MODIFIED", a.clone(), "db".to_string(), r2)]
        );
        assert!(matches!(
            cache.watch(PODS, Start::After(r1 - 1), everything(), false),
            Err(Error::Expired { requested, oldest }) if requested == r1 - 1 && oldest == r1
        ));
        let mut again = cache.watch(PODS, Start::After(cache.revision()), everything(), false)?;
        let r3 = delete(&h, &a).await?;
        assert_eq!(
            take(&mut again, 1).await?,
            vec![("DELETED", a.clone(), "db".to_string(), r3)]
        );
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dropping_the_cache_ends_its_watchers() -> Result<()> {
        let h = harness()?;
        let cache = cache(&h, config()).await?;
        let mut watcher = cache.watch(PODS, Start::After(cache.revision()), everything(), false)?;
        drop(cache);
        assert!(tokio::time::timeout(WAIT, watcher.next()).await?.is_none());
        Ok(())
    }
}
