//! The crate's error type: everything that can be wrong with an untrusted body or object.

/// Why a body could not be decoded or an object could not be encoded. The apiserver answers
/// any of these with 400 Bad Request (decode) or 500/406 (encode).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("protobuf body does not start with the Kubernetes magic prefix \"k8s\\x00\"")]
    MissingMagic,
    #[error("truncated protobuf data")]
    Truncated,
    #[error("malformed protobuf data: {0}")]
    Malformed(String),
    #[error("no protobuf message is known for apiVersion {api_version:?}, kind {kind:?}")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("the object has no apiVersion and kind")]
    MissingTypeMeta,
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("field {field:?}: {reason}")]
    InvalidField { field: String, reason: String },
    #[error("object nesting is deeper than {0} levels")]
    TooDeep(usize),
    #[error("embedded JSON (RawExtension or FieldsV1) is invalid")]
    EmbeddedJson(#[source] serde_json::Error),
}

impl Error {
    pub(crate) fn field(field: &str, reason: impl Into<String>) -> Self {
        Error::InvalidField {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}
