//! Malformed scheduling constraints in, upstream's exact field errors out; valid ones of every
//! operator pass.

use super::*;
use serde_json::json;

const QUALIFIED_NAME_REGEX_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const DNS_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const REQ: &str = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const PREF: &str = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution";
const POD_REQ: &str = "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution";
const ANTI_PREF: &str =
    "spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution";
const SPREAD: &str = "spec.topologySpreadConstraints";

fn errors(spec: &Value, old: Option<&Value>) -> Vec<String> {
    let mut errs = Errs::new();
    pod_scheduling(
        &mut errs,
        spec.as_object(),
        old.and_then(Value::as_object),
        &Path::new("spec"),
    );
    errs.iter().map(ToString::to_string).collect()
}

/// A required node affinity with one term holding `expr` as its only match expression.
fn required_node(expr: Value) -> Value {
    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [expr]}]}}}})
}

fn required_node_field(req: Value) -> Value {
    json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [req]}]}}}})
}

fn preferred_node(term: Value) -> Value {
    json!({"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}})
}

/// A required pod affinity with `term` as its only term.
fn pod_affinity_term(term: Value) -> Value {
    json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}})
}

fn selector_term(expr: Value) -> Value {
    pod_affinity_term(json!({"topologyKey": "zone",
        "labelSelector": {"matchExpressions": [expr]}}))
}

fn spread(constraints: Value) -> Value {
    json!({ "topologySpreadConstraints": constraints })
}

