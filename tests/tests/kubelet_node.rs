//! The kubelet's node side against the real kube-apiserver, on the simulated runtime: a node
//! registers Ready with its labels, capacity, allocatable and nodeInfo as the real kubectl and
//! the Python client show them; its Lease is renewed and owned by the Node; status is posted
//! only when it changes; a deleted Node comes back; 100 hollow nodes run in one process (its
//! memory is printed); a malformed configuration file stops the kubelet at start with one line.

use std::time::Duration;

use e2e::{backend_tests, wait_for, ApiServer, Backend, Daemon, Method};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// The object at `path`, or `None` when the server answers anything but 200.
fn get(server: &ApiServer, path: &str) -> Option<Value> {
    let response = server.http(Method::Get, path, None, b"");
    (response.status == 200).then(|| response.json())
}

fn node(server: &ApiServer, name: &str) -> Option<Value> {
    get(server, &format!("/api/v1/nodes/{name}"))
}

fn lease(server: &ApiServer, name: &str) -> Option<Value> {
    get(
        server,
        &format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"),
    )
}

fn condition<'a>(node: &'a Value, type_: &str) -> &'a Value {
    node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

fn is_ready(node: &Value) -> bool {
    condition(node, "Ready")["status"] == "True"
}

/// Waits until `name` exists and is Ready; returns it.
fn wait_ready(server: &ApiServer, name: &str) -> Value {
    wait_for(&format!("node {name} to be Ready"), TIMEOUT, || {
        node(server, name).filter(is_ready)
    })
}

/// Bytes from a quantity with a binary suffix or none (what the kubelet writes for memory).
fn bytes(quantity: &Value) -> u64 {
    let text = quantity.as_str().unwrap_or_default();
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .unwrap_or_else(|_| panic!("quantity {text:?}"));
    let scale = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        other => panic!("unexpected unit {other:?} in {text:?}"),
    };
    n * scale
}

