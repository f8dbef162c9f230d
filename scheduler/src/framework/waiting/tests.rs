//! Permit's wait / allow / reject with timeouts, through the framework as the binding cycle
//! uses it: `run_permit` parks the pod, `wait_on_permit` awaits the verdict.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::*;
use crate::framework::{
    BindPlugin, Code, CycleState, Framework, Handle, PermitPlugin, Plugin, QueueSortPlugin,
    QueuedPodInfo,
};

fn pod(name: &str) -> Arc<Pod> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
            "spec": {"containers": [{"name": "c"}], "schedulerName": "default-scheduler"},
        }))
        .expect("a valid pod"),
    )
}

struct Sort;
impl Plugin for Sort {
    fn name(&self) -> &'static str {
        "Sort"
    }
    fn queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}
impl QueueSortPlugin for Sort {
    fn less(&self, _: &QueuedPodInfo, _: &QueuedPodInfo) -> bool {
        false
    }
}

struct Bind;
impl Plugin for Bind {
    fn name(&self) -> &'static str {
        "Bind"
    }
    fn bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}
impl BindPlugin for Bind {
    fn bind<'a>(&'a self, _: &'a CycleState, _: &'a Pod, _: &'a str) -> BoxFuture<'a, Status> {
        Box::pin(async { Status::success() })
    }
}

/// A Permit plugin that answers `answer` (Wait with `timeout`, or a rejection).
struct Permit {
    name: &'static str,
    answer: Code,
    timeout: Duration,
}

impl Permit {
    fn wait(name: &'static str, timeout: Duration) -> Arc<dyn Plugin> {
        Arc::new(Permit {
            name,
            answer: Code::Wait,
            timeout,
        })
    }
}

impl Plugin for Permit {
    fn name(&self) -> &'static str {
        self.name
    }
    fn permit(&self) -> Option<&dyn PermitPlugin> {
        Some(self)
    }
}

impl PermitPlugin for Permit {
    fn permit(&self, _: &CycleState, _: &Pod, _: &str) -> (Status, Duration) {
        match self.answer {
            Code::Wait => (Status::new(Code::Wait, ""), self.timeout),
            code => (Status::new(code, "not now"), Duration::ZERO),
        }
    }
}

const MINUTE: Duration = Duration::from_secs(60);

fn framework(permits: Vec<Arc<dyn Plugin>>) -> Arc<Framework> {
    let mut plugins: Vec<(Arc<dyn Plugin>, i64)> = vec![(Arc::new(Sort), 1), (Arc::new(Bind), 1)];
    plugins.extend(permits.into_iter().map(|p| (p, 1)));
    Arc::new(Framework::multi_point("default-scheduler", Handle::for_tests(), plugins).unwrap())
}

/// Runs Permit for `pod` on node "n1" and expects it to wait.
fn park(fw: &Framework, pod: &Arc<Pod>) -> Arc<WaitingPod> {
    let status = fw.run_permit(&CycleState::new(), pod, "n1");
    assert_eq!(status.code(), Code::Wait, "{status:?}");
    assert_eq!(
        status.message(),
        format!(
            "one or more plugins asked to wait and no plugin rejected pod {:?}",
            pod.metadata.name.as_deref().unwrap_or("")
        )
    );
    fw.handle()
        .get_waiting_pod(pod.metadata.uid.as_deref().unwrap_or(""))
        .expect("the pod waits")
}

#[tokio::test]
async fn allowed_from_another_task() {
    let fw = framework(vec![Permit::wait("Gate", MINUTE)]);
    let p = pod("p");
    let waiting = park(&fw, &p);
    assert_eq!(waiting.node(), "n1");
    assert_eq!(waiting.pending_plugins(), vec!["Gate"]);

    let handle = fw.handle().clone();
    let allower = tokio::spawn(async move {
        tokio::task::yield_now().await;
        handle
            .get_waiting_pod("uid-p")
            .expect("still waiting")
            .allow("Gate");
    });
    let status = fw.wait_on_permit(&p).await;
    allower.await.unwrap();
    assert!(status.is_success(), "{status:?}");
    // The binding cycle took the pod out of the registry.
    assert!(fw.handle().get_waiting_pod("uid-p").is_none());
    assert!(fw.handle().waiting_pods.is_empty());
}

