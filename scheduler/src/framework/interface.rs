//! The extension points (upstream's `framework/interface.go`). A plugin is one object that
//! implements [`Plugin`] and answers `Some(self)` from the accessor of every extension point it
//! takes part in; the framework calls them in the profile's order.
//!
//! Filter and Score run for many nodes at once on several threads, so they take `&self` and a
//! shared `&CycleState`; PreFilter and PreScore, which run once per cycle, may write to the state.
//! Points that talk to the apiserver (PostFilter's preemption, PreBind, Bind) are async.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;

use super::cycle_state::CycleState;
use super::snapshot::Snapshot;
use super::status::{Code, Status};
use super::types::{ClusterEventWithHint, NodeInfo, NodeScore, PodInfo, QueuedPodInfo};
use super::waiting::{WaitingPod, WaitingPods, REJECTED_REMOVED};

/// A scheduler plugin.
pub trait Plugin: Send + Sync + 'static {
    /// The name profiles and `pluginConfig` use ("NodeResourcesFit").
    fn name(&self) -> &'static str;

    fn queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        None
    }
    fn pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        None
    }
    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        None
    }
    fn filter(&self) -> Option<&dyn FilterPlugin> {
        None
    }
    fn post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        None
    }
    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        None
    }
    fn score(&self) -> Option<&dyn ScorePlugin> {
        None
    }
    fn reserve(&self) -> Option<&dyn ReservePlugin> {
        None
    }
    fn permit(&self) -> Option<&dyn PermitPlugin> {
        None
    }
    fn pre_bind(&self) -> Option<&dyn PreBindPlugin> {
        None
    }
    fn bind(&self) -> Option<&dyn BindPlugin> {
        None
    }
    fn post_bind(&self) -> Option<&dyn PostBindPlugin> {
        None
    }

    /// The cluster events that may make a pod this plugin rejected schedulable, with hints
    /// (upstream's `EnqueueExtensions.EventsToRegister`). Plugins that reject pods should
    /// register; an empty list means "any event" for a plugin that rejects (upstream's
    /// conservative default).
    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        Vec::new()
    }
}

/// Orders activeQ. Exactly one per profile.
pub trait QueueSortPlugin: Send + Sync {
    /// Whether `a` should be scheduled before `b`.
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool;
}

/// Decides whether a pod may enter activeQ at all (scheduling gates).
pub trait PreEnqueuePlugin: Send + Sync {
    /// Success to admit; anything else keeps the pod out (Pending / UnschedulableAndUnresolvable).
    fn pre_enqueue(&self, pod: &Pod) -> Status;
}

/// Which nodes PreFilter allows (None: all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreFilterResult {
    pub node_names: Option<HashSet<String>>,
}

impl PreFilterResult {
    pub fn all_nodes(&self) -> bool {
        self.node_names.is_none()
    }

    /// The intersection of two results.
    pub fn merge(self, other: Option<PreFilterResult>) -> PreFilterResult {
        match (self.node_names, other.and_then(|o| o.node_names)) {
            (None, other) => PreFilterResult { node_names: other },
            (mine, None) => PreFilterResult { node_names: mine },
            (Some(a), Some(b)) => PreFilterResult {
                node_names: Some(a.intersection(&b).cloned().collect()),
            },
        }
    }
}

pub trait PreFilterPlugin: Send + Sync {
    /// Computes what Filter needs (into `state`) and may narrow the nodes. Skip means the
    /// plugin's Filter is not run this cycle.
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status);

    /// Incremental updates of the PreFilter state (for preemption and nominated pods).
    fn extensions(&self) -> Option<&dyn PreFilterExtensions> {
        None
    }
}

/// Updates PreFilter's state as if `pod_to_add` ran on / `pod_to_remove` left `node`.
pub trait PreFilterExtensions: Send + Sync {
    fn add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
    fn remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        pod_to_remove: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status;
}

pub trait FilterPlugin: Send + Sync {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status;
}

/// The filter verdicts of one cycle, by node name. Nodes not in the map (cut by a
/// PreFilterResult) get `absent`.
#[derive(Debug, Clone, Default)]
pub struct NodeToStatus {
    pub statuses: HashMap<String, Status>,
    pub absent: Option<Status>,
}

impl NodeToStatus {
    pub fn get(&self, node: &str) -> Status {
        self.statuses
            .get(node)
            .cloned()
            .or_else(|| self.absent.clone())
            .unwrap_or_else(|| {
                Status::new(Code::UnschedulableAndUnresolvable, "node not considered")
            })
    }

    pub fn set(&mut self, node: String, status: Status) {
        self.statuses.insert(node, status);
    }
}

/// How PostFilter wants the pod's `status.nominatedNodeName` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NominatingMode {
    /// Leave it as it is.
    Noop,
    /// Set it to this node (preemption found room there).
    Override(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostFilterResult {
    pub nominating: NominatingMode,
}

/// What PostFilter gets: the framework to re-run filters with, the cycle's state and
/// snapshot, and why each node was rejected.
pub struct PostFilterArgs<'a> {
    pub framework: &'a super::runtime::Framework,
    pub state: &'a CycleState,
    pub pod: &'a Arc<PodInfo>,
    pub snapshot: &'a Arc<Snapshot>,
    pub statuses: &'a NodeToStatus,
}

