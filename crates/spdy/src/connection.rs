//! A SPDY/3.1 session over one byte stream: stream bookkeeping plus the reader and writer tasks.
//!
//! Two tasks per connection:
//! - the **reader** owns the read half and the incoming header zlib context; it decodes frames and
//!   routes them (data to per-stream unbounded queues, replies to waiting `open_stream` calls, new
//!   streams to the server's accept queue) without ever awaiting anything but the transport, so one
//!   slow consumer cannot stall the others;
//! - the **writer** owns the write half and the outgoing zlib context, serializing frames from all
//!   streams. It drains two queues, control first: an unbounded one for small control frames
//!   (SYN_STREAM, SYN_REPLY, RST_STREAM, PING, GOAWAY), which lets synchronous code and the reader
//!   enqueue without waiting, and a bounded one for data frames, which gives `send` back-pressure.
//!   Because a control frame queued before a data frame is always taken first, a stream's
//!   SYN_STREAM/SYN_REPLY always precedes its data.
//!
//! Stream ids: the client opens odd ids from 1, the server even ids from 2. SYN_STREAMs are queued
//! while holding the state lock, so ids hit the wire in increasing order as the draft requires.
//!
//! Lock order: only `Shared::state` (a std mutex), never held across an await, and nothing that could
//! re-enter it (such as dropping an `IncomingStream`) runs while it is held.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot, watch};

use crate::frame::{goaway, rst, Frame, FrameDecoder, FrameEncoder, FLAG_FIN};
use crate::headers::Headers;
use crate::stream::{RecvHalf, SendHalf, Stream};
use crate::Error;

/// How long `open_stream` waits for the peer's SYN_REPLY (the kubelet's and client-go's value).
pub const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(30);
/// Outgoing data is cut into frames of at most this size.
pub const MAX_DATA_CHUNK: usize = 32 * 1024;
/// Data frames that may wait for the writer before `send` blocks.
const DATA_QUEUE: usize = 64;
/// New streams that may wait for the server's accept loop before further ones are refused.
const ACCEPT_QUEUE: usize = 1024;
/// The writer batches queued frames into one transport write up to about this size.
const WRITE_BATCH: usize = 256 * 1024;

const MAX_STREAM_ID: u32 = 0x7fff_ffff;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Client,
    Server,
}

impl Role {
    /// Parity (id % 2) of the stream and ping ids this side originates.
    fn parity(self) -> u32 {
        match self {
            Role::Client => 1,
            Role::Server => 0,
        }
    }
}

pub(crate) enum WriteCmd {
    Frame(Frame),
    /// Send GOAWAY after everything queued before it, then close the transport.
    Close,
}

/// Per-stream state the halves share without taking the connection lock.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) id: u32,
    /// RST_STREAM status, from either side; set once.
    pub(crate) reset: OnceLock<u32>,
}

/// What the reader delivers to a `RecvHalf`: data, or the status of a reset.
pub(crate) type Delivery = Result<Bytes, u32>;

struct StreamEntry {
    /// For streams we opened: the caller of `open_stream` waiting for SYN_REPLY.
    reply: Option<oneshot::Sender<Result<Headers, Error>>>,
    /// Incoming data; `None` once the peer half-closed.
    data: Option<mpsc::UnboundedSender<Delivery>>,
    /// We sent FIN.
    local_closed: bool,
    shared: Arc<StreamShared>,
}

impl StreamEntry {
    fn finished(&self) -> bool {
        self.local_closed && self.data.is_none() && self.reply.is_none()
    }
}

struct State {
    /// The transport is gone or going: nothing new may start.
    closed: bool,
    /// A GOAWAY was sent or received: no new streams.
    going_away: bool,
    next_stream_id: u32,
    next_ping_id: u32,
    /// Highest stream id the peer opened (for our GOAWAY).
    last_peer_stream_id: u32,
    streams: HashMap<u32, StreamEntry>,
    pings: HashMap<u32, oneshot::Sender<()>>,
    incoming: Option<mpsc::Sender<IncomingStream>>,
}

