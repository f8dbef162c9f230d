//! Delegated authentication and authorization for a daemon's secure port, as upstream's
//! `DelegatingAuthenticationOptions` and `DelegatingAuthorizationOptions`: the daemon asks the
//! apiserver who a bearer token belongs to (TokenReview, authentication.k8s.io/v1) and whether a
//! user may use a path (SubjectAccessReview, authorization.k8s.io/v1), caching both answers.
//!
//! - [`DelegatedAuthArgs`]: upstream's flags, to `#[command(flatten)]` into a daemon's options;
//!   [`DelegatedAuthArgs::build`] turns them into the [`serving::ServingAuth`] the secure port
//!   checks every request with.
//! - [`TokenReviewAuthenticator`] and [`SubjectAccessReviewAuthorizer`]: the apiserver-backed
//!   halves, usable on their own by a daemon with other flags (the kubelet's webhook modes).
//!
//! Without `--authentication-kubeconfig` / `--authorization-kubeconfig` (and outside a cluster)
//! the daemon still starts, as upstream's controller-manager and scheduler do: a bearer token
//! proves nothing (the request is anonymous), and only always-allowed paths and groups pass.

mod cache;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use apimachinery::duration::parse_duration;
use clap::{ArgAction, Args};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec, SubjectAccessReviewStatus,
};
use k8s_openapi::api::core::v1::ConfigMap;
use serving::authn::{
    parse_ca_bundle, read_ca_bundle, Authentication, CertificateDer, RequestHeaderConfig,
    TokenAuthenticator, UserInfo,
};
use serving::authz::{Attributes, Authorization, Authorizer, Decision, PathAllowList, Verdict};
use serving::{AuthError, ServingAuth};

use self::cache::{TtlCache, REVIEW_CACHE_SIZE, TOKEN_CACHE_SIZE};
use crate::client::{Client, ClientOptions};
use crate::error::{Error, Result};

/// Where the apiserver publishes its client CAs for delegating servers.
const AUTHENTICATION_CONFIGMAP_NAMESPACE: &str = "kube-system";
const AUTHENTICATION_CONFIGMAP: &str = "extension-apiserver-authentication";
/// Groups allowed everything without asking (upstream's default `AlwaysAllowGroups`).
const ALWAYS_ALLOW_GROUPS: &[&str] = &["system:masters"];
/// How long one TokenReview or SubjectAccessReview may take (upstream's `ClientTimeout` and
/// `TokenRequestTimeout`).
const REVIEW_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream's webhook client: 200 qps, burst 400, five tries 500ms apart and growing.
const REVIEW_QPS: f32 = 200.0;
const REVIEW_BURST: u32 = 400;
const REVIEW_RETRIES: u32 = 4;
const REVIEW_BACKOFF: Duration = Duration::from_millis(500);

