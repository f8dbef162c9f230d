//! Pods that name a scheduler this kube-scheduler has no profile for.
//!
//! Upstream ignores such pods silently (another scheduler may own that name), so a typo in
//! `schedulerName` leaves a pod Pending with no word of why. This scheduler still leaves them
//! alone — it never schedules them nor touches their status — but when one is still unbound
//! after a grace period (`--unknown-scheduler-warning-after`, 30 s; 0 turns it off) it records
//! one `FailedScheduling` warning on the pod naming the missing profile. A scheduler that does
//! own the name binds the pod well within the grace period, so its pods never get one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::events::CoreEventRecorder;
use client::informer::Event;
use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::config::scheduler_name;
use crate::eventhandlers::is_assigned;

/// Tracks pending pods of unknown schedulers and warns about the ones that stay pending.
pub struct UnknownProfiles {
    profiles: BTreeSet<String>,
    grace: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// uid -> (the pod, when it was first seen pending).
    pending: HashMap<String, (Arc<Pod>, Instant)>,
    /// Pods already warned about: one warning per pod.
    reported: HashSet<String>,
}

fn uid(pod: &Pod) -> Option<&str> {
    pod.metadata.uid.as_deref()
}

fn is_pending(pod: &Pod) -> bool {
    !is_assigned(pod)
        && pod.metadata.deletion_timestamp.is_none()
        && !matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded") | Some("Failed")
        )
}

impl UnknownProfiles {
    pub fn new(profiles: impl IntoIterator<Item = String>, grace: Duration) -> UnknownProfiles {
        UnknownProfiles {
            profiles: profiles.into_iter().collect(),
            grace,
            state: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, pod: Arc<Pod>, now: Instant) {
        let Some(id) = uid(&pod).map(str::to_string) else {
            return;
        };
        let mut state = self.lock();
        if is_pending(&pod) && !self.profiles.contains(scheduler_name(&pod)) {
            if !state.reported.contains(&id) {
                let since = state.pending.get(&id).map_or(now, |(_, since)| *since);
                state.pending.insert(id, (pod, since));
            }
        } else {
            state.pending.remove(&id);
        }
    }

    /// The pod informer's events.
    pub fn handle(&self, event: Event<Pod>) {
        let now = Instant::now();
        match event {
            Event::Add(pod) => self.observe(pod, now),
            Event::Update { new, .. } => self.observe(new, now),
            Event::Delete(deleted) => {
                let mut state = self.lock();
                if let Some(id) = uid(deleted.object()) {
                    state.pending.remove(id);
                    state.reported.remove(id);
                }
            }
        }
    }

    /// The pods pending for longer than the grace period as of `now`, each handed out once.
    fn overdue(&self, now: Instant) -> Vec<Arc<Pod>> {
        let mut state = self.lock();
        let due: Vec<String> = state
            .pending
            .iter()
            .filter(|(_, (_, since))| now.duration_since(*since) >= self.grace)
            .map(|(id, _)| id.clone())
            .collect();
        let mut pods = Vec::with_capacity(due.len());
        for id in due {
            if let Some((pod, _)) = state.pending.remove(&id) {
                state.reported.insert(id);
                pods.push(pod);
            }
        }
        pods
    }

    /// The warning's text.
    pub fn message(&self, pod: &Pod) -> String {
        let profiles: Vec<String> = self.profiles.iter().map(|p| format!("{p:?}")).collect();
        format!(
            "no profile of this scheduler is named {:?} (its profiles: {}); the pod stays pending until a scheduler with that name runs",
            scheduler_name(pod),
            profiles.join(", ")
        )
    }

    /// Checks for overdue pods until `stop` resolves; a zero grace period turns the check off.
    pub async fn run(
        self: Arc<Self>,
        recorder: CoreEventRecorder,
        stop: impl std::future::Future<Output = ()>,
    ) {
        if self.grace.is_zero() {
            return;
        }
        let period = (self.grace / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = ticker.tick() => {}
            }
            for pod in self.overdue(Instant::now()) {
                let message = self.message(&pod);
                tracing::info!(
                    pod = %format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(),
                        pod.metadata.name.as_deref().unwrap_or_default()),
                    scheduler = scheduler_name(&pod),
                    "pod names a scheduler without a profile here"
                );
                recorder.warning(
                    &client::events::object_reference(&*pod),
                    "FailedScheduling",
                    &message,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, scheduler: &str, node: Option<&str>) -> Arc<Pod> {
        let mut spec =
            json!({"containers": [{"name": "c", "image": "i"}], "schedulerName": scheduler});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "ns", "uid": uid},
                "spec": spec,
            }))
            .unwrap_or_default(),
        )
    }

    fn tracker() -> UnknownProfiles {
        UnknownProfiles::new(["default-scheduler".to_string()], Duration::from_secs(30))
    }

    #[test]
    fn pods_of_unknown_schedulers_are_reported_once_after_the_grace_period() {
        let t = tracker();
        let start = Instant::now();
        t.observe(pod("a", "typo-scheduler", None), start);
        t.observe(pod("b", "default-scheduler", None), start);
        assert!(t.overdue(start + Duration::from_secs(29)).is_empty());
        // An update does not restart the clock.
        t.observe(
            pod("a", "typo-scheduler", None),
            start + Duration::from_secs(20),
        );
        let due = t.overdue(start + Duration::from_secs(30));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].metadata.name.as_deref(), Some("a"));
        assert_eq!(
            t.message(&due[0]),
            "no profile of this scheduler is named \"typo-scheduler\" (its profiles: \"default-scheduler\"); the pod stays pending until a scheduler with that name runs"
        );
        // Once only, even when the pod changes again.
        t.observe(
            pod("a", "typo-scheduler", None),
            start + Duration::from_secs(40),
        );
        assert!(t.overdue(start + Duration::from_secs(100)).is_empty());
    }

    #[test]
    fn pods_bound_or_deleted_in_time_are_not_reported() {
        let t = tracker();
        let start = Instant::now();
        t.observe(pod("a", "other-scheduler", None), start);
        t.observe(pod("b", "other-scheduler", None), start);
        // The other scheduler binds a; b is deleted.
        t.observe(
            pod("a", "other-scheduler", Some("node-1")),
            start + Duration::from_secs(1),
        );
        t.handle(Event::Delete(client::informer::Deleted::Final(pod(
            "b",
            "other-scheduler",
            None,
        ))));
        assert!(t.overdue(start + Duration::from_secs(60)).is_empty());
    }
}
