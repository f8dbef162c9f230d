use serde_json::{json, Value};

use super::*;

fn pod(spec: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}))
        .unwrap_or_default()
}

fn statuses(v: Value) -> Vec<ContainerStatus> {
    serde_json::from_value(v).unwrap_or_default()
}

fn spec_with(policy: &str, init: &[&str], containers: &[&str]) -> Value {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    json!({
        "restartPolicy": policy,
        "initContainers": init.iter().map(c).collect::<Vec<_>>(),
        "containers": containers.iter().map(c).collect::<Vec<_>>(),
    })
}

fn running(name: &str, ready: bool) -> Value {
    json!({"name": name, "image": "busybox", "imageID": "", "restartCount": 0, "ready": ready,
           "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}})
}

fn exited(name: &str, code: i32) -> Value {
    json!({"name": name, "image": "busybox", "imageID": "", "restartCount": 0, "ready": false,
           "started": false, "state": {"terminated": {"exitCode": code}}})
}

fn waiting(name: &str, reason: &str, last_exit: Option<i32>) -> Value {
    let mut v = json!({"name": name, "image": "busybox", "imageID": "", "restartCount": 1,
           "ready": false, "state": {"waiting": {"reason": reason}}});
    if let Some(code) = last_exit {
        v["lastState"] = json!({"terminated": {"exitCode": code}});
    }
    v
}

#[test]
fn phases_follow_upstream_get_phase() {
    // (restartPolicy, init, containers, statuses, terminal, phase)
    // (restartPolicy, init containers, containers, statuses, terminal, phase)
    type Case<'a> = (&'a str, Vec<&'a str>, Vec<&'a str>, Value, bool, &'a str);
    let cases: Vec<Case> = vec![
        ("Always", vec![], vec!["a"], json!([]), false, PHASE_PENDING),
        (
            "Always",
            vec![],
            vec!["a"],
            json!([waiting("a", "ContainerCreating", None)]),
            false,
            PHASE_PENDING,
        ),
        (
            "Always",
            vec![],
            vec!["a"],
            json!([running("a", true)]),
            false,
            PHASE_RUNNING,
        ),
        (
            "Always",
            vec![],
            vec!["a", "b"],
            json!([running("a", true)]),
            false,
            PHASE_PENDING,
        ),
        // Restarting after a crash: still Running under Always and OnFailure.
        (
            "Always",
            vec![],
            vec!["a"],
            json!([waiting("a", "CrashLoopBackOff", Some(1))]),
            false,
            PHASE_RUNNING,
        ),
        (
            "OnFailure",
            vec![],
            vec!["a"],
            json!([waiting("a", "CrashLoopBackOff", Some(1))]),
            false,
            PHASE_RUNNING,
        ),
        (
            "Never",
            vec![],
            vec!["a"],
            json!([exited("a", 1)]),
            false,
            PHASE_FAILED,
        ),
        (
            "Never",
            vec![],
            vec!["a"],
            json!([exited("a", 0)]),
            false,
            PHASE_SUCCEEDED,
        ),
        (
            "OnFailure",
            vec![],
            vec!["a"],
            json!([exited("a", 0)]),
            false,
            PHASE_SUCCEEDED,
        ),
        (
            "Always",
            vec![],
            vec!["a"],
            json!([exited("a", 0)]),
            false,
            PHASE_RUNNING,
        ),
        (
            "Always",
            vec![],
            vec!["a"],
            json!([exited("a", 0)]),
            true,
            PHASE_SUCCEEDED,
        ),
        (
            "Always",
            vec![],
            vec!["a", "b"],
            json!([exited("a", 0), exited("b", 2)]),
            true,
            PHASE_FAILED,
        ),
        // Init containers: pending while they run, Failed at once under Never when one fails.
        (
            "Always",
            vec!["i"],
            vec!["a"],
            json!([running("i", false)]),
            false,
            PHASE_PENDING,
        ),
        (
            "Never",
            vec!["i"],
            vec!["a"],
            json!([exited("i", 3)]),
            false,
            PHASE_FAILED,
        ),
        (
            "OnFailure",
            vec!["i"],
            vec!["a"],
            json!([waiting("i", "CrashLoopBackOff", Some(3))]),
            false,
            PHASE_PENDING,
        ),
        (
            "Always",
            vec!["i"],
            vec!["a"],
            json!([exited("i", 0), running("a", true)]),
            false,
            PHASE_RUNNING,
        ),
    ];
    for (i, (policy, init, containers, st, terminal, want)) in cases.into_iter().enumerate() {
        let p = pod(spec_with(policy, &init, &containers));
        assert_eq!(pod_phase(&p, &statuses(st), terminal), want, "case {i}");
    }
}

#[test]
fn conditions_name_the_containers_like_upstream() {
    let p = pod(spec_with("Always", &["init1", "init2"], &["a", "b"]));
    let spec = p.spec.clone().unwrap_or_default();
    // The kubelet reports an init container that exited 0 as ready.
    let mut done = exited("init1", 0);
    done["ready"] = json!(true);
    let st = statuses(json!([done, running("init2", false)]));
    let init = initialized_condition(&spec, Some(&st), PHASE_PENDING);
    assert_eq!(init.status, "False");
    assert_eq!(
        init.reason.as_deref(),
        Some(REASON_CONTAINERS_NOT_INITIALIZED)
    );
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [init2]")
    );
    let ready = containers_ready_condition(&spec, Some(&st), PHASE_PENDING);
    assert_eq!(ready.reason.as_deref(), Some(REASON_CONTAINERS_NOT_READY));
    assert_eq!(
        ready.message.as_deref(),
        Some("containers with unknown status: [a b]")
    );
    let st = statuses(json!([running("a", true), running("b", false)]));
    let pod_ready = pod_ready_condition(&spec, &[], Some(&st), PHASE_RUNNING);
    assert_eq!(pod_ready.type_, "Ready");
    assert_eq!(pod_ready.status, "False");
    assert_eq!(
        pod_ready.message.as_deref(),
        Some("containers with unready status: [b]")
    );
    // Regular containers have started: the pod was initialized.
    assert_eq!(
        initialized_condition(&spec, Some(&st), PHASE_RUNNING).status,
        "True"
    );
    let st = statuses(json!([running("a", true), running("b", true)]));
    assert_eq!(
        pod_ready_condition(&spec, &[], Some(&st), PHASE_RUNNING).status,
        "True"
    );
    // Terminal phases.
    let done = containers_ready_condition(&spec, Some(&st), PHASE_FAILED);
    assert_eq!(
        (done.status.as_str(), done.reason.as_deref()),
        ("False", Some(REASON_POD_FAILED))
    );
    assert_eq!(
        containers_ready_condition(&spec, None, PHASE_PENDING)
            .reason
            .as_deref(),
        Some(REASON_UNKNOWN_CONTAINER_STATUSES)
    );
}

#[test]
fn readiness_gates_hold_the_pod_back() {
    let mut spec = spec_with("Always", &[], &["a"]);
    spec["readinessGates"] = json!([{"conditionType": "example.com/lb"}]);
    let p = pod(spec);
    let spec = p.spec.clone().unwrap_or_default();
    let st = statuses(json!([running("a", true)]));
    let c = pod_ready_condition(&spec, &[], Some(&st), PHASE_RUNNING);
    assert_eq!(c.reason.as_deref(), Some(REASON_READINESS_GATES_NOT_READY));
    assert_eq!(
        c.message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
    let gate = PodCondition {
        type_: "example.com/lb".into(),
        status: "False".into(),
        ..Default::default()
    };
    let c = pod_ready_condition(&spec, &[gate], Some(&st), PHASE_RUNNING);
    assert_eq!(
        c.message.as_deref(),
        Some("the status of pod readiness gate \"example.com/lb\" is not \"True\", but False")
    );
}

#[test]
fn qos_classes() {
    let with = |res: Value| {
        pod(json!({"containers": [{"name": "a", "image": "i", "resources": res}]}))
            .spec
            .unwrap_or_default()
    };
    assert_eq!(qos_class(&with(json!({}))), "BestEffort");
    assert_eq!(
        qos_class(&with(json!({"requests": {"cpu": "100m"}}))),
        "Burstable"
    );
    assert_eq!(
        qos_class(&with(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
        "Guaranteed"
    );
    assert_eq!(
        qos_class(&with(
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1024Mi"}})
        )),
        "Guaranteed"
    );
    assert_eq!(
        qos_class(&with(
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
        )),
        "Burstable"
    );
    assert_eq!(
        qos_class(&with(json!({"limits": {"cpu": "1"}}))),
        "Burstable"
    );
}
