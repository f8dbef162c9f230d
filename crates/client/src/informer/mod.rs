//! Shared informers: one list + watch per resource (and scope) per process, a cache with indexers,
//! and event handlers, as client-go's `SharedIndexInformer`.
//!
//! # Contract
//!
//! - **Eventually consistent.** The cache lags the apiserver; it converges to the server's state
//!   whenever the watch is healthy. `has_synced` means the first full list is in the cache, not
//!   that the cache is current. Controllers must be level-triggered: read the cache, compare with
//!   the world, act; never trust that a handler saw every intermediate state.
//! - **Per-object order.** For one key, handlers see events in resourceVersion order, each
//!   handler on its own task, so a slow handler delays only itself. Across keys there is no order.
//! - **The cache leads handlers.** When a handler runs for an event, the cache already holds the
//!   new state (or no longer holds a deleted object).
//! - **Delete + recreate may look like an update.** When the watch breaks and the informer lists
//!   again, an object deleted and created under the same name while disconnected arrives as one
//!   `Update` (compare UIDs when it matters). Objects deleted while disconnected arrive as a
//!   `Delete` carrying a [`Tombstone`] (client-go's `DeletedFinalStateUnknown`) with the last
//!   state the cache knew.
//! - **Lists** are consistent reads in pages of 500 (a resourceVersion "0" list could come from a
//!   cache that has no revision to resume from yet).
//! - **Relist.** The informer lists again when the watch's resourceVersion is gone (410: expired
//!   or compacted), after any other list/watch failure (with backoff 800 ms .. 30 s), and lists
//!   from a consistent read in the 410 case. A broken connection resumes the watch from the last
//!   resourceVersion (no relist). Bookmarks move that resume point forward on quiet resources.
//! - **Resync.** A handler registered with a resync period gets `Update { old, new }` with the
//!   same object for every cached object each period (client-go semantics: a nudge to re-check,
//!   not a change).
//! - **Late handlers** get an `Add` for each cached object first, then live events.

mod factory;
pub mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::core::Resource;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::client::{Api, ListParams, WatchEvent, WatchParams};
use crate::error::Error;

pub use factory::{Scope, SharedInformerFactory};
pub use store::{IndexFunc, Store};

/// An object deleted while the informer was not watching: the last state it knew.
#[derive(Clone, Debug)]
pub struct Tombstone<K> {
    pub key: String,
    pub last_known: Arc<K>,
}

/// What a deleted object is known as.
#[derive(Clone, Debug)]
pub enum Deleted<K> {
    /// Seen in a watch DELETED event: the final state.
    Final(Arc<K>),
    /// Missing from a relist.
    Tombstone(Tombstone<K>),
}

impl<K> Deleted<K> {
    /// The object as last known, either way.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Deleted::Final(obj) => obj,
            Deleted::Tombstone(t) => &t.last_known,
        }
    }
}

/// One notification to a handler.
#[derive(Clone, Debug)]
pub enum Event<K> {
    Add(Arc<K>),
    Update { old: Arc<K>, new: Arc<K> },
    Delete(Deleted<K>),
}

enum Notification<K> {
    Event(Event<K>),
    /// Every initial `Add` was handed to this handler before this marker.
    Synced,
}

struct Listener<K> {
    tx: mpsc::UnboundedSender<Notification<K>>,
    resync: Option<Duration>,
    next_resync: Instant,
}

/// Tells whether a handler has been given the informer's initial content.
#[derive(Clone, Debug)]
pub struct Registration {
    synced: Arc<AtomicBool>,
}

impl Registration {
    pub fn has_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }
}

/// Counters for tests and metrics.
#[derive(Debug, Default)]
pub struct InformerStats {
    pub lists: AtomicU64,
    pub relists_after_gone: AtomicU64,
    pub watches: AtomicU64,
    pub events: AtomicU64,
    pub tombstones: AtomicU64,
}

/// A shared informer for `K`; clones share everything.
pub struct Informer<K> {
    shared: Arc<Shared<K>>,
}

impl<K> Clone for Informer<K> {
    fn clone(&self) -> Self {
        Informer {
            shared: self.shared.clone(),
        }
    }
}

