//! Service-account tokens: the TokenRequest API (`serviceaccounts/<name>/token`) issuing bound,
//! expiring JWTs (`--service-account-signing-key-file`, `--service-account-issuer`), and the
//! authenticator that accepts them (`--service-account-key-file`, `--api-audiences`) while the
//! service account and the object the token is bound to still exist with the same UID.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use authn_tokens::serviceaccount::{
    self, AuthenticatorConfig, BoundObject, ObjectRef, ServiceAccountClaims, TokenKind,
};
use serde_json::{json, Value};

use crate::authn::{bearer_token, Credentials};
use crate::cache::Caches;
use crate::chain::{Authenticator, UserInfo};
use crate::errors::{self, ApiResult};
use crate::object;
use crate::resources::{find, Resource};

/// What issuing and checking tokens needs from the flags.
#[derive(Clone, Debug, Default)]
pub struct TokenConfig {
    pub signing_key_file: Option<PathBuf>,
    pub key_files: Vec<PathBuf>,
    /// The first one signs; all are accepted.
    pub issuers: Vec<String>,
    /// Defaults to the issuers.
    pub api_audiences: Vec<String>,
    /// `--service-account-max-token-expiration` in seconds (0: no maximum).
    pub max_expiration_seconds: i64,
}

pub struct TokenIssuer {
    signer: authn_tokens::Signer,
    issuer: String,
    api_audiences: Vec<String>,
    max_expiration_seconds: i64,
}

impl TokenIssuer {
    pub fn from_config(config: &TokenConfig) -> anyhow::Result<Option<TokenIssuer>> {
        let Some(path) = &config.signing_key_file else {
            return Ok(None);
        };
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let key = authn_tokens::PrivateKey::from_pem(&pem)
            .with_context(|| format!("--service-account-signing-key-file {}", path.display()))?;
        let issuer = config.issuers.first().cloned().context(
            "--service-account-issuer is required with --service-account-signing-key-file",
        )?;
        Ok(Some(TokenIssuer {
            signer: authn_tokens::Signer::new(key),
            issuer,
            api_audiences: audiences(config),
            max_expiration_seconds: config.max_expiration_seconds,
        }))
    }
}

fn audiences(config: &TokenConfig) -> Vec<String> {
    if config.api_audiences.is_empty() {
        config.issuers.clone()
    } else {
        config.api_audiences.clone()
    }
}

/// `POST .../serviceaccounts/<name>/token`: a TokenRequest answered with a signed token.
pub fn token_request(
    issuer: Option<&TokenIssuer>,
    caches: &Caches,
    namespace: &str,
    name: &str,
    request: &Value,
) -> ApiResult<Value> {
    let Some(issuer) = issuer else {
        return Err(errors::not_found_message(
            "the TokenRequest API is not enabled: start kube-apiserver with --service-account-signing-key-file and --service-account-issuer",
        ));
    };
    let sa_resource = resource("serviceaccounts")?;
    let sa = cached(caches, sa_resource, namespace, name)
        .ok_or_else(|| errors::not_found(sa_resource, name))?;
    let spec = request.get("spec").cloned().unwrap_or(Value::Null);
    let requested = spec
        .get("expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if requested < 600 {
        return Err(errors::invalid_value_message(format!(
            "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.expirationSeconds: Invalid value: {requested}: may not specify a duration less than 10 minutes"
        )));
    }
    let expiration = if issuer.max_expiration_seconds > 0 {
        requested.min(issuer.max_expiration_seconds)
    } else {
        requested
    };
    let audiences: Vec<String> = match spec.get("audiences").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => issuer.api_audiences.clone(),
    };
    let bound = match spec.get("boundObjectRef").filter(|v| v.is_object()) {
        None => BoundObject::None,
        Some(reference) => {
            let kind = reference.get("kind").and_then(Value::as_str).unwrap_or("");
            let bound_name = reference.get("name").and_then(Value::as_str).unwrap_or("");
            let wanted_uid = reference.get("uid").and_then(Value::as_str).unwrap_or("");
            let plural = match kind {
                "Pod" => "pods",
                "Secret" => "secrets",
                other => {
                    return Err(errors::invalid_value_message(format!(
                        "TokenRequest.authentication.k8s.io \"{name}\" is invalid: spec.boundObjectRef.kind: Unsupported value: \"{other}\": supported values: \"Pod\", \"Secret\""
                    )))
                }
            };
            let r = resource(plural)?;
            let obj = cached(caches, r, namespace, bound_name)
                .ok_or_else(|| errors::not_found(r, bound_name))?;
            let uid = object::uid(&obj).to_string();
            if !wanted_uid.is_empty() && wanted_uid != uid {
                return Err(errors::conflict(
                    r,
                    bound_name,
                    &format!("the UID in the bound object reference ({wanted_uid}) does not match the UID in record. The object might have been deleted and then recreated"),
                ));
            }
            let reference = ObjectRef::new(bound_name, uid);
            if kind == "Pod" {
                BoundObject::Pod {
                    pod: reference,
                    node: None,
                }
            } else {
                BoundObject::Secret(reference)
            }
        }
    };
    let now = chrono::Utc::now();
    let claims = ServiceAccountClaims::bound(
        issuer.issuer.clone(),
        namespace,
        ObjectRef::new(name, object::uid(&sa)),
        bound,
        audiences.clone(),
        now,
        expiration,
        0,
    );
    let token = serviceaccount::issue(&issuer.signer, &claims).map_err(errors::internal)?;
    let expires = now + chrono::Duration::seconds(expiration);
    let mut spec = spec;
    spec["audiences"] = json!(audiences);
    spec["expirationSeconds"] = json!(expiration);
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string()},
    }))
}