#[test]
fn malformed_constraints_are_refused_as_upstream_does() {
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        (
            "node affinity: unknown operator",
            required_node(json!({"key": "zone", "operator": "Foo", "values": ["a"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"
            )],
        ),
        (
            "node affinity: In without values",
            required_node(json!({"key": "zone", "operator": "In"})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )],
        ),
        (
            "node affinity: NotIn with an empty list",
            required_node(json!({"key": "zone", "operator": "NotIn", "values": []})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )],
        ),
        (
            "node affinity: Exists with values",
            required_node(json!({"key": "zone", "operator": "Exists", "values": ["a"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )],
        ),
        (
            "node affinity: DoesNotExist with values",
            required_node(json!({"key": "zone", "operator": "DoesNotExist", "values": ["a"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )],
        ),
        (
            "node affinity: Gt with two values",
            required_node(json!({"key": "cores", "operator": "Gt", "values": ["1", "2"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"
            )],
        ),
        (
            "node affinity: Lt without values",
            required_node(json!({"key": "cores", "operator": "Lt"})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"
            )],
        ),
        (
            "node affinity: key is not a qualified name",
            required_node(json!({"key": "a b", "operator": "Exists"})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: \"a b\": {QUALIFIED_NAME_REGEX_MSG}"
            )],
        ),
        (
            "node affinity: empty key",
            required_node(json!({"operator": "Exists"})),
            vec![
                format!("{REQ}.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: \"\": name part must be non-empty"),
                format!("{REQ}.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: \"\": {QUALIFIED_NAME_REGEX_MSG}"),
            ],
        ),
        (
            "node affinity: required value is not a label value",
            required_node(json!({"key": "zone", "operator": "In", "values": ["ok", "a b"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchExpressions[0].values[1]: Invalid value: \"a b\": {LABEL_VALUE_MSG}"
            )],
        ),
        (
            "node affinity: operator and key errors together, operator first",
            required_node(json!({"key": "-x", "operator": "Foo"})),
            vec![
                format!("{REQ}.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"),
                format!("{REQ}.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: \"-x\": {QUALIFIED_NAME_REGEX_MSG}"),
            ],
        ),
        (
            "node affinity: no terms",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
            vec![format!(
                "{REQ}.nodeSelectorTerms: Required value: must have at least one node selector term"
            )],
        ),
        (
            "node affinity: required selector without nodeSelectorTerms",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}}),
            vec![format!(
                "{REQ}.nodeSelectorTerms: Required value: must have at least one node selector term"
            )],
        ),
        (
            "node affinity: errors in a later term carry its index",
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "Exists"}]},
                    {"matchExpressions": [{"key": "zone", "operator": "Exists"},
                                          {"key": "zone", "operator": "In"}]}]}}}}),
            vec![format!(
                "{REQ}.nodeSelectorTerms[1].matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )],
        ),
        (
            "matchFields: key other than metadata.name",
            required_node_field(json!({"key": "metadata.namespace", "operator": "In", "values": ["a"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchFields[0].key: Invalid value: \"metadata.namespace\": not a valid field selector key"
            )],
        ),
        (
            "matchFields: two values",
            required_node_field(json!({"key": "metadata.name", "operator": "In", "values": ["a", "b"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"
            )],
        ),
        (
            "matchFields: Exists is not a field selector operator",
            required_node_field(json!({"key": "metadata.name", "operator": "Exists"})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchFields[0].operator: Invalid value: \"Exists\": not a valid selector operator"
            )],
        ),
        (
            "matchFields: value is not a node name",
            required_node_field(json!({"key": "metadata.name", "operator": "NotIn", "values": ["Node_1"]})),
            vec![format!(
                "{REQ}.nodeSelectorTerms[0].matchFields[0].values[0]: Invalid value: \"Node_1\": {DNS_SUBDOMAIN_MSG}"
            )],
        ),
        (
            "preferred node affinity: weight 0",
            preferred_node(json!({"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Exists"}]}})),
            vec![format!("{PREF}[0].weight: Invalid value: 0: must be in the range 1-100")],
        ),
        (
            "preferred node affinity: weight 101",
            preferred_node(json!({"weight": 101, "preference": {}})),
            vec![format!("{PREF}[0].weight: Invalid value: 101: must be in the range 1-100")],
        ),
        (
            "preferred node affinity: weight missing is Go's zero",
            preferred_node(json!({"preference": {}})),
            vec![format!("{PREF}[0].weight: Invalid value: 0: must be in the range 1-100")],
        ),
        (
            "preferred node affinity: unknown operator",
            preferred_node(json!({"weight": 1, "preference": {"matchExpressions": [{"key": "zone", "operator": "In"}]}})),
            vec![format!(
                "{PREF}[0].preference.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )],
        ),
        (
            "pod affinity: empty topologyKey",
            pod_affinity_term(json!({"labelSelector": {"matchLabels": {"app": "web"}}})),
            vec![
                format!("{POD_REQ}[0].topologyKey: Required value: can not be empty"),
                format!("{POD_REQ}[0].topologyKey: Invalid value: \"\": name part must be non-empty"),
                format!("{POD_REQ}[0].topologyKey: Invalid value: \"\": {QUALIFIED_NAME_REGEX_MSG}"),
            ],
        ),
        (
            "pod affinity: topologyKey is not a qualified name",
            pod_affinity_term(json!({"topologyKey": "zone/"})),
            vec![format!(
                "{POD_REQ}[0].topologyKey: Invalid value: \"zone/\": name part must be non-empty"
            ), format!(
                "{POD_REQ}[0].topologyKey: Invalid value: \"zone/\": {QUALIFIED_NAME_REGEX_MSG}"
            )],
        ),
        (
            "pod affinity: Gt is not a label selector operator",
            selector_term(json!({"key": "tier", "operator": "Gt", "values": ["1"]})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchExpressions[0].operator: Invalid value: \"Gt\": not a valid selector operator"
            )],
        ),
        (
            "pod affinity: In without values",
            selector_term(json!({"key": "tier", "operator": "In"})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
            )],
        ),
        (
            "pod affinity: Exists with values",
            selector_term(json!({"key": "tier", "operator": "Exists", "values": ["a"]})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"
            )],
        ),
        (
            "pod affinity: selector value is not a label value",
            selector_term(json!({"key": "tier", "operator": "NotIn", "values": ["front end"]})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchExpressions[0].values[0]: Invalid value: \"front end\": {LABEL_VALUE_MSG}"
            )],
        ),
        (
            "pod affinity: selector key is not a qualified name",
            selector_term(json!({"key": "a b", "operator": "Exists"})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchExpressions[0].key: Invalid value: \"a b\": {QUALIFIED_NAME_REGEX_MSG}"
            )],
        ),
        (
            "pod affinity: matchLabels key is not a qualified name",
            pod_affinity_term(json!({"topologyKey": "zone", "labelSelector": {"matchLabels": {"a b": "x"}}})),
            vec![format!(
                "{POD_REQ}[0].labelSelector.matchLabels: Invalid value: \"a b\": {QUALIFIED_NAME_REGEX_MSG}"
            )],
        ),
        (
            "pod affinity: namespaceSelector with an unknown operator",
            pod_affinity_term(json!({"topologyKey": "zone",
                "namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "Foo"}]}})),
            vec![format!(
                "{POD_REQ}[0].namespaceSelector.matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"
            )],
        ),
        (
            "pod affinity: namespace is not a DNS label (reported at `namespace`, as upstream)",
            pod_affinity_term(json!({"topologyKey": "zone", "namespaces": ["ok", "Bad_NS"]})),
            vec![format!("{POD_REQ}[0].namespace: Invalid value: \"Bad_NS\": {DNS_LABEL_MSG}")],
        ),
        (
            "pod affinity: matchLabelKeys without labelSelector",
            pod_affinity_term(json!({"topologyKey": "zone", "matchLabelKeys": ["pod-template-hash"]})),
            vec![format!(
                "{POD_REQ}[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"
            )],
        ),
        (
            "pod affinity: mismatchLabelKeys without labelSelector",
            pod_affinity_term(json!({"topologyKey": "zone", "mismatchLabelKeys": ["tenant"]})),
            vec![format!(
                "{POD_REQ}[0].mismatchLabelKeys: Forbidden: must not be specified when labelSelector is not set"
            )],
        ),
        (
            "pod affinity: matchLabelKeys entry is not a qualified name",
            pod_affinity_term(json!({"topologyKey": "zone", "labelSelector": {}, "matchLabelKeys": ["a b"]})),
            vec![format!(
                "{POD_REQ}[0].matchLabelKeys[0]: Invalid value: \"a b\": {QUALIFIED_NAME_REGEX_MSG}"
            )],
        ),
        (
            "pod affinity: a key in both matchLabelKeys and mismatchLabelKeys",
            pod_affinity_term(json!({"topologyKey": "zone", "labelSelector": {},
                "matchLabelKeys": ["tenant"], "mismatchLabelKeys": ["tenant"]})),
            vec![format!(
                "{POD_REQ}[0].matchLabelKeys[0]: Invalid value: \"tenant\": exists in both matchLabelKeys and mismatchLabelKeys"
            )],
        ),
        (
            "pod affinity: a matchLabelKeys key selected twice (path as upstream's)",
            pod_affinity_term(json!({"topologyKey": "zone",
                "labelSelector": {"matchLabels": {"app": "web"},
                                  "matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
                "matchLabelKeys": ["app"]})),
            vec![format!(
                "{POD_REQ}[0][0]: Invalid value: \"app\": exists in both matchLabelKeys and labelSelector"
            )],
        ),
        (
            "pod anti-affinity: preferred weight and term",
            json!({"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 0, "podAffinityTerm": {"topologyKey": "zone",
                    "labelSelector": {"matchExpressions": [{"key": "app", "operator": "in", "values": ["web"]}]}}}]}}}),
            vec![
                format!("{ANTI_PREF}[0].weight: Invalid value: 0: must be in the range 1-100"),
                format!("{ANTI_PREF}[0].podAffinityTerm.labelSelector.matchExpressions[0].operator: Invalid value: \"in\": not a valid selector operator"),
            ],
        ),
        (
            "pod anti-affinity: required term without topologyKey",
            json!({"affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{}]}}}),
            vec![
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty".to_string(),
                "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: \"\": name part must be non-empty".to_string(),
                format!("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: \"\": {QUALIFIED_NAME_REGEX_MSG}"),
            ],
        ),
        (
            "topology spread: maxSkew 0",
            spread(json!([{"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}])),
            vec![format!("{SPREAD}[0].maxSkew: Invalid value: 0: must be greater than zero")],
        ),
        (
            "topology spread: empty topologyKey",
            spread(json!([{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}])),
            vec![format!("{SPREAD}[0].topologyKey: Required value: can not be empty")],
        ),
        (
            "topology spread: unknown whenUnsatisfiable",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "Foo"}])),
            vec![format!(
                "{SPREAD}[0].whenUnsatisfiable: Unsupported value: \"Foo\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\""
            )],
        ),
        (
            "topology spread: missing whenUnsatisfiable",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone"}])),
            vec![format!(
                "{SPREAD}[0].whenUnsatisfiable: Unsupported value: \"\": supported values: \"DoNotSchedule\", \"ScheduleAnyway\""
            )],
        ),
        (
            "topology spread: repeated {topologyKey, whenUnsatisfiable}",
            spread(json!([
                {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"},
                {"maxSkew": 2, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}])),
            vec![format!(
                "{SPREAD}[0].{{topologyKey, whenUnsatisfiable}}: Duplicate value: \"{{zone, DoNotSchedule}}\""
            )],
        ),
        (
            "topology spread: minDomains 0 with ScheduleAnyway",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway", "minDomains": 0}])),
            vec![
                format!("{SPREAD}[0].minDomains: Invalid value: 0: must be greater than zero"),
                format!("{SPREAD}[0].minDomains: Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"),
            ],
        ),
        (
            "topology spread: unknown node inclusion policies",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                           "nodeAffinityPolicy": "Foo", "nodeTaintsPolicy": "honor"}])),
            vec![
                format!("{SPREAD}[0].nodeAffinityPolicy: Unsupported value: \"Foo\": supported values: \"Honor\", \"Ignore\""),
                format!("{SPREAD}[0].nodeTaintsPolicy: Unsupported value: \"honor\": supported values: \"Honor\", \"Ignore\""),
            ],
        ),
        (
            "topology spread: matchLabelKeys without labelSelector",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                           "matchLabelKeys": ["pod-template-hash"]}])),
            vec![format!(
                "{SPREAD}[0].matchLabelKeys: Forbidden: must not be specified when labelSelector is not set"
            )],
        ),
        (
            "topology spread: matchLabelKeys key already in the selector",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                           "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["app"]}])),
            vec![format!(
                "{SPREAD}[0].matchLabelKeys[0]: Invalid value: \"app\": exists in both matchLabelKeys and labelSelector"
            )],
        ),
        (
            "topology spread: selector value is not a label value",
            spread(json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                           "labelSelector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["-web"]}]}}])),
            vec![format!(
                "{SPREAD}[0].labelSelector.matchExpressions[0].values[0]: Invalid value: \"-web\": {LABEL_VALUE_MSG}"
            )],
        ),
        (
            "scheduling gates: invalid and repeated names",
            json!({"schedulingGates": [{"name": "example.com/gate"}, {"name": "bad gate"}, {"name": "example.com/gate"}]}),
            vec![
                format!("spec.schedulingGates[1]: Invalid value: \"bad gate\": {QUALIFIED_NAME_REGEX_MSG}"),
                "spec.schedulingGates[2]: Duplicate value: \"example.com/gate\"".to_string(),
            ],
        ),
    ];
    for (name, spec, want) in cases {
        assert_eq!(errors(&spec, None), want, "{name}");
    }
}

