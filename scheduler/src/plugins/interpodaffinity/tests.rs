//! Table-driven tests: required (anti-)affinity verdicts per node, symmetry, the first pod of
//! a self-affine group, incremental updates, upstream's preferred-affinity scoring cases,
//! args validation and queueing hints.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use serde_json::{json, Value};

use super::*;
use crate::framework::{Code, CycleState, NodeScore, PreFilterExtensions, Snapshot, Status};

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

/// A pod named `name` (also its uid) in `ns`, on `node` when not empty, with `affinity`.
fn pod_in(ns: &str, name: &str, node: &str, pairs: &[(&str, &str)], affinity: Value) -> Pod {
    let mut spec = json!({"containers": []});
    if !affinity.is_null() {
        spec["affinity"] = affinity;
    }
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": ns, "uid": name, "labels": labels(pairs)},
        "spec": spec,
    }))
    .expect("pod")
}

fn pod(name: &str, node: &str, pairs: &[(&str, &str)], affinity: Value) -> Pod {
    pod_in("default", name, node, pairs, affinity)
}

fn info(p: Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(p)))
}

fn term(key: &str, op: &str, values: &[&str], topology_key: &str) -> Value {
    let mut expr = json!({"key": key, "operator": op});
    if !values.is_empty() {
        expr["values"] = json!(values);
    }
    json!({"labelSelector": {"matchExpressions": [expr]}, "topologyKey": topology_key})
}

fn required_affinity(terms: Vec<Value>) -> Value {
    json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

fn required_anti_affinity(terms: Vec<Value>) -> Value {
    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}})
}

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

fn namespaces() -> Store<Namespace> {
    let store = Store::default();
    for (name, team) in [
        ("subteam1.team1", "team1"),
        ("subteam2.team1", "team1"),
        ("subteam1.team2", "team2"),
        ("subteam2.team2", "team2"),
    ] {
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name, "labels": {"team": team}}}))
                .expect("namespace");
        store.upsert(name.to_string(), Arc::new(ns));
    }
    store
}

fn plugin() -> InterPodAffinity {
    InterPodAffinity {
        args: Args::default(),
        namespaces: Some(namespaces()),
    }
}

fn filter_all(
    pl: &InterPodAffinity,
    pod: &PodInfo,
    snap: &Snapshot,
) -> (Status, Vec<(Code, String)>) {
    let mut state = CycleState::new();
    let (_, pre) = PreFilterPlugin::pre_filter(pl, &mut state, pod, snap);
    if !pre.is_success() {
        return (pre, Vec::new());
    }
    let verdicts = snap
        .list()
        .iter()
        .map(|n| {
            let s = FilterPlugin::filter(pl, &state, pod, n);
            (s.code(), s.message())
        })
        .collect();
    (pre, verdicts)
}

const OK: (Code, &str) = (Code::Success, "");
const AFFINITY: (Code, &str) = (
    Code::UnschedulableAndUnresolvable,
    ERR_REASON_AFFINITY_RULES_NOT_MATCH,
);
const ANTI: (Code, &str) = (
    Code::Unschedulable,
    ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH,
);
const EXISTING_ANTI: (Code, &str) = (
    Code::Unschedulable,
    ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH,
);

const HOST: &str = "kubernetes.io/hostname";
const ZONE: &str = "topology.kubernetes.io/zone";

fn cluster() -> Vec<Node> {
    vec![
        node("node-a", &[(HOST, "node-a"), (ZONE, "z1")]),
        node("node-b", &[(HOST, "node-b"), (ZONE, "z1")]),
        node("node-c", &[(HOST, "node-c"), (ZONE, "z2")]),
        node("node-d", &[(HOST, "node-d")]),
    ]
}

