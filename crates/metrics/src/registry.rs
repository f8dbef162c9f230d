//! The registry: families by name, idempotent registration, and rendering of the whole set.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::counter::CounterVec;
use crate::gauge::GaugeVec;
use crate::histogram::HistogramVec;
use crate::text::escape_help;

/// A set of metric families; clones share the set.
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<BTreeMap<String, Entry>>>,
}

struct Entry {
    help: String,
    family: Kind,
}

#[derive(Clone)]
enum Kind {
    Counter(CounterVec),
    Gauge(GaugeVec),
    Histogram(HistogramVec),
}

impl Kind {
    fn type_name(&self) -> &'static str {
        match self {
            Kind::Counter(_) => "counter",
            Kind::Gauge(_) => "gauge",
            Kind::Histogram(_) => "histogram",
        }
    }
}

/// The process-wide registry the daemons serve on `/metrics`.
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::new)
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    /// Registers (or finds) a counter family. Registering the same name again returns the same
    /// family, whatever labels are passed, so two clients in one process share it. If the name
    /// already holds another kind, that is a programming error: the result is a working counter
    /// family that is not rendered, rather than a panic.
    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> CounterVec {
        let kind = self.register(name, help, || Kind::Counter(CounterVec::new(labels)));
        match kind {
            Kind::Counter(c) => c,
            _ => CounterVec::new(labels),
        }
    }

    /// Registers (or finds) a gauge family; see [`Registry::counter_vec`] for duplicates.
    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
        let kind = self.register(name, help, || Kind::Gauge(GaugeVec::new(labels)));
        match kind {
            Kind::Gauge(g) => g,
            _ => GaugeVec::new(labels),
        }
    }

    /// Registers (or finds) a histogram family with the given bucket upper bounds (`+Inf` is
    /// implicit; unsorted or duplicate bounds are cleaned up). See [`Registry::counter_vec`] for
    /// duplicates: the first registration's buckets win.
    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        labels: &[&str],
        buckets: &[f64],
    ) -> HistogramVec {
        let kind = self.register(name, help, || {
            Kind::Histogram(HistogramVec::new(labels, buckets))
        });
        match kind {
            Kind::Histogram(h) => h,
            _ => HistogramVec::new(labels, buckets),
        }
    }

    fn register(&self, name: &str, help: &str, make: impl FnOnce() -> Kind) -> Kind {
        let mut families = self.lock();
        families
            .entry(name.to_string())
            .or_insert_with(|| Entry {
                help: help.to_string(),
                family: make(),
            })
            .family
            .clone()
    }

    /// Renders every family in the Prometheus text format 0.0.4: families sorted by name, series
    /// sorted by label values, families without series left out (as the Go client does).
    pub fn render(&self) -> String {
        // Clone the handles out so formatting does not hold the registry lock.
        let families: Vec<(String, String, Kind)> = self
            .lock()
            .iter()
            .map(|(name, e)| (name.clone(), e.help.clone(), e.family.clone()))
            .collect();
        let mut out = String::new();
        for (name, help, kind) in families {
            let mut body = String::new();
            match &kind {
                Kind::Counter(c) => c.render(&name, &mut body),
                Kind::Gauge(g) => g.render(&name, &mut body),
                Kind::Histogram(h) => h.render(&name, &mut body),
            }
            if body.is_empty() {
                continue;
            }
            out.push_str("# HELP ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(&escape_help(&help));
            out.push_str("\n# TYPE ");
            out.push_str(&name);
            out.push(' ');
            out.push_str(kind.type_name());
            out.push('\n');
            out.push_str(&body);
        }
        out
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        // Entries are inserted whole, so a poisoned map is still consistent.
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exponential_buckets;
    use crate::DEFAULT_BUCKETS;

    #[test]
    fn counter_renders_sorted_and_escaped() {
        let r = Registry::new();
        let c = r.counter_vec(
            "rest_client_requests_total",
            "Number of HTTP requests.",
            &["code", "method"],
        );
        c.with(&["200", "GET"]).inc_by(3);
        c.with(&["200", "DELETE"]).inc();
        c.with(&["5\"0\\0\n", "PUT"]).inc();
        assert_eq!(
            r.render(),
            "# HELP rest_client_requests_total Number of HTTP requests.\n\
             # TYPE rest_client_requests_total counter\n\
             rest_client_requests_total{code=\"200\",method=\"DELETE\"} 1\n\
             rest_client_requests_total{code=\"200\",method=\"GET\"} 3\n\
             rest_client_requests_total{code=\"5\\\"0\\\\0\\n\",method=\"PUT\"} 1\n"
        );
    }

    #[test]
    fn families_sorted_by_name_and_empty_ones_omitted() {
        let r = Registry::new();
        r.gauge_vec("zz", "last", &[]).with(&[]).set(1.5);
        let _unused = r.counter_vec("mm", "no series yet", &["a"]);
        r.counter_vec("aa", "first", &[]).with(&[]).inc();
        assert_eq!(
            r.render(),
            "# HELP aa first\n# TYPE aa counter\naa 1\n# HELP zz last\n# TYPE zz gauge\nzz 1.5\n"
        );
    }

    #[test]
    fn gauge_operations() {
        let r = Registry::new();
        let g = r.gauge_vec("workqueue_depth", "Current depth of workqueue", &["name"]);
        let d = g.with(&["pods"]);
        d.inc();
        d.inc();
        d.dec();
        d.add(2.5);
        assert_eq!(d.get(), 3.5);
        d.set(-1.0);
        assert_eq!(g.with(&["pods"]).get(), -1.0);
        assert!(r.render().contains("workqueue_depth{name=\"pods\"} -1\n"));
    }

    #[test]
    fn histogram_is_cumulative_with_inf_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram_vec(
            "lat",
            "Latency.",
            &["verb"],
            &[1.0, 0.1, 1.0, f64::INFINITY],
        );
        let s = h.with(&["GET"]);
        for v in [0.05, 0.1, 0.5, 2.0, f64::NAN] {
            s.observe(v);
        }
        assert_eq!(s.count(), 5);
        assert!(s.sum().is_nan());
        let g = h.with(&["LIST"]);
        g.observe(0.25);
        assert_eq!(h.buckets(), &[0.1, 1.0]);
        assert_eq!(
            r.render(),
            "# HELP lat Latency.\n# TYPE lat histogram\n\
             lat_bucket{verb=\"GET\",le=\"0.1\"} 2\n\
             lat_bucket{verb=\"GET\",le=\"1\"} 3\n\
             lat_bucket{verb=\"GET\",le=\"+Inf\"} 5\n\
             lat_sum{verb=\"GET\"} NaN\n\
             lat_count{verb=\"GET\"} 5\n\
             lat_bucket{verb=\"LIST\",le=\"0.1\"} 0\n\
             lat_bucket{verb=\"LIST\",le=\"1\"} 1\n\
             lat_bucket{verb=\"LIST\",le=\"+Inf\"} 1\n\
             lat_sum{verb=\"LIST\"} 0.25\n\
             lat_count{verb=\"LIST\"} 1\n"
        );
    }

    #[test]
    fn histogram_without_labels() {
        let r = Registry::new();
        // Repeated multiplication like the Go client, so `le` labels match upstream output
        // byte for byte (kube-controller-manager shows le="9.999999999999999e-06" too).
        let h = r.histogram_vec("h", "x", &[], &exponential_buckets(1e-6, 10.0, 2));
        h.with(&[]).observe(5e-6);
        assert_eq!(
            r.render(),
            "# HELP h x\n# TYPE h histogram\n\
             h_bucket{le=\"1e-06\"} 0\nh_bucket{le=\"9.999999999999999e-06\"} 1\n\
             h_bucket{le=\"+Inf\"} 1\nh_sum 5e-06\nh_count 1\n"
        );
    }

    #[test]
    fn registration_is_idempotent_and_never_panics() {
        let r = Registry::new();
        let a = r.counter_vec("c", "help", &["x"]);
        let b = r.counter_vec("c", "other help", &["x", "y"]);
        a.with(&["1"]).inc();
        // Same family: b keeps the first label set and sees a's series.
        assert_eq!(b.with(&["1", "ignored"]).get(), 1);
        // Another kind under the same name: a detached family, not rendered, no panic.
        let g = r.gauge_vec("c", "help", &["x"]);
        g.with(&["1"]).set(9.0);
        let h = r.histogram_vec("c", "help", &[], DEFAULT_BUCKETS);
        h.with(&[]).observe(1.0);
        assert_eq!(
            r.render(),
            "# HELP c help\n# TYPE c counter\nc{x=\"1\"} 1\n"
        );
    }

    #[test]
    fn wrong_label_count_is_padded_or_truncated() {
        let r = Registry::new();
        let c = r.counter_vec("c", "h", &["a", "b"]);
        c.with(&[]).inc();
        c.with(&["1", "2", "3"]).inc();
        c.with(&["1", "2"]).inc();
        assert_eq!(
            r.render(),
            "# HELP c h\n# TYPE c counter\nc{a=\"\",b=\"\"} 1\nc{a=\"1\",b=\"2\"} 2\n"
        );
        assert!(c.remove(&["1", "2"]));
        assert!(!c.remove(&["1", "2"]));
    }

    #[test]
    fn help_is_escaped_and_large_counters_use_go_notation() {
        let r = Registry::new();
        let c = r.counter_vec("big", "line1\nline2 \\ \"q\"", &[]);
        c.with(&[]).inc_by(1_234_567);
        assert_eq!(
            r.render(),
            "# HELP big line1\\nline2 \\\\ \"q\"\n# TYPE big counter\nbig 1.234567e+06\n"
        );
    }

    #[test]
    fn handles_share_state_across_threads() {
        let r = Registry::new();
        let c = r.counter_vec("n", "h", &[]).with(&[]);
        let g = r.gauge_vec("g", "h", &[]).with(&[]);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (c, g) = (c.clone(), g.clone());
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        c.inc();
                        g.add(0.5);
                    }
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().is_ok());
        }
        assert_eq!(c.get(), 4000);
        assert_eq!(g.get(), 2000.0);
    }

    #[test]
    fn bucket_helpers() {
        assert_eq!(
            exponential_buckets(0.005, 2.0, 4),
            vec![0.005, 0.01, 0.02, 0.04]
        );
        assert!(exponential_buckets(0.0, 2.0, 4).is_empty());
        assert!(exponential_buckets(1.0, 1.0, 4).is_empty());
        assert!(exponential_buckets(1.0, 2.0, 0).is_empty());
        assert_eq!(crate::linear_buckets(1.0, 2.0, 3), vec![1.0, 3.0, 5.0]);
        assert_eq!(DEFAULT_BUCKETS.len(), 11);
    }

    #[test]
    fn global_is_one_registry() {
        global()
            .counter_vec("metrics_crate_test_total", "t", &[])
            .with(&[])
            .inc();
        assert!(global().render().contains("metrics_crate_test_total 1\n"));
    }
}