#[test]
fn the_reported_operator_error_reads_as_upstreams() {
    let spec = required_node(json!({"key": "zone", "operator": "Foo", "values": ["a"]}));
    assert_eq!(
        errors(&spec, None),
        vec!["spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator"]
    );
}

#[test]
fn valid_constraints_of_every_operator_pass() {
    let spec = json!({
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a", "us-east-1b"]},
                        {"key": "node.kubernetes.io/instance-type", "operator": "NotIn", "values": ["t3.micro"]},
                        {"key": "example.com/gpu", "operator": "Exists"},
                        {"key": "example.com/spot", "operator": "DoesNotExist", "values": []},
                        {"key": "example.com/cores", "operator": "Gt", "values": ["4"]},
                        {"key": "example.com/cores", "operator": "Lt", "values": ["64"]}]},
                    {"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["node-1"]},
                        {"key": "metadata.name", "operator": "NotIn", "values": ["node-2.example.com"]}]}]},
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 1, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
                    // Preferences may hold values that are not label values, as upstream allows.
                    {"weight": 100, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["not a label value"]}]}},
                    {"weight": 50, "preference": {}}]
            },
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname",
                     "labelSelector": {"matchLabels": {"app": "cache"},
                                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]},
                                                            {"key": "canary", "operator": "DoesNotExist"}]},
                     "namespaces": ["default", "kube-system"],
                     "matchLabelKeys": ["pod-template-hash"],
                     "mismatchLabelKeys": ["tenant"]}],
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 10, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone",
                        "namespaceSelector": {},
                        "labelSelector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["batch"]},
                                                               {"key": "team", "operator": "Exists"}]}}}]
            },
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "web"}}}],
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                        "namespaceSelector": {"matchLabels": {"team": "a"}}}}]
            }
        },
        "schedulingGates": [{"name": "example.com/quota"}, {"name": "ready"}],
        "topologySpreadConstraints": [
            {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
             "minDomains": 3, "nodeAffinityPolicy": "Honor", "nodeTaintsPolicy": "Ignore",
             "labelSelector": {"matchLabels": {"app": "web"}}, "matchLabelKeys": ["pod-template-hash"]},
            {"maxSkew": 2, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"},
            {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule"}]
    });
    assert_eq!(errors(&spec, None), Vec::<String>::new());
    assert!(errors(&json!({}), None).is_empty());
    assert!(errors(
        &json!({"affinity": null, "topologySpreadConstraints": null}),
        None
    )
    .is_empty());
    assert!(errors(
        &json!({"affinity": {"nodeAffinity": {}, "podAffinity": {}}}),
        None
    )
    .is_empty());
}

