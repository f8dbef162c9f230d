//! Registration, as upstream's `initialNode` and `tryRegisterWithAPIServer`: the Node the
//! kubelet creates (default labels, `--node-labels`, the controller-managed attach/detach
//! annotation, `--register-with-taints`, and the full status), and what it reconciles when a
//! Node of that name already exists (the default labels and the annotation; the rest is the
//! status loop's).
//!
//! Upstream sends that reconciliation through the status subresource, whose strategy keeps
//! metadata changes for nodes; here it is a merge patch on the Node itself, which any apiserver
//! applies to metadata (the kubelet may patch its own Node).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{json, Map, Value};

use super::setters::{go_arch, go_os};

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_OS: &str = "kubernetes.io/os";
pub const LABEL_ARCH: &str = "kubernetes.io/arch";
/// The labels the kubelet keeps in line with itself on an existing Node.
const DEFAULT_LABELS: &[&str] = &[
    LABEL_HOSTNAME,
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    LABEL_OS,
    LABEL_ARCH,
    "node.kubernetes.io/windows-build",
];
pub const CONTROLLER_MANAGED_ATTACH_ANNOTATION: &str =
    "volumes.kubernetes.io/controller-managed-attach-detach";

/// What a node agent registers as.
#[derive(Clone, Debug, Default)]
pub struct NodeIdentity {
    pub name: String,
    pub hostname: String,
    /// `--node-labels`.
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    pub enable_controller_attach_detach: bool,
    pub provider_id: String,
}

/// The Node to create, without status (the setters fill it).
pub fn initial_node(identity: &NodeIdentity) -> Node {
    let mut labels = BTreeMap::from([
        (LABEL_HOSTNAME.to_string(), identity.hostname.clone()),
        (LABEL_OS.to_string(), go_os().to_string()),
        (LABEL_ARCH.to_string(), go_arch().to_string()),
    ]);
    for (key, value) in &identity.labels {
        if let Some(default) = labels.get(key) {
            tracing::warn!(
                label = %key,
                %value,
                %default,
                "the node label will overwrite the default setting"
            );
        }
        labels.insert(key.clone(), value.clone());
    }
    let annotations = identity.enable_controller_attach_detach.then(|| {
        BTreeMap::from([(
            CONTROLLER_MANAGED_ATTACH_ANNOTATION.to_string(),
            "true".to_string(),
        )])
    });
    Node {
        metadata: ObjectMeta {
            name: Some(identity.name.clone()),
            labels: Some(labels),
            annotations,
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            taints: (!identity.taints.is_empty()).then(|| identity.taints.clone()),
            provider_id: (!identity.provider_id.is_empty()).then(|| identity.provider_id.clone()),
            ..NodeSpec::default()
        }),
        status: None,
    }
}

/// The metadata patch that brings an existing Node's default labels and attach/detach
/// annotation in line with `initial`; `None` when they already are.
pub fn reconcile_existing(initial: &Node, existing: &Node) -> Option<Value> {
    let empty = BTreeMap::new();
    let want_labels = initial.metadata.labels.as_ref().unwrap_or(&empty);
    let have_labels = existing.metadata.labels.as_ref().unwrap_or(&empty);
    let mut labels = Map::new();
    for key in DEFAULT_LABELS {
        let Some(want) = want_labels.get(*key) else {
            continue;
        };
        if have_labels.get(*key) == Some(want) {
            continue;
        }
        // An empty wanted value removes the label, as upstream.
        let value = if want.is_empty() {
            Value::Null
        } else {
            Value::String(want.clone())
        };
        if want.is_empty() && !have_labels.contains_key(*key) {
            continue;
        }
        labels.insert((*key).to_string(), value);
    }
    let want_cmad = initial
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONTROLLER_MANAGED_ATTACH_ANNOTATION));
    let have_cmad = existing
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONTROLLER_MANAGED_ATTACH_ANNOTATION));
    let mut annotations = Map::new();
    if want_cmad != have_cmad {
        annotations.insert(
            CONTROLLER_MANAGED_ATTACH_ANNOTATION.to_string(),
            want_cmad.map_or(Value::Null, |v| Value::String(v.clone())),
        );
    }
    if labels.is_empty() && annotations.is_empty() {
        return None;
    }
    let mut metadata = Map::new();
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    Some(json!({ "metadata": Value::Object(metadata) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> NodeIdentity {
        NodeIdentity {
            name: "n1".into(),
            hostname: "n1".into(),
            labels: BTreeMap::from([("node.kubernetes.io/pool".into(), "a".into())]),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: Some("infra".into()),
                effect: "NoSchedule".into(),
                time_added: None,
            }],
            enable_controller_attach_detach: true,
            provider_id: String::new(),
        }
    }

    #[test]
    fn the_initial_node_carries_labels_annotation_and_taints() {
        let node = initial_node(&identity());
        let labels = node.metadata.labels.as_ref().unwrap();
        assert_eq!(labels[LABEL_HOSTNAME], "n1");
        assert_eq!(labels[LABEL_OS], "linux");
        assert_eq!(labels[LABEL_ARCH], go_arch());
        assert_eq!(labels["node.kubernetes.io/pool"], "a");
        assert_eq!(
            node.metadata.annotations.as_ref().unwrap()[CONTROLLER_MANAGED_ATTACH_ANNOTATION],
            "true"
        );
        let spec = node.spec.as_ref().unwrap();
        assert_eq!(spec.taints.as_ref().unwrap()[0].key, "dedicated");
        assert_eq!(spec.unschedulable, None);
    }

    #[test]
    fn an_existing_node_gets_its_default_labels_back() {
        let initial = initial_node(&identity());
        let mut existing = initial.clone();
        assert_eq!(reconcile_existing(&initial, &existing), None);
        let labels = existing.metadata.labels.as_mut().unwrap();
        labels.insert(LABEL_ARCH.into(), "s390x".into());
        labels.remove(LABEL_HOSTNAME);
        // Labels the kubelet does not own are left alone, --node-labels included.
        labels.remove("node.kubernetes.io/pool");
        labels.insert("team".into(), "x".into());
        existing.metadata.annotations = None;
        let patch = reconcile_existing(&initial, &existing).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {
                "labels": {LABEL_HOSTNAME: "n1", LABEL_ARCH: go_arch()},
                "annotations": {CONTROLLER_MANAGED_ATTACH_ANNOTATION: "true"},
            }})
        );
        // Attach/detach turned off: the annotation goes.
        let mut off = identity();
        off.enable_controller_attach_detach = false;
        let patch = reconcile_existing(&initial_node(&off), &initial).unwrap();
        assert_eq!(
            patch,
            json!({"metadata": {"annotations": {CONTROLLER_MANAGED_ATTACH_ANNOTATION: null}}})
        );
    }
}
