//! The two kinds the controller manages, behind one trait: apps/v1 ReplicaSet (a
//! `metav1.LabelSelector`) and core/v1 ReplicationController (a map selector). Upstream runs the
//! RC manager through an adapter that converts RCs to ReplicaSets; here the controller is generic
//! over [`ReplicaOwner`] instead, and both kinds share one status shape, [`ReplicaStatus`].

use std::collections::BTreeMap;

use apimachinery::LabelSelector as Selector;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::{
    PodTemplateSpec, ReplicationController, ReplicationControllerCondition,
    ReplicationControllerStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::NamespaceResourceScope;
use kube::core::Resource;

/// One status condition (`ReplicaSetCondition` and `ReplicationControllerCondition` are the
/// same shape).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaCondition {
    pub type_: String,
    pub status: String,
    pub reason: Option<String>,
    pub message: Option<String>,
    pub last_transition_time: Option<Time>,
}

/// The status fields this controller owns, common to both kinds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaStatus {
    pub replicas: i32,
    pub fully_labeled_replicas: i32,
    pub ready_replicas: i32,
    pub available_replicas: i32,
    pub observed_generation: Option<i64>,
    pub conditions: Vec<ReplicaCondition>,
}

/// What the controller needs to know about, and write to, a ReplicaSet-like owner.
pub trait ReplicaOwner:
    client::informer::Object + Resource<DynamicType = (), Scope = NamespaceResourceScope>
{
    /// The controller's name: the event source and the log field (upstream's
    /// `replicaset-controller` and `replication-controller`).
    const COMPONENT: &'static str;
    /// The workqueue's name (upstream's `replicaset` and `replicationmanager`).
    const QUEUE: &'static str;

    /// The pod selector; `Err` says why it cannot be used.
    fn pod_selector(&self) -> Result<Selector, String>;
    /// `spec.replicas` (defaulted to 1 by the apiserver; 1 when absent).
    fn desired_replicas(&self) -> i32;
    fn min_ready_seconds(&self) -> i32;
    fn template(&self) -> Option<&PodTemplateSpec>;
    fn replica_status(&self) -> ReplicaStatus;
    fn set_replica_status(&mut self, status: ReplicaStatus);
}

/// A selector that would select every pod of the namespace is refused: for a ReplicaSet the
/// apiserver never lets one through, and for an RC the apiserver defaults an empty selector to
/// the template's labels, so an empty one here is broken input, not an intent.
fn non_empty(selector: Selector) -> Result<Selector, String> {
    if selector.is_empty() || selector.is_nothing() {
        Err("the selector is empty: it would select every pod in the namespace".into())
    } else {
        Ok(selector)
    }
}

/// The half of [`ReplicaOwner`] both kinds share to the letter: their specs and statuses have
/// the same fields (`$status`, `$condition`) and differ only in the fields named after `keep`,
/// status fields this controller does not own and carries over as they are.
macro_rules! replica_owner_fields {
    ($status:ident, $condition:ident, keep: [$($keep:ident),*]) => {
        fn desired_replicas(&self) -> i32 {
            self.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
        }

        fn min_ready_seconds(&self) -> i32 {
            self.spec
                .as_ref()
                .and_then(|s| s.min_ready_seconds)
                .unwrap_or(0)
        }

        fn template(&self) -> Option<&PodTemplateSpec> {
            self.spec.as_ref().and_then(|s| s.template.as_ref())
        }

        fn replica_status(&self) -> ReplicaStatus {
            let Some(s) = &self.status else {
                return ReplicaStatus::default();
            };
            ReplicaStatus {
                replicas: s.replicas,
                fully_labeled_replicas: s.fully_labeled_replicas.unwrap_or(0),
                ready_replicas: s.ready_replicas.unwrap_or(0),
                available_replicas: s.available_replicas.unwrap_or(0),
                observed_generation: s.observed_generation,
                conditions: s
                    .conditions
                    .iter()
                    .flatten()
                    .map(|c| ReplicaCondition {
                        type_: c.type_.clone(),
                        status: c.status.clone(),
                        reason: c.reason.clone(),
                        message: c.message.clone(),
                        last_transition_time: c.last_transition_time.clone(),
                    })
                    .collect(),
            }
        }

        fn set_replica_status(&mut self, status: ReplicaStatus) {
            #[allow(unused_variables)]
            let current = self.status.take().unwrap_or_default();
            self.status = Some($status {
                replicas: status.replicas,
                fully_labeled_replicas: Some(status.fully_labeled_replicas),
                ready_replicas: Some(status.ready_replicas),
                available_replicas: Some(status.available_replicas),
                observed_generation: status.observed_generation,
                conditions: (!status.conditions.is_empty()).then(|| {
                    status
                        .conditions
                        .into_iter()
                        .map(|c| $condition {
                            type_: c.type_,
                            status: c.status,
                            reason: c.reason,
                            message: c.message,
                            last_transition_time: c.last_transition_time,
                        })
                        .collect()
                }),
                $($keep: current.$keep,)*
            });
        }
    };
}

