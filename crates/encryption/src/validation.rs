//! Upstream's `ValidateEncryptionConfiguration` (apiserver/pkg/apis/apiserver/validation),
//! with the same field paths, checks, order and detail texts, so that a rejected file gives the
//! operator the message they would get from kube-apiserver.

use crate::config::{GroupResource, RawAes, RawConfig, RawKey, RawKms, RawProvider};
use crate::error::{go_quote, FieldError, FieldErrorKind};

const MORE_THAN_ONE_ELEMENT: &str = "more than one provider specified in a single element, should split into different list elements";
const NO_PROVIDER: &str = "provider does not contain any of the expected providers: KMS, AESGCM, AESCBC, Secretbox, Identity";
const BASE64_ENCODING: &str = "secrets must be base64 encoded";
const EVENTS_GROUP: &str = "'*.events.k8s.io' objects are stored using the 'events' API group in etcd. Use 'events' instead in the config file";
const EXTENSIONS_GROUP: &str =
    "'extensions' group has been removed and cannot be used for encryption";
const STAR_RESOURCE: &str =
    "use '*.' to encrypt all the resources from core API group or *.* to encrypt all resources";
const OVERLAP: &str = "using overlapping resources such as 'secrets' and '*.' in the same resource list is not allowed as they will be masked";
const NON_REST_API_RESOURCE: &str = "resources which do not have REST API/s cannot be encrypted";
const RESOURCE_NAME: &str = "resource name should not contain capital letters";
const RESOURCE_ACROSS_GROUP: &str = "encrypting the same resource across groups is not supported";
const DUPLICATE_RESOURCE: &str = "the same resource cannot be specified multiple times";

const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const SECRETBOX_KEY_SIZES: &[usize] = &[32];

fn required(field: String, detail: String) -> FieldError {
    FieldError {
        field,
        kind: FieldErrorKind::Required,
        detail,
    }
}

fn invalid(field: String, value: String, detail: impl Into<String>) -> FieldError {
    FieldError {
        field,
        kind: FieldErrorKind::Invalid(value),
        detail: detail.into(),
    }
}

/// Validates a decoded (and defaulted) configuration; empty when it is acceptable.
pub(crate) fn validate(config: &RawConfig) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let resources = config.resources.as_deref().unwrap_or_default();
    if resources.is_empty() {
        errs.push(required(
            "resources".into(),
            "at least one resources is required".into(),
        ));
        return errs;
    }
    let mut kms_names: Vec<String> = Vec::new();
    for (i, conf) in resources.iter().enumerate() {
        let r = format!("resources[{i}].resources");
        let p = format!("resources[{i}].providers");
        let names = conf.resources.as_deref().unwrap_or_default();
        if names.is_empty() {
            errs.push(required(r.clone(), format!("at least one {r} is required")));
        }
        validate_resource_overlap(names, &r, &mut errs);
        validate_resource_names(names, &r, &mut errs);

        let providers = conf.providers.as_deref().unwrap_or_default();
        if providers.is_empty() {
            errs.push(required(p.clone(), format!("at least one {p} is required")));
        }
        for (j, provider) in providers.iter().enumerate() {
            let path = format!("{p}[{j}]");
            validate_single_provider(provider, &path, &mut errs);
            // Same precedence as upstream's switch: only the first set provider is checked.
            if let Some(kms) = &provider.kms {
                validate_kms(kms, &format!("{path}.kms"), &kms_names, &mut errs);
                kms_names.push(kms.name.clone().unwrap_or_default());
            } else if let Some(aes) = &provider.aesgcm {
                validate_keys(
                    aes,
                    &format!("{path}.aesgcm.keys"),
                    AES_KEY_SIZES,
                    &mut errs,
                );
            } else if let Some(aes) = &provider.aescbc {
                validate_keys(
                    aes,
                    &format!("{path}.aescbc.keys"),
                    AES_KEY_SIZES,
                    &mut errs,
                );
            } else if let Some(sb) = &provider.secretbox {
                validate_keys(
                    sb,
                    &format!("{path}.secretbox.keys"),
                    SECRETBOX_KEY_SIZES,
                    &mut errs,
                );
            }
        }
    }
    errs
}

