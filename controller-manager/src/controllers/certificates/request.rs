//! What the certificate controllers read out of a CertificateSigningRequest: the PKCS#10 request
//! (subject and subjectAltNames), the approval conditions, and the per-signer rules upstream keeps
//! in `pkg/apis/certificates/helpers.go` and `signer.go` (`ValidateKubeletClientCSR`,
//! `ValidateKubeletServingCSR`, `validAPIServerClientUsages`). Pure functions, no I/O.

use std::collections::BTreeSet;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
pub const KUBE_APISERVER_CLIENT_KUBELET: &str = "kubernetes.io/kube-apiserver-client-kubelet";
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";

/// The signers this manager's local CA signs for (upstream's legacy-unknown signer belongs to
/// certificates.k8s.io/v1beta1, which we do not serve).
pub const SIGNERS: [&str; 3] = [
    KUBE_APISERVER_CLIENT,
    KUBE_APISERVER_CLIENT_KUBELET,
    KUBELET_SERVING,
];

/// The parts of a PKCS#10 request the signer rules look at, plus its DER for signing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedRequest {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: usize,
    pub email_addresses: usize,
    pub uris: usize,
    pub der: Vec<u8>,
}

/// Upstream's `ParseCSR`: one PEM block of type `CERTIFICATE REQUEST` holding a PKCS#10 request.
pub fn parse_request(pem: &[u8]) -> Result<ParsedRequest, String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|err| format!("parsing the certificate request: {err}"))?;
    let info = &csr.certification_request_info;
    let text = |attr: &x509_parser::x509::AttributeTypeAndValue| {
        attr.as_str().map(str::to_string).unwrap_or_default()
    };
    let mut parsed = ParsedRequest {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .map(text)
            .unwrap_or_default(),
        organizations: info.subject.iter_organization().map(text).collect(),
        der: block.contents.clone(),
        ..ParsedRequest::default()
    };
    if let Some(extensions) = csr.requested_extensions() {
        for extension in extensions {
            if let ParsedExtension::SubjectAlternativeName(san) = extension {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(dns) => parsed.dns_names.push(dns.to_string()),
                        GeneralName::IPAddress(_) => parsed.ip_addresses += 1,
                        GeneralName::RFC822Name(_) => parsed.email_addresses += 1,
                        GeneralName::URI(_) => parsed.uris += 1,
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(parsed)
}

fn usage_set(usages: &[String]) -> BTreeSet<&str> {
    usages.iter().map(String::as_str).collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

const SYSTEM_NODES: &str = "system:nodes";
const NODE_PREFIX: &str = "system:node:";

/// Upstream's `ValidateKubeletClientCSR`.
pub fn validate_kubelet_client(req: &ParsedRequest, usages: &[String]) -> Result<(), String> {
    if req.organizations != [SYSTEM_NODES] {
        return Err("subject organization is not system:nodes".into());
    }
    if !req.dns_names.is_empty() {
        return Err("DNS subjectAltNames are not allowed".into());
    }
    if req.email_addresses > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.ip_addresses > 0 {
        return Err("IP subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err("subject common name does not begin with system:node:".into());
    }
    let given = usage_set(usages);
    if given != set(&["digital signature", "key encipherment", "client auth"])
        && given != set(&["digital signature", "client auth"])
    {
        return Err("usages did not match [client auth digital signature key encipherment]".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`.
pub fn validate_kubelet_serving(req: &ParsedRequest, usages: &[String]) -> Result<(), String> {
    if req.organizations != [SYSTEM_NODES] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses == 0 {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if req.email_addresses > 0 {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if req.uris > 0 {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let given = usage_set(usages);
    if given != set(&["digital signature", "key encipherment", "server auth"])
        && given != set(&["digital signature", "server auth"])
    {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    if !req.common_name.starts_with(NODE_PREFIX) {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

/// Upstream's `validAPIServerClientUsages`: `client auth` required, plus optionally
/// `digital signature` and `key encipherment`.
pub fn validate_apiserver_client(usages: &[String]) -> Result<(), String> {
    let mut client_auth = false;
    for usage in usages {
        match usage.as_str() {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

/// The signer's rules for `signer`; `None` for a signer this controller does not sign for.
pub fn validate_for_signer(
    signer: &str,
    req: &ParsedRequest,
    usages: &[String],
) -> Option<Result<(), String>> {
    match signer {
        KUBE_APISERVER_CLIENT => Some(validate_apiserver_client(usages)),
        KUBE_APISERVER_CLIENT_KUBELET => Some(validate_kubelet_client(req, usages)),
        KUBELET_SERVING => Some(validate_kubelet_serving(req, usages)),
        _ => None,
    }
}

/// `(approved, denied)` as upstream's `GetCertApprovalCondition`.
pub fn approval(csr: &CertificateSigningRequest) -> (bool, bool) {
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default();
    let approved = conditions.iter().any(|c| c.type_ == "Approved");
    let denied = conditions.iter().any(|c| c.type_ == "Denied");
    (approved, denied)
}

/// Upstream's `HasTrueCondition` (an empty status counts as True).
pub fn has_true_condition(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_ == type_ && (c.status.is_empty() || c.status == "True"))
}

pub fn has_certificate(csr: &CertificateSigningRequest) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kubelet(cn: &str, orgs: &[&str]) -> ParsedRequest {
        ParsedRequest {
            common_name: cn.into(),
            organizations: orgs.iter().map(|o| o.to_string()).collect(),
            ..ParsedRequest::default()
        }
    }

    fn usages(u: &[&str]) -> Vec<String> {
        u.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn kubelet_client_rules() {
        let good = kubelet("system:node:n1", &["system:nodes"]);
        let client = usages(&["digital signature", "key encipherment", "client auth"]);
        type Case = (
            &'static str,
            ParsedRequest,
            Vec<String>,
            Result<(), &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("rsa usages", good.clone(), client.clone(), Ok(())),
            (
                "ecdsa usages",
                good.clone(),
                usages(&["client auth", "digital signature"]),
                Ok(()),
            ),
            (
                "wrong org",
                kubelet("system:node:n1", &["nodes"]),
                client.clone(),
                Err("subject organization is not system:nodes"),
            ),
            (
                "two orgs",
                kubelet("system:node:n1", &["system:nodes", "x"]),
                client.clone(),
                Err("subject organization is not system:nodes"),
            ),
            (
                "bad cn",
                kubelet("n1", &["system:nodes"]),
                client.clone(),
                Err("subject common name does not begin with system:node:"),
            ),
            (
                "dns san",
                ParsedRequest {
                    dns_names: vec!["n1".into()],
                    ..good.clone()
                },
                client.clone(),
                Err("DNS subjectAltNames are not allowed"),
            ),
            (
                "server usage",
                good.clone(),
                usages(&["digital signature", "server auth"]),
                Err("usages did not match [client auth digital signature key encipherment]"),
            ),
        ];
        for (name, req, u, want) in cases {
            assert_eq!(
                validate_kubelet_client(&req, &u),
                want.map_err(str::to_string),
                "{name}"
            );
        }
    }

    #[test]
    fn kubelet_serving_needs_a_san_and_server_usages() {
        let mut req = kubelet("system:node:n1", &["system:nodes"]);
        let u = usages(&["digital signature", "key encipherment", "server auth"]);
        assert_eq!(
            validate_kubelet_serving(&req, &u),
            Err("DNS or IP subjectAltName is required".into())
        );
        req.ip_addresses = 1;
        assert_eq!(validate_kubelet_serving(&req, &u), Ok(()));
        req.uris = 1;
        assert!(validate_kubelet_serving(&req, &u).is_err());
    }

    #[test]
    fn apiserver_client_usages() {
        assert_eq!(
            validate_apiserver_client(&usages(&["client auth", "digital signature"])),
            Ok(())
        );
        assert_eq!(
            validate_apiserver_client(&usages(&["digital signature"])),
            Err("missing required usage for client certificate: client auth".into())
        );
        assert_eq!(
            validate_apiserver_client(&usages(&["client auth", "server auth"])),
            Err("invalid usage for client certificate: server auth".into())
        );
        let req = ParsedRequest::default();
        assert!(validate_for_signer("example.com/other", &req, &[]).is_none());
    }

    #[test]
    fn parses_a_pem_request() {
        let key = match rcgen::KeyPair::generate() {
            Ok(k) => k,
            Err(err) => panic!("{err}"),
        };
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "system:nodes");
        params.subject_alt_names = vec![rcgen::SanType::DnsName(match "n1".try_into() {
            Ok(n) => n,
            Err(err) => panic!("{err}"),
        })];
        let pem = match params.serialize_request(&key).and_then(|r| r.pem()) {
            Ok(pem) => pem,
            Err(err) => panic!("{err}"),
        };
        let parsed = match parse_request(pem.as_bytes()) {
            Ok(p) => p,
            Err(err) => panic!("{err}"),
        };
        assert_eq!(parsed.common_name, "system:node:n1");
        assert_eq!(parsed.organizations, ["system:nodes"]);
        assert_eq!(parsed.dns_names, ["n1"]);
        assert!(
            parse_request(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
