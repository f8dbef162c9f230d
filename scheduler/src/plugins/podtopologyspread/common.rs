//! What PreFilter, PreScore and the queueing hints share: a pod's spread constraints parsed
//! (its own, or the plugin's defaults with a selector deduced from the Services and
//! controllers that own the pod), which nodes count towards a constraint (nodeAffinityPolicy /
//! nodeTaintsPolicy), and counting matching pods on a node.

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::LabelSelector;
use client::informer::store::NAMESPACE_INDEX;
use client::informer::Store;
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Node, Pod, ReplicationController, Service, TopologySpreadConstraint,
};

use rayon::prelude::*;

use crate::framework::{NodeInfo, PodInfo};
pub use crate::plugins::helper::RequiredNodeAffinity;
use crate::plugins::helper::{
    do_not_schedule_taints_filter, find_matching_untolerated_taint, node_taints, pod_tolerations,
};

/// From this many nodes on, per-node work runs on several threads.
const PARALLEL_THRESHOLD: usize = 64;

/// `f` of every node, in order; on rayon's threads for large clusters (upstream's
/// `parallelizer.Until`).
pub fn map_nodes<'a, T, F>(nodes: &'a [Arc<NodeInfo>], f: F) -> Vec<T>
where
    T: Send,
    F: Fn(&'a Arc<NodeInfo>) -> T + Send + Sync,
{
    if nodes.len() >= PARALLEL_THRESHOLD {
        nodes.par_iter().with_min_len(32).map(f).collect()
    } else {
        nodes.iter().map(f).collect()
    }
}

pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";
pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
pub const DO_NOT_SCHEDULE: &str = "DoNotSchedule";
pub const SCHEDULE_ANYWAY: &str = "ScheduleAnyway";
pub const NODE_INCLUSION_POLICY_HONOR: &str = "Honor";

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// An object's labels, empty when it has none.
pub fn labels_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> &BTreeMap<String, String> {
    meta.labels.as_ref().unwrap_or(&NO_LABELS)
}

/// A `TopologySpreadConstraint` with its selector parsed and its optional fields defaulted
/// (upstream's `topologySpreadConstraint`).
#[derive(Debug, Clone)]
pub struct Constraint {
    pub max_skew: i32,
    pub topology_key: String,
    pub selector: LabelSelector,
    /// 1 when unset.
    pub min_domains: i32,
    /// Only nodes matching the pod's required node affinity count (default: Honor).
    pub honor_node_affinity: bool,
    /// Only nodes whose NoSchedule/NoExecute taints the pod tolerates count (default: Ignore).
    pub honor_node_taints: bool,
}

impl Constraint {
    /// Whether `node` counts towards this constraint's domains (upstream's
    /// `matchNodeInclusionPolicies`).
    pub fn includes_node(&self, pod: &Pod, node: &Node, affinity: &RequiredNodeAffinity) -> bool {
        // A required node affinity that does not parse matches no node, as upstream (which
        // ignores the error for backwards compatibility).
        if self.honor_node_affinity && !affinity.matches(node).unwrap_or(false) {
            return false;
        }
        if self.honor_node_taints
            && find_matching_untolerated_taint(
                node_taints(node),
                pod_tolerations(pod),
                do_not_schedule_taints_filter,
            )
            .is_some()
        {
            return false;
        }
        true
    }
}

/// The constraints of `action` ("DoNotSchedule" / "ScheduleAnyway") among `constraints`, with
/// `matchLabelKeys` folded into the selectors (upstream's `filterTopologySpreadConstraints`).
pub fn filter_constraints(
    constraints: &[TopologySpreadConstraint],
    pod_labels: &BTreeMap<String, String>,
    action: &str,
) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for c in constraints
        .iter()
        .filter(|c| c.when_unsatisfiable == action)
    {
        let mut selector = match c.label_selector.as_ref() {
            None => LabelSelector::nothing(),
            Some(s) => {
                let value = serde_json::to_value(s).map_err(|e| e.to_string())?;
                LabelSelector::from_label_selector(&value).map_err(|e| e.to_string())?
            }
        };
        let keys = c.match_label_keys.as_deref().unwrap_or_default();
        let pinned: Vec<(&str, &str)> = keys
            .iter()
            .filter_map(|k| pod_labels.get(k).map(|v| (k.as_str(), v.as_str())))
            .collect();
        if !pinned.is_empty() {
            // As upstream's mergeLabelSetWithSelector: the pod's values for the keys, plus the
            // selector's requirements (none for a null selector).
            let requirements = selector.requirements().to_vec();
            selector = LabelSelector::from_set(pinned).with_requirements(requirements);
        }
        out.push(Constraint {
            max_skew: c.max_skew,
            topology_key: c.topology_key.clone(),
            selector,
            min_domains: c.min_domains.unwrap_or(1),
            honor_node_affinity: c
                .node_affinity_policy
                .as_deref()
                .is_none_or(|p| p == NODE_INCLUSION_POLICY_HONOR),
            honor_node_taints: c
                .node_taints_policy
                .as_deref()
                .is_some_and(|p| p == NODE_INCLUSION_POLICY_HONOR),
        });
    }
    Ok(out)
}

