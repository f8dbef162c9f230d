//! The apiserver's per-resource watch cache (upstream's `cacher`).
//!
//! One storage watch per resource feeds an in-memory copy of every object under the resource's
//! prefix and a window of recent changes. Client lists, gets and watches are served from memory,
//! so N watchers cost one storage watch and one decode per stored change.
//!
//! The promises:
//!
//! - Each watcher gets the changes under its prefix in revision order, with no gap and no
//!   duplicate, filtered the way upstream does: an update that makes an object match is `Added`,
//!   one that makes it stop matching is `Deleted` (see [`Event`]).
//! - A slow watcher never blocks the cache or the other watchers: when its queue of
//!   [`Config::watcher_buffer`] items is full it is closed, and its client watches again from the
//!   last revision it saw.
//! - A watch may resume after any revision inside the window of the last
//!   [`Config::history_capacity`] changes; an older one fails with [`Error::Expired`] (410 Gone).
//! - When the storage watch fails (compaction, a restarting store) the cache lists again and
//!   closes every watcher, which then resume or get 410, as upstream's watchers do.
//!
//! Keys are full storage keys (`/registry/pods/default/web-0`): the cache's prefix and the
//! sub-prefixes given to [`WatchCache::list`] and [`WatchCache::watch`] are prefixes of them and
//! should end with `/`.
//!
//! Lock order: there is one lock, the cache state's. Nothing is awaited while holding it and no
//! other lock is taken under it.

mod cache;
mod metrics;
mod reflector;
mod watcher;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use storage::Storage;
use tokio::sync::watch;

use cache::{Entry, Item, State};
use reflector::Source;

pub use metrics::Metrics;

/// A page of a paginated list served from the cache (see [`WatchCache::list_page`]).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<Arc<T>>,
    /// The key of the page's last object, for the continue token.
    pub last_key: Option<String>,
    /// Objects after the page: counted exactly with `count_rest`, else `Some(1)` meaning "more".
    pub remaining: Option<u64>,
    /// The snapshot revision the page reflects.
    pub revision: u64,
}
pub use watcher::{everything, Event, Filter, Watcher};

/// Decodes a stored value once, when it enters the cache; every watcher shares the result.
pub type Decoder<T> = Arc<dyn Fn(&storage::KeyValue) -> Result<T, String> + Send + Sync>;

/// Errors of the watch cache.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The requested revision is older than the window of kept changes. The apiserver answers 410
    /// Gone (`Expired`) with this message, which is upstream's word for word.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        requested: u64,
        /// The oldest revision a watch can resume after.
        oldest: u64,
    },

    /// The initial list or storage watch failed.
    #[error("watch cache for {prefix:?} could not load: {source}")]
    Storage {
        prefix: String,
        #[source]
        source: storage::Error,
    },
}

/// Settings of one watch cache.
#[derive(Clone, Debug)]
pub struct Config {
    /// Changes kept so that watches can resume after an older revision.
    pub history_capacity: usize,
    /// Items queued per watcher; a watcher that falls this far behind is closed.
    pub watcher_buffer: usize,
    /// Watchers that ask for bookmarks get one about this often.
    pub bookmark_interval: Duration,
}

