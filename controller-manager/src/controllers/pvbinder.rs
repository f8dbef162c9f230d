//! The PersistentVolume binder (`persistentvolume-binder-controller`), as upstream's
//! `pkg/controller/volume/persistentvolume` without volume plugins.
//!
//! Implemented, as upstream:
//! - claims without `pv.kubernetes.io/bind-completed` bind to the best volume
//!   ([`matching::find_best_match`]): one pre-bound to them through its claimRef, else the
//!   smallest Available, unclaimed volume of the claim's class (`""` included, the beta
//!   annotation winning over `storageClassName`) with the requested access modes (fewest extra
//!   modes first), volumeMode, size and selector;
//! - claims naming a volume (`spec.volumeName`) bind to it if it fits (`VolumeMismatch` Warning
//!   otherwise) or is pre-bound to them (`FailedBinding` when it is bound to another claim);
//! - binding writes the volume's claimRef (`pv.kubernetes.io/bound-by-controller` when the
//!   controller chose it) and phase Bound, then the claim's volumeName
//!   (`bind-completed`, `bound-by-controller`) and phase Bound with the volume's access modes and
//!   capacity; every write is skipped when already done, so the sync is idempotent;
//! - bound claims whose volume vanished or went to another claim become Lost (`ClaimLost`,
//!   `ClaimMisbound` Warnings); volumes whose claim is gone become Released, then Retain keeps
//!   them, Delete deletes the PersistentVolume object unless `pv.kubernetes.io/provisioned-by`
//!   leaves it to an external provisioner, Recycle fails (`VolumeFailedRecycle`, no recycler);
//!   volumes we bound to a claim that went elsewhere are unbound and Available again;
//! - claims of a WaitForFirstConsumer class wait for `volume.kubernetes.io/selected-node`
//!   (`WaitForFirstConsumer` event); unmatched claims without a class get the Normal
//!   `FailedBinding` "no persistent volumes available for this claim and no storage class is
//!   set"; unmatched claims of a class with an external provisioner get the
//!   `volume.kubernetes.io/storage-provisioner` annotations and the `ExternalProvisioning` event;
//! - a 15 s resync (upstream's `--pvclaimbinder-sync-period`), and any volume change requeues the
//!   unbound claims, so a claim binds as soon as a fitting volume appears.
//!
//! Not implemented: in-tree provisioning and deletion through volume plugins (ProvisioningFailed
//! and friends are not ours; a Delete volume without a provisioner is deleted as an object only),
//! node affinity (only the scheduler checks it), volume attributes classes, CSI migration
//! annotations, and the metrics.

mod matching;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use client::client::DeleteParams;
use client::events::CoreEventRecorder;
use client::informer::{Event, Informer};
use client::{Api, Client};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use workqueue::Queue;

use crate::framework::{
    key_of, run_workers, stop_queue_on_shutdown, warn_event, ControllerContext,
};
use sync::{Cache, Write, ANN_BIND_COMPLETED};

/// Upstream's `--pvclaimbinder-sync-period` default.
const SYNC_PERIOD: Duration = Duration::from_secs(15);

#[derive(Clone)]
struct Binder {
    client: Client,
    volumes: Informer<PersistentVolume>,
    claims: Informer<PersistentVolumeClaim>,
    classes: Informer<StorageClass>,
    claim_queue: Queue<String>,
    recorder: Arc<CoreEventRecorder>,
}

fn unbound(claim: &PersistentVolumeClaim) -> bool {
    !claim
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(ANN_BIND_COMPLETED))
}

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let volume_queue: Queue<String> = Queue::new("volumes");
    let claim_queue: Queue<String> = Queue::new("claims");
    stop_queue_on_shutdown(ctx, volume_queue.clone());
    stop_queue_on_shutdown(ctx, claim_queue.clone());
    let volumes = ctx.factory.informer::<PersistentVolume>();
    let claims = ctx.factory.informer::<PersistentVolumeClaim>();
    let classes = ctx.factory.informer::<StorageClass>();
    {
        let (vq, cq, claims) = (volume_queue.clone(), claim_queue.clone(), claims.clone());
        volumes.add_event_handler(Some(SYNC_PERIOD), move |event| {
            let volume = match &event {
                Event::Add(v) | Event::Update { new: v, .. } => v.clone(),
                Event::Delete(d) => d.object().clone(),
            };
            if let Event::Delete(_) = event {
                // Its claim (if any) must notice it is Lost.
                if let Some(r) = volume.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) {
                    cq.add(format!(
                        "{}/{}",
                        r.namespace.as_deref().unwrap_or(""),
                        r.name.as_deref().unwrap_or("")
                    ));
                }
            } else {
                vq.add(key_of(&*volume));
            }
            // A volume that appeared or changed may fit a waiting claim.
            for claim in claims.store().list() {
                if unbound(&claim) {
                    cq.add(key_of(&*claim));
                }
            }
        });
    }
    {
        let (vq, cq) = (volume_queue.clone(), claim_queue.clone());
        claims.add_event_handler(Some(SYNC_PERIOD), move |event| match event {
            Event::Add(c) | Event::Update { new: c, .. } => cq.add(key_of(&*c)),
            Event::Delete(d) => {
                // Its volume becomes Released.
                if let Some(name) = d
                    .object()
                    .spec
                    .as_ref()
                    .and_then(|s| s.volume_name.as_deref())
                    .filter(|n| !n.is_empty())
                {
                    vq.add(name.to_string());
                }
            }
        });
    }
    let binder = Binder {
        client: ctx.client.clone(),
        volumes,
        claims,
        classes,
        claim_queue: claim_queue.clone(),
        recorder: Arc::new(ctx.recorder("persistentvolume-controller")),
    };
    {
        let binder = binder.clone();
        run_workers(
            "persistentvolume-binder-controller",
            claim_queue,
            1,
            move |key| {
                let binder = binder.clone();
                async move { binder.sync_claim(&key).await }
            },
        );
    }
    run_workers(
        "persistentvolume-binder-controller",
        volume_queue,
        1,
        move |key| {
            let binder = binder.clone();
            async move { binder.sync_volume(&key).await }
        },
    );
    Ok(())
}

