//! The informer's thread-safe cache: objects by key (`namespace/name`, or `name` for
//! cluster-scoped kinds) with indexers, as client-go's `cache.Indexer`. Readers get `Arc`s of the
//! objects, never copies, and must not expect them to change: a newer version replaces the `Arc`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use k8s_openapi::api::core::v1::Pod;
use kube::core::Resource;

/// Computes the values an object is indexed under.
pub type IndexFunc<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// Index names for the indexers below.
pub const NAMESPACE_INDEX: &str = "namespace";
pub const OWNER_UID_INDEX: &str = "ownerUID";
pub const NODE_NAME_INDEX: &str = "spec.nodeName";

/// The store's key for an object, as client-go's `MetaNamespaceKeyFunc`.
pub fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// The key for a namespaced name.
pub fn key(namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if !ns.is_empty() => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

/// Splits a key into (namespace, name).
pub fn split_key(key: &str) -> (Option<&str>, &str) {
    match key.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, key),
    }
}

/// Indexes by `metadata.namespace`.
pub fn namespace_indexer<K: Resource>() -> IndexFunc<K> {
    Arc::new(|obj: &K| obj.meta().namespace.clone().into_iter().collect())
}

/// Indexes by each owner reference's UID (controllers find their children with it).
pub fn owner_uid_indexer<K: Resource>() -> IndexFunc<K> {
    Arc::new(|obj: &K| {
        obj.meta()
            .owner_references
            .iter()
            .flatten()
            .map(|owner| owner.uid.clone())
            .collect()
    })
}

/// Indexes by the value of one label.
pub fn label_indexer<K: Resource>(label: &str) -> IndexFunc<K> {
    let label = label.to_string();
    Arc::new(move |obj: &K| {
        obj.meta()
            .labels
            .as_ref()
            .and_then(|labels| labels.get(&label).cloned())
            .into_iter()
            .collect()
    })
}

/// Indexes pods by `spec.nodeName` (unscheduled pods are not indexed).
pub fn pod_node_name_indexer() -> IndexFunc<Pod> {
    Arc::new(|pod: &Pod| {
        pod.spec
            .as_ref()
            .and_then(|spec| spec.node_name.clone())
            .filter(|node| !node.is_empty())
            .into_iter()
            .collect()
    })
}

/// What a relist changed for one key; `new: None` is a deletion the watch never showed.
pub(crate) struct Change<K> {
    pub key: String,
    pub old: Option<Arc<K>>,
    pub new: Option<Arc<K>>,
}

pub struct Store<K> {
    inner: Arc<RwLock<Inner<K>>>,
}

impl<K> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<K> {
    items: HashMap<String, Arc<K>>,
    indexers: HashMap<String, IndexFunc<K>>,
    /// index name -> indexed value -> keys
    indices: HashMap<String, HashMap<String, HashSet<String>>>,
}

impl<K> Inner<K> {
    fn unindex(&mut self, key: &str, obj: &K) {
        for (name, func) in &self.indexers {
            let Some(index) = self.indices.get_mut(name) else {
                continue;
            };
            for value in func(obj) {
                if let Some(keys) = index.get_mut(&value) {
                    keys.remove(key);
                    if keys.is_empty() {
                        index.remove(&value);
                    }
                }
            }
        }
    }

    fn index(&mut self, key: &str, obj: &K) {
        for (name, func) in &self.indexers {
            let index = self.indices.entry(name.clone()).or_default();
            for value in func(obj) {
                index.entry(value).or_default().insert(key.to_string());
            }
        }
    }
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            inner: Arc::new(RwLock::new(Inner {
                items: HashMap::new(),
                indexers: HashMap::new(),
                indices: HashMap::new(),
            })),
        }
    }
}

