//! Watches on the embedded store.
//!
//! Each watch is a task that first replays the history it asked for from the `log` table, then
//! follows the in-memory feed of committed batches. Every event is delivered at most once and in
//! revision order: the task remembers the last revision it has accounted for and skips anything at
//! or below it. A watcher that falls behind the feed (the consumer is slow) is not allowed to slow
//! writers down: the feed drops it, and it catches up from the `log` on disk, exactly like a fresh
//! watch would, or ends with [`Error::Compacted`] if the history it needs is gone (etcd's
//! "slow watcher" treatment).

use std::sync::Arc;
use std::time::Duration;

use redb::{Database, ReadableDatabase};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::record::decode_event;
use super::{counters, db_error, EventBatch, LOG, META};
use crate::{Error, Result, WatchEvent, WatchStream};

/// Events buffered per watcher between its task and its consumer.
const WATCHER_BUFFER: usize = 256;
/// History records read per snapshot while replaying.
const REPLAY_CHUNK: u64 = 1024;

pub(crate) fn start(
    db: Arc<Database>,
    feed: broadcast::Receiver<EventBatch>,
    prefix: String,
    after: u64,
    progress_interval: Duration,
) -> WatchStream {
    let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
    tokio::spawn(follow(db, feed, prefix, after, progress_interval, tx));
    Box::pin(ReceiverStream::new(rx))
}

async fn follow(
    db: Arc<Database>,
    mut feed: broadcast::Receiver<EventBatch>,
    prefix: String,
    after: u64,
    progress_interval: Duration,
    tx: mpsc::Sender<Result<WatchEvent>>,
) {
    let mut last = match replay(&db, &prefix, after, &tx).await {
        Ok(Some(last)) => last,
        Ok(None) => return,
        Err(err) => {
            let _ = tx.send(Err(err)).await;
            return;
        }
    };
    // What this watcher was last told, and when: a prefix that sees no change while others are
    // busy must still learn that the revision moved on (its cache serves resourceVersion "0"
    // lists and bookmarks from it), so progress is due every interval, idle or not.
    let mut told = last;
    let mut told_at = tokio::time::Instant::now();
    // An idle interval always earns a report, even at an unchanged revision.
    let mut idle = false;
    loop {
        let due = idle || (told < last && told_at.elapsed() >= progress_interval);
        idle = false;
        if !progress_interval.is_zero() && due {
            if tx
                .send(Ok(WatchEvent::Progress { revision: last }))
                .await
                .is_err()
            {
                return;
            }
            told = last;
            told_at = tokio::time::Instant::now();
        }
        let received = if progress_interval.is_zero() {
            Ok(feed.recv().await)
        } else {
            tokio::time::timeout(progress_interval, feed.recv()).await
        };
        match received {
            Err(_elapsed) => idle = true,
            Ok(Ok(batch)) => {
                for event in batch.iter() {
                    let revision = event.revision();
                    if revision <= last {
                        continue;
                    }
                    last = revision;
                    if event.key().is_some_and(|key| key.starts_with(&prefix)) {
                        if tx.send(Ok(event.clone())).await.is_err() {
                            return;
                        }
                        told = revision;
                        told_at = tokio::time::Instant::now();
                    }
                }
            }
            Ok(Err(RecvError::Lagged(missed))) => {
                tracing::debug!(prefix, missed, "slow watcher catching up from history");
                match replay(&db, &prefix, last, &tx).await {
                    Ok(Some(caught_up)) => last = caught_up,
                    Ok(None) => return,
                    Err(err) => {
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                }
            }
            Ok(Err(RecvError::Closed)) => {
                let _ = tx.send(Err(Error::Closed)).await;
                return;
            }
        }
    }
}

/// Sends every stored event under `prefix` after `after`, up to the store's current revision.
/// Returns the revision it has accounted for, or `None` if the consumer went away.
async fn replay(
    db: &Arc<Database>,
    prefix: &str,
    mut after: u64,
    tx: &mpsc::Sender<Result<WatchEvent>>,
) -> Result<Option<u64>> {
    loop {
        let db = db.clone();
        let from = after;
        let (events, covered, done) = tokio::task::spawn_blocking(move || read_chunk(&db, from))
            .await
            .map_err(|err| Error::Embedded(format!("watch replay task failed: {err}")))??;
        for event in events {
            if event.key().is_some_and(|key| key.starts_with(prefix))
                && tx.send(Ok(event)).await.is_err()
            {
                return Ok(None);
            }
        }
        after = covered;
        if done {
            return Ok(Some(after));
        }
    }
}

/// Reads up to [`REPLAY_CHUNK`] events after `after` from one snapshot. Returns them, the
/// revision they cover up to, and whether that reached the snapshot's current revision.
fn read_chunk(db: &Database, after: u64) -> Result<(Vec<WatchEvent>, u64, bool)> {
    let txn = db.begin_read().map_err(db_error)?;
    let (current, compacted) = counters(&txn.open_table(META).map_err(db_error)?)?;
    if after.saturating_add(1) < compacted {
        return Err(Error::Compacted {
            requested: after + 1,
            compacted,
        });
    }
    if after >= current {
        // Nothing stored after `after` yet (it may even be a future revision): wait for the feed.
        return Ok((Vec::new(), after, true));
    }
    let end = current.min(after + REPLAY_CHUNK);
    let log = txn.open_table(LOG).map_err(db_error)?;
    let mut events = Vec::new();
    for entry in log.range(after + 1..=end).map_err(db_error)? {
        let (revision, bytes) = entry.map_err(db_error)?;
        events.push(decode_event(revision.value(), bytes.value())?);
    }
    Ok((events, end, end == current))
}
