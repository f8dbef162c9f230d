//! The cache's one storage watch (upstream's cacher reflector): list, then follow the watch,
//! applying and fanning out each change; when the watch ends, list again.
//!
//! The storage watch is opened *before* the list, "from now on": every write after the watch is
//! registered reaches it, and the list's snapshot is at least as new, so the changes the list
//! already reflects are skipped by revision and nothing falls between the two. This also works
//! for an empty store (revision 0), where "watch after the list's revision" would mean "from
//! now", and never fails with `Compacted`, whatever was compacted meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use storage::{ListOptions, Storage, WatchEvent, WatchStream};
use tokio::sync::watch;

use crate::cache::Entry;
use crate::{Decoder, Shared};

/// Pause before retrying a failed list, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The storage side of one cache.
pub(crate) struct Source<T> {
    pub(crate) store: Arc<dyn Storage>,
    pub(crate) prefix: String,
    pub(crate) decode: Decoder<T>,
}

/// A decoded list: the objects and the revision of the snapshot.
pub(crate) struct Listed<T> {
    pub(crate) objects: BTreeMap<String, Entry<T>>,
    pub(crate) revision: u64,
    pub(crate) stream: WatchStream,
}

impl<T: Send + Sync + 'static> Source<T> {
    /// Opens the storage watch, then lists.
    pub(crate) async fn list_and_watch(
        &self,
        shared: &Shared<T>,
    ) -> Result<Listed<T>, storage::Error> {
        let stream = self.store.watch(&self.prefix, 0).await?;
        let list = self
            .store
            .list(&self.prefix, ListOptions::default())
            .await?;
        let mut objects = BTreeMap::new();
        for kv in list.items {
            if let Some(object) = self.decode_value(&kv, shared) {
                objects.insert(
                    kv.key,
                    Entry {
                        object,
                        revision: kv.mod_revision,
                    },
                );
            }
        }
        Ok(Listed {
            objects,
            revision: list.revision,
            stream,
        })
    }

    /// Decodes a stored value; one that cannot be decoded is logged, counted and treated as
    /// absent, so that one corrupt object does not take the whole resource down.
    fn decode_value(&self, kv: &storage::KeyValue, shared: &Shared<T>) -> Option<Arc<T>> {
        match (self.decode)(kv) {
            Ok(object) => Some(Arc::new(object)),
            Err(reason) => {
                shared.metrics.decode_error();
                tracing::error!(
                    key = %kv.key,
                    revision = kv.mod_revision,
                    %reason,
                    "watch cache cannot decode stored object; treating it as absent"
                );
                None
            }
        }
    }

    /// Lists until it works (or the cache is stopped), backing off between attempts.
    async fn relist(
        &self,
        shared: &Shared<T>,
        stop: &mut watch::Receiver<()>,
    ) -> Option<WatchStream> {
        let mut pause = FIRST_RETRY;
        loop {
            let attempt = tokio::select! {
                _ = stop.changed() => return None,
                attempt = self.list_and_watch(shared) => attempt,
            };
            match attempt {
                Ok(listed) => {
                    shared.metrics.relisted();
                    shared.replace(listed.objects, listed.revision);
                    tracing::info!(
                        prefix = %self.prefix,
                        revision = listed.revision,
                        "watch cache re-listed"
                    );
                    return Some(listed.stream);
                }
                Err(err) => {
                    tracing::warn!(prefix = %self.prefix, error = %err, "watch cache list failed; retrying");
                    tokio::select! {
                        _ = stop.changed() => return None,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Follows `stream` until the cache is stopped, re-listing whenever the stream ends.
    pub(crate) async fn run(
        self,
        shared: Arc<Shared<T>>,
        mut stream: WatchStream,
        mut stop: watch::Receiver<()>,
    ) {
        let interval = if shared.config.bookmark_interval.is_zero() {
            // A zero interval would make `interval` spin; treat it as "no bookmarks".
            Duration::from_secs(3600 * 24 * 365)
        } else {
            shared.config.bookmark_interval
        };
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                _ = ticker.tick() => shared.send_bookmarks(),
                next = stream.next() => {
                    let ended = match next {
                        Some(Ok(event)) => {
                            self.handle(&shared, event);
                            None
                        }
                        Some(Err(err)) => Some(err.to_string()),
                        None => Some("storage watch ended".to_string()),
                    };
                    if let Some(reason) = ended {
                        tracing::warn!(
                            prefix = %self.prefix,
                            %reason,
                            "watch cache lost its storage watch; re-listing"
                        );
                        match self.relist(&shared, &mut stop).await {
                            Some(fresh) => stream = fresh,
                            None => break,
                        }
                    }
                }
            }
        }
        shared.close_all();
    }

    fn handle(&self, shared: &Shared<T>, event: WatchEvent) {
        let (key, revision, current) = match event {
            WatchEvent::Progress { revision } => {
                shared.advance(revision);
                return;
            }
            WatchEvent::Created(kv) | WatchEvent::Modified { current: kv, .. } => {
                // Decoded before taking the lock: readers and new watchers never wait on it.
                let object = self.decode_value(&kv, shared);
                (kv.key, kv.mod_revision, object)
            }
            WatchEvent::Deleted { key, revision, .. } => (key, revision, None),
        };
        shared.metrics.event_received();
        shared.apply(key, revision, current);
    }
}
