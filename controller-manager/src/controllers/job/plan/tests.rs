use super::*;
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateTerminated, ContainerStatus, PodCondition, PodSpec,
    PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::SignedDuration;

fn t0() -> Timestamp {
    Timestamp::UNIX_EPOCH + SignedDuration::from_secs(1_700_000_000)
}

fn at(secs: i64) -> Timestamp {
    t0() + SignedDuration::from_secs(secs)
}

fn job(edit: impl FnOnce(&mut JobSpec, &mut JobStatus)) -> Job {
    let mut spec = JobSpec {
        completions: Some(1),
        parallelism: Some(1),
        backoff_limit: Some(6),
        template: PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        },
        ..Default::default()
    };
    let mut status = JobStatus {
        start_time: Some(Time(t0())),
        ..Default::default()
    };
    edit(&mut spec, &mut status);
    Job {
        metadata: ObjectMeta {
            name: Some("j".into()),
            namespace: Some("ns".into()),
            uid: Some("job-uid".into()),
            ..Default::default()
        },
        spec: Some(spec),
        status: Some(status),
    }
}

#[derive(Clone, Copy)]
enum State {
    Pending,
    Ready,
    Succeeded,
    Failed(i32),
    Deleting,
}

fn pod(uid: &str, state: State, finalizer: bool, index: Option<i32>) -> Arc<Pod> {
    let (phase, ready, exit) = match state {
        State::Pending | State::Deleting => ("Pending", false, None),
        State::Ready => ("Running", true, None),
        State::Succeeded => ("Succeeded", false, Some(0)),
        State::Failed(code) => ("Failed", false, Some(code)),
    };
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(format!("pod-{uid}")),
            namespace: Some("ns".into()),
            uid: Some(uid.into()),
            finalizers: finalizer.then(|| vec![JOB_TRACKING_FINALIZER.to_string()]),
            deletion_timestamp: matches!(state, State::Deleting).then(|| Time(t0())),
            annotations: index
                .map(|i| [(COMPLETION_INDEX_ANNOTATION.to_string(), i.to_string())].into()),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: ready.then(|| {
                vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    ..Default::default()
                }]
            }),
            container_statuses: exit.map(|code| {
                vec![ContainerStatus {
                    name: "main".into(),
                    state: Some(ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: code,
                            finished_at: Some(Time(t0())),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]
            }),
            ..Default::default()
        }),
    })
}

fn plan_at(job: &Job, pods: &[Arc<Pod>], now: Timestamp) -> SyncPlan {
    plan_sync(&SyncInput {
        job,
        pods,
        expected_removed_finalizers: &HashSet::new(),
        expectations_satisfied: true,
        backoff: BackoffRecord::default(),
        backoff_base: Duration::from_secs(10),
        now,
    })
}

fn plan(job: &Job, pods: &[Arc<Pod>]) -> SyncPlan {
    plan_at(job, pods, at(1000))
}

fn uids(pods: &[Arc<Pod>]) -> Vec<String> {
    let mut v: Vec<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    v.sort();
    v
}

fn uncounted(status: &JobStatus) -> (Vec<String>, Vec<String>) {
    uncounted_sets(status)
}

fn cond_types(status: &JobStatus) -> Vec<String> {
    status
        .conditions
        .iter()
        .flatten()
        .map(|c| c.type_.clone())
        .collect()
}

/// Runs the I/O's second half as if every finalizer removal succeeded.
fn finish(plan: &SyncPlan, now: Timestamp) -> (JobStatus, bool) {
    let mut status = plan.status.clone();
    let mut with = plan.uids_with_finalizer.clone();
    for p in &plan.remove_finalizers {
        if let Some(uid) = &p.metadata.uid {
            with.remove(uid);
        }
    }
    flush_uncounted(&mut status, &with);
    let finished = enact_finished(&mut status, plan.finished.as_ref(), plan.terminating, now);
    (status, finished)
}

