//! A WebSocket session in progress: from the `101` to its end.

use super::direction::Direction;
use super::emit::Emitter;
use super::stage::SessionStage;
use super::stats::SessionSummary;
use crate::http::{Chunk, Handshake};
use crate::message::DeflateParams;
use crate::sink::Sink;
use crate::tcp::{CloseReason, FlowInfo, SeqMap, Side};
use crate::types::{Anomaly, Dir, PacketNo, Timestamp};
use std::io;

/// A WebSocket session in progress.
pub struct WsSession {
    pub(super) id: u64,
    /// The TCP side ([`Side::index`]) that sent the upgrade request.
    pub(super) client_side: usize,
    pub(super) dirs: [DirState; 2],
    pub(super) summary: SessionSummary,
    /// FIN seen, per TCP side (for ending the session at the close).
    pub(super) fins: [bool; 2],
}

impl WsSession {
    /// The WebSocket direction of what TCP side `side` sends.
    pub(super) fn dir_of(&self, side: Side) -> Dir {
        if side.index() == self.client_side {
            Dir::C2s
        } else {
            Dir::S2c
        }
    }
}

/// One direction of a session: its decoder and where its bytes sit in TCP.
pub(super) struct DirState {
    pub(super) decoding: Direction,
    /// TCP stream offset where this direction's WebSocket bytes start.
    base: Option<u64>,
    /// TCP sequence numbers of TCP stream offsets.
    seq: SeqMap,
    /// TCP stream offset one past the last byte seen (data or gap).
    next: Option<u64>,
}

impl DirState {
    fn new(dir: Dir, cfg: &crate::message::MessageConfig, deflate: Option<DeflateParams>) -> Self {
        DirState {
            decoding: Direction::new(dir, cfg.clone(), deflate),
            base: None,
            seq: SeqMap::default(),
            next: None,
        }
    }

    /// TCP sequence number of WebSocket stream offset 0 (its TCP stream
    /// offset while the map is unknown).
    pub(super) fn seq0(&self) -> u32 {
        // Every path that decodes bytes has set where they start.
        debug_assert!(self.base.is_some() || self.next.is_none());
        self.seq.seq_or_offset(self.base.unwrap_or(0))
    }
}

/// The bytes of the packet that completed the `101` handshake.
pub(super) struct FirstBytes<'a> {
    /// The side that sent the packet (the server, unless its head came first).
    pub(super) side: Side,
    pub(super) offset: u64,
    pub(super) seq: u32,
    /// What followed the HTTP head in it: the first WebSocket bytes.
    pub(super) tail: &'a [u8],
    /// Where `tail` starts in the packet's data.
    pub(super) start: usize,
    pub(super) packet: PacketNo,
    pub(super) ts: Timestamp,
}

impl<S: Sink> SessionStage<S> {
    /// The handshake completed: the session starts, with the client bytes
    /// held back before the `101` and the bytes after the head.
    pub(super) fn upgrade(
        &mut self,
        info: &FlowInfo,
        hs: Box<Handshake>,
        pending_client: Vec<Chunk>,
        held_end: u64,
        first: FirstBytes<'_>,
    ) -> io::Result<Box<WsSession>> {
        let flow = info.first_packet;
        let client_side = hs.client_side.min(1);
        let mut sess = self.start_session(info, hs, first.packet)?;
        let cdir = Dir::C2s;
        if let Some(isn) = info.isn.get(client_side).copied().flatten() {
            sess.dirs[cdir.index()].seq.learn(0, isn.wrapping_add(1));
        }
        for ch in &pending_client {
            let off = ch.stream_offset;
            let (p, t) = (ch.packet, ch.ts);
            self.ws_data(&mut sess, flow, cdir, off, None, &ch.data, p, t)?;
        }
        // Held bytes dropped at the end of the hold are lost now, not when
        // (if) more come.
        if let Some(last) = pending_client.last() {
            self.dropped_gap(&mut sess, flow, cdir, held_end, last.packet, last.ts)?;
        }
        let dir = if first.side.index() == client_side {
            Dir::C2s
        } else {
            Dir::S2c
        };
        let tail_off = first.offset + first.start as u64;
        // The response's side starts its frames right after the head, even
        // when nothing follows yet in this segment.
        let ds = &mut sess.dirs[dir.index()];
        ds.base = Some(tail_off);
        ds.next = Some(tail_off);
        ds.seq.set(first.offset, first.seq);
        if !first.tail.is_empty() {
            let seq = Some(first.seq.wrapping_add(first.start as u32));
            let (p, t) = (first.packet, first.ts);
            self.ws_data(&mut sess, flow, dir, tail_off, seq, first.tail, p, t)?;
        }
        Ok(sess)
    }

