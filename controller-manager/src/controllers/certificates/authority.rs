//! The local certificate authority of `--cluster-signing-cert-file` / `--cluster-signing-key-file`
//! and upstream's `PermissiveSigningPolicy`: the subject and SANs come from the request, the key
//! usages from `spec.usages`, no other extension, CA:false, a random 128-bit serial, five minutes
//! of backdating for certificates that live at least eight hours, and a lifetime of
//! min(`spec.expirationSeconds` (at least ten minutes), `--cluster-signing-duration`) that never
//! outlives the CA.

use std::time::Duration;

use rcgen::{
    CertificateSigningRequestParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use x509_parser::prelude::FromDer;

/// Backdating and its threshold, as upstream's signer.
const BACKDATE: Duration = Duration::from_secs(5 * 60);
const SHORT: Duration = Duration::from_secs(8 * 3600);
/// The shortest lifetime a request may ask for (twice the backdate).
const MIN_DURATION: Duration = Duration::from_secs(10 * 60);

pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate's notAfter, as a unix timestamp.
    not_after: i64,
}

impl CertificateAuthority {
    /// Loads a PEM certificate and its PEM (PKCS#8, or SEC1/PKCS#1 where the crypto backend
    /// takes them) private key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, String> {
        let key =
            KeyPair::from_pem(key_pem).map_err(|err| format!("reading the signing key: {err}"))?;
        let (_, block) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|err| format!("reading the signing certificate: {err}"))?;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(&block.contents)
            .map_err(|err| format!("parsing the signing certificate: {err}"))?;
        let not_after = cert.validity().not_after.timestamp();
        let issuer = Issuer::from_ca_cert_der(&block.contents.clone().into(), key)
            .map_err(|err| format!("using the signing certificate: {err}"))?;
        Ok(CertificateAuthority { issuer, not_after })
    }

    /// Signs the DER PKCS#10 `request` for `usages`, valid for `ttl` from `now` (unix seconds);
    /// returns the PEM certificate.
    pub fn sign(
        &self,
        request: &[u8],
        usages: &[String],
        ttl: Duration,
        now: i64,
    ) -> Result<String, String> {
        let mut csr = CertificateSigningRequestParams::from_der(&request.to_vec().into())
            .map_err(|err| format!("unable to parse certificate request: {err}"))?;
        let (key_usages, extended) = key_usages(usages)?;
        let (not_before, not_after) = boundaries(now, ttl, self.not_after)?;
        let params = &mut csr.params;
        params.key_usages = key_usages;
        params.extended_key_usages = extended;
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        params.custom_extensions.clear();
        // rcgen takes `time` dates; x509-parser's ASN1Time makes them without another dependency.
        let date = |secs: i64| {
            x509_parser::time::ASN1Time::from_timestamp(secs)
                .map(|t| t.to_datetime())
                .map_err(|err| format!("certificate validity: {err}"))
        };
        params.not_before = date(not_before)?;
        params.not_after = date(not_after)?;
        let mut serial = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut serial[..]);
        // A positive INTEGER: clear the top bit.
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = csr
            .signed_by(&self.issuer)
            .map_err(|err| format!("failed to sign certificate: {err}"))?;
        Ok(cert.pem())
    }
}

/// `(notBefore, notAfter)` in unix seconds, as upstream's signing policy.
pub fn boundaries(now: i64, ttl: Duration, ca_not_after: i64) -> Result<(i64, i64), String> {
    let ttl_secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    let backdate = if ttl < SHORT {
        0
    } else {
        BACKDATE.as_secs() as i64
    };
    let not_before = now - backdate;
    let not_after = not_before.saturating_add(ttl_secs).min(ca_not_after);
    if not_after <= now {
        return Err("the signer has expired: the CA certificate is no longer valid".into());
    }
    Ok((not_before, not_after))
}

/// The certificate lifetime: `--cluster-signing-duration` unless the request asks for less
/// (never below ten minutes), as upstream's `signer.duration`.
pub fn duration(expiration_seconds: Option<i32>, max: Duration) -> Duration {
    let Some(seconds) = expiration_seconds else {
        return max;
    };
    let requested = Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    if requested > max {
        max
    } else if requested < MIN_DURATION {
        MIN_DURATION
    } else {
        requested
    }
}

