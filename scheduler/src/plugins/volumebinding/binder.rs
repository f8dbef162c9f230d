//! The volume binder (upstream's `volumebinding/binder.go`): sorts a pod's claims into bound,
//! unbound-immediate and unbound-delayed; checks a node against them (bound volumes' node
//! affinity, a matching Available volume or dynamic provisioning for the delayed ones); assumes
//! the choice in memory at Reserve; and at PreBind writes it through the API (`claimRef` on the
//! PV, `volume.kubernetes.io/selected-node` on the PVC) and waits for the PV controller to
//! finish binding.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::{CSIStorageCapacity, StorageClass};

use super::assume_cache::AssumeCache;
use super::listers::VolumeListers;
use super::selectors::topology_selector_terms_match;
use super::storage::*;

pub const ERR_REASON_BIND_CONFLICT: &str =
    "node(s) didn't find available persistent volumes to bind";
pub const ERR_REASON_NODE_CONFLICT: &str = "node(s) had volume node affinity conflict";
pub const ERR_REASON_NOT_ENOUGH_SPACE: &str = "node(s) did not have enough free storage";
pub const ERR_REASON_PV_NOT_EXIST: &str =
    "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)";

/// The API writes PreBind makes (a trait so tests record them instead).
pub trait VolumeApi: Send + Sync {
    /// PUT the volume (its `claimRef` now set); returns the stored object.
    fn update_pv<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolume>>;
    /// PUT the claim (with the selected-node annotation); returns the stored object.
    fn update_pvc<'a>(
        &'a self,
        pvc: &'a PersistentVolumeClaim,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolumeClaim>>;
}

/// [`VolumeApi`] through the scheduler's client.
pub struct ClientVolumeApi(pub client::Client);

impl VolumeApi for ClientVolumeApi {
    fn update_pv<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolume>> {
        Box::pin(async move {
            let name = pv.metadata.name.as_deref().unwrap_or("");
            Ok(self
                .0
                .api::<PersistentVolume>(None)
                .replace(name, pv)
                .await?)
        })
    }

    fn update_pvc<'a>(
        &'a self,
        pvc: &'a PersistentVolumeClaim,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolumeClaim>> {
        Box::pin(async move {
            let name = pvc.metadata.name.as_deref().unwrap_or("");
            let ns = pvc.metadata.namespace.as_deref();
            Ok(self
                .0
                .api::<PersistentVolumeClaim>(ns)
                .replace(name, pvc)
                .await?)
        })
    }
}

/// A pod's claims, sorted by what scheduling must do for them.
#[derive(Debug, Clone, Default)]
pub struct PodVolumeClaims {
    pub bound: Vec<Arc<PersistentVolumeClaim>>,
    /// WaitForFirstConsumer claims the scheduler binds or provisions.
    pub unbound_delay_binding: Vec<Arc<PersistentVolumeClaim>>,
    /// Immediate claims the PV controller has not bound yet (the pod must wait).
    pub unbound_immediate: Vec<Arc<PersistentVolumeClaim>>,
    /// The volumes of each delayed claim's class, assumptions applied.
    pub unbound_volumes_delay_binding: HashMap<String, Vec<Arc<PersistentVolume>>>,
}

/// `(every claim matched, bindings, claims left for provisioning)`.
type Matches = (bool, Vec<BindingInfo>, Vec<Arc<PersistentVolumeClaim>>);

/// A claim and the volume chosen for it.
#[derive(Debug, Clone)]
pub struct BindingInfo {
    pub pvc: Arc<PersistentVolumeClaim>,
    pub pv: Arc<PersistentVolume>,
}

/// What binding the pod's volumes on one node takes.
#[derive(Debug, Clone, Default)]
pub struct PodVolumes {
    pub static_bindings: Vec<BindingInfo>,
    pub dynamic_provisions: Vec<Arc<PersistentVolumeClaim>>,
}

fn pvc_key(pvc: &PersistentVolumeClaim) -> String {
    format!(
        "{}/{}",
        pvc.metadata.namespace.as_deref().unwrap_or(""),
        pvc.metadata.name.as_deref().unwrap_or("")
    )
}

fn name_of<K: kube::core::Resource>(obj: &K) -> &str {
    obj.meta().name.as_deref().unwrap_or("")
}

