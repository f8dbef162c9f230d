//! Table-driven tests of the deployment planner: cached objects in, writes and status out.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus, DeploymentStrategy,
    ReplicaSet, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::plan::{plan, Action, Plan};
use super::util::*;

const NOW: i64 = 1_800_000_000;

fn now() -> Timestamp {
    match Timestamp::from_second(NOW) {
        Ok(t) => t,
        Err(err) => panic!("{err}"),
    }
}

fn at(secs: i64) -> Time {
    match Timestamp::from_second(secs) {
        Ok(t) => Time(t),
        Err(err) => panic!("{err}"),
    }
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: labels(&[("app", "web")]),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "web".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

fn rolling(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("d-uid".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..LabelSelector::default()
            },
            template: template("nginx:2"),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..DeploymentSpec::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(1),
            ..DeploymentStatus::default()
        }),
    }
}

fn recreate(replicas: i32) -> Deployment {
    let mut d = rolling(replicas, IntOrString::Int(0), IntOrString::Int(1));
    if let Some(spec) = &mut d.spec {
        spec.strategy = Some(DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        });
    }
    d
}

/// A ReplicaSet of `web` running `image`, `spec` replicas of which `available` are available,
/// created `age` seconds before NOW.
fn rs(
    name: &str,
    image: &str,
    revision: i64,
    spec: i32,
    available: i32,
    age: i64,
) -> Arc<ReplicaSet> {
    let hash = name.trim_start_matches("web-");
    let mut t = template(image);
    if let Some(meta) = &mut t.metadata {
        meta.labels = labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, hash)]);
    }
    Arc::new(ReplicaSet {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("{name}-uid")),
            generation: Some(1),
            creation_timestamp: Some(at(NOW - age)),
            labels: labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, hash)]),
            annotations: Some(BTreeMap::from([(
                REVISION_ANNOTATION.to_string(),
                revision.to_string(),
            )])),
            owner_references: Some(vec![crate::framework::new_controller_ref(&rolling(
                1,
                IntOrString::Int(1),
                IntOrString::Int(0),
            ))]),
            ..ObjectMeta::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(spec),
            selector: LabelSelector {
                match_labels: labels(&[("app", "web"), (POD_TEMPLATE_HASH_LABEL, hash)]),
                ..LabelSelector::default()
            },
            template: Some(t),
            min_ready_seconds: Some(0),
        }),
        status: Some(ReplicaSetStatus {
            replicas: spec,
            available_replicas: Some(available),
            ready_replicas: Some(available),
            observed_generation: Some(1),
            ..ReplicaSetStatus::default()
        }),
    })
}

/// Gives `rs` the replica annotations of a deployment with `desired` replicas and `max` pods.
fn sized_for(rs: Arc<ReplicaSet>, desired: i32, max: i32) -> Arc<ReplicaSet> {
    let mut rs = (*rs).clone();
    set_replicas_annotations(&mut rs, desired, max);
    Arc::new(rs)
}

/// The sizes the plan writes, in order: (name, replicas).
fn sizes(p: &Plan) -> Vec<(String, i32)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { rs, .. } | Action::Update { rs, .. } => Some((
                rs.metadata.name.clone().unwrap_or_default(),
                rs_replicas(rs),
            )),
            _ => None,
        })
        .collect()
}

fn events(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Create { event, .. } | Action::Update { event, .. } => event.clone(),
            _ => None,
        })
        .collect()
}

fn condition(p: &Plan, type_: &str) -> Option<DeploymentCondition> {
    p.status
        .as_ref()
        .and_then(|s| get_condition(s, type_).cloned())
}

fn reason(c: Option<DeploymentCondition>) -> (String, String) {
    match c {
        Some(c) => (c.status, c.reason.unwrap_or_default()),
        None => panic!("no such condition"),
    }
}

#[test]
fn fenceposts_round_surge_up_and_unavailable_down() {
    use IntOrString::{Int, String as Pct};
    let cases = [
        (Pct("25%".into()), Pct("25%".into()), 10, (3, 2)),
        (Pct("25%".into()), Pct("25%".into()), 1, (1, 0)),
        (Int(0), Pct("10%".into()), 5, (0, 1)), // both zero: one may be unavailable
        (Int(2), Int(0), 3, (2, 0)),
        (Pct("50%".into()), Pct("50%".into()), 3, (2, 1)),
        (Pct("100%".into()), Int(0), 4, (4, 0)),
    ];
    for (surge, unavailable, desired, want) in cases {
        assert_eq!(
            resolve_fenceposts(Some(&surge), Some(&unavailable), desired),
            Ok(want),
            "{surge:?} {unavailable:?} of {desired}"
        );
    }
    assert!(scaled_value(&Pct("ten".into()), 10, true).is_err());
    // maxUnavailable never exceeds the replicas, and is zero for Recreate.
    let d = rolling(2, IntOrString::Int(1), IntOrString::Int(5));
    assert_eq!(max_unavailable(&d), 2);
    assert_eq!(max_unavailable(&recreate(3)), 0);
    assert_eq!(max_surge(&recreate(3)), 0);
}