impl<K> Store<K> {
    // A panic while holding the lock cannot leave a half-applied change (every mutation is a few
    // map operations), so a poisoned lock is still usable.
    fn read(&self) -> RwLockReadGuard<'_, Inner<K>> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner<K>> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().items.get(key).cloned()
    }

    pub fn get_namespaced(&self, namespace: Option<&str>, name: &str) -> Option<Arc<K>> {
        self.get(&key(namespace, name))
    }

    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().items.values().cloned().collect()
    }

    pub fn keys(&self) -> Vec<String> {
        self.read().items.keys().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.read().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Objects whose `index` function yields `value`; empty for an unknown index.
    pub fn by_index(&self, index: &str, value: &str) -> Vec<Arc<K>> {
        let inner = self.read();
        inner
            .indices
            .get(index)
            .and_then(|values| values.get(value))
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| inner.items.get(k).cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Keys whose `index` function yields `value`.
    pub fn index_keys(&self, index: &str, value: &str) -> Vec<String> {
        self.read()
            .indices
            .get(index)
            .and_then(|values| values.get(value))
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Every value indexed under `index`.
    pub fn index_values(&self, index: &str) -> Vec<String> {
        self.read()
            .indices
            .get(index)
            .map(|values| values.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds indexers; existing objects are indexed at once. A name already present is replaced.
    pub fn add_indexer(&self, name: &str, func: IndexFunc<K>) {
        let mut inner = self.write();
        let mut index: HashMap<String, HashSet<String>> = HashMap::new();
        for (key, obj) in &inner.items {
            for value in func(obj) {
                index.entry(value).or_default().insert(key.clone());
            }
        }
        inner.indices.insert(name.to_string(), index);
        inner.indexers.insert(name.to_string(), func);
    }

    /// Inserts or replaces; returns the previous object. Informers keep stores current; this
    /// is public for fakes and unit tests that fill a store by hand.
    pub fn upsert(&self, key: String, obj: Arc<K>) -> Option<Arc<K>> {
        let mut inner = self.write();
        let old = inner.items.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            inner.unindex(&key, old);
        }
        inner.index(&key, &obj);
        old
    }

    /// Removes by key; returns the object (public for the same reason as [`Store::upsert`]).
    pub fn remove(&self, key: &str) -> Option<Arc<K>> {
        let mut inner = self.write();
        let old = inner.items.remove(key);
        if let Some(old) = &old {
            inner.unindex(key, old);
        }
        old
    }

    /// Swaps the whole content for a fresh list; returns what changed for each key.
    pub(crate) fn replace(&self, items: Vec<(String, Arc<K>)>) -> Vec<Change<K>> {
        let mut inner = self.write();
        let mut fresh: HashMap<String, Arc<K>> = HashMap::with_capacity(items.len());
        let mut changes = Vec::with_capacity(items.len());
        for (key, obj) in items {
            let old = inner.items.get(&key).cloned();
            changes.push(Change {
                key: key.clone(),
                old,
                new: Some(obj.clone()),
            });
            fresh.insert(key, obj);
        }
        for (key, old) in &inner.items {
            if !fresh.contains_key(key) {
                changes.push(Change {
                    key: key.clone(),
                    old: Some(old.clone()),
                    new: None,
                });
            }
        }
        inner.items = fresh;
        let names: Vec<String> = inner.indexers.keys().cloned().collect();
        for name in names {
            let Some(func) = inner.indexers.get(&name).cloned() else {
                continue;
            };
            let mut index: HashMap<String, HashSet<String>> = HashMap::new();
            for (key, obj) in &inner.items {
                for value in func(obj) {
                    index.entry(value).or_default().insert(key.clone());
                }
            }
            inner.indices.insert(name, index);
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Pod, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

    fn pod(ns: &str, name: &str, node: Option<&str>, owner: Option<&str>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                owner_references: owner.map(|uid| {
                    vec![OwnerReference {
                        uid: uid.into(),
                        ..OwnerReference::default()
                    }]
                }),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..PodSpec::default()
            }),
            ..Pod::default()
        })
    }

    fn names(mut pods: Vec<Arc<Pod>>) -> Vec<String> {
        pods.sort_by_key(|p| key_of(p.as_ref()));
        pods.iter().map(|p| key_of(p.as_ref())).collect()
    }

    #[test]
    fn indexes_follow_updates_deletes_and_replace() {
        let store: Store<Pod> = Store::default();
        store.add_indexer(NAMESPACE_INDEX, namespace_indexer());
        store.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
        store.add_indexer(OWNER_UID_INDEX, owner_uid_indexer());
        store.upsert("a/p1".into(), pod("a", "p1", Some("n1"), Some("rs1")));
        store.upsert("a/p2".into(), pod("a", "p2", None, Some("rs1")));
        store.upsert("b/p3".into(), pod("b", "p3", Some("n1"), None));
        assert_eq!(
            names(store.by_index(NODE_NAME_INDEX, "n1")),
            ["a/p1", "b/p3"]
        );
        assert_eq!(
            names(store.by_index(NAMESPACE_INDEX, "a")),
            ["a/p1", "a/p2"]
        );
        assert_eq!(
            names(store.by_index(OWNER_UID_INDEX, "rs1")),
            ["a/p1", "a/p2"]
        );

        // Moving p1 to another node moves it between index values.
        let old = store.upsert("a/p1".into(), pod("a", "p1", Some("n2"), Some("rs1")));
        assert!(old.is_some());
        assert_eq!(names(store.by_index(NODE_NAME_INDEX, "n1")), ["b/p3"]);
        assert_eq!(names(store.by_index(NODE_NAME_INDEX, "n2")), ["a/p1"]);

        store.remove("b/p3");
        assert!(store.by_index(NODE_NAME_INDEX, "n1").is_empty());
        assert!(!store
            .index_values(NODE_NAME_INDEX)
            .contains(&"n1".to_string()));

        let changes = store.replace(vec![("c/p4".into(), pod("c", "p4", Some("n1"), None))]);
        let deleted: Vec<&str> = changes
            .iter()
            .filter(|c| c.new.is_none())
            .map(|c| c.key.as_str())
            .collect();
        assert_eq!(deleted.len(), 2);
        assert_eq!(names(store.by_index(NODE_NAME_INDEX, "n1")), ["c/p4"]);
        assert!(store.by_index(OWNER_UID_INDEX, "rs1").is_empty());
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn an_indexer_added_late_indexes_what_is_there() {
        let store: Store<Pod> = Store::default();
        store.upsert("a/p1".into(), pod("a", "p1", Some("n1"), None));
        store.add_indexer("by-label", label_indexer("app"));
        store.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
        assert_eq!(names(store.by_index(NODE_NAME_INDEX, "n1")), ["a/p1"]);
        assert!(store.by_index("unknown", "x").is_empty());
        assert_eq!(split_key("a/p1"), (Some("a"), "p1"));
        assert_eq!(split_key("node1"), (None, "node1"));
    }
}
