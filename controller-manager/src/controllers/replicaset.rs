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

mod expectations;
mod kind;
mod plan;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use client::client::{DeleteParams, Patch, PatchParams};
use client::events::CoreEventRecorder;
use client::informer::store::{split_key, NAMESPACE_INDEX};
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::{
    controller_ref, key_of, new_controller_ref, reference, run_workers, stop_queue_on_shutdown,
    warn_event, ControllerContext,
};
use expectations::PodExpectations;
use kind::{ReplicaOwner, ReplicaStatus};
use plan::{Claim, ManageError, ManagePlan};

/// The pod index this controller reads: the controller owner's UID, or `<namespace>/` +
/// [`ORPHAN`] for pods without a controller (upstream's `PodControllerUIDIndex`).
const POD_CONTROLLER_INDEX: &str = "replicaset.controller/controllerUID";
const ORPHAN: &str = "<orphan>";

fn orphan_key(namespace: &str) -> String {
    format!("{namespace}/{ORPHAN}")
}

fn pod_controller_index(pod: &Pod) -> Vec<String> {
    match controller_ref(&pod.metadata) {
        Some(r) => vec![r.uid.clone()],
        None => vec![orphan_key(pod.metadata.namespace.as_deref().unwrap_or(""))],
    }
}

pub fn start_replicaset(ctx: &ControllerContext) -> anyhow::Result<()> {
    start::<ReplicaSet>(ctx, ctx.options.concurrent_replicaset_syncs)
}

pub fn start_replication_controller(ctx: &ControllerContext) -> anyhow::Result<()> {
    start::<ReplicationController>(ctx, ctx.options.concurrent_rc_syncs)
}

fn start<K: ReplicaOwner>(ctx: &ControllerContext, workers: usize) -> anyhow::Result<()> {
    let owners = ctx.factory.informer::<K>();
    owners.add_indexer(
        NAMESPACE_INDEX,
        client::informer::store::namespace_indexer(),
    );
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(POD_CONTROLLER_INDEX, Arc::new(pod_controller_index));
    let queue: Queue<String> = Queue::new(K::QUEUE);
    stop_queue_on_shutdown(ctx, queue.clone());
    let manager = Arc::new(ReplicaManager {
        client: ctx.client.clone(),
        owners: owners.clone(),
        pods: pods.clone(),
        queue: queue.clone(),
        expectations: PodExpectations::new(),
        recorder: ctx.recorder(K::COMPONENT),
        burst: plan::BURST_REPLICAS,
    });
    {
        let q = queue.clone();
        owners.add_event_handler(None, move |event: Event<K>| {
            let obj = match &event {
                Event::Add(o) | Event::Update { new: o, .. } => o.clone(),
                Event::Delete(d) => d.object().clone(),
            };
            q.add(key_of(obj.as_ref()));
        });
    }
    {
        let m = manager.clone();
        pods.add_event_handler(None, move |event: Event<Pod>| match event {
            Event::Add(pod) => m.pod_added(&pod),
            Event::Update { old, new } => m.pod_updated(&old, &new),
            Event::Delete(deleted) => m.pod_deleted(deleted.object()),
        });
    }
    // Acting on a half-listed pod cache would create pods that already exist (upstream's
    // WaitForNamedCacheSync).
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        let synced = async { owners.wait_synced().await && pods.wait_synced().await };
        if !crate::framework::wait_for_caches(stop, synced).await {
            return;
        }
        run_workers(K::COMPONENT, queue, workers, move |key: String| {
            let m = manager.clone();
            async move { m.sync(&key).await }
        });
    });
    Ok(())
}

/// The controller for one kind: caches, queue, expectations, events.
struct ReplicaManager<K: ReplicaOwner> {
    client: Client,
    owners: Informer<K>,
    pods: Informer<Pod>,
    queue: Queue<String>,
    expectations: PodExpectations,
    recorder: CoreEventRecorder,
    burst: usize,
}

/// The message of an error as upstream's `err.Error()` gives it for API errors (the Status
/// message alone).
fn error_message(err: &client::Error) -> String {
    match err {
        client::Error::Api(api) => api.message.clone(),
        other => other.to_string(),
    }
}

/// Creates in a namespace being deleted fail until it is gone; that is not a failure to report.
fn is_namespace_terminating(err: &client::Error) -> bool {
    let client::Error::Api(api) = err else {
        return false;
    };
    let by_cause = api
        .status
        .as_ref()
        .and_then(|s| s.details.as_ref())
        .and_then(|d| d.causes.as_ref())
        .is_some_and(|causes| {
            causes
                .iter()
                .any(|c| c.reason.as_deref() == Some("NamespaceTerminating"))
        });
    by_cause || (api.code == 403 && api.message.contains("because it is being terminated"))
}