#[test]
fn creates_toward_parallelism_and_completions() {
    // (completions, parallelism, succeeded so far, active pods, want creates, want deletes)
    type Case = (Option<i32>, i32, i32, usize, usize, usize);
    let cases: &[Case] = &[
        (Some(3), 2, 0, 0, 2, 0),
        (Some(3), 2, 2, 0, 1, 0),
        (Some(3), 5, 0, 1, 2, 0),
        (Some(3), 2, 0, 3, 0, 1),
        (None, 2, 0, 0, 2, 0),
        (Some(5), 0, 0, 2, 0, 2),
    ];
    for &(completions, parallelism, succeeded, active, creates, deletes) in cases {
        let j = job(|s, st| {
            s.completions = completions;
            s.parallelism = Some(parallelism);
            st.succeeded = (succeeded > 0).then_some(succeeded);
        });
        let pods: Vec<_> = (0..active)
            .map(|i| pod(&format!("a{i}"), State::Pending, true, None))
            .collect();
        let p = plan(&j, &pods);
        let what = format!("completions {completions:?} parallelism {parallelism} succeeded {succeeded} active {active}");
        assert_eq!(p.create.len(), creates, "{what}");
        assert_eq!(p.delete.len(), deletes, "{what}");
        assert_eq!(
            p.status.active.unwrap_or(0) as usize,
            active + creates - deletes,
            "{what}"
        );
    }
}

#[test]
fn deletion_prefers_not_ready_pods() {
    let j = job(|s, _| {
        s.completions = Some(3);
        s.parallelism = Some(1);
    });
    let pods = [
        pod("ready", State::Ready, true, None),
        pod("pending", State::Pending, true, None),
    ];
    assert_eq!(uids(&plan(&j, &pods).delete), ["pending"]);
}

#[test]
fn start_time_and_counts() {
    let j = job(|s, st| {
        s.parallelism = Some(3);
        s.completions = Some(3);
        st.start_time = None;
    });
    let pods = [
        pod("r", State::Ready, true, None),
        pod("p", State::Pending, true, None),
        pod("d", State::Deleting, false, None),
    ];
    let p = plan(&j, &pods);
    assert_eq!(p.status.start_time, Some(Time(at(1000))));
    assert_eq!(p.status.ready, Some(1));
    assert_eq!(p.status.terminating, Some(1));
    assert_eq!(p.terminating, 1);
}

#[test]
fn finished_pods_are_counted_through_uncounted_and_finalizer_removal() {
    let j = job(|s, _| {
        s.completions = Some(3);
        s.parallelism = Some(2);
    });
    let pods = [
        pod("ok", State::Succeeded, true, None),
        pod("bad", State::Failed(1), true, None),
        pod("run", State::Pending, true, None),
        pod("old", State::Succeeded, false, None),
    ];
    let p = plan(&j, &pods);
    assert_eq!(
        uncounted(&p.status),
        (vec!["ok".to_string()], vec!["bad".to_string()])
    );
    assert_eq!(
        p.status.succeeded, None,
        "not counted before the finalizer is gone"
    );
    assert_eq!(uids(&p.remove_finalizers), ["bad", "ok"]);
    assert_eq!(p.create.len(), 1, "2 parallel, 1 running, 1 succeeded of 3");
    let (status, finished) = finish(&p, at(1000));
    assert!(!finished);
    assert_eq!((status.succeeded, status.failed), (Some(1), Some(1)));
    assert_eq!(uncounted(&status), (vec![], vec![]));

    // A cache that still shows the finalizer of a pod already released does not count it twice.
    let counted = job(|s, st| {
        s.completions = Some(3);
        s.parallelism = Some(2);
        st.succeeded = Some(1);
        st.failed = Some(1);
    });
    let expected: HashSet<String> = ["ok".to_string(), "bad".to_string()].into();
    let p = plan_sync(&SyncInput {
        job: &counted,
        pods: &pods,
        expected_removed_finalizers: &expected,
        expectations_satisfied: true,
        backoff: BackoffRecord::default(),
        backoff_base: Duration::ZERO,
        now: at(1000),
    });
    assert_eq!(uncounted(&p.status), (vec![], vec![]));
    assert!(p.remove_finalizers.is_empty());
    assert_eq!((p.status.succeeded, p.status.failed), (Some(1), Some(1)));
}

