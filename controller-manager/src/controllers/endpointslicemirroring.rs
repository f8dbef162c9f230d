//! The EndpointSlice mirroring controller (`endpointslice-mirroring-controller`): Endpoints that
//! a user (or another controller) writes by hand for a Service *without* a selector are mirrored
//! into EndpointSlices, so that slice consumers (kube-proxy, DNS) see them too, as upstream's
//! `pkg/controller/endpointslicemirroring` does:
//!
//! - an Endpoints object is mirrored while its Service exists and has no selector, it is not
//!   labelled `endpointslice.kubernetes.io/skip-mirror: "true"` and carries no leader-election
//!   annotation (`control-plane.alpha.kubernetes.io/leader`); otherwise its mirrored slices are
//!   deleted;
//! - the subsets are first repacked as the apiserver would (one subset per distinct address set,
//!   an address not ready on a port wins over ready), then each subset becomes one slice per IP
//!   family (`addressType` from the parsed IP; unparseable IPs are skipped with an
//!   `InvalidIPAddress` warning), holding at most `--mirroring-max-endpoints-per-subset` of its
//!   addresses, ready ones first (the rest: a `TooManyAddressesToMirror` warning);
//! - a slice carries the Endpoints' labels plus `kubernetes.io/service-name=<name>` and
//!   `endpointslice.kubernetes.io/managed-by=endpointslicemirroring-controller.k8s.io`, its
//!   annotations except `endpoints.kubernetes.io/last-change-trigger-time` and
//!   `kubectl.kubernetes.io/last-applied-configuration`, and a controller owner reference to the
//!   Endpoints object; endpoints carry `ready` only, with hostname, nodeName and targetRef copied;
//! - one slice per (address type, ports) is kept and rewritten when its endpoints, labels or
//!   annotations differ; extra ones go, and a slice that would be deleted is reused (same
//!   address type) instead of creating a new one.
//!
//! Writes are tracked per slice (upstream's `EndpointSliceTracker`): a sync that would act on a
//! slice cache older than this controller's own last write fails and is retried, so a lagging
//! cache never makes duplicate slices. Upstream tracks `metadata.generation`; the
//! resourceVersion is used here, as our apiserver does not move a slice's generation.
//!
//! Not done: the `--mirroring-endpointslice-updates-batch-period` delay and the mirroring
//! metrics; a key is retried without upstream's limit of 15 attempts.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use client::events::CoreEventRecorder;
use client::informer::{Event, Scope};
use client::{Api, Client, Informer};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use kube::api::ObjectMeta;
use workqueue::{BucketRateLimiter, ItemExponentialFailureRateLimiter, MaxOfRateLimiter, Queue};

use super::endpoints::{selector_of, MANAGED_BY_LABEL, SERVICE_NAME_LABEL, TRIGGER_TIME};
use crate::framework::{
    key_of, new_controller_ref, reference, run_workers, stop_queue_on_shutdown, warn_event,
    ControllerContext,
};

/// The `managed-by` value of mirrored slices (upstream's `controllerName`).
pub const MIRRORING_MANAGED_BY: &str = "endpointslicemirroring-controller.k8s.io";
/// Upstream `discovery.LabelSkipMirror`.
pub const SKIP_MIRROR_LABEL: &str = "endpointslice.kubernetes.io/skip-mirror";
/// Upstream `resourcelock.LeaderElectionRecordAnnotationKey`: Endpoints used as a lock.
const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The event source, as upstream's recorder names it.
const COMPONENT: &str = "endpoint-slice-mirroring-controller";
const SLICE_INDEX: &str = "service-name";
const INVALID_IP_ADDRESS: &str = "InvalidIPAddress";
const TOO_MANY_ADDRESSES: &str = "TooManyAddressesToMirror";
/// Longest name an EndpointSlice may have (a DNS subdomain).
const MAX_NAME_LEN: usize = 253;

/// Whether `endpoints` is one to mirror at all (the Service is checked separately).
fn should_mirror(endpoints: &Endpoints) -> bool {
    let skip = endpoints
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(SKIP_MIRROR_LABEL))
        .is_some_and(|v| v == "true");
    let leader_lock = endpoints
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(LEADER_ANNOTATION));
    !skip && !leader_lock
}

fn has_selector(svc: &Service) -> bool {
    selector_of(svc).is_some()
}

/// A port as a comparable value: name, port, protocol, appProtocol.
type PortTuple = (String, i32, String, Option<String>);

fn port_tuple(port: &EndpointPort) -> PortTuple {
    (
        port.name.clone().unwrap_or_default(),
        port.port,
        port.protocol.clone().unwrap_or_else(|| "TCP".into()),
        port.app_protocol.clone(),
    )
}

