//! `sessions.har` of the export directory: HAR 1.2 with one entry per
//! WebSocket session, in Chrome DevTools' form (`_resourceType: "websocket"`,
//! `_webSocketMessages`).
//!
//! The HAR is rendered from the export's own files (the raw handshake and
//! `messages.jsonl` of each session), read back one line at a time, so
//! nothing of a session's traffic has to stay in memory until the end of the
//! run.

use crate::session::{export_names, ManifestSession, MessageRecord};
use crate::types::{Dir, Timestamp};
use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The HAR writer emits no anomalies.
pub const ANOMALIES: &[(&str, &str)] = &[];

/// Bytes of a handshake file read back for the HAR. The handshake files hold
/// what the HTTP stage accepted, far below this; the cap only guards against
/// a file replaced behind our back.
pub const MAX_HEAD_BYTES: u64 = 1 << 20;

#[derive(Serialize)]
struct Creator {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct NameValue {
    name: String,
    value: String,
}

#[derive(Serialize)]
struct Empty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    method: String,
    url: String,
    http_version: String,
    headers: Vec<NameValue>,
    query_string: Vec<NameValue>,
    cookies: Vec<NameValue>,
    headers_size: u64,
    body_size: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Content {
    size: u64,
    mime_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    status: u16,
    status_text: String,
    http_version: String,
    headers: Vec<NameValue>,
    cookies: Vec<NameValue>,
    content: Content,
    #[serde(rename = "redirectURL")]
    redirect_url: &'static str,
    headers_size: u64,
    body_size: u64,
}

#[derive(Serialize)]
struct Timings {
    send: u64,
    wait: u64,
    receive: u64,
}

/// An entry without `_webSocketMessages`, which are streamed after it.
#[derive(Serialize)]
struct EntryHead {
    #[serde(rename = "startedDateTime")]
    started: String,
    time: f64,
    request: Request,
    response: Response,
    cache: Empty,
    timings: Timings,
    #[serde(rename = "serverIPAddress")]
    server_ip: String,
    comment: String,
    #[serde(rename = "_resourceType")]
    resource_type: &'static str,
}

#[derive(Serialize)]
struct WsMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    time: f64,
    opcode: u8,
    data: &'a str,
}

/// Writes the whole HAR for `sessions`, reading each one's files under `root`.
pub fn write_har<'a>(
    out: &mut dyn Write,
    root: &Path,
    sessions: impl IntoIterator<Item = &'a ManifestSession>,
) -> io::Result<()> {
    out.write_all(b"{\"log\":{\"version\":\"1.2\",\"creator\":")?;
    serde_json::to_writer(
        &mut *out,
        &Creator {
            name: "wssniff",
            version: env!("CARGO_PKG_VERSION"),
        },
    )?;
    out.write_all(b",\"pages\":[],\"entries\":[")?;
    let mut line = Vec::new();
    for (i, s) in sessions.into_iter().enumerate() {
        out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
        write_entry(out, root, s, &mut line)?;
    }
    out.write_all(b"\n]}}\n")
}

fn write_entry(
    out: &mut dyn Write,
    root: &Path,
    s: &ManifestSession,
    line: &mut Vec<u8>,
) -> io::Result<()> {
    let dir = root.join(&s.path);
    let req = parse_head(&read_head(&dir.join(export_names::REQUEST))?);
    let resp = parse_head(&read_head(&dir.join(export_names::RESPONSE))?);
    let duration_ms = (s.end.secs_since(s.start) * 1000.0).max(0.0);
    let [method, _, req_version] = req.first;
    let [resp_version, status, status_text] = resp.first;
    let head = EntryHead {
        started: har_datetime(s.start),
        time: duration_ms,
        request: Request {
            method,
            url: ws_url(s),
            http_version: req_version,
            headers: req.headers,
            query_string: Vec::new(),
            cookies: Vec::new(),
            headers_size: req.size,
            body_size: 0,
        },
        response: Response {
            status: status.parse().unwrap_or(101),
            status_text,
            http_version: resp_version,
            headers: resp.headers,
            cookies: Vec::new(),
            content: Content {
                size: 0,
                mime_type: "",
            },
            redirect_url: "",
            headers_size: resp.size,
            body_size: 0,
        },
        cache: Empty {},
        timings: Timings {
            send: 0,
            wait: 0,
            receive: 0,
        },
        server_ip: host_of(&s.server).to_owned(),
        comment: format!("wssniff session {} ({} -> {})", s.id, s.client, s.server),
        resource_type: "websocket",
    };
    let mut obj = serde_json::to_vec(&head)?;
    // Reopen the object to append the messages, which are streamed.
    obj.pop();
    out.write_all(&obj)?;
    out.write_all(b",\"_webSocketMessages\":[")?;
    write_messages(out, &dir.join(export_names::MESSAGES), line)?;
    out.write_all(b"]}")
}

