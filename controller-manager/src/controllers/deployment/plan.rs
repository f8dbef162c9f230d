//! The decision logic of one deployment sync, as data: given the deployment, the ReplicaSets
//! it owns and their pods (all from informer caches), [`plan`] returns the ReplicaSet writes,
//! events, the deployment's new revision annotation and status, and when to look again.
//!
//! Upstream's `syncDeployment` writes as it goes and stops after a step that changed
//! something, trusting the resulting events to bring it back. The planner runs the same steps
//! against in-memory copies, assuming each write succeeds, so its writes are exactly the ones
//! upstream would make in one sync; the executor stops at the first failed write and requeues.
//! The intermediate status updates upstream makes (revision, Progressing on creation) are
//! folded into the one status written at the end.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::jiff::Timestamp;

use super::util::*;

/// One write to a ReplicaSet, or an event, in the order they must happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create the new ReplicaSet; the message is the ScalingReplicaSet event to record after.
    Create {
        rs: ReplicaSet,
        event: Option<String>,
    },
    /// Replace a ReplicaSet (replicas, annotations, minReadySeconds).
    Update {
        rs: ReplicaSet,
        event: Option<String>,
    },
    /// Delete an old, empty ReplicaSet beyond revisionHistoryLimit.
    Delete {
        name: String,
        uid: Option<String>,
    },
    Warning {
        reason: String,
        message: String,
    },
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// The value for the deployment's revision annotation, when it must change.
    pub revision: Option<String>,
    /// The status to write, when it differs from the current one.
    pub status: Option<DeploymentStatus>,
    /// Look again after this long (a stuck rollout's deadline).
    pub requeue_after: Option<Duration>,
}

/// The working state of one sync.
pub(super) struct Planner<'a> {
    /// The deployment; its status and annotations change as the sync proceeds.
    pub d: Deployment,
    /// The owned ReplicaSets, as the writes so far left them.
    pub rses: Vec<ReplicaSet>,
    pub pods: &'a [Arc<Pod>],
    pub now: Timestamp,
    pub actions: Vec<Action>,
    pub requeue_after: Option<Duration>,
}

/// Plans one sync of `d`, which owns `rses` (already claimed) whose pods are `pods`.
pub fn plan(d: &Deployment, rses: &[Arc<ReplicaSet>], pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut p = Planner {
        d: d.clone(),
        rses: rses.iter().map(|rs| (**rs).clone()).collect(),
        pods,
        now,
        actions: Vec::new(),
        requeue_after: None,
    };
    p.sync_deployment();
    let original_status = d.status.clone().unwrap_or_default();
    let status = p.d.status.clone().unwrap_or_default();
    let revision = annotation(&p.d.metadata, REVISION_ANNOTATION)
        .filter(|r| Some(*r) != annotation(&d.metadata, REVISION_ANNOTATION))
        .map(str::to_string);
    Plan {
        actions: p.actions,
        revision,
        status: (normalize(&status) != normalize(&original_status)).then(|| normalize(&status)),
        requeue_after: p.requeue_after,
    }
}

/// Zero counts are omitted on the wire (Go's omitempty): compare and write them as absent.
pub fn normalize(status: &DeploymentStatus) -> DeploymentStatus {
    let nz = |v: Option<i32>| v.filter(|n| *n != 0);
    DeploymentStatus {
        observed_generation: status.observed_generation.filter(|g| *g != 0),
        replicas: nz(status.replicas),
        updated_replicas: nz(status.updated_replicas),
        ready_replicas: nz(status.ready_replicas),
        available_replicas: nz(status.available_replicas),
        unavailable_replicas: nz(status.unavailable_replicas),
        terminating_replicas: status.terminating_replicas,
        collision_count: status.collision_count,
        conditions: status.conditions.clone().filter(|c| !c.is_empty()),
    }
}

