//! Checks shared by many kinds: name formats reported as field errors, port numbers and names,
//! int-or-percent values, quantities, and upstream's semantic equality for update rules.

use crate::json::Obj;
use apimachinery::validation::{
    is_dns1123_label, is_dns1123_subdomain, is_qualified_name, FIELD_IMMUTABLE_ERROR_MSG,
    IS_NEGATIVE_ERROR_MSG,
};
use apimachinery::{FieldError, Path};
use serde_json::Value;

pub(crate) type Errs = Vec<FieldError>;

/// `must be between LO and HI, inclusive`
pub(crate) fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn msgs_to_invalid(errs: &mut Errs, path: &Path, value: &str, msgs: Vec<String>) {
    for m in msgs {
        errs.push(FieldError::invalid(path, value, m));
    }
}

pub(crate) fn dns_label(errs: &mut Errs, path: &Path, value: &str) {
    msgs_to_invalid(errs, path, value, is_dns1123_label(value));
}

pub(crate) fn dns_subdomain(errs: &mut Errs, path: &Path, value: &str) {
    msgs_to_invalid(errs, path, value, is_dns1123_subdomain(value));
}

pub(crate) fn qualified_name(errs: &mut Errs, path: &Path, value: &str) {
    msgs_to_invalid(errs, path, value, is_qualified_name(value));
}

pub(crate) fn nonnegative(errs: &mut Errs, path: &Path, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(path, v, IS_NEGATIVE_ERROR_MSG));
    }
}

/// `ValidatePositiveField`: must be greater than zero.
pub(crate) fn positive(errs: &mut Errs, path: &Path, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v <= 0) {
        errs.push(FieldError::invalid(path, v, "must be greater than zero"));
    }
}

/// Upstream's `IsValidPortNum`.
pub(crate) fn port_num_msgs(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream's `IsValidPortName` (an IANA service name).
pub(crate) fn port_name_msgs(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(apimachinery::validation::max_len_error(15));
    }
    if port.is_empty()
        || !port
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !port.bytes().any(|b| b.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

/// `ValidatePortNumOrName` for an int-or-string port.
pub(crate) fn port_num_or_name(errs: &mut Errs, path: &Path, port: Option<&Value>) {
    match port {
        Some(Value::String(s)) => msgs_to_invalid(errs, path, s, port_name_msgs(s)),
        Some(Value::Number(n)) => {
            let v = n.as_i64().unwrap_or(0);
            for m in port_num_msgs(v) {
                errs.push(FieldError::invalid(path, v, m));
            }
        }
        _ => {
            for m in port_num_msgs(0) {
                errs.push(FieldError::invalid(path, 0, m));
            }
        }
    }
}

/// The value of an int-or-percent, and whether it was a percent (`getIntOrPercentValue`).
pub(crate) fn int_or_percent(v: Option<&Value>) -> (i64, bool) {
    match v {
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(n) => (n.parse().unwrap_or(0), true),
            None => (s.parse().unwrap_or(0), false),
        },
        Some(Value::Number(n)) => (n.as_i64().unwrap_or(0), false),
        _ => (0, false),
    }
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(errs: &mut Errs, path: &Path, v: Option<&Value>) {
    match v {
        Some(Value::String(s)) => {
            let digits = s.strip_suffix('%').unwrap_or("");
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                errs.push(FieldError::invalid(
                    path,
                    s.as_str(),
                    apimachinery::validation::regex_error(
                        "a valid percent string must be a numeric string followed by an ending '%'",
                        "[0-9]+%",
                        &["1%", "93%"],
                    ),
                ));
            }
        }
        Some(Value::Number(n)) => nonnegative(errs, path, n.as_i64()),
        _ => {}
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(errs: &mut Errs, path: &Path, v: Option<&Value>) {
    let (n, pct) = int_or_percent(v);
    if pct && n > 100 {
        errs.push(FieldError::invalid(
            path,
            v.cloned().unwrap_or(Value::Null),
            "must not be greater than 100%",
        ));
    }
}

/// Removes what upstream's semantic equality cannot see: Go decodes absent, `null`, `""`, `0`,
/// `false`, `[]` and `{}` alike for plain fields, so two objects differing only in those are
/// equal. Depth is bounded by the JSON parser's limit (128).
pub(crate) fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Obj::new();
            for (k, v) in m {
                let n = normalized(v);
                if !crate::json::is_zero(Some(&n)) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

pub(crate) fn semantic_eq(a: &Value, b: &Value) -> bool {
    a == b || normalized(a) == normalized(b)
}

/// `ValidateImmutableField` with semantic equality.
pub(crate) fn immutable(errs: &mut Errs, path: &Path, new: Option<&Value>, old: Option<&Value>) {
    let null = Value::Null;
    let (n, o) = (new.unwrap_or(&null), old.unwrap_or(&null));
    if !semantic_eq(n, o) {
        errs.push(FieldError::invalid(
            path,
            n.clone(),
            FIELD_IMMUTABLE_ERROR_MSG,
        ));
    }
}

/// A `resource.Quantity` as a number, for sign and order checks; `None` when it does not parse.
pub(crate) fn quantity(v: Option<&Value>) -> Option<f64> {
    let s = match v? {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => return n.as_f64(),
        _ => return None,
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '+' | '-')))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e.get(1..)?.parse::<i32>().ok()?),
        _ => return None,
    };
    Some(base * mult)
}

