//! Key material for service-account tokens: PEM parsing of the private signing key
//! (`--service-account-signing-key-file`) and of the verification keys
//! (`--service-account-key-file`), and upstream's key ID (`kid`): the unpadded base64url SHA-256 of
//! the DER SubjectPublicKeyInfo, so tokens we sign carry the same `kid` upstream would put there.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

use crate::der::{self, Reader};
use crate::Error;

/// A public key that can check token signatures.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// DER `RSAPublicKey` (PKCS#1), the form ring verifies with.
    Rsa(Vec<u8>),
    /// Uncompressed SEC1 point (`0x04 || X || Y`) on P-256.
    EcP256(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            PublicKey::Rsa(_) => "Rsa",
            PublicKey::EcP256(_) => "EcP256",
        };
        write!(f, "PublicKey::{kind}({})", self.key_id())
    }
}

impl PublicKey {
    /// The DER SubjectPublicKeyInfo, byte-for-byte what Go's `x509.MarshalPKIXPublicKey` emits.
    pub fn spki_der(&self) -> Vec<u8> {
        let (algorithm, key) = match self {
            PublicKey::Rsa(rsa) => (
                [
                    der::encode(der::TAG_OID, der::OID_RSA_ENCRYPTION),
                    der::encode(der::TAG_NULL, &[]),
                ]
                .concat(),
                rsa,
            ),
            PublicKey::EcP256(point) => (
                [
                    der::encode(der::TAG_OID, der::OID_EC_PUBLIC_KEY),
                    der::encode(der::TAG_OID, der::OID_P256),
                ]
                .concat(),
                point,
            ),
        };
        let bits = [&[0u8][..], key.as_slice()].concat();
        der::encode(
            der::TAG_SEQUENCE,
            &[
                der::encode(der::TAG_SEQUENCE, &algorithm),
                der::encode(der::TAG_BIT_STRING, &bits),
            ]
            .concat(),
        )
    }

    /// Upstream's `keyIDFromPublicKey`: base64url (no padding) of SHA-256 over the SPKI DER.
    pub fn key_id(&self) -> String {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.spki_der());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }
}

/// A private key that can sign tokens: RSA (RS256) or ECDSA P-256 (ES256).
pub struct PrivateKey {
    pub(crate) kind: PrivateKeyKind,
    public: PublicKey,
}

pub(crate) enum PrivateKeyKind {
    Rsa(RsaKeyPair),
    EcP256(EcdsaKeyPair),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("PrivateKey")
            .field("public", &self.public)
            .finish()
    }
}

