//! The per-resource [`Transformer`]: an ordered list of providers, each owning a storage prefix.
//!
//! It mirrors upstream's nesting of `prefixTransformers` exactly, because the read path's
//! behaviour is part of the compatibility promise: the first provider writes; reads try every
//! provider whose prefix matches in order (a failure does not stop the search, since two
//! `aescbc` providers share `k8s:enc:aescbc:v1:`); the identity provider has the empty prefix,
//! refuses data that starts with `k8s:enc:` and is then silently skipped. A read served by any
//! provider or key other than the first is reported as stale, which drives key rotation.

use std::fmt;

use crate::aes_cbc::AesCbc;
use crate::aes_gcm::AesGcmCipher;
use crate::secretbox::Secretbox;
use crate::Error;

pub(crate) const AES_CBC_PREFIX: &str = "k8s:enc:aescbc:v1:";
pub(crate) const AES_GCM_PREFIX: &str = "k8s:enc:aesgcm:v1:";
pub(crate) const SECRETBOX_PREFIX: &str = "k8s:enc:secretbox:v1:";
/// Reserved for encrypted data; the identity provider refuses to pass it through.
const ENCRYPTED_MARKER: &[u8] = b"k8s:enc:";

/// Encrypts and decrypts the stored values of one group-resource.
#[derive(Clone)]
pub struct Transformer {
    providers: Vec<Provider>,
}

#[derive(Clone)]
pub(crate) enum Provider {
    Identity,
    Keyed {
        /// `k8s:enc:<provider>:v1:`
        prefix: &'static str,
        /// Names the provider in the "no matching key" error ("AES" or "Secretbox").
        label: &'static str,
        keys: Vec<NamedKey>,
    },
}

#[derive(Clone)]
pub(crate) struct NamedKey {
    /// The key's name followed by `:`.
    pub(crate) prefix: Vec<u8>,
    pub(crate) cipher: KeyCipher,
}

#[derive(Clone)]
pub(crate) enum KeyCipher {
    AesCbc(AesCbc),
    AesGcm(AesGcmCipher),
    Secretbox(Secretbox),
}

impl Transformer {
    /// `providers` must be non-empty; the configuration loader guarantees it.
    pub(crate) fn new(providers: Vec<Provider>) -> Self {
        Self { providers }
    }

    pub(crate) fn extend(&mut self, more: &[Provider]) {
        self.providers.extend_from_slice(more);
    }

    /// Writes with the first provider. `context` is the authenticated data (upstream passes the
    /// object's full etcd key, e.g. `/registry/secrets/default/db`); only `aesgcm` binds it, but
    /// callers should always pass it so that a later switch to `aesgcm` keeps working.
    pub fn encrypt(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>, Error> {
        match self.providers.first() {
            None | Some(Provider::Identity) => Ok(plaintext.to_vec()),
            Some(Provider::Keyed { prefix, keys, .. }) => {
                let key = keys.first().ok_or(Error::NoMatchingPrefix)?;
                let body = match &key.cipher {
                    KeyCipher::AesCbc(c) => c.encrypt(plaintext)?,
                    KeyCipher::AesGcm(c) => c.encrypt(plaintext, context)?,
                    KeyCipher::Secretbox(c) => c.encrypt(plaintext)?,
                };
                let mut out = Vec::with_capacity(prefix.len() + key.prefix.len() + body.len());
                out.extend_from_slice(prefix.as_bytes());
                out.extend_from_slice(&key.prefix);
                out.extend_from_slice(&body);
                Ok(out)
            }
        }
    }

    /// Reads a stored value: returns the plaintext and whether it was written by a provider or
    /// key other than the first (`stale`: the caller may re-write it to finish a rotation).
    pub fn decrypt(&self, stored: &[u8], context: &[u8]) -> Result<(Vec<u8>, bool), Error> {
        let mut errors = Vec::new();
        for (i, provider) in self.providers.iter().enumerate() {
            match provider {
                Provider::Identity => {
                    if stored.starts_with(ENCRYPTED_MARKER) {
                        // Upstream skips an identity failure without recording it, so that an
                        // identity written first does not block reading still-encrypted data.
                        continue;
                    }
                    return Ok((stored.to_vec(), i != 0));
                }
                Provider::Keyed {
                    prefix,
                    label,
                    keys,
                } => {
                    let Some(rest) = stored.strip_prefix(prefix.as_bytes()) else {
                        continue;
                    };
                    match decrypt_with_keys(keys, label, rest, context) {
                        Ok((plain, stale)) => return Ok((plain, stale || i != 0)),
                        Err(e) => errors.push(e),
                    }
                }
            }
        }
        match errors.len() {
            0 => Err(Error::NoMatchingPrefix),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Aggregate(errors)),
        }
    }