#[test]
fn hash_is_fnv32a_safe_encoded_and_moves_with_collisions() {
    let mut h = Fnv32a::new();
    assert_eq!(h.sum32(), 0x811c_9dc5);
    h.write(b"a");
    assert_eq!(h.sum32(), 0xe40c_292c);
    assert_eq!(safe_encode("0123456789"), "456789bcdf");
    let t = template("nginx:1");
    let a = compute_hash(&t, None);
    assert_eq!(a, compute_hash(&t, None));
    assert_ne!(a, compute_hash(&t, Some(1)));
    assert_ne!(a, compute_hash(&template("nginx:2"), None));
    assert!(
        a.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)),
        "{a}"
    );
}

#[test]
fn a_new_deployment_gets_its_first_replica_set() {
    let d = rolling(3, IntOrString::Int(1), IntOrString::Int(0));
    let p = plan(&d, &[], &[], now());
    let hash = compute_hash(&template("nginx:2"), None);
    let name = format!("web-{hash}");
    assert_eq!(sizes(&p), vec![(name.clone(), 3)]);
    let Some(Action::Create { rs, event }) = p.actions.first() else {
        panic!("expected a create: {:?}", p.actions)
    };
    assert_eq!(
        event.as_deref(),
        Some(format!("Scaled up replica set {name} from 0 to 3").as_str())
    );
    let spec = rs.spec.clone().unwrap_or_default();
    assert_eq!(
        spec.selector
            .match_labels
            .unwrap_or_default()
            .get(POD_TEMPLATE_HASH_LABEL),
        Some(&hash)
    );
    let tlabels = spec
        .template
        .and_then(|t| t.metadata)
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(tlabels.get(POD_TEMPLATE_HASH_LABEL), Some(&hash));
    assert_eq!(annotation(&rs.metadata, REVISION_ANNOTATION), Some("1"));
    assert_eq!(
        annotation(&rs.metadata, DESIRED_REPLICAS_ANNOTATION),
        Some("3")
    );
    assert_eq!(annotation(&rs.metadata, MAX_REPLICAS_ANNOTATION), Some("4"));
    assert_eq!(
        crate::framework::controller_ref(&rs.metadata).map(|r| r.uid.clone()),
        Some("d-uid".to_string())
    );
    assert_eq!(p.revision.as_deref(), Some("1"));
    assert_eq!(
        reason(condition(&p, PROGRESSING)),
        ("True".into(), NEW_RS_REASON.into())
    );
    assert_eq!(
        reason(condition(&p, AVAILABLE)),
        ("False".into(), MIN_UNAVAILABLE_REASON.into())
    );
}

