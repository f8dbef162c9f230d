//! The scheduler cache (upstream's `backend/cache`): every node with the pods bound to it or
//! assumed onto it, kept current by the informers and by the scheduler itself, and the source
//! of the per-cycle [`Snapshot`].
//!
//! Assumed pods are how a binding that is still in flight counts: `assume_pod` puts the pod on
//! its node at once so that the next cycle sees the node's resources taken; `finish_binding`
//! starts the optional expiry clock; the informer's add confirms it (on the node it really
//! landed on); `forget_pod` undoes it when binding fails.
//!
//! Pods are keyed by UID, as upstream does. A node that is deleted while pods remain on it
//! stays as a "ghost" info (no node, some pods) until their deletions arrive; ghosts never
//! appear in a snapshot.
//!
//! The snapshot is refreshed incrementally: every change to a node's info gives it a new
//! generation, the cache keeps the infos ordered by generation (upstream keeps a most-recently-
//! updated list), and `update_snapshot` re-clones only the infos newer than the snapshot.

mod node_tree;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use tokio::time::Instant;

use crate::framework::{NodeInfo, PodInfo, Resource, Snapshot};

pub use node_tree::{zone_key, NodeTree};

/// How often expired assumed pods are swept and the size metrics refreshed (upstream: 1s).
const CLEANUP_PERIOD: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CacheError {
    #[error("cannot get cache key for pod {0} with empty UID")]
    EmptyUid(String),
    #[error("pod {0} is in the cache, so can't be assumed")]
    AlreadyInCache(String),
    #[error("pod {0} has no node name, so can't be assumed")]
    NoNodeName(String),
    #[error("pod {pod} was assumed on {assumed} but assigned to {actual}")]
    AssumedElsewhere {
        pod: String,
        assumed: String,
        actual: String,
    },
    #[error("pod {0} is not assumed, so it cannot be removed or forgotten")]
    NotAssumed(String),
    #[error("pod {0} was already in added state")]
    AlreadyAdded(String),
    #[error("pod {0} is not added to scheduler cache, so cannot be updated")]
    NotAddedForUpdate(String),
    #[error("assumed pod {0} should not be updated")]
    AssumedUpdate(String),
    #[error("pod {0} is not found in scheduler cache, so cannot be removed from it")]
    NotFound(String),
    #[error("node {0} is not found")]
    NodeNotFound(String),
    #[error("node {node:?} in group {zone:?} was not found")]
    NodeNotInTree { node: String, zone: String },
    #[error(
        "snapshot state is not consistent, length of NodeInfoList={list} not equal to length of \
         nodes in tree={tree}, length of NodeInfoMap={map}, length of nodes in cache={cache}, \
         trying to recover"
    )]
    InconsistentSnapshot {
        list: usize,
        tree: usize,
        map: usize,
        cache: usize,
    },
}

/// `uid(namespace/name)` as upstream prints a pod in cache errors.
fn describe(pod: &Pod) -> String {
    format!(
        "{}({}/{})",
        pod.metadata.uid.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn pod_key(pod: &Pod) -> Result<String, CacheError> {
    match pod.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => Ok(uid.to_string()),
        _ => Err(CacheError::EmptyUid(describe(pod))),
    }
}

fn node_name_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

#[derive(Debug, Clone)]
struct PodState {
    pod: Arc<PodInfo>,
    /// When an assumed pod whose binding finished expires (None: not yet, or never).
    deadline: Option<Instant>,
    binding_finished: bool,
}

/// An image and the nodes that have it.
#[derive(Debug, Default)]
struct ImageState {
    nodes: HashSet<String>,
}

/// What `dump` reports about one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDump {
    /// False for a ghost: the node is gone but pods on it have not been deleted yet.
    pub has_node: bool,
    /// `namespace/name` of the pods on it.
    pub pods: Vec<String>,
    pub requested: Resource,
    pub allocatable: Resource,
}

