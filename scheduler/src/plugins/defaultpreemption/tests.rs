//! DefaultPreemption through a real [`Framework`] built from small fake plugins: a node's
//! `slots` label caps its pod count (Unschedulable), `broken=true` makes it Unresolvable, and a
//! cluster-wide "token" (kept in PreFilter state, updated by AddPod/RemovePod) can be held by one
//! pod only. Cases follow upstream's `default_preemption_test.go`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::{json, Value};

use super::api::{ApiCallError, PreemptionApi};
use super::*;
use crate::framework::{
    BindPlugin, CycleState, FilterPlugin, Framework, NodeInfo, PodNominator, PreFilterExtensions,
    PreFilterPlugin, QueueSortPlugin, QueuedPodInfo, Snapshot,
};

fn pod(name: &str, priority: i32, extra: Value) -> Pod {
    let mut v = json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "c"}], "priority": priority,
                 "schedulerName": "default-scheduler"},
        "status": {"startTime": "2024-01-01T00:00:00Z"},
    });
    merge(&mut v, extra);
    serde_json::from_value(v).unwrap()
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

fn node(name: &str, labels: Value, pods: &[Pod]) -> NodeInfo {
    let n = serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    let mut info = NodeInfo::new(Some(Arc::new(n)));
    for p in pods {
        let mut p = p.clone();
        p.spec.get_or_insert_with(Default::default).node_name = Some(name.into());
        info.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
    }
    info
}

// Fake plugins.

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
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        a.pod_info.priority() > b.pod_info.priority()
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

/// `slots` caps the pods on a node; `broken=true` rules the node out for good.
struct Slots;
impl Plugin for Slots {
    fn name(&self) -> &'static str {
        "Slots"
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}
impl FilterPlugin for Slots {
    fn filter(&self, _: &CycleState, _: &PodInfo, node: &NodeInfo) -> Status {
        let labels = node
            .node()
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        if labels.get("broken").map(String::as_str) == Some("true") {
            return Status::unresolvable("node is broken");
        }
        let slots: usize = labels
            .get("slots")
            .and_then(|s| s.parse().ok())
            .unwrap_or(usize::MAX);
        if node.pods.len() >= slots {
            return Status::unschedulable("Too many pods");
        }
        Status::success()
    }
}

/// One pod in the cluster may hold the token (label `token=yes`); pods asking for it carry
/// the label too.
struct Token;
#[derive(Clone)]
struct TokenHolders(i64);
const TOKEN_KEY: &str = "PreFilterToken";
fn holds_token(p: &Pod) -> bool {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("token"))
        .map(String::as_str)
        == Some("yes")
}
impl Plugin for Token {
    fn name(&self) -> &'static str {
        "Token"
    }
    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }
}
impl PreFilterPlugin for Token {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<crate::framework::PreFilterResult>, Status) {
        let n = snapshot
            .list()
            .iter()
            .flat_map(|n| n.pods.iter())
            .filter(|p| holds_token(&p.pod))
            .count() as i64;
        state.write(TOKEN_KEY, TokenHolders(n));
        (None, Status::success())
    }
    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        Some(self)
    }
}
impl PreFilterExtensions for Token {
    fn add_pod(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        p: &Arc<PodInfo>,
        _: &NodeInfo,
    ) -> Status {
        if let Some(h) = state.read_mut::<TokenHolders>(TOKEN_KEY) {
            h.0 += i64::from(holds_token(&p.pod));
        }
        Status::success()
    }
    fn remove_pod(
        &self,
        state: &mut CycleState,
        _: &PodInfo,
        p: &Arc<PodInfo>,
        _: &NodeInfo,
    ) -> Status {
        if let Some(h) = state.read_mut::<TokenHolders>(TOKEN_KEY) {
            h.0 -= i64::from(holds_token(&p.pod));
        }
        Status::success()
    }
}
impl FilterPlugin for Token {
    fn filter(&self, state: &CycleState, pod: &PodInfo, _: &NodeInfo) -> Status {
        let holders = state.read::<TokenHolders>(TOKEN_KEY).map_or(0, |h| h.0);
        if holds_token(&pod.pod) && holders > 0 {
            return Status::unschedulable("token taken");
        }
        Status::success()
    }
}

