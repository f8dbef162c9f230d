//! Which present-but-zero fields upstream leaves out of JSON.
//!
//! gogo-protobuf writes every non-pointer Go field, zero or not, so the wire cannot tell
//! `int32 minReadySeconds,omitempty` (zero: not printed) from `*int32 replicas` (zero: printed).
//! Keeping a zero never changes what an object means, so the decoder keeps zero numbers and
//! booleans except for the value fields below, which appear in nearly every object of the kinds
//! the apiserver serves and would otherwise clutter its answers. Empty `+optional` strings are
//! dropped except for the pointer fields below, where `""` means something different from unset.

/// `(message, JSON field)` of `omitempty` value fields whose zero upstream does not print.
const DROP_ZERO: &[(&str, &[&str])] = &[
    ("apimachinery.pkg.apis.meta.v1.ObjectMeta", &["generation"]),
    ("api.apps.v1.DeploymentSpec", &["minReadySeconds", "paused"]),
    (
        "api.apps.v1.DeploymentStatus",
        &[
            "observedGeneration",
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        ],
    ),
    ("api.apps.v1.ReplicaSetSpec", &["minReadySeconds"]),
    (
        "api.apps.v1.ReplicaSetStatus",
        &[
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
    ),
    ("api.apps.v1.StatefulSetSpec", &["minReadySeconds"]),
    (
        "api.apps.v1.StatefulSetStatus",
        &[
            "observedGeneration",
            "readyReplicas",
            "currentReplicas",
            "updatedReplicas",
        ],
    ),
    ("api.apps.v1.DaemonSetSpec", &["minReadySeconds"]),
    (
        "api.apps.v1.DaemonSetStatus",
        &[
            "observedGeneration",
            "updatedNumberScheduled",
            "numberAvailable",
            "numberUnavailable",
        ],
    ),
    (
        "api.core.v1.ReplicationControllerSpec",
        &["minReadySeconds"],
    ),
    (
        "api.core.v1.ReplicationControllerStatus",
        &[
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ],
    ),
    (
        "api.core.v1.PodSpec",
        &["hostNetwork", "hostPID", "hostIPC"],
    ),
    ("api.core.v1.Container", &["stdin", "stdinOnce", "tty"]),
    (
        "api.core.v1.EphemeralContainerCommon",
        &["stdin", "stdinOnce", "tty"],
    ),
    ("api.core.v1.ContainerPort", &["hostPort"]),
    ("api.core.v1.VolumeMount", &["readOnly"]),
    ("api.core.v1.ServicePort", &["nodePort"]),
    (
        "api.core.v1.ServiceSpec",
        &["healthCheckNodePort", "publishNotReadyAddresses"],
    ),
    ("api.core.v1.NodeSpec", &["unschedulable"]),
    ("api.core.v1.Event", &["count"]),
    ("api.batch.v1.JobStatus", &["active", "succeeded", "failed"]),
    ("api.autoscaling.v1.ScaleSpec", &["replicas"]),
    (
        "api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        &["currentReplicas"],
    ),
    (
        "api.policy.v1.PodDisruptionBudgetStatus",
        &["observedGeneration"],
    ),
    ("api.events.v1.Event", &["deprecatedCount"]),
];

/// `*string` fields where `""` is a choice (e.g. "no storage class") rather than "unset".
const KEEP_EMPTY_STRING: &[(&str, &[&str])] = &[(
    "api.core.v1.PersistentVolumeClaimSpec",
    &["storageClassName", "volumeAttributesClassName"],
)];

fn listed(table: &[(&str, &[&str])], message: &str, field: &str) -> bool {
    table
        .iter()
        .any(|(m, fields)| *m == message && fields.contains(&field))
}

pub(crate) fn drops_zero(message: &str, field: &str) -> bool {
    listed(DROP_ZERO, message, field)
}

pub(crate) fn keeps_empty_string(message: &str, field: &str) -> bool {
    listed(KEEP_EMPTY_STRING, message, field)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema_generated::MESSAGES;

    /// A renamed message or field in a regenerated table must not silently disable an entry.
    #[test]
    fn every_listed_field_exists() {
        for table in [DROP_ZERO, KEEP_EMPTY_STRING] {
            for (message, fields) in table {
                let m = MESSAGES.iter().find(|m| m.name == *message);
                let m = m.unwrap_or_else(|| panic!("no message {message}"));
                for field in *fields {
                    assert!(
                        m.fields.iter().any(|f| f.json == *field),
                        "{message} has no {field}"
                    );
                }
            }
        }
    }
}
