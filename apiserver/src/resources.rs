//! The built-in resources this apiserver serves: one table that discovery, routing, storage keys,
//! OpenAPI and printing all read, so that adding a resource is one line here.
//!
//! Scope, short names, categories, verbs and subresources follow upstream 1.33's discovery output
//! (`kubectl api-resources -o wide` against a stock cluster).

/// One resource of one group-version.
#[derive(Debug)]
pub struct Resource {
    /// API group; "" is the core ("legacy") group served under `/api`.
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Plural, lower case: the URL segment.
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    /// Subresources served under `<resource>/<name>/<subresource>`.
    pub subresources: &'static [Subresource],
    /// The storage key segment (upstream keeps some historical names, e.g. `minions` for nodes).
    pub storage_segment: &'static str,
    /// `metadata.generation` is kept and bumped on spec changes.
    pub tracks_generation: bool,
    /// A PUT of an object that does not exist creates it (upstream `AllowCreateOnUpdate`).
    pub create_on_update: bool,
    /// Fields beyond `metadata.name`/`metadata.namespace` that field selectors may use.
    pub selectable_fields: &'static [&'static str],
}

/// A subresource and the verbs it accepts.
#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind the subresource speaks, when it is not the parent's (e.g. `Scale`).
    pub kind: Option<(&'static str, &'static str, &'static str)>,
    pub verbs: &'static [&'static str],
}

impl Resource {
    pub fn group_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, or `pods` for the core group: how upstream names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether objects of this resource are stored (reviews are only answered).
    pub fn is_stored(&self) -> bool {
        self.supports("get")
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    /// The storage key prefix of every object of this resource (ends with `/`).
    pub fn key_prefix(&self) -> String {
        format!("/{}/", self.storage_segment)
    }

    /// The key prefix for one namespace (or the whole resource when `namespace` is `None`).
    pub fn list_prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/{}/{}/", self.storage_segment, ns),
            _ => self.key_prefix(),
        }
    }

    pub fn key(&self, namespace: &str, name: &str) -> String {
        if self.namespaced {
            format!("/{}/{}/{}", self.storage_segment, namespace, name)
        } else {
            format!("/{}/{}", self.storage_segment, name)
        }
    }
}

const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const NO_COLLECTION_DELETE: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
const GET_PATCH_UPDATE: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const GET: &[&str] = &["get"];
const ALL: &[&str] = &["all"];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: None,
    verbs: GET_PATCH_UPDATE,
};
const SCALE_AUTOSCALING: Subresource = Subresource {
    name: "scale",
    kind: Some(("autoscaling", "v1", "Scale")),
    verbs: GET_PATCH_UPDATE,
};

const POD_SUBRESOURCES: &[Subresource] = &[
    Subresource {
        name: "attach",
        kind: Some(("", "v1", "PodAttachOptions")),
        verbs: &["create", "get"],
    },
    Subresource {
        name: "binding",
        kind: Some(("", "v1", "Binding")),
        verbs: CREATE,
    },
    Subresource {
        name: "ephemeralcontainers",
        kind: None,
        verbs: GET_PATCH_UPDATE,
    },
    Subresource {
        name: "eviction",
        kind: Some(("policy", "v1", "Eviction")),
        verbs: CREATE,
    },
    Subresource {
        name: "exec",
        kind: Some(("", "v1", "PodExecOptions")),
        verbs: &["create", "get"],
    },
    Subresource {
        name: "log",
        kind: None,
        verbs: GET,
    },
    Subresource {
        name: "portforward",
        kind: Some(("", "v1", "PodPortForwardOptions")),
        verbs: &["create", "get"],
    },
    Subresource {
        name: "proxy",
        kind: Some(("", "v1", "PodProxyOptions")),
        verbs: &["create", "delete", "get", "patch", "update"],
    },
    Subresource {
        name: "resize",
        kind: None,
        verbs: GET_PATCH_UPDATE,
    },
    STATUS,
];

