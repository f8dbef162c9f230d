//! One watch cache per resource (upstream's cacher): a single storage watch per resource feeds
//! every client watch, and lists that may be served from memory are.
//!
//! The cache keeps each object as the bytes a list serves (JSON without `kind`/`apiVersion`, with
//! `resourceVersion`), plus only what selectors look at (labels and the resource's selectable
//! fields). Lists are then concatenations and watch events splices of those bytes, and memory is
//! a few bytes over the serialized size instead of a parsed JSON tree per object.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::Value;
use storage::Storage;
use watch_cache::{Config, Decoder, WatchCache};

use crate::object;
use crate::resources::{Resource, RESOURCES};

/// An object as the cache holds it.
pub struct Cached {
    /// The list item: JSON without `kind`/`apiVersion`, with `resourceVersion`.
    pub item: Bytes,
    pub resource_version: u64,
    pub name: String,
    pub namespace: String,
    pub labels: BTreeMap<String, String>,
    /// Values of the resource's selectable fields, rendered as field selectors compare them.
    pub fields: Vec<(&'static str, String)>,
    /// The event encoding of this object at another revision (a delete, or a selector
    /// transition), made once and shared by every watcher.
    pub at_revision: OnceLock<(u64, Bytes)>,
}

impl Cached {
    /// The full object (with `kind` and `apiVersion`), parsed again from the item bytes.
    pub fn object(&self, resource: &Resource) -> Value {
        let obj = serde_json::from_slice(&self.item).unwrap_or(Value::Null);
        crate::handlers::with_type(resource, obj)
    }

    pub fn field(&self, name: &str) -> Option<String> {
        match name {
            "metadata.name" => Some(self.name.clone()),
            "metadata.namespace" => Some(self.namespace.clone()),
            _ => self
                .fields
                .iter()
                .find(|(f, _)| *f == name)
                .map(|(_, v)| v.clone()),
        }
    }

    /// `{"kind":..,"apiVersion":..,<item fields>}`: the object as a watch event carries it.
    pub fn typed_json(&self, resource: &Resource) -> Vec<u8> {
        splice_type(resource, &self.item)
    }
}

/// Puts `kind` and `apiVersion` in front of an item's fields without parsing it.
pub fn splice_type(resource: &Resource, item: &[u8]) -> Vec<u8> {
    let head = format!(
        "{{\"kind\":\"{}\",\"apiVersion\":\"{}\"",
        resource.kind,
        resource.group_version()
    );
    let mut out = Vec::with_capacity(item.len() + head.len() + 1);
    out.extend_from_slice(head.as_bytes());
    match item.get(1..) {
        // `{}`: nothing to add after the type.
        Some(rest) if rest.first() == Some(&b'}') => out.extend_from_slice(rest),
        Some(rest) => {
            out.push(b',');
            out.extend_from_slice(rest);
        }
        None => out.push(b'}'),
    }
    out
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
        for resource in RESOURCES.iter().filter(|r| r.is_stored()) {
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

    /// The cached objects of `resource`, in one namespace or all, decoded.
    pub fn objects(&self, resource: &Resource, namespace: Option<&str>) -> Vec<Value> {
        let Some(cache) = self.get(resource) else {
            return Vec::new();
        };
        let (items, _) = cache.list(&resource.list_prefix(namespace), &|_| true);
        items.iter().map(|c| c.object(resource)).collect()
    }

    /// One cached object, decoded.
    pub fn object(&self, resource: &Resource, namespace: &str, name: &str) -> Option<Value> {
        let (hit, _) = self.get(resource)?.get(&resource.key(namespace, name));
        hit.map(|c| c.object(resource))
    }

    /// A namespace's labels, as the cache holds them (`None` when it is not cached).
    pub fn namespace_labels(&self, namespace: &str) -> Option<serde_json::Map<String, Value>> {
        let namespaces = crate::resources::find("", "v1", "namespaces")?;
        let (hit, _) = self.get(namespaces)?.get(&namespaces.key("", namespace));
        hit.map(|c| {
            c.labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect()
        })
    }

    /// Stored objects per resource, for `apiserver_storage_objects`.
    pub fn object_counts(&self) -> Vec<(String, usize)> {
        let mut counts: Vec<(String, usize)> = RESOURCES
            .iter()
            .filter(|r| r.is_stored())
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
    let mut obj = object::decode(kv)?;
    let labels = obj
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let fields = resource
        .selectable_fields
        .iter()
        .filter_map(|f| crate::selectors::field_value(resource, &obj, f).map(|v| (*f, v)))
        .collect();
    if let Some(map) = obj.as_object_mut() {
        map.remove("kind");
        map.remove("apiVersion");
    }
    let item = Bytes::from(serde_json::to_vec(&obj).map_err(|e| e.to_string())?);
    Ok(Cached {
        item,
        resource_version: kv.mod_revision,
        name: object::name(&obj).to_string(),
        namespace: object::namespace(&obj).to_string(),
        labels,
        fields,
        at_revision: OnceLock::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_and_api_version_are_spliced_in_front() {
        let pods = crate::resources::find("", "v1", "pods").unwrap();
        let out = splice_type(pods, br#"{"metadata":{"name":"a"}}"#);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}})
        );
        let empty: Value = serde_json::from_slice(&splice_type(pods, b"{}")).unwrap();
        assert_eq!(
            empty,
            serde_json::json!({"kind": "Pod", "apiVersion": "v1"})
        );
    }
}
