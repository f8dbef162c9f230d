//! The garbage collector's decisions (upstream's `attemptToDeleteItem`,
//! `processDeletingDependentsItem` and `attemptToOrphan`), as data: given what live GETs said
//! about an object's owners, what to write. The parent module does the GETs and the writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::graph::{Graph, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};

/// What a live GET of one owner (by the reference's kind, name and the right namespace) found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnerLookup {
    NotFound,
    Found {
        uid: String,
        /// deletionTimestamp set and the `foregroundDeletion` finalizer held.
        deleting_dependents: bool,
    },
}

/// Upstream's classification of one owner reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists (with this UID) and is not waiting for its dependents.
    Solid,
    /// The owner does not exist, or another object has its name now.
    Dangling,
    /// The owner is being deleted in the foreground.
    Waiting,
}

pub fn classify(reference: &OwnerReference, lookup: &OwnerLookup) -> OwnerState {
    match lookup {
        OwnerLookup::NotFound => OwnerState::Dangling,
        OwnerLookup::Found { uid, .. } if *uid != reference.uid => OwnerState::Dangling,
        OwnerLookup::Found {
            deleting_dependents: true,
            ..
        } => OwnerState::Waiting,
        OwnerLookup::Found { .. } => OwnerState::Solid,
    }
}

/// Where to look an owner up. Owner references carry no namespace: a namespaced owner is in the
/// dependent's namespace; a cluster-scoped owner is anyone's. A cluster-scoped dependent cannot
/// have a namespaced owner (`None`: the reference is invalid and cannot be resolved).
pub fn owner_namespace(
    dependent_namespace: Option<&str>,
    owner_namespaced: bool,
) -> Option<Option<String>> {
    match (owner_namespaced, dependent_namespace) {
        (false, _) => Some(None),
        (true, Some(ns)) => Some(Some(ns.to_string())),
        (true, None) => None,
    }
}

/// `propagationPolicy` of a delete the collector issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// A solid owner remains and nothing else needs fixing.
    Nothing,
    /// A solid owner remains: drop the references to absent owners and to owners waiting for
    /// their dependents (this object is not going away on their account).
    RemoveOwnerReferences(Vec<String>),
    /// No solid owner: delete. `unblock` lists owner UIDs whose references are first set to
    /// `blockOwnerDeletion: false` (a cycle of foreground deletions would wait forever).
    Delete {
        propagation: Propagation,
        unblock: Vec<String>,
    },
}

/// `attemptToDeleteItem` once every owner reference is classified. `has_dependents` and
/// `a_dependent_deletes_dependents` come from the graph.
pub fn plan_dependent(
    owners: &[(OwnerReference, OwnerState)],
    finalizers: &[String],
    has_dependents: bool,
    a_dependent_deletes_dependents: bool,
) -> Plan {
    if owners.is_empty() {
        return Plan::Nothing;
    }
    let uids = |state: OwnerState| -> Vec<String> {
        owners
            .iter()
            .filter(|(_, s)| *s == state)
            .map(|(r, _)| r.uid.clone())
            .collect()
    };
    let (solid, dangling, waiting) = (
        uids(OwnerState::Solid),
        uids(OwnerState::Dangling),
        uids(OwnerState::Waiting),
    );
    if !solid.is_empty() {
        if dangling.is_empty() && waiting.is_empty() {
            return Plan::Nothing;
        }
        let mut drop = dangling;
        drop.extend(waiting);
        return Plan::RemoveOwnerReferences(drop);
    }
    if !waiting.is_empty() && has_dependents {
        // This object goes in the foreground too, so its own dependents are deleted before the
        // owner waiting for it. When one of those dependents also waits (a cycle), this
        // object's blocking references are released first, or neither could finish.
        let unblock = if a_dependent_deletes_dependents {
            owners
                .iter()
                .filter(|(r, s)| *s == OwnerState::Waiting && r.block_owner_deletion == Some(true))
                .map(|(r, _)| r.uid.clone())
                .collect()
        } else {
            Vec::new()
        };
        return Plan::Delete {
            propagation: Propagation::Foreground,
            unblock,
        };
    }
    // No solid owner and no reason for the foreground: honour a finalizer the object already
    // carries, else delete in the background.
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let propagation = if has(ORPHAN_FINALIZER) {
        Propagation::Orphan
    } else if has(FOREGROUND_FINALIZER) {
        Propagation::Foreground
    } else {
        Propagation::Background
    };
    Plan::Delete {
        propagation,
        unblock: Vec::new(),
    }
}

