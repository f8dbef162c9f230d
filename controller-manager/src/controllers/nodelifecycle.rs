//! Node lifecycle (upstream's `node-lifecycle-controller`) and taint-based eviction
//! (`taint-eviction-controller`).
//!
//! Health: every `--node-monitor-period` each node's heartbeat (its Ready condition's
//! `lastHeartbeatTime` and its Lease's `renewTime` in `kube-node-lease`) is compared with what was
//! seen before; the time of the last change is kept on this process's monotonic clock, so clock
//! skew between machines does not matter. A node silent for longer than
//! `--node-monitor-grace-period` (default 40 s) gets Ready, MemoryPressure, DiskPressure and
//! PIDPressure set to `Unknown` (reason `NodeStatusUnknown`, "Kubelet stopped posting node
//! status."; `NodeStatusNeverUpdated` when it never posted), and its pods' Ready conditions set to
//! False, as upstream's `MarkPodsNotReady`.
//!
//! Taints follow the Ready condition: False -> `node.kubernetes.io/not-ready`, Unknown ->
//! `node.kubernetes.io/unreachable`. The NoSchedule taint is set in the pass that sees the
//! condition, never rate limited; a node with no Ready condition yet gets none. True removes both
//! effects. Other taints are kept. Every taint write carries the `resourceVersion` it was computed
//! from and is recomputed from a fresh GET on a conflict, so a stale cache never drops a taint.
//!
//! NoExecute taints are rate limited per zone (upstream's taint-based eviction, its only mode):
//! - a node's zone is its region and zone labels, the beta `failure-domain.beta.kubernetes.io/*`
//!   before `topology.kubernetes.io/*` (upstream's `GetZoneKey`, `region:\0:zone`);
//! - a node whose Ready status was False or Unknown at the start of a pass joins its zone's
//!   `RateLimitedTimedQueue`; every 100 ms each queue lets nodes through a token bucket with
//!   burst 1 and they get the NoExecute taint (one node per `1 / rate` seconds). A node that
//!   already carries the other kind of NoExecute condition taint has it swapped at once;
//! - after each pass each zone's state is computed from its nodes' Ready conditions (nodes
//!   labelled `node.kubernetes.io/exclude-disruption` left out): FullDisruption when none is
//!   Ready, PartialDisruption when more than 2 and at least `--unhealthy-zone-threshold` (0.55)
//!   of them are not, else Normal. A Normal or FullDisruption zone taints at
//!   `--node-eviction-rate` (0.1/s); a PartialDisruption zone at `--secondary-node-eviction-rate`
//!   (0.01/s) when it has more than `--large-cluster-size-threshold` (50) nodes, else not at all;
//! - when every zone is in FullDisruption the fault is taken to be the control plane's ("Entering
//!   master disruption mode"): the NoExecute condition taints are removed from every node and no
//!   queue lets anything through. When a node is Ready again the mode ends: every node's grace
//!   period starts over and each zone's rate is set for its state.
//!
//! Pods then go by their tolerations: a pod on a node with NoExecute taints is deleted at once
//! when it does not tolerate one of them, after the smallest `tolerationSeconds` of its matching
//! tolerations (counted from the taint's `timeAdded`) when it tolerates them for a while, and
//! never when it tolerates them forever (event `TaintManagerEviction`, as upstream).
//!
//! Metrics, as upstream: `node_collector_zone_health`, `node_collector_zone_size`,
//! `node_collector_unhealthy_nodes_in_zone`, `node_collector_evictions_total` (by zone key) and
//! the `node_collector_update_{node,all_nodes}_health_duration_seconds` histograms.
//!
//! Simplifications, none visible on the wire but for timing: the monitor pass and the tainting
//! pass share one task (upstream: two goroutines), so a pass's queue changes and the zone states
//! it computes land together; each tainting pass tries each queued node at most once; a zone's
//! queue is kept when the zone drops out of the states and comes back (upstream replaces it),
//! and deleted nodes are dropped from the queues (upstream keeps them);
//! nodes that never reported get `--node-monitor-grace-period` too (upstream's separate
//! `--node-startup-grace-period` is not there), and only the Ready condition's taints are managed
//! (not the pressure, network or unschedulable ones).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::informer::store::{pod_node_name_indexer, NODE_NAME_INDEX};
use client::informer::{Event, Scope};
use client::{Api, Informer};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use tokio::time::{Instant, MissedTickBehavior};
use workqueue::Queue;

use crate::framework::{reference, run_workers, stop_queue_on_shutdown, ControllerContext};
use crate::options::Options;

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const UNKNOWN_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
/// Nodes with this label do not count in their zone's state (upstream's
/// `labelNodeDisruptionExclusion`).
const EXCLUDE_DISRUPTION_LABEL: &str = "node.kubernetes.io/exclude-disruption";
const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
const REGION_LABEL: &str = "topology.kubernetes.io/region";
const BETA_ZONE_LABEL: &str = "failure-domain.beta.kubernetes.io/zone";
const BETA_REGION_LABEL: &str = "failure-domain.beta.kubernetes.io/region";
/// How often the NoExecute queues are worked (upstream's `NodeEvictionPeriod`).
const NODE_EVICTION_PERIOD: Duration = Duration::from_millis(100);
/// When a queued node has no Ready condition to go by, it is tried again after this (upstream).
const NO_CONDITION_RETRY: Duration = Duration::from_millis(50);
/// Attempts at a taint write that keeps meeting conflicts (upstream's `NodeStatusUpdateRetry`).
const TAINT_UPDATE_ATTEMPTS: usize = 5;
/// A rate so small that its period would overflow an `Instant` waits this long instead.
const LONGEST_PERIOD: Duration = Duration::from_secs(1_000_000_000);

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

fn is_condition_taint(taint: &Taint) -> bool {
    taint.key == NOT_READY_TAINT || taint.key == UNREACHABLE_TAINT
}

fn has_taint(taints: &[Taint], key: &str, effect: &str) -> bool {
    taints.iter().any(|t| t.key == key && t.effect == effect)
}

/// The condition taint key a Ready status calls for: none for True or a missing condition.
fn condition_taint_key(ready: Option<&str>) -> Option<&'static str> {
    match ready? {
        "False" => Some(NOT_READY_TAINT),
        "Unknown" => Some(UNREACHABLE_TAINT),
        _ => None,
    }
}

/// `current` with the NoSchedule condition taint brought in line with the Ready status
/// (upstream's `doNoScheduleTaintingPass`, for the Ready condition).
fn with_no_schedule(current: &[Taint], ready: Option<&str>) -> Vec<Taint> {
    let wanted = condition_taint_key(ready);
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| {
            t.effect != "NoSchedule" || !is_condition_taint(t) || Some(t.key.as_str()) == wanted
        })
        .cloned()
        .collect();
    if let Some(key) = wanted.filter(|k| !has_taint(&next, k, "NoSchedule")) {
        next.push(Taint {
            key: key.to_string(),
            effect: "NoSchedule".into(),
            time_added: None,
            value: None,
        });
    }
    next
}

/// `current` with `key`'s NoExecute taint (added now) in place of the other condition's
/// (upstream's `SwapNodeControllerTaint`).
fn with_no_execute(current: &[Taint], key: &str, now: Timestamp) -> Vec<Taint> {
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| t.effect != "NoExecute" || !is_condition_taint(t) || t.key == key)
        .cloned()
        .collect();
    if !has_taint(&next, key, "NoExecute") {
        next.push(Taint {
            key: key.to_string(),
            effect: "NoExecute".into(),
            time_added: Some(Time(now)),
            value: None,
        });
    }
    next
}

