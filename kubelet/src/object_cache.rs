//! The configMaps and secrets the node's pods refer to, kept current by watches (upstream's
//! default `configMapAndSecretChangeDetectionStrategy: Watch`): each referenced object gets
//! one informer restricted to it (`metadata.name=<name>` in its namespace, which the Node
//! authorizer allows a kubelet), shared by every pod that refers to it and stopped when the
//! last of them is gone. Pod syncs (every second) read the cache instead of the API; an
//! object whose informer has not listed yet is read from the API once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use client::informer::Object;
use client::{Api, Client, Informer, Scope};

/// How long a read waits for a new informer's first list before asking the API directly.
const FIRST_LIST_WAIT: Duration = Duration::from_secs(2);

type Key = (String, String);

struct Entry<K: Object> {
    informer: Informer<K>,
    refs: usize,
}

/// One kind's watched objects.
pub struct ObjectCache<K: Object> {
    client: Option<Client>,
    entries: Mutex<HashMap<Key, Entry<K>>>,
}

impl<K: Object> ObjectCache<K>
where
    K: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    /// A cache reading through `client` (None: every object is missing).
    pub fn new(client: Option<Client>) -> ObjectCache<K> {
        ObjectCache {
            client,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry<K>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One more pod refers to `namespace/name`: watched from now on.
    pub fn register(&self, namespace: &str, name: &str) {
        let Some(client) = &self.client else {
            return;
        };
        let mut entries = self.lock();
        let entry = entries
            .entry((namespace.to_string(), name.to_string()))
            .or_insert_with(|| {
                let api: Api<K> = client.api(Some(namespace));
                let scope = Scope::namespace(namespace).fields(&format!("metadata.name={name}"));
                let informer = Informer::new(api, scope);
                informer.strip_managed_fields(true);
                informer.start();
                Entry { informer, refs: 0 }
            });
        entry.refs += 1;
    }

    /// One pod fewer refers to `namespace/name`; the last one stops its watch.
    pub fn unregister(&self, namespace: &str, name: &str) {
        let mut entries = self.lock();
        let key = (namespace.to_string(), name.to_string());
        let last = match entries.get_mut(&key) {
            Some(entry) => {
                entry.refs = entry.refs.saturating_sub(1);
                entry.refs == 0
            }
            None => false,
        };
        if last {
            if let Some(entry) = entries.remove(&key) {
                entry.informer.stop();
            }
        }
    }

    /// How many objects are watched.
    pub fn watched(&self) -> usize {
        self.lock().len()
    }

    /// The object as last seen (None: it does not exist).
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<K>, client::Error> {
        let Some(client) = &self.client else {
            return Ok(None);
        };
        let informer = self
            .lock()
            .get(&(namespace.to_string(), name.to_string()))
            .map(|e| e.informer.clone());
        if let Some(informer) = informer {
            if informer.has_synced() || informer.wait_synced_for(FIRST_LIST_WAIT).await {
                return Ok(informer
                    .store()
                    .get_namespaced(Some(namespace), name)
                    .map(|o| (*o).clone()));
            }
        }
        let api: Api<K> = client.api(Some(namespace));
        api.get_opt(name).await
    }
}
