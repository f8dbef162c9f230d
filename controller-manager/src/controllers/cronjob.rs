//! The CronJob controller (`cronjob-controller`), as upstream's `pkg/controller/cronjob`
//! (the v2 controller): Jobs named `<cronjob>-<scheduled minutes since the epoch>` and annotated
//! with `batch.kubernetes.io/cronjob-scheduled-timestamp` are created at each schedule time.
//!
//! Implemented, as upstream:
//! - standard cron syntax and macros ([`schedule`]), `spec.timeZone` (IANA names), UTC
//!   otherwise (upstream uses the controller's local zone, UTC in a normal deployment);
//! - only the most recent missed time runs; more than 100 missed times give a Warning
//!   `TooManyMissedTimes`; `startingDeadlineSeconds` bounds the look-back and a start later
//!   than it gives `MissSchedule`;
//! - concurrencyPolicy Allow / Forbid (`JobAlreadyActive` event) / Replace (active jobs
//!   deleted), suspend, successful/failedJobsHistoryLimit (oldest finished jobs deleted);
//! - status.active reconciled with the owned jobs (finished ones removed with
//!   `SawCompletedJob`, vanished ones — confirmed by a live GET — with `MissingJob`, unfinished
//!   ones missing from it added back), lastScheduleTime, lastSuccessfulTime;
//! - an unparsable schedule (`UnparseableSchedule`), one that never fires (`InvalidSchedule`)
//!   or an unknown time zone (`UnknownTimeZone`) records a Warning event and is not requeued
//!   until the CronJob changes; other CronJobs are unaffected;
//! - events SuccessfulCreate / FailedCreate / SuccessfulDelete; requeue at the next schedule
//!   time; workers from `--concurrent-cron-job-syncs`.
//!
//! Not implemented: `@every` schedules, the `TZ=` prefix of old objects (refused), metrics.

mod plan;
mod schedule;

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::anyhow;
use client::client::{DeleteParams, PropagationPolicy};
use client::events::CoreEventRecorder;
use client::informer::store::split_key;
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::owners::enqueue_controller_of;
use crate::framework::{
    controller_ref, controller_uid_indexer, error_message, key_of, latest, reference,
    run_workers_when_synced, warn_event, ControllerContext, Reconciler, CONTROLLER_UID_INDEX,
};
use plan::{CronInput, PlannedEvent};

const COMPONENT: &str = "cronjob-controller";

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let cronjobs = ctx.factory.informer::<CronJob>();
    let jobs = ctx.factory.informer::<Job>();
    jobs.add_indexer(CONTROLLER_UID_INDEX, controller_uid_indexer());
    let queue = ctx.queue("cronjob");
    let controller = Arc::new(CronJobController {
        client: ctx.client.clone(),
        cronjobs: cronjobs.clone(),
        jobs: jobs.clone(),
        queue: queue.clone(),
        recorder: ctx.recorder(COMPONENT),
    });
    {
        let q = queue.clone();
        cronjobs.add_event_handler(None, move |event: Event<CronJob>| match event {
            Event::Add(cj) | Event::Update { new: cj, .. } => q.add(key_of(cj.as_ref())),
            Event::Delete(_) => {}
        });
    }
    {
        let (owners, q) = (cronjobs.clone(), queue.clone());
        jobs.add_event_handler(None, move |event: Event<Job>| {
            let job = latest(&event);
            enqueue_controller_of(&owners, &q, &job.metadata);
            if let Event::Update { old, .. } = &event {
                if controller_ref(&old.metadata) != controller_ref(&job.metadata) {
                    enqueue_controller_of(&owners, &q, &old.metadata);
                }
            }
        });
    }
    let workers = ctx.options.concurrent_cron_job_syncs;
    run_workers_when_synced(
        ctx,
        COMPONENT,
        queue,
        workers,
        &[&cronjobs, &jobs],
        controller,
    );
    Ok(())
}

struct CronJobController {
    client: Client,
    cronjobs: Informer<CronJob>,
    jobs: Informer<Job>,
    queue: Queue<String>,
    recorder: CoreEventRecorder,
}

