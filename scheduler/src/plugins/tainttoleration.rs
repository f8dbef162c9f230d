//! TaintToleration (upstream's `tainttoleration`): Filter rejects nodes with a `NoSchedule` or
//! `NoExecute` taint the pod does not tolerate (preemption cannot help); Score counts the
//! `PreferNoSchedule` taints the pod does not tolerate, and normalisation reverses it so nodes
//! with fewer such taints score higher.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, Taint, Toleration};

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, NodeScore, Plugin, PodInfo, PreScorePlugin, QueueingHint,
    ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};
use crate::plugins::helper::{
    default_normalize_score, do_not_schedule_taints_filter, find_matching_untolerated_taint,
    node_of, node_taints, pod_of, pod_tolerations, tolerations_tolerate_taint,
    TAINT_EFFECT_PREFER_NO_SCHEDULE,
};

pub const NAME: &str = "TaintToleration";

const PRE_SCORE_STATE_KEY: &str = "PreScoreTaintToleration";

#[derive(Debug, Default)]
pub struct TaintToleration;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(TaintToleration))
}

/// The tolerations that can tolerate a `PreferNoSchedule` taint (that effect, or any effect).
#[derive(Debug, Clone)]
struct PreScoreState {
    tolerations_prefer_no_schedule: Vec<Toleration>,
}

fn tolerations_prefer_no_schedule(tolerations: &[Toleration]) -> Vec<Toleration> {
    tolerations
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some(TAINT_EFFECT_PREFER_NO_SCHEDULE)
            )
        })
        .cloned()
        .collect()
}

fn count_intolerable_prefer_no_schedule(taints: &[Taint], tolerations: &[Toleration]) -> i64 {
    taints
        .iter()
        .filter(|t| t.effect == TAINT_EFFECT_PREFER_NO_SCHEDULE)
        .filter(|t| !tolerations_tolerate_taint(tolerations, t))
        .count() as i64
}

/// Upstream's reason: `node(s) had untolerated taint {key: value}`.
pub fn untolerated_taint_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

impl Plugin for TaintToleration {
    fn name(&self) -> &'static str {
        NAME
    }

    fn filter(&self) -> Option<&dyn FilterPlugin> {
        Some(self)
    }

    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        vec![
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

impl FilterPlugin for TaintToleration {
    fn filter(&self, _state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        match find_matching_untolerated_taint(
            node_taints(n),
            pod_tolerations(&pod.pod),
            do_not_schedule_taints_filter,
        ) {
            None => Status::success(),
            Some(taint) => Status::unresolvable(untolerated_taint_reason(taint)),
        }
    }
}

impl PreScorePlugin for TaintToleration {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_STATE_KEY,
            PreScoreState {
                tolerations_prefer_no_schedule: tolerations_prefer_no_schedule(pod_tolerations(
                    &pod.pod,
                )),
            },
        );
        Status::success()
    }
}

impl ScorePlugin for TaintToleration {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(n) = node.node() else {
            return (
                0,
                Status::error(format!("node {:?} not found", node.name())),
            );
        };
        let Some(s) = state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) else {
            return (
                0,
                Status::error(format!(
                    "failed to read {PRE_SCORE_STATE_KEY:?} from cycleState: not found"
                )),
            );
        };
        (
            count_intolerable_prefer_no_schedule(node_taints(n), &s.tolerations_prefer_no_schedule),
            Status::success(),
        )
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, true, scores);
        Status::success()
    }

    fn has_normalize(&self) -> bool {
        true
    }
}

