//! The admission.k8s.io/v1 `AdmissionReview` wire shapes: the request we send (upstream's
//! `request.CreateV1AdmissionReview`) and the checks on the answer
//! (`request.VerifyAdmissionResponse`), including decoding the base64 JSONPatch.

use crate::{Error, Request, Response};
use base64::Engine;
use serde_json::{json, Map, Value};

const API_VERSION: &str = "admission.k8s.io/v1";
const KIND: &str = "AdmissionReview";

/// The `AdmissionReview` sent for `request`, with `uid` to be echoed back.
pub fn review_request(request: &Request, uid: &str) -> Value {
    let mut req = Map::new();
    req.insert("uid".into(), json!(uid));
    let kind = json!({"group": request.group, "version": request.version, "kind": request.kind});
    let resource =
        json!({"group": request.group, "version": request.version, "resource": request.resource});
    req.insert("kind".into(), kind.clone());
    req.insert("resource".into(), resource.clone());
    if !request.subresource.is_empty() {
        req.insert("subResource".into(), json!(request.subresource));
    }
    // We serve each request in the version it was made in, so the request's kind and
    // resource are the ones being admitted.
    req.insert("requestKind".into(), kind);
    req.insert("requestResource".into(), resource);
    if !request.subresource.is_empty() {
        req.insert("requestSubResource".into(), json!(request.subresource));
    }
    if !request.name.is_empty() {
        req.insert("name".into(), json!(request.name));
    }
    if !request.namespace.is_empty() {
        req.insert("namespace".into(), json!(request.namespace));
    }
    req.insert("operation".into(), json!(request.operation));
    let mut user = Map::new();
    if !request.user.is_empty() {
        user.insert("username".into(), json!(request.user));
    }
    if !request.groups.is_empty() {
        user.insert("groups".into(), json!(request.groups));
    }
    req.insert("userInfo".into(), Value::Object(user));
    // A RawExtension without an object marshals as `null`, so both keys are always present.
    req.insert(
        "object".into(),
        request.object.cloned().unwrap_or(Value::Null),
    );
    req.insert(
        "oldObject".into(),
        request.old_object.cloned().unwrap_or(Value::Null),
    );
    req.insert("dryRun".into(), json!(request.dry_run));
    req.insert("options".into(), operation_options(request));
    json!({"kind": KIND, "apiVersion": API_VERSION, "request": req})
}

/// The options object of the operation, as far as the request tells us.
fn operation_options(request: &Request) -> Value {
    let kind = match request.operation {
        "CREATE" => "CreateOptions",
        "UPDATE" => "UpdateOptions",
        "DELETE" => "DeleteOptions",
        _ => return Value::Null,
    };
    let mut options = json!({"kind": kind, "apiVersion": "meta.k8s.io/v1"});
    if request.dry_run {
        if let Some(o) = options.as_object_mut() {
            o.insert("dryRun".into(), json!(["All"]));
        }
    }
    options
}

