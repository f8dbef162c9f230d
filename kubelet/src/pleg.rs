//! The pod lifecycle event generator (upstream's generic PLEG) and the runtime pod cache.
//!
//! Once a second one relist asks the runtime for every sandbox and container of the node
//! (two CRI calls, whatever the number of pods) and compares their ids and states with the
//! last relist. Only for the pods where something changed is the full status read again
//! (sandbox and container status calls) into the cache, and their workers woken. A worker
//! reads the cache instead of the runtime, except right after it acted on the pod (started
//! or stopped something): then it reads the runtime itself, so it never acts twice on a state
//! older than its own last action (upstream's `GetNewerThan`).
//!
//! Every entry remembers when its read began; a read that began earlier never replaces one
//! that began later, so a relist racing with a worker cannot put an older state back.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cri::v1::{ListContainersRequest, ListPodSandboxRequest};
use cri::CriError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::kuberuntime::actions::RuntimePodStatus;
use crate::kuberuntime::{labels, RuntimeManager};

/// Upstream's relist period.
pub const RELIST_PERIOD: Duration = Duration::from_secs(1);

/// What a relist sees of one pod: each sandbox's and container's id and state.
type Fingerprint = Vec<(String, i32)>;

struct Cached {
    status: RuntimePodStatus,
    /// When the read that produced `status` began.
    read_at: Instant,
}

/// Called with a pod's uid when its runtime state changed.
pub type Listener = Arc<dyn Fn(&str) + Send + Sync>;

/// The node's (or the process's, for hollow nodes) runtime pod cache.
pub struct Pleg {
    manager: Arc<RuntimeManager>,
    cache: Mutex<HashMap<String, Cached>>,
    fingerprints: Mutex<HashMap<String, Fingerprint>>,
    listeners: Mutex<Vec<Listener>>,
}

impl Pleg {
    pub fn new(manager: Arc<RuntimeManager>) -> Arc<Pleg> {
        Arc::new(Pleg {
            manager,
            cache: Mutex::default(),
            fingerprints: Mutex::default(),
            listeners: Mutex::default(),
        })
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `listener` is told about every pod whose state changed.
    pub fn subscribe(&self, listener: Listener) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(listener);
    }

    fn store(&self, uid: &str, status: &RuntimePodStatus, read_at: Instant) {
        let mut cache = self.lock_cache();
        match cache.get_mut(uid) {
            Some(entry) if entry.read_at > read_at => {}
            Some(entry) => {
                entry.status = status.clone();
                entry.read_at = read_at;
            }
            None => {
                cache.insert(
                    uid.to_string(),
                    Cached {
                        status: status.clone(),
                        read_at,
                    },
                );
            }
        }
    }

    /// Reads the pod's state from the runtime now (and caches it).
    pub async fn refresh(&self, uid: &str) -> Result<RuntimePodStatus, CriError> {
        let read_at = Instant::now();
        let status = self.manager.pod_status(uid).await?;
        self.store(uid, &status, read_at);
        Ok(status)
    }

    /// The pod's state as cached, if read after `newer_than`; else read now.
    pub async fn status(
        &self,
        uid: &str,
        newer_than: Option<Instant>,
    ) -> Result<RuntimePodStatus, CriError> {
        {
            let cache = self.lock_cache();
            if let Some(entry) = cache.get(uid) {
                if newer_than.is_none_or(|t| entry.read_at >= t) {
                    return Ok(entry.status.clone());
                }
            }
        }
        self.refresh(uid).await
    }

    /// Forgets a pod that is gone.
    pub fn forget(&self, uid: &str) {
        self.lock_cache().remove(uid);
    }

