//! NodePorts (upstream's `nodeports`): a pod asking for host ports fits only on nodes where
//! none of them is taken, a port bound to 0.0.0.0 colliding with the same port on any address.
//! The verdict is Unschedulable: preempting the pod that holds the port helps.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    pod_host_ports, ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject,
    EventResource, FilterPlugin, Handle, HostPortInfo, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreFilterResult, QueueingHint, Snapshot, Status,
};
use crate::plugins::helper::pod_of;

pub const NAME: &str = "NodePorts";

/// Upstream's `ErrReason`.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

const PRE_FILTER_STATE_KEY: &str = "PreFilterNodePorts";

/// The host ports the pod wants, as (ip, protocol, port).
#[derive(Debug, Clone)]
struct PreFilterState(Vec<(String, String, i32)>);

#[derive(Debug, Default)]
pub struct NodePorts;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(NodePorts))
}

/// Whether none of `want` collides with `used` (upstream's `fitsPorts`).
pub fn fits_ports(want: &[(String, String, i32)], used: &HostPortInfo) -> bool {
    !want
        .iter()
        .any(|(ip, protocol, port)| used.conflicts(ip, protocol, *port))
}

impl Plugin for NodePorts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![
            // Host ports are immutable, so only a pod going away can free one.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::DELETE,
                    "AssignedPodDelete",
                ),
                Arc::new(is_schedulable_after_pod_deleted),
            ),
            ClusterEventWithHint::new(ClusterEvent::new(
                EventResource::Node,
                ActionType::ADD,
                "NodeAdd",
            )),
        ]
    }
}

impl PreFilterPlugin for NodePorts {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let ports = pod_host_ports(&pod.pod);
        if ports.is_empty() {
            return (None, Status::skip());
        }
        state.write(PRE_FILTER_STATE_KEY, PreFilterState(ports));
        (None, Status::success())
    }
}

impl FilterPlugin for NodePorts {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(want) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return Status::error(format!(
                "reading {PRE_FILTER_STATE_KEY:?} from cycleState: not found"
            ));
        };
        if !fits_ports(&want.0, &node.used_ports) {
            return Status::unschedulable(ERR_REASON);
        }
        Status::success()
    }
}

