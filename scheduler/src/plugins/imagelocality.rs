//! ImageLocality (upstream's `imagelocality`): favours nodes that already have the pod's
//! images. Each image present counts its size scaled by the share of nodes that have it (so a
//! widely spread image does not pull every pod to one node); the sum is clamped between
//! 23 MiB and 1000 MiB per container and mapped linearly to 0..100.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::{
    CycleState, Handle, ImageStateSummary, NodeInfo, Plugin, PodInfo, PreScorePlugin, ScorePlugin,
    Snapshot, Status, MAX_NODE_SCORE,
};

pub const NAME: &str = "ImageLocality";

const MB: i64 = 1024 * 1024;
/// Below this the images are as good as absent.
const MIN_THRESHOLD: i64 = 23 * MB;
/// Per container: above this the images are as good as all there.
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

const PRE_SCORE_STATE_KEY: &str = "PreScoreImageLocality";

/// How many nodes the cluster has (upstream reads it from the snapshot in Score; our Score
/// sees one node, so PreScore notes it).
#[derive(Debug, Clone, Copy)]
struct TotalNodes(usize);

#[derive(Debug, Default)]
pub struct ImageLocality;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(ImageLocality))
}

/// The name a node reports for `image`: a reference without a tag gets `:latest` (a digest
/// or a registry port do not count as a tag).
pub fn normalized_image_name(image: &str) -> String {
    let colon = image.rfind(':').map_or(-1, |i| i as i64);
    let slash = image.rfind('/').map_or(-1, |i| i as i64);
    if colon <= slash {
        format!("{image}:latest")
    } else {
        image.to_string()
    }
}

/// The image size scaled by how many of the nodes have it.
fn scaled_image_score(state: &ImageStateSummary, total_nodes: usize) -> i64 {
    if total_nodes == 0 {
        return 0;
    }
    let spread = state.num_nodes as f64 / total_nodes as f64;
    (state.size as f64 * spread) as i64
}

fn sum_image_scores(node: &NodeInfo, pod: &Pod, total_nodes: usize) -> i64 {
    let Some(spec) = pod.spec.as_ref() else {
        return 0;
    };
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
        .filter_map(|c| {
            let image = c.image.as_deref()?;
            node.image_states.get(&normalized_image_name(image))
        })
        .map(|state| scaled_image_score(state, total_nodes))
        .sum()
}

/// Maps the summed score to 0..100 between the thresholds.
fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers as i64;
    if max_threshold <= MIN_THRESHOLD {
        return 0;
    }
    let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

