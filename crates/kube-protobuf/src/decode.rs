//! Protobuf -> JSON: walks a message's bytes with its schema and builds the object upstream's
//! JSON serializer would print for the same Go value.
//!
//! The wire does not say whether a Go field is a pointer (absent means nil) or a value with
//! `omitempty` (gogo writes it even when zero), so zero scalars are kept, which never changes
//! meaning, except empty `+optional` strings and the known value fields listed in
//! [`crate::omit`], which upstream would not print.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use crate::forms;
use crate::schema::{self, Field, Form, Kind, Message};
use crate::wire::{self, Reader};
use crate::Error;

/// Deeper than any built-in type nests, shallower than the stack allows.
pub(crate) const MAX_DEPTH: usize = 100;

/// Decodes one message to its JSON; `None` for values upstream prints as absent (zero Time).
pub(crate) fn message(bytes: &[u8], msg: &Message, depth: usize) -> Result<Option<Value>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    match msg.form {
        Form::Struct => object(bytes, msg, depth).map(|o| Some(Value::Object(o))),
        Form::Time | Form::MicroTime => {
            let (seconds, nanos) = (int_field(bytes, 1)?, int_field(bytes, 2)?);
            if seconds == 0 && nanos == 0 {
                // The zero time.Time: upstream prints null, we leave the field out.
                return Ok(None);
            }
            let nanos = i32::try_from(nanos)
                .map_err(|_| Error::Malformed("timestamp nanos out of range".into()))?;
            forms::format_time(seconds, nanos, msg.form == Form::MicroTime)
                .map(|t| Some(Value::String(t)))
                .ok_or_else(|| {
                    Error::Malformed(format!("timestamp {seconds}.{nanos} out of range"))
                })
        }
        Form::Duration => Ok(Some(Value::String(forms::format_duration(int_field(
            bytes, 1,
        )?)))),
        Form::Quantity => {
            let s = string_field(bytes, 1)?.unwrap_or_default();
            Ok(Some(Value::String(if s.is_empty() {
                "0".to_string()
            } else {
                s
            })))
        }
        Form::IntOrString => {
            if int_field(bytes, 1)? == 1 {
                Ok(Some(Value::String(
                    string_field(bytes, 3)?.unwrap_or_default(),
                )))
            } else {
                let v = i32::try_from(int_field(bytes, 2)?).unwrap_or_default();
                Ok(Some(Value::Number(v.into())))
            }
        }
        Form::RawExtension | Form::FieldsV1 => match bytes_field(bytes, 1)? {
            Some(raw) if !raw.is_empty() => serde_json::from_slice(raw)
                .map(Some)
                .map_err(Error::EmbeddedJson),
            _ => Ok(None),
        },
        Form::StringList => {
            let mut items = Vec::new();
            let mut r = Reader::new(bytes);
            while let Some((number, value)) = r.next_field()? {
                if number == 1 {
                    items.push(Value::String(utf8(expect_len(value, "items")?)));
                }
            }
            Ok(Some(Value::Array(items)))
        }
    }
}

