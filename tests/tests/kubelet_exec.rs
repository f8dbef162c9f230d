//! `kubectl exec`, `kubectl attach` and `kubectl port-forward` end to end, with a real
//! containerd: the apiserver passes pods/exec, pods/attach and pods/portforward on to the
//! kubelet, which asks containerd for a streaming URL and joins the client to it.
//!
//! kubectl 1.32 speaks WebSocket `v5.channel.k8s.io` for exec (translated to SPDY by the
//! kubelet), SPDY/3.1 when told not to use WebSockets (passed through), and a WebSocket tunnel
//! of SPDY for port-forward; kubectl 1.27 speaks SPDY only; the Python client speaks
//! WebSocket `v4.channel.k8s.io`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Output, Stdio};
use std::time::Duration;

use e2e::containerd::BUSYBOX_IMAGE;
use e2e::pods::{apply, events_for, wait_phase, RealNode};
use e2e::{free_port, wait_for, ApiServer, KubectlVersion};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(90);

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).to_string()
}

/// Runs kubectl with `input` on its stdin.
fn kubectl_with_input(
    server: &ApiServer,
    version: KubectlVersion,
    env: &[(&str, &str)],
    args: &[&str],
    input: &[u8],
) -> Output {
    let mut command = server.kubectl_command(version);
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => panic!("kubectl {args:?}: {err}"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    match wait_output(child, TIMEOUT) {
        Some(output) => output,
        None => panic!("kubectl {args:?} did not finish in {TIMEOUT:?}"),
    }
}

/// The child's output, or None (after killing it) when it runs longer than `limit`.
fn wait_output(mut child: std::process::Child, limit: Duration) -> Option<Output> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().ok(),
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn exec(
    server: &ApiServer,
    version: KubectlVersion,
    env: &[(&str, &str)],
    args: &[&str],
) -> Output {
    let mut all = vec!["exec"];
    all.extend_from_slice(args);
    kubectl_with_input(server, version, env, &all, b"")
}

/// GET / over HTTP/1.0 to `127.0.0.1:port`; the whole answer.
fn http_get(port: u16) -> std::io::Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /index.html HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// Runs `kubectl port-forward pod/web <local>:8080` until it says it forwards, fetches the
/// page through it, and stops it.
fn fetch_through_port_forward(server: &ApiServer, env: &[(&str, &str)]) -> String {
    let local = match free_port() {
        Ok(port) => port,
        Err(err) => panic!("{err:#}"),
    };
    let mapping = format!("{local}:8080");
    let mut command = server.kubectl_command(KubectlVersion::V1_32);
    command
        .args(["port-forward", "-v=4", "pod/web", mapping.as_str()])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => panic!("kubectl port-forward: {err}"),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let line = match rx.recv_timeout(TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let output = child.wait_with_output();
            panic!(
                "kubectl port-forward did not start: {:?}",
                output.map(|o| text(&o.stderr))
            );
        }
    };
    assert!(line.starts_with("Forwarding from 127.0.0.1:"), "{line}");
    let page = wait_for(
        "a page through port-forward",
        Duration::from_secs(30),
        || {
            http_get(local)
                .ok()
                .filter(|a| a.contains("hello from web"))
        },
    );
    let _ = child.kill();
    if let Ok(output) = child.wait_with_output() {
        assert_no_fallback(&output);
    }
    page
}

