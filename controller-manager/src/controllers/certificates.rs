//! The CertificateSigningRequest signing controller
//! (`certificatesigningrequest-signing-controller`) and the kubelet client-certificate
//! auto-approver (`certificatesigningrequest-approving-controller`), as upstream's
//! `pkg/controller/certificates/{signer,approver}`.
//!
//! Signing, implemented as upstream: with `--cluster-signing-cert-file` and
//! `--cluster-signing-key-file` (without them the controller logs that it is off and does
//! nothing), every approved, not denied, not Failed CSR without a certificate whose signer is
//! `kubernetes.io/kube-apiserver-client`, `kubernetes.io/kube-apiserver-client-kubelet` or
//! `kubernetes.io/kubelet-serving` is checked against its signer's rules ([`request`]); a request
//! that breaks them gets the `Failed` condition with reason `SignerValidationFailure` and the
//! rule's message, one that passes gets `status.certificate` (PEM) through the `status`
//! subresource, valid for min(`spec.expirationSeconds`, `--cluster-signing-duration`)
//! ([`authority`]). Requests for other signers are left to their signers.
//!
//! Approving, as upstream's `sarApprover`: a pending CSR for the kubelet client signer whose
//! request is a valid kubelet client certificate is approved when a SubjectAccessReview for its
//! requester allows `create` on `certificatesigningrequests/selfnodeclient` (when the requester
//! renews its own certificate: username == CN) or `certificatesigningrequests/nodeclient`;
//! condition `Approved`, reason `AutoApproved`, through the `approval` subresource. A recognised
//! request the review does not allow is retried with backoff, as upstream.
//!
//! Our additions: a CSR the signer refuses also gets a Warning `SignerValidationFailure` event.
//! Not implemented: reloading the CA files when they change (they are read once at start), the
//! per-signer `--cluster-signing-*-cert-file` flags, the legacy-unknown signer (v1beta1 only),
//! and requests carrying extensions other than SANs, key usages and basic constraints, which
//! the signing library cannot parse (they get a Warning `SigningFailed` event and a backoff).

mod authority;
mod request;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition, CertificateSigningRequestStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::{
    reference, run_workers, stop_queue_on_shutdown, warn_event, ControllerContext,
};
use authority::CertificateAuthority;
use request::ParsedRequest;

/// Upstream's `--concurrent-certificate-csrsigning-syncs` / `csrapproving` defaults (no flags
/// here).
const SIGNING_WORKERS: usize = 5;
const APPROVING_WORKERS: usize = 5;

/// What the signer does with one CSR.
#[derive(Debug, PartialEq, Eq)]
pub enum SignAction {
    /// Not ours, not approved, already signed or failed.
    Nothing,
    /// The request breaks its signer's rules: mark it Failed with this message.
    Fail(String),
    /// The request cannot be read at all (retried: upstream returns an error).
    Unreadable(String),
    Sign {
        request: Vec<u8>,
        usages: Vec<String>,
        ttl: Duration,
    },
}

/// The signer's decision, from the CSR alone (upstream's `signer.handle` before signing).
pub fn signing_action(csr: &CertificateSigningRequest, max_ttl: Duration) -> SignAction {
    let (approved, denied) = request::approval(csr);
    if !approved
        || denied
        || request::has_true_condition(csr, "Failed")
        || request::has_certificate(csr)
        || !request::SIGNERS.contains(&csr.spec.signer_name.as_str())
    {
        return SignAction::Nothing;
    }
    let parsed = match request::parse_request(&csr.spec.request.0) {
        Ok(parsed) => parsed,
        Err(err) => return SignAction::Unreadable(err),
    };
    let usages = csr.spec.usages.clone().unwrap_or_default();
    match request::validate_for_signer(&csr.spec.signer_name, &parsed, &usages) {
        None => SignAction::Nothing,
        Some(Err(message)) => SignAction::Fail(message),
        Some(Ok(())) => SignAction::Sign {
            request: parsed.der,
            usages,
            ttl: authority::duration(csr.spec.expiration_seconds, max_ttl),
        },
    }
}

