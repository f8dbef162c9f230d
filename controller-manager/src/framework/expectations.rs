//! Controller expectations (upstream's `ControllerExpectations`): a controller that just created
//! or deleted N pods for an owner must not act on that owner again until its informer has seen
//! those N changes, or a slow informer makes it create the same pods twice. Each owner key holds
//! the creations and deletions still expected; the informer's add/delete handlers lower them.
//! Expectations older than five minutes count as satisfied, so a lost event cannot wedge an
//! owner forever (upstream's `ExpectationsTimeout`).

use std::collections::HashMap;
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

#[cfg(test)]
mod tests {
    use super::*;

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
