//! The CronJob controller's decisions, as data (upstream's `syncCronJob`,
//! `mostRecentScheduleTime` and `cleanupFinishedJobs`): given a CronJob, the Jobs it controls and
//! the time, which status to write, which Jobs to delete, which Job to create and when to look
//! again. No I/O happens here.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::schedule::{self, Schedule};

pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// upstream: more missed start times than this is reported (and only the latest is run).
const MAX_MISSED: usize = 100;
/// How far the missed-times count is walked before giving up counting exactly.
const COUNT_LIMIT: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    pub warning: bool,
    pub reason: String,
    pub message: String,
}

fn event(warning: bool, reason: &str, message: String) -> PlannedEvent {
    PlannedEvent {
        warning,
        reason: reason.into(),
        message,
    }
}

pub struct CronInput<'a> {
    pub cronjob: &'a CronJob,
    /// Jobs whose controller reference is this CronJob.
    pub jobs: &'a [Arc<Job>],
    /// UIDs of `status.active` entries a live GET proved gone.
    pub missing: &'a HashSet<String>,
    pub now: Timestamp,
}

/// A Job to create for one scheduled time.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub job: Job,
    pub scheduled: Timestamp,
}

#[derive(Debug, Clone)]
pub struct CronPlan {
    pub status: CronJobStatus,
    pub events: Vec<PlannedEvent>,
    /// With the event to record once deleted.
    pub delete: Vec<Arc<Job>>,
    pub create: Option<NewJob>,
    pub requeue_after: Option<Duration>,
    /// The schedule or time zone is unusable: nothing else was planned.
    pub invalid: bool,
}

fn finished_condition(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find_map(|c| match (c.type_.as_str(), c.status.as_str()) {
            ("Complete", "True") => Some("Complete"),
            ("Failed", "True") => Some("Failed"),
            _ => None,
        })
}

pub fn job_reference(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        field_path: None,
    }
}

/// upstream `getTimeHashInMinutes`: the job name suffix.
pub fn job_name(cronjob: &str, scheduled: Timestamp) -> String {
    format!("{cronjob}-{}", scheduled.as_second().div_euclid(60))
}

/// RFC 3339 with `Z` for UTC, as Go's `time.RFC3339` prints it.
fn rfc3339(t: Timestamp, tz: &TimeZone) -> String {
    let zoned = t.to_zoned(tz.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// The scheduled time recorded on a job (annotation), if any.
fn job_scheduled_time(job: &Job) -> Option<Timestamp> {
    job.metadata
        .annotations
        .as_ref()?
        .get(SCHEDULED_TIMESTAMP_ANNOTATION)?
        .parse::<Timestamp>()
        .ok()
}

/// upstream `getJobFromTemplate2`.
pub fn job_from_template(
    cronjob: &CronJob,
    scheduled: Timestamp,
    tz: &TimeZone,
    owner: OwnerReference,
) -> Job {
    let spec = cronjob.spec.clone().unwrap_or_default();
    let template = spec.job_template;
    let meta = template.metadata.unwrap_or_default();
    let name = cronjob.metadata.name.clone().unwrap_or_default();
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        rfc3339(scheduled, tz),
    );
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&name, scheduled)),
            namespace: cronjob.metadata.namespace.clone(),
            labels: meta.labels,
            annotations: Some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    }
}