pub(crate) struct Shared {
    role: Role,
    state: Mutex<State>,
    control_tx: mpsc::UnboundedSender<WriteCmd>,
    pub(crate) data_tx: mpsc::Sender<WriteCmd>,
    /// Set when the connection is finished; both tasks stop on it.
    shutdown: watch::Sender<bool>,
    reader_done: watch::Sender<bool>,
    writer_done: watch::Sender<bool>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked mid-update; the maps stay usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Queues a control frame; silently dropped once the writer is gone.
    pub(crate) fn send_control(&self, frame: Frame) {
        let _ = self.control_tx.send(WriteCmd::Frame(frame));
    }

    /// Resets a stream from our side: RST_STREAM to the peer, local queues torn down.
    pub(crate) fn reset_stream(&self, stream: &StreamShared, status: u32) {
        let _ = stream.reset.set(status);
        let removed = {
            let mut st = self.lock();
            let removed = st.streams.remove(&stream.id);
            if !st.closed {
                self.send_control(Frame::RstStream {
                    stream_id: stream.id,
                    status,
                });
            }
            removed
        };
        drop(removed);
    }

    /// Records that our FIN for `id` is queued; forgets the stream if the peer is done too.
    pub(crate) fn local_finished(&self, id: u32) {
        let mut st = self.lock();
        if let Some(entry) = st.streams.get_mut(&id) {
            entry.local_closed = true;
            if entry.finished() {
                st.streams.remove(&id);
            }
        }
    }

    /// Ends the connection: fails waiters, ends every `RecvHalf`, stops both tasks.
    fn finish(&self) {
        let (streams, pings, incoming) = {
            let mut st = self.lock();
            st.closed = true;
            st.going_away = true;
            (
                std::mem::take(&mut st.streams),
                std::mem::take(&mut st.pings),
                st.incoming.take(),
            )
        };
        for (_, mut entry) in streams {
            if let Some(reply) = entry.reply.take() {
                let _ = reply.send(Err(Error::Closed));
            }
        }
        drop(pings);
        drop(incoming);
        self.shutdown.send_replace(true);
    }
}

/// A SPDY/3.1 connection. Cheap to clone; all clones drive the same session.
///
/// Must be created inside a tokio runtime (it spawns its reader and writer tasks). The tasks run
/// until the transport ends, [`Connection::close`] is called, or a protocol error occurs; dropping
/// every handle does not close the connection by itself.
#[derive(Clone)]
pub struct Connection {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.shared.role)
            .field("closed", &self.shared.is_closed())
            .finish()
    }
}

