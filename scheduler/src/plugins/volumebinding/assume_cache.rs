//! An overlay of assumed objects on an informer cache (upstream's `assumecache`): Reserve
//! records "this PV is now bound to that claim" in memory before the API write, so the next
//! pods do not pick the same volume. An assumed object is seen only while the informer still
//! holds the version it was made from; once a newer object arrives the assumption is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use client::informer::store::{key_of, Store};
use kube::core::Resource;

pub struct AssumeCache<K> {
    store: Store<K>,
    assumed: Mutex<HashMap<String, Arc<K>>>,
}

fn rv<K: Resource>(obj: &K) -> &str {
    obj.meta().resource_version.as_deref().unwrap_or("")
}

impl<K: Resource> AssumeCache<K> {
    pub fn new(store: Store<K>) -> AssumeCache<K> {
        AssumeCache {
            store,
            assumed: Mutex::new(HashMap::new()),
        }
    }

    fn assumed(&self) -> MutexGuard<'_, HashMap<String, Arc<K>>> {
        // Every critical section is one map operation: a poisoned lock holds no half-done change.
        self.assumed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn overlay(&self, obj: Arc<K>) -> Arc<K> {
        let key = key_of(obj.as_ref());
        match self.assumed().get(&key) {
            Some(a) if rv(a.as_ref()) == rv(obj.as_ref()) => a.clone(),
            _ => obj,
        }
    }

    /// The assumed object if the informer still has the version it was made from, else the
    /// informer's.
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.store.get(key).map(|obj| self.overlay(obj))
    }

    /// The informer's version, ignoring assumptions (what the apiserver last told us).
    pub fn get_api(&self, key: &str) -> Option<Arc<K>> {
        self.store.get(key)
    }

    /// Every object, assumptions applied.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.store
            .list()
            .into_iter()
            .map(|obj| self.overlay(obj))
            .collect()
    }

    /// Records `obj` as the current state; its resourceVersion must be the informer's.
    pub fn assume(&self, obj: K) -> Result<(), String> {
        let key = key_of(&obj);
        let Some(stored) = self.store.get(&key) else {
            return Err(format!("{key:?} not found"));
        };
        if rv(stored.as_ref()) != rv(&obj) {
            return Err(format!(
                "{key:?} is out of sync (stored: {}, assume: {})",
                rv(stored.as_ref()),
                rv(&obj)
            ));
        }
        self.assumed().insert(key, Arc::new(obj));
        Ok(())
    }

    /// Drops the assumption made from `obj`'s version, if it is still there.
    pub fn restore(&self, obj: &K) {
        let key = key_of(obj);
        let mut assumed = self.assumed();
        if assumed.get(&key).is_some_and(|a| rv(a.as_ref()) == rv(obj)) {
            assumed.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolume;
    use serde_json::json;

    fn pv(rv: &str, claim: Option<&str>) -> PersistentVolume {
        let mut v = json!({"metadata": {"name": "pv1", "resourceVersion": rv}, "spec": {}});
        if let Some(c) = claim {
            v["spec"]["claimRef"] = json!({"name": c, "namespace": "ns"});
        }
        serde_json::from_value(v).unwrap()
    }

    fn claim_of(p: &PersistentVolume) -> Option<String> {
        p.spec.as_ref()?.claim_ref.as_ref()?.name.clone()
    }

    #[test]
    fn assumptions_overlay_until_the_informer_moves_on() {
        let store = Store::default();
        store.upsert("pv1".into(), Arc::new(pv("5", None)));
        let cache = AssumeCache::new(store.clone());
        cache.assume(pv("5", Some("data"))).unwrap();
        assert_eq!(
            cache.get("pv1").and_then(|p| claim_of(&p)),
            Some("data".into())
        );
        assert_eq!(cache.get_api("pv1").and_then(|p| claim_of(&p)), None);
        assert_eq!(cache.list().len(), 1);
        // The apiserver's newer version replaces the assumption.
        store.upsert("pv1".into(), Arc::new(pv("6", Some("other"))));
        assert_eq!(
            cache.get("pv1").and_then(|p| claim_of(&p)),
            Some("other".into())
        );
        // An assumption made from a stale version is refused.
        assert!(cache.assume(pv("5", Some("data"))).is_err());
    }

    #[test]
    fn restore_drops_the_assumption() {
        let store = Store::default();
        store.upsert("pv1".into(), Arc::new(pv("5", None)));
        let cache = AssumeCache::new(store);
        let assumed = pv("5", Some("data"));
        cache.assume(assumed.clone()).unwrap();
        cache.restore(&assumed);
        assert_eq!(cache.get("pv1").and_then(|p| claim_of(&p)), None);
        assert!(cache.assume(pv("5", None)).is_ok());
    }
}