/// A Deployment as users write them: spread over zones, preferring distinct hosts.
fn realistic_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web", "tier": "frontend"}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.27",
                                    "ports": [{"containerPort": 80}]}],
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 100, "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchExpressions": [
                                {"key": "app", "operator": "In", "values": ["web"]}]}}}]}},
                    "topologySpreadConstraints": [
                        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                         "whenUnsatisfiable": "ScheduleAnyway",
                         "labelSelector": {"matchLabels": {"app": "web"}},
                         "matchLabelKeys": ["pod-template-hash"]}],
                    "tolerations": [{"key": "example.com/dedicated", "operator": "Equal",
                                     "value": "web", "effect": "NoSchedule"}]
                }
            }
        }
    })
}

#[test]
fn a_realistic_deployment_template_is_valid() {
    let mut d = realistic_deployment();
    crate::default("apps", "v1", "Deployment", &mut d);
    let template_spec = d["spec"]["template"]["spec"].as_object();
    let mut errs = Errs::new();
    pod_scheduling(
        &mut errs,
        template_spec,
        None,
        &Path::new("spec.template.spec"),
    );
    assert!(errs.is_empty(), "{errs:?}");
    let all = super::super::validate("apps", "v1", "Deployment", &d, None);
    assert!(all.is_empty(), "{all:?}");
}