#[tokio::test(start_paused = true)]
async fn every_waiting_plugin_must_allow() {
    let fw = framework(vec![
        Permit::wait("First", MINUTE),
        Permit::wait("Second", 2 * MINUTE),
    ]);
    let p = pod("p");
    let waiting = park(&fw, &p);
    assert_eq!(waiting.pending_plugins(), vec!["First", "Second"]);

    waiting.allow("First");
    // An unknown plugin's allow does not count for anyone.
    waiting.allow("Other");
    assert_eq!(waiting.outcome(), None);
    assert_eq!(waiting.pending_plugins(), vec!["Second"]);
    let wait = fw.wait_on_permit(&p);
    tokio::pin!(wait);
    assert!(
        tokio::time::timeout(Duration::from_secs(30), &mut wait)
            .await
            .is_err(),
        "one plugin still holds the pod"
    );

    waiting.allow("Second");
    let status = wait.await;
    assert!(status.is_success(), "{status:?}");
    assert!(fw.handle().waiting_pods.is_empty());
}

#[tokio::test]
async fn a_rejection_ends_the_wait_at_once() {
    let fw = framework(vec![
        Permit::wait("First", MINUTE),
        Permit::wait("Second", MINUTE),
    ]);
    let p = pod("p");
    let waiting = park(&fw, &p);
    waiting.allow("First");
    let rejecter = {
        let waiting = waiting.clone();
        tokio::spawn(async move { waiting.reject("Second", "quota exhausted") })
    };
    let status = fw.wait_on_permit(&p).await;
    rejecter.await.unwrap();
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(status.plugin(), "Second");
    assert_eq!(status.message(), "quota exhausted");
    // Decided once: a late allow or reject changes nothing.
    waiting.allow("Second");
    waiting.reject("First", "too late");
    assert_eq!(waiting.outcome(), Some(status));
    assert!(fw.handle().waiting_pods.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_first_timeout_rejects() {
    let fw = framework(vec![
        Permit::wait("Slow", 30 * Duration::from_secs(1)),
        Permit::wait("Quick", 10 * Duration::from_secs(1)),
    ]);
    let p = pod("p");
    park(&fw, &p);
    let started = tokio::time::Instant::now();
    let status = fw.wait_on_permit(&p).await;
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(status.plugin(), "Quick");
    assert_eq!(
        status.message(),
        "rejected due to timeout after waiting 10s at plugin Quick"
    );
}

#[tokio::test(start_paused = true)]
async fn waits_are_capped_at_fifteen_minutes() {
    let fw = framework(vec![Permit::wait("Forever", 24 * 60 * MINUTE)]);
    let p = pod("p");
    park(&fw, &p);
    let started = tokio::time::Instant::now();
    let status = fw.wait_on_permit(&p).await;
    assert_eq!(started.elapsed(), MAX_PERMIT_TIMEOUT);
    assert_eq!(
        status.message(),
        "rejected due to timeout after waiting 15m0s at plugin Forever"
    );
}

#[tokio::test(start_paused = true)]
async fn an_allow_after_the_deadline_is_too_late() {
    let fw = framework(vec![Permit::wait("Gate", Duration::from_millis(1500))]);
    let p = pod("p");
    let waiting = park(&fw, &p);
    tokio::time::advance(Duration::from_secs(2)).await;
    waiting.allow("Gate");
    let status = fw.wait_on_permit(&p).await;
    assert_eq!(
        status.message(),
        "rejected due to timeout after waiting 1.5s at plugin Gate"
    );
}

#[test]
fn a_rejection_at_permit_parks_nothing() {
    let rejecting: Arc<dyn Plugin> = Arc::new(Permit {
        name: "No",
        answer: Code::Unschedulable,
        timeout: Duration::ZERO,
    });
    let fw = framework(vec![Permit::wait("Gate", MINUTE), rejecting]);
    let status = fw.run_permit(&CycleState::new(), &pod("p"), "n1");
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(status.plugin(), "No");
    assert!(fw.handle().waiting_pods.is_empty());

    let fw = framework(vec![]);
    assert!(fw
        .run_permit(&CycleState::new(), &pod("p"), "n1")
        .is_success());
    assert!(fw.handle().waiting_pods.is_empty());
}

#[tokio::test]
async fn a_pod_not_parked_passes_at_once() {
    let fw = framework(vec![Permit::wait("Gate", MINUTE)]);
    assert!(fw.wait_on_permit(&pod("p")).await.is_success());
}

#[test]
fn the_handle_lists_and_rejects_waiting_pods() {
    let fw = framework(vec![Permit::wait("Gate", MINUTE)]);
    park(&fw, &pod("a"));
    park(&fw, &pod("b"));
    let mut seen = Vec::new();
    fw.handle().iterate_over_waiting_pods(|w| {
        seen.push(w.uid().to_string());
        // The callback may act on the registry.
        if w.uid() == "uid-a" {
            fw.handle().reject_waiting_pod(w.uid());
        }
    });
    seen.sort();
    assert_eq!(seen, ["uid-a", "uid-b"]);
    let a = fw.handle().get_waiting_pod("uid-a").unwrap().outcome();
    let a = a.expect("rejected");
    assert_eq!((a.code(), a.plugin()), (Code::Unschedulable, ""));
    assert_eq!(a.message(), "removed");
    assert_eq!(
        fw.handle().get_waiting_pod("uid-b").unwrap().outcome(),
        None
    );
    assert!(!fw.handle().reject_waiting_pod("uid-unknown"));
}

#[tokio::test]
async fn a_pod_deleted_while_waiting_is_rejected() {
    use client::informer::{Deleted, Event};

    use crate::cache::Cache;
    use crate::eventhandlers::PodRouting;
    use crate::queue::{QueueOptions, SchedulingQueue};

    let fw = framework(vec![Permit::wait("Gate", MINUTE)]);
    let registry = metrics::Registry::new();
    let queue = SchedulingQueue::new(
        Arc::new(|_: &QueuedPodInfo, _: &QueuedPodInfo| false),
        Arc::new(|_: &Pod| Status::success()),
        Default::default(),
        QueueOptions {
            registry: registry.clone(),
            ..QueueOptions::default()
        },
    );
    let routing = PodRouting {
        cache: Arc::new(Cache::with_registry(Duration::ZERO, &registry)),
        queue: Arc::new(queue),
        profiles: HashSet::from(["default-scheduler".to_string()]),
        waiting_pods: fw.handle().waiting_pods.clone(),
    };
    let p = pod("p");
    park(&fw, &p);
    let wait = {
        let (fw, p) = (fw.clone(), p.clone());
        tokio::spawn(async move { fw.wait_on_permit(&p).await })
    };
    // The informer still has the pod without a node: it is only assumed.
    routing.handle(Event::Delete(Deleted::Final(p.clone())));
    let status = wait.await.unwrap();
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(status.message(), "removed");
    assert!(fw.handle().waiting_pods.is_empty());
}

#[test]
fn durations_read_as_go_prints_them() {
    let cases = [
        (Duration::ZERO, "0s"),
        (Duration::from_nanos(500), "500ns"),
        (Duration::from_micros(1500), "1.5ms"),
        (Duration::from_millis(250), "250ms"),
        (Duration::from_secs(10), "10s"),
        (Duration::from_millis(1500), "1.5s"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(15 * 60), "15m0s"),
        (Duration::from_secs(3723), "1h2m3s"),
        (Duration::from_nanos(2_500), "2.5µs"),
    ];
    for (d, want) in cases {
        assert_eq!(go_duration(d), want, "{d:?}");
    }
}