/// Go's `%#v` of a `[]string`.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn validate_resource_overlap(resources: &[String], field: &str, errs: &mut Vec<FieldError>) {
    if resources.len() < 2 {
        return;
    }
    let parsed: Vec<GroupResource> = resources.iter().map(|r| GroupResource::parse(r)).collect();
    let (mut has_overlap, mut has_duplicate) = (false, false);
    // Quadratic like upstream; lists are short and this keeps the flag logic identical.
    for (i, r1) in parsed.iter().enumerate() {
        for (j, r2) in parsed.iter().enumerate() {
            if i == j {
                continue;
            }
            if r1 == r2 && !has_duplicate {
                has_duplicate = true;
                continue;
            }
            if has_overlap {
                continue;
            }
            if r1.group == "*" && r1.resource == "*" {
                has_overlap = true;
                continue;
            }
            if r1.group != r2.group {
                continue;
            }
            if r1.resource == "*" || r2.resource == "*" {
                has_overlap = true;
            }
        }
    }
    if has_duplicate {
        errs.push(invalid(
            field.into(),
            go_string_slice(resources),
            DUPLICATE_RESOURCE,
        ));
    }
    if has_overlap {
        errs.push(invalid(field.into(), go_string_slice(resources), OVERLAP));
    }
}

fn validate_resource_names(resources: &[String], field: &str, errs: &mut Vec<FieldError>) {
    for (j, res) in resources.iter().enumerate() {
        let path = format!("{field}[{j}]");
        let value = go_quote(res);
        let gr = GroupResource::parse(res);
        let detail = if res.to_lowercase() != *res {
            RESOURCE_NAME
        } else if res == "*" {
            STAR_RESOURCE
        } else if matches!(
            res.as_str(),
            "apiserveripinfo" | "serviceipallocations" | "servicenodeportallocations"
        ) {
            NON_REST_API_RESOURCE
        } else if gr.group == "events.k8s.io" {
            EVENTS_GROUP
        } else if gr.group == "extensions" {
            EXTENSIONS_GROUP
        } else if gr.group == "*" && gr.resource != "*" {
            RESOURCE_ACROSS_GROUP
        } else {
            continue;
        };
        errs.push(invalid(path, value, detail));
    }
}

/// Go's `%#v` of the internal `ProviderConfiguration`. Go prints set pointers as memory
/// addresses, which no one can reproduce; we print `(set)` there.
fn go_provider(p: &RawProvider) -> String {
    fn ptr(name: &str, set: bool) -> String {
        format!("(*apiserver.{name})({})", if set { "set" } else { "nil" })
    }
    format!(
        "apiserver.ProviderConfiguration{{AESGCM:{}, AESCBC:{}, Secretbox:{}, Identity:{}, KMS:{}}}",
        ptr("AESConfiguration", p.aesgcm.is_some()),
        ptr("AESConfiguration", p.aescbc.is_some()),
        ptr("SecretboxConfiguration", p.secretbox.is_some()),
        ptr("IdentityConfiguration", p.identity.is_some()),
        ptr("KMSConfiguration", p.kms.is_some()),
    )
}