/// Upstream's delegated authentication and authorization flags, with its defaults.
#[derive(Args, Clone, Debug)]
pub struct DelegatedAuthArgs {
    /// kubeconfig file pointing at the 'core' kubernetes server with enough rights to create
    /// tokenreviews.authentication.k8s.io. This is optional. If empty, all token requests are
    /// considered to be anonymous and no client CA is looked up in the cluster.
    #[arg(long = "authentication-kubeconfig", value_name = "PATH")]
    pub authentication_kubeconfig: Option<PathBuf>,
    /// The duration to cache responses from the webhook token authenticator.
    #[arg(long = "authentication-token-webhook-cache-ttl", default_value = "10s", value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,
    /// If set, any request presenting a client certificate signed by one of the authorities in
    /// the client-ca-file is authenticated with an identity corresponding to the CommonName of
    /// the client certificate.
    #[arg(long = "client-ca-file", value_name = "PATH")]
    pub client_ca_file: Option<PathBuf>,
    /// Root certificate bundle to use to verify client certificates on incoming requests before
    /// trusting usernames in headers specified by --requestheader-username-headers.
    #[arg(long = "requestheader-client-ca-file", value_name = "PATH")]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// List of request headers to inspect for usernames. X-Remote-User is common.
    #[arg(
        long = "requestheader-username-headers",
        value_delimiter = ',',
        default_value = "x-remote-user"
    )]
    pub requestheader_username_headers: Vec<String>,
    /// List of request headers to inspect for groups. X-Remote-Group is suggested.
    #[arg(
        long = "requestheader-group-headers",
        value_delimiter = ',',
        default_value = "x-remote-group"
    )]
    pub requestheader_group_headers: Vec<String>,
    /// List of request header prefixes to inspect. X-Remote-Extra- is suggested.
    #[arg(
        long = "requestheader-extra-headers-prefix",
        value_delimiter = ',',
        default_value = "x-remote-extra-"
    )]
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// List of client certificate common names to allow to provide usernames in headers
    /// specified by --requestheader-username-headers. If empty, any client certificate validated
    /// by the authorities in --requestheader-client-ca-file is allowed.
    #[arg(long = "requestheader-allowed-names", value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    /// If false, the authentication-kubeconfig will be used to lookup missing authentication
    /// configuration from the cluster.
    #[arg(long = "authentication-skip-lookup", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub authentication_skip_lookup: bool,
    /// If true, failures to look up missing authentication configuration from the cluster are
    /// not considered fatal. Defaults to false for kube-controller-manager, true for
    /// kube-scheduler.
    #[arg(long = "authentication-tolerate-lookup-failure", action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub authentication_tolerate_lookup_failure: Option<bool>,
    /// kubeconfig file pointing at the 'core' kubernetes server with enough rights to create
    /// subjectaccessreviews.authorization.k8s.io. This is optional. If empty, all requests not
    /// skipped by authorization are forbidden.
    #[arg(long = "authorization-kubeconfig", value_name = "PATH")]
    pub authorization_kubeconfig: Option<PathBuf>,
    /// The duration to cache 'authorized' responses from the webhook authorizer.
    #[arg(long = "authorization-webhook-cache-authorized-ttl", default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    /// The duration to cache 'unauthorized' responses from the webhook authorizer.
    #[arg(long = "authorization-webhook-cache-unauthorized-ttl", default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
    /// A list of HTTP paths to skip during authorization, i.e. these are authorized without
    /// contacting the 'core' kubernetes server.
    #[arg(
        long = "authorization-always-allow-paths",
        value_delimiter = ',',
        default_value = "/healthz,/readyz,/livez"
    )]
    pub authorization_always_allow_paths: Vec<String>,
}

