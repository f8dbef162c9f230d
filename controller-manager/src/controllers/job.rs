//! The Job controller (`job-controller`) and the TTL-after-finished controller
//! (`ttl-after-finished-controller`), as upstream's `pkg/controller/job` and
//! `pkg/controller/ttlafterfinished`.
//!
//! Implemented, as upstream (1.33 defaults):
//! - pods from the template, named `<job>-` (`<job>-<index>-` when Indexed), labelled
//!   `batch.kubernetes.io/controller-uid` / `batch.kubernetes.io/job-name` (and the legacy
//!   `controller-uid` / `job-name`), owned by the job, carrying the
//!   `batch.kubernetes.io/job-tracking` finalizer until counted;
//! - completions and parallelism for NonIndexed and Indexed jobs (completion index annotation
//!   and label, `JOB_COMPLETION_INDEX` env var, hostname `<job>-<index>`), duplicate and
//!   out-of-range index pods removed, `status.completedIndexes`;
//! - finalizer-based counting through `status.uncountedTerminatedPods`, with finalizer
//!   expectations so a lagging cache never counts a pod twice; creation/deletion expectations
//!   so a slow informer never over-creates;
//! - backoffLimit with exponential re-creation delay (10 s doubling, max 6 min; the base can be
//!   lowered with the `KCM_JOB_POD_FAILURE_BACKOFF_MS` environment variable, a test hook like
//!   upstream's `DefaultJobPodFailureBackOff` variable), activeDeadlineSeconds, suspend / resume,
//!   podFailurePolicy (FailJob / Ignore / Count on exit codes and pod conditions), the interim
//!   FailureTarget / SuccessCriteriaMet conditions and the terminal Complete / Failed ones once
//!   no pod is terminating, startTime / completionTime, active / ready / terminating counts;
//! - events SuccessfulCreate / FailedCreate / SuccessfulDelete / FailedDelete / Completed /
//!   Suspended / Resumed / TooManySucceededPods and the failure reason (BackoffLimitExceeded,
//!   DeadlineExceeded, PodFailurePolicy) as a Warning;
//! - orphaned pods (their job is gone) lose the tracking finalizer;
//! - TTL-after-finished: finished jobs with `ttlSecondsAfterFinished` are deleted (background
//!   propagation, UID precondition) that long after their terminal condition, requeued at the
//!   right time, after a fresh GET confirms the TTL still applies.
//!
//! Not implemented: adoption / release of pods by selector (pods are matched by controller
//! reference only), backoffLimitPerIndex / maxFailedIndexes / FailIndex (counted as Count) and
//! `status.failedIndexes`, successPolicy, restartPolicy OnFailure restart counting,
//! `spec.managedBy` other than the default (such jobs are skipped), metrics.

