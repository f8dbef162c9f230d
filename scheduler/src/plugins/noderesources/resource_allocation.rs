//! Scoring by resource use, shared by NodeResourcesFit's strategies and
//! NodeResourcesBalancedAllocation (upstream's `resourceAllocationScorer`): for each configured
//! resource, what the node's pods plus this pod would request against what the node has; a
//! strategy turns the two lists into a score.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use crate::framework::{pod_requests, NodeInfo, Resource, Status, CPU, EPHEMERAL_STORAGE, MEMORY};
use apimachinery::validation::is_qualified_name;

/// A resource to score and its weight (`ResourceSpec` of kubescheduler.config.k8s.io/v1).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceSpec {
    pub name: String,
    /// 0 (unset) defaults to 1.
    #[serde(default)]
    pub weight: i64,
}

impl ResourceSpec {
    pub fn new(name: &str, weight: i64) -> ResourceSpec {
        ResourceSpec {
            name: name.to_string(),
            weight,
        }
    }
}

/// cpu and memory with weight 1: the default of both plugins' args.
pub fn default_resources() -> Vec<ResourceSpec> {
    vec![ResourceSpec::new(CPU, 1), ResourceSpec::new(MEMORY, 1)]
}

/// Applies upstream's v1 defaults: no resources means the default set; weight 0 means 1.
pub(super) fn defaulted(resources: Vec<ResourceSpec>) -> Vec<ResourceSpec> {
    let mut resources = if resources.is_empty() {
        default_resources()
    } else {
        resources
    };
    for r in &mut resources {
        if r.weight == 0 {
            r.weight = 1;
        }
    }
    resources
}

/// `(requested, allocatable)` per resource -> a node score.
pub(super) type Scorer = Arc<dyn Fn(&[i64], &[i64]) -> i64 + Send + Sync>;

/// Whether `name` is an extended resource: outside the `kubernetes.io/` namespace, with a
/// domain prefix, and valid as a quota name (upstream's `IsExtendedResourceName`).
pub fn is_extended_resource_name(name: &str) -> bool {
    let native = !name.contains('/') || name.contains("kubernetes.io/");
    if native || name.starts_with("requests.") {
        return false;
    }
    is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// Whether `name` is counted as a scalar resource (upstream's `IsScalarResourceName`):
/// extended resources, hugepages, `kubernetes.io/`-prefixed ones and attachable volumes.
pub fn is_scalar_resource_name(name: &str) -> bool {
    is_extended_resource_name(name)
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

/// The amount of `name` in `r` as upstream's `ResourceList` lookup sees it ("pods" included
/// only as a scalar, which a pod never requests).
fn amount(r: &Resource, name: &str) -> i64 {
    match name {
        CPU => r.milli_cpu,
        MEMORY => r.memory,
        EPHEMERAL_STORAGE => r.ephemeral_storage,
        other => r.scalar.get(other).copied().unwrap_or(0),
    }
}

#[derive(Clone)]
pub struct ResourceAllocationScorer {
    /// The strategy's name, for logs.
    pub(super) name: &'static str,
    /// Count the pods' real requests for cpu and memory (BalancedAllocation) rather than the
    /// defaults assumed for containers without them (the Fit strategies).
    pub(super) use_requested: bool,
    pub(super) scorer: Scorer,
    pub(super) resources: Vec<ResourceSpec>,
}

impl std::fmt::Debug for ResourceAllocationScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceAllocationScorer")
            .field("name", &self.name)
            .field("use_requested", &self.use_requested)
            .field("resources", &self.resources)
            .finish()
    }
}

impl ResourceAllocationScorer {
    /// What the pod requests of each configured resource.
    pub fn pod_request_list(&self, pod: &Pod) -> Vec<i64> {
        let requests = pod_requests(pod, !self.use_requested);
        self.resources
            .iter()
            .map(|r| amount(&requests, &r.name))
            .collect()
    }

