//! Failure handling of a Job: `spec.podFailurePolicy` rules matched against a failed pod
//! (upstream's `pod_failure_policy.go`) and the exponential delay before failed pods are
//! replaced (upstream's `backoff_utils.go`: 10 s doubling per failure since the last success,
//! capped at 6 minutes, measured from the last failure).

use std::time::Duration;

use k8s_openapi::api::batch::v1::{PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::jiff::Timestamp;

/// Upstream's `DefaultJobPodFailureBackOff`.
pub const DEFAULT_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `MaxJobPodFailureBackOff`.
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(6 * 60);

/// What a pod failure policy says about one failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyAction {
    /// No rule matched (or no policy): the failure counts toward backoffLimit.
    NoMatch,
    Count,
    Ignore,
    /// The job fails at once with reason PodFailurePolicy and this message.
    FailJob(String),
    /// Counted like Count here: per-index backoff is not implemented.
    FailIndex,
}

impl PolicyAction {
    /// Whether the failure counts toward `status.failed` / backoffLimit.
    pub fn counts(&self) -> bool {
        !matches!(self, PolicyAction::Ignore)
    }
}

/// upstream `matchPodFailurePolicy`: the first rule (in order) whose exit-code or pod-condition
/// requirement matches the failed pod decides.
pub fn match_pod_failure_policy(policy: Option<&PodFailurePolicy>, pod: &Pod) -> PolicyAction {
    let Some(policy) = policy else {
        return PolicyAction::NoMatch;
    };
    let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let matched_message = if let Some(req) = &rule.on_exit_codes {
            let containers = status.container_statuses.as_deref().unwrap_or_default();
            let init = status
                .init_container_statuses
                .as_deref()
                .unwrap_or_default();
            matching_container(containers, req)
                .or_else(|| matching_container(init, req))
                .map(|(container, code)| {
                    format!(
                        "Container {container} for pod {namespace}/{name} failed with exit code {code} matching {} rule at index {index}",
                        rule.action
                    )
                })
        } else if let Some(patterns) = &rule.on_pod_conditions {
            status
                .conditions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|c| {
                    patterns
                        .iter()
                        .any(|p| p.type_ == c.type_ && p.status == c.status)
                })
                .map(|c| {
                    format!(
                        "Pod {namespace}/{name} has condition {} matching {} rule at index {index}",
                        c.type_, rule.action
                    )
                })
        } else {
            None
        };
        let Some(message) = matched_message else {
            continue;
        };
        match rule.action.as_str() {
            "Ignore" => return PolicyAction::Ignore,
            "Count" => return PolicyAction::Count,
            "FailJob" => return PolicyAction::FailJob(message),
            "FailIndex" => return PolicyAction::FailIndex,
            // An action this version does not know: upstream's switch falls through to the
            // next rule.
            _ => continue,
        }
    }
    PolicyAction::NoMatch
}

/// The first terminated container (exit code not 0) whose name and exit code satisfy `req`.
fn matching_container(
    statuses: &[ContainerStatus],
    req: &PodFailurePolicyOnExitCodesRequirement,
) -> Option<(String, i32)> {
    statuses.iter().find_map(|cs| {
        let code = cs.state.as_ref()?.terminated.as_ref()?.exit_code;
        if code == 0 {
            return None;
        }
        if req.container_name.as_ref().is_some_and(|n| *n != cs.name) {
            return None;
        }
        let listed = req.values.contains(&code);
        let matches = match req.operator.as_str() {
            "In" => listed,
            "NotIn" => !listed,
            _ => false,
        };
        matches.then(|| (cs.name.clone(), code))
    })
}

/// upstream's backoff record of one job: failures since the last success and when the last
/// one finished. Kept in memory, as upstream's `podBackoffStore`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackoffRecord {
    pub failures_after_last_success: u32,
    pub last_failure: Option<Timestamp>,
}

impl BackoffRecord {
    /// Folds newly counted pods in: a success resets the count (when it finished after the last
    /// failure), each failure adds one.
    pub fn observe(&mut self, succeeded: &[Timestamp], failed: &[Timestamp]) {
        if let Some(last_success) = succeeded.iter().max() {
            if self.last_failure.is_none_or(|f| *last_success >= f) && failed.is_empty() {
                self.failures_after_last_success = 0;
                self.last_failure = None;
            }
        }
        for finished in failed {
            self.failures_after_last_success += 1;
            self.last_failure = Some(match self.last_failure {
                Some(last) if last > *finished => last,
                _ => *finished,
            });
        }
    }

    /// How long pod creation must still wait: `base * 2^(failures-1)` capped at `max`, from
    /// the last failure.
    pub fn remaining(&self, base: Duration, max: Duration, now: Timestamp) -> Duration {
        let Some(last) = self.last_failure else {
            return Duration::ZERO;
        };
        if self.failures_after_last_success == 0 {
            return Duration::ZERO;
        }
        let delay = backoff_delay(self.failures_after_last_success, base, max);
        let elapsed = now.duration_since(last);
        let elapsed = Duration::try_from(elapsed).unwrap_or(Duration::ZERO);
        delay.saturating_sub(elapsed)
    }
}

/// `base * 2^(failures-1)`, capped at `max` (0 failures: no delay).
pub fn backoff_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    if failures == 0 {
        return Duration::ZERO;
    }
    let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// When a pod finished: the latest container termination, else now (upstream's