impl Plugin for ImageLocality {
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

impl PreScorePlugin for ImageLocality {
    fn pre_score(
        &self,
        state: &mut CycleState,
        _pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        snapshot: &Snapshot,
    ) -> Status {
        state.write(PRE_SCORE_STATE_KEY, TotalNodes(snapshot.len()));
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        // Without PreScore, the most nodes any of this node's images is on is the best
        // lower bound of the cluster's size we have.
        let total = state
            .read::<TotalNodes>(PRE_SCORE_STATE_KEY)
            .map(|t| t.0)
            .unwrap_or_else(|| {
                node.image_states
                    .values()
                    .map(|s| s.num_nodes)
                    .max()
                    .unwrap_or(1)
            });
        let spec = pod.pod.spec.as_ref();
        let containers = spec.map_or(0, |s| {
            s.containers.len() + s.init_containers.as_ref().map_or(0, Vec::len)
        });
        let sum = sum_image_scores(node, &pod.pod, total);
        (calculate_priority(sum, containers), Status::success())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::Framework;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{json, Value};

    const MB: i64 = 1024 * 1024;

    fn node(name: &str, images: Value) -> NodeInfo {
        let n: Node = serde_json::from_value(
            json!({"metadata": {"name": name}, "status": {"images": images}}),
        )
        .expect("node");
        NodeInfo::new(Some(Arc::new(n)))
    }

    fn pod(containers: &[&str], init: &[&str]) -> PodInfo {
        let c = |images: &[&str]| -> Vec<Value> {
            images
                .iter()
                .enumerate()
                .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
                .collect()
        };
        PodInfo::new(Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": "p", "namespace": "ns"},
                "spec": {"containers": c(containers), "initContainers": c(init)},
            }))
            .expect("pod"),
        ))
    }

    fn scores(p: &PodInfo, nodes: Vec<NodeInfo>) -> Vec<i64> {
        let h = Handle::for_tests();
        let fw = Framework::multi_point(
            "test",
            h.clone(),
            vec![
                (
                    crate::plugins::prioritysort::new(None, &h).expect("sort"),
                    1,
                ),
                (new(None, &h).expect("plugin"), 1),
                (
                    crate::plugins::defaultbinder::new(None, &h).expect("binder"),
                    1,
                ),
            ],
        )
        .expect("framework");
        let snapshot = Snapshot::from_node_infos(nodes);
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

    /// After upstream's fixture: each image is on one node of three.
    fn upstream_nodes() -> Vec<NodeInfo> {
        vec![
            node(
                "node1",
                json!([
                    {"names": ["gcr.io/40:latest", "gcr.io/40:v1"], "sizeBytes": 40 * MB},
                    {"names": ["gcr.io/300:latest", "gcr.io/300:v1"], "sizeBytes": 300 * MB},
                    {"names": ["gcr.io/2000:latest"], "sizeBytes": 2000 * MB},
                ]),
            ),
            node(
                "node2",
                json!([
                    {"names": ["gcr.io/250:latest"], "sizeBytes": 250 * MB},
                    {"names": ["gcr.io/10:latest", "gcr.io/10:v1"], "sizeBytes": 10 * MB},
                ]),
            ),
            node("node3", json!([])),
        ]
    }

    #[test]
    fn scores_follow_upstreams_formula() {
        // gcr.io/40 + gcr.io/300 on node1 (each on 1 of 3 nodes), gcr.io/250 on node2.
        let p = pod(&["gcr.io/40", "gcr.io/300", "gcr.io/250"], &[]);
        let n1 = calculate_priority((40 * MB) / 3 + (300 * MB) / 3, 3);
        let n2 = calculate_priority((250 * MB) / 3, 3);
        assert_eq!(scores(&p, upstream_nodes()), vec![n1, n2, 0]);
        assert_eq!(n1, 3);
        assert_eq!(n2, 2);
        // A huge image is clamped at 1000 MiB per container.
        let p = pod(&["gcr.io/2000:latest"], &[]);
        assert_eq!(
            scores(&p, upstream_nodes()),
            vec![calculate_priority(2000 * MB / 3, 1), 0, 0]
        );
        // Small images score nothing.
        let p = pod(&["gcr.io/10:v1"], &[]);
        assert_eq!(scores(&p, upstream_nodes()), vec![0, 0, 0]);
        // Init containers count, and count as containers.
        let p = pod(&["busybox"], &["gcr.io/300:v1"]);
        assert_eq!(
            scores(&p, upstream_nodes()),
            vec![calculate_priority(300 * MB / 3, 2), 0, 0]
        );
    }

    #[test]
    fn images_on_every_node_score_their_full_size() {
        let on_both = json!([{"names": ["gcr.io/big:latest"], "sizeBytes": 1000 * MB}]);
        let p = pod(&["gcr.io/big"], &[]);
        assert_eq!(
            scores(&p, vec![node("a", on_both.clone()), node("b", on_both)]),
            vec![100, 100]
        );
        // The same image on half the nodes counts half.
        let p = pod(&["gcr.io/big"], &[]);
        let got = scores(
            &p,
            vec![
                node(
                    "a",
                    json!([{"names": ["gcr.io/big:latest"], "sizeBytes": 1000 * MB}]),
                ),
                node("b", json!([])),
            ],
        );
        assert_eq!(got, vec![calculate_priority(500 * MB, 1), 0]);
        assert_eq!(got[0], 48);
    }

    #[test]
    fn image_names_get_latest_when_untagged() {
        assert_eq!(normalized_image_name("nginx"), "nginx:latest");
        assert_eq!(normalized_image_name("nginx:1.25"), "nginx:1.25");
        assert_eq!(
            normalized_image_name("registry:5000/nginx"),
            "registry:5000/nginx:latest"
        );
        assert_eq!(
            normalized_image_name("registry:5000/nginx:1"),
            "registry:5000/nginx:1"
        );
        assert_eq!(normalized_image_name("gcr.io/a/b"), "gcr.io/a/b:latest");
    }
}
