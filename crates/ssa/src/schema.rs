//! What server-side apply needs to know about each built-in kind: which lists are atomic, sets
//! or maps keyed by some fields, which structs are atomic, and which struct fields exist even in
//! an empty object (non-pointer Go structs, which upstream's create compares against).
//!
//! Transcribed from the `+listType`, `+listMapKey`, `+structType=atomic` and
//! `x-kubernetes-map-type` markers of k8s.io/api. Only fields that matter are listed: an unlisted
//! object field is a granular struct, an unlisted list is atomic (upstream's default for a list
//! with no marker). Kinds not in the table get [`DEDUCED`]: every map granular with its entries
//! owned individually, every list atomic, like upstream's deduced schema for schemaless objects.

/// The type of an object node: its listed fields, whether it is atomic, and whether its keys are
/// declared struct fields (built-in types) or free map entries (the deduced schema).
#[derive(Debug)]
pub struct Schema {
    fields: &'static [Field],
    atomic: bool,
    deduced: bool,
}

/// One listed field of a struct.
#[derive(Debug)]
pub struct Field {
    /// The JSON field name.
    pub name: &'static str,
    /// Its type.
    pub kind: FieldKind,
    /// Whether an empty Go object serializes the field: a non-pointer struct (as `{}`), or a list
    /// without `omitempty` (as `null`).
    pub always: bool,
}

/// The type of a listed field.
#[derive(Debug)]
pub enum FieldKind {
    /// An object with this schema.
    Struct(&'static Schema),
    /// A list of this type whose elements, when objects, have this schema.
    List(ListType, &'static Schema),
}

/// How a list merges and is owned (`x-kubernetes-list-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Replaced and owned as a whole.
    Atomic,
    /// Items are scalars, owned one by one (`v:<value>`).
    Set,
    /// Items are objects identified by these key fields (`k:{...}`).
    Map(&'static [ListKey]),
}

/// A key field of a map list, with the default upstream's schema declares for it: a missing key
/// field takes its default instead of being an error (Container ports' `protocol: TCP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListKey {
    /// The key field's name.
    pub name: &'static str,
    /// The default string value, if the schema has one.
    pub default: Option<&'static str>,
}

impl Schema {
    /// Whether the object is owned and replaced as a whole (`x-kubernetes-map-type: atomic`).
    pub fn is_atomic(&self) -> bool {
        self.atomic
    }

    /// Whether keys are free map entries (each owned as a member) rather than declared fields.
    pub fn is_deduced(&self) -> bool {
        self.deduced
    }

    /// The listed field named `name`.
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every listed field.
    pub fn fields(&self) -> impl Iterator<Item = &'static Field> {
        self.fields.iter()
    }

    /// The list type of the list at `path` (field names from this struct down, through list
    /// elements transparently), or `None` if no list is declared there (which means atomic).
    pub fn list_type(&self, path: &[&str]) -> Option<ListType> {
        let (last, parents) = path.split_last()?;
        let mut cur: &Schema = self;
        for name in parents {
            cur = match &cur.field(name)?.kind {
                FieldKind::Struct(s) | FieldKind::List(_, s) => s,
            };
        }
        match &cur.field(last)?.kind {
            FieldKind::List(lt, _) => Some(*lt),
            FieldKind::Struct(_) => None,
        }
    }
}

const fn granular(fields: &'static [Field]) -> Schema {
    Schema {
        fields,
        atomic: false,
        deduced: false,
    }
}

/// A struct with no listed fields: granular, every list in it atomic.
pub(crate) static EMPTY: Schema = granular(&[]);
/// `+structType=atomic` / `x-kubernetes-map-type: atomic`.
static ATOMIC: Schema = Schema {
    fields: &[],
    atomic: true,
    deduced: false,
};
/// The schema of kinds the table does not know.
pub static DEDUCED: Schema = Schema {
    fields: &[],
    atomic: false,
    deduced: true,
};

