//! The Summary as Prometheus text: `/metrics/resource` (upstream's resource metrics endpoint,
//! what metrics-server scrapes for `kubectl top`: node, pod and container CPU seconds and
//! working set, with the samples' own timestamps) and `/metrics/cadvisor` (the cAdvisor-named
//! container series: `container_cpu_usage_seconds_total`, `container_memory_working_set_bytes`,
//! `container_memory_rss`, `container_memory_usage_bytes`, `container_start_time_seconds`,
//! labelled `container`, `namespace`, `pod`).

use std::fmt::Write;

use super::types::{ContainerStats, CpuStats, MemoryStats, Summary};

/// Milliseconds since the epoch of a Summary time (None when it does not parse).
fn millis(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp_millis())
}

fn seconds(time: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(time)
        .ok()
        .map(|t| t.timestamp())
}

/// A label value escaped as the text format wants.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// One family's samples: HELP, TYPE, then `name{labels} value [timestamp]`.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<(String, f64, Option<i64>)>,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    fn add(&mut self, labels: String, value: Option<f64>, at: Option<i64>) {
        if let Some(value) = value {
            self.samples.push((labels, value, at));
        }
    }

    fn render(&self, out: &mut String) {
        if self.samples.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value, at) in &self.samples {
            match at {
                Some(at) => {
                    let _ = writeln!(out, "{}{labels} {value} {at}", self.name);
                }
                None => {
                    let _ = writeln!(out, "{}{labels} {value}", self.name);
                }
            }
        }
    }
}

fn cpu_seconds(cpu: Option<&CpuStats>) -> (Option<f64>, Option<i64>) {
    match cpu {
        Some(cpu) => (
            cpu.usage_core_nano_seconds.map(|n| n as f64 / 1e9),
            millis(&cpu.time),
        ),
        None => (None, None),
    }
}

fn working_set(memory: Option<&MemoryStats>) -> (Option<f64>, Option<i64>) {
    match memory {
        Some(m) => (m.working_set_bytes.map(|b| b as f64), millis(&m.time)),
        None => (None, None),
    }
}

/// Every container of every pod with its pod's namespace and name.
fn containers(summary: &Summary) -> impl Iterator<Item = (&str, &str, &ContainerStats)> {
    summary.pods.iter().flat_map(|p| {
        p.containers
            .iter()
            .map(move |c| (p.pod_ref.namespace.as_str(), p.pod_ref.name.as_str(), c))
    })
}

/// `/metrics/resource`; `scrape_error` when the runtime could not be read.
pub fn resource(summary: &Summary, scrape_error: bool) -> String {
    let mut node_cpu = Family::new(
        "node_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the node in core-seconds",
    );
    let mut node_memory = Family::new(
        "node_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the node in bytes",
    );
    let (v, at) = cpu_seconds(summary.node.cpu.as_ref());
    node_cpu.add(String::new(), v, at);
    let (v, at) = working_set(summary.node.memory.as_ref());
    node_memory.add(String::new(), v, at);
    let mut pod_cpu = Family::new(
        "pod_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the pod in core-seconds",
    );
    let mut pod_memory = Family::new(
        "pod_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the pod in bytes",
    );
    for pod in &summary.pods {
        let l = labels(&[
            ("namespace", &pod.pod_ref.namespace),
            ("pod", &pod.pod_ref.name),
        ]);
        let (v, at) = cpu_seconds(pod.cpu.as_ref());
        pod_cpu.add(l.clone(), v, at);
        let (v, at) = working_set(pod.memory.as_ref());
        pod_memory.add(l, v, at);
    }
    let mut container_cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "counter",
        "[STABLE] Cumulative cpu time consumed by the container in core-seconds",
    );
    let mut container_memory = Family::new(
        "container_memory_working_set_bytes",
        "gauge",
        "[STABLE] Current working set of the container in bytes",
    );
    let mut container_start = Family::new(
        "container_start_time_seconds",
        "gauge",
        "[STABLE] Start time of the container since unix epoch in seconds",
    );
    for (namespace, pod, c) in containers(summary) {
        let l = labels(&[
            ("container", &c.name),
            ("namespace", namespace),
            ("pod", pod),
        ]);
        let (v, at) = cpu_seconds(c.cpu.as_ref());
        container_cpu.add(l.clone(), v, at);
        let (v, at) = working_set(c.memory.as_ref());
        container_memory.add(l.clone(), v, at);
        container_start.add(l, seconds(&c.start_time).map(|s| s as f64), None);
    }
    let mut out = String::new();
    for family in [
        &container_cpu,
        &container_memory,
        &container_start,
        &node_cpu,
        &node_memory,
        &pod_cpu,
        &pod_memory,
    ] {
        family.render(&mut out);
    }
    let _ = writeln!(
        out,
        "# HELP resource_scrape_error [STABLE] 1 if there was an error while getting container metrics, 0 otherwise"
    );
    let _ = writeln!(out, "# TYPE resource_scrape_error gauge");
    let _ = writeln!(out, "resource_scrape_error {}", u8::from(scrape_error));
    out
}

