//! The ReplicaSet controller (`replicaset-controller`) and the ReplicationController manager
//! (`replicationcontroller-controller`): one generic controller over [`ReplicaOwner`], as
//! upstream's `pkg/controller/replicaset` (which runs RCs through an adapter).
//!
//! Implemented, as upstream:
//! - pods belong to an owner through their controller ownerReference; matching orphans are
//!   adopted (only while the owner is not being deleted, after a fresh GET confirms its UID)
//!   and owned pods whose labels stop matching are released (strategic merge patches with the
//!   pod's UID as precondition);
//! - expectations (creations counted, deletions tracked per pod key) so a slow informer never
//!   causes over-creation or over-deletion; the pod handlers lower them;
//! - slow-start creation in batches 1, 2, 4, ... capped by burstReplicas (500), stopping at the
//!   first failed batch; pods named by generateName `<owner>-`;
//! - scale-down victims by `getPodsToDelete` / `ActivePodsWithRanks` (pod-deletion-cost and
//!   logarithmic scale-down on, ranks from pods of sibling ReplicaSets on the same node);
//! - terminating and finished pods are neither counted nor claimed;
//! - status (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas with
//!   minReadySeconds, observedGeneration, the ReplicaFailure condition) written through the
//!   status subresource only when it changed, and a requeue after minReadySeconds so
//!   availability is recomputed;
//! - events SuccessfulCreate / FailedCreate / SuccessfulDelete / FailedDelete with upstream's
//!   messages; workers from `--concurrent-replicaset-syncs` / `--concurrent-rc-syncs`.
//!
//! Not implemented: `status.terminatingReplicas` (behind an alpha gate upstream), the
//! sorting-deletion-age metric, and upstream's consistency-store check of the pod cache. A selector
//! that cannot be used (unparsable, or empty, which would select the whole namespace) is
//! answered with a Warning `InvalidSelector` event and a backoff, where upstream only logs.

mod kind;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use client::events::CoreEventRecorder;
use client::informer::store::{namespace_indexer, split_key, NAMESPACE_INDEX};
use client::informer::Informer;
use client::{Api, Client};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::claim::claim_pods;
use crate::framework::expectations::UidTrackingExpectations;
use crate::framework::owners::{OnTerminating, PodEvents};
use crate::framework::podcontrol::{Deletion, PodControl};
use crate::framework::{
    add_handler, controller_ref, controller_uid_indexer, enqueue_events, key_of,
    new_controller_ref, orphans_of, podutil, reference, run_workers_when_synced, warn_event,
    ControllerContext, Reconciler, CONTROLLER_UID_INDEX,
};
use kind::{ReplicaOwner, ReplicaStatus};
use plan::{ManageError, ManagePlan};

pub fn start_replicaset(ctx: &ControllerContext) -> anyhow::Result<()> {
    start::<ReplicaSet>(ctx, ctx.options.concurrent_replicaset_syncs)
}

pub fn start_replication_controller(ctx: &ControllerContext) -> anyhow::Result<()> {
    start::<ReplicationController>(ctx, ctx.options.concurrent_rc_syncs)
}

fn start<K: ReplicaOwner>(ctx: &ControllerContext, workers: usize) -> anyhow::Result<()> {
    let owners = ctx.factory.informer::<K>();
    owners.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(CONTROLLER_UID_INDEX, controller_uid_indexer());
    let queue = ctx.queue(K::QUEUE);
    let expectations = Arc::new(UidTrackingExpectations::new());
    let manager = Arc::new(ReplicaManager {
        client: ctx.client.clone(),
        owners: owners.clone(),
        pods: pods.clone(),
        queue: queue.clone(),
        expectations: expectations.clone(),
        recorder: ctx.recorder(K::COMPONENT),
        burst: plan::BURST_REPLICAS,
    });
    enqueue_events(&owners, &queue);
    let pod_events = PodEvents {
        owners: owners.clone(),
        queue: queue.clone(),
        expectations: Some(expectations),
        selects: |owner: &K, labels| owner.pod_selector().is_ok_and(|s| s.matches(labels)),
        min_ready_seconds: |owner: &K| owner.min_ready_seconds(),
        ready: podutil::is_ready,
        on_terminating: OnTerminating::DeleteWithOldLabels,
    };
    add_handler(&pods, Arc::new(pod_events));
    run_workers_when_synced(
        ctx,
        K::COMPONENT,
        queue,
        workers,
        &[&owners, &pods],
        manager,
    );
    Ok(())
}