impl PrivateKey {
    /// The public half, as used for verification and the `kid`.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Parses a PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, Error> {
        let pair = RsaKeyPair::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("invalid RSA private key: {e}")))?;
        let public = PublicKey::Rsa(pair.public().as_ref().to_vec());
        Ok(Self {
            kind: PrivateKeyKind::Rsa(pair),
            public,
        })
    }

    /// Parses a SEC1 `ECPrivateKey`. `curve` is the curve OID from an enclosing PKCS#8 wrapper,
    /// which SEC1 then may omit.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, Error> {
        Self::from_sec1_with_curve(der, None)
    }

    fn from_sec1_with_curve(der: &[u8], curve: Option<&[u8]>) -> Result<Self, Error> {
        let invalid = || Error::InvalidKey("invalid EC private key".to_string());
        let mut outer = Reader::new(der);
        let mut seq = Reader::new(outer.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
        if seq.expect(der::TAG_INTEGER) != Some(&[1u8][..]) {
            return Err(invalid());
        }
        let scalar = seq.expect(der::TAG_OCTET_STRING).ok_or_else(invalid)?;
        let mut curve_oid = curve;
        if let Some(params) = seq.optional(der::TAG_CONTEXT_0) {
            curve_oid = Some(
                Reader::new(params)
                    .expect(der::TAG_OID)
                    .ok_or_else(invalid)?,
            );
        }
        if curve_oid != Some(der::OID_P256) {
            return Err(Error::UnsupportedKey(
                "only the P-256 curve is supported for ECDSA keys".to_string(),
            ));
        }
        let public_point = seq
            .optional(der::TAG_CONTEXT_1)
            .and_then(|inner| Reader::new(inner).expect(der::TAG_BIT_STRING))
            .and_then(|bits| bits.strip_prefix(&[0u8]))
            .ok_or_else(|| {
                Error::UnsupportedKey("EC private key without its public key".to_string())
            })?;
        // SEC1 fixes the scalar at the curve's byte length, but some encoders drop leading zeros.
        if scalar.len() > 32 {
            return Err(invalid());
        }
        let mut padded = [0u8; 32];
        let start = 32 - scalar.len();
        if let Some(dst) = padded.get_mut(start..) {
            dst.copy_from_slice(scalar);
        }
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &padded,
            public_point,
            &SystemRandom::new(),
        )
        .map_err(|e| Error::InvalidKey(format!("invalid EC private key: {e}")))?;
        let public = PublicKey::EcP256(pair.public_key().as_ref().to_vec());
        Ok(Self {
            kind: PrivateKeyKind::EcP256(pair),
            public,
        })
    }

    /// Parses a PKCS#8 `PrivateKeyInfo` holding an RSA or P-256 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, Error> {
        let invalid = || Error::InvalidKey("invalid PKCS#8 private key".to_string());
        let mut outer = Reader::new(der);
        let mut seq = Reader::new(outer.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
        seq.expect(der::TAG_INTEGER).ok_or_else(invalid)?;
        let mut alg = Reader::new(seq.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
        let oid = alg.expect(der::TAG_OID).ok_or_else(invalid)?;
        let key = seq.expect(der::TAG_OCTET_STRING).ok_or_else(invalid)?;
        if oid == der::OID_RSA_ENCRYPTION {
            Self::from_pkcs1_der(key)
        } else if oid == der::OID_EC_PUBLIC_KEY {
            let curve = alg.expect(der::TAG_OID).ok_or_else(invalid)?;
            Self::from_sec1_with_curve(key, Some(curve))
        } else {
            Err(Error::UnsupportedKey(
                "PKCS#8 key is neither RSA nor ECDSA".to_string(),
            ))
        }
    }

    /// Parses the signing key file like upstream's `keyutil.ParsePrivateKeyPEM`: the first
    /// `RSA PRIVATE KEY`, `EC PRIVATE KEY` or `PRIVATE KEY` block that parses wins; other blocks
    /// (e.g. `EC PARAMETERS`) are skipped.
    pub fn from_pem(pem: &str) -> Result<Self, Error> {
        let mut unsupported = None;
        for block in pem_blocks(pem) {
            let parsed = match block.label.as_str() {
                "RSA PRIVATE KEY" => Self::from_pkcs1_der(&block.der),
                "EC PRIVATE KEY" => Self::from_sec1_der(&block.der),
                "PRIVATE KEY" => Self::from_pkcs8_der(&block.der),
                _ => continue,
            };
            match parsed {
                Ok(key) => return Ok(key),
                Err(e @ Error::UnsupportedKey(_)) => unsupported = Some(e),
                Err(_) => {}
            }
        }
        Err(unsupported.unwrap_or(Error::NoPrivateKey))
    }
}