impl Reconciler for CronJobController {
    async fn reconcile(&self, key: &str) -> anyhow::Result<()> {
        self.sync(key).await
    }
}

impl CronJobController {
    fn record(&self, object: &ObjectReference, e: &PlannedEvent) {
        if e.warning {
            warn_event(&self.recorder, object, &e.reason, &e.message);
        } else {
            self.recorder.normal(object, &e.reason, &e.message);
        }
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(cj) = self.cronjobs.store().get_namespaced(ns, name) else {
            return Ok(());
        };
        let uid = cj.metadata.uid.clone().unwrap_or_default();
        let jobs = self.jobs.store().by_index(CONTROLLER_UID_INDEX, &uid);
        let job_api: Api<Job> = self.client.api(ns);

        // Active entries the cache does not show may just be new: only a live 404 proves
        // them gone.
        let known: HashSet<&str> = jobs
            .iter()
            .filter_map(|j| j.metadata.uid.as_deref())
            .collect();
        let mut missing = HashSet::new();
        for r in cj.status.iter().flat_map(|s| s.active.iter().flatten()) {
            let Some(ref_uid) = r.uid.as_deref() else {
                continue;
            };
            if known.contains(ref_uid) {
                continue;
            }
            let live = job_api
                .get_opt(r.name.as_deref().unwrap_or_default())
                .await?;
            if live.is_none_or(|j| j.metadata.uid.as_deref() != Some(ref_uid)) {
                missing.insert(ref_uid.to_string());
            }
        }

        let now = Timestamp::now();
        let plan = plan::plan_sync(&CronInput {
            cronjob: &cj,
            jobs: &jobs,
            missing: &missing,
            now,
        });
        let cj_ref = reference(cj.as_ref());
        for e in &plan.events {
            self.record(&cj_ref, e);
        }
        let mut status = plan.status.clone();

        let background = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        for job in &plan.delete {
            let job_name = job.metadata.name.clone().unwrap_or_default();
            match job_api.delete(&job_name, &background).await {
                Ok(()) => self.recorder.normal(
                    &cj_ref,
                    "SuccessfulDelete",
                    &format!("Deleted job {job_name}"),
                ),
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    let message = error_message(&err);
                    warn_event(
                        &self.recorder,
                        &cj_ref,
                        "FailedDelete",
                        &format!("Deleted job: {message}"),
                    );
                }
            }
        }

        let mut create_error = None;
        if let Some(new) = &plan.create {
            match job_api.create(&new.job).await {
                Ok(created) => {
                    let job_name = created.metadata.name.clone().unwrap_or_default();
                    self.recorder.normal(
                        &cj_ref,
                        "SuccessfulCreate",
                        &format!("Created job {job_name}"),
                    );
                    status
                        .active
                        .get_or_insert_with(Vec::new)
                        .push(plan::job_reference(&created));
                    status.last_schedule_time = Some(Time(new.scheduled));
                }
                Err(err) if err.is_already_exists() => {
                    // Made by an earlier sync whose status write was lost: the next sync finds
                    // it among the owned jobs and records it.
                    tracing::info!(cronjob = %key, "job for this schedule time already exists");
                }
                Err(err) => {
                    let message = error_message(&err);
                    warn_event(
                        &self.recorder,
                        &cj_ref,
                        "FailedCreate",
                        &format!("Error creating job: {message}"),
                    );
                    create_error = Some(anyhow!("{key}: creating job: {message}"));
                }
            }
        }

        if cj.status.as_ref() != Some(&status)
            && !(cj.status.is_none() && status == Default::default())
        {
            let cj_api: Api<CronJob> = self.client.api(ns);
            let mut updated = cj.as_ref().clone();
            updated.status = Some(status);
            cj_api
                .replace_status(name, &updated)
                .await
                .map_err(|e| anyhow!("{key}: updating status: {e}"))?;
        }
        if let Some(err) = create_error {
            return Err(err);
        }
        if let Some(after) = plan.requeue_after {
            self.queue.add_after(key.to_string(), after);
        }
        Ok(())
    }
}
