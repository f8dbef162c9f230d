//! The Job controller's decisions, as data: given a Job and the pods it controls (from the
//! informer cache), which pods to create and delete, which pods lose their tracking finalizer,
//! and the status to write (upstream's `syncJob`, `manageJob` and
//! `trackJobStatusAndRemoveFinalizers`). No I/O happens here.
//!
//! Pod accounting follows upstream's finalizer tracking: a finished pod that still carries
//! `batch.kubernetes.io/job-tracking` is first recorded in `status.uncountedTerminatedPods`,
//! then its finalizer is removed, and only then is it moved into `succeeded` / `failed`
//! ([`flush_uncounted`]), so no pod is counted twice or lost across restarts.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use super::indexes::{self, COMPLETION_INDEX_ANNOTATION};
use super::policy::{self, BackoffRecord, PolicyAction};
use crate::framework::podcontrol;
use crate::framework::podutil::{is_active, is_finished, is_ready, phase};

pub const JOB_TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";
pub const COMPLETION_INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// upstream `MaxPodCreateDeletePerSync`.
pub const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;
/// upstream `MaxUncountedPods`: keeps the UID lists of one status write small.
pub const MAX_UNCOUNTED_PODS: usize = 500;
const DEFAULT_BACKOFF_LIMIT: i32 = 6;

pub const COMPLETE: &str = "Complete";
pub const FAILED: &str = "Failed";
pub const FAILURE_TARGET: &str = "FailureTarget";
pub const SUCCESS_CRITERIA_MET: &str = "SuccessCriteriaMet";
pub const SUSPENDED: &str = "Suspended";

pub const REASON_BACKOFF_LIMIT_EXCEEDED: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
pub const REASON_POD_FAILURE_POLICY: &str = "PodFailurePolicy";
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";

/// An event the plan wants recorded: (warning?, reason, message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

fn event(warning: bool, reason: &str, message: &str) -> PlannedEvent {
    PlannedEvent {
        warning,
        reason: reason.into(),
        message: message.into(),
    }
}

/// What a sync starts from.
pub struct SyncInput<'a> {
    pub job: &'a Job,
    /// Pods whose controller reference is this job.
    pub pods: &'a [Arc<Pod>],
    /// Pods whose finalizer this controller removed but the cache still shows (upstream's
    /// finalizer expectations): neither counted again nor removed again.
    pub expected_removed_finalizers: &'a HashSet<String>,
    /// Pod creations/deletions of the last sync have all been observed.
    pub expectations_satisfied: bool,
    pub backoff: BackoffRecord,
    pub backoff_base: Duration,
    pub now: Timestamp,
}

/// What a sync should do, in order: write `status` (new uncounted pods and interim conditions)
/// if it changed, delete and create pods, remove the finalizers, then [`flush_uncounted`] and
/// [`enact_finished`] and write again.
#[derive(Debug, Clone)]
pub struct SyncPlan {
    pub status: JobStatus,
    /// One entry per pod to create: its completion index for Indexed jobs.
    pub create: Vec<Option<i32>>,
    pub delete: Vec<Arc<Pod>>,
    pub remove_finalizers: Vec<Arc<Pod>>,
    /// UIDs of pods still holding the tracking finalizer (before the removals above).
    pub uids_with_finalizer: HashSet<String>,
    /// The terminal condition (Complete / Failed) to add once every pod is counted and none is
    /// terminating.
    pub finished: Option<JobCondition>,
    pub terminating: i32,
    pub events: Vec<PlannedEvent>,
    pub requeue_after: Option<Duration>,
    pub backoff: BackoffRecord,
}

pub fn is_indexed(spec: &JobSpec) -> bool {
    spec.completion_mode.as_deref() == Some("Indexed")
}

/// A True condition of `type_`.
pub fn condition<'a>(status: Option<&'a JobStatus>, type_: &str) -> Option<&'a JobCondition> {
    status?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
}

/// `Complete` or `Failed` (True): the job is done for good.
pub fn finished_type(job: &Job) -> Option<&'static str> {
    let status = job.status.as_ref();
    if condition(status, COMPLETE).is_some() {
        Some(COMPLETE)
    } else if condition(status, FAILED).is_some() {
        Some(FAILED)
    } else {
        None
    }
}

