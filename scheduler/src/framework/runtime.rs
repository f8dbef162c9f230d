//! One profile's plugins, run extension point by extension point (upstream's
//! `frameworkImpl`), and the two parallel loops of a scheduling cycle: filtering the nodes
//! (`findNodesThatPassFilters`, with `percentageOfNodesToScore` and a round-robin start) and
//! scoring the feasible ones.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use rayon::prelude::*;

use super::cycle_state::CycleState;
use super::interface::{
    Handle, NodeToStatus, Plugin, PostFilterArgs, PostFilterResult, PreFilterResult,
};
use super::snapshot::Snapshot;
use super::status::{Code, Status};
use super::types::{
    ClusterEventWithHint, NodeInfo, NodeScore, PodInfo, QueuedPodInfo, MAX_NODE_SCORE,
    MIN_NODE_SCORE,
};
use super::waiting::{WaitingPod, WaitingPods};

/// The extension points, for configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Point {
    QueueSort,
    PreEnqueue,
    PreFilter,
    Filter,
    PostFilter,
    PreScore,
    Score,
    Reserve,
    Permit,
    PreBind,
    Bind,
    PostBind,
}

impl Point {
    pub const ALL: [Point; 12] = [
        Point::QueueSort,
        Point::PreEnqueue,
        Point::PreFilter,
        Point::Filter,
        Point::PostFilter,
        Point::PreScore,
        Point::Score,
        Point::Reserve,
        Point::Permit,
        Point::PreBind,
        Point::Bind,
        Point::PostBind,
    ];

    /// Whether `plugin` implements this point.
    pub fn implemented_by(self, plugin: &dyn Plugin) -> bool {
        match self {
            Point::QueueSort => plugin.queue_sort().is_some(),
            Point::PreEnqueue => plugin.pre_enqueue().is_some(),
            Point::PreFilter => plugin.pre_filter().is_some(),
            Point::Filter => plugin.filter().is_some(),
            Point::PostFilter => plugin.post_filter().is_some(),
            Point::PreScore => plugin.pre_score().is_some(),
            Point::Score => plugin.score().is_some(),
            Point::Reserve => plugin.reserve().is_some(),
            Point::Permit => plugin.permit().is_some(),
            Point::PreBind => plugin.pre_bind().is_some(),
            Point::Bind => plugin.bind().is_some(),
            Point::PostBind => plugin.post_bind().is_some(),
        }
    }

    /// The field name in `KubeSchedulerConfiguration.profiles[].plugins`.
    pub fn config_name(self) -> &'static str {
        match self {
            Point::QueueSort => "queueSort",
            Point::PreEnqueue => "preEnqueue",
            Point::PreFilter => "preFilter",
            Point::Filter => "filter",
            Point::PostFilter => "postFilter",
            Point::PreScore => "preScore",
            Point::Score => "score",
            Point::Reserve => "reserve",
            Point::Permit => "permit",
            Point::PreBind => "preBind",
            Point::Bind => "bind",
            Point::PostBind => "postBind",
        }
    }
}

/// Upstream's `minFeasibleNodesToFind` and `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: i64 = 5;

/// How many feasible nodes to look for among `all` (upstream's `numFeasibleNodesToFind`):
/// every node in small clusters; otherwise `percentage` of them, or the adaptive default
/// (50% minus 1% per 125 nodes, at least 5%), and never fewer than 100.
pub fn num_feasible_nodes_to_find(percentage: Option<i32>, all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let mut pct = i64::from(percentage.unwrap_or(0));
    if pct >= 100 {
        return all;
    }
    if pct <= 0 {
        pct = 50 - (all as i64) / 125;
        if pct < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND {
            pct = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND;
        }
    }
    let n = (all as i64 * pct / 100) as usize;
    n.max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// A plugin's non-success status as the framework reports it: a rejection as it is, anything
/// else as an Error whose message `context` builds from the plugin's message.
fn rejection_or_error(status: Status, context: impl FnOnce(String) -> String) -> Status {
    if status.is_rejected() {
        return status;
    }
    Status::error(context(status.message()))
}

/// Takes a pod out of the waiting pods when its wait ends, however it ends.
struct Unpark<'a>(&'a WaitingPods, &'a str);

impl Drop for Unpark<'_> {
    fn drop(&mut self) {
        self.0.remove(self.1);
    }
}

