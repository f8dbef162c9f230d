//! The embedded backend, the default: a durable store in one file under `--data-dir`.
//!
//! # Why redb
//! [redb](https://www.redb.org) is a pure-Rust, ACID, copy-on-write B-tree with checksummed pages,
//! MVCC readers that never block the writer, and a stable file format. It gives exactly what the
//! store needs and nothing to operate: a durable commit is on disk when it returns, a read
//! transaction is a consistent snapshot (so a list page and its revision always agree), and pages
//! freed by deletes are reused, so the file stops growing once history is compacted. Per-write
//! durability comes from our own write-ahead log (one append + `fdatasync` per batch, about half
//! the cost of a durable redb commit here), with redb made durable at checkpoints; the `kill -9`
//! test checks that every acknowledged write survives. SQLite (kine's engine) would have brought
//! the very problems this store must avoid: a single lock shared by compaction and writers
//! ("database is locked"), a file that only shrinks with VACUUM, and lists that read through
//! superseded rows. fjall (an LSM) would add background compaction threads and write
//! amplification we do not need at this size.
//!
//! # Layout
//! - `kv`: key -> latest state (create revision, mod revision, value). A latest list is one range
//!   scan of this table, whose size is the number of live keys: it does not grow with history.
//! - `log`: revision -> the write at that revision, with the key's previous value. It serves
//!   watch resumption, lists at a past revision (by undoing later writes), and is trimmed by
//!   compaction.
//! - `meta`: the current revision and the compacted revision.
//!
//! All writes go through one thread that commits in groups (`writer.rs`) and makes them durable
//! with one append to a write-ahead log (`wal.rs`); readers use their own snapshots. Watches are
//! fed from memory and fall back to the `log` when they lag (`watch.rs`).

mod record;
mod wal;
mod watch;
mod writer;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::{broadcast, oneshot};

use crate::continuation::{resolve_page, ContinueToken, PageStart};
use crate::{
    check_value_size, prefix_end, Error, KeyValue, ListOptions, ListResult, Precondition, Result,
    Storage, WatchEvent, WatchStream,
};
use record::{decode_event, decode_state, state_before};
use writer::{Request, WriteOp, Writer};

pub(crate) const KV: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
pub(crate) const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
pub(crate) const META_REVISION: &str = "revision";
pub(crate) const META_COMPACTED: &str = "compacted";
const META_FORMAT: &str = "format";
const FORMAT_VERSION: u64 = 1;

/// The name of the data file inside `--data-dir`.
pub const DATA_FILE: &str = "state.redb";
pub use wal::WAL_FILE;

/// Events of one committed write batch, in revision order, shared by every watcher.
pub(crate) type EventBatch = Arc<Vec<WatchEvent>>;

/// How many committed batches the in-memory watch feed keeps for slow watchers before they fall
/// back to reading history from disk.
const WATCH_FEED_CAPACITY: usize = 4096;

/// Settings of the embedded store.
#[derive(Clone, Debug)]
pub struct EmbeddedConfig {
    pub data_dir: PathBuf,
    /// A watcher that saw no event for this long gets a [`WatchEvent::Progress`].
    pub watch_progress_interval: Duration,
    /// Bytes of page cache redb may use.
    pub cache_size: usize,
}

impl EmbeddedConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            watch_progress_interval: Duration::from_secs(5),
            cache_size: 256 * 1024 * 1024,
        }
    }
}

/// The embedded store. Cheap to share behind an `Arc`; dropping the last handle stops the writer
/// thread after it finishes the requests it holds.
pub struct EmbeddedStore {
    db: Arc<Database>,
    path: PathBuf,
    requests: mpsc::Sender<Request>,
    writer: Option<std::thread::JoinHandle<()>>,
    events: broadcast::Sender<EventBatch>,
    revision: Arc<AtomicU64>,
    compacted: Arc<AtomicU64>,
    progress_interval: Duration,
}