fn object(bytes: &[u8], msg: &Message, depth: usize) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((number, value)) = r.next_field()? {
        let Some(field) = msg.field_by_tag(number) else {
            // Fields newer than our table: upstream's decoder skips them too.
            continue;
        };
        if field.inline() {
            let (Kind::Msg(index), wire::Value::Len(sub)) = (field.kind, value) else {
                return Err(mismatch(field, value));
            };
            let sub_msg =
                schema::message(index).ok_or_else(|| Error::Malformed("schema index".into()))?;
            out.extend(object(sub, sub_msg, depth + 1)?);
            continue;
        }
        match field.kind {
            Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {
                let (key, entry) = map_entry(expect_len(value, field.json)?, field, depth)?;
                let map = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let (Value::Object(map), Some(entry)) = (map, entry) {
                    map.insert(key, entry);
                }
            }
            _ if field.repeated() => {
                let mut items = Vec::new();
                match (scalar_kind(field.kind), value) {
                    // proto3 writers pack repeated scalars; accept that as well as proto2's form.
                    (true, wire::Value::Len(packed)) if field.kind == Kind::F64 => {
                        let chunks = packed.chunks_exact(8);
                        if !chunks.remainder().is_empty() {
                            return Err(Error::Truncated);
                        }
                        for chunk in chunks {
                            let mut raw = [0u8; 8];
                            raw.copy_from_slice(chunk);
                            items.extend(single(
                                wire::Value::Fixed64(u64::from_le_bytes(raw)),
                                field,
                                depth,
                            )?);
                        }
                    }
                    (true, wire::Value::Len(packed))
                        if field.kind != Kind::Str && field.kind != Kind::Bytes =>
                    {
                        let mut pr = Reader::new(packed);
                        while !pr.is_empty() {
                            items.extend(single(
                                wire::Value::Varint(pr.read_varint()?),
                                field,
                                depth,
                            )?);
                        }
                    }
                    _ => {
                        if let Some(item) = single(value, field, depth)? {
                            items.push(item);
                        }
                    }
                }
                let slot = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(existing) = slot {
                    existing.extend(items);
                }
            }
            _ => match single(value, field, depth)? {
                Some(v) if !omitted_zero(msg, field, &v) => {
                    out.insert(field.json.to_string(), v);
                }
                _ => {
                    out.remove(field.json);
                }
            },
        }
    }
    Ok(out)
}

fn scalar_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Bool | Kind::I32 | Kind::I64 | Kind::F64 | Kind::Str | Kind::Bytes
    )
}