const fn obj(name: &'static str, s: &'static Schema) -> Field {
    Field {
        name,
        kind: FieldKind::Struct(s),
        always: false,
    }
}
/// A non-pointer struct field.
const fn always(name: &'static str, s: &'static Schema) -> Field {
    Field {
        name,
        kind: FieldKind::Struct(s),
        always: true,
    }
}
const fn atomic(name: &'static str) -> Field {
    obj(name, &ATOMIC)
}
const fn map_list(name: &'static str, keys: &'static [ListKey], elem: &'static Schema) -> Field {
    Field {
        name,
        kind: FieldKind::List(ListType::Map(keys), elem),
        always: false,
    }
}
/// A map list Go serializes as `null` when empty (no `omitempty`).
const fn map_list_always(
    name: &'static str,
    keys: &'static [ListKey],
    elem: &'static Schema,
) -> Field {
    Field {
        name,
        kind: FieldKind::List(ListType::Map(keys), elem),
        always: true,
    }
}
const fn set(name: &'static str) -> Field {
    Field {
        name,
        kind: FieldKind::List(ListType::Set, &EMPTY),
        always: false,
    }
}
const fn atomic_list(name: &'static str) -> Field {
    Field {
        name,
        kind: FieldKind::List(ListType::Atomic, &EMPTY),
        always: false,
    }
}
const fn key(name: &'static str) -> ListKey {
    ListKey {
        name,
        default: None,
    }
}

const BY_NAME: &[ListKey] = &[key("name")];
const BY_TYPE: &[ListKey] = &[key("type")];
const BY_IP: &[ListKey] = &[key("ip")];
const PROTOCOL_TCP: ListKey = ListKey {
    name: "protocol",
    default: Some("TCP"),
};

// Shared types.

static OBJECT_META: Schema = granular(&[
    set("finalizers"),
    // OwnerReference is +structType=atomic.
    map_list("ownerReferences", &[key("uid")], &ATOMIC),
    atomic_list("managedFields"),
]);

static CONDITIONS_STATUS: Schema = granular(&[map_list("conditions", BY_TYPE, &EMPTY)]);

static ENV_VAR_SOURCE: Schema = granular(&[
    atomic("configMapKeyRef"),
    atomic("secretKeyRef"),
    atomic("fieldRef"),
    atomic("resourceFieldRef"),
]);
static ENV_VAR: Schema = granular(&[obj("valueFrom", &ENV_VAR_SOURCE)]);
static RESOURCES: Schema = granular(&[map_list("claims", BY_NAME, &EMPTY)]);
static CONTAINER: Schema = granular(&[
    map_list("ports", &[key("containerPort"), PROTOCOL_TCP], &EMPTY),
    map_list("env", BY_NAME, &ENV_VAR),
    map_list("volumeMounts", &[key("mountPath")], &EMPTY),
    map_list("volumeDevices", &[key("devicePath")], &EMPTY),
    always("resources", &RESOURCES),
]);

static NODE_AFFINITY: Schema =
    granular(&[atomic("requiredDuringSchedulingIgnoredDuringExecution")]);
static AFFINITY: Schema = granular(&[obj("nodeAffinity", &NODE_AFFINITY)]);
static TOPOLOGY_SPREAD: Schema = granular(&[atomic("labelSelector")]);

static POD_SPEC: Schema = granular(&[
    map_list("volumes", BY_NAME, &EMPTY),
    map_list("initContainers", BY_NAME, &CONTAINER),
    map_list_always("containers", BY_NAME, &CONTAINER),
    map_list("ephemeralContainers", BY_NAME, &CONTAINER),
    // LocalObjectReference is +structType=atomic.
    map_list("imagePullSecrets", BY_NAME, &ATOMIC),
    map_list("hostAliases", BY_IP, &EMPTY),
    map_list(
        "topologySpreadConstraints",
        &[key("topologyKey"), key("whenUnsatisfiable")],
        &TOPOLOGY_SPREAD,
    ),
    map_list("schedulingGates", BY_NAME, &EMPTY),
    map_list("resourceClaims", BY_NAME, &EMPTY),
    obj("affinity", &AFFINITY),
]);

