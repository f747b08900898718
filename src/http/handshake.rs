//! The opening handshake (RFC 6455 section 4): recognizing an upgrade request
//! and checking the 101 response against it.

use super::extensions::{parse_extensions_bounded, Extension, MAX_EXTENSIONS};
use super::head::{has_token, Request, Response};
use crate::types::Anomaly;
use base64::Engine;
use sha1::{Digest, Sha1};

const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(key);
    h.update(GUID);
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A completed opening handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The upgrade request.
    pub request: Request,
    /// The response that answered it.
    pub response: Response,
    /// TCP side (0 = originator, 1 = responder) that sent the request.
    pub client_side: usize,
    /// `Sec-WebSocket-Protocol` of the response, if any.
    pub subprotocol: Option<String>,
    /// Extensions the server accepted (its `Sec-WebSocket-Extensions`).
    pub extensions: Vec<Extension>,
    /// What was wrong with the handshake; the session is decoded anyway.
    pub anomalies: Vec<Anomaly>,
}

/// The request asks for a WebSocket: an `Upgrade` header naming `websocket`.
/// (Method and `Connection` are checked later, as anomalies, so a server that
/// accepted a sloppy request still yields a session.)
pub(crate) fn wants_websocket(req: &Request) -> bool {
    has_token(req.header_all("upgrade"), "websocket")
}

/// The request asks to switch to some protocol: the bytes after it may not be HTTP.
pub(crate) fn wants_upgrade(req: &Request) -> bool {
    req.header("upgrade").is_some() || has_token(req.header_all("connection"), "upgrade")
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn joined<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(v);
    }
    out
}

/// Checks the 101 `response` against `request` and builds the session's handshake.
pub(crate) fn build(request: Request, response: Response, client_side: usize) -> Handshake {
    let packet = response.packets.last().copied().unwrap_or(0);
    let ts = response.ts;
    let mut anomalies = Vec::new();
    let mut note = |name: &'static str, detail: String| {
        anomalies.push(Anomaly {
            name,
            detail,
            packet,
            ts,
        })
    };

    if request.method != "GET" {
        note(
            "ws_bad_method",
            format!("upgrade request uses method {}", request.method),
        );
    }
    if !has_token(request.header_all("connection"), "upgrade") {
        note(
            "ws_connection_header_missing",
            "request Connection header does not list upgrade".into(),
        );
    }
    if !has_token(response.header_all("upgrade"), "websocket") {
        note(
            "ws_upgrade_header_missing_in_response",
            "101 response has no Upgrade: websocket".into(),
        );
    }
    if !has_token(response.header_all("connection"), "upgrade") {
        note(
            "ws_connection_header_missing_in_response",
            "101 response Connection header does not list upgrade".into(),
        );
    }
    match request
        .header("sec-websocket-version")
        .map(<[u8]>::trim_ascii)
    {
        Some(b"13") => {}
        Some(v) => note(
            "ws_bad_version",
            format!("Sec-WebSocket-Version is {:?}, not 13", text(v)),
        ),
        None => note(
            "ws_bad_version",
            "request has no Sec-WebSocket-Version".into(),
        ),
    }

    let keys: Vec<&[u8]> = request
        .header_all("sec-websocket-key")
        .map(<[u8]>::trim_ascii)
        .collect();
    if keys.len() > 1 {
        note(
            "ws_duplicate_key",
            format!(
                "{} Sec-WebSocket-Key headers; the first is used",
                keys.len()
            ),
        );
    }
    if let Some(key) = keys.first() {
        let decoded = base64::engine::general_purpose::STANDARD.decode(key);
        if decoded.map(|k| k.len()) != Ok(16) {
            note(
                "ws_bad_key",
                format!(
                    "Sec-WebSocket-Key {:?} is not 16 bytes in base64",
                    text(key)
                ),
            );
        }
    } else {
        note("ws_missing_key", "request has no Sec-WebSocket-Key".into());
    }
    match (
        keys.first(),
        response
            .header("sec-websocket-accept")
            .map(<[u8]>::trim_ascii),
    ) {
        (_, None) => note(
            "ws_missing_accept",
            "101 response has no Sec-WebSocket-Accept".into(),
        ),
        (Some(key), Some(got)) => {
            let want = accept_key(key);
            if got != want.as_bytes() {
                note(
                    "ws_accept_mismatch",
                    format!("Sec-WebSocket-Accept is {:?}, expected {want:?}", text(got)),
                );
            }
        }
        (None, Some(_)) => {}
    }

    let subprotocol = response
        .header("sec-websocket-protocol")
        .map(|v| text(v.trim_ascii()));
    if let Some(p) = &subprotocol {
        if !has_token(request.header_all("sec-websocket-protocol"), p) {
            note(
                "ws_subprotocol_not_offered",
                format!("server chose subprotocol {p:?}, which the client did not offer"),
            );
        }
    }

    let offered = match parse_extensions_bounded(
        &joined(request.header_all("sec-websocket-extensions")),
        MAX_EXTENSIONS,
    ) {
        Ok(list) => list.list,
        Err(e) => {
            note(
                "ws_extensions_malformed",
                format!("request Sec-WebSocket-Extensions: {e}"),
            );
            Vec::new()
        }
    };
    let extensions = match parse_extensions_bounded(
        &joined(response.header_all("sec-websocket-extensions")),
        MAX_EXTENSIONS,
    ) {
        Ok(list) => {
            if list.dropped > 0 {
                note(
                    "ws_too_many_extensions",
                    format!("response lists more than {MAX_EXTENSIONS} extensions or parameters; {} ignored", list.dropped),
                );
            }
            list.list
        }
        Err(e) => {
            note(
                "ws_extensions_malformed",
                format!("response Sec-WebSocket-Extensions: {e}"),
            );
            Vec::new()
        }
    };
    for ext in &extensions {
        if !offered
            .iter()
            .any(|o| o.name.eq_ignore_ascii_case(&ext.name))
        {
            note(
                "ws_extension_not_offered",
                format!(
                    "server accepted extension {:?}, which the client did not offer",
                    ext.name
                ),
            );
        }
    }

    Handshake {
        request,
        response,
        client_side,
        subprotocol,
        extensions,
        anomalies,
    }
}

