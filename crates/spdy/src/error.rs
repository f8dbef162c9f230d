//! The crate's error type.

/// Errors of the SPDY layer.
///
/// `Reset`, `Closed` and `Timeout` are per-operation outcomes; `Io` and `Protocol` end the connection.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed.
    #[error("spdy transport error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something this implementation cannot accept (bad framing, bad header block, ...).
    #[error("spdy protocol error: {0}")]
    Protocol(String),
    /// The peer reset the stream (RST_STREAM) with this status code.
    #[error("spdy stream reset by peer (status {0})")]
    Reset(u32),
    /// The connection is closed, going away, or the stream's local half is already finished.
    #[error("spdy connection closed")]
    Closed,
    /// The peer did not answer in time.
    #[error("spdy operation timed out")]
    Timeout,
}

impl Error {
    pub(crate) fn protocol(msg: impl Into<String>) -> Error {
        Error::Protocol(msg.into())
    }
}
