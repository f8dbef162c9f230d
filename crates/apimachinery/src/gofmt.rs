//! Go's text renderings that upstream messages are built from: `strconv.Quote` (`%q`), `%v` of
//! numbers and `encoding/json`'s output. Clients match on these messages, so they have to come out
//! byte for byte as the Go apiserver writes them.

use serde_json::Value;
use std::fmt::Write as _;

/// `strconv.Quote`: a double-quoted Go string literal.
///
/// Printable runes are kept as they are; Go's `unicode.IsPrint` is approximated by "not a control
/// character, not a format character, not a non-ASCII space, not private use", which is exact for
/// everything a Kubernetes name, label or path can hold.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_print(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Go's `unicode.IsPrint`, approximated as described at [`quote`].
pub(crate) fn is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    let format_char = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E
        | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB);
    let private_or_special =
        matches!(u, 0xE000..=0xF8FF | 0xF0000..=0x10FFFF | 0xFFFE | 0xFFFF | 0xE0001..=0xE007F);
    !format_char && !private_or_special
}

/// `fmt.Sprintf("%v", x)` for a float64: `%g` with the shortest digits, switching to exponent form
/// when the exponent is below -4 or at least 6 (so `1e+06`, `1.5`, `1e-05`).
pub(crate) fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "-1.2345e6".
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    } else {
        format!("{f}")
    }
}

/// `encoding/json`'s rendering of a float64 (ES6 number-to-string rules).
fn float_json(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let e = format!("{f:e}");
        match e.split_once('e') {
            Some((m, x)) if !x.starts_with('-') => format!("{m}e+{x}"),
            _ => e,
        }
    } else {
        format!("{f}")
    }
}

fn number_json(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float_json(n.as_f64().unwrap_or(0.0))
    }
}

/// `json.Marshal` of a value: Go sorts map keys and escapes `<`, `>`, `&`, U+2028 and U+2029.
///
/// Objects whose keys all belong to `metav1.OwnerReference` are written in that struct's field
/// order instead, because upstream marshals the struct, not a map (see `validation`).
pub(crate) fn json(v: &Value) -> String {
    let mut out = String::new();
    write_json(&mut out, v);
    out
}

const OWNER_REFERENCE_FIELDS: [&str; 6] = [
    "apiVersion",
    "kind",
    "name",
    "uid",
    "controller",
    "blockOwnerDeletion",
];

fn write_json(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_json(n)),
        Value::String(s) => write_json_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            let is_owner_reference = map.contains_key("uid")
                && keys
                    .iter()
                    .all(|k| OWNER_REFERENCE_FIELDS.contains(&k.as_str()));
            if is_owner_reference {
                keys.sort_by_key(|k| OWNER_REFERENCE_FIELDS.iter().position(|f| f == k));
            } else {
                keys.sort();
            }
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_string(out, k);
                out.push(':');
                write_json(out, &map[k.as_str()]);
            }
            out.push('}');
        }
    }
}

fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// How `field.Error` prints a bad value: `%v` for numbers and booleans, `%q` for strings and
/// JSON for everything else.
pub(crate) fn bad_value(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                float_v(n.as_f64().unwrap_or(0.0))
            }
        }
        other => json(other),
    }
}

/// Go's `%#v` of a `[]string`: `[]string{"a", "b"}`.
pub(crate) fn string_slice_sharp_v(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quote_like_strconv() {
        let cases = [
            ("Foo", r#""Foo""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("tab\there\n", r#""tab\there\n""#),
            ("\u{1}\u{7f}", r#""\x01\x7f""#),
            ("héllo 世界", "\"héllo 世界\""),
            ("\u{a0}\u{200b}", r#""\u00a0\u200b""#),
            ("\u{7}\u{b}", r#""\a\v""#),
        ];
        for (input, want) in cases {
            assert_eq!(quote(input), want, "{input:?}");
        }
    }

    #[test]
    fn floats_like_go_percent_v() {
        let cases = [
            (1.5, "1.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5e-7, "-2.5e-07"),
            (3.0, "3"),
        ];
        for (f, want) in cases {
            assert_eq!(float_v(f), want, "{f}");
        }
    }

    #[test]
    fn json_like_encoding_json() {
        assert_eq!(json(&json!(["a", "b"])), r#"["a","b"]"#);
        assert_eq!(
            json(&json!({"b": 1, "a": "<&>"})),
            r#"{"a":"\u003c\u0026\u003e","b":1}"#
        );
        assert_eq!(json(&json!(1e21)), "1e+21");
        assert_eq!(json(&json!(1.5e-7)), "1.5e-7");
        assert_eq!(json(&json!(100.0)), "100");
        assert_eq!(
            json(
                &json!({"uid": "u", "name": "n", "kind": "K", "apiVersion": "v1", "controller": true})
            ),
            r#"{"apiVersion":"v1","kind":"K","name":"n","uid":"u","controller":true}"#
        );
    }

    #[test]
    fn bad_values() {
        assert_eq!(bad_value(&json!("Foo")), r#""Foo""#);
        assert_eq!(bad_value(&json!(-1)), "-1");
        assert_eq!(bad_value(&json!(true)), "true");
        assert_eq!(bad_value(&Value::Null), "null");
        assert_eq!(bad_value(&json!(["x"])), r#"["x"]"#);
        assert_eq!(
            string_slice_sharp_v(&["a".into(), "b".into()]),
            r#"[]string{"a", "b"}"#
        );
    }
}
