//! The node's registration and status, as upstream's `kubelet_node_status.go`:
//!
//! - register: create the Node (labels, taints, annotation and the full status); when it exists
//!   already, reconcile its default labels; retried with backoff (100 ms doubling to 7 s);
//! - every `nodeStatusUpdateFrequency` (and at once when the runtime's health changes): read the
//!   Node, run the setters ([`setters`]), and PATCH `nodes/<name>/status` with a strategic merge
//!   patch ([`patch`]) when something other than heartbeats changed, or when
//!   `nodeStatusReportFrequency` has passed since the last report; five tries per round;
//! - when the Node is gone after those tries (deleted by someone), register again (upstream
//!   does this since kubernetes#123535).
//!
//! The parts: [`machine`] (what the host is), [`addresses`], [`setters`], [`patch`] and
//! [`register`].

pub mod addresses;
pub mod machine;
pub mod patch;
pub mod register;
pub mod setters;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use client::client::{Patch, PatchParams};
use client::events::CoreEventRecorder;
use client::Api;
use k8s_openapi::api::core::v1::{ContainerImage, Node, ObjectReference};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::KubeletConfig;
use crate::eviction::PressureObserver;
use crate::runtime_state::RuntimeState;
use machine::MachineInfo;
use register::NodeIdentity;
use setters::StatusInputs;

/// Upstream's `nodeStatusUpdateRetry`.
const NODE_STATUS_UPDATE_RETRY: usize = 5;
const REGISTER_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
const REGISTER_MAX_BACKOFF: Duration = Duration::from_secs(7);

/// Why a status round failed.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("error getting node {node:?}: {source}")]
    Get {
        node: String,
        #[source]
        source: client::Error,
    },
    #[error("error patching the status of node {node:?}: {source}")]
    Patch {
        node: String,
        #[source]
        source: client::Error,
    },
    #[error("encoding the status of node {node:?}: {message}")]
    Encode { node: String, message: String },
}

impl StatusError {
    fn node_not_found(&self) -> bool {
        match self {
            StatusError::Get { source, .. } | StatusError::Patch { source, .. } => {
                source.is_not_found()
            }
            StatusError::Encode { .. } => false,
        }
    }
}