#[derive(Default)]
struct Nominations(Vec<(String, Arc<PodInfo>)>);
impl PodNominator for Nominations {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.0
            .iter()
            .filter(|(n, _)| n == node)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn all_nominations(&self) -> std::collections::HashMap<String, Vec<Arc<PodInfo>>> {
        let mut all: std::collections::HashMap<String, Vec<Arc<PodInfo>>> = Default::default();
        for (node, pod) in &self.0 {
            all.entry(node.clone()).or_default().push(pod.clone());
        }
        all
    }
}

/// Records API calls; `hold` makes deletes wait until released.
#[derive(Default)]
struct FakeApi {
    calls: Mutex<Vec<String>>,
    hold: Option<Arc<tokio::sync::Semaphore>>,
}

impl FakeApi {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn push(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

impl PreemptionApi for FakeApi {
    fn set_pod_condition<'a>(
        &'a self,
        pod: &'a Pod,
        c: &'a PodCondition,
    ) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            self.push(format!(
                "condition {} {} {} {}",
                executor::key(pod),
                c.type_,
                c.reason.as_deref().unwrap_or(""),
                c.message.as_deref().unwrap_or("")
            ));
            Ok(())
        })
    }
    fn delete_pod<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            if let Some(hold) = &self.hold {
                let _permit = hold.acquire().await;
            }
            self.push(format!("delete {}", executor::key(pod)));
            Ok(())
        })
    }
    fn clear_nominated_node_name<'a>(
        &'a self,
        pod: &'a Pod,
    ) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            self.push(format!("clear {}", executor::key(pod)));
            Ok(())
        })
    }
    fn record_preempted(&self, victim: &Pod, preemptor: &Pod, node: &str) {
        self.push(format!(
            "event {} by {} on {node}",
            executor::key(victim),
            preemptor.metadata.uid.as_deref().unwrap_or("")
        ));
    }
}

struct Setup {
    framework: Framework,
    api: Arc<FakeApi>,
    preemption: Arc<DefaultPreemption>,
}

fn setup(
    args: PreemptionArgs,
    pdbs: Vec<Value>,
    nominations: Nominations,
    api: FakeApi,
    async_preemption: bool,
) -> Setup {
    let api = Arc::new(api);
    let store: Store<PodDisruptionBudget> = Store::default();
    for p in pdbs {
        let pdb: PodDisruptionBudget = serde_json::from_value(p).unwrap();
        VolumeListers::put(&store, pdb);
    }
    let preemption = Arc::new(
        DefaultPreemption::with_parts(args, None, store, Some(api.clone()), async_preemption)
            .with_offset(|_| 0),
    );
    let handle = Handle {
        nominator: Arc::new(nominations),
        ..Handle::for_tests()
    };
    let framework = Framework::multi_point(
        "default-scheduler",
        handle,
        vec![
            (Arc::new(Sort) as Arc<dyn Plugin>, 1),
            (Arc::new(Slots), 1),
            (Arc::new(Token), 1),
            (preemption.clone(), 1),
            (Arc::new(Bind), 1),
        ],
    )
    .unwrap();
    Setup {
        framework,
        api,
        preemption,
    }
}

fn sync_setup() -> Setup {
    setup(
        PreemptionArgs::default(),
        vec![],
        Nominations::default(),
        FakeApi::default(),
        false,
    )
}

