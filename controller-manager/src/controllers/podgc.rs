//! Pod garbage collection (upstream's `pkg/controller/podgc`), every 20 s:
//! - terminated pods (phase Succeeded or Failed) beyond `--terminated-pod-gc-threshold` are
//!   deleted, oldest first (a threshold <= 0 disables this);
//! - pods bound to a node that no longer exists are deleted at once (grace period 0), after a
//!   live GET confirms the node is gone (the informer may simply not have seen it yet);
//! - pods that are terminating but were never scheduled are deleted at once: no kubelet will ever
//!   finish them.
//!
//! Upstream also sets a `DisruptionTarget` condition before deleting orphaned pods; not done.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use client::{Api, Informer};
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::framework::ControllerContext;

const GC_PERIOD: Duration = Duration::from_secs(20);

fn terminated(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

fn created(pod: &Pod) -> i64 {
    pod.metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or(0)
}

/// What one pass would delete, and why: (namespace/name, reason).
pub(crate) fn plan(
    pods: &[Arc<Pod>],
    nodes: &HashSet<String>,
    threshold: i64,
) -> Vec<(Arc<Pod>, &'static str)> {
    let mut out: Vec<(Arc<Pod>, &'static str)> = Vec::new();
    let mut done: Vec<Arc<Pod>> = pods
        .iter()
        .filter(|p| terminated(p) && p.metadata.deletion_timestamp.is_none())
        .cloned()
        .collect();
    if threshold > 0 && done.len() as i64 > threshold {
        done.sort_by_key(|p| created(p));
        let excess = done.len() - usize::try_from(threshold).unwrap_or(usize::MAX);
        out.extend(done.into_iter().take(excess).map(|p| (p, "terminated")));
    }
    for pod in pods {
        if out.iter().any(|(p, _)| Arc::ptr_eq(p, pod)) {
            continue;
        }
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        if !node.is_empty() && !nodes.contains(node) {
            out.push((pod.clone(), "orphaned"));
        } else if node.is_empty() && pod.metadata.deletion_timestamp.is_some() {
            out.push((pod.clone(), "unscheduled-terminating"));
        }
    }
    out
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let pods = ctx.factory.informer::<Pod>();
    let nodes = ctx.factory.informer::<Node>();
    let client = ctx.client.clone();
    let threshold = ctx.options.terminated_pod_gc_threshold;
    let mut stop = ctx.stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(GC_PERIOD);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if !pods.has_synced() || !nodes.has_synced() {
                continue;
            }
            gc_once(&client, &pods, &nodes, threshold).await;
        }
    });
    Ok(())
}

async fn gc_once(
    client: &client::Client,
    pods: &Informer<Pod>,
    nodes: &Informer<Node>,
    threshold: i64,
) {
    let known: HashSet<String> = nodes.store().keys().into_iter().collect();
    let all = pods.store().list();
    let node_api: Api<Node> = client.api(None);
    for (pod, why) in plan(&all, &known, threshold) {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        if why == "orphaned" {
            // Only a live answer may declare the node gone.
            let node = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            match node_api.get_opt(&node).await {
                Ok(None) => {}
                Ok(Some(_)) => continue,
                Err(err) => {
                    tracing::warn!(%node, error = %err, "podgc cannot check a node; skipping its pods");
                    continue;
                }
            }
        }
        let api: Api<Pod> = client.api(Some(&ns));
        let params = client::client::DeleteParams {
            grace_period_seconds: (why != "terminated").then_some(0),
            preconditions: pod
                .metadata
                .uid
                .clone()
                .map(|uid| client::client::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(()) => {
                tracing::info!(pod = %format!("{ns}/{name}"), reason = why, "garbage-collected a pod")
            }
            Err(err) if err.is_not_found() || err.is_conflict() => {}
            Err(err) => {
                tracing::warn!(pod = %format!("{ns}/{name}"), error = %err, "podgc could not delete a pod")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::api::ObjectMeta;

    fn pod(
        name: &str,
        node: Option<&str>,
        phase: &str,
        created_s: i64,
        terminating: bool,
    ) -> Arc<Pod> {
        let at = |s: i64| Time(k8s_openapi::jiff::Timestamp::from_second(s).unwrap_or_default());
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                creation_timestamp: Some(at(created_s)),
                deletion_timestamp: terminating.then(|| at(created_s + 1)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(str::to_string),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(phase.into()),
                ..PodStatus::default()
            }),
        })
    }

    fn names(plan: &[(Arc<Pod>, &'static str)]) -> Vec<(String, &'static str)> {
        plan.iter()
            .map(|(p, why)| (p.metadata.name.clone().unwrap_or_default(), *why))
            .collect()
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_oldest_first() {
        let nodes = HashSet::from(["n1".to_string()]);
        let pods = vec![
            pod("new-done", Some("n1"), "Succeeded", 300, false),
            pod("old-done", Some("n1"), "Failed", 100, false),
            pod("mid-done", Some("n1"), "Succeeded", 200, false),
            pod("running", Some("n1"), "Running", 50, false),
        ];
        assert_eq!(
            names(&plan(&pods, &nodes, 1)),
            [
                ("old-done".to_string(), "terminated"),
                ("mid-done".to_string(), "terminated")
            ]
        );
        assert!(
            plan(&pods, &nodes, 0).is_empty(),
            "a threshold of 0 disables it"
        );
        assert!(plan(&pods, &nodes, 5).is_empty());
    }

    #[test]
    fn orphaned_and_unscheduled_terminating_pods_go() {
        let nodes = HashSet::from(["n1".to_string()]);
        let pods = vec![
            pod("on-gone-node", Some("n2"), "Running", 1, false),
            pod("pending-deleted", None, "Pending", 1, true),
            pod("pending", None, "Pending", 1, false),
            pod("fine", Some("n1"), "Running", 1, false),
        ];
        assert_eq!(
            names(&plan(&pods, &nodes, 100)),
            [
                ("on-gone-node".to_string(), "orphaned"),
                ("pending-deleted".to_string(), "unscheduled-terminating")
            ]
        );
    }
}