#[test]
fn expectations_not_satisfied_means_no_pod_changes() {
    let j = job(|s, _| s.parallelism = Some(1));
    let p = plan_sync(&SyncInput {
        job: &j,
        pods: &[],
        expected_removed_finalizers: &HashSet::new(),
        expectations_satisfied: false,
        backoff: BackoffRecord::default(),
        backoff_base: Duration::ZERO,
        now: at(1000),
    });
    assert!(p.create.is_empty() && p.delete.is_empty());
}

#[test]
fn completion_sets_success_criteria_then_complete() {
    let j = job(|s, _| s.completions = Some(1));
    let p = plan(&j, &[pod("ok", State::Succeeded, true, None)]);
    assert_eq!(cond_types(&p.status), [SUCCESS_CRITERIA_MET]);
    let reason = p.finished.as_ref().and_then(|c| c.reason.clone());
    assert_eq!(reason.as_deref(), Some(REASON_COMPLETIONS_REACHED));
    let (status, finished) = finish(&p, at(1000));
    assert!(finished);
    assert_eq!(cond_types(&status), [SUCCESS_CRITERIA_MET, COMPLETE]);
    assert_eq!(status.completion_time, Some(Time(at(1000))));
    assert_eq!(status.succeeded, Some(1));
    let events = finished_events(
        &status,
        &JobSpec::default(),
        p.finished.as_ref().unwrap_or(&JobCondition::default()),
    );
    assert_eq!(events, [event(false, "Completed", "Job completed")]);
}

#[test]
fn terminal_condition_waits_for_uncounted_and_terminating_pods() {
    let cond = new_condition(FAILED, "True", REASON_BACKOFF_LIMIT_EXCEEDED, "m", at(0));
    let mut status = JobStatus::default();
    set_uncounted(&mut status, vec![], vec!["x".into()]);
    assert!(!enact_finished(&mut status, Some(&cond), 0, at(1)));
    set_uncounted(&mut status, vec![], vec![]);
    assert!(!enact_finished(&mut status, Some(&cond), 1, at(1)));
    assert!(enact_finished(&mut status, Some(&cond), 0, at(1)));
    assert_eq!(cond_types(&status), [FAILED]);
    assert_eq!(status.completion_time, None);
}

