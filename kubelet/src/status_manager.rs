//! The status manager (upstream's `status.Manager`): the pod workers hand it each pod's newest
//! status; it writes to the API only what changed, as a JSON merge patch of `pods/<name>/status`
//! guarded by the pod's uid, and retries what failed on its next pass (every 10 s, or at once
//! when something new arrives). Once a pod being deleted has no running containers left, the
//! status manager finishes the deletion with grace period 0, like upstream's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::{Api, Client};
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use serde_json::{Map, Value};
use tokio::sync::Notify;

/// How often everything not yet written is retried.
const SYNC_PERIOD: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct Entry {
    namespace: String,
    name: String,
    /// The newest status the kubelet computed.
    status: Value,
    /// What the API holds, as far as this manager knows (the pod's status when first seen,
    /// then each status written).
    acknowledged: Value,
    /// Delete the pod object once this status is written (a terminated pod being deleted).
    delete: bool,
}

/// The pods' statuses, keyed by uid.
pub struct StatusManager {
    /// None: a standalone kubelet with no API server, which keeps statuses to itself.
    client: Option<Client>,
    entries: Mutex<HashMap<String, Entry>>,
    /// Static pods (by their own uid) and the uid of their mirror pod in the API, once known:
    /// a static pod's status is written to its mirror pod.
    mirrors: Mutex<HashMap<String, Option<String>>>,
    wake: Notify,
}

/// A JSON merge patch (RFC 7386) turning `old` into `new`: changed keys with their new values,
/// removed keys as null, arrays and scalars replaced whole.
pub fn merge_diff(old: &Value, new: &Value) -> Option<Value> {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(d) = merge_diff(ov, nv) {
                            patch.insert(k.clone(), d);
                        }
                    }
                    None => {
                        if !nv.is_null() {
                            patch.insert(k.clone(), nv.clone());
                        }
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        (o, n) if o == n => None,
        (_, n) => Some(n.clone()),
    }
}

fn uid_of(pod: &Pod) -> Option<&str> {
    pod.metadata.uid.as_deref().filter(|u| !u.is_empty())
}

impl StatusManager {
    pub fn new(client: Client) -> Arc<StatusManager> {
        StatusManager::with_client(Some(client))
    }

    /// A status manager for a kubelet without an API server: statuses are computed and kept,
    /// never written.
    pub fn offline() -> Arc<StatusManager> {
        StatusManager::with_client(None)
    }

