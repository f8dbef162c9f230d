//! Service-account tokens as upstream's `pkg/serviceaccount` issues and authenticates them: bound
//! tokens (the private `kubernetes.io` claim, from TokenRequest) and legacy secret-based tokens
//! (issuer `kubernetes/serviceaccount`). This module checks everything that needs only the token
//! and the clock; the caller then checks that the bound objects still exist with the same UIDs
//! (and, for legacy tokens, that the Secret still holds this exact token) before using
//! [`ServiceAccountToken::user_info`].

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::jws::{CompactJws, Signer, Verifier};
use crate::{Error, UserInfo};

/// Issuer of legacy secret-based tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// go-jose's `jwt.DefaultLeeway`, applied to `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: i64 = 60;
/// The TokenRequest expiration kubelet asks for when it can cope with extended tokens.
pub const WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
/// How long such tokens really live when `--service-account-extend-token-expiration` is on.
pub const EXPIRATION_EXTENSION_SECONDS: i64 = 24 * 365 * 60 * 60;

pub const SERVICE_ACCOUNT_USERNAME_PREFIX: &str = "system:serviceaccount:";
pub const ALL_SERVICE_ACCOUNTS_GROUP: &str = "system:serviceaccounts";
pub const SERVICE_ACCOUNT_GROUP_PREFIX: &str = "system:serviceaccounts:";
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
pub const NODE_UID_KEY: &str = "authentication.kubernetes.io/node-uid";
pub const CREDENTIAL_ID_KEY: &str = "authentication.kubernetes.io/credential-id";

/// `system:serviceaccount:<namespace>:<name>`.
pub fn make_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_USERNAME_PREFIX}{namespace}:{name}")
}

/// The groups every service account belongs to.
pub fn make_group_names(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS_GROUP.to_string(),
        format!("{SERVICE_ACCOUNT_GROUP_PREFIX}{namespace}"),
    ]
}

/// Upstream's `SplitUsername`: `(namespace, name)` when the username is a well-formed
/// service-account username (namespace a DNS-1123 label, name a DNS-1123 subdomain).
pub fn split_username(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_USERNAME_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    if name.contains(':') || !is_dns1123_label(namespace) || !is_dns1123_subdomain(name) {
        return None;
    }
    Some((namespace, name))
}

fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// `name`/`uid` of a referenced object, as in the private claim.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
pub struct ObjectRef {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub uid: String,
}

impl ObjectRef {
    pub fn new(name: impl Into<String>, uid: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn to_json(&self) -> Value {
        // Upstream's `ref` marks both fields omitempty.
        let mut obj = Map::new();
        if !self.name.is_empty() {
            obj.insert("name".into(), Value::String(self.name.clone()));
        }
        if !self.uid.is_empty() {
            obj.insert("uid".into(), Value::String(self.uid.clone()));
        }
        Value::Object(obj)
    }
}

/// What a bound token is tied to. Upstream allows one object kind, except that a pod-bound token
/// may also carry the pod's node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BoundObject {
    #[default]
    None,
    Pod {
        pod: ObjectRef,
        node: Option<ObjectRef>,
    },
    Secret(ObjectRef),
    Node(ObjectRef),
}

/// The private claims of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateClaims {
    /// The `kubernetes.io` claim of a bound token.
    Bound {
        namespace: String,
        service_account: ObjectRef,
        bound: BoundObject,
        /// Unix seconds after which a still-used token is reported stale.
        warn_after: Option<i64>,
    },
    /// The flat `kubernetes.io/serviceaccount/*` claims of a secret-based token.
    Legacy {
        namespace: String,
        service_account: ObjectRef,
        secret_name: String,
    },
}

/// Everything that goes into a token's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountClaims {
    pub issuer: String,
    pub subject: String,
    pub audiences: Vec<String>,
    /// Unix seconds.
    pub issued_at: Option<i64>,
    pub not_before: Option<i64>,
    pub expiry: Option<i64>,
    /// `jti`, a fresh UUID for bound tokens (upstream's ServiceAccountTokenJTI).
    pub id: Option<String>,
    pub private: PrivateClaims,
}

