//! Client-side request rate limiting: a token bucket of `qps` tokens a second holding at most
//! `burst`, as client-go's `flowcontrol.NewTokenBucketRateLimiter` behind `--kube-api-qps` and
//! `--kube-api-burst`. Callers reserve a token and sleep until it is theirs, so concurrent callers
//! are served in arrival order and the long-run rate never exceeds `qps`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Tokens available at `at`; negative when callers have reserved tokens not yet minted.
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// `qps <= 0` means no limit (client-go: a negative QPS disables the limiter).
    pub fn new(qps: f32, burst: u32) -> Option<TokenBucket> {
        if qps <= 0.0 || !qps.is_finite() {
            return None;
        }
        let burst = f64::from(burst.max(1));
        Some(TokenBucket {
            qps: f64::from(qps),
            burst,
            state: Mutex::new(State {
                tokens: burst,
                at: Instant::now(),
            }),
        })
    }

    /// How long the caller must wait for its token (zero when one is available now); the token is
    /// reserved either way.
    pub fn reserve(&self) -> Duration {
        let now = Instant::now();
        let Ok(mut state) = self.state.lock() else {
            return Duration::ZERO;
        };
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.qps).min(self.burst);
        state.at = now;
        state.tokens -= 1.0;
        if state.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.tokens / self.qps)
        }
    }

    /// Waits for a token; returns how long it waited (for the rate-limiter latency metric).
    pub async fn acquire(&self) -> Duration {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn burst_passes_then_requests_are_paced_at_qps() {
        let Some(bucket) = TokenBucket::new(10.0, 5) else {
            panic!("a positive qps gives a limiter");
        };
        for _ in 0..5 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        // The sixth and seventh wait one and two token periods (100 ms each at 10 qps).
        assert_eq!(bucket.reserve(), Duration::from_millis(100));
        assert_eq!(bucket.reserve(), Duration::from_millis(200));
        tokio::time::advance(Duration::from_secs(10)).await;
        // Refilled, but never beyond the burst.
        for _ in 0..5 {
            assert_eq!(bucket.reserve(), Duration::ZERO);
        }
        assert!(bucket.reserve() > Duration::ZERO);
    }

    #[test]
    fn non_positive_qps_disables_the_limiter() {
        assert!(TokenBucket::new(0.0, 10).is_none());
        assert!(TokenBucket::new(-1.0, 10).is_none());
        assert!(TokenBucket::new(f32::NAN, 10).is_none());
    }
}
