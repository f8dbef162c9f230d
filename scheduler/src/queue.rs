//! The scheduling queue (upstream's `backend/queue`): the pods waiting for a node, shared by
//! the scheduling loop, which pops them one at a time, and the informer event handlers.
//!
//! A pending pod is in exactly one of:
//! - activeQ: ready to be tried, ordered by the profile's QueueSort;
//! - backoffQ: failed recently and may be worth another try, but waits out its backoff
//!   (`initial * 2^(attempts-1)`, capped) first; pods that failed with an error rather than a
//!   plugin's rejection wait in a second heap and are never popped early;
//! - the unschedulable pool: rejected, and waiting for a cluster event that one of the plugins
//!   that rejected it says may help (the plugins' registered events and queueing hints), or
//!   for the five-minute flush. Pods held back by PreEnqueue (scheduling gates) wait here too.
//!
//! A popped pod is "in flight" until the scheduler hands it back (`add_unschedulable_if_not_present`)
//! or says it is done (`done`, after binding). Events that arrive meanwhile are recorded, and
//! when the pod comes back rejected they are replayed through the hints, so a node that was
//! added while the pod was being tried is not missed. Every popped pod must come back one of
//! those two ways, or the recorded events pile up.
//!
//! As in 1.33 (`SchedulerPopFromBackoffQ`, beta and on), an empty activeQ pops from backoffQ
//! instead of idling; `QueueOptions::pop_from_backoff_q` turns that off.
//!
//! Locking: one `std::sync::Mutex` over everything, held briefly and never across an await;
//! queueing hints and PreEnqueue run under it and must not call back into the queue.

mod events;
mod heap;
mod hints;
mod nominator;
mod queue_metrics;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, Code, EventObject, EventResource, PodInfo,
    PodNominator, QueuedPodInfo, QueueingHint, Status,
};

pub use events::*;
pub use hints::hint_registry;
pub use nominator::PodLookupFn;

use heap::Heap;
use nominator::Nominator;
use queue_metrics::QueueMetrics;

/// Upstream's `podInitialBackoffSeconds` default.
pub const DEFAULT_POD_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Upstream's `podMaxBackoffSeconds` default.
pub const DEFAULT_POD_MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `DefaultPodMaxInUnschedulablePodsDuration`.
pub const DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION: Duration = Duration::from_secs(5 * 60);
/// How often backoffQ is checked for pods whose backoff is over.
pub const BACKOFF_FLUSH_PERIOD: Duration = Duration::from_secs(1);
/// How often the unschedulable pool is checked for pods that stayed too long.
pub const UNSCHEDULABLE_FLUSH_PERIOD: Duration = Duration::from_secs(30);
/// The profile of a pod that names none.
pub use crate::config::DEFAULT_SCHEDULER_NAME;

const POD_TOPOLOGY_SPREAD: &str = "PodTopologySpread";

/// The profile's QueueSort: whether `a` goes before `b`.
pub type LessFn = Arc<dyn Fn(&QueuedPodInfo, &QueuedPodInfo) -> bool + Send + Sync>;
/// The profile's PreEnqueue plugins (the framework's `run_pre_enqueue`): anything but
/// Success keeps the pod out of activeQ; the status names the plugin.
pub type PreEnqueueFn = Arc<dyn Fn(&Pod) -> Status + Send + Sync>;
/// A namespace's labels, for affinity terms with a namespace selector.
pub type NamespaceLabelsFn = Arc<dyn Fn(&str) -> Option<BTreeMap<String, String>> + Send + Sync>;
/// Per profile, the events each plugin registered, with its hints.
pub type HintRegistry = HashMap<String, Vec<(&'static str, ClusterEventWithHint)>>;

#[derive(Clone)]
pub struct QueueOptions {
    pub pod_initial_backoff: Duration,
    pub pod_max_backoff: Duration,
    pub pod_max_in_unschedulable_pods_duration: Duration,
    /// Pop from backoffQ when activeQ is empty (upstream's `SchedulerPopFromBackoffQ`).
    pub pop_from_backoff_q: bool,
    /// Namespace labels for the affinity terms that select namespaces (none: empty labels).
    pub namespace_labels: Option<NamespaceLabelsFn>,
    /// The informer's pods: a pod that is gone or bound is not nominated.
    pub pod_lister: Option<PodLookupFn>,
    pub registry: metrics::Registry,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            pod_initial_backoff: DEFAULT_POD_INITIAL_BACKOFF,
            pod_max_backoff: DEFAULT_POD_MAX_BACKOFF,
            pod_max_in_unschedulable_pods_duration: DEFAULT_POD_MAX_IN_UNSCHEDULABLE_PODS_DURATION,
            pop_from_backoff_q: true,
            namespace_labels: None,
            pod_lister: None,
            registry: metrics::global().clone(),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("Pod {0} is already present in unschedulable queue")]
    AlreadyUnschedulable(String),
    #[error("Pod {0} is already present in the active queue")]
    AlreadyActive(String),
    #[error("Pod {0} is already present in the backoff queue")]
    AlreadyBackoff(String),
}

