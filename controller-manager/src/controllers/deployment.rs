//! The Deployment controller (upstream's `pkg/controller/deployment`, `deployment-controller`):
//! rolls a Deployment's pod template out through ReplicaSets it owns.
//!
//! Implemented, as upstream:
//! - ownership: ReplicaSets matching the selector are adopted, owned ones that stop matching
//!   are released (upstream's `ClaimReplicaSets`, re-checking the deployment before adopting);
//! - the new ReplicaSet `<deployment>-<pod-template-hash>` with the hash label on its selector
//!   and template, found again by template equality ignoring the hash; `collisionCount` bumped
//!   when the name is taken by something else;
//! - annotations: `deployment.kubernetes.io/revision` on ReplicaSets and on the deployment,
//!   `revision-history` when an old template comes back (`kubectl rollout undo`),
//!   `desired-replicas` / `max-replicas`, and the deployment's own annotations copied to the
//!   new ReplicaSet (`kubernetes.io/change-cause` for `kubectl rollout history`);
//! - RollingUpdate (maxSurge rounds up, maxUnavailable down, both zero means one unavailable),
//!   Recreate (waits for old pods to be gone), proportional scaling of every ReplicaSet when a
//!   deployment is scaled mid-rollout, minReadySeconds passed on to ReplicaSets, paused
//!   deployments (scaled, not rolled out; DeploymentPaused / DeploymentResumed),
//!   revisionHistoryLimit cleanup of old empty ReplicaSets;
//! - status: replicas, updatedReplicas, readyReplicas, availableReplicas,
//!   unavailableReplicas, observedGeneration, collisionCount; conditions Available,
//!   Progressing (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
//!   NewReplicaSetAvailable, ProgressDeadlineExceeded) and ReplicaFailure; a stuck rollout is
//!   requeued for its deadline;
//! - events: ScalingReplicaSet ("Scaled up replica set X from 0 to 3"), SelectingAll,
//!   ReplicaSetCreateError.
//!
//! Not implemented: the deprecated `extensions/v1beta1` rollback annotation (kubectl's undo is
//! client-side and works), the TerminatingReplicas status field (feature-gated upstream), and
//! upstream's exact hash values (upstream hashes Go's `spew` dump of the template; we hash its
//! JSON, see [`util::compute_hash`]). The deployment's revision annotation is written with a
//! metadata patch, because our apiserver's status subresource (unlike upstream's deployment
//! status strategy) does not take annotations.
//!
//! Layout: [`plan`] decides (cached objects in, writes out), with the strategies in
//! `rolling`, `recreate` and the conditions in `progress`; this file owns informers, the queue,
//! claiming and executing a plan.

mod plan;
mod progress;
mod recreate;
mod rolling;
#[cfg(test)]
mod tests;
pub mod util;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context as _;
use client::client::{DeleteParams, Patch, PatchParams, Preconditions};
use client::events::CoreEventRecorder;
use client::informer::store::{self, NAMESPACE_INDEX, OWNER_UID_INDEX};
use client::informer::Event;
use client::{Api, Informer};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::{
    controller_ref, enqueue_events, key_of, reference, resolve_controller_ref, run_workers,
    warn_event, when_synced, Cache, ControllerContext,
};
use plan::{plan, Action};
use util::Claim;

const NAME: &str = "deployment-controller";

