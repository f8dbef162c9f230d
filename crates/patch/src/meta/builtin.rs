//! The patch metadata of the built-in kinds the apiserver serves, transcribed from the
//! `patchStrategy`/`patchMergeKey` struct tags of k8s.io/api (core/v1, apps/v1, batch/v1,
//! storage/v1, policy/v1, autoscaling/v2, ...).
//!
//! Kinds with no tags below their metadata (ConfigMap, Secret, RBAC, Ingress, ...) share
//! `META_ONLY`; a kind the table does not know gets `None` from [`builtin`].

use super::{FieldMeta, PatchMeta, PatchStrategy};

/// A field whose list merges by `key`, with no tagged fields inside its elements.
const fn merge(name: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta {
        name,
        strategy: Some(PatchStrategy::Merge),
        merge_key: Some(key),
        meta: None,
    }
}

/// A list of primitives with strategy `merge` (set union), such as `finalizers`.
const fn merge_set(name: &'static str) -> FieldMeta {
    FieldMeta {
        name,
        strategy: Some(PatchStrategy::Merge),
        merge_key: None,
        meta: None,
    }
}

/// A list merging by `key` whose elements have tagged fields of their own.
const fn merge_of(name: &'static str, key: &'static str, meta: &'static PatchMeta) -> FieldMeta {
    FieldMeta {
        name,
        strategy: Some(PatchStrategy::Merge),
        merge_key: Some(key),
        meta: Some(meta),
    }
}

/// `patchStrategy:"merge,retainKeys"` with a merge key (volumes, resource claims).
const fn merge_retain(name: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta {
        name,
        strategy: Some(PatchStrategy::MergeRetainKeys),
        merge_key: Some(key),
        meta: None,
    }
}

/// `patchStrategy:"retainKeys"` on a struct field (a union such as Deployment's strategy).
const fn retain(name: &'static str) -> FieldMeta {
    FieldMeta {
        name,
        strategy: Some(PatchStrategy::RetainKeys),
        merge_key: None,
        meta: None,
    }
}

/// An untagged struct field with tagged fields below it.
const fn nested(name: &'static str, meta: &'static PatchMeta) -> FieldMeta {
    FieldMeta {
        name,
        strategy: None,
        merge_key: None,
        meta: Some(meta),
    }
}

// Shared types.

static OBJECT_META: PatchMeta =
    PatchMeta::new(&[merge_set("finalizers"), merge("ownerReferences", "uid")]);

/// Container, and EphemeralContainerCommon which repeats its tags.
static CONTAINER: PatchMeta = PatchMeta::new(&[
    merge("ports", "containerPort"),
    merge("env", "name"),
    merge("volumeMounts", "mountPath"),
    merge("volumeDevices", "devicePath"),
]);

static POD_SPEC: PatchMeta = PatchMeta::new(&[
    merge_retain("volumes", "name"),
    merge_of("initContainers", "name", &CONTAINER),
    merge_of("containers", "name", &CONTAINER),
    merge_of("ephemeralContainers", "name", &CONTAINER),
    merge("imagePullSecrets", "name"),
    merge("hostAliases", "ip"),
    merge("topologySpreadConstraints", "topologyKey"),
    merge("schedulingGates", "name"),
    merge_retain("resourceClaims", "name"),
]);

static POD_STATUS: PatchMeta = PatchMeta::new(&[
    merge("conditions", "type"),
    merge("podIPs", "ip"),
    merge("hostIPs", "ip"),
    merge_retain("resourceClaimStatuses", "name"),
]);

static POD_TEMPLATE_SPEC: PatchMeta =
    PatchMeta::new(&[nested("metadata", &OBJECT_META), nested("spec", &POD_SPEC)]);

/// Any status whose only tagged field is `conditions` (merge key `type`).
static CONDITIONS_STATUS: PatchMeta = PatchMeta::new(&[merge("conditions", "type")]);

/// A workload spec whose only tagged field is its pod template.
static TEMPLATE_SPEC: PatchMeta = PatchMeta::new(&[nested("template", &POD_TEMPLATE_SPEC)]);

static JOB_TEMPLATE_SPEC: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &TEMPLATE_SPEC),
]);

// Kinds.

static META_ONLY: PatchMeta = PatchMeta::new(&[nested("metadata", &OBJECT_META)]);

static WITH_CONDITIONS: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("status", &CONDITIONS_STATUS),
]);

static POD: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &POD_SPEC),
    nested("status", &POD_STATUS),
]);

static POD_TEMPLATE: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("template", &POD_TEMPLATE_SPEC),
]);

static NODE: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &PatchMeta::new(&[merge_set("podCIDRs")])),
    nested(
        "status",
        &PatchMeta::new(&[merge("conditions", "type"), merge("addresses", "type")]),
    ),
]);

static SERVICE: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &PatchMeta::new(&[merge("ports", "port")])),
    nested("status", &CONDITIONS_STATUS),
]);

static SERVICE_ACCOUNT: PatchMeta =
    PatchMeta::new(&[nested("metadata", &OBJECT_META), merge("secrets", "name")]);

