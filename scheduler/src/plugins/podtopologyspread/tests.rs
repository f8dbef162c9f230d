//! Table-driven tests: the upstream doc cases for Filter, the upstream scoring cases with
//! their exact normalised scores, args validation and queueing hints.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use serde_json::{json, Value};

use super::*;
use crate::framework::{
    Code, CycleState, EventObject, NodeInfo, NodeScore, PodInfo, PreFilterExtensions, QueueingHint,
    Snapshot, Status,
};

fn labels(pairs: &[(&str, &str)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

fn node(name: &str, pairs: &[(&str, &str)]) -> Node {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels(pairs)}}))
        .expect("node")
}

fn tainted(mut n: Node, key: &str, effect: &str) -> Node {
    n.spec = Some(
        serde_json::from_value(json!({"taints": [{"key": key, "value": "", "effect": effect}]}))
            .expect("taints"),
    );
    n
}

/// A pod in "default" named `name` (also its uid), on `node` when not empty, with `spec`
/// merged over an empty container list.
fn pod_in(ns: &str, name: &str, node: &str, pairs: &[(&str, &str)], spec: Value) -> Pod {
    let mut s = json!({"containers": []});
    if let (Some(s), Some(extra)) = (s.as_object_mut(), spec.as_object()) {
        s.extend(extra.clone());
    }
    if !node.is_empty() {
        s["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "uid": name, "labels": labels(pairs)},
        "spec": s,
    }))
    .expect("pod")
}

fn pod(name: &str, node: &str, pairs: &[(&str, &str)], spec: Value) -> Pod {
    pod_in("default", name, node, pairs, spec)
}

fn info(p: Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(p)))
}

/// A spread constraint selecting pods that have label `key`.
fn constraint(max_skew: i32, topology_key: &str, when: &str, key: &str) -> Value {
    json!({
        "maxSkew": max_skew, "topologyKey": topology_key, "whenUnsatisfiable": when,
        "labelSelector": {"matchExpressions": [{"key": key, "operator": "Exists"}]},
    })
}

fn spread(constraints: Vec<Value>) -> Value {
    json!({"topologySpreadConstraints": constraints})
}

/// The snapshot of `nodes` with each existing pod placed on the node its `nodeName` names.
fn snapshot(nodes: &[Node], pods: &[Pod]) -> Snapshot {
    let mut by_node: std::collections::HashMap<&str, Vec<&Pod>> = std::collections::HashMap::new();
    for p in pods {
        if let Some(n) = p.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            by_node.entry(n).or_default().push(p);
        }
    }
    let infos = nodes
        .iter()
        .map(|n| {
            let mut ni = NodeInfo::new(Some(Arc::new(n.clone())));
            let name = n.metadata.name.as_deref().unwrap_or("");
            for p in by_node.get(name).into_iter().flatten() {
                ni.add_pod(info((*p).clone()));
            }
            ni
        })
        .collect();
    Snapshot::from_node_infos(infos)
}

fn plugin() -> PodTopologySpread {
    PodTopologySpread::from_args(
        Some(&json!({"defaultingType": "List"})),
        &crate::framework::Handle::for_tests(),
    )
    .expect("plugin")
}

/// PreFilter then Filter on every node: (node, code, reason).
fn filter_all(
    pl: &PodTopologySpread,
    pod: &PodInfo,
    snap: &Snapshot,
) -> Vec<(String, Code, String)> {
    let mut state = CycleState::new();
    let (_, status) = PreFilterPlugin::pre_filter(pl, &mut state, pod, snap);
    snap.list()
        .iter()
        .map(|n| {
            let s = if status.is_skip() {
                Status::success()
            } else {
                FilterPlugin::filter(pl, &state, pod, n)
            };
            (n.name().to_string(), s.code(), s.message())
        })
        .collect()
}

const OK: (Code, &str) = (Code::Success, "");
const SKEW: (Code, &str) = (Code::Unschedulable, ERR_REASON_CONSTRAINTS_NOT_MATCH);
const NO_LABEL: (Code, &str) = (
    Code::UnschedulableAndUnresolvable,
    ERR_REASON_NODE_LABEL_NOT_MATCH,
);

fn zones3() -> Vec<Node> {
    vec![
        node("node-a", &[("zone", "zone1"), (LABEL_HOSTNAME, "node-a")]),
        node("node-b", &[("zone", "zone2"), (LABEL_HOSTNAME, "node-b")]),
        node("node-c", &[("zone", "zone3"), (LABEL_HOSTNAME, "node-c")]),
    ]
}

fn foo_on(name: &str, node: &str) -> Pod {
    pod(name, node, &[("foo", "")], json!({}))
}

