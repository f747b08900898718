//! The opening handshake, both roles: building the replayed request from the
//! recorded one, validating the target's 101, and answering a client.

use super::deflate::{self, ExtensionOffer, Negotiated};
use super::target::Target;
use super::transport::{is_timeout, Conn};
use super::ReplayError;
use crate::session::{DeflateRecord, ManifestSession};
use base64::Engine as _;
use std::io::Read;
use std::time::{Duration, Instant};

const MAX_HEADERS: usize = 256;

/// `Sec-WebSocket-Accept` for a key (RFC 6455 §4.2.2).
pub fn accept_key(key: &str) -> String {
    crate::http::accept_key(key.trim().as_bytes())
}

/// A fresh random `Sec-WebSocket-Key`.
pub fn fresh_key() -> String {
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 16]>())
}

/// `-H` and `--drop-header` edits, applied after regeneration.
#[derive(Clone, Debug, Default)]
pub struct HeaderEdits {
    /// Replace every header of that name (first position kept), or append.
    pub set: Vec<(String, String)>,
    /// Remove every header of that name.
    pub drop: Vec<String>,
}

impl HeaderEdits {
    /// Parses `Name: value`.
    pub fn parse_set(s: &str) -> Result<(String, String), String> {
        let (n, v) = s
            .split_once(':')
            .ok_or_else(|| format!("-H {s:?}: expected 'Name: value'"))?;
        let n = n.trim();
        if n.is_empty() || !n.bytes().all(is_token_byte) {
            return Err(format!("-H {s:?}: bad header name"));
        }
        if v.contains(['\r', '\n']) {
            return Err(format!("-H {s:?}: line breaks are not allowed in a value"));
        }
        Ok((n.to_string(), v.trim().to_string()))
    }

    fn apply(&self, headers: &mut Vec<(String, String)>) {
        headers.retain(|(n, _)| !self.drop.iter().any(|d| d.eq_ignore_ascii_case(n)));
        for (name, value) in &self.set {
            let mut seen = false;
            headers.retain_mut(|(n, v)| {
                if !n.eq_ignore_ascii_case(name) {
                    return true;
                }
                if seen {
                    return false;
                }
                seen = true;
                *v = value.clone();
                true
            });
            if !seen {
                headers.push((name.clone(), value.clone()));
            }
        }
    }
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// The request wsreplay sends as the client.
#[derive(Clone, Debug)]
pub struct ClientRequest {
    /// The request exactly as sent.
    pub bytes: Vec<u8>,
    /// Request target sent.
    pub uri: String,
    /// The key actually sent (after `-H` edits).
    pub key: String,
    /// Notes for the report (what was changed and why).
    pub notes: Vec<String>,
}

/// Parsed head of an HTTP message: start line parts and headers.
#[derive(Clone, Debug, Default)]
pub struct Head {
    /// Request method (empty for a response).
    pub method: String,
    /// Request target (empty for a response).
    pub uri: String,
    /// Response status code (0 for a request).
    pub status: u16,
    /// Response reason phrase (empty for a request).
    pub reason: String,
    /// Every header, in wire order and case.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first header named `name` (ASCII case-insensitive); None when absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header named `name` (ASCII case-insensitive), in wire order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether a comma-separated header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

fn headers_of(raw: &[httparse::Header<'_>]) -> Vec<(String, String)> {
    raw.iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect()
}

/// Parses a request head (`head` holds at least the whole head).
pub fn parse_request(head: &[u8]) -> Result<Head, String> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut hs);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => Ok(Head {
            method: req.method.unwrap_or_default().to_string(),
            uri: req.path.unwrap_or_default().to_string(),
            headers: headers_of(req.headers),
            ..Default::default()
        }),
        Ok(httparse::Status::Partial) => Err("incomplete HTTP request".into()),
        Err(e) => Err(format!("not an HTTP request: {e}")),
    }
}

/// Parses a response head.
pub fn parse_response(head: &[u8]) -> Result<Head, String> {
    let mut hs = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(head) {
        Ok(httparse::Status::Complete(_)) => Ok(Head {
            status: resp.code.unwrap_or_default(),
            reason: resp.reason.unwrap_or_default().to_string(),
            headers: headers_of(resp.headers),
            ..Default::default()
        }),
        Ok(httparse::Status::Partial) => Err("incomplete HTTP response".into()),
        Err(e) => Err(format!("not an HTTP response: {e}")),
    }
}

