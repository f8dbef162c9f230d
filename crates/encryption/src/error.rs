//! The crate's one error type, with upstream's message texts so that logs and API errors read
//! the same as kube-apiserver's.

use std::fmt;

/// Everything that can go wrong while loading a configuration or transforming a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The configuration document had no content at all.
    #[error("encryption provider configuration is empty")]
    Empty,
    /// The document is not a well-formed `EncryptionConfiguration` (syntax, types, unknown fields,
    /// wrong `apiVersion`/`kind`).
    #[error("error decoding encryption provider configuration: {0}")]
    Decode(String),
    /// Upstream's `ValidateEncryptionConfiguration` rejected the document.
    #[error("{}", aggregate_message(.0.iter().map(ToString::to_string)))]
    Invalid(Vec<FieldError>),
    /// A resource is listed after a wildcard rule (`*.group` or `*.*`) that already covers it.
    #[error("resource {} is masked by earlier rule {}", go_quote(.resource), go_quote(.rule))]
    Masked { resource: String, rule: String },
    /// KMS providers need an external plugin; this implementation refuses them.
    #[error("KMS provider {} (apiVersion {api_version}) is not supported: only aescbc, aesgcm, secretbox and identity providers are", go_quote(.name))]
    KmsNotSupported { name: String, api_version: String },

    /// A stored value is too short to hold the nonce/IV (and tag) of its provider.
    #[error("the stored data was shorter than the required size")]
    TooShort,
    /// AES-CBC ciphertext that is not whole blocks.
    #[error("the stored data is not a multiple of the block size")]
    InvalidBlockSize,
    /// AES-CBC plaintext whose last byte is not a possible PKCS#7 pad length.
    #[error("invalid PKCS7 data (empty or not padded)")]
    InvalidPkcs7Data,
    /// AES-CBC plaintext whose pad bytes disagree (wrong key or tampered data).
    #[error("invalid padding on input")]
    InvalidPkcs7Padding,
    /// AES-GCM tag mismatch: wrong key, tampered data, or a value moved to another storage key.
    #[error("cipher: message authentication failed")]
    AuthenticationFailed,
    /// Secretbox open failed (upstream's text, although the cause is an authentication failure).
    #[error("output array was not large enough for encryption")]
    SecretboxOpenFailed,
    /// The identity provider saw data carrying the reserved `k8s:enc:` prefix.
    #[error("identity transformer tried to read encrypted data")]
    IdentityReadEncrypted,
    /// No provider of the resource recognises the stored value's prefix.
    #[error("no matching prefix found")]
    NoMatchingPrefix,
    /// The provider matched but none of its keys' names did.
    #[error("no matching key was found for the provided {0} transformer")]
    NoMatchingKey(&'static str),
    /// The operating system's random source failed.
    #[error("unable to read sufficient random bytes")]
    Random,
    /// The cipher refused to encrypt (only possible for absurdly large values).
    #[error("encryption failed: {0}")]
    Encrypt(&'static str),
    /// Several providers matched and all failed; upstream reports them together.
    #[error("{}", aggregate_message(flatten(.0)))]
    Aggregate(Vec<Error>),
}

/// One validation failure, rendered like apimachinery's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field path, e.g. `resources[0].providers[1].aescbc.keys[0].secret`.
    pub field: String,
    /// `Required` carries no value; `Invalid` carries the value already rendered as Go prints it.
    pub kind: FieldErrorKind,
    /// Upstream's detail text.
    pub detail: String,
}

/// The two `field.ErrorType`s that encryption-configuration validation produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldErrorKind {
    Required,
    Invalid(String),
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FieldErrorKind::Required => write!(f, "{}: Required value", self.field)?,
            FieldErrorKind::Invalid(value) => write!(f, "{}: Invalid value: {value}", self.field)?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Leaf messages of nested aggregates, in order, as apimachinery's `aggregate.visit` walks them.
fn flatten(errors: &[Error]) -> Vec<String> {
    let mut out = Vec::new();
    // Explicit stack instead of recursion: nesting is shallow in practice, but never trust it.
    let mut stack: Vec<std::slice::Iter<'_, Error>> = vec![errors.iter()];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(Error::Aggregate(inner)) => stack.push(inner.iter()),
            Some(other) => out.push(other.to_string()),
            None => {
                stack.pop();
            }
        }
    }
    out
}

/// apimachinery's aggregate text: duplicates dropped, one message bare, several in `[a, b]`.
fn aggregate_message(messages: impl IntoIterator<Item = String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for message in messages {
        if !seen.contains(&message) {
            seen.push(message);
        }
    }
    match seen.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// Go's `%q` for a string: double quotes, Go escapes for control characters.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_flattens_and_dedups_like_apimachinery() {
        let one = Error::Aggregate(vec![Error::AuthenticationFailed]);
        assert_eq!(one.to_string(), "cipher: message authentication failed");
        let nested = Error::Aggregate(vec![
            Error::Aggregate(vec![Error::InvalidPkcs7Padding, Error::InvalidPkcs7Padding]),
            Error::AuthenticationFailed,
        ]);
        assert_eq!(
            nested.to_string(),
            "[invalid padding on input, cipher: message authentication failed]"
        );
        let dup = Error::Aggregate(vec![Error::TooShort, Error::TooShort]);
        assert_eq!(
            dup.to_string(),
            "the stored data was shorter than the required size"
        );
    }

    #[test]
    fn go_quote_escapes() {
        let cases = [
            ("secrets", "\"secrets\""),
            ("a\"b", "\"a\\\"b\""),
            ("a\nb\u{1}", "\"a\\nb\\x01\""),
            ("é", "\"é\""),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn field_error_display() {
        let required = FieldError {
            field: "resources".into(),
            kind: FieldErrorKind::Required,
            detail: "at least one resources is required".into(),
        };
        assert_eq!(
            required.to_string(),
            "resources: Required value: at least one resources is required"
        );
        let invalid = FieldError {
            field: "resources[0].resources[0]".into(),
            kind: FieldErrorKind::Invalid("\"*\"".into()),
            detail: "d".into(),
        };
        assert_eq!(
            invalid.to_string(),
            "resources[0].resources[0]: Invalid value: \"*\": d"
        );
    }
}
