//! Printers for the core (`""` group) resources other than pods: services,
//! nodes, events, volumes and claims, config and quota objects.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fields::{
    age, arr_at, container_cells, format_labels, get, i64_at, int, is_deleting, len_at, name,
    obj_at, opt_i64, opt_str, s, since, str_at, time_at,
};
use crate::quantity::canonical;
use crate::{Column, NAME_DESC};

const CONTAINERS_DESC: &str = "Names of each container in the template.";
const IMAGES_DESC: &str = "Images referenced by each container in the template.";

pub(crate) const POD_TEMPLATE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Containers", "string", CONTAINERS_DESC),
    Column::new("Images", "string", IMAGES_DESC),
    Column::new("Pod Labels", "string", "The labels for the pod template."),
];

pub(crate) fn pod_template_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["template", "spec", "containers"]));
    vec![
        s(name(obj)),
        names,
        images,
        s(format_labels(obj_at(
            obj,
            &["template", "metadata", "labels"],
        ))),
    ]
}

pub(crate) const RC_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Desired",
        "integer",
        "Replicas is the number of desired replicas.",
    ),
    Column::new(
        "Current",
        "integer",
        "Replicas is the most recently observed number of replicas.",
    ),
    Column::new(
        "Ready",
        "integer",
        "The number of ready replicas for this replication controller.",
    ),
    Column::age(),
    Column::new("Containers", "string", CONTAINERS_DESC).wide(),
    Column::new("Images", "string", IMAGES_DESC).wide(),
    Column::new(
        "Selector",
        "string",
        "Selector is a label query over pods that should match the Replicas count.",
    )
    .wide(),
];

pub(crate) fn rc_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let (names, images) = container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]));
    vec![
        s(name(obj)),
        // Unset replicas default to 1 on admission.
        int(opt_i64(obj, &["spec", "replicas"]).unwrap_or(1)),
        int(i64_at(obj, &["status", "replicas"])),
        int(i64_at(obj, &["status", "readyReplicas"])),
        age(obj, now),
        names,
        images,
        s(format_labels(obj_at(obj, &["spec", "selector"]))),
    ]
}

pub(crate) const SERVICE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Type", "string", "type determines how the Service is exposed. Defaults to ClusterIP."),
    Column::new("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    Column::new("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
    Column::new("Port(s)", "string", "The list of ports that are exposed by this service."),
    Column::age(),
    Column::new("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.").wide(),
];

/// Unique load-balancer ingress IPs (else hostnames), sorted, comma-joined.
/// The server prints the wide form, so the 16-character clipping of narrow
/// output never applies here.
pub(crate) fn load_balancer_string(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| match (str_at(i, &["ip"]), str_at(i, &["hostname"])) {
            ("", "") => None,
            ("", host) => Some(host),
            (ip, _) => Some(ip),
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v.as_str().unwrap_or("")).collect()
}

fn service_external_ip(svc: &Value, svc_type: &str) -> String {
    let external = strings(arr_at(svc, &["spec", "externalIPs"]));
    match svc_type {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_string(arr_at(svc, &["status", "loadBalancer", "ingress"]));
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external);
                return all.join(",");
            }
            if lb.is_empty() {
                "<pending>".to_string()
            } else {
                lb
            }
        }
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_string(),
        _ => "<unknown>".to_string(),
    }
}

fn service_ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr_at(svc, &["spec", "ports"])
        .iter()
        .map(|p| {
            let port = i64_at(p, &["port"]);
            let protocol = str_at(p, &["protocol"]);
            match i64_at(p, &["nodePort"]) {
                n if n > 0 => format!("{port}:{n}/{protocol}"),
                _ => format!("{port}/{protocol}"),
            }
        })
        .collect();
    if pieces.is_empty() {
        "<none>".to_string()
    } else {
        pieces.join(",")
    }
}

pub(crate) fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Admission defaults the type to ClusterIP.
    let svc_type = opt_str(svc, &["spec", "type"]).unwrap_or("ClusterIP");
    let cluster_ip = arr_at(svc, &["spec", "clusterIPs"])
        .first()
        .and_then(Value::as_str)
        .or_else(|| opt_str(svc, &["spec", "clusterIP"]).filter(|ip| !ip.is_empty()))
        .unwrap_or("<none>");
    vec![
        s(name(svc)),
        s(svc_type),
        s(cluster_ip),
        s(service_external_ip(svc, svc_type)),
        s(service_ports(svc)),
        age(svc, now),
        s(format_labels(obj_at(svc, &["spec", "selector"]))),
    ]
}

