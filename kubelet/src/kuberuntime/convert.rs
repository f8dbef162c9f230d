//! API container statuses from what the runtime reports (upstream's
//! `convertToAPIContainerStatuses`): state (waiting with the last sync's reason, running,
//! terminated), lastState, restartCount, image, imageID, containerID, ready and started.

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::actions::{RuntimeContainer, RuntimePodStatus, State};
use super::Waiting;

fn time(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    k8s_openapi::jiff::Timestamp::from_nanosecond(i128::from(nanos))
        .ok()
        .map(Time)
}

/// The terminated state of a finished instance.
fn terminated(c: &RuntimeContainer, runtime_type: &str) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    ContainerStateTerminated {
        exit_code: c.exit_code,
        reason: Some(reason),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        started_at: time(c.started_at),
        finished_at: time(c.finished_at),
        container_id: Some(format!("{runtime_type}://{}", c.id)),
        signal: None,
    }
}

/// What the kubelet knows of one container beyond the runtime: the last sync's waiting
/// reason, and the probes' verdicts.
pub struct Extra<'a> {
    pub waiting: Option<&'a Waiting>,
    /// Readiness: None when the container has no readiness probe (ready once running).
    pub ready: Option<bool>,
    /// Startup: None when it has no startup probe (started once running).
    pub started: Option<bool>,
}

/// The status of one container of the pod.
pub fn container_status(
    c: &Container,
    is_init: bool,
    status: &RuntimePodStatus,
    runtime_type: &str,
    default_waiting: &str,
    extra: Extra<'_>,
) -> ContainerStatus {
    let latest = status.latest(&c.name);
    let image = c.image.clone().unwrap_or_default();
    let mut out = ContainerStatus {
        name: c.name.clone(),
        image: image.clone(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        started: Some(false),
        ..Default::default()
    };
    let Some(latest) = latest else {
        let w = extra.waiting.cloned().unwrap_or(Waiting {
            reason: default_waiting.into(),
            message: String::new(),
        });
        out.state = Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(w.reason),
                message: (!w.message.is_empty()).then_some(w.message),
            }),
            ..Default::default()
        });
        return out;
    };
    out.restart_count = i32::try_from(latest.attempt).unwrap_or(i32::MAX);
    out.container_id = Some(format!("{runtime_type}://{}", latest.id));
    out.image_id = latest.image_ref.clone();
    match latest.state {
        State::Running => {
            out.state = Some(ContainerState {
                running: Some(ContainerStateRunning {
                    started_at: time(latest.started_at),
                }),
                ..Default::default()
            });
            let started = extra.started.unwrap_or(true);
            out.started = Some(started);
            out.ready = started && extra.ready.unwrap_or(true);
            if let Some(prev) = status
                .previous(&c.name)
                .filter(|p| p.state == State::Exited)
            {
                out.last_state = Some(ContainerState {
                    terminated: Some(terminated(prev, runtime_type)),
                    ..Default::default()
                });
            }
        }
        State::Exited | State::Unknown => {
            let t = terminated(latest, runtime_type);
            // A finished init container that succeeded counts as ready.
            out.ready = is_init && latest.exit_code == 0;
            match extra.waiting {
                // It waits to run again (back-off, image...): the exit goes to lastState.
                Some(w) => {
                    out.state = Some(ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some(w.reason.clone()),
                            message: (!w.message.is_empty()).then(|| w.message.clone()),
                        }),
                        ..Default::default()
                    });
                    out.last_state = Some(ContainerState {
                        terminated: Some(t),
                        ..Default::default()
                    });
                }
                None => {
                    out.state = Some(ContainerState {
                        terminated: Some(t),
                        ..Default::default()
                    });
                    if let Some(prev) = status
                        .previous(&c.name)
                        .filter(|p| p.state == State::Exited)
                    {
                        out.last_state = Some(ContainerState {
                            terminated: Some(terminated(prev, runtime_type)),
                            ..Default::default()
                        });
                    }
                }
            }
        }
        State::Created => {
            out.state = Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(default_waiting.into()),
                    message: None,
                }),
                ..Default::default()
            });
        }
    }
    out
}

/// The probes' verdicts for a container: (ready, started), None where it has no such probe.
pub type ProbesOf<'a> = dyn Fn(&str) -> (Option<bool>, Option<bool>) + 'a;

/// Every container's status: (init containers, regular containers). `waiting_of` gives the
/// last sync's reason per container, `probes_of` the (ready, started) probe verdicts.
pub fn container_statuses(
    pod: &Pod,
    status: &RuntimePodStatus,
    runtime_type: &str,
    waiting_of: &dyn Fn(&str) -> Option<Waiting>,
    probes_of: &ProbesOf<'_>,
) -> (Vec<ContainerStatus>, Vec<ContainerStatus>) {
    let spec = pod.spec.clone().unwrap_or_default();
    let init = spec.init_containers.clone().unwrap_or_default();
    let has_init = !init.is_empty();
    let init_statuses = init
        .iter()
        .map(|c| {
            let w = waiting_of(&c.name);
            let (ready, started) = probes_of(&c.name);
            container_status(
                c,
                true,
                status,
                runtime_type,
                "PodInitializing",
                Extra {
                    waiting: w.as_ref(),
                    ready,
                    started,
                },
            )
        })
        .collect::<Vec<_>>();
    let initialized = init_statuses.iter().all(|s| s.ready);
    let statuses = spec
        .containers
        .iter()
        .map(|c| {
            let w = waiting_of(&c.name);
            let (ready, started) = probes_of(&c.name);
            let default = if has_init && !initialized {
                "PodInitializing"
            } else {
                "ContainerCreating"
            };
            container_status(
                c,
                false,
                status,
                runtime_type,
                default,
                Extra {
                    waiting: w.as_ref(),
                    ready,
                    started,
                },
            )
        })
        .collect();
    (init_statuses, statuses)
}
