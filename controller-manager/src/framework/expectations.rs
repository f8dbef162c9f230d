//! Controller expectations (upstream's `ControllerExpectations`): a controller that just created
//! or deleted N pods for an owner must not act on that owner again until its informer has seen
//! those N changes, or a slow informer makes it create the same pods twice. Each owner key holds
//! the creations and deletions still expected; the informer's add/delete handlers lower them.
//! Expectations older than five minutes count as satisfied, so a lost event cannot wedge an
//! owner forever (upstream's `ExpectationsTimeout`).
//!
//! [`UidTrackingExpectations`] (upstream's `UIDTrackingControllerExpectations`) adds the pods
//! whose deletion is expected, so the same pod observed twice (once when its deletionTimestamp
//! appears, once when it is gone) lowers the count only once. With bare counts that double
//! observation would satisfy an owner early and let it delete a replacement victim while the
//! first deletions are still in flight.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
struct Expected {
    add: i64,
    del: i64,
    set_at: Instant,
}

#[derive(Debug, Default)]
pub struct Expectations {
    by_key: Mutex<HashMap<String, Expected>>,
}

impl Expectations {
    pub fn new() -> Expectations {
        Expectations::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Expected>) -> R) -> R {
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut map)
    }

    /// Whether the controller may act on `key`: nothing is pending, nothing was ever recorded,
    /// or the record expired.
    pub fn satisfied(&self, key: &str) -> bool {
        self.with(|map| match map.get(key) {
            None => true,
            Some(e) => (e.add <= 0 && e.del <= 0) || e.set_at.elapsed() > EXPECTATIONS_TIMEOUT,
        })
    }

    /// Replaces the expectations of `key` (before issuing creates or deletes).
    pub fn expect(&self, key: &str, add: i64, del: i64) {
        self.with(|map| {
            map.insert(
                key.to_string(),
                Expected {
                    add,
                    del,
                    set_at: Instant::now(),
                },
            );
        });
    }

    /// One expected creation was observed (or will never happen: a create that failed).
    pub fn creation_observed(&self, key: &str) {
        self.with(|map| {
            if let Some(e) = map.get_mut(key) {
                e.add -= 1;
            }
        });
    }

    /// One expected deletion was observed (or will never happen).
    pub fn deletion_observed(&self, key: &str) {
        self.with(|map| {
            if let Some(e) = map.get_mut(key) {
                e.del -= 1;
            }
        });
    }

    /// Forgets `key` (its owner was deleted).
    pub fn delete(&self, key: &str) {
        self.with(|map| {
            map.remove(key);
        });
    }

    /// (pending creations, pending deletions), for tests and logs.
    pub fn pending(&self, key: &str) -> Option<(i64, i64)> {
        self.with(|map| map.get(key).map(|e| (e.add, e.del)))
    }
}

/// Counting expectations plus the keys of the pods whose deletion is expected.
#[derive(Default)]
pub struct UidTrackingExpectations {
    counts: Expectations,
    /// Owner key -> pod keys whose deletion is still expected.
    deleting: Mutex<HashMap<String, HashSet<String>>>,
}

impl UidTrackingExpectations {
    pub fn new() -> UidTrackingExpectations {
        UidTrackingExpectations::default()
    }

    fn deleting(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashSet<String>>> {
        self.deleting.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn satisfied(&self, owner: &str) -> bool {
        self.counts.satisfied(owner)
    }

    /// Replaces the expectations of `owner` before a round of creations and deletions
    /// (`deletions`: the keys of the pods about to be deleted).
    pub fn expect(
        &self,
        owner: &str,
        creations: usize,
        deletions: impl IntoIterator<Item = String>,
    ) {
        let dels: HashSet<String> = deletions.into_iter().collect();
        self.counts.expect(
            owner,
            i64::try_from(creations).unwrap_or(i64::MAX),
            i64::try_from(dels.len()).unwrap_or(i64::MAX),
        );
        self.deleting().insert(owner.to_string(), dels);
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

    /// Forgets `owner` (it was deleted).
    pub fn delete(&self, owner: &str) {
        self.deleting().remove(owner);
        self.counts.delete(owner);
    }

    /// (pending creations, pending deletions), for tests and logs.
    pub fn pending(&self, owner: &str) -> Option<(i64, i64)> {
        self.counts.pending(owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pod_observed_twice_counts_once() {
        let e = UidTrackingExpectations::new();
        assert!(e.satisfied("ns/rs"), "nothing expected yet");
        e.expect("ns/rs", 1, ["ns/a".to_string(), "ns/b".to_string()]);
        e.creation_observed("ns/rs");
        // Graceful deletion: seen with a deletionTimestamp, then gone.
        e.deletion_observed("ns/rs", "ns/a");
        e.deletion_observed("ns/rs", "ns/a");
        // A pod we did not delete does not count.
        e.deletion_observed("ns/rs", "ns/other");
        assert_eq!(e.pending("ns/rs"), Some((0, 1)));
        assert!(!e.satisfied("ns/rs"), "b's deletion is still pending");
        e.deletion_observed("ns/rs", "ns/b");
        assert!(e.satisfied("ns/rs"));
        e.delete("ns/rs");
        assert_eq!(e.pending("ns/rs"), None);
    }

    #[test]
    fn new_expectations_replace_the_tracked_deletions() {
        let e = UidTrackingExpectations::new();
        e.expect("ns/rs", 0, ["ns/a".to_string()]);
        e.expect("ns/rs", 2, []);
        e.deletion_observed("ns/rs", "ns/a");
        assert_eq!(e.pending("ns/rs"), Some((2, 0)), "a is no longer expected");
        e.creation_observed("ns/rs");
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
    }

    #[tokio::test(start_paused = true)]
    async fn expectations_gate_until_observed_or_expired() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/rs"), "nothing recorded: act");
        e.expect("ns/rs", 2, 0);
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(!e.satisfied("ns/rs"));
        e.creation_observed("ns/rs");
        assert!(e.satisfied("ns/rs"));
        e.expect("ns/rs", 0, 3);
        assert!(!e.satisfied("ns/rs"));
        tokio::time::advance(EXPECTATIONS_TIMEOUT + Duration::from_secs(1)).await;
        assert!(
            e.satisfied("ns/rs"),
            "expired expectations do not wedge the owner"
        );
        e.delete("ns/rs");
        assert_eq!(e.pending("ns/rs"), None);
    }
}
