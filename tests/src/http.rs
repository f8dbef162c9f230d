//! A minimal HTTP/1.1 client over `std::net`, for requests no well-behaved client would send
//! (malformed JSON, oversized bodies, wrong kinds) and for reading exactly what the server
//! answered: status, headers and body, with chunked transfer decoding.
//!
//! Every request uses `Connection: close`, so the answer ends where the connection does.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

use thiserror::Error;

const TIMEOUT: Duration = Duration::from_secs(30);
/// Answers larger than this are refused rather than buffered.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// The HTTP methods the tests use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// What went wrong talking to the server.
#[derive(Debug, Error)]
pub enum HttpError {
    #[error("connecting to or talking with 127.0.0.1:{port}")]
    Io {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

/// One answer, body already de-chunked.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or `Null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Sends one request to `127.0.0.1:port` and reads the whole answer.
pub fn request(
    port: u16,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<HttpResponse, HttpError> {
    let io = |source| HttpError::Io { port, source };
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).map_err(io)?;
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Accept: application/json\r\nUser-Agent: kube-e2e\r\nContent-Length: {}\r\n",
        method.as_str(),
        body.len()
    );
    if let Some(ct) = content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).map_err(io)?;
    // The server may answer (413) and close before reading a large body: a failed write is
    // then not an error, the answer is what counts.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let read = (&mut stream).take(MAX_RESPONSE_BYTES).read_to_end(&mut raw);
    if let Err(err) = read {
        // A reset after a complete answer (the server closed with our body unread) still
        // leaves a usable answer.
        if raw.is_empty() {
            return Err(io(err));
        }
    }
    parse_response(&raw)
}

/// Parses a complete HTTP/1.1 answer (status line, headers, body up to the connection's end).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(what.to_string());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| malformed("no end of headers"))?;
    let head = std::str::from_utf8(raw.get(..end).unwrap_or_default())
        .map_err(|_| malformed("headers are not UTF-8"))?;
    let rest = raw.get(end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(&format!("status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| malformed(&format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| malformed(&format!("header line {line:?}")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match length {
            Some(n) => rest.get(..n).unwrap_or(rest).to_vec(),
            None => rest.to_vec(),
        }
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body (extensions and trailers ignored).
pub fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, HttpError> {
    let malformed = |what: &str| HttpError::Malformed(format!("chunked body: {what}"));
    let mut body = Vec::new();
    loop {
        let line_end = find(raw, b"\r\n").ok_or_else(|| malformed("no chunk size line"))?;
        let line = std::str::from_utf8(raw.get(..line_end).unwrap_or_default())
            .map_err(|_| malformed("size line is not UTF-8"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| malformed(&format!("bad size {size_text:?}")))?;
        raw = raw.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(body);
        }
        let chunk = raw
            .get(..size)
            .ok_or_else(|| malformed("chunk shorter than its size"))?;
        body.extend_from_slice(chunk);
        raw = raw
            .get(size..)
            .and_then(|r| r.strip_prefix(b"\r\n"))
            .ok_or_else(|| malformed("chunk not followed by CRLF"))?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunk_table() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"0\r\n\r\n", Some(b"")),
            (b"3\r\nabc\r\n0\r\n\r\n", Some(b"abc")),
            (b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n", Some(b"abcde")),
            (b"A\r\n0123456789\r\n0\r\n\r\n", Some(b"0123456789")),
            (b"5\r\nabc", None),
            (b"zz\r\nabc\r\n", None),
            (b"3\r\nabcX\r\n0\r\n\r\n", None),
            (b"", None),
        ];
        for (raw, want) in cases {
            let got = dechunk(raw).ok();
            assert_eq!(got.as_deref(), *want, "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn parse_response_reads_status_headers_and_body() -> anyhow::Result<()> {
        let raw = b"HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\n\
                    Content-Length: 2\r\n\r\n{}trailing";
        let r = parse_response(raw)?;
        assert_eq!(r.status, 409);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.body, b"{}");

        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        let r = parse_response(raw)?;
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "ok");
        Ok(())
    }

    #[test]
    fn parse_response_rejects_garbage() {
        for raw in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(
                parse_response(raw).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
