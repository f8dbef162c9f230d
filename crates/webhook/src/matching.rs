//! Which webhooks of a configuration apply to a request: upstream's
//! `generic.Webhook.ShouldCallHook` with the namespace and object selector matchers and
//! `predicates/rules.Matcher` (matchPolicy `Exact`; `matchConditions` are not evaluated).

use crate::Request;
use apimachinery::labels::Selector;
use serde_json::{Map, Value};

/// The webhooks of `configuration` (its `webhooks` list) that apply to `request`, in order.
///
/// A webhook whose selector does not parse is kept: upstream fails such a request with an
/// internal error rather than skip a webhook that may be a policy, and API validation keeps
/// such selectors out anyway.
pub fn matching<'c>(configuration: &'c Value, request: &Request) -> Vec<&'c Value> {
    if is_exempt_configuration_resource(request) {
        return Vec::new();
    }
    let Some(webhooks) = configuration.get("webhooks").and_then(Value::as_array) else {
        return Vec::new();
    };
    webhooks
        .iter()
        .filter(|hook| {
            namespace_selector_matches(hook, request)
                && object_selector_matches(hook, request)
                && rules_match(hook, request)
        })
        .collect()
}

/// Webhooks never see the objects that configure admission, so a broken webhook cannot lock
/// the cluster out of fixing it (upstream's `IsExemptAdmissionConfigurationResource`).
fn is_exempt_configuration_resource(request: &Request) -> bool {
    const EXEMPT: [&str; 6] = [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
    ];
    let kind = request.kind.strip_suffix("List").unwrap_or(request.kind);
    request.group == "admissionregistration.k8s.io" && EXEMPT.contains(&kind)
}

fn is_namespace_resource(request: &Request) -> bool {
    request.group.is_empty() && request.version == "v1" && request.resource == "namespaces"
}

/// A selector field of a webhook; absent or `null` defaults to `{}` (everything) as the v1
/// defaulting does.
fn selector(hook: &Value, field: &str) -> Selector {
    match hook.get(field) {
        None | Some(Value::Null) => Selector::everything(),
        Some(sel) => Selector::from_label_selector(sel).unwrap_or_else(|e| {
            tracing::warn!(webhook = ?hook.get("name"), field, error = %e, "unparsable webhook selector; treating as matching");
            Selector::everything()
        }),
    }
}

fn labels_of(object: Option<&Value>) -> Option<&Map<String, Value>> {
    object
        .and_then(|o| o.pointer("/metadata/labels"))
        .and_then(Value::as_object)
}

fn namespace_selector_matches(hook: &Value, request: &Request) -> bool {
    // Upstream keys this on the resource name alone, and never exempts other cluster-scoped
    // objects.
    if (request.cluster_scoped || request.namespace.is_empty()) && request.resource != "namespaces"
    {
        return true;
    }
    let selector = selector(hook, "namespaceSelector");
    if selector.is_empty() {
        return true;
    }
    let empty = Map::new();
    // A namespace being created or updated is judged by its new labels: the namespace cache
    // does not have them yet.
    let labels = if request.resource == "namespaces"
        && request.subresource.is_empty()
        && matches!(request.operation, "CREATE" | "UPDATE")
    {
        labels_of(request.object)
    } else {
        request
            .namespace_labels
            .or_else(|| labels_of(request.old_object).filter(|_| request.resource == "namespaces"))
    };
    selector.matches(labels.unwrap_or(&empty))
}

fn object_selector_matches(hook: &Value, request: &Request) -> bool {
    let selector = selector(hook, "objectSelector");
    if selector.is_empty() {
        return true;
    }
    let matches = |object: Option<&Value>| match object {
        Some(o) if o.is_object() => {
            let empty = Map::new();
            selector.matches(labels_of(Some(o)).unwrap_or(&empty))
        }
        _ => false,
    };
    matches(request.object) || matches(request.old_object)
}

fn rules_match(hook: &Value, request: &Request) -> bool {
    hook.get("rules")
        .and_then(Value::as_array)
        .is_some_and(|rules| rules.iter().any(|rule| rule_matches(rule, request)))
}

fn strings<'r>(rule: &'r Value, field: &str) -> impl Iterator<Item = &'r str> {
    rule.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

fn any_or_equal(rule: &Value, field: &str, want: &str) -> bool {
    strings(rule, field).any(|s| s == "*" || s == want)
}

/// Upstream's `rules.Matcher.Matches`: scope, operation, group, version and resource.
fn rule_matches(rule: &Value, request: &Request) -> bool {
    scope_matches(rule, request)
        && any_or_equal(rule, "operations", request.operation)
        && any_or_equal(rule, "apiGroups", request.group)
        && any_or_equal(rule, "apiVersions", request.version)
        && resource_matches(rule, request)
}

