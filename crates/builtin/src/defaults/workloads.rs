//! Defaults of the apps/v1 and batch/v1 workload kinds (`pkg/apis/apps/v1/defaults.go`,
//! `pkg/apis/batch/v1/defaults.go`), including their pod templates.

use super::pod;
use crate::json::{child_obj, default_ptr, default_zero, each_obj_mut, existing_obj, Get, Obj};
use serde_json::{json, Map, Value};

/// Status fields upstream serializes even when zero (no `omitempty`), so `kubectl get -o json`
/// shows them on a fresh object.
fn status_with(o: &mut Obj, zero_fields: &[&str]) {
    if let Some(status) = child_obj(o, "status") {
        for f in zero_fields {
            default_ptr(status, f, 0);
        }
    }
}

fn template(spec: &mut Obj) {
    if let Some(t) = child_obj(spec, "template") {
        pod::pod_template_spec(t);
    }
}

pub(super) fn deployment(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        default_ptr(spec, "replicas", 1);
        if let Some(strategy) = child_obj(spec, "strategy") {
            default_zero(strategy, "type", "RollingUpdate");
            if strategy.str_of("type") == "RollingUpdate" {
                if let Some(ru) = child_obj(strategy, "rollingUpdate") {
                    default_ptr(ru, "maxUnavailable", "25%");
                    default_ptr(ru, "maxSurge", "25%");
                }
            }
        }
        default_ptr(spec, "revisionHistoryLimit", 10);
        default_ptr(spec, "progressDeadlineSeconds", 600);
        template(spec);
    }
    status_with(o, &[]);
}

pub(super) fn replica_set(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        default_ptr(spec, "replicas", 1);
        template(spec);
    }
    status_with(o, &["replicas"]);
}

pub(super) fn stateful_set(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        default_zero(spec, "podManagementPolicy", "OrderedReady");
        if let Some(strategy) = child_obj(spec, "updateStrategy") {
            default_zero(strategy, "type", "RollingUpdate");
            if strategy.str_of("type") == "RollingUpdate" {
                if let Some(ru) = child_obj(strategy, "rollingUpdate") {
                    default_ptr(ru, "partition", 0);
                }
            }
        }
        if let Some(policy) = child_obj(spec, "persistentVolumeClaimRetentionPolicy") {
            default_zero(policy, "whenDeleted", "Retain");
            default_zero(policy, "whenScaled", "Retain");
        }
        default_ptr(spec, "replicas", 1);
        default_ptr(spec, "revisionHistoryLimit", 10);
        template(spec);
        each_obj_mut(spec, "volumeClaimTemplates", |pvc| {
            if let Some(s) = child_obj(pvc, "spec") {
                pod::pvc_spec(s);
            }
            if let Some(status) = child_obj(pvc, "status") {
                default_zero(status, "phase", "Pending");
            }
        });
    }
    status_with(o, &["replicas", "availableReplicas"]);
}

pub(super) fn daemon_set(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        if let Some(strategy) = child_obj(spec, "updateStrategy") {
            default_zero(strategy, "type", "RollingUpdate");
            if strategy.str_of("type") == "RollingUpdate" {
                if let Some(ru) = child_obj(strategy, "rollingUpdate") {
                    default_ptr(ru, "maxUnavailable", 1);
                    default_ptr(ru, "maxSurge", 0);
                }
            }
        }
        default_ptr(spec, "revisionHistoryLimit", 10);
        template(spec);
    }
    status_with(
        o,
        &[
            "currentNumberScheduled",
            "numberMisscheduled",
            "desiredNumberScheduled",
            "numberReady",
        ],
    );
}

/// `SetDefaults_Job`, with the JobPodReplacementPolicy and JobBackoffLimitPerIndex defaults
/// (both on in 1.33).
pub(super) fn job(o: &mut Obj) {
    let labels = o
        .obj_of("spec")
        .and_then(|s| s.obj_of("template"))
        .and_then(|t| t.obj_of("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(spec) = child_obj(o, "spec") {
        job_spec(spec);
    }
    if let Some(labels) = labels {
        if let Some(meta) = child_obj(o, "metadata") {
            default_zero(meta, "labels", labels);
        }
    }
    status_with(o, &[]);
}

fn job_spec(spec: &mut Obj) {
    if !spec.has("completions") && !spec.has("parallelism") {
        spec.insert("completions".into(), 1.into());
        spec.insert("parallelism".into(), 1.into());
    }
    default_ptr(spec, "parallelism", 1);
    let backoff = if spec.has("backoffLimitPerIndex") {
        i64::from(i32::MAX)
    } else {
        6
    };
    default_ptr(spec, "backoffLimit", backoff);
    default_ptr(spec, "completionMode", "NonIndexed");
    default_ptr(spec, "suspend", false);
    let has_failure_policy = spec.has("podFailurePolicy");
    if let Some(pfp) = existing_obj(spec, "podFailurePolicy") {
        each_obj_mut(pfp, "rules", |rule| {
            each_obj_mut(rule, "onPodConditions", |c| {
                default_zero(c, "status", "True")
            });
        });
    }
    let replacement = if has_failure_policy {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_ptr(spec, "podReplacementPolicy", replacement);
    template(spec);
}

pub(super) fn cron_job(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        default_zero(spec, "concurrencyPolicy", "Allow");
        default_ptr(spec, "suspend", false);
        default_ptr(spec, "successfulJobsHistoryLimit", 3);
        default_ptr(spec, "failedJobsHistoryLimit", 1);
        // Only the pod template inside the job template is defaulted: `SetDefaults_Job` takes
        // a whole Job, which a CronJob does not contain.
        if let Some(jt) = child_obj(spec, "jobTemplate") {
            if let Some(js) = child_obj(jt, "spec") {
                template(js);
            }
        }
    }
    status_with(o, &[]);
}

/// Generates a Job's selector and the matching template labels from its UID, as upstream's
/// Job strategy does on create unless `spec.manualSelector` is true. Does nothing when the
/// object has no UID yet.
pub fn generate_job_selector(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let uid = o
        .obj_of("metadata")
        .map(|m| m.str_of("uid").to_string())
        .unwrap_or_default();
    let name = o
        .obj_of("metadata")
        .map(|m| m.str_of("name").to_string())
        .unwrap_or_default();
    if uid.is_empty() {
        return;
    }
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    if spec.bool_of("manualSelector") {
        return;
    }
    spec.insert(
        "selector".into(),
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
    );
    let Some(labels) = child_obj(spec, "template")
        .and_then(|t| child_obj(t, "metadata"))
        .and_then(|m| child_obj(m, "labels"))
    else {
        return;
    };
    let generated: Map<String, Value> = [
        ("batch.kubernetes.io/controller-uid", uid.as_str()),
        ("batch.kubernetes.io/job-name", name.as_str()),
        ("controller-uid", uid.as_str()),
        ("job-name", name.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Value::from(v)))
    .collect();
    for (k, v) in generated {
        labels.entry(k).or_insert(v);
    }
}
