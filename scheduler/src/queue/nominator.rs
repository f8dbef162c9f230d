//! Which pending pods are nominated to which node (upstream's `nominator`): a preemptor waits
//! for its victims to leave, and until it is bound, Filter must count it on the nominated node
//! for every pod of equal or lower priority so that they do not take the room it made.
//!
//! A pod's nomination comes from its `status.nominatedNodeName` (as the informer delivers it)
//! or from preemption in this process, before that status write is seen.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::framework::PodInfo;

/// Looks a pod up by namespace and name in the informer's cache.
pub type PodLookupFn = Arc<dyn Fn(&str, &str) -> Option<Arc<Pod>> + Send + Sync>;

fn uid(pod: &Pod) -> &str {
    pod.metadata.uid.as_deref().unwrap_or("")
}

fn nominated_node_name(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .unwrap_or("")
}

#[derive(Default)]
pub(crate) struct Nominator {
    /// node -> the pods nominated to it.
    by_node: HashMap<String, Vec<Arc<PodInfo>>>,
    /// pod UID -> its nominated node.
    node_of: HashMap<String, String>,
}

impl Nominator {
    /// Nominates the pod to `node` (preemption's override), or, with None, to its
    /// `status.nominatedNodeName` if it has one. Any previous nomination is dropped first.
    /// With `lookup`, a pod that is gone or already bound is not nominated.
    pub fn add(&mut self, pod: Arc<PodInfo>, node: Option<&str>, lookup: Option<&PodLookupFn>) {
        self.delete(&pod.pod);
        let node = match node {
            Some(node) => node,
            None => nominated_node_name(&pod.pod),
        };
        if node.is_empty() {
            return;
        }
        if let Some(lookup) = lookup {
            match lookup(pod.namespace(), pod.name()) {
                None => {
                    tracing::debug!(pod = %pod.key(), "pod doesn't exist in the informer cache, not nominating it");
                    return;
                }
                Some(current)
                    if current
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_some_and(|n| !n.is_empty()) =>
                {
                    tracing::debug!(pod = %pod.key(), "pod is already scheduled, not nominating it");
                    return;
                }
                Some(_) => {}
            }
        }
        self.node_of
            .insert(uid(&pod.pod).to_string(), node.to_string());
        let pods = self.by_node.entry(node.to_string()).or_default();
        if !pods.iter().any(|p| p.uid() == pod.uid()) {
            pods.push(pod);
        }
    }

    pub fn delete(&mut self, pod: &Pod) {
        let Some(node) = self.node_of.remove(uid(pod)) else {
            return;
        };
        if let Some(pods) = self.by_node.get_mut(&node) {
            pods.retain(|p| p.uid() != uid(pod));
            if pods.is_empty() {
                self.by_node.remove(&node);
            }
        }
    }

    /// Keeps the nomination current when the pod changes. A nomination made in this process
    /// survives an update that still has no `nominatedNodeName` (the status write has not
    /// been seen yet); otherwise the new status decides.
    pub fn update(&mut self, old: &Pod, new: Arc<PodInfo>, lookup: Option<&PodLookupFn>) {
        let mut keep: Option<String> = None;
        if nominated_node_name(old).is_empty() && nominated_node_name(&new.pod).is_empty() {
            keep = self.node_of.get(uid(old)).cloned();
        }
        self.delete(old);
        self.add(new, keep.as_deref(), lookup);
    }

    pub fn all(&self) -> HashMap<String, Vec<Arc<PodInfo>>> {
        self.by_node.clone()
    }

    pub fn for_node(&self, node: &str) -> Vec<Arc<PodInfo>> {
        self.by_node.get(node).cloned().unwrap_or_default()
    }

    pub fn node_of(&self, pod: &Pod) -> Option<&str> {
        self.node_of.get(uid(pod)).map(String::as_str)
    }
}
