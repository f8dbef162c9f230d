//! Printers for `apps/v1`: deployments, replica sets, stateful sets, daemon
//! sets and controller revisions.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fields::{
    age, arr_at, container_cells, format_label_selector, format_labels, get, i64_at, int, name,
    obj_at, opt_i64, s, selector_string, str_at,
};
use crate::Column;

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

/// Unset replica counts default to 1 on admission.
fn desired(obj: &Value) -> i64 {
    opt_i64(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn template_containers(obj: &Value) -> (Value, Value) {
    container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]))
}

pub(crate) const DEPLOYMENT_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::new("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
    Column::new("Available", "string", "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.").wide(),
];

pub(crate) fn deployment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    // Upstream prints the bare selector here: empty stays empty.
    let selector = selector_string(get(obj, &["spec", "selector"]))
        .unwrap_or_else(|_| "<invalid>".to_string());
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            i64_at(obj, &["status", "readyReplicas"]),
            desired(obj)
        )),
        int(i64_at(obj, &["status", "updatedReplicas"])),
        int(i64_at(obj, &["status", "availableReplicas"])),
        age(obj, now),
        names,
        images,
        s(selector),
    ]
}

pub(crate) const REPLICA_SET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Desired",
        "integer",
        "Replicas is the number of desired pods.",
    ),
    Column::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of non-terminating pods.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition.",
    ),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the replica count.",
    )
    .wide(),
];

pub(crate) fn replica_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        s(name(obj)),
        int(desired(obj)),
        int(i64_at(obj, &["status", "replicas"])),
        int(i64_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

pub(crate) const STATEFUL_SET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "Number of the pod with ready state"),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
];

pub(crate) fn stateful_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            i64_at(obj, &["status", "readyReplicas"]),
            desired(obj)
        )),
        age(obj, now),
        names,
        images,
    ]
}

pub(crate) const DAEMON_SET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
    Column::new("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
    Column::new("Ready", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
    Column::new("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    Column::new("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    Column::new("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node."),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new("Selector", "string", "A label query over pods that are managed by the daemon set.").wide(),
];

pub(crate) fn daemon_set_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = template_containers(obj);
    let status = |f: &str| int(i64_at(obj, &["status", f]));
    vec![
        s(name(obj)),
        status("desiredNumberScheduled"),
        status("currentNumberScheduled"),
        status("numberReady"),
        status("updatedNumberScheduled"),
        status("numberAvailable"),
        s(format_labels(obj_at(
            obj,
            &["spec", "template", "spec", "nodeSelector"],
        ))),
        age(obj, now),
        names,
        images,
        s(format_label_selector(get(obj, &["spec", "selector"]))),
    ]
}

pub(crate) const CONTROLLER_REVISION_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Controller", "string", "Controller of the object"),
    Column::new(
        "Revision",
        "string",
        "Revision indicates the revision of the state represented by Data.",
    ),
    Column::age(),
];

/// `kind.group/name` of the controlling owner, lower-cased like upstream's
/// `formatResourceName`.
fn controller_name(obj: &Value) -> String {
    let Some(owner) = arr_at(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| crate::fields::bool_at(o, &["controller"]))
    else {
        return "<none>".to_string();
    };
    let api_version = str_at(owner, &["apiVersion"]);
    let group = match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    };
    let kind = str_at(owner, &["kind"]);
    let owner_name = str_at(owner, &["name"]);
    let group_kind = match (group, kind) {
        ("", "") => return owner_name.to_string(),
        ("", k) => k.to_string(),
        (g, k) => format!("{k}.{g}"),
    };
    format!("{}/{owner_name}", group_kind.to_lowercase())
}

pub(crate) fn controller_revision_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(controller_name(obj)),
        int(i64_at(obj, &["revision"])),
        age(obj, now),
    ]
}