static POD_STATUS: Schema = granular(&[
    map_list("conditions", BY_TYPE, &EMPTY),
    map_list("podIPs", BY_IP, &EMPTY),
    map_list("hostIPs", BY_IP, &EMPTY),
    map_list("resourceClaimStatuses", BY_NAME, &EMPTY),
]);

static POD_TEMPLATE_SPEC: Schema =
    granular(&[always("metadata", &OBJECT_META), always("spec", &POD_SPEC)]);

// Kinds.

static META_ONLY: Schema = granular(&[always("metadata", &OBJECT_META)]);

macro_rules! kind {
    ($name:ident, [$($field:expr),* $(,)?]) => {
        static $name: Schema = granular(&[always("metadata", &OBJECT_META), $($field),*]);
    };
}

kind!(
    POD,
    [always("spec", &POD_SPEC), always("status", &POD_STATUS)]
);
kind!(POD_TEMPLATE, [always("template", &POD_TEMPLATE_SPEC)]);
kind!(
    NODE,
    [
        always("spec", &granular(&[set("podCIDRs")])),
        always(
            "status",
            &granular(&[
                map_list("conditions", BY_TYPE, &EMPTY),
                map_list("addresses", BY_TYPE, &EMPTY),
                always(
                    "daemonEndpoints",
                    &granular(&[always("kubeletEndpoint", &EMPTY)])
                ),
                always("nodeInfo", &EMPTY),
            ])
        ),
    ]
);
kind!(
    SERVICE,
    [
        always(
            "spec",
            &granular(&[map_list("ports", &[key("port"), PROTOCOL_TCP], &EMPTY)])
        ),
        always(
            "status",
            &granular(&[
                map_list("conditions", BY_TYPE, &EMPTY),
                always("loadBalancer", &EMPTY),
            ])
        ),
    ]
);
// ObjectReference is +structType=atomic.
kind!(SERVICE_ACCOUNT, [map_list("secrets", BY_NAME, &ATOMIC)]);
kind!(
    WITH_CONDITIONS,
    [always("spec", &EMPTY), always("status", &CONDITIONS_STATUS)]
);
kind!(
    PVC,
    [
        always(
            "spec",
            &granular(&[
                always("resources", &EMPTY),
                atomic("selector"),
                atomic("dataSource")
            ])
        ),
        always("status", &CONDITIONS_STATUS),
    ]
);
kind!(
    PV,
    [
        always("spec", &granular(&[atomic("claimRef")])),
        always("status", &EMPTY)
    ]
);
kind!(
    SPEC_STATUS,
    [always("spec", &EMPTY), always("status", &EMPTY)]
);
kind!(SPEC_ONLY, [always("spec", &EMPTY)]);
kind!(
    REPLICATION_CONTROLLER,
    [
        always("spec", &granular(&[obj("template", &POD_TEMPLATE_SPEC)])),
        always("status", &CONDITIONS_STATUS),
    ]
);

static SELECTOR_TEMPLATE: Schema =
    granular(&[atomic("selector"), always("template", &POD_TEMPLATE_SPEC)]);
