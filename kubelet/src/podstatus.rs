//! The parts of a pod's status the kubelet derives from its containers' statuses (upstream's
//! `getPhase` and `status/generate.go`): the phase, the kubelet-owned conditions
//! (PodReadyToStartContainers, Initialized, ContainersReady, Ready) and the QoS class.
//!
//! Pure functions over the API types, so the sync loop, the simulated runtime and the tests
//! share one definition.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodCondition, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

pub const PHASE_PENDING: &str = "Pending";
pub const PHASE_RUNNING: &str = "Running";
pub const PHASE_SUCCEEDED: &str = "Succeeded";
pub const PHASE_FAILED: &str = "Failed";

/// Condition reasons with upstream's spelling.
pub const REASON_UNKNOWN_CONTAINER_STATUSES: &str = "UnknownContainerStatuses";
pub const REASON_POD_COMPLETED: &str = "PodCompleted";
pub const REASON_POD_FAILED: &str = "PodFailed";
pub const REASON_CONTAINERS_NOT_READY: &str = "ContainersNotReady";
pub const REASON_CONTAINERS_NOT_INITIALIZED: &str = "ContainersNotInitialized";
pub const REASON_READINESS_GATES_NOT_READY: &str = "ReadinessGatesNotReady";

/// The condition types the kubelet owns; others on the pod are kept as they are.
pub const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
    "PodScheduled",
];

/// An init container with `restartPolicy: Always` (a sidecar).
pub fn is_restartable_init_container(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

fn status_of<'a>(statuses: &'a [ContainerStatus], name: &str) -> Option<&'a ContainerStatus> {
    statuses.iter().find(|s| s.name == name)
}

fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

fn running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.running.is_some())
}

fn terminated_exit(s: &ContainerStatus) -> Option<i32> {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn waiting(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|st| st.waiting.is_some())
}

fn last_terminated_exit(s: &ContainerStatus) -> Option<i32> {
    s.last_state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .map(|t| t.exit_code)
}

fn started(s: &ContainerStatus) -> bool {
    s.started == Some(true)
}

/// Whether any regular container has started (or has run before), which means the pod was
/// initialized once (upstream's `HasAnyRegularContainerStarted`).
pub fn has_any_regular_container_started(spec: &PodSpec, statuses: &[ContainerStatus]) -> bool {
    spec.containers.iter().any(|c| {
        status_of(statuses, &c.name).is_some_and(|s| {
            running(s)
                || terminated_exit(s).is_some()
                || (waiting(s) && last_terminated_exit(s).is_some())
        })
    })
}

