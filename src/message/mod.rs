//! message stage: turns the frame events of one direction of a WebSocket
//! connection into messages.
//!
//! It reassembles fragmented messages (with control frames interleaved
//! between fragments emitted on their own, before the message they
//! interrupted), validates UTF-8 of text messages incrementally, parses close
//! frames, and inflates permessage-deflate (RFC 7692) and the legacy
//! `x-webkit-deflate-frame` as payload arrives, without buffering the
//! compressed message.
//!
//! Memory per direction is bounded by [`MessageConfig`]: the message buffer
//! never grows past `max_message_bytes` (`max_inflated_bytes` for compressed
//! messages), the packet and frame lists past `max_fragments` entries, and
//! inflation stops after `max_inflate_work` output bytes per message.
//! Buffers are reused from one message to the next.
//!
//! `Message::len` counts the decoded bytes actually seen (bytes lost in a
//! gap are not counted); `wire_len` counts frame payload bytes on the wire,
//! lost ones included.

mod close;
mod deflate;
pub mod pool;
mod utf8;

pub use close::{close_code_valid, parse_close, CloseInfo};
pub use deflate::{
    deflate_params, DeflateParams, Extension, ExtensionParam, HistoryFreeInflater, Inflated,
    Inflater, Recovered, DEFLATE_TAIL,
};
pub use utf8::Utf8Check;

use crate::types::{Anomaly, Dir, PacketNo, Timestamp};
use crate::ws::{opcode, unmask_extend, FrameEvent, FrameHeader};

/// Every anomaly this stage can emit: (name, meaning).
pub const ANOMALIES: &[(&str, &str)] = &[
    ("ws_continuation_without_start", "a continuation frame with no fragmented message open; kept as a message with opcode 0"),
    ("ws_new_message_inside_fragmented", "a text/binary frame while a fragmented message was open; the open one is emitted as incomplete"),
    ("ws_rsv_without_extension", "RSV1 set without a negotiated deflate extension, or RSV2/RSV3 set"),
    ("ws_rsv1_on_control", "RSV1 set on a control frame"),
    ("ws_rsv1_on_continuation", "RSV1 set on a continuation frame under permessage-deflate (ignored)"),
    ("ws_invalid_utf8", "a text message is not valid UTF-8; detail gives the offset of the first invalid byte"),
    ("ws_close_invalid_code", "a close frame carries a status code that may not be sent (RFC 6455 7.4)"),
    ("ws_close_payload_one_byte", "a close frame payload of exactly one byte"),
    ("ws_close_invalid_utf8", "the reason of a close frame is not valid UTF-8"),
    ("ws_data_after_close", "a frame sent after this direction already sent a close frame"),
    ("ws_message_truncated", "a message is longer than max_message_bytes; only the start is kept"),
    ("ws_too_many_fragments", "a message has more than max_fragments frames; per-frame details stop being recorded"),
    ("ws_too_many_packets", "a message spans more than max_fragments packets; the packet lists stop growing"),
    ("ws_message_incomplete", "a message was emitted without its end (end of input, lost bytes, interrupted)"),
    ("deflate_bad_parameter", "a deflate extension parameter is unknown, repeated or out of range; window falls back to 15 bits"),
    ("deflate_multiple_extensions", "more than one deflate extension accepted; only the first is used"),
    ("deflate_limit", "an inflated message is longer than max_inflated_bytes; the rest is inflated but not kept"),
    ("deflate_work_limit", "inflating one message produced more than max_inflate_work bytes; inflation of it stopped"),
    ("deflate_high_ratio", "informational: a message inflated to more than 100 times its compressed size"),
    ("deflate_error", "invalid compressed data; the rest of the message is kept as the unmasked wire bytes"),
    ("deflate_context_lost", "the shared compression window was lost (gap, error); the message is inflated from a fresh window"),
    ("deflate_trailing_data", "compressed bytes after the final deflate block of a message; ignored"),
    ("deflate_context_missing", "a compressed message refers back to deflate history that was not captured (no handshake, or lost bytes); kept as its unmasked compressed bytes, inflate_failed"),
    ("deflate_inflater_limit", "max_inflaters directions were being inflated at once; this compressed message is kept as its unmasked compressed bytes"),
];

/// Limits of the message stage, per direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageConfig {
    /// Payload bytes held per message (default 16 MiB). Beyond: counted, not
    /// kept, `ws_message_truncated`.
    pub max_message_bytes: usize,
    /// Frames recorded per message, and packets listed per message (default 65 536).
    pub max_fragments: usize,
    /// Inflated bytes held per compressed message (default 16 MiB). Beyond:
    /// inflated on into a scratch buffer so the window stays valid, `deflate_limit`.
    pub max_inflated_bytes: usize,
    /// Inflated bytes produced per message, kept or not (default 1 GiB): a
    /// bound on CPU time. Beyond: inflation of the message stops, `deflate_work_limit`.
    pub max_inflate_work: u64,
    /// Directions inflated at once, per thread (default 2,048): each keeps
    /// zlib's state and window, about 47 KiB, while it lives. Beyond: a
    /// direction's compressed message is kept as its compressed bytes,
    /// `deflate_inflater_limit`, and it tries again at its next message.
    pub max_inflaters: usize,
    /// Record a [`FrameInfo`] per frame (default true; the export needs them).
    pub keep_frames: bool,
    /// Keep data messages' payload bytes (default true). When false, text
    /// and binary payloads are counted and text is still validated, in
    /// chunks, but nothing is stored: `Message::payload` is empty. For runs
    /// whose output never shows a payload (`--stats`).
    pub keep_payloads: bool,
}

