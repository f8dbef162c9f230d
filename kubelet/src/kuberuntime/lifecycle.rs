//! Container lifecycle hooks (upstream's `pkg/kubelet/lifecycle` handlers): `postStart` runs
//! right after a container starts, `preStop` before it is stopped, each as one of
//!
//! - `exec`: the command in the container through CRI `ExecSync`;
//! - `httpGet`: a GET to the pod's IP (or `host`) and port; a status outside 200..399 fails;
//! - `sleep`: waits the given seconds.
//!
//! A failed hook gives upstream's message (and the caller's `FailedPostStartHook` /
//! `FailedPreStopHook` events). preStop runs at most for the grace period; what it used is
//! taken off the grace period the runtime then gets, never below
//! [`MINIMUM_GRACE_PERIOD_SECONDS`].

use std::time::Duration;

use cri::RuntimeService;
use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Pod};

use crate::prober::{self, Outcome};

/// Upstream's `minimumGracePeriodInSeconds`: what a container gets after its preStop hook.
pub const MINIMUM_GRACE_PERIOD_SECONDS: i64 = 2;

/// How long a postStart hook may run (upstream bounds it by nothing but the sync; this keeps a
/// hung hook from holding the pod's worker forever).
pub const POST_START_TIMEOUT: Duration = Duration::from_secs(120);

/// Which hook ran, for the messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    PostStart,
    PreStop,
}

impl Hook {
    /// The event reason of a failure.
    pub fn failure_reason(self) -> &'static str {
        match self {
            Hook::PostStart => "FailedPostStartHook",
            Hook::PreStop => "FailedPreStopHook",
        }
    }

    pub fn handler(self, c: &Container) -> Option<&LifecycleHandler> {
        let lifecycle = c.lifecycle.as_ref()?;
        match self {
            Hook::PostStart => lifecycle.post_start.as_ref(),
            Hook::PreStop => lifecycle.pre_stop.as_ref(),
        }
    }
}

/// Runs one hook of container `c` (running as `container_id`), for at most `timeout`.
pub async fn run(
    runtime: &dyn RuntimeService,
    pod: &Pod,
    c: &Container,
    container_id: &str,
    handler: &LifecycleHandler,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let command = exec.command.clone().unwrap_or_default();
        let outcome = prober::exec_probe(runtime, container_id, command.clone(), timeout).await;
        let (err, output) = match outcome {
            Outcome::Success => return Ok(()),
            Outcome::Failure(output) => (
                format!(
                    "command '{}' exited with a non-zero code",
                    command.join(" ")
                ),
                output,
            ),
            Outcome::Error(err) => (err, String::new()),
        };
        return Err(format!(
            "Exec lifecycle hook ([{}]) for Container {:?} in Pod {:?} failed - error: {err}, message: {output:?}",
            command.join(" "),
            c.name,
            super::pod_full_name(pod)
        ));
    }
    if let Some(get) = &handler.http_get {
        let path = get.path.clone().unwrap_or_default();
        let failed = |err: String| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {:?} in Pod {:?} failed - error: {err}",
                c.name,
                super::pod_full_name(pod)
            )
        };
        let host = get
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| pod.status.as_ref().and_then(|s| s.pod_ip.clone()))
            .ok_or_else(|| failed("the pod has no IP yet".to_string()))?;
        let port = prober::resolve_port(&get.port, c)
            .ok_or_else(|| failed(format!("invalid port {:?}", get.port)))?;
        let headers: Vec<(String, String)> = get
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let https = get.scheme.as_deref() == Some("HTTPS");
        return match prober::http_probe_scheme(https, &host, port, &path, &headers, timeout).await {
            Outcome::Success => Ok(()),
            Outcome::Failure(err) | Outcome::Error(err) => Err(failed(err)),
        };
    }
    if let Some(sleep) = &handler.sleep {
        let wanted = Duration::from_secs(u64::try_from(sleep.seconds).unwrap_or(0));
        tokio::time::sleep(wanted.min(timeout)).await;
        return Ok(());
    }
    Err(format!(
        "lifecycle hook for Container {:?} in Pod {:?} has no action",
        c.name,
        super::pod_full_name(pod)
    ))
}

/// What is left of `grace_seconds` for the runtime after a preStop hook that took `used`.
pub fn remaining_grace(grace_seconds: i64, used: Duration) -> i64 {
    let used = i64::try_from(used.as_secs()).unwrap_or(i64::MAX);
    grace_seconds
        .saturating_sub(used)
        .max(MINIMUM_GRACE_PERIOD_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_left_after_prestop_never_drops_below_two_seconds() {
        assert_eq!(remaining_grace(30, Duration::from_secs(10)), 20);
        assert_eq!(remaining_grace(30, Duration::from_millis(10_900)), 20);
        assert_eq!(remaining_grace(5, Duration::from_secs(5)), 2);
        assert_eq!(remaining_grace(0, Duration::ZERO), 2);
    }
}