impl ReplicaOwner for ReplicaSet {
    const COMPONENT: &'static str = "replicaset-controller";
    const QUEUE: &'static str = "replicaset";

    fn pod_selector(&self) -> Result<Selector, String> {
        let spec = self.spec.as_ref().ok_or("the ReplicaSet has no spec")?;
        let value = serde_json::to_value(&spec.selector).map_err(|err| err.to_string())?;
        let selector = Selector::from_label_selector(&value).map_err(|err| err.to_string())?;
        non_empty(selector)
    }

    // `terminatingReplicas` is behind the alpha DeploymentReplicaSetTerminatingReplicas gate
    // upstream: not ours.
    replica_owner_fields!(ReplicaSetStatus, ReplicaSetCondition, keep: [terminating_replicas]);
}

impl ReplicaOwner for ReplicationController {
    const COMPONENT: &'static str = "replication-controller";
    const QUEUE: &'static str = "replicationmanager";

    fn pod_selector(&self) -> Result<Selector, String> {
        let empty = BTreeMap::new();
        let set = self
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .unwrap_or(&empty);
        non_empty(Selector::from_set(
            set.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
    }

    replica_owner_fields!(
        ReplicationControllerStatus,
        ReplicationControllerCondition,
        keep: []
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSetSpec;
    use k8s_openapi::api::core::v1::ReplicationControllerSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_of_both_kinds() {
        let rs = ReplicaSet {
            spec: Some(ReplicaSetSpec {
                selector: LabelSelector {
                    match_labels: Some(labels(&[("app", "web")])),
                    ..LabelSelector::default()
                },
                ..ReplicaSetSpec::default()
            }),
            ..ReplicaSet::default()
        };
        let sel = match rs.pod_selector() {
            Ok(sel) => sel,
            Err(err) => panic!("valid selector refused: {err}"),
        };
        assert!(sel.matches(&labels(&[("app", "web"), ("x", "y")])));
        assert!(!sel.matches(&labels(&[("app", "db")])));
        assert_eq!(rs.desired_replicas(), 1, "absent replicas default to 1");

        let empty_rs = ReplicaSet {
            spec: Some(ReplicaSetSpec::default()),
            ..ReplicaSet::default()
        };
        assert!(
            empty_rs.pod_selector().is_err(),
            "an empty selector is refused"
        );

        let rc = ReplicationController {
            spec: Some(ReplicationControllerSpec {
                selector: Some(labels(&[("app", "web")])),
                replicas: Some(3),
                ..ReplicationControllerSpec::default()
            }),
            ..ReplicationController::default()
        };
        let sel = match rc.pod_selector() {
            Ok(sel) => sel,
            Err(err) => panic!("valid selector refused: {err}"),
        };
        assert!(sel.matches(&labels(&[("app", "web")])));
        assert_eq!(rc.desired_replicas(), 3);
        assert!(ReplicationController::default().pod_selector().is_err());
    }

    #[test]
    fn status_round_trips_through_the_common_shape() {
        let status = ReplicaStatus {
            replicas: 3,
            fully_labeled_replicas: 2,
            ready_replicas: 1,
            available_replicas: 1,
            observed_generation: Some(4),
            conditions: vec![ReplicaCondition {
                type_: "ReplicaFailure".into(),
                status: "True".into(),
                reason: Some("FailedCreate".into()),
                message: Some("nope".into()),
                last_transition_time: None,
            }],
        };
        let mut rs = ReplicaSet::default();
        rs.set_replica_status(status.clone());
        assert_eq!(rs.replica_status(), status);
        let mut rc = ReplicationController::default();
        rc.set_replica_status(status.clone());
        assert_eq!(rc.replica_status(), status);
    }
}
