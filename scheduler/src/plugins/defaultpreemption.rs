//! DefaultPreemption (upstream's `plugins/defaultpreemption` + `framework/preemption`): when no
//! node passes Filter, find a node where evicting lower-priority pods lets the pod fit, evict
//! them, and nominate the pod to that node.
//!
//! 1. Eligibility: not with `preemptionPolicy: Never`, nor while lower-priority pods preempted
//!    for it are still terminating on its nominated node.
//! 2. Candidates: only nodes whose filter verdict was Unschedulable (not Unresolvable); a dry
//!    run on copies of each node and of the cycle state removes the lower-priority pods and
//!    puts back as many as possible (PDB-protected ones first), stopping after
//!    `max(minCandidateNodesPercentage% of nodes, minCandidateNodesAbsolute)` candidates.
//! 3. Choice: fewest PDB violations, lowest highest-victim priority, smallest priority sum,
//!    fewest victims, latest start of the highest-priority victims.
//! 4. Execution ([`executor`]): `DisruptionTarget` condition then delete for each victim (a
//!    victim waiting at Permit is rejected instead), and lower-priority nominations on the
//!    node cleared; asynchronously by default (upstream's `SchedulerAsyncPreemption`, on since
//!    1.33), the preemptor held back by PreEnqueue until it is done.
//!
//! When no node can help the status reads like upstream's: "preemption: 0/N nodes are
//! available: X No preemption victims found for incoming pod, Y Preemption is not helpful for
//! scheduling." and the result asks to clear the pod's nomination (`Override("")`).

pub mod api;
pub mod evaluator;
pub mod executor;
pub mod victims;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use rand::Rng;
use serde::Deserialize;

use client::informer::store::Store;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, Code, EventResource, Handle, NodeToStatus,
    NominatingMode, Plugin, PodInfo, PostFilterArgs, PostFilterPlugin, PostFilterResult,
    PreEnqueuePlugin, QueueingHint, Snapshot, Status,
};
use crate::plugins::volumebinding::listers::VolumeListers;

use api::{ClientPreemptionApi, PreemptionApi};
use executor::Running;

pub const NAME: &str = "DefaultPreemption";

/// The condition type and reason upstream puts on preempted pods.
pub const DISRUPTION_TARGET: &str = "DisruptionTarget";
pub const PREEMPTION_BY_SCHEDULER: &str = "PreemptionByScheduler";

/// `DefaultPreemptionArgs` (kubescheduler.config.k8s.io/v1), defaults applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreemptionArgs {
    pub min_candidate_nodes_percentage: i32,
    pub min_candidate_nodes_absolute: i32,
}

