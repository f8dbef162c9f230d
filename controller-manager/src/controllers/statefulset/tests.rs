//! Table-driven tests of the StatefulSet decision logic: objects in, API writes out.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{
    ControllerRevision, RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetOrdinals,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec, StatefulSetStatus,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, PodCondition, PodSpec, PodStatus, PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, ObjectMeta, OwnerReference, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::history::{self, UpdateRevision};
use super::identity::{self, SetView};
use super::plan::{self, Action, Revisions};
use super::retention::{self, Owner};
use crate::framework::claim::{claim, Claim};

const CURRENT: &str = "web-current";
const UPDATE: &str = "web-update";

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn template(image: &str) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels(&[("app", "web")])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some(image.into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
    }
}

/// A set `web` in `default` with `replicas`; the closure adjusts its spec.
fn set_with(replicas: i32, adjust: impl FnOnce(&mut StatefulSetSpec)) -> StatefulSet {
    let mut spec = StatefulSetSpec {
        replicas: Some(replicas),
        selector: LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            ..LabelSelector::default()
        },
        service_name: Some("nginx".into()),
        template: template("v1"),
        update_strategy: Some(StatefulSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateStatefulSetStrategy {
                partition: Some(0),
                max_unavailable: None,
            }),
        }),
        ..StatefulSetSpec::default()
    };
    adjust(&mut spec);
    StatefulSet {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("set-uid".into()),
            generation: Some(1),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn set(replicas: i32) -> StatefulSet {
    set_with(replicas, |_| {})
}

fn owner(set: &StatefulSet) -> OwnerReference {
    crate::framework::new_controller_ref(set)
}

#[derive(Clone, Copy)]
enum State {
    Pending,
    Ready,
    Failed,
    Terminating,
}

fn pod(ordinal: i32, revision: &str, state: State) -> Arc<Pod> {
    let name = format!("web-{ordinal}");
    let (phase, ready) = match state {
        State::Pending => ("Pending", "False"),
        State::Ready | State::Terminating => ("Running", "True"),
        State::Failed => ("Failed", "False"),
    };
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            labels: Some(labels(&[
                ("app", "web"),
                (identity::POD_NAME_LABEL, &name),
                (identity::REVISION_LABEL, revision),
            ])),
            owner_references: Some(vec![owner(&set(1))]),
            deletion_timestamp: matches!(state, State::Terminating)
                .then(|| Time(Timestamp::UNIX_EPOCH)),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec::default()),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: ready.into(),
                last_transition_time: Some(Time(Timestamp::UNIX_EPOCH)),
                ..PodCondition::default()
            }]),
            ..PodStatus::default()
        }),
    })
}

fn run(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    claims: &[PersistentVolumeClaim],
    update_differs: bool,
) -> plan::Plan {
    let view = match SetView::new(set) {
        Ok(v) => v,
        Err(err) => panic!("test set is invalid: {err}"),
    };
    let (current_t, update_t) = (template("v1"), template("v2"));
    let revisions = Revisions {
        current: CURRENT,
        current_template: &current_t,
        update: if update_differs { UPDATE } else { CURRENT },
        update_template: if update_differs {
            &update_t
        } else {
            &current_t
        },
        collision_count: 0,
    };
    let claims: BTreeMap<String, Arc<PersistentVolumeClaim>> = claims
        .iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                Arc::new(c.clone()),
            )
        })
        .collect();
    plan::plan(
        &view,
        &owner(set),
        &revisions,
        pods,
        &claims,
        Timestamp::UNIX_EPOCH + k8s_openapi::jiff::SignedDuration::from_secs(3600),
    )
}

