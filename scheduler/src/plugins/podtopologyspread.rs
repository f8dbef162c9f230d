//! PodTopologySpread (upstream's `plugins/podtopologyspread`): spreads pods that match a
//! constraint's selector evenly across the domains of its topology key.
//!
//! - `DoNotSchedule` constraints are hard: PreFilter counts matching pods per domain, Filter
//!   rejects a node whose domain would exceed `maxSkew` above the global minimum
//!   (Unschedulable), or that lacks the topology label (UnschedulableAndUnresolvable).
//! - `ScheduleAnyway` constraints are soft: PreScore/Score/Normalize favour emptier domains.
//! - A pod without constraints gets the plugin's default constraints (args `defaultConstraints`
//!   with `defaultingType: List`, or the system defaults: hostname maxSkew 3 and zone maxSkew
//!   5, both ScheduleAnyway), selecting the pods of the Services / ReplicationController /
//!   ReplicaSet / StatefulSet that select or own it. Without informers there are no listers,
//!   so the defaults select nothing and do not apply.
//!
//! Domains count only nodes that have every topology key and pass the inclusion policies:
//! `nodeAffinityPolicy` (default Honor: the pod's nodeSelector / required node affinity) and
//! `nodeTaintsPolicy` (default Ignore; Honor: untolerated NoSchedule/NoExecute taints exclude).

mod common;
mod filtering;
mod scoring;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use anyhow::Context;
use apimachinery::validation::is_qualified_name;
use apimachinery::{aggregate_message, FieldError, LabelSelector, Path};
use client::informer::store::{namespace_indexer, NAMESPACE_INDEX};
use k8s_openapi::api::apps::v1::{ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{
    Node, Pod, ReplicationController, Service, TopologySpreadConstraint,
};

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, EventObject, EventResource, FilterPlugin,
    Handle, Plugin, PreFilterPlugin, PreScorePlugin, QueueingHint, QueueingHintFn, ScorePlugin,
};
use crate::plugins::helper::{node_of, pod_of};
use common::{
    default_selector, filter_constraints, labels_of, node_labels_match_constraints,
    pod_labels_match_constraints, Constraint, Listers, DO_NOT_SCHEDULE, LABEL_HOSTNAME,
    LABEL_TOPOLOGY_ZONE, SCHEDULE_ANYWAY,
};

pub const NAME: &str = "PodTopologySpread";

/// Filter's reason when a node's domain would exceed maxSkew.
pub const ERR_REASON_CONSTRAINTS_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints";
/// Filter's reason when a node lacks a constraint's topology label.
pub const ERR_REASON_NODE_LABEL_NOT_MATCH: &str =
    "node(s) didn't match pod topology spread constraints (missing required label)";

const SYSTEM_DEFAULTING: &str = "System";
const LIST_DEFAULTING: &str = "List";

/// The system default constraints (upstream's `systemDefaultConstraints`).
fn system_default_constraints() -> Vec<TopologySpreadConstraint> {
    vec![
        TopologySpreadConstraint {
            topology_key: LABEL_HOSTNAME.to_string(),
            when_unsatisfiable: SCHEDULE_ANYWAY.to_string(),
            max_skew: 3,
            ..Default::default()
        },
        TopologySpreadConstraint {
            topology_key: LABEL_TOPOLOGY_ZONE.to_string(),
            when_unsatisfiable: SCHEDULE_ANYWAY.to_string(),
            max_skew: 5,
            ..Default::default()
        },
    ]
}

/// The plugin. Cheap to clone (the listers are shared stores), so the queueing hints can own
/// a copy.
#[derive(Clone)]
pub struct PodTopologySpread {
    default_constraints: Arc<Vec<TopologySpreadConstraint>>,
    /// The defaults are the system ones (hostname + zone), which changes scoring slightly.
    system_defaulted: bool,
    /// Present when there are default constraints and informers to list owners with.
    listers: Option<Listers>,
}

