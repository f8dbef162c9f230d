//! Informer events into the cache and the queue (upstream's `eventhandlers.go`): bound pods
//! feed the cache, pending pods of our profiles feed the queue, and every change that may make
//! a rejected pod schedulable (a node added or changed, a bound pod gone, a volume object
//! changed) is classified into a `ClusterEvent` for the queue to move pods by.

use std::collections::HashSet;
use std::sync::Arc;

use client::informer::Event;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::cache::Cache;
use crate::framework::waiting::{WaitingPods, REJECTED_REMOVED};
use crate::framework::{ActionType, ClusterEvent, EventObject, EventResource};
use crate::queue::{pod_scheduling_properties_change, SchedulingQueue};

pub fn is_assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// What routes pod events.
pub struct PodRouting {
    pub cache: Arc<Cache>,
    pub queue: Arc<SchedulingQueue>,
    /// The scheduler names of our profiles.
    pub profiles: HashSet<String>,
    /// The pods Permit plugins hold (assumed, so still without a node in the informer).
    pub waiting_pods: WaitingPods,
}

impl PodRouting {
    fn responsible(&self, pod: &Pod) -> bool {
        self.profiles.contains(crate::config::scheduler_name(pod))
    }

    /// A pod without a node is no longer ours to schedule: out of the queue, and rejected as
    /// "removed" if Permit plugins hold it (upstream's `deletePodFromSchedulingQueue`).
    fn unqueue(&self, pod: &Pod) {
        self.queue.delete(pod);
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        self.waiting_pods.reject(uid, "", REJECTED_REMOVED);
    }

    pub fn handle(&self, event: Event<Pod>) {
        match event {
            Event::Add(pod) => {
                if is_assigned(&pod) {
                    if !is_terminal(&pod) {
                        self.add_assigned(pod);
                    }
                } else if self.responsible(&pod) && !is_terminal(&pod) {
                    self.queue.add(pod);
                }
            }
            Event::Update { old, new } => match (is_assigned(&old), is_assigned(&new)) {
                (_, true) if is_terminal(&new) => {
                    if !is_assigned(&old) {
                        self.unqueue(&old);
                    }
                    self.remove_assigned(new);
                }
                (false, true) => {
                    // Bound (by us or someone else): it leaves the queue for the cache.
                    self.unqueue(&old);
                    self.add_assigned(new);
                }
                (true, true) => {
                    if let Err(err) = self.cache.update_pod(&old, new.clone()) {
                        tracing::warn!(error = %err, "updating a pod in the cache");
                    }
                    for event in pod_scheduling_properties_change(&old, &new) {
                        self.queue
                            .assigned_pod_updated(old.clone(), new.clone(), event);
                    }
                }
                (_, false) => {
                    if self.responsible(&new) && !is_terminal(&new) {
                        self.queue.update(old, new);
                    } else {
                        self.unqueue(&old);
                    }
                }
            },
            Event::Delete(deleted) => {
                let pod = deleted.object().clone();
                if is_assigned(&pod) {
                    self.remove_assigned(pod);
                } else {
                    self.unqueue(&pod);
                }
            }
        }
    }

    fn add_assigned(&self, pod: Arc<Pod>) {
        if let Err(err) = self.cache.add_pod(pod.clone()) {
            tracing::warn!(error = %err, "adding a pod to the cache");
        }
        self.queue.assigned_pod_added(pod);
    }

    fn remove_assigned(&self, pod: Arc<Pod>) {
        if let Err(err) = self.cache.remove_pod(&pod) {
            tracing::debug!(error = %err, "removing a pod from the cache");
        }
        self.queue.assigned_pod_deleted(pod);
    }
}