/// The label selector as a selector, or `None` when it does not convert (then upstream reports
/// the conversion error separately or not at all).
pub(crate) fn selector_matches(selector: Option<&Value>, labels: Option<&Value>) -> Option<bool> {
    let null = Value::Null;
    let sel = apimachinery::LabelSelector::from_label_selector(selector.unwrap_or(&null)).ok()?;
    Some(sel.matches(labels.unwrap_or(&null)))
}

pub(crate) fn selector_is_empty(selector: Option<&Value>) -> Option<bool> {
    let null = Value::Null;
    let sel = apimachinery::LabelSelector::from_label_selector(selector.unwrap_or(&null)).ok()?;
    Some(sel.is_empty())
}

/// A `NotSupported` error.
pub(crate) fn not_supported(path: &Path, value: impl Into<Value>, valid: &[&str]) -> FieldError {
    FieldError::not_supported(path, value, valid)
}

/// An enum field: required when empty, else one of `valid` (listed in upstream's order).
pub(crate) fn enum_field(errs: &mut Errs, path: &Path, value: &str, valid: &[&str]) {
    if value.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if !valid.contains(&value) {
        errs.push(not_supported(path, value, valid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_names_follow_iana_rules() {
        assert!(port_name_msgs("http").is_empty());
        assert_eq!(
            port_name_msgs("HTTP"),
            vec![
                "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "must contain at least one letter (a-z)"
            ]
        );
        assert_eq!(
            port_name_msgs("a--b"),
            vec!["must not contain consecutive hyphens"]
        );
        assert_eq!(
            port_name_msgs("1234"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert_eq!(
            port_name_msgs("abcdefghijklmnop"),
            vec!["must be no more than 15 characters"]
        );
    }

    #[test]
    fn quantities_parse() {
        let cases = [
            (json!("1Gi"), Some(1073741824.0)),
            (json!("500m"), Some(0.5)),
            (json!("0"), Some(0.0)),
            (json!("1e3"), Some(1000.0)),
            (json!("x"), None),
            (json!(2), Some(2.0)),
        ];
        for (q, want) in cases {
            assert_eq!(quantity(Some(&q)), want, "{q}");
        }
    }

    #[test]
    fn semantic_equality_ignores_zero_values() {
        assert!(semantic_eq(
            &json!({"a": {"b": [], "c": ""}, "d": 1}),
            &json!({"d": 1, "a": null})
        ));
        assert!(!semantic_eq(&json!({"d": 1}), &json!({"d": 2})));
    }
}
