//! One direction of a WebSocket session: its frame decoder and message
//! assembler, fed the direction's bytes in stream order.
//!
//! wssniff's session stage and wsreplay's receiver both decode a peer's
//! stream through this one type, so what wsreplay reports about a live peer is
//! what wssniff would report about the same bytes in a capture.

use crate::message::{Assembler, DeflateParams, MessageConfig, MessageStats, Output};
use crate::types::{Dir, PacketNo, Timestamp};
use crate::ws::{FrameConfig, FrameDecoder, FrameEvent};

/// The decoder and assembler of one direction.
pub struct Direction {
    decoder: FrameDecoder,
    assembler: Assembler,
    /// A gap hit a frame header: nothing more of this direction is decoded.
    desynced: bool,
}

impl Direction {
    /// A direction sending `dir` (client frames must be masked), with the
    /// sender's permessage-deflate parameters when the extension was agreed.
    pub fn new(dir: Dir, cfg: MessageConfig, deflate: Option<DeflateParams>) -> Self {
        Direction {
            decoder: FrameDecoder::new(FrameConfig {
                expect_masked: dir == Dir::C2s,
            }),
            assembler: Assembler::new(dir, cfg, deflate),
            desynced: false,
        }
    }

    /// Decodes `data`, whose first byte is at `offset` of the direction's
    /// WebSocket stream; messages and anomalies go to `out` in stream order.
    pub fn feed(
        &mut self,
        data: &[u8],
        offset: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if self.desynced {
            return;
        }
        let assembler = &mut self.assembler;
        self.decoder.feed(data, offset, packet, ts, &mut |ev| {
            route(assembler, ev, out)
        });
        self.desynced = self.decoder.is_desynced();
    }

    /// `len` bytes of the stream were lost here: the open message becomes
    /// incomplete and the deflate window unknown.
    pub fn gap(
        &mut self,
        len: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(Output<'_>),
    ) {
        if self.desynced {
            return;
        }
        let assembler = &mut self.assembler;
        let in_sync = self
            .decoder
            .gap(len, packet, ts, &mut |ev| route(assembler, ev, out));
        self.assembler.context_lost(packet, ts);
        self.desynced = !in_sync;
    }

    /// End of the stream: what is still open comes out, marked incomplete.
    pub fn finish(&mut self, packet: PacketNo, ts: Timestamp, out: &mut dyn FnMut(Output<'_>)) {
        self.assembler.finish(packet, ts, out);
    }

    /// Whether decoding stopped for good at a lost frame header.
    pub fn is_desynced(&self) -> bool {
        self.desynced
    }

    /// The assembler's counters.
    pub fn stats(&self) -> &MessageStats {
        self.assembler.stats()
    }
}

/// Frame-level anomalies go straight out; everything else is assembled.
fn route(assembler: &mut Assembler, ev: FrameEvent<'_>, out: &mut dyn FnMut(Output<'_>)) {
    match ev {
        FrameEvent::Anomaly(a) => out(Output::Anomaly(a)),
        other => assembler.on_event(other, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(dir: Dir, wire: &[u8], chunk: usize) -> Vec<(u8, Vec<u8>)> {
        let mut d = Direction::new(dir, MessageConfig::default(), None);
        let mut got = Vec::new();
        let mut off = 0u64;
        for part in wire.chunks(chunk.max(1)) {
            d.feed(part, off, 1, Timestamp::default(), &mut |o| {
                if let Output::Message(m) = o {
                    got.push((m.opcode, m.payload.to_vec()));
                }
            });
            off += part.len() as u64;
        }
        got
    }

    #[test]
    fn byte_at_a_time_equals_whole() {
        let mut wire = Vec::new();
        crate::ws::encode_frame(&mut wire, false, 0, 1, Some([1, 2, 3, 4]), b"hel");
        crate::ws::encode_frame(&mut wire, true, 0, 9, Some([5, 6, 7, 8]), b"p");
        crate::ws::encode_frame(&mut wire, true, 0, 0, Some([9, 9, 9, 9]), b"lo");
        let whole = messages(Dir::C2s, &wire, wire.len());
        assert_eq!(whole, vec![(9, b"p".to_vec()), (1, b"hello".to_vec())]);
        assert_eq!(messages(Dir::C2s, &wire, 1), whole);
    }

    #[test]
    fn a_gap_over_a_header_stops_the_direction() {
        let mut wire = Vec::new();
        crate::ws::encode_frame(&mut wire, true, 0, 2, None, b"abc");
        let mut d = Direction::new(Dir::S2c, MessageConfig::default(), None);
        let mut names = Vec::new();
        d.gap(1, 1, Timestamp::default(), &mut |o| {
            if let Output::Anomaly(a) = o {
                names.push(a.name);
            }
        });
        assert!(d.is_desynced());
        let mut n = 0;
        d.feed(&wire, 1, 2, Timestamp::default(), &mut |_| n += 1);
        assert_eq!(n, 0, "nothing is decoded after the desync");
        assert!(names.contains(&"ws_desync"), "{names:?}");
    }
}