/// `a` is newer than `b` by resourceVersion (unparsable versions compare equal, as upstream).
fn newer<K: kube::core::Resource>(a: &K, b: &K) -> bool {
    let parse = |o: &K| {
        o.meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok())
    };
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x > y,
        _ => false,
    }
}

fn labels_of(node: &Node) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    node.metadata.labels.as_ref().unwrap_or(&EMPTY)
}

pub struct VolumeBinder {
    pub listers: VolumeListers,
    pv_cache: AssumeCache<PersistentVolume>,
    pvc_cache: AssumeCache<PersistentVolumeClaim>,
    bind_timeout: Duration,
    api: Option<Arc<dyn VolumeApi>>,
}

impl VolumeBinder {
    pub fn new(
        listers: VolumeListers,
        bind_timeout: Duration,
        api: Option<Arc<dyn VolumeApi>>,
    ) -> VolumeBinder {
        VolumeBinder {
            pv_cache: AssumeCache::new(listers.pvs.clone()),
            pvc_cache: AssumeCache::new(listers.pvcs.clone()),
            listers,
            bind_timeout,
            api,
        }
    }

    pub fn pv_cache(&self) -> &AssumeCache<PersistentVolume> {
        &self.pv_cache
    }

    pub fn pvc_cache(&self) -> &AssumeCache<PersistentVolumeClaim> {
        &self.pvc_cache
    }

