//! Compact JWS: signing with one private key (`Signer`) and checking a signature against a set of
//! public keys picked by `kid` (`Verifier`), with go-jose's error texts so upstream-shaped logs and
//! TokenReview errors read the same.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use serde_json::Value;

use crate::keys::{PrivateKey, PrivateKeyKind, PublicKey};
use crate::Error;

/// go-jose's `ErrCryptoFailure` text (the fork vendored by Kubernetes 1.33).
pub(crate) const CRYPTO_FAILURE: &str = "go-jose/go-jose: error in cryptographic primitive";
/// go-jose's `ErrUnsupportedAlgorithm` text.
pub(crate) const UNSUPPORTED_ALGORITHM: &str = "go-jose/go-jose: unknown/unsupported algorithm";

/// Signs tokens with one key: RS256 for RSA, ES256 for P-256, `kid` derived as upstream does.
#[derive(Debug)]
pub struct Signer {
    key: PrivateKey,
    key_id: String,
    rng: SystemRandom,
}

impl Signer {
    pub fn new(key: PrivateKey) -> Self {
        let key_id = key.public_key().key_id();
        Self {
            key,
            key_id,
            rng: SystemRandom::new(),
        }
    }

    /// The JWS `alg` this signer writes.
    pub fn algorithm(&self) -> &'static str {
        match self.key.kind {
            PrivateKeyKind::Rsa(_) => "RS256",
            PrivateKeyKind::EcP256(_) => "ES256",
        }
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// Produces `header.payload.signature` over the given payload bytes.
    pub fn sign_compact(&self, payload: &[u8]) -> Result<String, Error> {
        // go-jose sorts header keys when marshalling: alg, then kid.
        let header = serde_json::json!({ "alg": self.algorithm(), "kid": self.key_id });
        self.sign_with_header(&header, payload)
    }

    pub(crate) fn sign_with_header(&self, header: &Value, payload: &[u8]) -> Result<String, Error> {
        let mut out = URL_SAFE_NO_PAD.encode(header.to_string());
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(payload));
        let sig = match &self.key.kind {
            PrivateKeyKind::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    out.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| Error::Signing)?;
                sig
            }
            PrivateKeyKind::EcP256(pair) => pair
                .sign(&self.rng, out.as_bytes())
                .map_err(|_| Error::Signing)?
                .as_ref()
                .to_vec(),
        };
        out.push('.');
        out.push_str(&URL_SAFE_NO_PAD.encode(sig));
        Ok(out)
    }
}

/// A decoded (not yet verified) compact JWS.
#[derive(Debug, Clone)]
pub(crate) struct CompactJws<'t> {
    pub(crate) alg: String,
    pub(crate) kid: String,
    signing_input: &'t str,
    pub(crate) payload: Vec<u8>,
    signature: Vec<u8>,
}

/// go-jose tolerates `=` padding on compact parts; strict unpadded base64url otherwise.
fn b64(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()
}

impl<'t> CompactJws<'t> {
    /// Splits and decodes a compact JWS; `None` when it is not one (upstream then says
    /// "not my token" rather than failing authentication).
    pub(crate) fn parse(token: &'t str) -> Option<Self> {
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header_json: Value = serde_json::from_slice(&b64(header)?).ok()?;
        let header_obj = header_json.as_object()?;
        let text = |name: &str| -> Option<String> {
            match header_obj.get(name) {
                None | Some(Value::Null) => Some(String::new()),
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => None,
            }
        };
        let alg = text("alg")?;
        let kid = text("kid")?;
        // We implement no critical extensions, so a token that requires one cannot be accepted.
        if header_obj.get("crit").is_some() {
            return None;
        }
        let signing_input = token.get(..header.len() + 1 + payload.len())?;
        Some(Self {
            alg,
            kid,
            signing_input,
            payload: b64(payload)?,
            signature: b64(sig)?,
        })
    }

    /// Checks the signature with one key, the way go-jose pairs `alg` with the key type.
    pub(crate) fn verify_with(&self, key: &PublicKey) -> Result<(), &'static str> {
        let alg: &'static dyn VerificationAlgorithm = match (self.alg.as_str(), key) {
            ("RS256", PublicKey::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA256,
            ("RS384", PublicKey::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA384,
            ("RS512", PublicKey::Rsa(_)) => &signature::RSA_PKCS1_2048_8192_SHA512,
            ("PS256", PublicKey::Rsa(_)) => &signature::RSA_PSS_2048_8192_SHA256,
            ("PS384", PublicKey::Rsa(_)) => &signature::RSA_PSS_2048_8192_SHA384,
            ("PS512", PublicKey::Rsa(_)) => &signature::RSA_PSS_2048_8192_SHA512,
            ("ES256", PublicKey::EcP256(_)) => &signature::ECDSA_P256_SHA256_FIXED,
            _ => return Err(UNSUPPORTED_ALGORITHM),
        };
        let der = match key {
            PublicKey::Rsa(der) | PublicKey::EcP256(der) => der,
        };
        UnparsedPublicKey::new(alg, der)
            .verify(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| CRYPTO_FAILURE)
    }
}

