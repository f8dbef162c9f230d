//! The Node authorizer (`--authorization-mode=Node`): a kubelet (`system:node:<name>` in
//! `system:nodes`) may read only what its own pods need, as upstream's graph-based authorizer
//! allows, with 1.33's selector rules (AuthorizeNodeWithSelectors, on by default):
//!
//! - secrets, configmaps, persistentvolumeclaims (and the persistentvolumes they bind): `get` of
//!   those referenced by a pod bound to the node;
//! - pods: `get` of its own pods, `list`/`watch` only with `fieldSelector=spec.nodeName=<name>`;
//!   pod status updates, mirror pod create/delete, evictions;
//! - nodes: read, create (admission checks the name), update/patch/delete only its own;
//! - its own Lease in kube-node-lease, its own CSINode; service-account tokens for its pods'
//!   accounts; events; services, endpoints and endpointslices read; reviews.
//!
//! Anything else gets no opinion (RBAC may still allow it); reads outside the graph are denied.

use std::sync::Arc;

use serde_json::Value;

use crate::cache::Caches;
use crate::chain::{Attributes, Authorizer, Decision, UserInfo};
use crate::resources::find;

pub struct NodeAuthorizer {
    caches: Arc<Caches>,
}

impl NodeAuthorizer {
    pub fn new(caches: Arc<Caches>) -> NodeAuthorizer {
        NodeAuthorizer { caches }
    }

    /// The pods bound to `node`.
    fn pods_on(&self, node: &str) -> Vec<Value> {
        let Some(pods) = find("", "v1", "pods") else {
            return Vec::new();
        };
        let Some(cache) = self.caches.get(pods) else {
            return Vec::new();
        };
        let (items, _) = cache.list(&pods.key_prefix(), &|c| {
            c.field("spec.nodeName").as_deref() == Some(node)
        });
        items.iter().map(|c| c.object(pods)).collect()
    }

    fn pod_bound(&self, node: &str, namespace: &str, name: &str) -> bool {
        let Some(pods) = find("", "v1", "pods") else {
            return false;
        };
        let Some(cache) = self.caches.get(pods) else {
            return false;
        };
        cache
            .get(&pods.key(namespace, name))
            .0
            .is_some_and(|c| c.field("spec.nodeName").as_deref() == Some(node))
    }

    /// Whether a pod on `node` in `namespace` references `kind` `name`.
    fn referenced(&self, node: &str, kind: Reference, namespace: &str, name: &str) -> bool {
        self.pods_on(node).iter().any(|pod| {
            crate::object::namespace(pod) == namespace
                && references(pod, kind).iter().any(|n| n == name)
        })
    }

