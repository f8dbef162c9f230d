//! PodSecurity admission: pods are checked against the Pod Security Standards level their
//! namespace enforces (`pod-security.kubernetes.io/enforce` and `-version` labels), as
//! upstream's built-in plugin does; a violation is refused with upstream's 403 message.

use std::sync::Arc;

use serde_json::Value;

use crate::cache::Caches;
use crate::chain::{Attributes, Operation, ValidatingAdmission};
use crate::errors::{self, ApiResult};

pub struct PodSecurity {
    caches: Arc<Caches>,
}

impl PodSecurity {
    pub fn new(caches: Arc<Caches>) -> PodSecurity {
        PodSecurity { caches }
    }

    fn namespace_labels(&self, namespace: &str) -> serde_json::Map<String, Value> {
        self.caches.namespace_labels(namespace).unwrap_or_default()
    }
}

impl ValidatingAdmission for PodSecurity {
    fn name(&self) -> &'static str {
        "PodSecurity"
    }

    fn validate(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        if !(a.resource.group.is_empty() && a.resource.kind == "Pod" && a.subresource.is_empty()) {
            return Ok(());
        }
        if op == Operation::Update && old.map(|o| o.get("spec")) == Some(obj.get("spec")) {
            // Metadata-only and status updates are not re-checked (upstream skips them too).
            return Ok(());
        }
        let namespace = crate::object::namespace(obj);
        let (policy, _) = pod_security::resolve_namespace_policy(&self.namespace_labels(namespace));
        let (level, version) = (policy.enforce.0, policy.enforce.1.clone());
        let Some((meta, spec)) = pod_security::pod_metadata_and_spec("pods", obj) else {
            return Ok(());
        };
        let parsed_version = pod_security::PolicyVersion::parse(&version)
            .unwrap_or(pod_security::PolicyVersion::Latest);
        let violations = pod_security::check_version(level, parsed_version, meta, spec);
        if violations.is_empty() {
            return Ok(());
        }
        let name = crate::object::name(obj);
        Err(errors::forbidden(
            a.resource,
            name,
            format!(
                "pods \"{name}\" is forbidden: {}",
                pod_security::forbidden_message(level, &version, &violations)
            ),
        ))
    }
}