/// When the job finished (the transition time of its terminal condition).
pub fn finish_time(job: &Job) -> Option<Timestamp> {
    let status = job.status.as_ref();
    condition(status, COMPLETE)
        .or_else(|| condition(status, FAILED))
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> JobCondition {
    JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

/// upstream `ensureJobConditionStatus`: updates the condition of that type when its status,
/// reason or message differ, appends it when missing (unless False). Returns whether it changed.
pub fn ensure_condition(
    status: &mut JobStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != value
            || c.reason.as_deref() != Some(reason)
            || c.message.as_deref() != Some(message)
        {
            *c = new_condition(type_, value, reason, message, now);
            return true;
        }
        return false;
    }
    if value != "False" {
        conditions.push(new_condition(type_, value, reason, message, now));
        return true;
    }
    false
}

pub fn has_tracking_finalizer(pod: &Pod) -> bool {
    pod.metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == JOB_TRACKING_FINALIZER))
}

/// Being deleted but not finished yet (upstream's `terminating` count).
fn is_terminating(pod: &Pod) -> bool {
    !is_finished(pod) && pod.metadata.deletion_timestamp.is_some()
}

/// Failed pods are replaced only once they reach phase Failed (not while terminating) when
/// `podReplacementPolicy: Failed`, which a pod failure policy implies.
fn only_replace_failed(spec: &JobSpec) -> bool {
    spec.pod_failure_policy.is_some() || spec.pod_replacement_policy.as_deref() == Some("Failed")
}

/// upstream `isPodFailed`: phase Failed, or (unless only failed pods are replaced) deleted
/// before succeeding: an orphan that never reaches a terminal phase still counts.
pub fn is_pod_failed(pod: &Pod, spec: &JobSpec) -> bool {
    if phase(pod) == "Failed" {
        return true;
    }
    if only_replace_failed(spec) {
        return false;
    }
    pod.metadata.deletion_timestamp.is_some() && phase(pod) != "Succeeded"
}

fn uncounted_sets(status: &JobStatus) -> (Vec<String>, Vec<String>) {
    let u = status.uncounted_terminated_pods.clone().unwrap_or_default();
    (
        u.succeeded.unwrap_or_default(),
        u.failed.unwrap_or_default(),
    )
}

fn set_uncounted(status: &mut JobStatus, succeeded: Vec<String>, failed: Vec<String>) {
    status.uncounted_terminated_pods = Some(UncountedTerminatedPods {
        succeeded: (!succeeded.is_empty()).then_some(succeeded),
        failed: (!failed.is_empty()).then_some(failed),
    });
}

fn add_count(field: &mut Option<i32>, n: usize) {
    let total = field.unwrap_or(0) + i32::try_from(n).unwrap_or(i32::MAX);
    *field = (total != 0).then_some(total);
}

/// upstream `cleanUncountedPodsWithoutFinalizers`: uncounted pods that no longer hold the
/// finalizer (removed, or gone) move into the counters. Returns whether anything moved.
pub fn flush_uncounted(status: &mut JobStatus, uids_with_finalizer: &HashSet<String>) -> bool {
    let (succeeded, failed) = uncounted_sets(status);
    let (keep_s, done_s): (Vec<_>, Vec<_>) = succeeded
        .into_iter()
        .partition(|u| uids_with_finalizer.contains(u));
    let (keep_f, done_f): (Vec<_>, Vec<_>) = failed
        .into_iter()
        .partition(|u| uids_with_finalizer.contains(u));
    add_count(&mut status.succeeded, done_s.len());
    add_count(&mut status.failed, done_f.len());
    set_uncounted(status, keep_s, keep_f);
    !done_s.is_empty() || !done_f.is_empty()
}

/// upstream `enactJobFinished`: adds the terminal condition (and completionTime) once no pod
/// is uncounted and none is terminating. Returns whether the job finished now.
pub fn enact_finished(
    status: &mut JobStatus,
    finished: Option<&JobCondition>,
    terminating: i32,
    now: Timestamp,
) -> bool {
    let Some(cond) = finished else {
        return false;
    };
    let (s, f) = uncounted_sets(status);
    if !s.is_empty() || !f.is_empty() || terminating > 0 {
        return false;
    }
    let reason = cond.reason.clone().unwrap_or_default();
    let message = cond.message.clone().unwrap_or_default();
    ensure_condition(status, &cond.type_, "True", &reason, &message, now);
    if cond.type_ == COMPLETE {
        status.completion_time = Some(Time(now));
    }
    true
}