    /// `(allocatable, requested including this pod)` of one resource; (0, 0) leaves it out.
    fn allocatable_and_requested(
        &self,
        node: &NodeInfo,
        name: &str,
        pod_request: i64,
    ) -> (i64, i64) {
        let requested = if self.use_requested {
            &node.requested
        } else {
            &node.non_zero_requested
        };
        // An extended resource the pod does not ask for does not count.
        if pod_request == 0 && is_scalar_resource_name(name) {
            return (0, 0);
        }
        match name {
            CPU => (
                node.allocatable.milli_cpu,
                requested.milli_cpu + pod_request,
            ),
            MEMORY => (node.allocatable.memory, requested.memory + pod_request),
            EPHEMERAL_STORAGE => (
                node.allocatable.ephemeral_storage,
                node.requested.ephemeral_storage + pod_request,
            ),
            other => match node.allocatable.scalar.get(other) {
                Some(alloc) => (
                    *alloc,
                    node.requested.scalar.get(other).copied().unwrap_or(0) + pod_request,
                ),
                None => (0, 0),
            },
        }
    }

    /// The node's score for a pod requesting `pod_requests` (in `resources` order).
    pub fn score(&self, node: &NodeInfo, pod_requests: &[i64]) -> (i64, Status) {
        if self.resources.is_empty() {
            return (0, Status::error("resources not found"));
        }
        let mut requested = vec![0; self.resources.len()];
        let mut allocatable = vec![0; self.resources.len()];
        for (i, r) in self.resources.iter().enumerate() {
            let pod_request = pod_requests.get(i).copied().unwrap_or(0);
            let (alloc, req) = self.allocatable_and_requested(node, &r.name, pod_request);
            if alloc == 0 {
                continue;
            }
            allocatable[i] = alloc;
            requested[i] = req;
        }
        let score = (self.scorer)(&requested, &allocatable);
        tracing::trace!(
            strategy = self.name,
            node = node.name(),
            ?requested,
            ?allocatable,
            score,
            "resource allocation score"
        );
        (score, Status::success())
    }
}

/// Σ score(resource) * weight / Σ weight over the resources the node has; the shared shape of
/// the LeastAllocated and MostAllocated strategies.
pub(super) fn weighted_scorer(
    resources: &[ResourceSpec],
    per_resource: fn(i64, i64) -> i64,
) -> Scorer {
    let weights: Vec<i64> = resources.iter().map(|r| r.weight).collect();
    Arc::new(move |requested: &[i64], allocatable: &[i64]| {
        let (mut score, mut weight_sum) = (0i64, 0i64);
        for (i, (&req, &alloc)) in requested.iter().zip(allocatable).enumerate() {
            if alloc == 0 {
                continue;
            }
            let weight = weights.get(i).copied().unwrap_or(1);
            score += per_resource(req, alloc) * weight;
            weight_sum += weight;
        }
        if weight_sum == 0 {
            0
        } else {
            score / weight_sum
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_name_classes() {
        assert!(is_extended_resource_name("example.com/dongle"));
        assert!(is_extended_resource_name("nvidia.com/gpu"));
        assert!(!is_extended_resource_name("cpu"));
        assert!(!is_extended_resource_name("hugepages-2Mi"));
        assert!(!is_extended_resource_name("kubernetes.io/something"));
        assert!(!is_extended_resource_name("requests.example.com/x"));
        assert!(is_scalar_resource_name("hugepages-2Mi"));
        assert!(is_scalar_resource_name("attachable-volumes-aws-ebs"));
        assert!(is_scalar_resource_name("example.com/dongle"));
        assert!(!is_scalar_resource_name("memory"));
    }

    #[test]
    fn defaults_fill_resources_and_weights() {
        assert_eq!(defaulted(Vec::new()), default_resources());
        assert_eq!(
            defaulted(vec![
                ResourceSpec::new("cpu", 0),
                ResourceSpec::new("memory", 3)
            ]),
            vec![ResourceSpec::new("cpu", 1), ResourceSpec::new("memory", 3)]
        );
    }
}