impl Default for Config {
    /// Upstream's orders of magnitude: a window of 1000 changes (the default watch cache size
    /// of the busy resources), a queue of 1000 events per watcher, a bookmark a minute.
    fn default() -> Self {
        Config {
            history_capacity: 1000,
            watcher_buffer: 1000,
            bookmark_interval: Duration::from_secs(60),
        }
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// Every change after this revision (`resourceVersion=N`, N > 0). A revision newer than the
    /// cache's is accepted and waited for; to answer upstream's "Too large resource version"
    /// instead, the apiserver calls [`WatchCache::wait_for_revision`] first.
    After(u64),
    /// From the cache's current revision (`resourceVersion` unset or `0`, or
    /// `sendInitialEvents=true`).
    Now {
        /// First send a synthetic `Added` for every object that exists (key order).
        initial_events: bool,
        /// After those, send [`Event::InitialEventsEnd`] (only with `initial_events`).
        initial_events_end_bookmark: bool,
    },
}

/// State shared by the cache handle, its background task and its watchers.
pub(crate) struct Shared<T> {
    state: RwLock<State<T>>,
    revision: watch::Sender<u64>,
    metrics: Metrics,
    config: Config,
}

impl<T> Shared<T> {
    // A panic while holding the lock can only come from a caller's filter; the state itself is
    // never left half-updated by one, so a poisoned lock is still safe to use.
    fn read(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, revision: u64) {
        self.revision.send_if_modified(|current| {
            let moved = *current != revision;
            *current = revision;
            moved
        });
    }

    pub(crate) fn unregister(&self, id: u64) {
        self.write().unregister(id, &self.metrics);
    }

    fn replace(&self, objects: BTreeMap<String, Entry<T>>, revision: u64) {
        self.write().replace(objects, revision, &self.metrics);
        self.publish(revision);
    }

    fn close_all(&self) {
        self.write().close_all(&self.metrics);
    }

    fn advance(&self, revision: u64) {
        let moved = self.write().advance(revision);
        if moved {
            self.publish(revision);
        }
    }

    fn apply(&self, key: String, revision: u64, current: Option<Arc<T>>) {
        let mut state = self.write();
        if let Some(change) = state.apply(key, revision, current) {
            state.dispatch(&change, &self.metrics);
        }
        let revision = state.revision();
        drop(state);
        self.publish(revision);
    }

    fn send_bookmarks(&self) {
        self.write().send_bookmarks(&self.metrics);
    }
}

/// The watch cache of one resource. Dropping the last handle stops its storage watch and ends
/// every watcher's stream.
pub struct WatchCache<T> {
    shared: Arc<Shared<T>>,
    prefix: String,
    /// Dropped with the cache: the background task sees the channel close and stops.
    _stop: watch::Sender<()>,
}

impl<T: Send + Sync + 'static> WatchCache<T> {
    /// Lists `prefix` in storage, then follows a storage watch in a background task (on the
    /// current tokio runtime). Returns once the initial list is loaded.
    pub async fn start(
        store: Arc<dyn Storage>,
        prefix: String,
        decode: Decoder<T>,
        config: Config,
    ) -> Result<Arc<Self>, Error> {
        let shared = Arc::new(Shared {
            state: RwLock::new(State::new(config.history_capacity)),
            revision: watch::Sender::new(0),
            metrics: Metrics::default(),
            config,
        });
        let source = Source {
            store,
            prefix: prefix.clone(),
            decode,
        };
        let listed = source
            .list_and_watch(&shared)
            .await
            .map_err(|source| Error::Storage {
                prefix: prefix.clone(),
                source,
            })?;
        shared.replace(listed.objects, listed.revision);
        let (stop, stopped) = watch::channel(());
        tokio::spawn(source.run(shared.clone(), listed.stream, stopped));
        Ok(Arc::new(WatchCache {
            shared,
            prefix,
            _stop: stop,
        }))
    }

    /// The storage prefix this cache holds.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The revision the cache reflects: every change up to it, including progress reports from
    /// storage for revisions that changed nothing under the prefix.
    pub fn revision(&self) -> u64 {
        *self.shared.revision.borrow()
    }

    /// Waits until the cache reflects `revision`; false on timeout. For a consistent read the
    /// apiserver asks storage for its current revision, then waits for it here.
    pub async fn wait_for_revision(&self, revision: u64, timeout: Duration) -> bool {
        let mut seen = self.shared.revision.subscribe();
        let reached = tokio::time::timeout(timeout, async {
            seen.wait_for(|current| *current >= revision).await.is_ok()
        })
        .await;
        reached.unwrap_or(false)
    }