#[test]
fn filter_follows_the_documented_cases() {
    struct Case {
        name: &'static str,
        pod: Pod,
        nodes: Vec<Node>,
        existing: Vec<Pod>,
        want: Vec<(Code, &'static str)>,
    }
    let hard = |skew: i32, key: &str| constraint(skew, key, DO_NOT_SCHEDULE, "foo");
    let cases = vec![
        Case {
            // 1/1/0 with maxSkew 1: only zone3 keeps the skew within 1.
            name: "maxSkew 1 across zones, spread 1/1/0",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(1, "zone")])),
            nodes: zones3(),
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "maxSkew 2 across zones, spread 1/1/0: any zone",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(2, "zone")])),
            nodes: zones3(),
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![OK, OK, OK],
        },
        Case {
            // 3/1/1: zone2 or zone3 become 3/2/1, within maxSkew 1 of the minimum 1.
            name: "maxSkew 1 across zones, spread 3/1/1",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(1, "zone")])),
            nodes: zones3(),
            existing: vec![
                foo_on("p-a1", "node-a"),
                foo_on("p-a2", "node-a"),
                foo_on("p-a3", "node-a"),
                foo_on("p-b", "node-b"),
                foo_on("p-c", "node-c"),
            ],
            want: vec![SKEW, OK, OK],
        },
        Case {
            name: "the pod does not match its own selector: it does not count itself",
            pod: pod("p", "", &[("bar", "")], spread(vec![hard(1, "zone")])),
            nodes: zones3(),
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "a node without the topology label is unresolvable",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(1, "zone")])),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[(LABEL_HOSTNAME, "node-b")]),
            ],
            existing: vec![],
            want: vec![OK, NO_LABEL],
        },
        Case {
            name: "ScheduleAnyway constraints do not filter",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                spread(vec![constraint(1, "zone", SCHEDULE_ANYWAY, "foo")]),
            ),
            nodes: vec![node("node-a", &[("zone", "zone1")]), node("node-b", &[])],
            existing: vec![foo_on("p-a1", "node-a"), foo_on("p-a2", "node-a")],
            want: vec![OK, OK],
        },
        Case {
            // Two domains of the three required: the global minimum is taken as 0, so a
            // domain that already holds a pod is full.
            name: "minDomains above the number of domains",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                spread(vec![json!({
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "minDomains": 3,
                    "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                })]),
            ),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
            ],
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![SKEW, SKEW],
        },
        Case {
            name: "minDomains met: the real minimum applies",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                spread(vec![json!({
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "minDomains": 2,
                    "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                })]),
            ),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
            ],
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![OK, OK],
        },
        Case {
            // The pod's node affinity excludes zone3 (empty): it is no domain, so the minimum
            // is zone2's 1 and zone2 may take the pod.
            name: "nodeAffinityPolicy Honor (default) leaves excluded nodes out",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                json!({
                    "topologySpreadConstraints": [hard(1, "zone")],
                    "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [{"matchExpressions": [
                            {"key": "zone", "operator": "NotIn", "values": ["zone3"]}]}]}}},
                }),
            ),
            nodes: zones3(),
            existing: vec![
                foo_on("p-a1", "node-a"),
                foo_on("p-a2", "node-a"),
                foo_on("p-b", "node-b"),
            ],
            want: vec![SKEW, OK, OK],
        },
        Case {
            name: "nodeAffinityPolicy Ignore counts every node",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                json!({
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                        "nodeAffinityPolicy": "Ignore",
                        "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                    }],
                    "nodeSelector": {"zone": "zone2"},
                }),
            ),
            nodes: zones3(),
            existing: vec![
                foo_on("p-a1", "node-a"),
                foo_on("p-a2", "node-a"),
                foo_on("p-b", "node-b"),
            ],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            name: "nodeTaintsPolicy Honor leaves nodes with untolerated taints out",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                spread(vec![json!({
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "nodeTaintsPolicy": "Honor",
                    "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                })]),
            ),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
                tainted(
                    node("node-c", &[("zone", "zone3")]),
                    "dedicated",
                    "NoSchedule",
                ),
            ],
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![OK, OK, OK],
        },
        Case {
            name: "nodeTaintsPolicy Ignore (default) counts tainted nodes",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(1, "zone")])),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
                tainted(
                    node("node-c", &[("zone", "zone3")]),
                    "dedicated",
                    "NoSchedule",
                ),
            ],
            existing: vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")],
            want: vec![SKEW, SKEW, OK],
        },
        Case {
            // Only pods of the same revision count: rev=1 pods are invisible to a rev=2 pod.
            name: "matchLabelKeys narrow the selector to the pod's values",
            pod: pod(
                "p",
                "",
                &[("foo", ""), ("rev", "2")],
                spread(vec![json!({
                    "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                    "matchLabelKeys": ["rev"],
                    "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                })]),
            ),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
            ],
            existing: vec![
                pod("p-a1", "node-a", &[("foo", ""), ("rev", "1")], json!({})),
                pod("p-a2", "node-a", &[("foo", ""), ("rev", "1")], json!({})),
            ],
            want: vec![OK, OK],
        },
        Case {
            name: "pods of other namespaces and terminating pods do not count",
            pod: pod("p", "", &[("foo", "")], spread(vec![hard(1, "zone")])),
            nodes: vec![
                node("node-a", &[("zone", "zone1")]),
                node("node-b", &[("zone", "zone2")]),
            ],
            existing: vec![
                pod_in("other", "p-a1", "node-a", &[("foo", "")], json!({})),
                {
                    let mut p = foo_on("p-a2", "node-a");
                    p.metadata.deletion_timestamp =
                        Some(serde_json::from_value(json!("2024-01-01T00:00:00Z")).expect("time"));
                    p
                },
            ],
            want: vec![OK, OK],
        },
        Case {
            name: "two constraints: both must hold",
            pod: pod(
                "p",
                "",
                &[("foo", "")],
                spread(vec![hard(1, "zone"), hard(1, LABEL_HOSTNAME)]),
            ),
            nodes: vec![
                node("node-a", &[("zone", "zone1"), (LABEL_HOSTNAME, "node-a")]),
                node("node-b", &[("zone", "zone1"), (LABEL_HOSTNAME, "node-b")]),
                node("node-x", &[("zone", "zone2"), (LABEL_HOSTNAME, "node-x")]),
                node("node-y", &[("zone", "zone2"), (LABEL_HOSTNAME, "node-y")]),
            ],
            // zone1: 1, zone2: 2; hosts: a 1, b 0, x 1, y 1.
            existing: vec![
                foo_on("p-a", "node-a"),
                foo_on("p-x", "node-x"),
                foo_on("p-y", "node-y"),
            ],
            want: vec![SKEW, OK, SKEW, SKEW],
        },
    ];
    let pl = plugin();
    for c in cases {
        let snap = snapshot(&c.nodes, &c.existing);
        let got = filter_all(&pl, &PodInfo::new(Arc::new(c.pod)), &snap);
        let want: Vec<(String, Code, String)> = c
            .nodes
            .iter()
            .zip(&c.want)
            .map(|(n, (code, reason))| {
                (
                    n.metadata.name.clone().unwrap_or_default(),
                    *code,
                    reason.to_string(),
                )
            })
            .collect();
        assert_eq!(got, want, "case {:?}", c.name);
    }
}

#[test]
fn pre_filter_skips_pods_without_hard_constraints() {
    let pl = plugin();
    let snap = snapshot(&zones3(), &[]);
    let mut state = CycleState::new();
    let p = PodInfo::new(Arc::new(pod("p", "", &[("foo", "")], json!({}))));
    let (_, status) = PreFilterPlugin::pre_filter(&pl, &mut state, &p, &snap);
    assert!(status.is_skip());
}

#[test]
fn a_malformed_selector_is_an_error() {
    let pl = plugin();
    let snap = snapshot(&zones3(), &[]);
    let mut state = CycleState::new();
    let p = pod(
        "p",
        "",
        &[],
        spread(vec![json!({
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchExpressions": [{"key": "foo", "operator": "Bogus"}]},
        })]),
    );
    let (_, status) =
        PreFilterPlugin::pre_filter(&pl, &mut state, &PodInfo::new(Arc::new(p)), &snap);
    assert_eq!(status.code(), Code::Error);
    assert!(
        status.message().starts_with(
            "get constraints from pod: obtaining pod's hard topology spread constraints:"
        ),
        "{}",
        status.message()
    );
}

#[test]
fn add_and_remove_pod_update_the_counts() {
    let pl = plugin();
    let nodes = zones3();
    let existing = vec![foo_on("p-a", "node-a"), foo_on("p-b", "node-b")];
    let snap = snapshot(&nodes, &existing);
    let p = PodInfo::new(Arc::new(pod(
        "p",
        "",
        &[("foo", "")],
        spread(vec![constraint(1, "zone", DO_NOT_SCHEDULE, "foo")]),
    )));
    let mut state = CycleState::new();
    let (_, status) = PreFilterPlugin::pre_filter(&pl, &mut state, &p, &snap);
    assert!(status.is_success());
    let node_a = snap.get("node-a").expect("node-a").clone();
    let node_c = snap.get("node-c").expect("node-c").clone();
    assert_eq!(
        FilterPlugin::filter(&pl, &state, &p, &node_a).code(),
        Code::Unschedulable
    );

    // Preemption removes p-a from node-a: zone1 becomes empty, the pod fits there.
    let mut removed = state.clone();
    let victim = info(existing[0].clone());
    assert!(PreFilterExtensions::remove_pod(&pl, &mut removed, &p, &victim, &node_a).is_success());
    assert!(FilterPlugin::filter(&pl, &removed, &p, &node_a).is_success());
    // The original state is untouched.
    assert_eq!(
        FilterPlugin::filter(&pl, &state, &p, &node_a).code(),
        Code::Unschedulable
    );

    // A nominated pod on node-c fills zone3: now every zone has 1 and any zone fits.
    let mut added = state.clone();
    let nominated = info(foo_on("p-n", "node-c"));
    assert!(PreFilterExtensions::add_pod(&pl, &mut added, &p, &nominated, &node_c).is_success());
    assert!(FilterPlugin::filter(&pl, &added, &p, &node_a).is_success());

    // A pod of another namespace changes nothing.
    let mut other = state.clone();
    let stranger = info(pod_in("other", "p-o", "node-a", &[("foo", "")], json!({})));
    assert!(PreFilterExtensions::remove_pod(&pl, &mut other, &p, &stranger, &node_a).is_success());
    assert_eq!(
        FilterPlugin::filter(&pl, &other, &p, &node_a).code(),
        Code::Unschedulable
    );
}

#[test]
fn filter_without_pre_filter_state_is_an_error() {
    let pl = plugin();
    let snap = snapshot(&zones3(), &[]);
    let p = PodInfo::new(Arc::new(pod("p", "", &[], json!({}))));
    let status = FilterPlugin::filter(&pl, &CycleState::new(), &p, &snap.list()[0]);
    assert_eq!(status.code(), Code::Error);
}

/// PreScore, Score and Normalize over the candidate nodes (all nodes are in the snapshot).
fn score_all(
    pl: &PodTopologySpread,
    pod: &PodInfo,
    snap: &Snapshot,
    candidates: &[&str],
) -> (Status, Vec<(String, i64)>) {
    let filtered: Vec<Arc<NodeInfo>> = candidates
        .iter()
        .filter_map(|n| snap.get(n).cloned())
        .collect();
    let mut state = CycleState::new();
    let status = PreScorePlugin::pre_score(pl, &mut state, pod, &filtered, snap);
    if !status.is_success() {
        return (status, Vec::new());
    }
    let mut scores: Vec<NodeScore> = filtered
        .iter()
        .map(|n| {
            let (score, s) = ScorePlugin::score(pl, &state, pod, n);
            assert!(s.is_success(), "{s}");
            NodeScore {
                name: n.name().to_string(),
                score,
            }
        })
        .collect();
    assert!(ScorePlugin::normalize(pl, &state, pod, &mut scores).is_success());
    (
        status,
        scores.into_iter().map(|s| (s.name, s.score)).collect(),
    )
}

/// `count` pods labelled foo on `node`, named p-<node>-<i>.
fn foos(node: &str, count: usize) -> Vec<Pod> {
    (0..count)
        .map(|i| foo_on(&format!("p-{node}-{i}"), node))
        .collect()
}

fn hosts(names: &[&str]) -> Vec<Node> {
    names
        .iter()
        .map(|n| node(n, &[(LABEL_HOSTNAME, n)]))
        .collect()
}

#[test]
fn scores_match_upstream() {
    struct Case {
        name: &'static str,
        pod: Pod,
        nodes: Vec<Node>,
        existing: Vec<Vec<Pod>>,
        candidates: Vec<&'static str>,
        want: Vec<i64>,
    }
    let soft = |skew: i32, key: &str, sel: &str| constraint(skew, key, SCHEDULE_ANYWAY, sel);
    let foo_pod = |constraints: Vec<Value>| pod("p", "", &[("foo", "")], spread(constraints));
    let zone_nodes = || {
        vec![
            node("node-a", &[("zone", "zone1"), (LABEL_HOSTNAME, "node-a")]),
            node("node-b", &[("zone", "zone1"), (LABEL_HOSTNAME, "node-b")]),
            node("node-x", &[("zone", "zone2"), (LABEL_HOSTNAME, "node-x")]),
            node("node-y", &[("zone", "zone2"), (LABEL_HOSTNAME, "node-y")]),
        ]
    };
    let cases = vec![
        Case {
            name: "one constraint on node, all nodes have the same number of matching pods",
            pod: foo_pod(vec![soft(1, LABEL_HOSTNAME, "foo")]),
            nodes: hosts(&["node-a", "node-b"]),
            existing: vec![foos("node-a", 1), foos("node-b", 1)],
            candidates: vec!["node-a", "node-b"],
            want: vec![100, 100],
        },
        Case {
            name: "one constraint on node, all 4 nodes are candidates (2/1/0/3)",
            pod: foo_pod(vec![soft(1, LABEL_HOSTNAME, "foo")]),
            nodes: hosts(&["node-a", "node-b", "node-c", "node-d"]),
            existing: vec![foos("node-a", 2), foos("node-b", 1), foos("node-d", 3)],
            candidates: vec!["node-a", "node-b", "node-c", "node-d"],
            want: vec![20, 60, 100, 0],
        },
        Case {
            name: "one constraint on node, all 4 nodes are candidates, maxSkew=2",
            pod: foo_pod(vec![soft(2, LABEL_HOSTNAME, "foo")]),
            nodes: hosts(&["node-a", "node-b", "node-c", "node-d"]),
            existing: vec![foos("node-a", 2), foos("node-b", 1), foos("node-d", 3)],
            candidates: vec!["node-a", "node-b", "node-c", "node-d"],
            want: vec![33, 66, 100, 16],
        },
        Case {
            name: "one constraint on node, all 4 nodes are candidates, maxSkew=3 (4/3/2/1)",
            pod: foo_pod(vec![soft(3, LABEL_HOSTNAME, "foo")]),
            nodes: hosts(&["node-a", "node-b", "node-c", "node-d"]),
            existing: vec![
                foos("node-a", 4),
                foos("node-b", 3),
                foos("node-c", 2),
                foos("node-d", 1),
            ],
            candidates: vec!["node-a", "node-b", "node-c", "node-d"],
            want: vec![44, 66, 77, 100],
        },
        Case {
            name: "one constraint on node, 3 out of 4 nodes are candidates (4/2/1/~3~)",
            pod: foo_pod(vec![soft(1, LABEL_HOSTNAME, "foo")]),
            nodes: hosts(&["node-a", "node-b", "node-x", "node-y"]),
            existing: vec![
                foos("node-a", 4),
                foos("node-b", 2),
                foos("node-x", 1),
                foos("node-y", 3),
            ],
            candidates: vec!["node-a", "node-b", "node-x"],
            want: vec![33, 83, 100],
        },
        Case {
            name: "one constraint on node, one candidate lacks the topology key",
            pod: foo_pod(vec![soft(1, LABEL_HOSTNAME, "foo")]),
            nodes: vec![
                node("node-a", &[(LABEL_HOSTNAME, "node-a")]),
                node("node-b", &[("n", "node-b")]),
                node("node-x", &[(LABEL_HOSTNAME, "node-x")]),
                node("node-y", &[(LABEL_HOSTNAME, "node-y")]),
            ],
            existing: vec![
                foos("node-a", 4),
                foos("node-b", 2),
                foos("node-x", 1),
                foos("node-y", 3),
            ],
            candidates: vec!["node-a", "node-b", "node-x"],
            want: vec![16, 0, 100],
        },
        Case {
            name: "one constraint on zone, 3 out of 4 nodes are candidates",
            pod: foo_pod(vec![soft(1, "zone", "foo")]),
            nodes: zone_nodes(),
            existing: vec![
                foos("node-a", 4),
                foos("node-b", 2),
                foos("node-x", 1),
                foos("node-y", 3),
            ],
            candidates: vec!["node-a", "node-b", "node-x"],
            want: vec![75, 75, 100],
        },
        Case {
            name: "two constraints on zone and node, 2 out of 4 nodes are candidates",
            pod: foo_pod(vec![soft(1, "zone", "foo"), soft(1, LABEL_HOSTNAME, "foo")]),
            nodes: zone_nodes(),
            existing: vec![
                foos("node-a", 2),
                foos("node-b", 1),
                foos("node-x", 2),
                foos("node-y", 4),
            ],
            candidates: vec!["node-a", "node-x"],
            want: vec![100, 63],
        },
        Case {
            name: "two constraints on zone and node, with different label selectors",
            pod: pod(
                "p",
                "",
                &[("foo", ""), ("bar", "")],
                spread(vec![soft(1, "zone", "foo"), soft(1, LABEL_HOSTNAME, "bar")]),
            ),
            nodes: zone_nodes(),
            existing: vec![
                foos("node-a", 1),
                vec![pod(
                    "p-b1",
                    "node-b",
                    &[("foo", ""), ("bar", "")],
                    json!({}),
                )],
                vec![
                    pod("p-y1", "node-y", &[("foo", "")], json!({})),
                    pod("p-y2", "node-y", &[("bar", "")], json!({})),
                ],
            ],
            candidates: vec!["node-a", "node-b", "node-x", "node-y"],
            want: vec![60, 20, 100, 60],
        },
        Case {
            name: "two constraints with different label selectors, some nodes have 0 pods",
            pod: pod(
                "p",
                "",
                &[("foo", ""), ("bar", "")],
                spread(vec![soft(1, "zone", "foo"), soft(1, LABEL_HOSTNAME, "bar")]),
            ),
            nodes: zone_nodes(),
            existing: vec![
                vec![pod("p-b1", "node-b", &[("bar", "")], json!({}))],
                foos("node-x", 1),
                vec![pod(
                    "p-y1",
                    "node-y",
                    &[("foo", ""), ("bar", "")],
                    json!({}),
                )],
            ],
            candidates: vec!["node-a", "node-b", "node-x", "node-y"],
            want: vec![100, 60, 40, 0],
        },
    ];
    let pl = plugin();
    for c in cases {
        let existing: Vec<Pod> = c.existing.into_iter().flatten().collect();
        let snap = snapshot(&c.nodes, &existing);
        let (status, got) = score_all(&pl, &PodInfo::new(Arc::new(c.pod)), &snap, &c.candidates);
        assert!(status.is_success(), "case {:?}: {status}", c.name);
        let want: Vec<(String, i64)> = c
            .candidates
            .iter()
            .map(|n| n.to_string())
            .zip(c.want)
            .collect();
        assert_eq!(got, want, "case {:?}", c.name);
    }
}

fn service(ns: &str, name: &str, selector: &[(&str, &str)]) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": labels(selector)},
    }))
    .expect("service")
}