/// An owner deleting its dependents in the foreground.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForegroundPlan {
    /// No blocking dependent remains: remove the `foregroundDeletion` finalizer.
    RemoveFinalizer,
    /// Attempt to delete these blocking dependents (those not already deleting their own), and
    /// wait for them to be gone.
    Wait { attempt_to_delete: Vec<String> },
}

pub fn plan_foreground(graph: &Graph, owner_uid: &str) -> ForegroundPlan {
    let blocking = graph.blocking_dependents(owner_uid);
    if blocking.is_empty() {
        return ForegroundPlan::RemoveFinalizer;
    }
    ForegroundPlan::Wait {
        attempt_to_delete: blocking
            .iter()
            .filter(|d| !d.deleting_dependents)
            .map(|d| d.identity.uid.clone())
            .collect(),
    }
}

/// The owner references left after dropping `uids`.
pub fn without_owners(refs: &[OwnerReference], uids: &[String]) -> Vec<OwnerReference> {
    refs.iter()
        .filter(|r| !uids.contains(&r.uid))
        .cloned()
        .collect()
}

/// The owner references with `blockOwnerDeletion: false` on those to `uids`.
pub fn unblocked(refs: &[OwnerReference], uids: &[String]) -> Vec<OwnerReference> {
    refs.iter()
        .map(|r| {
            let mut r = r.clone();
            if uids.contains(&r.uid) {
                r.block_owner_deletion = Some(false);
            }
            r
        })
        .collect()
}

