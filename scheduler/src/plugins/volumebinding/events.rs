//! Reading the objects of cluster events in queueing hints. Storage objects arrive as JSON
//! (`EventObject::Other`), so hints read the few fields they need instead of decoding whole
//! objects for every pending pod.

use k8s_openapi::api::core::v1::Pod;
use serde_json::Value;

use crate::framework::EventObject;

/// The JSON of a non-pod, non-node event object.
pub fn json(obj: Option<&EventObject>) -> Option<&Value> {
    match obj? {
        EventObject::Other(v) => Some(v.as_ref()),
        _ => None,
    }
}

/// The new object of an add or update, which every hint needs.
pub fn required_json(obj: Option<&EventObject>) -> Result<&Value, String> {
    json(obj).ok_or_else(|| "unexpected object in the event".to_string())
}

pub fn pod_of(obj: Option<&EventObject>) -> Result<&Pod, String> {
    match obj {
        Some(EventObject::Pod(p)) => Ok(p.as_ref()),
        _ => Err("unexpected object in the event: want a Pod".to_string()),
    }
}

pub fn meta<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn annotation<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

/// Whether the pod names the claim `namespace/name` (generic ephemeral claims included).
pub fn pod_uses_claim(pod: &Pod, namespace: &str, name: &str) -> bool {
    pod.metadata.namespace.as_deref().unwrap_or("") == namespace
        && super::storage::pod_volumes(pod).iter().any(|v| {
            super::storage::volume_claim_name(pod, v).is_some_and(|(claim, _)| claim == name)
        })
}
