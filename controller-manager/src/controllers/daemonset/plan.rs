//! The controller's decisions as pure functions of cached objects: the pods of a DaemonSet
//! grouped by node (`getNodesToDaemonPods`), the per-node plan of creations and deletions
//! (`podsShouldBeOnNode` over all nodes, plus `getUnscheduledPodsWithoutNode`), the rolling
//! update budget and victims (`rollingUpdate` with `updatedDesiredNodeCounts`), and the status
//! counts (`updateDaemonSetStatus`). Nothing here talks to the API.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::eligibility::{node_should_run, target_node};
use crate::framework::podutil::{is_available, is_ready, phase};

/// The label naming the ControllerRevision a pod was made from.
pub const REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// The legacy label carrying the template generation.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";

// ---- pod predicates ----

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// upstream `IsPodUpdated`, by the revision hash. Upstream also compares the
/// pod-template-generation label, but formats a pointer there, so in practice only the hash
/// decides; we keep that behaviour.
pub fn is_updated(pod: &Pod, hash: &str) -> bool {
    !hash.is_empty() && label(pod, REVISION_HASH_LABEL) == Some(hash)
}

fn is_bound(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// upstream `podByCreationTimestampAndPhase`: bound pods first, then the oldest, then by name.
pub fn oldest_first(a: &Pod, b: &Pod) -> Ordering {
    match (is_bound(a), is_bound(b)) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

fn name_of(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// upstream `getNodesToDaemonPods`: the DaemonSet's pods by the node they are for; pods that
/// name no node are left out.
pub fn pods_by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = target_node(pod) {
            by_node
                .entry(node.to_string())
                .or_default()
                .push(pod.clone());
        }
    }
    by_node
}

// ---- the rollout budget ----

/// `RollingUpdate` (the default) or `OnDelete`, and for the former the surge and unavailability
/// allowed, as absolute pod counts of the desired number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub rolling: bool,
    pub max_surge: usize,
    pub max_unavailable: usize,
}

/// upstream `GetScaledValueFromIntOrPercent` rounding up.
pub fn scaled(value: Option<&IntOrString>, total: usize) -> Result<usize, String> {
    match value {
        None => Ok(0),
        Some(IntOrString::Int(n)) => Ok(usize::try_from(*n).unwrap_or(0)),
        Some(IntOrString::String(s)) => {
            let percent = s
                .strip_suffix('%')
                .and_then(|p| p.parse::<u64>().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let total = u64::try_from(total).unwrap_or(u64::MAX);
            let value = (percent.saturating_mul(total)).div_ceil(100);
            Ok(usize::try_from(value).unwrap_or(usize::MAX))
        }
    }
}

/// upstream `SurgeCount` / `UnavailableCount` for `desired` nodes, with the fallback of one
/// unavailable pod when neither is allowed (a rollout that could never progress).
pub fn budget(ds: &DaemonSet, desired: usize) -> Result<Budget, String> {
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
    let rolling = strategy
        .and_then(|s| s.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    if !rolling {
        return Ok(Budget {
            rolling,
            max_surge: 0,
            max_unavailable: 0,
        });
    }
    let params = strategy.and_then(|s| s.rolling_update.as_ref());
    let max_surge = scaled(params.and_then(|p| p.max_surge.as_ref()), desired)?;
    let mut max_unavailable = scaled(params.and_then(|p| p.max_unavailable.as_ref()), desired)?;
    if max_surge == 0 && max_unavailable == 0 {
        max_unavailable = 1;
    }
    Ok(Budget {
        rolling,
        max_surge,
        max_unavailable,
    })
}

/// upstream `AllowsSurge`: whether more than one pod per node is allowed during an update.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    budget(ds, 1).is_ok_and(|b| b.rolling && b.max_surge > 0)
}

// ---- manage ----

/// A finished pod found on a node that keeps the daemon: failed ones are deleted under a
/// per-node backoff, succeeded ones at once.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedPod {
    pub node: String,
    pub pod: String,
    pub namespace: String,
}

