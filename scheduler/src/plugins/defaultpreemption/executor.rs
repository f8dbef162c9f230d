//! Carrying out a preemption (upstream's `prepareCandidate` / `prepareCandidateAsync` and
//! `PreemptPod`): each victim gets the `DisruptionTarget` condition (reason
//! `PreemptionByScheduler`) and is deleted (or rejected, if Permit plugins hold it);
//! lower-priority pods nominated to the same node lose their nomination. Asynchronously
//! (upstream's default since 1.33) the work runs in a task and the preemptor is held back by
//! PreEnqueue until it is done.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::join_all;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use client::informer::store::Store;

use super::api::{ApiCallError, PreemptionApi};
use super::{DISRUPTION_TARGET, NAME, PREEMPTION_BY_SCHEDULER};
use crate::framework::waiting::{WaitingPods, REJECTED_PREEMPTED};

/// The condition a victim gets, and whether it differs from what the pod has (upstream's
/// `UpdatePodCondition`: the transition time is kept when the status does not change).
pub fn disruption_condition(victim: &Pod, preemptor: &Pod) -> (PodCondition, bool) {
    let scheduler = preemptor
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.as_deref())
        .unwrap_or("");
    let existing = victim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_TARGET);
    let mut condition = PodCondition {
        type_: DISRUPTION_TARGET.into(),
        status: "True".into(),
        reason: Some(PREEMPTION_BY_SCHEDULER.into()),
        message: Some(format!(
            "{scheduler}: preempting to accommodate a higher priority pod"
        )),
        last_transition_time: Some(Time(Timestamp::now())),
        ..PodCondition::default()
    };
    let Some(existing) = existing else {
        return (condition, true);
    };
    if existing.status == condition.status {
        condition.last_transition_time = existing.last_transition_time.clone();
    }
    let changed = existing.status != condition.status
        || existing.reason != condition.reason
        || existing.message != condition.message
        || existing.last_transition_time != condition.last_transition_time
        || existing.last_probe_time != condition.last_probe_time;
    (condition, changed)
}

/// Marks and deletes one victim; a victim already gone counts as done. A victim that Permit
/// plugins hold is not bound yet, so it is rejected instead ("preempted"), as upstream's
/// `PreemptPod`: its binding cycle then gives its room back.
pub async fn preempt_pod(
    api: &dyn PreemptionApi,
    waiting: &WaitingPods,
    preemptor: &Pod,
    victim: &Pod,
    node: &str,
) -> Result<(), String> {
    let uid = victim.metadata.uid.as_deref().unwrap_or("");
    if waiting.reject(uid, NAME, REJECTED_PREEMPTED) {
        tracing::info!(preemptor = %key(preemptor), victim = %key(victim), node, "preemptor pod rejected a waiting pod");
        api.record_preempted(victim, preemptor, node);
        return Ok(());
    }
    let (condition, changed) = disruption_condition(victim, preemptor);
    if changed {
        match api.set_pod_condition(victim, &condition).await {
            Ok(()) => {}
            Err(ApiCallError::NotFound) => {
                tracing::debug!(victim = %key(victim), node, "victim pod is already deleted");
                return Ok(());
            }
            Err(e) => {
                tracing::error!(preemptor = %key(preemptor), victim = %key(victim), err = %e, "could not add DisruptionTarget condition due to preemption");
                return Err(e.to_string());
            }
        }
    }
    match api.delete_pod(victim).await {
        Ok(()) => {}
        Err(ApiCallError::NotFound) => {
            tracing::debug!(victim = %key(victim), node, "victim pod is already deleted");
            return Ok(());
        }
        Err(e) => {
            tracing::error!(preemptor = %key(preemptor), victim = %key(victim), err = %e, "tried to preempt pod");
            return Err(e.to_string());
        }
    }
    tracing::info!(preemptor = %key(preemptor), victim = %key(victim), node, "preemptor pod preempted victim pod");
    api.record_preempted(victim, preemptor, node);
    Ok(())
}

