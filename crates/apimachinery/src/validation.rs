//! Name and object-metadata validation, word for word as upstream's
//! `k8s.io/apimachinery/pkg/util/validation` (format checks returning messages),
//! `pkg/api/validation` (`ValidateObjectMeta`, `ValidateObjectMetaUpdate`) and
//! `pkg/apis/meta/v1/validation` (labels, label selectors, managed fields).
//!
//! Metadata is read from `serde_json::Value`. A field of the wrong JSON type (upstream would have
//! failed to decode the body) is reported as a `TypeInvalid` field error rather than ignored.

use crate::field::{FieldError, Path};
use crate::gofmt;
use serde_json::{Map, Value};

/// A name check: `(name, prefix)` → messages; `prefix` is true when the name is a
/// `generateName` prefix that will have characters appended. Upstream's `ValidateNameFunc`.
pub type NameValidator = fn(&str, bool) -> Vec<String>;

pub const DNS1123_LABEL_MAX_LENGTH: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;
pub const DNS1035_LABEL_MAX_LENGTH: usize = 63;
pub const LABEL_VALUE_MAX_LENGTH: usize = 63;
const QUALIFIED_NAME_MAX_LENGTH: usize = 63;
/// Upper bound on the summed length of annotation keys and values.
pub const TOTAL_ANNOTATION_SIZE_LIMIT_BYTES: usize = 256 * 1024;
pub const FIELD_IMMUTABLE_ERROR_MSG: &str = "field is immutable";
pub const IS_NEGATIVE_ERROR_MSG: &str = "must be greater than or equal to 0";
const FIELD_MANAGER_MAX_LENGTH: usize = 128;
const MAX_SUBRESOURCE_NAME_LENGTH: usize = 256;

pub const FINALIZER_ORPHAN_DEPENDENTS: &str = "orphan";
pub const FINALIZER_DELETE_DEPENDENTS: &str = "foregroundDeletion";

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_ERR_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_ERR_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// `must be no more than N characters`
pub fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} characters")
}

/// `<msg> (e.g. 'a' or 'b', regex used for validation is '<fmt>')`
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1035_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && b[0].is_ascii_lowercase() && matches_dns1123_label(s)
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS (RFC 1123) label: at most 63 characters of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LENGTH));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            // A valid subdomain but not a label: the length was checked, so it must be dots.
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_ERR_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// A DNS (RFC 1123) subdomain: at most 253 characters, dot-separated RFC 1123 labels.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LENGTH {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LENGTH));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// A DNS (RFC 1035) label: like an RFC 1123 label, but starting with a letter.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LENGTH {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LENGTH));
    }
    if !matches_dns1035_label(value) {
        errs.push(regex_error(
            DNS1035_LABEL_ERR_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// A "qualified name" (label keys, annotation keys, finalizers): an optional DNS subdomain
/// prefix and `/`, then a name of at most 63 characters.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {}", empty_error()));
            } else {
                for msg in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {msg}"));
                }
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LENGTH {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LENGTH)
        ));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// A label value: empty, or at most 63 characters shaped like a qualified name's name part.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LENGTH {
        errs.push(max_len_error(LABEL_VALUE_MAX_LENGTH));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// An IP address as upstream's `IsValidIP` accepts it (`netutils.ParseIPSloppy`: IPv4 dotted
/// decimal, leading zeros allowed; any IPv6 form, with no zone).
pub fn is_valid_ip(value: &str) -> Vec<String> {
    if parse_ipv4_sloppy(value) || value.parse::<std::net::Ipv6Addr>().is_ok() {
        Vec::new()
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()]
    }
}

/// Go's pre-1.17 `net.ParseIP` for IPv4: four decimal fields up to 255, leading zeros allowed.
fn parse_ipv4_sloppy(s: &str) -> bool {
    let fields: Vec<&str> = s.split('.').collect();
    fields.len() == 4
        && fields.iter().all(|f| {
            !f.is_empty()
                && f.bytes().all(|b| b.is_ascii_digit())
                && f.trim_start_matches('0').len() <= 3
                && f.parse::<u32>().map(|n| n <= 255).unwrap_or(false)
        })
}

/// `foo-` → `fo` + `a`: a `generateName` prefix may end in a dash, which the random suffix
/// makes valid, so upstream swaps the tail for a letter before checking.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        // Upstream drops the last two bytes; dropping the dash and one character keeps UTF-8.
        let mut s: String = name[..name.len() - 1].to_string();
        s.pop();
        s.push('a');
        s
    } else {
        name.to_string()
    }
}

