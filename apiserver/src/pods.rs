//! Pod subresources with their own behaviour: `binding` (the scheduler's bind: sets
//! `spec.nodeName` once and the PodScheduled condition) and `eviction` (a delete that respects
//! PodDisruptionBudgets, answering 429 when a budget allows no disruption).

use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Value};

use crate::chain::Attributes;
use crate::errors::{self, bad_request, conflict, ApiResult};
use crate::handlers::{self, Query};
use crate::negotiation::{self, Output};
use crate::object;
use crate::registry::{Change, DeleteRequest};
use crate::resources::{find, Resource};
use crate::server::{Body, State};

fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

#[allow(clippy::too_many_arguments)]
pub async fn serve(
    state: &State,
    resource: &'static Resource,
    attributes: &Attributes,
    namespace: &str,
    headers: &HeaderMap,
    query: &Query,
    body: crate::handlers::RequestBody,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let content_type = handlers::content_type(headers);
    let bytes = handlers::read_body(body).await?;
    let input = negotiation::parse_body(&content_type, &bytes)?;
    let name = attributes.name.as_str();
    match attributes.subresource.as_str() {
        "binding" => bind(state, resource, namespace, name, &input, dry_run, output).await,
        "eviction" => {
            evict(
                state, resource, namespace, name, &input, query, dry_run, output,
            )
            .await
        }
        _ => Err(errors::route_not_found()),
    }
}

async fn bind(
    state: &State,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    binding: &Value,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let target = binding.get("target").cloned().unwrap_or(Value::Null);
    let node = target.get("name").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(errors::invalid_value_message(format!(
            "Binding \"{name}\" is invalid: target.name: Required value"
        )));
    }
    let kind = target.get("kind").and_then(Value::as_str).unwrap_or("Node");
    if !kind.is_empty() && kind != "Node" {
        return Err(errors::invalid_value_message(format!(
            "Binding \"{name}\" is invalid: target.kind: Invalid value: \"{kind}\": must be empty or 'Node'"
        )));
    }
    let binding_name = object::name(binding);
    if !binding_name.is_empty() && binding_name != name {
        return Err(bad_request(format!(
            "the name of the object ({binding_name}) does not match the name on the URL ({name})"
        )));
    }
    let node = node.to_string();
    state
        .registry
        .guaranteed_update(resource, namespace, name, |current| {
            let Some(current) = current else {
                return Err(errors::not_found(resource, name));
            };
            if object::is_deleting(current) {
                return Err(conflict(resource, name, "pod is being deleted, cannot be assigned to a host"));
            }
            let assigned = current
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !assigned.is_empty() {
                return Err(conflict(
                    resource,
                    name,
                    &format!("pod {name} is already assigned to node \"{assigned}\""),
                ));
            }
            let mut next = current.clone();
            next["spec"]["nodeName"] = json!(node);
            let now = object::now_rfc3339();
            let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
            let status = next
                .as_object_mut()
                .map(|m| m.entry("status").or_insert_with(|| json!({})));
            if let Some(Value::Object(status)) = status {
                let conditions = status.entry("conditions").or_insert_with(|| json!([]));
                if let Value::Array(list) = conditions {
                    list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                    list.push(condition);
                }
            }
            Ok(if dry_run { Change::DryRun(next) } else { Change::Write(next) })
        })
        .await?;
    negotiation::respond(StatusCode::CREATED, &success(201), output)
}

#[allow(clippy::too_many_arguments)]
async fn evict(
    state: &State,
    resource: &'static Resource,
    namespace: &str,
    name: &str,
    eviction: &Value,
    query: &Query,
    dry_run: bool,
    output: &Output,
) -> ApiResult<Response<Body>> {
    let pod = state.registry.get(resource, namespace, name).await?;
    let phase = pod
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let terminal = phase == "Succeeded" || phase == "Failed";
    if !terminal && !object::is_deleting(&pod) {
        check_budgets(state, namespace, &pod, dry_run).await?;
    }
    let options = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or(Value::Null);
    let mut request = DeleteRequest {
        dry_run,
        grace_period_seconds: options.get("gracePeriodSeconds").and_then(Value::as_i64),
        ..DeleteRequest::default()
    };
    if let Some(pre) = options.get("preconditions") {
        request.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
        request.precondition_resource_version = pre
            .get("resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    let _ = query;
    state
        .registry
        .delete(resource, namespace, name, &request)
        .await?;
    negotiation::respond(StatusCode::CREATED, &success(201), output)
}

/// Refuses the eviction (429) when a PodDisruptionBudget selecting the pod allows no disruption;
/// otherwise takes one disruption from it, as upstream's eviction REST does.
async fn check_budgets(
    state: &State,
    namespace: &str,
    pod: &Value,
    dry_run: bool,
) -> ApiResult<()> {
    let Some(pdbs) = find("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let page = state
        .registry
        .list(
            pdbs,
            crate::registry::ListRequest {
                namespace: Some(namespace),
                ..Default::default()
            },
        )
        .await?;
    let labels = pod
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .cloned()
        .unwrap_or(Value::Null);
    let matching: Vec<&Value> = page
        .items
        .iter()
        .filter(|pdb| {
            let selector = pdb
                .get("spec")
                .and_then(|s| s.get("selector"))
                .cloned()
                .unwrap_or(Value::Null);
            apimachinery::labels::Selector::from_label_selector(&selector)
                .is_ok_and(|s| !s.is_empty() && s.matches(&labels))
        })
        .collect();
    if matching.len() > 1 {
        return Err(errors::internal("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."));
    }
    let Some(pdb) = matching.first() else {
        return Ok(());
    };
    let pdb_name = object::name(pdb).to_string();
    let allowed = pdb
        .get("status")
        .and_then(|s| s.get("disruptionsAllowed"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if allowed <= 0 {
        return Err(errors::too_many_requests(format!(
            "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
            pdb.get("status").and_then(|s| s.get("desiredHealthy")).and_then(Value::as_i64).unwrap_or(0),
            pdb.get("status").and_then(|s| s.get("currentHealthy")).and_then(Value::as_i64).unwrap_or(0),
        )));
    }
    if dry_run {
        return Ok(());
    }
    let pod_name = object::name(pod).to_string();
    state
        .registry
        .guaranteed_update(pdbs, namespace, &pdb_name, |current| {
            let Some(current) = current else {
                return Err(errors::not_found(pdbs, &pdb_name));
            };
            let mut next = current.clone();
            let allowed = next["status"]
                .get("disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if allowed <= 0 {
                return Err(errors::too_many_requests(
                    "Cannot evict pod as it would violate the pod's disruption budget.".to_string(),
                ));
            }
            next["status"]["disruptionsAllowed"] = json!(allowed - 1);
            next["status"]["disruptedPods"][&pod_name] = json!(object::now_rfc3339());
            Ok(Change::Write(next))
        })
        .await?;
    Ok(())
}
