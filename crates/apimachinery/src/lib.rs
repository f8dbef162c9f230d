//! API machinery shared by every component, mirroring upstream's `k8s.io/apimachinery` where
//! clients can tell the difference:
//!
//! - [`status`]: `metav1.Status` with upstream's JSON shape, and the error constructors of
//!   `pkg/api/errors` (`NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...).
//! - [`field`]: field-level validation errors and their exact message text.
//! - [`labels`] and [`fields`]: label and field selectors (parse, canonical string, match).
//! - [`validation`]: name formats and object-metadata validation on create and update.
//!
//! Everything works on `serde_json::Value`; nothing here does I/O.

pub mod duration;
pub mod field;
pub mod fields;
mod gofmt;
pub mod labels;
pub mod quantity;
pub mod status;
pub mod validation;

pub use field::{aggregate_message, FieldError, FieldErrorType, Path};
pub use fields::Selector as FieldSelector;
pub use labels::{Labels, Selector as LabelSelector};
pub use status::{ListMeta, Status, StatusCause, StatusDetails};

/// Errors of this crate. The message is upstream's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A `labelSelector` that does not parse, or a `metav1.LabelSelector` that does not convert.
    #[error("{message}")]
    InvalidLabelSelector { message: String },
    /// A `fieldSelector` that does not parse.
    #[error("{message}")]
    InvalidFieldSelector { message: String },
}

impl Error {
    pub fn message(&self) -> &str {
        match self {
            Error::InvalidLabelSelector { message } | Error::InvalidFieldSelector { message } => {
                message
            }
        }
    }
}

/// A selector that does not parse is a 400 `BadRequest` carrying the parser's message.
impl From<Error> for Status {
    fn from(e: Error) -> Status {
        Status::bad_request(e.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_errors_become_bad_requests() {
        let e = LabelSelector::parse("x in (a").unwrap_err();
        let s: Status = e.into();
        assert_eq!(s.code(), 400);
        assert_eq!(s.reason, status::reason::BAD_REQUEST);
        assert_eq!(
            s.message,
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        let e = FieldSelector::parse("nope").unwrap_err();
        assert_eq!(
            Status::from(e).message,
            "invalid selector: 'nope'; can't understand 'nope'"
        );
    }
}
