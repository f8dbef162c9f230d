//! Upstream's `UIDTrackingControllerExpectations` on top of the framework's counting
//! [`Expectations`]: deletions are expected per pod key, so the same pod observed twice (once
//! when its deletionTimestamp appears, once when it is gone) lowers the count only once. With
//! bare counts, that double observation would satisfy an owner early and let it delete a
//! replacement victim while the first deletions are still in flight.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::framework::expectations::Expectations;

#[derive(Default)]
pub struct PodExpectations {
    counts: Expectations,
    /// Owner key -> pod keys whose deletion is still expected.
    deleting: Mutex<HashMap<String, HashSet<String>>>,
}

impl PodExpectations {
    pub fn new() -> PodExpectations {
        PodExpectations::default()
    }

    fn deleting(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn satisfied(&self, owner: &str) -> bool {
        self.counts.satisfied(owner)
    }

    pub fn expect_creations(&self, owner: &str, count: usize) {
        self.deleting().remove(owner);
        self.counts
            .expect(owner, i64::try_from(count).unwrap_or(i64::MAX), 0);
    }

    pub fn expect_deletions(&self, owner: &str, pods: impl IntoIterator<Item = String>) {
        let pods: HashSet<String> = pods.into_iter().collect();
        self.counts
            .expect(owner, 0, i64::try_from(pods.len()).unwrap_or(i64::MAX));
        self.deleting().insert(owner.to_string(), pods);
    }

    pub fn creation_observed(&self, owner: &str) {
        self.counts.creation_observed(owner);
    }

    /// Lowers the deletions expected of `owner` if `pod` is one of them (once per pod).
    pub fn deletion_observed(&self, owner: &str, pod: &str) {
        let tracked = self
            .deleting()
            .get_mut(owner)
            .is_some_and(|pods| pods.remove(pod));
        if tracked {
            self.counts.deletion_observed(owner);
        }
    }

    pub fn delete(&self, owner: &str) {
        self.deleting().remove(owner);
        self.counts.delete(owner);
    }

    /// (pending creations, pending deletions), for tests and logs.
    #[cfg(test)]
    pub fn pending(&self, owner: &str) -> Option<(i64, i64)> {
        self.counts.pending(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_observed_twice_counts_once() {
        let e = PodExpectations::new();
        e.expect_deletions("ns/rs", ["ns/a".to_string(), "ns/b".to_string()]);
        assert!(!e.satisfied("ns/rs"));
        // Graceful deletion: seen with a deletionTimestamp, then gone.
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        assert!(!e.satisfied("ns/rs"), "b's deletion is still pending");
        assert_eq!(e.pending("ns/rs"), Some((0, 1)));
        // A pod we did not delete does not count.
        e.deletion_observed("ns/rs", "ns/other");
        assert!(!e.satisfied("ns/rs"));
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
    }

    #[test]
    fn creations_count_down() {
        let e = PodExpectations::new();
        assert!(e.satisfied("ns/rs"), "nothing expected yet");
        e.expect_creations("ns/rs", 2);
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.delete("ns/rs");
        assert_eq!(e.pending("ns/rs"), None);
    }
}
