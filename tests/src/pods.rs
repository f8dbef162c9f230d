//! Helpers the pod-level end-to-end tests share: apply a manifest with the real kubectl, read a
//! pod, wait for a phase or a Ready node, find a condition or the events about an object; and
//! [`RealNode`], a kubelet on a real containerd.

use std::time::Duration;

use serde_json::Value;

use crate::containerd::Containerd;
use crate::{free_port, wait_for, ApiServer, Backend, Daemon};

/// `kubectl apply -f` of `manifest`, written to the server's work directory as `name`.
pub fn apply(server: &ApiServer, name: &str, manifest: &str) {
    let path = server.write_file(name, manifest);
    let path = path.display().to_string();
    server.kubectl(["apply", "-f", path.as_str()]);
}

/// The pod in namespace default as kubectl prints it (Null when it does not exist).
pub fn get_pod(server: &ApiServer, name: &str) -> Value {
    let out = server.kubectl_unchecked(["get", "pod", name, "-o", "json"]);
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Waits until the pod is in phase `want`; returns it then.
pub fn wait_phase(server: &ApiServer, name: &str, want: &str, timeout: Duration) -> Value {
    wait_for(&format!("pod {name} {want}"), timeout, || {
        let p = get_pod(server, name);
        (p["status"]["phase"] == want).then_some(p)
    })
}

/// The pod's condition of `type_` (Null when absent).
pub fn condition<'a>(pod: &'a Value, type_: &str) -> &'a Value {
    pod["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or(&Value::Null)
}

/// The core/v1 events in namespace default about object `name` with `reason`.
pub fn events_for(server: &ApiServer, name: &str, reason: &str) -> Vec<Value> {
    server.get_json(Some("default"), "events")["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["involvedObject"]["name"] == name && e["reason"] == reason)
        .collect()
}

/// Waits until the node reports Ready=True.
pub fn node_ready(server: &ApiServer, name: &str, timeout: Duration) {
    wait_for(&format!("node {name} Ready"), timeout, || {
        let out = server.kubectl_unchecked(["get", "node", name, "-o", "json"]);
        let node: Value = serde_json::from_slice(&out.stdout).ok()?;
        node["status"]["conditions"]
            .as_array()?
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
            .then_some(())
    });
}

/// One real node for an end-to-end test: a containerd of its own (with the CNI bridge on
/// 10.88.0.0/24), an apiserver on the embedded store, and a kubelet `node1` on that
/// containerd serving its API on a free port, with anonymous requests allowed to reach the
/// SubjectAccessReview (the apiserver has no kubelet client certificate yet). Dropped in
/// order: kubelet, apiserver, containerd.
pub struct RealNode {
    pub kubelet: Daemon,
    pub server: ApiServer,
    pub containerd: Containerd,
    /// The kubelet's `--port`.
    pub port: u16,
}

impl RealNode {
    pub fn start() -> RealNode {
        let containerd = Containerd::start();
        if let Err(err) = containerd.write_bridge_conflist("10.88.0.0/24") {
            panic!("{err:#}");
        }
        let server = ApiServer::start(Backend::Embedded);
        let port = match free_port() {
            Ok(port) => port,
            Err(err) => panic!("{err:#}"),
        };
        let endpoint = format!("--container-runtime-endpoint={}", containerd.endpoint());
        let root = server.work_dir().join("kubelet-root");
        let root_flag = format!("--root-dir={}", root.display());
        let port_flag = format!("--port={port}");
        let kubelet = Daemon::kubelet(
            &server,
            &[
                endpoint.as_str(),
                root_flag.as_str(),
                port_flag.as_str(),
                "--hostname-override=node1",
                "--fail-swap-on=false",
                "--anonymous-auth=true",
                // The shared disk may be nearly full: no DiskPressure from it.
                "--eviction-hard=memory.available<100Mi,nodefs.available<1%",
            ],
        );
        RealNode {
            kubelet,
            server,
            containerd,
            port,
        }
    }

    /// Lets the apiserver (system:anonymous to the kubelet) use the kubelet's API:
    /// `nodes/proxy` with get (logs, WebSocket upgrades) and create (POST exec, port-forward).
    pub fn allow_kubelet_api(&self) {
        self.server.kubectl([
            "create",
            "clusterrole",
            "kubelet-api",
            "--verb=get,create",
            "--resource=nodes/proxy",
        ]);
        self.server.kubectl([
            "create",
            "clusterrolebinding",
            "kubelet-api",
            "--clusterrole=kubelet-api",
            "--user=system:anonymous",
        ]);
    }
}
