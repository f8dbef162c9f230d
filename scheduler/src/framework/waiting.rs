//! Pods held at Permit (upstream's `waitingPodsMap` and `waitingPod`). When a Permit plugin
//! answers Wait, the framework parks the pod here with the plugins it waits for, each with its
//! own timeout, and the pod's binding cycle awaits the outcome. Whoever holds the framework's
//! [`Handle`](super::Handle) may let the pod go ([`WaitingPod::allow`], once per waiting
//! plugin) or turn it away ([`WaitingPod::reject`]); a plugin's timeout rejects it, and so do
//! the pod's deletion ("removed") and its preemption ("preempted").
//!
//! The outcome is decided once: the first rejection, or the allowance by the last plugin still
//! pending, wins; later calls change nothing. Timeouts are deadlines, checked on every allow
//! and slept on by the waiter, so no timer task is needed and an `allow` that comes after a
//! deadline finds the pod already rejected.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;
use tokio::time::Instant;

use super::status::Status;

#[cfg(test)]
mod tests;

/// The longest a plugin may hold a pod (upstream's `maxTimeout`); longer waits are cut to it.
pub const MAX_PERMIT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The rejection message for a pod deleted while it waits (upstream's `RejectWaitingPod`).
pub const REJECTED_REMOVED: &str = "removed";

/// The rejection message for a waiting pod chosen as a preemption victim.
pub const REJECTED_PREEMPTED: &str = "preempted";

/// One plugin's hold on the pod.
#[derive(Debug, Clone, Copy)]
struct Hold {
    timeout: Duration,
    deadline: Instant,
}

/// A pod that Permit plugins hold: assumed on `node`, not yet bound.
pub struct WaitingPod {
    pod: Arc<Pod>,
    node: String,
    /// The plugins that have not allowed the pod yet. Lock order: this lock, then `outcome`'s.
    pending: Mutex<BTreeMap<&'static str, Hold>>,
    /// None while the pod waits; then the verdict, set once.
    outcome: watch::Sender<Option<Status>>,
}

impl fmt::Debug for WaitingPod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitingPod")
            .field("pod", &self.uid())
            .field("node", &self.node)
            .field("pending", &self.pending_plugins())
            .field("outcome", &self.outcome())
            .finish()
    }
}

