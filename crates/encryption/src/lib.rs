//! Encryption at rest, as kube-apiserver's `--encryption-provider-config` does it.
//!
//! [`EncryptionConfig::parse`] reads an `apiserver.config.k8s.io/v1` `EncryptionConfiguration`
//! (YAML or JSON), validates it with upstream's rules and messages, and builds one
//! [`Transformer`] per configured group-resource. A transformer writes with its first provider
//! and reads with whichever provider's prefix matches, so that stored bytes are exactly
//! upstream's (`k8s:enc:aescbc:v1:<key name>:` + ciphertext, ...) and data written by either
//! implementation is readable by the other.
//!
//! Providers: `aescbc`, `aesgcm`, `secretbox` and `identity`. KMS providers are validated and
//! then refused with [`Error::KmsNotSupported`]: they need a plugin over gRPC, which this crate
//! does not speak.

mod aes_cbc;
mod aes_gcm;
mod config;
mod error;
mod secretbox;
mod transformer;
mod validation;

pub use config::EncryptionConfig;
pub use error::{Error, FieldError, FieldErrorKind};
pub use transformer::Transformer;
