//! The audit policy (`--audit-policy-file`): parsing, upstream's validation, and rule matching.
//!
//! Matching follows upstream's checker: rules are tried in order and the first one whose every
//! set field matches decides the level; no match means `None`. Omitted stages are the union of the
//! policy's and the matching rule's; a rule's `omitManagedFields`, when set, overrides the policy's.

use std::path::Path;

use serde::Deserialize;

use crate::event::{Level, Stage};
use crate::Error;

/// The attributes of one request that a policy can match on, as the apiserver resolved them.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestAttributes<'a> {
    /// Authenticated user name.
    pub user: &'a str,
    /// Authenticated user's groups.
    pub groups: &'a [String],
    /// Kubernetes verb (`get`, `list`, `watch`, ...) or the lower-cased HTTP method.
    pub verb: &'a str,
    /// API group of the resource; empty for the core group.
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    /// Empty for cluster-scoped resources.
    pub namespace: &'a str,
    pub name: &'a str,
    /// URL path, matched by `nonResourceURLs`.
    pub path: &'a str,
    /// False for non-resource requests such as `/healthz` or `/version`.
    pub resource_request: bool,
}

/// A validated `audit.k8s.io/v1` `Policy`, ready to evaluate requests.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    rules: Vec<PolicyRule>,
    omit_stages: Vec<Stage>,
    omit_managed_fields: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct PolicyRule {
    level: Level,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    non_resource_urls: Vec<String>,
    /// Already unioned with the policy-wide stages, so a match returns it as is.
    omit_stages: Vec<Stage>,
    omit_managed_fields: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupResources {
    #[serde(default, deserialize_with = "null_as_default")]
    group: String,
    #[serde(default, deserialize_with = "null_as_default")]
    resources: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    resource_names: Vec<String>,
}

/// The document as written. Unknown fields are ignored like upstream's non-strict decoder;
/// levels and stages stay strings so validation can name the bad value and its field path.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    api_version: String,
    #[serde(default, deserialize_with = "null_as_default")]
    kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    rules: Vec<RuleDoc>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_stages: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_managed_fields: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleDoc {
    #[serde(default, deserialize_with = "null_as_default")]
    level: String,
    #[serde(default, deserialize_with = "null_as_default")]
    users: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    user_groups: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    verbs: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    resources: Vec<GroupResources>,
    #[serde(default, deserialize_with = "null_as_default")]
    namespaces: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        deserialize_with = "null_as_default"
    )]
    non_resource_urls: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

/// Go decodes an explicit `null` (or a bare `users:` in YAML) into the zero value.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

const API_VERSION: &str = "audit.k8s.io/v1";

impl Policy {
    /// Reads and parses a policy file, naming the file in errors like upstream's loader.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Policy, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadPolicy {
            path: path.display().to_string(),
            source,
        })?;
        Policy::parse(&text)
    }

    /// Parses a YAML (or JSON) `audit.k8s.io/v1` `Policy` and validates it like upstream:
    /// every field error is reported at once, and a policy without rules is refused.
    pub fn parse(text: &str) -> Result<Policy, Error> {
        let doc: PolicyDoc = serde_yaml::from_str(text).map_err(Error::Decode)?;
        if doc.kind.is_empty() {
            return Err(Error::WrongKind(
                "Object 'Kind' is missing in policy".into(),
            ));
        }
        if doc.api_version != API_VERSION || doc.kind != "Policy" {
            return Err(Error::WrongKind(format!(
                "unknown group version field {:?}, Kind={:?} in policy: expected apiVersion {API_VERSION:?}, kind \"Policy\"",
                doc.api_version, doc.kind
            )));
        }

        let mut errs = Vec::new();
        let omit_stages = validate_stages(&doc.omit_stages, "omitStages", &mut errs);
        let mut rules = Vec::with_capacity(doc.rules.len());
        for (i, rule) in doc.rules.into_iter().enumerate() {
            if let Some(rule) = validate_rule(rule, &format!("rules[{i}]"), &omit_stages, &mut errs)
            {
                rules.push(rule);
            }
        }
        if !errs.is_empty() {
            return Err(Error::Invalid(errs));
        }
        if rules.is_empty() {
            return Err(Error::NoRules);
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: doc.omit_managed_fields,
        })
    }

    /// The audit level for a request, the stages to omit, and whether to drop managed fields
    /// from bodies. The first matching rule wins; with none, the level is `None`.
    pub fn level_for(&self, attrs: &RequestAttributes) -> (Level, Vec<Stage>, bool) {
        match self.rules.iter().find(|r| r.matches(attrs)) {
            Some(rule) => (
                rule.level,
                rule.omit_stages.clone(),
                rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            ),
            None => (
                Level::None,
                self.omit_stages.clone(),
                self.omit_managed_fields,
            ),
        }
    }
}