pub fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Victims whose deletion has not started (deleting again would only cost an API call).
pub fn victims_to_delete(victims: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    victims
        .iter()
        .filter(|v| v.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect()
}

async fn clear_nominations(api: &dyn PreemptionApi, pods: &[Arc<Pod>]) -> Result<(), String> {
    let mut errs = Vec::new();
    for p in pods {
        let nominated = p
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        if !nominated {
            continue;
        }
        if let Err(e) = api.clear_nominated_node_name(p).await {
            errs.push(e.to_string());
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join(", "))
    }
}

/// Upstream's synchronous `prepareCandidate`: victims in parallel, the first error fails the
/// preemption; a failure to clear nominations is only logged.
pub async fn prepare_candidate(
    api: &dyn PreemptionApi,
    waiting: &WaitingPods,
    preemptor: &Pod,
    node: &str,
    victims: &[Arc<Pod>],
    lower_nominated: &[Arc<Pod>],
) -> Result<(), String> {
    let targets = victims_to_delete(victims);
    let results = join_all(
        targets
            .iter()
            .map(|v| preempt_pod(api, waiting, preemptor, v, node)),
    )
    .await;
    if let Some(err) = results.into_iter().find_map(Result::err) {
        return Err(err);
    }
    if let Err(e) = clear_nominations(api, lower_nominated).await {
        tracing::error!(err = %e, "cannot clear 'NominatedNodeName' field");
    }
    Ok(())
}

/// The preemptors whose asynchronous preemption is still running, and the last victim each
/// waits for (upstream's `preempting` and `lastVictimsPendingPreemption`).
#[derive(Default)]
pub struct Running {
    inner: Mutex<RunningInner>,
}

#[derive(Default)]
struct RunningInner {
    preempting: HashSet<String>,
    last_victim: HashMap<String, String>,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, RunningInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether the pod with `uid` must still wait: its preemption runs, unless the only thing
    /// left is a last victim whose deletion has already started (or finished).
    pub fn is_running(&self, uid: &str, pods: Option<&Store<Pod>>) -> bool {
        let inner = self.lock();
        if !inner.preempting.contains(uid) {
            return false;
        }
        let Some(victim) = inner.last_victim.get(uid) else {
            return true;
        };
        let Some(pods) = pods else {
            return true;
        };
        match pods.get(victim) {
            None => false,
            Some(p) => p.metadata.deletion_timestamp.is_none(),
        }
    }

    pub(crate) fn start(&self, uid: &str) {
        self.lock().preempting.insert(uid.to_string());
    }

    pub(crate) fn waiting_for(&self, uid: &str, victim: &Pod) {
        self.lock().last_victim.insert(uid.to_string(), key(victim));
    }

    pub(crate) fn finish(&self, uid: &str) {
        let mut inner = self.lock();
        inner.preempting.remove(uid);
        inner.last_victim.remove(uid);
    }
}

/// Upstream's `prepareCandidateAsync`: marks the preemptor as preempting and starts a task
/// that clears lower-priority nominations, deletes all victims but the last in parallel, then
/// the last one (so PreEnqueue can tell "almost done" from "done").
pub fn prepare_candidate_async(
    api: Arc<dyn PreemptionApi>,
    waiting: WaitingPods,
    running: Arc<Running>,
    preemptor: Arc<Pod>,
    node: String,
    victims: &[Arc<Pod>],
    lower_nominated: Vec<Arc<Pod>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let targets = victims_to_delete(victims);
    let (last, rest) = targets.split_last()?;
    let (last, rest) = (last.clone(), rest.to_vec());
    let uid = preemptor.metadata.uid.clone().unwrap_or_default();
    running.start(&uid);
    Some(tokio::spawn(async move {
        tracing::debug!(preemptor = %key(&preemptor), node = %node, victims = rest.len() + 1, "start the preemption asynchronously");
        let mut failed = false;
        if let Err(e) = clear_nominations(api.as_ref(), &lower_nominated).await {
            tracing::error!(node = %node, err = %e, "cannot clear 'NominatedNodeName' field from lower priority pods on the same target node");
            failed = true;
        }
        let mut preempt_last = true;
        if !rest.is_empty() {
            let results = join_all(
                rest.iter()
                    .map(|v| preempt_pod(api.as_ref(), &waiting, &preemptor, v, &node)),
            )
            .await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                tracing::error!(err = %e, "error occurred during async preemption");
                failed = true;
                preempt_last = false;
            }
        }
        if preempt_last {
            running.waiting_for(&uid, &last);
            if let Err(e) = preempt_pod(api.as_ref(), &waiting, &preemptor, &last, &node).await {
                tracing::error!(err = %e, "error occurred during async preemption of the last victim");
                failed = true;
            }
        }
        running.finish(&uid);
        tracing::debug!(preemptor = %key(&preemptor), node = %node, failed, "async preemption finished");
    }))
}