    /// Names of the providers in order (`identity`, `aescbc`, ...), for logs and tests.
    pub fn provider_names(&self) -> Vec<&'static str> {
        self.providers
            .iter()
            .map(|p| match p {
                Provider::Identity => "identity",
                Provider::Keyed { prefix, .. } => match *prefix {
                    AES_CBC_PREFIX => "aescbc",
                    AES_GCM_PREFIX => "aesgcm",
                    _ => "secretbox",
                },
            })
            .collect()
    }
}

/// The inner `prefixTransformers` over one provider's keys.
fn decrypt_with_keys(
    keys: &[NamedKey],
    label: &'static str,
    data: &[u8],
    context: &[u8],
) -> Result<(Vec<u8>, bool), Error> {
    let mut errors = Vec::new();
    for (j, key) in keys.iter().enumerate() {
        let Some(body) = data.strip_prefix(key.prefix.as_slice()) else {
            continue;
        };
        let result = match &key.cipher {
            KeyCipher::AesCbc(c) => c.decrypt(body),
            KeyCipher::AesGcm(c) => c.decrypt(body, context),
            KeyCipher::Secretbox(c) => c.decrypt(body),
        };
        match result {
            Ok(plain) => return Ok((plain, j != 0)),
            Err(e) => errors.push(e),
        }
    }
    match errors.len() {
        0 => Err(Error::NoMatchingKey(label)),
        1 => Err(errors.remove(0)),
        _ => Err(Error::Aggregate(errors)),
    }
}