impl ServiceAccountClaims {
    /// Upstream's `serviceaccount.Claims`: iat = nbf = now, exp = now + expiration, a random
    /// `jti`, and `warnafter` = now + warn_after_seconds when that is not zero.
    #[allow(clippy::too_many_arguments)]
    pub fn bound(
        issuer: impl Into<String>,
        namespace: impl Into<String>,
        service_account: ObjectRef,
        bound: BoundObject,
        audiences: Vec<String>,
        now: DateTime<Utc>,
        expiration_seconds: i64,
        warn_after_seconds: i64,
    ) -> Self {
        let namespace = namespace.into();
        let now = now.timestamp();
        Self {
            issuer: issuer.into(),
            subject: make_username(&namespace, &service_account.name),
            audiences,
            issued_at: Some(now),
            not_before: Some(now),
            expiry: Some(now.saturating_add(expiration_seconds)),
            id: Some(uuid::Uuid::new_v4().to_string()),
            private: PrivateClaims::Bound {
                namespace,
                service_account,
                bound,
                warn_after: (warn_after_seconds != 0)
                    .then(|| now.saturating_add(warn_after_seconds)),
            },
        }
    }

    /// Upstream's `LegacyClaims`: no expiry, no audience, issuer `kubernetes/serviceaccount`.
    pub fn legacy(
        namespace: impl Into<String>,
        service_account: ObjectRef,
        secret_name: impl Into<String>,
    ) -> Self {
        let namespace = namespace.into();
        Self {
            issuer: LEGACY_ISSUER.to_string(),
            subject: make_username(&namespace, &service_account.name),
            audiences: Vec::new(),
            issued_at: None,
            not_before: None,
            expiry: None,
            id: None,
            private: PrivateClaims::Legacy {
                namespace,
                service_account,
                secret_name: secret_name.into(),
            },
        }
    }

    /// The JSON payload. go-jose merges the claim sets into one map and marshals it, so keys
    /// come out sorted, nested objects included; we insert in that order so the bytes match
    /// whether or not serde_json preserves insertion order.
    pub fn to_payload(&self) -> Value {
        let mut claims: BTreeMap<&str, Value> = BTreeMap::new();
        match self.audiences.as_slice() {
            [] => {}
            // go-jose v2 writes a single audience as a bare string.
            [one] => {
                claims.insert("aud", Value::String(one.clone()));
            }
            many => {
                claims.insert("aud", Value::from(many.to_vec()));
            }
        }
        let mut put_num = |key, v: Option<i64>| {
            if let Some(v) = v {
                claims.insert(key, Value::from(v));
            }
        };
        put_num("exp", self.expiry);
        put_num("iat", self.issued_at);
        put_num("nbf", self.not_before);
        let mut put_str = |key, v: &str| {
            if !v.is_empty() {
                claims.insert(key, Value::String(v.to_string()));
            }
        };
        put_str("iss", &self.issuer);
        put_str("sub", &self.subject);
        put_str("jti", self.id.as_deref().unwrap_or_default());
        match &self.private {
            PrivateClaims::Bound {
                namespace,
                service_account,
                bound,
                warn_after,
            } => {
                let mut k8s: BTreeMap<&str, Value> = BTreeMap::new();
                if !namespace.is_empty() {
                    k8s.insert("namespace", Value::String(namespace.clone()));
                }
                k8s.insert("serviceaccount", service_account.to_json());
                match bound {
                    BoundObject::None => {}
                    BoundObject::Pod { pod, node } => {
                        k8s.insert("pod", pod.to_json());
                        if let Some(node) = node {
                            k8s.insert("node", node.to_json());
                        }
                    }
                    BoundObject::Secret(secret) => {
                        k8s.insert("secret", secret.to_json());
                    }
                    BoundObject::Node(node) => {
                        k8s.insert("node", node.to_json());
                    }
                }
                if let Some(w) = warn_after {
                    k8s.insert("warnafter", Value::from(*w));
                }
                claims.insert("kubernetes.io", sorted_object(k8s));
            }
            PrivateClaims::Legacy {
                namespace,
                service_account,
                secret_name,
            } => {
                // No omitempty on upstream's legacy claims.
                for (key, v) in [
                    ("kubernetes.io/serviceaccount/namespace", namespace),
                    ("kubernetes.io/serviceaccount/secret.name", secret_name),
                    (
                        "kubernetes.io/serviceaccount/service-account.name",
                        &service_account.name,
                    ),
                    (
                        "kubernetes.io/serviceaccount/service-account.uid",
                        &service_account.uid,
                    ),
                ] {
                    claims.insert(key, Value::String(v.clone()));
                }
            }
        }
        sorted_object(claims)
    }
}

fn sorted_object(entries: BTreeMap<&str, Value>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}

