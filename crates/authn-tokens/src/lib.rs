//! Bearer-token authentication as pure logic, mirroring upstream's authenticators: service-account
//! JWTs (`serviceaccount`, signed/verified through `keys` + `jws`), the static token file
//! (`tokenfile`) and bootstrap tokens (`bootstrap`). Nothing here does I/O or looks objects up:
//! callers hand in file contents, Secrets and the clock, and check bound objects themselves.

pub mod bootstrap;
mod der;
pub mod jws;
pub mod keys;
pub mod serviceaccount;
pub mod tokenfile;

use std::collections::BTreeMap;

pub use jws::{Signer, Verifier};
pub use keys::{parse_public_keys_pem, PrivateKey, PublicKey};
pub use serviceaccount::{
    issue, verify, verify_for_audiences, AuthenticatorConfig, BoundObject, ObjectRef,
    PrivateClaims, ServiceAccountClaims, ServiceAccountToken, TokenKind,
};
pub use tokenfile::TokenFile;

/// An authenticated user, upstream's `user.DefaultInfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// Everything that can go wrong; `Display` texts follow upstream where upstream has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidKey(String),
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    #[error("data does not contain a valid RSA or ECDSA private key")]
    NoPrivateKey,
    #[error("data does not contain any valid RSA or ECDSA public keys")]
    NoPublicKeys,
    #[error("failed to sign token")]
    Signing,

    /// Not a JWT, or not from an issuer we serve: upstream lets the next authenticator try.
    #[error("not a service account token")]
    NotServiceAccountToken,
    #[error("invalid signature, no keys found")]
    NoKeysFound,
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    MalformedClaims(String),
    #[error("token issuer {0:?} is invalid")]
    InvalidIssuer(String),
    /// Both lists are preformatted as Go's `%q` of a string slice.
    #[error("token audiences {token} is invalid for the target audiences {requested}")]
    InvalidAudience { token: String, requested: String },
    #[error("service account token has expired")]
    Expired,
    #[error("service account token is not valid yet")]
    NotValidYet,
    #[error("service account token is issued in the future")]
    IssuedInTheFuture,
    #[error("{0}")]
    InvalidClaims(&'static str),

    #[error("token file '{path}' must have at least 3 columns (token, user name, user uid), found {found}")]
    TokenFileColumns { path: String, found: usize },
    #[error("{0}")]
    TokenFileParse(String),

    #[error("{0}")]
    BootstrapTokenFormat(String),
    #[error("{0}")]
    BootstrapRejected(String),
}
