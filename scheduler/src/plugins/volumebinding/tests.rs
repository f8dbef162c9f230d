//! VolumeBinding: claims and volumes in, statuses (code + reasons), assumptions and API
//! writes out. Cases follow upstream's `volume_binding_test.go` and `binder_test.go`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde_json::{json, Value};

use super::binder::VolumeApi;
use super::listers::VolumeListers;
use super::storage::{ANN_BIND_COMPLETED, ANN_SELECTED_NODE};
use super::testing::*;
use super::*;
use crate::framework::{Code, CycleState, Snapshot};

const WFFC: &str = "WaitForFirstConsumer";
const IMMEDIATE: &str = "Immediate";
const NO_PROVISIONER: &str = "kubernetes.io/no-provisioner";

fn zone_terms(zone: &str) -> Value {
    json!([{"matchExpressions": [{"key": "zone", "operator": "In", "values": [zone]}]}])
}

fn hostname_terms(host: &str) -> Value {
    json!([{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [host]}]}])
}

fn plugin(f: &Fixture) -> VolumeBinding {
    VolumeBinding::with_listers(f.listers.clone(), Duration::from_secs(600), None)
}

struct Case {
    name: &'static str,
    pod: k8s_openapi::api::core::v1::Pod,
    fixture: Fixture,
    /// PreFilter's code and reasons.
    pre_filter: (Code, Vec<&'static str>),
    pre_filter_nodes: Option<Vec<&'static str>>,
    /// Filter on node-a (zone a) when PreFilter succeeded.
    filter: (Code, Vec<&'static str>),
}

fn ok() -> (Code, Vec<&'static str>) {
    (Code::Success, vec![])
}

fn unresolvable(reasons: &[&'static str]) -> (Code, Vec<&'static str>) {
    (Code::UnschedulableAndUnresolvable, reasons.to_vec())
}

#[test]
fn pre_filter_and_filter() {
    let node_a = node(
        "node-a",
        json!({"zone": "a", "kubernetes.io/hostname": "node-a"}),
    );
    let cases = vec![
        Case {
            name: "pod without claims skips",
            pod: pod_with_claims("p", &[]),
            fixture: Fixture::new(),
            pre_filter: (Code::Skip, vec![]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "all bound",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "", Some("pv-a")))
                .pv(bound_pv("pv-a", "pvc-a", None)),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "missing claim",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new(),
            pre_filter: unresolvable(&["persistentvolumeclaim \"pvc-a\" not found"]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "unbound immediate claim",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "immediate", None))
                .class(class("immediate", IMMEDIATE, "example.com/csi")),
            pre_filter: unresolvable(&["pod has unbound immediate PersistentVolumeClaims"]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "claim without class is immediate",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new().pvc(pvc("pvc-a", "", None)),
            pre_filter: unresolvable(&["pod has unbound immediate PersistentVolumeClaims"]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "bound volume in another zone",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "", Some("pv-a")))
                .pv(bound_pv("pv-a", "pvc-a", Some(zone_terms("b")))),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) had volume node affinity conflict"]),
        },
        Case {
            name: "bound to a volume that does not exist",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new().pvc(pvc("pvc-a", "", Some("pv-gone"))),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&[
                "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)",
            ]),
        },
        Case {
            name: "local volume pins the pod to its node",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "", Some("pv-a")))
                .pv(bound_pv("pv-a", "pvc-a", Some(hostname_terms("node-a")))),
            pre_filter: ok(),
            pre_filter_nodes: Some(vec!["node-a"]),
            filter: ok(),
        },
        Case {
            name: "delayed claim without a volume and no provisioner",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "local", None))
                .class(class("local", WFFC, NO_PROVISIONER)),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) didn't find available persistent volumes to bind"]),
        },
        Case {
            name: "delayed claim with a matching volume",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "local", None))
                .class(class("local", WFFC, NO_PROVISIONER))
                .pv(pv("pv-a", "local", "5Gi", Some(zone_terms("a")))),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "delayed claim whose only volume is in another zone",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "local", None))
                .class(class("local", WFFC, NO_PROVISIONER))
                .pv(pv("pv-b", "local", "5Gi", Some(zone_terms("b")))),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) didn't find available persistent volumes to bind"]),
        },
        Case {
            name: "delayed claim with dynamic provisioning",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "fast", None))
                .class(class("fast", WFFC, "example.com/csi")),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "provisioning outside the class's allowed topologies",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new().pvc(pvc("pvc-a", "fast", None)).json(
                |l| &l.classes,
                json!({"metadata": {"name": "fast"}, "provisioner": "example.com/csi",
                       "volumeBindingMode": WFFC,
                       "allowedTopologies": [{"matchLabelExpressions": [
                           {"key": "zone", "values": ["b"]}]}]}),
            ),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) didn't find available persistent volumes to bind"]),
        },
        Case {
            name: "provisioning already requested on another node",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: {
                let mut c = pvc("pvc-a", "fast", None);
                c.metadata.annotations =
                    Some([(ANN_SELECTED_NODE.to_string(), "node-b".to_string())].into());
                Fixture::new()
                    .pvc(c)
                    .class(class("fast", WFFC, "example.com/csi"))
            },
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) didn't find available persistent volumes to bind"]),
        },
        Case {
            name: "driver tracks capacity and none is reachable",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "fast", None))
                .class(class("fast", WFFC, "example.com/csi"))
                .json(
                    |l| &l.csi_drivers,
                    json!({"metadata": {"name": "example.com/csi"},
                           "spec": {"storageCapacity": true}}),
                )
                .json(
                    |l| &l.capacities,
                    json!({"metadata": {"name": "cap-b", "namespace": "kube-system"},
                           "storageClassName": "fast", "capacity": "100Gi",
                           "nodeTopology": {"matchLabels": {"zone": "b"}}}),
                ),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: unresolvable(&["node(s) did not have enough free storage"]),
        },
        Case {
            name: "driver tracks capacity and the node's pool has room",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: Fixture::new()
                .pvc(pvc("pvc-a", "fast", None))
                .class(class("fast", WFFC, "example.com/csi"))
                .json(
                    |l| &l.csi_drivers,
                    json!({"metadata": {"name": "example.com/csi"},
                           "spec": {"storageCapacity": true}}),
                )
                .json(
                    |l| &l.capacities,
                    json!({"metadata": {"name": "cap-a", "namespace": "kube-system"},
                           "storageClassName": "fast", "capacity": "100Gi",
                           "maximumVolumeSize": "2Gi",
                           "nodeTopology": {"matchLabels": {"zone": "a"}}}),
                ),
            pre_filter: ok(),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "ephemeral claim not created yet",
            pod: from(json!({
                "metadata": {"name": "p", "namespace": "ns", "uid": "uid-p"},
                "spec": {"containers": [{"name": "c"}], "volumes": [
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {
                        "spec": {"accessModes": ["ReadWriteOnce"]}}}}]},
            })),
            fixture: Fixture::new(),
            pre_filter: unresolvable(&[
                "waiting for ephemeral volume controller to create the persistentvolumeclaim \"p-scratch\"",
            ]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "ephemeral claim owned by another pod",
            pod: from(json!({
                "metadata": {"name": "p", "namespace": "ns", "uid": "uid-p"},
                "spec": {"containers": [{"name": "c"}], "volumes": [
                    {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {
                        "spec": {"accessModes": ["ReadWriteOnce"]}}}}]},
            })),
            fixture: Fixture::new().pvc(pvc("p-scratch", "", Some("pv-a"))),
            pre_filter: unresolvable(&[
                "PVC ns/p-scratch was not created for pod ns/p (pod is not owner)",
            ]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "claim being deleted",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: {
                let mut c = pvc("pvc-a", "", Some("pv-a"));
                c.metadata.deletion_timestamp = from(json!("2024-01-01T00:00:00Z"));
                Fixture::new().pvc(c)
            },
            pre_filter: unresolvable(&["persistentvolumeclaim \"pvc-a\" is being deleted"]),
            pre_filter_nodes: None,
            filter: ok(),
        },
        Case {
            name: "claim lost its volume",
            pod: pod_with_claims("p", &["pvc-a"]),
            fixture: {
                let mut c = pvc("pvc-a", "", Some("pv-a"));
                if let Some(s) = c.status.as_mut() {
                    s.phase = Some("Lost".into());
                }
                Fixture::new().pvc(c)
            },
            pre_filter: unresolvable(&[
                "persistentvolumeclaim \"pvc-a\" bound to non-existent persistentvolume \"pv-a\"",
            ]),
            pre_filter_nodes: None,
            filter: ok(),
        },
    ];
    for case in cases {
        let pl = plugin(&case.fixture);
        let pod = pod_info(case.pod);
        let mut state = CycleState::new();
        let (result, status) =
            PreFilterPlugin::pre_filter(&pl, &mut state, &pod, &Snapshot::default());
        assert_eq!(
            status.code(),
            case.pre_filter.0,
            "{}: PreFilter {status:?}",
            case.name
        );
        assert_eq!(
            status.reasons(),
            case.pre_filter.1.as_slice(),
            "{}",
            case.name
        );
        let nodes = result.and_then(|r| r.node_names);
        let want: Option<HashSet<String>> = case
            .pre_filter_nodes
            .map(|n| n.into_iter().map(String::from).collect());
        assert_eq!(nodes, want, "{}: PreFilterResult", case.name);
        if status.code() != Code::Success {
            continue;
        }
        let status = FilterPlugin::filter(&pl, &state, &pod, &node_info(node_a.clone()));
        assert_eq!(
            status.code(),
            case.filter.0,
            "{}: Filter {status:?}",
            case.name
        );
        assert_eq!(status.reasons(), case.filter.1.as_slice(), "{}", case.name);
    }
}

