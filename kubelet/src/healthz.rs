//! The kubelet's local health endpoint (`--healthz-port`, default 10248, on
//! `--healthz-bind-address`, default 127.0.0.1): plain HTTP, `GET /healthz` answers `ok`
//! (`?verbose` lists the checks, as upstream's healthz handler does). The authenticated HTTPS
//! server on 10250 is separate.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A named check: `Err(reason)` fails it.
pub type Check = (String, Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

/// The answer to one request.
pub fn respond(path: &str, query: Option<&str>, checks: &[Check]) -> (StatusCode, String) {
    let path = path.trim_end_matches('/');
    let verbose = query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    if let Some(name) = path.strip_prefix("/healthz/") {
        return match checks.iter().find(|(n, _)| n == name) {
            Some((_, check)) => match check() {
                Ok(()) => (StatusCode::OK, "ok".to_string()),
                Err(reason) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("internal server error: {reason}\n"),
                ),
            },
            None => (StatusCode::NOT_FOUND, "404 page not found\n".to_string()),
        };
    }
    if path != "/healthz" {
        return (StatusCode::NOT_FOUND, "404 page not found\n".to_string());
    }
    let results: Vec<(&str, Result<(), String>)> =
        checks.iter().map(|(n, c)| (n.as_str(), c())).collect();
    let failed = results.iter().any(|(_, r)| r.is_err());
    if !failed && !verbose {
        return (StatusCode::OK, "ok".to_string());
    }
    let mut body = String::new();
    for (name, result) in &results {
        match result {
            Ok(()) => body.push_str(&format!("[+]{name} ok\n")),
            Err(_) => body.push_str(&format!("[-]{name} failed: reason withheld\n")),
        }
    }
    if failed {
        body.push_str("healthz check failed\n");
        (StatusCode::INTERNAL_SERVER_ERROR, body)
    } else {
        body.push_str("healthz check passed\n");
        (StatusCode::OK, body)
    }
}

/// Serves until `stop`. A port that cannot be bound is logged and tried again every 5 s, as
/// upstream keeps retrying its healthz server; the bound address is sent on `bound`.
pub async fn serve(
    address: IpAddr,
    port: u16,
    checks: Arc<Vec<Check>>,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = loop {
        match TcpListener::bind((address, port)).await {
            Ok(l) => break l,
            Err(err) => {
                tracing::error!(%address, port, error = %err, "Failed to start healthz server");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    };
    if let (Some(tx), Ok(addr)) = (bound, listener.local_addr()) {
        tracing::info!(%addr, "serving healthz");
        let _ = tx.send(addr);
    }
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let checks = checks.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let checks = checks.clone();
                async move {
                    let (status, body) = if req.method() == http::Method::GET
                        || req.method() == http::Method::HEAD
                    {
                        respond(req.uri().path(), req.uri().query(), &checks)
                    } else {
                        (
                            StatusCode::METHOD_NOT_ALLOWED,
                            "method not allowed\n".to_string(),
                        )
                    };
                    let mut response = Response::new(Full::new(Bytes::from(body)));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    response.headers_mut().insert(
                        "x-content-type-options",
                        http::HeaderValue::from_static("nosniff"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(ok: bool) -> Vec<Check> {
        vec![
            ("ping".to_string(), Arc::new(|| Ok(()))),
            (
                "syncloop".to_string(),
                Arc::new(move || if ok { Ok(()) } else { Err("stale".to_string()) }),
            ),
        ]
    }

    #[test]
    fn answers_like_upstream() {
        assert_eq!(
            respond("/healthz", None, &checks(true)),
            (StatusCode::OK, "ok".into())
        );
        let (code, body) = respond("/healthz", Some("verbose"), &checks(true));
        assert_eq!(code, StatusCode::OK);
        assert_eq!(body, "[+]ping ok\n[+]syncloop ok\nhealthz check passed\n");
        let (code, body) = respond("/healthz", None, &checks(false));
        assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("[-]syncloop failed"), "{body}");
        assert_eq!(
            respond("/healthz/ping", None, &checks(false)).0,
            StatusCode::OK
        );
        assert_eq!(
            respond("/healthz/nope", None, &checks(true)).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond("/other", None, &checks(true)).0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn serves_over_tcp() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(serve(
            IpAddr::from([127, 0, 0, 1]),
            0,
            Arc::new(checks(true)),
            Some(tx),
            stop_rx,
        ));
        let addr = rx.await.unwrap();
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        stream.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
        assert!(out.ends_with("ok"), "{out}");
        stop_tx.send_replace(true);
    }
}
