//! Periodic compaction, as upstream's `--etcd-compaction-interval` does it: at every tick, compact
//! to the revision that was current at the previous tick, so watchers always have at least one
//! interval of history to resume from. Works on any [`Storage`].

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::Storage;

/// Upstream's default `--etcd-compaction-interval`.
pub const DEFAULT_COMPACTION_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Starts compacting `store` every `interval` until the returned task is aborted.
/// A zero interval disables compaction (the task returns at once), as upstream's `0` does.
pub fn spawn_compactor(store: Arc<dyn Storage>, interval: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        if interval.is_zero() {
            return;
        }
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut previous: Option<u64> = None;
        loop {
            ticker.tick().await;
            if let Some(target) = previous.filter(|r| *r > 0) {
                match store.compact(target).await {
                    Ok(()) => tracing::info!(revision = target, "compacted storage history"),
                    Err(err) => tracing::warn!(revision = target, %err, "compaction failed"),
                }
            }
            match store.current_revision().await {
                Ok(revision) => previous = Some(revision),
                Err(err) => tracing::warn!(%err, "compactor could not read the current revision"),
            }
        }
    })
}
