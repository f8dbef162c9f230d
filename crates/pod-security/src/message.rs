//! The user-facing texts of PodSecurity admission: the aggregated violation list in a
//! 403 (`violates PodSecurity "restricted:latest": ...`) and in a warning
//! (`would violate PodSecurity ...`), plus Go's `%q` quoting used inside details.

use crate::level::Level;

/// The detail of a 403 for a pod that breaks the enforced policy. The apiserver prefixes
/// it the way `NewForbidden` does: `pods "x" is forbidden: <this>`.
pub fn forbidden_message(level: Level, version: &str, violations: &[String]) -> String {
    format!(
        "violates PodSecurity \"{level}:{version}\": {}",
        violations.join(", ")
    )
}

/// A warning for a pod or pod template that breaks the warn (or, for templates, the
/// enforce) policy.
pub fn warning_message(level: Level, version: &str, violations: &[String]) -> String {
    format!(
        "would violate PodSecurity \"{level}:{version}\": {}",
        violations.join(", ")
    )
}

/// Go's `strconv.Quote`: what `%q` prints for a string.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_and_warning_texts() {
        let v = vec![
            "allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false)".to_string(),
            "runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true)".to_string(),
        ];
        assert_eq!(
            forbidden_message(Level::Restricted, "latest", &v),
            "violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"c\" must set securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container \"c\" must set securityContext.runAsNonRoot=true)"
        );
        assert_eq!(
            warning_message(Level::Baseline, "v1.25", &["hostPort (container \"c\" uses hostPort 80)".to_string()]),
            "would violate PodSecurity \"baseline:v1.25\": hostPort (container \"c\" uses hostPort 80)"
        );
    }

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("plain"), "\"plain\"");
        assert_eq!(go_quote("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
        assert_eq!(go_quote("\u{1}"), "\"\\x01\"");
        assert_eq!(go_quote("ü"), "\"ü\"");
    }
}