/// Checks an `AdmissionReview` answer against the `uid` sent and extracts the response.
pub fn parse_review_response(review: &Value, uid: &str) -> Result<Response, Error> {
    let invalid = |m: String| Error::InvalidResponse(m);
    let response = match review.get("response") {
        Some(Value::Object(r)) => r,
        _ => return Err(invalid("webhook response was absent".into())),
    };
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let (api_version, kind) = (text(review, "apiVersion"), text(review, "kind"));
    if api_version != API_VERSION || kind != KIND {
        return Err(invalid(format!(
            "expected webhook response of {API_VERSION}, Kind={KIND}, got {api_version}, Kind={kind}"
        )));
    }
    let got_uid = response.get("uid").and_then(Value::as_str).unwrap_or("");
    if got_uid != uid {
        return Err(invalid(format!(
            "expected response.uid={uid:?}, got {got_uid:?}"
        )));
    }
    let patch_text = response.get("patch").and_then(Value::as_str).unwrap_or("");
    let patch_type = response
        .get("patchType")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !patch_text.is_empty() && patch_type.is_empty() {
        return Err(invalid(
            "webhook returned response.patch but not response.patchType".into(),
        ));
    }
    if !patch_type.is_empty() && patch_type != "JSONPatch" {
        return Err(invalid(format!(
            "webhook returned invalid response.patchType of {patch_type:?}"
        )));
    }
    let patch = if patch_text.is_empty() {
        None
    } else {
        Some(decode_patch(patch_text)?)
    };
    let status = response.get("status").filter(|s| s.is_object()).cloned();
    let warnings = response
        .get("warnings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect();
    Ok(Response {
        allowed: response.get("allowed").and_then(Value::as_bool) == Some(true),
        status,
        patch,
        warnings,
    })
}

/// `patch` is `[]byte` in Go, so base64 in JSON; it must hold a JSONPatch operation list.
fn decode_patch(text: &str) -> Result<Value, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| Error::InvalidResponse(format!("response.patch is not base64: {e}")))?;
    let ops: Value = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidResponse(format!("response.patch is not JSON: {e}")))?;
    let valid = ops.as_array().is_some_and(|ops| {
        ops.iter()
            .all(|op| op.get("op").and_then(Value::as_str).is_some())
    });
    if !valid {
        return Err(Error::InvalidResponse(
            "response.patch is not a list of JSONPatch operations".into(),
        ));
    }
    Ok(ops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn request_shape() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}});
        let groups = vec!["system:authenticated".to_string()];
        let request = Request {
            operation: "UPDATE",
            group: "",
            version: "v1",
            resource: "pods",
            subresource: "status",
            kind: "Pod",
            namespace: "default",
            name: "p",
            object: Some(&pod),
            old_object: None,
            user: "alice",
            groups: &groups,
            dry_run: true,
            namespace_labels: None,
            cluster_scoped: false,
        };
        let got = review_request(&request, "u-1");
        let want = json!({
            "kind": "AdmissionReview",
            "apiVersion": "admission.k8s.io/v1",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "subResource": "status",
                "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                "requestSubResource": "status",
                "name": "p",
                "namespace": "default",
                "operation": "UPDATE",
                "userInfo": {"username": "alice", "groups": ["system:authenticated"]},
                "object": pod,
                "oldObject": null,
                "dryRun": true,
                "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1", "dryRun": ["All"]},
            }
        });
        assert_eq!(got, want);
    }

    fn review(response: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
    }

    #[test]
    fn parses_answers() {
        let allowed = parse_review_response(&review(json!({"uid": "u", "allowed": true})), "u");
        assert_eq!(
            allowed.ok(),
            Some(Response {
                allowed: true,
                status: None,
                patch: None,
                warnings: vec![]
            })
        );

        let denied = review(json!({"uid": "u", "allowed": false,
            "status": {"code": 422, "message": "no"}, "warnings": ["w1", "w2"]}));
        let denied = parse_review_response(&denied, "u").ok();
        assert_eq!(
            denied,
            Some(Response {
                allowed: false,
                status: Some(json!({"code": 422, "message": "no"})),
                patch: None,
                warnings: vec!["w1".into(), "w2".into()],
            })
        );

        let ops = r#"[{"op":"add","path":"/metadata/labels/x","value":"y"}]"#;
        let patched = review(
            json!({"uid": "u", "allowed": true, "patchType": "JSONPatch", "patch": b64(ops)}),
        );
        let patched = parse_review_response(&patched, "u")
            .ok()
            .and_then(|r| r.patch);
        assert_eq!(
            patched,
            Some(json!([{"op": "add", "path": "/metadata/labels/x", "value": "y"}]))
        );
    }

    #[test]
    fn rejects_bad_answers() {
        let ok_patch = b64(r#"[{"op":"remove","path":"/a"}]"#);
        let cases = [
            (json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}), "webhook response was absent"),
            (json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "response": {"uid": "u"}}),
             "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got admission.k8s.io/v1beta1, Kind=AdmissionReview"),
            (review(json!({"uid": "other", "allowed": true})), "expected response.uid=\"u\", got \"other\""),
            (review(json!({"uid": "u", "allowed": true, "patch": ok_patch})), "webhook returned response.patch but not response.patchType"),
            (review(json!({"uid": "u", "allowed": true, "patch": ok_patch, "patchType": "Merge"})), "webhook returned invalid response.patchType of \"Merge\""),
            (review(json!({"uid": "u", "allowed": true, "patch": "!!", "patchType": "JSONPatch"})), "response.patch is not base64"),
            (review(json!({"uid": "u", "allowed": true, "patch": b64("{}"), "patchType": "JSONPatch"})), "response.patch is not a list of JSONPatch operations"),
        ];
        for (body, want) in cases {
            let err = parse_review_response(&body, "u")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                err.starts_with("received invalid webhook response: "),
                "{err}"
            );
            assert!(err.contains(want), "{err} does not contain {want}");
        }
    }

    #[test]
    fn missing_allowed_is_a_denial() {
        let r = parse_review_response(&review(json!({"uid": "u"})), "u").ok();
        assert_eq!(r.map(|r| r.allowed), Some(false));
    }
}
