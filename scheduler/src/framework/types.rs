//! The scheduler's view of the cluster (upstream's `framework/types.go`): resources, pods with
//! their affinity terms parsed once, nodes with the pods on them and what those pods use, the
//! queue's per-pod bookkeeping, and the cluster events that move unschedulable pods back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use apimachinery::quantity::Quantity;
use apimachinery::LabelSelector;
use k8s_openapi::api::core::v1::{
    Container, Node, Pod, PodAffinityTerm, ResourceRequirements, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
use tokio::time::Instant;

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// Requests assumed for a container that states none, for spreading only (upstream's
/// `DefaultMilliCPURequest` and `DefaultMemoryRequest`).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Resource amounts as the scheduler counts them: CPU in millicores, the rest in units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resource {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    pub allowed_pod_number: i64,
    /// Extended resources, hugepages and anything else, by resource name.
    pub scalar: BTreeMap<String, i64>,
}

/// A quantity as a whole number of units (rounded up), or of milli-units for CPU.
pub fn quantity_value(name: &str, q: &ApiQuantity) -> i64 {
    let Ok(q) = Quantity::parse(&q.0) else {
        return 0;
    };
    let nanos = q.nanos();
    let per = if name == CPU {
        1_000_000
    } else {
        1_000_000_000
    };
    let value = nanos.div_euclid(per) + i128::from(nanos.rem_euclid(per) != 0);
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Resource {
    /// From a `ResourceList` (requests, allocatable, overhead).
    pub fn from_list(list: Option<&BTreeMap<String, ApiQuantity>>) -> Resource {
        let mut r = Resource::default();
        for (name, q) in list.into_iter().flatten() {
            r.set(name, quantity_value(name, q));
        }
        r
    }

    pub fn get(&self, name: &str) -> i64 {
        match name {
            CPU => self.milli_cpu,
            MEMORY => self.memory,
            EPHEMERAL_STORAGE => self.ephemeral_storage,
            PODS => self.allowed_pod_number,
            other => self.scalar.get(other).copied().unwrap_or(0),
        }
    }

    pub fn set(&mut self, name: &str, value: i64) {
        match name {
            CPU => self.milli_cpu = value,
            MEMORY => self.memory = value,
            EPHEMERAL_STORAGE => self.ephemeral_storage = value,
            PODS => self.allowed_pod_number = value,
            other => {
                self.scalar.insert(other.to_string(), value);
            }
        }
    }

    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        self.allowed_pod_number += other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() += v;
        }
    }

    pub fn sub(&mut self, other: &Resource) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        self.allowed_pod_number -= other.allowed_pod_number;
        for (k, v) in &other.scalar {
            *self.scalar.entry(k.clone()).or_default() -= v;
        }
    }

    /// Each amount becomes the larger of the two.
    pub fn max_with(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        self.allowed_pod_number = self.allowed_pod_number.max(other.allowed_pod_number);
        for (k, v) in &other.scalar {
            let e = self.scalar.entry(k.clone()).or_default();
            *e = (*e).max(*v);
        }
    }

    /// The resource names with a non-zero amount (pods excluded).
    pub fn names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for (name, v) in [
            (CPU, self.milli_cpu),
            (MEMORY, self.memory),
            (EPHEMERAL_STORAGE, self.ephemeral_storage),
        ] {
            if v != 0 {
                names.push(name.to_string());
            }
        }
        names.extend(
            self.scalar
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(|(k, _)| k.clone()),
        );
        names
    }
}

fn container_requests(c: &Container) -> Resource {
    Resource::from_list(
        c.resources
            .as_ref()
            .and_then(|r: &ResourceRequirements| r.requests.as_ref()),
    )
}

