//! NodeResourcesFit (upstream's `noderesources.Fit`): Filter rejects nodes that cannot hold
//! the pod's requests on top of what their pods already request ("Too many pods",
//! "Insufficient cpu", ...), as Unschedulable since preemption can free room. Score ranks the
//! rest by the configured strategy (LeastAllocated by default, over cpu and memory), counting
//! containers without requests as the scheduler's defaults.

use std::collections::HashSet;
use std::sync::Arc;

use apimachinery::validation::validate_label_name;
use apimachinery::{aggregate_message, FieldError, Path};
use k8s_openapi::api::core::v1::Pod;
use serde::Deserialize;

use super::least_allocated::least_resource_scorer;
use super::most_allocated::most_resource_scorer;
use super::requested_to_capacity_ratio::{
    requested_to_capacity_ratio_scorer, UtilizationShapePoint, MAX_CUSTOM_PRIORITY_SCORE,
};
use super::resource_allocation::{
    defaulted, is_extended_resource_name, is_scalar_resource_name, ResourceAllocationScorer,
    ResourceSpec,
};
use crate::framework::{
    pod_requests, ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject,
    EventResource, FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreFilterPlugin,
    PreFilterResult, PreScorePlugin, QueueingHint, Resource, ScorePlugin, Snapshot, Status, CPU,
    EPHEMERAL_STORAGE, MEMORY, PODS,
};
use crate::plugins::helper::{node_of, pod_of};

pub const NAME: &str = "NodeResourcesFit";

const PRE_FILTER_STATE_KEY: &str = "PreFilterNodeResourcesFit";
const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeResourcesFit";

pub const LEAST_ALLOCATED: &str = "LeastAllocated";
pub const MOST_ALLOCATED: &str = "MostAllocated";
pub const REQUESTED_TO_CAPACITY_RATIO: &str = "RequestedToCapacityRatio";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RequestedToCapacityRatioParam {
    #[serde(default)]
    shape: Vec<UtilizationShapePoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ScoringStrategy {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    resources: Vec<ResourceSpec>,
    #[serde(default)]
    requested_to_capacity_ratio: Option<RequestedToCapacityRatioParam>,
}

/// `NodeResourcesFitArgs` (kubescheduler.config.k8s.io/v1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FitArgs {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    ignored_resources: Vec<String>,
    #[serde(default)]
    ignored_resource_groups: Vec<String>,
    #[serde(default)]
    scoring_strategy: Option<ScoringStrategy>,
}

impl FitArgs {
    /// Upstream's v1 defaults: LeastAllocated over cpu and memory; weights 0 become 1.
    fn defaulted(mut self) -> FitArgs {
        let mut strategy = self
            .scoring_strategy
            .take()
            .unwrap_or_else(|| ScoringStrategy {
                type_: LEAST_ALLOCATED.into(),
                ..ScoringStrategy::default()
            });
        strategy.resources = defaulted(std::mem::take(&mut strategy.resources));
        self.scoring_strategy = Some(strategy);
        self
    }

    /// Upstream's `ValidateNodeResourcesFitArgs`, with the same field paths and messages.
    fn validate(&self) -> Result<(), String> {
        let mut errs: Vec<FieldError> = Vec::new();
        for (i, r) in self.ignored_resources.iter().enumerate() {
            errs.extend(validate_label_name(r, &format!("ignoredResources[{i}]")));
        }
        for (i, g) in self.ignored_resource_groups.iter().enumerate() {
            let path = format!("ignoredResourceGroups[{i}]");
            if g.contains('/') {
                errs.push(FieldError::invalid(
                    path.as_str(),
                    g.as_str(),
                    "resource group name can't contain '/'",
                ));
            }
            errs.extend(validate_label_name(g, &path));
        }
        if let Some(s) = &self.scoring_strategy {
            let path = Path::new("scoringStrategy");
            let supported = [LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO];
            if !supported.contains(&s.type_.as_str()) {
                errs.push(FieldError::not_supported(
                    path.child("type"),
                    s.type_.as_str(),
                    &supported,
                ));
            }
            for (i, r) in s.resources.iter().enumerate() {
                if r.weight <= 0 || r.weight > 100 {
                    errs.push(FieldError::invalid(
                        path.child("resources").index(i).child("weight"),
                        r.weight,
                        format!("resource weight of {} not in valid range (0, 100]", r.name),
                    ));
                }
            }
            match &s.requested_to_capacity_ratio {
                Some(p) => errs.extend(validate_function_shape(&p.shape, &path.child("shape"))),
                None if s.type_ == REQUESTED_TO_CAPACITY_RATIO => errs.push(FieldError::required(
                    path.child("requestedToCapacityRatio"),
                    "the RequestedToCapacityRatio strategy needs a shape",
                )),
                None => {}
            }
        }
        aggregate_message(&errs).map_or(Ok(()), Err)
    }
}