/// Everything a sync needs, cheap to clone into each worker call.
#[derive(Clone)]
struct Controller {
    client: client::Client,
    recorder: CoreEventRecorder,
    deployments: Informer<Deployment>,
    replica_sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    queue: Queue<String>,
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let queue = ctx.queue("deployment");
    let deployments = ctx.factory.informer::<Deployment>();
    let replica_sets = ctx.factory.informer::<ReplicaSet>();
    let pods = ctx.factory.informer::<Pod>();
    deployments.add_indexer(NAMESPACE_INDEX, store::namespace_indexer());
    replica_sets.add_indexer(NAMESPACE_INDEX, store::namespace_indexer());
    pods.add_indexer(OWNER_UID_INDEX, store::owner_uid_indexer());
    let c = Controller {
        client: ctx.client.clone(),
        recorder: ctx.recorder(NAME),
        deployments,
        replica_sets,
        pods,
        queue: queue.clone(),
    };
    enqueue_events(&c.deployments, &queue);
    {
        let c2 = c.clone();
        c.replica_sets
            .add_event_handler(None, move |event| match event {
                Event::Add(rs) => c2.enqueue_for_replica_set(&rs, true),
                Event::Update { old, new } => {
                    let old_owner = controller_ref(&old.metadata).map(|r| r.uid.clone());
                    let new_owner = controller_ref(&new.metadata).map(|r| r.uid.clone());
                    if old_owner != new_owner {
                        c2.enqueue_for_replica_set(&old, false);
                    }
                    let relabelled = old.metadata.labels != new.metadata.labels;
                    c2.enqueue_for_replica_set(&new, old_owner != new_owner || relabelled);
                }
                Event::Delete(deleted) => c2.enqueue_for_replica_set(deleted.object(), false),
            });
    }
    {
        let c2 = c.clone();
        c.pods.add_event_handler(None, move |event| {
            // Recreate waits for old pods to go away; nothing else needs pod events.
            if let Event::Delete(deleted) = event {
                if let Some(d) = c2.deployment_of_pod(deleted.object()) {
                    if util::is_recreate(&d) {
                        c2.queue.add(key_of(&*d));
                    }
                }
            }
        });
    }
    // Acting on half-listed caches would create ReplicaSets that already exist.
    let workers = ctx.options.concurrent_deployment_syncs;
    let caches: [&dyn Cache; 3] = [&c.deployments, &c.replica_sets, &c.pods];
    let c2 = c.clone();
    when_synced(ctx, &caches, move || {
        run_workers(NAME, queue, workers, move |key: String| {
            let c = c2.clone();
            async move { c.sync(&key).await }
        })
    });
    Ok(())
}

impl Controller {
    /// Queues the deployment controlling `rs`; for an orphan (and `orphans`), every deployment
    /// of its namespace that selects it, so one of them adopts it.
    fn enqueue_for_replica_set(&self, rs: &ReplicaSet, orphans: bool) {
        let ns = rs.metadata.namespace.as_deref();
        if let Some(owner) = controller_ref(&rs.metadata) {
            if let Some(d) = resolve_controller_ref(&self.deployments, ns, owner) {
                self.queue.add(key_of(&*d));
            }
            return;
        }
        if !orphans || rs.metadata.deletion_timestamp.is_some() {
            return;
        }
        let labels = rs.metadata.labels.clone().unwrap_or_default();
        for d in self
            .deployments
            .store()
            .by_index(NAMESPACE_INDEX, ns.unwrap_or_default())
        {
            if util::selector(&d).is_ok_and(|s| !s.is_empty() && s.matches(&labels)) {
                self.queue.add(key_of(&*d));
            }
        }
    }

    fn deployment_of_pod(&self, pod: &Pod) -> Option<Arc<Deployment>> {
        let ns = pod.metadata.namespace.as_deref();
        let rs_ref = controller_ref(&pod.metadata).filter(|r| r.kind == "ReplicaSet")?;
        let rs = self.replica_sets.store().get_namespaced(ns, &rs_ref.name)?;
        resolve_controller_ref(&self.deployments, ns, controller_ref(&rs.metadata)?)
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = store::split_key(key);
        let Some(d) = self.deployments.store().get_namespaced(ns, name) else {
            return Ok(());
        };
        let ns = ns.unwrap_or_default();
        let selector = match util::selector(&d) {
            Ok(s) => s,
            Err(err) => {
                let msg = format!("deployment {key} has invalid label selector: {err}");
                warn_event(&self.recorder, &reference(&*d), "InvalidSelector", &msg);
                anyhow::bail!(msg);
            }
        };
        // An empty selector would claim every ReplicaSet: the plan only warns about it.
        let owned = if selector.is_empty() {
            Vec::new()
        } else {
            self.claim_replica_sets(&d, &selector, ns).await?
        };
        let mut pods = Vec::new();
        for rs in &owned {
            if let Some(uid) = &rs.metadata.uid {
                pods.extend(self.pods.store().by_index(OWNER_UID_INDEX, uid));
            }
        }
        let now = Timestamp::now();
        // Times travel at second precision; planning with the same keeps comparisons stable.
        let now = Timestamp::from_second(now.as_second()).unwrap_or(now);
        let plan = plan(&d, &owned, &pods, now);
        self.execute(&d, plan).await
    }

