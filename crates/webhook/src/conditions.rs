//! `matchConditions` (admissionregistration.k8s.io/v1): CEL expressions a request must pass,
//! all of them, before a webhook that matched by rules and selectors is called. Each sees
//! `object`, `oldObject` (null when there is none) and `request` (the AdmissionReview request
//! the webhook would get: kind, resource, operation, userInfo, ...). A false condition skips the
//! webhook; an error fails it, which its failurePolicy then judges (upstream's behaviour).
//! `authorizer` is not offered: an expression using it fails to evaluate.

use cel_interpreter::{Context, Program, Value as CelValue};
use serde_json::Value;

use crate::review::review_request;
use crate::Request;

/// What the conditions decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Every condition held (or there are none): call the webhook.
    Call,
    /// This condition was false: skip the webhook.
    Skip(String),
}

/// Evaluates `hook`'s matchConditions for `request`.
pub fn evaluate(hook: &Value, request: &Request<'_>) -> Result<Decision, String> {
    let Some(conditions) = hook
        .get("matchConditions")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    else {
        return Ok(Decision::Call);
    };
    let review = review_request(request, "");
    let mut context = Context::default();
    let variable = |value: &Value| {
        cel_interpreter::to_value(value).map_err(|e| format!("converting to CEL: {e}"))
    };
    context.add_variable_from_value("object", variable(&review["request"]["object"])?);
    context.add_variable_from_value("oldObject", variable(&review["request"]["oldObject"])?);
    context.add_variable_from_value("request", variable(&review["request"])?);
    for condition in conditions {
        let name = condition.get("name").and_then(Value::as_str).unwrap_or("");
        let expression = condition
            .get("expression")
            .and_then(Value::as_str)
            .unwrap_or("");
        let program = Program::compile(expression)
            .map_err(|e| format!("compilation failed for matchCondition {name:?}: {e}"))?;
        match program.execute(&context) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => return Ok(Decision::Skip(name.to_string())),
            Ok(other) => {
                return Err(format!(
                    "matchCondition {name:?} evaluated to {other:?}, not a bool"
                ))
            }
            Err(err) => return Err(format!("failed to evaluate matchCondition {name:?}: {err}")),
        }
    }
    Ok(Decision::Call)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request<'a>(object: &'a Value, user: &'a str, groups: &'a [String]) -> Request<'a> {
        Request {
            operation: "CREATE",
            group: "",
            version: "v1",
            resource: "configmaps",
            subresource: "",
            kind: "ConfigMap",
            namespace: "default",
            name: "c",
            object: Some(object),
            old_object: None,
            user,
            groups,
            dry_run: false,
            namespace_labels: None,
            cluster_scoped: false,
        }
    }

    fn hook(conditions: Value) -> Value {
        json!({"name": "h", "matchConditions": conditions})
    }

    #[test]
    fn all_conditions_must_hold() {
        let object = json!({"metadata": {"name": "c", "labels": {"team": "a"}}});
        let groups = vec!["system:authenticated".to_string()];
        let req = request(&object, "alice", &groups);
        assert_eq!(evaluate(&json!({"name": "h"}), &req), Ok(Decision::Call));
        let both = hook(json!([
            {"name": "labelled", "expression": "has(object.metadata.labels) && object.metadata.labels.team == 'a'"},
            {"name": "not-system", "expression": "!request.userInfo.username.startsWith('system:')"},
        ]));
        assert_eq!(evaluate(&both, &req), Ok(Decision::Call));
        let skip = hook(json!([
            {"name": "creates", "expression": "request.operation == 'CREATE'"},
            {"name": "other-team", "expression": "object.metadata.labels.team == 'b'"},
        ]));
        assert_eq!(
            evaluate(&skip, &req),
            Ok(Decision::Skip("other-team".into()))
        );
        let old = hook(json!([{"name": "no-old", "expression": "oldObject == null"}]));
        assert_eq!(evaluate(&old, &req), Ok(Decision::Call));
    }

    #[test]
    fn errors_say_which_condition() {
        let object = json!({"metadata": {"name": "c"}});
        let req = request(&object, "alice", &[]);
        let missing =
            hook(json!([{"name": "labels", "expression": "object.metadata.labels.team == 'a'"}]));
        let err = evaluate(&missing, &req).unwrap_err();
        assert!(
            err.starts_with("failed to evaluate matchCondition \"labels\""),
            "{err}"
        );
        let bad = hook(json!([{"name": "bad", "expression": "object.metadata.("}]));
        let err = evaluate(&bad, &req).unwrap_err();
        assert!(
            err.starts_with("compilation failed for matchCondition \"bad\""),
            "{err}"
        );
        let number = hook(json!([{"name": "n", "expression": "1 + 1"}]));
        assert!(evaluate(&number, &req).unwrap_err().contains("not a bool"));
    }
}