/// Activation times in `(earliest, now]`: the latest one and how many there were (counted
/// up to [`COUNT_LIMIT`]). Err when the schedule never fires.
pub fn most_recent(
    sched: &Schedule,
    tz: &TimeZone,
    earliest: Timestamp,
    now: Timestamp,
) -> Result<(Option<Timestamp>, usize), String> {
    let Some(first) = sched.next(earliest, tz) else {
        return Err("time difference between two schedules is less than 1 second".into());
    };
    if first > now {
        return Ok((None, 0));
    }
    let mut latest = first;
    let mut count = 1;
    while count < COUNT_LIMIT {
        match sched.next(latest, tz) {
            Some(t) if t <= now => {
                latest = t;
                count += 1;
            }
            _ => return Ok((Some(latest), count)),
        }
    }
    // Too many to walk: find the latest from a recent window instead.
    for window_days in [1i64, 32, 400, 2000] {
        let from = now - SignedDuration::from_hours(24 * window_days);
        if from <= latest {
            break;
        }
        let mut t = from;
        let mut found = None;
        while let Some(n) = sched.next(t, tz).filter(|n| *n <= now) {
            found = Some(n);
            t = n;
        }
        if let Some(found) = found {
            return Ok((Some(found), count));
        }
    }
    Ok((Some(latest), count))
}

fn until(next: Option<Timestamp>, now: Timestamp) -> Option<Duration> {
    let next = next?;
    let left = Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO);
    // A little late rather than early, so the schedule time has surely passed.
    Some(left + Duration::from_millis(100))
}

