//! The generic REST storage every built-in resource shares (upstream's `registry/generic/
//! registry.Store`): create, get, list, update, delete over the `Storage` trait, keeping the
//! metadata rules (uid, timestamps, generation, finalizers, graceful deletion) in one place.

use std::sync::Arc;

use serde_json::{json, Value};
use storage::{ListOptions, Precondition, Storage};

use crate::errors::{self, conflict, from_storage, ApiError, ApiResult};
use crate::object::{self, decode, encode, finalizers, is_deleting, meta_mut};
use crate::resources::Resource;
use crate::strategy::{self, Part};

/// Admission and validation, run on the object about to be stored (with the current one for
/// updates). It may change the object (mutating admission) or refuse it.
pub type Admit<'a> = &'a (dyn Fn(Value, Option<&Value>) -> ApiResult<Value> + Sync);

/// How often a write that lost a compare-and-swap race is retried with a fresh read.
const MAX_RETRIES: usize = 16;
/// How often a generated name is retried when it collides (upstream retries too).
const GENERATE_NAME_RETRIES: usize = 8;

pub struct Registry {
    store: Arc<dyn Storage>,
}

/// What a list asks for, once parsed from the query.
#[derive(Default)]
pub struct ListRequest<'a> {
    pub namespace: Option<&'a str>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// An exact revision to read at (`resourceVersionMatch=Exact`, or a continue token).
    pub revision: Option<u64>,
    pub filter: Option<&'a (dyn Fn(&Value) -> bool + Sync)>,
}

pub struct ListPage {
    pub items: Vec<Value>,
    pub revision: u64,
    pub continue_token: Option<String>,
    /// `remainingItemCount`: known only when nothing is filtered out, as upstream.
    pub remaining: Option<u64>,
}

/// Delete options that change what a delete does.
#[derive(Clone, Debug, Default)]
pub struct DeleteRequest {
    pub grace_period_seconds: Option<i64>,
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    pub dry_run: bool,
}

/// The answer to a delete: the object, and whether it is gone (200) or only marked (200/202).
pub struct Deleted {
    pub object: Value,
    pub gone: bool,
    pub dry_run: bool,
}

impl Registry {
    pub fn new(store: Arc<dyn Storage>) -> Registry {
        Registry { store }
    }

    pub fn store(&self) -> &Arc<dyn Storage> {
        &self.store
    }

    pub async fn get(&self, resource: &Resource, namespace: &str, name: &str) -> ApiResult<Value> {
        let key = resource.key(namespace, name);
        match self.store.get(&key).await {
            Ok(Some(kv)) => decode(&kv).map_err(errors::internal),
            Ok(None) => Err(errors::not_found(resource, name)),
            Err(err) => Err(from_storage(resource, name, err)),
        }
    }

    /// One page of a list from storage. With a filter and a limit, pages are read until `limit`
    /// matching items are found or the prefix ends, as upstream does.
    pub async fn list(&self, resource: &Resource, request: ListRequest<'_>) -> ApiResult<ListPage> {
        let prefix = resource.list_prefix(request.namespace);
        let mut items = Vec::new();
        let mut continue_token = request.continue_token;
        let mut revision = request.revision;
        loop {
            let wanted = request.limit.map(|l| l.saturating_sub(items.len()));
            let options = ListOptions {
                revision: if continue_token.is_some() {
                    None
                } else {
                    revision
                },
                limit: wanted,
                continue_token: continue_token.take(),
            };
            let page = self
                .store
                .list(&prefix, options)
                .await
                .map_err(|err| from_storage(resource, "", err))?;
            revision = Some(page.revision);
            for kv in &page.items {
                let obj = decode(kv).map_err(errors::internal)?;
                if request.filter.is_none_or(|f| f(&obj)) {
                    items.push(obj);
                }
            }
            let full = request.limit.is_some_and(|l| items.len() >= l);
            match page.continue_token {
                Some(token) if !full => continue_token = Some(token),
                token => {
                    return Ok(ListPage {
                        items,
                        revision: page.revision,
                        continue_token: token,
                        remaining: if request.filter.is_none() {
                            page.remaining
                        } else {
                            None
                        },
                    })
                }
            }
        }
    }

