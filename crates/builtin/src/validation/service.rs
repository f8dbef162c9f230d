//! Service validation (`ValidateService`, `ValidateServiceUpdate`): type and ports rules,
//! session affinity, cluster IPs and IP families, traffic policies, and cluster IP
//! immutability.

use super::common::{dns_label, dns_subdomain, port_num_msgs, port_num_or_name, Errs};
use crate::json::{Get, Obj};
use apimachinery::validation::{is_valid_ip, validate_labels};
use apimachinery::{FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const KUBELET_PORT: i64 = 10250;

/// The cluster IPs as upstream sees them after its strategy syncs `clusterIP` into an empty
/// `clusterIPs`.
fn cluster_ips(spec: Option<&Obj>) -> Vec<String> {
    let ips: Vec<String> = spec
        .arr_of("clusterIPs")
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    let ip = spec.str_of("clusterIP");
    if ips.is_empty() && !ip.is_empty() {
        vec![ip.to_string()]
    } else {
        ips
    }
}

fn is_headless(spec: Option<&Obj>) -> bool {
    cluster_ips(spec).first().map(String::as_str) == Some("None")
}

pub(super) fn service(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Errs::new();
    let spec = obj.obj_of("spec");
    let p = Path::new("spec");
    if let Some(old) = old {
        cluster_ips_update(&mut errs, spec, old.obj_of("spec"));
    }
    let ty = spec.str_of("type");
    let headless = is_headless(spec);
    let ports = spec.arr_of("ports");
    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(p.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" => {
            if headless {
                errs.push(FieldError::invalid(
                    p.child("clusterIPs").index(0),
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
            for (i, port) in ports.iter().enumerate() {
                if port.int_of("port") == Some(KUBELET_PORT) {
                    errs.push(FieldError::invalid(
                        p.child("ports").index(i),
                        KUBELET_PORT,
                        format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet"),
                    ));
                }
            }
        }
        "NodePort" if headless => errs.push(FieldError::invalid(
            p.child("clusterIPs").index(0),
            "None",
            "may not be set to 'None' for NodePort services",
        )),
        "ExternalName" => {
            if !cluster_ips(spec).is_empty() {
                errs.push(FieldError::forbidden(
                    p.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if !spec.arr_of("ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    p.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.has("ipFamilyPolicy") {
                errs.push(FieldError::forbidden(
                    p.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = spec.str_of("externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(FieldError::required(p.child("externalName"), ""));
            } else {
                dns_subdomain(&mut errs, &p.child("externalName"), cname);
            }
        }
        _ => {}
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        service_port(
            &mut errs,
            port,
            ports.len() > 1,
            &mut names,
            &p.child("ports").index(i),
        );
    }
    if let Some(sel) = spec.obj_of("selector") {
        errs.extend(validate_labels(sel, p.child("selector").as_str()));
    }
    let affinity = spec.str_of("sessionAffinity");
    match affinity {
        "" => errs.push(FieldError::required(p.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cp = p.child("sessionAffinityConfig");
            match spec
                .obj_of("sessionAffinityConfig")
                .and_then(|c| c.obj_of("clientIP"))
            {
                None => errs.push(FieldError::required(cp.child("clientIP"), "")),
                Some(c) => {
                    let tp = cp.child("clientIP").child("timeoutSeconds");
                    match c.int_of("timeoutSeconds") {
                        None => errs.push(FieldError::required(tp, "")),
                        Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                            tp,
                            t,
                            "must be greater than 0 and less than 86400",
                        )),
                        Some(_) => {}
                    }
                }
            }
        }
        "None" => {
            if spec.has("sessionAffinityConfig") {
                errs.push(FieldError::forbidden(
                    p.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            p.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if ty != "ExternalName" {
        cluster_ip_fields(&mut errs, spec, &p);
    }
    for (i, ip) in spec.arr_of("externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        for m in is_valid_ip(ip) {
            errs.push(FieldError::invalid(p.child("externalIPs").index(i), ip, m));
        }
    }
    match ty {
        "" => errs.push(FieldError::required(p.child("type"), "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            p.child("type"),
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }
    if ty == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if port.int_of("nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    p.child("ports").index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports = HashSet::new();
    let mut seen_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let proto = port.str_of("protocol").to_string();
        let np = port.int_of("nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((proto.clone(), np)) {
            errs.push(FieldError::duplicate(
                p.child("ports").index(i).child("nodePort"),
                np,
            ));
        }
        let num = port.int_of("port").unwrap_or(0);
        if !seen_ports.insert((proto.clone(), num)) {
            errs.push(FieldError::duplicate(
                p.child("ports").index(i),
                serde_json::json!({"port": num, "protocol": proto}),
            ));
        }
    }
    traffic_policies(&mut errs, spec, &p);
    errs
}

fn service_port(
    errs: &mut Errs,
    port: &Value,
    require_name: bool,
    names: &mut HashSet<String>,
    p: &Path,
) {
    let name = port.str_of("name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else if !name.is_empty() {
        dns_label(errs, &p.child("name"), name);
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
    }
    let num = port.int_of("port").unwrap_or(0);
    for m in port_num_msgs(num) {
        errs.push(FieldError::invalid(p.child("port"), num, m));
    }
    let proto = port.str_of("protocol");
    if proto.is_empty() {
        errs.push(FieldError::required(p.child("protocol"), ""));
    } else if !PROTOCOLS.contains(&proto) {
        errs.push(FieldError::not_supported(
            p.child("protocol"),
            proto,
            PROTOCOLS,
        ));
    }
    port_num_or_name(errs, &p.child("targetPort"), port.get("targetPort"));
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ip_fields(errs: &mut Errs, spec: Option<&Obj>, p: &Path) {
    let ips = cluster_ips(spec);
    let ips_path = p.child("clusterIPs");
    let ip = spec.str_of("clusterIP");
    let ips_value = || Value::from(ips.clone());
    if !ip.is_empty() {
        if ips.first().map(String::as_str) != Some(ip) {
            errs.push(FieldError::invalid(
                &ips_path,
                ips_value(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, fam) in spec.arr_of("ipFamilies").iter().enumerate() {
        let fam = fam.as_str().unwrap_or("");
        if !matches!(fam, "IPv4" | "IPv6") {
            errs.push(FieldError::not_supported(
                p.child("ipFamilies").index(i),
                fam,
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(fam) {
            errs.push(FieldError::duplicate(p.child("ipFamilies").index(i), fam));
        }
    }
    if let Some(policy) = spec.field("ipFamilyPolicy").filter(|v| !v.is_null()) {
        let s = policy.as_str().unwrap_or("");
        if !matches!(s, "SingleStack" | "PreferDualStack" | "RequireDualStack") {
            errs.push(FieldError::not_supported(
                p.child("ipFamilyPolicy"),
                s,
                &["PreferDualStack", "RequireDualStack", "SingleStack"],
            ));
        }
    }
    let mut invalid = false;
    for (i, cip) in ips.iter().enumerate() {
        if i == 0 && cip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    ips_value(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        for m in is_valid_ip(cip) {
            invalid = true;
            errs.push(FieldError::invalid(ips_path.index(i), cip.as_str(), m));
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            ips_value(),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return;
    }
    if ips.len() > 1 {
        let v6 = ips.iter().filter(|i| i.contains(':')).count();
        if v6 != 1 {
            errs.push(FieldError::invalid(
                &ips_path,
                ips_value(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    if ips.first().map(String::as_str) != Some("None") {
        for (i, (cip, fam)) in ips.iter().zip(spec.arr_of("ipFamilies")).enumerate() {
            let is_v6 = cip.contains(':');
            match fam.as_str() {
                Some("IPv4") if is_v6 => errs.push(FieldError::invalid(
                    ips_path.index(i),
                    cip.as_str(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                )),
                Some("IPv6") if !is_v6 => errs.push(FieldError::invalid(
                    ips_path.index(i),
                    cip.as_str(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
}

/// External and internal traffic policy values and where they may be set.
fn traffic_policies(errs: &mut Errs, spec: Option<&Obj>, p: &Path) {
    let ty = spec.str_of("type");
    let externally = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !spec.arr_of("externalIPs").is_empty());
    let etp = spec.str_of("externalTrafficPolicy");
    if !externally && !etp.is_empty() {
        errs.push(FieldError::invalid(
            p.child("externalTrafficPolicy"),
            etp,
            "may only be set for externally-accessible services",
        ));
    } else if externally {
        match etp {
            "" => errs.push(FieldError::required(p.child("externalTrafficPolicy"), "")),
            "Cluster" | "Local" => {}
            other => errs.push(FieldError::not_supported(
                p.child("externalTrafficPolicy"),
                other,
                &["Cluster", "Local"],
            )),
        }
    }
    if let Some(hc) = spec.int_of("healthCheckNodePort").filter(|v| *v != 0) {
        if !(ty == "LoadBalancer" && etp == "Local") {
            errs.push(FieldError::invalid(
                p.child("healthCheckNodePort"),
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
            ));
        }
    }
    let itp = spec.field("internalTrafficPolicy").filter(|v| !v.is_null());
    match itp {
        None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => errs.push(
            FieldError::required(p.child("internalTrafficPolicy"), "must be specified"),
        ),
        Some(v) => {
            let s = v.as_str().unwrap_or("");
            if !matches!(s, "Cluster" | "Local") {
                errs.push(FieldError::not_supported(
                    p.child("internalTrafficPolicy"),
                    s,
                    &["Cluster", "Local"],
                ));
            }
        }
        None => {}
    }
}

/// `validateUpgradeDowngradeClusterIPs`: the primary cluster IP never changes once set.
fn cluster_ips_update(errs: &mut Errs, new: Option<&Obj>, old: Option<&Obj>) {
    if new.str_of("type") == "ExternalName" || old.str_of("type") == "ExternalName" {
        return;
    }
    if is_headless(new) && is_headless(old) {
        return;
    }
    let (n, o) = (cluster_ips(new), cluster_ips(old));
    let path = Path::new("spec").child("clusterIPs");
    let value = || Value::from(n.clone());
    if n.len() == o.len() {
        for (i, ip) in o.iter().enumerate() {
            if n.get(i) != Some(ip) {
                errs.push(FieldError::invalid(
                    path.index(i),
                    value(),
                    "may not change once set",
                ));
            }
        }
    } else if o.len() > n.len() {
        if n.is_empty() {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "primary clusterIP can not be unset",
            ));
        }
        if let (Some(a), Some(b)) = (n.first(), o.first()) {
            if a != b {
                errs.push(FieldError::invalid(
                    path.index(0),
                    value(),
                    "may not change once set",
                ));
            }
        }
        if n.len() == 1 && new.str_of("ipFamilyPolicy") != "SingleStack" {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP",
            ));
        }
    } else if let (Some(a), Some(b)) = (n.first(), o.first()) {
        if a != b {
            errs.push(FieldError::invalid(
                path.index(0),
                value(),
                "may not change once set",
            ));
        }
    }
}
