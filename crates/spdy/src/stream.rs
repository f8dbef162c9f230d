//! One multiplexed stream and its two halves.
//!
//! SPDY streams are bidirectional with independent half-closes: [`SendHalf::finish`] sends an empty
//! data frame with FIN, and [`RecvHalf::recv`] returns `None` after the peer's FIN, a reset, or the
//! end of the connection. Received data waits in an unbounded per-stream queue (as in
//! moby/spdystream), so a reader that falls behind only costs memory, never other streams' progress.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::connection::{find_header, Delivery, Shared, StreamShared, WriteCmd, MAX_DATA_CHUNK};
use crate::frame::{rst, Frame, FLAG_FIN};
use crate::headers::Headers;
use crate::Error;

/// An open stream: for streams we opened, `headers` are the peer's SYN_REPLY headers; for accepted
/// streams, the peer's SYN_STREAM headers.
#[derive(Debug)]
pub struct Stream {
    id: u32,
    headers: Headers,
    send: SendHalf,
    recv: RecvHalf,
}

impl Stream {
    pub(crate) fn new(id: u32, headers: Headers, send: SendHalf, recv: RecvHalf) -> Stream {
        Stream {
            id,
            headers,
            send,
            recv,
        }
    }

    /// The stream id (odd when the client opened it, even for the server).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// See the type docs for which headers these are.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn split(self) -> (SendHalf, RecvHalf) {
        (self.send, self.recv)
    }

    /// Wraps the stream as `AsyncRead + AsyncWrite` (shutdown sends FIN).
    pub fn into_io(self) -> StreamIo {
        StreamIo {
            send: self.send,
            recv: self.recv,
            pending: Bytes::new(),
            reserve: None,
        }
    }
}

/// The sending side of a stream.
///
/// Dropping it without [`finish`](SendHalf::finish) or [`reset`](SendHalf::reset) still half-closes
/// the stream (FIN) so the peer is not left waiting.
pub struct SendHalf {
    conn: Arc<Shared>,
    stream: Arc<StreamShared>,
    finished: bool,
}

impl std::fmt::Debug for SendHalf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendHalf")
            .field("id", &self.stream.id)
            .field("finished", &self.finished)
            .finish()
    }
}

impl SendHalf {
    pub(crate) fn new(conn: Arc<Shared>, stream: Arc<StreamShared>) -> SendHalf {
        SendHalf {
            conn,
            stream,
            finished: false,
        }
    }

    pub fn id(&self) -> u32 {
        self.stream.id
    }

    fn check(&self) -> Result<(), Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        if let Some(status) = self.stream.reset.get() {
            return Err(Error::Reset(*status));
        }
        if self.conn.is_closed() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn data_frame(&self, data: Bytes, flags: u8) -> WriteCmd {
        WriteCmd::Frame(Frame::Data {
            stream_id: self.stream.id,
            flags,
            data,
        })
    }

    /// Queues `data` (cut into frames of at most 32 KiB); waits only while the writer's data queue
    /// is full. Fails with `Reset` after a peer RST, `Closed` after `finish` or connection end.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), Error> {
        for chunk in data.chunks(MAX_DATA_CHUNK) {
            self.check()?;
            let cmd = self.data_frame(Bytes::copy_from_slice(chunk), 0);
            self.conn
                .data_tx
                .send(cmd)
                .await
                .map_err(|_| Error::Closed)?;
        }
        Ok(())
    }

    /// Half-closes our side: an empty data frame with FIN, after all data sent before it.
    /// Calling it again is a no-op.
    pub async fn finish(&mut self) -> Result<(), Error> {
        if self.finished {
            return Ok(());
        }
        self.check()?;
        self.finished = true;
        let cmd = self.data_frame(Bytes::new(), FLAG_FIN);
        let sent = self.conn.data_tx.send(cmd).await;
        self.conn.local_finished(self.stream.id);
        sent.map_err(|_| Error::Closed)
    }

    /// Aborts the stream both ways (RST_STREAM with CANCEL); the peer's data stops too.
    pub async fn reset(&mut self) {
        if self.stream.reset.get().is_none() {
            self.conn.reset_stream(&self.stream, rst::CANCEL);
        }
        self.finished = true;
    }
}