fn is_restartable_init(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// What a pod asks of a node (upstream's `resource.PodRequests`): its containers' requests,
/// restartable (sidecar) init containers added to them, the largest regular init container
/// (plus the sidecars started before it) if that is more, and the pod overhead.
/// `non_zero` counts a container without a CPU or memory request as the defaults
/// (upstream's `NonMissingContainerRequests`), for scoring.
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resource {
    let Some(spec) = pod.spec.as_ref() else {
        return Resource::default();
    };
    let fill = |mut r: Resource, c: &Container| {
        if non_zero {
            let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
            let has = |n: &str| requests.is_some_and(|l| l.contains_key(n));
            if !has(CPU) {
                r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
            }
            if !has(MEMORY) {
                r.memory = DEFAULT_MEMORY_REQUEST;
            }
        }
        r
    };
    let mut reqs = Resource::default();
    for c in &spec.containers {
        reqs.add(&fill(container_requests(c), c));
    }
    let mut restartable = Resource::default();
    let mut init_max = Resource::default();
    for c in spec.init_containers.iter().flatten() {
        let r = fill(container_requests(c), c);
        if is_restartable_init(c) {
            reqs.add(&r);
            restartable.add(&r);
            init_max.max_with(&restartable);
        } else {
            let mut tmp = r;
            tmp.add(&restartable);
            init_max.max_with(&tmp);
        }
    }
    reqs.max_with(&init_max);
    if let Some(overhead) = spec.overhead.as_ref() {
        reqs.add(&Resource::from_list(Some(overhead)));
    }
    reqs
}

/// A pod (anti-)affinity term, parsed (upstream's `AffinityTerm`).
#[derive(Debug, Clone)]
pub struct AffinityTerm {
    /// Explicit namespaces; the pod's own when neither these nor a namespace selector is given.
    pub namespaces: BTreeSet<String>,
    pub selector: LabelSelector,
    pub topology_key: String,
    /// Matches no namespace when the term has none (upstream: `labels.Nothing()`).
    pub namespace_selector: LabelSelector,
}

impl AffinityTerm {
    /// Whether `pod` (in a namespace with `ns_labels`) is one the term selects.
    pub fn matches(&self, pod: &Pod, ns_labels: Option<&BTreeMap<String, String>>) -> bool {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let empty = BTreeMap::new();
        let in_namespace = self.namespaces.contains(ns)
            || self.namespace_selector.matches(ns_labels.unwrap_or(&empty));
        in_namespace
            && self
                .selector
                .matches(pod.metadata.labels.as_ref().unwrap_or(&empty))
    }
}

#[derive(Debug, Clone)]
pub struct WeightedAffinityTerm {
    pub term: AffinityTerm,
    pub weight: i32,
}

fn selector_of(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    absent: LabelSelector,
) -> Result<LabelSelector, String> {
    match selector {
        None => Ok(absent),
        Some(s) => {
            let value = serde_json::to_value(s).map_err(|e| e.to_string())?;
            LabelSelector::from_label_selector(&value).map_err(|e| e.to_string())
        }
    }
}

fn parse_term(pod: &Pod, term: &PodAffinityTerm) -> Result<AffinityTerm, String> {
    let mut namespaces: BTreeSet<String> = term.namespaces.iter().flatten().cloned().collect();
    if namespaces.is_empty() && term.namespace_selector.is_none() {
        namespaces.insert(pod.metadata.namespace.clone().unwrap_or_default());
    }
    Ok(AffinityTerm {
        namespaces,
        selector: selector_of(term.label_selector.as_ref(), LabelSelector::nothing())?,
        topology_key: term.topology_key.clone(),
        namespace_selector: selector_of(
            term.namespace_selector.as_ref(),
            LabelSelector::nothing(),
        )?,
    })
}

fn parse_terms(
    pod: &Pod,
    terms: Option<&Vec<PodAffinityTerm>>,
) -> Result<Vec<AffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| parse_term(pod, t))
        .collect()
}

fn parse_weighted(
    pod: &Pod,
    terms: Option<&Vec<WeightedPodAffinityTerm>>,
) -> Result<Vec<WeightedAffinityTerm>, String> {
    terms
        .into_iter()
        .flatten()
        .map(|t| {
            Ok(WeightedAffinityTerm {
                term: parse_term(pod, &t.pod_affinity_term)?,
                weight: t.weight,
            })
        })
        .collect()
}

