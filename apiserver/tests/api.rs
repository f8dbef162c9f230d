//! In-process tests of the API's wire behaviour: an apiserver on the embedded store on an
//! ephemeral loopback port, driven with plain HTTP/1.0 requests (no client library in between, so
//! what is asserted is exactly what goes over the wire).

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Server {
    running: Option<apiserver::Running>,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// A server whose test configuration `adjust` changed first.
    async fn start_with(adjust: impl FnOnce(&mut apiserver::Config)) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut config = apiserver::Config::for_tests(dir.path());
        adjust(&mut config);
        let running = apiserver::start(config).await.unwrap();
        let addr = running.insecure_addr.unwrap();
        Server {
            running: Some(running),
            addr,
            _dir: dir,
        }
    }

    async fn send(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> TcpStream {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.0\r\nHost: test\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        stream
    }

    /// A whole answer: (status code, JSON body).
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let bytes = body
            .map(|b| serde_json::to_vec(&b).unwrap())
            .unwrap_or_default();
        self.raw(method, path, "application/json", &bytes).await
    }

    async fn raw(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
        let mut stream = self.send(method, path, content_type, body).await;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Opens a watch; events are read with `next_event`.
    async fn watch(&self, path: &str) -> Watch {
        let stream = self.send("GET", path, "application/json", b"").await;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).await.unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Watch { reader }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            tokio::spawn(running.shutdown());
        }
    }
}

struct Watch {
    reader: BufReader<TcpStream>,
}

impl Watch {
    async fn next_event(&mut self) -> Option<Value> {
        let mut line = String::new();
        match tokio::time::timeout(Duration::from_secs(10), self.reader.read_line(&mut line)).await
        {
            Ok(Ok(0)) | Err(_) => None,
            Ok(Ok(_)) => Some(serde_json::from_str(line.trim()).unwrap()),
            Ok(Err(err)) => panic!("watch read failed: {err}"),
        }
    }

