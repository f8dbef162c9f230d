//! kube-rs against the real server: a reflector (`kube::runtime::reflector` over a `watcher`)
//! on ConfigMaps must converge to exactly what a fresh list returns, across 1,000 updates made
//! by 8 concurrent writers and a server restart (same data, same port) in the middle.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{ApiServer, Backend};
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;

const WRITERS: usize = 8;
const UPDATES: usize = 1000;
const OBJECTS_PER_WRITER: usize = 4;
/// How long a write may keep failing (the restart window) before the test gives up.
const WRITE_PATIENCE: Duration = Duration::from_secs(60);

fn client(server: &ApiServer) -> anyhow::Result<Client> {
    let config = kube::Config::new(server.url().parse()?);
    Ok(Client::try_from(config)?)
}

/// What identifies a ConfigMap's state: its resourceVersion and data, by name.
fn snapshot<'a>(items: impl Iterator<Item = &'a ConfigMap>) -> BTreeMap<String, (String, String)> {
    items
        .map(|cm| {
            (
                cm.metadata.name.clone().unwrap_or_default(),
                (
                    cm.metadata.resource_version.clone().unwrap_or_default(),
                    format!("{:?}", cm.data),
                ),
            )
        })
        .collect()
}

async fn patch_until_ok(api: &Api<ConfigMap>, name: &str, value: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + WRITE_PATIENCE;
    let patch = serde_json::json!({"data": {"n": value.to_string()}});
    loop {
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) if Instant::now() < deadline => {
                tracing_free_log(&format!("patch {name} failed, retrying: {err}"));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Only the first failures are worth reading; the restart produces a burst of them.
fn tracing_free_log(message: &str) {
    static LOGGED: AtomicUsize = AtomicUsize::new(0);
    if LOGGED.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!("{message}");
    }
}

async fn reflector_matches_a_fresh_list(backend: Backend) -> anyhow::Result<()> {
    let mut server = ApiServer::start(backend);
    let api: Api<ConfigMap> = Api::namespaced(client(&server)?, "default");
    for w in 0..WRITERS {
        for o in 0..OBJECTS_PER_WRITER {
            let cm: ConfigMap = serde_json::from_value(serde_json::json!({
                "metadata": {"name": format!("cm-{w}-{o}")},
                "data": {"n": "0"},
            }))?;
            api.create(&PostParams::default(), &cm).await?;
        }
    }

    let (store, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .default_backoff()
        .applied_objects();
    let reflector_task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        // Errors are retried by the backoff; the stream only ends when the task is aborted.
        while stream.next().await.is_some() {}
    });
    tokio::time::timeout(Duration::from_secs(30), store.wait_until_ready()).await??;

    let per_writer = UPDATES / WRITERS;
    let done = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let api = api.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            for i in 1..=per_writer {
                let name = format!("cm-{w}-{}", i % OBJECTS_PER_WRITER);
                patch_until_ok(&api, &name, i).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }

    // Restart the server in the middle of the writes.
    let started = Instant::now();
    while done.load(Ordering::Relaxed) < UPDATES / 2 {
        assert!(
            started.elapsed() < WRITE_PATIENCE,
            "the writers made no progress"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::block_in_place(|| server.restart());
    let at_restart = done.load(Ordering::Relaxed);
    assert!(
        at_restart < UPDATES,
        "every write finished before the restart"
    );
    for writer in writers {
        writer.await??;
    }

    // Every writer's last value is there, and the reflector converges to the fresh list.
    let listed = api.list(&ListParams::default()).await?;
    let want = snapshot(listed.items.iter());
    assert_eq!(want.len(), WRITERS * OBJECTS_PER_WRITER);
    for w in 0..WRITERS {
        let last = (per_writer - OBJECTS_PER_WRITER + 1..=per_writer)
            .map(|i| (format!("cm-{w}-{}", i % OBJECTS_PER_WRITER), i))
            .collect::<Vec<_>>();
        for (name, i) in last {
            let got = want.get(&name).map(|(_, data)| data.clone());
            assert_eq!(
                got,
                Some(format!(
                    "{:?}",
                    Some(BTreeMap::from([("n".to_string(), i.to_string())]))
                )),
                "{name}"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = store.state();
        let got = snapshot(state.iter().map(|cm| cm.as_ref()));
        if got == want {
            break;
        }
        if Instant::now() >= deadline {
            reflector_task.abort();
            panic!("the reflector never matched the list:\nreflector: {got:#?}\nlist: {want:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reflector_task.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_updates_and_a_restart_embedded() -> anyhow::Result<()> {
    reflector_matches_a_fresh_list(Backend::Embedded).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflector_survives_updates_and_a_restart_etcd() -> anyhow::Result<()> {
    reflector_matches_a_fresh_list(Backend::Etcd).await
}
