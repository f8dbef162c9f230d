//! A namespace's PodSecurity policy from its `pod-security.kubernetes.io/*` labels, with
//! upstream's defaults (privileged:latest), fallbacks and label error texts.

use serde_json::{Map, Value};

use crate::level::{Level, PolicyVersion};

pub const ENFORCE_LEVEL_LABEL: &str = "pod-security.kubernetes.io/enforce";
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";
pub const AUDIT_LEVEL_LABEL: &str = "pod-security.kubernetes.io/audit";
pub const AUDIT_VERSION_LABEL: &str = "pod-security.kubernetes.io/audit-version";
pub const WARN_LEVEL_LABEL: &str = "pod-security.kubernetes.io/warn";
pub const WARN_VERSION_LABEL: &str = "pod-security.kubernetes.io/warn-version";

/// The three modes of a namespace's policy, each a level and a version string
/// (`latest` or `v1.x`, as it appears in messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespacePolicy {
    pub enforce: (Level, String),
    pub audit: (Level, String),
    pub warn: (Level, String),
}

impl Default for NamespacePolicy {
    /// Upstream's default admission configuration: everything privileged:latest.
    fn default() -> Self {
        let privileged = (Level::Privileged, PolicyVersion::Latest.to_string());
        NamespacePolicy {
            enforce: privileged.clone(),
            audit: privileged.clone(),
            warn: privileged,
        }
    }
}

impl NamespacePolicy {
    /// True when no mode can produce a violation, so evaluation can be skipped.
    pub fn fully_privileged(&self) -> bool {
        self.enforce.0 == Level::Privileged
            && self.audit.0 == Level::Privileged
            && self.warn.0 == Level::Privileged
    }
}

/// Parses the labels strictly: any invalid PodSecurity label value is an error, with
/// upstream's text (as `ErrorList.ToAggregate()` renders it). This is what namespace
/// create/update validation reports.
pub fn namespace_policy(labels: &Map<String, Value>) -> Result<NamespacePolicy, String> {
    let (policy, errors) = resolve_namespace_policy(labels);
    match errors.as_slice() {
        [] => Ok(policy),
        [one] => Err(one.clone()),
        many => Err(format!("[{}]", many.join(", "))),
    }
}

/// Resolves the policy the way upstream's pod admission does: always a usable policy,
/// plus one error per invalid label. An invalid enforce level fails closed (restricted),
/// an invalid audit or warn level fails open (privileged), an invalid version is `latest`.
pub fn resolve_namespace_policy(labels: &Map<String, Value>) -> (NamespacePolicy, Vec<String>) {
    let mut policy = NamespacePolicy::default();
    let mut errors = Vec::new();
    let modes: [(&str, &str, &mut (Level, String), Level); 3] = [
        (
            ENFORCE_LEVEL_LABEL,
            ENFORCE_VERSION_LABEL,
            &mut policy.enforce,
            Level::Restricted,
        ),
        (
            AUDIT_LEVEL_LABEL,
            AUDIT_VERSION_LABEL,
            &mut policy.audit,
            Level::Privileged,
        ),
        (
            WARN_LEVEL_LABEL,
            WARN_VERSION_LABEL,
            &mut policy.warn,
            Level::Privileged,
        ),
    ];
    for (level_label, version_label, mode, fallback) in modes {
        if let Some(value) = labels.get(level_label) {
            match value.as_str().map(Level::parse) {
                Some(Ok(level)) => mode.0 = level,
                Some(Err(detail)) => {
                    mode.0 = fallback;
                    errors.push(invalid_label(level_label, value, &detail));
                }
                None => {
                    mode.0 = fallback;
                    errors.push(invalid_label(
                        level_label,
                        value,
                        "must be one of privileged, baseline, restricted",
                    ));
                }
            }
        }
        if let Some(value) = labels.get(version_label) {
            let parsed = value
                .as_str()
                .ok_or_else(|| r#"must be "latest" or "v1.x""#.to_string())
                .and_then(PolicyVersion::parse);
            match parsed {
                Ok(version) => mode.1 = version.to_string(),
                Err(detail) => {
                    mode.1 = PolicyVersion::Latest.to_string();
                    errors.push(invalid_label(version_label, value, &detail));
                }
            }
        }
    }
    (policy, errors)
}

/// Renders like apimachinery's `field.Invalid(...).Error()`.
fn invalid_label(label: &str, value: &Value, detail: &str) -> String {
    let shown = match value {
        Value::String(s) => crate::message::go_quote(s),
        other => other.to_string(),
    };
    format!("metadata.labels[{label}]: Invalid value: {shown}: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn defaults_to_privileged_latest() {
        let p = namespace_policy(&Map::new()).unwrap();
        assert_eq!(p, NamespacePolicy::default());
        assert!(p.fully_privileged());
        assert_eq!(p.enforce, (Level::Privileged, "latest".to_string()));
    }

    #[test]
    fn reads_all_modes() {
        let p = namespace_policy(&labels(json!({
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/enforce-version": "v1.25",
            "pod-security.kubernetes.io/audit": "restricted",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/warn-version": "latest",
            "other": "x",
        })))
        .unwrap();
        assert_eq!(p.enforce, (Level::Baseline, "v1.25".to_string()));
        assert_eq!(p.audit, (Level::Restricted, "latest".to_string()));
        assert_eq!(p.warn, (Level::Restricted, "latest".to_string()));
        assert!(!p.fully_privileged());
    }

    #[test]
    fn version_without_level_keeps_privileged() {
        let p = namespace_policy(&labels(json!({
            "pod-security.kubernetes.io/enforce-version": "v1.20",
        })))
        .unwrap();
        assert_eq!(p.enforce, (Level::Privileged, "v1.20".to_string()));
    }

    #[test]
    fn single_invalid_label_message() {
        let err = namespace_policy(&labels(json!({
            "pod-security.kubernetes.io/enforce": "strict",
        })))
        .unwrap_err();
        assert_eq!(
            err,
            r#"metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted"#
        );
    }

    #[test]
    fn multiple_invalid_labels_aggregate() {
        let err = namespace_policy(&labels(json!({
            "pod-security.kubernetes.io/enforce-version": "1.25",
            "pod-security.kubernetes.io/warn": "nope",
        })))
        .unwrap_err();
        assert_eq!(
            err,
            r#"[metadata.labels[pod-security.kubernetes.io/enforce-version]: Invalid value: "1.25": must be "latest" or "v1.x", metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "nope": must be one of privileged, baseline, restricted]"#
        );
    }

    #[test]
    fn fallbacks_fail_closed_for_enforce_and_open_for_audit_warn() {
        let (p, errs) = resolve_namespace_policy(&labels(json!({
            "pod-security.kubernetes.io/enforce": "bad",
            "pod-security.kubernetes.io/audit": "bad",
            "pod-security.kubernetes.io/warn": 7,
            "pod-security.kubernetes.io/warn-version": "v9",
        })));
        assert_eq!(errs.len(), 4);
        assert_eq!(p.enforce.0, Level::Restricted);
        assert_eq!(p.audit.0, Level::Privileged);
        assert_eq!(p.warn, (Level::Privileged, "latest".to_string()));
        assert!(errs[2].contains("Invalid value: 7: must be one of"));
    }
}
