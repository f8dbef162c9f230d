//! The Endpoints and EndpointSlice controllers: for every Service with a selector, the pods it
//! selects become its Endpoints object (named after the Service) and its EndpointSlices
//! (`kubernetes.io/service-name=<svc>`, owned by the Service, at most `--max-endpoints-per-slice`
//! endpoints each), as upstream's `pkg/controller/endpoint` and `endpointslice` do:
//!
//! - a pod counts once it has an IP and is not terminal; Endpoints leave terminating pods out,
//!   slices keep them with `terminating: true`, `serving` from readiness and `ready: false`;
//! - not-ready pods go to `notReadyAddresses` (slices: `ready: false`), unless the Service has
//!   `publishNotReadyAddresses`;
//! - named target ports resolve against each pod's container ports (a pod without the port is
//!   left out of that port), so pods may differ: Endpoints subsets and slices are grouped by the
//!   set of ports they resolve to;
//! - `hostname` is set for pods whose `spec.subdomain` is the Service's name;
//! - headless Services get the `service.kubernetes.io/headless` label on their Endpoints;
//! - both carry `endpoints.kubernetes.io/last-change-trigger-time` (kube-proxy measures network
//!   programming latency from it);
//! - Services without a selector are left alone (their Endpoints are the user's; the
//!   `endpointslicemirroring` module mirrors those into slices).
//!
//! Simplified against upstream: slices are re-packed in endpoint order on every change (upstream
//! minimises churn by filling existing slices first), and only the pod IP family of each pod
//! decides the slice's address type.

use std::collections::BTreeMap;
use std::sync::Arc;

use apimachinery::LabelSelector;
use client::informer::store::{namespace_indexer, NAMESPACE_INDEX};
use client::informer::{Event, Scope};
use client::{Api, Informer};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointPort as SlicePort, EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use workqueue::Queue;

use crate::framework::{
    new_controller_ref, run_workers, stop_queue_on_shutdown, ControllerContext,
};

pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
pub(crate) const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
const SLICE_INDEX: &str = "service-name";

/// The Service's selector, when it has one (an empty or missing selector means "not managed").
pub(crate) fn selector_of(svc: &Service) -> Option<LabelSelector> {
    let selector = svc.spec.as_ref()?.selector.as_ref()?;
    if selector.is_empty() {
        return None;
    }
    Some(LabelSelector::from_set(
        selector.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    ))
}

fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.labels.clone().unwrap_or_default()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .pod_ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| status.pod_ips.as_ref()?.first().map(|p| p.ip.clone()))
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// The port a Service port reaches on `pod`, or `None` when a named port is missing there.
fn resolve_target_port(port: &k8s_openapi::api::core::v1::ServicePort, pod: &Pod) -> Option<i32> {
    let protocol = port.protocol.as_deref().unwrap_or("TCP");
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            if let Ok(n) = name.parse::<i32>() {
                return Some(n);
            }
            pod.spec
                .as_ref()?
                .containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
    }
}

/// One pod as an endpoint of `svc`: its address, readiness, and resolved ports.
#[derive(Clone, Debug, PartialEq)]
struct PodEndpoint {
    ip: String,
    ready: bool,
    serving: bool,
    terminating: bool,
    hostname: Option<String>,
    node_name: Option<String>,
    target: ObjectReference,
    ports: Vec<EndpointPort>,
}

fn pod_endpoints(svc: &Service, pods: &[Arc<Pod>]) -> Vec<PodEndpoint> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for pod in pods {
        let Some(ip) = pod_ip(pod) else { continue };
        if terminal(pod) {
            continue;
        }
        let mut ports = Vec::new();
        for port in spec.ports.iter().flatten() {
            if let Some(target) = resolve_target_port(port, pod) {
                ports.push(EndpointPort {
                    name: port.name.clone().filter(|n| !n.is_empty()),
                    port: target,
                    protocol: Some(port.protocol.clone().unwrap_or_else(|| "TCP".into())),
                    app_protocol: port.app_protocol.clone(),
                });
            }
        }
        // A pod that resolves none of several ports serves nothing of this Service.
        if ports.is_empty() && spec.ports.as_ref().is_some_and(|p| !p.is_empty()) {
            continue;
        }
        ports.sort_by(|a, b| (&a.name, a.port).cmp(&(&b.name, b.port)));
        let pod_spec = pod.spec.clone().unwrap_or_default();
        let hostname = match (&pod_spec.hostname, &pod_spec.subdomain) {
            (Some(h), Some(sub)) if !h.is_empty() && *sub == svc_name => Some(h.clone()),
            _ => None,
        };
        let ready = pod_ready(pod);
        out.push(PodEndpoint {
            ip,
            ready: publish_not_ready || ready,
            serving: publish_not_ready || ready,
            terminating: pod.metadata.deletion_timestamp.is_some(),
            hostname,
            node_name: pod_spec.node_name.clone(),
            target: ObjectReference {
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            },
            ports,
        });
    }
    out.sort_by(|a, b| (&a.ip, &a.target.name).cmp(&(&b.ip, &b.target.name)));
    out
}

