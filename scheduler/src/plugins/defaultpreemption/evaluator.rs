//! The preemption decision (upstream's `preemption.Evaluator`): which nodes could take the pod
//! if lower-priority pods left (dry runs on copies of the nodes and of the cycle state), and
//! which of those candidates to preempt on.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use super::victims::{pod_start_time, select_victims_on_node};
use crate::framework::{
    pod_priority, Code, CycleState, Framework, NodeInfo, NodeToStatus, PodInfo, Status,
};

/// A node where the preemptor fits once `victims` are gone.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub node: String,
    /// Most important first.
    pub victims: Vec<Arc<PodInfo>>,
    pub num_pdb_violations: i64,
}

/// How many candidates the dry run looks for among `nodes` potential nodes (upstream's
/// `calculateNumCandidates`): `percentage` of them, at least `absolute`, at most all.
pub fn num_candidates(nodes: usize, percentage: i32, absolute: i32) -> usize {
    let nodes_i = nodes as i64;
    let mut n = nodes_i * i64::from(percentage) / 100;
    if n < i64::from(absolute) {
        n = i64::from(absolute);
    }
    n.min(nodes_i).max(0) as usize
}

/// The dry run's outcome: candidates (PDB-respecting ones first), why the other nodes could
/// not help, and internal errors met on the way.
pub struct DryRun {
    pub candidates: Vec<Candidate>,
    pub statuses: Vec<(String, Status)>,
    pub errors: Vec<String>,
}

/// Upstream's `DryRunPreemption`: tries the potential nodes from `offset` round-robin, each on
/// copies of its node info and of `state`, until `wanted` candidates are found (and at least one
/// violates no PDB).
pub fn dry_run(
    framework: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    potential: &[Arc<NodeInfo>],
    pdbs: &[Arc<PodDisruptionBudget>],
    offset: usize,
    wanted: usize,
) -> DryRun {
    let mut non_violating = Vec::new();
    let mut violating = Vec::new();
    let mut statuses = Vec::new();
    let mut errors = Vec::new();
    let n = potential.len();
    for i in 0..n {
        let node = &potential[(offset + i) % n];
        let mut node_copy = node.as_ref().clone();
        let mut state_copy = state.clone();
        let (victims, num_pdb_violations, mut status) =
            select_victims_on_node(framework, &mut state_copy, pod, &mut node_copy, pdbs);
        if status.is_success() && !victims.is_empty() {
            let c = Candidate {
                node: node.name().to_string(),
                victims,
                num_pdb_violations,
            };
            // Each list holds at most `wanted` (upstream's fixed-size candidate lists).
            if num_pdb_violations == 0 {
                if non_violating.len() < wanted {
                    non_violating.push(c);
                }
            } else if violating.len() < wanted {
                violating.push(c);
            }
            if !non_violating.is_empty() && non_violating.len() + violating.len() >= wanted {
                break;
            }
            continue;
        }
        if status.is_success() {
            status = Status::error(format!(
                "expected at least one victim pod on node {:?}",
                node.name()
            ));
        }
        if status.code() == Code::Error {
            errors.push(status.message());
        }
        statuses.push((node.name().to_string(), status));
    }
    non_violating.extend(violating);
    DryRun {
        candidates: non_violating,
        statuses,
        errors,
    }
}

/// Upstream's `FitError.Error()` for the preemption diagnosis: "0/N nodes are available:"
/// then each reason with how many nodes gave it, sorted as strings; nodes without an explicit
/// status count under `absent`.
pub fn fit_error_message(
    num_all_nodes: usize,
    explicit: &[(String, Status)],
    absent: &Status,
) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, status) in explicit {
        for reason in status.reasons() {
            *counts.entry(reason.clone()).or_default() += 1;
        }
    }
    if explicit.len() < num_all_nodes {
        for reason in absent.reasons() {
            *counts.entry(reason.clone()).or_default() += num_all_nodes - explicit.len();
        }
    }
    let mut reasons: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    reasons.sort();
    let mut msg = format!("0/{num_all_nodes} nodes are available:");
    if !reasons.is_empty() {
        msg.push_str(&format!(" {}.", reasons.join(", ")));
    }
    msg
}

