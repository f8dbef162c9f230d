//! The errors of server-side apply, and upstream's conflict texts: the apiserver answers a
//! [`ApplyError::Conflicts`] with 409 `reason: Conflict`, [`conflicts_message`] as the message and
//! one `FieldManagerConflict` cause per [`Conflict`] ([`Conflict::message`], [`Conflict::field`]).

use crate::managed::Operation;

/// A field another manager owns and the applied configuration would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation.
    pub operation: Operation,
    /// Its API version (shown for `Update` managers).
    pub api_version: String,
    /// Its subresource, `""` for the main resource.
    pub subresource: String,
    /// The field, in upstream's path text (`.spec.replicas`).
    pub field: String,
    /// Upstream's description of the manager (`"kubectl" using apps/v1`).
    pub(crate) described: String,
    /// Upstream's manager identifier, which orders the conflicts.
    pub(crate) identifier: String,
}

impl Conflict {
    /// The cause message: `conflict with "kubectl" using apps/v1`.
    pub fn message(&self) -> String {
        format!("conflict with {}", self.described)
    }
}

/// The status message upstream's apiserver gives an apply conflict:
/// `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`, or for several
/// `Apply failed with N conflicts: conflicts with "m":\n- .a\n- .b` grouped by sorted manager.
pub fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.described, only.field
        );
    }
    let mut ids: Vec<(&str, &str)> = conflicts
        .iter()
        .map(|c| (c.identifier.as_str(), c.described.as_str()))
        .collect();
    ids.sort();
    ids.dedup();
    let mut lines = Vec::new();
    for (id, described) in ids {
        lines.push(format!("conflicts with {described}:"));
        for c in conflicts.iter().filter(|c| c.identifier == id) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// Other managers own fields the configuration changes, and `force` was false (409).
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration is not a valid object for this resource (400).
    #[error("{0}")]
    Invalid(String),
    /// The live object's `managedFields` cannot be decoded (500 upstream).
    #[error("failed to decode managed fields: {0}")]
    ManagedFields(String),
}
