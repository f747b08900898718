//! One direction of a connection: sequence unwrapping, in-order delivery, the
//! out-of-order buffer with its overlap policy, and retransmission checks.
//!
//! Invariants: buffered pieces are disjoint, sorted by stream offset, and all
//! start at or after `next` except transiently inside `drain`; bytes below
//! `next` were either delivered (their tail kept in the history ring for
//! comparison) or reported as a gap.

use super::{GapReason, OverlapPolicy, Side, StreamEvent, TcpConfig, TcpStats};
use crate::types::{Anomaly, PacketNo, Timestamp};
use std::collections::BTreeMap;

/// Memory charged per buffered piece on top of its payload: its share of a
/// BTreeMap node (key, Vec header, packet number, timestamp, spare slots) and
/// the allocator's chunk header and rounding. Measured by tests/memory.rs at
/// 108 bytes per one-byte piece, so the memcap holds even for tiny segments.
pub(super) const PIECE_OVERHEAD: usize = 112;

/// The first piece of a direction also allocates the map's root: a B-tree
/// leaf of 11 keys and values (std's node capacity) plus its header. Charged
/// while the map holds anything; an emptied map is replaced so that the root
/// is really freed.
pub(super) const OOO_ROOT: usize = 16 + 11 * (8 + std::mem::size_of::<Piece>()) + 16;

/// Cap on remembered gap ranges per direction (used to tell late data from
/// retransmissions); older ranges are forgotten, newest kept.
const MAX_GAP_RANGES: usize = 8;

pub(super) type Emit<'e> = dyn FnMut(StreamEvent<'_>) -> bool + 'e;

/// Table-wide state a direction needs while processing.
pub(super) struct Ctx<'a> {
    pub cfg: &'a TcpConfig,
    pub stats: &'a mut TcpStats,
    pub mem: &'a mut usize,
    pub observer: Option<&'a mut (dyn super::TableObserver + 'static)>,
}

impl Ctx<'_> {
    pub(super) fn charge(&mut self, n: usize) {
        *self.mem = self.mem.saturating_add(n);
        let m = *self.mem as u64;
        self.stats.peak_memory = self.stats.peak_memory.max(m);
        if let Some(o) = self.observer.as_deref_mut() {
            o.memory_rose(m);
        }
    }
    fn uncharge(&mut self, n: usize) {
        *self.mem = self.mem.saturating_sub(n);
    }
}

/// The packet being processed, for events and anomalies.
#[derive(Clone, Copy)]
pub(super) struct Pkt {
    pub side: Side,
    pub packet: PacketNo,
    pub ts: Timestamp,
}

impl Pkt {
    pub fn anomaly(&self, name: &'static str, detail: String) -> StreamEvent<'static> {
        StreamEvent::Anomaly {
            side: self.side,
            anomaly: Anomaly {
                name,
                detail,
                packet: self.packet,
                ts: self.ts,
            },
        }
    }
}

/// Bytes of a segment (borrowed) or a run of bytes known to be lost.
#[derive(Clone, Copy, Debug)]
pub(super) enum Part<'p> {
    Bytes(&'p [u8]),
    Lost(u64, GapReason),
}

impl<'p> Part<'p> {
    pub fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::Lost(n, _) => *n,
        }
    }

    /// Sub-range `[from, to)` relative to the start; clamped.
    fn slice(self, from: u64, to: u64) -> Part<'p> {
        let to = to.min(self.len());
        let from = from.min(to);
        match self {
            Part::Bytes(b) => Part::Bytes(b.get(from as usize..to as usize).unwrap_or(&[])),
            Part::Lost(_, r) => Part::Lost(to - from, r),
        }
    }
}

enum Content {
    Bytes(Vec<u8>),
    Lost(u64, GapReason),
}

struct Piece {
    content: Content,
    packet: PacketNo,
    ts: Timestamp,
}

