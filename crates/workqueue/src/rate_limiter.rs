//! Rate limiters that decide how long a failed key waits before it is retried: per-item
//! exponential backoff, an overall token bucket, and the maximum of several.
//!
//! Each limiter owns its own lock; the queue calls `when` outside its own lock.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Decides the delay before an item is re-added by `Queue::add_rate_limited`.
pub trait RateLimiter<T>: Send + Sync {
    /// How long `item` must wait now; counts as one more failure for per-item limiters.
    fn when(&self, item: &T) -> Duration;
    /// Stops tracking `item` (its failure count goes back to zero).
    fn forget(&self, item: &T);
    /// How many times `item` has been requeued since the last `forget`.
    fn num_requeues(&self, item: &T) -> u32;
}

impl<T, R: RateLimiter<T> + ?Sized> RateLimiter<T> for Box<R> {
    fn when(&self, item: &T) -> Duration {
        (**self).when(item)
    }
    fn forget(&self, item: &T) {
        (**self).forget(item)
    }
    fn num_requeues(&self, item: &T) -> u32 {
        (**self).num_requeues(item)
    }
}

fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    // Every update under these locks is a single map or number write, so a poisoned lock
    // still guards consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `base * 2^failures`, capped at `max`: the delay doubles on each `when` for the same item
/// until `forget`.
pub struct ItemExponentialFailureRateLimiter<T> {
    failures: Mutex<HashMap<T, u32>>,
    base: Duration,
    max: Duration,
}

impl<T: Eq + Hash + Clone + Send + Sync> ItemExponentialFailureRateLimiter<T> {
    pub fn new(base: Duration, max: Duration) -> Self {
        ItemExponentialFailureRateLimiter {
            failures: Mutex::new(HashMap::new()),
            base,
            max,
        }
    }
}

impl<T: Eq + Hash + Clone + Send + Sync> RateLimiter<T> for ItemExponentialFailureRateLimiter<T> {
    fn when(&self, item: &T) -> Duration {
        let exp = {
            let mut failures = lock(&self.failures);
            let count = failures.entry(item.clone()).or_insert(0);
            let exp = *count;
            *count = count.saturating_add(1);
            exp
        };
        // 2^exp overflows u32 at 32, and base * 2^exp overflows Duration long before 2^64;
        // both overflows mean "longer than any sane max", so they yield max.
        let factor = 2u32.checked_pow(exp);
        match factor.and_then(|f| self.base.checked_mul(f)) {
            Some(d) if d <= self.max => d,
            _ => self.max,
        }
    }

    fn forget(&self, item: &T) {
        lock(&self.failures).remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        lock(&self.failures).get(item).copied().unwrap_or(0)
    }
}

/// Retries quickly (`fast`) for the first `max_fast_attempts` failures of an item, then slowly.
pub struct ItemFastSlowRateLimiter<T> {
    failures: Mutex<HashMap<T, u32>>,
    fast: Duration,
    slow: Duration,
    max_fast_attempts: u32,
}

impl<T: Eq + Hash + Clone + Send + Sync> ItemFastSlowRateLimiter<T> {
    pub fn new(fast: Duration, slow: Duration, max_fast_attempts: u32) -> Self {
        ItemFastSlowRateLimiter {
            failures: Mutex::new(HashMap::new()),
            fast,
            slow,
            max_fast_attempts,
        }
    }
}

impl<T: Eq + Hash + Clone + Send + Sync> RateLimiter<T> for ItemFastSlowRateLimiter<T> {
    fn when(&self, item: &T) -> Duration {
        let mut failures = lock(&self.failures);
        let count = failures.entry(item.clone()).or_insert(0);
        *count = count.saturating_add(1);
        if *count <= self.max_fast_attempts {
            self.fast
        } else {
            self.slow
        }
    }

    fn forget(&self, item: &T) {
        lock(&self.failures).remove(item);
    }

    fn num_requeues(&self, item: &T) -> u32 {
        lock(&self.failures).get(item).copied().unwrap_or(0)
    }
}

