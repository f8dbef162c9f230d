//! batch/v1 validation: Job (spec, selector, and the update rules: immutable selector,
//! template, completion mode, pod failure policy) and CronJob (schedule, policies, job
//! template).

use super::common::{enum_field, immutable, nonnegative, not_supported, selector_matches, Errs};
use super::cron;
use super::pod::pod_template_spec;
use crate::json::{Get, Obj};
use apimachinery::validation::validate_label_selector;
use apimachinery::{FieldError, Path};
use serde_json::Value;

/// Upstream's `maxParallelismForIndexedJob`.
const MAX_PARALLELISM_INDEXED: i64 = 100_000;

pub(super) fn job(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = Path::new("spec");
    job_spec(&mut errs, spec, &p);
    match spec.field("selector").filter(|s| !s.is_null()) {
        None => errs.push(FieldError::required(p.child("selector"), "")),
        Some(s) => errs.extend(validate_label_selector(s, p.child("selector").as_str())),
    }
    let labels = spec
        .obj_of("template")
        .and_then(|t| t.obj_of("metadata"))
        .and_then(|m| m.get("labels"));
    if spec.has("selector") && selector_matches(spec.field("selector"), labels) == Some(false) {
        errs.push(FieldError::invalid(
            p.child("template").child("metadata").child("labels"),
            labels.cloned().unwrap_or(Value::Null),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(old) = old {
        job_update(&mut errs, spec, old.obj_of("spec"), old, &p);
    }
    errs
}

/// `validateJobSpec`, shared with CronJob job templates.
fn job_spec(errs: &mut Errs, spec: Option<&Obj>, p: &Path) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        nonnegative(errs, &p.child(key), spec.int_of(key));
    }
    let mode = spec.opt_str("completionMode");
    if let Some(m) = mode {
        if !matches!(m, "NonIndexed" | "Indexed") {
            errs.push(not_supported(
                &p.child("completionMode"),
                m,
                &["NonIndexed", "Indexed"],
            ));
        }
    }
    let indexed = mode == Some("Indexed");
    if spec.has("backoffLimitPerIndex") && !indexed {
        errs.push(FieldError::forbidden(
            p.child("backoffLimitPerIndex"),
            "requires indexed completion mode",
        ));
    }
    if spec.has("maxFailedIndexes") && !spec.has("backoffLimitPerIndex") {
        errs.push(FieldError::required(
            p.child("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    if indexed {
        if !spec.has("completions") {
            errs.push(FieldError::required(
                p.child("completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(par) = spec
            .int_of("parallelism")
            .filter(|v| *v > MAX_PARALLELISM_INDEXED)
        {
            errs.push(FieldError::invalid(
                p.child("parallelism"),
                par,
                format!(
                    "must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"
                ),
            ));
        }
    }
    if let Some(prp) = spec.opt_str("podReplacementPolicy") {
        let valid: &[&str] = if spec.has("podFailurePolicy") {
            &["Failed"]
        } else {
            &["TerminatingOrFailed", "Failed"]
        };
        if !valid.contains(&prp) {
            errs.push(not_supported(&p.child("podReplacementPolicy"), prp, valid));
        }
    }
    let tp = p.child("template");
    let template = spec.obj_of("template");
    pod_template_spec(errs, template, &tp);
    let rp = template
        .and_then(|t| t.obj_of("spec"))
        .str_of("restartPolicy");
    let rpp = tp.child("spec").child("restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            rpp,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(not_supported(&rpp, rp, &["OnFailure", "Never"]));
    } else if spec.has("podFailurePolicy") && rp != "Never" {
        errs.push(FieldError::invalid(
            rpp,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
}

fn job_update(errs: &mut Errs, spec: Option<&Obj>, old_spec: Option<&Obj>, old: &Value, p: &Path) {
    let indexed = spec.opt_str("completionMode") == Some("Indexed");
    let completions = spec.field("completions");
    let old_completions = old_spec.field("completions");
    if !indexed {
        immutable(errs, &p.child("completions"), completions, old_completions);
    } else if completions.is_some_and(|c| !c.is_null())
        && !super::common::semantic_eq(
            completions.unwrap_or(&Value::Null),
            old_completions.unwrap_or(&Value::Null),
        )
        && spec.int_of("completions") != spec.int_of("parallelism")
    {
        errs.push(FieldError::invalid(
            p.child("completions"),
            completions.cloned().unwrap_or(Value::Null),
            "can only be modified in tandem with spec.parallelism",
        ));
    }
    immutable(
        errs,
        &p.child("selector"),
        spec.field("selector"),
        old_spec.field("selector"),
    );
    // A suspended Job that never started may change its scheduling directives.
    let mutable_scheduling = old_spec.bool_of("suspend") && !old.field("status").has("startTime");
    let mut old_template = old_spec.obj_of("template").cloned().unwrap_or_default();
    let template = spec.obj_of("template").cloned().unwrap_or_default();
    if mutable_scheduling {
        let copy_meta = |k: &str, old_template: &mut Obj| {
            let v = template.obj_of("metadata").and_then(|m| m.get(k)).cloned();
            if let Some(meta) = crate::json::child_obj(old_template, "metadata") {
                match v {
                    Some(v) => meta.insert(k.into(), v),
                    None => meta.remove(k),
                };
            }
        };
        copy_meta("labels", &mut old_template);
        copy_meta("annotations", &mut old_template);
        let new_pod = template.obj_of("spec");
        if let Some(old_pod) = crate::json::child_obj(&mut old_template, "spec") {
            for k in ["nodeSelector", "tolerations", "schedulingGates"] {
                match new_pod.and_then(|s| s.get(k)).cloned() {
                    Some(v) => old_pod.insert(k.into(), v),
                    None => old_pod.remove(k),
                };
            }
            let node_affinity = new_pod
                .and_then(|s| s.obj_of("affinity"))
                .and_then(|a| a.get("nodeAffinity"))
                .cloned();
            let new_has_affinity = new_pod.has("affinity");
            match crate::json::existing_obj(old_pod, "affinity") {
                Some(aff) => {
                    match node_affinity {
                        Some(na) => aff.insert("nodeAffinity".into(), na),
                        None => aff.remove("nodeAffinity"),
                    };
                    if !new_has_affinity && aff.is_empty() {
                        old_pod.remove("affinity");
                    }
                }
                None => {
                    if new_has_affinity {
                        let mut aff = Obj::new();
                        if let Some(na) = node_affinity {
                            aff.insert("nodeAffinity".into(), na);
                        }
                        old_pod.insert("affinity".into(), Value::Object(aff));
                    }
                }
            }
        }
    }
    immutable(
        errs,
        &p.child("template"),
        Some(&Value::Object(template)),
        Some(&Value::Object(old_template)),
    );
    for key in ["completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        immutable(errs, &p.child(key), spec.field(key), old_spec.field(key));
    }
}

pub(super) fn cron_job(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let old_spec = old.and_then(|o| o.obj_of("spec"));
    let p = Path::new("spec");
    let schedule = spec.str_of("schedule");
    let sp = p.child("schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(&sp, ""));
    } else {
        if let Err(e) = cron::parse_standard(schedule) {
            errs.push(FieldError::invalid(&sp, schedule, e));
        }
        let allow_tz = old_spec.is_some_and(|o| o.str_of("schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && spec.has("timeZone") {
            errs.push(FieldError::invalid(
                &sp,
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                &sp,
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    nonnegative(
        &mut errs,
        &p.child("startingDeadlineSeconds"),
        spec.int_of("startingDeadlineSeconds"),
    );
    if old_spec.field("timeZone") != spec.field("timeZone") {
        if let Some(tz) = spec.opt_str("timeZone") {
            time_zone(&mut errs, tz, &p.child("timeZone"));
        }
    }
    enum_field(
        &mut errs,
        &p.child("concurrencyPolicy"),
        spec.str_of("concurrencyPolicy"),
        &["Allow", "Forbid", "Replace"],
    );
    let jt = spec.obj_of("jobTemplate");
    let jp = p.child("jobTemplate");
    let js = jt.and_then(|t| t.obj_of("spec"));
    job_spec(&mut errs, js, &jp.child("spec"));
    if let Some(sel) = js.field("selector").filter(|s| !s.is_null()) {
        errs.push(FieldError::invalid(
            jp.child("spec").child("selector"),
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if js.bool_of("manualSelector") {
        errs.push(not_supported(
            &jp.child("spec").child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    for key in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        nonnegative(&mut errs, &p.child(key), spec.int_of(key));
    }
    errs
}

/// `validateTimeZone`: an IANA name; without a zone database only the shape is checked.
fn time_zone(errs: &mut Errs, tz: &str, path: &Path) {
    if tz.is_empty() {
        return;
    }
    if tz.eq_ignore_ascii_case("local") {
        errs.push(FieldError::invalid(path, tz, "unknown time zone Local"));
        return;
    }
    let valid_shape = !tz.starts_with('/')
        && !tz.contains("..")
        && tz
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '_' | '-' | '+'));
    if !valid_shape {
        errs.push(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
}