pub(crate) fn db_error(err: impl Into<redb::Error>) -> Error {
    Error::Embedded(err.into().to_string())
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `config.data_dir`. A damaged data file is refused with an
    /// error naming it; nothing is repaired or dropped silently.
    pub fn open(config: EmbeddedConfig) -> Result<EmbeddedStore> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| Error::DataFile {
            path: config.data_dir.clone(),
            source,
        })?;
        let path = config.data_dir.join(DATA_FILE);
        let db = open_database(&path, config.cache_size)?;
        let (durable, compacted, oldest_logged) = read_meta(&db, &path)?;
        let (mut wal, records) = wal::Wal::open(&config.data_dir)?;
        let revision = writer::replay(&db, &wal, durable, records)?;
        if revision > durable {
            tracing::info!(
                records = revision - durable,
                "recovered writes from the write-ahead log"
            );
        }
        wal.reset()?;

        let db = Arc::new(db);
        let revision = Arc::new(AtomicU64::new(revision));
        let compacted = Arc::new(AtomicU64::new(compacted));
        let (events, _) = broadcast::channel(WATCH_FEED_CAPACITY);
        let (requests, receiver) = mpsc::channel();
        let writer = Writer {
            db: db.clone(),
            requests: receiver,
            events: events.clone(),
            revision: revision.clone(),
            compacted: compacted.clone(),
            oldest_logged,
            waiting_compactions: Vec::new(),
            wal,
            dirty: false,
            batches_since_checkpoint: 0,
        };
        let writer = std::thread::Builder::new()
            .name("embedded-store-writer".into())
            .spawn(move || writer.run())
            .map_err(|source| Error::DataFile {
                path: path.clone(),
                source,
            })?;
        tracing::info!(
            path = %path.display(),
            revision = revision.load(Ordering::Acquire),
            "opened embedded store"
        );
        Ok(EmbeddedStore {
            db,
            path,
            requests,
            writer: Some(writer),
            events,
            revision,
            compacted,
            progress_interval: config.watch_progress_interval,
        })
    }

    /// The data file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The revision below which history has been discarded.
    pub fn compacted_revision(&self) -> u64 {
        self.compacted.load(Ordering::Acquire)
    }

    fn send(&self, request: Request) -> Result<()> {
        self.requests.send(request).map_err(|_| Error::Closed)
    }

    async fn write(&self, op: WriteOp) -> Result<KeyValue> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Write { op, reply })?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// A read-only snapshot task, run off the async threads (range scans can be long).
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || read(&db))
            .await
            .map_err(|err| Error::Embedded(format!("read task failed: {err}")))?
    }
}

impl Drop for EmbeddedStore {
    fn drop(&mut self) {
        // Closing the request channel lets the writer finish what it holds and exit; waiting for
        // it means the file is closed (and can be reopened) once the store is dropped, as long as
        // no watch is still running.
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.requests, closed));
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

fn open_database(path: &Path, cache_size: usize) -> Result<Database> {
    let corrupt = |reason: String| Error::CorruptDataFile {
        path: path.to_path_buf(),
        reason,
    };
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.len() > 0 && meta.len() < 512 {
            return Err(corrupt(format!(
                "the file is {} bytes, too short to be a redb database (truncated?)",
                meta.len()
            )));
        }
    }
    // redb may panic on some malformed files instead of returning an error: turn that into the
    // same clear error rather than crashing the daemon.
    let opened = std::panic::catch_unwind(|| {
        Database::builder()
            .set_cache_size(cache_size)
            .set_check_integrity_on_open(true)
            .create(path)
    });
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(redb::DatabaseError::DatabaseAlreadyOpen)) => Err(corrupt(
            "the file is already open in another process (is another apiserver running?)".into(),
        )),
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(source))))
            if source.kind() == std::io::ErrorKind::InvalidData =>
        {
            Err(corrupt(source.to_string()))
        }
        Ok(Err(redb::DatabaseError::Storage(redb::StorageError::Io(source)))) => {
            Err(Error::DataFile {
                path: path.to_path_buf(),
                source,
            })
        }
        Ok(Err(err)) => Err(corrupt(err.to_string())),
        Err(_) => Err(corrupt(
            "the storage engine could not parse the file".into(),
        )),
    }
}

