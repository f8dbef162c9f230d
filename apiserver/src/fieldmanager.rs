//! `metadata.managedFields` for writes that are not server-side apply (create, update, patch,
//! scale): who changed which fields, recorded as an `Update` entry of the request's field manager
//! (`?fieldManager=`, or the first word of the User-Agent, as upstream derives it).

use http::HeaderMap;
use serde_json::Value;

use crate::errors::{bad_request, ApiResult};
use crate::handlers::Query;
use crate::object;
use crate::resources::Resource;

/// The field manager of a request.
pub fn manager(headers: &HeaderMap, query: &Query) -> ApiResult<String> {
    if let Some(name) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        if name.chars().count() > 128 || name.chars().any(|c| c.is_control()) {
            return Err(bad_request(format!(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: {name:?}: must be printable and at most 128 characters"
            )));
        }
        return Ok(name.clone());
    }
    let agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let prefix = agent.split('/').next().unwrap_or(agent);
    let prefix: String = prefix.chars().take(128).collect();
    Ok(if prefix.is_empty() {
        "unknown".into()
    } else {
        prefix
    })
}

/// Records `manager`'s changes from `old` to `new` in `new`'s managedFields.
pub fn track(
    resource: &Resource,
    manager: &str,
    subresource: &str,
    new: Value,
    old: Option<&Value>,
) -> Value {
    let manager = ssa::Manager {
        name: manager,
        subresource,
    };
    let now = object::now_rfc3339();
    let api_version = resource.group_version();
    let typed_new = crate::handlers::with_type(resource, new);
    let typed_old = old.map(|o| crate::handlers::with_type(resource, o.clone()));
    ssa::update(typed_old.as_ref(), &typed_new, &manager, &api_version, &now)
}