fn resource(plural: &str) -> ApiResult<&'static Resource> {
    find("", "v1", plural).ok_or_else(|| errors::internal(format!("{plural} is not served")))
}

fn cached(caches: &Caches, resource: &Resource, namespace: &str, name: &str) -> Option<Value> {
    caches.object(resource, namespace, name)
}

/// Accepts tokens signed by a `--service-account-key-file` key whose service account (and
/// bound pod or secret) still exist with the UIDs the token names.
pub struct ServiceAccountAuthenticator {
    verifier: authn_tokens::Verifier,
    config: AuthenticatorConfig,
    caches: Arc<Caches>,
}

impl ServiceAccountAuthenticator {
    pub fn from_config(config: &TokenConfig, caches: Arc<Caches>) -> anyhow::Result<Option<Self>> {
        if config.key_files.is_empty() {
            return Ok(None);
        }
        let mut keys = Vec::new();
        for path in &config.key_files {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            keys.extend(
                authn_tokens::parse_public_keys_pem(&pem)
                    .with_context(|| format!("--service-account-key-file {}", path.display()))?,
            );
        }
        Ok(Some(ServiceAccountAuthenticator {
            verifier: authn_tokens::Verifier::new(keys),
            config: AuthenticatorConfig {
                issuers: config.issuers.clone(),
                api_audiences: audiences(config),
                accept_legacy: true,
            },
            caches,
        }))
    }

    /// The object a bound token names must still exist with the same UID, and not be deleted.
    fn still_there(&self, plural: &str, namespace: &str, reference: &ObjectRef) -> bool {
        let Ok(r) = resource(plural) else {
            return false;
        };
        cached(&self.caches, r, namespace, &reference.name)
            .is_some_and(|obj| object::uid(&obj) == reference.uid && !object::is_deleting(&obj))
    }
}

impl Authenticator for ServiceAccountAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        let Some(token) = bearer_token(credentials.headers) else {
            return Ok(None);
        };
        let verified =
            match serviceaccount::verify(&self.verifier, &self.config, token, chrono::Utc::now()) {
                Ok(verified) => verified,
                Err(authn_tokens::Error::NotServiceAccountToken) => return Ok(None),
                Err(err) => {
                    tracing::info!(%err, "service-account token refused");
                    return Err(errors::unauthorized());
                }
            };
        let ns = verified.namespace.clone();
        if !self.still_there("serviceaccounts", &ns, &verified.service_account) {
            return Err(errors::unauthorized());
        }
        let bound_ok = match &verified.kind {
            TokenKind::Legacy { .. } => verified
                .secret
                .as_ref()
                .is_some_and(|s| self.still_there("secrets", &ns, s)),
            TokenKind::Bound => {
                verified
                    .pod
                    .as_ref()
                    .is_none_or(|p| self.still_there("pods", &ns, p))
                    && verified
                        .secret
                        .as_ref()
                        .is_none_or(|s| self.still_there("secrets", &ns, s))
            }
        };
        if !bound_ok {
            return Err(errors::unauthorized());
        }
        let user = verified.user_info();
        let mut groups = user.groups;
        groups.push("system:authenticated".into());
        Ok(Some(UserInfo {
            name: user.name,
            groups,
        }))
    }
}

/// Bootstrap tokens (`<id>.<secret>`, backed by `bootstrap.kubernetes.io/token` Secrets in
/// kube-system) authenticate as `system:bootstrap:<id>` in `system:bootstrappers`, for node join.
pub struct BootstrapTokenAuthenticator {
    caches: Arc<Caches>,
}

impl BootstrapTokenAuthenticator {
    pub fn new(caches: Arc<Caches>) -> Self {
        BootstrapTokenAuthenticator { caches }
    }
}

impl Authenticator for BootstrapTokenAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        let Some(token) = bearer_token(credentials.headers) else {
            return Ok(None);
        };
        let Ok((id, _)) = authn_tokens::bootstrap::parse_token(token) else {
            return Ok(None);
        };
        let secrets = resource("secrets")?;
        let name = authn_tokens::bootstrap::secret_name(id);
        let Some(secret) = cached(&self.caches, secrets, "kube-system", &name) else {
            tracing::info!(token_id = id, "no bootstrap token secret");
            return Err(errors::unauthorized());
        };
        let data: std::collections::BTreeMap<String, Vec<u8>> = secret
            .get("data")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        let text = v.as_str()?;
                        let bytes = base64::Engine::decode(
                            &base64::engine::general_purpose::STANDARD,
                            text,
                        )
                        .ok()?;
                        Some((k.clone(), bytes))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let view = authn_tokens::bootstrap::BootstrapSecret {
            name: &name,
            type_: secret.get("type").and_then(Value::as_str).unwrap_or(""),
            data: &data,
            deleting: object::is_deleting(&secret),
        };
        match authn_tokens::bootstrap::authenticate(token, &view, chrono::Utc::now()) {
            Ok(user) => {
                let mut groups = user.groups;
                groups.push("system:authenticated".into());
                Ok(Some(UserInfo {
                    name: user.name,
                    groups,
                }))
            }
            Err(err) => {
                tracing::info!(%err, "bootstrap token refused");
                Err(errors::unauthorized())
            }
        }
    }
}
