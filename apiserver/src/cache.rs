//! One watch cache per resource (upstream's cacher): a single storage watch per resource feeds
//! every client watch, and `resourceVersion=0` lists are answered from memory.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use storage::Storage;
use watch_cache::{Config, Decoder, WatchCache};

use crate::object;
use crate::resources::{Resource, RESOURCES};

/// An object as the cache holds it: decoded once, and serialized once for every watcher.
pub struct Cached {
    /// With `kind`, `apiVersion` and `resourceVersion` set.
    pub object: Value,
    /// `object` as JSON.
    pub json: Bytes,
}

pub struct Caches {
    by_prefix: HashMap<String, Arc<WatchCache<Cached>>>,
}

impl Caches {
    /// Starts a cache for every served resource.
    pub async fn start(
        store: Arc<dyn Storage>,
        config: Config,
    ) -> Result<Caches, watch_cache::Error> {
        let mut by_prefix = HashMap::new();
        for resource in RESOURCES {
            let decode: Decoder<Cached> = Arc::new(move |kv| decode(resource, kv));
            let cache =
                WatchCache::start(store.clone(), resource.key_prefix(), decode, config.clone())
                    .await?;
            by_prefix.insert(resource.key_prefix(), cache);
        }
        Ok(Caches { by_prefix })
    }

    pub fn get(&self, resource: &Resource) -> Option<&Arc<WatchCache<Cached>>> {
        self.by_prefix.get(&resource.key_prefix())
    }

    /// Stored objects per resource, for `apiserver_storage_objects`.
    pub fn object_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = RESOURCES
            .iter()
            .filter_map(|r| {
                let cache = self.get(r)?;
                let (items, _) = cache.list(&r.key_prefix(), &|_| true);
                Some((r.qualified(), items.len()))
            })
            .collect();
        counts.sort();
        counts
    }
}

fn decode(resource: &Resource, kv: &storage::KeyValue) -> Result<Cached, String> {
    let obj = object::decode(kv)?;
    let obj = crate::handlers::with_type(resource, obj);
    let json = Bytes::from(serde_json::to_vec(&obj).map_err(|e| e.to_string())?);
    Ok(Cached { object: obj, json })
}