impl Connection {
    /// Client role over an upgraded connection (after HTTP 101 `Upgrade: SPDY/3.1`). Streams the
    /// server tries to open are refused.
    pub fn client<IO>(io: IO) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Connection::start(io, Role::Client, None)
    }

    /// Server role: streams the peer opens arrive on the receiver, headers already decoded; answer
    /// each with [`IncomingStream::accept`] or [`IncomingStream::reset`].
    pub fn server<IO>(io: IO) -> (Connection, mpsc::Receiver<IncomingStream>)
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, rx) = mpsc::channel(ACCEPT_QUEUE);
        (Connection::start(io, Role::Server, Some(tx)), rx)
    }

    fn start<IO>(io: IO, role: Role, incoming: Option<mpsc::Sender<IncomingStream>>) -> Connection
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let (data_tx, data_rx) = mpsc::channel(DATA_QUEUE);
        let first_id = match role {
            Role::Client => 1,
            Role::Server => 2,
        };
        let shared = Arc::new(Shared {
            role,
            state: Mutex::new(State {
                closed: false,
                going_away: false,
                next_stream_id: first_id,
                next_ping_id: first_id,
                last_peer_stream_id: 0,
                streams: HashMap::new(),
                pings: HashMap::new(),
                incoming,
            }),
            control_tx,
            data_tx,
            shutdown: watch::Sender::new(false),
            reader_done: watch::Sender::new(false),
            writer_done: watch::Sender::new(false),
        });
        let (read_half, write_half) = tokio::io::split(io);
        tokio::spawn(run_reader(read_half, shared.clone()));
        tokio::spawn(run_writer(write_half, shared.clone(), control_rx, data_rx));
        Connection { shared }
    }

    /// Opens a stream with these headers (names are lowercased) and waits up to
    /// [`OPEN_STREAM_TIMEOUT`] for the peer's SYN_REPLY.
    pub async fn open_stream(&self, headers: &[(&str, &str)]) -> Result<Stream, Error> {
        self.open_stream_timeout(headers, OPEN_STREAM_TIMEOUT).await
    }

    /// [`Connection::open_stream`] with an explicit reply timeout. On timeout the stream is reset
    /// (CANCEL) and `Error::Timeout` returned; a peer RST gives `Error::Reset`, a dead or
    /// going-away connection `Error::Closed`.
    pub async fn open_stream_timeout(
        &self,
        headers: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Stream, Error> {
        let (reply_tx, reply_rx) = oneshot::channel();
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let stream = {
            let mut st = self.shared.lock();
            if st.closed || st.going_away || st.next_stream_id > MAX_STREAM_ID {
                return Err(Error::Closed);
            }
            let id = st.next_stream_id;
            st.next_stream_id += 2;
            let stream = Arc::new(StreamShared {
                id,
                reset: OnceLock::new(),
            });
            st.streams.insert(
                id,
                StreamEntry {
                    reply: Some(reply_tx),
                    data: Some(data_tx),
                    local_closed: false,
                    shared: stream.clone(),
                },
            );
            // Queued under the lock so stream ids reach the wire in increasing order.
            self.shared.send_control(Frame::SynStream {
                stream_id: id,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: to_owned_headers(headers),
            });
            stream
        };
        // Until the reply arrives, dropping this future (or timing out) abandons the stream.
        let mut pending = PendingOpen {
            shared: &self.shared,
            stream: &stream,
            armed: true,
        };
        let reply_headers = match tokio::time::timeout(timeout, reply_rx).await {
            Ok(Ok(Ok(headers))) => headers,
            Ok(Ok(Err(err))) => {
                pending.armed = false;
                return Err(err);
            }
            Ok(Err(_)) => {
                pending.armed = false;
                return Err(Error::Closed);
            }
            Err(_) => return Err(Error::Timeout),
        };
        pending.armed = false;
        let send = SendHalf::new(self.shared.clone(), stream.clone());
        let recv = RecvHalf::new(stream.clone(), data_rx);
        Ok(Stream::new(stream.id, reply_headers, send, recv))
    }

    /// Sends a PING and waits for its echo; returns the round-trip time.
    pub async fn ping(&self, timeout: Duration) -> Result<Duration, Error> {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut st = self.shared.lock();
            if st.closed {
                return Err(Error::Closed);
            }
            let id = st.next_ping_id;
            st.next_ping_id = st.next_ping_id.wrapping_add(2);
            st.pings.insert(id, tx);
            id
        };
        let start = Instant::now();
        self.shared.send_control(Frame::Ping { id });
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(())) => Ok(start.elapsed()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => {
                self.shared.lock().pings.remove(&id);
                Err(Error::Timeout)
            }
        }
    }

    /// Sends GOAWAY after all data queued so far, then closes the transport once the writer has
    /// drained; streams still open see their `RecvHalf` end.
    pub async fn close(&self) {
        self.shared.lock().going_away = true;
        let mut writer_done = self.shared.writer_done.subscribe();
        if self.shared.data_tx.send(WriteCmd::Close).await.is_err() {
            return;
        }
        let _ = writer_done.wait_for(|done| *done).await;
    }

    /// Resolves when the connection's reader has ended (peer closed, error, or `close`).
    pub async fn closed(&self) {
        let mut done = self.shared.reader_done.subscribe();
        let _ = done.wait_for(|done| *done).await;
    }

    /// The connection is finished or finishing; no new streams can be opened.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.lock();
        st.closed || st.going_away
    }
}

