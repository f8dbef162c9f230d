//! Policy levels and policy versions, with upstream's parsing rules and error texts.

use std::fmt;

/// A Pod Security Standards level, ordered from least to most strict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    /// The label value spelling (`privileged`, `baseline`, `restricted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }

    /// Parses a level label value; the error is upstream's field detail.
    pub fn parse(value: &str) -> Result<Level, String> {
        match value {
            "privileged" => Ok(Level::Privileged),
            "baseline" => Ok(Level::Baseline),
            "restricted" => Ok(Level::Restricted),
            _ => Err("must be one of privileged, baseline, restricted".to_string()),
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy version: `latest` or `v1.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyVersion {
    Latest,
    /// `v1.<minor>`; only major version 1 exists.
    V1(u32),
}

/// The newest policy version this crate knows the checks of (the workspace's Kubernetes
/// version). Newer versions, and `latest`, evaluate as this one, like upstream clamps to
/// the newest registered version.
pub const NEWEST_KNOWN_MINOR: u32 = 33;

impl PolicyVersion {
    /// Parses a version label value; the error is upstream's field detail.
    pub fn parse(value: &str) -> Result<PolicyVersion, String> {
        const DETAIL: &str = r#"must be "latest" or "v1.x""#;
        if value == "latest" {
            return Ok(PolicyVersion::Latest);
        }
        let minor = value
            .strip_prefix("v1.")
            .ok_or_else(|| DETAIL.to_string())?;
        // Upstream's regexp allows a lone 0 but no other leading zero, and digits only.
        let well_formed = !minor.is_empty()
            && minor.bytes().all(|b| b.is_ascii_digit())
            && (minor == "0" || !minor.starts_with('0'));
        if !well_formed {
            return Err(DETAIL.to_string());
        }
        minor
            .parse::<u32>()
            .map(PolicyVersion::V1)
            .map_err(|_| DETAIL.to_string())
    }

    /// The minor version the checks are evaluated at.
    pub(crate) fn effective_minor(self) -> u32 {
        match self {
            PolicyVersion::Latest => NEWEST_KNOWN_MINOR,
            PolicyVersion::V1(minor) => minor.min(NEWEST_KNOWN_MINOR),
        }
    }
}

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyVersion::Latest => f.write_str("latest"),
            PolicyVersion::V1(minor) => write!(f, "v1.{minor}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions_like_upstream() {
        let cases: &[(&str, Option<PolicyVersion>)] = &[
            ("latest", Some(PolicyVersion::Latest)),
            ("v1.0", Some(PolicyVersion::V1(0))),
            ("v1.25", Some(PolicyVersion::V1(25))),
            ("v1.05", None),
            ("v1.", None),
            ("v2.1", None),
            ("1.25", None),
            ("v1.2x", None),
            ("Latest", None),
            ("v1.99999999999999999999", None),
        ];
        for (input, want) in cases {
            assert_eq!(PolicyVersion::parse(input).ok(), *want, "{input}");
        }
        assert_eq!(
            PolicyVersion::parse("x").unwrap_err(),
            r#"must be "latest" or "v1.x""#
        );
    }

    #[test]
    fn versions_display_and_clamp() {
        assert_eq!(PolicyVersion::V1(25).to_string(), "v1.25");
        assert_eq!(PolicyVersion::Latest.to_string(), "latest");
        assert_eq!(PolicyVersion::V1(99).effective_minor(), NEWEST_KNOWN_MINOR);
        assert_eq!(PolicyVersion::Latest.effective_minor(), NEWEST_KNOWN_MINOR);
    }

    #[test]
    fn parses_levels() {
        assert_eq!(Level::parse("baseline"), Ok(Level::Baseline));
        assert_eq!(
            Level::parse("Baseline").unwrap_err(),
            "must be one of privileged, baseline, restricted"
        );
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
    }
}
