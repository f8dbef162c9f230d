//! The scheduling constraints of a pod spec, as upstream's `ValidatePodSpec` checks them:
//! `validateAffinity` (node affinity, pod affinity and anti-affinity), `validateSchedulingGates`
//! and `validateTopologySpreadConstraints`, with apimachinery's `ValidateLabelSelector` for the
//! selectors inside them. `nodeSelector` and tolerations are checked in `pod.rs`.
//!
//! Upstream relaxes three of these checks for a spec whose stored version already broke them
//! (they were tightened after such objects could be stored), see
//! `GetValidationOptionsFromPodSpecAndMeta`; [`Relaxations::from_old`] derives the same from the
//! old spec on update. On create nothing is relaxed.

use super::common::{qualified_name, Errs};
use crate::json::{Get, Obj};
use apimachinery::validation::{
    is_valid_label_value, name_is_dns_subdomain, validate_label_name, validate_labels,
    validate_namespace_name,
};
use apimachinery::{FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

const IN_NOT_IN_MSG: &str = "must be specified when `operator` is 'In' or 'NotIn'";
const EXISTS_MSG: &str = "may not be specified when `operator` is 'Exists' or 'DoesNotExist'";
const BAD_OPERATOR_MSG: &str = "not a valid selector operator";
const WEIGHT_MSG: &str = "must be in the range 1-100";
const NO_SELECTOR_MSG: &str = "must not be specified when labelSelector is not set";
const IN_SELECTOR_MSG: &str = "exists in both matchLabelKeys and labelSelector";
/// The only key a node field selector (`matchFields`) may use.
const NODE_NAME_FIELD: &str = "metadata.name";

/// Upstream's backward-compatibility options (`PodValidationOptions`) for these checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Relaxations {
    /// `AllowInvalidLabelValueInSelector`: pod (anti-)affinity selector values need not be
    /// label values.
    pub(crate) selector_values: bool,
    /// `AllowInvalidTopologySpreadConstraintLabelSelector`: spread selectors are not checked.
    pub(crate) spread_selector: bool,
    /// `AllowInvalidLabelValueInRequiredNodeAffinity`: required node affinity values need not
    /// be label values.
    pub(crate) required_node_values: bool,
}

impl Relaxations {
    /// Each relaxation is on when the old spec already breaks the check it relaxes.
    pub(crate) fn from_old(old_spec: Option<&Obj>) -> Relaxations {
        let Some(old) = old_spec else {
            return Relaxations::default();
        };
        let affinity = old.field("affinity");
        let breaks = |check: &dyn Fn(&mut Errs)| {
            let mut scratch = Errs::new();
            check(&mut scratch);
            !scratch.is_empty()
        };
        let selector_values = ["podAffinity", "podAntiAffinity"].iter().any(|kind| {
            let a = affinity.field(kind);
            let required = a.arr_of("requiredDuringSchedulingIgnoredDuringExecution");
            let preferred = a
                .arr_of("preferredDuringSchedulingIgnoredDuringExecution")
                .iter()
                .filter_map(|w| w.get("podAffinityTerm"));
            required
                .iter()
                .chain(preferred)
                .any(|term| breaks(&|e| term_selectors(e, term, false, &Path::default())))
        });
        let spread_selector = old.arr_of("topologySpreadConstraints").iter().any(|c| {
            breaks(&|e| label_selector(e, c.get("labelSelector"), false, &Path::default()))
        });
        let required_node_values = affinity
            .field("nodeAffinity")
            .field("requiredDuringSchedulingIgnoredDuringExecution")
            .arr_of("nodeSelectorTerms")
            .iter()
            .flat_map(|t| t.arr_of("matchExpressions"))
            .flat_map(|r| r.arr_of("values"))
            .any(|v| !is_valid_label_value(v.as_str().unwrap_or("")).is_empty());
        Relaxations {
            selector_values,
            spread_selector,
            required_node_values,
        }
    }
}

/// The scheduling part of `ValidatePodSpec`, in upstream's order: `affinity`,
/// `schedulingGates`, `topologySpreadConstraints`. `spec` is the pod spec at `path`; `old_spec`
/// is the stored spec on update (`None` on create), which only decides the [`Relaxations`].
pub(crate) fn pod_scheduling(
    errs: &mut Errs,
    spec: Option<&Obj>,
    old_spec: Option<&Obj>,
    path: &Path,
) {
    let relax = Relaxations::from_old(old_spec);
    if let Some(a) = spec.field("affinity").filter(|a| !a.is_null()) {
        affinity(errs, a, relax, &path.child("affinity"));
    }
    scheduling_gates(
        errs,
        spec.arr_of("schedulingGates"),
        &path.child("schedulingGates"),
    );
    topology_spread_constraints(
        errs,
        spec.arr_of("topologySpreadConstraints"),
        relax.spread_selector,
        &path.child("topologySpreadConstraints"),
    );
}

