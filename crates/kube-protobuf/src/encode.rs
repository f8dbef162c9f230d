//! JSON -> protobuf: writes an object's fields in tag order with its schema, as upstream's
//! gogo-generated marshallers would for the Go value the JSON decodes to.
//!
//! JSON members the schema does not know are dropped (as Go's JSON decoder drops them), `null`
//! means absent, and a member of the wrong JSON type is an [`Error::InvalidField`].

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::decode::MAX_DEPTH;
use crate::forms;
use crate::schema::{self, Field, Form, Kind, Message};
use crate::wire::Writer;
use crate::Error;

/// Encodes `value` as the body of message `msg` (without a length prefix).
pub(crate) fn message(
    value: &Value,
    msg: &Message,
    depth: usize,
    name: &str,
) -> Result<Vec<u8>, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::TooDeep(MAX_DEPTH));
    }
    let mut w = Writer::default();
    match msg.form {
        Form::Struct => {
            let obj = value
                .as_object()
                .ok_or_else(|| Error::field(name, "expected an object"))?;
            object(obj, msg, depth, &mut w)?;
        }
        Form::Time | Form::MicroTime => {
            let text = value
                .as_str()
                .ok_or_else(|| Error::field(name, "expected an RFC 3339 time string"))?;
            let (seconds, nanos) = forms::parse_time(text)
                .ok_or_else(|| Error::field(name, format!("invalid time {text:?}")))?;
            w.int_field(1, seconds);
            w.int_field(2, i64::from(nanos));
        }
        Form::Duration => {
            let text = value
                .as_str()
                .ok_or_else(|| Error::field(name, "expected a duration string"))?;
            let nanos = forms::parse_duration(text)
                .ok_or_else(|| Error::field(name, format!("invalid duration {text:?}")))?;
            w.int_field(1, nanos);
        }
        Form::Quantity => {
            // Upstream's Quantity.UnmarshalJSON takes bare numbers as well as strings.
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(Error::field(name, "expected a quantity string")),
            };
            w.bytes_field(1, text.as_bytes());
        }
        Form::IntOrString => match value {
            Value::Number(n) => {
                let v = n
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| Error::field(name, "integer out of int32 range"))?;
                w.int_field(1, 0);
                w.int_field(2, i64::from(v));
                w.bytes_field(3, b"");
            }
            Value::String(s) => {
                w.int_field(1, 1);
                w.int_field(2, 0);
                w.bytes_field(3, s.as_bytes());
            }
            _ => return Err(Error::field(name, "expected an integer or a string")),
        },
        Form::RawExtension | Form::FieldsV1 => {
            let raw = serde_json::to_vec(value).map_err(Error::EmbeddedJson)?;
            w.bytes_field(1, &raw);
        }
        Form::StringList => {
            let items = value
                .as_array()
                .ok_or_else(|| Error::field(name, "expected an array of strings"))?;
            for item in items {
                let s = item
                    .as_str()
                    .ok_or_else(|| Error::field(name, "expected an array of strings"))?;
                w.bytes_field(1, s.as_bytes());
            }
        }
    }
    Ok(w.buf)
}

fn object(
    obj: &Map<String, Value>,
    msg: &Message,
    depth: usize,
    w: &mut Writer,
) -> Result<(), Error> {
    let mut fields: Vec<&Field> = msg.fields.iter().collect();
    fields.sort_by_key(|f| f.tag);
    for field in fields {
        if field.inline() {
            if let Kind::Msg(index) = field.kind {
                let sub = sub_message(index)?;
                let mut inner = Writer::default();
                object(obj, sub, depth + 1, &mut inner)?;
                w.bytes_field(field.tag, &inner.buf);
            }
            continue;
        }
        let Some(value) = obj.get(field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        match field.kind {
            Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {
                let map = value
                    .as_object()
                    .ok_or_else(|| Error::field(field.json, "expected an object"))?;
                for (key, entry) in map {
                    let mut e = Writer::default();
                    e.bytes_field(1, key.as_bytes());
                    match field.kind {
                        Kind::MapStr => {
                            let s = entry.as_str().ok_or_else(|| {
                                Error::field(field.json, "expected string values")
                            })?;
                            e.bytes_field(2, s.as_bytes());
                        }
                        Kind::MapBytes => e.bytes_field(2, &base64_value(entry, field)?),
                        Kind::MapMsg(index) if !entry.is_null() => {
                            let body = message(entry, sub_message(index)?, depth + 1, field.json)?;
                            e.bytes_field(2, &body);
                        }
                        // A null map value is the value type's zero: an entry without value.
                        _ => {}
                    }
                    w.bytes_field(field.tag, &e.buf);
                }
            }
            _ if field.repeated() => {
                let items = value
                    .as_array()
                    .ok_or_else(|| Error::field(field.json, "expected an array"))?;
                for item in items {
                    single(item, field, depth, w)?;
                }
            }
            _ => single(value, field, depth, w)?,
        }
    }
    Ok(())
}

fn single(value: &Value, field: &Field, depth: usize, w: &mut Writer) -> Result<(), Error> {
    let name = field.json;
    match field.kind {
        Kind::Str => {
            let s = value
                .as_str()
                .ok_or_else(|| Error::field(name, "expected a string"))?;
            w.bytes_field(field.tag, s.as_bytes());
        }
        Kind::Bytes => w.bytes_field(field.tag, &base64_value(value, field)?),
        Kind::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| Error::field(name, "expected a boolean"))?;
            w.varint_field(field.tag, u64::from(b));
        }
        Kind::I32 => {
            let v = integer(value, name)?;
            let v =
                i32::try_from(v).map_err(|_| Error::field(name, "integer out of int32 range"))?;
            w.int_field(field.tag, i64::from(v));
        }
        Kind::I64 => w.int_field(field.tag, integer(value, name)?),
        Kind::F64 => {
            let v = value
                .as_f64()
                .ok_or_else(|| Error::field(name, "expected a number"))?;
            w.double_field(field.tag, v);
        }
        Kind::Msg(index) => {
            let body = message(value, sub_message(index)?, depth + 1, name)?;
            w.bytes_field(field.tag, &body);
        }
        Kind::MapStr | Kind::MapBytes | Kind::MapMsg(_) => {
            return Err(Error::field(name, "maps cannot be repeated"));
        }
    }
    Ok(())
}

/// JSON integers may arrive as `3.0` from some clients; Go's decoder rejects fractions.
fn integer(value: &Value, name: &str) -> Result<i64, Error> {
    if let Some(v) = value.as_i64() {
        return Ok(v);
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        _ => Err(Error::field(name, "expected an integer")),
    }
}

fn base64_value(value: &Value, field: &Field) -> Result<Vec<u8>, Error> {
    let s = value
        .as_str()
        .ok_or_else(|| Error::field(field.json, "expected a base64 string"))?;
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| Error::field(field.json, format!("illegal base64 data: {e}")))
}

fn sub_message(index: u16) -> Result<&'static Message, Error> {
    schema::message(index).ok_or_else(|| Error::Malformed(format!("schema has no message {index}")))
}
