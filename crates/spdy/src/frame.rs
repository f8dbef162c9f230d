//! SPDY/3 frames and their wire encoding.
//!
//! Every frame starts with 8 bytes. Control frames: `1 | version:15 | type:16 | flags:8 | length:24`;
//! data frames: `0 | stream_id:31 | flags:8 | length:24`. The frames with header blocks (SYN_STREAM,
//! SYN_REPLY, HEADERS) need the connection's zlib contexts, so encoding and decoding go through a
//! [`FrameEncoder`] / [`FrameDecoder`] that each own one context for the life of the connection.
//!
//! CREDENTIAL and unknown control types are skipped on read, as the draft asks of receivers.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::headers::{HeaderCompressor, HeaderDecompressor, Headers};
use crate::Error;

/// The only protocol version spoken.
pub const VERSION: u16 = 3;
/// Frame header size.
pub const HEADER_LEN: usize = 8;
/// Largest payload a frame can carry (24-bit length); bigger input is refused by construction.
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;

/// FIN on data frames and on SYN_STREAM / SYN_REPLY / HEADERS.
pub const FLAG_FIN: u8 = 0x01;
/// UNIDIRECTIONAL on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;

const TYPE_SYN_STREAM: u16 = 1;
const TYPE_SYN_REPLY: u16 = 2;
const TYPE_RST_STREAM: u16 = 3;
const TYPE_SETTINGS: u16 = 4;
const TYPE_PING: u16 = 6;
const TYPE_GOAWAY: u16 = 7;
const TYPE_HEADERS: u16 = 8;
const TYPE_WINDOW_UPDATE: u16 = 9;

const STREAM_ID_MASK: u32 = 0x7fff_ffff;

/// RST_STREAM status codes (draft 3, section 2.4.2).
pub mod rst {
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INVALID_STREAM: u32 = 2;
    pub const REFUSED_STREAM: u32 = 3;
    pub const UNSUPPORTED_VERSION: u32 = 4;
    pub const CANCEL: u32 = 5;
    pub const INTERNAL_ERROR: u32 = 6;
    pub const FLOW_CONTROL_ERROR: u32 = 7;
    pub const STREAM_IN_USE: u32 = 8;
    pub const STREAM_ALREADY_CLOSED: u32 = 9;
}

/// GOAWAY status codes.
pub mod goaway {
    pub const OK: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 1;
    pub const INTERNAL_ERROR: u32 = 2;
}

/// One SETTINGS entry: `flags:8 | id:24 | value:32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub flags: u8,
    pub id: u32,
    pub value: u32,
}

/// A decoded frame; header blocks are already decompressed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        stream_id: u32,
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        slot: u8,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    RstStream {
        stream_id: u32,
        status: u32,
    },
    Settings {
        flags: u8,
        entries: Vec<Setting>,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good_stream_id: u32,
        status: u32,
    },
    Headers {
        stream_id: u32,
        flags: u8,
        headers: Headers,
    },
    WindowUpdate {
        stream_id: u32,
        delta: u32,
    },
    Data {
        stream_id: u32,
        flags: u8,
        data: Bytes,
    },
}

/// Encodes frames, owning the connection's outgoing header compression context.
#[derive(Default)]
pub struct FrameEncoder {
    compressor: HeaderCompressor,
}

impl FrameEncoder {
    pub fn new() -> FrameEncoder {
        FrameEncoder::default()
    }

