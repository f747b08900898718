//! RFC 6455 framing for an active endpoint: encoding frames we send, and a
//! bounded streaming receiver that turns the peer's bytes into messages.

use super::deflate::DirParams;
use super::ReplayLimits;
use crate::message::{DeflateParams, MessageConfig, Output};
use crate::session::Direction;
use crate::types::{Dir, Timestamp};

/// Opcode of a further frame of a fragmented message.
pub const OP_CONTINUATION: u8 = 0;
/// Opcode of a text message.
pub const OP_TEXT: u8 = 1;
/// Opcode of a binary message.
pub const OP_BINARY: u8 = 2;
/// Opcode of a close frame.
pub const OP_CLOSE: u8 = 8;
/// Opcode of a ping.
pub const OP_PING: u8 = 9;
/// Opcode of a pong.
pub const OP_PONG: u8 = 10;

/// Whether `opcode` is a control opcode (close, ping, pong, reserved 11..=15).
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
    crate::ws::encode_frame(out, fin, rsv, opcode, mask, payload);
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
    /// Opcode of the message (of its first frame).
    pub opcode: u8,
    /// Unmasked, inflated; empty when `dropped`.
    pub payload: Vec<u8>,
    /// It arrived compressed with permessage-deflate.
    pub compressed: bool,
    /// The payload is incomplete (limit hit, interrupted, inflate failure).
    pub partial: bool,
    /// Not kept: the receive budget was exhausted.
    pub dropped: bool,
}

/// A protocol violation seen in the peer's stream, named as wssniff names it
/// (`crate::ws::ANOMALIES`, `crate::message::ANOMALIES`) or by [`super::ANOMALIES`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAnomaly {
    /// Anomaly name, as listed in `docs/anomalies.md`.
    pub name: &'static str,
    /// Human-readable explanation.
    pub detail: String,
}

/// Where decoded messages and anomalies go, with the receive budget.
struct Sink {
    max_received_bytes: usize,
    kept_bytes: usize,
    budget_noted: bool,
    closed: bool,
    messages: Vec<Received>,
    anomalies: Vec<PeerAnomaly>,
}

impl Sink {
    fn take(&mut self, out: Output<'_>) {
        match out {
            Output::Anomaly(a) => self.anomalies.push(PeerAnomaly {
                name: a.name,
                detail: a.detail,
            }),
            Output::Message(m) => {
                self.closed |= m.opcode == OP_CLOSE;
                let partial = m.truncated || m.incomplete || m.inflate_failed;
                self.keep(m.opcode, m.payload, m.compressed, partial);
            }
        }
    }

    fn keep(&mut self, opcode: u8, payload: &[u8], compressed: bool, partial: bool) {
        let dropped = self.kept_bytes.saturating_add(payload.len()) > self.max_received_bytes;
        if dropped && !self.budget_noted {
            self.budget_noted = true;
            self.anomalies.push(PeerAnomaly {
                name: "replay_receive_budget_exhausted",
                detail: format!(
                    "more than {} payload bytes received; later messages are counted, not kept",
                    self.max_received_bytes
                ),
            });
        }
        if !dropped {
            self.kept_bytes += payload.len();
        }
        self.messages.push(Received {
            opcode,
            payload: if dropped {
                Vec::new()
            } else {
                payload.to_vec()
            },
            compressed,
            partial,
            dropped,
        });
    }
}

/// Streaming receiver for one direction: the session stage's own
/// [`Direction`] (unmasking, reassembly, inflating, every anomaly), with the
/// limits of [`ReplayLimits`] and a budget on what is kept for comparison.
pub struct Receiver {
    direction: Direction,
    offset: u64,
    sink: Sink,
}

impl Receiver {
    /// `from` is the direction of the bytes (who the peer is); `deflate` the
    /// peer's sending parameters when permessage-deflate was negotiated.
    pub fn new(from: Dir, limits: ReplayLimits, deflate: Option<DirParams>) -> Self {
        let cfg = MessageConfig {
            max_message_bytes: limits.max_message_bytes,
            max_inflated_bytes: limits.max_message_bytes,
            keep_frames: false,
            ..MessageConfig::default()
        };
        let params = deflate.map(|p| DeflateParams {
            per_frame: false,
            no_context_takeover: p.no_context_takeover,
            max_window_bits: p.max_window_bits,
        });
        Receiver {
            direction: Direction::new(from, cfg, params),
            offset: 0,
            sink: Sink {
                max_received_bytes: limits.max_received_bytes,
                kept_bytes: 0,
                budget_noted: false,
                closed: false,
                messages: Vec::new(),
                anomalies: Vec::new(),
            },
        }
    }

    /// Whether the peer's close frame has arrived.
    pub fn peer_closed(&self) -> bool {
        self.sink.closed
    }

