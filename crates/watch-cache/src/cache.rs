//! The in-memory state behind one watch cache: the decoded objects, the window of recent changes
//! a watch can resume from, and the registry of open watchers (upstream's `watchCache` plus the
//! cacher's watcher set).
//!
//! Everything lives under one lock so that "apply a change and queue it to every watcher" and
//! "snapshot the state and register a watcher" cannot interleave: a new watcher sees each change
//! either in its snapshot (initial events or replayed window) or in its queue, never both and
//! never neither.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// One change to one key, decoded once and shared by every watcher that receives it.
#[derive(Debug)]
pub(crate) struct Change<T> {
    pub(crate) key: String,
    pub(crate) revision: u64,
    /// The state after the change; `None` when the key was deleted.
    pub(crate) current: Option<Arc<T>>,
    /// The state before the change; `None` when the key did not exist.
    pub(crate) prev: Option<Arc<T>>,
}

/// What travels from the cache to one watcher.
#[derive(Debug)]
pub(crate) enum Item<T> {
    Change(Arc<Change<T>>),
    /// A synthetic "Added" for an object that existed when the watch started.
    Initial(Arc<T>, u64),
    /// The end of the synthetic "Added" events.
    InitialEnd(u64),
    /// The cache has reflected everything up to this revision.
    Bookmark(u64),
}

/// A cached object and the revision of its last write.
#[derive(Debug)]
pub(crate) struct Entry<T> {
    pub(crate) object: Arc<T>,
    pub(crate) revision: u64,
}

/// A registered watcher as the dispatcher sees it.
struct Slot<T> {
    prefix: String,
    bookmarks: bool,
    queue: mpsc::Sender<Item<T>>,
}

/// How a new watcher starts, decided under the lock.
pub(crate) struct Registration<T> {
    pub(crate) id: u64,
    pub(crate) after: u64,
    pub(crate) initial: VecDeque<Item<T>>,
    pub(crate) queue: mpsc::Receiver<Item<T>>,
}

pub(crate) struct State<T> {
    objects: BTreeMap<String, Entry<T>>,
    history: VecDeque<Arc<Change<T>>>,
    history_capacity: usize,
    /// The oldest revision a watch may resume after: every change after it is in `history`.
    window_start: u64,
    /// Everything up to here is reflected in `objects`.
    revision: u64,
    watchers: HashMap<u64, Slot<T>>,
    next_watcher: u64,
}

