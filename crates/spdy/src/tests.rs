//! Connection-level tests: a client and a server `Connection` over `tokio::io::duplex`, and a
//! client against a hand-driven raw peer (standing in for spdystream) for wire-level checks.

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::frame::{goaway, rst, Frame, FrameDecoder, FrameEncoder, FLAG_FIN};
use crate::{Connection, Error, IncomingStream, RecvHalf};

const WAIT: Duration = Duration::from_secs(10);

fn pair() -> (Connection, Connection, mpsc::Receiver<IncomingStream>) {
    // A small pipe buffer makes the writer really wait on the transport.
    let (a, b) = tokio::io::duplex(16 * 1024);
    let client = Connection::client(a);
    let (server, incoming) = Connection::server(b);
    (client, server, incoming)
}

async fn read_all(recv: &mut RecvHalf) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = timeout(WAIT, recv.recv()).await.expect("recv timed out") {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Server side that answers every stream: replies, echoes everything back prefixed by the
/// `streamtype` header, then half-closes after the client did.
fn spawn_echo_server(mut incoming: mpsc::Receiver<IncomingStream>) {
    tokio::spawn(async move {
        while let Some(stream) = incoming.recv().await {
            tokio::spawn(async move {
                let kind = stream.header("streamtype").unwrap_or("?").to_string();
                let (mut send, mut recv) = stream.accept().expect("accept").split();
                let data = read_all(&mut recv).await;
                let mut reply = format!("{kind}:").into_bytes();
                reply.extend_from_slice(&data);
                send.send(&reply).await.expect("echo send");
                send.finish().await.expect("echo finish");
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_streams_exchange_data_both_ways() {
    let (client, _server, incoming) = pair();
    spawn_echo_server(incoming);
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut tasks = Vec::new();
    for (i, kind) in ["stdin", "stdout", "stderr", "error", "resize"]
        .into_iter()
        .enumerate()
    {
        let client = client.clone();
        let payload = if i == 0 {
            big.clone()
        } else {
            kind.repeat(i + 1).into_bytes()
        };
        tasks.push(tokio::spawn(async move {
            let stream = client
                .open_stream(&[("StreamType", kind), ("requestID", "1")])
                .await
                .expect("open");
            assert_eq!(stream.id() % 2, 1, "client ids are odd");
            let (mut send, mut recv) = stream.split();
            send.send(&payload).await.expect("send");
            send.finish().await.expect("finish");
            let echoed = read_all(&mut recv).await;
            let mut want = format!("{kind}:").into_bytes();
            want.extend_from_slice(&payload);
            assert_eq!(echoed.len(), want.len());
            assert!(echoed == want, "{kind}: echoed data differs");
            assert_eq!(recv.reset_status(), None);
        }));
    }
    for task in tasks {
        timeout(WAIT, task)
            .await
            .expect("stream timed out")
            .expect("stream task");
    }
}

#[tokio::test]
async fn half_close_each_way_is_independent() {
    let (client, server, mut incoming) = pair();
    let server_task = tokio::spawn(async move {
        let stream = incoming.recv().await.expect("incoming");
        assert_eq!(stream.id(), 1);
        let stream = stream.accept_with(&[("X-Reply", "yes")]).expect("accept");
        let (mut send, mut recv) = stream.split();
        // Server speaks and half-closes first; it can still receive afterwards.
        send.send(b"from server").await.expect("send");
        send.finish().await.expect("finish");
        assert!(matches!(send.send(b"late").await, Err(Error::Closed)));
        let got = read_all(&mut recv).await;
        assert_eq!(got, b"from client after server FIN");
        // Server opens a stream of its own: even id.
        let own = server.open_stream(&[("streamtype", "data")]).await;
        assert!(
            matches!(own, Err(Error::Reset(rst::REFUSED_STREAM))),
            "client refuses pushes"
        );
    });
    let stream = client
        .open_stream(&[("streamtype", "stdout")])
        .await
        .expect("open");
    assert_eq!(stream.header("x-reply"), Some("yes"));
    let (mut send, mut recv) = stream.split();
    assert_eq!(read_all(&mut recv).await, b"from server");
    send.send(b"from client ").await.expect("send");
    send.send(b"after server FIN").await.expect("send");
    send.finish().await.expect("finish");
    timeout(WAIT, server_task)
        .await
        .expect("server timed out")
        .expect("server task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_both_ways() {
    let (client, _server, mut incoming) = pair();
    let server_task = tokio::spawn(async move {
        // First stream: refused.
        incoming.recv().await.expect("first").reset();
        // Second stream: accepted, then the client resets it.
        let (mut send, mut recv) = incoming
            .recv()
            .await
            .expect("second")
            .accept()
            .expect("accept")
            .split();
        assert_eq!(timeout(WAIT, recv.recv()).await.expect("recv"), None);
        assert_eq!(recv.reset_status(), Some(rst::CANCEL));
        assert!(matches!(
            send.send(b"x").await,
            Err(Error::Reset(rst::CANCEL))
        ));
        // Third stream: dropped unanswered, which refuses it too.
        drop(incoming.recv().await.expect("third"));
    });
    let refused = client.open_stream(&[("streamtype", "error")]).await;
    assert!(
        matches!(refused, Err(Error::Reset(rst::REFUSED_STREAM))),
        "{refused:?}"
    );
    let (mut send, mut recv) = client
        .open_stream(&[("streamtype", "stdin")])
        .await
        .expect("open")
        .split();
    send.reset().await;
    assert_eq!(recv.recv().await, None);
    assert!(matches!(send.send(b"x").await, Err(Error::Closed)));
    let dropped = client.open_stream(&[("streamtype", "stdout")]).await;
    assert!(
        matches!(dropped, Err(Error::Reset(rst::REFUSED_STREAM))),
        "{dropped:?}"
    );
    timeout(WAIT, server_task)
        .await
        .expect("server timed out")
        .expect("server task");
}

#[tokio::test]
async fn ping_is_echoed_both_ways() {
    let (client, server, _incoming) = pair();
    client.ping(WAIT).await.expect("client ping");
    server.ping(WAIT).await.expect("server ping");
    client.ping(WAIT).await.expect("second client ping");
}

#[tokio::test]
async fn goaway_closes_connection() {
    let (client, server, mut incoming) = pair();
    let opened = tokio::spawn({
        let client = client.clone();
        async move { client.open_stream(&[("streamtype", "stdout")]).await }
    });
    let accepted = incoming
        .recv()
        .await
        .expect("incoming")
        .accept()
        .expect("accept");
    let (_client_send, mut client_recv) = opened.await.expect("task").expect("open").split();
    let (_server_send, mut server_recv) = accepted.split();
    server.close().await;
    timeout(WAIT, server.closed()).await.expect("server closed");
    timeout(WAIT, client.closed())
        .await
        .expect("client saw the end");
    assert_eq!(timeout(WAIT, client_recv.recv()).await.expect("recv"), None);
    assert_eq!(timeout(WAIT, server_recv.recv()).await.expect("recv"), None);
    assert!(matches!(
        client.open_stream(&[("a", "b")]).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        server.open_stream(&[("a", "b")]).await,
        Err(Error::Closed)
    ));
    assert!(client.is_closed() && server.is_closed());
}

#[tokio::test]
async fn transport_end_ends_everything() {
    let (io, peer) = tokio::io::duplex(4096);
    let client = Connection::client(io);
    let waiting = tokio::spawn({
        let client = client.clone();
        async move { client.open_stream(&[("streamtype", "stdin")]).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(peer);
    let result = timeout(WAIT, waiting)
        .await
        .expect("open timed out")
        .expect("task");
    assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    timeout(WAIT, client.closed()).await.expect("closed");
    assert!(matches!(
        client.open_stream(&[("a", "b")]).await,
        Err(Error::Closed)
    ));
    assert!(client.ping(WAIT).await.is_err());
}

/// Reads frames the connection under test writes to a raw peer.
struct RawPeer {
    io: DuplexStream,
    decoder: FrameDecoder,
    encoder: FrameEncoder,
    buf: BytesMut,
}

impl RawPeer {
    fn new(io: DuplexStream) -> RawPeer {
        RawPeer {
            io,
            decoder: FrameDecoder::new(),
            encoder: FrameEncoder::new(),
            buf: BytesMut::new(),
        }
    }

    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("peer decode") {
                return Some(frame);
            }
            let n = timeout(WAIT, self.io.read_buf(&mut self.buf))
                .await
                .expect("peer read timed out")
                .ok()?;
            if n == 0 {
                return None;
            }
        }
    }

    async fn send(&mut self, frame: Frame) {
        let mut out = BytesMut::new();
        self.encoder.encode(&frame, &mut out).expect("encode");
        self.io.write_all(&out).await.expect("peer write");
    }
}

#[tokio::test]
async fn wire_level_behaviour_against_raw_peer() {
    let (io, raw) = tokio::io::duplex(64 * 1024);
    let client = Connection::client(io);
    let mut peer = RawPeer::new(raw);

    // open_stream times out without a reply and resets the stream.
    let err = client
        .open_stream_timeout(&[("StreamType", "error")], Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout));
    match peer.next().await {
        Some(Frame::SynStream {
            stream_id: 1,
            headers,
            flags: 0,
            ..
        }) => {
            assert_eq!(
                headers,
                vec![("streamtype".to_string(), "error".to_string())]
            );
        }
        other => panic!("want SYN_STREAM 1, got {other:?}"),
    }
    assert_eq!(
        peer.next().await,
        Some(Frame::RstStream {
            stream_id: 1,
            status: rst::CANCEL
        })
    );

    // A normal stream, answered by the raw peer with data and FIN in the SYN_REPLY's wake.
    let opening = tokio::spawn({
        let client = client.clone();
        async move { client.open_stream(&[("streamtype", "stdout")]).await }
    });
    assert!(matches!(
        peer.next().await,
        Some(Frame::SynStream { stream_id: 3, .. })
    ));
    peer.send(Frame::SynReply {
        stream_id: 3,
        flags: 0,
        headers: vec![],
    })
    .await;
    // Flow-control frames are ignored.
    peer.send(Frame::WindowUpdate {
        stream_id: 3,
        delta: 1,
    })
    .await;
    peer.send(Frame::Settings {
        flags: 0,
        entries: vec![],
    })
    .await;
    peer.send(Frame::Data {
        stream_id: 3,
        flags: 0,
        data: "out".into(),
    })
    .await;
    peer.send(Frame::Data {
        stream_id: 3,
        flags: FLAG_FIN,
        data: "put".into(),
    })
    .await;
    // A peer ping (even id) is echoed.
    peer.send(Frame::Ping { id: 2 }).await;
    let stream = opening.await.expect("task").expect("open");
    let (mut send, mut recv) = stream.split();
    assert_eq!(read_all(&mut recv).await, b"output");
    assert_eq!(peer.next().await, Some(Frame::Ping { id: 2 }));
    send.send(b"in").await.expect("send");
    drop(send); // dropping the half sends FIN
    assert_eq!(
        peer.next().await,
        Some(Frame::Data {
            stream_id: 3,
            flags: 0,
            data: "in".into()
        })
    );
    assert_eq!(
        peer.next().await,
        Some(Frame::Data {
            stream_id: 3,
            flags: FLAG_FIN,
            data: "".into()
        })
    );

    // Large writes are cut into 32 KiB frames.
    let stream = {
        let opening = tokio::spawn({
            let client = client.clone();
            async move { client.open_stream(&[("streamtype", "stdin")]).await }
        });
        assert!(matches!(
            peer.next().await,
            Some(Frame::SynStream { stream_id: 5, .. })
        ));
        peer.send(Frame::SynReply {
            stream_id: 5,
            flags: FLAG_FIN,
            headers: vec![],
        })
        .await;
        opening.await.expect("task").expect("open")
    };
    let (mut send, mut recv) = stream.split();
    assert_eq!(recv.recv().await, None, "SYN_REPLY carried FIN");
    send.send(&vec![7u8; 70 * 1024]).await.expect("send");
    let mut sizes = Vec::new();
    for _ in 0..3 {
        match peer.next().await {
            Some(Frame::Data {
                stream_id: 5, data, ..
            }) => sizes.push(data.len()),
            other => panic!("want data, got {other:?}"),
        }
    }
    assert_eq!(sizes, vec![32 * 1024, 32 * 1024, 6 * 1024]);

    // close(): GOAWAY naming the last peer stream (none), then the transport ends.
    client.close().await;
    assert_eq!(
        peer.next().await,
        Some(Frame::GoAway {
            last_good_stream_id: 0,
            status: goaway::OK
        })
    );
    assert_eq!(peer.next().await, None);
}

#[tokio::test]
async fn garbage_input_is_a_protocol_error() {
    for garbage in [
        &b"\xffGARBAGE garbage garbage"[..],
        // Data on stream 0.
        &[0, 0, 0, 0, 0, 0, 0, 1, b'x'][..],
        &[
            0x80, 0x03, 0x00, 0x01, 0, 0, 0, 12, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0xde, 0xad,
        ][..],
        &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 3, 1, 2, 3][..],
    ] {
        let (io, raw) = tokio::io::duplex(64 * 1024);
        let (server, _incoming) = Connection::server(io);
        let mut peer = RawPeer::new(raw);
        peer.io.write_all(garbage).await.expect("write");
        timeout(WAIT, server.closed()).await.expect("server closed");
        match peer.next().await {
            Some(Frame::GoAway { status, .. }) => assert_eq!(status, goaway::PROTOCOL_ERROR),
            other => panic!("want GOAWAY, got {other:?}"),
        }
        assert!(matches!(
            server.open_stream(&[("a", "b")]).await,
            Err(Error::Closed)
        ));
    }
    // Truncated input: the transport ends mid-frame; the connection just ends.
    let (io, mut raw) = tokio::io::duplex(1024);
    let client = Connection::client(io);
    raw.write_all(&[0x80, 0x03, 0x00, 0x06, 0, 0])
        .await
        .expect("write");
    drop(raw);
    timeout(WAIT, client.closed()).await.expect("client closed");
}

#[tokio::test]
async fn slow_receiver_does_not_stall_other_streams() {
    let (client, _server, mut incoming) = pair();
    let server_task = tokio::spawn(async move {
        let (mut flood, _flood_recv) = incoming
            .recv()
            .await
            .expect("flood")
            .accept()
            .expect("accept")
            .split();
        // 4 MiB to a stream nobody reads yet.
        flood.send(&vec![1u8; 4 << 20]).await.expect("flood");
        flood.finish().await.expect("finish");
        let (mut send, mut recv) = incoming
            .recv()
            .await
            .expect("chat")
            .accept()
            .expect("accept")
            .split();
        let got = read_all(&mut recv).await;
        send.send(&got).await.expect("echo");
        send.finish().await.expect("finish");
    });
    let (_flood_send, mut flood_recv) = client
        .open_stream(&[("streamtype", "stdout")])
        .await
        .expect("open")
        .split();
    let (mut send, mut recv) = client
        .open_stream(&[("streamtype", "stdin")])
        .await
        .expect("open")
        .split();
    send.send(b"still alive").await.expect("send");
    send.finish().await.expect("finish");
    assert_eq!(read_all(&mut recv).await, b"still alive");
    assert_eq!(read_all(&mut flood_recv).await.len(), 4 << 20);
    timeout(WAIT, server_task)
        .await
        .expect("server timed out")
        .expect("server task");
}

#[tokio::test]
async fn stream_io_adapter() {
    let (client, _server, incoming) = pair();
    spawn_echo_server(incoming);
    let mut io = client
        .open_stream(&[("streamtype", "port")])
        .await
        .expect("open")
        .into_io();
    io.write_all(&[9u8; 100_000]).await.expect("write");
    io.shutdown().await.expect("shutdown");
    let mut out = Vec::new();
    timeout(WAIT, io.read_to_end(&mut out))
        .await
        .expect("read timed out")
        .expect("read");
    assert_eq!(&out[..5], b"port:");
    assert_eq!(out.len(), 100_005);
}