/// The events upstream's `recordJobFinished` records for a job that just finished.
pub fn finished_events(
    status: &JobStatus,
    spec: &JobSpec,
    finished: &JobCondition,
) -> Vec<PlannedEvent> {
    if finished.type_ == COMPLETE {
        let mut events = Vec::new();
        if spec
            .completions
            .is_some_and(|c| status.succeeded.unwrap_or(0) > c)
        {
            events.push(event(
                true,
                "TooManySucceededPods",
                "Too many succeeded pods running after completion count reached",
            ));
        }
        events.push(event(false, "Completed", "Job completed"));
        events
    } else {
        vec![event(
            true,
            finished.reason.as_deref().unwrap_or_default(),
            finished.message.as_deref().unwrap_or_default(),
        )]
    }
}

/// upstream `pastActiveDeadline`; a suspended job never is.
fn past_active_deadline(spec: &JobSpec, status: &JobStatus, now: Timestamp) -> bool {
    deadline_remaining(spec, status, now).is_some_and(|d| d.is_zero())
}

/// Time left before activeDeadlineSeconds passes (zero once past), if it applies.
pub fn deadline_remaining(spec: &JobSpec, status: &JobStatus, now: Timestamp) -> Option<Duration> {
    let ads = spec.active_deadline_seconds?;
    let start = status.start_time.as_ref()?.0;
    if spec.suspend == Some(true) {
        return None;
    }
    let allowed = Duration::from_secs(u64::try_from(ads).unwrap_or(0));
    let elapsed = Duration::try_from(now.duration_since(start)).unwrap_or(Duration::ZERO);
    Some(allowed.saturating_sub(elapsed))
}

