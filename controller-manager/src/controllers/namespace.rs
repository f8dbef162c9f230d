//! The namespace controller (upstream's pkg/controller/namespace): a namespace being deleted
//! that still holds the `kubernetes` finalizer in `spec.finalizers` has its content deleted,
//! then loses the finalizer through `PUT /api/v1/namespaces/<ns>/finalize`, after which the
//! apiserver removes it.
//!
//! Upstream behaviours kept: `status.phase` Terminating; discovery of every namespaced resource
//! with the `delete` verb (preferred version per group), deleted with `deletecollection` where
//! served (else list + delete each), propagation Background; content still present is counted
//! and the namespace is looked at again after an estimate (the longest remaining pod grace
//! period, or 15 s when finalizers hold objects; requeue after `estimate/2 + 1` seconds); the
//! five deletion conditions (`NamespaceDeletionDiscoveryFailure`,
//! `NamespaceDeletionGroupVersionParsingFailure`, `NamespaceDeletionContentFailure`,
//! `NamespaceContentRemaining`, `NamespaceFinalizersRemaining`) with upstream's reasons and
//! messages, `False` with the "ok" reason when nothing failed; workers from
//! `--concurrent-namespace-syncs`; a 5-minute resync.
//!
//! Not implemented: upstream's partial-discovery handling (our discovery skips failing groups
//! itself, so a total failure is the only one reported) and its per-pod grace estimate taken
//! before deletion (we read the grace the deleted pods were given).

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{anyhow, Context};
use client::client::{DeleteParams, ListParams, PostParams, PropagationPolicy};
use client::discovery::{Discovered, Discovery, DynamicObject};
use client::informer::Event;
use client::{Api, Client};
use k8s_openapi::api::core::v1::{Namespace, NamespaceCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use workqueue::Queue;

use crate::framework::{run_workers, stop_queue_on_shutdown, ControllerContext};

const NAME: &str = "namespace-controller";
/// The finalizer this controller owns in `spec.finalizers`.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";
const TERMINATING: &str = "Terminating";
/// Upstream's `NamespaceSyncPeriod`.
const RESYNC: Duration = Duration::from_secs(300);
/// Upstream's `finalizerEstimateSeconds`: how long to wait for objects held by finalizers.
const FINALIZER_ESTIMATE_SECONDS: i64 = 15;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// Condition types in upstream's order, with the reason and message of their "ok" (`False`)
/// state.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        DISCOVERY_FAILURE,
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        GV_PARSING_FAILURE,
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        CONTENT_FAILURE,
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        CONTENT_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        FINALIZERS_REMAINING,
        "ContentRemoved",
        "All content successfully removed",
    ),
];

pub fn start(ctx: &ControllerContext) -> anyhow::Result<()> {
    let queue: Queue<String> = Queue::new("namespace");
    let namespaces = ctx.factory.informer::<Namespace>();
    {
        let q = queue.clone();
        namespaces.add_event_handler(Some(RESYNC), move |event| match event {
            Event::Add(ns) | Event::Update { new: ns, .. } => {
                if ns.metadata.deletion_timestamp.is_some() {
                    if let Some(name) = &ns.metadata.name {
                        q.add(name.clone());
                    }
                }
            }
            Event::Delete(_) => {}
        });
    }
    stop_queue_on_shutdown(ctx, queue.clone());
    let client = ctx.client.clone();
    let requeue = queue.clone();
    run_workers(
        NAME,
        queue,
        ctx.options.concurrent_namespace_syncs,
        move |name: String| {
            let (client, requeue) = (client.clone(), requeue.clone());
            async move {
                match sync_namespace(&client, &name).await? {
                    Some(after) => {
                        requeue.add_after(name, after);
                        Ok(())
                    }
                    None => Ok(()),
                }
            }
        },
    );
    Ok(())
}

/// What deleting a namespace's content found, the input of the conditions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContentOutcome {
    pub discovery_error: Option<String>,
    /// One message per resource whose deletion or verification failed.
    pub errors: Vec<String>,
    /// `plural.group` -> objects still present.
    pub remaining: BTreeMap<String, usize>,
    /// finalizer -> objects still held by it.
    pub finalizers: BTreeMap<String, usize>,
    /// Seconds to wait before looking again (0: nothing to wait for).
    pub estimate: i64,
}