impl Drop for SendHalf {
    fn drop(&mut self) {
        if self.finished || self.stream.reset.get().is_some() || self.conn.is_closed() {
            return;
        }
        let cmd = self.data_frame(Bytes::new(), FLAG_FIN);
        match self.conn.data_tx.try_send(cmd) {
            Ok(()) => self.conn.local_finished(self.stream.id),
            Err(mpsc::error::TrySendError::Full(cmd)) => {
                // Keep FIN behind the queued data: wait for room on a task, if a runtime is around.
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    let conn = self.conn.clone();
                    let id = self.stream.id;
                    handle.spawn(async move {
                        if conn.data_tx.send(cmd).await.is_ok() {
                            conn.local_finished(id);
                        }
                    });
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// The receiving side of a stream.
#[derive(Debug)]
pub struct RecvHalf {
    stream: Arc<StreamShared>,
    rx: mpsc::UnboundedReceiver<Delivery>,
}

impl RecvHalf {
    pub(crate) fn new(
        stream: Arc<StreamShared>,
        rx: mpsc::UnboundedReceiver<Delivery>,
    ) -> RecvHalf {
        RecvHalf { stream, rx }
    }

    pub fn id(&self) -> u32 {
        self.stream.id
    }

    /// The next chunk of data, in order; `None` after the peer's FIN, a reset (see
    /// [`reset_status`](RecvHalf::reset_status)) or the end of the connection.
    pub async fn recv(&mut self) -> Option<Bytes> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Poll form of [`recv`](RecvHalf::recv).
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        match ready!(self.rx.poll_recv(cx)) {
            Some(Ok(data)) => Poll::Ready(Some(data)),
            Some(Err(_)) | None => Poll::Ready(None),
        }
    }

    /// The RST_STREAM status if the stream was reset (by either side).
    pub fn reset_status(&self) -> Option<u32> {
        self.stream.reset.get().copied()
    }
}

type Reserve =
    Pin<Box<dyn std::future::Future<Output = Result<mpsc::OwnedPermit<WriteCmd>, Error>> + Send>>;

/// A [`Stream`] as `AsyncRead + AsyncWrite`. Reads end (0 bytes) on FIN, reset or connection end;
/// writes fail with `BrokenPipe` once the stream cannot send; `poll_shutdown` sends FIN.
pub struct StreamIo {
    send: SendHalf,
    recv: RecvHalf,
    /// Received bytes not yet handed to the reader.
    pending: Bytes,
    /// An in-flight wait for room in the writer's data queue.
    reserve: Option<Reserve>,
}

impl std::fmt::Debug for StreamIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamIo")
            .field("id", &self.send.id())
            .finish()
    }
}

impl StreamIo {
    fn poll_permit(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<mpsc::OwnedPermit<WriteCmd>>> {
        if let Err(err) = self.send.check() {
            self.reserve = None;
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                err,
            )));
        }
        let reserve = self.reserve.get_or_insert_with(|| {
            let tx = self.send.conn.data_tx.clone();
            Box::pin(async move { tx.reserve_owned().await.map_err(|_| Error::Closed) })
        });
        let permit = ready!(reserve.as_mut().poll(cx));
        self.reserve = None;
        Poll::Ready(permit.map_err(|err| std::io::Error::new(std::io::ErrorKind::BrokenPipe, err)))
    }
}

impl AsyncRead for StreamIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        while this.pending.is_empty() {
            match ready!(this.recv.poll_recv(cx)) {
                Some(data) => this.pending = data,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = this.pending.len().min(buf.remaining());
        buf.put_slice(&this.pending[..n]);
        this.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for StreamIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let this = &mut *self;
        let permit = ready!(this.poll_permit(cx))?;
        let n = buf.len().min(MAX_DATA_CHUNK);
        permit.send(this.send.data_frame(Bytes::copy_from_slice(&buf[..n]), 0));
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Frames are handed to the writer task as soon as they are queued.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.send.finished {
            return Poll::Ready(Ok(()));
        }
        let permit = ready!(this.poll_permit(cx))?;
        permit.send(this.send.data_frame(Bytes::new(), FLAG_FIN));
        this.send.finished = true;
        this.send.conn.local_finished(this.send.id());
        Poll::Ready(Ok(()))
    }
}
