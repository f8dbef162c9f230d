use super::*;
use crate::framework::{Code, Framework};
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};

fn node(name: &str, allocatable: Value) -> Node {
    serde_json::from_value(
        json!({"metadata": {"name": name}, "status": {"allocatable": allocatable}}),
    )
    .expect("node")
}

fn pod_spec(uid: &str, spec: Value) -> Pod {
    serde_json::from_value(
        json!({"metadata": {"name": uid, "namespace": "ns", "uid": uid}, "spec": spec}),
    )
    .expect("pod")
}

/// A pod whose containers request `requests` (one container each).
fn pod(uid: &str, requests: &[Value]) -> Pod {
    let containers: Vec<Value> = requests
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"name": format!("c{i}"), "resources": {"requests": r}}))
        .collect();
    pod_spec(uid, json!({"containers": containers}))
}

fn node_info(n: Node, pods: Vec<Pod>) -> NodeInfo {
    let mut info = NodeInfo::new(Some(Arc::new(n)));
    for p in pods {
        info.add_pod(Arc::new(PodInfo::new(Arc::new(p))));
    }
    info
}

fn run_filter(fit: &Fit, p: &Pod, info: &NodeInfo) -> Status {
    let mut state = CycleState::new();
    let p = PodInfo::new(Arc::new(p.clone()));
    let (_, s) = PreFilterPlugin::pre_filter(fit, &mut state, &p, &Snapshot::default());
    assert!(s.is_success());
    FilterPlugin::filter(fit, &state, &p, info)
}

fn fit(args: Option<Value>) -> Fit {
    Fit::from_args(args.as_ref()).expect("plugin")
}

/// 10 cpu, 20 memory units, 32 pods, 5 of example.com/aaa, 20 ephemeral-storage, hugepages.
fn alloc() -> Value {
    json!({
        "cpu": "10m", "memory": "20", "pods": "32", "ephemeral-storage": "20",
        "example.com/aaa": "5", "kubernetes.io/bbb": "5", "hugepages-2Mi": "5",
    })
}

/// (name, args, pod, pods on the node, expected reasons)
type FilterCase = (
    &'static str,
    Option<Value>,
    Pod,
    Vec<Pod>,
    Vec<&'static str>,
);