/// The whole decision; see [`CronPlan`].
pub fn plan_sync(input: &CronInput<'_>) -> CronPlan {
    let cj = input.cronjob;
    let now = input.now;
    let spec = cj.spec.clone().unwrap_or_default();
    let cj_name = cj.metadata.name.clone().unwrap_or_default();
    let mut status = cj.status.clone().unwrap_or_default();
    let mut plan = CronPlan {
        status: status.clone(),
        events: Vec::new(),
        delete: Vec::new(),
        create: None,
        requeue_after: None,
        invalid: false,
    };

    // Reconcile status.active with the jobs that exist.
    let mut active = status.active.take().unwrap_or_default();
    for job in input.jobs {
        let uid = job.metadata.uid.clone().unwrap_or_default();
        let name = job.metadata.name.clone().unwrap_or_default();
        let in_active = active
            .iter()
            .any(|r| r.uid.as_deref() == Some(uid.as_str()));
        match (in_active, finished_condition(job)) {
            (false, None) => {
                // Created by us but the status write was lost (or a relist raced it).
                let scheduled = job_scheduled_time(job);
                let last = status.last_schedule_time.as_ref().map(|t| t.0);
                if scheduled.is_some_and(|s| last.is_none_or(|l| s > l)) {
                    status.last_schedule_time = scheduled.map(Time);
                }
                active.push(job_reference(job));
            }
            (true, Some(condition)) => {
                active.retain(|r| r.uid.as_deref() != Some(uid.as_str()));
                plan.events.push(event(
                    false,
                    "SawCompletedJob",
                    format!("Saw completed job: {name}, condition: {condition}"),
                ));
                if condition == "Complete" {
                    let completed = job
                        .status
                        .as_ref()
                        .and_then(|s| s.completion_time.as_ref())
                        .map(|t| t.0);
                    let last = status.last_successful_time.as_ref().map(|t| t.0);
                    if let Some(completed) = completed {
                        if last.is_none_or(|l| completed > l) {
                            status.last_successful_time = Some(Time(completed));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    active.retain(|r| {
        let gone = r.uid.as_ref().is_some_and(|u| input.missing.contains(u));
        if gone {
            plan.events.push(event(
                false,
                "MissingJob",
                format!(
                    "Active job went missing: {}",
                    r.name.as_deref().unwrap_or_default()
                ),
            ));
        }
        !gone
    });
    status.active = (!active.is_empty()).then_some(active);
    plan.status = status.clone();
    if cj.metadata.deletion_timestamp.is_some() {
        return plan;
    }

    let tz = match schedule::time_zone(spec.time_zone.as_deref()) {
        Ok(tz) => tz,
        Err(err) => {
            let tz_name = spec.time_zone.clone().unwrap_or_default();
            plan.events.push(event(
                true,
                "UnknownTimeZone",
                format!("invalid timeZone: {tz_name:?}: {err}"),
            ));
            plan.invalid = true;
            return plan;
        }
    };
    let sched = match schedule::parse(&spec.schedule) {
        Ok(s) => s,
        Err(err) => {
            plan.events.push(event(
                true,
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {err}", spec.schedule),
            ));
            plan.invalid = true;
            return plan;
        }
    };

    plan.delete = history_to_delete(&spec, input.jobs, &status);

    if spec.suspend == Some(true) {
        return plan;
    }
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(now);
    let mut earliest = status
        .last_schedule_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(created);
    if let Some(sds) = spec.starting_deadline_seconds {
        let deadline = now - SignedDuration::from_secs(sds);
        if deadline > earliest {
            earliest = deadline;
        }
    }
    let (scheduled, missed) = match most_recent(&sched, &tz, earliest, now) {
        Ok(found) => found,
        Err(err) => {
            plan.events.push(event(
                true,
                "InvalidSchedule",
                format!("invalid schedule: {} : {err}", spec.schedule),
            ));
            plan.invalid = true;
            return plan;
        }
    };
    plan.requeue_after = until(sched.next(now, &tz), now);
    let Some(scheduled) = scheduled else {
        return plan;
    };
    if missed > MAX_MISSED {
        plan.events.push(event(
            true,
            "TooManyMissedTimes",
            format!("too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew"),
        ));
    }
    if let Some(sds) = spec.starting_deadline_seconds {
        if scheduled + SignedDuration::from_secs(sds) < now {
            plan.events.push(event(
                true,
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    rfc3339(scheduled, &tz)
                ),
            ));
            return plan;
        }
    }
    let name = job_name(&cj_name, scheduled);
    let active = status.active.clone().unwrap_or_default();
    let already = active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || status
            .last_schedule_time
            .as_ref()
            .is_some_and(|t| t.0 == scheduled);
    if already {
        return plan;
    }
    match spec.concurrency_policy.as_deref() {
        Some("Forbid") if !active.is_empty() => {
            plan.events.push(event(
                false,
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".into(),
            ));
            return plan;
        }
        Some("Replace") => {
            for r in &active {
                if let Some(job) = input.jobs.iter().find(|j| j.metadata.uid == r.uid) {
                    plan.delete.push(job.clone());
                }
            }
            plan.status.active = None;
        }
        _ => {}
    }
    let owner = OwnerReference {
        api_version: "batch/v1".into(),
        kind: "CronJob".into(),
        name: cj_name.clone(),
        uid: cj.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    plan.create = Some(NewJob {
        job: job_from_template(cj, scheduled, &tz, owner),
        scheduled,
    });
    plan
}

/// upstream `cleanupFinishedJobs`: the oldest finished jobs beyond the history limits.
fn history_to_delete(
    spec: &k8s_openapi::api::batch::v1::CronJobSpec,
    jobs: &[Arc<Job>],
    status: &CronJobStatus,
) -> Vec<Arc<Job>> {
    if spec.successful_jobs_history_limit.is_none() && spec.failed_jobs_history_limit.is_none() {
        return Vec::new();
    }
    let active: HashSet<&str> = status
        .active
        .iter()
        .flatten()
        .filter_map(|r| r.uid.as_deref())
        .collect();
    let mut delete = Vec::new();
    for (kind, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut finished: Vec<&Arc<Job>> = jobs
            .iter()
            .filter(|j| finished_condition(j) == Some(kind))
            .filter(|j| {
                j.metadata
                    .uid
                    .as_deref()
                    .is_none_or(|u| !active.contains(u))
            })
            .collect();
        let limit = usize::try_from(limit).unwrap_or(0);
        if finished.len() <= limit {
            continue;
        }
        // Oldest first: by start time, else creation time.
        finished.sort_by_key(|j| {
            j.status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .or(j.metadata.creation_timestamp.as_ref())
                .map(|t| t.0)
        });
        let excess = finished.len() - limit;
        delete.extend(finished.into_iter().take(excess).cloned());
    }
    delete
}

#[cfg(test)]
mod tests;
