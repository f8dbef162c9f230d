//! The node's pod network configuration: once the node has a podCIDR (`spec.podCIDR`, set by
//! the controller manager's node IPAM, or `podCIDR` in the kubelet's configuration), the
//! kubelet writes a CNI conflist for it into the runtime's CNI config directory — bridge `cni0`
//! with host-local IPAM over the podCIDR, portmap and loopback, Debian's plugins — unless an
//! operator-provided configuration is already there. The runtime then reports NetworkReady.
//!
//! containerd 1.6 reloads its CNI configuration on write, rename and remove events in the
//! directory but ignores creates, so the file is written under a name libcni ignores in the
//! same directory and renamed over the target.

use std::path::{Path, PathBuf};
use std::time::Duration;

use client::{Api, Client};
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};
use tokio::sync::watch;

/// The file the kubelet owns in the CNI config directory.
pub const CONFLIST_NAME: &str = "10-kubelet-bridge.conflist";

/// The conflist for `pod_cidr`, with host-local's leases under `ipam_dir`.
pub fn conflist(pod_cidr: &str, ipam_dir: &Path) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": "kubelet-bridge",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": ipam_dir,
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"}
        ]
    })
}

/// Whether the directory holds a configuration the kubelet did not write.
fn operator_config_present(conf_dir: &Path) -> bool {
    std::fs::read_dir(conf_dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name != CONFLIST_NAME
                && !name.starts_with('.')
                && (name.ends_with(".conflist")
                    || name.ends_with(".conf")
                    || name.ends_with(".json"))
        })
    })
}

/// Writes the conflist for `pod_cidr` unless an operator's configuration exists or ours is
/// already up to date; Ok(true) when it wrote.
pub fn ensure_conflist(conf_dir: &Path, pod_cidr: &str, ipam_dir: &Path) -> std::io::Result<bool> {
    if operator_config_present(conf_dir) {
        return Ok(false);
    }
    std::fs::create_dir_all(conf_dir)?;
    std::fs::create_dir_all(ipam_dir)?;
    let text = serde_json::to_string_pretty(&conflist(pod_cidr, ipam_dir))
        .map_err(std::io::Error::other)?;
    let target = conf_dir.join(CONFLIST_NAME);
    if std::fs::read_to_string(&target).is_ok_and(|t| t == text) {
        return Ok(false);
    }
    let tmp = conf_dir.join(format!(".{CONFLIST_NAME}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &target)?;
    Ok(true)
}

/// Waits for the node's podCIDR (the configured one first) and keeps the conflist written,
/// until `stop` turns true.
pub async fn run(
    client: Client,
    node: String,
    conf_dir: PathBuf,
    ipam_dir: PathBuf,
    configured_cidr: String,
    mut stop: watch::Receiver<bool>,
) {
    let nodes: Api<Node> = client.api(None);
    loop {
        let cidr = if !configured_cidr.is_empty() {
            Some(configured_cidr.clone())
        } else {
            match nodes.get_opt(&node).await {
                Ok(n) => n
                    .and_then(|n| n.spec)
                    .and_then(|s| s.pod_cidr)
                    .filter(|c| !c.is_empty()),
                Err(err) => {
                    tracing::debug!(error = %err, "reading the node's podCIDR");
                    None
                }
            }
        };
        if let Some(cidr) = cidr {
            match ensure_conflist(&conf_dir, &cidr, &ipam_dir) {
                Ok(true) => {
                    tracing::info!(pod_cidr = %cidr, dir = %conf_dir.display(), "wrote the CNI configuration")
                }
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, dir = %conf_dir.display(), "writing the CNI configuration")
                }
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_once_and_leaves_an_operators_configuration_alone() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let conf = tmp.path().join("net.d");
        let ipam = tmp.path().join("ipam");
        assert!(ensure_conflist(&conf, "10.244.1.0/24", &ipam).unwrap_or(false));
        let text = std::fs::read_to_string(conf.join(CONFLIST_NAME)).unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(
            v["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.1.0/24"
        );
        assert_eq!(v["plugins"][2]["type"], "loopback");
        assert!(!conf.join(format!(".{CONFLIST_NAME}.tmp")).exists());
        // Unchanged: not rewritten.
        assert!(!ensure_conflist(&conf, "10.244.1.0/24", &ipam).unwrap_or(true));
        // A new podCIDR rewrites it.
        assert!(ensure_conflist(&conf, "10.244.2.0/24", &ipam).unwrap_or(false));
        // An operator's file wins.
        let other = tmp.path().join("other");
        std::fs::create_dir_all(&other).unwrap_or_default();
        std::fs::write(other.join("05-calico.conflist"), "{}").unwrap_or_default();
        assert!(!ensure_conflist(&other, "10.244.1.0/24", &ipam).unwrap_or(true));
        assert!(!other.join(CONFLIST_NAME).exists());
    }
}
