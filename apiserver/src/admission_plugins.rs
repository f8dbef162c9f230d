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
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(volumes) => volumes.push(volume),
            None => spec["volumes"] = json!([volume]),
        }
        let mount = json!({"name": volume_name, "readOnly": true, "mountPath": TOKEN_MOUNT});
        for list in ["containers", "initContainers"] {
            if let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) {
                for container in containers {
                    match container
                        .get_mut("volumeMounts")
                        .and_then(Value::as_array_mut)
                    {
                        Some(mounts) => mounts.push(mount.clone()),
                        None => container["volumeMounts"] = json!([mount.clone()]),
                    }
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
        let Some(cache) = self.caches.get(classes) else {
            return Ok(());
        };
        let (items, _) = cache.list(&classes.key_prefix(), &|_| true);
        let default = items
            .iter()
            .map(|c| c.object(classes))
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