/// Signs the claims into a compact JWT.
pub fn issue(signer: &Signer, claims: &ServiceAccountClaims) -> Result<String, Error> {
    signer.sign_compact(claims.to_payload().to_string().as_bytes())
}

/// What the token authenticator is configured with besides the keys.
#[derive(Debug, Clone, Default)]
pub struct AuthenticatorConfig {
    /// `--service-account-issuer` values accepted for bound tokens.
    pub issuers: Vec<String>,
    /// `--api-audiences` (upstream's implicit audiences).
    pub api_audiences: Vec<String>,
    /// Whether legacy secret-based tokens are authenticated (upstream does whenever
    /// `--service-account-key-file` is set).
    pub accept_legacy: bool,
}

/// Which flavour of token was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    Bound,
    /// The caller must check the Secret still exists, is not being deleted, holds exactly this
    /// token under `token`, and that the ServiceAccount's UID matches.
    Legacy {
        secret_name: String,
    },
}

/// A verified service-account token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountToken {
    pub kind: TokenKind,
    pub issuer: String,
    pub subject: String,
    pub namespace: String,
    pub service_account: ObjectRef,
    pub pod: Option<ObjectRef>,
    pub secret: Option<ObjectRef>,
    pub node: Option<ObjectRef>,
    pub expiry: Option<i64>,
    pub issued_at: Option<i64>,
    pub not_before: Option<i64>,
    pub warn_after: Option<i64>,
    pub id: Option<String>,
    /// The audiences the token was accepted for (upstream's `Response.Audiences`).
    pub audiences: Vec<String>,
}

impl ServiceAccountToken {
    /// `JTI=<jti>`, the `authentication.kubernetes.io/credential-id` value.
    pub fn credential_id(&self) -> Option<String> {
        self.id
            .as_deref()
            .filter(|jti| !jti.is_empty())
            .map(|jti| format!("JTI={jti}"))
    }

    /// Seconds past `warnafter` when the token is stale at `now` (upstream then adds the
    /// `authentication.k8s.io/stale-token` audit annotation).
    pub fn seconds_after_warning(&self, now: DateTime<Utc>) -> Option<i64> {
        let warn = self.warn_after.filter(|w| *w != 0)?;
        (nanos(now) > i128::from(warn) * 1_000_000_000).then(|| now.timestamp() - warn)
    }

    /// Upstream's `ServiceAccountInfo.UserInfo`. Node claims of a node-bound token must have been
    /// checked against the Node object first.
    pub fn user_info(&self) -> UserInfo {
        let mut extra = BTreeMap::new();
        if let Some(pod) = self
            .pod
            .as_ref()
            .filter(|p| !p.name.is_empty() && !p.uid.is_empty())
        {
            extra.insert(POD_NAME_KEY.to_string(), vec![pod.name.clone()]);
            extra.insert(POD_UID_KEY.to_string(), vec![pod.uid.clone()]);
        }
        if let Some(id) = self.credential_id() {
            extra.insert(CREDENTIAL_ID_KEY.to_string(), vec![id]);
        }
        if let Some(node) = self.node.as_ref().filter(|n| !n.name.is_empty()) {
            extra.insert(NODE_NAME_KEY.to_string(), vec![node.name.clone()]);
            if !node.uid.is_empty() {
                extra.insert(NODE_UID_KEY.to_string(), vec![node.uid.clone()]);
            }
        }
        UserInfo {
            name: make_username(&self.namespace, &self.service_account.name),
            uid: self.service_account.uid.clone(),
            groups: make_group_names(&self.namespace),
            extra,
        }
    }
}

/// Authenticates a bearer token against the API server's own audiences.
pub fn verify(
    verifier: &Verifier,
    config: &AuthenticatorConfig,
    token: &str,
    now: DateTime<Utc>,
) -> Result<ServiceAccountToken, Error> {
    verify_for_audiences(verifier, config, token, now, None)
}