fn validate_rule(
    rule: RuleDoc,
    path: &str,
    policy_stages: &[Stage],
    errs: &mut Vec<String>,
) -> Option<PolicyRule> {
    let level = match (rule.level.as_str(), Level::parse(&rule.level)) {
        (_, Some(level)) => Some(level),
        ("", None) => {
            errs.push(format!("{path}.level: Required value"));
            None
        }
        (other, None) => {
            let supported: Vec<String> = Level::ALL
                .iter()
                .map(|l| format!("{:?}", l.as_str()))
                .collect();
            errs.push(format!(
                "{path}.level: Unsupported value: {other:?}: supported values: {}",
                supported.join(", ")
            ));
            None
        }
    };

    for (i, url) in rule.non_resource_urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        let field = format!("{path}.nonResourceURLs[{i}]");
        if !url.starts_with('/') {
            errs.push(format!(
                "{field}: Invalid value: {url:?}: non-resource URL rules must begin with a '/' character"
            ));
        }
        let body = url.strip_suffix('*').unwrap_or(url);
        if body.contains('*') {
            errs.push(format!(
                "{field}: Invalid value: {url:?}: non-resource URL wildcards '*' must be the final character of the rule"
            ));
        }
    }

    for gr in &rule.resources {
        if !gr.group.is_empty() && !is_dns_subdomain(&gr.group) {
            errs.push(format!(
                "{path}.resources.group: Invalid value: {:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')",
                gr.group
            ));
        }
        if !gr.resource_names.is_empty() && gr.resources.is_empty() {
            errs.push(format!(
                "{path}.resources.resourceNames: Invalid value: {}: using resourceNames requires at least one resource",
                json_list(&gr.resource_names)
            ));
        }
    }

    let rule_stages = validate_stages(&rule.omit_stages, &format!("{path}.omitStages"), errs);

    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        errs.push(format!(
            "{path}.nonResourceURLs: Invalid value: {}: rules cannot apply to both regular resources and non-resource URLs",
            json_list(&rule.non_resource_urls)
        ));
    }

    let mut omit_stages = policy_stages.to_vec();
    for stage in rule_stages {
        if !omit_stages.contains(&stage) {
            omit_stages.push(stage);
        }
    }
    Some(PolicyRule {
        level: level?,
        users: rule.users,
        user_groups: rule.user_groups,
        verbs: rule.verbs,
        resources: rule.resources,
        namespaces: rule.namespaces,
        non_resource_urls: rule.non_resource_urls,
        omit_stages,
        omit_managed_fields: rule.omit_managed_fields,
    })
}

fn validate_stages(stages: &[String], path: &str, errs: &mut Vec<String>) -> Vec<Stage> {
    let mut out = Vec::new();
    for (i, name) in stages.iter().enumerate() {
        match Stage::parse(name) {
            Some(stage) => {
                if !out.contains(&stage) {
                    out.push(stage);
                }
            }
            None => {
                let allowed: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
                errs.push(format!(
                    "{path}[{i}]: Invalid value: {name:?}: allowed stages are {}",
                    allowed.join(",")
                ));
            }
        }
    }
    out
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

/// RFC 1123 subdomain, as required of API group names.
fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            let bytes = label.as_bytes();
            let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
                }
                _ => false,
            }
        })
}