fn listers_with(services: Vec<Service>, replica_sets: Vec<ReplicaSet>) -> Listers {
    let listers = Listers::default();
    listers
        .services
        .add_indexer(NAMESPACE_INDEX, namespace_indexer());
    for s in services {
        listers
            .services
            .upsert(client::informer::store::key_of(&s), Arc::new(s));
    }
    for rs in replica_sets {
        listers
            .replica_sets
            .upsert(client::informer::store::key_of(&rs), Arc::new(rs));
    }
    listers
}

fn system_defaulted(listers: Option<Listers>) -> PodTopologySpread {
    PodTopologySpread {
        default_constraints: Arc::new(system_default_constraints()),
        system_defaulted: true,
        listers,
    }
}

#[test]
fn system_defaults_spread_the_pods_of_a_service() {
    // Upstream's "system defaulting, nodes don't have zone, pods match service": the zone
    // constraint is skipped on nodes without the label, leaving hostname spreading.
    let nodes = hosts(&["node-a", "node-b", "node-c", "node-d"]);
    let existing: Vec<Pod> = [("node-a", 4), ("node-b", 3), ("node-c", 2), ("node-d", 1)]
        .into_iter()
        .flat_map(|(n, c)| foos(n, c))
        .collect();
    let snap = snapshot(&nodes, &existing);
    let p = PodInfo::new(Arc::new(pod("p", "", &[("foo", "")], json!({}))));
    let all = ["node-a", "node-b", "node-c", "node-d"];

    let pl = system_defaulted(Some(listers_with(
        vec![service("default", "svc", &[("foo", "")])],
        vec![],
    )));
    let (status, got) = score_all(&pl, &p, &snap, &all);
    assert!(status.is_success(), "{status}");
    let scores: Vec<i64> = got.iter().map(|(_, s)| *s).collect();
    assert_eq!(scores, vec![44, 66, 77, 100]);
    // The system defaults are soft: nothing to filter.
    let mut state = CycleState::new();
    assert!(PreFilterPlugin::pre_filter(&pl, &mut state, &p, &snap)
        .1
        .is_skip());

    // A Service in another namespace, or one without a selector, selects nothing.
    let pl = system_defaulted(Some(listers_with(
        vec![
            service("other", "svc", &[("foo", "")]),
            service("default", "headless", &[]),
        ],
        vec![],
    )));
    assert!(score_all(&pl, &p, &snap, &all).0.is_skip());

    // Without informers there are no listers: the defaults never apply.
    assert!(score_all(&system_defaulted(None), &p, &snap, &all)
        .0
        .is_skip());
}

