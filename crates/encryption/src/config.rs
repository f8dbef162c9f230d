//! Decoding an `EncryptionConfiguration` document and building the per-resource transformers,
//! following upstream's `encryptionconfig.LoadEncryptionConfig`: decode strictly, default,
//! validate, then build providers in file order, rejecting rules masked by earlier wildcards.

use std::collections::HashMap;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;

use crate::aes_cbc::AesCbc;
use crate::aes_gcm::AesGcmCipher;
use crate::secretbox::Secretbox;
use crate::transformer::{
    KeyCipher, NamedKey, Provider, Transformer, AES_CBC_PREFIX, AES_GCM_PREFIX, SECRETBOX_PREFIX,
};
use crate::{validation, Error};

const API_VERSION: &str = "apiserver.config.k8s.io/v1";
const KIND: &str = "EncryptionConfiguration";

/// A loaded encryption configuration: which transformer applies to which group-resource.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    transformers: HashMap<GroupResource, Transformer>,
}

/// A group-resource as upstream's `schema.ParseGroupResource` splits it: the resource is
/// everything before the first `.`, the group everything after.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct GroupResource {
    pub(crate) group: String,
    pub(crate) resource: String,
}

impl GroupResource {
    pub(crate) fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((resource, group)) => Self {
                group: group.into(),
                resource: resource.into(),
            },
            None => Self {
                group: String::new(),
                resource: s.into(),
            },
        }
    }

    fn any_in_group(group: &str) -> Self {
        Self {
            group: group.into(),
            resource: "*".into(),
        }
    }

    fn any() -> Self {
        Self::any_in_group("*")
    }

    /// How the rule is spelled in the file (upstream's `grYAMLString`).
    fn yaml_string(&self) -> String {
        if self.group.is_empty() && self.resource == "*" {
            "*.".into()
        } else if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

impl EncryptionConfig {
    /// Parses and validates an `EncryptionConfiguration` document (YAML or JSON), with
    /// upstream's errors for bad input, and builds the transformers.
    pub fn parse(text: &str) -> Result<EncryptionConfig, Error> {
        if text.trim().is_empty() {
            return Err(Error::Empty);
        }
        let mut raw = decode(text)?;
        raw.set_defaults();
        let errors = validation::validate(&raw);
        if !errors.is_empty() {
            return Err(Error::Invalid(errors));
        }
        build(&raw)
    }

    /// The transformer for a resource named as upstream names a group-resource (`secrets`,
    /// `configmaps`, `deployments.apps`, ...), after exact, `*.<group>` and `*.*` rules in
    /// that order; `None` when no rule applies and values are stored as they are.
    pub fn for_resource(&self, group_resource: &str) -> Option<&Transformer> {
        let gr = GroupResource::parse(group_resource);
        self.transformers
            .get(&gr)
            .or_else(|| {
                self.transformers
                    .get(&GroupResource::any_in_group(&gr.group))
            })
            .or_else(|| self.transformers.get(&GroupResource::any()))
    }
}

fn decode(text: &str) -> Result<RawConfig, Error> {
    // JSON is YAML, but serde_json gives better messages for JSON input.
    let raw: RawConfig = if text.trim_start().starts_with('{') {
        serde_json::from_str(text)
            .map_err(|e| Error::Decode(format!("strict decoding error: {e}")))?
    } else {
        serde_yaml::from_str(text)
            .map_err(|e| Error::Decode(format!("strict decoding error: {e}")))?
    };
    // Upstream echoes the whole document here; we leave it out because it holds the keys.
    let kind = raw.kind.as_deref().unwrap_or_default();
    if kind.is_empty() {
        return Err(Error::Decode("Object 'Kind' is missing".into()));
    }
    let api_version = raw.api_version.as_deref().unwrap_or_default();
    if api_version.is_empty() {
        return Err(Error::Decode("Object 'apiVersion' is missing".into()));
    }
    if kind != KIND || api_version != API_VERSION {
        return Err(Error::Decode(format!(
            "no kind {} is registered for version {}",
            crate::error::go_quote(kind),
            crate::error::go_quote(api_version)
        )));
    }
    Ok(raw)
}

/// Go's `base64.StdEncoding`: padding required, stray trailing bits tolerated, and CR/LF
/// skipped anywhere in the input.
pub(crate) fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    const GO_STD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    let cleaned: String = secret
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .collect();
    GO_STD.decode(cleaned).ok()
}

