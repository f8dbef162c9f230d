//! The write-ahead log that makes a write durable with one append and one `fdatasync`.
//!
//! A redb commit with `Durability::Immediate` costs two page flushes; appending the batch's events
//! to a log file and syncing it costs one small write. So every batch is committed to redb with
//! `Durability::None` (visible, not yet durable) *after* its records are synced here, and redb
//! is made durable only at checkpoints (every [`CHECKPOINT_BYTES`] of log, or when the store goes
//! idle), after which the log is emptied. On open, records newer than redb's durable revision are
//! re-applied: a record holds the same encoded event the `log` table stores (see `record.rs`),
//! which carries everything the write did, so replay is exact.
//!
//! ```text
//! record: len u32 | crc32 u32 | revision u64 | event ...      (len counts revision + event)
//! ```
//! A record cut short at the very end of the file is a write that was never acknowledged (the
//! process died inside `write`), and is dropped. A damaged record with more data after it is
//! corruption, and opening fails with an error naming the file.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The log file's name inside `--data-dir`.
pub const WAL_FILE: &str = "wal";
/// Log size that triggers a checkpoint.
pub(crate) const CHECKPOINT_BYTES: u64 = 8 * 1024 * 1024;

const HEADER: usize = 8;
/// No event can be larger: a key, a value and a previous value, each under the value limit. A
/// length above it is damage, not a record cut short.
const MAX_RECORD: usize = 4 * crate::MAX_VALUE_BYTES;

pub(crate) struct Wal {
    file: File,
    path: PathBuf,
    len: u64,
}

impl Wal {
    /// Opens the log and returns it with the records it holds, in order, as (revision, encoded
    /// event).
    #[allow(clippy::type_complexity)]
    pub fn open(dir: &Path) -> Result<(Wal, Vec<(u64, Vec<u8>)>)> {
        let path = dir.join(WAL_FILE);
        let io = |source| Error::DataFile {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        let (records, valid) = parse(&path, &bytes)?;
        if valid < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                dropped = bytes.len() - valid,
                "dropping an unacknowledged partial record at the end of the write-ahead log"
            );
            file.set_len(valid as u64).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        file.seek(SeekFrom::Start(valid as u64)).map_err(io)?;
        Ok((
            Wal {
                file,
                path,
                len: valid as u64,
            },
            records,
        ))
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one batch and syncs it: when this returns, the batch survives a crash.
    /// On failure the log is cut back to where it was, so it never holds a write that was refused.
    pub fn append<'a>(&mut self, records: impl IntoIterator<Item = (u64, &'a [u8])>) -> Result<()> {
        let mut buf = Vec::new();
        for (revision, body) in records {
            let len = (8 + body.len()) as u32;
            let mut hasher = crc32fast::Hasher::new();
            hasher.update(&revision.to_be_bytes());
            hasher.update(body);
            buf.extend_from_slice(&len.to_be_bytes());
            buf.extend_from_slice(&hasher.finalize().to_be_bytes());
            buf.extend_from_slice(&revision.to_be_bytes());
            buf.extend_from_slice(body);
        }
        let written = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.len += buf.len() as u64;
                Ok(())
            }
            Err(source) => {
                self.cut_back();
                Err(Error::DataFile {
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }

    /// Forgets everything in the log: its records are durable in redb now.
    pub fn reset(&mut self) -> Result<()> {
        if self.len == 0 {
            return Ok(());
        }
        let io = |source| Error::DataFile {
            path: self.path.clone(),
            source,
        };
        self.file.set_len(0).map_err(io)?;
        self.file.seek(SeekFrom::Start(0)).map_err(io)?;
        self.file.sync_all().map_err(io)?;
        self.len = 0;
        Ok(())
    }

    /// Takes back everything appended after the log was `len` bytes long.
    pub fn truncate_to(&mut self, len: u64) {
        self.len = len.min(self.len);
        self.cut_back();
    }

    /// Truncates back to the last fully appended batch.
    fn cut_back(&mut self) {
        let _ = self.file.set_len(self.len);
        let _ = self.file.seek(SeekFrom::Start(self.len));
        let _ = self.file.sync_all();
    }
}

/// Parses records; returns them and the length of the valid prefix.
#[allow(clippy::type_complexity)]
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<(u64, Vec<u8>)>, usize)> {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        if rest.len() < HEADER + 8 {
            break; // a header cut short at the end
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let crc = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        if !(8..=MAX_RECORD).contains(&len) {
            return Err(corrupt(path, at, "impossible record length"));
        }
        if rest.len() < HEADER + len {
            break; // a body cut short at the end
        }
        let payload = &rest[HEADER..HEADER + len];
        if crc32fast::hash(payload) != crc {
            if at + HEADER + len == bytes.len() {
                break; // the last record, half written
            }
            return Err(corrupt(path, at, "checksum mismatch"));
        }
        let mut revision = [0u8; 8];
        revision.copy_from_slice(&payload[..8]);
        records.push((u64::from_be_bytes(revision), payload[8..].to_vec()));
        at += HEADER + len;
    }
    Ok((records, at))
}

fn corrupt(path: &Path, offset: usize, reason: &str) -> Error {
    Error::CorruptDataFile {
        path: path.to_path_buf(),
        reason: format!("record at byte {offset}: {reason}"),
    }
}
