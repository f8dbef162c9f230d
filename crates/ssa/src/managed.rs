//! `metadata.managedFields`: decoding the entries into one field set per manager, and encoding
//! them back sorted the way upstream's fieldmanager sorts them.
//!
//! A manager is identified the way upstream's `BuildManagerIdentifier` does: by name, operation
//! and subresource, plus the API version for `Update` entries (an applier keeps one entry across
//! versions).

use serde_json::{Map, Value};

use crate::fieldpath::Set;

/// `Apply` or `Update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, patch.
    Update,
}

impl Operation {
    /// The wire text.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One decoded `managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub subresource: String,
    pub time: Option<String>,
    pub set: Set,
}

impl Entry {
    pub fn same_manager(&self, manager: &str, op: Operation, subresource: &str, api: &str) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api)
    }

    /// Upstream's manager identifier: the entry's JSON without fields, time and (for appliers)
    /// API version. Conflict messages are grouped and sorted by it.
    pub fn identifier(&self) -> String {
        let mut id = format!(
            "{{\"manager\":{},\"operation\":\"{}\"",
            Value::String(self.manager.clone()),
            self.operation.as_str()
        );
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            id.push_str(&format!(
                ",\"apiVersion\":{}",
                Value::String(self.api_version.clone())
            ));
        }
        if !self.subresource.is_empty() {
            id.push_str(&format!(
                ",\"subresource\":{}",
                Value::String(self.subresource.clone())
            ));
        }
        id.push('}');
        id
    }

    /// How upstream names the manager in conflicts: `"kubectl"`, or
    /// `"kube-controller-manager" using apps/v1`, with ` with subresource "status"` after the
    /// name when there is one.
    pub fn describe(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

fn str_field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "managedFields {name} must be a string, got {other}"
        )),
    }
}

/// Decodes `metadata.managedFields` (absent or null is empty).
pub(crate) fn decode(list: Option<&Value>) -> Result<Vec<Entry>, String> {
    let items = match list {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(format!("managedFields must be a list, got {other}")),
    };
    let mut out: Vec<Entry> = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(obj) = item else {
            return Err(format!("managedFields entry must be an object, got {item}"));
        };
        let operation = match str_field(obj, "operation")? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            other => return Err(format!("invalid operation {other:?} in managedFields")),
        };
        let set = match obj.get("fieldsV1") {
            None | Some(Value::Null) => Set::new(),
            Some(v) => {
                let fields_type = str_field(obj, "fieldsType")?;
                if fields_type != "FieldsV1" {
                    return Err(format!(
                        "invalid fieldsType {fields_type:?} in managedFields"
                    ));
                }
                Set::from_fields_v1(v)?
            }
        };
        let time = match str_field(obj, "time")? {
            "" => None,
            t => Some(t.to_string()),
        };
        let entry = Entry {
            manager: str_field(obj, "manager")?.to_string(),
            operation,
            api_version: str_field(obj, "apiVersion")?.to_string(),
            subresource: str_field(obj, "subresource")?.to_string(),
            time,
            set,
        };
        // A repeated manager keeps its last entry, as upstream's decoding into a map does.
        out.retain(|e| e.identifier() != entry.identifier());
        out.push(entry);
    }
    Ok(out)
}

/// Encodes the entries, dropping empty ones, sorted like upstream: by operation, time, manager,
/// API version, subresource.
pub(crate) fn encode(entries: &[Entry]) -> Vec<Value> {
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| !e.set.is_empty()).collect();
    sorted.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| {
                a.time
                    .as_deref()
                    .unwrap_or("")
                    .cmp(b.time.as_deref().unwrap_or(""))
            })
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    sorted
        .into_iter()
        .map(|e| {
            let mut obj = Map::new();
            obj.insert("manager".into(), Value::String(e.manager.clone()));
            obj.insert(
                "operation".into(),
                Value::String(e.operation.as_str().into()),
            );
            obj.insert("apiVersion".into(), Value::String(e.api_version.clone()));
            if let Some(t) = &e.time {
                obj.insert("time".into(), Value::String(t.clone()));
            }
            obj.insert("fieldsType".into(), Value::String("FieldsV1".into()));
            obj.insert("fieldsV1".into(), e.set.to_fields_v1());
            if !e.subresource.is_empty() {
                obj.insert("subresource".into(), Value::String(e.subresource.clone()));
            }
            Value::Object(obj)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_round_trip_and_sort_like_upstream() {
        let list = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:02Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}},
            {"manager": "a", "operation": "Update", "apiVersion": "v1", "time": "2024-01-01T00:00:01Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:y": {}}}, "subresource": "status"},
            {"manager": "z", "operation": "Apply", "apiVersion": "v1", "time": "2024-01-01T00:00:09Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:z": {}}}},
        ]);
        let entries = decode(Some(&list)).expect("valid");
        let out = encode(&entries);
        let names: Vec<&str> = out.iter().filter_map(|e| e["manager"].as_str()).collect();
        assert_eq!(names, vec!["z", "a", "b"], "Apply first, then by time");
        assert_eq!(
            out.get(1).map(|e| &e["subresource"]),
            Some(&json!("status"))
        );
        assert_eq!(
            out.first().map(|e| &e["fieldsV1"]),
            Some(&json!({"f:data": {"f:z": {}}}))
        );
    }

    #[test]
    fn invalid_entries_are_errors() {
        for bad in [
            json!({}),
            json!([1]),
            json!([{"manager": "m", "operation": "Patch"}]),
            json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV2", "fieldsV1": {}}]),
            json!([{"manager": 3, "operation": "Apply"}]),
        ] {
            assert!(decode(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn managers_are_described_like_upstream() {
        let e = |op, sub: &str| Entry {
            manager: "kubectl".into(),
            operation: op,
            api_version: "apps/v1".into(),
            subresource: sub.into(),
            time: None,
            set: Set::new(),
        };
        assert_eq!(e(Operation::Apply, "").describe(), "\"kubectl\"");
        assert_eq!(
            e(Operation::Update, "").describe(),
            "\"kubectl\" using apps/v1"
        );
        assert_eq!(
            e(Operation::Update, "scale").describe(),
            "\"kubectl\" with subresource \"scale\" using apps/v1"
        );
        assert_eq!(
            e(Operation::Update, "").identifier(),
            r#"{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1"}"#
        );
        assert_eq!(
            e(Operation::Apply, "status").identifier(),
            r#"{"manager":"kubectl","operation":"Apply","subresource":"status"}"#
        );
    }
}
