//! HTTP/1.x message heads: finding their end incrementally, and parsing them.

use crate::types::{PacketNo, Timestamp};

/// One header field as on the wire (name in its original case, value raw).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Name in its original case.
    pub name: String,
    /// Value bytes as on the wire.
    pub value: Vec<u8>,
}

/// A request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Request method as on the wire (normally `GET`).
    pub method: String,
    /// Request target as on the wire.
    pub uri: String,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Every header, in wire order.
    pub headers: Vec<Header>,
    /// The exact head bytes, including the blank line that ends it.
    pub raw: Vec<u8>,
    /// Packets that carried the head, in order, without repeats.
    pub packets: Vec<PacketNo>,
    /// Timestamp of the head's first byte.
    pub ts: Timestamp,
}

/// A response head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Reason phrase as on the wire (may be empty).
    pub reason: String,
    /// Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0.
    pub version: u8,
    /// Every header, in wire order.
    pub headers: Vec<Header>,
    /// The exact head bytes, including the blank line that ends it.
    pub raw: Vec<u8>,
    /// Packets that carried the head, in order, without repeats.
    pub packets: Vec<PacketNo>,
    /// Timestamp of the head's first byte.
    pub ts: Timestamp,
}

fn all<'a>(headers: &'a [Header], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

impl Request {
    /// Value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }
    /// Values of every header called `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        all(&self.headers, name)
    }
}

impl Response {
    /// Value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }
    /// Values of every header called `name` (case-insensitive), in order.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        all(&self.headers, name)
    }
}

