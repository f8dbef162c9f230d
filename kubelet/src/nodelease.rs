//! The node's Lease in `kube-node-lease` (coordination.k8s.io/v1), as upstream's lease
//! controller (`component-helpers/apimachinery/lease`) runs it for the kubelet: named after the
//! node, `holderIdentity` the node's name, `leaseDurationSeconds` from the configuration, and
//! `renewTime` renewed every quarter of the duration (10 s by default, with 4% jitter).
//!
//! A renewal updates (PUT) the last Lease seen, so a concurrent writer is noticed as a conflict;
//! when that fails the Lease is read again, or created when it is missing (retried with
//! backoff, 100 ms doubling to 7 s). Until it has one, every renewal tries to give the Lease an
//! ownerReference to the Node (it needs the Node's UID, and the Lease may exist before the
//! Node), so that deleting the Node lets the garbage collector delete its Lease.

use std::time::Duration;

use client::Api;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use tokio::sync::watch;

pub const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Upstream's `nodeLeaseRenewIntervalFraction`.
pub const RENEW_INTERVAL_FRACTION: f64 = 0.25;
const MAX_UPDATE_RETRIES: usize = 5;
const MAX_BACKOFF: Duration = Duration::from_secs(7);
const JITTER: f64 = 0.04;

pub struct NodeLeaseController {
    node_name: String,
    lease_duration_seconds: i32,
    renew_interval: Duration,
    leases: Api<Lease>,
    nodes: Api<Node>,
    latest: Option<Lease>,
}

impl NodeLeaseController {
    /// `leases` and `nodes` should come from the heartbeat client.
    pub fn new(
        node_name: &str,
        lease_duration_seconds: u32,
        leases: Api<Lease>,
        nodes: Api<Node>,
    ) -> NodeLeaseController {
        let seconds = f64::from(lease_duration_seconds) * RENEW_INTERVAL_FRACTION;
        NodeLeaseController {
            node_name: node_name.to_string(),
            lease_duration_seconds: i32::try_from(lease_duration_seconds).unwrap_or(i32::MAX),
            renew_interval: Duration::from_secs_f64(seconds.max(0.001)),
            leases,
            nodes,
            latest: None,
        }
    }

    pub fn renew_interval(&self) -> Duration {
        self.renew_interval
    }

    /// Renews until `stop`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            if !self.sync(&mut stop).await {
                return;
            }
            let jitter = 1.0 + rand::random::<f64>() * JITTER;
            tokio::select! {
                _ = tokio::time::sleep(self.renew_interval.mul_f64(jitter)) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// One renewal; `false` when stopped.
    pub async fn sync(&mut self, stop: &mut watch::Receiver<bool>) -> bool {
        if let Some(latest) = self.latest.clone() {
            match self.retry_update_lease(latest, stop).await {
                Some(Ok(())) => return true,
                Some(Err(err)) => tracing::debug!(
                    node = %self.node_name,
                    error = %err,
                    "failed to update lease using latest lease, fallback to ensure lease"
                ),
                None => return false,
            }
        }
        let Some((lease, created)) = self.backoff_ensure_lease(stop).await else {
            return false;
        };
        self.latest = Some(lease.clone());
        if !created {
            match self.retry_update_lease(lease, stop).await {
                Some(Ok(())) => {}
                Some(Err(err)) => {
                    tracing::error!(node = %self.node_name, error = %err, "failed to update lease")
                }
                None => return false,
            }
        }
        true
    }

    /// The Lease to write: `base` (or a new one) with `renewTime` now and, while it has none,
    /// an owner reference to the Node.
    async fn new_lease(&self, base: Option<&Lease>) -> Lease {
        let mut lease = match base {
            Some(base) => base.clone(),
            None => Lease {
                metadata: ObjectMeta {
                    name: Some(self.node_name.clone()),
                    namespace: Some(LEASE_NAMESPACE.to_string()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.node_name.clone()),
                    lease_duration_seconds: Some(self.lease_duration_seconds),
                    ..LeaseSpec::default()
                }),
            },
        };
        lease.spec.get_or_insert_with(LeaseSpec::default).renew_time =
            Some(MicroTime(Timestamp::now()));
        if lease
            .metadata
            .owner_references
            .as_ref()
            .is_none_or(|o| o.is_empty())
        {
            match self.nodes.get(&self.node_name).await {
                Ok(node) => {
                    if let Some(uid) = node.metadata.uid {
                        lease.metadata.owner_references = Some(vec![OwnerReference {
                            api_version: "v1".to_string(),
                            kind: "Node".to_string(),
                            name: self.node_name.clone(),
                            uid,
                            ..OwnerReference::default()
                        }]);
                    }
                }
                Err(err) => tracing::debug!(
                    node = %self.node_name,
                    error = %err,
                    "failed to get node when trying to set owner ref to the node lease"
                ),
            }
        }
        lease
    }

    /// Gets the Lease, creating it when missing; retried with backoff. `None` when stopped;
    /// `Some((lease, created))` otherwise.
    async fn backoff_ensure_lease(
        &self,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<(Lease, bool)> {
        let mut sleep = Duration::from_millis(100);
        loop {
            match self.ensure_lease().await {
                Ok(found) => return Some(found),
                Err(err) => {
                    sleep = (sleep * 2).min(MAX_BACKOFF);
                    tracing::error!(
                        node = %self.node_name,
                        error = %err,
                        interval = ?sleep,
                        "failed to ensure lease exists, will retry"
                    );
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = stop.wait_for(|s| *s) => return None,
            }
        }
    }

    async fn ensure_lease(&self) -> Result<(Lease, bool), client::Error> {
        match self.leases.get_opt(&self.node_name).await? {
            Some(lease) => Ok((lease, false)),
            None => {
                let lease = self.new_lease(None).await;
                let created = self.leases.create(&lease).await?;
                Ok((created, true))
            }
        }
    }

    /// Up to five updates from `base`; a conflict reads the Lease again first. `None` when
    /// stopped.
    async fn retry_update_lease(
        &mut self,
        mut base: Lease,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Result<(), String>> {
        for _ in 0..MAX_UPDATE_RETRIES {
            let lease = self.new_lease(Some(&base)).await;
            match self.replace(&lease).await {
                Ok(updated) => {
                    self.latest = Some(updated);
                    return Some(Ok(()));
                }
                Err(err) => {
                    tracing::error!(node = %self.node_name, error = %err, "failed to update lease");
                    if err.is_conflict() {
                        let (fresh, _) = self.backoff_ensure_lease(stop).await?;
                        base = fresh;
                    }
                }
            }
        }
        Some(Err(format!(
            "failed {MAX_UPDATE_RETRIES} attempts to update lease"
        )))
    }

    async fn replace(&self, lease: &Lease) -> Result<Lease, client::Error> {
        self.leases.replace(&self.node_name, lease).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_client() -> client::Client {
        let Ok(url) = "http://127.0.0.1:9".parse() else {
            panic!("url");
        };
        client::Client::new(kube::Config::new(url), client::ClientOptions::new("test")).unwrap()
    }

    #[tokio::test]
    async fn the_renew_interval_is_a_quarter_of_the_duration() {
        let client = offline_client();
        let lease = |seconds| {
            NodeLeaseController::new(
                "n1",
                seconds,
                client.api(Some(LEASE_NAMESPACE)),
                client.api(None),
            )
        };
        assert_eq!(lease(40).renew_interval(), Duration::from_secs(10));
        assert_eq!(lease(8).renew_interval(), Duration::from_secs(2));
    }
}
