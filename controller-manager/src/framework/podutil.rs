//! Pod predicates the workload controllers decide from (upstream's `podutil` and the pod
//! helpers of `controller_utils.go`): phase, activity, readiness and availability.

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;

/// `status.phase`, `""` when unset.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// Succeeded or Failed: the pod will never run again.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// `controller.IsPodActive`: not finished and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    !is_finished(pod) && pod.metadata.deletion_timestamp.is_none()
}

/// `podutil.GetPodReadyCondition`: the pod's first `Ready` condition.
pub fn ready_condition(pod: &Pod) -> Option<&PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// When the pod is Ready: since when (`None` when the condition carries no time).
pub fn ready_since(pod: &Pod) -> Option<Option<&Timestamp>> {
    ready_condition(pod)
        .filter(|c| c.status == "True")
        .map(|c| c.last_transition_time.as_ref().map(|t| &t.0))
}

/// `podutil.IsPodReady`.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// `podutil.IsPodAvailable`: Ready for at least `min_ready_seconds` by `now`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(None) => false,
        Some(Some(since)) => {
            let min = i128::from(min_ready_seconds) * 1_000_000_000;
            since.as_nanosecond() + min < now.as_nanosecond()
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn pod(phase: &str, conditions: Vec<(&str, &str, Option<i64>)>) -> Pod {
        Pod {
            status: Some(PodStatus {
                phase: Some(phase.into()),
                conditions: Some(
                    conditions
                        .into_iter()
                        .map(|(type_, status, at)| PodCondition {
                            type_: type_.into(),
                            status: status.into(),
                            last_transition_time: at
                                .and_then(|s| Timestamp::from_second(s).ok())
                                .map(Time),
                            ..PodCondition::default()
                        })
                        .collect(),
                ),
                ..PodStatus::default()
            }),
            ..Pod::default()
        }
    }

    #[test]
    fn readiness_and_availability() {
        let now = Timestamp::from_second(1_000).unwrap_or_default();
        let ready = pod("Running", vec![("Ready", "True", Some(990))]);
        assert!(is_ready(&ready));
        assert!(is_available(&ready, 0, now));
        assert!(is_available(&ready, 9, now));
        assert!(
            !is_available(&ready, 10, now),
            "ready exactly 10s is not yet more"
        );
        let untimed = pod("Running", vec![("Ready", "True", None)]);
        assert!(is_available(&untimed, 0, now));
        assert!(!is_available(&untimed, 1, now));
        let not_ready = pod(
            "Running",
            vec![("PodScheduled", "True", None), ("Ready", "False", None)],
        );
        assert!(!is_ready(&not_ready));
        assert!(!is_available(&not_ready, 0, now));
        assert!(!is_ready(&Pod::default()));
    }

    #[test]
    fn activity() {
        assert!(is_active(&pod("Pending", vec![])));
        assert!(is_active(&Pod::default()));
        assert!(!is_active(&pod("Succeeded", vec![])));
        assert!(!is_active(&pod("Failed", vec![])));
        let mut deleting = pod("Running", vec![]);
        deleting.metadata.deletion_timestamp = Some(Time(Timestamp::UNIX_EPOCH));
        assert!(!is_active(&deleting));
        assert!(!is_finished(&deleting));
    }
}