/// The deletion conditions an outcome implies (upstream's `namespaceConditionUpdater`): one per
/// type, `True` with the failure, else `False` with the ok reason.
pub fn desired_conditions(outcome: &ContentOutcome) -> Vec<(String, String, String, String)> {
    let failure = |kind: &str| -> Option<(String, String)> {
        match kind {
            DISCOVERY_FAILURE => outcome
                .discovery_error
                .as_ref()
                .map(|e| ("DiscoveryFailed".to_string(), e.clone())),
            CONTENT_FAILURE if !outcome.errors.is_empty() => {
                let mut msgs = outcome.errors.clone();
                msgs.sort();
                Some((
                    "ContentDeletionFailed".to_string(),
                    format!(
                        "Failed to delete all resource types, {} remaining: {}",
                        msgs.len(),
                        msgs.join(", ")
                    ),
                ))
            }
            CONTENT_REMAINING if outcome.remaining.values().any(|n| *n > 0) => {
                let mut parts: Vec<String> = outcome
                    .remaining
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(r, n)| format!("{r} has {n} resource instances"))
                    .collect();
                parts.sort();
                Some((
                    "SomeResourcesRemain".to_string(),
                    format!("Some resources are remaining: {}", parts.join(", ")),
                ))
            }
            FINALIZERS_REMAINING if outcome.finalizers.values().any(|n| *n > 0) => {
                let mut parts: Vec<String> = outcome
                    .finalizers
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(f, n)| format!("{f} in {n} resource instances"))
                    .collect();
                parts.sort();
                Some((
                    "SomeFinalizerRemain".to_string(),
                    format!("Some finalizers are remaining: {}", parts.join(", ")),
                ))
            }
            _ => None,
        }
    };
    CONDITIONS
        .iter()
        .map(|(kind, ok_reason, ok_message)| match failure(kind) {
            Some((reason, message)) => (kind.to_string(), "True".to_string(), reason, message),
            None => (
                kind.to_string(),
                "False".to_string(),
                ok_reason.to_string(),
                ok_message.to_string(),
            ),
        })
        .collect()
}

/// Merges the desired conditions into `existing`; `true` when something changed. The
/// transition time moves only when the status does.
pub fn update_conditions(
    existing: &mut Vec<NamespaceCondition>,
    desired: &[(String, String, String, String)],
    now: Timestamp,
) -> bool {
    let mut changed = false;
    for (kind, status, reason, message) in desired {
        match existing.iter_mut().find(|c| &c.type_ == kind) {
            None => {
                existing.push(NamespaceCondition {
                    type_: kind.clone(),
                    status: status.clone(),
                    reason: Some(reason.clone()),
                    message: Some(message.clone()),
                    last_transition_time: Some(Time(now)),
                });
                changed = true;
            }
            Some(current) => {
                if &current.status != status
                    || current.reason.as_ref() != Some(reason)
                    || current.message.as_ref() != Some(message)
                {
                    if &current.status != status {
                        current.last_transition_time = Some(Time(now));
                    }
                    current.status = status.clone();
                    current.reason = Some(reason.clone());
                    current.message = Some(message.clone());
                    changed = true;
                }
            }
        }
    }
    changed
}

/// What one resource's remaining objects mean (upstream's end of
/// `deleteAllContentForGroupVersionResource`): `(estimate, error)`.
pub fn judge_remaining(
    gvr: &str,
    namespace: &str,
    remaining: usize,
    grace_estimate: i64,
    held_by_finalizers: bool,
) -> (i64, Option<String>) {
    if remaining == 0 {
        return (0, None);
    }
    if grace_estimate > 0 {
        return (grace_estimate, None);
    }
    if held_by_finalizers {
        return (FINALIZER_ESTIMATE_SECONDS, None);
    }
    // Nothing explains why they are still here.
    (
        0,
        Some(format!(
            "unexpected items still remain in namespace: {namespace} for gvr: {gvr}"
        )),
    )
}

/// When to look again after content remains: upstream's `estimate/2 + 1` seconds.
pub fn requeue_after(estimate: i64) -> Duration {
    Duration::from_secs(u64::try_from(estimate.max(0) / 2 + 1).unwrap_or(1))
}

/// `spec.finalizers` without this controller's.
pub fn without_kubernetes_finalizer(finalizers: &[String]) -> Vec<String> {
    finalizers
        .iter()
        .filter(|f| *f != KUBERNETES_FINALIZER)
        .cloned()
        .collect()
}

