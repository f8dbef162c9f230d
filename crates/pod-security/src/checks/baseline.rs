//! The baseline-level checks (upstream policy/check_*.go with Level Baseline), each
//! returning upstream's reason and detail texts. `minor` is the policy version's minor.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{
    array, containers_phrase, flag, is_zero, join_quote, object, pluralize, str_of, Pod, Violation,
};
use crate::message::go_quote;

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_ANNOTATION_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// AppArmor: profile types other than RuntimeDefault/Localhost, and legacy annotations
/// other than runtime/default, localhost/* or empty.
pub(super) fn app_armor_profile(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let allowed_type = |profile: Option<&serde_json::Map<String, Value>>| {
        matches!(
            str_of(profile.and_then(|p| p.get("type"))),
            "RuntimeDefault" | "Localhost"
        )
    };
    let mut setters = Vec::new();
    let mut bad_values = BTreeSet::new();
    if let Some(profile) = object(pod.security_context(), "appArmorProfile") {
        if !allowed_type(Some(profile)) {
            setters.push("pod".to_string());
            bad_values.insert(str_of(profile.get("type")).to_string());
        }
    }
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        if let Some(profile) = object(c.security_context(), "appArmorProfile") {
            if !allowed_type(Some(profile)) {
                bad_containers.push(c.name());
                bad_values.insert(str_of(profile.get("type")).to_string());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    // BTreeMap iteration is already the sorted order upstream establishes explicitly.
    let bad_annotations: Vec<String> = pod
        .annotations
        .iter()
        .filter(|(k, v)| {
            k.starts_with(APPARMOR_ANNOTATION_PREFIX)
                && !(v.is_empty() || **v == "runtime/default" || v.starts_with("localhost/"))
        })
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    let mut values: Vec<String> = bad_values.into_iter().collect();
    if !bad_annotations.is_empty() {
        setters.push(pluralize("annotation", "annotations", bad_annotations.len()).to_string());
        values.extend(bad_annotations);
    }
    if setters.is_empty() {
        return None;
    }
    Some(Violation::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    ))
}

/// hostNetwork, hostPID and hostIPC must be unset or false.
pub(super) fn host_namespaces(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let mut set = BTreeSet::new();
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod.field(key).and_then(Value::as_bool) == Some(true) {
            set.insert(key);
        }
    }
    if set.is_empty() {
        return None;
    }
    let names: Vec<&str> = set.into_iter().collect();
    Some(Violation::new("host namespaces", names.join(", ")))
}

/// No container port may set a non-zero hostPort.
pub(super) fn host_ports(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let mut bad_containers = Vec::new();
    let mut ports = BTreeSet::new();
    for c in pod.containers() {
        let mut valid = true;
        for port in array(c.get("ports")) {
            let host_port = port.get("hostPort");
            if host_port.is_some_and(|p| !p.is_null()) && !is_zero(host_port) {
                valid = false;
                // Go sorts the decimal strings, not the numbers ("8080" < "9").
                ports.insert(
                    host_port
                        .and_then(Value::as_i64)
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| host_port.map(Value::to_string).unwrap_or_default()),
                );
            }
        }
        if !valid {
            bad_containers.push(c.name());
        }
    }
    if bad_containers.is_empty() {
        return None;
    }
    let ports: Vec<String> = ports.into_iter().collect();
    Some(Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad_containers),
            pluralize("uses", "use", bad_containers.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    ))
}

/// securityContext.privileged must not be true.
pub(super) fn privileged(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| flag(c.security_context(), "privileged") == Some(true))
        .map(|c| c.name())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Some(Violation::new(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    ))
}

/// securityContext.procMount must be unset or Default.
pub(super) fn proc_mount(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut types = BTreeSet::new();
    for c in pod.containers() {
        let Some(value) = c.security_context().and_then(|sc| sc.get("procMount")) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let t = str_of(Some(value));
        if t != "Default" {
            bad.push(c.name());
            types.insert(t.to_string());
        }
    }
    if bad.is_empty() {
        return None;
    }
    let types: Vec<String> = types.into_iter().collect();
    Some(Violation::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&types)
        ),
    ))
}

/// seLinuxOptions: only the container types, and never user or role.
pub(super) fn se_linux_options(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    let allowed_type = |t: &str| {
        matches!(
            t,
            "" | "container_t" | "container_init_t" | "container_kvm_t"
        ) || (minor >= 31 && t == "container_engine_t")
    };
    let mut bad_types = BTreeSet::new();
    let mut set_user = false;
    let mut set_role = false;
    let mut valid = |opts: &serde_json::Map<String, Value>| {
        let mut ok = true;
        let t = str_of(opts.get("type"));
        if !allowed_type(t) {
            ok = false;
            bad_types.insert(t.to_string());
        }
        if !str_of(opts.get("user")).is_empty() {
            ok = false;
            set_user = true;
        }
        if !str_of(opts.get("role")).is_empty() {
            ok = false;
            set_role = true;
        }
        ok
    };
    let mut setters = Vec::new();
    if let Some(opts) = object(pod.security_context(), "seLinuxOptions") {
        if !valid(opts) {
            setters.push("pod".to_string());
        }
    }
    let mut bad_containers = Vec::new();
    for c in pod.containers() {
        if let Some(opts) = object(c.security_context(), "seLinuxOptions") {
            if !valid(opts) {
                bad_containers.push(c.name());
            }
        }
    }
    if !bad_containers.is_empty() {
        setters.push(containers_phrase(&bad_containers));
    }
    if setters.is_empty() {
        return None;
    }
    // Upstream only mentions user and role when a type is also bad; keep that quirk so
    // the text matches byte for byte.
    let mut data = Vec::new();
    if !bad_types.is_empty() {
        let types: Vec<String> = bad_types.into_iter().collect();
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
        if set_user {
            data.push("user may not be set".to_string());
        }
        if set_role {
            data.push("role may not be set".to_string());
        }
    }
    Some(Violation::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            setters.join(" and "),
            data.join("; ")
        ),
    ))
}

