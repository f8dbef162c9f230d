//! The cluster events the queue itself produces or classifies (upstream's
//! `framework/events.go`), with upstream's labels, which appear in
//! `scheduler_queue_incoming_pods_total{event}`.

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{pod_requests, ActionType, ClusterEvent, EventResource};

/// Pods that stayed unschedulable longer than `podMaxInUnschedulablePodsDuration`.
pub const EVENT_UNSCHEDULABLE_TIMEOUT: ClusterEvent = ClusterEvent::new(
    EventResource::WildCard,
    ActionType::ALL,
    "UnschedulableTimeout",
);
/// A plugin asked for a pod to be retried (`activate`).
pub const EVENT_FORCE_ACTIVATE: ClusterEvent =
    ClusterEvent::new(EventResource::WildCard, ActionType::ALL, "ForceActivate");
pub const EVENT_ASSIGNED_POD_ADD: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::ADD,
    "AssignedPodAdd",
);
pub const EVENT_ASSIGNED_POD_UPDATE: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::UPDATE,
    "AssignedPodUpdate",
);
pub const EVENT_ASSIGNED_POD_DELETE: ClusterEvent = ClusterEvent::new(
    EventResource::AssignedPod,
    ActionType::DELETE,
    "AssignedPodDelete",
);
pub const EVENT_UNSCHEDULED_POD_ADD: ClusterEvent = ClusterEvent::new(
    EventResource::UnscheduledPod,
    ActionType::ADD,
    "UnschedulablePodAdd",
);
pub const EVENT_UNSCHEDULED_POD_UPDATE: ClusterEvent = ClusterEvent::new(
    EventResource::UnscheduledPod,
    ActionType::UPDATE,
    "UnschedulablePodUpdate",
);
pub const EVENT_UNSCHEDULED_POD_DELETE: ClusterEvent = ClusterEvent::new(
    EventResource::UnscheduledPod,
    ActionType::DELETE,
    "UnschedulablePodDelete",
);

/// Labels of the queue's own moves (no cluster event behind them).
pub const SCHEDULE_ATTEMPT_FAILURE: &str = "ScheduleAttemptFailure";
pub const BACKOFF_COMPLETE: &str = "BackoffComplete";
pub const POP_FROM_BACKOFF_Q: &str = "PopFromBackoffQ";

/// The label upstream gives `{resource}{action}` for a pod update.
fn update_label(resource: EventResource, action: ActionType) -> &'static str {
    let assigned = resource == EventResource::AssignedPod;
    match (assigned, action) {
        (true, ActionType::UPDATE_POD_LABEL) => "AssignedPodUpdatePodLabel",
        (true, ActionType::UPDATE_POD_SCALE_DOWN) => "AssignedPodUpdatePodScaleDown",
        (true, ActionType::UPDATE_POD_TOLERATIONS) => "AssignedPodUpdatePodTolerations",
        (true, ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED) => {
            "AssignedPodUpdatePodSchedulingGatesEliminated"
        }
        (true, _) => "AssignedPodUpdate",
        (false, ActionType::UPDATE_POD_LABEL) => "UnschedulablePodUpdatePodLabel",
        (false, ActionType::UPDATE_POD_SCALE_DOWN) => "UnschedulablePodUpdatePodScaleDown",
        (false, ActionType::UPDATE_POD_TOLERATIONS) => "UnschedulablePodUpdatePodTolerations",
        (false, ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED) => {
            "UnschedulablePodUpdatePodSchedulingGatesEliminated"
        }
        (false, _) => "UnschedulablePodUpdate",
    }
}

/// Whether any request of `old` went down or away in `new` (an in-place scale-down).
fn scaled_down(old: &Pod, new: &Pod) -> bool {
    let (old, new) = (pod_requests(old, false), pod_requests(new, false));
    old.milli_cpu > new.milli_cpu
        || old.memory > new.memory
        || old.ephemeral_storage > new.ephemeral_storage
        || old
            .scalar
            .iter()
            .any(|(name, v)| new.scalar.get(name).is_none_or(|n| n < v))
}

/// What a pod update changed that scheduling cares about (upstream's
/// `PodSchedulingPropertiesChange`): one event per kind of change, on `AssignedPod` when the
/// new pod has a node and `UnscheduledPod` otherwise; a plain update when none applies.
pub fn pod_scheduling_properties_change(old: &Pod, new: &Pod) -> Vec<ClusterEvent> {
    let assigned = new
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let resource = if assigned {
        EventResource::AssignedPod
    } else {
        EventResource::UnscheduledPod
    };
    let spec = |p: &Pod| p.spec.clone().unwrap_or_default();
    let (old_spec, new_spec) = (spec(old), spec(new));
    let mut actions = Vec::new();
    if old.metadata.labels != new.metadata.labels {
        actions.push(ActionType::UPDATE_POD_LABEL);
    }
    if scaled_down(old, new) {
        actions.push(ActionType::UPDATE_POD_SCALE_DOWN);
    }
    let gates =
        |s: &k8s_openapi::api::core::v1::PodSpec| s.scheduling_gates.as_ref().map_or(0, Vec::len);
    if gates(&new_spec) == 0 && gates(&old_spec) != 0 {
        actions.push(ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED);
    }
    if old_spec.tolerations != new_spec.tolerations {
        actions.push(ActionType::UPDATE_POD_TOLERATIONS);
    }
    if actions.is_empty() {
        actions.push(ActionType::UPDATE_OTHER);
    }
    actions
        .into_iter()
        .map(|action| ClusterEvent::new(resource, action, update_label(resource, action)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn classifies_pod_updates() {
        let old = pod(json!({
            "metadata": {"name": "p", "labels": {"a": "1"}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}],
                     "schedulingGates": [{"name": "g"}]},
        }));
        let new = pod(json!({
            "metadata": {"name": "p", "labels": {"a": "2"}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
                     "tolerations": [{"key": "k", "operator": "Exists"}]},
        }));
        let labels: Vec<&str> = pod_scheduling_properties_change(&old, &new)
            .iter()
            .map(|e| e.label)
            .collect();
        assert_eq!(
            labels,
            [
                "UnschedulablePodUpdatePodLabel",
                "UnschedulablePodUpdatePodScaleDown",
                "UnschedulablePodUpdatePodSchedulingGatesEliminated",
                "UnschedulablePodUpdatePodTolerations",
            ]
        );

        let mut bound = old.clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some("n1".into());
        }
        let mut annotated = bound.clone();
        annotated.metadata.annotations = Some([("x".to_string(), "y".to_string())].into());
        let events = pod_scheduling_properties_change(&bound, &annotated);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].resource, EventResource::AssignedPod);
        assert_eq!(events[0].action, ActionType::UPDATE_OTHER);
        assert_eq!(events[0].label, "AssignedPodUpdate");
    }
}
