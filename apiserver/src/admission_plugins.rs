//! Built-in admission plugins that only look at the request and the caches:
//!
//! - ServiceAccount: a pod without `serviceAccountName` runs as `default`, and unless it opts
//!   out (`automountServiceAccountToken: false`) gets upstream's projected `kube-api-access-*`
//!   volume (token, `kube-root-ca.crt`, namespace) mounted at
//!   `/var/run/secrets/kubernetes.io/serviceaccount` in every container. The account's
//!   existence is not checked yet: the controller that creates `default` accounts arrives with
//!   the controller-manager.
//! - DefaultStorageClass: a PersistentVolumeClaim without `storageClassName` gets the class
//!   annotated `storageclass.kubernetes.io/is-default-class: "true"` (the newest if several).
//! - NodeRestriction: a kubelet (`system:node:<name>`) may create only its own Node and mirror
//!   pods bound to itself, and delete only pods bound to itself.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::cache::Caches;
use crate::chain::{Attributes, MutatingAdmission, Operation, ValidatingAdmission};
use crate::errors::{self, ApiResult};
use crate::object;
use crate::resources::find;

const TOKEN_MOUNT: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

fn is(a: &Attributes, kind: &str) -> bool {
    a.resource.group.is_empty() && a.resource.kind == kind && a.subresource.is_empty()
}

pub struct ServiceAccount;

impl MutatingAdmission for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        pod: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !is(a, "Pod") {
            return Ok(());
        }
        let mirror = object::meta(pod)
            .and_then(|m| m.get("annotations"))
            .and_then(|m| m.get(MIRROR_ANNOTATION))
            .is_some();
        if mirror || !pod.get("spec").is_some_and(Value::is_object) {
            return Ok(());
        }
        let spec = &mut pod["spec"];
        if spec
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            spec["serviceAccountName"] = json!("default");
        }
        if spec
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool)
            == Some(false)
        {
            return Ok(());
        }
        let containers_mount_it = ["containers", "initContainers"].iter().any(|list| {
            spec.get(*list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.get("volumeMounts")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(TOKEN_MOUNT))
                })
        });
        if containers_mount_it {
            return Ok(());
        }
        let volume_name = object::generate_name("kube-api-access-");
        let volume = json!({
            "name": volume_name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
                ],
            },
        });
        object::push_item(spec, "volumes", volume);
        let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT});
        for list in ["containers", "initContainers"] {
            if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for container in containers {
                    object::push_item(container, "volumeMounts", mount.clone());
                }
            }
        }
        Ok(())
    }
}

pub struct DefaultStorageClass {
    caches: Arc<Caches>,
}

impl DefaultStorageClass {
    pub fn new(caches: Arc<Caches>) -> Self {
        DefaultStorageClass { caches }
    }
}

impl MutatingAdmission for DefaultStorageClass {
    fn name(&self) -> &'static str {
        "DefaultStorageClass"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        pvc: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !is(a, "PersistentVolumeClaim") {
            return Ok(());
        }
        if pvc
            .get("spec")
            .and_then(|s| s.get("storageClassName"))
            .is_some_and(|v| !v.is_null())
        {
            return Ok(());
        }
        let Some(classes) = find("storage.k8s.io", "v1", "storageclasses") else {
            return Ok(());
        };
        let default = self
            .caches
            .objects(classes, None)
            .into_iter()
            .filter(|c| {
                object::meta(c)
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| a.get("storageclass.kubernetes.io/is-default-class"))
                    .and_then(Value::as_str)
                    == Some("true")
            })
            .max_by(|x, y| {
                object::meta_str(x, "creationTimestamp")
                    .cmp(object::meta_str(y, "creationTimestamp"))
            });
        if let (Some(class), Some(spec)) =
            (default, pvc.get_mut("spec").and_then(Value::as_object_mut))
        {
            spec.insert("storageClassName".into(), json!(object::name(&class)));
        }
        Ok(())
    }
}

pub struct NodeRestriction;

fn node_of(a: &Attributes) -> Option<String> {
    let user = a.user.as_ref()?;
    if !user.groups.iter().any(|g| g == "system:nodes") {
        return None;
    }
    user.name.strip_prefix("system:node:").map(str::to_string)
}