impl<T> State<T> {
    pub(crate) fn new(history_capacity: usize) -> Self {
        State {
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_capacity,
            window_start: 0,
            revision: 0,
            watchers: HashMap::new(),
            next_watcher: 0,
        }
    }

    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    pub(crate) fn window_start(&self) -> u64 {
        self.window_start
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Entry<T>> {
        self.objects.get(key)
    }

    /// The entries whose key starts with `prefix`, in key order.
    pub(crate) fn range<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry<T>)> + 'a {
        self.objects
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// The entries under `prefix` from `start` (inclusive) on, in key order.
    pub(crate) fn range_from<'a>(
        &'a self,
        prefix: &'a str,
        start: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry<T>)> + 'a {
        let from = if start > prefix { start } else { prefix };
        self.objects
            .range::<str, _>((Bound::Included(from), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
    }

    /// Whether the objects under `prefix` are still exactly as they were at `revision`: the cache
    /// has reached it, the window of changes reaches back to it, and no change after it touched
    /// the prefix. A continued list pinned to `revision` may then be served from memory.
    pub(crate) fn unchanged_since(&self, prefix: &str, revision: u64) -> bool {
        self.revision >= revision
            && self.window_start <= revision
            && self
                .history
                .iter()
                .rev()
                .take_while(|change| change.revision > revision)
                .all(|change| !change.key.starts_with(prefix))
    }

    /// Replaces the whole state with a fresh list at `revision` and closes every watcher: the
    /// changes between the old state and the list are unknown, so nobody can be carried across
    /// (upstream's `Replace` plus the cacher terminating all watchers on re-list).
    pub(crate) fn replace(
        &mut self,
        objects: BTreeMap<String, Entry<T>>,
        revision: u64,
        metrics: &Metrics,
    ) {
        self.objects = objects;
        self.history.clear();
        self.window_start = revision;
        self.revision = revision;
        self.close_all(metrics);
    }

    /// Ends every watcher's stream after what is already queued to it.
    pub(crate) fn close_all(&mut self, metrics: &Metrics) {
        for _ in self.watchers.drain() {
            metrics.watcher_removed();
        }
    }

    /// Moves the revision forward without a change (a storage progress report).
    pub(crate) fn advance(&mut self, revision: u64) -> bool {
        if revision > self.revision {
            self.revision = revision;
            true
        } else {
            false
        }
    }

    /// Applies the write of `key` at `revision` (`current = None` for a delete), records it in the
    /// window and returns it. Returns `None` for a revision already reflected (the storage watch
    /// is opened before the list, so it repeats what the list saw) or for a delete of a key the
    /// cache never held (for example one whose value could not be decoded).
    pub(crate) fn apply(
        &mut self,
        key: String,
        revision: u64,
        current: Option<Arc<T>>,
    ) -> Option<Arc<Change<T>>> {
        if revision <= self.revision {
            return None;
        }
        self.revision = revision;
        let prev = match &current {
            Some(object) => self.objects.insert(
                key.clone(),
                Entry {
                    object: object.clone(),
                    revision,
                },
            ),
            None => self.objects.remove(&key),
        }
        .map(|entry| entry.object);
        if current.is_none() && prev.is_none() {
            return None;
        }
        let change = Arc::new(Change {
            key,
            revision,
            current,
            prev,
        });
        self.history.push_back(change.clone());
        while self.history.len() > self.history_capacity {
            match self.history.pop_front() {
                Some(evicted) => self.window_start = evicted.revision,
                None => break,
            }
        }
        Some(change)
    }

    /// The changes under `prefix` after `after`, oldest first.
    pub(crate) fn changes_after(&self, prefix: &str, after: u64) -> VecDeque<Item<T>> {
        let first = self
            .history
            .partition_point(|change| change.revision <= after);
        self.history
            .range(first..)
            .filter(|change| change.key.starts_with(prefix))
            .map(|change| Item::Change(change.clone()))
            .collect()
    }

    /// Registers a watcher on `prefix` with a queue of `buffer` items.
    pub(crate) fn register(
        &mut self,
        prefix: &str,
        bookmarks: bool,
        buffer: usize,
        after: u64,
        initial: VecDeque<Item<T>>,
        metrics: &Metrics,
    ) -> Registration<T> {
        let (queue, receiver) = mpsc::channel(buffer.max(1));
        let id = self.next_watcher;
        self.next_watcher = self.next_watcher.wrapping_add(1);
        self.watchers.insert(
            id,
            Slot {
                prefix: prefix.to_string(),
                bookmarks,
                queue,
            },
        );
        metrics.watcher_opened();
        Registration {
            id,
            after,
            initial,
            queue: receiver,
        }
    }

    pub(crate) fn unregister(&mut self, id: u64, metrics: &Metrics) {
        if self.watchers.remove(&id).is_some() {
            metrics.watcher_removed();
        }
    }

    /// Queues `change` to every watcher of a prefix it falls under. A watcher whose queue is full
    /// is closed rather than waited for, so one slow client never delays the others.
    pub(crate) fn dispatch(&mut self, change: &Arc<Change<T>>, metrics: &Metrics) {
        let mut dispatched = 0;
        let mut to_close = Vec::new();
        for (id, slot) in &self.watchers {
            if !change.key.starts_with(&slot.prefix) {
                continue;
            }
            match slot.queue.try_send(Item::Change(change.clone())) {
                Ok(()) => dispatched += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::warn!(
                        prefix = %slot.prefix,
                        revision = change.revision,
                        "Forcing watcher close due to unresponsiveness"
                    );
                    metrics.watcher_closed_slow();
                    to_close.push(*id);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => to_close.push(*id),
            }
        }
        metrics.events_dispatched_add(dispatched);
        for id in to_close {
            self.unregister(id, metrics);
        }
    }

    /// Queues a bookmark at the current revision to every watcher that asked for them. A full
    /// queue skips the bookmark: a bookmark is an optimisation, not a reason to close a watcher.
    pub(crate) fn send_bookmarks(&mut self, metrics: &Metrics) {
        let revision = self.revision;
        let mut gone = Vec::new();
        for (id, slot) in &self.watchers {
            if !slot.bookmarks {
                continue;
            }
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                slot.queue.try_send(Item::Bookmark(revision))
            {
                gone.push(*id);
            }
        }
        for id in gone {
            self.unregister(id, metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(capacity: usize) -> State<&'static str> {
        let mut state = State::new(capacity);
        state.replace(BTreeMap::new(), 10, &Metrics::default());
        state
    }

    #[test]
    fn apply_tracks_prev_and_skips_reflected_revisions() {
        let mut s = state(10);
        let created = s.apply("/a/1".into(), 11, Some(Arc::new("v1")));
        assert!(created.as_ref().is_some_and(|c| c.prev.is_none()));
        let modified = s.apply("/a/1".into(), 12, Some(Arc::new("v2")));
        assert_eq!(
            modified.and_then(|c| c.prev.clone()).as_deref(),
            Some(&"v1")
        );
        assert!(s.apply("/a/1".into(), 12, Some(Arc::new("dup"))).is_none());
        let deleted = s.apply("/a/1".into(), 13, None);
        assert_eq!(deleted.and_then(|c| c.prev.clone()).as_deref(), Some(&"v2"));
        assert!(s.get("/a/1").is_none());
        assert_eq!(s.revision(), 13);
    }

    #[test]
    fn unchanged_since_looks_only_at_the_prefix_and_the_window() {
        let mut s = state(3);
        s.apply("/a/1".into(), 11, Some(Arc::new("x")));
        s.apply("/b/1".into(), 12, Some(Arc::new("y")));
        // Only /b changed after 11.
        assert!(s.unchanged_since("/a/", 11));
        assert!(!s.unchanged_since("/b/", 11));
        assert!(s.unchanged_since("/b/", 12));
        // Not reached yet.
        assert!(!s.unchanged_since("/a/", 13));
        // Evicted history: 11 and 12 drop out of a window of 3, so 10 can no longer be vouched for.
        for revision in 13..=15 {
            s.apply(format!("/c/{revision}"), revision, Some(Arc::new("z")));
        }
        assert!(!s.unchanged_since("/a/", 10));
        assert!(s.unchanged_since("/a/", 12));
        let keys: Vec<&String> = s.range_from("/c/", "/c/14").map(|(k, _)| k).collect();
        assert_eq!(keys, ["/c/14", "/c/15"]);
        let keys: Vec<&String> = s.range_from("/c/", "/a").map(|(k, _)| k).collect();
        assert_eq!(
            keys.len(),
            3,
            "a start before the prefix starts at the prefix"
        );
    }

    #[test]
    fn window_start_follows_evictions() {
        let mut s = state(2);
        for revision in 11..=14 {
            s.apply(format!("/a/{revision}"), revision, Some(Arc::new("x")));
        }
        // 11 and 12 were evicted: a watch after 12 still gets every change (13, 14).
        assert_eq!(s.window_start(), 12);
        let revisions: Vec<u64> = s
            .changes_after("/a/", 12)
            .iter()
            .filter_map(|item| match item {
                Item::Change(c) => Some(c.revision),
                _ => None,
            })
            .collect();
        assert_eq!(revisions, vec![13, 14]);
    }

    #[test]
    fn range_stays_inside_the_prefix() {
        let mut s = state(10);
        for (revision, key) in [
            (11, "/p/ns/a"),
            (12, "/p/ns2/b"),
            (13, "/p/ns/c"),
            (14, "/q/x"),
        ] {
            s.apply(key.into(), revision, Some(Arc::new("x")));
        }
        let keys: Vec<&str> = s.range("/p/ns/").map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, vec!["/p/ns/a", "/p/ns/c"]);
    }
}
