//! Pod validation: `ValidatePodSpec` with its containers, volumes, probes, env and tolerations,
//! `ValidatePodTemplateSpec` for every kind with a pod template, and `ValidatePodUpdate`.

use super::common::{
    dns_label, dns_subdomain, enum_field, inclusive_range_error, nonnegative, normalized,
    not_supported, port_name_msgs, port_num_msgs, port_num_or_name, Errs,
};
use super::scheduling::pod_scheduling;
use crate::json::{Get, Obj};
use apimachinery::validation::{validate_annotations, validate_label_name, validate_labels};
use apimachinery::{FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_INT32: i64 = i32::MAX as i64;

pub(super) fn pod(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let spec_path = Path::new("spec");
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    match old {
        None => pod_spec(&mut errs, spec, &spec_path),
        Some(old) => {
            pod_update(&mut errs, spec, old.obj_of("spec"), &spec_path);
            pod_scheduling(&mut errs, spec, old.obj_of("spec"), &spec_path);
        }
    }
    errs
}

pub(super) fn pod_template(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    pod_template_spec(&mut errs, obj.obj_of("template"), &Path::new("template"));
    errs
}

/// `ValidatePodTemplateSpec`. Upstream reports template labels at `<path>.labels`, not under
/// `metadata`.
pub(crate) fn pod_template_spec(errs: &mut Errs, template: Option<&Obj>, path: &Path) {
    template_metadata(errs, template, path);
    let spec = template.and_then(|t| t.obj_of("spec"));
    pod_spec(errs, spec, &path.child("spec"));
    if !spec.arr_of("ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

/// The labels and annotations of a template, at upstream's (flattened) paths.
pub(crate) fn template_metadata(errs: &mut Errs, template: Option<&Obj>, path: &Path) {
    let meta = template.and_then(|t| t.obj_of("metadata"));
    if let Some(labels) = meta.obj_of("labels") {
        errs.extend(validate_labels(labels, path.child("labels").as_str()));
    }
    if let Some(ann) = meta.obj_of("annotations") {
        errs.extend(validate_annotations(
            ann,
            path.child("annotations").as_str(),
        ));
    }
}

/// `ValidatePodSpec`.
pub(crate) fn pod_spec(errs: &mut Errs, spec: Option<&Obj>, path: &Path) {
    let volumes = volumes(errs, spec.arr_of("volumes"), &path.child("volumes"));
    let restart_policy = spec.str_of("restartPolicy");
    containers(
        errs,
        spec.arr_of("containers"),
        &volumes,
        &path.child("containers"),
    );
    init_containers(
        errs,
        spec.arr_of("initContainers"),
        spec.arr_of("containers"),
        &volumes,
        &path.child("initContainers"),
    );
    enum_field(
        errs,
        &path.child("restartPolicy"),
        restart_policy,
        &["Always", "OnFailure", "Never"],
    );
    enum_field(
        errs,
        &path.child("dnsPolicy"),
        spec.str_of("dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    );
    if let Some(ns) = spec.obj_of("nodeSelector") {
        errs.extend(validate_labels(ns, path.child("nodeSelector").as_str()));
    }
    for (i, s) in spec.arr_of("imagePullSecrets").iter().enumerate() {
        if s.str_of("name").is_empty() {
            errs.push(FieldError::required(
                path.child("imagePullSecrets").index(i).child("name"),
                "",
            ));
        }
    }
    pod_scheduling(errs, spec, None, path);
    let sa = spec.str_of("serviceAccountName");
    if !sa.is_empty() {
        dns_subdomain(errs, &path.child("serviceAccountName"), sa);
    }
    let node = spec.str_of("nodeName");
    if !node.is_empty() {
        dns_subdomain(errs, &path.child("nodeName"), node);
    }
    if let Some(ads) = spec.int_of("activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&ads) {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                ads,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    for key in ["hostname", "subdomain"] {
        let v = spec.str_of(key);
        if !v.is_empty() {
            dns_label(errs, &path.child(key), v);
        }
    }
    tolerations(errs, spec.arr_of("tolerations"), &path.child("tolerations"));
    let pc = spec.str_of("priorityClassName");
    if !pc.is_empty() {
        dns_subdomain(errs, &path.child("priorityClassName"), pc);
    }
    if let Some(rc) = spec.opt_str("runtimeClassName") {
        dns_subdomain(errs, &path.child("runtimeClassName"), rc);
    }
    if let Some(p) = spec.opt_str("preemptionPolicy") {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            errs.push(not_supported(
                &path.child("preemptionPolicy"),
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
}

/// `ValidateVolumes`: returns the names of the valid volumes, for mounts to refer to.
fn volumes(errs: &mut Errs, vols: &[Value], path: &Path) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = path.index(i);
        let mut el = Errs::new();
        volume_source(&mut el, v, &p);
        let name = v.str_of("name");
        let name_path = p.child("name");
        if name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            dns_label(&mut el, &name_path, name);
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(&name_path, name));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    names
}

fn volume_source(errs: &mut Errs, v: &Value, path: &Path) {
    let set: Vec<&str> = crate::defaults::pod::volume_source_keys()
        .iter()
        .copied()
        .filter(|k| v.has(k))
        .collect();
    match set.as_slice() {
        [] => errs.push(FieldError::required(path, "must specify a volume type")),
        [_] => {}
        [_, rest @ ..] => {
            for k in rest {
                errs.push(FieldError::forbidden(
                    path.child(k),
                    "may not specify more than 1 volume type",
                ));
            }
        }
    }
    let mode = |errs: &mut Errs, src: &Value, p: &Path| {
        if let Some(m) = src.int_of("defaultMode") {
            if !(0..=0o777).contains(&m) {
                errs.push(FieldError::invalid(
                    p.child("defaultMode"),
                    m,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                ));
            }
        }
    };
    if let Some(s) = v.get("configMap") {
        let p = path.child("configMap");
        if s.str_of("name").is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        mode(errs, s, &p);
    }
    if let Some(s) = v.get("secret") {
        let p = path.child("secret");
        if s.str_of("secretName").is_empty() {
            errs.push(FieldError::required(p.child("secretName"), ""));
        }
        mode(errs, s, &p);
    }
    if let Some(s) = v.get("persistentVolumeClaim") {
        if s.str_of("claimName").is_empty() {
            errs.push(FieldError::required(
                path.child("persistentVolumeClaim").child("claimName"),
                "",
            ));
        }
    }
    if let Some(s) = v.get("hostPath") {
        let p = path.child("hostPath");
        if s.str_of("path").is_empty() {
            errs.push(FieldError::required(p.child("path"), ""));
        }
        let t = s.str_of("type");
        const TYPES: &[&str] = &[
            "",
            "BlockDevice",
            "CharDevice",
            "Directory",
            "DirectoryOrCreate",
            "File",
            "FileOrCreate",
            "Socket",
        ];
        if !TYPES.contains(&t) {
            errs.push(not_supported(&p.child("type"), t, TYPES));
        }
    }
    if let Some(s) = v.get("nfs") {
        let p = path.child("nfs");
        if s.str_of("server").is_empty() {
            errs.push(FieldError::required(p.child("server"), ""));
        }
        let np = s.str_of("path");
        if np.is_empty() {
            errs.push(FieldError::required(p.child("path"), ""));
        } else if !np.starts_with('/') {
            errs.push(FieldError::invalid(
                p.child("path"),
                np,
                "must be an absolute path",
            ));
        }
    }
    if let Some(s) = v.get("emptyDir") {
        let medium = s.str_of("medium");
        if !matches!(medium, "" | "Memory") && !medium.starts_with("HugePages") {
            errs.push(not_supported(
                &path.child("emptyDir").child("medium"),
                medium,
                &["", "Memory", "HugePages"],
            ));
        }
    }
}

/// `validateContainers`.
fn containers(errs: &mut Errs, ctrs: &[Value], volumes: &HashSet<String>, path: &Path) {
    if ctrs.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut names = HashSet::new();
    for (i, c) in ctrs.iter().enumerate() {
        let p = path.index(i);
        container_common(errs, c, volumes, &p);
        let name = c.str_of("name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
        lifecycle(errs, c, &p);
        for (key, one_success) in [
            ("livenessProbe", true),
            ("readinessProbe", false),
            ("startupProbe", true),
        ] {
            if let Some(pr) = c.get(key).filter(|v| v.is_object()) {
                probe(errs, pr, &p.child(key), one_success);
            }
        }
        if c.has("restartPolicy") {
            errs.push(FieldError::forbidden(
                p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
}

fn init_containers(
    errs: &mut Errs,
    ctrs: &[Value],
    regular: &[Value],
    volumes: &HashSet<String>,
    path: &Path,
) {
    let mut names: HashSet<&str> = regular.iter().map(|c| c.str_of("name")).collect();
    for (i, c) in ctrs.iter().enumerate() {
        let p = path.index(i);
        container_common(errs, c, volumes, &p);
        let name = c.str_of("name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
        let sidecar = match c.opt_str("restartPolicy") {
            None => false,
            Some("Always") => true,
            Some(other) => {
                errs.push(not_supported(&p.child("restartPolicy"), other, &["Always"]));
                false
            }
        };
        if sidecar {
            lifecycle(errs, c, &p);
            for (key, one_success) in [
                ("livenessProbe", true),
                ("readinessProbe", false),
                ("startupProbe", true),
            ] {
                if let Some(pr) = c.get(key).filter(|v| v.is_object()) {
                    probe(errs, pr, &p.child(key), one_success);
                }
            }
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if c.has(key) {
                    errs.push(FieldError::forbidden(
                        p.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

/// `validateContainerCommon`.
fn container_common(errs: &mut Errs, c: &Value, volumes: &HashSet<String>, path: &Path) {
    let name = c.str_of("name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        dns_label(errs, &path.child("name"), name);
    }
    if c.str_of("image").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    enum_field(
        errs,
        &path.child("terminationMessagePolicy"),
        c.str_of("terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
    );
    container_ports(errs, c.arr_of("ports"), &path.child("ports"));
    env(errs, c.arr_of("env"), &path.child("env"));
    volume_mounts(
        errs,
        c.arr_of("volumeMounts"),
        volumes,
        &path.child("volumeMounts"),
    );
    enum_field(
        errs,
        &path.child("imagePullPolicy"),
        c.str_of("imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
    );
}

/// `validateContainerPorts`.
fn container_ports(errs: &mut Errs, ports: &[Value], path: &Path) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = port.str_of("name");
        if !name.is_empty() {
            let msgs = port_name_msgs(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(p.child("name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            }
        }
        match port.int_of("containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(p.child("containerPort"), "")),
            cp => {
                for m in port_num_msgs(cp) {
                    errs.push(FieldError::invalid(p.child("containerPort"), cp, m));
                }
            }
        }
        let hp = port.int_of("hostPort").unwrap_or(0);
        if hp != 0 {
            for m in port_num_msgs(hp) {
                errs.push(FieldError::invalid(p.child("hostPort"), hp, m));
            }
        }
        let proto = port.str_of("protocol");
        if proto.is_empty() {
            errs.push(FieldError::required(p.child("protocol"), ""));
        } else if !PROTOCOLS.contains(&proto) {
            errs.push(not_supported(&p.child("protocol"), proto, PROTOCOLS));
        }
    }
}

/// `ValidateEnv` with RelaxedEnvironmentVariableValidation (on in 1.33).
fn env(errs: &mut Errs, vars: &[Value], path: &Path) {
    for (i, ev) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = ev.str_of("name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else if name.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
            errs.push(FieldError::invalid(
                p.child("name"),
                name,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = ev.obj_of("valueFrom") else {
            continue;
        };
        let fp = p.child("valueFrom");
        let sources = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .iter()
        .filter(|k| from.has(k))
        .count();
        if !ev.str_of("value").is_empty() && sources != 0 {
            errs.push(FieldError::invalid(
                &fp,
                "",
                "may not be specified when `value` is not empty",
            ));
        }
        match sources {
            0 => errs.push(FieldError::invalid(
                &fp,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                &fp,
                "",
                "may not have more than one field specified at a time",
            )),
        }
        for key in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(r) = from.obj_of(key) {
                let rp = fp.child(key);
                if r.str_of("key").is_empty() {
                    errs.push(FieldError::required(rp.child("key"), ""));
                }
                if r.str_of("name").is_empty() {
                    errs.push(FieldError::required(rp.child("name"), ""));
                }
            }
        }
        if let Some(f) = from.obj_of("fieldRef") {
            let rp = fp.child("fieldRef");
            if f.str_of("fieldPath").is_empty() {
                errs.push(FieldError::required(rp.child("fieldPath"), ""));
            }
        }
    }
}

/// `ValidateVolumeMounts`.
fn volume_mounts(errs: &mut Errs, mounts: &[Value], volumes: &HashSet<String>, path: &Path) {
    let mut points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        let name = m.str_of("name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if !volumes.contains(name) {
            errs.push(FieldError::not_found(p.child("name"), name));
        }
        let mp = m.str_of("mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(p.child("mountPath"), ""));
        }
        if !points.insert(mp) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                mp,
                "must be unique",
            ));
        }
        let sub = m.str_of("subPath");
        if !sub.is_empty() {
            local_descending_path(errs, sub, &p.child("subPath"));
        }
    }
}

/// `validateLocalDescendingPath`: relative, without `..` elements.
fn local_descending_path(errs: &mut Errs, target: &str, path: &Path) {
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    if target.split(['/', '\\']).any(|part| part == "..") {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
}

fn lifecycle(errs: &mut Errs, c: &Value, path: &Path) {
    let Some(lc) = c.get("lifecycle").filter(|v| v.is_object()) else {
        return;
    };
    let lp = path.child("lifecycle");
    for key in ["postStart", "preStop"] {
        if let Some(h) = lc.get(key).filter(|v| v.is_object()) {
            handler(errs, h, &lp.child(key), true);
        }
    }
}

/// `validateHandler` for probes and lifecycle hooks.
fn handler(errs: &mut Errs, h: &Value, path: &Path, lifecycle: bool) {
    let kinds: &[&str] = if lifecycle {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    let set: Vec<&&str> = kinds.iter().filter(|k| h.has(k)).collect();
    match set.len() {
        0 => errs.push(FieldError::required(path, "must specify a handler type")),
        1 => {}
        _ => {
            if let Some(k) = set.get(1) {
                errs.push(FieldError::forbidden(
                    path.child(k),
                    "may not specify more than 1 handler type",
                ));
            }
        }
    }
    if let Some(e) = h.get("exec") {
        if e.arr_of("command").is_empty() {
            errs.push(FieldError::required(
                path.child("exec").child("command"),
                "",
            ));
        }
    }
    if let Some(g) = h.get("httpGet") {
        let p = path.child("httpGet");
        if g.str_of("path").is_empty() {
            errs.push(FieldError::required(p.child("path"), ""));
        }
        port_num_or_name(errs, &p.child("port"), g.get("port"));
        let scheme = g.str_of("scheme");
        if !matches!(scheme, "HTTP" | "HTTPS") {
            errs.push(not_supported(
                &p.child("scheme"),
                scheme,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    if let Some(t) = h.get("tcpSocket") {
        port_num_or_name(errs, &path.child("tcpSocket").child("port"), t.get("port"));
    }
    if let Some(g) = h.get("grpc") {
        let port = g.int_of("port").unwrap_or(0);
        for m in port_num_msgs(port) {
            errs.push(FieldError::invalid(
                path.child("grpc").child("port"),
                port,
                m,
            ));
        }
    }
}

fn probe(errs: &mut Errs, pr: &Value, path: &Path, success_must_be_one: bool) {
    handler(errs, pr, path, false);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        nonnegative(errs, &path.child(key), pr.int_of(key));
    }
    if let Some(t) = pr
        .int_of("terminationGracePeriodSeconds")
        .filter(|t| *t <= 0)
    {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    if success_must_be_one {
        if let Some(s) = pr.int_of("successThreshold").filter(|s| *s != 1) {
            errs.push(FieldError::invalid(
                path.child("successThreshold"),
                s,
                "must be 1",
            ));
        }
    }
}

/// `ValidateTolerations`.
pub(crate) fn tolerations(errs: &mut Errs, tols: &[Value], path: &Path) {
    for (i, t) in tols.iter().enumerate() {
        let p = path.index(i);
        let key = t.str_of("key");
        let op = t.str_of("operator");
        let effect = t.str_of("effect");
        if !key.is_empty() {
            errs.extend(validate_label_name(key, p.child("key").as_str()));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.has("tolerationSeconds") && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "" | "Equal" => {
                let value = t.str_of("value");
                let msgs = apimachinery::validation::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !t.str_of("value").is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(not_supported(
                &p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate` for the spec: only images, `activeDeadlineSeconds` (lowered or set),
/// added tolerations, and a negative grace period raised to 1 may change.
fn pod_update(errs: &mut Errs, new: Option<&Obj>, old: Option<&Obj>, path: &Path) {
    for key in ["containers", "initContainers"] {
        let (n, o) = (new.arr_of(key), old.arr_of(key));
        let p = path.child(key);
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                &p,
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in n.iter().enumerate() {
            let image = c.str_of("image");
            if image.is_empty() {
                errs.push(FieldError::required(p.index(i).child("image"), ""));
            }
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    p.index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    match (
        new.int_of("activeDeadlineSeconds"),
        old.int_of("activeDeadlineSeconds"),
    ) {
        (Some(n), old_ads) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid(
                    path.child("activeDeadlineSeconds"),
                    n,
                    inclusive_range_error(0, MAX_INT32),
                ));
                return;
            }
            if old_ads.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    path.child("activeDeadlineSeconds"),
                    n,
                    "must be less than or equal to previous value",
                ));
                return;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    // Munge the mutable fields of the new spec back to the old values, then compare.
    let mut munged = new.cloned().unwrap_or_default();
    let old_spec = old.cloned().unwrap_or_default();
    for key in ["containers", "initContainers"] {
        if let (Some(Value::Array(nc)), Some(oc)) = (munged.get_mut(key), old_spec.get(key)) {
            for (i, c) in nc.iter_mut().enumerate() {
                let old_image = oc.get(i).and_then(|o| o.get("image")).cloned();
                if let (Some(c), Some(img)) = (c.as_object_mut(), old_image) {
                    c.insert("image".into(), img);
                }
            }
        }
    }
    let restore = |munged: &mut Obj, key: &str| match old_spec.get(key) {
        Some(v) => {
            munged.insert(key.into(), v.clone());
        }
        None => {
            munged.remove(key);
        }
    };
    restore(&mut munged, "activeDeadlineSeconds");
    restore(&mut munged, "schedulingGates");
    restore(&mut munged, "tolerations");
    let old_grace = old_spec.int_of("terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0) && munged.int_of("terminationGracePeriodSeconds") == Some(1)
    {
        restore(&mut munged, "terminationGracePeriodSeconds");
    }
    let munged = Value::Object(munged);
    let old_value = Value::Object(old_spec);
    if normalized(&munged) != normalized(&old_value) {
        errs.push(FieldError::forbidden(
            path,
            format!("{POD_UPDATE_MSG}\n{}", spec_diff(&old_value, &munged)),
        ));
    }
    only_added_tolerations(
        errs,
        new.arr_of("tolerations"),
        old.arr_of("tolerations"),
        path,
    );
}

/// A short description of which top-level spec fields differ (upstream prints a `cmp.Diff`).
fn spec_diff(old: &Value, new: &Value) -> String {
    let (o, n) = (normalized(old), normalized(new));
    let mut keys: Vec<&String> = o
        .as_object()
        .into_iter()
        .flatten()
        .chain(n.as_object().into_iter().flatten())
        .map(|(k, _)| k)
        .collect();
    keys.sort();
    keys.dedup();
    let mut out = String::from("  core.PodSpec{\n");
    for k in keys {
        let (a, b) = (o.get(k), n.get(k));
        if a != b {
            if let Some(a) = a {
                out.push_str(&format!("- \t{k}: {a},\n"));
            }
            if let Some(b) = b {
                out.push_str(&format!("+ \t{k}: {b},\n"));
            }
        }
    }
    out.push_str("  }\n");
    out
}

/// `validateOnlyAddedTolerations`: every old toleration must still be there, except that its
/// `tolerationSeconds` may change.
fn only_added_tolerations(errs: &mut Errs, new: &[Value], old: &[Value], path: &Path) {
    let p = path.child("tolerations");
    let strip = |t: &Value| {
        let mut t = normalized(t);
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    for o in old {
        let o = strip(o);
        if !new.iter().any(|n| strip(n) == o) {
            errs.push(FieldError::forbidden(
                &p,
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            return;
        }
    }
    tolerations(errs, new, &p);
}
