use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use serde_json::{json, Value};
use tokio::time::Instant;

use super::*;

fn node_with(name: &str, zone: &str, extra_status: Value) -> Arc<Node> {
    let mut status = json!({"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}});
    if let (Some(s), Some(extra)) = (status.as_object_mut(), extra_status.as_object()) {
        s.extend(extra.clone());
    }
    let labels = if zone.is_empty() {
        json!({})
    } else {
        json!({"topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "r"})
    };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": status,
        }))
        .expect("node"),
    )
}

fn node(name: &str, zone: &str) -> Arc<Node> {
    node_with(name, zone, json!({}))
}

fn pod_with(name: &str, node: &str, cpu: &str, extra_spec: Value) -> Pod {
    let mut spec = json!({
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
    });
    if !node.is_empty() {
        spec["nodeName"] = json!(node);
    }
    if let (Some(s), Some(extra)) = (spec.as_object_mut(), extra_spec.as_object()) {
        s.extend(extra.clone());
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}")},
        "spec": spec,
    }))
    .expect("pod")
}

fn pod(name: &str, node: &str, cpu: &str) -> Pod {
    pod_with(name, node, cpu, json!({}))
}

fn info(p: &Pod) -> Arc<PodInfo> {
    Arc::new(PodInfo::new(Arc::new(p.clone())))
}

fn cache() -> SchedulerCache {
    SchedulerCache::with_registry(Duration::ZERO, &metrics::Registry::new())
}

fn requested_cpu(cache: &SchedulerCache, node: &str) -> i64 {
    cache
        .dump()
        .nodes
        .get(node)
        .map_or(-1, |n| n.requested.milli_cpu)
}

fn names(snapshot: &Snapshot) -> Vec<String> {
    snapshot
        .node_info_list
        .iter()
        .map(|i| i.name().to_string())
        .collect()
}

#[test]
fn an_assumed_pod_counts_at_once_and_is_confirmed_by_the_informer() {
    let c = cache();
    c.add_node(node("n1", ""));
    let p = pod("p", "n1", "500m");
    c.assume_pod(info(&p)).expect("assume");
    assert!(c.is_assumed_pod(&p).expect("key"));
    assert_eq!(requested_cpu(&c, "n1"), 500);
    assert_eq!(
        c.assume_pod(info(&p)),
        Err(CacheError::AlreadyInCache("uid-p(ns/p)".into()))
    );

    c.finish_binding(&p).expect("finish");
    c.add_pod(Arc::new(p.clone())).expect("confirm");
    assert!(!c.is_assumed_pod(&p).expect("key"));
    assert_eq!(requested_cpu(&c, "n1"), 500);
    assert_eq!(c.pod_count(), 1);
    assert!(c.dump().assumed_pods.is_empty());

    // A second add of a confirmed pod is an error; forgetting it is too.
    assert_eq!(
        c.add_pod(Arc::new(p.clone())),
        Err(CacheError::AlreadyAdded("uid-p(ns/p)".into()))
    );
    assert_eq!(
        c.forget_pod(&p),
        Err(CacheError::NotAssumed("uid-p(ns/p)".into()))
    );
}

#[test]
fn a_forgotten_pod_frees_its_node() {
    let c = cache();
    c.add_node(node("n1", ""));
    let p = pod("p", "n1", "1");
    c.assume_pod(info(&p)).expect("assume");
    assert_eq!(
        c.forget_pod(&pod("p", "n2", "1")),
        Err(CacheError::AssumedElsewhere {
            pod: "uid-p(ns/p)".into(),
            assumed: "n2".into(),
            actual: "n1".into()
        })
    );
    c.forget_pod(&p).expect("forget");
    assert_eq!(requested_cpu(&c, "n1"), 0);
    assert_eq!(c.pod_count(), 0);
    assert!(c.get_pod(&p).is_none());
    // Forgetting a pod the cache does not have is not an error (upstream).
    c.forget_pod(&p).expect("forget again");
    // A pod without a UID or node cannot be assumed.
    let mut no_uid = p.clone();
    no_uid.metadata.uid = None;
    assert!(matches!(
        c.assume_pod(info(&no_uid)),
        Err(CacheError::EmptyUid(_))
    ));
    assert!(matches!(
        c.assume_pod(info(&pod("q", "", "1"))),
        Err(CacheError::NoNodeName(_))
    ));
}

