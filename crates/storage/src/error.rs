//! The one error type of the storage layer. Each variant maps to one upstream API error: the
//! apiserver turns `NotFound` into 404, `AlreadyExists` and `Conflict` into 409, `Compacted` into
//! 410 Gone (`Expired`), `TooLarge` into 413, `FutureRevision` into 504 (`Timeout`, "Too large
//! resource version"), `InvalidContinue` into 400 and the rest into 500/503.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("key {key:?} not found")]
    NotFound { key: String },

    #[error("key {key:?} already exists")]
    AlreadyExists { key: String },

    #[error("conflict on key {key:?}: expected mod revision {expected}, found {actual}")]
    Conflict {
        key: String,
        expected: u64,
        actual: u64,
    },

    #[error("revision {requested} has been compacted (oldest available: {compacted})")]
    Compacted { requested: u64, compacted: u64 },

    #[error("revision {requested} is newer than the current revision {current}")]
    FutureRevision { requested: u64, current: u64 },

    #[error("value for key {key:?} is {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        key: String,
        size: usize,
        limit: usize,
    },

    #[error("invalid continue token: {reason}")]
    InvalidContinue { reason: String },

    #[error("invalid list options: {reason}")]
    InvalidOptions { reason: String },

    #[error("data file {path} is corrupt or unreadable: {reason}")]
    CorruptDataFile { path: PathBuf, reason: String },

    #[error("data file {path}: {source}")]
    DataFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("embedded store: {0}")]
    Embedded(String),

    #[error("stored record for {key:?} is malformed: {reason}")]
    Malformed { key: String, reason: String },

    #[error("etcd at {endpoints} is unavailable: {source}")]
    Unavailable {
        endpoints: String,
        #[source]
        source: etcd_client::Error,
    },

    #[error("etcd: {0}")]
    Etcd(#[source] etcd_client::Error),

    #[error("etcd TLS material {path}: {source}")]
    TlsFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("watch closed: {0}")]
    WatchClosed(String),

    #[error("the store is shut down")]
    Closed,
}

impl Error {
    /// True when retrying the same request later may succeed (the backend was unreachable).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::WatchClosed(_))
    }
}