#[test]
fn filter_cases() {
    let used = |cpu: &str, mem: &str| pod("existing", &[json!({"cpu": cpu, "memory": mem})]);
    let cases: Vec<FilterCase> = vec![
        (
            "no resources requested always fits",
            None,
            pod("p", &[json!({})]),
            vec![used("10m", "20")],
            vec![],
        ),
        (
            "too many resources fails",
            None,
            pod("p", &[json!({"cpu": "1m", "memory": "1"})]),
            vec![used("10m", "20")],
            vec!["Insufficient cpu", "Insufficient memory"],
        ),
        (
            "too many resources fails due to init container cpu",
            None,
            pod_spec(
                "p",
                json!({
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": "1m", "memory": "1"}}}],
                    "initContainers": [{"name": "i", "resources": {"requests": {"cpu": "3m", "memory": "1"}}}],
                }),
            ),
            vec![used("8m", "19")],
            vec!["Insufficient cpu"],
        ),
        (
            "both resources fit",
            None,
            pod("p", &[json!({"cpu": "1m", "memory": "1"})]),
            vec![used("5m", "5")],
            vec![],
        ),
        (
            "one resource memory fits",
            None,
            pod("p", &[json!({"cpu": "2m", "memory": "1"})]),
            vec![used("9m", "5")],
            vec!["Insufficient cpu"],
        ),
        (
            "equal edge case",
            None,
            pod("p", &[json!({"cpu": "5m", "memory": "1"})]),
            vec![used("5m", "19")],
            vec![],
        ),
        (
            "extended resource fits",
            None,
            pod("p", &[json!({"example.com/aaa": "1"})]),
            vec![pod("existing", &[json!({"example.com/aaa": "4"})])],
            vec![],
        ),
        (
            "extended resource capacity enforced",
            None,
            pod("p", &[json!({"example.com/aaa": "2"})]),
            vec![pod("existing", &[json!({"example.com/aaa": "4"})])],
            vec!["Insufficient example.com/aaa"],
        ),
        (
            "unknown extended resource",
            None,
            pod("p", &[json!({"example.com/ccc": "1"})]),
            vec![],
            vec!["Insufficient example.com/ccc"],
        ),
        (
            "ignored extended resource",
            Some(json!({"ignoredResources": ["example.com/ccc"]})),
            pod("p", &[json!({"example.com/ccc": "1"})]),
            vec![],
            vec![],
        ),
        (
            "ignored extended resource group",
            Some(json!({"ignoredResourceGroups": ["example.com"]})),
            pod(
                "p",
                &[json!({"example.com/ccc": "1", "example.com/aaa": "10"})],
            ),
            vec![],
            vec![],
        ),
        (
            "native kubernetes.io resources cannot be ignored",
            Some(json!({"ignoredResources": ["kubernetes.io/bbb"]})),
            pod("p", &[json!({"kubernetes.io/bbb": "6"})]),
            vec![],
            vec!["Insufficient kubernetes.io/bbb"],
        ),
        (
            "hugepages capacity enforced",
            None,
            pod("p", &[json!({"hugepages-2Mi": "6"})]),
            vec![],
            vec!["Insufficient hugepages-2Mi"],
        ),
        (
            "ephemeral storage",
            None,
            pod("p", &[json!({"ephemeral-storage": "25"})]),
            vec![],
            vec!["Insufficient ephemeral-storage"],
        ),
        (
            "pod overhead counts",
            None,
            pod_spec(
                "p",
                json!({
                    "containers": [{"name": "c", "resources": {"requests": {"cpu": "1m", "memory": "1"}}}],
                    "overhead": {"cpu": "3m", "memory": "15"},
                }),
            ),
            vec![used("5m", "5")],
            vec!["Insufficient memory"],
        ),
    ];
    for (name, args, p, existing, want) in cases {
        let info = node_info(node("n", alloc()), existing);
        let s = run_filter(&fit(args), &p, &info);
        if want.is_empty() {
            assert!(s.is_success(), "{name}: {s}");
        } else {
            assert_eq!(s.code(), Code::Unschedulable, "{name}");
            assert_eq!(s.reasons(), want.as_slice(), "{name}");
        }
    }
}

#[test]
fn too_many_pods() {
    let n = node("n", json!({"cpu": "10m", "memory": "20", "pods": "1"}));
    let info = node_info(n, vec![pod("existing", &[json!({})])]);
    let s = run_filter(
        &fit(None),
        &pod("p", &[json!({"cpu": "1m", "memory": "1"})]),
        &info,
    );
    assert_eq!(s.code(), Code::Unschedulable);
    assert_eq!(s.reasons(), ["Too many pods"]);
    let s = run_filter(&fit(None), &pod("p", &[json!({"cpu": "20m"})]), &info);
    assert_eq!(s.reasons(), ["Too many pods", "Insufficient cpu"]);
    let insufficient = fits(&pod("p", &[json!({"cpu": "20m"})]), &info);
    assert_eq!(insufficient[1].requested, 20);
    assert_eq!(insufficient[1].capacity, 10);
}