/// A pod with what the plugins read often parsed once (upstream's `PodInfo`).
#[derive(Debug, Clone)]
pub struct PodInfo {
    pub pod: Arc<Pod>,
    pub required_affinity_terms: Vec<AffinityTerm>,
    pub required_anti_affinity_terms: Vec<AffinityTerm>,
    pub preferred_affinity_terms: Vec<WeightedAffinityTerm>,
    pub preferred_anti_affinity_terms: Vec<WeightedAffinityTerm>,
    /// A term that does not parse (a malformed selector): plugins reading terms report it.
    pub parse_error: Option<String>,
}

impl PodInfo {
    pub fn new(pod: Arc<Pod>) -> PodInfo {
        let affinity = pod.spec.as_ref().and_then(|s| s.affinity.as_ref());
        let pa = affinity.and_then(|a| a.pod_affinity.as_ref());
        let paa = affinity.and_then(|a| a.pod_anti_affinity.as_ref());
        let mut parse_error = None;
        let mut keep = |r: Result<Vec<_>, String>| match r {
            Ok(v) => v,
            Err(e) => {
                parse_error.get_or_insert(e);
                Vec::new()
            }
        };
        let required_affinity_terms = keep(parse_terms(
            &pod,
            pa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ));
        let required_anti_affinity_terms = keep(parse_terms(
            &pod,
            paa.and_then(|a| {
                a.required_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ));
        let preferred_affinity_terms = match parse_weighted(
            &pod,
            pa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ) {
            Ok(v) => v,
            Err(e) => {
                parse_error.get_or_insert(e);
                Vec::new()
            }
        };
        let preferred_anti_affinity_terms = match parse_weighted(
            &pod,
            paa.and_then(|a| {
                a.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            }),
        ) {
            Ok(v) => v,
            Err(e) => {
                parse_error.get_or_insert(e);
                Vec::new()
            }
        };
        PodInfo {
            pod,
            required_affinity_terms,
            required_anti_affinity_terms,
            preferred_affinity_terms,
            preferred_anti_affinity_terms,
            parse_error,
        }
    }

    pub fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or("")
    }

    pub fn uid(&self) -> &str {
        self.pod.metadata.uid.as_deref().unwrap_or("")
    }

    /// `namespace/name`, the key the queue and cache use.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }

    pub fn priority(&self) -> i32 {
        pod_priority(&self.pod)
    }

    pub fn has_affinity(&self) -> bool {
        !self.required_affinity_terms.is_empty()
            || !self.required_anti_affinity_terms.is_empty()
            || !self.preferred_affinity_terms.is_empty()
            || !self.preferred_anti_affinity_terms.is_empty()
    }
}

/// `spec.priority`, 0 when unset (upstream's `corev1helpers.PodPriority`).
pub fn pod_priority(pod: &Pod) -> i32 {
    pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

/// A host port a pod uses: (protocol, port) on an IP ("0.0.0.0" = every address).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostPortInfo {
    /// ip -> {(protocol, port)}
    pub ports: HashMap<String, HashSet<(String, i32)>>,
}

pub const DEFAULT_BIND_ALL_HOST_IP: &str = "0.0.0.0";

fn sanitize_port(ip: &str, protocol: &str) -> (String, String) {
    let ip = if ip.is_empty() {
        DEFAULT_BIND_ALL_HOST_IP
    } else {
        ip
    };
    let protocol = if protocol.is_empty() { "TCP" } else { protocol };
    (ip.to_string(), protocol.to_string())
}

impl HostPortInfo {
    pub fn add(&mut self, ip: &str, protocol: &str, port: i32) {
        if port <= 0 {
            return;
        }
        let (ip, protocol) = sanitize_port(ip, protocol);
        self.ports.entry(ip).or_default().insert((protocol, port));
    }