    /// Whether a PV is bound to a claim a pod on `node` uses.
    fn volume_referenced(&self, node: &str, pv: &str) -> bool {
        let Some(pvcs) = find("", "v1", "persistentvolumeclaims") else {
            return false;
        };
        self.pods_on(node).iter().any(|pod| {
            let ns = crate::object::namespace(pod);
            references(pod, Reference::Claim).iter().any(|claim| {
                self.caches.object(pvcs, ns, claim).is_some_and(|c| {
                    c.get("spec")
                        .and_then(|s| s.get("volumeName"))
                        .and_then(Value::as_str)
                        == Some(pv)
                })
            })
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Reference {
    Secret,
    ConfigMap,
    Claim,
    ServiceAccount,
}

/// The names of the objects of one kind a pod refers to: volumes (incl. projected sources),
/// env and envFrom of every container kind, image pull secrets, its service account.
fn references(pod: &Value, kind: Reference) -> Vec<String> {
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    let mut names = Vec::new();
    let mut push = |v: Option<&Value>| {
        if let Some(name) = v.and_then(Value::as_str) {
            names.push(name.to_string());
        }
    };
    if kind == Reference::ServiceAccount {
        push(spec.get("serviceAccountName"));
        return names;
    }
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        match kind {
            Reference::Secret => push(volume.get("secret").and_then(|s| s.get("secretName"))),
            Reference::ConfigMap => push(volume.get("configMap").and_then(|s| s.get("name"))),
            Reference::Claim => push(
                volume
                    .get("persistentVolumeClaim")
                    .and_then(|s| s.get("claimName")),
            ),
            Reference::ServiceAccount => {}
        }
        for source in volume
            .get("projected")
            .and_then(|p| p.get("sources"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match kind {
                Reference::Secret => push(source.get("secret").and_then(|s| s.get("name"))),
                Reference::ConfigMap => push(source.get("configMap").and_then(|s| s.get("name"))),
                _ => {}
            }
        }
    }
    if kind == Reference::Secret {
        for s in spec
            .get("imagePullSecrets")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(s.get("name"));
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for container in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for from in container
                .get("envFrom")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                match kind {
                    Reference::Secret => push(from.get("secretRef").and_then(|s| s.get("name"))),
                    Reference::ConfigMap => {
                        push(from.get("configMapRef").and_then(|s| s.get("name")))
                    }
                    _ => {}
                }
            }
            for env in container
                .get("env")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let from = env.get("valueFrom");
                match kind {
                    Reference::Secret => push(
                        from.and_then(|f| f.get("secretKeyRef"))
                            .and_then(|s| s.get("name")),
                    ),
                    Reference::ConfigMap => push(
                        from.and_then(|f| f.get("configMapKeyRef"))
                            .and_then(|s| s.get("name")),
                    ),
                    _ => {}
                }
            }
        }
    }
    names
}

fn node_name(user: &UserInfo) -> Option<&str> {
    if !user.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    user.name
        .strip_prefix("system:node:")
        .filter(|n| !n.is_empty())
}

/// Allowed, or no opinion with upstream's reason (RBAC may still allow it).
fn allow_if(condition: bool, node: &str) -> Decision {
    if condition {
        Decision::Allow
    } else {
        Decision::NoOpinionBecause(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

impl Authorizer for NodeAuthorizer {
    fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        let Some(node) = node_name(user) else {
            return Decision::NoOpinion;
        };
        if a.path.is_some() {
            return Decision::NoOpinion;
        }
        let allow_if_node = |condition: bool| allow_if(condition, node);
        let read = matches!(a.verb, "get" | "list" | "watch");
        let group = a.resource.group;
        let resource = a.resource.plural;
        let sub = a.subresource.as_str();
        match (group, resource, sub) {
            ("", "secrets", "") => allow_if_node(
                a.verb == "get" && self.referenced(node, Reference::Secret, &a.namespace, &a.name),
            ),
            ("", "configmaps", "") => allow_if_node(
                a.verb == "get"
                    && self.referenced(node, Reference::ConfigMap, &a.namespace, &a.name),
            ),
            ("", "persistentvolumeclaims", "") => allow_if_node(
                a.verb == "get" && self.referenced(node, Reference::Claim, &a.namespace, &a.name),
            ),
            ("", "persistentvolumes", "") => {
                allow_if_node(a.verb == "get" && self.volume_referenced(node, &a.name))
            }
            ("", "serviceaccounts", "token") => allow_if_node(
                a.verb == "create"
                    && self.referenced(node, Reference::ServiceAccount, &a.namespace, &a.name),
            ),
            ("", "pods", "") => match a.verb {
                "get" => allow_if_node(self.pod_bound(node, &a.namespace, &a.name)),
                "list" | "watch" => allow_if_node(a.field_selector.as_deref().is_some_and(|s| {
                    s.split(',')
                        .any(|r| r.trim() == format!("spec.nodeName={node}"))
                })),
                // Mirror pods; NodeRestriction admission checks they are the node's own.
                "create" | "delete" => Decision::Allow,
                _ => Decision::Deny,
            },
            ("", "pods", "status") => allow_if_node(
                matches!(a.verb, "update" | "patch") && self.pod_bound(node, &a.namespace, &a.name),
            ),
            ("", "pods", "eviction") => allow_if_node(a.verb == "create"),
            ("", "nodes", "") | ("", "nodes", "status") => match a.verb {
                "get" | "list" | "watch" if sub.is_empty() => Decision::Allow,
                "create" if sub.is_empty() => Decision::Allow,
                "update" | "patch" | "delete" | "get" => allow_if_node(a.name == node),
                _ => Decision::Deny,
            },
            ("coordination.k8s.io", "leases", "") => allow_if_node(
                a.namespace == "kube-node-lease"
                    && (a.name == node || (a.verb == "create" && a.name.is_empty())),
            ),
            ("storage.k8s.io", "csinodes", "") => {
                allow_if_node(read || a.name == node || a.verb == "create")
            }
            ("storage.k8s.io", "volumeattachments", "") => allow_if_node(a.verb == "get"),
            ("", "events", "") | ("events.k8s.io", "events", "") => {
                allow_if_node(matches!(a.verb, "create" | "update" | "patch"))
            }
            ("", "services", "")
            | ("", "endpoints", "")
            | ("discovery.k8s.io", "endpointslices", "") => allow_if_node(read),
            ("authentication.k8s.io", "tokenreviews", "")
            | ("authorization.k8s.io", "subjectaccessreviews", "") => {
                allow_if_node(a.verb == "create")
            }
            _ => Decision::NoOpinion,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_reference_what_their_volumes_env_and_pull_secrets_name() {
        let pod = json!({"spec": {
            "serviceAccountName": "sa",
            "imagePullSecrets": [{"name": "pull"}],
            "volumes": [
                {"name": "a", "secret": {"secretName": "vol-secret"}},
                {"name": "b", "configMap": {"name": "vol-cm"}},
                {"name": "c", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "d", "projected": {"sources": [{"secret": {"name": "proj-secret"}}, {"configMap": {"name": "proj-cm"}}]}},
            ],
            "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "init-env"}}]}],
            "containers": [{"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}}]}],
        }});
        let mut secrets = references(&pod, Reference::Secret);
        secrets.sort();
        assert_eq!(
            secrets,
            vec!["init-env", "proj-secret", "pull", "vol-secret"]
        );
        let mut cms = references(&pod, Reference::ConfigMap);
        cms.sort();
        assert_eq!(cms, vec!["env-cm", "proj-cm", "vol-cm"]);
        assert_eq!(references(&pod, Reference::Claim), vec!["data"]);
        assert_eq!(references(&pod, Reference::ServiceAccount), vec!["sa"]);
    }

    #[test]
    fn only_node_identities_are_judged() {
        let kubelet = UserInfo {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into()],
        };
        assert_eq!(node_name(&kubelet), Some("n1"));
        let pretender = UserInfo {
            name: "system:node:n1".into(),
            groups: vec![],
        };
        assert_eq!(node_name(&pretender), None);
    }
}
