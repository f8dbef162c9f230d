//! InterPodAffinity (upstream's `plugins/interpodaffinity`): required and preferred pod
//! affinity / anti-affinity, both the incoming pod's and, by symmetry, that of pods already
//! running (an existing pod's anti-affinity keeps matching pods out of its domain; its
//! affinity draws them in when scoring).
//!
//! Terms are matched by namespace and label selector. A term's `namespaceSelector` is resolved
//! against the namespaces the handle's Namespace informer holds (none without informers, so
//! only an empty selector `{}`, which selects every namespace, then has an effect).
//!
//! A pod whose terms do not parse is UnschedulableAndUnresolvable with the parse error.

mod filtering;
mod scoring;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::{aggregate_message, FieldError, LabelSelector};
use client::informer::Store;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use rayon::prelude::*;

use crate::framework::{
    ActionType, AffinityTerm, ClusterEvent, ClusterEventWithHint, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, Plugin, PodInfo, PreFilterPlugin, PreScorePlugin, QueueingHint,
    QueueingHintFn, ScorePlugin,
};
use crate::plugins::helper::{node_of, pod_of};
use filtering::pod_matches_all_affinity_terms;

pub const NAME: &str = "InterPodAffinity";

/// Filter's reason when the node's domains lack pods the pod's required affinity needs.
pub const ERR_REASON_AFFINITY_RULES_NOT_MATCH: &str = "node(s) didn't match pod affinity rules";
/// Filter's reason when the node's domain has pods the pod's required anti-affinity excludes.
pub const ERR_REASON_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't match pod anti-affinity rules";
/// Filter's reason when an existing pod's required anti-affinity excludes the pod.
pub const ERR_REASON_EXISTING_ANTI_AFFINITY_RULES_NOT_MATCH: &str =
    "node(s) didn't satisfy existing pods anti-affinity rules";

/// From this many nodes on, per-node work runs on several threads.
const PARALLEL_THRESHOLD: usize = 64;

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

fn labels_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> &BTreeMap<String, String> {
    meta.labels.as_ref().unwrap_or(&NO_LABELS)
}

/// `f` of every node, in order; on rayon's threads for large clusters (upstream's
/// `parallelizer.Until`).
fn map_nodes<'a, T, F>(nodes: &'a [Arc<NodeInfo>], f: F) -> Vec<T>
where
    T: Send,
    F: Fn(&'a Arc<NodeInfo>) -> T + Send + Sync,
{
    if nodes.len() >= PARALLEL_THRESHOLD {
        nodes.par_iter().with_min_len(32).map(f).collect()
    } else {
        nodes.iter().map(f).collect()
    }
}

/// `InterPodAffinityArgs` (kubescheduler.config.k8s.io/v1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// The score weight of an existing pod's required affinity term that the incoming pod
    /// matches, in [0, 100] (default 1).
    pub hard_pod_affinity_weight: i32,
    /// Score only with the incoming pod's own preferred terms (default false).
    pub ignore_preferred_terms_of_existing_pods: bool,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            hard_pod_affinity_weight: 1,
            ignore_preferred_terms_of_existing_pods: false,
        }
    }
}

fn parse_args(args: Option<&serde_json::Value>) -> anyhow::Result<Args> {
    let mut out = Args::default();
    let Some(args) = args.filter(|a| !a.is_null()) else {
        return Ok(out);
    };
    match args.get("hardPodAffinityWeight") {
        None | Some(serde_json::Value::Null) => {}
        Some(v) => {
            out.hard_pod_affinity_weight = v
                .as_i64()
                .and_then(|w| i32::try_from(w).ok())
                .ok_or_else(|| {
                    anyhow::anyhow!("hardPodAffinityWeight: must be an integer, not {v}")
                })?;
        }
    }
    match args.get("ignorePreferredTermsOfExistingPods") {
        None | Some(serde_json::Value::Null) => {}
        Some(v) => {
            out.ignore_preferred_terms_of_existing_pods = v.as_bool().ok_or_else(|| {
                anyhow::anyhow!("ignorePreferredTermsOfExistingPods: must be a boolean, not {v}")
            })?;
        }
    }
    let w = out.hard_pod_affinity_weight;
    let errs = if (0..=100).contains(&w) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            "hardPodAffinityWeight",
            w,
            "not in valid range [0, 100]",
        )]
    };
    if let Some(message) = aggregate_message(&errs) {
        anyhow::bail!("{message}");
    }
    Ok(out)
}

/// The plugin. Cheap to clone (the namespace store is shared), so hints can own a copy.
#[derive(Clone)]
pub struct InterPodAffinity {
    args: Args,
    /// The Namespace informer's store, for namespace selectors and labels.
    namespaces: Option<Store<Namespace>>,
}

/// Builds the plugin from its args; registers the Namespace informer on the handle's factory.
pub fn new(args: Option<&serde_json::Value>, handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(InterPodAffinity::from_args(args, handle)?))
}