/// The plan as short strings: `create web-0@rev`, `delete web-2 (Update)`, ...
fn describe(plan: &plan::Plan) -> Vec<String> {
    plan.actions
        .iter()
        .map(|a| match a {
            Action::CreatePod { pod, claims } => {
                let mut s = format!(
                    "create {}@{}",
                    pod.metadata.name.as_deref().unwrap_or_default(),
                    identity::pod_revision(pod)
                );
                for c in claims {
                    s.push_str(&format!(
                        " +{}",
                        c.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                s
            }
            Action::CreateClaims { pod, claims } => format!("claims {pod} {}", claims.len()),
            Action::DeletePod { pod, reason } => format!(
                "delete {} ({reason:?})",
                pod.metadata.name.as_deref().unwrap_or_default()
            ),
            Action::UpdatePod { pod } => {
                format!(
                    "update {}",
                    pod.metadata.name.as_deref().unwrap_or_default()
                )
            }
            Action::UpdateClaim { claim, .. } => format!(
                "fix-claim {}",
                claim.metadata.name.as_deref().unwrap_or_default()
            ),
        })
        .collect()
}

use State::{Failed, Pending, Ready, Terminating};

/// (what, the set or its replicas, pods, the expected writes).
type Case<S> = (&'static str, S, Vec<Arc<Pod>>, Vec<&'static str>);

#[test]
fn ordered_ready_creates_one_at_a_time_and_deletes_in_reverse() {
    let c = CURRENT;
    let cases: Vec<Case<i32>> = vec![
        (
            "empty: only web-0",
            3,
            vec![],
            vec!["create web-0@web-current"],
        ),
        ("web-0 pending: wait", 3, vec![pod(0, c, Pending)], vec![]),
        (
            "web-0 ready: web-1",
            3,
            vec![pod(0, c, Ready)],
            vec!["create web-1@web-current"],
        ),
        (
            "web-0, web-1 ready: web-2",
            3,
            vec![pod(0, c, Ready), pod(1, c, Ready)],
            vec!["create web-2@web-current"],
        ),
        (
            "a terminating predecessor blocks",
            3,
            vec![pod(0, c, Ready), pod(1, c, Terminating)],
            vec![],
        ),
        (
            "a hole below is filled first",
            3,
            vec![pod(1, c, Ready), pod(2, c, Ready)],
            vec!["create web-0@web-current"],
        ),
        (
            "failed pod deleted for recreation",
            3,
            vec![pod(0, c, Failed)],
            vec!["delete web-0 (Finished)"],
        ),
        (
            "scale down: highest ordinal only",
            1,
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, c, Ready)],
            vec!["delete web-2 (ScaleDown)"],
        ),
        (
            "scale down waits for the deletion to finish",
            1,
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, c, Terminating)],
            vec![],
        ),
        (
            "the first unhealthy pod may go",
            1,
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, c, Pending)],
            vec!["delete web-2 (ScaleDown)"],
        ),
        (
            "a ready condemned pod goes even with an unready one below",
            1,
            vec![pod(0, c, Ready), pod(1, c, Pending), pod(2, c, Ready)],
            vec!["delete web-2 (ScaleDown)"],
        ),
        (
            "an unready condemned pod that is not the first unhealthy waits",
            1,
            vec![pod(0, c, Ready), pod(1, c, Pending), pod(2, c, Pending)],
            vec![],
        ),
        (
            "an unready replica blocks scale down",
            1,
            vec![pod(0, c, Pending), pod(1, c, Ready)],
            vec![],
        ),
    ];
    for (what, replicas, pods, want) in cases {
        let got = describe(&run(&set(replicas), &pods, &[], false));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn parallel_creates_and_deletes_at_once() {
    let c = CURRENT;
    let parallel = |replicas| {
        set_with(replicas, |s| {
            s.pod_management_policy = Some("Parallel".into())
        })
    };
    let cases: Vec<Case<i32>> = vec![
        (
            "all created",
            3,
            vec![],
            vec![
                "create web-0@web-current",
                "create web-1@web-current",
                "create web-2@web-current",
            ],
        ),
        (
            "unready pods do not block",
            3,
            vec![pod(0, c, Pending), pod(1, c, Failed)],
            vec!["delete web-1 (Finished)", "create web-2@web-current"],
        ),
        (
            "all condemned deleted, highest first",
            0,
            vec![pod(0, c, Pending), pod(1, c, Ready), pod(2, c, Pending)],
            vec![
                "delete web-2 (ScaleDown)",
                "delete web-1 (ScaleDown)",
                "delete web-0 (ScaleDown)",
            ],
        ),
        (
            "terminating condemned are skipped",
            1,
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, c, Terminating)],
            vec!["delete web-1 (ScaleDown)"],
        ),
    ];
    for (what, replicas, pods, want) in cases {
        let got = describe(&run(&parallel(replicas), &pods, &[], false));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn ordinals_start_shifts_the_range() {
    let s = set_with(2, |s| {
        s.ordinals = Some(StatefulSetOrdinals { start: Some(5) })
    });
    assert_eq!(
        describe(&run(&s, &[], &[], false)),
        vec!["create web-5@web-current"]
    );
    let got = describe(&run(
        &s,
        &[
            pod(5, CURRENT, Ready),
            pod(6, CURRENT, Ready),
            pod(0, CURRENT, Ready),
        ],
        &[],
        false,
    ));
    assert_eq!(
        got,
        vec!["delete web-0 (ScaleDown)"],
        "web-0 is outside [5, 7)"
    );
}

#[test]
fn rolling_update_goes_from_the_highest_ordinal_and_respects_the_partition() {
    let (c, u) = (CURRENT, UPDATE);
    let with = |partition: i32, max_unavailable: Option<IntOrString>| {
        set_with(3, move |s| {
            s.update_strategy = Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateStatefulSetStrategy {
                    partition: Some(partition),
                    max_unavailable,
                }),
            })
        })
    };
    let all_current = vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, c, Ready)];
    let cases: Vec<Case<StatefulSet>> = vec![
        (
            "highest first",
            with(0, None),
            all_current.clone(),
            vec!["delete web-2 (Update)"],
        ),
        (
            "recreated at the update revision",
            with(0, None),
            vec![pod(0, c, Ready), pod(1, c, Ready)],
            vec!["create web-2@web-update"],
        ),
        (
            "waits while the updated pod is unready",
            with(0, None),
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, u, Pending)],
            vec![],
        ),
        (
            "next one down",
            with(0, None),
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, u, Ready)],
            vec!["delete web-1 (Update)"],
        ),
        (
            "partition 2 stops after web-2",
            with(2, None),
            vec![pod(0, c, Ready), pod(1, c, Ready), pod(2, u, Ready)],
            vec![],
        ),
        (
            "below the partition pods are recreated at the current revision",
            with(2, None),
            vec![pod(1, c, Ready), pod(2, u, Ready)],
            vec!["create web-0@web-current"],
        ),
        (
            "maxUnavailable 2",
            with(0, Some(IntOrString::Int(2))),
            all_current.clone(),
            vec!["delete web-2 (Update)", "delete web-1 (Update)"],
        ),
        (
            "maxUnavailable 50% of 3 rounds down to 1",
            with(0, Some(IntOrString::String("50%".into()))),
            all_current.clone(),
            vec!["delete web-2 (Update)"],
        ),
        (
            "OnDelete never deletes",
            set_with(3, |s| {
                s.update_strategy = Some(StatefulSetUpdateStrategy {
                    type_: Some("OnDelete".into()),
                    rolling_update: None,
                })
            }),
            all_current.clone(),
            vec![],
        ),
    ];
    for (what, s, pods, want) in cases {
        let got = describe(&run(&s, &pods, &[], true));
        assert_eq!(got, want, "{what}");
    }
    let plan = run(&with(0, None), &all_current, &[], true);
    let status = &plan.status;
    assert_eq!(
        (
            status.replicas,
            status.ready_replicas,
            status.current_replicas,
            status.updated_replicas
        ),
        (3, Some(3), Some(2), Some(0)),
        "the deleted pod no longer counts as current"
    );
    assert_eq!(status.current_revision.as_deref(), Some(CURRENT));
    assert_eq!(status.update_revision.as_deref(), Some(UPDATE));
}

