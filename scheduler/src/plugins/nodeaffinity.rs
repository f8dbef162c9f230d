//! NodeAffinity (upstream's `nodeaffinity`): Filter keeps the nodes that match the pod's
//! `spec.nodeSelector` and required node affinity (and the scheduler-enforced `addedAffinity`
//! of the plugin args); PreFilter narrows the candidates when every term pins `metadata.name`;
//! Score sums the weights of the preferred terms a node matches, normalised to 0..100.
//! Rejections are UnschedulableAndUnresolvable: preemption cannot change a node's labels.

use std::collections::HashSet;
use std::sync::Arc;

use apimachinery::Path;
use k8s_openapi::api::core::v1::{NodeAffinity as ApiNodeAffinity, Pod};
use serde::Deserialize;

use crate::framework::{
    ActionType, ClusterEvent, ClusterEventWithHint, CycleState, EventObject, EventResource,
    FilterPlugin, Handle, NodeInfo, NodeScore, Plugin, PodInfo, PreFilterPlugin, PreFilterResult,
    PreScorePlugin, QueueingHint, ScorePlugin, Snapshot, Status, MAX_NODE_SCORE,
};
use crate::plugins::helper::{
    default_normalize_score, node_of, NodeSelector, PreferredSchedulingTerms, RequiredNodeAffinity,
    OBJECT_NAME_FIELD,
};

pub const NAME: &str = "NodeAffinity";

/// Upstream's `ErrReasonPod`.
pub const ERR_REASON_POD: &str = "node(s) didn't match Pod's node affinity/selector";
/// A node the plugin args' `addedAffinity` excludes.
pub const ERR_REASON_ENFORCED: &str = "node(s) didn't match scheduler-enforced node affinity";
/// Every required term pins `metadata.name`, and no name satisfies them.
pub const ERR_REASON_CONFLICT: &str = "pod affinity terms conflict";

const PRE_FILTER_STATE_KEY: &str = "PreFilterNodeAffinity";
const PRE_SCORE_STATE_KEY: &str = "PreScoreNodeAffinity";

/// `NodeAffinityArgs` (kubescheduler.config.k8s.io/v1).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NodeAffinityArgs {
    #[serde(default)]
    #[allow(dead_code)]
    api_version: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    kind: Option<String>,
    #[serde(default)]
    added_affinity: Option<ApiNodeAffinity>,
}

pub struct NodeAffinity {
    added_node_selector: Option<NodeSelector>,
    added_pref_sched_terms: Option<PreferredSchedulingTerms>,
}

/// Builds the plugin; `addedAffinity` must parse (upstream's `ValidateNodeAffinityArgs`).
pub fn new(args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    let args: NodeAffinityArgs = match args {
        None | Some(serde_json::Value::Null) => NodeAffinityArgs::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| anyhow::anyhow!("decoding NodeAffinityArgs: {e}"))?,
    };
    let mut plugin = NodeAffinity {
        added_node_selector: None,
        added_pref_sched_terms: None,
    };
    let mut errs = Vec::new();
    if let Some(added) = &args.added_affinity {
        let path = Path::new("addedAffinity");
        if let Some(ns) = &added.required_during_scheduling_ignored_during_execution {
            match NodeSelector::new(
                ns,
                &path.child("requiredDuringSchedulingIgnoredDuringExecution"),
            ) {
                Ok(s) => plugin.added_node_selector = Some(s),
                Err(e) => errs.push(e),
            }
        }
        if let Some(terms) = added
            .preferred_during_scheduling_ignored_during_execution
            .as_ref()
            .filter(|t| !t.is_empty())
        {
            match PreferredSchedulingTerms::new(
                terms,
                &path.child("preferredDuringSchedulingIgnoredDuringExecution"),
            ) {
                Ok(t) => plugin.added_pref_sched_terms = Some(t),
                Err(e) => errs.push(e),
            }
        }
    }
    match errs.len() {
        0 => Ok(Arc::new(plugin)),
        1 => Err(anyhow::anyhow!("{}", errs.remove(0))),
        _ => Err(anyhow::anyhow!("[{}]", errs.join(", "))),
    }
}

