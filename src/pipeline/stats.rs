//! The run's counts, stage by stage, and the `stats` record made of them.

use crate::decode::DecodeStats;
use crate::session::{SessionStats, StatsRecord, Tally};
use crate::tcp::TcpStats;
use std::collections::BTreeMap;

/// What was read: every packet of the input, decoded or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputStats {
    /// Packets read, over all inputs.
    pub packets: u64,
    /// Captured bytes of those packets.
    pub bytes: u64,
}

impl Tally for InputStats {
    fn add(&mut self, o: &Self) {
        self.packets += o.packets;
        self.bytes += o.bytes;
    }
}

/// Each stage's counts over a run (or one shard of it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// What was read.
    pub input: InputStats,
    /// The decode stage's counts (link, tunnels, IP).
    pub decode: DecodeStats,
    /// The TCP stage's counts (flows, reassembly).
    pub tcp: TcpStats,
    /// The session stage's counts (sessions, messages, anomalies).
    pub session: SessionStats,
}

impl Tally for RunStats {
    fn add(&mut self, o: &Self) {
        self.input.add(&o.input);
        self.decode.add(&o.decode);
        self.tcp.add(&o.tcp);
        self.session.add(&o.session);
    }
}

impl RunStats {
    /// The `stats` record: the schema of `docs/json.md`.
    pub fn record(&self) -> StatsRecord {
        let own = |m: &BTreeMap<&'static str, u64>| -> BTreeMap<String, u64> {
            m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let mut counters = BTreeMap::new();
        for (k, v) in self.tcp.fields() {
            counters.insert(format!("tcp_{k}"), v);
        }
        let d = &self.decode;
        for (k, v) in [
            ("decode_snaplen_cut", d.snaplen_cut),
            (
                "decode_ip_length_exceeds_packet",
                d.ip_length_exceeds_packet,
            ),
            ("decode_fragments", d.fragments),
            ("decode_datagrams_reassembled", d.datagrams_reassembled),
            ("decode_datagrams_expired", d.datagrams_expired),
            ("decode_datagrams_evicted", d.datagrams_evicted),
            (
                "decode_datagrams_incomplete_at_end",
                d.datagrams_incomplete_at_end,
            ),
            (
                "decode_fragment_overlap_conflicts",
                d.fragment_overlap_conflicts,
            ),
        ] {
            counters.insert(k.to_owned(), v);
        }
        let s = &self.session;
        StatsRecord {
            packets: self.input.packets,
            bytes: self.input.bytes,
            skipped: self
                .decode
                .skipped()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            flows: self.tcp.flows_created,
            sessions: s.sessions,
            messages: own(&s.messages),
            gaps: s.gaps,
            gap_bytes: s.gap_bytes,
            anomalies: own(&s.anomalies),
            counters,
        }
    }
}

impl Tally for DecodeStats {
    fn add(&mut self, o: &Self) {
        self.packets += o.packets;
        self.segments += o.segments;
        for (a, b) in self.skipped.iter_mut().zip(o.skipped.iter()) {
            *a += b;
        }
        self.snaplen_cut += o.snaplen_cut;
        self.ip_length_exceeds_packet += o.ip_length_exceeds_packet;
        self.ip_zero_length += o.ip_zero_length;
        self.fragments += o.fragments;
        self.datagrams_reassembled += o.datagrams_reassembled;
        self.datagrams_expired += o.datagrams_expired;
        self.datagrams_evicted += o.datagrams_evicted;
        self.datagrams_incomplete_at_end += o.datagrams_incomplete_at_end;
        self.fragment_overlap_conflicts += o.fragment_overlap_conflicts;
        self.fragment_duplicates += o.fragment_duplicates;
        self.fragment_bytes_peak = self.fragment_bytes_peak.max(o.fragment_bytes_peak);
    }
}

impl Tally for TcpStats {
    fn add(&mut self, o: &Self) {
        TcpStats::add(self, o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_fields_are_every_serialized_counter() {
        let t = TcpStats::default();
        let serde_names: Vec<String> = match serde_json::to_value(&t) {
            Ok(serde_json::Value::Object(m)) => m.keys().cloned().collect(),
            other => panic!("{other:?}"),
        };
        let mut ours: Vec<String> = t.fields().iter().map(|f| f.0.to_owned()).collect();
        ours.sort();
        let mut theirs = serde_names;
        theirs.sort();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn shards_sum_but_peaks_take_the_largest() {
        let mut a = RunStats::default();
        a.tcp.segments = 3;
        a.tcp.peak_flows = 5;
        a.input.packets = 7;
        a.decode.fragment_bytes_peak = 10;
        let mut b = a.clone();
        b.tcp.peak_flows = 2;
        b.decode.fragment_bytes_peak = 20;
        a.add(&b);
        assert_eq!((a.tcp.segments, a.tcp.peak_flows), (6, 5));
        assert_eq!(a.input.packets, 14);
        assert_eq!(a.decode.fragment_bytes_peak, 20);
        let rec = a.record();
        assert_eq!(rec.counters.get("tcp_segments"), Some(&6));
        assert_eq!(rec.packets, 14);
    }
}