/// Names that must be DNS subdomains (most resources).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Names that must be DNS labels (namespaces, services' ports, ...).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Names that must be RFC 1035 labels (services).
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// Namespace names are DNS labels.
pub fn validate_namespace_name(name: &str, prefix: bool) -> Vec<String> {
    name_is_dns_label(name, prefix)
}

/// `value` must not be negative.
pub fn validate_nonnegative_field(value: i64, path: &str) -> Vec<FieldError> {
    if value < 0 {
        vec![FieldError::invalid(path, value, IS_NEGATIVE_ERROR_MSG)]
    } else {
        Vec::new()
    }
}

/// Every key is a qualified name and every value a valid label value.
pub fn validate_labels(labels: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        errs.extend(validate_label_name(k, path));
        match v.as_str() {
            Some(v) => {
                for msg in is_valid_label_value(v) {
                    errs.push(FieldError::invalid(path, v, msg));
                }
            }
            None => errs.push(type_error(&Path::from(path).key(k), v, "string")),
        }
    }
    errs
}

pub fn validate_label_name(name: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(name)
        .into_iter()
        .map(|msg| FieldError::invalid(path, name, msg))
        .collect()
}

/// Annotation keys are qualified names (case-insensitively); keys and values together may not
/// exceed 256 KiB.
pub fn validate_annotations(annotations: &Map<String, Value>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        match v.as_str() {
            Some(s) => total += k.len() + s.len(),
            None => errs.push(type_error(&Path::from(path).key(k), v, "string")),
        }
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT_BYTES {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT_BYTES as i64,
        ));
    }
    errs
}

/// Finalizer names are qualified names; `orphan` and `foregroundDeletion` exclude each other.
pub fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f.as_str(), msg));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f == name);
    if has(FINALIZER_ORPHAN_DEPENDENTS) && has(FINALIZER_DELETE_DEPENDENTS) {
        errs.push(FieldError::invalid(
            path,
            Value::from(finalizers.to_vec()),
            format!(
                "finalizer {FINALIZER_ORPHAN_DEPENDENTS} and {FINALIZER_DELETE_DEPENDENTS} cannot be both set"
            ),
        ));
    }
    errs
}

/// One owner reference as upstream marshals the `metav1.OwnerReference` struct: the four
/// required fields always, `controller` and `blockOwnerDeletion` when set.
fn owner_reference_value(r: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for k in ["apiVersion", "kind", "name", "uid"] {
        out.insert(
            k.to_string(),
            Value::from(r.get(k).and_then(Value::as_str).unwrap_or("")),
        );
    }
    for k in ["controller", "blockOwnerDeletion"] {
        if let Some(b) = r.get(k).and_then(Value::as_bool) {
            out.insert(k.to_string(), Value::from(b));
        }
    }
    Value::Object(out)
}

