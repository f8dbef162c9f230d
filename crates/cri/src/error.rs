//! The one error type of the crate, [`CriError`]: what a CRI call can fail with, sorted by what
//! the kubelet does about it.
//!
//! gRPC status codes travel both ways: a runtime's `NotFound` becomes [`CriError::NotFound`]
//! on the client, and a [`CriError::NotFound`] returned by a trait implementation served with
//! [`crate::serve_unix`] goes out as `NotFound`, so a simulated runtime and a real one look the
//! same to the kubelet.

use tonic::{Code, Status};

/// A failed CRI call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CriError {
    /// The sandbox, container or image does not exist (gRPC `NotFound`).
    #[error("not found: {0}")]
    NotFound(String),
    /// The runtime cannot be reached or is not serving (gRPC `Unavailable`, including a socket
    /// nobody listens on): the runtime is down, the node is not ready.
    #[error("container runtime is unavailable: {0}")]
    Unavailable(String),
    /// The call took longer than its timeout (ours or the runtime's).
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// The runtime does not implement this call (gRPC `Unimplemented`), e.g. an RPC newer than
    /// the runtime's CRI version.
    #[error("not implemented by the runtime: {0}")]
    Unimplemented(String),
    /// The request was refused as malformed (gRPC `InvalidArgument`).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Any other gRPC failure, with its code (e.g. `Unknown` for "failed to create
    /// containerd task: ...", `AlreadyExists`, `FailedPrecondition`).
    #[error("{code:?}: {message}")]
    Rpc { code: Code, message: String },
    /// The `--container-runtime-endpoint` cannot be used.
    #[error("invalid container runtime endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// Serving the CRI on a unix socket failed (binding, or the server itself).
    #[error("serving CRI on {path}: {message}")]
    Serve { path: String, message: String },
}

impl CriError {
    /// An error carrying an arbitrary gRPC code, e.g. for a fake runtime's failures.
    pub fn rpc(code: Code, message: impl Into<String>) -> CriError {
        CriError::from(Status::new(code, message.into()))
    }

    /// The gRPC code this error travels as.
    pub fn code(&self) -> Code {
        match self {
            CriError::NotFound(_) => Code::NotFound,
            CriError::Unavailable(_) => Code::Unavailable,
            CriError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            CriError::Unimplemented(_) => Code::Unimplemented,
            CriError::InvalidArgument(_) => Code::InvalidArgument,
            CriError::Rpc { code, .. } => *code,
            CriError::InvalidEndpoint { .. } => Code::InvalidArgument,
            CriError::Serve { .. } => Code::Internal,
        }
    }

    /// The runtime's own words, without our prefix.
    pub fn message(&self) -> String {
        match self {
            CriError::NotFound(m)
            | CriError::Unavailable(m)
            | CriError::DeadlineExceeded(m)
            | CriError::Unimplemented(m)
            | CriError::InvalidArgument(m) => m.clone(),
            CriError::Rpc { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, CriError::NotFound(_))
    }

    /// True when the runtime is down or unreachable (as opposed to refusing this one call).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CriError::Unavailable(_))
    }

    pub fn is_unimplemented(&self) -> bool {
        matches!(self, CriError::Unimplemented(_))
    }
}

impl From<Status> for CriError {
    fn from(status: Status) -> CriError {
        let message = status.message().to_string();
        match status.code() {
            Code::NotFound => CriError::NotFound(message),
            Code::Unavailable => CriError::Unavailable(message),
            Code::DeadlineExceeded => CriError::DeadlineExceeded(message),
            Code::Unimplemented => CriError::Unimplemented(message),
            Code::InvalidArgument => CriError::InvalidArgument(message),
            code => CriError::Rpc { code, message },
        }
    }
}

impl From<CriError> for Status {
    fn from(err: CriError) -> Status {
        Status::new(err.code(), err.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_status() {
        let codes = [
            Code::NotFound,
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::Unimplemented,
            Code::InvalidArgument,
            Code::Unknown,
            Code::AlreadyExists,
            Code::FailedPrecondition,
            Code::Internal,
        ];
        for code in codes {
            let err = CriError::from(Status::new(code, "boom"));
            assert_eq!(err.code(), code, "{err}");
            assert_eq!(err.message(), "boom");
            let back = Status::from(err);
            assert_eq!(back.code(), code);
            assert_eq!(back.message(), "boom");
        }
    }

    #[test]
    fn kinds_are_distinguishable() {
        assert!(CriError::from(Status::not_found("x")).is_not_found());
        assert!(CriError::from(Status::unavailable("x")).is_unavailable());
        assert!(CriError::from(Status::unimplemented("x")).is_unimplemented());
        let other = CriError::rpc(Code::Unknown, "failed to create containerd task");
        assert!(!other.is_not_found() && !other.is_unavailable());
        assert_eq!(
            other.to_string(),
            "Unknown: failed to create containerd task"
        );
    }
}