kind!(
    DEPLOYMENT,
    [
        always(
            "spec",
            &granular(&[
                atomic("selector"),
                always("template", &POD_TEMPLATE_SPEC),
                always("strategy", &EMPTY),
            ])
        ),
        always("status", &CONDITIONS_STATUS),
    ]
);
kind!(
    REPLICA_SET,
    [
        always("spec", &SELECTOR_TEMPLATE),
        always("status", &CONDITIONS_STATUS)
    ]
);
static ROLLING_WORKLOAD_SPEC: Schema = granular(&[
    atomic("selector"),
    always("template", &POD_TEMPLATE_SPEC),
    always("updateStrategy", &EMPTY),
]);
kind!(
    STATEFUL_SET,
    [
        always("spec", &ROLLING_WORKLOAD_SPEC),
        always("status", &CONDITIONS_STATUS)
    ]
);
kind!(
    DAEMON_SET,
    [
        always("spec", &ROLLING_WORKLOAD_SPEC),
        always("status", &CONDITIONS_STATUS)
    ]
);
// JobStatus.conditions is explicitly +listType=atomic.
kind!(
    JOB,
    [
        always("spec", &SELECTOR_TEMPLATE),
        always("status", &granular(&[atomic_list("conditions")])),
    ]
);
static JOB_TEMPLATE: Schema = granular(&[
    always("metadata", &OBJECT_META),
    always("spec", &SELECTOR_TEMPLATE),
]);
kind!(
    CRON_JOB,
    [
        always("spec", &granular(&[always("jobTemplate", &JOB_TEMPLATE)])),
        always("status", &EMPTY),
    ]
);
kind!(
    CORE_EVENT,
    [atomic("involvedObject"), always("source", &EMPTY)]
);
kind!(
    NEW_EVENT,
    [
        atomic("regarding"),
        atomic("related"),
        always("deprecatedSource", &EMPTY)
    ]
);
kind!(
    CLUSTER_ROLE,
    [obj(
        "aggregationRule",
        &granular(&[atomic_list("clusterRoleSelectors")])
    )]
);
// RoleRef is +structType=atomic.
kind!(BINDING, [atomic("roleRef")]);
kind!(
    CSI_DRIVER,
    [always("spec", &granular(&[set("volumeLifecycleModes")]))]
);
kind!(
    CSI_NODE,
    [always(
        "spec",
        &granular(&[map_list("drivers", BY_NAME, &EMPTY)])
    )]
);
kind!(
    VOLUME_ATTACHMENT,
    [
        always("spec", &granular(&[always("source", &EMPTY)])),
        always("status", &EMPTY)
    ]
);
kind!(
    PDB,
    [
        always("spec", &granular(&[atomic("selector")])),
        always("status", &CONDITIONS_STATUS)
    ]
);
kind!(
    HPA,
    [
        always("spec", &granular(&[always("scaleTargetRef", &EMPTY)])),
        always("status", &CONDITIONS_STATUS),
    ]
);
kind!(
    INGRESS,
    [
        always("spec", &EMPTY),
        always("status", &granular(&[always("loadBalancer", &EMPTY)]))
    ]
);
kind!(
    NETWORK_POLICY,
    [always("spec", &granular(&[atomic("podSelector")]))]
);

/// The schema of a built-in kind (`group` is `""` for the core group), or `None` for a kind the
/// table does not know (the caller falls back to [`DEDUCED`]).
pub fn schema_for(group: &str, version: &str, kind: &str) -> Option<&'static Schema> {
    let schema = match (group, version, kind) {
        ("", "v1", "Pod") => &POD,
        ("", "v1", "Node") => &NODE,
        ("", "v1", "Service") => &SERVICE,
        ("", "v1", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "v1", "PodTemplate") => &POD_TEMPLATE,
        ("", "v1", "ReplicationController") => &REPLICATION_CONTROLLER,
        ("", "v1", "Namespace") => &WITH_CONDITIONS,
        ("", "v1", "PersistentVolumeClaim") => &PVC,
        ("", "v1", "PersistentVolume") => &PV,
        ("", "v1", "ResourceQuota") => &SPEC_STATUS,
        ("", "v1", "LimitRange") => &SPEC_ONLY,
        ("", "v1", "Event") => &CORE_EVENT,
        ("", "v1", "Endpoints" | "ConfigMap" | "Secret") => &META_ONLY,
        ("apps", "v1", "Deployment") => &DEPLOYMENT,
        ("apps", "v1", "ReplicaSet") => &REPLICA_SET,
        ("apps", "v1", "StatefulSet") => &STATEFUL_SET,
        ("apps", "v1", "DaemonSet") => &DAEMON_SET,
        ("apps", "v1", "ControllerRevision") => &META_ONLY,
        ("batch", "v1", "Job") => &JOB,
        ("batch", "v1", "CronJob") => &CRON_JOB,
        ("discovery.k8s.io", "v1", "EndpointSlice") => &META_ONLY,
        ("coordination.k8s.io", "v1", "Lease") => &SPEC_ONLY,
        ("events.k8s.io", "v1", "Event") => &NEW_EVENT,
        ("rbac.authorization.k8s.io", "v1", "Role") => &META_ONLY,
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => &CLUSTER_ROLE,
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => &BINDING,
        ("storage.k8s.io", "v1", "StorageClass") => &META_ONLY,
        ("storage.k8s.io", "v1", "CSIDriver") => &CSI_DRIVER,
        ("storage.k8s.io", "v1", "CSINode") => &CSI_NODE,
        ("storage.k8s.io", "v1", "VolumeAttachment") => &VOLUME_ATTACHMENT,
        ("policy", "v1", "PodDisruptionBudget") => &PDB,
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => &HPA,
        ("networking.k8s.io", "v1", "Ingress") => &INGRESS,
        ("networking.k8s.io", "v1", "IngressClass") => &SPEC_ONLY,
        ("networking.k8s.io", "v1", "NetworkPolicy") => &NETWORK_POLICY,
        ("scheduling.k8s.io", "v1", "PriorityClass") => &META_ONLY,
        ("node.k8s.io", "v1", "RuntimeClass") => &META_ONLY,
        _ => return None,
    };
    Some(schema)
}

