//! Where records go: the transcript, JSON Lines, the export directory.
//!
//! After ripgrep's `Sink`: the pipeline calls one method per record, in
//! output order, and each writer decides how to render it. Records are
//! borrowed (a message's payload points into the reassembly buffer), so a
//! writer that keeps something must copy it.
//!
//! Every method returns `io::Result`: a failed write (a full disk, a closed
//! pipe) stops the run, and the CLI turns `BrokenPipe` into a quiet exit.

pub mod export;
pub mod filter;
pub mod grep;
pub mod har;
pub mod json;
pub mod summary;
pub mod transcript;

use crate::session::{
    AnomalyRecord, CaptureRecord, GapRecord, SessionEndRecord, SessionRecord, StatsRecord,
};
use crate::types::{Dir, Timestamp};
use std::io;

pub use export::{ExportOptions, ExportSink};
pub use json::JsonSink;
pub use transcript::{TranscriptOptions, TranscriptSink};

/// A frame of a message, for the export's frame-level detail.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameView {
    /// FIN bit: last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 as a 3-bit number (4 = RSV1).
    pub rsv: u8,
    /// Opcode, 0..=15.
    pub opcode: u8,
    /// Masking key; None for unmasked frames.
    pub mask: Option<[u8; 4]>,
    /// Payload length as declared in the frame header.
    pub payload_len: u64,
    /// Bytes of the whole frame on the wire (header, mask and payload).
    pub wire_len: u64,
    /// Offset of the frame's first byte in the direction's stream (0 = first byte after the handshake).
    pub offset: u64,
    /// Per-file packet numbers.
    pub packets: Vec<u64>,
}

/// A complete message, borrowed from the pipeline.
#[derive(Clone, Debug)]
pub struct MessageView<'a> {
    /// Id of the session the message belongs to.
    pub session: u64,
    /// Direction the message was sent in.
    pub dir: Dir,
    /// Message number within its direction, from 0.
    pub index: u64,
    /// Opcode of the message (of its first frame), 0..=15.
    pub opcode: u8,
    /// Decoded payload held in memory (unmasked, inflated): at most the message limit.
    pub payload: &'a [u8],
    /// Full decoded length, even when `truncated`.
    pub len: u64,
    /// `payload` is a text message and valid UTF-8: shown as text.
    pub is_text: bool,
    /// Time of the message's first frame.
    pub ts: Timestamp,
    /// Time of the message's last frame.
    pub ts_last: Timestamp,
    /// Per-file, 1-based packet numbers.
    pub packets: &'a [u64],
    /// Input file index, when several inputs are read.
    pub file: Option<usize>,
    /// TCP sequence numbers of its first byte and one past its last byte.
    pub seq: [u32; 2],
    /// The same range as offsets in the direction's stream (0 = first byte after the handshake).
    pub stream: [u64; 2],
    /// Number of frames it was sent in.
    pub frames: u64,
    /// Sent compressed with permessage-deflate.
    pub compressed: bool,
    /// Payload bytes on the wire (the compressed size, when `compressed`).
    pub wire_len: u64,
    /// The payload exceeded an in-memory limit: `payload` holds the first bytes only.
    pub truncated: bool,
    /// Bytes of the message were not captured (gap), or the capture ended inside it.
    pub incomplete: bool,
    /// The deflate data could not be inflated: `payload` holds the compressed bytes.
    pub inflate_failed: bool,
    /// For close messages: the status code (None when the payload was empty) and the reason.
    pub close: Option<(Option<u16>, &'a str)>,
    /// Frame-level detail; empty unless the pipeline was asked to keep it.
    pub frame_detail: &'a [FrameView],
}

/// The handshake of a new session, with its raw bytes.
pub struct SessionView<'a> {
    /// The session's record, as written to JSON.
    pub record: &'a SessionRecord,
    /// The upgrade request's bytes as on the wire.
    pub raw_request: &'a [u8],
    /// The response's bytes as on the wire.
    pub raw_response: &'a [u8],
}

