//! A small Prometheus metrics registry that renders the text exposition format 0.0.4.
//!
//! The daemons serve [`global()`] on `/metrics`; libraries (client, workqueue) register their
//! families there. Families are vectors keyed by label values; a handle obtained with `with` is an
//! `Arc` around atomics, so the hot path (`inc`, `set`, `observe`) never takes a lock or looks up a
//! map. Registration is idempotent by name so that two users of one process share a family.
//!
//! Nothing here panics on caller mistakes: a wrong number of label values is padded with empty
//! strings or truncated, and registering a name twice with a different shape returns the family
//! that is already there (or, for a different kind, a working but unregistered family).
//!
//! ```
//! let registry = metrics::Registry::new();
//! let requests = registry.counter_vec("rest_client_requests_total", "Number of HTTP requests.", &["code"]);
//! let ok = requests.with(&["200"]); // keep the handle: no lookup per increment
//! ok.inc();
//! let text = registry.render();
//! assert!(text.starts_with("# HELP rest_client_requests_total Number of HTTP requests.\n"));
//! assert!(text.contains("\nrest_client_requests_total{code=\"200\"} 1\n"));
//! ```

mod counter;
mod family;
mod gauge;
mod histogram;
mod registry;
mod text;

pub use counter::{Counter, CounterVec};
pub use gauge::{Gauge, GaugeVec};
pub use histogram::{
    exponential_buckets, linear_buckets, Histogram, HistogramVec, DEFAULT_BUCKETS,
};
pub use registry::{global, Registry};