    /// A new session; its id is the global number of the packet that
    /// completed the 101 response, which no other session can share and
    /// which does not depend on how flows are spread over threads.
    fn start_session(
        &mut self,
        info: &FlowInfo,
        hs: Box<Handshake>,
        packet: PacketNo,
    ) -> io::Result<Box<WsSession>> {
        let id = packet;
        self.stats.sessions += 1;
        let client_side = hs.client_side.min(1);
        let super::emit::SessionStart {
            record,
            mut deflate,
            param_faults,
        } = super::emit::session_record(&self.files, info, &hs, id);
        self.sink.session(&crate::sink::SessionView {
            record: &record,
            raw_request: &hs.request.raw,
            raw_response: &hs.response.raw,
        })?;
        let mut sess = Box::new(WsSession {
            id,
            client_side,
            fins: [false; 2],
            dirs: [
                DirState::new(Dir::C2s, &self.cfg.message, deflate[0].take()),
                DirState::new(Dir::S2c, &self.cfg.message, deflate[1].take()),
            ],
            summary: SessionSummary {
                last_ts: hs.response.ts,
                ..Default::default()
            },
        });
        let at = hs.response.packets.last().copied().unwrap_or(0);
        let params = param_faults.into_iter().map(|(name, detail)| Anomaly {
            name,
            detail,
            packet: at,
            ts: hs.response.ts,
        });
        for a in hs.anomalies.iter().cloned().chain(params) {
            sess.summary.anomalies += 1;
            self.emit_anomaly(&a, Some(id), info.first_packet, None)?;
        }
        Ok(sess)
    }

    /// WebSocket bytes of one direction, in stream order.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ws_data(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        tcp_offset: u64,
        seq: Option<u32>,
        data: &[u8],
        packet: PacketNo,
        ts: Timestamp,
    ) -> io::Result<()> {
        let d = dir.index();
        if let Some(next) = sess.dirs[d].next {
            // Bytes dropped before they reached us (held client bytes over
            // their limit): the same as a TCP gap for the decoder.
            if tcp_offset > next {
                self.dropped_gap(sess, flow, dir, tcp_offset, packet, ts)?;
            }
        }
        let ds = &mut sess.dirs[d];
        let base = *ds.base.get_or_insert(tcp_offset);
        if let Some(seq) = seq {
            ds.seq.learn(tcp_offset, seq);
        }
        ds.next = Some(tcp_offset + data.len() as u64);
        let off = tcp_offset.saturating_sub(base);
        sess.summary.stream_bytes.add_to(dir, data.len() as u64);
        sess.summary.last_ts = ts;
        if self.want_streams {
            self.sink.stream(sess.id, dir, data)?;
        }
        let seq0 = sess.dirs[d].seq0();
        let WsSession {
            id, dirs, summary, ..
        } = sess;
        let mut em = Emitter::new(self, summary, *id, flow, dir, seq0);
        dirs[d]
            .decoding
            .feed(data, off, packet, ts, &mut |out| em.output(out));
        em.done()
    }

    /// Bytes that never reached the session up to `upto` (held client bytes
    /// dropped over their limit): reported like a TCP gap (record and stats)
    /// so stats and session_end agree and no lost byte goes unlisted.
    fn dropped_gap(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        upto: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) -> io::Result<()> {
        let ds = &sess.dirs[dir.index()];
        let Some(next) = ds.next.filter(|&n| n < upto) else {
            return Ok(());
        };
        let len = upto - next;
        let seq = ds.seq.seq_or_offset(next);
        let id = Some(sess.id);
        self.gap_record(
            id,
            flow,
            Some(dir),
            seq,
            next,
            len,
            "buffer_limit",
            packet,
            ts,
        )?;
        self.ws_gap(sess, flow, dir, next, len, packet, ts)
    }

    /// `len` bytes of one direction at TCP stream offset `tcp_offset` were lost.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ws_gap(
        &mut self,
        sess: &mut WsSession,
        flow: u64,
        dir: Dir,
        tcp_offset: u64,
        len: u64,
        packet: PacketNo,
        ts: Timestamp,
    ) -> io::Result<()> {
        let d = dir.index();
        let base = *sess.dirs[d].base.get_or_insert(tcp_offset);
        sess.dirs[d].next = Some(tcp_offset + len);
        let off = tcp_offset.saturating_sub(base);
        sess.summary.gaps += 1;
        sess.summary.gap_bytes += len;
        if self.want_streams {
            self.sink.stream_gap(sess.id, dir, off, len)?;
        }
        let seq0 = sess.dirs[d].seq0();
        let WsSession {
            id, dirs, summary, ..
        } = sess;
        let mut em = Emitter::new(self, summary, *id, flow, dir, seq0);
        dirs[d]
            .decoding
            .gap(len, packet, ts, &mut |out| em.output(out));
        em.done()
    }

    /// The session's end: what is still open in each direction, then its
    /// `session_end` record.
    pub(super) fn end_session(
        &mut self,
        mut sess: Box<WsSession>,
        info: &FlowInfo,
        reason: &CloseReason,
    ) -> io::Result<()> {
        let id = sess.id;
        for dir in [Dir::C2s, Dir::S2c] {
            let ts = sess.summary.last_ts;
            let WsSession { dirs, summary, .. } = &mut *sess;
            let ds = &mut dirs[dir.index()];
            let mut em = Emitter::new(self, summary, id, info.first_packet, dir, ds.seq0());
            ds.decoding.finish(0, ts, &mut |out| em.output(out));
            em.done()?;
        }
        self.sink.session_end(&sess.summary.end_record(id, reason))
    }
}
