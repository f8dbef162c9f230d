//! Choosing victims on one node (upstream's `SelectVictimsOnNode`): take every lower-priority
//! pod off a copy of the node, check the preemptor fits, then put pods back, most important
//! first (PDB-protected ones before the others), keeping each one that still lets the
//! preemptor fit. What could not be put back are the victims.

use std::cmp::Ordering;
use std::sync::Arc;

use apimachinery::LabelSelector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::jiff::Timestamp;

use crate::framework::{pod_priority, CycleState, Framework, NodeInfo, PodInfo, Status};

/// When the pod started (now if it has not), for "older pods are more important".
pub fn pod_start_time(pod: &Pod) -> Timestamp {
    pod.status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or_else(Timestamp::now, |t| t.0)
}

/// Upstream's `util.MoreImportantPod`: higher priority, then longer running.
pub fn more_important(a: &Pod, b: &Pod) -> bool {
    let (pa, pb) = (pod_priority(a), pod_priority(b));
    if pa != pb {
        return pa > pb;
    }
    pod_start_time(a) < pod_start_time(b)
}

fn importance_order(a: &Arc<PodInfo>, b: &Arc<PodInfo>) -> Ordering {
    if more_important(&a.pod, &b.pod) {
        Ordering::Less
    } else if more_important(&b.pod, &a.pod) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Whether the preemptor may evict `victim` (upstream's default `isPreemptionAllowed`).
pub fn preemption_allowed(victim: &Pod, preemptor: &Pod) -> bool {
    pod_priority(victim) < pod_priority(preemptor)
}

/// Splits pods (order kept) into those whose eviction would exceed a PDB's allowed disruptions
/// and the rest, spending each matching budget as it goes (upstream's
/// `filterPodsWithPDBViolation`).
pub fn split_by_pdb_violation(
    pods: &[Arc<PodInfo>],
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, Vec<Arc<PodInfo>>) {
    let selectors: Vec<Option<LabelSelector>> = pdbs
        .iter()
        .map(|pdb| {
            let value = serde_json::to_value(pdb.spec.as_ref()?.selector.as_ref()).ok()?;
            LabelSelector::from_label_selector(&value).ok()
        })
        .collect();
    let mut allowed: Vec<i64> = pdbs
        .iter()
        .map(|p| i64::from(p.status.as_ref().map_or(0, |s| s.disruptions_allowed)))
        .collect();
    let mut violating = Vec::new();
    let mut non_violating = Vec::new();
    for info in pods {
        let pod = &info.pod;
        let mut violated = false;
        // A pod without labels matches no budget.
        if let Some(labels) = pod.metadata.labels.as_ref().filter(|l| !l.is_empty()) {
            for (i, pdb) in pdbs.iter().enumerate() {
                if pdb.metadata.namespace != pod.metadata.namespace {
                    continue;
                }
                // An invalid, absent or empty selector matches nothing.
                let Some(selector) = &selectors[i] else {
                    continue;
                };
                if selector.is_empty() || !selector.matches(labels) {
                    continue;
                }
                // Already counted by the disruption controller (an eviction in flight).
                let disrupted = pdb
                    .status
                    .as_ref()
                    .and_then(|s| s.disrupted_pods.as_ref())
                    .is_some_and(|d| d.contains_key(info.name()));
                if disrupted {
                    continue;
                }
                allowed[i] -= 1;
                if allowed[i] < 0 {
                    violated = true;
                }
            }
        }
        if violated {
            violating.push(info.clone());
        } else {
            non_violating.push(info.clone());
        }
    }
    (violating, non_violating)
}

/// The victims chosen on `node` (a copy the caller owns, as is `state`), most important
/// first, with how many of them violate a PDB; or why the node cannot help.
pub fn select_victims_on_node(
    framework: &Framework,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &mut NodeInfo,
    pdbs: &[Arc<PodDisruptionBudget>],
) -> (Vec<Arc<PodInfo>>, i64, Status) {
    let remove = |state: &mut CycleState, node: &mut NodeInfo, victim: &Arc<PodInfo>| {
        node.remove_pod(victim.uid());
        let status = framework.run_pre_filter_extension_remove_pod(state, pod, victim, node);
        if status.is_success() {
            Ok(())
        } else {
            Err(Status::error(status.message()))
        }
    };
    let add = |state: &mut CycleState, node: &mut NodeInfo, victim: &Arc<PodInfo>| {
        node.add_pod(victim.clone());
        let status = framework.run_pre_filter_extension_add_pod(state, pod, victim, node);
        if status.is_success() {
            Ok(())
        } else {
            Err(Status::error(status.message()))
        }
    };

    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| preemption_allowed(&p.pod, &pod.pod))
        .cloned()
        .collect();
    for victim in &potential {
        if let Err(status) = remove(state, node, victim) {
            return (Vec::new(), 0, status);
        }
    }
    if potential.is_empty() {
        return (
            Vec::new(),
            0,
            Status::unresolvable("No preemption victims found for incoming pod"),
        );
    }
    // Pod affinity to a victim is not considered (upstream decided against it for speed).
    let status = framework.run_filter_plugins_with_nominated_pods(state, pod, node);
    if !status.is_success() {
        return (Vec::new(), 0, status);
    }

    potential.sort_by(importance_order);
    let (violating, non_violating) = split_by_pdb_violation(&potential, pdbs);
    let mut victims: Vec<Arc<PodInfo>> = Vec::new();
    let mut reprieve = |state: &mut CycleState, node: &mut NodeInfo, p: &Arc<PodInfo>| {
        add(state, node, p)?;
        let fits = framework
            .run_filter_plugins_with_nominated_pods(state, pod, node)
            .is_success();
        if !fits {
            remove(state, node, p)?;
            tracing::trace!(pod = %p.key(), node = node.name(), "potential preemption victim");
            victims.push(p.clone());
        }
        Ok::<bool, Status>(fits)
    };
    let mut num_violating = 0;
    for p in &violating {
        match reprieve(state, node, p) {
            Ok(true) => {}
            Ok(false) => num_violating += 1,
            Err(status) => return (Vec::new(), 0, status),
        }
    }
    for p in &non_violating {
        if let Err(status) = reprieve(state, node, p) {
            return (Vec::new(), 0, status);
        }
    }
    if !violating.is_empty() && !non_violating.is_empty() {
        victims.sort_by(importance_order);
    }
    (victims, num_violating, Status::success())
}

/// A pod being deleted because scheduler preemption chose it.
pub fn terminating_by_preemption(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_none() {
        return false;
    }
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == super::DISRUPTION_TARGET)
        .is_some_and(|c| {
            c.status == "True" && c.reason.as_deref() == Some(super::PREEMPTION_BY_SCHEDULER)
        })
}
