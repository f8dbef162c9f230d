//! Printers for the smaller API groups: coordination (leases), events.k8s.io,
//! RBAC bindings, policy (disruption budgets), autoscaling, scheduling and
//! node (runtime classes).

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::core::{event_row, EventFields};
use crate::fields::{
    age, arr_at, bool_at, get, i64_at, int, name, opt_i64, opt_str, s, str_at, time_at,
};
use crate::quantity::canonical;
use crate::Column;

pub(crate) const LEASE_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Holder",
        "string",
        "holderIdentity contains the identity of the holder of a current lease.",
    ),
    Column::age(),
];

pub(crate) fn lease_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(str_at(obj, &["spec", "holderIdentity"])),
        age(obj, now),
    ]
}

pub(crate) const CSR_COLUMNS: &[Column] = &[
    Column::name(),
    Column::age(),
    Column::new(
        "SignerName",
        "string",
        "The name of the signer the request is for.",
    ),
    Column::new("Requestor", "string", "The user that created the request."),
    Column::new(
        "RequestedDuration",
        "string",
        "The validity duration the requester asked for.",
    ),
    Column::new(
        "Condition",
        "string",
        "The approval and issuance state of the request.",
    ),
];

/// Upstream's printCertificateSigningRequest: Pending without conditions, else the condition
/// types joined by commas, with `Issued` once a certificate is set.
pub(crate) fn csr_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut states: Vec<String> = obj
        .get("status")
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c.get("type").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if states.is_empty() {
        states.push("Pending".into());
    }
    if !str_at(obj, &["status", "certificate"]).is_empty() {
        states.push("Issued".into());
    }
    let duration = obj
        .get("spec")
        .and_then(|s| s.get("expirationSeconds"))
        .and_then(Value::as_i64)
        .map(|secs| crate::human_duration(chrono::Duration::seconds(secs)))
        .unwrap_or_else(|| "<none>".into());
    vec![
        s(name(obj)),
        age(obj, now),
        s(str_at(obj, &["spec", "signerName"])),
        s(str_at(obj, &["spec", "username"])),
        s(duration),
        s(states.join(",")),
    ]
}

/// events.k8s.io/v1 events are stored as core events upstream and print with
/// the same columns; only the field names differ.
pub(crate) fn events_v1_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    event_row(
        EventFields {
            obj,
            first: time_at(obj, &["deprecatedFirstTimestamp"]),
            last: time_at(obj, &["deprecatedLastTimestamp"]),
            event_time: time_at(obj, &["eventTime"]),
            count: i64_at(obj, &["deprecatedCount"]),
            series: get(obj, &["series"]),
            involved: get(obj, &["regarding"]),
            source_component: str_at(obj, &["deprecatedSource", "component"]),
            source_host: str_at(obj, &["deprecatedSource", "host"]),
            reporting_controller: str_at(obj, &["reportingController"]),
            reporting_instance: str_at(obj, &["reportingInstance"]),
            message: str_at(obj, &["note"]),
        },
        now,
    )
}

const ROLE_REF_DESC: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace.";

pub(crate) const ROLE_BINDING_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Role", "string", ROLE_REF_DESC),
    Column::age(),
    Column::new("Users", "string", "Users in the roleBinding").wide(),
    Column::new("Groups", "string", "Groups in the roleBinding").wide(),
    Column::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    )
    .wide(),
];

pub(crate) const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace.",
    ),
    Column::age(),
    Column::new("Users", "string", "Users in the clusterRoleBinding").wide(),
    Column::new("Groups", "string", "Groups in the clusterRoleBinding").wide(),
    Column::new(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    )
    .wide(),
];

/// Shared by RoleBindings and ClusterRoleBindings, which print alike.
pub(crate) fn role_binding_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let mut users = Vec::new();
    let mut groups = Vec::new();
    let mut sas = Vec::new();
    for subject in arr_at(obj, &["subjects"]) {
        let subject_name = str_at(subject, &["name"]);
        match str_at(subject, &["kind"]) {
            "ServiceAccount" => sas.push(format!(
                "{}/{subject_name}",
                str_at(subject, &["namespace"])
            )),
            "User" => users.push(subject_name.to_string()),
            "Group" => groups.push(subject_name.to_string()),
            _ => {}
        }
    }
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"])
        )),
        age(obj, now),
        s(users.join(", ")),
        s(groups.join(", ")),
        s(sas.join(", ")),
    ]
}

pub(crate) const PDB_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new(
        "Min Available",
        "string",
        "The minimum number of pods that must be available.",
    ),
    Column::new(
        "Max Unavailable",
        "string",
        "The maximum number of pods that may be unavailable.",
    ),
    Column::new(
        "Allowed Disruptions",
        "integer",
        "Calculated number of pods that may be disrupted at this time.",
    ),
    Column::age(),
];

/// An IntOrString as text, or `N/A` when unset.
fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "N/A".to_string(),
    }
}

pub(crate) fn pdb_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        s(int_or_string(get(obj, &["spec", "minAvailable"]))),
        s(int_or_string(get(obj, &["spec", "maxUnavailable"]))),
        int(i64_at(obj, &["status", "disruptionsAllowed"])),
        age(obj, now),
    ]
}

