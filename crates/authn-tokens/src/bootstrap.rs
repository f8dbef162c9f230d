//! Bootstrap tokens (`<id>.<secret>`) checked against their `bootstrap.kubernetes.io/token` Secret
//! in `kube-system`, with upstream's rules: matching id and secret, not expired, marked for
//! authentication, extra groups only under `system:bootstrappers:`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::{Error, UserInfo};

pub const SECRET_TYPE_BOOTSTRAP_TOKEN: &str = "bootstrap.kubernetes.io/token";
/// Bootstrap token Secrets are named this prefix plus the token id.
pub const SECRET_NAME_PREFIX: &str = "bootstrap-token-";
pub const SECRET_NAMESPACE: &str = "kube-system";
pub const TOKEN_ID_KEY: &str = "token-id";
pub const TOKEN_SECRET_KEY: &str = "token-secret";
pub const EXPIRATION_KEY: &str = "expiration";
pub const USAGE_AUTHENTICATION_KEY: &str = "usage-bootstrap-authentication";
pub const EXTRA_GROUPS_KEY: &str = "auth-extra-groups";
pub const USER_PREFIX: &str = "system:bootstrap:";
pub const DEFAULT_GROUP: &str = "system:bootstrappers";
const GROUP_PATTERN: &str = r"\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z";
const TOKEN_PATTERN: &str = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z";

/// Splits `<id>.<secret>`, requiring `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn parse_token(token: &str) -> Result<(&str, &str), Error> {
    let well_formed = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) if well_formed(id, 6) && well_formed(secret, 16) => Ok((id, secret)),
        _ => Err(Error::BootstrapTokenFormat(format!(
            "token [{token:?}] was not of form [{TOKEN_PATTERN:?}]"
        ))),
    }
}

/// The name of the Secret holding a token id.
pub fn secret_name(token_id: &str) -> String {
    format!("{SECRET_NAME_PREFIX}{token_id}")
}

/// Upstream's `ValidateBootstrapGroupName`.
pub fn validate_group_name(group: &str) -> Result<(), Error> {
    let ok = group
        .strip_prefix("system:bootstrappers:")
        .is_some_and(|rest| {
            !rest.is_empty()
                && rest.len() <= 256
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
                && rest
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        });
    if ok {
        Ok(())
    } else {
        Err(Error::BootstrapRejected(format!(
            "bootstrap group {group:?} is invalid (must match {GROUP_PATTERN})"
        )))
    }
}

/// The parts of the Secret the check needs.
#[derive(Debug, Clone, Copy)]
pub struct BootstrapSecret<'a> {
    pub name: &'a str,
    pub type_: &'a str,
    pub data: &'a BTreeMap<String, Vec<u8>>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl BootstrapSecret<'_> {
    fn get(&self, key: &str) -> String {
        self.data
            .get(key)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }
}

/// Upstream's `HasExpired`: an unparseable expiration counts as expired.
pub fn has_expired(secret: &BootstrapSecret<'_>, now: DateTime<Utc>) -> bool {
    let expiration = secret.get(EXPIRATION_KEY);
    if expiration.is_empty() {
        return false;
    }
    match DateTime::parse_from_rfc3339(&expiration) {
        Ok(t) => now > t,
        Err(_) => true,
    }
}

/// Upstream's `GetGroups`: `system:bootstrappers` plus validated extra groups, sorted, deduped.
pub fn groups(secret: &BootstrapSecret<'_>) -> Result<Vec<String>, Error> {
    let mut groups = BTreeSet::from([DEFAULT_GROUP.to_string()]);
    let extra = secret.get(EXTRA_GROUPS_KEY);
    if !extra.is_empty() {
        for group in extra.split(',') {
            validate_group_name(group)?;
            groups.insert(group.to_string());
        }
    }
    Ok(groups.into_iter().collect())
}