impl InterPodAffinity {
    fn from_args(
        args: Option<&serde_json::Value>,
        handle: &Handle,
    ) -> anyhow::Result<InterPodAffinity> {
        Ok(InterPodAffinity {
            args: parse_args(args)?,
            namespaces: handle
                .informers
                .as_ref()
                .map(|f| f.informer::<Namespace>().store().clone()),
        })
    }

    /// The labels of namespace `ns`; none when it is not known (upstream's
    /// `GetNamespaceLabelsSnapshot`).
    fn namespace_labels(&self, ns: &str) -> Option<Arc<BTreeMap<String, String>>> {
        let namespace = self.namespaces.as_ref()?.get(ns)?;
        namespace.metadata.labels.clone().map(Arc::new)
    }

    /// The term with the namespaces its selector picks added to its namespaces, and the
    /// selector then matching nothing; a `{}` selector (every namespace) is kept (upstream's
    /// `mergeAffinityTermNamespacesIfNotEmpty`). So matching the incoming pod's terms needs no
    /// namespace labels.
    fn merge_namespace(&self, term: &AffinityTerm) -> AffinityTerm {
        let mut term = term.clone();
        if term.namespace_selector.is_empty() {
            return term;
        }
        if !term.namespace_selector.is_nothing() {
            for ns in self.namespaces.iter().flat_map(Store::list) {
                if term.namespace_selector.matches(labels_of(&ns.metadata)) {
                    if let Some(name) = &ns.metadata.name {
                        term.namespaces.insert(name.clone());
                    }
                }
            }
        }
        term.namespace_selector = LabelSelector::nothing();
        term
    }

    fn merge_namespaces(&self, terms: &[AffinityTerm]) -> Vec<AffinityTerm> {
        terms.iter().map(|t| self.merge_namespace(t)).collect()
    }
}

/// The pod's required affinity and anti-affinity terms, as the hints read them.
fn required_terms(pod: &Pod) -> Result<(Vec<AffinityTerm>, Vec<AffinityTerm>), String> {
    let info = PodInfo::new(Arc::new(pod.clone()));
    if let Some(err) = info.parse_error {
        return Err(err);
    }
    Ok((
        info.required_affinity_terms,
        info.required_anti_affinity_terms,
    ))
}

fn hint(queue: bool) -> QueueingHint {
    if queue {
        QueueingHint::Queue
    } else {
        QueueingHint::Skip
    }
}

/// Queue when an assigned pod starts matching all of the pod's affinity terms (added or
/// relabelled), or stops matching its anti-affinity terms (relabelled or deleted) (upstream's
/// `isSchedulableAfterPodChange`).
fn hint_after_pod_change(
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let (original, modified) = (pod_of(old)?, pod_of(new)?);
    let unassigned = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
    };
    if modified.is_some_and(unassigned) || original.is_some_and(unassigned) {
        return Ok(QueueingHint::Skip);
    }
    let (terms, anti_terms) = required_terms(pod)?;
    Ok(match (original, modified) {
        (Some(o), Some(m)) => hint(
            (!pod_matches_all_affinity_terms(&terms, o)
                && pod_matches_all_affinity_terms(&terms, m))
                || (pod_matches_all_affinity_terms(&anti_terms, o)
                    && !pod_matches_all_affinity_terms(&anti_terms, m)),
        ),
        (None, Some(m)) => hint(pod_matches_all_affinity_terms(&terms, m)),
        (Some(o), None) => hint(pod_matches_all_affinity_terms(&anti_terms, o)),
        (None, None) => QueueingHint::Queue,
    })
}

/// Queue when the added or updated node has the topology key of one of the pod's required
/// terms (upstream's `isSchedulableAfterNodeChange`).
fn hint_after_node_change(
    pod: &Pod,
    _old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(node) = node_of(new)? else {
        return Err("expected a Node".to_string());
    };
    let (terms, anti_terms) = required_terms(pod)?;
    let labels = labels_of(&node.metadata);
    Ok(hint(
        terms
            .iter()
            .chain(&anti_terms)
            .any(|t| labels.contains_key(&t.topology_key)),
    ))
}

impl Plugin for InterPodAffinity {
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
        let pod_hint: QueueingHintFn = Arc::new(hint_after_pod_change);
        let node_hint: QueueingHintFn = Arc::new(hint_after_node_change);
        vec![
            // An assigned pod comes (may satisfy affinity), goes (may lift anti-affinity) or
            // is relabelled.
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::AssignedPod,
                    ActionType::ADD | ActionType::UPDATE_POD_LABEL | ActionType::DELETE,
                    "AssignedPodChange",
                ),
                pod_hint,
            ),
            // A node gains a topology key. UpdateNodeTaint stands in for the add of a node
            // that was not ready when it was added (upstream does the same).
            ClusterEventWithHint::with_hint(
                ClusterEvent::new(
                    EventResource::Node,
                    ActionType::ADD | ActionType::UPDATE_NODE_LABEL | ActionType::UPDATE_NODE_TAINT,
                    "NodeChange",
                ),
                node_hint,
            ),
        ]
    }
}