#[test]
fn rolling_update_steps_respect_surge_and_unavailability() {
    use IntOrString::Int;
    // (maxSurge, maxUnavailable, old spec/available, new spec/available, expected writes)
    type Case = (i32, i32, (i32, i32), (i32, i32), Vec<(&'static str, i32)>);
    let cases: Vec<Case> = vec![
        // Surge one new pod while old ones all stay.
        (1, 0, (3, 3), (0, 0), vec![("web-new", 1)]),
        // The new pod is not available yet: nothing may go.
        (1, 0, (3, 3), (1, 0), vec![]),
        // It became available: one old pod may go.
        (1, 0, (3, 3), (1, 1), vec![("web-old", 2)]),
        // Room again for a new pod.
        (1, 0, (2, 2), (1, 1), vec![("web-new", 2)]),
        // maxUnavailable 1, no surge: take one old pod down first.
        (0, 1, (3, 3), (0, 0), vec![("web-old", 2)]),
        (0, 1, (2, 2), (0, 0), vec![("web-new", 1)]),
        // Unhealthy old replicas are removed before healthy ones, beyond the budget.
        (1, 0, (3, 1), (1, 1), vec![("web-old", 2)]),
        // Done with the old one.
        (1, 0, (1, 1), (3, 3), vec![("web-old", 0)]),
    ];
    for (surge, unavailable, (os, oa), (ns, na), want) in cases {
        let d = rolling(3, Int(surge), Int(unavailable));
        let hash = compute_hash(&template("nginx:2"), None);
        let new_name = format!("web-{hash}");
        let old = sized_for(rs("web-old", "nginx:1", 1, os, oa, 100), 3, 3 + surge);
        let new = sized_for(rs(&new_name, "nginx:2", 2, ns, na, 10), 3, 3 + surge);
        let p = plan(&d, &[old, new], &[], now());
        let want: Vec<(String, i32)> = want
            .into_iter()
            .map(|(n, s)| (n.replace("web-new", &new_name), s))
            .collect();
        assert_eq!(
            sizes(&p),
            want,
            "surge {surge} unavailable {unavailable} old {os}/{oa} new {ns}/{na}"
        );
    }
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    use IntOrString::Int;
    let mut d = rolling(20, Int(3), Int(0));
    if let Some(s) = &mut d.status {
        s.replicas = Some(13);
    }
    let hash = compute_hash(&template("nginx:2"), None);
    let new_name = format!("web-{hash}");
    // Sized for 10 replicas (+3 surge) before the user scaled to 20.
    let old = sized_for(rs("web-old", "nginx:1", 1, 8, 8, 100), 10, 13);
    let new = sized_for(rs(&new_name, "nginx:2", 2, 5, 0, 10), 10, 13);
    let p = plan(&d, &[old, new], &[], now());
    // 23 allowed pods: 8 * 23/13 = 14.2 -> 14, the new one takes the other 4 (5 -> 9).
    assert_eq!(
        sizes(&p),
        vec![("web-old".to_string(), 14), (new_name.clone(), 9)]
    );
    assert_eq!(
        events(&p),
        vec![
            "Scaled up replica set web-old from 8 to 14".to_string(),
            format!("Scaled up replica set {new_name} from 5 to 9"),
        ]
    );
    // Scaling down takes from the larger first.
    let mut d = rolling(5, Int(3), Int(0));
    if let Some(s) = &mut d.status {
        s.replicas = Some(13);
    }
    let old = sized_for(rs("web-old", "nginx:1", 1, 8, 8, 100), 10, 13);
    let new = sized_for(rs(&new_name, "nginx:2", 2, 5, 0, 10), 10, 13);
    let p = plan(&d, &[old, new], &[], now());
    // 8 allowed: 8 * 8/13 = 4.9 -> 5 (-3), 5 * 8/13 = 3.1 -> 3 (-2).
    assert_eq!(sizes(&p), vec![("web-old".to_string(), 5), (new_name, 3)]);
}

#[test]
fn recreate_scales_down_waits_for_pods_then_creates() {
    let d = recreate(2);
    let hash = compute_hash(&template("nginx:2"), None);
    let new_name = format!("web-{hash}");
    // Old pods first go to zero, nothing new yet.
    let p = plan(&d, &[rs("web-old", "nginx:1", 1, 2, 2, 100)], &[], now());
    assert_eq!(sizes(&p), vec![("web-old".to_string(), 0)]);
    // Scaled to zero but a pod is still running: wait.
    let old = rs("web-old", "nginx:1", 1, 0, 0, 100);
    let pod = Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some("web-old-x".into()),
            owner_references: old.metadata.owner_references.clone().map(|mut refs| {
                refs[0].uid = "web-old-uid".into();
                refs[0].kind = "ReplicaSet".into();
                refs
            }),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some("Running".into()),
            ..PodStatus::default()
        }),
        ..Pod::default()
    });
    let p = plan(
        &d,
        std::slice::from_ref(&old),
        std::slice::from_ref(&pod),
        now(),
    );
    assert_eq!(sizes(&p), vec![]);
    // A finished pod does not count.
    let mut done = (*pod).clone();
    done.status = Some(PodStatus {
        phase: Some("Succeeded".into()),
        ..PodStatus::default()
    });
    let p = plan(&d, &[old], &[Arc::new(done)], now());
    assert_eq!(sizes(&p), vec![(new_name, 2)]);
}

#[test]
fn paused_deployments_scale_but_do_not_roll_out() {
    let mut d = rolling(5, IntOrString::Int(1), IntOrString::Int(0));
    if let Some(spec) = &mut d.spec {
        spec.paused = Some(true);
    }
    let old = sized_for(rs("web-old", "nginx:1", 1, 3, 3, 100), 3, 4);
    let p = plan(&d, &[old], &[], now());
    assert_eq!(sizes(&p), vec![("web-old".to_string(), 5)]);
    let c = condition(&p, PROGRESSING);
    assert_eq!(reason(c.clone()), ("Unknown".into(), PAUSED_REASON.into()));
    assert_eq!(
        c.and_then(|c| c.message),
        Some("Deployment is paused".into())
    );
}