#[test]
fn filter_verdicts() {
    struct Case {
        name: &'static str,
        pod: Pod,
        existing: Vec<Pod>,
        want: Vec<(Code, &'static str)>,
    }
    let web = |name: &str, node: &str| pod(name, node, &[("app", "web")], Value::Null);
    let db = |name: &str, node: &str| pod(name, node, &[("app", "db")], Value::Null);
    let cases = vec![
        Case {
            name: "anti-affinity by hostname keeps the pod off the node running a match",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_anti_affinity(vec![term("app", "In", &["web"], HOST)]),
            ),
            existing: vec![web("w1", "node-a")],
            want: vec![ANTI, OK, OK, OK],
        },
        Case {
            name: "anti-affinity by zone keeps the pod out of the whole zone",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_anti_affinity(vec![term("app", "In", &["web"], ZONE)]),
            ),
            existing: vec![web("w1", "node-a")],
            // node-d has no zone label: the term cannot be violated there.
            want: vec![ANTI, ANTI, OK, OK],
        },
        Case {
            name: "anti-affinity ignores pods of other namespaces",
            pod: pod(
                "p",
                "",
                &[],
                required_anti_affinity(vec![term("app", "In", &["web"], HOST)]),
            ),
            existing: vec![pod_in(
                "other",
                "w1",
                "node-a",
                &[("app", "web")],
                Value::Null,
            )],
            want: vec![OK, OK, OK, OK],
        },
        Case {
            name: "affinity to an existing pod by zone",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_affinity(vec![term("app", "In", &["db"], ZONE)]),
            ),
            existing: vec![db("d1", "node-a")],
            // node-c is in another zone, node-d has no zone at all.
            want: vec![OK, OK, AFFINITY, AFFINITY],
        },
        Case {
            name: "affinity with no matching pod anywhere (and not matching itself)",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_affinity(vec![term("app", "In", &["db"], ZONE)]),
            ),
            existing: vec![web("w1", "node-a")],
            want: vec![AFFINITY, AFFINITY, AFFINITY, AFFINITY],
        },
        Case {
            // The first pod of a group with affinity to itself may go to any node that has
            // the topology key.
            name: "the first pod of a self-affine group",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_affinity(vec![term("app", "In", &["web"], ZONE)]),
            ),
            existing: vec![db("d1", "node-a")],
            want: vec![OK, OK, OK, AFFINITY],
        },
        Case {
            name: "once a member runs, the self-affine group sticks to its zone",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                required_affinity(vec![term("app", "In", &["web"], ZONE)]),
            ),
            existing: vec![web("w1", "node-c")],
            want: vec![AFFINITY, AFFINITY, OK, AFFINITY],
        },
        Case {
            name: "symmetry: an existing pod's anti-affinity rejects the incoming pod",
            pod: web("p", ""),
            existing: vec![pod(
                "guard",
                "node-a",
                &[("app", "guard")],
                required_anti_affinity(vec![term("app", "In", &["web"], ZONE)]),
            )],
            want: vec![EXISTING_ANTI, EXISTING_ANTI, OK, OK],
        },
        Case {
            name: "symmetry: an existing pod's anti-affinity by namespace selector",
            pod: pod_in("subteam1.team1", "p", "", &[("app", "web")], Value::Null),
            existing: vec![pod_in(
                "subteam1.team2",
                "guard",
                "node-c",
                &[],
                required_anti_affinity(vec![json!({
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "namespaceSelector": {"matchLabels": {"team": "team1"}},
                    "topologyKey": HOST,
                })]),
            )],
            want: vec![OK, OK, EXISTING_ANTI, OK],
        },
        Case {
            name: "the incoming pod's namespace selector picks namespaces by label",
            pod: pod_in(
                "subteam1.team2",
                "p",
                "",
                &[],
                required_anti_affinity(vec![json!({
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "namespaceSelector": {"matchLabels": {"team": "team1"}},
                    "topologyKey": HOST,
                })]),
            ),
            existing: vec![
                pod_in(
                    "subteam2.team1",
                    "w1",
                    "node-a",
                    &[("app", "web")],
                    Value::Null,
                ),
                pod_in(
                    "subteam2.team2",
                    "w2",
                    "node-b",
                    &[("app", "web")],
                    Value::Null,
                ),
            ],
            want: vec![ANTI, OK, OK, OK],
        },
        Case {
            name: "an empty namespace selector selects every namespace",
            pod: pod(
                "p",
                "",
                &[],
                required_anti_affinity(vec![json!({
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "namespaceSelector": {},
                    "topologyKey": HOST,
                })]),
            ),
            existing: vec![pod_in(
                "elsewhere",
                "w1",
                "node-b",
                &[("app", "web")],
                Value::Null,
            )],
            want: vec![OK, ANTI, OK, OK],
        },
        Case {
            name: "affinity is checked before anti-affinity",
            pod: pod(
                "p",
                "",
                &[("app", "web")],
                json!({
                    "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        term("app", "In", &["db"], ZONE)]},
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        term("app", "In", &["web"], HOST)]},
                }),
            ),
            existing: vec![db("d1", "node-a"), web("w1", "node-a"), web("w2", "node-c")],
            want: vec![ANTI, OK, AFFINITY, AFFINITY],
        },
    ];
    let pl = plugin();
    let nodes = cluster();
    for c in cases {
        let snap = snapshot(&nodes, &c.existing);
        let (pre, got) = filter_all(&pl, &PodInfo::new(Arc::new(c.pod)), &snap);
        assert!(pre.is_success(), "case {:?}: {pre}", c.name);
        let want: Vec<(Code, String)> = c.want.iter().map(|(c, r)| (*c, r.to_string())).collect();
        assert_eq!(got, want, "case {:?}", c.name);
    }
}

