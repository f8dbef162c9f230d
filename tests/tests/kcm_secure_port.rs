//! kube-controller-manager's secure port behind delegated authentication and authorization, as
//! upstream's: health paths are open to anonymous clients, `/metrics` needs a user the apiserver
//! authorizes (SubjectAccessReview, here through RBAC), bearer tokens are checked by
//! TokenReview, client certificates from `--client-ca-file` name the user, and refusals carry
//! upstream's 401/403 `Status` bodies. Without the auth kubeconfigs the port still serves health,
//! and nothing else.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use e2e::{free_port, run, stderr, wait_for, ApiServer, Backend, ControllerManager};

const TOKENS: &str =
    "token-of-reader,metrics-reader,uid-reader\ntoken-of-nobody,nobody,uid-nobody\n";

fn openssl(dir: &Path, args: &[&str]) {
    let out = run({
        let mut c = Command::new("openssl");
        c.current_dir(dir).args(args);
        c
    });
    assert!(out.status.success(), "openssl {args:?}: {}", stderr(&out));
}

/// A CA and a client certificate `<name>.crt`/`.key` signed by it for each subject.
fn client_pki(dir: &Path, ca: &str, certs: &[(&str, &str)]) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.crt"),
            "-days",
            "1",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
    if let Err(err) = std::fs::write(dir.join("client-ext"), "extendedKeyUsage=clientAuth\n") {
        panic!("writing the extension file: {err}");
    }
    for (name, subject) in certs {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
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
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                "1",
                "-extfile",
                "client-ext",
            ],
        );
    }
}