impl Binder {
    /// Acting on half-filled caches would report missing volumes as lost.
    fn synced(&self) -> anyhow::Result<()> {
        if self.volumes.has_synced() && self.claims.has_synced() && self.classes.has_synced() {
            Ok(())
        } else {
            Err(anyhow!(
                "waiting for the volume, claim and class caches to sync"
            ))
        }
    }

    async fn sync_claim(&self, key: &str) -> anyhow::Result<()> {
        self.synced()?;
        let Some(claim) = self.claims.store().get(key) else {
            return Ok(());
        };
        let volumes = self.volumes.store().list();
        let classes = self.classes.store().list();
        let cache = Cache {
            volumes: &volumes,
            classes: &classes,
        };
        match sync::sync_claim(&claim, &cache) {
            Ok(writes) => self.apply(writes).await,
            Err(err) => {
                warn_event(
                    &self.recorder,
                    &crate::framework::reference(&*claim),
                    "FailedBinding",
                    &err,
                );
                Err(anyhow!("syncing claim {key}: {err}"))
            }
        }
    }

    async fn sync_volume(&self, key: &str) -> anyhow::Result<()> {
        self.synced()?;
        let Some(volume) = self.volumes.store().get(key) else {
            return Ok(());
        };
        let claim = volume
            .spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .and_then(|r| {
                self.claims
                    .store()
                    .get_namespaced(r.namespace.as_deref(), r.name.as_deref().unwrap_or(""))
            });
        self.apply(sync::sync_volume(&volume, claim.as_deref()))
            .await
    }

    /// Performs the writes in order; a later write of the same object carries the
    /// resourceVersion the earlier one returned. A vanished object ends the sync quietly; any
    /// other failure (a Conflict above all) requeues it.
    async fn apply(&self, writes: Vec<Write>) -> anyhow::Result<()> {
        let pvs: Api<PersistentVolume> = self.client.api(None);
        let mut volume_version: Option<String> = None;
        let mut claim_version: Option<String> = None;
        for write in writes {
            let result = match write {
                Write::Volume(mut v) => {
                    if let Some(rv) = volume_version.take() {
                        v.metadata.resource_version = Some(rv);
                    }
                    let name = v.metadata.name.clone().unwrap_or_default();
                    pvs.replace(&name, &v)
                        .await
                        .map(|out| volume_version = out.metadata.resource_version)
                }
                Write::VolumeStatus(mut v) => {
                    if let Some(rv) = volume_version.take() {
                        v.metadata.resource_version = Some(rv);
                    }
                    let name = v.metadata.name.clone().unwrap_or_default();
                    pvs.replace_status(&name, &v)
                        .await
                        .map(|out| volume_version = out.metadata.resource_version)
                }
                Write::Claim(mut c) => {
                    if let Some(rv) = claim_version.take() {
                        c.metadata.resource_version = Some(rv);
                    }
                    let api: Api<PersistentVolumeClaim> =
                        self.client.api(c.metadata.namespace.as_deref());
                    let name = c.metadata.name.clone().unwrap_or_default();
                    api.replace(&name, &c)
                        .await
                        .map(|out| claim_version = out.metadata.resource_version)
                }
                Write::ClaimStatus(mut c) => {
                    if let Some(rv) = claim_version.take() {
                        c.metadata.resource_version = Some(rv);
                    }
                    let api: Api<PersistentVolumeClaim> =
                        self.client.api(c.metadata.namespace.as_deref());
                    let name = c.metadata.name.clone().unwrap_or_default();
                    api.replace_status(&name, &c)
                        .await
                        .map(|out| claim_version = out.metadata.resource_version)
                }
                Write::DeleteVolume(name) => {
                    tracing::info!(volume = %name, "deleting released volume (reclaim policy Delete)");
                    pvs.delete(&name, &DeleteParams::default()).await
                }
                Write::Event {
                    object,
                    warning,
                    reason,
                    message,
                } => {
                    if warning {
                        warn_event(&self.recorder, &object, reason, &message);
                    } else {
                        self.recorder.normal(&object, reason, &message);
                    }
                    Ok(())
                }
                Write::EnqueueClaim(key) => {
                    self.claim_queue.add(key);
                    Ok(())
                }
            };
            match result {
                Ok(()) => {}
                Err(err) if err.is_not_found() => return Ok(()),
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }
}