fn ports_key(ports: &[EndpointPort]) -> String {
    ports
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}",
                p.name.as_deref().unwrap_or(""),
                p.port,
                p.protocol.as_deref().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The Endpoints subsets for `svc` (upstream's `RepackSubsets`: one subset per distinct port
/// set, ready and not-ready addresses sorted by IP). Terminating pods are left out.
pub(crate) fn endpoint_subsets(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let mut groups: BTreeMap<String, EndpointSubset> = BTreeMap::new();
    for ep in pod_endpoints(svc, pods) {
        if ep.terminating {
            continue;
        }
        let subset = groups
            .entry(ports_key(&ep.ports))
            .or_insert_with(|| EndpointSubset {
                ports: (!ep.ports.is_empty()).then(|| ep.ports.clone()),
                ..EndpointSubset::default()
            });
        let address = EndpointAddress {
            ip: ep.ip.clone(),
            hostname: ep.hostname.clone(),
            node_name: ep.node_name.clone(),
            target_ref: Some(ep.target.clone()),
        };
        let list = if ep.ready {
            subset.addresses.get_or_insert_with(Vec::new)
        } else {
            subset.not_ready_addresses.get_or_insert_with(Vec::new)
        };
        list.push(address);
    }
    groups.into_values().collect()
}

/// The desired slices' contents for `svc`: (address type, ports, endpoints) per slice.
pub(crate) fn desired_slices(
    svc: &Service,
    pods: &[Arc<Pod>],
    max_per_slice: usize,
) -> Vec<(String, Vec<SlicePort>, Vec<Endpoint>)> {
    let mut groups: BTreeMap<(String, String), (Vec<SlicePort>, Vec<Endpoint>)> = BTreeMap::new();
    for ep in pod_endpoints(svc, pods) {
        let family = if ep.ip.contains(':') { "IPv6" } else { "IPv4" };
        let ports: Vec<SlicePort> = ep
            .ports
            .iter()
            .map(|p| SlicePort {
                name: Some(p.name.clone().unwrap_or_default()),
                port: Some(p.port),
                protocol: p.protocol.clone(),
                app_protocol: p.app_protocol.clone(),
            })
            .collect();
        let entry = groups
            .entry((family.to_string(), ports_key(&ep.ports)))
            .or_insert_with(|| (ports, Vec::new()));
        entry.1.push(Endpoint {
            addresses: vec![ep.ip.clone()],
            conditions: Some(EndpointConditions {
                ready: Some(ep.ready && !ep.terminating),
                serving: Some(ep.serving),
                terminating: Some(ep.terminating),
            }),
            hostname: ep.hostname.clone(),
            node_name: ep.node_name.clone(),
            target_ref: Some(ep.target.clone()),
            ..Endpoint::default()
        });
    }
    let mut out = Vec::new();
    for ((family, _), (ports, endpoints)) in groups {
        for chunk in endpoints.chunks(max_per_slice.max(1)) {
            out.push((family.clone(), ports.clone(), chunk.to_vec()));
        }
    }
    out
}

fn now_rfc3339() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Shared by both controllers: services, pods by namespace, and the queue fed by both.
struct Watched {
    services: Informer<Service>,
    pods: Informer<Pod>,
    queue: Queue<String>,
}

fn watch_services_and_pods(ctx: &ControllerContext, queue_name: &str) -> Watched {
    let queue: Queue<String> = Queue::new(queue_name);
    stop_queue_on_shutdown(ctx, queue.clone());
    let services = ctx.factory.informer::<Service>();
    services.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    let pods = ctx.factory.informer::<Pod>();
    pods.add_indexer(NAMESPACE_INDEX, namespace_indexer());
    {
        let q = queue.clone();
        services.add_event_handler(None, move |event| {
            let svc = match &event {
                Event::Add(s) | Event::Update { new: s, .. } => s.clone(),
                Event::Delete(d) => d.object().clone(),
            };
            q.add(crate::framework::key_of(svc.as_ref()));
        });
    }
    {
        let q = queue.clone();
        let services = services.clone();
        pods.add_event_handler(None, move |event| {
            let (old, new) = match &event {
                Event::Add(p) => (None, Some(p.clone())),
                Event::Update { old, new } => (Some(old.clone()), Some(new.clone())),
                Event::Delete(d) => (Some(d.object().clone()), None),
            };
            let Some(ns) = new
                .as_ref()
                .or(old.as_ref())
                .and_then(|p| p.metadata.namespace.clone())
            else {
                return;
            };
            for svc in services.store().by_index(NAMESPACE_INDEX, &ns) {
                let Some(selector) = selector_of(&svc) else {
                    continue;
                };
                let hit = [&old, &new]
                    .iter()
                    .any(|p| p.as_ref().is_some_and(|p| selector.matches(&pod_labels(p))));
                if hit {
                    q.add(crate::framework::key_of(svc.as_ref()));
                }
            }
        });
    }
    Watched {
        services,
        pods,
        queue,
    }
}

fn selected_pods(pods: &Informer<Pod>, ns: &str, selector: &LabelSelector) -> Vec<Arc<Pod>> {
    pods.store()
        .by_index(NAMESPACE_INDEX, ns)
        .into_iter()
        .filter(|p| selector.matches(&pod_labels(p)))
        .collect()
}

pub fn start_endpoints(ctx: &ControllerContext) -> anyhow::Result<()> {
    let watched = watch_services_and_pods(ctx, "endpoint");
    let endpoints = ctx.factory.informer::<Endpoints>();
    {
        // A deleted Endpoints object of a selected Service comes back.
        let q = watched.queue.clone();
        endpoints.add_event_handler(None, move |event| {
            if let Event::Delete(d) = event {
                q.add(crate::framework::key_of(d.object().as_ref()));
            }
        });
    }
    let client = ctx.client.clone();
    let Watched {
        services,
        pods,
        queue,
    } = watched;
    run_workers(
        "endpoints-controller",
        queue,
        ctx.options.concurrent_endpoint_syncs,
        move |key: String| {
            let (client, services, pods, endpoints) = (
                client.clone(),
                services.clone(),
                pods.clone(),
                endpoints.clone(),
            );
            async move {
                let (ns, name) = client::informer::store::split_key(&key);
                let ns = ns.unwrap_or("default").to_string();
                let api: Api<Endpoints> = client.api(Some(&ns));
                let Some(svc) = services.store().get(&key) else {
                    // The Service is gone: so is its Endpoints object.
                    return match api.delete(name, &Default::default()).await {
                        Err(err) if !err.is_not_found() => Err(err.into()),
                        _ => Ok(()),
                    };
                };
                let Some(selector) = selector_of(&svc) else {
                    return Ok(());
                };
                let subsets = endpoint_subsets(&svc, &selected_pods(&pods, &ns, &selector));
                let mut labels = svc.metadata.labels.clone().unwrap_or_default();
                if svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None") {
                    labels.insert(HEADLESS_LABEL.into(), String::new());
                } else {
                    labels.remove(HEADLESS_LABEL);
                }
                let current = endpoints.store().get(&key);
                let unchanged = current.as_ref().is_some_and(|cur| {
                    cur.subsets.clone().unwrap_or_default() == subsets
                        && cur.metadata.labels.clone().unwrap_or_default() == labels
                });
                if unchanged {
                    return Ok(());
                }
                let mut annotations = current
                    .as_ref()
                    .and_then(|c| c.metadata.annotations.clone())
                    .unwrap_or_default();
                annotations.insert(TRIGGER_TIME.into(), now_rfc3339());
                let desired = Endpoints {
                    metadata: ObjectMeta {
                        name: Some(name.to_string()),
                        namespace: Some(ns.clone()),
                        labels: Some(labels),
                        annotations: Some(annotations),
                        resource_version: current
                            .as_ref()
                            .and_then(|c| c.metadata.resource_version.clone()),
                        ..ObjectMeta::default()
                    },
                    subsets: (!subsets.is_empty()).then_some(subsets),
                };
                let result = match current {
                    Some(_) => api.replace(name, &desired).await.map(|_| ()),
                    None => api.create(&desired).await.map(|_| ()),
                };
                match result {
                    // A stale cache: the next event brings this key back.
                    Err(err) if err.is_conflict() || err.is_already_exists() => Err(err.into()),
                    // The namespace is going away.
                    Err(err) if err.is_forbidden() || err.is_not_found() => Ok(()),
                    other => other.map_err(Into::into),
                }
            }
        },
    );
    Ok(())
}