fn registers_a_ready_node_and_renews_its_lease(backend: Backend) {
    let server = ApiServer::start(backend);
    // A short lease (renewed every 2 s) so the renewal is seen quickly; the node status period
    // stays upstream's (10 s) and the report period too (5 m).
    let config = server.write_file(
        "kubelet-config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nnodeLeaseDurationSeconds: 8\nmaxPods: 42\n",
    );
    let config_flag = format!("--config={}", config.display());
    let _kubelet = Daemon::kubelet(
        &server,
        &[
            "--container-runtime-endpoint=sim://",
            "--hostname-override=n1",
            "--node-labels=node.kubernetes.io/pool=e2e,example.com/team=nodes",
            "--register-with-taints=dedicated=e2e:NoSchedule",
            "--node-ip=10.1.2.3",
            // The host's own disk decides DiskPressure: a shared test machine can be fuller than
            // the default 10% threshold allows, so this node only reports pressure below 1%.
            "--eviction-hard=memory.available<100Mi,nodefs.available<1%",
            // The flag wins over the file's 42.
            "--max-pods=30",
            config_flag.as_str(),
        ],
    );
    let registered = wait_ready(&server, "n1");

    // What the real kubectl shows.
    let table = server.kubectl_stdout(["get", "nodes"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("n1 "))
        .unwrap_or_else(|| panic!("no n1 row in:\n{table}"));
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(columns[1], "Ready", "{table}");
    assert_eq!(columns.last().copied(), Some("v1.33.0"), "{table}");
    let wide = server.kubectl_stdout(["get", "node", "n1", "-o", "wide"]);
    assert!(wide.contains("10.1.2.3"), "{wide}");
    assert!(wide.contains("sim://"), "{wide}");

    let n1 = server.get_json(None, "node/n1");
    let labels = &n1["metadata"]["labels"];
    assert_eq!(labels["kubernetes.io/hostname"], "n1", "{labels}");
    assert_eq!(labels["kubernetes.io/os"], "linux", "{labels}");
    assert_eq!(labels["kubernetes.io/arch"], "amd64", "{labels}");
    assert_eq!(labels["node.kubernetes.io/pool"], "e2e", "{labels}");
    assert_eq!(labels["example.com/team"], "nodes", "{labels}");
    assert_eq!(
        n1["metadata"]["annotations"]["volumes.kubernetes.io/controller-managed-attach-detach"],
        "true"
    );
    let taints = n1["spec"]["taints"].as_array().cloned().unwrap_or_default();
    assert!(
        taints
            .iter()
            .any(|t| t["key"] == "dedicated" && t["value"] == "e2e" && t["effect"] == "NoSchedule"),
        "{taints:?}"
    );

    let status = &n1["status"];
    let capacity = &status["capacity"];
    let allocatable = &status["allocatable"];
    for resource in [
        "cpu",
        "memory",
        "pods",
        "ephemeral-storage",
        "hugepages-2Mi",
    ] {
        assert!(
            capacity[resource].is_string(),
            "capacity {resource}: {capacity}"
        );
        assert!(
            allocatable[resource].is_string(),
            "allocatable {resource}: {allocatable}"
        );
    }
    assert_eq!(capacity["pods"], "30");
    assert_eq!(allocatable["pods"], "30");
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        capacity["cpu"]
            .as_str()
            .and_then(|c| c.parse::<usize>().ok())
            >= Some(cpus),
        "{capacity}"
    );
    // The default hard eviction threshold (memory.available<100Mi) comes out of allocatable.
    assert_eq!(
        bytes(&capacity["memory"]) - bytes(&allocatable["memory"]),
        100 << 20,
        "{capacity} {allocatable}"
    );
    let info = &status["nodeInfo"];
    assert_eq!(info["kubeletVersion"], "v1.33.0");
    assert_eq!(info["operatingSystem"], "linux");
    assert_eq!(info["architecture"], "amd64");
    assert!(
        info["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("sim://")),
        "{info}"
    );
    for field in ["kernelVersion", "osImage", "bootID", "machineID"] {
        assert!(
            info[field].as_str().is_some_and(|v| !v.is_empty()),
            "{field}: {info}"
        );
    }
    assert_eq!(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
    assert_eq!(
        status["addresses"],
        serde_json::json!([
            {"type": "InternalIP", "address": "10.1.2.3"},
            {"type": "Hostname", "address": "n1"},
        ])
    );
    for (type_, reason) in [
        ("MemoryPressure", "KubeletHasSufficientMemory"),
        ("DiskPressure", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "KubeletHasSufficientPID"),
    ] {
        let c = condition(&n1, type_);
        assert_eq!(c["status"], "False", "{type_}: {c}");
        assert_eq!(c["reason"], reason, "{type_}: {c}");
    }
    let ready = condition(&n1, "Ready");
    assert_eq!(ready["reason"], "KubeletReady");
    assert_eq!(ready["message"], "kubelet is posting ready status");

    let describe = server.kubectl_stdout(["describe", "node", "n1"]);
    assert!(describe.contains("KubeletReady"), "{describe}");
    assert!(describe.contains("NodeHasSufficientMemory"), "{describe}");

    // The Lease: held by the node, renewed, owned by the Node.
    let first = wait_for("n1's Lease", TIMEOUT, || lease(&server, "n1"));
    assert_eq!(first["spec"]["holderIdentity"], "n1");
    assert_eq!(first["spec"]["leaseDurationSeconds"], 8);
    let first_renew = first["spec"]["renewTime"].clone();
    let uid = registered["metadata"]["uid"].clone();
    let renewed = wait_for("n1's Lease to be renewed and owned", TIMEOUT, || {
        lease(&server, "n1").filter(|l| {
            l["spec"]["renewTime"] != first_renew
                && l["metadata"]["ownerReferences"][0]["uid"] == uid
        })
    });
    let owner = &renewed["metadata"]["ownerReferences"][0];
    assert_eq!(owner["kind"], "Node");
    assert_eq!(owner["apiVersion"], "v1");
    assert_eq!(owner["name"], "n1");
}

fn status_is_posted_only_when_it_changes(backend: Backend) {
    let server = ApiServer::start(backend);
    // The status is computed every second; with nothing changing, nothing is written until the
    // report period (upstream's 5 minutes) has passed.
    let _kubelet = Daemon::kubelet(
        &server,
        &[
            "--hostname-override=quiet",
            "--node-status-update-frequency=1s",
        ],
    );
    wait_ready(&server, "quiet");
    // Let the first rounds settle (the first one always reports), then watch a few more.
    std::thread::sleep(Duration::from_secs(2));
    let before = node(&server, "quiet").unwrap_or_default();
    let heartbeat = condition(&before, "Ready")["lastHeartbeatTime"].clone();
    std::thread::sleep(Duration::from_secs(4));
    let after = node(&server, "quiet").unwrap_or_default();
    assert_eq!(
        before["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"],
        "no write while nothing changes"
    );
    assert_eq!(condition(&after, "Ready")["lastHeartbeatTime"], heartbeat);

    // Someone changes what the kubelet owns: the next round puts it back.
    server.kubectl([
        "patch",
        "node",
        "quiet",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"capacity":{"pods":"7"}}}"#,
    ]);
    let fixed = wait_for("the kubelet to restore its capacity", TIMEOUT, || {
        node(&server, "quiet").filter(|n| n["status"]["capacity"]["pods"] == "110")
    });
    assert_eq!(condition(&fixed, "Ready")["status"], "True");
}

#[test]
fn a_deleted_node_registers_again() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(
        &server,
        &[
            "--hostname-override=phoenix",
            "--node-status-update-frequency=1s",
        ],
    );
    let first = wait_ready(&server, "phoenix");
    let old_uid = first["metadata"]["uid"].clone();
    server.kubectl(["delete", "node", "phoenix"]);
    let again = wait_for("phoenix to come back", TIMEOUT, || {
        node(&server, "phoenix").filter(|n| n["metadata"]["uid"] != old_uid && is_ready(n))
    });
    assert_eq!(
        again["metadata"]["labels"]["kubernetes.io/hostname"],
        "phoenix"
    );
    let out = server.kubectl_stdout(["get", "node", "phoenix", "--no-headers"]);
    assert!(out.contains(" Ready "), "{out}");
}