fn write_messages(out: &mut dyn Write, path: &Path, line: &mut Vec<u8>) -> io::Result<()> {
    let mut reader = BufReader::new(open_nofollow(path)?);
    let mut first = true;
    let mut lineno = 0u64;
    loop {
        line.clear();
        // Bytes, not a String: serde_json checks the UTF-8 of what it
        // parses, and a separate check of every line was a twentieth of an
        // export.
        if reader.read_until(b'\n', line)? == 0 {
            return Ok(());
        }
        lineno += 1;
        if line.trim_ascii().is_empty() {
            continue;
        }
        let rec: MessageRecord = serde_json::from_slice(line).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} line {lineno}: {e}", path.display()),
            )
        })?;
        let msg = WsMessage {
            // Chrome's view is the client's: what it sent, what it received.
            kind: match rec.dir {
                Dir::C2s => "send",
                Dir::S2c => "receive",
            },
            time: epoch_secs(rec.ts),
            opcode: rec.opcode.as_u8(),
            data: rec.text.as_deref().or(rec.b64.as_deref()).unwrap_or(""),
        };
        out.write_all(if first { b"\n" } else { b",\n" })?;
        first = false;
        serde_json::to_writer(&mut *out, &msg)?;
    }
}

fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

fn read_head(path: &Path) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    open_nofollow(path)?
        .take(MAX_HEAD_BYTES)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// `ws://host/uri` (only plaintext WebSocket is ever seen on the wire).
fn ws_url(s: &ManifestSession) -> String {
    if s.uri.contains("://") {
        return s.uri.clone();
    }
    let host = s.host.as_deref().unwrap_or(&s.server);
    let sep = if s.uri.starts_with('/') { "" } else { "/" };
    format!("ws://{host}{sep}{}", s.uri)
}

/// The address part of `ip:port` / `[v6]:port`.
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A handshake head as HAR wants it: start line parts and headers.
#[derive(Debug, PartialEq)]
struct Head {
    /// Request: method, target, version. Response: version, status, reason.
    first: [String; 3],
    headers: Vec<NameValue>,
    /// Bytes up to and including the blank line.
    size: u64,
}

impl std::fmt::Debug for NameValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.name, self.value)
    }
}

impl PartialEq for NameValue {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.value == o.value
    }
}

/// Lenient on purpose: the HTTP stage already decided this is a handshake,
/// and the HAR must show whatever it was, so nothing here can fail.
fn parse_head(raw: &[u8]) -> Head {
    let end = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or(raw));
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let mut first: [String; 3] = Default::default();
    if let Some(start) = lines.next() {
        for (slot, part) in first.iter_mut().zip(start.splitn(3, ' ')) {
            *slot = part.to_owned();
        }
    }
    let mut headers: Vec<NameValue> = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        if l.starts_with([' ', '\t']) {
            // obs-fold: a continuation of the previous header's value.
            if let Some(h) = headers.last_mut() {
                h.value.push(' ');
                h.value.push_str(l.trim());
            }
        } else if let Some((name, value)) = l.split_once(':') {
            headers.push(NameValue {
                name: name.trim().to_owned(),
                value: value.trim().to_owned(),
            });
        }
    }
    Head {
        first,
        headers,
        size: end as u64,
    }
}

/// ISO 8601 with milliseconds, as Chrome writes `startedDateTime`: some HAR
/// readers (JavaScript's `Date`) reject nanosecond fractions.
fn har_datetime(t: Timestamp) -> String {
    let s = t.rfc3339();
    match s.find('.').and_then(|dot| s.get(..dot + 4)) {
        Some(ms) => format!("{ms}Z"),
        None => s,
    }
}

fn epoch_secs(t: Timestamp) -> f64 {
    t.secs as f64 + t.nanos as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn har_datetime_is_milliseconds() {
        assert_eq!(
            har_datetime(Timestamp::new(1_700_000_000, 123_456_789)),
            "2023-11-14T22:13:20.123Z"
        );
    }

    #[test]
    fn parse_head_reads_start_line_headers_and_folds() {
        let raw = b"GET /chat?x=1 HTTP/1.1\r\nHost: example\r\nX-Long: a\r\n  b\r\nbogus line\r\nSec-WebSocket-Key:k==\r\n\r\nleftover";
        let h = parse_head(raw);
        assert_eq!(
            h.first,
            ["GET".to_string(), "/chat?x=1".into(), "HTTP/1.1".into()]
        );
        let pairs: Vec<(&str, &str)> = h
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.value.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("Host", "example"),
                ("X-Long", "a b"),
                ("Sec-WebSocket-Key", "k==")
            ]
        );
        assert_eq!(h.size as usize, raw.len() - b"leftover".len());
    }

    #[test]
    fn parse_head_never_fails_on_garbage() {
        for raw in [
            &b""[..],
            b"\xff\xfe",
            b"HTTP/1.1",
            b"\n\n\n",
            b": :\r\n\r\n",
        ] {
            let h = parse_head(raw);
            assert!(h.size as usize <= raw.len());
        }
        let h = parse_head(b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n");
        assert_eq!(h.first[1], "101");
        assert_eq!(h.first[2], "Switching Protocols");
        assert_eq!(h.headers.len(), 1);
    }

    #[test]
    fn url_and_host() {
        let mut s = ManifestSession {
            uri: "/chat".into(),
            server: "[::1]:8765".into(),
            ..Default::default()
        };
        assert_eq!(ws_url(&s), "ws://[::1]:8765/chat");
        s.host = Some("example.org".into());
        assert_eq!(ws_url(&s), "ws://example.org/chat");
        s.uri = "ws://other/x".into();
        assert_eq!(ws_url(&s), "ws://other/x");
        assert_eq!(host_of("[::1]:8765"), "::1");
        assert_eq!(host_of("10.0.0.1:80"), "10.0.0.1");
    }
}
