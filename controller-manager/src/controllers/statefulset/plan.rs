//! The decision half of upstream's `updateStatefulSet`: given the set, its current and update
//! revisions, the pods it owns and the claims in its namespace (all from caches), the ordered
//! list of API writes one sync makes, and the status it reports.
//!
//! Pods with an ordinal in `[start, start + replicas)` are replicas; missing ones are created
//! at the current revision below the partition (or below `status.currentReplicas` with no
//! rollingUpdate block) and at the update revision otherwise. Pods above the range are
//! condemned and deleted highest ordinal first. `OrderedReady` (monotonic) stops at the first
//! pod it creates, the first replica not Running+Ready+Available, any terminating pod, and
//! after each deletion; `Parallel` does everything at once. Failed and Succeeded pods are
//! deleted so the next sync recreates them. Then, for `RollingUpdate`, pods at ordinals at or
//! above the partition that are not at the update revision are deleted highest first, no more
//! than `maxUnavailable` minus the pods already unhealthy. The executor stops at the first
//! failed write, so later actions assume the earlier ones succeeded, as upstream's early
//! returns do.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSetStatus;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;

use super::identity::{self, SetView};
use super::retention::{self, Owner};

/// The two revisions a sync works between, resolved to their templates.
#[derive(Debug, Clone)]
pub struct Revisions<'a> {
    pub current: &'a str,
    pub current_template: &'a PodTemplateSpec,
    pub update: &'a str,
    pub update_template: &'a PodTemplateSpec,
    pub collision_count: i32,
}

/// Why a pod is deleted (for logs; the event is the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteReason {
    /// Failed or Succeeded: recreated on a later sync.
    Finished,
    /// Its ordinal is outside the set's range.
    ScaleDown,
    /// Not at the update revision (rolling update).
    Update,
}

/// One API write.
#[derive(Debug, Clone)]
pub enum Action {
    /// Create the claims that are missing, then the pod.
    CreatePod {
        pod: Pod,
        claims: Vec<PersistentVolumeClaim>,
    },
    /// Create the missing claims of an existing (Pending) pod.
    CreateClaims {
        pod: String,
        claims: Vec<PersistentVolumeClaim>,
    },
    DeletePod {
        pod: Arc<Pod>,
        reason: DeleteReason,
    },
    /// Restore the pod's identity labels or claim volumes (upstream `UpdateStatefulPod`).
    UpdatePod {
        pod: Pod,
    },
    /// Rewrite a claim's owner references for the retention policy.
    UpdateClaim {
        pod: String,
        claim: PersistentVolumeClaim,
    },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Something the sync must wait for that is an error upstream (a claim being deleted
    /// under a pod to create): the sync backs off after the actions.
    pub blocked: Option<String>,
    pub status: StatefulSetStatus,
}

/// A slot of the replica range: the pod there, or the pod to create there.
enum Slot {
    Existing(Arc<Pod>),
    Missing(Box<Pod>),
}

impl Slot {
    fn pod(&self) -> &Pod {
        match self {
            Slot::Existing(p) => p,
            Slot::Missing(p) => p,
        }
    }
    fn is_healthy(&self) -> bool {
        matches!(self, Slot::Existing(p) if identity::is_healthy(p))
    }
}

/// Whether a replica pod is created at the current revision (upstream
/// `newVersionedStatefulSetPod`).
fn at_current_revision(set: &SetView, status_current_replicas: i32, ordinal: i32) -> bool {
    if set.on_delete {
        return false;
    }
    if set.rolling_update_set {
        ordinal < set.start_ordinal + set.partition
    } else {
        ordinal < set.start_ordinal + status_current_replicas
    }
}

struct Planner<'a> {
    set: &'a SetView<'a>,
    claims: &'a BTreeMap<String, Arc<PersistentVolumeClaim>>,
    now: Timestamp,
    actions: Vec<Action>,
    blocked: Option<String>,
}