/// `PodTopologySpreadArgs` (kubescheduler.config.k8s.io/v1), validated as upstream's
/// `ValidatePodTopologySpreadArgs`. `defaultingType` defaults to System.
fn parse_args(
    args: Option<&serde_json::Value>,
) -> anyhow::Result<(Vec<TopologySpreadConstraint>, String)> {
    let empty = serde_json::Value::Null;
    let args = args.unwrap_or(&empty);
    let defaulting_type = match args.get("defaultingType") {
        None | Some(serde_json::Value::Null) => SYSTEM_DEFAULTING.to_string(),
        Some(serde_json::Value::String(s)) if s.is_empty() => SYSTEM_DEFAULTING.to_string(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => anyhow::bail!("defaultingType: must be a string, not {other}"),
    };
    let constraints: Vec<TopologySpreadConstraint> = match args.get("defaultConstraints") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).context("decoding defaultConstraints")?,
    };

    let mut errs: Vec<FieldError> = Vec::new();
    let dt_path = Path::new("defaultingType");
    if defaulting_type != SYSTEM_DEFAULTING && defaulting_type != LIST_DEFAULTING {
        errs.push(FieldError::not_supported(
            dt_path.as_str(),
            defaulting_type.as_str(),
            &[SYSTEM_DEFAULTING, LIST_DEFAULTING],
        ));
    } else if defaulting_type == SYSTEM_DEFAULTING && !constraints.is_empty() {
        errs.push(FieldError::invalid(
            dt_path.as_str(),
            defaulting_type.as_str(),
            "when .defaultConstraints are not empty",
        ));
    }
    let path = Path::new("defaultConstraints");
    for (i, c) in constraints.iter().enumerate() {
        let p = path.index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                p.child("maxSkew").as_str(),
                c.max_skew,
                "not in valid range (0, inf)",
            ));
        }
        let key_path = p.child("topologyKey");
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(key_path.as_str(), "can not be empty"));
        } else {
            for msg in is_qualified_name(&c.topology_key) {
                errs.push(FieldError::invalid(
                    key_path.as_str(),
                    c.topology_key.as_str(),
                    msg,
                ));
            }
        }
        let wu_path = p.child("whenUnsatisfiable");
        if c.when_unsatisfiable.is_empty() {
            errs.push(FieldError::required(wu_path.as_str(), "can not be empty"));
        } else if c.when_unsatisfiable != DO_NOT_SCHEDULE && c.when_unsatisfiable != SCHEDULE_ANYWAY
        {
            errs.push(FieldError::not_supported(
                wu_path.as_str(),
                c.when_unsatisfiable.as_str(),
                &[DO_NOT_SCHEDULE, SCHEDULE_ANYWAY],
            ));
        }
        if c.label_selector.is_some() {
            errs.push(FieldError::forbidden(
                p.child("labelSelector").as_str(),
                "constraint must not define a selector, as they deduced for each pod",
            ));
        }
        if constraints[..i].iter().any(|o| {
            o.topology_key == c.topology_key && o.when_unsatisfiable == c.when_unsatisfiable
        }) {
            errs.push(FieldError::duplicate(
                p.as_str(),
                format!("{{{}, {}}}", c.topology_key, c.when_unsatisfiable),
            ));
        }
    }
    if let Some(message) = aggregate_message(&errs) {
        anyhow::bail!("{message}");
    }
    Ok((constraints, defaulting_type))
}

/// Builds the plugin from its args; the listers for default constraints come from the
/// handle's informers (their informers are registered here, so the factory starts them).
pub fn new(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PodTopologySpread::from_args(args, handle)?))
}

impl PodTopologySpread {
    fn from_args(
        args: Option<&serde_json::Value>,
        handle: &Handle,
    ) -> anyhow::Result<PodTopologySpread> {
        let (mut default_constraints, defaulting_type) = parse_args(args)?;
        let system_defaulted = defaulting_type == SYSTEM_DEFAULTING;
        if system_defaulted {
            default_constraints = system_default_constraints();
        }
        let listers = match (&handle.informers, default_constraints.is_empty()) {
            (Some(factory), false) => {
                let services = factory.informer::<Service>();
                services.add_indexer(NAMESPACE_INDEX, namespace_indexer());
                Some(Listers {
                    services: services.store().clone(),
                    replication_controllers: factory
                        .informer::<ReplicationController>()
                        .store()
                        .clone(),
                    replica_sets: factory.informer::<ReplicaSet>().store().clone(),
                    stateful_sets: factory.informer::<StatefulSet>().store().clone(),
                })
            }
            _ => None,
        };
        Ok(PodTopologySpread {
            default_constraints: Arc::new(default_constraints),
            system_defaulted,
            listers,
        })
    }

    /// The default constraints of `action` with the pod's deduced selector; none when the
    /// pod has no owner or Service to deduce one from (upstream's `buildDefaultConstraints`).
    fn build_default_constraints(
        &self,
        pod: &Pod,
        action: &str,
    ) -> Result<Vec<Constraint>, String> {
        let mut constraints =
            filter_constraints(&self.default_constraints, labels_of(&pod.metadata), action)?;
        if constraints.is_empty() {
            return Ok(constraints);
        }
        let Some(listers) = &self.listers else {
            return Ok(Vec::new());
        };
        let selector: LabelSelector = default_selector(pod, listers);
        if selector.is_empty() {
            return Ok(Vec::new());
        }
        for c in &mut constraints {
            c.selector = selector.clone();
        }
        Ok(constraints)
    }

    /// The pod's DoNotSchedule constraints, or the default ones when it states none
    /// (upstream's `getConstraints`).
    fn hard_constraints(&self, pod: &Pod) -> Result<Vec<Constraint>, String> {
        let spec_constraints = pod
            .spec
            .as_ref()
            .and_then(|s| s.topology_spread_constraints.as_deref())
            .unwrap_or_default();
        if spec_constraints.is_empty() {
            self.build_default_constraints(pod, DO_NOT_SCHEDULE)
                .map_err(|e| format!("setting default hard topology spread constraints: {e}"))
        } else {
            filter_constraints(spec_constraints, labels_of(&pod.metadata), DO_NOT_SCHEDULE)
                .map_err(|e| format!("obtaining pod's hard topology spread constraints: {e}"))
        }
    }

