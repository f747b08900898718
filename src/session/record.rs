//! The record model: every record wssniff writes, as serde types.
//!
//! This module is the contract shared by the `sink` writers and by
//! `wsreplay`, which reads export directories through these types and nothing
//! else. The JSON Lines schema is documented in `docs/json.md`, the export
//! directory in `docs/export.md`. Bump [`SCHEMA_VERSION`] on any incompatible
//! change.

use crate::types::{Dir, Opcode, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the JSON Lines schema and of the export format.
pub const SCHEMA_VERSION: u32 = 1;

/// `wssniff <version>`, as written into records and manifests.
pub fn tool_version() -> String {
    format!("wssniff {}", env!("CARGO_PKG_VERSION"))
}

/// The JSON name of an opcode: `text`, `binary`, `ping`, `pong`, `close`,
/// `continuation`, or `reserved-N` (see [`Opcode::name`]).
pub fn opcode_name(op: u8) -> &'static str {
    Opcode::new(op).name()
}

/// Inverse of [`opcode_name`].
pub fn opcode_from_name(name: &str) -> Option<u8> {
    Opcode::from_name(name).map(Opcode::as_u8)
}

/// One input capture file, with what proves its identity.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InputFile {
    /// 0-based position of this file among the run's inputs (what other records' `file` refers to).
    pub index: usize,
    /// Path as given on the command line.
    pub path: String,
    /// Bytes on disk (of the compressed file, for `.gz`); null for stdin.
    pub size: Option<u64>,
    /// SHA-256 of the file as stored; null when it could not be hashed up front (stdin).
    pub sha256: Option<String>,
    /// Capture format, `pcap` or `pcapng`; absent when the file was not scanned up front (stdin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// LINKTYPE values of the file's interfaces, in the order first seen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_types: Vec<u32>,
    /// Packets in the file; absent when it was not scanned up front (stdin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    /// Timestamp of the file's first packet; absent when it has none or was not scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<Timestamp>,
    /// Timestamp of the file's last packet; absent when it has none or was not scanned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<Timestamp>,
}

/// `{"type":"capture"}`: the first record of `read --json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureRecord {
    /// Schema version, [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The writing tool, as [`tool_version`] gives it.
    pub tool: String,
    /// Every input file, in the order read.
    pub inputs: Vec<InputFile>,
}

/// An HTTP header as on the wire: `[name, value]`.
pub type HeaderPair = (String, String);

/// The HTTP upgrade request that opened a session.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// Request method as on the wire (normally `GET`).
    pub method: String,
    /// Request target as on the wire.
    pub uri: String,
    /// HTTP version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Every header, in wire order and case.
    pub headers: Vec<HeaderPair>,
    /// 1-based packet numbers that carried the request's bytes.
    pub packets: Vec<u64>,
}

/// The HTTP response (normally `101`) that answered the upgrade request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// Status code.
    pub status: u16,
    /// Reason phrase as on the wire (may be empty).
    pub reason: String,
    /// HTTP version, e.g. `HTTP/1.1`.
    pub version: String,
    /// Every header, in wire order and case.
    pub headers: Vec<HeaderPair>,
    /// 1-based packet numbers that carried the response's bytes.
    pub packets: Vec<u64>,
}

/// Negotiated permessage-deflate parameters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeflateRecord {
    /// The sender resets its compression context after every message.
    pub no_context_takeover: bool,
    /// LZ77 window size of the sender, as a base-2 logarithm (8..=15).
    pub max_window_bits: u8,
    /// `x-webkit-deflate-frame`: every frame compressed on its own.
    #[serde(default)]
    pub per_frame: bool,
}

