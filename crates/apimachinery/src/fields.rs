//! Field selectors, as upstream's `k8s.io/apimachinery/pkg/fields` (`selector.go`): the
//! `fieldSelector` query syntax (`a=b`, `a==b`, `a!=b`, comma-separated, with `\,` `\=` `\\`
//! escapes in values), its error messages, matching, and the fields every resource supports.

use crate::Error;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;

/// A field requirement's operator; `==` parses to [`Operator::Equals`], as upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Equals,
    NotEquals,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
        }
    }
}

/// One `field op value` term. The value is unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub field: String,
    pub operator: Operator,
    pub value: String,
}

impl Requirement {
    /// A missing field reads as the empty string, as upstream's `Fields.Get`.
    fn matches(&self, have: Option<&str>) -> bool {
        let have = have.unwrap_or("");
        match self.operator {
            Operator::Equals => have == self.value,
            Operator::NotEquals => have != self.value,
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.field,
            self.operator.as_str(),
            escape_value(&self.value)
        )
    }
}

/// A field selector: all its requirements must hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// `field=value` (upstream's `OneTermEqualSelector`).
    pub fn one_term_equal(field: &str, value: &str) -> Selector {
        Selector {
            requirements: vec![Requirement {
                field: field.to_string(),
                operator: Operator::Equals,
                value: value.to_string(),
            }],
        }
    }

    /// `field=value` for every entry, sorted by field.
    pub fn from_set<'a>(set: impl IntoIterator<Item = (&'a str, &'a str)>) -> Selector {
        let mut requirements: Vec<Requirement> = set
            .into_iter()
            .map(|(f, v)| Requirement {
                field: f.to_string(),
                operator: Operator::Equals,
                value: v.to_string(),
            })
            .collect();
        requirements.sort_by(|a, b| a.field.cmp(&b.field));
        Selector { requirements }
    }

    /// Parses the `fieldSelector` query form. Terms are sorted (as raw text), empty terms are
    /// skipped, the field name is everything before the first operator and is not unescaped.
    pub fn parse(selector: &str) -> Result<Selector, Error> {
        let mut parts = split_terms(selector);
        parts.sort_unstable();
        let mut requirements = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(Error::InvalidFieldSelector {
                    message: format!("invalid selector: '{selector}'; can't understand '{part}'"),
                });
            };
            requirements.push(Requirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(Selector { requirements })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, in canonical order: what the apiserver checks against the fields a
    /// resource supports.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement holds; `field` returns an object's value for a field name, and
    /// a field it does not know (`None`) reads as the empty string.
    pub fn matches<F, S>(&self, field: F) -> bool
    where
        F: Fn(&str) -> Option<S>,
        S: AsRef<str>,
    {
        self.requirements.iter().all(|r| {
            let have = field(&r.field);
            r.matches(have.as_ref().map(AsRef::as_ref))
        })
    }

    /// The single value `field` must have, when an `=` requirement pins it.
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator == Operator::Equals)
            .map(|r| r.value.as_str())
    }
}

/// The canonical form: `field=value` / `field!=value` terms joined by `,`, values escaped.
impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;
    fn from_str(s: &str) -> Result<Selector, Error> {
        Selector::parse(s)
    }
}

/// The fields every resource supports: `metadata.name` and `metadata.namespace` (empty when the
/// object has none). Other field names give `None`.
pub fn object_meta_field<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    let key = match field {
        "metadata.name" => "name",
        "metadata.namespace" => "namespace",
        _ => return None,
    };
    Some(
        object
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// Escapes `\`, `,` and `=` in a value so that it survives inside a field selector.
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The inverse of [`escape_value`]; an unknown escape or a bare `,` or `=` is an error.
pub fn unescape_value(value: &str) -> Result<String, Error> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut in_slash = false;
    for c in value.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(Error::InvalidFieldSelector {
                    message: format!("invalid field selector: invalid escape sequence: \\{c}"),
                });
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream prints the rune with %v: its code point in decimal.
            ',' | '=' => {
                return Err(Error::InvalidFieldSelector {
                    message: format!(
                        "invalid field selector: unescaped character in value: {}",
                        c as u32
                    ),
                })
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(Error::InvalidFieldSelector {
            message: "invalid field selector: invalid escape sequence: \\".to_string(),
        });
    }
    Ok(out)
}

