//! Server-side `meta.k8s.io/v1` Table answers for `kubectl get`: columns and cells come from the
//! `printers` crate; each row carries the object's metadata (or the whole object, or nothing) as
//! `?includeObject=` asks.

use serde_json::{json, Map, Value};

use crate::negotiation::IncludeObject;
use crate::resources::Resource;

pub fn table(
    resource: &Resource,
    items: &[Value],
    revision: u64,
    continue_token: Option<&str>,
    include_object: IncludeObject,
    with_columns: bool,
) -> Value {
    let now = chrono::Utc::now();
    let custom = printers::columns(resource.group, resource.plural);
    let columns = custom.unwrap_or_else(printers::default_columns);
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let cells = if custom.is_some() {
                printers::cells(resource.group, resource.plural, obj, now)
            } else {
                printers::default_cells(obj)
            };
            let mut row = json!({"cells": cells});
            match include_object {
                IncludeObject::None => {}
                IncludeObject::Object => row["object"] = obj.clone(),
                IncludeObject::Metadata | IncludeObject::FromQuery => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj.get("metadata").cloned().unwrap_or_else(|| Value::Object(Map::new())),
                    })
                }
            }
            row
        })
        .collect();
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if let Some(token) = continue_token {
        metadata["continue"] = Value::String(token.into());
    }
    let column_definitions = if with_columns {
        printers::column_definitions_json(columns)
    } else {
        json!([])
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}
