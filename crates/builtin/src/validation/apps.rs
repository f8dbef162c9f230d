//! apps/v1 validation (Deployment, ReplicaSet, StatefulSet, DaemonSet, ControllerRevision) and
//! the core/v1 ReplicationController, which shares the ReplicaSet rules. Selector immutability
//! is upstream's apps/v1 strategy rule.

use super::common::{
    immutable, int_or_percent, nonnegative, not_more_than_100_percent, not_supported, positive,
    positive_int_or_percent, selector_is_empty, selector_matches, semantic_eq, Errs,
};
use super::pod::{pod_template_spec, template_metadata};
use crate::json::{Get, Obj};
use apimachinery::validation::{validate_label_selector, validate_labels};
use apimachinery::{FieldError, Path};
use serde_json::Value;

fn spec_path() -> Path {
    Path::new("spec")
}

fn template_labels(spec: Option<&Obj>) -> Option<&Value> {
    spec.obj_of("template")
        .and_then(|t| t.obj_of("metadata"))
        .and_then(|m| m.get("labels"))
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet: required, valid, not
/// empty.
fn required_selector(errs: &mut Errs, spec: Option<&Obj>, path: &Path, what: &str) {
    let sel = spec.field("selector").filter(|s| !s.is_null());
    match sel {
        None => errs.push(FieldError::required(path.child("selector"), "")),
        Some(s) => {
            errs.extend(validate_label_selector(s, path.child("selector").as_str()));
            let n =
                s.obj_of("matchLabels").map_or(0, |m| m.len()) + s.arr_of("matchExpressions").len();
            if n == 0 {
                errs.push(FieldError::invalid(
                    path.child("selector"),
                    s.clone(),
                    format!("empty selector is invalid for {what}"),
                ));
            }
        }
    }
}

/// The selector must match the template's labels (unless it is empty).
fn selector_matches_template(errs: &mut Errs, spec: Option<&Obj>, path: &Path) {
    let sel = spec.field("selector");
    if selector_is_empty(sel) == Some(false)
        && selector_matches(sel, template_labels(spec)) == Some(false)
    {
        errs.push(FieldError::invalid(
            path.child("template").child("metadata").child("labels"),
            template_labels(spec).cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet`.
fn replica_set_template(errs: &mut Errs, spec: Option<&Obj>, path: &Path, what: &str) {
    selector_matches_template(errs, spec, path);
    let tp = path.child("template");
    let template = spec.obj_of("template");
    pod_template_spec(errs, template, &tp);
    let pod_spec = template.and_then(|t| t.obj_of("spec"));
    always_restart(errs, pod_spec, &tp);
    if pod_spec.has("activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {what} is not Supported"),
        ));
    }
}

fn always_restart(errs: &mut Errs, pod_spec: Option<&Obj>, tp: &Path) {
    let rp = pod_spec.str_of("restartPolicy");
    if rp != "Always" {
        errs.push(not_supported(
            &tp.child("spec").child("restartPolicy"),
            rp,
            &["Always"],
        ));
    }
}

fn selector_immutable(errs: &mut Errs, obj: &Value, old: Option<&Value>) {
    if let Some(old) = old {
        immutable(
            errs,
            &spec_path().child("selector"),
            obj.field("spec").field("selector"),
            old.field("spec").field("selector"),
        );
    }
}

pub(super) fn deployment(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = spec_path();
    nonnegative(&mut errs, &p.child("replicas"), spec.int_of("replicas"));
    required_selector(&mut errs, spec, &p, "deployment");
    if apimachinery::LabelSelector::from_label_selector(
        spec.field("selector").unwrap_or(&Value::Null),
    )
    .is_ok()
    {
        replica_set_template(&mut errs, spec, &p, "ReplicaSet");
    } else {
        errs.push(FieldError::invalid(
            p.child("selector"),
            spec.field("selector").cloned().unwrap_or(Value::Null),
            "invalid label selector",
        ));
    }
    deployment_strategy(&mut errs, spec.obj_of("strategy"), &p.child("strategy"));
    let min_ready = spec.int_of("minReadySeconds");
    nonnegative(&mut errs, &p.child("minReadySeconds"), min_ready);
    nonnegative(
        &mut errs,
        &p.child("revisionHistoryLimit"),
        spec.int_of("revisionHistoryLimit"),
    );
    if let Some(pds) = spec.int_of("progressDeadlineSeconds") {
        positive(&mut errs, &p.child("progressDeadlineSeconds"), Some(pds));
        if pds <= min_ready.unwrap_or(0) {
            errs.push(FieldError::invalid(
                p.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    selector_immutable(&mut errs, obj, old);
    errs
}

fn deployment_strategy(errs: &mut Errs, strategy: Option<&Obj>, path: &Path) {
    match strategy.str_of("type") {
        "Recreate" => {
            if strategy.has("rollingUpdate") {
                errs.push(FieldError::forbidden(
                    path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.field("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(FieldError::required(
                path.child("rollingUpdate"),
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let rp = path.child("rollingUpdate");
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                positive_int_or_percent(errs, &rp.child("maxUnavailable"), mu);
                positive_int_or_percent(errs, &rp.child("maxSurge"), ms);
                if int_or_percent(mu).0 == 0 && int_or_percent(ms).0 == 0 {
                    errs.push(FieldError::invalid(
                        rp.child("maxUnavailable"),
                        mu.cloned().unwrap_or(Value::from(0)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(errs, &rp.child("maxUnavailable"), mu);
            }
        },
        _ => errs.push(not_supported(
            path,
            strategy.cloned().map(Value::Object).unwrap_or(Value::Null),
            &["Recreate", "RollingUpdate"],
        )),
    }
}

pub(super) fn replica_set(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = spec_path();
    nonnegative(&mut errs, &p.child("replicas"), spec.int_of("replicas"));
    nonnegative(
        &mut errs,
        &p.child("minReadySeconds"),
        spec.int_of("minReadySeconds"),
    );
    // Upstream names deployments here too.
    required_selector(&mut errs, spec, &p, "deployment");
    if apimachinery::LabelSelector::from_label_selector(
        spec.field("selector").unwrap_or(&Value::Null),
    )
    .is_ok()
    {
        replica_set_template(&mut errs, spec, &p, "ReplicaSet");
    } else {
        errs.push(FieldError::invalid(
            p.child("selector"),
            spec.field("selector").cloned().unwrap_or(Value::Null),
            "invalid label selector",
        ));
    }
    selector_immutable(&mut errs, obj, old);
    errs
}

/// `ValidateReplicationControllerSpec`: a map selector that must match the template.
pub(super) fn replication_controller(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = spec_path();
    nonnegative(
        &mut errs,
        &p.child("minReadySeconds"),
        spec.int_of("minReadySeconds"),
    );
    let selector = spec.obj_of("selector");
    match selector {
        Some(s) if !s.is_empty() => {
            errs.extend(validate_labels(s, p.child("selector").as_str()));
        }
        _ => errs.push(FieldError::required(p.child("selector"), "")),
    }
    nonnegative(&mut errs, &p.child("replicas"), spec.int_of("replicas"));
    let tp = p.child("template");
    match spec.obj_of("template") {
        None => errs.push(FieldError::required(&tp, "")),
        Some(t) => {
            if let Some(sel) = selector.filter(|s| !s.is_empty()) {
                let labels = t.obj_of("metadata").and_then(|m| m.get("labels"));
                let ok = sel
                    .iter()
                    .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                if !ok {
                    errs.push(FieldError::invalid(
                        tp.child("metadata").child("labels"),
                        labels.cloned().unwrap_or(Value::Null),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            pod_template_spec(&mut errs, Some(t), &tp);
            always_restart(&mut errs, t.obj_of("spec"), &tp);
            if t.obj_of("spec").has("activeDeadlineSeconds") {
                errs.push(FieldError::forbidden(
                    tp.child("spec").child("activeDeadlineSeconds"),
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
    }
    errs
}

pub(super) fn stateful_set(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = spec_path();
    match spec.str_of("podManagementPolicy") {
        "" => errs.push(FieldError::required(p.child("podManagementPolicy"), "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            p.child("podManagementPolicy"),
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.obj_of("updateStrategy");
    match strategy.str_of("type") {
        "" => errs.push(FieldError::required(p.child("updateStrategy"), "")),
        "OnDelete" => {
            if let Some(ru) = strategy.field("rollingUpdate").filter(|r| !r.is_null()) {
                errs.push(FieldError::invalid(
                    p.child("updateStrategy").child("rollingUpdate"),
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = strategy.obj_of("rollingUpdate") {
                let rp = p.child("updateStrategy").child("rollingUpdate");
                nonnegative(&mut errs, &rp.child("partition"), ru.int_of("partition"));
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let mp = rp.child("maxUnavailable");
                    positive_int_or_percent(&mut errs, &mp, Some(mu));
                    if int_or_percent(Some(mu)).0 == 0 {
                        errs.push(FieldError::invalid(&mp, mu.clone(), "cannot be 0"));
                    }
                    not_more_than_100_percent(&mut errs, &mp, Some(mu));
                }
            }
        }
        _ => errs.push(FieldError::invalid(
            p.child("updateStrategy"),
            strategy.cloned().map(Value::Object).unwrap_or(Value::Null),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = spec.obj_of("persistentVolumeClaimRetentionPolicy") {
        let pp = p.child("persistentVolumeClaimRetentionPolicy");
        for key in ["whenDeleted", "whenScaled"] {
            let v = policy.str_of(key);
            if !matches!(v, "Retain" | "Delete") {
                errs.push(not_supported(&pp.child(key), v, &["Retain", "Delete"]));
            }
        }
    }
    nonnegative(&mut errs, &p.child("replicas"), spec.int_of("replicas"));
    nonnegative(
        &mut errs,
        &p.child("minReadySeconds"),
        spec.int_of("minReadySeconds"),
    );
    if let Some(ord) = spec.obj_of("ordinals") {
        nonnegative(&mut errs, &p.child("ordinals.start"), ord.int_of("start"));
    }
    required_selector(&mut errs, spec, &p, "statefulset");
    let tp = p.child("template");
    let template = spec.obj_of("template");
    if apimachinery::LabelSelector::from_label_selector(
        spec.field("selector").unwrap_or(&Value::Null),
    )
    .is_ok()
    {
        // Upstream checks only the template's labels and annotations here, not its pod spec.
        selector_matches_template(&mut errs, spec, &p);
        template_metadata(&mut errs, template, &tp);
    } else {
        errs.push(FieldError::invalid(
            p.child("selector"),
            spec.field("selector").cloned().unwrap_or(Value::Null),
            "",
        ));
    }
    let pod_spec = template.and_then(|t| t.obj_of("spec"));
    always_restart(&mut errs, pod_spec, &tp);
    if pod_spec.has("activeDeadlineSeconds") {
        errs.push(FieldError::forbidden(
            tp.child("spec").child("activeDeadlineSeconds"),
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(old) = old {
        let mutable = [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "persistentVolumeClaimRetentionPolicy",
        ];
        let strip = |s: Option<&Obj>| {
            let mut s = s.cloned().unwrap_or_default();
            for k in mutable {
                s.remove(k);
            }
            Value::Object(s)
        };
        if !semantic_eq(&strip(spec), &strip(old.obj_of("spec"))) {
            errs.push(FieldError::forbidden(
                p,
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            ));
        }
    }
    errs
}

pub(super) fn daemon_set(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = spec_path();
    if let Some(old) = old {
        let old_spec = old.obj_of("spec");
        let (n, o) = (
            spec.int_of("templateGeneration").unwrap_or(0),
            old_spec.int_of("templateGeneration").unwrap_or(0),
        );
        let tg = p.child("templateGeneration");
        if n < o {
            errs.push(FieldError::invalid(&tg, n, "must not be decremented"));
        }
        let changed = !semantic_eq(
            spec.field("template").unwrap_or(&Value::Null),
            old_spec.field("template").unwrap_or(&Value::Null),
        );
        // Only checked when a client sets templateGeneration (a field apps/v1 does not expose).
        if spec.has("templateGeneration") || old_spec.has("templateGeneration") {
            if n == o && changed {
                errs.push(FieldError::invalid(
                    &tg,
                    n,
                    "must be incremented upon template update",
                ));
            } else if n > o && !changed {
                errs.push(FieldError::invalid(
                    &tg,
                    n,
                    "must not be incremented without template update",
                ));
            }
        }
    }
    let sel = spec.field("selector");
    if let Some(s) = sel.filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(s, p.child("selector").as_str()));
    }
    if selector_matches(sel, template_labels(spec)) == Some(false) {
        errs.push(FieldError::invalid(
            p.child("template").child("metadata").child("labels"),
            template_labels(spec).cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(s) = sel.filter(|s| !s.is_null()) {
        let n = s.obj_of("matchLabels").map_or(0, |m| m.len()) + s.arr_of("matchExpressions").len();
        if n == 0 {
            errs.push(FieldError::invalid(
                p.child("selector"),
                s.clone(),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    let tp = p.child("template");
    let template = spec.obj_of("template");
    pod_template_spec(&mut errs, template, &tp);
    let pod_spec = template.and_then(|t| t.obj_of("spec"));
    always_restart(&mut errs, pod_spec, &tp);
    if let Some(ads) = pod_spec
        .field("activeDeadlineSeconds")
        .filter(|v| !v.is_null())
    {
        errs.push(FieldError::invalid(
            tp.child("spec").child("activeDeadlineSeconds"),
            ads.clone(),
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(
        &mut errs,
        &p.child("minReadySeconds"),
        spec.int_of("minReadySeconds"),
    );
    nonnegative(
        &mut errs,
        &p.child("templateGeneration"),
        spec.int_of("templateGeneration"),
    );
    daemon_set_strategy(
        &mut errs,
        spec.obj_of("updateStrategy"),
        &p.child("updateStrategy"),
    );
    nonnegative(
        &mut errs,
        &p.child("revisionHistoryLimit"),
        spec.int_of("revisionHistoryLimit"),
    );
    selector_immutable(&mut errs, obj, old);
    errs
}

fn daemon_set_strategy(errs: &mut Errs, strategy: Option<&Obj>, path: &Path) {
    match strategy.str_of("type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(ru) = strategy.obj_of("rollingUpdate") else {
                errs.push(FieldError::required(path.child("rollingUpdate"), ""));
                return;
            };
            let rp = path.child("rollingUpdate");
            let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
            positive_int_or_percent(errs, &rp.child("maxUnavailable"), mu);
            positive_int_or_percent(errs, &rp.child("maxSurge"), ms);
            not_more_than_100_percent(errs, &rp.child("maxUnavailable"), mu);
            not_more_than_100_percent(errs, &rp.child("maxSurge"), ms);
            let has_unavailable = int_or_percent(mu).0 != 0;
            let has_surge = int_or_percent(ms).0 != 0;
            if has_unavailable && has_surge {
                errs.push(FieldError::invalid(
                    rp.child("maxSurge"),
                    ms.cloned().unwrap_or(Value::Null),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(
                    rp.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        _ => errs.push(not_supported(
            path,
            strategy.cloned().map(Value::Object).unwrap_or(Value::Null),
            &["RollingUpdate", "OnDelete"],
        )),
    }
}

pub(super) fn controller_revision(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    if !obj.has("data") {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    nonnegative(&mut errs, &Path::new("revision"), obj.int_of("revision"));
    if let Some(old) = old {
        immutable(
            &mut errs,
            &Path::new("data"),
            obj.get("data"),
            old.get("data"),
        );
    }
    errs
}