/// `getFinishedTime` falls back the same way).
pub fn finished_time(pod: &Pod, now: Timestamp) -> Timestamp {
    let status = pod.status.as_ref();
    let all = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .chain(status.and_then(|s| s.init_container_statuses.as_ref()))
        .flatten();
    all.filter_map(|cs| {
        cs.state
            .as_ref()?
            .terminated
            .as_ref()?
            .finished_at
            .as_ref()
            .map(|t| t.0)
    })
    .max()
    .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::batch::v1::{
        PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
    };
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateTerminated, PodCondition, PodStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn failed_pod(exit_codes: &[(&str, i32)], conditions: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            spec: None,
            status: Some(PodStatus {
                phase: Some("Failed".into()),
                container_statuses: Some(
                    exit_codes
                        .iter()
                        .map(|(name, code)| ContainerStatus {
                            name: name.to_string(),
                            state: Some(ContainerState {
                                terminated: Some(ContainerStateTerminated {
                                    exit_code: *code,
                                    ..Default::default()
                                }),
                                ..Default::default()
                            }),
                            ..Default::default()
                        })
                        .collect(),
                ),
                conditions: Some(
                    conditions
                        .iter()
                        .map(|(t, s)| PodCondition {
                            type_: t.to_string(),
                            status: s.to_string(),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
        }
    }

    fn exit_rule(
        action: &str,
        container: Option<&str>,
        op: &str,
        values: &[i32],
    ) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: container.map(Into::into),
                operator: op.into(),
                values: values.to_vec(),
            }),
            on_pod_conditions: None,
        }
    }

    fn condition_rule(action: &str, type_: &str) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: Some(vec![PodFailurePolicyOnPodConditionsPattern {
                type_: type_.into(),
                status: "True".into(),
            }]),
        }
    }

    #[test]
    fn pod_failure_policy_decisions() {
        let policy = PodFailurePolicy {
            rules: vec![
                condition_rule("Ignore", "DisruptionTarget"),
                exit_rule("FailJob", Some("main"), "In", &[42]),
                exit_rule("Ignore", None, "In", &[3]),
                exit_rule("Count", None, "NotIn", &[5]),
            ],
        };
        let cases: Vec<(&str, Pod, PolicyAction)> = vec![
            (
                "disruption ignored",
                failed_pod(&[("main", 42)], &[("DisruptionTarget", "True")]),
                PolicyAction::Ignore,
            ),
            (
                "exit 42 in main fails the job",
                failed_pod(&[("main", 42)], &[]),
                PolicyAction::FailJob(
                    "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"
                        .into(),
                ),
            ),
            (
                "exit 42 in another container does not match the named rule",
                failed_pod(&[("side", 42)], &[]),
                PolicyAction::Count,
            ),
            ("exit 3 ignored", failed_pod(&[("main", 3)], &[]), PolicyAction::Ignore),
            ("exit 5 matches nothing", failed_pod(&[("main", 5)], &[]), PolicyAction::NoMatch),
            ("exit 0 never matches", failed_pod(&[("main", 0)], &[]), PolicyAction::NoMatch),
            (
                "condition False does not match",
                failed_pod(&[("main", 5)], &[("DisruptionTarget", "False")]),
                PolicyAction::NoMatch,
            ),
        ];
        for (what, pod, want) in cases {
            assert_eq!(
                match_pod_failure_policy(Some(&policy), &pod),
                want,
                "{what}"
            );
        }
        assert_eq!(
            match_pod_failure_policy(None, &failed_pod(&[("main", 1)], &[])),
            PolicyAction::NoMatch
        );
        let by_condition = PodFailurePolicy {
            rules: vec![condition_rule("FailJob", "ConfigIssue")],
        };
        assert_eq!(
            match_pod_failure_policy(
                Some(&by_condition),
                &failed_pod(&[], &[("ConfigIssue", "True")])
            ),
            PolicyAction::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 0".into()
            )
        );
    }

    #[test]
    fn backoff_delays_double_and_cap() {
        let base = DEFAULT_POD_FAILURE_BACKOFF;
        let max = MAX_POD_FAILURE_BACKOFF;
        let cases = [
            (0, 0),
            (1, 10),
            (2, 20),
            (3, 40),
            (4, 80),
            (5, 160),
            (6, 320),
            (7, 360),
            (40, 360),
        ];
        for (failures, secs) in cases {
            assert_eq!(
                backoff_delay(failures, base, max),
                Duration::from_secs(secs),
                "{failures} failures"
            );
        }
    }

    #[test]
    fn backoff_record_counts_failures_since_last_success() {
        let t0 = Timestamp::from_second(1_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let at = |s: i64| t0 + k8s_openapi::jiff::SignedDuration::from_secs(s);
        let base = DEFAULT_POD_FAILURE_BACKOFF;
        let max = MAX_POD_FAILURE_BACKOFF;
        let mut record = BackoffRecord::default();
        assert_eq!(record.remaining(base, max, t0), Duration::ZERO);
        record.observe(&[], &[at(0)]);
        assert_eq!(record.remaining(base, max, at(4)), Duration::from_secs(6));
        record.observe(&[], &[at(5)]);
        assert_eq!(record.failures_after_last_success, 2);
        assert_eq!(record.remaining(base, max, at(10)), Duration::from_secs(15));
        assert_eq!(record.remaining(base, max, at(30)), Duration::ZERO);
        record.observe(&[at(40)], &[]);
        assert_eq!(record, BackoffRecord::default(), "a later success resets");
        record.observe(&[], &[at(50)]);
        assert_eq!(record.remaining(base, max, at(50)), Duration::from_secs(10));
    }
}