    /// The objects under `prefix` (a sub-prefix such as one namespace) that pass `filter`, in key
    /// order, with the revision they reflect.
    pub fn list(&self, prefix: &str, filter: &dyn Fn(&T) -> bool) -> (Vec<Arc<T>>, u64) {
        let state = self.shared.read();
        let items = state
            .range(prefix)
            .filter(|(_, entry)| filter(&entry.object))
            .map(|(_, entry)| entry.object.clone())
            .collect();
        (items, state.revision())
    }

    /// One page of a paginated list, as storage would serve it: up to `limit` objects under
    /// `prefix` that pass `filter`, from the key `start` on (inclusive) when given. `at` pins a
    /// continued list to its first page's revision: the page is served only when nothing under
    /// `prefix` changed since (`None` otherwise: read storage). `count_rest` counts every object
    /// after the page (unfiltered lists report `remainingItemCount`); otherwise the walk stops at
    /// the first object past the page.
    pub fn list_page(
        &self,
        prefix: &str,
        start: Option<&str>,
        at: Option<u64>,
        limit: usize,
        filter: &dyn Fn(&T) -> bool,
        count_rest: bool,
    ) -> Option<Page<T>> {
        let state = self.shared.read();
        if let Some(at) = at {
            if !state.unchanged_since(prefix, at) {
                return None;
            }
        }
        let limit = if limit == 0 { usize::MAX } else { limit };
        let mut items = Vec::new();
        let mut last_key = None;
        let mut rest: u64 = 0;
        for (key, entry) in state.range_from(prefix, start.unwrap_or(prefix)) {
            if !filter(&entry.object) {
                continue;
            }
            if items.len() < limit {
                items.push(entry.object.clone());
                last_key = Some(key.clone());
            } else {
                rest += 1;
                if !count_rest {
                    break;
                }
            }
        }
        Some(Page {
            items,
            last_key,
            remaining: (rest > 0).then_some(rest),
            revision: at.unwrap_or_else(|| state.revision()),
        })
    }

    /// The object at `key`, with the revision the answer reflects.
    pub fn get(&self, key: &str) -> (Option<Arc<T>>, u64) {
        let state = self.shared.read();
        (
            state.get(key).map(|entry| entry.object.clone()),
            state.revision(),
        )
    }

    /// A watch on `prefix`; see [`Start`]. With `bookmarks`, the watcher gets
    /// [`Event::Bookmark`] about every [`Config::bookmark_interval`].
    pub fn watch(
        &self,
        prefix: &str,
        start: Start,
        filter: Filter<T>,
        bookmarks: bool,
    ) -> Result<Watcher<T>, Error> {
        let mut state = self.shared.write();
        let (after, initial) = match start {
            Start::After(revision) => {
                if revision < state.window_start() {
                    return Err(Error::Expired {
                        requested: revision,
                        oldest: state.window_start(),
                    });
                }
                (revision, state.changes_after(prefix, revision))
            }
            Start::Now {
                initial_events,
                initial_events_end_bookmark,
            } => {
                let revision = state.revision();
                let mut initial = VecDeque::new();
                if initial_events {
                    initial.extend(
                        state
                            .range(prefix)
                            .map(|(_, entry)| Item::Initial(entry.object.clone(), entry.revision)),
                    );
                    if initial_events_end_bookmark {
                        initial.push_back(Item::InitialEnd(revision));
                    }
                }
                (revision, initial)
            }
        };
        let registration = state.register(
            prefix,
            bookmarks,
            self.shared.config.watcher_buffer,
            after,
            initial,
            &self.shared.metrics,
        );
        drop(state);
        Ok(Watcher::new(
            registration.id,
            Arc::downgrade(&self.shared),
            registration.initial,
            registration.queue,
            watcher::View::new(filter, bookmarks, registration.after),
        ))
    }

    /// The cache's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }
}