/// A copy of the cache's contents, for debugging (upstream's `Dump`).
#[derive(Debug, Clone, Default)]
pub struct CacheDump {
    pub nodes: BTreeMap<String, NodeDump>,
    /// `namespace/name` of the assumed pods.
    pub assumed_pods: BTreeSet<String>,
    pub pods: usize,
}

impl std::fmt::Display for CacheDump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "Dump of cached NodeInfo: nodes={} pods={} assumedPods={}",
            self.nodes.len(),
            self.pods,
            self.assumed_pods.len()
        )?;
        for (name, node) in &self.nodes {
            writeln!(
                f,
                "Node name: {name} (present: {}) Requested: cpu={}m memory={} Allocatable: cpu={}m memory={} Pods: {:?}",
                node.has_node,
                node.requested.milli_cpu,
                node.requested.memory,
                node.allocatable.milli_cpu,
                node.allocatable.memory,
                node.pods
            )?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Inner {
    nodes: HashMap<String, NodeInfo>,
    /// generation -> node name: the infos by their last change, newest last.
    by_generation: BTreeMap<i64, String>,
    tree: NodeTree,
    images: HashMap<String, ImageState>,
    pod_states: HashMap<String, PodState>,
    assumed: HashSet<String>,
    /// The generation of the node change that last changed the tree's order: snapshots
    /// older than it must be relisted.
    order_changed_at: i64,
}

impl Inner {
    /// Runs `f` on the node's info (created empty if absent) and records its new generation.
    fn modify_node<R>(&mut self, name: &str, f: impl FnOnce(&mut NodeInfo) -> R) -> R {
        let info = self
            .nodes
            .entry(name.to_string())
            .or_insert_with(|| NodeInfo::new(None));
        let before = info.generation;
        let result = f(info);
        let after = info.generation;
        if after != before {
            self.by_generation.remove(&before);
        }
        self.by_generation.insert(after, name.to_string());
        result
    }

    /// Drops a node's info once it has neither the node nor pods.
    fn drop_if_empty(&mut self, name: &str) {
        let empty = self
            .nodes
            .get(name)
            .is_some_and(|i| i.node().is_none() && i.pods.is_empty());
        if empty {
            if let Some(info) = self.nodes.remove(name) {
                self.by_generation.remove(&info.generation);
            }
        }
    }

    fn add_pod(&mut self, key: String, pod: Arc<PodInfo>, assumed: bool) {
        let node = node_name_of(&pod.pod).to_string();
        self.modify_node(&node, |info| info.add_pod(pod.clone()));
        self.pod_states.insert(
            key.clone(),
            PodState {
                pod,
                deadline: None,
                binding_finished: false,
            },
        );
        if assumed {
            self.assumed.insert(key);
        }
    }

    /// Takes the pod (as the cache has it) off its node and forgets its state.
    fn remove_pod(&mut self, key: &str, cached: &PodInfo) {
        let node = node_name_of(&cached.pod).to_string();
        if self.nodes.contains_key(&node) {
            let removed = self.modify_node(&node, |info| info.remove_pod(cached.uid()));
            if !removed {
                tracing::error!(
                    pod = %cached.key(),
                    node = %node,
                    "no corresponding pod in pods of node"
                );
            }
            self.drop_if_empty(&node);
        } else {
            tracing::error!(pod = %cached.key(), node = %node, "node not found when trying to remove pod");
        }
        self.pod_states.remove(key);
        self.assumed.remove(key);
    }

    fn add_node_images(&mut self, node: &Node) {
        let name = node.metadata.name.clone().unwrap_or_default();
        for image in node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
        {
            for image_name in image.names.iter().flatten() {
                self.images
                    .entry(image_name.clone())
                    .or_default()
                    .nodes
                    .insert(name.clone());
            }
        }
    }

    fn remove_node_images(&mut self, node: &Node) {
        let name = node.metadata.name.as_deref().unwrap_or("");
        for image in node
            .status
            .as_ref()
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
        {
            for image_name in image.names.iter().flatten() {
                if let Some(state) = self.images.get_mut(image_name) {
                    state.nodes.remove(name);
                    if state.nodes.is_empty() {
                        self.images.remove(image_name);
                    }
                }
            }
        }
    }

    /// The info as a snapshot holds it: a copy with each image's node count filled in.
    fn snapshot_clone(&self, info: &NodeInfo) -> NodeInfo {
        let mut clone = info.clone();
        for (name, state) in clone.image_states.iter_mut() {
            state.num_nodes = self.images.get(name).map_or(0, |s| s.nodes.len());
        }
        clone
    }
}

/// Upstream's name for it.
pub type Cache = SchedulerCache;

/// The scheduler cache. Every method takes a short internal lock.
pub struct SchedulerCache {
    inner: Mutex<Inner>,
    /// How long an assumed pod whose binding finished waits for its informer add before it
    /// is dropped; zero (upstream's default since binding became reliable) means never.
    ttl: Duration,
    size: metrics::GaugeVec,
}

impl SchedulerCache {
    /// A cache whose assumed pods expire `ttl` after their binding finished (zero: never),
    /// reporting `scheduler_cache_size` to the process registry.
    pub fn new(ttl: Duration) -> SchedulerCache {
        SchedulerCache::with_registry(ttl, metrics::global())
    }

    pub fn with_registry(ttl: Duration, registry: &metrics::Registry) -> SchedulerCache {
        SchedulerCache {
            inner: Mutex::new(Inner::default()),
            ttl,
            size: registry.gauge_vec(
                "scheduler_cache_size",
                "Number of nodes, pods, and assumed (bound) pods in the scheduler cache.",
                &["type"],
            ),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent-enough data: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts a pod that has just been given a node (`spec.nodeName` set) on that node.
    pub fn assume_pod(&self, pod: Arc<PodInfo>) -> Result<(), CacheError> {
        let key = pod_key(&pod.pod)?;
        if node_name_of(&pod.pod).is_empty() {
            return Err(CacheError::NoNodeName(describe(&pod.pod)));
        }
        let mut inner = self.lock();
        if inner.pod_states.contains_key(&key) {
            return Err(CacheError::AlreadyInCache(describe(&pod.pod)));
        }
        inner.add_pod(key, pod, true);
        Ok(())
    }

    /// The binding of an assumed pod is done: its expiry clock (if any) starts now.
    pub fn finish_binding(&self, pod: &Pod) -> Result<(), CacheError> {
        self.finish_binding_at(pod, Instant::now())
    }

    fn finish_binding_at(&self, pod: &Pod, now: Instant) -> Result<(), CacheError> {
        let key = pod_key(pod)?;
        let mut inner = self.lock();
        let assumed = inner.assumed.contains(&key);
        let ttl = self.ttl;
        if let (true, Some(state)) = (assumed, inner.pod_states.get_mut(&key)) {
            state.binding_finished = true;
            state.deadline = (!ttl.is_zero()).then(|| now + ttl);
        }
        Ok(())
    }

    /// Undoes `assume_pod` (binding failed). A pod the cache no longer has is fine.
    pub fn forget_pod(&self, pod: &Pod) -> Result<(), CacheError> {
        let key = pod_key(pod)?;
        let mut inner = self.lock();
        let Some(state) = inner.pod_states.get(&key).cloned() else {
            return Ok(());
        };
        let (assumed_on, given) = (node_name_of(&state.pod.pod), node_name_of(pod));
        if assumed_on != given {
            return Err(CacheError::AssumedElsewhere {
                pod: describe(pod),
                assumed: given.to_string(),
                actual: assumed_on.to_string(),
            });
        }
        if !inner.assumed.contains(&key) {
            return Err(CacheError::NotAssumed(describe(pod)));
        }
        inner.remove_pod(&key, &state.pod);
        Ok(())
    }

    /// The informer saw a bound pod. An assumed pod is confirmed (and moved if it landed on a
    /// different node than assumed); an unknown one (or one whose assumption expired) is added.
    pub fn add_pod(&self, pod: Arc<Pod>) -> Result<(), CacheError> {
        let key = pod_key(&pod)?;
        let mut inner = self.lock();
        let state = inner.pod_states.get(&key).cloned();
        match state {
            Some(state) if inner.assumed.contains(&key) => {
                let (assumed_on, landed_on) = (node_name_of(&state.pod.pod), node_name_of(&pod));
                if assumed_on != landed_on {
                    tracing::info!(
                        pod = %state.pod.key(),
                        assumed_node = %assumed_on,
                        current_node = %landed_on,
                        "pod was added to a different node than it was assumed"
                    );
                }
                inner.remove_pod(&key, &state.pod);
                inner.add_pod(key, Arc::new(PodInfo::new(pod)), false);
                Ok(())
            }
            Some(_) => Err(CacheError::AlreadyAdded(describe(&pod))),
            None => {
                inner.add_pod(key, Arc::new(PodInfo::new(pod)), false);
                Ok(())
            }
        }
    }

    /// The informer saw a bound pod change.
    pub fn update_pod(&self, old: &Pod, new: Arc<Pod>) -> Result<(), CacheError> {
        let key = pod_key(old)?;
        let mut inner = self.lock();
        let Some(state) = inner.pod_states.get(&key).cloned() else {
            return Err(CacheError::NotAddedForUpdate(describe(old)));
        };
        // An assumed pod gets its add event before any update.
        if inner.assumed.contains(&key) {
            return Err(CacheError::AssumedUpdate(describe(old)));
        }
        if node_name_of(&state.pod.pod) != node_name_of(&new) {
            // Upstream exits here (the cache is corrupted); moving the pod keeps us consistent.
            tracing::error!(
                pod = %state.pod.key(),
                cached_node = %node_name_of(&state.pod.pod),
                new_node = %node_name_of(&new),
                "pod updated on a different node than previously added to; scheduler cache is corrupted"
            );
        }
        inner.remove_pod(&key, &state.pod);
        inner.add_pod(key, Arc::new(PodInfo::new(new)), false);
        Ok(())
    }

    /// The informer saw a bound pod go (deleted, or finished and filtered out).
    pub fn remove_pod(&self, pod: &Pod) -> Result<(), CacheError> {
        let key = pod_key(pod)?;
        let mut inner = self.lock();
        let Some(state) = inner.pod_states.get(&key).cloned() else {
            return Err(CacheError::NotFound(describe(pod)));
        };
        let cached_on = node_name_of(&state.pod.pod);
        let given = node_name_of(pod);
        if cached_on != given && !given.is_empty() {
            // An empty node name is possible when a delete was missed and the last known state
            // came from the informer's cache; anything else means the cache is corrupted
            // (upstream exits). Remove it from where the cache has it.
            tracing::error!(
                pod = %state.pod.key(),
                cached_node = %cached_on,
                given_node = %given,
                "pod was removed from a different node than cached; scheduler cache is corrupted"
            );
        }
        inner.remove_pod(&key, &state.pod);
        Ok(())
    }

    pub fn is_assumed_pod(&self, pod: &Pod) -> Result<bool, CacheError> {
        let key = pod_key(pod)?;
        Ok(self.lock().assumed.contains(&key))
    }

    /// The pod as the cache has it (its node may already be gone).
    pub fn get_pod(&self, pod: &Pod) -> Option<Arc<Pod>> {
        let key = pod_key(pod).ok()?;
        self.lock().pod_states.get(&key).map(|s| s.pod.pod.clone())
    }

    pub fn add_node(&self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut inner = self.lock();
        let previous = inner.nodes.get(&name).and_then(|i| i.node().cloned());
        if let Some(previous) = &previous {
            inner.remove_node_images(previous);
        }
        let order = inner.tree.version();
        match &previous {
            Some(previous) => inner.tree.update_node(Some(previous), &node),
            None => inner.tree.add_node(&node),
        }
        inner.add_node_images(&node);
        let generation = inner.modify_node(&name, |info| {
            info.set_node(node);
            info.generation
        });
        if inner.tree.version() != order {
            inner.order_changed_at = generation;
        }
    }

    /// A node changed. The cache's own copy serves as the old one, so an update whose add
    /// was missed works like an add.
    pub fn update_node(&self, new: Arc<Node>) {
        let name = new.metadata.name.clone().unwrap_or_default();
        let mut inner = self.lock();
        let cached = inner.nodes.get(&name).and_then(|i| i.node().cloned());
        let order = inner.tree.version();
        match &cached {
            Some(cached) => {
                inner.remove_node_images(cached);
                inner.tree.update_node(Some(cached), &new);
            }
            None => inner.tree.add_node(&new),
        }
        inner.add_node_images(&new);
        let generation = inner.modify_node(&name, |info| {
            info.set_node(new);
            info.generation
        });
        if inner.tree.version() != order {
            inner.order_changed_at = generation;
        }
    }

    /// A node was deleted. Its pods stay (as a ghost info) until their own deletions arrive,
    /// because pod and node events come on different watches.
    pub fn remove_node(&self, node: &Node) -> Result<(), CacheError> {
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut inner = self.lock();
        let Some(cached) = inner.nodes.get(&name).map(|i| i.node().cloned()) else {
            return Err(CacheError::NodeNotFound(name));
        };
        let generation = inner.modify_node(&name, |info| {
            info.remove_node();
            info.generation
        });
        inner.drop_if_empty(&name);
        let cached = cached.unwrap_or_else(|| Arc::new(node.clone()));
        inner.tree.remove_node(&cached)?;
        inner.order_changed_at = generation;
        inner.remove_node_images(&cached);
        Ok(())
    }

    /// Brings `snapshot` up to date, cloning only the node infos changed since it was last
    /// updated. Node order is the zone-interleaved order; it is recomputed only when nodes
    /// come, go or change zones. An error means the snapshot had to be rebuilt because it was inconsistent
    /// (the rebuilt one is fine for the next cycle).
    pub fn update_snapshot(&self, snapshot: &mut Snapshot) -> Result<(), CacheError> {
        let inner = self.lock();
        // Nodes came, went or changed zones: the interleaved order must be recomputed.
        let mut relist = inner.order_changed_at > snapshot.generation;
        let mut affinity_changed = false;
        let mut pvcs_changed = false;
        let changed: Vec<&String> = inner
            .by_generation
            .range(snapshot.generation.saturating_add(1)..)
            .map(|(_, name)| name)
            .collect();
        for name in changed {
            let Some(info) = inner.nodes.get(name) else {
                continue;
            };
            if info.node().is_none() {
                continue;
            }
            let clone = Arc::new(inner.snapshot_clone(info));
            match snapshot.node_info_map.get(name.as_str()) {
                None => relist = true,
                Some(existing) => {
                    // The lists hold the old Arc: refresh them when it was or becomes a member.
                    affinity_changed |= !existing.pods_with_affinity.is_empty()
                        || !clone.pods_with_affinity.is_empty()
                        || !existing.pods_with_required_anti_affinity.is_empty()
                        || !clone.pods_with_required_anti_affinity.is_empty();
                    pvcs_changed |= existing.pvc_ref_counts.len() != clone.pvc_ref_counts.len()
                        || clone
                            .pvc_ref_counts
                            .keys()
                            .any(|k| !existing.pvc_ref_counts.contains_key(k));
                }
            }
            if !relist && !snapshot.replace(clone.clone()) {
                relist = true;
            }
            snapshot.node_info_map.insert(name.clone(), clone);
        }
        // Generations only grow, so the newest one left in the cache (an info that was
        // dropped may have held a newer one) is all this snapshot has seen.
        if let Some((&generation, _)) = inner.by_generation.last_key_value() {
            snapshot.generation = snapshot.generation.max(generation);
        }

        // Nodes deleted since (ghosts included) are still in the snapshot's map.
        if snapshot.node_info_map.len() > inner.tree.num_nodes() {
            snapshot.node_info_map.retain(|name, _| {
                inner
                    .nodes
                    .get(name)
                    .is_some_and(|info| info.node().is_some())
            });
            relist = true;
        }

        if relist {
            Self::relist(&inner, snapshot);
        } else {
            if affinity_changed {
                snapshot.refresh_affinity_lists();
            }
            if pvcs_changed {
                snapshot.refresh_used_pvcs();
            }
        }

        let tree = inner.tree.num_nodes();
        if snapshot.node_info_list.len() != tree {
            let err = CacheError::InconsistentSnapshot {
                list: snapshot.node_info_list.len(),
                tree,
                map: snapshot.node_info_map.len(),
                cache: inner.nodes.len(),
            };
            tracing::error!(%err, "scheduler cache snapshot");
            // Start over from scratch: the next cycle gets a correct snapshot.
            snapshot.node_info_map.clear();
            for (name, info) in &inner.nodes {
                if info.node().is_some() {
                    snapshot
                        .node_info_map
                        .insert(name.clone(), Arc::new(inner.snapshot_clone(info)));
                }
            }
            Self::relist(&inner, snapshot);
            return Err(err);
        }
        Ok(())
    }

    /// Lists the snapshot's infos in the tree's order.
    fn relist(inner: &Inner, snapshot: &mut Snapshot) {
        let infos: Vec<Arc<NodeInfo>> = inner
            .tree
            .list()
            .iter()
            .filter_map(|name| {
                let info = snapshot.node_info_map.get(name).cloned();
                if info.is_none() {
                    tracing::error!(node = %name, "node exists in the node tree but not in the snapshot's map");
                }
                info
            })
            .collect();
        snapshot.relist(infos);
    }

    /// Drops assumed pods whose binding finished longer than the TTL ago without an
    /// informer add (never, with a zero TTL).
    pub fn cleanup_assumed_pods(&self, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut inner = self.lock();
        let expired: Vec<(String, Arc<PodInfo>)> = inner
            .assumed
            .iter()
            .filter_map(|key| {
                let state = inner.pod_states.get(key)?;
                (state.binding_finished && state.deadline.is_some_and(|d| now > d))
                    .then(|| (key.clone(), state.pod.clone()))
            })
            .collect();
        for (key, pod) in expired {
            tracing::warn!(pod = %pod.key(), node = %node_name_of(&pod.pod), "assumed pod expired");
            inner.remove_pod(&key, &pod);
        }
    }

    /// Sweeps expired assumed pods and refreshes `scheduler_cache_size` every second until
    /// `stop` completes.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(CLEANUP_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    self.cleanup_assumed_pods(Instant::now());
                    self.update_metrics();
                }
            }
        }
    }

    pub fn update_metrics(&self) {
        let (assumed, pods, nodes) = {
            let inner = self.lock();
            (
                inner.assumed.len(),
                inner.pod_states.len(),
                inner.nodes.len(),
            )
        };
        self.size.with(&["assumed_pods"]).set(assumed as f64);
        self.size.with(&["pods"]).set(pods as f64);
        self.size.with(&["nodes"]).set(nodes as f64);
    }

    /// Node infos in the cache, ghosts included.
    pub fn node_count(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Pods on all node infos, assumed and ghosts' included.
    pub fn pod_count(&self) -> usize {
        self.lock().nodes.values().map(|i| i.pods.len()).sum()
    }

    pub fn dump(&self) -> CacheDump {
        let inner = self.lock();
        let nodes = inner
            .nodes
            .iter()
            .map(|(name, info)| {
                (
                    name.clone(),
                    NodeDump {
                        has_node: info.node().is_some(),
                        pods: info.pods.iter().map(|p| p.key()).collect(),
                        requested: info.requested.clone(),
                        allocatable: info.allocatable.clone(),
                    },
                )
            })
            .collect();
        let assumed_pods = inner
            .assumed
            .iter()
            .filter_map(|k| inner.pod_states.get(k).map(|s| s.pod.key()))
            .collect();
        CacheDump {
            nodes,
            assumed_pods,
            pods: inner.pod_states.len(),
        }
    }
}
