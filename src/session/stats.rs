//! What the session stage counts: per session (its [`SessionSummary`]) and
//! per run ([`SessionStats`]).

use super::record::{CloseRecord, PerDir, SessionEndRecord};
use crate::tcp::CloseReason;
use crate::types::{Dir, Timestamp};
use std::collections::BTreeMap;

/// Adds another part's counts into `self`: the shards of a threaded run
/// each count their own flows, and the run's totals are their sum.
pub trait Tally {
    /// Adds `other`'s counts to `self`.
    fn add(&mut self, other: &Self);
}

impl Tally for u64 {
    fn add(&mut self, other: &Self) {
        *self += *other;
    }
}

impl<K: Ord + Clone> Tally for BTreeMap<K, u64> {
    fn add(&mut self, other: &Self) {
        for (k, v) in other {
            *self.entry(k.clone()).or_default() += v;
        }
    }
}

/// The session stage's counts over a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// WebSocket sessions seen (101 responses to upgrade requests).
    pub sessions: u64,
    /// Messages by opcode name.
    pub messages: BTreeMap<&'static str, u64>,
    /// Gaps in any stream (in the handshake or after), and their bytes.
    pub gaps: u64,
    /// Total bytes in those gaps.
    pub gap_bytes: u64,
    /// Every anomaly reported in the run, by name, whichever stage found it.
    pub anomalies: BTreeMap<&'static str, u64>,
}

impl Tally for SessionStats {
    fn add(&mut self, o: &Self) {
        self.sessions.add(&o.sessions);
        self.messages.add(&o.messages);
        self.gaps.add(&o.gaps);
        self.gap_bytes.add(&o.gap_bytes);
        self.anomalies.add(&o.anomalies);
    }
}

/// Everything known about one session when it ends: the one summary that
/// the `session_end` record, the export's manifest and `sessions` render.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionSummary {
    /// Anomalies reported in the session.
    pub anomalies: u64,
    /// Gaps (uncaptured byte ranges) in the session's streams.
    pub gaps: u64,
    /// Total bytes in those gaps.
    pub gap_bytes: u64,
    /// Messages (data and control) per direction.
    pub messages: PerDir,
    /// Decoded (inflated) payload bytes.
    pub bytes: PerDir,
    /// Payload bytes on the wire.
    pub wire_bytes: PerDir,
    /// Stream bytes after the handshake (frames and all).
    pub stream_bytes: PerDir,
    /// The close frame each direction sent, by [`Dir::index`].
    pub close: [Option<CloseRecord>; 2],
    /// The last packet time seen of the session.
    pub last_ts: Timestamp,
}

impl SessionSummary {
    pub(crate) fn message(&mut self, dir: Dir, len: u64, wire_len: u64) {
        self.messages.add_to(dir, 1);
        self.bytes.add_to(dir, len);
        self.wire_bytes.add_to(dir, wire_len);
    }

    /// Whether the session ended cleanly: a close each way, nothing lost,
    /// and TCP torn down with FIN.
    pub fn clean(&self, reason: &CloseReason) -> bool {
        self.close[0].is_some()
            && self.close[1].is_some()
            && self.gaps == 0
            && matches!(reason, CloseReason::Fin)
    }

    /// The `session_end` record of session `id`.
    pub fn end_record(&self, id: u64, reason: &CloseReason) -> SessionEndRecord {
        SessionEndRecord {
            session: id,
            ts: self.last_ts,
            reason: reason.name().to_owned(),
            messages: self.messages,
            bytes: self.bytes,
            wire_bytes: self.wire_bytes,
            stream_bytes: self.stream_bytes,
            close_c2s: self.close[0].clone(),
            close_s2c: self.close[1].clone(),
            gaps: self.gaps,
            gap_bytes: self.gap_bytes,
            anomalies: self.anomalies,
            incomplete: !self.clean(reason),
        }
    }
}

impl PerDir {
    /// Adds `n` to `dir`'s count.
    pub fn add_to(&mut self, dir: Dir, n: u64) {
        match dir {
            Dir::C2s => self.c2s += n,
            Dir::S2c => self.s2c += n,
        }
    }

    /// `dir`'s count.
    pub fn get(&self, dir: Dir) -> u64 {
        match dir {
            Dir::C2s => self.c2s,
            Dir::S2c => self.s2c,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_add_every_field() {
        let mut a = SessionStats {
            sessions: 1,
            gaps: 2,
            gap_bytes: 30,
            ..Default::default()
        };
        a.messages.insert("text", 4);
        a.anomalies.insert("ws_desync", 1);
        let mut b = a.clone();
        b.messages.insert("binary", 1);
        a.add(&b);
        assert_eq!((a.sessions, a.gaps, a.gap_bytes), (2, 4, 60));
        assert_eq!(a.messages.get("text"), Some(&8));
        assert_eq!(a.messages.get("binary"), Some(&1));
        assert_eq!(a.anomalies.get("ws_desync"), Some(&2));
    }

    #[test]
    fn only_a_close_each_way_and_fin_is_clean() {
        let mut s = SessionSummary::default();
        assert!(!s.clean(&CloseReason::Fin));
        s.close = [Some(CloseRecord::default()), Some(CloseRecord::default())];
        assert!(s.clean(&CloseReason::Fin));
        assert!(!s.clean(&CloseReason::Rst));
        s.gaps = 1;
        assert!(!s.clean(&CloseReason::Fin));
    }
}