/// Upstream's `RepackSubsets`: every address (told apart by IP and target UID) is listed once
/// per port, not ready if any subset says so for that port; ports reaching the same addresses
/// with the same readiness share a subset. Addresses are sorted by IP, then UID.
fn repack_subsets(subsets: &[EndpointSubset]) -> Vec<EndpointSubset> {
    let mut addresses: Vec<EndpointAddress> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    // `None` stands for "no ports", which still keeps its addresses.
    let mut by_port: BTreeMap<Option<PortTuple>, BTreeMap<usize, bool>> = BTreeMap::new();
    for subset in subsets {
        let ports: Vec<Option<PortTuple>> = match subset.ports.as_deref() {
            None | Some([]) => vec![None],
            Some(ports) => ports.iter().map(|p| Some(port_tuple(p))).collect(),
        };
        let listed = subset.addresses.iter().flatten().map(|a| (a, true)).chain(
            subset
                .not_ready_addresses
                .iter()
                .flatten()
                .map(|a| (a, false)),
        );
        for (address, ready) in listed {
            let id = (
                address.ip.clone(),
                address
                    .target_ref
                    .as_ref()
                    .and_then(|t| t.uid.clone())
                    .unwrap_or_default(),
            );
            let at = *index.entry(id).or_insert_with(|| {
                addresses.push(address.clone());
                addresses.len() - 1
            });
            for port in &ports {
                let state = by_port.entry(port.clone()).or_default();
                let was = state.entry(at).or_insert(ready);
                *was = *was && ready;
            }
        }
    }
    let mut by_addresses: BTreeMap<Vec<(usize, bool)>, Vec<PortTuple>> = BTreeMap::new();
    for (port, state) in by_port {
        let ports = by_addresses.entry(state.into_iter().collect()).or_default();
        ports.extend(port);
    }
    let sort_key = |a: &EndpointAddress| {
        let uid = a.target_ref.as_ref().and_then(|t| t.uid.clone());
        (a.ip.clone(), uid)
    };
    let mut out: Vec<EndpointSubset> = by_addresses
        .into_iter()
        .map(|(state, ports)| {
            let pick = |ready: bool| {
                let mut list: Vec<EndpointAddress> = state
                    .iter()
                    .filter(|(_, r)| *r == ready)
                    .filter_map(|(i, _)| addresses.get(*i).cloned())
                    .collect();
                list.sort_by_key(sort_key);
                (!list.is_empty()).then_some(list)
            };
            EndpointSubset {
                addresses: pick(true),
                not_ready_addresses: pick(false),
                ports: (!ports.is_empty()).then(|| {
                    ports
                        .into_iter()
                        .map(|(name, port, protocol, app_protocol)| EndpointPort {
                            name: Some(name),
                            port,
                            protocol: Some(protocol),
                            app_protocol,
                        })
                        .collect()
                }),
            }
        })
        .collect();
    out.sort_by_key(|s| {
        let first = s
            .addresses
            .iter()
            .chain(&s.not_ready_addresses)
            .flatten()
            .next();
        (
            first.map(sort_key),
            s.ports
                .as_ref()
                .map(|p| p.iter().map(port_tuple).collect::<Vec<_>>()),
        )
    });
    out
}

/// Go's `ParseIPSloppy`: a plain IP, or an IPv4 address whose parts have leading zeros (read as
/// decimal). IPv4-mapped IPv6 addresses count as IPv4, as Go's `To4` has it.
fn parse_ip_sloppy(text: &str) -> Option<IpAddr> {
    let ip = match text.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let parts: Vec<&str> = text.split('.').collect();
            if parts.len() != 4 {
                return None;
            }
            let mut octets = [0u8; 4];
            for (octet, part) in octets.iter_mut().zip(&parts) {
                if part.is_empty() || part.len() > 10 || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                *octet = u8::try_from(part.parse::<u32>().ok()?).ok()?;
            }
            IpAddr::V4(Ipv4Addr::from(octets))
        }
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    })
}

fn address_type(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn slice_ports(ports: &[EndpointPort]) -> Vec<SlicePort> {
    ports
        .iter()
        .map(|p| SlicePort {
            name: Some(p.name.clone().unwrap_or_default()),
            port: Some(p.port),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            app_protocol: p.app_protocol.clone(),
        })
        .collect()
}

/// Upstream's `addrTypePortMapKey`: the address type and the set of ports (order ignored).
fn group_key(address_type: &str, ports: &[SlicePort]) -> String {
    let mut parts: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.port.unwrap_or(0),
                p.protocol.as_deref().unwrap_or("TCP"),
                p.app_protocol.as_deref().unwrap_or("")
            )
        })
        .collect();
    parts.sort();
    format!("{address_type}-{}", parts.join(","))
}

fn slice_key(slice: &EndpointSlice) -> String {
    group_key(
        &slice.address_type,
        slice.ports.as_deref().unwrap_or_default(),
    )
}

/// The endpoints one (address type, ports) group should hold.
#[derive(Clone, Debug, Default, PartialEq)]
struct DesiredGroup {
    address_type: String,
    ports: Vec<SlicePort>,
    endpoints: Vec<Endpoint>,
}

/// What an Endpoints object should be mirrored as, and what could not be.
#[derive(Debug, Default)]
struct Desired {
    groups: BTreeMap<String, DesiredGroup>,
    invalid: usize,
    /// Addresses left out, for being invalid or past the per-subset maximum.
    skipped: usize,
}

fn desired_groups(endpoints: &Endpoints, max_per_subset: usize) -> Desired {
    let mut desired = Desired::default();
    for subset in repack_subsets(endpoints.subsets.as_deref().unwrap_or_default()) {
        let ports = slice_ports(subset.ports.as_deref().unwrap_or_default());
        // Both families get a group, so slices of a family that no longer has addresses go.
        for family in ["IPv4", "IPv6"] {
            desired
                .groups
                .entry(group_key(family, &ports))
                .or_insert_with(|| DesiredGroup {
                    address_type: family.to_string(),
                    ports: ports.clone(),
                    endpoints: Vec::new(),
                });
        }
        let listed: Vec<(&EndpointAddress, bool)> = subset
            .addresses
            .iter()
            .flatten()
            .map(|a| (a, true))
            .chain(
                subset
                    .not_ready_addresses
                    .iter()
                    .flatten()
                    .map(|a| (a, false)),
            )
            .collect();
        let mut added = 0;
        for (address, ready) in &listed {
            if added >= max_per_subset {
                break;
            }
            let Some(ip) = parse_ip_sloppy(&address.ip) else {
                desired.invalid += 1;
                continue;
            };
            let family = address_type(&ip);
            let endpoint = Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(*ready),
                    ..EndpointConditions::default()
                }),
                hostname: address.hostname.clone().filter(|h| !h.is_empty()),
                node_name: address.node_name.clone(),
                target_ref: address.target_ref.clone(),
                ..Endpoint::default()
            };
            if let Some(group) = desired.groups.get_mut(&group_key(family, &ports)) {
                group.endpoints.push(endpoint);
                added += 1;
            }
        }
        desired.skipped += listed.len() - added;
    }
    desired
}