/// The whole sync decision; see [`SyncPlan`].
pub fn plan_sync(input: &SyncInput<'_>) -> SyncPlan {
    let job = input.job;
    let now = input.now;
    let spec = job.spec.clone().unwrap_or_default();
    let mut status = job.status.clone().unwrap_or_default();
    let indexed = is_indexed(&spec);
    let completions = spec.completions;
    let being_deleted = job.metadata.deletion_timestamp.is_some();

    let uids_with_finalizer: HashSet<String> = input
        .pods
        .iter()
        .filter(|p| has_tracking_finalizer(p))
        .filter_map(|p| p.metadata.uid.clone())
        .filter(|u| !input.expected_removed_finalizers.contains(u))
        .collect();
    let mut plan = SyncPlan {
        status: status.clone(),
        create: Vec::new(),
        delete: Vec::new(),
        remove_finalizers: Vec::new(),
        uids_with_finalizer: uids_with_finalizer.clone(),
        finished: None,
        terminating: 0,
        events: Vec::new(),
        requeue_after: None,
        backoff: input.backoff,
    };

    // A finished job only lets go of its pods.
    if finished_type(job).is_some() {
        plan.remove_finalizers = input
            .pods
            .iter()
            .filter(|p| {
                p.metadata
                    .uid
                    .as_ref()
                    .is_some_and(|u| uids_with_finalizer.contains(u))
            })
            .cloned()
            .collect();
        return plan;
    }

    if status.uncounted_terminated_pods.is_none() {
        set_uncounted(&mut status, Vec::new(), Vec::new());
    }
    // Uncounted pods whose finalizer went away in an earlier sync are counted now.
    flush_uncounted(&mut status, &uids_with_finalizer);
    if status.start_time.is_none() && spec.suspend != Some(true) {
        status.start_time = Some(Time(now));
    }

    let active: Vec<&Arc<Pod>> = input.pods.iter().filter(|p| is_active(p)).collect();
    let terminating = input.pods.iter().filter(|p| is_terminating(p)).count();
    let ready = active.iter().filter(|p| is_ready(p)).count();
    let (uncounted_s, uncounted_f) = uncounted_sets(&status);
    let mut completed = if indexed {
        indexes::parse(
            status.completed_indexes.as_deref(),
            completions.unwrap_or(0),
        )
    } else {
        BTreeSet::new()
    };

    // Newly finished pods (upstream getNewFinishedPods), for the failure decisions.
    let valid_index = |p: &Pod| {
        !indexed || indexes::completion_index(p).is_some_and(|i| i < completions.unwrap_or(0))
    };
    let tracked = |p: &&Arc<Pod>| {
        p.metadata
            .uid
            .as_ref()
            .is_some_and(|u| uids_with_finalizer.contains(u))
            && valid_index(p)
    };
    let new_failed: Vec<&Arc<Pod>> = input
        .pods
        .iter()
        .filter(tracked)
        .filter(|p| !uncounted_f.contains(p.metadata.uid.as_ref().unwrap_or(&String::new())))
        .filter(|p| is_pod_failed(p, &spec))
        .collect();
    let new_succeeded_count = input
        .pods
        .iter()
        .filter(tracked)
        .filter(|p| phase(p) == "Succeeded")
        .filter(|p| {
            let uid = p.metadata.uid.clone().unwrap_or_default();
            if indexed {
                indexes::completion_index(p).is_some_and(|i| !completed.contains(&i))
            } else {
                !uncounted_s.contains(&uid) && !uncounted_f.contains(&uid)
            }
        })
        .count();
    let policy_actions: Vec<PolicyAction> = new_failed
        .iter()
        .map(|p| {
            if phase(p) == "Failed" {
                policy::match_pod_failure_policy(spec.pod_failure_policy.as_ref(), p)
            } else {
                PolicyAction::NoMatch
            }
        })
        .collect();
    let new_failed_counted = policy_actions.iter().filter(|a| a.counts()).count();
    let failed_total = status.failed.unwrap_or(0) as usize + uncounted_f.len() + new_failed_counted;

    // The finished condition, in upstream's order of precedence.
    let mut finished: Option<JobCondition> = condition(Some(&status), FAILURE_TARGET)
        .or_else(|| condition(Some(&status), SUCCESS_CRITERIA_MET))
        .cloned();
    if finished.is_none() {
        let fail_job = policy_actions.iter().find_map(|a| match a {
            PolicyAction::FailJob(message) => Some(message.clone()),
            _ => None,
        });
        let backoff_limit = spec.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT);
        let failure = if let Some(message) = fail_job {
            Some((REASON_POD_FAILURE_POLICY, message))
        } else if failed_total > usize::try_from(backoff_limit).unwrap_or(0) {
            Some((
                REASON_BACKOFF_LIMIT_EXCEEDED,
                "Job has reached the specified backoff limit".to_string(),
            ))
        } else if past_active_deadline(&spec, &status, now) {
            Some((
                REASON_DEADLINE_EXCEEDED,
                "Job was active longer than specified deadline".to_string(),
            ))
        } else {
            None
        };
        finished = failure
            .map(|(reason, message)| new_condition(FAILURE_TARGET, "True", reason, &message, now));
    }

    // Pods: delete everything active once the job failed or met its success criteria;
    // otherwise manage toward parallelism (upstream manageJob).
    let backoff_wait = if finished.is_none() {
        input.backoff_remaining_after(&new_failed, &policy_actions, input.pods, &mut plan.backoff)
    } else {
        Duration::ZERO
    };
    // The completed indexes with those of succeeded pods not counted yet.
    let mut completed_now = completed.clone();
    if indexed {
        let succeeded = input
            .pods
            .iter()
            .filter(tracked)
            .filter(|p| phase(p) == "Succeeded");
        completed_now.extend(succeeded.filter_map(|p| indexes::completion_index(p)));
    }
    let mut active_after = active.len();
    if finished.is_some() {
        plan.delete = active.iter().map(|p| (*p).clone()).collect();
        active_after = 0;
    } else if input.expectations_satisfied && !being_deleted {
        let succeeded_so_far = if indexed {
            0
        } else {
            status.succeeded.unwrap_or(0) as usize + uncounted_s.len() + new_succeeded_count
        };
        let managed = manage_pods(
            &spec,
            &active,
            terminating,
            succeeded_so_far,
            &completed_now,
        );
        plan.delete = managed.delete;
        active_after = active_after.saturating_sub(plan.delete.len());
        if !managed.create.is_empty() {
            if backoff_wait.is_zero() {
                active_after += managed.create.len();
                plan.create = managed.create;
            } else {
                plan.requeue_after = Some(backoff_wait);
            }
        }
    }

    // Success (upstream: counted after manageJob, with the active count it left).
    if finished.is_none() {
        let complete = if indexed {
            let total = completed_now.len();
            completions.is_some_and(|c| total >= usize::try_from(c).unwrap_or(0))
                && active_after == 0
        } else {
            let succeeded =
                status.succeeded.unwrap_or(0) as usize + uncounted_s.len() + new_succeeded_count;
            match completions {
                None => succeeded > 0 && active_after == 0,
                Some(c) => succeeded >= usize::try_from(c).unwrap_or(0) && active_after == 0,
            }
        };
        if complete {
            finished = Some(new_condition(
                SUCCESS_CRITERIA_MET,
                "True",
                REASON_COMPLETIONS_REACHED,
                "Reached expected number of succeeded pods",
                now,
            ));
        }
    }

    // Suspension (only while not finishing).
    if finished.is_none() {
        let suspended = spec.suspend == Some(true);
        let was_suspended = condition(Some(&status), SUSPENDED).is_some();
        if suspended && !was_suspended {
            ensure_condition(
                &mut status,
                SUSPENDED,
                "True",
                "JobSuspended",
                "Job suspended",
                now,
            );
            plan.events.push(event(false, "Suspended", "Job suspended"));
        } else if !suspended && was_suspended {
            ensure_condition(
                &mut status,
                SUSPENDED,
                "False",
                "JobResumed",
                "Job resumed",
                now,
            );
            // The active deadline counts from the resumption.
            status.start_time = Some(Time(now));
            plan.events.push(event(false, "Resumed", "Job resumed"));
        }
        if suspended {
            plan.delete = active.iter().map(|p| (*p).clone()).collect();
            plan.create.clear();
            active_after = 0;
            plan.requeue_after = None;
        }
    }

    // Which finished pods to count and release (upstream trackJobStatusAndRemoveFinalizers).
    let mut new_uncounted_s = uncounted_s.clone();
    let mut new_uncounted_f = uncounted_f.clone();
    let finishing_failed = finished
        .as_ref()
        .is_some_and(|c| c.type_ != SUCCESS_CRITERIA_MET);
    let mut pods_sorted: Vec<&Arc<Pod>> = input.pods.iter().collect();
    if indexed {
        pods_sorted.sort_by_key(|p| indexes::completion_index(p).unwrap_or(i32::MAX));
    }
    let mut new_indexes = Vec::new();
    for pod in pods_sorted {
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        if !uids_with_finalizer.contains(&uid) {
            continue;
        }
        let considered_failed = is_pod_failed(pod, &spec);
        let can_remove =
            being_deleted || finished.is_some() || phase(pod) == "Succeeded" || considered_failed;
        if !can_remove {
            continue;
        }
        plan.remove_finalizers.push(pod.clone());
        let index = indexes::completion_index(pod);
        let index_ok = !indexed || index.is_some_and(|i| i < completions.unwrap_or(0));
        if phase(pod) == "Succeeded" && !new_uncounted_f.contains(&uid) {
            if indexed {
                if let Some(i) = index.filter(|_| index_ok) {
                    if completed.insert(i) {
                        new_indexes.push(i);
                    }
                }
            } else if !new_uncounted_s.contains(&uid) {
                new_uncounted_s.push(uid);
            }
        } else if (considered_failed || finishing_failed)
            && !new_uncounted_f.contains(&uid)
            && index_ok
        {
            let counts = phase(pod) != "Failed"
                || policy::match_pod_failure_policy(spec.pod_failure_policy.as_ref(), pod).counts();
            if counts {
                new_uncounted_f.push(uid);
            }
        }
        if new_indexes.len() + new_uncounted_s.len() + new_uncounted_f.len() >= MAX_UNCOUNTED_PODS {
            break;
        }
    }
    set_uncounted(&mut status, new_uncounted_s, new_uncounted_f);
    if indexed {
        let formatted = indexes::format(&completed);
        status.completed_indexes = (!formatted.is_empty()).then_some(formatted);
        let n = i32::try_from(completed.len()).unwrap_or(i32::MAX);
        status.succeeded = (n != 0).then_some(n);
    }

    // Interim conditions go out with the first write; the terminal one waits for the flush.
    if let Some(cond) = &finished {
        let (interim, terminal) = if cond.type_ == FAILURE_TARGET {
            (FAILURE_TARGET, FAILED)
        } else {
            (SUCCESS_CRITERIA_MET, COMPLETE)
        };
        if condition(Some(&status), interim).is_none() {
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(cond.clone());
        }
        plan.finished = Some(new_condition(
            terminal,
            "True",
            cond.reason.as_deref().unwrap_or_default(),
            cond.message.as_deref().unwrap_or_default(),
            now,
        ));
    }

    let to_i32 = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    status.active = (active_after != 0).then_some(to_i32(active_after));
    status.ready = Some(to_i32(ready));
    status.terminating = Some(to_i32(terminating));
    plan.terminating = to_i32(terminating);

    if plan.finished.is_none() && spec.suspend != Some(true) {
        if let Some(left) = deadline_remaining(&spec, &status, now) {
            let left = left.max(Duration::from_millis(100));
            plan.requeue_after = Some(plan.requeue_after.map_or(left, |r| r.min(left)));
        }
    }
    plan.status = status;
    plan
}

