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
}

impl Webhooks {
    pub fn mutating(caches: Arc<Caches>) -> Webhooks {
        Webhooks {
            caches,
            plural: "mutatingwebhookconfigurations",
        }
    }

    pub fn validating(caches: Arc<Caches>) -> Webhooks {
        Webhooks {
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
        let mut current = obj.clone();
        for configuration in &configurations {
            let name = crate::object::name(&current).to_string();
            let snapshot = current.clone();
            let request = webhook::Request {
                operation,
                group: a.resource.group,
                version: a.resource.version,
                resource: a.resource.plural,
                subresource: &a.subresource,
                kind: a.resource.kind,
                namespace: &namespace,
                name: &name,
                object: Some(&snapshot),
                old_object: old,
                user: &user,
                groups: &groups,
                dry_run: false,
                namespace_labels: labels.as_ref(),
                cluster_scoped: !a.resource.namespaced,
            };
            let matched: Vec<Value> = webhook::matching(configuration, &request)
                .into_iter()
                .cloned()
                .collect();
            for hook in matched {
                let hook_name = hook
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let object = current.clone();
                let request = webhook::Request {
                    object: Some(&object),
                    ..request
                };
                let response = match call_blocking(&hook, &request) {
                    Ok(response) => response,
                    Err(err) if webhook::fails_closed(&hook) => {
                        return Err(status_error(webhook::call_error_status(&hook_name, &err)))
                    }
                    Err(err) => {
                        tracing::warn!(webhook = %hook_name, %err, "webhook call failed; failurePolicy Ignore");
                        continue;
                    }
                };
                if !response.allowed {
                    return Err(status_error(webhook::denial_status(&hook_name, &response)));
                }
                if let (true, Some(patch)) = (mutate, &response.patch) {
                    current = patch::json_patch::apply(&object, patch).map_err(|err| {
                        errors::internal(format!(
                            "applying the patch of webhook {hook_name:?}: {err}"
                        ))
                    })?;
                }
            }
        }
        Ok(current)
    }
}

fn call_blocking(
    hook: &Value,
    request: &webhook::Request<'_>,
) -> Result<webhook::Response, webhook::Error> {
    let handle = tokio::runtime::Handle::current();
    if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
        return Err(webhook::Error::Transport {
            url: String::new(),
            reason: "admission webhooks need the multi-threaded runtime".into(),
        });
    }
    tokio::task::block_in_place(|| handle.block_on(webhook::call(hook, request)))
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
