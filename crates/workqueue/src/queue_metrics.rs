//! The queue's Prometheus metrics, with client-go's names, help texts and buckets, registered
//! in a `metrics::Registry` under the single label `name`.
//!
//! client-go refreshes the unfinished-work gauges from a ticker goroutine every 500 ms; this
//! queue refreshes them on every `get` and `done` instead, so no background task exists. A
//! worker stuck for a long time therefore shows the value from the last queue operation.

use std::collections::HashMap;
use std::hash::Hash;

use metrics::{Counter, Gauge, Histogram, Registry};
use tokio::time::Instant;

/// Bucket bounds of the two duration histograms: 1 µs up to 1000 s, as kube-controller-manager
/// registers them (`ExponentialBuckets(10e-7, 10, 10)` in component-base).
pub fn duration_buckets() -> Vec<f64> {
    metrics::exponential_buckets(1e-6, 10.0, 10)
}

pub(crate) struct QueueMetrics<T> {
    depth: Gauge,
    adds: Counter,
    latency: Histogram,
    work_duration: Histogram,
    unfinished: Gauge,
    longest: Gauge,
    add_times: HashMap<T, Instant>,
    processing_start: HashMap<T, Instant>,
}

pub(crate) fn retries(registry: &Registry, name: &str) -> Counter {
    registry
        .counter_vec(
            "workqueue_retries_total",
            "Total number of retries handled by workqueue",
            &["name"],
        )
        .with(&[name])
}

impl<T: Clone + Eq + Hash> QueueMetrics<T> {
    pub(crate) fn new(registry: &Registry, name: &str) -> Self {
        let buckets = duration_buckets();
        QueueMetrics {
            depth: registry
                .gauge_vec("workqueue_depth", "Current depth of workqueue", &["name"])
                .with(&[name]),
            adds: registry
                .counter_vec(
                    "workqueue_adds_total",
                    "Total number of adds handled by workqueue",
                    &["name"],
                )
                .with(&[name]),
            latency: registry
                .histogram_vec(
                    "workqueue_queue_duration_seconds",
                    "How long in seconds an item stays in workqueue before being requested.",
                    &["name"],
                    &buckets,
                )
                .with(&[name]),
            work_duration: registry
                .histogram_vec(
                    "workqueue_work_duration_seconds",
                    "How long in seconds processing an item from workqueue takes.",
                    &["name"],
                    &buckets,
                )
                .with(&[name]),
            unfinished: registry
                .gauge_vec(
                    "workqueue_unfinished_work_seconds",
                    "How many seconds of work has done that is in progress and hasn't been \
                     observed by work_duration. Large values indicate stuck threads. One can \
                     deduce the number of stuck threads by observing the rate at which this \
                     increases.",
                    &["name"],
                )
                .with(&[name]),
            longest: registry
                .gauge_vec(
                    "workqueue_longest_running_processor_seconds",
                    "How many seconds has the longest running processor for workqueue been \
                     running.",
                    &["name"],
                )
                .with(&[name]),
            add_times: HashMap::new(),
            processing_start: HashMap::new(),
        }
    }

    /// An item became dirty (queued, or marked for a re-run while processing).
    pub(crate) fn add(&mut self, item: &T, at: Instant) {
        self.adds.inc();
        self.depth.inc();
        self.add_times.entry(item.clone()).or_insert(at);
    }

    pub(crate) fn get(&mut self, item: &T, now: Instant) {
        self.depth.dec();
        self.processing_start.insert(item.clone(), now);
        if let Some(added) = self.add_times.remove(item) {
            self.latency
                .observe(now.saturating_duration_since(added).as_secs_f64());
        }
        self.update_unfinished(now);
    }

    pub(crate) fn done(&mut self, item: &T, now: Instant) {
        if let Some(start) = self.processing_start.remove(item) {
            self.work_duration
                .observe(now.saturating_duration_since(start).as_secs_f64());
        }
        self.update_unfinished(now);
    }

    fn update_unfinished(&self, now: Instant) {
        let (total, oldest) = self
            .processing_start
            .values()
            .map(|s| now.saturating_duration_since(*s).as_secs_f64())
            .fold((0.0, 0.0), |(t, o): (f64, f64), age| (t + age, o.max(age)));
        self.unfinished.set(total);
        self.longest.set(oldest);
    }
}
