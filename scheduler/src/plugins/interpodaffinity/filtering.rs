//! PreFilter, its add/remove extensions and Filter: required pod affinity and anti-affinity,
//! both the incoming pod's and (by symmetry) that of the pods already running.
//!
//! PreFilter builds three maps of topology pair -> count once per cycle; Filter then looks up
//! the node's value for each topology key involved.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod};

use super::{
    labels_of, map_nodes, InterPodAffinity, ERR_REASON_AFFINITY_RULES_NOT_MATCH,
    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH, ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
};
use crate::framework::{
    AffinityTerm, CycleState, FilterPlugin, NodeInfo, PodInfo, PreFilterExtensions,
    PreFilterPlugin, PreFilterResult, Snapshot, Status,
};

pub(super) const PRE_FILTER_STATE_KEY: &str = "PreFilterInterPodAffinity";

/// Topology key -> topology value -> count (upstream's `topologyToMatchedTermCount`, keyed by
/// `topologyPair`). Nested so lookups borrow the node's label strings instead of building a
/// pair. Entries that drop to zero are removed, so `is_empty` means "no pair counted".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TopologyCounts(HashMap<String, HashMap<String, i64>>);

impl TopologyCounts {
    pub(super) fn get(&self, key: &str, value: &str) -> i64 {
        self.0
            .get(key)
            .and_then(|values| values.get(value))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn add(&mut self, key: &str, value: &str, delta: i64) {
        let values = match self.0.get_mut(key) {
            Some(v) => v,
            None => self.0.entry(key.to_string()).or_default(),
        };
        let count = match values.get_mut(value) {
            Some(c) => {
                *c += delta;
                *c
            }
            None => {
                values.insert(value.to_string(), delta);
                delta
            }
        };
        if count == 0 {
            values.remove(value);
            if values.is_empty() {
                self.0.remove(key);
            }
        }
    }

    /// Counts `delta` at the node's value for `key`, when the node has the label.
    fn update(&mut self, node_labels: &BTreeMap<String, String>, key: &str, delta: i64) {
        if let Some(value) = node_labels.get(key) {
            self.add(key, value, delta);
        }
    }

    /// For each of `terms` if `pod` matches all of them.
    fn update_with_affinity_terms(
        &mut self,
        terms: &[AffinityTerm],
        pod: &Pod,
        node_labels: &BTreeMap<String, String>,
        delta: i64,
    ) {
        if pod_matches_all_affinity_terms(terms, pod) {
            for t in terms {
                self.update(node_labels, &t.topology_key, delta);
            }
        }
    }

    /// For each of `terms` that `pod` (in a namespace with `ns_labels`) matches.
    fn update_with_anti_affinity_terms(
        &mut self,
        terms: &[AffinityTerm],
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
        node_labels: &BTreeMap<String, String>,
        delta: i64,
    ) {
        for t in terms {
            if t.matches(pod, ns_labels) {
                self.update(node_labels, &t.topology_key, delta);
            }
        }
    }
}

/// Whether `pod` matches every term (and there is at least one). The incoming pod's terms
/// have their namespace selectors folded into namespaces, so no namespace labels are needed.
pub(super) fn pod_matches_all_affinity_terms(terms: &[AffinityTerm], pod: &Pod) -> bool {
    !terms.is_empty() && terms.iter().all(|t| t.matches(pod, None))
}

/// What Filter reads (upstream's `preFilterState`).
#[derive(Debug, Clone)]
pub(super) struct PreFilterState {
    /// Pairs where an existing pod's required anti-affinity term matches the incoming pod.
    pub(super) existing_anti_affinity_counts: TopologyCounts,
    /// Pairs with existing pods matching all of the incoming pod's required affinity terms.
    pub(super) affinity_counts: TopologyCounts,
    /// Pairs with existing pods matching one of the incoming pod's required anti-affinity terms.
    pub(super) anti_affinity_counts: TopologyCounts,
    pub(super) pod: Arc<Pod>,
    /// The incoming pod's required terms, namespace selectors folded into namespaces.
    pub(super) affinity_terms: Arc<Vec<AffinityTerm>>,
    pub(super) anti_affinity_terms: Arc<Vec<AffinityTerm>>,
    /// The labels of the incoming pod's namespace.
    pub(super) namespace_labels: Option<Arc<BTreeMap<String, String>>>,
}

impl PreFilterState {
    /// Counts `pod` (added with +1, removed with -1) on `node` (upstream's `updateWithPod`).
    fn update_with_pod(&mut self, pod: &PodInfo, node: &Node, delta: i64) {
        let labels = labels_of(&node.metadata);
        let ns_labels = self.namespace_labels.as_deref();
        self.existing_anti_affinity_counts
            .update_with_anti_affinity_terms(
                &pod.required_anti_affinity_terms,
                &self.pod,
                ns_labels,
                labels,
                delta,
            );
        self.affinity_counts.update_with_affinity_terms(
            &self.affinity_terms,
            &pod.pod,
            labels,
            delta,
        );
        self.anti_affinity_counts.update_with_anti_affinity_terms(
            &self.anti_affinity_terms,
            &pod.pod,
            None,
            labels,
            delta,
        );
    }
}

/// Every node's (topology key, value) pairs, each counted once.
fn merge_pairs(per_node: Vec<Vec<(&str, &str)>>) -> TopologyCounts {
    let mut counts = TopologyCounts::default();
    for (key, value) in per_node.into_iter().flatten() {
        counts.add(key, value, 1);
    }
    counts
}

impl InterPodAffinity {
    /// Pairs where an existing pod's required anti-affinity term selects the incoming pod;
    /// only nodes with such pods are visited (upstream's `getExistingAntiAffinityCounts`).
    fn existing_anti_affinity_counts(
        pod: &Pod,
        ns_labels: Option<&BTreeMap<String, String>>,
        nodes: &[Arc<NodeInfo>],
    ) -> TopologyCounts {
        let per_node = map_nodes(nodes, |info| {
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            let Some(node) = info.node() else {
                return pairs;
            };
            let labels = labels_of(&node.metadata);
            for existing in &info.pods_with_required_anti_affinity {
                for t in &existing.required_anti_affinity_terms {
                    if t.matches(pod, ns_labels) {
                        if let Some(value) = labels.get(&t.topology_key) {
                            pairs.push((&t.topology_key, value));
                        }
                    }
                }
            }
            pairs
        });
        merge_pairs(per_node)
    }

