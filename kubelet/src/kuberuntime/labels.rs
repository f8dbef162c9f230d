//! The labels and annotations the kubelet puts on CRI sandboxes and containers, with
//! upstream's keys, so that a runtime's objects can be traced back to their pod and container
//! (and `crictl` shows what it shows for upstream's kubelet).

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};

pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const KUBERNETES_MANAGED: &str = "io.kubernetes.container.managed";
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
pub const CONTAINER_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const CONTAINER_TERMINATION_MESSAGE_PATH: &str =
    "io.kubernetes.container.terminationMessagePath";
pub const CONTAINER_TERMINATION_MESSAGE_POLICY: &str =
    "io.kubernetes.container.terminationMessagePolicy";
pub const POD_TERMINATION_GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const POD_DELETION_GRACE_PERIOD: &str = "io.kubernetes.pod.deletionGracePeriod";

fn meta(pod: &Pod) -> (&str, &str, &str) {
    (
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default(),
    )
}

/// The sandbox's labels: the pod's own labels plus the identifying ones.
pub fn sandbox_labels(pod: &Pod) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = pod
        .metadata
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (name, namespace, uid) = meta(pod);
    labels.insert(POD_NAME.into(), name.into());
    labels.insert(POD_NAMESPACE.into(), namespace.into());
    labels.insert(POD_UID.into(), uid.into());
    labels.insert(KUBERNETES_MANAGED.into(), "true".into());
    labels
}

/// The sandbox's annotations: the pod's annotations.
pub fn sandbox_annotations(pod: &Pod) -> HashMap<String, String> {
    pod.metadata
        .annotations
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn container_labels(pod: &Pod, container: &Container) -> HashMap<String, String> {
    let (name, namespace, uid) = meta(pod);
    HashMap::from([
        (POD_NAME.to_string(), name.to_string()),
        (POD_NAMESPACE.to_string(), namespace.to_string()),
        (POD_UID.to_string(), uid.to_string()),
        (CONTAINER_NAME.to_string(), container.name.clone()),
        (KUBERNETES_MANAGED.to_string(), "true".to_string()),
    ])
}

pub fn container_annotations(
    pod: &Pod,
    container: &Container,
    restart_count: u32,
) -> HashMap<String, String> {
    let mut a = HashMap::from([
        (
            CONTAINER_HASH.to_string(),
            format!("{:x}", container_hash(container)),
        ),
        (
            CONTAINER_RESTART_COUNT.to_string(),
            restart_count.to_string(),
        ),
        (
            CONTAINER_TERMINATION_MESSAGE_PATH.to_string(),
            container
                .termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            CONTAINER_TERMINATION_MESSAGE_POLICY.to_string(),
            container
                .termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
    ]);
    if let Some(grace) = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
    {
        a.insert(POD_TERMINATION_GRACE_PERIOD.into(), grace.to_string());
    }
    a
}

/// A hash of the container's spec: a running container whose spec hash differs from the
/// pod's is restarted (only the image can change in a pod's containers).
/// FNV-1a over the spec's JSON, stable across kubelet builds (a restarted kubelet must not
/// see every container as changed).
pub fn container_hash(container: &Container) -> u64 {
    let text = serde_json::to_string(container).unwrap_or_default();
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The pod's log directory under `root` (upstream: /var/log/pods/<ns>_<name>_<uid>).
pub fn pod_log_dir(root: &std::path::Path, pod: &Pod) -> std::path::PathBuf {
    let (name, namespace, uid) = meta(pod);
    root.join(format!("{namespace}_{name}_{uid}"))
}

/// A container's log file relative to the pod's log directory: `<container>/<restart>.log`.
pub fn container_log_path(container: &str, restart_count: u32) -> String {
    format!("{container}/{restart_count}.log")
}