mod indexes;
mod plan;
mod policy;
mod ttl;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use client::client::{Patch, PatchParams};
use client::events::CoreEventRecorder;
use client::informer::store::split_key;
use client::informer::Informer;
use client::{Api, Client};
use k8s_openapi::api::batch::v1::{Job, JobStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::expectations::Expectations;
use crate::framework::podcontrol::{Deletion, PodControl};
use crate::framework::{
    add_handler, controller_ref, controller_uid_indexer, key_of, new_controller_ref, reference,
    resolve_controller_ref, run_workers, warn_event, when_synced, ControllerContext, EventHandler,
    CONTROLLER_UID_INDEX,
};
use plan::{PlannedEvent, SyncInput};
use policy::BackoffRecord;

pub use ttl::start as start_ttl_after_finished;

const COMPONENT: &str = "job-controller";
/// The only `spec.managedBy` this controller serves (upstream's default).
const MANAGED_BY: &str = "kubernetes.io/job-controller";
/// Environment variable lowering the pod failure backoff base, in milliseconds (tests).
pub const BACKOFF_ENV: &str = "KCM_JOB_POD_FAILURE_BACKOFF_MS";

fn backoff_base() -> Duration {
    std::env::var(BACKOFF_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or(policy::DEFAULT_POD_FAILURE_BACKOFF)
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let jobs = ctx.factory.informer::<Job>();
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(CONTROLLER_UID_INDEX, controller_uid_indexer());
    let queue = ctx.queue("job");
    let orphans = ctx.queue("job-orphan-pod");
    let controller = Arc::new(JobController {
        client: ctx.client.clone(),
        jobs: jobs.clone(),
        pods: pods.clone(),
        queue: queue.clone(),
        orphans: orphans.clone(),
        expectations: Expectations::new(),
        removed_finalizers: Mutex::new(HashMap::new()),
        backoff: Mutex::new(HashMap::new()),
        recorder: ctx.recorder(COMPONENT),
        backoff_base: backoff_base(),
    });
    add_handler(&jobs, controller.clone());
    add_handler(&pods, controller.clone());
    let workers = ctx.options.concurrent_job_syncs;
    when_synced(ctx, &[&jobs, &pods], move || {
        let c = controller.clone();
        run_workers(COMPONENT, queue, workers, move |key: String| {
            let c = c.clone();
            async move { c.sync(&key).await }
        });
        run_workers("job-orphan-pods", orphans, 1, move |key: String| {
            let c = controller.clone();
            async move { c.release_orphan(&key).await }
        });
    });
    Ok(())
}

struct JobController {
    client: Client,
    jobs: Informer<Job>,
    pods: Informer<Pod>,
    queue: Queue<String>,
    /// Keys of pods holding the tracking finalizer whose job is gone.
    orphans: Queue<String>,
    expectations: Expectations,
    /// Per job key: UIDs of pods whose finalizer was removed but the cache has not shown it.
    removed_finalizers: Mutex<HashMap<String, HashSet<String>>>,
    backoff: Mutex<HashMap<String, BackoffRecord>>,
    recorder: CoreEventRecorder,
    backoff_base: Duration,
}

impl EventHandler<Job> for JobController {
    fn on_add(&self, job: &Arc<Job>) {
        self.queue.add(key_of(job.as_ref()));
    }

    fn on_update(&self, _old: &Arc<Job>, new: &Arc<Job>) {
        self.queue.add(key_of(new.as_ref()));
    }

    fn on_delete(&self, job: &Arc<Job>) {
        self.job_deleted(job);
    }
}

impl EventHandler<Pod> for JobController {
    fn on_add(&self, pod: &Arc<Pod>) {
        let Some(job) = self.resolve(pod) else {
            self.check_orphan(pod);
            return;
        };
        let key = key_of(job.as_ref());
        if pod.metadata.deletion_timestamp.is_some() {
            self.expectations.deletion_observed(&key);
        } else {
            self.expectations.creation_observed(&key);
        }
        self.queue.add(key);
    }

    fn on_update(&self, old: &Arc<Pod>, new: &Arc<Pod>) {
        if old.metadata.resource_version == new.metadata.resource_version {
            return;
        }
        let Some(job) = self.resolve(new) else {
            self.check_orphan(new);
            return;
        };
        let key = key_of(job.as_ref());
        if old.metadata.deletion_timestamp.is_none() && new.metadata.deletion_timestamp.is_some() {
            self.expectations.deletion_observed(&key);
        }
        self.observe_finalizer(&key, new);
        self.queue.add(key);
    }

    fn on_delete(&self, pod: &Arc<Pod>) {
        let Some(job) = self.resolve(pod) else {
            return;
        };
        let key = key_of(job.as_ref());
        if pod.metadata.deletion_timestamp.is_none() {
            self.expectations.deletion_observed(&key);
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        {
            let mut map = self
                .removed_finalizers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(set) = map.get_mut(&key) {
                set.remove(&uid);
            }
        }
        self.queue.add(key);
    }
}

impl JobController {
    // ---- event handlers ----

    /// The job a controller reference points at, when it is still the same object.
    fn resolve(&self, pod: &Pod) -> Option<Arc<Job>> {
        let r = controller_ref(&pod.metadata)?;
        resolve_controller_ref(&self.jobs, pod.metadata.namespace.as_deref(), r)
    }

    /// A pod with the tracking finalizer whose job is not in the cache: release it (after the
    /// worker confirms the job is gone).
    fn check_orphan(&self, pod: &Pod) {
        let is_job_pod = controller_ref(&pod.metadata).is_some_and(|r| r.kind == "Job");
        if is_job_pod && plan::has_tracking_finalizer(pod) && self.resolve(pod).is_none() {
            self.orphans.add(key_of(pod));
        }
    }

    fn observe_finalizer(&self, job_key: &str, pod: &Pod) {
        if plan::has_tracking_finalizer(pod) {
            return;
        }
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut map = self
            .removed_finalizers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(set) = map.get_mut(job_key) {
            set.remove(&uid);
        }
    }

    fn job_deleted(&self, job: &Arc<Job>) {
        let key = key_of(job.as_ref());
        self.expectations.delete(&key);
        self.removed_finalizers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        // Its pods must not keep the finalizer forever.
        let uid = job.metadata.uid.clone().unwrap_or_default();
        for pod in self.pods.store().by_index(CONTROLLER_UID_INDEX, &uid) {
            if plan::has_tracking_finalizer(&pod) {
                self.orphans.add(key_of(pod.as_ref()));
            }
        }
        self.queue.add(key);
    }

    // ---- orphans ----

    async fn release_orphan(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(pod) = self.pods.store().get_namespaced(ns, name) else {
            return Ok(());
        };
        if !plan::has_tracking_finalizer(&pod) {
            return Ok(());
        }
        if let Some(r) = controller_ref(&pod.metadata) {
            // The cache may lag: only a live 404 (or another UID) proves the job is gone.
            let api: Api<Job> = self.client.api(ns);
            let live = api.get_opt(&r.name).await?;
            let job_still_running = live.is_some_and(|job| {
                job.metadata.uid.as_ref() == Some(&r.uid)
                    && job.metadata.deletion_timestamp.is_none()
                    && plan::finished_type(&job).is_none()
            });
            if job_still_running {
                return Ok(());
            }
        }
        self.remove_finalizer(&pod)
            .await
            .map_err(|e| anyhow!("{key}: {e}"))
    }

    async fn remove_finalizer(&self, pod: &Pod) -> Result<(), client::Error> {
        let api: Api<Pod> = self.client.api(pod.metadata.namespace.as_deref());
        let patch = serde_json::json!({
            "metadata": {
                "$deleteFromPrimitiveList/finalizers": [plan::JOB_TRACKING_FINALIZER],
                "uid": pod.metadata.uid,
            }
        });
        let name = pod.metadata.name.clone().unwrap_or_default();
        match api
            .patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(err),
        }
    }

    // ---- sync ----

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(job) = self.jobs.store().get_namespaced(ns, name) else {
            self.expectations.delete(key);
            return Ok(());
        };
        let managed_by = job.spec.as_ref().and_then(|s| s.managed_by.as_deref());
        if managed_by.is_some_and(|m| m != MANAGED_BY) {
            return Ok(());
        }
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let pods = self.pods.store().by_index(CONTROLLER_UID_INDEX, &uid);
        let expected_removed = self.pending_finalizer_removals(key, &pods);
        let satisfied = self.expectations.satisfied(key);
        let backoff = self
            .backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .copied()
            .unwrap_or_default();
        let now = Timestamp::now();
        let plan = plan::plan_sync(&SyncInput {
            job: &job,
            pods: &pods,
            expected_removed_finalizers: &expected_removed,
            expectations_satisfied: satisfied,
            backoff,
            backoff_base: self.backoff_base,
            now,
        });
        let job_ref = reference(job.as_ref());
        let api: Api<Job> = self.client.api(ns);
        let spec = job.spec.clone().unwrap_or_default();

        // Pods first, so the status reports what was really created.
        let (failed_creates, manage_error) = self.manage(key, &job, &plan).await;
        let mut status = plan.status.clone();
        if failed_creates > 0 {
            let active = status.active.unwrap_or(0) - i32::try_from(failed_creates).unwrap_or(0);
            status.active = (active > 0).then_some(active);
        }
        for e in &plan.events {
            self.record(&job_ref, e);
        }

        // 1. Record newly finished pods as uncounted before touching their finalizers.
        let mut current = job.as_ref().clone();
        if job.status.as_ref() != Some(&status) {
            current = self.write_status(&api, &current, status.clone()).await?;
        }
        self.backoff
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), plan.backoff);

        // 2. Remove the finalizers.
        let mut with_finalizer = plan.uids_with_finalizer.clone();
        let mut remove_error = None;
        if !plan.remove_finalizers.is_empty() {
            let removed: Vec<(String, Result<(), client::Error>)> =
                futures::future::join_all(plan.remove_finalizers.iter().map(|pod| async move {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    (uid, self.remove_finalizer(pod).await)
                }))
                .await;
            let mut expected = self
                .removed_finalizers
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let set = expected.entry(key.to_string()).or_default();
            for (uid, result) in removed {
                match result {
                    Ok(()) => {
                        with_finalizer.remove(&uid);
                        set.insert(uid);
                    }
                    Err(err) => {
                        remove_error.get_or_insert(anyhow!("removing tracking finalizer: {err}"));
                    }
                }
            }
        }

        // 3. Count what was released; finish when nothing is left to count or terminate.
        if plan::finished_type(&job).is_none() {
            let mut status = current.status.clone().unwrap_or_default();
            plan::flush_uncounted(&mut status, &with_finalizer);
            let finished = remove_error.is_none()
                && plan::enact_finished(
                    &mut status,
                    plan.finished.as_ref(),
                    plan.terminating,
                    Timestamp::now(),
                );
            if current.status.as_ref() != Some(&status) {
                self.write_status(&api, &current, status.clone()).await?;
            }
            if finished {
                if let Some(cond) = &plan.finished {
                    for e in plan::finished_events(&status, &spec, cond) {
                        self.record(&job_ref, &e);
                    }
                }
            }
        }
        if let Some(err) = remove_error {
            return Err(err);
        }
        if let Some(err) = manage_error {
            return Err(anyhow!("{key}: {err}"));
        }
        if let Some(after) = plan.requeue_after {
            self.queue.add_after(key.to_string(), after);
        }
        Ok(())
    }

    /// Drops expected finalizer removals the cache has caught up with; returns the rest.
    fn pending_finalizer_removals(&self, key: &str, pods: &[Arc<Pod>]) -> HashSet<String> {
        let mut map = self
            .removed_finalizers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let Some(set) = map.get_mut(key) else {
            return HashSet::new();
        };
        let still: HashSet<&str> = pods
            .iter()
            .filter(|p| plan::has_tracking_finalizer(p))
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        set.retain(|uid| still.contains(uid.as_str()));
        set.clone()
    }

    fn record(&self, object: &k8s_openapi::api::core::v1::ObjectReference, e: &PlannedEvent) {
        if e.warning {
            warn_event(&self.recorder, object, &e.reason, &e.message);
        } else {
            self.recorder.normal(object, &e.reason, &e.message);
        }
    }

    /// Deletes and creates pods as planned, under expectations. Returns how many creations
    /// failed and the first error.
    async fn manage(
        &self,
        key: &str,
        job: &Arc<Job>,
        plan: &plan::SyncPlan,
    ) -> (usize, Option<String>) {
        if plan.create.is_empty() && plan.delete.is_empty() {
            return (0, None);
        }
        let ns = job.metadata.namespace.as_deref().unwrap_or_default();
        let job_ref = reference(job.as_ref());
        self.expectations.expect(
            key,
            i64::try_from(plan.create.len()).unwrap_or(i64::MAX),
            i64::try_from(plan.delete.len()).unwrap_or(i64::MAX),
        );
        let control = PodControl::new(&self.client, ns, &self.recorder, &job_ref);
        let names: Vec<String> = plan
            .delete
            .iter()
            .map(|pod| pod.metadata.name.clone().unwrap_or_default())
            .collect();
        let mut first_error = None;
        for deletion in control.delete_pods(&names).await {
            if deletion != Deletion::Deleted {
                self.expectations.deletion_observed(key);
            }
            if let Deletion::Failed(message) = deletion {
                first_error.get_or_insert(message);
            }
        }
        let owner: OwnerReference = new_controller_ref(job.as_ref());
        let made = control
            .create_pods(plan.create.len(), |i| {
                plan::pod_from_template(job, plan.create[i], owner.clone())
            })
            .await;
        // Creations refused in a terminating namespace count as failed here: they will not be
        // observed and are no active pods.
        let failed = made.failures.len() + made.namespace_terminating + made.skipped;
        for _ in 0..failed {
            self.expectations.creation_observed(key);
        }
        if let Some(message) = made.failures.into_iter().next() {
            first_error.get_or_insert(message);
        }
        (failed, first_error)
    }

    /// PUT the status subresource. A conflict means our view was stale: the sync fails and
    /// the retry recomputes everything from the fresh object (the counting is idempotent).
    async fn write_status(
        &self,
        api: &Api<Job>,
        job: &Job,
        status: JobStatus,
    ) -> anyhow::Result<Job> {
        let name = job.metadata.name.clone().unwrap_or_default();
        let mut current = job.clone();
        current.status = Some(status);
        api.replace_status(&name, &current)
            .await
            .map_err(|err| anyhow!("updating job {name} status: {err}"))
    }
}
