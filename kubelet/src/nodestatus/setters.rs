//! The node status setters, as upstream's `pkg/kubelet/nodestatus`: each fills one part of a
//! Node's status from what the kubelet knows, in upstream's order (addresses, machine info,
//! version info, daemon endpoints, OS/arch, then the MemoryPressure, DiskPressure, PIDPressure
//! and Ready conditions). They are pure: time, the machine, the runtime's health and the
//! pressure observations come in as [`StatusInputs`], and the events a transition calls for come
//! back as reasons (upstream records them from inside the setters).
//!
//! Heartbeat vs transition, as upstream: every computation sets each condition's
//! `lastHeartbeatTime` to now; `lastTransitionTime` moves only when the status flips.

use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    DaemonEndpoint, Node, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSwapStatus,
    NodeSystemInfo,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::addresses;
use super::machine::MachineInfo;
use crate::eviction::{Pressure, Threshold};
use crate::resources::{self, ResourceList};
use crate::runtime_state::aggregate;

pub const MEMORY_PRESSURE: &str = "MemoryPressure";
pub const DISK_PRESSURE: &str = "DiskPressure";
pub const PID_PRESSURE: &str = "PIDPressure";
pub const READY: &str = "Ready";

/// The kubelet version the node reports (`status.nodeInfo.kubeletVersion`).
pub const KUBELET_VERSION: &str = client::client::KUBERNETES_VERSION;

/// Everything the setters read.
pub struct StatusInputs<'a> {
    pub now: Timestamp,
    pub hostname: &'a str,
    pub node_ips: &'a [IpAddr],
    pub machine: &'a MachineInfo,
    pub max_pods: u32,
    pub system_reserved: &'a ResourceList,
    pub kube_reserved: &'a ResourceList,
    pub eviction_hard: &'a [Threshold],
    pub kubelet_port: u16,
    /// `containerd://1.6.20`; `None` while the runtime has not answered (the field keeps its
    /// value, as upstream's setter fails).
    pub runtime_version: Option<String>,
    pub pressure: Pressure,
    /// Why the node is not ready (runtime and network errors); empty when it is.
    pub ready_errors: Vec<String>,
}

/// Go's name for the architecture.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Go's name for the OS.
pub fn go_os() -> &'static str {
    std::env::consts::OS
}