/// Whether upstream would leave this present-but-zero field out of its JSON.
fn omitted_zero(msg: &Message, field: &Field, value: &Value) -> bool {
    let zero = match value {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if !zero {
        return false;
    }
    match value {
        Value::String(_) => {
            field.optional() && !crate::omit::keeps_empty_string(msg.name, field.json)
        }
        _ => crate::omit::drops_zero(msg.name, field.json),
    }
}

/// Decodes one non-repeated occurrence of a field.
fn single(value: wire::Value<'_>, field: &Field, depth: usize) -> Result<Option<Value>, Error> {
    Ok(Some(match (field.kind, value) {
        (Kind::Str, wire::Value::Len(b)) => Value::String(utf8(b)),
        (Kind::Bytes, wire::Value::Len(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (Kind::Bool, wire::Value::Varint(v)) => Value::Bool(v != 0),
        // int32 travels sign-extended to 64 bits; truncation recovers it.
        (Kind::I32, wire::Value::Varint(v)) => Value::Number((v as i32).into()),
        (Kind::I64, wire::Value::Varint(v)) => Value::Number((v as i64).into()),
        (Kind::F64, wire::Value::Fixed64(v)) => Number::from_f64(f64::from_bits(v))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        (Kind::Msg(index), wire::Value::Len(b)) => {
            let sub =
                schema::message(index).ok_or_else(|| Error::Malformed("schema index".into()))?;
            return message(b, sub, depth + 1);
        }
        _ => return Err(mismatch(field, value)),
    }))
}

/// A map entry is a message `{key = 1, value = 2}`; either may be missing (meaning zero).
fn map_entry(bytes: &[u8], field: &Field, depth: usize) -> Result<(String, Option<Value>), Error> {
    let mut key = String::new();
    let mut entry = None;
    let mut r = Reader::new(bytes);
    while let Some((number, value)) = r.next_field()? {
        match number {
            1 => key = utf8(expect_len(value, field.json)?),
            2 => {
                let b = expect_len(value, field.json)?;
                entry = match field.kind {
                    Kind::MapStr => Some(Value::String(utf8(b))),
                    Kind::MapBytes => Some(Value::String(
                        base64::engine::general_purpose::STANDARD.encode(b),
                    )),
                    Kind::MapMsg(index) => {
                        let sub = schema::message(index)
                            .ok_or_else(|| Error::Malformed("schema index".into()))?;
                        message(b, sub, depth + 1)?
                    }
                    _ => None,
                };
            }
            _ => {}
        }
    }
    if entry.is_none() {
        // An entry without a value holds the value type's zero.
        entry = match field.kind {
            Kind::MapStr | Kind::MapBytes => Some(Value::String(String::new())),
            Kind::MapMsg(index) => {
                let sub = schema::message(index)
                    .ok_or_else(|| Error::Malformed("schema index".into()))?;
                message(&[], sub, depth + 1)?
            }
            _ => None,
        };
    }
    Ok((key, entry))
}

/// Go keeps invalid UTF-8 in strings and its JSON encoder replaces it; so do we.
fn utf8(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect_len<'a>(value: wire::Value<'a>, name: &str) -> Result<&'a [u8], Error> {
    match value {
        wire::Value::Len(b) => Ok(b),
        other => Err(Error::Malformed(format!(
            "field {name}: wire type {} where bytes were expected",
            other.wire_type()
        ))),
    }
}

fn mismatch(field: &Field, value: wire::Value<'_>) -> Error {
    Error::Malformed(format!(
        "field {}: unexpected wire type {}",
        field.json,
        value.wire_type()
    ))
}

/// The last varint of field `number` in a small fixed-shape message (Time, IntOrString...).
fn int_field(bytes: &[u8], number: u32) -> Result<i64, Error> {
    let mut found = 0;
    let mut r = Reader::new(bytes);
    while let Some((n, value)) = r.next_field()? {
        if n == number {
            match value {
                wire::Value::Varint(v) => found = v as i64,
                other => {
                    return Err(Error::Malformed(format!(
                        "field {n}: wire type {}",
                        other.wire_type()
                    )))
                }
            }
        }
    }
    Ok(found)
}

fn bytes_field(bytes: &[u8], number: u32) -> Result<Option<&[u8]>, Error> {
    let mut found = None;
    let mut r = Reader::new(bytes);
    while let Some((n, value)) = r.next_field()? {
        if n == number {
            found = Some(expect_len(value, "raw")?);
        }
    }
    Ok(found)
}

fn string_field(bytes: &[u8], number: u32) -> Result<Option<String>, Error> {
    Ok(bytes_field(bytes, number)?.map(utf8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::resource;
    use crate::wire::Writer;

    fn container() -> &'static Message {
        let pod_spec = resource("v1", "Pod")
            .and_then(|pod| pod.fields.iter().find(|f| f.json == "spec"))
            .and_then(|f| {
                if let Kind::Msg(i) = f.kind {
                    schema::message(i)
                } else {
                    None
                }
            });
        pod_spec
            .and_then(|spec| spec.fields.iter().find(|f| f.json == "containers"))
            .and_then(|f| {
                if let Kind::Msg(i) = f.kind {
                    schema::message(i)
                } else {
                    None
                }
            })
            .unwrap_or_else(|| panic!("no Container message"))
    }

    #[test]
    fn unknown_fields_are_skipped() {
        let mut w = Writer::default();
        w.bytes_field(1, b"c");
        w.varint_field(999, 7);
        w.bytes_field(998, b"future");
        let decoded = message(&w.buf, container(), 0).ok().flatten();
        assert_eq!(decoded, Some(serde_json::json!({"name": "c"})));
    }

    /// gogo writes proto2 repeated ints unpacked, proto3 writers pack them; both decode.
    #[test]
    fn repeated_ints_packed_or_not() {
        let msg = crate::schema_generated::MESSAGES
            .iter()
            .find(|m| m.name == "api.core.v1.PodSecurityContext")
            .unwrap_or_else(|| panic!("no PodSecurityContext"));
        let tag = msg
            .fields
            .iter()
            .find(|f| f.json == "supplementalGroups")
            .map(|f| f.tag)
            .unwrap_or(0);
        let mut unpacked = Writer::default();
        unpacked.int_field(tag, 1000);
        unpacked.int_field(tag, -1);
        let mut packed_body = Writer::default();
        packed_body.varint(1000);
        packed_body.varint(u64::MAX);
        let mut packed = Writer::default();
        packed.bytes_field(tag, &packed_body.buf);
        for body in [unpacked.buf, packed.buf] {
            let decoded = message(&body, msg, 0).ok().flatten();
            assert_eq!(
                decoded,
                Some(serde_json::json!({"supplementalGroups": [1000, -1]}))
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        assert!(matches!(
            message(&[], container(), MAX_DEPTH + 1),
            Err(Error::TooDeep(_))
        ));
    }
}
