//! Decoding a body into its kind's schema: type errors (400, as upstream's "cannot be handled
//! as a Deployment"), and unknown fields handled as `?fieldValidation=` asks (Strict: 400;
//! Warn, the default: a `Warning` header; Ignore: nothing).
//!
//! The schema is the typed struct of `k8s-openapi` for the kind: the body is decoded into it and
//! encoded back; every non-null field of the body that did not survive the round trip is a field
//! the schema does not know.

use k8s_openapi::api;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::errors::{bad_request, ApiResult};
use crate::handlers::Query;
use crate::resources::Resource;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Strict,
    Warn,
    Ignore,
}

pub fn mode(query: &Query) -> ApiResult<Mode> {
    match query.get("fieldValidation").map(String::as_str) {
        None | Some("") | Some("Warn") => Ok(Mode::Warn),
        Some("Strict") => Ok(Mode::Strict),
        Some("Ignore") => Ok(Mode::Ignore),
        Some(other) => Err(bad_request(format!(
            "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Warn\", \"Strict\""
        ))),
    }
}

/// Checks `obj` against its kind's schema; unknown fields become warnings or an error.
pub fn check(
    resource: &Resource,
    obj: &Value,
    raw_json: Option<&[u8]>,
    query: &Query,
    warnings: &mut Vec<String>,
) -> ApiResult<()> {
    let mode = mode(query)?;
    let Some(round_tripped) = round_trip(resource, obj) else {
        return Ok(());
    };
    let round_tripped = round_tripped.map_err(|err| {
        bad_request(format!(
            "{kind} in version \"{version}\" cannot be handled as a {kind}: {err}",
            kind = resource.kind,
            version = resource.version
        ))
    })?;
    if mode == Mode::Ignore {
        return Ok(());
    }
    let mut problems: Vec<String> = raw_json
        .map(duplicate_fields)
        .unwrap_or_default()
        .into_iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .collect();
    let mut unknown = Vec::new();
    unknown_fields(obj, &round_tripped, "", &mut unknown, 0);
    problems.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
    if problems.is_empty() {
        return Ok(());
    }
    match mode {
        Mode::Strict => {
            let list = problems;
            Err(bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = resource.kind,
                version = resource.version
            )))
        }
        _ => {
            warnings.extend(problems);
            Ok(())
        }
    }
}

/// Depth beyond which the comparison stops (serde_json refuses deeper input anyway).
const MAX_DEPTH: usize = 64;

