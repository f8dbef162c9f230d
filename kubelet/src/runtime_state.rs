//! The runtime's health as the Ready condition reports it, kept as upstream's `runtimeState`:
//! the runtime is polled (CRI `Status`, every 5 s); a RuntimeReady condition that is false or
//! missing is a runtime error, a NetworkReady one a network error; and when no successful check
//! happened within 30 s the runtime "is down". A failed call changes nothing by itself (the
//! last answer stands until the 30 s pass), as upstream.
//!
//! One state per runtime, shared by every node agent using it; agents subscribe to hear of
//! changes at once instead of at their next status tick.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::runtime::{NodeRuntime, RuntimeVersion, NETWORK_READY, RUNTIME_READY};

/// Upstream's `maxWaitForContainerRuntime`.
pub const BASE_RUNTIME_SYNC_THRESHOLD: Duration = Duration::from_secs(30);
/// How often upstream's `updateRuntimeUp` runs.
pub const RUNTIME_POLL_PERIOD: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Default)]
struct Inner {
    last_base_runtime_sync: Option<Instant>,
    runtime_error: Option<String>,
    network_error: Option<String>,
    version: Option<RuntimeVersion>,
}

pub struct RuntimeState {
    inner: Mutex<Inner>,
    threshold: Duration,
    changed: watch::Sender<u64>,
}

impl Default for RuntimeState {
    fn default() -> Self {
        RuntimeState::new(BASE_RUNTIME_SYNC_THRESHOLD)
    }
}