    /// Pairs with existing pods that the incoming pod's required affinity terms (all of them)
    /// or anti-affinity terms (each) select (upstream's `getIncomingAffinityAntiAffinityCounts`).
    fn incoming_affinity_anti_affinity_counts(
        affinity_terms: &[AffinityTerm],
        anti_affinity_terms: &[AffinityTerm],
        nodes: &[Arc<NodeInfo>],
    ) -> (TopologyCounts, TopologyCounts) {
        if affinity_terms.is_empty() && anti_affinity_terms.is_empty() {
            return (TopologyCounts::default(), TopologyCounts::default());
        }
        let per_node = map_nodes(nodes, |info| {
            let mut affinity: Vec<(&str, &str)> = Vec::new();
            let mut anti: Vec<(&str, &str)> = Vec::new();
            let Some(node) = info.node() else {
                return (affinity, anti);
            };
            let labels = labels_of(&node.metadata);
            for existing in &info.pods {
                if pod_matches_all_affinity_terms(affinity_terms, &existing.pod) {
                    for t in affinity_terms {
                        if let Some(value) = labels.get(&t.topology_key) {
                            affinity.push((&t.topology_key, value));
                        }
                    }
                }
                for t in anti_affinity_terms {
                    if t.matches(&existing.pod, None) {
                        if let Some(value) = labels.get(&t.topology_key) {
                            anti.push((&t.topology_key, value));
                        }
                    }
                }
            }
            (affinity, anti)
        });
        let (affinity, anti): (Vec<_>, Vec<_>) = per_node.into_iter().unzip();
        (merge_pairs(affinity), merge_pairs(anti))
    }
}

fn state_not_found() -> Status {
    Status::error(format!(
        "error reading {PRE_FILTER_STATE_KEY:?} from cycleState: not found"
    ))
}

impl PreFilterPlugin for InterPodAffinity {
    /// UnschedulableAndUnresolvable for a pod whose terms do not parse; Skip when neither the
    /// pod nor any existing pod's anti-affinity constrains it.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        if let Some(err) = &pod.parse_error {
            return (None, Status::unresolvable(format!("parsing pod: {err}")));
        }
        let affinity_terms = self.merge_namespaces(&pod.required_affinity_terms);
        let anti_affinity_terms = self.merge_namespaces(&pod.required_anti_affinity_terms);
        let namespace_labels = self.namespace_labels(pod.namespace());

