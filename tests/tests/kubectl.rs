//! The real `kubectl` (1.32, with a smoke subset on 1.27 and 1.33) against the real server, on
//! the embedded store and on etcd: apply, get in every output format, watch, patches, server-side
//! apply conflicts, edit, cascading deletes, finalizers, dry runs, discovery and explain.
//! Every command must succeed with an empty stderr unless the scenario expects a failure.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use e2e::{backend_tests, stderr, ApiServer, Backend, KubectlVersion};
use serde_json::Value;

const ALL_KINDS: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: e2e
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg
  namespace: e2e
  labels:
    app: web
data:
  key: value
---
apiVersion: v1
kind: Secret
metadata:
  name: sec
  namespace: e2e
type: Opaque
data:
  password: aHVudGVyMg==
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: e2e
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: nginx:1.27
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: e2e
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
---
apiVersion: batch/v1
kind: Job
metadata:
  name: once
  namespace: e2e
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:1.36
        command: ["true"]
"#;

fn deployment(replicas: u32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: nginx
        image: {image}
"#
    )
}

fn json(text: &str) -> Value {
    match serde_json::from_str(text) {
        Ok(v) => v,
        Err(err) => panic!("invalid JSON ({err}):\n{text}"),
    }
}

fn resource_version(server: &ApiServer, ns: &str, resource: &str) -> String {
    server.kubectl_stdout([
        "get",
        resource,
        "-n",
        ns,
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ])
}

/// Splits a kubectl table into rows of cells, cutting each line at the header's column starts
/// (cells may be empty, like a Job's DURATION before it ran).
fn table(text: &str) -> Vec<Vec<String>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let mut starts = Vec::new();
    let mut previous = ' ';
    for (i, c) in header.char_indices() {
        if c != ' ' && previous == ' ' {
            starts.push(i);
        }
        previous = c;
    }
    let cut = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(n, &start)| {
                let end = starts.get(n + 1).copied().unwrap_or(line.len());
                line.get(start.min(line.len())..end.min(line.len()))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect()
    };
    std::iter::once(header).chain(lines).map(cut).collect()
}

/// Asserts the table's header and that a row starts with `row_prefix` (an empty string in
/// `row_prefix` matches any cell).
fn assert_table(text: &str, header: &[&str], row_prefix: &[&str]) {
    let rows = table(text);
    let got_header: Vec<&str> = rows
        .first()
        .map(|r| r.iter().map(String::as_str).collect())
        .unwrap_or_default();
    assert_eq!(got_header, header, "header of:\n{text}");
    let found = rows.iter().skip(1).any(|r| {
        r.iter()
            .zip(row_prefix)
            .all(|(cell, want)| want.is_empty() || cell == want)
    });
    assert!(found, "no row starting {row_prefix:?} in:\n{text}");
}