    pub fn remove(&mut self, ip: &str, protocol: &str, port: i32) {
        if port <= 0 {
            return;
        }
        let (ip, protocol) = sanitize_port(ip, protocol);
        if let Some(set) = self.ports.get_mut(&ip) {
            set.remove(&(protocol, port));
            if set.is_empty() {
                self.ports.remove(&ip);
            }
        }
    }

    /// Whether `(ip, protocol, port)` collides with a used port: same protocol and port on
    /// the same IP, or either side bound to 0.0.0.0 (upstream's `CheckConflict`).
    pub fn conflicts(&self, ip: &str, protocol: &str, port: i32) -> bool {
        if port <= 0 {
            return false;
        }
        let (ip, protocol) = sanitize_port(ip, protocol);
        let entry = (protocol, port);
        if ip == DEFAULT_BIND_ALL_HOST_IP {
            return self.ports.values().any(|set| set.contains(&entry));
        }
        [ip.as_str(), DEFAULT_BIND_ALL_HOST_IP]
            .iter()
            .any(|i| self.ports.get(*i).is_some_and(|set| set.contains(&entry)))
    }

    pub fn len(&self) -> usize {
        self.ports.values().map(HashSet::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The host ports a pod's containers ask for, as (ip, protocol, port). Only init containers
/// that keep running (sidecars) hold ports, as upstream's `GetHostPorts`.
pub fn pod_host_ports(pod: &Pod) -> Vec<(String, String, i32)> {
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    spec.init_containers
        .iter()
        .flatten()
        .filter(|c| is_restartable_init(c))
        .chain(spec.containers.iter())
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port?;
            (port > 0).then(|| {
                (
                    p.host_ip.clone().unwrap_or_default(),
                    p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    port,
                )
            })
        })
        .collect()
}

/// An image on a node, with how many nodes of the cluster have it (filled by the snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageStateSummary {
    pub size: i64,
    pub num_nodes: usize,
}

static GENERATION: AtomicI64 = AtomicI64::new(0);

/// A process-wide increasing number: the snapshot copies only node infos changed since.
pub fn next_generation() -> i64 {
    GENERATION.fetch_add(1, Ordering::Relaxed) + 1
}

/// A node with the pods on it (bound or assumed) and what they use (upstream's `NodeInfo`).
#[derive(Debug, Clone, Default)]
pub struct NodeInfo {
    node: Option<Arc<Node>>,
    pub pods: Vec<Arc<PodInfo>>,
    pub pods_with_affinity: Vec<Arc<PodInfo>>,
    pub pods_with_required_anti_affinity: Vec<Arc<PodInfo>>,
    pub used_ports: HostPortInfo,
    /// The sum of the pods' requests.
    pub requested: Resource,
    /// The same with the defaults for containers without CPU/memory requests (for scoring).
    pub non_zero_requested: Resource,
    pub allocatable: Resource,
    /// By image name as the node reports it; `num_nodes` is filled by the snapshot.
    pub image_states: HashMap<String, ImageStateSummary>,
    /// `namespace/claim` -> number of pods here using it.
    pub pvc_ref_counts: HashMap<String, i32>,
    pub generation: i64,
}

impl NodeInfo {
    pub fn new(node: Option<Arc<Node>>) -> NodeInfo {
        let mut info = NodeInfo {
            generation: next_generation(),
            ..NodeInfo::default()
        };
        if let Some(node) = node {
            info.set_node(node);
        }
        info
    }

    pub fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The node's name ("" for an info that only holds pods of a node not seen yet).
    pub fn name(&self) -> &str {
        self.node
            .as_ref()
            .and_then(|n| n.metadata.name.as_deref())
            .unwrap_or("")
    }

    pub fn set_node(&mut self, node: Arc<Node>) {
        let status = node.status.as_ref();
        self.allocatable = Resource::from_list(status.and_then(|s| s.allocatable.as_ref()));
        self.image_states = status
            .and_then(|s| s.images.as_ref())
            .into_iter()
            .flatten()
            .flat_map(|image| {
                let size = image.size_bytes.unwrap_or(0);
                image
                    .names
                    .iter()
                    .flatten()
                    .map(move |name| (name.clone(), ImageStateSummary { size, num_nodes: 0 }))
            })
            .collect();
        self.node = Some(node);
        self.generation = next_generation();
    }

