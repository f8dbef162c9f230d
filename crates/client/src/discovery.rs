//! Discovery for the dynamic client: which group/version/resources the server serves, resolved
//! from a kind (`Deployment`), a plural (`deployments`), a short name (`deploy`) or a
//! `resource.group` (`deployments.apps`), the way kubectl's RESTMapper does. The result is a
//! `kube::core::ApiResource`, so [`crate::Client::api_with`] gives an `Api<DynamicObject>`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroupList, APIResourceList, APIVersions};
use kube::core::ApiResource;

use crate::client::Client;
use crate::error::{Error, Result};

pub use kube::core::{DynamicObject, GroupVersionKind};

/// One served resource.
#[derive(Clone, Debug)]
pub struct Discovered {
    pub resource: ApiResource,
    pub namespaced: bool,
    pub verbs: Vec<String>,
    pub short_names: Vec<String>,
    /// Subresources (`status`, `scale`, ...) the server lists for it.
    pub subresources: Vec<String>,
}

/// A snapshot of the server's resources (preferred versions first).
#[derive(Clone, Debug, Default)]
pub struct Discovery {
    resources: Vec<Discovered>,
}

impl Discovery {
    /// Reads `/api`, `/apis` and each group version's resource list.
    pub async fn run(client: &Client) -> Result<Discovery> {
        let mut group_versions: Vec<(String, String)> = Vec::new();
        let core: APIVersions = client.get_json("/api").await?;
        for version in core.versions {
            group_versions.push((String::new(), version));
        }
        let groups: APIGroupList = client.get_json("/apis").await?;
        for group in groups.groups {
            let preferred = group.preferred_version.as_ref().map(|p| p.version.clone());
            let mut versions: Vec<String> =
                group.versions.iter().map(|v| v.version.clone()).collect();
            // Preferred version first so resolution picks it.
            if let Some(preferred) = preferred {
                versions.sort_by_key(|v| *v != preferred);
            }
            for version in versions {
                group_versions.push((group.name.clone(), version));
            }
        }
        let mut resources = Vec::new();
        for (group, version) in group_versions {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let list: APIResourceList = match client.get_json(&path).await {
                Ok(list) => list,
                // A group whose backing server is down must not hide every other group.
                Err(err) => {
                    tracing::warn!(%path, error = %err, "skipping a group version in discovery");
                    continue;
                }
            };
            let api_version = if group.is_empty() {
                version.clone()
            } else {
                format!("{group}/{version}")
            };
            for r in &list.resources {
                if r.name.contains('/') {
                    continue;
                }
                let subresources = list
                    .resources
                    .iter()
                    .filter_map(|s| {
                        s.name
                            .strip_prefix(&format!("{}/", r.name))
                            .map(str::to_string)
                    })
                    .collect();
                resources.push(Discovered {
                    resource: ApiResource {
                        group: group.clone(),
                        version: version.clone(),
                        api_version: api_version.clone(),
                        kind: r.kind.clone(),
                        plural: r.name.clone(),
                    },
                    namespaced: r.namespaced,
                    verbs: r.verbs.clone(),
                    short_names: r.short_names.clone().unwrap_or_default(),
                    subresources,
                });
            }
        }
        Ok(Discovery { resources })
    }

    pub fn resources(&self) -> &[Discovered] {
        &self.resources
    }

    /// Resolves what a user typed: `kind`, `plural`, `shortname`, optionally `.group` (or
    /// `.version.group`); case-insensitive like kubectl.
    pub fn resolve(&self, name: &str) -> Result<&Discovered> {
        let lower = name.to_ascii_lowercase();
        let (base, qualifier) = match lower.split_once('.') {
            Some((base, rest)) => (base.to_string(), Some(rest.to_string())),
            None => (lower.clone(), None),
        };
        let matches_group = |d: &Discovered| match &qualifier {
            None => true,
            Some(q) => {
                q == &d.resource.group
                    || *q == format!("{}.{}", d.resource.version, d.resource.group)
            }
        };
        let matches_name = |d: &Discovered| {
            d.resource.plural == base
                || d.resource.kind.to_ascii_lowercase() == base
                || d.short_names.contains(&base)
        };
        // Core and the first-listed (preferred) version win, as kubectl's priority does.
        self.resources
            .iter()
            .find(|d| matches_name(d) && matches_group(d))
            .ok_or_else(|| {
                Error::Config(format!(
                    "the server doesn't have a resource type \"{name}\""
                ))
            })
    }

    /// Finds the resource serving a group/version/kind.
    pub fn by_gvk(&self, gvk: &GroupVersionKind) -> Option<&Discovered> {
        self.resources.iter().find(|d| {
            d.resource.group == gvk.group
                && d.resource.version == gvk.version
                && d.resource.kind == gvk.kind
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        short: &[&str],
    ) -> Discovered {
        Discovered {
            resource: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: vec![],
            short_names: short.iter().map(|s| s.to_string()).collect(),
            subresources: vec![],
        }
    }

    #[test]
    fn resolves_kinds_plurals_short_names_and_groups() {
        let d = Discovery {
            resources: vec![
                discovered("", "v1", "Event", "events", &["ev"]),
                discovered("apps", "v1", "Deployment", "deployments", &["deploy"]),
                discovered("events.k8s.io", "v1", "Event", "events", &[]),
            ],
        };
        let found = |name: &str| match d.resolve(name) {
            Ok(found) => found.resource.api_version.clone(),
            Err(err) => panic!("{name}: {err}"),
        };
        assert_eq!(found("deploy"), "apps/v1");
        assert_eq!(found("Deployment"), "apps/v1");
        assert_eq!(found("deployments.apps"), "apps/v1");
        assert_eq!(found("deployments.v1.apps"), "apps/v1");
        assert_eq!(found("events"), "v1");
        assert_eq!(found("events.events.k8s.io"), "events.k8s.io/v1");
        let err = d
            .resolve("widgets")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("doesn't have a resource type \"widgets\""),
            "{err}"
        );
    }
}
