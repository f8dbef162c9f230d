//! `/metrics` in the Prometheus text format, with upstream's metric names: request counts and
//! latencies per verb and resource, stored object counts, open watches.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;

use crate::negotiation::bytes_response;
use crate::server::{Body, State};

/// Upstream's buckets for `apiserver_request_duration_seconds`.
const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// (group, version, resource, subresource, cluster-wide)
pub type ResourceLabel = (String, String, String, String, bool);

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<String, u64>>,
    durations: Mutex<BTreeMap<String, Histogram>>,
    watches: Mutex<BTreeMap<String, i64>>,
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    pub fn observe_request(
        &self,
        verb: &str,
        resource: Option<&ResourceLabel>,
        code: u16,
        took: Duration,
    ) {
        let verb_label = verb.to_ascii_uppercase();
        let (group, version, res, sub, scope) = match resource {
            Some((g, v, r, s, cluster)) => (
                g.as_str(),
                v.as_str(),
                r.as_str(),
                s.as_str(),
                if *cluster { "cluster" } else { "namespace" },
            ),
            None => ("", "", "", "", ""),
        };
        let base = format!(
            "component=\"apiserver\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
            escape(group),
            escape(res),
            scope,
            escape(sub),
            escape(&verb_label),
            escape(version)
        );
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry(format!("code=\"{code}\",{base}"))
                .or_default() += 1;
        }
        if let Ok(mut durations) = self.durations.lock() {
            let h = durations.entry(base).or_default();
            if h.counts.is_empty() {
                h.counts = vec![0; BUCKETS.len()];
            }
            let secs = took.as_secs_f64();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += secs;
            h.count += 1;
        }
    }

    /// Counts an open watch of `kind` (group, version, kind labels).
    pub fn watch_opened(&self, group: &str, version: &str, kind: &str) {
        self.watch_delta(group, version, kind, 1);
    }

    pub fn watch_closed(&self, group: &str, version: &str, kind: &str) {
        self.watch_delta(group, version, kind, -1);
    }

    fn watch_delta(&self, group: &str, version: &str, kind: &str, delta: i64) {
        if let Ok(mut watches) = self.watches.lock() {
            let key = format!("group=\"{group}\",kind=\"{kind}\",version=\"{version}\"");
            *watches.entry(key).or_default() += delta;
        }
    }

    pub fn render(&self, state: &State) -> http::Response<Body> {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
        out.push_str("# TYPE apiserver_request_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for (labels, value) in requests.iter() {
                let _ = writeln!(out, "apiserver_request_total{{{labels}}} {value}");
            }
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.\n");
        out.push_str("# TYPE apiserver_request_duration_seconds histogram\n");
        if let Ok(durations) = self.durations.lock() {
            for (labels, h) in durations.iter() {
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "apiserver_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {}",
                        h.counts.get(i).copied().unwrap_or(0)
                    );
                }
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_count{{{labels}}} {}",
                    h.count
                );
            }
        }
        out.push_str("# HELP apiserver_registered_watchers Number of currently registered watchers for a given resources\n");
        out.push_str("# TYPE apiserver_registered_watchers gauge\n");
        if let Ok(watches) = self.watches.lock() {
            for (labels, value) in watches.iter() {
                let _ = writeln!(out, "apiserver_registered_watchers{{{labels}}} {value}");
            }
        }
        out.push_str("# HELP apiserver_storage_objects Number of stored objects at the time of last check split by kind.\n");
        out.push_str("# TYPE apiserver_storage_objects gauge\n");
        for (resource, count) in state.caches.object_counts() {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{resource}\"}} {count}"
            );
        }
        bytes_response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            out.into_bytes(),
        )
    }
}
