//! Node lifecycle (upstream's `node-lifecycle-controller`) and taint-based eviction
//! (`taint-eviction-controller`).
//!
//! Health: every `--node-monitor-period` each node's heartbeat (its Ready condition's
//! `lastHeartbeatTime` and its Lease's `renewTime` in `kube-node-lease`) is compared with what was
//! seen before; the time of the last change is kept on this process's monotonic clock, so clock
//! skew between machines does not matter. A node silent for longer than
//! `--node-monitor-grace-period` (default 40 s) gets Ready, MemoryPressure, DiskPressure and
//! PIDPressure set to `Unknown` (reason `NodeStatusUnknown`, "Kubelet stopped posting node
//! status."; `NodeStatusNeverUpdated` when it never posted), and its pods' Ready conditions set to
//! False, as upstream's `MarkPodsNotReady`.
//!
//! Taints follow the Ready condition: False -> `node.kubernetes.io/not-ready`, Unknown ->
//! `node.kubernetes.io/unreachable`, each with effects NoSchedule and NoExecute (timeAdded set);
//! True removes them. Other taints are kept.
//!
//! Eviction: a pod on a node with NoExecute taints is deleted at once when it does not tolerate
//! one of them, after the smallest `tolerationSeconds` of its matching tolerations (counted from
//! the taint's `timeAdded`) when it tolerates them for a while, and never when it tolerates them
//! forever (event `TaintManagerEviction`, as upstream).
//!
//! Not done: zone-aware eviction rate limiting (`--node-eviction-rate`, secondary rates, the
//! unhealthy-zone threshold); evictions here are paced only by tolerations.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use client::informer::store::{pod_node_name_indexer, NODE_NAME_INDEX};
use client::informer::{Event, Scope};
use client::{Api, Informer};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::json;
use tokio::time::Instant;
use workqueue::Queue;

use crate::framework::{reference, run_workers, stop_queue_on_shutdown, ControllerContext};

pub const NOT_READY_TAINT: &str = "node.kubernetes.io/not-ready";
pub const UNREACHABLE_TAINT: &str = "node.kubernetes.io/unreachable";
const LEASE_NAMESPACE: &str = "kube-node-lease";
const UNKNOWN_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The taints the Ready condition calls for: (key, effect) pairs.
pub(crate) fn wanted_taints(ready: Option<&str>) -> Vec<(&'static str, &'static str)> {
    let key = match ready {
        Some("True") => return Vec::new(),
        Some("False") => NOT_READY_TAINT,
        // Unknown, or a node that never reported.
        _ => UNREACHABLE_TAINT,
    };
    vec![(key, "NoSchedule"), (key, "NoExecute")]
}

/// The node's taints with the condition taints brought in line; `None` when nothing changes.
pub(crate) fn reconcile_taints(
    current: &[Taint],
    ready: Option<&str>,
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let wanted = wanted_taints(ready);
    let ours = |t: &Taint| t.key == NOT_READY_TAINT || t.key == UNREACHABLE_TAINT;
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || wanted.iter().any(|(k, e)| t.key == *k && t.effect == *e))
        .cloned()
        .collect();
    for (key, effect) in &wanted {
        if !next.iter().any(|t| t.key == *key && t.effect == *effect) {
            next.push(Taint {
                key: key.to_string(),
                effect: effect.to_string(),
                time_added: (*effect == "NoExecute").then_some(Time(now)),
                value: None,
            });
        }
    }
    (next.len() != current.len() || next.iter().zip(current).any(|(a, b)| a != b)).then_some(next)
}