fn build(raw: &RawConfig) -> Result<EncryptionConfig, Error> {
    let mut transformers: HashMap<GroupResource, Transformer> = HashMap::new();
    for conf in raw.resources.as_deref().unwrap_or_default() {
        let providers = conf
            .providers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(build_provider)
            .collect::<Result<Vec<_>, _>>()?;
        if providers.is_empty() {
            // Validation rejects this already; never build a transformer that cannot write.
            continue;
        }
        for name in conf.resources.as_deref().unwrap_or_default() {
            let gr = GroupResource::parse(name);
            for rule in [GroupResource::any_in_group(&gr.group), GroupResource::any()] {
                if transformers.contains_key(&rule) {
                    return Err(Error::Masked {
                        resource: gr.yaml_string(),
                        rule: rule.yaml_string(),
                    });
                }
            }
            // A resource named again in a later entry gets the later providers appended,
            // readable but never used for writing, as upstream does.
            match transformers.get_mut(&gr) {
                Some(existing) => existing.extend(&providers),
                None => {
                    transformers.insert(gr, Transformer::new(providers.clone()));
                }
            }
        }
    }
    Ok(EncryptionConfig { transformers })
}

fn build_provider(p: &RawProvider) -> Result<Provider, Error> {
    // Same precedence as upstream's switch.
    if let Some(aes) = &p.aesgcm {
        return keyed(aes, AES_GCM_PREFIX, "AES", |k| {
            AesGcmCipher::new(k).map(KeyCipher::AesGcm)
        });
    }
    if let Some(aes) = &p.aescbc {
        return keyed(aes, AES_CBC_PREFIX, "AES", |k| {
            AesCbc::new(k).map(KeyCipher::AesCbc)
        });
    }
    if let Some(sb) = &p.secretbox {
        return keyed(sb, SECRETBOX_PREFIX, "Secretbox", |k| {
            Secretbox::new(k).map(KeyCipher::Secretbox)
        });
    }
    if let Some(kms) = &p.kms {
        return Err(Error::KmsNotSupported {
            name: kms.name.clone().unwrap_or_default(),
            api_version: kms.api_version.clone().unwrap_or_default(),
        });
    }
    if p.identity.is_some() {
        return Ok(Provider::Identity);
    }
    Err(Error::Decode(
        "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity"
            .into(),
    ))
}

fn keyed(
    config: &RawAes,
    prefix: &'static str,
    label: &'static str,
    make: impl Fn(&[u8]) -> Option<KeyCipher>,
) -> Result<Provider, Error> {
    let mut keys = Vec::new();
    for key in config.keys.as_deref().unwrap_or_default() {
        let name = key.name.as_deref().unwrap_or_default();
        // Validation has checked all of this; these errors only guard the invariant.
        let bytes = decode_secret(key.secret.as_deref().unwrap_or_default()).ok_or_else(|| {
            Error::Decode(format!("could not obtain secret for named key {name}"))
        })?;
        let cipher = make(&bytes).ok_or_else(|| {
            Error::Decode(format!("error while creating cipher for named key {name}"))
        })?;
        keys.push(NamedKey {
            prefix: format!("{name}:").into_bytes(),
            cipher,
        });
    }
    if keys.is_empty() {
        return Err(Error::Decode(format!(
            "{} provider has no valid keys",
            label.to_lowercase()
        )));
    }
    Ok(Provider::Keyed {
        prefix,
        label,
        keys,
    })
}

// Wire types of apiserver.config.k8s.io/v1. Every field is optional here so that missing and
// null values reach validation (and its upstream messages) instead of failing decoding.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RawConfig {
    pub(crate) kind: Option<String>,
    pub(crate) api_version: Option<String>,
    pub(crate) resources: Option<Vec<RawResourceConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResourceConfig {
    pub(crate) resources: Option<Vec<String>>,
    pub(crate) providers: Option<Vec<RawProvider>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) aesgcm: Option<RawAes>,
    pub(crate) aescbc: Option<RawAes>,
    pub(crate) secretbox: Option<RawAes>,
    pub(crate) identity: Option<RawIdentity>,
    pub(crate) kms: Option<RawKms>,
}