/// As [`verify`], for a TokenReview that names `requested` audiences (`None`: the API server's).
/// [`Error::NotServiceAccountToken`] means another authenticator should get the token.
pub fn verify_for_audiences(
    verifier: &Verifier,
    config: &AuthenticatorConfig,
    token: &str,
    now: DateTime<Utc>,
    requested: Option<&[String]>,
) -> Result<ServiceAccountToken, Error> {
    let unverified_issuer = peek_issuer(token).ok_or(Error::NotServiceAccountToken)?;
    let legacy = config.accept_legacy && unverified_issuer == LEGACY_ISSUER;
    if !legacy && !config.issuers.contains(&unverified_issuer) {
        return Err(Error::NotServiceAccountToken);
    }
    let jws = CompactJws::parse(token).ok_or(Error::NotServiceAccountToken)?;
    verifier.verify_parsed(&jws)?;
    let public: PublicClaims =
        serde_json::from_slice(&jws.payload).map_err(|e| Error::MalformedClaims(e.to_string()))?;
    let issuer_ok = if legacy {
        public.iss == LEGACY_ISSUER
    } else {
        config.issuers.contains(&public.iss)
    };
    if !issuer_ok {
        return Err(Error::InvalidIssuer(public.iss));
    }

    let token_audiences = match public.aud.clone() {
        Some(Audience::One(a)) => vec![a],
        Some(Audience::Many(a)) => a,
        None => Vec::new(),
    };
    let token_audiences = if token_audiences.is_empty() {
        config.api_audiences.clone()
    } else {
        token_audiences
    };
    let requested = requested.unwrap_or(&config.api_audiences);
    let audiences: Vec<String> = token_audiences
        .iter()
        .filter(|a| requested.contains(a))
        .cloned()
        .collect();
    if audiences.is_empty() && !config.api_audiences.is_empty() {
        return Err(Error::InvalidAudience {
            token: go_quote_list(&token_audiences),
            requested: go_quote_list(requested),
        });
    }

    let mut out = ServiceAccountToken {
        kind: TokenKind::Bound,
        issuer: public.iss.clone(),
        subject: public.sub.clone(),
        namespace: String::new(),
        service_account: ObjectRef::default(),
        pod: None,
        secret: None,
        node: None,
        expiry: public.exp,
        issued_at: public.iat,
        not_before: public.nbf,
        warn_after: None,
        id: Some(public.jti.clone()).filter(|j| !j.is_empty()),
        audiences,
    };
    if legacy {
        validate_legacy(&jws.payload, &public, &mut out)?;
    } else {
        validate_bound(&jws.payload, &public, now, &mut out)?;
    }
    Ok(out)
}

fn validate_bound(
    payload: &[u8],
    public: &PublicClaims,
    now: DateTime<Utc>,
    out: &mut ServiceAccountToken,
) -> Result<(), Error> {
    let private: BoundPrivate =
        serde_json::from_slice(payload).map_err(|e| Error::MalformedClaims(e.to_string()))?;
    let now = nanos(now);
    let leeway = i128::from(LEEWAY_SECONDS) * 1_000_000_000;
    let at = |secs: i64| i128::from(secs) * 1_000_000_000;
    if public.nbf.is_some_and(|nbf| now + leeway < at(nbf)) {
        return Err(Error::NotValidYet);
    }
    if public.exp.is_some_and(|exp| now - leeway > at(exp)) {
        return Err(Error::Expired);
    }
    if public.iat.is_some_and(|iat| now + leeway < at(iat)) {
        return Err(Error::IssuedInTheFuture);
    }
    let k8s = private.kubernetes;
    out.namespace = k8s.namespace;
    out.service_account = k8s.serviceaccount;
    out.pod = k8s.pod;
    out.secret = k8s.secret;
    out.node = k8s.node;
    out.warn_after = k8s.warnafter;
    Ok(())
}

fn validate_legacy(
    payload: &[u8],
    public: &PublicClaims,
    out: &mut ServiceAccountToken,
) -> Result<(), Error> {
    let private: LegacyPrivate =
        serde_json::from_slice(payload).map_err(|e| Error::MalformedClaims(e.to_string()))?;
    let missing = |what: &'static str| Err(Error::InvalidClaims(what));
    if public.sub.is_empty() {
        return missing("sub claim is missing");
    }
    if private.namespace.is_empty() {
        return missing("namespace claim is missing");
    }
    if private.secret_name.is_empty() {
        return missing("secretName claim is missing");
    }
    if private.service_account_name.is_empty() {
        return missing("serviceAccountName claim is missing");
    }
    if private.service_account_uid.is_empty() {
        return missing("serviceAccountUID claim is missing");
    }
    match split_username(&public.sub) {
        Some((ns, name)) if ns == private.namespace && name == private.service_account_name => {}
        _ => return missing("sub claim is invalid"),
    }
    out.kind = TokenKind::Legacy {
        secret_name: private.secret_name,
    };
    out.namespace = private.namespace;
    out.service_account = ObjectRef::new(private.service_account_name, private.service_account_uid);
    Ok(())
}

