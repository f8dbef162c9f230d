//! Defaults of `PodSpec` and everything nested in it (containers, probes, volumes, ...), as
//! upstream's core/v1 `SetDefaults_PodSpec`, `SetDefaults_Container`, `SetDefaults_Probe`,
//! `SetDefaults_Volume` and the volume-source defaulters, applied wherever a pod spec occurs.

use crate::json::{child_obj, default_ptr, default_zero, each_obj_mut, existing_obj, Get, Obj};
use serde_json::Value;

/// Upstream's `SecretVolumeSourceDefaultMode` and friends: 0644.
const DEFAULT_MODE: i64 = 0o644;

/// Defaults a `PodTemplateSpec` (`{metadata, spec}`).
pub(crate) fn pod_template_spec(template: &mut Obj) {
    if let Some(spec) = child_obj(template, "spec") {
        pod_spec(spec);
    }
}

/// `SetDefaults_PodSpec` plus the defaults of every nested type.
pub(crate) fn pod_spec(spec: &mut Obj) {
    default_zero(spec, "dnsPolicy", "ClusterFirst");
    default_zero(spec, "restartPolicy", "Always");
    default_ptr(spec, "securityContext", Value::Object(Obj::new()));
    default_ptr(spec, "terminationGracePeriodSeconds", 30);
    default_zero(spec, "schedulerName", "default-scheduler");
    each_obj_mut(spec, "containers", container);
    each_obj_mut(spec, "initContainers", container);
    each_obj_mut(spec, "ephemeralContainers", container);
    each_obj_mut(spec, "volumes", volume);
}

/// The Pod-only defaults (`SetDefaults_Pod`), which templates do not get: requests copied from
/// limits, `enableServiceLinks`, and host ports for host-network pods.
pub(crate) fn pod_only(spec: &mut Obj) {
    for key in ["containers", "initContainers"] {
        each_obj_mut(spec, key, |c| {
            if let Some(res) = existing_obj(c, "resources") {
                requests_from_limits(res);
            }
        });
    }
    default_ptr(spec, "enableServiceLinks", true);
    if spec.bool_of("hostNetwork") {
        for key in ["containers", "initContainers"] {
            each_obj_mut(spec, key, |c| {
                each_obj_mut(c, "ports", |p| {
                    if crate::json::is_zero(p.get("hostPort")) {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p.insert("hostPort".into(), cp);
                        }
                    }
                })
            });
        }
    }
}

fn requests_from_limits(res: &mut Obj) {
    let Some(limits) = res.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(requests) = child_obj(res, "requests") else {
        return;
    };
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// `SetDefaults_Container` (also used for init and ephemeral containers) and the defaults of
/// its ports, env, probes and lifecycle handlers.
pub(crate) fn container(c: &mut Obj) {
    if crate::json::is_zero(c.get("imagePullPolicy")) {
        let policy = pull_policy_for(c.str_of("image"));
        c.insert("imagePullPolicy".into(), policy.into());
    }
    default_zero(c, "terminationMessagePath", "/dev/termination-log");
    default_zero(c, "terminationMessagePolicy", "File");
    // `resources` is a plain struct upstream, so it is always serialized, if only as `{}`.
    default_ptr(c, "resources", Value::Object(Obj::new()));
    each_obj_mut(c, "ports", |p| default_zero(p, "protocol", "TCP"));
    each_obj_mut(c, "env", |e| {
        if let Some(from) = existing_obj(e, "valueFrom") {
            if let Some(f) = existing_obj(from, "fieldRef") {
                default_zero(f, "apiVersion", "v1");
            }
        }
    });
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = existing_obj(c, key) {
            probe(p);
        }
    }
    if let Some(lc) = existing_obj(c, "lifecycle") {
        for key in ["postStart", "preStop"] {
            if let Some(h) = existing_obj(lc, key) {
                handler(h);
            }
        }
    }
}

/// `Always` for `:latest` or an untagged image, else `IfNotPresent` (upstream parses the
/// reference and only looks at the tag; an unparsable reference has no tag).
pub(crate) fn pull_policy_for(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference as upstream's `parsers.ParseImageName` reports it: `latest`
/// when neither tag nor digest is given, `None` when there is only a digest or the reference
/// does not parse.
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name.get(last_slash..).and_then(|tail| tail.rfind(':')) {
        Some(i) => {
            let split = last_slash + i;
            (name.get(..split)?, name.get(split + 1..))
        }
        None => (name, None),
    };
    if !valid_repository(repo) {
        return None;
    }
    match (tag, digest) {
        (Some(t), _) if valid_tag(t) => Some(t.to_string()),
        (Some(_), _) => None,
        (None, Some(d)) if !d.is_empty() => None,
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_string()),
    }
}