impl Default for MessageConfig {
    fn default() -> Self {
        MessageConfig {
            max_message_bytes: 16 << 20,
            max_fragments: 65_536,
            max_inflated_bytes: 16 << 20,
            max_inflate_work: 1 << 30,
            max_inflaters: 2048,
            keep_frames: true,
            keep_payloads: true,
        }
    }
}

/// One frame of a message, as on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrameInfo {
    /// FIN bit: the last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 bits as a 3-bit value (RSV1 = 4: compressed with permessage-deflate).
    pub rsv: u8,
    /// Opcode (`ws::opcode::*`, 0 for a continuation).
    pub opcode: u8,
    /// Masking key (client-to-server frames); `None` when unmasked.
    pub mask: Option<[u8; 4]>,
    /// Declared payload length.
    pub payload_len: u64,
    /// Header plus declared payload.
    pub wire_len: u64,
    /// Stream offset of the frame's first byte.
    pub offset: u64,
    /// Packets that carried this frame's bytes, deduped, ascending.
    pub packets: Vec<PacketNo>,
}

/// A complete (or knowingly incomplete) message.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// Direction the message travels.
    pub dir: Dir,
    /// Per direction, from 0, in emission order.
    pub index: u64,
    /// The first frame's opcode (0 when the start was never seen).
    pub opcode: u8,
    /// Unmasked, inflated; at most `max_message_bytes` (`max_inflated_bytes` if compressed).
    pub payload: &'a [u8],
    /// Decoded bytes seen, kept or not.
    pub len: u64,
    /// Sum of the frames' payload lengths on the wire.
    pub wire_len: u64,
    /// Sent compressed (permessage-deflate, RSV1 on the first frame).
    pub compressed: bool,
    /// `payload` was cut at the size limit; `len` counts all decoded bytes.
    pub truncated: bool,
    /// Bytes missing: a gap inside, cut by end of input, or interrupted.
    pub incomplete: bool,
    /// Text messages and close frames with a reason; None otherwise, and
    /// when the payload is not the decoded text (inflate failed).
    pub utf8_valid: Option<bool>,
    /// Packets that carried the message's frames, deduped, ascending.
    pub packets: &'a [PacketNo],
    /// Timestamp of the packet carrying the first byte.
    pub first_ts: Timestamp,
    /// Timestamp of the packet carrying the last byte.
    pub last_ts: Timestamp,
    /// The message's frames in order (empty when `keep_frames` is off); capped at `max_fragments`.
    pub frames: &'a [FrameInfo],
    /// Close code and reason of a close frame; `None` for other messages.
    pub close: Option<CloseInfo>,
    /// Stream offset of the first byte of the first frame.
    pub stream_start: u64,
    /// Stream offset one past the last byte seen of the last frame.
    pub stream_end: u64,
    /// Inflated more than 100 times its compressed size (`deflate_high_ratio`).
    pub ratio_flagged: bool,
    /// Inflation failed: from the offset given by the `deflate_error`
    /// anomaly on, the payload holds the unmasked compressed bytes.
    pub inflate_failed: bool,
}

/// What an [`Assembler`] hands on.
#[derive(Debug)]
pub enum Output<'a> {
    /// A complete (or knowingly incomplete) message.
    Message(Message<'a>),
    /// A protocol violation (a name of this module's `ANOMALIES`).
    Anomaly(Anomaly),
}

/// Counters of one direction.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MessageStats {
    /// Frame headers seen.
    pub frames: u64,
    /// Messages output (data and control).
    pub messages: u64,
    /// Of `messages`: control messages (close, ping, pong).
    pub control_messages: u64,
    /// Of `messages`: sent compressed.
    pub compressed_messages: u64,
    /// Of `messages`: inflation failed (`deflate_error`, `deflate_context_missing`).
    pub inflate_failed: u64,
    /// Of `messages`: payload cut at a size limit.
    pub truncated: u64,
    /// Of `messages`: with bytes missing (gap, interrupted, end of input).
    pub incomplete: u64,
    /// Frame payload bytes seen on the wire.
    pub wire_bytes: u64,
    /// Decoded (unmasked, inflated) payload bytes of the messages, kept or not.
    pub decoded_bytes: u64,
    /// Inflated bytes produced, kept or not.
    pub inflated_bytes: u64,
    /// Anomalies emitted.
    pub anomalies: u64,
    /// Events that arrived outside a frame (a frame decoder bug); ignored.
    pub orphan_events: u64,
}

/// Buffers above this size go back to the [`pool`] after the message that
/// grew them.
const RETAINED_BYTES: usize = pool::SMALL_BYTES;
const RETAINED_ENTRIES: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Data,
    Ctrl,
}

/// Where a compressed unit (message, or frame for per-frame deflate) stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Unit {
    /// Not compressed, or between per-frame units.
    Off,
    Inflating,
    /// Inflation failed: the rest of the unit is kept as wire bytes.
    Raw,
    /// Work limit or lost bytes: the rest of the unit is counted only.
    Stopped,
    /// A final block was seen: the rest of the unit is ignored.
    Ended,
}