#[test]
fn table_cuts_at_header_columns() {
    let text = "NAME   STATUS    COMPLETIONS   DURATION   AGE\nonce   Running   0/1                      1s\n";
    assert_eq!(
        table(text),
        [
            vec!["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            vec!["once", "Running", "0/1", "", "1s"],
        ]
    );
    assert!(table("").is_empty());
}

fn apply_get_and_output_formats(backend: Backend) {
    let server = ApiServer::start(backend);
    let file = server.write_file("all.yaml", ALL_KINDS);
    let file = file.to_string_lossy().into_owned();
    let out = server.kubectl_stdout(["apply", "-f", &file]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/e2e created",
            "configmap/cfg created",
            "secret/sec created",
            "deployment.apps/web created",
            "service/web created",
            "job.batch/once created",
        ]
    );

    let get = |resource: &str| server.kubectl_stdout(["get", resource, "-n", "e2e"]);
    assert_table(
        &get("deployments"),
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &["web", "0/2", "0", "0"],
    );
    assert_table(
        &get("services"),
        &[
            "NAME",
            "TYPE",
            "CLUSTER-IP",
            "EXTERNAL-IP",
            "PORT(S)",
            "AGE",
        ],
        &["web", "ClusterIP", "", "<none>", "80/TCP"],
    );
    assert_table(&get("configmaps"), &["NAME", "DATA", "AGE"], &["cfg", "1"]);
    assert_table(
        &get("secrets"),
        &["NAME", "TYPE", "DATA", "AGE"],
        &["sec", "Opaque", "1"],
    );
    assert_table(
        &get("jobs"),
        &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
        &["once", "Running", "0/1"],
    );
    assert_table(
        &server.kubectl_stdout(["get", "namespaces"]),
        &["NAME", "STATUS", "AGE"],
        &["e2e", "Active"],
    );
    assert_table(
        &server.kubectl_stdout(["get", "deployment", "web", "-n", "e2e", "-o", "wide"]),
        &[
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR",
        ],
        &["web", "0/2", "0", "0", "", "nginx", "nginx:1.27", "app=web"],
    );

    let yaml = server.kubectl_stdout(["get", "deployment", "web", "-n", "e2e", "-o", "yaml"]);
    for line in [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "  replicas: 2",
        "  name: web",
        "  namespace: e2e",
    ] {
        assert!(
            yaml.lines().any(|l| l == line),
            "no line {line:?} in:\n{yaml}"
        );
    }
    // Upstream kubectl hides managedFields in yaml/json unless asked.
    assert!(!yaml.contains("managedFields"), "{yaml}");

    let svc = json(&server.kubectl_stdout(["get", "service", "web", "-n", "e2e", "-o", "json"]));
    assert_eq!(svc["kind"], "Service");
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    assert_eq!(svc["spec"]["ports"][0]["protocol"], "TCP");
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap_or_default();
    assert!(
        cluster_ip.starts_with("10.0.0."),
        "clusterIP {cluster_ip:?}"
    );

    let list =
        json(&server.kubectl_stdout(["get", "configmaps,secrets", "-n", "e2e", "-o", "json"]));
    assert_eq!(list["kind"], "List");
    let names: Vec<&str> = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        names.contains(&"cfg") && names.contains(&"sec"),
        "{names:?}"
    );

    let names = server.kubectl_stdout([
        "get",
        "deployments,services,jobs",
        "-n",
        "e2e",
        "-o",
        "name",
    ]);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["deployment.apps/web", "service/web", "job.batch/once"]
    );
    let value = server.kubectl_stdout([
        "get",
        "configmap",
        "cfg",
        "-n",
        "e2e",
        "-o",
        "jsonpath={.data.key}/{.metadata.labels.app}",
    ]);
    assert_eq!(value, "value/web");
    let secret = server.kubectl_stdout([
        "get",
        "secret",
        "sec",
        "-n",
        "e2e",
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(secret, "aHVudGVyMg==");

    // Applying the same file again changes nothing: every object is "unchanged" and keeps its
    // resourceVersion.
    let before: Vec<String> = [
        "configmap/cfg",
        "secret/sec",
        "deployment/web",
        "service/web",
        "job/once",
    ]
    .iter()
    .map(|r| resource_version(&server, "e2e", r))
    .collect();
    let out = server.kubectl_stdout(["apply", "-f", &file]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/e2e unchanged",
            "configmap/cfg unchanged",
            "secret/sec unchanged",
            "deployment.apps/web unchanged",
            "service/web unchanged",
            "job.batch/once unchanged",
        ]
    );
    let after: Vec<String> = [
        "configmap/cfg",
        "secret/sec",
        "deployment/web",
        "service/web",
        "job/once",
    ]
    .iter()
    .map(|r| resource_version(&server, "e2e", r))
    .collect();
    assert_eq!(before, after, "a no-op apply changed resourceVersions");
}

/// Reads a child's stdout lines on a thread, so the test can wait for a line with a deadline.
fn line_reader(stdout: std::process::ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_line(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>, want: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if seen.iter().any(|l| {
            l.split_whitespace()
                .take(want.len())
                .eq(want.iter().copied())
        }) {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("watch printed no line starting {want:?}; it printed:\n{seen:#?}"),
        }
    }
}

