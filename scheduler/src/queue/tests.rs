use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use tokio::time::{advance, Instant};

use super::*;
use crate::framework::{
    BindPlugin, CycleState, FilterPlugin, Framework, Handle, NodeInfo, Plugin, QueueSortPlugin,
};

const FIT: &str = "NodeResourcesFit";
const AFFINITY: &str = "NodeAffinity";
const GATES: &str = "SchedulingGates";
const POD_AFFINITY: &str = "InterPodAffinity";

fn pod_json(name: &str, extra: Value) -> Arc<Pod> {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c"}]},
    });
    merge(&mut v, extra);
    Arc::new(serde_json::from_value(v).expect("pod"))
}

fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

fn pod(name: &str) -> Arc<Pod> {
    pod_json(name, json!({}))
}

fn pod_with_priority(name: &str, priority: i32) -> Arc<Pod> {
    pod_json(name, json!({"spec": {"priority": priority}}))
}

fn node(name: &str, labels: Value) -> EventObject {
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}}))
        .expect("node");
    EventObject::Node(Arc::new(node))
}

const NODE_ADD: ClusterEvent = ClusterEvent::new(EventResource::Node, ActionType::ADD, "NodeAdd");
const NODE_ALLOCATABLE: ClusterEvent = ClusterEvent::new(
    EventResource::Node,
    ActionType::UPDATE_NODE_ALLOCATABLE,
    "NodeUpdateNodeAllocatable",
);
const PV_ADD: ClusterEvent = ClusterEvent::new(
    EventResource::PersistentVolume,
    ActionType::ADD,
    "PersistentVolumeAdd",
);

fn less() -> LessFn {
    Arc::new(|a: &QueuedPodInfo, b: &QueuedPodInfo| {
        let (pa, pb) = (a.pod_info.priority(), b.pod_info.priority());
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    })
}

fn pre_enqueue() -> PreEnqueueFn {
    Arc::new(|pod: &Pod| {
        let gates = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .map_or(0, Vec::len);
        if gates == 0 {
            Status::success()
        } else {
            Status::unresolvable("waiting for scheduling gates").with_plugin(GATES)
        }
    })
}

/// NodeResourcesFit: a node with the label `fits` helps. NodeAffinity: any node add helps.
/// SchedulingGates: the gates being removed helps. InterPodAffinity: a bound pod added.
fn registry() -> HintRegistry {
    let fits: crate::framework::QueueingHintFn = Arc::new(
        |_pod: &Pod, _old: Option<&EventObject>, new: Option<&EventObject>| match new {
            Some(EventObject::Node(n))
                if n.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("fits")) =>
            {
                Ok(QueueingHint::Queue)
            }
            Some(EventObject::Node(n))
                if n.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("broken")) =>
            {
                Err("cannot tell".into())
            }
            _ => Ok(QueueingHint::Skip),
        },
    );
    let gates_gone: crate::framework::QueueingHintFn = Arc::new(
        |_pod: &Pod, _old: Option<&EventObject>, new: Option<&EventObject>| match new {
            Some(EventObject::Pod(p))
                if p.spec
                    .as_ref()
                    .and_then(|s| s.scheduling_gates.as_ref())
                    .is_none_or(Vec::is_empty) =>
            {
                Ok(QueueingHint::Queue)
            }
            _ => Ok(QueueingHint::Skip),
        },
    );
    let node_events = ClusterEvent::new(
        EventResource::Node,
        ActionType::ADD | ActionType::UPDATE_NODE_ALLOCATABLE,
        "",
    );
    let mut registry = HintRegistry::new();
    registry.insert(
        DEFAULT_SCHEDULER_NAME.to_string(),
        vec![
            (FIT, ClusterEventWithHint::with_hint(node_events, fits)),
            (AFFINITY, ClusterEventWithHint::new(NODE_ADD)),
            (
                GATES,
                ClusterEventWithHint::with_hint(
                    ClusterEvent::new(
                        EventResource::UnscheduledPod,
                        ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED,
                        "",
                    ),
                    gates_gone,
                ),
            ),
            (
                POD_AFFINITY,
                ClusterEventWithHint::new(ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::ADD | ActionType::UPDATE_POD_LABEL,
                    "",
                )),
            ),
            (
                POD_TOPOLOGY_SPREAD,
                ClusterEventWithHint::new(ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::ALL,
                    "",
                )),
            ),
        ],
    );
    registry
}