/// Queue only when the deleted pod was bound and held a port this pod wants.
fn is_schedulable_after_pod_deleted(
    pod: &Pod,
    old: Option<&EventObject>,
    _new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(deleted) = pod_of(old)? else {
        return Ok(QueueingHint::Skip);
    };
    let bound = deleted
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !bound {
        return Ok(QueueingHint::Skip);
    }
    let freed = pod_host_ports(deleted);
    if freed.is_empty() {
        return Ok(QueueingHint::Skip);
    }
    let mut in_use = HostPortInfo::default();
    for (ip, protocol, port) in &freed {
        in_use.add(ip, protocol, *port);
    }
    if fits_ports(&pod_host_ports(pod), &in_use) {
        return Ok(QueueingHint::Skip);
    }
    Ok(QueueingHint::Queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Code;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{json, Value};

    /// A pod with containers using `ports` as "protocol/ip/port" (upstream's test notation).
    fn pod_with(ports: &[&str], node_name: Option<&str>) -> Pod {
        let ports: Vec<Value> = ports
            .iter()
            .map(|p| {
                let parts: Vec<&str> = p.split('/').collect();
                json!({
                    "containerPort": 80,
                    "protocol": parts[0],
                    "hostIP": parts[1],
                    "hostPort": parts[2].parse::<i32>().expect("port"),
                })
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c", "ports": ports}], "nodeName": node_name},
        }))
        .expect("pod")
    }

    fn node_with(pods: &[Pod]) -> NodeInfo {
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).expect("node");
        let mut info = NodeInfo::new(Some(Arc::new(node)));
        for (i, p) in pods.iter().enumerate() {
            let mut p = p.clone();
            p.metadata.uid = Some(format!("existing-{i}"));
            info.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
        }
        info
    }

    fn run(pod: &Pod, node: &NodeInfo) -> Status {
        let info = PodInfo::new(Arc::new(pod.clone()));
        let mut state = CycleState::new();
        let (_, s) =
            PreFilterPlugin::pre_filter(&NodePorts, &mut state, &info, &Snapshot::default());
        if s.is_skip() {
            return Status::success();
        }
        assert!(s.is_success());
        FilterPlugin::filter(&NodePorts, &state, &info, node)
    }

    #[test]
    fn filter_cases() {
        let cases: Vec<(&str, Vec<&str>, Vec<&str>, bool)> = vec![
            ("nothing running", vec![], vec![], true),
            (
                "other port",
                vec!["UDP/127.0.0.1/8080"],
                vec!["UDP/127.0.0.1/9090"],
                true,
            ),
            (
                "same udp port",
                vec!["UDP/127.0.0.1/8080"],
                vec!["UDP/127.0.0.1/8080"],
                false,
            ),
            (
                "same tcp port",
                vec!["TCP/127.0.0.1/8080"],
                vec!["TCP/127.0.0.1/8080"],
                false,
            ),
            (
                "different host ip",
                vec!["TCP/127.0.0.1/8080"],
                vec!["TCP/127.0.0.2/8080"],
                true,
            ),
            (
                "different protocol",
                vec!["UDP/127.0.0.1/8080"],
                vec!["TCP/127.0.0.1/8080"],
                true,
            ),
            (
                "second udp port conflict",
                vec!["UDP/127.0.0.1/8000", "UDP/127.0.0.1/8080"],
                vec!["UDP/127.0.0.1/8080"],
                false,
            ),
            (
                "first tcp port conflict",
                vec!["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8080"],
                vec!["TCP/127.0.0.1/8001", "UDP/127.0.0.1/8081"],
                false,
            ),
            (
                "first tcp port conflict due to 0.0.0.0 hostIP",
                vec!["TCP/0.0.0.0/8001"],
                vec!["TCP/127.0.0.1/8001"],
                false,
            ),
            (
                "TCP hostPort conflict due to 0.0.0.0 hostIP",
                vec!["TCP/10.0.10.10/8001", "TCP/0.0.0.0/8001"],
                vec!["TCP/127.0.0.1/8001"],
                false,
            ),
            (
                "second tcp port conflict to 0.0.0.0 hostIP",
                vec!["TCP/127.0.0.1/8001"],
                vec!["TCP/0.0.0.0/8001"],
                false,
            ),
            (
                "second different protocol",
                vec!["UDP/127.0.0.1/8001"],
                vec!["TCP/0.0.0.0/8001"],
                true,
            ),
            (
                "UDP hostPort conflict due to 0.0.0.0 hostIP",
                vec!["UDP/127.0.0.1/8001"],
                vec!["TCP/0.0.0.0/8001", "UDP/0.0.0.0/8001"],
                false,
            ),
        ];
        for (name, want, used, fits) in cases {
            let node = node_with(&[pod_with(&used, Some("n"))]);
            let s = run(&pod_with(&want, None), &node);
            if fits {
                assert!(s.is_success(), "{name}: {s}");
            } else {
                assert_eq!(s.code(), Code::Unschedulable, "{name}");
                assert_eq!(s.message(), ERR_REASON, "{name}");
            }
        }
    }

    #[test]
    fn a_pod_without_host_ports_skips_the_filter() {
        let mut state = CycleState::new();
        let info = PodInfo::new(Arc::new(pod_with(&[], None)));
        let (_, s) =
            PreFilterPlugin::pre_filter(&NodePorts, &mut state, &info, &Snapshot::default());
        assert!(s.is_skip());
    }

    #[test]
    fn only_init_containers_that_keep_running_hold_ports() {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "containers": [],
                "initContainers": [
                    {"name": "once", "ports": [{"containerPort": 1, "hostPort": 8001}]},
                    {"name": "sidecar", "restartPolicy": "Always", "ports": [{"containerPort": 1, "hostPort": 8002}]},
                ],
            },
        }))
        .expect("pod");
        let ports: Vec<i32> = pod_host_ports(&p)
            .into_iter()
            .map(|(_, _, port)| port)
            .collect();
        assert_eq!(ports, [8002]);
    }

    #[test]
    fn deleting_a_bound_pod_that_held_a_wanted_port_requeues() {
        let hint = NodePorts.events_to_register()[0]
            .hint
            .clone()
            .expect("hint");
        let target = pod_with(&["TCP/0.0.0.0/8080"], None);
        let deleted =
            |ports: &[&str], node: Option<&str>| EventObject::Pod(Arc::new(pod_with(ports, node)));
        assert_eq!(
            hint(
                &target,
                Some(&deleted(&["TCP/127.0.0.1/8080"], Some("n"))),
                None
            ),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            hint(
                &target,
                Some(&deleted(&["TCP/127.0.0.1/9090"], Some("n"))),
                None
            ),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            hint(&target, Some(&deleted(&["TCP/127.0.0.1/8080"], None)), None),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            hint(&target, Some(&deleted(&[], Some("n"))), None),
            Ok(QueueingHint::Skip)
        );
    }
}