/// One scheduling cycle up to PostFilter: no node may pass Filter.
async fn schedule(
    fw: &Framework,
    preemptor: Pod,
    nodes: Vec<NodeInfo>,
) -> (Option<PostFilterResult>, Status) {
    let snapshot = Arc::new(Snapshot::from_node_infos(nodes));
    let pod = Arc::new(PodInfo::new(Arc::new(preemptor)));
    let mut state = CycleState::new();
    let (_, status) = fw.run_pre_filter(&mut state, &pod, &snapshot);
    assert!(status.is_success(), "{status:?}");
    let mut statuses = NodeToStatus::default();
    let feasible = fw
        .find_nodes_that_pass_filters(&state, &pod, snapshot.list(), &mut statuses)
        .unwrap();
    assert!(feasible.is_empty(), "the test wants every node full");
    fw.run_post_filter(&state, &pod, &snapshot, &statuses).await
}

fn nominated(node: &str) -> Option<PostFilterResult> {
    Some(PostFilterResult {
        nominating: NominatingMode::Override(node.into()),
    })
}

fn full(slots: usize) -> Value {
    json!({"slots": slots.to_string()})
}

#[tokio::test]
async fn preempts_on_the_node_with_the_least_important_victims() {
    let s = sync_setup();
    let nodes = vec![
        node(
            "n1",
            full(2),
            &[pod("mid", 5, json!({})), pod("high", 50, json!({}))],
        ),
        node(
            "n2",
            full(2),
            &[pod("low", 0, json!({})), pod("mid2", 5, json!({}))],
        ),
    ];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n2"));
    // Only `low` has to go: `mid2` is reprieved.
    assert_eq!(
        s.api.calls(),
        vec![
            "condition ns/low DisruptionTarget PreemptionByScheduler default-scheduler: preempting to accommodate a higher priority pod",
            "delete ns/low",
            "event ns/low by uid-preemptor on n2",
        ]
    );
}

#[tokio::test]
async fn a_victim_waiting_at_permit_is_rejected_not_deleted() {
    let s = sync_setup();
    let mut low = pod("low", 0, json!({}));
    low.spec.get_or_insert_with(Default::default).node_name = Some("n1".into());
    let waiting = Arc::new(crate::framework::WaitingPod::new(
        Arc::new(low.clone()),
        "n1",
        [("Gate", Duration::from_secs(60))],
    ));
    s.framework.handle().waiting_pods.add(waiting.clone());
    let nodes = vec![node("n1", full(1), &[low])];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n1"));
    let outcome = waiting.outcome().expect("the waiting victim is rejected");
    assert_eq!(outcome.code(), Code::Unschedulable);
    assert_eq!(outcome.plugin(), NAME);
    assert_eq!(outcome.message(), "preempted");
    // No condition, no delete: only the event.
    assert_eq!(s.api.calls(), vec!["event ns/low by uid-preemptor on n1"]);
}

#[tokio::test]
async fn nothing_to_preempt() {
    let s = sync_setup();
    let nodes = vec![
        node("n1", full(1), &[pod("high", 50, json!({}))]),
        node("n2", json!({"broken": "true"}), &[]),
        node("n3", full(1), &[pod("same", 10, json!({}))]),
    ];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(
        status.message(),
        // Sorted as strings, as upstream's histogram.
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    );
    // The pod's nomination, if any, is cleared.
    assert_eq!(result, nominated(""));
    assert!(s.api.calls().is_empty());
}

