//! RFC 6455 framing for an active endpoint: encoding frames we send, and a
//! bounded streaming receiver that turns the peer's bytes into messages.

use super::deflate::{Decompressor, DirParams, InflateError};
use super::ReplayLimits;
use crate::types::Dir;

pub const OP_CONTINUATION: u8 = 0;
pub const OP_TEXT: u8 = 1;
pub const OP_BINARY: u8 = 2;
pub const OP_CLOSE: u8 = 8;
pub const OP_PING: u8 = 9;
pub const OP_PONG: u8 = 10;
const RSV1: u8 = 4;

pub fn is_control(opcode: u8) -> bool {
    opcode & 0x08 != 0
}

/// Appends one frame. `rsv` is the 3-bit RSV field (4 = RSV1).
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    out.push(u8::from(fin) << 7 | (rsv & 7) << 4 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let len = payload.len();
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&short.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
}

/// A close frame's payload: code and reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// A message received from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub opcode: u8,
    /// Unmasked, inflated; empty when `dropped`.
    pub payload: Vec<u8>,
    pub compressed: bool,
    /// The payload is incomplete (limit hit, interrupted, inflate failure).
    pub partial: bool,
    /// Not kept: the receive budget was exhausted.
    pub dropped: bool,
}

/// A protocol violation seen in the peer's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAnomaly {
    pub name: &'static str,
    pub detail: String,
}

struct Header {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    header_len: usize,
}

/// Parses a frame header from the start of `buf`, if it is all there.
fn parse_header(buf: &[u8]) -> Option<Header> {
    let b0 = *buf.first()?;
    let b1 = *buf.get(1)?;
    let (len, mut pos) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?])),
            4,
        ),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 {
        let key: [u8; 4] = buf.get(pos..pos + 4)?.try_into().ok()?;
        pos += 4;
        Some(key)
    } else {
        None
    };
    Some(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        mask,
        len,
        header_len: pos,
    })
}

struct Partial {
    opcode: u8,
    compressed: bool,
    payload: Vec<u8>,
    overflow: bool,
}

/// Streaming receiver for one direction: frames → messages, bounded by
/// [`ReplayLimits`]. Never buffers more than one frame's payload, and never
/// a frame larger than `max_message_bytes` (its bytes are skipped instead).
pub struct Receiver {
    from: Dir,
    limits: ReplayLimits,
    inflater: Option<Decompressor>,
    buf: Vec<u8>,
    /// Payload bytes of an oversized frame still to discard.
    skip: u64,
    partial: Option<Partial>,
    kept_bytes: usize,
    closed: bool,
    pub messages: Vec<Received>,
    pub anomalies: Vec<PeerAnomaly>,
}

impl Receiver {
    /// `from` is the direction of the bytes (who the peer is); `deflate` the
    /// peer's sending parameters when permessage-deflate was negotiated.
    pub fn new(from: Dir, limits: ReplayLimits, deflate: Option<DirParams>) -> Self {
        Receiver {
            from,
            limits,
            inflater: deflate.map(Decompressor::new),
            buf: Vec::new(),
            skip: 0,
            partial: None,
            kept_bytes: 0,
            closed: false,
            messages: Vec::new(),
            anomalies: Vec::new(),
        }
    }

    /// Whether the peer's close frame has arrived.
    pub fn peer_closed(&self) -> bool {
        self.closed
    }

