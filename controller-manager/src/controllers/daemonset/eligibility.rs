//! Which nodes a DaemonSet's pod belongs on (upstream's `NodeShouldRunDaemonPod` with its
//! `predicates`), and the pod each node gets: the template with the daemon tolerations upstream
//! adds to every daemon pod (`AddOrUpdateDaemonPodTolerations`) and a required node affinity that
//! pins it to its node for the scheduler (`ReplaceDaemonSetPodNodeNameNodeAffinity`).
//!
//! Node matching covers `nodeSelector`, required node affinity (`matchExpressions` with In,
//! NotIn, Exists, DoesNotExist, Gt, Lt and `matchFields` on `metadata.name`), `spec.nodeName` of
//! the template, and NoSchedule/NoExecute taints against the pod's tolerations. Resource fit and
//! host ports are left to the scheduler, as upstream has done since daemon pods are scheduled by
//! it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
    PodSpec, PodTemplateSpec, Taint, Toleration,
};

use crate::controllers::nodelifecycle::tolerates;

/// The field daemon pods are pinned by (`metav1.ObjectNameField`).
pub const NODE_NAME_FIELD: &str = "metadata.name";

pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// Whether a node should run the daemon pod (upstream's pair of booleans).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFit {
    /// A pod should be created here if none exists.
    pub should_run: bool,
    /// A pod already here may stay (it tolerates every NoExecute taint).
    pub should_continue_running: bool,
}

impl NodeFit {
    const NO: NodeFit = NodeFit {
        should_run: false,
        should_continue_running: false,
    };
    const YES: NodeFit = NodeFit {
        should_run: true,
        should_continue_running: true,
    };
}

fn exists_toleration(key: &str, effect: &str) -> Toleration {
    Toleration {
        key: Some(key.to_string()),
        operator: Some("Exists".to_string()),
        effect: Some(effect.to_string()),
        ..Toleration::default()
    }
}

/// upstream `AddOrUpdateTolerationInPodSpec`: a toleration with the same key, operator, value
/// and effect is replaced (it may carry tolerationSeconds that would evict daemon pods from a
/// not-ready node), otherwise appended.
fn add_or_update_toleration(spec: &mut PodSpec, toleration: Toleration) {
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    let same = |t: &Toleration| {
        t.key == toleration.key
            && t.operator.as_deref().unwrap_or("Equal")
                == toleration.operator.as_deref().unwrap_or("Equal")
            && t.value.as_deref().unwrap_or("") == toleration.value.as_deref().unwrap_or("")
            && t.effect == toleration.effect
    };
    match list.iter_mut().find(|t| same(t)) {
        Some(existing) => *existing = toleration,
        None => list.push(toleration),
    }
}

/// upstream `AddOrUpdateDaemonPodTolerations`: daemon pods survive not-ready and unreachable
/// nodes forever and ignore node pressure and cordoning; host-network pods also ignore a
/// missing pod network.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    for key in [TAINT_NOT_READY, TAINT_UNREACHABLE] {
        add_or_update_toleration(spec, exists_toleration(key, "NoExecute"));
    }
    for key in [
        TAINT_DISK_PRESSURE,
        TAINT_MEMORY_PRESSURE,
        TAINT_PID_PRESSURE,
        TAINT_UNSCHEDULABLE,
    ] {
        add_or_update_toleration(spec, exists_toleration(key, "NoSchedule"));
    }
    if spec.host_network == Some(true) {
        add_or_update_toleration(
            spec,
            exists_toleration(TAINT_NETWORK_UNAVAILABLE, "NoSchedule"),
        );
    }
}

/// upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes one
/// term `metadata.name In [node]`. Other required terms are dropped; the controller only places
/// a pod on a node they already match.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: NODE_NAME_FIELD.to_string(),
                operator: "In".to_string(),
                values: Some(vec![node.to_string()]),
            }]),
            match_expressions: None,
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// upstream `GetTargetNodeName`: `spec.nodeName` when bound, else the node the affinity pins the
/// pod to; `None` for a pod that names no single node.
pub fn target_node(pod: &Pod) -> Option<&str> {
    let spec = pod.spec.as_ref()?;
    if let Some(name) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(name);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    let requirement = terms
        .iter()
        .flat_map(|t| t.match_fields.iter().flatten())
        .find(|r| r.key == NODE_NAME_FIELD && r.operator == "In")?;
    match requirement.values.as_deref() {
        Some([one]) => Some(one.as_str()),
        _ => None,
    }
}