#[tokio::test]
async fn a_node_that_stays_full_reports_its_filter_reason() {
    let s = sync_setup();
    // Even without its lower-priority pod the node is full of higher-priority ones.
    let nodes = vec![node(
        "n1",
        full(1),
        &[pod("high", 50, json!({})), pod("low", 0, json!({}))],
    )];
    let (_, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert_eq!(
        status.message(),
        "preemption: 0/1 nodes are available: 1 Too many pods."
    );
}

#[tokio::test]
async fn not_eligible() {
    let s = sync_setup();
    let never = pod(
        "preemptor",
        10,
        json!({"spec": {"preemptionPolicy": "Never"}}),
    );
    let (result, status) = schedule(
        &s.framework,
        never,
        vec![node("n1", full(1), &[pod("low", 0, json!({}))])],
    )
    .await;
    assert_eq!(result, None);
    assert_eq!(status.code(), Code::Unschedulable);
    assert_eq!(
        status.message(),
        "preemption: not eligible due to preemptionPolicy=Never."
    );

    // A victim of an earlier preemption is still terminating on the nominated node.
    let terminating = pod(
        "victim",
        0,
        json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"},
               "status": {"conditions": [{"type": "DisruptionTarget", "status": "True",
                                          "reason": "PreemptionByScheduler"}]}}),
    );
    let waiting = pod(
        "preemptor",
        10,
        json!({"status": {"nominatedNodeName": "n1"}}),
    );
    let (result, status) = schedule(
        &s.framework,
        waiting.clone(),
        vec![node("n1", full(1), std::slice::from_ref(&terminating))],
    )
    .await;
    assert_eq!(result, None);
    assert_eq!(
        status.message(),
        "preemption: not eligible due to a terminating pod on the nominated node."
    );
    // If the nominated node became unusable for good, preempt elsewhere.
    let nodes = vec![
        node("n1", json!({"broken": "true"}), &[terminating]),
        node("n2", full(1), &[pod("low", 0, json!({}))]),
    ];
    let (result, status) = schedule(&s.framework, waiting, nodes).await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n2"));
}

fn pdb(name: &str, app: &str, allowed: i32) -> Value {
    json!({
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"selector": {"matchLabels": {"app": app}}},
        "status": {"disruptionsAllowed": allowed, "currentHealthy": 1, "desiredHealthy": 1,
                   "expectedPods": 1},
    })
}

#[tokio::test]
async fn pod_disruption_budgets_steer_the_choice() {
    let s = setup(
        PreemptionArgs::default(),
        vec![pdb("protect-db", "db", 0)],
        Nominations::default(),
        FakeApi::default(),
        false,
    );
    let nodes = vec![
        node(
            "n1",
            full(1),
            &[pod("db", 0, json!({"metadata": {"labels": {"app": "db"}}}))],
        ),
        node(
            "n2",
            full(1),
            &[pod(
                "web",
                5,
                json!({"metadata": {"labels": {"app": "web"}}}),
            )],
        ),
    ];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert!(status.is_success(), "{status:?}");
    // n1's victim has the lower priority, but evicting it would break its budget.
    assert_eq!(result, nominated("n2"));
    assert!(s.api.calls().contains(&"delete ns/web".to_string()));
}

#[test]
fn pdb_violations_are_counted_and_budgets_spent() {
    let infos: Vec<Arc<PodInfo>> = ["a", "b", "c"]
        .iter()
        .map(|n| {
            Arc::new(PodInfo::new(Arc::new(pod(
                n,
                0,
                json!({"metadata": {"labels": {"app": "db"}}}),
            ))))
        })
        .collect();
    let budget: PodDisruptionBudget = serde_json::from_value(pdb("p", "db", 1)).unwrap();
    let (violating, ok) = victims::split_by_pdb_violation(&infos, &[Arc::new(budget.clone())]);
    let names = |v: &[Arc<PodInfo>]| v.iter().map(|p| p.name().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&ok), ["a"]);
    assert_eq!(names(&violating), ["b", "c"]);
    // A pod already being disrupted does not spend the budget again.
    let mut disrupted = budget;
    if let Some(s) = disrupted.status.as_mut() {
        s.disrupted_pods = Some(BTreeMap::from([(
            "a".to_string(),
            serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap(),
        )]));
    }
    let (violating, ok) = victims::split_by_pdb_violation(&infos, &[Arc::new(disrupted)]);
    assert_eq!(names(&ok), ["a", "b"]);
    assert_eq!(names(&violating), ["c"]);
}

