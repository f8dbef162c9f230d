//! SchedulingGates (upstream's `schedulinggates`): a pod with `spec.schedulingGates` stays out
//! of activeQ until every gate is removed; the pod update that removes the last gate brings it
//! back.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, EventObject, EventResource, Handle, Plugin,
    PreEnqueuePlugin, QueueingHint, Status,
};
use crate::plugins::helper::pod_of;

pub const NAME: &str = "SchedulingGates";

#[derive(Debug, Default)]
pub struct SchedulingGates;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(SchedulingGates))
}

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![ClusterEventWithHint::with_hint(
            ClusterEvent::new(
                EventResource::UnscheduledPod,
                ActionType::UPDATE_POD_SCHEDULING_GATES_ELIMINATED,
                "UnschedulablePodUpdatePodSchedulingGatesEliminated",
            ),
            Arc::new(is_schedulable_after_gates_eliminated),
        )]
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    /// UnschedulableAndUnresolvable, as upstream: the pod is parked until an update.
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let gates: Vec<&str> = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduling_gates.as_ref())
            .into_iter()
            .flatten()
            .map(|g| g.name.as_str())
            .collect();
        if gates.is_empty() {
            return Status::success();
        }
        // Go prints a []string as `[a b]`.
        Status::unresolvable(format!(
            "waiting for scheduling gates: [{}]",
            gates.join(" ")
        ))
    }
}

/// Only the gated pod's own update can ungate it.
fn is_schedulable_after_gates_eliminated(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = pod_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    if modified.metadata.uid != pod.metadata.uid {
        return Ok(QueueingHint::Skip);
    }
    Ok(QueueingHint::Queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::json;

    fn pod(uid: &str, gates: &[&str]) -> Pod {
        let gates: Vec<_> = gates.iter().map(|g| json!({"name": g})).collect();
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": uid},
            "spec": {"containers": [], "schedulingGates": gates},
        }))
        .expect("pod")
    }

    #[test]
    fn gated_pods_wait_with_upstreams_message() {
        let pl = SchedulingGates;
        assert!(PreEnqueuePlugin::pre_enqueue(&pl, &pod("u", &[])).is_success());
        let s = PreEnqueuePlugin::pre_enqueue(&pl, &pod("u", &["example.com/a", "example.com/b"]));
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(
            s.message(),
            "waiting for scheduling gates: [example.com/a example.com/b]"
        );
        let no_spec: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).expect("pod");
        assert!(PreEnqueuePlugin::pre_enqueue(&pl, &no_spec).is_success());
    }

    #[test]
    fn only_the_pods_own_update_requeues_it() {
        let target = pod("u1", &["g"]);
        let events = SchedulingGates.events_to_register();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event.resource, EventResource::UnscheduledPod);
        let hint = events[0].hint.clone().expect("hint");
        let old = EventObject::Pod(Arc::new(pod("u1", &["g"])));
        let same = EventObject::Pod(Arc::new(pod("u1", &[])));
        let other = EventObject::Pod(Arc::new(pod("u2", &[])));
        assert_eq!(
            hint(&target, Some(&old), Some(&same)),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            hint(&target, Some(&old), Some(&other)),
            Ok(QueueingHint::Skip)
        );
        let node = EventObject::Node(Arc::new(Default::default()));
        assert!(hint(&target, None, Some(&node)).is_err());
    }
}
