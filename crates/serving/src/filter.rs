//! The secure port's filter chain in front of its handlers, as upstream's controller-manager
//! `BuildHandlerChain`: authenticate (401 on failure), then authorize (403 when refused, 500 when
//! the decision could not be had), then serve.
//!
//! Refusals are `Status` objects in JSON, as upstream's negotiated error writer sends them
//! (compact, as to a client that is not a browser or curl, which upstream pretty-prints for):
//! `{"kind":"Status",...,"message":"forbidden: User \"system:anonymous\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403}`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;
use rustls::pki_types::CertificateDer;

use crate::authn::{Authentication, Credentials, UserInfo};
use crate::authz::{forbidden_message, Attributes, Authorization, Outcome};

/// Who may use the secure port.
pub struct ServingAuth {
    pub authentication: Authentication,
    pub authorization: Authorization,
}

impl ServingAuth {
    /// The request's user when it may proceed, else the answer to send.
    pub async fn check<B>(
        &self,
        request: &http::Request<B>,
        client_certs: Option<&[CertificateDer<'static>]>,
    ) -> Result<UserInfo, Response<Full<Bytes>>> {
        let credentials = Credentials {
            headers: request.headers(),
            client_certs,
        };
        let user = match self.authentication.authenticate(&credentials).await {
            Ok(user) => user,
            Err(err) => {
                tracing::debug!(path = request.uri().path(), error = %err, "unable to authenticate the request");
                return Err(unauthorized());
            }
        };
        let attributes = Attributes::new(user, request.method(), request.uri().path());
        match self.authorization.authorize(&attributes).await {
            Outcome::Allowed => Ok(attributes.user),
            Outcome::Forbidden(reason) => {
                tracing::debug!(path = %attributes.path, user = %attributes.user.name, %reason, "forbidden");
                Err(forbidden(&attributes, &reason))
            }
            Outcome::Failed(err) => {
                tracing::warn!(path = %attributes.path, user = %attributes.user.name, error = %err, "authorization failed");
                let uri = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                Err(internal_error(uri, &err))
            }
        }
    }
}

/// A failure `Status` in upstream's field order, as Go's JSON encoder writes it (HTML characters
/// escaped, a newline at the end).
fn status_response(
    code: StatusCode,
    reason: &str,
    message: &str,
    details: bool,
) -> Response<Full<Bytes>> {
    let message = serde_json::Value::String(message.to_string())
        .to_string()
        .replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e");
    let details = if details { r#","details":{}"# } else { "" };
    let body = format!(
        r#"{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":{message},"reason":"{reason}"{details},"code":{}}}"#,
        code.as_u16()
    );
    let mut response = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Upstream's `Unauthorized` handler: `apierrors.NewUnauthorized("Unauthorized")`.
pub fn unauthorized() -> Response<Full<Bytes>> {
    status_response(
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
        "Unauthorized",
        false,
    )
}

/// Upstream's `responsewriters.Forbidden` for a non-resource request: `NewForbidden` with an
/// empty group-resource, so the message starts `forbidden: ` and the details are empty.
pub fn forbidden(attributes: &Attributes, reason: &str) -> Response<Full<Bytes>> {
    status_response(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!("forbidden: {}", forbidden_message(attributes, reason)),
        true,
    )
}

/// Upstream's `responsewriters.InternalError`: plain text naming the request URI.
fn internal_error(uri: &str, err: &str) -> Response<Full<Bytes>> {
    let text = format!("Internal Server Error: {uri:?}: {err}")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    let mut response = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    let headers = response.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{Authorizer, PathAllowList, Verdict};
    use crate::AuthError;
    use http_body_util::BodyExt;
    use std::sync::Arc;

    struct Down;

    #[async_trait::async_trait]
    impl Authorizer for Down {
        async fn authorize(&self, _: &Attributes) -> Result<Verdict, AuthError> {
            Err(AuthError::Unavailable("connection refused".into()))
        }
    }

    fn auth(delegate: Option<Arc<dyn Authorizer>>) -> ServingAuth {
        ServingAuth {
            authentication: Authentication::new(None, None, None, true)
                .unwrap_or_else(|e| panic!("{e}")),
            authorization: Authorization::new(
                vec!["system:masters".into()],
                PathAllowList::new(&["/healthz"]).unwrap_or_else(|e| panic!("{e}")),
                delegate,
            ),
        }
    }

    fn get(uri: &str) -> http::Request<()> {
        http::Request::get(uri)
            .body(())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn body(response: Response<Full<Bytes>>) -> (StatusCode, Option<String>, String) {
        let status = response.status();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = match response.into_body().collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        (
            status,
            content_type,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[tokio::test]
    async fn anonymous_users_reach_allowed_paths_only() {
        let auth = auth(None);
        let user = auth.check(&get("/healthz"), None).await;
        assert_eq!(
            user.ok().map(|u| u.name).as_deref(),
            Some("system:anonymous")
        );
        let Err(refused) = auth.check(&get("/metrics"), None).await else {
            panic!("/metrics was allowed");
        };
        let (status, content_type, text) = body(refused).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(content_type.as_deref(), Some("application/json"));
        assert_eq!(
            text,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"forbidden: User \\\"system:anonymous\\\" cannot get path \\\"/metrics\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403}\n"
        );
    }

    #[tokio::test]
    async fn refused_credentials_answer_401_even_on_allowed_paths() {
        struct Nobody;
        #[async_trait::async_trait]
        impl crate::authn::TokenAuthenticator for Nobody {
            async fn authenticate_token(&self, _: &str) -> Result<Option<UserInfo>, AuthError> {
                Ok(None)
            }
        }
        let auth = ServingAuth {
            authentication: Authentication::new(None, None, Some(Arc::new(Nobody)), true)
                .unwrap_or_else(|e| panic!("{e}")),
            authorization: Authorization::new(Vec::new(), PathAllowList::default(), None),
        };
        let request = http::Request::get("/healthz")
            .header(http::header::AUTHORIZATION, "Bearer nope")
            .body(())
            .unwrap_or_else(|e| panic!("{e}"));
        let Err(refused) = auth.check(&request, None).await else {
            panic!("a bad token was accepted");
        };
        let (status, _, text) = body(refused).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(
            text,
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n"
        );
    }

    #[tokio::test]
    async fn a_failed_review_answers_500_naming_the_request() {
        let auth = auth(Some(Arc::new(Down)));
        let Err(failed) = auth.check(&get("/metrics?a=1&b=2"), None).await else {
            panic!("allowed without a review");
        };
        let (status, content_type, text) = body(failed).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
        assert_eq!(
            text,
            "Internal Server Error: \"/metrics?a=1&amp;b=2\": connection refused\n"
        );
    }
}