/// Builds the client's request: the recorded headers in their order, Host
/// rewritten to the target, the handshake headers regenerated with a fresh
/// key, only permessage-deflate kept among the offered extensions, then the
/// user's edits.
pub fn build_client_request(
    recorded: &[u8],
    meta: &ManifestSession,
    target: &Target,
    edits: &HeaderEdits,
) -> ClientRequest {
    let mut notes = Vec::new();
    let head = parse_request(recorded).unwrap_or_else(|e| {
        notes.push(format!(
            "recorded request unreadable ({e}); built one from the manifest"
        ));
        Head {
            uri: meta.uri.clone(),
            ..Default::default()
        }
    });
    let uri = match &target.path {
        Some(p) => p.clone(),
        None if head.uri.is_empty() => "/".into(),
        None => head.uri.clone(),
    };
    let key = fresh_key();
    let mut headers: Vec<(String, String)> = Vec::new();
    let mut seen = [false; 5];
    for (name, value) in &head.headers {
        let lower = name.to_ascii_lowercase();
        let regenerated = match lower.as_str() {
            "host" => Some((0, target.host_header())),
            "upgrade" => Some((1, "websocket".to_string())),
            "connection" => Some((2, "Upgrade".to_string())),
            "sec-websocket-key" => Some((3, key.clone())),
            "sec-websocket-version" => Some((4, "13".to_string())),
            _ => None,
        };
        if let Some((slot, v)) = regenerated {
            if !std::mem::replace(&mut seen[slot], true) {
                headers.push((name.clone(), v));
            }
            continue;
        }
        if lower == "sec-websocket-extensions" {
            let kept: Vec<&str> = value
                .split(',')
                .filter(|e| {
                    let keep = e.split(';').next().is_some_and(|n| n.trim().eq_ignore_ascii_case("permessage-deflate"));
                    if !keep {
                        notes.push(format!("extension offer {:?} dropped: wsreplay implements only permessage-deflate", e.trim()));
                    }
                    keep
                })
                .map(str::trim)
                .collect();
            if !kept.is_empty() {
                headers.push((name.clone(), kept.join(", ")));
            }
            continue;
        }
        if matches!(
            lower.as_str(),
            "content-length" | "transfer-encoding" | "sec-websocket-accept"
        ) {
            continue;
        }
        headers.push((name.clone(), value.clone()));
    }
    let defaults = [
        ("Host", target.host_header()),
        ("Upgrade", "websocket".to_string()),
        ("Connection", "Upgrade".to_string()),
        ("Sec-WebSocket-Key", key.clone()),
        ("Sec-WebSocket-Version", "13".to_string()),
    ];
    for (slot, (name, value)) in defaults.into_iter().enumerate() {
        if !seen[slot] {
            if slot == 0 {
                headers.insert(0, (name.to_string(), value));
            } else {
                headers.push((name.to_string(), value));
            }
        }
    }
    edits.apply(&mut headers);
    let key = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut bytes = format!("GET {uri} HTTP/1.1\r\n").into_bytes();
    for (n, v) in &headers {
        bytes.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    bytes.extend_from_slice(b"\r\n");
    ClientRequest {
        bytes,
        uri,
        key,
        notes,
    }
}

/// What the target accepted.
#[derive(Clone, Debug)]
pub struct Accepted {
    /// The target's response head.
    pub head: Head,
    /// Accepted `Sec-WebSocket-Protocol`; None when none.
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    /// Negotiated permessage-deflate; None when not accepted.
    pub deflate: Option<Negotiated>,
}

/// Validates a 101 answer to a request sent with `key` (`None`: skip the
/// accept check, for `--with-handshake`, whose key is the recorded one).
pub fn check_response(head_bytes: &[u8], key: Option<&str>) -> Result<Accepted, ReplayError> {
    let head = parse_response(head_bytes)
        .map_err(|e| ReplayError::peer(format!("the target is not a WebSocket server: {e}")))?;
    let first_line =
        String::from_utf8_lossy(head_bytes.split(|&b| b == b'\n').next().unwrap_or_default())
            .trim_end()
            .to_string();
    if head.status != 101 {
        return Err(ReplayError::peer(format!(
            "the target is not a WebSocket server (or refused the upgrade): it answered {first_line:?}"
        )));
    }
    if !head
        .all("upgrade")
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err(ReplayError::peer(
            "the target's 101 lacks 'Upgrade: websocket'",
        ));
    }
    if !head.has_token("connection", "upgrade") {
        return Err(ReplayError::peer(
            "the target's 101 lacks 'Connection: Upgrade'",
        ));
    }
    if let Some(key) = key {
        let want = accept_key(key);
        match head.get("sec-websocket-accept").map(str::trim) {
            Some(got) if got == want => {}
            got => {
                return Err(ReplayError::peer(format!(
                    "the target's Sec-WebSocket-Accept is {got:?}, expected {want:?}"
                )))
            }
        }
    }
    let extensions: Vec<String> = head
        .all("sec-websocket-extensions")
        .map(str::to_string)
        .collect();
    let deflate = deflate::accepted(&deflate::parse_extensions(
        extensions.iter().map(String::as_str),
    ));
    Ok(Accepted {
        subprotocol: head
            .get("sec-websocket-protocol")
            .map(|s| s.trim().to_string()),
        head,
        extensions,
        deflate,
    })
}