/// Decoded bytes of one message, kept up to a limit.
#[derive(Default)]
struct Body {
    payload: Vec<u8>,
    limit: usize,
    len: u64,
    truncated: bool,
    text: bool,
    utf8: Utf8Check,
    /// Count and validate only; never store (see `MessageConfig::keep_payloads`).
    count_only: bool,
}

impl Body {
    fn reset(&mut self, limit: usize, text: bool) {
        self.release();
        self.limit = limit;
        self.len = 0;
        self.truncated = false;
        self.text = text;
        self.utf8.reset();
    }

    /// Empties the payload; a large buffer goes back to the pool.
    fn release(&mut self) {
        if self.payload.capacity() > RETAINED_BYTES {
            pool::give(std::mem::take(&mut self.payload));
        } else {
            self.payload.clear();
        }
    }

    /// Room for `extra` more bytes without the capacity passing the limit.
    fn reserve(&mut self, extra: usize) {
        let need = self.payload.len() + extra;
        if need > self.payload.capacity() {
            let target = (self.payload.capacity() * 2)
                .max(need)
                .min(self.limit.max(need));
            if target > RETAINED_BYTES {
                if let Some(mut big) = pool::take(target) {
                    big.extend_from_slice(&self.payload);
                    let small = std::mem::replace(&mut self.payload, big);
                    pool::give(small);
                    return;
                }
            }
            self.payload.reserve_exact(target - self.payload.len());
        }
    }

    /// Adds decoded bytes; true when this makes the message truncated.
    fn push(&mut self, bytes: &[u8]) -> bool {
        self.len += bytes.len() as u64;
        if self.text {
            self.utf8.feed(bytes);
        }
        if self.count_only {
            return self.mark_truncated(self.len > self.limit as u64);
        }
        let keep = self
            .limit
            .saturating_sub(self.payload.len())
            .min(bytes.len());
        if keep > 0 {
            self.reserve(keep);
            self.payload.extend_from_slice(&bytes[..keep]);
        }
        self.mark_truncated(keep < bytes.len())
    }

    /// Adds wire bytes, unmasking them straight into the payload.
    fn push_wire(
        &mut self,
        data: &[u8],
        mask: Option<[u8; 4]>,
        offset: usize,
        scratch: &mut Vec<u8>,
    ) -> bool {
        self.len += data.len() as u64;
        if self.count_only {
            if self.text {
                scratch.clear();
                match mask {
                    Some(key) => unmask_extend(scratch, data, key, offset),
                    None => scratch.extend_from_slice(data),
                }
                self.utf8.feed(scratch);
            }
            return self.mark_truncated(self.len > self.limit as u64);
        }
        let keep = self
            .limit
            .saturating_sub(self.payload.len())
            .min(data.len());
        let (head, tail) = data.split_at(keep);
        let start = self.payload.len();
        self.reserve(keep);
        match mask {
            Some(key) => unmask_extend(&mut self.payload, head, key, offset),
            None => self.payload.extend_from_slice(head),
        }
        if self.text {
            self.utf8.feed(self.payload.get(start..).unwrap_or(&[]));
            if !tail.is_empty() {
                // Not kept, but still validated.
                scratch.clear();
                match mask {
                    Some(key) => unmask_extend(scratch, tail, key, offset + keep),
                    None => scratch.extend_from_slice(tail),
                }
                self.utf8.feed(scratch);
            }
        }
        self.mark_truncated(!tail.is_empty())
    }

    /// Bytes kept (or that would be, when only counting).
    fn kept(&self) -> usize {
        if self.count_only {
            self.len.min(self.limit as u64) as usize
        } else {
            self.payload.len()
        }
    }

    fn mark_truncated(&mut self, cut: bool) -> bool {
        let newly = cut && !self.truncated;
        self.truncated |= cut;
        newly
    }
}

/// One message being assembled, with reusable buffers.
struct MsgBuf {
    open: bool,
    opcode: u8,
    body: Body,
    wire_len: u64,
    compressed: bool,
    unit: Unit,
    inflate_failed: bool,
    /// The compressed bytes are being collected for a [`HistoryFreeInflater`].
    collecting: bool,
    /// Inflated bytes produced for this message.
    work: u64,
    incomplete: Option<&'static str>,
    packets: Vec<PacketNo>,
    packets_capped: bool,
    frames: Vec<FrameInfo>,
    nframes: usize,
    frame_count: u64,
    frames_capped: bool,
    first_ts: Timestamp,
    last_ts: Timestamp,
    stream_start: u64,
    stream_end: u64,
}

impl MsgBuf {
    fn new() -> Self {
        MsgBuf {
            open: false,
            opcode: 0,
            body: Body::default(),
            wire_len: 0,
            compressed: false,
            unit: Unit::Off,
            inflate_failed: false,
            collecting: false,
            work: 0,
            incomplete: None,
            packets: Vec::new(),
            packets_capped: false,
            frames: Vec::new(),
            nframes: 0,
            frame_count: 0,
            frames_capped: false,
            first_ts: Timestamp::default(),
            last_ts: Timestamp::default(),
            stream_start: 0,
            stream_end: 0,
        }
    }