impl SyncInput<'_> {
    /// Folds this sync's newly finished pods into the backoff record and says how long pod
    /// creation must still wait.
    fn backoff_remaining_after(
        &self,
        new_failed: &[&Arc<Pod>],
        actions: &[PolicyAction],
        pods: &[Arc<Pod>],
        record: &mut BackoffRecord,
    ) -> Duration {
        let mut fresh = self.backoff;
        let failed: Vec<Timestamp> = new_failed
            .iter()
            .zip(actions)
            .filter(|(_, a)| a.counts())
            .map(|(p, _)| policy::finished_time(p, self.now))
            .collect();
        let succeeded: Vec<Timestamp> = pods
            .iter()
            .filter(|p| has_tracking_finalizer(p) && phase(p) == "Succeeded")
            .filter(|p| {
                p.metadata
                    .uid
                    .as_ref()
                    .is_some_and(|u| !self.expected_removed_finalizers.contains(u))
            })
            .map(|p| policy::finished_time(p, self.now))
            .collect();
        fresh.observe(&succeeded, &failed);
        *record = fresh;
        fresh.remaining(self.backoff_base, policy::MAX_POD_FAILURE_BACKOFF, self.now)
    }
}

/// Pods to create (with their index) and delete to move toward parallelism.
#[derive(Debug, Default)]
struct Managed {
    create: Vec<Option<i32>>,
    delete: Vec<Arc<Pod>>,
}