/// Runs every setter on `node`; returns the event reasons to record (`NodeHasSufficientMemory`,
/// `NodeReady`, ...), in order.
pub fn set_node_status(node: &mut Node, inputs: &StatusInputs<'_>) -> Vec<&'static str> {
    let status = node.status.get_or_insert_with(NodeStatus::default);
    set_addresses(status, inputs);
    set_machine_info(status, inputs);
    set_version_info(status, inputs);
    status.daemon_endpoints = Some(NodeDaemonEndpoints {
        kubelet_endpoint: Some(DaemonEndpoint {
            port: i32::from(inputs.kubelet_port),
        }),
    });
    let mut events = Vec::new();
    let now = inputs.now;
    events.extend(pressure_condition(
        status,
        now,
        inputs.pressure.memory,
        MEMORY_PRESSURE,
        (
            "KubeletHasInsufficientMemory",
            "kubelet has insufficient memory available",
            "NodeHasInsufficientMemory",
        ),
        (
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available",
            "NodeHasSufficientMemory",
        ),
    ));
    events.extend(pressure_condition(
        status,
        now,
        inputs.pressure.disk,
        DISK_PRESSURE,
        (
            "KubeletHasDiskPressure",
            "kubelet has disk pressure",
            "NodeHasDiskPressure",
        ),
        (
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure",
            "NodeHasNoDiskPressure",
        ),
    ));
    events.extend(pressure_condition(
        status,
        now,
        inputs.pressure.pid,
        PID_PRESSURE,
        (
            "KubeletHasInsufficientPID",
            "kubelet has insufficient PID available",
            "NodeHasInsufficientPID",
        ),
        (
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available",
            "NodeHasSufficientPID",
        ),
    ));
    events.extend(ready_condition(status, inputs));
    events
}

fn set_addresses(status: &mut NodeStatus, inputs: &StatusInputs<'_>) {
    status.addresses = Some(addresses::node_addresses(inputs.node_ips, inputs.hostname));
}

/// Capacity and allocatable. Keys others put in capacity (extended resources advertised by
/// patching the status) are kept, and get an allocatable entry too, as upstream; hugepage sizes
/// the machine does not have are dropped.
fn set_machine_info(status: &mut NodeStatus, inputs: &StatusInputs<'_>) {
    let ours = inputs.machine.capacity(inputs.max_pods);
    let mut capacity = status.capacity.take().unwrap_or_default();
    capacity.retain(|name, _| {
        !name.starts_with(resources::HUGEPAGES_PREFIX) || ours.contains_key(name)
    });
    for (name, amount) in &ours {
        capacity.insert(
            name.clone(),
            Quantity(resources::format_quantity(name, *amount)),
        );
    }
    // Every capacity entry, parsed (entries that do not parse are copied as they are).
    let parsed: ResourceList = capacity
        .iter()
        .filter_map(|(name, q)| {
            apimachinery::quantity::Quantity::parse(&q.0)
                .ok()
                .map(|q| (name.clone(), q.nanos()))
        })
        .collect();
    let reservation = resources::allocatable_reservation(
        &parsed,
        inputs.system_reserved,
        inputs.kube_reserved,
        inputs.eviction_hard,
    );
    let computed = resources::allocatable(&parsed, &reservation);
    let allocatable = capacity
        .iter()
        .map(|(name, q)| {
            let value = match computed.get(name) {
                // Untouched amounts keep their text, as upstream's DeepCopy keeps the format.
                Some(amount) if parsed.get(name) == Some(amount) => q.clone(),
                Some(amount) => Quantity(resources::format_quantity(name, *amount)),
                None => q.clone(),
            };
            (name.clone(), value)
        })
        .collect();
    status.capacity = Some(capacity);
    status.allocatable = Some(allocatable);
}

fn set_version_info(status: &mut NodeStatus, inputs: &StatusInputs<'_>) {
    let m = inputs.machine;
    let info = status.node_info.get_or_insert_with(NodeSystemInfo::default);
    info.machine_id = m.machine_id.clone();
    info.system_uuid = m.system_uuid.clone();
    info.boot_id = m.boot_id.clone();
    info.kernel_version = m.kernel_version.clone();
    info.os_image = m.os_image.clone();
    if let Some(v) = &inputs.runtime_version {
        info.container_runtime_version = v.clone();
    }
    info.kubelet_version = KUBELET_VERSION.to_string();
    // Upstream no longer reports kube-proxy's version (DisableNodeKubeProxyVersion).
    info.kube_proxy_version = String::new();
    info.operating_system = go_os().to_string();
    info.architecture = go_arch().to_string();
    info.swap = Some(NodeSwapStatus {
        capacity: i64::try_from(m.swap_capacity).ok(),
    });
}

fn condition_index(status: &mut NodeStatus, type_: &str) -> Option<usize> {
    status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().position(|c| c.type_ == type_))
}

