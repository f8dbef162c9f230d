//! Pure helpers several plugins share (upstream's `framework/plugins/helper`, plus the parts of
//! `component-helpers/scheduling/corev1` and `k8s.io/api/core/v1` the scheduler leans on):
//!
//! - node selectors: [`NodeSelector`], [`LazyErrorNodeSelector`], [`RequiredNodeAffinity`]
//!   (a pod's `nodeSelector` + required node affinity) and [`PreferredSchedulingTerms`], matching a
//!   node's labels and its `metadata.name` field;
//! - taints and tolerations: [`toleration_tolerates_taint`], [`tolerations_tolerate_taint`],
//!   [`find_matching_untolerated_taint`], [`do_not_schedule_taints_filter`];
//! - scores: [`default_normalize_score`];
//! - queueing hints: [`pod_of`] and [`node_of`] to read an event's objects (upstream's `util.As`).
//!
//! Parse errors are upstream's field-error text (`nodeSelectorTerms[0].matchExpressions[0].values:
//! Invalid value: ...`), aggregated the way upstream aggregates them.

use std::collections::BTreeMap;

use apimachinery::labels::{Operator, Requirement};
use apimachinery::validation::{is_qualified_name, is_valid_label_value};
use apimachinery::{aggregate_message, FieldError, LabelSelector, Path};
use k8s_openapi::api::core::v1::{
    Node, NodeSelector as ApiNodeSelector, NodeSelectorRequirement, NodeSelectorTerm as ApiTerm,
    Pod, PreferredSchedulingTerm, Taint, Toleration,
};
use serde_json::Value;

use crate::framework::{EventObject, NodeScore};

/// The only node field a `matchFields` requirement can name (upstream's `metav1.ObjectNameField`).
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

pub const TAINT_EFFECT_NO_SCHEDULE: &str = "NoSchedule";
pub const TAINT_EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
pub const TAINT_EFFECT_NO_EXECUTE: &str = "NoExecute";

/// The taint the node lifecycle controller puts on cordoned nodes; tolerating it also tolerates
/// `spec.unschedulable`.
pub const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

// ---------------------------------------------------------------------------------------------
// Node selectors
// ---------------------------------------------------------------------------------------------

/// One `matchFields` requirement: `In` and `NotIn` with exactly one value are all upstream allows.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FieldRequirement {
    Equals(String, String),
    NotEquals(String, String),
}

impl FieldRequirement {
    fn matches(&self, fields: &NodeFields<'_>) -> bool {
        // A field the node does not have reads as "" (upstream's `fields.Set.Get`).
        let get = |k: &str| fields.get(k).unwrap_or("");
        match self {
            FieldRequirement::Equals(k, v) => get(k) == v,
            FieldRequirement::NotEquals(k, v) => get(k) != v,
        }
    }
}

/// A parsed `NodeSelectorTerm`: its requirements ANDed. Parse errors are kept so a lazy
/// selector can report them only when nothing else matched.
#[derive(Debug, Clone)]
struct ParsedTerm {
    /// None when the term has no `matchExpressions`.
    labels: Option<LabelSelector>,
    /// None when the term has no `matchFields`.
    fields: Option<Vec<FieldRequirement>>,
    errors: Vec<FieldError>,
}

fn is_empty_term(term: &ApiTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty)
}

/// The fields of a node a `matchFields` requirement can see (upstream's `extractNodeFields`):
/// only its name, so no map is built per node and per cycle.
struct NodeFields<'a> {
    name: Option<&'a str>,
}

impl<'a> NodeFields<'a> {
    fn is_empty(&self) -> bool {
        self.name.is_none()
    }

    fn get(&self, field: &str) -> Option<&'a str> {
        if field == OBJECT_NAME_FIELD {
            self.name
        } else {
            None
        }
    }
}

fn node_fields(node: &Node) -> NodeFields<'_> {
    NodeFields {
        name: node.metadata.name.as_deref().filter(|n| !n.is_empty()),
    }
}

fn empty_labels() -> &'static BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    &EMPTY
}

fn node_labels(node: &Node) -> &BTreeMap<String, String> {
    node.metadata.labels.as_ref().unwrap_or(empty_labels())
}