/// `validateAffinity`.
pub(crate) fn affinity(errs: &mut Errs, a: &Value, relax: Relaxations, path: &Path) {
    if let Some(na) = present(a, "nodeAffinity") {
        node_affinity(
            errs,
            na,
            relax.required_node_values,
            &path.child("nodeAffinity"),
        );
    }
    for kind in ["podAffinity", "podAntiAffinity"] {
        if let Some(pa) = present(a, kind) {
            pod_affinity(errs, pa, relax.selector_values, &path.child(kind));
        }
    }
}

/// A field holding a non-null value (a non-nil Go pointer).
fn present<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

/// `validateNodeAffinity`: the required selector, then the weighted preferences (whose values
/// are never checked as label values: they may still match on a one-node cluster).
fn node_affinity(errs: &mut Errs, na: &Value, allow_invalid_values: bool, path: &Path) {
    const REQUIRED: &str = "requiredDuringSchedulingIgnoredDuringExecution";
    if let Some(sel) = present(na, REQUIRED) {
        node_selector(errs, sel, allow_invalid_values, &path.child(REQUIRED));
    }
    let pp = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in na
        .arr_of("preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        weight(errs, term, &pp.index(i));
        let pref = term.get("preference").unwrap_or(&Value::Null);
        node_selector_term(errs, pref, true, &pp.index(i).child("preference"));
    }
}

/// A preference's `weight` must be in 1..=100.
fn weight(errs: &mut Errs, term: &Value, path: &Path) {
    let w = term.int_of("weight").unwrap_or(0);
    if !(1..=100).contains(&w) {
        errs.push(FieldError::invalid(path.child("weight"), w, WEIGHT_MSG));
    }
}

/// `ValidateNodeSelector`: at least one term, each valid.
pub(crate) fn node_selector(errs: &mut Errs, sel: &Value, allow_invalid_values: bool, path: &Path) {
    let tp = path.child("nodeSelectorTerms");
    let terms = sel.arr_of("nodeSelectorTerms");
    if terms.is_empty() {
        errs.push(FieldError::required(
            tp,
            "must have at least one node selector term",
        ));
        return;
    }
    for (i, term) in terms.iter().enumerate() {
        node_selector_term(errs, term, allow_invalid_values, &tp.index(i));
    }
}

/// `ValidateNodeSelectorTerm`.
fn node_selector_term(errs: &mut Errs, term: &Value, allow_invalid_values: bool, path: &Path) {
    let ep = path.child("matchExpressions");
    for (i, req) in term.arr_of("matchExpressions").iter().enumerate() {
        node_selector_requirement(errs, req, allow_invalid_values, &ep.index(i));
    }
    let fp = path.child("matchFields");
    for (i, req) in term.arr_of("matchFields").iter().enumerate() {
        node_field_selector_requirement(errs, req, &fp.index(i));
    }
}

/// `ValidateNodeSelectorRequirement`. `Gt` and `Lt` take one value; upstream does not check
/// that it is an integer (the scheduler then treats the term as matching no node).
fn node_selector_requirement(
    errs: &mut Errs,
    req: &Value,
    allow_invalid_values: bool,
    path: &Path,
) {
    let values = req.arr_of("values");
    let vp = path.child("values");
    match req.str_of("operator") {
        "In" | "NotIn" => {
            if values.is_empty() {
                errs.push(FieldError::required(&vp, IN_NOT_IN_MSG));
            }
        }
        "Exists" | "DoesNotExist" => {
            if !values.is_empty() {
                errs.push(FieldError::forbidden(&vp, EXISTS_MSG));
            }
        }
        "Gt" | "Lt" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &vp,
                    "must be specified single value when `operator` is 'Lt' or 'Gt'",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            path.child("operator"),
            op,
            BAD_OPERATOR_MSG,
        )),
    }
    errs.extend(validate_label_name(
        req.str_of("key"),
        path.child("key").as_str(),
    ));
    if !allow_invalid_values {
        label_values(errs, values, &vp);
    }
}

/// `ValidateNodeFieldSelectorRequirement`: `metadata.name` `In`/`NotIn` exactly one node name.
fn node_field_selector_requirement(errs: &mut Errs, req: &Value, path: &Path) {
    let values = req.arr_of("values");
    let vp = path.child("values");
    match req.str_of("operator") {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    &vp,
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        op => errs.push(FieldError::invalid(
            path.child("operator"),
            op,
            BAD_OPERATOR_MSG,
        )),
    }
    let key = req.str_of("key");
    if key != NODE_NAME_FIELD {
        errs.push(FieldError::invalid(
            path.child("key"),
            key,
            "not a valid field selector key",
        ));
        return;
    }
    for (i, v) in values.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        for m in name_is_dns_subdomain(v, false) {
            errs.push(FieldError::invalid(vp.index(i), v, m));
        }
    }
}

