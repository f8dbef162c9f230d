//! Static pods (upstream's file pod source and mirror pods): every file in
//! `--pod-manifest-path` (`staticPodPath`) that holds a Pod, in YAML or JSON, runs on this
//! node without the API having asked for it. Like upstream:
//!
//! - the pod is named `<name>-<node>`, in `default` unless the manifest says otherwise, bound
//!   to this node, with a uid that is a hash of the manifest and the node (so an edited
//!   manifest is a new pod) and the `kubernetes.io/config.{hash,source,seen}` annotations;
//! - a mirror pod of the same name is created in the API (annotation
//!   `kubernetes.io/config.mirror`, owned by the Node) so that `kubectl get pods` shows it and
//!   its status: the status manager writes the static pod's status there. A deleted mirror
//!   pod is made again; the static pod keeps running. A mirror pod from an older version of
//!   the manifest is replaced;
//! - a removed manifest stops the pod and deletes its mirror pod;
//! - a manifest that does not parse is skipped (logged, and a Warning event on the Node),
//!   while every other pod keeps running.
//!
//! The directory is read every [`CHECK_PERIOD`] (upstream watches it with inotify and
//! re-reads it every 20 s).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use client::events::CoreEventRecorder;
use client::{Api, Client};
use k8s_openapi::api::core::v1::{Node, Pod, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Preconditions};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::pods::PodAgent;

pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";

/// How often the manifest directory and the mirror pods are looked at.
pub const CHECK_PERIOD: Duration = Duration::from_secs(2);

/// True for a mirror pod (the API's view of a static pod, never run itself).
pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(CONFIG_MIRROR))
}

/// True for a pod from a manifest file.
pub fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(CONFIG_SOURCE))
        .is_some_and(|s| s == "file")
}

/// Reads one manifest into the static pod it describes on `node`.
pub fn parse_manifest(bytes: &[u8], node: &str) -> Result<Pod, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
    let value: serde_json::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    match value.get("kind").and_then(|k| k.as_str()) {
        Some("Pod") => {}
        Some(other) => return Err(format!("kind {other:?} is not a Pod")),
        None => return Err("the manifest has no kind (want \"Pod\")".to_string()),
    }
    let mut pod: Pod = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let name = pod
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or("metadata.name: Required value: name or generateName is required")?;
    let spec = pod
        .spec
        .as_mut()
        .ok_or("spec: Required value: a pod needs a spec")?;
    if spec.containers.is_empty() {
        return Err("spec.containers: Required value".to_string());
    }
    for c in &spec.containers {
        if c.image.as_deref().unwrap_or("").is_empty() {
            return Err(format!("spec.containers[{}].image: Required value", c.name));
        }
    }
    spec.node_name = Some(node.to_string());
    // Static pods tolerate every NoExecute taint (upstream's defaulting for file pods).
    spec.tolerations
        .get_or_insert_with(Vec::new)
        .push(Toleration {
            operator: Some("Exists".into()),
            effect: Some("NoExecute".into()),
            ..Default::default()
        });
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    let mut hasher = Sha256::new();
    hasher.update(bytes);
    hasher.update(b"\0");
    hasher.update(node.as_bytes());
    let digest = hasher.finalize();
    let hash: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    pod.metadata.name = Some(format!("{name}-{node}"));
    pod.metadata
        .namespace
        .get_or_insert_with(|| "default".into());
    pod.metadata.uid = Some(hash.clone());
    pod.metadata.self_link = None;
    pod.metadata.resource_version = None;
    let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
    annotations.insert(CONFIG_HASH.into(), hash);
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    annotations.insert(
        CONFIG_SEEN.into(),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    );
    pod.status = None;
    Ok(pod)
}

/// What one read of the manifest directory found.
#[derive(Debug, Default)]
pub struct Manifests {
    /// Each usable manifest and its pod.
    pub pods: Vec<(PathBuf, Pod)>,
    /// Each file that could not be used, and why.
    pub bad: Vec<(PathBuf, String)>,
}

/// Every manifest in `dir` (dot-files skipped, like upstream).
pub fn read_dir(dir: &Path, node: &str) -> Manifests {
    let mut found = Manifests::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| parse_manifest(&bytes, node))
        {
            Ok(pod) => found.pods.push((path, pod)),
            Err(err) => found.bad.push((path, err)),
        }
    }
    found
}

