//! What happens to an object on its way into storage, per resource (upstream's registry
//! "strategies"): which fields the server owns, which part a subresource may change, when
//! `generation` moves, and what a new object starts with.

use serde_json::{json, Value};

use crate::object::{meta, meta_mut};
use crate::resources::Resource;

/// Server-owned metadata and initial state for a new object.
pub fn prepare_for_create(resource: &Resource, obj: &mut Value, uid: String, now: &str) {
    let m = meta_mut(obj);
    m.insert("uid".into(), Value::String(uid));
    m.insert("creationTimestamp".into(), Value::String(now.into()));
    m.remove("resourceVersion");
    m.remove("selfLink");
    m.remove("deletionTimestamp");
    m.remove("deletionGracePeriodSeconds");
    if resource.tracks_generation {
        m.insert("generation".into(), json!(1));
    } else {
        m.remove("generation");
    }
    // Nodes keep the status they are registered with (upstream's node strategy does not clear
    // it: the kubelet sends capacity and addresses in its create).
    if resource.has_status() && !(resource.group.is_empty() && resource.kind == "Node") {
        reset_status(resource, obj);
    }
    match (resource.group, resource.kind) {
        ("", "Namespace") => {
            // Every namespace starts with the `kubernetes` finalizer that the namespace
            // controller removes once the namespace is empty.
            let spec = crate::object::object_field(obj, "spec");
            if !spec.get("finalizers").is_some_and(Value::is_array) {
                spec.insert("finalizers".into(), json!(["kubernetes"]));
            }
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "Pod") => {
            obj["status"] = json!({"phase": "Pending", "qosClass": qos_class(obj)});
        }
        _ => {}
    }
    builtin::default(resource.group, resource.version, resource.kind, obj);
    match (resource.group, resource.kind) {
        ("batch", "Job") => builtin::generate_job_selector(obj),
        ("", "Service") => builtin::default_service_ip_family_policy(obj, None),
        _ => {}
    }
}

/// The status a freshly created object of `resource` reports.
fn reset_status(resource: &Resource, obj: &mut Value) {
    let empty = match (resource.group, resource.kind) {
        // Upstream serializes these status structs even when empty.
        ("apps", _) | ("batch", _) | ("", "ReplicationController") | ("policy", _) => {
            json!({})
        }
        ("", "PersistentVolume") => json!({"phase": "Pending"}),
        ("", "PersistentVolumeClaim") => json!({"phase": "Pending"}),
        _ => Value::Null,
    };
    if let Some(map) = obj.as_object_mut() {
        if empty.is_null() {
            map.remove("status");
        } else {
            map.insert("status".into(), empty);
        }
    }
}

/// Which part of an object a write through the main resource or a subresource may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The main resource: everything but status.
    Main,
    /// `/status`: only status.
    Status,
    /// `/finalize` of namespaces: only spec.finalizers.
    Finalize,
    /// `/approval` of CertificateSigningRequests: only the Approved/Denied conditions.
    Approval,
}

