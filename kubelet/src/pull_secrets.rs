//! Registry credentials from a pod's `imagePullSecrets` (upstream's docker keyring): secrets
//! of type `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, `{"auths": {...}}`) or
//! `kubernetes.io/dockercfg` (`.dockercfg`, the bare map), each entry keyed by a registry
//! (`registry.example.com`, `registry.example.com:5000/team`, `*.example.com`,
//! `https://index.docker.io/v1/`) and holding `username`/`password` or `auth`
//! (base64 `user:password`). The most specific key matching the image wins and goes to CRI
//! `PullImage` as its `AuthConfig`; a missing secret only means pulling without it.

use base64::Engine;
use cri::v1::AuthConfig;
use k8s_openapi::api::core::v1::{Pod, Secret};
use serde_json::Value;

use crate::envvars::Sources;

/// Docker Hub's registry as image references name it.
const DOCKER_HUB: &str = "docker.io";

/// The credentials for `image` from the pod's pull secrets, if any key matches.
pub fn auth_for(pod: &Pod, image: &str, sources: &dyn Sources) -> Option<AuthConfig> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let (host, path) = image_location(image);
    let mut best: Option<(usize, AuthConfig)> = None;
    let names = pod
        .spec
        .iter()
        .flat_map(|s| s.image_pull_secrets.iter().flatten())
        .map(|r| r.name.clone());
    for name in names {
        let Ok(Some(secret)) = sources.secret(namespace, &name) else {
            tracing::debug!(secret = %name, "image pull secret not found; pulling without it");
            continue;
        };
        for (key, auth) in entries(&secret) {
            let Some(specificity) = key_matches(&key, &host, &path) else {
                continue;
            };
            if best.as_ref().is_none_or(|(s, _)| specificity > *s) {
                best = Some((specificity, auth));
            }
        }
    }
    best.map(|(_, auth)| auth)
}

/// The registry host and repository path of an image reference (without tag or digest);
/// references without a registry are Docker Hub's (`library/` for single names).
pub fn image_location(image: &str) -> (String, String) {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (first, rest) = match without_digest.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DOCKER_HUB.to_string(), without_digest.to_string()),
    };
    // A tag is after the last ':' that follows the last '/'.
    let name_start = rest.rfind('/').map_or(0, |i| i + 1);
    let path = match rest[name_start..].find(':') {
        Some(i) => rest[..name_start + i].to_string(),
        None => rest,
    };
    let path = if first == DOCKER_HUB && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (first, path)
}

/// Every (registry key, credentials) entry of one pull secret.
pub fn entries(secret: &Secret) -> Vec<(String, AuthConfig)> {
    let data = secret.data.as_ref();
    let parsed = |key: &str| -> Option<Value> {
        let bytes = &data?.get(key)?.0;
        serde_json::from_slice(bytes).ok()
    };
    let map = match secret.type_.as_deref() {
        Some("kubernetes.io/dockerconfigjson") => {
            parsed(".dockerconfigjson").and_then(|v| v.get("auths").cloned())
        }
        Some("kubernetes.io/dockercfg") => parsed(".dockercfg"),
        _ => None,
    };
    let Some(Value::Object(map)) = map else {
        return Vec::new();
    };
    map.into_iter()
        .filter_map(|(key, entry)| credentials(&key, &entry).map(|auth| (key, auth)))
        .collect()
}

fn credentials(key: &str, entry: &Value) -> Option<AuthConfig> {
    let text = |field: &str| entry.get(field).and_then(Value::as_str).unwrap_or("");
    let mut username = text("username").to_string();
    let mut password = text("password").to_string();
    let auth = text("auth").to_string();
    if username.is_empty() && !auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (user, pass) = decoded.split_once(':')?;
        username = user.to_string();
        password = pass.to_string();
    }
    if username.is_empty() && text("identitytoken").is_empty() {
        return None;
    }
    let (host, _) = parse_key(key);
    Some(AuthConfig {
        username,
        password,
        auth,
        server_address: host,
        identity_token: text("identitytoken").to_string(),
        registry_token: text("registrytoken").to_string(),
    })
}

/// A keyring key as host and path: scheme and Docker Hub's legacy `/v1/` dropped,
/// `index.docker.io` as `docker.io`.
fn parse_key(key: &str) -> (String, String) {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host, path) = key.split_once('/').unwrap_or((key, ""));
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    };
    let path = path.trim_end_matches('/');
    let path = if matches!(path, "v1" | "v2") {
        ""
    } else {
        path
    };
    (host.to_ascii_lowercase(), path.to_string())
}

/// How specifically `key` names the image's location (longer is more specific), or None
/// when it does not match: the host (with `*` globs per label) and a path prefix on `/`
/// boundaries.
fn key_matches(key: &str, host: &str, path: &str) -> Option<usize> {
    let (key_host, key_path) = parse_key(key);
    let host = host.to_ascii_lowercase();
    let key_labels: Vec<&str> = key_host.split('.').collect();
    let labels: Vec<&str> = host.split('.').collect();
    if key_labels.len() != labels.len() {
        return None;
    }
    let hosts_match = key_labels.iter().zip(&labels).all(|(k, l)| glob(k, l));
    if !hosts_match {
        return None;
    }
    if !key_path.is_empty() && path != key_path && !path.starts_with(&format!("{key_path}/")) {
        return None;
    }
    Some(key_host.len() + key_path.len() + usize::from(!key_host.contains('*')))
}

