//! IP fragment reassembly (IPv4 and the IPv6 fragment header), bounded in
//! memory, datagram count and age (in packet time).
//!
//! Fragments are kept as the byte ranges that actually arrived, never as a
//! buffer sized from a declared offset. Overlaps keep the first bytes seen.

use super::{DecodeConfig, DecodeEvent, DecodeStats, SkipReason, MAX_PENDING_EVENTS};
use crate::types::Timestamp;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// Bookkeeping cost charged per held piece, on top of its bytes, so that a
/// flood of tiny fragments is bounded too.
const PIECE_OVERHEAD: usize = 64;
/// Largest reassembled payload: the IP length fields are 16 bits.
const MAX_DATAGRAM: u32 = 65_535;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FragKey {
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// IPv4 protocol (part of the IPv4 key); 0 for IPv6.
    pub(crate) proto: u8,
    pub(crate) id: u32,
}

struct Datagram {
    first_ts: Timestamp,
    /// Arrival order, for evicting the oldest.
    seq: u64,
    /// Disjoint (offset, bytes), sorted by offset.
    pieces: Vec<(u32, Vec<u8>)>,
    /// Payload length, known once the last fragment arrived.
    total: Option<u32>,
    /// Header that follows, from the fragment at offset 0.
    first_next: Option<u8>,
    held: usize,
}

impl Datagram {
    fn max_end(&self) -> u32 {
        self.pieces
            .last()
            .map(|(o, d)| o + d.len() as u32)
            .unwrap_or(0)
    }

    fn is_complete(&self) -> bool {
        let Some(total) = self.total else {
            return false;
        };
        let mut next = 0u32;
        for (o, d) in &self.pieces {
            if *o != next {
                return false;
            }
            next += d.len() as u32;
        }
        next == total
    }
}

pub(crate) enum FragResult {
    /// Held; the datagram is not complete yet.
    Held,
    /// Complete: the payload is in `Reassembler::out`; `next` is the header
    /// that follows the IP header (IPv4 protocol or IPv6 next header).
    Complete {
        next: u8,
    },
    Dropped(SkipReason),
}

pub(crate) struct Reassembler {
    map: BTreeMap<FragKey, Datagram>,
    held: usize,
    seq: u64,
    /// Oldest `first_ts` among held datagrams (may be stale-low, never high).
    oldest: Option<Timestamp>,
    /// The last reassembled payload, lent out as a segment's payload.
    pub(crate) out: Vec<u8>,
}

/// One fragment as it arrived.
pub(crate) struct Fragment<'a> {
    pub(crate) key: FragKey,
    pub(crate) offset: u32,
    pub(crate) more: bool,
    pub(crate) data: &'a [u8],
    pub(crate) next: u8,
}