    /// Queue when an assigned pod in the pod's namespace that a constraint selects comes, goes
    /// or changes whether it is selected, or when the pod itself gains tolerations while a
    /// constraint honours taints (upstream's `isSchedulableAfterPodChange`).
    fn hint_after_pod_change(
        &self,
        pod: &Pod,
        old: Option<&EventObject>,
        new: Option<&EventObject>,
    ) -> Result<QueueingHint, String> {
        let (original, modified) = (pod_of(old)?, pod_of(new)?);
        let involved = |p: &Pod| {
            p.metadata.uid == pod.metadata.uid
                || (p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(|n| !n.is_empty())
                    && p.metadata.namespace == pod.metadata.namespace)
        };
        if modified.is_some_and(|p| !involved(p)) || original.is_some_and(|p| !involved(p)) {
            return Ok(QueueingHint::Skip);
        }
        let constraints = self.hard_constraints(pod)?;
        match (original, modified) {
            (Some(original), Some(modified)) => {
                let tolerations = |p: &Pod| p.spec.as_ref().and_then(|s| s.tolerations.clone());
                if pod.metadata.uid == modified.metadata.uid
                    && tolerations(original) != tolerations(modified)
                    && constraints.iter().any(|c| c.honor_node_taints)
                {
                    return Ok(QueueingHint::Queue);
                }
                let (old_labels, new_labels) =
                    (labels_of(&original.metadata), labels_of(&modified.metadata));
                if old_labels == new_labels {
                    return Ok(QueueingHint::Skip);
                }
                let changed = constraints
                    .iter()
                    .any(|c| c.selector.matches(old_labels) != c.selector.matches(new_labels));
                Ok(if changed {
                    QueueingHint::Queue
                } else {
                    QueueingHint::Skip
                })
            }
            (None, Some(p)) | (Some(p), None) => Ok(
                if pod_labels_match_constraints(&constraints, labels_of(&p.metadata)) {
                    QueueingHint::Queue
                } else {
                    QueueingHint::Skip
                },
            ),
            (None, None) => Ok(QueueingHint::Queue),
        }
    }

    /// Queue when a node that has every topology key comes or goes, gains or loses one,
    /// changes a topology value, or changes taints (upstream's `isSchedulableAfterNodeChange`).
    fn hint_after_node_change(
        &self,
        pod: &Pod,
        old: Option<&EventObject>,
        new: Option<&EventObject>,
    ) -> Result<QueueingHint, String> {
        let (original, modified) = (node_of(old)?, node_of(new)?);
        let constraints = self.hard_constraints(pod)?;
        let matching =
            |n: &Node| node_labels_match_constraints(labels_of(&n.metadata), &constraints);
        let hint = |queue: bool| {
            if queue {
                QueueingHint::Queue
            } else {
                QueueingHint::Skip
            }
        };
        match (original, modified) {
            (Some(o), Some(m)) => {
                let (was, is) = (matching(o), matching(m));
                if was != is {
                    return Ok(QueueingHint::Queue);
                }
                let (ol, ml) = (labels_of(&o.metadata), labels_of(&m.metadata));
                let value_changed = constraints
                    .iter()
                    .any(|c| ol.get(&c.topology_key) != ml.get(&c.topology_key));
                let taints = |n: &Node| n.spec.as_ref().and_then(|s| s.taints.clone());
                Ok(hint(is && (value_changed || taints(o) != taints(m))))
            }
            (None, Some(n)) | (Some(n), None) => Ok(hint(matching(n))),
            (None, None) => Ok(QueueingHint::Queue),
        }
    }
}

impl Plugin for PodTopologySpread {
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
        let pods = self.clone();
        let pod_hint: QueueingHintFn =
            Arc::new(move |pod, old, new| pods.hint_after_pod_change(pod, old, new));
        let nodes = self.clone();
        let node_hint: QueueingHintFn =
            Arc::new(move |pod, old, new| nodes.hint_after_node_change(pod, old, new));
        vec![
            // An assigned pod that matches a constraint comes, goes or is relabelled.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::ADD | ActionType::UPDATE_POD_LABEL | ActionType::DELETE,
                    "AssignedPodChange",
                ),
                pod_hint.clone(),
            ),
            // The pod itself gains a toleration (matters with nodeTaintsPolicy: Honor).
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::UnscheduledPod,
                    ActionType::UPDATE_POD_LABEL | ActionType::UPDATE_POD_TOLERATIONS,
                    "UnscheduledPodUpdate",
                ),
                pod_hint,
            ),
            // A node with the topology keys comes or goes, or its labels or taints change.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::Node,
                    ActionType::ADD
                        | ActionType::DELETE
                        | ActionType::UPDATE_NODE_LABEL
                        | ActionType::UPDATE_NODE_TAINT,
                    "NodeChange",
                ),
                node_hint,
            ),
        ]
    }
}