fn options() -> QueueOptions {
    QueueOptions {
        pop_from_backoff_q: false,
        registry: metrics::Registry::new(),
        ..QueueOptions::default()
    }
}

fn queue_with(options: QueueOptions) -> SchedulingQueue {
    SchedulingQueue::new(less(), pre_enqueue(), registry(), options)
}

fn queue() -> SchedulingQueue {
    queue_with(options())
}

/// Pops what is ready now, without waiting.
async fn pop_now(q: &SchedulingQueue) -> Option<QueuedPodInfo> {
    tokio::time::timeout(Duration::from_millis(1), q.pop())
        .await
        .ok()
        .flatten()
}

/// Adds the pods a millisecond apart, so that they pop in this order.
async fn add_in_order(q: &SchedulingQueue, names: &[&str]) {
    for name in names {
        q.add(pod(name));
        advance(Duration::from_millis(1)).await;
    }
}

fn rejected_by(mut qpi: QueuedPodInfo, plugins: &[&'static str]) -> QueuedPodInfo {
    qpi.unschedulable_plugins = plugins.iter().copied().collect();
    qpi
}

fn where_is(q: &SchedulingQueue, name: &str) -> Option<QueueName> {
    q.get("ns", name).map(|(queue, _)| queue)
}

/// Pops `name` and hands it back rejected by `plugins`.
async fn fail(q: &SchedulingQueue, name: &str, plugins: &[&'static str]) -> QueuedPodInfo {
    let qpi = pop_now(q).await.expect("a pod to pop");
    assert_eq!(qpi.pod_info.name(), name);
    let qpi = rejected_by(qpi, plugins);
    q.add_unschedulable_if_not_present(qpi.clone(), q.scheduling_cycle())
        .expect("hand back");
    qpi
}

#[tokio::test(start_paused = true)]
async fn pops_by_priority_then_arrival() {
    let q = queue();
    q.add(pod_with_priority("low", 0));
    advance(Duration::from_millis(1)).await;
    q.add(pod_with_priority("high", 100));
    advance(Duration::from_millis(1)).await;
    q.add(pod_with_priority("mid", 50));
    advance(Duration::from_millis(1)).await;
    q.add(pod_with_priority("low2", 0));
    let mut order = Vec::new();
    while let Some(qpi) = pop_now(&q).await {
        assert_eq!(qpi.attempts, 1);
        order.push(qpi.pod_info.name().to_string());
    }
    assert_eq!(order, ["high", "mid", "low", "low2"]);
    assert_eq!(q.scheduling_cycle(), 4);
    assert_eq!(q.in_flight_pods().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_one_second_up_to_ten() {
    let q = queue();
    q.add(pod("p"));
    for expected in [1u64, 2, 4, 8, 10, 10] {
        // No plugin rejected it (an error): straight to backoffQ.
        fail(&q, "p", &[]).await;
        assert_eq!(where_is(&q, "p"), Some(QueueName::Backoff));
        advance(Duration::from_millis(expected * 1000 - 1)).await;
        q.flush_backoff_q_completed();
        assert_eq!(
            where_is(&q, "p"),
            Some(QueueName::Backoff),
            "still backing off just before {expected}s"
        );
        advance(Duration::from_millis(1)).await;
        q.flush_backoff_q_completed();
        assert_eq!(
            where_is(&q, "p"),
            Some(QueueName::Active),
            "done after {expected}s"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn pop_waits_out_the_backoff_with_the_flush_running() {
    let q = Arc::new(queue_with(QueueOptions {
        pod_initial_backoff: Duration::from_secs(2),
        ..options()
    }));
    let stop = Arc::new(tokio::sync::Notify::new());
    let flusher = {
        let (q, stop) = (q.clone(), stop.clone());
        tokio::spawn(async move { q.run_flushes(stop.notified()).await })
    };
    q.add(pod("p"));
    let qpi = q.pop().await.expect("pop");
    let failed_at = Instant::now();
    q.add_unschedulable_if_not_present(qpi, 1)
        .expect("hand back");
    let again = q.pop().await.expect("pop again");
    let waited = failed_at.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited <= Duration::from_secs(3),
        "{waited:?}"
    );
    assert_eq!(again.attempts, 2);
    stop.notify_one();
    flusher.await.expect("flusher");
}

#[tokio::test(start_paused = true)]
async fn events_move_pods_only_when_a_rejecting_plugins_hint_says_so() {
    let q = queue();
    add_in_order(&q, &["fit", "affinity", "nobody"]).await;
    fail(&q, "fit", &[FIT]).await;
    fail(&q, "affinity", &[AFFINITY]).await;
    fail(&q, "nobody", &[]).await;
    assert_eq!(where_is(&q, "fit"), Some(QueueName::Unschedulable));
    assert_eq!(where_is(&q, "affinity"), Some(QueueName::Unschedulable));
    assert_eq!(where_is(&q, "nobody"), Some(QueueName::Backoff));

    // NodeResourcesFit's hint says Skip for a node without room; NodeAffinity has no hint and
    // registered node adds: only its pod moves (still backing off: to backoffQ).
    q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("small", json!({}))), None);
    assert_eq!(where_is(&q, "fit"), Some(QueueName::Unschedulable));
    assert_eq!(where_is(&q, "affinity"), Some(QueueName::Backoff));

    // An allocatable change: NodeAffinity did not register it; NodeResourcesFit's hint says
    // Queue for a node that fits. After the backoff, the pod goes straight to activeQ.
    advance(Duration::from_secs(2)).await;
    q.move_all_to_active_or_backoff(
        NODE_ALLOCATABLE,
        Some(node("big", json!({}))),
        Some(node("big", json!({"fits": ""}))),
        None,
    );
    assert_eq!(where_is(&q, "fit"), Some(QueueName::Active));
    let pending = q.pending_pods();
    assert_eq!((pending.active, pending.backoff), (1, 2));
}

#[tokio::test(start_paused = true)]
async fn a_failing_hint_counts_as_queue_and_uninteresting_events_move_nothing() {
    let q = queue();
    q.add(pod("fit"));
    fail(&q, "fit", &[FIT]).await;
    // Nobody registered PersistentVolume events: not even a pod without rejectors would move.
    q.move_all_to_active_or_backoff(PV_ADD, None, None, None);
    assert_eq!(where_is(&q, "fit"), Some(QueueName::Unschedulable));
    q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("n", json!({"broken": ""}))), None);
    assert_eq!(where_is(&q, "fit"), Some(QueueName::Backoff));
}

#[tokio::test(start_paused = true)]
async fn pre_check_limits_which_pods_an_event_may_move() {
    let q = queue();
    add_in_order(&q, &["a", "b"]).await;
    fail(&q, "a", &[AFFINITY]).await;
    fail(&q, "b", &[AFFINITY]).await;
    let only_a = |p: &Pod| p.metadata.name.as_deref() == Some("a");
    q.move_all_to_active_or_backoff(NODE_ADD, None, None, Some(&only_a));
    assert_eq!(where_is(&q, "a"), Some(QueueName::Backoff));
    assert_eq!(where_is(&q, "b"), Some(QueueName::Unschedulable));
}

#[tokio::test(start_paused = true)]
async fn gated_pods_wait_until_their_gates_are_removed() {
    let registry = metrics::Registry::new();
    let q = queue_with(QueueOptions {
        registry: registry.clone(),
        ..options()
    });
    let gated = pod_json(
        "g",
        json!({"spec": {"schedulingGates": [{"name": "example.com/wait"}]}}),
    );
    q.add(gated.clone());
    assert_eq!(
        q.pending_pods(),
        PendingPods {
            gated: 1,
            ..PendingPods::default()
        }
    );
    assert!(registry
        .render()
        .contains("scheduler_pending_pods{queue=\"gated\"} 1"));
    assert!(pop_now(&q).await.is_none());

    // Events the gating plugin did not register, even wildcard ones, leave it alone.
    q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("n", json!({}))), None);
    advance(DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION + Duration::from_secs(1)).await;
    q.flush_unschedulable_pods_leftover();
    assert_eq!(q.pending_pods().gated, 1);

    // A label change keeps the gates: still gated.
    let relabelled = pod_json(
        "g",
        json!({"metadata": {"labels": {"a": "b"}},
               "spec": {"schedulingGates": [{"name": "example.com/wait"}]}}),
    );
    q.update(gated.clone(), relabelled.clone());
    assert_eq!(q.pending_pods().gated, 1);
    let (_, qpi) = q.get("ns", "g").expect("queued");
    assert!(qpi.gated);
    assert_eq!(qpi.pod_info.pod.metadata.labels, relabelled.metadata.labels);

    // The gates go: PreEnqueue passes and the pod is ready at once (never tried: no backoff).
    let ungated = pod_json("g", json!({"metadata": {"labels": {"a": "b"}}}));
    q.update(relabelled, ungated);
    assert_eq!(
        q.pending_pods(),
        PendingPods {
            active: 1,
            ..PendingPods::default()
        }
    );
    let popped = pop_now(&q).await.expect("pop");
    assert!(!popped.gated);
    assert_eq!(popped.attempts, 1);
    assert!(registry.render().contains(
        "scheduler_queue_incoming_pods_total{queue=\"active\",event=\"UnschedulablePodUpdatePodSchedulingGatesEliminated\"} 1"
    ));
}