/// One way to auto-approve: the SubjectAccessReview subresource and the approval message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recognizer {
    pub subresource: &'static str,
    pub message: &'static str,
}

const SELF_NODE_CLIENT: Recognizer = Recognizer {
    subresource: "selfnodeclient",
    message: "Auto approving self kubelet client certificate after SubjectAccessReview.",
};
const NODE_CLIENT: Recognizer = Recognizer {
    subresource: "nodeclient",
    message: "Auto approving kubelet client certificate after SubjectAccessReview.",
};

/// The reviews to try, in order, for a CSR (upstream's recognizers): none unless it is a
/// pending, unsigned kubelet client request.
pub fn approval_checks(csr: &CertificateSigningRequest, parsed: &ParsedRequest) -> Vec<Recognizer> {
    let (approved, denied) = request::approval(csr);
    if approved || denied || request::has_certificate(csr) {
        return Vec::new();
    }
    let usages = csr.spec.usages.clone().unwrap_or_default();
    if csr.spec.signer_name != request::KUBE_APISERVER_CLIENT_KUBELET
        || request::validate_kubelet_client(parsed, &usages).is_err()
    {
        return Vec::new();
    }
    let mut checks = Vec::new();
    if csr.spec.username.as_deref() == Some(parsed.common_name.as_str()) {
        checks.push(SELF_NODE_CLIENT);
    }
    checks.push(NODE_CLIENT);
    checks
}

/// The SubjectAccessReview asking whether the CSR's requester may use `recognizer`.
pub fn access_review(
    csr: &CertificateSigningRequest,
    recognizer: Recognizer,
) -> SubjectAccessReview {
    SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: csr.spec.username.clone(),
            uid: csr.spec.uid.clone(),
            groups: csr.spec.groups.clone(),
            extra: csr.spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                verb: Some("create".into()),
                subresource: Some(recognizer.subresource.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    }
}

fn with_condition(
    csr: &CertificateSigningRequest,
    condition: CertificateSigningRequestCondition,
) -> CertificateSigningRequest {
    let mut updated = csr.clone();
    let status = updated
        .status
        .get_or_insert_with(CertificateSigningRequestStatus::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition);
    updated
}

/// The CSR with upstream's `AutoApproved` condition appended.
pub fn approved(csr: &CertificateSigningRequest, message: &str) -> CertificateSigningRequest {
    with_condition(
        csr,
        CertificateSigningRequestCondition {
            type_: "Approved".into(),
            status: "True".into(),
            reason: Some("AutoApproved".into()),
            message: Some(message.into()),
            ..CertificateSigningRequestCondition::default()
        },
    )
}

/// The CSR with the signer's `Failed` condition appended.
pub fn failed(
    csr: &CertificateSigningRequest,
    message: &str,
    now: Timestamp,
) -> CertificateSigningRequest {
    with_condition(
        csr,
        CertificateSigningRequestCondition {
            type_: "Failed".into(),
            status: "True".into(),
            reason: Some("SignerValidationFailure".into()),
            message: Some(message.into()),
            last_update_time: Some(Time(now)),
            ..CertificateSigningRequestCondition::default()
        },
    )
}

/// A queue of CSR names fed by the CSR informer.
fn csr_queue(
    ctx: &ControllerContext,
    name: &str,
) -> (Queue<String>, Informer<CertificateSigningRequest>) {
    let queue: Queue<String> = Queue::new(name);
    let csrs = ctx.factory.informer::<CertificateSigningRequest>();
    let q = queue.clone();
    csrs.add_event_handler(None, move |event| match event {
        Event::Add(csr) | Event::Update { new: csr, .. } => {
            if let Some(name) = &csr.metadata.name {
                q.add(name.clone());
            }
        }
        Event::Delete(_) => {}
    });
    stop_queue_on_shutdown(ctx, queue.clone());
    (queue, csrs)
}

