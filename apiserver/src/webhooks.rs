//! MutatingAdmissionWebhook and ValidatingAdmissionWebhook: every matching webhook of every
//! Mutating/ValidatingWebhookConfiguration (from the watch caches) is called over HTTPS with an
//! AdmissionReview (crate `webhook`); mutating webhooks' JSON patches are applied in order, a
//! denial answers with the webhook's status, and a failed call refuses the request unless the
//! webhook's failurePolicy is Ignore.
//!
//! Admission runs inside the storage write's retry loop, which is synchronous; the calls block
//! that worker thread with `block_in_place` (the multi-threaded runtime keeps serving others).

use std::sync::Arc;

use serde_json::Value;

use crate::cache::Caches;
use crate::chain::{Attributes, MutatingAdmission, Operation, ValidatingAdmission};
use crate::errors::{self, ApiError, ApiResult};
use crate::resources::find;

pub struct Webhooks {
    caches: Arc<Caches>,
    plural: &'static str,
    resolver: Resolver,
}

impl Webhooks {
    pub fn mutating(caches: Arc<Caches>, endpoint_routing: bool) -> Webhooks {
        Webhooks {
            resolver: Resolver {
                caches: caches.clone(),
                endpoint_routing,
            },
            caches,
            plural: "mutatingwebhookconfigurations",
        }
    }

    pub fn validating(caches: Arc<Caches>, endpoint_routing: bool) -> Webhooks {
        Webhooks {
            resolver: Resolver {
                caches: caches.clone(),
                endpoint_routing,
            },
            caches,
            plural: "validatingwebhookconfigurations",
        }
    }

    fn configurations(&self) -> Vec<Value> {
        let Some(resource) = find("admissionregistration.k8s.io", "v1", self.plural) else {
            return Vec::new();
        };
        let mut configs = self.caches.objects(resource, None);
        // Upstream calls configurations in name order.
        configs.sort_by(|a, b| crate::object::name(a).cmp(crate::object::name(b)));
        configs
    }

    /// Runs every matching webhook on `obj`; returns the (possibly patched) object.
    fn run(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        old: Option<&Value>,
        mutate: bool,
    ) -> ApiResult<Value> {
        let configurations = self.configurations();
        if configurations.is_empty() {
            return Ok(obj.clone());
        }
        let operation = match op {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
        };
        let namespace = if a.resource.namespaced {
            crate::object::namespace(obj).to_string()
        } else {
            String::new()
        };
        let labels = if namespace.is_empty() {
            None
        } else {
            self.caches.namespace_labels(&namespace)
        };
        let (user, groups) = match &a.user {
            Some(u) => (u.name.clone(), u.groups.clone()),
            None => (String::new(), Vec::new()),
        };
        let name = crate::object::name(obj).to_string();
        let template = webhook::Request {
            operation,
            group: a.resource.group,
            version: a.resource.version,
            resource: a.resource.plural,
            subresource: &a.subresource,
            kind: a.resource.kind,
            namespace: &namespace,
            name: &name,
            object: None,
            old_object: old,
            user: &user,
            groups: &groups,
            dry_run: false,
            namespace_labels: labels.as_ref(),
            cluster_scoped: !a.resource.namespaced,
        };
        let mut current = obj.clone();
        // Reinvocation (upstream's `reinvocationPolicy: IfNeeded`): a webhook that asked for it
        // and ran before a later webhook changed the object is called once more at the end.
        let mut step = 0usize;
        let mut last_change: Option<usize> = None;
        let mut if_needed: Vec<(usize, Value)> = Vec::new();
        for configuration in &configurations {
            let snapshot = current.clone();
            let request = webhook::Request {
                object: Some(&snapshot),
                ..template
            };
            let matched: Vec<Value> = webhook::matching(configuration, &request)
                .into_iter()
                .cloned()
                .collect();
            for hook in matched {
                step += 1;
                if let Some(patched) = invoke(&hook, &request, &current, mutate, &self.resolver)? {
                    if patched != current {
                        last_change = Some(step);
                    }
                    current = patched;
                }
                if mutate
                    && hook.get("reinvocationPolicy").and_then(Value::as_str) == Some("IfNeeded")
                {
                    if_needed.push((step, hook));
                }
            }
        }
        if let Some(changed_at) = last_change {
            for (_, hook) in if_needed.iter().filter(|(at, _)| *at < changed_at) {
                if let Some(patched) = invoke(hook, &template, &current, mutate, &self.resolver)? {
                    current = patched;
                }
            }
        }
        Ok(current)
    }
}