/// The tolerations the daemon pod will carry: the template's plus the daemon ones.
fn daemon_tolerations(template: &PodTemplateSpec) -> Vec<Toleration> {
    let mut spec = template.spec.clone().unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    spec.tolerations.unwrap_or_default()
}

/// The first of `taints` with an effect `relevant` accepts that no toleration tolerates
/// (upstream `FindMatchingUntoleratedTaint`).
pub fn untolerated_taint<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    relevant: impl Fn(&str) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| relevant(&t.effect))
        .find(|taint| !tolerations.iter().any(|tol| tolerates(tol, taint)))
}

fn requirement_matches_labels(
    r: &NodeSelectorRequirement,
    labels: &BTreeMap<String, String>,
) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let value = labels.get(&r.key);
    let compare = |want_greater: bool| -> bool {
        // Gt/Lt take exactly one integer; anything else is an invalid term that matches nothing.
        let ([bound], Some(value)) = (values, value) else {
            return false;
        };
        match (value.parse::<i64>(), bound.parse::<i64>()) {
            (Ok(v), Ok(b)) => {
                if want_greater {
                    v > b
                } else {
                    v < b
                }
            }
            _ => false,
        }
    };
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.contains(v)),
        "NotIn" => !value.is_some_and(|v| values.contains(v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" => compare(true),
        "Lt" => compare(false),
        _ => false,
    }
}

fn requirement_matches_fields(r: &NodeSelectorRequirement, node_name: &str) -> bool {
    // metadata.name is the only node field selectors may use.
    if r.key != NODE_NAME_FIELD {
        return false;
    }
    let values = r.values.as_deref().unwrap_or(&[]);
    match r.operator.as_str() {
        "In" => values.iter().any(|v| v == node_name),
        "NotIn" => !values.iter().any(|v| v == node_name),
        _ => false,
    }
}

/// A term matches when all its requirements do; a term without any matches nothing.
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let expressions = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if expressions.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or("");
    expressions
        .iter()
        .all(|r| requirement_matches_labels(r, labels))
        && fields.iter().all(|r| requirement_matches_fields(r, name))
}

/// upstream `GetRequiredNodeAffinity(pod).Match(node)`: the nodeSelector labels, and any one of
/// the required affinity terms.
pub fn matches_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        None => true,
        Some(selector) => selector
            .node_selector_terms
            .iter()
            .any(|t| term_matches(t, node)),
    }
}