impl DelegatedAuthArgs {
    /// Loads the kubeconfigs and CA files and builds the secure port's checks for `component`
    /// (its user agent). `tolerate_lookup_failure` is the daemon's default for
    /// `--authentication-tolerate-lookup-failure` (false for the controller-manager, true for the
    /// scheduler). Missing kubeconfigs are warnings, as for upstream's daemons
    /// (`RemoteKubeConfigFileOptional`); unreadable ones and bad files are errors.
    pub async fn build(
        &self,
        component: &str,
        tolerate_lookup_failure: bool,
    ) -> Result<ServingAuth> {
        let config = |e: AuthError| Error::Config(e.to_string());
        let tolerate = self
            .authentication_tolerate_lookup_failure
            .unwrap_or(tolerate_lookup_failure);
        let authn_client = review_client(
            self.authentication_kubeconfig.as_deref(),
            component,
            "authentication",
        )
        .await?;
        let authz_client = review_client(
            self.authorization_kubeconfig.as_deref(),
            component,
            "authorization",
        )
        .await?;

        let needs_lookup = !self.authentication_skip_lookup
            && (self.client_ca_file.is_none() || self.requestheader_client_ca_file.is_none());
        let published = match (&authn_client, needs_lookup) {
            (Some(client), true) => match published_authentication(client).await {
                Ok(published) => published,
                Err(err) if tolerate => {
                    tracing::warn!(error = %err, "error looking up in-cluster authentication configuration; continuing without it, which may treat all requests as anonymous (set --authentication-tolerate-lookup-failure=false to require it)");
                    None
                }
                Err(err) => {
                    return Err(Error::Config(format!(
                        "unable to load configmap based authentication configuration: {err}"
                    )))
                }
            },
            _ => None,
        };

        let client_ca = match &self.client_ca_file {
            Some(path) => {
                Some(read_ca_bundle(path).map_err(|e| {
                    Error::Config(format!("unable to load client CA provider: {e}"))
                })?)
            }
            None if self.authentication_skip_lookup => None,
            None if authn_client.is_none() => {
                tracing::warn!("No authentication-kubeconfig provided in order to lookup client-ca-file in configmap/{AUTHENTICATION_CONFIGMAP} in {AUTHENTICATION_CONFIGMAP_NAMESPACE}, so client certificate authentication won't work.");
                None
            }
            None => published.as_ref().and_then(|p| p.client_ca.clone()),
        };
        let request_header = match &self.requestheader_client_ca_file {
            Some(path) => Some(RequestHeaderConfig {
                client_ca: read_ca_bundle(path).map_err(|e| {
                    Error::Config(format!(
                        "unable to create request header authentication config: {e}"
                    ))
                })?,
                allowed_names: non_empty(&self.requestheader_allowed_names),
                username_headers: non_empty(&self.requestheader_username_headers),
                group_headers: non_empty(&self.requestheader_group_headers),
                extra_header_prefixes: non_empty(&self.requestheader_extra_headers_prefix),
            }),
            None if self.authentication_skip_lookup => None,
            None if authn_client.is_none() => {
                tracing::warn!("No authentication-kubeconfig provided in order to lookup requestheader-client-ca-file in configmap/{AUTHENTICATION_CONFIGMAP} in {AUTHENTICATION_CONFIGMAP_NAMESPACE}, so request-header client certificate authentication won't work.");
                None
            }
            None => published.and_then(|p| p.request_header),
        };
        let token: Option<Arc<dyn TokenAuthenticator>> = authn_client.map(|client| {
            Arc::new(TokenReviewAuthenticator::new(
                client,
                self.authentication_token_webhook_cache_ttl,
            )) as Arc<dyn TokenAuthenticator>
        });
        let authentication = Authentication::new(request_header, client_ca.as_deref(), token, true)
            .map_err(config)?;

        let paths = PathAllowList::new(&non_empty(&self.authorization_always_allow_paths))
            .map_err(config)?;
        let delegate: Option<Arc<dyn Authorizer>> = match authz_client {
            Some(client) => Some(Arc::new(SubjectAccessReviewAuthorizer::new(
                client,
                self.authorization_webhook_cache_authorized_ttl,
                self.authorization_webhook_cache_unauthorized_ttl,
            ))),
            None => {
                tracing::warn!("No authorization-kubeconfig provided, so SubjectAccessReview of authorization tokens won't work.");
                None
            }
        };
        let authorization = Authorization::new(
            ALWAYS_ALLOW_GROUPS.iter().map(|g| g.to_string()).collect(),
            paths,
            delegate,
        );
        Ok(ServingAuth {
            authentication,
            authorization,
        })
    }
}

/// pflag's string slices drop empty items (`--authorization-always-allow-paths=` clears the list).
fn non_empty(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The client reviews go through: the kubeconfig when given; else the in-cluster service
/// account when the process runs in a pod (a broken one is a warning); else none.
async fn review_client(
    kubeconfig: Option<&Path>,
    component: &str,
    purpose: &str,
) -> Result<Option<Client>> {
    let config = match kubeconfig {
        Some(path) => crate::config::from_kubeconfig_file(path, None)
            .await
            .map_err(|err| {
                Error::Config(format!(
                    "failed to get delegated {purpose} kubeconfig: {err}"
                ))
            })?,
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none()
            || std::env::var_os("KUBERNETES_SERVICE_PORT").is_none() =>
        {
            return Ok(None)
        }
        None => match kube::Config::incluster() {
            Ok(config) => config,
            Err(err) => {
                tracing::warn!(error = %err, "failed to read in-cluster kubeconfig for delegated {purpose}");
                return Ok(None);
            }
        },
    };
    let mut options = ClientOptions::new(component)
        .rate(REVIEW_QPS, REVIEW_BURST)
        .max_retries(REVIEW_RETRIES);
    options.initial_backoff = REVIEW_BACKOFF;
    Client::new(config, options).map(Some)
}

/// What the apiserver publishes in `kube-system/extension-apiserver-authentication`.
struct Published {
    client_ca: Option<Vec<CertificateDer<'static>>>,
    request_header: Option<RequestHeaderConfig>,
}

/// Reads the published authentication configuration once (upstream keeps watching it; a
/// restart picks up a change here). `Ok(None)` when the apiserver publishes none.
async fn published_authentication(client: &Client) -> Result<Option<Published>> {
    let configmaps = client.api::<ConfigMap>(Some(AUTHENTICATION_CONFIGMAP_NAMESPACE));
    let Some(configmap) =
        tokio::time::timeout(REVIEW_TIMEOUT, configmaps.get_opt(AUTHENTICATION_CONFIGMAP))
            .await
            .map_err(|_| {
                Error::Config(format!(
                    "reading configmap/{AUTHENTICATION_CONFIGMAP} timed out"
                ))
            })??
    else {
        return Ok(None);
    };
    let data = configmap.data.unwrap_or_default();
    let what = |key: &str| {
        format!("configmap/{AUTHENTICATION_CONFIGMAP} in {AUTHENTICATION_CONFIGMAP_NAMESPACE}, key {key}")
    };
    let bundle = |key: &str| -> Result<Option<Vec<CertificateDer<'static>>>> {
        match data.get(key).filter(|v| !v.trim().is_empty()) {
            Some(pem) => parse_ca_bundle(pem.as_bytes(), &what(key))
                .map(Some)
                .map_err(|e| Error::Config(e.to_string())),
            None => Ok(None),
        }
    };
    // The header lists are JSON arrays of strings.
    let list = |key: &str| -> Result<Vec<String>> {
        match data.get(key).filter(|v| !v.trim().is_empty()) {
            Some(json) => {
                serde_json::from_str(json).map_err(|e| Error::Config(format!("{}: {e}", what(key))))
            }
            None => Ok(Vec::new()),
        }
    };
    let request_header = match bundle("requestheader-client-ca-file")? {
        Some(client_ca) => Some(RequestHeaderConfig {
            client_ca,
            allowed_names: list("requestheader-allowed-names")?,
            username_headers: list("requestheader-username-headers")?,
            group_headers: list("requestheader-group-headers")?,
            extra_header_prefixes: list("requestheader-extra-headers-prefix")?,
        }),
        None => None,
    };
    Ok(Some(Published {
        client_ca: bundle("client-ca-file")?,
        request_header,
    }))
}