/// Authenticates `token` against the Secret named by [`secret_name`] (the caller looks it up in
/// `kube-system`; a missing Secret means "not authenticated"). Every rejection is
/// [`Error::BootstrapRejected`] with upstream's log reason; upstream answers all of them with
/// "not authenticated" rather than an error.
pub fn authenticate(
    token: &str,
    secret: &BootstrapSecret<'_>,
    now: DateTime<Utc>,
) -> Result<UserInfo, Error> {
    let (token_id, token_secret) = parse_token(token)?;
    let reject = |why: String| {
        Err(Error::BootstrapRejected(format!(
            "Bootstrap secret {SECRET_NAMESPACE}/{} matching bearer token {why}",
            secret.name
        )))
    };
    if secret.deleting {
        return reject("is deleted and awaiting removal".into());
    }
    if secret.type_ != SECRET_TYPE_BOOTSTRAP_TOKEN {
        return reject(format!(
            "has invalid type, expected {SECRET_TYPE_BOOTSTRAP_TOKEN}."
        ));
    }
    if !constant_time_eq(
        secret.get(TOKEN_SECRET_KEY).as_bytes(),
        token_secret.as_bytes(),
    ) {
        return reject(format!("has invalid value for key {TOKEN_SECRET_KEY}."));
    }
    let id = secret.get(TOKEN_ID_KEY);
    if id != token_id {
        return reject(format!("has invalid value for key {TOKEN_ID_KEY}."));
    }
    if has_expired(secret, now) {
        return reject("has expired.".into());
    }
    if secret.get(USAGE_AUTHENTICATION_KEY) != "true" {
        return reject(format!("not marked {USAGE_AUTHENTICATION_KEY}=true."));
    }
    let groups = match groups(secret) {
        Ok(g) => g,
        Err(e) => {
            return reject(format!(
                "has invalid value for key {EXTRA_GROUPS_KEY}: {e}."
            ))
        }
    };
    Ok(UserInfo {
        name: format!("{USER_PREFIX}{id}"),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

/// Compares without an early exit, so timing does not reveal how much of the secret matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const TOKEN: &str = "abcdef.0123456789abcdef";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
            .single()
            .expect("time")
    }

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        let mut d: BTreeMap<String, Vec<u8>> = [
            (TOKEN_ID_KEY, "abcdef"),
            (TOKEN_SECRET_KEY, "0123456789abcdef"),
            (USAGE_AUTHENTICATION_KEY, "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
        for (k, v) in pairs {
            if v.is_empty() {
                d.remove(*k);
            } else {
                d.insert(k.to_string(), v.as_bytes().to_vec());
            }
        }
        d
    }

    fn check(pairs: &[(&str, &str)]) -> Result<UserInfo, Error> {
        let d = data(pairs);
        let secret = BootstrapSecret {
            name: "bootstrap-token-abcdef",
            type_: SECRET_TYPE_BOOTSTRAP_TOKEN,
            data: &d,
            deleting: false,
        };
        authenticate(TOKEN, &secret, now())
    }

    #[test]
    fn parses_token_shape() {
        assert_eq!(parse_token(TOKEN), Ok(("abcdef", "0123456789abcdef")));
        for bad in [
            "",
            "abcdef",
            "abcdef.0123456789abcdeF",
            "abcde.0123456789abcdef0",
            "abcdef.0123456789abcde",
            "abcdef:0123456789abcdef",
            "abcdef.0123456789abcdef.",
        ] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
        assert_eq!(secret_name("abcdef"), "bootstrap-token-abcdef");
    }

    #[test]
    fn accepts_a_valid_token_with_extra_groups() {
        let user = check(&[
            (
                EXTRA_GROUPS_KEY,
                "system:bootstrappers:worker,system:bootstrappers:a:b-c",
            ),
            (EXPIRATION_KEY, "2025-01-02T00:00:00Z"),
        ])
        .expect("auth");
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            vec![
                "system:bootstrappers",
                "system:bootstrappers:a:b-c",
                "system:bootstrappers:worker"
            ]
        );
    }

    #[test]
    fn rejects_like_upstream() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[(TOKEN_SECRET_KEY, "ffffffffffffffff")],
                "has invalid value for key token-secret.",
            ),
            (
                &[(TOKEN_ID_KEY, "zzzzzz")],
                "has invalid value for key token-id.",
            ),
            (&[(EXPIRATION_KEY, "2024-12-31T23:59:59Z")], "has expired."),
            (&[(EXPIRATION_KEY, "tomorrow")], "has expired."),
            (
                &[(USAGE_AUTHENTICATION_KEY, "")],
                "not marked usage-bootstrap-authentication=true.",
            ),
            (
                &[(USAGE_AUTHENTICATION_KEY, "True")],
                "not marked usage-bootstrap-authentication=true.",
            ),
            (
                &[(EXTRA_GROUPS_KEY, "system:masters")],
                "has invalid value for key auth-extra-groups",
            ),
            (
                &[(EXTRA_GROUPS_KEY, "system:bootstrappers:")],
                "has invalid value for key auth-extra-groups",
            ),
            (
                &[(EXTRA_GROUPS_KEY, "system:bootstrappers:x-")],
                "has invalid value for key auth-extra-groups",
            ),
        ];
        for (pairs, want) in cases {
            let err = check(pairs).expect_err(want).to_string();
            assert!(err.contains(want), "{err} should contain {want}");
        }
        let d = data(&[]);
        for (type_, deleting, want) in [
            ("Opaque", false, "has invalid type"),
            (SECRET_TYPE_BOOTSTRAP_TOKEN, true, "is deleted"),
        ] {
            let secret = BootstrapSecret {
                name: "bootstrap-token-abcdef",
                type_,
                data: &d,
                deleting,
            };
            let err = authenticate(TOKEN, &secret, now())
                .expect_err(want)
                .to_string();
            assert!(err.contains(want), "{err}");
        }
    }
}
