//! The stable identity of a StatefulSet's pods (upstream's `stateful_set_utils.go`): the
//! `<set>-<ordinal>` names and what they parse back to, the identity labels
//! (`statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`,
//! `controller-revision-hash`), hostname and subdomain, the `<claim>-<set>-<ordinal>` claims a
//! pod mounts, the pod built from a template, the pod predicates the ordering rules rest on,
//! and which pods are members of the set. A [`SetView`] reads the set's spec once with upstream's defaults
//! so the rest never handles a missing field. Nothing here does I/O.

use std::collections::BTreeMap;

use apimachinery::LabelSelector as Selector;
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub use crate::framework::podutil::{is_available, is_finished};
use crate::framework::podutil::{is_ready, phase};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The retention choice of `persistentVolumeClaimRetentionPolicy.whenDeleted/whenScaled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    Retain,
    Delete,
}

impl Retention {
    /// Anything but `Delete` is treated as `Retain`, as upstream does with unknown values.
    fn parse(value: Option<&str>) -> Retention {
        match value {
            Some("Delete") => Retention::Delete,
            _ => Retention::Retain,
        }
    }
}

/// The parts of a StatefulSet the controller decides from, with upstream's defaults applied.
#[derive(Debug, Clone)]
pub struct SetView<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
    pub generation: Option<i64>,
    /// The status as stored (its `currentReplicas` decides the revision of new pods when
    /// there is no rollingUpdate block).
    pub status: Option<&'a StatefulSetStatus>,
    pub deleting: bool,
    pub replicas: i32,
    pub start_ordinal: i32,
    pub service_name: &'a str,
    pub claim_templates: &'a [PersistentVolumeClaim],
    pub selector_labels: Option<&'a BTreeMap<String, String>>,
    /// `podManagementPolicy: Parallel` (upstream's `allowsBurst`).
    pub parallel: bool,
    /// `updateStrategy.type: OnDelete`.
    pub on_delete: bool,
    /// `updateStrategy.rollingUpdate` was given (it carries the partition).
    pub rolling_update_set: bool,
    pub partition: i32,
    pub max_unavailable: Option<&'a IntOrString>,
    pub min_ready_seconds: i32,
    pub revision_history_limit: i32,
    pub when_deleted: Retention,
    pub when_scaled: Retention,
}

impl<'a> SetView<'a> {
    pub fn new(set: &'a StatefulSet) -> Result<SetView<'a>, String> {
        let spec = set.spec.as_ref().ok_or("the StatefulSet has no spec")?;
        let meta = &set.metadata;
        let strategy = spec.update_strategy.as_ref();
        let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
        let policy = spec.persistent_volume_claim_retention_policy.as_ref();
        Ok(SetView {
            name: meta.name.as_deref().unwrap_or_default(),
            namespace: meta.namespace.as_deref().unwrap_or_default(),
            uid: meta.uid.as_deref().unwrap_or_default(),
            generation: meta.generation,
            status: set.status.as_ref(),
            deleting: meta.deletion_timestamp.is_some(),
            replicas: spec.replicas.unwrap_or(1).max(0),
            start_ordinal: spec
                .ordinals
                .as_ref()
                .and_then(|o| o.start)
                .unwrap_or(0)
                .max(0),
            service_name: spec.service_name.as_deref().unwrap_or_default(),
            claim_templates: spec.volume_claim_templates.as_deref().unwrap_or_default(),
            selector_labels: spec.selector.match_labels.as_ref(),
            parallel: spec.pod_management_policy.as_deref() == Some("Parallel"),
            on_delete: strategy.and_then(|s| s.type_.as_deref()) == Some("OnDelete"),
            rolling_update_set: rolling.is_some(),
            partition: rolling.and_then(|r| r.partition).unwrap_or(0).max(0),
            max_unavailable: rolling.and_then(|r| r.max_unavailable.as_ref()),
            min_ready_seconds: spec.min_ready_seconds.unwrap_or(0).max(0),
            revision_history_limit: spec.revision_history_limit.unwrap_or(10).max(0),
            when_deleted: Retention::parse(policy.and_then(|p| p.when_deleted.as_deref())),
            when_scaled: Retention::parse(policy.and_then(|p| p.when_scaled.as_deref())),
        })
    }

    /// The last ordinal this set keeps (inclusive); below `start_ordinal` when scaled to 0.
    pub fn end_ordinal(&self) -> i32 {
        self.start_ordinal + self.replicas - 1
    }

    pub fn in_range(&self, ordinal: i32) -> bool {
        ordinal >= self.start_ordinal && ordinal <= self.end_ordinal()
    }

    pub fn pod_name(&self, ordinal: i32) -> String {
        format!("{}-{ordinal}", self.name)
    }

    pub fn claim_name(&self, template: &str, ordinal: i32) -> String {
        format!("{template}-{}-{ordinal}", self.name)
    }

    /// upstream `getStatefulSetMaxUnavailable`: an absolute number or a percentage of the
    /// replicas rounded down, never below 1.
    pub fn max_unavailable(&self) -> Result<i32, String> {
        let value = match self.max_unavailable {
            None => 1,
            Some(IntOrString::Int(n)) => *n,
            Some(IntOrString::String(s)) => {
                let percent = s
                    .strip_suffix('%')
                    .and_then(|p| p.parse::<i64>().ok())
                    .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
                let scaled = percent * i64::from(self.replicas) / 100;
                i32::try_from(scaled).unwrap_or(i32::MAX)
            }
        };
        Ok(value.max(1))
    }
}

/// upstream `getParentNameAndOrdinal` (`(.*)-([0-9]+)$`): the parent name, and the ordinal when
/// it fits an int32.
pub fn parent_and_ordinal(name: &str) -> Option<(&str, Option<i32>)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse::<i32>().ok()))
}

/// The ordinal a pod's name carries, if any.
pub fn ordinal(pod: &Pod) -> Option<i32> {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default()).and_then(|(_, o)| o)
}

/// upstream `isMemberOf`: the pod's name says it belongs to a set of this name.
pub fn is_member_of(set_name: &str, pod: &Pod) -> bool {
    parent_and_ordinal(pod.metadata.name.as_deref().unwrap_or_default())
        .is_some_and(|(parent, _)| parent == set_name)
}

fn label<'p>(pod: &'p Pod, key: &str) -> Option<&'p str> {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The revision a pod was made from (its `controller-revision-hash` label), "" when unlabelled.
pub fn pod_revision(pod: &Pod) -> &str {
    label(pod, REVISION_LABEL).unwrap_or_default()
}

/// upstream `identityMatches`.
pub fn identity_matches(set: &SetView, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    match parent_and_ordinal(name) {
        Some((parent, Some(ordinal))) => {
            parent == set.name
                && name == set.pod_name(ordinal)
                && pod.metadata.namespace.as_deref() == Some(set.namespace)
                && label(pod, POD_NAME_LABEL) == Some(name)
        }
        _ => false,
    }
}

/// upstream `storageMatches`: every claim template is mounted from the pod's own claim.
pub fn storage_matches(set: &SetView, pod: &Pod) -> bool {
    let Some(ordinal) = ordinal(pod) else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    set.claim_templates.iter().all(|template| {
        let template_name = template.metadata.name.as_deref().unwrap_or_default();
        let wanted = set.claim_name(template_name, ordinal);
        volumes.iter().any(|v| {
            v.name == template_name
                && v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| c.claim_name == wanted)
        })
    })
}

/// upstream `getPersistentVolumeClaims`: the claims of the pod with `ordinal`, in template
/// order, each with the set's selector labels merged over its template's labels.
pub fn claims_for(set: &SetView, ordinal: i32) -> Vec<PersistentVolumeClaim> {
    set.claim_templates
        .iter()
        .map(|template| {
            let mut claim = template.clone();
            let template_name = template.metadata.name.clone().unwrap_or_default();
            claim.metadata = ObjectMeta {
                name: Some(set.claim_name(&template_name, ordinal)),
                namespace: Some(set.namespace.to_string()),
                ..template.metadata.clone()
            };
            claim.status = None;
            if let Some(selector) = set.selector_labels {
                let labels = claim.metadata.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(selector.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
            claim
        })
        .collect()
}

/// upstream `updateIdentity`: name, namespace and the identity labels.
pub fn update_identity(set: &SetView, pod: &mut Pod, ordinal: i32) {
    let name = set.pod_name(ordinal);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = Some(set.namespace.to_string());
    let labels = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(POD_NAME_LABEL.to_string(), name);
    labels.insert(POD_INDEX_LABEL.to_string(), ordinal.to_string());
}

/// upstream `updateStorage`: a volume per claim template (replacing a pod volume of the same
/// name), then the pod's other volumes.
pub fn update_storage(set: &SetView, pod: &mut Pod, ordinal: i32) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let current = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = set
        .claim_templates
        .iter()
        .map(|template| {
            let template_name = template.metadata.name.clone().unwrap_or_default();
            Volume {
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: set.claim_name(&template_name, ordinal),
                    read_only: Some(false),
                }),
                name: template_name,
                ..Volume::default()
            }
        })
        .collect();
    volumes.extend(current.into_iter().filter(|v| {
        !set.claim_templates
            .iter()
            .any(|t| t.metadata.name.as_deref() == Some(&v.name))
    }));
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
}

/// upstream `newStatefulSetPod` + `setPodRevision`: the pod with `ordinal` from `template` (the
/// template of the revision it is made at), controlled by the set.
pub fn new_pod(
    set: &SetView,
    template: &PodTemplateSpec,
    owner: OwnerReference,
    ordinal: i32,
    revision: &str,
) -> Pod {
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut pod = Pod {
        metadata: ObjectMeta {
            labels: template_meta.labels,
            annotations: template_meta.annotations,
            finalizers: template_meta.finalizers,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(template.spec.clone().unwrap_or_default()),
        status: None,
    };
    update_identity(set, &mut pod, ordinal);
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(set.pod_name(ordinal));
        if !set.service_name.is_empty() {
            spec.subdomain = Some(set.service_name.to_string());
        }
    }
    update_storage(set, &mut pod, ordinal);
    pod.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.to_string(), revision.to_string());
    pod
}

// ---- predicates -------------------------------------------------------------------------

/// upstream `isRunningAndReady`.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && is_ready(pod)
}

pub fn is_pending(pod: &Pod) -> bool {
    phase(pod) == "Pending"
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// upstream `isHealthy`: running, ready and not being deleted.
pub fn is_healthy(pod: &Pod) -> bool {
    is_running_and_ready(pod) && !is_terminating(pod)
}

// ---- ownership --------------------------------------------------------------------------

/// Whether the set may claim `pod` (upstream's selector match plus the `isMemberOf` filter of
/// `ClaimPods`): selected, and named `<set>-<ordinal>`.
pub fn is_member(set: &SetView, selector: &Selector, pod: &Pod) -> bool {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    selector.matches(&labels) && is_member_of(set.name, pod)
}