fn required_terms(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::NodeSelector> {
    pod.spec
        .as_ref()?
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
}

/// The pod's preferred terms, parsed; None when it has none (upstream's
/// `getPodPreferredNodeAffinity`).
fn pod_preferred_terms(pod: &Pod) -> Result<Option<PreferredSchedulingTerms>, String> {
    let terms = pod
        .spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match terms {
        None => Ok(None),
        Some(t) => PreferredSchedulingTerms::new(t, &Path::default()).map(Some),
    }
}

/// The node names every required term pins with `metadata.name In (...)`: None when some term
/// does not pin names (all nodes stay eligible, since terms are ORed), else their union.
fn pinned_node_names(pod: &Pod) -> Option<HashSet<String>> {
    let terms = &required_terms(pod)?.node_selector_terms;
    if terms.is_empty() {
        return None;
    }
    let mut union: HashSet<String> = HashSet::new();
    for term in terms {
        let mut names: Option<HashSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == OBJECT_NAME_FIELD && r.operator == "In" {
                let s: HashSet<String> = r.values.iter().flatten().cloned().collect();
                names = Some(match names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        union.extend(names?);
    }
    Some(union)
}

#[derive(Debug, Clone)]
struct PreFilterState(RequiredNodeAffinity);

#[derive(Debug, Clone)]
struct PreScoreState(Option<PreferredSchedulingTerms>);

impl Plugin for NodeAffinity {
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
        let added = self.added_node_selector.clone();
        vec![ClusterEventWithHint::with_hint(
            ClusterEvent::new(
                EventResource::Node,
                ActionType(ActionType::ADD.0 | ActionType::UPDATE_NODE_LABEL.0),
                "NodeAdd|UpdateNodeLabel",
            ),
            Arc::new(
                move |pod: &Pod, old: Option<&EventObject>, new: Option<&EventObject>| {
                    is_schedulable_after_node_change(added.as_ref(), pod, old, new)
                },
            ),
        )]
    }
}

/// Queue when the added or updated node now matches the pod's required affinity (and the
/// enforced one) and, for an update, did not before.
fn is_schedulable_after_node_change(
    added: Option<&NodeSelector>,
    pod: &Pod,
    old: Option<&EventObject>,
    new: Option<&EventObject>,
) -> Result<QueueingHint, String> {
    let Some(modified) = node_of(new)? else {
        return Ok(QueueingHint::Skip);
    };
    if added.is_some_and(|s| !s.matches(modified)) {
        return Ok(QueueingHint::Skip);
    }
    let required = RequiredNodeAffinity::from_pod(pod);
    if !required.matches(modified)? {
        return Ok(QueueingHint::Skip);
    }
    let Some(original) = node_of(old)? else {
        return Ok(QueueingHint::Queue);
    };
    if required.matches(original)? {
        return Ok(QueueingHint::Skip);
    }
    Ok(QueueingHint::Queue)
}

impl PreFilterPlugin for NodeAffinity {
    fn pre_filter(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _snapshot: &Snapshot,
    ) -> (Option<PreFilterResult>, Status) {
        let required = required_terms(&pod.pod);
        let has_node_selector = pod
            .pod
            .spec
            .as_ref()
            .is_some_and(|s| s.node_selector.is_some());
        if required.is_none() && self.added_node_selector.is_none() && !has_node_selector {
            return (None, Status::skip());
        }
        state.write(
            PRE_FILTER_STATE_KEY,
            PreFilterState(RequiredNodeAffinity::from_pod(&pod.pod)),
        );
        match pinned_node_names(&pod.pod) {
            None => (None, Status::success()),
            Some(names) if names.is_empty() => (None, Status::unresolvable(ERR_REASON_CONFLICT)),
            Some(names) => (
                Some(PreFilterResult {
                    node_names: Some(names),
                }),
                Status::success(),
            ),
        }
    }
}

impl FilterPlugin for NodeAffinity {
    fn filter(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> Status {
        let Some(n) = node.node() else {
            return Status::error("node not found");
        };
        if self
            .added_node_selector
            .as_ref()
            .is_some_and(|s| !s.matches(n))
        {
            return Status::unresolvable(ERR_REASON_ENFORCED);
        }
        // Without PreFilter (disabled in the profile), work it out here.
        let fallback;
        let required = match state.read::<PreFilterState>(PRE_FILTER_STATE_KEY) {
            Some(s) => &s.0,
            None => {
                fallback = RequiredNodeAffinity::from_pod(&pod.pod);
                &fallback
            }
        };
        // Terms that do not parse count as "no match", for compatibility with old pods.
        if !required.matches(n).unwrap_or(false) {
            return Status::unresolvable(ERR_REASON_POD);
        }
        Status::success()
    }
}

impl PreScorePlugin for NodeAffinity {
    fn pre_score(
        &self,
        state: &mut CycleState,
        pod: &PodInfo,
        _nodes: &[Arc<NodeInfo>],
        _snapshot: &Snapshot,
    ) -> Status {
        let preferred = match pod_preferred_terms(&pod.pod) {
            Ok(p) => p,
            Err(e) => return Status::error(e),
        };
        if preferred.is_none() && self.added_pref_sched_terms.is_none() {
            return Status::skip();
        }
        state.write(PRE_SCORE_STATE_KEY, PreScoreState(preferred));
        Status::success()
    }
}

impl ScorePlugin for NodeAffinity {
    fn score(&self, state: &CycleState, pod: &PodInfo, node: &NodeInfo) -> (i64, Status) {
        let Some(n) = node.node() else {
            return (
                0,
                Status::error(format!("node {:?} not found", node.name())),
            );
        };
        let mut count = self
            .added_pref_sched_terms
            .as_ref()
            .map_or(0, |t| t.score(n));
        match state.read::<PreScoreState>(PRE_SCORE_STATE_KEY) {
            Some(PreScoreState(preferred)) => {
                count += preferred.as_ref().map_or(0, |t| t.score(n));
            }
            // Without PreScore (disabled in the profile), work it out here.
            None => match pod_preferred_terms(&pod.pod) {
                Ok(preferred) => count += preferred.as_ref().map_or(0, |t| t.score(n)),
                Err(e) => return (0, Status::error(e)),
            },
        }
        (count, Status::success())
    }

    fn normalize(&self, _state: &CycleState, _pod: &PodInfo, scores: &mut [NodeScore]) -> Status {
        default_normalize_score(MAX_NODE_SCORE, false, scores);
        Status::success()
    }

    fn has_normalize(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::{Code, Framework};
    use k8s_openapi::api::core::v1::Node;
    use serde_json::{json, Value};

    fn pod(spec: Value) -> PodInfo {
        let mut spec = spec;
        spec["containers"] = json!([]);
        PodInfo::new(Arc::new(
            serde_json::from_value(
                json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"}, "spec": spec}),
            )
            .expect("pod"),
        ))
    }

    fn node(name: &str, labels: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("node")
    }

    fn required(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}})
    }

    fn plugin(args: Option<Value>) -> Arc<dyn Plugin> {
        new(args.as_ref(), &Handle::for_tests()).expect("plugin")
    }

    /// PreFilter then Filter, as the framework runs them.
    fn run_filter(
        pl: &Arc<dyn Plugin>,
        p: &PodInfo,
        n: &Node,
    ) -> (Option<PreFilterResult>, Status) {
        let mut state = CycleState::new();
        let pf = pl.pre_filter().expect("prefilter");
        let (result, s) = pf.pre_filter(&mut state, p, &Snapshot::default());
        if !s.is_success() && !s.is_skip() {
            return (result, s);
        }
        if s.is_skip() {
            return (result, Status::success());
        }
        let info = NodeInfo::new(Some(Arc::new(n.clone())));
        (
            result,
            pl.filter().expect("filter").filter(&state, p, &info),
        )
    }

    #[test]
    fn filter_cases() {
        let pl = plugin(None);
        let cases: Vec<(&str, Value, Value, bool)> = vec![
            ("no selector", json!({}), json!({"foo": "bar"}), true),
            (
                "selector misses",
                json!({"nodeSelector": {"foo": "bar"}}),
                json!({}),
                false,
            ),
            (
                "selector matches",
                json!({"nodeSelector": {"foo": "bar"}}),
                json!({"foo": "bar", "x": "y"}),
                true,
            ),
            (
                "selector value differs",
                json!({"nodeSelector": {"foo": "bar"}}),
                json!({"foo": "baz"}),
                false,
            ),
            (
                "In matches",
                required(
                    json!([{"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar", "value2"]}]}]),
                ),
                json!({"foo": "bar"}),
                true,
            ),
            (
                "Gt and Lt",
                required(json!([{"matchExpressions": [
                    {"key": "kernel-version", "operator": "Gt", "values": ["0204"]},
                    {"key": "kernel-version", "operator": "Lt", "values": ["0206"]},
                ]}])),
                json!({"kernel-version": "0205"}),
                true,
            ),
            (
                "NotIn and DoesNotExist",
                required(json!([{"matchExpressions": [
                    {"key": "mem-type", "operator": "NotIn", "values": ["DDR", "DDR2"]},
                    {"key": "GPU", "operator": "DoesNotExist"},
                ]}])),
                json!({"mem-type": "DDR3"}),
                true,
            ),
            (
                "Exists misses",
                required(json!([{"matchExpressions": [{"key": "GPU", "operator": "Exists"}]}])),
                json!({"foo": "bar"}),
                false,
            ),
            (
                "no terms match nothing",
                required(json!([])),
                json!({"foo": "bar"}),
                false,
            ),
            (
                "an empty term matches nothing",
                required(json!([{}])),
                json!({"foo": "bar"}),
                false,
            ),
            (
                "one of two terms matches",
                required(json!([
                    {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["nope"]}]},
                    {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
                ])),
                json!({"foo": "bar"}),
                true,
            ),
            (
                "selector and affinity must both match",
                {
                    let mut v = required(
                        json!([{"matchExpressions": [{"key": "foo", "operator": "Exists"}]}]),
                    );
                    v["nodeSelector"] = json!({"zone": "a"});
                    v
                },
                json!({"foo": "bar", "zone": "b"}),
                false,
            ),
            (
                "a term that does not parse does not match",
                required(json!([{"matchExpressions": [{"key": "foo", "operator": "In"}]}])),
                json!({"foo": "bar"}),
                false,
            ),
            (
                "matchFields on the node name",
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node1"]}]}]),
                ),
                json!({}),
                true,
            ),
            (
                "matchFields on another name",
                required(
                    json!([{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["node1"]}]}]),
                ),
                json!({}),
                false,
            ),
        ];
        for (name, spec, labels, fits) in cases {
            let (_, s) = run_filter(&pl, &pod(spec), &node("node1", labels));
            if fits {
                assert!(s.is_success(), "{name}: {s}");
            } else {
                assert_eq!(s.code(), Code::UnschedulableAndUnresolvable, "{name}");
                assert_eq!(s.message(), ERR_REASON_POD, "{name}");
            }
        }
    }

    #[test]
    fn prefilter_narrows_to_pinned_node_names() {
        let pl = plugin(None);
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<HashSet<_>>());
        let pf = pl.pre_filter().expect("prefilter");
        let run = |spec: Value| {
            let mut state = CycleState::new();
            pf.pre_filter(&mut state, &pod(spec), &Snapshot::default())
        };
        let by_name =
            |op: &str, v: Value| json!({"key": "metadata.name", "operator": op, "values": v});
        // One term, one name.
        let (r, s) = run(required(
            json!([{"matchFields": [by_name("In", json!(["n1"]))]}]),
        ));
        assert!(s.is_success());
        assert_eq!(r.and_then(|r| r.node_names), names(&["n1"]));
        // Requirements of one term intersect; terms unite.
        let (r, _) = run(required(json!([
            {"matchFields": [by_name("In", json!(["n1", "n2"])), by_name("In", json!(["n2", "n3"]))]},
            {"matchFields": [by_name("In", json!(["n4"]))]},
        ])));
        assert_eq!(r.and_then(|r| r.node_names), names(&["n2", "n4"]));
        // A term without a name requirement keeps every node.
        let (r, s) = run(required(json!([
            {"matchFields": [by_name("In", json!(["n1"]))]},
            {"matchExpressions": [{"key": "foo", "operator": "Exists"}]},
        ])));
        assert!(s.is_success());
        assert!(r.is_none());
        // NotIn does not narrow.
        let (r, _) = run(required(
            json!([{"matchFields": [by_name("NotIn", json!(["n1"]))]}]),
        ));
        assert!(r.is_none());
        // Disjoint requirements in every term: no node can match.
        let (_, s) = run(required(json!([
            {"matchFields": [by_name("In", json!(["n1"])), by_name("In", json!(["n2"]))]},
        ])));
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_CONFLICT);
        // Nothing to do.
        let (_, s) = run(json!({}));
        assert!(s.is_skip());
    }

    #[test]
    fn added_affinity_is_enforced() {
        let pl = plugin(Some(json!({
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "NodeAffinityArgs",
            "addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["foo"]}]}
            ]}},
        })));
        let (_, s) = run_filter(&pl, &pod(json!({})), &node("n", json!({"zone": "bar"})));
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), ERR_REASON_ENFORCED);
        let (_, s) = run_filter(&pl, &pod(json!({})), &node("n", json!({"zone": "foo"})));
        assert!(s.is_success());
        let (_, s) = run_filter(
            &pl,
            &pod(json!({"nodeSelector": {"x": "y"}})),
            &node("n", json!({"zone": "foo"})),
        );
        assert_eq!(s.message(), ERR_REASON_POD);
    }

    #[test]
    fn invalid_args_are_rejected_naming_the_field() {
        let err = new(
            Some(&json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": "Foo", "values": ["foo"]}]}
            ]}}})),
            &Handle::for_tests(),
        )
        .err()
        .expect("an error")
        .to_string();
        assert_eq!(
            err,
            "addedAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Unsupported value: \"Foo\""
        );
        let err = new(
            Some(&json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 1, "preference": {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}}
            ]}})),
            &Handle::for_tests(),
        )
        .err()
        .expect("an error")
        .to_string();
        assert!(
            err.starts_with("addedAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].matchFields[0].values: Invalid value: "),
            "{err}"
        );
        assert!(new(Some(&json!({"bogus": 1})), &Handle::for_tests()).is_err());
    }

    fn scores(pl: Arc<dyn Plugin>, p: &PodInfo, nodes: Vec<Node>) -> Result<Vec<i64>, Status> {
        let h = Handle::for_tests();
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
        let snapshot = Snapshot::from_node_infos(
            nodes
                .into_iter()
                .map(|n| NodeInfo::new(Some(Arc::new(n))))
                .collect(),
        );
        let mut state = CycleState::new();
        let s = fw.run_pre_score(&mut state, p, snapshot.list(), &snapshot);
        if !s.is_success() {
            return Err(s);
        }
        Ok(fw
            .run_score(&state, p, snapshot.list())?
            .into_iter()
            .map(|s| s.score)
            .collect())
    }

    fn preferred(terms: Value) -> Value {
        json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": terms}}})
    }

    #[test]
    fn score_sums_and_normalizes_preferred_weights() {
        let nodes = || {
            vec![
                node("m1", json!({"foo": "bar"})),
                node("m2", json!({"key": "value", "az": "az1"})),
                node("m3", json!({"foo": "bar", "key": "value", "az": "az1"})),
                node("m4", json!({})),
            ]
        };
        let p = pod(preferred(json!([
            {"weight": 2, "preference": {"matchExpressions": [{"key": "foo", "operator": "In", "values": ["bar"]}]}},
            {"weight": 4, "preference": {"matchExpressions": [{"key": "key", "operator": "In", "values": ["value"]}]}},
            {"weight": 5, "preference": {"matchExpressions": [
                {"key": "foo", "operator": "In", "values": ["bar"]},
                {"key": "key", "operator": "In", "values": ["value"]},
                {"key": "az", "operator": "In", "values": ["az1"]},
            ]}},
        ])));
        // Raw 2, 4, 11, 0 -> scaled by 100/11.
        assert_eq!(scores(plugin(None), &p, nodes()), Ok(vec![18, 36, 100, 0]));
        // Without preferences there is nothing to score: PreScore skips.
        assert_eq!(
            scores(plugin(None), &pod(json!({})), nodes()),
            Ok(vec![0, 0, 0, 0])
        );
        // Added preferred terms count for every pod.
        let pl = plugin(Some(
            json!({"addedAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 3, "preference": {"matchExpressions": [{"key": "az", "operator": "Exists"}]}},
            ]}}),
        ));
        assert_eq!(
            scores(pl, &pod(json!({})), nodes()),
            Ok(vec![0, 100, 100, 0])
        );
        // A preferred term that does not parse is an error.
        let bad = pod(preferred(json!([
            {"weight": 2, "preference": {"matchExpressions": [{"key": "foo", "operator": "In"}]}},
        ])));
        let err = scores(plugin(None), &bad, nodes()).unwrap_err();
        assert_eq!(err.code(), Code::Error);
        assert!(
            err.message().contains("values set can't be empty"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn node_hint_queues_on_unmatch_to_match() {
        let pl = plugin(None);
        let hint = pl.events_to_register()[0].hint.clone().expect("hint");
        let target = pod(json!({"nodeSelector": {"foo": "bar"}}));
        let n = |labels: Value| EventObject::Node(Arc::new(node("n", labels)));
        assert_eq!(
            hint(&target.pod, None, Some(&n(json!({"foo": "bar"})))),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            hint(&target.pod, None, Some(&n(json!({})))),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            hint(
                &target.pod,
                Some(&n(json!({}))),
                Some(&n(json!({"foo": "bar"})))
            ),
            Ok(QueueingHint::Queue)
        );
        assert_eq!(
            hint(
                &target.pod,
                Some(&n(json!({"foo": "bar"}))),
                Some(&n(json!({"foo": "bar", "x": "1"})))
            ),
            Ok(QueueingHint::Skip)
        );
        let enforced = plugin(Some(
            json!({"addedAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Exists"}]}]
            }}}),
        ));
        let hint = enforced.events_to_register()[0].hint.clone().expect("hint");
        assert_eq!(
            hint(&target.pod, None, Some(&n(json!({"foo": "bar"})))),
            Ok(QueueingHint::Skip)
        );
        assert_eq!(
            hint(
                &target.pod,
                None,
                Some(&n(json!({"foo": "bar", "zone": "a"})))
            ),
            Ok(QueueingHint::Queue)
        );
    }
}