#[test]
fn claims_choose_the_smallest_volumes_without_sharing() {
    let f = Fixture::new()
        .pvc({
            let mut c = pvc("big", "local", None);
            if let Some(s) = c.spec.as_mut() {
                s.resources = Some(from(json!({"requests": {"storage": "8Gi"}})));
            }
            c
        })
        .pvc(pvc("small", "local", None))
        .class(class("local", WFFC, NO_PROVISIONER))
        .pv(pv("pv-10", "local", "10Gi", None))
        .pv(pv("pv-2", "local", "2Gi", None))
        .pv(pv("pv-1", "local", "1Gi", None));
    let pl = plugin(&f);
    let pod = pod_info(pod_with_claims("p", &["big", "small"]));
    let claims = pl.binder().get_pod_volume_claims(&pod.pod).unwrap();
    let n = node("node-a", json!({}));
    let (volumes, reasons) = pl.binder().find_pod_volumes(&pod.pod, &claims, &n).unwrap();
    assert!(reasons.is_empty());
    let chosen: Vec<(String, String)> = volumes
        .static_bindings
        .iter()
        .map(|b| {
            (
                b.pvc.metadata.name.clone().unwrap_or_default(),
                b.pv.metadata.name.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        chosen,
        vec![
            ("small".to_string(), "pv-1".to_string()),
            ("big".to_string(), "pv-10".to_string())
        ]
    );
}

/// What the fake API server + PV controller do with the writes.
#[derive(Clone, Copy, PartialEq)]
enum Controller {
    /// Binds at once, as a PV controller that keeps up.
    Binds,
    /// Never binds.
    Idle,
    /// The provisioner gives up and drops the selected-node annotation.
    ProvisioningFails,
}

struct FakeApi {
    listers: VolumeListers,
    controller: Controller,
    writes: Mutex<Vec<String>>,
}

fn bump(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    let rv: u64 = meta
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    meta.resource_version = Some((rv + 1).to_string());
}

impl FakeApi {
    fn bind_claim(&self, namespace: &str, claim: &str, volume: &str) {
        if let Some(c) = self.listers.pvc(namespace, claim) {
            let mut c = c.as_ref().clone();
            bump(&mut c.metadata);
            c.spec.get_or_insert_with(Default::default).volume_name = Some(volume.into());
            c.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(ANN_BIND_COMPLETED.into(), "yes".into());
            VolumeListers::put(&self.listers.pvcs, c);
        }
    }
}

impl VolumeApi for FakeApi {
    fn update_pv<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolume>> {
        Box::pin(async move {
            let mut stored = pv.clone();
            bump(&mut stored.metadata);
            let claim = stored.spec.as_ref().and_then(|s| s.claim_ref.clone());
            self.writes.lock().unwrap().push(format!(
                "update pv {} claimRef={}",
                stored.metadata.name.as_deref().unwrap_or(""),
                claim
                    .as_ref()
                    .and_then(|c| c.name.clone())
                    .unwrap_or_default()
            ));
            VolumeListers::put(&self.listers.pvs, stored.clone());
            if self.controller == Controller::Binds {
                if let Some(c) = claim {
                    self.bind_claim(
                        c.namespace.as_deref().unwrap_or(""),
                        c.name.as_deref().unwrap_or(""),
                        stored.metadata.name.as_deref().unwrap_or(""),
                    );
                }
            }
            Ok(stored)
        })
    }

    fn update_pvc<'a>(
        &'a self,
        pvc: &'a PersistentVolumeClaim,
    ) -> BoxFuture<'a, anyhow::Result<PersistentVolumeClaim>> {
        Box::pin(async move {
            let mut stored = pvc.clone();
            bump(&mut stored.metadata);
            let name = stored.metadata.name.clone().unwrap_or_default();
            let selected = stored
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(ANN_SELECTED_NODE))
                .cloned()
                .unwrap_or_default();
            self.writes
                .lock()
                .unwrap()
                .push(format!("update pvc ns/{name} selected-node={selected}"));
            VolumeListers::put(&self.listers.pvcs, stored.clone());
            match self.controller {
                Controller::Binds => {
                    let volume = format!("pvc-{name}");
                    VolumeListers::put(
                        &self.listers.pvs,
                        bound_pv(&volume, &name, Some(zone_terms("a"))),
                    );
                    self.bind_claim("ns", &name, &volume);
                }
                Controller::ProvisioningFails => {
                    let mut failed = stored.clone();
                    bump(&mut failed.metadata);
                    if let Some(a) = failed.metadata.annotations.as_mut() {
                        a.remove(ANN_SELECTED_NODE);
                    }
                    VolumeListers::put(&self.listers.pvcs, failed);
                }
                Controller::Idle => {}
            }
            Ok(stored)
        })
    }
}