/// `{"type":"session"}`: a WebSocket session, written when its 101 response is seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Session id: the (1-based, counted across all inputs) number of the packet that completed the 101 response.
    pub id: u64,
    /// Time of the 101 response.
    pub ts: Timestamp,
    /// `ip:port` (IPv6 as `[addr]:port`).
    pub client: String,
    /// `ip:port` of the server (IPv6 as `[addr]:port`).
    pub server: String,
    /// Request target of the upgrade request.
    pub uri: String,
    /// `Host` header of the request; None when absent.
    pub host: Option<String>,
    /// `Origin` header of the request; None when absent.
    pub origin: Option<String>,
    /// Accepted `Sec-WebSocket-Protocol`; None when none was accepted.
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    /// permessage-deflate of the client-to-server direction; None when not compressed.
    pub deflate_c2s: Option<DeflateRecord>,
    /// permessage-deflate of the server-to-client direction; None when not compressed.
    pub deflate_s2c: Option<DeflateRecord>,
    /// The upgrade request.
    pub request: RequestRecord,
    /// The response to it.
    pub response: ResponseRecord,
    /// 0-based input index of the handshake, when several inputs were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
}

/// A close frame's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRecord {
    /// Status code; None when the close payload was empty.
    pub code: Option<u16>,
    /// Reason text (lossily decoded when not valid UTF-8).
    pub reason: String,
}

/// Frame-level detail, in the export's `messages.jsonl` only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    /// FIN bit: last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (4 = RSV1).
    pub rsv: u8,
    /// Opcode, 0..=15.
    pub opcode: u8,
    /// Masking key as 8 hex digits; null for unmasked frames.
    pub mask: Option<String>,
    /// Payload length as declared in the frame header.
    pub payload_len: u64,
    /// Bytes of the whole frame on the wire (header, mask and payload).
    pub wire_len: u64,
    /// Offset of the frame's first byte in the direction's stream (`c2s.bin`/`s2c.bin`).
    pub offset: u64,
    /// 1-based packet numbers that carried a byte of the frame.
    pub packets: Vec<u64>,
}

/// `{"type":"message"}`: one WebSocket message (data or control).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Id of the session the message belongs to.
    pub session: u64,
    /// Direction the message was sent in.
    pub dir: Dir,
    /// Per direction, from 0.
    pub index: u64,
    /// Opcode of the message (of its first frame).
    pub opcode: Opcode,
    /// Decoded length (unmasked, inflated), even when `truncated`.
    pub len: u64,
    /// Payload as text (valid UTF-8 text messages) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// ... or base64 of the bytes held (everything else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64: Option<String>,
    /// Time of the message's first frame.
    pub ts: Timestamp,
    /// Time of the message's last frame.
    pub ts_last: Timestamp,
    /// 1-based packet numbers (per input file) that carried its frames.
    pub packets: Vec<u64>,
    /// TCP sequence numbers of its first byte and one past its last byte.
    pub seq: [u32; 2],
    /// Offsets of the same bytes in the direction's stream.
    pub stream: [u64; 2],
    /// Number of frames it was sent in.
    pub frames: u64,
    /// Sent compressed with permessage-deflate.
    #[serde(default, skip_serializing_if = "is_false")]
    pub compressed: bool,
    /// Payload bytes on the wire (compressed size), when `compressed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_len: Option<u64>,
    /// The payload exceeded an in-memory limit (`--max-message`, `--max-inflate`): `text`/`b64` hold the first bytes only.
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    /// Bytes of the message were not captured (gap), or the capture ended inside it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    /// The deflate data could not be inflated: `b64` holds the compressed bytes.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inflate_failed: bool,
    /// Code and reason, for close messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseRecord>,
    /// 0-based input index, when several inputs were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
    /// Export only: frame-level detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_detail: Option<Vec<FrameRecord>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `{"type":"anomaly"}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRecord {
    /// Stable anomaly name, as listed in `docs/anomalies.md`.
    pub name: String,
    /// Id of the session; None before a session exists (or outside one).
    pub session: Option<u64>,
    /// TCP flow number; None when not tied to a flow (capture-file notices).
    pub flow: Option<u64>,
    /// Direction concerned; None when not tied to one.
    pub dir: Option<Dir>,
    /// 1-based number of the packet that revealed it; None when not tied to a packet.
    pub packet: Option<u64>,
    /// Time of that packet; None when not tied to a packet.
    pub ts: Option<Timestamp>,
    /// Human-readable explanation.
    pub detail: String,
    /// 0-based input index, when several inputs were read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
}

