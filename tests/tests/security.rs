//! The secure port with the real kubectl: x509 client-certificate and static-token users, RBAC
//! with the bootstrap policy (a user bound to `view` can read but not write, with upstream's 403
//! text), `kubectl auth can-i` and `auth whoami`, 401 for unknown credentials, no anonymous
//! access by default.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::{backend_tests, free_port, run, stderr, stdout, ApiServer, Backend};

struct Pki {
    ca: PathBuf,
    tokens: PathBuf,
    port: u16,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = run({
        let mut c = Command::new("openssl");
        c.current_dir(dir).args(args);
        c
    });
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A CA, client certificates for `admin` (O=system:masters) and `viewer`, and a token file.
fn pki(dir: &Path) -> Pki {
    openssl(
        dir,
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
            "/CN=e2e-ca",
        ],
    );
    std::fs::write(dir.join("ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, subject) in [
        ("admin", "/O=system:masters/CN=admin"),
        ("viewer", "/O=readers/CN=viewer"),
        ("n1", "/O=system:nodes/CN=system:node:n1"),
    ] {
        openssl(
            dir,
            &[
                "req",
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
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "1",
                "-extfile",
                "ext",
            ],
        );
    }
    openssl(dir, &["genrsa", "-out", "sa.key", "2048"]);
    openssl(dir, &["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]);
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, "token-of-tina,tina,uid-tina,\"testers\"\n").unwrap();
    Pki {
        ca: dir.join("ca.crt"),
        tokens,
        port: free_port().unwrap(),
    }
}

fn start(backend: Backend) -> (ApiServer, Pki) {
    let mut made = None;
    let server = ApiServer::start_with(backend, |dir| {
        let p = pki(dir);
        let args = vec![
            "--secure-port".to_string(),
            p.port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--cert-dir".into(),
            dir.join("certs").display().to_string(),
            "--client-ca-file".into(),
            p.ca.display().to_string(),
            "--token-auth-file".into(),
            p.tokens.display().to_string(),
            "--service-account-signing-key-file".into(),
            dir.join("sa.key").display().to_string(),
            "--service-account-key-file".into(),
            dir.join("sa.pub").display().to_string(),
            "--service-account-issuer".into(),
            "https://kubernetes.default.svc".into(),
            "--enable-admission-plugins".into(),
            "NodeRestriction".into(),
        ];
        made = Some(p);
        args
    });
    (server, made.unwrap())
}

/// kubectl against the secure port as one identity; returns (success, stdout, stderr).
fn kubectl_as(server: &ApiServer, pki: &Pki, who: &str, args: &[&str]) -> (bool, String, String) {
    let work = server.work_dir();
    let mut command = server.kubectl_command(e2e::KubectlVersion::V1_32);
    // The harness points kubectl at the insecure port; these flags win over it.
    command
        .arg(format!("--server=https://127.0.0.1:{}", pki.port))
        .arg(format!(
            "--certificate-authority={}",
            work.join("certs/apiserver.crt").display()
        ));
    match who {
        "tina" => {
            command.arg("--token=token-of-tina");
        }
        "garbage" => {
            command.arg("--token=not-a-token");
        }
        token if token.starts_with("token:") => {
            command.arg(format!("--token={}", &token["token:".len()..]));
        }
        cert => {
            command
                .arg(format!(
                    "--client-certificate={}",
                    work.join(format!("{cert}.crt")).display()
                ))
                .arg(format!(
                    "--client-key={}",
                    work.join(format!("{cert}.key")).display()
                ));
        }
    }
    command.args(args);
    let out = run(command);
    (out.status.success(), stdout(&out), stderr(&out))
}

fn users_get_what_rbac_grants(backend: Backend) {
    let (server, pki) = start(backend);
    let (ok, out, err) = kubectl_as(
        &server,
        &pki,
        "admin",
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        r#"admin ["system:masters","system:authenticated"]"#
    );

    // Before any binding the viewer may discover but not read.
    let (ok, _, err) = kubectl_as(&server, &pki, "viewer", &["get", "pods", "-n", "default"]);
    assert!(!ok);
    assert!(err.contains(r#"pods is forbidden: User "viewer" cannot list resource "pods" in API group "" in the namespace "default""#), "{err}");

    let (ok, _, err) = kubectl_as(
        &server,
        &pki,
        "admin",
        &[
            "create",
            "rolebinding",
            "viewer-view",
            "--clusterrole=view",
            "--user=viewer",
            "-n",
            "default",
        ],
    );
    assert!(ok, "{err}");
    let (ok, _, err) = kubectl_as(
        &server,
        &pki,
        "admin",
        &[
            "create",
            "configmap",
            "cm1",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
    );
    assert!(ok, "{err}");
    let (ok, out, err) = kubectl_as(
        &server,
        &pki,
        "viewer",
        &["get", "configmap", "cm1", "-n", "default", "-o", "name"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "configmap/cm1");
    let (ok, _, err) = kubectl_as(
        &server,
        &pki,
        "viewer",
        &[
            "create",
            "configmap",
            "cm2",
            "-n",
            "default",
            "--from-literal=a=b",
        ],
    );
    assert!(!ok);
    assert!(err.contains(r#"configmaps is forbidden: User "viewer" cannot create resource "configmaps" in API group "" in the namespace "default""#), "{err}");

    // `kubectl auth can-i` agrees with RBAC.
    let cases = [
        (vec!["get", "pods"], "yes"),
        (vec!["list", "deployments.apps"], "yes"),
        (vec!["create", "pods"], "no"),
        (vec!["delete", "configmaps"], "no"),
        (vec!["get", "secrets"], "no"),
    ];
    for (question, want) in cases {
        let mut args = vec!["auth", "can-i"];
        args.extend(question.iter().copied());
        args.extend(["-n", "default"]);
        let (_, out, _) = kubectl_as(&server, &pki, "viewer", &args);
        assert_eq!(out.trim(), want, "can-i {question:?}");
    }
    let (_, out, _) = kubectl_as(
        &server,
        &pki,
        "viewer",
        &["auth", "can-i", "get", "pods", "-n", "kube-system"],
    );
    assert_eq!(
        out.trim(),
        "no",
        "a RoleBinding grants only in its namespace"
    );
    let (_, out, _) = kubectl_as(
        &server,
        &pki,
        "admin",
        &[
            "auth",
            "can-i",
            "create",
            "pods",
            "-n",
            "default",
            "--as=viewer",
        ],
    );
    assert_eq!(
        out.trim(),
        "no",
        "SubjectAccessReview through impersonation"
    );

    // Static token users, unknown tokens, and no anonymous access by default.
    let (ok, out, err) = kubectl_as(
        &server,
        &pki,
        "tina",
        &[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "tina");
    let (ok, _, err) = kubectl_as(&server, &pki, "garbage", &["get", "ns"]);
    assert!(!ok);
    assert!(err.contains("Unauthorized"), "{err}");
    // No credentials at all (kubectl would prompt for a password here, so ask with curl).
    let out = run({
        let mut c = Command::new("curl");
        c.args(["-sS", "--cacert"])
            .arg(server.work_dir().join("certs/apiserver.crt"))
            .arg(format!("https://127.0.0.1:{}/api/v1/namespaces", pki.port));
        c
    });
    let status: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap_or_default();
    assert_eq!(
        status["code"], 401,
        "anonymous requests are refused by default: {status}"
    );
    assert_eq!(status["reason"], "Unauthorized");
}

/// A TokenRequest token bound to a pod authenticates as its service account until the pod is
/// deleted; a token for another audience is refused.
fn service_account_tokens_live_and_die_with_their_pod(backend: Backend) {
    let (server, pki) = start(backend);
    let admin = |args: &[&str]| {
        let (ok, out, err) = kubectl_as(&server, &pki, "admin", args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    admin(&["create", "serviceaccount", "robot"]);
    admin(&["run", "p1", "--image=busybox", "--restart=Never"]);
    let token = admin(&[
        "create",
        "token",
        "robot",
        "--bound-object-kind=Pod",
        "--bound-object-name=p1",
    ]);
    let as_robot = format!("token:{}", token.trim());
    let whoami = [
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username} {.status.userInfo.groups}",
    ];
    let (ok, out, err) = kubectl_as(&server, &pki, &as_robot, &whoami);
    assert!(ok, "{err}");
    assert_eq!(
        out.trim(),
        r#"system:serviceaccount:default:robot ["system:serviceaccounts","system:serviceaccounts:default","system:authenticated"]"#
    );
    let (ok, _, err) = kubectl_as(&server, &pki, &as_robot, &["get", "pods"]);
    assert!(
        !ok && err
            .contains(r#"User "system:serviceaccount:default:robot" cannot list resource "pods""#),
        "{err}"
    );
    admin(&["delete", "pod", "p1", "--grace-period=0", "--force"]);
    e2e::wait_for(
        "the bound token to stop working",
        std::time::Duration::from_secs(10),
        || {
            let (ok, _, err) = kubectl_as(&server, &pki, &as_robot, &whoami);
            (!ok && err.contains("Unauthorized")).then_some(())
        },
    );
    let other = admin(&["create", "token", "robot", "--audience=somebody-else"]);
    let (ok, _, err) = kubectl_as(&server, &pki, &format!("token:{}", other.trim()), &whoami);
    assert!(
        !ok && err.contains("Unauthorized"),
        "a token for another audience: {err}"
    );
}

/// A kubelet identity reads only what its own pods need and modifies only its own Node.
fn nodes_see_only_their_own_pods_and_secrets(backend: Backend) {
    let (server, pki) = start(backend);
    let admin = |args: &[&str]| {
        let (ok, out, err) = kubectl_as(&server, &pki, "admin", args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    for node in ["n1", "n2"] {
        let manifest = server.write_file(
            &format!("{node}.json"),
            &format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{node}"}}}}"#),
        );
        admin(&["create", "-f", manifest.to_str().unwrap()]);
        admin(&[
            "create",
            "secret",
            "generic",
            &format!("secret-{node}"),
            "--from-literal=k=v",
        ]);
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"pod-{node}"}},"spec":{{"nodeName":"{node}","containers":[{{"name":"c","image":"busybox"}}],"volumes":[{{"name":"s","secret":{{"secretName":"secret-{node}"}}}}]}}}}"#
        );
        let manifest = server.write_file(&format!("pod-{node}.json"), &pod);
        admin(&["create", "-f", manifest.to_str().unwrap()]);
    }
    let n1 = |args: &[&str]| kubectl_as(&server, &pki, "n1", args);
    let (ok, _, err) = n1(&["get", "secret", "secret-n1"]);
    assert!(ok, "its own pod's secret: {err}");
    let (ok, _, err) = n1(&["get", "secret", "secret-n2"]);
    assert!(
        !ok && err.contains(r#"secrets "secret-n2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{err}"
    );
    let (ok, _, err) = n1(&["get", "pod", "pod-n1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = n1(&["get", "pod", "pod-n2"]);
    assert!(
        !ok && err.contains("forbidden"),
        "another node's pod: {err}"
    );
    let (ok, out, err) = n1(&[
        "get",
        "pods",
        "--field-selector",
        "spec.nodeName=n1",
        "-o",
        "name",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "pod/pod-n1");
    let (ok, _, err) = n1(&["get", "pods"]);
    assert!(!ok && err.contains("forbidden"), "listing every pod: {err}");
    let (ok, _, err) = n1(&["label", "node", "n1", "ready=yes"]);
    assert!(ok, "its own Node: {err}");
    // NodeRestriction: a kubelet creates only mirror pods bound to itself.
    let (ok, _, err) = n1(&[
        "run",
        "sneaky",
        "--image=busybox",
        "--overrides",
        r#"{"spec":{"nodeName":"n1"}}"#,
    ]);
    assert!(!ok && err.contains("can only create mirror pods"), "{err}");
    let (ok, _, err) = n1(&["label", "node", "n2", "ready=yes"]);
    assert!(
        !ok && err.contains(r#"User "system:node:n1" cannot patch resource "nodes""#),
        "another Node: {err}"
    );
}

/// With an aescbc EncryptionConfiguration, a Secret is unreadable in etcd and readable through
/// the API; ConfigMaps (not configured) stay plain.
#[test]
fn secrets_are_encrypted_at_rest() {
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes, base64
    let server = ApiServer::start_with(Backend::Etcd, |dir| {
        let config = dir.join("encryption.yaml");
        std::fs::write(
            &config,
            format!(
                "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: {key}\n  - identity: {{}}\n"
            ),
        )
        .unwrap();
        vec![
            "--encryption-provider-config".into(),
            config.display().to_string(),
        ]
    });
    server.kubectl([
        "create",
        "secret",
        "generic",
        "s1",
        "--from-literal=password=hunter2-plaintext",
    ]);
    server.kubectl([
        "create",
        "configmap",
        "c1",
        "--from-literal=note=visible-plaintext",
    ]);
    let out = server.kubectl_stdout(["get", "secret", "s1", "-o", "jsonpath={.data.password}"]);
    assert_eq!(
        out.trim(),
        "aHVudGVyMi1wbGFpbnRleHQ=",
        "the API serves the plaintext"
    );
    let endpoints = server.etcd_endpoints().unwrap().join(",");
    let raw = |key: &str| {
        let out = run({
            let mut c = Command::new("etcdctl");
            c.env("ETCDCTL_API", "3").args([
                "--endpoints",
                &endpoints,
                "get",
                key,
                "--print-value-only",
            ]);
            c
        });
        assert!(out.status.success(), "{}", stderr(&out));
        out.stdout
    };
    let secret = raw("/registry/secrets/default/s1");
    assert!(
        secret.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&secret)
    );
    let text = String::from_utf8_lossy(&secret);
    assert!(
        !text.contains("aHVudGVyMi1wbGFpbnRleHQ") && !text.contains("hunter2"),
        "no plaintext at rest"
    );
    let configmap = raw("/registry/configmaps/default/c1");
    assert!(String::from_utf8_lossy(&configmap).contains("visible-plaintext"));
}

backend_tests!(
    users_get_what_rbac_grants,
    service_account_tokens_live_and_die_with_their_pod,
    nodes_see_only_their_own_pods_and_secrets
);

/// certificates.k8s.io: a CSR records who asked, and `kubectl certificate approve` sets the
/// Approved condition through the approval subresource.
#[test]
fn certificate_signing_requests_are_approved_through_kubectl() {
    let (server, pki) = start(Backend::Embedded);
    let dir = server.work_dir();
    openssl(
        &dir,
        &[
            "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "jane.key", "-out",
            "jane.csr", "-subj", "/CN=jane",
        ],
    );
    let request = std::fs::read(dir.join("jane.csr")).unwrap();
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &request);
    let manifest = server.write_file(
        "csr.json",
        &format!(
            r#"{{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{{"name":"jane"}},"spec":{{"request":"{encoded}","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"],"username":"someone-else"}}}}"#
        ),
    );
    let admin = |args: &[&str]| {
        let (ok, out, err) = kubectl_as(&server, &pki, "admin", args);
        assert!(ok, "{args:?}: {err}");
        out
    };
    admin(&["create", "-f", manifest.to_str().unwrap()]);
    let out = admin(&["get", "csr", "jane", "--no-headers"]);
    assert!(
        out.contains("kubernetes.io/kube-apiserver-client")
            && out.contains(" admin ")
            && out.contains("Pending"),
        "{out}"
    );
    admin(&["certificate", "approve", "jane"]);
    let out = admin(&[
        "get",
        "csr",
        "jane",
        "-o",
        "jsonpath={.status.conditions[0].type} {.spec.username}",
    ]);
    assert_eq!(out.trim(), "Approved admin");
    let (ok, _, err) = kubectl_as(
        &server,
        &pki,
        "viewer",
        &["certificate", "approve", "jane", "--force"],
    );
    assert!(
        !ok && err.contains("forbidden"),
        "approving needs RBAC: {err}"
    );
}
