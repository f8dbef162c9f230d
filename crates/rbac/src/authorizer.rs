//! [`Policy`]: upstream's RBAC authorizer and its default rule resolver. Rules reach a user through
//! ClusterRoleBindings (everywhere) and, for a namespaced request, the RoleBindings of that
//! namespace (to a Role there or to a ClusterRole, granted within that namespace only). A binding
//! whose role does not exist grants nothing; denial carries no reason of its own because the
//! apiserver writes upstream's 403 text itself.

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::rule::PolicyRule;

/// Who is asking (upstream's `user.Info`, the parts RBAC looks at).
#[derive(Clone, Copy, Debug)]
pub struct User<'a> {
    pub name: &'a str,
    pub groups: &'a [String],
}

/// What is asked (upstream's `authorizer.Attributes`). `non_resource_path` is `Some` for
/// non-resource requests such as `/healthz`; the resource fields are then ignored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub verb: &'a str,
    pub api_group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub non_resource_path: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for key in path {
        match cur.get(key) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or_default()
}

impl Binding {
    fn from_value(v: &Value) -> Binding {
        let subjects = v
            .get("subjects")
            .and_then(Value::as_array)
            .map(|subjects| {
                subjects
                    .iter()
                    .map(|s| Subject {
                        kind: str_at(s, &["kind"]).to_owned(),
                        name: str_at(s, &["name"]).to_owned(),
                        namespace: str_at(s, &["namespace"]).to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Binding {
            name: str_at(v, &["metadata", "name"]).to_owned(),
            namespace: str_at(v, &["metadata", "namespace"]).to_owned(),
            role_kind: str_at(v, &["roleRef", "kind"]).to_owned(),
            role_name: str_at(v, &["roleRef", "name"]).to_owned(),
            subjects,
        }
    }

    /// The first subject naming `user`, as upstream's `appliesTo`. A ServiceAccount subject
    /// without a namespace means one in the binding's namespace (none for a cluster binding).
    fn subject_for(&self, user: &User) -> Option<&Subject> {
        self.subjects.iter().find(|s| match s.kind.as_str() {
            "User" => s.name == user.name,
            "Group" => user.groups.contains(&s.name),
            "ServiceAccount" => {
                let ns = if s.namespace.is_empty() {
                    self.namespace.as_str()
                } else {
                    s.namespace.as_str()
                };
                !ns.is_empty() && is_service_account(user.name, ns, &s.name)
            }
            _ => false,
        })
    }
}

/// `system:serviceaccount:<namespace>:<name>`, compared without building the string.
fn is_service_account(username: &str, namespace: &str, name: &str) -> bool {
    username
        .strip_prefix("system:serviceaccount:")
        .and_then(|rest| rest.strip_prefix(namespace))
        .and_then(|rest| rest.strip_prefix(':'))
        .is_some_and(|rest| rest == name)
}

/// Go's `%q` for the names in reason texts.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn describe_subject(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == "ServiceAccount" {
        let ns = if s.namespace.is_empty() {
            binding_namespace
        } else {
            &s.namespace
        };
        format!("{} {}", s.kind, quote(&format!("{}/{}", s.name, ns)))
    } else {
        format!("{} {}", s.kind, quote(&s.name))
    }
}

/// Everything RBAC decides from. Build a new one when any role or binding changes; queries
/// are then lookups plus a walk over the user's bindings.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    role_bindings: HashMap<String, Vec<Binding>>,
    cluster_role_bindings: Vec<Binding>,
}

impl Policy {
    /// Takes Role, ClusterRole, RoleBinding and ClusterRoleBinding objects in v1 JSON. Bindings
    /// are consulted in the order given, which decides which one the allow reason names.
    pub fn new(
        roles: Vec<Value>,
        cluster_roles: Vec<Value>,
        role_bindings: Vec<Value>,
        cluster_role_bindings: Vec<Value>,
    ) -> Policy {
        let roles = roles
            .iter()
            .map(|r| {
                let key = (
                    str_at(r, &["metadata", "namespace"]).to_owned(),
                    str_at(r, &["metadata", "name"]).to_owned(),
                );
                (key, PolicyRule::list_from(r))
            })
            .collect();
        let cluster_roles = cluster_roles
            .iter()
            .map(|r| {
                (
                    str_at(r, &["metadata", "name"]).to_owned(),
                    PolicyRule::list_from(r),
                )
            })
            .collect();
        let mut by_namespace: HashMap<String, Vec<Binding>> = HashMap::new();
        for b in role_bindings.iter().map(Binding::from_value) {
            by_namespace.entry(b.namespace.clone()).or_default().push(b);
        }
        Policy {
            roles,
            cluster_roles,
            role_bindings: by_namespace,
            cluster_role_bindings: cluster_role_bindings
                .iter()
                .map(Binding::from_value)
                .collect(),
        }
    }