/// Every value must be a label value (`AllowInvalidLabelValue...` off).
fn label_values(errs: &mut Errs, values: &[Value], path: &Path) {
    for (i, v) in values.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path.index(i), v, m));
        }
    }
}

/// `validatePodAffinity` and `validatePodAntiAffinity`, which check the same fields.
fn pod_affinity(errs: &mut Errs, pa: &Value, allow_invalid_values: bool, path: &Path) {
    let rp = path.child("requiredDuringSchedulingIgnoredDuringExecution");
    for (i, term) in pa
        .arr_of("requiredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        pod_affinity_term(errs, term, allow_invalid_values, &rp.index(i));
    }
    let pp = path.child("preferredDuringSchedulingIgnoredDuringExecution");
    for (i, w) in pa
        .arr_of("preferredDuringSchedulingIgnoredDuringExecution")
        .iter()
        .enumerate()
    {
        weight(errs, w, &pp.index(i));
        let term = w.get("podAffinityTerm").unwrap_or(&Value::Null);
        pod_affinity_term(
            errs,
            term,
            allow_invalid_values,
            &pp.index(i).child("podAffinityTerm"),
        );
    }
}

/// `validatePodAffinityTerm`.
fn pod_affinity_term(errs: &mut Errs, term: &Value, allow_invalid_values: bool, path: &Path) {
    term_selectors(errs, term, allow_invalid_values, path);
    for ns in term.arr_of("namespaces") {
        let ns = ns.as_str().unwrap_or("");
        for m in validate_namespace_name(ns, false) {
            // Upstream reports these at `namespace`, singular.
            errs.push(FieldError::invalid(path.child("namespace"), ns, m));
        }
    }
    match_and_mismatch_label_keys(errs, term, path);
    let key = term.str_of("topologyKey");
    let kp = path.child("topologyKey");
    if key.is_empty() {
        errs.push(FieldError::required(&kp, "can not be empty"));
    }
    errs.extend(validate_label_name(key, kp.as_str()));
}

/// `ValidatePodAffinityTermSelector`: the term's label and namespace selectors.
fn term_selectors(errs: &mut Errs, term: &Value, allow_invalid_values: bool, path: &Path) {
    for key in ["labelSelector", "namespaceSelector"] {
        label_selector(errs, term.get(key), allow_invalid_values, &path.child(key));
    }
}

/// apimachinery's `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector`.
pub(crate) fn label_selector(
    errs: &mut Errs,
    sel: Option<&Value>,
    allow_invalid_values: bool,
    path: &Path,
) {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return;
    };
    if let Some(labels) = sel.obj_of("matchLabels") {
        errs.extend(validate_labels(labels, path.child("matchLabels").as_str()));
    }
    let ep = path.child("matchExpressions");
    for (i, req) in sel.arr_of("matchExpressions").iter().enumerate() {
        let p = ep.index(i);
        let values = req.arr_of("values");
        let vp = p.child("values");
        match req.str_of("operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(&vp, IN_NOT_IN_MSG));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(&vp, EXISTS_MSG));
                }
            }
            op => errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                BAD_OPERATOR_MSG,
            )),
        }
        errs.extend(validate_label_name(
            req.str_of("key"),
            p.child("key").as_str(),
        ));
        if !allow_invalid_values {
            label_values(errs, values, &vp);
        }
    }
}

fn strings(values: &[Value]) -> Vec<&str> {
    values.iter().map(|v| v.as_str().unwrap_or("")).collect()
}

/// The keys of a selector's `matchLabels`.
fn match_label_keys_of(sel: &Value) -> HashSet<&str> {
    sel.obj_of("matchLabels")
        .into_iter()
        .flat_map(|m| m.keys().map(String::as_str))
        .collect()
}

/// `validateMatchLabelKeysAndMismatchLabelKeys` of a pod affinity term.
fn match_and_mismatch_label_keys(errs: &mut Errs, term: &Value, path: &Path) {
    let selector = present(term, "labelSelector");
    let matches = strings(term.arr_of("matchLabelKeys"));
    let mismatches = strings(term.arr_of("mismatchLabelKeys"));
    for (key, keys) in [
        ("matchLabelKeys", &matches),
        ("mismatchLabelKeys", &mismatches),
    ] {
        label_keys(errs, keys, selector.is_some(), &path.child(key));
    }
    if let Some(sel) = selector {
        // A key repeated within the selector and named in matchLabelKeys: what a merge of
        // matchLabelKeys into the selector produces when the user also selected on that key.
        let mut seen = match_label_keys_of(sel);
        for req in sel.arr_of("matchExpressions") {
            let key = req.str_of("key");
            if let Some(i) = matches.iter().rposition(|k| *k == key) {
                if seen.contains(key) {
                    // Upstream indexes the term's own path here, not `matchLabelKeys`.
                    errs.push(FieldError::invalid(path.index(i), key, IN_SELECTOR_MSG));
                }
            }
            seen.insert(key);
        }
    }
    let mismatch_set: HashSet<&str> = mismatches.iter().copied().collect();
    for (i, key) in matches.iter().enumerate() {
        if mismatch_set.contains(key) {
            errs.push(FieldError::invalid(
                path.child("matchLabelKeys").index(i),
                *key,
                "exists in both matchLabelKeys and mismatchLabelKeys",
            ));
        }
    }
}

