//! `kubectl logs` end to end: the apiserver's pods/log proxies to the kubelet's API on `--port`,
//! which reads the CRI log files a real containerd writes. Plain, `--tail`, `--timestamps`,
//! `-f` (a line written after kubectl started), `--previous` after a restart, and upstream's
//! errors for a multi-container pod without `-c` and for a pod without a node.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use e2e::containerd::BUSYBOX_IMAGE;
use e2e::pods::{apply, get_pod, RealNode};
use e2e::{wait_for, ApiServer};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

/// `kubectl logs <args>` output once it succeeds and `done` accepts it.
fn logs_until(server: &ApiServer, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    wait_for(&format!("kubectl logs {args:?}"), TIMEOUT, || {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let out = server.kubectl_unchecked(&all);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        (out.status.success() && done(&text)).then_some(text)
    })
}

fn line_number(line: &str) -> Option<u64> {
    line.trim().strip_prefix("line ")?.parse().ok()
}

/// `2026-01-01T00:00:00.123456789Z` or with an offset: the shape the runtime writes.
fn is_rfc3339_nano(stamp: &str) -> bool {
    let bytes = stamp.as_bytes();
    bytes.len() >= 20
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && (stamp.ends_with('Z') || stamp[19..].contains(['+', '-']))
}

#[test]
fn kubectl_logs_reads_the_containers_output_through_the_kubelet() {
    // The apiserver has no kubelet client certificate yet: it comes as system:anonymous, which
    // the kubelet's SubjectAccessReview (nodes/proxy) puts to the apiserver.
    let node = RealNode::start();
    let server = &node.server;
    let port = node.port;
    apply(
        server,
        "web.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: web, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'i=0; while true; do echo line $i; i=$((i+1)); sleep 1; done']
"#
        ),
    );

    // The node publishes where its kubelet listens.
    wait_for("the node's kubelet endpoint", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "node", "node1", "-o", "json"]);
        let node: Value = serde_json::from_slice(&out.stdout).ok()?;
        (node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == port).then_some(())
    });

    // The kubelet asks the apiserver whether the apiserver's user (anonymous here) may use
    // nodes/proxy: not until RBAC says so.
    let refused = wait_for("the kubelet's refusal", TIMEOUT, || {
        let out = server.kubectl_unchecked(["logs", "web"]);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        stderr.contains("Forbidden").then_some(stderr)
    });
    assert!(
        refused.contains("user=system:anonymous, verb=get, resource=nodes, subresource=proxy"),
        "{refused}"
    );
    server.kubectl([
        "create",
        "clusterrole",
        "kubelet-api",
        "--verb=get",
        "--resource=nodes/proxy",
    ]);
    server.kubectl([
        "create",
        "clusterrolebinding",
        "kubelet-api",
        "--clusterrole=kubelet-api",
        "--user=system:anonymous",
    ]);

    // Plain: the container's output, a line each.
    let text = logs_until(server, &["web"], |t| t.contains("line 2\n"));
    assert!(text.starts_with("line 0\nline 1\nline 2\n"), "{text}");

    // --tail=1: only the last line.
    let text = logs_until(server, &["web", "--tail=1"], |t| !t.is_empty());
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(line_number(&text).is_some(), "{text}");

    // --timestamps: an RFC3339Nano time and a space before each line.
    let text = logs_until(server, &["web", "--timestamps", "--tail=2"], |t| {
        t.lines().count() == 2
    });
    for line in text.lines() {
        let (stamp, rest) = line.split_once(' ').unwrap_or(("", ""));
        assert!(is_rfc3339_nano(stamp), "{line:?}");
        assert!(rest.starts_with("line "), "{line:?}");
    }

    // -f: kubectl keeps streaming and sees a line written after it started.
    let last = logs_until(server, &["web", "--tail=1"], |t| !t.is_empty());
    let last = line_number(&last).unwrap_or(0);
    let mut follow = server.kubectl_command(e2e::KubectlVersion::V1_32);
    follow
        .args(["logs", "-f", "web"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match follow.spawn() {
        Ok(child) => child,
        Err(err) => panic!("kubectl logs -f: {err}"),
    };
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
    }
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut seen = Vec::new();
    let newer = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if line_number(&line).is_some_and(|n| n > last + 2) {
                    break Some(line);
                }
                seen.push(line);
            }
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(newer.is_some(), "kubectl logs -f saw only {seen:?}");
    assert_eq!(seen.first().map(String::as_str), Some("line 0"), "{seen:?}");

    // A multi-container pod needs -c; a pod without a node has no logs yet.
    apply(
        server,
        "multi.yaml",
        &format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: multi, namespace: default}}\nspec:\n  containers:\n  - name: a\n    image: {BUSYBOX_IMAGE}\n  - name: b\n    image: {BUSYBOX_IMAGE}\n"
        ),
    );
    // kubectl 1.32 picks the first container itself; the API answers upstream's error.
    let out =
        server.kubectl_unchecked(["get", "--raw", "/api/v1/namespaces/default/pods/multi/log"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a container name must be specified for pod multi, choose one of: [a b]"),
        "{stderr}"
    );
    let out = server.kubectl_unchecked(["logs", "multi", "-c", "a"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pod multi does not have a host assigned"),
        "{stderr}"
    );
    let out = server.kubectl_unchecked(["logs", "nope"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pods \"nope\" not found"), "{stderr}");

    // --previous: the output of the run before the restart.
    apply(
        server,
        "restarter.yaml",
        &format!(
            r#"apiVersion: v1
kind: Pod
metadata: {{name: restarter, namespace: default}}
spec:
  nodeName: node1
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: {BUSYBOX_IMAGE}
    command: [sh, -c, 'echo run at $(date +%s%N); sleep 1; exit 1']
"#
        ),
    );
    wait_for("restarter restarted", TIMEOUT, || {
        let p = get_pod(server, "restarter");
        (p["status"]["containerStatuses"][0]["restartCount"].as_u64() >= Some(1)).then_some(())
    });
    let previous = logs_until(server, &["restarter", "--previous"], |t| {
        t.starts_with("run at ")
    });
    let current = logs_until(server, &["restarter"], |t| t.starts_with("run at "));
    assert_ne!(previous, current);
}
