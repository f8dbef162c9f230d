//! PreFilter, its add/remove extensions and Filter: the hard (DoNotSchedule) constraints.
//!
//! PreFilter counts, per constraint, the matching pods in every topology domain once per cycle;
//! Filter then costs one label lookup and one map lookup per constraint: a node passes when
//! `matching pods in its domain + (1 if the pod matches itself) - global minimum <= maxSkew`.

use std::collections::HashMap;
use std::sync::Arc;

use super::common::{
    count_pods_match_selector, labels_of, map_nodes, node_labels_match_constraints, Constraint,
    RequiredNodeAffinity,
};
use super::{PodTopologySpread, ERR_REASON_CONSTRAINTS_NOT_MATCH, ERR_REASON_NODE_LABEL_NOT_MATCH};
use crate::framework::{
    CycleState, FilterPlugin, NodeInfo, PodInfo, PreFilterExtensions, PreFilterPlugin,
    PreFilterResult, Snapshot, Status,
};

pub(super) const PRE_FILTER_STATE_KEY: &str = "PreFilterPodTopologySpread";

/// The two domains with the fewest matching pods seen so far (upstream's `criticalPaths`):
/// `[0]` always holds the minimum; `[1]` is at least as large but not always the second
/// minimum after incremental updates, which is enough for preemption (one node at a time, on
/// its own copy of the state).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct CriticalPaths([(String, i32); 2]);

impl CriticalPaths {
    fn new() -> CriticalPaths {
        CriticalPaths([(String::new(), i32::MAX), (String::new(), i32::MAX)])
    }

    pub(super) fn min(&self) -> i32 {
        self.0[0].1
    }

    fn update(&mut self, value: &str, num: i32) {
        let p = &mut self.0;
        let existing = if p[0].0 == value {
            Some(0)
        } else if p[1].0 == value {
            Some(1)
        } else {
            None
        };
        match existing {
            Some(i) => {
                p[i].1 = num;
                if p[0].1 > p[1].1 {
                    p.swap(0, 1);
                }
            }
            None if num < p[0].1 => {
                p[1] = std::mem::replace(&mut p[0], (value.to_string(), num));
            }
            None if num < p[1].1 => p[1] = (value.to_string(), num),
            None => {}
        }
    }
}

/// What Filter reads (upstream's `preFilterState`), indexed by constraint.
#[derive(Debug, Clone)]
pub(super) struct PreFilterState {
    /// Shared between copies: they never change within a cycle.
    pub(super) constraints: Arc<Vec<Constraint>>,
    /// Whether the incoming pod matches each constraint's selector (it counts itself).
    pub(super) self_match: Arc<Vec<bool>>,
    pub(super) critical_paths: Vec<CriticalPaths>,
    /// Topology value -> matching pods, per constraint; a key exists for every eligible domain.
    pub(super) tp_value_to_match_num: Vec<HashMap<String, i32>>,
}

impl PreFilterState {
    /// The global minimum for constraint `i`: 0 while fewer than `minDomains` domains exist.
    fn min_match_num(&self, i: usize, min_domains: i32) -> i32 {
        let domains = self.tp_value_to_match_num[i].len();
        if (domains as i64) < i64::from(min_domains) {
            0
        } else {
            self.critical_paths[i].min()
        }
    }

    /// Counts `pod` (added with +1, removed with -1) on `node` as upstream's `updateWithPod`.
    fn update_with_pod(&mut self, pod: &PodInfo, preemptor: &PodInfo, node: &NodeInfo, delta: i32) {
        let Some(node) = node.node() else {
            return;
        };
        if pod.namespace() != preemptor.namespace() {
            return;
        }
        let node_labels = labels_of(&node.metadata);
        if !node_labels_match_constraints(node_labels, &self.constraints) {
            return;
        }
        let affinity = RequiredNodeAffinity::from_pod(&preemptor.pod);
        let pod_labels = labels_of(&pod.pod.metadata);
        for (i, c) in self.constraints.iter().enumerate() {
            if !c.selector.matches(pod_labels) || !c.includes_node(&preemptor.pod, node, &affinity)
            {
                continue;
            }
            let value = node_labels
                .get(&c.topology_key)
                .map(String::as_str)
                .unwrap_or("");
            let counts = &mut self.tp_value_to_match_num[i];
            let num = match counts.get_mut(value) {
                Some(n) => {
                    *n += delta;
                    *n
                }
                None => {
                    counts.insert(value.to_string(), delta);
                    delta
                }
            };
            self.critical_paths[i].update(value, num);
        }
    }
}

