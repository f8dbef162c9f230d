//! The RBAC authorizer (`--authorization-mode=RBAC`): the `rbac` crate's policy over the Roles,
//! ClusterRoles and bindings in the watch caches, rebuilt only when one of them changed.
//!
//! Aggregated ClusterRoles (admin, edit, view, ...) get their rules here from the roles their
//! selectors match, so that they work before a controller-manager runs (upstream's
//! clusterrole-aggregation controller writes the same rules into the stored objects).

use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::cache::Caches;
use crate::chain::{Attributes, Authorizer, Decision, UserInfo};
use crate::resources::{find, Resource};

const RBAC: &str = "rbac.authorization.k8s.io";

pub struct RbacAuthorizer {
    caches: Arc<Caches>,
    /// The policy and the cache revisions it was built from.
    built: Mutex<Option<([u64; 4], Arc<rbac::Policy>)>>,
}

impl RbacAuthorizer {
    pub fn new(caches: Arc<Caches>) -> RbacAuthorizer {
        RbacAuthorizer {
            caches,
            built: Mutex::new(None),
        }
    }

    fn resources() -> [Option<&'static Resource>; 4] {
        [
            find(RBAC, "v1", "roles"),
            find(RBAC, "v1", "clusterroles"),
            find(RBAC, "v1", "rolebindings"),
            find(RBAC, "v1", "clusterrolebindings"),
        ]
    }

    fn policy(&self) -> Arc<rbac::Policy> {
        let resources = Self::resources();
        let revisions = resources.map(|r| {
            r.and_then(|r| self.caches.get(r))
                .map_or(0, |c| c.revision())
        });
        if let Ok(built) = self.built.lock() {
            if let Some((at, policy)) = built.as_ref() {
                if *at == revisions {
                    return policy.clone();
                }
            }
        }
        let [roles, cluster_roles, role_bindings, cluster_role_bindings] =
            resources.map(|r| r.map(|r| self.caches.objects(r, None)).unwrap_or_default());
        let cluster_roles = with_aggregated_rules(cluster_roles);
        let policy = Arc::new(rbac::Policy::new(
            roles,
            cluster_roles,
            role_bindings,
            cluster_role_bindings,
        ));
        if let Ok(mut built) = self.built.lock() {
            *built = Some((revisions, policy.clone()));
        }
        policy
    }
}

fn with_aggregated_rules(mut cluster_roles: Vec<Value>) -> Vec<Value> {
    for (name, rules) in rbac::aggregated_rules(&cluster_roles) {
        if let Some(role) = cluster_roles
            .iter_mut()
            .find(|r| crate::object::name(r) == name)
        {
            role["rules"] = Value::Array(rules);
        }
    }
    cluster_roles
}

impl RbacAuthorizer {
    /// SelfSubjectRulesReview's rules.
    pub fn rules_for(&self, user: &rbac::User<'_>, namespace: &str) -> (Vec<Value>, Vec<Value>) {
        self.policy().rules_for(user, namespace)
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        let request = rbac::Request {
            verb: a.verb,
            api_group: a.resource.group,
            resource: a.resource.plural,
            subresource: &a.subresource,
            name: &a.name,
            namespace: &a.namespace,
            non_resource_path: a.path.as_deref(),
        };
        let who = rbac::User {
            name: &user.name,
            groups: &user.groups,
        };
        let (allowed, reason) = self.policy().authorize(&who, &request);
        if allowed {
            tracing::trace!(user = %user.name, %reason, "allowed");
            Decision::Allow
        } else {
            Decision::NoOpinion
        }
    }
}