/// True if any comma-separated element of any `values` equals `token`
/// (case-insensitive, surrounding whitespace ignored).
pub(crate) fn has_token<'a>(values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    let mut values = values;
    values.any(|v| {
        v.split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Result of adding bytes to a [`HeadBuf`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadStep {
    NeedMore,
    /// The head is complete; `consumed` bytes of the data just pushed belong to it.
    Complete {
        consumed: usize,
    },
    /// The head exceeded the limit without ending.
    TooLarge,
}

/// Accumulates one head, remembering how far it has searched for the blank
/// line, so a head arriving one byte per segment is still scanned once.
#[derive(Debug, Default)]
pub(crate) struct HeadBuf {
    buf: Vec<u8>,
    scanned: usize,
    packets: Vec<PacketNo>,
    ts: Option<Timestamp>,
}

/// Bytes of a head in progress, with where it came from.
pub(crate) struct RawHead {
    pub raw: Vec<u8>,
    pub packets: Vec<PacketNo>,
    pub ts: Timestamp,
}

impl HeadBuf {
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The bytes collected so far (for sniffing the start of a stream).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Adds bytes; at most `limit` bytes of head are ever held.
    pub fn push(&mut self, data: &[u8], limit: usize, packet: PacketNo, ts: Timestamp) -> HeadStep {
        if data.is_empty() {
            return HeadStep::NeedMore;
        }
        let old = self.buf.len();
        let take = data.len().min(limit.saturating_sub(old));
        self.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        if self.ts.is_none() {
            self.ts = Some(ts);
        }
        if self.packets.last() != Some(&packet) {
            self.packets.push(packet);
        }
        let (end, scanned) = find_head_end(&self.buf, self.scanned);
        self.scanned = scanned;
        match end {
            Some(end) => {
                self.buf.truncate(end);
                HeadStep::Complete {
                    consumed: end - old,
                }
            }
            None if self.buf.len() >= limit => HeadStep::TooLarge,
            None => HeadStep::NeedMore,
        }
    }

    /// Hands over the completed head and resets for the next one.
    pub fn take(&mut self) -> RawHead {
        let head = std::mem::take(self);
        RawHead {
            raw: head.buf,
            packets: head.packets,
            ts: head.ts.unwrap_or_default(),
        }
    }
}

/// Finds the end of a head (just past the blank line, CRLF or bare LF) in
/// `buf`, searching from `from`. Returns the end if found, and where the next
/// search should resume.
fn find_head_end(buf: &[u8], from: usize) -> (Option<usize>, usize) {
    let mut i = from;
    loop {
        let Some(rel) = buf.get(i..).and_then(|rest| memchr::memchr(b'\n', rest)) else {
            return (None, buf.len());
        };
        let lf = i + rel;
        match (buf.get(lf + 1), buf.get(lf + 2)) {
            (Some(b'\n'), _) => return (Some(lf + 2), lf + 2),
            (Some(b'\r'), Some(b'\n')) => return (Some(lf + 3), lf + 3),
            // Cannot tell yet: look at this line feed again next time.
            (None, _) | (Some(b'\r'), None) => return (None, lf),
            _ => i = lf + 1,
        }
    }
}

/// Why a head could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    TooManyHeaders,
    Malformed(String),
}

fn header_slots(raw: &[u8], max_headers: usize) -> usize {
    // One header per line at most: never more slots than lines, nor than the limit.
    memchr::memchr_iter(b'\n', raw).count().min(max_headers)
}

fn own_headers(headers: &[httparse::Header<'_>]) -> Vec<Header> {
    headers
        .iter()
        .map(|h| Header {
            name: h.name.to_string(),
            value: h.value.to_vec(),
        })
        .collect()
}

fn describe(e: httparse::Error) -> String {
    format!("unparsable head: {e}")
}

pub(crate) fn parse_request(head: RawHead, max_headers: usize) -> Result<Request, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; header_slots(&head.raw, max_headers)];
    let mut req = httparse::Request::new(&mut slots);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_multiple_spaces_in_request_line_delimiters(true);
    match cfg.parse_request(&mut req, &head.raw) {
        Ok(httparse::Status::Complete(n)) if n == head.raw.len() => {}
        Ok(_) => {
            return Err(HeadError::Malformed(
                "head does not end where its blank line is".into(),
            ))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(describe(e))),
    }
    Ok(Request {
        method: req.method.unwrap_or_default().to_string(),
        uri: req.path.unwrap_or_default().to_string(),
        version: req.version.unwrap_or_default(),
        headers: own_headers(req.headers),
        raw: head.raw,
        packets: head.packets,
        ts: head.ts,
    })
}

pub(crate) fn parse_response(head: RawHead, max_headers: usize) -> Result<Response, HeadError> {
    let mut slots = vec![httparse::EMPTY_HEADER; header_slots(&head.raw, max_headers)];
    let mut resp = httparse::Response::new(&mut slots);
    let mut cfg = httparse::ParserConfig::default();
    cfg.allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .allow_multiple_spaces_in_response_status_delimiters(true);
    match cfg.parse_response(&mut resp, &head.raw) {
        Ok(httparse::Status::Complete(n)) if n == head.raw.len() => {}
        Ok(_) => {
            return Err(HeadError::Malformed(
                "head does not end where its blank line is".into(),
            ))
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Malformed(describe(e))),
    }
    Ok(Response {
        status: resp.code.unwrap_or_default(),
        reason: resp.reason.unwrap_or_default().to_string(),
        version: resp.version.unwrap_or_default(),
        headers: own_headers(resp.headers),
        raw: head.raw,
        packets: head.packets,
        ts: head.ts,
    })
}

/// Whether `buf` can be the start of a request line: a method token of
/// capital letters (and `-`/`_`), then a space. `None`: too few bytes to tell.
pub(crate) fn looks_like_request(buf: &[u8]) -> Option<bool> {
    const MAX_METHOD: usize = 24;
    for (i, &b) in buf.iter().enumerate().take(MAX_METHOD + 1) {
        match b {
            b' ' => return Some(i > 0),
            b'A'..=b'Z' | b'-' | b'_' => {}
            _ => return Some(false),
        }
    }
    if buf.len() > MAX_METHOD {
        Some(false)
    } else {
        None
    }
}

/// Whether the first line of `raw` ends in an `HTTP/1.x` version: the only
/// requests that can carry a WebSocket upgrade (RFC 6455 section 4.1).
pub(crate) fn is_http1_request_line(raw: &[u8]) -> bool {
    let line = raw.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    version.len() == 8
        && version.starts_with(b"HTTP/1.")
        && version.get(7).is_some_and(u8::is_ascii_digit)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http1_request_lines_are_told_from_other_protocols() {
        assert!(super::is_http1_request_line(
            b"GET /chat HTTP/1.1\r\nHost: a\r\n\r\n"
        ));
        assert!(super::is_http1_request_line(b"GET / HTTP/1.0\n\n"));
        assert!(!super::is_http1_request_line(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        ));
        assert!(!super::is_http1_request_line(
            b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"
        ));
        assert!(!super::is_http1_request_line(
            b"DESCRIBE rtsp://x RTSP/1.0\r\n\r\n"
        ));
        assert!(!super::is_http1_request_line(b"GET / HTTP/1.1x\r\n\r\n"));
    }

    use super::*;

    fn push_all(hb: &mut HeadBuf, data: &[u8], limit: usize) -> HeadStep {
        hb.push(data, limit, 1, Timestamp::default())
    }

    #[test]
    fn finds_crlf_and_bare_lf_heads() {
        let mut hb = HeadBuf::default();
        assert_eq!(
            push_all(&mut hb, b"GET / HTTP/1.1\r\nA: b\r\n\r\nrest", 1000),
            HeadStep::Complete { consumed: 24 }
        );
        assert_eq!(hb.take().raw, b"GET / HTTP/1.1\r\nA: b\r\n\r\n");
        assert!(hb.is_empty());
        assert_eq!(
            push_all(&mut hb, b"GET / HTTP/1.1\nA: b\n\nxx", 1000),
            HeadStep::Complete { consumed: 21 }
        );
    }

    #[test]
    fn one_byte_at_a_time_matches_whole() {
        let head = b"GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n";
        let mut hb = HeadBuf::default();
        for (i, b) in head.iter().enumerate() {
            let step = hb.push(
                std::slice::from_ref(b),
                1000,
                i as u64 + 1,
                Timestamp::new(i as i64, 0),
            );
            if i + 1 == head.len() {
                assert_eq!(step, HeadStep::Complete { consumed: 1 });
            } else {
                assert_eq!(step, HeadStep::NeedMore, "byte {i}");
            }
        }
        let raw = hb.take();
        assert_eq!(raw.raw, head);
        assert_eq!(raw.packets.len(), head.len());
        assert_eq!(raw.ts, Timestamp::new(0, 0));
    }

    #[test]
    fn limit_is_enforced_without_keeping_excess() {
        let mut hb = HeadBuf::default();
        assert_eq!(push_all(&mut hb, &[b'a'; 50], 64), HeadStep::NeedMore);
        assert_eq!(push_all(&mut hb, &[b'a'; 50], 64), HeadStep::TooLarge);
        assert_eq!(hb.bytes().len(), 64);
        // A head ending exactly at the limit is accepted.
        let mut hb = HeadBuf::default();
        let mut head = vec![b'a'; 60];
        head.extend_from_slice(b"\r\n\r\n");
        assert_eq!(
            push_all(&mut hb, &head, 64),
            HeadStep::Complete { consumed: 64 }
        );
    }

    #[test]
    fn parses_request_and_response() {
        let raw = b"GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nupgrade: other\r\n\r\n";
        let req = parse_request(
            RawHead {
                raw: raw.to_vec(),
                packets: vec![4],
                ts: Timestamp::new(1, 2),
            },
            64,
        )
        .unwrap();
        assert_eq!(
            (req.method.as_str(), req.uri.as_str(), req.version),
            ("GET", "/chat?x=1", 1)
        );
        assert_eq!(req.header("UPGRADE"), Some(&b"websocket"[..]));
        assert_eq!(
            req.header_all("upgrade").collect::<Vec<_>>(),
            vec![&b"websocket"[..], &b"other"[..]]
        );
        assert_eq!(req.headers[0].name, "Host");
        assert_eq!(req.raw, raw);

        let raw = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n";
        let resp = parse_response(
            RawHead {
                raw: raw.to_vec(),
                packets: vec![5],
                ts: Timestamp::default(),
            },
            64,
        )
        .unwrap();
        assert_eq!(
            (resp.status, resp.reason.as_str(), resp.version),
            (101, "Switching Protocols", 1)
        );
        assert!(has_token(resp.header_all("upgrade"), "WebSocket"));
    }

    #[test]
    fn too_many_headers_and_malformed() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..10 {
            raw.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        raw.extend_from_slice(b"\r\n");
        let head = || RawHead {
            raw: raw.clone(),
            packets: vec![],
            ts: Timestamp::default(),
        };
        assert_eq!(parse_request(head(), 5), Err(HeadError::TooManyHeaders));
        assert!(parse_request(head(), 10).is_ok());
        let bad = RawHead {
            raw: b"GET / HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
            packets: vec![],
            ts: Timestamp::default(),
        };
        assert!(matches!(
            parse_request(bad, 10),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn request_sniffing() {
        assert_eq!(looks_like_request(b"GET / HTTP/1.1"), Some(true));
        assert_eq!(looks_like_request(b"M-SEARCH * HTTP/1.1"), Some(true));
        assert_eq!(looks_like_request(b"GE"), None);
        assert_eq!(looks_like_request(b""), None);
        assert_eq!(looks_like_request(b"\x16\x03\x01"), Some(false));
        assert_eq!(looks_like_request(b"HTTP/1.1 200 OK"), Some(false));
        assert_eq!(looks_like_request(b" GET"), Some(false));
        assert_eq!(looks_like_request(&[b'A'; 40]), Some(false));
    }

    #[test]
    fn token_lists() {
        let v: [&[u8]; 2] = [b"keep-alive, Upgrade", b"x"];
        assert!(has_token(v.iter().copied(), "upgrade"));
        assert!(!has_token(v.iter().copied(), "close"));
        let v: [&[u8]; 1] = [b"upgraded"];
        assert!(!has_token(v.iter().copied(), "upgrade"));
    }
}