    /// Adopts and releases ReplicaSets as the selector says and returns the owned ones.
    async fn claim_replica_sets(
        &self,
        d: &Arc<Deployment>,
        selector: &apimachinery::LabelSelector,
        ns: &str,
    ) -> anyhow::Result<Vec<Arc<ReplicaSet>>> {
        let api: Api<ReplicaSet> = self.client.api(Some(ns));
        let mut owned = Vec::new();
        let mut rechecked = false;
        for rs in self.replica_sets.store().by_index(NAMESPACE_INDEX, ns) {
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            match util::claim(d, selector, &rs) {
                Claim::Keep => owned.push(rs),
                Claim::Ignore => {}
                Claim::Adopt => {
                    // The cache may be stale: adopt only for a live deployment with this UID.
                    if !rechecked {
                        let dapi: Api<Deployment> = self.client.api(Some(ns));
                        let fresh = dapi
                            .get(d.metadata.name.as_deref().unwrap_or_default())
                            .await
                            .context("rechecking the deployment before adoption")?;
                        if fresh.metadata.uid != d.metadata.uid
                            || fresh.metadata.deletion_timestamp.is_some()
                        {
                            anyhow::bail!("deployment {ns}/{} changed; not adopting", rs_name);
                        }
                        rechecked = true;
                    }
                    let mut updated = (*rs).clone();
                    updated
                        .metadata
                        .owner_references
                        .get_or_insert_with(Vec::new)
                        .push(crate::framework::new_controller_ref(&**d));
                    match api.replace(&rs_name, &updated).await {
                        Ok(adopted) => owned.push(Arc::new(adopted)),
                        Err(err) if err.is_not_found() => {}
                        Err(err) => return Err(err).context(format!("adopting {rs_name}")),
                    }
                }
                Claim::Release => {
                    let mut updated = (*rs).clone();
                    if let Some(refs) = &mut updated.metadata.owner_references {
                        refs.retain(|r| Some(&r.uid) != d.metadata.uid.as_ref());
                    }
                    match api.replace(&rs_name, &updated).await {
                        Ok(_) => {}
                        Err(err) if err.is_not_found() => {}
                        Err(err) => return Err(err).context(format!("releasing {rs_name}")),
                    }
                }
            }
        }
        Ok(owned)
    }