/// The finalizers left after removing `finalizer`.
pub fn without_finalizer(finalizers: &[String], finalizer: &str) -> Vec<String> {
    finalizers
        .iter()
        .filter(|f| *f != finalizer)
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::graph::{Identity, ObjectInfo};
    use super::*;

    fn r(uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("owner-{uid}"),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: block.then_some(true),
        }
    }

    fn found(uid: &str, deleting_dependents: bool) -> OwnerLookup {
        OwnerLookup::Found {
            uid: uid.into(),
            deleting_dependents,
        }
    }

    #[test]
    fn owners_are_classified_by_uid_and_foreground_state() {
        let cases = [
            (OwnerLookup::NotFound, OwnerState::Dangling),
            (found("other", false), OwnerState::Dangling),
            (found("other", true), OwnerState::Dangling),
            (found("u", false), OwnerState::Solid),
            (found("u", true), OwnerState::Waiting),
        ];
        for (lookup, want) in cases {
            assert_eq!(classify(&r("u", true), &lookup), want, "{lookup:?}");
        }
    }

    #[test]
    fn owners_are_looked_up_in_the_dependents_namespace_unless_cluster_scoped() {
        assert_eq!(owner_namespace(Some("a"), true), Some(Some("a".into())));
        assert_eq!(owner_namespace(Some("a"), false), Some(None));
        assert_eq!(owner_namespace(None, false), Some(None));
        // A cluster-scoped dependent of a namespaced owner: unresolvable.
        assert_eq!(owner_namespace(None, true), None);
    }

    #[test]
    fn dependent_plans() {
        use OwnerState::*;
        let bg = Plan::Delete {
            propagation: Propagation::Background,
            unblock: vec![],
        };
        let fg = Plan::Delete {
            propagation: Propagation::Foreground,
            unblock: vec![],
        };
        struct Case {
            name: &'static str,
            owners: Vec<(OwnerReference, OwnerState)>,
            finalizers: Vec<&'static str>,
            has_dependents: bool,
            dependent_waits: bool,
            want: Plan,
        }
        let cases = vec![
            Case {
                name: "no owners",
                owners: vec![],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: Plan::Nothing,
            },
            Case {
                name: "a solid owner",
                owners: vec![(r("a", true), Solid)],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: Plan::Nothing,
            },
            Case {
                name: "background: the only owner is gone",
                owners: vec![(r("a", true), Dangling)],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: bg.clone(),
            },
            Case {
                name: "every owner is gone",
                owners: vec![(r("a", false), Dangling), (r("b", false), Dangling)],
                finalizers: vec![],
                has_dependents: true,
                dependent_waits: false,
                want: bg.clone(),
            },
            Case {
                name: "one owner gone, another alive: only the reference goes",
                owners: vec![(r("a", false), Dangling), (r("b", false), Solid)],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: Plan::RemoveOwnerReferences(vec!["a".into()]),
            },
            Case {
                name: "a waiting owner and a solid one: let go of the waiting one",
                owners: vec![(r("a", true), Waiting), (r("b", false), Solid)],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: Plan::RemoveOwnerReferences(vec!["a".into()]),
            },
            Case {
                name: "foreground owner, leaf dependent: plain delete",
                owners: vec![(r("a", true), Waiting)],
                finalizers: vec![],
                has_dependents: false,
                dependent_waits: false,
                want: bg.clone(),
            },
            Case {
                name: "foreground owner, dependent with dependents: foreground",
                owners: vec![(r("a", true), Waiting)],
                finalizers: vec![],
                has_dependents: true,
                dependent_waits: false,
                want: fg.clone(),
            },
            Case {
                name: "foreground cycle: unblock the waiting owner first",
                owners: vec![(r("a", true), Waiting), (r("b", false), Waiting)],
                finalizers: vec![],
                has_dependents: true,
                dependent_waits: true,
                want: Plan::Delete {
                    propagation: Propagation::Foreground,
                    unblock: vec!["a".into()],
                },
            },
            Case {
                name: "an orphan finalizer already on the object is honoured",
                owners: vec![(r("a", false), Dangling)],
                finalizers: vec![ORPHAN_FINALIZER],
                has_dependents: true,
                dependent_waits: false,
                want: Plan::Delete {
                    propagation: Propagation::Orphan,
                    unblock: vec![],
                },
            },
            Case {
                name: "a foreground finalizer already on the object is honoured",
                owners: vec![(r("a", false), Dangling)],
                finalizers: vec![FOREGROUND_FINALIZER],
                has_dependents: false,
                dependent_waits: false,
                want: fg.clone(),
            },
        ];
        for case in cases {
            let finalizers: Vec<String> = case.finalizers.iter().map(|f| f.to_string()).collect();
            let got = plan_dependent(
                &case.owners,
                &finalizers,
                case.has_dependents,
                case.dependent_waits,
            );
            assert_eq!(got, case.want, "{}", case.name);
        }
    }

    fn info(uid: &str, owners: Vec<OwnerReference>, finalizer: Option<&str>) -> ObjectInfo {
        ObjectInfo {
            identity: Identity {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                namespace: Some("ns".into()),
                name: format!("owner-{uid}"),
                uid: uid.into(),
            },
            owners,
            being_deleted: finalizer.is_some(),
            finalizers: finalizer.map(|f| vec![f.to_string()]).unwrap_or_default(),
        }
    }

    #[test]
    fn foreground_waits_only_for_blocking_dependents() {
        let mut g = Graph::default();
        g.observe(None, &info("p", vec![], Some(FOREGROUND_FINALIZER)));
        g.observe(None, &info("loose", vec![r("p", false)], None));
        assert_eq!(plan_foreground(&g, "p"), ForegroundPlan::RemoveFinalizer);
        g.observe(None, &info("a", vec![r("p", true)], None));
        g.observe(
            None,
            &info("b", vec![r("p", true)], Some(FOREGROUND_FINALIZER)),
        );
        // `b` is already deleting its own dependents: waiting for it is enough.
        assert_eq!(
            plan_foreground(&g, "p"),
            ForegroundPlan::Wait {
                attempt_to_delete: vec!["a".into()]
            }
        );
        g.observe_deleted("a");
        g.observe_deleted("b");
        assert_eq!(plan_foreground(&g, "p"), ForegroundPlan::RemoveFinalizer);
    }

    #[test]
    fn reference_and_finalizer_edits() {
        let refs = vec![r("a", true), r("b", true)];
        let kept = without_owners(&refs, &["a".into()]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].uid, "b");
        let unblocked = unblocked(&refs, &["b".into()]);
        assert_eq!(unblocked[0].block_owner_deletion, Some(true));
        assert_eq!(unblocked[1].block_owner_deletion, Some(false));
        let finalizers = vec![ORPHAN_FINALIZER.to_string(), "example.com/x".to_string()];
        assert_eq!(
            without_finalizer(&finalizers, ORPHAN_FINALIZER),
            vec!["example.com/x".to_string()]
        );
    }
}