/// A receiver of analysis records. Methods default to doing nothing, so a
/// writer implements only what it shows.
pub trait Sink {
    /// The run's inputs; called once, first.
    fn capture(&mut self, _rec: &CaptureRecord) -> io::Result<()> {
        Ok(())
    }
    /// A new session: its 101 response was seen.
    fn session(&mut self, _s: &SessionView<'_>) -> io::Result<()> {
        Ok(())
    }
    /// A complete message.
    fn message(&mut self, _m: &MessageView<'_>) -> io::Result<()> {
        Ok(())
    }
    /// A message that `--grep` matched, with the matched byte ranges of its
    /// payload. Writers that can show the spans override this.
    fn message_match(&mut self, m: &MessageView<'_>, _spans: &[(usize, usize)]) -> io::Result<()> {
        self.message(m)
    }
    /// `--grep -C N`: the next message does not follow the previous one.
    fn context_break(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// An anomaly.
    fn anomaly(&mut self, _a: &AnomalyRecord) -> io::Result<()> {
        Ok(())
    }
    /// Bytes of a flow that were not captured.
    fn gap(&mut self, _g: &GapRecord) -> io::Result<()> {
        Ok(())
    }
    /// Raw stream bytes of a session after its handshake, in stream order.
    fn stream(&mut self, _session: u64, _dir: Dir, _data: &[u8]) -> io::Result<()> {
        Ok(())
    }
    /// Bytes of a session's stream that were not captured.
    fn stream_gap(&mut self, _session: u64, _dir: Dir, _offset: u64, _len: u64) -> io::Result<()> {
        Ok(())
    }
    /// A session ended.
    fn session_end(&mut self, _rec: &SessionEndRecord) -> io::Result<()> {
        Ok(())
    }
    /// The run's totals; called once, last before [`Sink::finish`].
    fn stats(&mut self, _rec: &StatsRecord) -> io::Result<()> {
        Ok(())
    }
    /// End of the run: flush and close.
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    /// Whether this sink wants [`Sink::stream`] bytes (lets the pipeline skip the calls).
    fn wants_streams(&self) -> bool {
        false
    }
    /// Whether this sink wants per-frame detail in messages.
    fn wants_frames(&self) -> bool {
        false
    }
    /// Whether this sink reads messages' payload bytes. When no sink does
    /// (`--stats`, the `sessions` and `anomalies` commands), the message
    /// stage only counts and validates data payloads, never storing them.
    fn wants_payloads(&self) -> bool {
        true
    }
}

/// Sends every record to each of several sinks, in order.
#[derive(Default)]
pub struct Tee {
    /// The sinks, in the order each record is given to them.
    pub sinks: Vec<Box<dyn Sink>>,
}

impl Tee {
    /// Sends to `sinks`, in order.
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Tee { sinks }
    }
}

macro_rules! tee_all {
    ($self:ident, $method:ident ( $($arg:expr),* )) => {{
        for s in $self.sinks.iter_mut() {
            s.$method($($arg),*)?;
        }
        Ok(())
    }};
}

impl Sink for Tee {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        tee_all!(self, capture(rec))
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        tee_all!(self, session(s))
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        tee_all!(self, message(m))
    }
    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        tee_all!(self, message_match(m, spans))
    }
    fn context_break(&mut self) -> io::Result<()> {
        tee_all!(self, context_break())
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        tee_all!(self, anomaly(a))
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        tee_all!(self, gap(g))
    }
    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        for s in self.sinks.iter_mut().filter(|s| s.wants_streams()) {
            s.stream(session, dir, data)?;
        }
        Ok(())
    }
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        tee_all!(self, stream_gap(session, dir, offset, len))
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        tee_all!(self, session_end(rec))
    }
    fn stats(&mut self, rec: &StatsRecord) -> io::Result<()> {
        tee_all!(self, stats(rec))
    }
    fn finish(&mut self) -> io::Result<()> {
        tee_all!(self, finish())
    }
    fn wants_streams(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_streams())
    }
    fn wants_frames(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_frames())
    }
    fn wants_payloads(&self) -> bool {
        self.sinks.iter().any(|s| s.wants_payloads())
    }
}

/// Forwards to a borrowed sink (so a caller can keep ownership).
impl<S: Sink + ?Sized> Sink for &mut S {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        (**self).capture(rec)
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        (**self).session(s)
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        (**self).message(m)
    }
    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        (**self).message_match(m, spans)
    }
    fn context_break(&mut self) -> io::Result<()> {
        (**self).context_break()
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        (**self).anomaly(a)
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        (**self).gap(g)
    }
    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        (**self).stream(session, dir, data)
    }
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        (**self).stream_gap(session, dir, offset, len)
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        (**self).session_end(rec)
    }
    fn stats(&mut self, rec: &StatsRecord) -> io::Result<()> {
        (**self).stats(rec)
    }
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn wants_streams(&self) -> bool {
        (**self).wants_streams()
    }
    fn wants_frames(&self) -> bool {
        (**self).wants_frames()
    }
    fn wants_payloads(&self) -> bool {
        (**self).wants_payloads()
    }
}

/// Collects every record in memory; for tests and for commands that sort
/// before printing (`sessions`).
#[derive(Default, Debug)]
pub struct Collect {
    /// Every `capture` record.
    pub capture: Vec<CaptureRecord>,
    /// Every `session` record.
    pub sessions: Vec<SessionRecord>,
    /// Every message, converted to its JSON record.
    pub messages: Vec<crate::session::MessageRecord>,
    /// Every anomaly.
    pub anomalies: Vec<AnomalyRecord>,
    /// Every gap.
    pub gaps: Vec<GapRecord>,
    /// Every `session_end` record.
    pub ends: Vec<SessionEndRecord>,
    /// The `stats` record, once seen.
    pub stats: Option<StatsRecord>,
}

impl Sink for Collect {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        self.capture.push(rec.clone());
        Ok(())
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        self.sessions.push(s.record.clone());
        Ok(())
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        self.messages.push(json::message_record(m, false));
        Ok(())
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        self.anomalies.push(a.clone());
        Ok(())
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        self.gaps.push(g.clone());
        Ok(())
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        self.ends.push(rec.clone());
        Ok(())
    }
    fn stats(&mut self, rec: &StatsRecord) -> io::Result<()> {
        self.stats = Some(rec.clone());
        Ok(())
    }
}