    /// How many pods are cached.
    pub fn len(&self) -> usize {
        self.lock_cache().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// One relist: the uids whose state changed since the last one (their cache entries are
    /// read again, and the listeners told).
    pub async fn relist(&self) -> Result<Vec<String>, CriError> {
        let runtime = self.manager.runtime.clone();
        let sandboxes = runtime
            .list_pod_sandbox(ListPodSandboxRequest { filter: None })
            .await?
            .items;
        let containers = runtime
            .list_containers(ListContainersRequest { filter: None })
            .await?
            .containers;
        let mut now: HashMap<String, Fingerprint> = HashMap::new();
        let uid_of = |labels_map: &HashMap<String, String>| {
            labels_map.get(labels::POD_UID).cloned().unwrap_or_default()
        };
        for sb in &sandboxes {
            now.entry(uid_of(&sb.labels))
                .or_default()
                .push((sb.id.clone(), sb.state));
        }
        for c in &containers {
            now.entry(uid_of(&c.labels))
                .or_default()
                .push((c.id.clone(), c.state));
        }
        now.remove("");
        for fingerprint in now.values_mut() {
            fingerprint.sort();
        }
        let changed: Vec<String> = {
            let mut last = self.fingerprints.lock().unwrap_or_else(|e| e.into_inner());
            let mut changed: BTreeMap<String, ()> = BTreeMap::new();
            for (uid, fingerprint) in &now {
                if last.get(uid) != Some(fingerprint) {
                    changed.insert(uid.clone(), ());
                }
            }
            for uid in last.keys() {
                if !now.contains_key(uid) {
                    changed.insert(uid.clone(), ());
                }
            }
            *last = now;
            changed.into_keys().collect()
        };
        for uid in &changed {
            if let Err(err) = self.refresh(uid).await {
                tracing::debug!(pod_uid = %uid, error = %err, "reading a changed pod's state");
            }
        }
        let listeners: Vec<Listener> = self
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for uid in &changed {
            for listener in &listeners {
                listener(uid);
            }
        }
        Ok(changed)
    }

    /// Relists every [`RELIST_PERIOD`] until `stop` turns true.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if let Err(err) = self.relist().await {
                tracing::debug!(error = %err, "relisting the runtime's pods");
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(RELIST_PERIOD) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kuberuntime::literal_env;
    use crate::simcri::SimCri;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pod(uid: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": uid, "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}
        }))
        .unwrap_or_default()
    }

    #[tokio::test]
    async fn relists_report_only_pods_that_changed_and_cache_their_state() {
        let sim = Arc::new(SimCri::new());
        let logs = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let manager = Arc::new(RuntimeManager::new(
            sim.clone(),
            sim.clone(),
            logs.path().to_path_buf(),
            "sim",
        ));
        let pleg = Pleg::new(manager.clone());
        let woken = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = woken.clone();
        pleg.subscribe(Arc::new(move |uid: &str| {
            seen.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(uid.to_string())
        }));
        assert!(pleg.relist().await.unwrap_or_default().is_empty());

        // A pod comes up: its sandbox, then its container (two syncs).
        let p = pod("u1");
        for _ in 0..2 {
            let before = manager.pod_status("u1").await.unwrap_or_default();
            if let Err(err) = manager.sync_pod(&p, &before, &literal_env).await {
                panic!("{err}");
            }
        }
        assert_eq!(pleg.relist().await.unwrap_or_default(), ["u1"]);
        assert_eq!(*woken.lock().unwrap_or_else(|e| e.into_inner()), ["u1"]);
        let cached = pleg.status("u1", None).await.unwrap_or_default();
        assert_eq!(cached.sandboxes.len(), 1);
        assert_eq!(cached.containers.len(), 1);
        // Nothing changed: nothing reported.
        assert!(pleg.relist().await.unwrap_or_default().is_empty());

        // An older read never replaces a newer one.
        let old = Instant::now() - Duration::from_secs(5);
        pleg.store("u1", &RuntimePodStatus::default(), old);
        assert_eq!(pleg.status("u1", None).await.unwrap_or_default(), cached);
        // A worker that acted after the cached read reads the runtime again.
        let after = Instant::now() + Duration::from_millis(1);
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(
            pleg.status("u1", Some(after)).await.unwrap_or_default(),
            cached
        );

        // The pod goes: reported once more, then forgotten.
        let st = manager.pod_status("u1").await.unwrap_or_default();
        if let Err(err) = manager.kill_pod(&p, &st, Some(0)).await {
            panic!("{err}");
        }
        let st = manager.pod_status("u1").await.unwrap_or_default();
        if let Err(err) = manager.remove_pod(&st).await {
            panic!("{err}");
        }
        assert_eq!(pleg.relist().await.unwrap_or_default(), ["u1"]);
        pleg.forget("u1");
        assert!(pleg.is_empty());
    }
}