/// Resets a stream whose `open_stream` was abandoned before the reply (timeout or cancellation).
struct PendingOpen<'a> {
    shared: &'a Arc<Shared>,
    stream: &'a Arc<StreamShared>,
    armed: bool,
}

impl Drop for PendingOpen<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.reset_stream(self.stream, rst::CANCEL);
        }
    }
}

fn to_owned_headers(headers: &[(&str, &str)]) -> Headers {
    headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_string()))
        .collect()
}

/// A stream the peer opened, waiting for our answer. Dropping it unanswered refuses the stream.
pub struct IncomingStream {
    /// The SYN_STREAM headers (lowercase names, one pair per value).
    pub headers: Headers,
    conn: Arc<Shared>,
    stream: Arc<StreamShared>,
    data_rx: Option<mpsc::UnboundedReceiver<Delivery>>,
}

impl std::fmt::Debug for IncomingStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingStream")
            .field("id", &self.stream.id)
            .field("headers", &self.headers)
            .finish()
    }
}

impl IncomingStream {
    /// The stream id.
    pub fn id(&self) -> u32 {
        self.stream.id
    }

    /// First value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Sends SYN_REPLY (no headers) and hands out the stream.
    pub fn accept(self) -> Result<Stream, Error> {
        self.accept_with(&[])
    }

    /// Sends SYN_REPLY with these headers and hands out the stream.
    pub fn accept_with(mut self, headers: &[(&str, &str)]) -> Result<Stream, Error> {
        let data_rx = self.data_rx.take().ok_or(Error::Closed)?;
        if let Some(status) = self.stream.reset.get() {
            return Err(Error::Reset(*status));
        }
        if self.conn.is_closed() {
            return Err(Error::Closed);
        }
        self.conn.send_control(Frame::SynReply {
            stream_id: self.stream.id,
            flags: 0,
            headers: to_owned_headers(headers),
        });
        let send = SendHalf::new(self.conn.clone(), self.stream.clone());
        let recv = RecvHalf::new(self.stream.clone(), data_rx);
        Ok(Stream::new(
            self.stream.id,
            std::mem::take(&mut self.headers),
            send,
            recv,
        ))
    }

    /// Refuses the stream (RST_STREAM with REFUSED_STREAM).
    pub fn reset(mut self) {
        self.refuse();
    }

    fn refuse(&mut self) {
        if self.data_rx.take().is_some() {
            self.conn.reset_stream(&self.stream, rst::REFUSED_STREAM);
        }
    }
}

impl Drop for IncomingStream {
    fn drop(&mut self) {
        self.refuse();
    }
}

pub(crate) fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

async fn run_reader<R: AsyncRead + Unpin>(mut io: R, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut decoder = FrameDecoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let failure: Option<Error> = 'read: loop {
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    if let Err(err) = handle_frame(&shared, frame) {
                        break 'read Some(err);
                    }
                }
                Ok(None) => break,
                Err(err) => break 'read Some(err),
            }
        }
        if buf.capacity() - buf.len() < 8 * 1024 {
            buf.reserve(64 * 1024);
        }
        tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break None,
            read = io.read_buf(&mut buf) => match read {
                Ok(0) => {
                    if !buf.is_empty() {
                        tracing::debug!(left = buf.len(), "spdy: transport ended inside a frame");
                    }
                    break None;
                }
                Ok(_) => {}
                Err(err) => break Some(Error::Io(err)),
            },
        }
    };
    match &failure {
        Some(Error::Protocol(msg)) => {
            tracing::warn!(error = %msg, "spdy: closing connection on protocol error");
            let last = shared.lock().last_peer_stream_id;
            shared.send_control(Frame::GoAway {
                last_good_stream_id: last,
                status: goaway::PROTOCOL_ERROR,
            });
        }
        Some(err) => tracing::debug!(error = %err, "spdy: reader ended"),
        None => tracing::debug!("spdy: reader ended"),
    }
    shared.finish();
    shared.reader_done.send_replace(true);
}