impl PolicyRule {
    fn matches(&self, attrs: &RequestAttributes) -> bool {
        if !self.users.is_empty() && !contains(&self.users, attrs.user) {
            return false;
        }
        if !self.user_groups.is_empty()
            && !attrs.groups.iter().any(|g| contains(&self.user_groups, g))
        {
            return false;
        }
        if !self.verbs.is_empty() && !contains(&self.verbs, attrs.verb) {
            return false;
        }
        // A rule with resources or namespaces is about resource requests only; one with
        // non-resource URLs only about the others; one with neither is a catch-all.
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(attrs);
        }
        if !self.non_resource_urls.is_empty() {
            return !attrs.resource_request
                && self
                    .non_resource_urls
                    .iter()
                    .any(|spec| path_matches(attrs.path, spec));
        }
        true
    }

    fn matches_resource(&self, attrs: &RequestAttributes) -> bool {
        if !attrs.resource_request {
            return false;
        }
        // Cluster-scoped resources have the empty namespace, which a rule can list as "".
        if !self.namespaces.is_empty() && !contains(&self.namespaces, attrs.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = if attrs.subresource.is_empty() {
            attrs.resource.to_owned()
        } else {
            format!("{}/{}", attrs.resource, attrs.subresource)
        };
        self.resources
            .iter()
            .filter(|gr| gr.group == attrs.api_group)
            .any(|gr| {
                if gr.resources.is_empty() {
                    return true;
                }
                if !gr.resource_names.is_empty() && !contains(&gr.resource_names, attrs.name) {
                    return false;
                }
                gr.resources.iter().any(|res| {
                    res == "*"
                        || *res == combined
                        || (!attrs.subresource.is_empty()
                            && res.strip_prefix("*/") == Some(attrs.subresource))
                        || res.strip_suffix("/*") == Some(attrs.resource)
                })
            })
    }
}

