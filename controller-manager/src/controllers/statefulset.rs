//! The StatefulSet controller (`statefulset-controller`, upstream's `pkg/controller/statefulset`):
//! pods with stable names `<set>-<ordinal>`, stable storage from volumeClaimTemplates, ordered
//! or parallel scaling, and revision-based rolling updates.
//!
//! Implemented, as upstream:
//! - pods `<set>-<ordinal>` from `spec.ordinals.start`, labelled
//!   `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index` and
//!   `controller-revision-hash`, with hostname = pod name and subdomain = `serviceName`;
//!   identity labels and claim volumes restored on pods that lost them;
//! - claims `<template>-<set>-<ordinal>` created before their pod (and for Pending pods missing
//!   them), mounted by it, never created while a claim of that name is being deleted;
//!   `persistentVolumeClaimRetentionPolicy` through controller ownerReferences on the claims
//!   (set for `whenDeleted: Delete`, condemned pod for `whenScaled: Delete`), and pod creation
//!   waits while a stale claim of a previous pod is being collected;
//! - `OrderedReady`: one pod created at a time in ordinal order, each Running, Ready and
//!   Available (minReadySeconds) before the next; deletion in reverse order, one at a time;
//!   `Parallel`: all at once; Failed/Succeeded pods deleted and recreated;
//! - ControllerRevisions `<set>-<hash>` holding the template as a `$patch: replace` patch, with
//!   revision numbers, rollback by renumbering an equal old revision, collision counting,
//!   adoption of orphaned revisions, and history truncated to `revisionHistoryLimit`;
//! - `RollingUpdate` from the highest ordinal, down to the partition, at most `maxUnavailable`
//!   pods down at a time (upstream's MaxUnavailableStatefulSet logic; 1 by default); `OnDelete`;
//! - status: replicas, readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
//!   currentRevision, updateRevision (current := update once a rolling update completes),
//!   observedGeneration and collisionCount, written only when changed; a requeue after
//!   minReadySeconds while ready pods are not yet available;
//! - pod adoption and release through controller references (members only: the name must
//!   parse to this set), after a fresh read of the set;
//! - events SuccessfulCreate / FailedCreate / SuccessfulDelete / FailedDelete /
//!   SuccessfulUpdate / FailedUpdate with upstream's messages ("create Pod web-0 in
//!   StatefulSet web successful", "create Claim www-web-0 Pod web-0 in StatefulSet web
//!   success"); workers from `--concurrent-statefulset-syncs`.
//!
//! Not implemented: the StatefulSet conditions (none exist upstream in GA), the alpha
//! `updatedReadyReplicas`-style fields, upstream's metrics, and claim resizing. Deviations:
//! revision hashes are computed over our canonical JSON (see `history`); pod deletes carry the
//! pod's UID as a precondition so a stale cache never deletes a recreated pod; a selector
//! that cannot be used and a spec that cannot be read get a Warning event and a backoff.

mod history;
mod identity;
mod plan;
mod retention;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use apimachinery::LabelSelector as Selector;
use client::client::{DeleteParams, Patch, PatchParams, Preconditions};
use client::events::CoreEventRecorder;
use client::informer::store::{namespace_indexer, split_key, NAMESPACE_INDEX};
use client::informer::Informer;
use client::{Api, Client};
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use workqueue::Queue;

use crate::framework::claim::{adopt_patch, claim_pods, recheck_owner};
use crate::framework::owners::{OnTerminating, PodEvents};
use crate::framework::{
    add_handler, controller_ref, controller_uid_indexer, enqueue_events, error_message,
    new_controller_ref, orphans_of, reference, run_workers_when_synced, warn_event,
    ControllerContext, Reconciler, CONTROLLER_UID_INDEX,
};
use history::UpdateRevision;
use identity::SetView;
use plan::{Action, Revisions};

const COMPONENT: &str = "statefulset-controller";

