//! The node status patch, as upstream's `nodeutil.PatchNodeStatus` builds it: a two-way
//! strategic merge patch from the Node as read to the Node as computed, sent to
//! `nodes/<name>/status`. Only what changed travels: maps by key (a removed key becomes
//! `null`), `conditions` by their merge key `type` with `$setElementOrder/conditions`, other
//! lists whole. `addresses` is declared patchStrategy=merge upstream but must be replaced, so
//! when it changes the patch lists the new addresses followed by `{"$patch": "replace"}`,
//! exactly as upstream's fix-up does.
//!
//! And upstream's `nodeStatusHasChanged`: whether anything but heartbeat times differs.

use k8s_openapi::api::core::v1::NodeStatus;
use serde_json::{json, Map, Value};

/// Whether `new` differs from `old` other than in the conditions' heartbeat times (conditions
/// compared by type, in any order).
pub fn status_changed(old: Option<&NodeStatus>, new: Option<&NodeStatus>) -> bool {
    let normalize = |status: Option<&NodeStatus>| -> Value {
        let mut value = status
            .and_then(|s| serde_json::to_value(s).ok())
            .unwrap_or(Value::Null);
        if let Some(conditions) = value.get_mut("conditions").and_then(Value::as_array_mut) {
            for c in conditions.iter_mut() {
                if let Some(map) = c.as_object_mut() {
                    map.remove("lastHeartbeatTime");
                }
            }
            conditions.sort_by(|a, b| {
                let t = |v: &Value| {
                    v.get("type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                t(a).cmp(&t(b))
            });
        }
        value
    };
    normalize(old) != normalize(new)
}

/// The strategic merge patch taking `old` status to `new` (both serialized NodeStatus), as
/// `{"status": {...}}`; `None` when nothing differs.
pub fn status_patch(old: &Value, new: &Value) -> Option<Value> {
    let empty = Map::new();
    let old_map = old.as_object().unwrap_or(&empty);
    let new_map = new.as_object().unwrap_or(&empty);
    let mut patch = Map::new();
    for (key, new_value) in new_map {
        let old_value = old_map.get(key);
        if old_value == Some(new_value) {
            continue;
        }
        match key.as_str() {
            "conditions" => {
                let (order, entries) = keyed_list_patch(old_value, new_value, "type");
                if !entries.is_empty() {
                    patch.insert("$setElementOrder/conditions".into(), order);
                    patch.insert("conditions".into(), Value::Array(entries));
                }
            }
            "addresses" => {
                let old_len = old_value.and_then(Value::as_array).map_or(0, Vec::len);
                let mut list = new_value.as_array().cloned().unwrap_or_default();
                if old_len > 0 {
                    list.push(json!({"$patch": "replace"}));
                }
                patch.insert(key.clone(), Value::Array(list));
            }
            _ => match (old_value, new_value) {
                (Some(Value::Object(_)), Value::Object(_)) => {
                    if let Some(diff) = map_diff(old_value.unwrap_or(&Value::Null), new_value) {
                        patch.insert(key.clone(), diff);
                    }
                }
                _ => {
                    patch.insert(key.clone(), new_value.clone());
                }
            },
        }
    }
    for key in old_map.keys() {
        if !new_map.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    (!patch.is_empty()).then(|| json!({ "status": Value::Object(patch) }))
}

/// A plain recursive map diff (JSON merge semantics: changed keys, `null` for removed ones).
fn map_diff(old: &Value, new: &Value) -> Option<Value> {
    let (Some(old), Some(new)) = (old.as_object(), new.as_object()) else {
        return (old != new).then(|| new.clone());
    };
    let mut out = Map::new();
    for (key, new_value) in new {
        match old.get(key) {
            Some(old_value) if old_value == new_value => {}
            Some(old_value @ Value::Object(_)) if new_value.is_object() => {
                if let Some(diff) = map_diff(old_value, new_value) {
                    out.insert(key.clone(), diff);
                }
            }
            _ => {
                out.insert(key.clone(), new_value.clone());
            }
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            out.insert(key.clone(), Value::Null);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// For a list merged by `merge_key`: the `$setElementOrder` list, and one entry per changed or
/// added element (the key plus what differs) or removed element (`$patch: delete`).
fn keyed_list_patch(old: Option<&Value>, new: &Value, merge_key: &str) -> (Value, Vec<Value>) {
    let old_items: Vec<&Value> = old
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let new_items = new.as_array().cloned().unwrap_or_default();
    let key_of = |v: &Value| v.get(merge_key).cloned().unwrap_or(Value::Null);
    let order: Vec<Value> = new_items
        .iter()
        .map(|item| json!({ merge_key: key_of(item) }))
        .collect();
    let mut entries = Vec::new();
    for item in &new_items {
        let key = key_of(item);
        match old_items.iter().find(|o| key_of(o) == key) {
            Some(old_item) if *old_item == item => {}
            Some(old_item) => {
                if let Some(Value::Object(mut diff)) = map_diff(old_item, item) {
                    diff.insert(merge_key.to_string(), key);
                    entries.push(Value::Object(diff));
                }
            }
            None => entries.push(item.clone()),
        }
    }
    for old_item in &old_items {
        let key = key_of(old_item);
        if !new_items.iter().any(|n| key_of(n) == key) {
            entries.push(json!({ "$patch": "delete", merge_key: key }));
        }
    }
    (Value::Array(order), entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(heartbeat: &str, ready: &str) -> Value {
        json!([
            {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
             "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "Ready", "status": ready, "reason": "KubeletReady",
             "lastHeartbeatTime": heartbeat, "lastTransitionTime": "2024-01-01T00:00:00Z"},
        ])
    }

    #[test]
    fn a_heartbeat_patch_names_each_condition_by_type() {
        let old = json!({"conditions": conditions("2024-01-01T00:00:00Z", "True"),
                         "capacity": {"cpu": "4"}});
        let new = json!({"conditions": conditions("2024-01-01T00:05:00Z", "True"),
                         "capacity": {"cpu": "4"}});
        let patch = status_patch(&old, &new).unwrap();
        assert_eq!(
            patch,
            json!({"status": {
                "$setElementOrder/conditions": [{"type": "MemoryPressure"}, {"type": "Ready"}],
                "conditions": [
                    {"type": "MemoryPressure", "lastHeartbeatTime": "2024-01-01T00:05:00Z"},
                    {"type": "Ready", "lastHeartbeatTime": "2024-01-01T00:05:00Z"},
                ],
            }})
        );
        assert_eq!(status_patch(&old, &old), None);
    }

    #[test]
    fn maps_patch_by_key_and_addresses_are_replaced() {
        let old = json!({
            "capacity": {"cpu": "4", "hugepages-32Mi": "0"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "x"},
        });
        let new = json!({
            "capacity": {"cpu": "8"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}, {"type": "Hostname", "address": "n1"}],
            "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "x"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        });
        let patch = status_patch(&old, &new).unwrap();
        assert_eq!(
            patch,
            json!({"status": {
                "capacity": {"cpu": "8", "hugepages-32Mi": null},
                "addresses": [
                    {"type": "InternalIP", "address": "10.0.0.2"},
                    {"type": "Hostname", "address": "n1"},
                    {"$patch": "replace"},
                ],
                "nodeInfo": {"kubeletVersion": "v1.33.0"},
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            }})
        );
        // First addresses: a plain list.
        let patch = status_patch(
            &json!({}),
            &json!({"addresses": [{"type": "Hostname", "address": "n1"}]}),
        )
        .unwrap();
        assert_eq!(
            patch["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}])
        );
    }

    #[test]
    fn a_flip_carries_the_changed_fields_and_removed_conditions_are_deleted() {
        let old = json!({"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"},
            {"type": "Stale", "status": "True"},
        ]});
        let new = json!({"conditions": [
            {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"},
        ]});
        let patch = status_patch(&old, &new).unwrap();
        assert_eq!(
            patch["status"]["conditions"],
            json!([
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "container runtime is down"},
                {"$patch": "delete", "type": "Stale"},
            ])
        );
    }

    #[test]
    fn changed_ignores_heartbeats_only() {
        let status = |heartbeat: &str, ready: &str| -> NodeStatus {
            serde_json::from_value(json!({"conditions": conditions(heartbeat, ready)})).unwrap()
        };
        let a = status("2024-01-01T00:00:00Z", "True");
        let b = status("2024-01-01T00:00:10Z", "True");
        let c = status("2024-01-01T00:00:10Z", "False");
        assert!(!status_changed(Some(&a), Some(&b)));
        assert!(status_changed(Some(&a), Some(&c)));
        assert!(status_changed(None, Some(&a)));
        let mut reordered = a.clone();
        reordered.conditions.as_mut().unwrap().reverse();
        assert!(!status_changed(Some(&a), Some(&reordered)));
    }
}
