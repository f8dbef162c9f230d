//! Pod Security Standards evaluation, shaped like upstream's PodSecurity admission
//! (k8s.io/pod-security-admission): namespace label parsing, the per-level checks over
//! pod specs given as JSON, and the exact forbidden / warning message texts.
//!
//! The crate is pure: it never talks to the API. The apiserver's admission layer decides
//! which requests to evaluate (pods are enforced; workload pod templates only warn and
//! audit), applies exemptions, and wraps [`forbidden_message`] in a 403 `Status`
//! (`pods "x" is forbidden: violates PodSecurity ...`).

mod checks;
mod level;
mod message;
mod policy;
mod template;

pub use checks::{check, check_version};
pub use level::{Level, PolicyVersion};
pub use message::{forbidden_message, warning_message};
pub use policy::{
    namespace_policy, resolve_namespace_policy, NamespacePolicy, AUDIT_LEVEL_LABEL,
    AUDIT_VERSION_LABEL, ENFORCE_LEVEL_LABEL, ENFORCE_VERSION_LABEL, WARN_LEVEL_LABEL,
    WARN_VERSION_LABEL,
};
pub use template::pod_metadata_and_spec;
