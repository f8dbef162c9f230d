//! The pods' entries of the summary, strictly from CRI as upstream's CRI stats provider
//! gathers them: the ready sandboxes (`ListPodSandbox`), their running containers
//! (`ListContainers`; exited ones are left out, they use nothing) and the containers' stats
//! (`ListContainerStats`).
//!
//! Upstream takes a pod's own CPU and memory from the pod cgroup; here they are the sum of its
//! containers', which leaves out the sandbox (pause) process and the pod's overhead.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cri::v1::{
    Container, ContainerFilter, ContainerState, ContainerStateValue, ListContainerStatsRequest,
    ListContainersRequest, ListPodSandboxRequest, PodSandboxFilter, PodSandboxState,
    PodSandboxStateValue,
};
use cri::{CriError, RuntimeService};

use super::types::{
    format_nanos, format_time, ContainerStats, CpuStats, FsStats, MemoryStats, PodReference,
    PodStats,
};

/// A CRI call that failed, and which one.
#[derive(Debug, thiserror::Error)]
#[error("failed to {what}: {source}")]
pub struct RuntimeCallError {
    what: &'static str,
    #[source]
    source: CriError,
}

fn call<T>(what: &'static str, result: Result<T, CriError>) -> Result<T, RuntimeCallError> {
    result.map_err(|source| RuntimeCallError { what, source })
}

/// One entry per ready sandbox, sorted by namespace and name.
pub async fn pod_stats(
    runtime: &dyn RuntimeService,
    now: DateTime<Utc>,
) -> Result<Vec<PodStats>, RuntimeCallError> {
    let sandboxes = call(
        "list pod sandboxes",
        runtime
            .list_pod_sandbox(ListPodSandboxRequest {
                filter: Some(PodSandboxFilter {
                    state: Some(PodSandboxStateValue {
                        state: PodSandboxState::SandboxReady as i32,
                    }),
                    ..Default::default()
                }),
            })
            .await,
    )?
    .items;
    let containers = call(
        "list containers",
        runtime
            .list_containers(ListContainersRequest {
                filter: Some(ContainerFilter {
                    state: Some(ContainerStateValue {
                        state: ContainerState::ContainerRunning as i32,
                    }),
                    ..Default::default()
                }),
            })
            .await,
    )?
    .containers;
    let stats = call(
        "list container stats",
        runtime
            .list_container_stats(ListContainerStatsRequest::default())
            .await,
    )?
    .stats;
    let mut stats_by_id: HashMap<String, cri::v1::ContainerStats> = stats
        .into_iter()
        .filter_map(|s| Some((s.attributes.as_ref()?.id.clone(), s)))
        .collect();
    let mut by_sandbox: HashMap<&str, Vec<&Container>> = HashMap::new();
    for container in &containers {
        by_sandbox
            .entry(container.pod_sandbox_id.as_str())
            .or_default()
            .push(container);
    }

    let time = format_time(now);
    let mut pods: Vec<PodStats> = sandboxes
        .iter()
        .map(|sandbox| {
            let metadata = sandbox.metadata.clone().unwrap_or_default();
            let mut entries: Vec<ContainerStats> = by_sandbox
                .get(sandbox.id.as_str())
                .into_iter()
                .flatten()
                .map(|c| container_stats(c, stats_by_id.remove(&c.id), &time))
                .collect();
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            PodStats {
                pod_ref: PodReference {
                    name: metadata.name,
                    namespace: metadata.namespace,
                    uid: metadata.uid,
                },
                start_time: format_nanos(sandbox.created_at),
                cpu: Some(sum_cpu(&entries, &time)),
                memory: Some(sum_memory(&entries, &time)),
                containers: entries,
            }
        })
        .collect();
    pods.sort_by(|a, b| {
        (&a.pod_ref.namespace, &a.pod_ref.name).cmp(&(&b.pod_ref.namespace, &b.pod_ref.name))
    });
    Ok(pods)
}