impl Reassembler {
    pub(crate) fn new() -> Self {
        Reassembler {
            map: BTreeMap::new(),
            held: 0,
            seq: 0,
            oldest: None,
            out: Vec::new(),
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn held_bytes(&self) -> usize {
        self.held
    }

    pub(crate) fn add(
        &mut self,
        f: Fragment<'_>,
        ts: Timestamp,
        cfg: &DecodeConfig,
        stats: &mut DecodeStats,
        events: &mut Vec<DecodeEvent>,
    ) -> FragResult {
        stats.fragments += 1;
        self.expire(ts, cfg, stats, events);
        let len = f.data.len() as u32;
        let end = f.offset.saturating_add(len);
        if end > MAX_DATAGRAM || (f.more && (len == 0 || len % 8 != 0)) {
            return FragResult::Dropped(SkipReason::BadIpFragment);
        }
        let cost = f.data.len() + PIECE_OVERHEAD;
        if cost > cfg.max_fragment_bytes {
            return FragResult::Dropped(SkipReason::IpFragmentLimit);
        }
        if !self.map.contains_key(&f.key) {
            while self.map.len() >= cfg.max_fragment_datagrams.max(1) {
                if !self.evict_oldest(None, stats, events) {
                    break;
                }
            }
            self.seq += 1;
            self.map.insert(
                f.key,
                Datagram {
                    first_ts: ts,
                    seq: self.seq,
                    pieces: Vec::new(),
                    total: None,
                    first_next: None,
                    held: 0,
                },
            );
            self.oldest = Some(self.oldest.map_or(ts, |o| o.min(ts)));
        }
        while self.held + cost > cfg.max_fragment_bytes {
            if !self.evict_oldest(Some(f.key), stats, events) {
                return FragResult::Dropped(SkipReason::IpFragmentLimit);
            }
        }
        let Some(dg) = self.map.get_mut(&f.key) else {
            return FragResult::Dropped(SkipReason::IpFragmentLimit);
        };
        if let Some(total) = dg.total {
            if end > total || (!f.more && end != total) {
                note_conflict(
                    stats,
                    events,
                    &f.key,
                    "a fragment disagrees with the datagram length already known",
                );
                return FragResult::Held;
            }
        } else if !f.more {
            if dg.max_end() > end {
                note_conflict(
                    stats,
                    events,
                    &f.key,
                    "last fragment ends before data already received",
                );
                return FragResult::Held;
            }
            dg.total = Some(end);
        }
        if f.offset == 0 && dg.first_next.is_none() {
            dg.first_next = Some(f.next);
        }
        let (added, conflict, duplicate) = insert_new_ranges(&mut dg.pieces, f.offset, f.data);
        dg.held += added;
        self.held += added;
        if conflict {
            note_conflict(
                stats,
                events,
                &f.key,
                "overlapping fragments carry different bytes; the first were kept",
            );
        } else if duplicate {
            stats.fragment_duplicates += 1;
        }
        stats.fragment_bytes_peak = stats.fragment_bytes_peak.max(self.held);
        if !dg.is_complete() {
            return FragResult::Held;
        }
        let Some(dg) = self.map.remove(&f.key) else {
            return FragResult::Held;
        };
        self.held -= dg.held;
        self.out.clear();
        for (_, d) in &dg.pieces {
            self.out.extend_from_slice(d);
        }
        stats.datagrams_reassembled += 1;
        FragResult::Complete {
            next: dg.first_next.unwrap_or(f.next),
        }
    }

    /// Drops datagrams whose first fragment is older than the timeout.
    fn expire(
        &mut self,
        now: Timestamp,
        cfg: &DecodeConfig,
        stats: &mut DecodeStats,
        events: &mut Vec<DecodeEvent>,
    ) {
        let timeout = cfg.fragment_timeout_secs as f64;
        match self.oldest {
            Some(o) if now.secs_since(o) > timeout => {}
            _ => return,
        }
        let stale: Vec<FragKey> = self
            .map
            .iter()
            .filter(|(_, d)| now.secs_since(d.first_ts) > timeout)
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(d) = self.map.remove(&k) {
                self.held -= d.held;
                stats.datagrams_expired += 1;
                push_event(
                    events,
                    "ip_fragment_expired",
                    format!(
                        "{} -> {} id {}: incomplete after {} s ({} bytes held) and dropped",
                        k.src, k.dst, k.id, cfg.fragment_timeout_secs, d.held
                    ),
                );
            }
        }
        self.oldest = self.map.values().map(|d| d.first_ts).min();
    }

    /// Evicts the oldest datagram other than `keep`; false if there is none.
    fn evict_oldest(
        &mut self,
        keep: Option<FragKey>,
        stats: &mut DecodeStats,
        events: &mut Vec<DecodeEvent>,
    ) -> bool {
        let victim = self
            .map
            .iter()
            .filter(|(k, _)| Some(**k) != keep)
            .min_by_key(|(_, d)| d.seq)
            .map(|(k, _)| *k);
        let Some(k) = victim else { return false };
        if let Some(d) = self.map.remove(&k) {
            self.held -= d.held;
            stats.datagrams_evicted += 1;
            push_event(
                events,
                "ip_fragment_evicted",
                format!(
                    "{} -> {} id {}: dropped incomplete ({} bytes held) to stay within the fragment limits",
                    k.src, k.dst, k.id, d.held
                ),
            );
        }
        true
    }

    /// End of input: every datagram still held is incomplete.
    pub(crate) fn finish(&mut self, stats: &mut DecodeStats, events: &mut Vec<DecodeEvent>) {
        for (k, d) in std::mem::take(&mut self.map) {
            stats.datagrams_incomplete_at_end += 1;
            push_event(
                events,
                "ip_fragment_incomplete_at_end",
                format!(
                    "{} -> {} id {}: never completed ({} bytes held)",
                    k.src, k.dst, k.id, d.held
                ),
            );
        }
        self.held = 0;
        self.oldest = None;
    }
}

fn note_conflict(stats: &mut DecodeStats, events: &mut Vec<DecodeEvent>, k: &FragKey, what: &str) {
    stats.fragment_overlap_conflicts += 1;
    push_event(
        events,
        "ip_fragment_overlap_conflict",
        format!("{} -> {} id {}: {what}", k.src, k.dst, k.id),
    );
}

pub(crate) fn push_event(events: &mut Vec<DecodeEvent>, name: &'static str, detail: String) {
    if events.len() < MAX_PENDING_EVENTS {
        events.push(DecodeEvent { name, detail });
    }
}

/// Adds the parts of `[offset, offset+data.len())` not already held.
/// Returns (bytes added, overlap differed, overlap was identical).
fn insert_new_ranges(
    pieces: &mut Vec<(u32, Vec<u8>)>,
    offset: u32,
    data: &[u8],
) -> (usize, bool, bool) {
    let start = offset as usize;
    let end = start + data.len();
    let mut cursor = start;
    let mut fresh: Vec<(usize, usize)> = Vec::new();
    let mut conflict = false;
    let mut overlapped = false;
    for (po, pd) in pieces.iter() {
        let (ps, pe) = (*po as usize, *po as usize + pd.len());
        if pe <= start || ps >= end {
            continue;
        }
        if cursor < ps {
            fresh.push((cursor, ps.min(end)));
        }
        let (os, oe) = (ps.max(start), pe.min(end));
        overlapped = true;
        if pd.get(os - ps..oe - ps) != data.get(os - start..oe - start) {
            conflict = true;
        }
        cursor = cursor.max(pe);
    }
    if cursor < end {
        fresh.push((cursor, end));
    }
    let mut added = 0;
    for (s, e) in fresh {
        if let Some(bytes) = data.get(s - start..e - start) {
            added += bytes.len() + PIECE_OVERHEAD;
            pieces.push((s as u32, bytes.to_vec()));
        }
    }
    pieces.sort_unstable_by_key(|(o, _)| *o);
    (added, conflict, overlapped && !conflict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_only_uncovered_ranges_and_detects_conflicts() {
        let mut p = vec![(8u32, vec![1u8; 8])];
        // Covers 0..24: 0..8 and 16..24 are new, 8..16 identical.
        let (added, conflict, dup) = insert_new_ranges(&mut p, 0, &[1u8; 24]);
        assert_eq!(added, 16 + 2 * PIECE_OVERHEAD);
        assert!(!conflict && dup);
        let offs: Vec<_> = p.iter().map(|(o, d)| (*o, d.len())).collect();
        assert_eq!(offs, vec![(0, 8), (8, 8), (16, 8)]);
        // Different bytes over 4..12: nothing added, conflict.
        let (added, conflict, _) = insert_new_ranges(&mut p, 4, &[9u8; 8]);
        assert_eq!(added, 0);
        assert!(conflict);
        assert!(
            p.iter().all(|(_, d)| d.iter().all(|b| *b == 1)),
            "first bytes kept"
        );
    }
}
