//! Every failure a request can meet, as the `metav1.Status` upstream would answer with.

use serde_json::{json, Value};

use crate::resources::Resource;

/// An error answer: an HTTP code and a `Status` body.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    pub status: Value,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.status.get("message").and_then(Value::as_str);
        write!(f, "{} {}", self.code, message.unwrap_or(""))
    }
}

impl std::error::Error for ApiError {}

pub type ApiResult<T> = Result<T, ApiError>;

fn status(code: u16, reason: &str, message: String, details: Option<Value>) -> ApiError {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if reason.is_empty() {
        if let Some(map) = body.as_object_mut() {
            map.remove("reason");
        }
    }
    if let (Some(details), Some(map)) = (details, body.as_object_mut()) {
        map.insert("details".into(), details);
    }
    ApiError { code, status: body }
}

fn details(resource: &Resource, name: &str) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !resource.group.is_empty() {
        d.insert("group".into(), resource.group.into());
    }
    d.insert("kind".into(), resource.plural.into());
    Value::Object(d)
}

pub fn not_found(resource: &Resource, name: &str) -> ApiError {
    status(
        404,
        "NotFound",
        format!("{} \"{}\" not found", resource.qualified(), name),
        Some(details(resource, name)),
    )
}

/// A namespace that does not exist, as the NamespaceLifecycle admission reports it.
pub fn namespace_not_found(name: &str) -> ApiError {
    status(
        404,
        "NotFound",
        format!("namespaces \"{name}\" not found"),
        Some(json!({"name": name, "kind": "namespaces"})),
    )
}

/// A path no route serves.
pub fn route_not_found() -> ApiError {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
        Some(json!({})),
    )
}

pub fn already_exists(resource: &Resource, name: &str) -> ApiError {
    status(
        409,
        "AlreadyExists",
        format!("{} \"{}\" already exists", resource.qualified(), name),
        Some(details(resource, name)),
    )
}

pub fn conflict(resource: &Resource, name: &str, why: &str) -> ApiError {
    status(
        409,
        "Conflict",
        format!(
            "Operation cannot be fulfilled on {} \"{}\": {}",
            resource.qualified(),
            name,
            why
        ),
        Some(details(resource, name)),
    )
}

pub const MODIFIED: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

pub use apimachinery::FieldError;

/// An upstream-shaped `Status` from the apimachinery crate, as an answer.
pub fn from_status(status: apimachinery::Status) -> ApiError {
    let code = status.code();
    let body = serde_json::to_value(&status).unwrap_or_else(|_| json!({"kind": "Status"}));
    ApiError { code, status: body }
}

pub fn invalid(resource: &Resource, name: &str, errors: &[FieldError]) -> ApiError {
    from_status(apimachinery::Status::invalid(
        resource.group,
        resource.kind,
        name,
        errors,
    ))
}

pub fn bad_request(message: impl Into<String>) -> ApiError {
    status(400, "BadRequest", message.into(), None)
}

pub fn method_not_supported(resource: &Resource, action: &str) -> ApiError {
    status(
        405,
        "MethodNotAllowed",
        format!(
            "{} is not supported on resources of kind \"{}\"",
            action,
            resource.qualified()
        ),
        Some(details(resource, "")),
    )
}

pub fn method_not_allowed() -> ApiError {
    status(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource".into(),
        Some(json!({})),
    )
}

pub fn too_large() -> ApiError {
    status(
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728".into(),
        None,
    )
}

pub fn gone(message: impl Into<String>) -> ApiError {
    status(410, "Expired", message.into(), None)
}

pub fn unsupported_media_type(content_type: &str) -> ApiError {
    status(
        415,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/apply-patch+yaml (got {content_type:?})"),
        None,
    )
}

pub fn not_acceptable(accept: &str) -> ApiError {
    status(
        406,
        "NotAcceptable",
        format!("only the following media types are accepted: application/json, application/yaml (got {accept:?})"),
        None,
    )
}

pub fn internal(message: impl std::fmt::Display) -> ApiError {
    status(
        500,
        "InternalError",
        format!("Internal error occurred: {message}"),
        Some(json!({"causes": [{"message": message.to_string()}]})),
    )
}

pub fn timeout(message: impl Into<String>) -> ApiError {
    status(504, "Timeout", message.into(), None)
}

pub fn unavailable(message: impl Into<String>) -> ApiError {
    status(503, "ServiceUnavailable", message.into(), None)
}

/// Maps a storage failure for `name` of `resource` to its upstream answer.
pub fn from_storage(resource: &Resource, name: &str, err: storage::Error) -> ApiError {
    use storage::Error as E;
    match err {
        E::NotFound { .. } => not_found(resource, name),
        E::AlreadyExists { .. } => already_exists(resource, name),
        E::Conflict { .. } => conflict(resource, name, MODIFIED),
        E::Compacted {
            requested,
            compacted,
        } => gone(format!(
            "The resourceVersion for the provided list is too old. requested: {requested}, compacted: {compacted}"
        )),
        E::FutureRevision { .. } => timeout("Too large resource version"),
        E::TooLarge { .. } => too_large(),
        E::InvalidContinue { .. } => bad_request(format!("continue key is not valid: {err}")),
        E::Unavailable { .. } | E::Closed => unavailable(err.to_string()),
        other => internal(other),
    }
}

pub fn forbidden(resource: &Resource, name: &str, message: String) -> ApiError {
    status(403, "Forbidden", message, Some(details(resource, name)))
}

/// A list or watch option that is not valid (upstream: 400 with the ListOptions field error).
pub fn invalid_list_options(field: &str, value: &str, detail: &str) -> ApiError {
    bad_request(format!(
        "ListOptions.meta.k8s.io \"\" is invalid: {field}: Invalid value: \"{value}\": {detail}"
    ))
}

pub fn unsupported_patch_type(content_type: &str) -> ApiError {
    status(
        415,
        "UnsupportedMediaType",
        format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"),
        None,
    )
}

pub fn too_large_message(message: String) -> ApiError {
    status(413, "RequestEntityTooLarge", message, None)
}

pub fn unprocessable(message: String) -> ApiError {
    status(422, "", message, None)
}

/// A 409 whose message is given whole (server-side apply conflicts).
pub fn conflict_with_causes(
    resource: &Resource,
    name: &str,
    message: &str,
    causes: Vec<Value>,
) -> ApiError {
    let mut d = details(resource, name);
    d["causes"] = Value::Array(causes);
    status(409, "Conflict", message.to_string(), Some(d))
}

/// A 422 whose message is given whole.
pub fn invalid_value_message(message: String) -> ApiError {
    status(422, "Invalid", message, None)
}

pub fn too_many_requests(message: String) -> ApiError {
    status(429, "TooManyRequests", message, None)
}

pub fn unauthorized() -> ApiError {
    status(401, "Unauthorized", "Unauthorized".into(), None)
}

/// A 403 for a non-resource path.
pub fn forbidden_path(message: &str) -> ApiError {
    status(403, "Forbidden", message.to_string(), Some(json!({})))
}

/// A 404 with a message of its own.
pub fn not_found_message(message: &str) -> ApiError {
    status(404, "NotFound", message.to_string(), None)
}