/// `current` without the NoExecute condition taints (upstream's `markNodeAsReachable`).
fn without_no_execute(current: &[Taint]) -> Vec<Taint> {
    current
        .iter()
        .filter(|t| t.effect != "NoExecute" || !is_condition_taint(t))
        .cloned()
        .collect()
}

fn changed(current: &[Taint], next: Vec<Taint>) -> Option<Vec<Taint>> {
    (next.as_slice() != current).then_some(next)
}

/// What a monitor pass does about a node's NoExecute condition taint, by the Ready status it
/// saw at the start of the pass (upstream's `processTaintBaseEviction`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoExecuteStep {
    /// The node carries the other condition's NoExecute taint: swap this one in at once.
    Swap(&'static str),
    /// Put the node in its zone's rate-limited queue. `fresh` when it lacks the taint, so an
    /// earlier entry (already worked, or from before master disruption) is dropped first.
    Queue {
        fresh: bool,
    },
    /// Ready: drop the NoExecute condition taints and the queue entry.
    Reachable,
    Nothing,
}

/// `observed` is the Ready status at the start of the pass; `None` (never reported) counts as
/// Unknown, as upstream's stand-in condition does.
pub(crate) fn no_execute_step(taints: &[Taint], observed: Option<&str>) -> NoExecuteStep {
    let (key, other) = match observed.unwrap_or("Unknown") {
        "True" => return NoExecuteStep::Reachable,
        "False" => (NOT_READY_TAINT, UNREACHABLE_TAINT),
        "Unknown" => (UNREACHABLE_TAINT, NOT_READY_TAINT),
        _ => return NoExecuteStep::Nothing,
    };
    if has_taint(taints, other, "NoExecute") {
        NoExecuteStep::Swap(key)
    } else {
        NoExecuteStep::Queue {
            fresh: !has_taint(taints, key, "NoExecute"),
        }
    }
}

/// The taints a monitor pass writes: the NoSchedule taint for the Ready status `ready` (as it
/// is after the pass's own update), and the immediate part of `step`. `None` when nothing
/// changes.
pub(crate) fn monitor_taints(
    current: &[Taint],
    ready: Option<&str>,
    step: NoExecuteStep,
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let next = with_no_schedule(current, ready);
    let next = match step {
        NoExecuteStep::Swap(key) => with_no_execute(&next, key, now),
        NoExecuteStep::Reachable => without_no_execute(&next),
        NoExecuteStep::Queue { .. } | NoExecuteStep::Nothing => next,
    };
    changed(current, next)
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            // An empty key with Equal matches nothing (validation forbids it anyway).
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod must go from a node with `taints`: `Some(ZERO)` now, `Some(d)` after `d` more,
/// `None` never.
pub(crate) fn eviction_delay(pod: &Pod, taints: &[Taint], now: Timestamp) -> Option<Duration> {
    let tolerations: Vec<Toleration> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut delay: Option<Duration> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        // The shortest bounded toleration decides; all unbounded means this taint is fine.
        let Some(seconds) = matching.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let elapsed = now.as_second().saturating_sub(added.as_second()).max(0) as u64;
        let left = Duration::from_secs(
            u64::try_from(seconds.max(0))
                .unwrap_or(0)
                .saturating_sub(elapsed),
        );
        delay = Some(delay.map_or(left, |d| d.min(left)));
    }
    delay
}

/// Upstream's `GetZoneKey`: `region:\0:zone` from the beta labels, else the GA ones; empty when
/// the node has neither.
pub(crate) fn zone_key(node: &Node) -> String {
    let Some(labels) = node.metadata.labels.as_ref() else {
        return String::new();
    };
    let label = |beta: &str, ga: &str| {
        labels
            .get(beta)
            .or_else(|| labels.get(ga))
            .cloned()
            .unwrap_or_default()
    };
    let zone = label(BETA_ZONE_LABEL, ZONE_LABEL);
    let region = label(BETA_REGION_LABEL, REGION_LABEL);
    if zone.is_empty() && region.is_empty() {
        return String::new();
    }
    format!("{region}:\0:{zone}")
}

/// A zone's health as of the last monitor pass (upstream's `ZoneState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ZoneState {
    Initial,
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// Upstream's `ComputeZoneState`: the number of not-Ready nodes (a missing condition counts)
/// and the zone's state.
pub(crate) fn compute_zone_state(
    ready: &[Option<String>],
    unhealthy_threshold: f32,
) -> (usize, ZoneState) {
    let ready_nodes = ready
        .iter()
        .filter(|s| s.as_deref() == Some("True"))
        .count();
    let not_ready = ready.len() - ready_nodes;
    let state = if ready_nodes == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f32 / ready.len() as f32 >= unhealthy_threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    };
    (not_ready, state)
}

/// A token bucket with burst 1 (upstream's `EvictionRateLimiterBurst`), kept as the instant the
/// next token is free: a pure function of the instants it is asked at. A rate of 0 (or less)
/// never lets anything through.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    qps: f32,
    /// `None`: the bucket is full.
    next_free: Option<Instant>,
}

impl TokenBucket {
    pub(crate) fn new(qps: f32) -> TokenBucket {
        TokenBucket {
            qps,
            next_free: None,
        }
    }

    fn period(&self) -> Duration {
        Duration::try_from_secs_f64(1.0 / f64::from(self.qps))
            .map_or(LONGEST_PERIOD, |p| p.min(LONGEST_PERIOD))
    }

    /// Takes the token if it is free at `now`.
    pub(crate) fn try_accept(&mut self, now: Instant) -> bool {
        if self.qps.is_nan() || self.qps <= 0.0 || self.next_free.is_some_and(|t| now < t) {
            return false;
        }
        self.next_free = Some(now + self.period());
        true
    }
}

/// A queue of node names, each let out once through a rate limiter (upstream's
/// `RateLimitedTimedQueue`). A name stays known after it is worked, so it is not queued again
/// until [`RateLimitedTimedQueue::remove`] (the node is Ready again, or lost its taint).
pub(crate) struct RateLimitedTimedQueue {
    /// Waiting names by the instant they may be worked; ties keep their arrival order.
    queue: Vec<(Instant, String)>,
    known: HashSet<String>,
    limiter: TokenBucket,
}

impl RateLimitedTimedQueue {
    pub(crate) fn new(qps: f32) -> RateLimitedTimedQueue {
        RateLimitedTimedQueue {
            queue: Vec::new(),
            known: HashSet::new(),
            limiter: TokenBucket::new(qps),
        }
    }

    fn insert(&mut self, at: Instant, value: String) {
        let index = self.queue.partition_point(|(t, _)| *t <= at);
        self.queue.insert(index, (at, value));
    }

    /// Queues `value` to be worked from `now` on, unless it is known already.
    pub(crate) fn add(&mut self, value: &str, now: Instant) -> bool {
        if !self.known.insert(value.to_string()) {
            return false;
        }
        self.insert(now, value.to_string());
        true
    }

    /// Forgets `value`, worked or not, so that it may be added again.
    pub(crate) fn remove(&mut self, value: &str) -> bool {
        if !self.known.remove(value) {
            return false;
        }
        self.queue.retain(|(_, v)| v != value);
        true
    }