impl Default for PreemptionArgs {
    fn default() -> PreemptionArgs {
        PreemptionArgs {
            min_candidate_nodes_percentage: 10,
            min_candidate_nodes_absolute: 100,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawArgs {
    // Accepted as in any typed args object, otherwise unused.
    #[allow(dead_code)]
    api_version: Option<String>,
    #[allow(dead_code)]
    kind: Option<String>,
    min_candidate_nodes_percentage: Option<i32>,
    min_candidate_nodes_absolute: Option<i32>,
}

/// Decodes and validates as upstream's `ValidateDefaultPreemptionArgs`.
pub fn parse_args(args: Option<&serde_json::Value>) -> anyhow::Result<PreemptionArgs> {
    let raw: RawArgs = match args {
        None | Some(serde_json::Value::Null) => return Ok(PreemptionArgs::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("decoding DefaultPreemptionArgs: {e}"))?,
    };
    let defaults = PreemptionArgs::default();
    let args = PreemptionArgs {
        min_candidate_nodes_percentage: raw
            .min_candidate_nodes_percentage
            .unwrap_or(defaults.min_candidate_nodes_percentage),
        min_candidate_nodes_absolute: raw
            .min_candidate_nodes_absolute
            .unwrap_or(defaults.min_candidate_nodes_absolute),
    };
    let (pct, abs) = (
        args.min_candidate_nodes_percentage,
        args.min_candidate_nodes_absolute,
    );
    let mut errs = Vec::new();
    if !(0..=100).contains(&pct) {
        errs.push(format!(
            "minCandidateNodesPercentage: Invalid value: {pct}: not in valid range [0, 100]"
        ));
    }
    if abs < 0 {
        errs.push(format!(
            "minCandidateNodesAbsolute: Invalid value: {abs}: not in valid range [0, inf)"
        ));
    }
    if pct == 0 && abs == 0 {
        errs.push(
            "minCandidateNodesPercentage: Invalid value: 0: cannot be zero at the same time as minCandidateNodesAbsolute"
                .into(),
        );
        errs.push(
            "minCandidateNodesAbsolute: Invalid value: 0: cannot be zero at the same time as minCandidateNodesPercentage"
                .into(),
        );
    }
    if !errs.is_empty() {
        anyhow::bail!("[{}]", errs.join(", "));
    }
    Ok(args)
}

type OffsetFn = Box<dyn Fn(usize) -> usize + Send + Sync>;

pub struct DefaultPreemption {
    args: PreemptionArgs,
    /// The informer's pods, for the preemptor's latest version and PreEnqueue's check of the
    /// last victim (absent in unit tests: the cycle's pod is used).
    pods: Option<Store<Pod>>,
    pdbs: Store<PodDisruptionBudget>,
    api: Option<Arc<dyn PreemptionApi>>,
    async_preemption: bool,
    running: Arc<Running>,
    /// Where the dry run starts among the potential nodes (random, as upstream).
    offset: OffsetFn,
}

pub fn new(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    let args = parse_args(args)?;
    let pods = handle
        .informers
        .is_some()
        .then(|| VolumeListers::store_of::<Pod>(handle));
    let api = handle
        .client
        .clone()
        .map(|c| Arc::new(ClientPreemptionApi::new(c)) as Arc<dyn PreemptionApi>);
    Ok(Arc::new(DefaultPreemption::with_parts(
        args,
        pods,
        VolumeListers::store_of::<PodDisruptionBudget>(handle),
        api,
        true,
    )))
}

impl DefaultPreemption {
    pub fn with_parts(
        args: PreemptionArgs,
        pods: Option<Store<Pod>>,
        pdbs: Store<PodDisruptionBudget>,
        api: Option<Arc<dyn PreemptionApi>>,
        async_preemption: bool,
    ) -> DefaultPreemption {
        DefaultPreemption {
            args,
            pods,
            pdbs,
            api,
            async_preemption,
            running: Arc::new(Running::default()),
            offset: Box::new(|n| {
                if n == 0 {
                    0
                } else {
                    rand::rng().random_range(0..n)
                }
            }),
        }
    }

    /// Fixes where dry runs start (tests).
    pub fn with_offset(mut self, offset: impl Fn(usize) -> usize + Send + Sync + 'static) -> Self {
        self.offset = Box::new(offset);
        self
    }

    /// Upstream's `PodEligibleToPreemptOthers`.
    fn eligible(
        &self,
        pod: &Pod,
        statuses: &NodeToStatus,
        snapshot: &Snapshot,
    ) -> Result<(), &'static str> {
        let spec = pod.spec.as_ref();
        if spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return Err("not eligible due to preemptionPolicy=Never.");
        }
        let nominated = pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if nominated.is_empty() {
            return Ok(());
        }
        // The nominated node cannot take the pod any more: look elsewhere.
        if statuses.get(nominated).code() == Code::UnschedulableAndUnresolvable {
            return Ok(());
        }
        if let Some(node) = snapshot.get(nominated) {
            let waiting = node.pods.iter().any(|p| {
                victims::preemption_allowed(&p.pod, pod)
                    && victims::terminating_by_preemption(&p.pod)
            });
            if waiting {
                return Err("not eligible due to a terminating pod on the nominated node.");
            }
        }
        Ok(())
    }

    /// Upstream's `Evaluator.Preempt`.
    async fn preempt(&self, args: &PostFilterArgs<'_>) -> (Option<PostFilterResult>, Status) {
        let pod: Arc<PodInfo> = match &self.pods {
            Some(store) => match store.get(&args.pod.key()) {
                Some(p) => Arc::new(PodInfo::new(p)),
                None => {
                    return (
                        None,
                        Status::error(format!("pod {:?} not found", args.pod.name())),
                    )
                }
            },
            None => args.pod.clone(),
        };
        if let Err(msg) = self.eligible(&pod.pod, args.statuses, args.snapshot) {
            tracing::debug!(pod = %pod.key(), reason = msg, "pod is not eligible for preemption");
            return (None, Status::unschedulable(msg));
        }
        let all = args.snapshot.list();
        if all.is_empty() {
            return (None, Status::error("no nodes available"));
        }
        let potential = evaluator::potential_nodes(all, args.statuses);
        let run = if potential.is_empty() {
            tracing::debug!(pod = %pod.key(), "preemption will not help schedule pod on any node");
            evaluator::DryRun {
                candidates: Vec::new(),
                statuses: Vec::new(),
                errors: Vec::new(),
            }
        } else {
            let pdbs = self.pdbs.list();
            let offset = (self.offset)(potential.len());
            let wanted = evaluator::num_candidates(
                potential.len(),
                self.args.min_candidate_nodes_percentage,
                self.args.min_candidate_nodes_absolute,
            );
            evaluator::dry_run(
                args.framework,
                args.state,
                &pod,
                &potential,
                &pdbs,
                offset,
                wanted,
            )
        };
        if run.candidates.is_empty() {
            if !run.errors.is_empty() {
                let msg = if run.errors.len() == 1 {
                    run.errors[0].clone()
                } else {
                    format!("[{}]", run.errors.join(", "))
                };
                return (None, Status::error(msg));
            }
            tracing::debug!(pod = %pod.key(), "no preemption candidate is found; preemption is not helpful for scheduling");
            let msg = evaluator::fit_error_message(
                all.len(),
                &run.statuses,
                &Status::unresolvable("Preemption is not helpful for scheduling"),
            );
            // Clear a nomination the pod may hold.
            let result = PostFilterResult {
                nominating: NominatingMode::Override(String::new()),
            };
            return (Some(result), Status::unschedulable(msg));
        }
        let Some(best) = evaluator::pick_one(&run.candidates) else {
            return (
                None,
                Status::unschedulable("no candidate node for preemption"),
            );
        };
        tracing::info!(pod = %pod.key(), node = %best.node, victims = best.victims.len(), "the target node for the preemption is determined");
        let Some(api) = self.api.clone() else {
            return (None, Status::error("no API client to preempt pods with"));
        };
        let victims: Vec<Arc<Pod>> = best.victims.iter().map(|v| v.pod.clone()).collect();
        let lower = evaluator::lower_priority_nominated_pods(args.framework, &pod.pod, &best.node);
        let waiting = &args.framework.handle().waiting_pods;
        if self.async_preemption {
            executor::prepare_candidate_async(
                api,
                waiting.clone(),
                self.running.clone(),
                pod.pod.clone(),
                best.node.clone(),
                &victims,
                lower,
            );
        } else if let Err(e) = executor::prepare_candidate(
            api.as_ref(),
            waiting,
            &pod.pod,
            &best.node,
            &victims,
            &lower,
        )
        .await
        {
            return (None, Status::error(e));
        }
        (
            Some(PostFilterResult {
                nominating: NominatingMode::Override(best.node.clone()),
            }),
            Status::success(),
        )
    }
}

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
    fn post_filter(&self) -> Option<&dyn PostFilterPlugin> {
        Some(self)
    }
    fn pre_enqueue(&self) -> Option<&dyn PreEnqueuePlugin> {
        self.async_preemption
            .then_some(self as &dyn PreEnqueuePlugin)
    }

