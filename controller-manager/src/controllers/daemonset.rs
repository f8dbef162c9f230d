//! The DaemonSet controller (`daemonset-controller`), as upstream's `pkg/controller/daemon`: one
//! pod of each DaemonSet on every node it fits, placed through the scheduler.
//!
//! Implemented, as upstream:
//! - node eligibility (`NodeShouldRunDaemonPod`): the template's nodeName, nodeSelector and
//!   required node affinity, and NoSchedule/NoExecute taints against the pod's tolerations plus
//!   the daemon tolerations upstream adds to every daemon pod (not-ready and unreachable
//!   NoExecute without tolerationSeconds; disk-, memory-, pid-pressure and unschedulable
//!   NoSchedule; network-unavailable for hostNetwork pods). A NoSchedule taint only keeps new
//!   pods off; a NoExecute one added later evicts the pod;
//! - pods are created unbound with a required node affinity `matchFields metadata.name In
//!   [<node>]` (replacing the required terms) for the scheduler to honour, generateName
//!   `<daemonset>-`, labels `controller-revision-hash` and `pod-template-generation`; pods map to
//!   nodes by `spec.nodeName` or that affinity; unbound pods of deleted nodes are deleted;
//! - pods belong to a DaemonSet through their controller ownerReference; matching orphans are
//!   adopted (after a fresh GET confirms the DaemonSet) and non-matching ones released;
//! - ControllerRevisions for the template history (see `history`), pruned to
//!   `revisionHistoryLimit`, with `status.collisionCount` bumped on a name collision;
//! - updateStrategy RollingUpdate (maxUnavailable / maxSurge, numbers or percentages of the
//!   desired count, rounded up) and OnDelete;
//! - failed daemon pods are deleted (Warning `FailedDaemonPod`) under a per-node backoff,
//!   succeeded ones at once (`SucceededDaemonPod`); extra pods on a node are trimmed to the
//!   oldest;
//! - expectations against over-creation, slow-start batches capped at 250 pods per sync;
//!   events SuccessfulCreate / FailedCreate / SuccessfulDelete / FailedDelete; a selector that
//!   selects everything gets upstream's `SelectingAll` Warning;
//! - status (desired/current/misscheduled/ready/updated/available/unavailable and
//!   observedGeneration), written only when it changed, with a requeue after minReadySeconds
//!   while ready pods are not yet available; workers from `--concurrent-daemonset-syncs`.
//!
//! Not implemented: adoption of orphaned ControllerRevisions and deduplication of equal ones;
//! status conditions (upstream sets none either). Beyond upstream, which only logs: an
//! unparsable selector gets a Warning `InvalidSelector` and unparsable maxSurge/maxUnavailable
//! a Warning `InvalidUpdateStrategy`, both with a backoff. `pod-template-generation` comes from the
//! `deprecated.daemonset.template.generation` annotation when present and falls back to
//! `metadata.generation`, because our apiserver does not maintain that annotation.

mod eligibility;
mod history;
mod plan;
mod tracking;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use apimachinery::LabelSelector as Selector;
use client::client::DeleteParams;
use client::events::CoreEventRecorder;
use client::informer::store::{namespace_indexer, split_key, NAMESPACE_INDEX};
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::claim::claim_pods;
use crate::framework::expectations::UidTrackingExpectations;
use crate::framework::owners::{enqueue_controller_of, OnTerminating, PodEvents};
use crate::framework::podcontrol::{self, Deletion, PodControl};
use crate::framework::{
    add_handler, controller_ref, enqueue_events, key_of, latest, new_controller_ref, podutil,
    reference, run_workers_when_synced, warn_event, ControllerContext, EventHandler, Reconciler,
};
use eligibility::{add_daemon_tolerations, node_should_run, pin_to_node};
use history::Current;
use plan::{Daemon, REVISION_HASH_LABEL, TEMPLATE_GENERATION_LABEL};
use tracking::FailedPodBackoff;