/// What a client sends besides the request.
#[derive(Clone, Copy)]
enum As<'a> {
    Nobody,
    Token(&'a str),
    Cert(&'a str),
}

/// One HTTPS request with curl; returns (status, body).
fn curl(port: u16, dir: &Path, method: &str, path: &str, who: As<'_>) -> Option<(u16, String)> {
    let mut command = Command::new("curl");
    command
        .current_dir(dir)
        .args([
            "-sk",
            "--max-time",
            "10",
            "-X",
            method,
            "-w",
            "\n%{http_code}",
        ])
        .arg(format!("https://127.0.0.1:{port}{path}"));
    match who {
        As::Nobody => {}
        As::Token(token) => {
            command.args(["-H", &format!("Authorization: Bearer {token}")]);
        }
        As::Cert(name) => {
            command.args([
                "--cert",
                &format!("{name}.crt"),
                "--key",
                &format!("{name}.key"),
            ]);
        }
    }
    let out = command.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

fn status_json(body: &str) -> serde_json::Value {
    match serde_json::from_str(body) {
        Ok(value) => value,
        Err(err) => panic!("not a JSON Status ({err}): {body}"),
    }
}

/// The apiserver with RBAC and two token users, and a kubeconfig for its loopback port.
fn apiserver() -> (ApiServer, std::path::PathBuf) {
    let server = ApiServer::start_with(Backend::Embedded, |dir| {
        let tokens = dir.join("tokens.csv");
        if let Err(err) = std::fs::write(&tokens, TOKENS) {
            panic!("writing the token file: {err}");
        }
        vec![
            "--token-auth-file".into(),
            tokens.display().to_string(),
            "--authorization-mode".into(),
            "Node,RBAC".into(),
        ]
    });
    let kubeconfig = server.write_file(
        "admin.kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\ncontexts:\n- name: admin\n  context: {{cluster: local, user: admin}}\ncurrent-context: admin\nusers:\n- name: admin\n  user: {{}}\n",
            server.url()
        ),
    );
    (server, kubeconfig)
}

#[test]
fn metrics_need_a_user_the_apiserver_authorizes() {
    let (server, kubeconfig) = apiserver();
    let dir = server.work_dir();
    client_pki(
        &dir,
        "client-ca",
        &[
            ("master", "/O=system:masters/CN=cert-admin"),
            ("plain", "/CN=cert-user"),
        ],
    );
    client_pki(
        &dir,
        "foreign-ca",
        &[("foreign", "/O=system:masters/CN=mallory")],
    );
    server.kubectl([
        "create",
        "clusterrole",
        "metrics-reader",
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    server.kubectl([
        "create",
        "clusterrolebinding",
        "metrics-reader",
        "--clusterrole=metrics-reader",
        "--user=metrics-reader",
    ]);

    let port = match free_port() {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let kubeconfig = kubeconfig.display().to_string();
    let client_ca = dir.join("client-ca.crt").display().to_string();
    let _kcm = ControllerManager::start(
        &server,
        &[
            &format!("--secure-port={port}"),
            "--bind-address=127.0.0.1",
            &format!("--authentication-kubeconfig={kubeconfig}"),
            &format!("--authorization-kubeconfig={kubeconfig}"),
            &format!("--client-ca-file={client_ca}"),
        ],
    );
    let get = |path: &str, who: As<'_>| -> (u16, String) {
        match curl(port, &dir, "GET", path, who) {
            Some(answer) => answer,
            None => panic!("GET {path} got no HTTP answer"),
        }
    };

    // Health is open to anonymous clients (--authorization-always-allow-paths).
    let health = wait_for("/healthz", Duration::from_secs(30), || {
        curl(port, &dir, "GET", "/healthz", As::Nobody)
    });
    assert_eq!(health, (200, "ok".to_string()));
    assert_eq!(get("/readyz", As::Nobody), (200, "ok".to_string()));
    assert_eq!(get("/livez", As::Nobody), (200, "ok".to_string()));

    // /metrics is not: anonymous is authenticated, then refused by RBAC.
    let (code, body) = get("/metrics", As::Nobody);
    assert_eq!(code, 403, "{body}");
    let status = status_json(&body);
    assert_eq!(
        status,
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "forbidden: User \"system:anonymous\" cannot get path \"/metrics\"",
            "reason": "Forbidden",
            "details": {},
            "code": 403,
        })
    );

    // A token user bound to a ClusterRole with nonResourceURLs ["/metrics"] reads them.
    let (code, metrics) = get("/metrics", As::Token("token-of-reader"));
    assert_eq!(code, 200, "{metrics}");
    assert!(
        metrics.contains("# TYPE rest_client_requests_total counter"),
        "{metrics}"
    );
    // Only with the verb granted: the verb is the method.
    let posted = curl(port, &dir, "POST", "/metrics", As::Token("token-of-reader"));
    let (code, body) = posted.unwrap_or_default();
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        status_json(&body)["message"],
        "forbidden: User \"metrics-reader\" cannot post path \"/metrics\""
    );

    // A valid token without the grant: 403 naming the user.
    let (code, body) = get("/metrics", As::Token("token-of-nobody"));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        status_json(&body)["message"],
        "forbidden: User \"nobody\" cannot get path \"/metrics\""
    );

    // A token the apiserver does not know: 401, even on an always-allowed path.
    for path in ["/metrics", "/healthz"] {
        let (code, body) = get(path, As::Token("not-a-token"));
        assert_eq!(code, 401, "{path}: {body}");
        assert_eq!(
            status_json(&body),
            serde_json::json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "Unauthorized",
                "reason": "Unauthorized",
                "code": 401,
            })
        );
    }

    // Client certificates from --client-ca-file: system:masters may do anything without a
    // review; another user is reviewed like any other.
    let (code, metrics) = get("/metrics", As::Cert("master"));
    assert_eq!(code, 200, "{metrics}");
    assert!(metrics.contains("rest_client_requests_total"), "{metrics}");
    let (code, body) = get("/metrics", As::Cert("plain"));
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        status_json(&body)["message"],
        "forbidden: User \"cert-user\" cannot get path \"/metrics\""
    );
    // A certificate from another CA is refused, not taken for anonymous.
    let (code, body) = get("/healthz", As::Cert("foreign"));
    assert_eq!(code, 401, "{body}");

    // Once bound, the certificate user reads metrics too (its refusal was cached for at most
    // --authorization-webhook-cache-unauthorized-ttl, 10s by default).
    server.kubectl([
        "create",
        "clusterrolebinding",
        "metrics-cert-user",
        "--clusterrole=metrics-reader",
        "--user=cert-user",
    ]);
    let (code, _) = wait_for(
        "the new binding to be seen",
        Duration::from_secs(30),
        || curl(port, &dir, "GET", "/metrics", As::Cert("plain")).filter(|(code, _)| *code == 200),
    );
    assert_eq!(code, 200);
}

#[test]
fn without_auth_kubeconfigs_only_health_is_served() {
    let (server, _kubeconfig) = apiserver();
    let dir = server.work_dir();
    let port = match free_port() {
        Ok(p) => p,
        Err(err) => panic!("{err}"),
    };
    let kcm = ControllerManager::start(
        &server,
        &[&format!("--secure-port={port}"), "--bind-address=127.0.0.1"],
    );
    let health = wait_for("/healthz", Duration::from_secs(30), || {
        curl(port, &dir, "GET", "/healthz", As::Nobody)
    });
    assert_eq!(health, (200, "ok".to_string()));
    // No SubjectAccessReview is possible: everything else is forbidden, and a token is not
    // reviewed at all (the request stays anonymous), as upstream's optional remote kubeconfig.
    for who in [As::Nobody, As::Token("token-of-reader")] {
        let (code, body) = curl(port, &dir, "GET", "/metrics", who).unwrap_or_default();
        assert_eq!(code, 403, "{body}");
        assert_eq!(
            status_json(&body)["message"],
            "forbidden: User \"system:anonymous\" cannot get path \"/metrics\""
        );
    }
    let log = std::fs::read_to_string(kcm.log_path()).unwrap_or_default();
    assert!(
        log.contains("No authorization-kubeconfig provided, so SubjectAccessReview of authorization tokens won't work."),
        "{log}"
    );
    assert!(
        log.contains("No authentication-kubeconfig provided in order to lookup client-ca-file"),
        "{log}"
    );
}