/// upstream `manageJob` (not suspended, not finishing).
fn manage_pods(
    spec: &JobSpec,
    active: &[&Arc<Pod>],
    terminating: usize,
    succeeded: usize,
    completed: &BTreeSet<i32>,
) -> Managed {
    let parallelism = usize::try_from(spec.parallelism.unwrap_or(1)).unwrap_or(0);
    let replace_blocked = if only_replace_failed(spec) {
        terminating
    } else {
        0
    };
    let mut managed = Managed::default();
    if is_indexed(spec) {
        let completions = spec.completions.unwrap_or(0);
        // Active pods with a bad or finished index, or a second pod for one index, go.
        let mut by_index: BTreeMap<i32, Vec<&Arc<Pod>>> = BTreeMap::new();
        for pod in active {
            match indexes::completion_index(pod) {
                Some(i) if i < completions && !completed.contains(&i) => {
                    by_index.entry(i).or_default().push(pod)
                }
                _ => managed.delete.push((*pod).clone()),
            }
        }
        let mut kept: Vec<(i32, &Arc<Pod>)> = Vec::new();
        for (i, mut pods) in by_index {
            pods.sort_by(|a, b| deletion_order(a, b));
            // The best keeper sorts last in deletion order.
            if let Some(keep) = pods.pop() {
                kept.push((i, keep));
            }
            managed.delete.extend(pods.into_iter().cloned());
        }
        let remaining = usize::try_from(completions)
            .unwrap_or(0)
            .saturating_sub(completed.len());
        let want = parallelism.min(remaining);
        if kept.len() > want {
            // Highest indexes go first.
            let excess = kept.len() - want;
            for (_, pod) in kept.iter().rev().take(excess) {
                managed.delete.push((*pod).clone());
            }
            return managed;
        }
        let busy: BTreeSet<i32> = kept.iter().map(|(i, _)| *i).collect();
        let diff = want
            .saturating_sub(kept.len() + replace_blocked)
            .min(MAX_POD_CREATE_DELETE_PER_SYNC);
        managed.create = (0..completions)
            .filter(|i| !completed.contains(i) && !busy.contains(i))
            .take(diff)
            .map(Some)
            .collect();
        return managed;
    }
    let want = match spec.completions {
        None if succeeded > 0 => active.len(),
        None => parallelism,
        Some(c) => usize::try_from(c)
            .unwrap_or(0)
            .saturating_sub(succeeded)
            .min(parallelism),
    };
    if active.len() > want {
        let mut victims: Vec<&Arc<Pod>> = active.to_vec();
        victims.sort_by(|a, b| deletion_order(a, b));
        managed.delete = victims
            .into_iter()
            .take((active.len() - want).min(MAX_POD_CREATE_DELETE_PER_SYNC))
            .cloned()
            .collect();
        return managed;
    }
    let diff = want
        .saturating_sub(active.len() + replace_blocked)
        .min(MAX_POD_CREATE_DELETE_PER_SYNC);
    managed.create = vec![None; diff];
    managed
}