#[tokio::test(start_paused = true)]
async fn events_seen_while_a_pod_is_in_flight_are_not_lost() {
    let q = queue();
    add_in_order(&q, &["helped", "not-helped"]).await;
    let helped = pop_now(&q).await.expect("pop");
    // While "helped" is being tried, a node that fits arrives.
    q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("big", json!({"fits": ""}))), None);
    let not_helped = pop_now(&q).await.expect("pop");
    // "not-helped" was popped after the event: it does not count for it.
    q.add_unschedulable_if_not_present(rejected_by(helped, &[FIT]), 1)
        .expect("hand back");
    q.add_unschedulable_if_not_present(rejected_by(not_helped, &[FIT]), 2)
        .expect("hand back");
    assert_eq!(where_is(&q, "helped"), Some(QueueName::Backoff));
    assert_eq!(where_is(&q, "not-helped"), Some(QueueName::Unschedulable));
    assert!(q.in_flight_pods().is_empty());
    assert!(
        q.lock().events.is_empty(),
        "no pod in flight: no events kept"
    );

    // An event whose hint says Skip does not help either.
    q.add(pod("skipped"));
    let skipped = pop_now(&q).await.expect("pop");
    q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("small", json!({}))), None);
    q.add_unschedulable_if_not_present(rejected_by(skipped, &[FIT]), 3)
        .expect("hand back");
    assert_eq!(where_is(&q, "skipped"), Some(QueueName::Unschedulable));
}