/// Calls one webhook on `current`; its patched object (mutating webhooks), None when it has
/// nothing to say or failed open.
fn invoke(
    hook: &Value,
    request: &webhook::Request<'_>,
    current: &Value,
    mutate: bool,
    resolver: &Resolver,
) -> ApiResult<Option<Value>> {
    let hook_name = hook.get("name").and_then(Value::as_str).unwrap_or("");
    let request = webhook::Request {
        object: Some(current),
        ..*request
    };
    match webhook::conditions::evaluate(hook, &request) {
        Ok(webhook::conditions::Decision::Call) => {}
        Ok(webhook::conditions::Decision::Skip(condition)) => {
            tracing::debug!(webhook = %hook_name, %condition, "matchCondition false; webhook skipped");
            return Ok(None);
        }
        Err(err) => {
            let err = webhook::Error::MatchCondition(err);
            if webhook::fails_closed(hook) {
                return Err(status_error(webhook::call_error_status(hook_name, &err)));
            }
            tracing::warn!(webhook = %hook_name, %err, "matchCondition failed; failurePolicy Ignore");
            return Ok(None);
        }
    }
    let response = match call_blocking(hook, &request, resolver) {
        Ok(response) => response,
        Err(err) if webhook::fails_closed(hook) => {
            return Err(status_error(webhook::call_error_status(hook_name, &err)))
        }
        Err(err) => {
            tracing::warn!(webhook = %hook_name, %err, "webhook call failed; failurePolicy Ignore");
            return Ok(None);
        }
    };
    if !response.allowed {
        return Err(status_error(webhook::denial_status(hook_name, &response)));
    }
    match (mutate, &response.patch) {
        (true, Some(patch)) => patch::json_patch::apply(current, patch)
            .map(Some)
            .map_err(|err| {
                errors::internal(format!(
                    "applying the patch of webhook {hook_name:?}: {err}"
                ))
            }),
        _ => Ok(None),
    }
}

fn call_blocking(
    hook: &Value,
    request: &webhook::Request<'_>,
    resolver: &Resolver,
) -> Result<webhook::Response, webhook::Error> {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(webhook::Error::Transport {
            url: String::new(),
            reason: "admission webhooks need the multi-threaded runtime".into(),
        });
    }
    tokio::task::block_in_place(|| {
        handle.block_on(webhook::call_resolved(hook, request, Some(resolver)))
    })
}

/// Where a webhook's Service is reached (upstream's service resolvers): its cluster IP and
/// port, or with `--enable-aggregator-routing` a ready endpoint's address and target port.
pub struct Resolver {
    caches: Arc<Caches>,
    endpoint_routing: bool,
}

impl webhook::ServiceResolver for Resolver {
    fn resolve(&self, namespace: &str, name: &str, port: u16) -> Result<(String, u16), String> {
        let services = find("", "v1", "services").ok_or("services are not served")?;
        let service = self
            .caches
            .object(services, namespace, name)
            .ok_or_else(|| format!("service \"{name}\" not found"))?;
        let service_port = service["spec"]["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["port"].as_u64() == Some(u64::from(port)))
            .cloned()
            .ok_or_else(|| format!("no service port {port} found for service \"{name}\""))?;
        if !self.endpoint_routing {
            let ip = service["spec"]["clusterIP"].as_str().unwrap_or("");
            if ip.is_empty() || ip == "None" {
                return Err(format!("service \"{name}\" has no cluster IP"));
            }
            return Ok((ip.to_string(), port));
        }
        let endpoints = find("", "v1", "endpoints").ok_or("endpoints are not served")?;
        let object = self
            .caches
            .object(endpoints, namespace, name)
            .ok_or_else(|| format!("endpoints \"{name}\" not found"))?;
        let port_name = service_port["name"].as_str().unwrap_or("");
        for subset in object["subsets"].as_array().into_iter().flatten() {
            let ports: Vec<&Value> = subset["ports"].as_array().into_iter().flatten().collect();
            let chosen = ports
                .iter()
                .find(|p| p["name"].as_str().unwrap_or("") == port_name)
                .or_else(|| (ports.len() == 1).then(|| &ports[0]));
            let Some(target) = chosen
                .and_then(|p| p["port"].as_u64())
                .and_then(|p| u16::try_from(p).ok())
            else {
                continue;
            };
            if let Some(ip) = subset["addresses"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|a| a["ip"].as_str())
            {
                return Ok((ip.to_string(), target));
            }
        }
        Err(format!("no endpoints available for service \"{name}\""))
    }
}

fn status_error(status: Value) -> ApiError {
    let code = status
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .unwrap_or(500);
    ApiError { code, status }
}

impl MutatingAdmission for Webhooks {
    fn name(&self) -> &'static str {
        "MutatingAdmissionWebhook"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        *obj = self.run(op, a, obj, old, true)?;
        Ok(())
    }
}

impl ValidatingAdmission for Webhooks {
    fn name(&self) -> &'static str {
        "ValidatingAdmissionWebhook"
    }

    fn validate(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        self.run(op, a, obj, old, false).map(|_| ())
    }
}