fn is_invalid(err: &client::Error) -> bool {
    matches!(err, client::Error::Api(api) if api.code == 422)
}

impl<K: ReplicaOwner> ReplicaManager<K> {
    // ---- pod event handlers: lower expectations and enqueue owners ----

    /// The owner a controller reference points at, if it is of our kind and still the same
    /// object (same UID).
    fn resolve(
        &self,
        namespace: Option<&str>,
        r: &k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference,
    ) -> Option<Arc<K>> {
        if r.kind != K::kind(&()) {
            return None;
        }
        let owner = self.owners.store().get_namespaced(namespace, &r.name)?;
        (owner.meta().uid.as_ref() == Some(&r.uid)).then_some(owner)
    }

    /// Owners in the pod's namespace whose selector matches it (candidates to adopt it).
    fn owners_matching(&self, pod: &Pod) -> Vec<Arc<K>> {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return Vec::new();
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        self.owners
            .store()
            .by_index(NAMESPACE_INDEX, ns)
            .into_iter()
            .filter(|o| o.pod_selector().is_ok_and(|s| s.matches(&labels)))
            .collect()
    }

    fn pod_added(&self, pod: &Arc<Pod>) {
        if pod.metadata.deletion_timestamp.is_some() {
            // Restarted with a pod already terminating: count it as deleted at once.
            self.pod_deleted(pod);
            return;
        }
        let ns = pod.metadata.namespace.as_deref();
        if let Some(r) = controller_ref(&pod.metadata) {
            if let Some(owner) = self.resolve(ns, r) {
                let key = key_of(owner.as_ref());
                self.expectations.creation_observed(&key);
                self.queue.add(key);
            }
            return;
        }
        for owner in self.owners_matching(pod) {
            self.queue.add(key_of(owner.as_ref()));
        }
    }

    fn pod_updated(&self, old: &Arc<Pod>, new: &Arc<Pod>) {
        if old.metadata.resource_version == new.metadata.resource_version {
            return;
        }
        let labels_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() {
            // Graceful deletion started: the owner may create a replacement now.
            self.pod_deleted(new);
            if labels_changed {
                self.pod_deleted(old);
            }
            return;
        }
        let ns = new.metadata.namespace.as_deref();
        let (old_ref, new_ref) = (controller_ref(&old.metadata), controller_ref(&new.metadata));
        let ref_changed = old_ref != new_ref;
        if ref_changed {
            if let Some(owner) = old_ref.and_then(|r| self.resolve(ns, r)) {
                self.queue.add(key_of(owner.as_ref()));
            }
        }
        if let Some(r) = new_ref {
            if let Some(owner) = self.resolve(ns, r) {
                let key = key_of(owner.as_ref());
                let min_ready = owner.min_ready_seconds();
                if min_ready > 0 && !plan::is_ready(old) && plan::is_ready(new) {
                    // Available only once Ready for minReadySeconds: look again then.
                    let delay = Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
                    self.queue.add_after(key.clone(), delay);
                }
                self.queue.add(key);
            }
            return;
        }
        if labels_changed || ref_changed {
            for owner in self.owners_matching(new) {
                self.queue.add(key_of(owner.as_ref()));
            }
        }
    }

    fn pod_deleted(&self, pod: &Arc<Pod>) {
        let Some(r) = controller_ref(&pod.metadata) else {
            return;
        };
        if let Some(owner) = self.resolve(pod.metadata.namespace.as_deref(), r) {
            let key = key_of(owner.as_ref());
            self.expectations
                .deletion_observed(&key, &key_of(pod.as_ref()));
            self.queue.add(key);
        }
    }

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
        let candidates: Vec<Arc<Pod>> = self
            .pods
            .store()
            .by_index(POD_CONTROLLER_INDEX, &uid)
            .into_iter()
            .chain(
                self.pods
                    .store()
                    .by_index(POD_CONTROLLER_INDEX, &orphan_key(namespace)),
            )
            .filter(|p| plan::is_active(p))
            .collect();
        let claimed = self.claim_pods(&owner, &selector, candidates).await?;

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