/// Reads an HTTP head (through the blank line) within `limit` bytes and
/// `timeout`; returns the head and whatever bytes followed it.
pub fn read_head(
    r: &mut Conn,
    limit: usize,
    timeout: Duration,
) -> Result<(Vec<u8>, Vec<u8>), ReplayError> {
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = memchr::memmem::find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((buf, rest));
        }
        if buf.len() > limit {
            return Err(ReplayError::peer(format!(
                "no end of HTTP head within {limit} bytes (ReplayLimits::max_handshake_bytes)"
            )));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReplayError::peer(format!(
                "no complete HTTP head within {:?} ({} bytes received)",
                timeout,
                buf.len()
            )));
        }
        r.set_read_timeout(left)
            .map_err(|e| ReplayError::local(format!("socket: {e}")))?;
        match r.read(&mut chunk) {
            Ok(0) => {
                return Err(ReplayError::peer(format!(
                    "the connection closed during the handshake ({} bytes received{})",
                    buf.len(),
                    excerpt_note(&buf)
                )))
            }
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if is_timeout(&e) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReplayError::peer(format!("handshake: {e}"))),
        }
    }
}

fn excerpt_note(buf: &[u8]) -> String {
    if buf.is_empty() {
        return String::new();
    }
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    format!(
        ", starting {:?}",
        String::from_utf8_lossy(line.get(..80).unwrap_or(line)).trim_end()
    )
}

/// A client's opening handshake, as the replaying server sees it.
#[derive(Clone, Debug)]
pub struct ClientHello {
    /// The request head.
    pub head: Head,
    /// Its `Sec-WebSocket-Key`.
    pub key: String,
    /// Subprotocols offered in `Sec-WebSocket-Protocol`, in order.
    pub protocols: Vec<String>,
    /// Extensions offered in `Sec-WebSocket-Extensions`, in order.
    pub extensions: Vec<ExtensionOffer>,
}

/// Validates a client's request (RFC 6455 §4.2.1).
pub fn check_request(head_bytes: &[u8]) -> Result<ClientHello, String> {
    let head = parse_request(head_bytes)?;
    if head.method != "GET" {
        return Err(format!(
            "method {} (a WebSocket handshake is a GET)",
            head.method
        ));
    }
    if !head
        .all("upgrade")
        .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    {
        return Err("no 'Upgrade: websocket'".into());
    }
    if !head.has_token("connection", "upgrade") {
        return Err("no 'Connection: Upgrade'".into());
    }
    if head.get("sec-websocket-version").map(str::trim) != Some("13") {
        return Err("Sec-WebSocket-Version is not 13".into());
    }
    let key = head
        .get("sec-websocket-key")
        .map(str::trim)
        .unwrap_or_default()
        .to_string();
    match base64::engine::general_purpose::STANDARD.decode(&key) {
        Ok(k) if k.len() == 16 => {}
        _ => return Err(format!("bad Sec-WebSocket-Key {key:?}")),
    }
    let protocols = head
        .all("sec-websocket-protocol")
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let extensions = deflate::parse_extensions(head.all("sec-websocket-extensions"));
    Ok(ClientHello {
        head,
        key,
        protocols,
        extensions,
    })
}

/// The permessage-deflate the recorded session used, if any.
pub fn recorded_deflate(meta: &ManifestSession) -> Option<Negotiated> {
    let conv = |d: &DeflateRecord| deflate::DirParams {
        no_context_takeover: d.no_context_takeover,
        max_window_bits: d.max_window_bits.clamp(8, 15),
    };
    match (&meta.deflate_c2s, &meta.deflate_s2c) {
        (None, None) => deflate::accepted(&deflate::parse_extensions(
            meta.extensions.iter().map(String::as_str),
        )),
        (c, s) => Some(Negotiated {
            client: c.as_ref().map(conv).unwrap_or_default(),
            server: s.as_ref().map(conv).unwrap_or_default(),
        }),
    }
}

