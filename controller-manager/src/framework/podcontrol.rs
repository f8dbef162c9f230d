//! Creating and deleting a controller's pods (upstream's `RealPodControl` and `slowStartBatch`
//! in `controller_utils.go`): pods built from the owner's template, created in slow-start
//! batches so a template the API refuses costs one request and not hundreds, deleted in
//! parallel, each write answered with upstream's events (`SuccessfulCreate` "Created pod: x",
//! `FailedCreate` "Error creating: ...", `SuccessfulDelete` "Deleted pod: x", `FailedDelete`
//! "Error deleting: ..."). What a failure means for the controller's expectations is the
//! caller's to decide from the outcomes returned.

use std::future::Future;

use client::client::DeleteParams;
use client::events::CoreEventRecorder;
use client::{Api, Client};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{error_message, is_namespace_terminating, warn_event};

/// Upstream's `SlowStartInitialBatchSize`.
pub const SLOW_START_INITIAL_BATCH: usize = 1;

/// upstream `slowStartBatch`'s batch sizes: `initial`, doubling, until `count` are made.
pub fn slow_start_batches(count: usize, initial: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let mut remaining = count;
    let mut size = remaining.min(initial.max(1));
    while size > 0 {
        batches.push(size);
        remaining -= size;
        size = (2 * size).min(remaining);
    }
    batches
}

/// upstream `slowStartBatch`: calls `op(i)` for `i` in `0..count` in batches of doubling size
/// (each batch concurrently) and stops after the first batch with an `Err`. Returns the results
/// of the calls made, in order: fewer than `count` when a batch failed.
pub async fn slow_start<F, Fut, T, E>(count: usize, initial: usize, op: F) -> Vec<Result<T, E>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut results = Vec::with_capacity(count);
    for batch in slow_start_batches(count, initial) {
        let start = results.len();
        results.extend(futures::future::join_all((start..start + batch).map(&op)).await);
        if results[start..].iter().any(Result::is_err) {
            break;
        }
    }
    results
}

/// upstream `GetPodFromTemplate`: the template's labels, annotations, finalizers and spec, a
/// generated name, and the controller reference.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    generate_name: String,
    namespace: Option<String>,
    controller_ref: OwnerReference,
) -> Result<Pod, String> {
    let meta = template.metadata.clone().unwrap_or_default();
    let spec = template
        .spec
        .clone()
        .ok_or("the pod template has no spec")?;
    Ok(Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name),
            namespace,
            labels: meta.labels,
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![controller_ref]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

/// What a round of [`PodControl::create_pods`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Creations {
    /// Pods the API created.
    pub created: usize,
    /// Creations refused because the namespace is being deleted: not failures to report.
    pub namespace_terminating: usize,
    /// Why each failed creation failed (the pod could not be built, or the API refused it).
    pub failures: Vec<String>,
    /// Creations never tried because a batch before them failed.
    pub skipped: usize,
}

/// What became of one deletion of [`PodControl::delete_pods`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    /// Already gone.
    NotFound,
    /// The API refused it; the message.
    Failed(String),
}

/// Writes the pods of one owner in one namespace, recording events on the owner.
pub struct PodControl<'a> {
    api: Api<Pod>,
    recorder: &'a CoreEventRecorder,
    owner: &'a ObjectReference,
}