fn scores(args: Option<Value>, p: &Pod, nodes: Vec<NodeInfo>) -> Vec<i64> {
    let h = Handle::for_tests();
    let pl: Arc<dyn Plugin> = Arc::new(fit(args));
    let fw = Framework::multi_point(
        "test",
        h.clone(),
        vec![
            (
                crate::plugins::prioritysort::new(None, &h).expect("sort"),
                1,
            ),
            (pl, 1),
            (
                crate::plugins::defaultbinder::new(None, &h).expect("binder"),
                1,
            ),
        ],
    )
    .expect("framework");
    let snapshot = Snapshot::from_node_infos(nodes);
    let p = PodInfo::new(Arc::new(p.clone()));
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

/// Upstream's "differently sized machines": 4000m/10000 and 6000m/10000, a pod asking
/// 3000m and 5000 in two containers.
fn sized_machines() -> (Pod, Vec<NodeInfo>) {
    (
        pod(
            "p",
            &[
                json!({"cpu": "1000m", "memory": "2000"}),
                json!({"cpu": "2000m", "memory": "3000"}),
            ],
        ),
        vec![
            node_info(
                node(
                    "n1",
                    json!({"cpu": "4000m", "memory": "10000", "pods": "110"}),
                ),
                vec![],
            ),
            node_info(
                node(
                    "n2",
                    json!({"cpu": "6000m", "memory": "10000", "pods": "110"}),
                ),
                vec![],
            ),
        ],
    )
}

#[test]
fn least_allocated_is_the_default() {
    let (p, nodes) = sized_machines();
    // n1: cpu 25, memory 50 -> 37; n2: 50, 50 -> 50.
    assert_eq!(scores(None, &p, nodes), vec![37, 50]);
    // Pods already there count.
    let (p, _) = sized_machines();
    let existing = pod("e", &[json!({"cpu": "1000m", "memory": "5000"})]);
    let n = node_info(
        node(
            "n1",
            json!({"cpu": "4000m", "memory": "10000", "pods": "110"}),
        ),
        vec![existing],
    );
    assert_eq!(scores(None, &p, vec![n]), vec![0]);
}

#[test]
fn request_less_containers_count_as_defaults_when_scoring() {
    // 100m of 4000m -> 97; 200Mi of 10Gi -> 98.
    let n = node_info(
        node(
            "n1",
            json!({"cpu": "4000m", "memory": "10Gi", "pods": "110"}),
        ),
        vec![],
    );
    assert_eq!(scores(None, &pod("p", &[json!({})]), vec![n]), vec![97]);
    // ... and so do the pods already on the node: 200m, 400Mi -> 95, 96.
    let existing = pod("e", &[json!({})]);
    let n = node_info(
        node(
            "n1",
            json!({"cpu": "4000m", "memory": "10Gi", "pods": "110"}),
        ),
        vec![existing],
    );
    assert_eq!(scores(None, &pod("p", &[json!({})]), vec![n]), vec![95]);
}

#[test]
fn weights_and_extended_resources() {
    let args = json!({"scoringStrategy": {"type": "LeastAllocated", "resources": [
        {"name": "cpu", "weight": 1},
        {"name": "memory", "weight": 3},
        {"name": "example.com/gpu", "weight": 2},
    ]}});
    let alloc = json!({"cpu": "4000m", "memory": "10000", "pods": "110", "example.com/gpu": "4"});
    // cpu 25*1, memory 50*3, gpu not requested -> (25 + 150) / 4 = 43.
    let p = pod("p", &[json!({"cpu": "3000m", "memory": "5000"})]);
    assert_eq!(
        scores(
            Some(args.clone()),
            &p,
            vec![node_info(node("n", alloc.clone()), vec![])]
        ),
        vec![43]
    );
    // With 1 of 4 gpus: (25 + 150 + 75*2) / 6 = 54.
    let p = pod(
        "p",
        &[json!({"cpu": "3000m", "memory": "5000", "example.com/gpu": "1"})],
    );
    assert_eq!(
        scores(Some(args), &p, vec![node_info(node("n", alloc), vec![])]),
        vec![54]
    );
}

#[test]
fn most_allocated_and_requested_to_capacity_ratio() {
    let (p, nodes) = sized_machines();
    let most = json!({"scoringStrategy": {"type": "MostAllocated"}});
    // n1: 75, 50 -> 62; n2: 50, 50 -> 50.
    assert_eq!(scores(Some(most), &p, nodes), vec![62, 50]);
    let (p, nodes) = sized_machines();
    let rtcr = json!({"scoringStrategy": {
        "type": "RequestedToCapacityRatio",
        "resources": [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}],
        "requestedToCapacityRatio": {"shape": [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]},
    }});
    // n1: 75, 50 -> round(62.5) = 63; n2: 50.
    assert_eq!(scores(Some(rtcr), &p, nodes), vec![63, 50]);
}

