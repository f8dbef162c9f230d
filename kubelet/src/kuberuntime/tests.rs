//! The sync loop's steps against the simulated runtime: a pod comes up, init containers run in
//! order, failing containers follow the restart policy with back-off, and the API statuses say
//! what upstream's would.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::*;
use crate::podstatus::{pod_phase, PHASE_FAILED, PHASE_PENDING, PHASE_RUNNING};
use crate::simcri::SimCri;

fn pod(spec: Value) -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": "web", "namespace": "default", "uid": "uid-1"}, "spec": spec}),
    )
    .unwrap_or_default()
}

fn manager() -> (RuntimeManager, Arc<SimCri>, tempfile::TempDir) {
    let sim = Arc::new(SimCri::new());
    let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let m = RuntimeManager::new(sim.clone(), sim.clone(), logs.path().to_path_buf(), "sim");
    (m, sim, logs)
}

async fn sync(m: &RuntimeManager, p: &Pod) -> RuntimePodStatus {
    let uid = p.metadata.uid.clone().unwrap_or_default();
    let before = m.pod_status(&uid).await.unwrap_or_default();
    if let Err(err) = m.sync_pod(p, &before, &literal_env).await {
        panic!("sync: {err}");
    }
    m.pod_status(&uid).await.unwrap_or_default()
}

fn statuses(
    m: &RuntimeManager,
    p: &Pod,
    st: &RuntimePodStatus,
) -> (
    Vec<k8s_openapi::api::core::v1::ContainerStatus>,
    Vec<k8s_openapi::api::core::v1::ContainerStatus>,
) {
    convert::container_statuses(p, st, "sim", &|c| m.waiting_reason(p, c), &|_| (None, None))
}

#[tokio::test]
async fn a_pod_comes_up_running_with_an_ip() {
    let (m, sim, _logs) = manager();
    let p = pod(json!({"containers": [
        {"name": "a", "image": "busybox:1"}, {"name": "b", "image": "busybox:1"}]}));
    let st = sync(&m, &p).await;
    assert_eq!(st.sandboxes.len(), 1);
    assert!(st.sandboxes[0].ready);
    assert_eq!(st.ips().len(), 1);
    let (_, cs) = statuses(&m, &p, &st);
    assert!(cs
        .iter()
        .all(|c| c.ready && c.state.as_ref().is_some_and(|s| s.running.is_some())));
    assert!(cs[0]
        .container_id
        .as_deref()
        .is_some_and(|id| id.starts_with("sim://")));
    assert!(cs[0].image_id.starts_with("sha256:"));
    assert_eq!(pod_phase(&p, &cs, false), PHASE_RUNNING);
    // A second sync changes nothing.
    let again = sync(&m, &p).await;
    assert_eq!(again, st);
    // Killing stops everything; removal leaves nothing behind.
    m.kill_pod(&p, &again, Some(30))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stopped = m.pod_status("uid-1").await.unwrap_or_default();
    assert!(!stopped.sandboxes[0].ready);
    m.remove_pod(&stopped)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(sim.counts(), (0, 0));
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_app() {
    let (m, _sim, _logs) = manager();
    let p = pod(json!({
        "initContainers": [
            {"name": "first", "image": "busybox:1", "command": ["sh", "-c", "exit 0"]},
            {"name": "second", "image": "busybox:1", "command": ["sh", "-c", "exit 0"]}],
        "containers": [{"name": "app", "image": "busybox:1"}]}));
    let st = sync(&m, &p).await;
    let (init, cs) = statuses(&m, &p, &st);
    assert!(init[0].ready && init[1].state.as_ref().is_some_and(|s| s.waiting.is_some()));
    assert_eq!(
        cs[0]
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref()),
        Some("PodInitializing")
    );
    assert_eq!(
        pod_phase(&p, &[init.clone(), cs.clone()].concat(), false),
        PHASE_PENDING
    );
    let st = sync(&m, &p).await;
    let st = if st.latest("app").is_none() {
        sync(&m, &p).await
    } else {
        st
    };
    let (init, cs) = statuses(&m, &p, &st);
    assert!(init.iter().all(|c| c.ready));
    assert!(cs[0].ready);
    // The order they ran in.
    let created = |n: &str| st.latest(n).map_or(0, |c| c.created_at);
    assert!(created("first") < created("second") && created("second") < created("app"));
}

#[tokio::test]
async fn a_failing_container_backs_off_under_always_and_fails_the_pod_under_never() {
    let (m, _sim, _logs) = manager();
    let crash = json!([{"name": "c", "image": "busybox:1", "command": ["sh", "-c", "exit 3"]}]);
    let p = pod(json!({"restartPolicy": "Always", "containers": crash}));
    sync(&m, &p).await;
    // Exited once; the next sync restarts it (restartCount 1), then it waits in back-off.
    let st = sync(&m, &p).await;
    assert_eq!(st.latest("c").map(|c| c.attempt), Some(1));
    let st = sync(&m, &p).await;
    let (_, cs) = statuses(&m, &p, &st);
    let waiting = cs[0].state.as_ref().and_then(|s| s.waiting.as_ref());
    assert_eq!(
        waiting.and_then(|w| w.reason.as_deref()),
        Some(CRASH_LOOP_BACKOFF)
    );
    assert!(waiting.and_then(|w| w.message.as_deref()).is_some_and(
        |m| m.starts_with("back-off 10s restarting failed container=c pod=web_default(uid-1)")
    ));
    assert_eq!(cs[0].restart_count, 1);
    let last = cs[0]
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    assert_eq!(
        last.map(|t| (t.exit_code, t.reason.as_deref())),
        Some((3, Some("Error")))
    );
    assert_eq!(pod_phase(&p, &cs, false), PHASE_RUNNING);

    let p = pod(json!({"restartPolicy": "Never", "containers": crash}));
    let mut never = p.clone();
    never.metadata.uid = Some("uid-2".into());
    let st = sync(&m, &never).await;
    let st2 = sync(&m, &never).await;
    assert_eq!(st2.containers.len(), st.containers.len(), "not restarted");
    let (_, cs) = statuses(&m, &never, &st2);
    assert_eq!(pod_phase(&never, &cs, false), PHASE_FAILED);
}

#[tokio::test]
async fn an_image_that_cannot_be_used_says_why() {
    let (m, _sim, _logs) = manager();
    let p = pod(
        json!({"containers": [{"name": "c", "image": "nothing:1", "imagePullPolicy": "Never"}]}),
    );
    let st = sync(&m, &p).await;
    let (_, cs) = statuses(&m, &p, &st);
    let waiting = cs[0].state.as_ref().and_then(|s| s.waiting.as_ref());
    assert_eq!(
        waiting.and_then(|w| w.reason.as_deref()),
        Some(ERR_IMAGE_NEVER_PULL)
    );
    assert_eq!(
        waiting.and_then(|w| w.message.as_deref()),
        Some("Container image \"nothing:1\" is not present with pull policy of Never")
    );
}
