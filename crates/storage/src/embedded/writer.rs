//! The single writer thread: group commit and compaction.
//!
//! Every write goes through one thread, which drains whatever requests are waiting (up to
//! [`MAX_BATCH`]) and applies them in one redb transaction with one fsync. Each request still gets
//! its own revision and its own outcome: a failed precondition only fails that request. Under
//! concurrency this turns N fsyncs into one, which is where the embedded store's write throughput
//! comes from; with a single client it is one transaction per write, as before.
//!
//! After a commit the thread publishes the batch's events to watchers, and only then answers the
//! writers, so a writer that starts a watch from its own revision never misses its own event.
//!
//! Compaction is split in two, so that it never stalls writers (kine's "database is locked"): the
//! logical step records the new compacted revision at once (older reads fail from then on), and the
//! physical step deletes the old history in small chunks between write batches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use tokio::sync::{broadcast, oneshot};

use super::record::{decode_state, encode_event, encode_state};
use super::{db_error, EventBatch, KV, LOG, META, META_COMPACTED, META_REVISION};
use crate::{Error, KeyValue, Precondition, Result, WatchEvent};

/// The most requests one transaction takes.
const MAX_BATCH: usize = 512;
/// The most history records one physical compaction step deletes.
const COMPACTION_CHUNK: u64 = 4096;

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        precondition: Precondition,
    },
    Delete {
        key: String,
        precondition: Precondition,
    },
}

pub(crate) enum Request {
    Write {
        op: WriteOp,
        reply: oneshot::Sender<Result<KeyValue>>,
    },
    Compact {
        revision: u64,
        reply: oneshot::Sender<Result<()>>,
    },
}

pub(crate) struct Writer {
    pub db: Arc<Database>,
    pub requests: Receiver<Request>,
    pub events: broadcast::Sender<EventBatch>,
    /// The revision of the latest commit, shared with readers.
    pub revision: Arc<AtomicU64>,
    pub compacted: Arc<AtomicU64>,
    /// Oldest history record that may still exist on disk (physical compaction progress).
    pub oldest_logged: u64,
    /// Compaction requests answered once the history below their revision is physically gone.
    pub waiting_compactions: Vec<(u64, oneshot::Sender<Result<()>>)>,
}

