//! RBAC authorization as upstream's `rbac.authorization.k8s.io/v1` defines it, over plain
//! `serde_json::Value` objects so the apiserver can feed it straight from its watch caches.
//!
//! - [`rule`]: one `PolicyRule`, how it matches a request, and how one rule set covers another.
//! - [`authorizer`]: [`Policy`], the bindings-to-rules resolver behind `Authorize` and
//!   SelfSubjectRulesReview.
//! - [`aggregation`]: the clusterrole-aggregation controller's rule computation.
//! - [`bootstrap`]: the roles and bindings kube-apiserver creates at start.
//! - [`reconcile`]: how a bootstrap object is merged into the stored one on every start.

pub mod aggregation;
pub mod authorizer;
pub mod bootstrap;
pub mod reconcile;
pub mod rule;
mod selector;

pub use aggregation::aggregated_rules;
pub use authorizer::{Policy, Request, User};
pub use bootstrap::{bootstrap_policy, BootstrapPolicy};
pub use reconcile::reconcile;
pub use rule::PolicyRule;

/// The annotation that lets an admin opt a bootstrap object out of reconciliation (`"false"`).
pub const AUTO_UPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// The API group every `roleRef` and User/Group subject names.
pub const GROUP_NAME: &str = "rbac.authorization.k8s.io";
