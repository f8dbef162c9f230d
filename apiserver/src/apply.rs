//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): the `ssa` crate merges the
//! applied configuration into the live object and keeps field ownership in `managedFields`; this
//! module fits it into the request flow (create-if-missing, conflicts as 409, admission, dry run).

use http::{Response, StatusCode};
use serde_json::{json, Value};

use crate::chain::{Attributes, Operation};
use crate::errors::{self, bad_request, ApiError, ApiResult};
use crate::handlers::{self, respond_object, Query};
use crate::negotiation::{self, Output};
use crate::object;
use crate::registry::Change;
use crate::resources::Resource;
use crate::server::{Body, State};
use crate::strategy::{self, Part};

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    resource: &'static Resource,
    attributes: &Attributes,
    part: Part,
    namespace: &str,
    bytes: &[u8],
    query: &Query,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let manager_name = query
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad_request("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"))?
        .clone();
    let force = handlers::query_bool(query, "force") == Some(true);
    let mut config = negotiation::parse_body("application/yaml", bytes)?;
    let mut warnings = Vec::new();
    handlers::decode_body(
        resource,
        "application/json",
        &serde_json::to_vec(&config).unwrap_or_default(),
        query,
        &mut warnings,
    )?;
    let name = attributes.name.as_str();
    if object::name(&config).is_empty() {
        object::meta_mut(&mut config).insert("name".into(), Value::String(name.into()));
    } else if object::name(&config) != name {
        return Err(bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::name(&config)
        )));
    }
    handlers::reconcile_namespace(resource, namespace, &mut config)?;
    let subresource = if part == Part::Status { "status" } else { "" };
    let manager = ssa::Manager {
        name: &manager_name,
        subresource,
    };
    let api_version = resource.group_version();
    let chain = &state.chain;
    let updated = state
        .registry
        .guaranteed_update(resource, namespace, name, |current| {
            let now = object::now_rfc3339();
            let live = current.map(|c| handlers::with_type(resource, c.clone()));
            let applied = ssa::apply(live.as_ref(), &config, &manager, &api_version, force, &now)
                .map_err(|err| apply_error(resource, name, err))?;
            match current {
                None => {
                    if part != Part::Main {
                        return Err(errors::not_found(resource, name));
                    }
                    let mut obj = applied;
                    strategy::prepare_for_create(
                        resource,
                        &mut obj,
                        uuid::Uuid::new_v4().to_string(),
                        &now,
                    );
                    let obj = chain.admit(Operation::Create, attributes, obj, None)?;
                    Ok(if dry_run {
                        Change::DryRun(obj)
                    } else {
                        Change::Write(obj)
                    })
                }
                Some(current) => {
                    let next = strategy::prepare_for_update(resource, part, applied, current);
                    let next = chain.admit(Operation::Update, attributes, next, Some(current))?;
                    Ok(if dry_run {
                        Change::DryRun(next)
                    } else {
                        Change::Write(next)
                    })
                }
            }
        })
        .await?;
    let code = if updated.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut response = respond_object(resource, code, updated.object, output, query)?;
    handlers::add_warnings(&mut response, &warnings);
    Ok(response)
}

fn apply_error(resource: &Resource, name: &str, err: ssa::ApplyError) -> ApiError {
    match err {
        ssa::ApplyError::Conflicts(conflicts) => {
            let message = ssa::conflicts_message(&conflicts);
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| json!({"reason": "FieldManagerConflict", "message": c.message(), "field": c.field}))
                .collect();
            errors::conflict_with_causes(resource, name, &message, causes)
        }
        ssa::ApplyError::Invalid(message) => bad_request(message),
        ssa::ApplyError::ManagedFields(message) => errors::internal(message),
    }
}