/// Delays longer than this are treated as "never" (an unusable bucket); keeping them finite
/// means deadline arithmetic cannot overflow.
pub(crate) const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// An overall token bucket shared by every item: `burst` tokens, refilled at `qps` per second.
/// Each `when` takes a token, going into debt when empty, so the n-th caller past the burst
/// waits n/qps (the reservation semantics of golang.org/x/time/rate).
pub struct BucketRateLimiter {
    state: Mutex<Bucket>,
    qps: f64,
    burst: f64,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

impl BucketRateLimiter {
    pub fn new(qps: f64, burst: u32) -> Self {
        BucketRateLimiter {
            state: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Instant::now(),
            }),
            qps,
            burst: f64::from(burst),
        }
    }
}

impl<T> RateLimiter<T> for BucketRateLimiter {
    fn when(&self, _item: &T) -> Duration {
        if self.qps.is_infinite() && self.qps > 0.0 {
            return Duration::ZERO;
        }
        let now = Instant::now();
        let mut b = lock(&self.state);
        let qps = if self.qps.is_nan() {
            0.0
        } else {
            self.qps.max(0.0)
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * qps).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Duration::ZERO;
        }
        if qps == 0.0 {
            // No refill: nothing beyond the burst is ever allowed (x/time/rate returns an
            // infinite delay here); the debt is not taken so the bucket stays as it was.
            return FAR_FUTURE;
        }
        b.tokens -= 1.0;
        Duration::try_from_secs_f64(-b.tokens / qps)
            .unwrap_or(FAR_FUTURE)
            .min(FAR_FUTURE)
    }

    fn forget(&self, _item: &T) {}

    fn num_requeues(&self, _item: &T) -> u32 {
        0
    }
}

/// The longest delay (and largest requeue count) of several limiters; `forget` forgets in all.
pub struct MaxOfRateLimiter<T> {
    limiters: Vec<Box<dyn RateLimiter<T>>>,
}

impl<T> MaxOfRateLimiter<T> {
    pub fn new(limiters: Vec<Box<dyn RateLimiter<T>>>) -> Self {
        MaxOfRateLimiter { limiters }
    }
}