/// The current and the compacted revision recorded in `meta` (0 when never written).
pub(crate) fn counters(meta: &impl ReadableTable<&'static str, u64>) -> Result<(u64, u64)> {
    let read = |name: &str| -> Result<u64> {
        Ok(meta.get(name).map_err(db_error)?.map_or(0, |g| g.value()))
    };
    Ok((read(META_REVISION)?, read(META_COMPACTED)?))
}

/// Reads (or initializes) the store's revision counters: (revision, compacted, oldest history).
fn read_meta(db: &Database, path: &Path) -> Result<(u64, u64, u64)> {
    let corrupt = |reason: String| Error::CorruptDataFile {
        path: path.to_path_buf(),
        reason,
    };
    let txn = db.begin_write().map_err(db_error)?;
    let state = {
        let mut meta = txn.open_table(META).map_err(db_error)?;
        // Create the other tables so readers always find them.
        txn.open_table(KV).map_err(db_error)?;
        let log = txn.open_table(LOG).map_err(db_error)?;
        let format = meta.get(META_FORMAT).map_err(db_error)?.map(|g| g.value());
        match format {
            None => {
                if log.len().map_err(db_error)? > 0 {
                    return Err(corrupt("history present but no format marker".into()));
                }
                meta.insert(META_FORMAT, FORMAT_VERSION).map_err(db_error)?;
            }
            Some(FORMAT_VERSION) => {}
            Some(other) => {
                return Err(corrupt(format!(
                    "unsupported format version {other} (this build reads {FORMAT_VERSION})"
                )))
            }
        }
        let (revision, compacted) = counters(&meta)?;
        let oldest = match log.first().map_err(db_error)? {
            Some((rev, _)) => rev.value(),
            None => compacted,
        };
        let newest = log.last().map_err(db_error)?.map(|(rev, _)| rev.value());
        if let Some(newest) = newest {
            if newest != revision {
                return Err(corrupt(format!(
                    "history ends at revision {newest} but the store is at {revision}"
                )));
            }
        }
        (revision, compacted, oldest)
    };
    txn.commit().map_err(db_error)?;
    Ok(state)
}