#[test]
fn status_counts_and_rolling_update_completion() {
    let s = set(2);
    let view = match SetView::new(&s) {
        Ok(v) => v,
        Err(err) => panic!("{err}"),
    };
    let mut status = run(
        &s,
        &[pod(0, UPDATE, Ready), pod(1, UPDATE, Ready)],
        &[],
        true,
    )
    .status;
    assert_eq!(status.updated_replicas, Some(2));
    assert_eq!(status.current_replicas, Some(0));
    assert_eq!(status.observed_generation, Some(1));
    plan::complete_rolling_update(&view, &mut status);
    assert_eq!(status.current_revision.as_deref(), Some(UPDATE));
    assert_eq!(status.current_replicas, Some(2));

    let mut partial = run(
        &s,
        &[pod(0, CURRENT, Ready), pod(1, UPDATE, Pending)],
        &[],
        true,
    )
    .status;
    plan::complete_rolling_update(&view, &mut partial);
    assert_eq!(partial.current_revision.as_deref(), Some(CURRENT));
    assert!(plan::status_changed(None, &partial));
    assert!(!plan::status_changed(Some(&partial), &partial));
    let newer = StatefulSetStatus {
        ready_replicas: Some(2),
        ..partial.clone()
    };
    assert!(plan::status_changed(Some(&partial), &newer));
}