pub trait PostFilterPlugin: Send + Sync {
    /// Runs when no node passed Filter; DefaultPreemption picks victims here.
    fn post_filter<'a>(
        &'a self,
        args: PostFilterArgs<'a>,
    ) -> BoxFuture<'a, (Option<PostFilterResult>, Status)>;
}

pub trait PreScorePlugin: Send + Sync {
    /// Skip means the plugin's Score is not run this cycle.
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status;
}

pub trait ScorePlugin: Send + Sync {
    /// A score for `node`; after normalisation it must lie in [0, 100].
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status);

    /// Rescales the scores of all nodes (upstream's `ScoreExtensions.NormalizeScore`).
    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, _scores: &mut [NodeScore]) -> Status {
        Status::success()
    }

    /// Whether this plugin normalises (the framework skips the call otherwise).
    fn has_normalize(&self) -> bool {
        false
    }
}

pub trait ReservePlugin: Send + Sync {
    fn reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status;
    /// Undoes `reserve`; must be idempotent and never fail.
    fn unreserve(&self, state: &mut CycleState, pod: &Pod, node: &str);
}

pub trait PermitPlugin: Send + Sync {
    /// Success, Wait (with a timeout, at most [`super::waiting::MAX_PERMIT_TIMEOUT`]) or a
    /// rejection. A pod some plugin holds waits, in its binding cycle, until every holding
    /// plugin allows it through [`Handle::get_waiting_pod`] or one rejects it; a plugin's
    /// timeout rejects it.
    fn permit(&self, state: &CycleState, pod: &Pod, node: &str) -> (Status, Duration);
}

pub trait PreBindPlugin: Send + Sync {
    fn pre_bind<'a>(
        &'a self,
        state: &'a CycleState,
        pod: &'a Pod,
        node: &'a str,
    ) -> BoxFuture<'a, Status>;
}

pub trait BindPlugin: Send + Sync {
    /// Skip passes the pod to the next bind plugin.
    fn bind<'a>(
        &'a self,
        state: &'a CycleState,
        pod: &'a Pod,
        node: &'a str,
    ) -> BoxFuture<'a, Status>;
}

pub trait PostBindPlugin: Send + Sync {
    fn post_bind(&self, state: &CycleState, pod: &Pod, node: &str);
}

/// The pods nominated to run on a node (preemptors waiting for their victims to go), which
/// Filter must count as if they were there when they have at least the pod's priority.
pub trait PodNominator: Send + Sync {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>>;

    /// Every nomination at once (node -> pods), so that a cycle that filters thousands of
    /// nodes asks once instead of once per node; usually empty.
    fn all_nominations(&self) -> HashMap<String, Vec<Arc<PodInfo>>>;
}

/// A nominator that knows of none (tests).
#[derive(Debug, Default)]
pub struct NoNominations;

impl PodNominator for NoNominations {
    fn nominated_pods_for_node(&self, _node: &str) -> Vec<Arc<PodInfo>> {
        Vec::new()
    }

    fn all_nominations(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        HashMap::new()
    }
}

/// What a plugin may use when it is built: the API client and informers (absent in unit
/// tests), the nominator, and the pods Permit plugins hold.
#[derive(Clone)]
pub struct Handle {
    pub client: Option<client::Client>,
    pub informers: Option<client::SharedInformerFactory>,
    pub nominator: Arc<dyn PodNominator>,
    /// Shared by every profile of the scheduler, as upstream's `waitingPodsMap`.
    pub waiting_pods: WaitingPods,
}

impl Handle {
    /// No client, no informers, no nominations, no waiting pods: for unit tests of plugins.
    pub fn for_tests() -> Handle {
        Handle {
            client: None,
            informers: None,
            nominator: Arc::new(NoNominations),
            waiting_pods: WaitingPods::default(),
        }
    }

    /// The pod with `uid` if Permit plugins hold it (upstream's `GetWaitingPod`).
    pub fn get_waiting_pod(&self, uid: &str) -> Option<Arc<WaitingPod>> {
        self.waiting_pods.get(uid)
    }

    /// Calls `f` for every pod Permit plugins hold (upstream's `IterateOverWaitingPods`).
    pub fn iterate_over_waiting_pods(&self, f: impl FnMut(&Arc<WaitingPod>)) {
        self.waiting_pods.iterate(f);
    }

    /// Rejects the pod with `uid` as "removed" if it waits; whether it did (upstream's
    /// `RejectWaitingPod`, for a pod deleted while it waits).
    pub fn reject_waiting_pod(&self, uid: &str) -> bool {
        self.waiting_pods.reject(uid, "", REJECTED_REMOVED)
    }
}

/// Builds a plugin from its `pluginConfig` args (None: the defaults).
pub type PluginFactory =
    fn(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>>;