/// `validateLabelKeys`: label names, and only alongside a label selector.
fn label_keys(errs: &mut Errs, keys: &[&str], has_selector: bool, path: &Path) {
    if keys.is_empty() {
        return;
    }
    if !has_selector {
        errs.push(FieldError::forbidden(path, NO_SELECTOR_MSG));
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        errs.extend(validate_label_name(key, path.index(i).as_str()));
    }
}

/// `validateSchedulingGates`: qualified names, no repeats.
fn scheduling_gates(errs: &mut Errs, gates: &[Value], path: &Path) {
    let mut seen = HashSet::new();
    for (i, gate) in gates.iter().enumerate() {
        let name = gate.str_of("name");
        let p = path.index(i);
        qualified_name(errs, &p, name);
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(&p, name));
        }
    }
}

/// `validateTopologySpreadConstraints`.
fn topology_spread_constraints(
    errs: &mut Errs,
    constraints: &[Value],
    allow_invalid_selector: bool,
    path: &Path,
) {
    const ACTIONS: &[&str] = &["DoNotSchedule", "ScheduleAnyway"];
    const POLICIES: &[&str] = &["Honor", "Ignore"];
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        let max_skew = c.int_of("maxSkew").unwrap_or(0);
        if max_skew <= 0 {
            errs.push(FieldError::invalid(
                p.child("maxSkew"),
                max_skew,
                "must be greater than zero",
            ));
        }
        let key = c.str_of("topologyKey");
        if key.is_empty() {
            errs.push(FieldError::required(
                p.child("topologyKey"),
                "can not be empty",
            ));
        }
        let action = c.str_of("whenUnsatisfiable");
        if !ACTIONS.contains(&action) {
            errs.push(FieldError::not_supported(
                p.child("whenUnsatisfiable"),
                action,
                ACTIONS,
            ));
        }
        let repeated = constraints.iter().skip(i + 1).any(|other| {
            other.str_of("topologyKey") == key && other.str_of("whenUnsatisfiable") == action
        });
        if repeated {
            errs.push(FieldError::duplicate(
                p.child("{topologyKey, whenUnsatisfiable}"),
                format!("{{{key}, {action}}}"),
            ));
        }
        if let Some(min) = c.int_of("minDomains") {
            let mp = p.child("minDomains");
            if min <= 0 {
                errs.push(FieldError::invalid(&mp, min, "must be greater than zero"));
            }
            if action != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    &mp,
                    min,
                    format!(
                        "can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"
                    ),
                ));
            }
        }
        for key in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(policy) = c.opt_str(key).filter(|v| !POLICIES.contains(v)) {
                errs.push(FieldError::not_supported(p.child(key), policy, POLICIES));
            }
        }
        spread_match_label_keys(errs, c, &p.child("matchLabelKeys"));
        if !allow_invalid_selector {
            label_selector(
                errs,
                c.get("labelSelector"),
                false,
                &p.child("labelSelector"),
            );
        }
    }
}

/// `validateMatchLabelKeysInTopologySpread`: label names not already in the selector.
fn spread_match_label_keys(errs: &mut Errs, c: &Value, path: &Path) {
    let keys = strings(c.arr_of("matchLabelKeys"));
    if keys.is_empty() {
        return;
    }
    let mut selector_keys = HashSet::new();
    match present(c, "labelSelector") {
        Some(sel) => {
            selector_keys = match_label_keys_of(sel);
            selector_keys.extend(
                sel.arr_of("matchExpressions")
                    .iter()
                    .map(|r| r.str_of("key")),
            );
        }
        None => errs.push(FieldError::forbidden(path, NO_SELECTOR_MSG)),
    }
    for (i, key) in keys.iter().enumerate() {
        let kp = path.index(i);
        errs.extend(validate_label_name(key, kp.as_str()));
        if selector_keys.contains(key) {
            errs.push(FieldError::invalid(kp, *key, IN_SELECTOR_MSG));
        }
    }
}

#[cfg(test)]
mod tests;
