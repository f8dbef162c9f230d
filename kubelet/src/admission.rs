//! Admission on the node (upstream's predicate admit handler): a pod that does not fit beside
//! the pods already admitted — more pods than `pods` allocatable, or more cpu / memory /
//! ephemeral-storage requested than allocatable — is rejected with upstream's reasons
//! (`OutOfpods`, `OutOfcpu`, `OutOfmemory`, ...) and never started.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::podstatus::parse_quantity;

/// Why a pod was refused: (reason, message) as upstream writes them into the pod's status.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub reason: String,
    pub message: String,
}

/// A pod's effective requests (upstream's `PodRequests`): the larger of the sum of regular
/// containers (plus sidecars) and the largest init container, plus overhead.
pub fn pod_requests(pod: &Pod) -> BTreeMap<String, f64> {
    let spec = pod.spec.clone().unwrap_or_default();
    let req = |c: &k8s_openapi::api::core::v1::Container| -> BTreeMap<String, f64> {
        c.resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, q)| parse_quantity(&q.0).map(|v| (k, v)))
            .collect()
    };
    let mut sum: BTreeMap<String, f64> = BTreeMap::new();
    for c in &spec.containers {
        for (k, v) in req(c) {
            *sum.entry(k).or_default() += v;
        }
    }
    let mut sidecars: BTreeMap<String, f64> = BTreeMap::new();
    let mut init_max: BTreeMap<String, f64> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let r = req(c);
        if crate::podstatus::is_restartable_init_container(c) {
            for (k, v) in &r {
                *sidecars.entry(k.clone()).or_default() += v;
                *sum.entry(k.clone()).or_default() += v;
            }
        } else {
            for (k, v) in r {
                // An init container runs beside the sidecars started before it.
                let with = v + sidecars.get(&k).copied().unwrap_or(0.0);
                let e = init_max.entry(k).or_default();
                *e = e.max(with);
            }
        }
    }
    for (k, v) in init_max {
        let e = sum.entry(k).or_default();
        *e = e.max(v);
    }
    for (k, q) in spec.overhead.unwrap_or_default() {
        if let Some(v) = parse_quantity(&q.0) {
            *sum.entry(k).or_default() += v;
        }
    }
    sum
}

fn show(resource: &str, v: f64) -> String {
    if resource == "cpu" {
        format!("{}", (v * 1000.0).round() as i64)
    } else {
        format!("{}", v.round() as i64)
    }
}

/// Whether `pod` fits beside `admitted` on a node with `allocatable`.
pub fn admit(
    pod: &Pod,
    admitted: &[&Pod],
    allocatable: &BTreeMap<String, f64>,
) -> Result<(), Rejection> {
    if let Some(max) = allocatable.get("pods") {
        if admitted.len() as f64 + 1.0 > *max {
            return Err(Rejection {
                reason: "OutOfpods".into(),
                message: format!(
                    "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: {}, capacity: {}",
                    admitted.len(),
                    max.round() as i64
                ),
            });
        }
    }
    let want = pod_requests(pod);
    let mut used: BTreeMap<String, f64> = BTreeMap::new();
    for p in admitted {
        for (k, v) in pod_requests(p) {
            *used.entry(k).or_default() += v;
        }
    }
    for resource in ["cpu", "memory", "ephemeral-storage"] {
        let requested = want.get(resource).copied().unwrap_or(0.0);
        if requested <= 0.0 {
            continue;
        }
        let Some(capacity) = allocatable.get(resource).copied() else {
            continue;
        };
        let in_use = used.get(resource).copied().unwrap_or(0.0);
        if in_use + requested > capacity + 1e-9 {
            return Err(Rejection {
                reason: format!("OutOf{resource}"),
                message: format!(
                    "Pod was rejected: Node didn't have enough resource: {resource}, requested: {}, used: {}, capacity: {}",
                    show(resource, requested),
                    show(resource, in_use),
                    show(resource, capacity)
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(cpu: &str, init_cpu: Option<&str>) -> Pod {
        let mut spec = json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu, "memory": "100Mi"}}}]});
        if let Some(init) = init_cpu {
            spec["initContainers"] =
                json!([{"name": "i", "image": "i", "resources": {"requests": {"cpu": init}}}]);
        }
        serde_json::from_value(json!({"metadata": {"name": "p"}, "spec": spec})).unwrap_or_default()
    }

    #[test]
    fn requests_take_the_larger_of_containers_and_init_containers() {
        assert_eq!(pod_requests(&pod("500m", Some("2"))).get("cpu"), Some(&2.0));
        assert_eq!(
            pod_requests(&pod("500m", Some("100m"))).get("cpu"),
            Some(&0.5)
        );
    }

    #[test]
    fn pods_that_do_not_fit_are_rejected_with_upstream_reasons() {
        let alloc = BTreeMap::from([
            ("cpu".to_string(), 2.0),
            ("memory".to_string(), 1024.0 * 1024.0 * 1024.0),
            ("pods".to_string(), 2.0),
        ]);
        let a = pod("1500m", None);
        assert!(admit(&a, &[], &alloc).is_ok());
        let err = admit(&pod("1", None), &[&a], &alloc).err();
        assert_eq!(
            err,
            Some(Rejection {
                reason: "OutOfcpu".into(),
                message: "Pod was rejected: Node didn't have enough resource: cpu, requested: 1000, used: 1500, capacity: 2000".into()
            })
        );
        let small = pod("10m", None);
        let err = admit(&small, &[&small, &small], &alloc).err();
        assert_eq!(err.map(|r| r.reason), Some("OutOfpods".to_string()));
    }
}