#[test]
fn failure_decisions() {
    let rule = |action: &str, code: i32| k8s_openapi::api::batch::v1::PodFailurePolicyRule {
        action: action.into(),
        on_exit_codes: Some(
            k8s_openapi::api::batch::v1::PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: "In".into(),
                values: vec![code],
            },
        ),
        on_pod_conditions: None,
    };
    let policy = k8s_openapi::api::batch::v1::PodFailurePolicy {
        rules: vec![rule("FailJob", 42), rule("Ignore", 3)],
    };
    // (what, backoffLimit, failed so far, ADS, pods, want FailureTarget reason, want failed uncounted)
    type Case<'a> = (
        &'a str,
        i32,
        i32,
        Option<i64>,
        Vec<Arc<Pod>>,
        Option<&'a str>,
        usize,
    );
    let cases: Vec<Case> = vec![
        (
            "under the limit",
            2,
            1,
            None,
            vec![pod("f", State::Failed(1), true, None)],
            None,
            1,
        ),
        (
            "over the limit",
            2,
            2,
            None,
            vec![pod("f", State::Failed(1), true, None)],
            Some(REASON_BACKOFF_LIMIT_EXCEEDED),
            1,
        ),
        (
            "limit zero",
            0,
            0,
            None,
            vec![pod("f", State::Failed(1), true, None)],
            Some(REASON_BACKOFF_LIMIT_EXCEEDED),
            1,
        ),
        (
            "deadline",
            6,
            0,
            Some(100),
            vec![pod("r", State::Ready, true, None)],
            Some(REASON_DEADLINE_EXCEEDED),
            1,
        ),
        (
            "FailJob rule",
            6,
            0,
            None,
            vec![pod("f", State::Failed(42), true, None)],
            Some(REASON_POD_FAILURE_POLICY),
            1,
        ),
        (
            "Ignore rule",
            0,
            0,
            None,
            vec![pod("f", State::Failed(3), true, None)],
            None,
            0,
        ),
    ];
    for (what, limit, failed, ads, pods, want, want_uncounted) in cases {
        let j = job(|s, st| {
            s.backoff_limit = Some(limit);
            s.active_deadline_seconds = ads;
            s.pod_failure_policy = Some(policy.clone());
            st.failed = (failed > 0).then_some(failed);
        });
        let p = plan(&j, &pods);
        let target = condition(Some(&p.status), FAILURE_TARGET).and_then(|c| c.reason.as_deref());
        assert_eq!(target, want, "{what}");
        assert_eq!(uncounted(&p.status).1.len(), want_uncounted, "{what}");
        assert_eq!(
            p.remove_finalizers.len(),
            pods.len(),
            "{what}: every finished pod is released"
        );
        if want.is_some() {
            assert!(p.create.is_empty(), "{what}");
            assert_eq!(
                p.delete.len(),
                pods.iter().filter(|p| is_active(p)).count(),
                "{what}"
            );
            let failed_cond = p
                .finished
                .as_ref()
                .map(|c| (c.type_.as_str(), c.reason.as_deref()));
            assert_eq!(failed_cond, Some((FAILED, want)), "{what}");
        }
    }
}

#[test]
fn failed_pods_are_replaced_after_the_backoff_delay() {
    let j = job(|s, _| s.backoff_limit = Some(6));
    let failed = [pod("f", State::Failed(1), true, None)];
    // The pod finished at t0: 10 s base, so 4 s later 6 s remain.
    let early = plan_at(&j, &failed, at(4));
    assert!(early.create.is_empty());
    assert_eq!(early.requeue_after, Some(Duration::from_secs(6)));
    assert_eq!(early.backoff.failures_after_last_success, 1);
    let late = plan_at(&j, &failed, at(11));
    assert_eq!(late.create.len(), 1);
}

#[test]
fn pod_replacement_policy_failed_waits_for_terminating_pods() {
    let j = job(|s, _| s.pod_replacement_policy = Some("Failed".into()));
    let pods = [pod("t", State::Deleting, true, None)];
    let p = plan(&j, &pods);
    assert!(p.create.is_empty());
    assert!(
        p.remove_finalizers.is_empty(),
        "a terminating pod is not failed yet"
    );
    let default = job(|_, _| {});
    let p = plan(&default, &pods);
    assert!(
        p.create.is_empty(),
        "replaced after the backoff of its failure"
    );
    assert_eq!(p.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(
        uncounted(&p.status).1,
        ["t"],
        "a deleted pod counts as failed"
    );
}

#[test]
fn suspend_deletes_active_pods_and_resume_restarts_the_clock() {
    let j = job(|s, _| {
        s.suspend = Some(true);
        s.parallelism = Some(2);
        s.completions = Some(2);
    });
    let pods = [
        pod("a", State::Ready, true, None),
        pod("b", State::Pending, true, None),
    ];
    let p = plan(&j, &pods);
    assert_eq!(uids(&p.delete), ["a", "b"]);
    assert!(p.create.is_empty());
    assert_eq!(p.status.active, None);
    let suspended = condition(Some(&p.status), SUSPENDED).and_then(|c| c.reason.clone());
    assert_eq!(suspended.as_deref(), Some("JobSuspended"));
    assert_eq!(p.events, [event(false, "Suspended", "Job suspended")]);

    let resumed = job(|s, st| {
        s.suspend = Some(false);
        st.conditions = Some(vec![new_condition(
            SUSPENDED,
            "True",
            "JobSuspended",
            "Job suspended",
            at(0),
        )]);
    });
    let p = plan(&resumed, &[]);
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.status.start_time, Some(Time(at(1000))));
    let c = p
        .status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == SUSPENDED)
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref()),
        ("False", Some("JobResumed"))
    );
    assert_eq!(p.events, [event(false, "Resumed", "Job resumed")]);
}

