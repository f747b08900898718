//! Streaming frame decoder for one direction of a WebSocket connection.

use super::chain;
use super::header::{opcode, parse_header, FrameHeader, HeaderParse, MAX_HEADER_LEN};
use crate::types::{Anomaly, PacketNo, Timestamp};

/// Bytes a resyncing decoder holds while it searches for the next frame
/// boundary (the chain search bound, [`chain::SEARCH_LIMIT`]).
pub const RESYNC_LIMIT: usize = chain::SEARCH_LIMIT;

/// Feeds remembered per resync buffer, for the packet numbers of the bytes
/// replayed after a resync; beyond, later feeds count as the last one.
const RESYNC_CHUNKS: usize = 4096;

/// Bytes added to the resync buffer between two searches.
const RESYNC_STEP: usize = 1024;

/// Packet and time of the feed that carried buffer offset `at`.
fn chunk_at(chunks: &[(usize, PacketNo, Timestamp)], at: usize) -> (PacketNo, Timestamp) {
    chunks
        .iter()
        .take_while(|c| c.0 <= at)
        .last()
        .map_or((0, Timestamp::default()), |c| (c.1, c.2))
}

/// Bytes held after a loss while the next frame boundary is searched for.
#[derive(Clone, Debug, Default)]
struct Resync {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    start: u64,
    /// Where the search began: the first byte after the loss (None until
    /// the first byte after it arrives).
    from: Option<u64>,
    /// Captured bytes dropped from the front of a full buffer, or held when
    /// more bytes were lost.
    skipped: u64,
    /// `buf.len()` at the last search (searches are spaced, so tiny feeds
    /// cannot make the work quadratic).
    searched: usize,
    /// Offsets of `buf` below this are ruled out as frame starts.
    dead: usize,
    /// (buffer offset, packet, ts) of each feed appended.
    chunks: Vec<(usize, PacketNo, Timestamp)>,
}

/// Per-direction settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameConfig {
    /// Frames are expected to be masked: true for client-to-server.
    pub expect_masked: bool,
}