/// Whether the node has a label for every constraint's topology key.
pub fn node_labels_match_constraints(
    labels: &BTreeMap<String, String>,
    constraints: &[Constraint],
) -> bool {
    constraints
        .iter()
        .all(|c| labels.contains_key(&c.topology_key))
}

/// Whether any constraint selects a pod with these labels.
pub fn pod_labels_match_constraints(
    constraints: &[Constraint],
    labels: &BTreeMap<String, String>,
) -> bool {
    constraints.iter().any(|c| c.selector.matches(labels))
}

/// The pods in `ns` that `selector` selects, terminating pods left out (upstream #87621).
/// A null selector selects nothing; `{}` selects every pod (upstream counted none for `{}`
/// until kubernetes#141340 fixed it; we follow the fix).
pub fn count_pods_match_selector(pods: &[Arc<PodInfo>], selector: &LabelSelector, ns: &str) -> i64 {
    if selector.is_nothing() {
        return 0;
    }
    pods.iter()
        .filter(|p| {
            p.pod.metadata.deletion_timestamp.is_none()
                && p.namespace() == ns
                && selector.matches(labels_of(&p.pod.metadata))
        })
        .count() as i64
}

/// The listers the system default constraints need to deduce a pod's selector.
#[derive(Clone, Default)]
pub struct Listers {
    pub services: Store<Service>,
    pub replication_controllers: Store<ReplicationController>,
    pub replica_sets: Store<ReplicaSet>,
    pub stateful_sets: Store<StatefulSet>,
}

/// The selector of the Services selecting `pod` merged with that of the ReplicationController,
/// ReplicaSet or StatefulSet controlling it (upstream's `helper.DefaultSelector`); empty when
/// there is none.
pub fn default_selector(pod: &Pod, listers: &Listers) -> LabelSelector {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("");
    let pod_labels = labels_of(&pod.metadata);
    let mut set: BTreeMap<String, String> = BTreeMap::new();
    for service in listers.services.by_index(NAMESPACE_INDEX, ns) {
        let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
            continue;
        };
        // A Service without a selector selects nothing, not everything.
        if selector.is_empty() {
            continue;
        }
        if selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
            set.extend(selector.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    let from_set = |set: &BTreeMap<String, String>| {
        LabelSelector::from_set(set.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    };
    let mut selector = from_set(&set);
    let Some(owner) = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    else {
        return selector;
    };
    let add_requirements =
        |selector: LabelSelector,
         spec: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector| {
            let parsed = serde_json::to_value(spec)
                .ok()
                .and_then(|v| LabelSelector::from_label_selector(&v).ok());
            match parsed {
                Some(other) => selector.with_requirements(other.requirements().to_vec()),
                None => selector,
            }
        };
    match (owner.api_version.as_str(), owner.kind.as_str()) {
        ("v1", "ReplicationController") => {
            if let Some(rc) = listers
                .replication_controllers
                .get_namespaced(Some(ns), &owner.name)
            {
                if let Some(rc_selector) = rc.spec.as_ref().and_then(|s| s.selector.as_ref()) {
                    set.extend(rc_selector.iter().map(|(k, v)| (k.clone(), v.clone())));
                    selector = from_set(&set);
                }
            }
        }
        ("apps/v1", "ReplicaSet") => {
            if let Some(rs) = listers.replica_sets.get_namespaced(Some(ns), &owner.name) {
                if let Some(spec) = rs.spec.as_ref() {
                    selector = add_requirements(selector, &spec.selector);
                }
            }
        }
        ("apps/v1", "StatefulSet") => {
            if let Some(ss) = listers.stateful_sets.get_namespaced(Some(ns), &owner.name) {
                if let Some(spec) = ss.spec.as_ref() {
                    selector = add_requirements(selector, &spec.selector);
                }
            }
        }
        _ => {}
    }
    selector
}
