//! Counters the apiserver exports for each watch cache (upstream's `apiserver_watch_cache_*` and
//! `apiserver_terminated_watchers_total`). Plain atomics so that reading them never takes the
//! cache's lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one watch cache. All are monotonic except [`Metrics::watchers_open`].
#[derive(Debug, Default)]
pub struct Metrics {
    watchers_open: AtomicU64,
    watchers_closed_slow: AtomicU64,
    events_received: AtomicU64,
    events_dispatched: AtomicU64,
    decode_errors: AtomicU64,
    relists: AtomicU64,
}

impl Metrics {
    /// Watchers currently registered.
    pub fn watchers_open(&self) -> u64 {
        self.watchers_open.load(Ordering::Relaxed)
    }

    /// Watchers closed because their queue was full (upstream's "Forcing watcher close due to
    /// unresponsiveness").
    pub fn watchers_closed_slow(&self) -> u64 {
        self.watchers_closed_slow.load(Ordering::Relaxed)
    }

    /// Storage events (not progress reports) that reached the cache.
    pub fn events_received(&self) -> u64 {
        self.events_received.load(Ordering::Relaxed)
    }

    /// Events queued to watchers: one per (event, interested watcher) pair, bookmarks excluded.
    pub fn events_dispatched(&self) -> u64 {
        self.events_dispatched.load(Ordering::Relaxed)
    }

    /// Stored values the decoder refused; such a key is treated as absent.
    pub fn decode_errors(&self) -> u64 {
        self.decode_errors.load(Ordering::Relaxed)
    }

    /// Times the cache re-listed storage after its storage watch ended.
    pub fn relists(&self) -> u64 {
        self.relists.load(Ordering::Relaxed)
    }

    pub(crate) fn watcher_opened(&self) {
        self.watchers_open.fetch_add(1, Ordering::Relaxed);
    }

    /// Called exactly once per registered watcher, when it leaves the registry.
    pub(crate) fn watcher_removed(&self) {
        // Never below zero even if a caller miscounts: a gauge that wraps is worse than one off.
        let _ = self
            .watchers_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
    }

    pub(crate) fn watcher_closed_slow(&self) {
        self.watchers_closed_slow.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn event_received(&self) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn events_dispatched_add(&self, n: u64) {
        self.events_dispatched.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn relisted(&self) {
        self.relists.fetch_add(1, Ordering::Relaxed);
    }
}