fn contains(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

/// `*` matches everything, a trailing `*` matches by prefix, anything else matches exactly.
fn path_matches(path: &str, spec: &str) -> bool {
    if spec == "*" || spec == path {
        return true;
    }
    match spec.strip_suffix('*') {
        Some(_) => path.starts_with(spec.trim_end_matches('*')),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
      - group: ""
        resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:nodes"]
    verbs: ["get"]
    resources:
      - group: ""
        resources: ["nodes"]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: Metadata
    userGroups: ["probers"]
    nonResourceURLs: ["*"]
  - level: Request
    omitStages: ["ResponseStarted", "RequestReceived"]
    omitManagedFields: true
    resources:
      - group: ""
        resources: ["pods/log", "pods/status"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets", "configmaps"]
        resourceNames: ["special"]
  - level: RequestResponse
    namespaces: ["kube-system"]
    resources:
      - group: "apps"
        resources: ["deployments/*"]
      - group: "autoscaling"
        resources: ["*/scale"]
  - level: Metadata
    namespaces: [""]
  - level: RequestResponse
    resources:
      - group: "rbac.authorization.k8s.io"
  - level: Request
    verbs: ["create"]
    resources:
      - group: "batch"
        resources: ["*"]
  - level: Metadata
    userGroups: ["auditors"]
    omitManagedFields: false
"#;

    fn groups(gs: &[&str]) -> Vec<String> {
        gs.iter().map(|g| (*g).to_owned()).collect()
    }

    #[test]
    fn first_matching_rule_wins() {
        let policy = match Policy::parse(POLICY) {
            Ok(p) => p,
            Err(e) => panic!("policy should parse: {e}"),
        };
        let nodes = groups(&["system:nodes", "system:authenticated"]);
        let auditors = groups(&["auditors"]);
        let probers = groups(&["probers"]);
        let none: Vec<String> = Vec::new();
        let res = |user, gs, verb, group, resource, sub, ns, name| RequestAttributes {
            user,
            groups: gs,
            verb,
            api_group: group,
            resource,
            subresource: sub,
            namespace: ns,
            name,
            path: "/apis/...",
            resource_request: true,
        };
        let non_res = |path, gs| RequestAttributes {
            user: "bob",
            groups: gs,
            verb: "get",
            path,
            resource_request: false,
            ..Default::default()
        };
        let rr = &none[..];
        #[rustfmt::skip]
        let cases: Vec<(&str, RequestAttributes, Level)> = vec![
            ("kube-proxy watch services", res("system:kube-proxy", rr, "watch", "", "services", "", "default", ""), Level::None),
            ("kube-proxy list services falls through", res("system:kube-proxy", rr, "list", "", "services", "", "default", ""), Level::None),
            ("node get node", res("system:node:n1", &nodes, "get", "", "nodes", "", "", "n1"), Level::None),
            ("healthz prefix", non_res("/healthz/etcd", &probers), Level::None),
            ("version exact", non_res("/version", &probers), Level::None),
            ("version prefix is not matched without *", non_res("/versions", &probers), Level::Metadata),
            ("non-resource * rule", non_res("/metrics", &probers), Level::Metadata),
            ("pods/log subresource", res("bob", rr, "get", "", "pods", "log", "default", "p"), Level::Request),
            ("pods without subresource is not pods/log", res("bob", rr, "get", "", "pods", "", "default", "p"), Level::None),
            ("secret named special", res("bob", rr, "get", "", "secrets", "", "default", "special"), Level::Metadata),
            ("secret with other name", res("bob", rr, "get", "", "secrets", "", "default", "other"), Level::None),
            ("deployments/* matches a subresource", res("bob", rr, "update", "apps", "deployments", "scale", "kube-system", "d"), Level::RequestResponse),
            ("deployments/* in another namespace", res("bob", rr, "update", "apps", "deployments", "scale", "default", "d"), Level::None),
            ("*/scale matches any scale", res("bob", rr, "patch", "autoscaling", "anything", "scale", "kube-system", "x"), Level::RequestResponse),
            ("*/scale needs a subresource", res("bob", rr, "patch", "autoscaling", "scale", "", "kube-system", "x"), Level::None),
            ("cluster-scoped via empty namespace", res("bob", rr, "get", "", "namespaces", "", "", "x"), Level::Metadata),
            ("group with no resources is all of it", res("bob", rr, "get", "rbac.authorization.k8s.io", "roles", "", "ns", "r"), Level::RequestResponse),
            ("* matches resources and subresources", res("bob", rr, "create", "batch", "jobs", "status", "ns", "j"), Level::Request),
            ("* still needs the right group", res("bob", rr, "create", "apps", "jobs", "", "ns", "j"), Level::None),
            ("user group catch-all for resources", res("carol", &auditors, "delete", "", "pods", "", "ns", "p"), Level::Metadata),
            ("user group catch-all for non-resources", non_res("/metrics", &auditors), Level::Metadata),
            ("resource rule never matches non-resource", non_res("/api", rr), Level::None),
        ];
        for (name, attrs, want) in cases {
            assert_eq!(policy.level_for(&attrs).0, want, "{name}");
        }
    }

    #[test]
    fn stages_and_managed_fields() {
        let policy = match Policy::parse(POLICY) {
            Ok(p) => p,
            Err(e) => panic!("policy should parse: {e}"),
        };
        let attrs = RequestAttributes {
            user: "bob",
            verb: "get",
            resource: "pods",
            subresource: "log",
            namespace: "default",
            resource_request: true,
            ..Default::default()
        };
        assert_eq!(
            policy.level_for(&attrs),
            (
                Level::Request,
                vec![Stage::RequestReceived, Stage::ResponseStarted],
                true
            )
        );
        let unmatched = RequestAttributes {
            user: "bob",
            verb: "get",
            path: "/metrics",
            ..Default::default()
        };
        assert_eq!(
            policy.level_for(&unmatched),
            (Level::None, vec![Stage::RequestReceived], false)
        );

        let global = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n- level: Metadata\n  verbs: [get]\n- level: Metadata\n  omitManagedFields: false\n";
        let policy = match Policy::parse(global) {
            Ok(p) => p,
            Err(e) => panic!("policy should parse: {e}"),
        };
        let get = RequestAttributes {
            verb: "get",
            ..Default::default()
        };
        let list = RequestAttributes {
            verb: "list",
            ..Default::default()
        };
        assert!(policy.level_for(&get).2, "policy default applies");
        assert!(!policy.level_for(&list).2, "rule overrides policy default");
    }

    #[test]
    fn json_policies_and_nulls_are_accepted() {
        let text = r#"{"apiVersion":"audit.k8s.io/v1","kind":"Policy","metadata":{"name":"x"},
            "rules":[{"level":"Metadata","users":null,"resources":[{"group":null,"resources":["pods"]}]}]}"#;
        let policy = match Policy::parse(text) {
            Ok(p) => p,
            Err(e) => panic!("policy should parse: {e}"),
        };
        let attrs = RequestAttributes {
            resource: "pods",
            resource_request: true,
            ..Default::default()
        };
        assert_eq!(policy.level_for(&attrs).0, Level::Metadata);
    }

    #[test]
    fn bad_policies_are_refused() {
        let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
        let cases: Vec<(String, &str)> = vec![
            (format!("{head}rules: []\n"), "loaded illegal policy with 0 rules"),
            (head.to_owned(), "loaded illegal policy with 0 rules"),
            ("kind: Policy\nrules: [{level: None}]\n".into(), "unknown group version"),
            ("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n".into(), "unknown group version"),
            ("apiVersion: audit.k8s.io/v1\nkind: Event\nrules: [{level: None}]\n".into(), "Kind=\"Event\""),
            ("apiVersion: audit.k8s.io/v1\nrules: [{level: None}]\n".into(), "Object 'Kind' is missing"),
            ("rules: [".into(), "failed decoding"),
            (format!("{head}rules: [{{level: None, users: alice}}]\n"), "failed decoding"),
            (format!("{head}rules: [{{}}]\n"), "rules[0].level: Required value"),
            (format!("{head}rules: [{{level: Everything}}]\n"), "rules[0].level: Unsupported value: \"Everything\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\""),
            (format!("{head}rules: [{{level: None, nonResourceURLs: [healthz]}}]\n"), "rules[0].nonResourceURLs[0]: Invalid value: \"healthz\": non-resource URL rules must begin with a '/' character"),
            (format!("{head}rules: [{{level: None, nonResourceURLs: [\"/a*/b\"]}}]\n"), "non-resource URL wildcards '*' must be the final character of the rule"),
            (format!("{head}rules: [{{level: None, nonResourceURLs: [/a], namespaces: [x]}}]\n"), "rules[0].nonResourceURLs: Invalid value: [\"/a\"]: rules cannot apply to both regular resources and non-resource URLs"),
            (format!("{head}rules: [{{level: None, resources: [{{group: rbac.authorization.k8s.io/v1}}]}}]\n"), "rules[0].resources.group: Invalid value: \"rbac.authorization.k8s.io/v1\""),
            (format!("{head}rules: [{{level: None, resources: [{{resourceNames: [a]}}]}}]\n"), "using resourceNames requires at least one resource"),
            (format!("{head}rules: [{{level: None, omitStages: [Done]}}]\n"), "rules[0].omitStages[0]: Invalid value: \"Done\": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"),
            (format!("{head}omitStages: [Never]\nrules: [{{level: None}}]\n"), "omitStages[0]: Invalid value: \"Never\""),
        ];
        for (text, want) in cases {
            match Policy::parse(&text) {
                Ok(_) => panic!("accepted bad policy:\n{text}"),
                Err(e) => assert!(
                    e.to_string().contains(want),
                    "policy:\n{text}\nerror {e:?} does not contain {want:?}"
                ),
            }
        }
    }

    #[test]
    fn all_field_errors_are_reported_together() {
        let text = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Bad\n- {}\n";
        let err = Policy::parse(text).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("[rules[0].level: Unsupported value: \"Bad\": supported values: \"None\", \"Metadata\", \"Request\", \"RequestResponse\", rules[1].level: Required value]")
        );
    }

    #[test]
    fn path_matching() {
        let cases = [
            ("/healthz", "*", true),
            ("/healthz", "/healthz", true),
            ("/healthz/etcd", "/healthz", false),
            ("/healthz/etcd", "/healthz*", true),
            ("/healthz", "/healthz/*", false),
            ("/api/v1", "/api/*", true),
            ("/apis", "/api*", true),
        ];
        for (path, spec, want) in cases {
            assert_eq!(path_matches(path, spec), want, "{path} vs {spec}");
        }
    }

    #[test]
    fn dns_subdomain() {
        for ok in ["apps", "rbac.authorization.k8s.io", "a-b.c1"] {
            assert!(is_dns_subdomain(ok), "{ok}");
        }
        for bad in ["Apps", "a..b", "-a", "a-", "a/b", "a_b", ""] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    #[test]
    fn missing_file_is_named() {
        let err = Policy::from_file("/nonexistent/audit-policy.yaml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("failed to read file path \"/nonexistent/audit-policy.yaml\""),
            "{err}"
        );
    }
}