#[test]
fn pre_filter_skips_and_rejects_malformed_pods() {
    let pl = plugin();
    let snap = snapshot(
        &cluster(),
        &[pod("w1", "node-a", &[("app", "web")], Value::Null)],
    );
    // Nothing constrains a plain pod.
    let (pre, _) = filter_all(
        &pl,
        &PodInfo::new(Arc::new(pod("p", "", &[], Value::Null))),
        &snap,
    );
    assert!(pre.is_skip());

    let bad = pod(
        "p",
        "",
        &[],
        required_affinity(vec![term("app", "Bogus", &["x"], ZONE)]),
    );
    let (pre, _) = filter_all(&pl, &PodInfo::new(Arc::new(bad)), &snap);
    assert_eq!(pre.code(), Code::UnschedulableAndUnresolvable);
    assert!(
        pre.message().starts_with("parsing pod: "),
        "{}",
        pre.message()
    );
}

#[test]
fn add_and_remove_pod_update_all_three_counts() {
    let pl = plugin();
    let nodes = cluster();
    let guard = pod(
        "guard",
        "node-a",
        &[("app", "guard")],
        required_anti_affinity(vec![term("app", "In", &["web"], HOST)]),
    );
    let snap = snapshot(&nodes, std::slice::from_ref(&guard));
    let node_a = snap.get("node-a").expect("a").clone();
    let node_b = snap.get("node-b").expect("b").clone();
    let node_c = snap.get("node-c").expect("c").clone();
    let p = PodInfo::new(Arc::new(pod(
        "p",
        "",
        &[("app", "web")],
        json!({
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", "In", &["db"], ZONE)]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", "In", &["web"], HOST)]},
        }),
    )));
    let mut state = CycleState::new();
    assert!(PreFilterPlugin::pre_filter(&pl, &mut state, &p, &snap)
        .1
        .is_success());
    let code = |s: &CycleState, n: &NodeInfo| FilterPlugin::filter(&pl, s, &p, n).code();
    assert_eq!(code(&state, &node_a), Code::UnschedulableAndUnresolvable);

    // A nominated db pod in z1 satisfies the affinity; the guard's anti-affinity still holds
    // on node-a.
    let mut s = state.clone();
    let db = info(pod("d1", "node-b", &[("app", "db")], Value::Null));
    assert!(PreFilterExtensions::add_pod(&pl, &mut s, &p, &db, &node_b).is_success());
    assert_eq!(code(&s, &node_b), Code::Success);
    assert_eq!(
        FilterPlugin::filter(&pl, &s, &p, &node_a).message(),
        ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH
    );
    // Removing the guard (preemption) lifts it.
    let victim = info(guard);
    assert!(PreFilterExtensions::remove_pod(&pl, &mut s, &p, &victim, &node_a).is_success());
    assert_eq!(code(&s, &node_a), Code::Success);
    // A web pod added on node-b trips the pod's own anti-affinity there.
    let web = info(pod("w1", "node-b", &[("app", "web")], Value::Null));
    assert!(PreFilterExtensions::add_pod(&pl, &mut s, &p, &web, &node_b).is_success());
    assert_eq!(code(&s, &node_b), Code::Unschedulable);
    // The original state never changed; node-c (z2) has no db pod.
    assert_eq!(code(&state, &node_b), Code::UnschedulableAndUnresolvable);
    assert_eq!(code(&s, &node_c), Code::UnschedulableAndUnresolvable);
}

