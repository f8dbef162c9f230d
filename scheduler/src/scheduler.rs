//! The scheduling loop (upstream's `scheduleOne`): take the next pod from the queue, find it a
//! node on a fresh snapshot, assume it in the cache, run Reserve and Permit, and bind in the
//! background while the next pod is scheduled. Failures become a `FailedScheduling` event, the
//! pod's `PodScheduled=False` condition and a trip back through the queue.

use std::collections::HashMap;
use std::sync::Arc;

use client::events::CoreEventRecorder;
use client::Client;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::cache::Cache;
use crate::framework::{
    Code, CycleState, Framework, NominatingMode, PodInfo, QueuedPodInfo, Snapshot, Status,
};
use crate::queue::SchedulingQueue;
use crate::schedule_one::{schedule_pod, Diagnosis, FitError, ScheduleError, NO_NODES_AVAILABLE};

/// The component name in events and the default profile name.
pub const COMPONENT: &str = crate::config::DEFAULT_SCHEDULER_NAME;

/// Prometheus metrics with upstream's names.
#[derive(Clone)]
pub struct SchedulerMetrics {
    attempts: metrics::CounterVec,
    attempt_duration: metrics::HistogramVec,
    algorithm_duration: metrics::HistogramVec,
    e2e_duration: metrics::HistogramVec,
    preemption_attempts: metrics::CounterVec,
}

impl SchedulerMetrics {
    pub fn register(registry: &metrics::Registry) -> SchedulerMetrics {
        let buckets = metrics::exponential_buckets(0.001, 2.0, 15);
        // Finer than upstream's, so the benchmark can read per-cycle percentiles off it.
        let fine = metrics::exponential_buckets(0.000_02, 1.25, 60);
        SchedulerMetrics {
            attempts: registry.counter_vec(
                "scheduler_schedule_attempts_total",
                "Number of attempts to schedule pods, by the result. 'unschedulable' means a pod could not be scheduled, while 'error' means an internal scheduler problem.",
                &["result", "profile"],
            ),
            attempt_duration: registry.histogram_vec(
                "scheduler_scheduling_attempt_duration_seconds",
                "Scheduling attempt latency in seconds (scheduling algorithm + binding)",
                &["result", "profile"],
                &buckets,
            ),
            algorithm_duration: registry.histogram_vec(
                "scheduler_scheduling_algorithm_duration_seconds",
                "Scheduling algorithm latency in seconds",
                &[],
                &fine,
            ),
            e2e_duration: registry.histogram_vec(
                "scheduler_pod_scheduling_sli_duration_seconds",
                "E2e latency for a pod being scheduled, from the time the pod enters the scheduling queue until it is bound.",
                &["attempts"],
                &buckets,
            ),
            preemption_attempts: registry.counter_vec(
                "scheduler_preemption_attempts_total",
                "Total preemption attempts in the cluster till now",
                &[],
            ),
        }
    }
}

/// The loop and what it shares with the informer handlers.
pub struct Scheduler {
    pub client: Client,
    pub profiles: HashMap<String, Arc<Framework>>,
    pub queue: Arc<SchedulingQueue>,
    pub cache: Arc<Cache>,
    pub recorder: CoreEventRecorder,
    pub metrics: SchedulerMetrics,
}

use crate::config::scheduler_name;

fn pod_ref(pod: &Pod) -> ObjectReference {
    client::events::object_reference(pod)
}

/// How a failed attempt is reported.
enum Failure {
    /// No node fits: reason `Unschedulable`.
    Unschedulable(String),
    /// Something broke: reason `SchedulerError`.
    Error(String),
}

impl Scheduler {
    /// Schedules pods until the queue closes.
    pub async fn run(self: Arc<Self>) {
        let mut snapshot = Arc::new(Snapshot::default());
        while let Some(qpi) = self.queue.pop().await {
            self.schedule_one(qpi, &mut snapshot).await;
        }
        tracing::info!("scheduling queue closed; the scheduling loop ends");
    }

