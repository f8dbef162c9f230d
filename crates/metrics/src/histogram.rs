//! Histograms: per-bucket counts (stored non-cumulative, rendered cumulative), sum and count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::family::Family;
use crate::gauge::AtomicF64;
use crate::text::{format_float, write_labels};

/// The Prometheus client's default buckets, for latencies in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `count` buckets starting at `start`, each `factor` times the previous one. Invalid arguments
/// (`count == 0`, `start <= 0`, `factor <= 1`, which the Go client panics on) give no buckets,
/// which leaves only the implicit `+Inf` bucket.
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    if count == 0 || start.is_nan() || start <= 0.0 || factor.is_nan() || factor <= 1.0 {
        return Vec::new();
    }
    std::iter::successors(Some(start), |b| Some(b * factor))
        .take(count)
        .collect()
}

/// `count` buckets starting at `start`, each `width` above the previous one. Invalid arguments
/// (`count == 0`, `width <= 0`) give no buckets.
pub fn linear_buckets(start: f64, width: f64, count: usize) -> Vec<f64> {
    if count == 0 || width.is_nan() || width <= 0.0 || start.is_nan() {
        return Vec::new();
    }
    (0..count).map(|i| start + width * i as f64).collect()
}

/// A histogram family keyed by label values; clones share the family.
#[derive(Clone)]
pub struct HistogramVec {
    pub(crate) family: Arc<Family<HistogramCore>>,
    bounds: Arc<[f64]>,
}

/// One histogram series; clones share the data.
#[derive(Clone, Debug)]
pub struct Histogram {
    core: Arc<HistogramCore>,
}

#[derive(Debug)]
pub(crate) struct HistogramCore {
    bounds: Arc<[f64]>,
    /// One slot per bound plus the `+Inf` overflow slot; not cumulative so `observe` touches one.
    buckets: Box<[AtomicU64]>,
    sum: AtomicF64,
    count: AtomicU64,
}

impl HistogramVec {
    pub(crate) fn new(labels: &[&str], buckets: &[f64]) -> HistogramVec {
        // Sorted, finite, de-duplicated: `+Inf` is always implicit and NaN is meaningless.
        let mut bounds: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        HistogramVec {
            family: Arc::new(Family::new(labels)),
            bounds: bounds.into(),
        }
    }

    /// The series for `values` (padded or truncated to the family's label count).
    pub fn with(&self, values: &[&str]) -> Histogram {
        let bounds = Arc::clone(&self.bounds);
        Histogram {
            core: self.family.get_or_create(values, || HistogramCore {
                buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
                bounds,
                sum: AtomicF64::default(),
                count: AtomicU64::new(0),
            }),
        }
    }

    /// Drops the series for `values` from the output. Returns whether it existed.
    pub fn remove(&self, values: &[&str]) -> bool {
        self.family.remove(values)
    }

    /// The upper bounds in use (sorted, without `+Inf`).
    pub fn buckets(&self) -> &[f64] {
        &self.bounds
    }

    pub(crate) fn render(&self, name: &str, out: &mut String) {
        let names = &self.family.label_names;
        for (values, core) in self.family.snapshot() {
            let mut cumulative = 0u64;
            let bucket_name = format!("{name}_bucket");
            for (i, slot) in core.buckets.iter().enumerate() {
                cumulative += slot.load(Ordering::Relaxed);
                let le = core
                    .bounds
                    .get(i)
                    .map_or_else(|| "+Inf".to_string(), |b| format_float(*b));
                out.push_str(&bucket_name);
                write_labels(out, names, &values, Some(("le", &le)));
                out.push(' ');
                out.push_str(&format_float(cumulative as f64));
                out.push('\n');
            }
            out.push_str(name);
            out.push_str("_sum");
            write_labels(out, names, &values, None);
            out.push(' ');
            out.push_str(&format_float(core.sum.get()));
            out.push('\n');
            out.push_str(name);
            out.push_str("_count");
            write_labels(out, names, &values, None);
            out.push(' ');
            out.push_str(&format_float(core.count.load(Ordering::Relaxed) as f64));
            out.push('\n');
        }
    }
}

impl Histogram {
    /// Records one observation. Bounds are inclusive upper limits (`v <= le`), as in Prometheus.
    pub fn observe(&self, v: f64) {
        let core = &self.core;
        // NaN belongs below no bound, so it lands in the +Inf slot only.
        let idx = if v.is_nan() {
            core.bounds.len()
        } else {
            core.bounds.partition_point(|b| *b < v)
        };
        if let Some(slot) = core.buckets.get(idx) {
            slot.fetch_add(1, Ordering::Relaxed);
        }
        core.sum.add(v);
        core.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.core.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        self.core.sum.get()
    }
}