fn watch_sees_added_modified_deleted(backend: Backend) {
    let server = ApiServer::start(backend);
    server.kubectl(["create", "namespace", "w"]);
    server.kubectl([
        "create",
        "configmap",
        "ready",
        "-n",
        "w",
        "--from-literal=a=b",
    ]);
    let mut command = server.kubectl_command(KubectlVersion::V1_32);
    command
        .args([
            "get",
            "configmaps",
            "-n",
            "w",
            "-w",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(err) => panic!("spawning kubectl get -w: {err}"),
    };
    let Some(out) = child.stdout.take() else {
        panic!("no stdout pipe")
    };
    let rx = line_reader(out);
    let mut seen = Vec::new();
    // The list part of the watch prints existing objects; once "ready" is there the watch
    // continues from the list's resourceVersion, so nothing after it can be missed.
    wait_line(&rx, &mut seen, &["EVENT", "NAME", "DATA", "AGE"]);
    wait_line(&rx, &mut seen, &["ADDED", "ready", "1"]);
    server.kubectl(["create", "configmap", "x", "-n", "w", "--from-literal=a=b"]);
    wait_line(&rx, &mut seen, &["ADDED", "x", "1"]);
    server.kubectl([
        "patch",
        "configmap",
        "x",
        "-n",
        "w",
        "-p",
        r#"{"data":{"c":"d"}}"#,
    ]);
    wait_line(&rx, &mut seen, &["MODIFIED", "x", "2"]);
    server.kubectl(["delete", "configmap", "x", "-n", "w"]);
    wait_line(&rx, &mut seen, &["DELETED", "x", "2"]);
    let _ = child.kill();
    let output = child.wait_with_output();
    if let Ok(output) = output {
        assert!(
            output.stderr.is_empty(),
            "get -w stderr: {}",
            stderr(&output)
        );
    }

    // The JSON form of the same watch carries the event type and the full object.
    let mut command = server.kubectl_command(KubectlVersion::V1_32);
    command
        .args([
            "get",
            "configmap",
            "ready",
            "-n",
            "w",
            "-w",
            "-o",
            "json",
            "--output-watch-events",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(err) => panic!("spawning kubectl get -w -o json: {err}"),
    };
    let Some(out) = child.stdout.take() else {
        panic!("no stdout pipe")
    };
    let rx = line_reader(out);
    let first = rx.recv_timeout(Duration::from_secs(20));
    let _ = child.kill();
    let _ = child.wait();
    let first = match first {
        Ok(line) => line,
        Err(err) => panic!("get -w -o json printed nothing: {err}"),
    };
    // kubectl prints each event on one or more lines; the first line opens the object.
    assert!(first.starts_with('{'), "{first}");
}

fn apply_changes_and_server_side_conflicts(backend: Backend) {
    let server = ApiServer::start(backend);
    let file = server.write_file("deploy.yaml", &deployment(2, "nginx:1.27"));
    let file = file.to_string_lossy().into_owned();
    assert_eq!(
        server.kubectl_stdout(["apply", "-f", &file]),
        "deployment.apps/web created\n"
    );
    let rv = resource_version(&server, "default", "deployment/web");

    // A changed manifest is patched in.
    server.write_file("deploy.yaml", &deployment(3, "nginx:1.28"));
    assert_eq!(
        server.kubectl_stdout(["apply", "-f", &file]),
        "deployment.apps/web configured\n"
    );
    let got = server.get_json(Some("default"), "deployment/web");
    assert_eq!(got["spec"]["replicas"], 3);
    assert_eq!(
        got["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    assert_ne!(got["metadata"]["resourceVersion"], rv.as_str());

    // `kubectl scale` takes ownership of spec.replicas through the scale subresource, so a
    // server-side apply that sets it conflicts ...
    assert_eq!(
        server.kubectl_stdout(["scale", "deployment/web", "--replicas=5"]),
        "deployment.apps/web scaled\n"
    );
    let out = server.kubectl_unchecked(["apply", "--server-side", "-f", &file]);
    assert!(
        !out.status.success(),
        "SSA over a scaled replicas succeeded"
    );
    let err = stderr(&out);
    assert!(
        err.contains("Apply failed with 1 conflict")
            && err.contains(r#"conflict with "kubectl" with subresource "scale""#)
            && err.contains(".spec.replicas"),
        "{err}"
    );
    assert_eq!(
        server.get_json(Some("default"), "deployment/web")["spec"]["replicas"],
        5
    );

    // ... until forced, which hands the field to the applier.
    assert_eq!(
        server.kubectl_stdout(["apply", "--server-side", "--force-conflicts", "-f", &file]),
        "deployment.apps/web serverside-applied\n"
    );
    let got = server.get_json(Some("default"), "deployment/web");
    assert_eq!(got["spec"]["replicas"], 3);
}

fn server_side_apply_conflicts_with_a_client_side_applier(backend: Backend) {
    let server = ApiServer::start(backend);
    // A second applier conflicts with the client-side applier's fields; forcing it makes
    // kubectl migrate the old manager's fields and re-apply, which must succeed quietly.
    let cm = server.write_file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: default\ndata:\n  key: mine\n",
    );
    let cm = cm.to_string_lossy().into_owned();
    server.kubectl(["apply", "-f", &cm]);
    server.write_file(
        "cm2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\n  namespace: default\ndata:\n  key: theirs\n",
    );
    let out = server.kubectl_unchecked([
        "apply",
        "--server-side",
        "--field-manager=other",
        "-f",
        "cm2.yaml",
    ]);
    assert!(!out.status.success(), "conflicting SSA succeeded");
    let err = stderr(&out);
    assert!(
        err.contains(r#"conflict with "kubectl-client-side-apply" using v1: .data.key"#),
        "{err}"
    );
    server.kubectl([
        "apply",
        "--server-side",
        "--field-manager=other",
        "--force-conflicts",
        "-f",
        "cm2.yaml",
    ]);
    let got = server.get_json(Some("default"), "configmap/owned");
    assert_eq!(got["data"]["key"], "theirs");
}

fn server_side_apply_of_every_kind(backend: Backend) {
    let server = ApiServer::start(backend);
    let file = server.write_file("all.yaml", ALL_KINDS);
    let file = file.to_string_lossy().into_owned();
    let out = server.kubectl_stdout(["apply", "--server-side", "-f", &file]);
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.lines().all(|l| l.ends_with(" serverside-applied")),
        "{out}"
    );
    // Re-applying (the Job included: its generated selector is not the applier's) succeeds.
    let out = server.kubectl_stdout(["apply", "--server-side", "-f", &file]);
    assert!(
        out.lines().all(|l| l.ends_with(" serverside-applied")),
        "{out}"
    );

    // A client-side apply followed by a server-side one migrates ownership and re-applies,
    // with no warning.
    server.kubectl(["delete", "namespace", "e2e", "--wait=false"]);
    let file2 = server.write_file("all2.yaml", &ALL_KINDS.replace("e2e", "e2e2"));
    let file2 = file2.to_string_lossy().into_owned();
    server.kubectl(["apply", "-f", &file2]);
    server.kubectl(["apply", "--server-side", "-f", &file2]);
}

fn server_side_apply_removes_fields_it_no_longer_applies(backend: Backend) {
    let server = ApiServer::start(backend);
    let manifest = |metadata_extra: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\n  namespace: default\n{metadata_extra}data:\n  k: v\n"
        )
    };
    let file = server.write_file("ssa.yaml", &manifest("  annotations:\n    a: \"1\"\n"));
    let file = file.to_string_lossy().into_owned();
    server.kubectl(["apply", "--server-side", "--field-manager=m", "-f", &file]);
    let cm = server.get_json(Some("default"), "configmap/ssa");
    assert_eq!(cm["metadata"]["annotations"], serde_json::json!({"a": "1"}));

    // The same manager applies again without the annotation: it is removed, nothing else.
    server.write_file("ssa.yaml", &manifest(""));
    server.kubectl(["apply", "--server-side", "--field-manager=m", "-f", &file]);
    let cm = server.get_json(Some("default"), "configmap/ssa");
    assert_eq!(cm["metadata"]["name"], "ssa");
    assert_eq!(cm["metadata"]["namespace"], "default");
    assert!(cm["metadata"]["annotations"]["a"].is_null(), "{cm}");
    assert_eq!(cm["data"], serde_json::json!({"k": "v"}));

    // A field set by another manager stays when the applier stops mentioning its own.
    server.kubectl(["label", "configmap", "ssa", "by=label"]);
    server.write_file("ssa.yaml", &manifest("  labels:\n    mine: \"yes\"\n"));
    server.kubectl(["apply", "--server-side", "--field-manager=m", "-f", &file]);
    server.write_file("ssa.yaml", &manifest(""));
    server.kubectl(["apply", "--server-side", "--field-manager=m", "-f", &file]);
    let cm = server.get_json(Some("default"), "configmap/ssa");
    assert_eq!(cm["metadata"]["labels"], serde_json::json!({"by": "label"}));
}

fn label_annotate_patch_scale(backend: Backend) {
    let server = ApiServer::start(backend);
    let file = server.write_file("deploy.yaml", &deployment(1, "nginx:1.27"));
    server.kubectl(["apply", "-f", &file.to_string_lossy()]);
    server.kubectl(["create", "configmap", "cfg", "--from-literal=a=1"]);

    assert_eq!(
        server.kubectl_stdout(["label", "configmap", "cfg", "tier=front", "team=x"]),
        "configmap/cfg labeled\n"
    );
    assert_eq!(
        server.kubectl_stdout(["annotate", "configmap", "cfg", "note=hello world"]),
        "configmap/cfg annotated\n"
    );
    server.kubectl(["label", "configmap", "cfg", "team-"]);
    let out = server.kubectl_unchecked(["label", "configmap", "cfg", "tier=back"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("'tier' already has a value (front), and --overwrite is false"),
        "{}",
        stderr(&out)
    );
    server.kubectl(["label", "configmap", "cfg", "tier=back", "--overwrite"]);

    assert_eq!(
        server.kubectl_stdout([
            "patch",
            "configmap",
            "cfg",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"b":"2","a":null}}"#
        ]),
        "configmap/cfg patched\n"
    );
    server.kubectl([
        "patch",
        "configmap",
        "cfg",
        "--type",
        "json",
        "-p",
        r#"[{"op":"add","path":"/data/c","value":"3"},{"op":"test","path":"/data/b","value":"2"}]"#,
    ]);
    let out = server.kubectl_unchecked([
        "patch",
        "configmap",
        "cfg",
        "--type",
        "json",
        "-p",
        r#"[{"op":"test","path":"/data/b","value":"nope"}]"#,
    ]);
    assert!(!out.status.success(), "a failing JSON patch test succeeded");
    let cm = server.get_json(Some("default"), "configmap/cfg");
    assert_eq!(cm["data"], serde_json::json!({"b": "2", "c": "3"}));
    assert_eq!(
        cm["metadata"]["labels"],
        serde_json::json!({"tier": "back"})
    );
    assert_eq!(cm["metadata"]["annotations"]["note"], "hello world");

    // A strategic merge patch merges containers by name instead of replacing the list.
    server.kubectl([
        "patch",
        "deployment",
        "web",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}"#,
    ]);
    server.kubectl([
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}"#,
    ]);
    let d = server.get_json(Some("default"), "deployment/web");
    let containers: Vec<(String, String)> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap_or_default().to_string(),
                        c["image"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut containers = containers;
    containers.sort();
    assert_eq!(
        containers,
        [
            ("nginx".to_string(), "nginx:1.28".to_string()),
            ("sidecar".to_string(), "busybox:1.36".to_string())
        ]
    );

    server.kubectl(["scale", "deployment", "web", "--replicas=4"]);
    let scale = server.kubectl_stdout([
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]);
    let scale = json(&scale);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["selector"], "app=web");
    // --current-replicas guards the change.
    let out = server.kubectl_unchecked([
        "scale",
        "deployment",
        "web",
        "--current-replicas=2",
        "--replicas=6",
    ]);
    assert!(
        !out.status.success(),
        "scale with a wrong --current-replicas succeeded"
    );
    assert_eq!(
        server.get_json(Some("default"), "deployment/web")["spec"]["replicas"],
        4
    );
}