impl Piece {
    fn from_part(p: Part<'_>, packet: PacketNo, ts: Timestamp) -> Piece {
        let content = match p {
            Part::Bytes(b) => Content::Bytes(b.to_vec()),
            Part::Lost(n, r) => Content::Lost(n, r),
        };
        Piece {
            content,
            packet,
            ts,
        }
    }
    fn part(&self) -> Part<'_> {
        match &self.content {
            Content::Bytes(v) => Part::Bytes(v),
            Content::Lost(n, r) => Part::Lost(*n, *r),
        }
    }
    fn len(&self) -> u64 {
        self.part().len()
    }
    fn bytes(&self) -> usize {
        match &self.content {
            Content::Bytes(v) => v.len(),
            Content::Lost(..) => 0,
        }
    }
    fn mem(&self) -> usize {
        PIECE_OVERHEAD + self.bytes()
    }
    fn slice(&self, from: u64, to: u64) -> Piece {
        Piece::from_part(self.part().slice(from, to), self.packet, self.ts)
    }
}

/// Rarely large per-direction extras, boxed to keep idle flows small.
#[derive(Default)]
struct Extra {
    /// Ring of the last delivered bytes: `hist[o % len]` is offset `o` for
    /// `hist_from <= o < hist_end`.
    hist: Vec<u8>,
    hist_from: u64,
    hist_end: u64,
    gaps: Vec<(u64, u64)>,
}

// Once-per-direction anomaly bits.
pub(super) const ONCE_BEFORE_START: u16 = 1;
pub(super) const ONCE_LATE: u16 = 2;
pub(super) const ONCE_AFTER_FIN: u16 = 4;
pub(super) const ONCE_AFTER_RST: u16 = 8;
pub(super) const ONCE_SYN_CHANGED: u16 = 16;
pub(super) const ONCE_OUT_OF_WINDOW: u16 = 32;
pub(super) const ONCE_FIN_CHANGED: u16 = 64;

#[derive(Default)]
pub(super) struct DirState {
    /// Sequence number of stream offset 0.
    pub base: super::SeqMap,
    /// Next stream offset to deliver.
    pub next: u64,
    pub fin: Option<u64>,
    pub fin_done: bool,
    fin_packet: PacketNo,
    fin_ts: Timestamp,
    /// Window last advertised by this side (for the other direction's data).
    pub window: u16,
    pub seen: bool,
    pub payload_seen: bool,
    pub reported: u16,
    ooo: BTreeMap<u64, Piece>,
    ooo_bytes: usize,
    ooo_mem: usize,
    extra: Option<Box<Extra>>,
}