/// The labels and annotations a mirrored slice of `endpoints` carries.
fn slice_metadata(
    endpoints: &Endpoints,
) -> (BTreeMap<String, String>, Option<BTreeMap<String, String>>) {
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    let mut labels = endpoints.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), name);
    labels.insert(MANAGED_BY_LABEL.into(), MIRRORING_MANAGED_BY.into());
    let annotations: BTreeMap<String, String> = endpoints
        .metadata
        .annotations
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != TRIGGER_TIME && k.as_str() != LAST_APPLIED)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (labels, (!annotations.is_empty()).then_some(annotations))
}

/// Upstream's `getEndpointSlicePrefix`: `<name>-` unless that is too long to be a name.
fn generate_name_prefix(name: &str) -> String {
    if name.len() < MAX_NAME_LEN {
        format!("{name}-")
    } else {
        name.to_string()
    }
}

/// A mirrored slice of `endpoints`; `reuse` names the existing slice it replaces (its name and
/// resourceVersion), else it is created with a generated name.
fn new_slice(
    endpoints: &Endpoints,
    group: DesiredGroup,
    reuse: Option<&EndpointSlice>,
) -> EndpointSlice {
    let (labels, annotations) = slice_metadata(endpoints);
    let name = endpoints.metadata.name.clone().unwrap_or_default();
    EndpointSlice {
        metadata: ObjectMeta {
            name: reuse.and_then(|s| s.metadata.name.clone()),
            generate_name: reuse.is_none().then(|| generate_name_prefix(&name)),
            namespace: endpoints.metadata.namespace.clone(),
            resource_version: reuse.and_then(|s| s.metadata.resource_version.clone()),
            labels: Some(labels),
            annotations,
            owner_references: Some(vec![new_controller_ref(endpoints)]),
            ..ObjectMeta::default()
        },
        address_type: group.address_type,
        endpoints: group.endpoints,
        ports: Some(group.ports),
    }
}

fn sorted_endpoints(endpoints: &[Endpoint]) -> Vec<Endpoint> {
    let mut out = endpoints.to_vec();
    out.sort_by(|a, b| {
        let key = |e: &Endpoint| {
            (
                e.addresses.clone(),
                e.target_ref.as_ref().and_then(|t| t.uid.clone()),
            )
        };
        key(a).cmp(&key(b))
    });
    out
}

/// Whether `existing` already mirrors `group` of `endpoints` (upstream's early return in
/// `reconcileByPortMapping`: same endpoints, labels and annotations).
fn up_to_date(existing: &EndpointSlice, endpoints: &Endpoints, group: &DesiredGroup) -> bool {
    let (labels, annotations) = slice_metadata(endpoints);
    let existing_annotations = existing
        .metadata
        .annotations
        .clone()
        .filter(|a| !a.is_empty());
    sorted_endpoints(&existing.endpoints) == sorted_endpoints(&group.endpoints)
        && existing.metadata.labels.as_ref() == Some(&labels)
        && existing_annotations == annotations
}

/// The writes one sync makes.
#[derive(Debug, Default)]
struct Plan {
    create: Vec<EndpointSlice>,
    update: Vec<EndpointSlice>,
    delete: Vec<Arc<EndpointSlice>>,
}

/// The outcome of looking at one Endpoints key: the writes, and what to warn about.
#[derive(Debug, Default)]
struct Outcome {
    /// False when the Endpoints object is not (or no longer) mirrored: every slice goes.
    mirrored: bool,
    plan: Plan,
    invalid: usize,
    skipped: usize,
}

/// Decides, from the cached objects of one key, what the mirrored slices should become.
fn compute(
    endpoints: Option<&Endpoints>,
    service: Option<&Service>,
    existing: &[Arc<EndpointSlice>],
    max_per_subset: usize,
) -> Outcome {
    let endpoints = match (endpoints, service) {
        (Some(ep), Some(svc)) if should_mirror(ep) && !has_selector(svc) => ep,
        _ => {
            return Outcome {
                plan: Plan {
                    delete: existing.to_vec(),
                    ..Plan::default()
                },
                ..Outcome::default()
            }
        }
    };
    let desired = desired_groups(endpoints, max_per_subset.max(1));
    let mut by_key: BTreeMap<String, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for slice in existing {
        by_key
            .entry(slice_key(slice))
            .or_default()
            .push(slice.clone());
    }
    for slices in by_key.values_mut() {
        slices.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    let mut plan = Plan::default();
    for (key, group) in desired.groups {
        let mut current = by_key.remove(&key).unwrap_or_default().into_iter();
        if group.endpoints.is_empty() {
            plan.delete.extend(current);
            continue;
        }
        let first = current.next();
        plan.delete.extend(current);
        match first {
            Some(slice) if up_to_date(&slice, endpoints, &group) => {}
            Some(slice) => plan.update.push(new_slice(endpoints, group, Some(&slice))),
            None => plan.create.push(new_slice(endpoints, group, None)),
        }
    }
    plan.delete.extend(by_key.into_values().flatten());
    recycle(&mut plan);
    Outcome {
        mirrored: true,
        plan,
        invalid: desired.invalid,
        skipped: desired.skipped,
    }
}

/// Upstream's `recycleSlices`: a slice to create takes over one to delete of the same address
/// type (which cannot change), as an update.
fn recycle(plan: &mut Plan) {
    let mut creates = Vec::new();
    for mut slice in std::mem::take(&mut plan.create) {
        let reusable = plan
            .delete
            .iter()
            .position(|old| old.address_type == slice.address_type);
        match reusable.map(|i| plan.delete.remove(i)) {
            Some(old) => {
                slice.metadata.generate_name = None;
                slice.metadata.name = old.metadata.name.clone();
                slice.metadata.resource_version = old.metadata.resource_version.clone();
                plan.update.push(slice);
            }
            None => creates.push(slice),
        }
    }
    plan.create = creates;
}

/// What this controller last did to a slice.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// Written at this resourceVersion.
    Version(u64),
    Deleted,
}

/// Upstream's `EndpointSliceTracker`: per Endpoints key, the slices this controller wrote or
/// deleted (by UID), so a sync can tell the slice cache has not caught up with its own writes.
#[derive(Default)]
struct SliceTracker {
    by_key: Mutex<HashMap<String, HashMap<String, Expect>>>,
}