fn preferred(kind: &str, weight: i32, term: Value) -> Value {
    json!({kind: {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": weight, "podAffinityTerm": term}]}})
}

fn score_all(pl: &InterPodAffinity, pod: &PodInfo, snap: &Snapshot) -> (Status, Vec<i64>) {
    let mut state = CycleState::new();
    let nodes = snap.list().to_vec();
    let status = PreScorePlugin::pre_score(pl, &mut state, pod, &nodes, snap);
    if !status.is_success() {
        return (status, Vec::new());
    }
    let mut scores: Vec<NodeScore> = nodes
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
    (status, scores.into_iter().map(|s| s.score).collect())
}

#[test]
fn preferred_affinity_scores_match_upstream() {
    let s1 = [("security", "S1")];
    let s2 = [("security", "S2")];
    let china = [("region", "China")];
    let india = [("region", "India")];
    let az1 = [("az", "az1")];
    let az2 = [("az", "az2")];
    let china_az1 = [("region", "China"), ("az", "az1")];
    let stay_with_s1_in_region =
        || preferred("podAffinity", 5, term("security", "In", &["S1"], "region"));
    let stay_with_s2_in_region =
        || preferred("podAffinity", 6, term("security", "In", &["S2"], "region"));
    let away_from_s1_in_az =
        || preferred("podAntiAffinity", 5, term("security", "In", &["S1"], "az"));
    let away_from_s2_in_az =
        || preferred("podAntiAffinity", 5, term("security", "In", &["S2"], "az"));
    let with_s1_away_from_s2 = || {
        json!({
            "podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 8, "podAffinityTerm": term("security", "In", &["S1"], "region")}]},
            "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 5, "podAffinityTerm": term("security", "In", &["S2"], "az")}]},
        })
    };
    let affinity3 = json!({"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 8, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
            {"key": "security", "operator": "NotIn", "values": ["S1"]},
            {"key": "security", "operator": "In", "values": ["S2"]}]}, "topologyKey": "region"}},
        {"weight": 2, "podAffinityTerm": {"labelSelector": {"matchExpressions": [
            {"key": "security", "operator": "Exists"},
            {"key": "wrongkey", "operator": "DoesNotExist"}]}, "topologyKey": "region"}},
    ]}});
    let hard_affinity = || {
        json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchExpressions": [
                {"key": "security", "operator": "In", "values": ["S1", "value2"]}]},
             "topologyKey": "region"},
            {"labelSelector": {"matchExpressions": [
                {"key": "security", "operator": "Exists"},
                {"key": "wrongkey", "operator": "DoesNotExist"}]},
             "topologyKey": "region"},
        ]}})
    };
    let ns_selector_term = json!({
        "labelSelector": {"matchExpressions": [{"key": "security", "operator": "In", "values": ["S1"]}]},
        "topologyKey": "region",
        "namespaces": ["subteam2.team2"],
        "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "In", "values": ["team1"]}]},
    });
    let ex =
        |name: &str, node: &str, l: &[(&str, &str)], aff: Value| pod_in("", name, node, l, aff);

    struct Case {
        name: &'static str,
        pod: Pod,
        existing: Vec<Pod>,
        nodes: Vec<Node>,
        want: Vec<i64>,
    }
    let n3 = |a: &[(&str, &str)], b: &[(&str, &str)], c: &[(&str, &str)]| {
        vec![node("node1", a), node("node2", b), node("node3", c)]
    };
    let cases = vec![
        Case {
            name: "affinity: the node in the matching pod's region scores high",
            pod: ex("p", "", &s1, stay_with_s1_in_region()),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node2", &s2, Value::Null),
                ex("e3", "node3", &s1, Value::Null),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![100, 0, 0],
        },
        Case {
            name: "affinity: every node of the matching region scores the same",
            pod: ex("p", "", &[], stay_with_s1_in_region()),
            existing: vec![ex("e1", "node1", &s1, Value::Null)],
            nodes: n3(&china, &china_az1, &india),
            want: vec![100, 100, 0],
        },
        Case {
            name: "affinity: the region with more matches wins",
            pod: ex("p", "", &s1, stay_with_s2_in_region()),
            existing: vec![
                ex("e1", "node1", &s2, Value::Null),
                ex("e2", "node1", &s2, Value::Null),
                ex("e3", "node2", &s2, Value::Null),
                ex("e4", "node3", &s2, Value::Null),
                ex("e5", "node4", &s2, Value::Null),
                ex("e6", "node5", &s2, Value::Null),
            ],
            nodes: vec![
                node("node1", &china),
                node("node2", &india),
                node("node3", &china),
                node("node4", &china),
                node("node5", &india),
            ],
            want: vec![100, 0, 100, 100, 0],
        },
        Case {
            name: "affinity: different operators, some match failures",
            pod: ex("p", "", &s1, affinity3),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node2", &s2, Value::Null),
                ex("e3", "node3", &s1, Value::Null),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![20, 100, 0],
        },
        Case {
            name: "affinity symmetry: existing pods' preferred affinity",
            pod: ex("p", "", &s2, Value::Null),
            existing: vec![
                ex("e1", "node1", &s1, stay_with_s1_in_region()),
                ex("e2", "node2", &s2, stay_with_s2_in_region()),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![0, 100, 0],
        },
        Case {
            name: "affinity symmetry with namespace selector",
            pod: pod_in("subteam1.team1", "p", "", &s1, Value::Null),
            existing: vec![
                ex(
                    "e1",
                    "node1",
                    &s1,
                    preferred("podAffinity", 5, ns_selector_term.clone()),
                ),
                ex("e2", "node2", &s2, stay_with_s2_in_region()),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![100, 0, 0],
        },
        Case {
            name: "anti-affinity symmetry with namespace selector",
            pod: pod_in("subteam1.team1", "p", "", &s1, Value::Null),
            existing: vec![
                ex(
                    "e1",
                    "node1",
                    &s1,
                    preferred("podAntiAffinity", 5, ns_selector_term.clone()),
                ),
                ex("e2", "node2", &s2, stay_with_s2_in_region()),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![0, 100, 100],
        },
        Case {
            name: "affinity symmetry: existing pods' required affinity (hardPodAffinityWeight)",
            pod: ex("p", "", &s1, Value::Null),
            existing: vec![
                ex("e1", "node1", &s1, hard_affinity()),
                ex("e2", "node2", &s2, hard_affinity()),
            ],
            nodes: n3(&china, &india, &az1),
            want: vec![100, 100, 0],
        },
        Case {
            name: "anti-affinity: the node running a matching pod scores low",
            pod: ex("p", "", &s1, away_from_s1_in_az()),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node2", &s2, Value::Null),
            ],
            nodes: vec![node("node1", &az1), node("node2", &china)],
            want: vec![0, 100],
        },
        Case {
            name: "anti-affinity symmetry",
            pod: ex("p", "", &s2, Value::Null),
            existing: vec![
                ex("e1", "node1", &s1, away_from_s2_in_az()),
                ex("e2", "node2", &s2, away_from_s1_in_az()),
            ],
            nodes: vec![node("node1", &az1), node("node2", &az2)],
            want: vec![0, 100],
        },
        Case {
            name: "affinity and anti-affinity with the same labels",
            pod: ex("p", "", &s1, with_s1_away_from_s2()),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node1", &s1, Value::Null),
                ex("e3", "node2", &s1, Value::Null),
                ex("e4", "node3", &s1, Value::Null),
                ex("e5", "node3", &s1, Value::Null),
                ex("e6", "node4", &s1, Value::Null),
                ex("e7", "node5", &s1, Value::Null),
            ],
            nodes: vec![
                node("node1", &china_az1),
                node("node2", &india),
                node("node3", &china),
                node("node4", &china),
                node("node5", &india),
            ],
            want: vec![100, 0, 100, 100, 0],
        },
        Case {
            name: "affinity, anti-affinity and symmetry together",
            pod: ex("p", "", &s1, with_s1_away_from_s2()),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node2", &s2, Value::Null),
                ex("e3", "node3", &[], with_s1_away_from_s2()),
                ex("e4", "node4", &[], away_from_s1_in_az()),
            ],
            nodes: vec![
                node("node1", &china),
                node("node2", &az1),
                node("node3", &india),
                node("node4", &az2),
            ],
            want: vec![100, 0, 100, 0],
        },
        Case {
            name: "no panic when only some nodes of a topology have pods with affinity",
            pod: ex("p", "", &s1, Value::Null),
            existing: vec![
                ex("e1", "node1", &s1, Value::Null),
                ex("e2", "node2", &[], with_s1_away_from_s2()),
            ],
            nodes: vec![node("node1", &china), node("node2", &china)],
            want: vec![0, 0],
        },
    ];
    let pl = plugin();
    for c in cases {
        let snap = snapshot(&c.nodes, &c.existing);
        let (status, got) = score_all(&pl, &PodInfo::new(Arc::new(c.pod)), &snap);
        assert!(status.is_success(), "case {:?}: {status}", c.name);
        assert_eq!(got, c.want, "case {:?}", c.name);
    }
}