impl Planner<'_> {
    fn pod_owner<'p>(pod: &'p Pod) -> Owner<'p> {
        Owner::pod(
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.uid.as_deref().unwrap_or_default(),
        )
    }

    /// The claims of `pod` that do not exist yet, with the owner references the policy wants
    /// (so no second write is needed); `Err` names a claim being deleted.
    fn missing_claims(
        &self,
        pod: &Pod,
        ordinal: i32,
    ) -> Result<Vec<PersistentVolumeClaim>, String> {
        let owner = Self::pod_owner(pod);
        let mut missing = Vec::new();
        for mut claim in identity::claims_for(self.set, ordinal) {
            let name = claim.metadata.name.clone().unwrap_or_default();
            match self.claims.get(&name) {
                Some(existing) if existing.metadata.deletion_timestamp.is_some() => {
                    return Err(format!("pvc {name} is being deleted"));
                }
                Some(_) => {}
                None => {
                    let refs = retention::owner_refs_for_policy(
                        &claim,
                        self.set,
                        &owner,
                        !self.set.in_range(ordinal),
                    );
                    claim.metadata.owner_references = (!refs.is_empty()).then_some(refs);
                    missing.push(claim);
                }
            }
        }
        Ok(missing)
    }

    /// Existing claims of `pod` whose owner references do not follow the policy, rewritten.
    fn claims_to_fix(&self, pod: &Pod, ordinal: i32) -> Vec<PersistentVolumeClaim> {
        let owner = Self::pod_owner(pod);
        let scaled_down = !self.set.in_range(ordinal);
        identity::claims_for(self.set, ordinal)
            .into_iter()
            .filter_map(|wanted| {
                let existing = self.claims.get(wanted.metadata.name.as_deref()?)?;
                if retention::claim_owner_up_to_date(existing, self.set, &owner, scaled_down) {
                    return None;
                }
                let mut claim = existing.as_ref().clone();
                let refs =
                    retention::owner_refs_for_policy(existing, self.set, &owner, scaled_down);
                claim.metadata.owner_references = Some(refs);
                Some(claim)
            })
            .collect()
    }

    fn claim_is_stale(&self, pod: &Pod, ordinal: i32) -> bool {
        let owner = Self::pod_owner(pod);
        identity::claims_for(self.set, ordinal).iter().any(|c| {
            c.metadata
                .name
                .as_deref()
                .and_then(|name| self.claims.get(name))
                .is_some_and(|existing| retention::claim_is_stale(existing, self.set, &owner))
        })
    }

    /// upstream `processReplica`; `true` means "stop here" (honoured in monotonic mode only).
    fn process_replica(&mut self, slot: &Slot, ordinal: i32, monotonic: bool) -> bool {
        let pod = match slot {
            Slot::Missing(pod) => {
                if self.claim_is_stale(pod, ordinal) {
                    // The garbage collector is removing the previous pod's claim.
                    return true;
                }
                match self.missing_claims(pod, ordinal) {
                    Ok(claims) => self.actions.push(Action::CreatePod {
                        pod: pod.as_ref().clone(),
                        claims,
                    }),
                    Err(why) => {
                        self.blocked.get_or_insert(why);
                        return true;
                    }
                }
                return monotonic;
            }
            Slot::Existing(pod) => pod,
        };
        if identity::is_finished(pod) {
            if !identity::is_terminating(pod) {
                self.actions.push(Action::DeletePod {
                    pod: pod.clone(),
                    reason: DeleteReason::Finished,
                });
            }
            return true;
        }
        let name = pod.metadata.name.clone().unwrap_or_default();
        if identity::is_pending(pod) {
            match self.missing_claims(pod, ordinal) {
                Ok(claims) if claims.is_empty() => {}
                Ok(claims) => self.actions.push(Action::CreateClaims {
                    pod: name.clone(),
                    claims,
                }),
                Err(why) => {
                    self.blocked.get_or_insert(why);
                    return true;
                }
            }
        }
        if monotonic
            && (identity::is_terminating(pod)
                || !identity::is_running_and_ready(pod)
                || !identity::is_available(pod, self.set.min_ready_seconds, self.now))
        {
            return true;
        }
        for claim in self.claims_to_fix(pod, ordinal) {
            self.actions.push(Action::UpdateClaim {
                pod: name.clone(),
                claim,
            });
        }
        let identity_ok = identity::identity_matches(self.set, pod);
        let storage_ok = identity::storage_matches(self.set, pod);
        if !identity_ok || !storage_ok {
            let mut fixed = pod.as_ref().clone();
            if !identity_ok {
                identity::update_identity(self.set, &mut fixed, ordinal);
            }
            if !storage_ok {
                identity::update_storage(self.set, &mut fixed, ordinal);
            }
            self.actions.push(Action::UpdatePod { pod: fixed });
        }
        false
    }

    /// upstream `processCondemned`; `true` means "stop here" (monotonic mode only).
    fn process_condemned(
        &mut self,
        pod: &Arc<Pod>,
        first_unhealthy: Option<&str>,
        monotonic: bool,
    ) -> bool {
        if identity::is_terminating(pod) {
            return monotonic;
        }
        let name = pod.metadata.name.as_deref();
        let is_first_unhealthy = first_unhealthy.is_some() && name == first_unhealthy;
        if monotonic
            && !is_first_unhealthy
            && (!identity::is_running_and_ready(pod)
                || !identity::is_available(pod, self.set.min_ready_seconds, self.now))
        {
            return true;
        }
        self.actions.push(Action::DeletePod {
            pod: pod.clone(),
            reason: DeleteReason::ScaleDown,
        });
        true
    }
}