#[test]
fn a_template_is_checked_at_its_own_path() {
    let mut d = realistic_deployment();
    d["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        ["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] = json!(0);
    d["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["maxSkew"] = json!(0);
    let mut errs = Errs::new();
    pod_scheduling(
        &mut errs,
        d["spec"]["template"]["spec"].as_object(),
        None,
        &Path::new("spec").child("template").child("spec"),
    );
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        vec![
            "spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100",
            "spec.template.spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
        ]
    );
}

#[test]
fn updates_keep_what_the_stored_spec_already_had() {
    // Each spec breaks one check that upstream tightened after such objects could be stored.
    let cases = [
        (
            selector_term(json!({"key": "tier", "operator": "In", "values": ["a b"]})),
            Relaxations {
                selector_values: true,
                ..Relaxations::default()
            },
        ),
        (
            spread(
                json!([{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
                           "labelSelector": {"matchExpressions": [{"key": "app", "operator": "Foo"}]}}]),
            ),
            Relaxations {
                spread_selector: true,
                ..Relaxations::default()
            },
        ),
        (
            required_node(json!({"key": "zone", "operator": "In", "values": ["a b"]})),
            Relaxations {
                required_node_values: true,
                ..Relaxations::default()
            },
        ),
    ];
    for (spec, relax) in cases {
        assert_eq!(Relaxations::from_old(spec.as_object()), relax, "{spec}");
        assert_eq!(errors(&spec, None).len(), 1, "{spec}");
        assert!(errors(&spec, Some(&spec)).is_empty(), "{spec}");
    }
    // A valid old spec relaxes nothing.
    let valid = realistic_deployment()["spec"]["template"]["spec"].clone();
    assert_eq!(
        Relaxations::from_old(valid.as_object()),
        Relaxations::default()
    );
    // Relaxed label values do not excuse other errors.
    let old = selector_term(json!({"key": "tier", "operator": "In", "values": ["a b"]}));
    let new = selector_term(json!({"key": "tier", "operator": "In", "values": []}));
    assert_eq!(
        errors(&new, Some(&old)),
        vec![format!(
            "{POD_REQ}[0].labelSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"
        )]
    );
}