/// `/metrics/cadvisor`: the containers' series under cAdvisor's names.
pub fn cadvisor(summary: &Summary) -> String {
    let mut cpu = Family::new(
        "container_cpu_usage_seconds_total",
        "counter",
        "Cumulative cpu time consumed in seconds.",
    );
    let mut working = Family::new(
        "container_memory_working_set_bytes",
        "gauge",
        "Current working set in bytes.",
    );
    let mut rss = Family::new("container_memory_rss", "gauge", "Size of RSS in bytes.");
    let mut usage = Family::new(
        "container_memory_usage_bytes",
        "gauge",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
    );
    let mut start = Family::new(
        "container_start_time_seconds",
        "gauge",
        "Start time of the container since unix epoch in seconds.",
    );
    for (namespace, pod, c) in containers(summary) {
        let l = labels(&[
            ("container", &c.name),
            ("namespace", namespace),
            ("pod", pod),
        ]);
        let (v, at) = cpu_seconds(c.cpu.as_ref());
        cpu.add(l.clone(), v, at);
        let memory = c.memory.as_ref();
        let at = memory.and_then(|m| millis(&m.time));
        working.add(
            l.clone(),
            memory.and_then(|m| m.working_set_bytes).map(|b| b as f64),
            at,
        );
        rss.add(
            l.clone(),
            memory.and_then(|m| m.rss_bytes).map(|b| b as f64),
            at,
        );
        usage.add(
            l.clone(),
            memory.and_then(|m| m.usage_bytes).map(|b| b as f64),
            at,
        );
        start.add(l, seconds(&c.start_time).map(|s| s as f64), None);
    }
    let mut out = String::new();
    for family in [&cpu, &rss, &usage, &working, &start] {
        family.render(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::types::{PodReference, PodStats};
    use super::*;

    fn summary() -> Summary {
        let cpu = |nanos: u64| CpuStats {
            time: "2026-12-08T00:00:00Z".into(),
            usage_core_nano_seconds: Some(nanos),
            ..Default::default()
        };
        let memory = |bytes: u64| MemoryStats {
            time: "2026-12-08T00:00:00Z".into(),
            working_set_bytes: Some(bytes),
            rss_bytes: Some(bytes / 2),
            ..Default::default()
        };
        let mut s = Summary::default();
        s.node.cpu = Some(cpu(2_500_000_000));
        s.node.memory = Some(memory(1 << 30));
        s.pods.push(PodStats {
            pod_ref: PodReference {
                name: "web".into(),
                namespace: "default".into(),
                uid: "u".into(),
            },
            start_time: "2026-12-07T23:00:00Z".into(),
            containers: vec![ContainerStats {
                name: "app".into(),
                start_time: "2026-12-07T23:00:01Z".into(),
                cpu: Some(cpu(500_000_000)),
                memory: Some(memory(4096)),
                ..Default::default()
            }],
            cpu: Some(cpu(500_000_000)),
            memory: Some(memory(4096)),
        });
        s
    }

    #[test]
    fn resource_metrics_carry_values_and_sample_times() {
        let text = resource(&summary(), false);
        let at = 1_796_688_000_000_i64;
        assert!(
            text.contains(&format!("node_cpu_usage_seconds_total 2.5 {at}\n")),
            "{text}"
        );
        assert!(text.contains(&format!("node_memory_working_set_bytes 1073741824 {at}\n")));
        assert!(text.contains(&format!(
            "container_cpu_usage_seconds_total{{container=\"app\",namespace=\"default\",pod=\"web\"}} 0.5 {at}\n"
        )));
        assert!(text.contains(&format!(
            "pod_memory_working_set_bytes{{namespace=\"default\",pod=\"web\"}} 4096 {at}\n"
        )));
        assert!(text.contains(
            "container_start_time_seconds{container=\"app\",namespace=\"default\",pod=\"web\"} 1796684401\n"
        ));
        assert!(text.contains("# TYPE pod_cpu_usage_seconds_total counter\n"));
        assert!(text.ends_with("resource_scrape_error 0\n"));
        assert!(resource(&Summary::default(), true).ends_with("resource_scrape_error 1\n"));
    }

    #[test]
    fn cadvisor_names_and_escaped_labels() {
        let mut s = summary();
        s.pods[0].pod_ref.name = "we\"b".into();
        let text = cadvisor(&s);
        assert!(text.contains("container_memory_rss{container=\"app\",namespace=\"default\",pod=\"we\\\"b\"} 2048 "), "{text}");
        assert!(text.contains("# TYPE container_memory_working_set_bytes gauge\n"));
        assert!(!text.contains("node_"));
    }
}
