//! The zlib preset dictionary of SPDY/3 header blocks (draft 3, section 2.6.10.1).
//!
//! The dictionary is a run of length-prefixed (32-bit big-endian) common header names and values,
//! followed by a blob of common status lines, dates and media types. It is built here at compile time
//! from that structure, which is easier to review than 1423 hex bytes; the unit tests pin its length
//! and its Adler-32 checksum (the DICTID every SPDY/3 zlib stream carries in its header).

/// Length-prefixed entries, in dictionary order.
const WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The raw tail of the dictionary (no length prefixes).
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information",
    "204 No Content",
    "301 Moved Permanently",
    "400 Bad Request",
    "401 Unauthorized",
    "403 Forbidden",
    "404 Not Found",
    "500 Internal Server Error",
    "501 Not Implemented",
    "503 Service Unavailable",
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,",
    "text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdch",
    "charset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

const fn dictionary_len() -> usize {
    let mut len = TAIL.len();
    let mut i = 0;
    while i < WORDS.len() {
        len += 4 + WORDS[i].len();
        i += 1;
    }
    len
}

/// Length of the SPDY/3 dictionary in bytes.
pub const DICTIONARY_LEN: usize = dictionary_len();

const fn build() -> [u8; DICTIONARY_LEN] {
    let mut out = [0u8; DICTIONARY_LEN];
    let mut pos = 0;
    let mut i = 0;
    while i < WORDS.len() {
        let word = WORDS[i].as_bytes();
        let len = (word.len() as u32).to_be_bytes();
        let mut j = 0;
        while j < 4 {
            out[pos] = len[j];
            pos += 1;
            j += 1;
        }
        j = 0;
        while j < word.len() {
            out[pos] = word[j];
            pos += 1;
            j += 1;
        }
        i += 1;
    }
    let tail = TAIL.as_bytes();
    let mut j = 0;
    while j < tail.len() {
        out[pos] = tail[j];
        pos += 1;
        j += 1;
    }
    out
}

/// The SPDY/3 header compression dictionary, byte-exact.
pub static DICTIONARY: [u8; DICTIONARY_LEN] = build();

/// Adler-32 of [`DICTIONARY`]: the DICTID in the zlib header of every SPDY/3 header stream.
pub const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

#[cfg(test)]
mod tests {
    use super::*;

    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65521;
            b = (b + a) % 65521;
        }
        (b << 16) | a
    }

    #[test]
    fn dictionary_is_byte_exact() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler32(&DICTIONARY), DICTIONARY_ID);
        assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
        assert_eq!(&DICTIONARY[DICTIONARY_LEN - 7..], b",enq=0.");
    }
}
