//! NodeResourcesBalancedAllocation (upstream's `noderesources.BalancedAllocation`): favours
//! nodes whose resources would be used evenly once the pod is placed:
//! `(1 - std deviation of the requested/allocatable fractions) * 100`, over cpu and memory by
//! default. It counts real requests (no defaults for request-less containers), and skips
//! best-effort pods, which request nothing.

use std::collections::HashSet;
use std::sync::Arc;

use apimachinery::{aggregate_message, FieldError, Path};
use serde::Deserialize;

use super::resource_allocation::{defaulted, ResourceAllocationScorer, ResourceSpec};
use crate::framework::{
    CycleState, Handle, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin, Snapshot, Status,
    MAX_NODE_SCORE,
};

pub const NAME: &str = "NodeResourcesBalancedAllocation";

const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesBalancedAllocation";

/// `NodeResourcesBalancedAllocationArgs` (kubescheduler.config.k8s.io/v1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BalancedAllocationArgs {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
}

/// Upstream's `ValidateNodeResourcesBalancedAllocationArgs`: names unique, weights exactly 1.
fn validate(resources: &[ResourceSpec]) -> Result<(), String> {
    let path = Path::new("resources");
    let mut seen = HashSet::new();
    let mut errs = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        if !seen.insert(r.name.as_str()) {
            errs.push(FieldError::duplicate(
                path.index(i).child("name"),
                r.name.as_str(),
            ));
        }
        if r.weight != 1 {
            errs.push(FieldError::invalid(
                path.index(i).child("weight"),
                r.weight,
                "must be 1",
            ));
        }
    }
    aggregate_message(&errs).map_or(Ok(()), Err)
}

pub struct BalancedAllocation {
    scorer: ResourceAllocationScorer,
}

pub fn new(args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    let args: BalancedAllocationArgs = match args {
        None | Some(serde_json::Value::Null) => BalancedAllocationArgs::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("decoding NodeResourcesBalancedAllocationArgs: {e}"))?,
    };
    let resources = defaulted(args.resources);
    validate(&resources).map_err(|e| anyhow::anyhow!(e))?;
    Ok(Arc::new(BalancedAllocation {
        scorer: ResourceAllocationScorer {
            name: NAME,
            use_requested: true,
            scorer: Arc::new(balanced_resource_scorer),
            resources,
        },
    }))
}

/// `(1 - std) * 100` of the requested fractions (capped at 1) of the resources the node has.
/// With two resources the deviation is half their difference.
fn balanced_resource_scorer(requested: &[i64], allocatable: &[i64]) -> i64 {
    let fractions: Vec<f64> = requested
        .iter()
        .zip(allocatable)
        .filter(|(_, &alloc)| alloc != 0)
        .map(|(&req, &alloc)| (req as f64 / alloc as f64).min(1.0))
        .collect();
    let std = match fractions.len() {
        0 | 1 => 0.0,
        2 => ((fractions[0] - fractions[1]) / 2.0).abs(),
        n => {
            let mean = fractions.iter().sum::<f64>() / n as f64;
            let var = fractions
                .iter()
                .map(|f| (f - mean) * (f - mean))
                .sum::<f64>()
                / n as f64;
            var.sqrt()
        }
    };
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

#[derive(Debug, Clone)]
struct PreScoreState(Vec<i64>);

impl Plugin for BalancedAllocation {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_score(&self) -> Option<&dyn PreScorePlugin> {
        Some(self)
    }

    fn score(&self) -> Option<&dyn ScorePlugin> {
        Some(self)
    }
}

impl PreScorePlugin for BalancedAllocation {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        let requests = self.scorer.pod_request_list(&pod.pod);
        // Best-effort pods would all pile onto one node otherwise (kubernetes#129138).
        if requests.iter().all(|r| *r == 0) {
            return Status::skip();
        }
        state.write(PRE_SCORE_STATE_KEY, PreScoreState(requests));
        Status::success()
    }
}

