//! The `/scale` subresource of Deployments, ReplicaSets, StatefulSets and
//! ReplicationControllers: an `autoscaling/v1` Scale view of `spec.replicas` (what `kubectl
//! scale` and the HPA read and write).

use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};

use crate::chain::{Attributes, Operation};
use crate::errors::{self, bad_request, conflict, ApiResult};
use crate::handlers;
use crate::negotiation::{self, Output};
use crate::object;
use crate::registry::Change;
use crate::resources::Resource;
use crate::server::{Body, State};
use crate::strategy::{self, Part};

/// The Scale view of an object.
pub fn to_scale(resource: &Resource, obj: &Value) -> Value {
    let meta = object::meta(obj);
    let pick = |f: &str| meta.and_then(|m| m.get(f)).cloned().unwrap_or(Value::Null);
    let mut metadata = json!({
        "name": pick("name"),
        "uid": pick("uid"),
        "resourceVersion": pick("resourceVersion"),
        "creationTimestamp": pick("creationTimestamp"),
    });
    if resource.namespaced {
        metadata["namespace"] = pick("namespace");
    }
    let spec_replicas = obj
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let status_replicas = obj
        .get("status")
        .and_then(|s| s.get("replicas"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let selector = selector_string(resource, obj);
    let mut status = json!({"replicas": status_replicas});
    if !selector.is_empty() {
        status["selector"] = Value::String(selector);
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": spec_replicas},
        "status": status,
    })
}

/// The label selector as a string (`status.selector` of a Scale).
fn selector_string(resource: &Resource, obj: &Value) -> String {
    let selector = obj.get("spec").and_then(|s| s.get("selector"));
    let parsed = if resource.kind == "ReplicationController" {
        // ReplicationControllers select with a plain map.
        selector
            .and_then(Value::as_object)
            .map(|m| json!({"matchLabels": m}))
            .and_then(|s| apimachinery::labels::Selector::from_label_selector(&s).ok())
    } else {
        selector.and_then(|s| apimachinery::labels::Selector::from_label_selector(s).ok())
    };
    parsed.map(|s| s.to_string()).unwrap_or_default()
}

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    resource: &'static Resource,
    attributes: &Attributes,
    namespace: &str,
    headers: &HeaderMap,
    body: crate::handlers::RequestBody,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let name = attributes.name.as_str();
    match attributes.verb {
        "get" => {
            let obj = state.registry.get(resource, namespace, name).await?;
            negotiation::respond(StatusCode::OK, &to_scale(resource, &obj), output)
        }
        "update" | "patch" => {
            let content_type = handlers::content_type(headers);
            let bytes = handlers::read_body(body).await?;
            let verb = attributes.verb;
            let patch_kind = content_type
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let input: Value = if verb == "update" {
                negotiation::parse_body(&content_type, &bytes)?
            } else {
                serde_json::from_slice(&bytes)
                    .map_err(|err| bad_request(format!("error decoding patch: {err}")))?
            };
            let chain = &state.chain;
            let manager =
                crate::fieldmanager::manager(headers, &crate::handlers::parse_query(None))?;
            let updated = state
                .registry
                .guaranteed_update(resource, namespace, name, |current| {
                    let Some(current) = current else {
                        return Err(errors::not_found(resource, name));
                    };
                    let scale = to_scale(resource, &handlers::with_type(resource, current.clone()));
                    let wanted = if verb == "update" {
                        input.clone()
                    } else {
                        match patch_kind.as_str() {
                            "application/json-patch+json" => patch::json_patch::apply(&scale, &input).map_err(patch_error)?,
                            "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                                patch::merge_patch::apply(&scale, &input)
                            }
                            _ => return Err(errors::unsupported_patch_type(&content_type)),
                        }
                    };
                    let rv = object::resource_version(&wanted);
                    if !rv.is_empty() && rv != object::resource_version(current) {
                        return Err(conflict(resource, name, errors::MODIFIED));
                    }
                    let replicas = wanted
                        .get("spec")
                        .and_then(|s| s.get("replicas"))
                        .and_then(Value::as_i64)
                        .unwrap_or(0);
                    if replicas < 0 {
                        return Err(errors::invalid_value_message(format!(
                            "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                        )));
                    }
                    let mut next = current.clone();
                    next["spec"]["replicas"] = json!(replicas);
                    let next = strategy::prepare_for_update(resource, Part::Main, next, current);
                    let next = crate::fieldmanager::track(resource, &manager, "scale", next, Some(current));
                    let next = chain.admit(Operation::Update, attributes, next, Some(current))?;
                    Ok(if dry_run { Change::DryRun(next) } else { Change::Write(next) })
                })
                .await?;
            negotiation::respond(StatusCode::OK, &to_scale(resource, &updated.object), output)
        }
        _ => Err(errors::method_not_supported(resource, attributes.verb)),
    }
}

fn patch_error(err: patch::PatchError) -> errors::ApiError {
    match err.status_code() {
        400 => bad_request(err.to_string()),
        _ => errors::unprocessable(err.to_string()),
    }
}