#[test]
fn min_ready_seconds_gates_availability_and_ordering() {
    // Pods became ready at the epoch; "now" in `run` is one hour later.
    let s = set_with(2, |s| s.min_ready_seconds = Some(7200));
    let plan = run(&s, &[pod(0, CURRENT, Ready)], &[], false);
    assert_eq!(
        describe(&plan),
        Vec::<String>::new(),
        "web-0 is not yet available"
    );
    assert_eq!(plan.status.ready_replicas, Some(1));
    assert_eq!(plan.status.available_replicas, Some(0));
    let s = set_with(2, |s| s.min_ready_seconds = Some(60));
    let plan = run(&s, &[pod(0, CURRENT, Ready)], &[], false);
    assert_eq!(describe(&plan), vec!["create web-1@web-current"]);
    assert_eq!(plan.status.available_replicas, Some(1));
}

#[test]
fn new_pods_carry_identity_and_storage() {
    let s = set_with(1, |s| {
        s.volume_claim_templates = Some(vec![claim_template("www")]);
    });
    let plan = run(&s, &[], &[], false);
    let Some(Action::CreatePod { pod, claims }) = plan.actions.first() else {
        panic!("expected a pod creation, got {:?}", describe(&plan));
    };
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get(identity::POD_NAME_LABEL).map(String::as_str),
        Some("web-0")
    );
    assert_eq!(
        labels.get(identity::POD_INDEX_LABEL).map(String::as_str),
        Some("0")
    );
    assert_eq!(
        labels.get(identity::REVISION_LABEL).map(String::as_str),
        Some(CURRENT)
    );
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    let spec = pod.spec.clone().unwrap_or_default();
    assert_eq!(spec.hostname.as_deref(), Some("web-0"));
    assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
    let volumes = spec.volumes.unwrap_or_default();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].name, "www");
    assert_eq!(
        volumes[0]
            .persistent_volume_claim
            .as_ref()
            .map(|c| c.claim_name.as_str()),
        Some("www-web-0")
    );
    let refs = pod.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].controller),
        ("StatefulSet", Some(true))
    );
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].metadata.name.as_deref(), Some("www-web-0"));
    assert_eq!(
        claims[0]
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get("app")
            .map(String::as_str),
        Some("web"),
        "the set's selector labels are merged into the claim"
    );
    assert_eq!(
        claims[0].metadata.owner_references, None,
        "Retain/Retain: no owner"
    );
}

fn claim_template(name: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(&[("tier", "data")])),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    }
}

fn existing_claim(name: &str, owners: Vec<OwnerReference>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..ObjectMeta::default()
        },
        ..PersistentVolumeClaim::default()
    }
}

fn policy_set(replicas: i32, when_deleted: &str, when_scaled: &str) -> StatefulSet {
    let (d, s) = (when_deleted.to_string(), when_scaled.to_string());
    set_with(replicas, move |spec| {
        spec.volume_claim_templates = Some(vec![claim_template("www")]);
        spec.persistent_volume_claim_retention_policy =
            Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some(d),
                when_scaled: Some(s),
            });
    })
}

