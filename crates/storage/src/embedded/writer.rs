//! The single writer thread: group commit and compaction.
//!
//! Every write goes through one thread, which drains whatever requests are waiting (up to
//! [`MAX_BATCH`]) and applies them in one redb transaction made durable by one write-ahead-log
//! append and one fsync. Each request still gets its own revision and its own outcome: a failed
//! precondition only fails that request. Under concurrency this turns N fsyncs into one, which is
//! where the embedded store's write throughput comes from.
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

use super::record::{decode_event, decode_state, encode_event, encode_state};
use super::wal::{Wal, CHECKPOINT_BYTES};
use super::{db_error, EventBatch, KV, LOG, META, META_COMPACTED, META_REVISION};
use crate::{Error, KeyValue, Precondition, Result, WatchEvent};

/// The most requests one transaction takes.
const MAX_BATCH: usize = 512;
/// A store with undurable redb commits checkpoints after this long without requests.
const IDLE_CHECKPOINT: Duration = Duration::from_millis(500);
/// Undurable redb commits pin the pages they freed until a durable commit: checkpoint often
/// enough that the file does not grow for it.
const CHECKPOINT_BATCHES: usize = 256;
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

impl WriteOp {
    fn key(&self) -> &str {
        match self {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key,
        }
    }
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
    pub wal: Wal,
    /// redb holds commits that only the write-ahead log makes durable.
    pub dirty: bool,
    pub batches_since_checkpoint: usize,
}

impl Writer {
    pub fn run(mut self) {
        loop {
            let compaction_pending = self.oldest_logged < self.compacted.load(Ordering::Acquire);
            let first = if compaction_pending {
                match self.requests.recv_timeout(Duration::ZERO) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => {
                        self.checkpoint();
                        return;
                    }
                }
            } else if self.dirty {
                match self.requests.recv_timeout(IDLE_CHECKPOINT) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => {
                        self.checkpoint();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        self.checkpoint();
                        return;
                    }
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
            if self.wal.len() >= CHECKPOINT_BYTES
                || self.batches_since_checkpoint >= CHECKPOINT_BATCHES
            {
                self.checkpoint();
            }
            if self.oldest_logged < self.compacted.load(Ordering::Acquire) {
                self.compaction_step();
            }
            self.answer_finished_compactions();
        }
    }

