//! Patch application for the apiserver's PATCH verb, over `serde_json::Value`.
//!
//! Three patch types, each following the library upstream's apiserver uses for it:
//! - [`json_patch`]: RFC 6902 (`application/json-patch+json`), as evanphx/json-patch v4 applies it;
//! - [`merge_patch`]: RFC 7386 (`application/merge-patch+json`), as evanphx/json-patch's `MergePatch`;
//! - [`strategic`]: strategic merge patch (`application/strategic-merge-patch+json`), as
//!   k8s.io/apimachinery/pkg/util/strategicpatch applies it server-side.
//!
//! The strategic merge patch needs to know, per field, whether a list merges by key or is replaced;
//! [`meta`] holds that metadata for the built-in kinds ([`meta::builtin`]).
//!
//! All input is untrusted: nothing here panics on it, and every failure is a [`PatchError`] that
//! carries the HTTP status upstream's apiserver answers with.

mod error;
pub mod json_patch;
pub mod merge_patch;
pub mod meta;
pub mod strategic;

pub use error::PatchError;
pub use meta::{builtin, FieldMeta, PatchMeta, PatchStrategy};