        let existing_anti_affinity_counts = Self::existing_anti_affinity_counts(
            &pod.pod,
            namespace_labels.as_deref(),
            &snapshot.have_pods_with_required_anti_affinity,
        );
        let (affinity_counts, anti_affinity_counts) = Self::incoming_affinity_anti_affinity_counts(
            &affinity_terms,
            &anti_affinity_terms,
            snapshot.list(),
        );
        if existing_anti_affinity_counts.is_empty()
            && affinity_terms.is_empty()
            && anti_affinity_terms.is_empty()
        {
            return (None, Status::skip());
        }
        state.write(
            PRE_FILTER_STATE_KEY,
            PreFilterState {
                existing_anti_affinity_counts,
                affinity_counts,
                anti_affinity_counts,
                pod: pod.pod.clone(),
                affinity_terms: Arc::new(affinity_terms),
                anti_affinity_terms: Arc::new(anti_affinity_terms),
                namespace_labels,
            },
        );
        (None, Status::success())
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for InterPodAffinity {
    fn add_pod(
        &self,
        state: &mut CycleState,
        _pod: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        if let Some(n) = node.node() {
            s.update_with_pod(pod_to_add, n, 1);
        }
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        _pod: &PodInfo,
        pod_to_remove: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        if let Some(n) = node.node() {
            s.update_with_pod(pod_to_remove, n, -1);
        }
        Status::success()
    }
}

/// No existing pod whose anti-affinity selects the incoming pod runs in one of the node's
/// domains.
fn satisfy_existing_pods_anti_affinity(
    s: &PreFilterState,
    labels: &BTreeMap<String, String>,
) -> bool {
    s.existing_anti_affinity_counts
        .0
        .iter()
        .all(|(key, values)| {
            labels
                .get(key)
                .and_then(|value| values.get(value))
                .is_none_or(|count| *count <= 0)
        })
}

/// No pod the incoming pod's anti-affinity selects runs in the node's domain of any term.
fn satisfy_pod_anti_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    if s.anti_affinity_counts.is_empty() {
        return true;
    }
    s.anti_affinity_terms.iter().all(|t| {
        labels
            .get(&t.topology_key)
            .is_none_or(|value| s.anti_affinity_counts.get(&t.topology_key, value) <= 0)
    })
}

/// The node has every term's topology key, and pods matching all terms run in its domains;
/// or, for the first pod of a group with affinity to itself, no pod anywhere matches and the
/// pod matches its own terms.
fn satisfy_pod_affinity(s: &PreFilterState, labels: &BTreeMap<String, String>) -> bool {
    let mut pods_exist = true;
    for t in s.affinity_terms.iter() {
        let Some(value) = labels.get(&t.topology_key) else {
            return false;
        };
        if s.affinity_counts.get(&t.topology_key, value) <= 0 {
            pods_exist = false;
        }
    }
    pods_exist
        || (s.affinity_counts.is_empty()
            && pod_matches_all_affinity_terms(&s.affinity_terms, &s.pod))
}

impl FilterPlugin for InterPodAffinity {
    /// Affinity not met: UnschedulableAndUnresolvable (preemption cannot add pods). The pod's
    /// or an existing pod's anti-affinity violated: Unschedulable (preemption may help).
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        let labels = labels_of(&n.metadata);
        if !satisfy_pod_affinity(s, labels) {
            return Status::unresolvable(ERR_REASON_AFFINITY_RULES_NOT_MATCH);
        }
        if !satisfy_pod_anti_affinity(s, labels) {
            return Status::unschedulable(ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        if !satisfy_existing_pods_anti_affinity(s, labels) {
            return Status::unschedulable(ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH);
        }
        Status::success()
    }
}
