//! Protocol translation between a WebSocket client and the runtime's SPDY streaming server.
//!
//! Remote command (exec, attach): the WebSocket channel protocol (`v4`/`v5.channel.k8s.io`)
//! puts every stream in one connection, each binary message starting with its channel: 0 stdin,
//! 1 stdout, 2 stderr, 3 error (a `metav1.Status`), 4 resize (terminal size JSON), and in `v5`
//! 255 = "close the channel in the next byte" (how a client ends stdin). The runtime gets the
//! same session as SPDY streams (`streamtype: error|stdin|stdout|stderr|resize`, created in the
//! order client-go creates them), half-closing stdin when the client closes channel 0. The
//! error channel is sent last, once the runtime's outputs ended, then the WebSocket is closed.
//!
//! Port-forward tunnels: every binary message is a piece of the SPDY byte stream; it is
//! written to the runtime's connection as it is, and the runtime's bytes go back in binary
//! messages.

use futures::{SinkExt, StreamExt};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// WebSocket channel numbers.
pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const ERROR: u8 = 3;
pub const RESIZE: u8 = 4;
/// `v5`: closes the channel named by the next byte.
pub const CLOSE: u8 = 255;

/// How long closing the runtime's connection may wait for queued frames to be written.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The streams one remote-command session has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Channels {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
    /// `v5.channel.k8s.io` (stdin can be closed) rather than `v4`.
    pub v5: bool,
}

/// What a client's WebSocket message asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage<'a> {
    Stdin(&'a [u8]),
    Resize(&'a [u8]),
    CloseStdin,
    /// Channels a client may not write (or an empty message): ignored.
    Ignored,
}

/// Reads one binary message of the channel protocol.
pub fn client_message(data: &[u8], v5: bool) -> ClientMessage<'_> {
    match data.split_first() {
        Some((&STDIN, rest)) => ClientMessage::Stdin(rest),
        Some((&RESIZE, rest)) => ClientMessage::Resize(rest),
        Some((&CLOSE, [STDIN, ..])) if v5 => ClientMessage::CloseStdin,
        _ => ClientMessage::Ignored,
    }
}

/// A message on `channel`.
pub fn channel_message(channel: u8, data: &[u8]) -> Message {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(channel);
    out.extend_from_slice(data);
    Message::binary(out)
}

async fn accept(client: OnUpgrade) -> Option<WebSocketStream<TokioIo<Upgraded>>> {
    match client.await {
        Ok(upgraded) => {
            Some(WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await)
        }
        Err(err) => {
            tracing::debug!(%err, "the client's connection did not upgrade");
            None
        }
    }
}

/// Runs one exec or attach session: the client's WebSocket against SPDY streams to the runtime.
pub async fn remote_command(client: OnUpgrade, backend: Upgraded, channels: Channels) {
    let Some(ws) = accept(client).await else {
        return;
    };
    let connection = spdy::Connection::client(TokioIo::new(backend));
    if let Err(err) = run_remote_command(ws, &connection, channels).await {
        tracing::debug!(error = %err, "remote command session ended with an error");
    }
    // The runtime normally ended the connection already; a peer that stopped reading does not
    // hold this task.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close()).await;
}

