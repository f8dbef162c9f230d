//! Server-side Table printing for `kubectl get`: the columns and cells that
//! upstream's `pkg/printers/internalversion/printers.go` (Kubernetes 1.33)
//! produces for each built-in resource, computed over the v1 JSON of an
//! object.
//!
//! The apiserver always prints the wide form (upstream's table convertor
//! passes `Wide: true`); kubectl hides `priority: 1` columns unless asked for
//! `-o wide`. So [`cells`] always returns one value per column of
//! [`columns`].
//!
//! Everything here is a pure function of its input; malformed objects print
//! Go's zero values instead of failing, so one odd object never breaks a list.

mod apps;
mod batch;
mod cluster;
mod core;
mod duration;
mod fields;
mod networking;
mod pod;
mod quantity;
mod storage;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

pub use duration::human_duration;

/// `metav1.ObjectMeta` swagger text for `name`, the NAME column description.
pub(crate) const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

/// `metav1.ObjectMeta` swagger text for `creationTimestamp`, used by AGE.
pub(crate) const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One `metav1.TableColumnDefinition`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

impl Column {
    pub(crate) const fn new(
        name: &'static str,
        type_: &'static str,
        description: &'static str,
    ) -> Self {
        Column {
            name,
            type_,
            format: "",
            description,
            priority: 0,
        }
    }

    /// The NAME column every printer starts with.
    pub(crate) const fn name() -> Self {
        Column {
            name: "Name",
            type_: "string",
            format: "name",
            description: NAME_DESC,
            priority: 0,
        }
    }

    pub(crate) const fn age() -> Self {
        Column::new("Age", "string", AGE_DESC)
    }

    /// Marks a column as shown only with `-o wide`.
    pub(crate) const fn wide(self) -> Self {
        Column {
            priority: 1,
            ..self
        }
    }
}

type CellsFn = fn(&Value, DateTime<Utc>) -> Vec<Value>;

/// A printer registered for one (group, plural resource).
struct Printer {
    group: &'static str,
    resource: &'static str,
    columns: &'static [Column],
    cells: CellsFn,
}

const fn p(
    group: &'static str,
    resource: &'static str,
    columns: &'static [Column],
    cells: CellsFn,
) -> Printer {
    Printer {
        group,
        resource,
        columns,
        cells,
    }
}

