//! Rollout progress (upstream's `progress.go`): the Progressing condition
//! (ReplicaSetUpdated while pods move, NewReplicaSetAvailable when done,
//! ProgressDeadlineExceeded when nothing moved for `progressDeadlineSeconds`), ReplicaFailure
//! carried over from the ReplicaSets, and the requeue that notices a stuck rollout in time.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{DeploymentCondition, ReplicaSet};

use super::plan::Planner;
use super::util::*;

impl Planner<'_> {
    pub(super) fn sync_rollout_status(&mut self, new_rs: Option<usize>) {
        let all: Vec<&ReplicaSet> = self.rses.iter().collect();
        let new = new_rs.map(|i| &self.rses[i]);
        let mut status = calculate_status(&self.d, &all, new, self.now);
        let deadline = progress_deadline(&self.d);
        if deadline.is_none() {
            remove_condition(&mut status, PROGRESSING);
        }
        let current_status = self.status();
        let current = get_condition(&current_status, PROGRESSING);
        let complete_before = num(status.replicas) == num(status.updated_replicas)
            && current.and_then(|c| c.reason.as_deref()) == Some(NEW_RS_AVAILABLE_REASON);
        let subject = match new {
            Some(rs) => format!(
                "ReplicaSet {:?}",
                rs.metadata.name.clone().unwrap_or_default()
            ),
            None => format!(
                "Deployment {:?}",
                self.d.metadata.name.clone().unwrap_or_default()
            ),
        };
        if deadline.is_some() && !complete_before {
            if deployment_complete(&self.d, &status) {
                let c = new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE_REASON,
                    format!("{subject} has successfully progressed."),
                    self.now,
                );
                set_condition(&mut status, c);
            } else if deployment_progressing(&self.d, &status) {
                let mut c = new_condition(
                    PROGRESSING,
                    "True",
                    RS_UPDATED_REASON,
                    format!("{subject} is progressing."),
                    self.now,
                );
                // Progress refreshes lastUpdateTime even when the reason stays the same.
                if let Some(current) = current {
                    if current.status == "True" {
                        c.last_transition_time = current.last_transition_time.clone();
                    }
                    remove_condition(&mut status, PROGRESSING);
                }
                set_condition(&mut status, c);
            } else if deployment_timed_out(&self.d, &status, self.now) {
                let c = new_condition(
                    PROGRESSING,
                    "False",
                    TIMED_OUT_REASON,
                    format!("{subject} has timed out progressing."),
                    self.now,
                );
                set_condition(&mut status, c);
            }
        }
        match replica_failure(&all, new) {
            Some(c) => set_condition(&mut status, c),
            None => remove_condition(&mut status, REPLICA_FAILURE),
        }
        if super::plan::normalize(&status) == super::plan::normalize(&current_status) {
            self.requeue_after = self.stuck_requeue(&status);
        }
        self.d.status = Some(status);
    }

    /// When the Progressing condition will be past the deadline, for a rollout that is
    /// neither complete nor timed out already.
    fn stuck_requeue(
        &self,
        new: &k8s_openapi::api::apps::v1::DeploymentStatus,
    ) -> Option<Duration> {
        let deadline = progress_deadline(&self.d)?;
        let status = self.status();
        let current = get_condition(&status, PROGRESSING)?;
        if deployment_complete(&self.d, new) || current.reason.as_deref() == Some(TIMED_OUT_REASON)
        {
            return None;
        }
        let from = current.last_update_time.as_ref()?.0.as_second();
        let after = from + i64::from(deadline) - self.now.as_second();
        Some(Duration::from_secs(after.max(0) as u64 + 1))
    }
}

fn num(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// The first ReplicaFailure=True condition of the new ReplicaSet, else of an old one.
fn replica_failure(all: &[&ReplicaSet], new: Option<&ReplicaSet>) -> Option<DeploymentCondition> {
    new.into_iter().chain(all.iter().copied()).find_map(|rs| {
        let c = rs
            .status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == REPLICA_FAILURE && c.status == "True")?;
        Some(DeploymentCondition {
            type_: REPLICA_FAILURE.into(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            last_transition_time: c.last_transition_time.clone(),
            last_update_time: c.last_transition_time.clone(),
        })
    })
}