/// `spec.usages` as key usage bits and extended key usages (upstream's `keyUsagesFromStrings`).
fn key_usages(
    usages: &[String],
) -> Result<(Vec<KeyUsagePurpose>, Vec<ExtendedKeyUsagePurpose>), String> {
    let mut key = Vec::new();
    let mut extended = Vec::new();
    let mut unrecognized = Vec::new();
    for usage in usages {
        let k = match usage.as_str() {
            "signing" | "digital signature" => Some(KeyUsagePurpose::DigitalSignature),
            "content commitment" => Some(KeyUsagePurpose::ContentCommitment),
            "key encipherment" => Some(KeyUsagePurpose::KeyEncipherment),
            "key agreement" => Some(KeyUsagePurpose::KeyAgreement),
            "data encipherment" => Some(KeyUsagePurpose::DataEncipherment),
            "cert sign" => Some(KeyUsagePurpose::KeyCertSign),
            "crl sign" => Some(KeyUsagePurpose::CrlSign),
            "encipher only" => Some(KeyUsagePurpose::EncipherOnly),
            "decipher only" => Some(KeyUsagePurpose::DecipherOnly),
            _ => None,
        };
        if let Some(k) = k {
            if !key.contains(&k) {
                key.push(k);
            }
            continue;
        }
        let e = match usage.as_str() {
            "any" => ExtendedKeyUsagePurpose::Any,
            "server auth" => ExtendedKeyUsagePurpose::ServerAuth,
            "client auth" => ExtendedKeyUsagePurpose::ClientAuth,
            "code signing" => ExtendedKeyUsagePurpose::CodeSigning,
            "email protection" | "s/mime" => ExtendedKeyUsagePurpose::EmailProtection,
            "ipsec end system" => ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 5]),
            "ipsec tunnel" => ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 6]),
            "ipsec user" => ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 7]),
            "timestamping" => ExtendedKeyUsagePurpose::TimeStamping,
            "ocsp signing" => ExtendedKeyUsagePurpose::OcspSigning,
            "microsoft sgc" => {
                ExtendedKeyUsagePurpose::Other(vec![1, 3, 6, 1, 4, 1, 311, 10, 3, 3])
            }
            "netscape sgc" => ExtendedKeyUsagePurpose::Other(vec![2, 16, 840, 1, 113730, 4, 1]),
            other => {
                unrecognized.push(format!("{other:?}"));
                continue;
            }
        };
        if !extended.contains(&e) {
            extended.push(e);
        }
    }
    if !unrecognized.is_empty() {
        return Err(format!(
            "unrecognized usage values: [{}]",
            unrecognized.join(" ")
        ));
    }
    Ok((key, extended))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::X509Certificate;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn duration_is_the_shorter_of_request_and_flag() {
        let max = HOUR * 8760;
        let cases = [
            (None, max),
            (Some(3600), HOUR),
            (Some(60), MIN_DURATION),
            (Some(i32::MAX), max),
            (Some(-5), MIN_DURATION),
        ];
        for (requested, want) in cases {
            assert_eq!(duration(requested, max), want, "{requested:?}");
        }
    }

    #[test]
    fn boundaries_backdate_long_lived_certificates_and_stop_at_the_ca() {
        assert_eq!(
            boundaries(10_000, HOUR * 24, i64::MAX),
            Ok((9_700, 9_700 + 86_400))
        );
        assert_eq!(boundaries(10_000, HOUR, i64::MAX), Ok((10_000, 13_600)));
        assert_eq!(boundaries(10_000, HOUR, 12_000), Ok((10_000, 12_000)));
        assert!(boundaries(10_000, HOUR, 9_000).is_err());
    }

    #[test]
    fn unknown_usages_are_refused() {
        let usages = vec!["client auth".to_string(), "bogus".to_string()];
        assert_eq!(
            key_usages(&usages).map(|_| ()),
            Err("unrecognized usage values: [\"bogus\"]".to_string())
        );
    }

    fn ok<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
        match r {
            Ok(v) => v,
            Err(err) => panic!("{err}"),
        }
    }

    #[test]
    fn signs_a_request_with_the_subject_usages_and_lifetime() {
        let ca_key = ok(KeyPair::generate());
        let mut ca_params = ok(rcgen::CertificateParams::new(Vec::<String>::new()));
        ca_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test-ca");
        let ca_cert = ok(ca_params.self_signed(&ca_key));
        let ca = ok(CertificateAuthority::load(
            &ca_cert.pem(),
            &ca_key.serialize_pem(),
        ));

        let key = ok(KeyPair::generate());
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        let request = ok(params.serialize_request(&key));
        let usages = vec!["digital signature".to_string(), "client auth".to_string()];
        let now = 1_800_000_000;
        let pem = ok(ca.sign(request.der(), &usages, HOUR, now));

        let (_, block) = ok(x509_parser::pem::parse_x509_pem(pem.as_bytes()));
        let (_, cert) = ok(X509Certificate::from_der(&block.contents));
        let (_, ca_parsed) = ok(X509Certificate::from_der(ca_cert.der()));
        ok(cert.verify_signature(Some(ca_parsed.public_key())));
        assert_eq!(
            cert.subject().to_string(),
            "CN=system:node:n1, O=system:nodes"
        );
        assert_eq!(cert.issuer().to_string(), "CN=test-ca");
        assert_eq!(cert.validity().not_before.timestamp(), now);
        assert_eq!(cert.validity().not_after.timestamp(), now + 3600);
        let eku = ok(cert.extended_key_usage()).map(|e| e.value.client_auth);
        assert_eq!(eku, Some(true));
        let ca_flag = ok(cert.basic_constraints()).map(|b| b.value.ca);
        assert_eq!(ca_flag, Some(false));
    }
}