/// `{"type":"gap"}`: bytes of one direction that were not captured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    /// Id of the session; None when the flow is not (yet) a WebSocket session.
    pub session: Option<u64>,
    /// TCP flow number.
    pub flow: u64,
    /// Direction missing the bytes; None when not known.
    pub dir: Option<Dir>,
    /// TCP sequence number of the first missing byte.
    pub seq: u32,
    /// Offset of the first missing byte in the direction's TCP stream.
    pub offset: u64,
    /// Number of missing bytes.
    pub len: u64,
    /// Why they are missing: `lost`, `snaplen`, `buffer_limit`, `memcap`, ...
    pub reason: String,
    /// 1-based number of the packet that revealed the gap; None when revealed otherwise (end of input).
    pub packet: Option<u64>,
    /// Time of that packet; None when there is none.
    pub ts: Option<Timestamp>,
}

/// Counts per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerDir {
    /// Client to server.
    pub c2s: u64,
    /// Server to client.
    pub s2c: u64,
}

/// `{"type":"session_end"}`: totals of a session, written when it ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEndRecord {
    /// Id of the session.
    pub session: u64,
    /// Time of the session's last packet.
    pub ts: Timestamp,
    /// `fin`, `rst`, `timeout`, `evicted`, `new_connection`, `end_of_input`.
    pub reason: String,
    /// Messages (data and control) per direction.
    pub messages: PerDir,
    /// Decoded (inflated) payload bytes.
    pub bytes: PerDir,
    /// Payload bytes on the wire.
    pub wire_bytes: PerDir,
    /// Stream bytes after the handshake (frames and all).
    pub stream_bytes: PerDir,
    /// Close frame sent by the client; None when it sent none.
    pub close_c2s: Option<CloseRecord>,
    /// Close frame sent by the server; None when it sent none.
    pub close_s2c: Option<CloseRecord>,
    /// Number of gaps (uncaptured byte ranges) in the session.
    pub gaps: u64,
    /// Total bytes in those gaps.
    pub gap_bytes: u64,
    /// Number of anomalies in the session.
    pub anomalies: u64,
    /// The session did not end with a close handshake and TCP teardown.
    pub incomplete: bool,
}

/// `{"type":"stats"}`: the last record of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    /// Packets read, over all inputs.
    pub packets: u64,
    /// Bytes of those packets as captured.
    pub bytes: u64,
    /// Packets not analysed, by reason.
    pub skipped: BTreeMap<String, u64>,
    /// TCP flows seen.
    pub flows: u64,
    /// WebSocket sessions seen.
    pub sessions: u64,
    /// Messages, by opcode name.
    pub messages: BTreeMap<String, u64>,
    /// Gaps over all flows.
    pub gaps: u64,
    /// Total bytes in those gaps.
    pub gap_bytes: u64,
    /// Anomalies, by name.
    pub anomalies: BTreeMap<String, u64>,
    /// Reassembly and decoder counters, by name.
    pub counters: BTreeMap<String, u64>,
}

/// One gap in an exported stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportGap {
    /// Direction of the stream file with the gap.
    pub dir: Dir,
    /// Offset in the direction's stream file where the missing bytes would start.
    pub offset: u64,
    /// Number of missing bytes (not written to the stream file).
    pub len: u64,
}