    fn start(&mut self, op: u8, limit: usize, text: bool, offset: u64, ts: Timestamp) {
        self.open = true;
        self.opcode = op;
        self.body.reset(limit, text);
        self.wire_len = 0;
        self.compressed = false;
        self.unit = Unit::Off;
        self.inflate_failed = false;
        self.collecting = false;
        self.work = 0;
        self.incomplete = None;
        self.packets.clear();
        if self.packets.capacity() > RETAINED_ENTRIES {
            self.packets.shrink_to(RETAINED_ENTRIES);
        }
        self.packets_capped = false;
        if self.frames.len() > RETAINED_ENTRIES {
            self.frames.truncate(RETAINED_ENTRIES);
            self.frames.shrink_to_fit();
        }
        self.nframes = 0;
        self.frame_count = 0;
        self.frames_capped = false;
        self.first_ts = ts;
        self.last_ts = ts;
        self.stream_start = offset;
        self.stream_end = offset;
    }

    fn mark_incomplete(&mut self, why: &'static str) {
        if self.incomplete.is_none() {
            self.incomplete = Some(why);
        }
    }

    /// Records that `packet` carried bytes of the message and of frame `info`;
    /// true when the packet list just reached its cap.
    fn add_packet(&mut self, packet: PacketNo, info: Option<usize>, cap: usize) -> bool {
        if self.packets_capped {
            return false;
        }
        if self.packets.last() != Some(&packet) {
            if self.packets.len() >= cap {
                self.packets_capped = true;
                return true;
            }
            self.packets.push(packet);
        }
        if let Some(f) = info.and_then(|i| self.frames.get_mut(i)) {
            if f.packets.last() != Some(&packet) {
                f.packets.push(packet);
            }
        }
        false
    }

    /// Records a new frame's details in a reused slot; returns its index.
    fn add_frame(&mut self, hdr: &FrameHeader, offset: u64) -> usize {
        let info = FrameInfo {
            fin: hdr.fin,
            rsv: hdr.rsv,
            opcode: hdr.opcode,
            mask: hdr.mask,
            payload_len: hdr.len,
            wire_len: u64::from(hdr.header_len).saturating_add(hdr.len),
            offset,
            packets: Vec::new(),
        };
        let i = self.nframes;
        match self.frames.get_mut(i) {
            Some(slot) => {
                let mut packets = std::mem::take(&mut slot.packets);
                packets.clear();
                *slot = FrameInfo { packets, ..info };
            }
            None => self.frames.push(info),
        }
        self.nframes += 1;
        i
    }
}

/// The frame whose events are arriving.
struct CurFrame {
    hdr: FrameHeader,
    offset: u64,
    slot: Slot,
    /// Payload bytes seen (lost ones included).
    seen: u64,
    /// This frame's bytes go through the inflater.
    inflate: bool,
    info: Option<usize>,
}

/// Builds messages from the frame events of one direction of a session.
pub struct Assembler {
    dir: Dir,
    cfg: MessageConfig,
    deflate: Option<DeflateParams>,
    /// Created with the first compressed message.
    inflater: Option<Inflater>,
    /// Set when the sender's deflate history is unknown (see
    /// [`Assembler::without_deflate_history`]).
    history_free: Option<HistoryFreeInflater>,
    data: MsgBuf,
    ctrl: MsgBuf,
    cur: Option<CurFrame>,
    next_index: u64,
    close_seen: bool,
    /// Where the deflate window was last lost, for the anomaly's detail.
    lost_at: Option<PacketNo>,
    stats: MessageStats,
    /// Unmasked compressed input, and bytes validated but not kept.
    scratch: Vec<u8>,
    close_problems: Vec<close::CloseProblem>,
}

impl Assembler {
    /// An assembler for one direction; `deflate` is the negotiated permessage-deflate, if any.
    pub fn new(dir: Dir, cfg: MessageConfig, deflate: Option<DeflateParams>) -> Self {
        let mut data = MsgBuf::new();
        data.body.count_only = !cfg.keep_payloads;
        Assembler {
            dir,
            cfg,
            deflate,
            inflater: None,
            history_free: None,
            data,
            ctrl: MsgBuf::new(),
            cur: None,
            next_index: 0,
            close_seen: false,
            lost_at: None,
            stats: MessageStats::default(),
            scratch: Vec::new(),
            close_problems: Vec::new(),
        }
    }

    /// For a direction whose deflate history was not captured (a session
    /// found without its handshake, with RSV1 frames; `deflate` then as
    /// guessed, e.g. permessage-deflate with context takeover). Each
    /// compressed message is collected whole (at most
    /// `min(max_message_bytes, max_inflated_bytes)` compressed bytes) and
    /// inflated by a [`HistoryFreeInflater`]: a message that does not depend
    /// on the unseen window is output inflated, exactly; one that does is
    /// kept as its unmasked compressed bytes with `inflate_failed` and
    /// `deflate_context_missing`. Never outputs bytes not known to be right.
    pub fn without_deflate_history(dir: Dir, cfg: MessageConfig, deflate: DeflateParams) -> Self {
        let mut a = Self::new(dir, cfg, Some(deflate));
        a.history_free = Some(HistoryFreeInflater::new(deflate));
        a
    }

    /// The direction's counters so far.
    pub fn stats(&self) -> &MessageStats {
        &self.stats
    }