#[tokio::test]
async fn prefilter_state_follows_removed_victims() {
    let s = sync_setup();
    let token = json!({"metadata": {"labels": {"token": "yes"}}});
    let nodes = vec![node(
        "n1",
        json!({}),
        &[
            pod("holder", 0, token.clone()),
            pod("bystander", 0, json!({})),
        ],
    )];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, token), nodes).await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n1"));
    let deletes: Vec<String> = s
        .api
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("delete"))
        .collect();
    assert_eq!(deletes, ["delete ns/holder"]);
}

#[tokio::test]
async fn lower_priority_nominations_are_cleared_and_terminating_victims_skipped() {
    let low_nominee = PodInfo::new(Arc::new(pod(
        "nominee",
        1,
        json!({"status": {"nominatedNodeName": "n1"}}),
    )));
    let high_nominee = PodInfo::new(Arc::new(pod(
        "vip",
        100,
        json!({"status": {"nominatedNodeName": "n1"}}),
    )));
    let s = setup(
        PreemptionArgs::default(),
        vec![],
        Nominations(vec![
            ("n1".into(), Arc::new(low_nominee)),
            ("n1".into(), Arc::new(high_nominee)),
        ]),
        FakeApi::default(),
        false,
    );
    let leaving = pod(
        "leaving",
        0,
        json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z"}}),
    );
    let nodes = vec![node("n1", full(2), &[leaving, pod("low", 0, json!({}))])];
    let (result, status) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes).await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n1"));
    let calls = s.api.calls();
    assert!(calls.contains(&"delete ns/low".to_string()), "{calls:?}");
    assert!(!calls.iter().any(|c| c.contains("ns/leaving")), "{calls:?}");
    assert_eq!(calls.last().map(String::as_str), Some("clear ns/nominee"));
}

#[tokio::test]
async fn the_dry_run_stops_after_enough_candidates() {
    let nodes = || {
        vec![
            node("n1", full(1), &[pod("mid", 5, json!({}))]),
            node("n2", full(1), &[pod("low", 0, json!({}))]),
        ]
    };
    let one = PreemptionArgs {
        min_candidate_nodes_percentage: 0,
        min_candidate_nodes_absolute: 1,
    };
    let s = setup(
        one,
        vec![],
        Nominations::default(),
        FakeApi::default(),
        false,
    );
    let (result, _) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes()).await;
    assert_eq!(result, nominated("n1"));
    let s = sync_setup();
    let (result, _) = schedule(&s.framework, pod("preemptor", 10, json!({})), nodes()).await;
    assert_eq!(result, nominated("n2"));
}

#[tokio::test]
async fn async_preemption_gates_the_preemptor_until_done() {
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    let api = FakeApi {
        hold: Some(hold.clone()),
        ..FakeApi::default()
    };
    let s = setup(
        PreemptionArgs::default(),
        vec![],
        Nominations::default(),
        api,
        true,
    );
    let preemptor = pod("preemptor", 10, json!({}));
    let nodes = vec![node(
        "n1",
        full(1),
        &[pod("a", 0, json!({})), pod("b", 1, json!({}))],
    )];
    let (result, status) = schedule(&s.framework, preemptor.clone(), nodes).await;
    // Nominated at once; the deletions run in the background.
    assert!(status.is_success(), "{status:?}");
    assert_eq!(result, nominated("n1"));
    assert!(Plugin::pre_enqueue(s.preemption.as_ref()).is_some());
    let gate = PreEnqueuePlugin::pre_enqueue(s.preemption.as_ref(), &preemptor);
    assert_eq!(gate.code(), Code::UnschedulableAndUnresolvable);
    assert_eq!(
        gate.reasons(),
        ["waiting for the preemption for this pod to be finished"]
    );
    hold.add_permits(10);
    for _ in 0..200 {
        if PreEnqueuePlugin::pre_enqueue(s.preemption.as_ref(), &preemptor).is_success() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(PreEnqueuePlugin::pre_enqueue(s.preemption.as_ref(), &preemptor).is_success());
    let deletes: Vec<String> = s
        .api
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("delete"))
        .collect();
    assert_eq!(deletes.len(), 2, "{:?}", s.api.calls());
    // Other pods are never gated.
    assert!(
        PreEnqueuePlugin::pre_enqueue(s.preemption.as_ref(), &pod("other", 0, json!({})))
            .is_success()
    );
}