struct Shared<K> {
    api: Api<K>,
    scope: Scope,
    /// Drops `metadata.managedFields` before caching, as the controller-manager's and
    /// scheduler's informer factories do (it is most of a cached object's memory).
    strip_managed_fields: AtomicBool,
    store: Store<K>,
    listeners: Mutex<Vec<Listener<K>>>,
    synced: watch::Sender<bool>,
    started: AtomicBool,
    stop: watch::Sender<bool>,
    /// The resourceVersion the cache is at (list, event or bookmark).
    resource_version: Mutex<String>,
    stats: InformerStats,
}

/// Reflector backoff, as client-go's (800 ms doubling to 30 s).
const BACKOFF_INITIAL: Duration = Duration::from_millis(800);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Page size of lists, as client-go's pager.
const LIST_PAGE: u32 = 500;

pub trait Object:
    Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + Sync + 'static
{
}
impl<K> Object for K where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug + Send + Sync + 'static
{
}

impl<K: Object> Informer<K> {
    /// An informer over `api` restricted to `scope`'s selectors; not started. Prefer
    /// [`SharedInformerFactory`], which gives one per resource and scope per process.
    pub fn new(api: Api<K>, scope: Scope) -> Informer<K> {
        let (synced, _) = watch::channel(false);
        let (stop, _) = watch::channel(false);
        Informer {
            shared: Arc::new(Shared {
                api,
                scope,
                store: Store::default(),
                listeners: Mutex::new(Vec::new()),
                synced,
                started: AtomicBool::new(false),
                stop,
                resource_version: Mutex::new(String::new()),
                stats: InformerStats::default(),
                strip_managed_fields: AtomicBool::new(false),
            }),
        }
    }

    /// Drop `metadata.managedFields` from every object before it is cached (set before start).
    pub fn strip_managed_fields(&self, strip: bool) {
        self.shared
            .strip_managed_fields
            .store(strip, Ordering::Release);
    }

    pub fn store(&self) -> &Store<K> {
        &self.shared.store
    }

    pub fn add_indexer(&self, name: &str, func: IndexFunc<K>) {
        self.shared.store.add_indexer(name, func);
    }

    pub fn has_synced(&self) -> bool {
        *self.shared.synced.borrow()
    }

