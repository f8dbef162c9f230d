//! The TTL-after-finished controller (`ttl-after-finished-controller`, upstream's
//! `pkg/controller/ttlafterfinished`): a Job with `spec.ttlSecondsAfterFinished` is deleted
//! (background propagation, so the garbage collector removes its pods) that many seconds after
//! its Complete or Failed condition's transition time. The key is requeued for the moment the
//! TTL runs out; before deleting, a fresh GET re-checks the live object (the TTL may have been
//! changed) and the delete carries its UID and resourceVersion as preconditions.
//!
//! Not implemented: the job_deletion_duration metric.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use client::client::{DeleteParams, Preconditions, PropagationPolicy};
use client::informer::store::split_key;
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use super::plan;
use crate::framework::{key_of, run_workers_when_synced, ControllerContext, Reconciler};

const COMPONENT: &str = "ttl-after-finished-controller";

/// What the TTL says about a job now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TtlState {
    /// No TTL, not finished, or already being deleted.
    NotApplicable,
    /// Expires after this long.
    Wait(Duration),
    Expired,
}

/// upstream `needsCleanup` + `timeLeft`.
pub fn ttl_state(job: &Job, now: Timestamp) -> TtlState {
    let Some(ttl) = job.spec.as_ref().and_then(|s| s.ttl_seconds_after_finished) else {
        return TtlState::NotApplicable;
    };
    if job.metadata.deletion_timestamp.is_some() || plan::finished_type(job).is_none() {
        return TtlState::NotApplicable;
    }
    // A finished job without a transition time counts as finished now (upstream does the same
    // through its "finishAt" fallback), so it still expires.
    let finished = plan::finish_time(job).unwrap_or(now);
    let ttl = Duration::from_secs(u64::try_from(ttl).unwrap_or(0));
    let elapsed = Duration::try_from(now.duration_since(finished)).unwrap_or(Duration::ZERO);
    match ttl.checked_sub(elapsed) {
        Some(left) if !left.is_zero() => TtlState::Wait(left),
        _ => TtlState::Expired,
    }
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let jobs = ctx.factory.informer::<Job>();
    let queue = ctx.queue("ttl_jobs_to_delete");
    {
        let q = queue.clone();
        jobs.add_event_handler(None, move |event: Event<Job>| match event {
            Event::Add(job) | Event::Update { new: job, .. } => {
                if ttl_state(&job, Timestamp::now()) != TtlState::NotApplicable {
                    q.add(key_of(job.as_ref()));
                }
            }
            Event::Delete(_) => {}
        });
    }
    let controller = Arc::new(TtlController {
        client: ctx.client.clone(),
        jobs: jobs.clone(),
        queue: queue.clone(),
    });
    let workers = ctx.options.concurrent_ttl_after_finished_syncs;
    run_workers_when_synced(ctx, COMPONENT, queue, workers, &[&jobs], controller);
    Ok(())
}

struct TtlController {
    client: Client,
    jobs: Informer<Job>,
    queue: Queue<String>,
}

impl Reconciler for TtlController {
    async fn reconcile(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = split_key(key);
        let Some(cached) = self.jobs.store().get_namespaced(ns, name) else {
            return Ok(());
        };
        match ttl_state(&cached, Timestamp::now()) {
            TtlState::NotApplicable => return Ok(()),
            TtlState::Wait(left) => {
                self.queue.add_after(key.to_string(), left);
                return Ok(());
            }
            TtlState::Expired => {}
        }
        // The cache may be stale (TTL changed, job recreated): decide on the live object.
        let api: Api<Job> = self.client.api(ns);
        let Some(fresh) = api.get_opt(name).await? else {
            return Ok(());
        };
        match ttl_state(&fresh, Timestamp::now()) {
            TtlState::NotApplicable => return Ok(()),
            TtlState::Wait(left) => {
                self.queue.add_after(key.to_string(), left);
                return Ok(());
            }
            TtlState::Expired => {}
        }
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            preconditions: Some(Preconditions {
                uid: fresh.metadata.uid.clone(),
                resource_version: fresh.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        tracing::info!(job = %key, "cleaning up finished job (TTL expired)");
        match api.delete(name, &params).await {
            Ok(()) => Ok(()),
            Err(err) if err.is_not_found() => Ok(()),
            Err(err) => Err(anyhow!("deleting job {key}: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{JobSpec, JobStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use k8s_openapi::jiff::SignedDuration;

    fn job(ttl: Option<i32>, finished_at: Option<Timestamp>, deleting: bool) -> Job {
        Job {
            metadata: ObjectMeta {
                name: Some("j".into()),
                deletion_timestamp: deleting.then_some(Time(Timestamp::UNIX_EPOCH)),
                ..Default::default()
            },
            spec: Some(JobSpec {
                ttl_seconds_after_finished: ttl,
                ..Default::default()
            }),
            status: Some(JobStatus {
                conditions: finished_at.map(|t| {
                    vec![plan::new_condition(
                        plan::COMPLETE,
                        "True",
                        "CompletionsReached",
                        "",
                        t,
                    )]
                }),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn ttl_table() {
        let t0 = Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1_000_000);
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        let cases = [
            (
                "no ttl",
                job(None, Some(t0), false),
                at(100),
                TtlState::NotApplicable,
            ),
            (
                "not finished",
                job(Some(10), None, false),
                at(100),
                TtlState::NotApplicable,
            ),
            (
                "being deleted",
                job(Some(0), Some(t0), true),
                at(100),
                TtlState::NotApplicable,
            ),
            (
                "waits",
                job(Some(10), Some(t0), false),
                at(4),
                TtlState::Wait(Duration::from_secs(6)),
            ),
            (
                "expired",
                job(Some(10), Some(t0), false),
                at(10),
                TtlState::Expired,
            ),
            (
                "ttl zero",
                job(Some(0), Some(t0), false),
                t0,
                TtlState::Expired,
            ),
        ];
        for (what, job, now, want) in cases {
            assert_eq!(ttl_state(&job, now), want, "{what}");
        }
    }
}