fn waiting_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// A profile's plugins by extension point, in order, with score weights.
pub struct Framework {
    profile: String,
    handle: Handle,
    points: HashMap<Point, Vec<Arc<dyn Plugin>>>,
    weights: HashMap<&'static str, i64>,
    /// Every distinct plugin of the profile.
    plugins: Vec<Arc<dyn Plugin>>,
    percentage_of_nodes_to_score: Option<i32>,
    /// Where the next cycle starts looking (round robin across cycles).
    next_start: AtomicUsize,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl Framework {
    /// A framework with `enabled[point]` plugins in that order. `weights` are the Score
    /// weights (1 when absent).
    pub fn new(
        profile: impl Into<String>,
        handle: Handle,
        enabled: Vec<(Point, Arc<dyn Plugin>)>,
        weights: HashMap<&'static str, i64>,
        percentage_of_nodes_to_score: Option<i32>,
        parallelism: usize,
    ) -> anyhow::Result<Framework> {
        let mut points: HashMap<Point, Vec<Arc<dyn Plugin>>> = HashMap::new();
        let mut plugins: Vec<Arc<dyn Plugin>> = Vec::new();
        for (point, plugin) in enabled {
            if !point.implemented_by(plugin.as_ref()) {
                anyhow::bail!(
                    "plugin {:?} does not extend {} plugin",
                    plugin.name(),
                    point.config_name()
                );
            }
            let list = points.entry(point).or_default();
            if list.iter().any(|p| p.name() == plugin.name()) {
                anyhow::bail!(
                    "plugin {:?} already registered as {:?}",
                    plugin.name(),
                    point.config_name()
                );
            }
            if !plugins.iter().any(|p| p.name() == plugin.name()) {
                plugins.push(plugin.clone());
            }
            list.push(plugin);
        }
        if points.get(&Point::QueueSort).map_or(0, Vec::len) != 1 {
            anyhow::bail!("exactly one queue sort plugin is required");
        }
        if points.get(&Point::Bind).map_or(0, Vec::len) == 0 {
            anyhow::bail!("at least one bind plugin is needed");
        }
        // `parallelism` bounds the work in flight; more threads than CPUs only adds
        // switching (upstream's default of 16 on a 2-core node), so the pool is capped there.
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let threads = parallelism.min(cpus);
        let pool = if threads > 1 {
            Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("sched-par-{i}"))
                    .build()?,
            ))
        } else {
            None
        };
        Ok(Framework {
            profile: profile.into(),
            handle,
            points,
            weights,
            plugins,
            percentage_of_nodes_to_score,
            next_start: AtomicUsize::new(0),
            pool,
        })
    }

    /// Every plugin at every point it implements (upstream's multiPoint), in this order, with
    /// its weight; for tests and simple profiles.
    pub fn multi_point(
        profile: impl Into<String>,
        handle: Handle,
        plugins: Vec<(Arc<dyn Plugin>, i64)>,
    ) -> anyhow::Result<Framework> {
        let mut enabled = Vec::new();
        let mut weights = HashMap::new();
        for point in Point::ALL {
            for (plugin, weight) in &plugins {
                if point.implemented_by(plugin.as_ref()) {
                    enabled.push((point, plugin.clone()));
                }
                weights.insert(plugin.name(), *weight);
            }
        }
        Framework::new(profile, handle, enabled, weights, None, 1)
    }

    pub fn profile_name(&self) -> &str {
        &self.profile
    }

    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    pub fn plugins(&self) -> &[Arc<dyn Plugin>] {
        &self.plugins
    }

    pub fn plugins_at(&self, point: Point) -> &[Arc<dyn Plugin>] {
        self.points.get(&point).map_or(&[], Vec::as_slice)
    }

    pub fn has_post_filter(&self) -> bool {
        !self.plugins_at(Point::PostFilter).is_empty()
    }

    /// The events each plugin that can reject pods registers for.
    pub fn events_to_register(&self) -> Vec<(&'static str, ClusterEventWithHint)> {
        self.plugins
            .iter()
            .flat_map(|p| {
                let name = p.name();
                p.events_to_register().into_iter().map(move |e| (name, e))
            })
            .collect()
    }

    fn run_parallel<T, F>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
    }

    pub fn queue_sort_less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        self.plugins_at(Point::QueueSort)
            .first()
            .and_then(|p| p.queue_sort())
            .is_some_and(|q| q.less(a, b))
    }

    /// Success, or the first plugin's rejection (which keeps the pod out of activeQ).
    pub fn run_pre_enqueue(&self, pod: &Pod) -> Status {
        for p in self.plugins_at(Point::PreEnqueue) {
            let Some(plugin) = p.pre_enqueue() else {
                continue;
            };
            let status = plugin.pre_enqueue(pod);
            if !status.is_success() {
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Runs PreFilter; a rejection names its plugin, Skip marks the plugin's Filter skipped.
    pub fn run_pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
    ) -> (PreFilterResult, Status) {
        let mut result = PreFilterResult::default();
        let mut narrowed_by: Vec<&'static str> = Vec::new();
        for p in self.plugins_at(Point::PreFilter) {
            let Some(plugin) = p.pre_filter() else {
                continue;
            };
            let (r, status) = plugin.pre_filter(state, pod, snapshot);
            if status.is_skip() {
                state.skip_filter(p.name());
                continue;
            }
            if !status.is_success() {
                let status = rejection_or_error(status, |m| {
                    format!("running PreFilter plugin {:?}: {m}", p.name())
                });
                return (result, status.with_plugin(p.name()));
            }
            if r.as_ref().is_some_and(|r| !r.all_nodes()) {
                narrowed_by.push(p.name());
            }
            result = result.merge(r);
            if result.node_names.as_ref().is_some_and(|n| n.is_empty()) {
                let message = format!(
                    "node(s) didn't satisfy plugin(s) [{}] simultaneously",
                    narrowed_by.join(" ")
                );
                let mut status = Status::unresolvable(message);
                if narrowed_by.len() == 1 {
                    status = status.with_plugin(narrowed_by[0]);
                }
                return (result, status);
            }
        }
        (result, Status::success())
    }

    /// Runs every Filter plugin in order until one rejects.
    pub fn run_filter_plugins(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        for p in self.plugins_at(Point::Filter) {
            if state.is_filter_skipped(p.name()) {
                continue;
            }
            let Some(plugin) = p.filter() else {
                continue;
            };
            let status = plugin.filter(state, pod, node);
            if !status.is_success() {
                let status = rejection_or_error(status, |m| {
                    format!("running {:?} filter plugin: {m}", p.name())
                });
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_extension_add_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_add: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in self.plugins_at(Point::PreFilter) {
            if state.is_filter_skipped(p.name()) {
                continue;
            }
            let Some(ext) = p.pre_filter().and_then(|f| f.extensions()) else {
                continue;
            };
            let status = ext.add_pod(state, pod, to_add, node);
            if !status.is_success() {
                return Status::error(format!(
                    "running AddPod on PreFilter plugin {:?}: {}",
                    p.name(),
                    status.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    pub fn run_pre_filter_extension_remove_pod(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        to_remove: &Arc<PodInfo>,
        node: &NodeInfo,
    ) -> Status {
        for p in self.plugins_at(Point::PreFilter) {
            if state.is_filter_skipped(p.name()) {
                continue;
            }
            let Some(ext) = p.pre_filter().and_then(|f| f.extensions()) else {
                continue;
            };
            let status = ext.remove_pod(state, pod, to_remove, node);
            if !status.is_success() {
                return Status::error(format!(
                    "running RemovePod on PreFilter plugin {:?}: {}",
                    p.name(),
                    status.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Filter as upstream's `RunFilterPluginsWithNominatedPods`: when pods of at least this
    /// pod's priority are nominated to the node, the filters must pass both with them counted
    /// and without them (anti-affinity-like rules could pass only without).
    pub fn run_filter_plugins_with_nominated_pods(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
    ) -> Status {
        let nominated = self.handle.nominator.nominated_pods_for_node(node.name());
        self.run_filter_plugins_with(state, pod, node, &nominated)
    }

    /// [`Framework::run_filter_plugins_with_nominated_pods`] with the node's nominations
    /// already in hand.
    fn run_filter_plugins_with(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        node: &NodeInfo,
        nominated: &[Arc<PodInfo>],
    ) -> Status {
        let nominated: Vec<&Arc<PodInfo>> = nominated
            .iter()
            .filter(|p| p.uid() != pod.uid() && p.priority() >= pod.priority())
            .collect();
        if nominated.is_empty() {
            return self.run_filter_plugins(state, pod, node);
        }
        let mut with_state = state.clone();
        let mut with_node = node.clone();
        for p in nominated {
            with_node.add_pod(p.clone());
            let status = self.run_pre_filter_extension_add_pod(&mut with_state, pod, p, &with_node);
            if !status.is_success() {
                return status;
            }
        }
        let status = self.run_filter_plugins(&with_state, pod, &with_node);
        if !status.is_success() {
            return status;
        }
        self.run_filter_plugins(state, pod, node)
    }

    /// The nodes that pass Filter, looking at `nodes` from the round-robin start and stopping
    /// once enough are found; every rejected node's status lands in `statuses`.
    pub fn find_nodes_that_pass_filters(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        statuses: &mut NodeToStatus,
    ) -> Result<Vec<Arc<NodeInfo>>, Status> {
        let all = nodes.len();
        if all == 0 {
            return Ok(Vec::new());
        }
        let want = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, all);
        let start = self.next_start.load(Ordering::Relaxed) % all;
        let has_filters = self
            .plugins_at(Point::Filter)
            .iter()
            .any(|p| !state.is_filter_skipped(p.name()));
        if !has_filters {
            let picked: Vec<Arc<NodeInfo>> = (0..want)
                .map(|i| nodes[(start + i) % all].clone())
                .collect();
            self.next_start
                .store((start + picked.len()) % all, Ordering::Relaxed);
            return Ok(picked);
        }
        // One look at the nominations per cycle, not one (locked) look per node.
        let nominations = self.handle.nominator.all_nominations();
        let found = AtomicUsize::new(0);
        let processed = AtomicUsize::new(0);
        let feasible: Mutex<Vec<(usize, Arc<NodeInfo>)>> = Mutex::new(Vec::with_capacity(want));
        let rejected: Mutex<Vec<(String, Status)>> = Mutex::new(Vec::new());
        let error: Mutex<Option<Status>> = Mutex::new(None);
        let check = |i: usize| {
            if found.load(Ordering::Relaxed) >= want {
                return;
            }
            let node = &nodes[(start + i) % all];
            let nominated = nominations.get(node.name()).map_or(&[][..], Vec::as_slice);
            let status = self.run_filter_plugins_with(state, pod, node, nominated);
            processed.fetch_add(1, Ordering::Relaxed);
            if status.is_success() {
                if found.fetch_add(1, Ordering::Relaxed) < want {
                    if let Ok(mut f) = feasible.lock() {
                        f.push((i, node.clone()));
                    }
                }
            } else if status.code() == Code::Error {
                if let Ok(mut e) = error.lock() {
                    e.get_or_insert(status);
                }
            } else if let Ok(mut r) = rejected.lock() {
                r.push((node.name().to_string(), status));
            }
        };
        // Small clusters are not worth the hand-off to other threads.
        if all < 64 || self.pool.is_none() {
            for i in 0..all {
                if found.load(Ordering::Relaxed) >= want {
                    break;
                }
                check(i);
            }
        } else {
            self.run_parallel(|| (0..all).into_par_iter().with_min_len(16).for_each(check));
        }
        if let Some(err) = error.into_inner().ok().flatten() {
            return Err(err);
        }
        for (name, status) in rejected.into_inner().unwrap_or_default() {
            statuses.set(name, status);
        }
        let mut feasible = feasible.into_inner().unwrap_or_default();
        feasible.sort_by_key(|(i, _)| *i);
        feasible.truncate(want);
        // The next cycle starts after the last node this one looked at.
        let looked = processed.load(Ordering::Relaxed).max(1);
        self.next_start
            .store((start + looked) % all, Ordering::Relaxed);
        Ok(feasible.into_iter().map(|(_, n)| n).collect())
    }

    pub async fn run_post_filter(
        &self,
        state: &CycleState,
        pod: &Arc<PodInfo>,
        snapshot: &Arc<Snapshot>,
        statuses: &NodeToStatus,
    ) -> (Option<PostFilterResult>, Status) {
        let mut reasons = Vec::new();
        // As upstream: the last rejecting plugin's non-Noop result (e.g. preemption clearing
        // the nomination) survives, and the first rejector names the status.
        let mut last_result = None;
        let mut rejector: Option<&'static str> = None;
        for p in self.plugins_at(Point::PostFilter) {
            let Some(plugin) = p.post_filter() else {
                continue;
            };
            let (result, status) = plugin
                .post_filter(PostFilterArgs {
                    framework: self,
                    state,
                    pod,
                    snapshot,
                    statuses,
                })
                .await;
            if status.is_success() {
                return (result, status.with_plugin(p.name()));
            }
            if status.code() == Code::UnschedulableAndUnresolvable {
                return (result, status.with_plugin(p.name()));
            }
            if !status.is_rejected() {
                return (None, status.with_plugin(p.name()));
            }
            if result
                .as_ref()
                .is_some_and(|r| r.nominating != super::interface::NominatingMode::Noop)
            {
                last_result = result;
            }
            reasons.extend(status.reasons().iter().cloned());
            rejector.get_or_insert(p.name());
        }
        let status = Status::with_reasons(Code::Unschedulable, reasons);
        (last_result, status.with_plugin(rejector.unwrap_or("")))
    }

    pub fn run_pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        for p in self.plugins_at(Point::PreScore) {
            let Some(plugin) = p.pre_score() else {
                continue;
            };
            let status = plugin.pre_score(state, pod, nodes, snapshot);
            if status.is_skip() {
                state.skip_score(p.name());
                continue;
            }
            if !status.is_success() {
                return Status::error(format!(
                    "running PreScore plugin {:?}: {}",
                    p.name(),
                    status.message()
                ))
                .with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Every node's weighted total over the Score plugins, each plugin's scores normalised.
    pub fn run_score(
        &self,
        state: &CycleState,
        pod: &PodInfo,
        nodes: &[Arc<NodeInfo>],
    ) -> Result<Vec<NodeScore>, Status> {
        let mut totals: Vec<NodeScore> = nodes
            .iter()
            .map(|n| NodeScore {
                name: n.name().to_string(),
                score: 0,
            })
            .collect();
        for p in self.plugins_at(Point::Score) {
            if state.is_score_skipped(p.name()) {
                continue;
            }
            let Some(plugin) = p.score() else {
                continue;
            };
            let score_one = |node: &Arc<NodeInfo>| {
                let (score, status) = plugin.score(state, pod, node);
                (
                    NodeScore {
                        name: node.name().to_string(),
                        score,
                    },
                    status,
                )
            };
            let results: Vec<(NodeScore, Status)> = if nodes.len() < 64 || self.pool.is_none() {
                nodes.iter().map(score_one).collect()
            } else {
                self.run_parallel(|| nodes.par_iter().with_min_len(16).map(score_one).collect())
            };
            let mut scores = Vec::with_capacity(results.len());
            for (score, status) in results {
                if !status.is_success() {
                    return Err(Status::error(format!(
                        "running Score plugin {:?}: {}",
                        p.name(),
                        status.message()
                    ))
                    .with_plugin(p.name()));
                }
                scores.push(score);
            }
            if plugin.has_normalize() {
                let status = plugin.normalize(state, pod, &mut scores);
                if !status.is_success() {
                    return Err(Status::error(format!(
                        "running Normalize on Score plugin {:?}: {}",
                        p.name(),
                        status.message()
                    ))
                    .with_plugin(p.name()));
                }
            }
            let weight = self.weights.get(p.name()).copied().unwrap_or(1);
            for (total, s) in totals.iter_mut().zip(&scores) {
                if !(MIN_NODE_SCORE..=MAX_NODE_SCORE).contains(&s.score) {
                    return Err(Status::error(format!(
                        "plugin {:?} returns an invalid score {}, it should in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing",
                        p.name(),
                        s.score
                    )));
                }
                total.score += s.score * weight;
            }
        }
        Ok(totals)
    }

    pub fn run_reserve(&self, state: &mut CycleState, pod: &Pod, node: &str) -> Status {
        for p in self.plugins_at(Point::Reserve) {
            let Some(plugin) = p.reserve() else {
                continue;
            };
            let status = plugin.reserve(state, pod, node);
            if !status.is_success() {
                let status = rejection_or_error(status, |m| {
                    format!("running Reserve plugin {:?}: {m}", p.name())
                });
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// Unreserve in reverse order, as upstream.
    pub fn run_unreserve(&self, state: &mut CycleState, pod: &Pod, node: &str) {
        for p in self.plugins_at(Point::Reserve).iter().rev() {
            if let Some(plugin) = p.reserve() {
                plugin.unreserve(state, pod, node);
            }
        }
    }

    /// Upstream's `RunPermitPlugins`: Success, the first rejection, or Wait when some plugins
    /// hold the pod and none rejects it; the pod is then parked in the handle's waiting pods
    /// with each holding plugin's timeout, for [`Framework::wait_on_permit`].
    pub fn run_permit(&self, state: &CycleState, pod: &Arc<Pod>, node: &str) -> Status {
        let mut waits: Vec<(&'static str, Duration)> = Vec::new();
        for p in self.plugins_at(Point::Permit) {
            let Some(plugin) = p.permit() else {
                continue;
            };
            let (status, timeout) = plugin.permit(state, pod, node);
            if status.is_success() {
                continue;
            }
            if status.is_wait() {
                waits.push((p.name(), timeout));
                continue;
            }
            let status = rejection_or_error(status, |m| {
                format!("running Permit plugin {:?}: {m}", p.name())
            });
            return status.with_plugin(p.name());
        }
        if waits.is_empty() {
            return Status::success();
        }
        self.handle
            .waiting_pods
            .add(Arc::new(WaitingPod::new(pod.clone(), node, waits)));
        let name = pod.metadata.name.as_deref().unwrap_or("");
        Status::new(
            Code::Wait,
            format!("one or more plugins asked to wait and no plugin rejected pod {name:?}"),
        )
    }

    /// Upstream's `WaitOnPermit`: Success at once unless Permit parked the pod; otherwise the
    /// pod's verdict once there is one, and the pod leaves the waiting pods.
    pub async fn wait_on_permit(&self, pod: &Pod) -> Status {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        let Some(waiting) = self.handle.waiting_pods.get(uid) else {
            return Status::success();
        };
        let _leave = Unpark(&self.handle.waiting_pods, uid);
        tracing::debug!(pod = %waiting_key(pod), plugins = ?waiting.pending_plugins(), "pod waiting on permit");
        let status = waiting.wait().await;
        if status.is_success() || status.is_rejected() {
            if !status.is_success() {
                tracing::debug!(pod = %waiting_key(pod), status = %status.message(), "pod rejected while waiting on permit");
            }
            return status;
        }
        let plugin = status.plugin();
        Status::error(format!("waiting on permit for pod: {}", status.message()))
            .with_plugin(plugin)
    }

    pub async fn run_pre_bind(&self, state: &CycleState, pod: &Pod, node: &str) -> Status {
        for p in self.plugins_at(Point::PreBind) {
            let Some(plugin) = p.pre_bind() else {
                continue;
            };
            let status = plugin.pre_bind(state, pod, node).await;
            if !status.is_success() {
                let status = rejection_or_error(status, |m| {
                    format!("running PreBind plugin {:?}: {m}", p.name())
                });
                return status.with_plugin(p.name());
            }
        }
        Status::success()
    }

    /// The first bind plugin that does not Skip binds.
    pub async fn run_bind(&self, state: &CycleState, pod: &Pod, node: &str) -> Status {
        for p in self.plugins_at(Point::Bind) {
            let Some(plugin) = p.bind() else {
                continue;
            };
            let status = plugin.bind(state, pod, node).await;
            if status.is_skip() {
                continue;
            }
            if !status.is_success() {
                let status = rejection_or_error(status, |m| {
                    format!("running Bind plugin {:?}: {m}", p.name())
                });
                return status.with_plugin(p.name());
            }
            return status;
        }
        Status::skip()
    }

    pub fn run_post_bind(&self, state: &CycleState, pod: &Pod, node: &str) {
        for p in self.plugins_at(Point::PostBind) {
            if let Some(plugin) = p.post_bind() {
                plugin.post_bind(state, pod, node);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feasible_node_counts_follow_upstream() {
        assert_eq!(num_feasible_nodes_to_find(None, 50), 50);
        assert_eq!(num_feasible_nodes_to_find(None, 99), 99);
        // 50% - 1000/125 = 42% of 1000.
        assert_eq!(num_feasible_nodes_to_find(None, 1000), 420);
        // 50% - 5000/125 = 10% of 5000.
        assert_eq!(num_feasible_nodes_to_find(None, 5000), 500);
        // The floor of 5% from 5,625 nodes on.
        assert_eq!(num_feasible_nodes_to_find(None, 10000), 500);
        // Never fewer than 100.
        assert_eq!(num_feasible_nodes_to_find(Some(1), 1000), 100);
        assert_eq!(num_feasible_nodes_to_find(Some(100), 1000), 1000);
        assert_eq!(num_feasible_nodes_to_find(Some(30), 1000), 300);
    }
}
