//! `/stats/summary`: upstream's Summary API (`k8s.io/kubelet/pkg/apis/stats/v1alpha1`), what
//! metrics-server and `kubectl top` read. The node's entry comes from the host ([`node`]), the
//! pods' from the container runtime over CRI ([`pods`]); [`types`] is the JSON.
//!
//! `?only_cpu_and_memory=true` (upstream's query) keeps CPU and memory and drops the rest
//! (filesystems, rlimit), for callers that poll often.
//!
//! The node's filesystem (`node.fs`) is the one holding `--root-dir`. `node.runtime.imageFs`
//! is left out: the server holds no CRI image service to ask.

pub mod metrics;
pub mod node;
pub mod pods;
pub mod types;

use std::path::Path;

use http::{Response, StatusCode};

use super::{full, plain, Body, KubeletServer};
use types::{NodeStats, PodStats, Summary};

/// Serves `/stats/summary`.
pub async fn summary(server: &KubeletServer, query: &str) -> Response<Body> {
    let only_cpu_and_memory = only_cpu_and_memory(query);
    // The root dir may not exist yet (nothing written): then the filesystem above it.
    let fs_root = server
        .root_dir
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let built = build_summary(
        &server.node_name,
        fs_root,
        server.runtime.as_deref(),
        only_cpu_and_memory,
    )
    .await;
    match built.map(|s| serde_json::to_vec(&s)) {
        Ok(Ok(body)) => full(StatusCode::OK, "application/json", body),
        Ok(Err(err)) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal Error: encoding the summary: {err}\n"),
        ),
        Err(err) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal Error: {err}\n"),
        ),
    }
}

/// Serves `/metrics/resource` (`cadvisor` false) or `/metrics/cadvisor` from a CPU and
/// memory summary.
pub async fn metrics(server: &KubeletServer, cadvisor: bool) -> Response<Body> {
    let built = build_summary(
        &server.node_name,
        &server.root_dir,
        server.runtime.as_deref(),
        true,
    )
    .await;
    let text = match (&built, cadvisor) {
        (Ok(summary), false) => metrics::resource(summary, false),
        (Ok(summary), true) => metrics::cadvisor(summary),
        (Err(err), false) => {
            tracing::debug!(error = %err, "resource metrics");
            let node = build_summary(&server.node_name, &server.root_dir, None, true).await;
            metrics::resource(&node.unwrap_or_default(), true)
        }
        (Err(err), true) => {
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Internal Error: {err}\n"),
            )
        }
    };
    full(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        text,
    )
}

/// The summary of this node: `fs_root` is a path on the kubelet's filesystem; without a
/// runtime there are no pods.
pub async fn build_summary(
    node_name: &str,
    fs_root: &Path,
    runtime: Option<&dyn cri::RuntimeService>,
    only_cpu_and_memory: bool,
) -> Result<Summary, pods::RuntimeCallError> {
    let now = chrono::Utc::now();
    let pods = match runtime {
        Some(runtime) => pods::pod_stats(runtime, now).await?,
        None => Vec::new(),
    };
    let mut summary = Summary {
        node: node::node_stats(node_name, fs_root, now),
        pods,
    };
    if only_cpu_and_memory {
        keep_cpu_and_memory(&mut summary);
    }
    Ok(summary)
}

/// `only_cpu_and_memory` as Go's `strconv.ParseBool` reads it; anything else is false.
fn only_cpu_and_memory(query: &str) -> bool {
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "only_cpu_and_memory")
        .is_some_and(|(_, value)| matches!(&*value, "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// Drops everything but the names, start times, CPU and memory, as upstream's
/// `ListPodCPUAndMemoryStats` answer does.
fn keep_cpu_and_memory(summary: &mut Summary) {
    let NodeStats {
        system_containers,
        fs,
        runtime,
        rlimit,
        ..
    } = &mut summary.node;
    for container in system_containers.iter_mut() {
        container.rootfs = None;
        container.logs = None;
    }
    *fs = None;
    *runtime = None;
    *rlimit = None;
    for PodStats { containers, .. } in &mut summary.pods {
        for container in containers.iter_mut() {
            container.rootfs = None;
            container.logs = None;
        }
    }
}

#[cfg(test)]
mod tests;