const COMPONENT: &str = "daemonset-controller";
/// upstream `BurstReplicas` of this controller: creations and deletions per sync.
const BURST_REPLICAS: usize = 250;
/// The annotation upstream's apiserver keeps with the template generation.
const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let daemonsets = ctx.factory.informer::<DaemonSet>();
    daemonsets.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let nodes = ctx.factory.informer::<Node>();
    let revisions = ctx.factory.informer::<ControllerRevision>();
    revisions.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let queue = ctx.queue("daemonset");
    let expectations = Arc::new(UidTrackingExpectations::new());
    let controller = Arc::new(DaemonSetsController {
        client: ctx.client.clone(),
        daemonsets: daemonsets.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        revisions: revisions.clone(),
        queue: queue.clone(),
        expectations: expectations.clone(),
        backoff: FailedPodBackoff::default(),
        recorder: ctx.recorder(COMPONENT),
    });
    enqueue_events(&daemonsets, &queue);
    let pod_events = PodEvents {
        owners: daemonsets.clone(),
        queue: queue.clone(),
        expectations: Some(expectations),
        selects: |ds: &DaemonSet, labels| matches!(pod_selector(ds), Ok(Some(s)) if s.matches(labels)),
        min_ready_seconds: |ds: &DaemonSet| {
            ds.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        },
        ready: podutil::is_ready,
        on_terminating: OnTerminating::Delete,
    };
    add_handler(&pods, Arc::new(pod_events));
    add_handler(&nodes, controller.clone());
    {
        let (owners, q) = (daemonsets.clone(), queue.clone());
        revisions.add_event_handler(None, move |event: Event<ControllerRevision>| {
            enqueue_controller_of(&owners, &q, &latest(&event).metadata);
        });
    }
    // Acting on half-listed caches would create pods that already exist.
    let workers = ctx.options.concurrent_daemonset_syncs;
    run_workers_when_synced(
        ctx,
        COMPONENT,
        queue,
        workers,
        &[&daemonsets, &pods, &nodes, &revisions],
        controller,
    );
    Ok(())
}

struct DaemonSetsController {
    client: Client,
    daemonsets: Informer<DaemonSet>,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    revisions: Informer<ControllerRevision>,
    queue: Queue<String>,
    expectations: Arc<UidTrackingExpectations>,
    backoff: FailedPodBackoff,
    recorder: CoreEventRecorder,
}

/// The DaemonSet's pod selector; `Ok(None)` for one that selects everything.
fn pod_selector(ds: &DaemonSet) -> Result<Option<Selector>, String> {
    let spec = ds.spec.as_ref().ok_or("the DaemonSet has no spec")?;
    let value = serde_json::to_value(&spec.selector).map_err(|err| err.to_string())?;
    let selector = Selector::from_label_selector(&value).map_err(|err| err.to_string())?;
    Ok((!selector.is_empty()).then_some(selector))
}

/// The template generation pods are labelled with (see the module doc).
fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|v| v.parse().ok())
        .or(ds.metadata.generation)
}

/// upstream `CreatePodTemplate` + `GetPodFromTemplate` + the node affinity: the pod to create
/// for `node`.
fn daemon_pod(ds: &DaemonSet, hash: &str, node: &str) -> Result<Pod, String> {
    let spec = ds.spec.as_ref().ok_or("the DaemonSet has no spec")?;
    let mut pod = podcontrol::pod_from_template(
        &spec.template,
        format!("{}-", ds.metadata.name.as_deref().unwrap_or("")),
        ds.metadata.namespace.clone(),
        new_controller_ref(ds),
    )?;
    if let Some(pod_spec) = pod.spec.as_mut() {
        add_daemon_tolerations(pod_spec);
        pod_spec.affinity = Some(pin_to_node(pod_spec.affinity.take(), node));
    }
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = template_generation(ds) {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), generation.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_HASH_LABEL.into(), hash.to_string());
    }
    Ok(pod)
}

/// upstream `addNode` / `updateNode` / `deleteNode`.
impl EventHandler<Node> for DaemonSetsController {
    fn on_add(&self, node: &Arc<Node>) {
        self.node_changed(None, Some(node));
    }

    fn on_update(&self, old: &Arc<Node>, new: &Arc<Node>) {
        self.node_changed(Some(old), Some(new));
    }

    fn on_delete(&self, node: &Arc<Node>) {
        self.node_changed(Some(node), None);
    }
}

impl Reconciler for DaemonSetsController {
    async fn reconcile(&self, key: &str) -> anyhow::Result<()> {
        self.sync(key).await
    }
}

