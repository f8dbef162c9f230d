//! The controller's decisions as pure functions of cached objects: which pods to claim, adopt
//! or release (upstream's `ControllerRefManager.ClaimPods`), how many pods to create or which to
//! delete (`manageReplicas` with `getPodsToDelete` and the `ActivePodsWithRanks` order), the
//! slow-start batch sizes, the pod to create from a template, and the status to report
//! (`calculateStatus`). Nothing here talks to the API, so every decision is unit-tested.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::LabelSelector as Selector;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use super::kind::{ReplicaCondition, ReplicaStatus};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;
/// Upstream's `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH: usize = 1;
/// The condition type set while creating or deleting pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// The annotation ranking pods for scale-down (GA `PodDeletionCost`).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

// ---- pod predicates (upstream's podutil / controller helpers) ----

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// `controller.IsPodActive`: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// The Ready condition's last transition time when the pod is Ready.
fn ready_since(pod: &Pod) -> Option<Option<&Timestamp>> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| &t.0))
}

/// `podutil.IsPodReady`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// `podutil.IsPodAvailable`: Ready for at least `min_ready_seconds` by `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            let min = i128::from(min_ready_seconds) * 1_000_000_000;
            since.as_nanosecond() + min < now.as_nanosecond()
        }
    }
}

fn node_name(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        // An empty or other phase sorts first, as a missing map entry (0) does upstream.
        _ => 0,
    }
}

/// `GetDeletionCostFromPodAnnotations`; an unparsable cost counts as 0 (upstream's validation
/// refuses it at admission, so only a broken writer could produce one).
fn deletion_cost(pod: &Pod) -> i32 {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

/// The most restarts of any container (app containers and restartable init containers).
fn max_restarts(pod: &Pod) -> i32 {
    let Some(status) = &pod.status else {
        return 0;
    };
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
}

/// upstream `afterOrZero`: zero (unknown) times sort first, then the later time first.
fn after_or_zero(a: Option<&Timestamp>, b: Option<&Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(a),
    }
}

/// upstream `logarithmicRankDiff`: ages compared in log2 buckets of nanoseconds, so pods of
/// about the same age count as the same age and a random choice among them is fair.
fn log_rank(t: &Timestamp, now: Timestamp) -> i64 {
    let age = now.as_nanosecond() - t.as_nanosecond();
    if age > 0 {
        // Truncation toward zero, as Go's int64(math.Log2(x)).
        (age as f64).log2() as i64
    } else {
        -1
    }
}

/// Compares two times of the same kind (ready-since, created) with logarithmic scale-down:
/// unknown first, then the newer (lower log-age bucket) first; `None` within one bucket.
fn compare_age(a: Option<&Timestamp>, b: Option<&Timestamp>, now: Timestamp) -> Option<Ordering> {
    match (a, b) {
        (Some(x), Some(y)) if x == y => None,
        (Some(x), Some(y)) => match log_rank(x, now).cmp(&log_rank(y, now)) {
            Ordering::Equal => None,
            other => Some(other),
        },
        (None, None) => None,
        _ => Some(after_or_zero(a, b)),
    }
}