/// Which scheduling-relevant parts of a node changed (upstream's
/// `nodeSchedulingPropertiesChange`); 0 when none did.
pub fn node_update_action(old: &Node, new: &Node) -> ActionType {
    let mut action = ActionType(0);
    let status = |n: &Node| n.status.clone().unwrap_or_default();
    let (os, ns) = (status(old), status(new));
    if os.allocatable != ns.allocatable {
        action = action | ActionType::UPDATE_NODE_ALLOCATABLE;
    }
    if old.metadata.labels != new.metadata.labels {
        action = action | ActionType::UPDATE_NODE_LABEL;
    }
    let spec = |n: &Node| {
        let s = n.spec.clone().unwrap_or_default();
        (s.taints, s.unschedulable)
    };
    if spec(old) != spec(new) {
        action = action | ActionType::UPDATE_NODE_TAINT;
    }
    let conditions = |s: &k8s_openapi::api::core::v1::NodeStatus| {
        s.conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect::<Vec<_>>()
    };
    if conditions(&os) != conditions(&ns) {
        action = action | ActionType::UPDATE_NODE_CONDITION;
    }
    if old.metadata.annotations != new.metadata.annotations {
        action = action | ActionType::UPDATE_NODE_ANNOTATION;
    }
    action
}

pub fn handle_node(cache: &Cache, queue: &SchedulingQueue, event: Event<Node>) {
    match event {
        Event::Add(node) => {
            cache.add_node(node.clone());
            queue.move_all_to_active_or_backoff(
                ClusterEvent::new(EventResource::Node, ActionType::ADD, "NodeAdd"),
                None,
                Some(EventObject::Node(node)),
                None,
            );
        }
        Event::Update { old, new } => {
            cache.update_node(new.clone());
            let action = node_update_action(&old, &new);
            if action.0 != 0 {
                queue.move_all_to_active_or_backoff(
                    ClusterEvent::new(EventResource::Node, action, "NodeUpdate"),
                    Some(EventObject::Node(old)),
                    Some(EventObject::Node(new)),
                    None,
                );
            }
        }
        Event::Delete(deleted) => {
            if let Err(err) = cache.remove_node(deleted.object()) {
                tracing::debug!(error = %err, "removing a node from the cache");
            }
        }
    }
}

/// Any change of another kind the plugins care about (volumes, storage classes, CSI nodes).
pub fn handle_other<K: serde::Serialize>(
    queue: &SchedulingQueue,
    resource: EventResource,
    label: &'static str,
    event: Event<K>,
) {
    let as_object = |k: &Arc<K>| {
        serde_json::to_value(k.as_ref())
            .ok()
            .map(|v| EventObject::Other(Arc::new(v)))
    };
    let (action, old, new) = match &event {
        Event::Add(k) => (ActionType::ADD, None, as_object(k)),
        Event::Update { old, new } => (ActionType::UPDATE, as_object(old), as_object(new)),
        Event::Delete(d) => (ActionType::DELETE, as_object(d.object()), None),
    };
    queue.move_all_to_active_or_backoff(ClusterEvent::new(resource, action, label), old, new, None);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn node_changes_are_classified() {
        let base = node(json!({"metadata": {"name": "n", "labels": {"a": "1"}},
            "status": {"allocatable": {"cpu": "1"}, "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": "2026-01-01T00:00:00Z"}]}}));
        let mut heartbeat = base.clone();
        if let Some(c) = heartbeat
            .status
            .as_mut()
            .and_then(|s| s.conditions.as_mut())
        {
            c[0].last_heartbeat_time = None;
        }
        assert_eq!(node_update_action(&base, &heartbeat), ActionType(0));
        let mut tainted = base.clone();
        tainted.spec = Some(serde_json::from_value(json!({"unschedulable": true})).unwrap());
        assert_eq!(
            node_update_action(&base, &tainted),
            ActionType::UPDATE_NODE_TAINT
        );
        let mut relabelled = base.clone();
        relabelled.metadata.labels = None;
        assert_eq!(
            node_update_action(&base, &relabelled),
            ActionType::UPDATE_NODE_LABEL
        );
        let mut grown = base.clone();
        if let Some(s) = grown.status.as_mut() {
            s.allocatable = Some(
                [(
                    "cpu".to_string(),
                    k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
                )]
                .into(),
            );
        }
        assert_eq!(
            node_update_action(&base, &grown),
            ActionType::UPDATE_NODE_ALLOCATABLE
        );
    }
}
