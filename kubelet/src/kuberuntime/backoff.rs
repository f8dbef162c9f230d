//! Per-container restart back-off (upstream's `flowcontrol.Backoff` as the kubelet uses it):
//! 10 s doubling to 5 min, forgotten after 10 min without a restart; also used for image pulls.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long since its last back-off starts over at `INITIAL`.
pub const RESET_AFTER: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    /// When the current delay started.
    last: Instant,
}

#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(INITIAL, MAX)
    }
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Backoff {
        Backoff {
            initial,
            max,
            entries: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `key` is still backing off at `now` (counted from `since`, when the container
    /// last finished), and for how long in all.
    pub fn in_backoff(&self, key: &str, since: Instant, now: Instant) -> Option<Duration> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        let from = since.max(entry.last);
        (now < from + entry.delay).then_some(entry.delay)
    }

    /// Records a restart of `key` at `now`: the delay doubles, up to the maximum, unless the
    /// last one is long past.
    pub fn next(&self, key: &str, now: Instant) {
        let mut entries = self.lock();
        let entry = entries.entry(key.to_string()).or_insert(Entry {
            delay: Duration::ZERO,
            last: now,
        });
        if entry.delay.is_zero() || now.duration_since(entry.last) > RESET_AFTER.max(self.max * 2) {
            entry.delay = self.initial;
        } else {
            entry.delay = (entry.delay * 2).min(self.max);
        }
        entry.last = now;
    }

    /// The delay `key` is at, if any.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.lock().get(key).map(|e| e.delay)
    }

    pub fn reset(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Forgets every key with `prefix` (a pod that is gone).
    pub fn forget_prefix(&self, prefix: &str) {
        self.lock().retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_cap_and_reset_after_quiet() {
        let b = Backoff::default();
        let t0 = Instant::now();
        assert!(b.in_backoff("c", t0, t0).is_none());
        b.next("c", t0);
        assert_eq!(
            b.in_backoff("c", t0, t0 + Duration::from_secs(5)),
            Some(INITIAL)
        );
        assert!(b
            .in_backoff("c", t0, t0 + Duration::from_secs(11))
            .is_none());
        let mut t = t0;
        for want in [20, 40, 80, 160, 300, 300] {
            t += Duration::from_secs(1);
            b.next("c", t);
            assert_eq!(b.delay("c"), Some(Duration::from_secs(want)));
        }
        // Quiet for longer than the reset period: back to 10 s.
        b.next("c", t + Duration::from_secs(601));
        assert_eq!(b.delay("c"), Some(INITIAL));
        b.forget_prefix("c");
        assert_eq!(b.delay("c"), None);
    }
}