    /// The rules a binding's roleRef names, looked up in `namespace` for a Role.
    fn role_rules(&self, binding: &Binding, namespace: &str) -> Option<&[PolicyRule]> {
        match binding.role_kind.as_str() {
            "Role" => self
                .roles
                .get(&(namespace.to_owned(), binding.role_name.clone()))
                .map(Vec::as_slice),
            "ClusterRole" => self
                .cluster_roles
                .get(&binding.role_name)
                .map(Vec::as_slice),
            _ => None,
        }
    }

    /// Calls `visit` with every rule that applies to `user` in `namespace` (cluster bindings
    /// first, as upstream) until it returns `false`.
    fn visit_rules<'s>(
        &'s self,
        user: &User,
        namespace: &str,
        mut visit: impl FnMut(&dyn Fn() -> String, &'s PolicyRule) -> bool,
    ) {
        for b in &self.cluster_role_bindings {
            let Some(subject) = b.subject_for(user) else {
                continue;
            };
            let Some(rules) = self.role_rules(b, "") else {
                continue;
            };
            let source = || {
                format!(
                    "ClusterRoleBinding {} of {} {} to {}",
                    quote(&b.name),
                    b.role_kind,
                    quote(&b.role_name),
                    describe_subject(subject, "")
                )
            };
            for rule in rules {
                if !visit(&source, rule) {
                    return;
                }
            }
        }
        if namespace.is_empty() {
            return;
        }
        for b in self.role_bindings.get(namespace).into_iter().flatten() {
            let Some(subject) = b.subject_for(user) else {
                continue;
            };
            let Some(rules) = self.role_rules(b, namespace) else {
                continue;
            };
            let source = || {
                format!(
                    "RoleBinding {} of {} {} to {}",
                    quote(&format!("{}/{}", b.name, b.namespace)),
                    b.role_kind,
                    quote(&b.role_name),
                    describe_subject(subject, &b.namespace)
                )
            };
            for rule in rules {
                if !visit(&source, rule) {
                    return;
                }
            }
        }
    }

    /// Allowed with upstream's reason (`RBAC: allowed by ClusterRoleBinding "x" of ClusterRole
    /// "y" to User "u"`), or not allowed with an empty reason (upstream's NoOpinion).
    pub fn authorize(&self, user: &User, request: &Request) -> (bool, String) {
        let mut reason = None;
        self.visit_rules(user, request.namespace, |source, rule| {
            if rule_allows(rule, request) {
                reason = Some(format!("RBAC: allowed by {}", source()));
                return false;
            }
            true
        });
        match reason {
            Some(r) => (true, r),
            None => (false, String::new()),
        }
    }

    /// SelfSubjectRulesReview's `resourceRules` and `nonResourceRules` for `user` in `namespace`,
    /// in upstream's shapes and order (one entry per role rule, a rule with both halves feeding
    /// both lists).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<Value>, Vec<Value>) {
        let mut resource_rules = Vec::new();
        let mut non_resource_rules = Vec::new();
        self.visit_rules(user, namespace, |_, rule| {
            if !rule.resources.is_empty() {
                let mut r = json!({ "verbs": rule.verbs });
                if let Some(m) = r.as_object_mut() {
                    for (key, list) in [
                        ("apiGroups", &rule.api_groups),
                        ("resources", &rule.resources),
                        ("resourceNames", &rule.resource_names),
                    ] {
                        if !list.is_empty() {
                            m.insert(key.into(), json!(list));
                        }
                    }
                }
                resource_rules.push(r);
            }
            if !rule.non_resource_urls.is_empty() {
                non_resource_rules.push(json!({
                    "verbs": rule.verbs,
                    "nonResourceURLs": rule.non_resource_urls,
                }));
            }
            true
        });
        (resource_rules, non_resource_rules)
    }
}

