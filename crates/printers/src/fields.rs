//! Lenient readers over untrusted object JSON, plus the small formatting
//! helpers upstream's printers share (ages, label sets, label selectors,
//! container lists). A missing or mistyped field reads as Go's zero value,
//! which is what upstream would have printed for it.

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};

use crate::duration::human_duration;

/// Follows `path` through nested objects.
pub(crate) fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.get(key))
        .filter(|v| !v.is_null())
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn opt_str<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(v, path).and_then(Value::as_str)
}

pub(crate) fn opt_i64(v: &Value, path: &[&str]) -> Option<i64> {
    get(v, path).and_then(Value::as_i64)
}

pub(crate) fn i64_at(v: &Value, path: &[&str]) -> i64 {
    opt_i64(v, path).unwrap_or(0)
}

pub(crate) fn opt_bool(v: &Value, path: &[&str]) -> Option<bool> {
    get(v, path).and_then(Value::as_bool)
}

pub(crate) fn bool_at(v: &Value, path: &[&str]) -> bool {
    opt_bool(v, path).unwrap_or(false)
}

pub(crate) fn arr_at<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    get(v, path).and_then(Value::as_object)
}

/// Number of entries in a map-valued field (`data`, `binaryData`).
pub(crate) fn len_at(v: &Value, path: &[&str]) -> i64 {
    let n = match get(v, path) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn name(obj: &Value) -> &str {
    str_at(obj, &["metadata", "name"])
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    get(obj, &["metadata", "deletionTimestamp"]).is_some()
}

/// Reads an RFC 3339 timestamp; Go's zero time counts as absent, as
/// `metav1.Time.IsZero` does.
pub(crate) fn time_at(v: &Value, path: &[&str]) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(str_at(v, path))
        .ok()?
        .with_timezone(&Utc);
    (t.year() > 1).then_some(t)
}

/// `translateTimestampSince`: elapsed time, or `<unknown>` without a time.
pub(crate) fn since(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        Some(t) => human_duration(now.signed_duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

/// The AGE cell.
pub(crate) fn age(obj: &Value, now: DateTime<Utc>) -> Value {
    Value::String(since(time_at(obj, &["metadata", "creationTimestamp"]), now))
}

pub(crate) fn s(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

pub(crate) fn int(n: i64) -> Value {
    Value::from(n)
}

/// `labels.FormatLabels`: sorted `k=v` pairs, or `<none>`.
pub(crate) fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs.sort_unstable();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Why a label selector could not be turned into a selector.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct InvalidSelector;

/// `LabelSelectorAsSelector(sel).String()`: requirements sorted by key, an
/// empty string for a missing or empty selector.
pub(crate) fn selector_string(sel: Option<&Value>) -> Result<String, InvalidSelector> {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = obj_at(sel, &["matchLabels"]) {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in arr_at(sel, &["matchExpressions"]) {
        let key = str_at(expr, &["key"]);
        let mut values: Vec<&str> = arr_at(expr, &["values"])
            .iter()
            .map(|v| v.as_str().unwrap_or(""))
            .collect();
        values.sort_unstable();
        let text = match str_at(expr, &["operator"]) {
            "In" | "NotIn" if values.is_empty() => return Err(InvalidSelector),
            "Exists" | "DoesNotExist" if !values.is_empty() => return Err(InvalidSelector),
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => return Err(InvalidSelector),
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join(","))
}

/// `metav1.FormatLabelSelector`: like [`selector_string`] but `<none>` when
/// empty and `<error>` when invalid.
pub(crate) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(text) if text.is_empty() => "<none>".to_string(),
        Ok(text) => text,
        Err(InvalidSelector) => "<error>".to_string(),
    }
}

/// `layoutContainerCells`: comma-joined container names and images.
pub(crate) fn container_cells(containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, &["name"])).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, &["image"])).collect();
    (s(names.join(",")), s(images.join(",")))
}

/// `listWithMoreString`: at most `max` entries, then `+ N more...`.
pub(crate) fn list_with_more(list: &[String], count: usize, max: usize) -> String {
    let ret = list.join(",");
    if count > max {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_format_like_upstream() {
        let cases = [
            (json!(null), "<none>"),
            (json!({}), "<none>"),
            (json!({"matchLabels": {"b": "2", "a": "1"}}), "a=1,b=2"),
            (
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["z", "a"]},
                    {"key": "env", "operator": "NotIn", "values": ["prod"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "zone", "operator": "Exists"}
                ]}),
                "app=web,!canary,env notin (prod),tier in (a,z),zone",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]}),
                "<error>",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "<error>",
            ),
        ];
        for (sel, want) in cases {
            assert_eq!(format_label_selector(Some(&sel)), want, "{sel}");
        }
    }

    #[test]
    fn labels_sorted_or_none() {
        assert_eq!(format_labels(None), "<none>");
        let m = json!({"z": "1", "a": "2"});
        assert_eq!(format_labels(m.as_object()), "a=2,z=1");
    }

    #[test]
    fn zero_time_is_absent() {
        let v = json!({"t": "0001-01-01T00:00:00Z", "u": "2024-01-01T00:00:00Z", "w": "junk"});
        assert_eq!(time_at(&v, &["t"]), None);
        assert!(time_at(&v, &["u"]).is_some());
        assert_eq!(time_at(&v, &["w"]), None);
    }
}