/// `pod` with the claim volumes `set` wants (as the controller created it).
fn with_storage(set: &StatefulSet, pod: Arc<Pod>) -> Arc<Pod> {
    let view = match SetView::new(set) {
        Ok(v) => v,
        Err(err) => panic!("{err}"),
    };
    let mut pod = pod.as_ref().clone();
    let ordinal = identity::ordinal(&pod).unwrap_or(0);
    identity::update_storage(&view, &mut pod, ordinal);
    Arc::new(pod)
}

fn pod_ref(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn claims_follow_the_retention_policy() {
    // whenDeleted: Delete -> the set controls new claims.
    let s = policy_set(1, "Delete", "Retain");
    let plan = run(&s, &[], &[], false);
    let Some(Action::CreatePod { claims, .. }) = plan.actions.first() else {
        panic!("expected a pod creation");
    };
    let refs = claims[0]
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(refs.len(), 1);
    assert_eq!(
        (refs[0].kind.as_str(), refs[0].uid.as_str()),
        ("StatefulSet", "set-uid")
    );

    // An existing claim is reused, not created again.
    let with_claim = run(
        &set_with(1, |s| {
            s.volume_claim_templates = Some(vec![claim_template("www")])
        }),
        &[],
        &[existing_claim("www-web-0", vec![])],
        false,
    );
    assert_eq!(describe(&with_claim), vec!["create web-0@web-current"]);

    // A claim being deleted blocks the pod.
    let mut dying = existing_claim("www-web-0", vec![]);
    dying.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
    let blocked = run(
        &set_with(1, |s| {
            s.volume_claim_templates = Some(vec![claim_template("www")])
        }),
        &[],
        &[dying],
        false,
    );
    assert_eq!(describe(&blocked), Vec::<String>::new());
    assert_eq!(
        blocked.blocked.as_deref(),
        Some("pvc www-web-0 is being deleted")
    );

    // whenScaled: Delete -> a condemned pod's claim is handed to the pod before it goes.
    let s = policy_set(1, "Retain", "Delete");
    let claims = vec![
        existing_claim("www-web-0", vec![]),
        existing_claim("www-web-1", vec![]),
    ];
    let plan = run(
        &s,
        &[
            with_storage(&s, pod(0, CURRENT, Ready)),
            with_storage(&s, pod(1, CURRENT, Ready)),
        ],
        &claims,
        false,
    );
    assert_eq!(
        describe(&plan),
        vec!["fix-claim www-web-1", "delete web-1 (ScaleDown)"]
    );
    let Some(Action::UpdateClaim { claim, .. }) = plan.actions.first() else {
        panic!("expected a claim update");
    };
    assert_eq!(
        claim.metadata.owner_references,
        Some(vec![pod_ref("web-1", "uid-web-1")])
    );

    // A claim still owned by the previous web-1 blocks recreating it.
    let s = policy_set(2, "Retain", "Delete");
    let stale = existing_claim("www-web-1", vec![pod_ref("web-1", "old-uid")]);
    let web0 = [with_storage(&s, pod(0, CURRENT, Ready))];
    let plan = run(
        &s,
        &web0,
        &[existing_claim("www-web-0", vec![]), stale],
        false,
    );
    assert_eq!(describe(&plan), Vec::<String>::new());
    let plan = run(&s, &web0, &[existing_claim("www-web-0", vec![])], false);
    assert_eq!(describe(&plan), vec!["create web-1@web-current +www-web-1"]);
}

#[test]
fn claim_owner_up_to_date_table() {
    let set_ref = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "StatefulSet".into(),
        name: "web".into(),
        uid: "set-uid".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let foreign = OwnerReference {
        api_version: "example.com/v1".into(),
        kind: "Thing".into(),
        name: "x".into(),
        uid: "thing-uid".into(),
        controller: Some(true),
        block_owner_deletion: None,
    };
    let p = pod_ref("web-0", "uid-web-0");
    // (whenDeleted, whenScaled, refs, scaled down, up to date)
    let cases: Vec<(&str, &str, Vec<OwnerReference>, bool, bool)> = vec![
        ("Retain", "Retain", vec![], false, true),
        ("Retain", "Retain", vec![set_ref.clone()], false, false),
        ("Delete", "Retain", vec![], false, false),
        ("Delete", "Retain", vec![set_ref.clone()], false, true),
        ("Retain", "Delete", vec![], false, true),
        ("Retain", "Delete", vec![], true, false),
        ("Retain", "Delete", vec![p.clone()], true, true),
        ("Delete", "Delete", vec![set_ref.clone()], false, true),
        ("Delete", "Delete", vec![set_ref.clone()], true, false),
        ("Delete", "Delete", vec![p.clone()], true, true),
        // A foreign controller: leave the claim alone unless our refs must be scrubbed.
        ("Delete", "Retain", vec![foreign.clone()], false, true),
        (
            "Delete",
            "Retain",
            vec![foreign.clone(), set_ref.clone()],
            false,
            false,
        ),
        // A reference to an older set of the same name: not ours to touch.
        (
            "Retain",
            "Retain",
            vec![OwnerReference {
                uid: "old-set".into(),
                ..set_ref.clone()
            }],
            false,
            true,
        ),
    ];
    for (deleted, scaled, refs, scaled_down, want) in cases {
        let s = policy_set(1, deleted, scaled);
        let view = match SetView::new(&s) {
            Ok(v) => v,
            Err(err) => panic!("{err}"),
        };
        let claim = existing_claim("www-web-0", refs.clone());
        let owner = Owner::pod("web-0", "uid-web-0");
        assert_eq!(
            retention::claim_owner_up_to_date(&claim, &view, &owner, scaled_down),
            want,
            "{deleted}/{scaled} refs={:?} scaled_down={scaled_down}",
            refs.iter().map(|r| &r.kind).collect::<Vec<_>>()
        );
        if !want {
            let fixed = existing_claim(
                "www-web-0",
                retention::owner_refs_for_policy(&claim, &view, &owner, scaled_down),
            );
            assert!(
                retention::claim_owner_up_to_date(&fixed, &view, &owner, scaled_down),
                "fixing {deleted}/{scaled} converges"
            );
        }
    }
}

#[test]
fn names_parse_back_to_parent_and_ordinal() {
    let cases = [
        ("web-0", Some(("web", Some(0)))),
        ("my-app-12", Some(("my-app", Some(12)))),
        ("web-", None),
        ("web", None),
        ("web-1a", None),
        ("web-99999999999", Some(("web", None))),
    ];
    for (name, want) in cases {
        assert_eq!(identity::parent_and_ordinal(name), want, "{name}");
    }
}

#[test]
fn pod_claims_adopt_release_and_ignore() {
    let s = set(1);
    let view = match SetView::new(&s) {
        Ok(v) => v,
        Err(err) => panic!("{err}"),
    };
    let selector = match super::set_selector(&s) {
        Ok(sel) => sel,
        Err(err) => panic!("{err}"),
    };
    let ours = pod(0, CURRENT, Ready);
    let mut orphan = ours.as_ref().clone();
    orphan.metadata.owner_references = None;
    let mut other_name = orphan.clone();
    other_name.metadata.name = Some("db-0".into());
    let mut relabelled = ours.as_ref().clone();
    relabelled.metadata.labels = Some(labels(&[("app", "other")]));
    let mut foreign = ours.as_ref().clone();
    foreign.metadata.owner_references = Some(vec![OwnerReference {
        uid: "someone-else".into(),
        ..owner(&s)
    }]);
    let cases = [
        ("ours", ours.as_ref().clone(), Claim::Keep),
        ("orphan member", orphan, Claim::Adopt),
        ("orphan of another name", other_name, Claim::Ignore),
        ("ours, no longer matching", relabelled, Claim::Release),
        ("someone else's", foreign, Claim::Ignore),
    ];
    for (what, p, want) in cases {
        let member = identity::is_member(&view, &selector, &p);
        assert_eq!(claim(&p.metadata, &s.metadata, member), want, "{what}");
    }
}

// ---- revisions ----------------------------------------------------------------------------

fn revision(name: &str, number: i64, image: &str) -> Arc<ControllerRevision> {
    Arc::new(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        data: Some(k8s_openapi::apimachinery::pkg::runtime::RawExtension(
            history::revision_data(&template(image)),
        )),
        revision: number,
    })
}

