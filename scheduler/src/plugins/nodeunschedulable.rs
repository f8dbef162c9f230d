//! NodeUnschedulable (upstream's `nodeunschedulable`): filters out nodes with
//! `spec.unschedulable` (cordoned), unless the pod tolerates the
//! `node.kubernetes.io/unschedulable:NoSchedule` taint. Preemption cannot help.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Pod, Taint};

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, QueueingHint, Status,
};
use crate::plugins::helper::{
    node_of, pod_of, pod_tolerations, tolerations_tolerate_taint, TAINT_EFFECT_NO_SCHEDULE,
    TAINT_NODE_UNSCHEDULABLE,
};

pub const NAME: &str = "NodeUnschedulable";

/// Upstream's `ErrReasonUnschedulable`.
pub const ERR_REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";

#[derive(Debug, Default)]
pub struct NodeUnschedulable;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeUnschedulable))
}

fn unschedulable_taint() -> Taint {
    Taint {
        key: TAINT_NODE_UNSCHEDULABLE.into(),
        effect: TAINT_EFFECT_NO_SCHEDULE.into(),
        ..Taint::default()
    }
}

fn tolerates_unschedulable(pod: &Pod) -> bool {
    tolerations_tolerate_taint(pod_tolerations(pod), &unschedulable_taint())
}

fn is_unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

impl Plugin for NodeUnschedulable {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![
            // `spec.unschedulable` changes count as taint updates, as upstream.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::Node,
                    ActionType(ActionType::ADD.0 | ActionType::UPDATE_NODE_TAINT.0),
                    "NodeAdd|UpdateNodeTaint",
                ),
                Arc::new(is_schedulable_after_node_change),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::UnscheduledPod,
                    ActionType::UPDATE_POD_TOLERATIONS,
                    "UnschedulablePodUpdatePodTolerations",
                ),
                Arc::new(is_schedulable_after_pod_toleration_change),
            ),
        ]
    }
}

impl FilterPlugin for NodeUnschedulable {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        if is_unschedulable(n) && !tolerates_unschedulable(&pod.pod) {
            return Status::unresolvable(ERR_REASON_UNSCHEDULABLE);
        }
        Status::success()
    }
}

/// Queue when a node appears schedulable, or becomes so.
fn is_schedulable_after_node_change(
    _pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = node_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    let was_schedulable = node_of(old)?.is_some_and(|n| !is_unschedulable(n));
    if !was_schedulable && !is_unschedulable(modified) {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

/// Queue when the pod itself now tolerates the unschedulable taint (tolerations can only be
/// added, so a rejected pod did not tolerate it before).
fn is_schedulable_after_pod_toleration_change(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = pod_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    if modified.metadata.uid == pod.metadata.uid && tolerates_unschedulable(modified) {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use serde_json::{json, Value};

    fn pod(tolerations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [], "tolerations": tolerations},
        }))
        .expect("pod")
    }

    fn node(unschedulable: Option<bool>) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": "n1"},
            "spec": {"unschedulable": unschedulable},
        }))
        .expect("node")
    }

    #[test]
    fn filter_cases() {
        let cases = [
            (json!([]), Some(true), Some(ERR_REASON_UNSCHEDULABLE)),
            (json!([]), Some(false), None),
            (json!([]), None, None),
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
                Some(true),
                None,
            ),
            (json!([{"operator": "Exists"}]), Some(true), None),
            (
                json!([{"key": "node.kubernetes.io/unschedulable", "effect": "NoExecute"}]),
                Some(true),
                Some(ERR_REASON_UNSCHEDULABLE),
            ),
        ];
        for (i, (tols, unsched, want)) in cases.into_iter().enumerate() {
            let p = PodInfo::new(Arc::new(pod(tols)));
            let n = NodeInfo::new(Some(Arc::new(node(unsched))));
            let s = FilterPlugin::filter(&NodeUnschedulable, &CycleState::new(), &p, &n);
            match want {
                None => assert!(s.is_success(), "case {i}: {s}"),
                Some(reason) => {
                    assert_eq!(s.code(), Code::UnschedulableAndUnresolvable, "case {i}");
                    assert_eq!(s.message(), reason);
                }
            }
        }
    }

    #[test]
    fn hints() {
        let events = NodeUnschedulable.events_to_register();
        let node_hint = events[0].hint.clone().expect("hint");
        let pod_hint = events[1].hint.clone().expect("hint");
        let target = pod(json!([]));
        let n = |u| EventObject::Node(Arc::new(node(Some(u))));
        // Added schedulable node; uncordoned; still cordoned; newly cordoned.
        assert_eq!(
            node_hint(&target, None, Some(&n(false))),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            node_hint(&target, None, Some(&n(true))),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            node_hint(&target, Some(&n(true)), Some(&n(false))),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            node_hint(&target, Some(&n(true)), Some(&n(true))),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            node_hint(&target, Some(&n(false)), Some(&n(true))),
            Ok(QueueingHint::Skip)
        );
        let tolerant = EventObject::Pod(Arc::new(pod(
            json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}]),
        )));
        let still = EventObject::Pod(Arc::new(pod(
            json!([{"key": "other", "operator": "Exists"}]),
        )));
        let old = EventObject::Pod(Arc::new(target.clone()));
        assert_eq!(
            pod_hint(&target, Some(&old), Some(&tolerant)),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            pod_hint(&target, Some(&old), Some(&still)),
            Ok(QueueingHint::Skip)
        );
    }
}
