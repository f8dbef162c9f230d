//! Validation of the kinds outside core, apps and batch: required fields, enums and the main
//! update rules of discovery, coordination, events, rbac, storage, policy, autoscaling,
//! networking, scheduling and node.

use super::common::{
    dns_label, dns_subdomain, enum_field, immutable, nonnegative, port_num_msgs, port_num_or_name,
    positive_int_or_percent, qualified_name, Errs,
};
use crate::json::Get;
use apimachinery::validation::{is_dns1123_label, validate_label_selector};
use apimachinery::{FieldError, Path};
use serde_json::Value;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

pub(super) fn endpoint_slice(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    enum_field(
        &mut errs,
        &Path::new("addressType"),
        obj.str_of("addressType"),
        &["IPv4", "IPv6", "FQDN"],
    );
    for (i, ep) in obj.arr_of("endpoints").iter().enumerate() {
        let ap = Path::new("endpoints").index(i).child("addresses");
        let addrs = ep.arr_of("addresses");
        if addrs.is_empty() {
            errs.push(FieldError::required(&ap, "must contain at least 1 address"));
        } else if addrs.len() > 100 {
            errs.push(FieldError::too_many(&ap, addrs.len() as i64, 100));
        }
    }
    for (i, port) in obj.arr_of("ports").iter().enumerate() {
        let pp = Path::new("ports").index(i);
        let name = port.str_of("name");
        if !name.is_empty() {
            dns_label(&mut errs, &pp.child("name"), name);
        }
        if let Some(proto) = port.opt_str("protocol") {
            if !PROTOCOLS.contains(&proto) {
                errs.push(FieldError::not_supported(
                    pp.child("protocol"),
                    proto,
                    PROTOCOLS,
                ));
            }
        }
        if let Some(n) = port.int_of("port") {
            for m in port_num_msgs(n) {
                errs.push(FieldError::invalid(pp.child("port"), n, m));
            }
        }
    }
    if let Some(old) = old {
        immutable(
            &mut errs,
            &Path::new("addressType"),
            obj.get("addressType"),
            old.get("addressType"),
        );
    }
    errs
}

pub(super) fn lease(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    if let Some(d) = spec.int_of("leaseDurationSeconds").filter(|d| *d <= 0) {
        errs.push(FieldError::invalid(
            p.child("leaseDurationSeconds"),
            d,
            "must be greater than 0",
        ));
    }
    nonnegative(
        &mut errs,
        &p.child("leaseTransitions"),
        spec.int_of("leaseTransitions"),
    );
    if spec.has("preferredHolder") && !spec.has("strategy") {
        errs.push(FieldError::forbidden(
            p.child("preferredHolder"),
            "may only be specified if `strategy` is defined",
        ));
    }
    errs
}

/// events.k8s.io/v1 Event on create (paths are upstream's internal names: `note` is `message`).
pub(super) fn events_event(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    if obj.str_of("eventTime").is_empty() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let ty = obj.str_of("type");
    if ty != "Normal" && ty != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            format!("has invalid value: {ty}"),
        ));
    }
    let rc = obj.str_of("reportingController");
    if rc.is_empty() {
        errs.push(FieldError::required("reportingController", ""));
    }
    qualified_name(&mut errs, &Path::new("reportingController"), rc);
    for (key, path, limit) in [
        ("reportingInstance", "reportingInstance", 128),
        ("action", "action", 128),
        ("reason", "reason", 128),
    ] {
        let v = obj.str_of(key);
        if v.is_empty() {
            errs.push(FieldError::required(path, ""));
        }
        if v.len() > limit {
            errs.push(FieldError::invalid(
                path,
                "",
                format!("can have at most {limit} characters"),
            ));
        }
    }
    if obj.str_of("note").len() > 1024 {
        errs.push(FieldError::invalid(
            "message",
            "",
            "can have at most 1024 characters",
        ));
    }
    errs
}

