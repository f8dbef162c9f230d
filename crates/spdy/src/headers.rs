//! SPDY/3 name/value header blocks and their connection-wide zlib contexts.
//!
//! A block is `count:u32`, then per pair `name_len:u32 name value_len:u32 value`, all big-endian.
//! Names are lowercase; several values for one name travel NUL-separated in one value, and a name
//! appears at most once per block (Go's framer rejects duplicates), so [`encode_block`] merges repeats.
//!
//! The block is compressed with zlib using the SPDY/3 preset dictionary. There is exactly one
//! compression context per direction per connection: every block continues the same zlib stream and
//! ends with a sync flush, so the peer can decode it as soon as the frame arrives. Losing or
//! reordering a single block therefore breaks the connection; this is why header frames are only
//! ever encoded by the single writer task and decoded by the single reader task.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::dictionary::{DICTIONARY, DICTIONARY_ID};
use crate::Error;

/// Header list as carried by SYN_STREAM, SYN_REPLY and HEADERS: lowercase names, one pair per value.
pub type Headers = Vec<(String, String)>;

/// Refuse header blocks that inflate beyond this many bytes (a zlib bomb guard).
pub const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Serializes headers into an uncompressed name/value block. Names are lowercased and repeated
/// names are merged into one NUL-separated value, keeping first-appearance order.
pub fn encode_block(headers: &[(impl AsRef<str>, impl AsRef<str>)]) -> Vec<u8> {
    let mut merged: Vec<(String, Vec<u8>)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.as_ref().to_ascii_lowercase();
        let value = value.as_ref().as_bytes();
        match merged.iter_mut().find(|(n, _)| *n == name) {
            Some((_, existing)) => {
                existing.push(0);
                existing.extend_from_slice(value);
            }
            None => merged.push((name, value.to_vec())),
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(merged.len() as u32).to_be_bytes());
    for (name, value) in &merged {
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Parses an uncompressed name/value block. Names are lowercased (SPDY requires lowercase; being
/// lenient costs nothing); NUL-separated values become separate pairs.
pub fn decode_block(block: &[u8]) -> Result<Headers, Error> {
    let mut rest = block;
    let count = take_u32(&mut rest)? as usize;
    // Each pair needs at least 8 bytes of lengths: bounds the allocation below.
    if count > rest.len() / 8 {
        return Err(Error::protocol(format!(
            "header block claims {count} pairs in {} bytes",
            block.len()
        )));
    }
    let mut headers = Vec::with_capacity(count);
    for _ in 0..count {
        let name = take_bytes(&mut rest)?;
        if name.is_empty() {
            return Err(Error::protocol("empty header name"));
        }
        let name = std::str::from_utf8(name)
            .map_err(|_| Error::protocol("header name is not UTF-8"))?
            .to_ascii_lowercase();
        let value = take_bytes(&mut rest)?;
        for part in value.split(|b| *b == 0) {
            headers.push((name.clone(), String::from_utf8_lossy(part).into_owned()));
        }
    }
    if !rest.is_empty() {
        return Err(Error::protocol("trailing bytes after header block"));
    }
    Ok(headers)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, Error> {
    let Some((head, tail)) = rest.split_first_chunk::<4>() else {
        return Err(Error::protocol("truncated header block"));
    };
    *rest = tail;
    Ok(u32::from_be_bytes(*head))
}

fn take_bytes<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], Error> {
    let len = take_u32(rest)? as usize;
    if len > rest.len() {
        return Err(Error::protocol("truncated header block"));
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Ok(head)
}

/// The outgoing zlib context of one connection.
pub struct HeaderCompressor {
    zlib: Compress,
}

impl Default for HeaderCompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderCompressor {
    pub fn new() -> HeaderCompressor {
        let mut zlib = Compress::new(Compression::default(), true);
        // Setting a dictionary on a fresh deflate stream cannot fail; if the backend ever refused,
        // the peer would reject our first block, which surfaces as a protocol error there.
        if let Err(err) = zlib.set_dictionary(&DICTIONARY) {
            tracing::error!(%err, "spdy: setting the header dictionary failed");
        }
        HeaderCompressor { zlib }
    }

    /// Encodes and compresses one header block, continuing the connection's zlib stream and ending
    /// with a sync flush.
    pub fn compress(
        &mut self,
        headers: &[(impl AsRef<str>, impl AsRef<str>)],
    ) -> Result<Vec<u8>, Error> {
        self.compress_raw(&encode_block(headers))
    }

    /// Compresses an already serialized block (tests use it to craft hostile blocks).
    pub fn compress_raw(&mut self, raw: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(raw.len() / 2 + 64);
        let mut pos = 0;
        loop {
            let before = self.zlib.total_in();
            self.zlib
                .compress_vec(&raw[pos..], &mut out, FlushCompress::Sync)
                .map_err(|err| Error::protocol(format!("header compression failed: {err}")))?;
            pos += (self.zlib.total_in() - before) as usize;
            // Done once all input is consumed and deflate had spare room to finish the flush.
            if pos >= raw.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            out.reserve(out.capacity().max(64));
        }
    }
}

/// The incoming zlib context of one connection.
pub struct HeaderDecompressor {
    zlib: Decompress,
}

impl Default for HeaderDecompressor {
    fn default() -> Self {
        Self::new()
    }
}

impl HeaderDecompressor {
    pub fn new() -> HeaderDecompressor {
        HeaderDecompressor {
            zlib: Decompress::new(true),
        }
    }

    /// Inflates one compressed block (the whole NV part of a frame) and parses it.
    pub fn decompress(&mut self, input: &[u8]) -> Result<Headers, Error> {
        let raw = self.inflate(input)?;
        decode_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out: Vec<u8> = Vec::with_capacity((input.len() * 4).clamp(256, MAX_HEADER_BLOCK));
        let mut pos = 0;
        loop {
            let before_in = self.zlib.total_in();
            let before_out = self.zlib.total_out();
            let result = self
                .zlib
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync);
            pos += (self.zlib.total_in() - before_in) as usize;
            let produced = self.zlib.total_out() - before_out;
            match result {
                Ok(Status::StreamEnd) => {
                    return Err(Error::protocol("peer ended its header compression stream"))
                }
                Ok(_) => {}
                Err(err) => match err.needs_dictionary() {
                    Some(DICTIONARY_ID) => {
                        self.zlib.set_dictionary(&DICTIONARY).map_err(|err| {
                            Error::protocol(format!("setting the header dictionary: {err}"))
                        })?;
                        continue;
                    }
                    Some(other) => {
                        return Err(Error::protocol(format!(
                            "header block wants unknown zlib dictionary {other:#x}"
                        )))
                    }
                    None => return Err(Error::protocol(format!("bad header block: {err}"))),
                },
            }
            if out.len() < out.capacity() {
                // Inflate stopped with room to spare: either all input is used up or it cannot progress.
                if pos >= input.len() {
                    return Ok(out);
                }
                if produced == 0 && self.zlib.total_in() == before_in {
                    return Err(Error::protocol("header block does not inflate"));
                }
                continue;
            }
            if out.len() >= MAX_HEADER_BLOCK {
                return Err(Error::protocol(format!(
                    "header block inflates beyond {MAX_HEADER_BLOCK} bytes"
                )));
            }
            let grow = out.capacity().min(MAX_HEADER_BLOCK - out.len());
            out.reserve_exact(grow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Headers {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn block_round_trip_merges_and_lowercases() {
        let raw = encode_block(&[
            ("StreamType", "stdin"),
            ("x", "1"),
            ("streamtype", "b"),
            ("e", ""),
        ]);
        let decoded = decode_block(&raw).unwrap();
        assert_eq!(
            decoded,
            pairs(&[
                ("streamtype", "stdin"),
                ("streamtype", "b"),
                ("x", "1"),
                ("e", "")
            ])
        );
        // Exactly three pairs on the wire: the repeated name was merged with a NUL.
        assert_eq!(&raw[..4], &3u32.to_be_bytes());
    }

    #[test]
    fn stateful_context_across_blocks() {
        let mut tx = HeaderCompressor::new();
        let mut rx = HeaderDecompressor::new();
        let blocks: Vec<Headers> = (0..5)
            .map(|i| {
                pairs(&[
                    (
                        "streamtype",
                        ["error", "stdin", "stdout", "stderr", "resize"][i],
                    ),
                    ("port", "8080"),
                    ("requestid", &i.to_string()),
                ])
            })
            .collect();
        let compressed: Vec<Vec<u8>> = blocks.iter().map(|b| tx.compress(b).unwrap()).collect();
        // Later blocks refer back to earlier ones, so they must be smaller than the first.
        assert!(compressed[4].len() < compressed[0].len());
        // The first block carries the SPDY dictionary id.
        assert_eq!(&compressed[0][2..6], &DICTIONARY_ID.to_be_bytes());
        for (block, wire) in blocks.iter().zip(&compressed) {
            assert_eq!(&rx.decompress(wire).unwrap(), block);
        }
        // A fresh context cannot decode a later block alone: it really is one stream.
        assert!(HeaderDecompressor::new()
            .decompress(&compressed[3])
            .is_err());
    }

    #[test]
    fn decodes_block_from_independent_implementation() {
        // The compressed name/value block of a SPDY/3 SYN_STREAM test vector from Chromium's
        // spdy_framer_test (its own zlib context, 2 KiB window, SPDY dictionary).
        let wire: &[u8] = &[
            0x38, 0xea, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x50, 0xc2, 0x4b, 0x4a, 0x04,
            0xe5, 0x0b, 0x66, 0x80, 0x00, 0x4a, 0xcb, 0xcf, 0x07, 0x08, 0x20, 0x10, 0x95, 0x96,
            0x9f, 0x0f, 0xa2, 0x00, 0x02, 0x28, 0x29, 0xb1, 0x08, 0x20, 0x80, 0x00, 0x00, 0x00,
            0x00, 0xff, 0xff,
        ];
        let headers = HeaderDecompressor::new().decompress(wire).unwrap();
        assert_eq!(headers, pairs(&[("bar", "foo"), ("foo", "bar")]));
    }

    #[test]
    fn decodes_stateful_blocks_from_c_zlib() {
        // Two consecutive blocks from one C zlib deflate context (level 9, as spdystream uses,
        // SPDY dictionary, sync flush after each): the second refers back into the first.
        let first: &[u8] = &[
            0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xe5, 0x0e, 0x70, 0x3a, 0x2b, 0x29, 0x4a,
            0x4d, 0xcc, 0x85, 0x16, 0x25, 0xac, 0xa9, 0xa0, 0x80, 0x86, 0x14, 0xcb, 0x45, 0xa0,
            0x24, 0xcc, 0x64, 0x61, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let second: &[u8] = &[
            0xc2, 0xae, 0xb0, 0xb8, 0x04, 0x98, 0x79, 0x50, 0x15, 0x02, 0x00, 0x00, 0x00, 0xff,
            0xff,
        ];
        let mut rx = HeaderDecompressor::new();
        assert_eq!(
            rx.decompress(first).unwrap(),
            pairs(&[("streamtype", "error"), ("port", "80")])
        );
        assert_eq!(
            rx.decompress(second).unwrap(),
            pairs(&[("streamtype", "stdin"), ("port", "80")])
        );
    }

    #[test]
    fn hostile_blocks_are_errors() {
        assert!(decode_block(&[0, 0, 0]).is_err());
        assert!(decode_block(&[0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(decode_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        assert!(HeaderDecompressor::new()
            .decompress(b"not zlib at all")
            .is_err());
        // A block inflating past the limit.
        let mut raw = 1u32.to_be_bytes().to_vec();
        raw.extend_from_slice(&1u32.to_be_bytes());
        raw.push(b'a');
        let big = MAX_HEADER_BLOCK as u32 + 10;
        raw.extend_from_slice(&big.to_be_bytes());
        raw.resize(raw.len() + big as usize, b'x');
        let wire = HeaderCompressor::new().compress_raw(&raw).unwrap();
        let err = HeaderDecompressor::new().decompress(&wire).unwrap_err();
        assert!(err.to_string().contains("inflates beyond"), "{err}");
    }
}
