//! The CSR approving and signing controllers against the real kube-apiserver and
//! kube-controller-manager binaries: a kubelet client CSR made by a bootstrap-token identity
//! (through impersonation) is auto-approved once RBAC lets bootstrappers use
//! `certificatesigningrequests/nodeclient` (the SubjectAccessReview) and is signed by the
//! `--cluster-signing-*` CA with the requested subject; a request that breaks its signer's rules
//! is marked Failed with an event instead of signed.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{run, stderr, stdout, wait_for, ApiServer, Backend, ControllerManager};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(30);

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = run({
        let mut c = Command::new("openssl");
        c.current_dir(dir).args(args);
        c
    });
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// An API server and a controller manager running both CSR controllers with a fresh CA
/// (`ca.crt` / `ca.key` in the server's work dir).
fn start() -> (ApiServer, ControllerManager) {
    let server = ApiServer::start(Backend::Embedded);
    let dir = server.work_dir();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=e2e-signing-ca",
        ],
    );
    let cert = format!(
        "--cluster-signing-cert-file={}",
        dir.join("ca.crt").display()
    );
    let key = format!(
        "--cluster-signing-key-file={}",
        dir.join("ca.key").display()
    );
    let kcm = ControllerManager::start(
        &server,
        &[
            "--controllers=certificatesigningrequest-signing-controller,certificatesigningrequest-approving-controller",
            &cert,
            &key,
        ],
    );
    (server, kcm)
}

/// Writes a CSR object for a fresh RSA key with `subject`; returns the manifest's path.
fn csr_manifest(
    server: &ApiServer,
    name: &str,
    subject: &str,
    signer: &str,
    usages: &[&str],
) -> String {
    let dir = server.work_dir();
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    let request = match std::fs::read(dir.join(format!("{name}.csr"))) {
        Ok(r) => r,
        Err(err) => panic!("reading {name}.csr: {err}"),
    };
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &request);
    let manifest = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {"request": encoded, "signerName": signer, "usages": usages},
    });
    server
        .write_file(&format!("{name}.json"), &manifest.to_string())
        .display()
        .to_string()
}

fn get_csr(server: &ApiServer, name: &str) -> Value {
    let out = server.kubectl_stdout(["get", "csr", name, "-o", "json"]);
    match serde_json::from_str(&out) {
        Ok(v) => v,
        Err(err) => panic!("invalid JSON ({err}): {out}"),
    }
}

fn condition<'a>(csr: &'a Value, type_: &str) -> Option<&'a Value> {
    csr["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

#[test]
fn bootstrap_kubelet_client_csr_is_auto_approved_and_signed() {
    let (server, _kcm) = start();
    let path = csr_manifest(
        &server,
        "node-csr-n1",
        "/O=system:nodes/CN=system:node:n1",
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "key encipherment", "client auth"],
    );
    // kubeadm's bindings (named with dashes: our apiserver refuses the colons in kubeadm's
    // names): bootstrap tokens may create CSRs...
    server.kubectl([
        "create",
        "clusterrolebinding",
        "kubeadm-kubelet-bootstrap",
        "--clusterrole=system:node-bootstrapper",
        "--group=system:bootstrappers",
    ]);
    // The kubelet's bootstrap token identity, by impersonation from the admin port.
    server.kubectl([
        "create",
        "-f",
        path.as_str(),
        "--as=system:bootstrap:abcdef",
        "--as-group=system:bootstrappers",
    ]);
    // ...but until they may use certificatesigningrequests/nodeclient, the review says no.
    std::thread::sleep(Duration::from_secs(1));
    let pending = get_csr(&server, "node-csr-n1");
    assert!(condition(&pending, "Approved").is_none(), "{pending}");
    server.kubectl([
        "create",
        "clusterrolebinding",
        "kubeadm-node-autoapprove-bootstrap",
        "--clusterrole=system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "--group=system:bootstrappers",
    ]);
    let csr = wait_for("the CSR to be signed", TIMEOUT, || {
        let csr = get_csr(&server, "node-csr-n1");
        csr["status"]["certificate"]
            .as_str()
            .filter(|c| !c.is_empty())?;
        Some(csr)
    });
    assert_eq!(csr["spec"]["username"], "system:bootstrap:abcdef");
    let approved = match condition(&csr, "Approved") {
        Some(c) => c,
        None => panic!("no Approved condition: {csr}"),
    };
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(
        approved["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );

    let encoded = csr["status"]["certificate"].as_str().unwrap_or_default();
    let pem = match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded) {
        Ok(p) => p,
        Err(err) => panic!("status.certificate is not base64: {err}"),
    };
    let dir = server.work_dir();
    if let Err(err) = std::fs::write(dir.join("n1.crt"), &pem) {
        panic!("writing n1.crt: {err}");
    }
    let verified = openssl(&dir, &["verify", "-CAfile", "ca.crt", "n1.crt"]);
    assert!(verified.contains("n1.crt: OK"), "{verified}");
    let subject = openssl(
        &dir,
        &[
            "x509",
            "-in",
            "n1.crt",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage",
        ],
    );
    let compact = subject.replace(' ', "");
    assert!(
        compact.contains("subject=O=system:nodes,CN=system:node:n1"),
        "{subject}"
    );
    assert!(
        subject.contains("TLS Web Client Authentication"),
        "{subject}"
    );
    // The certificate's key is the request's.
    let cert_key = openssl(&dir, &["x509", "-in", "n1.crt", "-noout", "-pubkey"]);
    let req_key = openssl(
        &dir,
        &["req", "-in", "node-csr-n1.csr", "-noout", "-pubkey"],
    );
    assert_eq!(cert_key, req_key);
}

#[test]
fn csr_breaking_the_signer_rules_is_failed_not_signed() {
    let (server, _kcm) = start();
    // A kubelet client certificate must be for CN=system:node:<name>.
    let path = csr_manifest(
        &server,
        "bad-subject",
        "/O=system:nodes/CN=n1",
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "key encipherment", "client auth"],
    );
    server.kubectl(["create", "-f", path.as_str()]);
    // Not a kubelet client request, so the auto-approver leaves it for a human.
    std::thread::sleep(Duration::from_secs(1));
    let csr = get_csr(&server, "bad-subject");
    assert!(condition(&csr, "Approved").is_none(), "{csr}");
    server.kubectl(["certificate", "approve", "bad-subject"]);
    let csr = wait_for("the Failed condition", TIMEOUT, || {
        let csr = get_csr(&server, "bad-subject");
        condition(&csr, "Failed")?;
        Some(csr)
    });
    let failed = condition(&csr, "Failed").cloned().unwrap_or_default();
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(
        failed["message"],
        "subject common name does not begin with system:node:"
    );
    assert!(csr["status"]["certificate"].is_null(), "{csr}");
    wait_for("the SignerValidationFailure event", TIMEOUT, || {
        let out = server.kubectl_stdout(["get", "events", "-A", "-o", "json"]);
        out.contains("SignerValidationFailure").then_some(())
    });
}
