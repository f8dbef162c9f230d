//! Per-namespace defaults: the `default` ServiceAccount (upstream's serviceaccount-controller)
//! and the `kube-root-ca.crt` ConfigMap holding the cluster's CA bundle
//! (root-ca-certificate-publisher-controller). Both are keyed by namespace and recreate what a
//! user deletes.

use std::collections::BTreeMap;
use std::sync::Arc;

use client::informer::{Event, Scope};
use client::Api;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::ObjectMeta;
use workqueue::Queue;

use crate::framework::{run_workers, stop_queue_on_shutdown, ControllerContext};

const DEFAULT_SERVICE_ACCOUNT: &str = "default";
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const ROOT_CA_KEY: &str = "ca.crt";
/// Upstream's `--concurrent-serviceaccount-syncs` has no flag of its own; it runs one worker.
const SA_WORKERS: usize = 1;
const ROOT_CA_WORKERS: usize = 1;

fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Namespaces queue themselves; objects of `K` queue their namespace when `matches` says they
/// are the per-namespace object.
fn queue_namespaces(
    ctx: &ControllerContext,
    name: &str,
) -> (Queue<String>, client::Informer<Namespace>) {
    let queue: Queue<String> = Queue::new(name);
    let namespaces = ctx.factory.informer::<Namespace>();
    let q = queue.clone();
    namespaces.add_event_handler(None, move |event| match event {
        Event::Add(ns) | Event::Update { new: ns, .. } => {
            if let Some(name) = &ns.metadata.name {
                q.add(name.clone());
            }
        }
        Event::Delete(_) => {}
    });
    stop_queue_on_shutdown(ctx, queue.clone());
    (queue, namespaces)
}

pub fn start_serviceaccount_controller(ctx: &ControllerContext) -> anyhow::Result<()> {
    let (queue, namespaces) = queue_namespaces(ctx, "serviceaccount");
    let accounts = ctx.factory.informer_for::<ServiceAccount>(
        Scope::all().fields(&format!("metadata.name={DEFAULT_SERVICE_ACCOUNT}")),
    );
    {
        let q = queue.clone();
        accounts.add_event_handler(None, move |event| {
            if let Event::Delete(deleted) = event {
                if let Some(ns) = &deleted.object().metadata.namespace {
                    q.add(ns.clone());
                }
            }
        });
    }
    let client = ctx.client.clone();
    run_workers(
        "serviceaccount-controller",
        queue,
        SA_WORKERS,
        move |ns: String| {
            let (client, namespaces, accounts) =
                (client.clone(), namespaces.clone(), accounts.clone());
            async move {
                let Some(namespace) = namespaces.store().get(&ns) else {
                    return Ok(());
                };
                if !active(&namespace)
                    || accounts
                        .store()
                        .get_namespaced(Some(&ns), DEFAULT_SERVICE_ACCOUNT)
                        .is_some()
                {
                    return Ok(());
                }
                let api: Api<ServiceAccount> = client.api(Some(&ns));
                let sa = ServiceAccount {
                    metadata: ObjectMeta {
                        name: Some(DEFAULT_SERVICE_ACCOUNT.into()),
                        namespace: Some(ns.clone()),
                        ..ObjectMeta::default()
                    },
                    ..ServiceAccount::default()
                };
                match api.create(&sa).await {
                    Ok(_) => Ok(()),
                    // Someone made it first, or the namespace began terminating meanwhile.
                    Err(err)
                        if err.is_already_exists() || err.is_forbidden() || err.is_not_found() =>
                    {
                        Ok(())
                    }
                    Err(err) => Err(err.into()),
                }
            }
        },
    );
    Ok(())
}

/// The CA bundle to publish: `--root-ca-file`, else the CA this manager trusts its apiserver
/// with (from its kubeconfig), as upstream.
async fn root_ca(ctx: &ControllerContext) -> anyhow::Result<Option<String>> {
    if let Some(path) = &ctx.options.root_ca_file {
        let pem = std::fs::read_to_string(path)
            .map_err(|err| anyhow::anyhow!("reading --root-ca-file {}: {err}", path.display()))?;
        return Ok(Some(pem));
    }
    let config = ctx.options.client.load().await?;
    Ok(config.root_cert.map(|ders| {
        ders.iter()
            .map(|der| pem_encode("CERTIFICATE", der))
            .collect::<Vec<_>>()
            .join("")
    }))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

pub fn start_root_ca_publisher(ctx: &ControllerContext) -> anyhow::Result<()> {
    let (queue, namespaces) = queue_namespaces(ctx, "root_ca_cert_publisher");
    let maps = ctx.factory.informer_for::<ConfigMap>(
        Scope::all().fields(&format!("metadata.name={ROOT_CA_CONFIGMAP}")),
    );
    {
        let q = queue.clone();
        maps.add_event_handler(None, move |event| {
            let obj = match &event {
                Event::Add(o) | Event::Update { new: o, .. } => o.clone(),
                Event::Delete(d) => d.object().clone(),
            };
            if let Some(ns) = &obj.metadata.namespace {
                q.add(ns.clone());
            }
        });
    }
    let ctx = ctx.clone();
    tokio::spawn(async move {
        let ca = match root_ca(&ctx).await {
            Ok(Some(ca)) => Arc::new(ca),
            Ok(None) => {
                tracing::warn!("no --root-ca-file and no CA in the kubeconfig: kube-root-ca.crt is not published");
                return;
            }
            Err(err) => {
                tracing::error!(error = %format!("{err:#}"), "root-ca-certificate-publisher cannot start");
                return;
            }
        };
        let client = ctx.client.clone();
        run_workers(
            "root-ca-certificate-publisher-controller",
            queue,
            ROOT_CA_WORKERS,
            move |ns: String| {
                let (client, namespaces, maps, ca) =
                    (client.clone(), namespaces.clone(), maps.clone(), ca.clone());
                async move {
                    let Some(namespace) = namespaces.store().get(&ns) else {
                        return Ok(());
                    };
                    if !active(&namespace) {
                        return Ok(());
                    }
                    let want = BTreeMap::from([(ROOT_CA_KEY.to_string(), ca.as_str().to_string())]);
                    let api: Api<ConfigMap> = client.api(Some(&ns));
                    match maps.store().get_namespaced(Some(&ns), ROOT_CA_CONFIGMAP) {
                        Some(current) if current.data.as_ref() == Some(&want) => Ok(()),
                        Some(current) => {
                            let mut updated = (*current).clone();
                            updated.data = Some(want);
                            match api.replace(ROOT_CA_CONFIGMAP, &updated).await {
                                Ok(_) => Ok(()),
                                Err(err) if err.is_not_found() => Ok(()),
                                Err(err) => Err(err.into()),
                            }
                        }
                        None => {
                            let cm = ConfigMap {
                            metadata: ObjectMeta {
                                name: Some(ROOT_CA_CONFIGMAP.into()),
                                namespace: Some(ns.clone()),
                                annotations: Some(BTreeMap::from([(
                                    "kubernetes.io/description".to_string(),
                                    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.".to_string(),
                                )])),
                                ..ObjectMeta::default()
                            },
                            data: Some(want),
                            ..ConfigMap::default()
                        };
                            match api.create(&cm).await {
                                Ok(_) => Ok(()),
                                Err(err)
                                    if err.is_already_exists()
                                        || err.is_forbidden()
                                        || err.is_not_found() =>
                                {
                                    Ok(())
                                }
                                Err(err) => Err(err.into()),
                            }
                        }
                    }
                }
            },
        );
    });
    Ok(())
}