impl fmt::Debug for Transformer {
    /// Key material never reaches logs: only provider kinds and key names are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for p in &self.providers {
            match p {
                Provider::Identity => list.entry(&"identity"),
                Provider::Keyed { prefix, keys, .. } => {
                    let names: Vec<String> = keys
                        .iter()
                        .map(|k| {
                            String::from_utf8_lossy(&k.prefix)
                                .trim_end_matches(':')
                                .to_string()
                        })
                        .collect();
                    list.entry(&(prefix, names))
                }
            };
        }
        list.finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::{EncryptionConfig, Error};

    const KEY16: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const KEY24: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const PLAINTEXT: &[u8] = br#"{"kind":"Secret","apiVersion":"v1","data":{"k":"dg=="}}"#;
    const ETCD_KEY: &[u8] = b"/registry/secrets/default/s1";

    /// Stored values computed outside this crate (Python `cryptography`, and a from-the-spec
    /// XSalsa20 with `cryptography`'s Poly1305) with fixed IVs/nonces, laid out as upstream
    /// writes them: prefix, key name, IV/nonce, ciphertext (and tag).
    const FIXTURES: &[(&str, &str, &str)] = &[
        ("aescbc", KEY16, "6b38733a656e633a6165736362633a76313a6b6579313aa0a1a2a3a4a5a6a7a8a9aaabacadaeafc15858287920aa138bca2074cc32f9c1f6ab1bf20b189049ed34234cb4e336513a90ffa6282eab27fda487f0b171992c0deec573a805cd13d6bb351d7b2a2ec4"),
        ("aescbc", KEY24, "6b38733a656e633a6165736362633a76313a6b6579313aa0a1a2a3a4a5a6a7a8a9aaabacadaeafaad927e76d38554214533452481a0b86956d36dcbae0bac1a3ec94fd9e76f0a75e295c8d0b038814e7e67b6a732e079f0a1c24acb4ed643f38fd87fd322e4944"),
        ("aescbc", KEY32, "6b38733a656e633a6165736362633a76313a6b6579313aa0a1a2a3a4a5a6a7a8a9aaabacadaeafda54e881eafae68f34aa2ddb00e56b52372721a55a897321873ece06f719cdc8bf0a245d67003860970448e7fc1735c29f0e6d0e30e7f31c39f4dd0306657f1e"),
        ("aesgcm", KEY16, "6b38733a656e633a61657367636d3a76313a6b6579313a505152535455565758595a5bb01624425497b2a8553c5db87f9021346619bd62dd19289eed2652c0a722cbbb05bced5746037449e461fb78a3da6f9c875e29a4cb8ee99bb9bf8680a20e21349aaa88006389e2"),
        ("aesgcm", KEY24, "6b38733a656e633a61657367636d3a76313a6b6579313a505152535455565758595a5b1e811fce67bc2d623ac760c74b8177bd2389a287433ed35866fb5cfdb3336d82c934fdcf3f8b851e3161a55bc26d5604cc177939c89e6f5b8ed322f861514457d95cc89efd5fd2"),
        ("aesgcm", KEY32, "6b38733a656e633a61657367636d3a76313a6b6579313a505152535455565758595a5be9055d1d8a349bdc7ee55806bf84f7f7cf0d9c9b4b27ff5057e08fb5d27ab70260cda6ff0f47e7d54be09ebcbea0c3f5b54c4b2408602f6d81dbc1367ab55a4c5535dad9e325ce"),
        ("secretbox", KEY32, "6b38733a656e633a736563726574626f783a76313a6b6579313a303132333435363738393a3b3c3d3e3f4041424344454647117b09f0e306750a9d9ff8122c5ac87ae5120c5bf8bbfcfbd36831f03e40b924e23784a487f1abfda7c25cb91b7b19d1da4513152cd25e5ce1051a9864d4c3963b80610f81a294"),
    ];

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// One resource (`secrets`) with the given provider snippets in order.
    fn config(providers: &[String]) -> EncryptionConfig {
        let text = format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n{}",
            providers.iter().map(|p| format!("  - {p}\n")).collect::<String>()
        );
        EncryptionConfig::parse(&text).unwrap()
    }

    fn keyed(provider: &str, keys: &[(&str, &str)]) -> String {
        let keys: Vec<String> = keys
            .iter()
            .map(|(n, s)| format!("{{name: {n}, secret: \"{s}\"}}"))
            .collect();
        format!("{provider}: {{keys: [{}]}}", keys.join(", "))
    }

    #[test]
    fn decrypts_upstream_layout_fixtures() {
        for (provider, key, stored) in FIXTURES {
            let cfg = config(&[keyed(provider, &[("key1", key)])]);
            let t = cfg.for_resource("secrets").unwrap();
            let (plain, stale) = t.decrypt(&hex(stored), ETCD_KEY).unwrap();
            assert_eq!(plain, PLAINTEXT, "{provider} {key}");
            assert!(!stale);
        }
    }

    #[test]
    fn round_trips_with_prefix_per_provider() {
        let cases = [
            ("aescbc", KEY32, "k8s:enc:aescbc:v1:key1:"),
            ("aesgcm", KEY16, "k8s:enc:aesgcm:v1:key1:"),
            ("secretbox", KEY32, "k8s:enc:secretbox:v1:key1:"),
        ];
        for (provider, key, prefix) in cases {
            let cfg = config(&[keyed(provider, &[("key1", key)])]);
            let t = cfg.for_resource("secrets").unwrap();
            let stored = t.encrypt(PLAINTEXT, ETCD_KEY).unwrap();
            assert!(stored.starts_with(prefix.as_bytes()), "{provider}");
            let again = t.encrypt(PLAINTEXT, ETCD_KEY).unwrap();
            assert_ne!(stored, again, "{provider}: fresh IV/nonce per write");
            assert_eq!(
                t.decrypt(&stored, ETCD_KEY).unwrap(),
                (PLAINTEXT.to_vec(), false)
            );
        }
    }

    #[test]
    fn identity_writes_plaintext_and_refuses_encrypted_data() {
        let cfg = config(&["identity: {}".into()]);
        let t = cfg.for_resource("secrets").unwrap();
        assert_eq!(t.encrypt(PLAINTEXT, ETCD_KEY).unwrap(), PLAINTEXT);
        assert_eq!(
            t.decrypt(PLAINTEXT, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), false)
        );
        let encrypted = hex(FIXTURES[0].2);
        assert_eq!(
            t.decrypt(&encrypted, ETCD_KEY),
            Err(Error::NoMatchingPrefix)
        );
    }

    #[test]
    fn aesgcm_binds_the_storage_key() {
        let cfg = config(&[keyed("aesgcm", &[("key1", KEY32)])]);
        let t = cfg.for_resource("secrets").unwrap();
        let stored = t.encrypt(PLAINTEXT, ETCD_KEY).unwrap();
        assert_eq!(
            t.decrypt(&stored, b"/registry/secrets/default/other"),
            Err(Error::AuthenticationFailed)
        );
    }

    #[test]
    fn rotation_old_keys_and_providers_still_read_and_are_stale() {
        let old_cbc = config(&[keyed("aescbc", &[("old", KEY16)])]);
        let old_value = old_cbc
            .for_resource("secrets")
            .unwrap()
            .encrypt(PLAINTEXT, ETCD_KEY)
            .unwrap();
        let plain_value = PLAINTEXT.to_vec();

        // New key first within the same provider: the old key reads, stale.
        let rotated = config(&[keyed("aescbc", &[("new", KEY32), ("old", KEY16)])]);
        let t = rotated.for_resource("secrets").unwrap();
        assert_eq!(
            t.decrypt(&old_value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), true)
        );
        let fresh = t.encrypt(PLAINTEXT, ETCD_KEY).unwrap();
        assert!(fresh.starts_with(b"k8s:enc:aescbc:v1:new:"));
        assert_eq!(
            t.decrypt(&fresh, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), false)
        );

        // New provider first, then the old aescbc, then identity for never-encrypted data.
        let migrated = config(&[
            keyed("secretbox", &[("sb", KEY32)]),
            keyed("aescbc", &[("old", KEY16)]),
            "identity: {}".into(),
        ]);
        let t = migrated.for_resource("secrets").unwrap();
        assert_eq!(
            t.decrypt(&old_value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), true)
        );
        assert_eq!(
            t.decrypt(&plain_value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), true)
        );

        // Decrypting back to plaintext: identity first still reads encrypted data, stale.
        let decrypting = config(&["identity: {}".into(), keyed("aescbc", &[("old", KEY16)])]);
        let t = decrypting.for_resource("secrets").unwrap();
        assert_eq!(
            t.decrypt(&old_value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), true)
        );
        assert_eq!(
            t.decrypt(&plain_value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), false)
        );
    }

    #[test]
    fn same_provider_twice_tries_both() {
        // Both share `k8s:enc:aescbc:v1:`; a failure in the first must not hide the second.
        let old = config(&[keyed("aescbc", &[("k", KEY16)])]);
        let value = old
            .for_resource("secrets")
            .unwrap()
            .encrypt(PLAINTEXT, ETCD_KEY)
            .unwrap();
        let cfg = config(&[
            keyed("aescbc", &[("k", KEY32)]),
            keyed("aescbc", &[("k", KEY16)]),
        ]);
        let t = cfg.for_resource("secrets").unwrap();
        assert_eq!(
            t.decrypt(&value, ETCD_KEY).unwrap(),
            (PLAINTEXT.to_vec(), true)
        );
    }

    #[test]
    fn wrong_key_and_tampering_are_errors() {
        for (provider, key, stored) in FIXTURES {
            let other = if *key == KEY32 { KEY16 } else { KEY32 };
            let other = if *provider == "secretbox" {
                "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
            } else {
                other
            };
            let cfg = config(&[keyed(provider, &[("key1", other)])]);
            let t = cfg.for_resource("secrets").unwrap();
            assert!(
                t.decrypt(&hex(stored), ETCD_KEY).is_err(),
                "{provider}: wrong key"
            );

            let right = config(&[keyed(provider, &[("key1", key)])]);
            let t = right.for_resource("secrets").unwrap();
            let mut tampered = hex(stored);
            if let Some(b) = tampered.last_mut() {
                *b ^= 0x01;
            }
            // CBC is unauthenticated: flipping the last byte breaks the padding check.
            assert!(
                t.decrypt(&tampered, ETCD_KEY).is_err(),
                "{provider}: tampered"
            );
        }
    }

    #[test]
    fn upstream_error_texts_on_read() {
        let cfg = config(&[keyed("aescbc", &[("key1", KEY32)])]);
        let t = cfg.for_resource("secrets").unwrap();
        let cases: &[(&[u8], &str)] = &[
            (b"{\"plain\":true}", "no matching prefix found"),
            (
                b"k8s:enc:aescbc:v1:nokey:xxxxxxxxxxxxxxxxxxxxxx",
                "no matching key was found for the provided AES transformer",
            ),
            (
                b"k8s:enc:aescbc:v1:key1:short",
                "the stored data was shorter than the required size",
            ),
            (
                b"k8s:enc:aescbc:v1:key1:0123456789abcdef0123",
                "the stored data is not a multiple of the block size",
            ),
            (b"", "no matching prefix found"),
        ];
        for (stored, want) in cases {
            assert_eq!(t.decrypt(stored, ETCD_KEY).unwrap_err().to_string(), *want);
        }
        let sb = config(&[keyed("secretbox", &[("key1", KEY32)])]);
        let t = sb.for_resource("secrets").unwrap();
        let err = t
            .decrypt(b"k8s:enc:secretbox:v1:other:", ETCD_KEY)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no matching key was found for the provided Secretbox transformer"
        );
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let cfg = config(&[
            keyed("aesgcm", &[("a", KEY16)]),
            keyed("aescbc", &[("a", KEY24)]),
            keyed("secretbox", &[("a", KEY32)]),
            "identity: {}".into(),
        ]);
        let t = cfg.for_resource("secrets").unwrap();
        let prefixes: [&[u8]; 4] = [
            b"k8s:enc:aesgcm:v1:a:",
            b"k8s:enc:aescbc:v1:a:",
            b"k8s:enc:secretbox:v1:a:",
            b"k8s:enc:",
        ];
        let mut seed = 0x9e3779b9u32;
        for prefix in prefixes {
            for len in 0..80 {
                let mut v = prefix.to_vec();
                for _ in 0..len {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    v.push((seed >> 24) as u8);
                }
                assert!(t.decrypt(&v, ETCD_KEY).is_err());
            }
        }
    }

    #[test]
    fn debug_never_shows_keys() {
        let cfg = config(&[keyed("aescbc", &[("key1", KEY32)])]);
        let shown = format!("{cfg:?}");
        assert!(shown.contains("key1"));
        assert!(!shown.contains(KEY32));
        assert!(!shown.contains("[0, 1, 2"));
    }
}