    /// Waits until the first list is in the cache; `false` when the informer stopped first.
    pub async fn wait_synced(&self) -> bool {
        let mut rx = self.shared.synced.subscribe();
        let mut stop = self.shared.stop.subscribe();
        loop {
            if *rx.borrow_and_update() {
                return true;
            }
            if *stop.borrow_and_update() {
                return false;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { return false },
                changed = stop.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// [`Informer::wait_synced`] with a limit; `false` on timeout.
    pub async fn wait_synced_for(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_synced())
            .await
            .unwrap_or(false)
    }

    pub fn stats(&self) -> &InformerStats {
        &self.shared.stats
    }

    /// The resourceVersion the cache has caught up to.
    pub fn last_resource_version(&self) -> String {
        lock(&self.shared.resource_version).clone()
    }

    /// Registers a handler; it runs on its own task, one event at a time. `resync`: see the
    /// module's contract.
    pub fn add_event_handler<F>(&self, resync: Option<Duration>, handler: F) -> Registration
    where
        F: Fn(Event<K>) + Send + Sync + 'static,
    {
        let (tx, mut rx) = mpsc::unbounded_channel::<Notification<K>>();
        let synced = Arc::new(AtomicBool::new(false));
        let flag = synced.clone();
        tokio::spawn(async move {
            while let Some(notification) = rx.recv().await {
                match notification {
                    Notification::Event(event) => handler(event),
                    Notification::Synced => flag.store(true, Ordering::Release),
                }
            }
        });
        let mut listeners = lock(&self.shared.listeners);
        // Under the listeners' lock the cache cannot change, so the snapshot and the live events
        // that follow it are in order.
        if self.has_synced() {
            for obj in self.shared.store.list() {
                let _ = tx.send(Notification::Event(Event::Add(obj)));
            }
            let _ = tx.send(Notification::Synced);
        }
        let resync = resync
            .filter(|d| !d.is_zero())
            .map(|d| d.max(Duration::from_secs(1)));
        listeners.push(Listener {
            tx,
            resync,
            next_resync: Instant::now() + resync.unwrap_or_default(),
        });
        Registration { synced }
    }

    /// Starts the list/watch loop (once; later calls do nothing). Needs a tokio runtime.
    pub fn start(&self) {
        if self.shared.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut stop = shared.stop.subscribe();
            tokio::select! {
                _ = run(shared.clone()) => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut stop = shared.stop.subscribe();
            tokio::select! {
                _ = resync_loop(shared.clone()) => {}
                _ = stop.wait_for(|stopped| *stopped) => {}
            }
        });
    }

    /// Stops the loops; handlers finish what they were given.
    pub fn stop(&self) {
        self.shared.stop.send_replace(true);
        lock(&self.shared.listeners).clear();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<K: Object> Shared<K> {
    fn notify(listeners: &mut Vec<Listener<K>>, event: Event<K>) {
        listeners.retain(|l| !l.tx.is_closed());
        for listener in listeners.iter() {
            let _ = listener.tx.send(Notification::Event(event.clone()));
        }
    }

    fn transform(&self, mut obj: K) -> K {
        if self.strip_managed_fields.load(Ordering::Acquire) {
            obj.meta_mut().managed_fields = None;
        }
        obj
    }

    fn set_resource_version(&self, rv: &str) {
        if !rv.is_empty() {
            *lock(&self.resource_version) = rv.to_string();
        }
    }

    /// Applies a fresh list (keyed, transformed): adds, updates, and tombstones for what
    /// disappeared.
    fn apply_list(&self, items: Vec<(String, Arc<K>)>, rv: &str) {
        let mut listeners = lock(&self.listeners);
        let changes = self.store.replace(items);
        for store::Change { key, old, new } in changes {
            let event = match (old, new) {
                (None, Some(new)) => Event::Add(new),
                (Some(old), Some(new)) => Event::Update { old, new },
                (Some(old), None) => {
                    self.stats.tombstones.fetch_add(1, Ordering::Relaxed);
                    Event::Delete(Deleted::Tombstone(Tombstone {
                        key,
                        last_known: old,
                    }))
                }
                (None, None) => continue,
            };
            Self::notify(&mut listeners, event);
        }
        self.set_resource_version(rv);
        if !*self.synced.borrow() {
            for listener in listeners.iter() {
                let _ = listener.tx.send(Notification::Synced);
            }
            self.synced.send_replace(true);
        }
    }

    fn apply_event(&self, event: WatchEvent<K>) -> Result<(), Box<crate::error::ApiError>> {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        match event {
            WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                let obj = self.transform(obj);
                let rv = obj.meta().resource_version.clone().unwrap_or_default();
                let key = store::key_of(&obj);
                let obj = Arc::new(obj);
                let mut listeners = lock(&self.listeners);
                let event = match self.store.upsert(key, obj.clone()) {
                    Some(old) => Event::Update { old, new: obj },
                    None => Event::Add(obj),
                };
                Self::notify(&mut listeners, event);
                drop(listeners);
                self.set_resource_version(&rv);
            }
            WatchEvent::Deleted(obj) => {
                let obj = self.transform(obj);
                let rv = obj.meta().resource_version.clone().unwrap_or_default();
                let key = store::key_of(&obj);
                let mut listeners = lock(&self.listeners);
                self.store.remove(&key);
                Self::notify(&mut listeners, Event::Delete(Deleted::Final(Arc::new(obj))));
                drop(listeners);
                self.set_resource_version(&rv);
            }
            WatchEvent::Bookmark { resource_version } => {
                self.set_resource_version(&resource_version)
            }
            WatchEvent::Error(err) => return Err(err),
        }
        Ok(())
    }
}

struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff {
            next: BACKOFF_INITIAL,
        }
    }

    fn reset(&mut self) {
        self.next = BACKOFF_INITIAL;
    }

    async fn wait(&mut self) {
        let jitter = 1.0 + rand::random::<f64>() * 0.2;
        tokio::time::sleep(self.next.mul_f64(jitter)).await;
        self.next = (self.next * 2).min(BACKOFF_MAX);
    }
}

/// How a watch session ended.
enum WatchEnd {
    /// Closed by the server's timeout: resume at once.
    Closed,
    /// The resume point is gone: list again from a consistent read.
    Gone,
    /// Transport failure: resume after backoff from the same resourceVersion.
    Broken(Error),
    /// The server refused (403, 500, ...): list again after backoff.
    Refused(Error),
}

