//! Strategic-merge-patch metadata: which lists merge by key, which maps are replaced or keep only
//! listed keys, per field of the built-in types.
//!
//! The data mirrors the `patchStrategy`/`patchMergeKey` struct tags of k8s.io/api, which are also
//! what the OpenAPI document publishes as `x-kubernetes-patch-strategy` and
//! `x-kubernetes-patch-merge-key`. Only fields that carry a tag, or lead to one, are listed: a
//! field that is not listed behaves as a plain map or an atomic list, exactly like an untagged
//! field upstream. Shared types (ObjectMeta, PodTemplateSpec, PodSpec, Container, conditions) are
//! one static each, referenced from every kind that embeds them.

mod builtin;

pub use builtin::builtin;

/// A field's `patchStrategy` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchStrategy {
    /// `merge`: list elements merge by the merge key (lists of primitives are unioned).
    Merge,
    /// `replace`: the patch value replaces the field wholesale.
    Replace,
    /// `retainKeys`: a `$retainKeys` directive in the patch clears the keys it does not list.
    RetainKeys,
    /// `merge,retainKeys`.
    MergeRetainKeys,
}

impl PatchStrategy {
    /// The tag text, as published in `x-kubernetes-patch-strategy`.
    pub fn as_str(self) -> &'static str {
        match self {
            PatchStrategy::Merge => "merge",
            PatchStrategy::Replace => "replace",
            PatchStrategy::RetainKeys => "retainKeys",
            PatchStrategy::MergeRetainKeys => "merge,retainKeys",
        }
    }

    /// Whether lists under this strategy merge rather than get replaced.
    pub fn merges(self) -> bool {
        matches!(self, PatchStrategy::Merge | PatchStrategy::MergeRetainKeys)
    }

    /// Whether a map under this strategy is replaced rather than merged.
    pub fn replaces(self) -> bool {
        self == PatchStrategy::Replace
    }

    /// Whether the strategy includes `retainKeys`.
    pub fn retains_keys(self) -> bool {
        matches!(
            self,
            PatchStrategy::RetainKeys | PatchStrategy::MergeRetainKeys
        )
    }
}

/// The metadata of one field of a struct.
#[derive(Debug, PartialEq, Eq)]
pub struct FieldMeta {
    /// The JSON field name.
    pub name: &'static str,
    /// The `patchStrategy` tag, if any.
    pub strategy: Option<PatchStrategy>,
    /// The `patchMergeKey` tag, if any (lists of objects with strategy `merge`).
    pub merge_key: Option<&'static str>,
    /// The metadata of the field's type: of the struct for an object field, of the element for a
    /// list field. `None` when nothing below this field has tags.
    pub meta: Option<&'static PatchMeta>,
}

/// The metadata of one struct type: its fields that carry, or lead to, patch tags.
#[derive(Debug, PartialEq, Eq)]
pub struct PatchMeta {
    fields: &'static [FieldMeta],
}

impl PatchMeta {
    /// A struct's metadata from its fields (built at compile time for the built-in table).
    pub const fn new(fields: &'static [FieldMeta]) -> Self {
        PatchMeta { fields }
    }

    /// The listed fields as the static slice they are stored in.
    pub(crate) fn field_slice(&self) -> &'static [FieldMeta] {
        self.fields
    }

    /// The metadata of the field named `name`, if it has any.
    pub fn field(&self, name: &str) -> Option<&'static FieldMeta> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Every listed field, in declaration order; recurse through [`FieldMeta::meta`] to walk the
    /// whole tree (for instance to emit the OpenAPI extensions).
    pub fn fields(&self) -> impl Iterator<Item = &'static FieldMeta> {
        self.fields.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_texts_match_the_struct_tags() {
        let cases = [
            (PatchStrategy::Merge, "merge", true, false, false),
            (PatchStrategy::Replace, "replace", false, true, false),
            (PatchStrategy::RetainKeys, "retainKeys", false, false, true),
            (
                PatchStrategy::MergeRetainKeys,
                "merge,retainKeys",
                true,
                false,
                true,
            ),
        ];
        for (s, text, merges, replaces, retains) in cases {
            assert_eq!(s.as_str(), text);
            assert_eq!(s.merges(), merges, "{text}");
            assert_eq!(s.replaces(), replaces, "{text}");
            assert_eq!(s.retains_keys(), retains, "{text}");
        }
    }
}
