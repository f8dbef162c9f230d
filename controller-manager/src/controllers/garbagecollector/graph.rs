//! The ownership graph (upstream's `GraphBuilder` + `uidToNode`): one node per UID, holding the
//! object's identity, its ownerReferences and the UIDs of its dependents. Owners known only from a
//! dependent's reference are *virtual* nodes until an informer reports them (or a live GET proves
//! them absent).
//!
//! Everything here is pure: informer events go in, and the work they imply comes out as a
//! [`Follow`] (which UIDs to attempt to delete, which owners to orphan, which dependents carry an
//! owner reference into another namespace). The I/O around it lives in the parent module.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

/// Held by an owner deleted with `propagationPolicy=Foreground` until its blocking dependents
/// are gone.
pub const FOREGROUND_FINALIZER: &str = "foregroundDeletion";
/// Held by an owner deleted with `propagationPolicy=Orphan` until its dependents no longer
/// reference it.
pub const ORPHAN_FINALIZER: &str = "orphan";

/// Where an object is: enough to GET it again and to name it in an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    /// For a virtual owner: the namespace of the dependent that referenced it (owner references
    /// carry no namespace; a namespaced owner must live in its dependent's namespace).
    pub namespace: Option<String>,
    pub name: String,
    pub uid: String,
}

impl std::fmt::Display for Identity {
    /// Upstream's `objectReference.String()`, which its events quote.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[{}/{}, namespace: {}, name: {}, uid: {}]",
            self.api_version,
            self.kind,
            self.namespace.as_deref().unwrap_or(""),
            self.name,
            self.uid
        )
    }
}

/// What the graph needs to know about an object an informer reported.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectInfo {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub being_deleted: bool,
    pub finalizers: Vec<String>,
}

impl ObjectInfo {
    pub fn has_finalizer(&self, finalizer: &str) -> bool {
        self.finalizers.iter().any(|f| f == finalizer)
    }

    /// Deleted with `Foreground`: waiting for its dependents.
    pub fn deleting_dependents(&self) -> bool {
        self.being_deleted && self.has_finalizer(FOREGROUND_FINALIZER)
    }

    /// Deleted with `Orphan`: its dependents must let go of it first.
    pub fn orphaning_dependents(&self) -> bool {
        self.being_deleted && self.has_finalizer(ORPHAN_FINALIZER)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    pub dependents: BTreeSet<String>,
    /// Reported by an informer; `false` for a virtual node.
    pub observed: bool,
    pub being_deleted: bool,
    pub deleting_dependents: bool,
}

impl Node {
    fn virtual_owner(reference: &OwnerReference, namespace: Option<&str>) -> Node {
        Node {
            identity: Identity {
                api_version: reference.api_version.clone(),
                kind: reference.kind.clone(),
                namespace: namespace.map(str::to_string),
                name: reference.name.clone(),
                uid: reference.uid.clone(),
            },
            owners: Vec::new(),
            dependents: BTreeSet::new(),
            observed: false,
            being_deleted: false,
            deleting_dependents: false,
        }
    }

    /// This node's reference to `owner_uid` blocks the owner's foreground deletion.
    pub fn blocks(&self, owner_uid: &str) -> bool {
        self.owners
            .iter()
            .any(|r| r.uid == owner_uid && r.block_owner_deletion == Some(true))
    }
}

/// The work an event implies, in the order it was found (deduplicated).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Follow {
    /// UIDs for the attempt-to-delete queue.
    pub attempt_to_delete: Vec<String>,
    /// Owner UIDs for the attempt-to-orphan queue.
    pub attempt_to_orphan: Vec<String>,
    /// `(dependent, owner reference)` pairs where a namespaced owner was observed in another
    /// namespace than its dependent (upstream's `OwnerRefInvalidNamespace` event).
    pub invalid_namespace: Vec<(Identity, Identity)>,
}

impl Follow {
    fn delete(&mut self, uid: &str) {
        if !self.attempt_to_delete.iter().any(|u| u == uid) {
            self.attempt_to_delete.push(uid.to_string());
        }
    }