/// The nodes whose filter verdict was Unschedulable: removing pods may help there, unlike
/// UnschedulableAndUnresolvable.
pub fn potential_nodes(nodes: &[Arc<NodeInfo>], statuses: &NodeToStatus) -> Vec<Arc<NodeInfo>> {
    nodes
        .iter()
        .filter(|n| statuses.get(n.name()).code() == Code::Unschedulable)
        .cloned()
        .collect()
}

/// The start time of the longest-running of the highest-priority victims (upstream's
/// `GetEarliestPodStartTime`), in nanoseconds.
fn earliest_start_of_highest_priority(victims: &[Arc<PodInfo>]) -> Option<i128> {
    let first = victims.first()?;
    let mut max_priority = pod_priority(&first.pod);
    let mut earliest = pod_start_time(&first.pod);
    for v in victims {
        let p = pod_priority(&v.pod);
        let start = pod_start_time(&v.pod);
        if p == max_priority {
            if start < earliest {
                earliest = start;
            }
        } else if p > max_priority {
            max_priority = p;
            earliest = start;
        }
    }
    Some(earliest.as_nanosecond())
}

/// Upstream's `pickOneNodeForPreemption`: fewest PDB violations, then the lowest
/// highest-priority victim, then the smallest sum of priorities, then the fewest victims,
/// then the latest start of the highest-priority victims; the first remaining wins.
pub fn pick_one(candidates: &[Candidate]) -> Option<&Candidate> {
    type Score = fn(&Candidate) -> i128;
    let scores: [Score; 5] = [
        |c| -i128::from(c.num_pdb_violations),
        |c| -i128::from(c.victims.first().map_or(0, |v| pod_priority(&v.pod))),
        |c| {
            // Shifted to non-negative, so many negative-priority victims do not look cheap.
            -c.victims
                .iter()
                .map(|v| i128::from(pod_priority(&v.pod)) + i128::from(i32::MAX) + 1)
                .sum::<i128>()
        },
        |c| -(c.victims.len() as i128),
        |c| earliest_start_of_highest_priority(&c.victims).unwrap_or(i128::MIN),
    ];
    let mut remaining: Vec<&Candidate> = candidates.iter().collect();
    for score in scores {
        if remaining.len() <= 1 {
            break;
        }
        // Each score once per candidate: a victim without a start time counts as starting
        // now, so scoring twice would not compare equal with itself.
        let scored: Vec<(i128, &Candidate)> = remaining.iter().map(|c| (score(c), *c)).collect();
        let best = scored.iter().map(|(s, _)| *s).max()?;
        remaining = scored
            .into_iter()
            .filter(|(s, _)| *s == best)
            .map(|(_, c)| c)
            .collect();
    }
    remaining.first().copied()
}