/// The safe sysctls of each policy version.
fn sysctl_allowed(name: &str, minor: u32) -> bool {
    match name {
        "kernel.shm_rmid_forced"
        | "net.ipv4.ip_local_port_range"
        | "net.ipv4.tcp_syncookies"
        | "net.ipv4.ping_group_range"
        | "net.ipv4.ip_unprivileged_port_start" => true,
        "net.ipv4.ip_local_reserved_ports" => minor >= 27,
        "net.ipv4.tcp_keepalive_time"
        | "net.ipv4.tcp_fin_timeout"
        | "net.ipv4.tcp_keepalive_intvl"
        | "net.ipv4.tcp_keepalive_probes" => minor >= 29,
        "net.ipv4.tcp_rmem" | "net.ipv4.tcp_wmem" => minor >= 32,
        _ => false,
    }
}

/// spec.securityContext.sysctls may only name safe sysctls.
pub(super) fn sysctls(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    let forbidden: Vec<&str> = array(pod.security_context().and_then(|sc| sc.get("sysctls")))
        .map(|s| str_of(s.get("name")))
        .filter(|name| !sysctl_allowed(name, minor))
        .collect();
    if forbidden.is_empty() {
        return None;
    }
    Some(Violation::new("forbidden sysctls", forbidden.join(", ")))
}

/// windowsOptions.hostProcess must not be true on the pod or any container.
pub(super) fn windows_host_process(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let host_process = |sc| flag(object(sc, "windowsOptions"), "hostProcess") == Some(true);
    let bad: Vec<String> = pod
        .containers()
        .filter(|c| host_process(c.security_context()))
        .map(|c| c.name())
        .collect();
    let mut setters = Vec::new();
    if host_process(pod.security_context()) {
        setters.push("pod".to_string());
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    Some(Violation::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            setters.join(" and ")
        ),
    ))
}

/// Only the default capability set may be added.
pub(super) fn capabilities_baseline(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    const DEFAULT_SET: &[&str] = &[
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    ];
    let mut bad = Vec::new();
    let mut caps = BTreeSet::new();
    for c in pod.containers() {
        let Some(capabilities) = object(c.security_context(), "capabilities") else {
            continue;
        };
        let mut valid = true;
        for cap in array(capabilities.get("add")) {
            let cap = str_of(Some(cap));
            if !DEFAULT_SET.contains(&cap) {
                valid = false;
                caps.insert(cap.to_string());
            }
        }
        if !valid {
            bad.push(c.name());
        }
    }
    if bad.is_empty() {
        return None;
    }
    let caps: Vec<String> = caps.into_iter().collect();
    Some(Violation::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&caps)
        ),
    ))
}

/// No hostPath volumes.
pub(super) fn host_path_volumes(pod: &Pod<'_>, _minor: u32) -> Option<Violation> {
    let names: Vec<String> = pod
        .volumes()
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(|v| str_of(v.get("name")).to_string())
        .collect();
    if names.is_empty() {
        return None;
    }
    Some(Violation::new(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", names.len()),
            join_quote(&names)
        ),
    ))
}

fn valid_seccomp_type(t: &str) -> bool {
    matches!(t, "RuntimeDefault" | "Localhost")
}

/// Before v1.19 the seccomp annotations; from v1.19 the seccompProfile fields, which may
/// be unset but must not name anything other than RuntimeDefault or Localhost.
pub(super) fn seccomp_profile_baseline(pod: &Pod<'_>, minor: u32) -> Option<Violation> {
    if minor < 19 {
        return seccomp_annotations(pod);
    }
    let mut setters = Vec::new();
    let mut values = BTreeSet::new();
    if let Some(profile) = object(pod.security_context(), "seccompProfile") {
        let t = str_of(profile.get("type"));
        if !valid_seccomp_type(t) {
            setters.push("pod".to_string());
            values.insert(t.to_string());
        }
    }
    let mut bad = Vec::new();
    for c in pod.containers() {
        if let Some(profile) = object(c.security_context(), "seccompProfile") {
            let t = str_of(profile.get("type"));
            if !valid_seccomp_type(t) {
                bad.push(c.name());
                values.insert(t.to_string());
            }
        }
    }
    if !bad.is_empty() {
        setters.push(containers_phrase(&bad));
    }
    if setters.is_empty() {
        return None;
    }
    let values: Vec<String> = values.into_iter().collect();
    Some(Violation::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            setters.join(" and "),
            join_quote(&values)
        ),
    ))
}

fn seccomp_annotations(pod: &Pod<'_>) -> Option<Violation> {
    let valid =
        |v: &str| v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
    let mut forbidden = BTreeSet::new();
    if let Some(v) = pod.annotations.get(SECCOMP_POD_ANNOTATION) {
        if !valid(v) {
            forbidden.insert(format!("{SECCOMP_POD_ANNOTATION}={}", go_quote(v)));
        }
    }
    for c in pod.containers() {
        let key = format!("{SECCOMP_CONTAINER_ANNOTATION_PREFIX}{}", c.name());
        if let Some(v) = pod.annotations.get(key.as_str()) {
            if !valid(v) {
                forbidden.insert(format!("{key}={}", go_quote(v)));
            }
        }
    }
    if forbidden.is_empty() {
        return None;
    }
    let list: Vec<String> = forbidden.into_iter().collect();
    Some(Violation::new(
        "seccompProfile",
        format!(
            "forbidden {} {}",
            pluralize("annotation", "annotations", list.len()),
            list.join(", ")
        ),
    ))
}