#[test]
fn pre_score_skips_and_errors() {
    let snap = snapshot(
        &[node("node1", &[("region", "China")])],
        &[pod("e1", "node1", &[("security", "S1")], Value::Null)],
    );
    // No affinity anywhere: nothing to score.
    let plain = PodInfo::new(Arc::new(pod("p", "", &[("security", "S1")], Value::Null)));
    assert!(score_all(&plugin(), &plain, &snap).0.is_skip());

    // Existing pods' required affinity counts with hardPodAffinityWeight > 0 only.
    let hard = pod(
        "e1",
        "node1",
        &[],
        required_affinity(vec![term("security", "In", &["S1"], "region")]),
    );
    let snap = snapshot(
        &[node("node1", &[("region", "China")]), node("node2", &[])],
        &[hard],
    );
    let (status, scores) = score_all(&plugin(), &plain, &snap);
    assert!(status.is_success());
    assert_eq!(scores, vec![100, 0]);
    let zero = InterPodAffinity {
        args: Args {
            hard_pod_affinity_weight: 0,
            ..Args::default()
        },
        namespaces: None,
    };
    assert!(score_all(&zero, &plain, &snap).0.is_skip());
    // ignorePreferredTermsOfExistingPods: a pod without preferences of its own skips.
    let ignoring = InterPodAffinity {
        args: Args {
            ignore_preferred_terms_of_existing_pods: true,
            ..Args::default()
        },
        namespaces: None,
    };
    assert!(score_all(&ignoring, &plain, &snap).0.is_skip());

    let bad = pod(
        "p",
        "",
        &[],
        preferred(
            "podAffinity",
            8,
            term("security", "In", &["{{.bad-value.}}"], "region"),
        ),
    );
    let (status, _) = score_all(&plugin(), &PodInfo::new(Arc::new(bad)), &snap);
    assert_eq!(status.code(), Code::Error);
    assert!(
        status.message().contains("{{.bad-value.}}"),
        "{}",
        status.message()
    );
}