/// One pass over a namespace being deleted: `Some(delay)` to look again later.
async fn sync_namespace(client: &Client, name: &str) -> anyhow::Result<Option<Duration>> {
    let api: Api<Namespace> = client.api(None);
    let Some(mut namespace) = api.get_opt(name).await? else {
        return Ok(None);
    };
    if namespace.metadata.deletion_timestamp.is_none() {
        return Ok(None);
    }
    let phase = namespace.status.as_ref().and_then(|s| s.phase.as_deref());
    if phase != Some(TERMINATING) {
        let mut updated = namespace.clone();
        updated.status.get_or_insert_with(Default::default).phase = Some(TERMINATING.into());
        namespace = match api.replace_status(name, &updated).await {
            Ok(ns) => ns,
            Err(err) if err.is_not_found() => return Ok(None),
            Err(err) => return Err(anyhow!(err).context("setting phase Terminating")),
        };
    }
    let finalizers = namespace
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.clone())
        .unwrap_or_default();
    if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
        return Ok(None);
    }

    let outcome = delete_all_content(client, name).await;
    let mut updated = namespace.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let mut conditions = status.conditions.clone().unwrap_or_default();
    if update_conditions(
        &mut conditions,
        &desired_conditions(&outcome),
        Timestamp::now(),
    ) {
        status.conditions = Some(conditions);
        match api.replace_status(name, &updated).await {
            Ok(ns) => namespace = ns,
            Err(err) if err.is_not_found() => return Ok(None),
            Err(err) => return Err(anyhow!(err).context("updating the deletion conditions")),
        }
    }
    if let Some(err) = &outcome.discovery_error {
        return Err(anyhow!("discovery failed: {err}"));
    }
    if !outcome.errors.is_empty() {
        return Err(anyhow!(
            "deleting the content of namespace {name}: {}",
            outcome.errors.join("; ")
        ));
    }
    if outcome.estimate > 0 || outcome.remaining.values().any(|n| *n > 0) {
        tracing::info!(namespace = name, estimate = outcome.estimate, remaining = ?outcome.remaining, "content remains; looking again later");
        return Ok(Some(requeue_after(outcome.estimate)));
    }
    finalize(client, &namespace).await?;
    tracing::info!(namespace = name, "namespace content deleted; finalized");
    Ok(None)
}

/// Removes the `kubernetes` finalizer through the `finalize` subresource.
async fn finalize(client: &Client, namespace: &Namespace) -> anyhow::Result<()> {
    let name = namespace.metadata.name.clone().unwrap_or_default();
    let mut updated = namespace.clone();
    let spec = updated.spec.get_or_insert_with(Default::default);
    let finalizers = without_kubernetes_finalizer(&spec.finalizers.clone().unwrap_or_default());
    spec.finalizers = Some(finalizers);
    let body = serde_json::to_vec(&updated)?;
    let request = kube::core::Request::new("/api/v1/namespaces")
        .replace_subresource("finalize", &name, &PostParams::default(), body)
        .map_err(|err| anyhow!("building the finalize request: {err}"))?;
    match client.send_bytes(request).await {
        Ok(_) => Ok(()),
        Err(err) if err.is_not_found() => Ok(()),
        Err(err) => Err(anyhow!(err).context(format!("finalizing namespace {name}"))),
    }
}

/// Resources to empty: namespaced, deletable, one (preferred) version per group and resource.
fn deletable_resources(resources: &[Discovered]) -> Vec<Discovered> {
    let mut seen = std::collections::HashSet::new();
    resources
        .iter()
        .filter(|d| d.namespaced && d.verbs.iter().any(|v| v == "delete"))
        .filter(|d| seen.insert((d.resource.group.clone(), d.resource.plural.clone())))
        .cloned()
        .collect()
}

/// Upstream's `deleteAllContent`.
async fn delete_all_content(client: &Client, namespace: &str) -> ContentOutcome {
    let mut outcome = ContentOutcome::default();
    let discovery = match Discovery::run(client).await {
        Ok(d) => d,
        Err(err) => {
            outcome.discovery_error = Some(err.to_string());
            return outcome;
        }
    };
    for resource in deletable_resources(discovery.resources()) {
        let gvr = format!(
            "{}/{}, Resource={}",
            resource.resource.group, resource.resource.version, resource.resource.plural
        );
        match delete_content_of(client, namespace, &resource).await {
            Ok(None) => {}
            Ok(Some(remaining)) => {
                let key = format!("{}.{}", resource.resource.plural, resource.resource.group);
                let (estimate, err) = judge_remaining(
                    &gvr,
                    namespace,
                    remaining.count,
                    remaining.grace_estimate,
                    !remaining.finalizers.is_empty(),
                );
                outcome.estimate = outcome.estimate.max(estimate);
                if let Some(err) = err {
                    outcome.errors.push(err);
                }
                if remaining.count > 0 {
                    outcome.remaining.insert(key, remaining.count);
                }
                for (finalizer, n) in remaining.finalizers {
                    *outcome.finalizers.entry(finalizer).or_default() += n;
                }
            }
            Err(err) => outcome.errors.push(format!("{err:#}")),
        }
    }
    outcome
}

