//! The backoff of failed daemon pods per node, state the controller keeps between syncs (its
//! expectations are the framework's `UidTrackingExpectations`).
//!
//! The backoff follows upstream's `failedPodsBackoff` (`flowcontrol.Backoff` from 1s doubling to
//! 15 minutes, keyed by DaemonSet UID, observed generation and node), so a kubelet that keeps
//! rejecting a daemon pod is not answered with a hot create/delete loop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    last: Instant,
}

/// upstream `flowcontrol.Backoff` as the DaemonSet controller uses it.
#[derive(Default)]
pub struct FailedPodBackoff {
    entries: Mutex<HashMap<String, Entry>>,
}

impl FailedPodBackoff {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The remaining wait when `key` was acted on less than its delay ago
    /// (`IsInBackOffSinceUpdate`), else `None`.
    pub fn in_backoff(&self, key: &str, now: Instant) -> Option<Duration> {
        let entries = self.entries();
        let entry = entries.get(key)?;
        let since = now.saturating_duration_since(entry.last);
        (since < entry.delay).then(|| entry.delay - since)
    }

    /// Records an action on `key` now and doubles its delay (`Next`); an entry idle for twice
    /// the maximum starts over.
    pub fn next(&self, key: &str, now: Instant) {
        let mut entries = self.entries();
        let delay = match entries.get(key) {
            Some(e) if now.saturating_duration_since(e.last) <= 2 * BACKOFF_MAX => {
                (e.delay * 2).min(BACKOFF_MAX)
            }
            _ => BACKOFF_INITIAL,
        };
        entries.insert(key.to_string(), Entry { delay, last: now });
    }

    /// Drops entries idle for twice the maximum delay (upstream's `GC`).
    pub fn gc(&self, now: Instant) {
        self.entries()
            .retain(|_, e| now.saturating_duration_since(e.last) <= 2 * BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_resets() {
        let b = FailedPodBackoff::default();
        let t0 = Instant::now();
        assert_eq!(b.in_backoff("k", t0), None, "first failure acts at once");
        b.next("k", t0);
        assert_eq!(b.in_backoff("k", t0), Some(BACKOFF_INITIAL));
        let t1 = t0 + BACKOFF_INITIAL;
        assert_eq!(b.in_backoff("k", t1), None);
        b.next("k", t1);
        assert_eq!(
            b.in_backoff("k", t1 + Duration::from_millis(500)),
            Some(Duration::from_millis(1500))
        );
        let later = t1 + 3 * BACKOFF_MAX;
        b.gc(later);
        b.next("k", later);
        assert_eq!(b.in_backoff("k", later), Some(BACKOFF_INITIAL));
    }
}