/// Counts of upstream `computeReplicaStatus` over existing pods.
fn count_status(
    status: &mut StatefulSetStatus,
    pods: &[&Arc<Pod>],
    set: &SetView,
    revisions: &Revisions,
    now: Timestamp,
) {
    let (mut replicas, mut ready, mut available, mut current, mut updated) = (0, 0, 0, 0, 0);
    for pod in pods {
        replicas += 1;
        if identity::is_running_and_ready(pod) {
            ready += 1;
            if identity::is_available(pod, set.min_ready_seconds, now) {
                available += 1;
            }
        }
        if !identity::is_terminating(pod) {
            let revision = identity::pod_revision(pod);
            if revision == revisions.current {
                current += 1;
            }
            if revision == revisions.update {
                updated += 1;
            }
        }
    }
    status.replicas = replicas;
    status.ready_replicas = Some(ready);
    status.available_replicas = Some(available);
    status.current_replicas = Some(current);
    status.updated_replicas = Some(updated);
}

/// The plan of one sync. `pods` are the pods the set owns; `claims` the claims of its
/// namespace by name.
pub fn plan(
    set: &SetView,
    owner: &OwnerReference,
    revisions: &Revisions,
    pods: &[Arc<Pod>],
    claims: &BTreeMap<String, Arc<PersistentVolumeClaim>>,
    now: Timestamp,
) -> Plan {
    let previous = set.status;
    let mut status = StatefulSetStatus {
        observed_generation: set.generation,
        current_revision: Some(revisions.current.to_string()),
        update_revision: Some(revisions.update.to_string()),
        collision_count: Some(revisions.collision_count),
        conditions: previous.and_then(|s| s.conditions.clone()),
        ..StatefulSetStatus::default()
    };
    let previous_current = previous.and_then(|s| s.current_replicas).unwrap_or(0);

    // Partition into the replica range and the condemned; unparsable ordinals are ignored.
    let mut by_ordinal: BTreeMap<i32, Arc<Pod>> = BTreeMap::new();
    let mut condemned: Vec<Arc<Pod>> = Vec::new();
    for pod in pods {
        let Some(ordinal) = identity::ordinal(pod) else {
            continue;
        };
        if set.in_range(ordinal) {
            by_ordinal.insert(ordinal, pod.clone());
        } else {
            condemned.push(pod.clone());
        }
    }
    let counted: Vec<&Arc<Pod>> = by_ordinal.values().chain(condemned.iter()).collect();
    count_status(&mut status, &counted, set, revisions, now);
    condemned.sort_by_key(|p| std::cmp::Reverse(identity::ordinal(p)));

    let slots: Vec<(i32, Slot)> = (set.start_ordinal..=set.end_ordinal())
        .map(|ordinal| match by_ordinal.get(&ordinal) {
            Some(pod) => (ordinal, Slot::Existing(pod.clone())),
            None => {
                let (template, revision) = if at_current_revision(set, previous_current, ordinal) {
                    (revisions.current_template, revisions.current)
                } else {
                    (revisions.update_template, revisions.update)
                };
                let pod = identity::new_pod(set, template, owner.clone(), ordinal, revision);
                (ordinal, Slot::Missing(Box::new(pod)))
            }
        })
        .collect();

    // The first unhealthy pod: replicas in order, then condemned from the lowest ordinal.
    let first_unhealthy: Option<String> = slots
        .iter()
        .map(|(_, s)| s.pod())
        .chain(condemned.iter().rev().map(|p| p.as_ref()))
        .find(|p| !identity::is_healthy(p))
        .and_then(|p| p.metadata.name.clone());

    let mut planner = Planner {
        set,
        claims,
        now,
        actions: Vec::new(),
        blocked: None,
    };
    let done = |planner: Planner, status: StatefulSetStatus| Plan {
        actions: planner.actions,
        blocked: planner.blocked,
        status,
    };
    if set.deleting {
        return done(planner, status);
    }
    let monotonic = !set.parallel;

    for (ordinal, slot) in &slots {
        if planner.process_replica(slot, *ordinal, monotonic) && monotonic {
            return done(planner, status);
        }
    }
    if planner.blocked.is_some() {
        return done(planner, status);
    }

    // Condemned pods' claims first get the owner the policy wants (the pod, under
    // whenScaled: Delete), so deleting the pod deletes them.
    for pod in &condemned {
        let (Some(ordinal), Some(name)) = (identity::ordinal(pod), pod.metadata.name.clone())
        else {
            continue;
        };
        for claim in planner.claims_to_fix(pod, ordinal) {
            planner.actions.push(Action::UpdateClaim {
                pod: name.clone(),
                claim,
            });
        }
    }

    for pod in &condemned {
        if planner.process_condemned(pod, first_unhealthy.as_deref(), monotonic) && monotonic {
            return done(planner, status);
        }
    }

    if set.on_delete {
        return done(planner, status);
    }

    // Rolling update (upstream `updateStatefulSetAfterInvariantEstablished`).
    let max_unavailable = match set.max_unavailable() {
        Ok(n) => n,
        Err(err) => {
            planner.blocked = Some(err);
            return done(planner, status);
        }
    };
    let unavailable = slots.iter().filter(|(_, s)| !s.is_healthy()).count();
    let unavailable = i32::try_from(unavailable).unwrap_or(i32::MAX);
    if unavailable >= max_unavailable {
        return done(planner, status);
    }
    let mut budget = max_unavailable - unavailable;
    let update_min = set.start_ordinal + set.partition;
    for (ordinal, slot) in slots.iter().rev() {
        if budget == 0 || *ordinal < update_min {
            break;
        }
        let Slot::Existing(pod) = slot else {
            continue;
        };
        if identity::pod_revision(pod) != revisions.update && !identity::is_terminating(pod) {
            planner.actions.push(Action::DeletePod {
                pod: pod.clone(),
                reason: DeleteReason::Update,
            });
            budget -= 1;
            status.current_replicas = status.current_replicas.map(|c| c - 1);
        }
    }
    done(planner, status)
}