/// Bearer tokens checked by TokenReview (upstream's webhook token authenticator behind its
/// cache): valid tokens and plain refusals are remembered for the cache TTL; a refusal with an
/// error and a failed review are not, so the next request asks again.
pub struct TokenReviewAuthenticator {
    client: Client,
    ttl: Duration,
    cache: TtlCache<Option<UserInfo>>,
}

impl TokenReviewAuthenticator {
    pub fn new(client: Client, ttl: Duration) -> TokenReviewAuthenticator {
        TokenReviewAuthenticator {
            client,
            ttl,
            cache: TtlCache::new(TOKEN_CACHE_SIZE),
        }
    }
}

#[async_trait::async_trait]
impl TokenAuthenticator for TokenReviewAuthenticator {
    async fn authenticate_token(
        &self,
        token: &str,
    ) -> std::result::Result<Option<UserInfo>, AuthError> {
        if let Some(known) = self.cache.get(token) {
            return Ok(known);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..TokenReview::default()
        };
        let reviews = self.client.api::<TokenReview>(None);
        let answer = tokio::time::timeout(REVIEW_TIMEOUT, reviews.create(&review))
            .await
            .map_err(|_| {
                AuthError::Unavailable(format!("TokenReview timed out after {REVIEW_TIMEOUT:?}"))
            })?
            .map_err(|err| AuthError::Unavailable(format!("TokenReview failed: {err}")))?;
        let user = token_review_user(answer.status.unwrap_or_default())?;
        self.cache.insert(token.to_string(), user.clone(), self.ttl);
        Ok(user)
    }
}

/// The user a TokenReview's status names; a refusal with an error is an error (not cached).
fn token_review_user(
    status: TokenReviewStatus,
) -> std::result::Result<Option<UserInfo>, AuthError> {
    if status.authenticated != Some(true) {
        return match status.error.filter(|e| !e.is_empty()) {
            Some(error) => Err(AuthError::Rejected(error)),
            None => Ok(None),
        };
    }
    let user = status.user.unwrap_or_default();
    Ok(Some(UserInfo {
        name: user.username.unwrap_or_default(),
        uid: user.uid.unwrap_or_default(),
        groups: user.groups.unwrap_or_default(),
        extra: user.extra.unwrap_or_default().into_iter().collect(),
    }))
}

/// Decisions by SubjectAccessReview (upstream's webhook authorizer): "allowed" answers are
/// remembered for the authorized TTL, others for the unauthorized TTL, failures not at all.
pub struct SubjectAccessReviewAuthorizer {
    client: Client,
    authorized_ttl: Duration,
    unauthorized_ttl: Duration,
    cache: TtlCache<SubjectAccessReviewStatus>,
}