#[tokio::test(start_paused = true)]
async fn an_update_of_a_pod_in_flight_is_recorded_not_queued() {
    let q = queue();
    let original = pod("p");
    q.add(original.clone());
    let qpi = pop_now(&q).await.expect("pop");
    let relabelled = pod_json("p", json!({"metadata": {"labels": {"x": "y"}}}));
    q.update(original, relabelled);
    assert_eq!(q.pending_pods(), PendingPods::default());
    // InterPodAffinity does not care about the pod's own label change: unschedulable.
    q.add_unschedulable_if_not_present(rejected_by(qpi, &[POD_AFFINITY]), 1)
        .expect("hand back");
    assert_eq!(where_is(&q, "p"), Some(QueueName::Unschedulable));
    // Handing back a pod that is already queued is an error (and ends its flight anyway).
    let again = q.get("ns", "p").expect("queued").1;
    assert_eq!(
        q.add_unschedulable_if_not_present(again, 1),
        Err(QueueError::AlreadyUnschedulable("ns/p".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn pods_done_after_binding_stop_collecting_events() {
    let q = queue();
    q.add(pod("a"));
    q.add(pod("b"));
    let a = pop_now(&q).await.expect("pop");
    q.move_all_to_active_or_backoff(NODE_ADD, None, None, None);
    let b = pop_now(&q).await.expect("pop");
    q.move_all_to_active_or_backoff(NODE_ADD, None, None, None);
    assert_eq!(q.lock().events.len(), 2);
    q.done(a.pod_info.uid());
    assert_eq!(q.lock().events.len(), 1, "only b's event is still needed");
    q.done(b.pod_info.uid());
    assert!(q.lock().events.is_empty());
}

#[tokio::test(start_paused = true)]
async fn pop_from_backoff_q_when_active_is_empty() {
    let q = queue_with(QueueOptions {
        pop_from_backoff_q: true,
        ..options()
    });
    add_in_order(&q, &["rejected", "errored"]).await;
    fail(&q, "rejected", &[AFFINITY]).await;
    fail(&q, "errored", &[]).await;
    q.move_all_to_active_or_backoff(NODE_ADD, None, None, None);
    assert_eq!(q.pending_pods().backoff, 2);
    // The plugin-rejected pod is tried at once; the errored one waits out its backoff.
    let popped = pop_now(&q).await.expect("popped from backoffQ");
    assert_eq!(popped.pod_info.name(), "rejected");
    assert_eq!(popped.attempts, 2);
    assert!(pop_now(&q).await.is_none());
    advance(Duration::from_secs(1)).await;
    q.flush_backoff_q_completed();
    assert_eq!(pop_now(&q).await.expect("pop").pod_info.name(), "errored");
}

#[tokio::test(start_paused = true)]
async fn bound_pods_move_pods_whose_affinity_they_satisfy() {
    let q = queue();
    let wants = |name: &str, app: &str| {
        pod_json(
            name,
            json!({"spec": {"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": "zone"}]}}}}),
        )
    };
    q.add(wants("wants-db", "db"));
    advance(Duration::from_millis(1)).await;
    q.add(wants("wants-web", "web"));
    advance(Duration::from_millis(1)).await;
    q.add(pod("spread"));
    fail(&q, "wants-db", &[POD_AFFINITY]).await;
    fail(&q, "wants-web", &[POD_AFFINITY]).await;
    fail(&q, "spread", &[POD_TOPOLOGY_SPREAD]).await;

    let db = pod_json(
        "db-0",
        json!({"metadata": {"labels": {"app": "db"}}, "spec": {"nodeName": "n1"}}),
    );
    q.assigned_pod_added(db);
    assert_eq!(where_is(&q, "wants-db"), Some(QueueName::Backoff));
    assert_eq!(where_is(&q, "wants-web"), Some(QueueName::Unschedulable));
    assert_eq!(where_is(&q, "spread"), Some(QueueName::Backoff));
}

