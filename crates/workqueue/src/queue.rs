//! The queue itself: a FIFO plus `dirty` and `processing` sets (client-go `queue.go`), the
//! delayed adds (`delaying_queue.go`) and the rate-limited adds (`rate_limiting_queue.go`).
//!
//! Delayed items are moved into the FIFO lazily: every operation first promotes the items whose
//! time has come (in ready-time order, before applying itself), and an idle `get` sleeps until
//! the earliest ready time. That is observably the order client-go's background goroutine
//! produces, without a task of our own, so a queue can be built outside a runtime.
//!
//! Wake-ups: each state change that makes an item available wakes one idle `get`; a `get` that
//! leaves work behind (queued or delayed items) passes the wake-up on, so delayed items always
//! have a sleeper. Shutdown wakes every `get`.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::hash::Hash;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use metrics::{Counter, Registry};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::delaying::Waiting;
use crate::queue_metrics::{retries, QueueMetrics};
use crate::rate_limiter::{default_controller_rate_limiter, RateLimiter, FAR_FUTURE};

/// A queue of keys; clones share the queue. See the crate documentation for the contract.
pub struct Queue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Queue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn clone(&self) -> Self {
        Queue {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<T> fmt::Debug for Queue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.inner.lock();
        f.debug_struct("Queue")
            .field("queued", &s.queue.len())
            .field("processing", &s.processing.len())
            .field("waiting", &s.waiting.len())
            .field("shutting_down", &s.shutting_down)
            .finish()
    }
}

struct Inner<T> {
    state: Mutex<State<T>>,
    /// Idle `get` calls wait here.
    getters: Notify,
    /// `shut_down_with_drain` waits here for `processing` to empty.
    drained: Notify,
    limiter: Box<dyn RateLimiter<T>>,
    retries: Option<Counter>,
}

struct State<T> {
    /// Order of work. Every element is in `dirty` and not in `processing`.
    queue: VecDeque<T>,
    /// Everything that needs processing, including items being processed that were added again.
    dirty: HashSet<T>,
    /// Handed out by `get` and not yet `done`.
    processing: HashSet<T>,
    waiting: Waiting<T>,
    shutting_down: bool,
    drain: bool,
    metrics: Option<QueueMetrics<T>>,
}

impl<T> State<T>
where
    T: Clone + Eq + Hash,
{
    /// Marks `item` dirty; returns whether it went into the FIFO (so a getter should wake).
    fn add(&mut self, item: T, at: Instant) -> bool {
        if self.shutting_down || self.dirty.contains(&item) {
            return false;
        }
        if let Some(m) = &mut self.metrics {
            m.add(&item, at);
        }
        self.dirty.insert(item.clone());
        if self.processing.contains(&item) {
            // Re-queued by `done`, so that no two workers ever hold the same key.
            return false;
        }
        self.queue.push_back(item);
        true
    }

    /// Moves every delayed item whose time has come into the FIFO.
    fn promote(&mut self, now: Instant) -> bool {
        let mut pushed = false;
        while let Some((item, ready_at)) = self.waiting.pop_ready(now) {
            pushed |= self.add(item, ready_at);
        }
        pushed
    }
}

impl<T> Inner<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // No code under this lock panics on input; if something else did, every update is
        // small and ordered so that the sets stay consistent, so keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<T> Queue<T>
