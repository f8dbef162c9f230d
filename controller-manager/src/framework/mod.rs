//! What every controller is built from: the shared context (one client, one informer factory,
//! one event recorder per process), level-triggered workers over a workqueue, and helpers for
//! keys and owner references.
//!
//! A controller is a module with a `start(&ControllerContext) -> anyhow::Result<()>` that asks the
//! factory for the informers it needs, registers handlers that turn events into keys on its own
//! queue, and calls [`run_workers`] with its `reconcile(key)`. Reconcile reads the informer caches,
//! compares with the desired state and writes through the client; an `Err` requeues the key with
//! the queue's rate limiter (client-go's `processNextWorkItem`), `Ok` forgets its failures.

pub mod expectations;

use std::future::Future;
use std::sync::Arc;

use client::events::{CoreEventRecorder, EventType};
use client::{Client, SharedInformerFactory};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::Resource;
use workqueue::Queue;

use crate::options::Options;

/// Shared by every controller of the process.
#[derive(Clone)]
pub struct ControllerContext {
    pub client: Client,
    pub factory: SharedInformerFactory,
    pub options: Arc<Options>,
    /// Resolves when the process shuts down or loses leadership.
    pub stop: tokio::sync::watch::Receiver<bool>,
}

impl ControllerContext {
    /// A core/v1 event recorder with `component` as the source (`replicaset-controller`).
    pub fn recorder(&self, component: &str) -> CoreEventRecorder {
        CoreEventRecorder::new(&self.client, component, None)
    }
}

/// Runs `workers` tasks that take keys from `queue` and reconcile them until the queue shuts
/// down. A failed key is requeued with backoff and logged; a key is never reconciled by two
/// workers at once (the queue guarantees it).
pub fn run_workers<F, Fut>(name: &'static str, queue: Queue<String>, workers: usize, reconcile: F)
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let reconcile = Arc::new(reconcile);
    for _ in 0..workers.max(1) {
        let queue = queue.clone();
        let reconcile = reconcile.clone();
        tokio::spawn(async move {
            while let Some(key) = queue.get().await {
                match reconcile(key.clone()).await {
                    Ok(()) => queue.forget(&key),
                    Err(err) => {
                        tracing::warn!(controller = name, %key, error = %format!("{err:#}"), "error syncing; requeuing");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// Waits until `synced` (the caches a controller reads have their first lists) or until the
/// context stops, then `false`. Controllers start their workers only on `true`: acting on
/// half-listed caches would re-create objects that already exist.
pub async fn wait_for_caches(
    mut stop: tokio::sync::watch::Receiver<bool>,
    synced: impl Future<Output = bool>,
) -> bool {
    tokio::select! {
        synced = synced => synced,
        _ = stop.wait_for(|stopped| *stopped) => false,
    }
}

/// Shuts `queue` down when the context stops.
pub fn stop_queue_on_shutdown(ctx: &ControllerContext, queue: Queue<String>) {
    let mut stop = ctx.stop.clone();
    tokio::spawn(async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
        queue.shut_down();
    });
}

/// `namespace/name` (or `name`) of an object: the workqueue key.
pub fn key_of<K: Resource>(obj: &K) -> String {
    client::informer::store::key_of(obj)
}

/// The owner reference marking the controller of an object (`controller: true`).
pub fn controller_ref(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// An owner reference to `owner` as its controller, blocking owner deletion, as upstream's
/// `metav1.NewControllerRef`.
pub fn new_controller_ref<K>(owner: &K) -> OwnerReference
where
    K: Resource,
    K::DynamicType: Default,
{
    let dt = K::DynamicType::default();
    let meta = owner.meta();
    OwnerReference {
        api_version: K::api_version(&dt).into_owned(),
        kind: K::kind(&dt).into_owned(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// An `ObjectReference` to `obj`, for events.
pub fn reference<K>(obj: &K) -> ObjectReference
where
    K: Resource,
    K::DynamicType: Default,
{
    client::events::object_reference(obj)
}

/// Records a Warning event and logs it: the controller's answer to input it cannot act on.
pub fn warn_event(
    recorder: &CoreEventRecorder,
    object: &ObjectReference,
    reason: &str,
    message: &str,
) {
    tracing::warn!(
        object = %format!("{}/{}", object.namespace.as_deref().unwrap_or(""), object.name.as_deref().unwrap_or("")),
        %reason,
        %message
    );
    recorder.event(object, EventType::Warning, reason, message);
}