fn resource_version(slice: &EndpointSlice) -> Option<u64> {
    slice.metadata.resource_version.as_deref()?.parse().ok()
}

impl SliceTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, HashMap<String, Expect>>> {
        self.by_key.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, key: &str, slice: &EndpointSlice, expect: Option<Expect>) {
        let Some(uid) = slice.metadata.uid.clone() else {
            return;
        };
        let mut map = self.lock();
        let slices = map.entry(key.to_string()).or_default();
        match expect {
            Some(expect) => {
                slices.insert(uid, expect);
            }
            None => {
                slices.remove(&uid);
            }
        }
        if slices.is_empty() {
            map.remove(key);
        }
    }

    /// A slice as the apiserver returned it from this controller's create or update.
    fn written(&self, key: &str, slice: &EndpointSlice) {
        self.set(key, slice, resource_version(slice).map(Expect::Version));
    }

    fn expect_deletion(&self, key: &str, slice: &EndpointSlice) {
        self.set(key, slice, Some(Expect::Deleted));
    }

    /// A slice's delete event: forgets it; false when this controller did not delete it.
    fn handle_deletion(&self, key: &str, slice: &EndpointSlice) -> bool {
        let Some(uid) = slice.metadata.uid.as_deref() else {
            return true;
        };
        let mut map = self.lock();
        let Some(slices) = map.get_mut(key) else {
            return false;
        };
        let expected = slices.remove(uid) == Some(Expect::Deleted);
        if slices.is_empty() {
            map.remove(key);
        }
        expected
    }

    /// Whether an add or update event shows something this controller did not write itself.
    fn should_sync(&self, key: &str, slice: &EndpointSlice) -> bool {
        let Some(uid) = slice.metadata.uid.as_deref() else {
            return true;
        };
        match self.lock().get(key).and_then(|s| s.get(uid)) {
            Some(Expect::Version(v)) => resource_version(slice).is_none_or(|rv| rv > *v),
            _ => true,
        }
    }

    fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Whether the cached `slices` of `key` are older than this controller's own writes.
    fn stale(&self, key: &str, slices: &[Arc<EndpointSlice>]) -> bool {
        let map = self.lock();
        let Some(expected) = map.get(key) else {
            return false;
        };
        let mut seen = 0;
        for slice in slices {
            let Some(uid) = slice.metadata.uid.as_deref() else {
                continue;
            };
            match expected.get(uid) {
                Some(Expect::Deleted) => return true,
                Some(Expect::Version(v)) => {
                    seen += 1;
                    if resource_version(slice).is_some_and(|rv| rv < *v) {
                        return true;
                    }
                }
                None => {}
            }
        }
        let written = expected
            .values()
            .filter(|e| matches!(e, Expect::Version(_)))
            .count();
        seen < written
    }
}

/// The controller: caches, tracker and the API.
struct Mirroring {
    client: Client,
    endpoints: Informer<Endpoints>,
    services: Informer<Service>,
    slices: Informer<EndpointSlice>,
    tracker: SliceTracker,
    recorder: CoreEventRecorder,
    max_per_subset: usize,
}

impl Mirroring {
    fn mirrored_slices(&self, key: &str) -> Vec<Arc<EndpointSlice>> {
        self.slices.store().by_index(SLICE_INDEX, key)
    }

    async fn sync(&self, key: &str) -> anyhow::Result<()> {
        let (ns, name) = client::informer::store::split_key(key);
        let ns = ns.unwrap_or("default");
        let endpoints = self.endpoints.store().get(key);
        let service = self.services.store().get(key);
        let existing = self.mirrored_slices(key);
        let outcome = compute(
            endpoints.as_deref(),
            service.as_deref(),
            &existing,
            self.max_per_subset,
        );
        if !outcome.mirrored {
            self.tracker.forget(key);
            return self.delete_all(ns, name, &outcome.plan.delete).await;
        }
        let Some(endpoints) = endpoints else {
            return Ok(());
        };
        if self.tracker.stale(key, &existing) {
            anyhow::bail!("EndpointSlice informer cache is out of date");
        }
        self.warn(&endpoints, outcome.invalid, outcome.skipped);
        self.finalize(key, &endpoints, outcome.plan).await
    }

    fn warn(&self, endpoints: &Endpoints, invalid: usize, skipped: usize) {
        let object = reference(endpoints);
        if invalid > 0 {
            let message =
                format!("Skipped {invalid} invalid IP addresses when mirroring to EndpointSlices");
            warn_event(&self.recorder, &object, INVALID_IP_ADDRESS, &message);
        }
        if skipped > invalid {
            let message = format!(
                "A max of {} addresses can be mirrored to EndpointSlices per Endpoints subset. \
                 {skipped} addresses were skipped",
                self.max_per_subset
            );
            warn_event(&self.recorder, &object, TOO_MANY_ADDRESSES, &message);
        }
    }

    async fn finalize(&self, key: &str, endpoints: &Endpoints, plan: Plan) -> anyhow::Result<()> {
        let ns = endpoints.metadata.namespace.as_deref().unwrap_or("default");
        let name = endpoints.metadata.name.as_deref().unwrap_or_default();
        let api: Api<EndpointSlice> = self.client.api(Some(ns));
        // No new slices for an Endpoints object on its way out.
        if endpoints.metadata.deletion_timestamp.is_none() {
            for slice in &plan.create {
                match api.create(slice).await {
                    Ok(created) => self.tracker.written(key, &created),
                    Err(err) if crate::framework::is_namespace_terminating(&err) => return Ok(()),
                    Err(err) => {
                        return Err(err).with_context(|| {
                            format!("failed to create EndpointSlice for Endpoints {ns}/{name}")
                        })
                    }
                }
            }
        }
        for slice in &plan.update {
            let slice_name = slice.metadata.name.as_deref().unwrap_or_default();
            let updated = api.replace(slice_name, slice).await.with_context(|| {
                format!("failed to update {slice_name} EndpointSlice for Endpoints {ns}/{name}")
            })?;
            self.tracker.written(key, &updated);
        }
        for slice in &plan.delete {
            let slice_name = slice.metadata.name.as_deref().unwrap_or_default();
            match api.delete(slice_name, &Default::default()).await {
                Err(err) if !err.is_not_found() => {
                    return Err(err).with_context(|| {
                        format!(
                            "failed to delete {slice_name} EndpointSlice for Endpoints {ns}/{name}"
                        )
                    })
                }
                _ => self.tracker.expect_deletion(key, slice),
            }
        }
        Ok(())
    }