#[test]
fn list_defaults_use_the_owning_replica_set_selector() {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}},
    }))
    .expect("rs");
    let pl = PodTopologySpread {
        default_constraints: Arc::new(vec![serde_json::from_value(json!({
            "maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
        }))
        .expect("constraint")]),
        system_defaulted: false,
        listers: Some(listers_with(vec![], vec![rs])),
    };
    let nodes = vec![
        node("node-a", &[("zone", "zone1")]),
        node("node-b", &[("zone", "zone2")]),
    ];
    let web = |name: &str, node: &str| pod(name, node, &[("app", "web")], json!({}));
    let snap = snapshot(&nodes, &[web("w1", "node-a"), web("w2", "node-a")]);
    let mut owned = web("p", "");
    owned.metadata.owner_references = Some(vec![serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "rs-uid",
        "controller": true,
    }))
    .expect("owner")]);
    let got = filter_all(&pl, &PodInfo::new(Arc::new(owned)), &snap);
    assert_eq!(got[0].1, Code::Unschedulable);
    assert_eq!(got[1].1, Code::Success);
    // Without an owner there is no selector, hence no default constraint.
    let got = filter_all(&pl, &PodInfo::new(Arc::new(web("p", ""))), &snap);
    assert!(got.iter().all(|(_, code, _)| *code == Code::Success));
}

