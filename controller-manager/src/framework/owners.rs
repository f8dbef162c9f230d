//! From events of owned objects to the keys of their owners: upstream's `addPod` / `updatePod`
//! / `deletePod` of the ReplicaSet, DaemonSet and StatefulSet controllers, written once.
//!
//! A pod with a controller reference wakes that controller (if it is of the kind and still
//! the same object); an orphan wakes every owner of its namespace whose selector matches it, so
//! one of them adopts it. A pod that changes owner wakes both. Creations and deletions lower
//! the owner's expectations. A pod that turns Ready wakes its owner again after
//! `minReadySeconds`, when it becomes available.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use client::informer::store::NAMESPACE_INDEX;
use client::informer::Object;
use client::Informer;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::Resource;
use workqueue::Queue;

use super::expectations::UidTrackingExpectations;
use super::{controller_ref, key_of, resolve_controller_ref, EventHandler};

/// Queues the controller of `obj` (a ControllerRevision, a Job, ...) when it is one of `owners`.
pub fn enqueue_controller_of<K>(owners: &Informer<K>, queue: &Queue<String>, obj: &ObjectMeta)
where
    K: Object + Resource<DynamicType = ()>,
{
    let Some(r) = controller_ref(obj) else {
        return;
    };
    if let Some(owner) = resolve_controller_ref(owners, obj.namespace.as_deref(), r) {
        queue.add(key_of(owner.as_ref()));
    }
}

/// How the handlers treat a pod that starts terminating (gets a deletionTimestamp).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTerminating {
    /// As any other change (the StatefulSet controller's).
    Update,
    /// As its deletion, so the owner may replace it at once; a pod added while terminating
    /// (seen after a restart) is no creation (the DaemonSet controller's).
    Delete,
    /// As `Delete`, and when its labels changed in the same update the old pod is deleted too
    /// (the ReplicaSet controller's).
    DeleteWithOldLabels,
}

/// The pod event handlers of a controller of pods of kind `K`. Register with
/// [`super::add_handler`]; `owners` needs the namespace index.
pub struct PodEvents<K> {
    pub owners: Informer<K>,
    pub queue: Queue<String>,
    /// Lowered by the creations and deletions the handlers see; `None`: the controller keeps
    /// none.
    pub expectations: Option<Arc<UidTrackingExpectations>>,
    /// Whether the owner's selector selects pods with these labels (false for an unusable one).
    pub selects: fn(&K, &BTreeMap<String, String>) -> bool,
    pub min_ready_seconds: fn(&K) -> i32,
    /// The readiness the owner's availability counts from.
    pub ready: fn(&Pod) -> bool,
    pub on_terminating: OnTerminating,
}

impl<K> PodEvents<K>
where
    K: Object + Resource<DynamicType = ()>,
{
    fn resolve(&self, pod: &Pod) -> Option<Arc<K>> {
        let r = controller_ref(&pod.metadata)?;
        resolve_controller_ref(&self.owners, pod.metadata.namespace.as_deref(), r)
    }

    /// Queues the owners of the pod's namespace whose selector matches it (candidates to adopt
    /// it).
    fn enqueue_matching(&self, pod: &Pod) {
        let Some(ns) = pod.metadata.namespace.as_deref() else {
            return;
        };
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for owner in self.owners.store().by_index(NAMESPACE_INDEX, ns) {
            if (self.selects)(&owner, &labels) {
                self.queue.add(key_of(owner.as_ref()));
            }
        }
    }

    fn deleted(&self, pod: &Pod) {
        if let Some(owner) = self.resolve(pod) {
            let key = key_of(owner.as_ref());
            if let Some(e) = &self.expectations {
                e.deletion_observed(&key, &key_of(pod));
            }
            self.queue.add(key);
        }
    }
}

impl<K> EventHandler<Pod> for PodEvents<K>
where
    K: Object + Resource<DynamicType = ()>,
{
    fn on_add(&self, pod: &Arc<Pod>) {
        if pod.metadata.deletion_timestamp.is_some() && self.on_terminating != OnTerminating::Update
        {
            // Seen after a restart while already terminating: no creation to observe.
            self.deleted(pod);
            return;
        }
        if controller_ref(&pod.metadata).is_none() {
            self.enqueue_matching(pod);
            return;
        }
        if let Some(owner) = self.resolve(pod) {
            let key = key_of(owner.as_ref());
            if let Some(e) = &self.expectations {
                e.creation_observed(&key);
            }
            self.queue.add(key);
        }
    }

    fn on_update(&self, old: &Arc<Pod>, new: &Arc<Pod>) {
        if old.metadata.resource_version == new.metadata.resource_version {
            // A resync: nothing changed.
            return;
        }
        let labels_changed = old.metadata.labels != new.metadata.labels;
        if new.metadata.deletion_timestamp.is_some() && self.on_terminating != OnTerminating::Update
        {
            // Graceful deletion started: the owner may replace the pod now.
            self.deleted(new);
            if labels_changed && self.on_terminating == OnTerminating::DeleteWithOldLabels {
                self.deleted(old);
            }
            return;
        }
        let (old_ref, new_ref) = (controller_ref(&old.metadata), controller_ref(&new.metadata));
        let ref_changed = old_ref != new_ref;
        if ref_changed {
            if let Some(owner) = self.resolve(old) {
                self.queue.add(key_of(owner.as_ref()));
            }
        }
        if new_ref.is_some() {
            if let Some(owner) = self.resolve(new) {
                let key = key_of(owner.as_ref());
                let min_ready = (self.min_ready_seconds)(&owner);
                if min_ready > 0 && !(self.ready)(old) && (self.ready)(new) {
                    // Available only once Ready for minReadySeconds: look again then.
                    let delay = Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
                    self.queue.add_after(key.clone(), delay);
                }
                self.queue.add(key);
            }
            return;
        }
        if labels_changed || ref_changed {
            self.enqueue_matching(new);
        }
    }

    fn on_delete(&self, pod: &Arc<Pod>) {
        self.deleted(pod);
    }
}
