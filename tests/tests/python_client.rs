//! The Python `kubernetes` client (from the venv `deploy/install-deps.sh` makes) against the
//! real server: list + watch resumed from the list's resourceVersion, 410 Expired and relist
//! after the watch window (1000 events per resource) has moved on, optimistic concurrency on
//! replace, pagination with `limit`/`continue`, and validation errors with causes. The scenarios
//! live in `tests/python/client.py`, which prints what it saw as JSON.

use e2e::{backend_tests, ApiServer, Backend};
use serde_json::{json, Value};

fn run(backend: Backend, args: &[&str]) -> Value {
    let server = ApiServer::start(backend);
    server.python("client.py", args)
}

fn list_then_watch_resumes_after_the_list(backend: Backend) {
    let got = run(backend, &["list_watch_resume"]);
    assert_eq!(got["listed"], json!(["a", "b"]), "{got}");
    // Exactly the three changes made after the list, in order, and nothing from before it.
    assert_eq!(
        got["events"],
        json!([["ADDED", "c"], ["MODIFIED", "a"], ["DELETED", "b"]]),
        "{got}"
    );
}

fn watch_from_a_compacted_version_expires_and_relist_recovers(backend: Backend) {
    let got = run(backend, &["watch_expired", "1100"]);
    let expired = &got["expired"];
    assert_eq!(expired["status"], 410, "{got}");
    let reason = expired["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("Expired: too old resource version"),
        "{got}"
    );
    assert_eq!(got["relisted_hot"], json!(["1100"]), "{got}");
    assert_eq!(
        got["events_after_relist"],
        json!([["ADDED", "after"]]),
        "{got}"
    );
}

fn replace_with_a_stale_resource_version_conflicts(backend: Backend) {
    let got = run(backend, &["stale_replace"]);
    let conflict = &got["conflict"];
    assert_eq!(conflict["status"], 409, "{got}");
    assert_eq!(conflict["body"]["reason"], "Conflict", "{got}");
    assert_eq!(
        conflict["body"]["message"],
        "Operation cannot be fulfilled on configmaps \"s\": the object has been modified; \
         please apply your changes to the latest version and try again"
    );
    assert_eq!(
        conflict["body"]["details"],
        json!({"name": "s", "kind": "configmaps"})
    );
    assert_eq!(
        got["final"],
        json!({"v": "2"}),
        "the stale write went through: {got}"
    );
}

fn pagination_returns_every_item_once(backend: Backend) {
    let got = run(backend, &["paginate", "25", "7"]);
    let names: Vec<&str> = got["names"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let want: Vec<String> = (0..25).map(|n| format!("cm-{n:03}")).collect();
    assert_eq!(names, want, "{got}");
    let sizes: Vec<u64> = got["pages"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["items"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(sizes, [7, 7, 7, 4], "{got}");
    // Every page is a snapshot at the first page's resourceVersion.
    let rvs: Vec<&Value> = got["pages"]
        .as_array()
        .map(|a| a.iter().map(|p| &p["rv"]).collect())
        .unwrap_or_default();
    assert!(rvs.windows(2).all(|w| w[0] == w[1]), "{got}");
}

fn pagination_reports_remaining_item_count(backend: Backend) {
    let got = run(backend, &["paginate", "25", "7"]);
    let remaining: Vec<&Value> = got["pages"]
        .as_array()
        .map(|a| a.iter().map(|p| &p["remaining"]).collect())
        .unwrap_or_default();
    assert_eq!(
        remaining,
        [&json!(18), &json!(11), &json!(4), &Value::Null],
        "{got}"
    );
}

fn create_with_a_bad_name_is_invalid_with_causes(backend: Backend) {
    let got = run(backend, &["bad_name"]);
    let error = &got["error"];
    assert_eq!(error["status"], 422, "{got}");
    let body = &error["body"];
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(body["details"]["name"], "Bad_Name");
    assert_eq!(body["details"]["kind"], "ConfigMap");
    let cause = &body["details"]["causes"][0];
    assert_eq!(cause["field"], "metadata.name", "{got}");
    assert_eq!(cause["reason"], "FieldValueInvalid", "{got}");
    let message = cause["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"),
        "{message}"
    );
}

fn bodies_without_kind_take_it_from_the_url(backend: Backend) {
    let got = run(backend, &["without_kind"]);
    assert_eq!(got["created"], json!({"a": "b"}), "{got}");
    assert_eq!(got["replaced"], json!({"a": "c"}), "{got}");
    assert_eq!(got["kind"], "ConfigMap", "{got}");
}

backend_tests!(
    list_then_watch_resumes_after_the_list,
    watch_from_a_compacted_version_expires_and_relist_recovers,
    replace_with_a_stale_resource_version_conflicts,
    pagination_returns_every_item_once,
    pagination_reports_remaining_item_count,
    create_with_a_bad_name_is_invalid_with_causes,
    bodies_without_kind_take_it_from_the_url,
);