struct Remaining {
    count: usize,
    finalizers: BTreeMap<String, usize>,
    /// The longest grace period a remaining object was given (pods).
    grace_estimate: i64,
}

/// Deletes every object of one resource in `namespace` and lists what is left (`None`: the
/// resource cannot be listed, so there is nothing to verify).
async fn delete_content_of(
    client: &Client,
    namespace: &str,
    resource: &Discovered,
) -> anyhow::Result<Option<Remaining>> {
    let api: Api<DynamicObject> = client.api_with(Some(namespace), &resource.resource);
    let has = |verb: &str| resource.verbs.iter().any(|v| v == verb);
    let background = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        ..DeleteParams::default()
    };
    let plural = &resource.resource.plural;
    if has("deletecollection") {
        let request = kube::core::Request::new(api.path())
            .delete_collection(&background, &ListParams::default())
            .map_err(|err| anyhow!("building the deletecollection request: {err}"))?;
        match client.send_bytes(request).await {
            Ok(_) => {}
            // Not found / not allowed for this resource: fall back to one by one below.
            Err(err) if err.is_not_found() || err.code() == Some(405) => {
                delete_each(&api, &background).await?;
            }
            Err(err) => {
                return Err(anyhow!(err).context(format!("deleting the collection of {plural}")))
            }
        }
    } else if has("list") {
        delete_each(&api, &background).await?;
    }
    if !has("list") {
        return Ok(None);
    }
    let items = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing the remaining {plural}"))?
        .items;
    let mut remaining = Remaining {
        count: items.len(),
        finalizers: BTreeMap::new(),
        grace_estimate: 0,
    };
    for item in &items {
        for finalizer in item.metadata.finalizers.iter().flatten() {
            *remaining.finalizers.entry(finalizer.clone()).or_default() += 1;
        }
        if let Some(grace) = item.metadata.deletion_grace_period_seconds {
            remaining.grace_estimate = remaining.grace_estimate.max(grace);
        }
    }
    Ok(Some(remaining))
}