    /// Forgets the values `keep` rejects, worked or not.
    pub(crate) fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.known.retain(|v| keep(v));
        self.queue.retain(|(_, v)| keep(v));
    }

    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The head, when a token is free and the head is due at `now`. As upstream's `Try`, the
    /// token is taken before the head's time is looked at.
    pub(crate) fn next_due(&mut self, now: Instant) -> Option<String> {
        let (due, value) = self.queue.first().cloned()?;
        (self.limiter.try_accept(now) && now >= due).then_some(value)
    }

    /// Records how working `value` (taken from [`Self::next_due`] at `now`) went: `None` done,
    /// it leaves the queue but stays known; `Some(wait)` it is tried again after `wait`.
    pub(crate) fn finish(&mut self, value: &str, now: Instant, retry: Option<Duration>) {
        let Some(index) = self.queue.iter().position(|(_, v)| v == value) else {
            return;
        };
        let (_, value) = self.queue.remove(index);
        if let Some(wait) = retry {
            self.insert(now + wait + Duration::from_nanos(1), value);
        }
    }

    /// Upstream's `SwapLimiter`: a new bucket for a new rate; when the old one had no token
    /// free, the new one starts empty too (right for burst 1).
    pub(crate) fn swap_limiter(&mut self, qps: f32, now: Instant) {
        if self.limiter.qps.to_bits() == qps.to_bits() {
            return;
        }
        let mut limiter = TokenBucket::new(qps);
        if !self.limiter.try_accept(now) {
            limiter.try_accept(now);
        }
        self.limiter = limiter;
    }
}

/// The eviction flags (upstream's `NodeLifecycleControllerConfiguration`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EvictionRates {
    pub(crate) eviction_qps: f32,
    pub(crate) secondary_eviction_qps: f32,
    pub(crate) large_cluster_threshold: i32,
    pub(crate) unhealthy_zone_threshold: f32,
}

impl EvictionRates {
    pub(crate) fn from_options(options: &Options) -> EvictionRates {
        EvictionRates {
            eviction_qps: options.node_eviction_rate,
            secondary_eviction_qps: options.secondary_node_eviction_rate,
            large_cluster_threshold: options.large_cluster_size_threshold,
            unhealthy_zone_threshold: options.unhealthy_zone_threshold,
        }
    }

    /// The NoExecute rate for a zone of `size` nodes in `state` (upstream's `setLimiterInZone`
    /// with `HealthyQPSFunc` and `ReducedQPSFunc`); `None` leaves it as it is.
    pub(crate) fn qps(&self, state: ZoneState, size: usize) -> Option<f32> {
        match state {
            ZoneState::Normal | ZoneState::FullDisruption => Some(self.eviction_qps),
            ZoneState::PartialDisruption => {
                let large = i64::try_from(size).unwrap_or(i64::MAX)
                    > i64::from(self.large_cluster_threshold);
                Some(if large {
                    self.secondary_eviction_qps
                } else {
                    0.0
                })
            }
            ZoneState::Initial => None,
        }
    }
}

/// Upstream's `node_collector_*` metrics.
#[derive(Clone)]
pub(crate) struct NodeCollectorMetrics {
    zone_health: metrics::GaugeVec,
    zone_size: metrics::GaugeVec,
    unhealthy_nodes: metrics::GaugeVec,
    evictions_total: metrics::CounterVec,
    update_node_health: metrics::Histogram,
    update_all_nodes_health: metrics::Histogram,
}

impl NodeCollectorMetrics {
    pub(crate) fn register(registry: &metrics::Registry) -> NodeCollectorMetrics {
        let zone = &["zone"];
        NodeCollectorMetrics {
            zone_health: registry.gauge_vec(
                "node_collector_zone_health",
                "Gauge measuring percentage of healthy nodes per zone.",
                zone,
            ),
            zone_size: registry.gauge_vec(
                "node_collector_zone_size",
                "Gauge measuring number of registered Nodes per zones.",
                zone,
            ),
            unhealthy_nodes: registry.gauge_vec(
                "node_collector_unhealthy_nodes_in_zone",
                "Gauge measuring number of not Ready Nodes per zones.",
                zone,
            ),
            evictions_total: registry.counter_vec(
                "node_collector_evictions_total",
                "Number of Node evictions that happened since current instance of NodeController started.",
                zone,
            ),
            update_node_health: registry
                .histogram_vec(
                    "node_collector_update_node_health_duration_seconds",
                    "Duration in seconds for NodeController to update the health of a single node.",
                    &[],
                    &metrics::exponential_buckets(0.001, 4.0, 8),
                )
                .with(&[]),
            update_all_nodes_health: registry
                .histogram_vec(
                    "node_collector_update_all_nodes_health_duration_seconds",
                    "Duration in seconds for NodeController to update the health of all nodes.",
                    &[],
                    &metrics::exponential_buckets(0.01, 4.0, 8),
                )
                .with(&[]),
        }
    }
}

/// How a monitor pass changed the controller's master disruption mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Disruption {
    Unchanged,
    /// Every zone is fully disrupted: the caller removes every node's NoExecute condition taints.
    Entered,
    /// Some node is Ready again: the caller starts every node's grace period over.
    Exited,
}

/// The zones: their states and their NoExecute queues (upstream's `zoneStates` and
/// `zoneNoExecuteTainter`).
pub(crate) struct Zones {
    rates: EvictionRates,
    states: BTreeMap<String, ZoneState>,
    tainters: BTreeMap<String, RateLimitedTimedQueue>,
    metrics: NodeCollectorMetrics,
}

impl Zones {
    pub(crate) fn new(rates: EvictionRates, metrics: NodeCollectorMetrics) -> Zones {
        Zones {
            rates,
            states: BTreeMap::new(),
            tainters: BTreeMap::new(),
            metrics,
        }
    }

    /// Starts a zone seen for the first time (upstream's `addPodEvictorForNewZone`).
    pub(crate) fn ensure(&mut self, zone: &str) {
        if self.states.contains_key(zone) {
            return;
        }
        self.states.insert(zone.to_string(), ZoneState::Initial);
        let qps = self.rates.eviction_qps;
        self.tainters
            .entry(zone.to_string())
            .or_insert_with(|| RateLimitedTimedQueue::new(qps));
        tracing::info!(zone = ?zone, "Initializing eviction metric for zone");
        // The series starts at 0, as upstream's `Add(0)`.
        self.metrics.evictions_total.with(&[zone]);
    }

    /// Queues `node` for its NoExecute taint (upstream's `markNodeForTainting`).
    pub(crate) fn mark_for_tainting(
        &mut self,
        zone: &str,
        node: &str,
        fresh: bool,
        now: Instant,
    ) -> bool {
        self.ensure(zone);
        let Some(queue) = self.tainters.get_mut(zone) else {
            return false;
        };
        if fresh {
            queue.remove(node);
        }
        queue.add(node, now)
    }

    /// Forgets, in every queue, the nodes `keep` says are gone.
    pub(crate) fn retain_nodes(&mut self, keep: impl Fn(&str) -> bool) {
        for queue in self.tainters.values_mut() {
            queue.retain(&keep);
        }
    }

    /// Takes `node` out of its zone's queue.
    pub(crate) fn forget(&mut self, zone: &str, node: &str) -> bool {
        self.tainters.get_mut(zone).is_some_and(|q| q.remove(node))
    }

