//! The check registry: which checks a level and version run, in upstream's order, and
//! the JSON accessors every check shares.
//!
//! Upstream registers checks in source file name order and evaluates the plain baseline
//! checks first, then either the "overlapping" baseline checks (for baseline) or the
//! restricted checks (for restricted, whose own versions of capabilities, volumes and
//! seccomp supersede the overlapping baseline ones). Violations come out in that order.
//!
//! Inputs are untrusted JSON: a field of the wrong type reads as unset, never panics.

mod baseline;
mod restricted;

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::level::{Level, PolicyVersion};

/// One failed check: upstream's `ForbiddenReason` and `ForbiddenDetail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Violation {
    reason: String,
    detail: String,
}

impl Violation {
    pub(crate) fn new(reason: impl Into<String>, detail: impl Into<String>) -> Self {
        Violation {
            reason: reason.into(),
            detail: detail.into(),
        }
    }

    /// `reason (detail)`, or just `reason` when there is no detail.
    fn render(&self) -> String {
        if self.detail.is_empty() {
            self.reason.clone()
        } else {
            format!("{} ({})", self.reason, self.detail)
        }
    }
}

type CheckFn = fn(&Pod<'_>, u32) -> Option<Violation>;

/// Checks of the baseline level that restricted keeps as they are.
const BASELINE: &[CheckFn] = &[
    baseline::app_armor_profile,
    baseline::host_namespaces,
    baseline::host_ports,
    baseline::privileged,
    baseline::proc_mount,
    baseline::se_linux_options,
    baseline::sysctls,
    baseline::windows_host_process,
];

/// Baseline checks that a stricter restricted check replaces.
const BASELINE_OVERLAPPING: &[CheckFn] = &[
    baseline::capabilities_baseline,
    baseline::host_path_volumes,
    baseline::seccomp_profile_baseline,
];

const RESTRICTED: &[CheckFn] = &[
    restricted::allow_privilege_escalation,
    restricted::capabilities_restricted,
    restricted::restricted_volumes,
    restricted::run_as_non_root,
    restricted::run_as_user,
    restricted::seccomp_profile_restricted,
];

/// Violations of `level` (at the newest policy version) by a pod, each rendered as
/// upstream's `reason (detail)`, in upstream's check order. Empty means allowed.
/// `pod_metadata` is the pod's (or template's) `metadata`, read for annotations.
pub fn check(level: Level, pod_metadata: &Value, pod_spec: &Value) -> Vec<String> {
    check_version(level, PolicyVersion::Latest, pod_metadata, pod_spec)
}

/// Like [`check`], at a given policy version (older versions run fewer or older checks).
pub fn check_version(
    level: Level,
    version: PolicyVersion,
    pod_metadata: &Value,
    pod_spec: &Value,
) -> Vec<String> {
    let checks: Vec<CheckFn> = match level {
        Level::Privileged => return Vec::new(),
        Level::Baseline => BASELINE
            .iter()
            .chain(BASELINE_OVERLAPPING)
            .copied()
            .collect(),
        Level::Restricted => BASELINE.iter().chain(RESTRICTED).copied().collect(),
    };
    let pod = Pod::new(pod_metadata, pod_spec);
    let minor = version.effective_minor();
    checks
        .into_iter()
        .filter_map(|check| check(&pod, minor))
        .map(|v| v.render())
        .collect()
}

/// Read-only view of the parts of a pod the checks look at.
pub(crate) struct Pod<'a> {
    spec: Option<&'a Map<String, Value>>,
    annotations: BTreeMap<&'a str, &'a str>,
}

impl<'a> Pod<'a> {
    fn new(metadata: &'a Value, spec: &'a Value) -> Self {
        // Annotations are map[string]string upstream; a non-string value cannot exist
        // in a stored object, so skipping it loses nothing.
        let annotations = metadata
            .get("annotations")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
                    .collect()
            })
            .unwrap_or_default();
        Pod {
            spec: spec.as_object(),
            annotations,
        }
    }

    fn field(&self, key: &str) -> Option<&'a Value> {
        self.spec.and_then(|s| s.get(key))
    }

    /// `spec.securityContext`, if set to an object.
    fn security_context(&self) -> Option<&'a Map<String, Value>> {
        self.field("securityContext").and_then(Value::as_object)
    }

    /// Init containers, then containers, then ephemeral containers, like upstream's
    /// visitor.
    fn containers(&self) -> impl Iterator<Item = Container<'a>> + '_ {
        ["initContainers", "containers", "ephemeralContainers"]
            .into_iter()
            .flat_map(move |key| array(self.field(key)))
            .map(Container)
    }

    fn volumes(&self) -> impl Iterator<Item = &'a Value> + '_ {
        array(self.field("volumes"))
    }
}

#[derive(Clone, Copy)]
pub(crate) struct Container<'a>(&'a Value);

impl<'a> Container<'a> {
    fn name(self) -> String {
        str_of(self.0.get("name")).to_string()
    }

    fn security_context(self) -> Option<&'a Map<String, Value>> {
        self.0.get("securityContext").and_then(Value::as_object)
    }

    fn get(self, key: &str) -> Option<&'a Value> {
        self.0.get(key)
    }
}

/// The elements of a JSON array; anything else is empty.
fn array(v: Option<&Value>) -> impl Iterator<Item = &Value> {
    v.and_then(Value::as_array)
        .map(|a| a.iter())
        .into_iter()
        .flatten()
}

/// A string field, or "" when unset or not a string (Go's zero value).
fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or("")
}

/// An object field that is set (non-null object), like a non-nil pointer upstream.
fn object<'a>(m: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a Map<String, Value>> {
    m.and_then(|m| m.get(key)).and_then(Value::as_object)
}

/// A `*bool` field: `None` when unset.
fn flag(m: Option<&Map<String, Value>>, key: &str) -> Option<bool> {
    m.and_then(|m| m.get(key)).and_then(Value::as_bool)
}

/// Whether an integer field is set to exactly zero.
fn is_zero(v: Option<&Value>) -> bool {
    v.and_then(Value::as_f64) == Some(0.0)
}

/// `"a", "b"` like upstream's joinQuote (no escaping, unlike `%q`).
fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let inner: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    format!("\"{}\"", inner.join("\", \""))
}

fn pluralize<'s>(singular: &'s str, plural: &'s str, count: usize) -> &'s str {
    if count == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`.
fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

#[cfg(test)]
mod tests;