#[test]
fn revision_hash_is_fnv1_safe_encoded_and_moves_with_template_and_collisions() {
    // Go's fnv.New32 (FNV-1) of "a" is 0x050c5d7e.
    assert_eq!(history::fnv1_32(&[b"a"]), 0x050c_5d7e);
    assert_eq!(history::safe_encode("0123456789"), "456789bcdf");
    let v1 = history::revision_data(&template("v1"));
    let v2 = history::revision_data(&template("v2"));
    assert_eq!(v1["spec"]["template"]["$patch"], "replace");
    let h = history::hash(&v1, Some(0));
    assert_eq!(h, history::hash(&v1, Some(0)), "stable");
    assert_ne!(h, history::hash(&v2, Some(0)), "template changes the hash");
    assert_ne!(h, history::hash(&v1, Some(1)), "collisions change the hash");
    assert!(h.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));

    let s = set(1);
    let Some(spec) = s.spec.as_ref() else {
        panic!("set has a spec")
    };
    let r = history::new_revision(&s, &spec.template, owner(&s), 3, 0);
    assert_eq!(r.metadata.name, Some(format!("web-{h}")));
    assert_eq!(r.revision, 3);
    let labels = r.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels.get(history::HASH_LABEL), Some(&h));
    assert_eq!(labels.get("app").map(String::as_str), Some("web"));
    match history::template_of(&r) {
        Ok(t) => assert_eq!(t, spec.template, "the revision restores the template"),
        Err(err) => panic!("{err}"),
    }
    let mut collided = r.clone();
    history::rehash(&mut collided, "web", 1);
    assert_ne!(collided.metadata.name, r.metadata.name);
}