pub(crate) const ENDPOINTS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Endpoints",
        "string",
        "The set of all endpoints is the union of all subsets.",
    ),
    Column::age(),
];

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `formatEndpoints`: up to three `ip:port` pairs, then `+ N more...`.
fn format_endpoints(obj: &Value) -> String {
    let subsets = arr_at(obj, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0usize;
    for ss in subsets {
        let addresses = arr_at(ss, &["addresses"]);
        let ports = arr_at(ss, &["ports"]);
        if ports.is_empty() {
            // Headless services may have no ports.
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(str_at(a, &["ip"]).to_string());
            }
            continue;
        }
        for port in ports {
            count += addresses.len();
            for a in addresses {
                if list.len() == MAX {
                    more = true;
                    break;
                }
                list.push(join_host_port(str_at(a, &["ip"]), i64_at(port, &["port"])));
            }
        }
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count.saturating_sub(MAX));
    }
    ret
}

pub(crate) fn endpoints_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![s(name(obj)), s(format_endpoints(obj)), age(obj, now)]
}

pub(crate) const NODE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the node"),
    Column::new("Roles", "string", "The roles of the node"),
    Column::age(),
    Column::new("Version", "string", "Kubelet Version reported by the node."),
    Column::new("Internal-IP", "string", "List of addresses reachable to the node.").wide(),
    Column::new("External-IP", "string", "List of addresses reachable to the node.").wide(),
    Column::new("OS-Image", "string", "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).").wide(),
    Column::new("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).").wide(),
    Column::new("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).").wide(),
];

fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in obj_at(node, &["metadata", "labels"]).into_iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.insert(v.to_string());
            }
        }
    }
    if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    }
}

fn node_address(node: &Value, ty: &str) -> String {
    arr_at(node, &["status", "addresses"])
        .iter()
        .find(|a| str_at(a, &["type"]) == ty)
        .map(|a| str_at(a, &["address"]).to_string())
        .unwrap_or_else(|| "<none>".to_string())
}

pub(crate) fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    // Later duplicates of the Ready condition win, as in upstream's map.
    let ready = arr_at(node, &["status", "conditions"])
        .iter()
        .rev()
        .find(|c| str_at(c, &["type"]) == "Ready");
    let mut status = vec![match ready {
        Some(c) if str_at(c, &["status"]) == "True" => "Ready",
        Some(_) => "NotReady",
        None => "Unknown",
    }];
    if crate::fields::bool_at(node, &["spec", "unschedulable"]) {
        status.push("SchedulingDisabled");
    }
    let info = |field: &str| match str_at(node, &["status", "nodeInfo", field]) {
        "" => "<unknown>".to_string(),
        v => v.to_string(),
    };
    vec![
        s(name(node)),
        s(status.join(",")),
        s(node_roles(node)),
        age(node, now),
        s(str_at(node, &["status", "nodeInfo", "kubeletVersion"])),
        s(node_address(node, "InternalIP")),
        s(node_address(node, "ExternalIP")),
        s(info("osImage")),
        s(info("kernelVersion")),
        s(info("containerRuntimeVersion")),
    ]
}

pub(crate) const EVENT_COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    Column::new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    Column::new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    Column::new("Object", "string", "The object that this event is about."),
    Column::new("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.").wide(),
    Column::new("Source", "string", "The component reporting this event. Should be a short machine understandable string.").wide(),
    Column::new("Message", "string", "A human-readable description of the status of this operation."),
    Column::new("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)").wide(),
    Column::new("Count", "string", "The number of times this event has occurred.").wide(),
    Column {
        name: "Name",
        type_: "string",
        format: "name",
        description: NAME_DESC,
        priority: 1,
    },
];