#[test]
fn args_are_defaulted_and_validated() {
    let handle = Handle::for_tests();
    let pl = InterPodAffinity::from_args(None, &handle).expect("defaults");
    assert_eq!(pl.args, Args::default());
    assert_eq!(pl.args.hard_pod_affinity_weight, 1);
    let pl = InterPodAffinity::from_args(
        Some(&json!({"hardPodAffinityWeight": 100, "ignorePreferredTermsOfExistingPods": true})),
        &handle,
    )
    .expect("valid");
    assert_eq!(
        pl.args,
        Args {
            hard_pod_affinity_weight: 100,
            ignore_preferred_terms_of_existing_pods: true
        }
    );
    for (args, want) in [
        (
            json!({"hardPodAffinityWeight": 101}),
            "hardPodAffinityWeight: Invalid value: 101: not in valid range [0, 100]",
        ),
        (
            json!({"hardPodAffinityWeight": -1}),
            "hardPodAffinityWeight: Invalid value: -1: not in valid range [0, 100]",
        ),
        (
            json!({"hardPodAffinityWeight": "1"}),
            "hardPodAffinityWeight: must be an integer, not \"1\"",
        ),
    ] {
        let err = InterPodAffinity::from_args(Some(&args), &handle)
            .err()
            .map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some(want));
    }
}

