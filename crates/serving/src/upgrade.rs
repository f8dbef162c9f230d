//! HTTP/1.1 connection upgrades (`101 Switching Protocols`) passed through a proxy, the way the
//! apiserver hands `pods/exec`, `pods/attach` and `pods/portforward` to the kubelet and the
//! kubelet hands them to the runtime's streaming server: the client's upgrade request is sent on
//! to the backend with the headers that negotiate the protocol (WebSocket or SPDY/3.1, and the
//! `X-Stream-Protocol-Version`s), the backend's 101 answer goes back to the client with the
//! headers it chose, and from then on the bytes are copied both ways untouched.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;

/// Request headers that negotiate the upgraded protocol, passed on to the backend.
pub const REQUEST_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
    "origin",
];

/// Response headers of a 101 that the client needs to see.
pub const RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "upgrade",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "x-stream-protocol-version",
];

/// The upgrade a request asks for (`Upgrade: websocket`, `Upgrade: SPDY/3.1`), if any.
pub fn requested(headers: &HeaderMap) -> Option<String> {
    let connection_upgrade = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    headers
        .get(http::header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Copies `names` (every value of each) from one header map to another.
pub fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, names: &[&str]) {
    for name in names {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        for value in from.get_all(&name) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// What a backend answered instead of switching protocols.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Transport(String),
    #[error("{status}: {body}")]
    Refused { status: StatusCode, body: String },
}

/// Sends `request` (an upgrade request without a body) on `io` and, when the backend answers
/// 101, returns its response head and the upgraded connection.
pub async fn connect<IO>(
    io: IO,
    request: Request<Empty<Bytes>>,
) -> Result<(Response<()>, Upgraded), UpgradeError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let transport = |e: hyper::Error| UpgradeError::Transport(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(transport)?;
    tokio::spawn(async move {
        let _ = connection.with_upgrades().await;
    });
    let mut response = sender.send_request(request).await.map_err(transport)?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        return Err(UpgradeError::Refused {
            status,
            body: String::from_utf8_lossy(&body).trim().to_string(),
        });
    }
    let upgraded = hyper::upgrade::on(&mut response).await.map_err(transport)?;
    let (head, _) = response.into_parts();
    Ok((Response::from_parts(head, ()), upgraded))
}

/// Copies bytes both ways between the client's connection (once its 101 has been sent) and the
/// backend's, until both directions are done.
pub async fn splice(client: OnUpgrade, backend: Upgraded) {
    let client = match client.await {
        Ok(client) => client,
        Err(err) => {
            tracing::debug!(%err, "the client's connection did not upgrade");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut backend = TokioIo::new(backend);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut backend).await {
        tracing::debug!(%err, "upgraded connection ended");
    }
}

/// The 101 answer for the client, carrying the backend's negotiated headers.
pub fn switching_protocols<B: Default>(backend: &Response<()>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    copy_headers(backend.headers(), response.headers_mut(), RESPONSE_HEADERS);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrades_need_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("upgrade", "SPDY/3.1".parse().unwrap());
        assert_eq!(requested(&headers), None);
        headers.insert("connection", "keep-alive, Upgrade".parse().unwrap());
        assert_eq!(requested(&headers).as_deref(), Some("SPDY/3.1"));
    }

    #[test]
    fn every_value_of_a_header_is_copied() {
        let mut from = HeaderMap::new();
        from.append(
            "x-stream-protocol-version",
            "v4.channel.k8s.io".parse().unwrap(),
        );
        from.append(
            "x-stream-protocol-version",
            "v3.channel.k8s.io".parse().unwrap(),
        );
        from.append("authorization", "Bearer secret".parse().unwrap());
        let mut to = HeaderMap::new();
        copy_headers(&from, &mut to, REQUEST_HEADERS);
        assert_eq!(to.get_all("x-stream-protocol-version").iter().count(), 2);
        assert!(to.get("authorization").is_none());
    }

    #[tokio::test]
    async fn a_refusal_keeps_the_status_and_body() {
        let (client, server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|_req| async {
                let mut response = Response::new(http_body_util::Full::new(Bytes::from(
                    "container not found (\"c\")",
                )));
                *response.status_mut() = StatusCode::NOT_FOUND;
                Ok::<_, std::convert::Infallible>(response)
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .await;
        });
        let request = Request::get("/exec/x")
            .header("connection", "Upgrade")
            .header("upgrade", "SPDY/3.1")
            .body(Empty::new())
            .unwrap();
        match connect(client, request).await {
            Err(UpgradeError::Refused { status, body }) => {
                assert_eq!(status, StatusCode::NOT_FOUND);
                assert_eq!(body, "container not found (\"c\")");
            }
            other => panic!("unexpected {:?}", other.map(|(r, _)| r)),
        }
    }

    #[tokio::test]
    async fn upgraded_bytes_flow_both_ways() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (client, server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let on = hyper::upgrade::on(&mut req);
                    tokio::spawn(async move {
                        if let Ok(up) = on.await {
                            let mut io = TokioIo::new(up);
                            let mut buf = [0u8; 4];
                            if io.read_exact(&mut buf).await.is_ok() {
                                let _ = io.write_all(&buf).await;
                            }
                        }
                    });
                    let mut response = Response::new(http_body_util::Empty::<Bytes>::new());
                    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                    response
                        .headers_mut()
                        .insert("upgrade", "SPDY/3.1".parse().unwrap());
                    response
                        .headers_mut()
                        .insert("connection", "Upgrade".parse().unwrap());
                    response.headers_mut().insert(
                        "x-stream-protocol-version",
                        "v4.channel.k8s.io".parse().unwrap(),
                    );
                    Ok::<_, std::convert::Infallible>(response)
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(server), service)
                .with_upgrades()
                .await;
        });
        let request = Request::post("/exec/x")
            .header("connection", "Upgrade")
            .header("upgrade", "SPDY/3.1")
            .body(Empty::new())
            .unwrap();
        let (head, upgraded) = connect(client, request).await.unwrap();
        let answer: Response<()> = switching_protocols(&head);
        assert_eq!(answer.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(
            answer.headers()["x-stream-protocol-version"],
            "v4.channel.k8s.io"
        );
        let mut io = TokioIo::new(upgraded);
        io.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    }
}