#[test]
fn update_revision_is_reused_renumbered_or_created() {
    let s = set(1);
    let candidate = |number: i64, image: &str| {
        history::new_revision(&s, &template(image), owner(&s), number, 0)
    };
    let mut sorted = vec![revision("web-b", 2, "v2"), revision("web-a", 1, "v1")];
    history::sort(&mut sorted);
    assert_eq!(history::next_number(&sorted), 3);
    assert_eq!(history::next_number(&[]), 1);
    let name = |u: &UpdateRevision| match u {
        UpdateRevision::Existing(r) => {
            format!("existing {}", r.metadata.name.as_deref().unwrap_or(""))
        }
        UpdateRevision::Renumber(r, n) => {
            format!("renumber {} {n}", r.metadata.name.as_deref().unwrap_or(""))
        }
        UpdateRevision::Create(r) => format!("create {}", r.revision),
    };
    assert_eq!(
        name(&history::choose_update(&sorted, candidate(3, "v2"))),
        "existing web-b"
    );
    assert_eq!(
        name(&history::choose_update(&sorted, candidate(3, "v1"))),
        "renumber web-a 3",
        "rollback"
    );
    assert_eq!(
        name(&history::choose_update(&sorted, candidate(3, "v3"))),
        "create 3"
    );
    assert_eq!(
        name(&history::choose_update(&[], candidate(1, "v1"))),
        "create 1"
    );
    assert_eq!(
        history::find_current(&sorted, Some("web-a")).and_then(|r| r.metadata.name.clone()),
        Some("web-a".to_string())
    );
    assert!(history::find_current(&sorted, Some("gone")).is_none());
}

#[test]
fn history_is_truncated_oldest_first_keeping_live_revisions() {
    let mut sorted: Vec<Arc<ControllerRevision>> = (1..=5)
        .map(|n| revision(&format!("web-{n}"), n, &format!("v{n}")))
        .collect();
    history::sort(&mut sorted);
    let live: HashSet<&str> = ["web-5", "web-1"].into_iter().collect();
    assert_eq!(
        history::to_truncate(&sorted, &live, 1),
        vec!["web-2", "web-3"]
    );
    assert_eq!(
        history::to_truncate(&sorted, &live, 3),
        Vec::<String>::new()
    );
    assert_eq!(
        history::to_truncate(&sorted, &live, 0),
        vec!["web-2", "web-3", "web-4"]
    );
}