    /// Makes every redb commit so far durable, then empties the write-ahead log.
    fn checkpoint(&mut self) {
        let result = (|| -> Result<()> {
            // An empty commit with `Durability::Immediate` (redb's default) persists every
            // commit before it.
            self.db
                .begin_write()
                .map_err(db_error)?
                .commit()
                .map_err(db_error)?;
            self.wal.reset()
        })();
        match result {
            Ok(()) => {
                self.dirty = false;
                self.batches_since_checkpoint = 0;
            }
            // The log still holds everything; try again at the next occasion.
            Err(err) => tracing::warn!(%err, "embedded store: checkpoint failed"),
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

    /// Applies `ops` in one transaction, made durable by the write-ahead log before it commits.
    /// Returns the new revision, each op's outcome and the events of the ops that succeeded, in
    /// revision order.
    #[allow(clippy::type_complexity)]
    fn apply_batch(
        &mut self,
        base: u64,
        ops: Vec<WriteOp>,
    ) -> Result<(u64, Vec<Result<KeyValue>>, Vec<WatchEvent>)> {
        let mut txn = self.db.begin_write().map_err(db_error)?;
        // Durability comes from the write-ahead log, synced before this commit.
        txn.set_durability(Durability::None).map_err(db_error)?;
        let mut revision = base;
        let mut outcomes = Vec::with_capacity(ops.len());
        let mut events = Vec::new();
        let mut records = Vec::new();
        {
            let mut kv = txn.open_table(KV).map_err(db_error)?;
            let mut log = txn.open_table(LOG).map_err(db_error)?;
            for op in ops {
                let existing = match kv.get(op.key().as_bytes()).map_err(db_error)? {
                    Some(state) => Some(decode_state(op.key().as_bytes(), state.value())?),
                    None => None,
                };
                match decide(op, existing, revision + 1) {
                    Ok((result, event)) => {
                        revision += 1;
                        let record = encode_event(&event);
                        record_event(&mut kv, &mut log, &event, &record)?;
                        outcomes.push(Ok(result));
                        events.push(event);
                        records.push((revision, record));
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
            let mark = self.wal.len();
            self.wal.append(
                records
                    .iter()
                    .map(|(rev, record)| (*rev, record.as_slice())),
            )?;
            if let Err(err) = txn.commit() {
                self.wal.truncate_to(mark);
                return Err(db_error(err));
            }
            self.dirty = true;
            self.batches_since_checkpoint += 1;
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
            let mut txn: WriteTransaction = self.db.begin_write().map_err(db_error)?;
            // Made durable by the next checkpoint; replaying it after a crash is harmless.
            txn.set_durability(Durability::None).map_err(db_error)?;
            {
                let mut log = txn.open_table(LOG).map_err(db_error)?;
                log.retain_in(self.oldest_logged..end, |_, _| false)
                    .map_err(db_error)?;
            }
            txn.commit().map_err(db_error)?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.oldest_logged = end;
                self.dirty = true;
            }
            Err(err) => {
                // Leave it for the next step; the logical compaction already holds.
                tracing::warn!(%err, "embedded store: compaction step failed");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// What `op` does to a key whose current state is `existing`, as the write at `revision`: the
/// value to answer with and the event to record, or why the op is refused.
fn decide(
    op: WriteOp,
    existing: Option<KeyValue>,
    revision: u64,
) -> Result<(KeyValue, WatchEvent)> {
    let checked = |key: String, precondition: Precondition, existing: Option<KeyValue>| {
        let Some(current) = existing else {
            return Err(Error::NotFound { key });
        };
        match precondition {
            Precondition::ModRevision(expected) if expected != current.mod_revision => {
                Err(Error::Conflict {
                    key,
                    expected,
                    actual: current.mod_revision,
                })
            }
            _ => Ok((key, current)),
        }
    };
    match op {
        WriteOp::Create { key, value } => {
            if existing.is_some() {
                return Err(Error::AlreadyExists { key });
            }
            let created = KeyValue {
                key,
                value,
                create_revision: revision,
                mod_revision: revision,
            };
            Ok((created.clone(), WatchEvent::Created(created)))
        }
        WriteOp::Update {
            key,
            value,
            precondition,
        } => {
            let (key, prev) = checked(key, precondition, existing)?;
            let current = KeyValue {
                key,
                value,
                create_revision: prev.create_revision,
                mod_revision: revision,
            };
            let event = WatchEvent::Modified {
                current: current.clone(),
                prev: Some(prev),
            };
            Ok((current, event))
        }
        WriteOp::Delete { key, precondition } => {
            let (key, prev) = checked(key, precondition, existing)?;
            let event = WatchEvent::Deleted {
                key,
                revision,
                prev: Some(prev.clone()),
            };
            Ok((prev, event))
        }
    }
}

/// Writes what `event` did into the tables: the key's new state, and `record` (the encoded
/// event) into the history. Live writes and write-ahead-log replay both go through here, so a
/// replayed write leaves exactly what the original did.
fn record_event(
    kv: &mut Table<&[u8], &[u8]>,
    log: &mut Table<u64, &[u8]>,
    event: &WatchEvent,
    record: &[u8],
) -> Result<()> {
    match event {
        WatchEvent::Created(current) | WatchEvent::Modified { current, .. } => {
            kv.insert(
                current.key.as_bytes(),
                encode_state(
                    current.create_revision,
                    current.mod_revision,
                    &current.value,
                )
                .as_slice(),
            )
            .map_err(db_error)?;
        }
        WatchEvent::Deleted { key, .. } => {
            kv.remove(key.as_bytes()).map_err(db_error)?;
        }
        WatchEvent::Progress { .. } => return Ok(()),
    }
    log.insert(event.revision(), record).map_err(db_error)?;
    Ok(())
}

/// Re-applies the write-ahead log's records newer than redb's durable `revision`, makes the
/// result durable, and returns the revision the store is at. Records must continue `revision`
/// without a gap.
pub(crate) fn replay(
    db: &Database,
    wal: &Wal,
    revision: u64,
    records: Vec<(u64, Vec<u8>)>,
) -> Result<u64> {
    let corrupt = |reason: String| Error::CorruptDataFile {
        path: wal.path().to_path_buf(),
        reason,
    };
    // Older records are already in redb: a checkpoint that was not followed by a log reset.
    let mut pending = records
        .into_iter()
        .filter(|(at, _)| *at > revision)
        .peekable();
    if pending.peek().is_none() {
        return Ok(revision);
    }
    let txn = db.begin_write().map_err(db_error)?;
    let mut revision = revision;
    {
        let mut kv = txn.open_table(KV).map_err(db_error)?;
        let mut log = txn.open_table(LOG).map_err(db_error)?;
        for (at, record) in pending {
            if at != revision + 1 {
                return Err(corrupt(format!(
                    "the log jumps from revision {revision} to {at}: records are missing"
                )));
            }
            let event = decode_event(at, &record)
                .map_err(|err| corrupt(format!("record for revision {at}: {err}")))?;
            record_event(&mut kv, &mut log, &event, &record)?;
            revision = at;
        }
        let mut meta = txn.open_table(META).map_err(db_error)?;
        meta.insert(META_REVISION, revision).map_err(db_error)?;
    }
    txn.commit().map_err(db_error)?;
    Ok(revision)
}
