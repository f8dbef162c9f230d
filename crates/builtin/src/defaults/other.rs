//! Defaults of the kinds outside core, apps and batch: discovery, rbac, storage, autoscaling,
//! networking and scheduling.

use crate::json::{child_obj, default_ptr, default_zero, each_obj_mut, existing_obj, Get, Obj};
use serde_json::{json, Value};

pub(super) fn endpoint_slice(o: &mut Obj) {
    each_obj_mut(o, "ports", |p| {
        default_ptr(p, "name", "");
        default_ptr(p, "protocol", "TCP");
    });
}

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject`.
pub(super) fn role_binding(o: &mut Obj) {
    if let Some(r) = existing_obj(o, "roleRef") {
        default_zero(r, "apiGroup", "rbac.authorization.k8s.io");
    }
    each_obj_mut(o, "subjects", |s| {
        if s.str_of("apiGroup").is_empty() {
            match s.str_of("kind") {
                // A service account's group is "", which `omitempty` leaves off the wire.
                "User" | "Group" => {
                    s.insert("apiGroup".into(), "rbac.authorization.k8s.io".into());
                }
                _ => {}
            }
        }
    });
}

pub(super) fn storage_class(o: &mut Obj) {
    default_ptr(o, "reclaimPolicy", "Delete");
    default_ptr(o, "volumeBindingMode", "Immediate");
}

/// `SetDefaults_CSIDriver` with SELinuxMountReadWriteOncePod (beta, on in 1.33).
pub(super) fn csi_driver(o: &mut Obj) {
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    default_ptr(spec, "attachRequired", true);
    default_ptr(spec, "podInfoOnMount", false);
    default_ptr(spec, "storageCapacity", false);
    default_ptr(spec, "fsGroupPolicy", "ReadWriteOnceWithFSType");
    if crate::json::is_zero(spec.get("volumeLifecycleModes")) {
        spec.insert("volumeLifecycleModes".into(), json!(["Persistent"]));
    }
    default_ptr(spec, "requiresRepublish", false);
    default_ptr(spec, "seLinuxMount", false);
}

pub(super) fn horizontal_pod_autoscaler(o: &mut Obj) {
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    default_ptr(spec, "minReplicas", 1);
    if spec.arr_of("metrics").is_empty() {
        spec.insert(
            "metrics".into(),
            json!([{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
            }]),
        );
    }
    if let Some(behavior) = existing_obj(spec, "behavior") {
        let up = json!({
            "stabilizationWindowSeconds": 0,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Pods", "value": 4, "periodSeconds": 15},
                {"type": "Percent", "value": 100, "periodSeconds": 15}
            ]
        });
        // The scale-down window stays unset: the controller's command line decides it.
        let down = json!({
            "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]
        });
        scaling_rules(behavior, "scaleUp", up);
        scaling_rules(behavior, "scaleDown", down);
    }
    default_ptr(o, "status", json!({"desiredReplicas": 0}));
}

/// Fills every unset field of a scaling rule from the defaults (`copyHPAScalingRules`).
fn scaling_rules(behavior: &mut Obj, key: &str, defaults: Value) {
    let Value::Object(mut merged) = defaults else {
        return;
    };
    if let Some(given) = behavior.obj_of(key) {
        for (k, v) in given {
            if !v.is_null() {
                merged.insert(k.clone(), v.clone());
            }
        }
    }
    behavior.insert(key.into(), Value::Object(merged));
}

/// `SetDefaults_NetworkPolicy`: ports default to TCP; `policyTypes` to Ingress, plus Egress
/// when egress rules are given.
pub(super) fn network_policy(o: &mut Obj) {
    let Some(spec) = child_obj(o, "spec") else {
        return;
    };
    for key in ["ingress", "egress"] {
        each_obj_mut(spec, key, |rule| {
            each_obj_mut(rule, "ports", |p| default_ptr(p, "protocol", "TCP"))
        });
    }
    if spec.arr_of("policyTypes").is_empty() {
        let mut types = vec![Value::from("Ingress")];
        if !spec.arr_of("egress").is_empty() {
            types.push("Egress".into());
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

pub(super) fn priority_class(o: &mut Obj) {
    default_ptr(o, "preemptionPolicy", "PreemptLowerPriority");
}
