//! The on-disk encoding of the embedded store's two kinds of record: the latest state of a key
//! (table `kv`) and one revision of history (table `log`). Hand-written, length-checked binary so
//! that a damaged record is a typed error, never a panic or a silently wrong value.
//!
//! ```text
//! state:  create_revision u64 | mod_revision u64 | value ...
//! event:  kind u8 | key_len u32 | key | create_revision u64
//!         | has_prev u8 [ | prev_create u64 | prev_mod u64 | prev_len u32 | prev ] | value ...
//! ```
//! All integers are big-endian. The event's `value` is empty for deletes.

use crate::{Error, KeyValue, Result, WatchEvent};

const KIND_CREATED: u8 = 1;
const KIND_MODIFIED: u8 = 2;
const KIND_DELETED: u8 = 3;

pub(crate) fn encode_state(create_revision: u64, mod_revision: u64, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + value.len());
    out.extend_from_slice(&create_revision.to_be_bytes());
    out.extend_from_slice(&mod_revision.to_be_bytes());
    out.extend_from_slice(value);
    out
}

pub(crate) fn decode_state(key: &[u8], bytes: &[u8]) -> Result<KeyValue> {
    let key = key_string(key)?;
    let mut reader = Reader::new(&key, bytes);
    let create_revision = reader.u64()?;
    let mod_revision = reader.u64()?;
    let value = reader.rest().to_vec();
    Ok(KeyValue {
        key,
        value,
        create_revision,
        mod_revision,
    })
}

/// Encodes a write event. `revision` is implied by the record's position in the log.
pub(crate) fn encode_event(event: &WatchEvent) -> Vec<u8> {
    let (kind, key, create_revision, value, prev) = match event {
        WatchEvent::Created(kv) => (
            KIND_CREATED,
            &kv.key,
            kv.create_revision,
            &kv.value[..],
            None,
        ),
        WatchEvent::Modified { current, prev } => (
            KIND_MODIFIED,
            &current.key,
            current.create_revision,
            &current.value[..],
            prev.as_ref(),
        ),
        WatchEvent::Deleted { key, prev, .. } => (
            KIND_DELETED,
            key,
            prev.as_ref().map_or(0, |p| p.create_revision),
            &[][..],
            prev.as_ref(),
        ),
        // Progress reports are never stored.
        WatchEvent::Progress { .. } => return Vec::new(),
    };
    let prev_len = prev.map_or(0, |p| 20 + p.value.len());
    let mut out = Vec::with_capacity(1 + 4 + key.len() + 8 + 1 + prev_len + value.len());
    out.push(kind);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&create_revision.to_be_bytes());
    match prev {
        Some(p) => {
            out.push(1);
            out.extend_from_slice(&p.create_revision.to_be_bytes());
            out.extend_from_slice(&p.mod_revision.to_be_bytes());
            out.extend_from_slice(&(p.value.len() as u32).to_be_bytes());
            out.extend_from_slice(&p.value);
        }
        None => out.push(0),
    }
    out.extend_from_slice(value);
    out
}

pub(crate) fn decode_event(revision: u64, bytes: &[u8]) -> Result<WatchEvent> {
    let context = format!("log@{revision}");
    let mut reader = Reader::new(&context, bytes);
    let kind = reader.u8()?;
    let key_len = reader.u32()? as usize;
    let key = key_string(reader.take(key_len)?)?;
    let create_revision = reader.u64()?;
    let prev = match reader.u8()? {
        0 => None,
        _ => {
            let prev_create = reader.u64()?;
            let prev_mod = reader.u64()?;
            let prev_len = reader.u32()? as usize;
            let prev_value = reader.take(prev_len)?.to_vec();
            Some(KeyValue {
                key: key.clone(),
                value: prev_value,
                create_revision: prev_create,
                mod_revision: prev_mod,
            })
        }
    };
    let value = reader.rest().to_vec();
    let current = |value| KeyValue {
        key: key.clone(),
        value,
        create_revision,
        mod_revision: revision,
    };
    match kind {
        KIND_CREATED => Ok(WatchEvent::Created(current(value))),
        KIND_MODIFIED => Ok(WatchEvent::Modified {
            current: current(value),
            prev,
        }),
        KIND_DELETED => Ok(WatchEvent::Deleted {
            key: key.clone(),
            revision,
            prev,
        }),
        other => Err(Error::Malformed {
            key: context,
            reason: format!("unknown event kind {other}"),
        }),
    }
}

/// The key's state just before `event`: what a list at an older revision must show.
pub(crate) fn state_before(event: &WatchEvent) -> Option<KeyValue> {
    match event {
        WatchEvent::Created(_) | WatchEvent::Progress { .. } => None,
        WatchEvent::Modified { prev, .. } | WatchEvent::Deleted { prev, .. } => prev.clone(),
    }
}

fn key_string(bytes: &[u8]) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Malformed {
        key: String::from_utf8_lossy(bytes).into_owned(),
        reason: "key is not UTF-8".into(),
    })
}

struct Reader<'a> {
    context: &'a str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(context: &'a str, bytes: &'a [u8]) -> Self {
        Reader { context, bytes }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(Error::Malformed {
                key: self.context.to_string(),
                reason: format!(
                    "record truncated: needed {n} bytes, {} left",
                    self.bytes.len()
                ),
            });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(buf))
    }

    fn u64(&mut self) -> Result<u64> {
        let mut buf = [0u8; 8];
        buf.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(buf))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: &str, create: u64, modified: u64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: value.as_bytes().to_vec(),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn events_round_trip() {
        let events = [
            WatchEvent::Created(kv("/a/b", "v1", 7, 7)),
            WatchEvent::Modified {
                current: kv("/a/b", "v2", 7, 9),
                prev: Some(kv("/a/b", "v1", 7, 7)),
            },
            WatchEvent::Deleted {
                key: "/a/b".into(),
                revision: 12,
                prev: Some(kv("/a/b", "v2", 7, 9)),
            },
        ];
        for event in events {
            let decoded = decode_event(event.revision(), &encode_event(&event)).unwrap();
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn states_round_trip() {
        let state = encode_state(3, 5, b"hello");
        assert_eq!(
            decode_state(b"/k", &state).unwrap(),
            kv("/k", "hello", 3, 5)
        );
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let full = encode_event(&WatchEvent::Modified {
            current: kv("/a/b", "v2", 7, 9),
            prev: Some(kv("/a/b", "v1", 7, 7)),
        });
        // Cut inside the fixed-size parts: every such cut must be refused.
        for cut in 0..(1 + 4 + 4 + 8 + 1 + 20) {
            assert!(decode_event(9, &full[..cut]).is_err(), "cut at {cut}");
        }
        assert!(decode_state(b"/k", &[0; 15]).is_err());
        let mut bad_kind = full.clone();
        bad_kind[0] = 99;
        assert!(decode_event(9, &bad_kind).is_err());
    }
}
