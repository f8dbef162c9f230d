//! kube-controller-manager: one process, one shared informer per resource, each controller its
//! own module with a level-triggered `reconcile(key)` over a workqueue, leader-elected.

pub mod controllers;
pub mod framework;
pub mod options;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use client::leaderelection::{default_identity, LeaderElector, Outcome};
use client::{Client, SharedInformerFactory};

use crate::framework::ControllerContext;
pub use crate::options::Options;

/// Upstream kube-controller-manager's client defaults (`--kube-api-qps`, `--kube-api-burst`).
const DEFAULT_QPS: f32 = 20.0;
const DEFAULT_BURST: u32 = 30;
/// How long to wait for the informers' first lists before controllers start acting anyway.
const CACHE_SYNC_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs until SIGTERM/SIGINT (Ok) or until leadership is lost (Err).
pub async fn run(options: Options) -> anyhow::Result<()> {
    options
        .validate_controllers(&controllers::known())
        .map_err(|err| anyhow::anyhow!("--controllers: {err}"))?;
    let client = Client::from_args(
        &options.client,
        "kube-controller-manager",
        DEFAULT_QPS,
        DEFAULT_BURST,
    )
    .await
    .context("kube-controller-manager cannot reach its apiserver")?;
    let options = Arc::new(options);
    let serving = serving::SecureServing {
        bind_address: options.bind_address,
        port: options.secure_port,
        cert_dir: options.cert_dir.clone(),
        cert_file: options.tls_cert_file.clone(),
        key_file: options.tls_private_key_file.clone(),
        name: "kube-controller-manager".into(),
    };
    if serving.port != 0 {
        // Upstream's controller-manager: missing auth kubeconfigs are warnings, a failed
        // lookup of the published client CA is not tolerated.
        let auth = options
            .delegated_auth
            .build("kube-controller-manager", false)
            .await
            .context("kube-controller-manager's secure port authentication and authorization")?;
        serving::serve_with_auth(serving, Arc::new(|| Ok(())), Arc::new(auth)).await?;
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    if !options.leader_election.leader_elect {
        start_controllers(&client, &options, stop_rx)?;
        serving::shutdown_signal().await;
        stop_tx.send_replace(true);
        return Ok(());
    }
    let config = options
        .leader_election
        .config("kube-controller-manager", default_identity())
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let elector = LeaderElector::new(&client, config).map_err(|err| anyhow::anyhow!("{err}"))?;
    let started = {
        let (client, options) = (client.clone(), options.clone());
        move |leadership: client::leaderelection::Leadership| async move {
            if let Err(err) = start_controllers(&client, &options, stop_rx) {
                tracing::error!(error = %format!("{err:#}"), "starting controllers failed");
                return;
            }
            let mut leadership = leadership;
            leadership.lost().await;
        }
    };
    let outcome = elector.run(serving::shutdown_signal(), started).await;
    stop_tx.send_replace(true);
    match outcome {
        Outcome::Lost => anyhow::bail!("leaderelection lost"),
        Outcome::NeverLed | Outcome::Released => Ok(()),
    }
}

fn start_controllers(
    client: &Client,
    options: &Arc<Options>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let factory = SharedInformerFactory::new(client.clone()).stripping_managed_fields();
    let ctx = ControllerContext {
        client: client.clone(),
        factory: factory.clone(),
        options: options.clone(),
        stop,
    };
    for descriptor in controllers::all() {
        if !options.controller_enabled(&descriptor.name) {
            tracing::info!(controller = descriptor.name.name, "controller is disabled");
            continue;
        }
        (descriptor.start)(&ctx).with_context(|| format!("starting {}", descriptor.name.name))?;
        tracing::info!(controller = descriptor.name.name, "started controller");
    }
    factory.start();
    tokio::spawn(async move {
        if factory.wait_for_cache_sync(CACHE_SYNC_TIMEOUT).await {
            tracing::info!("caches are synced");
        } else {
            tracing::warn!("caches did not sync within {CACHE_SYNC_TIMEOUT:?}; controllers go on with what they have");
        }
    });
    Ok(())
}