/// Shared by `aesgcm`, `aescbc` and `secretbox`, whose v1 shapes are identical.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAes {
    pub(crate) keys: Option<Vec<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKey {
    pub(crate) name: Option<String>,
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for RawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawKey")
            .field("name", &self.name)
            .field("secret", &"REDACTED")
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIdentity {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKms {
    #[serde(rename = "apiVersion")]
    pub(crate) api_version: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) endpoint: Option<String>,
    pub(crate) cachesize: Option<i32>,
    pub(crate) timeout: Option<String>,
    /// Parsed `timeout`, filled by defaulting.
    #[serde(skip)]
    pub(crate) timeout_seconds: f64,
}

impl RawConfig {
    /// Upstream's `SetDefaults_KMSConfiguration`: apiVersion v1, timeout 3s, cachesize 1000 (v1).
    fn set_defaults(&mut self) {
        let confs = self.resources.iter_mut().flatten();
        for provider in confs.flat_map(|c| c.providers.iter_mut().flatten()) {
            if let Some(kms) = &mut provider.kms {
                if kms.api_version.as_deref().unwrap_or_default().is_empty() {
                    kms.api_version = Some("v1".into());
                }
                if kms.timeout.is_none() {
                    kms.timeout = Some("3s".into());
                }
                kms.timeout_seconds = kms
                    .timeout
                    .as_deref()
                    .and_then(parse_go_duration)
                    .unwrap_or(0.0);
                if kms.api_version.as_deref() == Some("v1") && kms.cachesize.is_none() {
                    kms.cachesize = Some(1000);
                }
            }
        }
    }
}

/// A Go `time.Duration` string (`3s`, `1m30s`, `-2h`, `500ms`) in seconds.
fn parse_go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_end);
        let value: f64 = num.parse().ok()?;
        let unit_end = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_end);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * scale;
        rest = tail;
    }
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY32: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const HEAD: &str = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\n";

    fn err(text: &str) -> String {
        EncryptionConfig::parse(text).unwrap_err().to_string()
    }

    #[test]
    fn resource_lookup_exact_then_group_wildcard_then_everything() {
        let text = format!(
            "{HEAD}resources:\n\
             - resources: [secrets, deployments.apps]\n  providers: [{{aescbc: {{keys: [{{name: a, secret: \"{KEY32}\"}}]}}}}]\n\
             - resources: ['*.']\n  providers: [{{secretbox: {{keys: [{{name: b, secret: \"{KEY32}\"}}]}}}}]\n\
             - resources: ['*.apps']\n  providers: [{{aesgcm: {{keys: [{{name: c, secret: \"{KEY32}\"}}]}}}}]\n\
             - resources: ['*.*']\n  providers: [{{identity: {{}}}}]\n"
        );
        let cfg = EncryptionConfig::parse(&text).unwrap();
        let cases = [
            ("secrets", "aescbc"),
            ("deployments.apps", "aescbc"),
            ("configmaps", "secretbox"),
            ("statefulsets.apps", "aesgcm"),
            ("roles.rbac.authorization.k8s.io", "identity"),
        ];
        for (resource, want) in cases {
            let t = cfg.for_resource(resource).unwrap();
            assert_eq!(t.provider_names(), vec![want], "{resource}");
        }
    }

    #[test]
    fn unconfigured_resources_have_no_transformer() {
        let text = format!(
            "{HEAD}resources:\n- resources: [secrets]\n  providers: [{{identity: {{}}}}]\n"
        );
        let cfg = EncryptionConfig::parse(&text).unwrap();
        assert!(cfg.for_resource("secrets").is_some());
        assert!(cfg.for_resource("configmaps").is_none());
        assert!(cfg.for_resource("secrets.apps").is_none());
    }

    #[test]
    fn json_documents_are_accepted_and_repeated_resources_append() {
        let text = format!(
            r#"{{"apiVersion":"apiserver.config.k8s.io/v1","kind":"EncryptionConfiguration","resources":[
                {{"resources":["secrets"],"providers":[{{"aesgcm":{{"keys":[{{"name":"k","secret":"{KEY32}"}}]}}}}]}},
                {{"resources":["secrets"],"providers":[{{"identity":{{}}}}]}}]}}"#
        );
        let cfg = EncryptionConfig::parse(&text).unwrap();
        let t = cfg.for_resource("secrets").unwrap();
        assert_eq!(t.provider_names(), vec!["aesgcm", "identity"]);
    }

    #[test]
    fn masked_rules_are_rejected() {
        let cases = [
            (
                "['*.']",
                "[secrets]",
                r#"resource "secrets" is masked by earlier rule "*.""#,
            ),
            (
                "['*.*']",
                "[deployments.apps]",
                r#"resource "deployments.apps" is masked by earlier rule "*.*""#,
            ),
            (
                "['*.apps']",
                "['*.apps']",
                r#"resource "*.apps" is masked by earlier rule "*.apps""#,
            ),
        ];
        for (first, second, want) in cases {
            let text = format!(
                "{HEAD}resources:\n- resources: {first}\n  providers: [{{identity: {{}}}}]\n- resources: {second}\n  providers: [{{identity: {{}}}}]\n"
            );
            assert_eq!(err(&text), want, "{first} then {second}");
        }
    }

    #[test]
    fn validation_errors_match_upstream() {
        let one = |resources: &str, providers: &str| {
            err(&format!(
                "{HEAD}resources:\n- resources: {resources}\n  providers: {providers}\n"
            ))
        };
        let id = "[{identity: {}}]";
        let cases = [
            (err(&format!("{HEAD}resources: []\n")), "resources: Required value: at least one resources is required".to_string()),
            (one("[]", id), "resources[0].resources: Required value: at least one resources[0].resources is required".into()),
            (one("[secrets]", "[]"), "resources[0].providers: Required value: at least one resources[0].providers is required".into()),
            (one("[secrets, secrets]", id), r#"resources[0].resources: Invalid value: []string{"secrets", "secrets"}: the same resource cannot be specified multiple times"#.into()),
            (one("[secrets, '*.']", id), r#"resources[0].resources: Invalid value: []string{"secrets", "*."}: using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked"#.into()),
            (one("[Secrets]", id), r#"resources[0].resources[0]: Invalid value: "Secrets": resource name should not contain capital letters"#.into()),
            (one("['*']", id), r#"resources[0].resources[0]: Invalid value: "*": use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources"#.into()),
            (one("[serviceipallocations]", id), r#"resources[0].resources[0]: Invalid value: "serviceipallocations": resources which do not have REST API/s cannot be encrypted"#.into()),
            (one("[events.events.k8s.io]", id), r#"resources[0].resources[0]: Invalid value: "events.events.k8s.io": '*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file"#.into()),
            (one("[deployments.extensions]", id), r#"resources[0].resources[0]: Invalid value: "deployments.extensions": 'extensions' group has been removed and cannot be used for encryption"#.into()),
            (one("['secrets.*']", id), r#"resources[0].resources[0]: Invalid value: "secrets.*": encrypting the same resource across groups is not supported"#.into()),
            (one("[secrets]", "[{aescbc: {keys: []}}]"), "resources[0].providers[0].aescbc.keys: Required value: at least one keys is required".into()),
            (one("[secrets]", "[{aesgcm: {keys: [{name: k, secret: 'not base64!'}]}}]"), r#"resources[0].providers[0].aesgcm.keys[0].secret: Invalid value: "REDACTED": secrets must be base64 encoded"#.into()),
            (one("[secrets]", "[{aescbc: {keys: [{name: k, secret: 'AAAA'}]}}]"), r#"resources[0].providers[0].aescbc.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 3, expected one of [16 24 32]"#.into()),
            (one("[secrets]", "[{secretbox: {keys: [{name: k, secret: 'AAECAwQFBgcICQoLDA0ODw=='}]}}]"), r#"resources[0].providers[0].secretbox.keys[0].secret: Invalid value: "REDACTED": secret is not of the expected length, got 16, expected one of [32]"#.into()),
            (one("[secrets]", "[{aescbc: {keys: [{secret: ''}]}}]"), "[resources[0].providers[0].aescbc.keys[0].name: Required value: name is a mandatory field for a key, resources[0].providers[0].aescbc.keys[0].secret: Required value: secret is a mandatory field for a key]".into()),
            (one("[secrets]", "[{}]"), "resources[0].providers[0]: Invalid value: apiserver.ProviderConfiguration{AESGCM:(*apiserver.AESConfiguration)(nil), AESCBC:(*apiserver.AESConfiguration)(nil), Secretbox:(*apiserver.SecretboxConfiguration)(nil), Identity:(*apiserver.IdentityConfiguration)(nil), KMS:(*apiserver.KMSConfiguration)(nil)}: provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity".into()),
            (one("[secrets]", "[{kms: {apiVersion: v3, name: a, endpoint: 'tcp://x'}}]"), r#"[resources[0].providers[0].kms.endpoint: Invalid value: "tcp://x": unsupported scheme "tcp" for KMS provider, only unix is supported, resources[0].providers[0].kms.apiVersion: Invalid value: "v3": unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported]"#.into()),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        let two = one(
            "[secrets]",
            "[{identity: {}, aescbc: {keys: [{name: k, secret: 'AAECAwQFBgcICQoLDA0ODw=='}]}}]",
        );
        assert!(two.ends_with("more than one provider specified in a single element, should split into different list elements"), "{two}");
    }

    #[test]
    fn kms_is_parsed_then_refused() {
        let text = format!(
            "{HEAD}resources:\n- resources: [secrets]\n  providers:\n  - kms: {{apiVersion: v2, name: vault, endpoint: 'unix:///tmp/kms.sock', timeout: 3s}}\n"
        );
        assert_eq!(
            EncryptionConfig::parse(&text).unwrap_err(),
            Error::KmsNotSupported {
                name: "vault".into(),
                api_version: "v2".into()
            }
        );
    }

    #[test]
    fn decoding_errors() {
        assert_eq!(EncryptionConfig::parse("  \n").unwrap_err(), Error::Empty);
        let cases = [
            ("resources: []\n", "Object 'Kind' is missing"),
            (
                "kind: EncryptionConfiguration\n",
                "Object 'apiVersion' is missing",
            ),
            (
                "apiVersion: apiserver.config.k8s.io/v2\nkind: EncryptionConfiguration\n",
                r#"no kind "EncryptionConfiguration" is registered for version "apiserver.config.k8s.io/v2""#,
            ),
            (
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nbogus: 1\n",
                "unknown field",
            ),
            ("[[[", "strict decoding error"),
            ("{\"kind\": 1}", "strict decoding error"),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(
                got.starts_with("error decoding encryption provider configuration: "),
                "{got}"
            );
            assert!(got.contains(want), "{text:?}: {got}");
        }
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!(
            "{HEAD}resources: {}{}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(EncryptionConfig::parse(&deep).is_err());
        let deep_json = format!(
            "{{\"resources\": {}{}}}",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(EncryptionConfig::parse(&deep_json).is_err());
    }

    #[test]
    fn go_style_base64_and_durations() {
        assert_eq!(
            decode_secret("AAECAwQFBgcICQoLDA0ODw==").map(|v| v.len()),
            Some(16)
        );
        assert_eq!(
            decode_secret("AAECAwQFBgcI\nCQoLDA0ODw==").map(|v| v.len()),
            Some(16)
        );
        assert!(
            decode_secret("AAECAwQFBgcICQoLDA0ODw").is_none(),
            "padding is required"
        );
        let cases = [
            ("3s", Some(3.0)),
            ("1m30s", Some(90.0)),
            ("-2h", Some(-7200.0)),
            ("0", Some(0.0)),
            ("500ms", Some(0.5)),
            ("3", None),
            ("", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_go_duration(input), want, "{input}");
        }
    }

    #[test]
    fn group_resource_parsing() {
        let cases = [
            ("secrets", "", "secrets", "secrets"),
            (
                "deployments.apps",
                "apps",
                "deployments",
                "deployments.apps",
            ),
            ("*.", "", "*", "*."),
            ("*.*", "*", "*", "*.*"),
            (
                "roles.rbac.authorization.k8s.io",
                "rbac.authorization.k8s.io",
                "roles",
                "roles.rbac.authorization.k8s.io",
            ),
        ];
        for (input, group, resource, yaml) in cases {
            let gr = GroupResource::parse(input);
            assert_eq!((gr.group.as_str(), gr.resource.as_str()), (group, resource));
            assert_eq!(gr.yaml_string(), yaml);
        }
    }
}