#[test]
fn a_pod_that_lands_elsewhere_moves_to_its_real_node() {
    let c = cache();
    c.add_node(node("n1", ""));
    c.add_node(node("n2", ""));
    c.assume_pod(info(&pod("p", "n1", "700m"))).expect("assume");
    c.add_pod(Arc::new(pod("p", "n2", "700m"))).expect("add");
    assert_eq!(requested_cpu(&c, "n1"), 0);
    assert_eq!(requested_cpu(&c, "n2"), 700);
    assert_eq!(c.dump().nodes["n2"].pods, ["ns/p"]);

    // Updates and removals of bound pods.
    c.update_pod(&pod("p", "n2", "700m"), Arc::new(pod("p", "n2", "200m")))
        .expect("update");
    assert_eq!(requested_cpu(&c, "n2"), 200);
    c.remove_pod(&pod("p", "n2", "200m")).expect("remove");
    assert_eq!(requested_cpu(&c, "n2"), 0);
    assert_eq!(
        c.remove_pod(&pod("p", "n2", "200m")),
        Err(CacheError::NotFound("uid-p(ns/p)".into()))
    );
    assert_eq!(
        c.update_pod(&pod("p", "n2", "1"), Arc::new(pod("p", "n2", "1"))),
        Err(CacheError::NotAddedForUpdate("uid-p(ns/p)".into()))
    );
}

#[test]
fn an_assumed_pod_cannot_be_updated() {
    let c = cache();
    let p = pod("p", "n1", "1");
    c.assume_pod(info(&p)).expect("assume");
    assert_eq!(
        c.update_pod(&p, Arc::new(p.clone())),
        Err(CacheError::AssumedUpdate("uid-p(ns/p)".into()))
    );
}

#[test]
fn assumed_pods_expire_only_with_a_ttl_and_after_binding() {
    let c = SchedulerCache::with_registry(Duration::from_secs(30), &metrics::Registry::new());
    c.add_node(node("n1", ""));
    let bound = pod("bound", "n1", "1");
    let binding = pod("binding", "n1", "1");
    c.assume_pod(info(&bound)).expect("assume");
    c.assume_pod(info(&binding)).expect("assume");
    let t0 = Instant::now();
    c.finish_binding_at(&bound, t0).expect("finish");

    c.cleanup_assumed_pods(t0 + Duration::from_secs(29));
    assert_eq!(c.pod_count(), 2);
    c.cleanup_assumed_pods(t0 + Duration::from_secs(31));
    // Only the pod whose binding finished expires; the other is still being bound.
    assert!(c.get_pod(&bound).is_none());
    assert!(c.get_pod(&binding).is_some());
    assert_eq!(requested_cpu(&c, "n1"), 1000);

    // With upstream's default TTL of zero nothing ever expires.
    let never = cache();
    never.assume_pod(info(&bound)).expect("assume");
    never.finish_binding_at(&bound, t0).expect("finish");
    never.cleanup_assumed_pods(t0 + Duration::from_secs(3600));
    assert!(never.get_pod(&bound).is_some());
}

#[test]
fn a_deleted_node_stays_as_a_ghost_until_its_pods_go() {
    let c = cache();
    c.add_node(node("n1", ""));
    c.add_node(node("n2", ""));
    c.add_pod(Arc::new(pod("p", "n1", "1"))).expect("add");
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(snap.len(), 2);

    c.remove_node(&node("n1", "")).expect("remove node");
    assert_eq!(c.node_count(), 2, "the ghost keeps the pod");
    assert!(!c.dump().nodes["n1"].has_node);
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(names(&snap), ["n2"]);
    assert!(snap.get("n1").is_none());

    c.remove_pod(&pod("p", "n1", "1")).expect("remove pod");
    assert_eq!(c.node_count(), 1);
    assert_eq!(
        c.remove_node(&node("n1", "")),
        Err(CacheError::NodeNotFound("n1".into()))
    );
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(names(&snap), ["n2"]);
}

#[test]
fn pods_seen_before_their_node_show_up_with_it() {
    let c = cache();
    c.add_pod(Arc::new(pod("p", "late", "300m"))).expect("add");
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(snap.is_empty(), "an info without a node is not schedulable");
    c.add_node(node("late", ""));
    c.update_snapshot(&mut snap).expect("snapshot");
    let late = snap.get("late").expect("listed");
    assert_eq!(late.requested.milli_cpu, 300);
    assert_eq!(late.allocatable.milli_cpu, 4000);
}

