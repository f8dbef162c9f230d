//! `metav1.Status`, the body of every failed (and some successful) API response, and its
//! constructors with the codes, reasons, messages and details of upstream's
//! `k8s.io/apimachinery/pkg/api/errors` (and the apiserver's media-type negotiation errors).
//!
//! Resources are named the way upstream's `schema.GroupResource` names them: a group (`""` for
//! the core group) and a plural resource, printed `pods` or `deployments.apps`. Kinds are named
//! the way `schema.GroupKind` prints them: `Pod` or `Deployment.apps`.

use crate::field::aggregate_message;
use crate::gofmt;

pub use crate::field::{FieldError, FieldErrorType};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// `Status.status` values.
pub const STATUS_SUCCESS: &str = "Success";
pub const STATUS_FAILURE: &str = "Failure";

/// Upstream's `metav1.StatusReason` values.
pub mod reason {
    pub const UNKNOWN: &str = "";
    pub const UNAUTHORIZED: &str = "Unauthorized";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const NOT_FOUND: &str = "NotFound";
    pub const ALREADY_EXISTS: &str = "AlreadyExists";
    pub const CONFLICT: &str = "Conflict";
    pub const GONE: &str = "Gone";
    pub const INVALID: &str = "Invalid";
    pub const SERVER_TIMEOUT: &str = "ServerTimeout";
    pub const STORE_READ_ERROR: &str = "StorageReadError";
    pub const TIMEOUT: &str = "Timeout";
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
    pub const BAD_REQUEST: &str = "BadRequest";
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    pub const NOT_ACCEPTABLE: &str = "NotAcceptable";
    pub const REQUEST_ENTITY_TOO_LARGE: &str = "RequestEntityTooLarge";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const EXPIRED: &str = "Expired";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
}

/// `metav1.ListMeta`, which `Status` embeds as `metadata` (always written, `{}` when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub self_link: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, rename = "continue", skip_serializing_if = "String::is_empty")]
    pub continue_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// `metav1.StatusCause`: one reason the request failed, often tied to a field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// A machine-readable cause (`FieldValueInvalid`, ...); upstream's `Type`, written `reason`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

impl From<&FieldError> for StatusCause {
    fn from(e: &FieldError) -> StatusCause {
        StatusCause {
            reason: e.error_type.reason().to_string(),
            message: e.error_body(),
            field: e.field.clone(),
        }
    }
}

/// `metav1.StatusDetails`. `kind` holds the plural resource for most errors (upstream puts
/// `GroupResource.Resource` there) and the kind for `Invalid`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(
        default,
        deserialize_with = "null_as_empty",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub causes: Vec<StatusCause>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_after_seconds: i32,
}

/// `metav1.Status`, serialized exactly as upstream: `kind`, `apiVersion`, `metadata` (always
/// present), then `status`, `message`, `reason`, `details`, `code`, each left out when empty.
///
/// `details` is `Some` wherever upstream sets a (possibly empty) details object, so that
/// `"details":{}` appears exactly where the Go apiserver writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default)]
    pub metadata: ListMeta,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub code: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// `schema.GroupResource.String()`: `pods`, `deployments.apps`.
fn group_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `schema.GroupKind.String()`: `Pod`, `Deployment.apps`.
fn group_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

fn resource_details(group: &str, resource: &str, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_string(),
        group: group.to_string(),
        kind: resource.to_string(),
        ..StatusDetails::default()
    }
}