#[test]
fn indexed_jobs_fill_missing_indexes_and_drop_duplicates() {
    let j = job(|s, st| {
        s.completion_mode = Some("Indexed".into());
        s.completions = Some(5);
        s.parallelism = Some(3);
        st.completed_indexes = Some("0".into());
    });
    let pods = [
        pod("one", State::Ready, true, Some(1)),
        pod("one-dup", State::Pending, true, Some(1)),
        pod("two-done", State::Succeeded, true, Some(2)),
        pod("nine", State::Pending, true, Some(9)),
    ];
    let p = plan(&j, &pods);
    assert_eq!(uids(&p.delete), ["nine", "one-dup"]);
    assert_eq!(p.create, [Some(3), Some(4)]);
    assert_eq!(p.status.completed_indexes.as_deref(), Some("0,2"));
    assert_eq!(p.status.succeeded, Some(2));
    assert_eq!(
        uncounted(&p.status),
        (vec![], vec![]),
        "indexes, not UIDs, track indexed successes"
    );
}

#[test]
fn pods_from_the_template() {
    let j = job(|_, _| {});
    let owner = OwnerReference {
        kind: "Job".into(),
        name: "j".into(),
        uid: "job-uid".into(),
        controller: Some(true),
        ..Default::default()
    };
    let plain = match pod_from_template(&j, None, owner.clone()) {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let labels = plain.metadata.labels.clone().unwrap_or_default();
    for (k, v) in [
        (CONTROLLER_UID_LABEL, "job-uid"),
        (LEGACY_CONTROLLER_UID_LABEL, "job-uid"),
        (JOB_NAME_LABEL, "j"),
        (LEGACY_JOB_NAME_LABEL, "j"),
    ] {
        assert_eq!(labels.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(plain.metadata.generate_name.as_deref(), Some("j-"));
    assert_eq!(
        plain.metadata.finalizers,
        Some(vec![JOB_TRACKING_FINALIZER.to_string()])
    );
    assert_eq!(plain.metadata.owner_references, Some(vec![owner.clone()]));

    let indexed = match pod_from_template(&j, Some(4), owner) {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    assert_eq!(indexed.metadata.generate_name.as_deref(), Some("j-4-"));
    let annotations = indexed.metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations
            .get(COMPLETION_INDEX_ANNOTATION)
            .map(String::as_str),
        Some("4")
    );
    let spec = indexed.spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("j-4"));
    let env = spec.containers[0].env.clone().unwrap_or_default();
    assert_eq!(env[0].name, COMPLETION_INDEX_ENV);
    assert_eq!(generate_name_with_index(&"x".repeat(70), 12).len(), 58);
}

#[test]
fn finished_jobs_only_release_their_pods() {
    let j = job(|_, st| {
        st.conditions = Some(vec![new_condition(
            COMPLETE,
            "True",
            REASON_COMPLETIONS_REACHED,
            "",
            at(0),
        )]);
    });
    let pods = [
        pod("a", State::Pending, true, None),
        pod("b", State::Succeeded, false, None),
    ];
    let p = plan(&j, &pods);
    assert_eq!(uids(&p.remove_finalizers), ["a"]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    assert_eq!(Some(&p.status), j.status.as_ref());
}
