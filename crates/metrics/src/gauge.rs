//! Gauges: floating-point values that go up and down, stored as `f64` bits in an atomic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::family::Family;
use crate::text::{format_float, write_labels};

/// A gauge family keyed by label values; clones share the family.
#[derive(Clone)]
pub struct GaugeVec {
    pub(crate) family: Arc<Family<AtomicF64>>,
}

/// One gauge series; clones share the value.
#[derive(Clone, Debug)]
pub struct Gauge {
    value: Arc<AtomicF64>,
}

/// An `f64` in an `AtomicU64`; `add` is a compare-and-swap loop.
#[derive(Debug, Default)]
pub(crate) struct AtomicF64(AtomicU64);

impl AtomicF64 {
    pub(crate) fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    pub(crate) fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }

    pub(crate) fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
    }
}

impl GaugeVec {
    pub(crate) fn new(labels: &[&str]) -> GaugeVec {
        GaugeVec {
            family: Arc::new(Family::new(labels)),
        }
    }

    /// The series for `values` (padded or truncated to the family's label count), created at 0.
    pub fn with(&self, values: &[&str]) -> Gauge {
        Gauge {
            value: self.family.get_or_create(values, AtomicF64::default),
        }
    }

    /// Drops the series for `values` from the output. Returns whether it existed.
    pub fn remove(&self, values: &[&str]) -> bool {
        self.family.remove(values)
    }

    pub(crate) fn render(&self, name: &str, out: &mut String) {
        for (values, v) in self.family.snapshot() {
            out.push_str(name);
            write_labels(out, &self.family.label_names, &values, None);
            out.push(' ');
            out.push_str(&format_float(v.get()));
            out.push('\n');
        }
    }
}

impl Gauge {
    pub fn set(&self, v: f64) {
        self.value.set(v);
    }

    pub fn inc(&self) {
        self.value.add(1.0);
    }

    pub fn dec(&self) {
        self.value.add(-1.0);
    }

    pub fn add(&self, v: f64) {
        self.value.add(v);
    }

    pub fn get(&self) -> f64 {
        self.value.get()
    }
}