#[test]
fn progress_deadline_times_out_only_without_progress() {
    let hash = compute_hash(&template("nginx:2"), None);
    let new_name = format!("web-{hash}");
    let stuck = |updated_secs_ago: i64| {
        let mut d = rolling(1, IntOrString::Int(1), IntOrString::Int(0));
        let status = d.status.get_or_insert_with(Default::default);
        status.replicas = Some(1);
        status.updated_replicas = Some(1);
        status.unavailable_replicas = Some(1);
        let mut c = new_condition(
            PROGRESSING,
            "True",
            RS_UPDATED_REASON,
            format!("ReplicaSet {new_name:?} is progressing."),
            now(),
        );
        c.last_update_time = Some(at(NOW - updated_secs_ago));
        c.last_transition_time = Some(at(NOW - updated_secs_ago));
        status.conditions = Some(vec![
            new_condition(
                AVAILABLE,
                "False",
                MIN_UNAVAILABLE_REASON,
                "Deployment does not have minimum availability.".into(),
                now(),
            ),
            c,
        ]);
        d.metadata.annotations = Some(BTreeMap::from([(REVISION_ANNOTATION.into(), "1".into())]));
        let new = sized_for(rs(&new_name, "nginx:2", 1, 1, 0, 700), 1, 2);
        plan(&d, &[new], &[], now())
    };
    // Within the deadline: nothing to write, look again when it would pass.
    let p = stuck(100);
    assert_eq!(p.status, None);
    assert_eq!(p.requeue_after, Some(std::time::Duration::from_secs(501)));
    // Past it: Progressing=False ProgressDeadlineExceeded.
    let p = stuck(700);
    let c = condition(&p, PROGRESSING);
    assert_eq!(reason(c.clone()), ("False".into(), TIMED_OUT_REASON.into()));
    assert_eq!(
        c.and_then(|c| c.message),
        Some(format!(
            "ReplicaSet {new_name:?} has timed out progressing."
        ))
    );
}

#[test]
fn a_finished_rollout_is_available_cleans_history_and_then_settles() {
    let hash = compute_hash(&template("nginx:2"), None);
    let new_name = format!("web-{hash}");
    let mut d = rolling(2, IntOrString::Int(1), IntOrString::Int(0));
    if let Some(spec) = &mut d.spec {
        spec.revision_history_limit = Some(1);
    }
    let rses = vec![
        rs("web-a", "nginx:0", 1, 0, 0, 300),
        rs("web-b", "nginx:1", 2, 0, 0, 200),
        rs("web-c", "nginx:3", 3, 0, 0, 150),
        sized_for(rs(&new_name, "nginx:2", 4, 2, 2, 100), 2, 3),
    ];
    // The first sync reports completion; history is cleaned once the status says so.
    let p = plan(&d, &rses, &[], now());
    assert_eq!(p.revision.as_deref(), Some("4"));
    assert_eq!(
        reason(condition(&p, AVAILABLE)),
        ("True".into(), MIN_AVAILABLE_REASON.into())
    );
    assert_eq!(
        reason(condition(&p, PROGRESSING)),
        ("True".into(), NEW_RS_AVAILABLE_REASON.into())
    );
    let status = p.status.clone().unwrap_or_default();
    assert_eq!(status.replicas, Some(2));
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.available_replicas, Some(2));
    assert_eq!(status.unavailable_replicas, None);
    assert!(!p.actions.iter().any(|a| matches!(a, Action::Delete { .. })));
    d.status = p.status.clone();
    d.metadata.annotations = Some(BTreeMap::from([(REVISION_ANNOTATION.into(), "4".into())]));
    let p = plan(&d, &rses, &[], now());
    let deleted: Vec<String> = p
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Delete { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec!["web-a".to_string(), "web-b".to_string()]);
    assert_eq!(p.status, None);
    // Once the deletions are seen, the same caches plan nothing more (no hot loop).
    let settled = plan(&d, &rses[2..], &[], now());
    assert_eq!(settled, Plan::default());
}

