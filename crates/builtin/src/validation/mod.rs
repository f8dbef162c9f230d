//! Validation of the built-in kinds (upstream's `pkg/apis/<group>/validation` and the update
//! rules of the registry strategies), with upstream's field paths and messages word for word.
//! Object metadata is validated by the API server for every kind and is not repeated here.

mod apps;
mod batch;
mod common;
mod core;
mod cron;
mod other;
mod pod;
mod scheduling;
mod service;

use apimachinery::FieldError;
use serde_json::Value;

/// Validates `obj` of the given kind for a create (`old` is `None`) or an update (`old` is the
/// stored object). Both objects are expected to be defaulted already. Unknown kinds: no errors.
pub fn validate(
    group: &str,
    version: &str,
    kind: &str,
    obj: &Value,
    old: Option<&Value>,
) -> Vec<FieldError> {
    let f: fn(&Value, Option<&Value>) -> Vec<FieldError> = match (group, version, kind) {
        ("", "v1", "Pod") => pod::pod,
        ("", "v1", "PodTemplate") => pod::pod_template,
        ("", "v1", "ReplicationController") => apps::replication_controller,
        ("", "v1", "Service") => service::service,
        ("", "v1", "Namespace") => core::namespace,
        ("", "v1", "Node") => core::node,
        ("", "v1", "Endpoints") => core::endpoints,
        ("", "v1", "ConfigMap") => core::config_map,
        ("", "v1", "Secret") => core::secret,
        ("", "v1", "ServiceAccount") => core::service_account,
        ("", "v1", "Event") => core::event,
        ("", "v1", "PersistentVolume") => core::persistent_volume,
        ("", "v1", "PersistentVolumeClaim") => core::persistent_volume_claim,
        ("", "v1", "ResourceQuota") => core::resource_quota,
        ("", "v1", "LimitRange") => core::limit_range,
        ("apps", "v1", "Deployment") => apps::deployment,
        ("apps", "v1", "ReplicaSet") => apps::replica_set,
        ("apps", "v1", "StatefulSet") => apps::stateful_set,
        ("apps", "v1", "DaemonSet") => apps::daemon_set,
        ("apps", "v1", "ControllerRevision") => apps::controller_revision,
        ("batch", "v1", "Job") => batch::job,
        ("batch", "v1", "CronJob") => batch::cron_job,
        ("discovery.k8s.io", "v1", "EndpointSlice") => other::endpoint_slice,
        ("coordination.k8s.io", "v1", "Lease") => other::lease,
        ("events.k8s.io", "v1", "Event") => other::events_event,
        ("rbac.authorization.k8s.io", "v1", "Role" | "ClusterRole") => other::role,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => other::role_binding,
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => other::cluster_role_binding,
        ("storage.k8s.io", "v1", "StorageClass") => other::storage_class,
        ("storage.k8s.io", "v1", "CSIDriver") => other::csi_driver,
        ("storage.k8s.io", "v1", "CSINode") => other::csi_node,
        ("storage.k8s.io", "v1", "VolumeAttachment") => other::volume_attachment,
        ("policy", "v1", "PodDisruptionBudget") => other::pod_disruption_budget,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => other::horizontal_pod_autoscaler,
        ("networking.k8s.io", "v1", "Ingress") => other::ingress,
        ("networking.k8s.io", "v1", "IngressClass") => other::ingress_class,
        ("networking.k8s.io", "v1", "NetworkPolicy") => other::network_policy,
        ("scheduling.k8s.io", "v1", "PriorityClass") => other::priority_class,
        ("node.k8s.io", "v1", "RuntimeClass") => other::runtime_class,
        _ => return Vec::new(),
    };
    f(obj, old)
}

#[cfg(test)]
mod tests;