/// Upstream's `validateFunctionShape`.
fn validate_function_shape(shape: &[UtilizationShapePoint], path: &Path) -> Vec<FieldError> {
    if shape.is_empty() {
        return vec![FieldError::required(
            path,
            "at least one point must be specified",
        )];
    }
    let mut errs = Vec::new();
    for i in 1..shape.len() {
        if shape[i - 1].utilization >= shape[i].utilization {
            errs.push(FieldError::invalid(
                path.index(i).child("utilization"),
                shape[i].utilization,
                "values must be sorted in increasing order",
            ));
            break;
        }
    }
    for (i, p) in shape.iter().enumerate() {
        if !(0..=100).contains(&p.utilization) {
            errs.push(FieldError::invalid(
                path.index(i).child("utilization"),
                p.utilization,
                "not in valid range [0, 100]",
            ));
        }
        if !(0..=MAX_CUSTOM_PRIORITY_SCORE).contains(&i64::from(p.score)) {
            errs.push(FieldError::invalid(
                path.index(i).child("score"),
                p.score,
                format!("not in valid range [0, {MAX_CUSTOM_PRIORITY_SCORE}]"),
            ));
        }
    }
    errs
}

pub struct Fit {
    ignored_resources: HashSet<String>,
    ignored_resource_groups: HashSet<String>,
    scorer: ResourceAllocationScorer,
}

/// Builds the plugin from `NodeResourcesFitArgs` (defaults when absent).
pub fn new(args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(Fit::from_args(args)?))
}

impl Fit {
    pub fn from_args(args: Option<&serde_json::Value>) -> anyhow::Result<Fit> {
        let args: FitArgs = match args {
            None | Some(serde_json::Value::Null) => FitArgs::default(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|e| anyhow::anyhow!("decoding NodeResourcesFitArgs: {e}"))?,
        };
        let args = args.defaulted();
        args.validate().map_err(|e| anyhow::anyhow!(e))?;
        let strategy = args.scoring_strategy.unwrap_or_default();
        let resources = strategy.resources;
        let (name, scorer) = match strategy.type_.as_str() {
            MOST_ALLOCATED => (MOST_ALLOCATED, most_resource_scorer(&resources)),
            REQUESTED_TO_CAPACITY_RATIO => (
                REQUESTED_TO_CAPACITY_RATIO,
                requested_to_capacity_ratio_scorer(
                    &resources,
                    &strategy
                        .requested_to_capacity_ratio
                        .unwrap_or_default()
                        .shape,
                ),
            ),
            _ => (LEAST_ALLOCATED, least_resource_scorer(&resources)),
        };
        Ok(Fit {
            ignored_resources: args.ignored_resources.into_iter().collect(),
            ignored_resource_groups: args.ignored_resource_groups.into_iter().collect(),
            scorer: ResourceAllocationScorer {
                name,
                use_requested: false,
                scorer,
                resources,
            },
        })
    }
}

/// One resource the node lacks (upstream's `InsufficientResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsufficientResource {
    pub resource_name: String,
    /// The reason shown to users: "Too many pods", "Insufficient cpu", ...
    pub reason: String,
    pub requested: i64,
    pub used: i64,
    pub capacity: i64,
}

/// What the node lacks for `pod` (upstream's `Fits`), ignoring no resource.
pub fn fits(pod: &Pod, node: &NodeInfo) -> Vec<InsufficientResource> {
    fits_request(
        &pod_requests(pod, false),
        node,
        &HashSet::new(),
        &HashSet::new(),
    )
}

fn fits_request(
    request: &Resource,
    node: &NodeInfo,
    ignored: &HashSet<String>,
    ignored_groups: &HashSet<String>,
) -> Vec<InsufficientResource> {
    let mut out = Vec::new();
    let allowed = node.allocatable.allowed_pod_number;
    let pods = node.pods.len() as i64;
    if pods + 1 > allowed {
        out.push(InsufficientResource {
            resource_name: PODS.into(),
            reason: "Too many pods".into(),
            requested: 1,
            used: pods,
            capacity: allowed,
        });
    }
    let alloc = &node.allocatable;
    let used = &node.requested;
    let mut check = |name: &str, want: i64, have: i64, taken: i64| {
        if want > 0 && want > have - taken {
            out.push(InsufficientResource {
                resource_name: name.to_string(),
                reason: format!("Insufficient {name}"),
                requested: want,
                used: taken,
                capacity: have,
            });
        }
    };
    check(CPU, request.milli_cpu, alloc.milli_cpu, used.milli_cpu);
    check(MEMORY, request.memory, alloc.memory, used.memory);
    check(
        EPHEMERAL_STORAGE,
        request.ephemeral_storage,
        alloc.ephemeral_storage,
        used.ephemeral_storage,
    );
    for (name, want) in &request.scalar {
        if *want == 0 {
            continue;
        }
        if is_extended_resource_name(name) {
            // API validation guarantees the slash.
            let group = name.split('/').next().unwrap_or("");
            if ignored.contains(name) || ignored_groups.contains(group) {
                continue;
            }
        }
        let have = alloc.scalar.get(name).copied().unwrap_or(0);
        let taken = used.scalar.get(name).copied().unwrap_or(0);
        check(name, *want, have, taken);
    }
    out
}

#[derive(Debug, Clone)]
struct PreFilterState(Resource);

#[derive(Debug, Clone)]
struct PreScoreState(Vec<i64>);