impl RuntimeState {
    pub fn new(threshold: Duration) -> RuntimeState {
        RuntimeState {
            inner: Mutex::new(Inner::default()),
            threshold,
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that sees a new value whenever the errors or the version change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn notify(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Upstream's `runtimeErrors`.
    pub fn runtime_errors(&self, now: Instant) -> Vec<String> {
        let inner = self.lock();
        let mut errors = Vec::new();
        match inner.last_base_runtime_sync {
            None => {
                errors.push("container runtime status check may not have completed yet".to_string())
            }
            Some(t) if t + self.threshold <= now => {
                errors.push("container runtime is down".to_string())
            }
            Some(_) => {}
        }
        if let Some(err) = &inner.runtime_error {
            errors.push(err.clone());
        }
        errors
    }

    /// Upstream's `networkErrors`.
    pub fn network_errors(&self) -> Vec<String> {
        self.lock().network_error.iter().cloned().collect()
    }

    /// Everything that keeps the node from being Ready, in upstream's order.
    pub fn ready_errors(&self, now: Instant) -> Vec<String> {
        let mut errors = self.runtime_errors(now);
        errors.extend(self.network_errors());
        errors
    }

    /// The last version the runtime reported.
    pub fn version(&self) -> Option<RuntimeVersion> {
        self.lock().version.clone()
    }

    /// One `updateRuntimeUp`: asks the runtime for its status (and version), records the
    /// errors, and marks a successful sync when the runtime is ready.
    pub async fn update_runtime_up(&self, runtime: &dyn NodeRuntime) {
        let version = runtime.version().await;
        let status = runtime.status().await;
        let before = self.lock().clone();
        {
            let mut inner = self.lock();
            match version {
                Ok(v) => inner.version = Some(v),
                Err(err) => tracing::debug!(error = %err, "runtime version check failed"),
            }
            match status {
                Err(err) => {
                    tracing::error!(error = %err, "Container runtime sanity check failed");
                }
                Ok(status) => {
                    let describe = |c: Option<&crate::runtime::RuntimeCondition>| {
                        c.map(|c| c.to_string())
                            .unwrap_or_else(|| "<nil>".to_string())
                    };
                    let network = status.condition(NETWORK_READY);
                    inner.network_error = match network {
                        Some(c) if c.status => None,
                        other => Some(format!(
                            "container runtime network not ready: {}",
                            describe(other)
                        )),
                    };
                    let runtime_ready = status.condition(RUNTIME_READY);
                    match runtime_ready {
                        Some(c) if c.status => {
                            inner.runtime_error = None;
                            inner.last_base_runtime_sync = Some(Instant::now());
                        }
                        other => {
                            inner.runtime_error =
                                Some(format!("container runtime not ready: {}", describe(other)));
                        }
                    }
                }
            }
        }
        let after = self.lock().clone();
        if before.runtime_error != after.runtime_error
            || before.network_error != after.network_error
            || before.version != after.version
            || before.last_base_runtime_sync.is_none() != after.last_base_runtime_sync.is_none()
        {
            self.notify();
        }
    }

    /// Polls `runtime` every `period` until `stop` fires; also notices when the last good sync
    /// grows older than the threshold (the runtime "is down") and tells subscribers.
    pub async fn run(
        self: Arc<Self>,
        runtime: Arc<dyn NodeRuntime>,
        period: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut was_down = false;
        loop {
            self.update_runtime_up(runtime.as_ref()).await;
            let down = self
                .runtime_errors(Instant::now())
                .iter()
                .any(|e| e == "container runtime is down");
            if down != was_down {
                was_down = down;
                self.notify();
            }
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// Upstream's aggregate error text: one message as is, several deduplicated in brackets.
pub fn aggregate(errors: &[String]) -> Option<String> {
    let mut seen: Vec<&str> = Vec::new();
    for e in errors {
        if !seen.contains(&e.as_str()) {
            seen.push(e);
        }
    }
    match seen.as_slice() {
        [] => None,
        [one] => Some((*one).to_string()),
        many => Some(format!("[{}]", many.join(", "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::SimRuntime;

    #[tokio::test(start_paused = true)]
    async fn errors_follow_the_runtime_like_upstream() {
        let state = RuntimeState::default();
        let sim = SimRuntime::new();
        assert_eq!(
            state.ready_errors(Instant::now()),
            vec!["container runtime status check may not have completed yet"]
        );
        state.update_runtime_up(&sim).await;
        assert!(state.ready_errors(Instant::now()).is_empty());
        assert_eq!(state.version().unwrap().runtime_name, "sim");

        sim.set_network_ready(false, "NetworkPluginNotReady", "cni plugin not initialized");
        state.update_runtime_up(&sim).await;
        assert_eq!(
            aggregate(&state.ready_errors(Instant::now())).unwrap(),
            "container runtime network not ready: NetworkReady=false \
             reason:NetworkPluginNotReady message:cni plugin not initialized"
        );

        // The runtime goes away: nothing changes until the threshold passes.
        sim.set_down(true);
        state.update_runtime_up(&sim).await;
        assert_eq!(state.runtime_errors(Instant::now()), Vec::<String>::new());
        tokio::time::advance(BASE_RUNTIME_SYNC_THRESHOLD).await;
        assert_eq!(
            aggregate(&state.ready_errors(Instant::now())).unwrap(),
            "[container runtime is down, container runtime network not ready: NetworkReady=false \
             reason:NetworkPluginNotReady message:cni plugin not initialized]"
        );

        // Back, but the runtime itself not ready.
        sim.set_down(false);
        sim.set_network_ready(true, "", "");
        sim.set_runtime_ready(false, "Starting", "still starting");
        state.update_runtime_up(&sim).await;
        assert_eq!(
            state.ready_errors(Instant::now()),
            vec![
                "container runtime is down".to_string(),
                "container runtime not ready: RuntimeReady=false reason:Starting message:still starting"
                    .to_string()
            ]
        );
        sim.set_runtime_ready(true, "", "");
        state.update_runtime_up(&sim).await;
        assert!(state.ready_errors(Instant::now()).is_empty());
    }

    #[tokio::test]
    async fn subscribers_hear_of_changes() {
        let state = RuntimeState::default();
        let sim = SimRuntime::new();
        let mut rx = state.subscribe();
        state.update_runtime_up(&sim).await;
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        state.update_runtime_up(&sim).await;
        assert!(!rx.has_changed().unwrap(), "nothing changed");
        sim.set_network_ready(false, "x", "y");
        state.update_runtime_up(&sim).await;
        assert!(rx.has_changed().unwrap());
    }

    #[test]
    fn aggregate_dedups() {
        assert_eq!(aggregate(&[]), None);
        let a = "a".to_string();
        assert_eq!(aggregate(&[a.clone(), a.clone()]).unwrap(), "a");
        assert_eq!(aggregate(&[a.clone(), "b".into()]).unwrap(), "[a, b]");
    }
}