    /// Stores a new object. `obj` has passed admission and validation; `namespace` is already
    /// reconciled with the URL.
    pub async fn create(
        &self,
        resource: &Resource,
        mut obj: Value,
        dry_run: bool,
        admit: Admit<'_>,
    ) -> ApiResult<Value> {
        let prefix = object::meta_str(&obj, "generateName").to_string();
        let generate = object::name(&obj).is_empty() && !prefix.is_empty();
        let now = object::now_rfc3339();
        strategy::prepare_for_create(resource, &mut obj, uuid::Uuid::new_v4().to_string(), &now);
        let mut admitted = false;
        for attempt in 0..GENERATE_NAME_RETRIES {
            if generate {
                meta_mut(&mut obj)
                    .insert("name".into(), Value::String(object::generate_name(&prefix)));
            }
            if !admitted {
                obj = admit(obj, None)?;
                admitted = true;
            }
            let name = object::name(&obj).to_string();
            let key = resource.key(object::namespace(&obj), &name);
            if dry_run {
                return match self.store.get(&key).await {
                    Ok(Some(_)) => Err(errors::already_exists(resource, &name)),
                    Ok(None) => Ok(obj),
                    Err(err) => Err(from_storage(resource, &name, err)),
                };
            }
            match self.store.create(&key, encode(&obj)).await {
                Ok(kv) => {
                    meta_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(kv.mod_revision.to_string()),
                    );
                    return Ok(obj);
                }
                Err(storage::Error::AlreadyExists { .. })
                    if generate && attempt + 1 < GENERATE_NAME_RETRIES => {}
                Err(err) => return Err(from_storage(resource, &name, err)),
            }
        }
        Err(errors::internal("could not generate a unique name"))
    }

    /// Reads the current object, lets `change` compute the next one, and writes it with
    /// compare-and-swap, retrying on conflicts (upstream's `GuaranteedUpdate`). `change` gets
    /// `None` when the object does not exist. A change that leaves the stored bytes identical
    /// writes nothing and returns the current object with its current `resourceVersion`.
    pub async fn guaranteed_update<F>(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        mut change: F,
    ) -> ApiResult<Updated>
    where
        F: FnMut(Option<&Value>) -> ApiResult<Change>,
    {
        let key = resource.key(namespace, name);
        for _ in 0..MAX_RETRIES {
            let current = self
                .store
                .get(&key)
                .await
                .map_err(|err| from_storage(resource, name, err))?;
            let (current_obj, revision) = match &current {
                Some(kv) => (Some(decode(kv).map_err(errors::internal)?), kv.mod_revision),
                None => (None, 0),
            };
            let decided = match change(current_obj.as_ref())? {
                // A write that removes the last finalizer of an object being deleted deletes it
                // (upstream's `deleteWithoutFinalizers`), whichever verb made it.
                Change::Write(next)
                    if current_obj
                        .as_ref()
                        .is_some_and(|c| deletion_is_done(resource, c, &next)) =>
                {
                    Change::Delete
                }
                other => other,
            };
            let next = match decided {
                Change::Write(next) => next,
                Change::Delete => {
                    let Some(obj) = current_obj else {
                        return Err(errors::not_found(resource, name));
                    };
                    match self
                        .store
                        .delete(&key, Precondition::ModRevision(revision))
                        .await
                    {
                        Ok(_) => {
                            return Ok(Updated {
                                object: obj,
                                created: false,
                                deleted: true,
                            })
                        }
                        Err(storage::Error::Conflict { .. })
                        | Err(storage::Error::NotFound { .. }) => continue,
                        Err(err) => return Err(from_storage(resource, name, err)),
                    }
                }
                Change::DryRun(next) => {
                    return Ok(Updated {
                        object: next,
                        created: current.is_none(),
                        deleted: false,
                    })
                }
            };
            let bytes = encode(&next);
            let written = match &current {
                Some(kv) if kv.value == bytes => {
                    // Nothing changed: upstream skips the write.
                    let obj = current_obj.unwrap_or(next);
                    return Ok(Updated {
                        object: obj,
                        created: false,
                        deleted: false,
                    });
                }
                Some(_) => {
                    self.store
                        .update(&key, bytes, Precondition::ModRevision(revision))
                        .await
                }
                None => self.store.create(&key, bytes).await,
            };
            match written {
                Ok(kv) => {
                    let mut obj = next;
                    meta_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(kv.mod_revision.to_string()),
                    );
                    return Ok(Updated {
                        object: obj,
                        created: current.is_none(),
                        deleted: false,
                    });
                }
                Err(storage::Error::Conflict { .. })
                | Err(storage::Error::NotFound { .. })
                | Err(storage::Error::AlreadyExists { .. }) => continue,
                Err(err) => return Err(from_storage(resource, name, err)),
            }
        }
        Err(conflict(resource, name, errors::MODIFIED))
    }

    /// PUT: replaces the object (or one part of it). A `resourceVersion` in the body makes the
    /// write conditional on it.
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        part: Part,
        new: Value,
        dry_run: bool,
        track: &(dyn Fn(Value, Option<&Value>) -> Value + Sync),
        admit: Admit<'_>,
    ) -> ApiResult<Updated> {
        let wanted = object::parse_resource_version(object::resource_version(&new))?;
        self.guaranteed_update(resource, namespace, name, |current| {
            let Some(current) = current else {
                if part != Part::Main || !resource.create_on_update {
                    return Err(errors::not_found(resource, name));
                }
                let mut obj = new.clone();
                builtin::default(resource.group, resource.version, resource.kind, &mut obj);
                let mut obj = track(obj, None);
                let now = object::now_rfc3339();
                strategy::prepare_for_create(
                    resource,
                    &mut obj,
                    uuid::Uuid::new_v4().to_string(),
                    &now,
                );
                let obj = admit(obj, None)?;
                return Ok(if dry_run {
                    Change::DryRun(obj)
                } else {
                    Change::Write(obj)
                });
            };
            if let Some(wanted) = wanted {
                if object::resource_version(current) != wanted.to_string() {
                    return Err(conflict(resource, name, errors::MODIFIED));
                }
            }
            let mut next = new.clone();
            builtin::default(resource.group, resource.version, resource.kind, &mut next);
            let next = track(next, Some(current));
            let next = strategy::prepare_for_update(resource, part, next, current);
            let next = admit(next, Some(current))?;
            Ok(if dry_run {
                Change::DryRun(next)
            } else {
                Change::Write(next)
            })
        })
        .await
    }

    /// DELETE of one object: immediate, or graceful / held by finalizers as upstream decides.
    pub async fn delete(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
        options: &DeleteRequest,
    ) -> ApiResult<Deleted> {
        let updated = self
            .guaranteed_update(resource, namespace, name, |current| {
                let Some(current) = current else {
                    return Err(errors::not_found(resource, name));
                };
                check_preconditions(resource, name, current, options)?;
                let mut next = current.clone();
                let mut pending = finalizers(current);
                let namespace_finalizers = resource.group.is_empty()
                    && resource.kind == "Namespace"
                    && current
                        .get("spec")
                        .and_then(|s| s.get("finalizers"))
                        .and_then(Value::as_array)
                        .is_some_and(|f| !f.is_empty());
                match options.propagation_policy.as_deref() {
                    Some("Orphan") if !pending.iter().any(|f| f == "orphan") => {
                        pending.push("orphan".into())
                    }
                    Some("Foreground") if !pending.iter().any(|f| f == "foregroundDeletion") => {
                        pending.push("foregroundDeletion".into())
                    }
                    _ => {}
                }
                let grace = grace_period(resource, current, options);
                if pending.is_empty() && grace == 0 && !namespace_finalizers {
                    return Ok(if options.dry_run {
                        Change::DryRun(next)
                    } else {
                        Change::Delete
                    });
                }
                let m = meta_mut(&mut next);
                if !pending.is_empty() {
                    m.insert("finalizers".into(), json!(pending));
                }
                if !is_deleting(current) {
                    let at = chrono::Utc::now() + chrono::Duration::seconds(grace);
                    m.insert(
                        "deletionTimestamp".into(),
                        Value::String(at.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                    );
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                } else if grace
                    < m.get("deletionGracePeriodSeconds")
                        .and_then(Value::as_i64)
                        .unwrap_or(i64::MAX)
                {
                    // A shorter grace period may replace a longer one, never the reverse.
                    m.insert("deletionGracePeriodSeconds".into(), json!(grace));
                }
                if resource.kind == "Namespace" && resource.group.is_empty() {
                    next["status"] = json!({"phase": "Terminating"});
                }
                Ok(if options.dry_run {
                    Change::DryRun(next)
                } else {
                    Change::Write(next)
                })
            })
            .await?;
        Ok(Deleted {
            gone: updated.deleted || (options.dry_run && !is_deleting(&updated.object)),
            object: updated.object,
            dry_run: options.dry_run,
        })
    }
}

