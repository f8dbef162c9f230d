//! PrioritySort (upstream's `queuesort.PrioritySort`): activeQ pops pods with a higher
//! `spec.priority` first, and among equal priorities the one queued earlier.

use std::sync::Arc;

use crate::framework::{pod_priority, Handle, Plugin, QueueSortPlugin, QueuedPodInfo};

pub const NAME: &str = "PrioritySort";

#[derive(Debug, Default)]
pub struct PrioritySort;

pub fn new(_args: Option<&serde_json::Value>, _handle: &Handle) -> anyhow::Result<Arc<dyn Plugin>> {
    Ok(Arc::new(PrioritySort))
}

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }

    fn queue_sort(&self) -> Option<&dyn QueueSortPlugin> {
        Some(self)
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        let (pa, pb) = (pod_priority(a.pod()), pod_priority(b.pod()));
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;
    use std::time::Duration;
    use tokio::time::Instant;

    fn queued(priority: Option<i32>, at: Instant) -> QueuedPodInfo {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [], "priority": priority},
        }))
        .expect("pod");
        QueuedPodInfo::new(Arc::new(pod), at)
    }

    #[test]
    fn higher_priority_first_then_earlier_timestamp() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_secs(1);
        let sort = PrioritySort;
        let cases = [
            // (a, b, a before b)
            (queued(Some(10), t1), queued(Some(5), t0), true),
            (queued(Some(5), t0), queued(Some(10), t1), false),
            (queued(Some(5), t0), queued(Some(5), t1), true),
            (queued(Some(5), t1), queued(Some(5), t0), false),
            (queued(Some(5), t0), queued(Some(5), t0), false),
            // An unset priority is 0; negative priorities exist.
            (queued(None, t1), queued(Some(-1), t0), true),
            (queued(None, t0), queued(Some(0), t1), true),
        ];
        for (i, (a, b, want)) in cases.iter().enumerate() {
            assert_eq!(sort.less(a, b), *want, "case {i}");
        }
    }
}
