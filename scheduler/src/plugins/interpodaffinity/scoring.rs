//! PreScore, Score and NormalizeScore: preferred pod (anti-)affinity of the incoming pod, and
//! by symmetry the preferred terms (and, weighted by `hardPodAffinityWeight`, the required
//! affinity terms) of the pods already running. PreScore sums weights per topology pair once;
//! a node's score is the sum over the pairs its labels fall in, rescaled to [0, 100].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use super::{labels_of, map_nodes, InterPodAffinity};
use crate::framework::{
    AffinityTerm, CycleState, NodeInfo, NodeScore, PodInfo, PreScorePlugin, ScorePlugin, Snapshot,
    Status, WeightedAffinityTerm, MAX_NODE_SCORE,
};

pub(super) const PRE_SCORE_STATE_KEY: &str = "PreScoreInterPodAffinity";

/// Topology key -> topology value -> summed weight (upstream's `scoreMap`); shared by copies.
#[derive(Debug, Clone)]
pub(super) struct PreScoreState(pub(super) Arc<HashMap<String, HashMap<String, i64>>>);

/// One weighted hit: (topology key, the existing pod's node's value, weight).
type Hit<'a> = (&'a str, &'a str, i64);

fn process_term<'a>(
    hits: &mut Vec<Hit<'a>>,
    term: &'a AffinityTerm,
    weight: i64,
    pod: &Pod,
    ns_labels: Option<&BTreeMap<String, String>>,
    node_labels: &'a BTreeMap<String, String>,
) {
    if term.matches(pod, ns_labels) {
        if let Some(value) = node_labels.get(&term.topology_key) {
            hits.push((&term.topology_key, value, weight));
        }
    }
}

fn process_terms<'a>(
    hits: &mut Vec<Hit<'a>>,
    terms: &'a [WeightedAffinityTerm],
    pod: &Pod,
    ns_labels: Option<&BTreeMap<String, String>>,
    node_labels: &'a BTreeMap<String, String>,
    multiplier: i64,
) {
    for t in terms {
        process_term(
            hits,
            &t.term,
            i64::from(t.weight) * multiplier,
            pod,
            ns_labels,
            node_labels,
        );
    }
}

/// The incoming pod's preferred terms with namespace selectors folded in, its namespace's
/// labels, and the plugin's args: what scoring one existing pod needs.
struct Incoming<'a> {
    pod: &'a Pod,
    preferred_affinity: Vec<WeightedAffinityTerm>,
    preferred_anti_affinity: Vec<WeightedAffinityTerm>,
    namespace_labels: Option<Arc<BTreeMap<String, String>>>,
    hard_pod_affinity_weight: i64,
}

impl Incoming<'_> {
    /// Upstream's `processExistingPod`.
    fn process_existing_pod<'a>(
        &'a self,
        hits: &mut Vec<Hit<'a>>,
        existing: &'a PodInfo,
        node_labels: &'a BTreeMap<String, String>,
    ) {
        if node_labels.is_empty() {
            return;
        }
        let ns_labels = self.namespace_labels.as_deref();
        // The incoming pod's preferences towards the existing pod.
        process_terms(
            hits,
            &self.preferred_affinity,
            &existing.pod,
            None,
            node_labels,
            1,
        );
        process_terms(
            hits,
            &self.preferred_anti_affinity,
            &existing.pod,
            None,
            node_labels,
            -1,
        );
        // The existing pod's rules, applied to the incoming pod by symmetry.
        if self.hard_pod_affinity_weight > 0 {
            for t in &existing.required_affinity_terms {
                process_term(
                    hits,
                    t,
                    self.hard_pod_affinity_weight,
                    self.pod,
                    ns_labels,
                    node_labels,
                );
            }
        }
        process_terms(
            hits,
            &existing.preferred_affinity_terms,
            self.pod,
            ns_labels,
            node_labels,
            1,
        );
        process_terms(
            hits,
            &existing.preferred_anti_affinity_terms,
            self.pod,
            ns_labels,
            node_labels,
            -1,
        );
    }
}