fn edit_with_an_editor_script(backend: Backend) {
    let server = ApiServer::start(backend);
    server.kubectl(["create", "configmap", "cfg", "--from-literal=key=value"]);
    let editor = server.write_file(
        "editor.sh",
        "#!/bin/sh\nsed -i 's/key: value/key: edited/' \"$1\"\n",
    );
    let status = std::process::Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status();
    assert!(matches!(status, Ok(s) if s.success()), "chmod {status:?}");
    let mut command = server.kubectl_command(KubectlVersion::V1_32);
    command
        .env("KUBE_EDITOR", &editor)
        .args(["edit", "configmap", "cfg"]);
    let out = e2e::run_ok(command);
    assert_eq!(e2e::stdout(&out), "configmap/cfg edited\n");
    let cm = server.get_json(Some("default"), "configmap/cfg");
    assert_eq!(cm["data"]["key"], "edited");
}

fn delete_with_each_cascade(backend: Backend) {
    let server = ApiServer::start(backend);
    for name in ["orphan", "background", "foreground"] {
        let file = server.write_file(
            "d.yaml",
            &deployment(1, "nginx:1.27").replace(
                "name: web\n  namespace",
                &format!("name: {name}\n  namespace"),
            ),
        );
        server.kubectl(["apply", "-f", &file.to_string_lossy()]);
    }
    let deleted = |name: &str, cascade: &str| {
        let out = server.kubectl_stdout([
            "delete",
            "deployment",
            name,
            &format!("--cascade={cascade}"),
            "--wait=false",
        ]);
        assert_eq!(out, format!("deployment.apps \"{name}\" deleted\n"));
    };
    // Without a garbage collector the orphan and foreground finalizers are never removed: the
    // objects stay, marked for deletion, with exactly that finalizer.
    deleted("orphan", "orphan");
    let d = server.get_json(Some("default"), "deployment/orphan");
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(d["metadata"]["finalizers"], serde_json::json!(["orphan"]));

    deleted("foreground", "foreground");
    let d = server.get_json(Some("default"), "deployment/foreground");
    assert!(d["metadata"]["deletionTimestamp"].is_string(), "{d}");
    assert_eq!(
        d["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );

    deleted("background", "background");
    let out = server.kubectl_unchecked(["get", "deployment", "background"]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): deployments.apps \"background\" not found\n"
    );
}

fn finalizers_keep_objects(backend: Backend) {
    let server = ApiServer::start(backend);
    let file = server.write_file(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: default\n  finalizers:\n  - example.com/x\ndata:\n  a: b\n",
    );
    server.kubectl(["create", "-f", &file.to_string_lossy()]);
    assert_eq!(
        server.kubectl_stdout(["delete", "configmap", "kept", "--wait=false"]),
        "configmap \"kept\" deleted\n"
    );
    let cm = server.get_json(Some("default"), "configmap/kept");
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    assert_eq!(
        cm["metadata"]["finalizers"],
        serde_json::json!(["example.com/x"])
    );
    // Once marked, only finalizer removal (and metadata) may change; a second delete is a no-op.
    server.kubectl(["delete", "configmap", "kept", "--wait=false"]);
    server.kubectl([
        "patch",
        "configmap",
        "kept",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let out = server.kubectl_unchecked(["get", "configmap", "kept"]);
    assert!(
        !out.status.success(),
        "the object outlived its last finalizer"
    );
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
}

fn dry_run_and_create_from_literal(backend: Backend) {
    let server = ApiServer::start(backend);
    assert_eq!(
        server.kubectl_stdout([
            "create",
            "configmap",
            "dry",
            "--from-literal=a=b",
            "--dry-run=server"
        ]),
        "configmap/dry created (server dry run)\n"
    );
    let out = server.kubectl_unchecked(["get", "configmap", "dry"]);
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): configmaps \"dry\" not found\n"
    );
    // The server's dry run still validates and defaults.
    let dry = json(&server.kubectl_stdout([
        "create",
        "deployment",
        "d",
        "--image=nginx",
        "--dry-run=server",
        "-o",
        "json",
    ]));
    assert_eq!(dry["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(
        dry["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    let out = server.kubectl_unchecked(["get", "deployment", "d"]);
    assert!(!out.status.success(), "a dry-run create was stored");

    // kubectl sends typed creates as protobuf.
    assert_eq!(
        server.kubectl_stdout([
            "create",
            "configmap",
            "lit",
            "--from-literal=a=b",
            "--from-literal=c=d"
        ]),
        "configmap/lit created\n"
    );
    let cm = server.get_json(Some("default"), "configmap/lit");
    assert_eq!(cm["data"], serde_json::json!({"a": "b", "c": "d"}));
    let out = server.kubectl_unchecked(["create", "configmap", "lit", "--from-literal=a=b"]);
    assert_eq!(
        stderr(&out),
        "error: failed to create configmap: configmaps \"lit\" already exists\n"
    );
}

fn discovery_and_explain(backend: Backend) {
    let server = ApiServer::start(backend);
    let resources = server.kubectl_stdout(["api-resources"]);
    assert_table(
        &resources,
        &["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        &["deployments", "deploy", "apps/v1", "true", "Deployment"],
    );
    assert_table(
        &resources,
        &["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"],
        &["configmaps", "cm", "v1", "true", "ConfigMap"],
    );
    let namespaced = server.kubectl_stdout(["api-resources", "--namespaced=false", "-o", "name"]);
    assert!(
        namespaced.lines().any(|l| l == "namespaces"),
        "{namespaced}"
    );
    assert!(
        !namespaced.lines().any(|l| l == "configmaps"),
        "{namespaced}"
    );

    let versions = server.kubectl_stdout(["api-versions"]);
    for v in ["v1", "apps/v1", "batch/v1", "networking.k8s.io/v1"] {
        assert!(versions.lines().any(|l| l == v), "no {v} in:\n{versions}");
    }

    let explain = server.kubectl_stdout(["explain", "deployment.spec.strategy"]);
    for want in [
        "GROUP:      apps",
        "KIND:       Deployment",
        "VERSION:    v1",
        "FIELD: strategy <DeploymentStrategy>",
        "  rollingUpdate\t<RollingUpdateDeployment>",
        "  type\t<string>",
    ] {
        assert!(
            explain.lines().any(|l| l == want),
            "no {want:?} in:\n{explain}"
        );
    }
}

fn wait_for_jsonpath(backend: Backend) {
    let server = ApiServer::start(backend);
    server.kubectl(["create", "configmap", "flag", "--from-literal=state=off"]);
    let mut command = server.kubectl_command(KubectlVersion::V1_32);
    command.args([
        "wait",
        "configmap/flag",
        "--for=jsonpath={.data.state}=on",
        "--timeout=30s",
    ]);
    let waiter = std::thread::spawn(move || e2e::run(command));
    std::thread::sleep(Duration::from_millis(700));
    server.kubectl([
        "patch",
        "configmap",
        "flag",
        "-p",
        r#"{"data":{"state":"on"}}"#,
    ]);
    let out = match waiter.join() {
        Ok(out) => out,
        Err(_) => panic!("the kubectl wait thread panicked"),
    };
    assert!(out.status.success(), "wait failed: {}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(e2e::stdout(&out), "configmap/flag condition met\n");

    let out = server.kubectl_unchecked([
        "wait",
        "configmap/flag",
        "--for=jsonpath={.data.state}=never",
        "--timeout=1s",
    ]);
    assert!(
        !out.status.success(),
        "wait for an impossible value succeeded"
    );
}

/// A short tour for other kubectl versions: what they send differs (discovery, patch types).
fn smoke(backend: Backend, version: KubectlVersion) {
    let server = ApiServer::start(backend);
    let file = server.write_file("all.yaml", ALL_KINDS);
    let file = file.to_string_lossy().into_owned();
    let k = |args: &[&str]| e2e::stdout(&server.kubectl_version(version, args));
    assert_eq!(k(&["apply", "-f", &file]).lines().count(), 6);
    assert_eq!(
        k(&["apply", "-f", &file])
            .lines()
            .filter(|l| l.ends_with(" unchanged"))
            .count(),
        6
    );
    assert_table(
        &k(&["get", "deployments", "-n", "e2e"]),
        &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        &["web", "0/2", "0", "0"],
    );
    let cm = json(&k(&["get", "configmap", "cfg", "-n", "e2e", "-o", "json"]));
    assert_eq!(cm["data"]["key"], "value");
    k(&["label", "configmap", "cfg", "-n", "e2e", "x=y"]);
    k(&["scale", "deployment", "web", "-n", "e2e", "--replicas=3"]);
    k(&[
        "patch",
        "deployment",
        "web",
        "-n",
        "e2e",
        "-p",
        r#"{"spec":{"paused":true}}"#,
    ]);
    // Server-side apply over the client-side applied Deployment (scaled above, so forced).
    let deploy = server.write_file(
        "deploy.yaml",
        &deployment(2, "nginx:1.27").replace("default", "e2e"),
    );
    let deploy = deploy.to_string_lossy().into_owned();
    assert_eq!(
        k(&["apply", "--server-side", "--force-conflicts", "-f", &deploy]),
        "deployment.apps/web serverside-applied\n"
    );
    k(&["api-resources"]);
    k(&["explain", "service.spec.ports"]);
    assert_eq!(
        k(&["delete", "-f", &file, "--wait=false"]).lines().count(),
        6
    );
}

fn smoke_1_27(backend: Backend) {
    smoke(backend, KubectlVersion::V1_27)
}

fn smoke_1_33(backend: Backend) {
    smoke(backend, KubectlVersion::V1_33)
}

backend_tests!(
    apply_get_and_output_formats,
    watch_sees_added_modified_deleted,
    apply_changes_and_server_side_conflicts,
    server_side_apply_conflicts_with_a_client_side_applier,
    server_side_apply_removes_fields_it_no_longer_applies,
    server_side_apply_of_every_kind,
    label_annotate_patch_scale,
    edit_with_an_editor_script,
    delete_with_each_cascade,
    finalizers_keep_objects,
    dry_run_and_create_from_literal,
    discovery_and_explain,
    wait_for_jsonpath,
    smoke_1_27,
    smoke_1_33,
);
