//! The RollingUpdate strategy (upstream's `rolling.go`): grow the new ReplicaSet up to
//! `replicas + maxSurge` pods in total, then shrink old ones while at least
//! `replicas - maxUnavailable` pods stay available, unhealthy old replicas first.

use super::plan::Planner;
use super::util::*;

impl Planner<'_> {
    pub(super) fn rollout_rolling(&mut self) {
        let Some(new_rs) = self.new_and_old(true) else {
            return;
        };
        if self.reconcile_new_replica_set(new_rs) {
            self.sync_rollout_status(Some(new_rs));
            return;
        }
        if self.reconcile_old_replica_sets(new_rs) {
            self.sync_rollout_status(Some(new_rs));
            return;
        }
        if deployment_complete(&self.d, &self.status()) {
            self.cleanup(Some(new_rs));
        }
        self.sync_rollout_status(Some(new_rs));
    }

    fn reconcile_new_replica_set(&mut self, new_rs: usize) -> bool {
        let want = replicas(&self.d);
        let current = rs_replicas(&self.rses[new_rs]);
        if current == want {
            return false;
        }
        if current > want {
            return self.scale_and_record(new_rs, want);
        }
        let all: Vec<_> = self.rses.iter().collect();
        let size = super::plan::new_rs_new_replicas(&self.d, &all, &self.rses[new_rs]);
        self.scale_and_record(new_rs, size)
    }

    fn reconcile_old_replica_sets(&mut self, new_rs: usize) -> bool {
        let old = self.old_indices(Some(new_rs));
        let old_pods = replica_count(old.iter().map(|i| &self.rses[*i]));
        if old_pods == 0 {
            return false;
        }
        let all_pods = replica_count(self.rses.iter());
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let new = &self.rses[new_rs];
        let new_unavailable = rs_replicas(new) - rs_available(new);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        let cleaned = self.cleanup_unhealthy_replicas(new_rs, max_scaled_down);
        let scaled = self.scale_down_old_for_rolling_update(new_rs);
        cleaned + scaled > 0
    }

    /// Old ReplicaSets sorted oldest first, with replicas.
    fn active_old_by_creation(&self, new_rs: usize) -> Vec<usize> {
        let mut old: Vec<usize> = self
            .old_indices(Some(new_rs))
            .into_iter()
            .filter(|i| rs_replicas(&self.rses[*i]) > 0)
            .collect();
        old.sort_by(|a, b| by_creation(&self.rses[*a], &self.rses[*b]));
        old
    }

    /// Removes old replicas that are not available, up to `max`: they count against nothing
    /// and would otherwise block the rollout.
    fn cleanup_unhealthy_replicas(&mut self, new_rs: usize, max: i32) -> i32 {
        let mut total = 0;
        for i in self.active_old_by_creation(new_rs) {
            if total >= max {
                break;
            }
            let rs = &self.rses[i];
            let unhealthy = rs_replicas(rs) - rs_available(rs);
            if unhealthy <= 0 {
                continue;
            }
            let down = (max - total).min(unhealthy);
            let size = rs_replicas(rs) - down;
            self.scale_and_record(i, size);
            total += down;
        }
        total
    }

    /// Shrinks old ReplicaSets by as many available pods as exceed `replicas - maxUnavailable`.
    fn scale_down_old_for_rolling_update(&mut self, new_rs: usize) -> i32 {
        let min_available = replicas(&self.d) - max_unavailable(&self.d);
        let available = available_count(self.rses.iter());
        if available <= min_available {
            return 0;
        }
        let budget = available - min_available;
        let mut total = 0;
        for i in self.active_old_by_creation(new_rs) {
            if total >= budget {
                break;
            }
            let size = rs_replicas(&self.rses[i]);
            let down = size.min(budget - total);
            self.scale_and_record(i, size - down);
            total += down;
        }
        total
    }
}
