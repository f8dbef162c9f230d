//! Field-level validation errors, as upstream's `k8s.io/apimachinery/pkg/util/validation/field`:
//! the error types, their cause reasons (`FieldValueInvalid`, ...), the exact text of
//! `field.Error.Error()` and of an aggregated list, and the dotted field paths they point at.

use crate::gofmt;
use serde_json::Value;
use std::fmt;

/// What is wrong with a field: upstream's `field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl FieldErrorType {
    /// The machine-readable reason a `StatusCause` carries (`FieldValueInvalid`, ...).
    pub fn reason(self) -> &'static str {
        match self {
            FieldErrorType::NotFound => "FieldValueNotFound",
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::Internal => "InternalError",
            FieldErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The inverse of [`FieldErrorType::reason`].
    pub fn from_reason(reason: &str) -> Option<FieldErrorType> {
        ALL_TYPES.iter().copied().find(|t| t.reason() == reason)
    }

    /// Whether `field.Error.Error()` prints the bad value for this type.
    fn shows_value(self) -> bool {
        !matches!(
            self,
            FieldErrorType::Required
                | FieldErrorType::Forbidden
                | FieldErrorType::TooLong
                | FieldErrorType::Internal
        )
    }
}

const ALL_TYPES: [FieldErrorType; 10] = [
    FieldErrorType::NotFound,
    FieldErrorType::Required,
    FieldErrorType::Duplicate,
    FieldErrorType::Invalid,
    FieldErrorType::NotSupported,
    FieldErrorType::Forbidden,
    FieldErrorType::TooLong,
    FieldErrorType::TooMany,
    FieldErrorType::Internal,
    FieldErrorType::TypeInvalid,
];

/// The human text of the type (`Invalid value`, `Required value`, ...).
impl fmt::Display for FieldErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FieldErrorType::NotFound => "Not found",
            FieldErrorType::Required => "Required value",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::Invalid | FieldErrorType::TypeInvalid => "Invalid value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::Internal => "Internal error",
        })
    }
}

/// One field-level validation error: upstream's `field.Error`.
///
/// `bad_value` is `None` where upstream omits the value from the message (`omitValue`), and for
/// the types whose message never shows it (required, forbidden, too long, internal).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub error_type: FieldErrorType,
    /// The dotted path of the field, e.g. `metadata.labels` or `spec.containers[0].image`.
    pub field: String,
    pub bad_value: Option<Value>,
    pub detail: String,
}

impl FieldError {
    fn new(
        error_type: FieldErrorType,
        field: impl Into<String>,
        bad_value: Option<Value>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError {
            error_type,
            field: field.into(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// A value that is required is missing (empty string, null, empty list).
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError::new(FieldErrorType::Required, field, None, detail)
    }

    /// A malformed value (failed format check, out of range, ...).
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError::new(FieldErrorType::Invalid, field, Some(value.into()), detail)
    }

    /// A value outside an enumeration; `valid` is listed quoted in the detail.
    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: impl Into<Value>,
        valid: &[S],
    ) -> FieldError {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| gofmt::quote(v.as_ref())).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError::new(
            FieldErrorType::NotSupported,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// A well-formed value that the current conditions do not allow.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError::new(FieldErrorType::Forbidden, field, None, detail)
    }

    /// A value that must be unique is repeated.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> FieldError {
        FieldError::new(FieldErrorType::Duplicate, field, Some(value.into()), "")
    }

    /// A value longer than `max_bytes` (negative: no limit is stated). The value is not shown.
    pub fn too_long(field: impl Into<String>, max_bytes: i64) -> FieldError {
        let detail = if max_bytes >= 0 {
            let unit = if max_bytes == 1 { "byte" } else { "bytes" };
            format!("may not be more than {max_bytes} {unit}")
        } else {
            "value is too long".to_string()
        };
        FieldError::new(FieldErrorType::TooLong, field, None, detail)
    }

    /// A list with `actual` items where at most `max` are allowed (negative numbers: unknown).
    pub fn too_many(field: impl Into<String>, actual: i64, max: i64) -> FieldError {
        let detail = if max >= 0 {
            let unit = if max == 1 { "item" } else { "items" };
            format!("must have at most {max} {unit}")
        } else {
            "has too many items".to_string()
        };
        let value = (actual >= 0).then(|| Value::from(actual));
        FieldError::new(FieldErrorType::TooMany, field, value, detail)
    }

    /// A value of the wrong type for its schema.
    pub fn type_invalid(
        field: impl Into<String>,
        value: impl Into<Value>,
        detail: impl Into<String>,
    ) -> FieldError {
        FieldError::new(
            FieldErrorType::TypeInvalid,
            field,
            Some(value.into()),
            detail,
        )
    }

    /// A value that was looked up (e.g. by name) and not found.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> FieldError {
        FieldError::new(FieldErrorType::NotFound, field, Some(value.into()), "")
    }

    /// An error not caused by the user's input; `detail` is the underlying error's text.
    pub fn internal(field: impl Into<String>, detail: impl Into<String>) -> FieldError {
        FieldError::new(FieldErrorType::Internal, field, None, detail)
    }

    /// The message without the field name: upstream's `ErrorBody()`, which is what a
    /// `StatusCause.message` carries (`Invalid value: -1: must be greater than or equal to 0`).
    pub fn error_body(&self) -> String {
        let mut s = self.error_type.to_string();
        if self.error_type.shows_value() {
            if let Some(v) = &self.bad_value {
                s.push_str(": ");
                s.push_str(&gofmt::bad_value(v));
            }
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// `<field>: <body>`, exactly like upstream's `field.Error.Error()`.
impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.error_body())
    }
}