/// How many pods wait where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PendingPods {
    pub active: usize,
    pub backoff: usize,
    /// Unschedulable pods that were tried (gated ones excluded).
    pub unschedulable: usize,
    /// Pods held back by PreEnqueue, never tried.
    pub gated: usize,
}

impl std::fmt::Display for PendingPods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "activeQ:{}; backoffQ:{}; unschedulablePods:{}",
            self.active,
            self.backoff,
            self.unschedulable + self.gated
        )
    }
}

/// Where a pod went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    Active,
    Backoff,
    Unschedulable,
}

impl QueueName {
    /// The `queue` label of `scheduler_queue_incoming_pods_total`.
    pub fn label(self) -> &'static str {
        match self {
            QueueName::Active => "active",
            QueueName::Backoff => "backoff",
            QueueName::Unschedulable => "unschedulable",
        }
    }
}

/// What a hint verdict means for the pod (upstream's `queueingStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    Skip,
    AfterBackoff,
    /// A Pending plugin said Queue: straight to activeQ.
    Immediately,
}

struct BackoffEntry {
    qpi: QueuedPodInfo,
    expiry: Instant,
}

struct RecordedEvent {
    event: ClusterEvent,
    old: Option<EventObject>,
    new: Option<EventObject>,
}

fn key_of(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn uid_of(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

use crate::config::scheduler_name as profile_of;

fn is_wildcard(event: &ClusterEvent) -> bool {
    event.resource == EventResource::WildCard && event.action == ActionType::ALL
}

struct Inner {
    active: Heap<QueuedPodInfo>,
    /// Pods rejected by plugins, by backoff expiry.
    backoff: Heap<BackoffEntry>,
    /// Pods that failed with an error, by backoff expiry; never popped early.
    error_backoff: Heap<BackoffEntry>,
    unschedulable: HashMap<String, QueuedPodInfo>,
    /// How many of `unschedulable` are gated.
    gated: usize,
    /// In-flight pods by UID, with the sequence number of their pop.
    in_flight: HashMap<String, u64>,
    in_flight_starts: BTreeSet<(u64, String)>,
    /// Events seen while some pod was in flight, oldest first.
    events: VecDeque<(u64, RecordedEvent)>,
    next_seq: u64,
    scheduling_cycle: i64,
    closed: bool,
    /// Pods became poppable: wake `pop` once the lock is released.
    wake: bool,
    nominator: Nominator,
}

impl Inner {
    fn in_backoff(&self, key: &str) -> bool {
        self.backoff.contains(key) || self.error_backoff.contains(key)
    }

    fn remove_backoff(&mut self, key: &str) -> Option<QueuedPodInfo> {
        self.backoff
            .remove(key)
            .or_else(|| self.error_backoff.remove(key))
            .map(|e| e.qpi)
    }

    fn remove_unschedulable(&mut self, key: &str) -> Option<QueuedPodInfo> {
        let qpi = self.unschedulable.remove(key)?;
        if qpi.gated {
            self.gated -= 1;
        }
        Some(qpi)
    }

    /// Puts the pod in the unschedulable pool (replacing its old entry); whether it is new.
    fn insert_unschedulable(&mut self, qpi: QueuedPodInfo) -> bool {
        let key = key_of(qpi.pod());
        if qpi.gated {
            self.gated += 1;
        }
        match self.unschedulable.insert(key, qpi) {
            Some(old) => {
                if old.gated {
                    self.gated -= 1;
                }
                false
            }
            None => true,
        }
    }

    fn record_event_if_any_in_flight(
        &mut self,
        event: ClusterEvent,
        old: Option<EventObject>,
        new: Option<EventObject>,
    ) -> bool {
        if self.in_flight.is_empty() {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.events
            .push_back((seq, RecordedEvent { event, old, new }));
        true
    }

    /// The events recorded since the pod with `uid` was popped; None if it is not in flight.
    fn events_for(&self, uid: &str) -> Option<impl Iterator<Item = &RecordedEvent>> {
        let start = *self.in_flight.get(uid)?;
        let from = self.events.partition_point(|(seq, _)| *seq < start);
        Some(self.events.range(from..).map(|(_, e)| e))
    }

    fn done(&mut self, uid: &str) {
        let Some(start) = self.in_flight.remove(uid) else {
            return;
        };
        self.in_flight_starts.remove(&(start, uid.to_string()));
        match self.in_flight_starts.first() {
            None => self.events.clear(),
            Some(&(oldest, _)) => {
                while self.events.front().is_some_and(|(seq, _)| *seq < oldest) {
                    self.events.pop_front();
                }
            }
        }
    }
}

/// The scheduling queue shared by every profile (they must share one QueueSort).
pub struct SchedulingQueue {
    inner: Mutex<Inner>,
    notify: Notify,
    pre_enqueue: PreEnqueueFn,
    hints: HintRegistry,
    options: QueueOptions,
    metrics: QueueMetrics,
}

impl SchedulingQueue {
    pub fn new(
        less: LessFn,
        pre_enqueue: PreEnqueueFn,
        hints: HintRegistry,
        options: QueueOptions,
    ) -> SchedulingQueue {
        let by_expiry: heap::Less<BackoffEntry> =
            Arc::new(|a: &BackoffEntry, b: &BackoffEntry| a.expiry < b.expiry);
        let metrics = QueueMetrics::new(&options.registry);
        SchedulingQueue {
            inner: Mutex::new(Inner {
                active: Heap::new(less),
                backoff: Heap::new(by_expiry.clone()),
                error_backoff: Heap::new(by_expiry),
                unschedulable: HashMap::new(),
                gated: 0,
                in_flight: HashMap::new(),
                in_flight_starts: BTreeSet::new(),
                events: VecDeque::new(),
                next_seq: 0,
                scheduling_cycle: 0,
                closed: false,
                wake: false,
                nominator: Nominator::default(),
            }),
            notify: Notify::new(),
            pre_enqueue,
            hints,
            options,
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The data stays consistent between statements; a panic elsewhere must not wedge us.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lock, then publishes the queue sizes and wakes `pop` if pods became
    /// poppable.
    fn with_inner<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self.lock();
        let result = f(&mut inner);
        let wake = std::mem::take(&mut inner.wake);
        let pending = Self::count(&inner);
        drop(inner);
        self.metrics.active.set(pending.active as f64);
        self.metrics.backoff.set(pending.backoff as f64);
        self.metrics.unschedulable.set(pending.unschedulable as f64);
        self.metrics.gated.set(pending.gated as f64);
        if wake {
            self.notify.notify_waiters();
        }
        result
    }

    fn count(inner: &Inner) -> PendingPods {
        PendingPods {
            active: inner.active.len(),
            backoff: inner.backoff.len() + inner.error_backoff.len(),
            unschedulable: inner.unschedulable.len() - inner.gated,
            gated: inner.gated,
        }
    }

    fn new_queued_pod_info(&self, pod: Arc<Pod>) -> QueuedPodInfo {
        QueuedPodInfo::new(pod, Instant::now())
    }

    /// `initial * 2^(attempts-1)`, capped at the maximum; none before the first attempt.
    fn backoff_duration(&self, attempts: u32) -> Duration {
        if attempts == 0 {
            return Duration::ZERO;
        }
        let max = self.options.pod_max_backoff;
        let mut duration = self.options.pod_initial_backoff;
        for _ in 1..attempts {
            if max.checked_sub(duration).is_none_or(|rest| duration > rest) {
                return max;
            }
            duration += duration;
        }
        duration
    }

    fn backoff_expiry(&self, qpi: &QueuedPodInfo) -> Instant {
        qpi.timestamp + self.backoff_duration(qpi.attempts)
    }

    fn is_backing_off(&self, qpi: &QueuedPodInfo, now: Instant) -> bool {
        self.backoff_expiry(qpi) > now
    }

    fn run_pre_enqueue(&self, qpi: &mut QueuedPodInfo) {
        let status = (self.pre_enqueue)(qpi.pod());
        if status.is_success() {
            qpi.gated = false;
            return;
        }
        if !status.plugin().is_empty() {
            qpi.unschedulable_plugins.insert(status.plugin());
        }
        qpi.gated = true;
        if status.code() == Code::Error {
            tracing::error!(pod = %qpi.pod_info.key(), plugin = status.plugin(), %status, "unexpected error running PreEnqueue plugin");
        } else {
            tracing::debug!(pod = %qpi.pod_info.key(), plugin = status.plugin(), %status, "status after running PreEnqueue plugin");
        }
    }

    /// Tries activeQ; a pod that PreEnqueue holds back goes to the unschedulable pool
    /// instead. `from_backoff` skips PreEnqueue when it already ran on entering backoffQ.
    fn move_to_active(
        &self,
        inner: &mut Inner,
        mut qpi: QueuedPodInfo,
        event: &str,
        from_backoff: bool,
    ) -> bool {
        if !(self.options.pop_from_backoff_q && from_backoff) {
            self.run_pre_enqueue(&mut qpi);
        }
        let key = key_of(qpi.pod());
        if qpi.gated {
            if inner.active.contains(&key) || inner.in_backoff(&key) {
                return false;
            }
            if inner.insert_unschedulable(qpi) {
                self.metrics.incoming(QueueName::Unschedulable, event);
            }
            tracing::trace!(pod = %key, event, "pod moved to the unschedulable pool because it is gated");
            return false;
        }
        if qpi.initial_attempt_timestamp.is_none() {
            qpi.initial_attempt_timestamp = Some(Instant::now());
        }
        inner.remove_unschedulable(&key);
        inner.remove_backoff(&key);
        if event == EVENT_UNSCHEDULED_POD_ADD.label || event == EVENT_UNSCHEDULED_POD_UPDATE.label {
            inner
                .nominator
                .add(qpi.pod_info.clone(), None, self.options.pod_lister.as_ref());
        }
        inner.active.add_or_update(key, qpi);
        self.metrics.incoming(QueueName::Active, event);
        inner.wake = true;
        true
    }

    /// Puts the pod in backoffQ (the error heap when no plugin rejected it). With
    /// pop-from-backoff, PreEnqueue runs here and a gated pod goes to the unschedulable pool.
    fn move_to_backoff(&self, inner: &mut Inner, mut qpi: QueuedPodInfo, event: &str) -> bool {
        let key = key_of(qpi.pod());
        if self.options.pop_from_backoff_q {
            self.run_pre_enqueue(&mut qpi);
            if qpi.gated {
                if !inner.unschedulable.contains_key(&key) && inner.insert_unschedulable(qpi) {
                    self.metrics.incoming(QueueName::Unschedulable, event);
                }
                return false;
            }
        }
        inner.remove_unschedulable(&key);
        let expiry = self.backoff_expiry(&qpi);
        let failed_with_error =
            qpi.unschedulable_plugins.is_empty() && qpi.pending_plugins.is_empty();
        let entry = BackoffEntry { qpi, expiry };
        if failed_with_error {
            inner.backoff.remove(&key);
            inner.error_backoff.add_or_update(key, entry);
        } else {
            inner.error_backoff.remove(&key);
            inner.backoff.add_or_update(key, entry);
            if self.options.pop_from_backoff_q {
                inner.wake = true;
            }
        }
        self.metrics.incoming(QueueName::Backoff, event);
        true
    }

    /// Sends the pod where `strategy` says (upstream's `requeuePodWithQueueingStrategy`).
    fn requeue(
        &self,
        inner: &mut Inner,
        qpi: QueuedPodInfo,
        strategy: Strategy,
        event: &str,
    ) -> QueueName {
        match strategy {
            Strategy::Skip => {
                if inner.insert_unschedulable(qpi) {
                    self.metrics.incoming(QueueName::Unschedulable, event);
                }
                QueueName::Unschedulable
            }
            Strategy::AfterBackoff if self.is_backing_off(&qpi, Instant::now()) => {
                if self.move_to_backoff(inner, qpi, event) {
                    QueueName::Backoff
                } else {
                    QueueName::Unschedulable
                }
            }
            _ => {
                if self.move_to_active(inner, qpi, event, false) {
                    QueueName::Active
                } else {
                    QueueName::Unschedulable
                }
            }
        }
    }

    fn registrations(&self, pod: &Pod) -> Option<&[(&'static str, ClusterEventWithHint)]> {
        self.hints.get(profile_of(pod)).map(Vec::as_slice)
    }

    /// Whether any plugin of any profile registered for `event`.
    fn is_event_of_interest(&self, event: &ClusterEvent) -> bool {
        is_wildcard(event)
            || self
                .hints
                .values()
                .flatten()
                .any(|(_, reg)| reg.event.matches(event))
    }

    /// Whether `event` is one the plugin gating this pod registered for.
    fn gating_plugin_interested(&self, qpi: &QueuedPodInfo, event: &ClusterEvent) -> bool {
        if qpi.unschedulable_plugins.is_empty() {
            return true;
        }
        let regs = self.registrations(qpi.pod()).unwrap_or(&[]);
        qpi.unschedulable_plugins.iter().any(|plugin| {
            let mut mine = regs.iter().filter(|(p, _)| p == plugin).peekable();
            // A plugin without registrations is taken as interested in everything.
            mine.peek().is_none() || mine.any(|(_, reg)| reg.event.matches(event))
        })
    }

    /// Asks the hints of the plugins that rejected the pod whether `event` may help it
    /// (upstream's `isPodWorthRequeuing`).
    fn worth_requeuing(
        &self,
        qpi: &QueuedPodInfo,
        event: &ClusterEvent,
        old: Option<&EventObject>,
        new: Option<&EventObject>,
    ) -> Strategy {
        let pod = qpi.pod();
        if qpi.unschedulable_plugins.is_empty() && qpi.pending_plugins.is_empty() {
            return Strategy::AfterBackoff;
        }
        if is_wildcard(event) {
            // A wildcard event carrying a pod (ForceActivate) is for that pod only.
            return match new {
                None => Strategy::AfterBackoff,
                Some(EventObject::Pod(p)) if uid_of(p) == uid_of(pod) => Strategy::AfterBackoff,
                Some(_) => Strategy::Skip,
            };
        }
        let Some(regs) = self.registrations(pod) else {
            tracing::error!(profile = profile_of(pod), pod = %qpi.pod_info.key(), "no queueing hints are registered for this profile");
            return Strategy::AfterBackoff;
        };
        let rejectors = qpi
            .unschedulable_plugins
            .iter()
            .chain(qpi.pending_plugins.iter());
        let mut strategy = Strategy::Skip;
        let upgrade = |plugin: &str, strategy: &mut Strategy| {
            if qpi.pending_plugins.contains(plugin) {
                return Some(Strategy::Immediately);
            }
            if qpi.pending_plugins.is_empty() {
                return Some(Strategy::AfterBackoff);
            }
            *strategy = Strategy::AfterBackoff;
            None
        };
        for (plugin, reg) in regs {
            if !reg.event.matches(event) || !rejectors.clone().any(|r| r == plugin) {
                continue;
            }
            let hint = match &reg.hint {
                None => QueueingHint::Queue,
                Some(hint) => hint(pod, old, new).unwrap_or_else(|err| {
                    tracing::error!(plugin, event = event.label, pod = %qpi.pod_info.key(), %err, "QueueingHintFn returns error");
                    QueueingHint::Queue
                }),
            };
            if hint == QueueingHint::Skip {
                continue;
            }
            if let Some(done) = upgrade(plugin, &mut strategy) {
                return done;
            }
        }
        // A rejecting plugin that registered nothing at all is taken as interested in every
        // event (the conservative default of `Plugin::events_to_register`).
        for plugin in rejectors {
            if !regs.iter().any(|(p, _)| p == plugin) {
                if let Some(done) = upgrade(plugin, &mut strategy) {
                    return done;
                }
            }
        }
        strategy
    }

    /// Replays the events seen while the pod was in flight through its hints.
    fn hint_for_in_flight(&self, inner: &Inner, qpi: &QueuedPodInfo) -> Strategy {
        if qpi.unschedulable_plugins.is_empty() && qpi.pending_plugins.is_empty() {
            // Not a plugin's verdict (an API error, say): retry after backoff.
            return Strategy::AfterBackoff;
        }
        let Some(events) = inner.events_for(uid_of(qpi.pod())) else {
            tracing::error!(pod = %qpi.pod_info.key(), "pod is not in flight: cannot tell which events it missed");
            return Strategy::AfterBackoff;
        };
        let mut strategy = Strategy::Skip;
        for e in events {
            match self.worth_requeuing(qpi, &e.event, e.old.as_ref(), e.new.as_ref()) {
                Strategy::Skip => {}
                Strategy::Immediately => return Strategy::Immediately,
                Strategy::AfterBackoff => {
                    strategy = Strategy::AfterBackoff;
                    if qpi.pending_plugins.is_empty() {
                        return strategy;
                    }
                }
            }
        }
        strategy
    }

    /// Moves the pods of the unschedulable pool named by `keys` that `event` may help.
    fn move_pods(
        &self,
        inner: &mut Inner,
        keys: Vec<String>,
        event: ClusterEvent,
        old: Option<EventObject>,
        new: Option<EventObject>,
    ) {
        if !self.is_event_of_interest(&event) {
            return;
        }
        for key in keys {
            let Some(qpi) = inner.unschedulable.get(&key) else {
                continue;
            };
            if qpi.gated && !self.gating_plugin_interested(qpi, &event) {
                continue;
            }
            let strategy = self.worth_requeuing(qpi, &event, old.as_ref(), new.as_ref());
            if strategy == Strategy::Skip {
                tracing::trace!(pod = %key, event = event.label, "event is not making pod schedulable");
                continue;
            }
            if let Some(qpi) = inner.remove_unschedulable(&key) {
                self.requeue(inner, qpi, strategy, event.label);
            }
        }
        // A pod in flight may come back rejected: it must see this event then.
        inner.record_event_if_any_in_flight(event, old, new);
    }

    /// Unschedulable pods that a new or changed bound `pod` may help: those whose required
    /// affinity terms match it, and those PodTopologySpread rejected in its namespace.
    fn cross_topology_candidates(&self, inner: &Inner, pod: &Pod) -> Vec<String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let ns_labels = self
            .options
            .namespace_labels
            .as_ref()
            .and_then(|labels| labels(ns));
        inner
            .unschedulable
            .iter()
            .filter(|(_, qpi)| {
                (qpi.unschedulable_plugins.contains(POD_TOPOLOGY_SPREAD)
                    && qpi.pod_info.namespace() == ns)
                    || qpi
                        .pod_info
                        .required_affinity_terms
                        .iter()
                        .any(|term| term.matches(pod, ns_labels.as_ref()))
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    // ----- what the informer handlers call -----

    /// A new pod without a node: to activeQ, or the unschedulable pool if gated.
    pub fn add(&self, pod: Arc<Pod>) {
        let qpi = self.new_queued_pod_info(pod);
        self.with_inner(|inner| {
            self.move_to_active(inner, qpi, EVENT_UNSCHEDULED_POD_ADD.label, false);
        });
    }

    /// A pod without a node changed. In activeQ or backoffQ it is just updated; in flight, the
    /// change is recorded for when it comes back; in the unschedulable pool, the hints of the
    /// plugins that rejected it decide whether the change may help (gates removed: PreEnqueue
    /// runs again); anywhere else it is added.
    pub fn update(&self, old: Arc<Pod>, new: Arc<Pod>) {
        let events = pod_scheduling_properties_change(&old, &new);
        self.with_inner(|inner| {
            if inner.in_flight.contains_key(uid_of(&new)) {
                for event in &events {
                    inner.record_event_if_any_in_flight(
                        *event,
                        Some(EventObject::Pod(old.clone())),
                        Some(EventObject::Pod(new.clone())),
                    );
                }
                return;
            }
            let key = key_of(&old);
            let pod_info = Arc::new(PodInfo::new(new.clone()));
            let lister = self.options.pod_lister.as_ref();
            if let Some(qpi) = inner.active.get(&key) {
                let mut qpi = qpi.clone();
                qpi.pod_info = pod_info.clone();
                inner.active.add_or_update(key, qpi);
                inner.nominator.update(&old, pod_info, lister);
                return;
            }
            for heap in [&mut inner.backoff, &mut inner.error_backoff] {
                if let Some(entry) = heap.remove(&key) {
                    let mut qpi = entry.qpi;
                    qpi.pod_info = pod_info.clone();
                    heap.add_or_update(
                        key,
                        BackoffEntry {
                            qpi,
                            expiry: entry.expiry,
                        },
                    );
                    inner.nominator.update(&old, pod_info, lister);
                    return;
                }
            }
            if let Some(mut qpi) = inner.remove_unschedulable(&key) {
                qpi.pod_info = pod_info.clone();
                inner.nominator.update(&old, pod_info, lister);
                let (old_obj, new_obj) = (EventObject::Pod(old.clone()), EventObject::Pod(new));
                for event in &events {
                    let strategy = self.worth_requeuing(&qpi, event, Some(&old_obj), Some(&new_obj));
                    if strategy != Strategy::Skip {
                        let queue = self.requeue(inner, qpi, strategy, event.label);
                        tracing::trace!(pod = %key, event = event.label, queue = queue.label(), "pod moved because it was updated");
                        return;
                    }
                }
                if inner.insert_unschedulable(qpi) {
                    self.metrics
                        .incoming(QueueName::Unschedulable, EVENT_UNSCHEDULED_POD_UPDATE.label);
                }
                return;
            }
            let qpi = self.new_queued_pod_info(new);
            self.move_to_active(inner, qpi, EVENT_UNSCHEDULED_POD_UPDATE.label, false);
        });
    }

    /// A pod without a node was deleted (or got bound elsewhere): out of every queue.
    pub fn delete(&self, pod: &Pod) {
        self.with_inner(|inner| {
            inner.nominator.delete(pod);
            let key = key_of(pod);
            if inner.active.remove(&key).is_none() && inner.remove_backoff(&key).is_none() {
                inner.remove_unschedulable(&key);
            }
        });
    }

    /// A bound pod appeared: pods whose required affinity it may satisfy, or that
    /// PodTopologySpread rejected in its namespace, are checked with their hints.
    pub fn assigned_pod_added(&self, pod: Arc<Pod>) {
        self.with_inner(|inner| {
            let keys = self.cross_topology_candidates(inner, &pod);
            self.move_pods(
                inner,
                keys,
                EVENT_ASSIGNED_POD_ADD,
                None,
                Some(EventObject::Pod(pod)),
            );
        });
    }

    /// A bound pod changed (`event` from `pod_scheduling_properties_change`). A scale-down
    /// may free room for anyone; other changes only matter across topologies, as for adds.
    pub fn assigned_pod_updated(&self, old: Arc<Pod>, new: Arc<Pod>, event: ClusterEvent) {
        let (old_obj, new_obj) = (
            Some(EventObject::Pod(old)),
            Some(EventObject::Pod(new.clone())),
        );
        self.with_inner(|inner| {
            let keys = if event.action.intersects(ActionType::UPDATE_POD_SCALE_DOWN) {
                inner.unschedulable.keys().cloned().collect()
            } else {
                self.cross_topology_candidates(inner, &new)
            };
            self.move_pods(inner, keys, event, old_obj, new_obj);
        });
    }

    /// A bound pod went away: it may have been in anyone's way.
    pub fn assigned_pod_deleted(&self, pod: Arc<Pod>) {
        self.move_all_to_active_or_backoff(
            EVENT_ASSIGNED_POD_DELETE,
            Some(EventObject::Pod(pod)),
            None,
            None,
        );
    }

    /// A cluster event: every unschedulable pod (passing `pre_check`, if given) that one of
    /// the plugins that rejected it thinks the event may help moves to backoffQ (still backing
    /// off) or activeQ.
    pub fn move_all_to_active_or_backoff(
        &self,
        event: ClusterEvent,
        old: Option<EventObject>,
        new: Option<EventObject>,
        pre_check: Option<&dyn Fn(&Pod) -> bool>,
    ) {
        if !self.is_event_of_interest(&event) {
            return;
        }
        self.with_inner(|inner| {
            let keys = inner
                .unschedulable
                .iter()
                .filter(|(_, qpi)| pre_check.is_none_or(|check| check(qpi.pod())))
                .map(|(key, _)| key.clone())
                .collect();
            self.move_pods(inner, keys, event, old, new);
        });
    }

    /// Moves these pods to activeQ now (plugins' "pods to activate"). A pod in flight gets the
    /// request when it comes back.
    pub fn activate(&self, pods: &[Arc<Pod>]) {
        self.with_inner(|inner| {
            for pod in pods {
                let key = key_of(pod);
                if let Some(qpi) = inner.remove_unschedulable(&key) {
                    self.move_to_active(inner, qpi, EVENT_FORCE_ACTIVATE.label, false);
                } else if let Some(qpi) = inner.remove_backoff(&key) {
                    self.move_to_active(inner, qpi, EVENT_FORCE_ACTIVATE.label, true);
                } else if inner.in_flight.contains_key(uid_of(pod)) {
                    inner.record_event_if_any_in_flight(
                        EVENT_FORCE_ACTIVATE,
                        None,
                        Some(EventObject::Pod(pod.clone())),
                    );
                }
            }
        });
    }

    // ----- what the scheduling loop calls -----

    /// The next pod to schedule, waiting for one; None once the queue is closed. The pod is
    /// in flight until `add_unschedulable_if_not_present` or `done`.
    pub async fn pop(&self) -> Option<QueuedPodInfo> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(result) = self.try_pop() {
                return result;
            }
            notified.await;
        }
    }

    /// Some(None) when closed, Some(pod) when one was ready, None to wait.
    fn try_pop(&self) -> Option<Option<QueuedPodInfo>> {
        self.with_inner(|inner| {
            if inner.closed {
                return Some(None);
            }
            loop {
                let mut qpi = match inner.active.pop() {
                    Some(qpi) => qpi,
                    None if self.options.pop_from_backoff_q => {
                        let entry = inner.backoff.pop()?;
                        self.metrics
                            .incoming(QueueName::Active, POP_FROM_BACKOFF_Q);
                        entry.qpi
                    }
                    None => return None,
                };
                let uid = uid_of(qpi.pod()).to_string();
                if inner.in_flight.contains_key(&uid) {
                    tracing::error!(pod = %qpi.pod_info.key(), "the same pod is tracked in multiple places in the scheduler; discarding the popped one");
                    continue;
                }
                qpi.attempts += 1;
                inner.scheduling_cycle += 1;
                let seq = inner.next_seq;
                inner.next_seq += 1;
                inner.in_flight.insert(uid.clone(), seq);
                inner.in_flight_starts.insert((seq, uid));
                return Some(Some(qpi));
            }
        })
    }

    /// A popped pod failed. Unless it is already queued, it goes to the unschedulable pool,
    /// or to backoffQ/activeQ when an event seen while it was in flight may help it or when
    /// no plugin rejected it (an error). Ends its in-flight state either way.
    pub fn add_unschedulable_if_not_present(
        &self,
        mut qpi: QueuedPodInfo,
        scheduling_cycle: i64,
    ) -> Result<(), QueueError> {
        self.with_inner(|inner| {
            let uid = uid_of(qpi.pod()).to_string();
            let key = key_of(qpi.pod());
            let result = if inner.unschedulable.contains_key(&key) {
                Err(QueueError::AlreadyUnschedulable(key.clone()))
            } else if inner.active.contains(&key) {
                Err(QueueError::AlreadyActive(key.clone()))
            } else if inner.in_backoff(&key) {
                Err(QueueError::AlreadyBackoff(key.clone()))
            } else {
                qpi.timestamp = Instant::now();
                let strategy = self.hint_for_in_flight(inner, &qpi);
                let plugins = qpi.unschedulable_plugins.clone();
                let queue = self.requeue(inner, qpi, strategy, SCHEDULE_ATTEMPT_FAILURE);
                tracing::debug!(pod = %key, queue = queue.label(), scheduling_cycle, ?strategy, unschedulable_plugins = ?plugins, "pod moved to an internal scheduling queue");
                Ok(())
            };
            inner.done(&uid);
            result
        })
    }

    /// The pod's attempt is over (bound, or handed back): stop recording events for it.
    pub fn done(&self, uid: &str) {
        self.with_inner(|inner| inner.done(uid));
    }

    /// The number of pods popped so far.
    pub fn scheduling_cycle(&self) -> i64 {
        self.lock().scheduling_cycle
    }

    /// Moves backoffQ pods whose backoff is over to activeQ.
    pub fn flush_backoff_q_completed(&self) {
        let now = Instant::now();
        self.with_inner(|inner| {
            for error_heap in [false, true] {
                loop {
                    let heap = if error_heap {
                        &mut inner.error_backoff
                    } else {
                        &mut inner.backoff
                    };
                    if heap.peek().is_none_or(|e| e.expiry > now) {
                        break;
                    }
                    let Some(entry) = heap.pop() else { break };
                    self.move_to_active(inner, entry.qpi, BACKOFF_COMPLETE, true);
                }
            }
        });
    }

    /// Moves pods that stayed unschedulable longer than the maximum to backoffQ or activeQ.
    pub fn flush_unschedulable_pods_leftover(&self) {
        let now = Instant::now();
        let max = self.options.pod_max_in_unschedulable_pods_duration;
        self.with_inner(|inner| {
            let keys = inner
                .unschedulable
                .iter()
                .filter(|(_, qpi)| now.saturating_duration_since(qpi.timestamp) > max)
                .map(|(key, _)| key.clone())
                .collect::<Vec<_>>();
            if !keys.is_empty() {
                self.move_pods(inner, keys, EVENT_UNSCHEDULABLE_TIMEOUT, None, None);
            }
        });
    }

    /// The periodic flushes (backoffQ every second, the unschedulable pool every 30 seconds)
    /// until `stop` completes.
    pub async fn run_flushes(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = tokio::time::interval(BACKOFF_FLUSH_PERIOD);
        let mut leftover = tokio::time::interval(UNSCHEDULABLE_FLUSH_PERIOD);
        for tick in [&mut backoff, &mut leftover] {
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = backoff.tick() => self.flush_backoff_q_completed(),
                _ = leftover.tick() => self.flush_unschedulable_pods_leftover(),
            }
        }
    }

    /// Wakes and ends every `pop`.
    pub fn close(&self) {
        self.with_inner(|inner| {
            inner.closed = true;
            inner.wake = true;
        });
    }

    // ----- nominations -----

    /// Nominates the pod to `node` (preemption), or with None to its
    /// `status.nominatedNodeName`; an empty node clears the nomination.
    pub fn add_nominated_pod(&self, pod_info: Arc<PodInfo>, node: Option<&str>) {
        self.with_inner(|inner| {
            inner
                .nominator
                .add(pod_info, node, self.options.pod_lister.as_ref())
        });
    }

    pub fn delete_nominated_pod_if_exists(&self, pod: &Pod) {
        self.with_inner(|inner| inner.nominator.delete(pod));
    }

    /// The node the pod is nominated to, if any.
    pub fn nominated_node(&self, pod: &Pod) -> Option<String> {
        self.lock().nominator.node_of(pod).map(str::to_string)
    }

    // ----- inspection -----

    pub fn pending_pods(&self) -> PendingPods {
        Self::count(&self.lock())
    }

    /// Every pending pod: activeQ, backoffQ, then the unschedulable pool.
    pub fn pending_pod_list(&self) -> Vec<Arc<Pod>> {
        let inner = self.lock();
        inner
            .active
            .iter()
            .map(|q| q.pod().clone())
            .chain(inner.backoff.iter().map(|e| e.qpi.pod().clone()))
            .chain(inner.error_backoff.iter().map(|e| e.qpi.pod().clone()))
            .chain(inner.unschedulable.values().map(|q| q.pod().clone()))
            .collect()
    }

    /// The pod's queue entry and where it is.
    pub fn get(&self, namespace: &str, name: &str) -> Option<(QueueName, QueuedPodInfo)> {
        let key = format!("{namespace}/{name}");
        let inner = self.lock();
        if let Some(qpi) = inner.active.get(&key) {
            return Some((QueueName::Active, qpi.clone()));
        }
        if let Some(e) = inner
            .backoff
            .get(&key)
            .or_else(|| inner.error_backoff.get(&key))
        {
            return Some((QueueName::Backoff, e.qpi.clone()));
        }
        inner
            .unschedulable
            .get(&key)
            .map(|qpi| (QueueName::Unschedulable, qpi.clone()))
    }

    /// UIDs of the pods in flight.
    pub fn in_flight_pods(&self) -> Vec<String> {
        self.lock().in_flight.keys().cloned().collect()
    }
}

impl PodNominator for SchedulingQueue {
    fn nominated_pods_for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.lock().nominator.for_node(node)
    }

    fn all_nominations(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        self.lock().nominator.all()
    }
}
