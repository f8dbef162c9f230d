//! The pod row: READY, STATUS, RESTARTS as upstream's `printPod` computes them,
//! including init-container progress, sidecar (restartable init) containers,
//! waiting/terminated reasons and the "(5m ago)" restart suffix.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fields::{
    age, arr_at, bool_at, get, i64_at, is_deleting, name, opt_bool, s, str_at, time_at,
};
use crate::{Column, AGE_DESC};

pub(crate) const COLUMNS: &[Column] = &[
    Column::name(),
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    Column::new("Age", "string", AGE_DESC),
    Column::new("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.").wide(),
    Column::new("Node", "string", "NodeName indicates in which node this pod is scheduled.").wide(),
    Column::new("Nominated Node", "string", "nominatedNodeName is set when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.").wide(),
    Column::new("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.").wide(),
];

/// Keeps the later of two restart times, as `lastRestartDate.Before` does.
fn latest(cur: Option<DateTime<Utc>>, cand: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (cur, cand) {
        (Some(a), Some(b)) if b > a => Some(b),
        (None, b) => b,
        (a, _) => a,
    }
}

fn last_terminated(status: &Value) -> Option<DateTime<Utc>> {
    time_at(status, &["lastState", "terminated", "finishedAt"])
}

fn condition_true(pod: &Value, ty: &str) -> bool {
    arr_at(pod, &["status", "conditions"])
        .iter()
        .any(|c| str_at(c, &["type"]) == ty && str_at(c, &["status"]) == "True")
}

pub(crate) fn cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let containers = arr_at(pod, &["spec", "containers"]);
    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    let mut total = containers.len();
    let mut ready = 0usize;
    let mut restarts = 0i64;
    let mut sidecar_restarts = 0i64;
    let mut last_restart: Option<DateTime<Utc>> = None;
    let mut last_sidecar_restart: Option<DateTime<Utc>> = None;

    let phase = str_at(pod, &["status", "phase"]);
    let mut reason = match str_at(pod, &["status", "reason"]) {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    for c in arr_at(pod, &["status", "conditions"]) {
        if str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    // Later duplicates win, as in upstream's name-keyed map.
    let mut restartable: HashMap<&str, bool> = HashMap::new();
    for c in init_specs {
        let sidecar = str_at(c, &["restartPolicy"]) == "Always";
        restartable.insert(str_at(c, &["name"]), sidecar);
        if sidecar {
            total += 1;
        }
    }

    let mut initializing = false;
    for (i, cs) in arr_at(pod, &["status", "initContainerStatuses"])
        .iter()
        .enumerate()
    {
        restarts += i64_at(cs, &["restartCount"]);
        last_restart = latest(last_restart, last_terminated(cs));
        let is_sidecar = restartable
            .get(str_at(cs, &["name"]))
            .copied()
            .unwrap_or(false);
        if is_sidecar {
            sidecar_restarts += i64_at(cs, &["restartCount"]);
            last_sidecar_restart = latest(last_sidecar_restart, last_terminated(cs));
        }
        let terminated = get(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| i64_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if is_sidecar && opt_bool(cs, &["started"]) == Some(true) {
            if bool_at(cs, &["ready"]) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match str_at(t, &["reason"]) {
                "" => match i64_at(t, &["signal"]) {
                    0 => format!("Init:ExitCode:{}", i64_at(t, &["exitCode"])),
                    sig => format!("Init:Signal:{sig}"),
                },
                r => format!("Init:{r}"),
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", i, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in arr_at(pod, &["status", "containerStatuses"]).iter().rev() {
            restarts += i64_at(cs, &["restartCount"]);
            last_restart = latest(last_restart, last_terminated(cs));
            let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]);
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" => match i64_at(t, &["signal"]) {
                        0 => format!("ExitCode:{}", i64_at(t, &["exitCode"])),
                        sig => format!("Signal:{sig}"),
                    },
                    r => r.to_string(),
                };
            } else if bool_at(cs, &["ready"]) && get(cs, &["state", "running"]).is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed while another still runs is
        // not "Completed".
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if is_deleting(pod) && str_at(pod, &["status", "reason"]) == "NodeLost" {
        reason = "Unknown".to_string();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => {
            format!("{restarts} ({} ago)", crate::fields::since(Some(t), now))
        }
        _ => restarts.to_string(),
    };

    // v1 objects may carry only the legacy singular podIP.
    let pod_ip = arr_at(pod, &["status", "podIPs"])
        .first()
        .map(|ip| str_at(ip, &["ip"]))
        .unwrap_or_else(|| str_at(pod, &["status", "podIP"]));
    let or_none = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };

    let gates = arr_at(pod, &["spec", "readinessGates"]);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = arr_at(pod, &["status", "conditions"]);
        let true_count = gates
            .iter()
            .filter(|g| {
                let ty = str_at(g, &["conditionType"]);
                conditions
                    .iter()
                    .find(|c| str_at(c, &["type"]) == ty)
                    .is_some_and(|c| str_at(c, &["status"]) == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };

    vec![
        s(name(pod)),
        s(format!("{ready}/{total}")),
        s(reason),
        s(restarts_cell),
        age(pod, now),
        s(or_none(pod_ip)),
        s(or_none(str_at(pod, &["spec", "nodeName"]))),
        s(or_none(str_at(pod, &["status", "nominatedNodeName"]))),
        s(readiness_gates),
    ]
}