fn load_authority(ctx: &ControllerContext) -> anyhow::Result<Option<CertificateAuthority>> {
    let (Some(cert), Some(key)) = (
        &ctx.options.cluster_signing_cert_file,
        &ctx.options.cluster_signing_key_file,
    ) else {
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read_to_string(path).map_err(|err| anyhow!("reading {}: {err}", path.display()))
    };
    let ca = CertificateAuthority::load(&read(cert)?, &read(key)?)
        .map_err(|err| anyhow!("loading the cluster signing CA: {err}"))?;
    Ok(Some(ca))
}

pub fn start_signing(ctx: &ControllerContext) -> anyhow::Result<()> {
    let Some(ca) = load_authority(ctx)? else {
        tracing::info!(
            "skipping the CSR signer: no --cluster-signing-cert-file / --cluster-signing-key-file"
        );
        return Ok(());
    };
    let ca = Arc::new(ca);
    let (queue, csrs) = csr_queue(ctx, "certificate");
    let client = ctx.client.clone();
    let recorder = Arc::new(ctx.recorder("certificatesigningrequest-signing-controller"));
    let max_ttl = ctx.options.cluster_signing_duration;
    run_workers(
        "certificatesigningrequest-signing-controller",
        queue,
        SIGNING_WORKERS,
        move |name: String| {
            let (client, csrs, ca, recorder) =
                (client.clone(), csrs.clone(), ca.clone(), recorder.clone());
            async move {
                let Some(csr) = csrs.store().get(&name) else {
                    return Ok(());
                };
                let api: Api<CertificateSigningRequest> = client.api(None);
                let updated = match signing_action(&csr, max_ttl) {
                    SignAction::Nothing => return Ok(()),
                    SignAction::Unreadable(err) => {
                        return Err(anyhow!("unable to parse csr {name:?}: {err}"));
                    }
                    SignAction::Fail(message) => {
                        warn_event(
                            &recorder,
                            &reference(&*csr),
                            "SignerValidationFailure",
                            &message,
                        );
                        failed(&csr, &message, Timestamp::now())
                    }
                    SignAction::Sign {
                        request,
                        usages,
                        ttl,
                    } => {
                        let now = Timestamp::now().as_second();
                        match ca.sign(&request, &usages, ttl, now) {
                            Ok(pem) => {
                                let mut signed = (*csr).clone();
                                signed
                                    .status
                                    .get_or_insert_with(CertificateSigningRequestStatus::default)
                                    .certificate = Some(k8s_openapi::ByteString(pem.into_bytes()));
                                signed
                            }
                            Err(err) => {
                                warn_event(&recorder, &reference(&*csr), "SigningFailed", &err);
                                return Err(anyhow!("error auto signing csr {name:?}: {err}"));
                            }
                        }
                    }
                };
                match api.replace_status(&name, &updated).await {
                    Ok(_) => Ok(()),
                    Err(err) if err.is_not_found() => Ok(()),
                    Err(err) => Err(anyhow!("updating the status of csr {name:?}: {err}")),
                }
            }
        },
    );
    Ok(())
}

/// PUT `certificatesigningrequests/<name>/approval` (the client has no helper for it).
async fn update_approval(client: &Client, csr: &CertificateSigningRequest) -> client::Result<()> {
    let name = csr.metadata.name.clone().unwrap_or_default();
    let api: Api<CertificateSigningRequest> = client.api(None);
    let body = serde_json::to_vec(csr)
        .map_err(|err| client::Error::Request(format!("encoding the body: {err}")))?;
    let request = kube::core::Request::new(api.path())
        .replace_subresource("approval", &name, &kube::api::PostParams::default(), body)
        .map_err(|err| client::Error::Request(err.to_string()))?;
    client.send_bytes(request).await.map(|_| ())
}

