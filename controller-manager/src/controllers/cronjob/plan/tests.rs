use super::*;
use k8s_openapi::api::batch::v1::{CronJobSpec, JobCondition, JobStatus};

fn ts(s: &str) -> Timestamp {
    match s.parse::<Timestamp>() {
        Ok(t) => t,
        Err(err) => panic!("bad timestamp {s}: {err}"),
    }
}

fn cronjob(
    schedule: &str,
    created: &str,
    edit: impl FnOnce(&mut CronJobSpec, &mut CronJobStatus),
) -> CronJob {
    let mut spec = CronJobSpec {
        schedule: schedule.into(),
        ..Default::default()
    };
    let mut status = CronJobStatus::default();
    edit(&mut spec, &mut status);
    CronJob {
        metadata: ObjectMeta {
            name: Some("cj".into()),
            namespace: Some("ns".into()),
            uid: Some("cj-uid".into()),
            creation_timestamp: Some(Time(ts(created))),
            ..Default::default()
        },
        spec: Some(spec),
        status: Some(status),
    }
}

fn job(name: &str, uid: &str, finished: Option<(&str, &str)>) -> Arc<Job> {
    Arc::new(Job {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            ..Default::default()
        },
        spec: None,
        status: Some(JobStatus {
            start_time: finished.map(|(_, at)| Time(ts(at))),
            completion_time: finished
                .filter(|(c, _)| *c == "Complete")
                .map(|(_, at)| Time(ts(at))),
            conditions: finished.map(|(c, at)| {
                vec![JobCondition {
                    type_: c.into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(ts(at))),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    })
}

fn active_ref(name: &str, uid: &str) -> ObjectReference {
    ObjectReference {
        name: Some(name.into()),
        uid: Some(uid.into()),
        ..Default::default()
    }
}

fn run(cj: &CronJob, jobs: &[Arc<Job>], now: &str) -> CronPlan {
    plan_sync(&CronInput {
        cronjob: cj,
        jobs,
        missing: &HashSet::new(),
        now: ts(now),
    })
}

fn reasons(plan: &CronPlan) -> Vec<&str> {
    plan.events.iter().map(|e| e.reason.as_str()).collect()
}

#[test]
fn creates_the_most_recent_job_and_requeues_for_the_next() {
    let cj = cronjob("*/5 * * * *", "2024-05-01T10:00:00Z", |_, _| {});
    let plan = run(&cj, &[], "2024-05-01T10:07:30Z");
    let Some(new) = &plan.create else {
        panic!("nothing to create: {plan:?}")
    };
    assert_eq!(new.scheduled, ts("2024-05-01T10:05:00Z"));
    let minutes = ts("2024-05-01T10:05:00Z").as_second() / 60;
    assert_eq!(
        new.job.metadata.name.as_deref(),
        Some(format!("cj-{minutes}").as_str())
    );
    let annotations = new.job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get(SCHEDULED_TIMESTAMP_ANNOTATION)
            .map(String::as_str),
        Some("2024-05-01T10:05:00Z")
    );
    let owner = &new
        .job
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("CronJob", "cj-uid", Some(true))
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(150_100)));
}

#[test]
fn scheduled_timestamp_uses_the_time_zone() {
    let cj = cronjob("0 9 * * *", "2024-07-01T00:00:00Z", |s, _| {
        s.time_zone = Some("Europe/Berlin".into())
    });
    let plan = run(&cj, &[], "2024-07-01T07:00:30Z");
    let Some(new) = &plan.create else {
        panic!("nothing to create: {plan:?}")
    };
    let annotations = new.job.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get(SCHEDULED_TIMESTAMP_ANNOTATION)
            .map(String::as_str),
        Some("2024-07-01T09:00:00+02:00")
    );
}

#[test]
fn nothing_before_the_first_time_or_twice_for_one_time() {
    let cj = cronjob("0 * * * *", "2024-05-01T10:10:00Z", |_, _| {});
    let plan = run(&cj, &[], "2024-05-01T10:59:00Z");
    assert!(plan.create.is_none());
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(60_100)));
    let done = cronjob("0 * * * *", "2024-05-01T10:10:00Z", |_, st| {
        st.last_schedule_time = Some(Time(ts("2024-05-01T11:00:00Z")));
    });
    assert!(run(&done, &[], "2024-05-01T11:00:05Z").create.is_none());
}