#[tokio::test(start_paused = true)]
async fn pods_left_unschedulable_too_long_are_flushed() {
    let q = queue();
    q.add(pod("stuck"));
    fail(&q, "stuck", &[FIT]).await;
    advance(DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION).await;
    q.flush_unschedulable_pods_leftover();
    assert_eq!(where_is(&q, "stuck"), Some(QueueName::Unschedulable));
    advance(Duration::from_secs(1)).await;
    q.flush_unschedulable_pods_leftover();
    assert_eq!(where_is(&q, "stuck"), Some(QueueName::Active));
}

#[tokio::test(start_paused = true)]
async fn updates_and_deletes_of_queued_pods() {
    let q = queue();
    q.add(pod_with_priority("a", 1));
    q.add(pod_with_priority("b", 2));
    // Raising a's priority reorders activeQ.
    q.update(pod_with_priority("a", 1), pod_with_priority("a", 5));
    assert_eq!(pop_now(&q).await.expect("pop").pod_info.name(), "a");
    q.delete(&pod("b"));
    assert_eq!(q.pending_pods(), PendingPods::default());
    // An update of a pod the queue does not have adds it.
    q.update(pod("c"), pod("c"));
    assert_eq!(where_is(&q, "c"), Some(QueueName::Active));
    assert_eq!(q.pending_pod_list().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn activate_moves_pods_now_or_when_they_come_back() {
    let q = queue();
    add_in_order(&q, &["parked", "flying"]).await;
    fail(&q, "parked", &[FIT]).await;
    let flying = pop_now(&q).await.expect("pop");
    q.activate(&[pod("parked"), pod("flying")]);
    assert_eq!(where_is(&q, "parked"), Some(QueueName::Active));
    q.add_unschedulable_if_not_present(rejected_by(flying, &[FIT]), 2)
        .expect("hand back");
    assert_ne!(where_is(&q, "flying"), Some(QueueName::Unschedulable));
}

#[tokio::test(start_paused = true)]
async fn close_ends_pop() {
    let q = Arc::new(queue());
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop().await })
    };
    tokio::task::yield_now().await;
    q.close();
    assert!(waiter.await.expect("join").is_none());
    q.add(pod("late"));
    assert!(q.pop().await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_pod_added_while_pop_waits_wakes_it() {
    let q = Arc::new(queue());
    let waiter = {
        let q = q.clone();
        tokio::spawn(async move { q.pop().await })
    };
    tokio::task::yield_now().await;
    q.add(pod("p"));
    let popped = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("woken")
        .expect("join")
        .expect("a pod");
    assert_eq!(popped.pod_info.name(), "p");
}

#[test]
fn the_nominator_follows_status_preemption_and_deletes() {
    let q = queue();
    let nominated = pod_json("p", json!({"status": {"nominatedNodeName": "n1"}}));
    q.add(nominated.clone());
    let names = |node: &str| {
        q.nominated_pods_for_node(node)
            .iter()
            .map(|p| p.name().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("n1"), ["p"]);

    // Preemption nominates elsewhere; an update without the status keeps that in memory.
    let info = Arc::new(PodInfo::new(nominated.clone()));
    q.add_nominated_pod(info, Some("n2"));
    assert!(names("n1").is_empty());
    assert_eq!(names("n2"), ["p"]);
    let plain = pod("p");
    q.update(
        plain.clone(),
        pod_json("p", json!({"metadata": {"labels": {"a": "b"}}})),
    );
    assert_eq!(names("n2"), ["p"]);
    assert_eq!(
        q.nominated_pods_for_node("n2")[0].pod.metadata.labels,
        Some([("a".to_string(), "b".to_string())].into())
    );
    assert_eq!(q.nominated_node(&plain).as_deref(), Some("n2"));

    q.delete(&plain);
    assert!(names("n2").is_empty());
    assert_eq!(q.nominated_node(&plain), None);

    // With an informer lookup, a pod that is already bound is not nominated.
    let bound = pod_json("b", json!({"spec": {"nodeName": "n3"}}));
    let lookup: PodLookupFn = Arc::new(move |_ns, _name| Some(bound.clone()));
    let q = queue_with(QueueOptions {
        pod_lister: Some(lookup),
        ..options()
    });
    q.add_nominated_pod(Arc::new(PodInfo::new(pod("b"))), Some("n3"));
    assert!(q.nominated_pods_for_node("n3").is_empty());
}

struct Sort;
impl Plugin for Sort {
    fn name(&self) -> &'static str {
        "PrioritySort"
    }
    fn queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}
impl QueueSortPlugin for Sort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        a.pod_info.priority() > b.pod_info.priority()
    }
}