/// upstream `ActivePodsWithRanks.Less` with `PodDeletionCost` and `LogarithmicScaleDown` on
/// (both default since 1.22): `Less` sorts first, and the first pods are deleted first.
pub fn compare_for_deletion(
    a: &Pod,
    rank_a: usize,
    b: &Pod,
    rank_b: usize,
    now: Timestamp,
) -> Ordering {
    // 1. Unassigned before assigned.
    let (na, nb) = (node_name(a), node_name(b));
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    // 2. Pending < Unknown < Running.
    let by_phase = phase_ordinal(a).cmp(&phase_ordinal(b));
    if by_phase != Ordering::Equal {
        return by_phase;
    }
    // 3. Not ready before ready.
    let (ra, rb) = (is_ready(a), is_ready(b));
    if ra != rb {
        return if ra {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // 4. Lower deletion cost first.
    let by_cost = deletion_cost(a).cmp(&deletion_cost(b));
    if by_cost != Ordering::Equal {
        return by_cost;
    }
    // 5. More related pods on the same node (doubled up) first.
    if rank_a != rank_b {
        return rank_b.cmp(&rank_a);
    }
    // 6. Ready for less time first.
    if ra && rb {
        let (ta, tb) = (ready_since(a).flatten(), ready_since(b).flatten());
        if let Some(order) = compare_age(ta, tb, now) {
            return order;
        }
        if ta != tb && ta.is_some() && tb.is_some() {
            // Same bucket: upstream breaks the tie by UID, a stable pseudo-random order.
            return a.metadata.uid.cmp(&b.metadata.uid);
        }
    }
    // 7. More restarts first.
    let by_restarts = max_restarts(b).cmp(&max_restarts(a));
    if by_restarts != Ordering::Equal {
        return by_restarts;
    }
    // 8. Newer first (unknown creation time first).
    let (ca, cb) = (
        a.metadata.creation_timestamp.as_ref().map(|t| &t.0),
        b.metadata.creation_timestamp.as_ref().map(|t| &t.0),
    );
    if ca != cb {
        return match compare_age(ca, cb, now) {
            Some(order) => order,
            None => a.metadata.uid.cmp(&b.metadata.uid),
        };
    }
    Ordering::Equal
}

/// upstream `getPodsToDelete`: the `count` pods to delete first, ranking each by how many
/// active `related` pods (of this owner and its siblings under the same controller) share its
/// node.
pub fn pods_to_delete(
    pods: &[Arc<Pod>],
    related: &[Arc<Pod>],
    count: usize,
    now: Timestamp,
) -> Vec<Arc<Pod>> {
    let mut on_node: HashMap<&str, usize> = HashMap::new();
    for pod in related.iter().filter(|p| is_active(p)) {
        *on_node.entry(node_name(pod)).or_default() += 1;
    }
    let mut ranked: Vec<(usize, &Arc<Pod>)> = pods
        .iter()
        .map(|p| (on_node.get(node_name(p)).copied().unwrap_or(0), p))
        .collect();
    if count < ranked.len() {
        ranked.sort_by(|(ra, a), (rb, b)| compare_for_deletion(a, *ra, b, *rb, now));
    }
    ranked
        .into_iter()
        .take(count)
        .map(|(_, p)| p.clone())
        .collect()
}

// ---- the diff ----

/// What `manageReplicas` does this sync.
#[derive(Debug, Clone, PartialEq)]
pub enum ManagePlan {
    Nothing,
    /// Create this many pods (capped by the burst).
    Create(usize),
    /// Delete these pods, best candidates first (capped by the burst).
    Delete(Vec<Arc<Pod>>),
}

/// Compares the claimed active pods with the desired count.
pub fn manage_plan(
    claimed: &[Arc<Pod>],
    related: &[Arc<Pod>],
    desired: i32,
    burst: usize,
    now: Timestamp,
) -> ManagePlan {
    let desired = usize::try_from(desired).unwrap_or(0);
    let have = claimed.len();
    match have.cmp(&desired) {
        Ordering::Equal => ManagePlan::Nothing,
        Ordering::Less => ManagePlan::Create((desired - have).min(burst)),
        Ordering::Greater => ManagePlan::Delete(pods_to_delete(
            claimed,
            related,
            (have - desired).min(burst),
            now,
        )),
    }
}

/// upstream `slowStartBatch`'s batch sizes: `initial`, doubling, until `count` are made; the
/// caller stops at the first batch with a failure.
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut remaining = count;
    let mut size = remaining.min(initial.max(1));
    while size > 0 {
        batches.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    batches
}

/// upstream `slowStartBatch`: calls `op` `count` times in batches of doubling size (each batch
/// concurrently), stops after the first batch with a failure, and returns how many calls
/// succeeded with the first error.
pub async fn slow_start<F, Fut, E>(count: usize, initial: usize, op: F) -> (usize, Option<E>)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let mut successes = 0;
    for batch in slow_start_batches(count, initial) {
        let results = futures::future::join_all((0..batch).map(|_| op())).await;
        let mut first_error = None;
        for result in results {
            match result {
                Ok(()) => successes += 1,
                Err(err) => {
                    first_error.get_or_insert(err);
                }
            }
        }
        if first_error.is_some() {
            return (successes, first_error);
        }
    }
    (successes, None)
}

// ---- claiming ----

/// What `ClaimPods` does with one active pod in the owner's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching: counts toward the replicas.
    Keep,
    /// Not ours to touch (another controller's, or not matching, or we are being deleted).
    Ignore,
    /// A matching orphan: take it (after re-checking the owner is not gone or deleting).
    Adopt,
    /// Ours but no longer matching: drop our controller reference.
    Release,
}

