//! Builders for the volume plugins' unit tests: pods, claims, volumes, classes and nodes from
//! JSON, and listers filled by hand.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde_json::{json, Value};

use super::listers::VolumeListers;
use crate::framework::{NodeInfo, PodInfo};

pub fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("test object")
}

/// A pod in `ns` using these claims (`claimName` volumes).
pub fn pod_with_claims(name: &str, claims: &[&str]) -> Pod {
    let volumes: Vec<Value> = claims
        .iter()
        .map(|c| json!({"name": format!("vol-{c}"), "persistentVolumeClaim": {"claimName": c}}))
        .collect();
    from(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c"}], "volumes": volumes},
    }))
}

pub fn pod_info(pod: Pod) -> PodInfo {
    PodInfo::new(Arc::new(pod))
}

/// A claim of `class`; bound to `volume` (with the bind-completed annotation) when given.
pub fn pvc(name: &str, class: &str, volume: Option<&str>) -> PersistentVolumeClaim {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "resourceVersion": "1"},
        "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    });
    if let Some(volume) = volume {
        v["spec"]["volumeName"] = json!(volume);
        v["metadata"]["annotations"] = json!({"pv.kubernetes.io/bind-completed": "yes"});
        v["status"] = json!({"phase": "Bound"});
    }
    from(v)
}

/// An Available volume of `class` with `size` and an optional node affinity term list.
pub fn pv(name: &str, class: &str, size: &str, node_terms: Option<Value>) -> PersistentVolume {
    let mut v = json!({
        "metadata": {"name": name, "resourceVersion": "1"},
        "spec": {"storageClassName": class, "capacity": {"storage": size},
                 "accessModes": ["ReadWriteOnce"]},
        "status": {"phase": "Available"},
    });
    if let Some(terms) = node_terms {
        v["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": terms}});
    }
    from(v)
}

/// A volume bound to the claim `ns/claim`.
pub fn bound_pv(name: &str, claim: &str, node_terms: Option<Value>) -> PersistentVolume {
    let mut v = pv(name, "", "1Gi", node_terms);
    if let Some(spec) = v.spec.as_mut() {
        spec.claim_ref = Some(from(json!({
            "name": claim, "namespace": "ns", "uid": format!("uid-{claim}")})));
    }
    if let Some(status) = v.status.as_mut() {
        status.phase = Some("Bound".into());
    }
    v
}

pub fn class(name: &str, mode: &str, provisioner: &str) -> StorageClass {
    from(json!({
        "metadata": {"name": name},
        "provisioner": provisioner,
        "volumeBindingMode": mode,
    }))
}

pub fn node(name: &str, labels: Value) -> Node {
    from(json!({"metadata": {"name": name, "labels": labels}}))
}

pub fn node_info(node: Node) -> NodeInfo {
    NodeInfo::new(Some(Arc::new(node)))
}

/// Listers holding these objects.
pub struct Fixture {
    pub listers: VolumeListers,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            listers: VolumeListers::default(),
        }
    }

    pub fn pvc(self, o: PersistentVolumeClaim) -> Fixture {
        VolumeListers::put(&self.listers.pvcs, o);
        self
    }

    pub fn pv(self, o: PersistentVolume) -> Fixture {
        VolumeListers::put(&self.listers.pvs, o);
        self
    }

    pub fn class(self, o: StorageClass) -> Fixture {
        VolumeListers::put(&self.listers.classes, o);
        self
    }

    pub fn node(self, o: Node) -> Fixture {
        VolumeListers::put(&self.listers.nodes, o);
        self
    }

    pub fn pod(self, o: Pod) -> Fixture {
        VolumeListers::put(&self.listers.pods, o);
        self
    }

    pub fn json<K>(
        self,
        store: impl Fn(&VolumeListers) -> &client::informer::store::Store<K>,
        v: Value,
    ) -> Fixture
    where
        K: kube::core::Resource + serde::de::DeserializeOwned,
    {
        VolumeListers::put(store(&self.listers), from::<K>(v));
        self
    }
}
