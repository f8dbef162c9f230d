//! The restricted-level checks (upstream policy/check_*.go with Level Restricted), each
//! returning upstream's reason and detail texts. `minor` is the policy version's minor;
//! checks newer than the version do not run.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{array, containers_phrase, flag, is_zero, join_quote, object, str_of, Pod, Violation};
use crate::message::go_quote;

/// allowPrivilegeEscalation must be explicitly false (v1.8+).
pub(super) fn allow_privilege_escalation(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    if minor < 8 {
        return None;
    }
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| flag(c.security_context(), "allowPrivilegeEscalation") != Some(false))
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(Violation::new(
        "allowPrivilegeEscalation != false",
        format!(
            "{} must set securityContext.allowPrivilegeEscalation=false",
            containers_phrase(&bad)
        ),
    ))
}

/// Containers must drop ALL and may add only NET_BIND_SERVICE (v1.22+).
pub(super) fn capabilities_restricted(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    if minor < 22 {
        return None;
    }
    let mut missing_drop_all = Vec::new();
    let mut adding_forbidden = Vec::new();
    let mut forbidden_caps = BTreeSet::new();
    for c in pod.containers() {
        let Some(capabilities) = object(c.security_context(), "capabilities") else {
            missing_drop_all.push(c.name());
            continue;
        };
        if !array(capabilities.get("drop")).any(|d| d.as_str() == Some("ALL")) {
            missing_drop_all.push(c.name());
        }
        let mut added_forbidden = false;
        for cap in array(capabilities.get("add")) {
            let cap = str_of(Some(cap));
            if cap != "NET_BIND_SERVICE" {
                added_forbidden = true;
                forbidden_caps.insert(cap.to_string());
            }
        }
        if added_forbidden {
            adding_forbidden.push(c.name());
        }
    }
    let mut details = Vec::new();
    if !missing_drop_all.is_empty() {
        details.push(format!(
            "{} must set securityContext.capabilities.drop=[\"ALL\"]",
            containers_phrase(&missing_drop_all)
        ));
    }
    if !adding_forbidden.is_empty() {
        let caps: Vec<String> = forbidden_caps.into_iter().collect();
        details.push(format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&adding_forbidden),
            join_quote(&caps)
        ));
    }
    if details.is_empty() {
        return None;
    }
    Some(Violation::new(
        "unrestricted capabilities",
        details.join("; "),
    ))
}

/// Volume sources allowed by restricted: the ones backed by the API or by
/// PersistentVolumes (whose own admission applies), plus image volumes (since v1.33).
const ALLOWED_VOLUME_SOURCES: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Only the allowed volume types.
pub(super) fn restricted_volumes(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let names: BTreeSet<String> = pod
        .volumes()
        .filter(|v| {
            !ALLOWED_VOLUME_SOURCES
                .iter()
                .any(|src| v.get(*src).is_some_and(|s| !s.is_null()))
        })
        .map(|v| str_of(v.get("name")).to_string())
        .collect();
    if names.is_empty() {
        return None;
    }
    // Upstream formats the list with Go's %q on a []string: ["a" "b"].
    let quoted: Vec<String> = names.iter().map(|n| go_quote(n)).collect();
    Some(Violation::new(
        "restricted volume types",
        format!("volumes [{}] have restricted types", quoted.join(" ")),
    ))
}

/// runAsNonRoot must be true on the pod (covering unset containers) or on every
/// container, and never explicitly false.
pub(super) fn run_as_non_root(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let mut setters = Vec::new();
    let mut pod_non_root = false;
    match flag(pod.security_context(), "runAsNonRoot") {
        Some(false) => setters.push("pod".to_string()),
        Some(true) => pod_non_root = true,
        None => {}
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match flag(c.security_context(), "runAsNonRoot") {
            Some(false) => explicit.push(c.name()),
            Some(true) => {}
            None if !pod_non_root => implicit.push(c.name()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        return Some(Violation::new(
            "runAsNonRoot != true",
            format!(
                "{} must not set securityContext.runAsNonRoot=false",
                setters.join(" and ")
            ),
        ));
    }
    if !implicit.is_empty() {
        return Some(Violation::new(
            "runAsNonRoot != true",
            format!(
                "pod or {} must set securityContext.runAsNonRoot=true",
                containers_phrase(&implicit)
            ),
        ));
    }
    None
}

/// runAsUser must not be 0 on the pod or any container (v1.23+).
pub(super) fn run_as_user(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    if minor < 23 {
        return None;
    }
    let root =
        |sc: Option<&serde_json::Map<String, Value>>| is_zero(sc.and_then(|s| s.get("runAsUser")));
    let mut setters = Vec::new();
    if root(pod.security_context()) {
        setters.push("pod".to_string());
    }
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| root(c.security_context()))
        .map(|c| c.name())
        .collect();
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Some(Violation::new(
        "runAsUser=0",
        format!("{} must not set runAsUser=0", setters.join(" and ")),
    ))
}

/// seccompProfile.type must be RuntimeDefault or Localhost, set on the pod or on every
/// container (v1.19+).
pub(super) fn seccomp_profile_restricted(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    if minor < 19 {
        return None;
    }
    let valid = |t: &str| matches!(t, "RuntimeDefault" | "Localhost");
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    let mut pod_set = false;
    if let Some(profile) = object(pod.security_context(), "seccompProfile") {
        let t = str_of(profile.get("type"));
        if valid(t) {
            pod_set = true;
        } else {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let mut explicit = Vec::new();
    let mut implicit = Vec::new();
    for c in pod.containers() {
        match object(c.security_context(), "seccompProfile") {
            Some(profile) => {
                let t = str_of(profile.get("type"));
                if !valid(t) {
                    explicit.push(c.name());
                    values.insert(t.to_string());
                }
            }
            None if !pod_set => implicit.push(c.name()),
            None => {}
        }
    }
    if !explicit.is_empty() {
        setters.push(containers_phrase(&explicit));
    }
    if !setters.is_empty() {
        let values: Vec<String> = values.into_iter().collect();
        return Some(Violation::new(
            "seccompProfile",
            format!(
                "{} must not set securityContext.seccompProfile.type to {}",
                setters.join(" and "),
                join_quote(&values)
            ),
        ));
    }
    if !implicit.is_empty() {
        return Some(Violation::new(
            "seccompProfile",
            format!(
                "pod or {} must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\"",
                containers_phrase(&implicit)
            ),
        ));
    }
    None
}