/// Whether `toleration` tolerates `taint` (upstream's `ToleratesTaint`).
pub(crate) fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    if let Some(effect) = toleration.effect.as_deref().filter(|e| !e.is_empty()) {
        if effect != taint.effect {
            return false;
        }
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("Equal") {
        "Exists" => true,
        "Equal" | "" => {
            // An empty key with Equal matches nothing (validation forbids it anyway).
            !key.is_empty()
                && toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        _ => false,
    }
}

/// When a pod must go from a node with `taints`: `Some(ZERO)` now, `Some(d)` after `d` more,
/// `None` never.
pub(crate) fn eviction_delay(pod: &Pod, taints: &[Taint], now: Timestamp) -> Option<Duration> {
    let tolerations: Vec<Toleration> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.clone())
        .unwrap_or_default();
    let mut delay: Option<Duration> = None;
    for taint in taints.iter().filter(|t| t.effect == "NoExecute") {
        let matching: Vec<&Toleration> =
            tolerations.iter().filter(|t| tolerates(t, taint)).collect();
        if matching.is_empty() {
            return Some(Duration::ZERO);
        }
        // The shortest bounded toleration decides; all unbounded means this taint is fine.
        let Some(seconds) = matching.iter().filter_map(|t| t.toleration_seconds).min() else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let elapsed = now.as_second().saturating_sub(added.as_second()).max(0) as u64;
        let left = Duration::from_secs(
            u64::try_from(seconds.max(0))
                .unwrap_or(0)
                .saturating_sub(elapsed),
        );
        delay = Some(delay.map_or(left, |d| d.min(left)));
    }
    delay
}

/// What the monitor last saw of a node's heartbeat, and when (local clock).
struct Probe {
    marker: String,
    at: Instant,
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let nodes = ctx.factory.informer::<Node>();
    let leases = ctx
        .factory
        .informer_for::<Lease>(Scope::namespace(LEASE_NAMESPACE));
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
    let client = ctx.client.clone();
    let grace = ctx.options.node_monitor_grace_period;
    let period = ctx
        .options
        .node_monitor_period
        .max(Duration::from_millis(100));
    let mut stop = ctx.stop.clone();
    tokio::spawn(async move {
        let probes: Mutex<HashMap<String, Probe>> = Mutex::new(HashMap::new());
        let mut tick = tokio::time::interval(period);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if !nodes.has_synced() || !leases.has_synced() {
                continue;
            }
            monitor_once(&client, &nodes, &leases, &pods, &probes, grace).await;
        }
    });
    Ok(())
}

async fn monitor_once(
    client: &client::Client,
    nodes: &Informer<Node>,
    leases: &Informer<Lease>,
    pods: &Informer<Pod>,
    probes: &Mutex<HashMap<String, Probe>>,
    grace: Duration,
) {
    let api: Api<Node> = client.api(None);
    let listed = nodes.store().list();
    if let Ok(mut p) = probes.lock() {
        p.retain(|name, _| {
            listed
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(name.as_str()))
        });
    }
    for node in listed {
        let name = node.metadata.name.clone().unwrap_or_default();
        let ready = ready_condition(&node);
        let lease_renew = leases
            .store()
            .get_namespaced(Some(LEASE_NAMESPACE), &name)
            .and_then(|l| {
                l.spec
                    .as_ref()
                    .and_then(|s| s.renew_time.as_ref())
                    .map(|t| t.0.to_string())
            });
        let marker = format!(
            "{:?}|{:?}|{:?}",
            ready
                .and_then(|c| c.last_heartbeat_time.as_ref())
                .map(|t| t.0.to_string()),
            ready.map(|c| c.status.clone()),
            lease_renew
        );
        let silent_for = match probes.lock() {
            Ok(mut p) => {
                let probe = p.entry(name.clone()).or_insert_with(|| Probe {
                    marker: marker.clone(),
                    at: Instant::now(),
                });
                if probe.marker != marker {
                    probe.marker = marker;
                    probe.at = Instant::now();
                }
                probe.at.elapsed()
            }
            Err(_) => Duration::ZERO,
        };
        let mut status_now = ready.map(|c| c.status.clone());
        let now = Timestamp::now();
        if silent_for > grace && status_now.as_deref() != Some("Unknown") {
            let mut updated = (*node).clone();
            let status = updated.status.get_or_insert_with(Default::default);
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let never = !conditions.iter().any(|c| c.type_ == "Ready");
            for kind in UNKNOWN_CONDITIONS {
                let (reason, message) = if never {
                    (
                        "NodeStatusNeverUpdated",
                        "Kubelet never posted node status.",
                    )
                } else {
                    ("NodeStatusUnknown", "Kubelet stopped posting node status.")
                };
                match conditions.iter_mut().find(|c| c.type_ == kind) {
                    Some(c) => {
                        c.status = "Unknown".into();
                        c.reason = Some(reason.into());
                        c.message = Some(message.into());
                        c.last_transition_time = Some(Time(now));
                    }
                    None if kind == "Ready" || !never => conditions.push(NodeCondition {
                        type_: kind.into(),
                        status: "Unknown".into(),
                        reason: Some(reason.into()),
                        message: Some(message.into()),
                        last_transition_time: Some(Time(now)),
                        last_heartbeat_time: None,
                    }),
                    None => {}
                }
            }
            match api.replace_status(&name, &updated).await {
                Ok(_) => {
                    tracing::info!(node = %name, silent = ?silent_for, "node stopped posting status: Ready is Unknown");
                    status_now = Some("Unknown".into());
                    mark_pods_not_ready(client, pods, &name).await;
                }
                Err(err) => {
                    tracing::warn!(node = %name, error = %err, "could not mark the node unknown");
                    continue;
                }
            }
        }
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if let Some(next) = reconcile_taints(&taints, status_now.as_deref(), now) {
            let patch = json!({"spec": {"taints": next}});
            if let Err(err) = api
                .patch(
                    &name,
                    &client::client::PatchParams::default(),
                    &client::client::Patch::Merge(&patch),
                )
                .await
            {
                tracing::warn!(node = %name, error = %err, "could not update the node's taints");
            }
        }
    }
}