    async fn schedule_one(self: &Arc<Self>, qpi: QueuedPodInfo, snapshot: &mut Arc<Snapshot>) {
        let pod = qpi.pod().clone();
        let Some(fw) = self.profiles.get(scheduler_name(&pod)).cloned() else {
            // Not ours (the informer filter keeps these out; a race may let one through).
            self.queue.done(qpi.pod_info.uid());
            return;
        };
        if pod.metadata.deletion_timestamp.is_some() {
            self.queue.done(qpi.pod_info.uid());
            return;
        }
        let started = Instant::now();
        if let Err(err) = self.cache.update_snapshot(Arc::make_mut(snapshot)) {
            self.fail(&fw, qpi, Failure::Error(err.to_string()), None, started);
            return;
        }
        let mut state = CycleState::new();
        let result = schedule_pod(&fw, &mut state, &qpi.pod_info, snapshot);
        self.metrics
            .algorithm_duration
            .with(&[])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(result) => {
                self.assume_and_bind(fw, qpi, state, result.suggested_host, started)
                    .await;
            }
            Err(ScheduleError::Fit(mut fit)) => {
                let mut nominated = None;
                if fw.has_post_filter() {
                    self.metrics.preemption_attempts.with(&[]).inc();
                    let (res, status) = fw
                        .run_post_filter(
                            &state,
                            &qpi.pod_info,
                            snapshot,
                            &fit.diagnosis.node_to_status,
                        )
                        .await;
                    if status.code() == Code::Error {
                        tracing::error!(pod = %qpi.pod_info.key(), error = %status.message(), "preemption failed");
                    } else if !status.is_success() {
                        fit.diagnosis.post_filter_msg = status.message();
                    }
                    if let Some(res) = res {
                        if let NominatingMode::Override(node) = res.nominating {
                            nominated = Some(node);
                        }
                    }
                }
                let plugins = fit.diagnosis.unschedulable_plugins.clone();
                let pending = fit.diagnosis.pending_plugins.clone();
                let mut qpi = qpi;
                qpi.unschedulable_plugins = plugins;
                qpi.pending_plugins = pending;
                self.fail(
                    &fw,
                    qpi,
                    Failure::Unschedulable(fit.to_string()),
                    nominated,
                    started,
                );
            }
            Err(ScheduleError::NoNodes) => {
                self.fail(
                    &fw,
                    qpi,
                    Failure::Unschedulable(NO_NODES_AVAILABLE.into()),
                    None,
                    started,
                );
            }
            Err(ScheduleError::Internal(status)) => {
                self.fail(&fw, qpi, Failure::Error(status.message()), None, started);
            }
        }
    }

    async fn assume_and_bind(
        self: &Arc<Self>,
        fw: Arc<Framework>,
        qpi: QueuedPodInfo,
        mut state: CycleState,
        host: String,
        started: Instant,
    ) {
        let mut assumed = (**qpi.pod()).clone();
        if let Some(spec) = assumed.spec.as_mut() {
            spec.node_name = Some(host.clone());
        }
        let assumed = Arc::new(assumed);
        let assumed_info = Arc::new(PodInfo {
            pod: assumed.clone(),
            ..(*qpi.pod_info).clone()
        });
        if let Err(err) = self.cache.assume_pod(assumed_info) {
            self.fail(&fw, qpi, Failure::Error(format!("{err:#}")), None, started);
            return;
        }
        let status = fw.run_reserve(&mut state, &assumed, &host);
        if !status.is_success() {
            fw.run_unreserve(&mut state, &assumed, &host);
            self.forget(&assumed);
            self.fail_with_status(&fw, qpi, status, started);
            return;
        }
        let permit = fw.run_permit(&state, &assumed, &host);
        if !permit.is_success() && !permit.is_wait() {
            fw.run_unreserve(&mut state, &assumed, &host);
            self.forget(&assumed);
            self.fail_at_permit(&fw, qpi, permit, &host, started);
            return;
        }
        // The pod leaves the scheduling cycle; binding goes on in the background, after the
        // wait at Permit if a plugin holds the pod.
        let this = self.clone();
        tokio::spawn(async move {
            this.binding_cycle(fw, qpi, state, assumed, host, started)
                .await;
        });
    }

    async fn binding_cycle(
        self: Arc<Self>,
        fw: Arc<Framework>,
        qpi: QueuedPodInfo,
        mut state: CycleState,
        assumed: Arc<Pod>,
        host: String,
        started: Instant,
    ) {
        let permit = fw.wait_on_permit(&assumed).await;
        let status = if permit.is_success() {
            fw.run_pre_bind(&state, &assumed, &host).await
        } else {
            permit.clone()
        };
        let status = if status.is_success() {
            fw.run_bind(&state, &assumed, &host).await
        } else {
            status
        };
        if !status.is_success() {
            fw.run_unreserve(&mut state, &assumed, &host);
            self.forget(&assumed);
            // The room it held is free again for others.
            self.queue.assigned_pod_deleted(assumed.clone());
            if permit.is_success() {
                self.fail_with_status(&fw, qpi, status, started);
            } else {
                self.fail_at_permit(&fw, qpi, status, &host, started);
            }
            return;
        }
        if let Err(err) = self.cache.finish_binding(&assumed) {
            tracing::warn!(error = %err, "finishing a binding in the cache");
        }
        fw.run_post_bind(&state, &assumed, &host);
        let profile = fw.profile_name().to_string();
        self.metrics.attempts.with(&["scheduled", &profile]).inc();
        self.metrics
            .attempt_duration
            .with(&["scheduled", &profile])
            .observe(started.elapsed().as_secs_f64());
        if let Some(first) = qpi.initial_attempt_timestamp {
            self.metrics
                .e2e_duration
                .with(&[&qpi.attempts.to_string()])
                .observe(first.elapsed().as_secs_f64());
        }
        self.queue.done(qpi.pod_info.uid());
        let key = qpi.pod_info.key();
        tracing::debug!(pod = %key, node = %host, "bound");
        self.recorder.normal(
            &pod_ref(&assumed),
            "Scheduled",
            &format!("Successfully assigned {key} to {host}"),
        );
    }

    fn forget(&self, pod: &Pod) {
        if let Err(err) = self.cache.forget_pod(pod) {
            tracing::warn!(error = %err, "forgetting an assumed pod");
        }
    }

    fn fail_with_status(
        self: &Arc<Self>,
        fw: &Arc<Framework>,
        mut qpi: QueuedPodInfo,
        status: Status,
        started: Instant,
    ) {
        if status.is_rejected() {
            if !status.plugin().is_empty() {
                qpi.unschedulable_plugins.insert(status.plugin());
            }
            self.fail(
                fw,
                qpi,
                Failure::Unschedulable(status.message()),
                None,
                started,
            );
        } else {
            self.fail(fw, qpi, Failure::Error(status.message()), None, started);
        }
    }

    /// A pod Permit rejected (at once or after waiting) failed on the one node it was tried
    /// on; upstream reports that as a fit error over that node ("0/1 nodes are available: 1
    /// rejected due to timeout after waiting 10s at plugin X.").
    fn fail_at_permit(
        self: &Arc<Self>,
        fw: &Arc<Framework>,
        mut qpi: QueuedPodInfo,
        status: Status,
        host: &str,
        started: Instant,
    ) {
        if !status.is_rejected() {
            self.fail_with_status(fw, qpi, status, started);
            return;
        }
        let mut diagnosis = Diagnosis::default();
        if !status.plugin().is_empty() {
            diagnosis.unschedulable_plugins.insert(status.plugin());
            qpi.unschedulable_plugins.insert(status.plugin());
        }
        diagnosis.node_to_status.set(host.to_string(), status);
        let fit = FitError {
            num_all_nodes: 1,
            diagnosis,
        };
        self.fail(
            fw,
            qpi,
            Failure::Unschedulable(fit.to_string()),
            None,
            started,
        );
    }

    /// Upstream's `handleSchedulingFailure`: requeue, event, condition (and nomination).
    fn fail(
        self: &Arc<Self>,
        fw: &Arc<Framework>,
        qpi: QueuedPodInfo,
        failure: Failure,
        nominated: Option<String>,
        started: Instant,
    ) {
        let profile = fw.profile_name().to_string();
        let (result, reason, message) = match &failure {
            Failure::Unschedulable(m) => ("unschedulable", "Unschedulable", m.clone()),
            Failure::Error(m) => ("error", "SchedulerError", m.clone()),
        };
        self.metrics.attempts.with(&[result, &profile]).inc();
        self.metrics
            .attempt_duration
            .with(&[result, &profile])
            .observe(started.elapsed().as_secs_f64());
        let pod = qpi.pod().clone();
        tracing::info!(pod = %qpi.pod_info.key(), %reason, %message, "unable to schedule pod");
        if still_pending(fw, &pod) {
            // Preemption nominates a node, or clears the nomination with "" when it found none.
            if let Some(node) = &nominated {
                self.queue
                    .add_nominated_pod(qpi.pod_info.clone(), Some(node.as_str()));
            }
            let cycle = self.queue.scheduling_cycle();
            if let Err(err) = self.queue.add_unschedulable_if_not_present(qpi, cycle) {
                tracing::debug!(error = %err, "the pod is queued already");
            }
        } else {
            // Deleted (or bound by someone else) meanwhile: nothing to retry.
            tracing::info!(pod = %qpi.pod_info.key(), "pod is gone or bound in the informer cache; not queued again");
            self.queue.done(qpi.pod_info.uid());
        }
        self.recorder
            .warning(&pod_ref(&pod), "FailedScheduling", &message);
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Err(err) = update_pod_condition(&client, &pod, reason, &message, nominated).await
            {
                tracing::warn!(error = %format!("{err:#}"), "updating the PodScheduled condition failed");
            }
        });
    }
}

