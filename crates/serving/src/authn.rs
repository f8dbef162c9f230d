//! Who is asking, on the secure port: upstream's delegating authenticator
//! (`k8s.io/apiserver/pkg/authentication/authenticatorfactory`), in its order:
//!
//! 1. the front proxy (`--requestheader-client-ca-file`): a client certificate from the proxy's
//!    CA, with an allowed common name, vouches for the user named in `X-Remote-User`;
//! 2. a client certificate from `--client-ca-file`: the user is the subject's CN, each O a group;
//! 3. a bearer token, asked of a [`TokenAuthenticator`] (a TokenReview to the apiserver);
//!
//! the first that succeeds wins and gains `system:authenticated`. A request that carries none of
//! these credentials is `system:anonymous` in `system:unauthenticated`; one whose credentials are
//! all refused, or that any method failed on, is refused (401), as upstream's fail-on-error union.
//!
//! Like upstream, the TLS handshake asks for a certificate without judging it ([`RequestClientCert`]):
//! chains are verified here, per request, so a foreign certificate answers 401 instead of
//! breaking the handshake.

use std::collections::BTreeMap;
use std::sync::Arc;

use http::HeaderMap;
use rustls::client::danger::HandshakeSignatureValid;
pub use rustls::pki_types::CertificateDer;
use rustls::pki_types::{TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::AuthError;

/// The anonymous user and group upstream gives a request without credentials.
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// An authenticated (or anonymous) user, as upstream's `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS_USER.into(),
            groups: vec![UNAUTHENTICATED_GROUP.into()],
            ..UserInfo::default()
        }
    }
}

/// Checks bearer tokens (upstream's `authenticator.Token`), e.g. by TokenReview.
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync {
    /// `Ok(Some(user))` for a valid token, `Ok(None)` for a token the authority does not know,
    /// `Err` when it said why it refused or could not be asked.
    async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthError>;
}

/// What a request carries that authenticators read.
pub struct Credentials<'a> {
    pub headers: &'a HeaderMap,
    /// The chain the client presented in the TLS handshake (leaf first).
    pub client_certs: Option<&'a [CertificateDer<'static>]>,
}

/// The front proxy's settings (upstream's `RequestHeaderConfig`).
#[derive(Clone, Debug)]
pub struct RequestHeaderConfig {
    pub client_ca: Vec<CertificateDer<'static>>,
    /// Common names the proxy's certificate may have; empty: any from the CA.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    pub extra_header_prefixes: Vec<String>,
}

/// The secure port's authenticator: the methods configured, then anonymous (when allowed).
pub struct Authentication {
    request_header: Option<(CaVerifier, RequestHeaderConfig)>,
    client_ca: Option<CaVerifier>,
    token: Option<Arc<dyn TokenAuthenticator>>,
    anonymous: bool,
}

impl Authentication {
    /// `request_header`: the front proxy; `client_ca`: `--client-ca-file`'s certificates; `token`:
    /// bearer tokens; `anonymous`: whether a request without credentials is `system:anonymous`
    /// (upstream's delegating daemons always allow it).
    pub fn new(
        request_header: Option<RequestHeaderConfig>,
        client_ca: Option<&[CertificateDer<'static>]>,
        token: Option<Arc<dyn TokenAuthenticator>>,
        anonymous: bool,
    ) -> Result<Authentication, AuthError> {
        let request_header = match request_header {
            Some(config) => Some((
                CaVerifier::new(&config.client_ca, "--requestheader-client-ca-file")?,
                config,
            )),
            None => None,
        };
        let client_ca = match client_ca {
            Some(certs) => Some(CaVerifier::new(certs, "--client-ca-file")?),
            None => None,
        };
        Ok(Authentication {
            request_header,
            client_ca,
            token,
            anonymous,
        })
    }

    /// The CA certificates a TLS handshake should ask clients for; empty: ask for none.
    pub fn client_cas(&self) -> Vec<CertificateDer<'static>> {
        let mut cas = Vec::new();
        if let Some(v) = &self.client_ca {
            cas.extend(v.certs.iter().cloned());
        }
        if let Some((v, _)) = &self.request_header {
            cas.extend(v.certs.iter().cloned());
        }
        cas
    }