/// One session in `manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestSession {
    /// Session id, as in [`SessionRecord::id`].
    pub id: u64,
    /// The session's folder, relative to the export directory.
    pub path: String,
    /// `ip:port` of the client (IPv6 as `[addr]:port`).
    pub client: String,
    /// `ip:port` of the server (IPv6 as `[addr]:port`).
    pub server: String,
    /// Request target of the upgrade request.
    pub uri: String,
    /// `Host` header of the request; None when absent.
    pub host: Option<String>,
    /// Accepted `Sec-WebSocket-Protocol`; None when none was accepted.
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    /// permessage-deflate of the client-to-server direction; None when not compressed.
    pub deflate_c2s: Option<DeflateRecord>,
    /// permessage-deflate of the server-to-client direction; None when not compressed.
    pub deflate_s2c: Option<DeflateRecord>,
    /// Time of the 101 response.
    pub start: Timestamp,
    /// Time of the session's `session_end` (the last time seen in it, when still open at the end of the run).
    pub end: Timestamp,
    /// Messages per direction.
    pub messages: PerDir,
    /// Close frame sent by the client; None when it sent none.
    pub close_c2s: Option<CloseRecord>,
    /// Close frame sent by the server; None when it sent none.
    pub close_s2c: Option<CloseRecord>,
    /// Every gap in the session's stream files, in stream order.
    pub gaps: Vec<ExportGap>,
    /// Anomalies named `tcp_conflicting_overlap` or `tcp_conflicting_retransmission`: overlapping TCP bytes that disagreed.
    pub conflicting_overlaps: u64,
    /// The session's anomalies, counted by name.
    pub anomalies: BTreeMap<String, u64>,
    /// As [`SessionEndRecord::incomplete`].
    pub incomplete: bool,
}

/// `manifest.json` of an export directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Schema version, [`SCHEMA_VERSION`].
    pub schema: u32,
    /// The writing tool, as [`tool_version`] gives it.
    pub tool: String,
    /// The command line that wrote the export.
    pub command: Vec<String>,
    /// Every input file, in the order read.
    pub inputs: Vec<InputFile>,
    /// Earliest time in the export (session starts and ends, messages, inputs); None when nothing was seen.
    pub first_ts: Option<Timestamp>,
    /// Latest time in the export; None when nothing was seen.
    pub last_ts: Option<Timestamp>,
    /// Every exported session.
    pub sessions: Vec<ManifestSession>,
    /// SHA-256 of every other file written, by path relative to the export directory.
    pub files: BTreeMap<String, String>,
}

/// File names inside a session folder of an export.
pub mod export_names {
    /// The manifest, at the top of the export directory.
    pub const MANIFEST: &str = "manifest.json";
    /// HAR file of all handshakes, at the top of the export directory.
    pub const HAR: &str = "sessions.har";
    /// The folder holding one sub-folder per session.
    pub const SESSIONS_DIR: &str = "sessions";
    /// The upgrade request, as on the wire.
    pub const REQUEST: &str = "request.http";
    /// The response to it, as on the wire.
    pub const RESPONSE: &str = "response.http";
    /// One [`super::MessageRecord`] per line, with frame detail.
    pub const MESSAGES: &str = "messages.jsonl";
    /// The client-to-server stream after the handshake, with gaps left out.
    pub const C2S: &str = "c2s.bin";
    /// The server-to-client stream after the handshake, with gaps left out.
    pub const S2C: &str = "s2c.bin";

    /// The folder of session `id`, relative to the export directory. Derived
    /// from the id only: never from hosts or URIs seen in the traffic.
    pub fn session_dir(id: u64) -> String {
        format!("{SESSIONS_DIR}/{id:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opcode_names_round_trip() {
        for op in 0u8..16 {
            assert_eq!(opcode_from_name(opcode_name(op)), Some(op));
        }
        assert_eq!(opcode_name(1), "text");
        assert_eq!(opcode_name(10), "pong");
        assert_eq!(opcode_from_name("nonsense"), None);
    }

    #[test]
    fn message_record_omits_defaults() {
        let m = MessageRecord {
            session: 1,
            dir: Dir::C2s,
            opcode: Opcode::TEXT,
            text: Some("hi".into()),
            ..Default::default()
        };
        let s = serde_json::to_string(&m).unwrap();
        assert!(!s.contains("compressed"));
        assert!(!s.contains("frame_detail"));
        let back: MessageRecord = serde_json::from_str(&s).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn session_dir_is_from_id_only() {
        assert_eq!(export_names::session_dir(7), "sessions/000007");
    }
}
