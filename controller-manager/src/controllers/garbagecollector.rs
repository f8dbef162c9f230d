//! The garbage collector (upstream's pkg/controller/garbagecollector): deletes objects whose
//! owners are gone, and carries out the `Foreground` and `Orphan` propagation policies the
//! apiserver records as the `foregroundDeletion` / `orphan` finalizers.
//!
//! - **Monitors.** Every resource that supports list, watch and delete (preferred version, core
//!   and `events.k8s.io` Events excepted as upstream) gets a `DynamicObject` informer from the
//!   shared factory; discovery is read again every [`RESYNC_DISCOVERY`] to pick up new resources.
//! - **Graph** ([`graph`]): owner UID -> dependents, with virtual nodes for owners known only from
//!   a reference. Informer handlers update it and queue the work it implies.
//! - **attemptToDelete** ([`plan`] decides): a live GET of the item and of each owner (by kind,
//!   name and namespace, compared by UID) classifies owners as solid, dangling or waiting; with
//!   no solid owner the item is deleted (preconditions: UID and resourceVersion), so a slow
//!   informer never deletes a live object's children. An owner deleting its dependents in the
//!   foreground loses its finalizer once no dependent with `blockOwnerDeletion` remains.
//!   Dependents of a foreground owner that have dependents themselves go in the foreground too;
//!   in a cycle of such, blocking references are released first so nothing waits forever.
//! - **attemptToOrphan**: every dependent the graph knows drops its reference to the owner, then
//!   the `orphan` finalizer is removed.
//! - **Namespaces.** A namespaced owner must be in its dependent's namespace: one observed
//!   elsewhere is an `OwnerRefInvalidNamespace` Warning and counts as absent; a cluster-scoped
//!   dependent naming a namespaced kind is unresolvable (Warning, never collected), as upstream.
//!
//! Not implemented: the absent-owner LRU cache (each check GETs the owner), metadata-only
//! informers (whole objects are cached), stopping monitors of resources that disappear from
//! discovery, the `/debug/controllers/garbagecollector/graph` dump, and upstream's disagreement
//! handling for dependents that name one owner UID with different coordinates (each dependent's
//! own live check decides for it).

pub mod graph;
pub mod plan;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use client::client::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use client::discovery::{Discovered, Discovery, DynamicObject};
use client::events::CoreEventRecorder;
use client::informer::{Event, Scope};
use client::{Api, Client, SharedInformerFactory};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::core::ApiResource;
use serde_json::{json, Value};
use workqueue::Queue;

use self::graph::{Follow, Graph, Identity, ObjectInfo, FOREGROUND_FINALIZER, ORPHAN_FINALIZER};
use self::plan::{ForegroundPlan, OwnerLookup, Plan, Propagation};
use crate::framework::{run_workers, stop_queue_on_shutdown, ControllerContext};

const NAME: &str = "garbage-collector-controller";
/// How often discovery is read again for resources that appeared (upstream: 30 s).
const RESYNC_DISCOVERY: Duration = Duration::from_secs(30);
/// How long the first lists may take before workers start anyway.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// A virtual owner that a GET found alive, but no informer has reported yet (its kind may not
/// be monitored): look again after this long.
const VIRTUAL_RECHECK: Duration = Duration::from_secs(10);
const INVALID_NAMESPACE_REASON: &str = "OwnerRefInvalidNamespace";

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let gc = Arc::new(GarbageCollector {
        client: ctx.client.clone(),
        factory: ctx.factory.clone(),
        graph: Mutex::new(Graph::default()),
        discovery: RwLock::new(Discovery::default()),
        monitored: Mutex::new(HashSet::new()),
        attempt_to_delete: Queue::new("garbage_collector_attempt_to_delete"),
        attempt_to_orphan: Queue::new("garbage_collector_attempt_to_orphan"),
        recorder: ctx.recorder(NAME),
    });
    stop_queue_on_shutdown(ctx, gc.attempt_to_delete.clone());
    stop_queue_on_shutdown(ctx, gc.attempt_to_orphan.clone());
    let workers = ctx.options.concurrent_gc_syncs;
    let stop = ctx.stop.clone();
    tokio::spawn(gc.run(workers, stop));
    Ok(())
}

