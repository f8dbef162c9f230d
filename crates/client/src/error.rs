//! The one error type of the client library. Every failure names what was asked and what went
//! wrong: the server's own `Status` for API errors, the address and the transport's reason when
//! the apiserver cannot be reached, the file and field for a bad kubeconfig.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver answered with an error `Status`.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer: connection refused, TLS failure, reset. `attempts` counts the tries made.
    #[error("cannot reach the apiserver at {url} ({attempts} attempt{plural}): {reason}", plural = if *attempts == 1 { "" } else { "s" })]
    Unreachable {
        url: String,
        attempts: u32,
        reason: String,
    },
    /// The kubeconfig, flags or in-cluster environment do not give a usable configuration.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The server's answer is not what the request expects.
    #[error("decoding the apiserver's answer to {what}: {error}")]
    Decode { what: String, error: String },
    /// The request could not be built (a name or selector that is not a valid URL part, ...).
    #[error("building the request: {0}")]
    Request(String),
}

/// An error answer from the apiserver, as upstream's `StatusError`.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub code: u16,
    /// `Status.reason` (`NotFound`, `Conflict`, `Expired`, ...), empty when the server gave none.
    pub reason: String,
    pub message: String,
    /// The whole `Status`, when the body was one.
    pub status: Option<Status>,
    /// `Retry-After` in seconds, when the server asked for one.
    pub retry_after: Option<u64>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // kubectl's "Error from server (NotFound): pods \"x\" not found" shape.
        if self.reason.is_empty() {
            write!(f, "error from server ({}): {}", self.code, self.message)
        } else {
            write!(f, "error from server ({}): {}", self.reason, self.message)
        }
    }
}

impl ApiError {
    /// Builds the error from a non-2xx answer: the body is a `Status` from a Kubernetes
    /// apiserver, anything else (a proxy's HTML page) is quoted as the message.
    pub fn from_response(code: u16, body: &[u8], retry_after: Option<u64>) -> ApiError {
        match serde_json::from_slice::<Status>(body) {
            Ok(status) if status.message.is_some() || status.reason.is_some() => ApiError {
                code: status
                    .code
                    .and_then(|c| u16::try_from(c).ok())
                    .unwrap_or(code),
                reason: status.reason.clone().unwrap_or_default(),
                message: status.message.clone().unwrap_or_default(),
                status: Some(status),
                retry_after,
            },
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let message = if text.is_empty() {
                    format!("the server responded with HTTP {code} and no body")
                } else {
                    let mut cut: String = text.chars().take(512).collect();
                    if cut.len() < text.len() {
                        cut.push_str("...");
                    }
                    format!("the server responded with HTTP {code}: {cut}")
                };
                ApiError {
                    code,
                    reason: reason_for_code(code).to_string(),
                    message,
                    status: None,
                    retry_after,
                }
            }
        }
    }

    /// From a `Status` carried inside a watch `ERROR` event.
    pub fn from_status(status: Status) -> ApiError {
        let code = status
            .code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        ApiError {
            code,
            reason: status.reason.clone().unwrap_or_default(),
            message: status.message.clone().unwrap_or_default(),
            status: Some(status),
            retry_after: None,
        }
    }
}

/// Upstream's reasons for bare codes (`apierrors.NewGenericServerResponse`).
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

impl Error {
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(err) => Some(err),
            _ => None,
        }
    }

    /// The HTTP code of an API error.
    pub fn code(&self) -> Option<u16> {
        self.api().map(|err| err.code)
    }

    fn reason_is(&self, reason: &str, code: u16) -> bool {
        self.api()
            .is_some_and(|err| err.reason == reason || (err.reason.is_empty() && err.code == code))
    }

    pub fn is_not_found(&self) -> bool {
        self.reason_is("NotFound", 404)
    }

    pub fn is_already_exists(&self) -> bool {
        self.reason_is("AlreadyExists", 409)
    }

    /// A write lost a resourceVersion race.
    pub fn is_conflict(&self) -> bool {
        self.api().is_some_and(|err| {
            err.reason == "Conflict" || (err.code == 409 && err.reason != "AlreadyExists")
        })
    }

    /// The asked resourceVersion is gone from history (410 Gone / reason Expired): relist.
    pub fn is_gone(&self) -> bool {
        self.api()
            .is_some_and(|err| err.code == 410 || err.reason == "Expired" || err.reason == "Gone")
    }

    pub fn is_forbidden(&self) -> bool {
        self.reason_is("Forbidden", 403)
    }

    pub fn is_unauthorized(&self) -> bool {
        self.reason_is("Unauthorized", 401)
    }

    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Unreachable { .. })
    }
}

impl From<ApiError> for Error {
    fn from(err: ApiError) -> Self {
        Error::Api(Box::new(err))
    }
}

/// An error and all its sources on one line, so "connection refused" under three layers of
/// wrapping reaches the user.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let text = next.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = next.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_bodies_keep_the_server_reason_and_message() {
        let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","details":{"name":"x","kind":"pods"},"code":404}"#;
        let err = Error::from(ApiError::from_response(404, body, None));
        assert!(err.is_not_found());
        assert!(!err.is_conflict());
        assert_eq!(
            err.to_string(),
            "error from server (NotFound): pods \"x\" not found"
        );
    }

    #[test]
    fn non_status_bodies_are_quoted_with_the_code_reason() {
        let err = Error::from(ApiError::from_response(
            503,
            b"<html>bad gateway</html>",
            Some(2),
        ));
        assert_eq!(err.code(), Some(503));
        assert_eq!(
            err.to_string(),
            "error from server (ServiceUnavailable): the server responded with HTTP 503: <html>bad gateway</html>"
        );
        let gone = Error::from(ApiError::from_response(410, b"", None));
        assert!(gone.is_gone());
    }

    #[test]
    fn conflicts_are_not_already_exists() {
        let exists = Error::from(ApiError::from_response(
            409,
            br#"{"kind":"Status","reason":"AlreadyExists","message":"x","code":409}"#,
            None,
        ));
        assert!(exists.is_already_exists());
        assert!(!exists.is_conflict());
        let conflict = Error::from(ApiError::from_response(
            409,
            br#"{"kind":"Status","reason":"Conflict","message":"x","code":409}"#,
            None,
        ));
        assert!(conflict.is_conflict());
    }
}
