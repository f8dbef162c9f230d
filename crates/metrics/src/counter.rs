//! Counters: monotonically increasing integers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::family::Family;
use crate::text::{format_float, write_labels};

/// A counter family keyed by label values; clones share the family.
#[derive(Clone)]
pub struct CounterVec {
    pub(crate) family: Arc<Family<AtomicU64>>,
}

/// One counter series; clones share the value.
#[derive(Clone, Debug)]
pub struct Counter {
    value: Arc<AtomicU64>,
}

impl CounterVec {
    pub(crate) fn new(labels: &[&str]) -> CounterVec {
        CounterVec {
            family: Arc::new(Family::new(labels)),
        }
    }

    /// The series for `values` (padded or truncated to the family's label count), created at 0.
    pub fn with(&self, values: &[&str]) -> Counter {
        Counter {
            value: self.family.get_or_create(values, || AtomicU64::new(0)),
        }
    }

    /// Drops the series for `values` from the output; existing handles keep working but are no
    /// longer rendered. Returns whether it existed.
    pub fn remove(&self, values: &[&str]) -> bool {
        self.family.remove(values)
    }

    pub(crate) fn render(&self, name: &str, out: &mut String) {
        for (values, v) in self.family.snapshot() {
            out.push_str(name);
            write_labels(out, &self.family.label_names, &values, None);
            out.push(' ');
            // The Go client stores counters as float64; print them the same way.
            out.push_str(&format_float(v.load(Ordering::Relaxed) as f64));
            out.push('\n');
        }
    }
}

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1);
    }

    pub fn inc_by(&self, n: u64) {
        self.value.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }
}