    /// `(fully bound, claim)`; `None` claim for volumes that use none.
    fn is_volume_bound(
        &self,
        pod: &Pod,
        volume: &k8s_openapi::api::core::v1::Volume,
    ) -> Result<(bool, Option<Arc<PersistentVolumeClaim>>), String> {
        let Some((claim, ephemeral)) = volume_claim_name(pod, volume) else {
            return Ok((true, None));
        };
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or(""),
            claim
        );
        let Some(pvc) = self.pvc_cache.get(&key) else {
            return Err(format!(
                "error getting PVC {key:?}: persistentvolumeclaim {claim:?} not found"
            ));
        };
        if ephemeral {
            volume_is_for_pod(pod, &pvc)?;
        }
        Ok((is_pvc_fully_bound(&pvc), Some(pvc)))
    }

    fn are_pod_volumes_bound(&self, pod: &Pod) -> bool {
        pod_volumes(pod)
            .iter()
            .all(|v| matches!(self.is_volume_bound(pod, v), Ok((true, _))))
    }

    /// Upstream's `IsDelayBindingMode`.
    fn is_delay_binding_mode(&self, pvc: &PersistentVolumeClaim) -> Result<bool, String> {
        let class = pvc_class(pvc);
        if class.is_empty() {
            return Ok(false);
        }
        let Some(sc) = self.listers.classes.get(&class) else {
            return Ok(false);
        };
        match sc.volume_binding_mode.as_deref() {
            None => Err(format!(
                "VolumeBindingMode not set for StorageClass {class:?}"
            )),
            Some(mode) => Ok(mode == BINDING_WAIT_FOR_FIRST_CONSUMER),
        }
    }

    /// The volumes of `class`, assumptions applied, in name order.
    fn list_pvs(&self, class: &str) -> Vec<Arc<PersistentVolume>> {
        let mut pvs: Vec<Arc<PersistentVolume>> = self
            .pv_cache
            .list()
            .into_iter()
            .filter(|pv| pv_class(pv) == class)
            .collect();
        pvs.sort_by(|a, b| name_of(a.as_ref()).cmp(name_of(b.as_ref())));
        pvs
    }

    /// Upstream's `GetPodVolumeClaims`.
    pub fn get_pod_volume_claims(&self, pod: &Pod) -> Result<PodVolumeClaims, String> {
        let mut claims = PodVolumeClaims::default();
        for volume in pod_volumes(pod) {
            let (bound, pvc) = self.is_volume_bound(pod, volume)?;
            let Some(pvc) = pvc else {
                continue;
            };
            if bound {
                claims.bound.push(pvc);
                continue;
            }
            // A pre-bound claim (volumeName set) waits for the PV controller like an
            // immediate one.
            if self.is_delay_binding_mode(&pvc)? && pvc_volume_name(&pvc).is_empty() {
                claims.unbound_delay_binding.push(pvc);
            } else {
                claims.unbound_immediate.push(pvc);
            }
        }
        for pvc in &claims.unbound_delay_binding {
            let class = pvc_class(pvc);
            if let std::collections::hash_map::Entry::Vacant(e) =
                claims.unbound_volumes_delay_binding.entry(class)
            {
                let pvs = self.list_pvs(e.key());
                e.insert(pvs);
            }
        }
        Ok(claims)
    }

    /// The nodes local volumes of bound claims pin the pod to (upstream's
    /// `GetEligibleNodes`); `None` when nothing narrows the nodes.
    pub fn get_eligible_nodes(
        &self,
        bound: &[Arc<PersistentVolumeClaim>],
    ) -> Option<HashSet<String>> {
        let mut eligible: Option<HashSet<String>> = None;
        for pvc in bound {
            // A volume we cannot see makes narrowing unsafe: Filter will report it.
            let pv = self.pv_cache.get(pvc_volume_name(pvc))?;
            if let Some(names) = local_volume_node_names(&pv) {
                let names: HashSet<String> = names.into_iter().collect();
                eligible = Some(match eligible {
                    None => names,
                    Some(e) => e.intersection(&names).cloned().collect(),
                });
            }
        }
        eligible
    }

    /// Upstream's `FindPodVolumes`: the conflict reasons for `node` (empty when the pod's
    /// volumes fit) and what binding would take there.
    pub fn find_pod_volumes(
        &self,
        pod: &Pod,
        claims: &PodVolumeClaims,
        node: &Node,
    ) -> Result<(PodVolumes, Vec<&'static str>), String> {
        let mut volumes = PodVolumes::default();
        let mut bound_satisfied = true;
        let mut bound_pvs_found = true;
        let mut unbound_satisfied = true;
        let mut sufficient_storage = true;
        let probe = labels_only(labels_of(node));
        if !claims.bound.is_empty() {
            (bound_satisfied, bound_pvs_found) =
                self.check_bound_claims(&claims.bound, node, &probe);
        }
        'unbound: {
            if claims.unbound_delay_binding.is_empty() {
                break 'unbound;
            }
            let mut to_find = Vec::new();
            let mut to_provision = Vec::new();
            for claim in &claims.unbound_delay_binding {
                let selected = claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(ANN_SELECTED_NODE));
                match selected {
                    Some(selected) if selected.as_str() != name_of(node) => {
                        // Provisioning was already requested for another node.
                        unbound_satisfied = false;
                        break 'unbound;
                    }
                    Some(_) => to_provision.push(claim.clone()),
                    None => to_find.push(claim.clone()),
                }
            }
            if !to_find.is_empty() {
                let (found, bindings, unbound) = self.find_matching_volumes(
                    to_find,
                    &claims.unbound_volumes_delay_binding,
                    &probe,
                )?;
                unbound_satisfied = found;
                volumes.static_bindings = bindings;
                to_provision.extend(unbound);
            }
            if !to_provision.is_empty() {
                let (satisfied, sufficient, provisions) =
                    self.check_volume_provisions(&to_provision, node)?;
                unbound_satisfied = satisfied;
                sufficient_storage = sufficient;
                volumes.dynamic_provisions = provisions;
            }
        }
        let mut reasons = Vec::new();
        if !bound_satisfied {
            reasons.push(ERR_REASON_NODE_CONFLICT);
        }
        if !unbound_satisfied {
            reasons.push(ERR_REASON_BIND_CONFLICT);
        }
        if !sufficient_storage {
            reasons.push(ERR_REASON_NOT_ENOUGH_SPACE);
        }
        if !bound_pvs_found {
            reasons.push(ERR_REASON_PV_NOT_EXIST);
        }
        tracing::trace!(pod = %pod_key(pod), node = name_of(node), ?reasons, "FindPodVolumes");
        Ok((volumes, reasons))
    }

    /// `(node affinity satisfied, every volume exists)`.
    fn check_bound_claims(
        &self,
        claims: &[Arc<PersistentVolumeClaim>],
        node: &Node,
        probe: &Node,
    ) -> (bool, bool) {
        for pvc in claims {
            let Some(pv) = self.pv_cache.get(pvc_volume_name(pvc)) else {
                return (true, false);
            };
            if !check_node_affinity(&pv, probe) {
                tracing::trace!(
                    pv = name_of(pv.as_ref()),
                    node = name_of(node),
                    "PersistentVolume and node mismatch"
                );
                return (false, true);
            }
        }
        (true, true)
    }

    /// `(every claim matched, bindings, claims left for provisioning)`; the smallest claims
    /// choose first so they get the smallest volumes.
    fn find_matching_volumes(
        &self,
        mut claims: Vec<Arc<PersistentVolumeClaim>>,
        pvs_by_class: &HashMap<String, Vec<Arc<PersistentVolume>>>,
        probe: &Node,
    ) -> Result<Matches, String> {
        claims.sort_by_key(|c| requested_storage(c));
        let mut chosen: HashSet<String> = HashSet::new();
        let mut bindings = Vec::new();
        let mut unbound = Vec::new();
        let mut found_all = true;
        let none = Vec::new();
        for pvc in claims {
            let pvs = pvs_by_class.get(&pvc_class(&pvc)).unwrap_or(&none);
            match find_matching_volume(&pvc, pvs, probe, &chosen)? {
                Some(pv) => {
                    chosen.insert(name_of(pv.as_ref()).to_string());
                    bindings.push(BindingInfo {
                        pvc,
                        pv: pv.clone(),
                    });
                }
                None => {
                    found_all = false;
                    unbound.push(pvc);
                }
            }
        }
        Ok((found_all, bindings, unbound))
    }

    /// `(provisioning possible, enough capacity, claims to provision)`.
    fn check_volume_provisions(
        &self,
        claims: &[Arc<PersistentVolumeClaim>],
        node: &Node,
    ) -> Result<(bool, bool, Vec<Arc<PersistentVolumeClaim>>), String> {
        let mut provisions = Vec::new();
        for claim in claims {
            let class_name = pvc_class(claim);
            if class_name.is_empty() {
                return Err(format!("no class for claim {:?}", pvc_key(claim)));
            }
            let Some(class) = self.listers.classes.get(&class_name) else {
                return Err(format!("failed to find storage class {class_name:?}"));
            };
            let provisioner = class.provisioner.as_str();
            if provisioner.is_empty() || provisioner == NOT_SUPPORTED_PROVISIONER {
                return Ok((false, true, Vec::new()));
            }
            let allowed = class.allowed_topologies.as_deref().unwrap_or(&[]);
            if !topology_selector_terms_match(allowed, labels_of(node)) {
                return Ok((false, true, Vec::new()));
            }
            if !self.has_enough_capacity(provisioner, claim, &class, node) {
                return Ok((true, false, Vec::new()));
            }
            provisions.push(claim.clone());
        }
        Ok((true, true, provisions))
    }

    /// Storage capacity tracking: only for CSI drivers that opt in with
    /// `storageCapacity: true`; then some CSIStorageCapacity of the class reachable from the
    /// node must hold the requested size.
    fn has_enough_capacity(
        &self,
        provisioner: &str,
        claim: &PersistentVolumeClaim,
        class: &StorageClass,
        node: &Node,
    ) -> bool {
        if !has_storage_request(claim) {
            return true;
        }
        let Some(driver) = self.listers.csi_drivers.get(provisioner) else {
            return true;
        };
        if driver.spec.storage_capacity != Some(true) {
            return true;
        }
        let size = requested_storage(claim);
        let class_name = name_of(class);
        self.listers.capacities.list().iter().any(|c| {
            c.storage_class_name == class_name
                && capacity_sufficient(c, size)
                && node_has_access(node, c)
        })
    }

    /// Upstream's `AssumePodVolumes`: records the bindings and provisioning requests in the
    /// caches; returns whether every volume was already bound (nothing to do at PreBind).
    pub fn assume_pod_volumes(
        &self,
        pod: &Pod,
        node: &str,
        volumes: &mut PodVolumes,
    ) -> Result<bool, String> {
        if self.are_pod_volumes_bound(pod) {
            return Ok(true);
        }
        let mut new_bindings: Vec<BindingInfo> = Vec::new();
        for binding in &volumes.static_bindings {
            let (new_pv, dirty) = bind_volume_to_claim(&binding.pv, &binding.pvc);
            if dirty {
                if let Err(e) = self.pv_cache.assume(new_pv.clone()) {
                    self.revert_pvs(&new_bindings);
                    return Err(e);
                }
            }
            new_bindings.push(BindingInfo {
                pvc: binding.pvc.clone(),
                pv: Arc::new(new_pv),
            });
        }
        let mut new_claims: Vec<Arc<PersistentVolumeClaim>> = Vec::new();
        for claim in &volumes.dynamic_provisions {
            let mut clone = claim.as_ref().clone();
            clone
                .metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANN_SELECTED_NODE.into(), node.to_string());
            if let Err(e) = self.pvc_cache.assume(clone.clone()) {
                self.revert_pvs(&new_bindings);
                self.revert_pvcs(&new_claims);
                return Err(e);
            }
            new_claims.push(Arc::new(clone));
        }
        volumes.static_bindings = new_bindings;
        volumes.dynamic_provisions = new_claims;
        Ok(false)
    }

    fn revert_pvs(&self, bindings: &[BindingInfo]) {
        for b in bindings {
            self.pv_cache.restore(&b.pv);
        }
    }

    fn revert_pvcs(&self, claims: &[Arc<PersistentVolumeClaim>]) {
        for c in claims {
            self.pvc_cache.restore(c);
        }
    }

    /// Upstream's `RevertAssumedPodVolumes`.
    pub fn revert_assumed_pod_volumes(&self, volumes: &PodVolumes) {
        self.revert_pvs(&volumes.static_bindings);
        self.revert_pvcs(&volumes.dynamic_provisions);
    }

    /// Upstream's `BindPodVolumes`: the API writes, then a poll every second (up to the bind
    /// timeout) until the PV controller reports every claim bound.
    pub async fn bind_pod_volumes(
        &self,
        pod: &Pod,
        node: &str,
        volumes: &PodVolumes,
    ) -> Result<(), String> {
        let (bindings, claims) = self.bind_api_update(pod, volumes).await?;
        let deadline = tokio::time::Instant::now() + self.bind_timeout;
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            match self.check_bindings(pod, node, &bindings, &claims) {
                Ok(true) => return Ok(()),
                Ok(false) if tokio::time::Instant::now() >= deadline => {
                    return Err("binding volumes: context deadline exceeded".into())
                }
                Ok(false) => continue,
                Err(e) => return Err(format!("binding volumes: {e}")),
            }
        }
    }

    /// Writes the volumes' claimRefs, then the claims' selected-node annotations; whatever
    /// was not written is un-assumed on failure. Returns the objects as stored.
    async fn bind_api_update(
        &self,
        pod: &Pod,
        volumes: &PodVolumes,
    ) -> Result<(Vec<BindingInfo>, Vec<Arc<PersistentVolumeClaim>>), String> {
        let Some(api) = self.api.as_ref() else {
            self.revert_assumed_pod_volumes(volumes);
            return Err("no API client to bind volumes with".into());
        };
        let mut bindings = Vec::with_capacity(volumes.static_bindings.len());
        for (i, binding) in volumes.static_bindings.iter().enumerate() {
            tracing::debug!(
                pod = %pod_key(pod),
                pv = name_of(binding.pv.as_ref()),
                pvc = %pvc_key(&binding.pvc),
                "updating PersistentVolume: binding to claim"
            );
            match api.update_pv(&binding.pv).await {
                Ok(pv) => bindings.push(BindingInfo {
                    pvc: binding.pvc.clone(),
                    pv: Arc::new(pv),
                }),
                Err(e) => {
                    self.revert_pvs(&volumes.static_bindings[i..]);
                    self.revert_pvcs(&volumes.dynamic_provisions);
                    return Err(e.to_string());
                }
            }
        }
        let mut claims = Vec::with_capacity(volumes.dynamic_provisions.len());
        for (i, claim) in volumes.dynamic_provisions.iter().enumerate() {
            tracing::debug!(pod = %pod_key(pod), pvc = %pvc_key(claim), "updating claim to trigger volume provisioning");
            match api.update_pvc(claim).await {
                Ok(pvc) => claims.push(Arc::new(pvc)),
                Err(e) => {
                    self.revert_pvcs(&volumes.dynamic_provisions[i..]);
                    return Err(e.to_string());
                }
            }
        }
        Ok((bindings, claims))
    }

    /// Upstream's `checkBindings`, against the informers' (not assumed) objects: `Ok(true)`
    /// once every claim is fully bound, an error when binding must be retried from scratch.
    fn check_bindings(
        &self,
        pod: &Pod,
        node_name: &str,
        bindings: &[BindingInfo],
        claims: &[Arc<PersistentVolumeClaim>],
    ) -> Result<bool, String> {
        let Some(node) = self.listers.nodes.get(node_name) else {
            return Err(format!(
                "failed to get node {node_name:?}: node {node_name:?} not found"
            ));
        };
        let probe = labels_only(labels_of(&node));
        if self.listers.pods.get(&pod_key(pod)).is_none() {
            return Err(format!(
                "pod does not exist any more: pod {:?} not found",
                pod.metadata.name.as_deref().unwrap_or("")
            ));
        }
        for binding in bindings {
            let pv_name = name_of(binding.pv.as_ref());
            let Some(pv) = self.pv_cache.get_api(pv_name) else {
                return Err(format!(
                    "failed to check binding: persistentvolume {pv_name:?} not found"
                ));
            };
            let key = pvc_key(&binding.pvc);
            let Some(pvc) = self.pvc_cache.get_api(&key) else {
                return Err(format!(
                    "failed to check binding: persistentvolumeclaim {key:?} not found"
                ));
            };
            // Our own write has not reached the informer yet.
            if newer(binding.pv.as_ref(), pv.as_ref()) {
                return Ok(false);
            }
            if !check_node_affinity(&pv, &probe) {
                return Err(format!(
                    "pv {pv_name:?} node affinity doesn't match node {node_name:?}: no matching NodeSelectorTerms"
                ));
            }
            let claim_uid = pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|r| r.uid.as_deref())
                .unwrap_or("");
            if claim_uid.is_empty() {
                return Err(format!("ClaimRef got reset for pv {pv_name:?}"));
            }
            if !is_pvc_fully_bound(&pvc) {
                return Ok(false);
            }
        }
        for claim in claims {
            let key = pvc_key(claim);
            let Some(pvc) = self.pvc_cache.get_api(&key) else {
                return Err(format!(
                    "failed to check provisioning pvc: persistentvolumeclaim {key:?} not found"
                ));
            };
            if newer(claim.as_ref(), pvc.as_ref()) {
                return Ok(false);
            }
            let name = name_of(pvc.as_ref());
            let Some(annotations) = pvc.metadata.annotations.as_ref() else {
                return Err(format!("selectedNode annotation reset for PVC {name:?}"));
            };
            // The provisioner drops the annotation to ask for another attempt.
            if annotations.get(ANN_SELECTED_NODE).map(String::as_str) != Some(node_name) {
                return Err(format!("provisioning failed for PVC {name:?}"));
            }
            let volume = pvc_volume_name(&pvc);
            if !volume.is_empty() {
                // The volume may not have reached the informer yet.
                let Some(pv) = self.pv_cache.get_api(volume) else {
                    return Ok(false);
                };
                if !check_node_affinity(&pv, &probe) {
                    return Err(format!(
                        "pv {volume:?} node affinity doesn't match node {node_name:?}: no matching NodeSelectorTerms"
                    ));
                }
            }
            if !is_pvc_fully_bound(&pvc) {
                return Ok(false);
            }
        }
        tracing::debug!(pod = %pod_key(pod), "all PVCs for pod are bound");
        Ok(true)
    }
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// `maximumVolumeSize` when set (more precise), else `capacity`; neither means no room.
fn capacity_sufficient(capacity: &CSIStorageCapacity, size: i128) -> bool {
    let limit = capacity
        .maximum_volume_size
        .as_ref()
        .or(capacity.capacity.as_ref());
    limit.is_some_and(|l| quantity_nanos(Some(l)) >= size)
}

fn node_has_access(node: &Node, capacity: &CSIStorageCapacity) -> bool {
    let Some(topology) = capacity.node_topology.as_ref() else {
        return false;
    };
    let Ok(value) = serde_json::to_value(topology) else {
        return false;
    };
    apimachinery::LabelSelector::from_label_selector(&value)
        .is_ok_and(|s| s.matches(labels_of(node)))
}