fn value(v: Option<cri::v1::UInt64Value>) -> Option<u64> {
    v.map(|v| v.value)
}

/// A container's entry. Like upstream, a container the runtime gave no CPU or memory figures
/// for reports zero at the time of the request rather than nothing.
fn container_stats(
    container: &Container,
    stats: Option<cri::v1::ContainerStats>,
    now: &str,
) -> ContainerStats {
    let stats = stats.unwrap_or_default();
    let cpu = match stats.cpu {
        Some(cpu) => CpuStats {
            time: format_nanos(cpu.timestamp),
            usage_nano_cores: value(cpu.usage_nano_cores),
            usage_core_nano_seconds: value(cpu.usage_core_nano_seconds),
        },
        None => CpuStats {
            time: now.to_string(),
            usage_nano_cores: Some(0),
            usage_core_nano_seconds: Some(0),
        },
    };
    let memory = match stats.memory {
        Some(memory) => MemoryStats {
            time: format_nanos(memory.timestamp),
            available_bytes: value(memory.available_bytes),
            usage_bytes: value(memory.usage_bytes),
            working_set_bytes: value(memory.working_set_bytes),
            rss_bytes: value(memory.rss_bytes),
            page_faults: value(memory.page_faults),
            major_page_faults: value(memory.major_page_faults),
        },
        None => MemoryStats {
            time: now.to_string(),
            working_set_bytes: Some(0),
            ..Default::default()
        },
    };
    let rootfs = stats.writable_layer.map(|layer| FsStats {
        time: format_nanos(layer.timestamp),
        used_bytes: value(layer.used_bytes),
        inodes_used: value(layer.inodes_used),
        ..Default::default()
    });
    ContainerStats {
        name: container
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default(),
        start_time: format_nanos(container.created_at),
        cpu: Some(cpu),
        memory: Some(memory),
        rootfs,
        logs: None,
    }
}

/// Adds up what is known; `None` when no container knew it.
fn sum(values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.flatten().fold(None, |total, v| {
        Some(total.unwrap_or(0u64).saturating_add(v))
    })
}

/// The latest of the containers' sample times, or `now` for a pod without containers.
fn latest<'a>(times: impl Iterator<Item = &'a str>, now: &str) -> String {
    times.max().unwrap_or(now).to_string()
}

fn sum_cpu(containers: &[ContainerStats], now: &str) -> CpuStats {
    let cpus: Vec<&CpuStats> = containers.iter().filter_map(|c| c.cpu.as_ref()).collect();
    CpuStats {
        time: latest(cpus.iter().map(|c| c.time.as_str()), now),
        // Left out when the runtime gives no rate for any container: a sum of nothing is not 0.
        usage_nano_cores: if cpus.is_empty() {
            Some(0)
        } else {
            sum(cpus.iter().map(|c| c.usage_nano_cores))
        },
        usage_core_nano_seconds: sum(cpus.iter().map(|c| c.usage_core_nano_seconds)).or(Some(0)),
    }
}

/// The pod's memory; `availableBytes` is left out since the pod's limit is not known here.
fn sum_memory(containers: &[ContainerStats], now: &str) -> MemoryStats {
    let memories: Vec<&MemoryStats> = containers
        .iter()
        .filter_map(|c| c.memory.as_ref())
        .collect();
    MemoryStats {
        time: latest(memories.iter().map(|m| m.time.as_str()), now),
        available_bytes: None,
        usage_bytes: sum(memories.iter().map(|m| m.usage_bytes)),
        working_set_bytes: sum(memories.iter().map(|m| m.working_set_bytes)).or(Some(0)),
        rss_bytes: sum(memories.iter().map(|m| m.rss_bytes)),
        page_faults: sum(memories.iter().map(|m| m.page_faults)),
        major_page_faults: sum(memories.iter().map(|m| m.major_page_faults)),
    }
}