    #[cfg(test)]
    pub(crate) fn state(&self, zone: &str) -> Option<ZoneState> {
        self.states.get(zone).copied()
    }

    /// Upstream's `handleDisruption`: zone states from this pass's Ready statuses (by zone),
    /// the metrics, the queues' rates, and master disruption mode.
    pub(crate) fn handle_disruption(
        &mut self,
        conditions: &BTreeMap<String, Vec<Option<String>>>,
        now: Instant,
    ) -> Disruption {
        let mut new_states = BTreeMap::new();
        let mut all_are_fully_disrupted = true;
        for (zone, ready) in conditions {
            let (unhealthy, state) = compute_zone_state(ready, self.rates.unhealthy_zone_threshold);
            let size = ready.len();
            let labels = [zone.as_str()];
            self.metrics.zone_size.with(&labels).set(size as f64);
            self.metrics
                .zone_health
                .with(&labels)
                .set(100.0 * (size - unhealthy) as f64 / size.max(1) as f64);
            self.metrics
                .unhealthy_nodes
                .with(&labels)
                .set(unhealthy as f64);
            all_are_fully_disrupted &= state == ZoneState::FullDisruption;
            new_states.insert(zone.clone(), state);
            if !self.states.contains_key(zone) {
                tracing::warn!(zone = ?zone, "Setting initial state for unseen zone");
                self.ensure(zone);
            }
        }
        let gone: Vec<String> = self
            .states
            .keys()
            .filter(|z| !conditions.contains_key(*z))
            .cloned()
            .collect();
        for zone in gone {
            let labels = [zone.as_str()];
            self.metrics.zone_size.with(&labels).set(0.0);
            self.metrics.zone_health.with(&labels).set(100.0);
            self.metrics.unhealthy_nodes.with(&labels).set(0.0);
            self.states.remove(&zone);
        }
        let all_were_fully_disrupted = self
            .states
            .values()
            .all(|s| *s == ZoneState::FullDisruption);
        if all_are_fully_disrupted && all_were_fully_disrupted {
            return Disruption::Unchanged;
        }
        if all_are_fully_disrupted {
            tracing::info!(
                "Controller detected that all Nodes are not-Ready. Entering master disruption mode"
            );
            for (zone, state) in self.states.iter_mut() {
                if let Some(queue) = self.tainters.get_mut(zone) {
                    queue.swap_limiter(0.0, now);
                }
                *state = ZoneState::FullDisruption;
            }
            return Disruption::Entered;
        }
        let exiting = all_were_fully_disrupted;
        if exiting {
            tracing::info!(
                "Controller detected that some Nodes are Ready. Exiting master disruption mode"
            );
        }
        for (zone, state) in self.states.iter_mut() {
            let new = new_states.get(zone).copied().unwrap_or(ZoneState::Normal);
            if !exiting && *state == new {
                continue;
            }
            if !exiting {
                tracing::info!(zone = ?zone, new_state = ?new, "Controller detected that zone is now in new state");
            }
            let size = conditions.get(zone).map_or(0, Vec::len);
            if let (Some(qps), Some(queue)) =
                (self.rates.qps(new, size), self.tainters.get_mut(zone))
            {
                queue.swap_limiter(qps, now);
            }
            *state = new;
        }
        if exiting {
            Disruption::Exited
        } else {
            Disruption::Unchanged
        }
    }

    /// The zones with a queue, in a stable order.
    fn queued_zones(&self) -> Vec<String> {
        self.tainters
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(z, _)| z.clone())
            .collect()
    }

    fn queue(&mut self, zone: &str) -> Option<&mut RateLimitedTimedQueue> {
        self.tainters.get_mut(zone)
    }
}

/// What the monitor last saw of a node's heartbeat, and when (local clock).
struct Probe {
    marker: String,
    at: Instant,
}

/// How working a queued node went.
enum Tainting {
    Tainted,
    /// Gone, or Ready again: nothing to do.
    Skipped,
    Retry(Duration),
}

/// The controller's state across passes. The monitor and tainting passes run on one task, one
/// at a time, so they need no locks.
struct Lifecycle {
    client: client::Client,
    nodes: Informer<Node>,
    leases: Informer<Lease>,
    pods: Informer<Pod>,
    grace: Duration,
    probes: HashMap<String, Probe>,
    zones: Zones,
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let nodes = ctx.factory.informer::<Node>();
    let leases = ctx
        .factory
        .informer_for::<Lease>(Scope::namespace(LEASE_NAMESPACE));
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
    let period = ctx
        .options
        .node_monitor_period
        .max(Duration::from_millis(100));
    let mut controller = Lifecycle {
        client: ctx.client.clone(),
        nodes,
        leases,
        pods,
        grace: ctx.options.node_monitor_grace_period,
        probes: HashMap::new(),
        zones: Zones::new(
            EvictionRates::from_options(&ctx.options),
            NodeCollectorMetrics::register(metrics::global()),
        ),
    };
    let mut stop = ctx.stop.clone();
    tokio::spawn(async move {
        let mut monitor = tokio::time::interval(period);
        let mut tainting = tokio::time::interval(NODE_EVICTION_PERIOD);
        monitor.set_missed_tick_behavior(MissedTickBehavior::Delay);
        tainting.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let monitor_pass = tokio::select! {
                _ = monitor.tick() => true,
                _ = tainting.tick() => false,
                _ = stop.wait_for(|s| *s) => return,
            };
            if !controller.nodes.has_synced() || !controller.leases.has_synced() {
                continue;
            }
            if monitor_pass {
                controller.monitor_node_health().await;
            } else {
                controller.no_execute_tainting_pass().await;
            }
        }
    });
    Ok(())
}

impl Lifecycle {
    /// Upstream's `monitorNodeHealth`: each node's health, its NoSchedule taint and its place in
    /// the NoExecute queues, then the zones' states.
    async fn monitor_node_health(&mut self) {
        let started = std::time::Instant::now();
        let api: Api<Node> = self.client.api(None);
        let listed = self.nodes.store().list();
        let names: HashSet<&str> = listed
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        self.probes.retain(|name, _| names.contains(name.as_str()));
        self.zones.retain_nodes(|name| names.contains(name));
        // One instant for the pass: nodes first seen together go silent together.
        let now = Instant::now();
        let mut zone_conditions: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
        for node in &listed {
            let node_started = std::time::Instant::now();
            self.monitor_node(&api, node, now, &mut zone_conditions)
                .await;
            self.zones
                .metrics
                .update_node_health
                .observe(node_started.elapsed().as_secs_f64());
        }
        match self
            .zones
            .handle_disruption(&zone_conditions, Instant::now())
        {
            Disruption::Entered => {
                for node in &listed {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    let node = self
                        .nodes
                        .store()
                        .get(&name)
                        .unwrap_or_else(|| node.clone());
                    if let Err(err) =
                        update_taints(&api, &node, |t| changed(t, without_no_execute(t))).await
                    {
                        tracing::warn!(node = %name, error = %err, "Failed to remove taints from Node");
                    }
                    self.zones.forget(&zone_key(&node), &name);
                }
            }
            Disruption::Exited => {
                let now = Instant::now();
                for probe in self.probes.values_mut() {
                    probe.at = now;
                }
            }
            Disruption::Unchanged => {}
        }
        self.zones
            .metrics
            .update_all_nodes_health
            .observe(started.elapsed().as_secs_f64());
    }