#[test]
fn the_snapshot_recopies_only_changed_nodes() {
    let c = cache();
    for n in ["n1", "n2", "n3"] {
        c.add_node(node(n, ""));
    }
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    let before = snap.node_info_list.clone();
    let generation = snap.generation;

    // Nothing changed: the very same infos.
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(before
        .iter()
        .zip(&snap.node_info_list)
        .all(|(a, b)| Arc::ptr_eq(a, b)));
    assert_eq!(snap.generation, generation);

    c.add_pod(Arc::new(pod("p", "n2", "1"))).expect("add");
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(snap.generation > generation);
    assert_eq!(names(&snap), ["n1", "n2", "n3"]);
    assert!(Arc::ptr_eq(&before[0], &snap.node_info_list[0]));
    assert!(!Arc::ptr_eq(&before[1], &snap.node_info_list[1]));
    assert!(Arc::ptr_eq(&before[2], &snap.node_info_list[2]));
    assert!(Arc::ptr_eq(
        &snap.node_info_list[1],
        &snap.node_info_map["n2"]
    ));
    assert_eq!(snap.node_info_list[1].pods.len(), 1);
    // The old snapshot's info is untouched: a cycle in progress keeps its view.
    assert!(before[1].pods.is_empty());
}

#[test]
fn the_snapshot_scales_with_changes_not_with_the_cluster() {
    let c = cache();
    let zones = ["a", "b", "c"];
    for i in 0..5000 {
        c.add_node(node(&format!("n{i}"), zones[i % 3]));
    }
    for i in 0..10000 {
        c.add_pod(Arc::new(pod(
            &format!("p{i}"),
            &format!("n{}", i % 5000),
            "10m",
        )))
        .expect("add");
    }
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(snap.len(), 5000);
    let before = snap.node_info_list.clone();

    c.assume_pod(info(&pod("new", "n4321", "1")))
        .expect("assume");
    let start = std::time::Instant::now();
    c.update_snapshot(&mut snap).expect("snapshot");
    let took = start.elapsed();
    let recopied = before
        .iter()
        .zip(&snap.node_info_list)
        .filter(|(a, b)| !Arc::ptr_eq(a, b))
        .count();
    assert_eq!(recopied, 1);
    assert_eq!(snap.get("n4321").map(|i| i.pods.len()), Some(3));
    // Generous bound for a debug build on a loaded machine; a full copy is far slower.
    assert!(took < Duration::from_millis(50), "took {took:?}");
}

#[test]
fn nodes_are_listed_round_robin_across_zones() {
    let c = cache();
    for (n, z) in [
        ("a1", "a"),
        ("a2", "a"),
        ("a3", "a"),
        ("b1", "b"),
        ("b2", "b"),
        ("c1", "c"),
    ] {
        c.add_node(node(n, z));
    }
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(names(&snap), ["a1", "b1", "c1", "a2", "b2", "a3"]);

    // A node moving zones is relisted; one leaving drops out; the order stays interleaved.
    c.update_node(node("a1", "c"));
    c.remove_node(&node("b2", "b")).expect("remove");
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(names(&snap), ["a2", "b1", "c1", "a3", "a1"]);
    assert_eq!(snap.node_info_map.len(), 5);
}

#[test]
fn derived_lists_follow_pods_with_affinity_and_claims() {
    let c = cache();
    c.add_node(node("n1", ""));
    c.add_node(node("n2", ""));
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(snap.have_pods_with_affinity.is_empty());

    let anti = pod_with(
        "anti",
        "n2",
        "1",
        json!({
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "kubernetes.io/hostname"}
            ]}},
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}],
        }),
    );
    c.add_pod(Arc::new(anti.clone())).expect("add");
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(snap.have_pods_with_affinity.len(), 1);
    assert_eq!(snap.have_pods_with_required_anti_affinity.len(), 1);
    assert!(Arc::ptr_eq(
        &snap.have_pods_with_affinity[0],
        &snap.node_info_map["n2"]
    ));
    assert!(snap.is_pvc_used_by_pods("ns/data"));

    // Another pod on the same node: the lists must hold the new info, not the stale one.
    c.add_pod(Arc::new(pod("plain", "n2", "1"))).expect("add");
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(Arc::ptr_eq(
        &snap.have_pods_with_required_anti_affinity[0],
        &snap.node_info_map["n2"]
    ));
    assert_eq!(snap.have_pods_with_affinity[0].pods.len(), 2);

    c.remove_pod(&anti).expect("remove");
    c.update_snapshot(&mut snap).expect("snapshot");
    assert!(snap.have_pods_with_affinity.is_empty());
    assert!(snap.have_pods_with_required_anti_affinity.is_empty());
    assert!(!snap.is_pvc_used_by_pods("ns/data"));
}