/// upstream `completeRollingUpdate`: once every replica is updated and ready, the update
/// revision becomes the current one.
pub fn complete_rolling_update(set: &SetView, status: &mut StatefulSetStatus) {
    let n = set.replicas;
    if !set.on_delete
        && status.updated_replicas == Some(n)
        && status.ready_replicas == Some(n)
        && status.replicas == n
    {
        status.current_replicas = status.updated_replicas;
        status.current_revision = status.update_revision.clone();
    }
}

/// Whether the stored status differs from the computed one (upstream `inconsistentStatus`,
/// plus the collision count, which upstream only carries along with other changes).
pub fn status_changed(stored: Option<&StatefulSetStatus>, computed: &StatefulSetStatus) -> bool {
    let stored = stored.cloned().unwrap_or_default();
    let num = |v: Option<i32>| v.unwrap_or(0);
    computed.observed_generation.unwrap_or(0) > stored.observed_generation.unwrap_or(0)
        || computed.replicas != stored.replicas
        || num(computed.current_replicas) != num(stored.current_replicas)
        || num(computed.ready_replicas) != num(stored.ready_replicas)
        || num(computed.updated_replicas) != num(stored.updated_replicas)
        || num(computed.available_replicas) != num(stored.available_replicas)
        || computed.current_revision != stored.current_revision
        || computed.update_revision != stored.update_revision
        || num(computed.collision_count) != num(stored.collision_count)
}