/// Runs PreFilter, Filter on node-a and Reserve; returns the plugin, its fake API and the state.
fn reserved(
    f: Fixture,
    controller: Controller,
    timeout: Duration,
) -> (VolumeBinding, Arc<FakeApi>, CycleState) {
    let n = node("node-a", json!({"zone": "a"}));
    let f = f.node(n.clone()).pod(pod_with_claims("p", &["pvc-a"]));
    let api = Arc::new(FakeApi {
        listers: f.listers.clone(),
        controller,
        writes: Mutex::new(Vec::new()),
    });
    let pl = VolumeBinding::with_listers(f.listers.clone(), timeout, Some(api.clone()));
    let pod = pod_info(pod_with_claims("p", &["pvc-a"]));
    let mut state = CycleState::new();
    let (_, status) = PreFilterPlugin::pre_filter(&pl, &mut state, &pod, &Snapshot::default());
    assert!(status.is_success(), "{status:?}");
    let status = FilterPlugin::filter(&pl, &state, &pod, &node_info(n));
    assert!(status.is_success(), "{status:?}");
    let status = ReservePlugin::reserve(&pl, &mut state, &pod.pod, "node-a");
    assert!(status.is_success(), "{status:?}");
    (pl, api, state)
}

fn static_fixture() -> Fixture {
    Fixture::new()
        .pvc(pvc("pvc-a", "local", None))
        .class(class("local", WFFC, NO_PROVISIONER))
        .pv(pv("pv-a", "local", "5Gi", Some(zone_terms("a"))))
}