/// The phase from the containers' statuses (init and regular together), as upstream's
/// `getPhase`; `terminal` when the kubelet has decided the pod will never run again.
pub fn pod_phase(pod: &Pod, statuses: &[ContainerStatus], terminal: bool) -> &'static str {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let mut pending_init = 0;
    let mut failed_init = 0;
    for c in init.iter().filter(|c| !is_restartable_init_container(c)) {
        let Some(s) = status_of(statuses, &c.name) else {
            pending_init += 1;
            continue;
        };
        if running(s) {
            pending_init += 1;
        } else if let Some(code) = terminated_exit(s) {
            if code != 0 {
                failed_init += 1;
            }
        } else if waiting(s) {
            match last_terminated_exit(s) {
                Some(code) if code != 0 => failed_init += 1,
                Some(_) => {}
                None => pending_init += 1,
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut unknown, mut running_n, mut waiting_n, mut stopped, mut succeeded) = (0, 0, 0, 0, 0);
    for c in init.iter().filter(|c| is_restartable_init_container(c)) {
        let Some(s) = status_of(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        if running(s) {
            if !started(s) {
                pending_init += 1;
            }
            running_n += 1;
        } else if terminated_exit(s).is_some() {
            // Stopped sidecars do not count towards the phase.
        } else if waiting(s) {
            if last_terminated_exit(s).is_none() {
                pending_init += 1;
                waiting_n += 1;
            }
        } else {
            pending_init += 1;
            unknown += 1;
        }
    }
    for c in &spec.containers {
        let Some(s) = status_of(statuses, &c.name) else {
            unknown += 1;
            continue;
        };
        if running(s) {
            running_n += 1;
        } else if let Some(code) = terminated_exit(s) {
            stopped += 1;
            if code == 0 {
                succeeded += 1;
            }
        } else if waiting(s) {
            if last_terminated_exit(s).is_some() {
                stopped += 1;
            } else {
                waiting_n += 1;
            }
        } else {
            unknown += 1;
        }
    }
    let policy = restart_policy(spec);
    if failed_init > 0 && policy == "Never" {
        return PHASE_FAILED;
    }
    if (pending_init > 0 && !has_any_regular_container_started(spec, statuses)) || waiting_n > 0 {
        return PHASE_PENDING;
    }
    if running_n > 0 && unknown == 0 {
        return PHASE_RUNNING;
    }
    if running_n == 0 && stopped > 0 && unknown == 0 {
        if terminal && !is_static_pod(pod) {
            return if stopped == succeeded {
                PHASE_SUCCEEDED
            } else {
                PHASE_FAILED
            };
        }
        if policy == "Always" {
            return PHASE_RUNNING;
        }
        if stopped == succeeded {
            return PHASE_SUCCEEDED;
        }
        if policy == "Never" {
            return PHASE_FAILED;
        }
        return PHASE_RUNNING;
    }
    PHASE_PENDING
}

/// A pod the kubelet read from a manifest file or URL (its `kubernetes.io/config.source`
/// annotation is not "api").
pub fn is_static_pod(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/config.source"))
        .is_some_and(|s| s != "api")
}

fn condition(
    type_: &str,
    status: &str,
    reason: Option<&str>,
    message: Option<String>,
) -> PodCondition {
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        ..Default::default()
    }
}

/// Go's `fmt.Sprintf("%s", []string{...})`: `[a b]`.
fn go_list(names: &[&str]) -> String {
    format!("[{}]", names.join(" "))
}

/// `PodReadyToStartContainers`: True once a sandbox with networking exists for the pod.
pub fn ready_to_start_containers_condition(sandbox_ready: bool) -> PodCondition {
    condition(
        "PodReadyToStartContainers",
        if sandbox_ready { "True" } else { "False" },
        None,
        None,
    )
}

/// `ContainersReady` (upstream's `GenerateContainersReadyCondition`); `statuses` holds init
/// and regular containers, `None` when none are known yet.
pub fn containers_ready_condition(
    spec: &PodSpec,
    statuses: Option<&[ContainerStatus]>,
    phase: &str,
) -> PodCondition {
    let Some(statuses) = statuses else {
        return condition(
            "ContainersReady",
            "False",
            Some(REASON_UNKNOWN_CONTAINER_STATUSES),
            None,
        );
    };
    let mut unknown = Vec::new();
    let mut unready = Vec::new();
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| is_restartable_init_container(c));
    for c in sidecars.chain(spec.containers.iter()) {
        match status_of(statuses, &c.name) {
            Some(s) if !s.ready => unready.push(c.name.as_str()),
            Some(_) => {}
            None => unknown.push(c.name.as_str()),
        }
    }
    if (phase == PHASE_SUCCEEDED && unknown.is_empty()) || phase == PHASE_FAILED {
        let reason = if phase == PHASE_FAILED {
            REASON_POD_FAILED
        } else {
            REASON_POD_COMPLETED
        };
        return condition("ContainersReady", "False", Some(reason), None);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !unready.is_empty() {
        messages.push(format!(
            "containers with unready status: {}",
            go_list(&unready)
        ));
    }
    if messages.is_empty() {
        condition("ContainersReady", "True", None, None)
    } else {
        condition(
            "ContainersReady",
            "False",
            Some(REASON_CONTAINERS_NOT_READY),
            Some(messages.join(", ")),
        )
    }
}

/// `Ready` (upstream's `GeneratePodReadyCondition`): ContainersReady, then the readiness
/// gates against `conditions` (the pod's other conditions).
pub fn pod_ready_condition(
    spec: &PodSpec,
    conditions: &[PodCondition],
    statuses: Option<&[ContainerStatus]>,
    phase: &str,
) -> PodCondition {
    let containers = containers_ready_condition(spec, statuses, phase);
    if containers.status != "True" {
        return PodCondition {
            type_: "Ready".into(),
            ..containers
        };
    }
    let mut messages = Vec::new();
    for gate in spec.readiness_gates.iter().flatten() {
        match conditions.iter().find(|c| c.type_ == gate.condition_type) {
            None => messages.push(format!(
                "corresponding condition of pod readiness gate {:?} does not exist.",
                gate.condition_type
            )),
            Some(c) if c.status != "True" => messages.push(format!(
                "the status of pod readiness gate {:?} is not \"True\", but {}",
                gate.condition_type, c.status
            )),
            Some(_) => {}
        }
    }
    if messages.is_empty() {
        condition("Ready", "True", None, None)
    } else {
        condition(
            "Ready",
            "False",
            Some(REASON_READINESS_GATES_NOT_READY),
            Some(messages.join(", ")),
        )
    }
}

/// `Initialized` (upstream's `GeneratePodInitializedCondition`).
pub fn initialized_condition(
    spec: &PodSpec,
    statuses: Option<&[ContainerStatus]>,
    phase: &str,
) -> PodCondition {
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let Some(statuses) = statuses else {
        if init.is_empty() {
            return condition("Initialized", "True", None, None);
        }
        return condition(
            "Initialized",
            "False",
            Some(REASON_UNKNOWN_CONTAINER_STATUSES),
            None,
        );
    };
    let mut unknown = Vec::new();
    let mut incomplete = Vec::new();
    for c in init {
        let Some(s) = status_of(statuses, &c.name) else {
            unknown.push(c.name.as_str());
            continue;
        };
        let done = if is_restartable_init_container(c) {
            started(s)
        } else {
            s.ready
        };
        if !done {
            incomplete.push(c.name.as_str());
        }
    }
    if phase == PHASE_SUCCEEDED && unknown.is_empty() {
        return condition("Initialized", "True", Some(REASON_POD_COMPLETED), None);
    }
    if has_any_regular_container_started(spec, statuses) {
        return condition("Initialized", "True", None, None);
    }
    let mut messages = Vec::new();
    if !unknown.is_empty() {
        messages.push(format!(
            "containers with unknown status: {}",
            go_list(&unknown)
        ));
    }
    if !incomplete.is_empty() {
        messages.push(format!(
            "containers with incomplete status: {}",
            go_list(&incomplete)
        ));
    }
    if messages.is_empty() {
        condition("Initialized", "True", None, None)
    } else {
        condition(
            "Initialized",
            "False",
            Some(REASON_CONTAINERS_NOT_INITIALIZED),
            Some(messages.join(", ")),
        )
    }
}

fn is_zero(q: &Quantity) -> bool {
    apimachinery::quantity::Quantity::parse(q.0.trim())
        .map_or(q.0.trim().is_empty(), |q| q.nanos() == 0)
}

/// The QoS class (upstream's `GetPodQOS`, over cpu and memory): BestEffort without any
/// request or limit, Guaranteed when every container limits both and requests equal limits,
/// Burstable otherwise. Pod-level resources are not considered (alpha upstream).
pub fn qos_class(spec: &PodSpec) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let mut requests: BTreeMap<&str, bool> = BTreeMap::new();
    let mut limits: BTreeMap<&str, bool> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in all {
        let res = c.resources.as_ref();
        let req = res.and_then(|r| r.requests.as_ref());
        let lim = res.and_then(|r| r.limits.as_ref());
        for name in COMPUTE {
            if req.and_then(|r| r.get(name)).is_some_and(|q| !is_zero(q)) {
                requests.insert(name, true);
            }
        }
        let mut limited = 0;
        for name in COMPUTE {
            if lim.and_then(|l| l.get(name)).is_some_and(|q| !is_zero(q)) {
                limits.insert(name, true);
                limited += 1;
            }
        }
        if limited != COMPUTE.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        // Requests, where given, must equal the limits.
        let all = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten());
        for c in all {
            let res = c.resources.as_ref();
            let req = res.and_then(|r| r.requests.as_ref());
            let lim = res.and_then(|r| r.limits.as_ref());
            for name in COMPUTE {
                if let (Some(r), Some(l)) =
                    (req.and_then(|r| r.get(name)), lim.and_then(|l| l.get(name)))
                {
                    if !quantities_equal(r, l) {
                        return "Burstable";
                    }
                }
            }
        }
        return "Guaranteed";
    }
    "Burstable"
}

fn quantities_equal(a: &Quantity, b: &Quantity) -> bool {
    let nanos =
        |q: &Quantity| apimachinery::quantity::Quantity::parse(q.0.trim()).map(|q| q.nanos());
    match (nanos(a), nanos(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a.0 == b.0,
    }
}

/// A quantity as a number of units (cores, bytes), through apimachinery's exact parser (nano
/// precision, plenty to compare requests with limits).
pub fn parse_quantity(s: &str) -> Option<f64> {
    apimachinery::quantity::Quantity::parse(s.trim())
        .ok()
        .map(|q| q.nanos() as f64 / 1e9)
}

#[cfg(test)]
mod tests;