    /// Feeds one frame decoder event; calls `out` for each message or anomaly it completes.
    pub fn on_event(&mut self, ev: FrameEvent<'_>, out: &mut dyn FnMut(Output<'_>)) {
        match ev {
            FrameEvent::Header {
                hdr,
                offset,
                packet,
                ts,
            } => self.on_header(hdr, offset, packet, ts, out),
            FrameEvent::Payload {
                data,
                payload_offset,
                mask,
                packet,
                ts,
            } => self.on_payload(data, payload_offset, mask, packet, ts, out),
            FrameEvent::Gap { len, packet, ts } => self.on_gap(len, packet, ts),
            FrameEvent::End { packet, ts } => self.on_end(packet, ts, None, out),
            FrameEvent::Anomaly(a) => out(Output::Anomaly(a)),
        }
    }

    /// The stream lost bytes or sync: the open message is incomplete and the
    /// sender's deflate window is unknown from here.
    pub fn context_lost(&mut self, packet: PacketNo, ts: Timestamp) {
        if let Some(inf) = self.inflater.as_mut() {
            inf.lose_context();
        }
        if let Some(h) = self.history_free.as_mut() {
            h.forget();
        }
        self.lost_at = Some(packet);
        for msg in [&mut self.data, &mut self.ctrl] {
            if msg.open {
                msg.mark_incomplete("bytes lost in the TCP stream");
                msg.last_ts = msg.last_ts.max(ts);
                msg.body.utf8.gap(0);
                if msg.unit == Unit::Inflating {
                    msg.unit = Unit::Stopped;
                }
            }
        }
    }

    /// End of the stream: emits what is still open, as incomplete.
    pub fn finish(&mut self, packet: PacketNo, ts: Timestamp, out: &mut dyn FnMut(Output<'_>)) {
        if self.cur.is_some() {
            self.on_end(packet, ts, Some("end of input inside a frame"), out);
        }
        if self.data.open {
            self.data
                .mark_incomplete("end of input inside a fragmented message");
            self.emit(Slot::Data, packet, ts, out);
        }
    }

    fn anomaly(
        &mut self,
        name: &'static str,
        detail: String,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        self.stats.anomalies += 1;
        out(Output::Anomaly(Anomaly {
            name,
            detail,
            packet,
            ts,
        }));
    }

    fn buf(&mut self, slot: Slot) -> &mut MsgBuf {
        match slot {
            Slot::Data => &mut self.data,
            Slot::Ctrl => &mut self.ctrl,
        }
    }

    fn check_rsv(
        &mut self,
        hdr: &FrameHeader,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let op = hdr.opcode;
        if hdr.rsv & 0b011 != 0 {
            let d = format!(
                "RSV bits {:03b} on opcode {op}; no extension defines RSV2/RSV3",
                hdr.rsv
            );
            self.anomaly("ws_rsv_without_extension", d, packet, ts, out);
        }
        if hdr.rsv & 0b100 == 0 {
            return;
        }
        if opcode::is_control(op) {
            self.anomaly(
                "ws_rsv1_on_control",
                format!("RSV1 on control opcode {op}; not inflated"),
                packet,
                ts,
                out,
            );
        } else if self.deflate.is_none() {
            let d = format!(
                "RSV1 on opcode {op} without a negotiated deflate extension; payload kept as is"
            );
            self.anomaly("ws_rsv_without_extension", d, packet, ts, out);
        } else if op == opcode::CONTINUATION && !self.per_frame() {
            let d = "RSV1 on a continuation frame (permessage-deflate signals compression on the first frame only); ignored";
            self.anomaly("ws_rsv1_on_continuation", d.into(), packet, ts, out);
        }
    }

    fn per_frame(&self) -> bool {
        self.deflate.is_some_and(|d| d.per_frame)
    }

    fn on_header(
        &mut self,
        hdr: FrameHeader,
        offset: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if self.cur.is_some() {
            self.on_end(
                packet,
                ts,
                Some("frame cut short by the next frame header"),
                out,
            );
        }
        self.stats.frames += 1;
        if self.close_seen {
            let d = format!(
                "opcode {} frame at stream offset {offset} after this direction's close",
                hdr.opcode
            );
            self.anomaly("ws_data_after_close", d, packet, ts, out);
        }
        self.check_rsv(&hdr, packet, ts, out);
        let rsv1 = hdr.rsv & 0b100 != 0;
        let slot = if opcode::is_control(hdr.opcode) {
            let limit = self.cfg.max_message_bytes;
            self.ctrl.start(hdr.opcode, limit, false, offset, ts);
            Slot::Ctrl
        } else if hdr.opcode == opcode::CONTINUATION && self.data.open {
            Slot::Data
        } else {
            if hdr.opcode == opcode::CONTINUATION {
                let d = format!("continuation frame at stream offset {offset} with no message open; kept as an opcode 0 message");
                self.anomaly("ws_continuation_without_start", d, packet, ts, out);
            } else if self.data.open {
                let d = format!(
                    "opcode {} frame at stream offset {offset} while a fragmented message (opcode {}) was open",
                    hdr.opcode, self.data.opcode
                );
                self.anomaly("ws_new_message_inside_fragmented", d, packet, ts, out);
                self.data.mark_incomplete("interrupted by a new message");
                self.emit(Slot::Data, packet, ts, out);
            }
            let compressed = rsv1 && self.deflate.is_some() && hdr.opcode != opcode::CONTINUATION;
            let limit = if compressed {
                self.cfg.max_message_bytes.min(self.cfg.max_inflated_bytes)
            } else {
                self.cfg.max_message_bytes
            };
            self.data
                .start(hdr.opcode, limit, hdr.opcode == opcode::TEXT, offset, ts);
            if hdr.opcode == opcode::CONTINUATION {
                self.data
                    .mark_incomplete("the message's first frame was not seen");
            }
            if compressed && !self.per_frame() {
                self.begin_unit(packet, ts, out);
            }
            Slot::Data
        };
        if slot == Slot::Data && self.per_frame() && rsv1 {
            self.begin_unit(packet, ts, out);
        }
        let inflate = slot == Slot::Data && self.data.unit != Unit::Off;
        let (max_frames, keep) = (self.cfg.max_fragments, self.cfg.keep_frames);
        let msg = self.buf(slot);
        msg.frame_count += 1;
        msg.last_ts = ts;
        msg.stream_end = offset.saturating_add(u64::from(hdr.header_len));
        let mut capped = false;
        let info = if msg.frames_capped {
            None
        } else if msg.frame_count > max_frames as u64 {
            msg.frames_capped = true;
            capped = true;
            None
        } else if keep {
            Some(msg.add_frame(&hdr, offset))
        } else {
            None
        };
        let packets_capped = msg.add_packet(packet, info, max_frames);
        if capped {
            let d =
                format!("more than {max_frames} frames in one message; frame details stop here");
            self.anomaly("ws_too_many_fragments", d, packet, ts, out);
        }
        self.packets_capped_anomaly(packets_capped, packet, ts, out);
        self.cur = Some(CurFrame {
            hdr,
            offset,
            slot,
            seen: 0,
            inflate,
            info,
        });
    }

    fn packets_capped_anomaly(
        &mut self,
        capped: bool,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if capped {
            let d = format!(
                "message spans more than {} packets; packet lists stop here",
                self.cfg.max_fragments
            );
            self.anomaly("ws_too_many_packets", d, packet, ts, out);
        }
    }

    /// Starts a compressed unit in the data message.
    fn begin_unit(&mut self, packet: PacketNo, ts: Timestamp, out: &mut dyn FnMut(Output<'_>)) {
        let Some(params) = self.deflate else { return };
        self.data.compressed = true;
        if self.history_free.is_some() && !params.per_frame {
            // Collected whole, inflated at the end (see `recover_collected`).
            self.data.unit = Unit::Raw;
            self.data.collecting = true;
            self.data.body.text = false;
            return;
        }
        if self.inflater.is_none() {
            match Inflater::try_new(params, self.cfg.max_inflaters) {
                Some(mut inf) => {
                    if self.lost_at.is_some() {
                        // Earlier units went by uninflated: the window is unknown.
                        inf.lose_context();
                    }
                    self.inflater = Some(inf);
                }
                None => {
                    self.data.unit = Unit::Raw;
                    self.data.inflate_failed = true;
                    self.data.body.text = false;
                    self.lost_at = Some(packet);
                    let d = format!(
                        "{} directions are being inflated at once (max_inflaters); this message is kept as its unmasked compressed bytes",
                        self.cfg.max_inflaters
                    );
                    self.anomaly("deflate_inflater_limit", d, packet, ts, out);
                    return;
                }
            }
        }
        let Some(inf) = self.inflater.as_mut() else {
            return;
        };
        let lost = inf.begin();
        self.data.unit = Unit::Inflating;
        if lost {
            let at = self
                .lost_at
                .map(|p| format!(" (lost at packet {p})"))
                .unwrap_or_default();
            let d = format!("deflate window shared across messages is unknown{at}; inflating from a fresh window");
            self.anomaly("deflate_context_lost", d, packet, ts, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_payload(
        &mut self,
        data: &[u8],
        payload_offset: u64,
        mask: Option<[u8; 4]>,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let Some(cur) = self.cur.as_mut() else {
            self.stats.orphan_events += 1;
            return;
        };
        cur.seen += data.len() as u64;
        let (slot, info, inflate) = (cur.slot, cur.info, cur.inflate);
        let end = cur
            .offset
            .saturating_add(u64::from(cur.hdr.header_len))
            .saturating_add(cur.seen);
        self.stats.wire_bytes += data.len() as u64;
        let cap = self.cfg.max_fragments;
        let msg = self.buf(slot);
        msg.wire_len += data.len() as u64;
        msg.last_ts = ts;
        msg.stream_end = end;
        let packets_capped = msg.add_packet(packet, info, cap);
        self.packets_capped_anomaly(packets_capped, packet, ts, out);
        let offset = (payload_offset % 4) as usize;
        if !inflate {
            let msg = match slot {
                Slot::Data => &mut self.data,
                Slot::Ctrl => &mut self.ctrl,
            };
            if msg.body.push_wire(data, mask, offset, &mut self.scratch) {
                self.truncated_anomaly(slot, packet, ts, out);
            }
            return;
        }
        let mut input = std::mem::take(&mut self.scratch);
        input.clear();
        match mask {
            Some(key) => unmask_extend(&mut input, data, key, offset),
            None => input.extend_from_slice(data),
        }
        self.inflate_chunk(&input, false, packet, ts, out);
        self.scratch = input;
    }

    fn truncated_anomaly(
        &mut self,
        slot: Slot,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let msg = self.buf(slot);
        let (limit, compressed) = (msg.body.limit, msg.compressed);
        if compressed && self.cfg.max_inflated_bytes <= self.cfg.max_message_bytes {
            let d = format!("inflated message longer than max_inflated_bytes ({limit}); the rest is inflated but not kept");
            self.anomaly("deflate_limit", d, packet, ts, out);
        } else {
            let d = format!(
                "message longer than max_message_bytes ({limit}); the rest is counted but not kept"
            );
            self.anomaly("ws_message_truncated", d, packet, ts, out);
        }
    }

    /// Feeds unmasked compressed bytes (or the restored tail) to the inflater.
    fn inflate_chunk(
        &mut self,
        input: &[u8],
        tail: bool,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let max_work = self.cfg.max_inflate_work;
        let msg = &mut self.data;
        match msg.unit {
            Unit::Inflating => {}
            Unit::Raw if !tail => {
                if msg.body.push(input) {
                    self.truncated_anomaly(Slot::Data, packet, ts, out);
                }
                return;
            }
            Unit::Ended if !tail && !input.is_empty() => {
                msg.unit = Unit::Stopped;
                let d = format!(
                    "{} compressed bytes after the final deflate block; ignored",
                    input.len()
                );
                self.anomaly("deflate_trailing_data", d, packet, ts, out);
                return;
            }
            _ => return,
        }
        let Some(inf) = self.inflater.as_mut() else {
            return;
        };
        let body = &mut msg.body;
        let mut newly_truncated = false;
        let work_before = msg.work;
        let res = inf.feed(input, &mut msg.work, max_work, &mut |b| {
            newly_truncated |= body.push(b)
        });
        self.stats.inflated_bytes += msg.work - work_before;
        if newly_truncated {
            self.truncated_anomaly(Slot::Data, packet, ts, out);
        }
        let msg = &mut self.data;
        match res {
            Inflated::Ok => {}
            Inflated::StreamEnd { unused } => {
                msg.unit = Unit::Ended;
                if unused > 0 && !tail {
                    msg.unit = Unit::Stopped;
                    let d =
                        format!("{unused} compressed bytes after the final deflate block; ignored");
                    self.anomaly("deflate_trailing_data", d, packet, ts, out);
                }
            }
            Inflated::Error { consumed, message } => {
                msg.unit = Unit::Raw;
                msg.inflate_failed = true;
                self.lost_at = Some(packet);
                msg.body.text = false;
                let at = msg.body.kept();
                let d = format!(
                    "invalid compressed data ({message}, {consumed} bytes into a {}-byte chunk); payload from byte {at} on \
                     is the unmasked compressed data from the start of that chunk",
                    input.len()
                );
                self.anomaly("deflate_error", d, packet, ts, out);
                // The whole chunk, not just its unused part: nothing of the wire is lost.
                if !tail && self.data.body.push(input) {
                    self.truncated_anomaly(Slot::Data, packet, ts, out);
                }
            }
            Inflated::WorkLimit { .. } => {
                msg.unit = Unit::Stopped;
                msg.body.truncated = true;
                self.lost_at = Some(packet);
                let d = format!(
                    "inflating produced more than max_inflate_work ({max_work}) bytes; inflation of this message stopped"
                );
                self.anomaly("deflate_work_limit", d, packet, ts, out);
            }
        }
    }

    fn on_gap(&mut self, len: u64, packet: PacketNo, ts: Timestamp) {
        let Some(cur) = self.cur.as_mut() else {
            self.stats.orphan_events += 1;
            return;
        };
        cur.seen = cur.seen.saturating_add(len);
        let end = cur
            .offset
            .saturating_add(u64::from(cur.hdr.header_len))
            .saturating_add(cur.seen);
        let (slot, inflate) = (cur.slot, cur.inflate);
        let msg = self.buf(slot);
        msg.wire_len = msg.wire_len.saturating_add(len);
        msg.last_ts = ts;
        msg.stream_end = end;
        msg.mark_incomplete("bytes lost inside a frame");
        msg.body.utf8.gap(len);
        if inflate && msg.unit == Unit::Inflating {
            msg.unit = Unit::Stopped;
            self.lost_at = Some(packet);
            if let Some(inf) = self.inflater.as_mut() {
                inf.lose_context();
            }
        }
    }

    /// Ends the current frame; `cut` says why it ended before its End event.
    fn on_end(
        &mut self,
        packet: PacketNo,
        ts: Timestamp,
        cut: Option<&'static str>,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let Some(cur) = self.cur.take() else {
            self.stats.orphan_events += 1;
            return;
        };
        let cap = self.cfg.max_fragments;
        let msg = self.buf(cur.slot);
        msg.last_ts = msg.last_ts.max(ts);
        let mut packets_capped = false;
        match cut {
            Some(why) => {
                msg.mark_incomplete(why);
                if msg.unit == Unit::Inflating {
                    msg.unit = Unit::Stopped;
                }
            }
            None => packets_capped = msg.add_packet(packet, cur.info, cap),
        }
        self.packets_capped_anomaly(packets_capped, packet, ts, out);
        let ends_message = cur.slot == Slot::Ctrl || cur.hdr.fin;
        let per_frame = self.per_frame();
        if cur.inflate && (per_frame || ends_message) && cut.is_none() {
            self.inflate_chunk(&DEFLATE_TAIL, true, packet, ts, out);
        }
        if cur.inflate && per_frame {
            self.end_unit();
        }
        if ends_message {
            self.emit(cur.slot, packet, ts, out);
        }
    }

    /// Closes the data message's compressed unit; a unit that did not end
    /// cleanly leaves the window unknown.
    fn end_unit(&mut self) {
        let unit = self.data.unit;
        if unit == Unit::Stopped || (unit == Unit::Inflating && self.data.incomplete.is_some()) {
            if let Some(inf) = self.inflater.as_mut() {
                inf.lose_context();
            }
        }
        self.data.unit = Unit::Off;
    }

    /// Inflates a collected compressed message without the sender's history:
    /// the payload becomes the inflated bytes only when they are exact.
    fn recover_collected(
        &mut self,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let limit = self.data.body.limit;
        let msg = &mut self.data;
        let whole = msg.incomplete.is_none() && !msg.body.truncated && !msg.body.count_only;
        let result = match self.history_free.as_mut() {
            Some(h) if whole => h.inflate_message(&msg.body.payload, limit),
            Some(h) => {
                // Not fed: the window no longer matches the sender's.
                h.forget();
                Recovered::TooLong
            }
            None => Recovered::TooLong,
        };
        let at = msg.stream_start;
        match result {
            Recovered::Exact(bytes) => {
                let text = msg.opcode == opcode::TEXT;
                msg.body.reset(limit, text);
                self.stats.inflated_bytes += bytes.len() as u64;
                msg.body.push(&bytes);
            }
            other => {
                msg.inflate_failed = true;
                let why = match other {
                    Recovered::DependsOnHistory { len, known_prefix } => format!(
                        "{len} inflated bytes depend on deflate history that was not captured (the first {known_prefix} do not)"
                    ),
                    Recovered::Error(e) => format!("invalid compressed data ({e})"),
                    _ if whole => format!("inflates to more than {limit} bytes"),
                    _ => "the compressed message is not whole".to_owned(),
                };
                let d = format!(
                    "compressed message at stream offset {at}: {why}; kept as its unmasked compressed bytes"
                );
                self.anomaly("deflate_context_missing", d, packet, ts, out);
            }
        }
        self.data.collecting = false;
    }

    fn emit(
        &mut self,
        slot: Slot,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        let stopped = slot == Slot::Data && self.data.unit == Unit::Stopped;
        if slot == Slot::Data && self.data.unit != Unit::Off {
            self.end_unit();
        }
        if slot == Slot::Data && self.data.collecting {
            self.recover_collected(packet, ts, out);
        }
        let msg = self.buf(slot);
        msg.open = false;
        let incomplete = msg.incomplete;
        // Output cut short is not a UTF-8 violation at its end.
        let cut = incomplete.is_some() || stopped;
        let text_check = if msg.body.text {
            Some(msg.body.utf8.finish(cut))
        } else {
            None
        };
        let (opcode, len, wire_len, compressed) =
            (msg.opcode, msg.body.len, msg.wire_len, msg.compressed);
        if let Some(why) = incomplete {
            let d = format!(
                "opcode {opcode} message at stream offset {} emitted incomplete: {why}",
                msg.stream_start
            );
            self.anomaly("ws_message_incomplete", d, packet, ts, out);
        }
        let mut utf8_valid = text_check.map(|bad| bad.is_none());
        if let Some(Some(at)) = text_check {
            let d = format!("text message is not UTF-8: first invalid byte at message offset {at}");
            self.anomaly("ws_invalid_utf8", d, packet, ts, out);
        }
        let mut close = None;
        if opcode == opcode::CLOSE {
            let mut problems = std::mem::take(&mut self.close_problems);
            problems.clear();
            let (info, reason_ok) = parse_close(&self.ctrl.body.payload, &mut problems);
            for (name, detail) in problems.drain(..) {
                self.anomaly(name, detail, packet, ts, out);
            }
            self.close_problems = problems;
            utf8_valid = reason_ok;
            close = Some(info);
            self.close_seen = true;
        }
        let ratio_flagged = compressed && wire_len > 0 && len > wire_len.saturating_mul(100);
        if ratio_flagged {
            let d = format!("message inflated from {wire_len} to {len} bytes");
            self.anomaly("deflate_high_ratio", d, packet, ts, out);
        }
        let index = self.next_index;
        self.next_index += 1;
        let st = &mut self.stats;
        st.messages += 1;
        st.control_messages += u64::from(slot == Slot::Ctrl);
        st.compressed_messages += u64::from(compressed);
        let msg = match slot {
            Slot::Data => &mut self.data,
            Slot::Ctrl => &mut self.ctrl,
        };
        st.inflate_failed += u64::from(msg.inflate_failed);
        st.truncated += u64::from(msg.body.truncated);
        st.incomplete += u64::from(incomplete.is_some());
        st.decoded_bytes += len;
        msg.packets.sort_unstable();
        msg.packets.dedup();
        let nframes = msg.nframes.min(msg.frames.len());
        for f in msg.frames.iter_mut().take(nframes) {
            f.packets.sort_unstable();
            f.packets.dedup();
        }
        let m = Message {
            dir: self.dir,
            index,
            opcode,
            payload: &msg.body.payload,
            len,
            wire_len,
            compressed,
            truncated: msg.body.truncated,
            incomplete: incomplete.is_some(),
            utf8_valid,
            packets: &msg.packets,
            first_ts: msg.first_ts,
            last_ts: msg.last_ts,
            frames: msg.frames.get(..nframes).unwrap_or(&[]),
            close,
            stream_start: msg.stream_start,
            stream_end: msg.stream_end,
            ratio_flagged,
            inflate_failed: msg.inflate_failed,
        };
        out(Output::Message(m));
        // Free for the next message of any direction, not held while this
        // one is idle.
        msg.body.release();
    }
}

#[cfg(test)]
mod tests;