fn validate_single_provider(p: &RawProvider, path: &str, errs: &mut Vec<FieldError>) {
    let found = [
        p.kms.is_some(),
        p.aesgcm.is_some(),
        p.aescbc.is_some(),
        p.secretbox.is_some(),
        p.identity.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if found == 0 {
        errs.push(invalid(path.into(), go_provider(p), NO_PROVIDER));
    } else if found > 1 {
        errs.push(invalid(path.into(), go_provider(p), MORE_THAN_ONE_ELEMENT));
    }
}

fn validate_keys(config: &RawAes, path: &str, sizes: &[usize], errs: &mut Vec<FieldError>) {
    let keys = config.keys.as_deref().unwrap_or_default();
    if keys.is_empty() {
        errs.push(required(
            path.into(),
            "at least one keys is required".into(),
        ));
        return;
    }
    for (i, key) in keys.iter().enumerate() {
        validate_key(key, &format!("{path}[{i}]"), sizes, errs);
    }
}

fn validate_key(key: &RawKey, path: &str, sizes: &[usize], errs: &mut Vec<FieldError>) {
    if key.name.as_deref().unwrap_or_default().is_empty() {
        errs.push(required(
            format!("{path}.name"),
            "name is a mandatory field for a key".into(),
        ));
    }
    let secret = key.secret.as_deref().unwrap_or_default();
    if secret.is_empty() {
        errs.push(required(
            format!("{path}.secret"),
            "secret is a mandatory field for a key".into(),
        ));
        return;
    }
    let redacted = go_quote("REDACTED");
    let Some(bytes) = crate::config::decode_secret(secret) else {
        errs.push(invalid(format!("{path}.secret"), redacted, BASE64_ENCODING));
        return;
    };
    if !sizes.contains(&bytes.len()) {
        let expected: Vec<String> = sizes.iter().map(ToString::to_string).collect();
        errs.push(invalid(
            format!("{path}.secret"),
            redacted,
            format!(
                "secret is not of the expected length, got {}, expected one of [{}]",
                bytes.len(),
                expected.join(" ")
            ),
        ));
    }
}

fn validate_kms(c: &RawKms, path: &str, seen_names: &[String], errs: &mut Vec<FieldError>) {
    let name = c.name.as_deref().unwrap_or_default();
    let api_version = c.api_version.as_deref().unwrap_or_default();
    // name
    let name_path = format!("{path}.name");
    if name.is_empty() {
        errs.push(required(
            name_path.clone(),
            "name is a mandatory field for a provider".into(),
        ));
    }
    if api_version != "v1" && name.contains(':') {
        errs.push(invalid(
            name_path.clone(),
            go_quote(name),
            format!("invalid KMS provider name {name}, must not contain ':'"),
        ));
    }
    // Upstream only enforces uniqueness for v1 on config reload, which we do not do.
    if api_version != "v1" && seen_names.iter().any(|n| n == name) {
        errs.push(invalid(
            name_path,
            go_quote(name),
            format!("duplicate KMS provider name {name}, names must be unique"),
        ));
    }
    // timeout (already defaulted to 3s when absent)
    if c.timeout_seconds <= 0.0 {
        errs.push(invalid(
            format!("{path}.timeout"),
            c.timeout.clone().unwrap_or_default(),
            "timeout should be a positive value",
        ));
    }
    // endpoint
    let endpoint = c.endpoint.as_deref().unwrap_or_default();
    let endpoint_path = format!("{path}.endpoint");
    if endpoint.is_empty() {
        errs.push(invalid(
            endpoint_path,
            go_quote(""),
            "endpoint is a mandatory field for a kms",
        ));
    } else {
        // Go's url.Parse lower-cases the scheme.
        let scheme = url_scheme(endpoint).to_ascii_lowercase();
        if scheme != "unix" {
            errs.push(invalid(
                endpoint_path,
                go_quote(endpoint),
                format!(
                    "unsupported scheme {} for KMS provider, only unix is supported",
                    go_quote(&scheme)
                ),
            ));
        }
    }
    // cachesize (defaulted to 1000 for v1 when absent)
    if api_version != "v1" {
        if let Some(size) = c.cachesize {
            errs.push(invalid(
                format!("{path}.cachesize"),
                size.to_string(),
                "cachesize is not supported in v2",
            ));
        }
    }
    if api_version == "v1" && c.cachesize == Some(0) {
        errs.push(invalid(
            format!("{path}.cachesize"),
            "0".into(),
            "cachesize should be a positive value, or negative to disable",
        ));
    }
    // apiVersion; upstream formats the literal word "apiVersion" into its message.
    if api_version != "v1" && api_version != "v2" {
        errs.push(invalid(
            format!("{path}.apiVersion"),
            go_quote(api_version),
            "unsupported apiVersion apiVersion for KMS provider, only v1 and v2 are supported",
        ));
    }
}

/// The scheme as Go's `url.Parse` finds it: a leading `[A-Za-z][A-Za-z0-9+.-]*` before `:`.
fn url_scheme(s: &str) -> &str {
    let Some((scheme, _)) = s.split_once(':') else {
        return "";
    };
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if valid {
        scheme
    } else {
        ""
    }
}