impl std::error::Error for FieldError {}

/// The text of an error list as upstream's `ErrorList.ToAggregate().Error()`: repeated messages
/// are dropped, one message stands alone, several are written `[a, b]`. `None` for an empty list.
pub fn aggregate_message(errors: &[FieldError]) -> Option<String> {
    let mut seen: Vec<String> = Vec::with_capacity(errors.len());
    for e in errors {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

/// A field path under construction, printed the way upstream's `field.Path` prints:
/// `metadata.labels`, `spec.containers[0].image`, `metadata.annotations[example.com/key]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    /// A root path (`metadata`); an empty name gives an empty root for top-level fields.
    pub fn new(name: impl Into<String>) -> Path {
        Path(name.into())
    }

    /// `parent.name`, or `name` when the parent is empty.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_string())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `parent[index]`.
    pub fn index(&self, index: usize) -> Path {
        Path(format!("{}[{index}]", self.0))
    }

    /// `parent[key]`: a map key, unquoted as upstream writes it.
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

impl From<&str> for Path {
    fn from(s: &str) -> Path {
        Path(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

    #[test]
    fn display_matches_upstream() {
        let cases: Vec<(FieldError, String)> = vec![
            (
                FieldError::invalid("metadata.name", "Foo", SUBDOMAIN_MSG),
                format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}"),
            ),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required".into(),
            ),
            (
                FieldError::required("metadata.namespace", ""),
                "metadata.namespace: Required value".into(),
            ),
            (
                FieldError::not_supported("spec.type", "Foo", &["ClusterIP", "NodePort"]),
                "spec.type: Unsupported value: \"Foo\": supported values: \"ClusterIP\", \"NodePort\""
                    .into(),
            ),
            (
                FieldError::invalid(
                    "spec.replicas",
                    -1,
                    "must be greater than or equal to 0",
                ),
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0".into(),
            ),
            (
                FieldError::forbidden("metadata.namespace", "not allowed on this type"),
                "metadata.namespace: Forbidden: not allowed on this type".into(),
            ),
            (
                FieldError::duplicate("spec.ports[1].name", "http"),
                "spec.ports[1].name: Duplicate value: \"http\"".into(),
            ),
            (
                FieldError::too_long("metadata.annotations", 262144),
                "metadata.annotations: Too long: may not be more than 262144 bytes".into(),
            ),
            (
                FieldError::too_long("x", 1),
                "x: Too long: may not be more than 1 byte".into(),
            ),
            (
                FieldError::too_long("x", -1),
                "x: Too long: value is too long".into(),
            ),
            (
                FieldError::too_many("spec.items", 5, 4),
                "spec.items: Too many: 5: must have at most 4 items".into(),
            ),
            (
                FieldError::too_many("spec.items", -1, 1),
                "spec.items: Too many: must have at most 1 item".into(),
            ),
            (
                FieldError::too_many("spec.items", 3, -1),
                "spec.items: Too many: 3: has too many items".into(),
            ),
            (
                FieldError::type_invalid("spec.replicas", "x", "must be of type integer"),
                "spec.replicas: Invalid value: \"x\": must be of type integer".into(),
            ),
            (
                FieldError::not_found("spec.volumes[0].name", "data"),
                "spec.volumes[0].name: Not found: \"data\"".into(),
            ),
            (
                FieldError::internal("metadata.name", "boom"),
                "metadata.name: Internal error: boom".into(),
            ),
            (
                FieldError::invalid("metadata.finalizers", json!(["a", "b"]), "bad"),
                "metadata.finalizers: Invalid value: [\"a\",\"b\"]: bad".into(),
            ),
            (
                FieldError::not_supported::<&str>("spec.x", "y", &[]),
                "spec.x: Unsupported value: \"y\"".into(),
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn reasons_round_trip() {
        for t in ALL_TYPES {
            assert_eq!(FieldErrorType::from_reason(t.reason()), Some(t));
        }
        assert_eq!(FieldErrorType::Internal.reason(), "InternalError");
        assert_eq!(FieldErrorType::from_reason("nope"), None);
    }

    #[test]
    fn aggregate_drops_repeats_and_brackets_many() {
        let a = FieldError::required("a", "");
        let b = FieldError::forbidden("b", "no");
        assert_eq!(aggregate_message(&[]), None);
        assert_eq!(
            aggregate_message(&[a.clone(), a.clone()]).as_deref(),
            Some("a: Required value")
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b, a]).as_deref(),
            Some("[a: Required value, b: Forbidden: no]")
        );
    }

    #[test]
    fn paths_print_like_upstream() {
        let p = Path::new("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(
            Path::new("metadata")
                .child("annotations")
                .key("a/b")
                .to_string(),
            "metadata.annotations[a/b]"
        );
        assert_eq!(
            Path::default().child("values").index(0).key("app").as_str(),
            "values[0][app]"
        );
    }
}
