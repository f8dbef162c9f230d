//! The cluster as one scheduling cycle sees it (upstream's `cache.Snapshot`): taken from the
//! cache at the start of each cycle, read-only during it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::types::NodeInfo;

#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every node, in a stable order (the cache's zone-interleaved order).
    pub node_info_list: Vec<Arc<NodeInfo>>,
    pub node_info_map: HashMap<String, Arc<NodeInfo>>,
    /// Nodes with at least one pod that has (anti-)affinity terms.
    pub have_pods_with_affinity: Vec<Arc<NodeInfo>>,
    /// Nodes with at least one pod that has required anti-affinity terms.
    pub have_pods_with_required_anti_affinity: Vec<Arc<NodeInfo>>,
    /// `namespace/claim` of every PVC some pod in the cluster uses.
    pub used_pvcs: HashSet<String>,
    /// The cache generation this snapshot reflects.
    pub generation: i64,
    /// Where each node sits in `node_info_list`, so the cache can swap in a newer info in place.
    positions: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot of exactly these nodes (tests, and the cache when it rebuilds).
    pub fn from_node_infos(infos: Vec<NodeInfo>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        let mut image_nodes: HashMap<String, usize> = HashMap::new();
        for info in &infos {
            for name in info.image_states.keys() {
                *image_nodes.entry(name.clone()).or_default() += 1;
            }
        }
        for mut info in infos {
            for (name, state) in info.image_states.iter_mut() {
                state.num_nodes = image_nodes.get(name).copied().unwrap_or(0);
            }
            let info = Arc::new(info);
            snapshot.add(info);
        }
        snapshot
    }

    fn add(&mut self, info: Arc<NodeInfo>) {
        if info.node().is_none() {
            return;
        }
        if !info.pods_with_affinity.is_empty() {
            self.have_pods_with_affinity.push(info.clone());
        }
        if !info.pods_with_required_anti_affinity.is_empty() {
            self.have_pods_with_required_anti_affinity
                .push(info.clone());
        }
        for key in info.pvc_ref_counts.keys() {
            self.used_pvcs.insert(key.clone());
        }
        self.node_info_map
            .insert(info.name().to_string(), info.clone());
        self.positions
            .insert(info.name().to_string(), self.node_info_list.len());
        self.node_info_list.push(info);
    }

    /// Lists exactly `infos`, in this order, and recomputes everything derived from them.
    pub(crate) fn relist(&mut self, infos: Vec<Arc<NodeInfo>>) {
        self.node_info_list.clear();
        self.node_info_map.clear();
        self.positions.clear();
        self.have_pods_with_affinity.clear();
        self.have_pods_with_required_anti_affinity.clear();
        self.used_pvcs.clear();
        for info in infos {
            self.add(info);
        }
    }

    /// Puts a newer info of a listed node in its place (list and map). False when the node is
    /// not listed; the derived lists are left for the caller to refresh.
    pub(crate) fn replace(&mut self, info: Arc<NodeInfo>) -> bool {
        let Some(&i) = self.positions.get(info.name()) else {
            return false;
        };
        match self.node_info_list.get_mut(i) {
            Some(slot) if slot.name() == info.name() => *slot = info.clone(),
            _ => return false,
        }
        self.node_info_map.insert(info.name().to_string(), info);
        true
    }

    /// Recomputes the nodes-with-affinity-pods lists from the node list.
    pub(crate) fn refresh_affinity_lists(&mut self) {
        self.have_pods_with_affinity = self
            .node_info_list
            .iter()
            .filter(|i| !i.pods_with_affinity.is_empty())
            .cloned()
            .collect();
        self.have_pods_with_required_anti_affinity = self
            .node_info_list
            .iter()
            .filter(|i| !i.pods_with_required_anti_affinity.is_empty())
            .cloned()
            .collect();
    }

    /// Recomputes the claims in use from the node list.
    pub(crate) fn refresh_used_pvcs(&mut self) {
        self.used_pvcs = self
            .node_info_list
            .iter()
            .flat_map(|i| i.pvc_ref_counts.keys().cloned())
            .collect();
    }

    pub fn get(&self, node: &str) -> Option<&Arc<NodeInfo>> {
        self.node_info_map.get(node)
    }

    pub fn list(&self) -> &[Arc<NodeInfo>] {
        &self.node_info_list
    }

    pub fn len(&self) -> usize {
        self.node_info_list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.node_info_list.is_empty()
    }

    pub fn is_pvc_used_by_pods(&self, key: &str) -> bool {
        self.used_pvcs.contains(key)
    }
}