struct Binder;
impl Plugin for Binder {
    fn name(&self) -> &'static str {
        "DefaultBinder"
    }
    fn bind(&self) -> Option<&dyn BindPlugin> {
        Some(self)
    }
}
impl BindPlugin for Binder {
    fn bind<'a>(
        &'a self,
        _state: &'a CycleState,
        _pod: &'a Pod,
        _node: &'a str,
    ) -> BoxFuture<'a, Status> {
        Box::pin(async { Status::success() })
    }
}

struct Filter(&'static str, Vec<ClusterEventWithHint>);
impl Plugin for Filter {
    fn name(&self) -> &'static str {
        self.0
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        self.1.clone()
    }
}
impl FilterPlugin for Filter {
    fn filter(&self, _: &CycleState, _: &PodInfo, _: &NodeInfo) -> Status {
        Status::success()
    }
}

#[test]
fn the_hint_registry_covers_rejecting_plugins() {
    let fw = Framework::multi_point(
        "my-scheduler",
        Handle::for_tests(),
        vec![
            (Arc::new(Sort) as Arc<dyn Plugin>, 1),
            (Arc::new(Binder), 1),
            (
                Arc::new(Filter(FIT, vec![ClusterEventWithHint::new(NODE_ADD)])),
                1,
            ),
            (Arc::new(Filter("Silent", Vec::new())), 1),
        ],
    )
    .expect("framework");
    let registry = hint_registry([&fw]);
    let regs = &registry["my-scheduler"];
    let summary: BTreeSet<(&str, EventResource, ActionType)> = regs
        .iter()
        .map(|(p, r)| (*p, r.event.resource, r.event.action))
        .collect();
    assert_eq!(
        summary,
        [
            (FIT, EventResource::Node, ActionType::ADD),
            ("Silent", EventResource::WildCard, ActionType::ALL),
        ]
        .into_iter()
        .collect()
    );
}