/// Routes one incoming frame. Only connection-fatal problems return an error.
fn handle_frame(shared: &Arc<Shared>, frame: Frame) -> Result<(), Error> {
    match frame {
        Frame::SynStream {
            stream_id,
            flags,
            headers,
            ..
        } => on_syn_stream(shared, stream_id, flags, headers),
        Frame::SynReply {
            stream_id,
            flags,
            headers,
        } => {
            let mut st = shared.lock();
            let Some(entry) = st.streams.get_mut(&stream_id) else {
                tracing::debug!(stream_id, "spdy: SYN_REPLY for unknown stream");
                return Ok(());
            };
            match entry.reply.take() {
                Some(reply) => {
                    let _ = reply.send(Ok(headers));
                }
                None => tracing::debug!(stream_id, "spdy: duplicate SYN_REPLY ignored"),
            }
            if flags & FLAG_FIN != 0 {
                remote_finished(&mut st, stream_id);
            }
            Ok(())
        }
        Frame::Headers {
            stream_id, flags, ..
        } => {
            if flags & FLAG_FIN != 0 {
                remote_finished(&mut shared.lock(), stream_id);
            }
            Ok(())
        }
        Frame::RstStream { stream_id, status } => {
            let removed = shared.lock().streams.remove(&stream_id);
            if let Some(mut entry) = removed {
                let _ = entry.shared.reset.set(status);
                if let Some(reply) = entry.reply.take() {
                    let _ = reply.send(Err(Error::Reset(status)));
                }
                if let Some(data) = entry.data.take() {
                    let _ = data.send(Err(status));
                }
            }
            Ok(())
        }
        // No flow control (see the crate docs): window sizes and settings are ignored.
        Frame::Settings { .. } | Frame::WindowUpdate { .. } => Ok(()),
        Frame::Ping { id } => {
            if id % 2 != shared.role.parity() {
                shared.send_control(Frame::Ping { id });
            } else if let Some(waiter) = shared.lock().pings.remove(&id) {
                let _ = waiter.send(());
            }
            Ok(())
        }
        Frame::GoAway {
            last_good_stream_id,
            status,
        } => {
            tracing::debug!(last_good_stream_id, status, "spdy: peer sent GOAWAY");
            let abandoned: Vec<StreamEntry> = {
                let mut st = shared.lock();
                st.going_away = true;
                let parity = shared.role.parity();
                let ids: Vec<u32> = st
                    .streams
                    .iter()
                    .filter(|(id, e)| {
                        **id % 2 == parity && **id > last_good_stream_id && e.reply.is_some()
                    })
                    .map(|(id, _)| *id)
                    .collect();
                ids.iter().filter_map(|id| st.streams.remove(id)).collect()
            };
            for mut entry in abandoned {
                if let Some(reply) = entry.reply.take() {
                    let _ = reply.send(Err(Error::Closed));
                }
            }
            Ok(())
        }
        Frame::Data {
            stream_id,
            flags,
            data,
        } => {
            if stream_id == 0 {
                return Err(Error::protocol("data frame on stream 0"));
            }
            let mut st = shared.lock();
            let Some(sender) = st.streams.get(&stream_id).and_then(|e| e.data.as_ref()) else {
                tracing::debug!(
                    stream_id,
                    "spdy: data for unknown or half-closed stream dropped"
                );
                return Ok(());
            };
            if !data.is_empty() {
                // The receiver may be gone (RecvHalf dropped): the data is simply discarded.
                let _ = sender.send(Ok(data));
            }
            if flags & FLAG_FIN != 0 {
                remote_finished(&mut st, stream_id);
            }
            Ok(())
        }
    }
}

fn remote_finished(st: &mut State, stream_id: u32) {
    if let Some(entry) = st.streams.get_mut(&stream_id) {
        entry.data = None;
        if entry.finished() {
            st.streams.remove(&stream_id);
        }
    }
}