async fn mark_pods_not_ready(client: &client::Client, pods: &Informer<Pod>, node: &str) {
    for pod in pods.store().by_index(NODE_NAME_INDEX, node) {
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        if !ready {
            continue;
        }
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut updated = (*pod).clone();
        if let Some(conditions) = updated.status.as_mut().and_then(|s| s.conditions.as_mut()) {
            for c in conditions.iter_mut().filter(|c| c.type_ == "Ready") {
                c.status = "False".into();
                c.last_transition_time = Some(Time(Timestamp::now()));
            }
        }
        let api: Api<Pod> = client.api(Some(&ns));
        if let Err(err) = api.replace_status(&name, &updated).await {
            tracing::debug!(pod = %format!("{ns}/{name}"), error = %err, "could not mark a pod not ready");
        }
    }
}

pub fn start_taint_eviction(ctx: &ControllerContext) -> anyhow::Result<()> {
    let nodes = ctx.factory.informer::<Node>();
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NODE_NAME_INDEX, pod_node_name_indexer());
    let queue: Queue<String> = Queue::new("taint_eviction");
    stop_queue_on_shutdown(ctx, queue.clone());
    {
        let q = queue.clone();
        pods.add_event_handler(None, move |event| {
            if let Event::Add(p) | Event::Update { new: p, .. } = event {
                if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() {
                    q.add(crate::framework::key_of(p.as_ref()));
                }
            }
        });
    }
    {
        let (q, pods) = (queue.clone(), pods.clone());
        nodes.add_event_handler(None, move |event| {
            if let Event::Add(n) | Event::Update { new: n, .. } = event {
                let has_no_execute = n
                    .spec
                    .as_ref()
                    .and_then(|s| s.taints.as_ref())
                    .is_some_and(|t| t.iter().any(|t| t.effect == "NoExecute"));
                if has_no_execute {
                    for pod in pods
                        .store()
                        .by_index(NODE_NAME_INDEX, n.metadata.name.as_deref().unwrap_or(""))
                    {
                        q.add(crate::framework::key_of(pod.as_ref()));
                    }
                }
            }
        });
    }
    let client = ctx.client.clone();
    let recorder = ctx.recorder("taint-eviction-controller");
    let requeue = queue.clone();
    let pending: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    run_workers("taint-eviction-controller", queue, 8, move |key: String| {
        let (client, nodes, pods, recorder, requeue, pending) = (
            client.clone(),
            nodes.clone(),
            pods.clone(),
            recorder.clone(),
            requeue.clone(),
            pending.clone(),
        );
        async move {
            let Some(pod) = pods.store().get(&key) else {
                return Ok(());
            };
            if pod.metadata.deletion_timestamp.is_some() {
                return Ok(());
            }
            let node_name = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_default();
            let Some(node) = nodes.store().get(&node_name) else {
                return Ok(());
            };
            let taints = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            match eviction_delay(&pod, &taints, Timestamp::now()) {
                None => Ok(()),
                Some(delay) if !delay.is_zero() => {
                    // Come back when the toleration runs out (once per deadline).
                    let due = Instant::now() + delay;
                    let fresh = pending
                        .lock()
                        .map(|mut p| p.insert(key.clone(), due).is_none_or(|old| old != due))
                        .unwrap_or(true);
                    if fresh {
                        requeue.add_after(key, delay);
                    }
                    Ok(())
                }
                Some(_) => {
                    if let Ok(mut p) = pending.lock() {
                        p.remove(&key);
                    }
                    let (ns, name) = client::informer::store::split_key(&key);
                    recorder.normal(
                        &reference(pod.as_ref()),
                        "TaintManagerEviction",
                        &format!("Marking for deletion Pod {key}"),
                    );
                    let api: Api<Pod> = client.api(ns);
                    match api.delete(name, &Default::default()).await {
                        Err(err) if !err.is_not_found() => Err(err.into()),
                        _ => Ok(()),
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodSpec;

    fn taint(key: &str, effect: &str, added: Option<i64>) -> Taint {
        Taint {
            key: key.into(),
            effect: effect.into(),
            time_added: added.map(|s| Time(Timestamp::from_second(s).unwrap_or_default())),
            value: None,
        }
    }

    fn toleration(
        key: Option<&str>,
        operator: &str,
        effect: Option<&str>,
        seconds: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: key.map(str::to_string),
            operator: Some(operator.into()),
            effect: effect.map(str::to_string),
            toleration_seconds: seconds,
            value: None,
        }
    }

    fn pod(tolerations: Vec<Toleration>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                tolerations: Some(tolerations),
                ..PodSpec::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn taints_follow_the_ready_condition_and_keep_others() {
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let user = taint("dedicated", "NoSchedule", None);
        let next =
            reconcile_taints(std::slice::from_ref(&user), Some("Unknown"), now).unwrap_or_default();
        let keys: Vec<(String, String)> = next
            .iter()
            .map(|t| (t.key.clone(), t.effect.clone()))
            .collect();
        assert_eq!(
            keys,
            [
                ("dedicated".into(), "NoSchedule".into()),
                (UNREACHABLE_TAINT.into(), "NoSchedule".into()),
                (UNREACHABLE_TAINT.into(), "NoExecute".into())
            ]
        );
        assert!(next[2].time_added.is_some() && next[1].time_added.is_none());
        assert!(
            reconcile_taints(&next, Some("Unknown"), now).is_none(),
            "stable"
        );
        let not_ready = reconcile_taints(&next, Some("False"), now).unwrap_or_default();
        assert!(not_ready.iter().all(|t| t.key != UNREACHABLE_TAINT));
        assert_eq!(
            not_ready
                .iter()
                .filter(|t| t.key == NOT_READY_TAINT)
                .count(),
            2
        );
        let healthy = reconcile_taints(&not_ready, Some("True"), now).unwrap_or_default();
        assert_eq!(healthy, vec![user]);
    }

    #[test]
    fn eviction_follows_tolerations() {
        let now = Timestamp::from_second(1000).unwrap_or_default();
        let taints = vec![
            taint(UNREACHABLE_TAINT, "NoExecute", Some(900)),
            taint("x", "NoSchedule", None),
        ];
        assert_eq!(
            eviction_delay(&pod(vec![]), &taints, now),
            Some(Duration::ZERO)
        );
        let for_300 = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            Some("NoExecute"),
            Some(300),
        )]);
        assert_eq!(
            eviction_delay(&for_300, &taints, now),
            Some(Duration::from_secs(200)),
            "100 s already passed"
        );
        let forever = pod(vec![toleration(None, "Exists", None, None)]);
        assert_eq!(eviction_delay(&forever, &taints, now), None);
        let wrong_effect = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            Some("NoSchedule"),
            None,
        )]);
        assert_eq!(
            eviction_delay(&wrong_effect, &taints, now),
            Some(Duration::ZERO)
        );
        let expired = pod(vec![toleration(
            Some(UNREACHABLE_TAINT),
            "Exists",
            None,
            Some(10),
        )]);
        assert_eq!(eviction_delay(&expired, &taints, now), Some(Duration::ZERO));
        assert_eq!(
            eviction_delay(&pod(vec![]), &[], now),
            None,
            "no NoExecute taint"
        );
    }
}
