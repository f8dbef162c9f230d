//! The cluster's source of truth.
//!
//! One [`Storage`] trait, used by the apiserver, with two backends that keep identical semantics
//! (the same conformance suite runs against both):
//!
//! - [`embedded::EmbeddedStore`], the default: a durable store in a `--data-dir`, built on
//!   [redb](https://www.redb.org) (see that module for why redb).
//! - [`etcd::EtcdStore`]: a real etcd v3 cluster through `etcd-client`, with keys laid out as
//!   upstream does (`<prefix>/<resource>/<namespace>/<name>`).
//!
//! The contract, shared by both:
//!
//! - Every write gets the next value of one global, strictly increasing revision. The apiserver
//!   exposes it as `resourceVersion`.
//! - `create` fails with [`Error::AlreadyExists`] if the key exists; `update` and `delete` can be
//!   compare-and-swap on the key's mod revision ([`Precondition`]) and fail with
//!   [`Error::Conflict`] when it moved.
//! - `list` reads a consistent snapshot under a prefix, either the latest or at an exact past
//!   revision, with `limit` and a continue token that pins the snapshot revision of the first page.
//! - `watch` delivers every change under a prefix after a revision, in revision order, with no gap
//!   and no duplicate; deletes carry the previous value.
//! - `compact(rev)` discards history older than `rev`. Asking for a revision older than that gives
//!   [`Error::Compacted`], which the apiserver turns into 410 Gone (`Expired`).
//! - Values larger than [`MAX_VALUE_BYTES`] are refused with [`Error::TooLarge`] and nothing is
//!   written.

pub mod compactor;
mod continuation;
pub mod embedded;
mod error;
pub mod etcd;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;

pub use continuation::ContinueToken;
pub use error::{Error, Result};

/// The largest value a store accepts: 1.5 MiB, etcd's default `--max-request-bytes`.
pub const MAX_VALUE_BYTES: usize = 1536 * 1024;

/// A stored key with its value and the revisions that describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the write that created this incarnation of the key.
    pub create_revision: u64,
    /// The revision of the last write to the key: the object's `resourceVersion`.
    pub mod_revision: u64,
}

/// What must hold for a conditional `update` or `delete` to go ahead.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever the current revision (the key must still exist).
    #[default]
    None,
    /// Write only if the key's mod revision is exactly this one.
    ModRevision(u64),
}

/// Which snapshot a list reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Read the state at exactly this revision; `None` reads the latest.
    pub revision: Option<u64>,
    /// Return at most this many items (`0` or `None` means no limit).
    pub limit: Option<usize>,
    /// A token returned by an earlier page of the same list; it carries the snapshot revision, so
    /// it cannot be combined with `revision`.
    pub continue_token: Option<String>,
}

impl ListOptions {
    /// The whole prefix as it was at `revision`.
    pub fn at_revision(revision: u64) -> Self {
        ListOptions {
            revision: Some(revision),
            ..Default::default()
        }
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListResult {
    pub items: Vec<KeyValue>,
    /// The snapshot revision the page was read at: the list's `resourceVersion`.
    pub revision: u64,
    /// Present when more items follow; pass it back in [`ListOptions::continue_token`].
    pub continue_token: Option<String>,
    /// How many items follow this page (set together with `continue_token`): the apiserver's
    /// `remainingItemCount`.
    pub remaining: Option<u64>,
}

/// One change seen by a watch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchEvent {
    /// The key did not exist before this write.
    Created(KeyValue),
    /// The key existed; `prev` is its value before this write.
    Modified {
        current: KeyValue,
        prev: Option<KeyValue>,
    },
    /// The key was deleted at `revision`; `prev` is its last value.
    Deleted {
        key: String,
        revision: u64,
        prev: Option<KeyValue>,
    },
    /// Nothing under the prefix changed up to `revision`: the watcher has seen everything until
    /// then (the apiserver uses it for bookmarks).
    Progress { revision: u64 },
}

impl WatchEvent {
    /// The revision of the write this event reports (or the revision a progress report covers).
    pub fn revision(&self) -> u64 {
        match self {
            WatchEvent::Created(kv) => kv.mod_revision,
            WatchEvent::Modified { current, .. } => current.mod_revision,
            WatchEvent::Deleted { revision, .. } => *revision,
            WatchEvent::Progress { revision } => *revision,
        }
    }

    /// The key the event is about; `None` for progress reports.
    pub fn key(&self) -> Option<&str> {
        match self {
            WatchEvent::Created(kv) => Some(&kv.key),
            WatchEvent::Modified { current, .. } => Some(&current.key),
            WatchEvent::Deleted { key, .. } => Some(key),
            WatchEvent::Progress { .. } => None,
        }
    }
}

/// A watch's events. It ends after yielding an error (for example [`Error::Compacted`]).
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>;

/// The storage interface the apiserver is written against.
///
/// Keys are `/`-separated paths such as `/pods/default/web-0`; prefixes passed to `list` and
/// `watch` should end with `/` so that `/pods/default/` does not also match `/pods/default2/...`.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The latest value of `key`, if it exists.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>>;

    /// The keys under `prefix`, in key order, as one page of a consistent snapshot.
    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult>;

    /// Writes `key` if it does not exist yet.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue>;

    /// Replaces the value of an existing key.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        precondition: Precondition,
    ) -> Result<KeyValue>;

    /// Deletes an existing key and returns its last value.
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<KeyValue>;

    /// Every change under `prefix` with a revision greater than `after_revision`, in order.
    /// `after_revision = 0` means "from now on".
    async fn watch(&self, prefix: &str, after_revision: u64) -> Result<WatchStream>;

    /// The revision of the latest write.
    async fn current_revision(&self) -> Result<u64>;

    /// Discards the history older than `revision`: later reads and watches of revisions before it
    /// fail with [`Error::Compacted`]. The latest value of every key is kept.
    async fn compact(&self, revision: u64) -> Result<()>;
}

/// Refuses a value over [`MAX_VALUE_BYTES`] before anything is written.
pub(crate) fn check_value_size(key: &str, value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::TooLarge {
            key: key.to_string(),
            size: value.len(),
            limit: MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// The first key after every key that starts with `prefix` (etcd's `range_end`).
pub(crate) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // An empty (or all-0xff) prefix covers every key: etcd spells that as "\0".
    vec![0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end("/pods/"), b"/pods0".to_vec());
        assert_eq!(prefix_end("a"), b"b".to_vec());
        assert_eq!(prefix_end(""), vec![0]);
    }

    #[test]
    fn value_size_limit_is_inclusive() {
        assert!(check_value_size("k", &vec![0; MAX_VALUE_BYTES]).is_ok());
        let err = check_value_size("k", &vec![0; MAX_VALUE_BYTES + 1]);
        assert!(matches!(err, Err(Error::TooLarge { .. })));
    }
}