fn on_syn_stream(
    shared: &Arc<Shared>,
    stream_id: u32,
    flags: u8,
    headers: Headers,
) -> Result<(), Error> {
    if stream_id == 0 {
        return Err(Error::protocol("SYN_STREAM with stream id 0"));
    }
    let refuse = |status: u32| {
        shared.send_control(Frame::RstStream { stream_id, status });
        Ok(())
    };
    let (incoming_tx, stream, data_rx) = {
        let mut st = shared.lock();
        if stream_id % 2 == shared.role.parity() {
            drop(st);
            return refuse(rst::PROTOCOL_ERROR);
        }
        if st.streams.contains_key(&stream_id) {
            drop(st);
            return refuse(rst::STREAM_IN_USE);
        }
        let Some(incoming_tx) = st.incoming.clone().filter(|_| !st.going_away) else {
            drop(st);
            return refuse(rst::REFUSED_STREAM);
        };
        st.last_peer_stream_id = st.last_peer_stream_id.max(stream_id);
        let (data_tx, data_rx) = mpsc::unbounded_channel();
        let stream = Arc::new(StreamShared {
            id: stream_id,
            reset: OnceLock::new(),
        });
        st.streams.insert(
            stream_id,
            StreamEntry {
                reply: None,
                data: (flags & FLAG_FIN == 0).then_some(data_tx),
                local_closed: false,
                shared: stream.clone(),
            },
        );
        (incoming_tx, stream, data_rx)
    };
    let incoming = IncomingStream {
        headers,
        conn: shared.clone(),
        stream,
        data_rx: Some(data_rx),
    };
    // A full or dropped accept queue hands the stream back; dropping it (outside the lock) refuses it.
    if let Err(err) = incoming_tx.try_send(incoming) {
        tracing::debug!(stream_id, "spdy: accept queue unavailable, refusing stream");
        drop(err);
    }
    Ok(())
}

async fn run_writer<W: AsyncWrite + Unpin>(
    mut io: W,
    shared: Arc<Shared>,
    mut control_rx: mpsc::UnboundedReceiver<WriteCmd>,
    mut data_rx: mpsc::Receiver<WriteCmd>,
) {
    let mut shutdown = shared.shutdown.subscribe();
    let mut encoder = FrameEncoder::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let result: Result<(), Error> = async {
        loop {
            // Control first (see the module docs for why ordering depends on it), then shutdown.
            let cmd = tokio::select! {
                biased;
                Some(cmd) = control_rx.recv() => cmd,
                _ = shutdown.wait_for(|stop| *stop) => return Ok(()),
                Some(cmd) = data_rx.recv() => cmd,
                else => return Ok(()),
            };
            let mut closing = encode_cmd(&shared, &mut encoder, cmd, &mut buf)?;
            // Batch whatever else is already queued into the same write.
            while !closing && buf.len() < WRITE_BATCH {
                let next = match control_rx.try_recv() {
                    Ok(cmd) => cmd,
                    Err(_) => match data_rx.try_recv() {
                        Ok(cmd) => cmd,
                        Err(_) => break,
                    },
                };
                closing = encode_cmd(&shared, &mut encoder, next, &mut buf)?;
            }
            io.write_all(&buf).await?;
            buf.clear();
            io.flush().await?;
            if closing {
                io.shutdown().await?;
                return Ok(());
            }
        }
    }
    .await;
    if let Err(err) = result {
        tracing::debug!(error = %err, "spdy: writer ended");
    }
    shared.finish();
    shared.writer_done.send_replace(true);
}

/// Encodes one queued command; returns true for `Close` (after encoding the GOAWAY).
fn encode_cmd(
    shared: &Shared,
    encoder: &mut FrameEncoder,
    cmd: WriteCmd,
    buf: &mut BytesMut,
) -> Result<bool, Error> {
    match cmd {
        WriteCmd::Frame(frame) => {
            encoder.encode(&frame, buf)?;
            Ok(false)
        }
        WriteCmd::Close => {
            let last = shared.lock().last_peer_stream_id;
            encoder.encode(
                &Frame::GoAway {
                    last_good_stream_id: last,
                    status: goaway::OK,
                },
                buf,
            )?;
            Ok(true)
        }
    }
}