/// upstream `NodeShouldRunDaemonPod` for the DaemonSet's `template`.
pub fn node_should_run(template: &PodTemplateSpec, node: &Node) -> NodeFit {
    let Some(node_name) = node.metadata.name.as_deref() else {
        return NodeFit::NO;
    };
    let empty = PodSpec::default();
    let spec = template.spec.as_ref().unwrap_or(&empty);
    if let Some(pinned) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        if pinned != node_name {
            return NodeFit::NO;
        }
    }
    if !matches_node_affinity(spec, node) {
        return NodeFit::NO;
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = daemon_tolerations(template);
    let blocking = untolerated_taint(taints, &tolerations, |e| {
        e == "NoSchedule" || e == "NoExecute"
    });
    if blocking.is_none() {
        return NodeFit::YES;
    }
    // A NoSchedule taint keeps new pods away; only a NoExecute one evicts running pods.
    NodeFit {
        should_run: false,
        should_continue_running: untolerated_taint(taints, &tolerations, |e| e == "NoExecute")
            .is_none(),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: Some(
                    taints
                        .iter()
                        .map(|(key, effect)| Taint {
                            key: key.to_string(),
                            effect: effect.to_string(),
                            ..Taint::default()
                        })
                        .collect(),
                ),
                ..NodeSpec::default()
            }),
            status: None,
        }
    }

    fn requirement(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.to_string(),
            operator: op.to_string(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    fn template(edit: impl FnOnce(&mut PodSpec)) -> PodTemplateSpec {
        let mut spec = PodSpec::default();
        edit(&mut spec);
        PodTemplateSpec {
            metadata: None,
            spec: Some(spec),
        }
    }

    fn affinity(terms: Vec<NodeSelectorTerm>) -> Option<Affinity> {
        Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        })
    }

    fn expressions(reqs: Vec<NodeSelectorRequirement>) -> NodeSelectorTerm {
        NodeSelectorTerm {
            match_expressions: Some(reqs),
            match_fields: None,
        }
    }

    const RUN: (bool, bool) = (true, true);
    const STAY: (bool, bool) = (false, true);
    const NEVER: (bool, bool) = (false, false);

    #[test]
    fn node_eligibility_table() {
        let plain = template(|_| {});
        let tolerates_dedicated = template(|s| {
            s.tolerations = Some(vec![Toleration {
                key: Some("dedicated".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }])
        });
        let selects_ssd = template(|s| {
            s.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        });
        let affinity_zone = template(|s| {
            s.affinity = affinity(vec![
                expressions(vec![requirement("zone", "In", &["a", "b"])]),
                expressions(vec![requirement("gpus", "Gt", &["2"])]),
            ]);
        });
        let pinned = template(|s| s.node_name = Some("n2".into()));
        let host_network = template(|s| s.host_network = Some(true));
        let cases: Vec<(&str, &PodTemplateSpec, Node, (bool, bool))> = vec![
            ("plain node", &plain, node("n1", &[], &[]), RUN),
            (
                "untolerated NoSchedule keeps new pods off, running ones stay",
                &plain,
                node("n1", &[], &[("dedicated", "NoSchedule")]),
                STAY,
            ),
            (
                "untolerated NoExecute evicts",
                &plain,
                node("n1", &[], &[("dedicated", "NoExecute")]),
                NEVER,
            ),
            (
                "PreferNoSchedule is ignored",
                &plain,
                node("n1", &[], &[("dedicated", "PreferNoSchedule")]),
                RUN,
            ),
            (
                "tolerated taint",
                &tolerates_dedicated,
                node("n1", &[], &[("dedicated", "NoExecute")]),
                RUN,
            ),
            (
                "daemon tolerations: not-ready NoExecute",
                &plain,
                node("n1", &[], &[(TAINT_NOT_READY, "NoExecute")]),
                RUN,
            ),
            (
                "daemon tolerations: unreachable NoExecute",
                &plain,
                node("n1", &[], &[(TAINT_UNREACHABLE, "NoExecute")]),
                RUN,
            ),
            (
                "daemon tolerations: cordoned and under pressure",
                &plain,
                node(
                    "n1",
                    &[],
                    &[
                        (TAINT_UNSCHEDULABLE, "NoSchedule"),
                        (TAINT_DISK_PRESSURE, "NoSchedule"),
                        (TAINT_MEMORY_PRESSURE, "NoSchedule"),
                        (TAINT_PID_PRESSURE, "NoSchedule"),
                    ],
                ),
                RUN,
            ),
            (
                "network-unavailable only tolerated with hostNetwork",
                &plain,
                node("n1", &[], &[(TAINT_NETWORK_UNAVAILABLE, "NoSchedule")]),
                STAY,
            ),
            (
                "hostNetwork tolerates network-unavailable",
                &host_network,
                node("n1", &[], &[(TAINT_NETWORK_UNAVAILABLE, "NoSchedule")]),
                RUN,
            ),
            (
                "not-ready NoSchedule is not a daemon toleration",
                &plain,
                node("n1", &[], &[(TAINT_NOT_READY, "NoSchedule")]),
                STAY,
            ),
            (
                "nodeSelector matches",
                &selects_ssd,
                node("n1", &[("disk", "ssd")], &[]),
                RUN,
            ),
            (
                "nodeSelector misses",
                &selects_ssd,
                node("n1", &[("disk", "hdd")], &[]),
                NEVER,
            ),
            (
                "affinity first term",
                &affinity_zone,
                node("n1", &[("zone", "b")], &[]),
                RUN,
            ),
            (
                "affinity second term (Gt)",
                &affinity_zone,
                node("n1", &[("gpus", "4")], &[]),
                RUN,
            ),
            (
                "affinity no term",
                &affinity_zone,
                node("n1", &[("zone", "c"), ("gpus", "2")], &[]),
                NEVER,
            ),
            (
                "template nodeName other",
                &pinned,
                node("n1", &[], &[]),
                NEVER,
            ),
            ("template nodeName same", &pinned, node("n2", &[], &[]), RUN),
        ];
        for (what, template, node, want) in cases {
            let fit = node_should_run(template, &node);
            assert_eq!(
                (fit.should_run, fit.should_continue_running),
                want,
                "{what}"
            );
        }
    }

    #[test]
    fn node_selector_requirements() {
        let labels: BTreeMap<String, String> =
            [("a".to_string(), "1".to_string())].into_iter().collect();
        let cases = [
            (requirement("a", "In", &["1", "2"]), true),
            (requirement("a", "In", &["2"]), false),
            (requirement("a", "NotIn", &["2"]), true),
            (requirement("b", "NotIn", &["2"]), true),
            (requirement("a", "Exists", &[]), true),
            (requirement("a", "DoesNotExist", &[]), false),
            (requirement("b", "DoesNotExist", &[]), true),
            (requirement("a", "Gt", &["0"]), true),
            (requirement("a", "Lt", &["1"]), false),
            (requirement("a", "Gt", &["x"]), false),
            (requirement("a", "Bogus", &["1"]), false),
        ];
        for (r, want) in cases {
            assert_eq!(requirement_matches_labels(&r, &labels), want, "{r:?}");
        }
        assert!(requirement_matches_fields(
            &requirement(NODE_NAME_FIELD, "In", &["n1"]),
            "n1"
        ));
        assert!(!requirement_matches_fields(
            &requirement("metadata.uid", "In", &["n1"]),
            "n1"
        ));
        assert!(
            !term_matches(&NodeSelectorTerm::default(), &node("n1", &[], &[])),
            "an empty term matches nothing"
        );
    }

    #[test]
    fn pinning_replaces_required_terms_and_keeps_the_rest() {
        let mut given = affinity(vec![expressions(vec![requirement("zone", "In", &["a"])])]);
        if let Some(a) = given.as_mut() {
            a.pod_anti_affinity = Some(Default::default());
        }
        let pinned = pin_to_node(given, "n7");
        assert!(pinned.pod_anti_affinity.is_some());
        let pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pinned.clone()),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod), Some("n7"));
        let terms = pinned
            .node_affinity
            .and_then(|a| a.required_during_scheduling_ignored_during_execution)
            .map(|s| s.node_selector_terms)
            .unwrap_or_default();
        assert_eq!(terms.len(), 1);
        assert_eq!(terms[0].match_expressions, None);
        assert!(pin_to_node(None, "n1").node_affinity.is_some());
    }

    #[test]
    fn target_node_prefers_binding() {
        let mut pod = Pod {
            spec: Some(PodSpec {
                affinity: Some(pin_to_node(None, "n1")),
                node_name: Some("n2".into()),
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        assert_eq!(target_node(&pod), Some("n2"));
        if let Some(spec) = pod.spec.as_mut() {
            spec.node_name = None;
            spec.affinity = None;
        }
        assert_eq!(target_node(&pod), None);
    }

    #[test]
    fn daemon_tolerations_replace_same_toleration_with_seconds() {
        let mut spec = PodSpec {
            tolerations: Some(vec![Toleration {
                key: Some(TAINT_NOT_READY.into()),
                operator: Some("Exists".into()),
                effect: Some("NoExecute".into()),
                toleration_seconds: Some(300),
                ..Toleration::default()
            }]),
            ..PodSpec::default()
        };
        add_daemon_tolerations(&mut spec);
        let tolerations = spec.tolerations.unwrap_or_default();
        assert_eq!(tolerations.len(), 6, "{tolerations:?}");
        assert!(tolerations.iter().all(|t| t.toleration_seconds.is_none()));
        add_daemon_tolerations(&mut PodSpec::default());
    }
}