struct GarbageCollector {
    client: Client,
    factory: SharedInformerFactory,
    graph: Mutex<Graph>,
    /// The latest discovery: the REST mapping from an owner reference's apiVersion + kind.
    discovery: RwLock<Discovery>,
    /// `group/plural` of every resource with an informer.
    monitored: Mutex<HashSet<String>>,
    attempt_to_delete: Queue<String>,
    attempt_to_orphan: Queue<String>,
    recorder: CoreEventRecorder,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Upstream's `DefaultIgnoredResources`: events are never owners worth a watch.
fn ignored(resource: &ApiResource) -> bool {
    resource.plural == "events" && (resource.group.is_empty() || resource.group == "events.k8s.io")
}

fn deletable(d: &Discovered) -> bool {
    ["list", "watch", "delete"]
        .iter()
        .all(|verb| d.verbs.iter().any(|v| v == verb))
}

fn object_info(obj: &DynamicObject, resource: &ApiResource) -> Option<ObjectInfo> {
    let meta = &obj.metadata;
    Some(ObjectInfo {
        identity: Identity {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: meta.namespace.clone().filter(|ns| !ns.is_empty()),
            name: meta.name.clone()?,
            uid: meta.uid.clone().filter(|u| !u.is_empty())?,
        },
        owners: meta.owner_references.clone().unwrap_or_default(),
        being_deleted: meta.deletion_timestamp.is_some(),
        finalizers: meta.finalizers.clone().unwrap_or_default(),
    })
}

fn event_reference(identity: &Identity) -> ObjectReference {
    ObjectReference {
        api_version: Some(identity.api_version.clone()),
        kind: Some(identity.kind.clone()),
        namespace: identity.namespace.clone(),
        name: Some(identity.name.clone()),
        uid: Some(identity.uid.clone()),
        ..ObjectReference::default()
    }
}

/// `group` and `version` of an apiVersion (`v1` is the core group).
fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

impl GarbageCollector {
    async fn run(self: Arc<Self>, workers: usize, mut stop: tokio::sync::watch::Receiver<bool>) {
        // Workers start once the first monitors have their lists, as upstream waits for the
        // graph to sync: an owner not yet listed would look absent to the graph (live GETs
        // still guard every delete).
        loop {
            match self.sync_monitors().await {
                Ok(new) => {
                    for informer in new {
                        informer.wait_synced_for(INITIAL_SYNC_TIMEOUT).await;
                    }
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "garbage collector discovery failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
        }
        tracing::info!(
            monitors = lock(&self.monitored).len(),
            "garbage collector synced"
        );
        let gc = self.clone();
        run_workers(NAME, self.attempt_to_delete.clone(), workers, move |uid| {
            let gc = gc.clone();
            async move { gc.attempt_to_delete(&uid).await }
        });
        let gc = self.clone();
        run_workers(NAME, self.attempt_to_orphan.clone(), workers, move |uid| {
            let gc = gc.clone();
            async move { gc.attempt_to_orphan(&uid).await }
        });
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RESYNC_DISCOVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            if let Err(err) = self.sync_monitors().await {
                tracing::warn!(error = %format!("{err:#}"), "garbage collector discovery failed");
            }
        }
    }

    /// Reads discovery and starts an informer for every deletable resource not yet monitored;
    /// returns the new ones.
    async fn sync_monitors(
        self: &Arc<Self>,
    ) -> anyhow::Result<Vec<client::Informer<DynamicObject>>> {
        let discovery = Discovery::run(&self.client)
            .await
            .context("discovering deletable resources")?;
        let mut started = Vec::new();
        {
            let mut monitored = lock(&self.monitored);
            let mut seen = HashSet::new();
            // Preferred versions come first: one informer per group and resource.
            for d in discovery.resources() {
                let key = format!("{}/{}", d.resource.group, d.resource.plural);
                if !seen.insert(key.clone())
                    || !deletable(d)
                    || ignored(&d.resource)
                    || monitored.contains(&key)
                {
                    continue;
                }
                let informer = self
                    .factory
                    .informer_with::<DynamicObject>(&d.resource, Scope::all());
                let gc = self.clone();
                let resource = d.resource.clone();
                informer.add_event_handler(None, move |event| gc.on_event(&resource, event));
                monitored.insert(key);
                started.push(informer);
            }
        }
        match self.discovery.write() {
            Ok(mut current) => *current = discovery,
            Err(poisoned) => *poisoned.into_inner() = discovery,
        }
        if !started.is_empty() {
            tracing::info!(count = started.len(), "garbage collector monitors started");
        }
        Ok(started)
    }

    /// The graph builder: informer events into the graph, the work they imply onto the queues.
    fn on_event(&self, resource: &ApiResource, event: Event<DynamicObject>) {
        let follow = {
            let mut graph = lock(&self.graph);
            match event {
                Event::Add(obj) => match object_info(&obj, resource) {
                    Some(info) => graph.observe(None, &info),
                    None => Follow::default(),
                },
                Event::Update { old, new } => {
                    let (old, new) = (object_info(&old, resource), object_info(&new, resource));
                    match (old, new) {
                        // A delete and a re-create under one name, seen as one update.
                        (Some(old), Some(new)) if old.identity.uid != new.identity.uid => {
                            let mut follow = graph.observe_deleted(&old.identity.uid);
                            let more = graph.observe(None, &new);
                            follow.attempt_to_delete.extend(more.attempt_to_delete);
                            follow.attempt_to_orphan.extend(more.attempt_to_orphan);
                            follow.invalid_namespace.extend(more.invalid_namespace);
                            follow
                        }
                        (old, Some(new)) => graph.observe(old.as_ref(), &new),
                        (_, None) => Follow::default(),
                    }
                }
                Event::Delete(deleted) => match object_info(deleted.object(), resource) {
                    Some(info) => graph.observe_deleted(&info.identity.uid),
                    None => Follow::default(),
                },
            }
        };
        self.follow(follow);
    }

    fn follow(&self, follow: Follow) {
        for (dependent, owner) in &follow.invalid_namespace {
            self.report_invalid_namespace(dependent, &owner.uid);
        }
        for uid in follow.attempt_to_delete {
            self.attempt_to_delete.add(uid);
        }
        for uid in follow.attempt_to_orphan {
            self.attempt_to_orphan.add(uid);
        }
    }

    /// Upstream's event: the owner, as the dependent names it, is not in the dependent's
    /// namespace.
    fn report_invalid_namespace(&self, dependent: &Identity, owner_uid: &str) {
        let Some(node) = lock(&self.graph).node(&dependent.uid).cloned() else {
            return;
        };
        let Some(reference) = node.owners.iter().find(|r| r.uid == owner_uid) else {
            return;
        };
        let invalid = Identity {
            api_version: reference.api_version.clone(),
            kind: reference.kind.clone(),
            namespace: dependent.namespace.clone(),
            name: reference.name.clone(),
            uid: reference.uid.clone(),
        };
        let message = format!(
            "ownerRef {invalid} does not exist in namespace {:?}",
            dependent.namespace.as_deref().unwrap_or("")
        );
        tracing::warn!(dependent = %dependent, %message, "invalid owner reference");
        self.recorder.warning(
            &event_reference(dependent),
            INVALID_NAMESPACE_REASON,
            &message,
        );
    }

    /// The served resource for an apiVersion + kind: that exact version, else the kind in
    /// another version of the group.
    fn resolve(&self, api_version: &str, kind: &str) -> Option<Discovered> {
        let discovery = match self.discovery.read() {
            Ok(d) => d,
            Err(poisoned) => poisoned.into_inner(),
        };
        let (group, version) = split_api_version(api_version);
        let resources = discovery.resources();
        resources
            .iter()
            .find(|d| {
                d.resource.group == group
                    && d.resource.version == version
                    && d.resource.kind == kind
            })
            .or_else(|| {
                resources
                    .iter()
                    .find(|d| d.resource.group == group && d.resource.kind == kind)
            })
            .cloned()
    }

    /// The API of `identity`'s resource in the namespace it lives in: `None` when a namespaced
    /// kind has no namespace to look in (a cluster-scoped dependent's virtual owner).
    fn api_for(
        &self,
        identity: &Identity,
    ) -> anyhow::Result<Option<(Api<DynamicObject>, ApiResource)>> {
        let Some(found) = self.resolve(&identity.api_version, &identity.kind) else {
            bail!(
                "unable to get REST mapping for {}/{}",
                identity.api_version,
                identity.kind
            );
        };
        let namespace = match (found.namespaced, &identity.namespace) {
            (false, _) => None,
            (true, Some(ns)) => Some(ns.as_str()),
            (true, None) => return Ok(None),
        };
        Ok(Some((
            self.client
                .api_with::<DynamicObject>(namespace, &found.resource),
            found.resource,
        )))
    }

    async fn attempt_to_delete(&self, uid: &str) -> anyhow::Result<()> {
        let Some(node) = lock(&self.graph).node(uid).cloned() else {
            return Ok(());
        };
        let Some((api, resource)) = self.api_for(&node.identity)? else {
            // Upstream forgets these: retrying cannot resolve them.
            return Ok(());
        };
        let latest = api
            .get_opt(&node.identity.name)
            .await
            .with_context(|| format!("getting {}", node.identity))?;
        let latest = match latest {
            Some(obj) if obj.metadata.uid.as_deref() == Some(uid) => obj,
            // Gone, or another object has the name now.
            _ => {
                if !node.observed {
                    let follow = lock(&self.graph).absent(uid);
                    self.follow(follow);
                }
                // An observed node leaves the graph when its informer reports the delete.
                return Ok(());
            }
        };
        if !node.observed {
            // The owner exists: its dependents stay. Look again until an informer reports it.
            self.attempt_to_delete
                .add_after(uid.to_string(), VIRTUAL_RECHECK);
            return Ok(());
        }
        let Some(info) = object_info(&latest, &resource) else {
            return Ok(());
        };
        if info.deleting_dependents() {
            return self.process_deleting_dependents(&api, &info, &latest).await;
        }
        if info.being_deleted {
            // Someone else is deleting it (a grace period, other finalizers).
            return Ok(());
        }
        if info.owners.is_empty() {
            return Ok(());
        }
        let mut classified = Vec::with_capacity(info.owners.len());
        for reference in &info.owners {
            let Some(owner) = self.resolve(&reference.api_version, &reference.kind) else {
                bail!(
                    "unable to get REST mapping for {}/{}",
                    reference.api_version,
                    reference.kind
                );
            };
            let Some(namespace) =
                plan::owner_namespace(info.identity.namespace.as_deref(), owner.namespaced)
            else {
                // A cluster-scoped object cannot have a namespaced owner: never collected, as
                // upstream; say so once and forget the item.
                self.report_invalid_namespace(&info.identity, &reference.uid);
                return Ok(());
            };
            let owner_api = self
                .client
                .api_with::<DynamicObject>(namespace.as_deref(), &owner.resource);
            let lookup =
                match owner_api.get_opt(&reference.name).await.with_context(|| {
                    format!("getting owner {}/{}", reference.kind, reference.name)
                })? {
                    None => OwnerLookup::NotFound,
                    Some(found) => OwnerLookup::Found {
                        uid: found.metadata.uid.clone().unwrap_or_default(),
                        deleting_dependents: object_info(&found, &owner.resource)
                            .is_some_and(|o| o.deleting_dependents()),
                    },
                };
            classified.push((reference.clone(), plan::classify(reference, &lookup)));
        }
        let (has_dependents, a_dependent_waits) = {
            let graph = lock(&self.graph);
            let dependents = graph.dependents(uid);
            (
                !dependents.is_empty(),
                dependents.iter().any(|d| d.deleting_dependents),
            )
        };
        let rv = latest.metadata.resource_version.clone().unwrap_or_default();
        match plan::plan_dependent(
            &classified,
            &info.finalizers,
            has_dependents,
            a_dependent_waits,
        ) {
            Plan::Nothing => Ok(()),
            Plan::RemoveOwnerReferences(uids) => {
                tracing::info!(item = %info.identity, owners = ?uids, "removing references to absent or waiting owners");
                let refs = plan::without_owners(&info.owners, &uids);
                ignore_not_found(self.patch_owner_references(&api, &info, &rv, &refs).await)
            }
            Plan::Delete {
                propagation,
                unblock,
            } => {
                let mut rv = rv;
                if !unblock.is_empty() {
                    let refs = plan::unblocked(&info.owners, &unblock);
                    match self.patch_owner_references(&api, &info, &rv, &refs).await {
                        Ok(patched) => {
                            rv = patched.metadata.resource_version.unwrap_or_default();
                        }
                        Err(err) if is_not_found(&err) => return Ok(()),
                        Err(err) => return Err(err),
                    }
                }
                tracing::info!(item = %info.identity, ?propagation, "deleting object whose owners are gone");
                let params = DeleteParams {
                    propagation_policy: Some(match propagation {
                        Propagation::Background => PropagationPolicy::Background,
                        Propagation::Foreground => PropagationPolicy::Foreground,
                        Propagation::Orphan => PropagationPolicy::Orphan,
                    }),
                    preconditions: Some(Preconditions {
                        uid: Some(info.identity.uid.clone()),
                        resource_version: Some(rv),
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&info.identity.name, &params).await {
                    Ok(()) => Ok(()),
                    Err(err) if err.is_not_found() => Ok(()),
                    Err(err) => Err(anyhow!(err).context(format!("deleting {}", info.identity))),
                }
            }
        }
    }

    /// Upstream's `processDeletingDependentsItem`.
    async fn process_deleting_dependents(
        &self,
        api: &Api<DynamicObject>,
        info: &ObjectInfo,
        latest: &DynamicObject,
    ) -> anyhow::Result<()> {
        let decision = plan::plan_foreground(&lock(&self.graph), &info.identity.uid);
        match decision {
            ForegroundPlan::RemoveFinalizer => {
                tracing::info!(item = %info.identity, "no blocking dependents remain; removing the foregroundDeletion finalizer");
                let rv = latest.metadata.resource_version.clone().unwrap_or_default();
                let finalizers = plan::without_finalizer(&info.finalizers, FOREGROUND_FINALIZER);
                ignore_not_found(self.patch_finalizers(api, info, &rv, &finalizers).await)
            }
            ForegroundPlan::Wait { attempt_to_delete } => {
                for uid in attempt_to_delete {
                    self.attempt_to_delete.add(uid);
                }
                Ok(())
            }
        }
    }

    /// Upstream's `attemptToOrphanWorker`: dependents let go of the owner, then the finalizer
    /// goes.
    async fn attempt_to_orphan(&self, uid: &str) -> anyhow::Result<()> {
        let (owner, dependents) = {
            let graph = lock(&self.graph);
            let Some(owner) = graph.node(uid).cloned() else {
                return Ok(());
            };
            let dependents: Vec<Identity> = graph
                .dependents(uid)
                .iter()
                .map(|d| d.identity.clone())
                .collect();
            (owner, dependents)
        };
        let mut errors = Vec::new();
        for dependent in &dependents {
            if let Err(err) = self.release(dependent, uid).await {
                errors.push(format!("{err:#}"));
            }
        }
        if !errors.is_empty() {
            bail!(
                "orphaning the dependents of {}: {}",
                owner.identity,
                errors.join("; ")
            );
        }
        let Some((api, resource)) = self.api_for(&owner.identity)? else {
            return Ok(());
        };
        let Some(latest) = api.get_opt(&owner.identity.name).await? else {
            return Ok(());
        };
        let Some(info) = object_info(&latest, &resource) else {
            return Ok(());
        };
        if info.identity.uid != uid || !info.has_finalizer(ORPHAN_FINALIZER) {
            return Ok(());
        }
        tracing::info!(owner = %info.identity, dependents = dependents.len(), "dependents orphaned; removing the orphan finalizer");
        let rv = latest.metadata.resource_version.clone().unwrap_or_default();
        let finalizers = plan::without_finalizer(&info.finalizers, ORPHAN_FINALIZER);
        ignore_not_found(self.patch_finalizers(&api, &info, &rv, &finalizers).await)
    }

    /// Removes `owner_uid` from the live dependent's ownerReferences.
    async fn release(&self, dependent: &Identity, owner_uid: &str) -> anyhow::Result<()> {
        let Some((api, resource)) = self.api_for(dependent)? else {
            return Ok(());
        };
        let Some(latest) = api.get_opt(&dependent.name).await? else {
            return Ok(());
        };
        let Some(info) = object_info(&latest, &resource) else {
            return Ok(());
        };
        if info.identity.uid != dependent.uid || !info.owners.iter().any(|r| r.uid == owner_uid) {
            return Ok(());
        }
        let rv = latest.metadata.resource_version.clone().unwrap_or_default();
        let refs = plan::without_owners(&info.owners, &[owner_uid.to_string()]);
        ignore_not_found(self.patch_owner_references(&api, &info, &rv, &refs).await)
    }

    /// A merge patch of `metadata.ownerReferences`, conditional on `rv` (the apiserver treats a
    /// resourceVersion in a patch as a precondition).
    async fn patch_owner_references(
        &self,
        api: &Api<DynamicObject>,
        info: &ObjectInfo,
        rv: &str,
        refs: &[OwnerReference],
    ) -> anyhow::Result<DynamicObject> {
        let refs = if refs.is_empty() {
            Value::Null
        } else {
            json!(refs)
        };
        let patch = json!({"metadata": {"resourceVersion": rv, "ownerReferences": refs}});
        api.patch(
            &info.identity.name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|err| {
            anyhow!(err).context(format!("patching ownerReferences of {}", info.identity))
        })
    }

    async fn patch_finalizers(
        &self,
        api: &Api<DynamicObject>,
        info: &ObjectInfo,
        rv: &str,
        finalizers: &[String],
    ) -> anyhow::Result<DynamicObject> {
        let finalizers = if finalizers.is_empty() {
            Value::Null
        } else {
            json!(finalizers)
        };
        let patch = json!({"metadata": {"resourceVersion": rv, "finalizers": finalizers}});
        api.patch(
            &info.identity.name,
            &PatchParams::default(),
            &Patch::Merge(patch),
        )
        .await
        .map_err(|err| anyhow!(err).context(format!("patching finalizers of {}", info.identity)))
    }
}

fn is_not_found(err: &anyhow::Error) -> bool {
    err.downcast_ref::<client::Error>()
        .is_some_and(client::Error::is_not_found)
}

/// An object that vanished under a write needs nothing more.
fn ignore_not_found<T>(result: anyhow::Result<T>) -> anyhow::Result<()> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if is_not_found(&err) => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered(group: &str, plural: &str, verbs: &[&str]) -> Discovered {
        Discovered {
            resource: ApiResource {
                group: group.into(),
                version: "v1".into(),
                api_version: if group.is_empty() {
                    "v1".into()
                } else {
                    format!("{group}/v1")
                },
                kind: "Thing".into(),
                plural: plural.into(),
            },
            namespaced: true,
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            short_names: vec![],
            subresources: vec![],
        }
    }

    #[test]
    fn monitors_cover_deletable_resources_except_events() {
        let all = ["list", "watch", "delete", "get"];
        assert!(deletable(&discovered("", "configmaps", &all)));
        assert!(!deletable(&discovered("", "bindings", &["create"])));
        assert!(!deletable(&discovered("x", "nowatch", &["list", "delete"])));
        assert!(ignored(&discovered("", "events", &all).resource));
        assert!(ignored(
            &discovered("events.k8s.io", "events", &all).resource
        ));
        assert!(!ignored(
            &discovered("example.com", "events", &all).resource
        ));
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(split_api_version("v1"), ("", "v1"));
        assert_eq!(split_api_version("apps/v1"), ("apps", "v1"));
    }

    #[test]
    fn objects_without_a_uid_are_not_graphed() {
        let resource = discovered("", "configmaps", &[]).resource;
        let mut obj = DynamicObject::new("a", &resource).within("ns");
        assert!(object_info(&obj, &resource).is_none());
        obj.metadata.uid = Some("u".into());
        let info = object_info(&obj, &resource);
        assert_eq!(
            info.map(|i| (i.identity.namespace, i.identity.uid)),
            Some((Some("ns".into()), "u".into()))
        );
    }

    #[test]
    fn the_invalid_namespace_message_quotes_upstreams_format() {
        let owner = Identity {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("a".into()),
            name: "parent".into(),
            uid: "u1".into(),
        };
        assert_eq!(
            owner.to_string(),
            "[v1/ConfigMap, namespace: a, name: parent, uid: u1]"
        );
    }
}