    /// Appends the wire form of `frame` to `dst`.
    pub fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), Error> {
        match frame {
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                slot,
                flags,
                headers,
            } => {
                let block = self.compressor.compress(headers)?;
                control_header(dst, TYPE_SYN_STREAM, *flags, 10 + block.len())?;
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_u32(associated_to & STREAM_ID_MASK);
                dst.put_u8((priority & 0x07) << 5);
                dst.put_u8(*slot);
                dst.put_slice(&block);
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compressor.compress(headers)?;
                control_header(dst, TYPE_SYN_REPLY, *flags, 4 + block.len())?;
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_slice(&block);
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                let block = self.compressor.compress(headers)?;
                control_header(dst, TYPE_HEADERS, *flags, 4 + block.len())?;
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_slice(&block);
            }
            Frame::RstStream { stream_id, status } => {
                control_header(dst, TYPE_RST_STREAM, 0, 8)?;
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_u32(*status);
            }
            Frame::Settings { flags, entries } => {
                control_header(dst, TYPE_SETTINGS, *flags, 4 + 8 * entries.len())?;
                dst.put_u32(entries.len() as u32);
                for entry in entries {
                    dst.put_u32((u32::from(entry.flags) << 24) | (entry.id & 0x00ff_ffff));
                    dst.put_u32(entry.value);
                }
            }
            Frame::Ping { id } => {
                control_header(dst, TYPE_PING, 0, 4)?;
                dst.put_u32(*id);
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control_header(dst, TYPE_GOAWAY, 0, 8)?;
                dst.put_u32(last_good_stream_id & STREAM_ID_MASK);
                dst.put_u32(*status);
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control_header(dst, TYPE_WINDOW_UPDATE, 0, 8)?;
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_u32(delta & STREAM_ID_MASK);
            }
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                let len = checked_len(data.len())?;
                dst.reserve(HEADER_LEN + data.len());
                dst.put_u32(stream_id & STREAM_ID_MASK);
                dst.put_u32((u32::from(*flags) << 24) | len);
                dst.put_slice(data);
            }
        }
        Ok(())
    }
}

fn checked_len(len: usize) -> Result<u32, Error> {
    if len > MAX_FRAME_PAYLOAD {
        return Err(Error::protocol(format!(
            "frame payload of {len} bytes exceeds the 24-bit limit"
        )));
    }
    Ok(len as u32)
}

fn control_header(dst: &mut BytesMut, kind: u16, flags: u8, len: usize) -> Result<(), Error> {
    let len = checked_len(len)?;
    dst.reserve(HEADER_LEN + len as usize);
    dst.put_u16(0x8000 | VERSION);
    dst.put_u16(kind);
    dst.put_u32((u32::from(flags) << 24) | len);
    Ok(())
}

/// Decodes frames from a byte buffer, owning the connection's incoming header decompression context.
#[derive(Default)]
pub struct FrameDecoder {
    decompressor: HeaderDecompressor,
}

impl FrameDecoder {
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Takes the next complete frame off the front of `src`; `Ok(None)` means more bytes are needed.
    /// Unknown control frames are consumed and skipped. An error leaves the decoder unusable (the
    /// header zlib stream may be out of sync) and must end the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, Error> {
        loop {
            let Some(head) = src.first_chunk::<HEADER_LEN>() else {
                return Ok(None);
            };
            let word0 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let flags = head[4];
            let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            let control = word0 & 0x8000_0000 != 0;
            // Check the version before waiting for the payload: garbage fails fast.
            let version = ((word0 >> 16) & 0x7fff) as u16;
            if control && version != VERSION {
                return Err(Error::protocol(format!(
                    "unsupported SPDY version {version}"
                )));
            }
            if src.len() < HEADER_LEN + len {
                src.reserve(HEADER_LEN + len - src.len());
                return Ok(None);
            }
            src.advance(HEADER_LEN);
            let payload = src.split_to(len).freeze();
            if !control {
                return Ok(Some(Frame::Data {
                    stream_id: word0,
                    flags,
                    data: payload,
                }));
            }
            let kind = (word0 & 0xffff) as u16;
            if let Some(frame) = self.decode_control(kind, flags, payload)? {
                return Ok(Some(frame));
            }
        }
    }

    fn decode_control(
        &mut self,
        kind: u16,
        flags: u8,
        mut p: Bytes,
    ) -> Result<Option<Frame>, Error> {
        let frame = match kind {
            TYPE_SYN_STREAM => {
                need(&p, 10, "SYN_STREAM")?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                let associated_to = p.get_u32() & STREAM_ID_MASK;
                let priority = p.get_u8() >> 5;
                let slot = p.get_u8();
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    slot,
                    flags,
                    headers: self.decompressor.decompress(&p)?,
                }
            }
            TYPE_SYN_REPLY => {
                need(&p, 4, "SYN_REPLY")?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                Frame::SynReply {
                    stream_id,
                    flags,
                    headers: self.decompressor.decompress(&p)?,
                }
            }
            TYPE_HEADERS => {
                need(&p, 4, "HEADERS")?;
                let stream_id = p.get_u32() & STREAM_ID_MASK;
                Frame::Headers {
                    stream_id,
                    flags,
                    headers: self.decompressor.decompress(&p)?,
                }
            }
            TYPE_RST_STREAM => {
                exact(&p, 8, "RST_STREAM")?;
                Frame::RstStream {
                    stream_id: p.get_u32() & STREAM_ID_MASK,
                    status: p.get_u32(),
                }
            }
            TYPE_SETTINGS => {
                need(&p, 4, "SETTINGS")?;
                let count = p.get_u32() as usize;
                if p.len() != count.saturating_mul(8) {
                    return Err(Error::protocol(
                        "SETTINGS length does not match its entry count",
                    ));
                }
                let entries = (0..count)
                    .map(|_| {
                        let word = p.get_u32();
                        Setting {
                            flags: (word >> 24) as u8,
                            id: word & 0x00ff_ffff,
                            value: p.get_u32(),
                        }
                    })
                    .collect();
                Frame::Settings { flags, entries }
            }
            TYPE_PING => {
                exact(&p, 4, "PING")?;
                Frame::Ping { id: p.get_u32() }
            }
            TYPE_GOAWAY => {
                exact(&p, 8, "GOAWAY")?;
                Frame::GoAway {
                    last_good_stream_id: p.get_u32() & STREAM_ID_MASK,
                    status: p.get_u32(),
                }
            }
            TYPE_WINDOW_UPDATE => {
                exact(&p, 8, "WINDOW_UPDATE")?;
                Frame::WindowUpdate {
                    stream_id: p.get_u32() & STREAM_ID_MASK,
                    delta: p.get_u32() & STREAM_ID_MASK,
                }
            }
            other => {
                tracing::debug!(kind = other, "spdy: skipping unknown control frame");
                return Ok(None);
            }
        };
        Ok(Some(frame))
    }
}