/// `kubectl exec -it web -- sh -c <script>` run under `script(1)`, so that kubectl's stdin is
/// a terminal; what the terminal showed.
fn exec_in_a_terminal(server: &ApiServer, command: &str) -> String {
    let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
    let base = server.kubectl_command(KubectlVersion::V1_32);
    let mut line = quote(&base.get_program().to_string_lossy());
    for arg in base.get_args() {
        line.push(' ');
        line.push_str(&quote(&arg.to_string_lossy()));
    }
    for arg in ["exec", "-it", "web", "--", "sh", "-c", command] {
        line.push(' ');
        line.push_str(&quote(arg));
    }
    let mut terminal = std::process::Command::new("script");
    terminal
        .args(["-qec", line.as_str(), "/dev/null"])
        .env_clear()
        .current_dir(server.work_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in base.get_envs() {
        if let Some(value) = value {
            terminal.env(key, value);
        }
    }
    let child = match terminal.spawn() {
        Ok(child) => child,
        Err(err) => panic!("script(1): {err}"),
    };
    match wait_output(child, TIMEOUT) {
        Some(out) => {
            assert!(
                out.status.success(),
                "{}{}",
                text(&out.stdout),
                text(&out.stderr)
            );
            text(&out.stdout)
        }
        None => panic!("kubectl exec -it did not finish in {TIMEOUT:?}"),
    }
}

/// GET `path` from the kubelet's HTTPS port as an anonymous client (its certificate is
/// self-signed, so not verified).
fn kubelet_get(port: u16, path: &str) -> Option<String> {
    let out = std::process::Command::new("curl")
        .args(["-sfk", "--max-time", "10"])
        .arg(format!("https://127.0.0.1:{port}{path}"))
        .output()
        .ok()?;
    out.status.success().then(|| text(&out.stdout))
}

/// client-go logs (at -v=4) when its WebSocket attempt failed and it fell back to SPDY.
fn assert_no_fallback(output: &Output) {
    let stderr = text(&output.stderr).to_lowercase();
    assert!(
        !stderr.contains("fallback"),
        "kubectl fell back to SPDY:\n{stderr}"
    );
}

#[test]
fn exec_attach_and_port_forward_reach_the_container() {
    let node = RealNode::start();
    node.allow_kubelet_api();
    let server = &node.server;
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
    command: [sh, -c, 'mkdir -p /www && echo hello from web > /www/index.html && httpd -p 8080 -h /www && while true; do echo tick; sleep 1; done']
"#
        ),
    );
    wait_phase(server, "web", "Running", TIMEOUT);
    // The node lists the runtime's images in its status, with their sizes.
    let image = wait_for("the node's images", TIMEOUT, || {
        let out = server.kubectl_unchecked(["get", "node", "node1", "-o", "json"]);
        let node: Value = serde_json::from_slice(&out.stdout).ok()?;
        node["status"]["images"].as_array()?.iter().find_map(|i| {
            i["names"]
                .as_array()?
                .iter()
                .any(|n| n == BUSYBOX_IMAGE)
                .then(|| i.clone())
        })
    });
    assert!(
        image["sizeBytes"].as_i64().is_some_and(|s| s > 0),
        "{image}"
    );

    // The kubelet's stats (nodes/stats, nodes/metrics), from containerd's container stats.
    server.kubectl([
        "create",
        "clusterrole",
        "kubelet-stats",
        "--verb=get",
        "--resource=nodes/stats,nodes/metrics",
    ]);
    server.kubectl([
        "create",
        "clusterrolebinding",
        "kubelet-stats",
        "--clusterrole=kubelet-stats",
        "--user=system:anonymous",
    ]);
    let summary: Value = wait_for("the node's stats summary", TIMEOUT, || {
        let body = kubelet_get(node.port, "/stats/summary")?;
        let summary: Value = serde_json::from_str(&body).ok()?;
        let web = summary["pods"]
            .as_array()?
            .iter()
            .find(|p| p["podRef"]["name"] == "web")?
            .clone();
        web["containers"][0]["cpu"]["usageCoreNanoSeconds"]
            .is_u64()
            .then_some(summary)
    });
    assert_eq!(summary["node"]["nodeName"], "node1");
    assert!(
        summary["node"]["memory"]["workingSetBytes"].is_u64(),
        "{summary}"
    );
    let metrics = wait_for("resource metrics", TIMEOUT, || {
        kubelet_get(node.port, "/metrics/resource")
            .filter(|m| m.contains("container_memory_working_set_bytes{container=\"web\",namespace=\"default\",pod=\"web\"}"))
    });
    assert!(
        metrics.contains("node_cpu_usage_seconds_total "),
        "{metrics}"
    );
    assert!(metrics.contains("resource_scrape_error 0"), "{metrics}");

    // The container's events, as `kubectl describe` lists them.
    for (reason, message) in [
        (
            "Pulled",
            format!("Container image \"{BUSYBOX_IMAGE}\" already present on machine"),
        ),
        ("Created", "Created container web".to_string()),
        ("Started", "Started container web".to_string()),
    ] {
        let events = wait_for(&format!("the {reason} event"), TIMEOUT, || {
            let found = events_for(server, "web", reason);
            (!found.is_empty()).then_some(found)
        });
        assert_eq!(events[0]["message"], message.as_str(), "{events:?}");
        assert_eq!(
            events[0]["involvedObject"]["fieldPath"],
            "spec.containers{web}"
        );
    }

    // WebSocket v5 (kubectl 1.32's default): stdout, and the pod's hostname is its name.
    let out = exec(
        server,
        KubectlVersion::V1_32,
        &[],
        &["-v=4", "web", "--", "cat", "/etc/hostname"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "web\n");
    // (-v=4 shows client-go's fallback to SPDY, which must not happen.)
    assert_no_fallback(&out);

    // stdout and stderr stay apart; the exit code comes back as kubectl's.
    let out = exec(
        server,
        KubectlVersion::V1_32,
        &[],
        &["web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(
        text(&out.stderr).starts_with("err\n"),
        "{}",
        text(&out.stderr)
    );

    // -i: stdin reaches the command and its end (v5's close of channel 0) ends `cat`.
    let out = kubectl_with_input(
        server,
        KubectlVersion::V1_32,
        &[],
        &[
            "exec",
            "-v=4",
            "-i",
            "web",
            "--",
            "sh",
            "-c",
            "cat; echo done",
        ],
        b"line one\nline two\n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_fallback(&out);
    assert_eq!(text(&out.stdout), "line one\nline two\ndone\n");

    // SPDY/3.1 (kubectl without WebSockets, and kubectl 1.27): passed through to containerd.
    let spdy = [("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")];
    let out = kubectl_with_input(
        server,
        KubectlVersion::V1_32,
        &spdy,
        &["exec", "-i", "web", "--", "sh", "-c", "cat; exit 4"],
        b"over spdy\n",
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "over spdy\n");
    let out = exec(
        server,
        KubectlVersion::V1_27,
        &[],
        &["web", "--", "cat", "/etc/hostname"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "web\n");

    // -it: a terminal in the container (kubectl needs one of its own: `script` gives it a pty).
    let out = exec_in_a_terminal(server, "tty; echo rows=$(stty size)");
    assert!(out.contains("/dev/pts/"), "{out}");
    assert!(out.contains("rows="), "{out}");

    // The Python client: WebSocket v4.
    let answer: Value = server.python("kubelet_exec.py", &["default", "web"]);
    assert_eq!(answer["stdout"], "out\n", "{answer}");
    assert_eq!(answer["stderr"], "err\n", "{answer}");
    assert_eq!(answer["returncode"], 2, "{answer}");

    // Errors: a container the pod does not have, a command that does not exist.
    let out = exec(
        server,
        KubectlVersion::V1_32,
        &[],
        &["web", "-c", "nope", "--", "true"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("container nope is not valid for pod web"),
        "{}",
        text(&out.stderr)
    );
    let out = exec(
        server,
        KubectlVersion::V1_32,
        &[],
        &["web", "--", "no-such-command"],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-command"),
        "{}",
        text(&out.stderr)
    );

    // attach: the container's own output, as it writes it.
    let mut attach = server.kubectl_command(KubectlVersion::V1_32);
    attach
        .args(["attach", "web"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match attach.spawn() {
        Ok(child) => child,
        Err(err) => panic!("kubectl attach: {err}"),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let line = rx.recv_timeout(Duration::from_secs(30));
    let _ = child.kill();
    let output = child.wait_with_output();
    assert_eq!(
        line.as_deref().ok(),
        Some("tick"),
        "kubectl attach: {:?}",
        output.map(|o| text(&o.stderr))
    );

    // port-forward: over the WebSocket tunnel (1.32's default), then plain SPDY.
    let page = fetch_through_port_forward(server, &[]);
    assert!(page.starts_with("HTTP/1."), "{page}");
    let page = fetch_through_port_forward(server, &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")]);
    assert!(page.contains("hello from web"), "{page}");
}