async fn run<K: Object>(shared: Arc<Shared<K>>) {
    let resource = shared.api.resource().to_string();
    let mut backoff = Backoff::new();
    // The first list is a consistent read: a resourceVersion "0" list may come from a cache that
    // has no revision to resume a watch from yet.
    let mut list_from: Option<String> = None;
    loop {
        let mut params = ListParams {
            label_selector: shared.scope.label_selector.clone(),
            field_selector: shared.scope.field_selector.clone(),
            ..ListParams::default()
        };
        params.resource_version = list_from.clone();
        shared.stats.lists.fetch_add(1, Ordering::Relaxed);
        let listed = shared
            .api
            .list_all_map(&params, LIST_PAGE, |obj| {
                let obj = shared.transform(obj);
                (store::key_of(&obj), Arc::new(obj))
            })
            .await;
        let (items, rv) = match listed {
            Ok(list) => list,
            Err(err) => {
                tracing::warn!(%resource, error = %err, "informer list failed; retrying");
                if err.is_gone() {
                    list_from = None;
                }
                backoff.wait().await;
                continue;
            }
        };
        if rv.is_empty() || rv == "0" {
            // A cache that has not seen its first revision yet gives no point to resume a watch
            // from; a consistent read does.
            list_from = None;
            backoff.wait().await;
            continue;
        }
        tracing::debug!(%resource, count = items.len(), %rv, "informer listed");
        shared.apply_list(items, &rv);
        loop {
            let rv = lock(&shared.resource_version).clone();
            match watch_once(&shared, &rv).await {
                WatchEnd::Closed => backoff.reset(),
                WatchEnd::Gone => {
                    shared
                        .stats
                        .relists_after_gone
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%resource, %rv, "watch resourceVersion is gone; listing again");
                    list_from = None;
                    break;
                }
                WatchEnd::Broken(err) => {
                    tracing::info!(%resource, error = %err, "watch broken; resuming");
                    backoff.wait().await;
                }
                WatchEnd::Refused(err) => {
                    tracing::warn!(%resource, error = %err, "watch refused; listing again");
                    backoff.wait().await;
                    // A list at the last resourceVersion (not older than what the cache has).
                    list_from = Some(rv);
                    break;
                }
            }
        }
    }
}

async fn watch_once<K: Object>(shared: &Shared<K>, rv: &str) -> WatchEnd {
    let params = WatchParams {
        label_selector: shared.scope.label_selector.clone(),
        field_selector: shared.scope.field_selector.clone(),
        // Spread over 240..290 s so watches of many informers do not all end together.
        timeout: Some(240 + rand::random::<u32>() % 50),
        bookmarks: true,
        send_initial_events: false,
    };
    let stream = match shared.api.watch(&params, rv).await {
        Ok(stream) => stream,
        Err(err) if err.is_gone() => return WatchEnd::Gone,
        Err(err) if err.is_unreachable() => return WatchEnd::Broken(err),
        Err(err) => return WatchEnd::Refused(err),
    };
    shared.stats.watches.fetch_add(1, Ordering::Relaxed);
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => {
                if let Err(err) = shared.apply_event(event) {
                    let err = Error::Api(err);
                    return if err.is_gone() {
                        WatchEnd::Gone
                    } else {
                        WatchEnd::Refused(err)
                    };
                }
            }
            Err(err @ Error::Decode { .. }) => {
                // A malformed event cannot be applied; list again so the cache stays whole.
                return WatchEnd::Refused(err);
            }
            Err(err) => return WatchEnd::Broken(err),
        }
    }
    WatchEnd::Closed
}

async fn resync_loop<K: Object>(shared: Arc<Shared<K>>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !*shared.synced.borrow() {
            continue;
        }
        let now = Instant::now();
        let mut listeners = lock(&shared.listeners);
        let due: Vec<usize> = listeners
            .iter()
            .enumerate()
            .filter(|(_, l)| l.resync.is_some() && l.next_resync <= now)
            .map(|(i, _)| i)
            .collect();
        if due.is_empty() {
            continue;
        }
        let objects = shared.store.list();
        for i in due {
            let Some(listener) = listeners.get_mut(i) else {
                continue;
            };
            for obj in &objects {
                let _ = listener.tx.send(Notification::Event(Event::Update {
                    old: obj.clone(),
                    new: obj.clone(),
                }));
            }
            listener.next_resync = now + listener.resync.unwrap_or_default();
        }
    }
}