/// ReplicationController, ReplicaSet, StatefulSet, DaemonSet and Job: a pod template in the spec
/// and conditions in the status.
static WORKLOAD: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &TEMPLATE_SPEC),
    nested("status", &CONDITIONS_STATUS),
]);

static DEPLOYMENT: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested(
        "spec",
        &PatchMeta::new(&[retain("strategy"), nested("template", &POD_TEMPLATE_SPEC)]),
    ),
    nested("status", &CONDITIONS_STATUS),
]);

static CRON_JOB: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested(
        "spec",
        &PatchMeta::new(&[nested("jobTemplate", &JOB_TEMPLATE_SPEC)]),
    ),
]);

static CSI_NODE: PatchMeta = PatchMeta::new(&[
    nested("metadata", &OBJECT_META),
    nested("spec", &PatchMeta::new(&[merge("drivers", "name")])),
]);

/// The patch metadata of a built-in kind (`group` is `""` for the core group), or `None` for a
/// kind the apiserver does not serve from this table (custom resources have no strategic merge
/// patch metadata).
pub fn builtin(group: &str, version: &str, kind: &str) -> Option<&'static PatchMeta> {
    let meta = match (group, version, kind) {
        ("", "v1", "Pod") => &POD,
        ("", "v1", "Node") => &NODE,
        ("", "v1", "Service") => &SERVICE,
        ("", "v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "v1", "PodTemplate") => &POD_TEMPLATE,
        ("", "v1", "ReplicationController") => &WORKLOAD,
        ("", "v1", "Namespace" | "PersistentVolumeClaim") => &WITH_CONDITIONS,
        (
            "",
            "v1",
            "Endpoints" | "ConfigMap" | "Secret" | "Event" | "PersistentVolume" | "ResourceQuota"
            | "LimitRange",
        ) => &META_ONLY,
        ("apps", "v1", "Deployment") => &DEPLOYMENT,
        ("apps", "v1", "ReplicaSet" | "StatefulSet" | "DaemonSet") => &WORKLOAD,
        ("apps", "v1", "ControllerRevision") => &META_ONLY,
        ("batch", "v1", "Job") => &WORKLOAD,
        ("batch", "v1", "CronJob") => &CRON_JOB,
        ("discovery.k8s.io", "v1", "EndpointSlice") => &META_ONLY,
        ("coordination.k8s.io", "v1", "Lease") => &META_ONLY,
        ("events.k8s.io", "v1", "Event") => &META_ONLY,
        (
            "rbac.authorization.k8s.io",
            "v1",
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding",
        ) => &META_ONLY,
        ("storage.k8s.io", "v1", "CSINode") => &CSI_NODE,
        ("storage.k8s.io", "v1", "StorageClass" | "CSIDriver" | "VolumeAttachment") => &META_ONLY,
        ("policy", "v1", "PodDisruptionBudget") => &WITH_CONDITIONS,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => &WITH_CONDITIONS,
        ("networking.k8s.io", "v1", "Ingress" | "IngressClass" | "NetworkPolicy") => &META_ONLY,
        ("scheduling.k8s.io", "v1", "PriorityClass") => &META_ONLY,
        ("node.k8s.io", "v1", "RuntimeClass") => &META_ONLY,
        _ => return None,
    };
    Some(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Follows a path of field names down the tree and returns the last field.
    fn field(meta: &'static PatchMeta, path: &[&str]) -> Option<&'static FieldMeta> {
        let (last, parents) = path.split_last()?;
        let mut cur = meta;
        for name in parents {
            cur = cur.field(name)?.meta?;
        }
        cur.field(last)
    }

    /// (group, version, kind, path to the field, strategy, merge key)
    type TagCase = (
        &'static str,
        &'static str,
        &'static str,
        &'static [&'static str],
        PatchStrategy,
        Option<&'static str>,
    );

    #[test]
    fn tags_match_upstream_struct_tags() {
        use PatchStrategy::*;
        let cases: &[TagCase] = &[
            ("", "v1", "Pod", &["metadata", "finalizers"], Merge, None),
            (
                "",
                "v1",
                "Pod",
                &["metadata", "ownerReferences"],
                Merge,
                Some("uid"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "containers"],
                Merge,
                Some("name"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "initContainers"],
                Merge,
                Some("name"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "ephemeralContainers"],
                Merge,
                Some("name"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "containers", "ports"],
                Merge,
                Some("containerPort"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "containers", "env"],
                Merge,
                Some("name"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "containers", "volumeMounts"],
                Merge,
                Some("mountPath"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "volumes"],
                MergeRetainKeys,
                Some("name"),
            ),
            (
                "",
                "v1",
                "Pod",
                &["spec", "imagePullSecrets"],
                Merge,
                Some("name"),
            ),
            ("", "v1", "Pod", &["spec", "hostAliases"], Merge, Some("ip")),
            (
                "",
                "v1",
                "Pod",
                &["status", "conditions"],
                Merge,
                Some("type"),
            ),
            ("", "v1", "Node", &["spec", "podCIDRs"], Merge, None),
            (
                "",
                "v1",
                "Node",
                &["status", "addresses"],
                Merge,
                Some("type"),
            ),
            ("", "v1", "Service", &["spec", "ports"], Merge, Some("port")),
            (
                "",
                "v1",
                "ServiceAccount",
                &["secrets"],
                Merge,
                Some("name"),
            ),
            (
                "apps",
                "v1",
                "Deployment",
                &["spec", "strategy"],
                RetainKeys,
                None,
            ),
            (
                "apps",
                "v1",
                "Deployment",
                &["spec", "template", "spec", "containers", "env"],
                Merge,
                Some("name"),
            ),
            (
                "apps",
                "v1",
                "DaemonSet",
                &["spec", "template", "metadata", "finalizers"],
                Merge,
                None,
            ),
            (
                "batch",
                "v1",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers",
                ],
                Merge,
                Some("name"),
            ),
            (
                "storage.k8s.io",
                "v1",
                "CSINode",
                &["spec", "drivers"],
                Merge,
                Some("name"),
            ),
            (
                "policy",
                "v1",
                "PodDisruptionBudget",
                &["status", "conditions"],
                Merge,
                Some("type"),
            ),
        ];
        for (group, version, kind, path, strategy, key) in cases {
            let meta = builtin(group, version, kind).expect("kind is served");
            let f = field(meta, path).unwrap_or_else(|| panic!("{kind} {path:?} has metadata"));
            assert_eq!(f.strategy, Some(*strategy), "{kind} {path:?}");
            assert_eq!(f.merge_key, *key, "{kind} {path:?}");
        }
    }

    #[test]
    fn untagged_fields_have_no_metadata() {
        // Tolerations and node taints are atomic lists upstream: no patch tags.
        let pod = builtin("", "v1", "Pod").expect("pod");
        assert!(field(pod, &["spec", "tolerations"]).is_none());
        let node = builtin("", "v1", "Node").expect("node");
        assert!(field(node, &["spec", "taints"]).is_none());
        assert!(field(pod, &["metadata", "labels"]).is_none());
    }

    #[test]
    fn every_served_kind_has_object_meta() {
        let kinds = [
            ("", "Namespace"),
            ("", "Pod"),
            ("", "Node"),
            ("", "Service"),
            ("", "Endpoints"),
            ("", "ConfigMap"),
            ("", "Secret"),
            ("", "ServiceAccount"),
            ("", "Event"),
            ("", "PersistentVolume"),
            ("", "PersistentVolumeClaim"),
            ("", "ResourceQuota"),
            ("", "LimitRange"),
            ("", "PodTemplate"),
            ("", "ReplicationController"),
            ("apps", "Deployment"),
            ("apps", "ReplicaSet"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ControllerRevision"),
            ("batch", "Job"),
            ("batch", "CronJob"),
            ("discovery.k8s.io", "EndpointSlice"),
            ("coordination.k8s.io", "Lease"),
            ("events.k8s.io", "Event"),
            ("rbac.authorization.k8s.io", "Role"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
            ("storage.k8s.io", "StorageClass"),
            ("storage.k8s.io", "CSIDriver"),
            ("storage.k8s.io", "CSINode"),
            ("storage.k8s.io", "VolumeAttachment"),
            ("policy", "PodDisruptionBudget"),
            ("networking.k8s.io", "Ingress"),
            ("networking.k8s.io", "IngressClass"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("scheduling.k8s.io", "PriorityClass"),
            ("node.k8s.io", "RuntimeClass"),
        ];
        for (group, kind) in kinds {
            let meta = builtin(group, "v1", kind).unwrap_or_else(|| panic!("{group}/{kind}"));
            let f = field(meta, &["metadata", "ownerReferences"]);
            assert_eq!(f.and_then(|f| f.merge_key), Some("uid"), "{group}/{kind}");
        }
        assert!(builtin("autoscaling", "v2", "HorizontalPodAutoscaler").is_some());
        assert!(builtin("example.com", "v1", "Widget").is_none());
        assert!(builtin("apps", "v1beta1", "Deployment").is_none());
    }

    #[test]
    fn tree_can_be_walked_for_openapi() {
        fn count(meta: &'static PatchMeta, depth: usize, out: &mut Vec<String>) {
            for f in meta.fields() {
                if let Some(s) = f.strategy {
                    out.push(format!("{}{}={}", " ".repeat(depth), f.name, s.as_str()));
                }
                if let Some(m) = f.meta {
                    count(m, depth + 1, out);
                }
            }
        }
        let mut tags = Vec::new();
        count(
            builtin("apps", "v1", "Deployment").expect("deployment"),
            0,
            &mut tags,
        );
        assert!(tags.iter().any(|t| t.trim() == "strategy=retainKeys"));
        assert!(tags.iter().any(|t| t.trim() == "volumes=merge,retainKeys"));
        assert!(tags.iter().any(|t| t.trim() == "containers=merge"));
    }
}