    /// Feeds bytes as they arrive.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.skip > 0 {
            let n = data
                .len()
                .min(usize::try_from(self.skip).unwrap_or(usize::MAX));
            self.skip -= n as u64;
            data = data.get(n..).unwrap_or_default();
        }
        self.buf.extend_from_slice(data);
        let mut start = 0;
        loop {
            let rest = self.buf.get(start..).unwrap_or_default();
            let Some(h) = parse_header(rest) else { break };
            if h.len > self.limits.max_message_bytes as u64 {
                let available = (rest.len() - h.header_len) as u64;
                self.note(
                    "replay_frame_too_large",
                    format!("a {}-byte frame; its payload was skipped", h.len),
                );
                if let Some(p) = self.partial.as_mut() {
                    p.overflow = true;
                }
                let take = available.min(h.len);
                self.skip = h.len - take;
                start += h.header_len + take as usize;
                self.frame(&h, &[], true);
                continue;
            }
            let total = h.header_len + h.len as usize;
            let Some(frame) = rest.get(h.header_len..total) else {
                break;
            };
            let mut payload = frame.to_vec();
            if let Some(key) = h.mask {
                for (b, k) in payload.iter_mut().zip(key.iter().cycle()) {
                    *b ^= k;
                }
            }
            start += total;
            self.frame(&h, &payload, false);
        }
        self.buf.drain(..start.min(self.buf.len()));
    }

    /// The connection ended: report a frame cut short and an unfinished message.
    pub fn finish(&mut self) {
        if !self.buf.is_empty() || self.skip > 0 {
            let n = self.buf.len();
            self.note(
                "replay_truncated_frame",
                format!("the connection ended {n} bytes into a frame"),
            );
            self.buf.clear();
            self.skip = 0;
        }
        if let Some(p) = self.partial.take() {
            self.note(
                "replay_interrupted_message",
                "the connection ended before the message's final frame".into(),
            );
            self.emit(p.opcode, p.payload, p.compressed, true);
        }
    }

    fn note(&mut self, name: &'static str, detail: String) {
        self.anomalies.push(PeerAnomaly { name, detail });
    }

    fn frame(&mut self, h: &Header, payload: &[u8], oversized: bool) {
        match (self.from, h.mask.is_some()) {
            (Dir::S2c, true) => self.note(
                "replay_masked_server_frame",
                "server frame was masked".into(),
            ),
            (Dir::C2s, false) => self.note(
                "replay_unmasked_client_frame",
                "client frame was not masked".into(),
            ),
            _ => {}
        }
        if self.closed {
            self.note(
                "replay_data_after_close",
                format!("opcode {} after the close frame", h.opcode),
            );
        }
        let allowed_rsv = if self.inflater.is_some() { RSV1 } else { 0 };
        if h.rsv & !allowed_rsv != 0 {
            self.note("replay_reserved_bits", format!("RSV bits {:03b}", h.rsv));
        }
        if matches!(h.opcode, 3..=7 | 11..=15) {
            self.note("replay_reserved_opcode", format!("opcode {}", h.opcode));
        }
        if is_control(h.opcode) {
            if !h.fin || h.len > 125 {
                self.note(
                    "replay_bad_control_frame",
                    format!("opcode {} fin={} len={}", h.opcode, h.fin, h.len),
                );
            }
            if h.opcode == OP_CLOSE {
                self.closed = true;
            }
            self.emit(h.opcode, payload.to_vec(), false, oversized);
            return;
        }
        if h.opcode == OP_CONTINUATION {
            let Some(p) = self.partial.as_mut() else {
                self.note("replay_orphan_continuation", format!("{} bytes", h.len));
                return;
            };
            let room = self
                .limits
                .max_message_bytes
                .saturating_sub(p.payload.len());
            if payload.len() > room {
                p.overflow = true;
            }
            let keep = payload.len().min(room);
            p.payload
                .extend_from_slice(payload.get(..keep).unwrap_or_default());
            p.overflow |= oversized;
            if p.overflow && keep < payload.len() {
                self.note(
                    "replay_frame_too_large",
                    "message exceeded max_message_bytes; excess discarded".into(),
                );
            }
        } else {
            if let Some(p) = self.partial.take() {
                self.note(
                    "replay_interrupted_message",
                    format!(
                        "opcode {} frame before the previous message's final frame",
                        h.opcode
                    ),
                );
                self.emit(p.opcode, p.payload, p.compressed, true);
            }
            self.partial = Some(Partial {
                opcode: h.opcode,
                compressed: h.rsv & RSV1 != 0 && self.inflater.is_some(),
                payload: payload.to_vec(),
                overflow: oversized,
            });
        }
        if h.fin {
            if let Some(p) = self.partial.take() {
                let (payload, partial) = if p.compressed && !p.overflow {
                    self.inflate(p.payload)
                } else {
                    (p.payload, p.overflow)
                };
                self.emit(p.opcode, payload, p.compressed, partial);
            }
        }
    }

    fn inflate(&mut self, raw: Vec<u8>) -> (Vec<u8>, bool) {
        let limit = self.limits.max_message_bytes;
        let Some(inf) = self.inflater.as_mut() else {
            return (raw, false);
        };
        match inf.decompress(&raw, limit) {
            Ok(v) => (v, false),
            Err(InflateError::TooLarge) => {
                self.note(
                    "replay_frame_too_large",
                    format!("message inflates beyond {limit} bytes; raw payload kept"),
                );
                (raw, true)
            }
            Err(InflateError::Corrupt(e)) => {
                self.note("replay_inflate_failed", e);
                (raw, true)
            }
        }
    }

    fn emit(&mut self, opcode: u8, payload: Vec<u8>, compressed: bool, partial: bool) {
        let dropped =
            self.kept_bytes.saturating_add(payload.len()) > self.limits.max_received_bytes;
        if dropped {
            if !self
                .anomalies
                .iter()
                .any(|a| a.name == "replay_receive_budget_exhausted")
            {
                self.note(
                    "replay_receive_budget_exhausted",
                    format!(
                        "more than {} payload bytes received",
                        self.limits.max_received_bytes
                    ),
                );
            }
        } else {
            self.kept_bytes += payload.len();
        }
        self.messages.push(Received {
            opcode,
            payload: if dropped { Vec::new() } else { payload },
            compressed,
            partial,
            dropped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Compressor;
    use super::*;

    fn rx(from: Dir) -> Receiver {
        Receiver::new(from, ReplayLimits::default(), None)
    }

    #[test]
    fn encode_lengths_and_masking() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let payload = vec![0xab; len];
            let mut out = Vec::new();
            encode_frame(&mut out, true, 0, OP_BINARY, Some([1, 2, 3, 4]), &payload);
            let h = parse_header(&out).unwrap();
            assert_eq!(h.len, len as u64);
            assert_eq!(out.len(), h.header_len + len);
            let mut r = rx(Dir::C2s);
            r.feed(&out);
            assert_eq!(r.messages.len(), 1);
            assert_eq!(r.messages[0].payload, payload);
            assert!(r.anomalies.is_empty());
        }
    }

    #[test]
    fn byte_at_a_time_fragments_and_interleaved_ping() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, false, 0, OP_TEXT, None, b"hel");
        encode_frame(&mut wire, true, 0, OP_PING, None, b"p");
        encode_frame(&mut wire, true, 0, OP_CONTINUATION, None, b"lo");
        let mut r = rx(Dir::S2c);
        for b in &wire {
            r.feed(std::slice::from_ref(b));
        }
        let got: Vec<(u8, &[u8])> = r
            .messages
            .iter()
            .map(|m| (m.opcode, &m.payload[..]))
            .collect();
        assert_eq!(got, vec![(OP_PING, &b"p"[..]), (OP_TEXT, &b"hello"[..])]);
    }

    #[test]
    fn violations_are_named() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_CONTINUATION, None, b"x");
        encode_frame(&mut wire, true, 0, OP_TEXT, Some([9, 9, 9, 9]), b"masked");
        encode_frame(&mut wire, true, 2, 5, None, b"");
        let mut r = rx(Dir::S2c);
        r.feed(&wire);
        let names: Vec<&str> = r.anomalies.iter().map(|a| a.name).collect();
        assert_eq!(
            names,
            vec![
                "replay_orphan_continuation",
                "replay_masked_server_frame",
                "replay_reserved_bits",
                "replay_reserved_opcode"
            ]
        );
        assert_eq!(r.messages[0].payload, b"masked");
    }

    #[test]
    fn oversized_frame_is_skipped_not_buffered() {
        let limits = ReplayLimits {
            max_message_bytes: 10,
            ..Default::default()
        };
        let mut r = Receiver::new(Dir::S2c, limits, None);
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_BINARY, None, &[7u8; 100]);
        encode_frame(&mut wire, true, 0, OP_TEXT, None, b"ok");
        for chunk in wire.chunks(7) {
            r.feed(chunk);
        }
        assert_eq!(r.anomalies[0].name, "replay_frame_too_large");
        assert_eq!(r.messages.len(), 2);
        assert!(r.messages[0].partial);
        assert_eq!(r.messages[1].payload, b"ok");
    }

    #[test]
    fn compressed_messages_inflate() {
        let p = DirParams::default();
        let mut c = Compressor::new(p);
        let mut wire = Vec::new();
        for text in ["first message", "first message again"] {
            encode_frame(
                &mut wire,
                true,
                RSV1,
                OP_TEXT,
                None,
                &c.compress(text.as_bytes()),
            );
        }
        let mut r = Receiver::new(Dir::S2c, ReplayLimits::default(), Some(p));
        r.feed(&wire);
        assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
        assert_eq!(r.messages[1].payload, b"first message again");
        assert!(r.messages[1].compressed);
    }

    #[test]
    fn truncated_stream_is_reported() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_TEXT, None, b"hello");
        let mut r = rx(Dir::S2c);
        r.feed(&wire[..4]);
        r.finish();
        assert_eq!(r.anomalies[0].name, "replay_truncated_frame");
        assert!(r.messages.is_empty());
    }
}