fn dynamic_fixture() -> Fixture {
    Fixture::new()
        .pvc(pvc("pvc-a", "fast", None))
        .class(class("fast", WFFC, "example.com/csi"))
}

fn claim_of_assumed_pv(pl: &VolumeBinding, name: &str) -> Option<String> {
    pl.binder()
        .pv_cache()
        .get(name)?
        .spec
        .as_ref()?
        .claim_ref
        .as_ref()?
        .name
        .clone()
}

#[tokio::test(start_paused = true)]
async fn static_binding_is_assumed_written_and_awaited() {
    let (pl, api, state) = reserved(
        static_fixture(),
        Controller::Binds,
        Duration::from_secs(600),
    );
    // Reserve made the choice visible to the next pods before any API write.
    assert_eq!(claim_of_assumed_pv(&pl, "pv-a"), Some("pvc-a".into()));
    assert!(api.writes.lock().unwrap().is_empty());
    let pod = pod_with_claims("p", &["pvc-a"]);
    let status = PreBindPlugin::pre_bind(&pl, &state, &pod, "node-a").await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(
        *api.writes.lock().unwrap(),
        vec!["update pv pv-a claimRef=pvc-a"]
    );
}

#[tokio::test(start_paused = true)]
async fn dynamic_provisioning_sets_the_selected_node() {
    let (pl, api, state) = reserved(
        dynamic_fixture(),
        Controller::Binds,
        Duration::from_secs(600),
    );
    let assumed = pl.binder().pvc_cache().get("ns/pvc-a").unwrap();
    assert_eq!(
        assumed
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANN_SELECTED_NODE)),
        Some(&"node-a".to_string())
    );
    let pod = pod_with_claims("p", &["pvc-a"]);
    let status = PreBindPlugin::pre_bind(&pl, &state, &pod, "node-a").await;
    assert!(status.is_success(), "{status:?}");
    assert_eq!(
        *api.writes.lock().unwrap(),
        vec!["update pvc ns/pvc-a selected-node=node-a"]
    );
}