    fn with_client(client: Option<Client>) -> Arc<StatusManager> {
        Arc::new(StatusManager {
            client,
            entries: Mutex::default(),
            mirrors: Mutex::default(),
            wake: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the pod's newest status; `delete_when_written` once the pod is being deleted
    /// and nothing of it runs any more.
    pub fn set_pod_status(&self, pod: &Pod, status: &PodStatus, delete_when_written: bool) {
        let Some(uid) = uid_of(pod) else { return };
        let status = serde_json::to_value(status).unwrap_or(Value::Null);
        let mut entries = self.lock();
        let entry = entries.entry(uid.to_string()).or_insert_with(|| Entry {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            status: Value::Null,
            acknowledged: serde_json::to_value(pod.status.clone().unwrap_or_default())
                .unwrap_or(Value::Null),
            delete: false,
        });
        if entry.status == status && entry.delete == delete_when_written {
            return;
        }
        entry.status = status;
        entry.delete = delete_when_written;
        drop(entries);
        self.wake.notify_one();
    }

    /// The newest status computed for the pod, if any.
    pub fn pod_status(&self, uid: &str) -> Option<PodStatus> {
        let entries = self.lock();
        let entry = entries.get(uid)?;
        serde_json::from_value(entry.status.clone()).ok()
    }

    /// Forgets a pod (it is gone from the API).
    pub fn remove(&self, uid: &str) {
        self.lock().remove(uid);
        self.lock_mirrors().remove(uid);
    }

    /// Marks `static_uid` as a static pod whose status goes to its mirror pod, `mirror_uid`
    /// (None while there is none). A new mirror pod gets the whole status again.
    pub fn set_mirror(&self, static_uid: &str, mirror_uid: Option<&str>) {
        let previous = self
            .lock_mirrors()
            .insert(static_uid.to_string(), mirror_uid.map(str::to_string));
        if previous.flatten().as_deref() != mirror_uid {
            if let Some(entry) = self.lock().get_mut(static_uid) {
                entry.acknowledged = Value::Null;
            }
            self.wake.notify_one();
        }
    }

    /// The uid the API knows the pod by: its own, or its mirror pod's; None for a static pod
    /// without a mirror pod yet.
    fn api_uid(&self, uid: &str) -> Option<String> {
        match self.lock_mirrors().get(uid) {
            Some(mirror) => mirror.clone(),
            None => Some(uid.to_string()),
        }
    }

    fn lock_mirrors(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<String>>> {
        self.mirrors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes what changed until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.sync_all().await;
            tokio::select! {
                _ = &mut stop => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(SYNC_PERIOD) => {}
            }
        }
    }

    /// One pass over every pod with something to write.
    pub async fn sync_all(&self) {
        let pending: Vec<(String, Entry)> = self
            .lock()
            .iter()
            .filter(|(_, e)| !e.status.is_null() && (e.status != e.acknowledged || e.delete))
            .map(|(uid, e)| (uid.clone(), e.clone()))
            .collect();
        for (uid, entry) in pending {
            let Some(api_uid) = self.api_uid(&uid) else {
                continue;
            };
            match self.sync_one(&api_uid, &entry).await {
                Ok(gone) => {
                    let mut entries = self.lock();
                    if gone {
                        entries.remove(&uid);
                    } else if let Some(e) = entries.get_mut(&uid) {
                        e.acknowledged = entry.status.clone();
                    }
                }
                Err(err) if err.is_not_found() => {
                    self.lock().remove(&uid);
                }
                Err(err) => {
                    tracing::warn!(pod = %format!("{}/{}", entry.namespace, entry.name), error = %err, "updating the pod's status");
                }
            }
        }
    }

    /// Writes one pod's status; Ok(true) when the pod object is gone (deleted by us).
    async fn sync_one(&self, uid: &str, entry: &Entry) -> Result<bool, client::Error> {
        let Some(client) = &self.client else {
            return Ok(false);
        };
        let api: Api<Pod> = client.api(Some(&entry.namespace));
        if let Some(diff) = merge_diff(&entry.acknowledged, &entry.status) {
            let patch = serde_json::json!({"metadata": {"uid": uid}, "status": diff});
            let patched = api
                .patch_status(&entry.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            if uid_of(&patched) != Some(uid) {
                // A new pod of the same name: ours is gone.
                return Ok(true);
            }
        }
        if entry.delete {
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.to_string()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match api.delete(&entry.name, &params).await {
                Ok(()) => return Ok(true),
                Err(err) if err.is_not_found() || err.is_conflict() => return Ok(true),
                Err(err) => return Err(err),
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_diff_writes_changes_and_nulls_removals() {
        let old = json!({"phase": "Pending", "reason": "X", "conditions": [{"type": "Ready", "status": "False"}], "hostIP": "10.0.0.1"});
        let new = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "hostIP": "10.0.0.1"});
        assert_eq!(
            merge_diff(&old, &new),
            Some(
                json!({"phase": "Running", "reason": null, "conditions": [{"type": "Ready", "status": "True"}]})
            )
        );
        assert_eq!(merge_diff(&new, &new), None);
        assert_eq!(
            merge_diff(
                &json!({"a": {"b": 1, "c": 2}}),
                &json!({"a": {"b": 1, "c": 3}})
            ),
            Some(json!({"a": {"c": 3}}))
        );
    }
}