pub fn start_endpointslices(ctx: &ControllerContext) -> anyhow::Result<()> {
    let watched = watch_services_and_pods(ctx, "endpoint_slice");
    let slices = ctx.factory.informer_for::<EndpointSlice>(
        Scope::all().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}")),
    );
    slices.add_indexer(
        SLICE_INDEX,
        Arc::new(|s: &EndpointSlice| {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            s.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(|svc| vec![format!("{ns}/{svc}")])
                .unwrap_or_default()
        }),
    );
    {
        let q = watched.queue.clone();
        slices.add_event_handler(None, move |event| {
            let slice = match &event {
                Event::Add(s) | Event::Update { new: s, .. } => s.clone(),
                Event::Delete(d) => d.object().clone(),
            };
            let ns = slice.metadata.namespace.clone().unwrap_or_default();
            if let Some(svc) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                q.add(format!("{ns}/{svc}"));
            }
        });
    }
    let client = ctx.client.clone();
    let max = ctx.options.max_endpoints_per_slice.max(1);
    let Watched {
        services,
        pods,
        queue,
    } = watched;
    run_workers(
        "endpointslice-controller",
        queue,
        ctx.options.concurrent_service_endpoint_syncs,
        move |key: String| {
            let (client, services, pods, slices) = (
                client.clone(),
                services.clone(),
                pods.clone(),
                slices.clone(),
            );
            async move {
                let (ns, _) = client::informer::store::split_key(&key);
                let ns = ns.unwrap_or("default").to_string();
                // A deleted Service's slices go with it through their owner reference (GC).
                let Some(svc) = services.store().get(&key) else {
                    return Ok(());
                };
                let Some(selector) = selector_of(&svc) else {
                    return Ok(());
                };
                let desired = desired_slices(&svc, &selected_pods(&pods, &ns, &selector), max);
                let mut existing = slices.store().by_index(SLICE_INDEX, &key);
                existing.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
                sync_slices(&client, &svc, &ns, desired, existing).await
            }
        },
    );
    Ok(())
}