fn scope_matches(rule: &Value, request: &Request) -> bool {
    let no_namespace = request.cluster_scoped || request.namespace.is_empty();
    match rule.get("scope").and_then(Value::as_str) {
        None | Some("*") => true,
        // A Namespace is cluster-scoped even though upstream's attributes carry its name as
        // the namespace.
        Some("Namespaced") => !is_namespace_resource(request) && !no_namespace,
        Some("Cluster") => is_namespace_resource(request) || no_namespace,
        Some(_) => false,
    }
}

/// `pods` matches only the main resource, `pods/status` one subresource, `pods/*` every
/// subresource and the resource itself, `*` every main resource, `*/status` a subresource of
/// anything, `*/*` everything.
fn resource_matches(rule: &Value, request: &Request) -> bool {
    strings(rule, "resources").any(|entry| {
        let (resource, sub) = entry.split_once('/').unwrap_or((entry, ""));
        (resource == "*" || resource == request.resource)
            && (sub == "*" || sub == request.subresource)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod_request<'a>(
        object: Option<&'a Value>,
        ns_labels: Option<&'a Map<String, Value>>,
    ) -> Request<'a> {
        Request {
            operation: "CREATE",
            group: "",
            version: "v1",
            resource: "pods",
            subresource: "",
            kind: "Pod",
            namespace: "default",
            name: "p",
            object,
            old_object: None,
            user: "alice",
            groups: &[],
            dry_run: false,
            namespace_labels: ns_labels,
            cluster_scoped: false,
        }
    }

    fn config(rule: Value) -> Value {
        json!({"webhooks": [{"name": "a.example.com", "rules": [rule]}]})
    }

    #[test]
    fn rules_table() {
        let base = json!({"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]});
        let with = |field: &str, v: Value| {
            let mut r = base.clone();
            if let Some(o) = r.as_object_mut() {
                o.insert(field.to_string(), v);
            }
            r
        };
        // (rule, operation, resource, subresource, want)
        #[rustfmt::skip]
        let cases: Vec<(Value, &str, &str, &str, bool)> = vec![
            (base.clone(), "CREATE", "pods", "", true),
            (base.clone(), "UPDATE", "pods", "", false),
            (base.clone(), "CREATE", "pods", "status", false),
            (base.clone(), "CREATE", "services", "", false),
            (with("operations", json!(["*"])), "DELETE", "pods", "", true),
            (with("resources", json!(["*"])), "CREATE", "services", "", true),
            (with("resources", json!(["*"])), "CREATE", "pods", "status", false),
            (with("resources", json!(["*/*"])), "CREATE", "pods", "status", true),
            (with("resources", json!(["*/*"])), "CREATE", "pods", "", true),
            (with("resources", json!(["pods/status"])), "CREATE", "pods", "status", true),
            (with("resources", json!(["pods/status"])), "CREATE", "pods", "", false),
            (with("resources", json!(["pods/*"])), "CREATE", "pods", "exec", true),
            (with("resources", json!(["*/status"])), "CREATE", "nodes", "status", true),
            (with("resources", json!(["*/status"])), "CREATE", "nodes", "", false),
            (with("apiGroups", json!(["apps"])), "CREATE", "pods", "", false),
            (with("apiGroups", json!(["*"])), "CREATE", "pods", "", true),
            (with("apiVersions", json!(["v2"])), "CREATE", "pods", "", false),
            (with("scope", json!("Namespaced")), "CREATE", "pods", "", true),
            (with("scope", json!("Cluster")), "CREATE", "pods", "", false),
            (with("scope", json!("*")), "CREATE", "pods", "", true),
            (with("resources", json!([])), "CREATE", "pods", "", false),
        ];
        for (rule, op, res, sub, want) in cases {
            let cfg = config(rule.clone());
            let mut req = pod_request(None, None);
            req.operation = op;
            req.resource = res;
            req.subresource = sub;
            assert_eq!(
                !matching(&cfg, &req).is_empty(),
                want,
                "{rule} {op} {res}/{sub}"
            );
        }
    }

    #[test]
    fn scope_of_namespaces_and_cluster_objects() {
        let ns_obj = json!({"metadata": {"name": "team", "labels": {"env": "prod"}}});
        let mut ns = pod_request(Some(&ns_obj), None);
        ns.resource = "namespaces";
        ns.kind = "Namespace";
        ns.namespace = "team"; // upstream sets the namespace of a Namespace request to its name
        ns.cluster_scoped = true;
        let all = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        let scoped = |scope: &str| {
            let mut r = all.clone();
            if let Some(o) = r.as_object_mut() {
                o.insert("scope".into(), json!(scope));
            }
            config(r)
        };
        assert!(!matching(&scoped("Cluster"), &ns).is_empty());
        assert!(matching(&scoped("Namespaced"), &ns).is_empty());
        let mut node = pod_request(None, None);
        node.resource = "nodes";
        node.namespace = "";
        node.cluster_scoped = true;
        assert!(!matching(&scoped("Cluster"), &node).is_empty());
        assert!(matching(&scoped("Namespaced"), &node).is_empty());
    }

    #[test]
    fn selectors_table() {
        let rule = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        let prod = json!({"env": "prod"});
        let prod = prod.as_object();
        let labelled = json!({"metadata": {"labels": {"app": "web"}}});
        let bare = json!({"metadata": {}});
        let ns_sel = json!({"matchLabels": {"env": "prod"}});
        let obj_sel =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]});
        // (namespaceSelector, objectSelector, namespace labels, object, want)
        type Case<'a> = (
            Value,
            Value,
            Option<&'a Map<String, Value>>,
            Option<&'a Value>,
            bool,
        );
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            (Value::Null, Value::Null, None, None, true),
            (json!({}), json!({}), None, None, true),
            (ns_sel.clone(), json!({}), prod, None, true),
            (ns_sel.clone(), json!({}), None, None, false),
            (json!({"matchLabels": {"env": "dev"}}), json!({}), prod, None, false),
            (json!({}), obj_sel.clone(), None, Some(&labelled), true),
            (json!({}), obj_sel.clone(), None, Some(&bare), false),
            (json!({}), obj_sel.clone(), None, None, false),
            (ns_sel.clone(), obj_sel.clone(), prod, Some(&labelled), true),
            (json!({"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}), json!({}), None, None, true),
        ];
        for (ns, obj, ns_labels, object, want) in cases {
            let cfg = json!({"webhooks": [{"name": "a", "rules": [rule], "namespaceSelector": ns, "objectSelector": obj}]});
            let req = pod_request(object, ns_labels);
            assert_eq!(!matching(&cfg, &req).is_empty(), want, "{cfg}");
        }
    }

    #[test]
    fn object_selector_matches_old_object_and_namespace_uses_own_labels() {
        let rule = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        let cfg = json!({"webhooks": [{"name": "a", "rules": [rule], "objectSelector": {"matchLabels": {"app": "web"}}}]});
        let old = json!({"metadata": {"labels": {"app": "web"}}});
        let new = json!({"metadata": {"labels": {"app": "db"}}});
        let mut req = pod_request(Some(&new), None);
        req.operation = "UPDATE";
        req.old_object = Some(&old);
        assert_eq!(matching(&cfg, &req).len(), 1);

        // A namespace being created is selected by its own labels; other cluster-scoped
        // objects skip the namespace selector.
        let cfg = json!({"webhooks": [{"name": "a", "rules": [rule], "namespaceSelector": {"matchLabels": {"env": "prod"}}}]});
        let ns_obj = json!({"metadata": {"name": "team", "labels": {"env": "prod"}}});
        let mut ns = pod_request(Some(&ns_obj), None);
        ns.resource = "namespaces";
        ns.namespace = "";
        ns.cluster_scoped = true;
        assert_eq!(matching(&cfg, &ns).len(), 1);
        let other = json!({"metadata": {"name": "team"}});
        ns.object = Some(&other);
        assert!(matching(&cfg, &ns).is_empty());
        let mut node = pod_request(None, None);
        node.resource = "nodes";
        node.namespace = "";
        node.cluster_scoped = true;
        assert_eq!(matching(&cfg, &node).len(), 1);
    }

    #[test]
    fn order_kept_and_configuration_objects_exempt() {
        let rule = json!({"operations": ["*"], "apiGroups": ["*"], "apiVersions": ["*"], "resources": ["*"]});
        let cfg = json!({"webhooks": [
            {"name": "one", "rules": [rule]},
            {"name": "skip", "rules": []},
            {"name": "two", "rules": [rule]},
        ]});
        let req = pod_request(None, None);
        let names: Vec<_> = matching(&cfg, &req)
            .iter()
            .filter_map(|h| h["name"].as_str())
            .collect();
        assert_eq!(names, ["one", "two"]);
        let mut vwc = req;
        vwc.group = "admissionregistration.k8s.io";
        vwc.kind = "ValidatingWebhookConfiguration";
        vwc.resource = "validatingwebhookconfigurations";
        assert!(matching(&cfg, &vwc).is_empty());
        assert!(matching(&json!({"webhooks": "x"}), &req).is_empty());
        assert!(matching(&json!(null), &req).is_empty());
    }
}