/// One host label against a pattern where each `*` matches any run of characters.
fn glob(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == label,
        Some((prefix, rest)) => {
            let Some(after) = label.strip_prefix(prefix) else {
                return false;
            };
            (0..=after.len())
                .filter(|i| after.is_char_boundary(*i))
                .any(|i| glob(rest, &after[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{LocalObjectReference, PodSpec};
    use k8s_openapi::ByteString;
    use std::collections::BTreeMap;

    #[test]
    fn image_references_name_a_registry_and_path() {
        assert_eq!(
            image_location("busybox"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(
            image_location("docker.io/library/busybox:test"),
            ("docker.io".into(), "library/busybox".into())
        );
        assert_eq!(
            image_location("registry.example.com:5000/team/app:v1"),
            ("registry.example.com:5000".into(), "team/app".into())
        );
        assert_eq!(
            image_location("localhost/app@sha256:abc"),
            ("localhost".into(), "app".into())
        );
        assert_eq!(
            image_location("someone/app:1"),
            ("docker.io".into(), "someone/app".into())
        );
    }

    #[test]
    fn globs_match_within_one_label() {
        assert!(glob("*", "registry"));
        assert!(glob("reg*", "registry"));
        assert!(glob("*try", "registry"));
        assert!(glob("r*g*y", "registry"));
        assert!(!glob("x*", "registry"));
        assert!(!glob("registry", "registr"));
    }

    #[test]
    fn keys_match_hosts_globs_and_path_prefixes() {
        assert!(key_matches("registry.example.com", "registry.example.com", "a/b").is_some());
        assert!(key_matches("https://index.docker.io/v1/", "docker.io", "library/x").is_some());
        assert!(key_matches("*.example.com", "registry.example.com", "a").is_some());
        assert!(key_matches("*.example.com", "example.com", "a").is_none());
        assert!(key_matches(
            "registry.example.com/team",
            "registry.example.com",
            "team/app"
        )
        .is_some());
        assert!(key_matches(
            "registry.example.com/team",
            "registry.example.com",
            "teamx/app"
        )
        .is_none());
        assert!(key_matches("other.example.com", "registry.example.com", "a").is_none());
        let general = key_matches("registry.example.com", "registry.example.com", "team/app");
        let specific = key_matches(
            "registry.example.com/team",
            "registry.example.com",
            "team/app",
        );
        assert!(specific > general);
    }

    struct OneSecret(Secret);

    impl Sources for OneSecret {
        fn config_map(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, String> {
            Ok(None)
        }
        fn secret(&self, _: &str, name: &str) -> Result<Option<Secret>, String> {
            Ok((self.0.metadata.name.as_deref() == Some(name)).then(|| self.0.clone()))
        }
    }

    fn pull_secret(json: &str) -> Secret {
        let mut secret = Secret::default();
        secret.metadata.name = Some("regcred".into());
        secret.type_ = Some("kubernetes.io/dockerconfigjson".into());
        secret.data = Some(BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            ByteString(json.as_bytes().to_vec()),
        )]));
        secret
    }

    fn pod_with(secrets: &[&str]) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.namespace = Some("default".into());
        pod.spec = Some(PodSpec {
            image_pull_secrets: Some(
                secrets
                    .iter()
                    .map(|n| LocalObjectReference {
                        name: n.to_string(),
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        pod
    }

    #[test]
    fn the_most_specific_entry_of_the_pods_secrets_is_used() {
        // "auth" is base64("bob:hunter2").
        let secret = pull_secret(
            r#"{"auths": {
                "registry.example.com": {"username": "alice", "password": "pw1"},
                "registry.example.com/team": {"auth": "Ym9iOmh1bnRlcjI="}
            }}"#,
        );
        let sources = OneSecret(secret);
        let pod = pod_with(&["regcred", "missing"]);
        let auth = auth_for(&pod, "registry.example.com/team/app:v1", &sources);
        let auth = auth.unwrap_or_default();
        assert_eq!(
            (auth.username.as_str(), auth.password.as_str()),
            ("bob", "hunter2")
        );
        assert_eq!(auth.server_address, "registry.example.com");
        let auth = auth_for(&pod, "registry.example.com/other/app", &sources).unwrap_or_default();
        assert_eq!(auth.username, "alice");
        assert!(auth_for(&pod, "busybox", &sources).is_none());
        assert!(auth_for(&pod_with(&[]), "registry.example.com/x", &sources).is_none());
    }

    #[test]
    fn malformed_secrets_give_no_credentials() {
        assert!(entries(&pull_secret("not json")).is_empty());
        assert!(entries(&pull_secret(r#"{"auths": {"r.io": {"auth": "%%%"}}}"#)).is_empty());
        let mut opaque = pull_secret(r#"{"auths": {"r.io": {"username": "u"}}}"#);
        opaque.type_ = Some("Opaque".into());
        assert!(entries(&opaque).is_empty());
    }
}
