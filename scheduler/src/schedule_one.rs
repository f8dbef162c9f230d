//! One scheduling decision (upstream's `schedulePod`): PreFilter, Filter over the nodes (the
//! nominated node first), then PreScore/Score and a random pick among the best; and the
//! `FitError` whose text users read in `FailedScheduling` events.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use rand::Rng;

use crate::framework::{
    Code, CycleState, Framework, NodeInfo, NodeScore, NodeToStatus, PodInfo, Snapshot, Status,
};

/// Upstream's `ErrNoNodesAvailable`.
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why no node fits (upstream's `framework.Diagnosis`).
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    pub node_to_status: NodeToStatus,
    /// The plugins that rejected the pod somewhere: only their events requeue it.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    pub pending_plugins: BTreeSet<&'static str>,
    /// Set when PreFilter rejected the pod for every node.
    pub pre_filter_msg: String,
    /// Set by PostFilter (preemption) when it could not help.
    pub post_filter_msg: String,
}

/// No node fits the pod (upstream's `FitError`).
#[derive(Debug, Clone)]
pub struct FitError {
    pub num_all_nodes: usize,
    pub diagnosis: Diagnosis,
}

impl fmt::Display for FitError {
    /// "0/3 nodes are available: 1 node(s) had untolerated taint {a: b}, 2 Insufficient cpu.
    /// preemption: ..." — reasons counted over nodes and sorted as strings, as upstream's
    /// `sortReasonsHistogram`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0/{} nodes are available:", self.num_all_nodes)?;
        let d = &self.diagnosis;
        if !d.pre_filter_msg.is_empty() {
            write!(f, " {}.", d.pre_filter_msg)?;
        } else {
            let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
            for status in d.node_to_status.statuses.values() {
                for reason in status.reasons() {
                    *histogram.entry(reason.as_str()).or_default() += 1;
                }
            }
            let absent = self
                .num_all_nodes
                .saturating_sub(d.node_to_status.statuses.len());
            if absent > 0 {
                if let Some(status) = d.node_to_status.absent.as_ref() {
                    for reason in status.reasons() {
                        *histogram.entry(reason.as_str()).or_default() += absent;
                    }
                }
            }
            let mut parts: Vec<String> = histogram
                .into_iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            parts.sort();
            if !parts.is_empty() {
                write!(f, " {}.", parts.join(", "))?;
            }
        }
        if !d.post_filter_msg.is_empty() {
            write!(f, " {}", d.post_filter_msg)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum ScheduleError {
    /// The cluster has no nodes.
    NoNodes,
    /// Nodes exist but none fits.
    Fit(Box<FitError>),
    /// A plugin failed: retry with backoff.
    Internal(Status),
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScheduleError::NoNodes => f.write_str(NO_NODES_AVAILABLE),
            ScheduleError::Fit(e) => e.fmt(f),
            ScheduleError::Internal(s) => f.write_str(&s.message()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ScheduleResult {
    pub suggested_host: String,
    /// Nodes looked at (feasible + rejected).
    pub evaluated_nodes: usize,
    pub feasible_nodes: usize,
}

fn record_rejection(diagnosis: &mut Diagnosis, status: &Status) {
    if status.plugin().is_empty() {
        return;
    }
    if status.code() == Code::Pending {
        diagnosis.pending_plugins.insert(status.plugin());
    } else {
        diagnosis.unschedulable_plugins.insert(status.plugin());
    }
}

/// Finds the node for `pod` in `snapshot`.
pub fn schedule_pod(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Arc<PodInfo>,
    snapshot: &Snapshot,
) -> Result<ScheduleResult, ScheduleError> {
    if snapshot.is_empty() {
        return Err(ScheduleError::NoNodes);
    }
    let (feasible, diagnosis) = find_nodes_that_fit(fw, state, pod, snapshot)?;
    if feasible.is_empty() {
        return Err(ScheduleError::Fit(Box::new(FitError {
            num_all_nodes: snapshot.len(),
            diagnosis,
        })));
    }
    let evaluated = feasible.len() + diagnosis.node_to_status.statuses.len();
    if feasible.len() == 1 {
        return Ok(ScheduleResult {
            suggested_host: feasible[0].name().to_string(),
            evaluated_nodes: evaluated,
            feasible_nodes: 1,
        });
    }
    let status = fw.run_pre_score(state, pod, &feasible, snapshot);
    if !status.is_success() {
        return Err(ScheduleError::Internal(status));
    }
    let scores = fw
        .run_score(state, pod, &feasible)
        .map_err(ScheduleError::Internal)?;
    let host = select_host(&scores, &mut rand::rng())
        .ok_or_else(|| ScheduleError::Internal(Status::error("empty priorityList")))?;
    Ok(ScheduleResult {
        suggested_host: host,
        evaluated_nodes: evaluated,
        feasible_nodes: feasible.len(),
    })
}

/// PreFilter then Filter; the nodes that pass and why the others did not.
pub fn find_nodes_that_fit(
    fw: &Framework,
    state: &mut CycleState,
    pod: &Arc<PodInfo>,
    snapshot: &Snapshot,
) -> Result<(Vec<Arc<NodeInfo>>, Diagnosis), ScheduleError> {
    let mut diagnosis = Diagnosis::default();
    let (pre, status) = fw.run_pre_filter(state, pod, snapshot);
    if !status.is_success() {
        if !status.is_rejected() {
            return Err(ScheduleError::Internal(status));
        }
        // Every node gets PreFilter's verdict.
        diagnosis.node_to_status.absent = Some(status.clone());
        diagnosis.pre_filter_msg = status.message();
        record_rejection(&mut diagnosis, &status);
        return Ok((Vec::new(), diagnosis));
    }

    // A pod nominated by an earlier preemption tries its node first.
    let nominated = pod
        .pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(node) = nominated.and_then(|n| snapshot.get(n)) {
        let allowed = pre
            .node_names
            .as_ref()
            .is_none_or(|names| names.contains(node.name()));
        if allowed {
            let status = fw.run_filter_plugins_with_nominated_pods(state, pod, node);
            if status.is_success() {
                return Ok((vec![node.clone()], diagnosis));
            }
            if status.code() == Code::Error {
                return Err(ScheduleError::Internal(status));
            }
        }
    }

    let candidates: Vec<Arc<NodeInfo>>;
    let nodes: &[Arc<NodeInfo>] = match pre.node_names.as_ref() {
        None => snapshot.list(),
        Some(names) => {
            candidates = names
                .iter()
                .filter_map(|n| snapshot.get(n).cloned())
                .collect();
            diagnosis.node_to_status.absent = Some(Status::unresolvable(
                "node(s) didn't satisfy plugin(s) in PreFilter",
            ));
            &candidates
        }
    };
    let feasible = fw
        .find_nodes_that_pass_filters(state, pod, nodes, &mut diagnosis.node_to_status)
        .map_err(ScheduleError::Internal)?;
    let statuses: Vec<Status> = diagnosis
        .node_to_status
        .statuses
        .values()
        .cloned()
        .collect();
    for status in &statuses {
        record_rejection(&mut diagnosis, status);
    }
    Ok((feasible, diagnosis))
}

/// The node with the highest score; ties broken uniformly at random (upstream's reservoir
/// sampling in `selectHost`).
pub fn select_host(scores: &[NodeScore], rng: &mut impl Rng) -> Option<String> {
    let mut best: Option<&NodeScore> = None;
    let mut ties = 0u32;
    for s in scores {
        match best {
            Some(b) if s.score < b.score => {}
            Some(b) if s.score == b.score => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some(s);
                }
            }
            _ => {
                best = Some(s);
                ties = 1;
            }
        }
    }
    best.map(|b| b.name.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn fit_errors_read_like_upstream() {
        let mut statuses = HashMap::new();
        statuses.insert(
            "a".to_string(),
            Status::unresolvable(
                "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }",
            ),
        );
        statuses.insert("b".to_string(), Status::unschedulable("Insufficient cpu"));
        statuses.insert(
            "c".to_string(),
            Status::with_reasons(
                Code::Unschedulable,
                vec!["Insufficient cpu".into(), "Insufficient memory".into()],
            ),
        );
        let err = FitError {
            num_all_nodes: 3,
            diagnosis: Diagnosis {
                node_to_status: NodeToStatus {
                    statuses,
                    absent: None,
                },
                post_filter_msg: "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.".into(),
                ..Diagnosis::default()
            },
        };
        assert_eq!(
            err.to_string(),
            "0/3 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn a_pre_filter_rejection_is_the_whole_message() {
        let err = FitError {
            num_all_nodes: 2,
            diagnosis: Diagnosis {
                pre_filter_msg: "pod has unbound immediate PersistentVolumeClaims".into(),
                ..Diagnosis::default()
            },
        };
        assert_eq!(
            err.to_string(),
            "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        );
    }

    #[test]
    fn ties_are_broken_at_random_among_the_best() {
        let scores = vec![
            NodeScore {
                name: "a".into(),
                score: 10,
            },
            NodeScore {
                name: "b".into(),
                score: 30,
            },
            NodeScore {
                name: "c".into(),
                score: 30,
            },
            NodeScore {
                name: "d".into(),
                score: 5,
            },
        ];
        let mut rng = rand::rng();
        let mut seen = BTreeSet::new();
        for _ in 0..200 {
            seen.insert(select_host(&scores, &mut rng).unwrap_or_default());
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), ["b", "c"]);
        assert_eq!(select_host(&[], &mut rng), None);
    }
}