impl SubjectAccessReviewAuthorizer {
    pub fn new(
        client: Client,
        authorized_ttl: Duration,
        unauthorized_ttl: Duration,
    ) -> SubjectAccessReviewAuthorizer {
        SubjectAccessReviewAuthorizer {
            client,
            authorized_ttl,
            unauthorized_ttl,
            cache: TtlCache::new(REVIEW_CACHE_SIZE),
        }
    }
}

impl SubjectAccessReviewAuthorizer {
    /// The apiserver's answer to one review, from the cache while it is fresh (the kubelet
    /// asks about resource attributes, `nodes/<subresource>`, the daemons about paths).
    pub async fn review(
        &self,
        spec: SubjectAccessReviewSpec,
    ) -> std::result::Result<SubjectAccessReviewStatus, AuthError> {
        // Upstream keys its cache by the spec's JSON: the same question, the same answer.
        let key = serde_json::to_string(&spec)
            .map_err(|err| AuthError::Unavailable(format!("encoding the review: {err}")))?;
        let status = match self.cache.get(&key) {
            Some(status) => status,
            None => {
                let review = SubjectAccessReview {
                    spec,
                    ..SubjectAccessReview::default()
                };
                let reviews = self.client.api::<SubjectAccessReview>(None);
                let answer = tokio::time::timeout(REVIEW_TIMEOUT, reviews.create(&review))
                    .await
                    .map_err(|_| {
                        AuthError::Unavailable(format!(
                            "SubjectAccessReview timed out after {REVIEW_TIMEOUT:?}"
                        ))
                    })?
                    .map_err(|err| AuthError::Unavailable(err.to_string()))?;
                let status = answer.status.unwrap_or_default();
                let ttl = if status.allowed {
                    self.authorized_ttl
                } else {
                    self.unauthorized_ttl
                };
                self.cache.insert(key, status.clone(), ttl);
                status
            }
        };
        Ok(status)
    }
}

#[async_trait::async_trait]
impl Authorizer for SubjectAccessReviewAuthorizer {
    async fn authorize(&self, attributes: &Attributes) -> std::result::Result<Verdict, AuthError> {
        let status = self.review(review_spec(attributes)).await?;
        verdict(&status)
    }
}

/// The review's spec for a request: the user as authenticated and the path with its verb.
fn review_spec(attributes: &Attributes) -> SubjectAccessReviewSpec {
    let user = &attributes.user;
    SubjectAccessReviewSpec {
        user: Some(user.name.clone()),
        uid: (!user.uid.is_empty()).then(|| user.uid.clone()),
        groups: (!user.groups.is_empty()).then(|| user.groups.clone()),
        extra: (!user.extra.is_empty()).then(|| {
            user.extra
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        }),
        non_resource_attributes: Some(NonResourceAttributes {
            path: Some(attributes.path.clone()),
            verb: Some(attributes.verb.clone()),
        }),
        resource_attributes: None,
    }
}