fn nanos(t: DateTime<Utc>) -> i128 {
    i128::from(t.timestamp()) * 1_000_000_000 + i128::from(t.timestamp_subsec_nanos())
}

/// Upstream's `hasCorrectIssuer` read of the unverified payload: `None` when the token is not a
/// three-part JWT whose payload is JSON with a string (or absent) `iss`.
fn peek_issuer(token: &str) -> Option<String> {
    if token.trim_start().starts_with('{') {
        return None;
    }
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Null => Some(String::new()),
        Value::Object(obj) => match obj.get("iss") {
            None | Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => None,
        },
        _ => None,
    }
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// Go leaves a field at its zero value when the JSON holds `null`.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// NumericDate: go-jose parses a float and truncates it to whole seconds.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    // Saturating float-to-int conversion; JSON numbers are always finite.
    Ok(Option::<f64>::deserialize(d)?.map(|f| f as i64))
}

#[derive(Debug, Clone, Default, Deserialize)]
struct PublicClaims {
    #[serde(default, deserialize_with = "nullable")]
    iss: String,
    #[serde(default, deserialize_with = "nullable")]
    sub: String,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    iat: Option<i64>,
    #[serde(default, deserialize_with = "nullable")]
    jti: String,
}

#[derive(Debug, Default, Deserialize)]
struct BoundPrivate {
    #[serde(rename = "kubernetes.io", default, deserialize_with = "nullable")]
    kubernetes: KubernetesClaim,
}

#[derive(Debug, Default, Deserialize)]
struct KubernetesClaim {
    #[serde(default, deserialize_with = "nullable")]
    namespace: String,
    #[serde(default, deserialize_with = "nullable")]
    serviceaccount: ObjectRef,
    #[serde(default)]
    pod: Option<ObjectRef>,
    #[serde(default)]
    secret: Option<ObjectRef>,
    #[serde(default)]
    node: Option<ObjectRef>,
    #[serde(default, deserialize_with = "numeric_date")]
    warnafter: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
struct LegacyPrivate {
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.name",
        default,
        deserialize_with = "nullable"
    )]
    service_account_name: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/service-account.uid",
        default,
        deserialize_with = "nullable"
    )]
    service_account_uid: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/secret.name",
        default,
        deserialize_with = "nullable"
    )]
    secret_name: String,
    #[serde(
        rename = "kubernetes.io/serviceaccount/namespace",
        default,
        deserialize_with = "nullable"
    )]
    namespace: String,
}

/// How long a TokenRequest's token lives, per upstream's TokenREST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenLifetime {
    /// The (possibly shortened) `spec.expirationSeconds`; `status.expirationTimestamp` is
    /// now + this.
    pub expiration_seconds: i64,
    /// What goes into `exp` (longer than the above when the expiration is extended).
    pub token_expiration_seconds: i64,
    /// What goes into `warnafter` (0 for none).
    pub warn_after_seconds: i64,
    /// The API warning to return when the request was shortened.
    pub warning: Option<String>,
}

