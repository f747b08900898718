//! wsreplay's engine: replays one exported session (see `docs/export.md`) to a
//! live peer, as the original client (`client`) or the original server
//! (`server`), and compares what the peer sends with what was recorded.
//!
//! This module reads exports only through [`crate::session`]'s serde types and
//! never touches the capture stages. What the peer sends is decoded by
//! wssniff's own [`crate::ws::FrameDecoder`] and [`crate::message::Assembler`]
//! (see [`wire::Receiver`]); frames are encoded with [`crate::ws::encode_frame`]
//! and the accept key is [`crate::http::accept_key`]. The active-side pieces the
//! passive stages do not have (the compressor, handshake building, extension
//! negotiation as a server) are in [`deflate`] and [`handshake`].
//!
//! Exit statuses are [`ExitStatus`]; the CLI is `src/bin/wsreplay.rs`, the user
//! documentation `docs/replay.md`.

pub mod compare;
pub mod deflate;
pub mod export;
pub mod handshake;
pub mod pacing;
pub mod run;
pub mod target;
pub mod transport;
pub mod wire;

use std::fmt;

/// Every anomaly name this module emits itself, with its meaning. A replay
/// report also carries the anomalies of wssniff's own decoder about what the
/// peer sent (names from [`crate::ws::ANOMALIES`] and
/// [`crate::message::ANOMALIES`]): protocol violations are reported, never fatal.
pub const ANOMALIES: &[(&str, &str)] = &[(
    "replay_receive_budget_exhausted",
    "ReplayLimits::max_received_bytes was reached; later messages are counted but their payload is not kept or compared",
)];

/// Exit statuses of `wsreplay`, documented in `--help` and `docs/replay.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Replay done (and, with `--expect-same`, the peer matched the recording).
    Ok = 0,
    /// `--expect-same` was given and the peer's messages differ from the recording.
    Different = 1,
    /// Bad command line.
    Usage = 2,
    /// Export missing, corrupt (unreadable manifest, schema mismatch, SHA-256
    /// mismatch) or the session id is unknown.
    Export = 3,
    /// Target unreachable or refused, not a WebSocket endpoint, TLS failure;
    /// in server mode: the client's request was not a WebSocket handshake.
    Peer = 4,
    /// The session was refused: it has gaps or conflicting overlaps and
    /// `--allow-gaps` was not given.
    Refused = 5,
    /// Local failure: cannot listen, cannot read a `--ca` file, I/O error.
    Local = 6,
}

impl ExitStatus {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A failure of wsreplay itself or of the replay setup (never a protocol
/// violation by the peer: those are anomalies in the report).
#[derive(Debug)]
pub struct ReplayError {
    /// The exit status it leads to.
    pub status: ExitStatus,
    /// What failed and what to do, for the user.
    pub message: String,
}

impl ReplayError {
    /// An error with `status` and `message`.
    pub fn new(status: ExitStatus, message: impl Into<String>) -> Self {
        ReplayError {
            status,
            message: message.into(),
        }
    }
    /// The export is missing, corrupt, or lacks the session (exit status 3).
    pub fn export(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Export, message)
    }
    /// The peer failed or is not a WebSocket endpoint (exit status 4).
    pub fn peer(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Peer, message)
    }
    /// A local failure: listening, files, I/O (exit status 6).
    pub fn local(message: impl Into<String>) -> Self {
        Self::new(ExitStatus::Local, message)
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReplayError {}

/// Memory and size limits of a replay. Hitting one is reported (anomaly or
/// error), never a silent cut.
#[derive(Clone, Debug)]
pub struct ReplayLimits {
    /// Largest export file (`*.bin`, `messages.jsonl`, ...) loaded into memory.
    pub max_export_file_bytes: u64,
    /// Largest handshake (request or response head) read from the peer.
    pub max_handshake_bytes: usize,
    /// Largest message (after inflating) kept from the peer; longer ones are
    /// kept truncated (`ws_message_truncated`, `deflate_limit`).
    pub max_message_bytes: usize,
    /// Total payload bytes kept from the peer for comparison.
    pub max_received_bytes: usize,
}

impl Default for ReplayLimits {
    fn default() -> Self {
        ReplayLimits {
            max_export_file_bytes: 1 << 30,
            max_handshake_bytes: 64 * 1024,
            max_message_bytes: 64 << 20,
            max_received_bytes: 512 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_names_are_unique_snake_case() {
        let mut names: Vec<&str> = ANOMALIES.iter().map(|(n, _)| *n).collect();
        for n in &names {
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
        }
        let before = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn exit_codes_are_distinct() {
        let all = [
            ExitStatus::Ok,
            ExitStatus::Different,
            ExitStatus::Usage,
            ExitStatus::Export,
            ExitStatus::Peer,
            ExitStatus::Refused,
            ExitStatus::Local,
        ];
        let mut codes: Vec<i32> = all.iter().map(|s| s.code()).collect();
        codes.dedup();
        assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6]);
    }
}