/// The verification keys (`--service-account-key-file`), indexed by upstream's `kid`.
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    keys: Vec<(String, PublicKey)>,
}

impl Verifier {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys.into_iter().map(|k| (k.key_id(), k)).collect(),
        }
    }

    /// Upstream's `StaticPublicKeysGetter`: every key when the token names no `kid`, otherwise only
    /// the keys with that `kid` (no fallback to the rest).
    pub fn keys_for(&self, kid: &str) -> Vec<&PublicKey> {
        self.keys
            .iter()
            .filter(|(id, _)| kid.is_empty() || id == kid)
            .map(|(_, key)| key)
            .collect()
    }

    /// Verifies a compact JWS and returns its payload. `Ok(None)` means the input is not a JWS at
    /// all.
    pub fn verify_compact(&self, token: &str) -> Result<Option<Vec<u8>>, Error> {
        let Some(jws) = CompactJws::parse(token) else {
            return Ok(None);
        };
        self.verify_parsed(&jws)?;
        Ok(Some(jws.payload))
    }

    pub(crate) fn verify_parsed(&self, jws: &CompactJws<'_>) -> Result<(), Error> {
        let keys = self.keys_for(&jws.kid);
        if keys.is_empty() {
            return Err(Error::NoKeysFound);
        }
        let mut errors: Vec<&'static str> = Vec::new();
        for key in keys {
            match jws.verify_with(key) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    // Upstream aggregates per-key errors and drops duplicate messages.
                    if !errors.contains(&e) {
                        errors.push(e);
                    }
                }
            }
        }
        Err(Error::InvalidSignature(match errors.as_slice() {
            [one] => (*one).to_string(),
            many => format!("[{}]", many.join(", ")),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa() -> PrivateKey {
        PrivateKey::from_pem(include_str!("../testdata/rsa_pkcs1.pem")).expect("rsa")
    }
    fn ec() -> PrivateKey {
        PrivateKey::from_pem(include_str!("../testdata/ec_sec1.pem")).expect("ec")
    }

    #[test]
    fn sign_and_verify_round_trip_for_both_algorithms() {
        for (key, alg) in [(rsa(), "RS256"), (ec(), "ES256")] {
            let signer = Signer::new(key);
            assert_eq!(signer.algorithm(), alg);
            let token = signer.sign_compact(b"{\"a\":1}").expect("sign");
            let header = token.split('.').next().expect("header");
            let header = String::from_utf8(b64(header).expect("b64")).expect("utf8");
            assert_eq!(
                header,
                format!(r#"{{"alg":"{alg}","kid":"{}"}}"#, signer.key_id())
            );
            let verifier = Verifier::new([signer.public_key().clone()]);
            assert_eq!(
                verifier.verify_compact(&token).expect("verify"),
                Some(b"{\"a\":1}".to_vec())
            );
        }
    }

    #[test]
    fn wrong_key_and_wrong_kid_fail() {
        let signer = Signer::new(rsa());
        let token = signer.sign_compact(b"{}").expect("sign");
        let other = PrivateKey::from_pem(include_str!("../testdata/rsa2_pkcs1.pem")).expect("k");
        let verifier = Verifier::new([other.public_key().clone()]);
        assert_eq!(verifier.verify_compact(&token), Err(Error::NoKeysFound));

        // Without a kid every key is tried; RSA and EC keys fail differently, and both show.
        let no_kid = signer
            .sign_with_header(&serde_json::json!({"alg": "RS256"}), b"{}")
            .expect("sign");
        let verifier = Verifier::new([
            other.public_key().clone(),
            ec().public_key().clone(),
            signer.public_key().clone(),
        ]);
        assert_eq!(verifier.verify_compact(&no_kid), Ok(Some(b"{}".to_vec())));
        let verifier = Verifier::new([other.public_key().clone(), ec().public_key().clone()]);
        assert_eq!(
            verifier.verify_compact(&no_kid),
            Err(Error::InvalidSignature(format!(
                "[{CRYPTO_FAILURE}, {UNSUPPORTED_ALGORITHM}]"
            )))
        );
    }

    #[test]
    fn alg_none_and_crit_are_refused() {
        let signer = Signer::new(ec());
        let verifier = Verifier::new([signer.public_key().clone()]);
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, signer.key_id())),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(
            verifier.verify_compact(&none),
            Err(Error::InvalidSignature(UNSUPPORTED_ALGORITHM.to_string()))
        );
        let crit = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","crit":["exp"]}"#),
            URL_SAFE_NO_PAD.encode("{}")
        );
        assert_eq!(verifier.verify_compact(&crit), Ok(None));
    }
}