impl<T> RateLimiter<T> for MaxOfRateLimiter<T> {
    fn when(&self, item: &T) -> Duration {
        // Every limiter is asked (not short-circuited) so each records the failure.
        self.limiters
            .iter()
            .map(|l| l.when(item))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn forget(&self, item: &T) {
        for l in &self.limiters {
            l.forget(item);
        }
    }

    fn num_requeues(&self, item: &T) -> u32 {
        self.limiters
            .iter()
            .map(|l| l.num_requeues(item))
            .max()
            .unwrap_or(0)
    }
}

/// client-go's `DefaultControllerRateLimiter`: per-item exponential backoff from 5 ms to
/// 1000 s, and an overall bucket of 10 qps with a burst of 100 (which only matters on massive
/// requeues).
pub fn default_controller_rate_limiter<T>() -> MaxOfRateLimiter<T>
where
    T: Eq + Hash + Clone + Send + Sync + 'static,
{
    MaxOfRateLimiter::new(vec![
        Box::new(ItemExponentialFailureRateLimiter::new(
            Duration::from_millis(5),
            Duration::from_secs(1000),
        )),
        Box::new(BucketRateLimiter::new(10.0, 100)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_grows_caps_and_resets() {
        let l = ItemExponentialFailureRateLimiter::new(
            Duration::from_millis(5),
            Duration::from_secs(1),
        );
        let want = [5u64, 10, 20, 40, 80, 160, 320, 640, 1000, 1000];
        for (i, ms) in want.iter().enumerate() {
            assert_eq!(l.when(&"a"), Duration::from_millis(*ms), "failure {i}");
            assert_eq!(l.num_requeues(&"a"), u32::try_from(i + 1).unwrap_or(0));
        }
        // Another item has its own count.
        assert_eq!(l.when(&"b"), Duration::from_millis(5));
        l.forget(&"a");
        assert_eq!(l.num_requeues(&"a"), 0);
        assert_eq!(l.when(&"a"), Duration::from_millis(5));
        assert_eq!(l.num_requeues(&"b"), 1);
    }

    #[test]
    fn exponential_backoff_never_overflows() {
        let l = ItemExponentialFailureRateLimiter::new(Duration::from_millis(1), Duration::MAX);
        let mut last = Duration::ZERO;
        for _ in 0..200 {
            let d = l.when(&1u8);
            assert!(d >= last, "backoff must not shrink: {d:?} < {last:?}");
            last = d;
        }
        assert_eq!(last, Duration::MAX);
        let capped =
            ItemExponentialFailureRateLimiter::new(Duration::from_secs(1), Duration::from_secs(60));
        for _ in 0..100 {
            assert!(capped.when(&1u8) <= Duration::from_secs(60));
        }
    }

    #[test]
    fn fast_slow() {
        let l = ItemFastSlowRateLimiter::new(Duration::from_millis(5), Duration::from_secs(10), 3);
        let got: Vec<Duration> = (0..5).map(|_| l.when(&"x")).collect();
        let f = Duration::from_millis(5);
        let s = Duration::from_secs(10);
        assert_eq!(got, vec![f, f, f, s, s]);
        assert_eq!(l.num_requeues(&"x"), 5);
        l.forget(&"x");
        assert_eq!(l.when(&"x"), f);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_lets_burst_through_then_paces_at_qps() {
        let l = BucketRateLimiter::new(10.0, 100);
        for i in 0..100 {
            assert_eq!(
                RateLimiter::<u32>::when(&l, &i),
                Duration::ZERO,
                "token {i}"
            );
        }
        // In debt: each further caller waits one more 1/qps.
        for n in 1..=5u32 {
            let d = RateLimiter::<u32>::when(&l, &0);
            assert!(
                close(d, Duration::from_millis(100) * n),
                "caller {n}: {d:?}"
            );
        }
        // After 1s, 10 tokens came back: the debt of 5 is paid and 5 are free, so five callers
        // pass at once and the sixth waits 1/qps again.
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..5 {
            assert_eq!(RateLimiter::<u32>::when(&l, &0), Duration::ZERO);
        }
        let d = RateLimiter::<u32>::when(&l, &0);
        assert!(close(d, Duration::from_millis(100)), "{d:?}");
        assert_eq!(RateLimiter::<u32>::num_requeues(&l, &0), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refill_is_capped_at_burst() {
        let l = BucketRateLimiter::new(1.0, 2);
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(RateLimiter::<()>::when(&l, &()), Duration::ZERO);
        assert_eq!(RateLimiter::<()>::when(&l, &()), Duration::ZERO);
        assert!(close(
            RateLimiter::<()>::when(&l, &()),
            Duration::from_secs(1)
        ));
    }

    #[test]
    fn bucket_with_zero_qps_allows_only_burst() {
        let l = BucketRateLimiter::new(0.0, 1);
        assert_eq!(RateLimiter::<()>::when(&l, &()), Duration::ZERO);
        assert_eq!(RateLimiter::<()>::when(&l, &()), FAR_FUTURE);
        let inf = BucketRateLimiter::new(f64::INFINITY, 0);
        assert_eq!(RateLimiter::<()>::when(&inf, &()), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn max_of_takes_the_longest_and_forgets_everywhere() {
        let l = default_controller_rate_limiter::<&str>();
        assert_eq!(l.when(&"a"), Duration::from_millis(5));
        assert_eq!(l.when(&"a"), Duration::from_millis(10));
        assert_eq!(l.num_requeues(&"a"), 2);
        // Drain the rest of the bucket's burst (98 left) through another item.
        for _ in 0..98 {
            let _ = l.when(&"b");
        }
        // Bucket debt (100ms) now beats item c's first backoff (5ms).
        assert!(close(l.when(&"c"), Duration::from_millis(100)));
        l.forget(&"a");
        assert_eq!(l.num_requeues(&"a"), 0);
    }

    fn close(a: Duration, b: Duration) -> bool {
        a.abs_diff(b) < Duration::from_micros(10)
    }
}