#[test]
fn wrong_json_types_read_as_go_zero_values_without_panicking() {
    let specs = [
        json!({"affinity": "x"}),
        json!({"affinity": {"nodeAffinity": []}}),
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [7]}}}}),
        json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": "x"}}}),
        json!({"topologySpreadConstraints": [null, {"labelSelector": 3}]}),
        json!({"schedulingGates": [1, {"name": 2}]}),
    ];
    for spec in specs {
        // Only the absence of a panic matters; what Go would report depends on its decoder.
        let _ = errors(&spec, Some(&spec));
    }
}

/// Through the kind dispatch: every kind whose upstream validation checks its pod template
/// (StatefulSet's does not) refuses a bad operator at the template's own path.
#[test]
fn every_kind_with_a_pod_spec_refuses_a_bad_operator() {
    let affinity = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "Foo", "values": ["a"]}]}]}}});
    let pod_spec = json!({"containers": [{"name": "c", "image": "busybox"}], "affinity": affinity});
    let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": pod_spec});
    let sel = json!({"matchLabels": {"app": "x"}});
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        ("", "Pod", json!({"spec": pod_spec}), "spec"),
        (
            "",
            "PodTemplate",
            json!({"template": template}),
            "template.spec",
        ),
        (
            "",
            "ReplicationController",
            json!({"spec": {"selector": {"app": "x"}, "template": template}}),
            "spec.template.spec",
        ),
        (
            "apps",
            "Deployment",
            json!({"spec": {"selector": sel, "template": template}}),
            "spec.template.spec",
        ),
        (
            "apps",
            "ReplicaSet",
            json!({"spec": {"selector": sel, "template": template}}),
            "spec.template.spec",
        ),
        (
            "apps",
            "DaemonSet",
            json!({"spec": {"selector": sel, "template": template}}),
            "spec.template.spec",
        ),
        (
            "batch",
            "Job",
            json!({"spec": {"template": template}}),
            "spec.template.spec",
        ),
        (
            "batch",
            "CronJob",
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template}}}}),
            "spec.jobTemplate.spec.template.spec",
        ),
    ];
    for (group, kind, mut obj, prefix) in cases {
        crate::default(group, "v1", kind, &mut obj);
        let errs: Vec<String> = super::super::validate(group, "v1", kind, &obj, None)
            .iter()
            .map(ToString::to_string)
            .collect();
        let want = format!("{prefix}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: \"Foo\": not a valid selector operator");
        assert!(errs.contains(&want), "{kind}: {errs:#?}");
    }
}

/// A pod stored with a selector value upstream now refuses can still have its image updated.
#[test]
fn a_pod_update_is_judged_against_the_stored_pod() {
    let mut pod = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}],
        "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "zone",
            "labelSelector": {"matchExpressions": [{"key": "a", "operator": "In", "values": ["a b"]}]}}]}}}});
    crate::default("", "v1", "Pod", &mut pod);
    assert_eq!(super::super::validate("", "v1", "Pod", &pod, None).len(), 1);
    let mut new = pod.clone();
    new["spec"]["containers"][0]["image"] = json!("busybox:2");
    let update = super::super::validate("", "v1", "Pod", &new, Some(&pod));
    assert!(update.is_empty(), "{update:?}");
}