/// Parses a DER SubjectPublicKeyInfo holding an RSA or P-256 key.
pub fn public_key_from_spki_der(der: &[u8]) -> Result<PublicKey, Error> {
    let invalid = || Error::InvalidKey("invalid public key".to_string());
    let mut outer = Reader::new(der);
    let mut seq = Reader::new(outer.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
    let mut alg = Reader::new(seq.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
    let oid = alg.expect(der::TAG_OID).ok_or_else(invalid)?;
    let key = seq
        .expect(der::TAG_BIT_STRING)
        .and_then(|bits| bits.strip_prefix(&[0u8]))
        .ok_or_else(invalid)?;
    if oid == der::OID_RSA_ENCRYPTION {
        let mut rsa = Reader::new(key);
        let mut fields = Reader::new(rsa.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
        let modulus = fields.expect(der::TAG_INTEGER).ok_or_else(invalid)?;
        fields.expect(der::TAG_INTEGER).ok_or_else(invalid)?;
        if !rsa.is_empty() || !fields.is_empty() || modulus.is_empty() {
            return Err(invalid());
        }
        Ok(PublicKey::Rsa(key.to_vec()))
    } else if oid == der::OID_EC_PUBLIC_KEY {
        if alg.expect(der::TAG_OID) != Some(der::OID_P256) {
            return Err(Error::UnsupportedKey(
                "only the P-256 curve is supported for ECDSA keys".to_string(),
            ));
        }
        // Go's x509 accepts only uncompressed points for ECDSA public keys.
        if key.len() != 65 || key.first() != Some(&4) {
            return Err(invalid());
        }
        Ok(PublicKey::EcP256(key.to_vec()))
    } else {
        Err(Error::UnsupportedKey(
            "public key is neither RSA nor ECDSA".to_string(),
        ))
    }
}

/// Pulls the SubjectPublicKeyInfo out of a DER X.509 certificate.
pub fn public_key_from_certificate_der(der: &[u8]) -> Result<PublicKey, Error> {
    let invalid = || Error::InvalidKey("invalid certificate".to_string());
    let mut outer = Reader::new(der);
    let mut cert = Reader::new(outer.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
    let mut tbs = Reader::new(cert.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?);
    tbs.optional(der::TAG_CONTEXT_0);
    tbs.expect(der::TAG_INTEGER).ok_or_else(invalid)?; // serialNumber
    for _ in 0..4 {
        // signature algorithm, issuer, validity, subject
        tbs.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?;
    }
    let spki = tbs.expect(der::TAG_SEQUENCE).ok_or_else(invalid)?;
    public_key_from_spki_der(&der::encode(der::TAG_SEQUENCE, spki))
}

/// Parses a `--service-account-key-file` like upstream's `keyutil.ParsePublicKeysPEM`: every block
/// that is a public key, a certificate, or an RSA/ECDSA private key (whose public half is taken)
/// contributes a key, whatever its PEM label; other blocks are tolerated.
pub fn parse_public_keys_pem(pem: &str) -> Result<Vec<PublicKey>, Error> {
    let keys: Vec<PublicKey> = pem_blocks(pem)
        .into_iter()
        .filter_map(|block| {
            let der = block.der.as_slice();
            public_key_from_spki_der(der)
                .or_else(|_| public_key_from_certificate_der(der))
                .or_else(|_| PrivateKey::from_pkcs1_der(der).map(|k| k.public))
                .or_else(|_| PrivateKey::from_sec1_der(der).map(|k| k.public))
                .or_else(|_| PrivateKey::from_pkcs8_der(der).map(|k| k.public))
                .ok()
        })
        .collect();
    if keys.is_empty() {
        return Err(Error::NoPublicKeys);
    }
    Ok(keys)
}

/// One decoded PEM block.
#[derive(Debug)]
struct PemBlock {
    label: String,
    der: Vec<u8>,
}

/// Splits PEM text into blocks. Like Go's `pem.Decode`, text outside blocks is ignored, RFC 1421
/// headers (`Proc-Type: ...`) are skipped, and a block whose body is not base64 is dropped.
fn pem_blocks(text: &str) -> Vec<PemBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|rest| rest.strip_suffix("-----"))
        {
            current = Some((label.to_string(), String::new()));
        } else if let Some(label) = line
            .strip_prefix("-----END ")
            .and_then(|rest| rest.strip_suffix("-----"))
        {
            if let Some((begin, body)) = current.take() {
                if begin == label {
                    if let Ok(der) = STANDARD.decode(body.as_bytes()) {
                        blocks.push(PemBlock { label: begin, der });
                    }
                }
            }
        } else if let Some((_, body)) = current.as_mut() {
            if !line.contains(':') {
                body.push_str(line);
            }
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PKCS1: &str = include_str!("../testdata/rsa_pkcs1.pem");
    const RSA_PKCS8: &str = include_str!("../testdata/rsa_pkcs8.pem");
    const RSA_PUB: &str = include_str!("../testdata/rsa_pub.pem");
    const RSA_CERT: &str = include_str!("../testdata/rsa_cert.pem");
    const RSA_KID: &str = include_str!("../testdata/rsa_pub.kid");
    const EC_SEC1: &str = include_str!("../testdata/ec_sec1.pem");
    const EC_PKCS8: &str = include_str!("../testdata/ec_pkcs8.pem");
    const EC_PUB: &str = include_str!("../testdata/ec_pub.pem");
    const EC_KID: &str = include_str!("../testdata/ec_pub.kid");

    #[test]
    fn private_keys_parse_in_every_supported_encoding() {
        for (name, pem, kid) in [
            ("rsa pkcs1", RSA_PKCS1, RSA_KID),
            ("rsa pkcs8", RSA_PKCS8, RSA_KID),
            ("ec sec1", EC_SEC1, EC_KID),
            ("ec pkcs8", EC_PKCS8, EC_KID),
        ] {
            let key = PrivateKey::from_pem(pem).unwrap_or_else(|e| panic!("{name}: {e}"));
            // The kid files were computed by openssl over the SPKI DER, as upstream does.
            assert_eq!(key.public_key().key_id(), kid.trim(), "{name}");
        }
    }

    #[test]
    fn public_key_files_accept_public_keys_certificates_and_private_keys() {
        for (name, pem, kid) in [
            ("rsa pub", RSA_PUB, RSA_KID),
            ("rsa cert", RSA_CERT, RSA_KID),
            ("rsa private", RSA_PKCS1, RSA_KID),
            ("ec pub", EC_PUB, EC_KID),
            ("ec sec1", EC_SEC1, EC_KID),
            ("ec pkcs8", EC_PKCS8, EC_KID),
        ] {
            let keys = parse_public_keys_pem(pem).unwrap_or_else(|e| panic!("{name}: {e}"));
            let kids: Vec<String> = keys.iter().map(PublicKey::key_id).collect();
            assert_eq!(kids, vec![kid.trim().to_string()], "{name}");
        }
    }

    #[test]
    fn public_key_file_may_hold_several_keys_and_foreign_blocks() {
        let pem = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{RSA_PUB}\ncomment\n{EC_PUB}"
        );
        let kids: Vec<String> = parse_public_keys_pem(&pem)
            .expect("keys")
            .iter()
            .map(PublicKey::key_id)
            .collect();
        assert_eq!(
            kids,
            vec![RSA_KID.trim().to_string(), EC_KID.trim().to_string()]
        );
    }

    #[test]
    fn spki_round_trips_byte_for_byte() {
        let block = pem_blocks(RSA_PUB).into_iter().next().expect("block");
        let key = public_key_from_spki_der(&block.der).expect("spki");
        assert_eq!(key.spki_der(), block.der);
        let block = pem_blocks(EC_PUB).into_iter().next().expect("block");
        let key = public_key_from_spki_der(&block.der).expect("spki");
        assert_eq!(key.spki_der(), block.der);
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        assert_eq!(PrivateKey::from_pem("").unwrap_err(), Error::NoPrivateKey);
        assert_eq!(
            PrivateKey::from_pem(RSA_PUB).unwrap_err(),
            Error::NoPrivateKey
        );
        assert_eq!(
            parse_public_keys_pem("nope").unwrap_err(),
            Error::NoPublicKeys
        );
        let junk = "-----BEGIN PRIVATE KEY-----\nMAMCAQA=\n-----END PRIVATE KEY-----\n";
        assert_eq!(PrivateKey::from_pem(junk).unwrap_err(), Error::NoPrivateKey);
        assert_eq!(
            parse_public_keys_pem(junk).unwrap_err(),
            Error::NoPublicKeys
        );
        // Every truncation of a real key must fail cleanly.
        for pem in [RSA_PKCS8, EC_SEC1, RSA_CERT] {
            let der = pem_blocks(pem).into_iter().next().expect("block").der;
            for cut in 0..der.len() {
                let short = der.get(..cut).unwrap_or_default();
                assert!(PrivateKey::from_pkcs8_der(short).is_err());
                assert!(PrivateKey::from_sec1_der(short).is_err());
                assert!(public_key_from_certificate_der(short).is_err());
            }
        }
    }
}