/// FNV-1a, 64-bit: a cheap fingerprint of an overlap region for the anomaly text.
fn fnv1a<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for c in chunks {
        for &b in c {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl DirState {
    pub fn seq_at(&self, off: u64) -> u32 {
        self.base.seq_or_offset(off)
    }

    /// Stream offset of `seq`: the unwrapping nearest to `next` (i32
    /// difference), negative when it falls before offset 0.
    pub fn offset_of(&self, seq: u32) -> i64 {
        let d = seq.wrapping_sub(self.seq_at(self.next)) as i32 as i64;
        (self.next.min(i64::MAX as u64) as i64).saturating_add(d)
    }

    /// Anything at all sent on this direction (payload, buffered or FIN).
    pub fn active(&self) -> bool {
        self.payload_seen || self.fin.is_some()
    }

    pub fn set_fin(&mut self, off: u64, packet: PacketNo, ts: Timestamp) {
        self.fin = Some(off);
        self.fin_packet = packet;
        self.fin_ts = ts;
    }

    pub fn once(&mut self, bit: u16) -> bool {
        let first = self.reported & bit == 0;
        self.reported |= bit;
        first
    }

    /// Memory this direction holds in the table's account.
    pub fn mem(&self) -> usize {
        self.ooo_mem + self.extra.as_ref().map_or(0, |e| e.hist.len())
    }

    /// Drops every buffer (flow ignored or gone), returning the memory freed.
    pub fn release(&mut self, ctx: &mut Ctx<'_>) {
        ctx.uncharge(self.mem());
        self.ooo = BTreeMap::new();
        self.ooo_bytes = 0;
        self.ooo_mem = 0;
        self.extra = None;
    }

    /// Feeds one part (payload bytes or snaplen-lost run) starting at stream
    /// offset `s`. Returns false once the handler asked to ignore the flow.
    pub fn on_part(
        &mut self,
        s: i64,
        part: Part<'_>,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        let len = part.len();
        if len == 0 {
            return true;
        }
        let mut part = part;
        let mut s = s;
        if s < 0 {
            let cut = s.unsigned_abs().min(len);
            ctx.stats.bytes_before_start += cut;
            if self.once(ONCE_BEFORE_START) {
                let d = format!(
                    "{cut} bytes precede the first sequence number seen in this direction \
                     (capture started mid-stream or reordered); not delivered, counted in stats"
                );
                if !emit(px.anomaly("tcp_data_before_stream_start", d)) {
                    return false;
                }
            }
            if cut >= len {
                return true;
            }
            part = part.slice(cut, len);
            s = 0;
        }
        let s = s as u64;
        let end = s.saturating_add(part.len());
        if s < self.next {
            ctx.stats.retransmissions += 1;
            let old = part.slice(0, self.next - s);
            if !self.check_old(s, old, px, ctx, emit) {
                return false;
            }
            if end <= self.next {
                return true;
            }
            let from = self.next - s;
            return self.on_new(self.next, part.slice(from, u64::MAX), px, ctx, emit);
        }
        self.on_new(s, part, px, ctx, emit)
    }

    /// `s >= next`: deliver what is in order, buffer the rest.
    fn on_new(
        &mut self,
        s: u64,
        part: Part<'_>,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        let ahead = s - self.next;
        if ahead > ctx.cfg.max_seq_ahead {
            ctx.stats.out_of_window_segments += 1;
            if self.once(ONCE_OUT_OF_WINDOW) {
                let d = format!(
                    "segment starts {ahead} bytes beyond the next expected byte (limit {}); \
                     ignored as not part of this stream; further ones counted in stats",
                    ctx.cfg.max_seq_ahead
                );
                return emit(px.anomaly("tcp_out_of_window", d));
            }
            return true;
        }
        let end = s + part.len();
        if s == self.next {
            let first = self.ooo.keys().next().copied();
            let direct_end = first.map_or(end, |f| f.min(end));
            if direct_end > s {
                if !self.deliver(
                    part.slice(0, direct_end - s),
                    px.packet,
                    px.ts,
                    px.side,
                    ctx,
                    emit,
                ) {
                    return false;
                }
                if direct_end == end {
                    return self.drain(px.side, ctx, emit);
                }
            }
            let rest = part.slice(direct_end - s, u64::MAX);
            return self.buffer(direct_end, rest, px, ctx, emit);
        }
        ctx.stats.ooo_segments += 1;
        self.buffer(s, part, px, ctx, emit)
    }

    fn buffer(
        &mut self,
        s: u64,
        part: Part<'_>,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        let reason = match self.try_insert(s, part, px, ctx, emit) {
            Ok(go) => return go && self.drain(px.side, ctx, emit),
            Err(r) => r,
        };
        // Limit hit: skip ahead. Every hole before the buffered data becomes a
        // gap now, the buffered data is delivered, and the new part follows.
        ctx.stats.limit_hits += 1;
        let d = format!(
            "{} reached with {} bytes in {} pieces buffered; holes reported as gaps and \
             buffered data delivered early",
            reason.name(),
            self.ooo_bytes,
            self.ooo.len()
        );
        if !emit(px.anomaly("tcp_reassembly_limit", d)) {
            return false;
        }
        if !self.flush(reason, px, ctx, emit) {
            return false;
        }
        let end = s + part.len();
        if end <= self.next {
            return self.check_old(s, part, px, ctx, emit);
        }
        let (s, part) = if s < self.next {
            let old = part.slice(0, self.next - s);
            if !self.check_old(s, old, px, ctx, emit) {
                return false;
            }
            (self.next, part.slice(self.next - s, u64::MAX))
        } else {
            (s, part)
        };
        if s > self.next {
            match self.try_insert(s, part, px, ctx, emit) {
                Ok(go) => return go,
                Err(r) => {
                    let hole = Part::Lost(s - self.next, r);
                    if !self.deliver(hole, px.packet, px.ts, px.side, ctx, emit) {
                        return false;
                    }
                }
            }
        }
        self.deliver(part, px.packet, px.ts, px.side, ctx, emit)
    }

    /// Merges `[s, s+len)` into the buffer under the overlap policy. Err when
    /// the result would break a limit (nothing changed then).
    fn try_insert(
        &mut self,
        s: u64,
        part: Part<'_>,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> Result<bool, GapReason> {
        let e = s + part.len();
        let mut keys: Vec<u64> = Vec::new();
        if let Some((&k, p)) = self.ooo.range(..s).next_back() {
            if k + p.len() > s {
                keys.push(k);
            }
        }
        keys.extend(self.ooo.range(s..e).map(|(&k, _)| k));

        let mut out: Vec<(u64, Piece)> = Vec::new();
        let mut removed: Vec<u64> = Vec::new();
        let mut events: Vec<StreamEvent<'static>> = Vec::new();
        let mut cursor = s;
        let mut overlaps = 0u64;
        for &k in &keys {
            let Some(x) = self.ooo.get(&k) else { continue };
            let xe = k + x.len();
            let (a, b) = (k.max(s), xe.min(e));
            if a > cursor {
                out.push((
                    cursor,
                    Piece::from_part(part.slice(cursor - s, a - s), px.packet, px.ts),
                ));
            }
            overlaps += 1;
            let new = part.slice(a - s, b - s);
            let old = x.part().slice(a - k, b - k);
            let new_wins = match (old, new) {
                (Part::Lost(..), Part::Bytes(_)) => true,
                (Part::Bytes(o), Part::Bytes(n)) if o != n => {
                    ctx.stats.conflicting_overlaps += 1;
                    let kept_new = ctx.cfg.overlap == OverlapPolicy::Last;
                    events.push(px.anomaly(
                        "tcp_conflicting_overlap",
                        conflict_detail(
                            a,
                            b - a,
                            (x.packet, x.len(), o),
                            (px.packet, part.len(), n),
                            kept_new,
                        ),
                    ));
                    kept_new
                }
                _ => false,
            };
            if new_wins {
                removed.push(k);
                if k < a {
                    out.push((k, x.slice(0, a - k)));
                }
                out.push((a, Piece::from_part(new, px.packet, px.ts)));
                if xe > b {
                    out.push((b, x.slice(b - k, xe - k)));
                }
            }
            cursor = cursor.max(b);
        }
        if cursor < e {
            out.push((
                cursor,
                Piece::from_part(part.slice(cursor - s, e - s), px.packet, px.ts),
            ));
        }

        let (mut rm_mem, mut rm_bytes) = (0usize, 0usize);
        for k in &removed {
            if let Some(p) = self.ooo.get(k) {
                rm_mem += p.mem();
                rm_bytes += p.bytes();
            }
        }
        let add_mem: usize = out.iter().map(|(_, p)| p.mem()).sum();
        let add_bytes: usize = out.iter().map(|(_, p)| p.bytes()).sum();
        if self.ooo_bytes - rm_bytes + add_bytes > ctx.cfg.max_ooo_bytes_per_dir {
            return Err(GapReason::BufferLimit);
        }
        if self.ooo.len() - removed.len() + out.len() > ctx.cfg.max_segments_per_dir {
            return Err(GapReason::SegmentLimit);
        }
        let root = if self.ooo.is_empty() { OOO_ROOT } else { 0 };
        let add_mem = add_mem + root;
        if ctx.mem.saturating_sub(rm_mem).saturating_add(add_mem) > ctx.cfg.memcap {
            return Err(GapReason::Memcap);
        }

        ctx.stats.overlaps += overlaps;
        for k in &removed {
            self.ooo.remove(k);
        }
        for (k, p) in out {
            self.ooo.insert(k, p);
        }
        ctx.uncharge(rm_mem);
        ctx.charge(add_mem);
        self.ooo_mem = self.ooo_mem - rm_mem + add_mem;
        self.ooo_bytes = self.ooo_bytes - rm_bytes + add_bytes;
        if self.ooo_mem as u64 > ctx.stats.peak_ooo_per_dir {
            ctx.stats.peak_ooo_per_dir = self.ooo_mem as u64;
        }
        for ev in events {
            if !emit(ev) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Delivers buffered pieces that have become contiguous with `next`.
    fn drain(&mut self, side: Side, ctx: &mut Ctx<'_>, emit: &mut Emit<'_>) -> bool {
        while let Some(entry) = self.ooo.first_entry() {
            if *entry.key() > self.next {
                break;
            }
            let (k, piece) = entry.remove_entry();
            if !self.deliver_piece(k, piece, side, ctx, emit) {
                return false;
            }
        }
        true
    }

    /// Delivers everything buffered, turning each hole before a piece into a
    /// gap of `reason`.
    pub fn flush(
        &mut self,
        reason: GapReason,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        while let Some((k, piece)) = self.ooo.pop_first() {
            if k > self.next {
                let hole = Part::Lost(k - self.next, reason);
                if !self.deliver(hole, piece.packet, piece.ts, px.side, ctx, emit) {
                    self.unaccount(&piece, ctx);
                    return false;
                }
            }
            if !self.deliver_piece(k, piece, px.side, ctx, emit) {
                return false;
            }
        }
        true
    }

    /// The peer acknowledged `ack`: when that covers buffered data, the
    /// bytes of the hole before it reached the peer and will not be resent,
    /// so the capture lost them. Report those holes now instead of holding
    /// everything behind them until a limit or EOF.
    pub fn on_ack(&mut self, ack: u32, px: &Pkt, ctx: &mut Ctx<'_>, emit: &mut Emit<'_>) -> bool {
        let Some(&first) = self.ooo.keys().next() else {
            return true;
        };
        let Ok(mut acked) = u64::try_from(self.offset_of(ack)) else {
            return true;
        };
        if acked <= first || acked - self.next > ctx.cfg.max_seq_ahead {
            return true;
        }
        if let Some(f) = self.fin {
            acked = acked.min(f.max(self.next));
        }
        let before = ctx.stats.gap_bytes;
        while let Some(entry) = self.ooo.first_entry() {
            if *entry.key() >= acked {
                break;
            }
            let (k, piece) = entry.remove_entry();
            if k > self.next {
                let hole = Part::Lost(k - self.next, GapReason::Lost);
                if !self.deliver(hole, piece.packet, piece.ts, px.side, ctx, emit) {
                    self.unaccount(&piece, ctx);
                    return false;
                }
            }
            if !self.deliver_piece(k, piece, px.side, ctx, emit) {
                return false;
            }
        }
        if acked > self.next {
            let hole = Part::Lost(acked - self.next, GapReason::Lost);
            if !self.deliver(hole, px.packet, px.ts, px.side, ctx, emit) {
                return false;
            }
        }
        ctx.stats.ack_gap_bytes += ctx.stats.gap_bytes - before;
        self.drain(px.side, ctx, emit)
    }

    /// End of this direction (EOF, timeout, eviction, RST): flush, then
    /// report bytes missing before a seen FIN and the FIN itself.
    pub fn finish(&mut self, px: &Pkt, ctx: &mut Ctx<'_>, emit: &mut Emit<'_>) -> bool {
        if !self.flush(GapReason::Lost, px, ctx, emit) {
            return false;
        }
        if let Some(f) = self.fin {
            if !self.fin_done && self.next < f {
                let hole = Part::Lost(f - self.next, GapReason::Lost);
                return self.deliver(hole, self.fin_packet, self.fin_ts, px.side, ctx, emit);
            }
        }
        true
    }

    /// Takes a piece already removed from the map off the account (and the
    /// map's root with the last piece).
    fn unaccount(&mut self, piece: &Piece, ctx: &mut Ctx<'_>) {
        ctx.uncharge(piece.mem());
        self.ooo_mem -= piece.mem();
        self.ooo_bytes -= piece.bytes();
        if self.ooo.is_empty() {
            self.ooo = BTreeMap::new();
            ctx.uncharge(OOO_ROOT);
            self.ooo_mem = self.ooo_mem.saturating_sub(OOO_ROOT);
        }
    }

    fn deliver_piece(
        &mut self,
        k: u64,
        piece: Piece,
        side: Side,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        self.unaccount(&piece, ctx);
        let pend = k + piece.len();
        if pend <= self.next {
            return true;
        }
        let part = piece.part().slice(self.next.saturating_sub(k), u64::MAX);
        self.deliver(part, piece.packet, piece.ts, side, ctx, emit)
    }

    /// Emits `part` at `next` and advances; then the FIN if it is now due.
    pub fn deliver(
        &mut self,
        part: Part<'_>,
        packet: PacketNo,
        ts: Timestamp,
        side: Side,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        let offset = self.next;
        let seq = self.seq_at(offset);
        let len = part.len();
        let go = match part {
            Part::Bytes(data) => {
                self.remember(offset, data, ctx);
                ctx.stats.bytes_delivered += len;
                emit(StreamEvent::Data {
                    side,
                    offset,
                    seq,
                    data,
                    packet,
                    ts,
                })
            }
            Part::Lost(_, reason) => {
                self.note_gap(offset, offset + len);
                ctx.stats.gaps += 1;
                ctx.stats.gap_bytes += len;
                if !matches!(reason, GapReason::Lost | GapReason::SnapLen) {
                    ctx.stats.limit_gap_bytes += len;
                }
                emit(StreamEvent::Gap {
                    side,
                    offset,
                    seq,
                    len,
                    packet,
                    ts,
                    reason,
                })
            }
        };
        self.next = offset + len;
        if !go {
            return false;
        }
        if let (Some(f), Part::Bytes(_)) = (self.fin, part) {
            if offset + len > f && self.once(ONCE_AFTER_FIN) {
                let px = Pkt { side, packet, ts };
                let d = format!("bytes at or beyond the FIN (stream offset {f}) were delivered; they are suspect");
                if !emit(px.anomaly("tcp_data_after_fin", d)) {
                    return false;
                }
            }
        }
        self.check_fin(side, emit)
    }

    pub fn check_fin(&mut self, side: Side, emit: &mut Emit<'_>) -> bool {
        match self.fin {
            Some(f) if !self.fin_done && self.next >= f => {
                self.fin_done = true;
                if self.next == f {
                    self.next = f + 1;
                }
                emit(StreamEvent::Fin {
                    side,
                    packet: self.fin_packet,
                    ts: self.fin_ts,
                })
            }
            _ => true,
        }
    }

    /// Keeps the tail of delivered bytes for comparing later retransmissions.
    fn remember(&mut self, offset: u64, data: &[u8], ctx: &mut Ctx<'_>) {
        let cap = ctx.cfg.history_bytes_per_dir;
        if cap == 0 || data.is_empty() {
            return;
        }
        let extra = self.extra.get_or_insert_with(Default::default);
        if extra.hist.is_empty() {
            // History is a nicety: it only takes from the first half of the memcap.
            if ctx.mem.saturating_add(cap) > ctx.cfg.memcap / 2 {
                ctx.stats.history_denied += 1;
                return;
            }
            extra.hist = vec![0; cap];
            ctx.charge(cap);
            extra.hist_from = offset;
            extra.hist_end = offset;
        }
        if extra.hist_end != offset {
            extra.hist_from = offset;
        }
        let n = extra.hist.len();
        let take = data.len().min(n);
        let tail = data.get(data.len() - take..).unwrap_or(&[]);
        let start = offset + (data.len() - take) as u64;
        let idx = (start % n as u64) as usize;
        let first = take.min(n - idx);
        if let (Some(dst), Some(src)) = (extra.hist.get_mut(idx..idx + first), tail.get(..first)) {
            dst.copy_from_slice(src);
        }
        if let (Some(dst), Some(src)) = (extra.hist.get_mut(..take - first), tail.get(first..)) {
            dst.copy_from_slice(src);
        }
        extra.hist_end = offset + data.len() as u64;
        extra.hist_from = extra.hist_from.max(extra.hist_end.saturating_sub(n as u64));
    }

    fn note_gap(&mut self, from: u64, to: u64) {
        let extra = self.extra.get_or_insert_with(Default::default);
        if extra.gaps.len() >= MAX_GAP_RANGES {
            extra.gaps.remove(0);
        }
        match extra.gaps.last_mut() {
            Some(last) if last.1 == from => last.1 = to,
            _ => extra.gaps.push((from, to)),
        }
        extra.hist_from = to;
        extra.hist_end = to;
    }

    /// Bytes below `next` seen again: late data for a reported gap, or a
    /// retransmission to compare with what was delivered.
    fn check_old(
        &mut self,
        s: u64,
        part: Part<'_>,
        px: &Pkt,
        ctx: &mut Ctx<'_>,
        emit: &mut Emit<'_>,
    ) -> bool {
        let Part::Bytes(data) = part else {
            return true;
        };
        let e = s + data.len() as u64;
        ctx.stats.retransmitted_bytes += data.len() as u64;
        let Some(extra) = self.extra.as_deref() else {
            ctx.stats.unverified_retransmitted_bytes += data.len() as u64;
            return true;
        };
        let late: u64 = extra
            .gaps
            .iter()
            .map(|&(gs, ge)| ge.min(e).saturating_sub(gs.max(s)))
            .sum();
        let (hs, he) = (extra.hist_from.max(s), extra.hist_end.min(e));
        let mut verified = 0u64;
        let mut conflict = None;
        if hs < he && !extra.hist.is_empty() {
            verified = he - hs;
            let n = extra.hist.len() as u64;
            let (i, j) = ((hs % n) as usize, (he - hs) as usize);
            let first = j.min(extra.hist.len() - i);
            let old1 = extra.hist.get(i..i + first).unwrap_or(&[]);
            let old2 = extra.hist.get(..j - first).unwrap_or(&[]);
            let new = data
                .get((hs - s) as usize..(he - s) as usize)
                .unwrap_or(&[]);
            let (new1, new2) = new.split_at(first.min(new.len()));
            if old1 != new1 || old2 != new2 {
                ctx.stats.conflicting_retransmissions += 1;
                conflict = Some(format!(
                    "retransmission of already delivered bytes differs at stream offset {hs} len {}: \
                     delivered version fnv1a {:016x}, new version (packet {}, segment len {}) fnv1a {:016x}; \
                     delivered bytes kept",
                    he - hs,
                    fnv1a([old1, old2]),
                    px.packet,
                    data.len(),
                    fnv1a([new1, new2]),
                ));
            }
        }
        ctx.stats.late_bytes += late;
        ctx.stats.unverified_retransmitted_bytes +=
            (data.len() as u64).saturating_sub(late + verified);
        if let Some(d) = conflict {
            if !emit(px.anomaly("tcp_conflicting_retransmission", d)) {
                return false;
            }
        }
        if late > 0 && self.once(ONCE_LATE) {
            let d = format!(
                "{late} bytes arrived for a range already reported as a gap; not delivered \
                 (further late bytes are counted in stats)"
            );
            return emit(px.anomaly("tcp_late_data", d));
        }
        true
    }
}

fn conflict_detail(
    offset: u64,
    len: u64,
    first: (PacketNo, u64, &[u8]),
    last: (PacketNo, u64, &[u8]),
    kept_last: bool,
) -> String {
    format!(
        "overlapping buffered bytes differ at stream offset {offset} len {len}: first version \
         (packet {}, segment len {}) fnv1a {:016x}, newer version (packet {}, segment len {}) fnv1a {:016x}; \
         kept the {} version",
        first.0,
        first.1,
        fnv1a([first.2]),
        last.0,
        last.1,
        fnv1a([last.2]),
        if kept_last { "newer" } else { "first" }
    )
}