impl Status {
    /// A `Failure` status with the given HTTP code, reason and message, and no details.
    pub fn generic(code: u16, reason: &str, message: impl Into<String>) -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: ListMeta::default(),
            status: STATUS_FAILURE.into(),
            message: message.into(),
            reason: reason.into(),
            details: None,
            code: i32::from(code),
        }
    }

    fn with_details(mut self, details: StatusDetails) -> Status {
        self.details = Some(details);
        self
    }

    /// `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}`; add
    /// details (e.g. the deleted object's name, kind and uid) with [`Status::details`].
    pub fn success() -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            status: STATUS_SUCCESS.into(),
            code: 200,
            ..Status::default()
        }
    }

    /// Replaces the details object.
    pub fn details(self, details: StatusDetails) -> Status {
        self.with_details(details)
    }

    /// 404 `NotFound`: `pods "x" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Status {
        let gr = group_resource(group, resource);
        Status::generic(
            404,
            reason::NOT_FOUND,
            format!("{gr} {} not found", gofmt::quote(name)),
        )
        .with_details(resource_details(group, resource, name))
    }

    /// 409 `AlreadyExists`: `pods "x" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Status {
        let gr = group_resource(group, resource);
        Status::generic(
            409,
            reason::ALREADY_EXISTS,
            format!("{gr} {} already exists", gofmt::quote(name)),
        )
        .with_details(resource_details(group, resource, name))
    }

    /// 409 `AlreadyExists` when a name generated from `generateName` collided: upstream's
    /// `NewGenerateNameConflict`.
    pub fn generate_name_conflict(
        group: &str,
        resource: &str,
        name: &str,
        retry_after_seconds: i32,
    ) -> Status {
        let gr = group_resource(group, resource);
        let mut details = resource_details(group, resource, name);
        details.retry_after_seconds = retry_after_seconds;
        Status::generic(
            409,
            reason::ALREADY_EXISTS,
            format!(
                "{gr} {} already exists, the server was not able to generate a unique name for the object",
                gofmt::quote(name)
            ),
        )
        .with_details(details)
    }

    /// 409 `Conflict`: `Operation cannot be fulfilled on pods "x": <why>`, e.g. with
    /// `the object has been modified; please apply your changes to the latest version and try again`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Status {
        let gr = group_resource(group, resource);
        Status::generic(
            409,
            reason::CONFLICT,
            format!(
                "Operation cannot be fulfilled on {gr} {}: {why}",
                gofmt::quote(name)
            ),
        )
        .with_details(resource_details(group, resource, name))
    }

    /// 422 `Invalid`: `Deployment.apps "x" is invalid: <errors>`, with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Status {
        let gk = group_kind(group, kind);
        let message = match aggregate_message(errors) {
            None => format!("{gk} {} is invalid", gofmt::quote(name)),
            Some(agg) => format!("{gk} {} is invalid: {agg}", gofmt::quote(name)),
        };
        let details = StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes: errors.iter().map(StatusCause::from).collect(),
            ..StatusDetails::default()
        };
        Status::generic(422, reason::INVALID, message).with_details(details)
    }

    /// 400 `BadRequest` with the message as given.
    pub fn bad_request(message: impl Into<String>) -> Status {
        Status::generic(400, reason::BAD_REQUEST, message)
    }

    /// 401 `Unauthorized`; an empty reason reads `not authorized`.
    pub fn unauthorized(why: &str) -> Status {
        let message = if why.is_empty() {
            "not authorized"
        } else {
            why
        };
        Status::generic(401, reason::UNAUTHORIZED, message)
    }

    /// 403 `Forbidden`: `forbidden: <why>` when no resource is named, `pods is forbidden: <why>`
    /// without a name, `pods "x" is forbidden: <why>` with one.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Status {
        let message = if group.is_empty() && resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{} is forbidden: {why}", group_resource(group, resource))
        } else {
            format!(
                "{} {} is forbidden: {why}",
                group_resource(group, resource),
                gofmt::quote(name)
            )
        };
        Status::generic(403, reason::FORBIDDEN, message)
            .with_details(resource_details(group, resource, name))
    }

    /// 405 `MethodNotAllowed`: `<action> is not supported on resources of kind "pods"`.
    pub fn method_not_supported(group: &str, resource: &str, action: &str) -> Status {
        let gr = group_resource(group, resource);
        Status::generic(
            405,
            reason::METHOD_NOT_ALLOWED,
            format!(
                "{action} is not supported on resources of kind {}",
                gofmt::quote(&gr)
            ),
        )
        .with_details(resource_details(group, resource, ""))
    }

    /// 406 `NotAcceptable` from `Accept` negotiation.
    pub fn not_acceptable<S: AsRef<str>>(accepted: &[S]) -> Status {
        let accepted: Vec<&str> = accepted.iter().map(AsRef::as_ref).collect();
        Status::generic(
            406,
            reason::NOT_ACCEPTABLE,
            format!(
                "only the following media types are accepted: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 410 `Gone` (upstream's deprecated `NewGone`); prefer [`Status::resource_expired`].
    pub fn gone(message: impl Into<String>) -> Status {
        Status::generic(410, reason::GONE, message)
    }

    /// 410 `Expired`: the requested resourceVersion has been compacted away, e.g.
    /// `too old resource version: 5 (10)`.
    pub fn resource_expired(message: impl Into<String>) -> Status {
        Status::generic(410, reason::EXPIRED, message)
    }

    /// 413 `RequestEntityTooLarge`: `Request entity too large: <message>`.
    pub fn request_entity_too_large(message: &str) -> Status {
        Status::generic(
            413,
            reason::REQUEST_ENTITY_TOO_LARGE,
            format!("Request entity too large: {message}"),
        )
    }

    /// 415 `UnsupportedMediaType` from `Content-Type` negotiation.
    pub fn unsupported_media_type<S: AsRef<str>>(accepted: &[S]) -> Status {
        let accepted: Vec<&str> = accepted.iter().map(AsRef::as_ref).collect();
        Status::generic(
            415,
            reason::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 429 `TooManyRequests` with a retry hint (upstream's `NewTooManyRequests`; the details object
    /// is written even when the hint is 0).
    pub fn too_many_requests(message: impl Into<String>, retry_after_seconds: i32) -> Status {
        Status::generic(429, reason::TOO_MANY_REQUESTS, message).with_details(StatusDetails {
            retry_after_seconds,
            ..StatusDetails::default()
        })
    }

    /// 500 `InternalError`: `Internal error occurred: <error>`, the error also as the only cause.
    pub fn internal_error(error: &str) -> Status {
        Status::generic(
            500,
            reason::INTERNAL_ERROR,
            format!("Internal error occurred: {error}"),
        )
        .with_details(StatusDetails {
            causes: vec![StatusCause {
                message: error.to_string(),
                ..StatusCause::default()
            }],
            ..StatusDetails::default()
        })
    }

    /// 500 `ServerTimeout`: `The <operation> operation against <resource> could not be completed
    /// at this time, please try again.`
    pub fn server_timeout(
        group: &str,
        resource: &str,
        operation: &str,
        retry_after_seconds: i32,
    ) -> Status {
        let gr = group_resource(group, resource);
        let mut details = resource_details(group, resource, operation);
        details.retry_after_seconds = retry_after_seconds;
        Status::generic(
            500,
            reason::SERVER_TIMEOUT,
            format!("The {operation} operation against {gr} could not be completed at this time, please try again."),
        )
        .with_details(details)
    }

    /// 503 `ServiceUnavailable` with the message as given.
    pub fn service_unavailable(message: impl Into<String>) -> Status {
        Status::generic(503, reason::SERVICE_UNAVAILABLE, message)
    }

    /// 504 `Timeout`: `Timeout: <message>`, with a retry hint.
    pub fn timeout(message: &str, retry_after_seconds: i32) -> Status {
        Status::generic(504, reason::TIMEOUT, format!("Timeout: {message}")).with_details(
            StatusDetails {
                retry_after_seconds,
                ..StatusDetails::default()
            },
        )
    }

    /// The HTTP status code to answer with: `code` when it is a valid HTTP code, else 500 (as
    /// upstream does for a status without one).
    pub fn code(&self) -> u16 {
        u16::try_from(self.code)
            .ok()
            .filter(|c| (100..=599).contains(c))
            .unwrap_or(500)
    }

    pub fn is_success(&self) -> bool {
        self.status == STATUS_SUCCESS
    }

    /// Whether the reason is `NotFound` (or, with an unknown reason, the code is 404), like
    /// upstream's `IsNotFound`; the other `is_*` follow the same rule.
    pub fn is_not_found(&self) -> bool {
        self.reason_or_code(reason::NOT_FOUND, 404)
    }

    pub fn is_already_exists(&self) -> bool {
        self.reason == reason::ALREADY_EXISTS
    }

    pub fn is_conflict(&self) -> bool {
        self.reason_or_code(reason::CONFLICT, 409)
    }

    pub fn is_invalid(&self) -> bool {
        self.reason_or_code(reason::INVALID, 422)
    }

    pub fn is_gone(&self) -> bool {
        self.reason_or_code(reason::GONE, 410)
    }

    pub fn is_resource_expired(&self) -> bool {
        self.reason == reason::EXPIRED
    }

    pub fn is_forbidden(&self) -> bool {
        self.reason_or_code(reason::FORBIDDEN, 403)
    }

    fn reason_or_code(&self, wanted: &str, code: i32) -> bool {
        self.reason == wanted || (!is_known_reason(&self.reason) && self.code == code)
    }
}

fn is_known_reason(r: &str) -> bool {
    [
        reason::UNAUTHORIZED,
        reason::FORBIDDEN,
        reason::NOT_FOUND,
        reason::ALREADY_EXISTS,
        reason::CONFLICT,
        reason::GONE,
        reason::INVALID,
        reason::SERVER_TIMEOUT,
        reason::STORE_READ_ERROR,
        reason::TIMEOUT,
        reason::TOO_MANY_REQUESTS,
        reason::BAD_REQUEST,
        reason::METHOD_NOT_ALLOWED,
        reason::NOT_ACCEPTABLE,
        reason::REQUEST_ENTITY_TOO_LARGE,
        reason::UNSUPPORTED_MEDIA_TYPE,
        reason::INTERNAL_ERROR,
        reason::EXPIRED,
        reason::SERVICE_UNAVAILABLE,
    ]
    .contains(&r)
}

/// The message, as upstream's `StatusError.Error()`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Status {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn wire(s: &Status) -> String {
        serde_json::to_string(s).unwrap()
    }

    #[test]
    fn not_found_body_is_byte_for_byte_upstream() {
        assert_eq!(
            wire(&Status::not_found("", "pods", "x")),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#
        );
    }

    #[test]
    fn constructors_match_upstream_shapes() {
        let cases: Vec<(Status, &str)> = vec![
            (
                Status::not_found("apps", "deployments", "web"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"web\" not found","reason":"NotFound","details":{"name":"web","group":"apps","kind":"deployments"},"code":404}"#,
            ),
            (
                Status::already_exists("", "namespaces", "default"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"namespaces \"default\" already exists","reason":"AlreadyExists","details":{"name":"default","kind":"namespaces"},"code":409}"#,
            ),
            (
                Status::conflict(
                    "",
                    "pods",
                    "x",
                    "the object has been modified; please apply your changes to the latest version and try again",
                ),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Operation cannot be fulfilled on pods \"x\": the object has been modified; please apply your changes to the latest version and try again","reason":"Conflict","details":{"name":"x","kind":"pods"},"code":409}"#,
            ),
            (
                Status::bad_request("the server rejected our request"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request","reason":"BadRequest","code":400}"#,
            ),
            (
                Status::forbidden("", "", "", "User \"system:anonymous\" cannot get path \"/foo\""),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/foo\"","reason":"Forbidden","details":{},"code":403}"#,
            ),
            (
                Status::forbidden("", "pods", "", "User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"bob\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"pods"},"code":403}"#,
            ),
            (
                Status::forbidden("apps", "deployments", "web", "nope"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"web\" is forbidden: nope","reason":"Forbidden","details":{"name":"web","group":"apps","kind":"deployments"},"code":403}"#,
            ),
            (
                Status::method_not_supported("", "bindings", "list"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"list is not supported on resources of kind \"bindings\"","reason":"MethodNotAllowed","details":{"kind":"bindings"},"code":405}"#,
            ),
            (
                Status::request_entity_too_large("limit is 3145728"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Request entity too large: limit is 3145728","reason":"RequestEntityTooLarge","code":413}"#,
            ),
            (
                Status::resource_expired("too old resource version: 5 (10)"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (10)","reason":"Expired","code":410}"#,
            ),
            (
                Status::gone("gone"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"gone","reason":"Gone","code":410}"#,
            ),
            (
                Status::unsupported_media_type(&["application/json", "application/yaml"]),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the body of the request was in an unknown format - accepted media types include: application/json, application/yaml","reason":"UnsupportedMediaType","code":415}"#,
            ),
            (
                Status::not_acceptable(&["application/json"]),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"only the following media types are accepted: application/json","reason":"NotAcceptable","code":406}"#,
            ),
            (
                Status::internal_error("etcd down"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error occurred: etcd down","reason":"InternalError","details":{"causes":[{"message":"etcd down"}]},"code":500}"#,
            ),
            (
                Status::timeout("request did not complete within requested timeout - context deadline exceeded", 0),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Timeout: request did not complete within requested timeout - context deadline exceeded","reason":"Timeout","details":{},"code":504}"#,
            ),
            (
                Status::too_many_requests("slow down", 1),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"slow down","reason":"TooManyRequests","details":{"retryAfterSeconds":1},"code":429}"#,
            ),
            (
                Status::service_unavailable("not ready"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not ready","reason":"ServiceUnavailable","code":503}"#,
            ),
            (
                Status::server_timeout("", "pods", "get", 2),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"The get operation against pods could not be completed at this time, please try again.","reason":"ServerTimeout","details":{"name":"get","kind":"pods","retryAfterSeconds":2},"code":500}"#,
            ),
            (
                Status::unauthorized(""),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"not authorized","reason":"Unauthorized","code":401}"#,
            ),
            (
                Status::generate_name_conflict("", "pods", "web-abcde", 1),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods \"web-abcde\" already exists, the server was not able to generate a unique name for the object","reason":"AlreadyExists","details":{"name":"web-abcde","kind":"pods","retryAfterSeconds":1},"code":409}"#,
            ),
            (
                Status::generic(418, "Teapot", "short and stout"),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"short and stout","reason":"Teapot","code":418}"#,
            ),
            (
                Status::success(),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":200}"#,
            ),
            (
                Status::success().details(StatusDetails {
                    name: "x".into(),
                    kind: "pods".into(),
                    uid: "1234".into(),
                    ..StatusDetails::default()
                }),
                r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":"x","kind":"pods","uid":"1234"},"code":200}"#,
            ),
        ];
        for (status, want) in cases {
            assert_eq!(wire(&status), want);
        }
    }

    #[test]
    fn invalid_carries_causes_and_aggregated_message() {
        let one = Status::invalid(
            "apps",
            "Deployment",
            "x",
            &[FieldError::invalid(
                "spec.replicas",
                -1,
                "must be greater than or equal to 0",
            )],
        );
        assert_eq!(
            wire(&one),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Deployment.apps \"x\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0","reason":"Invalid","details":{"name":"x","group":"apps","kind":"Deployment","causes":[{"reason":"FieldValueInvalid","message":"Invalid value: -1: must be greater than or equal to 0","field":"spec.replicas"}]},"code":422}"#
        );

        let two = Status::invalid(
            "",
            "Pod",
            "p",
            &[
                FieldError::required("metadata.namespace", ""),
                FieldError::required("spec.containers", ""),
                FieldError::required("spec.containers", ""),
            ],
        );
        assert_eq!(
            two.message,
            "Pod \"p\" is invalid: [metadata.namespace: Required value, spec.containers: Required value]"
        );
        // Causes are not de-duplicated, the message is.
        assert_eq!(two.details.as_ref().unwrap().causes.len(), 3);
        assert_eq!(
            serde_json::to_value(&two.details.as_ref().unwrap().causes[0]).unwrap(),
            json!({"reason":"FieldValueRequired","message":"Required value","field":"metadata.namespace"})
        );

        let none = Status::invalid("", "Pod", "p", &[]);
        assert_eq!(none.message, "Pod \"p\" is invalid");
        assert_eq!(
            serde_json::to_value(&none).unwrap()["details"],
            json!({"name":"p","kind":"Pod"})
        );
    }

    #[test]
    fn deserializes_client_side() {
        let body = r#"{"kind":"Status","apiVersion":"v1","metadata":{"resourceVersion":"7"},"status":"Failure","message":"m","reason":"NotFound","details":{"name":"x","kind":"pods","causes":null},"code":404}"#;
        let s: Status = serde_json::from_str(body).unwrap();
        assert_eq!(s.code(), 404);
        assert!(s.is_not_found());
        assert_eq!(s.metadata.resource_version, "7");
        assert_eq!(s.to_string(), "m");

        let bare: Status = serde_json::from_str("{}").unwrap();
        assert_eq!(bare.code(), 500);
        assert_eq!(serde_json::to_string(&bare).unwrap(), r#"{"metadata":{}}"#);

        // Round trip.
        let s = Status::invalid("", "Pod", "p", &[FieldError::required("a", "")]);
        let back: Status = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn predicates_follow_reason_then_code() {
        assert!(Status::not_found("", "pods", "x").is_not_found());
        assert!(Status::generic(404, "", "x").is_not_found());
        assert!(!Status::generic(404, reason::BAD_REQUEST, "x").is_not_found());
        assert!(Status::conflict("", "pods", "x", "y").is_conflict());
        assert!(!Status::already_exists("", "pods", "x").is_conflict());
        assert!(Status::already_exists("", "pods", "x").is_already_exists());
        assert!(Status::resource_expired("x").is_resource_expired());
        assert!(Status::gone("x").is_gone());
        assert!(Status::invalid("", "Pod", "p", &[]).is_invalid());
        assert!(Status::forbidden("", "", "", "x").is_forbidden());
        assert!(Status::success().is_success());
        assert_eq!(Status::success().code(), 200);
        let v: Value = serde_json::to_value(Status::not_found("", "pods", "x")).unwrap();
        assert_eq!(v["code"], 404);
    }
}