async fn run_remote_command(
    ws: WebSocketStream<TokioIo<Upgraded>>,
    connection: &spdy::Connection,
    channels: Channels,
) -> Result<(), String> {
    let (mut ws_tx, mut ws_rx) = ws.split();
    let open = |kind: &'static str| async move {
        connection
            .open_stream(&[("streamtype", kind)])
            .await
            .map(spdy::Stream::split)
            .map_err(|e| format!("opening the {kind} stream: {e}"))
    };
    let (_error_tx, mut error_rx) = open("error").await?;
    let mut stdin = match channels.stdin {
        true => Some(open("stdin").await?.0),
        false => None,
    };
    let mut stdout = match channels.stdout {
        true => Some(open("stdout").await?.1),
        false => None,
    };
    let mut stderr = match channels.stderr && !channels.tty {
        true => Some(open("stderr").await?.1),
        false => None,
    };
    let mut resize = match channels.tty {
        true => Some(open("resize").await?.0),
        false => None,
    };
    let mut status: Vec<u8> = Vec::new();
    let mut error_open = true;
    while error_open || stdout.is_some() || stderr.is_some() {
        tokio::select! {
            message = ws_rx.next() => match message {
                Some(Ok(Message::Binary(data))) => match client_message(&data, channels.v5) {
                    ClientMessage::Stdin(bytes) => {
                        if let Some(stdin) = stdin.as_mut() {
                            if !bytes.is_empty() && stdin.send(bytes).await.is_err() {
                                return Ok(());
                            }
                        }
                    }
                    ClientMessage::Resize(bytes) => {
                        if let Some(resize) = resize.as_mut() {
                            let _ = resize.send(bytes).await;
                        }
                    }
                    ClientMessage::CloseStdin => {
                        if let Some(mut stdin) = stdin.take() {
                            let _ = stdin.finish().await;
                        }
                    }
                    ClientMessage::Ignored => {}
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    // The client is gone: nobody reads the outputs any more.
                    return Ok(());
                }
                Some(Ok(_)) => {}
            },
            data = recv(&mut stdout), if stdout.is_some() => match data {
                Some(data) => ws_tx.send(channel_message(STDOUT, &data)).await.map_err(|e| e.to_string())?,
                None => stdout = None,
            },
            data = recv(&mut stderr), if stderr.is_some() => match data {
                Some(data) => ws_tx.send(channel_message(STDERR, &data)).await.map_err(|e| e.to_string())?,
                None => stderr = None,
            },
            data = error_rx.recv(), if error_open => match data {
                Some(data) => status.extend_from_slice(&data),
                None => error_open = false,
            },
        }
    }
    if !status.is_empty() {
        ws_tx
            .send(channel_message(ERROR, &status))
            .await
            .map_err(|e| e.to_string())?;
    }
    let _ = ws_tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await;
    let _ = ws_tx.flush().await;
    Ok(())
}

async fn recv(half: &mut Option<spdy::RecvHalf>) -> Option<bytes::Bytes> {
    match half {
        Some(half) => half.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs one port-forward tunnel: SPDY bytes in the client's binary messages, passed to and
/// from the runtime's connection as they are.
pub async fn tunnel(client: OnUpgrade, backend: Upgraded) {
    let Some(ws) = accept(client).await else {
        return;
    };
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut backend_rx, mut backend_tx) = tokio::io::split(TokioIo::new(backend));
    let mut buffer = vec![0u8; 32 * 1024];
    let mut client_open = true;
    loop {
        tokio::select! {
            message = ws_rx.next(), if client_open => match message {
                Some(Ok(Message::Binary(data))) => {
                    if backend_tx.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    client_open = false;
                    let _ = backend_tx.shutdown().await;
                }
                Some(Ok(_)) => {}
            },
            read = backend_rx.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if ws_tx.send(Message::binary(buffer[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    let _ = ws_tx.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_by_channel() {
        assert_eq!(
            client_message(&[0, b'h', b'i'], true),
            ClientMessage::Stdin(b"hi")
        );
        assert_eq!(
            client_message(&[4, b'{'], false),
            ClientMessage::Resize(b"{")
        );
        assert_eq!(client_message(&[255, 0], true), ClientMessage::CloseStdin);
        assert_eq!(
            client_message(&[255, 0], false),
            ClientMessage::Ignored,
            "v4 has no close"
        );
        assert_eq!(client_message(&[1, b'x'], true), ClientMessage::Ignored);
        assert_eq!(client_message(&[], true), ClientMessage::Ignored);
    }

    #[test]
    fn outputs_carry_their_channel() {
        assert_eq!(
            channel_message(STDOUT, b"ab").into_data().as_ref(),
            [1, b'a', b'b']
        );
        assert_eq!(channel_message(ERROR, b"").into_data().as_ref(), [3]);
    }
}
