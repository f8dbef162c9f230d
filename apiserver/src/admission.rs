//! Built-in admission that needs the store: NamespaceLifecycle (no new objects in a namespace that
//! does not exist or is terminating; the system namespaces cannot be deleted).

use crate::errors::{self, ApiResult};
use crate::object;
use crate::resources::{find, Resource};
use crate::server::State;

/// Namespaces that upstream's NamespaceLifecycle refuses to delete.
const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

pub async fn namespace_lifecycle(
    state: &State,
    resource: &Resource,
    namespace: &str,
) -> ApiResult<()> {
    if !resource.namespaced || namespace.is_empty() {
        return Ok(());
    }
    let Some(namespaces) = find("", "v1", "namespaces") else {
        return Ok(());
    };
    let obj = match state.caches.object(namespaces, "", namespace) {
        Some(cached) => cached,
        // The cache may lag a namespace created a moment ago: ask the store before refusing.
        None => match state.registry.get(namespaces, "", namespace).await {
            Ok(obj) => obj,
            Err(err) if err.code == 404 => return Err(errors::namespace_not_found(namespace)),
            Err(err) => return Err(err),
        },
    };
    if object::is_deleting(&obj) {
        return Err(errors::forbidden(
            resource,
            "",
            format!(
                "{} is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.qualified()
            ),
        ));
    }
    Ok(())
}

pub fn namespace_deletable(resource: &Resource, name: &str) -> ApiResult<()> {
    if resource.group.is_empty() && resource.kind == "Namespace" && IMMORTAL.contains(&name) {
        return Err(errors::forbidden(
            resource,
            name,
            format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
        ));
    }
    Ok(())
}