    /// The next event that is not a bookmark.
    async fn next_change(&mut self) -> Option<Value> {
        loop {
            let event = self.next_event().await?;
            if event["type"] != "BOOKMARK" {
                return Some(event);
            }
        }
    }
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

const CMS: &str = "/api/v1/namespaces/default/configmaps";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_revision_delivers_exactly_the_later_changes_in_order() {
    let server = Server::start().await;
    let (code, first) = server
        .call("POST", CMS, Some(configmap("a", json!({}))))
        .await;
    assert_eq!(code, 201);
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .call("POST", CMS, Some(configmap("b", json!({}))))
        .await;
    server.call("DELETE", &format!("{CMS}/a"), None).await;
    let mut watch = server
        .watch(&format!("{CMS}?watch=1&resourceVersion={rv}"))
        .await;
    let added = watch.next_change().await.unwrap();
    assert_eq!(
        (
            added["type"].as_str(),
            added["object"]["metadata"]["name"].as_str()
        ),
        (Some("ADDED"), Some("b"))
    );
    let deleted = watch.next_change().await.unwrap();
    assert_eq!(
        (
            deleted["type"].as_str(),
            deleted["object"]["metadata"]["name"].as_str()
        ),
        (Some("DELETED"), Some("a"))
    );
    assert_eq!(deleted["object"]["kind"], "ConfigMap");
    let added_rv: u64 = added["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let deleted_rv: u64 = deleted["object"]["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        added_rv > rv.parse().unwrap() && deleted_rv > added_rv,
        "revisions move forward"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_older_than_the_window_gets_a_410_error_event() {
    let server = Server::start().await;
    let (_, first) = server
        .call("POST", CMS, Some(configmap("old", json!({}))))
        .await;
    let rv = first["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    // The test config keeps 200 changes per resource.
    for i in 0..260 {
        let body = format!(r#"{{"data":{{"i":"{i}"}}}}"#);
        let (code, _) = server
            .raw(
                "PATCH",
                &format!("{CMS}/old"),
                "application/merge-patch+json",
                body.as_bytes(),
            )
            .await;
        assert_eq!(code, 200);
    }
    let mut watch = server
        .watch(&format!("{CMS}?watch=1&resourceVersion={rv}"))
        .await;
    let event = watch.next_event().await.unwrap();
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
    assert!(event["object"]["message"]
        .as_str()
        .unwrap()
        .starts_with("too old resource version"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_initial_events_ends_with_an_annotated_bookmark_and_bookmarks_keep_coming() {
    let server = Server::start().await;
    for name in ["x", "y"] {
        server
            .call("POST", CMS, Some(configmap(name, json!({}))))
            .await;
    }
    let mut watch = server
        .watch(&format!("{CMS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"))
        .await;
    let mut names = Vec::new();
    loop {
        let event = watch.next_event().await.unwrap();
        if event["type"] == "BOOKMARK" {
            assert_eq!(
                event["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
                "true"
            );
            break;
        }
        assert_eq!(event["type"], "ADDED");
        names.push(
            event["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(names, vec!["x", "y"]);
    // The test config sends a bookmark about every second.
    let bookmark = watch.next_event().await.unwrap();
    assert_eq!(bookmark["type"], "BOOKMARK");
    assert_eq!(bookmark["object"]["kind"], "ConfigMap");
    // Without allowWatchBookmarks, sendInitialEvents is refused like upstream.
    let (code, status) = server
        .call(
            "GET",
            &format!("{CMS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"),
            None,
        )
        .await;
    assert_eq!(code, 400, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_leaving_a_label_selector_is_seen_as_deleted() {
    let server = Server::start().await;
    server
        .call("POST", CMS, Some(configmap("sel", json!({"app": "web"}))))
        .await;
    let mut watch = server
        .watch(&format!("{CMS}?watch=1&labelSelector=app%3Dweb"))
        .await;
    let first = watch.next_change().await.unwrap();
    assert_eq!(first["type"], "ADDED");
    let (code, _) = server
        .raw(
            "PATCH",
            &format!("{CMS}/sel"),
            "application/merge-patch+json",
            br#"{"metadata":{"labels":{"app":"db"}}}"#,
        )
        .await;
    assert_eq!(code, 200);
    let left = watch.next_change().await.unwrap();
    assert_eq!(left["type"], "DELETED");
    server
        .raw(
            "PATCH",
            &format!("{CMS}/sel"),
            "application/merge-patch+json",
            br#"{"metadata":{"labels":{"app":"web"}}}"#,
        )
        .await;
    let back = watch.next_change().await.unwrap();
    assert_eq!(back["type"], "ADDED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_from_the_cache_and_from_storage_agree_and_pages_cover_everything_once() {
    let server = Server::start().await;
    for i in 0..25 {
        server
            .call("POST", CMS, Some(configmap(&format!("p{i:02}"), json!({}))))
            .await;
    }
    let (_, consistent) = server.call("GET", CMS, None).await;
    let (_, cached) = server
        .call("GET", &format!("{CMS}?resourceVersion=0"), None)
        .await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names(&consistent), names(&cached));
    assert_eq!(names(&consistent).len(), 25);
    assert_eq!(consistent["kind"], "ConfigMapList");
    assert!(
        consistent["items"][0].get("kind").is_none(),
        "list items carry no kind, as upstream"
    );
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let path = if token.is_empty() {
            format!("{CMS}?limit=10")
        } else {
            format!("{CMS}?limit=10&continue={token}")
        };
        let (code, page) = server.call("GET", &path, None).await;
        assert_eq!(code, 200);
        seen.extend(names(&page));
        // A write between pages does not show up in the snapshot.
        server
            .call(
                "POST",
                CMS,
                Some(configmap(&format!("late{}", seen.len()), json!({}))),
            )
            .await;
        match page["metadata"]["continue"].as_str() {
            Some(next) => token = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, names(&consistent));
    let (code, status) = server
        .call("GET", &format!("{CMS}?limit=10&continue=garbage"), None)
        .await;
    assert_eq!(code, 400, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_pages_come_from_the_cache_and_a_delete_mid_list_keeps_the_snapshot() {
    let server = Server::start().await;
    for i in 0..25 {
        server
            .call(
                "POST",
                CMS,
                Some(configmap(&format!("q{i:02}"), json!({"app": "x"}))),
            )
            .await;
    }
    let page = |list: &Value| -> (Vec<String>, Option<String>, Option<i64>) {
        (
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
                .collect(),
            list["metadata"]["continue"].as_str().map(str::to_string),
            list["metadata"]["remainingItemCount"].as_i64(),
        )
    };
    let (_, first) = server.call("GET", &format!("{CMS}?limit=10"), None).await;
    let (names1, token1, left1) = page(&first);
    assert_eq!(names1.len(), 10);
    assert_eq!(left1, Some(15));
    let (_, second) = server
        .call(
            "GET",
            &format!("{CMS}?limit=10&continue={}", token1.unwrap()),
            None,
        )
        .await;
    let (names2, token2, left2) = page(&second);
    assert_eq!(names2.first().map(String::as_str), Some("q10"));
    assert_eq!(left2, Some(5));
    assert_eq!(
        second["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    // Deleting an object of the last page after the list began: the list still shows the
    // snapshot of its first page (storage answers, the cache has moved on).
    let (code, _) = server.call("DELETE", &format!("{CMS}/q24"), None).await;
    assert_eq!(code, 200);
    let (_, third) = server
        .call(
            "GET",
            &format!("{CMS}?limit=10&continue={}", token2.unwrap()),
            None,
        )
        .await;
    let (names3, token3, left3) = page(&third);
    assert_eq!(names3.len(), 5);
    assert_eq!(names3.last().map(String::as_str), Some("q24"));
    assert_eq!((token3, left3), (None, None));
    // A filtered paged list reports no remainingItemCount, as upstream.
    let (_, filtered) = server
        .call("GET", &format!("{CMS}?limit=5&labelSelector=app%3Dx"), None)
        .await;
    let (names, token, left) = page(&filtered);
    assert_eq!(names.len(), 5);
    assert!(token.is_some());
    assert_eq!(left, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_optimistic_and_no_op_writes_keep_the_resource_version() {
    let server = Server::start().await;
    let (_, created) = server
        .call("POST", CMS, Some(configmap("occ", json!({}))))
        .await;
    let mut stale = created.clone();
    let (code, updated) = server
        .call(
            "PUT",
            &format!("{CMS}/occ"),
            Some({
                let mut v = created.clone();
                v["data"]["k"] = json!("v2");
                v
            }),
        )
        .await;
    assert_eq!(code, 200);
    stale["data"]["k"] = json!("v3");
    let (code, conflict) = server.call("PUT", &format!("{CMS}/occ"), Some(stale)).await;
    assert_eq!(code, 409);
    assert_eq!(conflict["reason"], "Conflict");
    let (code, same) = server
        .call("PUT", &format!("{CMS}/occ"), Some(updated.clone()))
        .await;
    assert_eq!(code, 200);
    assert_eq!(
        same["metadata"]["resourceVersion"], updated["metadata"]["resourceVersion"],
        "a no-op write is not a write"
    );
}

/// A CA and a client certificate signed by it, written as PEM files.
fn client_pki(
    dir: &std::path::Path,
    prefix: &str,
    cn: &str,
    org: &str,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("{prefix}-ca"));
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params
        .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let paths = (
        dir.join(format!("{prefix}-ca.crt")),
        dir.join(format!("{prefix}.crt")),
        dir.join(format!("{prefix}.key")),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    paths
}

async fn curl(args: &[&str]) -> (bool, Value) {
    let out = tokio::process::Command::new("curl")
        .args(["-sS"])
        .args(args)
        .output()
        .await
        .unwrap();
    if !out.status.success() {
        eprintln!("curl: {}", String::from_utf8_lossy(&out.stderr));
    }
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_generated_certificate_and_client_certificate_users() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = client_pki(dir.path(), "admin", "kube-admin", "system:masters");
    let (_, foreign_cert, foreign_key) =
        client_pki(dir.path(), "foreign", "mallory", "system:masters");
    let mut config = apiserver::Config::for_tests(dir.path().join("data"));
    config.insecure_listen = None;
    config.secure_listen = Some("127.0.0.1:0".parse().unwrap());
    config.cert_dir = dir.path().join("certs");
    config.client_ca_file = Some(ca);
    config.authorization_mode = vec!["AlwaysDeny".into()];
    let running = apiserver::start(config).await.unwrap();
    let port = running.secure_addr.unwrap().port();
    assert!(
        running.insecure_addr.is_none(),
        "the insecure port stays off unless asked for"
    );
    let serving = dir.path().join("certs/apiserver.crt");
    assert!(serving.exists() && dir.path().join("certs/apiserver.key").exists());
    let serving = serving.to_str().unwrap().to_string();
    let url = |path: &str| format!("https://127.0.0.1:{port}{path}");
    // The serving certificate verifies for 127.0.0.1, over HTTP/2 (ALPN) and HTTP/1.1; a
    // system:masters client certificate passes even an AlwaysDeny authorizer, as upstream.
    for version in ["--http2", "--http1.1"] {
        let (ok, body) = curl(&[
            version,
            "--fail",
            "--cacert",
            &serving,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            &url("/api/v1/namespaces"),
        ])
        .await;
        assert!(ok, "{body}");
        assert_eq!(body["kind"], "NamespaceList");
    }
    // No credentials, anonymous access off: 401 with an upstream Status.
    let (_, body) = curl(&["--cacert", &serving, &url("/api/v1/namespaces")]).await;
    assert_eq!(
        (body["code"].as_i64(), body["reason"].as_str()),
        (Some(401), Some("Unauthorized"))
    );
    let (_, body) = curl(&["--cacert", &serving, &url("/version")]).await;
    assert_eq!(body["code"], 401);
    // A certificate from another CA is refused the same way, not at the TLS layer.
    let (_, body) = curl(&[
        "--cacert",
        &serving,
        "--cert",
        foreign_cert.to_str().unwrap(),
        "--key",
        foreign_key.to_str().unwrap(),
        &url("/api/v1/namespaces"),
    ])
    .await;
    assert_eq!(body["code"], 401);
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_inflight_limit_get_429_and_slow_clients_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = apiserver::Config::for_tests(dir.path());
    config.max_mutating_requests_inflight = 1;
    let running = apiserver::start(config).await.unwrap();
    let addr = running.insecure_addr.unwrap();
    // One create holds the only mutating slot: its body never comes.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(format!("POST {CMS} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n").as_bytes())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server = Server {
        running: None,
        addr,
        _dir: tempfile::tempdir().unwrap(),
    };
    let (code, status) = server
        .call("POST", CMS, Some(configmap("second", json!({}))))
        .await;
    assert_eq!(code, 429, "{status}");
    assert_eq!(status["reason"], "TooManyRequests");
    // Reads are limited separately and still go through.
    let (code, _) = server.call("GET", CMS, None).await;
    assert_eq!(code, 200);
    drop(slow);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, _) = server
        .call("POST", CMS, Some(configmap("third", json!({}))))
        .await;
    assert_eq!(
        code, 201,
        "the slot is free again once the slow client is gone"
    );
    // A client that never finishes its headers is disconnected after the header timeout.
    let mut loris = TcpStream::connect(addr).await.unwrap();
    loris
        .write_all(b"GET /api HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), loris.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the server closed the connection of a client stuck in its headers"
    );
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_security_enforces_the_namespace_level() {
    let server = Server::start().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "strict", "labels": {"pod-security.kubernetes.io/enforce": "baseline"}}});
    assert_eq!(
        server.call("POST", "/api/v1/namespaces", Some(ns)).await.0,
        201
    );
    let pod = |name: &str, privileged: bool| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": privileged}}]}})
    };
    // The cache may lag the namespace by a moment.
    let mut answer = (0, Value::Null);
    for _ in 0..50 {
        answer = server
            .call(
                "POST",
                "/api/v1/namespaces/strict/pods",
                Some(pod("bad", true)),
            )
            .await;
        if answer.0 == 403 {
            break;
        }
        server
            .call("DELETE", "/api/v1/namespaces/strict/pods/bad", None)
            .await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, status) = answer;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"bad\" is forbidden: violates PodSecurity \"baseline:latest\": privileged (container \"c\" must not set securityContext.privileged=true)"
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/api/v1/namespaces/strict/pods",
                Some(pod("good", false))
            )
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/api/v1/namespaces/default/pods",
                Some(pod("anything", true))
            )
            .await
            .0,
        201,
        "unlabelled namespaces are privileged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_records_who_did_what() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: None\n  nonResourceURLs: [\"/readyz*\", \"/healthz*\"]\n- level: RequestResponse\n  resources: [{group: \"\", resources: [configmaps]}]\n  verbs: [create]\n- level: Metadata\n",
    )
    .unwrap();
    let log = dir.path().join("audit.log");
    let mut config = apiserver::Config::for_tests(dir.path().join("data"));
    config.audit.policy_file = Some(policy);
    config.audit.log_path = Some(log.clone());
    let running = apiserver::start(config).await.unwrap();
    let server = Server {
        running: None,
        addr: running.insecure_addr.unwrap(),
        _dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(
        server
            .call("POST", CMS, Some(configmap("audited", json!({}))))
            .await
            .0,
        201
    );
    assert_eq!(server.call("GET", "/readyz", None).await.0, 200);
    running.shutdown().await;
    let text = std::fs::read_to_string(&log).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let create = events
        .iter()
        .find(|e| e["verb"] == "create")
        .unwrap_or_else(|| panic!("no create event in {text}"));
    assert_eq!(create["kind"], "Event");
    assert_eq!(create["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(create["level"], "RequestResponse");
    assert_eq!(create["requestObject"]["metadata"]["name"], "audited");
    assert_eq!(create["responseObject"]["metadata"]["name"], "audited");
    assert!(
        create["responseObject"]["metadata"]["uid"].is_string(),
        "the stored object, as answered"
    );
    assert_eq!(create["stage"], "ResponseComplete");
    assert_eq!(create["user"]["username"], "system:admin");
    assert_eq!(create["objectRef"]["resource"], "configmaps");
    assert_eq!(create["objectRef"]["namespace"], "default");
    assert_eq!(create["responseStatus"]["code"], 201);
    assert!(
        events.iter().all(|e| e["stage"] != "RequestReceived"),
        "omitted stage"
    );
    assert!(!text.contains("/readyz"), "level None is not logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_fill_defaults_and_quotas_refuse_what_exceeds_them() {
    let server = Server::start().await;
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "q"}});
    assert_eq!(
        server.call("POST", "/api/v1/namespaces", Some(ns)).await.0,
        201
    );
    let range = json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "lr"},
        "spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}, "defaultRequest": {"cpu": "100m"}, "max": {"cpu": "1"}}]}});
    assert_eq!(
        server
            .call("POST", "/api/v1/namespaces/q/limitranges", Some(range))
            .await
            .0,
        201
    );
    let quota = json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "compute"},
        "spec": {"hard": {"pods": "2", "requests.cpu": "250m"}}});
    assert_eq!(
        server
            .call("POST", "/api/v1/namespaces/q/resourcequotas", Some(quota))
            .await
            .0,
        201
    );
    let pod = |name: &str, limit: Option<&str>| {
        let mut c = json!({"name": "c", "image": "busybox"});
        if let Some(limit) = limit {
            c["resources"] = json!({"limits": {"cpu": limit}});
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [c]}})
    };
    // Give the caches a moment to see the LimitRange and the quota.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, too_big) = server
        .call(
            "POST",
            "/api/v1/namespaces/q/pods",
            Some(pod("big", Some("2"))),
        )
        .await;
    assert_eq!(code, 403, "{too_big}");
    assert_eq!(
        too_big["message"],
        "pods \"big\" is forbidden: maximum cpu usage per Container is 1, but limit is 2"
    );
    let (code, a) = server
        .call("POST", "/api/v1/namespaces/q/pods", Some(pod("a", None)))
        .await;
    assert_eq!(code, 201, "{a}");
    assert_eq!(
        a["spec"]["containers"][0]["resources"],
        json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "100m"}})
    );
    assert_eq!(
        server
            .call("POST", "/api/v1/namespaces/q/pods", Some(pod("b", None)))
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, over) = server
        .call("POST", "/api/v1/namespaces/q/pods", Some(pod("c", None)))
        .await;
    assert_eq!(code, 403, "{over}");
    assert_eq!(
        over["message"],
        "pods \"c\" is forbidden: exceeded quota: compute, requested: pods=1,requests.cpu=100m, used: pods=2,requests.cpu=200m, limited: pods=2,requests.cpu=250m"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_get_their_service_account_token_and_claims_the_default_storage_class() {
    let server = Server::start().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    let (code, created) = server
        .call("POST", "/api/v1/namespaces/default/pods", Some(pod))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    let volume = &created["spec"]["volumes"][0];
    assert!(volume["name"]
        .as_str()
        .unwrap()
        .starts_with("kube-api-access-"));
    assert_eq!(
        volume["projected"]["sources"][0]["serviceAccountToken"]["path"],
        "token"
    );
    let mount = &created["spec"]["containers"][0]["volumeMounts"][0];
    assert_eq!(
        mount["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );
    assert_eq!(mount["name"], volume["name"]);
    let opted_out = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
        "spec": {"automountServiceAccountToken": false, "containers": [{"name": "c", "image": "busybox"}]}});
    let (_, created) = server
        .call("POST", "/api/v1/namespaces/default/pods", Some(opted_out))
        .await;
    assert!(created["spec"].get("volumes").is_none());

    let class = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "fast", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "example.com/fast"});
    assert_eq!(
        server
            .call(
                "POST",
                "/apis/storage.k8s.io/v1/storageclasses",
                Some(class)
            )
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let (code, created) = server
        .call(
            "POST",
            "/api/v1/namespaces/default/persistentvolumeclaims",
            Some(pvc),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["spec"]["storageClassName"], "fast");
    assert_eq!(
        created["metadata"]["finalizers"],
        json!(["kubernetes.io/pvc-protection"])
    );
}

/// A real HTTPS admission webhook for the test: denies objects named `denied`, labels objects
/// named `mutated` with a JSON patch, allows the rest. Returns its port and CA bundle (base64).
async fn webhook_server() -> (u16, String) {
    use base64::Engine;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "hook.default.svc".to_string(),
    ])
    .unwrap();
    let cert = params
        .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                    use http_body_util::BodyExt;
                    let path = req.uri().path().to_string();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let review: Value = serde_json::from_slice(&body).unwrap();
                    let uid = review["request"]["uid"].clone();
                    let name = review["request"]["object"]["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    let mut response = json!({"uid": uid, "allowed": true});
                    let object = &review["request"]["object"];
                    // /observe: records whether the object has the label /label adds;
                    // /label: adds it (both replace the whole map, enough for the test).
                    let patch = match path.as_str() {
                        "/observe" => {
                            let seen = object["metadata"]["labels"]["added"].is_string();
                            Some(
                                json!([{"op": "add", "path": "/metadata/annotations", "value": {"saw-label": seen.to_string()}}]),
                            )
                        }
                        "/label" => Some(
                            json!([{"op": "add", "path": "/metadata/labels", "value": {"added": "yes"}}]),
                        ),
                        _ => None,
                    };
                    if let Some(patch) = patch {
                        response["patchType"] = json!("JSONPatch");
                        response["patch"] = json!(
                            base64::engine::general_purpose::STANDARD.encode(patch.to_string())
                        );
                    } else if name == "denied" {
                        response = json!({"uid": uid, "allowed": false, "status": {"code": 403, "message": "names like this are not welcome"}});
                    } else if name == "mutated" {
                        let patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"touched-by": "webhook"}}]);
                        response["patchType"] = json!("JSONPatch");
                        response["patch"] = json!(
                            base64::engine::general_purpose::STANDARD.encode(patch.to_string())
                        );
                    }
                    let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response});
                    Ok::<_, std::convert::Infallible>(http::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(answer.to_string())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (
        port,
        base64::engine::general_purpose::STANDARD.encode(ca.pem()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_named_by_a_service_are_reached_through_its_endpoints() {
    let server = Server::start_with(|c| c.enable_aggregator_routing = true).await;
    let (port, ca_bundle) = webhook_server().await;
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hook"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]}});
    let endpoints = json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "hook"},
        "subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": port}]}]});
    assert_eq!(
        server
            .call("POST", "/api/v1/namespaces/default/services", Some(service))
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .call(
                "POST",
                "/api/v1/namespaces/default/endpoints",
                Some(endpoints)
            )
            .await
            .0,
        201
    );
    let config = |name: &str, service_name: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": format!("{name}.example.com"),
                "clientConfig": {"service": {"namespace": "default", "name": service_name, "path": "/review", "port": 443}, "caBundle": ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
                "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 2}]})
    };
    let base = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    assert_eq!(
        server
            .call("POST", base, Some(config("via-service", "hook")))
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The certificate names hook.default.svc: TLS to the endpoint checks that name.
    let (code, created) = server
        .call("POST", CMS, Some(configmap("mutated", json!({}))))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["labels"]["touched-by"], "webhook");

    // A webhook whose Service does not exist fails closed, naming what it tried.
    assert_eq!(
        server
            .call("POST", base, Some(config("zz-missing", "nosuch")))
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, status) = server
        .call("POST", CMS, Some(configmap("other", json!({}))))
        .await;
    assert_eq!(code, 500, "{status}");
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.contains("https://nosuch.default.svc:443/review")
            && message.contains("service \"nosuch\" not found"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_called_only_when_their_match_conditions_hold() {
    let server = Server::start().await;
    let (port, ca_bundle) = webhook_server().await;
    let config = |name: &str, expression: &str, policy: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": format!("{name}.example.com"),
                "clientConfig": {"url": format!("https://127.0.0.1:{port}/review"), "caBundle": ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
                "matchConditions": [{"name": "cond", "expression": expression}],
                "failurePolicy": policy, "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 2}]})
    };
    let base = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    let hooked = "has(object.metadata.labels) && has(object.metadata.labels.mode) && object.metadata.labels.mode == 'hook' && request.operation == 'CREATE'";
    assert_eq!(
        server
            .call("POST", base, Some(config("a-cond", hooked, "Fail")))
            .await
            .0,
        201
    );
    // An expression that cannot be evaluated on configMaps without spec: ignored here.
    assert_eq!(
        server
            .call(
                "POST",
                base,
                Some(config("b-broken", "object.spec.x == 1", "Ignore"))
            )
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, created) = server
        .call(
            "POST",
            CMS,
            Some(configmap("mutated", json!({"mode": "plain"}))),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert!(
        created["metadata"]["labels"]["touched-by"].is_null(),
        "condition false: not called: {created}"
    );
    let ns2 = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}});
    assert_eq!(
        server.call("POST", "/api/v1/namespaces", Some(ns2)).await.0,
        201
    );
    let (code, created) = server
        .call(
            "POST",
            "/api/v1/namespaces/other/configmaps",
            Some(configmap("mutated", json!({"mode": "hook"}))),
        )
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["labels"]["touched-by"], "webhook");

    // The same broken expression with failurePolicy Fail refuses the request.
    assert_eq!(
        server
            .call(
                "POST",
                base,
                Some(config("c-broken", "object.spec.x == 1", "Fail"))
            )
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, status) = server
        .call("POST", CMS, Some(configmap("third", json!({}))))
        .await;
    assert_eq!(code, 500, "{status}");
    let message = status["message"].as_str().unwrap_or("");
    assert!(
        message.contains("failed calling webhook \"c-broken.example.com\": failed to evaluate matchCondition \"cond\""),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_webhooks_are_reinvoked_if_needed() {
    let server = Server::start().await;
    let (port, ca_bundle) = webhook_server().await;
    let config = |name: &str, path: &str, resource: &str, policy: &str| {
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": format!("{name}.example.com"),
                "clientConfig": {"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": ca_bundle},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": [resource]}],
                "failurePolicy": "Fail", "sideEffects": "None", "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2, "reinvocationPolicy": policy}]})
    };
    // Configurations run in name order: the observer before the labeler. On configMaps the
    // observer asks to be called again if needed; on secrets it does not.
    let base = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations";
    for body in [
        config("a-observe-cm", "/observe", "configmaps", "IfNeeded"),
        config("a-observe-secret", "/observe", "secrets", "Never"),
        config("b-label", "/label", "configmaps", "Never"),
        config("b-label-secret", "/label", "secrets", "Never"),
    ] {
        assert_eq!(server.call("POST", base, Some(body)).await.0, 201);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, created) = server
        .call("POST", CMS, Some(configmap("observed", json!({}))))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["labels"]["added"], "yes");
    assert_eq!(
        created["metadata"]["annotations"]["saw-label"], "true",
        "the observer ran again after the labeler: {created}"
    );
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "observed"}});
    let (code, created) = server
        .call("POST", "/api/v1/namespaces/default/secrets", Some(secret))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["labels"]["added"], "yes");
    assert_eq!(
        created["metadata"]["annotations"]["saw-label"], "false",
        "reinvocationPolicy Never: called once: {created}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_webhooks_deny_mutate_and_follow_their_failure_policy() {
    let server = Server::start().await;
    let (port, ca_bundle) = webhook_server().await;
    let hook = |name: &str, url: String, policy: &str| {
        json!({"name": name, "clientConfig": {"url": url, "caBundle": ca_bundle},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["configmaps"]}],
            "failurePolicy": policy, "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 2})
    };
    let url = format!("https://127.0.0.1:{port}/review");
    let validating = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "policy"}, "webhooks": [hook("deny.example.com", url.clone(), "Fail")]});
    let mutating = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": "labeler"}, "webhooks": [hook("label.example.com", url.clone(), "Fail")]});
    let base = "/apis/admissionregistration.k8s.io/v1";
    assert_eq!(
        server
            .call(
                "POST",
                &format!("{base}/validatingwebhookconfigurations"),
                Some(validating)
            )
            .await
            .0,
        201
    );
    assert_eq!(
        server
            .call(
                "POST",
                &format!("{base}/mutatingwebhookconfigurations"),
                Some(mutating)
            )
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (code, status) = server
        .call("POST", CMS, Some(configmap("denied", json!({}))))
        .await;
    assert_eq!(code, 403, "{status}");
    // Mutating webhooks run first, and this server denies from either.
    assert_eq!(status["message"], "admission webhook \"label.example.com\" denied the request: names like this are not welcome");
    let (code, created) = server
        .call("POST", CMS, Some(configmap("mutated", json!({}))))
        .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["metadata"]["labels"]["touched-by"], "webhook");
    assert_eq!(
        server
            .call("POST", CMS, Some(configmap("plain", json!({}))))
            .await
            .0,
        201
    );

    // A webhook that cannot be reached refuses requests with failurePolicy Fail...
    let dead = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "zz-dead"}, "webhooks": [hook("dead.example.com", "https://127.0.0.1:1/review".into(), "Fail")]});
    assert_eq!(
        server
            .call(
                "POST",
                &format!("{base}/validatingwebhookconfigurations"),
                Some(dead)
            )
            .await
            .0,
        201
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (code, status) = server
        .call("POST", CMS, Some(configmap("blocked", json!({}))))
        .await;
    assert_eq!(code, 500, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("failed calling webhook \"dead.example.com\""),
        "{status}"
    );
    // ...and lets them through with Ignore.
    let (code, _) = server
        .raw(
            "PATCH",
            &format!("{base}/validatingwebhookconfigurations/zz-dead"),
            "application/json-patch+json",
            br#"[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]"#,
        )
        .await;
    assert_eq!(code, 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        server
            .call("POST", CMS, Some(configmap("let-through", json!({}))))
            .await
            .0,
        201
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_tolerations_and_node_taints_are_defaulted() {
    let server = Server::start().await;
    let pod = |name: &str, class: Option<&str>| {
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        if let Some(class) = class {
            spec["priorityClassName"] = json!(class);
        }
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})
    };
    let (code, plain) = server
        .call(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("plain", None)),
        )
        .await;
    assert_eq!(code, 201, "{plain}");
    assert_eq!(plain["spec"]["priority"], 0);
    assert_eq!(plain["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let tolerations = plain["spec"]["tolerations"].as_array().unwrap();
    assert!(tolerations.contains(&json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})));
    assert!(tolerations.contains(&json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})));
    let (code, critical) = server
        .call(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("critical", Some("system-node-critical"))),
        )
        .await;
    assert_eq!(code, 201, "{critical}");
    assert_eq!(critical["spec"]["priority"], 2_000_001_000i64);
    let (code, status) = server
        .call(
            "POST",
            "/api/v1/namespaces/default/pods",
            Some(pod("lost", Some("no-such-class"))),
        )
        .await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "pods \"lost\" is forbidden: no PriorityClass with name no-such-class was found"
    );
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    let (code, node) = server.call("POST", "/api/v1/nodes", Some(node)).await;
    assert_eq!(code, 201, "{node}");
    assert_eq!(
        node["spec"]["taints"],
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_and_the_server_stays_healthy() {
    let dir = tempfile::tempdir().unwrap();
    // An expired client certificate from the trusted CA.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "old-admin");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:masters");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let expired = params
        .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("old.crt"), expired.pem()).unwrap();
    std::fs::write(dir.path().join("old.key"), key.serialize_pem()).unwrap();

    let mut config = apiserver::Config::for_tests(dir.path().join("data"));
    config.secure_listen = Some("127.0.0.1:0".parse().unwrap());
    config.cert_dir = dir.path().join("certs");
    config.client_ca_file = Some(dir.path().join("ca.crt"));
    let running = apiserver::start(config).await.unwrap();
    let port = running.secure_addr.unwrap().port();
    let server = Server {
        running: None,
        addr: running.insecure_addr.unwrap(),
        _dir: tempfile::tempdir().unwrap(),
    };
    let serving = dir.path().join("certs/apiserver.crt");
    let serving = serving.to_str().unwrap();

    // An expired certificate is a 401 Status, not a TLS failure.
    let (_, body) = curl(&[
        "--cacert",
        serving,
        "--cert",
        dir.path().join("old.crt").to_str().unwrap(),
        "--key",
        dir.path().join("old.key").to_str().unwrap(),
        &format!("https://127.0.0.1:{port}/api/v1/namespaces"),
    ])
    .await;
    assert_eq!(body["code"], 401, "{body}");
    // A garbage bearer token likewise.
    let (_, body) = curl(&[
        "--cacert",
        serving,
        "-H",
        "Authorization: Bearer garbage.token.here",
        &format!("https://127.0.0.1:{port}/api"),
    ])
    .await;
    assert_eq!(body["code"], 401, "{body}");

    // Path traversal in names: `..` is never a name, and escaped slashes stay inside the name.
    let (code, _) = server.call("GET", &format!("{CMS}/.."), None).await;
    assert!(code == 404 || code == 400, "{code}");
    let (code, body) = server
        .call("POST", CMS, Some(configmap("../../etc", json!({}))))
        .await;
    assert_eq!(code, 422, "{body}");
    let (code, _) = server
        .call("GET", &format!("{CMS}/%2e%2e%2fsecrets"), None)
        .await;
    assert_eq!(code, 404);

    // Oversized headers are refused by the HTTP layer.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let huge = "x".repeat(1 << 20);
    let _ = stream
        .write_all(format!("GET /api HTTP/1.1\r\nHost: t\r\nX-Big: {huge}\r\n\r\n").as_bytes())
        .await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 431"),
        "{text}"
    );

    // Through all of it, the server stays ready.
    let (code, _) = server.raw("GET", "/readyz", "application/json", b"").await;
    assert_eq!(code, 200);
    running.shutdown().await;
}
