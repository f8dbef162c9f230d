//! Defaults of the core/v1 kinds other than the nested pod-spec types (see `pod.rs`).

use super::pod;
use crate::json::{child_obj, default_ptr, default_zero, each_obj_mut, existing_obj, Get, Obj};
use base64::Engine;
use serde_json::Value;

/// `DefaultClientIPServiceAffinitySeconds`: three hours.
const CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

pub(super) fn pod(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        pod::pod_spec(spec);
        pod::pod_only(spec);
    }
}

pub(super) fn pod_template(o: &mut Obj) {
    if let Some(t) = child_obj(o, "template") {
        pod::pod_template_spec(t);
    }
}

/// `SetDefaults_ReplicationController`: selector and labels come from the template's labels,
/// one replica.
pub(super) fn replication_controller(o: &mut Obj) {
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    default_ptr(spec, "replicas", 1);
    let labels = spec
        .obj_of("template")
        .and_then(|t| t.obj_of("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(t) = existing_obj(spec, "template") {
        pod::pod_template_spec(t);
    }
    if let Some(labels) = labels {
        default_zero(spec, "selector", labels.clone());
        if let Some(meta) = child_obj(o, "metadata") {
            default_zero(meta, "labels", labels);
        }
    }
    default_ptr(o, "status", serde_json::json!({"replicas": 0}));
}

/// `SetDefaults_Service`. `ipFamilyPolicy` and `ipFamilies` are decided with the cluster IP
/// (see [`crate::default_service_ip_family_policy`]).
pub(super) fn service(o: &mut Obj) {
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    default_zero(spec, "sessionAffinity", "None");
    match spec.str_of("sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .obj_of("sessionAffinityConfig")
                .and_then(|c| c.obj_of("clientIP"))
                .is_some_and(|c| c.has("timeoutSeconds"));
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    serde_json::json!({"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}),
                );
            }
        }
        _ => {}
    }
    default_zero(spec, "type", "ClusterIP");
    each_obj_mut(spec, "ports", |p| {
        default_zero(p, "protocol", "TCP");
        if crate::json::is_zero(p.get("targetPort")) {
            if let Some(port) = p.get("port").cloned() {
                p.insert("targetPort".into(), port);
            }
        }
    });
    let ty = spec.str_of("type").to_string();
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && !spec.arr_of("externalIPs").is_empty());
    if externally_accessible {
        default_zero(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default_ptr(spec, "internalTrafficPolicy", "Cluster");
    }
    if ty == "LoadBalancer" {
        default_ptr(spec, "allocateLoadBalancerNodePorts", true);
    }
    let Some(status) = child_obj(o, "status") else {
        return;
    };
    let Some(lb) = child_obj(status, "loadBalancer") else {
        return;
    };
    if ty == "LoadBalancer" {
        each_obj_mut(lb, "ingress", |ing| {
            if !ing.str_of("ip").is_empty() {
                default_ptr(ing, "ipMode", "VIP");
            }
        });
    }
}

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label) and
/// `SetDefaults_NamespaceStatus`.
pub(super) fn namespace(o: &mut Obj) {
    if let Some(meta) = child_obj(o, "metadata") {
        let name = meta.str_of("name").to_string();
        if !name.is_empty() {
            if let Some(labels) = child_obj(meta, "labels") {
                labels.insert("kubernetes.io/metadata.name".into(), name.into());
            }
        }
    }
    if let Some(status) = child_obj(o, "status") {
        default_zero(status, "phase", "Active");
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub(super) fn node(o: &mut Obj) {
    if let Some(status) = existing_obj(o, "status") {
        if !status.has("allocatable") {
            if let Some(cap) = status.get("capacity").filter(|c| c.is_object()).cloned() {
                status.insert("allocatable".into(), cap);
            }
        }
    }
}

pub(super) fn endpoints(o: &mut Obj) {
    each_obj_mut(o, "subsets", |s| {
        each_obj_mut(s, "ports", |p| default_zero(p, "protocol", "TCP"))
    });
}

/// `SetDefaults_Secret`, after folding `stringData` into `data` as upstream's v1 conversion
/// does (write-only convenience: it is never stored or returned).
pub(super) fn secret(o: &mut Obj) {
    if let Some(Value::Object(string_data)) = o.remove("stringData") {
        if let Some(data) = child_obj(o, "data") {
            for (k, v) in string_data {
                if let Some(s) = v.as_str() {
                    let encoded = base64::engine::general_purpose::STANDARD.encode(s);
                    data.insert(k, encoded.into());
                }
            }
        }
    }
    default_zero(o, "type", "Opaque");
}

pub(super) fn persistent_volume(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        default_zero(spec, "persistentVolumeReclaimPolicy", "Retain");
        default_ptr(spec, "volumeMode", "Filesystem");
        pod::volume_source(spec);
    }
    if let Some(status) = child_obj(o, "status") {
        default_zero(status, "phase", "Pending");
    }
}

pub(super) fn persistent_volume_claim(o: &mut Obj) {
    if let Some(spec) = child_obj(o, "spec") {
        pod::pvc_spec(spec);
    }
    if let Some(status) = child_obj(o, "status") {
        default_zero(status, "phase", "Pending");
    }
}

/// `SetDefaults_LimitRangeItem`: for `Container` items, `default` falls back to `max`, and
/// `defaultRequest` to `default`, then to `min`.
pub(super) fn limit_range(o: &mut Obj) {
    let Some(spec) = existing_obj(o, "spec") else {
        return;
    };
    each_obj_mut(spec, "limits", |item| {
        if item.str_of("type") != "Container" {
            return;
        }
        let max = item.obj_of("max").cloned().unwrap_or_default();
        let min = item.obj_of("min").cloned().unwrap_or_default();
        let mut default = item.obj_of("default").cloned().unwrap_or_default();
        for (k, v) in max {
            default.entry(k).or_insert(v);
        }
        let mut request = item.obj_of("defaultRequest").cloned().unwrap_or_default();
        for (k, v) in default.iter().chain(min.iter()) {
            request.entry(k.clone()).or_insert_with(|| v.clone());
        }
        // Empty maps are omitted on the wire, as upstream's `omitempty`.
        if !default.is_empty() {
            item.insert("default".into(), Value::Object(default));
        }
        if !request.is_empty() {
            item.insert("defaultRequest".into(), Value::Object(request));
        }
    });
}