/// The fields of an event that its row needs, read from either the core/v1
/// or the events.k8s.io/v1 shape.
pub(crate) struct EventFields<'a> {
    pub(crate) obj: &'a Value,
    pub(crate) first: Option<DateTime<Utc>>,
    pub(crate) last: Option<DateTime<Utc>>,
    pub(crate) event_time: Option<DateTime<Utc>>,
    pub(crate) count: i64,
    pub(crate) series: Option<&'a Value>,
    pub(crate) involved: Option<&'a Value>,
    pub(crate) source_component: &'a str,
    pub(crate) source_host: &'a str,
    pub(crate) reporting_controller: &'a str,
    pub(crate) reporting_instance: &'a str,
    pub(crate) message: &'a str,
}

pub(crate) fn event_row(e: EventFields<'_>, now: DateTime<Utc>) -> Vec<Value> {
    let first = match e.first {
        Some(t) => since(Some(t), now),
        None => since(e.event_time, now),
    };
    let mut last = match e.last {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = e.count;
    if let Some(series) = e.series {
        last = since(time_at(series, &["lastObservedTime"]), now);
        count = i64_at(series, &["count"]);
    } else if count == 0 {
        // Singleton events from the new API carry no count.
        count = 1;
    }
    let involved = e.involved.unwrap_or(&Value::Null);
    let kind = str_at(involved, &["kind"]).to_lowercase();
    let target = match str_at(involved, &["name"]) {
        "" => kind,
        n => format!("{kind}/{n}"),
    };
    let component = if e.source_component.is_empty() {
        e.reporting_controller
    } else {
        e.source_component
    };
    let instance = if e.source_host.is_empty() {
        e.reporting_instance
    } else {
        e.source_host
    };
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        s(last),
        s(str_at(e.obj, &["type"])),
        s(str_at(e.obj, &["reason"])),
        s(target),
        s(str_at(involved, &["fieldPath"])),
        s(source),
        s(e.message.trim()),
        s(first),
        int(count),
        s(name(e.obj)),
    ]
}

pub(crate) fn event_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_row(
        EventFields {
            obj,
            first: time_at(obj, &["firstTimestamp"]),
            last: time_at(obj, &["lastTimestamp"]),
            event_time: time_at(obj, &["eventTime"]),
            count: i64_at(obj, &["count"]),
            series: get(obj, &["series"]),
            involved: get(obj, &["involvedObject"]),
            source_component: str_at(obj, &["source", "component"]),
            source_host: str_at(obj, &["source", "host"]),
            reporting_controller: str_at(obj, &["reportingComponent"]),
            reporting_instance: str_at(obj, &["reportingInstance"]),
            message: str_at(obj, &["message"]),
        },
        now,
    )
}

pub(crate) const NAMESPACE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "The status of the namespace"),
    Column::age(),
];

pub(crate) fn namespace_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["status", "phase"])),
        age(obj, now),
    ]
}

pub(crate) const SECRET_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Type",
        "string",
        "Used to facilitate programmatic handling of secret data.",
    ),
    Column::new("Data", "string", "Data contains the secret data."),
    Column::age(),
];

pub(crate) fn secret_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["type"])),
        int(len_at(obj, &["data"])),
        age(obj, now),
    ]
}

pub(crate) const SERVICE_ACCOUNT_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
    Column::age(),
];

pub(crate) fn service_account_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![s(name(obj)), int(len_at(obj, &["secrets"])), age(obj, now)]
}

pub(crate) const PV_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Capacity", "string", "capacity is the description of the persistent volume's resources and capacity."),
    Column::new("Access Modes", "string", "accessModes contains all ways the volume can be mounted."),
    Column::new("Reclaim Policy", "string", "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim."),
    Column::new("Status", "string", "phase indicates if a volume is available, bound to a claim, or released by a claim."),
    Column::new("Claim", "string", "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim."),
    Column::new("StorageClass", "string", "StorageClass of the pv"),
    Column::new("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
    Column::new("Reason", "string", "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
    Column::age(),
    Column::new("VolumeMode", "string", "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state.").wide(),
];

/// `GetAccessModesAsString`: fixed order, duplicates collapsed.
pub(crate) fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The beta annotation still wins over `spec.storageClassName`, as upstream.
fn storage_class(obj: &Value) -> &str {
    opt_str(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
}

fn unset_or(v: Option<&str>) -> String {
    v.unwrap_or("<unset>").to_string()
}

pub(crate) fn pv_cells(pv: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(c) => format!("{}/{}", str_at(c, &["namespace"]), str_at(c, &["name"])),
        None => String::new(),
    };
    let phase = if is_deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, &["status", "phase"])
    };
    vec![
        s(name(pv)),
        s(canonical(quantity_or_zero(
            pv,
            &["spec", "capacity", "storage"],
        ))),
        s(access_modes(arr_at(pv, &["spec", "accessModes"]))),
        s(str_at(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        s(phase),
        s(claim),
        s(storage_class(pv)),
        s(unset_or(opt_str(
            pv,
            &["spec", "volumeAttributesClassName"],
        ))),
        s(str_at(pv, &["status", "reason"])),
        age(pv, now),
        s(unset_or(opt_str(pv, &["spec", "volumeMode"]))),
    ]
}

/// A quantity field, or Go's zero Quantity (`0`) when missing.
pub(crate) fn quantity_or_zero<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    match str_at(obj, path) {
        "" => "0",
        q => q,
    }
}