/// upstream `ClaimObject`.
pub fn claim(pod: &Pod, owner: &ObjectMeta, selector: &Selector) -> Claim {
    let matches = selector.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default()));
    let owner_deleting = owner.deletion_timestamp.is_some();
    match crate::framework::controller_ref(&pod.metadata) {
        Some(r) if Some(&r.uid) == owner.uid.as_ref() => {
            if matches {
                Claim::Keep
            } else if owner_deleting {
                // Releasing while being deleted would orphan pods the GC is about to remove.
                Claim::Ignore
            } else {
                Claim::Release
            }
        }
        Some(_) => Claim::Ignore,
        None => {
            if owner_deleting
                || !matches
                || pod.metadata.deletion_timestamp.is_some()
                || pod.metadata.namespace != owner.namespace
            {
                Claim::Ignore
            } else {
                Claim::Adopt
            }
        }
    }
}

/// The strategic merge patch that adopts a pod (the pod's UID is a precondition).
pub fn adopt_patch(owner_ref: &OwnerReference, pod_uid: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "ownerReferences": [owner_ref],
            "uid": pod_uid,
        }
    })
}

/// The strategic merge patch that releases a pod from the owner with `owner_uid`.
pub fn release_patch(owner_uid: &str, pod_uid: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "ownerReferences": [{"$patch": "delete", "uid": owner_uid}],
            "uid": pod_uid,
        }
    })
}

// ---- pods from templates ----