impl<'a> PodControl<'a> {
    pub fn new(
        client: &Client,
        namespace: &str,
        recorder: &'a CoreEventRecorder,
        owner: &'a ObjectReference,
    ) -> PodControl<'a> {
        PodControl {
            api: client.api(Some(namespace)),
            recorder,
            owner,
        }
    }

    /// Creates `count` pods, the `i`th built by `make(i)`, in slow-start batches from
    /// [`SLOW_START_INITIAL_BATCH`], stopping after the first batch with a failure.
    pub async fn create_pods(
        &self,
        count: usize,
        make: impl Fn(usize) -> Result<Pod, String>,
    ) -> Creations {
        let results = slow_start(count, SLOW_START_INITIAL_BATCH, |i| {
            let pod = make(i);
            async move {
                match self.api.create(&pod?).await {
                    Ok(created) => Ok(Some(created.metadata.name.unwrap_or_default())),
                    Err(err) if is_namespace_terminating(&err) => Ok(None),
                    Err(err) => Err(error_message(&err)),
                }
            }
        })
        .await;
        let mut creations = Creations {
            skipped: count - results.len(),
            ..Creations::default()
        };
        for result in results {
            match result {
                Ok(Some(name)) => {
                    creations.created += 1;
                    self.recorder.normal(
                        self.owner,
                        "SuccessfulCreate",
                        &format!("Created pod: {name}"),
                    );
                }
                Ok(None) => creations.namespace_terminating += 1,
                Err(message) => {
                    warn_event(
                        self.recorder,
                        self.owner,
                        "FailedCreate",
                        &format!("Error creating: {message}"),
                    );
                    creations.failures.push(message);
                }
            }
        }
        creations
    }

    /// Deletes the pods named `names` in parallel; the outcomes in the same order.
    pub async fn delete_pods(&self, names: &[String]) -> Vec<Deletion> {
        let params = DeleteParams::default();
        let results =
            futures::future::join_all(names.iter().map(|name| self.api.delete(name, &params)))
                .await;
        names
            .iter()
            .zip(results)
            .map(|(name, result)| match result {
                Ok(()) => {
                    self.recorder.normal(
                        self.owner,
                        "SuccessfulDelete",
                        &format!("Deleted pod: {name}"),
                    );
                    Deletion::Deleted
                }
                Err(err) if err.is_not_found() => Deletion::NotFound,
                Err(err) => {
                    let message = error_message(&err);
                    warn_event(
                        self.recorder,
                        self.owner,
                        "FailedDelete",
                        &format!("Error deleting: {message}"),
                    );
                    Deletion::Failed(message)
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    #[test]
    fn slow_start_batches_double_up_to_the_count() {
        let cases: &[(usize, &[usize])] = &[
            (0, &[]),
            (1, &[1]),
            (2, &[1, 1]),
            (3, &[1, 2]),
            (7, &[1, 2, 4]),
            (10, &[1, 2, 4, 3]),
            (500, &[1, 2, 4, 8, 16, 32, 64, 128, 245]),
        ];
        for (count, want) in cases {
            let got = slow_start_batches(*count, SLOW_START_INITIAL_BATCH);
            assert_eq!(got, want.to_vec(), "count {count}");
            assert_eq!(got.iter().sum::<usize>(), *count);
        }
        assert_eq!(slow_start_batches(10, 4), vec![4, 6]);
    }

    #[tokio::test]
    async fn slow_start_stops_at_the_first_failed_batch() {
        // (count, calls that fail (1-based), want successes, want calls made)
        let cases: &[(usize, &[usize], usize, usize)] = &[
            (10, &[], 10, 10),
            (10, &[1], 0, 1),
            (10, &[2], 2, 3),
            (10, &[4, 5], 5, 7),
            (10, &[9], 9, 10),
        ];
        for (count, failing, want_ok, want_calls) in cases {
            let calls = AtomicUsize::new(0);
            let results = slow_start(*count, SLOW_START_INITIAL_BATCH, |i| {
                calls.fetch_add(1, Ordering::SeqCst);
                let fail = failing.contains(&(i + 1));
                async move {
                    if fail {
                        Err(format!("call {}", i + 1))
                    } else {
                        Ok(i)
                    }
                }
            })
            .await;
            let made = calls.load(Ordering::SeqCst);
            assert_eq!(made, *want_calls, "count {count} failing {failing:?}");
            assert_eq!(results.len(), made, "one result per call, in order");
            let ok = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, *want_ok, "count {count} failing {failing:?}");
            for (i, result) in results.iter().enumerate() {
                assert_eq!(result.is_err(), failing.contains(&(i + 1)), "call {i}");
            }
        }
    }

    #[test]
    fn pods_come_from_the_template() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let owner_ref = OwnerReference {
            uid: "me".into(),
            controller: Some(true),
            ..OwnerReference::default()
        };
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels.clone()),
                annotations: Some([("note".to_string(), "x".to_string())].into()),
                finalizers: Some(vec!["f".into()]),
                name: Some("ignored".into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some("nginx".into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        };
        let pod = match pod_from_template(
            &template,
            "web-".into(),
            Some("ns".into()),
            owner_ref.clone(),
        ) {
            Ok(pod) => pod,
            Err(err) => panic!("valid template refused: {err}"),
        };
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("ns"));
        assert_eq!(pod.metadata.labels, Some(labels));
        assert_eq!(
            pod.metadata.annotations,
            Some([("note".to_string(), "x".to_string())].into())
        );
        assert_eq!(pod.metadata.finalizers, Some(vec!["f".to_string()]));
        assert_eq!(pod.metadata.owner_references, Some(vec![owner_ref.clone()]));
        assert_eq!(pod.spec, template.spec);

        let no_spec = PodTemplateSpec {
            spec: None,
            ..template
        };
        assert_eq!(
            pod_from_template(&no_spec, "web-".into(), None, owner_ref),
            Err("the pod template has no spec".into())
        );
    }
}
