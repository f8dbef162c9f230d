//! Who may use the kubelet's API (upstream's `server/auth.go`): the request's user from a client
//! certificate signed by `clientCAFile`, a bearer token checked by TokenReview (webhook
//! authentication), or anonymous when allowed; then, in `Webhook` authorization mode, a
//! SubjectAccessReview on the node object with upstream's kubelet attributes (`nodes/proxy`,
//! `nodes/log`, `nodes/stats`, `nodes/metrics`, `nodes/spec` by path).

use std::sync::Arc;

use k8s_openapi::api::authorization::v1::{ResourceAttributes, SubjectAccessReviewSpec};
use serving::authn::{Authentication, Credentials, UserInfo};

use crate::config::{AuthorizationMode, KubeletConfig};

/// The kubelet's authenticator and authorizer.
pub struct KubeletAuth {
    pub authentication: Authentication,
    /// `None`: AlwaysAllow; else SubjectAccessReviews, with answers cached for
    /// `authorization.webhook.cacheAuthorizedTTL` / `cacheUnauthorizedTTL`.
    pub reviews: Option<client::delegated::SubjectAccessReviewAuthorizer>,
    pub node_name: String,
}

/// What to answer a refused request with.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Unauthorized,
    Forbidden(String),
    Failed(String),
}

/// The node subresource a path stands for (upstream's `GetRequestAttributes`).
pub fn subresource(path: &str) -> &'static str {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/stats") {
        "stats"
    } else if under("/metrics") {
        "metrics"
    } else if under("/logs") {
        "log"
    } else if under("/spec") {
        "spec"
    } else if under("/checkpoint") {
        "checkpoint"
    } else if under("/configz") {
        "configz"
    } else if under("/healthz") {
        "healthz"
    } else {
        "proxy"
    }
}

/// The API verb of an HTTP method, as upstream's kubelet maps it.
pub fn verb(method: &http::Method) -> &'static str {
    match *method {
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => "get",
    }
}

impl KubeletAuth {
    /// Builds the configured methods; a client CA file that cannot be read fails the start.
    pub fn new(
        config: &KubeletConfig,
        client: Option<client::Client>,
        node_name: &str,
    ) -> anyhow::Result<KubeletAuth> {
        let client_cas = match &config.authentication.client_ca_file {
            Some(path) => {
                Some(serving::authn::read_ca_bundle(path).map_err(|err| anyhow::anyhow!("{err}"))?)
            }
            None => None,
        };
        let token: Option<Arc<dyn serving::authn::TokenAuthenticator>> =
            match (&client, config.authentication.webhook) {
                (Some(client), true) => {
                    Some(Arc::new(client::delegated::TokenReviewAuthenticator::new(
                        client.clone(),
                        config.authentication.webhook_cache_ttl,
                    )))
                }
                _ => None,
            };
        let authentication = Authentication::new(
            None,
            client_cas.as_deref(),
            token,
            config.authentication.anonymous,
        )
        .map_err(|err| anyhow::anyhow!("{err}"))?;
        let reviews = match config.authorization.mode {
            AuthorizationMode::AlwaysAllow => None,
            AuthorizationMode::Webhook => {
                let client = client.ok_or_else(|| {
                    anyhow::anyhow!("no client to call the Webhook authorization: --authorization-mode=Webhook needs an API server")
                })?;
                Some(client::delegated::SubjectAccessReviewAuthorizer::new(
                    client,
                    config.authorization.cache_authorized_ttl,
                    config.authorization.cache_unauthorized_ttl,
                ))
            }
        };
        Ok(KubeletAuth {
            authentication,
            reviews,
            node_name: node_name.to_string(),
        })
    }

    /// Authenticates and authorizes one request.
    pub async fn check(
        &self,
        method: &http::Method,
        path: &str,
        headers: &http::HeaderMap,
        client_certs: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    ) -> Result<UserInfo, Refusal> {
        let credentials = Credentials {
            headers,
            client_certs,
        };
        let user = self
            .authentication
            .authenticate(&credentials)
            .await
            .map_err(|_| Refusal::Unauthorized)?;
        let Some(reviews) = &self.reviews else {
            return Ok(user);
        };
        let verb = verb(method);
        let subresource = subresource(path);
        let spec = SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
            groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
            extra: (!user.extra.is_empty()).then(|| user.extra.clone()),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.to_string()),
                version: Some("v1".into()),
                resource: Some("nodes".into()),
                subresource: Some(subresource.to_string()),
                name: Some(self.node_name.clone()),
                ..ResourceAttributes::default()
            }),
            non_resource_attributes: None,
        };
        let status = reviews.review(spec).await.map_err(|err| {
            Refusal::Failed(format!(
                "Authorization error (user={}, verb={verb}, resource=nodes, subresource={subresource}): {err}",
                user.name
            ))
        })?;
        if status.allowed {
            Ok(user)
        } else {
            Err(Refusal::Forbidden(format!(
                "Forbidden (user={}, verb={verb}, resource=nodes, subresource={subresource})",
                user.name
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_node_subresources() {
        assert_eq!(subresource("/stats/summary"), "stats");
        assert_eq!(subresource("/metrics"), "metrics");
        assert_eq!(subresource("/metrics/cadvisor"), "metrics");
        assert_eq!(subresource("/logs/syslog"), "log");
        assert_eq!(subresource("/spec/"), "spec");
        assert_eq!(subresource("/containerLogs/ns/p/c"), "proxy");
        assert_eq!(subresource("/pods"), "proxy");
        assert_eq!(subresource("/statsx"), "proxy");
        assert_eq!(verb(&http::Method::GET), "get");
        assert_eq!(verb(&http::Method::POST), "create");
    }
}
