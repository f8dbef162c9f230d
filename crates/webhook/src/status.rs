//! What a webhook's verdict becomes at the API edge: the Status of a denial (upstream's
//! `webhookerrors.ToStatusErr`), the failure policy, and the internal error of a failed call.

use crate::{Error, Response};
use apimachinery::status::{Status, STATUS_FAILURE, STATUS_SUCCESS};
use serde_json::{Map, Value};

/// The Status to answer a denied request with: the webhook's `result`, forced to a failure
/// with a code of at least 400 (403 by default), and its message prefixed with the webhook.
pub fn denial_status(webhook_name: &str, response: &Response) -> Value {
    let empty = Map::new();
    let result = response
        .status
        .as_ref()
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let text = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or("");
    let denied_by = format!(
        "admission webhook {} denied the request",
        quote(webhook_name)
    );
    let message = match (text("message"), text("reason")) {
        (m, _) if !m.is_empty() => format!("{denied_by}: {m}"),
        (_, r) if !r.is_empty() => format!("{denied_by}: {r}"),
        _ => format!("{denied_by} without explanation"),
    };
    let code = result
        .get("code")
        .and_then(Value::as_i64)
        .and_then(|c| i32::try_from(c).ok())
        .filter(|c| *c >= 400)
        .unwrap_or(403);
    let status = match text("status") {
        "" | STATUS_SUCCESS => STATUS_FAILURE,
        other => other,
    };
    let mut out = Map::new();
    out.insert("kind".into(), "Status".into());
    out.insert("apiVersion".into(), "v1".into());
    out.insert(
        "metadata".into(),
        result
            .get("metadata")
            .filter(|m| m.is_object())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    out.insert("status".into(), status.into());
    out.insert("message".into(), message.into());
    if !text("reason").is_empty() {
        out.insert("reason".into(), text("reason").into());
    }
    if let Some(details) = result.get("details").filter(|d| d.is_object()) {
        out.insert("details".into(), details.clone());
    }
    out.insert("code".into(), code.into());
    Value::Object(out)
}

/// `failurePolicy` defaults to `Fail`: only an explicit `Ignore` lets a request through when
/// the webhook cannot be called.
pub fn fails_closed(webhook: &Value) -> bool {
    webhook.get("failurePolicy").and_then(Value::as_str) != Some("Ignore")
}

/// The 500 `InternalError` a failed call under `failurePolicy: Fail` answers with.
pub fn call_error_status(webhook_name: &str, error: &Error) -> Value {
    let message = format!("failed calling webhook {}: {error}", quote(webhook_name));
    serde_json::to_value(Status::internal_error(&message)).unwrap_or(Value::Null)
}

/// Go's `%q` for the names a configuration can hold (JSON escaping agrees for them).
fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn denied(status: Option<Value>) -> Response {
        Response {
            allowed: false,
            status,
            patch: None,
            warnings: vec![],
        }
    }

    #[test]
    fn denial_statuses() {
        let cases = [
            (
                None,
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "admission webhook \"deny.example.com\" denied the request without explanation", "code": 403}),
            ),
            (
                Some(json!({"message": "pods must carry a team label"})),
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "admission webhook \"deny.example.com\" denied the request: pods must carry a team label", "code": 403}),
            ),
            (
                Some(json!({"reason": "Conflict", "code": 409, "status": "Success"})),
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "admission webhook \"deny.example.com\" denied the request: Conflict", "reason": "Conflict", "code": 409}),
            ),
            (
                Some(json!({"message": "m", "code": 200, "details": {"name": "x"}})),
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": "admission webhook \"deny.example.com\" denied the request: m", "details": {"name": "x"}, "code": 403}),
            ),
        ];
        for (result, want) in cases {
            assert_eq!(denial_status("deny.example.com", &denied(result)), want);
        }
    }

    #[test]
    fn failure_policy() {
        assert!(fails_closed(&json!({"name": "a"})));
        assert!(fails_closed(&json!({"failurePolicy": "Fail"})));
        assert!(!fails_closed(&json!({"failurePolicy": "Ignore"})));
    }

    #[test]
    fn call_error() {
        let err = Error::Timeout {
            url: "https://127.0.0.1:1/x?timeout=1s".into(),
        };
        let status = call_error_status("slow.example.com", &err);
        let msg = "failed calling webhook \"slow.example.com\": failed to call webhook: Post \"https://127.0.0.1:1/x?timeout=1s\": context deadline exceeded";
        assert_eq!(status["code"], 500);
        assert_eq!(status["reason"], "InternalError");
        assert_eq!(status["message"], format!("Internal error occurred: {msg}"));
        assert_eq!(status["details"]["causes"][0]["message"], msg);
    }
}