    /// The request's user; `Err` answers 401.
    pub async fn authenticate(&self, credentials: &Credentials<'_>) -> Result<UserInfo, AuthError> {
        let mut errors: Vec<AuthError> = Vec::new();
        let mut found = None;
        if let Some((verifier, config)) = &self.request_header {
            match front_proxy_user(verifier, config, credentials) {
                Ok(user) => found = user,
                Err(err) => errors.push(err),
            }
        }
        if found.is_none() {
            if let Some(verifier) = &self.client_ca {
                match certificate_user(verifier, credentials.client_certs) {
                    Ok(user) => found = user,
                    Err(err) => errors.push(err),
                }
            }
        }
        if found.is_none() {
            if let (Some(token), Some(authenticator)) =
                (bearer_token(credentials.headers), &self.token)
            {
                match authenticator.authenticate_token(token).await {
                    Ok(Some(user)) => found = Some(user),
                    Ok(None) => errors.push(AuthError::Rejected("invalid bearer token".into())),
                    Err(err) => errors.push(err),
                }
            }
        }
        if let Some(mut user) = found {
            if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
                user.groups.push(AUTHENTICATED_GROUP.into());
            }
            return Ok(user);
        }
        if let Some(err) = aggregate(errors) {
            return Err(err);
        }
        if self.anonymous {
            return Ok(UserInfo::anonymous());
        }
        Err(AuthError::Rejected("no credentials".into()))
    }
}

/// Several failures as one, in upstream's aggregate shape (`[a, b]`); an unavailable method
/// makes the whole unavailable.
fn aggregate(mut errors: Vec<AuthError>) -> Option<AuthError> {
    match errors.len() {
        0 => None,
        1 => errors.pop(),
        _ => {
            let unavailable = errors
                .iter()
                .any(|e| matches!(e, AuthError::Unavailable(_)));
            let text = format!(
                "[{}]",
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Some(if unavailable {
                AuthError::Unavailable(text)
            } else {
                AuthError::Rejected(text)
            })
        }
    }
}

/// Every certificate of a PEM CA bundle (`--client-ca-file`); `what` names it in errors.
pub fn parse_ca_bundle(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let certs: Vec<CertificateDer<'static>> =
        rustls::pki_types::pem::PemObject::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|err| {
                AuthError::Config(format!("{what} holds an invalid PEM certificate: {err}"))
            })?;
    if certs.is_empty() {
        return Err(AuthError::Config(format!("{what} holds no certificate")));
    }
    Ok(certs)
}

/// [`parse_ca_bundle`] of a file.
pub fn read_ca_bundle(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, AuthError> {
    let pem = std::fs::read(path)
        .map_err(|err| AuthError::Config(format!("reading {}: {err}", path.display())))?;
    parse_ca_bundle(&pem, &path.display().to_string())
}

/// The bearer token as upstream's `bearertoken` reads it: `Authorization: Bearer <token>`
/// (scheme case-insensitive; anything after a second space ignored); an empty token or another
/// scheme is no token at all.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    Some(token)
}

/// Verifies chains against one CA bundle, for TLS client authentication.
struct CaVerifier {
    certs: Vec<CertificateDer<'static>>,
    anchors: Vec<TrustAnchor<'static>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl CaVerifier {
    fn new(certs: &[CertificateDer<'static>], flag: &str) -> Result<CaVerifier, AuthError> {
        let anchors = certs
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| {
                AuthError::Config(format!(
                    "{flag} holds a certificate that cannot be a trust anchor: {err}"
                ))
            })?;
        if anchors.is_empty() {
            return Err(AuthError::Config(format!("{flag} holds no certificate")));
        }
        Ok(CaVerifier {
            certs: certs.to_vec(),
            anchors,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        })
    }

    /// The verified leaf's subject (CN, Os); `Ok(None)` when no certificate was presented.
    fn verify(
        &self,
        chain: Option<&[CertificateDer<'static>]>,
    ) -> Result<Option<(String, Vec<String>)>, AuthError> {
        let Some((leaf, intermediates)) = chain.and_then(|c| c.split_first()) else {
            return Ok(None);
        };
        let refused =
            |why: String| AuthError::Rejected(format!("verifying certificate failed: {why}"));
        let end_entity =
            webpki::EndEntityCert::try_from(leaf).map_err(|e| refused(format!("{e}")))?;
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
            .map_err(|e| refused(format!("{e}")))?;
        let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| refused(e.to_string()))?;
        let subject = parsed.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        let organizations = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        Ok(Some((name, organizations)))
    }
}