/// Each reference names apiVersion (with a version), kind, name and uid; events cannot own;
/// at most one reference is the controller.
pub fn validate_owner_references(refs: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let p = Path::from(path);
    let mut first_controller: Option<String> = None;
    for (i, r) in refs.iter().enumerate() {
        let Some(r) = r.as_object() else {
            errs.push(type_error(&p.index(i), r, "object"));
            continue;
        };
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let (api_version, kind, name, uid) =
            (text("apiVersion"), text("kind"), text("name"), text("uid"));
        let (group, version) = parse_group_version(api_version);
        if version.is_empty() {
            errs.push(FieldError::invalid(
                p.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(
                p.child("kind"),
                kind,
                "must not be empty",
            ));
        }
        if name.is_empty() {
            errs.push(FieldError::invalid(
                p.child("name"),
                name,
                "must not be empty",
            ));
        }
        if uid.is_empty() {
            errs.push(FieldError::invalid(
                p.child("uid"),
                uid,
                "must not be empty",
            ));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                owner_reference_value(r),
                format!("{group}/{version}, Kind={kind} is disallowed from being an owner"),
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{kind}/{name}");
            match &first_controller {
                Some(first) => {
                    let all: Vec<Value> = refs
                        .iter()
                        .map(|r| {
                            r.as_object()
                                .map(owner_reference_value)
                                .unwrap_or(Value::Null)
                        })
                        .collect();
                    errs.push(FieldError::invalid(
                        path,
                        Value::Array(all),
                        format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"),
                    ));
                }
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// `schema.ParseGroupVersion`, with an unparsable value giving an empty group and version.
fn parse_group_version(gv: &str) -> (&str, &str) {
    if gv.is_empty() || gv == "/" {
        return ("", "");
    }
    match gv.matches('/').count() {
        0 => ("", gv),
        1 => gv.split_once('/').unwrap_or(("", "")),
        _ => ("", ""),
    }
}

/// `managedFields`: operation `Apply` or `Update`, fieldsType `FieldsV1`, a printable manager of
/// at most 128 bytes, a subresource of at most 256.
pub fn validate_managed_fields(entries: &[Value], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let p = Path::from(path).index(i);
        let Some(e) = e.as_object() else {
            errs.push(type_error(&p, e, "object"));
            continue;
        };
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let operation = text("operation");
        if operation != "Apply" && operation != "Update" {
            errs.push(FieldError::invalid(
                p.child("operation"),
                operation,
                "must be `Apply` or `Update`",
            ));
        }
        let fields_type = text("fieldsType");
        if !fields_type.is_empty() && fields_type != "FieldsV1" {
            errs.push(FieldError::invalid(
                p.child("fieldsType"),
                fields_type,
                "must be `FieldsV1`",
            ));
        }
        errs.extend(validate_field_manager(
            text("manager"),
            p.child("manager").as_str(),
        ));
        if text("subresource").len() > MAX_SUBRESOURCE_NAME_LENGTH {
            errs.push(FieldError::too_long(
                p.child("subresource"),
                MAX_SUBRESOURCE_NAME_LENGTH as i64,
            ));
        }
    }
    errs
}

/// A field manager name: at most 128 bytes, printable characters only.
pub fn validate_field_manager(manager: &str, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(FieldError::too_long(path, FIELD_MANAGER_MAX_LENGTH as i64));
    }
    for (i, c) in manager.char_indices() {
        if !gofmt::is_print(c) {
            errs.push(FieldError::invalid(
                path,
                manager,
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
    errs
}

/// A `metav1.LabelSelector`: valid `matchLabels`, and `matchExpressions` whose operators take
/// the values they need.
pub fn validate_label_selector(selector: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(sel) = selector.as_object() else {
        if !selector.is_null() {
            errs.push(type_error(&Path::from(path), selector, "object"));
        }
        return errs;
    };
    let p = Path::from(path);
    match sel.get("matchLabels") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => errs.extend(validate_labels(m, p.child("matchLabels").as_str())),
        Some(other) => errs.push(type_error(&p.child("matchLabels"), other, "object")),
    }
    let exprs = match sel.get("matchExpressions") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(other) => {
            errs.push(type_error(&p.child("matchExpressions"), other, "array"));
            &[][..]
        }
    };
    for (i, expr) in exprs.iter().enumerate() {
        let ep = p.child("matchExpressions").index(i);
        let Some(expr) = expr.as_object() else {
            errs.push(type_error(&ep, expr, "object"));
            continue;
        };
        let operator = expr.get("operator").and_then(Value::as_str).unwrap_or("");
        let n_values = expr
            .get("values")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        match operator {
            "In" | "NotIn" => {
                if n_values == 0 {
                    errs.push(FieldError::required(
                        ep.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if n_values > 0 {
                    errs.push(FieldError::forbidden(
                        ep.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                ep.child("operator"),
                operator,
                "not a valid selector operator",
            )),
        }
        let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
        errs.extend(validate_label_name(key, ep.child("key").as_str()));
    }
    errs
}

fn type_error(path: &Path, value: &Value, want: &str) -> FieldError {
    let got = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    FieldError::type_invalid(path, got, format!("must be of type {want}"))
}

/// Reads typed metadata fields, recording a type error for any that has the wrong JSON type.
struct MetaReader<'a> {
    meta: Option<&'a Map<String, Value>>,
    path: Path,
    errs: Vec<FieldError>,
}

impl<'a> MetaReader<'a> {
    fn new(meta: &'a Value, path: &str) -> MetaReader<'a> {
        let mut r = MetaReader {
            meta: meta.as_object(),
            path: Path::from(path),
            errs: Vec::new(),
        };
        if r.meta.is_none() && !meta.is_null() {
            r.errs.push(type_error(&r.path, meta, "object"));
        }
        r
    }

    fn get(&mut self, key: &str, want: &str, ok: fn(&Value) -> bool) -> Option<&'a Value> {
        match self.meta.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => None,
            Some(v) if ok(v) => Some(v),
            Some(v) => {
                self.errs.push(type_error(&self.path.child(key), v, want));
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> &'a str {
        self.get(key, "string", Value::is_string)
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn int(&mut self, key: &str) -> Option<i64> {
        self.get(key, "integer", |v| v.is_i64())
            .and_then(Value::as_i64)
    }

    fn map(&mut self, key: &str) -> Option<&'a Map<String, Value>> {
        self.get(key, "object", Value::is_object)
            .and_then(Value::as_object)
    }

    fn array(&mut self, key: &str) -> &'a [Value] {
        self.get(key, "array", Value::is_array)
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        let items = self.array(key);
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            match v.as_str() {
                Some(s) => out.push(s.to_string()),
                None => self
                    .errs
                    .push(type_error(&self.path.child(key).index(i), v, "string")),
            }
        }
        out
    }

    /// The raw value, `null` when absent: for comparisons.
    fn raw(&self, key: &str) -> Value {
        self.meta
            .and_then(|m| m.get(key))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// Validates an object's metadata on create (upstream's `ValidateObjectMeta`). Name generation
/// must already have happened: a missing `name` is an error even when `generateName` is set.
///
/// `meta` is the `metadata` object (or `null` when absent); `path` is usually `metadata`.
pub fn validate_object_meta(
    meta: &Value,
    namespaced: bool,
    name_check: NameValidator,
    path: &str,
) -> Vec<FieldError> {
    let mut r = MetaReader::new(meta, path);
    let p = Path::from(path);

    let generate_name = r.string("generateName");
    if !generate_name.is_empty() {
        for msg in name_check(generate_name, true) {
            r.errs.push(FieldError::invalid(
                p.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = r.string("name");
    if name.is_empty() {
        r.errs.push(FieldError::required(
            p.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in name_check(name, false) {
            r.errs.push(FieldError::invalid(p.child("name"), name, msg));
        }
    }

    let namespace = r.string("namespace");
    if namespaced {
        if namespace.is_empty() {
            r.errs.push(FieldError::required(p.child("namespace"), ""));
        } else {
            for msg in validate_namespace_name(namespace, false) {
                r.errs
                    .push(FieldError::invalid(p.child("namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        r.errs.push(FieldError::forbidden(
            p.child("namespace"),
            "not allowed on this type",
        ));
    }

    if let Some(generation) = r.int("generation") {
        let errs = validate_nonnegative_field(generation, p.child("generation").as_str());
        r.errs.extend(errs);
    }
    validate_common(&mut r, &p, true);
    r.errs
}

/// Labels, annotations, owner references, (on create) finalizers and managed fields.
fn validate_common(r: &mut MetaReader<'_>, p: &Path, finalizers: bool) {
    if let Some(labels) = r.map("labels") {
        r.errs
            .extend(validate_labels(labels, p.child("labels").as_str()));
    }
    if let Some(annotations) = r.map("annotations") {
        r.errs.extend(validate_annotations(
            annotations,
            p.child("annotations").as_str(),
        ));
    }
    let refs = r.array("ownerReferences");
    r.errs.extend(validate_owner_references(
        refs,
        p.child("ownerReferences").as_str(),
    ));
    if finalizers {
        let names = r.strings("finalizers");
        r.errs
            .extend(validate_finalizers(&names, p.child("finalizers").as_str()));
    }
    let managed = r.array("managedFields");
    r.errs.extend(validate_managed_fields(
        managed,
        p.child("managedFields").as_str(),
    ));
}

/// `new` must equal `old`, else `field is immutable` (reported with the new value).
pub fn validate_immutable_field(new: &Value, old: &Value, path: &str) -> Vec<FieldError> {
    if new == old {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            new.clone(),
            FIELD_IMMUTABLE_ERROR_MSG,
        )]
    }
}

/// Validates metadata on update (upstream's `ValidateObjectMetaUpdate`): a resourceVersion is
/// required, generation may not go down, name, namespace, uid, creationTimestamp,
/// deletionTimestamp and deletionGracePeriodSeconds are immutable, no finalizer may be added to
/// an object being deleted, and labels, annotations, owner references and managed fields are
/// checked as on create.
///
/// As upstream, the caller copies server-owned fields (uid, creationTimestamp, deletion fields)
/// from the old object before calling this when the client may leave them out.
pub fn validate_object_meta_update(
    new_meta: &Value,
    old_meta: &Value,
    path: &str,
) -> Vec<FieldError> {
    let mut new = MetaReader::new(new_meta, path);
    let mut old = MetaReader::new(old_meta, path);
    let p = Path::from(path);

    if old
        .get("deletionTimestamp", "string", Value::is_string)
        .is_some()
    {
        let old_finalizers = old.strings("finalizers");
        let mut extra: Vec<String> = new
            .strings("finalizers")
            .into_iter()
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            new.errs.push(FieldError::forbidden(
                p.child("finalizers"),
                format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    gofmt::string_slice_sharp_v(&extra)
                ),
            ));
        }
    }

    let resource_version = new.string("resourceVersion");
    if resource_version.is_empty() {
        new.errs.push(FieldError::invalid(
            p.child("resourceVersion"),
            resource_version,
            "must be specified for an update",
        ));
    }

    let new_generation = new.int("generation").unwrap_or(0);
    if new_generation < old.int("generation").unwrap_or(0) {
        new.errs.push(FieldError::invalid(
            p.child("generation"),
            new_generation,
            "must not be decremented",
        ));
    }

    // Strings compare with "absent" meaning "": upstream compares Go fields, not JSON.
    for key in ["name", "namespace", "uid"] {
        let (n, o) = (Value::from(new.string(key)), Value::from(old.string(key)));
        new.errs
            .extend(validate_immutable_field(&n, &o, p.child(key).as_str()));
    }
    for key in [
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        let (n, o) = (new.raw(key), old.raw(key));
        new.errs
            .extend(validate_immutable_field(&n, &o, p.child(key).as_str()));
    }

    validate_common(&mut new, &p, false);
    new.errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    const NAME_PART_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

    #[test]
    fn regex_error_spells_examples_like_upstream() {
        // Upstream writes "'a', " then " or " between examples: the double space is real.
        assert_eq!(
            regex_error("m", "f", &["a", "b"]),
            "m (e.g. 'a',  or 'b', regex used for validation is 'f')"
        );
        assert_eq!(
            regex_error("m", "f", &[]),
            "m (regex used for validation is 'f')"
        );
        assert!(LABEL_MSG.contains("'my-name',  or"));
    }

    #[test]
    fn dns1123_label() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("a", vec![]),
            ("abc-123", vec![]),
            ("0", vec![]),
            (&long[..63], vec![]),
            ("", vec![LABEL_MSG.into()]),
            ("-a", vec![LABEL_MSG.into()]),
            ("a-", vec![LABEL_MSG.into()]),
            ("A", vec![LABEL_MSG.into()]),
            ("a_b", vec![LABEL_MSG.into()]),
            ("a.b", vec!["must not contain dots".into()]),
            (&long, vec![max_len_error(63)]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_label(input), want, "{input:?}");
        }
    }

    #[test]
    fn dns1123_subdomain() {
        let long = format!("{}.{}", "a".repeat(63), "b".repeat(190));
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("example.com", vec![]),
            ("a", vec![]),
            ("a-b.c-d.e", vec![]),
            ("", vec![SUBDOMAIN_MSG.into()]),
            ("Foo", vec![SUBDOMAIN_MSG.into()]),
            ("a..b", vec![SUBDOMAIN_MSG.into()]),
            (".a", vec![SUBDOMAIN_MSG.into()]),
            ("a.", vec![SUBDOMAIN_MSG.into()]),
            ("a_b", vec![SUBDOMAIN_MSG.into()]),
            (&long, vec![max_len_error(253)]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1123_subdomain(input), want, "{input:?}");
        }
    }

    #[test]
    fn dns1035_label() {
        let long = "a".repeat(64);
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("a", vec![]),
            ("my-svc1", vec![]),
            ("1abc", vec![DNS1035_MSG.into()]),
            ("abc-", vec![DNS1035_MSG.into()]),
            ("", vec![DNS1035_MSG.into()]),
            (&long, vec![max_len_error(63)]),
        ];
        for (input, want) in cases {
            assert_eq!(is_dns1035_label(input), want, "{input:?}");
        }
    }

    #[test]
    fn qualified_name() {
        let too_many = format!(
            "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        );
        let cases: Vec<(String, Vec<String>)> = vec![
            ("app".into(), vec![]),
            ("App_Name.v1-2".into(), vec![]),
            ("example.com/app".into(), vec![]),
            ("k8s.io/My.Name".into(), vec![]),
            (
                "".into(),
                vec!["name part must be non-empty".into(), NAME_PART_MSG.into()],
            ),
            ("-app".into(), vec![NAME_PART_MSG.into()]),
            ("app!".into(), vec![NAME_PART_MSG.into()]),
            ("/app".into(), vec!["prefix part must be non-empty".into()]),
            (
                "Example.com/app".into(),
                vec![format!("prefix part {SUBDOMAIN_MSG}")],
            ),
            (
                "example.com/".into(),
                vec!["name part must be non-empty".into(), NAME_PART_MSG.into()],
            ),
            ("a/b/c".into(), vec![too_many]),
            (
                "a".repeat(64),
                vec!["name part must be no more than 63 characters".into()],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_qualified_name(&input), want, "{input:?}");
        }
    }

    #[test]
    fn label_value() {
        let cases: Vec<(String, Vec<String>)> = vec![
            ("".into(), vec![]),
            ("v1.2_3-x".into(), vec![]),
            ("a".repeat(63), vec![]),
            ("-x".into(), vec![LABEL_VALUE_MSG.into()]),
            ("x y".into(), vec![LABEL_VALUE_MSG.into()]),
            ("a".repeat(64), vec![max_len_error(63)]),
            (
                format!("{}-", "a".repeat(64)),
                vec![max_len_error(63), LABEL_VALUE_MSG.into()],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(is_valid_label_value(&input), want, "{input:?}");
        }
    }

    #[test]
    fn ip_addresses() {
        let bad = vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()];
        for ok in [
            "10.9.8.7",
            "0.0.0.0",
            "010.001.002.003",
            "::1",
            "2001:db8::ffff",
            "::ffff:1.2.3.4",
        ] {
            assert!(is_valid_ip(ok).is_empty(), "{ok}");
        }
        for not in [
            "",
            "1.2.3",
            "1.2.3.256",
            "1.2.3.4.5",
            "a.b.c.d",
            "fe80::1%eth0",
            "1.2.3.4/24",
            " 1.2.3.4",
        ] {
            assert_eq!(is_valid_ip(not), bad, "{not}");
        }
    }

    #[test]
    fn generate_name_prefixes_may_end_in_a_dash() {
        assert!(name_is_dns_subdomain("web-", true).is_empty());
        assert!(!name_is_dns_subdomain("web-", false).is_empty());
        assert!(name_is_dns_label("ns-", true).is_empty());
        assert!(name_is_dns1035_label("svc-", true).is_empty());
        assert_eq!(
            name_is_dns_subdomain("-", true),
            vec![SUBDOMAIN_MSG.to_string()]
        );
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn object_meta_on_create() {
        let v = |m: Value, ns: bool| {
            messages(&validate_object_meta(
                &m,
                ns,
                name_is_dns_subdomain,
                "metadata",
            ))
        };
        let cases: Vec<(Value, bool, Vec<String>)> = vec![
            (json!({"name": "web", "namespace": "default"}), true, vec![]),
            (json!({"name": "node-1"}), false, vec![]),
            (
                json!({"namespace": "default"}),
                true,
                vec!["metadata.name: Required value: name or generateName is required".into()],
            ),
            (
                Value::Null,
                true,
                vec![
                    "metadata.name: Required value: name or generateName is required".into(),
                    "metadata.namespace: Required value".into(),
                ],
            ),
            (
                json!({"name": "Foo", "namespace": "default"}),
                true,
                vec![format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")],
            ),
            (
                json!({"name": "web-abcde", "generateName": "Web-", "namespace": "default"}),
                true,
                vec![format!("metadata.generateName: Invalid value: \"Web-\": {SUBDOMAIN_MSG}")],
            ),
            (
                json!({"name": "web-abcde", "generateName": "web-", "namespace": "default"}),
                true,
                vec![],
            ),
            (
                json!({"name": "n", "namespace": "default"}),
                false,
                vec!["metadata.namespace: Forbidden: not allowed on this type".into()],
            ),
            (
                json!({"name": "n", "namespace": "Bad.NS"}),
                true,
                vec![format!("metadata.namespace: Invalid value: \"Bad.NS\": {LABEL_MSG}")],
            ),
            (
                json!({"name": "n", "namespace": "a.b"}),
                true,
                vec!["metadata.namespace: Invalid value: \"a.b\": must not contain dots".into()],
            ),
            (
                json!({"name": "n", "generation": -1}),
                false,
                vec!["metadata.generation: Invalid value: -1: must be greater than or equal to 0".into()],
            ),
            (
                json!({"name": "n", "labels": {"-bad": "ok", "good": "-bad", "fine": ""}}),
                false,
                vec![
                    format!("metadata.labels: Invalid value: \"-bad\": {NAME_PART_MSG}"),
                    format!("metadata.labels: Invalid value: \"-bad\": {LABEL_VALUE_MSG}"),
                ],
            ),
            (
                json!({"name": "n", "annotations": {"Example.com/Key": "v", "bad key": "v"}}),
                false,
                vec![format!("metadata.annotations: Invalid value: \"bad key\": {NAME_PART_MSG}")],
            ),
            (
                json!({"name": "n", "finalizers": ["kubernetes.io/pvc-protection", "bad/fin/x"]}),
                false,
                vec![format!(
                    "metadata.finalizers: Invalid value: \"bad/fin/x\": a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    regex_error(QUALIFIED_NAME_ERR_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
                )],
            ),
            (
                json!({"name": "n", "finalizers": ["orphan", "foregroundDeletion"]}),
                false,
                vec!["metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set".into()],
            ),
            (
                json!({"name": "n", "labels": {"a": 1}, "finalizers": "x", "namespace": 3}),
                true,
                vec![
                    "metadata.namespace: Invalid value: \"number\": must be of type string".into(),
                    "metadata.namespace: Required value".into(),
                    "metadata.labels[a]: Invalid value: \"number\": must be of type string".into(),
                    "metadata.finalizers: Invalid value: \"string\": must be of type array".into(),
                ],
            ),
            (
                json!("nope"),
                false,
                vec![
                    "metadata: Invalid value: \"string\": must be of type object".into(),
                    "metadata.name: Required value: name or generateName is required".into(),
                ],
            ),
        ];
        for (meta, namespaced, want) in cases {
            assert_eq!(v(meta.clone(), namespaced), want, "{meta}");
        }
    }

    #[test]
    fn annotation_size_limit() {
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES - 1);
        let ok = json!({"name": "n", "annotations": {"k": big}});
        assert!(validate_object_meta(&ok, false, name_is_dns_subdomain, "metadata").is_empty());
        let big = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT_BYTES);
        let over = json!({"name": "n", "annotations": {"k": big}});
        assert_eq!(
            messages(&validate_object_meta(
                &over,
                false,
                name_is_dns_subdomain,
                "metadata"
            )),
            vec!["metadata.annotations: Too long: may not be more than 262144 bytes"]
        );
    }

    #[test]
    fn owner_references() {
        let refs = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "1", "controller": true},
            {"apiVersion": "apps/", "kind": "", "name": "", "uid": ""},
            {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "2"},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "ss", "uid": "3", "controller": true, "blockOwnerDeletion": true},
        ]);
        let got = messages(&validate_owner_references(
            refs.as_array().unwrap(),
            "metadata.ownerReferences",
        ));
        assert_eq!(
            got,
            vec![
                "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty".to_string(),
                "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty".into(),
                "metadata.ownerReferences.name: Invalid value: \"\": must not be empty".into(),
                "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty".into(),
                "metadata.ownerReferences: Invalid value: {\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"2\"}: /v1, Kind=Event is disallowed from being an owner".into(),
                "metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"rs\",\"uid\":\"1\",\"controller\":true},{\"apiVersion\":\"apps/\",\"kind\":\"\",\"name\":\"\",\"uid\":\"\"},{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"2\"},{\"apiVersion\":\"apps/v1\",\"kind\":\"StatefulSet\",\"name\":\"ss\",\"uid\":\"3\",\"controller\":true,\"blockOwnerDeletion\":true}]: Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/rs and StatefulSet/ss".into(),
            ]
        );
        assert_eq!(
            messages(&validate_owner_references(
                json!([{"apiVersion": "a/b/c", "kind": "K", "name": "n", "uid": "u"}])
                    .as_array()
                    .unwrap(),
                "o"
            )),
            vec!["o.apiVersion: Invalid value: \"a/b/c\": version must not be empty"]
        );
    }

    #[test]
    fn managed_fields() {
        let entries = json!([
            {"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1"},
            {"manager": "bad\u{7}", "operation": "Patch", "fieldsType": "FieldsV2", "subresource": "s".repeat(257)},
        ]);
        assert_eq!(
            messages(&validate_managed_fields(entries.as_array().unwrap(), "metadata.managedFields")),
            vec![
                "metadata.managedFields[1].operation: Invalid value: \"Patch\": must be `Apply` or `Update`",
                "metadata.managedFields[1].fieldsType: Invalid value: \"FieldsV2\": must be `FieldsV1`",
                "metadata.managedFields[1].manager: Invalid value: \"bad\\a\": invalid character U+0007 (at position 3)",
                "metadata.managedFields[1].subresource: Too long: may not be more than 256 bytes",
            ]
        );
        assert_eq!(
            messages(&validate_field_manager(&"m".repeat(129), "fieldManager")),
            vec!["fieldManager: Too long: may not be more than 128 bytes"]
        );
        assert!(validate_field_manager("kube-controller-manager \"x\" \\ é", "f").is_empty());
    }

    #[test]
    fn label_selectors() {
        let sel = json!({
            "matchLabels": {"app": "-x"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": []},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "-c", "operator": "Near"},
                {"key": "d", "operator": "NotIn", "values": ["y"]},
            ]
        });
        assert_eq!(
            messages(&validate_label_selector(&sel, "spec.selector")),
            vec![
                format!("spec.selector.matchLabels: Invalid value: \"-x\": {LABEL_VALUE_MSG}"),
                "spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into(),
                "spec.selector.matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'".into(),
                "spec.selector.matchExpressions[2].operator: Invalid value: \"Near\": not a valid selector operator".into(),
                format!("spec.selector.matchExpressions[2].key: Invalid value: \"-c\": {NAME_PART_MSG}"),
            ]
        );
        assert!(validate_label_selector(&Value::Null, "s").is_empty());
    }

    #[test]
    fn object_meta_on_update() {
        let old = json!({
            "name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "5",
            "generation": 3, "creationTimestamp": "2024-01-01T00:00:00Z",
            "finalizers": ["a.io/x"],
        });
        let check =
            |new: Value, old: &Value| messages(&validate_object_meta_update(&new, old, "metadata"));

        let mut same = old.clone();
        assert!(check(same.clone(), &old).is_empty());

        same["labels"] = json!({"app": "web"});
        assert!(check(same, &old).is_empty());

        let changed = json!({
            "name": "web2", "namespace": "other", "uid": "u2", "generation": 2,
            "creationTimestamp": "2025-01-01T00:00:00Z", "deletionGracePeriodSeconds": 30,
            "labels": {"app": "-x"},
        });
        assert_eq!(
            check(changed, &old),
            vec![
                "metadata.resourceVersion: Invalid value: \"\": must be specified for an update".to_string(),
                "metadata.generation: Invalid value: 2: must not be decremented".into(),
                "metadata.name: Invalid value: \"web2\": field is immutable".into(),
                "metadata.namespace: Invalid value: \"other\": field is immutable".into(),
                "metadata.uid: Invalid value: \"u2\": field is immutable".into(),
                "metadata.creationTimestamp: Invalid value: \"2025-01-01T00:00:00Z\": field is immutable".into(),
                "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable".into(),
                format!("metadata.labels: Invalid value: \"-x\": {LABEL_VALUE_MSG}"),
            ]
        );

        // Dropping server-set fields counts as changing them, as upstream (the caller copies them).
        let dropped = json!({"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "5", "generation": 3});
        assert_eq!(
            check(dropped, &old),
            vec!["metadata.creationTimestamp: Invalid value: null: field is immutable"]
        );

        // Deleting: no new finalizers.
        let mut deleting = old.clone();
        deleting["deletionTimestamp"] = json!("2024-02-01T00:00:00Z");
        deleting["deletionGracePeriodSeconds"] = json!(0);
        let mut new = deleting.clone();
        new["finalizers"] = json!(["a.io/x", "z.io/y", "b.io/y", "b.io/y"]);
        assert_eq!(
            check(new.clone(), &deleting),
            vec!["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\", \"z.io/y\"}"]
        );
        // Removing finalizers while deleting is fine.
        new["finalizers"] = json!([]);
        assert!(check(new.clone(), &deleting).is_empty());
        // The deletion fields are immutable.
        new["deletionTimestamp"] = json!("2024-03-01T00:00:00Z");
        new["deletionGracePeriodSeconds"] = json!(30);
        assert_eq!(
            check(new, &deleting),
            vec![
                "metadata.deletionTimestamp: Invalid value: \"2024-03-01T00:00:00Z\": field is immutable",
                "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable",
            ]
        );
    }
}
