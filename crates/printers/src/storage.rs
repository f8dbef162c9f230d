//! Printers for `storage.k8s.io/v1`: storage classes, CSI drivers, CSI nodes
//! and volume attachments.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fields::{age, arr_at, bool_at, get, int, name, opt_bool, opt_str, s, str_at};
use crate::Column;

pub(crate) const STORAGE_CLASS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Provisioner", "string", "provisioner indicates the type of the provisioner."),
    Column::new("ReclaimPolicy", "string", "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
    Column::new("VolumeBindingMode", "string", "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound. When unset, VolumeBindingImmediate is used."),
    Column::new("AllowVolumeExpansion", "string", "allowVolumeExpansion shows whether the storage class allow volume expand."),
    Column::age(),
];

fn is_default_class(obj: &Value) -> bool {
    [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ]
    .iter()
    .any(|k| str_at(obj, &["metadata", "annotations", k]) == "true")
}

pub(crate) fn storage_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut display = name(obj).to_string();
    if is_default_class(obj) {
        display.push_str(" (default)");
    }
    vec![
        s(display),
        s(str_at(obj, &["provisioner"])),
        s(opt_str(obj, &["reclaimPolicy"]).unwrap_or("Delete")),
        s(opt_str(obj, &["volumeBindingMode"]).unwrap_or("Immediate")),
        Value::Bool(bool_at(obj, &["allowVolumeExpansion"])),
        age(obj, now),
    ]
}

pub(crate) const CSI_DRIVER_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("AttachRequired", "boolean", "attachRequired indicates this CSI volume driver requires an attach operation."),
    Column::new("PodInfoOnMount", "boolean", "podInfoOnMount indicates this CSI volume driver requires additional pod information during mount operations."),
    Column::new("StorageCapacity", "boolean", "storageCapacity indicates that the CSI volume driver wants pod scheduling to consider the storage capacity that the driver deployment will report."),
    Column::new("TokenRequests", "string", "tokenRequests indicates the CSI driver needs pods' service account tokens it is mounting volume for to do necessary authentication."),
    Column::new("RequiresRepublish", "boolean", "requiresRepublish indicates the CSI driver wants NodePublishVolume being periodically called to reflect any possible change in the mounted volume."),
    Column::new("Modes", "string", "volumeLifecycleModes defines what kind of volumes this CSI volume driver supports."),
    Column::age(),
];

pub(crate) fn csi_driver_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let modes: Vec<&str> = arr_at(obj, &["spec", "volumeLifecycleModes"])
        .iter()
        .map(|m| m.as_str().unwrap_or(""))
        .collect();
    let modes = if modes.is_empty() {
        "<none>".to_string()
    } else {
        modes.join(",")
    };
    let token_requests = match get(obj, &["spec", "tokenRequests"]) {
        Some(_) => arr_at(obj, &["spec", "tokenRequests"])
            .iter()
            .map(|t| str_at(t, &["audience"]))
            .collect::<Vec<_>>()
            .join(","),
        None => "<unset>".to_string(),
    };
    vec![
        s(name(obj)),
        Value::Bool(opt_bool(obj, &["spec", "attachRequired"]).unwrap_or(true)),
        Value::Bool(bool_at(obj, &["spec", "podInfoOnMount"])),
        Value::Bool(bool_at(obj, &["spec", "storageCapacity"])),
        s(token_requests),
        Value::Bool(bool_at(obj, &["spec", "requiresRepublish"])),
        s(modes),
        age(obj, now),
    ]
}

pub(crate) const CSI_NODE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Drivers",
        "integer",
        "Drivers indicates the number of CSI drivers registered on the node",
    ),
    Column::age(),
];

pub(crate) fn csi_node_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let drivers = arr_at(obj, &["spec", "drivers"]).len();
    vec![
        s(name(obj)),
        int(i64::try_from(drivers).unwrap_or(i64::MAX)),
        age(obj, now),
    ]
}

pub(crate) const VOLUME_ATTACHMENT_COLUMNS: &[Column] = &[
    Column::name(),
    Column {
        format: "name",
        ..Column::new(
            "Attacher",
            "string",
            "attacher indicates the name of the volume driver that MUST handle this request.",
        )
    },
    Column::new(
        "PV",
        "string",
        "persistentVolumeName represents the name of the persistent volume to attach.",
    ),
    Column::new(
        "Node",
        "string",
        "nodeName represents the node that the volume should be attached to.",
    ),
    Column::new(
        "Attached",
        "boolean",
        "attached indicates the volume is successfully attached.",
    ),
    Column::age(),
];

pub(crate) fn volume_attachment_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "attacher"])),
        s(str_at(obj, &["spec", "source", "persistentVolumeName"])),
        s(str_at(obj, &["spec", "nodeName"])),
        Value::Bool(bool_at(obj, &["status", "attached"])),
        age(obj, now),
    ]
}