/// What `manage` does this sync, before the backoff of failed pods is applied.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagePlan {
    /// Nodes to create a pod for.
    pub create_on: Vec<String>,
    /// Pods to delete (not finished ones: those are listed below).
    pub delete: Vec<String>,
    pub failed: Vec<FinishedPod>,
    pub succeeded: Vec<FinishedPod>,
}

impl ManagePlan {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.create_on.is_empty()
            && self.delete.is_empty()
            && self.failed.is_empty()
            && self.succeeded.is_empty()
    }
}

/// The parts of a DaemonSet the plans read.
pub struct Daemon<'a> {
    pub template: &'a PodTemplateSpec,
    /// The current revision's hash.
    pub hash: &'a str,
    pub min_ready_seconds: i32,
    pub surge: bool,
}

/// upstream `manage`: `podsShouldBeOnNode` for every node, then the unbound pods of nodes that
/// no longer exist.
pub fn manage_plan(
    daemon: &Daemon<'_>,
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    now: Timestamp,
) -> ManagePlan {
    let mut plan = ManagePlan::default();
    for node in nodes {
        pods_should_be_on_node(daemon, node, by_node, now, &mut plan);
    }
    let existing: HashSet<&str> = nodes.iter().map(|n| node_name(n)).collect();
    for (node, pods) in by_node {
        if existing.contains(node.as_str()) {
            continue;
        }
        // A bound pod of a deleted node is the pod GC's; an unbound one would never go.
        plan.delete
            .extend(pods.iter().filter(|p| !is_bound(p)).map(|p| name_of(p)));
    }
    plan
}

fn pods_should_be_on_node(
    daemon: &Daemon<'_>,
    node: &Node,
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    now: Timestamp,
    plan: &mut ManagePlan,
) {
    let name = node_name(node);
    let fit = node_should_run(daemon.template, node);
    let pods = by_node.get(name).map(Vec::as_slice).unwrap_or(&[]);
    if fit.should_run && pods.is_empty() {
        plan.create_on.push(name.to_string());
        return;
    }
    if !fit.should_continue_running {
        plan.delete.extend(
            pods.iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| name_of(p)),
        );
        return;
    }
    let mut running: Vec<&Arc<Pod>> = Vec::new();
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let finished = || FinishedPod {
            node: name.to_string(),
            pod: name_of(pod),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        };
        match phase(pod) {
            "Failed" => plan.failed.push(finished()),
            "Succeeded" => plan.succeeded.push(finished()),
            _ => running.push(pod),
        }
    }
    running.sort_by(|a, b| oldest_first(a, b));
    if !daemon.surge {
        // One pod per node: the oldest stays.
        plan.delete
            .extend(running.iter().skip(1).map(|p| name_of(p)));
        return;
    }
    if running.len() <= 1 {
        if running.is_empty() && fit.should_run {
            // Surging needs at least one live pod on the node.
            plan.create_on.push(name.to_string());
        }
        return;
    }
    // With surge, an old and a new pod may coexist while the new one is not yet available.
    let mut oldest_new: Option<&Arc<Pod>> = None;
    let mut oldest_old: Option<&Arc<Pod>> = None;
    for pod in running {
        let slot = if label(pod, REVISION_HASH_LABEL) == Some(daemon.hash) {
            &mut oldest_new
        } else {
            &mut oldest_old
        };
        if slot.is_none() {
            *slot = Some(pod);
        } else {
            plan.delete.push(name_of(pod));
        }
    }
    if let (Some(new), Some(old)) = (oldest_new, oldest_old) {
        if !is_ready(old) || is_available(new, daemon.min_ready_seconds, now) {
            plan.delete.push(name_of(old));
        }
    }
}

// ---- rolling update ----

/// What `rollingUpdate` does this sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollingPlan {
    pub delete: Vec<String>,
    pub create_on: Vec<String>,
}

/// upstream `findUpdatedPodsOnNode`: the live new and old pod of a node; `None` when a node
/// has two of either (the manage loop is still cleaning it up).
fn updated_and_old<'a>(
    pods: &'a [Arc<Pod>],
    hash: &str,
) -> Option<(Option<&'a Pod>, Option<&'a Pod>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let slot = if is_updated(pod, hash) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod.as_ref());
    }
    Some((new, old))
}

