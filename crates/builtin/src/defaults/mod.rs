//! Defaulting of the built-in kinds: upstream's `pkg/apis/<group>/v1/defaults.go` together with
//! the generated `zz_generated.defaults.go` that applies the nested types' defaults (pod
//! templates, containers, volumes, ...) wherever they occur. Feature-gated defaults follow the
//! gates' 1.33 defaults.

mod core;
mod other;
pub(crate) mod pod;
mod workloads;

pub use workloads::generate_job_selector;

use crate::json::Obj;
use serde_json::Value;

/// Applies the kind's defaults in place; unknown kinds and non-object values are left alone.
pub fn default(group: &str, version: &str, kind: &str, obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let f: fn(&mut Obj) = match (group, version, kind) {
        ("", "v1", "Pod") => core::pod,
        ("", "v1", "PodTemplate") => core::pod_template,
        ("", "v1", "ReplicationController") => core::replication_controller,
        ("", "v1", "Service") => core::service,
        ("", "v1", "Namespace") => core::namespace,
        ("", "v1", "Node") => core::node,
        ("", "v1", "Endpoints") => core::endpoints,
        ("", "v1", "Secret") => core::secret,
        ("", "v1", "PersistentVolume") => core::persistent_volume,
        ("", "v1", "PersistentVolumeClaim") => core::persistent_volume_claim,
        ("", "v1", "LimitRange") => core::limit_range,
        ("apps", "v1", "Deployment") => workloads::deployment,
        ("apps", "v1", "ReplicaSet") => workloads::replica_set,
        ("apps", "v1", "StatefulSet") => workloads::stateful_set,
        ("apps", "v1", "DaemonSet") => workloads::daemon_set,
        ("batch", "v1", "Job") => workloads::job,
        ("batch", "v1", "CronJob") => workloads::cron_job,
        ("discovery.k8s.io", "v1", "EndpointSlice") => other::endpoint_slice,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            other::role_binding
        }
        ("storage.k8s.io", "v1", "StorageClass") => other::storage_class,
        ("storage.k8s.io", "v1", "CSIDriver") => other::csi_driver,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => other::horizontal_pod_autoscaler,
        ("networking.k8s.io", "v1", "NetworkPolicy") => other::network_policy,
        ("scheduling.k8s.io", "v1", "PriorityClass") => other::priority_class,
        _ => return,
    };
    f(o);
}

#[cfg(test)]
mod tests;
