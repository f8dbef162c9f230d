//! PreScore, Score and NormalizeScore: the soft (ScheduleAnyway) constraints, and the system
//! default constraints. A node scores the matching pods of its domains, each weighted by
//! ln(number of domains + 2) plus maxSkew - 1; normalising turns "fewest pods" into 100.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::common::{
    count_pods_match_selector, filter_constraints, labels_of, map_nodes,
    node_labels_match_constraints, Constraint, RequiredNodeAffinity, LABEL_HOSTNAME,
    SCHEDULE_ANYWAY,
};
use super::PodTopologySpread;
use crate::framework::{
    CycleState, NodeInfo, NodeScore, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};

pub(super) const PRE_SCORE_STATE_KEY: &str = "PreScorePodTopologySpread";

/// What Score reads (upstream's `preScoreState`); shared by copies of the cycle state.
#[derive(Debug, Clone)]
pub(super) struct PreScoreState(pub(super) Arc<PreScoreData>);

#[derive(Debug)]
pub(super) struct PreScoreData {
    pub(super) constraints: Vec<Constraint>,
    /// Filtered nodes lacking some topology key: they score 0.
    pub(super) ignored_nodes: HashSet<String>,
    /// Per constraint: topology value -> matching pods. Hostname constraints are counted on
    /// the node in Score instead.
    pub(super) topology_value_to_pod_counts: Vec<HashMap<String, i64>>,
    /// Per constraint: ln(domains + 2), so small topologies are not watered down by big ones.
    pub(super) topology_normalizing_weight: Vec<f64>,
}

/// ln(size + 2): in [1.09, 8.52] for 1 to 5,000 domains.
fn topology_normalizing_weight(size: usize) -> f64 {
    ((size + 2) as f64).ln()
}

/// Adding maxSkew - 1 waters down differences between domains, so a larger maxSkew tolerates
/// more skew.
fn score_for_count(count: i64, max_skew: i32, weight: f64) -> f64 {
    count as f64 * weight + f64::from(max_skew - 1)
}

impl PodTopologySpread {
    fn soft_constraints(&self, pod: &PodInfo) -> Result<Vec<Constraint>, String> {
        let spec_constraints = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if spec_constraints.is_empty() {
            self.build_default_constraints(&pod.pod, SCHEDULE_ANYWAY)
                .map_err(|e| format!("setting default soft topology spread constraints: {e}"))
        } else {
            filter_constraints(
                spec_constraints,
                labels_of(&pod.pod.metadata),
                SCHEDULE_ANYWAY,
            )
            .map_err(|e| format!("obtaining pod's soft topology spread constraints: {e}"))
        }
    }
}

