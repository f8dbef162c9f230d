//! The API calls preemption makes (a trait, so tests record them): mark a victim with the
//! `DisruptionTarget` condition, delete it, clear a lower-priority pod's nomination, and record
//! the `Preempted` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use kube::core::params::{DeleteParams, Patch, PatchParams};
use serde_json::json;

/// Why an API call failed: a victim already gone is not an error for preemption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiCallError {
    NotFound,
    Other(String),
}

impl std::fmt::Display for ApiCallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiCallError::NotFound => f.write_str("not found"),
            ApiCallError::Other(e) => f.write_str(e),
        }
    }
}

impl From<client::Error> for ApiCallError {
    fn from(e: client::Error) -> ApiCallError {
        if e.is_not_found() {
            ApiCallError::NotFound
        } else {
            ApiCallError::Other(e.to_string())
        }
    }
}

pub trait PreemptionApi: Send + Sync {
    /// Sets `condition` in the victim's `status.conditions` (a strategic merge patch of the
    /// status subresource, as upstream's `PatchPodStatus`).
    fn set_pod_condition<'a>(
        &'a self,
        pod: &'a Pod,
        condition: &'a PodCondition,
    ) -> BoxFuture<'a, Result<(), ApiCallError>>;

    fn delete_pod<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<(), ApiCallError>>;

    /// Clears `status.nominatedNodeName`.
    fn clear_nominated_node_name<'a>(
        &'a self,
        pod: &'a Pod,
    ) -> BoxFuture<'a, Result<(), ApiCallError>>;

    /// The `Preempted` event on the victim, related to the preemptor.
    fn record_preempted(&self, victim: &Pod, preemptor: &Pod, node: &str);
}

fn ns_name(pod: &Pod) -> (Option<&str>, &str) {
    (
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref().unwrap_or(""),
    )
}

/// [`PreemptionApi`] through the scheduler's client. Events are written by one recorder per
/// scheduler name (the reporting controller, as upstream's per-profile recorders).
pub struct ClientPreemptionApi {
    client: client::Client,
    recorders: Mutex<HashMap<String, client::events::EventRecorder>>,
}

impl ClientPreemptionApi {
    pub fn new(client: client::Client) -> ClientPreemptionApi {
        ClientPreemptionApi {
            client,
            recorders: Mutex::new(HashMap::new()),
        }
    }

    fn recorder(&self, scheduler: &str) -> Option<client::events::EventRecorder> {
        // The recorder's writer is a task: without a runtime there is nowhere to run it.
        tokio::runtime::Handle::try_current().ok()?;
        let mut recorders = self
            .recorders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let recorder = recorders.entry(scheduler.to_string()).or_insert_with(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default();
            client::events::EventRecorder::new(
                &self.client,
                scheduler,
                &format!("{scheduler}-{host}"),
            )
        });
        Some(recorder.clone())
    }
}

impl PreemptionApi for ClientPreemptionApi {
    fn set_pod_condition<'a>(
        &'a self,
        pod: &'a Pod,
        condition: &'a PodCondition,
    ) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            let (ns, name) = ns_name(pod);
            // The order of the conditions after the patch, as a two-way merge patch states it.
            let mut order: Vec<serde_json::Value> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| json!({"type": c.type_}))
                .collect();
            if !order.iter().any(|o| o["type"] == condition.type_.as_str()) {
                order.push(json!({"type": condition.type_}));
            }
            let patch = json!({"status": {
                "$setElementOrder/conditions": order,
                "conditions": [condition],
            }});
            self.client
                .api::<Pod>(ns)
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await?;
            Ok(())
        })
    }

    fn delete_pod<'a>(&'a self, pod: &'a Pod) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            let (ns, name) = ns_name(pod);
            self.client
                .api::<Pod>(ns)
                .delete(name, &DeleteParams::default())
                .await?;
            Ok(())
        })
    }

    fn clear_nominated_node_name<'a>(
        &'a self,
        pod: &'a Pod,
    ) -> BoxFuture<'a, Result<(), ApiCallError>> {
        Box::pin(async move {
            let (ns, name) = ns_name(pod);
            let patch = json!({"status": {"nominatedNodeName": null}});
            self.client
                .api::<Pod>(ns)
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await?;
            Ok(())
        })
    }

    fn record_preempted(&self, victim: &Pod, preemptor: &Pod, node: &str) {
        let scheduler = preemptor
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or("default-scheduler");
        let Some(recorder) = self.recorder(scheduler) else {
            return;
        };
        let note = format!(
            "Preempted by pod {} on node {node}",
            preemptor.metadata.uid.as_deref().unwrap_or("")
        );
        recorder.record(
            &client::events::object_reference(victim),
            Some(&client::events::object_reference(preemptor)),
            client::events::EventType::Normal,
            "Preempted",
            "Preempting",
            &note,
        );
    }
}

/// Keeps the trait object type short where it is stored.
pub type SharedPreemptionApi = Arc<dyn PreemptionApi>;
