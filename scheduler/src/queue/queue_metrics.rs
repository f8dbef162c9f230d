//! The queue's metrics: `scheduler_pending_pods{queue}` and
//! `scheduler_queue_incoming_pods_total{queue,event}`.

use super::QueueName;

pub(super) struct QueueMetrics {
    pub(super) active: metrics::Gauge,
    pub(super) backoff: metrics::Gauge,
    pub(super) unschedulable: metrics::Gauge,
    pub(super) gated: metrics::Gauge,
    incoming: metrics::CounterVec,
}

impl QueueMetrics {
    pub(super) fn new(registry: &metrics::Registry) -> QueueMetrics {
        let pending = registry.gauge_vec(
            "scheduler_pending_pods",
            "Number of pending pods, by the queue type. 'active' means number of pods in activeQ; \
             'backoff' means number of pods in backoffQ; 'unschedulable' means number of pods in \
             unschedulablePods that the scheduler attempted to schedule and failed; 'gated' is the \
             number of unschedulable pods that the scheduler never attempted to schedule because \
             they are gated.",
            &["queue"],
        );
        QueueMetrics {
            active: pending.with(&["active"]),
            backoff: pending.with(&["backoff"]),
            unschedulable: pending.with(&["unschedulable"]),
            gated: pending.with(&["gated"]),
            incoming: registry.counter_vec(
                "scheduler_queue_incoming_pods_total",
                "Number of pods added to scheduling queues by event and queue type.",
                &["queue", "event"],
            ),
        }
    }

    pub(super) fn incoming(&self, queue: QueueName, event: &str) {
        self.incoming.with(&[queue.label(), event]).inc();
    }
}