#[test]
fn concurrency_policies() {
    let running = job("cj-old", "old-uid", None);
    let with_active = |policy: &str| {
        let policy = policy.to_string();
        cronjob("* * * * *", "2024-05-01T10:00:00Z", move |s, st| {
            s.concurrency_policy = Some(policy);
            st.active = Some(vec![active_ref("cj-old", "old-uid")]);
            st.last_schedule_time = Some(Time(ts("2024-05-01T10:01:00Z")));
        })
    };
    let forbid = run(
        &with_active("Forbid"),
        std::slice::from_ref(&running),
        "2024-05-01T10:02:10Z",
    );
    assert!(forbid.create.is_none());
    assert!(forbid.delete.is_empty());
    assert_eq!(reasons(&forbid), ["JobAlreadyActive"]);

    let allow = run(
        &with_active("Allow"),
        std::slice::from_ref(&running),
        "2024-05-01T10:02:10Z",
    );
    assert!(allow.create.is_some());
    assert_eq!(
        allow.status.active.as_ref().map(Vec::len),
        Some(1),
        "the old one stays"
    );

    let replace = run(
        &with_active("Replace"),
        std::slice::from_ref(&running),
        "2024-05-01T10:02:10Z",
    );
    assert!(replace.create.is_some());
    assert_eq!(replace.delete.len(), 1);
    assert_eq!(replace.delete[0].metadata.name.as_deref(), Some("cj-old"));
    assert_eq!(replace.status.active, None);
}

#[test]
fn starting_deadline_and_missed_times() {
    let late = cronjob("0 * * * *", "2024-05-01T09:30:00Z", |s, _| {
        s.starting_deadline_seconds = Some(60)
    });
    let plan = run(&late, &[], "2024-05-01T10:05:00Z");
    assert!(
        plan.create.is_none(),
        "the only time in the window was missed"
    );
    let plan = run(&late, &[], "2024-05-01T10:00:30Z");
    assert!(plan.create.is_some(), "within the deadline");

    let long_ago = cronjob("* * * * *", "2024-04-01T00:00:00Z", |_, _| {});
    let plan = run(&long_ago, &[], "2024-05-01T00:00:30Z");
    assert_eq!(reasons(&plan), ["TooManyMissedTimes"]);
    let Some(new) = &plan.create else {
        panic!("the latest missed time still runs")
    };
    assert_eq!(new.scheduled, ts("2024-05-01T00:00:00Z"));
}

#[test]
fn active_list_follows_jobs() {
    let cj = cronjob("0 0 1 1 *", "2024-05-01T00:00:00Z", |_, st| {
        st.active = Some(vec![active_ref("cj-a", "a"), active_ref("cj-gone", "gone")]);
        st.last_successful_time = Some(Time(ts("2024-05-01T00:00:00Z")));
    });
    let jobs = [
        job("cj-a", "a", Some(("Complete", "2024-05-02T00:00:00Z"))),
        job("cj-new", "new", None),
    ];
    let missing: HashSet<String> = ["gone".to_string()].into();
    let plan = plan_sync(&CronInput {
        cronjob: &cj,
        jobs: &jobs,
        missing: &missing,
        now: ts("2024-05-03T00:00:00Z"),
    });
    let names: Vec<_> = plan
        .status
        .active
        .iter()
        .flatten()
        .filter_map(|r| r.name.as_deref())
        .collect();
    assert_eq!(names, ["cj-new"]);
    assert_eq!(
        plan.status.last_successful_time,
        Some(Time(ts("2024-05-02T00:00:00Z")))
    );
    assert_eq!(reasons(&plan), ["SawCompletedJob", "MissingJob"]);
    assert_eq!(
        plan.events[0].message,
        "Saw completed job: cj-a, condition: Complete"
    );
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    let cj = cronjob("0 0 1 1 *", "2024-05-01T00:00:00Z", |s, _| {
        s.successful_jobs_history_limit = Some(1);
        s.failed_jobs_history_limit = Some(0);
    });
    let jobs = [
        job("ok-1", "1", Some(("Complete", "2024-05-01T01:00:00Z"))),
        job("ok-2", "2", Some(("Complete", "2024-05-01T02:00:00Z"))),
        job("bad", "3", Some(("Failed", "2024-05-01T03:00:00Z"))),
        job("running", "4", None),
    ];
    let plan = run(&cj, &jobs, "2024-05-03T00:00:00Z");
    let mut deleted: Vec<_> = plan
        .delete
        .iter()
        .filter_map(|j| j.metadata.name.as_deref())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["bad", "ok-1"]);
}

#[test]
fn suspended_and_invalid_cronjobs_do_nothing() {
    let suspended = cronjob("* * * * *", "2024-05-01T00:00:00Z", |s, _| {
        s.suspend = Some(true)
    });
    let plan = run(&suspended, &[], "2024-05-01T00:10:00Z");
    assert!(plan.create.is_none() && plan.requeue_after.is_none());

    let cases = [
        ("61 * * * *", None, "UnparseableSchedule"),
        ("59 23 31 2 *", None, "InvalidSchedule"),
        ("* * * * *", Some("Nowhere/Land"), "UnknownTimeZone"),
    ];
    for (schedule, zone, reason) in cases {
        let cj = cronjob(schedule, "2024-05-01T00:00:00Z", |s, _| {
            s.time_zone = zone.map(Into::into)
        });
        let plan = run(&cj, &[], "2024-05-01T00:10:00Z");
        assert!(plan.invalid, "{schedule}");
        assert!(plan.create.is_none());
        assert_eq!(plan.events.len(), 1);
        assert!(plan.events[0].warning);
        assert_eq!(plan.events[0].reason, reason);
    }
}