impl InterPodAffinity {
    fn merge_weighted_namespaces(
        &self,
        terms: &[WeightedAffinityTerm],
    ) -> Vec<WeightedAffinityTerm> {
        terms
            .iter()
            .map(|t| WeightedAffinityTerm {
                term: self.merge_namespace(&t.term),
                weight: t.weight,
            })
            .collect()
    }
}

impl PreScorePlugin for InterPodAffinity {
    /// Skip when no pod's preferences (or hard affinity) involve the incoming pod.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _filtered: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        if let Some(err) = &pod.parse_error {
            return Status::error(format!("failed to parse pod: {err}"));
        }
        let has_constraints = !pod.preferred_affinity_terms.is_empty()
            || !pod.preferred_anti_affinity_terms.is_empty();
        if self.args.ignore_preferred_terms_of_existing_pods && !has_constraints {
            return Status::skip();
        }
        // Without preferences of its own, only nodes hosting pods with affinity matter.
        let nodes = if has_constraints {
            snapshot.list()
        } else {
            &snapshot.have_pods_with_affinity
        };
        let incoming = Incoming {
            pod: &pod.pod,
            preferred_affinity: self.merge_weighted_namespaces(&pod.preferred_affinity_terms),
            preferred_anti_affinity: self
                .merge_weighted_namespaces(&pod.preferred_anti_affinity_terms),
            namespace_labels: self.namespace_labels(pod.namespace()),
            hard_pod_affinity_weight: i64::from(self.args.hard_pod_affinity_weight),
        };
        let per_node = map_nodes(nodes, |info| {
            let mut hits: Vec<Hit<'_>> = Vec::new();
            let Some(node) = info.node() else {
                return hits;
            };
            let labels = labels_of(&node.metadata);
            let pods = if has_constraints {
                &info.pods
            } else {
                &info.pods_with_affinity
            };
            for existing in pods {
                incoming.process_existing_pod(&mut hits, existing, labels);
            }
            hits
        });
        let mut scores: HashMap<String, HashMap<String, i64>> = HashMap::new();
        for (key, value, weight) in per_node.into_iter().flatten() {
            let values = match scores.get_mut(key) {
                Some(v) => v,
                None => scores.entry(key.to_string()).or_default(),
            };
            match values.get_mut(value) {
                Some(total) => *total += weight,
                None => {
                    values.insert(value.to_string(), weight);
                }
            }
        }
        if scores.is_empty() {
            return Status::skip();
        }
        state.write(PRE_SCORE_STATE_KEY, PreScoreState(Arc::new(scores)));
        Status::success()
    }
}

fn pre_score_state_not_found() -> Status {
    Status::error(format!(
        "failed to read {PRE_SCORE_STATE_KEY:?} from cycleState: not found"
    ))
}

impl ScorePlugin for InterPodAffinity {
    /// The summed weights of the pairs the node's labels fall in: positive for affinity,
    /// negative for anti-affinity.
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return (0, pre_score_state_not_found());
        };
        let Some(n) = node.node() else {
            return (0, Status::error("node not found"));
        };
        let labels = labels_of(&n.metadata);
        let score = s
            .iter()
            .filter_map(|(key, values)| labels.get(key).and_then(|v| values.get(v)))
            .sum();
        (score, Status::success())
    }

    /// `100 * (score - min) / (max - min)`, truncated; all 0 when every node scores the same.
    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return pre_score_state_not_found();
        };
        if s.is_empty() {
            return Status::success();
        }
        let min = scores.iter().map(|s| s.score).min().unwrap_or(0);
        let max = scores.iter().map(|s| s.score).max().unwrap_or(0);
        let diff = max - min;
        for score in scores.iter_mut() {
            score.score = if diff > 0 {
                (MAX_NODE_SCORE as f64 * ((score.score - min) as f64 / diff as f64)) as i64
            } else {
                0
            };
        }
        Status::success()
    }

    fn has_normalize(&self) -> bool {
        true
    }
}
