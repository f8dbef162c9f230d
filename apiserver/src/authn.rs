//! Authentication from TLS client certificates (`--client-ca-file`): the user is the subject's
//! CN, each O is a group, as upstream's x509 authenticator reads them.
//!
//! Like upstream, the TLS handshake asks for a client certificate but does not judge it (rustls
//! still checks that the client holds the certificate's key); the chain is verified here, per
//! request, so that an expired or foreign certificate answers 401 with a Status instead of a
//! failed handshake.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use http::HeaderMap;
use rustls::pki_types::{CertificateDer, UnixTime};

use crate::chain::{Authenticator, UserInfo};
use crate::errors::{self, ApiResult};

/// What the connection tells about the client, carried in request extensions.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// The loopback-only insecure port.
    pub insecure: bool,
    /// The certificate chain the client presented over TLS.
    pub client_certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// The client's address (for the audit log's sourceIPs).
    pub peer: Option<std::net::SocketAddr>,
}

impl Connection {
    pub fn credentials<'a>(&'a self, headers: &'a HeaderMap) -> Credentials<'a> {
        Credentials {
            headers,
            client_certs: self.client_certs.as_deref().map(Vec::as_slice),
            insecure_port: self.insecure,
        }
    }
}

/// What authenticators look at.
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    pub client_certs: Option<&'a [CertificateDer<'static>]>,
    /// The request came in on the insecure loopback port.
    pub insecure_port: bool,
}

/// Asks every client for a certificate and accepts whatever it offers at the TLS layer; the
/// chain is judged per request. The daemons' secure port uses the same verifier.
pub use serving::authn::RequestClientCert;

/// Reads every certificate of a PEM file.
pub fn read_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs: Vec<CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} holds an invalid PEM certificate", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!("{} holds no certificate", path.display());
    }
    Ok(certs)
}

/// Verifies client certificates against `--client-ca-file`.
pub struct X509Authenticator {
    anchors: Vec<rustls::pki_types::TrustAnchor<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl X509Authenticator {
    pub fn new(
        ca_certs: &[CertificateDer<'static>],
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> anyhow::Result<Self> {
        let anchors = ca_certs
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .context("--client-ca-file holds a certificate that cannot be a trust anchor")?;
        Ok(X509Authenticator { anchors, provider })
    }
}

impl Authenticator for X509Authenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        let Some(chain) = credentials.client_certs.filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let Some((leaf, intermediates)) = chain.split_first() else {
            return Ok(None);
        };
        let refused = |why: String| {
            tracing::info!(reason = %why, "client certificate refused");
            errors::unauthorized()
        };
        let end_entity =
            webpki::EndEntityCert::try_from(leaf).map_err(|e| refused(format!("{e:?}")))?;
        end_entity
            .verify_for_usage(
                self.provider.signature_verification_algorithms.all,
                &self.anchors,
                intermediates,
                UnixTime::now(),
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(|e| refused(format!("{e:?}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| refused(e.to_string()))?;
        let subject = parsed.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        if name.is_empty() {
            return Err(refused("the certificate has no common name".into()));
        }
        let mut groups: Vec<String> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        groups.push("system:authenticated".into());
        Ok(Some(UserInfo { name, groups }))
    }
}

/// The bearer token of a request (`Authorization: Bearer <token>`), if it carries one.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Static tokens from `--token-auth-file` (upstream's CSV: token,user,uid,"group1,group2").
pub struct TokenFileAuthenticator {
    file: authn_tokens::TokenFile,
}

impl TokenFileAuthenticator {
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let data =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let file = authn_tokens::TokenFile::parse(&path.display().to_string(), &data)
            .with_context(|| format!("--token-auth-file {}", path.display()))?;
        for warning in &file.warnings {
            tracing::warn!(%warning, "token file");
        }
        Ok(TokenFileAuthenticator { file })
    }
}

impl Authenticator for TokenFileAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        let Some(token) = bearer_token(credentials.headers) else {
            return Ok(None);
        };
        Ok(self.file.authenticate(token).map(|user| {
            let mut groups = user.groups.clone();
            groups.retain(|g| !g.is_empty());
            groups.push("system:authenticated".into());
            UserInfo {
                name: user.name.clone(),
                groups,
            }
        }))
    }
}

/// A bearer token no authenticator accepted is refused (401), never treated as anonymous.
pub struct RejectUnknownBearer;

impl Authenticator for RejectUnknownBearer {
    fn authenticate(&self, credentials: &Credentials<'_>) -> ApiResult<Option<UserInfo>> {
        if bearer_token(credentials.headers).is_some() {
            return Err(errors::unauthorized());
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<rustls::crypto::CryptoProvider> {
        Arc::new(rustls::crypto::ring::default_provider())
    }

    struct Ca {
        params: rcgen::CertificateParams,
        cert: rcgen::Certificate,
        key: rcgen::KeyPair,
    }

    fn ca() -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        let cert = params.self_signed(&key).unwrap();
        Ca { params, cert, key }
    }

    fn ca_other() -> Ca {
        ca()
    }

    fn client(ca: &Ca, cn: &str, orgs: &[&str]) -> CertificateDer<'static> {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        for o in orgs {
            params
                .distinguished_name
                .push(rcgen::DnType::OrganizationName, *o);
        }
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let issuer = rcgen::Issuer::from_params(&ca.params, &ca.key);
        params.signed_by(&key, &issuer).unwrap().der().clone()
    }

    #[test]
    fn the_common_name_is_the_user_and_organizations_are_groups() {
        let ca = ca();
        let auth = X509Authenticator::new(&[ca.cert.der().clone()], provider()).unwrap();
        let cert = client(&ca, "alice", &["dev"]);
        let headers = HeaderMap::new();
        let chain = [cert];
        let user = auth
            .authenticate(&Credentials {
                headers: &headers,
                client_certs: Some(&chain),
                insecure_port: false,
            })
            .unwrap()
            .unwrap();
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["dev", "system:authenticated"]);
    }

    #[test]
    fn a_certificate_from_another_ca_is_unauthorized() {
        let ca = ca();
        let other = ca_other();
        let auth = X509Authenticator::new(&[ca.cert.der().clone()], provider()).unwrap();
        let cert = client(&other, "mallory", &[]);
        let headers = HeaderMap::new();
        let chain = [cert];
        let err = auth
            .authenticate(&Credentials {
                headers: &headers,
                client_certs: Some(&chain),
                insecure_port: false,
            })
            .unwrap_err();
        assert_eq!(err.code, 401);
        let none = auth
            .authenticate(&Credentials {
                headers: &headers,
                client_certs: None,
                insecure_port: false,
            })
            .unwrap();
        assert!(
            none.is_none(),
            "no certificate: another authenticator may decide"
        );
    }
}
