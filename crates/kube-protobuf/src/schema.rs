//! The shape of the generated message table (`schema_generated.rs`) and lookups into it.
//!
//! A message is a list of fields; each field carries its protobuf tag, its upstream JSON name
//! and what its bytes hold. Messages whose JSON is not a plain object (Time, Quantity, ...)
//! are marked with a [`Form`] so the codec can give them their upstream JSON representation.

use crate::schema_generated::{DELETE_OPTIONS, MESSAGES, RESOURCES, STATUS};

/// The field is `repeated` in the proto (a JSON array).
pub(crate) const REPEATED: u8 = 1;
/// The field is a Go embedded struct (`json:",inline"`): its fields sit in the parent object.
pub(crate) const INLINE: u8 = 2;
/// The Go comment marks the field `+optional`.
pub(crate) const OPTIONAL: u8 = 4;

/// What a field's bytes hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Bytes,
    Bool,
    I32,
    I64,
    F64,
    /// An embedded message, by index into [`MESSAGES`].
    Msg(u16),
    /// `map<string, string>`.
    MapStr,
    /// `map<string, bytes>` (base64 strings in JSON).
    MapBytes,
    /// `map<string, Message>`.
    MapMsg(u16),
}

/// How a message appears in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Form {
    /// An object of its fields.
    Struct,
    /// meta/v1 Time: RFC 3339, whole seconds.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with 6 fractional digits.
    MicroTime,
    /// meta/v1 Duration: a Go duration string (`1h0m0s`).
    Duration,
    /// meta/v1 FieldsV1: its raw bytes are embedded JSON.
    FieldsV1,
    /// A message wrapping `repeated string items = 1` that Go marshals as a bare array.
    StringList,
    /// util/intstr IntOrString: a JSON number or string.
    IntOrString,
    /// api/resource Quantity: its canonical string.
    Quantity,
    /// runtime RawExtension: its raw bytes are embedded JSON.
    RawExtension,
}

#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) tag: u32,
    pub(crate) json: &'static str,
    pub(crate) kind: Kind,
    pub(crate) flags: u8,
}

impl Field {
    pub(crate) fn repeated(&self) -> bool {
        self.flags & REPEATED != 0
    }
    pub(crate) fn inline(&self) -> bool {
        self.flags & INLINE != 0
    }
    pub(crate) fn optional(&self) -> bool {
        self.flags & OPTIONAL != 0
    }
}

/// Keeps the generated table one short line per field.
pub(crate) const fn f(tag: u32, json: &'static str, kind: Kind, flags: u8) -> Field {
    Field {
        tag,
        json,
        kind,
        flags,
    }
}

#[derive(Debug)]
pub(crate) struct Message {
    /// Proto package and Go type name, e.g. `api.core.v1.ConfigMap`.
    pub(crate) name: &'static str,
    pub(crate) form: Form,
    pub(crate) fields: &'static [Field],
}

impl Message {
    pub(crate) fn field_by_tag(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

pub(crate) fn message(index: u16) -> Option<&'static Message> {
    MESSAGES.get(usize::from(index))
}

/// meta/v1 kinds that every group version carries (`metav1.AddToGroupVersion`), so a client
/// may send them under any apiVersion (e.g. a DeleteOptions body to an apps/v1 endpoint).
fn meta_kind(kind: &str) -> Option<u16> {
    match kind {
        "Status" => Some(STATUS),
        "DeleteOptions" => Some(DELETE_OPTIONS),
        _ => None,
    }
}

/// The message of an `(apiVersion, kind)`, if we know it.
pub(crate) fn resource(api_version: &str, kind: &str) -> Option<&'static Message> {
    let found = RESOURCES
        .binary_search_by(|(v, k, _)| (*v, *k).cmp(&(api_version, kind)))
        .ok()
        .and_then(|i| RESOURCES.get(i))
        .map(|(_, _, n)| *n)
        .or_else(|| meta_kind(kind));
    found.and_then(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn resources_are_sorted_for_binary_search() {
        assert!(RESOURCES
            .windows(2)
            .all(|w| matches!(w, [a, b] if (a.0, a.1) < (b.0, b.1))));
        assert_eq!(
            resource("apps/v1", "Deployment").map(|m| m.name),
            Some("api.apps.v1.Deployment")
        );
        assert_eq!(
            resource("v1", "PodList").map(|m| m.name),
            Some("api.core.v1.PodList")
        );
        assert_eq!(
            resource("batch/v1", "Status").map(|m| m.name),
            Some("apimachinery.pkg.apis.meta.v1.Status")
        );
        assert!(resource("v1", "Deployment").is_none());
    }

    #[test]
    fn table_is_consistent() {
        for m in MESSAGES {
            let mut tags = HashSet::new();
            let mut names = HashSet::new();
            for field in m.fields {
                assert!(
                    tags.insert(field.tag),
                    "{}: duplicate tag {}",
                    m.name,
                    field.tag
                );
                assert!(
                    names.insert(field.json),
                    "{}: duplicate JSON name {}",
                    m.name,
                    field.json
                );
                if let Kind::Msg(i) | Kind::MapMsg(i) = field.kind {
                    assert!(
                        message(i).is_some(),
                        "{}.{}: dangling index",
                        m.name,
                        field.json
                    );
                }
                if field.inline() {
                    assert!(
                        matches!(field.kind, Kind::Msg(_)),
                        "{}.{}",
                        m.name,
                        field.json
                    );
                }
            }
        }
    }

    /// Spot checks of names prost's snake_case loses and Go's inline embedding hides.
    #[test]
    fn json_names_follow_upstream() {
        let field = |message: &str, json: &str| {
            MESSAGES
                .iter()
                .find(|m| m.name == message)
                .and_then(|m| m.fields.iter().find(|f| f.json == json))
                .map(|f| (f.tag, f.flags & INLINE != 0))
        };
        let cases = [
            ("api.core.v1.PodStatus", "podIPs", Some((12, false))),
            ("api.core.v1.PodSpec", "hostIPC", Some((13, false))),
            ("api.core.v1.ServiceSpec", "externalIPs", Some((5, false))),
            ("api.core.v1.ServiceSpec", "clusterIPs", Some((18, false))),
            ("api.core.v1.Volume", "volumeSource", Some((2, true))),
            (
                "api.core.v1.PersistentVolumeSpec",
                "persistentVolumeSource",
                Some((2, true)),
            ),
            ("api.core.v1.Probe", "handler", Some((1, true))),
            (
                "api.core.v1.AWSElasticBlockStoreVolumeSource",
                "volumeID",
                Some((1, false)),
            ),
            ("api.core.v1.PodSpec", "host_ipc", None),
        ];
        for (message, json, expected) in cases {
            assert_eq!(field(message, json), expected, "{message}.{json}");
        }
    }
}
