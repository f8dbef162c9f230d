//! One `PolicyRule`: reading it from JSON, matching it against a request (upstream's
//! `evaluation_helpers.go` and `RuleAllows`), and deciding whether one set of rules covers another
//! (upstream's `validation.Covers`, used when reconciling bootstrap roles).

use serde_json::{json, Map, Value};

/// Matches every verb, API group, resource or non-resource URL.
pub const ALL: &str = "*";

/// A `rbac.authorization.k8s.io/v1` PolicyRule. Missing and empty lists are the same thing, as in
/// upstream's semantic equality.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl PolicyRule {
    /// Reads a rule leniently: entries that are not strings are dropped, since validation already
    /// rejected such objects on write and a bad one must not take authorization down.
    pub fn from_value(v: &Value) -> PolicyRule {
        PolicyRule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object (`rules: null` reads as none).
    pub fn list_from(object: &Value) -> Vec<PolicyRule> {
        object
            .get("rules")
            .and_then(Value::as_array)
            .map(|rules| rules.iter().map(PolicyRule::from_value).collect())
            .unwrap_or_default()
    }

    /// Upstream's JSON: `verbs` always, the other lists only when non-empty.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (key, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                m.insert(key.into(), json!(list));
            }
        }
        Value::Object(m)
    }

    pub fn verb_matches(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == ALL || v == verb)
    }

    pub fn api_group_matches(&self, group: &str) -> bool {
        self.api_groups.iter().any(|g| g == ALL || g == group)
    }

    /// `combined` is `resource` or `resource/subresource`; a `*/subresource` entry matches that
    /// subresource of every resource.
    pub fn resource_matches(&self, combined: &str, subresource: &str) -> bool {
        self.resources.iter().any(|r| {
            r == ALL
                || r == combined
                || (!subresource.is_empty()
                    && r.strip_prefix("*/").is_some_and(|sub| sub == subresource))
        })
    }

    /// An empty `resourceNames` matches everything; otherwise the request must name one of them,
    /// so list, watch, create (which carry no name) never match a rule with names.
    pub fn resource_name_matches(&self, name: &str) -> bool {
        self.resource_names.is_empty() || self.resource_names.iter().any(|n| n == name)
    }

    pub fn non_resource_url_matches(&self, path: &str) -> bool {
        self.non_resource_urls
            .iter()
            .any(|spec| non_resource_url_covers(spec, path))
    }
}

/// `spec` covers `path` when equal, `*`, or a `prefix*` whose prefix starts `path`.
fn non_resource_url_covers(spec: &str, path: &str) -> bool {
    if spec == ALL || spec == path {
        return true;
    }
    match spec.strip_suffix('*') {
        Some(_) => path.starts_with(spec.trim_end_matches('*')),
        None => false,
    }
}

/// Splits a rule into atomic rules (one verb and one group/resource/name, or one verb and one
/// URL), the unit upstream's coverage check and reconciliation work in.
pub fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for group in &rule.api_groups {
        for resource in &rule.resources {
            let names: Vec<Option<&String>> = if rule.resource_names.is_empty() {
                vec![None]
            } else {
                rule.resource_names.iter().map(Some).collect()
            };
            for name in names {
                for verb in &rule.verbs {
                    out.push(PolicyRule {
                        verbs: vec![verb.clone()],
                        api_groups: vec![group.clone()],
                        resources: vec![resource.clone()],
                        resource_names: name.cloned().into_iter().collect(),
                        non_resource_urls: Vec::new(),
                    });
                }
            }
        }
    }
    for url in &rule.non_resource_urls {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                verbs: vec![verb.clone()],
                non_resource_urls: vec![url.clone()],
                ..PolicyRule::default()
            });
        }
    }
    out
}

fn has_all(set: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|w| set.contains(w))
}

fn has(set: &[String], wanted: &str) -> bool {
    set.iter().any(|s| s == wanted)
}

fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, ALL) {
        return true;
    }
    wanted.iter().all(|r| {
        has(owner, r)
            || r.split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// Whether `owner` grants everything the (atomic) `sub` rule grants.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let verbs = has(&owner.verbs, ALL) || has_all(&owner.verbs, &sub.verbs);
    let groups = has(&owner.api_groups, ALL) || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resources_cover(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|path| {
        owner
            .non_resource_urls
            .iter()
            .any(|spec| non_resource_url_covers(spec, path))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// The atomic rules of `wanted` that no rule of `owner` covers; empty when `owner` covers all.
pub fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    wanted
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> PolicyRule {
        PolicyRule::from_value(&v)
    }

    #[test]
    fn matching_table() {
        // (rule, verb, group, resource, subresource, name, allowed)
        let cases: Vec<(Value, &str, &str, &str, &str, &str, bool)> = vec![
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"]}),
                "get",
                "",
                "pods",
                "",
                "",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"]}),
                "list",
                "",
                "pods",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["*"],"apiGroups":[""],"resources":["pods"]}),
                "deletecollection",
                "",
                "pods",
                "",
                "",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["*"],"resources":["pods"]}),
                "get",
                "apps",
                "pods",
                "",
                "",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"]}),
                "get",
                "apps",
                "pods",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["apps"],"resources":["deployments"]}),
                "get",
                "",
                "deployments",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["*"]}),
                "get",
                "",
                "pods",
                "log",
                "",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"]}),
                "get",
                "",
                "pods",
                "log",
                "",
                false,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]}),
                "get",
                "",
                "pods",
                "log",
                "",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods/log"]}),
                "get",
                "",
                "pods",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["update"],"apiGroups":[""],"resources":["pods/status"]}),
                "update",
                "",
                "pods",
                "status",
                "x",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["*"],"resources":["*/scale"]}),
                "get",
                "apps",
                "deployments",
                "scale",
                "d",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["*"],"resources":["*/scale"]}),
                "get",
                "apps",
                "deployments",
                "",
                "d",
                false,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["*"],"resources":["*/scale"]}),
                "get",
                "apps",
                "deployments",
                "status",
                "d",
                false,
            ),
            (
                json!({"verbs":["get"],"apiGroups":["*"],"resources":["*/scale"]}),
                "get",
                "",
                "scale",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["get","update"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["a"]}),
                "get",
                "",
                "configmaps",
                "",
                "a",
                true,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["a"]}),
                "get",
                "",
                "configmaps",
                "",
                "b",
                false,
            ),
            (
                json!({"verbs":["list"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["a"]}),
                "list",
                "",
                "configmaps",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["watch"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["a"]}),
                "watch",
                "",
                "configmaps",
                "",
                "",
                false,
            ),
            (
                json!({"verbs":["create"],"apiGroups":[""],"resources":["configmaps"],"resourceNames":["a"]}),
                "create",
                "",
                "configmaps",
                "",
                "",
                false,
            ),
            // A rule with no groups or resources (a URL rule) never matches a resource request.
            (
                json!({"verbs":["*"],"nonResourceURLs":["*"]}),
                "get",
                "",
                "pods",
                "",
                "",
                false,
            ),
            // Malformed entries are ignored rather than failing.
            (
                json!({"verbs":[1, "get"],"apiGroups":[null, ""],"resources":"pods"}),
                "get",
                "",
                "pods",
                "",
                "",
                false,
            ),
        ];
        for (i, (r, verb, group, resource, sub, name, want)) in cases.into_iter().enumerate() {
            let r = rule(r);
            let combined = if sub.is_empty() {
                resource.to_owned()
            } else {
                format!("{resource}/{sub}")
            };
            let got = r.verb_matches(verb)
                && r.api_group_matches(group)
                && r.resource_matches(&combined, sub)
                && r.resource_name_matches(name);
            assert_eq!(got, want, "case {i}: {r:?}");
        }
    }

    #[test]
    fn non_resource_url_table() {
        let cases = [
            ("*", "/anything", true),
            ("/healthz", "/healthz", true),
            ("/healthz", "/healthz/etcd", false),
            ("/healthz/*", "/healthz/etcd", true),
            ("/healthz/*", "/healthz", false),
            ("/api*", "/apis/apps", true),
            ("/version/", "/version", false),
        ];
        for (spec, path, want) in cases {
            let r = rule(json!({"verbs":["get"],"nonResourceURLs":[spec]}));
            assert_eq!(r.non_resource_url_matches(path), want, "{spec} vs {path}");
        }
    }

    #[test]
    fn to_value_omits_empty_lists_but_keeps_verbs() {
        let r = rule(json!({"nonResourceURLs":["/x"]}));
        assert_eq!(r.to_value(), json!({"verbs":[],"nonResourceURLs":["/x"]}));
    }

    #[test]
    fn breakdown_is_per_verb_group_resource_name() {
        let r = rule(
            json!({"verbs":["get","list"],"apiGroups":["","apps"],"resources":["a"],"resourceNames":["n"]}),
        );
        assert_eq!(breakdown(&r).len(), 4);
        let u = rule(json!({"verbs":["get"],"nonResourceURLs":["/a","/b"]}));
        assert_eq!(breakdown(&u).len(), 2);
    }

    #[test]
    fn coverage_table() {
        let owner = vec![
            rule(json!({"verbs":["get","list"],"apiGroups":[""],"resources":["pods","*/scale"]})),
            rule(
                json!({"verbs":["*"],"apiGroups":["apps"],"resources":["deployments"],"resourceNames":["d"]}),
            ),
            rule(json!({"verbs":["get"],"nonResourceURLs":["/healthz/*"]})),
        ];
        let cases = [
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"]}),
                0,
            ),
            (
                json!({"verbs":["get","watch"],"apiGroups":[""],"resources":["pods"]}),
                1,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["replicationcontrollers/scale"]}),
                0,
            ),
            (
                json!({"verbs":["get"],"apiGroups":[""],"resources":["pods"],"resourceNames":["x"]}),
                0,
            ),
            (
                json!({"verbs":["delete"],"apiGroups":["apps"],"resources":["deployments"],"resourceNames":["d"]}),
                0,
            ),
            // Unnamed access is not covered by a named grant.
            (
                json!({"verbs":["delete"],"apiGroups":["apps"],"resources":["deployments"]}),
                1,
            ),
            (
                json!({"verbs":["get"],"nonResourceURLs":["/healthz/etcd","/metrics"]}),
                1,
            ),
        ];
        for (wanted, missing) in cases {
            let w = vec![rule(wanted.clone())];
            assert_eq!(uncovered(&owner, &w).len(), missing, "{wanted}");
        }
    }
}