impl WaitingPod {
    /// A pod waiting for each of `waits` (plugin, timeout); timeouts count from now and are
    /// capped at [`MAX_PERMIT_TIMEOUT`]. With nothing to wait for, the pod is allowed at once.
    pub fn new(
        pod: Arc<Pod>,
        node: impl Into<String>,
        waits: impl IntoIterator<Item = (&'static str, Duration)>,
    ) -> WaitingPod {
        let now = Instant::now();
        let pending: BTreeMap<&'static str, Hold> = waits
            .into_iter()
            .map(|(plugin, timeout)| {
                let timeout = timeout.min(MAX_PERMIT_TIMEOUT);
                let deadline = now + timeout;
                (plugin, Hold { timeout, deadline })
            })
            .collect();
        let initial = pending.is_empty().then(Status::success);
        let (outcome, _) = watch::channel(initial);
        WaitingPod {
            pod,
            node: node.into(),
            pending: Mutex::new(pending),
            outcome,
        }
    }

    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod
    }

    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }

    /// The node the pod is assumed on.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The plugins that still hold the pod, by name (upstream's `GetPendingPlugins`).
    pub fn pending_plugins(&self) -> Vec<&'static str> {
        self.lock().keys().copied().collect()
    }

    /// `plugin` lets the pod go; once no plugin holds it any more, the pod is allowed.
    pub fn allow(&self, plugin: &str) {
        let mut pending = self.lock();
        self.expire(&mut pending, Instant::now());
        if self.is_decided() {
            return;
        }
        pending.remove(plugin);
        if pending.is_empty() {
            self.decide(&mut pending, Status::success());
        }
    }

    /// The pod is unschedulable: `plugin` (empty when not a plugin) says why in `message`.
    pub fn reject(&self, plugin: &'static str, message: impl Into<String>) {
        let mut pending = self.lock();
        self.expire(&mut pending, Instant::now());
        self.decide(
            &mut pending,
            Status::unschedulable(message).with_plugin(plugin),
        );
    }

    /// The verdict if there is one yet (a passed deadline counts as one).
    pub fn outcome(&self) -> Option<Status> {
        let mut pending = self.lock();
        self.expire(&mut pending, Instant::now());
        self.outcome.borrow().clone()
    }

    /// Waits for the verdict: success once every plugin allowed the pod, Unschedulable on the
    /// first rejection or timeout.
    pub async fn wait(&self) -> Status {
        let mut changes = self.outcome.subscribe();
        loop {
            let next_deadline = {
                let mut pending = self.lock();
                self.expire(&mut pending, Instant::now());
                if let Some(status) = self.outcome.borrow().clone() {
                    return status;
                }
                pending.values().map(|h| h.deadline).min()
            };
            // A verdict reached between the check above and here is not missed: `changes`
            // saw the version before it.
            match next_deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = changes.changed() => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                // Undecided with nothing pending cannot happen; the sender lives in `self`,
                // so this only returns on a verdict.
                None => {
                    let _ = changes.changed().await;
                }
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Hold>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_decided(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    /// Rejects the pod for the plugin whose deadline passed first, if one did.
    fn expire(&self, pending: &mut BTreeMap<&'static str, Hold>, now: Instant) {
        if self.is_decided() {
            return;
        }
        let expired = pending
            .iter()
            .filter(|(_, h)| h.deadline <= now)
            .min_by_key(|(_, h)| h.deadline)
            .map(|(plugin, h)| (*plugin, h.timeout));
        if let Some((plugin, timeout)) = expired {
            let message = format!(
                "rejected due to timeout after waiting {} at plugin {plugin}",
                go_duration(timeout)
            );
            self.decide(pending, Status::unschedulable(message).with_plugin(plugin));
        }
    }

    /// Sets the verdict unless there is one; the holds end either way.
    fn decide(&self, pending: &mut BTreeMap<&'static str, Hold>, status: Status) {
        self.outcome.send_if_modified(|outcome| {
            if outcome.is_some() {
                return false;
            }
            *outcome = Some(status);
            true
        });
        pending.clear();
    }
}

/// The pods held at Permit, by UID, shared by every profile of a scheduler (upstream's
/// `waitingPodsMap`). Cloning shares the registry.
#[derive(Clone, Default)]
pub struct WaitingPods {
    pods: Arc<RwLock<HashMap<String, Arc<WaitingPod>>>>,
}

impl fmt::Debug for WaitingPods {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitingPods")
            .field("len", &self.len())
            .finish()
    }
}

impl WaitingPods {
    pub fn get(&self, uid: &str) -> Option<Arc<WaitingPod>> {
        self.read().get(uid).cloned()
    }

    /// Parks a pod (the framework does this when a Permit plugin answers Wait).
    pub fn add(&self, pod: Arc<WaitingPod>) {
        let uid = pod.uid().to_string();
        self.write().insert(uid, pod);
    }

    /// Forgets a pod (its binding cycle does this once it has the verdict).
    pub fn remove(&self, uid: &str) -> Option<Arc<WaitingPod>> {
        self.write().remove(uid)
    }

    /// Calls `f` for every waiting pod (upstream's `IterateOverWaitingPods`). `f` sees a copy
    /// of the registry, so it may allow, reject or look pods up.
    pub fn iterate(&self, mut f: impl FnMut(&Arc<WaitingPod>)) {
        let pods: Vec<Arc<WaitingPod>> = self.read().values().cloned().collect();
        for pod in &pods {
            f(pod);
        }
    }

    /// Rejects the pod with `uid` if it waits; whether it did.
    pub fn reject(&self, uid: &str, plugin: &'static str, message: &str) -> bool {
        match self.get(uid) {
            Some(pod) => {
                pod.reject(plugin, message);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<WaitingPod>>> {
        self.pods.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<WaitingPod>>> {
        self.pods.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A duration as Go's `time.Duration.String` prints it ("10s", "1m30s", "15m0s", "1.5s",
/// "250ms"), for messages that must read as upstream's.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let secs = d.as_secs();
    let (hours, minutes) = (secs / 3600, secs / 60 % 60);
    let seconds = decimal(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `value / unit` with the fraction's trailing zeros dropped.
fn decimal(value: u128, unit: u128) -> String {
    let (whole, fraction) = (value / unit, value % unit);
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let digits = format!("{fraction:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}