    fn events_to_register(&self) -> Vec<ClusterEventWithHint> {
        if !self.async_preemption {
            // PreEnqueue is off: this plugin never rejects a pod.
            return Vec::new();
        }
        // The victims' deletion is what other plugins requeue the pod on; this plugin only
        // needs the event so a gated pod is looked at again, and leaves the decision to them.
        vec![ClusterEventWithHint::with_hint(
            ClusterEvent::new(
                EventResource::AssignedPod,
                ActionType::DELETE,
                "AssignedPodDelete",
            ),
            Arc::new(|_, _, _| Ok(QueueingHint::Skip)),
        )]
    }
}

impl PreEnqueuePlugin for DefaultPreemption {
    fn pre_enqueue(&self, pod: &Pod) -> Status {
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        if self.running.is_running(uid, self.pods.as_ref()) {
            return Status::unresolvable("waiting for the preemption for this pod to be finished");
        }
        Status::success()
    }
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter<'a>(
        &'a self,
        args: PostFilterArgs<'a>,
    ) -> BoxFuture<'a, (Option<PostFilterResult>, Status)> {
        Box::pin(async move {
            let (result, status) = self.preempt(&args).await;
            let msg = status.message();
            if msg.is_empty() {
                return (result, status);
            }
            (
                result,
                Status::new(status.code(), format!("preemption: {msg}")),
            )
        })
    }
}