    async fn monitor_node(
        &mut self,
        api: &Api<Node>,
        node: &Node,
        now: Instant,
        zone_conditions: &mut BTreeMap<String, Vec<Option<String>>>,
    ) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = ready_condition(node);
        let observed = ready.map(|c| c.status.clone());
        let lease_renew = self
            .leases
            .store()
            .get_namespaced(Some(LEASE_NAMESPACE), &name)
            .and_then(|l| {
                l.spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string())
            });
        let marker = format!(
            "{:?}|{:?}|{:?}",
            ready
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0.to_string()),
            observed,
            lease_renew
        );
        let probe = self.probes.entry(name.clone()).or_insert_with(|| Probe {
            marker: marker.clone(),
            at: now,
        });
        if probe.marker != marker {
            probe.marker = marker;
            probe.at = now;
        }
        let silent_for = now.saturating_duration_since(probe.at);
        let mut current = observed.clone();
        let mut latest: Option<Node> = None;
        if silent_for > self.grace && current.as_deref() != Some("Unknown") {
            let updated = mark_unknown(node, Timestamp::now());
            match api.replace_status(&name, &updated).await {
                Ok(written) => {
                    tracing::info!(node = %name, silent = ?silent_for, "node stopped posting status: Ready is Unknown");
                    current = Some("Unknown".into());
                    latest = Some(written);
                    mark_pods_not_ready(&self.client, &self.pods, &name).await;
                }
                Err(err) => {
                    // As upstream: skipped this pass, and not counted in its zone.
                    tracing::warn!(node = %name, error = %err, "could not mark the node unknown");
                    return;
                }
            }
        }
        let node = latest.as_ref().unwrap_or(node);
        let zone = zone_key(node);
        self.zones.ensure(&zone);
        let excluded = node
            .metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(EXCLUDE_DISRUPTION_LABEL));
        if !excluded {
            zone_conditions
                .entry(zone.clone())
                .or_default()
                .push(current.clone());
        }
        // Without a Ready condition even now (silent for less than the grace period), there is
        // nothing to go by yet.
        let step = if current.is_some() {
            no_execute_step(node_taints(node), observed.as_deref())
        } else {
            NoExecuteStep::Nothing
        };
        match step {
            NoExecuteStep::Queue { fresh } => {
                if self.zones.mark_for_tainting(&zone, &name, fresh, now) {
                    tracing::debug!(node = %name, ready = ?observed, "Node is not Ready. Adding it to the Taint queue");
                }
            }
            NoExecuteStep::Reachable => {
                self.zones.forget(&zone, &name);
            }
            NoExecuteStep::Swap(_) | NoExecuteStep::Nothing => {}
        }
        let ready_now = current.as_deref();
        if let Err(err) = update_taints(api, node, |t| {
            monitor_taints(t, ready_now, step, Timestamp::now())
        })
        .await
        {
            tracing::warn!(node = %name, error = %err, "could not update the node's taints");
        }
    }

    /// Upstream's `doNoExecuteTaintingPass`: lets nodes out of each zone's queue at the zone's
    /// rate and gives them their NoExecute taint.
    async fn no_execute_tainting_pass(&mut self) {
        let api: Api<Node> = self.client.api(None);
        for zone in self.zones.queued_zones() {
            let attempts = self.zones.queue(&zone).map_or(0, |q| q.len());
            for _ in 0..attempts {
                let now = Instant::now();
                let Some(name) = self.zones.queue(&zone).and_then(|q| q.next_due(now)) else {
                    break;
                };
                let retry = match self.taint_queued(&api, &name).await {
                    Tainting::Tainted => {
                        self.zones.metrics.evictions_total.with(&[&zone]).inc();
                        None
                    }
                    Tainting::Skipped => None,
                    Tainting::Retry(wait) => Some(wait),
                };
                if let Some(queue) = self.zones.queue(&zone) {
                    queue.finish(&name, now, retry);
                }
            }
        }
    }

    async fn taint_queued(&self, api: &Api<Node>, name: &str) -> Tainting {
        let Some(node) = self.nodes.store().get(name) else {
            tracing::info!(node = %name, "Node no longer present in nodeLister");
            return Tainting::Skipped;
        };
        let Some(ready) = ready_condition(&node) else {
            tracing::info!(node = %name, "Failed to get NodeCondition from the node status");
            return Tainting::Retry(NO_CONDITION_RETRY);
        };
        let Some(key) = condition_taint_key(Some(ready.status.as_str())) else {
            tracing::debug!(node = %name, "Node was in a taint queue, but it's ready now. Ignoring taint request");
            return Tainting::Skipped;
        };
        match update_taints(api, &node, |t| {
            changed(t, with_no_execute(t, key, Timestamp::now()))
        })
        .await
        {
            Ok(written) => {
                if written {
                    tracing::info!(node = %name, taint = key, "tainted the node NoExecute");
                }
                Tainting::Tainted
            }
            Err(err) => {
                tracing::warn!(node = %name, error = %err, "could not add the NoExecute taint");
                Tainting::Retry(Duration::ZERO)
            }
        }
    }
}

/// `node` with Ready and the pressure conditions Unknown, as upstream marks a silent node.
fn mark_unknown(node: &Node, now: Timestamp) -> Node {
    let mut updated = node.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let never = !conditions.iter().any(|c| c.type_ == "Ready");
    let (reason, message) = if never {
        (
            "NodeStatusNeverUpdated",
            "Kubelet never posted node status.",
        )
    } else {
        ("NodeStatusUnknown", "Kubelet stopped posting node status.")
    };
    for kind in UNKNOWN_CONDITIONS {
        match conditions.iter_mut().find(|c| c.type_ == kind) {
            Some(c) => {
                c.status = "Unknown".into();
                c.reason = Some(reason.into());
                c.message = Some(message.into());
                c.last_transition_time = Some(Time(now));
            }
            None if kind == "Ready" || !never => conditions.push(NodeCondition {
                type_: kind.into(),
                status: "Unknown".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(Time(now)),
                last_heartbeat_time: None,
            }),
            None => {}
        }
    }
    updated
}

/// Writes the taints `change` computes from the node's taints, `None` meaning no change. The
/// patch carries the `resourceVersion` they were computed from; on a conflict the node is read
/// again and `change` asked again (upstream's `SwapNodeControllerTaint` retries the same way).
/// Returns whether anything was written.
async fn update_taints(
    api: &Api<Node>,
    node: &Node,
    change: impl Fn(&[Taint]) -> Option<Vec<Taint>>,
) -> client::Result<bool> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let mut fresh: Option<Node> = None;
    for attempt in 1..=TAINT_UPDATE_ATTEMPTS {
        let current = fresh.as_ref().unwrap_or(node);
        let Some(next) = change(node_taints(current)) else {
            return Ok(false);
        };
        let patch = json!({
            "metadata": {"resourceVersion": current.metadata.resource_version},
            "spec": {"taints": next},
        });
        match api
            .patch(
                &name,
                &client::client::PatchParams::default(),
                &client::client::Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => return Ok(true),
            Err(err) if err.is_conflict() && attempt < TAINT_UPDATE_ATTEMPTS => {
                fresh = Some(api.get(&name).await?);
            }
            Err(err) => return Err(err),
        }
    }
    Ok(false)
}