    pub fn remove_node(&mut self) {
        self.node = None;
        self.generation = next_generation();
    }

    fn update_usage(&mut self, pod: &PodInfo, sign: i64) {
        let apply = |total: &mut Resource, r: &Resource| {
            if sign > 0 {
                total.add(r)
            } else {
                total.sub(r)
            }
        };
        apply(&mut self.requested, &pod_requests(&pod.pod, false));
        apply(&mut self.non_zero_requested, &pod_requests(&pod.pod, true));
        for (ip, protocol, port) in pod_host_ports(&pod.pod) {
            if sign > 0 {
                self.used_ports.add(&ip, &protocol, port);
            } else {
                self.used_ports.remove(&ip, &protocol, port);
            }
        }
        let ns = pod.namespace().to_string();
        for volume in pod
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
        {
            if let Some(claim) = volume.persistent_volume_claim.as_ref() {
                let key = format!("{ns}/{}", claim.claim_name);
                let count = self.pvc_ref_counts.entry(key.clone()).or_default();
                *count += sign as i32;
                if *count <= 0 {
                    self.pvc_ref_counts.remove(&key);
                }
            }
        }
        self.generation = next_generation();
    }

    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        self.update_usage(&pod, 1);
        if pod.has_affinity() {
            self.pods_with_affinity.push(pod.clone());
        }
        if !pod.required_anti_affinity_terms.is_empty() {
            self.pods_with_required_anti_affinity.push(pod.clone());
        }
        self.pods.push(pod);
    }

    /// Removes the pod with `uid`; false when it is not here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(i) = self.pods.iter().position(|p| p.uid() == uid) else {
            return false;
        };
        let pod = self.pods.swap_remove(i);
        self.pods_with_affinity.retain(|p| p.uid() != uid);
        self.pods_with_required_anti_affinity
            .retain(|p| p.uid() != uid);
        self.update_usage(&pod, -1);
        true
    }
}

/// A pod in the scheduling queue (upstream's `QueuedPodInfo`).
#[derive(Debug, Clone)]
pub struct QueuedPodInfo {
    pub pod_info: Arc<PodInfo>,
    /// When the pod was added to the queue (or last moved back to activeQ).
    pub timestamp: Instant,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When the pod was first added, for the e2e latency metric.
    pub initial_attempt_timestamp: Option<Instant>,
    /// The plugins that rejected the pod in its last attempt: only events they registered
    /// for move it back.
    pub unschedulable_plugins: BTreeSet<&'static str>,
    /// The plugins that made the pod Pending (PreEnqueue, or Pending status).
    pub pending_plugins: BTreeSet<&'static str>,
    /// Held back by a PreEnqueue plugin (scheduling gates).
    pub gated: bool,
}

impl QueuedPodInfo {
    pub fn new(pod: Arc<Pod>, now: Instant) -> QueuedPodInfo {
        QueuedPodInfo {
            pod_info: Arc::new(PodInfo::new(pod)),
            timestamp: now,
            attempts: 0,
            initial_attempt_timestamp: None,
            unschedulable_plugins: BTreeSet::new(),
            pending_plugins: BTreeSet::new(),
            gated: false,
        }
    }

    pub fn pod(&self) -> &Arc<Pod> {
        &self.pod_info.pod
    }
}

/// The kinds of objects whose changes can make a pod schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventResource {
    /// A pod bound to a node (added, changed or gone).
    AssignedPod,
    /// The pending pod itself changed.
    UnscheduledPod,
    Node,
    PersistentVolume,
    PersistentVolumeClaim,
    StorageClass,
    CSINode,
    CSIDriver,
    CSIStorageCapacity,
    /// Anything (the periodic flush, and "every event" registrations).
    WildCard,
}

/// What happened to the object, as bits (upstream's `ActionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionType(pub u32);