/// Queue when the node had an untolerated NoSchedule/NoExecute taint (or is new) and has none
/// now.
fn is_schedulable_after_node_change(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = node_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    let tolerations = pod_tolerations(pod);
    let was_untolerated = match node_of(old)? {
        None => true,
        Some(original) => find_matching_untolerated_taint(
            node_taints(original),
            tolerations,
            do_not_schedule_taints_filter,
        )
        .is_some(),
    };
    let is_untolerated = find_matching_untolerated_taint(
        node_taints(modified),
        tolerations,
        do_not_schedule_taints_filter,
    )
    .is_some();
    if was_untolerated && !is_untolerated {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

/// Tolerations can only be added (API validation), so any change in their number on the pod
/// itself may help.
fn is_schedulable_after_pod_toleration_change(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let (Some(original), Some(modified)) = (pod_of(old)?, pod_of(new)?) else {
        return Ok(QueueingHint::Skip);
    };
    if pod.metadata.uid == modified.metadata.uid
        && pod_tolerations(original).len() != pod_tolerations(modified).len()
    {
        return Ok(QueueingHint::Queue);
    }
    Ok(QueueingHint::Skip)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, Framework};
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{json, Value};

    fn pod(tolerations: Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"containers": [], "tolerations": tolerations},
        }))
        .expect("pod")
    }

    fn node(name: &str, taints: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"taints": taints}}))
            .expect("node")
    }

    #[test]
    fn filter_cases() {
        let cases: Vec<(&str, Value, Value, Option<&str>)> = vec![
            (
                "a pod with no tolerations on a tainted node",
                json!([]),
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "a tolerating pod",
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "a toleration of another value",
                json!([{"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"}]),
                json!([{"key": "dedicated", "value": "user1", "effect": "NoSchedule"}]),
                Some("node(s) had untolerated taint {dedicated: user1}"),
            ),
            (
                "Exists tolerates any value",
                json!([{"key": "foo", "operator": "Exists", "effect": "NoSchedule"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "several taints, all tolerated",
                json!([
                    {"key": "dedicated", "operator": "Equal", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "operator": "Exists", "effect": "NoSchedule"},
                ]),
                json!([
                    {"key": "dedicated", "value": "user2", "effect": "NoSchedule"},
                    {"key": "foo", "value": "bar", "effect": "NoSchedule"},
                ]),
                None,
            ),
            (
                "a toleration for another effect",
                json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                Some("node(s) had untolerated taint {foo: bar}"),
            ),
            (
                "an empty effect tolerates every effect",
                json!([{"key": "foo", "operator": "Equal", "value": "bar"}]),
                json!([{"key": "foo", "value": "bar", "effect": "NoSchedule"}]),
                None,
            ),
            (
                "PreferNoSchedule taints are not filtered",
                json!([]),
                json!([{"key": "foo", "value": "bar", "effect": "PreferNoSchedule"}]),
                None,
            ),
            (
                "NoExecute taints are filtered",
                json!([]),
                json!([{"key": "foo", "effect": "NoExecute"}]),
                Some("node(s) had untolerated taint {foo: }"),
            ),
            (
                "an empty key with Exists tolerates everything",
                json!([{"operator": "Exists"}]),
                json!([{"key": "foo", "effect": "NoExecute"}, {"key": "bar", "effect": "NoSchedule"}]),
                None,
            ),
        ];
        for (name, tols, taints, want) in cases {
            let p = PodInfo::new(Arc::new(pod(tols)));
            let n = NodeInfo::new(Some(Arc::new(node("n", taints))));
            let s = FilterPlugin::filter(&TaintToleration, &CycleState::new(), &p, &n);
            match want {
                None => assert!(s.is_success(), "{name}: {s}"),
                Some(reason) => {
                    assert_eq!(s.code(), Code::UnschedulableAndUnresolvable, "{name}");
                    assert_eq!(s.message(), reason, "{name}");
                }
            }
        }
    }

    fn scores(tols: Value, nodes: Vec<Node>) -> Vec<i64> {
        let pl: Arc<dyn Plugin> = Arc::new(TaintToleration);
        let fw = Framework::multi_point(
            "test",
            Handle::for_tests(),
            vec![
                (
                    crate::plugins::prioritysort::new(None, &Handle::for_tests()).expect("sort"),
                    1,
                ),
                (pl, 1),
                (
                    crate::plugins::defaultbinder::new(None, &Handle::for_tests()).expect("binder"),
                    1,
                ),
            ],
        )
        .expect("framework");
        let infos: Vec<NodeInfo> = nodes
            .into_iter()
            .map(|n| NodeInfo::new(Some(Arc::new(n))))
            .collect();
        let snapshot = Snapshot::from_node_infos(infos);
        let p = PodInfo::new(Arc::new(pod(tols)));
        let mut state = CycleState::new();
        assert!(fw
            .run_pre_score(&mut state, &p, snapshot.list(), &snapshot)
            .is_success());
        fw.run_score(&state, &p, snapshot.list())
            .expect("scores")
            .into_iter()
            .map(|s| s.score)
            .collect()
    }

    #[test]
    fn score_prefers_nodes_with_fewer_intolerable_prefer_no_schedule_taints() {
        // Tolerated taints count as nothing.
        let got = scores(
            json!([{"key": "foo", "operator": "Equal", "value": "bar", "effect": "PreferNoSchedule"}]),
            vec![
                node(
                    "n1",
                    json!([{"key": "foo", "value": "bar", "effect": "PreferNoSchedule"}]),
                ),
                node("n2", json!([])),
            ],
        );
        assert_eq!(got, [100, 100]);
        // Only PreferNoSchedule taints count; the toleration with an empty effect counts too.
        let got = scores(
            json!([
                {"key": "cpu-type", "operator": "Equal", "value": "arm64"},
                {"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"},
            ]),
            vec![
                node("n1", json!([])),
                node(
                    "n2",
                    json!([{"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"}]),
                ),
                node(
                    "n3",
                    json!([
                        {"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"},
                        {"key": "disk-type", "value": "ssd", "effect": "PreferNoSchedule"},
                    ]),
                ),
            ],
        );
        assert_eq!(got, [100, 100, 0]);
        // NoSchedule taints are the filter's business.
        let got = scores(
            json!([{"key": "disk-type", "operator": "Equal", "value": "ssd", "effect": "NoSchedule"}]),
            vec![
                node("n1", json!([])),
                node(
                    "n2",
                    json!([{"key": "cpu-type", "value": "arm64", "effect": "NoSchedule"}]),
                ),
                node(
                    "n3",
                    json!([{"key": "cpu-type", "value": "arm64", "effect": "PreferNoSchedule"}]),
                ),
            ],
        );
        assert_eq!(got, [100, 100, 0]);
        // 0, 1 and 2 intolerable taints.
        let got = scores(
            json!([]),
            vec![
                node("n1", json!([])),
                node("n2", json!([{"key": "a", "effect": "PreferNoSchedule"}])),
                node(
                    "n3",
                    json!([{"key": "a", "effect": "PreferNoSchedule"}, {"key": "b", "effect": "PreferNoSchedule"}]),
                ),
            ],
        );
        assert_eq!(got, [100, 50, 0]);
    }

    #[test]
    fn hints() {
        let events = TaintToleration.events_to_register();
        let node_hint = events[0].hint.clone().expect("hint");
        let pod_hint = events[1].hint.clone().expect("hint");
        let target = pod(json!([]));
        let tainted = EventObject::Node(Arc::new(node(
            "n",
            json!([{"key": "a", "effect": "NoSchedule"}]),
        )));
        let soft = EventObject::Node(Arc::new(node(
            "n",
            json!([{"key": "a", "effect": "PreferNoSchedule"}]),
        )));
        let clean = EventObject::Node(Arc::new(node("n", json!([]))));
        assert_eq!(
            node_hint(&target, None, Some(&clean)),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            node_hint(&target, None, Some(&tainted)),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            node_hint(&target, Some(&tainted), Some(&soft)),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            node_hint(&target, Some(&clean), Some(&soft)),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            node_hint(&target, Some(&clean), Some(&tainted)),
            Ok(QueueingHint::Skip)
        );

        let old = EventObject::Pod(Arc::new(target.clone()));
        let added = EventObject::Pod(Arc::new(pod(json!([{"key": "a", "operator": "Exists"}]))));
        assert_eq!(
            pod_hint(&target, Some(&old), Some(&added)),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            pod_hint(&target, Some(&old), Some(&old)),
            Ok(QueueingHint::Skip)
        );
    }
}
