//! Protobuf wire primitives: varints, tags and length-delimited records, read from untrusted
//! bytes without panicking and written the way gogo-protobuf (upstream's marshaller) writes them.

use crate::Error;

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// One field's payload as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    Fixed32(u32),
}

impl Value<'_> {
    pub(crate) fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => VARINT,
            Value::Fixed64(_) => FIXED64,
            Value::Len(_) => LEN,
            Value::Fixed32(_) => FIXED32,
        }
    }
}

/// Iterates the `(field number, value)` records of one message.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    pub(crate) fn read_varint(&mut self) -> Result<u64, Error> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.buf.split_first().ok_or(Error::Truncated)?;
            self.buf = rest;
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && byte > 1 {
                return Err(Error::Malformed("varint overflows 64 bits".into()));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::Malformed("varint longer than 10 bytes".into()))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.buf.len() {
            return Err(Error::Truncated);
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// The next record, or `None` at the end of the message.
    pub(crate) fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, Error> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.read_varint()?;
        let number = u32::try_from(key >> 3)
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| Error::Malformed(format!("invalid field number {}", key >> 3)))?;
        let value = match (key & 7) as u8 {
            VARINT => Value::Varint(self.read_varint()?),
            FIXED64 => Value::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            LEN => {
                let len = usize::try_from(self.read_varint()?).map_err(|_| Error::Truncated)?;
                Value::Len(self.take(len)?)
            }
            FIXED32 => Value::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            other => {
                // Groups (3, 4) are proto1 relics no Kubernetes message uses.
                return Err(Error::Malformed(format!(
                    "unsupported wire type {other} for field {number}"
                )));
            }
        };
        Ok(Some((number, value)))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// Appends protobuf records to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn key(&mut self, number: u32, wire_type: u8) {
        self.varint((u64::from(number) << 3) | u64::from(wire_type));
    }

    pub(crate) fn varint_field(&mut self, number: u32, value: u64) {
        self.key(number, VARINT);
        self.varint(value);
    }

    /// Negative int32/int64 values are sign-extended to 64 bits, as protobuf requires.
    pub(crate) fn int_field(&mut self, number: u32, value: i64) {
        self.varint_field(number, value as u64);
    }

    pub(crate) fn bytes_field(&mut self, number: u32, value: &[u8]) {
        self.key(number, LEN);
        self.varint(value.len() as u64);
        self.buf.extend_from_slice(value);
    }

    pub(crate) fn double_field(&mut self, number: u32, value: f64) {
        self.key(number, FIXED64);
        self.buf.extend_from_slice(&value.to_bits().to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            u32::MAX as u64,
            u64::MAX,
            (-1i64) as u64,
        ] {
            let mut w = Writer::default();
            w.varint(v);
            assert_eq!(Reader::new(&w.buf).read_varint().ok(), Some(v), "{v}");
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        let cases: &[(&str, &[u8])] = &[
            ("truncated varint", &[0x08, 0x80]),
            (
                "eleven byte varint",
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
            ),
            ("length past the end", &[0x0a, 0x05, b'a']),
            ("huge length", &[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]),
            ("field number zero", &[0x00, 0x01]),
            ("group wire type", &[0x0b]),
            ("truncated fixed64", &[0x09, 1, 2, 3]),
            ("truncated fixed32", &[0x0d, 1]),
        ];
        for (name, bytes) in cases {
            let mut r = Reader::new(bytes);
            let mut result = Ok(());
            loop {
                match r.next_field() {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            assert!(result.is_err(), "{name} must fail");
        }
    }
}