#[cfg(test)]
mod tests {
    use super::super::head::{parse_request, parse_response, RawHead};
    use super::*;
    use crate::types::Timestamp;

    fn req(raw: &str) -> Request {
        parse_request(
            RawHead {
                raw: raw.as_bytes().to_vec(),
                packets: vec![1],
                ts: Timestamp::default(),
            },
            64,
        )
        .unwrap()
    }
    fn resp(raw: &str) -> Response {
        parse_response(
            RawHead {
                raw: raw.as_bytes().to_vec(),
                packets: vec![2],
                ts: Timestamp::default(),
            },
            64,
        )
        .unwrap()
    }
    fn names(h: &Handshake) -> Vec<&'static str> {
        h.anomalies.iter().map(|a| a.name).collect()
    }

    const RFC_REQ: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";
    const RFC_RESP: &str =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

    #[test]
    fn rfc_sample_accept_key() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn rfc_sample_handshake_is_clean() {
        let r = req(RFC_REQ);
        assert!(wants_websocket(&r) && wants_upgrade(&r));
        let h = build(r, resp(RFC_RESP), 0);
        assert_eq!(names(&h), Vec::<&str>::new());
        assert_eq!(h.subprotocol.as_deref(), Some("chat"));
        assert!(h.extensions.is_empty());
        assert_eq!(h.client_side, 0);
    }

    #[test]
    fn each_violation_is_named() {
        let r = "POST /x HTTP/1.1\r\nUpgrade: WebSocket\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Key: b\r\n\
            Sec-WebSocket-Version: 8\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        let s = "HTTP/1.1 101 OK\r\nSec-WebSocket-Accept: nope\r\nSec-WebSocket-Protocol: chat\r\n\
            Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; server_no_context_takeover\r\n\r\n";
        let h = build(req(r), resp(s), 1);
        assert_eq!(
            names(&h),
            vec![
                "ws_bad_method",
                "ws_connection_header_missing",
                "ws_upgrade_header_missing_in_response",
                "ws_connection_header_missing_in_response",
                "ws_bad_version",
                "ws_duplicate_key",
                "ws_bad_key",
                "ws_accept_mismatch",
                "ws_subprotocol_not_offered",
                "ws_extension_not_offered",
            ]
        );
        assert_eq!(h.extensions.len(), 2);
        assert_eq!(
            h.extensions[1].params,
            vec![("server_no_context_takeover".to_string(), None)]
        );
        assert!(h.anomalies.iter().all(|a| a.packet == 2));
    }

    #[test]
    fn missing_key_and_accept() {
        let h = build(
            req("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"),
            resp("HTTP/1.1 101 Switching\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
            0,
        );
        assert_eq!(names(&h), vec!["ws_missing_key", "ws_missing_accept"]);
    }

    #[test]
    fn malformed_extensions_are_reported() {
        let r = RFC_REQ.replace(
            "Origin",
            "Sec-WebSocket-Extensions: permessage-deflate\r\nOrigin",
        );
        let s = RFC_RESP.replace(
            "Upgrade: websocket",
            "Upgrade: websocket\r\nSec-WebSocket-Extensions: permessage-deflate; x=\"",
        );
        let h = build(req(&r), resp(&s), 0);
        assert_eq!(names(&h), vec!["ws_extensions_malformed"]);
        assert!(h.extensions.is_empty());
    }
}