#[test]
fn image_states_count_the_nodes_that_have_each_image() {
    let c = cache();
    let images = |names: &[&str]| json!({"images": [{"names": names, "sizeBytes": 1000}]});
    c.add_node(node_with(
        "n1",
        "",
        images(&["nginx:1", "docker.io/nginx:1"]),
    ));
    c.add_node(node_with("n2", "", images(&["nginx:1"])));
    c.add_node(node_with("n3", "", images(&["redis:7"])));
    let mut snap = Snapshot::default();
    c.update_snapshot(&mut snap).expect("snapshot");
    let n1 = snap.get("n1").expect("n1");
    assert_eq!(n1.image_states["nginx:1"].num_nodes, 2);
    assert_eq!(n1.image_states["nginx:1"].size, 1000);
    assert_eq!(n1.image_states["docker.io/nginx:1"].num_nodes, 1);
    assert_eq!(
        snap.get("n3").expect("n3").image_states["redis:7"].num_nodes,
        1
    );

    c.remove_node(&node("n2", "")).expect("remove");
    c.update_node(node_with("n1", "", images(&["nginx:1"])));
    c.update_snapshot(&mut snap).expect("snapshot");
    assert_eq!(
        snap.get("n1").expect("n1").image_states["nginx:1"].num_nodes,
        1
    );
}

#[test]
fn counts_and_dump() {
    let c = cache();
    c.add_node(node("n1", ""));
    c.add_pod(Arc::new(pod("a", "n1", "1"))).expect("add");
    c.assume_pod(info(&pod("b", "n1", "1"))).expect("assume");
    assert_eq!(c.node_count(), 1);
    assert_eq!(c.pod_count(), 2);
    let dump = c.dump();
    assert_eq!(dump.pods, 2);
    assert_eq!(dump.assumed_pods.iter().collect::<Vec<_>>(), ["ns/b"]);
    assert!(dump.to_string().contains("nodes=1 pods=2 assumedPods=1"));
    let registry = metrics::Registry::new();
    let c2 = SchedulerCache::with_registry(Duration::ZERO, &registry);
    c2.add_node(node("n1", ""));
    c2.update_metrics();
    assert!(registry
        .render()
        .contains("scheduler_cache_size{type=\"nodes\"} 1"));
}

/// (node, pods, requested cpu) in list order; nodes with affinity pods; claims in use.
type Summary = (Vec<(String, usize, i64)>, Vec<String>, Vec<String>);

/// What a snapshot says, in a comparable form.
fn summary(snap: &Snapshot) -> Summary {
    let nodes = snap
        .node_info_list
        .iter()
        .map(|i| (i.name().to_string(), i.pods.len(), i.requested.milli_cpu))
        .collect();
    let affinity = snap
        .have_pods_with_affinity
        .iter()
        .map(|i| i.name().to_string())
        .collect();
    let mut pvcs: Vec<String> = snap.used_pvcs.iter().cloned().collect();
    pvcs.sort();
    (nodes, affinity, pvcs)
}

#[test]
fn an_incremental_snapshot_always_equals_a_fresh_one() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let c = cache();
    let mut incremental = Snapshot::default();
    let zones = ["a", "b", ""];
    for step in 0..3000 {
        let n = format!("n{}", rng.random_range(0..12));
        let name = format!("p{}", rng.random_range(0..40));
        let p = if rng.random_bool(0.3) {
            pod_with(
                &name,
                &n,
                "100m",
                json!({
                    "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                        {"labelSelector": {"matchLabels": {"app": "x"}}, "topologyKey": "zone"}]}},
                    "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": name.clone()}}],
                }),
            )
        } else {
            pod(&name, &n, "100m")
        };
        // Errors (a pod already there, a node not there) are part of the exercise.
        match rng.random_range(0..8) {
            0 => c.add_node(node(&n, zones[rng.random_range(0..3)])),
            1 => c.update_node(node(&n, zones[rng.random_range(0..3)])),
            2 => {
                let _ = c.remove_node(&node(&n, ""));
            }
            3 => {
                let _ = c.assume_pod(info(&p));
            }
            4 => {
                let _ = c.add_pod(Arc::new(p));
            }
            5 => {
                let _ = c.forget_pod(&p);
            }
            6 => {
                if let Some(cached) = c.get_pod(&p) {
                    let _ = c.remove_pod(&cached);
                }
            }
            _ => {
                if let Some(cached) = c.get_pod(&p) {
                    let mut moved = (*cached).clone();
                    if let Some(s) = moved.spec.as_mut() {
                        s.containers[0].resources = None;
                    }
                    let _ = c.update_pod(&cached, Arc::new(moved));
                }
            }
        }
        if step % 3 == 0 {
            c.update_snapshot(&mut incremental).expect("incremental");
            let mut fresh = Snapshot::default();
            c.update_snapshot(&mut fresh).expect("fresh");
            assert_eq!(summary(&incremental), summary(&fresh), "step {step}");
        }
    }
}
