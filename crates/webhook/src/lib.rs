//! Admission webhooks as kube-apiserver's MutatingAdmissionWebhook and
//! ValidatingAdmissionWebhook plugins call them: which webhooks of a
//! `MutatingWebhookConfiguration` / `ValidatingWebhookConfiguration` apply to a request
//! ([`matching`]), the AdmissionReview v1 round trip over HTTPS ([`call`]), and the Status a
//! denial or a failed call turns into ([`denial_status`], [`call_error_status`]).
//!
//! Objects stay `serde_json::Value` in upstream's JSON; the apiserver owns ordering, patch
//! application and reinvocation.

mod client;
pub mod conditions;
mod matching;
mod review;
mod status;

pub use client::{call, call_resolved, ServiceResolver};
pub use matching::matching;
pub use review::{parse_review_response, review_request};
pub use status::{call_error_status, denial_status, fails_closed};

use serde_json::{Map, Value};

/// What is being admitted: upstream's `admission.Attributes`, in the versioned form the
/// webhook is sent.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'a str,
    pub group: &'a str,
    pub version: &'a str,
    /// The plural resource, e.g. `pods`.
    pub resource: &'a str,
    /// E.g. `status`; empty for the main resource.
    pub subresource: &'a str,
    pub kind: &'a str,
    /// Empty for cluster-scoped objects.
    pub namespace: &'a str,
    pub name: &'a str,
    pub object: Option<&'a Value>,
    pub old_object: Option<&'a Value>,
    pub user: &'a str,
    pub groups: &'a [String],
    pub dry_run: bool,
    /// The labels of the request's namespace; `None` when unknown (treated as no labels).
    pub namespace_labels: Option<&'a Map<String, Value>>,
    pub cluster_scoped: bool,
}

/// A webhook's answer (`AdmissionReview.response`), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub allowed: bool,
    /// `response.status` (upstream's `Result`), a `metav1.Status`.
    pub status: Option<Value>,
    /// The decoded JSONPatch operations (an array), when the webhook sent a patch.
    pub patch: Option<Value>,
    pub warnings: Vec<String>,
}

/// Why a webhook could not be called or gave no usable answer. The messages are upstream's
/// `ErrCallingWebhook` reasons, so `failed calling webhook "<name>": <error>` reads the same.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `clientConfig.service` with no resolver to find the service's address.
    #[error("services are not supported yet")]
    ServiceNotSupported,
    #[error("webhook has neither clientConfig.url nor clientConfig.service")]
    NoClientConfig,
    #[error("invalid clientConfig.url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid clientConfig.caBundle: {0}")]
    InvalidCaBundle(String),
    #[error("failed to call webhook: Post \"{url}\": context deadline exceeded")]
    Timeout { url: String },
    #[error("failed to call webhook: Post \"{url}\": {reason}")]
    Transport { url: String, reason: String },
    /// A non-2xx HTTP answer, worded as client-go's rest client words it.
    #[error("failed to call webhook: an error on the server ({body:?}) has prevented the request from succeeding")]
    HttpStatus { code: u16, body: String },
    #[error("received invalid webhook response: {0}")]
    InvalidResponse(String),
    /// A matchCondition that did not compile or evaluate ([`conditions`]).
    #[error("{0}")]
    MatchCondition(String),
}