pub fn start_approving(ctx: &ControllerContext) -> anyhow::Result<()> {
    let (queue, csrs) = csr_queue(ctx, "csrapproving");
    let client = ctx.client.clone();
    run_workers(
        "certificatesigningrequest-approving-controller",
        queue,
        APPROVING_WORKERS,
        move |name: String| {
            let (client, csrs) = (client.clone(), csrs.clone());
            async move {
                let Some(csr) = csrs.store().get(&name) else {
                    return Ok(());
                };
                if csr.spec.signer_name != request::KUBE_APISERVER_CLIENT_KUBELET {
                    return Ok(());
                }
                let parsed = request::parse_request(&csr.spec.request.0)
                    .map_err(|err| anyhow!("unable to parse csr {name:?}: {err}"))?;
                let checks = approval_checks(&csr, &parsed);
                if checks.is_empty() {
                    return Ok(());
                }
                let reviews: Api<SubjectAccessReview> = client.api(None);
                for check in &checks {
                    let review = reviews.create(&access_review(&csr, *check)).await?;
                    if review.status.is_some_and(|s| s.allowed) {
                        return match update_approval(&client, &approved(&csr, check.message)).await
                        {
                            Ok(()) => Ok(()),
                            Err(err) if err.is_not_found() => Ok(()),
                            Err(err) => {
                                Err(anyhow!("error updating approval for csr {name:?}: {err}"))
                            }
                        };
                    }
                }
                let tried: Vec<&str> = checks.iter().map(|c| c.subresource).collect();
                Err(anyhow!(
                    "recognized csr {name:?} as {tried:?} but subject access review was not approved"
                ))
            }
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::CertificateSigningRequestSpec;

    fn pem_request(cn: &str, org: &str) -> Vec<u8> {
        let key = match rcgen::KeyPair::generate() {
            Ok(k) => k,
            Err(err) => panic!("{err}"),
        };
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        match params.serialize_request(&key).and_then(|r| r.pem()) {
            Ok(pem) => pem.into_bytes(),
            Err(err) => panic!("{err}"),
        }
    }

    fn csr(
        signer: &str,
        cn: &str,
        org: &str,
        usages: &[&str],
        conditions: &[&str],
    ) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: kube::api::ObjectMeta {
                name: Some("csr-1".into()),
                ..Default::default()
            },
            spec: CertificateSigningRequestSpec {
                request: k8s_openapi::ByteString(pem_request(cn, org)),
                signer_name: signer.into(),
                usages: Some(usages.iter().map(|u| u.to_string()).collect()),
                username: Some("system:bootstrap:abcdef".into()),
                groups: Some(vec!["system:bootstrappers".into()]),
                expiration_seconds: Some(7200),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus {
                conditions: Some(
                    conditions
                        .iter()
                        .map(|t| CertificateSigningRequestCondition {
                            type_: t.to_string(),
                            status: "True".into(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                certificate: None,
            }),
        }
    }

    const KUBELET_USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn signer_decisions() {
        let max = Duration::from_secs(3600 * 24);
        let kubelet = request::KUBE_APISERVER_CLIENT_KUBELET;
        let kind = |a: &SignAction| match a {
            SignAction::Nothing => "nothing".to_string(),
            SignAction::Fail(m) => format!("fail: {m}"),
            SignAction::Unreadable(m) => format!("unreadable: {m}"),
            SignAction::Sign { ttl, usages, .. } => format!("sign {}s {usages:?}", ttl.as_secs()),
        };
        let cases = [
            (
                "pending",
                csr(
                    kubelet,
                    "system:node:n1",
                    "system:nodes",
                    KUBELET_USAGES,
                    &[],
                ),
                "nothing",
            ),
            (
                "denied",
                csr(
                    kubelet,
                    "system:node:n1",
                    "system:nodes",
                    KUBELET_USAGES,
                    &["Approved", "Denied"],
                ),
                "nothing",
            ),
            (
                "failed",
                csr(
                    kubelet,
                    "system:node:n1",
                    "system:nodes",
                    KUBELET_USAGES,
                    &["Approved", "Failed"],
                ),
                "nothing",
            ),
            (
                "other signer",
                csr(
                    "example.com/x",
                    "system:node:n1",
                    "system:nodes",
                    KUBELET_USAGES,
                    &["Approved"],
                ),
                "nothing",
            ),
            (
                "approved kubelet client",
                csr(
                    kubelet,
                    "system:node:n1",
                    "system:nodes",
                    KUBELET_USAGES,
                    &["Approved"],
                ),
                "sign 7200s [\"digital signature\", \"client auth\"]",
            ),
            (
                "bad subject",
                csr(kubelet, "n1", "system:nodes", KUBELET_USAGES, &["Approved"]),
                "fail: subject common name does not begin with system:node:",
            ),
            (
                "apiserver client without client auth",
                csr(
                    request::KUBE_APISERVER_CLIENT,
                    "jane",
                    "devs",
                    &["digital signature"],
                    &["Approved"],
                ),
                "fail: missing required usage for client certificate: client auth",
            ),
        ];
        for (name, csr, want) in cases {
            assert_eq!(kind(&signing_action(&csr, max)), want, "{name}");
        }
        let mut signed = csr(
            kubelet,
            "system:node:n1",
            "system:nodes",
            KUBELET_USAGES,
            &["Approved"],
        );
        if let Some(status) = signed.status.as_mut() {
            status.certificate = Some(k8s_openapi::ByteString(b"cert".to_vec()));
        }
        assert_eq!(
            signing_action(&signed, max),
            SignAction::Nothing,
            "already signed"
        );
    }

    #[test]
    fn approver_recognizes_kubelet_client_requests_only() {
        let kubelet = request::KUBE_APISERVER_CLIENT_KUBELET;
        let checks = |csr: &CertificateSigningRequest| {
            let parsed = match request::parse_request(&csr.spec.request.0) {
                Ok(p) => p,
                Err(err) => panic!("{err}"),
            };
            approval_checks(csr, &parsed)
                .iter()
                .map(|c| c.subresource)
                .collect::<Vec<_>>()
        };
        let bootstrap = csr(
            kubelet,
            "system:node:n1",
            "system:nodes",
            KUBELET_USAGES,
            &[],
        );
        assert_eq!(checks(&bootstrap), ["nodeclient"]);
        let mut renewal = bootstrap.clone();
        renewal.spec.username = Some("system:node:n1".into());
        assert_eq!(checks(&renewal), ["selfnodeclient", "nodeclient"]);
        let approved_already = csr(
            kubelet,
            "system:node:n1",
            "system:nodes",
            KUBELET_USAGES,
            &["Approved"],
        );
        assert!(checks(&approved_already).is_empty());
        let bad_org = csr(kubelet, "system:node:n1", "nodes", KUBELET_USAGES, &[]);
        assert!(checks(&bad_org).is_empty());
        let serving = csr(
            request::KUBELET_SERVING,
            "system:node:n1",
            "system:nodes",
            KUBELET_USAGES,
            &[],
        );
        assert!(checks(&serving).is_empty());

        let review = access_review(&bootstrap, NODE_CLIENT);
        let attrs = review.spec.resource_attributes.unwrap_or_default();
        assert_eq!(review.spec.user.as_deref(), Some("system:bootstrap:abcdef"));
        assert_eq!(attrs.subresource.as_deref(), Some("nodeclient"));
        assert_eq!(attrs.verb.as_deref(), Some("create"));

        let done = approved(&bootstrap, NODE_CLIENT.message);
        let condition = done
            .status
            .and_then(|s| s.conditions)
            .and_then(|c| c.last().cloned())
            .unwrap_or_default();
        assert_eq!(condition.type_, "Approved");
        assert_eq!(condition.reason.as_deref(), Some("AutoApproved"));
        assert_eq!(
            condition.message.as_deref(),
            Some("Auto approving kubelet client certificate after SubjectAccessReview.")
        );
    }
}