impl ValidatingAdmission for NodeRestriction {
    fn name(&self) -> &'static str {
        "NodeRestriction"
    }

    fn validate(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &Value,
        old: Option<&Value>,
    ) -> ApiResult<()> {
        let Some(node) = node_of(a) else {
            return Ok(());
        };
        let refuse = |why: String| {
            Err(errors::forbidden(
                a.resource,
                &a.name,
                format!(
                    "{} \"{}\" is forbidden: {why}",
                    a.resource.qualified(),
                    object::name(obj)
                ),
            ))
        };
        if is(a, "Node") && object::name(obj) != node {
            return refuse(format!(
                "node \"{node}\" is not allowed to modify node \"{}\"",
                object::name(obj)
            ));
        }
        if is(a, "Pod") {
            let bound = |o: &Value| {
                o.get("spec")
                    .and_then(|s| s.get("nodeName"))
                    .and_then(Value::as_str)
                    == Some(node.as_str())
            };
            match op {
                Operation::Create => {
                    let mirror = object::meta(obj)
                        .and_then(|m| m.get("annotations"))
                        .and_then(|m| m.get(MIRROR_ANNOTATION))
                        .is_some();
                    if !mirror {
                        return refuse(format!("pod does not have \"{MIRROR_ANNOTATION}\" annotation, node \"{node}\" can only create mirror pods"));
                    }
                    if !bound(obj) {
                        return refuse(format!(
                            "node \"{node}\" can only create pods with spec.nodeName set to itself"
                        ));
                    }
                }
                Operation::Update | Operation::Delete => {
                    if !old.is_some_and(bound) && !bound(obj) {
                        return refuse(format!("node \"{node}\" can only update or delete pods with spec.nodeName set to itself"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Priority: a pod's `priorityClassName` (or the `globalDefault` class) resolves to
/// `spec.priority` and `spec.preemptionPolicy`; an unknown class is refused.
pub struct Priority {
    caches: Arc<Caches>,
}

impl Priority {
    pub fn new(caches: Arc<Caches>) -> Self {
        Priority { caches }
    }
}

/// The PriorityClasses kube-apiserver creates at start (upstream's bootstrap classes).
pub fn system_priority_classes() -> Vec<Value> {
    [("system-node-critical", 2_000_001_000i64), ("system-cluster-critical", 2_000_000_000)]
        .iter()
        .map(|(name, value)| {
            json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": name},
                "value": value,
                "description": format!("Used for system critical pods that must not be moved from their current {}.",
                    if *name == "system-node-critical" { "node" } else { "node, or critical pods that are essential to the cluster" }),
                "preemptionPolicy": "PreemptLowerPriority"})
        })
        .collect()
}

impl MutatingAdmission for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        pod: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create
            || !is(a, "Pod")
            || !pod.get("spec").is_some_and(Value::is_object)
        {
            return Ok(());
        }
        let Some(classes) = find("scheduling.k8s.io", "v1", "priorityclasses") else {
            return Ok(());
        };
        let all = self.caches.objects(classes, None);
        let requested = pod["spec"]
            .get("priorityClassName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let class = if requested.is_empty() {
            all.iter()
                .find(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        } else {
            match all.iter().find(|c| object::name(c) == requested) {
                Some(c) => Some(c),
                None => {
                    return Err(errors::forbidden(
                        a.resource,
                        object::name(pod),
                        format!("pods \"{}\" is forbidden: no PriorityClass with name {requested} was found", object::name(pod)),
                    ))
                }
            }
        };
        let (value, policy) = match class {
            Some(c) => (
                c.get("value").and_then(Value::as_i64).unwrap_or(0),
                c.get("preemptionPolicy")
                    .and_then(Value::as_str)
                    .unwrap_or("PreemptLowerPriority")
                    .to_string(),
            ),
            None => (0, "PreemptLowerPriority".to_string()),
        };
        if let Some(given) = pod["spec"].get("priority").and_then(Value::as_i64) {
            if given != value {
                return Err(errors::forbidden(
                    a.resource,
                    object::name(pod),
                    format!(
                        "pods \"{}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
                        object::name(pod)
                    ),
                ));
            }
        }
        if let (Some(c), true) = (class, requested.is_empty()) {
            pod["spec"]["priorityClassName"] = json!(object::name(c));
        }
        pod["spec"]["priority"] = json!(value);
        pod["spec"]["preemptionPolicy"] = json!(policy);
        Ok(())
    }
}

/// DefaultTolerationSeconds: pods tolerate `not-ready` and `unreachable` NoExecute taints for
/// 300 seconds unless they say otherwise.
pub struct DefaultTolerationSeconds;

impl MutatingAdmission for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        pod: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create
            || !is(a, "Pod")
            || !pod.get("spec").is_some_and(Value::is_object)
        {
            return Ok(());
        }
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let tolerated = pod["spec"]
                .get("tolerations")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|t| {
                    let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
                    let k = t.get("key").and_then(Value::as_str).unwrap_or("");
                    (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
                });
            if tolerated {
                continue;
            }
            let toleration = json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300});
            object::push_item(&mut pod["spec"], "tolerations", toleration);
        }
        Ok(())
    }
}

/// TaintNodesByCondition: a new Node starts tainted `node.kubernetes.io/not-ready:NoSchedule`
/// until the node lifecycle controller sees it Ready.
pub struct TaintNodesByCondition;

impl MutatingAdmission for TaintNodesByCondition {
    fn name(&self) -> &'static str {
        "TaintNodesByCondition"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        node: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create || !is(a, "Node") {
            return Ok(());
        }
        if !node.get("spec").is_some_and(Value::is_object) {
            node["spec"] = json!({});
        }
        let taint = json!({"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"});
        let present = node["spec"]
            .get("taints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|t| t.get("key") == taint.get("key") && t.get("effect") == taint.get("effect"));
        if !present {
            object::push_item(&mut node["spec"], "taints", taint);
        }
        Ok(())
    }
}

/// StorageObjectInUseProtection: new PersistentVolumeClaims and PersistentVolumes carry the
/// `kubernetes.io/pvc-protection` / `kubernetes.io/pv-protection` finalizer, so that one in use
/// is not removed (the controllers that clear it arrive with the controller-manager).
pub struct StorageObjectInUseProtection;

impl MutatingAdmission for StorageObjectInUseProtection {
    fn name(&self) -> &'static str {
        "StorageObjectInUseProtection"
    }

    fn admit(
        &self,
        op: Operation,
        a: &Attributes,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> ApiResult<()> {
        if op != Operation::Create {
            return Ok(());
        }
        let finalizer = if is(a, "PersistentVolumeClaim") {
            "kubernetes.io/pvc-protection"
        } else if is(a, "PersistentVolume") {
            "kubernetes.io/pv-protection"
        } else {
            return Ok(());
        };
        let meta = object::meta_mut(obj);
        match meta.get_mut("finalizers").and_then(Value::as_array_mut) {
            Some(list) if list.iter().any(|f| f == finalizer) => {}
            Some(list) => list.push(json!(finalizer)),
            None => {
                meta.insert("finalizers".into(), json!([finalizer]));
            }
        }
        Ok(())
    }
}