/// Which pod to delete first (upstream's `ActivePods` order, simplified): unscheduled before
/// scheduled, not ready before ready, newer before older.
fn deletion_order(a: &Arc<Pod>, b: &Arc<Pod>) -> std::cmp::Ordering {
    let scheduled = |p: &Pod| p.spec.as_ref().is_some_and(|s| s.node_name.is_some());
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    scheduled(a)
        .cmp(&scheduled(b))
        .then(is_ready(a).cmp(&is_ready(b)))
        .then(created(b).cmp(&created(a)))
}

/// The pod a job creates: its template plus the job labels, the tracking finalizer, the
/// owner reference, and for Indexed jobs the completion index (annotation, label, env var,
/// hostname `<job>-<index>`).
pub fn pod_from_template(
    job: &Job,
    index: Option<i32>,
    owner: OwnerReference,
) -> Result<Pod, String> {
    let spec = job.spec.as_ref().ok_or("the job has no spec")?;
    let job_name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let generate_name = match index {
        Some(i) => generate_name_with_index(&job_name, i),
        None => format!("{job_name}-"),
    };
    let mut pod = podcontrol::pod_from_template(
        &spec.template,
        generate_name,
        job.metadata.namespace.clone(),
        owner,
    )?;
    let meta = &mut pod.metadata;
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    for (key, value) in [
        (CONTROLLER_UID_LABEL, &uid),
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (JOB_NAME_LABEL, &job_name),
        (LEGACY_JOB_NAME_LABEL, &job_name),
    ] {
        labels
            .entry(key.to_string())
            .or_insert_with(|| value.clone());
    }
    let finalizers = meta.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == JOB_TRACKING_FINALIZER) {
        finalizers.push(JOB_TRACKING_FINALIZER.to_string());
    }
    if let Some(i) = index {
        meta.annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(COMPLETION_INDEX_ANNOTATION.into(), i.to_string());
        labels.insert(COMPLETION_INDEX_LABEL.into(), i.to_string());
        if let Some(pod_spec) = pod.spec.as_mut() {
            pod_spec.hostname = Some(format!("{job_name}-{i}"));
            let env = EnvVar {
                name: COMPLETION_INDEX_ENV.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!(
                            "metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
                        ),
                    }),
                    ..Default::default()
                }),
            };
            let containers = pod_spec
                .containers
                .iter_mut()
                .chain(pod_spec.init_containers.iter_mut().flatten());
            for container in containers {
                let vars = container.env.get_or_insert_with(Vec::new);
                if !vars.iter().any(|v| v.name == COMPLETION_INDEX_ENV) {
                    vars.push(env.clone());
                }
            }
        }
    }
    if pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.is_empty())
    {
        pod.metadata.annotations = None;
    }
    Ok(pod)
}

/// upstream `podGenerateNameWithIndex`: `<job>-<index>-`, the job name cut so the generated
/// name (5 random characters more) stays a valid 63-character label.
fn generate_name_with_index(job_name: &str, index: i32) -> String {
    let suffix = format!("-{index}-");
    let max_prefix = 63usize.saturating_sub(5 + suffix.len());
    let prefix: String = job_name.chars().take(max_prefix).collect();
    format!("{prefix}{suffix}")
}

#[cfg(test)]
mod tests;