/// Writes the desired slices over the existing ones: same-shaped slices are reused in order
/// (updated only when their endpoints differ), the rest created or deleted.
async fn sync_slices(
    client: &client::Client,
    svc: &Service,
    ns: &str,
    desired: Vec<(String, Vec<SlicePort>, Vec<Endpoint>)>,
    existing: Vec<Arc<EndpointSlice>>,
) -> anyhow::Result<()> {
    let api: Api<EndpointSlice> = client.api(Some(ns));
    let svc_name = svc.metadata.name.clone().unwrap_or_default();
    let mut labels = svc.metadata.labels.clone().unwrap_or_default();
    labels.insert(SERVICE_NAME_LABEL.into(), svc_name.clone());
    labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
    let mut unused: Vec<Arc<EndpointSlice>> = existing;
    for (family, ports, endpoints) in desired {
        let shape = |s: &EndpointSlice| {
            s.address_type == family && s.ports.clone().unwrap_or_default() == ports
        };
        let reuse = unused.iter().position(|s| shape(s));
        match reuse.map(|i| unused.remove(i)) {
            Some(current)
                if current.endpoints == endpoints
                    && current.metadata.labels.as_ref() == Some(&labels) => {}
            Some(current) => {
                let mut updated = (*current).clone();
                updated.endpoints = endpoints;
                updated.metadata.labels = Some(labels.clone());
                updated
                    .metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(TRIGGER_TIME.into(), now_rfc3339());
                let name = updated.metadata.name.clone().unwrap_or_default();
                api.replace(&name, &updated).await?;
            }
            None => {
                let slice = EndpointSlice {
                    metadata: ObjectMeta {
                        generate_name: Some(format!("{svc_name}-")),
                        namespace: Some(ns.to_string()),
                        labels: Some(labels.clone()),
                        annotations: Some(BTreeMap::from([(
                            TRIGGER_TIME.to_string(),
                            now_rfc3339(),
                        )])),
                        owner_references: Some(vec![new_controller_ref(svc)]),
                        ..ObjectMeta::default()
                    },
                    address_type: family,
                    endpoints,
                    ports: Some(ports),
                };
                match api.create(&slice).await {
                    Ok(_) => {}
                    Err(err) if err.is_forbidden() || err.is_not_found() => return Ok(()),
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }
    // Upstream keeps one (empty) slice for a Service with no endpoints; extra ones go.
    let keep_one_empty =
        unused.len() == 1 && unused.first().is_some_and(|s| s.endpoints.is_empty());
    if !keep_one_empty {
        for slice in unused {
            let name = slice.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &Default::default()).await {
                Err(err) if !err.is_not_found() => return Err(err.into()),
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodSpec, PodStatus, ServicePort, ServiceSpec,
    };

    fn svc(ports: Vec<ServicePort>, publish_not_ready: bool) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".into(), "web".into())])),
                ports: Some(ports),
                publish_not_ready_addresses: Some(publish_not_ready),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        }
    }

    fn port(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            target_port: Some(target),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool, http_port: Option<i32>) -> Arc<Pod> {
        Arc::new(Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".into(), "web".into())])),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: http_port.map(|p| {
                        vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: p,
                            ..ContainerPort::default()
                        }]
                    }),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: ip.map(str::to_string),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        })
    }

    fn ips(list: &Option<Vec<EndpointAddress>>) -> Vec<String> {
        list.iter().flatten().map(|a| a.ip.clone()).collect()
    }

    #[test]
    fn subsets_split_ready_from_not_ready_and_group_by_resolved_ports() {
        let s = svc(
            vec![port("http", 80, IntOrString::String("http".into()))],
            false,
        );
        let pods = vec![
            pod("a", Some("10.0.0.2"), true, Some(8080)),
            pod("b", Some("10.0.0.1"), false, Some(8080)),
            pod("c", Some("10.0.0.3"), true, Some(9090)),
            pod("no-ip", None, true, Some(8080)),
            pod("no-port", Some("10.0.0.9"), true, None),
        ];
        let subsets = endpoint_subsets(&s, &pods);
        assert_eq!(subsets.len(), 2, "{subsets:?}");
        let by_port: BTreeMap<i32, &EndpointSubset> = subsets
            .iter()
            .map(|s| {
                (
                    s.ports
                        .as_ref()
                        .and_then(|p| p.first())
                        .map(|p| p.port)
                        .unwrap_or(0),
                    s,
                )
            })
            .collect();
        assert_eq!(ips(&by_port[&8080].addresses), ["10.0.0.2"]);
        assert_eq!(ips(&by_port[&8080].not_ready_addresses), ["10.0.0.1"]);
        assert_eq!(ips(&by_port[&9090].addresses), ["10.0.0.3"]);
        let target = by_port[&8080]
            .addresses
            .as_ref()
            .and_then(|a| a.first())
            .and_then(|a| a.target_ref.clone());
        assert_eq!(target.and_then(|t| t.name).as_deref(), Some("a"));
    }

    #[test]
    fn publish_not_ready_and_terminal_and_terminating_pods() {
        let s = svc(vec![port("http", 80, IntOrString::Int(8080))], true);
        let mut done = (*pod("done", Some("10.0.0.5"), true, None)).clone();
        if let Some(st) = done.status.as_mut() {
            st.phase = Some("Succeeded".into());
        }
        let mut leaving = (*pod("leaving", Some("10.0.0.6"), true, None)).clone();
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        let pods = vec![
            pod("b", Some("10.0.0.1"), false, None),
            Arc::new(done),
            Arc::new(leaving),
        ];
        let subsets = endpoint_subsets(&s, &pods);
        assert_eq!(subsets.len(), 1);
        assert_eq!(
            ips(&subsets[0].addresses),
            ["10.0.0.1"],
            "publishNotReadyAddresses makes it ready"
        );
        let slices = desired_slices(&s, &pods, 100);
        assert_eq!(slices.len(), 1);
        let endpoints = &slices[0].2;
        assert_eq!(endpoints.len(), 2, "slices keep terminating pods");
        let leaving = endpoints
            .iter()
            .find(|e| e.addresses == ["10.0.0.6"])
            .and_then(|e| e.conditions.clone());
        assert_eq!(
            leaving,
            Some(EndpointConditions {
                ready: Some(false),
                serving: Some(true),
                terminating: Some(true)
            })
        );
    }

    #[test]
    fn slices_hold_at_most_the_maximum() {
        let s = svc(vec![port("http", 80, IntOrString::Int(8080))], false);
        let pods: Vec<Arc<Pod>> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i}"),
                    Some(&format!("10.0.{}.{}", i / 200, i % 200 + 1)),
                    true,
                    None,
                )
            })
            .collect();
        let slices = desired_slices(&s, &pods, 100);
        let sizes: Vec<usize> = slices.iter().map(|s| s.2.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        assert!(slices.iter().all(|s| s.0 == "IPv4"));
        assert_eq!(slices[0].1.first().and_then(|p| p.port), Some(8080));
    }

    #[test]
    fn services_without_selectors_are_not_managed() {
        let mut s = svc(vec![], false);
        if let Some(spec) = s.spec.as_mut() {
            spec.selector = Some(BTreeMap::new());
        }
        assert!(selector_of(&s).is_none());
    }
}