/// The mirror pod of a static pod, owned by its Node.
pub fn mirror_pod(static_pod: &Pod, node: &Node) -> Pod {
    let mut mirror = static_pod.clone();
    mirror.metadata.uid = None;
    let hash = static_pod.metadata.uid.clone().unwrap_or_default();
    mirror
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(CONFIG_MIRROR.into(), hash);
    mirror.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "v1".into(),
        kind: "Node".into(),
        name: node.metadata.name.clone().unwrap_or_default(),
        uid: node.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: None,
    }]);
    mirror.status = None;
    mirror
}

/// The static pods of one node, kept in step with its manifest directory.
pub struct StaticPods {
    pub dir: PathBuf,
    pub node: String,
    /// None: a standalone kubelet, whose static pods have no mirror pods.
    pub client: Option<Client>,
    pub agent: Weak<PodAgent>,
    pub recorder: Option<CoreEventRecorder>,
}

impl StaticPods {
    /// Runs until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut running: BTreeMap<String, Arc<Pod>> = BTreeMap::new();
        let mut reported: BTreeMap<PathBuf, String> = BTreeMap::new();
        loop {
            let Some(agent) = self.agent.upgrade() else {
                return;
            };
            let Manifests { pods, bad } = read_dir(&self.dir, &self.node);
            for (path, err) in &bad {
                if reported.get(path) != Some(err) {
                    tracing::warn!(path = %path.display(), error = %err, "could not process manifest file");
                    if let Some(recorder) = &self.recorder {
                        recorder.warning(
                            &crate::nodestatus::node_reference(&self.node),
                            "FailedToCreateStaticPod",
                            &format!(
                                "Could not process manifest file {:?}: {err}",
                                path.display()
                            ),
                        );
                    }
                }
            }
            reported = bad.into_iter().collect();
            let wanted: BTreeMap<String, Arc<Pod>> = pods
                .into_iter()
                .map(|(_, pod)| {
                    let uid = pod.metadata.uid.clone().unwrap_or_default();
                    (uid, Arc::new(pod))
                })
                .collect();
            for (uid, pod) in &running {
                if !wanted.contains_key(uid) {
                    tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or(""), "static pod removed");
                    agent.remove_static(pod.clone());
                }
            }
            for (uid, pod) in &wanted {
                if !running.contains_key(uid) {
                    tracing::info!(pod = %pod.metadata.name.as_deref().unwrap_or(""), "static pod added");
                    agent.status.set_mirror(uid, None);
                    agent.add_static(pod.clone());
                }
            }
            let gone: Vec<Arc<Pod>> = running
                .values()
                .filter(|p| !wanted.contains_key(p.metadata.uid.as_deref().unwrap_or("")))
                .cloned()
                .collect();
            running = wanted;
            if let Err(err) = self.sync_mirrors(&agent, &running, &gone).await {
                tracing::warn!(error = %err, "updating mirror pods");
            }
            drop(agent);
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(CHECK_PERIOD) => {}
            }
        }
    }

    /// Makes the API's mirror pods match the static pods: created when missing, replaced when
    /// from another version of the manifest, deleted when the manifest is gone.
    async fn sync_mirrors(
        &self,
        agent: &PodAgent,
        running: &BTreeMap<String, Arc<Pod>>,
        gone: &[Arc<Pod>],
    ) -> Result<(), client::Error> {
        let Some(client) = &self.client else {
            return Ok(());
        };
        for pod in gone {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let api: Api<Pod> = client.api(Some(namespace));
            if let Some(mirror) = api.get_opt(name).await? {
                if is_mirror(&mirror) {
                    self.delete_mirror(&api, &mirror).await?;
                }
            }
        }
        if running.is_empty() {
            return Ok(());
        }
        let nodes: Api<Node> = client.api(None);
        let Some(node) = nodes.get_opt(&self.node).await? else {
            // Not registered yet: next time.
            return Ok(());
        };
        for (uid, pod) in running {
            let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
            let name = pod.metadata.name.as_deref().unwrap_or("");
            let api: Api<Pod> = client.api(Some(namespace));
            let existing = api.get_opt(name).await?;
            let current = existing.filter(|m| {
                let hash = m
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(CONFIG_MIRROR));
                if hash == Some(uid) && m.metadata.deletion_timestamp.is_none() {
                    true
                } else {
                    if is_mirror(m) && hash != Some(uid) {
                        tracing::info!(pod = %name, "replacing a mirror pod from another version of the manifest");
                    }
                    false
                }
            });
            let mirror = match current {
                Some(mirror) => mirror,
                None => {
                    if let Some(old) = api.get_opt(name).await? {
                        if !is_mirror(&old) {
                            tracing::warn!(pod = %name, "a pod that is not a mirror pod has the static pod's name");
                            continue;
                        }
                        // A mirror pod being deleted (gracefully, by a user) or of another
                        // version goes at once, as upstream's; the next pass makes it again.
                        self.delete_mirror(&api, &old).await?;
                        continue;
                    }
                    match api.create(&mirror_pod(pod, &node)).await {
                        Ok(created) => created,
                        Err(err) if err.is_conflict() => continue,
                        Err(err) => return Err(err),
                    }
                }
            };
            agent.status.set_mirror(uid, mirror.metadata.uid.as_deref());
        }
        Ok(())
    }

    async fn delete_mirror(&self, api: &Api<Pod>, mirror: &Pod) -> Result<(), client::Error> {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: mirror.metadata.uid.clone(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api
            .delete(mirror.metadata.name.as_deref().unwrap_or(""), &params)
            .await
        {
            Ok(()) => Ok(()),
            Err(err) if err.is_not_found() || err.is_conflict() => Ok(()),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\nspec:\n  containers:\n  - name: c\n    image: busybox\n";

    #[test]
    fn a_manifest_becomes_a_pod_bound_to_the_node() {
        let pod = parse_manifest(MANIFEST.as_bytes(), "node1").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("web-node1"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.node_name.as_deref(), Some("node1"));
        assert!(is_static(&pod));
        assert!(!is_mirror(&pod));
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        assert_eq!(uid.len(), 32);
        assert_eq!(
            pod.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CONFIG_HASH)),
            Some(&uid)
        );
        // The same manifest on the same node is the same pod; edited or elsewhere, another.
        let again = parse_manifest(MANIFEST.as_bytes(), "node1").unwrap();
        assert_eq!(again.metadata.uid, pod.metadata.uid);
        let other = parse_manifest(MANIFEST.as_bytes(), "node2").unwrap();
        assert_ne!(other.metadata.uid, pod.metadata.uid);
        let edited = MANIFEST.replace("busybox", "busybox:1");
        let edited = parse_manifest(edited.as_bytes(), "node1").unwrap();
        assert_ne!(edited.metadata.uid, pod.metadata.uid);
    }

    #[test]
    fn malformed_manifests_say_why() {
        let err = |text: &str| parse_manifest(text.as_bytes(), "n").unwrap_err();
        assert!(
            err("kind: Pod\nmetadata: [").contains("line"),
            "{}",
            err("kind: Pod\nmetadata: [")
        );
        assert_eq!(
            err("apiVersion: v1\nkind: Service\nmetadata: {name: x}\n"),
            "kind \"Service\" is not a Pod"
        );
        assert_eq!(
            err("kind: Pod\nmetadata: {name: x}\nspec: {containers: []}\n"),
            "spec.containers: Required value"
        );
        assert!(
            err("kind: Pod\nspec: {containers: [{name: c, image: i}]}\n")
                .starts_with("metadata.name")
        );
        assert!(
            err("kind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n")
                .contains("image")
        );
    }

    #[test]
    fn the_directory_yields_pods_and_reasons() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.yaml"), MANIFEST).unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "kind: Pod\nmetadata: {name: [").unwrap();
        std::fs::write(dir.path().join(".hidden.yaml"), MANIFEST).unwrap();
        let Manifests { pods, bad } = read_dir(dir.path(), "n1");
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].1.metadata.name.as_deref(), Some("web-n1"));
        assert_eq!(bad.len(), 1);
        assert!(bad[0].0.ends_with("bad.yaml"));
    }

    #[test]
    fn mirror_pods_point_back_at_the_static_pod_and_the_node() {
        let pod = parse_manifest(MANIFEST.as_bytes(), "node1").unwrap();
        let mut node = Node::default();
        node.metadata.name = Some("node1".into());
        node.metadata.uid = Some("node-uid".into());
        let mirror = mirror_pod(&pod, &node);
        assert!(is_mirror(&mirror));
        assert!(mirror.metadata.uid.is_none());
        assert_eq!(
            mirror
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CONFIG_MIRROR)),
            pod.metadata.uid.as_ref()
        );
        let owner = &mirror.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("Node", "node-uid")
        );
    }
}