impl Plugin for Fit {
    fn name(&self) -> &'static str {
        NAME
    }

    fn pre_filter(&self) -> Option<&dyn PreFilterPlugin> {
        Some(self)
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
                    EventResource::AssignedPod,
                    ActionType(ActionType::DELETE.0 | ActionType::UPDATE_POD_SCALE_DOWN.0),
                    "AssignedPodDelete|UpdatePodScaleDown",
                ),
                Arc::new(is_schedulable_after_pod_event),
            ),
            // The pending pod itself scaled down (in-place resize).
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::UnscheduledPod,
                    ActionType::UPDATE_POD_SCALE_DOWN,
                    "UnschedulablePodUpdatePodScaleDown",
                ),
                Arc::new(is_schedulable_after_pod_event),
            ),
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::Node,
                    ActionType(ActionType::ADD.0 | ActionType::UPDATE_NODE_ALLOCATABLE.0),
                    "NodeAdd|UpdateNodeAllocatable",
                ),
                Arc::new(is_schedulable_after_node_change),
            ),
        ]
    }
}

impl PreFilterPlugin for Fit {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        state.write(
            PRE_FILTER_STATE_KEY,
            PreFilterState(pod_requests(&pod.pod, false)),
        );
        (None, Status::success())
    }
}

impl FilterPlugin for Fit {
    fn filter(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(s) = state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) else {
            return Status::error(format!(
                "error reading {PRE_FILTER_STATE_KEY:?} from cycleState: not found"
            ));
        };
        let insufficient = fits_request(
            &s.0,
            node,
            &self.ignored_resources,
            &self.ignored_resource_groups,
        );
        if insufficient.is_empty() {
            return Status::success();
        }
        Status::with_reasons(
            crate::framework::Code::Unschedulable,
            insufficient.into_iter().map(|r| r.reason).collect(),
        )
    }
}

impl PreScorePlugin for Fit {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        state.write(
            PRE_SCORE_STATE_KEY,
            PreScoreState(self.scorer.pod_request_list(&pod.pod)),
        );
        Status::success()
    }
}

impl ScorePlugin for Fit {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        match state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            Some(s) => self.scorer.score(node, &s.0),
            None => self
                .scorer
                .score(node, &self.scorer.pod_request_list(&pod.pod)),
        }
    }
}

/// Queue when a bound pod is deleted, or when a pod shrinks a resource this pod asks for (or
/// this pod itself shrinks).
fn is_schedulable_after_pod_event(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let original = pod_of(old)?;
    let Some(modified) = pod_of(new)? else {
        let bound = original
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        return Ok(if bound {
            QueueingHint::Queue
        } else {
            QueueingHint::Skip
        });
    };
    let Some(original) = original else {
        return Ok(QueueingHint::Skip);
    };
    if is_schedulable_after_pod_scale_down(pod, original, modified) {
        Ok(QueueingHint::Queue)
    } else {
        Ok(QueueingHint::Skip)
    }
}

fn is_schedulable_after_pod_scale_down(target: &Pod, original: &Pod, modified: &Pod) -> bool {
    if modified.metadata.uid == target.metadata.uid {
        return true;
    }
    let bound = modified
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    if !bound {
        return false;
    }
    let (before, after) = (pod_requests(original, false), pod_requests(modified, false));
    let want = pod_requests(target, false);
    let shrank = |want: i64, before: i64, after: i64| want != 0 && before > after;
    shrank(want.milli_cpu, before.milli_cpu, after.milli_cpu)
        || shrank(want.memory, before.memory, after.memory)
        || shrank(
            want.ephemeral_storage,
            before.ephemeral_storage,
            after.ephemeral_storage,
        )
        || want.scalar.iter().any(|(name, w)| {
            let get = |r: &Resource| r.scalar.get(name).copied().unwrap_or(0);
            *w != 0 && is_scalar_resource_name(name) && get(&before) > get(&after)
        })
}

/// Queue when the pod would fit on the (empty) node and, for an update, the node grew in
/// something the pod asks for.
fn is_schedulable_after_node_change(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = node_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    let modified_info = NodeInfo::new(Some(Arc::new(modified.clone())));
    if !fits(pod, &modified_info).is_empty() {
        return Ok(QueueingHint::Skip);
    }
    let Some(original) = node_of(old)? else {
        return Ok(QueueingHint::Queue);
    };
    let before = Resource::from_list(
        original
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref()),
    );
    let after = &modified_info.allocatable;
    if after.allowed_pod_number > before.allowed_pod_number {
        return Ok(QueueingHint::Queue);
    }
    let want = pod_requests(pod, false);
    let grew = (want.milli_cpu > 0 && after.milli_cpu > before.milli_cpu)
        || (want.memory > 0 && after.memory > before.memory)
        || (want.ephemeral_storage > 0 && after.ephemeral_storage > before.ephemeral_storage)
        || want.scalar.iter().any(|(name, w)| {
            let get = |r: &Resource| r.scalar.get(name).copied().unwrap_or(0);
            *w != 0 && get(after) > get(&before)
        });
    Ok(if grew {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    })
}

#[cfg(test)]
mod tests;