impl PreScorePlugin for PodTopologySpread {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        filtered: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        let all_nodes = snapshot.list();
        if all_nodes.is_empty() {
            return Status::skip();
        }
        let constraints = match self.soft_constraints(pod) {
            Ok(c) => c,
            Err(e) => return Status::error(format!("calculating preScoreState: {e}")),
        };
        if constraints.is_empty() {
            return Status::skip();
        }
        // Only non-system-default spreading needs every topology label, so nodes without a
        // zone label still get hostname spreading from the system defaults.
        let has_spec_constraints = pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_ref())
            .is_some_and(|c| !c.is_empty());
        let require_all_topologies = has_spec_constraints || !self.system_defaulted;

        let mut ignored_nodes = HashSet::new();
        let mut counts: Vec<HashMap<String, i64>> = vec![HashMap::new(); constraints.len()];
        for info in filtered {
            let Some(node) = info.node() else {
                continue;
            };
            let labels = labels_of(&node.metadata);
            if require_all_topologies && !node_labels_match_constraints(labels, &constraints) {
                ignored_nodes.insert(info.name().to_string());
                continue;
            }
            for (i, c) in constraints.iter().enumerate() {
                if c.topology_key == LABEL_HOSTNAME {
                    continue;
                }
                let value = labels
                    .get(&c.topology_key)
                    .map(String::as_str)
                    .unwrap_or("");
                if !counts[i].contains_key(value) {
                    counts[i].insert(value.to_string(), 0);
                }
            }
        }
        let weights = constraints
            .iter()
            .zip(&counts)
            .map(|(c, domains)| {
                let size = if c.topology_key == LABEL_HOSTNAME {
                    filtered.len().saturating_sub(ignored_nodes.len())
                } else {
                    domains.len()
                };
                topology_normalizing_weight(size)
            })
            .collect();

        let affinity = RequiredNodeAffinity::from_pod(&pod.pod);
        let ns = pod.namespace();
        let per_node = map_nodes(all_nodes, |info| -> Vec<(usize, &str, i64)> {
            let Some(node) = info.node() else {
                return Vec::new();
            };
            let labels = labels_of(&node.metadata);
            if require_all_topologies && !node_labels_match_constraints(labels, &constraints) {
                return Vec::new();
            }
            let mut out = Vec::new();
            for (i, c) in constraints.iter().enumerate() {
                if !c.includes_node(&pod.pod, node, &affinity) {
                    continue;
                }
                let value = labels
                    .get(&c.topology_key)
                    .map(String::as_str)
                    .unwrap_or("");
                // Only domains of candidate nodes matter (hostname ones have none here).
                if !counts[i].contains_key(value) {
                    continue;
                }
                let n = count_pods_match_selector(&info.pods, &c.selector, ns);
                if n > 0 {
                    out.push((i, value, n));
                }
            }
            out
        });
        let mut totals = counts.clone();
        for (i, value, n) in per_node.into_iter().flatten() {
            if let Some(total) = totals[i].get_mut(value) {
                *total += n;
            }
        }

        state.write(
            PRE_SCORE_STATE_KEY,
            PreScoreState(Arc::new(PreScoreData {
                constraints,
                ignored_nodes,
                topology_value_to_pod_counts: totals,
                topology_normalizing_weight: weights,
            })),
        );
        Status::success()
    }
}

fn pre_score_state_not_found() -> Status {
    Status::error(format!(
        "error reading {PRE_SCORE_STATE_KEY:?} from cycleState: not found"
    ))
}

impl ScorePlugin for PodTopologySpread {
    /// The weighted number of matching pods in the node's domains (fewer is better; inverted
    /// by normalize).
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return (0, pre_score_state_not_found());
        };
        let Some(n) = node.node() else {
            return (0, Status::error("node not found"));
        };
        if s.ignored_nodes.contains(node.name()) {
            return (0, Status::success());
        }
        let labels = labels_of(&n.metadata);
        let mut score = 0.0;
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                continue;
            };
            let count = if c.topology_key == LABEL_HOSTNAME {
                count_pods_match_selector(&node.pods, &c.selector, pod.namespace())
            } else {
                s.topology_value_to_pod_counts[i]
                    .get(value.as_str())
                    .copied()
                    .unwrap_or(0)
            };
            score += score_for_count(count, c.max_skew, s.topology_normalizing_weight[i]);
        }
        (score.round() as i64, Status::success())
    }

    /// `100 * (max + min - score) / max`; ignored nodes get 0, and every node 100 when no
    /// node has a matching pod.
    fn normalize(&self, state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        let Some(PreScoreState(s)) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return pre_score_state_not_found();
        };
        let mut min = i64::MAX;
        let mut max = 0;
        for score in scores.iter() {
            if s.ignored_nodes.contains(&score.name) {
                continue;
            }
            min = min.min(score.score);
            max = max.max(score.score);
        }
        for score in scores.iter_mut() {
            if s.ignored_nodes.contains(&score.name) {
                score.score = 0;
            } else if max == 0 {
                score.score = MAX_NODE_SCORE;
            } else {
                score.score = MAX_NODE_SCORE * (max + min - score.score) / max;
            }
        }
        Status::success()
    }

    fn has_normalize(&self) -> bool {
        true
    }
}
