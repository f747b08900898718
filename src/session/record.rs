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
    pub index: usize,
    pub path: String,
    /// Bytes on disk (of the compressed file, for `.gz`); null for stdin.
    pub size: Option<u64>,
    /// SHA-256 of the file as stored; null when it could not be hashed up front (stdin).
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_types: Vec<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packets: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_ts: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ts: Option<Timestamp>,
}

/// `{"type":"capture"}`: the first record of `read --json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureRecord {
    pub schema: u32,
    pub tool: String,
    pub inputs: Vec<InputFile>,
}

/// An HTTP header as on the wire: `[name, value]`.
pub type HeaderPair = (String, String);

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub uri: String,
    pub version: String,
    pub headers: Vec<HeaderPair>,
    pub packets: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    pub status: u16,
    pub reason: String,
    pub version: String,
    pub headers: Vec<HeaderPair>,
    pub packets: Vec<u64>,
}

/// Negotiated permessage-deflate parameters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeflateRecord {
    pub no_context_takeover: bool,
    pub max_window_bits: u8,
    /// `x-webkit-deflate-frame`: every frame compressed on its own.
    #[serde(default)]
    pub per_frame: bool,
}

/// `{"type":"session"}`: a WebSocket session, written when its 101 response is seen.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: u64,
    pub ts: Timestamp,
    /// `ip:port` (IPv6 as `[addr]:port`).
    pub client: String,
    pub server: String,
    pub uri: String,
    pub host: Option<String>,
    pub origin: Option<String>,
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    pub deflate_c2s: Option<DeflateRecord>,
    pub deflate_s2c: Option<DeflateRecord>,
    pub request: RequestRecord,
    pub response: ResponseRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
}

/// A close frame's contents.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseRecord {
    pub code: Option<u16>,
    pub reason: String,
}

/// Frame-level detail, in the export's `messages.jsonl` only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (4 = RSV1).
    pub rsv: u8,
    pub opcode: u8,
    /// Masking key as 8 hex digits; null for unmasked frames.
    pub mask: Option<String>,
    pub payload_len: u64,
    pub wire_len: u64,
    /// Offset of the frame's first byte in the direction's stream (`c2s.bin`/`s2c.bin`).
    pub offset: u64,
    pub packets: Vec<u64>,
}

/// `{"type":"message"}`: one WebSocket message (data or control).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub session: u64,
    pub dir: Dir,
    /// Per direction, from 0.
    pub index: u64,
    pub opcode: Opcode,
    /// Decoded length (unmasked, inflated), even when `truncated`.
    pub len: u64,
    /// Payload as text (valid UTF-8 text messages) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// ... or base64 of the bytes held (everything else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b64: Option<String>,
    pub ts: Timestamp,
    pub ts_last: Timestamp,
    /// 1-based packet numbers (per input file) that carried its frames.
    pub packets: Vec<u64>,
    /// TCP sequence numbers of its first byte and one past its last byte.
    pub seq: [u32; 2],
    /// Offsets of the same bytes in the direction's stream.
    pub stream: [u64; 2],
    pub frames: u64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub compressed: bool,
    /// Payload bytes on the wire (compressed size), when `compressed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire_len: Option<u64>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub truncated: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub incomplete: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub inflate_failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseRecord>,
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
    pub name: String,
    pub session: Option<u64>,
    pub flow: Option<u64>,
    pub dir: Option<Dir>,
    pub packet: Option<u64>,
    pub ts: Option<Timestamp>,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<usize>,
}

/// `{"type":"gap"}`: bytes of one direction that were not captured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GapRecord {
    pub session: Option<u64>,
    pub flow: u64,
    pub dir: Option<Dir>,
    pub seq: u32,
    pub offset: u64,
    pub len: u64,
    pub reason: String,
    pub packet: Option<u64>,
    pub ts: Option<Timestamp>,
}

/// Counts per direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerDir {
    pub c2s: u64,
    pub s2c: u64,
}

/// `{"type":"session_end"}`: totals of a session, written when it ends.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionEndRecord {
    pub session: u64,
    pub ts: Timestamp,
    /// `fin`, `rst`, `timeout`, `evicted`, `new_connection`, `end_of_input`.
    pub reason: String,
    pub messages: PerDir,
    /// Decoded (inflated) payload bytes.
    pub bytes: PerDir,
    /// Payload bytes on the wire.
    pub wire_bytes: PerDir,
    /// Stream bytes after the handshake (frames and all).
    pub stream_bytes: PerDir,
    pub close_c2s: Option<CloseRecord>,
    pub close_s2c: Option<CloseRecord>,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub anomalies: u64,
    /// The session did not end with a close handshake and TCP teardown.
    pub incomplete: bool,
}

/// `{"type":"stats"}`: the last record of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsRecord {
    pub packets: u64,
    pub bytes: u64,
    pub skipped: BTreeMap<String, u64>,
    pub flows: u64,
    pub sessions: u64,
    pub messages: BTreeMap<String, u64>,
    pub gaps: u64,
    pub gap_bytes: u64,
    pub anomalies: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, u64>,
}

/// One gap in an exported stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportGap {
    pub dir: Dir,
    /// Offset in the direction's stream file where the missing bytes would start.
    pub offset: u64,
    pub len: u64,
}

/// One session in `manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ManifestSession {
    pub id: u64,
    /// The session's folder, relative to the export directory.
    pub path: String,
    pub client: String,
    pub server: String,
    pub uri: String,
    pub host: Option<String>,
    pub subprotocol: Option<String>,
    pub extensions: Vec<String>,
    pub deflate_c2s: Option<DeflateRecord>,
    pub deflate_s2c: Option<DeflateRecord>,
    pub start: Timestamp,
    pub end: Timestamp,
    pub messages: PerDir,
    pub close_c2s: Option<CloseRecord>,
    pub close_s2c: Option<CloseRecord>,
    pub gaps: Vec<ExportGap>,
    pub conflicting_overlaps: u64,
    pub anomalies: BTreeMap<String, u64>,
    pub incomplete: bool,
}

/// `manifest.json` of an export directory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub tool: String,
    pub command: Vec<String>,
    pub inputs: Vec<InputFile>,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    pub sessions: Vec<ManifestSession>,
    /// SHA-256 of every other file written, by path relative to the export directory.
    pub files: BTreeMap<String, String>,
}

/// File names inside a session folder of an export.
pub mod export_names {
    pub const MANIFEST: &str = "manifest.json";
    pub const HAR: &str = "sessions.har";
    pub const SESSIONS_DIR: &str = "sessions";
    pub const REQUEST: &str = "request.http";
    pub const RESPONSE: &str = "response.http";
    pub const MESSAGES: &str = "messages.jsonl";
    pub const C2S: &str = "c2s.bin";
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