impl DaemonSetsController {
    /// upstream `addNode` / `updateNode` / `deleteNode`: DaemonSets whose verdict on the node
    /// changed (or that may have pods there) are synced.
    fn node_changed(&self, old: Option<&Arc<Node>>, new: Option<&Arc<Node>>) {
        for ds in self.daemonsets.store().list() {
            let Some(spec) = ds.spec.as_ref() else {
                continue;
            };
            let fit = |n: Option<&Arc<Node>>| n.map(|n| node_should_run(&spec.template, n));
            let enqueue = match (old, new) {
                (None, Some(_)) => fit(new).is_some_and(|f| f.should_run),
                (Some(_), None) => true,
                _ => fit(old) != fit(new),
            };
            if enqueue {
                self.queue.add(key_of(ds.as_ref()));
            }
        }
    }
}

impl DaemonSetsController {
    // ---- sync ----

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(ds) = self.daemonsets.store().get_namespaced(ns, name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let ds_ref = reference(ds.as_ref());
        let selector = match pod_selector(&ds) {
            Ok(Some(selector)) => selector,
            Ok(None) => {
                // upstream answers with an event and no retry: only an edit can fix it.
                warn_event(
                    &self.recorder,
                    &ds_ref,
                    "SelectingAll",
                    "This daemon set is selecting all pods. A non-empty selector is required.",
                );
                return Ok(());
            }
            Err(err) => {
                let message = format!("invalid pod selector: {err}");
                warn_event(&self.recorder, &ds_ref, "InvalidSelector", &message);
                return Err(anyhow!("{key}: {message}"));
            }
        };
        // A DaemonSet being deleted may have lost its history already: leave it alone.
        if ds.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let (hash, old_revisions) = self.construct_history(&ds).await?;
        let pods = self.claim_pods(&ds, &selector).await?;
        let mut nodes = self.nodes.store().list();
        nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        let spec = ds.spec.clone().unwrap_or_default();
        let daemon = Daemon {
            template: &spec.template,
            hash: &hash,
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0),
            surge: plan::allows_surge(&ds),
        };
        let by_node = plan::pods_by_node(&pods);

