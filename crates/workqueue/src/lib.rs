//! Work queues with client-go `util/workqueue` semantics, on tokio.
//!
//! A controller's event handlers [`Queue::add`] keys; N workers loop on [`Queue::get`],
//! reconcile the key, then call [`Queue::done`] (and [`Queue::forget`] on success or
//! [`Queue::add_rate_limited`] on failure).
//!
//! The contract:
//! - **One worker per key.** A key is never handed to two workers at once: while it is being
//!   processed (between `get` and `done`), adding it again only marks it dirty, and `done`
//!   queues it again.
//! - **At least once after the last add.** Every key added is handed out at least once after
//!   its last `add` (adds are de-duplicated, so ten adds before a `get` mean one run).
//! - **Delayed adds.** [`Queue::add_after`] adds a key once its delay has passed; a repeated
//!   `add_after` of a waiting key keeps the earliest time. [`Queue::add_rate_limited`] takes
//!   the delay from the queue's [`RateLimiter`] (by default per-key exponential backoff
//!   5 ms..1000 s combined with an overall 10 qps / burst 100 bucket).
//! - **Shutdown.** After [`Queue::shut_down`] adds are ignored, delayed keys are dropped, keys
//!   already queued are still handed out, and then every `get` returns `None` (all waiters at
//!   once). [`Queue::shut_down_with_drain`] does the same and also waits until every key handed
//!   out has been `done`.
//!
//! Metrics use client-go's names in a [`metrics::Registry`] with the label `name`:
//! `workqueue_depth`, `workqueue_adds_total`, `workqueue_queue_duration_seconds`,
//! `workqueue_work_duration_seconds`, `workqueue_unfinished_work_seconds`,
//! `workqueue_longest_running_processor_seconds`, `workqueue_retries_total`. The two
//! unfinished-work gauges are refreshed on every `get` and `done` rather than by a background
//! ticker.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let queue: workqueue::Queue<String> = workqueue::Queue::new("example");
//! queue.add("default/web".to_string());
//! queue.add("default/web".to_string()); // de-duplicated
//! let worker = tokio::spawn({
//!     let queue = queue.clone();
//!     async move {
//!         while let Some(key) = queue.get().await {
//!             let ok = !key.is_empty(); // reconcile(key) here
//!             if ok { queue.forget(&key) } else { queue.add_rate_limited(key.clone()) }
//!             queue.done(&key);
//!         }
//!     }
//! });
//! queue.shut_down_with_drain().await;
//! # let _ = worker.await;
//! # }
//! ```

mod delaying;
mod queue;
mod queue_metrics;
mod rate_limiter;

pub use queue::Queue;
pub use queue_metrics::duration_buckets;
pub use rate_limiter::{
    default_controller_rate_limiter, BucketRateLimiter, ItemExponentialFailureRateLimiter,
    ItemFastSlowRateLimiter, MaxOfRateLimiter, RateLimiter,
};