/// Upstream's x509 authenticator with `CommonNameUserConversion`: a verified certificate without
/// a common name authenticates no one (and is no error).
fn certificate_user(
    verifier: &CaVerifier,
    chain: Option<&[CertificateDer<'static>]>,
) -> Result<Option<UserInfo>, AuthError> {
    Ok(match verifier.verify(chain)? {
        Some((name, groups)) if !name.is_empty() => Some(UserInfo {
            name,
            groups,
            ..UserInfo::default()
        }),
        _ => None,
    })
}

/// Upstream's request-header authenticator behind its CA verifier.
fn front_proxy_user(
    verifier: &CaVerifier,
    config: &RequestHeaderConfig,
    credentials: &Credentials<'_>,
) -> Result<Option<UserInfo>, AuthError> {
    let Some((common_name, _)) = verifier.verify(credentials.client_certs)? else {
        return Ok(None);
    };
    if !config.allowed_names.is_empty() && !config.allowed_names.contains(&common_name) {
        return Err(AuthError::Rejected(format!(
            "x509: subject with cn={common_name} is not in the allowed list"
        )));
    }
    let headers = credentials.headers;
    let Some(name) = config
        .username_headers
        .iter()
        .filter_map(|h| headers.get(h.as_str()))
        .filter_map(|v| v.to_str().ok())
        .find(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let groups = config
        .group_headers
        .iter()
        .flat_map(|h| headers.get_all(h.as_str()).iter())
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let mut extra: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for prefix in &config.extra_header_prefixes {
        let prefix = prefix.to_ascii_lowercase();
        for (header, value) in headers {
            // Header names are already lower case in `http`.
            let Some(key) = header.as_str().strip_prefix(prefix.as_str()) else {
                continue;
            };
            if let Ok(value) = value.to_str() {
                extra
                    .entry(unescape_extra_key(key))
                    .or_default()
                    .push(value.to_string());
            }
        }
    }
    Ok(Some(UserInfo {
        name: name.to_string(),
        uid: String::new(),
        groups,
        extra,
    }))
}

/// Extra keys travel percent-encoded in header names (`X-Remote-Extra-Example.com%2fKey`);
/// a key that does not decode is kept as sent, as upstream does.
fn unescape_extra_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                None => return encoded.to_string(),
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| encoded.to_string())
}

/// Asks every client for a certificate from the given CAs and accepts whatever it offers at the
/// TLS layer (rustls still checks that the client holds the certificate's key); the chain is
/// judged per request by [`Authentication`]. Go's `tls.RequestClientCert`.
#[derive(Debug)]
pub struct RequestClientCert {
    hints: Vec<DistinguishedName>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl RequestClientCert {
    pub fn new(
        ca_certs: &[CertificateDer<'static>],
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> Self {
        let hints = ca_certs
            .iter()
            .filter_map(|c| webpki::anchor_from_trusted_cert(c).ok())
            .map(|a| DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect();
        RequestClientCert { hints, provider }
    }
}

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName as Dn, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair,
    };
    use std::sync::Mutex;

    fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = Dn::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("{e}"))
    }

    fn client_cert(
        ca: &CertifiedIssuer<'static, KeyPair>,
        cn: Option<&str>,
        org: Option<&str>,
    ) -> Vec<CertificateDer<'static>> {
        let mut params = CertificateParams::default();
        params.distinguished_name = Dn::new();
        if let Some(cn) = cn {
            params.distinguished_name.push(DnType::CommonName, cn);
        }
        if let Some(org) = org {
            params
                .distinguished_name
                .push(DnType::OrganizationName, org);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        let cert = params.signed_by(&key, ca).unwrap_or_else(|e| panic!("{e}"));
        vec![cert.der().clone()]
    }

    /// A token authority that knows one token and counts the questions.
    struct Tokens {
        asked: Mutex<Vec<String>>,
        down: bool,
    }

