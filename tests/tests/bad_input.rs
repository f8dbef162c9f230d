//! Hostile and broken requests over plain HTTP: each must get upstream's status code and a
//! `Status` body, the server must stay up, and nothing stored may change.

use e2e::{backend_tests, ApiServer, Backend, Method};
use serde_json::{json, Value};

const CM: &str = "/api/v1/namespaces/default/configmaps";
const JSON: Option<&str> = Some("application/json");
const MERGE: Option<&str> = Some("application/merge-patch+json");

struct Case {
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// The Status `reason`, when upstream answers with a Status (its 404 for an unknown
    /// path is plain text).
    reason: Option<&'static str>,
    /// A fragment the Status message must contain.
    message: Option<&'static str>,
}

fn case(
    what: &'static str,
    method: Method,
    path: &str,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    (status, reason, message): (u16, Option<&'static str>, Option<&'static str>),
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        content_type,
        body: body.into(),
        status,
        reason,
        message,
    }
}

fn cases() -> Vec<Case> {
    let big = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big"},
        "data": {"blob": "x".repeat(3 * 1024 * 1024 + 1)},
    })
    .to_string();
    let depth = 20_000;
    let nested = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"deep","annotations":{{"a":{}"x"{}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    vec![
        case(
            "malformed JSON",
            Method::Post,
            CM,
            JSON,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"#,
            (400, Some("BadRequest"), None),
        ),
        case(
            "a Secret posted to configmaps",
            Method::Post,
            CM,
            JSON,
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong-kind"}}"#,
            (400, Some("BadRequest"), None),
        ),
        case(
            "an apps/v1 ConfigMap posted to the v1 URL",
            Method::Post,
            CM,
            JSON,
            r#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"wrong-version"}}"#,
            (
                400,
                Some("BadRequest"),
                Some("does not match the expected API version"),
            ),
        ),
        case(
            "no name",
            Method::Post,
            CM,
            JSON,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
            (
                422,
                Some("Invalid"),
                Some("metadata.name: Required value: name or generateName is required"),
            ),
        ),
        case(
            "a namespace in a cluster-scoped URL",
            Method::Get,
            "/api/v1/namespaces/default/nodes",
            None,
            "",
            (404, None, None),
        ),
        case(
            "a namespace in a cluster-scoped create",
            Method::Post,
            "/api/v1/namespaces/default/nodes",
            JSON,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n"}}"#,
            (404, None, None),
        ),
        case(
            "an invalid label selector",
            Method::Get,
            &format!("{CM}?labelSelector=a%20in%20(b"),
            None,
            "",
            (400, Some("BadRequest"), None),
        ),
        case(
            "an invalid field selector",
            Method::Get,
            &format!("{CM}?fieldSelector=spec.bogus%3Dx"),
            None,
            "",
            (400, Some("BadRequest"), None),
        ),
        case(
            "an unknown field under fieldValidation=Strict",
            Method::Post,
            &format!("{CM}?fieldValidation=Strict"),
            JSON,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"bogus":1}"#,
            (
                400,
                Some("BadRequest"),
                Some(r#"strict decoding error: unknown field "bogus""#),
            ),
        ),
        case(
            "a merge patch to a missing object",
            Method::Patch,
            &format!("{CM}/missing"),
            MERGE,
            r#"{"data":{"a":"b"}}"#,
            (
                404,
                Some("NotFound"),
                Some(r#"configmaps "missing" not found"#),
            ),
        ),
        case(
            "a body over 3 MiB",
            Method::Post,
            CM,
            JSON,
            big,
            (413, Some("RequestEntityTooLarge"), None),
        ),
        case(
            "deeply nested JSON",
            Method::Post,
            CM,
            JSON,
            nested,
            (400, Some("BadRequest"), None),
        ),
        case(
            "a broken continue token",
            Method::Get,
            &format!("{CM}?limit=1&continue=not-a-token"),
            None,
            "",
            (400, Some("BadRequest"), None),
        ),
        case(
            "an unsupported patch content type",
            Method::Patch,
            &format!("{CM}/keep"),
            Some("text/plain"),
            "{}",
            (415, Some("UnsupportedMediaType"), None),
        ),
    ]
}

/// Everything stored that a bad request could have touched, with resourceVersions.
fn stored(server: &ApiServer) -> Vec<Value> {
    ["/api/v1/configmaps", "/api/v1/nodes", "/api/v1/namespaces"]
        .iter()
        .map(|path| {
            let r = server.http(Method::Get, path, None, b"");
            assert_eq!(r.status, 200, "GET {path}: {}", r.text());
            let mut list = r.json();
            // The list's own resourceVersion moves with any write anywhere; the items are
            // what must not change.
            list["items"].take()
        })
        .collect()
}

fn bad_requests_get_status_errors_and_change_nothing(backend: Backend) {
    let mut server = ApiServer::start(backend);
    let keep = server.http(
        Method::Post,
        CM,
        JSON,
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"keep"},"data":{"a":"b"}}"#,
    );
    assert_eq!(keep.status, 201, "{}", keep.text());
    let before = stored(&server);

    let mut failures = Vec::new();
    for c in cases() {
        let r = server.http(c.method, &c.path, c.content_type, &c.body);
        let body = r.json();
        let text = r.text();
        let shown = text.get(..text.len().min(400)).unwrap_or_default();
        if r.status != c.status {
            failures.push(format!(
                "{}: {:?} {} answered {} (want {}): {shown}",
                c.what, c.method, c.path, r.status, c.status
            ));
            continue;
        }
        if let Some(reason) = c.reason {
            let is_status = body["kind"] == "Status"
                && body["apiVersion"] == "v1"
                && body["status"] == "Failure"
                && body["code"] == c.status
                && body["reason"] == reason;
            if !is_status {
                failures.push(format!(
                    "{}: not a Status with reason {reason} and code {}: {shown}",
                    c.what, c.status
                ));
                continue;
            }
            if r.header("content-type") != Some("application/json") {
                failures.push(format!(
                    "{}: content-type {:?}",
                    c.what,
                    r.header("content-type")
                ));
            }
        }
        if let Some(fragment) = c.message {
            let message = body["message"].as_str().unwrap_or_default();
            if !message.contains(fragment) {
                failures.push(format!(
                    "{}: message {message:?} lacks {fragment:?}",
                    c.what
                ));
            }
        }
        server.assert_running();
    }
    server.assert_running();
    assert_eq!(
        stored(&server),
        before,
        "a rejected request changed what is stored"
    );
    let ready = server.http(Method::Get, "/readyz", None, b"");
    assert_eq!(ready.status, 200);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

backend_tests!(bad_requests_get_status_errors_and_change_nothing);