/// Builds one table row with the common defaults; the table below overrides what differs.
const fn base(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        storage_segment: plural,
        tracks_generation: false,
        create_on_update: false,
        selectable_fields: &[],
    }
}

/// What authorization sees for requests that are not about a resource.
pub static NON_RESOURCE: Resource = base("", "", "", "", "", false);

/// What authorization sees for impersonation (`impersonate` on `users` and `groups`).
pub static IMPERSONATED_USERS: Resource = base("", "v1", "", "users", "", false);
pub static IMPERSONATED_GROUPS: Resource = base("", "v1", "", "groups", "", false);

pub static RESOURCES: &[Resource] = &[
    // core/v1
    Resource {
        short_names: &["cm"],
        ..base("", "v1", "ConfigMap", "configmaps", "configmap", true)
    },
    Resource {
        short_names: &["ep"],
        create_on_update: true,
        storage_segment: "services/endpoints",
        ..base("", "v1", "Endpoints", "endpoints", "endpoints", true)
    },
    Resource {
        short_names: &["ev"],
        create_on_update: true,
        selectable_fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ..base("", "v1", "Event", "events", "event", true)
    },
    Resource {
        short_names: &["limits"],
        ..base("", "v1", "LimitRange", "limitranges", "limitrange", true)
    },
    Resource {
        short_names: &["ns"],
        verbs: NO_COLLECTION_DELETE,
        subresources: &[
            Subresource {
                name: "finalize",
                kind: None,
                verbs: &["update"],
            },
            STATUS,
        ],
        selectable_fields: &["status.phase"],
        ..base("", "v1", "Namespace", "namespaces", "namespace", false)
    },
    Resource {
        short_names: &["no"],
        subresources: &[
            Subresource {
                name: "proxy",
                kind: Some(("", "v1", "NodeProxyOptions")),
                verbs: &["create", "delete", "get", "patch", "update"],
            },
            STATUS,
        ],
        storage_segment: "minions",
        selectable_fields: &["spec.unschedulable"],
        ..base("", "v1", "Node", "nodes", "node", false)
    },
    Resource {
        short_names: &["pvc"],
        subresources: &[STATUS],
        ..base(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            true,
        )
    },
    Resource {
        short_names: &["pv"],
        subresources: &[STATUS],
        ..base(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            false,
        )
    },
    Resource {
        short_names: &["po"],
        categories: ALL,
        subresources: POD_SUBRESOURCES,
        selectable_fields: &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
        ],
        ..base("", "v1", "Pod", "pods", "pod", true)
    },
    Resource {
        ..base("", "v1", "PodTemplate", "podtemplates", "podtemplate", true)
    },
    Resource {
        short_names: &["rc"],
        categories: ALL,
        subresources: &[SCALE_AUTOSCALING, STATUS],
        storage_segment: "controllers",
        tracks_generation: true,
        selectable_fields: &["status.replicas"],
        ..base(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            "replicationcontroller",
            true,
        )
    },
    Resource {
        short_names: &["quota"],
        subresources: &[STATUS],
        ..base(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            true,
        )
    },
    Resource {
        selectable_fields: &["type"],
        ..base("", "v1", "Secret", "secrets", "secret", true)
    },
    Resource {
        short_names: &["sa"],
        subresources: &[Subresource {
            name: "token",
            kind: Some(("authentication.k8s.io", "v1", "TokenRequest")),
            verbs: CREATE,
        }],
        ..base(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            true,
        )
    },
    Resource {
        short_names: &["svc"],
        categories: ALL,
        verbs: NO_COLLECTION_DELETE,
        subresources: &[
            Subresource {
                name: "proxy",
                kind: Some(("", "v1", "ServiceProxyOptions")),
                verbs: &["create", "delete", "get", "patch", "update"],
            },
            STATUS,
        ],
        storage_segment: "services/specs",
        selectable_fields: &["spec.clusterIP", "spec.type"],
        ..base("", "v1", "Service", "services", "service", true)
    },
    // admissionregistration.k8s.io/v1
    Resource {
        ..base(
            "admissionregistration.k8s.io",
            "v1",
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            false,
        )
    },
    Resource {
        ..base(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            false,
        )
    },
    // apps/v1
    Resource {
        ..base(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            "controllerrevision",
            true,
        )
    },
    Resource {
        short_names: &["ds"],
        categories: ALL,
        subresources: &[STATUS],
        tracks_generation: true,
        ..base("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true)
    },
    Resource {
        short_names: &["deploy"],
        categories: ALL,
        subresources: &[SCALE_AUTOSCALING, STATUS],
        tracks_generation: true,
        ..base(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            true,
        )
    },
    Resource {
        short_names: &["rs"],
        categories: ALL,
        subresources: &[SCALE_AUTOSCALING, STATUS],
        tracks_generation: true,
        selectable_fields: &["status.replicas"],
        ..base(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            true,
        )
    },
    Resource {
        short_names: &["sts"],
        categories: ALL,
        subresources: &[SCALE_AUTOSCALING, STATUS],
        tracks_generation: true,
        ..base(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            true,
        )
    },
    // authentication.k8s.io/v1: reviews are answered, never stored.
    Resource {
        verbs: CREATE,
        ..base(
            "authentication.k8s.io",
            "v1",
            "SelfSubjectReview",
            "selfsubjectreviews",
            "",
            false,
        )
    },
    Resource {
        verbs: CREATE,
        ..base(
            "authentication.k8s.io",
            "v1",
            "TokenReview",
            "tokenreviews",
            "",
            false,
        )
    },
    // authorization.k8s.io/v1: reviews are answered, never stored.
    Resource {
        verbs: CREATE,
        ..base(
            "authorization.k8s.io",
            "v1",
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            "",
            true,
        )
    },
    Resource {
        verbs: CREATE,
        ..base(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            "",
            false,
        )
    },
    Resource {
        verbs: CREATE,
        ..base(
            "authorization.k8s.io",
            "v1",
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            "",
            false,
        )
    },
    Resource {
        verbs: CREATE,
        ..base(
            "authorization.k8s.io",
            "v1",
            "SubjectAccessReview",
            "subjectaccessreviews",
            "",
            false,
        )
    },
    // autoscaling/v2
    Resource {
        short_names: &["hpa"],
        categories: ALL,
        subresources: &[STATUS],
        ..base(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            true,
        )
    },
    // batch/v1
    Resource {
        short_names: &["cj"],
        categories: ALL,
        subresources: &[STATUS],
        tracks_generation: true,
        ..base("batch", "v1", "CronJob", "cronjobs", "cronjob", true)
    },
    Resource {
        categories: ALL,
        subresources: &[STATUS],
        tracks_generation: true,
        selectable_fields: &["status.successful"],
        ..base("batch", "v1", "Job", "jobs", "job", true)
    },
    // certificates.k8s.io/v1
    Resource {
        short_names: &["csr"],
        subresources: &[
            Subresource {
                name: "approval",
                kind: None,
                verbs: GET_PATCH_UPDATE,
            },
            STATUS,
        ],
        selectable_fields: &["spec.signerName"],
        ..base(
            "certificates.k8s.io",
            "v1",
            "CertificateSigningRequest",
            "certificatesigningrequests",
            "certificatesigningrequest",
            false,
        )
    },
    // coordination.k8s.io/v1
    Resource {
        ..base(
            "coordination.k8s.io",
            "v1",
            "Lease",
            "leases",
            "lease",
            true,
        )
    },
    // discovery.k8s.io/v1
    Resource {
        ..base(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            "endpointslice",
            true,
        )
    },
    // events.k8s.io/v1
    Resource {
        short_names: &["ev"],
        storage_segment: "events.k8s.io/events",
        ..base("events.k8s.io", "v1", "Event", "events", "event", true)
    },
    // networking.k8s.io/v1
    Resource {
        ..base(
            "networking.k8s.io",
            "v1",
            "IngressClass",
            "ingressclasses",
            "ingressclass",
            false,
        )
    },
    Resource {
        short_names: &["ing"],
        subresources: &[STATUS],
        tracks_generation: true,
        storage_segment: "ingress",
        ..base(
            "networking.k8s.io",
            "v1",
            "Ingress",
            "ingresses",
            "ingress",
            true,
        )
    },
    Resource {
        short_names: &["netpol"],
        tracks_generation: true,
        ..base(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            "networkpolicy",
            true,
        )
    },
    // node.k8s.io/v1
    Resource {
        ..base(
            "node.k8s.io",
            "v1",
            "RuntimeClass",
            "runtimeclasses",
            "runtimeclass",
            false,
        )
    },
    // policy/v1
    Resource {
        short_names: &["pdb"],
        subresources: &[STATUS],
        tracks_generation: true,
        ..base(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            true,
        )
    },
    // rbac.authorization.k8s.io/v1
    Resource {
        ..base(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            false,
        )
    },
    Resource {
        ..base(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            "clusterrole",
            false,
        )
    },
    Resource {
        ..base(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            "rolebinding",
            true,
        )
    },
    Resource {
        ..base(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            "roles",
            "role",
            true,
        )
    },
    // scheduling.k8s.io/v1
    Resource {
        short_names: &["pc"],
        ..base(
            "scheduling.k8s.io",
            "v1",
            "PriorityClass",
            "priorityclasses",
            "priorityclass",
            false,
        )
    },
    // storage.k8s.io/v1
    Resource {
        ..base(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            "csidrivers",
            "csidriver",
            false,
        )
    },
    Resource {
        ..base(
            "storage.k8s.io",
            "v1",
            "CSINode",
            "csinodes",
            "csinode",
            false,
        )
    },
    Resource {
        short_names: &["sc"],
        ..base(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            "storageclass",
            false,
        )
    },
    Resource {
        subresources: &[STATUS],
        ..base(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            "volumeattachment",
            false,
        )
    },
];

