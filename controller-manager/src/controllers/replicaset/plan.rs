//! The controller's decisions as pure functions of cached objects: how many pods to create or
//! which to delete (`manageReplicas` with `getPodsToDelete` and the `ActivePodsWithRanks`
//! order), the pod to create from a template, and the status to report (`calculateStatus`).
//! Nothing here talks to the API, so every decision is unit-tested. Claiming pods and writing
//! them are the framework's (`claim`, `podcontrol`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use apimachinery::LabelSelector as Selector;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

use super::kind::{ReplicaCondition, ReplicaStatus};
use crate::framework::podcontrol;
use crate::framework::podutil::{is_active, is_available, is_ready, phase, ready_since};

/// Upstream's `BurstReplicas`: at most this many creations or deletions per sync.
pub const BURST_REPLICAS: usize = 500;
/// The condition type set while creating or deleting pods fails.
pub const REPLICA_FAILURE: &str = "ReplicaFailure";
/// The annotation ranking pods for scale-down (GA `PodDeletionCost`).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

// ---- pod predicates (upstream's podutil / controller helpers) ----

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
    if let Some(order) = compare_age(ca, cb, now) {
        return order;
    }
    // 9. By UID, a stable pseudo-random order. Upstream breaks a same-bucket tie by UID as
    // soon as the times differ (step 6 or 8); doing it only here keeps the comparison a
    // total order (every step compares a key of each pod alone), which sorting needs: a
    // comparison that is not transitive makes Rust's sort panic.
    a.metadata.uid.cmp(&b.metadata.uid)
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

// ---- pods from templates ----

/// upstream `GetPodFromTemplate` for this controller: the template must be there and carry
/// labels (upstream's `PodControl` refuses to create unlabelled pods); the name is generated
/// from `<owner>-`.
pub fn pod_from_template(
    template: Option<&PodTemplateSpec>,
    owner_name: &str,
    namespace: &str,
    controller_ref: OwnerReference,
) -> Result<Pod, String> {
    let template = template.ok_or("the pod template is missing")?;
    let labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if labels.is_none_or(|l| l.is_empty()) {
        return Err("unable to create pods, no labels".into());
    }
    podcontrol::pod_from_template(
        template,
        format!("{owner_name}-"),
        Some(namespace.to_string()),
        controller_ref,
    )
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

    use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

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
    fn the_deletion_order_is_a_total_order() {
        // Pods that tie in some steps and differ in others, as a scale-down of thousands of
        // pods created within seconds produces: the comparison must stay transitive (a sort
        // with an inconsistent comparison panics).
        let mut pods = Vec::new();
        for i in 0..60i64 {
            let mut p = pod(&format!("p{i:02}")).node(if i % 3 == 0 { "n1" } else { "n2" });
            p = match i % 4 {
                0 => p.phase("Pending"),
                _ => p.ready(100 + (i % 5) * 7),
            };
            p = p.created(1000 + (i % 7)).restarts((i % 2) as i32);
            pods.push((usize::try_from(i % 2).unwrap_or(0), p.arc()));
        }
        let cmp = |a: &(usize, Arc<Pod>), b: &(usize, Arc<Pod>)| {
            compare_for_deletion(&a.1, a.0, &b.1, b.0, now())
        };
        for a in &pods {
            for b in &pods {
                assert_eq!(cmp(a, b), cmp(b, a).reverse());
                for c in &pods {
                    if cmp(a, b) != Ordering::Greater && cmp(b, c) != Ordering::Greater {
                        assert_ne!(cmp(a, c), Ordering::Greater);
                    }
                }
            }
        }
        let mut sorted = pods.clone();
        sorted.sort_by(cmp);
        assert_eq!(sorted.len(), 60);
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
    fn pods_come_from_a_labelled_template() {
        let owner_ref = crate::framework::new_controller_ref(&pod("owner").0);
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels(&[("app", "web")])),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec::default()),
        };
        let pod = pod_from_template(Some(&template), "web", "ns", owner_ref.clone());
        let meta = pod.map(|p| p.metadata).unwrap_or_default();
        assert_eq!(meta.generate_name.as_deref(), Some("web-"));
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        assert_eq!(meta.owner_references, Some(vec![owner_ref.clone()]));

        let unlabeled = PodTemplateSpec {
            metadata: None,
            ..template
        };
        assert_eq!(
            pod_from_template(Some(&unlabeled), "web", "ns", owner_ref.clone()),
            Err("unable to create pods, no labels".into())
        );
        assert_eq!(
            pod_from_template(None, "web", "ns", owner_ref),
            Err("the pod template is missing".into())
        );
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
