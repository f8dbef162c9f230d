//! The answers of the delegated authenticator and authorizer, kept for a while so that a
//! scraper polling `/metrics` every few seconds does not cost a TokenReview and a
//! SubjectAccessReview each time (upstream's token cache and the webhook authorizer's LRU).
//!
//! Entries expire after their own TTL (a TTL of zero caches nothing); when the cache is full the
//! expired entries go first, then the one closest to expiring. Time is tokio's, so tests can
//! pause and advance it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// How many answers each cache keeps (upstream: 32 stripes x 128 tokens; 8192 reviews).
pub(crate) const TOKEN_CACHE_SIZE: usize = 4096;
pub(crate) const REVIEW_CACHE_SIZE: usize = 8192;

pub(crate) struct TtlCache<V> {
    entries: Mutex<HashMap<String, (V, Instant)>>,
    capacity: usize,
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn new(capacity: usize) -> TtlCache<V> {
        TtlCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    /// The live answer for `key`, if any.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match entries.get(key) {
            Some((value, expires)) if *expires > now => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, key: String, value: V, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, (_, expires))| *expires)
                    .map(|(k, _)| k.clone());
                if let Some(soonest) = soonest {
                    entries.remove(&soonest);
                }
            }
        }
        entries.insert(key, (value, now + ttl));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn entries_live_for_their_ttl() {
        let cache = TtlCache::new(10);
        cache.insert("allowed".into(), true, Duration::from_secs(10));
        cache.insert("denied".into(), false, Duration::from_secs(2));
        assert_eq!(cache.get("allowed"), Some(true));
        assert_eq!(cache.get("denied"), Some(false));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get("denied"), None, "expired at its TTL");
        assert_eq!(cache.get("allowed"), Some(true));
        tokio::time::advance(Duration::from_millis(7_999)).await;
        assert_eq!(cache.get("allowed"), Some(true), "1ms before its TTL");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(cache.get("allowed"), None);
        assert_eq!(cache.len(), 0, "expired entries are dropped when read");
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_ttl_caches_nothing() {
        let cache = TtlCache::new(10);
        cache.insert("k".into(), 1, Duration::ZERO);
        assert_eq!(cache.get("k"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_expired_then_soonest_to_expire() {
        let cache = TtlCache::new(2);
        cache.insert("short".into(), 1, Duration::from_secs(1));
        cache.insert("long".into(), 2, Duration::from_secs(100));
        cache.insert("newer".into(), 3, Duration::from_secs(50));
        assert_eq!(cache.get("short"), None, "closest to expiring went first");
        assert_eq!(cache.get("long"), Some(2));
        assert_eq!(cache.get("newer"), Some(3));

        tokio::time::advance(Duration::from_secs(60)).await;
        cache.insert("fresh".into(), 4, Duration::from_secs(10));
        assert_eq!(
            cache.get("long"),
            Some(2),
            "live entries stay when expired ones make room"
        );
        assert_eq!(cache.get("fresh"), Some(4));
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn replacing_a_key_in_a_full_cache_evicts_nothing() {
        let cache = TtlCache::new(2);
        cache.insert("a".into(), 1, Duration::from_secs(10));
        cache.insert("b".into(), 2, Duration::from_secs(10));
        cache.insert("a".into(), 3, Duration::from_secs(10));
        assert_eq!(cache.get("a"), Some(3));
        assert_eq!(cache.get("b"), Some(2));
    }
}