#[test]
fn args_are_defaulted_and_validated() {
    let handle = crate::framework::Handle::for_tests();
    let pl = PodTopologySpread::from_args(None, &handle).expect("defaults");
    assert!(pl.system_defaulted);
    assert_eq!(pl.default_constraints.len(), 2);
    assert_eq!(pl.default_constraints[0].max_skew, 3);
    assert_eq!(pl.default_constraints[1].topology_key, LABEL_TOPOLOGY_ZONE);

    let list = json!({"defaultingType": "List", "defaultConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]});
    let pl = PodTopologySpread::from_args(Some(&list), &handle).expect("list");
    assert!(!pl.system_defaulted);
    assert_eq!(pl.default_constraints.len(), 1);

    let cases = [
        (
            json!({"defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            "defaultingType: Invalid value: \"System\": when .defaultConstraints are not empty",
        ),
        (
            json!({"defaultingType": "Other"}),
            "defaultingType: Unsupported value: \"Other\": supported values: \"System\", \"List\"",
        ),
        (
            json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            "defaultConstraints[0].maxSkew: Invalid value: 0: not in valid range (0, inf)",
        ),
        (
            json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            "defaultConstraints[0].topologyKey: Required value: can not be empty",
        ),
        (
            json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Maybe"}]}),
            "defaultConstraints[0].whenUnsatisfiable: Unsupported value: \"Maybe\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\"",
        ),
        (
            json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                 "labelSelector": {}}]}),
            "defaultConstraints[0].labelSelector: Forbidden: constraint must not define a selector, as they deduced for each pod",
        ),
        (
            json!({"defaultingType": "List", "defaultConstraints": [
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"},
                {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway"}]}),
            "defaultConstraints[1]: Duplicate value: \"{zone, ScheduleAnyway}\"",
        ),
    ];
    for (args, want) in cases {
        let err = PodTopologySpread::from_args(Some(&args), &handle)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(want), "args {args}");
    }
}

fn pod_event(p: Pod) -> EventObject {
    EventObject::Pod(Arc::new(p))
}

fn node_event(n: Node) -> EventObject {
    EventObject::Node(Arc::new(n))
}

#[test]
fn queueing_hints() {
    let pl = plugin();
    let target = pod(
        "p",
        "",
        &[("foo", "")],
        spread(vec![constraint(1, "zone", DO_NOT_SCHEDULE, "foo")]),
    );
    let assigned = |labels_: &[(&str, &str)]| pod("q", "node-a", labels_, json!({}));
    let q = |r: Result<QueueingHint, String>| r.expect("hint");

    // Pods.
    let hint = |old: Option<Pod>, new: Option<Pod>| {
        q(pl.hint_after_pod_change(
            &target,
            old.map(pod_event).as_ref(),
            new.map(pod_event).as_ref(),
        ))
    };
    assert_eq!(
        hint(None, Some(assigned(&[("foo", "")]))),
        QueueingHint::Queue
    );
    assert_eq!(
        hint(None, Some(assigned(&[("bar", "")]))),
        QueueingHint::Skip
    );
    assert_eq!(
        hint(Some(assigned(&[("foo", "")])), None),
        QueueingHint::Queue
    );
    assert_eq!(
        hint(
            Some(assigned(&[("foo", "")])),
            Some(assigned(&[("bar", "")]))
        ),
        QueueingHint::Queue
    );
    assert_eq!(
        hint(
            Some(assigned(&[("foo", "1")])),
            Some(assigned(&[("foo", "2")]))
        ),
        QueueingHint::Skip
    );
    // Unscheduled pods and pods of other namespaces cannot help.
    assert_eq!(
        hint(None, Some(pod("u", "", &[("foo", "")], json!({})))),
        QueueingHint::Skip
    );
    assert_eq!(
        hint(
            None,
            Some(pod_in("other", "o", "node-a", &[("foo", "")], json!({})))
        ),
        QueueingHint::Skip
    );

    // Nodes.
    let nhint = |old: Option<Node>, new: Option<Node>| {
        q(pl.hint_after_node_change(
            &target,
            old.map(node_event).as_ref(),
            new.map(node_event).as_ref(),
        ))
    };
    let zoned = |z: &str| node("n", &[("zone", z)]);
    assert_eq!(nhint(None, Some(zoned("zone1"))), QueueingHint::Queue);
    assert_eq!(nhint(None, Some(node("n", &[]))), QueueingHint::Skip);
    assert_eq!(nhint(Some(zoned("zone1")), None), QueueingHint::Queue);
    assert_eq!(
        nhint(Some(node("n", &[])), Some(zoned("zone1"))),
        QueueingHint::Queue
    );
    assert_eq!(
        nhint(Some(zoned("zone1")), Some(zoned("zone2"))),
        QueueingHint::Queue
    );
    assert_eq!(
        nhint(
            Some(zoned("zone1")),
            Some(node("n", &[("zone", "zone1"), ("other", "x")]))
        ),
        QueueingHint::Skip
    );
    assert_eq!(
        nhint(
            Some(zoned("zone1")),
            Some(tainted(zoned("zone1"), "k", "NoSchedule"))
        ),
        QueueingHint::Queue
    );
    assert!(pl
        .hint_after_node_change(&target, None, Some(&pod_event(assigned(&[]))))
        .is_err());
}

#[test]
fn plugin_registers_its_extension_points_and_events() {
    let pl = plugin();
    assert_eq!(pl.name(), NAME);
    assert!(Plugin::pre_filter(&pl).is_some_and(|p| p.extensions().is_some()));
    assert!(Plugin::filter(&pl).is_some());
    assert!(Plugin::pre_score(&pl).is_some());
    assert!(Plugin::score(&pl).is_some_and(|s| s.has_normalize()));
    let events = pl.events_to_register();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.hint.is_some()));
}

/// A timing probe: 5,000 nodes in 10 zones with 4 pods each, a pod with a zone and a hostname
/// constraint. Run with
/// `cargo test --release -p scheduler --lib podtopologyspread::tests::perf -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_spread_5000_nodes() {
    let nodes: Vec<Node> = (0..5000)
        .map(|i| {
            let name = format!("node-{i}");
            node(
                &name,
                &[(LABEL_HOSTNAME, &name), ("zone", &format!("z{}", i % 10))],
            )
        })
        .collect();
    let pods: Vec<Pod> = nodes
        .iter()
        .flat_map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            (0..4).map(move |j| foo_on(&format!("p-{name}-{j}"), &name))
        })
        .collect();
    let snap = snapshot(&nodes, &pods);
    let pl = plugin();
    let incoming = PodInfo::new(Arc::new(pod(
        "p",
        "",
        &[("foo", "")],
        spread(vec![
            constraint(1, "zone", DO_NOT_SCHEDULE, "foo"),
            constraint(1, LABEL_HOSTNAME, SCHEDULE_ANYWAY, "foo"),
        ]),
    )));
    let rounds = 20;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut state = CycleState::new();
        assert!(
            PreFilterPlugin::pre_filter(&pl, &mut state, &incoming, &snap)
                .1
                .is_success()
        );
    }
    let pre_filter = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut state = CycleState::new();
        assert!(
            PreFilterPlugin::pre_filter(&pl, &mut state, &incoming, &snap)
                .1
                .is_success()
        );
        let passed = snap
            .list()
            .iter()
            .filter(|n| FilterPlugin::filter(&pl, &state, &incoming, n).is_success())
            .count();
        assert_eq!(passed, 5000);
    }
    let filter = start.elapsed() / rounds;
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut state = CycleState::new();
        let list = snap.list();
        assert!(PreScorePlugin::pre_score(&pl, &mut state, &incoming, list, &snap).is_success());
        for n in list {
            let _ = ScorePlugin::score(&pl, &state, &incoming, n);
        }
    }
    eprintln!(
        "PodTopologySpread, 5000 nodes x 4 pods: PreFilter {pre_filter:?}, PreFilter+Filter {filter:?}, PreScore+Score {:?} per cycle",
        start.elapsed() / rounds
    );
}
