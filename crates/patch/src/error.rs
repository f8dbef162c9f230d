//! The one error type of the crate, classified by the HTTP status the apiserver answers with.

/// Why a patch could not be applied.
///
/// Messages are upstream's texts where upstream has one, because clients (and people) match on
/// them. [`PatchError::status_code`] is the status upstream's apiserver replies with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch document itself is malformed (400 Bad Request).
    #[error("{0}")]
    BadRequest(String),
    /// A JSON patch with more operations than the apiserver accepts (413).
    #[error("The allowed maximum operations in a JSON patch is {max}, got {got}")]
    TooManyOperations {
        /// The limit.
        max: usize,
        /// How many operations the patch had.
        got: usize,
    },
    /// The patch is well-formed but does not apply to this object (422 Unprocessable Entity).
    #[error("{0}")]
    Unprocessable(String),
    /// A failure upstream does not classify, which its apiserver reports as a 500 with the
    /// message verbatim (e.g. an unknown `$patch` directive in a strategic merge patch).
    #[error("{0}")]
    Internal(String),
}

impl PatchError {
    /// The HTTP status code upstream's apiserver answers this error with.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::BadRequest(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::Unprocessable(_) => 422,
            PatchError::Internal(_) => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_follow_upstream_classification() {
        let cases = [
            (PatchError::BadRequest("x".into()), 400),
            (PatchError::TooManyOperations { max: 1, got: 2 }, 413),
            (PatchError::Unprocessable("x".into()), 422),
            (PatchError::Internal("x".into()), 500),
        ];
        for (err, code) in cases {
            assert_eq!(err.status_code(), code, "{err}");
        }
        assert_eq!(
            PatchError::TooManyOperations {
                max: 10000,
                got: 10001
            }
            .to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }
}