    #[async_trait::async_trait]
    impl TokenAuthenticator for Tokens {
        async fn authenticate_token(&self, token: &str) -> Result<Option<UserInfo>, AuthError> {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(token.to_string());
            if self.down {
                return Err(AuthError::Unavailable("connection refused".into()));
            }
            Ok((token == "good").then(|| UserInfo {
                name: "tina".into(),
                uid: "uid-tina".into(),
                groups: vec!["testers".into()],
                ..UserInfo::default()
            }))
        }
    }

    fn tokens(down: bool) -> Arc<Tokens> {
        Arc::new(Tokens {
            asked: Mutex::new(Vec::new()),
            down,
        })
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name =
                http::HeaderName::from_bytes(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            let value = http::HeaderValue::from_str(value).unwrap_or_else(|e| panic!("{e}"));
            map.append(name, value);
        }
        map
    }

    async fn who(
        auth: &Authentication,
        headers: &HeaderMap,
        certs: Option<&[CertificateDer<'static>]>,
    ) -> Result<UserInfo, AuthError> {
        auth.authenticate(&Credentials {
            headers,
            client_certs: certs,
        })
        .await
    }

    #[test]
    fn bearer_tokens_are_read_as_upstream() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Bearer abc", Some("abc")),
            ("bearer abc", Some("abc")),
            ("  Bearer abc  ", Some("abc")),
            ("Bearer abc def", Some("abc")),
            ("Bearer  abc", None),
            ("Bearer", None),
            ("Basic dXNlcjpwdw==", None),
            ("", None),
        ];
        for (value, want) in cases {
            let map = headers(&[("authorization", value)]);
            assert_eq!(bearer_token(&map), *want, "{value:?}");
        }
        assert_eq!(bearer_token(&HeaderMap::new()), None);
    }

    #[tokio::test]
    async fn no_credentials_is_anonymous_and_tokens_are_reviewed() {
        let authority = tokens(false);
        let auth = Authentication::new(None, None, Some(authority.clone()), true)
            .unwrap_or_else(|e| panic!("{e}"));
        let anonymous = who(&auth, &HeaderMap::new(), None).await;
        assert_eq!(anonymous.ok(), Some(UserInfo::anonymous()));
        assert_eq!(UserInfo::anonymous().name, "system:anonymous");
        assert_eq!(UserInfo::anonymous().groups, vec!["system:unauthenticated"]);
        // Another scheme is no credential at all.
        let basic = who(&auth, &headers(&[("authorization", "Basic eDp5")]), None).await;
        assert_eq!(basic.ok(), Some(UserInfo::anonymous()));

        let tina = who(&auth, &headers(&[("authorization", "Bearer good")]), None).await;
        let tina = tina.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(tina.name, "tina");
        assert_eq!(tina.uid, "uid-tina");
        assert_eq!(tina.groups, vec!["testers", "system:authenticated"]);

        // A refused token is refused (401), never anonymous.
        let bad = who(&auth, &headers(&[("authorization", "Bearer bad")]), None).await;
        assert!(
            matches!(bad, Err(AuthError::Rejected(ref m)) if m == "invalid bearer token"),
            "{bad:?}"
        );
        assert_eq!(
            *authority.asked.lock().unwrap_or_else(|p| p.into_inner()),
            vec!["good", "bad"]
        );
    }

    #[tokio::test]
    async fn an_unreachable_token_authority_refuses_and_no_authority_means_no_tokens() {
        let auth = Authentication::new(None, None, Some(tokens(true)), true)
            .unwrap_or_else(|e| panic!("{e}"));
        let down = who(&auth, &headers(&[("authorization", "Bearer good")]), None).await;
        assert!(matches!(down, Err(AuthError::Unavailable(_))), "{down:?}");
        // Without a token authenticator (no --authentication-kubeconfig) a token proves nothing,
        // and the request is anonymous, as upstream's delegating authenticator.
        let auth = Authentication::new(None, None, None, true).unwrap_or_else(|e| panic!("{e}"));
        let user = who(&auth, &headers(&[("authorization", "Bearer good")]), None).await;
        assert_eq!(user.ok(), Some(UserInfo::anonymous()));
        let auth = Authentication::new(None, None, None, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(who(&auth, &HeaderMap::new(), None).await.is_err());
    }

    #[tokio::test]
    async fn client_certificates_name_the_user_and_groups() {
        let ca = ca("client-ca");
        let other = ca_other();
        let auth = Authentication::new(None, Some(&[ca.der().clone()]), Some(tokens(false)), true)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(auth.client_cas().len(), 1);

        let chain = client_cert(&ca, Some("alice"), Some("system:masters"));
        let alice = who(&auth, &HeaderMap::new(), Some(&chain)).await;
        let alice = alice.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.groups, vec!["system:masters", "system:authenticated"]);

        // A certificate from another CA is refused (401), not anonymous...
        let foreign = client_cert(&other, Some("mallory"), None);
        let refused = who(&auth, &HeaderMap::new(), Some(&foreign)).await;
        assert!(
            matches!(refused, Err(AuthError::Rejected(_))),
            "{refused:?}"
        );
        // ...unless another credential succeeds.
        let with_token = who(
            &auth,
            &headers(&[("authorization", "Bearer good")]),
            Some(&foreign),
        )
        .await;
        assert_eq!(with_token.map(|u| u.name).ok().as_deref(), Some("tina"));

        // A verified certificate without a common name authenticates no one.
        let nameless = client_cert(&ca, None, Some("team"));
        let anonymous = who(&auth, &HeaderMap::new(), Some(&nameless)).await;
        assert_eq!(anonymous.ok(), Some(UserInfo::anonymous()));
    }

    fn ca_other() -> CertifiedIssuer<'static, KeyPair> {
        ca("someone-else")
    }

    #[tokio::test]
    async fn the_front_proxy_vouches_for_header_users() {
        let proxy_ca = ca("front-proxy-ca");
        let config = RequestHeaderConfig {
            client_ca: vec![proxy_ca.der().clone()],
            allowed_names: vec!["front-proxy-client".into()],
            username_headers: vec!["X-Remote-User".into()],
            group_headers: vec!["X-Remote-Group".into()],
            extra_header_prefixes: vec!["X-Remote-Extra-".into()],
        };
        let auth =
            Authentication::new(Some(config), None, None, true).unwrap_or_else(|e| panic!("{e}"));
        let proxy = client_cert(&proxy_ca, Some("front-proxy-client"), None);
        let request = headers(&[
            ("x-remote-user", "bob"),
            ("x-remote-group", "devs"),
            ("x-remote-group", "ops"),
            ("x-remote-extra-scopes", "a"),
            ("x-remote-extra-example.com%2fteam", "b"),
        ]);
        let bob = who(&auth, &request, Some(&proxy))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bob.name, "bob");
        assert_eq!(bob.groups, vec!["devs", "ops", "system:authenticated"]);
        assert_eq!(bob.extra.get("scopes"), Some(&vec!["a".to_string()]));
        assert_eq!(
            bob.extra.get("example.com/team"),
            Some(&vec!["b".to_string()])
        );

        // Headers without the proxy's certificate are ignored.
        let plain = who(&auth, &request, None).await;
        assert_eq!(plain.ok(), Some(UserInfo::anonymous()));
        // A proxy certificate with another name is refused.
        let impostor = client_cert(&proxy_ca, Some("someone"), None);
        let refused = who(&auth, &request, Some(&impostor)).await;
        assert!(
            matches!(refused, Err(AuthError::Rejected(ref m)) if m.contains("cn=someone is not in the allowed list")),
            "{refused:?}"
        );
    }

    #[test]
    fn extra_keys_are_percent_decoded_or_kept() {
        assert_eq!(unescape_extra_key("example.com%2fteam"), "example.com/team");
        assert_eq!(unescape_extra_key("plain"), "plain");
        assert_eq!(unescape_extra_key("bad%zz"), "bad%zz");
        assert_eq!(unescape_extra_key("cut%2"), "cut%2");
    }

    #[test]
    fn ca_bundles_must_hold_certificates() {
        assert!(matches!(
            parse_ca_bundle(b"not pem", "x.crt"),
            Err(AuthError::Config(ref m)) if m.contains("x.crt holds no certificate")
        ));
        let pem = ca("bundle").pem();
        assert_eq!(
            parse_ca_bundle(pem.as_bytes(), "ca").map(|c| c.len()).ok(),
            Some(1)
        );
    }
}