async fn delete_each(api: &Api<DynamicObject>, params: &DeleteParams) -> anyhow::Result<()> {
    let items = api
        .list(&ListParams::default())
        .await
        .with_context(|| format!("listing {}", api.resource()))?
        .items;
    for item in items {
        let Some(name) = item.metadata.name.as_deref() else {
            continue;
        };
        if item.metadata.deletion_timestamp.is_some() {
            continue;
        }
        match api.delete(name, params).await {
            Ok(()) => {}
            Err(err) if err.is_not_found() => {}
            Err(err) => {
                return Err(anyhow!(err).context(format!("deleting {}/{name}", api.resource())))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(
        conditions: &'a [(String, String, String, String)],
        kind: &str,
    ) -> &'a (String, String, String, String) {
        match conditions.iter().find(|c| c.0 == kind) {
            Some(c) => c,
            None => panic!("no {kind} condition in {conditions:?}"),
        }
    }

    #[test]
    fn a_clean_deletion_reports_every_condition_false() {
        let conditions = desired_conditions(&ContentOutcome::default());
        assert_eq!(conditions.len(), 5);
        assert!(conditions.iter().all(|c| c.1 == "False"), "{conditions:?}");
        assert_eq!(find(&conditions, CONTENT_REMAINING).2, "ContentRemoved");
        assert_eq!(
            find(&conditions, CONTENT_FAILURE).3,
            "All content successfully deleted, may be waiting on finalization"
        );
    }

    #[test]
    fn failures_and_remaining_content_become_true_conditions() {
        let outcome = ContentOutcome {
            discovery_error: Some("the server is down".into()),
            errors: vec!["b failed".into(), "a failed".into()],
            remaining: BTreeMap::from([
                ("pods.".to_string(), 2),
                ("widgets.example.com".to_string(), 1),
                ("configmaps.".to_string(), 0),
            ]),
            finalizers: BTreeMap::from([("example.com/hold".to_string(), 1)]),
            estimate: 30,
        };
        let c = desired_conditions(&outcome);
        assert_eq!(
            find(&c, DISCOVERY_FAILURE),
            &(
                DISCOVERY_FAILURE.to_string(),
                "True".to_string(),
                "DiscoveryFailed".to_string(),
                "the server is down".to_string()
            )
        );
        assert_eq!(
            find(&c, CONTENT_FAILURE).3,
            "Failed to delete all resource types, 2 remaining: a failed, b failed"
        );
        assert_eq!(
            find(&c, CONTENT_REMAINING).3,
            "Some resources are remaining: pods. has 2 resource instances, widgets.example.com has 1 resource instances"
        );
        assert_eq!(find(&c, FINALIZERS_REMAINING).2, "SomeFinalizerRemain");
        assert_eq!(
            find(&c, FINALIZERS_REMAINING).3,
            "Some finalizers are remaining: example.com/hold in 1 resource instances"
        );
        assert_eq!(find(&c, GV_PARSING_FAILURE).1, "False");
    }

    #[test]
    fn conditions_change_only_when_their_content_does() {
        let t0 = Timestamp::from_second(1_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let t1 = Timestamp::from_second(2_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let mut existing = Vec::new();
        let clean = desired_conditions(&ContentOutcome::default());
        assert!(update_conditions(&mut existing, &clean, t0));
        assert_eq!(existing.len(), 5);
        assert!(!update_conditions(&mut existing, &clean, t1));
        let remaining = desired_conditions(&ContentOutcome {
            remaining: BTreeMap::from([("pods.".to_string(), 1)]),
            ..ContentOutcome::default()
        });
        assert!(update_conditions(&mut existing, &remaining, t1));
        let c = match existing.iter().find(|c| c.type_ == CONTENT_REMAINING) {
            Some(c) => c,
            None => panic!("missing"),
        };
        assert_eq!(c.status, "True");
        assert_eq!(c.last_transition_time, Some(Time(t1)));
        let untouched = match existing.iter().find(|c| c.type_ == DISCOVERY_FAILURE) {
            Some(c) => c,
            None => panic!("missing"),
        };
        assert_eq!(untouched.last_transition_time, Some(Time(t0)));
    }

    #[test]
    fn remaining_objects_are_waited_for_only_with_a_reason() {
        assert_eq!(judge_remaining("g", "ns", 0, 0, false), (0, None));
        assert_eq!(judge_remaining("g", "ns", 2, 30, false), (30, None));
        assert_eq!(
            judge_remaining("g", "ns", 1, 0, true),
            (FINALIZER_ESTIMATE_SECONDS, None)
        );
        let (estimate, err) = judge_remaining("/v1, Resource=configmaps", "ns", 1, 0, false);
        assert_eq!(estimate, 0);
        assert_eq!(
            err.as_deref(),
            Some(
                "unexpected items still remain in namespace: ns for gvr: /v1, Resource=configmaps"
            )
        );
        assert_eq!(requeue_after(0), Duration::from_secs(1));
        assert_eq!(requeue_after(30), Duration::from_secs(16));
        assert_eq!(requeue_after(15), Duration::from_secs(8));
    }

    #[test]
    fn only_the_kubernetes_finalizer_is_removed() {
        let finalizers = vec!["kubernetes".to_string(), "example.com/x".to_string()];
        assert_eq!(
            without_kubernetes_finalizer(&finalizers),
            vec!["example.com/x".to_string()]
        );
    }

    #[test]
    fn only_namespaced_deletable_resources_are_emptied_once_per_group() {
        fn d(
            group: &str,
            version: &str,
            plural: &str,
            namespaced: bool,
            verbs: &[&str],
        ) -> Discovered {
            Discovered {
                resource: kube::core::ApiResource {
                    group: group.into(),
                    version: version.into(),
                    api_version: format!("{group}/{version}"),
                    kind: "K".into(),
                    plural: plural.into(),
                },
                namespaced,
                verbs: verbs.iter().map(|v| v.to_string()).collect(),
                short_names: vec![],
                subresources: vec![],
            }
        }
        let resources = [
            d("", "v1", "configmaps", true, &["delete", "list"]),
            d("", "v1", "nodes", false, &["delete", "list"]),
            d("x", "v2", "widgets", true, &["delete"]),
            d("x", "v1", "widgets", true, &["delete"]),
            d("", "v1", "bindings", true, &["create"]),
        ];
        let kept: Vec<String> = deletable_resources(&resources)
            .iter()
            .map(|d| format!("{}/{}", d.resource.plural, d.resource.version))
            .collect();
        assert_eq!(kept, vec!["configmaps/v1", "widgets/v2"]);
    }
}
