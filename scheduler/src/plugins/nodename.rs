//! NodeName (upstream's `nodename`): a pod that names its node (`spec.nodeName`) fits only
//! there. Preemption cannot help.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, QueueingHint, Status,
};
use crate::plugins::helper::node_of;

pub const NAME: &str = "NodeName";

/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't match the requested node name";

#[derive(Debug, Default)]
pub struct NodeName;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodeName))
}

/// Whether the pod may run on `node` as far as `spec.nodeName` goes (upstream's `Fits`).
pub fn fits(pod: &Pod, node: &str) -> bool {
    match pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
        None | Some("") => true,
        Some(name) => name == node,
    }
}

impl Plugin for NodeName {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![ClusterEventWithHint::with_hint(
            ClusterEvent::new(EventResource::Node, ActionType::ADD, "NodeAdd"),
            Arc::new(is_schedulable_after_node_add),
        )]
    }
}

impl FilterPlugin for NodeName {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        if node.node().is_none() {
            return Status::error("node not found");
        }
        if !fits(&pod.pod, node.name()) {
            return Status::unresolvable(ERR_REASON);
        }
        Status::success()
    }
}

fn is_schedulable_after_node_add(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(added) = node_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    if fits(pod, added.metadata.name.as_deref().unwrap_or("")) {
        Ok(QueueingHint::Queue)
    } else {
        Ok(QueueingHint::Skip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn pod(node_name: Option<&str>) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [], "nodeName": node_name},
        }))
        .expect("pod")
    }

    fn node(name: &str) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("node")
    }

    #[test]
    fn filter_cases() {
        let cases = [
            (None, "foo", true),
            (Some("foo"), "foo", true),
            (Some("bar"), "foo", false),
        ];
        for (want_node, node_name, fits) in cases {
            let p = PodInfo::new(Arc::new(pod(want_node)));
            let n = NodeInfo::new(Some(Arc::new(node(node_name))));
            let s = FilterPlugin::filter(&NodeName, &CycleState::new(), &p, &n);
            if fits {
                assert!(s.is_success(), "{want_node:?}");
            } else {
                assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
                assert_eq!(s.message(), ERR_REASON);
            }
        }
    }

    #[test]
    fn only_the_named_node_being_added_requeues() {
        let hint = NodeName.events_to_register()[0].hint.clone().expect("hint");
        let added = |n: &str| EventObject::Node(Arc::new(node(n)));
        assert_eq!(
            hint(&pod(Some("foo")), None, Some(&added("foo"))),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            hint(&pod(Some("foo")), None, Some(&added("bar"))),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            hint(&pod(None), None, Some(&added("bar"))),
            Ok(QueueingHint::Queue)
        );
    }
}