/// upstream `GetPodFromTemplate`: labels, annotations, finalizers and spec from the template,
/// a generated name `<owner>-`, the controller reference.
pub fn pod_from_template(
    template: Option<&PodTemplateSpec>,
    owner_name: &str,
    namespace: &str,
    controller_ref: OwnerReference,
) -> Result<Pod, String> {
    let template = template.ok_or("the pod template is missing")?;
    let meta = template.metadata.clone().unwrap_or_default();
    if meta.labels.as_ref().is_none_or(|l| l.is_empty()) {
        return Err("unable to create pods, no labels".into());
    }
    let spec = template
        .spec
        .clone()
        .ok_or("the pod template has no spec")?;
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{owner_name}-")),
            namespace: Some(namespace.to_string()),
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

// ---- status ----

/// Why `manageReplicas` failed, for the ReplicaFailure condition.
#[derive(Debug, Clone, PartialEq)]
pub struct ManageError {
    pub message: String,
}

/// upstream `calculateStatus`: counts over the claimed active pods, and the ReplicaFailure
/// condition set on a create/delete failure (reason from the direction of the diff) and removed
/// after a clean sync. `observed_generation` is left to the writer.
pub fn calculate_status(
    current: &ReplicaStatus,
    template_labels: Option<&std::collections::BTreeMap<String, String>>,
    min_ready_seconds: i32,
    desired: i32,
    pods: &[Arc<Pod>],
    manage_error: Option<&ManageError>,
    now: Timestamp,
) -> ReplicaStatus {
    let mut status = current.clone();
    let template = Selector::from_set(
        template_labels
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    let mut fully_labeled = 0;
    let mut ready = 0;
    let mut available = 0;
    for pod in pods {
        if template.matches(pod.metadata.labels.as_ref().unwrap_or(&Default::default())) {
            fully_labeled += 1;
        }
        if is_ready(pod) {
            ready += 1;
            if is_available(pod, min_ready_seconds, now) {
                available += 1;
            }
        }
    }
    let failing = current
        .conditions
        .iter()
        .any(|c| c.type_ == REPLICA_FAILURE);
    match manage_error {
        Some(err) if !failing => {
            let have = i64::try_from(pods.len()).unwrap_or(i64::MAX);
            let reason = match have.cmp(&i64::from(desired)) {
                Ordering::Less => Some("FailedCreate".to_string()),
                Ordering::Greater => Some("FailedDelete".to_string()),
                Ordering::Equal => None,
            };
            status.conditions.push(ReplicaCondition {
                type_: REPLICA_FAILURE.into(),
                status: "True".into(),
                reason,
                message: Some(err.message.clone()),
                last_transition_time: Some(Time(now)),
            });
        }
        None if failing => status.conditions.retain(|c| c.type_ != REPLICA_FAILURE),
        _ => {}
    }
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    status.replicas = count(pods.len());
    status.fully_labeled_replicas = count(fully_labeled);
    status.ready_replicas = count(ready);
    status.available_replicas = count(available);
    status
}

/// Whether the owner must be looked at again after `min_ready_seconds` so pods that are Ready
/// become Available (upstream requeues when all are ready but not all available).
pub fn needs_availability_requeue(
    status: &ReplicaStatus,
    desired: i32,
    min_ready_seconds: i32,
) -> bool {
    min_ready_seconds > 0
        && status.ready_replicas == desired
        && status.available_replicas != desired
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::{
        Container, ContainerStatus, PodCondition, PodSpec, PodStatus,
    };

    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn at(seconds_ago: i64) -> Time {
        match Timestamp::from_second(NOW - seconds_ago) {
            Ok(t) => Time(t),
            Err(err) => panic!("bad test time: {err}"),
        }
    }

    fn now() -> Timestamp {
        at(0).0
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A pod built by chained setters, so each table row says only what matters to it.
    #[derive(Clone)]
    struct P(Pod);

    fn pod(name: &str) -> P {
        P(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels(&[("app", "web")])),
                creation_timestamp: Some(at(1000)),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec::default()),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..PodStatus::default()
            }),
        })
    }

    impl P {
        fn node(mut self, node: &str) -> P {
            if let Some(spec) = &mut self.0.spec {
                spec.node_name = Some(node.into());
            }
            self
        }
        fn phase(mut self, phase: &str) -> P {
            if let Some(status) = &mut self.0.status {
                status.phase = Some(phase.into());
            }
            self
        }
        /// Running and Ready since `seconds_ago`.
        fn ready(mut self, seconds_ago: i64) -> P {
            self = self.phase("Running");
            if let Some(status) = &mut self.0.status {
                status.conditions = Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(at(seconds_ago)),
                    ..PodCondition::default()
                }]);
            }
            self
        }
        fn restarts(mut self, n: i32) -> P {
            if let Some(status) = &mut self.0.status {
                status.container_statuses = Some(vec![ContainerStatus {
                    name: "c".into(),
                    restart_count: n,
                    ..ContainerStatus::default()
                }]);
            }
            self
        }
        fn created(mut self, seconds_ago: i64) -> P {
            self.0.metadata.creation_timestamp = Some(at(seconds_ago));
            self
        }
        fn cost(mut self, cost: &str) -> P {
            self.0.metadata.annotations = Some(labels(&[(POD_DELETION_COST, cost)]));
            self
        }
        fn labels(mut self, pairs: &[(&str, &str)]) -> P {
            self.0.metadata.labels = Some(labels(pairs));
            self
        }
        fn owned_by(mut self, uid: &str) -> P {
            self.0.metadata.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "rs".into(),
                uid: uid.into(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
            self
        }
        fn deleting(mut self) -> P {
            self.0.metadata.deletion_timestamp = Some(at(1));
            self
        }
        fn namespace(mut self, ns: &str) -> P {
            self.0.metadata.namespace = Some(ns.into());
            self
        }
        fn arc(self) -> Arc<Pod> {
            Arc::new(self.0)
        }
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<String> {
        pods.iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    #[test]
    fn deletion_ranking_follows_upstream_order() {
        // (case, the pod deleted first, the pod kept)
        let cases: Vec<(&str, P, P)> = vec![
            ("unassigned before assigned", pod("a"), pod("b").node("n1")),
            (
                "pending before unknown",
                pod("a").node("n1").phase("Pending"),
                pod("b").node("n1").phase("Unknown"),
            ),
            (
                "unknown before running",
                pod("a").node("n1").phase("Unknown"),
                pod("b").node("n1").phase("Running"),
            ),
            (
                "not ready before ready",
                pod("a").node("n1").phase("Running"),
                pod("b").node("n1").ready(100),
            ),
            (
                "lower deletion cost first",
                pod("a").node("n1").ready(100).cost("-5"),
                pod("b").node("n1").ready(100).cost("10"),
            ),
            (
                "ready for less time first (different log2 buckets)",
                pod("a").node("n1").ready(10),
                pod("b").node("n1").ready(10_000),
            ),
            (
                "more restarts first",
                pod("a").node("n1").ready(100).restarts(5),
                pod("b").node("n1").ready(100).restarts(1),
            ),
            (
                "newer first",
                pod("a").node("n1").ready(100).created(10),
                pod("b").node("n1").ready(100).created(100_000),
            ),
            (
                "unready pending pods go before ready running ones even if older",
                pod("a").created(100_000),
                pod("b").node("n1").ready(5).created(6),
            ),
        ];
        for (case, first, kept) in cases {
            let (first, kept) = (first.arc(), kept.arc());
            for input in [
                vec![first.clone(), kept.clone()],
                vec![kept.clone(), first.clone()],
            ] {
                let victims = pods_to_delete(&input, &[], 1, now());
                assert_eq!(names(&victims), vec!["a"], "{case}");
            }
        }
    }

    #[test]
    fn doubled_up_nodes_lose_pods_first() {
        let lonely = pod("lonely").node("n1").ready(100).arc();
        let crowded = pod("crowded").node("n2").ready(100).arc();
        // A sibling ReplicaSet's pod shares n2.
        let sibling = pod("sibling").node("n2").ready(100).arc();
        let pods = vec![lonely.clone(), crowded.clone()];
        let related = vec![lonely, crowded, sibling];
        let victims = pods_to_delete(&pods, &related, 1, now());
        assert_eq!(names(&victims), vec!["crowded"]);
    }

    #[test]
    fn same_age_bucket_breaks_ties_by_uid() {
        // 1000 s and 1001 s ago fall in the same log2(ns) bucket: creation time does not decide.
        let a = pod("a").node("n1").ready(100).created(1001).arc();
        let b = pod("b").node("n1").ready(100).created(1000).arc();
        let victims = pods_to_delete(&[b.clone(), a.clone()], &[], 1, now());
        assert_eq!(names(&victims), vec!["a"], "uid-a < uid-b");
    }

    #[test]
    fn slow_start_batches_double_up_to_the_count() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (1, &[1]),
            (2, &[1, 1]),
            (3, &[1, 2]),
            (7, &[1, 2, 4]),
            (10, &[1, 2, 4, 3]),
            (500, &[1, 2, 4, 8, 16, 32, 64, 128, 245]),
        ];
        for (count, want) in cases {
            let got = slow_start_batches(*count, SLOW_START_INITIAL_BATCH);
            assert_eq!(got, want.to_vec(), "count {count}");
            assert_eq!(got.iter().sum::<usize>(), *count);
        }
    }

    #[tokio::test]
    async fn slow_start_stops_at_the_first_failed_batch() {
        use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
        // (count, calls that fail (1-based), want successes, want calls made)
        let cases: &[(usize, &[usize], usize, usize)] = &[
            (10, &[], 10, 10),
            (10, &[1], 0, 1),
            (10, &[2], 2, 3),
            (10, &[4, 5], 5, 7),
            (10, &[9], 9, 10),
        ];
        for (count, failing, want_ok, want_calls) in cases {
            let calls = AtomicUsize::new(0);
            let (ok, err) = slow_start(*count, SLOW_START_INITIAL_BATCH, || {
                let n = calls.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                let fail = failing.contains(&n);
                async move {
                    if fail {
                        Err(format!("call {n}"))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
            assert_eq!(ok, *want_ok, "count {count} failing {failing:?}");
            assert_eq!(
                calls.load(AtomicOrdering::SeqCst),
                *want_calls,
                "count {count} failing {failing:?}"
            );
            assert_eq!(err.is_some(), !failing.is_empty());
        }
    }

    #[test]
    fn manage_plan_creates_deletes_or_waits() {
        let three: Vec<Arc<Pod>> = vec![
            pod("a").node("n").ready(100).arc(),
            pod("b").arc(),
            pod("c").node("n").ready(100).arc(),
        ];
        let cases: Vec<(&str, i32, usize, ManagePlan)> = vec![
            ("at the desired count", 3, 500, ManagePlan::Nothing),
            ("scale up", 5, 500, ManagePlan::Create(2)),
            ("scale up capped by the burst", 10, 4, ManagePlan::Create(4)),
            (
                "scale down picks the pending pod",
                2,
                500,
                ManagePlan::Delete(vec![three[1].clone()]),
            ),
            (
                "scale down capped by the burst",
                0,
                1,
                ManagePlan::Delete(vec![three[1].clone()]),
            ),
            (
                "negative replicas count as zero",
                -1,
                500,
                ManagePlan::Delete(three.clone()),
            ),
        ];
        for (case, desired, burst, want) in cases {
            let got = manage_plan(&three, &three, desired, burst, now());
            match (&got, &want) {
                (ManagePlan::Delete(g), ManagePlan::Delete(w)) => {
                    let (mut g, mut w) = (names(g), names(w));
                    if desired <= 0 {
                        g.sort();
                        w.sort();
                    }
                    assert_eq!(g, w, "{case}");
                }
                _ => assert_eq!(got, want, "{case}"),
            }
        }
    }

    #[test]
    fn claim_decisions() {
        let owner = ObjectMeta {
            name: Some("rs".into()),
            namespace: Some("ns".into()),
            uid: Some("me".into()),
            ..ObjectMeta::default()
        };
        let deleting_owner = ObjectMeta {
            deletion_timestamp: Some(at(1)),
            ..owner.clone()
        };
        let selector = Selector::from_set([("app", "web")]);
        let cases: Vec<(&str, P, &ObjectMeta, Claim)> = vec![
            (
                "ours and matching",
                pod("p").owned_by("me"),
                &owner,
                Claim::Keep,
            ),
            (
                "ours, labels changed: release",
                pod("p").owned_by("me").labels(&[("app", "db")]),
                &owner,
                Claim::Release,
            ),
            (
                "ours, labels changed, owner deleting: leave it",
                pod("p").owned_by("me").labels(&[("app", "db")]),
                &deleting_owner,
                Claim::Ignore,
            ),
            ("matching orphan: adopt", pod("p"), &owner, Claim::Adopt),
            (
                "orphan, owner deleting",
                pod("p"),
                &deleting_owner,
                Claim::Ignore,
            ),
            (
                "orphan not matching",
                pod("p").labels(&[("app", "db")]),
                &owner,
                Claim::Ignore,
            ),
            (
                "terminating orphan",
                pod("p").deleting(),
                &owner,
                Claim::Ignore,
            ),
            (
                "orphan in another namespace",
                pod("p").namespace("other"),
                &owner,
                Claim::Ignore,
            ),
            (
                "someone else's pod",
                pod("p").owned_by("them"),
                &owner,
                Claim::Ignore,
            ),
        ];
        for (case, p, owner, want) in cases {
            assert_eq!(claim(&p.0, owner, &selector), want, "{case}");
        }
    }

    #[test]
    fn active_pods_exclude_finished_and_terminating() {
        assert!(is_active(&pod("p").0));
        assert!(is_active(&pod("p").ready(1).0));
        assert!(!is_active(&pod("p").phase("Succeeded").0));
        assert!(!is_active(&pod("p").phase("Failed").0));
        assert!(!is_active(&pod("p").deleting().0));
    }

    #[test]
    fn patches_carry_the_pod_uid_precondition() {
        let owner_ref = OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: "rs".into(),
            uid: "me".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let adopt = adopt_patch(&owner_ref, "pod-uid");
        assert_eq!(adopt["metadata"]["uid"], "pod-uid");
        assert_eq!(adopt["metadata"]["ownerReferences"][0]["uid"], "me");
        assert_eq!(adopt["metadata"]["ownerReferences"][0]["controller"], true);
        let release = release_patch("me", "pod-uid");
        assert_eq!(
            release["metadata"]["ownerReferences"][0],
            serde_json::json!({"$patch": "delete", "uid": "me"})
        );
    }

    #[test]
    fn pods_come_from_the_template() {
        let owner_ref = OwnerReference {
            uid: "me".into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels(&[("app", "web")])),
                annotations: Some(labels(&[("note", "x")])),
                name: Some("ignored".into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("nginx".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        };
        let pod = match pod_from_template(Some(&template), "web", "ns", owner_ref.clone()) {
            Ok(pod) => pod,
            Err(err) => panic!("valid template refused: {err}"),
        };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.metadata.labels, Some(labels(&[("app", "web")])));
        assert_eq!(pod.metadata.annotations, Some(labels(&[("note", "x")])));
        assert_eq!(pod.metadata.owner_references, Some(vec![owner_ref.clone()]));
        assert_eq!(pod.spec, template.spec);

        let unlabeled = PodTemplateSpec {
            metadata: None,
            ..template.clone()
        };
        assert_eq!(
            pod_from_template(Some(&unlabeled), "web", "ns", owner_ref.clone()),
            Err("unable to create pods, no labels".into())
        );
        assert!(pod_from_template(None, "web", "ns", owner_ref).is_err());
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let cases = [
            ("not ready", pod("p").phase("Running"), 0, false),
            ("ready, no minReadySeconds", pod("p").ready(0), 0, true),
            (
                "ready for less than minReadySeconds",
                pod("p").ready(5),
                10,
                false,
            ),
            (
                "ready for exactly minReadySeconds",
                pod("p").ready(10),
                10,
                false,
            ),
            ("ready for longer", pod("p").ready(11), 10, true),
        ];
        for (case, p, min_ready, want) in cases {
            assert_eq!(is_available(&p.0, min_ready, now()), want, "{case}");
        }
    }

    #[test]
    fn status_counts_and_the_failure_condition() {
        let template = labels(&[("app", "web"), ("tier", "front")]);
        let pods = vec![
            // Fully labeled, ready long enough: available.
            pod("a")
                .labels(&[("app", "web"), ("tier", "front")])
                .ready(60)
                .arc(),
            // Ready but not yet for minReadySeconds.
            pod("b")
                .labels(&[("app", "web"), ("tier", "front")])
                .ready(2)
                .arc(),
            // Adopted by selector, missing a template label; not ready.
            pod("c").labels(&[("app", "web")]).arc(),
        ];
        let failure = ReplicaCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some("FailedCreate".into()),
            message: Some("old".into()),
            last_transition_time: Some(at(500)),
        };
        let err = ManageError {
            message: "pods \"x\" is forbidden".into(),
        };
        struct Case<'a> {
            name: &'a str,
            current: Vec<ReplicaCondition>,
            desired: i32,
            error: Option<&'a ManageError>,
            want_reason: Option<Option<&'a str>>,
            want_message: Option<&'a str>,
        }
        let cases = [
            Case {
                name: "clean sync, no condition",
                current: vec![],
                desired: 3,
                error: None,
                want_reason: None,
                want_message: None,
            },
            Case {
                name: "create failure sets FailedCreate",
                current: vec![],
                desired: 5,
                error: Some(&err),
                want_reason: Some(Some("FailedCreate")),
                want_message: Some("pods \"x\" is forbidden"),
            },
            Case {
                name: "delete failure sets FailedDelete",
                current: vec![],
                desired: 1,
                error: Some(&err),
                want_reason: Some(Some("FailedDelete")),
                want_message: Some("pods \"x\" is forbidden"),
            },
            Case {
                name: "an existing condition is kept as it was",
                current: vec![failure.clone()],
                desired: 5,
                error: Some(&err),
                want_reason: Some(Some("FailedCreate")),
                want_message: Some("old"),
            },
            Case {
                name: "a clean sync removes the condition",
                current: vec![failure.clone()],
                desired: 3,
                error: None,
                want_reason: None,
                want_message: None,
            },
        ];
        for case in cases {
            let current = ReplicaStatus {
                conditions: case.current.clone(),
                observed_generation: Some(7),
                ..ReplicaStatus::default()
            };
            let status = calculate_status(
                &current,
                Some(&template),
                10,
                case.desired,
                &pods,
                case.error,
                now(),
            );
            assert_eq!(status.replicas, 3, "{}", case.name);
            assert_eq!(status.fully_labeled_replicas, 2, "{}", case.name);
            assert_eq!(status.ready_replicas, 2, "{}", case.name);
            assert_eq!(status.available_replicas, 1, "{}", case.name);
            assert_eq!(status.observed_generation, Some(7), "left to the writer");
            let cond = status
                .conditions
                .iter()
                .find(|c| c.type_ == REPLICA_FAILURE);
            assert_eq!(
                cond.map(|c| c.reason.as_deref()),
                case.want_reason,
                "{}",
                case.name
            );
            assert_eq!(
                cond.and_then(|c| c.message.as_deref()),
                case.want_message,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn availability_requeue_only_while_ready_but_unavailable() {
        let status = |ready, available| ReplicaStatus {
            ready_replicas: ready,
            available_replicas: available,
            ..ReplicaStatus::default()
        };
        assert!(needs_availability_requeue(&status(3, 1), 3, 10));
        assert!(!needs_availability_requeue(&status(3, 3), 3, 10));
        assert!(
            !needs_availability_requeue(&status(2, 1), 3, 10),
            "pod updates requeue"
        );
        assert!(!needs_availability_requeue(&status(3, 1), 3, 0));
    }
}