impl ActionType {
    pub const ADD: ActionType = ActionType(1);
    pub const DELETE: ActionType = ActionType(1 << 1);
    pub const UPDATE_NODE_ALLOCATABLE: ActionType = ActionType(1 << 2);
    pub const UPDATE_NODE_LABEL: ActionType = ActionType(1 << 3);
    pub const UPDATE_NODE_TAINT: ActionType = ActionType(1 << 4);
    pub const UPDATE_NODE_CONDITION: ActionType = ActionType(1 << 5);
    pub const UPDATE_NODE_ANNOTATION: ActionType = ActionType(1 << 6);
    pub const UPDATE_POD_LABEL: ActionType = ActionType(1 << 7);
    /// A pod's resource requests went down (in-place resize).
    pub const UPDATE_POD_SCALE_DOWN: ActionType = ActionType(1 << 8);
    pub const UPDATE_POD_TOLERATIONS: ActionType = ActionType(1 << 9);
    pub const UPDATE_POD_SCHEDULING_GATES_ELIMINATED: ActionType = ActionType(1 << 10);
    /// Any other update.
    pub const UPDATE_OTHER: ActionType = ActionType(1 << 11);
    pub const UPDATE: ActionType = ActionType(0b1111_1111_1100);
    pub const ALL: ActionType = ActionType(0b1111_1111_1111);

    pub fn intersects(self, other: ActionType) -> bool {
        self.0 & other.0 != 0
    }
}

impl std::ops::BitOr for ActionType {
    type Output = ActionType;
    fn bitor(self, rhs: ActionType) -> ActionType {
        ActionType(self.0 | rhs.0)
    }
}

/// A change in the cluster (upstream's `ClusterEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClusterEvent {
    pub resource: EventResource,
    pub action: ActionType,
    /// For metrics and logs (upstream's labels, e.g. "NodeAdd", "AssignedPodDelete").
    pub label: &'static str,
}

impl ClusterEvent {
    pub const fn new(resource: EventResource, action: ActionType, label: &'static str) -> Self {
        ClusterEvent {
            resource,
            action,
            label,
        }
    }

    /// Whether a registration for `self` covers the event `other`.
    pub fn matches(&self, other: &ClusterEvent) -> bool {
        (self.resource == EventResource::WildCard || self.resource == other.resource)
            && self.action.intersects(other.action)
    }
}

/// The object an event is about, before and after.
#[derive(Debug, Clone)]
pub enum EventObject {
    Pod(Arc<Pod>),
    Node(Arc<Node>),
    /// Another kind (volumes, storage classes, ...), as JSON.
    Other(Arc<serde_json::Value>),
}

/// A plugin's verdict on whether an event may make a rejected pod schedulable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueingHint {
    /// Nothing for this pod: leave it where it is.
    Skip,
    /// Worth another attempt: move it (to backoffQ or activeQ).
    Queue,
}

/// `(pod, old, new) -> hint`; an `Err` is treated as Queue (upstream does the same).
pub type QueueingHintFn = Arc<
    dyn Fn(&Pod, Option<&EventObject>, Option<&EventObject>) -> Result<QueueingHint, String>
        + Send
        + Sync,
>;

/// An event a plugin registers, with an optional hint (none = always Queue).
#[derive(Clone)]
pub struct ClusterEventWithHint {
    pub event: ClusterEvent,
    pub hint: Option<QueueingHintFn>,
}

impl ClusterEventWithHint {
    pub fn new(event: ClusterEvent) -> Self {
        ClusterEventWithHint { event, hint: None }
    }

    pub fn with_hint(event: ClusterEvent, hint: QueueingHintFn) -> Self {
        ClusterEventWithHint {
            event,
            hint: Some(hint),
        }
    }
}

impl std::fmt::Debug for ClusterEventWithHint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterEventWithHint")
            .field("event", &self.event)
            .field("hint", &self.hint.is_some())
            .finish()
    }
}

/// A node's score from one plugin or in total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeScore {
    pub name: String,
    pub score: i64,
}