#[test]
fn queueing_hints() {
    let target = pod(
        "p",
        "",
        &[],
        json!({
            "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", "In", &["db"], ZONE)]},
            "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                term("app", "In", &["web"], HOST)]},
        }),
    );
    let ev = |p: Pod| EventObject::Pod(Arc::new(p));
    let assigned = |app: &str| pod("q", "node-a", &[("app", app)], Value::Null);
    let hint = |old: Option<Pod>, new: Option<Pod>| {
        hint_after_pod_change(&target, old.map(ev).as_ref(), new.map(ev).as_ref()).expect("hint")
    };
    assert_eq!(hint(None, Some(assigned("db"))), QueueingHint::Queue);
    assert_eq!(hint(None, Some(assigned("web"))), QueueingHint::Skip);
    assert_eq!(hint(Some(assigned("web")), None), QueueingHint::Queue);
    assert_eq!(hint(Some(assigned("db")), None), QueueingHint::Skip);
    assert_eq!(
        hint(Some(assigned("x")), Some(assigned("db"))),
        QueueingHint::Queue
    );
    assert_eq!(
        hint(Some(assigned("web")), Some(assigned("x"))),
        QueueingHint::Queue
    );
    assert_eq!(
        hint(Some(assigned("x")), Some(assigned("y"))),
        QueueingHint::Skip
    );
    // Unscheduled pods cannot help.
    assert_eq!(
        hint(None, Some(pod("u", "", &[("app", "db")], Value::Null))),
        QueueingHint::Skip
    );

    let nev = |n: Node| EventObject::Node(Arc::new(n));
    let nhint = |n: Node| hint_after_node_change(&target, None, Some(&nev(n))).expect("hint");
    assert_eq!(nhint(node("n", &[(ZONE, "z1")])), QueueingHint::Queue);
    assert_eq!(nhint(node("n", &[(HOST, "n")])), QueueingHint::Queue);
    assert_eq!(nhint(node("n", &[("other", "x")])), QueueingHint::Skip);
}

#[test]
fn plugin_registers_its_extension_points_and_events() {
    let pl = InterPodAffinity::from_args(None, &Handle::for_tests()).expect("plugin");
    assert_eq!(pl.name(), NAME);
    assert!(Plugin::pre_filter(&pl).is_some_and(|p| p.extensions().is_some()));
    assert!(Plugin::filter(&pl).is_some());
    assert!(Plugin::pre_score(&pl).is_some());
    assert!(Plugin::score(&pl).is_some_and(|s| s.has_normalize()));
    let events = pl.events_to_register();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.hint.is_some()));
}

/// A timing probe for the scheduler_perf anti-affinity workload: 5,000 nodes, each running
/// pods with required anti-affinity by hostname. Run with
/// `cargo test --release -p scheduler --lib interpodaffinity::tests::perf -- --ignored --nocapture`.
#[test]
#[ignore]
fn perf_anti_affinity_5000_nodes() {
    let nodes: Vec<Node> = (0..5000)
        .map(|i| {
            let name = format!("node-{i}");
            node(&name, &[(HOST, &name), (ZONE, &format!("z{}", i % 10))])
        })
        .collect();
    let anti = || required_anti_affinity(vec![term("color", "In", &["green"], HOST)]);
    // As scheduler_perf's anti-affinity workload: green pods keep away from each other by
    // hostname; every other node runs one, and three plain pods run everywhere.
    let mut pods = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let name = n.metadata.name.clone().unwrap_or_default();
        if i % 2 == 0 {
            pods.push(pod(&format!("g-{i}"), &name, &[("color", "green")], anti()));
        }
        for j in 0..3 {
            pods.push(pod(
                &format!("p-{i}-{j}"),
                &name,
                &[("color", "blue")],
                Value::Null,
            ));
        }
    }
    let snap = snapshot(&nodes, &pods);
    let pl = plugin();
    let incoming = PodInfo::new(Arc::new(pod("p", "", &[("color", "green")], anti())));
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
    let mut passed = 0;
    for _ in 0..rounds {
        let mut state = CycleState::new();
        assert!(
            PreFilterPlugin::pre_filter(&pl, &mut state, &incoming, &snap)
                .1
                .is_success()
        );
        passed = snap
            .list()
            .iter()
            .filter(|n| FilterPlugin::filter(&pl, &state, &incoming, n).is_success())
            .count();
    }
    let per_cycle = start.elapsed() / rounds;
    assert_eq!(passed, 2500);
    let start = std::time::Instant::now();
    for _ in 0..rounds {
        let mut state = CycleState::new();
        let status = PreScorePlugin::pre_score(&pl, &mut state, &incoming, snap.list(), &snap);
        if status.is_success() {
            for n in snap.list() {
                let _ = ScorePlugin::score(&pl, &state, &incoming, n);
            }
        }
    }
    eprintln!(
        "InterPodAffinity, 5000 nodes x 4 pods: PreFilter {pre_filter:?}, PreFilter+Filter {per_cycle:?}, PreScore+Score {:?} per cycle",
        start.elapsed() / rounds
    );
}