#[tokio::test(start_paused = true)]
async fn binding_that_never_completes_times_out() {
    let (pl, _api, state) = reserved(static_fixture(), Controller::Idle, Duration::from_secs(5));
    let pod = pod_with_claims("p", &["pvc-a"]);
    let status = PreBindPlugin::pre_bind(&pl, &state, &pod, "node-a").await;
    assert_eq!(status.code(), Code::Error);
    assert_eq!(
        status.message(),
        "binding volumes: context deadline exceeded"
    );
}

#[tokio::test(start_paused = true)]
async fn failed_provisioning_is_reported() {
    let (pl, _api, state) = reserved(
        dynamic_fixture(),
        Controller::ProvisioningFails,
        Duration::from_secs(600),
    );
    let pod = pod_with_claims("p", &["pvc-a"]);
    let status = PreBindPlugin::pre_bind(&pl, &state, &pod, "node-a").await;
    assert_eq!(status.code(), Code::Error);
    assert_eq!(
        status.message(),
        "binding volumes: provisioning failed for PVC \"pvc-a\""
    );
}

#[tokio::test(start_paused = true)]
async fn bound_pods_need_no_api_writes() {
    let f = Fixture::new()
        .pvc(pvc("pvc-a", "", Some("pv-a")))
        .pv(bound_pv("pv-a", "pvc-a", None));
    let (pl, api, state) = reserved(f, Controller::Idle, Duration::from_secs(1));
    let status =
        PreBindPlugin::pre_bind(&pl, &state, &pod_with_claims("p", &["pvc-a"]), "node-a").await;
    assert!(status.is_success());
    assert!(api.writes.lock().unwrap().is_empty());
}

#[test]
fn unreserve_reverts_the_assumption() {
    let (pl, _api, mut state) =
        reserved(static_fixture(), Controller::Idle, Duration::from_secs(1));
    assert_eq!(claim_of_assumed_pv(&pl, "pv-a"), Some("pvc-a".into()));
    ReservePlugin::unreserve(&pl, &mut state, &pod_with_claims("p", &["pvc-a"]), "node-a");
    assert_eq!(claim_of_assumed_pv(&pl, "pv-a"), None);
}

