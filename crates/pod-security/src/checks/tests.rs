//! Table-driven tests of every check's texts, the registry order per level and version,
//! and robustness against malformed input.

use serde_json::{json, Value};

use super::*;

/// A pod that passes restricted: the shape `kubectl run` users are told to write.
fn compliant() -> Value {
    json!({
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "c",
            "image": "nginx",
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
            }
        }],
        "volumes": [{"name": "v", "emptyDir": {}}, {"name": "i", "image": {"reference": "x"}}]
    })
}

/// `compliant()` with `patch` merged into the spec (objects merge, the rest replaces).
fn with(patch: Value) -> Value {
    let mut spec = compliant();
    merge(&mut spec, patch);
    spec
}

fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

#[test]
fn compliant_pod_passes_every_level() {
    for level in [Level::Privileged, Level::Baseline, Level::Restricted] {
        assert_eq!(
            check(level, &json!({}), &compliant()),
            Vec::<String>::new(),
            "{level}"
        );
    }
}

#[test]
fn privileged_level_allows_anything() {
    let spec = json!({"hostPID": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]});
    assert!(check(Level::Privileged, &json!({}), &spec).is_empty());
}

fn one_container(sc: Value) -> Value {
    with(json!({"containers": [{
        "name": "c",
        "securityContext": merged(json!({"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}), sc)
    }]}))
}

fn merged(mut a: Value, b: Value) -> Value {
    merge(&mut a, b);
    a
}

/// Specs that break exactly one check, with the violation both baseline and restricted
/// report (these are not overlapping checks).
#[test]
fn baseline_checks_table() {
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        ("hostNetwork", json!({}), with(json!({"hostNetwork": true, "hostIPC": true, "hostPID": false})),
            "host namespaces (hostIPC, hostNetwork)"),
        ("privileged", json!({}), one_container(json!({"privileged": true})),
            "privileged (container \"c\" must not set securityContext.privileged=true)"),
        ("privileged plural", json!({}), with(json!({
            "initContainers": [{"name": "i", "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
            "containers": [{"name": "c", "securityContext": {"privileged": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}],
        })),
            "privileged (containers \"i\", \"c\" must not set securityContext.privileged=true)"),
        ("hostPort", json!({}), with(json!({"containers": [{"name": "c",
            "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            "ports": [{"containerPort": 80, "hostPort": 9090}, {"containerPort": 81, "hostPort": 8080}, {"containerPort": 82, "hostPort": 0}]}]})),
            "hostPort (container \"c\" uses hostPorts 8080, 9090)"),
        ("procMount", json!({}), one_container(json!({"procMount": "Unmasked"})),
            "procMount (container \"c\" must not set securityContext.procMount to \"Unmasked\")"),
        ("seLinux type", json!({}), with(json!({"securityContext": {"seLinuxOptions": {"type": "spc_t", "user": "u"}}})),
            "seLinuxOptions (pod set forbidden securityContext.seLinuxOptions: type \"spc_t\"; user may not be set)"),
        ("seLinux role only", json!({}), one_container(json!({"seLinuxOptions": {"role": "r"}})),
            "seLinuxOptions (container \"c\" set forbidden securityContext.seLinuxOptions: )"),
        ("sysctls", json!({}), with(json!({"securityContext": {"sysctls": [
            {"name": "kernel.msgmax", "value": "1"}, {"name": "net.ipv4.tcp_rmem", "value": "1"}, {"name": "a.b", "value": "1"}]}})),
            "forbidden sysctls (kernel.msgmax, a.b)"),
        ("hostProcess", json!({}), with(json!({
            "securityContext": {"windowsOptions": {"hostProcess": true}},
            "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "windowsOptions": {"hostProcess": true}}}]})),
            "hostProcess (pod and container \"c\" must not set securityContext.windowsOptions.hostProcess=true)"),
        ("appArmor field", json!({}), one_container(json!({"appArmorProfile": {"type": "Unconfined"}})),
            "forbidden AppArmor profile (container \"c\" must not set AppArmor profile type to \"Unconfined\")"),
        ("appArmor annotation", json!({"annotations": {
            "container.apparmor.security.beta.kubernetes.io/c": "unconfined",
            "container.apparmor.security.beta.kubernetes.io/d": "localhost/x"}}), compliant(),
            "forbidden AppArmor profile (annotation must not set AppArmor profile type to \"container.apparmor.security.beta.kubernetes.io/c=\"unconfined\"\")"),
    ];
    for (name, meta, spec, want) in cases {
        assert_eq!(
            check(Level::Baseline, &meta, &spec),
            vec![want.to_string()],
            "baseline: {name}"
        );
        assert_eq!(
            check(Level::Restricted, &meta, &spec),
            vec![want.to_string()],
            "restricted: {name}"
        );
    }
}

/// Baseline checks that restricted replaces with its own stricter version.
#[test]
fn overlapping_baseline_checks_table() {
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("capabilities", one_container(json!({"capabilities": {"add": ["SYS_ADMIN", "CHOWN", "NET_RAW"]}})),
            "non-default capabilities (container \"c\" must not include \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)",
            "unrestricted capabilities (container \"c\" must not include \"CHOWN\", \"NET_RAW\", \"SYS_ADMIN\" in securityContext.capabilities.add)"),
        ("hostPath", with(json!({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]})),
            "hostPath volumes (volume \"h\")",
            "restricted volume types (volumes [\"h\"] have restricted types)"),
        ("seccomp", one_container(json!({"seccompProfile": {"type": "Unconfined"}})),
            "seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")",
            "seccompProfile (container \"c\" must not set securityContext.seccompProfile.type to \"Unconfined\")"),
    ];
    for (name, spec, baseline, restricted) in cases {
        assert_eq!(
            check(Level::Baseline, &json!({}), &spec),
            vec![baseline.to_string()],
            "{name}"
        );
        assert_eq!(
            check(Level::Restricted, &json!({}), &spec),
            vec![restricted.to_string()],
            "{name}"
        );
    }
}

#[test]
fn restricted_checks_table() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("ape unset", with(json!({"containers": [{"name": "c", "securityContext": {"capabilities": {"drop": ["ALL"]}}}]})),
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)"),
        ("drop missing", with(json!({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}]})),
            "unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"])"),
        ("drop and add", one_container(json!({"capabilities": {"drop": ["NET_RAW"], "add": ["CHOWN"]}})),
            "unrestricted capabilities (container \"c\" must set securityContext.capabilities.drop=[\"ALL\"]; container \"c\" must not include \"CHOWN\" in securityContext.capabilities.add)"),
        ("volumes", with(json!({"volumes": [{"name": "n", "nfs": {"server": "s", "path": "/"}}, {"name": "g", "gitRepo": {}}, {"name": "ok", "secret": {}}]})),
            "restricted volume types (volumes [\"g\" \"n\"] have restricted types)"),
        ("runAsNonRoot false", with(json!({"securityContext": {"runAsNonRoot": false}})),
            "runAsNonRoot != true (pod must not set securityContext.runAsNonRoot=false)"),
        ("runAsNonRoot unset", with(json!({"securityContext": {"runAsNonRoot": null}})),
            "runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true)"),
        ("runAsNonRoot container false", one_container(json!({"runAsNonRoot": false})),
            "runAsNonRoot != true (container \"c\" must not set securityContext.runAsNonRoot=false)"),
        ("runAsUser", with(json!({"securityContext": {"runAsUser": 0}, "containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}, "runAsUser": 0}}]})),
            "runAsUser=0 (pod and container \"c\" must not set runAsUser=0)"),
        ("seccomp unset", with(json!({"securityContext": {"seccompProfile": null}})),
            "seccompProfile (pod or container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"),
        ("seccomp pod bad", with(json!({"securityContext": {"seccompProfile": {"type": "Unconfined"}}})),
            "seccompProfile (pod must not set securityContext.seccompProfile.type to \"Unconfined\")"),
    ];
    for (name, spec, want) in cases {
        let got = check(Level::Restricted, &json!({}), &spec);
        // The pod-level seccomp case also breaks the overlapping baseline check, which
        // restricted does not run; only the restricted text may appear.
        assert_eq!(got, vec![want.to_string()], "{name}");
    }
    // And none of these break baseline except through an overlapping check.
    assert!(check(
        Level::Baseline,
        &json!({}),
        &with(json!({"securityContext": {"runAsUser": 0}}))
    )
    .is_empty());
}

#[test]
fn bare_pod_violations_come_in_upstream_order() {
    let spec = json!({"hostPID": true, "containers": [{"name": "app", "image": "x"}]});
    assert_eq!(
        check(Level::Restricted, &json!({}), &spec),
        vec![
            "host namespaces (hostPID)",
            "allowPrivilegeEscalation != false (container \"app\" must set securityContext.allowPrivilegeEscalation=false)",
            "unrestricted capabilities (container \"app\" must set securityContext.capabilities.drop=[\"ALL\"])",
            "runAsNonRoot != true (pod or container \"app\" must set securityContext.runAsNonRoot=true)",
            "seccompProfile (pod or container \"app\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")",
        ]
    );
    assert_eq!(
        check(Level::Baseline, &json!({}), &spec),
        vec!["host namespaces (hostPID)"]
    );
}

#[test]
fn baseline_runs_overlapping_checks_after_the_others() {
    let spec = json!({
        "hostNetwork": true,
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}],
        "containers": [{"name": "c", "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}}]
    });
    let got = check(Level::Baseline, &json!({}), &spec);
    let reasons: Vec<&str> = got
        .iter()
        .map(|v| v.split(" (").next().unwrap_or(""))
        .collect();
    assert_eq!(
        reasons,
        [
            "host namespaces",
            "privileged",
            "non-default capabilities",
            "hostPath volumes"
        ]
    );
}

#[test]
fn ephemeral_containers_are_checked() {
    let spec = with(
        json!({"ephemeralContainers": [{"name": "debug", "securityContext": {
        "privileged": true, "allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    assert_eq!(
        check(Level::Baseline, &json!({}), &spec),
        vec!["privileged (container \"debug\" must not set securityContext.privileged=true)"]
    );
}

#[test]
fn versions_select_checks() {
    let v = |m| PolicyVersion::V1(m);
    let sysctl =
        |name: &str| with(json!({"securityContext": {"sysctls": [{"name": name, "value": "1"}]}}));
    assert_eq!(
        check_version(
            Level::Baseline,
            v(26),
            &json!({}),
            &sysctl("net.ipv4.ip_local_reserved_ports")
        )
        .len(),
        1
    );
    assert!(check_version(
        Level::Baseline,
        v(27),
        &json!({}),
        &sysctl("net.ipv4.ip_local_reserved_ports")
    )
    .is_empty());
    assert_eq!(
        check_version(
            Level::Baseline,
            v(28),
            &json!({}),
            &sysctl("net.ipv4.tcp_fin_timeout")
        )
        .len(),
        1
    );
    assert!(check_version(
        Level::Baseline,
        v(29),
        &json!({}),
        &sysctl("net.ipv4.tcp_fin_timeout")
    )
    .is_empty());
    assert_eq!(
        check_version(
            Level::Baseline,
            v(31),
            &json!({}),
            &sysctl("net.ipv4.tcp_wmem")
        )
        .len(),
        1
    );
    assert!(check(Level::Baseline, &json!({}), &sysctl("net.ipv4.tcp_wmem")).is_empty());

    let engine =
        with(json!({"securityContext": {"seLinuxOptions": {"type": "container_engine_t"}}}));
    assert_eq!(
        check_version(Level::Baseline, v(30), &json!({}), &engine).len(),
        1
    );
    assert!(check_version(Level::Baseline, v(31), &json!({}), &engine).is_empty());

    let root = with(json!({"securityContext": {"runAsUser": 0}}));
    assert!(check_version(Level::Restricted, v(22), &json!({}), &root).is_empty());
    assert_eq!(
        check_version(Level::Restricted, v(23), &json!({}), &root).len(),
        1
    );

    // Before v1.22 restricted did not require dropping capabilities.
    let keep_caps = with(
        json!({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": false}}]}),
    );
    assert!(check_version(Level::Restricted, v(21), &json!({}), &keep_caps).is_empty());
    // Future versions evaluate like the newest known one.
    assert!(check_version(Level::Restricted, v(40), &json!({}), &compliant()).is_empty());
}

#[test]
fn seccomp_annotations_before_v1_19() {
    let meta = json!({"annotations": {
        "seccomp.security.alpha.kubernetes.io/pod": "unconfined",
        "container.seccomp.security.alpha.kubernetes.io/c": "docker/default",
        "container.seccomp.security.alpha.kubernetes.io/x": "unconfined"
    }});
    assert_eq!(
        check_version(Level::Baseline, PolicyVersion::V1(18), &meta, &compliant()),
        vec!["seccompProfile (forbidden annotation seccomp.security.alpha.kubernetes.io/pod=\"unconfined\")"]
    );
    // From v1.19 the annotations are ignored.
    assert!(check_version(Level::Baseline, PolicyVersion::V1(19), &meta, &compliant()).is_empty());
}

#[test]
fn malformed_input_never_panics() {
    let odd = [
        json!(null),
        json!("spec"),
        json!([1, 2]),
        json!({"containers": "x", "volumes": 3, "securityContext": []}),
        json!({"containers": [null, 1, {"name": 5, "securityContext": "x", "ports": [{"hostPort": "80"}]}]}),
        json!({"securityContext": {"sysctls": [null, {"name": 1}], "seLinuxOptions": {"type": 3}}}),
    ];
    for spec in odd {
        for level in [Level::Baseline, Level::Restricted] {
            let _ = check(level, &json!({"annotations": {"a": 1}}), &spec);
            let _ = check(level, &json!("meta"), &spec);
        }
    }
}

#[test]
fn deeply_nested_values_are_not_recursed() {
    // Deeper than serde_json's parse limit of 128; the checks only ever look a fixed
    // number of levels down, so depth cannot matter.
    let mut deep = json!(1);
    for _ in 0..1_000 {
        deep = Value::Array(vec![deep]);
    }
    let spec = json!({"containers": [{"name": "c", "securityContext": {"capabilities": {"add": [deep]}}}]});
    assert!(!check(Level::Restricted, &json!({}), &spec).is_empty());
}