impl PodTopologySpread {
    /// Upstream's `calPreFilterState`; `None` when the pod has no hard constraints.
    fn cal_pre_filter_state(
        &self,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
    ) -> Result<Option<PreFilterState>, String> {
        let constraints = self
            .hard_constraints(&pod.pod)
            .map_err(|e| format!("get constraints from pod: {e}"))?;
        if constraints.is_empty() {
            return Ok(None);
        }
        let affinity = RequiredNodeAffinity::from_pod(&pod.pod);
        let ns = pod.namespace();
        // Per node: (constraint, topology value, matching pods) for the constraints it counts in.
        let per_node = map_nodes(nodes, |info| -> Vec<(usize, &str, i32)> {
            let Some(node) = info.node() else {
                return Vec::new();
            };
            let labels = labels_of(&node.metadata);
            if !node_labels_match_constraints(labels, &constraints) {
                return Vec::new();
            }
            constraints
                .iter()
                .enumerate()
                .filter(|(_, c)| c.includes_node(&pod.pod, node, &affinity))
                .map(|(i, c)| {
                    let value = labels
                        .get(&c.topology_key)
                        .map(String::as_str)
                        .unwrap_or("");
                    let count = count_pods_match_selector(&info.pods, &c.selector, ns);
                    (i, value, count as i32)
                })
                .collect()
        });
        let mut tp_value_to_match_num: Vec<HashMap<String, i32>> = constraints
            .iter()
            .map(|c| {
                let capacity = if c.topology_key == super::common::LABEL_HOSTNAME {
                    nodes.len()
                } else {
                    0
                };
                HashMap::with_capacity(capacity)
            })
            .collect();
        for (i, value, count) in per_node.into_iter().flatten() {
            let counts = &mut tp_value_to_match_num[i];
            match counts.get_mut(value) {
                Some(n) => *n += count,
                None => {
                    counts.insert(value.to_string(), count);
                }
            }
        }
        let critical_paths = tp_value_to_match_num
            .iter()
            .map(|counts| {
                let mut paths = CriticalPaths::new();
                for (value, num) in counts {
                    paths.update(value, *num);
                }
                paths
            })
            .collect();
        let pod_labels = labels_of(&pod.pod.metadata);
        let self_match = constraints
            .iter()
            .map(|c| c.selector.matches(pod_labels))
            .collect();
        Ok(Some(PreFilterState {
            constraints: Arc::new(constraints),
            self_match: Arc::new(self_match),
            critical_paths,
            tp_value_to_match_num,
        }))
    }
}

fn state_not_found() -> Status {
    Status::error(format!(
        "reading {PRE_FILTER_STATE_KEY:?} from cycleState: not found"
    ))
}

impl PreFilterPlugin for PodTopologySpread {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        match self.cal_pre_filter_state(pod, snapshot.list()) {
            Err(e) => (None, Status::error(e)),
            Ok(None) => (None, Status::skip()),
            Ok(Some(s)) => {
                state.write(PRE_FILTER_STATE_KEY, s);
                (None, Status::success())
            }
        }
    }

    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}

impl PreFilterExtensions for PodTopologySpread {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        s.update_with_pod(pod_to_add, pod, node, 1);
        Status::success()
    }

    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_remove: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        let Some(s) = state.read_mut::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        s.update_with_pod(pod_to_remove, pod, node, -1);
        Status::success()
    }
}

impl FilterPlugin for PodTopologySpread {
    /// Unschedulable when placing the pod here would exceed a constraint's maxSkew;
    /// UnschedulableAndUnresolvable when the node lacks a constraint's topology label.
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return state_not_found();
        };
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        let labels = labels_of(&n.metadata);
        for (i, c) in s.constraints.iter().enumerate() {
            let Some(value) = labels.get(&c.topology_key) else {
                tracing::trace!(
                    node = node.name(),
                    topology_key = %c.topology_key,
                    "node doesn't have required topology label for spread constraint"
                );
                return Status::unresolvable(ERR_REASON_NODE_LABEL_NOT_MATCH);
            };
            let min_match = i64::from(s.min_match_num(i, c.min_domains));
            let self_match = i64::from(s.self_match[i]);
            let match_num = i64::from(
                s.tp_value_to_match_num[i]
                    .get(value.as_str())
                    .copied()
                    .unwrap_or(0),
            );
            let skew = match_num + self_match - min_match;
            if skew > i64::from(c.max_skew) {
                tracing::trace!(
                    node = node.name(),
                    topology_key = %c.topology_key,
                    match_num,
                    self_match,
                    min_match,
                    max_skew = c.max_skew,
                    "node failed spread constraint"
                );
                return Status::unschedulable(ERR_REASON_CONSTRAINTS_NOT_MATCH);
            }
        }
        Status::success()
    }
}
