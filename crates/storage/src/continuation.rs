//! Continue tokens for paginated lists, in upstream's wire shape: URL-safe unpadded base64 of
//! `{"v":"meta.k8s.io/v1","rv":<snapshot revision>,"start":"<next key, relative to the prefix>"}`.
//! The token pins the revision of the first page, so every page reads the same snapshot. The
//! embedded store adds `"left"`: how many items the snapshot holds from `start` on, so later pages
//! report `remainingItemCount` without counting the rest of the range again (tokens are opaque to
//! clients; a token without it still works).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

const TOKEN_VERSION: &str = "meta.k8s.io/v1";

/// A decoded continue token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContinueToken {
    /// The snapshot revision every page reads.
    pub revision: u64,
    /// The first key of the next page, relative to the listed prefix.
    pub start: String,
    /// Items in the snapshot from `start` on, when the store counted them.
    pub left: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    v: String,
    rv: i64,
    start: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    left: Option<u64>,
}

impl ContinueToken {
    /// The token for a page that ended at `last_key` (an absolute key under `prefix`).
    pub fn after(prefix: &str, last_key: &str, revision: u64) -> Self {
        let relative = last_key.strip_prefix(prefix).unwrap_or(last_key);
        // The smallest key greater than `last_key`.
        ContinueToken {
            revision,
            start: format!("{relative}\0"),
            left: None,
        }
    }

    /// Records how many items the snapshot holds from the token's start on.
    pub fn with_left(mut self, left: u64) -> Self {
        self.left = Some(left);
        self
    }

    pub fn encode(&self) -> String {
        let wire = Wire {
            v: TOKEN_VERSION.to_string(),
            rv: i64::try_from(self.revision).unwrap_or(i64::MAX),
            start: self.start.clone(),
            left: self.left,
        };
        // Serializing a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(token: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidContinue {
            reason: reason.to_string(),
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| invalid("not valid base64"))?;
        let wire: Wire =
            serde_json::from_slice(&bytes).map_err(|_| invalid("not a valid continue token"))?;
        if wire.v != TOKEN_VERSION {
            return Err(invalid(&format!(
                "unsupported continue token version {:?}",
                wire.v
            )));
        }
        if wire.rv <= 0 {
            return Err(invalid("incorrect encoded start resourceVersion"));
        }
        if wire.start.is_empty() || wire.start.starts_with('/') || wire.start.contains("..") {
            return Err(invalid("continue key is not valid"));
        }
        Ok(ContinueToken {
            revision: wire.rv as u64,
            start: wire.start,
            left: wire.left,
        })
    }

    /// The absolute key the next page starts at.
    pub fn start_key(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.start)
    }
}

/// Where a list page starts: the snapshot revision, the first key, and (embedded store) how many
/// items remain from that key on.
pub(crate) struct PageStart {
    pub revision: Option<u64>,
    pub start: Option<String>,
    pub left: Option<u64>,
}

/// Resolves the snapshot revision and first key of a list page from its options.
pub(crate) fn resolve_page(prefix: &str, options: &crate::ListOptions) -> Result<PageStart> {
    match &options.continue_token {
        Some(token) => {
            if options.revision.is_some() {
                return Err(Error::InvalidOptions {
                    reason: "specifying resource version is not allowed when using continue".into(),
                });
            }
            let token = ContinueToken::decode(token)?;
            Ok(PageStart {
                revision: Some(token.revision),
                start: Some(token.start_key(prefix)),
                left: token.left,
            })
        }
        None => Ok(PageStart {
            revision: options.revision.filter(|r| *r > 0),
            start: None,
            left: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_relative_to_the_prefix() {
        let token = ContinueToken::after("/pods/", "/pods/default/web-1", 42);
        assert_eq!(token.start, "default/web-1\0");
        let decoded = ContinueToken::decode(&token.encode()).unwrap();
        assert_eq!(decoded, token);
        assert_eq!(decoded.start_key("/pods/"), "/pods/default/web-1\0");
    }

    #[test]
    fn rejects_broken_tokens() {
        for bad in ["", "!!!", "e30", "bm90IGpzb24"] {
            assert!(
                matches!(
                    ContinueToken::decode(bad),
                    Err(Error::InvalidContinue { .. })
                ),
                "{bad:?} should be refused"
            );
        }
        let escaping = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":3,"start":"../x"}"#);
        assert!(ContinueToken::decode(&escaping).is_err());
        let zero_rv = URL_SAFE_NO_PAD.encode(r#"{"v":"meta.k8s.io/v1","rv":0,"start":"a"}"#);
        assert!(ContinueToken::decode(&zero_rv).is_err());
    }

    #[test]
    fn continue_and_revision_are_exclusive() {
        let options = crate::ListOptions {
            revision: Some(5),
            limit: Some(1),
            continue_token: Some(ContinueToken::after("/a/", "/a/b", 5).encode()),
        };
        assert!(matches!(
            resolve_page("/a/", &options),
            Err(Error::InvalidOptions { .. })
        ));
    }
}