    async fn execute(&self, d: &Arc<Deployment>, plan: plan::Plan) -> anyhow::Result<()> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let name = d.metadata.name.clone().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = self.client.api(Some(&ns));
        let d_api: Api<Deployment> = self.client.api(Some(&ns));
        let d_ref = reference(&**d);
        // A ReplicaSet written twice in one plan needs the resourceVersion of the first write.
        let mut versions: HashMap<String, Option<String>> = HashMap::new();
        for action in plan.actions {
            match action {
                Action::Create { rs, event } => {
                    let rs_name = rs.metadata.name.clone().unwrap_or_default();
                    match rs_api.create(&rs).await {
                        Ok(created) => {
                            versions.insert(rs_name, created.metadata.resource_version);
                            if let Some(msg) = event {
                                self.recorder.normal(&d_ref, "ScalingReplicaSet", &msg);
                            }
                        }
                        Err(err) if err.is_already_exists() => {
                            return self.on_name_taken(d, &rs, &d_api).await;
                        }
                        Err(err) => {
                            let msg =
                                format!("Failed to create new replica set {rs_name:?}: {err}");
                            warn_event(&self.recorder, &d_ref, util::FAILED_RS_CREATE_REASON, &msg);
                            if util::progress_deadline(d).is_some() {
                                let mut updated = (**d).clone();
                                let status = updated.status.get_or_insert_with(Default::default);
                                util::set_condition(
                                    status,
                                    util::new_condition(
                                        util::PROGRESSING,
                                        "False",
                                        util::FAILED_RS_CREATE_REASON,
                                        msg.clone(),
                                        Timestamp::now(),
                                    ),
                                );
                                let _ = d_api.replace_status(&name, &updated).await;
                            }
                            return Err(err).context(msg);
                        }
                    }
                }
                Action::Update { mut rs, event } => {
                    let rs_name = rs.metadata.name.clone().unwrap_or_default();
                    if let Some(rv) = versions.get(&rs_name) {
                        rs.metadata.resource_version = rv.clone();
                    }
                    let updated = rs_api
                        .replace(&rs_name, &rs)
                        .await
                        .with_context(|| format!("updating replica set {rs_name}"))?;
                    versions.insert(rs_name, updated.metadata.resource_version);
                    if let Some(msg) = event {
                        self.recorder.normal(&d_ref, "ScalingReplicaSet", &msg);
                    }
                }
                Action::Delete { name: rs_name, uid } => {
                    let params = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid,
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match rs_api.delete(&rs_name, &params).await {
                        Ok(()) => {}
                        Err(err) if err.is_not_found() || err.is_conflict() => {}
                        Err(err) => {
                            return Err(err).context(format!("deleting old replica set {rs_name}"))
                        }
                    }
                }
                Action::Warning { reason, message } => {
                    warn_event(&self.recorder, &d_ref, &reason, &message);
                }
            }
        }
        let mut current = (**d).clone();
        if let Some(revision) = plan.revision {
            let patch = serde_json::json!({
                "metadata": {"annotations": {util::REVISION_ANNOTATION: revision}}
            });
            current = d_api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .context("setting the deployment's revision")?;
        }
        if let Some(status) = plan.status {
            current.status = Some(status);
            d_api
                .replace_status(&name, &current)
                .await
                .context("updating the deployment's status")?;
        }
        if let Some(after) = plan.requeue_after {
            self.queue.add_after(key_of(&**d), after);
        }
        Ok(())
    }

    /// The new ReplicaSet's name is taken: by ours with this template (a stale cache; the
    /// informer will show it), or by something else, which a new `collisionCount` steers
    /// around.
    async fn on_name_taken(
        &self,
        d: &Arc<Deployment>,
        rs: &ReplicaSet,
        d_api: &Api<Deployment>,
    ) -> anyhow::Result<()> {
        let ns = d.metadata.namespace.clone().unwrap_or_default();
        let rs_name = rs.metadata.name.clone().unwrap_or_default();
        let rs_api: Api<ReplicaSet> = self.client.api(Some(&ns));
        let existing = rs_api.get_opt(&rs_name).await?;
        if let Some(existing) = existing {
            let ours =
                controller_ref(&existing.metadata).map(|r| &r.uid) == d.metadata.uid.as_ref();
            let same = match (
                existing.spec.as_ref().and_then(|s| s.template.as_ref()),
                d.spec.as_ref().map(|s| &s.template),
            ) {
                (Some(a), Some(b)) => util::equal_ignore_hash(a, b),
                _ => false,
            };
            if ours && same {
                self.queue.add(key_of(&**d));
                return Ok(());
            }
        }
        let mut updated = (**d).clone();
        let status = updated.status.get_or_insert_with(Default::default);
        status.collision_count = Some(status.collision_count.unwrap_or(0) + 1);
        d_api
            .replace_status(d.metadata.name.as_deref().unwrap_or_default(), &updated)
            .await
            .context("bumping collisionCount")?;
        tracing::info!(deployment = %key_of(&**d), "found a hash collision; bumped collisionCount");
        anyhow::bail!("replica set {rs_name} already exists with another template")
    }
}
