//! The nodes by zone (upstream's `nodeTree`), listed round-robin across zones so that a
//! scheduling cycle that samples only part of the nodes, starting anywhere, sees every zone
//! about equally.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Node;

use super::CacheError;

pub const LABEL_TOPOLOGY_ZONE: &str = "topology.kubernetes.io/zone";
pub const LABEL_TOPOLOGY_REGION: &str = "topology.kubernetes.io/region";
pub const LABEL_FAILURE_DOMAIN_BETA_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";
pub const LABEL_FAILURE_DOMAIN_BETA_REGION: &str = "failure-domain.beta.kubernetes.io/region";

/// The zone a node is in, as `region:\0:zone` ("" when it has neither label), like upstream's
/// `utilnode.GetZoneKey`; the beta failure-domain labels are read when the GA ones are absent.
pub fn zone_key(node: &Node) -> String {
    let Some(labels) = node.metadata.labels.as_ref() else {
        return String::new();
    };
    let get = |ga: &str, beta: &str| {
        labels
            .get(ga)
            .or_else(|| labels.get(beta))
            .cloned()
            .unwrap_or_default()
    };
    let zone = get(LABEL_TOPOLOGY_ZONE, LABEL_FAILURE_DOMAIN_BETA_ZONE);
    let region = get(LABEL_TOPOLOGY_REGION, LABEL_FAILURE_DOMAIN_BETA_REGION);
    if zone.is_empty() && region.is_empty() {
        return String::new();
    }
    // The NUL keeps "a:b" + "c" apart from "a" + "b:c".
    format!("{region}:\0:{zone}")
}

fn node_name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("")
}

/// Node names grouped by zone, zones and nodes in the order they were first seen.
#[derive(Debug, Default, Clone)]
pub struct NodeTree {
    tree: HashMap<String, Vec<String>>,
    zones: Vec<String>,
    num_nodes: usize,
    /// Bumped whenever the listing order changes.
    version: u64,
}

impl NodeTree {
    pub fn num_nodes(&self) -> usize {
        self.num_nodes
    }

    /// Changes whenever `list` would answer differently.
    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn add_node(&mut self, node: &Node) {
        let zone = zone_key(node);
        let name = node_name(node);
        match self.tree.get_mut(&zone) {
            Some(names) => {
                if names.iter().any(|n| n == name) {
                    tracing::debug!(node = name, "node already exists in the node tree");
                    return;
                }
                names.push(name.to_string());
            }
            None => {
                self.zones.push(zone.clone());
                self.tree.insert(zone, vec![name.to_string()]);
            }
        }
        self.num_nodes += 1;
        self.version += 1;
    }

    pub fn remove_node(&mut self, node: &Node) -> Result<(), CacheError> {
        let zone = zone_key(node);
        let name = node_name(node);
        let not_found = || CacheError::NodeNotInTree {
            node: name.to_string(),
            zone: zone.clone(),
        };
        let names = self.tree.get_mut(&zone).ok_or_else(not_found)?;
        let i = names.iter().position(|n| n == name).ok_or_else(not_found)?;
        names.remove(i);
        if names.is_empty() {
            self.tree.remove(&zone);
            self.zones.retain(|z| z != &zone);
        }
        self.num_nodes -= 1;
        self.version += 1;
        Ok(())
    }

    /// Moves the node when its zone labels changed (a name never changes).
    pub fn update_node(&mut self, old: Option<&Node>, new: &Node) {
        let old_zone = old.map(zone_key).unwrap_or_default();
        if old.is_some() && old_zone == zone_key(new) {
            return;
        }
        if let Some(old) = old {
            // Absent when the old node never made it into the tree: nothing to undo.
            let _ = self.remove_node(old);
        }
        self.add_node(new);
    }

    /// Every node, taking one from each zone in turn: z1[0], z2[0], z3[0], z1[1], ...
    pub fn list(&self) -> Vec<String> {
        let mut out = Vec::with_capacity(self.num_nodes);
        let mut i = 0;
        loop {
            let mut took = false;
            for zone in &self.zones {
                if let Some(name) = self.tree.get(zone).and_then(|names| names.get(i)) {
                    out.push(name.clone());
                    took = true;
                }
            }
            if !took {
                return out;
            }
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(name: &str, zone: Option<&str>) -> Node {
        let mut labels = serde_json::Map::new();
        if let Some(zone) = zone {
            labels.insert(LABEL_TOPOLOGY_ZONE.into(), json!(zone));
            labels.insert(LABEL_TOPOLOGY_REGION.into(), json!("r1"));
        }
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).expect("node")
    }

    #[test]
    fn lists_round_robin_across_zones() {
        let mut tree = NodeTree::default();
        for (name, zone) in [
            ("a1", "a"),
            ("a2", "a"),
            ("a3", "a"),
            ("b1", "b"),
            ("c1", "c"),
            ("c2", "c"),
        ] {
            tree.add_node(&node(name, Some(zone)));
        }
        tree.add_node(&node("a1", Some("a")));
        assert_eq!(tree.num_nodes(), 6);
        assert_eq!(tree.list(), ["a1", "b1", "c1", "a2", "c2", "a3"]);

        tree.remove_node(&node("b1", Some("b"))).expect("remove");
        assert_eq!(tree.list(), ["a1", "c1", "a2", "c2", "a3"]);
        assert!(matches!(
            tree.remove_node(&node("b1", Some("b"))),
            Err(CacheError::NodeNotInTree { .. })
        ));

        // A node that changes zone moves to the end of its new zone.
        tree.update_node(Some(&node("a1", Some("a"))), &node("a1", Some("c")));
        assert_eq!(tree.list(), ["a2", "c1", "a3", "c2", "a1"]);
        assert_eq!(tree.num_nodes(), 5);
    }

    #[test]
    fn zone_keys_use_ga_then_beta_labels() {
        assert_eq!(zone_key(&node("n", None)), "");
        assert_eq!(zone_key(&node("n", Some("z"))), "r1:\0:z");
        let beta: Node = serde_json::from_value(json!({"metadata": {"name": "n", "labels": {
            LABEL_FAILURE_DOMAIN_BETA_ZONE: "old"}}}))
        .expect("node");
        assert_eq!(zone_key(&beta), ":\0:old");
    }
}
