//! The Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`), converted to and
//! from the JSON form of built-in objects the apiserver keeps (`serde_json::Value`).
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope:
//! `{typeMeta{apiVersion = 1, kind = 2} = 1, raw = 2, contentEncoding = 3, contentType = 4}`,
//! whose `raw` holds the object's own message (e.g. `k8s.io.api.core.v1.ConfigMap`). The
//! object's messages come from a generated schema table (`schema_generated.rs`, made by
//! `examples/generate_schema.rs`) which the codec walks generically: [`decode`] turns a body into
//! upstream's JSON, [`encode`] the reverse. Watch-event framing is not handled here.

mod decode;
mod encode;
mod error;
mod forms;
mod omit;
mod schema;
#[rustfmt::skip]
mod schema_generated;
mod wire;

pub use error::Error;

use serde_json::{Map, Value};
use wire::{Reader, Writer};

/// The media type of protobuf bodies.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Prefixes every protobuf body so it can be told apart from JSON or YAML.
const MAGIC: &[u8; 4] = b"k8s\0";

/// Decodes a full protobuf body (magic + `Unknown` envelope) into the object's JSON, with
/// `apiVersion` and `kind` taken from the envelope.
pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
    let envelope = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(Error::MissingMagic)?;
    let unknown = Unknown::parse(envelope)?;
    if !unknown.content_encoding.is_empty() {
        return Err(Error::ContentEncoding(unknown.content_encoding));
    }
    if unknown.api_version.is_empty() && unknown.kind.is_empty() {
        return Err(Error::MissingTypeMeta);
    }
    let msg = schema::resource(&unknown.api_version, &unknown.kind).ok_or_else(|| {
        Error::UnsupportedKind {
            api_version: unknown.api_version.clone(),
            kind: unknown.kind.clone(),
        }
    })?;
    let body = decode::message(unknown.raw, msg, 0)?;
    let Some(Value::Object(fields)) = body else {
        return Err(Error::Malformed(format!(
            "{} is not an object message",
            unknown.kind
        )));
    };
    let mut object = Map::new();
    object.insert("apiVersion".to_string(), Value::String(unknown.api_version));
    object.insert("kind".to_string(), Value::String(unknown.kind));
    object.extend(fields);
    Ok(Value::Object(object))
}

/// Encodes an object's JSON as a protobuf body; its `apiVersion` and `kind` select the message.
pub fn encode(object: &Value) -> Result<Vec<u8>, Error> {
    let type_field = |name: &str| {
        object
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let (Some(api_version), Some(kind)) = (type_field("apiVersion"), type_field("kind")) else {
        return Err(Error::MissingTypeMeta);
    };
    let msg = schema::resource(api_version, kind).ok_or_else(|| Error::UnsupportedKind {
        api_version: api_version.to_string(),
        kind: kind.to_string(),
    })?;
    let raw = encode::message(object, msg, 0, kind)?;

    let mut type_meta = Writer::default();
    type_meta.bytes_field(1, api_version.as_bytes());
    type_meta.bytes_field(2, kind.as_bytes());
    let mut w = Writer {
        buf: MAGIC.to_vec(),
    };
    w.bytes_field(1, &type_meta.buf);
    w.bytes_field(2, &raw);
    // Upstream writes the empty contentEncoding and contentType too.
    w.bytes_field(3, b"");
    w.bytes_field(4, b"");
    Ok(w.buf)
}

/// Whether objects of this `apiVersion`/`kind` (including `<Kind>List`) have a protobuf form.
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema::resource(api_version, kind).is_some()
}

/// The `runtime.Unknown` envelope.
struct Unknown<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
}

impl<'a> Unknown<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut out = Unknown {
            api_version: String::new(),
            kind: String::new(),
            raw: &[],
            content_encoding: String::new(),
        };
        let mut r = Reader::new(bytes);
        while let Some((number, value)) = r.next_field()? {
            let wire::Value::Len(b) = value else {
                return Err(Error::Malformed(format!(
                    "envelope field {number} is not length-delimited"
                )));
            };
            match number {
                1 => {
                    let mut tm = Reader::new(b);
                    while let Some((n, v)) = tm.next_field()? {
                        let wire::Value::Len(s) = v else {
                            return Err(Error::Malformed("typeMeta field is not a string".into()));
                        };
                        let s = std::str::from_utf8(s)
                            .map_err(|_| Error::Malformed("typeMeta is not UTF-8".into()))?;
                        match n {
                            1 => out.api_version = s.to_string(),
                            2 => out.kind = s.to_string(),
                            _ => {}
                        }
                    }
                }
                2 => out.raw = b,
                3 => out.content_encoding = String::from_utf8_lossy(b).into_owned(),
                _ => {}
            }
        }
        Ok(out)
    }
}
