//! Our own minimal table of the strategic-merge-patch and list-type markers upstream's Go types
//! carry as struct tags (`patchStrategy`, `patchMergeKey`, `+listType`, `+listMapKey`).
//! k8s-openapi drops them, so the documents get them from here. Until the `patch` crate exposes
//! its walkable table, this is the hook: one row per marked property, applied by
//! `definitions::apply_patch_meta`. The rows cover the fields `kubectl apply` merges in
//! practice (containers, env, ports, volumes, conditions, owner references, ...).

/// `x-kubernetes-list-type` and, for `map`, its `x-kubernetes-list-map-keys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(&'static [&'static str]),
}

/// The markers of one property of one definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchMeta {
    pub definition: &'static str,
    pub property: &'static str,
    pub patch_strategy: Option<&'static str>,
    pub patch_merge_key: Option<&'static str>,
    pub list_type: Option<ListType>,
}

const fn merge(
    definition: &'static str,
    property: &'static str,
    key: &'static str,
    list_type: Option<ListType>,
) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        patch_strategy: Some("merge"),
        patch_merge_key: Some(key),
        list_type,
    }
}

const fn strategy(
    definition: &'static str,
    property: &'static str,
    patch_strategy: &'static str,
    key: Option<&'static str>,
    list_type: Option<ListType>,
) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        patch_strategy: Some(patch_strategy),
        patch_merge_key: key,
        list_type,
    }
}

const fn list(definition: &'static str, property: &'static str, list_type: ListType) -> PatchMeta {
    PatchMeta {
        definition,
        property,
        patch_strategy: None,
        patch_merge_key: None,
        list_type: Some(list_type),
    }
}

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];

macro_rules! core {
    ($name:literal) => {
        concat!("io.k8s.api.core.v1.", $name)
    };
}
macro_rules! apps {
    ($name:literal) => {
        concat!("io.k8s.api.apps.v1.", $name)
    };
}

/// Every marked property we know of, by upstream definition name.
pub static PATCH_META: &[PatchMeta] = &[
    // core/v1 PodSpec
    strategy(
        core!("PodSpec"),
        "volumes",
        "merge,retainKeys",
        Some("name"),
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("PodSpec"),
        "containers",
        "name",
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("PodSpec"),
        "initContainers",
        "name",
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("PodSpec"),
        "ephemeralContainers",
        "name",
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("PodSpec"),
        "imagePullSecrets",
        "name",
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("PodSpec"),
        "hostAliases",
        "ip",
        Some(ListType::Map(&["ip"])),
    ),
    merge(
        core!("PodSpec"),
        "topologySpreadConstraints",
        "topologyKey",
        Some(ListType::Map(&["topologyKey", "whenUnsatisfiable"])),
    ),
    merge(
        core!("PodSpec"),
        "schedulingGates",
        "name",
        Some(ListType::Map(NAME)),
    ),
    strategy(
        core!("PodSpec"),
        "resourceClaims",
        "merge,retainKeys",
        Some("name"),
        Some(ListType::Map(NAME)),
    ),
    list(core!("PodSpec"), "tolerations", ListType::Atomic),
    list(core!("PodSpec"), "readinessGates", ListType::Atomic),
    // core/v1 Container and EphemeralContainer
    merge(
        core!("Container"),
        "ports",
        "containerPort",
        Some(ListType::Map(&["containerPort", "protocol"])),
    ),
    merge(core!("Container"), "env", "name", Some(ListType::Map(NAME))),
    merge(
        core!("Container"),
        "volumeMounts",
        "mountPath",
        Some(ListType::Map(&["mountPath"])),
    ),
    merge(
        core!("Container"),
        "volumeDevices",
        "devicePath",
        Some(ListType::Map(&["devicePath"])),
    ),
    list(core!("Container"), "envFrom", ListType::Atomic),
    list(core!("Container"), "resizePolicy", ListType::Atomic),
    list(core!("Container"), "command", ListType::Atomic),
    list(core!("Container"), "args", ListType::Atomic),
    merge(
        core!("EphemeralContainer"),
        "ports",
        "containerPort",
        Some(ListType::Map(&["containerPort", "protocol"])),
    ),
    merge(
        core!("EphemeralContainer"),
        "env",
        "name",
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("EphemeralContainer"),
        "volumeMounts",
        "mountPath",
        Some(ListType::Map(&["mountPath"])),
    ),
    merge(
        core!("EphemeralContainer"),
        "volumeDevices",
        "devicePath",
        Some(ListType::Map(&["devicePath"])),
    ),
    list(core!("ResourceRequirements"), "claims", ListType::Map(NAME)),
    // core/v1 statuses
    merge(
        core!("PodStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("PodStatus"),
        "podIPs",
        "ip",
        Some(ListType::Map(&["ip"])),
    ),
    merge(
        core!("PodStatus"),
        "hostIPs",
        "ip",
        Some(ListType::Map(&["ip"])),
    ),
    strategy(
        core!("PodStatus"),
        "resourceClaimStatuses",
        "merge,retainKeys",
        Some("name"),
        Some(ListType::Map(NAME)),
    ),
    merge(
        core!("NodeStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("NodeStatus"),
        "addresses",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    strategy(
        core!("NodeSpec"),
        "podCIDRs",
        "merge",
        None,
        Some(ListType::Set),
    ),
    merge(
        core!("NamespaceStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("PersistentVolumeClaimStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("ReplicationControllerStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("ServiceStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        core!("ServiceSpec"),
        "ports",
        "port",
        Some(ListType::Map(&["port", "protocol"])),
    ),
    merge(core!("ServiceAccount"), "secrets", "name", None),
    // meta/v1 ObjectMeta
    strategy(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "finalizers",
        "merge",
        None,
        Some(ListType::Set),
    ),
    merge(
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        "ownerReferences",
        "uid",
        Some(ListType::Map(&["uid"])),
    ),
    // apps/v1
    strategy(
        apps!("DeploymentSpec"),
        "strategy",
        "retainKeys",
        None,
        None,
    ),
    merge(
        apps!("DeploymentStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        apps!("ReplicaSetStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        apps!("DaemonSetStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        apps!("StatefulSetStatus"),
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    list(
        apps!("StatefulSetSpec"),
        "volumeClaimTemplates",
        ListType::Atomic,
    ),
    // batch/v1, autoscaling/v2, policy/v1
    merge(
        "io.k8s.api.batch.v1.JobStatus",
        "conditions",
        "type",
        Some(ListType::Atomic),
    ),
    merge(
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
    merge(
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        "conditions",
        "type",
        Some(ListType::Map(TYPE)),
    ),
];

/// The markers of `definition.property`, if the table has a row for it.
pub fn lookup(definition: &str, property: &str) -> Option<&'static PatchMeta> {
    PATCH_META
        .iter()
        .find(|m| m.definition == definition && m.property == property)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_a_core_or_known_definition_once() {
        let mut seen = std::collections::BTreeSet::new();
        for row in PATCH_META {
            assert!(row.definition.starts_with("io.k8s."), "{}", row.definition);
            assert!(
                seen.insert((row.definition, row.property)),
                "duplicate {row:?}"
            );
            if row.patch_merge_key.is_some() {
                assert!(
                    row.patch_strategy.is_some(),
                    "key without strategy: {row:?}"
                );
            }
        }
    }

    #[test]
    fn containers_merge_on_name() {
        let row = lookup("io.k8s.api.core.v1.PodSpec", "containers");
        assert_eq!(row.and_then(|r| r.patch_strategy), Some("merge"));
        assert_eq!(row.and_then(|r| r.patch_merge_key), Some("name"));
    }
}