pub(super) fn role(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let namespaced = !obj.field("metadata").str_of("namespace").is_empty();
    let mut errs = Errs::new();
    for (i, rule) in obj.arr_of("rules").iter().enumerate() {
        let p = Path::new("rules").index(i);
        if rule.arr_of("verbs").is_empty() {
            errs.push(FieldError::required(
                p.child("verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = rule.arr_of("nonResourceURLs");
        if !urls.is_empty() {
            let v = Value::Array(urls.to_vec());
            if namespaced {
                errs.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    v.clone(),
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !rule.arr_of("apiGroups").is_empty()
                || !rule.arr_of("resources").is_empty()
                || !rule.arr_of("resourceNames").is_empty()
            {
                errs.push(FieldError::invalid(
                    p.child("nonResourceURLs"),
                    v,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if rule.arr_of("apiGroups").is_empty() {
            errs.push(FieldError::required(
                p.child("apiGroups"),
                "resource rules must supply at least one api group",
            ));
        }
        if rule.arr_of("resources").is_empty() {
            errs.push(FieldError::required(
                p.child("resources"),
                "resource rules must supply at least one resource",
            ));
        }
    }
    if let Some(ar) = obj.get("aggregationRule").filter(|v| !v.is_null()) {
        let sels = ar.arr_of("clusterRoleSelectors");
        if sels.is_empty() {
            errs.push(FieldError::required(
                Path::new("aggregationRule").child("clusterRoleSelectors"),
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, s) in sels.iter().enumerate() {
            let p = Path::new("aggregationRule")
                .child("clusterRoleSelectors")
                .index(i);
            errs.extend(validate_label_selector(s, p.as_str()));
        }
    }
    errs
}

fn binding(obj: &Value, old: Option<&Value>, kinds: &[&str], namespaced: bool) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let rr = obj.field("roleRef");
    let rp = Path::new("roleRef");
    let group = rr.str_of("apiGroup");
    if group != "rbac.authorization.k8s.io" {
        errs.push(FieldError::not_supported(
            rp.child("apiGroup"),
            group,
            &["rbac.authorization.k8s.io"],
        ));
    }
    let kind = rr.str_of("kind");
    if !kinds.contains(&kind) {
        errs.push(FieldError::not_supported(rp.child("kind"), kind, kinds));
    }
    let name = rr.str_of("name");
    if name.is_empty() {
        errs.push(FieldError::required(rp.child("name"), ""));
    } else if name.contains('/') || name.contains('%') || name == "." || name == ".." {
        errs.push(FieldError::invalid(
            rp.child("name"),
            name,
            "may not contain '/'",
        ));
    }
    for (i, s) in obj.arr_of("subjects").iter().enumerate() {
        let p = Path::new("subjects").index(i);
        let name = s.str_of("name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        let api_group = s.str_of("apiGroup");
        match s.str_of("kind") {
            "ServiceAccount" => {
                if !name.is_empty() {
                    dns_subdomain(&mut errs, &p.child("name"), name);
                }
                if !api_group.is_empty() {
                    errs.push(FieldError::not_supported(
                        p.child("apiGroup"),
                        api_group,
                        &[""],
                    ));
                }
                if !namespaced && s.str_of("namespace").is_empty() {
                    errs.push(FieldError::required(p.child("namespace"), ""));
                }
            }
            "User" | "Group" => {
                if api_group != "rbac.authorization.k8s.io" {
                    errs.push(FieldError::not_supported(
                        p.child("apiGroup"),
                        api_group,
                        &["rbac.authorization.k8s.io"],
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                p.child("kind"),
                other,
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    if let Some(old) = old {
        let (n, o) = (obj.get("roleRef"), old.get("roleRef"));
        if !super::common::semantic_eq(n.unwrap_or(&Value::Null), o.unwrap_or(&Value::Null)) {
            errs.push(FieldError::invalid(
                "roleRef",
                n.cloned().unwrap_or(Value::Null),
                "cannot change roleRef",
            ));
        }
    }
    errs
}

pub(super) fn role_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    binding(obj, old, &["Role", "ClusterRole"], true)
}

pub(super) fn cluster_role_binding(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    binding(obj, old, &["ClusterRole"], false)
}

pub(super) fn storage_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let prov = obj.str_of("provisioner");
    if prov.is_empty() {
        errs.push(FieldError::required("provisioner", ""));
    } else {
        qualified_name(
            &mut errs,
            &Path::new("provisioner"),
            &prov.to_ascii_lowercase(),
        );
    }
    if let Some(p) = obj.opt_str("reclaimPolicy") {
        if !matches!(p, "Delete" | "Retain") {
            errs.push(FieldError::not_supported(
                "reclaimPolicy",
                p,
                &["Delete", "Retain"],
            ));
        }
    }
    match obj.opt_str("volumeBindingMode") {
        None => errs.push(FieldError::required("volumeBindingMode", "")),
        Some("Immediate" | "WaitForFirstConsumer") => {}
        Some(m) => errs.push(FieldError::not_supported(
            "volumeBindingMode",
            m,
            &["Immediate", "WaitForFirstConsumer"],
        )),
    }
    if let Some(old) = old {
        let eq = |k: &str| {
            super::common::semantic_eq(
                obj.get(k).unwrap_or(&Value::Null),
                old.get(k).unwrap_or(&Value::Null),
            )
        };
        for key in ["parameters", "provisioner", "reclaimPolicy"] {
            if !eq(key) {
                errs.push(FieldError::forbidden(
                    key,
                    format!("updates to {key} are forbidden."),
                ));
            }
        }
        immutable(
            &mut errs,
            &Path::new("volumeBindingMode"),
            obj.get("volumeBindingMode"),
            old.get("volumeBindingMode"),
        );
    }
    errs
}

pub(super) fn csi_driver(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    for key in [
        "attachRequired",
        "podInfoOnMount",
        "storageCapacity",
        "requiresRepublish",
    ] {
        if !spec.has(key) {
            errs.push(FieldError::required(p.child(key), ""));
        }
    }
    if let Some(f) = spec.opt_str("fsGroupPolicy") {
        const POLICIES: &[&str] = &["File", "None", "ReadWriteOnceWithFSType"];
        if !POLICIES.contains(&f) {
            errs.push(FieldError::not_supported(
                p.child("fsGroupPolicy"),
                f,
                POLICIES,
            ));
        }
    }
    for (i, m) in spec.arr_of("volumeLifecycleModes").iter().enumerate() {
        let m = m.as_str().unwrap_or("");
        if !matches!(m, "Persistent" | "Ephemeral") {
            errs.push(FieldError::not_supported(
                p.child("volumeLifecycleModes").index(i),
                m,
                &["Ephemeral", "Persistent"],
            ));
        }
    }
    if let Some(old) = old {
        let os = old.field("spec");
        for key in [
            "attachRequired",
            "podInfoOnMount",
            "volumeLifecycleModes",
            "fsGroupPolicy",
        ] {
            immutable(&mut errs, &p.child(key), spec.field(key), os.field(key));
        }
    }
    errs
}

pub(super) fn csi_node(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let mut names = std::collections::HashSet::new();
    for (i, d) in obj.field("spec").arr_of("drivers").iter().enumerate() {
        let p = Path::new("spec").child("drivers").index(i);
        let name = d.str_of("name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else if !names.insert(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
        if d.str_of("nodeID").is_empty() {
            errs.push(FieldError::required(p.child("nodeID"), ""));
        }
    }
    errs
}

pub(super) fn volume_attachment(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    if spec.str_of("attacher").is_empty() {
        errs.push(FieldError::required(p.child("attacher"), ""));
    }
    if spec.str_of("nodeName").is_empty() {
        errs.push(FieldError::required(p.child("nodeName"), ""));
    }
    let src = spec.field("source");
    let n = ["persistentVolumeName", "inlineVolumeSpec"]
        .iter()
        .filter(|k| src.has(k))
        .count();
    if n != 1 {
        errs.push(FieldError::required(
            p.child("source"),
            "must specify exactly one of inlineVolumeSpec and persistentVolumeName",
        ));
    }
    if let Some(old) = old {
        immutable(&mut errs, &p, obj.get("spec"), old.get("spec"));
    }
    errs
}

pub(super) fn pod_disruption_budget(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    let (min, max) = (spec.field("minAvailable"), spec.field("maxUnavailable"));
    let set = |v: Option<&Value>| v.is_some_and(|v| !v.is_null());
    if set(min) && set(max) {
        errs.push(FieldError::invalid(
            &p,
            spec.cloned().unwrap_or(Value::Null),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        if set(v) {
            positive_int_or_percent(&mut errs, &p.child(key), v);
            super::common::not_more_than_100_percent(&mut errs, &p.child(key), v);
        }
    }
    if let Some(sel) = spec.field("selector").filter(|s| !s.is_null()) {
        errs.extend(validate_label_selector(sel, p.child("selector").as_str()));
    }
    if let Some(pol) = spec.opt_str("unhealthyPodEvictionPolicy") {
        if !matches!(pol, "IfHealthyBudget" | "AlwaysAllow") {
            errs.push(FieldError::not_supported(
                p.child("unhealthyPodEvictionPolicy"),
                pol,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

pub(super) fn horizontal_pod_autoscaler(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    let min = spec.int_of("minReplicas");
    let max = spec.int_of("maxReplicas").unwrap_or(0);
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            p.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    if max < 1 {
        errs.push(FieldError::invalid(
            p.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            p.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    let r = spec.field("scaleTargetRef");
    let rp = p.child("scaleTargetRef");
    for key in ["kind", "name"] {
        let v = r.str_of(key);
        if v.is_empty() {
            errs.push(FieldError::required(rp.child(key), ""));
        } else if v.contains('/') || v.contains('%') || v == "." || v == ".." {
            errs.push(FieldError::invalid(rp.child(key), v, "may not contain '/'"));
        }
    }
    for (i, m) in spec.arr_of("metrics").iter().enumerate() {
        let mp = p.child("metrics").index(i);
        let ty = m.str_of("type");
        const TYPES: &[&str] = &[
            "ContainerResource",
            "External",
            "Object",
            "Pods",
            "Resource",
        ];
        if ty.is_empty() {
            errs.push(FieldError::required(
                mp.child("type"),
                "must specify a metric source type",
            ));
        } else if !TYPES.contains(&ty) {
            errs.push(FieldError::not_supported(mp.child("type"), ty, TYPES));
        }
    }
    errs
}

pub(super) fn ingress(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    let rules = spec.arr_of("rules");
    match spec.field("defaultBackend").filter(|b| !b.is_null()) {
        Some(b) => backend(&mut errs, b, &p.child("defaultBackend")),
        None if rules.is_empty() => errs.push(FieldError::invalid(
            &p,
            "rules",
            "either `defaultBackend` or `rules` must be specified",
        )),
        None => {}
    }
    for (i, rule) in rules.iter().enumerate() {
        let rp = p.child("rules").index(i);
        let host = rule.str_of("host");
        if !host.is_empty() {
            let h = host.strip_prefix("*.").unwrap_or(host);
            dns_subdomain(&mut errs, &rp.child("host"), h);
        }
        let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
            continue;
        };
        let hp = rp.child("http").child("paths");
        let paths = http.arr_of("paths");
        if paths.is_empty() {
            errs.push(FieldError::required(&hp, ""));
        }
        for (j, path) in paths.iter().enumerate() {
            let pp = hp.index(j);
            let pt = path.str_of("pathType");
            match pt {
                "" => errs.push(FieldError::required(
                    pp.child("pathType"),
                    "pathType must be specified",
                )),
                "Exact" | "Prefix" | "ImplementationSpecific" => {}
                other => errs.push(FieldError::not_supported(
                    pp.child("pathType"),
                    other,
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
            let pth = path.str_of("path");
            let needs_absolute = match pt {
                "Exact" | "Prefix" => true,
                "ImplementationSpecific" => !pth.is_empty(),
                _ => false,
            };
            if needs_absolute && !pth.starts_with('/') {
                errs.push(FieldError::invalid(
                    pp.child("path"),
                    pth,
                    "must be an absolute path",
                ));
            }
            backend(
                &mut errs,
                path.get("backend").unwrap_or(&Value::Null),
                &pp.child("backend"),
            );
        }
    }
    if let Some(class) = spec.opt_str("ingressClassName") {
        dns_subdomain(&mut errs, &p.child("ingressClassName"), class);
    }
    errs
}

fn backend(errs: &mut Errs, b: &Value, p: &Path) {
    let svc = b.get("service").filter(|s| !s.is_null());
    let res = b.get("resource").filter(|s| !s.is_null());
    match (svc, res) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            p,
            b.clone(),
            "cannot set both resource and service backends",
        )),
        (None, None) => errs.push(FieldError::invalid(
            p,
            b.clone(),
            "resource or service backend is required",
        )),
        (Some(s), None) => {
            let name = s.str_of("name");
            if name.is_empty() {
                errs.push(FieldError::required(p.child("service").child("name"), ""));
            } else {
                for m in apimachinery::validation::is_dns1035_label(name) {
                    errs.push(FieldError::invalid(
                        p.child("service").child("name"),
                        name,
                        m,
                    ));
                }
            }
            let port = s.field("port");
            let pp = p.child("service").child("port");
            let (has_name, has_num) = (
                !port.str_of("name").is_empty(),
                port.int_of("number").unwrap_or(0) != 0,
            );
            match (has_name, has_num) {
                (true, true) => errs.push(FieldError::invalid(
                    &pp,
                    port.cloned().unwrap_or(Value::Null),
                    "cannot set both port name & port number",
                )),
                (true, false) => port_num_or_name(errs, &pp.child("name"), port.field("name")),
                (false, true) => {
                    let n = port.int_of("number").unwrap_or(0);
                    for m in port_num_msgs(n) {
                        errs.push(FieldError::invalid(pp.child("number"), n, m));
                    }
                }
                (false, false) => {
                    errs.push(FieldError::required(&pp, "port name or number is required"))
                }
            }
        }
        (None, Some(r)) => {
            for key in ["kind", "name"] {
                if r.str_of(key).is_empty() {
                    errs.push(FieldError::required(p.child("resource").child(key), ""));
                }
            }
        }
    }
}

pub(super) fn ingress_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    let ctrl = spec.str_of("controller");
    if ctrl.is_empty() {
        errs.push(FieldError::required(p.child("controller"), ""));
    } else if ctrl.len() > 250 {
        errs.push(FieldError::too_long(p.child("controller"), 250));
    } else {
        match ctrl.split_once('/') {
            Some((domain, _)) => dns_subdomain(&mut errs, &p.child("controller"), domain),
            None => errs.push(FieldError::invalid(
                p.child("controller"),
                ctrl,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
    }
    if let Some(old) = old {
        immutable(
            &mut errs,
            &p.child("controller"),
            spec.field("controller"),
            old.field("spec").field("controller"),
        );
    }
    errs
}

pub(super) fn network_policy(obj: &Value, _old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.field("spec");
    let p = Path::new("spec");
    let sel = spec.field("podSelector").cloned().unwrap_or(Value::Null);
    errs.extend(validate_label_selector(
        &sel,
        p.child("podSelector").as_str(),
    ));
    for key in ["ingress", "egress"] {
        for (i, rule) in spec.arr_of(key).iter().enumerate() {
            let rp = p.child(key).index(i);
            for (j, port) in rule.arr_of("ports").iter().enumerate() {
                let pp = rp.child("ports").index(j);
                if let Some(proto) = port.opt_str("protocol") {
                    if !PROTOCOLS.contains(&proto) {
                        errs.push(FieldError::not_supported(
                            pp.child("protocol"),
                            proto,
                            PROTOCOLS,
                        ));
                    }
                }
                if let Some(pv) = port.get("port").filter(|v| !v.is_null()) {
                    port_num_or_name(&mut errs, &pp.child("port"), Some(pv));
                }
                if let Some(end) = port.int_of("endPort") {
                    match port.get("port") {
                        Some(Value::Number(n)) => {
                            if n.as_i64().is_some_and(|s| end < s) {
                                errs.push(FieldError::invalid(
                                    pp.child("endPort"),
                                    end,
                                    "must be greater than or equal to `port`",
                                ));
                            }
                        }
                        Some(Value::String(_)) => errs.push(FieldError::invalid(
                            pp.child("endPort"),
                            end,
                            "may not be specified when `port` is non-numeric",
                        )),
                        _ => errs.push(FieldError::required(
                            pp.child("port"),
                            "must be specified when `endPort` is specified",
                        )),
                    }
                }
            }
        }
    }
    let types = spec.arr_of("policyTypes");
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if !matches!(t, "Ingress" | "Egress") {
            errs.push(FieldError::not_supported(
                p.child("policyTypes").index(i),
                t,
                &["Ingress", "Egress"],
            ));
        }
    }
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            p.child("policyTypes"),
            Value::Array(types.to_vec()),
            "may not specify more than two policyTypes",
        ));
    }
    errs
}

const HIGHEST_USER_PRIORITY: i64 = 1_000_000_000;

pub(super) fn priority_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let name = obj.field("metadata").str_of("name");
    let value = obj.int_of("value").unwrap_or(0);
    let system = name.starts_with("system-");
    if !system && value > HIGHEST_USER_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            format!("maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"),
        ));
    }
    if let Some(p) = obj.opt_str("preemptionPolicy") {
        if !matches!(p, "PreemptLowerPriority" | "Never") {
            errs.push(FieldError::not_supported(
                "preemptionPolicy",
                p,
                &["Never", "PreemptLowerPriority"],
            ));
        }
    }
    if let Some(old) = old {
        if obj.get("value") != old.get("value") {
            errs.push(FieldError::forbidden(
                "Value",
                "may not be changed in an update.",
            ));
        }
        immutable(
            &mut errs,
            &Path::new("preemptionPolicy"),
            obj.get("preemptionPolicy"),
            old.get("preemptionPolicy"),
        );
    }
    errs
}

pub(super) fn runtime_class(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let handler = obj.str_of("handler");
    for m in is_dns1123_label(handler) {
        errs.push(FieldError::invalid("handler", handler, m));
    }
    if let Some(old) = old {
        immutable(
            &mut errs,
            &Path::new("handler"),
            obj.get("handler"),
            old.get("handler"),
        );
    }
    errs
}