/// Upstream's reading of a review's status.
fn verdict(status: &SubjectAccessReviewStatus) -> std::result::Result<Verdict, AuthError> {
    let reason = status.reason.clone().unwrap_or_default();
    let denied = status.denied == Some(true);
    match (status.allowed, denied) {
        (true, true) => Err(AuthError::Unavailable(
            "webhook subject access review returned both allow and deny response".into(),
        )),
        (true, false) => Ok(Verdict {
            decision: Decision::Allow,
            reason,
        }),
        (false, true) => Ok(Verdict {
            decision: Decision::Deny,
            reason,
        }),
        (false, false) => Ok(Verdict {
            decision: Decision::NoOpinion,
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::Mutex;

    #[derive(Parser, Debug)]
    struct Flags {
        #[command(flatten)]
        auth: DelegatedAuthArgs,
    }

    fn parse(args: &[&str]) -> DelegatedAuthArgs {
        let argv = std::iter::once("daemon").chain(args.iter().copied());
        match Flags::try_parse_from(argv) {
            Ok(flags) => flags.auth,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn flags_default_as_upstream() {
        let args = parse(&[]);
        assert_eq!(args.authentication_kubeconfig, None);
        assert_eq!(args.authorization_kubeconfig, None);
        assert_eq!(
            args.authentication_token_webhook_cache_ttl,
            Duration::from_secs(10)
        );
        assert_eq!(
            args.authorization_webhook_cache_authorized_ttl,
            Duration::from_secs(10)
        );
        assert_eq!(
            args.authorization_webhook_cache_unauthorized_ttl,
            Duration::from_secs(10)
        );
        assert_eq!(
            args.authorization_always_allow_paths,
            vec!["/healthz", "/readyz", "/livez"]
        );
        assert_eq!(args.requestheader_username_headers, vec!["x-remote-user"]);
        assert_eq!(args.requestheader_group_headers, vec!["x-remote-group"]);
        assert_eq!(
            args.requestheader_extra_headers_prefix,
            vec!["x-remote-extra-"]
        );
        assert!(args.requestheader_allowed_names.is_empty());
        assert!(!args.authentication_skip_lookup);
        assert_eq!(args.authentication_tolerate_lookup_failure, None);

        let args = parse(&[
            "--authentication-kubeconfig=/a",
            "--authorization-kubeconfig=/b",
            "--authentication-token-webhook-cache-ttl=1m",
            "--authorization-webhook-cache-authorized-ttl=5m",
            "--authorization-webhook-cache-unauthorized-ttl=30s",
            "--authorization-always-allow-paths=/healthz,/metrics/*",
            "--client-ca-file=/ca.crt",
            "--authentication-skip-lookup",
            "--authentication-tolerate-lookup-failure=false",
        ]);
        assert_eq!(args.authentication_kubeconfig, Some(PathBuf::from("/a")));
        assert_eq!(args.authorization_kubeconfig, Some(PathBuf::from("/b")));
        assert_eq!(
            args.authentication_token_webhook_cache_ttl,
            Duration::from_secs(60)
        );
        assert_eq!(
            args.authorization_webhook_cache_authorized_ttl,
            Duration::from_secs(300)
        );
        assert_eq!(
            args.authorization_webhook_cache_unauthorized_ttl,
            Duration::from_secs(30)
        );
        assert_eq!(
            args.authorization_always_allow_paths,
            vec!["/healthz", "/metrics/*"]
        );
        assert_eq!(args.client_ca_file, Some(PathBuf::from("/ca.crt")));
        assert!(args.authentication_skip_lookup);
        assert_eq!(args.authentication_tolerate_lookup_failure, Some(false));
        // An empty value clears the list, as pflag's string slices.
        let args = parse(&["--authorization-always-allow-paths="]);
        assert!(non_empty(&args.authorization_always_allow_paths).is_empty());
    }

    fn anonymous_get(path: &str) -> Attributes {
        Attributes::new(UserInfo::anonymous(), &http::Method::GET, path)
    }

    #[tokio::test]
    async fn without_kubeconfigs_only_always_allowed_paths_pass() {
        // Outside a cluster, with no kubeconfig: warnings, then a port that serves health only.
        if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
            return; // in a pod the in-cluster service account would be used instead
        }
        let auth = match parse(&[]).build("test", false).await {
            Ok(auth) => auth,
            Err(err) => panic!("{err}"),
        };
        use serving::authz::Outcome;
        assert_eq!(
            auth.authorization
                .authorize(&anonymous_get("/healthz"))
                .await,
            Outcome::Allowed
        );
        assert_eq!(
            auth.authorization
                .authorize(&anonymous_get("/metrics"))
                .await,
            Outcome::Forbidden(String::new())
        );
        assert!(auth.authentication.client_cas().is_empty());
    }

    #[tokio::test]
    async fn bad_files_and_paths_stop_the_daemon() {
        let err = match parse(&["--client-ca-file=/nonexistent/ca.crt"])
            .build("test", false)
            .await
        {
            Ok(_) => panic!("a missing CA file was accepted"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("unable to load client CA provider"), "{err}");
        assert!(err.contains("/nonexistent/ca.crt"), "{err}");
        let err = match parse(&["--authorization-always-allow-paths=/a/*/b"])
            .build("test", false)
            .await
        {
            Ok(_) => panic!("a bad path was accepted"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("only trailing * allowed"), "{err}");
        let err = match parse(&["--authentication-kubeconfig=/nonexistent/kubeconfig"])
            .build("test", false)
            .await
        {
            Ok(_) => panic!("a missing kubeconfig was accepted"),
            Err(err) => err.to_string(),
        };
        assert!(
            err.contains("failed to get delegated authentication kubeconfig"),
            "{err}"
        );
    }

    #[test]
    fn requests_map_to_non_resource_reviews() {
        let user = UserInfo {
            name: "tina".into(),
            uid: "uid-1".into(),
            groups: vec!["testers".into(), "system:authenticated".into()],
            extra: [("scopes".to_string(), vec!["a".to_string()])]
                .into_iter()
                .collect(),
        };
        let spec = review_spec(&Attributes::new(user, &http::Method::POST, "/metrics"));
        let json = serde_json::to_value(&spec).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "user": "tina",
                "uid": "uid-1",
                "groups": ["testers", "system:authenticated"],
                "extra": {"scopes": ["a"]},
                "nonResourceAttributes": {"path": "/metrics", "verb": "post"},
            })
        );
        // Empty uid, groups and extra are left out, as upstream's omitempty.
        let spec = review_spec(&Attributes::new(
            UserInfo {
                name: "x".into(),
                ..UserInfo::default()
            },
            &http::Method::GET,
            "/healthz/etcd",
        ));
        assert_eq!(
            serde_json::to_value(&spec).unwrap_or_default(),
            serde_json::json!({"user": "x", "nonResourceAttributes": {"path": "/healthz/etcd", "verb": "get"}})
        );
    }

    #[test]
    fn review_statuses_read_as_upstream() {
        let status =
            |allowed: bool, denied: Option<bool>, reason: Option<&str>| SubjectAccessReviewStatus {
                allowed,
                denied,
                reason: reason.map(str::to_string),
                ..SubjectAccessReviewStatus::default()
            };
        let decision = |s| {
            verdict(&s)
                .map(|v| (v.decision, v.reason))
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            decision(status(true, None, Some("RBAC: allowed"))),
            Ok((Decision::Allow, "RBAC: allowed".into()))
        );
        assert_eq!(
            decision(status(false, Some(true), Some("no"))),
            Ok((Decision::Deny, "no".into()))
        );
        assert_eq!(
            decision(status(false, None, None)),
            Ok((Decision::NoOpinion, String::new()))
        );
        assert_eq!(
            decision(status(true, Some(true), None)),
            Err("webhook subject access review returned both allow and deny response".into())
        );

        let user = token_review_user(TokenReviewStatus {
            authenticated: Some(true),
            user: Some(k8s_openapi::api::authentication::v1::UserInfo {
                username: Some("system:serviceaccount:kube-system:prometheus".into()),
                uid: Some("u1".into()),
                groups: Some(vec!["system:serviceaccounts".into()]),
                extra: None,
            }),
            ..TokenReviewStatus::default()
        });
        let user = user.ok().flatten().unwrap_or_default();
        assert_eq!(user.name, "system:serviceaccount:kube-system:prometheus");
        assert_eq!(user.uid, "u1");
        assert_eq!(user.groups, vec!["system:serviceaccounts"]);
        assert_eq!(
            token_review_user(TokenReviewStatus::default()).ok(),
            Some(None)
        );
        let refused = token_review_user(TokenReviewStatus {
            error: Some("[invalid bearer token, token lookup failed]".into()),
            ..TokenReviewStatus::default()
        });
        assert!(
            matches!(refused, Err(AuthError::Rejected(ref m)) if m.contains("token lookup failed"))
        );
    }

    /// A loopback apiserver answering TokenReviews and SubjectAccessReviews, recording bodies.
    struct FakeApiserver {
        url: String,
        bodies: Arc<Mutex<Vec<serde_json::Value>>>,
    }

    impl FakeApiserver {
        async fn start() -> FakeApiserver {
            let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
                Ok(l) => l,
                Err(err) => panic!("{err}"),
            };
            let url = match listener.local_addr() {
                Ok(addr) => format!("http://{addr}"),
                Err(err) => panic!("{err}"),
            };
            let bodies = Arc::new(Mutex::new(Vec::new()));
            let recorded = bodies.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let recorded = recorded.clone();
                    let service = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let recorded = recorded.clone();
                            async move {
                                use http_body_util::BodyExt;
                                let path = req.uri().path().to_string();
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                let body: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap_or_default();
                                recorded
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .push(body.clone());
                                let mut answer = body.clone();
                                answer["status"] = if path.ends_with("/tokenreviews") {
                                    match body["spec"]["token"].as_str() {
                                        Some("good") => {
                                            serde_json::json!({"authenticated": true, "user": {"username": "tina", "groups": ["testers"]}})
                                        }
                                        Some("broken") => {
                                            serde_json::json!({"user": {}, "error": "token lookup failed"})
                                        }
                                        _ => serde_json::json!({"user": {}}),
                                    }
                                } else if body["spec"]["user"] == "tina" {
                                    serde_json::json!({"allowed": true})
                                } else {
                                    serde_json::json!({"allowed": false, "reason": "no RBAC policy matched"})
                                };
                                let mut response = http::Response::new(http_body_util::Full::new(
                                    bytes::Bytes::from(answer.to_string()),
                                ));
                                *response.status_mut() = http::StatusCode::CREATED;
                                Ok::<_, std::convert::Infallible>(response)
                            }
                        },
                    );
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
            FakeApiserver { url, bodies }
        }

        fn client(&self) -> Client {
            let url = match self.url.parse() {
                Ok(url) => url,
                Err(err) => panic!("{err}"),
            };
            match Client::with_registry(
                kube::Config::new(url),
                ClientOptions::new("test"),
                &metrics::Registry::new(),
            ) {
                Ok(client) => client,
                Err(err) => panic!("{err}"),
            }
        }

        fn asked(&self) -> Vec<serde_json::Value> {
            self.bodies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    fn user(name: &str) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: vec!["system:authenticated".into()],
            ..UserInfo::default()
        }
    }

    #[tokio::test]
    async fn reviews_are_cached_by_answer() {
        let apiserver = FakeApiserver::start().await;
        // Allowed answers kept an hour, refusals not at all.
        let authorizer = SubjectAccessReviewAuthorizer::new(
            apiserver.client(),
            Duration::from_secs(3600),
            Duration::ZERO,
        );
        let tina = Attributes::new(user("tina"), &http::Method::GET, "/metrics");
        let bob = Attributes::new(user("bob"), &http::Method::GET, "/metrics");
        for _ in 0..3 {
            let verdict = authorizer
                .authorize(&tina)
                .await
                .map(|v| v.decision)
                .map_err(|e| e.to_string());
            assert_eq!(verdict, Ok(Decision::Allow));
        }
        for _ in 0..2 {
            let verdict = authorizer.authorize(&bob).await.map_err(|e| e.to_string());
            assert_eq!(
                verdict,
                Ok(Verdict {
                    decision: Decision::NoOpinion,
                    reason: "no RBAC policy matched".into()
                })
            );
        }
        let asked = apiserver.asked();
        assert_eq!(
            asked.len(),
            3,
            "one review for tina, two for bob: {asked:?}"
        );
        assert_eq!(asked[0]["apiVersion"], "authorization.k8s.io/v1");
        assert_eq!(asked[0]["kind"], "SubjectAccessReview");
        assert_eq!(
            asked[0]["spec"],
            serde_json::json!({
                "user": "tina",
                "groups": ["system:authenticated"],
                "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
            })
        );
        // Another path is another question.
        let other = Attributes::new(user("tina"), &http::Method::GET, "/debug/pprof");
        assert!(authorizer.authorize(&other).await.is_ok());
        assert_eq!(apiserver.asked().len(), 4);
    }

    #[tokio::test]
    async fn token_reviews_cache_answers_but_not_errors() {
        let apiserver = FakeApiserver::start().await;
        let authenticator =
            TokenReviewAuthenticator::new(apiserver.client(), Duration::from_secs(3600));
        for _ in 0..2 {
            let tina = authenticator
                .authenticate_token("good")
                .await
                .map_err(|e| e.to_string());
            let tina = tina.map(|u| u.map(|u| (u.name, u.groups)));
            assert_eq!(
                tina,
                Ok(Some(("tina".to_string(), vec!["testers".to_string()])))
            );
        }
        for _ in 0..2 {
            let unknown = authenticator
                .authenticate_token("unknown")
                .await
                .map_err(|e| e.to_string());
            assert_eq!(unknown, Ok(None));
        }
        for _ in 0..2 {
            let broken = authenticator.authenticate_token("broken").await;
            assert!(
                matches!(broken, Err(AuthError::Rejected(ref m)) if m == "token lookup failed"),
                "{broken:?}"
            );
        }
        let asked = apiserver.asked();
        let tokens: Vec<&str> = asked
            .iter()
            .filter_map(|b| b["spec"]["token"].as_str())
            .collect();
        assert_eq!(tokens, vec!["good", "unknown", "broken", "broken"]);
        assert_eq!(asked[0]["apiVersion"], "authentication.k8s.io/v1");
        assert_eq!(asked[0]["kind"], "TokenReview");
    }
}