#[test]
fn undo_brings_an_old_replica_set_back_with_a_new_revision() {
    // The deployment's template is the one of revision 1 again (`kubectl rollout undo`).
    let mut d = rolling(2, IntOrString::Int(1), IntOrString::Int(0));
    if let Some(spec) = &mut d.spec {
        spec.template = template("nginx:1");
    }
    let old = sized_for(rs("web-one", "nginx:1", 1, 0, 0, 200), 2, 3);
    let current = sized_for(rs("web-two", "nginx:2", 2, 2, 2, 100), 2, 3);
    let p = plan(&d, &[old, current], &[], now());
    let Some(Action::Update { rs, .. }) = p.actions.first() else {
        panic!("expected an update: {:?}", p.actions)
    };
    assert_eq!(rs.metadata.name.as_deref(), Some("web-one"));
    assert_eq!(annotation(&rs.metadata, REVISION_ANNOTATION), Some("3"));
    assert_eq!(
        annotation(&rs.metadata, REVISION_HISTORY_ANNOTATION),
        Some("1")
    );
    // And then it grows while the other shrinks.
    assert_eq!(sizes(&p)[1..], [("web-one".to_string(), 1)]);
}

#[test]
fn change_cause_is_copied_to_the_new_replica_set() {
    let mut d = rolling(1, IntOrString::Int(1), IntOrString::Int(0));
    d.metadata.annotations = Some(BTreeMap::from([
        (
            "kubernetes.io/change-cause".to_string(),
            "kubectl set image".to_string(),
        ),
        (LAST_APPLIED_FOR_TEST.to_string(), "{}".to_string()),
    ]));
    let p = plan(&d, &[], &[], now());
    let Some(Action::Create { rs, .. }) = p.actions.first() else {
        panic!("expected a create")
    };
    assert_eq!(
        annotation(&rs.metadata, "kubernetes.io/change-cause"),
        Some("kubectl set image")
    );
    assert_eq!(annotation(&rs.metadata, LAST_APPLIED_FOR_TEST), None);
}

const LAST_APPLIED_FOR_TEST: &str = "kubectl.kubernetes.io/last-applied-configuration";

#[test]
fn empty_selectors_are_refused_with_a_warning() {
    let mut d = rolling(1, IntOrString::Int(1), IntOrString::Int(0));
    if let Some(spec) = &mut d.spec {
        spec.selector = LabelSelector::default();
    }
    d.metadata.generation = Some(2);
    let p = plan(&d, &[], &[], now());
    assert!(
        matches!(p.actions.as_slice(), [Action::Warning { reason, .. }] if reason == "SelectingAll")
    );
    assert_eq!(p.status.and_then(|s| s.observed_generation), Some(2));
}

#[test]
fn claims_follow_the_selector_and_the_controller_reference() {
    let d = rolling(1, IntOrString::Int(1), IntOrString::Int(0));
    let sel = match selector(&d) {
        Ok(s) => s,
        Err(err) => panic!("{err}"),
    };
    let owned = rs("web-a", "nginx:1", 1, 1, 1, 10);
    let mut orphan = (*owned).clone();
    orphan.metadata.owner_references = None;
    let mut unselected = (*owned).clone();
    unselected.metadata.labels = labels(&[("app", "other")]);
    let mut foreign = (*owned).clone();
    if let Some(refs) = &mut foreign.metadata.owner_references {
        refs[0].uid = "someone-else".into();
    }
    let mut unselected_orphan = unselected.clone();
    unselected_orphan.metadata.owner_references = None;
    let mut deleting = d.clone();
    deleting.metadata.deletion_timestamp = Some(at(NOW));
    let cases = [
        (&d, &*owned, Claim::Keep),
        (&d, &orphan, Claim::Adopt),
        (&d, &unselected, Claim::Release),
        (&d, &foreign, Claim::Ignore),
        (&d, &unselected_orphan, Claim::Ignore),
        (&deleting, &orphan, Claim::Ignore),
        (&deleting, &unselected, Claim::Ignore),
    ];
    for (i, (d, rs, want)) in cases.into_iter().enumerate() {
        assert_eq!(claim(d, &sel, rs), want, "case {i}");
    }
}

#[test]
fn revision_history_keeps_older_revisions_within_its_bound() {
    let d = rolling(1, IntOrString::Int(1), IntOrString::Int(0));
    let mut rs = (*rs("web-a", "nginx:1", 5, 1, 1, 10)).clone();
    if let Some(a) = &mut rs.metadata.annotations {
        a.insert(REVISION_HISTORY_ANNOTATION.into(), "1,3".into());
    }
    assert!(set_new_replica_set_annotations(&d, &mut rs, 7, true));
    assert_eq!(annotation(&rs.metadata, REVISION_ANNOTATION), Some("7"));
    assert_eq!(
        annotation(&rs.metadata, REVISION_HISTORY_ANNOTATION),
        Some("1,3,5")
    );
    // Never lowered.
    assert!(!set_new_replica_set_annotations(&d, &mut rs, 6, true));
    assert_eq!(annotation(&rs.metadata, REVISION_ANNOTATION), Some("7"));
}