async fn mark_pods_not_ready(client: &client::Client, pods: &Informer<Pod>, node: &str) {
    for pod in pods.store().by_index(NODE_NAME_INDEX, node) {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut updated = (*pod).clone();
        if let Some(conditions) = updated.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(Time(Timestamp::now()));
            }
        }
        let api: Api<Pod> = client.api(Some(&ns));
        if let Err(err) = api.replace_status(&name, &updated).await {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %err, "could not mark a pod not ready");
        }
    }
}

pub fn start_taint_eviction(ctx: &ControllerContext) -> anyhow::Result<()> {
    let nodes = ctx.factory.informer::<Node>();
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
    let queue: Queue<String> = Queue::new("taint_eviction");
    stop_queue_on_shutdown(ctx, queue.clone());
    {
        let q = queue.clone();
        pods.add_event_handler(None, move |event| {
            if let Event::Add(p) | Event::Update { new: p, .. } = event {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    q.add(crate::framework::key_of(p.as_ref()));
                }
            }
        });
    }
    {
        let (q, pods) = (queue.clone(), pods.clone());
        nodes.add_event_handler(None, move |event| {
            if let Event::Add(n) | Event::Update { new: n, .. } = event {
                let has_no_execute = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.effect == "NoExecute"));
                if has_no_execute {
                    for pod in pods
                        .store()
                        .by_index(NODE_NAME_INDEX, n.metadata.name.as_deref().unwrap_or(""))
                    {
                        q.add(crate::framework::key_of(pod.as_ref()));
                    }
                }
            }
        });
    }
    let client = ctx.client.clone();
    let recorder = ctx.recorder("taint-eviction-controller");
    let requeue = queue.clone();
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    run_workers("taint-eviction-controller", queue, 8, move |key: String| {
        let (client, nodes, pods, recorder, requeue, pending) = (
            client.clone(),
            nodes.clone(),
            pods.clone(),
            recorder.clone(),
            requeue.clone(),
            pending.clone(),
        );
        async move {
            let Some(pod) = pods.store().get(&key) else {
                return Ok(());
            };
            if pod.metadata.deletion_timestamp.is_some() {
                return Ok(());
            }
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let Some(node) = nodes.store().get(&node_name) else {
                return Ok(());
            };
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            match eviction_delay(&pod, &taints, Timestamp::now()) {
                None => Ok(()),
                Some(delay) if !delay.is_zero() => {
                    // Come back when the toleration runs out (once per deadline).
                    let due = Instant::now() + delay;
                    let fresh = pending
                        .lock()
                        .map(|mut p| p.insert(key.clone(), due).is_none_or(|old| old != due))
                        .unwrap_or(true);
                    if fresh {
                        requeue.add_after(key, delay);
                    }
                    Ok(())
                }
                Some(_) => {
                    if let Ok(mut p) = pending.lock() {
                        p.remove(&key);
                    }
                    let (ns, name) = client::informer::store::split_key(&key);
                    recorder.normal(
                        &reference(pod.as_ref()),
                        "TaintManagerEviction",
                        &format!("Marking for deletion Pod {key}"),
                    );
                    let api: Api<Pod> = client.api(ns);
                    match api.delete(name, &Default::default()).await {
                        Err(err) if !err.is_not_found() => Err(err.into()),
                        _ => Ok(()),
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: added.map(|s| Time(Timestamp::from_second(s).unwrap_or_default())),
            value: None,
        }
    }

    fn toleration(
        key: Option<&str>,
        operator: &str,
        effect: Option<&str>,
        seconds: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: key.map(str::to_string),
            operator: Some(operator.into()),
            effect: effect.map(str::to_string),
            toleration_seconds: seconds,
            value: None,
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    fn keys(taints: &[Taint]) -> Vec<(String, String)> {
        taints
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect()
    }

    fn pair(key: &str, effect: &str) -> (String, String) {
        (key.into(), effect.into())
    }

    fn statuses(list: &[&str]) -> Vec<Option<String>> {
        list.iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect()
    }

    fn zones(rates: EvictionRates) -> (Zones, metrics::Registry) {
        let registry = metrics::Registry::new();
        let metrics = NodeCollectorMetrics::register(&registry);
        (Zones::new(rates, metrics), registry)
    }

    const DEFAULT_RATES: EvictionRates = EvictionRates {
        eviction_qps: 0.1,
        secondary_eviction_qps: 0.01,
        large_cluster_threshold: 50,
        unhealthy_zone_threshold: 0.55,
    };

    fn by_zone(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<Option<String>>> {
        entries
            .iter()
            .map(|(zone, list)| (zone.to_string(), statuses(list)))
            .collect()
    }

    #[test]
    fn no_schedule_taints_follow_the_ready_condition_and_keep_others() {
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let user = taint("dedicated", "NoSchedule", None);
        let current = vec![user.clone()];
        let unknown = monitor_taints(&current, Some("Unknown"), NoExecuteStep::Nothing, now)
            .unwrap_or_default();
        assert_eq!(
            keys(&unknown),
            [
                pair("dedicated", "NoSchedule"),
                pair(UNREACHABLE_TAINT, "NoSchedule")
            ],
            "NoSchedule at once, NoExecute only through the queue"
        );
        assert!(unknown[1].time_added.is_none());
        assert_eq!(
            monitor_taints(&unknown, Some("Unknown"), NoExecuteStep::Nothing, now),
            None,
            "stable"
        );
        let not_ready = monitor_taints(&unknown, Some("False"), NoExecuteStep::Nothing, now)
            .unwrap_or_default();
        assert_eq!(
            keys(&not_ready),
            [
                pair("dedicated", "NoSchedule"),
                pair(NOT_READY_TAINT, "NoSchedule")
            ]
        );
        assert_eq!(
            monitor_taints(&current, None, NoExecuteStep::Nothing, now),
            None,
            "a node that never reported is not tainted before its grace period ends"
        );
        // Ready again: both effects go, other taints stay.
        let mut tainted = not_ready.clone();
        tainted.push(taint(NOT_READY_TAINT, "NoExecute", Some(900)));
        tainted.push(taint("user", "NoExecute", None));
        let healthy = monitor_taints(&tainted, Some("True"), NoExecuteStep::Reachable, now)
            .unwrap_or_default();
        assert_eq!(
            keys(&healthy),
            [pair("dedicated", "NoSchedule"), pair("user", "NoExecute")]
        );
    }

    #[test]
    fn no_execute_steps_follow_upstream_process_taint_base_eviction() {
        let unreachable = [taint(UNREACHABLE_TAINT, "NoExecute", Some(1))];
        let not_ready = [taint(NOT_READY_TAINT, "NoExecute", Some(1))];
        let cases: [(&[Taint], Option<&str>, NoExecuteStep); 8] = [
            (&[], Some("Unknown"), NoExecuteStep::Queue { fresh: true }),
            (&[], None, NoExecuteStep::Queue { fresh: true }),
            (&[], Some("False"), NoExecuteStep::Queue { fresh: true }),
            (
                &unreachable,
                Some("Unknown"),
                NoExecuteStep::Queue { fresh: false },
            ),
            (
                &unreachable,
                Some("False"),
                NoExecuteStep::Swap(NOT_READY_TAINT),
            ),
            (
                &not_ready,
                Some("Unknown"),
                NoExecuteStep::Swap(UNREACHABLE_TAINT),
            ),
            (&not_ready, Some("True"), NoExecuteStep::Reachable),
            (&[], Some("Odd"), NoExecuteStep::Nothing),
        ];
        for (taints, observed, want) in cases {
            assert_eq!(no_execute_step(taints, observed), want, "{observed:?}");
        }
        // A swap happens in the monitor pass itself, with a fresh timeAdded.
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let swapped = monitor_taints(
            &unreachable,
            Some("False"),
            NoExecuteStep::Swap(NOT_READY_TAINT),
            now,
        )
        .unwrap_or_default();
        assert_eq!(
            keys(&swapped),
            [
                pair(NOT_READY_TAINT, "NoSchedule"),
                pair(NOT_READY_TAINT, "NoExecute")
            ]
        );
        assert_eq!(swapped[1].time_added, Some(Time(now)));
    }

    #[test]
    fn zone_key_is_upstreams() {
        let node = |labels: &[(&str, &str)]| Node {
            metadata: ObjectMeta {
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Node::default()
        };
        assert_eq!(zone_key(&Node::default()), "");
        assert_eq!(zone_key(&node(&[("other", "x")])), "");
        assert_eq!(zone_key(&node(&[(ZONE_LABEL, "a")])), ":\0:a");
        assert_eq!(
            zone_key(&node(&[(ZONE_LABEL, "a"), (REGION_LABEL, "r")])),
            "r:\0:a"
        );
        assert_eq!(
            zone_key(&node(&[
                (ZONE_LABEL, "a"),
                (BETA_ZONE_LABEL, "beta"),
                (REGION_LABEL, "r")
            ])),
            "r:\0:beta",
            "the beta label wins"
        );
    }

    #[test]
    fn zone_state_table() {
        let cases: [(&[&str], usize, ZoneState); 10] = [
            (&[], 0, ZoneState::Normal),
            (&["True"], 0, ZoneState::Normal),
            (&["Unknown"], 1, ZoneState::FullDisruption),
            (&[""], 1, ZoneState::FullDisruption),
            (
                &["False", "Unknown", "Unknown"],
                3,
                ZoneState::FullDisruption,
            ),
            (&["False", "Unknown", "True"], 2, ZoneState::Normal),
            (
                &["False", "Unknown", "", "True", "True"],
                3,
                ZoneState::PartialDisruption,
            ),
            (
                &["False", "False", "False", "True", "True", "True"],
                3,
                ZoneState::Normal,
            ),
            (
                &["False", "False", "True", "True", "True", "True", "True"],
                2,
                ZoneState::Normal,
            ),
            (&["True", "True"], 0, ZoneState::Normal),
        ];
        for (list, unhealthy, state) in cases {
            assert_eq!(
                compute_zone_state(&statuses(list), 0.55),
                (unhealthy, state),
                "{list:?}"
            );
        }
        // 11 of 20 is exactly the threshold, which counts.
        let mut list = vec!["False"; 11];
        list.extend(vec!["True"; 9]);
        assert_eq!(
            compute_zone_state(&statuses(&list), 0.55),
            (11, ZoneState::PartialDisruption)
        );
        list[0] = "True";
        assert_eq!(
            compute_zone_state(&statuses(&list), 0.55),
            (10, ZoneState::Normal)
        );
    }

    #[test]
    fn rates_by_zone_state() {
        let r = DEFAULT_RATES;
        assert_eq!(r.qps(ZoneState::Normal, 3), Some(0.1));
        assert_eq!(r.qps(ZoneState::FullDisruption, 3), Some(0.1));
        assert_eq!(r.qps(ZoneState::PartialDisruption, 50), Some(0.0));
        assert_eq!(r.qps(ZoneState::PartialDisruption, 51), Some(0.01));
        assert_eq!(r.qps(ZoneState::Initial, 3), None);
    }

    #[test]
    fn token_bucket_has_burst_one() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(0.1);
        assert!(bucket.try_accept(t0), "starts full");
        assert!(!bucket.try_accept(t0));
        assert!(!bucket.try_accept(t0 + Duration::from_millis(9_900)));
        assert!(bucket.try_accept(t0 + Duration::from_secs(10)));
        // Idle time does not bank more than one token.
        let later = t0 + Duration::from_secs(100);
        assert!(bucket.try_accept(later));
        assert!(!bucket.try_accept(later + Duration::from_secs(5)));
        for qps in [0.0, -1.0, f32::NAN] {
            assert!(!TokenBucket::new(qps).try_accept(t0), "{qps} never");
        }
        let mut tiny = TokenBucket::new(f32::MIN_POSITIVE);
        assert!(tiny.try_accept(t0));
        assert!(!tiny.try_accept(t0 + Duration::from_secs(3600)));
    }

    #[test]
    fn the_queue_lets_each_node_out_once_until_removed() {
        let t0 = Instant::now();
        let mut queue = RateLimitedTimedQueue::new(1000.0);
        assert!(queue.add("a", t0));
        assert!(queue.add("b", t0));
        assert!(!queue.add("a", t0), "no duplicates");
        assert_eq!(queue.next_due(t0).as_deref(), Some("a"), "arrival order");
        queue.finish("a", t0, Some(Duration::from_millis(50)));
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(queue.next_due(t1).as_deref(), Some("b"), "a waits to retry");
        queue.finish("b", t1, None);
        assert!(!queue.add("b", t1), "worked, but still known");
        let t2 = t0 + Duration::from_millis(60);
        assert_eq!(queue.next_due(t2).as_deref(), Some("a"));
        queue.finish("a", t2, None);
        assert!(queue.is_empty());
        assert!(queue.remove("b"));
        assert!(queue.add("b", t2), "known again only after remove");
        queue.retain(|v| v != "b");
        assert!(queue.is_empty());
        assert!(queue.add("b", t2), "a deleted node is forgotten");
    }

    #[test]
    fn swapping_the_limiter_keeps_an_empty_bucket_empty() {
        let t0 = Instant::now();
        let mut queue = RateLimitedTimedQueue::new(0.1);
        queue.add("a", t0);
        queue.add("b", t0);
        assert_eq!(queue.next_due(t0).as_deref(), Some("a"));
        queue.finish("a", t0, None);
        queue.swap_limiter(1.0, t0);
        assert_eq!(
            queue.next_due(t0),
            None,
            "drained: the old bucket was empty"
        );
        assert_eq!(
            queue.next_due(t0 + Duration::from_secs(1)).as_deref(),
            Some("b")
        );
        let mut fresh = RateLimitedTimedQueue::new(0.1);
        fresh.add("a", t0);
        fresh.swap_limiter(1.0, t0);
        assert_eq!(fresh.next_due(t0).as_deref(), Some("a"), "full stays full");
        fresh.swap_limiter(0.0, t0);
        assert_eq!(fresh.next_due(t0 + Duration::from_secs(3600)), None);
    }

    #[test]
    fn two_nodes_in_one_zone_are_tainted_ten_seconds_apart() {
        let (mut zones, registry) = zones(DEFAULT_RATES);
        let z = "r:\0:a";
        let t0 = Instant::now();
        zones.ensure(z);
        assert_eq!(
            zones.handle_disruption(&by_zone(&[(z, &["True", "True", "True"])]), t0),
            Disruption::Unchanged
        );
        // n1 and n2 stop; n3 carries on: 2 of 3 not ready is still Normal.
        assert!(zones.mark_for_tainting(z, "n1", true, t0));
        assert!(zones.mark_for_tainting(z, "n2", true, t0));
        zones.handle_disruption(&by_zone(&[(z, &["Unknown", "Unknown", "True"])]), t0);
        assert_eq!(zones.state(z), Some(ZoneState::Normal));
        let mut tainted = Vec::new();
        // The tainting pass, every 100 ms for 15 s.
        for tick in 0..150u64 {
            let now = t0 + Duration::from_millis(100 * tick);
            while let Some(name) = zones.queue(z).and_then(|q| q.next_due(now)) {
                tainted.push((name.clone(), now - t0));
                if let Some(q) = zones.queue(z) {
                    q.finish(&name, now, None);
                }
            }
        }
        assert_eq!(
            tainted,
            [
                ("n1".to_string(), Duration::ZERO),
                ("n2".to_string(), Duration::from_secs(10))
            ]
        );
        let text = registry.render();
        assert!(
            text.contains("node_collector_zone_size{zone=\"r:\0:a\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("node_collector_unhealthy_nodes_in_zone{zone=\"r:\0:a\"} 2\n"));
        assert!(text.contains("node_collector_zone_health{zone=\"r:\0:a\"} 33.333333333333336\n"));
        assert!(text.contains("node_collector_evictions_total{zone=\"r:\0:a\"} 0\n"));
    }

    #[test]
    fn full_disruption_everywhere_stops_no_execute_tainting_until_a_node_is_back() {
        let (mut zones, registry) = zones(DEFAULT_RATES);
        let t0 = Instant::now();
        for z in ["a", "b"] {
            zones.ensure(z);
        }
        let healthy = by_zone(&[("a", &["True", "True"]), ("b", &["True"])]);
        assert_eq!(zones.handle_disruption(&healthy, t0), Disruption::Unchanged);
        // Every node goes silent: the pass that marks them Unknown enters the mode...
        let down = by_zone(&[("a", &["Unknown", "Unknown"]), ("b", &["Unknown"])]);
        assert_eq!(zones.handle_disruption(&down, t0), Disruption::Entered);
        // ...and the next ones queue them, which lets nothing out.
        for (z, n) in [("a", "a1"), ("a", "a2"), ("b", "b1")] {
            zones.mark_for_tainting(z, n, true, t0);
        }
        assert_eq!(zones.handle_disruption(&down, t0), Disruption::Unchanged);
        let hour = t0 + Duration::from_secs(3600);
        for z in ["a", "b"] {
            assert_eq!(zones.state(z), Some(ZoneState::FullDisruption));
            assert_eq!(zones.queue(z).and_then(|q| q.next_due(hour)), None, "{z}");
        }
        // a1 is Ready again: zone a is Normal, zone b alone is fully disrupted and gets the
        // normal rate, starting from an empty bucket.
        let back = by_zone(&[("a", &["True", "Unknown"]), ("b", &["Unknown"])]);
        assert_eq!(zones.handle_disruption(&back, hour), Disruption::Exited);
        assert_eq!(zones.state("a"), Some(ZoneState::Normal));
        assert_eq!(zones.state("b"), Some(ZoneState::FullDisruption));
        zones.forget("a", "a1");
        assert_eq!(zones.queue("b").and_then(|q| q.next_due(hour)), None);
        let after = hour + Duration::from_secs(10);
        assert_eq!(
            zones.queue("b").and_then(|q| q.next_due(after)).as_deref(),
            Some("b1")
        );
        assert_eq!(
            zones.queue("a").and_then(|q| q.next_due(after)).as_deref(),
            Some("a2")
        );
        let text = registry.render();
        assert!(
            text.contains("node_collector_zone_health{zone=\"a\"} 50\n"),
            "{text}"
        );
        assert!(text.contains("node_collector_zone_health{zone=\"b\"} 0\n"));
    }

    #[test]
    fn one_zone_fully_disrupted_keeps_the_normal_rate_and_partial_ones_slow_down() {
        let rates = EvictionRates {
            large_cluster_threshold: 4,
            ..DEFAULT_RATES
        };
        let (mut zones, _) = zones(rates);
        let t0 = Instant::now();
        let conditions = by_zone(&[
            ("down", &["Unknown", "Unknown"]),
            // 3 of 4 not ready, but only 4 nodes: not large, so no NoExecute at all.
            ("small", &["Unknown", "Unknown", "Unknown", "True"]),
            // 3 of 5 not ready and 5 > 4 nodes: the secondary rate, 0.01/s.
            ("large", &["Unknown", "False", "", "True", "True"]),
            ("up", &["True"]),
        ]);
        for z in conditions.keys() {
            zones.ensure(z);
            zones.mark_for_tainting(z, &format!("{z}-1"), true, t0);
            zones.mark_for_tainting(z, &format!("{z}-2"), true, t0);
        }
        assert_eq!(
            zones.handle_disruption(&conditions, t0),
            Disruption::Unchanged
        );
        let states: Vec<Option<ZoneState>> = ["down", "small", "large", "up"]
            .iter()
            .map(|z| zones.state(z))
            .collect();
        assert_eq!(
            states,
            [
                Some(ZoneState::FullDisruption),
                Some(ZoneState::PartialDisruption),
                Some(ZoneState::PartialDisruption),
                Some(ZoneState::Normal)
            ]
        );
        let mut due = |z: &str, secs: u64| {
            let at = t0 + Duration::from_secs(secs);
            let name = zones.queue(z).and_then(|q| q.next_due(at));
            if let (Some(n), Some(q)) = (&name, zones.queue(z)) {
                q.finish(n, at, None);
            }
            name
        };
        assert_eq!(due("down", 0).as_deref(), Some("down-1"));
        assert_eq!(due("down", 10).as_deref(), Some("down-2"), "0.1/s");
        assert_eq!(due("small", 3600), None);
        assert_eq!(due("large", 0).as_deref(), Some("large-1"));
        assert_eq!(due("large", 10), None);
        // 0.01 as f32 is a hair under, so its period a hair over 100 s (as upstream's).
        assert_eq!(due("large", 100), None);
        assert_eq!(due("large", 101).as_deref(), Some("large-2"), "0.01/s");
    }

    #[test]
    fn eviction_follows_tolerations() {
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let taints = vec![
            taint(UNREACHABLE_TAINT, "NoExecute", Some(900)),
            taint("x", "NoSchedule", None),
        ];
        assert_eq!(
            eviction_delay(&pod(vec![]), &taints, now),
            Some(Duration::ZERO)
        );
        let for_300 = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            Some("NoExecute"),
            Some(300),
        )]);
        assert_eq!(
            eviction_delay(&for_300, &taints, now),
            Some(Duration::from_secs(200)),
            "100 s already passed"
        );
        let forever = pod(vec![toleration(None, "Exists", None, None)]);
        assert_eq!(eviction_delay(&forever, &taints, now), None);
        let wrong_effect = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            Some("NoSchedule"),
            None,
        )]);
        assert_eq!(
            eviction_delay(&wrong_effect, &taints, now),
            Some(Duration::ZERO)
        );
        let expired = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            None,
            Some(10),
        )]);
        assert_eq!(eviction_delay(&expired, &taints, now), Some(Duration::ZERO));
        assert_eq!(
            eviction_delay(&pod(vec![]), &[], now),
            None,
            "no NoExecute taint"
        );
    }
}