fn need(p: &Bytes, min: usize, what: &str) -> Result<(), Error> {
    if p.len() < min {
        return Err(Error::protocol(format!(
            "{what} frame too short ({} bytes)",
            p.len()
        )));
    }
    Ok(())
}

fn exact(p: &Bytes, len: usize, what: &str) -> Result<(), Error> {
    if p.len() != len {
        return Err(Error::protocol(format!(
            "{what} frame has length {}, want {len}",
            p.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(list: &[(&str, &str)]) -> Headers {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn all_frames() -> Vec<Frame> {
        vec![
            Frame::SynStream {
                stream_id: 1,
                associated_to: 0,
                priority: 0,
                slot: 0,
                flags: 0,
                headers: h(&[("streamtype", "error")]),
            },
            Frame::SynStream {
                stream_id: 0x7fff_fffd,
                associated_to: 7,
                priority: 7,
                slot: 3,
                flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
                headers: h(&[("streamtype", "stdin"), ("a", "1"), ("a", "2")]),
            },
            Frame::SynReply {
                stream_id: 3,
                flags: FLAG_FIN,
                headers: h(&[(":status", "200")]),
            },
            Frame::SynReply {
                stream_id: 5,
                flags: 0,
                headers: vec![],
            },
            Frame::RstStream {
                stream_id: 9,
                status: rst::CANCEL,
            },
            Frame::Settings {
                flags: 1,
                entries: vec![
                    Setting {
                        flags: 1,
                        id: 7,
                        value: 65536,
                    },
                    Setting {
                        flags: 0,
                        id: 4,
                        value: 100,
                    },
                ],
            },
            Frame::Settings {
                flags: 0,
                entries: vec![],
            },
            Frame::Ping { id: 0xffff_ffff },
            Frame::GoAway {
                last_good_stream_id: 11,
                status: goaway::PROTOCOL_ERROR,
            },
            Frame::Headers {
                stream_id: 13,
                flags: FLAG_FIN,
                headers: h(&[("x-trailer", "v")]),
            },
            Frame::WindowUpdate {
                stream_id: 15,
                delta: 0x7fff_ffff,
            },
            Frame::Data {
                stream_id: 17,
                flags: 0,
                data: Bytes::from_static(b"hello"),
            },
            Frame::Data {
                stream_id: 19,
                flags: FLAG_FIN,
                data: Bytes::new(),
            },
        ]
    }

    #[test]
    fn round_trip_every_frame_type() {
        let mut enc = FrameEncoder::new();
        let mut dec = FrameDecoder::new();
        let frames = all_frames();
        let mut wire = BytesMut::new();
        for frame in &frames {
            enc.encode(frame, &mut wire).unwrap();
        }
        // Feed the stream byte by byte: decoding must cope with any split.
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire.iter() {
            buf.put_u8(*byte);
            while let Some(frame) = dec.decode(&mut buf).unwrap() {
                got.push(frame);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(got, frames);
    }

    #[test]
    fn wire_layout_matches_draft() {
        let mut enc = FrameEncoder::new();
        let mut wire = BytesMut::new();
        enc.encode(&Frame::Ping { id: 7 }, &mut wire).unwrap();
        assert_eq!(&wire[..], &[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 7]);
        wire.clear();
        enc.encode(
            &Frame::RstStream {
                stream_id: 3,
                status: rst::REFUSED_STREAM,
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(
            &wire[..],
            &[0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 3, 0, 0, 0, 3]
        );
        wire.clear();
        enc.encode(
            &Frame::Data {
                stream_id: 5,
                flags: FLAG_FIN,
                data: Bytes::from_static(b"ab"),
            },
            &mut wire,
        )
        .unwrap();
        assert_eq!(&wire[..], &[0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn decodes_foreign_syn_stream() {
        // A complete SPDY/3 SYN_STREAM from Chromium's framer tests: stream 1, priority 4.
        let mut wire = BytesMut::from(
            &[
                0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x37, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
                0x00, 0x00, 0x80, 0x00, 0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50,
                0xc2, 0x4b, 0x4a, 0x04, 0xe5, 0x0b, 0x66, 0x80, 0x00, 0x4a, 0xcb, 0xcf, 0x07, 0x08,
                0x20, 0x10, 0x95, 0x96, 0x9f, 0x0f, 0xa2, 0x00, 0x02, 0x28, 0x29, 0xb1, 0x08, 0x20,
                0x80, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
            ][..],
        );
        let frame = FrameDecoder::new().decode(&mut wire).unwrap().unwrap();
        match frame {
            Frame::SynStream {
                stream_id,
                priority,
                flags,
                ..
            } => {
                assert_eq!((stream_id, priority, flags), (1, 4, 0));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases: Vec<Vec<u8>> = vec![
            // Wrong version.
            vec![0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1],
            // PING with a bad length.
            vec![0x80, 0x03, 0x00, 0x06, 0, 0, 0, 2, 0, 0],
            // SYN_STREAM too short.
            vec![0x80, 0x03, 0x00, 0x01, 0, 0, 0, 3, 0, 0, 1],
            // SYN_STREAM with a non-zlib header block.
            vec![
                0x80, 0x03, 0x00, 0x01, 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2,
            ],
            // SETTINGS count mismatch.
            vec![0x80, 0x03, 0x00, 0x04, 0, 0, 0, 4, 0, 0, 0, 9],
        ];
        for case in cases {
            let mut buf = BytesMut::from(&case[..]);
            assert!(FrameDecoder::new().decode(&mut buf).is_err(), "{case:?}");
        }
        // Truncated input just waits for more.
        let mut buf = BytesMut::from(&[0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0][..]);
        assert!(FrameDecoder::new().decode(&mut buf).unwrap().is_none());
        // Unknown control types are skipped.
        let mut buf = BytesMut::from(
            &[
                0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 1, 9, 0x80, 0x03, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0,
                2,
            ][..],
        );
        assert_eq!(
            FrameDecoder::new().decode(&mut buf).unwrap(),
            Some(Frame::Ping { id: 2 })
        );
        // Pseudo-random garbage never panics.
        let mut seed = 0x1234_5678u32;
        for _ in 0..200 {
            let mut bytes = Vec::new();
            for _ in 0..64 {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                bytes.push(seed as u8);
            }
            bytes[0] |= 0x80;
            bytes[1] = 3;
            let mut buf = BytesMut::from(&bytes[..]);
            let mut dec = FrameDecoder::new();
            while let Ok(Some(_)) = dec.decode(&mut buf) {}
        }
    }
}