/// Upstream gives up on name collisions never; we stop after this many and retry later.
const MAX_COLLISION_PROBES: i32 = 100;

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let sets = ctx.factory.informer::<StatefulSet>();
    sets.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(CONTROLLER_UID_INDEX, controller_uid_indexer());
    let revisions = ctx.factory.informer::<ControllerRevision>();
    revisions.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let claims = ctx.factory.informer::<PersistentVolumeClaim>();
    claims.add_indexer(NAMESPACE_INDEX, namespace_indexer());

    let queue = ctx.queue("statefulset");
    let controller = Arc::new(StatefulSetController {
        client: ctx.client.clone(),
        sets: sets.clone(),
        pods: pods.clone(),
        revisions: revisions.clone(),
        claims: claims.clone(),
        queue: queue.clone(),
        recorder: ctx.recorder(COMPONENT),
    });
    enqueue_events(&sets, &queue);
    let pod_events = PodEvents {
        owners: sets.clone(),
        queue: queue.clone(),
        expectations: None,
        selects: |set: &StatefulSet, labels| set_selector(set).is_ok_and(|s| s.matches(labels)),
        min_ready_seconds: |set: &StatefulSet| {
            set.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        },
        ready: identity::is_running_and_ready,
        on_terminating: OnTerminating::Update,
    };
    add_handler(&pods, Arc::new(pod_events));
    // Acting on half-listed caches would recreate pods and revisions that exist.
    let workers = ctx.options.concurrent_statefulset_syncs;
    run_workers_when_synced(
        ctx,
        COMPONENT,
        queue,
        workers,
        &[&sets, &pods, &revisions, &claims],
        controller,
    );
    Ok(())
}

struct StatefulSetController {
    client: Client,
    sets: Informer<StatefulSet>,
    pods: Informer<Pod>,
    revisions: Informer<ControllerRevision>,
    claims: Informer<PersistentVolumeClaim>,
    queue: Queue<String>,
    recorder: CoreEventRecorder,
}

fn set_selector(set: &StatefulSet) -> Result<Selector, String> {
    let spec = set.spec.as_ref().ok_or("the StatefulSet has no spec")?;
    let value = serde_json::to_value(&spec.selector).map_err(|err| err.to_string())?;
    let selector = Selector::from_label_selector(&value).map_err(|err| err.to_string())?;
    if selector.is_empty() {
        // It would select every pod of the namespace; the apiserver never lets one through.
        return Err("empty selector is not allowed for a StatefulSet".into());
    }
    Ok(selector)
}

impl Reconciler for StatefulSetController {
    async fn reconcile(&self, key: &str) -> anyhow::Result<()> {
        self.sync(key).await
    }
}

impl StatefulSetController {
    // ---- sync ----

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(set) = self.sets.store().get_namespaced(ns, name) else {
            return Ok(());
        };
        let set_ref = reference(set.as_ref());
        let (view, selector) = match SetView::new(&set).and_then(|v| Ok((v, set_selector(&set)?))) {
            Ok(ok) => ok,
            Err(err) => {
                let message = format!("invalid StatefulSet: {err}");
                warn_event(&self.recorder, &set_ref, "InvalidSelector", &message);
                return Err(anyhow!("{key}: {message}"));
            }
        };
        let pods = self.claim_pods(&set, &view, &selector).await?;
        let mut revisions = self.claim_revisions(&set, &view, &selector).await?;
        history::sort(&mut revisions);
        let (current, update, collision_count) = self.resolve_revisions(&set, &revisions).await?;

        let templates =
            history::template_of(&current).and_then(|c| Ok((c, history::template_of(&update)?)));
        let (current_template, update_template) = match templates {
            Ok(t) => t,
            Err(err) => {
                warn_event(&self.recorder, &set_ref, "InvalidRevision", &err);
                return Err(anyhow!("{key}: {err}"));
            }
        };
        let revisions_view = Revisions {
            current: current.metadata.name.as_deref().unwrap_or_default(),
            current_template: &current_template,
            update: update.metadata.name.as_deref().unwrap_or_default(),
            update_template: &update_template,
            collision_count,
        };
        let claims: BTreeMap<String, Arc<PersistentVolumeClaim>> = self
            .claims
            .store()
            .by_index(NAMESPACE_INDEX, view.namespace)
            .into_iter()
            .filter_map(|c| Some((c.metadata.name.clone()?, c)))
            .collect();
        let owner = new_controller_ref(set.as_ref());
        let mut plan = plan::plan(
            &view,
            &owner,
            &revisions_view,
            &pods,
            &claims,
            Timestamp::now(),
        );

