//! What a user may do on the secure port: upstream's delegating authorizer
//! (`DelegatingAuthorizationOptions.toAuthorizer`), a union asked in order:
//!
//! 1. members of an always-allowed group (`system:masters`) may do anything;
//! 2. an always-allowed path (`--authorization-always-allow-paths`, default `/healthz`, `/readyz`,
//!    `/livez`; a trailing `*` matches a prefix) is open to everyone, anonymous included;
//! 3. everything else is asked of the delegate (a SubjectAccessReview to the apiserver), when
//!    there is one; without one nothing else is allowed.
//!
//! The first authorizer with an opinion decides; when none has one the request is refused (403),
//! unless one of them failed, which answers 500 as upstream's `WithAuthorization`.
//!
//! The daemons serve no API resources, so every request is a non-resource request: its verb is
//! the lower-cased HTTP method (`get`, `post`, `head`, ...), as upstream's `RequestInfoFactory`
//! makes it for paths outside `/api` and `/apis`.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::authn::UserInfo;
use crate::AuthError;

/// A non-resource request as authorizers see it (upstream's `authorizer.Attributes` with
/// `IsResourceRequest() == false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub path: String,
}

impl Attributes {
    /// The attributes of `method` on `path` by `user`.
    pub fn new(user: UserInfo, method: &http::Method, path: &str) -> Attributes {
        Attributes {
            user,
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_string(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    NoOpinion,
}

/// An authorizer's answer and why (the reason is shown to a refused client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub reason: String,
}

impl Verdict {
    pub fn allow() -> Verdict {
        Verdict {
            decision: Decision::Allow,
            reason: String::new(),
        }
    }

    pub fn no_opinion() -> Verdict {
        Verdict {
            decision: Decision::NoOpinion,
            reason: String::new(),
        }
    }
}

/// Decides requests (upstream's `authorizer.Authorizer`), e.g. by SubjectAccessReview.
#[async_trait::async_trait]
pub trait Authorizer: Send + Sync {
    /// `Err` when no decision could be had (the apiserver unreachable): the request answers 500
    /// unless another authorizer allows it.
    async fn authorize(&self, attributes: &Attributes) -> Result<Verdict, AuthError>;
}

/// `--authorization-always-allow-paths`: exact paths, or prefixes written with a trailing `*`;
/// the leading `/` is optional on both sides (upstream's `path.NewAuthorizer`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathAllowList {
    exact: BTreeSet<String>,
    prefixes: Vec<String>,
}

impl PathAllowList {
    /// Refuses a `*` anywhere but at the end, as upstream does at start-up.
    pub fn new<S: AsRef<str>>(paths: &[S]) -> Result<PathAllowList, AuthError> {
        let mut list = PathAllowList::default();
        for path in paths {
            let path = path.as_ref();
            let trimmed = path.strip_prefix('/').unwrap_or(path);
            match trimmed.strip_suffix('*') {
                _ if trimmed.is_empty() => {
                    list.exact.insert(String::new());
                }
                Some(prefix) if !prefix.contains('*') => list.prefixes.push(prefix.to_string()),
                None if !trimmed.contains('*') => {
                    list.exact.insert(trimmed.to_string());
                }
                _ => {
                    return Err(AuthError::Config(format!(
                        "only trailing * allowed in {trimmed:?}"
                    )))
                }
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    pub fn allows(&self, path: &str) -> bool {
        let path = path.strip_prefix('/').unwrap_or(path);
        self.exact.contains(path) || self.prefixes.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The secure port's authorizer union.
pub struct Authorization {
    always_allow_groups: Vec<String>,
    always_allow_paths: PathAllowList,
    delegate: Option<Arc<dyn Authorizer>>,
}

/// How a request fared, for the filter to answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Allowed,
    /// 403 with the reason (empty when no authorizer gave one).
    Forbidden(String),
    /// 500: no authorizer allowed and one failed.
    Failed(String),
}

impl Authorization {
    pub fn new(
        always_allow_groups: Vec<String>,
        always_allow_paths: PathAllowList,
        delegate: Option<Arc<dyn Authorizer>>,
    ) -> Authorization {
        Authorization {
            always_allow_groups,
            always_allow_paths,
            delegate,
        }
    }

    pub async fn authorize(&self, attributes: &Attributes) -> Outcome {
        if attributes
            .user
            .groups
            .iter()
            .any(|g| self.always_allow_groups.contains(g))
        {
            return Outcome::Allowed;
        }
        if self.always_allow_paths.allows(&attributes.path) {
            return Outcome::Allowed;
        }
        let Some(delegate) = &self.delegate else {
            return Outcome::Forbidden(String::new());
        };
        match delegate.authorize(attributes).await {
            Ok(Verdict {
                decision: Decision::Allow,
                ..
            }) => Outcome::Allowed,
            Ok(verdict) => Outcome::Forbidden(verdict.reason),
            Err(err) => Outcome::Failed(err.to_string()),
        }
    }
}

/// Upstream's `forbiddenMessage` for a non-resource request, with its reason appended.
pub fn forbidden_message(attributes: &Attributes, reason: &str) -> String {
    let message = sanitize(&format!(
        "User {:?} cannot {} path {:?}",
        attributes.user.name, attributes.verb, attributes.path
    ));
    if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    }
}

/// Upstream escapes what could read as HTML in error messages.
fn sanitize(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn always_allowed_paths_match_as_upstream() {
        let list = PathAllowList::new(&["/healthz", "readyz", "/livez/*", "/debug*"])
            .unwrap_or_else(|e| panic!("{e}"));
        let cases: &[(&str, bool)] = &[
            ("/healthz", true),
            ("healthz", true),
            ("/healthz/", false),
            ("/healthz/etcd", false),
            ("/readyz", true),
            ("/livez", false),
            ("/livez/", true),
            ("/livez/ping", true),
            ("/debug", true),
            ("/debugging/pprof", true),
            ("/metrics", false),
            ("/", false),
        ];
        for (path, allowed) in cases {
            assert_eq!(list.allows(path), *allowed, "{path}");
        }
        let root = PathAllowList::new(&["/"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(root.allows("/"));
        assert!(!root.allows("/metrics"));
        let everything = PathAllowList::new(&["*"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(everything.allows("/metrics"));
        assert!(PathAllowList::new::<&str>(&[])
            .map(|l| l.is_empty())
            .unwrap_or(false));
    }

    #[test]
    fn a_star_inside_a_path_is_refused() {
        let err = PathAllowList::new(&["/healthz/*/x"]);
        assert!(
            matches!(err, Err(AuthError::Config(ref m)) if m == r#"only trailing * allowed in "healthz/*/x""#),
            "{err:?}"
        );
        assert!(PathAllowList::new(&["**"]).is_err());
    }

    #[test]
    fn verbs_are_lower_cased_methods() {
        let user = UserInfo::anonymous();
        for (method, verb) in [
            (http::Method::GET, "get"),
            (http::Method::POST, "post"),
            (http::Method::HEAD, "head"),
            (http::Method::DELETE, "delete"),
            (http::Method::PUT, "put"),
            (http::Method::PATCH, "patch"),
            (http::Method::OPTIONS, "options"),
        ] {
            let attributes = Attributes::new(user.clone(), &method, "/metrics");
            assert_eq!(attributes.verb, verb);
            assert_eq!(attributes.path, "/metrics");
        }
    }

    /// A delegate that answers from a script and records the questions.
    struct Scripted {
        answer: Result<Verdict, String>,
        asked: Mutex<Vec<Attributes>>,
    }

    #[async_trait::async_trait]
    impl Authorizer for Scripted {
        async fn authorize(&self, attributes: &Attributes) -> Result<Verdict, AuthError> {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(attributes.clone());
            self.answer.clone().map_err(AuthError::Unavailable)
        }
    }

    fn scripted(answer: Result<Verdict, String>) -> Arc<Scripted> {
        Arc::new(Scripted {
            answer,
            asked: Mutex::new(Vec::new()),
        })
    }

    fn union(delegate: Option<Arc<Scripted>>) -> Authorization {
        Authorization::new(
            vec!["system:masters".into()],
            PathAllowList::new(&["/healthz", "/readyz", "/livez"])
                .unwrap_or_else(|e| panic!("{e}")),
            delegate.map(|d| d as Arc<dyn Authorizer>),
        )
    }

    fn request(user: &str, groups: &[&str], path: &str) -> Attributes {
        Attributes::new(
            UserInfo {
                name: user.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
                ..UserInfo::default()
            },
            &http::Method::GET,
            path,
        )
    }

    #[tokio::test]
    async fn groups_then_paths_then_the_delegate() {
        let delegate = scripted(Ok(Verdict {
            decision: Decision::NoOpinion,
            reason: "no RBAC policy matched".into(),
        }));
        let authz = union(Some(delegate.clone()));
        assert_eq!(
            authz
                .authorize(&request("root", &["system:masters"], "/metrics"))
                .await,
            Outcome::Allowed
        );
        assert_eq!(
            authz
                .authorize(&request(
                    "system:anonymous",
                    &["system:unauthenticated"],
                    "/healthz"
                ))
                .await,
            Outcome::Allowed
        );
        assert!(
            delegate
                .asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty(),
            "no review needed"
        );
        assert_eq!(
            authz
                .authorize(&request("tina", &["testers"], "/metrics"))
                .await,
            Outcome::Forbidden("no RBAC policy matched".into())
        );
        let asked = delegate
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        assert_eq!(asked, vec![request("tina", &["testers"], "/metrics")]);
    }

    #[tokio::test]
    async fn the_delegate_allows_denies_or_fails() {
        let allow = union(Some(scripted(Ok(Verdict::allow()))));
        assert_eq!(
            allow.authorize(&request("tina", &[], "/metrics")).await,
            Outcome::Allowed
        );
        let deny = union(Some(scripted(Ok(Verdict {
            decision: Decision::Deny,
            reason: "denied by policy".into(),
        }))));
        assert_eq!(
            deny.authorize(&request("tina", &[], "/metrics")).await,
            Outcome::Forbidden("denied by policy".into())
        );
        let down = union(Some(scripted(Err("connection refused".into()))));
        assert_eq!(
            down.authorize(&request("tina", &[], "/metrics")).await,
            Outcome::Failed("connection refused".into())
        );
        // Always-allowed paths do not depend on the apiserver being up.
        assert_eq!(
            down.authorize(&request("tina", &[], "/livez")).await,
            Outcome::Allowed
        );
        // Without a delegate (no --authorization-kubeconfig) all else is forbidden.
        let none = union(None);
        assert_eq!(
            none.authorize(&request("tina", &[], "/metrics")).await,
            Outcome::Forbidden(String::new())
        );
        assert_eq!(
            none.authorize(&request("tina", &[], "/readyz")).await,
            Outcome::Allowed
        );
    }

    #[test]
    fn forbidden_messages_name_user_verb_and_path() {
        let attributes = request("system:anonymous", &[], "/metrics");
        assert_eq!(
            forbidden_message(&attributes, ""),
            r#"User "system:anonymous" cannot get path "/metrics""#
        );
        assert_eq!(
            forbidden_message(&attributes, "no RBAC policy matched"),
            r#"User "system:anonymous" cannot get path "/metrics": no RBAC policy matched"#
        );
        let odd = request("<b>&", &[], "/x");
        assert_eq!(
            forbidden_message(&odd, ""),
            r#"User "&lt;b&gt;&amp;" cannot get path "/x""#
        );
    }
}
