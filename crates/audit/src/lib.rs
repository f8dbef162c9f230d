//! Auditing for the apiserver, shaped like upstream's `--audit-policy-file` and `--audit-log-*` flags.
//!
//! Three parts, one module each:
//! - [`policy`]: the `audit.k8s.io/v1` `Policy` file, validated like upstream and evaluated per
//!   request (first matching rule wins, no match means level `None`).
//! - [`event`]: the `audit.k8s.io/v1` `Event` written for each request stage, with the JSON shape
//!   upstream produces, and the level rules for carrying request and response bodies.
//! - [`log`]: the log backend, one JSON event per line, rotated like upstream's lumberjack logger.
//!
//! The apiserver owns the request path: it builds [`RequestAttributes`], asks the [`Policy`] for a
//! level, fills an [`Event`] per stage that is not omitted and hands it to a [`LogWriter`].

pub mod event;
pub mod log;
pub mod policy;

pub use event::{Event, Level, ObjectReference, ResponseStatus, Stage, UserInfo};
pub use log::LogWriter;
pub use policy::{Policy, RequestAttributes};

/// Everything that can go wrong loading a policy or writing the audit log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy file could not be read from disk.
    #[error("failed to read file path {path:?}: {source}")]
    ReadPolicy {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The policy text is not a YAML/JSON document of the expected shape.
    #[error("failed decoding: {0}")]
    Decode(#[source] serde_yaml::Error),
    /// The document is not an `audit.k8s.io/v1` `Policy`.
    #[error("{0}")]
    WrongKind(String),
    /// The policy decoded but failed validation; each entry is one field error, upstream style.
    #[error("{}", format_aggregate(.0))]
    Invalid(Vec<String>),
    /// Upstream refuses a policy without rules, since it would audit nothing.
    #[error("loaded illegal policy with 0 rules")]
    NoRules,
    /// A file operation of the log backend failed.
    #[error("audit log {op} {path:?}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A single event is larger than the whole log file may be, so rotation cannot help.
    #[error("write length {len} exceeds maximum file size {max}")]
    TooLarge { len: u64, max: u64 },
    /// The event could not be encoded as JSON.
    #[error("encoding audit event: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Upstream's `utilerrors.Aggregate` prints one error bare and several as `[a, b]`.
fn format_aggregate(errs: &[String]) -> String {
    match errs {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}