impl Writer {
    pub fn run(mut self) {
        loop {
            let compaction_pending = self.oldest_logged < self.compacted.load(Ordering::Acquire);
            let first = if compaction_pending {
                match self.requests.recv_timeout(Duration::ZERO) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match self.requests.recv() {
                    Ok(request) => Some(request),
                    Err(_) => return,
                }
            };
            let Some(first) = first else {
                self.compaction_step();
                self.answer_finished_compactions();
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match self.requests.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => break,
                }
            }
            let mut writes = Vec::with_capacity(batch.len());
            for request in batch {
                match request {
                    Request::Write { op, reply } => writes.push((op, reply)),
                    Request::Compact { revision, reply } => {
                        match self.compact_logically(revision) {
                            Ok(()) => self.waiting_compactions.push((revision, reply)),
                            Err(err) => {
                                let _ = reply.send(Err(err));
                            }
                        }
                    }
                }
            }
            if !writes.is_empty() {
                self.commit_writes(writes);
            }
            if self.oldest_logged < self.compacted.load(Ordering::Acquire) {
                self.compaction_step();
            }
            self.answer_finished_compactions();
        }
    }

    fn answer_finished_compactions(&mut self) {
        let done = self.oldest_logged;
        let (finished, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.waiting_compactions)
            .into_iter()
            .partition(|(revision, _)| *revision <= done);
        self.waiting_compactions = waiting;
        for (_, reply) in finished {
            let _ = reply.send(Ok(()));
        }
    }

    fn commit_writes(&mut self, writes: Vec<(WriteOp, oneshot::Sender<Result<KeyValue>>)>) {
        let base = self.revision.load(Ordering::Acquire);
        let (ops, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
        match self.apply_batch(base, ops) {
            Ok((revision, outcomes, events)) => {
                self.revision.store(revision, Ordering::Release);
                if !events.is_empty() {
                    // No receiver is not an error: nobody is watching.
                    let _ = self.events.send(Arc::new(events));
                }
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(outcome);
                }
            }
            Err(err) => {
                tracing::error!(%err, "embedded store: write transaction failed");
                let message = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(Error::Embedded(message.clone())));
                }
            }
        }
    }

    /// Applies `ops` in one durable transaction. Returns the new revision, each op's outcome and
    /// the events of the ops that succeeded, in revision order.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &self,
        base: u64,
        ops: Vec<WriteOp>,
    ) -> Result<(u64, Vec<Result<KeyValue>>, Vec<WatchEvent>)> {
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_error)?;
        let mut revision = base;
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut events = Vec::new();
        {
            let mut kv = txn.open_table(KV).map_err(db_error)?;
            let mut log = txn.open_table(LOG).map_err(db_error)?;
            for op in ops {
                match apply_one(&mut kv, revision + 1, op)? {
                    Ok((result, event)) => {
                        revision += 1;
                        log.insert(revision, encode_event(&event).as_slice())
                            .map_err(db_error)?;
                        outcomes.push(Ok(result));
                        events.push(event);
                    }
                    Err(refused) => outcomes.push(Err(refused)),
                }
            }
            if revision != base {
                let mut meta = txn.open_table(META).map_err(db_error)?;
                meta.insert(META_REVISION, revision).map_err(db_error)?;
            }
        }
        if revision == base {
            // Every op was refused: nothing to make durable.
            txn.abort().map_err(db_error)?;
        } else {
            txn.commit().map_err(db_error)?;
        }
        Ok((revision, outcomes, events))
    }

    fn compact_logically(&mut self, revision: u64) -> Result<()> {
        let current = self.revision.load(Ordering::Acquire);
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= self.compacted.load(Ordering::Acquire) {
            return Ok(());
        }
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert(META_COMPACTED, revision).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        self.compacted.store(revision, Ordering::Release);
        Ok(())
    }

    /// Deletes one chunk of history older than the compacted revision.
    fn compaction_step(&mut self) {
        let target = self.compacted.load(Ordering::Acquire);
        let end = target.min(self.oldest_logged.saturating_add(COMPACTION_CHUNK));
        let result = (|| -> Result<()> {
            let txn: WriteTransaction = self.db.begin_write().map_err(db_error)?;
            {
                let mut log = txn.open_table(LOG).map_err(db_error)?;
                log.retain_in(self.oldest_logged..end, |_, _| false)
                    .map_err(db_error)?;
            }
            txn.commit().map_err(db_error)?;
            Ok(())
        })();
        match result {
            Ok(()) => self.oldest_logged = end,
            Err(err) => {
                // Leave it for the next step; the logical compaction already holds.
                tracing::warn!(%err, "embedded store: compaction step failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One write against the transaction's current state. The outer `Result` is a storage failure
/// (the whole batch fails); the inner one is this op's own outcome.
#[allow(clippy::type_complexity)]
fn apply_one(
    kv: &mut Table<&[u8], &[u8]>,
    revision: u64,
    op: WriteOp,
) -> Result<Result<(KeyValue, WatchEvent)>> {
    let key = match &op {
        WriteOp::Create { key, .. } | WriteOp::Update { key, .. } | WriteOp::Delete { key, .. } => {
            key.clone()
        }
    };
    let existing = match kv.get(key.as_bytes()).map_err(db_error)? {
        Some(guard) => Some(decode_state(key.as_bytes(), guard.value())?),
        None => None,
    };
    let check = |precondition: Precondition, existing: &Option<KeyValue>| -> Result<KeyValue> {
        let Some(current) = existing else {
            return Err(Error::NotFound { key: key.clone() });
        };
        if let Precondition::ModRevision(expected) = precondition {
            if expected != current.mod_revision {
                return Err(Error::Conflict {
                    key: key.clone(),
                    expected,
                    actual: current.mod_revision,
                });
            }
        }
        Ok(current.clone())
    };
    match op {
        WriteOp::Create { value, .. } => {
            if existing.is_some() {
                return Ok(Err(Error::AlreadyExists { key }));
            }
            kv.insert(
                key.as_bytes(),
                encode_state(revision, revision, &value).as_slice(),
            )
            .map_err(db_error)?;
            let created = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            Ok(Ok((created.clone(), WatchEvent::Created(created))))
        }
        WriteOp::Update {
            value,
            precondition,
            ..
        } => {
            let prev = match check(precondition, &existing) {
                Ok(prev) => prev,
                Err(refused) => return Ok(Err(refused)),
            };
            kv.insert(
                key.as_bytes(),
                encode_state(prev.create_revision, revision, &value).as_slice(),
            )
            .map_err(db_error)?;
            let current = KeyValue {
                key,
                value,
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            Ok(Ok((
                current.clone(),
                WatchEvent::Modified {
                    current,
                    prev: Some(prev),
                },
            )))
        }
        WriteOp::Delete { precondition, .. } => {
            let prev = match check(precondition, &existing) {
                Ok(prev) => prev,
                Err(refused) => return Ok(Err(refused)),
            };
            kv.remove(key.as_bytes()).map_err(db_error)?;
            Ok(Ok((
                prev.clone(),
                WatchEvent::Deleted {
                    key,
                    revision,
                    prev: Some(prev),
                },
            )))
        }
    }
}
