//! What a pod needs from the runtime right now (upstream's `computePodActions`): a new sandbox,
//! the next init container, the containers to (re)start and the ones to kill. Pure: the pod
//! and what the runtime reports in, a plan out.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};

use super::labels::container_hash;
use crate::podstatus::is_restartable_init_container;

/// A sandbox as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeSandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    /// Nanoseconds since the epoch.
    pub created_at: i64,
    pub ips: Vec<String>,
    pub host_network: bool,
}

/// The state of one container instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeContainer {
    pub id: String,
    pub name: String,
    pub sandbox_id: String,
    /// The restart count the kubelet gave it (CRI metadata attempt).
    pub attempt: u32,
    pub state: State,
    /// Nanoseconds since the epoch; 0 when it has not happened.
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    pub message: String,
    pub image: String,
    pub image_ref: String,
    /// The spec hash it was created from (annotation).
    pub hash: String,
}

/// Everything the runtime holds for one pod: its sandboxes, newest first, and its container
/// instances, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimePodStatus {
    pub sandboxes: Vec<RuntimeSandbox>,
    pub containers: Vec<RuntimeContainer>,
}

impl RuntimePodStatus {
    /// The newest instance of the named container.
    pub fn latest(&self, name: &str) -> Option<&RuntimeContainer> {
        self.containers.iter().find(|c| c.name == name)
    }

    /// The instance before the newest one (its last termination).
    pub fn previous(&self, name: &str) -> Option<&RuntimeContainer> {
        self.containers.iter().filter(|c| c.name == name).nth(1)
    }

    pub fn ips(&self) -> Vec<String> {
        self.sandboxes
            .first()
            .filter(|s| s.ready)
            .map(|s| s.ips.clone())
            .unwrap_or_default()
    }
}

/// The plan for one sync.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodActions {
    /// Stop every container and the sandbox first.
    pub kill_pod: bool,
    pub create_sandbox: bool,
    /// The sandbox to use (when not creating one) or the one being replaced.
    pub sandbox_id: String,
    /// The attempt number of the sandbox to create.
    pub attempt: u32,
    /// The next regular init container to start (index into spec.initContainers).
    pub next_init_container: Option<usize>,
    /// Sidecars (restartable init containers) to start, indexes into spec.initContainers.
    pub init_containers_to_start: Vec<usize>,
    /// Regular containers to start, indexes into spec.containers.
    pub containers_to_start: Vec<usize>,
    /// Running containers to kill (id -> why), e.g. a changed spec.
    pub containers_to_kill: BTreeMap<String, String>,
}

fn restart_policy(spec: &PodSpec) -> &str {
    spec.restart_policy.as_deref().unwrap_or("Always")
}

fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// Whether a container that is not running should run (again) under the pod's policy.
pub fn should_restart(policy: &str, latest: Option<&RuntimeContainer>) -> bool {
    let Some(c) = latest else {
        return true;
    };
    if matches!(c.state, State::Running | State::Created) {
        return false;
    }
    match policy {
        "Never" => false,
        "OnFailure" => c.exit_code != 0,
        _ => true,
    }
}

/// Upstream's `podSandboxChanged`: (create a new sandbox?, its attempt, the current one's id).
pub fn sandbox_changed(pod: &Pod, status: &RuntimePodStatus) -> (bool, u32, String) {
    let Some(latest) = status.sandboxes.first() else {
        return (true, 0, String::new());
    };
    let ready = status.sandboxes.iter().filter(|s| s.ready).count();
    if ready > 1 || !latest.ready {
        return (true, latest.attempt + 1, latest.id.clone());
    }
    if latest.host_network != host_network(pod) {
        return (true, latest.attempt + 1, latest.id.clone());
    }
    if !host_network(pod) && latest.ips.is_empty() {
        return (true, latest.attempt + 1, latest.id.clone());
    }
    (false, latest.attempt, latest.id.clone())
}

fn succeeded(status: &RuntimePodStatus, c: &Container) -> bool {
    status
        .latest(&c.name)
        .is_some_and(|s| s.state == State::Exited && s.exit_code == 0)
}

/// The plan for `pod` given what the runtime holds.
pub fn compute_pod_actions(pod: &Pod, status: &RuntimePodStatus) -> PodActions {
    let empty = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&empty);
    let policy = restart_policy(spec);
    let init = spec.init_containers.as_deref().unwrap_or_default();
    let (create_sandbox, attempt, sandbox_id) = sandbox_changed(pod, status);
    let mut actions = PodActions {
        kill_pod: create_sandbox,
        create_sandbox,
        sandbox_id,
        attempt,
        ..Default::default()
    };
    if create_sandbox {
        // A pod that has run and must not restart gets no new sandbox.
        if policy == "Never" && attempt != 0 && !status.containers.is_empty() {
            actions.create_sandbox = false;
            return actions;
        }
        // A fresh sandbox starts over: the first init container, else every container that
        // should run.
        if let Some(first) = init.first() {
            if is_restartable_init_container(first) {
                actions.init_containers_to_start.push(0);
            } else {
                actions.next_init_container = Some(0);
            }
            return actions;
        }
        actions.containers_to_start = spec
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !(policy == "OnFailure" && succeeded(status, c)))
            .map(|(i, _)| i)
            .collect();
        return actions;
    }

    // Init containers, in order: the first that has not succeeded is the one to (re)run; a
    // sidecar that is not running is started before anything after it, unless the pod was
    // initialized already (then it restarts alongside the regular containers).
    let initialized = spec
        .containers
        .iter()
        .any(|c| status.latest(&c.name).is_some());
    for (i, c) in init.iter().enumerate() {
        let latest = status.latest(&c.name);
        let live = latest.is_some_and(|l| matches!(l.state, State::Running | State::Created));
        if is_restartable_init_container(c) {
            if !live {
                actions.init_containers_to_start.push(i);
                if !initialized {
                    return actions;
                }
            }
            continue;
        }
        if initialized {
            continue;
        }
        match latest {
            None => {
                actions.next_init_container = Some(i);
                return actions;
            }
            Some(_) if live => return actions,
            Some(l) if l.state == State::Exited && l.exit_code == 0 => continue,
            Some(_) => {
                if policy == "Never" {
                    // A failed init container fails the pod: stop what is left.
                    actions.kill_pod = true;
                    return actions;
                }
                actions.next_init_container = Some(i);
                return actions;
            }
        }
    }

    let mut keep = 0;
    for (i, c) in spec.containers.iter().enumerate() {
        let latest = status.latest(&c.name);
        match latest {
            Some(l) if l.state == State::Running => {
                let want = format!("{:x}", container_hash(c));
                if !l.hash.is_empty() && l.hash != want {
                    actions.containers_to_kill.insert(
                        l.id.clone(),
                        format!("Container {} definition changed", c.name),
                    );
                    actions.containers_to_start.push(i);
                } else {
                    keep += 1;
                }
            }
            Some(l) if l.state == State::Created => keep += 1,
            _ => {
                if should_restart(policy, latest) {
                    actions.containers_to_start.push(i);
                }
            }
        }
    }
    let sidecars_running = init.iter().any(|c| {
        is_restartable_init_container(c)
            && status
                .latest(&c.name)
                .is_some_and(|l| l.state == State::Running)
    });
    if keep == 0 && actions.containers_to_start.is_empty() && !sidecars_running {
        // Nothing will run any more: stop the sandbox (the pod is done).
        actions.kill_pod = true;
    }
    actions
}

#[cfg(test)]
mod tests;
