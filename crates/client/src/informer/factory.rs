//! `SharedInformerFactory`: hands out exactly one informer per (kind, namespace, selectors) per
//! factory, so every controller in a process that asks for pods shares one list + watch. Make one
//! factory per process and pass it around.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{lock, Informer, Object};
use crate::client::Client;

/// Which objects an informer holds: a namespace (or all) and selectors.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope {
    pub namespace: Option<String>,
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
}

impl Scope {
    pub fn all() -> Scope {
        Scope::default()
    }

    pub fn namespace(namespace: &str) -> Scope {
        Scope {
            namespace: Some(namespace.to_string()),
            ..Scope::default()
        }
    }

    pub fn labels(mut self, selector: &str) -> Scope {
        self.label_selector = Some(selector.to_string());
        self
    }

    pub fn fields(mut self, selector: &str) -> Scope {
        self.field_selector = Some(selector.to_string());
        self
    }
}

/// Type-erased informer, so informers of every kind live in one map.
trait Erased: Send + Sync {
    fn start(&self);
    fn stop(&self);
    fn has_synced(&self) -> bool;
    fn as_any(&self) -> &dyn Any;
}

impl<K: Object> Erased for Informer<K> {
    fn start(&self) {
        Informer::start(self);
    }

    fn stop(&self) {
        Informer::stop(self);
    }

    fn has_synced(&self) -> bool {
        Informer::has_synced(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    kind: TypeId,
    /// The collection path: tells dynamic kinds apart and carries the namespace.
    path: String,
    scope: Scope,
}

/// One informer per resource and scope; clones share the informers.
#[derive(Clone)]
pub struct SharedInformerFactory {
    client: Client,
    informers: Arc<Mutex<HashMap<Key, Arc<dyn Erased>>>>,
    started: Arc<std::sync::atomic::AtomicBool>,
    strip_managed_fields: bool,
}

impl SharedInformerFactory {
    pub fn new(client: Client) -> SharedInformerFactory {
        SharedInformerFactory {
            client,
            informers: Arc::new(Mutex::new(HashMap::new())),
            started: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            strip_managed_fields: false,
        }
    }

    /// Every informer of this factory drops `metadata.managedFields` before caching, as the
    /// controller-manager's and scheduler's factories do (`informers.WithTransform`): daemons
    /// never read them, and they are most of a cached object's memory.
    pub fn stripping_managed_fields(mut self) -> SharedInformerFactory {
        self.strip_managed_fields = true;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The informer for every `K` in the cluster.
    pub fn informer<K>(&self) -> Informer<K>
    where
        K: Object,
        K::DynamicType: Default,
    {
        self.informer_for(Scope::all())
    }

    /// The informer for `K` in `scope`.
    pub fn informer_for<K>(&self, scope: Scope) -> Informer<K>
    where
        K: Object,
        K::DynamicType: Default,
    {
        self.informer_with(&K::DynamicType::default(), scope)
    }

    /// The informer for a kind known at run time (`DynamicObject` with its `ApiResource`).
    pub fn informer_with<K: Object>(&self, dyntype: &K::DynamicType, scope: Scope) -> Informer<K> {
        let api = self
            .client
            .api_with::<K>(scope.namespace.as_deref(), dyntype);
        let key = Key {
            kind: TypeId::of::<K>(),
            path: api.path().to_string(),
            scope: scope.clone(),
        };
        let mut informers = lock(&self.informers);
        if let Some(existing) = informers.get(&key) {
            if let Some(informer) = existing.as_any().downcast_ref::<Informer<K>>() {
                return informer.clone();
            }
        }
        let informer = Informer::new(api, scope);
        informer.strip_managed_fields(self.strip_managed_fields);
        informers.insert(key, Arc::new(informer.clone()));
        // Informers asked for after start() run at once, as client-go's do after a second Start.
        if self.started.load(std::sync::atomic::Ordering::Acquire) {
            informer.start();
        }
        informer
    }

    /// Starts every informer asked for so far (and, from now on, each new one at once).
    pub fn start(&self) {
        self.started
            .store(true, std::sync::atomic::Ordering::Release);
        for informer in lock(&self.informers).values() {
            informer.start();
        }
    }

    /// Whether every informer has its first list.
    pub fn has_synced(&self) -> bool {
        lock(&self.informers).values().all(|i| i.has_synced())
    }

    /// Waits until every informer has synced, or `timeout` passes (then `false`).
    pub async fn wait_for_cache_sync(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.has_synced() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops every informer.
    pub fn shutdown(&self) {
        for informer in lock(&self.informers).values() {
            informer.stop();
        }
    }

    /// How many informers the factory holds.
    pub fn len(&self) -> usize {
        lock(&self.informers).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