/// What the decoder reports, in stream order. Anomalies about a frame header
/// come just before that frame's `Header` event.
#[derive(Debug, PartialEq, Eq)]
pub enum FrameEvent<'a> {
    /// A frame header was read; `offset` is the stream offset of its first byte.
    Header {
        /// The header as parsed.
        hdr: FrameHeader,
        /// Stream offset of the header's first byte.
        offset: u64,
        /// Packet carrying the header's first byte.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// Payload bytes as on the wire (still masked); `payload_offset` is the
    /// position of `data[0]` within this frame's payload (the mask phase).
    Payload {
        /// The payload bytes, still masked.
        data: &'a [u8],
        /// Position of `data[0]` within the frame's payload.
        payload_offset: u64,
        /// The frame's masking key; `None` when unmasked.
        mask: Option<[u8; 4]>,
        /// Packet that carried these bytes.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// `len` bytes of the current frame's payload were lost; the decoder is
    /// still in sync.
    Gap {
        /// Payload bytes lost.
        len: u64,
        /// Packet carrying the first byte after the loss.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// The current frame is complete (zero-length frames: `Header` then `End`).
    End {
        /// Packet carrying the frame's last byte (or its header, for an empty frame).
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// A protocol violation (a `ws_*` name of this module's `ANOMALIES`).
    Anomaly(Anomaly),
}

#[derive(Clone, Copy, Debug)]
enum State {
    /// Between frames, or inside a header split across feeds: `have` bytes of
    /// it sit in `partial`, and it began at stream offset `start`.
    Header {
        partial: [u8; MAX_HEADER_LEN],
        have: u8,
        start: u64,
    },
    Payload {
        remaining: u64,
        pos: u64,
        mask: Option<[u8; 4]>,
    },
    /// A header was lost or unusable: nothing more of this direction is decoded.
    Desynced,
    /// Bytes were lost where a header was due: the decoder holds what
    /// follows (in `FrameDecoder::resync`) until the chain test finds the
    /// next frame boundary.
    Resyncing,
}

const AT_BOUNDARY: State = State::Header {
    partial: [0; MAX_HEADER_LEN],
    have: 0,
    start: 0,
};

/// Turns one direction's reassembled byte stream into frame events. Payload is
/// never buffered; a header split across feeds is kept in a 14-byte array.
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    cfg: FrameConfig,
    state: State,
    frames: u64,
    /// Resync after a loss instead of stopping (see [`FrameDecoder::resyncing`]).
    resync_on: bool,
    resync: Resync,
}

impl FrameDecoder {
    /// A decoder at a frame boundary at stream offset 0, stopping at a loss unless [`FrameDecoder::resyncing`] is set.
    pub fn new(cfg: FrameConfig) -> Self {
        FrameDecoder {
            cfg,
            state: AT_BOUNDARY,
            frames: 0,
            resync_on: false,
            resync: Resync::default(),
        }
    }

    /// After a loss that makes the next frame boundary unknown (a gap that
    /// reaches a header, an unusable length), hold the following bytes (at
    /// most [`RESYNC_LIMIT`]) and go on at the first offset where the frame
    /// chain test holds ([`chain::search_from`], strict, with this
    /// direction's mask bit), reporting the skipped bytes as `ws_resync`.
    /// Without this, such a loss ends decoding of the direction (`ws_desync`).
    pub fn resyncing(mut self) -> Self {
        self.resync_on = true;
        self
    }

    /// Searching for the next frame boundary after a loss.
    pub fn is_resyncing(&self) -> bool {
        matches!(self.state, State::Resyncing)
    }

    /// Frame headers decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Decoding of this direction has stopped for good (`ws_desync`).
    pub fn is_desynced(&self) -> bool {
        matches!(self.state, State::Desynced)
    }

    /// True between frames (no header or payload in progress).
    pub fn at_frame_boundary(&self) -> bool {
        matches!(self.state, State::Header { have: 0, .. })
    }

    /// Decodes `data`, which starts at `stream_offset` of this direction.
    pub fn feed(
        &mut self,
        data: &[u8],
        stream_offset: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        let mut pos = 0usize;
        while pos < data.len() {
            let rest = data.get(pos..).unwrap_or_default();
            match self.state {
                State::Desynced => return,
                State::Resyncing => {
                    let used = self.resync_feed(rest, stream_offset + pos as u64, packet, ts, out);
                    pos += used;
                }
                State::Payload {
                    remaining,
                    pos: ppos,
                    mask,
                } => {
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let chunk = rest.get(..n).unwrap_or_default();
                    out(FrameEvent::Payload {
                        data: chunk,
                        payload_offset: ppos,
                        mask,
                        packet,
                        ts,
                    });
                    pos += n;
                    let remaining = remaining - n as u64;
                    self.state = State::Payload {
                        remaining,
                        pos: ppos + n as u64,
                        mask,
                    };
                    if remaining == 0 {
                        self.state = AT_BOUNDARY;
                        out(FrameEvent::End { packet, ts });
                    }
                }
                State::Header {
                    mut partial,
                    have,
                    start,
                } => {
                    let have = usize::from(have);
                    let frame_start = if have == 0 {
                        stream_offset + pos as u64
                    } else {
                        start
                    };
                    let (parsed, consumed) = if have == 0 {
                        // Common case: the whole header is in this feed, no copy.
                        (parse_header(rest), 0)
                    } else {
                        let take = (MAX_HEADER_LEN - have).min(rest.len());
                        if let (Some(dst), Some(src)) =
                            (partial.get_mut(have..have + take), rest.get(..take))
                        {
                            dst.copy_from_slice(src);
                        }
                        (
                            parse_header(partial.get(..have + take).unwrap_or_default()),
                            take,
                        )
                    };
                    match parsed {
                        HeaderParse::NeedMore => {
                            if have == 0 {
                                let n = rest.len().min(MAX_HEADER_LEN);
                                if let (Some(dst), Some(src)) =
                                    (partial.get_mut(..n), rest.get(..n))
                                {
                                    dst.copy_from_slice(src);
                                }
                                self.state = State::Header {
                                    partial,
                                    have: n as u8,
                                    start: frame_start,
                                };
                            } else {
                                self.state = State::Header {
                                    partial,
                                    have: (have + consumed) as u8,
                                    start: frame_start,
                                };
                            }
                            return;
                        }
                        HeaderParse::Complete(hdr) => {
                            // Bytes of this feed that belonged to the header.
                            pos += usize::from(hdr.header_len).saturating_sub(have);
                            self.on_header(hdr, frame_start, packet, ts, out);
                        }
                    }
                }
            }
        }
    }

    fn on_header(
        &mut self,
        hdr: FrameHeader,
        offset: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        let anomaly = |name: &'static str, detail: String| {
            FrameEvent::Anomaly(Anomaly {
                name,
                detail,
                packet,
                ts,
            })
        };
        let what = || {
            format!(
                "{} frame at stream offset {offset}",
                opcode::name(hdr.opcode)
            )
        };
        if hdr.len_top_bit {
            out(anomaly(
                "ws_length_top_bit",
                format!(
                    "{}: 64-bit length 0x{:016x} has the top bit set",
                    what(),
                    hdr.len
                ),
            ));
            self.desync(
                format!("unusable length in the {}", what()),
                packet,
                ts,
                out,
            );
            return;
        }
        self.frames += 1;
        match (self.cfg.expect_masked, hdr.mask.is_some()) {
            (true, false) => out(anomaly(
                "ws_unmasked_client_frame",
                format!("{} is not masked", what()),
            )),
            (false, true) => out(anomaly(
                "ws_masked_server_frame",
                format!("{} is masked", what()),
            )),
            _ => {}
        }
        if opcode::is_reserved(hdr.opcode) {
            out(anomaly(
                "ws_reserved_opcode",
                format!("{} uses reserved opcode {}", what(), hdr.opcode),
            ));
        }
        if hdr.non_minimal {
            out(anomaly(
                "ws_non_minimal_length",
                format!(
                    "{}: length {} encoded in {} header bytes",
                    what(),
                    hdr.len,
                    hdr.header_len
                ),
            ));
        }
        if opcode::is_control(hdr.opcode) {
            if hdr.len > 125 {
                out(anomaly(
                    "ws_control_too_long",
                    format!("{} has {} payload bytes (max 125)", what(), hdr.len),
                ));
            }
            if !hdr.fin {
                out(anomaly(
                    "ws_control_fragmented",
                    format!("{} has FIN=0", what()),
                ));
            }
        }
        out(FrameEvent::Header {
            hdr,
            offset,
            packet,
            ts,
        });
        if hdr.len == 0 {
            self.state = AT_BOUNDARY;
            out(FrameEvent::End { packet, ts });
        } else {
            self.state = State::Payload {
                remaining: hdr.len,
                pos: 0,
                mask: hdr.mask,
            };
        }
    }

    fn desync(
        &mut self,
        why: String,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) {
        if self.resync_on {
            self.state = State::Resyncing;
            self.resync = Resync::default();
            out(FrameEvent::Anomaly(Anomaly {
                name: "ws_resync_search",
                detail: format!("{why}; searching for the next frame boundary"),
                packet,
                ts,
            }));
            return;
        }
        self.state = State::Desynced;
        out(FrameEvent::Anomaly(Anomaly {
            name: "ws_desync",
            detail: format!("{why}; the rest of this direction is not decoded"),
            packet,
            ts,
        }));
    }

    /// Appends bytes to the resync buffer and searches it; returns how many
    /// bytes of `data` were taken (all, unless the buffer filled up).
    fn resync_feed(
        &mut self,
        data: &[u8],
        offset: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) -> usize {
        let r = &mut self.resync;
        if r.buf.is_empty() || r.start + r.buf.len() as u64 != offset {
            r.skipped += r.buf.len() as u64;
            r.buf.clear();
            r.chunks.clear();
            r.dead = 0;
            r.searched = 0;
            r.start = offset;
            r.from.get_or_insert(offset);
        }
        let take = RESYNC_LIMIT.saturating_sub(r.buf.len()).min(data.len());
        if r.chunks.len() < RESYNC_CHUNKS {
            r.chunks.push((r.buf.len(), packet, ts));
        }
        r.buf
            .extend_from_slice(data.get(..take).unwrap_or_default());
        let full = r.buf.len() >= RESYNC_LIMIT;
        if full || r.buf.len() >= r.searched + RESYNC_STEP {
            if self.resync_search(out) {
                return take;
            }
            if full {
                self.resync_drop_front();
            }
        }
        take
    }

    /// Searches the resync buffer; on a find, reports the skipped bytes,
    /// decodes the buffer from the start found and returns true.
    fn resync_search(&mut self, out: &mut dyn FnMut(FrameEvent<'_>)) -> bool {
        let r = &mut self.resync;
        r.searched = r.buf.len();
        let bounds: Vec<usize> = r.chunks.iter().map(|c| c.0).collect();
        let (found, dead) =
            chain::search_from(&r.buf, r.dead, Some(self.cfg.expect_masked), &bounds, true);
        r.dead = dead;
        let Some(st) = found else { return false };
        let r = std::mem::take(&mut self.resync);
        let at = r.start + st.offset as u64;
        let from = r.from.unwrap_or(r.start);
        let (packet, ts) = chunk_at(&r.chunks, st.offset);
        out(FrameEvent::Anomaly(Anomaly {
            name: "ws_resync",
            detail: format!(
                "skipped {} captured bytes at stream offsets {from}..{at}; decoding resumes at a chain of {}+ valid frames",
                r.skipped + st.offset as u64,
                st.verdict.frames
            ),
            packet,
            ts,
        }));
        self.state = AT_BOUNDARY;
        for (i, &(c0, packet, ts)) in r.chunks.iter().enumerate() {
            let c1 = r.chunks.get(i + 1).map_or(r.buf.len(), |c| c.0);
            let a = c0.max(st.offset);
            if a >= c1 {
                continue;
            }
            if let Some(piece) = r.buf.get(a..c1) {
                self.feed(piece, r.start + a as u64, packet, ts, out);
            }
        }
        true
    }

    /// A full buffer with no chain in it: the first half is given up.
    fn resync_drop_front(&mut self) {
        let r = &mut self.resync;
        let n = RESYNC_LIMIT / 2;
        r.buf.drain(..n.min(r.buf.len()));
        r.start += n as u64;
        r.skipped += n as u64;
        r.dead = r.dead.saturating_sub(n);
        r.searched = r.buf.len();
        let mut kept: Vec<(usize, PacketNo, Timestamp)> = Vec::new();
        for &(c, p, t) in &r.chunks {
            if c <= n {
                // The chunk covering the new front (the last one starting before it).
                kept.clear();
                kept.push((0, p, t));
            } else {
                kept.push((c - n, p, t));
            }
        }
        r.chunks = kept;
    }

    /// End of the direction's stream. A decoder still searching tries once
    /// more with what it holds; if it finds no frame boundary, the bytes
    /// since the loss are reported as `ws_resync_failed`.
    pub fn finish(&mut self, packet: PacketNo, ts: Timestamp, out: &mut dyn FnMut(FrameEvent<'_>)) {
        if !self.is_resyncing() || self.resync_search(out) {
            return;
        }
        let r = std::mem::take(&mut self.resync);
        let held = r.skipped + r.buf.len() as u64;
        let from = r
            .from
            .map_or("the loss".to_owned(), |f| format!("stream offset {f}"));
        out(FrameEvent::Anomaly(Anomaly {
            name: "ws_resync_failed",
            detail: format!(
                "no frame boundary found after the loss: {held} captured bytes from {from} to the end not decoded"
            ),
            packet,
            ts,
        }));
        self.state = State::Desynced;
    }

    /// `len` bytes of the stream were lost at the current position. Inside the
    /// current frame's payload the decoder skips them and stays in sync (a
    /// `Gap` event, then `End` if the frame is done) and returns true. If they
    /// reach a header, the part that fell in the payload is reported as a
    /// `Gap`, then the direction is desynchronized (`ws_desync`) or, in
    /// [`FrameDecoder::resyncing`] mode, a search for the next frame boundary
    /// begins (`ws_resync_search`; keep feeding, the decoder goes on by
    /// itself at the boundary found, `ws_resync`); returns false.
    pub fn gap(
        &mut self,
        len: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut dyn FnMut(FrameEvent<'_>),
    ) -> bool {
        if len == 0 {
            return !self.is_desynced();
        }
        match self.state {
            State::Desynced => false,
            State::Resyncing => {
                // What is held may already show the boundary; if not, it is
                // given up and the search starts again after the new loss.
                if self.resync_search(out) {
                    return self.gap(len, packet, ts, out);
                }
                let r = &mut self.resync;
                r.skipped += r.buf.len() as u64;
                r.buf.clear();
                r.chunks.clear();
                false
            }
            State::Payload {
                remaining,
                pos,
                mask,
            } if len <= remaining => {
                out(FrameEvent::Gap { len, packet, ts });
                let remaining = remaining - len;
                if remaining == 0 {
                    self.state = AT_BOUNDARY;
                    out(FrameEvent::End { packet, ts });
                } else {
                    self.state = State::Payload {
                        remaining,
                        pos: pos + len,
                        mask,
                    };
                }
                true
            }
            State::Payload { remaining, .. } => {
                out(FrameEvent::Gap {
                    len: remaining,
                    packet,
                    ts,
                });
                self.desync(
                    format!(
                        "{len} bytes lost, {} of them past the end of the current frame",
                        len - remaining
                    ),
                    packet,
                    ts,
                    out,
                );
                false
            }
            State::Header { have, .. } => {
                let where_ = if have == 0 {
                    "at a frame header"
                } else {
                    "inside a frame header"
                };
                self.desync(format!("{len} bytes lost {where_}"), packet, ts, out);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::header::encode_frame;
    use super::*;

    /// Owned copy of an event, for comparing runs.
    #[derive(Clone, Debug, PartialEq, Eq)]
    enum Ev {
        Header(FrameHeader, u64),
        Payload(Vec<u8>, u64),
        Gap(u64),
        End,
        Anomaly(&'static str),
    }

    fn run(cfg: FrameConfig, chunks: &[&[u8]]) -> Vec<Ev> {
        let mut dec = FrameDecoder::new(cfg);
        let mut evs = Vec::new();
        let mut off = 0u64;
        for (i, c) in chunks.iter().enumerate() {
            dec.feed(c, off, i as u64 + 1, Timestamp::default(), &mut |e| {
                evs.push(own(e))
            });
            off += c.len() as u64;
        }
        coalesce(evs)
    }

    fn own(e: FrameEvent<'_>) -> Ev {
        match e {
            FrameEvent::Header { hdr, offset, .. } => Ev::Header(hdr, offset),
            FrameEvent::Payload {
                data,
                payload_offset,
                ..
            } => Ev::Payload(data.to_vec(), payload_offset),
            FrameEvent::Gap { len, .. } => Ev::Gap(len),
            FrameEvent::End { .. } => Ev::End,
            FrameEvent::Anomaly(a) => Ev::Anomaly(a.name),
        }
    }

    /// Merges adjacent payload pieces so differently split inputs compare equal.
    fn coalesce(evs: Vec<Ev>) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for e in evs {
            if let (Some(Ev::Payload(prev, poff)), Ev::Payload(d, off)) = (out.last_mut(), &e) {
                assert_eq!(
                    *poff + prev.len() as u64,
                    *off,
                    "payload offsets must be contiguous"
                );
                prev.extend_from_slice(d);
                continue;
            }
            out.push(e);
        }
        out
    }

    const CLIENT: FrameConfig = FrameConfig {
        expect_masked: true,
    };
    const SERVER: FrameConfig = FrameConfig {
        expect_masked: false,
    };

    fn sample_stream() -> Vec<u8> {
        let mut s = Vec::new();
        let key = Some([1, 2, 3, 4]);
        encode_frame(&mut s, false, 0, opcode::TEXT, key, b"hello ");
        encode_frame(&mut s, true, 0, opcode::PING, key, b"");
        encode_frame(&mut s, true, 0, opcode::CONTINUATION, key, b"world");
        encode_frame(&mut s, true, 0b100, opcode::BINARY, key, &[7u8; 300]);
        encode_frame(&mut s, true, 0, opcode::BINARY, key, &vec![9u8; 70_000]);
        encode_frame(&mut s, true, 0, opcode::CLOSE, key, &[3, 232]);
        s
    }

    #[test]
    fn whole_stream_events() {
        let s = sample_stream();
        let evs = run(CLIENT, &[&s]);
        let headers: Vec<(u8, u64, u64)> = evs
            .iter()
            .filter_map(|e| match e {
                Ev::Header(h, off) => Some((h.opcode, h.len, *off)),
                _ => None,
            })
            .collect();
        assert_eq!(
            headers,
            vec![
                (1, 6, 0),
                (9, 0, 12),
                (0, 5, 18),
                (2, 300, 29),
                (2, 70_000, 337),
                (8, 2, 70_351)
            ]
        );
        assert_eq!(evs.iter().filter(|e| **e == Ev::End).count(), 6);
        assert!(!evs.iter().any(|e| matches!(e, Ev::Anomaly(_))));
        // Payload is passed through still masked.
        let Ev::Payload(p, 0) = &evs[1] else {
            panic!("{:?}", evs[1])
        };
        let mut clear = p.clone();
        super::super::unmask(&mut clear, [1, 2, 3, 4], 0);
        assert_eq!(clear, b"hello ");
    }

    #[test]
    fn every_split_point_gives_identical_events() {
        let s = sample_stream();
        let whole = run(CLIENT, &[&s]);
        // Every single split of the first 400 bytes (all headers up to the
        // large frame's), plus a few inside the big payload and at its end.
        let mut points: Vec<usize> = (0..=400).collect();
        points.extend([
            340,
            341,
            345,
            346,
            1000,
            70_350,
            70_351,
            70_352,
            s.len() - 1,
            s.len(),
        ]);
        for p in points {
            assert_eq!(run(CLIENT, &[&s[..p], &s[p..]]), whole, "split at {p}");
        }
        // Two splits around the 14-byte header of the big frame.
        for a in 330..352 {
            for b in a..352 {
                assert_eq!(
                    run(CLIENT, &[&s[..a], &s[a..b], &s[b..]]),
                    whole,
                    "splits {a},{b}"
                );
            }
        }
    }

    #[test]
    fn one_byte_at_a_time_gives_identical_events() {
        let mut s = Vec::new();
        encode_frame(&mut s, true, 0, opcode::TEXT, None, b"abc");
        encode_frame(&mut s, true, 0, opcode::BINARY, None, &[1u8; 200]);
        encode_frame(&mut s, true, 0, opcode::BINARY, None, &[2u8; 70_000]);
        let whole = run(SERVER, &[&s]);
        let bytes: Vec<&[u8]> = s.chunks(1).collect();
        assert_eq!(run(SERVER, &bytes), whole);
    }

    #[test]
    fn many_tiny_frames_in_one_segment() {
        let s: Vec<u8> = [0x89u8, 0x00].repeat(100_000);
        let mut dec = FrameDecoder::new(SERVER);
        let (mut headers, mut ends) = (0, 0);
        dec.feed(&s, 0, 1, Timestamp::default(), &mut |e| match e {
            FrameEvent::Header { .. } => headers += 1,
            FrameEvent::End { .. } => ends += 1,
            other => panic!("unexpected {other:?}"),
        });
        assert_eq!((headers, ends), (100_000, 100_000));
        assert_eq!(dec.frames(), 100_000);
    }

    #[test]
    fn masking_direction_anomalies() {
        let mut s = Vec::new();
        encode_frame(&mut s, true, 0, opcode::TEXT, None, b"x");
        assert_eq!(
            run(CLIENT, &[&s])[0],
            Ev::Anomaly("ws_unmasked_client_frame")
        );
        assert!(!run(SERVER, &[&s])
            .iter()
            .any(|e| matches!(e, Ev::Anomaly(_))));
        s.clear();
        encode_frame(&mut s, true, 0, opcode::TEXT, Some([1, 1, 1, 1]), b"x");
        assert_eq!(run(SERVER, &[&s])[0], Ev::Anomaly("ws_masked_server_frame"));
    }

    #[test]
    fn reserved_opcode_stays_in_sync() {
        let mut s = Vec::new();
        encode_frame(&mut s, true, 0, 3, None, b"abcd");
        encode_frame(&mut s, true, 0, opcode::TEXT, None, b"ok");
        let evs = run(SERVER, &[&s]);
        assert_eq!(evs[0], Ev::Anomaly("ws_reserved_opcode"));
        assert!(matches!(&evs[4], Ev::Header(h, 6) if h.opcode == opcode::TEXT));
        assert_eq!(evs[5], Ev::Payload(b"ok".to_vec(), 0));
    }

    #[test]
    fn non_minimal_and_control_anomalies() {
        let evs = run(SERVER, &[&[0x82, 126, 0, 1, 0xaa]]);
        assert_eq!(evs[0], Ev::Anomaly("ws_non_minimal_length"));
        assert_eq!(evs[2], Ev::Payload(vec![0xaa], 0));

        let mut s = vec![0x88, 126, 1, 2];
        s.extend_from_slice(&[0u8; 258]);
        let evs = run(SERVER, &[&s]);
        assert_eq!(evs[0], Ev::Anomaly("ws_control_too_long"));
        assert_eq!(evs.last(), Some(&Ev::End));

        let evs = run(SERVER, &[&[0x09, 0x00]]);
        assert_eq!(evs[0], Ev::Anomaly("ws_control_fragmented"));
    }

    #[test]
    fn top_bit_desynchronizes() {
        let mut s = vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        s.extend_from_slice(&[0x81, 0x01, b'a']);
        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        dec.feed(&s, 0, 1, Timestamp::default(), &mut |e| evs.push(own(e)));
        assert_eq!(
            evs,
            vec![Ev::Anomaly("ws_length_top_bit"), Ev::Anomaly("ws_desync")]
        );
        assert!(dec.is_desynced());
        dec.feed(&[0x81, 0x00], 13, 2, Timestamp::default(), &mut |e| {
            evs.push(own(e))
        });
        assert_eq!(evs.len(), 2);
    }

    #[test]
    fn gap_inside_payload_stays_in_sync() {
        let mut s = Vec::new();
        encode_frame(&mut s, true, 0, opcode::BINARY, None, &[5u8; 100]);
        encode_frame(&mut s, true, 0, opcode::TEXT, None, b"next");
        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        let ts = Timestamp::default();
        dec.feed(&s[..12], 0, 1, ts, &mut |e| evs.push(own(e)));
        assert!(dec.gap(40, 2, ts, &mut |e| evs.push(own(e))));
        dec.feed(&s[52..], 52, 3, ts, &mut |e| evs.push(own(e)));
        let evs = coalesce(evs);
        assert!(matches!(evs[0], Ev::Header(h, 0) if h.len == 100));
        assert_eq!(evs[1], Ev::Payload(vec![5; 10], 0));
        assert_eq!(evs[2], Ev::Gap(40));
        assert_eq!(evs[3], Ev::Payload(vec![5; 50], 50));
        assert_eq!(evs[4], Ev::End);
        assert!(matches!(evs[5], Ev::Header(h, 102) if h.opcode == opcode::TEXT));
        assert!(!dec.is_desynced());
    }

    #[test]
    fn gap_ending_exactly_at_frame_end_stays_in_sync() {
        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        let ts = Timestamp::default();
        dec.feed(&[0x82, 10, 1, 2], 0, 1, ts, &mut |e| evs.push(own(e)));
        assert!(dec.gap(8, 2, ts, &mut |e| evs.push(own(e))));
        assert_eq!(&evs[2..], &[Ev::Gap(8), Ev::End]);
        assert!(dec.at_frame_boundary());
    }

    #[test]
    fn gap_reaching_a_header_desyncs() {
        let ts = Timestamp::default();
        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        dec.feed(&[0x82, 10, 1, 2], 0, 1, ts, &mut |e| evs.push(own(e)));
        assert!(!dec.gap(9, 2, ts, &mut |e| evs.push(own(e))));
        assert_eq!(&evs[2..], &[Ev::Gap(8), Ev::Anomaly("ws_desync")]);
        assert!(dec.is_desynced());

        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        assert!(!dec.gap(1, 1, ts, &mut |e| evs.push(own(e))));
        assert_eq!(evs, vec![Ev::Anomaly("ws_desync")]);

        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        dec.feed(&[0x82], 0, 1, ts, &mut |e| evs.push(own(e)));
        assert!(!dec.gap(3, 2, ts, &mut |e| evs.push(own(e))));
        assert_eq!(evs, vec![Ev::Anomaly("ws_desync")]);
    }

    #[test]
    fn huge_declared_length_allocates_nothing_and_streams() {
        let mut dec = FrameDecoder::new(SERVER);
        let mut evs = Vec::new();
        let ts = Timestamp::default();
        let hdr = [0x82, 127, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        dec.feed(&hdr, 0, 1, ts, &mut |e| evs.push(own(e)));
        dec.feed(&[1, 2, 3], 10, 2, ts, &mut |e| evs.push(own(e)));
        assert!(dec.gap(u64::MAX >> 2, 3, ts, &mut |e| evs.push(own(e))));
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[1], Ev::Payload(vec![1, 2, 3], 0));
    }

    fn resync_stream() -> (Vec<u8>, Vec<u64>) {
        let mut s = Vec::new();
        let mut starts = Vec::new();
        for i in 0..40u32 {
            starts.push(s.len() as u64);
            let payload: Vec<u8> = (0..(i * 37 % 300)).map(|j| (j * 7 + i) as u8).collect();
            let key = Some([i as u8, 0x5a, 0xc3, 7]);
            encode_frame(&mut s, true, 0, opcode::BINARY, key, &payload);
        }
        (s, starts)
    }

    /// Feeds `s` in `seg`-byte pieces with the bytes `lost` left out (as a
    /// gap), through a resyncing client decoder.
    fn run_lossy(s: &[u8], seg: usize, lost: std::ops::Range<usize>) -> (Vec<Ev>, FrameDecoder) {
        let mut dec = FrameDecoder::new(CLIENT).resyncing();
        let mut evs = Vec::new();
        let ts = Timestamp::default();
        let mut pos = 0;
        let mut pkt = 1;
        while pos < s.len() {
            if pos == lost.start {
                dec.gap((lost.end - lost.start) as u64, pkt, ts, &mut |e| {
                    evs.push(own(e))
                });
                pos = lost.end;
                continue;
            }
            let end = (pos + seg).min(s.len());
            let end = if pos < lost.start {
                end.min(lost.start)
            } else {
                end
            };
            dec.feed(&s[pos..end], pos as u64, pkt, ts, &mut |e| evs.push(own(e)));
            pos = end;
            pkt += 1;
        }
        dec.finish(pkt, ts, &mut |e| evs.push(own(e)));
        (coalesce(evs), dec)
    }

    #[test]
    fn resync_after_a_lost_header_recovers_every_later_frame() {
        let (s, starts) = resync_stream();
        let whole = run(CLIENT, &[&s]);
        for seg in [1usize, 7, 100, 1448, 100_000] {
            for k in [3usize, 10, 25] {
                // Lose the header of frame k and a bit of its payload.
                let a = starts[k] as usize;
                let (evs, dec) = run_lossy(&s, seg, a..a + 3);
                assert!(!dec.is_desynced() && !dec.is_resyncing(), "seg {seg} k {k}");
                let names: Vec<_> = evs
                    .iter()
                    .filter_map(|e| match e {
                        Ev::Anomaly(n) => Some(*n),
                        _ => None,
                    })
                    .collect();
                assert_eq!(names, ["ws_resync_search", "ws_resync"], "seg {seg} k {k}");
                // Every frame from k+2 on is decoded exactly as without loss
                // (k+1 too when it starts a segment: a searched start off a
                // segment boundary skips its first frame).
                let after = |evs: &[Ev]| -> Vec<Ev> {
                    let i = evs
                        .iter()
                        .position(|e| matches!(e, Ev::Header(_, off) if *off == starts[k + 2]))
                        .expect("frame after the loss");
                    evs[i..].to_vec()
                };
                assert_eq!(after(&evs), after(&whole), "seg {seg} k {k}");
                // Nothing invented between the loss and the resync.
                let first_after_loss = evs
                    .iter()
                    .position(|e| matches!(e, Ev::Header(_, off) if *off > starts[k]))
                    .expect("header");
                assert!(
                    matches!(evs[first_after_loss], Ev::Header(_, off) if off == starts[k + 1] || off == starts[k + 2])
                );
            }
        }
    }

    #[test]
    fn resync_that_finds_nothing_says_so_at_the_end() {
        let mut dec = FrameDecoder::new(CLIENT).resyncing();
        let mut evs = Vec::new();
        let ts = Timestamp::default();
        assert!(!dec.gap(5, 1, ts, &mut |e| evs.push(own(e))));
        assert!(dec.is_resyncing());
        // Server-style (unmasked) frames do not match a client direction.
        let mut s = Vec::new();
        for _ in 0..10 {
            encode_frame(&mut s, true, 0, opcode::TEXT, None, b"abc");
        }
        dec.feed(&s, 5, 2, ts, &mut |e| evs.push(own(e)));
        dec.finish(3, ts, &mut |e| evs.push(own(e)));
        assert_eq!(
            evs,
            vec![
                Ev::Anomaly("ws_resync_search"),
                Ev::Anomaly("ws_resync_failed")
            ]
        );
        assert!(dec.is_desynced());
    }

    #[test]
    fn resync_buffer_is_bounded_and_slides() {
        let mut dec = FrameDecoder::new(SERVER).resyncing();
        let ts = Timestamp::default();
        let mut evs = Vec::new();
        dec.gap(1, 1, ts, &mut |e| evs.push(own(e)));
        let junk = vec![0x83u8; 3 * RESYNC_LIMIT];
        dec.feed(&junk, 1, 2, ts, &mut |e| evs.push(own(e)));
        assert!(dec.resync.buf.len() <= RESYNC_LIMIT);
        let mut s = Vec::new();
        for _ in 0..8 {
            encode_frame(&mut s, true, 0, opcode::TEXT, None, b"abc");
        }
        dec.feed(&s, 1 + junk.len() as u64, 3, ts, &mut |e| evs.push(own(e)));
        dec.finish(4, ts, &mut |e| evs.push(own(e)));
        let headers = evs.iter().filter(|e| matches!(e, Ev::Header(..))).count();
        assert_eq!(headers, 8);
        assert!(evs.contains(&Ev::Anomaly("ws_resync")));
    }

    proptest::proptest! {
        #[test]
        fn resync_never_panics_and_stays_bounded(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..3000),
            cut in 0usize..3000,
            lost in 1u64..100,
        ) {
            let cut = cut.min(data.len());
            let mut dec = FrameDecoder::new(SERVER).resyncing();
            let ts = Timestamp::default();
            dec.feed(&data[..cut], 0, 1, ts, &mut |_| {});
            dec.gap(lost, 2, ts, &mut |_| {});
            dec.feed(&data[cut..], cut as u64 + lost, 3, ts, &mut |_| {});
            dec.finish(4, ts, &mut |_| {});
            proptest::prop_assert!(dec.resync.buf.len() <= RESYNC_LIMIT);
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_split_anywhere_gives_the_same_events(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            cut in 0usize..600,
            masked in proptest::bool::ANY,
        ) {
            let cfg = FrameConfig { expect_masked: masked };
            let cut = cut.min(data.len());
            proptest::prop_assert_eq!(run(cfg, &[&data[..cut], &data[cut..]]), run(cfg, &[&data]));
        }
    }
}