/// Whether a pod that failed an attempt should go back to the queue: upstream looks it up in
/// the informer cache and does not when it is gone or already has a node. Without informers
/// (tests) it always does.
fn still_pending(fw: &Framework, pod: &Pod) -> bool {
    let Some(informers) = fw.handle().informers.as_ref() else {
        return true;
    };
    let ns = pod.metadata.namespace.as_deref();
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match informers.informer::<Pod>().store().get_namespaced(ns, name) {
        // Same name, new pod: the informer queued that one on its own.
        Some(current) => {
            current.metadata.uid == pod.metadata.uid && !crate::eventhandlers::is_assigned(&current)
        }
        None => false,
    }
}

/// Sets `PodScheduled=False` with `reason`/`message` (and `nominatedNodeName`) unless the pod
/// already says so (upstream's `updatePod`).
async fn update_pod_condition(
    client: &Client,
    pod: &Pod,
    reason: &str,
    message: &str,
    nominated: Option<String>,
) -> anyhow::Result<()> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    let same = current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some(reason)
            && c.message.as_deref() == Some(message)
    });
    let current_nomination = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.clone());
    let nomination_unchanged = match nominated.as_deref() {
        None => true,
        Some("") => current_nomination.as_deref().is_none_or(str::is_empty),
        Some(node) => current_nomination.as_deref() == Some(node),
    };
    if same && nomination_unchanged {
        return Ok(());
    }
    let mut status = json!({
        "conditions": [{
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": k8s_openapi::jiff::Timestamp::now().to_string(),
        }],
    });
    match nominated {
        Some(node) if node.is_empty() && current_nomination.is_some() => {
            status["nominatedNodeName"] = serde_json::Value::Null;
        }
        Some(node) if node.is_empty() => {}
        Some(node) => status["nominatedNodeName"] = json!(node),
        None => {}
    }
    let patch = json!({"status": status});
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let name = pod.metadata.name.as_deref().unwrap_or("");
    match client
        .api::<Pod>(Some(ns))
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if err.is_not_found() => Ok(()),
        Err(err) => Err(err.into()),
    }
}