#[test]
fn the_last_victim_being_deleted_ends_the_wait() {
    let running = executor::Running::default();
    let pods: Store<Pod> = Store::default();
    let victim = pod("v", 0, json!({}));
    VolumeListers::put(&pods, victim.clone());
    assert!(!running.is_running("u", Some(&pods)));
    running.start("u");
    // Victims before the last are still being deleted.
    assert!(running.is_running("u", Some(&pods)));
    running.waiting_for("u", &victim);
    assert!(running.is_running("u", Some(&pods)));
    // The last victim's deletion has started: the preemptor may be scheduled again.
    let mut leaving = victim.clone();
    leaving.metadata.deletion_timestamp =
        serde_json::from_value(json!("2024-01-01T00:00:00Z")).unwrap();
    VolumeListers::put(&pods, leaving);
    assert!(!running.is_running("u", Some(&pods)));
    pods.remove("ns/v");
    assert!(!running.is_running("u", Some(&pods)));
    running.finish("u");
    VolumeListers::put(&pods, victim);
    assert!(!running.is_running("u", Some(&pods)));
}

#[test]
fn victims_are_reprieved_in_order_of_importance() {
    let older = pod(
        "older",
        5,
        json!({"status": {"startTime": "2023-01-01T00:00:00Z"}}),
    );
    let newer = pod(
        "newer",
        5,
        json!({"status": {"startTime": "2024-06-01T00:00:00Z"}}),
    );
    assert!(victims::more_important(&older, &newer));
    assert!(!victims::more_important(&newer, &older));
    assert!(victims::more_important(&pod("p", 6, json!({})), &older));
}

#[test]
fn disruption_condition_keeps_its_transition_time() {
    let preemptor = pod("preemptor", 10, json!({}));
    let (fresh, changed) = executor::disruption_condition(&pod("v", 0, json!({})), &preemptor);
    assert!(changed);
    assert_eq!(fresh.status, "True");
    let already = pod(
        "v",
        0,
        json!({"status": {"conditions": [{
            "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
            "message": "default-scheduler: preempting to accommodate a higher priority pod",
            "lastTransitionTime": "2024-01-01T00:00:00Z"}]}}),
    );
    let (_, changed) = executor::disruption_condition(&already, &preemptor);
    assert!(!changed);
}

#[test]
fn args_are_validated() {
    assert_eq!(parse_args(None).unwrap(), PreemptionArgs::default());
    assert_eq!(
        parse_args(Some(&json!({"minCandidateNodesPercentage": 20}))).unwrap(),
        PreemptionArgs {
            min_candidate_nodes_percentage: 20,
            min_candidate_nodes_absolute: 100
        }
    );
    let err = parse_args(Some(&json!({"minCandidateNodesPercentage": 101}))).unwrap_err();
    assert!(
        err.to_string().contains(
            "minCandidateNodesPercentage: Invalid value: 101: not in valid range [0, 100]"
        ),
        "{err}"
    );
    let err = parse_args(Some(&json!({"minCandidateNodesAbsolute": -1}))).unwrap_err();
    assert!(
        err.to_string().contains("not in valid range [0, inf)"),
        "{err}"
    );
    let err = parse_args(Some(
        &json!({"minCandidateNodesPercentage": 0, "minCandidateNodesAbsolute": 0}),
    ))
    .unwrap_err();
    assert!(
        err.to_string().contains("cannot be zero at the same time"),
        "{err}"
    );
    assert!(parse_args(Some(&json!({"unknown": 1}))).is_err());
}
