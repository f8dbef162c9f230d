//! The client's retry policy against a scripted HTTP server on loopback: what is retried (429 on
//! any verb, 502-504 on reads), what is not (a 500 on a POST), the retry limit, the user agent,
//! and the metrics that count it all.

use std::sync::{Arc, Mutex};

use client::{Client, ClientOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Requests seen (request line and user agent), and the answers still to give (status, extra
/// headers, body); the last answer repeats.
#[derive(Default)]
struct Script {
    seen: Vec<(String, String)>,
    answers: Vec<(u16, String, String)>,
}

async fn serve(script: Arc<Mutex<Script>>) -> String {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(err) => panic!("bind: {err}"),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(err) => panic!("{err}"),
    };
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                let agent = head
                    .lines()
                    .find_map(|l| l.strip_prefix("user-agent: "))
                    .unwrap_or_default()
                    .to_string();
                let (status, headers, body) = {
                    let Ok(mut s) = script.lock() else { return };
                    s.seen.push((line, agent));
                    if s.answers.len() > 1 {
                        s.answers.remove(0)
                    } else {
                        s.answers
                            .first()
                            .cloned()
                            .unwrap_or((200, String::new(), "{}".into()))
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

fn client(url: &str, registry: &metrics::Registry, retries: u32) -> Client {
    let uri = match url.parse() {
        Ok(u) => u,
        Err(err) => panic!("{err}"),
    };
    let mut options = ClientOptions::new("retry-test")
        .rate(-1.0, 0)
        .max_retries(retries);
    options.initial_backoff = std::time::Duration::from_millis(10);
    match Client::with_registry(kube::Config::new(uri), options, registry) {
        Ok(c) => c,
        Err(err) => panic!("{err}"),
    }
}

const CM: &str =
    r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"default"}}"#;
const THROTTLED: &str = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Too many requests, please try again later.","reason":"TooManyRequests","code":429}"#;

fn script(answers: &[(u16, &str, &str)]) -> Arc<Mutex<Script>> {
    Arc::new(Mutex::new(Script {
        seen: Vec::new(),
        answers: answers
            .iter()
            .map(|(c, h, b)| (*c, h.to_string(), b.to_string()))
            .collect(),
    }))
}

fn seen(script: &Arc<Mutex<Script>>) -> Vec<(String, String)> {
    script.lock().map(|s| s.seen.clone()).unwrap_or_default()
}

#[tokio::test]
async fn throttled_requests_are_retried_and_counted() {
    let s = script(&[
        (429, "retry-after: 0\r\n", THROTTLED),
        (429, "retry-after: 0\r\n", THROTTLED),
        (200, "", CM),
    ]);
    let url = serve(s.clone()).await;
    let registry = metrics::Registry::new();
    let c = client(&url, &registry, 10);
    let got = c.api::<ConfigMap>(Some("default")).get("x").await;
    assert!(got.is_ok(), "{got:?}");
    let seen = seen(&s);
    assert_eq!(seen.len(), 3);
    assert!(
        seen[0].1.starts_with("retry-test/v1.33.0 (linux/"),
        "user agent: {}",
        seen[0].1
    );
    let text = registry.render();
    assert!(
        text.contains("rest_client_requests_total{code=\"429\""),
        "{text}"
    );
    assert!(
        text.contains("rest_client_request_retries_total{code=\"429\",host=")
            && text.contains("verb=\"GET\"} 2"),
        "{text}"
    );
}

#[tokio::test]
async fn a_server_error_on_a_write_is_not_retried() {
    let s = script(&[(
        500,
        "",
        r#"{"kind":"Status","status":"Failure","message":"boom","reason":"InternalError","code":500}"#,
    )]);
    let url = serve(s.clone()).await;
    let c = client(&url, &metrics::Registry::new(), 10);
    let cm: ConfigMap = match serde_json::from_str(CM) {
        Ok(cm) => cm,
        Err(err) => panic!("{err}"),
    };
    let err = match c.api::<ConfigMap>(Some("default")).create(&cm).await {
        Ok(_) => panic!("the 500 was swallowed"),
        Err(err) => err,
    };
    assert_eq!(err.code(), Some(500));
    assert_eq!(err.to_string(), "error from server (InternalError): boom");
    assert_eq!(
        seen(&s).len(),
        1,
        "a POST answered with 500 may have happened: no retry"
    );
}

#[tokio::test]
async fn reads_retry_unavailable_and_give_up_after_the_limit() {
    let s = script(&[(503, "", "service unavailable")]);
    let url = serve(s.clone()).await;
    let c = client(&url, &metrics::Registry::new(), 3);
    let err = match c.api::<ConfigMap>(Some("default")).get("x").await {
        Ok(_) => panic!("503 became a success"),
        Err(err) => err,
    };
    assert_eq!(err.code(), Some(503));
    assert_eq!(
        err.to_string(),
        "error from server (ServiceUnavailable): the server responded with HTTP 503: service unavailable"
    );
    assert_eq!(seen(&s).len(), 4, "one try and three retries");
}

#[tokio::test]
async fn throttled_writes_are_retried_too() {
    let s = script(&[(429, "retry-after: 0\r\n", THROTTLED), (201, "", CM)]);
    let url = serve(s.clone()).await;
    let c = client(&url, &metrics::Registry::new(), 10);
    let cm: ConfigMap = match serde_json::from_str(CM) {
        Ok(cm) => cm,
        Err(err) => panic!("{err}"),
    };
    let created = c.api::<ConfigMap>(Some("default")).create(&cm).await;
    assert!(created.is_ok(), "{created:?}");
    let seen = seen(&s);
    assert_eq!(seen.len(), 2);
    assert!(seen
        .iter()
        .all(|(line, _)| line.starts_with("POST /api/v1/namespaces/default/configmaps")));
}