/// The pods nominated to `node` with a lower priority than `pod`: they may no longer fit there.
pub fn lower_priority_nominated_pods(
    framework: &Framework,
    pod: &Pod,
    node: &str,
) -> Vec<Arc<Pod>> {
    let priority = pod_priority(pod);
    framework
        .handle()
        .nominator
        .nominated_pods_for_node(node)
        .into_iter()
        .filter(|p| pod_priority(&p.pod) < priority)
        .map(|p| p.pod.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn victim(name: &str, priority: i32, start: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "ns", "uid": name},
                "spec": {"containers": [], "priority": priority},
                "status": {"startTime": start},
            }))
            .unwrap(),
        )))
    }

    #[test]
    fn victims_without_a_start_time_still_yield_a_pick() {
        let bare = |name: &str| {
            Arc::new(PodInfo::new(Arc::new(
                serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "ns", "uid": name},
                    "spec": {"containers": []},
                }))
                .unwrap(),
            )))
        };
        let candidates = vec![
            candidate("a", 0, vec![bare("x")]),
            candidate("b", 0, vec![bare("y")]),
        ];
        assert!(pick_one(&candidates).is_some());
    }

    fn candidate(node: &str, pdb: i64, victims: Vec<Arc<PodInfo>>) -> Candidate {
        Candidate {
            node: node.into(),
            victims,
            num_pdb_violations: pdb,
        }
    }

    const T1: &str = "2024-01-01T00:00:00Z";
    const T2: &str = "2024-01-02T00:00:00Z";

    #[test]
    fn candidate_selection_follows_upstream_criteria_in_order() {
        let cases: Vec<(&str, Vec<Candidate>, &str)> = vec![
            (
                "fewest PDB violations",
                vec![
                    candidate("a", 1, vec![victim("a1", 1, T1)]),
                    candidate("b", 0, vec![victim("b1", 5, T1)]),
                ],
                "b",
            ),
            (
                "lowest highest-priority victim",
                vec![
                    candidate("a", 0, vec![victim("a1", 10, T1)]),
                    candidate("b", 0, vec![victim("b1", 5, T1), victim("b2", 5, T1)]),
                ],
                "b",
            ),
            (
                "smallest priority sum",
                vec![
                    candidate("a", 0, vec![victim("a1", 5, T1), victim("a2", 4, T1)]),
                    candidate("b", 0, vec![victim("b1", 5, T1), victim("b2", 1, T1)]),
                ],
                "b",
            ),
            (
                "negative priorities do not favour more victims",
                vec![
                    candidate("a", 0, vec![victim("a1", -5, T1), victim("a2", -5, T1)]),
                    candidate("b", 0, vec![victim("b1", -5, T1)]),
                ],
                "b",
            ),
            (
                "fewest victims",
                vec![
                    candidate("a", 0, vec![victim("a1", 5, T1), victim("a2", 0, T1)]),
                    candidate(
                        "b",
                        0,
                        vec![
                            victim("b1", 5, T1),
                            victim("b2", -1, T1),
                            victim("b3", 1, T1),
                        ],
                    ),
                ],
                "a",
            ),
            (
                "latest start of the highest-priority victims",
                vec![
                    candidate("a", 0, vec![victim("a1", 5, T1)]),
                    candidate("b", 0, vec![victim("b1", 5, T2)]),
                ],
                "b",
            ),
            (
                "first on a full tie",
                vec![
                    candidate("a", 0, vec![victim("a1", 5, T1)]),
                    candidate("b", 0, vec![victim("b1", 5, T1)]),
                ],
                "a",
            ),
        ];
        for (name, candidates, want) in cases {
            assert_eq!(
                pick_one(&candidates).map(|c| c.node.as_str()),
                Some(want),
                "{name}"
            );
        }
        assert!(pick_one(&[]).is_none());
    }

    #[test]
    fn candidate_counts() {
        assert_eq!(num_candidates(10, 10, 100), 10);
        assert_eq!(num_candidates(5000, 10, 100), 500);
        assert_eq!(num_candidates(500, 10, 100), 100);
        assert_eq!(num_candidates(500, 0, 3), 3);
    }

    #[test]
    fn fit_error_histogram() {
        let explicit = vec![
            (
                "a".to_string(),
                Status::unresolvable("No preemption victims found for incoming pod"),
            ),
            ("b".to_string(), Status::unschedulable("Insufficient cpu")),
        ];
        let absent = Status::unresolvable("Preemption is not helpful for scheduling");
        assert_eq!(
            fit_error_message(5, &explicit, &absent),
            "0/5 nodes are available: 1 Insufficient cpu, 1 No preemption victims found for incoming pod, 3 Preemption is not helpful for scheduling."
        );
        assert_eq!(
            fit_error_message(2, &[], &absent),
            "0/2 nodes are available: 2 Preemption is not helpful for scheduling."
        );
    }
}
