//! The subset of `metav1.LabelSelector` that aggregation rules use: `matchLabels` and
//! `matchExpressions` with upstream's operators, evaluated against an object's labels.

use serde_json::{Map, Value};

/// Why a selector cannot be evaluated; upstream's controller skips such a role with an error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectorError {
    #[error("{0:?} is not a valid label selector operator")]
    Operator(String),
    #[error("values: must be specified when `operator` is 'In' or 'NotIn'")]
    MissingValues,
    #[error("values: may not be specified when `operator` is 'Exists' or 'DoesNotExist'")]
    UnexpectedValues,
    #[error("label selector is not an object")]
    NotAnObject,
}

fn label<'a>(labels: Option<&'a Map<String, Value>>, key: &str) -> Option<&'a str> {
    labels.and_then(|l| l.get(key)).and_then(Value::as_str)
}

/// Whether `selector` selects an object with `labels`. An empty selector selects everything, as
/// upstream's `LabelSelectorAsSelector` does.
pub fn matches(
    selector: &Value,
    labels: Option<&Map<String, Value>>,
) -> Result<bool, SelectorError> {
    let sel = selector.as_object().ok_or(SelectorError::NotAnObject)?;
    let mut ok = true;
    if let Some(want) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in want {
            if label(labels, k) != v.as_str() {
                ok = false;
            }
        }
    }
    let exprs = sel.get("matchExpressions").and_then(Value::as_array);
    for expr in exprs.into_iter().flatten() {
        let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
        let op = expr
            .get("operator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let values: Vec<&str> = expr
            .get("values")
            .and_then(Value::as_array)
            .map(|vs| vs.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let have = label(labels, key);
        let hit = match op {
            "In" | "NotIn" if values.is_empty() => return Err(SelectorError::MissingValues),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(SelectorError::UnexpectedValues)
            }
            "In" => have.is_some_and(|h| values.contains(&h)),
            "NotIn" => !have.is_some_and(|h| values.contains(&h)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            other => return Err(SelectorError::Operator(other.to_owned())),
        };
        ok &= hit;
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selector_table() {
        let labels = json!({"a": "1", "b": "2"});
        let labels = labels.as_object();
        let cases = [
            (json!({}), Ok(true)),
            (json!({"matchLabels": {"a": "1"}}), Ok(true)),
            (json!({"matchLabels": {"a": "2"}}), Ok(false)),
            (json!({"matchLabels": {"c": "1"}}), Ok(false)),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["1", "3"]}]}),
                Ok(true),
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["1"]}]}),
                Ok(false),
            ),
            (
                json!({"matchExpressions": [{"key": "z", "operator": "NotIn", "values": ["1"]}]}),
                Ok(true),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "Exists"}]}),
                Ok(true),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}]}),
                Ok(false),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "Gt", "values": ["1"]}]}),
                Err(SelectorError::Operator("Gt".into())),
            ),
            (
                json!({"matchExpressions": [{"key": "b", "operator": "In"}]}),
                Err(SelectorError::MissingValues),
            ),
            (json!("x"), Err(SelectorError::NotAnObject)),
        ];
        for (sel, want) in cases {
            assert_eq!(matches(&sel, labels), want, "{sel}");
        }
    }
}