/// The schema for an object's `apiVersion` and `kind`, falling back to [`DEDUCED`].
pub(crate) fn schema_for_object(api_version: &str, kind: &str) -> &'static Schema {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    schema_for(group, version, kind).unwrap_or(&DEDUCED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(lt: Option<ListType>) -> Option<Vec<&'static str>> {
        match lt {
            Some(ListType::Map(keys)) => Some(keys.iter().map(|k| k.name).collect()),
            _ => None,
        }
    }

    #[test]
    fn list_types_match_upstream_markers() {
        let deploy = schema_for("apps", "v1", "Deployment").expect("deployment");
        let pod = schema_for("", "v1", "Pod").expect("pod");
        type Case<'a> = (&'a Schema, &'a [&'a str], Option<Vec<&'a str>>);
        let cases: &[Case] = &[
            (
                deploy,
                &["spec", "template", "spec", "containers"],
                Some(vec!["name"]),
            ),
            (
                deploy,
                &["spec", "template", "spec", "containers", "ports"],
                Some(vec!["containerPort", "protocol"]),
            ),
            (pod, &["spec", "containers", "env"], Some(vec!["name"])),
            (pod, &["spec", "volumes"], Some(vec!["name"])),
            (pod, &["metadata", "ownerReferences"], Some(vec!["uid"])),
            (pod, &["status", "conditions"], Some(vec!["type"])),
            (
                pod,
                &["spec", "topologySpreadConstraints"],
                Some(vec!["topologyKey", "whenUnsatisfiable"]),
            ),
        ];
        for (schema, path, want) in cases {
            assert_eq!(keys(schema.list_type(path)), *want, "{path:?}");
        }
        let svc = schema_for("", "v1", "Service").expect("service");
        assert_eq!(
            keys(svc.list_type(&["spec", "ports"])),
            Some(vec!["port", "protocol"])
        );
        assert_eq!(
            pod.list_type(&["metadata", "finalizers"]),
            Some(ListType::Set)
        );
        // Unmarked lists are atomic: tolerations, args, command.
        assert_eq!(pod.list_type(&["spec", "tolerations"]), None);
        assert_eq!(pod.list_type(&["spec", "containers", "args"]), None);
        let job = schema_for("batch", "v1", "Job").expect("job");
        assert_eq!(
            job.list_type(&["status", "conditions"]),
            Some(ListType::Atomic)
        );
    }

    #[test]
    fn every_served_kind_is_known_and_unknown_kinds_are_deduced() {
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
            let s = schema_for(group, "v1", kind).unwrap_or_else(|| panic!("{group}/{kind}"));
            assert!(!s.is_deduced());
            assert_eq!(
                s.list_type(&["metadata", "finalizers"]),
                Some(ListType::Set),
                "{kind}"
            );
        }
        assert!(schema_for("autoscaling", "v2", "HorizontalPodAutoscaler").is_some());
        assert!(schema_for("example.com", "v1", "Widget").is_none());
        assert!(schema_for_object("example.com/v1", "Widget").is_deduced());
        assert!(!schema_for_object("v1", "Pod").is_deduced());
    }
}