/// Upstream's Memory/Disk/PIDPressure setters: a new condition starts Unknown, then goes to
/// True or False (recording the event) when it is not already there.
fn pressure_condition(
    status: &mut NodeStatus,
    now: Timestamp,
    under_pressure: bool,
    type_: &str,
    when_true: (&'static str, &'static str, &'static str),
    when_false: (&'static str, &'static str, &'static str),
) -> Option<&'static str> {
    let index = match condition_index(status, type_) {
        Some(i) => i,
        None => {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            conditions.push(NodeCondition {
                type_: type_.to_string(),
                status: "Unknown".to_string(),
                last_transition_time: Some(Time(now)),
                ..NodeCondition::default()
            });
            conditions.len() - 1
        }
    };
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let condition = &mut conditions[index];
    condition.last_heartbeat_time = Some(Time(now));
    let (want, (reason, message, event)) = if under_pressure {
        ("True", when_true)
    } else {
        ("False", when_false)
    };
    if condition.status == want {
        return None;
    }
    condition.status = want.to_string();
    condition.reason = Some(reason.to_string());
    condition.message = Some(message.to_string());
    condition.last_transition_time = Some(Time(now));
    Some(event)
}

/// Upstream's ReadyCondition setter. The event is recorded only when an existing condition
/// flips (a node's first Ready condition records none).
fn ready_condition(status: &mut NodeStatus, inputs: &StatusInputs<'_>) -> Option<&'static str> {
    let now = inputs.now;
    let mut errors = inputs.ready_errors.clone();
    let capacity = status.capacity.clone().unwrap_or_default();
    let missing: Vec<&str> = [resources::CPU, resources::MEMORY, resources::PODS]
        .into_iter()
        .filter(|r| !capacity.contains_key(*r))
        .collect();
    if !missing.is_empty() {
        errors.push(format!(
            "missing node capacity for resources: {}",
            missing.join(", ")
        ));
    }
    let mut new = match aggregate(&errors) {
        None => NodeCondition {
            type_: READY.to_string(),
            status: "True".to_string(),
            reason: Some("KubeletReady".to_string()),
            message: Some("kubelet is posting ready status".to_string()),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: None,
        },
        Some(message) => NodeCondition {
            type_: READY.to_string(),
            status: "False".to_string(),
            reason: Some("KubeletNotReady".to_string()),
            message: Some(message),
            last_heartbeat_time: Some(Time(now)),
            last_transition_time: None,
        },
    };
    match condition_index(status, READY) {
        Some(i) => {
            let conditions = status.conditions.get_or_insert_with(Vec::new);
            let old = &conditions[i];
            let event = if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
                None
            } else {
                new.last_transition_time = Some(Time(now));
                Some(if new.status == "True" {
                    "NodeReady"
                } else {
                    "NodeNotReady"
                })
            };
            conditions[i] = new;
            event
        }
        None => {
            new.last_transition_time = Some(Time(now));
            status.conditions.get_or_insert_with(Vec::new).push(new);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eviction::{default_eviction_hard, parse_thresholds};
    use crate::nodestatus::machine::HostIdentity;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    struct Fixture {
        machine: MachineInfo,
        ips: Vec<IpAddr>,
        hard: Vec<Threshold>,
        none: ResourceList,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                machine: MachineInfo::hollow(
                    "n1",
                    &HostIdentity {
                        boot_id: "boot".into(),
                        kernel_version: "6.1.0-13-amd64".into(),
                        os_image: "Debian GNU/Linux 12 (bookworm)".into(),
                    },
                ),
                ips: vec!["10.0.0.5".parse().unwrap()],
                hard: parse_thresholds(&default_eviction_hard()).unwrap(),
                none: ResourceList::new(),
            }
        }

        fn inputs(&self, now: Timestamp) -> StatusInputs<'_> {
            StatusInputs {
                now,
                hostname: "n1",
                node_ips: &self.ips,
                machine: &self.machine,
                max_pods: 110,
                system_reserved: &self.none,
                kube_reserved: &self.none,
                eviction_hard: &self.hard,
                kubelet_port: 10250,
                runtime_version: Some("containerd://1.6.20".into()),
                pressure: Pressure::default(),
                ready_errors: Vec::new(),
            }
        }
    }

    fn condition<'a>(node: &'a Node, type_: &str) -> &'a NodeCondition {
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == type_))
            .unwrap()
    }

    #[test]
    fn a_new_node_gets_the_whole_status() {
        let f = Fixture::new();
        let mut node = Node::default();
        let events = set_node_status(&mut node, &f.inputs(at(0)));
        assert_eq!(
            events,
            vec![
                "NodeHasSufficientMemory",
                "NodeHasNoDiskPressure",
                "NodeHasSufficientPID"
            ]
        );
        let status = node.status.as_ref().unwrap();
        let types: Vec<&str> = status
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            vec![MEMORY_PRESSURE, DISK_PRESSURE, PID_PRESSURE, READY]
        );
        let ready = condition(&node, READY);
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        let mem = condition(&node, MEMORY_PRESSURE);
        assert_eq!(mem.status, "False");
        assert_eq!(mem.reason.as_deref(), Some("KubeletHasSufficientMemory"));
        assert_eq!(
            condition(&node, DISK_PRESSURE).reason.as_deref(),
            Some("KubeletHasNoDiskPressure")
        );
        assert_eq!(
            condition(&node, PID_PRESSURE).message.as_deref(),
            Some("kubelet has sufficient PID available")
        );
        let cap = status.capacity.as_ref().unwrap();
        assert_eq!(cap["cpu"].0, "4");
        assert_eq!(cap["memory"].0, "16Gi");
        assert_eq!(cap["pods"].0, "110");
        let alloc = status.allocatable.as_ref().unwrap();
        assert_eq!(alloc["memory"].0, "16284Mi");
        assert_eq!(alloc["ephemeral-storage"].0, "90Gi");
        assert_eq!(alloc["cpu"].0, "4");
        let info = status.node_info.as_ref().unwrap();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
        assert_eq!(info.kubelet_version, "v1.33.0");
        assert_eq!(info.operating_system, "linux");
        assert_eq!(info.architecture, go_arch());
        assert_eq!(info.os_image, "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(
            status
                .daemon_endpoints
                .as_ref()
                .and_then(|d| d.kubelet_endpoint.as_ref())
                .map(|e| e.port),
            Some(10250)
        );
        let addrs = status.addresses.as_ref().unwrap();
        assert_eq!(addrs[0].type_, "InternalIP");
        assert_eq!(addrs[0].address, "10.0.0.5");
        assert_eq!(addrs[1].type_, "Hostname");
    }

    #[test]
    fn heartbeats_move_and_transitions_stay_until_a_flip() {
        let f = Fixture::new();
        let mut node = Node::default();
        set_node_status(&mut node, &f.inputs(at(0)));
        let events = set_node_status(&mut node, &f.inputs(at(10)));
        assert!(events.is_empty(), "{events:?}");
        let ready = condition(&node, READY);
        assert_eq!(ready.last_heartbeat_time, Some(Time(at(10))));
        assert_eq!(ready.last_transition_time, Some(Time(at(0))));
        let mem = condition(&node, MEMORY_PRESSURE);
        assert_eq!(mem.last_heartbeat_time, Some(Time(at(10))));
        assert_eq!(mem.last_transition_time, Some(Time(at(0))));

        // The runtime goes down: Ready flips with upstream's reason and message.
        let mut inputs = f.inputs(at(20));
        inputs.ready_errors = vec!["container runtime is down".into()];
        let events = set_node_status(&mut node, &inputs);
        assert_eq!(events, vec!["NodeNotReady"]);
        let ready = condition(&node, READY);
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(ready.message.as_deref(), Some("container runtime is down"));
        assert_eq!(ready.last_transition_time, Some(Time(at(20))));

        // Still down, with another reason too: no new transition.
        let mut inputs = f.inputs(at(30));
        inputs.ready_errors = vec![
            "container runtime is down".into(),
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:cni plugin not initialized".into(),
        ];
        assert!(set_node_status(&mut node, &inputs).is_empty());
        let ready = condition(&node, READY);
        assert_eq!(ready.last_transition_time, Some(Time(at(20))));
        assert!(ready
            .message
            .as_deref()
            .unwrap()
            .starts_with("[container runtime is down, "));

        // Back: Ready again, a new transition time, the NodeReady event.
        let events = set_node_status(&mut node, &f.inputs(at(40)));
        assert_eq!(events, vec!["NodeReady"]);
        let ready = condition(&node, READY);
        assert_eq!(ready.status, "True");
        assert_eq!(ready.last_transition_time, Some(Time(at(40))));

        // Memory pressure flips its own condition only.
        let mut inputs = f.inputs(at(50));
        inputs.pressure.memory = true;
        assert_eq!(
            set_node_status(&mut node, &inputs),
            vec!["NodeHasInsufficientMemory"]
        );
        let mem = condition(&node, MEMORY_PRESSURE);
        assert_eq!(mem.status, "True");
        assert_eq!(mem.reason.as_deref(), Some("KubeletHasInsufficientMemory"));
        assert_eq!(mem.last_transition_time, Some(Time(at(50))));
        assert_eq!(
            condition(&node, READY).last_transition_time,
            Some(Time(at(40)))
        );
    }

    #[test]
    fn extended_resources_in_capacity_get_allocatable_and_foreign_conditions_stay() {
        let f = Fixture::new();
        let mut node = Node::default();
        set_node_status(&mut node, &f.inputs(at(0)));
        let status = node.status.as_mut().unwrap();
        status
            .capacity
            .as_mut()
            .unwrap()
            .insert("example.com/dongle".into(), Quantity("4".into()));
        status
            .capacity
            .as_mut()
            .unwrap()
            .insert("hugepages-32Mi".into(), Quantity("0".into()));
        status.conditions.as_mut().unwrap().push(NodeCondition {
            type_: "NetworkUnavailable".into(),
            status: "False".into(),
            ..NodeCondition::default()
        });
        set_node_status(&mut node, &f.inputs(at(10)));
        let status = node.status.as_ref().unwrap();
        assert_eq!(
            status.allocatable.as_ref().unwrap()["example.com/dongle"].0,
            "4"
        );
        assert!(!status
            .capacity
            .as_ref()
            .unwrap()
            .contains_key("hugepages-32Mi"));
        assert_eq!(condition(&node, "NetworkUnavailable").status, "False");
    }

    #[test]
    fn an_unknown_runtime_version_keeps_the_reported_one() {
        let f = Fixture::new();
        let mut node = Node::default();
        set_node_status(&mut node, &f.inputs(at(0)));
        let mut inputs = f.inputs(at(10));
        inputs.runtime_version = None;
        set_node_status(&mut node, &inputs);
        let info = node.status.as_ref().unwrap().node_info.as_ref().unwrap();
        assert_eq!(info.container_runtime_version, "containerd://1.6.20");
    }
}