where
    T: Clone + Eq + Hash + Send + Sync + 'static,
{
    /// A queue with client-go's default controller rate limiter and metrics named by `name` in
    /// [`metrics::global()`] (an empty name means no metrics, as in client-go).
    pub fn new(name: &str) -> Self {
        Self::with_rate_limiter(name, default_controller_rate_limiter(), metrics::global())
    }

    /// Same with another rate limiter and registry.
    pub fn with_rate_limiter(
        name: &str,
        limiter: impl RateLimiter<T> + 'static,
        registry: &Registry,
    ) -> Self {
        let (metrics, retries) = if name.is_empty() {
            (None, None)
        } else {
            (
                Some(QueueMetrics::new(registry, name)),
                Some(retries(registry, name)),
            )
        };
        Queue {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    queue: VecDeque::new(),
                    dirty: HashSet::new(),
                    processing: HashSet::new(),
                    waiting: Waiting::new(),
                    shutting_down: false,
                    drain: false,
                    metrics,
                }),
                getters: Notify::new(),
                drained: Notify::new(),
                limiter: Box::new(limiter),
                retries,
            }),
        }
    }

    /// Marks `item` as needing processing. An item already waiting is not queued twice; an item
    /// being processed is queued again when its worker calls [`Queue::done`]. Ignored after
    /// shutdown.
    pub fn add(&self, item: T) {
        let now = Instant::now();
        let pushed = {
            let mut s = self.inner.lock();
            let promoted = s.promote(now);
            s.add(item, now) || promoted
        };
        if pushed {
            self.inner.getters.notify_one();
        }
    }

    /// Waits for an item and marks it as being processed; the caller must call
    /// [`Queue::done`] with it. After shutdown, items still queued are handed out; then
    /// `None`, which tells the worker to stop.
    pub async fn get(&self) -> Option<T> {
        loop {
            let mut notified = pin!(self.inner.getters.notified());
            // Registered before looking at the state, so a wake-up sent after the look is
            // not lost.
            notified.as_mut().enable();
            let deadline = {
                let now = Instant::now();
                let mut s = self.inner.lock();
                s.promote(now);
                if let Some(item) = s.queue.pop_front() {
                    if let Some(m) = &mut s.metrics {
                        m.get(&item, now);
                    }
                    s.processing.insert(item.clone());
                    s.dirty.remove(&item);
                    let work_left = !s.queue.is_empty() || !s.waiting.is_empty();
                    drop(s);
                    if work_left {
                        self.inner.getters.notify_one();
                    }
                    return Some(item);
                }
                if s.shutting_down {
                    return None;
                }
                s.waiting.next_deadline()
            };
            match deadline {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Ends the processing of `item`; if it was added meanwhile, it is queued again. Calling it
    /// for an item that was not handed out changes nothing.
    pub fn done(&self, item: &T) {
        let now = Instant::now();
        let (wake_getter, drained) = {
            let mut s = self.inner.lock();
            let promoted = s.promote(now);
            if let Some(m) = &mut s.metrics {
                m.done(item, now);
            }
            let mut requeued = false;
            if s.processing.remove(item) && s.dirty.contains(item) {
                s.queue.push_back(item.clone());
                requeued = true;
            }
            (promoted || requeued, s.processing.is_empty())
        };
        if wake_getter {
            self.inner.getters.notify_one();
        }
        if drained {
            self.inner.drained.notify_waiters();
        }
    }

    /// Items queued and ready (not delayed, not being processed).
    pub fn len(&self) -> usize {
        let mut s = self.inner.lock();
        if s.promote(Instant::now()) {
            self.inner.getters.notify_one();
        }
        s.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `item` once `delay` has passed (now, for a zero delay). If the item is already
    /// waiting, the earlier of the two times is kept. Ignored after shutdown; items still
    /// waiting at shutdown are dropped.
    pub fn add_after(&self, item: T, delay: Duration) {
        let now = Instant::now();
        let wake = {
            let mut s = self.inner.lock();
            if s.shutting_down {
                return;
            }
            if let Some(r) = &self.inner.retries {
                r.inc();
            }
            let promoted = s.promote(now);
            if delay.is_zero() {
                s.add(item, now) || promoted
            } else {
                let ready_at = now
                    .checked_add(delay.min(FAR_FUTURE))
                    .unwrap_or_else(|| now + FAR_FUTURE);
                // A new earliest deadline needs a sleeper that knows about it.
                s.waiting.insert(item, ready_at) || promoted
            }
        };
        if wake {
            self.inner.getters.notify_one();
        }
    }

    /// Adds `item` after the delay the rate limiter gives it (one more failure for it).
    pub fn add_rate_limited(&self, item: T) {
        let delay = self.inner.limiter.when(&item);
        self.add_after(item, delay);
    }

    /// Clears the rate limiter's memory of `item` (call it when processing succeeded). The item
    /// itself stays in the queue if it is there.
    pub fn forget(&self, item: &T) {
        self.inner.limiter.forget(item);
    }

    /// How many times `item` was rate-limited since it was last forgotten.
    pub fn num_requeues(&self, item: &T) -> u32 {
        self.inner.limiter.num_requeues(item)
    }

    /// Stops the queue: later adds are ignored, delayed items are dropped, and every idle
    /// `get` returns `None` at once (items still queued are handed out first).
    pub fn shut_down(&self) {
        {
            let mut s = self.inner.lock();
            s.shutting_down = true;
            s.drain = false;
            s.waiting.clear();
        }
        self.inner.getters.notify_waiters();
        // Releases a `shut_down_with_drain` in progress, as client-go's ShutDown does.
        self.inner.drained.notify_waiters();
    }

    /// Stops new adds like [`Queue::shut_down`], then waits until every item handed out by
    /// `get` is `done`. Workers must keep calling `done`, or this waits forever; a later
    /// [`Queue::shut_down`] ends the wait early.
    pub async fn shut_down_with_drain(&self) {
        {
            let mut s = self.inner.lock();
            s.shutting_down = true;
            s.drain = true;
            s.waiting.clear();
        }
        self.inner.getters.notify_waiters();
        loop {
            let mut notified = pin!(self.inner.drained.notified());
            notified.as_mut().enable();
            {
                let s = self.inner.lock();
                if s.processing.is_empty() || !s.drain {
                    return;
                }
            }
            notified.await;
        }
    }

    pub fn is_shutting_down(&self) -> bool {
        self.inner.lock().shutting_down
    }
}

#[cfg(test)]
mod tests;