/// The nodes that should run the daemon, with the pods of every node that has any.
fn desired_nodes(
    daemon: &Daemon<'_>,
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
) -> (usize, BTreeMap<String, Vec<Arc<Pod>>>) {
    let mut all = by_node.clone();
    let mut desired = 0;
    for node in nodes {
        if node_should_run(daemon.template, node).should_run {
            desired += 1;
            all.entry(node_name(node).to_string()).or_default();
        }
    }
    (desired, all)
}

/// The number of nodes that should run the daemon (`desiredNumberScheduled`).
pub fn desired_count(template: &PodTemplateSpec, nodes: &[Arc<Node>]) -> usize {
    nodes
        .iter()
        .filter(|n| node_should_run(template, n).should_run)
        .count()
}

/// upstream `rollingUpdate`: with no surge, delete old pods while at most `max_unavailable`
/// nodes lack an available updated pod (unavailable old pods are replaced regardless); with
/// surge, start new pods beside old ones on up to `max_surge` nodes and delete an old pod once
/// its replacement is available. Nodes are visited in name order.
pub fn rolling_plan(
    daemon: &Daemon<'_>,
    budget: Budget,
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    now: Timestamp,
) -> RollingPlan {
    let (_, all) = desired_nodes(daemon, nodes, by_node);
    let available = |p: &Pod| is_available(p, daemon.min_ready_seconds, now);
    let mut plan = RollingPlan::default();
    if budget.max_surge == 0 {
        let mut unavailable = 0;
        let mut replace_now = Vec::new();
        let mut candidates = Vec::new();
        for pods in all.values() {
            match updated_and_old(pods, daemon.hash) {
                // Being cleaned up, or empty, or doubled: the manage loop's; count it down.
                None | Some((None, None)) | Some((Some(_), Some(_))) => unavailable += 1,
                Some((Some(new), None)) => {
                    if !available(new) {
                        unavailable += 1;
                    }
                }
                Some((None, Some(old))) => {
                    if !available(old) {
                        replace_now.push(name_of(old));
                    } else if unavailable < budget.max_unavailable {
                        candidates.push(name_of(old));
                    }
                }
            }
        }
        let room = budget.max_unavailable.saturating_sub(unavailable);
        plan.delete = replace_now;
        plan.delete.extend(candidates.into_iter().take(room));
        return plan;
    }
    let mut surging = 0;
    for (node, pods) in &all {
        match updated_and_old(pods, daemon.hash) {
            None => surging += 1,
            Some((_, None)) => {}
            Some((None, Some(old))) => {
                if !available(old) {
                    plan.create_on.push(node.clone());
                } else if surging < budget.max_surge {
                    surging += 1;
                    plan.create_on.push(node.clone());
                }
            }
            Some((Some(new), Some(old))) => {
                if available(new) {
                    plan.delete.push(name_of(old));
                } else {
                    surging += 1;
                }
            }
        }
    }
    plan
}

// ---- status ----

/// The counts of `DaemonSetStatus` (`observedGeneration` is the writer's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub desired: i32,
    pub current: i32,
    pub misscheduled: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub unavailable: i32,
}