    /// Upstream's `deleteMirroredSlices`: every slice mirrored for `ns/name` goes.
    async fn delete_all(
        &self,
        ns: &str,
        name: &str,
        slices: &[Arc<EndpointSlice>],
    ) -> anyhow::Result<()> {
        let api: Api<EndpointSlice> = self.client.api(Some(ns));
        let mut errors = Vec::new();
        for slice in slices {
            let slice_name = slice.metadata.name.as_deref().unwrap_or_default();
            match api.delete(slice_name, &Default::default()).await {
                Err(err) if !err.is_not_found() => errors.push(err),
                _ => {}
            }
        }
        match errors.first() {
            None => Ok(()),
            Some(first) => anyhow::bail!(
                "error(s) deleting {}/{} EndpointSlices for {ns}/{name} Endpoints, including: {first}",
                errors.len(),
                slices.len()
            ),
        }
    }
}

/// The key of the Endpoints a slice mirrors (its namespace and service-name label).
fn endpoints_key_of(slice: &EndpointSlice) -> Option<String> {
    let svc = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    if svc.is_empty() {
        return None;
    }
    let ns = slice.metadata.namespace.as_deref().unwrap_or_default();
    Some(format!("{ns}/{svc}"))
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    // Upstream backs off from 1 s (not 5 ms): one sync may rewrite many slices.
    let limiter: MaxOfRateLimiter<String> = MaxOfRateLimiter::new(vec![
        Box::new(ItemExponentialFailureRateLimiter::new(
            Duration::from_secs(1),
            Duration::from_secs(100),
        )),
        Box::new(BucketRateLimiter::new(10.0, 100)),
    ]);
    let queue: Queue<String> =
        Queue::with_rate_limiter("endpoint_slice_mirroring", limiter, metrics::global());
    stop_queue_on_shutdown(ctx, queue.clone());
    let endpoints = ctx.factory.informer::<Endpoints>();
    let services = ctx.factory.informer::<Service>();
    let slices = ctx.factory.informer_for::<EndpointSlice>(
        Scope::all().labels(&format!("{MANAGED_BY_LABEL}={MIRRORING_MANAGED_BY}")),
    );
    slices.add_indexer(
        SLICE_INDEX,
        Arc::new(|s: &EndpointSlice| endpoints_key_of(s).into_iter().collect()),
    );
    let mirroring = Arc::new(Mirroring {
        client: ctx.client.clone(),
        endpoints: endpoints.clone(),
        services: services.clone(),
        slices: slices.clone(),
        tracker: SliceTracker::default(),
        recorder: ctx.recorder(COMPONENT),
        max_per_subset: usize::from(ctx.options.mirroring_max_endpoints_per_subset),
    });
    {
        let q = queue.clone();
        services.add_event_handler(None, move |event| match event {
            Event::Add(svc) if !has_selector(&svc) => q.add(key_of(svc.as_ref())),
            Event::Update { old, new } if has_selector(&old) != has_selector(&new) => {
                q.add(key_of(new.as_ref()))
            }
            Event::Delete(d) if !has_selector(d.object()) => q.add(key_of(d.object().as_ref())),
            _ => {}
        });
    }
    {
        let q = queue.clone();
        endpoints.add_event_handler(None, move |event| match event {
            Event::Add(ep) if should_mirror(&ep) => q.add(key_of(ep.as_ref())),
            Event::Update { old, new } if should_mirror(&old) || should_mirror(&new) => {
                q.add(key_of(new.as_ref()))
            }
            Event::Delete(d) if should_mirror(d.object()) => q.add(key_of(d.object().as_ref())),
            _ => {}
        });
    }
    {
        let q = queue.clone();
        let m = mirroring.clone();
        slices.add_event_handler(None, move |event| match event {
            Event::Add(slice) => {
                if let Some(key) = endpoints_key_of(&slice) {
                    if m.tracker.should_sync(&key, &slice) {
                        q.add(key);
                    }
                }
            }
            Event::Update { old, new } => {
                let (old_key, new_key) = (endpoints_key_of(&old), endpoints_key_of(&new));
                if old_key != new_key {
                    // A relabelled slice: both Endpoints objects may need a look.
                    for key in [old_key, new_key].into_iter().flatten() {
                        q.add(key);
                    }
                } else if let Some(key) = new_key {
                    if m.tracker.should_sync(&key, &new) {
                        q.add(key);
                    }
                }
            }
            Event::Delete(d) => {
                let slice = d.object();
                if let Some(key) = endpoints_key_of(slice) {
                    if !m.tracker.handle_deletion(&key, slice) {
                        q.add(key);
                    }
                }
            }
        });
    }
    let workers = usize::from(ctx.options.mirroring_concurrent_service_endpoint_syncs);
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        let synced = async {
            endpoints.wait_synced().await
                && services.wait_synced().await
                && slices.wait_synced().await
        };
        if !crate::framework::wait_for_caches(stop, synced).await {
            return;
        }
        run_workers(
            "endpointslice-mirroring-controller",
            queue,
            workers,
            move |key: String| {
                let m = mirroring.clone();
                async move { m.sync(&key).await }
            },
        );
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectReference, ServiceSpec};

    const NS: &str = "ns";

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-{name}")),
            ..ObjectMeta::default()
        }
    }

    fn service(selector: Option<&[(&str, &str)]>) -> Service {
        Service {
            metadata: meta("web"),
            spec: Some(ServiceSpec {
                selector: selector.map(|s| {
                    s.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                }),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn address(ip: &str) -> EndpointAddress {
        EndpointAddress {
            ip: ip.into(),
            ..EndpointAddress::default()
        }
    }

    fn port(name: &str, port: i32) -> EndpointPort {
        EndpointPort {
            name: Some(name.into()),
            port,
            protocol: Some("TCP".into()),
            app_protocol: None,
        }
    }

    fn subset(ready: &[&str], not_ready: &[&str], ports: &[(&str, i32)]) -> EndpointSubset {
        let list =
            |ips: &[&str]| (!ips.is_empty()).then(|| ips.iter().map(|ip| address(ip)).collect());
        EndpointSubset {
            addresses: list(ready),
            not_ready_addresses: list(not_ready),
            ports: (!ports.is_empty()).then(|| ports.iter().map(|(n, p)| port(n, *p)).collect()),
        }
    }

    fn endpoints(subsets: Vec<EndpointSubset>) -> Endpoints {
        Endpoints {
            metadata: meta("web"),
            subsets: Some(subsets),
        }
    }

    fn labelled(mut ep: Endpoints, key: &str, value: &str) -> Endpoints {
        ep.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        ep
    }

    fn annotated(mut ep: Endpoints, key: &str, value: &str) -> Endpoints {
        ep.metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        ep
    }

    /// `slice` as the apiserver would store it: a name, a UID and a resourceVersion.
    fn stored(mut slice: EndpointSlice, name: &str, rv: u64) -> Arc<EndpointSlice> {
        slice.metadata.generate_name = None;
        slice.metadata.name = Some(name.into());
        slice.metadata.uid = Some(format!("uid-{name}"));
        slice.metadata.resource_version = Some(rv.to_string());
        Arc::new(slice)
    }

    /// What a test compares of a slice: address type, ports, (address, ready) per endpoint.
    type Shape = (String, Vec<(String, i32)>, Vec<(String, bool)>);

    fn shape(slice: &EndpointSlice) -> Shape {
        let ports = slice
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone().unwrap_or_default(), p.port.unwrap_or(0)))
            .collect();
        let endpoints = slice
            .endpoints
            .iter()
            .map(|e| {
                let ready = e.conditions.as_ref().and_then(|c| c.ready);
                (e.addresses.join(","), ready == Some(true))
            })
            .collect();
        (slice.address_type.clone(), ports, endpoints)
    }

    fn want(family: &str, ports: &[(&str, i32)], endpoints: &[(&str, bool)]) -> Shape {
        (
            family.into(),
            ports.iter().map(|(n, p)| (n.to_string(), *p)).collect(),
            endpoints
                .iter()
                .map(|(ip, r)| (ip.to_string(), *r))
                .collect(),
        )
    }

    /// A mirrored slice made for `ep` by a first sync, as stored under `name`.
    fn mirrored(ep: &Endpoints, name: &str) -> Arc<EndpointSlice> {
        let outcome = compute(Some(ep), Some(&service(None)), &[], 1000);
        match outcome.plan.create.into_iter().next() {
            Some(slice) => stored(slice, name, 5),
            None => panic!("nothing to mirror for {ep:?}"),
        }
    }

    struct Case {
        name: &'static str,
        endpoints: Option<Endpoints>,
        service: Option<Service>,
        existing: Vec<Arc<EndpointSlice>>,
        max: usize,
        create: Vec<Shape>,
        /// (slice name, shape)
        update: Vec<(&'static str, Shape)>,
        delete: Vec<&'static str>,
        skipped: usize,
        invalid: usize,
    }

    impl Default for Case {
        fn default() -> Self {
            Case {
                name: "",
                endpoints: None,
                service: Some(service(None)),
                existing: Vec::new(),
                max: 1000,
                create: Vec::new(),
                update: Vec::new(),
                delete: Vec::new(),
                skipped: 0,
                invalid: 0,
            }
        }
    }

    #[test]
    fn endpoints_and_services_in_slices_out() {
        let http = [("http", 8080)];
        let basic = endpoints(vec![subset(
            &["10.0.0.2", "10.0.0.1"],
            &["10.0.0.3"],
            &http,
        )]);
        let basic_slice = mirrored(&basic, "web-abc");
        let cases = vec![
            Case {
                name: "a selector-less Service's Endpoints are mirrored, ready ones first",
                endpoints: Some(basic.clone()),
                create: vec![want(
                    "IPv4",
                    &http,
                    &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)],
                )],
                ..Case::default()
            },
            Case {
                name: "skip-mirror: true mirrors nothing and removes what was mirrored",
                endpoints: Some(labelled(basic.clone(), SKIP_MIRROR_LABEL, "true")),
                existing: vec![basic_slice.clone()],
                delete: vec!["web-abc"],
                ..Case::default()
            },
            Case {
                name: "skip-mirror: false still mirrors",
                endpoints: Some(labelled(basic.clone(), SKIP_MIRROR_LABEL, "false")),
                create: vec![want(
                    "IPv4",
                    &http,
                    &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)],
                )],
                ..Case::default()
            },
            Case {
                name: "a leader-election lock is not mirrored",
                endpoints: Some(annotated(basic.clone(), LEADER_ANNOTATION, "{}")),
                ..Case::default()
            },
            Case {
                name: "a Service with a selector: nothing, and old mirrors go",
                endpoints: Some(basic.clone()),
                service: Some(service(Some(&[("app", "web")]))),
                existing: vec![basic_slice.clone()],
                delete: vec!["web-abc"],
                ..Case::default()
            },
            Case {
                name: "an empty selector counts as none",
                endpoints: Some(basic.clone()),
                service: Some(service(Some(&[]))),
                create: vec![want(
                    "IPv4",
                    &http,
                    &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)],
                )],
                ..Case::default()
            },
            Case {
                name: "no Service: nothing, and old mirrors go",
                endpoints: Some(basic.clone()),
                service: None,
                existing: vec![basic_slice.clone()],
                delete: vec!["web-abc"],
                ..Case::default()
            },
            Case {
                name: "the Endpoints gone: old mirrors go",
                existing: vec![basic_slice.clone()],
                delete: vec!["web-abc"],
                ..Case::default()
            },
            Case {
                name: "more addresses than the maximum per subset: ready ones are kept",
                endpoints: Some(endpoints(vec![subset(
                    &["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
                    &["10.0.0.5", "10.0.0.6"],
                    &http,
                )])),
                max: 3,
                create: vec![want(
                    "IPv4",
                    &http,
                    &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", true)],
                )],
                skipped: 3,
                ..Case::default()
            },
            Case {
                name: "the maximum counts per subset, not per Endpoints",
                endpoints: Some(endpoints(vec![
                    subset(&["10.0.0.1", "10.0.0.2"], &[], &http),
                    subset(&["10.0.1.1", "10.0.1.2"], &["10.0.1.3"], &[("dns", 53)]),
                ])),
                max: 2,
                create: vec![
                    want(
                        "IPv4",
                        &[("dns", 53)],
                        &[("10.0.1.1", true), ("10.0.1.2", true)],
                    ),
                    want("IPv4", &http, &[("10.0.0.1", true), ("10.0.0.2", true)]),
                ],
                skipped: 1,
                ..Case::default()
            },
            Case {
                name: "each IP family gets its slice; IPs are parsed and re-printed",
                endpoints: Some(endpoints(vec![subset(
                    &[
                        "010.000.000.007",
                        "fd00:0:0::1",
                        "::ffff:10.0.0.9",
                        "not-an-ip",
                    ],
                    &[],
                    &http,
                )])),
                create: vec![
                    want("IPv4", &http, &[("10.0.0.7", true), ("10.0.0.9", true)]),
                    want("IPv6", &http, &[("fd00::1", true)]),
                ],
                skipped: 1,
                invalid: 1,
                ..Case::default()
            },
            Case {
                name: "subsets are repacked: not ready on a port wins, same ports share a slice",
                endpoints: Some(endpoints(vec![
                    subset(&["10.0.0.1", "10.0.0.2"], &[], &http),
                    subset(&["10.0.0.3"], &["10.0.0.1"], &http),
                ])),
                create: vec![want(
                    "IPv4",
                    &http,
                    &[("10.0.0.2", true), ("10.0.0.3", true), ("10.0.0.1", false)],
                )],
                ..Case::default()
            },
            Case {
                name: "a subset without ports is mirrored without ports",
                endpoints: Some(endpoints(vec![subset(&["10.0.0.1"], &[], &[])])),
                create: vec![want("IPv4", &[], &[("10.0.0.1", true)])],
                ..Case::default()
            },
            Case {
                name: "an up-to-date slice is left alone",
                endpoints: Some(basic.clone()),
                existing: vec![basic_slice.clone()],
                ..Case::default()
            },
            Case {
                name: "changed addresses rewrite the slice in place",
                endpoints: Some(endpoints(vec![subset(&["10.0.0.4"], &[], &http)])),
                existing: vec![basic_slice.clone()],
                update: vec![("web-abc", want("IPv4", &http, &[("10.0.0.4", true)]))],
                ..Case::default()
            },
            Case {
                name: "changed ports: the old slice is reused for the new ports",
                endpoints: Some(endpoints(vec![subset(
                    &["10.0.0.1"],
                    &[],
                    &[("http", 9090)],
                )])),
                existing: vec![basic_slice.clone()],
                update: vec![(
                    "web-abc",
                    want("IPv4", &[("http", 9090)], &[("10.0.0.1", true)]),
                )],
                ..Case::default()
            },
            Case {
                name: "new labels on the Endpoints rewrite the slice",
                endpoints: Some(labelled(basic.clone(), "team", "a")),
                existing: vec![basic_slice.clone()],
                update: vec![(
                    "web-abc",
                    want(
                        "IPv4",
                        &http,
                        &[("10.0.0.1", true), ("10.0.0.2", true), ("10.0.0.3", false)],
                    ),
                )],
                ..Case::default()
            },
            Case {
                name: "a duplicate slice for the same ports goes",
                endpoints: Some(basic.clone()),
                existing: vec![
                    basic_slice.clone(),
                    stored((*basic_slice).clone(), "web-xyz", 6),
                ],
                delete: vec!["web-xyz"],
                ..Case::default()
            },
            Case {
                name: "no addresses left: the slice goes",
                endpoints: Some(endpoints(vec![subset(&[], &[], &http)])),
                existing: vec![basic_slice.clone()],
                delete: vec!["web-abc"],
                ..Case::default()
            },
        ];
        for case in cases {
            let outcome = compute(
                case.endpoints.as_ref(),
                case.service.as_ref(),
                &case.existing,
                case.max,
            );
            let plan = &outcome.plan;
            let created: Vec<Shape> = plan.create.iter().map(shape).collect();
            assert_eq!(created, case.create, "{}: creates", case.name);
            let updated: Vec<(&str, Shape)> = plan
                .update
                .iter()
                .map(|s| (s.metadata.name.as_deref().unwrap_or(""), shape(s)))
                .collect();
            assert_eq!(updated, case.update, "{}: updates", case.name);
            let deleted: Vec<&str> = plan
                .delete
                .iter()
                .map(|s| s.metadata.name.as_deref().unwrap_or(""))
                .collect();
            assert_eq!(deleted, case.delete, "{}: deletes", case.name);
            assert_eq!(outcome.skipped, case.skipped, "{}: skipped", case.name);
            assert_eq!(outcome.invalid, case.invalid, "{}: invalid", case.name);
            for slice in &plan.update {
                assert_eq!(
                    slice.metadata.resource_version.as_deref(),
                    Some("5"),
                    "{}: updates are conditional on the cached version",
                    case.name
                );
            }
        }
    }

    #[test]
    fn mirrored_slices_carry_labels_annotations_owner_and_address_details() {
        let mut sub = subset(&[], &[], &[("http", 8080)]);
        sub.addresses = Some(vec![EndpointAddress {
            ip: "10.0.0.1".into(),
            hostname: Some("db-0".into()),
            node_name: Some("node-1".into()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some("db-0".into()),
                namespace: Some(NS.into()),
                uid: Some("pod-uid".into()),
                ..ObjectReference::default()
            }),
        }]);
        let mut ep = labelled(endpoints(vec![sub]), "team", "a");
        ep = labelled(ep, SERVICE_NAME_LABEL, "someone-else");
        ep = annotated(ep, "note", "x");
        ep = annotated(ep, TRIGGER_TIME, "2026-01-01T00:00:00Z");
        ep = annotated(ep, LAST_APPLIED, "{}");
        let outcome = compute(Some(&ep), Some(&service(None)), &[], 1000);
        assert!(outcome.mirrored);
        let [slice] = outcome.plan.create.as_slice() else {
            panic!("one slice expected: {:?}", outcome.plan);
        };
        assert_eq!(slice.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(slice.metadata.namespace.as_deref(), Some(NS));
        let labels = slice.metadata.labels.clone().unwrap_or_default();
        assert_eq!(
            labels,
            BTreeMap::from([
                ("team".to_string(), "a".to_string()),
                (SERVICE_NAME_LABEL.to_string(), "web".to_string()),
                (
                    MANAGED_BY_LABEL.to_string(),
                    MIRRORING_MANAGED_BY.to_string()
                ),
            ])
        );
        assert_eq!(
            slice.metadata.annotations,
            Some(BTreeMap::from([("note".to_string(), "x".to_string())])),
            "the trigger time and kubectl's last-applied configuration are not mirrored"
        );
        let owners = slice.metadata.owner_references.clone().unwrap_or_default();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].api_version.as_str(),
                owners[0].kind.as_str(),
                owners[0].name.as_str(),
                owners[0].uid.as_str(),
                owners[0].controller,
                owners[0].block_owner_deletion
            ),
            ("v1", "Endpoints", "web", "uid-web", Some(true), Some(true))
        );
        let endpoint = &slice.endpoints[0];
        assert_eq!(endpoint.hostname.as_deref(), Some("db-0"));
        assert_eq!(endpoint.node_name.as_deref(), Some("node-1"));
        assert_eq!(
            endpoint.target_ref.as_ref().and_then(|t| t.uid.as_deref()),
            Some("pod-uid")
        );
        assert_eq!(
            endpoint.conditions,
            Some(EndpointConditions {
                ready: Some(true),
                serving: None,
                terminating: None
            }),
            "only readiness is mirrored"
        );
        let port = slice.ports.clone().unwrap_or_default();
        assert_eq!(port[0].protocol.as_deref(), Some("TCP"));
        assert_eq!(port[0].name.as_deref(), Some("http"));
    }

    #[test]
    fn tracker_reports_a_cache_behind_its_own_writes() {
        let ep = endpoints(vec![subset(&["10.0.0.1"], &[], &[("http", 80)])]);
        let key = "ns/web";
        let tracker = SliceTracker::default();
        let v7 = stored((*mirrored(&ep, "web-a")).clone(), "web-a", 7);
        assert!(
            !tracker.stale(key, &[]),
            "nothing written: nothing to wait for"
        );
        tracker.written(key, &v7);
        assert!(
            tracker.stale(key, &[]),
            "a created slice not yet in the cache"
        );
        let v6 = stored((*v7).clone(), "web-a", 6);
        assert!(
            tracker.stale(key, std::slice::from_ref(&v6)),
            "an older version cached"
        );
        assert!(!tracker.stale(key, std::slice::from_ref(&v7)));
        assert!(!tracker.should_sync(key, &v7), "our own write is no news");
        let v8 = stored((*v7).clone(), "web-a", 8);
        assert!(tracker.should_sync(key, &v8), "someone else's write is");
        tracker.expect_deletion(key, &v7);
        assert!(
            tracker.stale(key, std::slice::from_ref(&v7)),
            "a deleted slice still cached"
        );
        assert!(!tracker.stale(key, &[]));
        assert!(tracker.handle_deletion(key, &v7), "the deletion was ours");
        tracker.written(key, &v8);
        assert!(
            !tracker.handle_deletion(key, &v8),
            "a deletion by someone else"
        );
        tracker.written(key, &v8);
        tracker.forget(key);
        assert!(!tracker.stale(key, &[]));
    }

    #[test]
    fn sloppy_ip_parsing_matches_go() {
        let cases = [
            ("10.0.0.1", Some("10.0.0.1")),
            ("010.001.000.255", Some("10.1.0.255")),
            ("10.0.0.256", None),
            ("::ffff:192.168.0.1", Some("192.168.0.1")),
            ("FD00:0:0:0:0:0:0:1", Some("fd00::1")),
            ("10.0.0", None),
            ("", None),
            ("host.example", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_ip_sloppy(text).map(|ip| ip.to_string()).as_deref(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn flags_have_upstream_names_defaults_and_bounds() {
        use clap::Parser;
        let parse = |args: &[&str]| {
            crate::options::Options::try_parse_from(
                std::iter::once("kube-controller-manager").chain(args.iter().copied()),
            )
        };
        let Ok(defaults) = parse(&[]) else {
            panic!("the defaults parse");
        };
        assert_eq!(defaults.mirroring_concurrent_service_endpoint_syncs, 5);
        assert_eq!(defaults.mirroring_max_endpoints_per_subset, 1000);
        let Ok(set) = parse(&[
            "--mirroring-concurrent-service-endpoint-syncs=50",
            "--mirroring-max-endpoints-per-subset=1",
        ]) else {
            panic!("in-range values parse");
        };
        assert_eq!(set.mirroring_concurrent_service_endpoint_syncs, 50);
        assert_eq!(set.mirroring_max_endpoints_per_subset, 1);
        for bad in [
            "--mirroring-concurrent-service-endpoint-syncs=0",
            "--mirroring-concurrent-service-endpoint-syncs=51",
            "--mirroring-max-endpoints-per-subset=0",
            "--mirroring-max-endpoints-per-subset=1001",
        ] {
            assert!(parse(&[bad]).is_err(), "{bad} is out of upstream's bounds");
        }
    }
}