pub(crate) const PVC_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Status",
        "string",
        "phase represents the current phase of PersistentVolumeClaim.",
    ),
    Column::new(
        "Volume",
        "string",
        "volumeName is the binding reference to the PersistentVolume backing this claim.",
    ),
    Column::new(
        "Capacity",
        "string",
        "capacity represents the actual resources of the underlying volume.",
    ),
    Column::new(
        "Access Modes",
        "string",
        "accessModes contains the actual access modes the volume backing the PVC has.",
    ),
    Column::new("StorageClass", "string", "StorageClass of the pvc"),
    Column::new(
        "VolumeAttributesClass",
        "string",
        "VolumeAttributesClass of the pvc",
    ),
    Column::age(),
    Column::new(
        "VolumeMode",
        "string",
        "volumeMode defines what type of volume is required by the claim.",
    )
    .wide(),
];

pub(crate) fn pvc_cells(pvc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let phase = if is_deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, &["status", "phase"])
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            canonical(quantity_or_zero(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        s(name(pvc)),
        s(phase),
        s(volume),
        s(capacity),
        s(modes),
        s(storage_class(pvc)),
        s(unset_or(opt_str(
            pvc,
            &["spec", "volumeAttributesClassName"],
        ))),
        age(pvc, now),
        s(unset_or(opt_str(pvc, &["spec", "volumeMode"]))),
    ]
}

pub(crate) const CONFIG_MAP_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Data", "string", "Data contains the configuration data."),
    Column::age(),
];

pub(crate) fn config_map_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let n = len_at(obj, &["data"]).saturating_add(len_at(obj, &["binaryData"]));
    vec![s(name(obj)), int(n), age(obj, now)]
}

pub(crate) const RESOURCE_QUOTA_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    Column::new("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    Column::age(),
];

pub(crate) fn resource_quota_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut resources: Vec<&String> = obj_at(obj, &["status", "hard"])
        .map(|m| m.keys().collect())
        .unwrap_or_default();
    resources.sort();
    let mut requests: Vec<String> = Vec::new();
    let mut limits: Vec<String> = Vec::new();
    for r in resources {
        let used = canonical(quantity_or_zero(obj, &["status", "used", r]));
        let hard = canonical(quantity_or_zero(obj, &["status", "hard", r]));
        let entry = format!("{r}: {used}/{hard}");
        let mut pieces = r.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        s(name(obj)),
        s(requests.join(", ")),
        s(limits.join(", ")),
        age(obj, now),
    ]
}

pub(crate) const COMPONENT_STATUS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Status", "string", "Status of the component conditions"),
    Column::new("Message", "string", "Message of the component conditions"),
    Column::new("Error", "string", "Error of the component conditions"),
];

pub(crate) fn component_status_cells(obj: &Value, _now: DateTime<Utc>) -> Vec<Value> {
    let healthy = arr_at(obj, &["conditions"])
        .iter()
        .find(|c| str_at(c, &["type"]) == "Healthy");
    let (status, message, error) = match healthy {
        Some(c) => (
            if str_at(c, &["status"]) == "True" {
                "Healthy"
            } else {
                "Unhealthy"
            },
            str_at(c, &["message"]),
            str_at(c, &["error"]),
        ),
        None => ("Unknown", "", ""),
    };
    vec![s(name(obj)), s(status), s(message), s(error)]
}