impl ScorePlugin for BalancedAllocation {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        match state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            Some(s) => self.scorer.score(node, &s.0),
            None => self
                .scorer
                .score(node, &self.scorer.pod_request_list(&pod.pod)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Framework;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{json, Value};

    fn node(name: &str, cpu: &str, memory: &str, extra: Value) -> Node {
        let mut alloc = json!({"cpu": cpu, "memory": memory, "pods": "110"});
        if let (Some(a), Some(e)) = (alloc.as_object_mut(), extra.as_object()) {
            a.extend(e.clone());
        }
        serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"allocatable": alloc}}),
        )
        .expect("node")
    }

    fn pod(uid: &str, node_name: Option<&str>, requests: &[Value]) -> PodInfo {
        let containers: Vec<Value> = requests
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"name": format!("c{i}"), "resources": {"requests": r}}))
            .collect();
        PodInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": uid, "namespace": "ns", "uid": uid},
                "spec": {"containers": containers, "nodeName": node_name},
            }))
            .expect("pod"),
        ))
    }

    fn scores(args: Option<Value>, p: &PodInfo, nodes: Vec<(Node, Vec<PodInfo>)>) -> Vec<i64> {
        let h = Handle::for_tests();
        let fw = Framework::multi_point(
            "test",
            h.clone(),
            vec![
                (
                    crate::plugins::prioritysort::new(None, &h).expect("sort"),
                    1,
                ),
                (new(args.as_ref(), &h).expect("plugin"), 1),
                (
                    crate::plugins::defaultbinder::new(None, &h).expect("binder"),
                    1,
                ),
            ],
        )
        .expect("framework");
        let infos = nodes
            .into_iter()
            .map(|(n, pods)| {
                let mut info = NodeInfo::new(Some(Arc::new(n)));
                for p in pods {
                    info.add_pod(Arc::new(p));
                }
                info
            })
            .collect();
        let snapshot = Snapshot::from_node_infos(infos);
        let mut state = CycleState::new();
        assert!(fw
            .run_pre_score(&mut state, p, snapshot.list(), &snapshot)
            .is_success());
        fw.run_score(&state, p, snapshot.list())
            .expect("scores")
            .into_iter()
            .map(|s| s.score)
            .collect()
    }

    #[test]
    fn upstream_cases() {
        let cpu_and_memory = |cpu: &str, mem: &str| json!({"cpu": cpu, "memory": mem});
        // Node1: 4000m / 10000; Node2: 6000m / 10000. Pod: 3000m + 5000 memory.
        // Node1 fractions 0.75, 0.5 -> std 0.125 -> 87; Node2 0.5, 0.5 -> 100.
        let p = pod(
            "p",
            None,
            &[
                cpu_and_memory("1000m", "2000"),
                cpu_and_memory("2000m", "3000"),
            ],
        );
        assert_eq!(
            scores(
                None,
                &p,
                vec![
                    (node("n1", "4000m", "10000", json!({})), vec![]),
                    (node("n2", "6000m", "10000", json!({})), vec![]),
                ]
            ),
            vec![87, 100]
        );
        // Node1 with 3000m / 0 used by others: 6000m/10000 -> 1.0 (capped), 0.5 -> 75.
        let used = pod("other", Some("n1"), &[cpu_and_memory("3000m", "0")]);
        assert_eq!(
            scores(
                None,
                &p,
                vec![(node("n1", "4000m", "10000", json!({})), vec![used])]
            ),
            vec![75]
        );
    }

    #[test]
    fn extended_resources_count_only_when_requested_and_configured() {
        let args = json!({"resources": [
            {"name": "cpu", "weight": 1},
            {"name": "memory", "weight": 1},
            {"name": "nvidia.com/gpu", "weight": 1},
        ]});
        let n = || node("n1", "4000m", "10000", json!({"nvidia.com/gpu": "4"}));
        // Fractions 0.5, 0.5, 0.25: mean 0.4167, std 0.1179 -> 88.
        let p = pod(
            "p",
            None,
            &[json!({"cpu": "2000m", "memory": "5000", "nvidia.com/gpu": "1"})],
        );
        assert_eq!(
            scores(Some(args.clone()), &p, vec![(n(), vec![])]),
            vec![88]
        );
        // Not requested: left out, so 0.5 and 0.5 -> 100.
        let p = pod("p", None, &[json!({"cpu": "2000m", "memory": "5000"})]);
        assert_eq!(scores(Some(args), &p, vec![(n(), vec![])]), vec![100]);
    }

    #[test]
    fn best_effort_pods_skip_scoring() {
        let h = Handle::for_tests();
        let pl = new(None, &h).expect("plugin");
        let mut state = CycleState::new();
        let p = pod("p", None, &[json!({})]);
        let s =
            pl.pre_score()
                .expect("prescore")
                .pre_score(&mut state, &p, &[], &Snapshot::default());
        assert!(s.is_skip());
    }

    #[test]
    fn args_validation() {
        let h = Handle::for_tests();
        let err = |v: Value| new(Some(&v), &h).err().expect("an error").to_string();
        assert_eq!(
            err(json!({"resources": [{"name": "cpu", "weight": 2}]})),
            "resources[0].weight: Invalid value: 2: must be 1"
        );
        assert_eq!(
            err(json!({"resources": [{"name": "cpu"}, {"name": "cpu", "weight": 1}]})),
            "resources[1].name: Duplicate value: \"cpu\""
        );
        assert!(new(Some(&json!({"resources": [{"name": "cpu"}]})), &h).is_ok());
        assert!(new(Some(&json!({"kind": "NodeResourcesBalancedAllocationArgs", "apiVersion": "kubescheduler.config.k8s.io/v1"})), &h).is_ok());
        assert!(new(Some(&json!({"unknown": true})), &h).is_err());
    }

    #[test]
    fn std_deviation_formula() {
        assert_eq!(balanced_resource_scorer(&[50, 50], &[100, 100]), 100);
        assert_eq!(balanced_resource_scorer(&[100, 0], &[100, 100]), 50);
        assert_eq!(balanced_resource_scorer(&[200, 0], &[100, 100]), 50);
        assert_eq!(balanced_resource_scorer(&[10], &[100]), 100);
        assert_eq!(balanced_resource_scorer(&[0, 0], &[0, 0]), 100);
        // Three resources: 1, 0.5, 0 -> std 0.408.
        assert_eq!(
            balanced_resource_scorer(&[100, 50, 0], &[100, 100, 100]),
            59
        );
    }
}