/// Splits on commas that are not escaped; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator, trying `!=`, then `==`, then `=` at each position.
fn split_term(term: &str) -> Option<(&str, Operator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", Operator::NotEquals),
            ("==", Operator::Equals),
            ("=", Operator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn parses_to_canonical_strings() {
        let cases = [
            ("", ""),
            ("a=b", "a=b"),
            ("a==b", "a=b"),
            ("a!=b", "a!=b"),
            ("b=1,a=2", "a=2,b=1"),
            (",a=b,,", "a=b"),
            ("a=", "a="),
            ("=b", "=b"),
            (
                "metadata.name=x,status.phase!=Running",
                "metadata.name=x,status.phase!=Running",
            ),
            (r"a=b\,c", r"a=b\,c"),
            (r"a=b\=c", r"a=b\=c"),
            (r"a=b\\c", r"a=b\\c"),
            ("a=!b", "a=!b"),
            (" a = b ", " a = b "),
        ];
        for (input, want) in cases {
            let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(sel.to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn requirements_are_unescaped() {
        let sel = Selector::parse(r"spec.nodeName=n\,1,metadata.name!=x\\y").unwrap();
        let reqs: Vec<(&str, Operator, &str)> = sel
            .requirements()
            .iter()
            .map(|r| (r.field.as_str(), r.operator, r.value.as_str()))
            .collect();
        assert_eq!(
            reqs,
            vec![
                ("metadata.name", Operator::NotEquals, r"x\y"),
                ("spec.nodeName", Operator::Equals, "n,1"),
            ]
        );
        assert_eq!(sel.requires_exact_match("spec.nodeName"), Some("n,1"));
        assert_eq!(sel.requires_exact_match("metadata.name"), None);
    }

    #[test]
    fn parse_errors_carry_upstream_messages() {
        let cases = [
            ("a", "invalid selector: 'a'; can't understand 'a'"),
            ("x=1,b", "invalid selector: 'x=1,b'; can't understand 'b'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a!=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                r"a=b\x",
                r"invalid field selector: invalid escape sequence: \x",
            ),
            (
                r"a=b\",
                r"invalid field selector: invalid escape sequence: \",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                Selector::parse(input).unwrap_err().to_string(),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn escaping_round_trips() {
        for v in ["", "plain", "a,b", "a=b", r"a\b", r"\,=\\", "ünï"] {
            assert_eq!(unescape_value(&escape_value(v)).unwrap(), v);
            let sel = Selector::one_term_equal("f", v);
            let back = Selector::parse(&sel.to_string()).unwrap();
            assert_eq!(back, sel, "{v:?}");
        }
    }

    #[test]
    fn matches_objects() {
        let pod = json!({"metadata": {"name": "web", "namespace": "default"}, "spec": {"nodeName": "n1"}});
        let get = |f: &str| -> Option<String> {
            object_meta_field(&pod, f)
                .map(str::to_string)
                .or_else(|| match f {
                    "spec.nodeName" => pod["spec"]["nodeName"].as_str().map(str::to_string),
                    _ => None,
                })
        };
        let cases = [
            ("", true),
            ("metadata.name=web", true),
            ("metadata.name=db", false),
            ("metadata.name!=db", true),
            ("metadata.namespace=default", true),
            ("metadata.namespace=default,metadata.name=web", true),
            ("metadata.namespace=default,metadata.name=db", false),
            ("spec.nodeName=n1", true),
            ("spec.nodeName=", false),
            ("spec.unknown=", true),
            ("spec.unknown!=x", true),
        ];
        for (sel, want) in cases {
            assert_eq!(Selector::parse(sel).unwrap().matches(get), want, "{sel:?}");
        }
        // Closures may return borrowed strings too.
        assert!(Selector::parse("metadata.name=web")
            .unwrap()
            .matches(|f| object_meta_field(&pod, f)));
    }

    #[test]
    fn object_meta_fields() {
        let node = json!({"metadata": {"name": "n1"}});
        assert_eq!(object_meta_field(&node, "metadata.name"), Some("n1"));
        assert_eq!(object_meta_field(&node, "metadata.namespace"), Some(""));
        assert_eq!(object_meta_field(&node, "spec.x"), None);
        assert_eq!(object_meta_field(&Value::Null, "metadata.name"), Some(""));
    }

    #[test]
    fn from_set_and_everything() {
        let s = Selector::from_set([("b", "1"), ("a", "x,y")]);
        assert_eq!(s.to_string(), r"a=x\,y,b=1");
        let mut m = BTreeMap::new();
        m.insert("a", "x,y");
        assert!(s.matches(|f| if f == "b" {
            Some("1")
        } else {
            m.get(f).copied()
        }));
        assert!(Selector::everything().is_empty());
        assert!(Selector::parse(",,").unwrap().is_empty());
    }
}
