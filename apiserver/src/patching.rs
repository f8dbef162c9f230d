//! PATCH: JSON patch, JSON merge patch and strategic merge patch (with the built-in kinds' patch
//! metadata), applied to the current object inside a guaranteed update so that a concurrent
//! write makes the patch re-apply on the fresh object, as upstream does. Server-side apply
//! (`application/apply-patch+yaml`) goes to `apply.rs`.

use http::{HeaderMap, Response, StatusCode};
use serde_json::Value;

use crate::chain::{Attributes, Operation};
use crate::errors::{self, bad_request, conflict, ApiError, ApiResult};
use crate::handlers::{self, content_type, read_body, respond_object, Query};
use crate::negotiation::Output;
use crate::object;
use crate::registry::Change;
use crate::resources::Resource;
use crate::server::{Body, State};
use crate::strategy::{self, Part};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

fn patch_type(content_type: &str) -> ApiResult<PatchType> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(PatchType::Apply),
        _ => Err(errors::unsupported_patch_type(content_type)),
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    resource: &'static Resource,
    attributes: &Attributes,
    part: Part,
    namespace: &str,
    headers: &HeaderMap,
    query: &Query,
    body: crate::handlers::RequestBody,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let content_type = content_type(headers);
    let kind = patch_type(&content_type)?;
    let bytes = read_body(body).await?;
    if kind == PatchType::Apply {
        return crate::apply::serve(
            state, resource, attributes, part, namespace, &bytes, query, dry_run, output,
        )
        .await;
    }
    let patch: Value = serde_json::from_slice(&bytes)
        .map_err(|err| bad_request(format!("error decoding patch: {err}")))?;
    let meta = patch::builtin(resource.group, resource.version, resource.kind);
    let name = attributes.name.as_str();
    let manager = crate::fieldmanager::manager(headers, query)?;
    let chain = &state.chain;
    let mut warnings = Vec::new();
    let updated = state
        .registry
        .guaranteed_update(resource, namespace, name, |current| {
            let Some(current) = current else {
                return Err(errors::not_found(resource, name));
            };
            let original = handlers::with_type(resource, current.clone());
            let patched = match kind {
                PatchType::Json => {
                    patch::json_patch::apply(&original, &patch).map_err(patch_error)?
                }
                PatchType::Merge => patch::merge_patch::apply(&original, &patch),
                PatchType::Strategic => {
                    patch::strategic::apply(&original, &patch, meta).map_err(patch_error)?
                }
                PatchType::Apply => {
                    return Err(errors::internal("apply patches are served by apply.rs"))
                }
            };
            check_patched(resource, name, current, &patched)?;
            warnings.clear();
            handlers::decode_body(
                resource,
                "application/json",
                &serde_json::to_vec(&patched).unwrap_or_default(),
                query,
                &mut warnings,
            )?;
            let mut patched = patched;
            builtin::default(
                resource.group,
                resource.version,
                resource.kind,
                &mut patched,
            );
            let patched = crate::fieldmanager::track(
                resource,
                &manager,
                &attributes.subresource,
                patched,
                Some(current),
            );
            let next = strategy::prepare_for_update(resource, part, patched, current);
            let next = chain.admit(Operation::Update, attributes, next, Some(current))?;
            Ok(if dry_run {
                Change::DryRun(next)
            } else {
                Change::Write(next)
            })
        })
        .await?;
    let mut response = respond_object(resource, StatusCode::OK, updated.object, output, query)?;
    handlers::add_warnings(&mut response, &warnings);
    Ok(response)
}

/// A patch may not rename, move or retype the object, and a `resourceVersion` it sets is a
/// precondition.
fn check_patched(
    resource: &Resource,
    name: &str,
    current: &Value,
    patched: &Value,
) -> ApiResult<()> {
    if !patched.is_object() {
        return Err(bad_request("the patched object is not a JSON object"));
    }
    if object::name(patched) != name {
        return Err(bad_request(format!(
            "the name of the object ({}) does not match the name on the URL ({name})",
            object::name(patched)
        )));
    }
    if resource.namespaced && object::namespace(patched) != object::namespace(current) {
        return Err(bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let rv = object::resource_version(patched);
    if !rv.is_empty() && rv != object::resource_version(current) {
        return Err(conflict(resource, name, errors::MODIFIED));
    }
    Ok(())
}

fn patch_error(err: patch::PatchError) -> ApiError {
    match err.status_code() {
        400 => bad_request(err.to_string()),
        413 => errors::too_large_message(err.to_string()),
        422 => errors::unprocessable(err.to_string()),
        _ => errors::internal(err),
    }
}
