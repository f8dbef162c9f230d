//! SPDY/3.1 framing and multiplexed streams, as the Kubernetes remotecommand (`kubectl exec`,
//! `attach`) and portforward protocols use them over an HTTP `Upgrade: SPDY/3.1` connection.
//!
//! The peer we must interoperate with is Go's `github.com/moby/spdystream` (used by client-go and by
//! the CRI streaming servers of containerd and CRI-O). This crate implements the subset of SPDY/3.1
//! that spdystream speaks:
//!
//! - all SPDY/3 frames: SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS,
//!   WINDOW_UPDATE and DATA ([`frame`]); CREDENTIAL and unknown control frames are skipped;
//! - zlib-compressed name/value header blocks with the SPDY/3 dictionary and one stateful
//!   compression context per direction per connection ([`headers`], [`dictionary`]);
//! - stream lifecycle: open, reply, half-close with FIN each way, reset, PING echo, GOAWAY
//!   ([`Connection`], [`Stream`]).
//!
//! **No flow control.** SPDY/3.1 adds per-stream and session windows, but spdystream never
//! implemented them: it sends no WINDOW_UPDATE and ignores the ones it receives. Enforcing windows
//! against it would stall every stream after 64 KiB, so incoming WINDOW_UPDATE and SETTINGS are
//! ignored and none are sent. Back-pressure on sending comes from the transport (the writer task
//! blocks on the socket and `send` waits on its bounded queue); received data is buffered per stream
//! without limit, exactly like spdystream, so a slow consumer of one stream never blocks the others.
//!
//! Not implemented: server push semantics (associated streams are accepted as ordinary streams),
//! priorities (sent as 0, ignored on receipt), SPDY/2.

pub mod connection;
pub mod dictionary;
mod error;
pub mod frame;
pub mod headers;
pub mod stream;

pub use connection::{Connection, IncomingStream, MAX_DATA_CHUNK, OPEN_STREAM_TIMEOUT};
pub use error::Error;
pub use headers::Headers;
pub use stream::{RecvHalf, SendHalf, Stream, StreamIo};

#[cfg(test)]
mod tests;