/// The result of a guaranteed update.
pub struct Updated {
    pub object: Value,
    pub created: bool,
    pub deleted: bool,
}

/// What a guaranteed update decided to do with the object.
pub enum Change {
    Write(Value),
    /// Everything checked, nothing written (`dryRun=All`): answer with this object.
    DryRun(Value),
    /// The object's last finalizer is gone while it is being deleted: remove it.
    Delete,
}

/// An object marked for deletion whose finalizers are now all gone is deleted by the write
/// that removed the last one. Pods with a grace period wait for the kubelet's final delete
/// instead, and namespaces also wait for `spec.finalizers` (the namespace controller's).
fn deletion_is_done(resource: &Resource, current: &Value, next: &Value) -> bool {
    if !(is_deleting(current) && is_deleting(next) && finalizers(next).is_empty()) {
        return false;
    }
    if resource.group.is_empty() && resource.kind == "Namespace" {
        let pending = next
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        return !pending;
    }
    let grace = object::meta(next)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(0);
    grace == 0
}

fn check_preconditions(
    resource: &Resource,
    name: &str,
    current: &Value,
    options: &DeleteRequest,
) -> Result<(), ApiError> {
    if let Some(uid) = &options.precondition_uid {
        let actual = object::uid(current);
        if uid != actual {
            return Err(conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &options.precondition_resource_version {
        let actual = object::resource_version(current);
        if rv != actual {
            return Err(conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"
                ),
            ));
        }
    }
    Ok(())
}

/// Seconds an object stays after a delete before it is removed. Only pods bound to a node are
/// deleted gracefully (their kubelet does the final delete); everything else goes at once unless
/// finalizers hold it.
fn grace_period(resource: &Resource, current: &Value, options: &DeleteRequest) -> i64 {
    if !(resource.group.is_empty() && resource.kind == "Pod") {
        return 0;
    }
    let spec = current.get("spec");
    let bound = spec
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = current
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if !bound || phase == "Failed" || phase == "Succeeded" {
        return 0;
    }
    options
        .grace_period_seconds
        .map(|g| g.max(0))
        .unwrap_or_else(|| {
            spec.and_then(|s| s.get("terminationGracePeriodSeconds"))
                .and_then(Value::as_i64)
                .unwrap_or(30)
        })
}
