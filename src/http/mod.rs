//! http stage: finding WebSocket upgrade handshakes in HTTP/1.x, on any port.
//!
//! A [`HandshakeTracker`] follows one TCP connection. The side whose first
//! bytes look like a request line is the client (checked on the first few
//! bytes, so other protocols are rejected cheaply with [`Feed::NotHttp`]);
//! responses pair with requests in order. Bodies of other exchanges are
//! skipped, so a later upgrade on a keep-alive connection is still found.
//! Client bytes that follow an upgrade request are held (bounded) until the
//! response says whether they are WebSocket frames or the next request.
//!
//! Heads are collected in a bounded buffer whose scan position is remembered,
//! so a head arriving one byte per segment costs linear time.

mod body;
mod extensions;
mod handshake;
mod head;
mod tracker;

pub use extensions::{
    parse_extensions, parse_extensions_bounded, Extension, ExtensionList, MAX_EXTENSIONS,
};
pub use handshake::{accept_key, Handshake};
pub use head::{Header, Request, Response};
pub use tracker::{Chunk, Feed, HandshakeTracker, HttpLimits};

/// Every anomaly name this stage can emit, with its meaning.
pub const ANOMALIES: &[(&str, &str)] = &[
    ("http_head_too_large", "a request or response head exceeded the head size limit; HTTP parsing of the connection stops"),
    ("http_too_many_headers", "a head had more header fields than the limit; HTTP parsing of the connection stops"),
    ("http_malformed", "bytes that should have been an HTTP head or body could not be parsed; HTTP parsing of the connection stops"),
    ("http_too_many_pipelined", "too many requests waited for responses; HTTP parsing of the connection stops"),
    ("http_unsolicited_response", "the server sent a response with no request pending; HTTP parsing of the connection stops"),
    ("http_upgrade_refused", "a WebSocket upgrade request was answered with a status other than 101 (the status is in the detail)"),
    ("http_upgrade_unanswered", "a WebSocket upgrade request got no response before the connection ended"),
    ("http_upgrade_other_protocol", "a 101 response switched the connection to a protocol other than WebSocket"),
    ("http_pending_client_overflow", "client bytes sent while an upgrade request awaited its response exceeded the hold limit and were dropped"),
    ("http_gap", "bytes were lost inside an HTTP message (or in held client bytes that turned out to be HTTP); HTTP parsing stops"),
    ("ws_accept_mismatch", "Sec-WebSocket-Accept does not match the one computed from Sec-WebSocket-Key"),
    ("ws_missing_key", "the upgrade request has no Sec-WebSocket-Key"),
    ("ws_duplicate_key", "the upgrade request has more than one Sec-WebSocket-Key"),
    ("ws_bad_key", "Sec-WebSocket-Key is not the base64 encoding of 16 bytes"),
    ("ws_missing_accept", "the 101 response has no Sec-WebSocket-Accept"),
    ("ws_bad_version", "Sec-WebSocket-Version is missing or not 13"),
    ("ws_bad_method", "the upgrade request does not use GET"),
    ("ws_connection_header_missing", "the upgrade request's Connection header does not list upgrade"),
    ("ws_upgrade_header_missing_in_response", "the 101 response has no Upgrade: websocket"),
    ("ws_connection_header_missing_in_response", "the 101 response's Connection header does not list upgrade"),
    ("ws_subprotocol_not_offered", "the server chose a subprotocol the client did not offer"),
    ("ws_extension_not_offered", "the server accepted an extension the client did not offer"),
    ("ws_extensions_malformed", "a Sec-WebSocket-Extensions header could not be parsed"),
    ("ws_too_many_extensions", "the response listed more extensions or parameters than the limit; the excess is ignored"),
];

#[cfg(test)]
mod tests;