#[test]
fn invalid_args_name_the_field() {
    let err = |v: Value| {
        Fit::from_args(Some(&v))
            .err()
            .expect("an error")
            .to_string()
    };
    assert_eq!(
        err(json!({"scoringStrategy": {"type": "Invalid"}})),
        "scoringStrategy.type: Unsupported value: \"Invalid\": supported values: \"LeastAllocated\", \"MostAllocated\", \"RequestedToCapacityRatio\""
    );
    assert_eq!(
        err(json!({"scoringStrategy": {"type": "MostAllocated", "resources": [{"name": "cpu", "weight": 101}]}})),
        "scoringStrategy.resources[0].weight: Invalid value: 101: resource weight of cpu not in valid range (0, 100]"
    );
    assert_eq!(
        err(json!({"ignoredResourceGroups": ["example.com/aaa"]})),
        "ignoredResourceGroups[0]: Invalid value: \"example.com/aaa\": resource group name can't contain '/'"
    );
    assert!(err(json!({"ignoredResources": ["bad name"]}))
        .starts_with("ignoredResources[0]: Invalid value: \"bad name\""));
    assert_eq!(
        err(json!({"scoringStrategy": {"type": "RequestedToCapacityRatio",
            "requestedToCapacityRatio": {"shape": [{"utilization": 50, "score": 1}, {"utilization": 10, "score": 11}]}}})),
        "[scoringStrategy.shape[1].utilization: Invalid value: 10: values must be sorted in increasing order, scoringStrategy.shape[1].score: Invalid value: 11: not in valid range [0, 10]]"
    );
    assert_eq!(
        err(
            json!({"scoringStrategy": {"type": "RequestedToCapacityRatio", "requestedToCapacityRatio": {"shape": []}}})
        ),
        "scoringStrategy.shape: Required value: at least one point must be specified"
    );
    assert!(
        err(json!({"scoringStrategy": {"type": "RequestedToCapacityRatio"}}))
            .contains("requestedToCapacityRatio")
    );
    assert!(err(json!({"bogus": 1})).contains("unknown field"));
    // apiVersion/kind as written in a pluginConfig, and weights 0 defaulting to 1.
    assert!(Fit::from_args(Some(&json!({
        "apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "NodeResourcesFitArgs",
        "scoringStrategy": {"type": "LeastAllocated", "resources": [{"name": "cpu"}]},
    })))
    .is_ok());
}

#[test]
fn node_hints() {
    let events = fit(None).events_to_register();
    let hint = events[2].hint.clone().expect("hint");
    let target = pod("p", &[json!({"cpu": "2"})]);
    let n = |cpu: &str| {
        EventObject::Node(Arc::new(node(
            "n",
            json!({"cpu": cpu, "memory": "1Gi", "pods": "10"}),
        )))
    };
    assert_eq!(hint(&target, None, Some(&n("4"))), Ok(QueueingHint::Queue));
    assert_eq!(hint(&target, None, Some(&n("1"))), Ok(QueueingHint::Skip));
    assert_eq!(
        hint(&target, Some(&n("1")), Some(&n("4"))),
        Ok(QueueingHint::Queue)
    );
    // Fits before and after, with no growth in what the pod asks for.
    assert_eq!(
        hint(&target, Some(&n("4")), Some(&n("4"))),
        Ok(QueueingHint::Skip)
    );
}

#[test]
fn pod_hints() {
    let events = fit(None).events_to_register();
    let hint = events[0].hint.clone().expect("hint");
    let target = pod("p", &[json!({"cpu": "2"})]);
    let bound = |uid: &str, cpu: &str, mem: &str| {
        let mut p = pod(uid, &[json!({"cpu": cpu, "memory": mem})]);
        if let Some(spec) = p.spec.as_mut() {
            spec.node_name = Some("n".into());
        }
        EventObject::Pod(Arc::new(p))
    };
    let pending = EventObject::Pod(Arc::new(pod("other", &[json!({"cpu": "1"})])));
    // Deletions.
    assert_eq!(
        hint(&target, Some(&bound("o", "1", "1Gi")), None),
        Ok(QueueingHint::Queue)
    );
    assert_eq!(hint(&target, Some(&pending), None), Ok(QueueingHint::Skip));
    // Scale downs: of a resource the pod wants, of another one, and of the pod itself.
    assert_eq!(
        hint(
            &target,
            Some(&bound("o", "2", "1Gi")),
            Some(&bound("o", "1", "1Gi"))
        ),
        Ok(QueueingHint::Queue)
    );
    assert_eq!(
        hint(
            &target,
            Some(&bound("o", "1", "2Gi")),
            Some(&bound("o", "1", "1Gi"))
        ),
        Ok(QueueingHint::Skip)
    );
    let me = |cpu: &str| EventObject::Pod(Arc::new(pod("p", &[json!({"cpu": cpu})])));
    assert_eq!(
        hint(&target, Some(&me("2")), Some(&me("1"))),
        Ok(QueueingHint::Queue)
    );
}