/// The server's 101 answer: the recorded subprotocol if offered, the
/// recorded permessage-deflate if offered.
pub fn build_server_response(
    hello: &ClientHello,
    meta: &ManifestSession,
) -> (Vec<u8>, Option<String>, Option<Negotiated>) {
    let mut out = String::from(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
    );
    out.push_str(&format!(
        "Sec-WebSocket-Accept: {}\r\n",
        accept_key(&hello.key)
    ));
    let protocol = meta
        .subprotocol
        .as_ref()
        .filter(|p| hello.protocols.iter().any(|o| o == *p))
        .cloned();
    if let Some(p) = &protocol {
        out.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    let offer = hello
        .extensions
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case("permessage-deflate"));
    let deflate = match (offer, recorded_deflate(meta)) {
        (Some(offer), Some(rec)) => {
            let (value, used) = deflate::server_answer(offer, rec);
            out.push_str(&format!("Sec-WebSocket-Extensions: {value}\r\n"));
            Some(used)
        }
        _ => None,
    };
    out.push_str("\r\n");
    (out.into_bytes(), protocol, deflate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        assert_ne!(fresh_key(), fresh_key());
    }

    fn recorded() -> Vec<u8> {
        b"GET /chat?room=1 HTTP/1.1\r\nHost: victim.example:8080\r\nUser-Agent: UA/1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nCookie: session=old\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame\r\nX-Drop: me\r\n\r\n".to_vec()
    }

    #[test]
    fn client_request_rewrites_host_key_and_applies_edits() {
        let target = Target::parse("ws://127.0.0.1:9/").unwrap();
        let edits = HeaderEdits {
            set: vec![
                ("Cookie".into(), "session=new".into()),
                ("X-New".into(), "1".into()),
            ],
            drop: vec!["x-drop".into()],
        };
        let req = build_client_request(&recorded(), &ManifestSession::default(), &target, &edits);
        let head = parse_request(&req.bytes).unwrap();
        assert_eq!(head.uri, "/");
        assert_eq!(head.get("host"), Some("127.0.0.1:9"));
        assert_eq!(head.get("user-agent"), Some("UA/1"));
        assert_eq!(head.get("cookie"), Some("session=new"));
        assert_eq!(head.get("x-new"), Some("1"));
        assert_eq!(head.get("x-drop"), None);
        assert_ne!(req.key, "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(head.get("sec-websocket-key"), Some(req.key.as_str()));
        assert_eq!(
            head.get("sec-websocket-extensions"),
            Some("permessage-deflate; client_max_window_bits")
        );
        assert_eq!(req.notes.len(), 1, "{:?}", req.notes);
        // The recorded order is kept: Host stays before User-Agent.
        assert_eq!(head.headers[0].0, "Host");
    }

    #[test]
    fn client_request_uses_recorded_uri_without_target_path() {
        let target = Target::parse("ws://127.0.0.1:9").unwrap();
        let req = build_client_request(
            &recorded(),
            &ManifestSession::default(),
            &target,
            &HeaderEdits::default(),
        );
        assert_eq!(req.uri, "/chat?room=1");
    }

    #[test]
    fn response_validation() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n";
        let acc = check_response(ok, Some(key)).unwrap();
        assert!(acc.deflate.unwrap().server.no_context_takeover);
        assert!(check_response(ok, Some("AAAAAAAAAAAAAAAAAAAAAA==")).is_err());
        let e =
            check_response(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Some(key)).unwrap_err();
        assert!(e.message.contains("200 OK"), "{}", e.message);
        assert_eq!(e.status, super::super::ExitStatus::Peer);
        assert!(check_response(b"SSH-2.0-OpenSSH\r\n\r\n", Some(key)).is_err());
    }

    #[test]
    fn server_answers_recorded_protocol_and_deflate() {
        let req = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: a, chat\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let hello = check_request(req).unwrap();
        let meta = ManifestSession {
            subprotocol: Some("chat".into()),
            deflate_s2c: Some(DeflateRecord {
                no_context_takeover: true,
                max_window_bits: 15,
                per_frame: false,
            }),
            ..Default::default()
        };
        let (bytes, proto, deflate) = build_server_response(&hello, &meta);
        let acc = check_response(&bytes, Some("dGhlIHNhbXBsZSBub25jZQ==")).unwrap();
        assert_eq!(proto.as_deref(), Some("chat"));
        assert_eq!(acc.subprotocol.as_deref(), Some("chat"));
        assert!(deflate.unwrap().server.no_context_takeover);
        assert!(check_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").is_err());
    }
}
