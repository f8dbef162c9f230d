use serde_json::{json, Value};

use super::*;

fn pod(spec: Value) -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}),
    )
    .unwrap_or_default()
}

fn spec(policy: &str, init: &[&str], containers: &[&str]) -> Value {
    let c = |n: &&str| json!({"name": n, "image": "busybox"});
    json!({"restartPolicy": policy,
           "initContainers": init.iter().map(c).collect::<Vec<_>>(),
           "containers": containers.iter().map(c).collect::<Vec<_>>()})
}

fn sandbox(ready: bool, attempt: u32) -> RuntimeSandbox {
    RuntimeSandbox {
        id: format!("sb{attempt}"),
        attempt,
        ready,
        created_at: i64::from(attempt),
        ips: vec!["10.0.0.5".into()],
        host_network: false,
    }
}

fn container(p: &Pod, name: &str, state: State, exit: i32) -> RuntimeContainer {
    let spec = p.spec.clone().unwrap_or_default();
    let c = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_default();
    RuntimeContainer {
        id: format!("id-{name}"),
        name: name.into(),
        sandbox_id: "sb0".into(),
        attempt: 0,
        state,
        created_at: 1,
        started_at: 1,
        finished_at: if state == State::Exited { 2 } else { 0 },
        exit_code: exit,
        reason: String::new(),
        message: String::new(),
        image: "busybox".into(),
        image_ref: "sha256:1".into(),
        hash: format!("{:x}", container_hash(&c)),
    }
}

#[test]
fn a_new_pod_gets_a_sandbox_then_its_first_init_container_or_its_containers() {
    let p = pod(spec("Always", &[], &["a", "b"]));
    let a = compute_pod_actions(&p, &RuntimePodStatus::default());
    assert!(a.create_sandbox && a.kill_pod);
    assert_eq!((a.attempt, a.containers_to_start.clone()), (0, vec![0, 1]));

    let p = pod(spec("Always", &["i1", "i2"], &["a"]));
    let a = compute_pod_actions(&p, &RuntimePodStatus::default());
    assert_eq!(a.next_init_container, Some(0));
    assert!(a.containers_to_start.is_empty());
}

#[test]
fn init_containers_run_one_after_another() {
    let p = pod(spec("Always", &["i1", "i2"], &["a"]));
    let mut st = RuntimePodStatus {
        sandboxes: vec![sandbox(true, 0)],
        containers: vec![container(&p, "i1", State::Running, 0)],
    };
    let a = compute_pod_actions(&p, &st);
    assert_eq!((a.next_init_container, a.create_sandbox), (None, false));
    assert!(a.containers_to_start.is_empty() && !a.kill_pod);

    st.containers = vec![container(&p, "i1", State::Exited, 0)];
    assert_eq!(compute_pod_actions(&p, &st).next_init_container, Some(1));

    st.containers = vec![
        container(&p, "i2", State::Exited, 0),
        container(&p, "i1", State::Exited, 0),
    ];
    assert_eq!(compute_pod_actions(&p, &st).containers_to_start, vec![0]);

    // A failed init container is retried, unless the policy is Never (the pod fails).
    st.containers = vec![container(&p, "i1", State::Exited, 1)];
    assert_eq!(compute_pod_actions(&p, &st).next_init_container, Some(0));
    let never = pod(spec("Never", &["i1"], &["a"]));
    st.containers = vec![container(&never, "i1", State::Exited, 1)];
    let a = compute_pod_actions(&never, &st);
    assert!(a.kill_pod && a.next_init_container.is_none());
}

#[test]
fn restart_policies_decide_which_exited_containers_run_again() {
    for (policy, exit, restart) in [
        ("Always", 0, true),
        ("Always", 1, true),
        ("OnFailure", 0, false),
        ("OnFailure", 2, true),
        ("Never", 0, false),
        ("Never", 1, false),
    ] {
        let p = pod(spec(policy, &[], &["a"]));
        let st = RuntimePodStatus {
            sandboxes: vec![sandbox(true, 0)],
            containers: vec![container(&p, "a", State::Exited, exit)],
        };
        let a = compute_pod_actions(&p, &st);
        assert_eq!(
            a.containers_to_start == vec![0],
            restart,
            "{policy} exit {exit}"
        );
        // Nothing left to run: the sandbox is stopped.
        assert_eq!(a.kill_pod, !restart, "{policy} exit {exit}");
    }
}

#[test]
fn a_running_container_is_kept_unless_its_spec_changed() {
    let p = pod(spec("Always", &[], &["a"]));
    let mut st = RuntimePodStatus {
        sandboxes: vec![sandbox(true, 0)],
        containers: vec![container(&p, "a", State::Running, 0)],
    };
    assert_eq!(
        compute_pod_actions(&p, &st),
        PodActions {
            sandbox_id: "sb0".into(),
            ..Default::default()
        }
    );
    st.containers[0].hash = "other".into();
    let a = compute_pod_actions(&p, &st);
    assert_eq!(a.containers_to_start, vec![0]);
    assert_eq!(
        a.containers_to_kill.get("id-a").map(String::as_str),
        Some("Container a definition changed")
    );
}

#[test]
fn a_dead_sandbox_is_replaced_but_not_for_a_finished_never_pod() {
    let p = pod(spec("Always", &[], &["a"]));
    let st = RuntimePodStatus {
        sandboxes: vec![sandbox(false, 2)],
        containers: vec![container(&p, "a", State::Exited, 137)],
    };
    let a = compute_pod_actions(&p, &st);
    assert!(a.create_sandbox && a.kill_pod);
    assert_eq!((a.attempt, a.sandbox_id.as_str()), (3, "sb2"));
    assert_eq!(a.containers_to_start, vec![0]);

    let never = pod(spec("Never", &[], &["a"]));
    let a = compute_pod_actions(&never, &st);
    assert!(!a.create_sandbox && a.kill_pod);
}