/// Every built-in resource with an upstream printer. Roles, ClusterRoles and
/// LimitRanges are deliberately absent: upstream prints them with the default
/// NAME / CREATED AT table.
static PRINTERS: &[Printer] = &[
    p("", "pods", pod::COLUMNS, pod::cells),
    p(
        "",
        "podtemplates",
        core::POD_TEMPLATE_COLUMNS,
        core::pod_template_cells,
    ),
    p(
        "",
        "replicationcontrollers",
        core::RC_COLUMNS,
        core::rc_cells,
    ),
    p("", "services", core::SERVICE_COLUMNS, core::service_cells),
    p(
        "",
        "endpoints",
        core::ENDPOINTS_COLUMNS,
        core::endpoints_cells,
    ),
    p("", "nodes", core::NODE_COLUMNS, core::node_cells),
    p("", "events", core::EVENT_COLUMNS, core::event_cells),
    p(
        "",
        "namespaces",
        core::NAMESPACE_COLUMNS,
        core::namespace_cells,
    ),
    p("", "secrets", core::SECRET_COLUMNS, core::secret_cells),
    p(
        "",
        "serviceaccounts",
        core::SERVICE_ACCOUNT_COLUMNS,
        core::service_account_cells,
    ),
    p("", "persistentvolumes", core::PV_COLUMNS, core::pv_cells),
    p(
        "",
        "persistentvolumeclaims",
        core::PVC_COLUMNS,
        core::pvc_cells,
    ),
    p(
        "",
        "configmaps",
        core::CONFIG_MAP_COLUMNS,
        core::config_map_cells,
    ),
    p(
        "",
        "resourcequotas",
        core::RESOURCE_QUOTA_COLUMNS,
        core::resource_quota_cells,
    ),
    p(
        "",
        "componentstatuses",
        core::COMPONENT_STATUS_COLUMNS,
        core::component_status_cells,
    ),
    p(
        "apps",
        "deployments",
        apps::DEPLOYMENT_COLUMNS,
        apps::deployment_cells,
    ),
    p(
        "apps",
        "replicasets",
        apps::REPLICA_SET_COLUMNS,
        apps::replica_set_cells,
    ),
    p(
        "apps",
        "statefulsets",
        apps::STATEFUL_SET_COLUMNS,
        apps::stateful_set_cells,
    ),
    p(
        "apps",
        "daemonsets",
        apps::DAEMON_SET_COLUMNS,
        apps::daemon_set_cells,
    ),
    p(
        "apps",
        "controllerrevisions",
        apps::CONTROLLER_REVISION_COLUMNS,
        apps::controller_revision_cells,
    ),
    p("batch", "jobs", batch::JOB_COLUMNS, batch::job_cells),
    p(
        "batch",
        "cronjobs",
        batch::CRON_JOB_COLUMNS,
        batch::cron_job_cells,
    ),
    p(
        "discovery.k8s.io",
        "endpointslices",
        networking::ENDPOINT_SLICE_COLUMNS,
        networking::endpoint_slice_cells,
    ),
    p(
        "networking.k8s.io",
        "ingresses",
        networking::INGRESS_COLUMNS,
        networking::ingress_cells,
    ),
    p(
        "networking.k8s.io",
        "ingressclasses",
        networking::INGRESS_CLASS_COLUMNS,
        networking::ingress_class_cells,
    ),
    p(
        "networking.k8s.io",
        "networkpolicies",
        networking::NETWORK_POLICY_COLUMNS,
        networking::network_policy_cells,
    ),
    p(
        "certificates.k8s.io",
        "certificatesigningrequests",
        cluster::CSR_COLUMNS,
        cluster::csr_cells,
    ),
    p(
        "coordination.k8s.io",
        "leases",
        cluster::LEASE_COLUMNS,
        cluster::lease_cells,
    ),
    p(
        "events.k8s.io",
        "events",
        core::EVENT_COLUMNS,
        cluster::events_v1_cells,
    ),
    p(
        "rbac.authorization.k8s.io",
        "rolebindings",
        cluster::ROLE_BINDING_COLUMNS,
        cluster::role_binding_cells,
    ),
    p(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        cluster::CLUSTER_ROLE_BINDING_COLUMNS,
        cluster::role_binding_cells,
    ),
    p(
        "storage.k8s.io",
        "storageclasses",
        storage::STORAGE_CLASS_COLUMNS,
        storage::storage_class_cells,
    ),
    p(
        "storage.k8s.io",
        "csidrivers",
        storage::CSI_DRIVER_COLUMNS,
        storage::csi_driver_cells,
    ),
    p(
        "storage.k8s.io",
        "csinodes",
        storage::CSI_NODE_COLUMNS,
        storage::csi_node_cells,
    ),
    p(
        "storage.k8s.io",
        "volumeattachments",
        storage::VOLUME_ATTACHMENT_COLUMNS,
        storage::volume_attachment_cells,
    ),
    p(
        "policy",
        "poddisruptionbudgets",
        cluster::PDB_COLUMNS,
        cluster::pdb_cells,
    ),
    p(
        "autoscaling",
        "horizontalpodautoscalers",
        cluster::HPA_COLUMNS,
        cluster::hpa_cells,
    ),
    p(
        "scheduling.k8s.io",
        "priorityclasses",
        cluster::PRIORITY_CLASS_COLUMNS,
        cluster::priority_class_cells,
    ),
    p(
        "node.k8s.io",
        "runtimeclasses",
        cluster::RUNTIME_CLASS_COLUMNS,
        cluster::runtime_class_cells,
    ),
];

fn find(group: &str, resource: &str) -> Option<&'static Printer> {
    PRINTERS
        .iter()
        .find(|p| p.group == group && p.resource == resource)
}

/// Columns for a resource (group `""` for core, plural resource name), or
/// `None` when upstream has no printer for it and the default table
/// ([`default_columns`]) applies.
pub fn columns(group: &str, resource: &str) -> Option<&'static [Column]> {
    find(group, resource).map(|p| p.columns)
}

/// One row's cells for `object`, aligned with [`columns`]; for a resource
/// without a printer, the cells of the default table ([`default_cells`]), so
/// the result always matches the columns the caller serves.
pub fn cells(group: &str, resource: &str, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    match find(group, resource) {
        Some(p) => (p.cells)(object, now),
        None => default_cells(object),
    }
}

static DEFAULT_COLUMNS: &[Column] = &[Column::name(), Column::new("Created At", "date", AGE_DESC)];

/// Upstream's default table convertor: Name, Created At.
pub fn default_columns() -> &'static [Column] {
    DEFAULT_COLUMNS
}

/// Cells of the default table: the name and the creation time in RFC 3339
/// UTC (Go's zero time when the object has none, as upstream prints it).
pub fn default_cells(object: &Value) -> Vec<Value> {
    let created = fields::time_at(object, &["metadata", "creationTimestamp"])
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string());
    vec![fields::s(fields::name(object)), fields::s(created)]
}

/// The `columnDefinitions` array of a `meta.k8s.io/v1` Table.
pub fn column_definitions_json(columns: &[Column]) -> Value {
    Value::Array(
        columns
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "type": c.type_,
                    "format": c.format,
                    "description": c.description,
                    "priority": c.priority,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests;
