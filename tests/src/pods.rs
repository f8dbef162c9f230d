//! Helpers the pod-level end-to-end tests share: apply a manifest with the real kubectl, read a
//! pod, wait for a phase or a Ready node, find a condition or the events about an object.

use std::time::Duration;

use serde_json::Value;

use crate::{wait_for, ApiServer};

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
