//! What every controller is built from: the shared context (one client, one informer factory,
//! one event recorder per process), level-triggered workers over a workqueue, and helpers for
//! keys and owner references.
//!
//! A controller is a module with a `start(&ControllerContext) -> anyhow::Result<()>` that asks the
//! factory for the informers it needs, registers handlers that turn events into keys on its own
//! queue ([`enqueue_events`], [`add_handler`], [`owners::PodEvents`]), and starts workers
//! running its [`Reconciler`] once its caches are synced ([`run_workers_when_synced`], or
//! [`run_workers`] inside [`when_synced`]). Reconcile reads the informer caches, compares with
//! the desired state and writes through the client; an `Err` requeues the key with the queue's
//! rate limiter (client-go's `processNextWorkItem`), `Ok` forgets its failures.
//!
//! The controllers of pods share more: [`claim`] (adoption and release), [`podcontrol`] (pods
//! from templates, slow-start creation, deletion, their events), [`expectations`] and
//! [`podutil`] (readiness and availability).

pub mod claim;
pub mod expectations;
pub mod owners;
pub mod podcontrol;
pub mod podutil;

use std::future::Future;
use std::sync::Arc;

use client::events::{CoreEventRecorder, EventType};
use client::informer::store::IndexFunc;
use client::informer::{Event, Object};
use client::{Client, Informer, SharedInformerFactory};
use futures::future::BoxFuture;
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

    /// A workqueue named `name`, shut down when the context stops.
    pub fn queue(&self, name: &'static str) -> Queue<String> {
        let queue = Queue::new(name);
        stop_queue_on_shutdown(self, queue.clone());
        queue
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
                // A bug that panics in one sync is logged and retried instead of silently
                // ending this worker (caught in place: no task per sync on this hot path).
                let sync = std::panic::AssertUnwindSafe(reconcile(key.clone()));
                match futures::FutureExt::catch_unwind(sync).await {
                    Ok(Ok(())) => queue.forget(&key),
                    Ok(Err(err)) => {
                        tracing::warn!(controller = name, %key, error = %format!("{err:#}"), "error syncing; requeuing");
                        queue.add_rate_limited(key.clone());
                    }
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!(controller = name, %key, panic = %what, "sync panicked; requeuing");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

/// A controller's level-triggered sync of one workqueue key: idempotent, reads the caches,
/// writes through the API; an `Err` requeues the key with backoff.
pub trait Reconciler: Send + Sync + 'static {
    fn reconcile(&self, key: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Runs `workers` workers reconciling the keys of `queue` with `reconciler` once every cache in
/// `caches` is synced (see [`when_synced`] and [`run_workers`]).
pub fn run_workers_when_synced<R: Reconciler>(
    ctx: &ControllerContext,
    name: &'static str,
    queue: Queue<String>,
    workers: usize,
    caches: &[&dyn Cache],
    reconciler: Arc<R>,
) {
    when_synced(ctx, caches, move || {
        run_workers(name, queue, workers, move |key: String| {
            let reconciler = reconciler.clone();
            async move { reconciler.reconcile(&key).await }
        })
    });
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

/// An informer whose first list a controller waits for.
pub trait Cache: Send + Sync {
    /// Resolves `true` once the cache has its first list, `false` if the informer stopped first.
    fn synced(&self) -> BoxFuture<'static, bool>;
}

impl<K: Object> Cache for Informer<K> {
    fn synced(&self) -> BoxFuture<'static, bool> {
        let informer = self.clone();
        Box::pin(async move { informer.wait_synced().await })
    }
}

/// Calls `start` (which starts the workers) once every cache in `caches` is synced, or never if
/// the context stops first (upstream's `WaitForNamedCacheSync`).
pub fn when_synced(
    ctx: &ControllerContext,
    caches: &[&dyn Cache],
    start: impl FnOnce() + Send + 'static,
) {
    let waits: Vec<BoxFuture<'static, bool>> = caches.iter().map(|c| c.synced()).collect();
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        let synced = async move {
            for wait in waits {
                if !wait.await {
                    return false;
                }
            }
            true
        };
        if wait_for_caches(stop, synced).await {
            start();
        }
    });
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

/// The object an event is about, as it is now (or was last, for a deletion).
pub fn latest<K>(event: &Event<K>) -> &Arc<K> {
    match event {
        Event::Add(obj) | Event::Update { new: obj, .. } => obj,
        Event::Delete(deleted) => deleted.object(),
    }
}

/// Queues the key of every object `informer` sees added, updated or deleted.
pub fn enqueue_events<K: Object>(informer: &Informer<K>, queue: &Queue<String>) {
    let queue = queue.clone();
    informer.add_event_handler(None, move |event: Event<K>| {
        queue.add(key_of(latest(&event).as_ref()));
    });
}

/// A controller's answer to one informer's events (client-go's `ResourceEventHandler`).
pub trait EventHandler<K>: Send + Sync + 'static {
    fn on_add(&self, obj: &Arc<K>);
    fn on_update(&self, old: &Arc<K>, new: &Arc<K>);
    /// `obj` as last known (a watch's final state or a relist's tombstone).
    fn on_delete(&self, obj: &Arc<K>);
}

/// Registers `handler` for the events of `informer`.
pub fn add_handler<K: Object, H: EventHandler<K>>(informer: &Informer<K>, handler: Arc<H>) {
    informer.add_event_handler(None, move |event: Event<K>| match event {
        Event::Add(obj) => handler.on_add(&obj),
        Event::Update { old, new } => handler.on_update(&old, &new),
        Event::Delete(deleted) => handler.on_delete(deleted.object()),
    });
}

/// The index of objects by the UID of their controller, orphans under `<namespace>/<orphan>`
/// (upstream's `PodControllerUIDIndex`): a controller reads its own objects and the orphans it
/// may adopt without scanning its namespace. Every controller registers the same function under
/// this name, so a shared informer keeps one such index.
pub const CONTROLLER_UID_INDEX: &str = "framework/controllerUID";

/// The index value of the orphans of `namespace` in [`CONTROLLER_UID_INDEX`].
pub fn orphans_of(namespace: &str) -> String {
    format!("{namespace}/<orphan>")
}

/// The index function of [`CONTROLLER_UID_INDEX`].
pub fn controller_uid_indexer<K: Resource>() -> IndexFunc<K> {
    Arc::new(|obj: &K| {
        let meta = obj.meta();
        match controller_ref(meta) {
            Some(r) => vec![r.uid.clone()],
            None => vec![orphans_of(meta.namespace.as_deref().unwrap_or(""))],
        }
    })
}

/// upstream `resolveControllerRef`: the object of `owners` a controller reference in
/// `namespace` points at, if it is of that kind and still the same object (same UID).
pub fn resolve_controller_ref<K>(
    owners: &Informer<K>,
    namespace: Option<&str>,
    r: &OwnerReference,
) -> Option<Arc<K>>
where
    K: Object + Resource<DynamicType = ()>,
{
    if r.kind != K::kind(&()) {
        return None;
    }
    let owner = owners.store().get_namespaced(namespace, &r.name)?;
    (owner.meta().uid.as_ref() == Some(&r.uid)).then_some(owner)
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

/// The message of an error as upstream's `err.Error()` gives it for API errors (the Status
/// message alone), for events and conditions.
pub fn error_message(err: &client::Error) -> String {
    match err {
        client::Error::Api(api) => api.message.clone(),
        other => other.to_string(),
    }
}

/// Creates in a namespace being deleted fail until it is gone; not a failure to report. The
/// `NamespaceTerminating` cause, or the 403 message of an apiserver that sends none.
pub fn is_namespace_terminating(err: &client::Error) -> bool {
    let client::Error::Api(api) = err else {
        return false;
    };
    let by_cause = api
        .status
        .as_ref()
        .and_then(|s| s.details.as_ref())
        .and_then(|d| d.causes.as_ref())
        .is_some_and(|causes| {
            causes
                .iter()
                .any(|c| c.reason.as_deref() == Some("NamespaceTerminating"))
        });
    by_cause || (api.code == 403 && api.message.contains("because it is being terminated"))
}

/// A 422: for a patch with a UID precondition, the object was replaced by another of its name.
pub fn is_invalid(err: &client::Error) -> bool {
    matches!(err, client::Error::Api(api) if api.code == 422)
}