impl Planner<'_> {
    fn status_mut(&mut self) -> &mut DeploymentStatus {
        self.d.status.get_or_insert_with(Default::default)
    }

    pub(super) fn status(&self) -> DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }

    fn name(&self) -> String {
        self.d.metadata.name.clone().unwrap_or_default()
    }

    fn sync_deployment(&mut self) {
        let selector_is_empty = self
            .d
            .spec
            .as_ref()
            .map(|s| &s.selector)
            .is_none_or(|s| s == &LabelSelector::default());
        if selector_is_empty {
            self.actions.push(Action::Warning {
                reason: "SelectingAll".into(),
                message: "This deployment is selecting all pods. A non-empty selector is required."
                    .into(),
            });
            let generation = self.d.metadata.generation;
            if self.status().observed_generation < generation {
                self.status_mut().observed_generation = generation;
            }
            return;
        }
        if self.d.metadata.deletion_timestamp.is_some() {
            // Only the status is kept current while the deployment goes away.
            let new_rs = self.new_and_old(false);
            self.sync_deployment_status(new_rs);
            return;
        }
        self.check_paused_conditions();
        if paused(&self.d) {
            self.sync_scaling();
            return;
        }
        if self.is_scaling_event() {
            self.sync_scaling();
            return;
        }
        if is_recreate(&self.d) {
            self.rollout_recreate();
        } else {
            self.rollout_rolling();
        }
    }

    /// Progressing=Unknown DeploymentPaused / DeploymentResumed when pausing flips, unless the
    /// rollout already timed out.
    fn check_paused_conditions(&mut self) {
        if progress_deadline(&self.d).is_none() {
            return;
        }
        let status = self.status();
        let cond = get_condition(&status, PROGRESSING);
        let reason = cond.and_then(|c| c.reason.as_deref());
        if reason == Some(TIMED_OUT_REASON) {
            return;
        }
        let paused_cond = reason == Some(PAUSED_REASON);
        let now = self.now;
        if paused(&self.d) && !paused_cond {
            let c = new_condition(
                PROGRESSING,
                "Unknown",
                PAUSED_REASON,
                "Deployment is paused".into(),
                now,
            );
            set_condition(self.status_mut(), c);
        } else if !paused(&self.d) && paused_cond {
            let c = new_condition(
                PROGRESSING,
                "Unknown",
                RESUMED_REASON,
                "Deployment is resumed".into(),
                now,
            );
            set_condition(self.status_mut(), c);
        }
    }

    /// Whether a ReplicaSet with pods was sized for another `spec.replicas`.
    fn is_scaling_event(&mut self) -> bool {
        self.new_and_old(false);
        let want = replicas(&self.d);
        self.rses
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| desired_replicas_annotation(rs).is_some_and(|desired| desired != want))
    }

    /// Upstream's `sync`: scaling (and, when paused, history cleanup) without a rollout.
    fn sync_scaling(&mut self) {
        let new_rs = self.new_and_old(false);
        self.scale(new_rs);
        if paused(&self.d) {
            self.cleanup(new_rs);
        }
        self.sync_deployment_status(new_rs);
    }

    pub(super) fn old_indices(&self, new_rs: Option<usize>) -> Vec<usize> {
        (0..self.rses.len())
            .filter(|i| Some(*i) != new_rs)
            .collect()
    }

    fn find_new(&self) -> Option<usize> {
        let template = self.d.spec.as_ref().map(|s| s.template.clone())?;
        let mut order: Vec<usize> = (0..self.rses.len()).collect();
        order.sort_by(|a, b| by_creation(&self.rses[*a], &self.rses[*b]));
        order.into_iter().find(|i| {
            self.rses[*i]
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| equal_ignore_hash(t, &template))
        })
    }

    /// Finds (or, with `create`, plans the creation of) the ReplicaSet running the current
    /// template and brings its revision up to date (upstream's
    /// `getAllReplicaSetsAndSyncRevision`). Returns its index in `rses`.
    pub(super) fn new_and_old(&mut self, create: bool) -> Option<usize> {
        let existing = self.find_new();
        let old_max = max_revision(
            self.rses
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != existing)
                .map(|(_, rs)| rs),
        );
        let new_revision = old_max + 1;
        if let Some(i) = existing {
            let mut rs = self.rses[i].clone();
            let annotations_changed =
                set_new_replica_set_annotations(&self.d, &mut rs, new_revision, true);
            let min_ready = min_ready_seconds(&self.d);
            let spec = rs.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready;
            if annotations_changed || min_ready_changed {
                spec.min_ready_seconds = Some(min_ready);
                self.rses[i] = rs.clone();
                self.actions.push(Action::Update { rs, event: None });
                // Upstream returns here; the deployment's revision follows on the next sync.
                return Some(i);
            }
            if let Some(rev) = annotation(&rs.metadata, REVISION_ANNOTATION).map(str::to_string) {
                self.set_deployment_revision(&rev);
            }
            if progress_deadline(&self.d).is_some()
                && get_condition(&self.status(), PROGRESSING).is_none()
            {
                let name = rs.metadata.name.clone().unwrap_or_default();
                let c = new_condition(
                    PROGRESSING,
                    "True",
                    FOUND_NEW_RS_REASON,
                    format!("Found new replica set {name:?}"),
                    self.now,
                );
                set_condition(self.status_mut(), c);
            }
            return Some(i);
        }
        if !create {
            return None;
        }
        let rs = self.new_replica_set(new_revision);
        let name = rs.metadata.name.clone().unwrap_or_default();
        let count = rs_replicas(&rs);
        let event = (count > 0).then(|| format!("Scaled up replica set {name} from 0 to {count}"));
        self.rses.push(rs.clone());
        self.actions.push(Action::Create { rs, event });
        self.set_deployment_revision(&new_revision.to_string());
        if progress_deadline(&self.d).is_some() {
            let c = new_condition(
                PROGRESSING,
                "True",
                NEW_RS_REASON,
                format!("Created new replica set {name:?}"),
                self.now,
            );
            set_condition(self.status_mut(), c);
        }
        Some(self.rses.len() - 1)
    }

    fn set_deployment_revision(&mut self, revision: &str) {
        let annotations = self
            .d
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        if annotations.get(REVISION_ANNOTATION).map(String::as_str) != Some(revision) {
            annotations.insert(REVISION_ANNOTATION.into(), revision.into());
        }
    }

    /// The ReplicaSet for the current template: `<deployment>-<hash>`, selected and labelled
    /// by the hash, sized as the strategy allows.
    fn new_replica_set(&self, new_revision: i64) -> ReplicaSet {
        let spec = self.d.spec.clone().unwrap_or_default();
        let collision = self.status().collision_count;
        let hash = compute_hash(&spec.template, collision);
        let mut template = spec.template.clone();
        let meta = template.metadata.get_or_insert_with(Default::default);
        meta.labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let labels = meta.labels.clone();
        let mut selector = spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(Default::default)
            .insert(POD_TEMPLATE_HASH_LABEL.into(), hash.clone());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", self.name())),
                namespace: self.d.metadata.namespace.clone(),
                labels,
                owner_references: Some(vec![crate::framework::new_controller_ref(&self.d)]),
                ..ObjectMeta::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: Some(min_ready_seconds(&self.d)),
                selector,
                template: Some(template),
            }),
            status: None,
        };
        let all: Vec<&ReplicaSet> = self.rses.iter().chain(Some(&rs)).collect();
        let count = new_rs_new_replicas(&self.d, &all, &rs);
        set_rs_replicas(&mut rs, count);
        set_new_replica_set_annotations(&self.d, &mut rs, new_revision, false);
        rs
    }

    /// Sets the size of `rses[i]` when it differs (upstream's `scaleReplicaSetAndRecordEvent`).
    pub(super) fn scale_and_record(&mut self, i: usize, size: i32) -> bool {
        if rs_replicas(&self.rses[i]) == size {
            return false;
        }
        self.scale_rs(i, size)
    }

    /// Sets the size and the replica annotations of `rses[i]`, when either is stale; true when
    /// the size changed.
    pub(super) fn scale_rs(&mut self, i: usize, size: i32) -> bool {
        let desired = replicas(&self.d);
        let max = desired + max_surge(&self.d);
        let rs = &self.rses[i];
        let old = rs_replicas(rs);
        let resize = old != size;
        if !resize && !replicas_annotations_need_update(rs, desired, max) {
            return false;
        }
        let mut rs = rs.clone();
        set_rs_replicas(&mut rs, size);
        set_replicas_annotations(&mut rs, desired, max);
        let name = rs.metadata.name.clone().unwrap_or_default();
        let direction = if old < size { "up" } else { "down" };
        let event =
            resize.then(|| format!("Scaled {direction} replica set {name} from {old} to {size}"));
        self.rses[i] = rs.clone();
        self.actions.push(Action::Update { rs, event });
        resize
    }

    /// Proportional scaling of the ReplicaSets when `spec.replicas` changed (upstream's
    /// `scale`): one active ReplicaSet takes the whole count; a saturated new one drains the
    /// old; otherwise a rolling deployment spreads the difference by size.
    fn scale(&mut self, new_rs: Option<usize>) {
        let want = replicas(&self.d);
        if let Some(i) = self.active_or_latest(new_rs) {
            if rs_replicas(&self.rses[i]) != want {
                self.scale_and_record(i, want);
            }
            return;
        }
        if let Some(n) = new_rs.filter(|n| self.is_saturated(*n)) {
            for i in self.old_indices(Some(n)) {
                if rs_replicas(&self.rses[i]) > 0 {
                    self.scale_and_record(i, 0);
                }
            }
            return;
        }
        if !is_rolling_update(&self.d) {
            return;
        }
        let mut active: Vec<usize> = (0..self.rses.len())
            .filter(|i| rs_replicas(&self.rses[*i]) > 0)
            .collect();
        let total = replica_count(active.iter().map(|i| &self.rses[*i]));
        let allowed = if want > 0 {
            want + max_surge(&self.d)
        } else {
            0
        };
        let to_add = allowed - total;
        if to_add > 0 {
            active.sort_by(|a, b| by_size_newer(&self.rses[*a], &self.rses[*b]));
        } else if to_add < 0 {
            active.sort_by(|a, b| by_size_older(&self.rses[*a], &self.rses[*b]));
        }
        let mut added = 0;
        let mut sizes = Vec::with_capacity(active.len());
        for i in &active {
            let rs = &self.rses[*i];
            let share = if to_add != 0 {
                proportion(rs, &self.d, to_add, added)
            } else {
                0
            };
            added += share;
            sizes.push(rs_replicas(rs) + share);
        }
        for (pos, i) in active.iter().enumerate() {
            let mut size = sizes[pos];
            // The rounding leftovers go to the largest.
            if pos == 0 && to_add != 0 {
                size = (size + to_add - added).max(0);
            }
            self.scale_rs(*i, size);
        }
    }

    /// The only ReplicaSet with replicas, or the newest when none has any.
    fn active_or_latest(&self, new_rs: Option<usize>) -> Option<usize> {
        if self.rses.is_empty() {
            return None;
        }
        let active: Vec<usize> = (0..self.rses.len())
            .filter(|i| rs_replicas(&self.rses[*i]) > 0)
            .collect();
        match active.len() {
            0 => new_rs.or_else(|| {
                let mut old = self.old_indices(new_rs);
                old.sort_by(|a, b| by_creation(&self.rses[*b], &self.rses[*a]));
                old.first().copied()
            }),
            1 => Some(active[0]),
            _ => None,
        }
    }

    fn is_saturated(&self, i: usize) -> bool {
        let rs = &self.rses[i];
        let want = replicas(&self.d);
        rs_replicas(rs) == want
            && desired_replicas_annotation(rs) == Some(want)
            && rs_available(rs) == want
    }

    /// Deletes the oldest empty ReplicaSets beyond `revisionHistoryLimit`.
    pub(super) fn cleanup(&mut self, new_rs: Option<usize>) {
        let Some(limit) = revision_history_limit(&self.d) else {
            return;
        };
        let mut cleanable: Vec<usize> = self
            .old_indices(new_rs)
            .into_iter()
            .filter(|i| self.rses[*i].metadata.deletion_timestamp.is_none())
            .collect();
        let diff = cleanable.len() as i64 - i64::from(limit);
        if diff <= 0 {
            return;
        }
        cleanable.sort_by(|a, b| by_revision(&self.rses[*a], &self.rses[*b]));
        for i in cleanable.into_iter().take(diff as usize) {
            let rs = &self.rses[i];
            let observed = rs
                .status
                .as_ref()
                .and_then(|s| s.observed_generation)
                .unwrap_or(0);
            // Never delete one that still has pods or whose status lags its spec.
            if rs_status_replicas(rs) != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation.unwrap_or(0) > observed
            {
                continue;
            }
            self.actions.push(Action::Delete {
                name: rs.metadata.name.clone().unwrap_or_default(),
                uid: rs.metadata.uid.clone(),
            });
        }
        // The deleted ReplicaSets stay in `rses` (keeping indices valid): they have no
        // replicas, so the status computed next is the same without them.
    }

    /// Status from the ReplicaSets, written when it changed (upstream's `syncDeploymentStatus`).
    pub(super) fn sync_deployment_status(&mut self, new_rs: Option<usize>) {
        let all: Vec<&ReplicaSet> = self.rses.iter().collect();
        let status = calculate_status(&self.d, &all, new_rs.map(|i| &self.rses[i]), self.now);
        self.d.status = Some(status);
    }
}

/// How big the new ReplicaSet may be now (upstream's `NewRSNewReplicas`).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let want = replicas(d);
    if is_recreate(d) {
        return want;
    }
    let current = replica_count(all.iter().copied());
    let max_total = want + max_surge(d);
    if current >= max_total {
        return rs_replicas(new_rs);
    }
    let up = (max_total - current).min(want - rs_replicas(new_rs));
    rs_replicas(new_rs) + up
}