/// The controller for one kind: caches, queue, expectations, events.
struct ReplicaManager<K: ReplicaOwner> {
    client: Client,
    owners: Informer<K>,
    pods: Informer<Pod>,
    queue: Queue<String>,
    expectations: Arc<UidTrackingExpectations>,
    recorder: CoreEventRecorder,
    burst: usize,
}

impl<K: ReplicaOwner> Reconciler for ReplicaManager<K> {
    async fn reconcile(&self, key: &str) -> anyhow::Result<()> {
        self.sync(key).await
    }
}

impl<K: ReplicaOwner> ReplicaManager<K> {
    // ---- sync ----

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(owner) = self.owners.store().get_namespaced(ns, name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let namespace = ns.unwrap_or_default();
        let needs_sync = self.expectations.satisfied(key);
        let selector = match owner.pod_selector() {
            Ok(selector) => selector,
            Err(err) => {
                let message = format!("invalid pod selector: {err}");
                warn_event(
                    &self.recorder,
                    &reference(owner.as_ref()),
                    "InvalidSelector",
                    &message,
                );
                return Err(anyhow!("{key}: {message}"));
            }
        };
        let uid = owner.meta().uid.clone().unwrap_or_default();
        let candidates = self
            .pods
            .store()
            .by_index(CONTROLLER_UID_INDEX, &uid)
            .into_iter()
            .chain(
                self.pods
                    .store()
                    .by_index(CONTROLLER_UID_INDEX, &orphans_of(namespace)),
            )
            .filter(|p| podutil::is_active(p));
        let claimed = claim_pods(&self.client, owner.as_ref(), candidates, |pod| {
            selector.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default()))
        })
        .await?;

        let now = Timestamp::now();
        let manage_error = if needs_sync && owner.meta().deletion_timestamp.is_none() {
            self.manage_replicas(key, &owner, &claimed, now).await
        } else {
            None
        };
        let desired = owner.desired_replicas();
        let status = plan::calculate_status(
            &owner.replica_status(),
            owner
                .template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref()),
            owner.min_ready_seconds(),
            desired,
            &claimed,
            manage_error.as_ref(),
            now,
        );
        let updated = self.write_status(&owner, status).await?;
        if manage_error.is_none() {
            let min_ready = updated.min_ready_seconds();
            if plan::needs_availability_requeue(
                &updated.replica_status(),
                updated.desired_replicas(),
                min_ready,
            ) {
                let delay = Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
                self.queue.add_after(key.to_string(), delay);
            }
        }
        match manage_error {
            Some(err) => Err(anyhow!("{key}: {}", err.message)),
            None => Ok(()),
        }
    }

    /// Pods owned by the owner's siblings (ReplicaSets under the same controller, e.g. one
    /// Deployment's) and its own: the scale-down ranking prefers nodes where they double up.
    fn related_pods(&self, owner: &Arc<K>, claimed: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
        let meta = owner.meta();
        let Some(parent) = controller_ref(meta) else {
            return claimed.to_vec();
        };
        let ns = meta.namespace.as_deref().unwrap_or_default();
        let mut related = Vec::new();
        for sibling in self.owners.store().by_index(NAMESPACE_INDEX, ns) {
            if controller_ref(sibling.meta()).is_some_and(|r| r.uid == parent.uid) {
                let uid = sibling.meta().uid.clone().unwrap_or_default();
                related.extend(self.pods.store().by_index(CONTROLLER_UID_INDEX, &uid));
            }
        }
        related
    }

    /// upstream `manageReplicas`: create or delete pods toward the desired count; the error
    /// (first failure) feeds the ReplicaFailure condition.
    async fn manage_replicas(
        &self,
        key: &str,
        owner: &Arc<K>,
        claimed: &[Arc<Pod>],
        now: Timestamp,
    ) -> Option<ManageError> {
        let related = self.related_pods(owner, claimed);
        match plan::manage_plan(claimed, &related, owner.desired_replicas(), self.burst, now) {
            ManagePlan::Nothing => None,
            ManagePlan::Create(count) => self.create_pods(key, owner, count).await,
            ManagePlan::Delete(victims) => self.delete_pods(key, owner, victims).await,
        }
    }

    async fn create_pods(&self, key: &str, owner: &Arc<K>, count: usize) -> Option<ManageError> {
        let meta = owner.meta();
        let ns = meta.namespace.as_deref().unwrap_or_default();
        let owner_ref = reference(owner.as_ref());
        let pod = match plan::pod_from_template(
            owner.template(),
            meta.name.as_deref().unwrap_or_default(),
            ns,
            new_controller_ref(owner.as_ref()),
        ) {
            Ok(pod) => pod,
            Err(err) => {
                warn_event(
                    &self.recorder,
                    &owner_ref,
                    "FailedCreate",
                    &format!("Error creating: {err}"),
                );
                return Some(ManageError { message: err });
            }
        };
        self.expectations.expect(key, count, []);
        let control = PodControl::new(&self.client, ns, &self.recorder, &owner_ref);
        let made = control.create_pods(count, |_| Ok(pod.clone())).await;
        // Pods that failed or were never tried will not show up in the informer. A create
        // refused because the namespace is going away counts as made, as upstream's.
        for _ in 0..made.failures.len() + made.skipped {
            self.expectations.creation_observed(key);
        }
        made.failures
            .into_iter()
            .next()
            .map(|message| ManageError { message })
    }

    async fn delete_pods(
        &self,
        key: &str,
        owner: &Arc<K>,
        victims: Vec<Arc<Pod>>,
    ) -> Option<ManageError> {
        let ns = owner.meta().namespace.as_deref().unwrap_or_default();
        let owner_ref = reference(owner.as_ref());
        self.expectations
            .expect(key, 0, victims.iter().map(|p| key_of(p.as_ref())));
        let names: Vec<String> = victims
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        let control = PodControl::new(&self.client, ns, &self.recorder, &owner_ref);
        let mut failure = None;
        for (pod, deletion) in victims.iter().zip(control.delete_pods(&names).await) {
            if deletion != Deletion::Deleted {
                // This deletion will not be observed.
                self.expectations
                    .deletion_observed(key, &key_of(pod.as_ref()));
            }
            if let Deletion::Failed(message) = deletion {
                failure.get_or_insert(ManageError { message });
            }
        }
        failure
    }

    /// upstream `updateReplicaSetStatus`: PUT the status subresource when anything changed
    /// (observedGeneration included), retrying once on a fresh read.
    async fn write_status(&self, owner: &Arc<K>, status: ReplicaStatus) -> anyhow::Result<K> {
        let meta = owner.meta();
        if owner.replica_status() == with_generation(&status, meta.generation) {
            return Ok(owner.as_ref().clone());
        }
        let name = meta.name.clone().unwrap_or_default();
        let api: Api<K> = self.client.api(meta.namespace.as_deref());
        let mut current = owner.as_ref().clone();
        for attempt in 0..2 {
            current.set_replica_status(with_generation(&status, current.meta().generation));
            match api.replace_status(&name, &current).await {
                Ok(updated) => return Ok(updated),
                Err(err) if err.is_not_found() => return Ok(current),
                Err(err) if attempt == 0 => {
                    tracing::debug!(owner = %name, error = %err, "status update failed; retrying on a fresh read");
                    current = match api.get(&name).await {
                        Ok(fresh) => fresh,
                        Err(err) if err.is_not_found() => return Ok(current),
                        Err(err) => return Err(err.into()),
                    };
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(current)
    }
}

fn with_generation(status: &ReplicaStatus, generation: Option<i64>) -> ReplicaStatus {
    ReplicaStatus {
        observed_generation: generation,
        ..status.clone()
    }
}