pub(crate) const HPA_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Reference", "string", "scaleTargetRef points to the target resource to scale."),
    Column::new("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count."),
    Column::new("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down."),
    Column::new("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up."),
    Column::new("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler."),
    Column::age(),
];

fn quantity(v: &Value, path: &[&str]) -> String {
    canonical(crate::core::quantity_or_zero(v, path))
}

/// One metric of `formatHPAMetrics`, from the autoscaling/v2 spec and the
/// status entry at the same index.
fn format_metric(spec: &Value, status: Option<&Value>) -> String {
    let unknown = || "<unknown>".to_string();
    let status_of = |key: &str| status.and_then(|st| get(st, &[key]));
    match str_at(spec, &["type"]) {
        "External" | "Object" => {
            let key = if str_at(spec, &["type"]) == "External" {
                "external"
            } else {
                "object"
            };
            if get(spec, &[key, "target", "averageValue"]).is_some() {
                let current = status_of(key)
                    .filter(|st| get(st, &["current", "averageValue"]).is_some())
                    .map(|st| quantity(st, &["current", "averageValue"]))
                    .unwrap_or_else(unknown);
                format!(
                    "{current}/{} (avg)",
                    quantity(spec, &[key, "target", "averageValue"])
                )
            } else {
                let current = status_of(key)
                    .map(|st| quantity(st, &["current", "value"]))
                    .unwrap_or_else(unknown);
                format!("{current}/{}", quantity(spec, &[key, "target", "value"]))
            }
        }
        "Pods" => {
            let current = status_of("pods")
                .map(|st| quantity(st, &["current", "averageValue"]))
                .unwrap_or_else(unknown);
            format!(
                "{current}/{}",
                quantity(spec, &["pods", "target", "averageValue"])
            )
        }
        "Resource" | "ContainerResource" => {
            let key = if str_at(spec, &["type"]) == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let resource = str_at(spec, &[key, "name"]);
            if get(spec, &[key, "target", "averageValue"]).is_some() {
                let current = status_of(key)
                    .map(|st| quantity(st, &["current", "averageValue"]))
                    .unwrap_or_else(unknown);
                format!(
                    "{resource}: {current}/{}",
                    quantity(spec, &[key, "target", "averageValue"])
                )
            } else {
                let current = status_of(key)
                    .and_then(|st| opt_i64(st, &["current", "averageUtilization"]))
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(unknown);
                let target = opt_i64(spec, &[key, "target", "averageUtilization"])
                    .map(|u| format!("{u}%"))
                    .unwrap_or_else(|| "<auto>".to_string());
                format!("{resource}: {current}/{target}")
            }
        }
        _ => "<unknown type>".to_string(),
    }
}

fn format_hpa_metrics(hpa: &Value) -> String {
    const MAX: usize = 2;
    let specs = arr_at(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        // autoscaling/v1 objects carry a single CPU utilization target.
        if let Some(target) = opt_i64(hpa, &["spec", "targetCPUUtilizationPercentage"]) {
            let current = opt_i64(hpa, &["status", "currentCPUUtilizationPercentage"])
                .map(|u| format!("{u}%"))
                .unwrap_or_else(|| "<unknown>".to_string());
            return format!("cpu: {current}/{target}%");
        }
        return "<none>".to_string();
    }
    let statuses = arr_at(hpa, &["status", "currentMetrics"]);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .take(MAX)
        .map(|(i, spec)| format_metric(spec, statuses.get(i)))
        .collect();
    let ret = list.join(", ");
    if specs.len() > MAX {
        return format!("{ret} + {} more...", specs.len() - MAX);
    }
    ret
}

pub(crate) fn hpa_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let min_pods = opt_i64(obj, &["spec", "minReplicas"])
        .map(|n| n.to_string())
        .unwrap_or_else(|| "<unset>".to_string());
    vec![
        s(name(obj)),
        s(format!(
            "{}/{}",
            str_at(obj, &["spec", "scaleTargetRef", "kind"]),
            str_at(obj, &["spec", "scaleTargetRef", "name"])
        )),
        s(format_hpa_metrics(obj)),
        s(min_pods),
        int(i64_at(obj, &["spec", "maxReplicas"])),
        int(i64_at(obj, &["status", "currentReplicas"])),
        age(obj, now),
    ]
}

pub(crate) const PRIORITY_CLASS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Value", "integer", "value represents the integer value of this priority class."),
    Column::new("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class."),
    Column::age(),
    Column::new("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority.").wide(),
];

pub(crate) fn priority_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        s(name(obj)),
        int(i64_at(obj, &["value"])),
        Value::Bool(bool_at(obj, &["globalDefault"])),
        age(obj, now),
        s(opt_str(obj, &["preemptionPolicy"]).unwrap_or("")),
    ]
}

pub(crate) const RUNTIME_CLASS_COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Handler", "string", "handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class."),
    Column::age(),
];

pub(crate) fn runtime_class_cells(obj: &Value, now: DateTime<Utc>) -> Vec<Value> {
    vec![s(name(obj)), s(str_at(obj, &["handler"])), age(obj, now)]
}