/// Upstream's `RuleAllows`.
pub fn rule_allows(rule: &PolicyRule, request: &Request) -> bool {
    if let Some(path) = request.non_resource_path {
        return rule.verb_matches(request.verb) && rule.non_resource_url_matches(path);
    }
    let combined = if request.subresource.is_empty() {
        request.resource.to_owned()
    } else {
        format!("{}/{}", request.resource, request.subresource)
    };
    rule.verb_matches(request.verb)
        && rule.api_group_matches(request.api_group)
        && rule.resource_matches(&combined, request.subresource)
        && rule.resource_name_matches(request.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(ns: &str, name: &str, rules: Value) -> Value {
        json!({"kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
    }
    fn cluster_role(name: &str, rules: Value) -> Value {
        json!({"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules})
    }
    fn binding(ns: &str, name: &str, kind: &str, role: &str, subjects: Value) -> Value {
        json!({
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
            "subjects": subjects,
        })
    }
    fn cluster_binding(name: &str, role: &str, subjects: Value) -> Value {
        json!({
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": subjects,
        })
    }
    fn req<'a>(verb: &'a str, resource: &'a str, ns: &'a str) -> Request<'a> {
        Request {
            verb,
            resource,
            namespace: ns,
            ..Request::default()
        }
    }

    fn policy() -> Policy {
        Policy::new(
            vec![
                role(
                    "ns1",
                    "pod-reader",
                    json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]),
                ),
                // Same name in another namespace must not leak into ns1.
                role(
                    "ns2",
                    "secret-reader",
                    json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]),
                ),
            ],
            vec![
                cluster_role(
                    "cm-editor",
                    json!([{"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}]),
                ),
                cluster_role(
                    "node-reader",
                    json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]),
                ),
                cluster_role(
                    "health",
                    json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/healthz/*"]}]),
                ),
            ],
            vec![
                binding(
                    "ns1",
                    "alice-pods",
                    "Role",
                    "pod-reader",
                    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}]),
                ),
                binding(
                    "ns1",
                    "alice-cm",
                    "ClusterRole",
                    "cm-editor",
                    json!([{"kind": "User", "name": "alice"}]),
                ),
                binding(
                    "ns1",
                    "ghost",
                    "Role",
                    "no-such-role",
                    json!([{"kind": "User", "name": "alice"}]),
                ),
                binding(
                    "ns1",
                    "secret-cross",
                    "Role",
                    "secret-reader",
                    json!([{"kind": "User", "name": "alice"}]),
                ),
                binding(
                    "ns1",
                    "sa-default-ns",
                    "Role",
                    "pod-reader",
                    json!([{"kind": "ServiceAccount", "name": "builder"}]),
                ),
                binding(
                    "ns1",
                    "sa-other-ns",
                    "ClusterRole",
                    "cm-editor",
                    json!([{"kind": "ServiceAccount", "name": "deployer", "namespace": "ci"}]),
                ),
                binding(
                    "ns1",
                    "all-sa-in-ci",
                    "ClusterRole",
                    "node-reader",
                    json!([{"kind": "Group", "name": "system:serviceaccounts:ci"}]),
                ),
            ],
            vec![
                cluster_binding(
                    "devs-nodes",
                    "node-reader",
                    json!([{"kind": "Group", "name": "devs"}]),
                ),
                cluster_binding(
                    "missing",
                    "does-not-exist",
                    json!([{"kind": "Group", "name": "devs"}]),
                ),
                cluster_binding(
                    "health",
                    "health",
                    json!([{"kind": "Group", "name": "system:authenticated"}]),
                ),
                cluster_binding(
                    "sa-nodes",
                    "node-reader",
                    json!([{"kind": "ServiceAccount", "name": "x"}]),
                ),
                cluster_binding(
                    "all-sa",
                    "cm-editor",
                    json!([{"kind": "Group", "name": "system:serviceaccounts"}]),
                ),
            ],
        )
    }

    #[test]
    fn authorize_table() {
        let p = policy();
        let none: Vec<String> = vec![];
        let devs = vec!["devs".to_owned(), "system:authenticated".to_owned()];
        let ci_sa = vec![
            "system:serviceaccounts".to_owned(),
            "system:serviceaccounts:ci".to_owned(),
            "system:authenticated".to_owned(),
        ];
        let alice = User {
            name: "alice",
            groups: &none,
        };
        let bob = User {
            name: "bob",
            groups: &devs,
        };
        let builder = User {
            name: "system:serviceaccount:ns1:builder",
            groups: &none,
        };
        let builder_elsewhere = User {
            name: "system:serviceaccount:ns2:builder",
            groups: &none,
        };
        let deployer = User {
            name: "system:serviceaccount:ci:deployer",
            groups: &ci_sa,
        };
        let x_sa = User {
            name: "system:serviceaccount::x",
            groups: &none,
        };

        let cases: Vec<(&str, User, Request, bool)> = vec![
            (
                "role in its namespace",
                alice,
                req("get", "pods", "ns1"),
                true,
            ),
            (
                "role verb not granted",
                alice,
                req("delete", "pods", "ns1"),
                false,
            ),
            (
                "role binding does not reach another namespace",
                alice,
                req("get", "pods", "ns2"),
                false,
            ),
            (
                "role binding does not grant cluster-wide",
                alice,
                req("list", "pods", ""),
                false,
            ),
            (
                "cluster role via role binding in namespace",
                alice,
                req("delete", "configmaps", "ns1"),
                true,
            ),
            (
                "cluster role via role binding not elsewhere",
                alice,
                req("delete", "configmaps", "ns3"),
                false,
            ),
            (
                "role of another namespace with same name is not used",
                alice,
                req("get", "secrets", "ns1"),
                false,
            ),
            (
                "cluster binding everywhere (cluster scope)",
                bob,
                req("get", "nodes", ""),
                true,
            ),
            (
                "cluster binding everywhere (namespaced)",
                bob,
                req("get", "nodes", "anything"),
                true,
            ),
            ("group not bound", alice, req("get", "nodes", ""), false),
            (
                "sa subject without namespace uses binding namespace",
                builder,
                req("get", "pods", "ns1"),
                true,
            ),
            (
                "sa in another namespace is another user",
                builder_elsewhere,
                req("get", "pods", "ns1"),
                false,
            ),
            (
                "sa subject with explicit namespace",
                deployer,
                req("create", "configmaps", "ns1"),
                true,
            ),
            (
                "system:serviceaccounts:<ns> group",
                deployer,
                req("get", "nodes", "ns1"),
                true,
            ),
            (
                "system:serviceaccounts group via cluster binding",
                deployer,
                req("get", "configmaps", "ns9"),
                true,
            ),
            (
                "sa subject in cluster binding needs a namespace",
                x_sa,
                req("get", "nodes", ""),
                false,
            ),
        ];
        for (what, user, request, want) in cases {
            let (allowed, reason) = p.authorize(&user, &request);
            assert_eq!(allowed, want, "{what}");
            if !allowed {
                assert_eq!(reason, "", "{what}: denial reason must be empty");
            }
        }
    }

    #[test]
    fn non_resource_requests() {
        let p = policy();
        let groups = vec!["system:authenticated".to_owned()];
        let u = User {
            name: "u",
            groups: &groups,
        };
        let nr = |verb, path| Request {
            verb,
            non_resource_path: Some(path),
            ..Request::default()
        };
        assert!(p.authorize(&u, &nr("get", "/healthz")).0);
        assert!(p.authorize(&u, &nr("get", "/healthz/etcd")).0);
        assert!(!p.authorize(&u, &nr("post", "/healthz")).0);
        assert!(!p.authorize(&u, &nr("get", "/metrics")).0);
    }

    #[test]
    fn reason_texts() {
        let p = policy();
        let devs = vec!["devs".to_owned()];
        let none: Vec<String> = vec![];
        let (_, reason) = p.authorize(
            &User {
                name: "bob",
                groups: &devs,
            },
            &req("get", "nodes", ""),
        );
        assert_eq!(
            reason,
            r#"RBAC: allowed by ClusterRoleBinding "devs-nodes" of ClusterRole "node-reader" to Group "devs""#
        );
        let (_, reason) = p.authorize(
            &User {
                name: "alice",
                groups: &none,
            },
            &req("get", "pods", "ns1"),
        );
        assert_eq!(
            reason,
            r#"RBAC: allowed by RoleBinding "alice-pods/ns1" of Role "pod-reader" to User "alice""#
        );
        let builder = User {
            name: "system:serviceaccount:ns1:builder",
            groups: &none,
        };
        let (_, reason) = p.authorize(&builder, &req("list", "pods", "ns1"));
        assert_eq!(
            reason,
            r#"RBAC: allowed by RoleBinding "sa-default-ns/ns1" of Role "pod-reader" to ServiceAccount "builder/ns1""#
        );
    }

    #[test]
    fn rules_for_lists_both_kinds() {
        let p = policy();
        let groups = vec!["system:authenticated".to_owned()];
        let alice = User {
            name: "alice",
            groups: &groups,
        };
        let (resource, non_resource) = p.rules_for(&alice, "ns1");
        assert_eq!(
            resource,
            vec![
                json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}),
                json!({"verbs": ["*"], "apiGroups": [""], "resources": ["configmaps"]}),
            ]
        );
        assert_eq!(
            non_resource,
            vec![json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/healthz/*"]})]
        );
        let (resource, _) = p.rules_for(&alice, "ns2");
        assert!(resource.is_empty());
    }

    #[test]
    fn go_quoting() {
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    }

    #[test]
    fn garbage_objects_grant_nothing() {
        let p = Policy::new(
            vec![json!(null), json!([1, 2])],
            vec![
                json!("x"),
                json!({"metadata": {"name": "r"}, "rules": [null, 3, {"verbs": "*"}]}),
            ],
            vec![json!({"roleRef": 5, "subjects": [null]})],
            vec![
                json!({"metadata": {"name": 1}, "roleRef": {"kind": "ClusterRole", "name": "r"}, "subjects": [{"kind": "User", "name": "u"}]}),
            ],
        );
        let none: Vec<String> = vec![];
        assert!(
            !p.authorize(
                &User {
                    name: "u",
                    groups: &none
                },
                &req("get", "pods", "a")
            )
            .0
        );
    }
}