        let outcome = self.execute(&view, &set_ref, plan.actions).await;

        plan::complete_rolling_update(&view, &mut plan.status);
        let status_result = if plan::status_changed(set.status.as_ref(), &plan.status) {
            self.write_status(&set, plan.status.clone()).await
        } else {
            Ok(())
        };

        // Live revisions: current, update, and every one a pod still runs.
        let mut live: HashSet<&str> = HashSet::new();
        live.insert(revisions_view.current);
        live.insert(revisions_view.update);
        live.extend(pods.iter().map(|p| identity::pod_revision(p)));
        let truncate_result = self
            .truncate_history(
                view.namespace,
                history::to_truncate(&revisions, &live, view.revision_history_limit),
            )
            .await;

        if view.min_ready_seconds > 0
            && plan.status.ready_replicas != plan.status.available_replicas
        {
            let delay = Duration::from_secs(u64::try_from(view.min_ready_seconds).unwrap_or(0));
            self.queue.add_after(key.to_string(), delay);
        }
        outcome.map_err(|err| anyhow!("{key}: {err}"))?;
        if let Some(why) = plan.blocked {
            return Err(anyhow!("{key}: {why}"));
        }
        status_result?;
        truncate_result
    }

    /// upstream `getPodsForStatefulSet` / `ClaimPods` with the `isMemberOf` filter.
    async fn claim_pods(
        &self,
        set: &Arc<StatefulSet>,
        view: &SetView<'_>,
        selector: &Selector,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let candidates = self
            .pods
            .store()
            .by_index(CONTROLLER_UID_INDEX, view.uid)
            .into_iter()
            .chain(
                self.pods
                    .store()
                    .by_index(CONTROLLER_UID_INDEX, &orphans_of(view.namespace)),
            );
        claim_pods(&self.client, set.as_ref(), candidates, |pod| {
            identity::is_member(view, selector, pod)
        })
        .await
    }

    /// upstream `ListRevisions` + `AdoptOrphanRevisions`: revisions matching the selector that
    /// are ours or orphans; orphans are adopted.
    async fn claim_revisions(
        &self,
        set: &Arc<StatefulSet>,
        view: &SetView<'_>,
        selector: &Selector,
    ) -> anyhow::Result<Vec<Arc<ControllerRevision>>> {
        let mut ours = Vec::new();
        let mut orphans = Vec::new();
        for revision in self
            .revisions
            .store()
            .by_index(NAMESPACE_INDEX, view.namespace)
        {
            let labels = revision.metadata.labels.clone().unwrap_or_default();
            if !selector.matches(&labels) {
                continue;
            }
            match controller_ref(&revision.metadata) {
                Some(r) if r.uid == view.uid => ours.push(revision),
                Some(_) => {}
                None => orphans.push(revision),
            }
        }
        if orphans.is_empty() || view.deleting {
            return Ok(ours);
        }
        recheck_owner(&self.client, set.as_ref())
            .await
            .map_err(|err| anyhow!(err))?;
        let api: Api<ControllerRevision> = self.client.api(Some(view.namespace));
        for orphan in orphans {
            let name = orphan.metadata.name.clone().unwrap_or_default();
            let uid = orphan.metadata.uid.clone().unwrap_or_default();
            let patch = adopt_patch(&new_controller_ref(set.as_ref()), &uid);
            match api
                .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(adopted) => ours.push(Arc::new(adopted)),
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(anyhow!("adopting ControllerRevision {name}: {err}")),
            }
        }
        Ok(ours)
    }

    /// upstream `getStatefulSetRevisions`: (current, update, collision count), creating or
    /// renumbering the update revision as needed.
    async fn resolve_revisions(
        &self,
        set: &Arc<StatefulSet>,
        sorted: &[Arc<ControllerRevision>],
    ) -> anyhow::Result<(Arc<ControllerRevision>, Arc<ControllerRevision>, i32)> {
        let ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let status = set.status.as_ref();
        let mut collision_count = status.and_then(|s| s.collision_count).unwrap_or(0);
        let template = match &set.spec {
            Some(spec) => &spec.template,
            None => return Err(anyhow!("{ns}/{set_name}: the StatefulSet has no spec")),
        };
        let candidate = history::new_revision(
            set,
            template,
            new_controller_ref(set.as_ref()),
            history::next_number(sorted),
            collision_count,
        );
        let api: Api<ControllerRevision> = self.client.api(Some(ns));
        let update = match history::choose_update(sorted, candidate) {
            UpdateRevision::Existing(revision) => revision,
            UpdateRevision::Renumber(revision, number) => {
                let name = revision.metadata.name.clone().unwrap_or_default();
                let patch = json!({"revision": number});
                let renumbered = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(|err| anyhow!("renumbering ControllerRevision {name}: {err}"))?;
                Arc::new(renumbered)
            }
            UpdateRevision::Create(mut revision) => loop {
                let name = revision.metadata.name.clone().unwrap_or_default();
                match api.create(&revision).await {
                    Ok(created) => break Arc::new(created),
                    Err(err) if err.is_already_exists() => {
                        let existing = api.get(&name).await?;
                        if history::equal(&existing, &revision) {
                            break Arc::new(existing);
                        }
                        collision_count += 1;
                        if collision_count
                            > status.and_then(|s| s.collision_count).unwrap_or(0)
                                + MAX_COLLISION_PROBES
                        {
                            return Err(anyhow!(
                                "too many ControllerRevision name collisions for {ns}/{set_name}"
                            ));
                        }
                        history::rehash(&mut revision, set_name, collision_count);
                    }
                    Err(err) => return Err(anyhow!("creating ControllerRevision {name}: {err}")),
                }
            },
        };
        let current =
            history::find_current(sorted, status.and_then(|s| s.current_revision.as_deref()))
                .cloned()
                .unwrap_or_else(|| update.clone());
        Ok((current, update, collision_count))
    }

    /// Runs the plan's writes in order, stopping at the first failure (its message).
    async fn execute(
        &self,
        view: &SetView<'_>,
        set_ref: &ObjectReference,
        actions: Vec<Action>,
    ) -> Result<(), String> {
        let pods: Api<Pod> = self.client.api(Some(view.namespace));
        let claims: Api<PersistentVolumeClaim> = self.client.api(Some(view.namespace));
        let set_name = view.name;
        for action in actions {
            match action {
                Action::CreatePod {
                    pod,
                    claims: missing,
                } => {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    if let Err(err) = self
                        .create_claims(&claims, set_ref, set_name, &pod_name, missing)
                        .await
                    {
                        self.recorder.warning(
                            set_ref,
                            "FailedCreate",
                            &format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {err}"),
                        );
                        return Err(err);
                    }
                    match pods.create(&pod).await {
                        Ok(_) => self.recorder.normal(
                            set_ref,
                            "SuccessfulCreate",
                            &format!("create Pod {pod_name} in StatefulSet {set_name} successful"),
                        ),
                        // The cache is behind; the next sync sees the pod.
                        Err(err) if err.is_already_exists() => {
                            return Err(format!("pod {pod_name} already exists"));
                        }
                        Err(err) => {
                            let message = error_message(&err);
                            self.recorder.warning(
                                set_ref,
                                "FailedCreate",
                                &format!("create Pod {pod_name} in StatefulSet {set_name} failed error: {message}"),
                            );
                            return Err(message);
                        }
                    }
                }
                Action::CreateClaims {
                    pod,
                    claims: missing,
                } => {
                    self.create_claims(&claims, set_ref, set_name, &pod, missing)
                        .await?;
                }
                Action::DeletePod { pod, reason } => {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    tracing::debug!(statefulset = %format!("{}/{set_name}", view.namespace), pod = %pod_name, ?reason, "deleting pod");
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: pod.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match pods.delete(&pod_name, &params).await {
                        Ok(()) => self.recorder.normal(
                            set_ref,
                            "SuccessfulDelete",
                            &format!("delete Pod {pod_name} in StatefulSet {set_name} successful"),
                        ),
                        // Already gone, or a new pod of that name took its place.
                        Err(err) if err.is_not_found() || err.is_conflict() => {}
                        Err(err) => {
                            let message = error_message(&err);
                            self.recorder.warning(
                                set_ref,
                                "FailedDelete",
                                &format!("delete Pod {pod_name} in StatefulSet {set_name} failed error: {message}"),
                            );
                            return Err(message);
                        }
                    }
                }
                Action::UpdatePod { pod } => {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    match pods.replace(&pod_name, &pod).await {
                        Ok(_) => self.recorder.normal(
                            set_ref,
                            "SuccessfulUpdate",
                            &format!("update Pod {pod_name} in StatefulSet {set_name} successful"),
                        ),
                        Err(err) => {
                            let message = error_message(&err);
                            self.recorder.warning(
                                set_ref,
                                "FailedUpdate",
                                &format!("update Pod {pod_name} in StatefulSet {set_name} failed error: {message}"),
                            );
                            return Err(message);
                        }
                    }
                }
                Action::UpdateClaim { pod, claim } => {
                    let claim_name = claim.metadata.name.clone().unwrap_or_default();
                    if let Err(err) = claims.replace(&claim_name, &claim).await {
                        if err.is_not_found() {
                            continue;
                        }
                        let message = format!(
                            "could not update claim {claim_name} for delete policy ownerRefs: {}",
                            error_message(&err)
                        );
                        self.recorder.warning(
                            set_ref,
                            "FailedUpdate",
                            &format!("update Pod {pod} in StatefulSet {set_name} failed error: {message}"),
                        );
                        return Err(message);
                    }
                }
            }
        }
        Ok(())
    }

    /// upstream `createPersistentVolumeClaims`: every missing claim is tried; the error joins
    /// the failures.
    async fn create_claims(
        &self,
        api: &Api<PersistentVolumeClaim>,
        set_ref: &ObjectReference,
        set_name: &str,
        pod_name: &str,
        missing: Vec<PersistentVolumeClaim>,
    ) -> Result<(), String> {
        let mut errors = Vec::new();
        for claim in missing {
            let claim_name = claim.metadata.name.clone().unwrap_or_default();
            match api.create(&claim).await {
                Ok(_) => self.recorder.normal(
                    set_ref,
                    "SuccessfulCreate",
                    &format!("create Claim {claim_name} Pod {pod_name} in StatefulSet {set_name} success"),
                ),
                Err(err) if err.is_already_exists() => {}
                Err(err) => {
                    let message = error_message(&err);
                    self.recorder.warning(
                        set_ref,
                        "FailedCreate",
                        &format!(
                            "create Claim {claim_name} for Pod {pod_name} in StatefulSet {set_name} failed error: {message}"
                        ),
                    );
                    errors.push(format!("failed to create PVC {claim_name}: {message}"));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join(", "))
        }
    }

    async fn truncate_history(&self, namespace: &str, names: Vec<String>) -> anyhow::Result<()> {
        let api: Api<ControllerRevision> = self.client.api(Some(namespace));
        for name in names {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => return Err(anyhow!("deleting ControllerRevision {name}: {err}")),
            }
        }
        Ok(())
    }

    /// upstream `UpdateStatefulSetStatus`: PUT the status subresource, retrying once on a
    /// fresh read after a conflict.
    async fn write_status(
        &self,
        set: &Arc<StatefulSet>,
        status: StatefulSetStatus,
    ) -> anyhow::Result<()> {
        let name = set.metadata.name.clone().unwrap_or_default();
        let api: Api<StatefulSet> = self.client.api(set.metadata.namespace.as_deref());
        let mut current = set.as_ref().clone();
        for attempt in 0..2 {
            current.status = Some(StatefulSetStatus {
                conditions: current.status.as_ref().and_then(|s| s.conditions.clone()),
                ..status.clone()
            });
            match api.replace_status(&name, &current).await {
                Ok(_) => return Ok(()),
                Err(err) if err.is_not_found() => return Ok(()),
                Err(err) if attempt == 0 && err.is_conflict() => {
                    current = match api.get(&name).await {
                        Ok(fresh) => fresh,
                        Err(err) if err.is_not_found() => return Ok(()),
                        Err(err) => return Err(err.into()),
                    };
                }
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}