/// Reads a page of `prefix` at `revision` from one snapshot (see the module docs: the latest
/// state, with the writes after `revision` undone from the log).
///
/// Past the page, the items left are counted (keys only, values untouched) for
/// `remainingItemCount`, once: the count rides in the continue token, so later pages stop at
/// their last item and a whole paged list stays linear.
fn list_snapshot(
    db: &Database,
    prefix: &str,
    page_start: PageStart,
    limit: usize,
) -> Result<ListResult> {
    let PageStart {
        revision,
        start,
        left,
    } = page_start;
    let txn = db.begin_read().map_err(db_error)?;
    let (current, compacted) = counters(&txn.open_table(META).map_err(db_error)?)?;
    let target = revision.unwrap_or(current);
    if target > current {
        return Err(Error::FutureRevision {
            requested: target,
            current,
        });
    }
    if target < compacted {
        return Err(Error::Compacted {
            requested: target,
            compacted,
        });
    }
    let from = start.unwrap_or_else(|| prefix.to_string());
    let end = prefix_end(prefix);
    let in_range = |key: &str| key.as_bytes() >= from.as_bytes() && key.as_bytes() < &end[..];

    // The state at `target` of every key in range written after it.
    let mut overrides: BTreeMap<String, Option<KeyValue>> = BTreeMap::new();
    if target < current {
        let log = txn.open_table(LOG).map_err(db_error)?;
        for entry in log.range(target + 1..=current).map_err(db_error)? {
            let (rev, bytes) = entry.map_err(db_error)?;
            let event = decode_event(rev.value(), bytes.value())?;
            let Some(key) = event.key() else { continue };
            if in_range(key) && !overrides.contains_key(key) {
                overrides.insert(key.to_string(), state_before(&event));
            }
        }
    }

    let kv = txn.open_table(KV).map_err(db_error)?;
    let mut latest = kv
        .range::<&[u8]>((
            Bound::Included(from.as_bytes()),
            Bound::Excluded(end.as_slice()),
        ))
        .map_err(db_error)?;
    let mut undone = overrides.into_iter().peekable();
    let mut next_latest = latest.next().transpose().map_err(db_error)?;
    let mut items: Vec<KeyValue> = Vec::new();
    let page = if limit == 0 { usize::MAX } else { limit };
    // Items past the page, when they are counted here.
    let mut counted: u64 = 0;
    let mut more = false;
    loop {
        let full = items.len() >= page;
        if full && left.is_some() {
            // The token already knows how many are left: no need to walk the rest.
            more = next_latest.is_some() || undone.peek().is_some();
            break;
        }
        // Merge the two sorted streams; on equal keys the undone state wins.
        let take_override = match (next_latest.as_ref(), undone.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((key, _)), Some((undone_key, _))) => undone_key.as_bytes() <= key.value(),
        };
        if take_override {
            let Some((key, state)) = undone.next() else {
                break;
            };
            if next_latest
                .as_ref()
                .is_some_and(|(latest_key, _)| latest_key.value() == key.as_bytes())
            {
                next_latest = latest.next().transpose().map_err(db_error)?;
            }
            if let Some(state) = state {
                if full {
                    counted += 1;
                } else {
                    items.push(state);
                }
            }
        } else if let Some((key, value)) = next_latest.take() {
            if full {
                counted += 1;
            } else {
                items.push(decode_state(key.value(), value.value())?);
            }
            next_latest = latest.next().transpose().map_err(db_error)?;
        }
    }
    let remaining = match left {
        Some(left) => left.saturating_sub(items.len() as u64),
        None => counted,
    };
    let continue_token = if remaining > 0 || (left.is_some() && more) {
        items.last().map(|last| {
            ContinueToken::after(prefix, &last.key, target)
                .with_left(remaining)
                .encode()
        })
    } else {
        None
    };
    Ok(ListResult {
        items,
        revision: target,
        remaining: continue_token.as_ref().map(|_| remaining),
        continue_token,
    })
}

#[async_trait]
impl Storage for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let kv = txn.open_table(KV).map_err(db_error)?;
        match kv.get(key.as_bytes()).map_err(db_error)? {
            Some(value) => Ok(Some(decode_state(key.as_bytes(), value.value())?)),
            None => Ok(None),
        }
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let page = resolve_page(prefix, &options)?;
        let prefix = prefix.to_string();
        let limit = options.limit.unwrap_or(0);
        self.read(move |db| list_snapshot(db, &prefix, page, limit))
            .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Create {
            key: key.to_string(),
            value,
        })
        .await
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: Precondition,
    ) -> Result<KeyValue> {
        check_value_size(key, &value)?;
        self.write(WriteOp::Update {
            key: key.to_string(),
            value,
            precondition,
        })
        .await
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<KeyValue> {
        self.write(WriteOp::Delete {
            key: key.to_string(),
            precondition,
        })
        .await
    }

    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream> {
        // Subscribe before reading the revision: every commit after it reaches this feed.
        let feed = self.events.subscribe();
        let after = match after_revision {
            0 => self.revision.load(Ordering::Acquire),
            r => r,
        };
        Ok(watch::start(
            self.db.clone(),
            feed,
            prefix.to_string(),
            after,
            self.progress_interval,
        ))
    }

    async fn current_revision(&self) -> Result<u64> {
        Ok(self.revision.load(Ordering::Acquire))
    }

    async fn compact(&self, revision: u64) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.send(Request::Compact { revision, reply })?;
        answer.await.map_err(|_| Error::Closed)?
    }
}