    /// Messages decoded so far, in arrival order.
    pub fn messages(&self) -> &[Received] {
        &self.sink.messages
    }

    /// Protocol violations seen so far, in stream order.
    pub fn anomalies(&self) -> &[PeerAnomaly] {
        &self.sink.anomalies
    }

    /// Feeds bytes as they arrive.
    pub fn feed(&mut self, data: &[u8]) {
        let sink = &mut self.sink;
        self.direction
            .feed(data, self.offset, 0, Timestamp::default(), &mut |out| {
                sink.take(out)
            });
        self.offset += data.len() as u64;
    }

    /// The connection ended: reports a frame cut short or an unfinished message.
    pub fn finish(&mut self) {
        let sink = &mut self.sink;
        self.direction
            .finish(0, Timestamp::default(), &mut |out| sink.take(out));
    }
}

#[cfg(test)]
mod tests {
    use super::super::deflate::Compressor;
    use super::*;

    const RSV1: u8 = 4;

    fn rx(from: Dir) -> Receiver {
        Receiver::new(from, ReplayLimits::default(), None)
    }

    fn names(r: &Receiver) -> Vec<&'static str> {
        r.anomalies().iter().map(|a| a.name).collect()
    }

    #[test]
    fn encoded_frames_of_every_length_class_decode() {
        for len in [0usize, 125, 126, 65_535, 65_536] {
            let payload = vec![0xab; len];
            let mut out = Vec::new();
            encode_frame(&mut out, true, 0, OP_BINARY, Some([1, 2, 3, 4]), &payload);
            let mut r = rx(Dir::C2s);
            r.feed(&out);
            assert_eq!(r.messages().len(), 1);
            assert_eq!(r.messages()[0].payload, payload);
            assert!(r.anomalies().is_empty(), "{:?}", r.anomalies());
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
            .messages()
            .iter()
            .map(|m| (m.opcode, &m.payload[..]))
            .collect();
        assert_eq!(got, vec![(OP_PING, &b"p"[..]), (OP_TEXT, &b"hello"[..])]);
    }

    #[test]
    fn violations_are_named() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_TEXT, Some([9, 9, 9, 9]), b"masked");
        encode_frame(&mut wire, true, 2, 5, None, b"");
        let mut r = rx(Dir::S2c);
        r.feed(&wire);
        let n = names(&r);
        assert!(n.contains(&"ws_masked_server_frame"), "{n:?}");
        assert!(n.contains(&"ws_reserved_opcode"), "{n:?}");
        assert!(n.contains(&"ws_rsv_without_extension"), "{n:?}");
        assert_eq!(r.messages()[0].payload, b"masked");
        let mut r = rx(Dir::C2s);
        r.feed(&wire[..8]);
        assert!(names(&r).is_empty(), "a masked client frame is fine");
    }

    #[test]
    fn receive_budget_drops_payloads_but_counts() {
        let limits = ReplayLimits {
            max_received_bytes: 10,
            ..Default::default()
        };
        let mut r = Receiver::new(Dir::S2c, limits, None);
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_BINARY, None, &[7u8; 8]);
        encode_frame(&mut wire, true, 0, OP_BINARY, None, &[7u8; 8]);
        r.feed(&wire);
        assert_eq!(r.messages().len(), 2);
        assert!(!r.messages()[0].dropped);
        assert!(r.messages()[1].dropped && r.messages()[1].payload.is_empty());
        assert_eq!(names(&r), vec!["replay_receive_budget_exhausted"]);
    }

    #[test]
    fn compressed_messages_inflate_and_close_is_seen() {
        let p = DirParams::default();
        let mut c = Compressor::new(p);
        let mut wire = Vec::new();
        for text in ["first message", "first message again"] {
            let z = c.compress(text.as_bytes());
            encode_frame(&mut wire, true, RSV1, OP_TEXT, None, &z);
        }
        encode_frame(&mut wire, true, 0, OP_CLOSE, None, &close_payload(1000, ""));
        let mut r = Receiver::new(Dir::S2c, ReplayLimits::default(), Some(p));
        assert!(!r.peer_closed());
        r.feed(&wire);
        assert!(r.anomalies().is_empty(), "{:?}", r.anomalies());
        assert_eq!(r.messages()[1].payload, b"first message again");
        assert!(r.messages()[1].compressed);
        assert!(r.peer_closed());
    }

    #[test]
    fn truncated_stream_is_reported() {
        let mut wire = Vec::new();
        encode_frame(&mut wire, true, 0, OP_TEXT, None, b"hello");
        let mut r = rx(Dir::S2c);
        r.feed(&wire[..4]);
        r.finish();
        assert!(!r.anomalies().is_empty());
        assert!(r.messages().iter().all(|m| m.partial));
    }
}