/// upstream `updateDaemonSetStatus`: per node that should run the daemon, whether it has a pod
/// and whether its oldest pod is ready, available and updated; pods on nodes that should not
/// run it are misscheduled.
pub fn calculate_counts(
    daemon: &Daemon<'_>,
    nodes: &[Arc<Node>],
    by_node: &BTreeMap<String, Vec<Arc<Pod>>>,
    now: Timestamp,
) -> Counts {
    let mut c = Counts::default();
    for node in nodes {
        let should_run = node_should_run(daemon.template, node).should_run;
        let pods = by_node
            .get(node_name(node))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if !should_run {
            if !pods.is_empty() {
                c.misscheduled += 1;
            }
            continue;
        }
        c.desired += 1;
        let Some(pod) = pods.iter().min_by(|a, b| oldest_first(a, b)) else {
            continue;
        };
        c.current += 1;
        if is_ready(pod) {
            c.ready += 1;
            if is_available(pod, daemon.min_ready_seconds, now) {
                c.available += 1;
            }
        }
        if is_updated(pod, daemon.hash) {
            c.updated += 1;
        }
    }
    c.unavailable = c.desired - c.available;
    c
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{
        DaemonSetSpec, DaemonSetUpdateStrategy, RollingUpdateDaemonSet,
    };
    use k8s_openapi::api::core::v1::{NodeSpec, PodCondition, PodSpec, PodStatus, Taint};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    use super::super::eligibility::pin_to_node;
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn now() -> Timestamp {
        match Timestamp::from_second(NOW) {
            Ok(t) => t,
            Err(err) => panic!("bad test time: {err}"),
        }
    }

    fn at(seconds_ago: i64) -> Time {
        match Timestamp::from_second(NOW - seconds_ago) {
            Ok(t) => Time(t),
            Err(err) => panic!("bad test time: {err}"),
        }
    }

    fn node(name: &str, taint: Option<&str>) -> Arc<Node> {
        Arc::new(Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: Some(NodeSpec {
                taints: taint.map(|effect| {
                    vec![Taint {
                        key: "dedicated".into(),
                        effect: effect.into(),
                        ..Taint::default()
                    }]
                }),
                ..NodeSpec::default()
            }),
            status: None,
        })
    }

    /// A pod for `node` of revision `hash`, created `age` seconds ago; `state` is one of
    /// "pending", "ready", "failed", "succeeded", "deleting".
    fn pod(name: &str, node: &str, hash: &str, age: i64, state: &str) -> Arc<Pod> {
        let ready = state == "ready";
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                labels: Some([(REVISION_HASH_LABEL.to_string(), hash.to_string())].into()),
                creation_timestamp: Some(at(age)),
                deletion_timestamp: (state == "deleting").then(|| at(0)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                affinity: Some(pin_to_node(None, node)),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some(
                    match state {
                        "ready" => "Running",
                        "failed" => "Failed",
                        "succeeded" => "Succeeded",
                        _ => "Pending",
                    }
                    .into(),
                ),
                conditions: ready.then(|| {
                    vec![PodCondition {
                        type_: "Ready".into(),
                        status: "True".into(),
                        last_transition_time: Some(at(age)),
                        ..PodCondition::default()
                    }]
                }),
                ..PodStatus::default()
            }),
        })
    }

    fn template() -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: None,
            spec: Some(PodSpec::default()),
        }
    }

    fn daemon<'a>(template: &'a PodTemplateSpec, surge: bool) -> Daemon<'a> {
        Daemon {
            template,
            hash: "new",
            min_ready_seconds: 0,
            surge,
        }
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn nodes(names: &[&str]) -> Vec<Arc<Node>> {
        names.iter().map(|n| node(n, None)).collect()
    }

    /// The manage plan of a DaemonSet at revision "new" over `nodes` and `pods`.
    fn manage(surge: bool, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> ManagePlan {
        let t = template();
        manage_plan(&daemon(&t, surge), nodes, &pods_by_node(pods), now())
    }

    #[test]
    fn manage_plan_per_node() {
        let mut nodes = nodes(&["empty", "ok", "doubled", "failed", "done", "terminating"]);
        nodes.extend([
            node("noexec", Some("NoExecute")),
            node("nosched", Some("NoSchedule")),
            node("nosched-empty", Some("NoSchedule")),
        ]);
        let pods = vec![
            pod("ok-1", "ok", "new", 10, "ready"),
            pod("doubled-old", "doubled", "new", 100, "ready"),
            pod("doubled-young", "doubled", "new", 10, "pending"),
            pod("noexec-1", "noexec", "new", 10, "ready"),
            pod("nosched-1", "nosched", "new", 10, "ready"),
            pod("failed-1", "failed", "new", 10, "failed"),
            pod("done-1", "done", "new", 10, "succeeded"),
            pod("terminating-1", "terminating", "new", 10, "deleting"),
            pod("gone-1", "gone-node", "new", 10, "pending"),
        ];
        let plan = manage(false, &nodes, &pods);
        assert_eq!(plan.create_on, vec!["empty".to_string()]);
        assert_eq!(
            sorted(plan.delete),
            vec!["doubled-young", "gone-1", "noexec-1"],
            "extra pods, evicted pods and unbound pods of deleted nodes go; NoSchedule ones stay"
        );
        assert_eq!(plan.failed.len(), 1);
        assert_eq!(plan.failed[0].pod, "failed-1");
        assert_eq!(plan.failed[0].node, "failed");
        assert_eq!(plan.succeeded.len(), 1);
        assert_eq!(plan.succeeded[0].pod, "done-1");
    }

    #[test]
    fn bound_pods_of_deleted_nodes_are_left_to_pod_gc() {
        let mut bound = (*pod("bound", "gone", "new", 10, "ready")).clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some("gone".into());
        }
        let plan = manage(false, &[], &[Arc::new(bound)]);
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn surge_keeps_old_until_new_available() {
        let nodes = nodes(&["waiting", "done", "triple"]);
        let pods = vec![
            pod("w-old", "waiting", "old", 100, "ready"),
            pod("w-new", "waiting", "new", 10, "pending"),
            pod("d-old", "done", "old", 100, "ready"),
            pod("d-new", "done", "new", 10, "ready"),
            pod("t-new1", "triple", "new", 30, "ready"),
            pod("t-new2", "triple", "new", 10, "pending"),
        ];
        let plan = manage(true, &nodes, &pods);
        assert_eq!(sorted(plan.delete), vec!["d-old", "t-new2"]);
        assert!(plan.create_on.is_empty());
    }

    fn ds_with(strategy: Option<DaemonSetUpdateStrategy>) -> DaemonSet {
        DaemonSet {
            spec: Some(DaemonSetSpec {
                update_strategy: strategy,
                ..DaemonSetSpec::default()
            }),
            ..DaemonSet::default()
        }
    }

    fn rolling(surge: Option<IntOrString>, unavailable: Option<IntOrString>) -> DaemonSet {
        ds_with(Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: surge,
                max_unavailable: unavailable,
            }),
        }))
    }

    #[test]
    fn budget_table() {
        let pct = |s: &str| Some(IntOrString::String(s.into()));
        let int = |n: i32| Some(IntOrString::Int(n));
        let cases = [
            ("defaults", rolling(None, int(1)), 10, Ok((0, 1))),
            (
                "nothing allowed falls back to one",
                rolling(int(0), int(0)),
                10,
                Ok((0, 1)),
            ),
            (
                "percent rounds up",
                rolling(None, pct("25%")),
                10,
                Ok((0, 3)),
            ),
            ("surge percent", rolling(pct("10%"), int(0)), 5, Ok((1, 0))),
            ("bad percent", rolling(pct("ten"), None), 5, Err(())),
            ("no params", ds_with(None), 5, Ok((0, 1))),
        ];
        for (what, ds, desired, want) in cases {
            let got = budget(&ds, desired)
                .map(|b| (b.max_surge, b.max_unavailable))
                .map_err(|_| ());
            assert_eq!(got, want, "{what}");
        }
        let on_delete = ds_with(Some(DaemonSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: None,
        }));
        assert_eq!(budget(&on_delete, 3).map(|b| b.rolling), Ok(false));
        assert!(allows_surge(&rolling(int(1), int(0))));
        assert!(!allows_surge(&rolling(None, int(1))));
        assert!(!allows_surge(&on_delete));
    }

    fn budget_of(surge: usize, unavailable: usize) -> Budget {
        Budget {
            rolling: true,
            max_surge: surge,
            max_unavailable: unavailable,
        }
    }

    #[test]
    fn rolling_update_respects_max_unavailable() {
        let t = template();
        let d = daemon(&t, false);
        let nodes = nodes(&["a", "b", "c", "d"]);
        let plan = |pods: &[Arc<Pod>], unavailable| {
            rolling_plan(
                &d,
                budget_of(0, unavailable),
                &nodes,
                &pods_by_node(pods),
                now(),
            )
        };
        let mut pods = vec![
            pod("a-old", "a", "old", 100, "ready"),
            pod("b-old", "b", "old", 100, "ready"),
            pod("c-old", "c", "old", 100, "ready"),
            pod("d-old", "d", "old", 100, "ready"),
        ];
        assert_eq!(plan(&pods, 1).delete, vec!["a-old"], "one at a time");
        assert_eq!(plan(&pods, 2).delete, vec!["a-old", "b-old"]);

        // a was replaced by a new pod not yet ready: the budget is spent.
        pods[0] = pod("a-new", "a", "new", 1, "pending");
        let spent = plan(&pods, 1);
        assert!(spent.delete.is_empty(), "{spent:?}");

        // Once it is available the next old pod goes.
        pods[0] = pod("a-new", "a", "new", 1, "ready");
        assert_eq!(plan(&pods, 1).delete, vec!["b-old"]);

        // An unavailable old pod is replaced regardless of the budget.
        pods[0] = pod("a-new", "a", "new", 1, "pending");
        pods[3] = pod("d-old", "d", "old", 100, "pending");
        assert_eq!(plan(&pods, 1).delete, vec!["d-old"]);

        // A node without any pod counts as unavailable.
        let missing = plan(&pods[1..3], 1);
        assert!(missing.delete.is_empty(), "{missing:?}");
    }

    #[test]
    fn rolling_update_with_surge() {
        let t = template();
        let d = daemon(&t, true);
        let nodes = nodes(&["a", "b", "c"]);
        let plan = |pods: &[Arc<Pod>]| {
            rolling_plan(&d, budget_of(1, 0), &nodes, &pods_by_node(pods), now())
        };
        let mut pods = vec![
            pod("a-old", "a", "old", 100, "ready"),
            pod("b-old", "b", "old", 100, "ready"),
            pod("c-old", "c", "old", 100, "ready"),
        ];
        let first = plan(&pods);
        assert_eq!(first.create_on, vec!["a"]);
        assert!(first.delete.is_empty());

        pods.push(pod("a-new", "a", "new", 1, "pending"));
        assert_eq!(plan(&pods), RollingPlan::default(), "waiting for a-new");

        pods.pop();
        pods.push(pod("a-new", "a", "new", 1, "ready"));
        let next = plan(&pods);
        assert_eq!(next.delete, vec!["a-old"]);
        assert_eq!(next.create_on, vec!["b"]);
    }

    #[test]
    fn status_counts() {
        let t = template();
        let nodes = vec![
            node("a", None),
            node("b", None),
            node("c", None),
            node("tainted", Some("NoSchedule")),
        ];
        let pods = vec![
            pod("a-1", "a", "new", 100, "ready"),
            pod("b-1", "b", "old", 100, "ready"),
            pod("tainted-1", "tainted", "new", 100, "ready"),
        ];
        let mut d = daemon(&t, false);
        let counts = calculate_counts(&d, &nodes, &pods_by_node(&pods), now());
        assert_eq!(
            counts,
            Counts {
                desired: 3,
                current: 2,
                misscheduled: 1,
                ready: 2,
                updated: 1,
                available: 2,
                unavailable: 1,
            }
        );
        d.min_ready_seconds = 1000;
        let counts = calculate_counts(&d, &nodes, &pods_by_node(&pods), now());
        assert_eq!(
            (counts.ready, counts.available, counts.unavailable),
            (2, 0, 3)
        );
    }

    #[test]
    fn oldest_first_prefers_bound_then_age_then_name() {
        let young = pod("y", "a", "h", 1, "pending");
        let old = pod("o", "a", "h", 100, "pending");
        let mut bound = (*pod("b", "a", "h", 1, "pending")).clone();
        if let Some(spec) = bound.spec.as_mut() {
            spec.node_name = Some("a".into());
        }
        assert_eq!(oldest_first(&old, &young), Ordering::Less);
        assert_eq!(oldest_first(&bound, &old), Ordering::Less);
        let twin = pod("z", "a", "h", 1, "pending");
        assert_eq!(oldest_first(&young, &twin), Ordering::Less);
    }
}
