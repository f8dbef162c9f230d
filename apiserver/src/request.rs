//! Turns a request's method and path into what it asks for (upstream's `RequestInfo`): which
//! group, version, resource, namespace, name and subresource, and which verb. Authorization and
//! routing both read this one value.

use http::Method;

/// What a request addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`, `/version`, `/healthz`, ...: not a resource.
    NonResource(String),
    /// `/api/v1` or `/apis/<group>/<version>`: a group-version's resource list.
    GroupVersion {
        group: String,
        version: String,
    },
    /// `/apis/<group>`: a group's versions.
    Group {
        group: String,
    },
    Resource(ResourceRequest),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    pub verb: &'static str,
    pub group: String,
    pub version: String,
    pub resource: String,
    /// Empty for cluster-scoped resources and for lists across all namespaces.
    pub namespace: String,
    pub name: String,
    pub subresource: String,
    /// More path segments than any route has (e.g. `pods/x/proxy/some/path`).
    pub rest: Vec<String>,
}

/// Parses `path` (without the query) for `method`; `watch` is true when the query asks for a watch.
pub fn parse(method: &Method, path: &str, watch: bool) -> Target {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, mut rest) = match segments.as_slice() {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        ["apis", group] => {
            return Target::Group {
                group: group.to_string(),
            }
        }
        _ => return Target::NonResource(path.to_string()),
    };
    if rest.is_empty() {
        return Target::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        };
    }
    let mut legacy_watch = false;
    if rest.first() == Some(&"watch") {
        legacy_watch = true;
        rest = &rest[1..];
    }
    let mut namespace = "";
    // `namespaces/<ns>/<resource>...` addresses a namespaced resource; `namespaces/<name>` and
    // `namespaces/<name>/<subresource>` address the namespace object itself.
    if rest.first() == Some(&"namespaces") && rest.len() >= 3 && !is_namespace_subresource(rest) {
        namespace = rest[1];
        rest = &rest[2..];
    }
    let resource = rest.first().copied().unwrap_or_default();
    let name = rest.get(1).copied().unwrap_or_default();
    let subresource = rest.get(2).copied().unwrap_or_default();
    if resource == "namespaces" && !name.is_empty() {
        namespace = name;
    }
    let verb = if legacy_watch {
        "watch"
    } else {
        match *method {
            Method::GET | Method::HEAD if name.is_empty() => {
                if watch {
                    "watch"
                } else {
                    "list"
                }
            }
            Method::GET | Method::HEAD => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE if name.is_empty() => "deletecollection",
            Method::DELETE => "delete",
            _ => "",
        }
    };
    Target::Resource(ResourceRequest {
        verb,
        group: group.to_string(),
        version: version.to_string(),
        resource: resource.to_string(),
        namespace: namespace.to_string(),
        name: name.to_string(),
        subresource: subresource.to_string(),
        rest: rest.iter().skip(3).map(|s| s.to_string()).collect(),
    })
}

/// `namespaces/<name>/status` and `namespaces/<name>/finalize` are subresources of a namespace,
/// not a resource called `status` inside it.
fn is_namespace_subresource(rest: &[&str]) -> bool {
    rest.len() == 3 && matches!(rest[2], "status" | "finalize")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path: &str, watch: bool) -> ResourceRequest {
        match parse(&method, path, watch) {
            Target::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn resource_paths_resolve_like_upstream() {
        let cases = [
            (
                Method::GET,
                "/api/v1/pods",
                false,
                "list",
                "",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/pods",
                true,
                "watch",
                "",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/watch/pods",
                false,
                "watch",
                "",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/a/pods/p",
                false,
                "get",
                "a",
                "pods",
                "p",
                "",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/a/pods/p/status",
                false,
                "update",
                "a",
                "pods",
                "p",
                "status",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/a/pods/p/binding",
                false,
                "create",
                "a",
                "pods",
                "p",
                "binding",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                false,
                "deletecollection",
                "a",
                "pods",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces",
                false,
                "list",
                "",
                "namespaces",
                "",
                "",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/kube-system",
                false,
                "get",
                "kube-system",
                "namespaces",
                "kube-system",
                "",
            ),
            (
                Method::PUT,
                "/api/v1/namespaces/x/finalize",
                false,
                "update",
                "x",
                "namespaces",
                "x",
                "finalize",
            ),
            (
                Method::PATCH,
                "/api/v1/namespaces/x/status",
                false,
                "patch",
                "x",
                "namespaces",
                "x",
                "status",
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/a/pods/p",
                false,
                "watch",
                "a",
                "pods",
                "p",
                "",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/a/deployments/d/scale",
                false,
                "get",
                "a",
                "deployments",
                "d",
                "scale",
            ),
            (
                Method::GET,
                "/api/v1/nodes/n1",
                false,
                "get",
                "",
                "nodes",
                "n1",
                "",
            ),
        ];
        for (method, path, watch, verb, ns, res, name, sub) in cases {
            let r = resource(method, path, watch);
            assert_eq!(
                (
                    r.verb,
                    r.namespace.as_str(),
                    r.resource.as_str(),
                    r.name.as_str(),
                    r.subresource.as_str()
                ),
                (verb, ns, res, name, sub),
                "{path}"
            );
        }
        let apps = resource(
            Method::POST,
            "/apis/apps/v1/namespaces/a/deployments",
            false,
        );
        assert_eq!((apps.group.as_str(), apps.version.as_str()), ("apps", "v1"));
    }

    #[test]
    fn non_resource_and_discovery_paths() {
        assert_eq!(
            parse(&Method::GET, "/api/v1", false),
            Target::GroupVersion {
                group: String::new(),
                version: "v1".into()
            }
        );
        assert_eq!(
            parse(&Method::GET, "/apis/apps", false),
            Target::Group {
                group: "apps".into()
            }
        );
        assert_eq!(
            parse(&Method::GET, "/healthz", false),
            Target::NonResource("/healthz".into())
        );
        assert_eq!(
            parse(&Method::GET, "/api", false),
            Target::NonResource("/api".into())
        );
    }
}