#[test]
fn hundred_hollow_nodes_run_in_one_process() {
    let server = ApiServer::start(Backend::Embedded);
    let kubelet = Daemon::kubelet(
        &server,
        &["--hollow-nodes=100", "--hostname-override=hollow"],
    );
    let ready = wait_for("100 Ready hollow nodes", Duration::from_secs(120), || {
        // Before the first node registers kubectl says "No resources found" on stderr.
        let out = server.kubectl_unchecked(["get", "nodes", "--no-headers"]);
        let out = String::from_utf8_lossy(&out.stdout);
        let ready: Vec<String> = out
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some("Ready"))
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect();
        (ready.len() == 100).then_some(ready)
    });
    for i in 0..100 {
        assert!(
            ready.contains(&format!("hollow-{i}")),
            "hollow-{i} in {ready:?}"
        );
    }
    let h = node(&server, "hollow-42").unwrap_or_default();
    assert_eq!(h["status"]["capacity"]["cpu"], "4");
    assert_eq!(h["status"]["capacity"]["memory"], "16Gi");
    assert_eq!(h["status"]["capacity"]["pods"], "110");
    assert_eq!(h["status"]["allocatable"]["memory"], "16284Mi");
    let other = node(&server, "hollow-7").unwrap_or_default();
    assert_ne!(
        h["status"]["nodeInfo"]["machineID"], other["status"]["nodeInfo"]["machineID"],
        "each hollow node is its own machine"
    );
    let leases = server.get_json(Some("kube-node-lease"), "leases");
    let held = leases["items"].as_array().map_or(0, |l| {
        l.iter()
            .filter(|l| {
                l["spec"]["holderIdentity"]
                    .as_str()
                    .is_some_and(|h| h.starts_with("hollow-"))
            })
            .count()
    });
    assert_eq!(held, 100);

    // The process's memory with 100 hollow nodes, for the record.
    let pid = kubelet.pid().unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .unwrap_or("VmRSS: unknown");
    eprintln!(
        "kubelet with 100 hollow nodes: {}",
        rss.split_whitespace().skip(1).collect::<Vec<_>>().join(" ")
    );
}

#[test]
fn a_malformed_config_fails_at_start_naming_file_and_field() {
    let server = ApiServer::start(Backend::Embedded);
    let path = server.write_file(
        "bad-kubelet-config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nmaxPods: plenty\n",
    );
    let flag = format!("--config={}", path.display());
    let mut kubelet = Daemon::kubelet(&server, &["--hostname-override=never", flag.as_str()]);
    let status = wait_for("the kubelet to exit", TIMEOUT, || kubelet.try_wait());
    assert!(!status.success(), "{status}");
    let log = std::fs::read_to_string(kubelet.log_path()).unwrap_or_default();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line:\n{log}");
    let line = lines[0];
    assert!(line.contains(&path.display().to_string()), "{line}");
    assert!(line.contains("maxPods"), "{line}");
    assert!(line.contains("line 3"), "{line}");
    assert!(node(&server, "never").is_none());
}

#[test]
fn the_python_client_reads_the_node_status() {
    let server = ApiServer::start(Backend::Embedded);
    let _kubelet = Daemon::kubelet(&server, &["--hostname-override=py1", "--node-ip=10.9.8.7"]);
    wait_ready(&server, "py1");
    wait_for("py1's Lease", TIMEOUT, || lease(&server, "py1"));
    let seen = server.python("kubelet_node.py", &["py1"]);
    assert_eq!(seen["conditions"]["Ready"]["status"], "True", "{seen}");
    assert_eq!(
        seen["conditions"]["Ready"]["reason"], "KubeletReady",
        "{seen}"
    );
    assert_eq!(
        seen["conditions"]["MemoryPressure"]["status"], "False",
        "{seen}"
    );
    assert_eq!(seen["capacity"]["pods"], "110", "{seen}");
    assert!(seen["allocatable"]["memory"].is_string(), "{seen}");
    assert_eq!(
        seen["addresses"],
        serde_json::json!([["InternalIP", "10.9.8.7"], ["Hostname", "py1"]]),
        "{seen}"
    );
    assert_eq!(seen["kubeletVersion"], "v1.33.0", "{seen}");
    assert!(
        seen["containerRuntimeVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("sim://")),
        "{seen}"
    );
    assert_eq!(seen["operatingSystem"], "linux", "{seen}");
    assert_eq!(seen["kubeletPort"], 10250, "{seen}");
    assert_eq!(seen["leaseHolder"], "py1", "{seen}");
    assert_eq!(seen["leaseDurationSeconds"], 40, "{seen}");
}

backend_tests!(
    registers_a_ready_node_and_renews_its_lease,
    status_is_posted_only_when_it_changes,
);