/// Path components are lowercase `[a-z0-9]` runs joined by `.`, `_`, `__` or `-`; the first
/// component may instead be a registry host (with dots, a port or upper case).
fn valid_repository(repo: &str) -> bool {
    let parts: Vec<&str> = repo.split('/').collect();
    let path_start = match parts.first() {
        Some(first)
            if parts.len() > 1
                && (first.contains('.')
                    || first.contains(':')
                    || *first == "localhost"
                    || first.chars().any(|c| c.is_ascii_uppercase())) =>
        {
            1
        }
        _ => 0,
    };
    parts.get(path_start..).is_some_and(|path| {
        !path.is_empty()
            && path.iter().all(|p| {
                !p.is_empty()
                    && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && p.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                    && p.chars().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                    })
            })
    })
}

fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `SetDefaults_Probe` plus its handler's defaults.
fn probe(p: &mut Obj) {
    default_zero(p, "timeoutSeconds", 1);
    default_zero(p, "periodSeconds", 10);
    default_zero(p, "successThreshold", 1);
    default_zero(p, "failureThreshold", 3);
    handler(p);
    if let Some(grpc) = existing_obj(p, "grpc") {
        default_ptr(grpc, "service", "");
    }
}

/// `SetDefaults_HTTPGetAction` on a probe or lifecycle handler.
fn handler(h: &mut Obj) {
    if let Some(get) = existing_obj(h, "httpGet") {
        default_zero(get, "path", "/");
        default_zero(get, "scheme", "HTTP");
    }
}

/// Every volume source key of `VolumeSource`: a volume that sets none becomes an `emptyDir`.
const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

pub(crate) fn volume_source_keys() -> &'static [&'static str] {
    VOLUME_SOURCES
}

/// `SetDefaults_Volume` and the defaults of the source it names.
fn volume(v: &mut Obj) {
    if VOLUME_SOURCES.iter().all(|k| !v.has(k)) {
        v.insert("emptyDir".into(), Value::Object(Obj::new()));
    }
    volume_source(v);
    if let Some(eph) = existing_obj(v, "ephemeral") {
        if let Some(tmpl) = existing_obj(eph, "volumeClaimTemplate") {
            if let Some(spec) = existing_obj(tmpl, "spec") {
                pvc_spec(spec);
            }
        }
    }
}

/// Defaults shared by pod volumes and persistent volume sources.
pub(crate) fn volume_source(v: &mut Obj) {
    if let Some(h) = existing_obj(v, "hostPath") {
        default_ptr(h, "type", "");
    }
    for key in ["secret", "configMap"] {
        if let Some(s) = existing_obj(v, key) {
            default_ptr(s, "defaultMode", DEFAULT_MODE);
        }
    }
    if let Some(d) = existing_obj(v, "downwardAPI") {
        default_ptr(d, "defaultMode", DEFAULT_MODE);
        downward_items(d);
    }
    if let Some(p) = existing_obj(v, "projected") {
        default_ptr(p, "defaultMode", DEFAULT_MODE);
        each_obj_mut(p, "sources", |s| {
            if let Some(d) = existing_obj(s, "downwardAPI") {
                downward_items(d);
            }
            if let Some(t) = existing_obj(s, "serviceAccountToken") {
                default_ptr(t, "expirationSeconds", 3600);
            }
        });
    }
    if let Some(i) = existing_obj(v, "iscsi") {
        default_zero(i, "iscsiInterface", "default");
    }
    if let Some(r) = existing_obj(v, "rbd") {
        default_zero(r, "pool", "rbd");
        default_zero(r, "user", "admin");
        default_zero(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = existing_obj(v, "azureDisk") {
        default_ptr(a, "cachingMode", "ReadWrite");
        default_ptr(a, "kind", "Shared");
        default_ptr(a, "fsType", "ext4");
        default_ptr(a, "readOnly", false);
    }
    if let Some(s) = existing_obj(v, "scaleIO") {
        default_zero(s, "storageMode", "ThinProvisioned");
        default_zero(s, "fsType", "xfs");
    }
}

fn downward_items(d: &mut Obj) {
    each_obj_mut(d, "items", |item| {
        if let Some(f) = existing_obj(item, "fieldRef") {
            default_zero(f, "apiVersion", "v1");
        }
    });
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub(crate) fn pvc_spec(spec: &mut Obj) {
    default_ptr(spec, "volumeMode", "Filesystem");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("registry.k8s.io/pause:3.10", "IfNotPresent"),
            ("localhost:5000/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("busybox@sha256:abcd", "IfNotPresent"),
            ("busybox:latest@sha256:abcd", "Always"),
            ("Nginx", "IfNotPresent"),
            ("", "IfNotPresent"),
            ("docker.io/library/nginx", "Always"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy_for(image), want, "{image}");
        }
    }
}