    /// upstream `ClaimPods`: the active pods this owner controls after adopting and
    /// releasing; any failed adoption or release fails the sync (after trying them all).
    async fn claim_pods(
        &self,
        owner: &Arc<K>,
        selector: &apimachinery::LabelSelector,
        candidates: Vec<Arc<Pod>>,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let meta = owner.meta();
        let namespace = meta.namespace.as_deref().unwrap_or_default();
        let api: Api<Pod> = self.client.api(Some(namespace));
        let owner_uid = meta.uid.clone().unwrap_or_default();
        let mut claimed = Vec::new();
        let mut errors = Vec::new();
        // The fresh read of the owner is done once per sync, and only when adopting.
        let mut can_adopt: Option<Result<(), String>> = None;
        for pod in candidates {
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let pod_uid = pod.metadata.uid.clone().unwrap_or_default();
            match plan::claim(&pod, meta, selector) {
                Claim::Keep => claimed.push(pod),
                Claim::Ignore => {}
                Claim::Adopt => {
                    if can_adopt.is_none() {
                        can_adopt = Some(self.recheck_owner(owner).await);
                    }
                    if let Some(Err(err)) = &can_adopt {
                        errors.push(format!("cannot adopt pod {pod_name}: {err}"));
                        continue;
                    }
                    let patch = plan::adopt_patch(&new_controller_ref(owner.as_ref()), &pod_uid);
                    match api
                        .patch(&pod_name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await
                    {
                        Ok(adopted) => claimed.push(Arc::new(adopted)),
                        // Gone, or replaced by a pod of the same name (the UID precondition).
                        Err(err) if err.is_not_found() || is_invalid(&err) => {}
                        Err(err) => errors.push(format!("adopting pod {pod_name}: {err}")),
                    }
                }
                Claim::Release => {
                    let patch = plan::release_patch(&owner_uid, &pod_uid);
                    match api
                        .patch(&pod_name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(err) if err.is_not_found() || is_invalid(&err) => {}
                        Err(err) => errors.push(format!("releasing pod {pod_name}: {err}")),
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(claimed)
        } else {
            Err(anyhow!("{}", errors.join("; ")))
        }
    }

    /// upstream `RecheckDeletionTimestamp`: the cached owner may be stale; adopt only when the
    /// live one is the same object and not being deleted.
    async fn recheck_owner(&self, owner: &Arc<K>) -> Result<(), String> {
        let meta = owner.meta();
        let (ns, name) = (
            meta.namespace.as_deref().unwrap_or_default(),
            meta.name.as_deref().unwrap_or_default(),
        );
        let api: Api<K> = self.client.api(Some(ns));
        let fresh = api.get(name).await.map_err(|err| err.to_string())?;
        let fresh_meta = fresh.meta();
        if fresh_meta.uid != meta.uid {
            return Err(format!(
                "original {} {ns}/{name} is gone: got uid {}, wanted {}",
                K::kind(&()),
                fresh_meta.uid.as_deref().unwrap_or(""),
                meta.uid.as_deref().unwrap_or("")
            ));
        }
        if let Some(ts) = &fresh_meta.deletion_timestamp {
            return Err(format!("{ns}/{name} has just been deleted at {}", ts.0));
        }
        Ok(())
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
                related.extend(self.pods.store().by_index(POD_CONTROLLER_INDEX, &uid));
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
        self.expectations.expect_creations(key, count);
        let api: Api<Pod> = self.client.api(Some(ns));
        let (made, failure) = plan::slow_start(count, plan::SLOW_START_INITIAL_BATCH, || async {
            match api.create(&pod).await {
                Ok(created) => {
                    let name = created.metadata.name.unwrap_or_default();
                    self.recorder.normal(
                        &owner_ref,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                    Ok(())
                }
                // The namespace is going away: nothing to report (upstream counts it as made).
                Err(err) if is_namespace_terminating(&err) => Ok(()),
                Err(err) => {
                    let message = error_message(&err);
                    warn_event(
                        &self.recorder,
                        &owner_ref,
                        "FailedCreate",
                        &format!("Error creating: {message}"),
                    );
                    Err(ManageError { message })
                }
            }
        })
        .await;
        // Pods that failed or were never tried will not show up in the informer.
        for _ in made..count {
            self.expectations.creation_observed(key);
        }
        failure
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
            .expect_deletions(key, victims.iter().map(|p| key_of(p.as_ref())));
        let api: Api<Pod> = self.client.api(Some(ns));
        let params = DeleteParams::default();
        let results = futures::future::join_all(victims.iter().map(|pod| {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api = &api;
            let params = &params;
            async move { (name.clone(), api.delete(&name, params).await) }
        }))
        .await;
        let mut failure = None;
        for (pod, (name, result)) in victims.iter().zip(results) {
            match result {
                Ok(()) => self.recorder.normal(
                    &owner_ref,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                ),
                Err(err) => {
                    // This deletion will not be observed.
                    self.expectations
                        .deletion_observed(key, &key_of(pod.as_ref()));
                    if !err.is_not_found() {
                        let message = error_message(&err);
                        warn_event(
                            &self.recorder,
                            &owner_ref,
                            "FailedDelete",
                            &format!("Error deleting: {message}"),
                        );
                        failure.get_or_insert(ManageError { message });
                    }
                }
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
