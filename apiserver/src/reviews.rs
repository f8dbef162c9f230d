//! The review APIs, answered and never stored: SelfSubjectReview (`kubectl auth whoami`),
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectAccessReview (`kubectl auth
//! can-i`) and SelfSubjectRulesReview (`kubectl auth can-i --list`).

use serde_json::{json, Value};

use crate::chain::{Attributes, Chain, UserInfo};
use crate::errors::{bad_request, ApiResult};
use crate::resources::{find, Resource, NON_RESOURCE};

/// The answer to a review `body` of `resource`, asked by `user`.
pub fn answer(
    chain: &Chain,
    rbac: Option<&crate::rbac_authz::RbacAuthorizer>,
    resource: &Resource,
    user: &UserInfo,
    namespace: &str,
    body: &Value,
) -> ApiResult<Value> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let mut out = json!({
        "kind": resource.kind,
        "apiVersion": resource.group_version(),
        "metadata": {"creationTimestamp": null},
        "spec": spec,
    });
    match resource.kind {
        "SelfSubjectReview" => {
            out.as_object_mut().map(|m| m.remove("spec"));
            out["status"] = json!({"userInfo": {"username": user.name, "groups": user.groups}});
        }
        "TokenReview" => {
            let token = spec.get("token").and_then(Value::as_str).unwrap_or("");
            let mut headers = http::HeaderMap::new();
            if let Ok(value) = http::HeaderValue::from_str(&format!("Bearer {token}")) {
                headers.insert(http::header::AUTHORIZATION, value);
            }
            let credentials = crate::authn::Credentials {
                headers: &headers,
                client_certs: None,
                insecure_port: false,
            };
            let status = match (token.is_empty(), chain.authenticate(&credentials)) {
                (false, Ok(reviewed)) if reviewed.name != "system:anonymous" => json!({
                    "authenticated": true,
                    "user": {"username": reviewed.name, "groups": reviewed.groups},
                    "audiences": spec.get("audiences").cloned().unwrap_or(json!([])),
                }),
                _ => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
            };
            out["status"] = status;
        }
        "SelfSubjectAccessReview" => {
            out["status"] = access(chain, user, &spec, None)?;
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let subject = UserInfo {
                name: spec
                    .get("user")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                groups: spec
                    .get("groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(bad_request(format!(
                    "{} \"\" is invalid: spec.user: Invalid value: \"\": at least one of user or group must be specified",
                    resource.kind
                )));
            }
            let forced = (resource.kind == "LocalSubjectAccessReview").then_some(namespace);
            out["status"] = access(chain, &subject, &spec, forced)?;
        }
        "SelfSubjectRulesReview" => {
            let ns = spec.get("namespace").and_then(Value::as_str).unwrap_or("");
            let who = rbac::User {
                name: &user.name,
                groups: &user.groups,
            };
            let (resource_rules, non_resource_rules) = match rbac {
                Some(r) => r.rules_for(&who, ns),
                None => (Vec::new(), Vec::new()),
            };
            let mut status = json!({
                "resourceRules": resource_rules,
                "nonResourceRules": non_resource_rules,
                "incomplete": rbac.is_none(),
            });
            if user.groups.iter().any(|g| g == "system:masters") {
                status["resourceRules"] =
                    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]);
                status["nonResourceRules"] = json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}]);
            }
            out["status"] = status;
        }
        _ => {}
    }
    Ok(out)
}

/// `{allowed, denied?, reason?}` for the attributes in a review's spec.
fn access(
    chain: &Chain,
    user: &UserInfo,
    spec: &Value,
    forced_namespace: Option<&str>,
) -> ApiResult<Value> {
    let attributes = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let text = |f: &str| ra.get(f).and_then(Value::as_str).unwrap_or("").to_string();
        let group = text("group");
        let plural = text("resource");
        let version = if text("version").is_empty() {
            crate::resources::version_of(&group)
                .unwrap_or("v1")
                .to_string()
        } else {
            text("version")
        };
        // A resource this server does not serve is still a valid question: RBAC answers it by
        // name; the placeholder only carries the group and plural.
        let resource: &'static Resource = find(&group, &version, &plural).unwrap_or(&NON_RESOURCE);
        let verb = known_verb(&text("verb"));
        let namespace = forced_namespace
            .map(str::to_string)
            .unwrap_or_else(|| text("namespace"));
        let mut attributes = Attributes {
            verb,
            resource,
            namespace,
            name: text("name"),
            subresource: text("subresource"),
            path: None,
            field_selector: ra
                .get("fieldSelector")
                .and_then(|f| f.get("rawSelector"))
                .and_then(Value::as_str)
                .map(str::to_string),
            user: None,
        };
        if std::ptr::eq(resource, &NON_RESOURCE) {
            // Unknown resources: only system:masters (or AlwaysAllow) can be allowed.
            attributes.path = None;
        }
        attributes
    } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        let path = nra.get("path").and_then(Value::as_str).unwrap_or("");
        let verb = known_verb(nra.get("verb").and_then(Value::as_str).unwrap_or(""));
        let mut attributes = Attributes::non_resource(&http::Method::GET, path);
        attributes.verb = verb;
        attributes
    } else {
        return Err(bad_request(
            "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    Ok(match chain.decide(user, &attributes) {
        Some(true) => json!({"allowed": true}),
        Some(false) => json!({"allowed": false, "denied": true}),
        None => json!({"allowed": false}),
    })
}

/// Reviews carry any verb string; the authorizers take the known ones.
fn known_verb(verb: &str) -> &'static str {
    const VERBS: &[&str] = &[
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
        "*",
        "head",
        "post",
        "put",
        "options",
        "impersonate",
        "bind",
        "escalate",
        "use",
        "approve",
        "sign",
    ];
    VERBS.iter().copied().find(|v| *v == verb).unwrap_or("")
}