/// Checks one label requirement as upstream's `labels.NewRequirement` does, with errors under
/// `path`.
fn label_requirement(
    key: &str,
    operator: Operator,
    values: &[String],
    path: &Path,
) -> Result<Requirement, Vec<FieldError>> {
    let mut errs = Vec::new();
    let msgs = is_qualified_name(key);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path.child("key"), key, msgs.join("; ")));
    }
    let values_path = path.child("values");
    let shown = || {
        if values.is_empty() {
            Value::Null
        } else {
            Value::from(values.to_vec())
        }
    };
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => errs.push(FieldError::invalid(
            &values_path,
            shown(),
            "for 'in', 'notin' operators, values set can't be empty",
        )),
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            errs.push(FieldError::invalid(
                &values_path,
                shown(),
                "values set must be empty for exists and does not exist",
            ))
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(FieldError::invalid(
                    &values_path,
                    shown(),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(FieldError::invalid(
                        values_path.index(i),
                        v.as_str(),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(
                values_path.index(i).key(key),
                v.as_str(),
                msgs.join("; "),
            ));
        }
    }
    if !errs.is_empty() {
        return Err(errs);
    }
    Requirement::new(key, operator, values.to_vec())
        .map_err(|e| vec![FieldError::invalid(path, key, e.message().to_string())])
}

/// `matchExpressions` as a label selector (upstream's `nodeSelectorRequirementsAsSelector`).
fn expressions_as_selector(
    exprs: &[NodeSelectorRequirement],
    path: &Path,
) -> Result<LabelSelector, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut requirements = Vec::with_capacity(exprs.len());
    for (i, expr) in exprs.iter().enumerate() {
        let p = path.index(i);
        let operator = match expr.operator.as_str() {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::GreaterThan,
            "Lt" => Operator::LessThan,
            other => {
                errs.push(FieldError::not_supported::<&str>(
                    p.child("operator"),
                    other,
                    &[],
                ));
                continue;
            }
        };
        let values = expr.values.as_deref().unwrap_or_default();
        match label_requirement(&expr.key, operator, values, &p) {
            Ok(r) => requirements.push(r),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() {
        Ok(LabelSelector::everything().with_requirements(requirements))
    } else {
        Err(errs)
    }
}

/// `matchFields` as field requirements (upstream's `nodeSelectorRequirementsAsFieldSelector`).
fn fields_as_requirements(
    exprs: &[NodeSelectorRequirement],
    path: &Path,
) -> Result<Vec<FieldRequirement>, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut reqs = Vec::with_capacity(exprs.len());
    for (i, expr) in exprs.iter().enumerate() {
        let p = path.index(i);
        let values = expr.values.as_deref().unwrap_or_default();
        let one = |errs: &mut Vec<FieldError>| match values {
            [v] => Some(v.clone()),
            _ => {
                errs.push(FieldError::invalid(
                    p.child("values"),
                    Value::from(values.to_vec()),
                    "must have one element",
                ));
                None
            }
        };
        match expr.operator.as_str() {
            "In" => {
                if let Some(v) = one(&mut errs) {
                    reqs.push(FieldRequirement::Equals(expr.key.clone(), v));
                }
            }
            "NotIn" => {
                if let Some(v) = one(&mut errs) {
                    reqs.push(FieldRequirement::NotEquals(expr.key.clone(), v));
                }
            }
            other => errs.push(FieldError::not_supported(
                p.child("operator"),
                other,
                &["In", "NotIn"],
            )),
        }
    }
    if errs.is_empty() {
        Ok(reqs)
    } else {
        Err(errs)
    }
}

impl ParsedTerm {
    fn new(term: &ApiTerm, path: &Path) -> ParsedTerm {
        let mut parsed = ParsedTerm {
            labels: None,
            fields: None,
            errors: Vec::new(),
        };
        if let Some(exprs) = term.match_expressions.as_ref().filter(|e| !e.is_empty()) {
            match expressions_as_selector(exprs, &path.child("matchExpressions")) {
                Ok(s) => parsed.labels = Some(s),
                Err(e) => parsed.errors.extend(e),
            }
        }
        if let Some(exprs) = term.match_fields.as_ref().filter(|e| !e.is_empty()) {
            match fields_as_requirements(exprs, &path.child("matchFields")) {
                Ok(f) => parsed.fields = Some(f),
                Err(e) => parsed.errors.extend(e),
            }
        }
        parsed
    }