        if !self.expectations.satisfied(key) {
            // Only status; observedGeneration stays, as this generation was not acted on.
            return self
                .update_status(&ds, &daemon, &nodes, &by_node, false)
                .await;
        }
        let result = self
            .update_daemon_set(key, &ds, &daemon, &nodes, &by_node, &pods, &old_revisions)
            .await;
        let status = self
            .update_status(&ds, &daemon, &nodes, &by_node, true)
            .await;
        result.and(status)
    }

    /// upstream `updateDaemonSet`: manage, then (if nothing is in flight) the rolling update,
    /// then history cleanup.
    #[allow(clippy::too_many_arguments)]
    async fn update_daemon_set(
        &self,
        key: &str,
        ds: &Arc<DaemonSet>,
        daemon: &Daemon<'_>,
        nodes: &[Arc<Node>],
        by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
        pods: &[Arc<Pod>],
        old_revisions: &[Arc<ControllerRevision>],
    ) -> anyhow::Result<()> {
        let now = Timestamp::now();
        let manage = plan::manage_plan(daemon, nodes, by_node, now);
        tracing::debug!(daemonset = %key, nodes = nodes.len(), plan = ?manage, "manage");
        let mut delete = manage.delete.clone();
        let ds_ref = reference(ds.as_ref());
        let observed = ds
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0);
        let uid = ds.metadata.uid.as_deref().unwrap_or("");
        let instant = tokio::time::Instant::now();
        self.backoff.gc(instant);
        for failed in &manage.failed {
            // The kubelet may keep rejecting this pod: do not hot-loop on it.
            let backoff_key = format!("{uid}/{observed}/{}", failed.node);
            if let Some(delay) = self.backoff.in_backoff(&backoff_key, instant) {
                self.queue.add_after(key.to_string(), delay);
                continue;
            }
            self.backoff.next(&backoff_key, instant);
            warn_event(
                &self.recorder,
                &ds_ref,
                "FailedDaemonPod",
                &format!(
                    "Found failed daemon pod {}/{} on node {}, will try to kill it",
                    failed.namespace, failed.pod, failed.node
                ),
            );
            delete.push(failed.pod.clone());
        }
        for done in &manage.succeeded {
            self.recorder.normal(
                &ds_ref,
                "SucceededDaemonPod",
                &format!(
                    "Found succeeded daemon pod {}/{} on node {}, will try to delete it",
                    done.namespace, done.pod, done.node
                ),
            );
            delete.push(done.pod.clone());
        }
        self.sync_nodes(key, ds, daemon.hash, &manage.create_on, &delete)
            .await?;

        // The rollout acts on this sync's snapshot only when manage had nothing to do, so it
        // never counts a pod manage just replaced (upstream re-reads the cache instead).
        if manage.create_on.is_empty() && delete.is_empty() && self.expectations.satisfied(key) {
            let desired = plan::desired_count(daemon.template, nodes);
            let budget = match plan::budget(ds, desired) {
                Ok(budget) => budget,
                Err(err) => {
                    let message = format!("invalid rolling update parameters: {err}");
                    warn_event(&self.recorder, &ds_ref, "InvalidUpdateStrategy", &message);
                    return Err(anyhow!("{key}: {message}"));
                }
            };
            if budget.rolling {
                let rolling = plan::rolling_plan(daemon, budget, nodes, by_node, now);
                self.sync_nodes(key, ds, daemon.hash, &rolling.create_on, &rolling.delete)
                    .await?;
            }
        }
        self.cleanup_history(ds, pods, old_revisions).await
    }

    /// upstream `syncNodes`: expectations first, then creations in slow-start batches (stopping
    /// at the first failed batch) and deletions in parallel, each capped by the burst.
    async fn sync_nodes(
        &self,
        key: &str,
        ds: &Arc<DaemonSet>,
        hash: &str,
        create_on: &[String],
        delete: &[String],
    ) -> anyhow::Result<()> {
        if create_on.is_empty() && delete.is_empty() {
            return Ok(());
        }
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let create_on = &create_on[..create_on.len().min(BURST_REPLICAS)];
        let delete = &delete[..delete.len().min(BURST_REPLICAS)];
        let pod_key = |name: &str| format!("{ns}/{name}");
        self.expectations
            .expect(key, create_on.len(), delete.iter().map(|n| pod_key(n)));
        let ds_ref = reference(ds.as_ref());
        let control = PodControl::new(&self.client, ns, &self.recorder, &ds_ref);
        let made = control
            .create_pods(create_on.len(), |i| daemon_pod(ds, hash, &create_on[i]))
            .await;
        // Failed creations, and those never tried, will not be observed.
        for _ in 0..made.failures.len() + made.skipped {
            self.expectations.creation_observed(key);
        }
        let mut errors = made.failures;
        for (name, deletion) in delete.iter().zip(control.delete_pods(delete).await) {
            if deletion != Deletion::Deleted {
                self.expectations.deletion_observed(key, &pod_key(name));
            }
            if let Deletion::Failed(message) = deletion {
                errors.push(message);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!("{key}: {}", errors.join("; ")))
        }
    }

    // ---- pods ----

    /// upstream `getDaemonPods` (`ClaimPods`): every pod of the namespace this DaemonSet
    /// controls after adopting matching orphans and releasing owned pods that stopped matching.
    async fn claim_pods(
        &self,
        ds: &Arc<DaemonSet>,
        selector: &Selector,
    ) -> anyhow::Result<Vec<Arc<Pod>>> {
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let candidates = self.pods.store().by_index(NAMESPACE_INDEX, ns);
        claim_pods(&self.client, ds.as_ref(), candidates, |pod| {
            selector.matches(pod.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
        })
        .await
    }

    // ---- history ----

    fn owned_revisions(&self, ds: &DaemonSet) -> Vec<Arc<ControllerRevision>> {
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let uid = ds.metadata.uid.as_deref().unwrap_or_default();
        self.revisions
            .store()
            .by_index(NAMESPACE_INDEX, ns)
            .into_iter()
            .filter(|r| controller_ref(&r.metadata).is_some_and(|o| o.uid == uid))
            .collect()
    }

    /// upstream `constructHistory`: the current revision's hash (creating or renumbering the
    /// revision as needed) and the old revisions.
    async fn construct_history(
        &self,
        ds: &Arc<DaemonSet>,
    ) -> anyhow::Result<(String, Vec<Arc<ControllerRevision>>)> {
        let owned = self.owned_revisions(ds);
        let refs: Vec<&ControllerRevision> = owned.iter().map(Arc::as_ref).collect();
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<ControllerRevision> = self.client.api(Some(ns));
        let (current_name, hash) = match history::find_current(ds, &refs) {
            Current::Existing {
                name,
                hash,
                renumber,
            } => {
                if let Some(number) = renumber {
                    if let Some(rev) = owned
                        .iter()
                        .find(|r| r.metadata.name.as_ref() == Some(&name))
                    {
                        let mut rev = rev.as_ref().clone();
                        rev.revision = number;
                        api.replace(&name, &rev).await?;
                    }
                }
                (name, hash)
            }
            Current::Create { number } => {
                let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
                let hash = history::compute_hash(ds, collisions);
                let rev = history::new_revision(ds, new_controller_ref(ds.as_ref()), &hash, number);
                let name = rev.metadata.name.clone().unwrap_or_default();
                match api.create(&rev).await {
                    Ok(_) => {}
                    Err(err) if err.is_already_exists() => {
                        let existing = api.get(&name).await?;
                        let ours = controller_ref(&existing.metadata)
                            .is_some_and(|r| Some(&r.uid) == ds.metadata.uid.as_ref());
                        if !(ours && history::matches(ds, &existing)) {
                            self.bump_collision_count(ds).await?;
                            return Err(anyhow!(
                                "found a hash collision for DaemonSet {ns}/{} on revision {name}; \
                                 bumped status.collisionCount",
                                ds.metadata.name.as_deref().unwrap_or("")
                            ));
                        }
                        if existing.revision != number {
                            let mut existing = existing;
                            existing.revision = number;
                            api.replace(&name, &existing).await?;
                        }
                    }
                    Err(err) => return Err(err.into()),
                }
                (name, hash)
            }
        };
        let old = owned
            .into_iter()
            .filter(|r| r.metadata.name.as_ref() != Some(&current_name))
            .collect();
        Ok((hash, old))
    }

    async fn bump_collision_count(&self, ds: &Arc<DaemonSet>) -> anyhow::Result<()> {
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let name = ds.metadata.name.clone().unwrap_or_default();
        let api: Api<DaemonSet> = self.client.api(Some(ns));
        let mut fresh = api.get(&name).await?;
        let status = fresh.status.get_or_insert_with(DaemonSetStatus::default);
        status.collision_count = Some(status.collision_count.unwrap_or(0).saturating_add(1));
        api.replace_status(&name, &fresh).await?;
        Ok(())
    }

    /// upstream `cleanupHistory`.
    async fn cleanup_history(
        &self,
        ds: &Arc<DaemonSet>,
        pods: &[Arc<Pod>],
        old: &[Arc<ControllerRevision>],
    ) -> anyhow::Result<()> {
        let limit = ds
            .spec
            .as_ref()
            .and_then(|s| s.revision_history_limit)
            .unwrap_or(history::DEFAULT_HISTORY_LIMIT);
        let live: HashSet<String> = pods
            .iter()
            .filter_map(|p| {
                p.metadata
                    .labels
                    .as_ref()?
                    .get(REVISION_HASH_LABEL)
                    .cloned()
            })
            .collect();
        let refs: Vec<&ControllerRevision> = old.iter().map(Arc::as_ref).collect();
        let doomed = history::revisions_to_prune(&refs, &live, limit);
        if doomed.is_empty() {
            return Ok(());
        }
        let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<ControllerRevision> = self.client.api(Some(ns));
        for name in doomed {
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    return Err(anyhow!(
                        "failed to clean up revisions of DaemonSet: deleting {name}: {err}"
                    ))
                }
            }
        }
        Ok(())
    }

    // ---- status ----

    /// upstream `updateDaemonSetStatus` + `storeDaemonSetStatus`.
    async fn update_status(
        &self,
        ds: &Arc<DaemonSet>,
        daemon: &Daemon<'_>,
        nodes: &[Arc<Node>],
        by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
        observe_generation: bool,
    ) -> anyhow::Result<()> {
        let c = plan::calculate_counts(daemon, nodes, by_node, Timestamp::now());
        let current = ds.status.clone().unwrap_or_default();
        let generation = ds.metadata.generation.unwrap_or(0);
        let unchanged = current.desired_number_scheduled == c.desired
            && current.current_number_scheduled == c.current
            && current.number_misscheduled == c.misscheduled
            && current.number_ready == c.ready
            && current.updated_number_scheduled.unwrap_or(0) == c.updated
            && current.number_available.unwrap_or(0) == c.available
            && current.number_unavailable.unwrap_or(0) == c.unavailable
            && current.observed_generation.unwrap_or(0) >= generation;
        if !unchanged {
            let name = ds.metadata.name.clone().unwrap_or_default();
            let api: Api<DaemonSet> = self.client.api(ds.metadata.namespace.as_deref());
            let mut to_update = ds.as_ref().clone();
            for attempt in 0..2 {
                let gen = to_update.metadata.generation;
                let status = to_update
                    .status
                    .get_or_insert_with(DaemonSetStatus::default);
                if observe_generation {
                    status.observed_generation = gen;
                }
                status.desired_number_scheduled = c.desired;
                status.current_number_scheduled = c.current;
                status.number_misscheduled = c.misscheduled;
                status.number_ready = c.ready;
                status.updated_number_scheduled = Some(c.updated);
                status.number_available = Some(c.available);
                status.number_unavailable = Some(c.unavailable);
                match api.replace_status(&name, &to_update).await {
                    Ok(_) => break,
                    Err(err) if err.is_not_found() => return Ok(()),
                    Err(err) if attempt == 0 => {
                        tracing::debug!(daemonset = %name, error = %err, "status update failed; retrying on a fresh read");
                        to_update = api.get(&name).await?;
                    }
                    Err(err) => {
                        return Err(anyhow!("error storing status for daemon set {name}: {err}"))
                    }
                }
            }
        }
        // Ready pods become available after minReadySeconds: look again then.
        if daemon.min_ready_seconds > 0 && c.ready != c.available {
            let delay = Duration::from_secs(u64::try_from(daemon.min_ready_seconds).unwrap_or(0));
            self.queue.add_after(key_of(ds.as_ref()), delay);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::DaemonSetSpec;
    use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    use super::*;

    fn ds(selector: LabelSelector) -> DaemonSet {
        DaemonSet {
            metadata: ObjectMeta {
                name: Some("agent".into()),
                namespace: Some("ns".into()),
                uid: Some("uid-1".into()),
                generation: Some(4),
                ..ObjectMeta::default()
            },
            spec: Some(DaemonSetSpec {
                selector,
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some([("app".to_string(), "agent".to_string())].into()),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        host_network: Some(true),
                        ..PodSpec::default()
                    }),
                },
                ..DaemonSetSpec::default()
            }),
            status: None,
        }
    }

    fn app_selector() -> LabelSelector {
        LabelSelector {
            match_labels: Some([("app".to_string(), "agent".to_string())].into()),
            match_expressions: None,
        }
    }

    #[test]
    fn daemon_pod_is_pinned_labelled_and_tolerant() {
        let pod = match daemon_pod(&ds(app_selector()), "h1", "n1") {
            Ok(pod) => pod,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("agent-"));
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels.get(REVISION_HASH_LABEL).map(String::as_str),
            Some("h1")
        );
        assert_eq!(
            labels.get(TEMPLATE_GENERATION_LABEL).map(String::as_str),
            Some("4")
        );
        assert_eq!(labels.get("app").map(String::as_str), Some("agent"));
        assert_eq!(eligibility::target_node(&pod), Some("n1"));
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(spec.node_name, None, "the scheduler binds it");
        assert_eq!(
            spec.tolerations.map(|t| t.len()),
            Some(7),
            "hostNetwork adds one"
        );
        let owner = pod.metadata.owner_references.unwrap_or_default();
        assert_eq!(owner.len(), 1);
        assert_eq!(owner[0].kind, "DaemonSet");
        assert_eq!(owner[0].controller, Some(true));
    }

    #[test]
    fn template_generation_prefers_the_annotation() {
        let mut d = ds(app_selector());
        assert_eq!(template_generation(&d), Some(4));
        d.metadata.annotations =
            Some([(TEMPLATE_GENERATION_ANNOTATION.to_string(), "2".to_string())].into());
        assert_eq!(template_generation(&d), Some(2));
    }

    #[test]
    fn selectors() {
        assert!(matches!(pod_selector(&ds(app_selector())), Ok(Some(_))));
        assert!(matches!(
            pod_selector(&ds(LabelSelector::default())),
            Ok(None)
        ));
        let broken = LabelSelector {
            match_labels: Some([("bad key!".to_string(), "x".to_string())].into()),
            match_expressions: None,
        };
        assert!(pod_selector(&ds(broken)).is_err());
    }
}