/// Merges what the writer may change from `new` into `old`'s server-owned state, returning the
/// object to store. `new` has passed admission already.
pub fn prepare_for_update(resource: &Resource, part: Part, new: Value, old: &Value) -> Value {
    let mut out = match part {
        Part::Main => {
            let mut out = new;
            if resource.has_status() {
                match old.get("status") {
                    Some(status) => out["status"] = status.clone(),
                    None => {
                        if let Some(map) = out.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
            }
            out
        }
        Part::Status => {
            let mut out = old.clone();
            match new.get("status") {
                Some(status) => out["status"] = status.clone(),
                None => {
                    if let Some(map) = out.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            // Status writes may still move ownership bookkeeping.
            if let Some(fields) = meta(&new).and_then(|m| m.get("managedFields")) {
                meta_mut(&mut out).insert("managedFields".into(), fields.clone());
            }
            // Upstream resets only the spec on nodes/status and pods/status (and, for pods, the
            // owner references): labels and annotations written there are kept.
            if resource.group.is_empty() && matches!(resource.kind, "Node" | "Pod") {
                for key in ["labels", "annotations"] {
                    match meta(&new).and_then(|m| m.get(key)) {
                        Some(value) => {
                            meta_mut(&mut out).insert(key.into(), value.clone());
                        }
                        None => {
                            meta_mut(&mut out).remove(key);
                        }
                    }
                }
            }
            out
        }
        Part::Approval => {
            // Only the approval conditions move; the certificate (status.certificate) and the
            // signer's conditions belong to /status.
            let mut out = old.clone();
            let approval = |c: &&Value| {
                matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("Approved") | Some("Denied")
                )
            };
            let wanted: Vec<Value> = new
                .get("status")
                .and_then(|s| s.get("conditions"))
                .and_then(Value::as_array)
                .map(|list| list.iter().filter(approval).cloned().collect())
                .unwrap_or_default();
            let mut conditions: Vec<Value> = old
                .get("status")
                .and_then(|s| s.get("conditions"))
                .and_then(Value::as_array)
                .map(|list| list.iter().filter(|c| !approval(c)).cloned().collect())
                .unwrap_or_default();
            conditions.extend(wanted);
            crate::object::object_field(&mut out, "status")
                .insert("conditions".into(), Value::Array(conditions));
            out
        }
        Part::Finalize => {
            let mut out = old.clone();
            let finalizers = new
                .get("spec")
                .and_then(|s| s.get("finalizers"))
                .cloned()
                .unwrap_or(Value::Null);
            crate::object::object_field(&mut out, "spec").insert("finalizers".into(), finalizers);
            out
        }
    };
    if resource.group.is_empty() && resource.kind == "Service" && part == Part::Main {
        keep_service_allocations(&mut out, old);
    }
    builtin::default(resource.group, resource.version, resource.kind, &mut out);
    if resource.group.is_empty() && resource.kind == "Service" {
        builtin::default_service_ip_family_policy(&mut out, Some(old));
    }
    // Metadata the server owns is never taken from the writer.
    let old_meta = meta(old).cloned().unwrap_or_default();
    let m = meta_mut(&mut out);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old_meta.get(field) {
            Some(v) => m.insert(field.into(), v.clone()),
            None => m.remove(field),
        };
    }
    m.remove("selfLink");
    if resource.tracks_generation {
        let generation = old_meta
            .get("generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = out.get("spec") != old.get("spec");
        let next = if spec_changed {
            generation + 1
        } else {
            generation
        };
        meta_mut(&mut out).insert("generation".into(), json!(next));
    } else if let Some(generation) = old_meta.get("generation") {
        meta_mut(&mut out).insert("generation".into(), generation.clone());
    }
    out
}

/// An update that leaves out the allocated ClusterIP(s) or NodePorts keeps the old ones, as
/// upstream's service registry does (clients rarely echo them).
fn keep_service_allocations(new: &mut Value, old: &Value) {
    let Some(old_spec) = old.get("spec") else {
        return;
    };
    let spec = crate::object::object_field(new, "spec");
    for field in ["clusterIP", "clusterIPs"] {
        let missing = spec
            .get(field)
            .is_none_or(|v| v.is_null() || v.as_str() == Some(""));
        if missing {
            if let Some(v) = old_spec.get(field) {
                spec.insert(field.into(), v.clone());
            }
        }
    }
    let old_ports = old_spec
        .get("ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports.iter_mut() {
            if port.get("nodePort").is_some_and(|p| !p.is_null()) {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("port") == port.get("port")
                    && o.get("protocol").and_then(Value::as_str).unwrap_or("TCP")
                        == port
                            .get("protocol")
                            .and_then(Value::as_str)
                            .unwrap_or("TCP")
            });
            if let (Some(node_port), Some(map)) =
                (same.and_then(|o| o.get("nodePort")), port.as_object_mut())
            {
                map.insert("nodePort".into(), node_port.clone());
            }
        }
    }
}

/// A pod's QoS class from its containers' requests and limits (upstream `GetPodQOS`, for the
/// cases that decide it: nothing set → BestEffort; every container with equal cpu and memory
/// requests and limits → Guaranteed; otherwise Burstable).
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| {
            pod.get("spec")
                .and_then(|s| s.get(*f))
                .and_then(Value::as_array)
        })
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = !containers.is_empty();
    for c in &containers {
        let resources = c.get("resources");
        let requests = resources
            .and_then(|r| r.get("requests"))
            .and_then(Value::as_object);
        let limits = resources
            .and_then(|r| r.get("limits"))
            .and_then(Value::as_object);
        if requests.is_some_and(|r| !r.is_empty()) || limits.is_some_and(|l| !l.is_empty()) {
            any = true;
        }
        for res in ["cpu", "memory"] {
            let limit = limits.and_then(|l| l.get(res));
            let request = requests.and_then(|r| r.get(res)).or(limit);
            if limit.is_none() || request != limit {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;

    #[test]
    fn node_and_pod_status_writes_keep_labels_and_annotations() {
        let node = crate::resources::find("", "v1", "nodes").unwrap();
        let old = json!({"metadata": {"name": "n", "uid": "u", "labels": {"a": "1"}}, "spec": {"podCIDR": "10.0.0.0/24"}, "status": {}});
        let new = json!({"metadata": {"name": "n", "uid": "x", "labels": {"a": "2"}, "annotations": {"k": "v"}}, "spec": {}, "status": {"phase": "Running"}});
        let out = prepare_for_update(node, Part::Status, new, &old);
        assert_eq!(out["metadata"]["labels"]["a"], "2");
        assert_eq!(out["metadata"]["annotations"]["k"], "v");
        assert_eq!(out["metadata"]["uid"], "u");
        assert_eq!(out["spec"]["podCIDR"], "10.0.0.0/24");
        let mut created = json!({"metadata": {"name": "n"}, "status": {"capacity": {"cpu": "2"}}});
        prepare_for_create(node, &mut created, "u".into(), "2026-01-01T00:00:00Z");
        assert_eq!(created["status"]["capacity"]["cpu"], "2");
    }

    #[test]
    fn generation_moves_only_with_the_spec() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut old = json!({"metadata": {"name": "d", "generation": 3, "uid": "u"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        // Stored objects are always defaulted.
        builtin::default("apps", "v1", "Deployment", &mut old);
        let labels_only =
            json!({"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}});
        let out = prepare_for_update(deploy, Part::Main, labels_only, &old);
        assert_eq!(out["metadata"]["generation"], 3);
        assert_eq!(out["metadata"]["uid"], "u");
        assert_eq!(
            out["status"]["replicas"], 1,
            "the main resource cannot change status"
        );
        let scaled = json!({"metadata": {"name": "d"}, "spec": {"replicas": 2}});
        let out = prepare_for_update(deploy, Part::Main, scaled, &old);
        assert_eq!(out["metadata"]["generation"], 4);
    }

    #[test]
    fn status_writes_change_only_status() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut old = json!({"metadata": {"name": "d", "generation": 2}, "spec": {"replicas": 1}, "status": {}});
        builtin::default("apps", "v1", "Deployment", &mut old);
        let new = json!({"metadata": {"name": "d", "labels": {"x": "y"}}, "spec": {"replicas": 5}, "status": {"replicas": 1}});
        let out = prepare_for_update(deploy, Part::Status, new, &old);
        assert_eq!(out["spec"]["replicas"], 1);
        assert_eq!(out["status"]["replicas"], 1);
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(out["metadata"]["generation"], 2);
    }

    #[test]
    fn new_namespaces_and_pods_start_like_upstream() {
        let ns = find("", "v1", "namespaces").unwrap();
        let mut obj = json!({"metadata": {"name": "a"}});
        prepare_for_create(ns, &mut obj, "u".into(), "2026-01-01T00:00:00Z");
        assert_eq!(obj["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(obj["status"]["phase"], "Active");
        let pods = find("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}, "status": {"phase": "Running"}});
        prepare_for_create(pods, &mut pod, "u".into(), "2026-01-01T00:00:00Z");
        assert_eq!(
            pod["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
    }

    #[test]
    fn qos_classes() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "c", "resources": res}]}});
        assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
            "Burstable"
        );
    }
}