    /// Whether the node matches; Err with the term's parse errors when it does not parse.
    fn matches(
        &self,
        labels: &BTreeMap<String, String>,
        fields: &NodeFields<'_>,
    ) -> Result<bool, &[FieldError]> {
        if !self.errors.is_empty() {
            return Err(&self.errors);
        }
        if self.labels.as_ref().is_some_and(|s| !s.matches(labels)) {
            return Ok(false);
        }
        // A node without a name has no fields to compare (upstream skips the check then).
        if let Some(reqs) = &self.fields {
            if !fields.is_empty() && !reqs.iter().all(|r| r.matches(fields)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn parse_terms(selector: &ApiNodeSelector, path: &Path) -> Vec<ParsedTerm> {
    let path = path.child("nodeSelectorTerms");
    selector
        .node_selector_terms
        .iter()
        .enumerate()
        // An empty term selects nothing: dropping it keeps the ORed result the same.
        .filter(|(_, t)| !is_empty_term(t))
        .map(|(i, t)| ParsedTerm::new(t, &path.index(i)))
        .collect()
}

/// A `NodeSelector` whose terms may not parse: parse errors are reported only when no term
/// matches (upstream's `LazyErrorNodeSelector`, used for pods and volumes, whose specs were
/// accepted before the rules got stricter).
#[derive(Debug, Clone)]
pub struct LazyErrorNodeSelector {
    terms: Vec<ParsedTerm>,
}

impl LazyErrorNodeSelector {
    /// Parses `selector`; errors name fields under `path` (`Path::default()` for none).
    pub fn new(selector: &ApiNodeSelector, path: &Path) -> LazyErrorNodeSelector {
        LazyErrorNodeSelector {
            terms: parse_terms(selector, path),
        }
    }

    /// Whether any term matches the node (terms are ORed; no term matches nothing). The error
    /// lists the parse errors of the terms that do not parse, when no other term matched.
    pub fn matches(&self, node: &Node) -> Result<bool, String> {
        let labels = node_labels(node);
        let fields = node_fields(node);
        let mut errs: Vec<FieldError> = Vec::new();
        for term in &self.terms {
            match term.matches(labels, &fields) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(e) => errs.extend_from_slice(e),
            }
        }
        match aggregate_message(&errs) {
            Some(message) => Err(message),
            None => Ok(false),
        }
    }
}

/// A `NodeSelector` that parsed cleanly (upstream's `nodeaffinity.NodeSelector`), e.g. the
/// scheduler-enforced `addedAffinity` of the NodeAffinity plugin.
#[derive(Debug, Clone)]
pub struct NodeSelector {
    lazy: LazyErrorNodeSelector,
}

impl NodeSelector {
    /// Parses `selector`, failing with every parse error (fields named under `path`).
    pub fn new(selector: &ApiNodeSelector, path: &Path) -> Result<NodeSelector, String> {
        let lazy = LazyErrorNodeSelector::new(selector, path);
        let errs: Vec<FieldError> = lazy
            .terms
            .iter()
            .flat_map(|t| t.errors.iter().cloned())
            .collect();
        match aggregate_message(&errs) {
            Some(message) => Err(message),
            None => Ok(NodeSelector { lazy }),
        }
    }

    pub fn matches(&self, node: &Node) -> bool {
        self.lazy.matches(node).unwrap_or(false)
    }
}

/// Whether `node` matches the terms of `selector` (upstream's `corev1.MatchNodeSelectorTerms`,
/// used for volume node affinity): errors only when no term matched and some did not parse.
pub fn match_node_selector_terms(node: &Node, selector: &ApiNodeSelector) -> Result<bool, String> {
    LazyErrorNodeSelector::new(selector, &Path::default()).matches(node)
}

/// What a pod requires of a node's labels: `spec.nodeSelector` and
/// `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`
/// (upstream's `nodeaffinity.RequiredNodeAffinity`).
#[derive(Debug, Clone, Default)]
pub struct RequiredNodeAffinity {
    label_selector: Option<LabelSelector>,
    node_selector: Option<LazyErrorNodeSelector>,
}

impl RequiredNodeAffinity {
    /// Upstream's `GetRequiredNodeAffinity`.
    pub fn from_pod(pod: &Pod) -> RequiredNodeAffinity {
        let spec = pod.spec.as_ref();
        let label_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .filter(|m| !m.is_empty())
            .map(|m| LabelSelector::from_set(m.iter().map(|(k, v)| (k.as_str(), v.as_str()))));
        let node_selector = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| LazyErrorNodeSelector::new(ns, &Path::default()));
        RequiredNodeAffinity {
            label_selector,
            node_selector,
        }
    }

    /// Whether the node satisfies both; an error reports terms that do not parse when no term
    /// matched (callers that must stay compatible treat it as "no match").
    pub fn matches(&self, node: &Node) -> Result<bool, String> {
        if let Some(selector) = &self.label_selector {
            if !selector.matches(node_labels(node)) {
                return Ok(false);
            }
        }
        match &self.node_selector {
            Some(ns) => ns.matches(node),
            None => Ok(true),
        }
    }
}

/// Weighted preferred terms (upstream's `nodeaffinity.PreferredSchedulingTerms`).
#[derive(Debug, Clone, Default)]
pub struct PreferredSchedulingTerms {
    terms: Vec<(ParsedTerm, i64)>,
}

impl PreferredSchedulingTerms {
    /// Parses the terms, skipping those with weight 0 or an empty preference; fails with every
    /// parse error (fields named under `path`, e.g. `[0].matchExpressions[0].key`).
    pub fn new(
        terms: &[PreferredSchedulingTerm],
        path: &Path,
    ) -> Result<PreferredSchedulingTerms, String> {
        let mut errs = Vec::new();
        let mut parsed = Vec::with_capacity(terms.len());
        for (i, term) in terms.iter().enumerate() {
            if term.weight == 0 || is_empty_term(&term.preference) {
                continue;
            }
            let t = ParsedTerm::new(&term.preference, &path.index(i));
            if t.errors.is_empty() {
                parsed.push((t, i64::from(term.weight)));
            } else {
                errs.extend(t.errors);
            }
        }
        match aggregate_message(&errs) {
            Some(message) => Err(message),
            None => Ok(PreferredSchedulingTerms { terms: parsed }),
        }
    }

    /// The sum of the weights of the terms the node matches.
    pub fn score(&self, node: &Node) -> i64 {
        let labels = node_labels(node);
        let fields = node_fields(node);
        self.terms
            .iter()
            .filter(|(t, _)| t.matches(labels, &fields) == Ok(true))
            .map(|(_, w)| *w)
            .sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Taints and tolerations
// ---------------------------------------------------------------------------------------------

/// Whether one toleration tolerates the taint (upstream's `Toleration.ToleratesTaint`): an
/// empty effect matches every effect, an empty key (with `Exists`) every key; the operator is
/// `Equal` (the default: values must match) or `Exists` (any value). Any other operator
/// tolerates nothing.
pub fn toleration_tolerates_taint(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

/// Whether any of the tolerations tolerates the taint (upstream's `TolerationsTolerateTaint`).
pub fn tolerations_tolerate_taint(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations
        .iter()
        .any(|t| toleration_tolerates_taint(t, taint))
}

/// The first taint that `filter` selects and no toleration tolerates (upstream's
/// `FindMatchingUntoleratedTaint`).
pub fn find_matching_untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|t| !tolerations_tolerate_taint(tolerations, t))
}

/// Selects the taints that keep pods off a node: `NoSchedule` and `NoExecute` (upstream's
/// `DoNotScheduleTaintsFilterFunc`).
pub fn do_not_schedule_taints_filter(taint: &Taint) -> bool {
    taint.effect == TAINT_EFFECT_NO_SCHEDULE || taint.effect == TAINT_EFFECT_NO_EXECUTE
}

/// `spec.tolerations` of a pod (empty when unset).
pub fn pod_tolerations(pod: &Pod) -> &[Toleration] {
    pod.spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

/// `spec.taints` of a node (empty when unset).
pub fn node_taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Scores
// ---------------------------------------------------------------------------------------------

/// Scales the scores to `[0, max]` by the highest one; `reverse` flips them so that the lowest
/// raw score gets `max`. All-zero scores stay 0 (or all become `max` when reversed). Upstream's
/// `helper.DefaultNormalizeScore`.
pub fn default_normalize_score(max: i64, reverse: bool, scores: &mut [NodeScore]) {
    let highest = scores.iter().map(|s| s.score).max().unwrap_or(0).max(0);
    if highest == 0 {
        if reverse {
            for s in scores.iter_mut() {
                s.score = max;
            }
        }
        return;
    }
    for s in scores.iter_mut() {
        let mut score = max * s.score / highest;
        if reverse {
            score = max - score;
        }
        s.score = score;
    }
}

// ---------------------------------------------------------------------------------------------
// Queueing hints
// ---------------------------------------------------------------------------------------------

/// The pod an event is about (None when absent, e.g. the old object of an add); an error when
/// the event carries another kind (upstream's `util.As[*v1.Pod]`).
pub fn pod_of(obj: Option<&EventObject>) -> Result<Option<&Pod>, String> {
    match obj {
        None => Ok(None),
        Some(EventObject::Pod(p)) => Ok(Some(p)),
        Some(other) => Err(format!("expected a Pod, but got {}", kind_of(other))),
    }
}

/// The node an event is about; see [`pod_of`].
pub fn node_of(obj: Option<&EventObject>) -> Result<Option<&Node>, String> {
    match obj {
        None => Ok(None),
        Some(EventObject::Node(n)) => Ok(Some(n)),
        Some(other) => Err(format!("expected a Node, but got {}", kind_of(other))),
    }
}

fn kind_of(obj: &EventObject) -> String {
    match obj {
        EventObject::Pod(_) => "a Pod".into(),
        EventObject::Node(_) => "a Node".into(),
        EventObject::Other(v) => v
            .get("kind")
            .and_then(Value::as_str)
            .map_or_else(|| "an unknown object".into(), |k| format!("a {k}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: Value) -> Node {
        serde_json::from_value(v).expect("node")
    }

    fn selector(v: Value) -> ApiNodeSelector {
        serde_json::from_value(v).expect("selector")
    }

    fn labelled(name: &str, labels: Value) -> Node {
        node(json!({"metadata": {"name": name, "labels": labels}}))
    }

    #[test]
    fn node_selector_operators() {
        let n = labelled("n1", json!({"zone": "a", "gpu": "4", "tier": "web"}));
        let cases = [
            (
                json!({"key": "zone", "operator": "In", "values": ["a", "b"]}),
                true,
            ),
            (
                json!({"key": "zone", "operator": "In", "values": ["b"]}),
                false,
            ),
            (
                json!({"key": "zone", "operator": "NotIn", "values": ["b"]}),
                true,
            ),
            (
                json!({"key": "missing", "operator": "NotIn", "values": ["b"]}),
                true,
            ),
            (json!({"key": "zone", "operator": "Exists"}), true),
            (json!({"key": "missing", "operator": "Exists"}), false),
            (json!({"key": "missing", "operator": "DoesNotExist"}), true),
            (
                json!({"key": "gpu", "operator": "Gt", "values": ["3"]}),
                true,
            ),
            (
                json!({"key": "gpu", "operator": "Gt", "values": ["4"]}),
                false,
            ),
            (
                json!({"key": "gpu", "operator": "Lt", "values": ["5"]}),
                true,
            ),
            (
                json!({"key": "tier", "operator": "Lt", "values": ["5"]}),
                false,
            ),
        ];
        for (expr, want) in cases {
            let ns = selector(json!({"nodeSelectorTerms": [{"matchExpressions": [expr.clone()]}]}));
            let s = NodeSelector::new(&ns, &Path::default()).expect("parses");
            assert_eq!(s.matches(&n), want, "{expr}");
        }
    }

    #[test]
    fn terms_are_ored_and_requirements_anded() {
        let n = labelled("n1", json!({"zone": "a", "tier": "web"}));
        let ns = selector(json!({"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                {"key": "tier", "operator": "In", "values": ["db"]},
            ]},
            {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
        ]}));
        assert_eq!(match_node_selector_terms(&n, &ns), Ok(true));
        let ns = selector(json!({"nodeSelectorTerms": [
            {"matchExpressions": [
                {"key": "zone", "operator": "In", "values": ["a"]},
                {"key": "tier", "operator": "In", "values": ["db"]},
            ]},
        ]}));
        assert_eq!(match_node_selector_terms(&n, &ns), Ok(false));
        // No terms, or only empty ones, match nothing.
        assert_eq!(
            match_node_selector_terms(&n, &selector(json!({"nodeSelectorTerms": []}))),
            Ok(false)
        );
        assert_eq!(
            match_node_selector_terms(&n, &selector(json!({"nodeSelectorTerms": [{}]}))),
            Ok(false)
        );
    }

    #[test]
    fn match_fields_compare_the_node_name() {
        let n = labelled("n1", json!({}));
        let by = |op: &str, v: &str| {
            selector(json!({"nodeSelectorTerms": [{"matchFields": [
                {"key": "metadata.name", "operator": op, "values": [v]}
            ]}]}))
        };
        assert_eq!(match_node_selector_terms(&n, &by("In", "n1")), Ok(true));
        assert_eq!(match_node_selector_terms(&n, &by("In", "n2")), Ok(false));
        assert_eq!(match_node_selector_terms(&n, &by("NotIn", "n2")), Ok(true));
        assert_eq!(match_node_selector_terms(&n, &by("NotIn", "n1")), Ok(false));
        // Labels and fields of one term are ANDed.
        let both = selector(json!({"nodeSelectorTerms": [{
            "matchExpressions": [{"key": "zone", "operator": "Exists"}],
            "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}],
        }]}));
        assert_eq!(match_node_selector_terms(&n, &both), Ok(false));
    }

    #[test]
    fn invalid_requirements_are_reported_with_their_paths() {
        let ns = selector(json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "zone", "operator": "In"},
            {"key": "gpu", "operator": "Gt", "values": ["x"]},
            {"key": "a", "operator": "Foo", "values": ["x"]},
        ], "matchFields": [
            {"key": "metadata.name", "operator": "Exists"},
            {"key": "metadata.name", "operator": "In", "values": ["a", "b"]},
        ]}]}));
        let err = NodeSelector::new(&ns, &Path::new("addedAffinity")).unwrap_err();
        for want in [
            "addedAffinity.nodeSelectorTerms[0].matchExpressions[0].values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty",
            "addedAffinity.nodeSelectorTerms[0].matchExpressions[1].values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, the value must be an integer",
            "addedAffinity.nodeSelectorTerms[0].matchExpressions[2].operator: Unsupported value: \"Foo\"",
            "addedAffinity.nodeSelectorTerms[0].matchFields[0].operator: Unsupported value: \"Exists\": supported values: \"In\", \"NotIn\"",
            "addedAffinity.nodeSelectorTerms[0].matchFields[1].values: Invalid value:",
        ] {
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
        let bad_key = selector(json!({"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "bad key", "operator": "Exists"},
        ]}]}));
        let err = NodeSelector::new(&bad_key, &Path::default()).unwrap_err();
        assert!(
            err.starts_with(
                "nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: \"bad key\""
            ),
            "{err}"
        );
    }

    #[test]
    fn a_lazy_selector_reports_errors_only_without_a_match() {
        let ns = selector(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In"}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]},
        ]}));
        let lazy = LazyErrorNodeSelector::new(&ns, &Path::default());
        assert_eq!(
            lazy.matches(&labelled("n1", json!({"zone": "a"}))),
            Ok(true)
        );
        assert!(lazy.matches(&labelled("n2", json!({"zone": "b"}))).is_err());
    }

    #[test]
    fn required_affinity_combines_node_selector_and_affinity() {
        let pod: Pod = serde_json::from_value(json!({"spec": {
            "containers": [],
            "nodeSelector": {"disk": "ssd"},
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]
            }}},
        }}))
        .expect("pod");
        let r = RequiredNodeAffinity::from_pod(&pod);
        assert_eq!(
            r.matches(&labelled("n", json!({"disk": "ssd", "zone": "a"}))),
            Ok(true)
        );
        assert_eq!(
            r.matches(&labelled("n", json!({"disk": "hdd", "zone": "a"}))),
            Ok(false)
        );
        assert_eq!(
            r.matches(&labelled("n", json!({"disk": "ssd", "zone": "b"}))),
            Ok(false)
        );
        let none: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).expect("pod");
        assert_eq!(
            RequiredNodeAffinity::from_pod(&none).matches(&labelled("n", json!({}))),
            Ok(true)
        );
    }

    #[test]
    fn preferred_terms_sum_matching_weights() {
        let terms: Vec<PreferredSchedulingTerm> = serde_json::from_value(json!([
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}},
            {"weight": 3, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}},
            {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}},
            {"weight": 7, "preference": {}},
        ]))
        .expect("terms");
        let p = PreferredSchedulingTerms::new(&terms, &Path::default()).expect("parses");
        assert_eq!(
            p.score(&labelled("n", json!({"zone": "a", "disk": "x"}))),
            8
        );
        assert_eq!(p.score(&labelled("n", json!({"zone": "b"}))), 0);
        let bad: Vec<PreferredSchedulingTerm> = serde_json::from_value(json!([
            {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["a"]}]}},
        ]))
        .expect("terms");
        let err = PreferredSchedulingTerms::new(&bad, &Path::default()).unwrap_err();
        assert!(
            err.starts_with("[0].matchExpressions[0].values: Invalid value: "),
            "{err}"
        );
        assert!(
            err.ends_with(": values set must be empty for exists and does not exist"),
            "{err}"
        );
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: (!value.is_empty()).then(|| value.to_string()),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn toleration(v: Value) -> Toleration {
        serde_json::from_value(v).expect("toleration")
    }

    #[test]
    fn tolerations_match_taints_as_upstream() {
        let t = taint("k", "v", "NoSchedule");
        let cases = [
            (
                json!({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "k", "value": "v"}), true),
            (json!({"key": "k", "value": "other"}), false),
            (json!({"key": "k", "operator": "Exists"}), true),
            (json!({"operator": "Exists"}), true),
            (json!({"operator": "Exists", "effect": "NoExecute"}), false),
            (json!({"key": "other", "operator": "Exists"}), false),
            (
                json!({"key": "k", "operator": "Exists", "effect": "NoSchedule"}),
                true,
            ),
            (json!({"key": "k", "operator": "Gt", "value": "v"}), false),
        ];
        for (tol, want) in cases {
            assert_eq!(
                toleration_tolerates_taint(&toleration(tol.clone()), &t),
                want,
                "{tol}"
            );
        }
    }

    #[test]
    fn finds_the_first_untolerated_taint_the_filter_selects() {
        let taints = vec![
            taint("soft", "", "PreferNoSchedule"),
            taint("a", "1", "NoSchedule"),
            taint("b", "2", "NoExecute"),
        ];
        let tols = vec![toleration(json!({"key": "a", "operator": "Exists"}))];
        let found = find_matching_untolerated_taint(&taints, &tols, do_not_schedule_taints_filter);
        assert_eq!(found.map(|t| t.key.as_str()), Some("b"));
        let all = vec![toleration(json!({"operator": "Exists"}))];
        assert!(
            find_matching_untolerated_taint(&taints, &all, do_not_schedule_taints_filter).is_none()
        );
    }

    fn scores(v: &[i64]) -> Vec<NodeScore> {
        v.iter()
            .enumerate()
            .map(|(i, s)| NodeScore {
                name: format!("n{i}"),
                score: *s,
            })
            .collect()
    }

    #[test]
    fn default_normalize_scales_and_reverses() {
        let mut s = scores(&[1, 2, 3, 4, 5]);
        default_normalize_score(100, false, &mut s);
        assert_eq!(
            s.iter().map(|s| s.score).collect::<Vec<_>>(),
            [20, 40, 60, 80, 100]
        );
        let mut s = scores(&[1, 2, 3, 4, 5]);
        default_normalize_score(100, true, &mut s);
        assert_eq!(
            s.iter().map(|s| s.score).collect::<Vec<_>>(),
            [80, 60, 40, 20, 0]
        );
        let mut s = scores(&[0, 0]);
        default_normalize_score(100, true, &mut s);
        assert_eq!(s.iter().map(|s| s.score).collect::<Vec<_>>(), [100, 100]);
        let mut s = scores(&[0, 0]);
        default_normalize_score(100, false, &mut s);
        assert_eq!(s.iter().map(|s| s.score).collect::<Vec<_>>(), [0, 0]);
        let mut s = scores(&[1000, 1, 2]);
        default_normalize_score(10, false, &mut s);
        assert_eq!(s.iter().map(|s| s.score).collect::<Vec<_>>(), [10, 0, 0]);
    }
}