/// Upstream's expiration handling in TokenREST.Create: clamp to
/// `--service-account-max-token-expiration`, then, for pod-bound tokens asking for exactly
/// [`WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS`] with only API-server audiences, extend the real
/// expiry to `max_extended_expiration_seconds` and warn after the requested time.
pub fn token_request_lifetime(
    requested_seconds: i64,
    max_expiration_seconds: i64,
    extend_expiration: bool,
    max_extended_expiration_seconds: i64,
    pod_bound: bool,
    audiences: &[String],
    api_audiences: &[String],
) -> TokenLifetime {
    let mut expiration = requested_seconds;
    let mut warning = None;
    if max_expiration_seconds > 0 && expiration > max_expiration_seconds {
        warning = Some(format!(
            "requested expiration of {expiration} seconds shortened to {max_expiration_seconds} seconds"
        ));
        expiration = max_expiration_seconds;
    }
    let kube_audiences = audiences.iter().all(|a| api_audiences.contains(a));
    let (token_expiration, warn_after) = if extend_expiration
        && pod_bound
        && expiration == WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS
        && kube_audiences
    {
        (max_extended_expiration_seconds, expiration)
    } else {
        (expiration, 0)
    };
    TokenLifetime {
        expiration_seconds: expiration,
        token_expiration_seconds: token_expiration,
        warn_after_seconds: warn_after,
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use chrono::TimeZone;

    const ISS: &str = "https://kubernetes.default.svc.cluster.local";
    const API_AUD: &str = "https://kubernetes.default.svc.cluster.local";

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).single().expect("time")
    }

    fn signer(pem: &str) -> Signer {
        Signer::new(PrivateKey::from_pem(pem).expect("key"))
    }
    fn rsa() -> Signer {
        signer(include_str!("../testdata/rsa_pkcs1.pem"))
    }
    fn ec() -> Signer {
        signer(include_str!("../testdata/ec_pkcs8.pem"))
    }

    fn config() -> AuthenticatorConfig {
        AuthenticatorConfig {
            issuers: vec![ISS.to_string()],
            api_audiences: vec![API_AUD.to_string()],
            accept_legacy: true,
        }
    }

    fn pod_claims() -> ServiceAccountClaims {
        ServiceAccountClaims::bound(
            ISS,
            "ns1",
            ObjectRef::new("default", "sa-uid"),
            BoundObject::Pod {
                pod: ObjectRef::new("web-0", "pod-uid"),
                node: Some(ObjectRef::new("node-a", "node-uid")),
            },
            vec![API_AUD.to_string()],
            now(),
            3600,
            0,
        )
    }

    #[test]
    fn bound_round_trip_rsa_and_ec() {
        for s in [rsa(), ec()] {
            let claims = pod_claims();
            let token = issue(&s, &claims).expect("issue");
            let verifier = Verifier::new([s.public_key().clone()]);
            let got = verify(&verifier, &config(), &token, now()).expect("verify");
            assert_eq!(got.kind, TokenKind::Bound);
            assert_eq!(got.subject, "system:serviceaccount:ns1:default");
            assert_eq!(got.namespace, "ns1");
            assert_eq!(got.service_account, ObjectRef::new("default", "sa-uid"));
            assert_eq!(got.pod, Some(ObjectRef::new("web-0", "pod-uid")));
            assert_eq!(got.node, Some(ObjectRef::new("node-a", "node-uid")));
            assert_eq!(got.expiry, Some(now().timestamp() + 3600));
            assert_eq!(got.audiences, vec![API_AUD.to_string()]);
            let user = got.user_info();
            assert_eq!(user.name, "system:serviceaccount:ns1:default");
            assert_eq!(user.uid, "sa-uid");
            assert_eq!(
                user.groups,
                vec!["system:serviceaccounts", "system:serviceaccounts:ns1"]
            );
            let jti = claims.id.clone().expect("jti");
            let want: BTreeMap<String, Vec<String>> = [
                (CREDENTIAL_ID_KEY, format!("JTI={jti}")),
                (NODE_NAME_KEY, "node-a".to_string()),
                (NODE_UID_KEY, "node-uid".to_string()),
                (POD_NAME_KEY, "web-0".to_string()),
                (POD_UID_KEY, "pod-uid".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), vec![v]))
            .collect();
            assert_eq!(user.extra, want);
        }
    }

    #[test]
    fn payload_matches_upstream_shape() {
        let mut claims = pod_claims();
        claims.id = Some("id-1".into());
        let payload = claims.to_payload().to_string();
        assert_eq!(
            payload,
            format!(
                r#"{{"aud":"{API_AUD}","exp":1700003600,"iat":1700000000,"iss":"{ISS}","jti":"id-1","kubernetes.io":{{"namespace":"ns1","node":{{"name":"node-a","uid":"node-uid"}},"pod":{{"name":"web-0","uid":"pod-uid"}},"serviceaccount":{{"name":"default","uid":"sa-uid"}}}},"nbf":1700000000,"sub":"system:serviceaccount:ns1:default"}}"#
            )
        );
        let legacy = ServiceAccountClaims::legacy("ns1", ObjectRef::new("sa", "u"), "sa-token-x");
        assert_eq!(
            legacy.to_payload().to_string(),
            r#"{"iss":"kubernetes/serviceaccount","kubernetes.io/serviceaccount/namespace":"ns1","kubernetes.io/serviceaccount/secret.name":"sa-token-x","kubernetes.io/serviceaccount/service-account.name":"sa","kubernetes.io/serviceaccount/service-account.uid":"u","sub":"system:serviceaccount:ns1:sa"}"#
        );
    }

    #[test]
    fn time_checks_use_a_minute_of_leeway() {
        let s = ec();
        let verifier = Verifier::new([s.public_key().clone()]);
        let token = issue(&s, &pod_claims()).expect("issue");
        let at = |secs: i64| now() + chrono::Duration::seconds(secs);
        let cases: [(i64, Result<(), Error>); 6] = [
            (0, Ok(())),
            (3600 + 60, Ok(())),
            (3600 + 61, Err(Error::Expired)),
            (-60, Ok(())),
            // nbf is checked before iat, as go-jose does.
            (-61, Err(Error::NotValidYet)),
            (-100_000, Err(Error::NotValidYet)),
        ];
        for (offset, want) in cases {
            let got = verify(&verifier, &config(), &token, at(offset)).map(|_| ());
            assert_eq!(got, want, "offset {offset}");
        }
        let mut future_iat = pod_claims();
        future_iat.not_before = None;
        future_iat.issued_at = Some(now().timestamp() + 61);
        let token = issue(&s, &future_iat).expect("issue");
        assert_eq!(
            verify(&verifier, &config(), &token, now()),
            Err(Error::IssuedInTheFuture)
        );
    }

    #[test]
    fn audience_and_issuer_rules() {
        let s = rsa();
        let verifier = Verifier::new([s.public_key().clone()]);
        let mut claims = pod_claims();
        claims.audiences = vec!["vault".into(), "other".into()];
        let token = issue(&s, &claims).expect("issue");
        let err = verify(&verifier, &config(), &token, now()).expect_err("aud");
        assert_eq!(
            err.to_string(),
            format!(
                r#"token audiences ["vault" "other"] is invalid for the target audiences ["{API_AUD}"]"#
            )
        );
        // A TokenReview naming the audience accepts it, and reports the intersection.
        let got = verify_for_audiences(
            &verifier,
            &config(),
            &token,
            now(),
            Some(&["other".to_string()]),
        )
        .expect("requested audience");
        assert_eq!(got.audiences, vec!["other".to_string()]);
        // Without --api-audiences, an empty intersection is tolerated.
        let open = AuthenticatorConfig {
            api_audiences: vec![],
            ..config()
        };
        assert!(verify(&verifier, &open, &token, now()).is_ok());

        claims.issuer = "https://evil.example".into();
        let token = issue(&s, &claims).expect("issue");
        assert_eq!(
            verify(&verifier, &config(), &token, now()),
            Err(Error::NotServiceAccountToken)
        );
    }

    #[test]
    fn forged_unknown_and_garbage_tokens_fail_cleanly() {
        let s = rsa();
        let verifier = Verifier::new([s.public_key().clone()]);
        let token = issue(&s, &pod_claims()).expect("issue");

        // Change one signature character. Not the last one: its low bits are base64 padding,
        // where a change makes the encoding invalid rather than the signature wrong.
        let mut forged = token.clone().into_bytes();
        let at = forged.len().saturating_sub(10);
        if let Some(c) = forged.get_mut(at) {
            *c = if *c == b'A' { b'B' } else { b'A' };
        }
        let forged = String::from_utf8(forged).expect("utf8");
        assert_eq!(
            verify(&verifier, &config(), &forged, now()),
            Err(Error::InvalidSignature(crate::jws::CRYPTO_FAILURE.into()))
        );
        // Change the payload but keep the signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        let mut tampered = pod_claims();
        tampered.subject = "system:serviceaccount:kube-system:admin".into();
        if let Some(p) = parts.get_mut(1) {
            *p = URL_SAFE_NO_PAD.encode(tampered.to_payload().to_string());
        }
        assert!(matches!(
            verify(&verifier, &config(), &parts.join("."), now()),
            Err(Error::InvalidSignature(_))
        ));

        let stranger = Verifier::new([ec().public_key().clone()]);
        assert_eq!(
            verify(&stranger, &config(), &token, now()),
            Err(Error::NoKeysFound)
        );

        let iss_payload = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{ISS}"}}"#));
        for garbage in [
            String::new(),
            "abc".into(),
            "a.b.c".into(),
            "{\"alg\":\"none\"}".into(),
            format!("..{iss_payload}"),
            format!("x.{iss_payload}.y"),
            format!("e30.{iss_payload}.!!"),
            format!("e30.{iss_payload}.e30.e30"),
            "....".into(),
            "\u{feff}.\u{0}.\u{ffff}".into(),
        ] {
            let got = verify(&verifier, &config(), &garbage, now());
            assert!(got.is_err(), "{garbage:?}");
        }
        // A header without kid tries every key; a payload of the wrong types is refused.
        let signed = s
            .sign_compact(format!(r#"{{"iss":"{ISS}","exp":"soon"}}"#).as_bytes())
            .expect("sign");
        assert!(matches!(
            verify(&verifier, &config(), &signed, now()),
            Err(Error::MalformedClaims(_))
        ));
    }

    #[test]
    fn legacy_tokens_verify_and_check_their_claims() {
        let s = rsa();
        let verifier = Verifier::new([s.public_key().clone()]);
        let claims = ServiceAccountClaims::legacy(
            "ns1",
            ObjectRef::new("builder", "u1"),
            "builder-token-abc",
        );
        let token = issue(&s, &claims).expect("issue");
        // No exp: valid however late.
        let got = verify(
            &verifier,
            &config(),
            &token,
            now() + chrono::Duration::days(3650),
        )
        .expect("legacy");
        assert_eq!(
            got.kind,
            TokenKind::Legacy {
                secret_name: "builder-token-abc".into()
            }
        );
        assert_eq!(got.user_info().name, "system:serviceaccount:ns1:builder");
        assert_eq!(got.audiences, vec![API_AUD.to_string()]);

        let no_legacy = AuthenticatorConfig {
            accept_legacy: false,
            ..config()
        };
        assert_eq!(
            verify(&verifier, &no_legacy, &token, now()),
            Err(Error::NotServiceAccountToken)
        );

        let mut bad_sub = claims.clone();
        bad_sub.subject = "system:serviceaccount:ns2:builder".into();
        let mut no_secret = claims.clone();
        if let PrivateClaims::Legacy { secret_name, .. } = &mut no_secret.private {
            secret_name.clear();
        }
        for (c, msg) in [
            (bad_sub, "sub claim is invalid"),
            (no_secret, "secretName claim is missing"),
        ] {
            let token = issue(&s, &c).expect("issue");
            assert_eq!(
                verify(&verifier, &config(), &token, now()),
                Err(Error::InvalidClaims(msg))
            );
        }
    }

    #[test]
    fn stale_warning_and_username_helpers() {
        let s = ec();
        let claims = ServiceAccountClaims::bound(
            ISS,
            "ns",
            ObjectRef::new("sa", "u"),
            BoundObject::None,
            vec![],
            now(),
            EXPIRATION_EXTENSION_SECONDS,
            WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS,
        );
        let token = issue(&s, &claims).expect("issue");
        let got = verify(
            &Verifier::new([s.public_key().clone()]),
            &config(),
            &token,
            now(),
        )
        .expect("verify");
        assert_eq!(got.seconds_after_warning(now()), None);
        let later = now() + chrono::Duration::seconds(WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS + 5);
        assert_eq!(got.seconds_after_warning(later), Some(5));

        assert_eq!(
            split_username("system:serviceaccount:ns:sa.x"),
            Some(("ns", "sa.x"))
        );
        for bad in [
            "system:serviceaccount:ns",
            "system:serviceaccount::sa",
            "system:serviceaccount:NS:sa",
            "system:serviceaccount:ns:a:b",
            "system:serviceaccounts:ns:sa",
        ] {
            assert_eq!(split_username(bad), None, "{bad}");
        }
    }

    #[test]
    fn token_request_lifetimes() {
        let api = vec![API_AUD.to_string()];
        let l = token_request_lifetime(
            7200,
            3600,
            false,
            EXPIRATION_EXTENSION_SECONDS,
            true,
            &api,
            &api,
        );
        assert_eq!(l.expiration_seconds, 3600);
        assert_eq!(l.token_expiration_seconds, 3600);
        assert_eq!(
            l.warning.as_deref(),
            Some("requested expiration of 7200 seconds shortened to 3600 seconds")
        );
        let w = WARN_ONLY_BOUND_TOKEN_EXPIRATION_SECONDS;
        let l = token_request_lifetime(w, 0, true, EXPIRATION_EXTENSION_SECONDS, true, &api, &api);
        assert_eq!(
            (
                l.expiration_seconds,
                l.token_expiration_seconds,
                l.warn_after_seconds
            ),
            (w, EXPIRATION_EXTENSION_SECONDS, w)
        );
        // Not pod-bound, or a foreign audience: no extension.
        let l = token_request_lifetime(w, 0, true, EXPIRATION_EXTENSION_SECONDS, false, &api, &api);
        assert_eq!(l.token_expiration_seconds, w);
        let l = token_request_lifetime(
            w,
            0,
            true,
            EXPIRATION_EXTENSION_SECONDS,
            true,
            &["vault".into()],
            &api,
        );
        assert_eq!(l.warn_after_seconds, 0);
    }
}