    fn orphan(&mut self, uid: &str) {
        if !self.attempt_to_orphan.iter().any(|u| u == uid) {
            self.attempt_to_orphan.push(uid.to_string());
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Graph {
    nodes: BTreeMap<String, Node>,
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `uid` that the graph knows.
    pub fn dependents(&self, uid: &str) -> Vec<&Node> {
        self.nodes
            .get(uid)
            .map(|n| {
                n.dependents
                    .iter()
                    .filter_map(|d| self.nodes.get(d))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Dependents whose reference to `uid` has `blockOwnerDeletion: true`: the owner's foreground
    /// deletion waits for them. An object listing itself as its owner never blocks itself (it
    /// would wait forever).
    pub fn blocking_dependents(&self, uid: &str) -> Vec<&Node> {
        self.dependents(uid)
            .into_iter()
            .filter(|d| d.identity.uid != uid && d.blocks(uid))
            .collect()
    }

    /// An informer's Add or Update: `old` is the previous state when the informer had one.
    pub fn observe(&mut self, old: Option<&ObjectInfo>, new: &ObjectInfo) -> Follow {
        let mut follow = Follow::default();
        let uid = new.identity.uid.clone();
        let previous_owners = match self.nodes.get_mut(&uid) {
            Some(existing) => {
                if !existing.observed {
                    // A virtual node becomes real: dependents that placed it in another
                    // namespace (or a namespaced owner under a cluster-scoped dependent) hold an
                    // invalid reference; re-check every dependent anyway, its coordinates may
                    // differ from what the dependent wrote.
                    existing.observed = true;
                    existing.identity = new.identity.clone();
                    let dependents: Vec<String> = existing.dependents.iter().cloned().collect();
                    for dep in dependents {
                        self.check_namespace(&dep, &new.identity, &mut follow);
                        follow.delete(&dep);
                    }
                }
                match self.nodes.get_mut(&uid) {
                    Some(existing) => {
                        existing.identity = new.identity.clone();
                        std::mem::replace(&mut existing.owners, new.owners.clone())
                    }
                    None => Vec::new(),
                }
            }
            None => {
                self.nodes.insert(
                    uid.clone(),
                    Node {
                        identity: new.identity.clone(),
                        owners: new.owners.clone(),
                        dependents: BTreeSet::new(),
                        observed: true,
                        being_deleted: false,
                        deleting_dependents: false,
                    },
                );
                Vec::new()
            }
        };
        self.update_owner_edges(&uid, &previous_owners, &new.owners, &mut follow);
        if let Some(node) = self.nodes.get_mut(&uid) {
            node.being_deleted = new.being_deleted;
            node.deleting_dependents = new.deleting_dependents();
        }
        self.transitions(old, new, &mut follow);
        follow
    }

    /// Adds and removes `uid` in its owners' dependents after its references changed, creating
    /// virtual owners, and queues owners whose blocking dependent let go of them.
    fn update_owner_edges(
        &mut self,
        uid: &str,
        before: &[OwnerReference],
        after: &[OwnerReference],
        follow: &mut Follow,
    ) {
        let namespace = self
            .nodes
            .get(uid)
            .and_then(|n| n.identity.namespace.clone());
        for removed in before
            .iter()
            .filter(|b| !after.iter().any(|a| a.uid == b.uid))
        {
            if removed.block_owner_deletion == Some(true) && self.nodes.contains_key(&removed.uid) {
                follow.delete(&removed.uid);
            }
            self.unlink(&removed.uid, uid);
        }
        for changed in after {
            let was_blocking = before
                .iter()
                .any(|b| b.uid == changed.uid && b.block_owner_deletion == Some(true));
            if was_blocking
                && changed.block_owner_deletion != Some(true)
                && self.nodes.contains_key(&changed.uid)
            {
                follow.delete(&changed.uid);
            }
        }
        for added in after
            .iter()
            .filter(|a| !before.iter().any(|b| b.uid == a.uid))
        {
            match self.nodes.get_mut(&added.uid) {
                Some(owner) => {
                    owner.dependents.insert(uid.to_string());
                    let (observed, identity, deleting) = (
                        owner.observed,
                        owner.identity.clone(),
                        owner.deleting_dependents,
                    );
                    if observed {
                        self.check_namespace(uid, &identity, follow);
                    }
                    // A dependent appearing under an owner that waits for its dependents must
                    // be deleted too.
                    if deleting {
                        follow.delete(uid);
                    }
                }
                None => {
                    let mut owner = Node::virtual_owner(added, namespace.as_deref());
                    owner.dependents.insert(uid.to_string());
                    self.nodes.insert(added.uid.clone(), owner);
                    // Verify the owner exists: if it never does, its dependents are garbage.
                    follow.delete(&added.uid);
                }
            }
        }
    }

    /// A namespaced owner must be in its dependent's namespace; a dependent that says otherwise
    /// is re-checked (the owner will not be found where it looks) and reported.
    fn check_namespace(&self, dependent_uid: &str, owner: &Identity, follow: &mut Follow) {
        let Some(dependent) = self.nodes.get(dependent_uid) else {
            return;
        };
        if let Some(owner_ns) = &owner.namespace {
            if dependent.identity.namespace.as_ref() != Some(owner_ns) {
                follow
                    .invalid_namespace
                    .push((dependent.identity.clone(), owner.clone()));
                follow.delete(dependent_uid);
            }
        }
    }

    fn unlink(&mut self, owner_uid: &str, dependent_uid: &str) {
        let drop_virtual = match self.nodes.get_mut(owner_uid) {
            Some(owner) => {
                owner.dependents.remove(dependent_uid);
                !owner.observed && owner.dependents.is_empty()
            }
            None => false,
        };
        // A virtual node exists only for its dependents' sake.
        if drop_virtual {
            self.nodes.remove(owner_uid);
        }
    }

    /// Upstream's `processTransitions`: deletion with the orphan or foreground finalizer starts.
    fn transitions(&mut self, old: Option<&ObjectInfo>, new: &ObjectInfo, follow: &mut Follow) {
        let uid = &new.identity.uid;
        if new.orphaning_dependents() && !old.is_some_and(ObjectInfo::orphaning_dependents) {
            follow.orphan(uid);
            return;
        }
        if new.deleting_dependents() && !old.is_some_and(ObjectInfo::deleting_dependents) {
            let dependents: Vec<String> = self
                .nodes
                .get(uid)
                .map(|n| n.dependents.iter().cloned().collect())
                .unwrap_or_default();
            for dep in dependents {
                follow.delete(&dep);
            }
            follow.delete(uid);
        }
    }

    /// An informer's Delete: the node goes, its dependents are re-checked, and owners waiting
    /// for their dependents look again.
    pub fn observe_deleted(&mut self, uid: &str) -> Follow {
        let mut follow = Follow::default();
        let Some(node) = self.nodes.remove(uid) else {
            return follow;
        };
        for dep in &node.dependents {
            if dep != uid {
                follow.delete(dep);
            }
        }
        for owner in &node.owners {
            if let Some(owner_node) = self.nodes.get(&owner.uid) {
                if owner_node.deleting_dependents {
                    follow.delete(&owner.uid);
                }
            }
            self.unlink(&owner.uid, uid);
        }
        // Its dependents keep their references (and so their edges): keep a virtual node for
        // them so the graph still knows who points here until they are deleted or let go.
        let remaining: BTreeSet<String> = node
            .dependents
            .iter()
            .filter(|d| *d != uid && self.nodes.contains_key(*d))
            .cloned()
            .collect();
        if !remaining.is_empty() {
            self.nodes.insert(
                uid.to_string(),
                Node {
                    identity: node.identity.clone(),
                    owners: Vec::new(),
                    dependents: remaining,
                    observed: false,
                    being_deleted: false,
                    deleting_dependents: false,
                },
            );
        }
        follow
    }

    /// A virtual node whose object a live GET did not find: same as a Delete, for a node no
    /// informer will ever report. An observed node is left alone (the informer decides).
    pub fn absent(&mut self, uid: &str) -> Follow {
        match self.nodes.get(uid) {
            Some(node) if !node.observed => {
                let node = self.nodes.remove(uid);
                let mut follow = Follow::default();
                if let Some(node) = node {
                    for dep in &node.dependents {
                        follow.delete(dep);
                    }
                }
                follow
            }
            _ => Follow::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ident(kind: &str, ns: Option<&str>, name: &str, uid: &str) -> Identity {
        Identity {
            api_version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
            uid: uid.into(),
        }
    }

    pub(crate) fn owner_ref(name: &str, uid: &str, block: bool) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: name.into(),
            uid: uid.into(),
            controller: None,
            block_owner_deletion: block.then_some(true),
        }
    }

    fn cm(name: &str, uid: &str, owners: Vec<OwnerReference>) -> ObjectInfo {
        ObjectInfo {
            identity: ident("ConfigMap", Some("ns"), name, uid),
            owners,
            being_deleted: false,
            finalizers: vec![],
        }
    }

    fn deleting(mut obj: ObjectInfo, finalizer: &str) -> ObjectInfo {
        obj.being_deleted = true;
        obj.finalizers.push(finalizer.into());
        obj
    }

    #[test]
    fn a_dependent_before_its_owner_makes_a_virtual_owner_to_verify() {
        let mut g = Graph::default();
        let f = g.observe(
            None,
            &cm("child", "c", vec![owner_ref("parent", "p", true)]),
        );
        assert_eq!(f.attempt_to_delete, vec!["p".to_string()]);
        let owner = g.node("p").cloned();
        assert!(owner.as_ref().is_some_and(|o| !o.observed));
        assert_eq!(
            owner.map(|o| o.identity.namespace),
            Some(Some("ns".to_string()))
        );
        // The owner shows up: it becomes real and its dependent is re-checked.
        let f = g.observe(None, &cm("parent", "p", vec![]));
        assert_eq!(f.attempt_to_delete, vec!["c".to_string()]);
        assert!(f.invalid_namespace.is_empty());
        assert!(g.node("p").is_some_and(|o| o.observed));
        assert_eq!(g.dependents("p").len(), 1);
    }

    #[test]
    fn deleting_an_owner_rechecks_its_dependents() {
        let mut g = Graph::default();
        g.observe(None, &cm("parent", "p", vec![]));
        g.observe(None, &cm("a", "a", vec![owner_ref("parent", "p", false)]));
        g.observe(None, &cm("b", "b", vec![owner_ref("parent", "p", false)]));
        let f = g.observe_deleted("p");
        assert_eq!(f.attempt_to_delete, vec!["a".to_string(), "b".to_string()]);
        // The dependents still point at it: a virtual node remains for them.
        assert!(g.node("p").is_some_and(|n| !n.observed));
        g.observe_deleted("a");
        g.observe_deleted("b");
        assert!(g.is_empty(), "{g:?}");
    }

    #[test]
    fn foreground_deletion_queues_dependents_and_the_owner() {
        let mut g = Graph::default();
        let parent = cm("parent", "p", vec![]);
        g.observe(None, &parent);
        g.observe(None, &cm("a", "a", vec![owner_ref("parent", "p", true)]));
        g.observe(None, &cm("b", "b", vec![owner_ref("parent", "p", false)]));
        let f = g.observe(
            Some(&parent),
            &deleting(parent.clone(), FOREGROUND_FINALIZER),
        );
        assert_eq!(
            f.attempt_to_delete,
            vec!["a".to_string(), "b".to_string(), "p".to_string()]
        );
        assert!(f.attempt_to_orphan.is_empty());
        let blocking: Vec<&str> = g
            .blocking_dependents("p")
            .iter()
            .map(|n| n.identity.uid.as_str())
            .collect();
        assert_eq!(blocking, vec!["a"]);
        // The blocking dependent goes: the owner looks again.
        let f = g.observe_deleted("a");
        assert_eq!(f.attempt_to_delete, vec!["p".to_string()]);
        assert!(g.blocking_dependents("p").is_empty());
    }

    #[test]
    fn unblocking_or_dropping_a_reference_requeues_a_waiting_owner() {
        let mut g = Graph::default();
        g.observe(None, &cm("parent", "p", vec![]));
        let child = cm("a", "a", vec![owner_ref("parent", "p", true)]);
        g.observe(None, &child);
        let unblocked = cm("a", "a", vec![owner_ref("parent", "p", false)]);
        let f = g.observe(Some(&child), &unblocked);
        assert_eq!(f.attempt_to_delete, vec!["p".to_string()]);
        let f = g.observe(Some(&child), &child);
        assert!(f.attempt_to_delete.is_empty(), "{f:?}");
        let released = cm("a", "a", vec![]);
        let f = g.observe(Some(&child), &released);
        assert_eq!(f.attempt_to_delete, vec!["p".to_string()]);
        assert!(g.dependents("p").is_empty());
    }

    #[test]
    fn orphan_deletion_queues_the_owner_for_orphaning_once() {
        let mut g = Graph::default();
        let parent = cm("parent", "p", vec![]);
        g.observe(None, &parent);
        let orphaning = deleting(parent.clone(), ORPHAN_FINALIZER);
        let f = g.observe(Some(&parent), &orphaning);
        assert_eq!(f.attempt_to_orphan, vec!["p".to_string()]);
        assert!(f.attempt_to_delete.is_empty());
        let f = g.observe(Some(&orphaning), &orphaning);
        assert!(f.attempt_to_orphan.is_empty());
        // An object listed already orphaning (a restart) is orphaned too.
        let mut fresh = Graph::default();
        let f = fresh.observe(None, &orphaning);
        assert_eq!(f.attempt_to_orphan, vec!["p".to_string()]);
    }

    #[test]
    fn a_namespaced_owner_in_another_namespace_is_reported_invalid() {
        let mut g = Graph::default();
        g.observe(
            None,
            &cm("child", "c", vec![owner_ref("parent", "p", false)]),
        );
        let mut other_ns = cm("parent", "p", vec![]);
        other_ns.identity.namespace = Some("elsewhere".into());
        let f = g.observe(None, &other_ns);
        assert_eq!(f.invalid_namespace.len(), 1);
        assert_eq!(f.invalid_namespace[0].0.uid, "c");
        assert_eq!(f.attempt_to_delete, vec!["c".to_string()]);
        // The other order: the owner is known first.
        let mut g = Graph::default();
        g.observe(None, &other_ns);
        let f = g.observe(
            None,
            &cm("child", "c", vec![owner_ref("parent", "p", false)]),
        );
        assert_eq!(f.invalid_namespace.len(), 1);
        assert_eq!(f.attempt_to_delete, vec!["c".to_string()]);
    }

    #[test]
    fn a_cluster_scoped_owner_of_a_namespaced_dependent_is_fine() {
        let mut g = Graph::default();
        let node = ObjectInfo {
            identity: ident("Node", None, "n1", "n"),
            owners: vec![],
            being_deleted: false,
            finalizers: vec![],
        };
        g.observe(None, &node);
        let f = g.observe(None, &cm("child", "c", vec![owner_ref("n1", "n", false)]));
        assert!(f.invalid_namespace.is_empty());
        assert!(f.attempt_to_delete.is_empty(), "{f:?}");
    }

    #[test]
    fn cycles_terminate_and_clean_up() {
        let mut g = Graph::default();
        let a = cm("a", "a", vec![owner_ref("b", "b", true)]);
        let b = cm("b", "b", vec![owner_ref("a", "a", true)]);
        g.observe(None, &a);
        g.observe(None, &b);
        // A self-reference too.
        let s = cm("s", "s", vec![owner_ref("s", "s", true)]);
        g.observe(None, &s);
        assert!(g.blocking_dependents("s").is_empty());
        let f = g.observe(Some(&a), &deleting(a.clone(), FOREGROUND_FINALIZER));
        assert_eq!(f.attempt_to_delete, vec!["b".to_string(), "a".to_string()]);
        let f = g.observe_deleted("a");
        assert_eq!(f.attempt_to_delete, vec!["b".to_string()]);
        g.observe_deleted("b");
        let f = g.observe_deleted("s");
        assert!(f.attempt_to_delete.is_empty());
        assert!(g.is_empty(), "{g:?}");
    }
}
