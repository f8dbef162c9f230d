//! The Recreate strategy (upstream's `recreate.go`): scale every old ReplicaSet to zero, wait
//! until none of their pods is left running, then create and scale up the new ReplicaSet.

use k8s_openapi::api::core::v1::Pod;

use super::plan::Planner;
use super::util::*;

impl Planner<'_> {
    pub(super) fn rollout_recreate(&mut self) {
        let new_rs = self.new_and_old(false);
        let mut scaled_down = false;
        for i in self.old_indices(new_rs) {
            if rs_replicas(&self.rses[i]) > 0 && self.scale_and_record(i, 0) {
                scaled_down = true;
            }
        }
        if scaled_down {
            self.sync_rollout_status(new_rs);
            return;
        }
        if self.old_pods_running(new_rs) {
            self.sync_rollout_status(new_rs);
            return;
        }
        let new_rs = match new_rs {
            Some(i) => Some(i),
            None => self.new_and_old(true),
        };
        if let Some(i) = new_rs {
            self.scale_and_record(i, replicas(&self.d));
        }
        if deployment_complete(&self.d, &self.status()) {
            self.cleanup(new_rs);
        }
        self.sync_rollout_status(new_rs);
    }

    /// Whether an old ReplicaSet still reports pods, or a pod of one is not yet terminal.
    fn old_pods_running(&self, new_rs: Option<usize>) -> bool {
        let old = self.old_indices(new_rs);
        if actual_replica_count(old.iter().map(|i| &self.rses[*i])) > 0 {
            return true;
        }
        let new_uid = new_rs.and_then(|i| self.rses[i].metadata.uid.clone());
        self.pods.iter().any(|pod| {
            let owner = crate::framework::controller_ref(&pod.metadata).map(|r| r.uid.clone());
            owner.is_some() && owner != new_uid && !terminal(pod)
        })
    }
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed") | Some("Succeeded")
    )
}