pub const MAX_NODE_SCORE: i64 = 100;
pub const MIN_NODE_SCORE: i64 = 0;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn requests_count_init_containers_sidecars_and_overhead() {
        let p = pod(json!({
            "containers": [
                {"name": "a", "resources": {"requests": {"cpu": "100m", "memory": "1Gi"}}},
                {"name": "b", "resources": {"requests": {"cpu": "200m"}}},
            ],
            "initContainers": [
                {"name": "big-init", "resources": {"requests": {"cpu": "1", "memory": "100Mi"}}},
                {"name": "sidecar", "restartPolicy": "Always", "resources": {"requests": {"cpu": "50m"}}},
                {"name": "after-sidecar", "resources": {"requests": {"cpu": "300m"}}},
            ],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
        }));
        let r = pod_requests(&p, false);
        // containers 300m + sidecar 50m = 350m; init max is 1000m -> 1000m, plus 10m overhead.
        assert_eq!(r.milli_cpu, 1010);
        assert_eq!(r.memory, 1024 * 1024 * 1024 + 1024 * 1024);
        // Non-zero: container b and the sidecar have no memory request -> 200Mi each (init
        // containers get the defaults too, as upstream).
        let nz = pod_requests(&p, true);
        let mi = 1024 * 1024;
        assert_eq!(nz.memory, 1024 * mi + 200 * mi + 200 * mi + mi);
    }

    #[test]
    fn quantities_round_up() {
        assert_eq!(quantity_value(CPU, &ApiQuantity("1.5".into())), 1500);
        assert_eq!(quantity_value(CPU, &ApiQuantity("1m".into())), 1);
        assert_eq!(quantity_value(MEMORY, &ApiQuantity("1Ki".into())), 1024);
        assert_eq!(quantity_value(MEMORY, &ApiQuantity("0.5".into())), 1);
        assert_eq!(quantity_value(MEMORY, &ApiQuantity("junk".into())), 0);
    }

    #[test]
    fn node_info_tracks_pods_ports_and_claims() {
        let mut info = NodeInfo::new(None);
        let p = Arc::new(PodInfo::new(Arc::new(pod(json!({
            "containers": [{"name": "a", "ports": [{"containerPort": 80, "hostPort": 8080}],
                            "resources": {"requests": {"cpu": "1"}}}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}],
        })))));
        info.add_pod(p);
        assert_eq!(info.requested.milli_cpu, 1000);
        assert!(info.used_ports.conflicts("", "TCP", 8080));
        assert!(info.used_ports.conflicts("10.0.0.1", "TCP", 8080));
        assert!(!info.used_ports.conflicts("", "UDP", 8080));
        assert_eq!(info.pvc_ref_counts.get("ns/data"), Some(&1));
        assert!(info.remove_pod("u1"));
        assert_eq!(info.requested, Resource::default());
        assert!(info.used_ports.is_empty());
        assert!(info.pvc_ref_counts.is_empty());
        assert!(!info.remove_pod("u1"));
    }

    #[test]
    fn affinity_terms_default_to_the_pods_namespace() {
        let p = pod(json!({
            "containers": [{"name": "a"}],
            "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
            ]}},
        }));
        let info = PodInfo::new(Arc::new(p));
        assert!(info.parse_error.is_none());
        let term = &info.required_anti_affinity_terms[0];
        assert_eq!(term.namespaces.iter().collect::<Vec<_>>(), vec!["ns"]);
        let mut other = pod(json!({"containers": []}));
        other.metadata.labels = Some([("app".to_string(), "web".to_string())].into());
        assert!(term.matches(&other, None));
        other.metadata.namespace = Some("elsewhere".into());
        assert!(!term.matches(&other, None));
    }

    #[test]
    fn a_malformed_selector_is_recorded() {
        let p = pod(json!({
            "containers": [{"name": "a"}],
            "affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchExpressions": [{"key": "app", "operator": "Bogus", "values": ["x"]}]},
                 "topologyKey": "zone"}
            ]}},
        }));
        assert!(PodInfo::new(Arc::new(p)).parse_error.is_some());
    }
}