/// The node's reference in events (upstream's `nodeRef`: the UID is the node's name).
pub fn node_reference(name: &str) -> ObjectReference {
    ObjectReference {
        kind: Some("Node".to_string()),
        name: Some(name.to_string()),
        uid: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

/// One node's registration and status loop.
pub struct NodeStatusManager {
    pub identity: NodeIdentity,
    pub machine: MachineInfo,
    pub node_ips: Vec<IpAddr>,
    pub pressure: Arc<dyn PressureObserver>,
    pub config: Arc<KubeletConfig>,
    pub runtime_state: Arc<RuntimeState>,
    /// Registration (rate-limited client).
    pub nodes: Api<Node>,
    /// Status reads and patches (the unthrottled heartbeat client, as upstream).
    pub heartbeat_nodes: Api<Node>,
    pub recorder: Option<CoreEventRecorder>,
    /// Where `status.images` comes from (None: the field is left alone).
    pub images: Option<Arc<dyn cri::ImageService>>,
    /// The images last listed and when (listed at most every [`IMAGE_LIST_PERIOD`]).
    pub image_cache: std::sync::Mutex<Option<(Instant, Vec<ContainerImage>)>>,
}

/// How often the runtime's images are listed for the node's status (upstream's image cache
/// is refreshed every 30 s).
pub const IMAGE_LIST_PERIOD: std::time::Duration = std::time::Duration::from_secs(30);

/// Upstream's `nodeStatusMaxImages` and `MaxNamesPerImageInNodeStatus`.
pub const MAX_IMAGES: usize = 50;
pub const MAX_NAMES_PER_IMAGE: usize = 5;

/// `status.images` from the runtime's image list: the biggest first, at most [`MAX_IMAGES`],
/// each named by its digests then its tags (at most [`MAX_NAMES_PER_IMAGE`]).
pub fn node_images(images: &[cri::v1::Image]) -> Vec<ContainerImage> {
    let mut sorted: Vec<&cri::v1::Image> = images.iter().collect();
    sorted.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
    sorted
        .into_iter()
        .take(MAX_IMAGES)
        .map(|image| {
            let names: Vec<String> = image
                .repo_digests
                .iter()
                .chain(&image.repo_tags)
                .take(MAX_NAMES_PER_IMAGE)
                .cloned()
                .collect();
            ContainerImage {
                names: (!names.is_empty()).then_some(names),
                size_bytes: i64::try_from(image.size).ok(),
            }
        })
        .collect()
}

impl NodeStatusManager {
    /// The node's images, listed again when the last list is older than
    /// [`IMAGE_LIST_PERIOD`]; None when the runtime cannot say (the field keeps its value).
    async fn current_images(&self) -> Option<Vec<ContainerImage>> {
        let service = self.images.as_ref()?;
        {
            let cache = self.image_cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, images)) = cache.as_ref() {
                if at.elapsed() < IMAGE_LIST_PERIOD {
                    return Some(images.clone());
                }
            }
        }
        match service
            .list_images(cri::v1::ListImagesRequest { filter: None })
            .await
        {
            Ok(list) => {
                let images = node_images(&list.images);
                *self.image_cache.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((Instant::now(), images.clone()));
                Some(images)
            }
            Err(err) => {
                tracing::debug!(error = %err, "listing images for the node status");
                None
            }
        }
    }

    fn name(&self) -> &str {
        &self.identity.name
    }

    fn inputs(&self, now: Timestamp) -> StatusInputs<'_> {
        StatusInputs {
            now,
            hostname: &self.identity.hostname,
            node_ips: &self.node_ips,
            machine: &self.machine,
            max_pods: self.config.max_pods,
            system_reserved: &self.config.system_reserved,
            kube_reserved: &self.config.kube_reserved,
            eviction_hard: &self.config.eviction_hard,
            kubelet_port: self.config.port,
            runtime_version: self.runtime_state.version().map(|v| v.node_info_string()),
            pressure: self.pressure.observe(),
            ready_errors: self.runtime_state.ready_errors(Instant::now()),
        }
    }

    fn record(&self, reasons: &[&'static str]) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let reference = node_reference(self.name());
        for reason in reasons {
            tracing::debug!(node = %self.name(), event = %reason, "recording node status event");
            recorder.normal(
                &reference,
                reason,
                &format!("Node {} status is now: {reason}", self.name()),
            );
        }
    }

    /// The Node to register: identity, labels, taints and the full status.
    pub fn initial_node(&self) -> (Node, Vec<&'static str>) {
        let mut node = register::initial_node(&self.identity);
        let events = setters::set_node_status(&mut node, &self.inputs(Timestamp::now()));
        (node, events)
    }

    /// One registration attempt (upstream's `tryRegisterWithAPIServer`).
    pub async fn try_register(&self) -> bool {
        let (node, events) = self.initial_node();
        match self.nodes.create(&node).await {
            Ok(_) => {
                self.record(&events);
                return true;
            }
            Err(err) if err.is_already_exists() => {}
            Err(err) => {
                tracing::error!(node = %self.name(), error = %err, "Unable to register node with API server");
                return false;
            }
        }
        let existing = match self.nodes.get(self.name()).await {
            Ok(existing) => existing,
            Err(err) => {
                tracing::error!(
                    node = %self.name(),
                    error = %err,
                    "Unable to register node with API server: error getting existing node"
                );
                return false;
            }
        };
        tracing::info!(node = %self.name(), "Node was previously registered");
        if let Some(patch) = register::reconcile_existing(&node, &existing) {
            if let Err(err) = self
                .nodes
                .patch(self.name(), &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::error!(
                    node = %self.name(),
                    error = %err,
                    "Unable to reconcile node with API server: error updating node"
                );
                return false;
            }
        }
        true
    }

    /// Registers, retrying with backoff; `false` when stopped first.
    pub async fn register_with_api_server(&self, stop: &mut watch::Receiver<bool>) -> bool {
        let mut step = REGISTER_INITIAL_BACKOFF;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(step) => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
            step = (step * 2).min(REGISTER_MAX_BACKOFF);
            tracing::info!(node = %self.name(), "Attempting to register node");
            if self.try_register().await {
                tracing::info!(node = %self.name(), "Successfully registered node");
                return true;
            }
        }
    }

    /// One status round (upstream's `tryUpdateNodeStatus`): read, compute, patch when needed.
    /// `last_report` is when the status was last posted.
    pub async fn try_update_node_status(
        &self,
        last_report: &mut Option<Instant>,
    ) -> Result<(), StatusError> {
        let name = self.name().to_string();
        let original =
            self.heartbeat_nodes
                .get(&name)
                .await
                .map_err(|source| StatusError::Get {
                    node: name.clone(),
                    source,
                })?;
        let mut node = original.clone();
        let events = setters::set_node_status(&mut node, &self.inputs(Timestamp::now()));
        if let Some(images) = self.current_images().await {
            node.status.get_or_insert_with(Default::default).images = Some(images);
        }
        let changed = patch::status_changed(original.status.as_ref(), node.status.as_ref());
        let report_due =
            last_report.is_none_or(|t| t.elapsed() >= self.config.node_status_report_frequency);
        if !changed && !report_due {
            return Ok(());
        }
        let encode = |status: &Option<k8s_openapi::api::core::v1::NodeStatus>| {
            serde_json::to_value(status).map_err(|err| StatusError::Encode {
                node: name.clone(),
                message: err.to_string(),
            })
        };
        let (old, new) = (encode(&original.status)?, encode(&node.status)?);
        if let Some(body) = patch::status_patch(&old, &new) {
            self.heartbeat_nodes
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(&body))
                .await
                .map_err(|source| StatusError::Patch {
                    node: name.clone(),
                    source,
                })?;
        }
        *last_report = Some(Instant::now());
        self.record(&events);
        Ok(())
    }

    /// Up to five rounds (upstream's `updateNodeStatus`); the last error when all fail.
    pub async fn update_node_status(
        &self,
        last_report: &mut Option<Instant>,
    ) -> Result<(), StatusError> {
        let mut attempt = 1;
        loop {
            match self.try_update_node_status(last_report).await {
                Ok(()) => return Ok(()),
                Err(err) if attempt < NODE_STATUS_UPDATE_RETRY => {
                    tracing::warn!(node = %self.name(), error = %err, "Error updating node status, will retry");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Registers (when `registerNode`) and keeps the status until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut registered = false;
        let mut last_report: Option<Instant> = None;
        let mut runtime_changes = self.runtime_state.subscribe();
        runtime_changes.borrow_and_update();
        let mut runtime_open = true;
        loop {
            if self.config.register_node && !registered {
                if !self.register_with_api_server(&mut stop).await {
                    return;
                }
                registered = true;
                last_report = None;
            }
            match self.update_node_status(&mut last_report).await {
                Ok(()) => {}
                Err(err) if err.node_not_found() && self.config.register_node => {
                    tracing::warn!(
                        node = %self.name(),
                        error = %err,
                        "the Node is gone; registering it again"
                    );
                    registered = false;
                    continue;
                }
                Err(err) => {
                    tracing::error!(node = %self.name(), error = %err, "Unable to update node status");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.node_status_update_frequency) => {}
                changed = runtime_changes.changed(), if runtime_open => {
                    // A closed channel (no runtime state any more) leaves only the timer.
                    runtime_open = changed.is_ok();
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_biggest_images_first_named_by_digest_then_tag() {
        let image = |id: &str, size: u64, tags: &[&str], digests: &[&str]| cri::v1::Image {
            id: id.into(),
            size,
            repo_tags: tags.iter().map(|t| t.to_string()).collect(),
            repo_digests: digests.iter().map(|d| d.to_string()).collect(),
            ..Default::default()
        };
        let many: Vec<String> = (0..8).map(|i| format!("r/x:{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let list = vec![
            image("a", 10, &["busybox:1"], &["busybox@sha256:1"]),
            image("b", 30, &many, &[]),
            image("c", 20, &[], &[]),
        ];
        let out = node_images(&list);
        let sizes: Vec<Option<i64>> = out.iter().map(|i| i.size_bytes).collect();
        assert_eq!(sizes, [Some(30), Some(20), Some(10)]);
        assert_eq!(
            out[0].names.as_ref().map(Vec::len),
            Some(MAX_NAMES_PER_IMAGE)
        );
        assert_eq!(out[1].names, None);
        assert_eq!(
            out[2].names.clone().unwrap_or_default(),
            ["busybox@sha256:1", "busybox:1"]
        );
        let lots: Vec<cri::v1::Image> = (0..60)
            .map(|i| image(&i.to_string(), i, &[], &[]))
            .collect();
        assert_eq!(node_images(&lots).len(), MAX_IMAGES);
    }
}