#[test]
fn an_assumed_volume_is_not_offered_to_the_next_pod() {
    let f = static_fixture().pvc(pvc("pvc-b", "local", None));
    let (pl, _api, _state) = reserved(f, Controller::Idle, Duration::from_secs(1));
    let other = pod_info(pod_with_claims("q", &["pvc-b"]));
    let mut state = CycleState::new();
    let (_, status) = PreFilterPlugin::pre_filter(&pl, &mut state, &other, &Snapshot::default());
    assert!(status.is_success());
    let status = FilterPlugin::filter(
        &pl,
        &state,
        &other,
        &node_info(node("node-a", json!({"zone": "a"}))),
    );
    assert_eq!(
        status.reasons(),
        ["node(s) didn't find available persistent volumes to bind"]
    );
}

#[test]
fn args_are_validated() {
    assert_eq!(parse_args(None).unwrap(), Duration::from_secs(600));
    assert_eq!(
        parse_args(Some(&json!({"bindTimeoutSeconds": 30}))).unwrap(),
        Duration::from_secs(30)
    );
    let err = parse_args(Some(&json!({"bindTimeoutSeconds": -1}))).unwrap_err();
    assert!(err.to_string().contains("bindTimeoutSeconds"), "{err}");
    let err = parse_args(Some(&json!({"shape": []}))).unwrap_err();
    assert!(err.to_string().contains("StorageCapacityScoring"), "{err}");
    assert!(parse_args(Some(&json!({"bogus": 1}))).is_err());
    assert!(parse_args(Some(
        &json!({"apiVersion": "kubescheduler.config.k8s.io/v1",
        "kind": "VolumeBindingArgs"})
    ))
    .is_ok());
}

fn other(v: Value) -> crate::framework::EventObject {
    crate::framework::EventObject::Other(Arc::new(v))
}

#[test]
fn queueing_hints() {
    let pod = pod_with_claims("p", &["pvc-a"]);
    let hints: std::collections::HashMap<&str, crate::framework::QueueingHintFn> =
        VolumeBinding::with_listers(VolumeListers::default(), Duration::from_secs(1), None)
            .events_to_register()
            .into_iter()
            .filter_map(|e| Some((e.event.label, e.hint?)))
            .collect();
    let hint = |label: &str, old: Option<Value>, new: Value| {
        let old = old.map(other);
        let new = other(new);
        hints[label](&pod, old.as_ref(), Some(&new)).unwrap()
    };
    let claim = |ns: &str, name: &str| json!({"metadata": {"namespace": ns, "name": name}});
    assert_eq!(
        hint("PersistentVolumeClaimChange", None, claim("ns", "pvc-a")),
        QueueingHint::Queue
    );
    assert_eq!(
        hint("PersistentVolumeClaimChange", None, claim("ns", "pvc-b")),
        QueueingHint::Skip
    );
    assert_eq!(
        hint("PersistentVolumeClaimChange", None, claim("other", "pvc-a")),
        QueueingHint::Skip
    );
    let sc = |zones: Value| json!({"metadata": {"name": "fast"}, "allowedTopologies": zones});
    assert_eq!(
        hint("StorageClassChange", None, sc(json!([]))),
        QueueingHint::Queue
    );
    assert_eq!(
        hint("StorageClassChange", Some(sc(json!([]))), sc(json!([]))),
        QueueingHint::Skip
    );
    assert_eq!(
        hint(
            "StorageClassChange",
            Some(sc(json!([]))),
            sc(json!([{"matchLabelExpressions": []}]))
        ),
        QueueingHint::Queue
    );
    let cap = |size: &str| json!({"metadata": {"name": "c"}, "capacity": size});
    assert_eq!(
        hint("CSIStorageCapacityChange", Some(cap("1Gi")), cap("2Gi")),
        QueueingHint::Queue
    );
    assert_eq!(
        hint("CSIStorageCapacityChange", Some(cap("2Gi")), cap("1Gi")),
        QueueingHint::Skip
    );
    let csinode = |migrated: &str| {
        json!({"metadata": {"name": "n",
        "annotations": {"storage.alpha.kubernetes.io/migrated-plugins": migrated}}})
    };
    assert_eq!(
        hint("CSINodeChange", Some(csinode("a")), csinode("a")),
        QueueingHint::Skip
    );
    assert_eq!(
        hint("CSINodeChange", Some(csinode("a")), csinode("a,b")),
        QueueingHint::Queue
    );
}