fn unknown_fields(
    original: &Value,
    known: &Value,
    path: &str,
    out: &mut Vec<String>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match (original, known) {
        (Value::Object(o), Value::Object(k)) => {
            for (key, value) in o {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => unknown_fields(value, kv, &child, out, depth + 1),
                    None if value.is_null() => {}
                    None if path.is_empty() && (key == "kind" || key == "apiVersion") => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(o), Value::Array(k)) => {
            for (i, (ov, kv)) in o.iter().zip(k.iter()).enumerate() {
                unknown_fields(ov, kv, &format!("{path}[{i}]"), out, depth + 1);
            }
        }
        _ => {}
    }
}

/// Fields given twice in the same JSON object (the last one wins when decoding, so upstream
/// reports them under Strict and Warn).
fn duplicate_fields(raw: &[u8]) -> Vec<String> {
    let found = std::cell::RefCell::new(Vec::new());
    let mut de = serde_json::Deserializer::from_slice(raw);
    let seed = Duplicates {
        path: String::new(),
        found: &found,
    };
    if serde::de::DeserializeSeed::deserialize(seed, &mut de).is_err() {
        return Vec::new();
    }
    found.into_inner()
}

struct Duplicates<'a> {
    path: String,
    found: &'a std::cell::RefCell<Vec<String>>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Duplicates<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Duplicates<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.borrow_mut().push(child.clone());
            }
            map.next_value_seed(Duplicates {
                path: child,
                found: self.found,
            })?;
        }
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        while seq
            .next_element_seed(Duplicates {
                path: format!("{}[{i}]", self.path),
                found: self.found,
            })?
            .is_some()
        {
            i += 1;
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

fn rt<T: DeserializeOwned + Serialize>(obj: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(obj.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// The typed round trip for a kind, or `None` for kinds without a typed schema here.
fn round_trip(resource: &Resource, obj: &Value) -> Option<Result<Value, String>> {
    use api::{
        apps::v1 as apps, autoscaling::v2 as autoscaling, batch::v1 as batch,
        coordination::v1 as coordination, core::v1 as core, discovery::v1 as discovery,
        events::v1 as events, networking::v1 as networking, node::v1 as node, policy::v1 as policy,
        rbac::v1 as rbac, scheduling::v1 as scheduling, storage::v1 as storage,
    };
    let f: fn(&Value) -> Result<Value, String> = match (resource.group, resource.kind) {
        ("", "ConfigMap") => rt::<core::ConfigMap>,
        ("", "Endpoints") => rt::<core::Endpoints>,
        ("", "Event") => rt::<core::Event>,
        ("", "LimitRange") => rt::<core::LimitRange>,
        ("", "Namespace") => rt::<core::Namespace>,
        ("", "Node") => rt::<core::Node>,
        ("", "PersistentVolumeClaim") => rt::<core::PersistentVolumeClaim>,
        ("", "PersistentVolume") => rt::<core::PersistentVolume>,
        ("", "Pod") => rt::<core::Pod>,
        ("", "PodTemplate") => rt::<core::PodTemplate>,
        ("", "ReplicationController") => rt::<core::ReplicationController>,
        ("", "ResourceQuota") => rt::<core::ResourceQuota>,
        ("", "Secret") => rt::<core::Secret>,
        ("", "ServiceAccount") => rt::<core::ServiceAccount>,
        ("", "Service") => rt::<core::Service>,
        ("apps", "ControllerRevision") => rt::<apps::ControllerRevision>,
        ("apps", "DaemonSet") => rt::<apps::DaemonSet>,
        ("apps", "Deployment") => rt::<apps::Deployment>,
        ("apps", "ReplicaSet") => rt::<apps::ReplicaSet>,
        ("apps", "StatefulSet") => rt::<apps::StatefulSet>,
        ("autoscaling", "HorizontalPodAutoscaler") => rt::<autoscaling::HorizontalPodAutoscaler>,
        ("batch", "CronJob") => rt::<batch::CronJob>,
        ("batch", "Job") => rt::<batch::Job>,
        ("coordination.k8s.io", "Lease") => rt::<coordination::Lease>,
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            rt::<api::admissionregistration::v1::MutatingWebhookConfiguration>
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            rt::<api::admissionregistration::v1::ValidatingWebhookConfiguration>
        }
        ("certificates.k8s.io", "CertificateSigningRequest") => {
            rt::<api::certificates::v1::CertificateSigningRequest>
        }
        ("discovery.k8s.io", "EndpointSlice") => rt::<discovery::EndpointSlice>,
        ("events.k8s.io", "Event") => rt::<events::Event>,
        ("networking.k8s.io", "IngressClass") => rt::<networking::IngressClass>,
        ("networking.k8s.io", "Ingress") => rt::<networking::Ingress>,
        ("networking.k8s.io", "NetworkPolicy") => rt::<networking::NetworkPolicy>,
        ("node.k8s.io", "RuntimeClass") => rt::<node::RuntimeClass>,
        ("policy", "PodDisruptionBudget") => rt::<policy::PodDisruptionBudget>,
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => rt::<rbac::ClusterRoleBinding>,
        ("rbac.authorization.k8s.io", "ClusterRole") => rt::<rbac::ClusterRole>,
        ("rbac.authorization.k8s.io", "RoleBinding") => rt::<rbac::RoleBinding>,
        ("rbac.authorization.k8s.io", "Role") => rt::<rbac::Role>,
        ("scheduling.k8s.io", "PriorityClass") => rt::<scheduling::PriorityClass>,
        ("storage.k8s.io", "CSIDriver") => rt::<storage::CSIDriver>,
        ("storage.k8s.io", "CSINode") => rt::<storage::CSINode>,
        ("storage.k8s.io", "StorageClass") => rt::<storage::StorageClass>,
        ("storage.k8s.io", "VolumeAttachment") => rt::<storage::VolumeAttachment>,
        _ => return None,
    };
    Some(f(obj))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::find;
    use serde_json::json;

    fn query(mode: &str) -> Query {
        [("fieldValidation".to_string(), mode.to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn unknown_fields_warn_by_default_and_fail_under_strict() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "bogus": 1,
                     "template": {"spec": {"containers": [{"name": "c", "image": "i", "imagePolicy": "x"}]}}}});
        let mut warnings = Vec::new();
        check(deploy, &obj, None, &Query::new(), &mut warnings).unwrap();
        assert_eq!(
            warnings,
            vec![
                "unknown field \"spec.bogus\"".to_string(),
                "unknown field \"spec.template.spec.containers[0].imagePolicy\"".to_string()
            ]
        );
        let err = check(deploy, &obj, None, &query("Strict"), &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.status["message"]
            .as_str()
            .unwrap()
            .contains("strict decoding error: unknown field \"spec.bogus\""));
        let mut none = Vec::new();
        check(deploy, &obj, None, &query("Ignore"), &mut none).unwrap();
        assert!(none.is_empty());
    }

    #[test]
    fn wrong_types_are_bad_requests() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": "three"}});
        let err = check(deploy, &obj, None, &Query::new(), &mut Vec::new()).unwrap_err();
        assert_eq!(err.code, 400);
        assert!(err.status["message"]
            .as_str()
            .unwrap()
            .starts_with("Deployment in version \"v1\" cannot be handled as a Deployment"));
    }

    #[test]
    fn duplicate_fields_are_reported_with_their_path() {
        let cm = find("", "v1", "configmaps").unwrap();
        let raw = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},"data":{"x":"1","x":"2"}}"#;
        let obj: Value = serde_json::from_slice(raw).unwrap();
        let err = check(cm, &obj, Some(raw), &query("Strict"), &mut Vec::new()).unwrap_err();
        let message = err.status["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("duplicate field \"metadata.name\""),
            "{message}"
        );
        assert!(message.contains("duplicate field \"data.x\""), "{message}");
        let mut warnings = Vec::new();
        check(cm, &obj, Some(raw), &Query::new(), &mut warnings).unwrap();
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn a_clean_object_has_no_warnings() {
        let pod = find("", "v1", "pods").unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"a": "b"}, "creationTimestamp": null},
            "spec": {"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "1"}}, "ports": [{"containerPort": 80}]}]}});
        let mut warnings = Vec::new();
        check(pod, &obj, None, &query("Strict"), &mut warnings).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