/// The served group-versions, in the order discovery lists them (core first, then upstream's
/// group priority order for the groups we serve).
pub const GROUP_ORDER: &[&str] = &[
    "",
    "apps",
    "events.k8s.io",
    "authentication.k8s.io",
    "authorization.k8s.io",
    "admissionregistration.k8s.io",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "networking.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "coordination.k8s.io",
    "node.k8s.io",
    "discovery.k8s.io",
];

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Resources of one group-version, in discovery order (by plural name).
pub fn in_group_version(group: &str, version: &str) -> Vec<&'static Resource> {
    let mut found: Vec<_> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    found.sort_by_key(|r| r.plural);
    found
}

/// The version served for a group (one per group here).
pub fn version_of(group: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|r| r.group == group)
        .map(|r| r.version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_is_ordered_and_every_resource_is_unique() {
        for r in RESOURCES {
            assert!(GROUP_ORDER.contains(&r.group), "{} not ordered", r.group);
            let same = RESOURCES
                .iter()
                .filter(|o| o.group == r.group && o.plural == r.plural)
                .count();
            assert_eq!(same, 1, "{} twice", r.qualified());
        }
    }

    #[test]
    fn storage_keys_use_upstream_segments() {
        let nodes = find("", "v1", "nodes").unwrap();
        assert_eq!(nodes.key("", "n1"), "/minions/n1");
        let svc = find("", "v1", "services").unwrap();
        assert_eq!(
            svc.key("default", "kubernetes"),
            "/services/specs/default/kubernetes"
        );
        assert_eq!(svc.list_prefix(Some("a")), "/services/specs/a/");
        assert_eq!(svc.list_prefix(None), "/services/specs/");
        let deploy = find("apps", "v1", "deployments").unwrap();
        assert_eq!(deploy.qualified(), "deployments.apps");
    }

    #[test]
    fn no_storage_prefix_contains_another() {
        // A list of one resource must never see another resource's keys.
        for a in RESOURCES {
            for b in RESOURCES {
                if !std::ptr::eq(a, b) {
                    assert!(
                        !b.key_prefix().starts_with(&a.key_prefix()),
                        "{} inside {}",
                        b.key_prefix(),
                        a.key_prefix()
                    );
                }
            }
        }
    }
}