#[tokio::test(start_paused = true)]
async fn no_pod_is_ever_lost_or_queued_twice() {
    use rand::{Rng, SeedableRng};
    use std::collections::HashMap;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let q = queue_with(QueueOptions {
        pop_from_backoff_q: true,
        ..options()
    });
    // name -> current pod object; in flight: name -> popped entry.
    let mut known: HashMap<String, Arc<Pod>> = HashMap::new();
    let mut flying: HashMap<String, QueuedPodInfo> = HashMap::new();
    let plugins = [FIT, AFFINITY, POD_AFFINITY, POD_TOPOLOGY_SPREAD];
    for step in 0..4000 {
        let name = format!("p{}", rng.random_range(0..25));
        match rng.random_range(0..10) {
            0 if !known.contains_key(&name) => {
                let p = if rng.random_bool(0.2) {
                    pod_json(&name, json!({"spec": {"schedulingGates": [{"name": "g"}]}}))
                } else {
                    pod_with_priority(&name, rng.random_range(0..3))
                };
                known.insert(name, p.clone());
                q.add(p);
            }
            1 if known.contains_key(&name) => {
                let old = known[&name].clone();
                let new = pod_json(
                    &name,
                    json!({"metadata": {"labels": {"v": step.to_string()}}}),
                );
                known.insert(name, new.clone());
                q.update(old, new);
            }
            2 if known.contains_key(&name) && !flying.contains_key(&name) => {
                q.delete(&known[&name]);
                known.remove(&name);
            }
            3 | 4 => {
                if let Some(Some(qpi)) = q.try_pop() {
                    let popped = qpi.pod_info.name().to_string();
                    assert!(flying.insert(popped, qpi).is_none(), "popped twice");
                }
            }
            5 => {
                if let Some(key) = flying.keys().next().cloned() {
                    let qpi = flying.remove(&key).expect("flying");
                    let n = rng.random_range(0..3);
                    let rejected: Vec<&'static str> =
                        (0..n).map(|_| plugins[rng.random_range(0..4)]).collect();
                    q.add_unschedulable_if_not_present(rejected_by(qpi, &rejected), 0)
                        .expect("hand back");
                }
            }
            6 => {
                if let Some(key) = flying.keys().next().cloned() {
                    // Bound: it leaves the queue for good.
                    let qpi = flying.remove(&key).expect("flying");
                    q.done(qpi.pod_info.uid());
                    known.remove(&key);
                }
            }
            7 => {
                let labels = if rng.random_bool(0.5) {
                    json!({"fits": ""})
                } else {
                    json!({})
                };
                q.move_all_to_active_or_backoff(NODE_ADD, None, Some(node("n", labels)), None);
            }
            8 => {
                advance(Duration::from_millis(rng.random_range(0..3000))).await;
                q.flush_backoff_q_completed();
                q.flush_unschedulable_pods_leftover();
            }
            _ => {
                let p = pod_json(
                    &format!("bound{step}"),
                    json!({"metadata": {"labels": {"app": "x"}}, "spec": {"nodeName": "n"}}),
                );
                q.assigned_pod_added(p);
            }
        }

        let inner = q.lock();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let keys = inner
            .active
            .iter()
            .map(|q| key_of(q.pod()))
            .chain(inner.backoff.iter().map(|e| key_of(e.qpi.pod())))
            .chain(inner.error_backoff.iter().map(|e| key_of(e.qpi.pod())))
            .chain(inner.unschedulable.keys().cloned());
        for key in keys {
            *seen.entry(key).or_default() += 1;
        }
        for (name, p) in &known {
            let queued = seen.remove(&key_of(p)).unwrap_or(0);
            let in_flight = usize::from(flying.contains_key(name));
            assert_eq!(
                queued + in_flight,
                1,
                "step {step}: {name} queued {queued}x, in flight {in_flight}"
            );
        }
        assert!(
            seen.is_empty(),
            "step {step}: unknown pods queued: {seen:?}"
        );
        let gated = inner.unschedulable.values().filter(|q| q.gated).count();
        assert_eq!(inner.gated, gated);
        assert_eq!(inner.in_flight.len(), flying.len());
    }
}
