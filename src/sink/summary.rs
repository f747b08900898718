//! Per-session summaries (`wssniff sessions`) and anomalies by name
//! (`wssniff anomalies`), built from the `session`, `anomaly` and
//! `session_end` records. Memory: one summary per session (no messages are
//! kept) and, per anomaly name, the set of session ids involved.

use super::{SessionView, Sink};
use crate::session::{AnomalyRecord, CloseRecord, PerDir, SessionEndRecord};
use crate::types::Timestamp;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;

/// One row of `wssniff sessions` (`"type":"session_summary"` in JSON).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct SessionRow {
    /// Session id, as in the `session` record.
    pub id: u64,
    /// `ip:port` of the client (IPv6 as `[addr]:port`).
    pub client: String,
    /// `ip:port` of the server (IPv6 as `[addr]:port`).
    pub server: String,
    /// Request target of the upgrade request.
    pub uri: String,
    /// `Host` header of the request; None when absent.
    pub host: Option<String>,
    /// `Origin` header of the request; None when absent.
    pub origin: Option<String>,
    /// Accepted `Sec-WebSocket-Protocol`; None when none was accepted.
    pub subprotocol: Option<String>,
    /// Accepted extensions, each as written in the response.
    pub extensions: Vec<String>,
    /// Time of the 101 response.
    pub start: Timestamp,
    /// Time of the session's last packet (null if the session never ended,
    /// which cannot happen over files: the end of input ends every session).
    pub end: Option<Timestamp>,
    /// Seconds from `start` to `end`.
    pub duration: f64,
    /// Messages (data and control) per direction.
    pub messages: PerDir,
    /// Payload bytes on the wire (compressed size when compressed).
    pub wire_bytes: PerDir,
    /// Decoded payload bytes (inflated).
    pub bytes: PerDir,
    /// Close frame sent by the client; None when it sent none.
    pub close_c2s: Option<CloseRecord>,
    /// Close frame sent by the server; None when it sent none.
    pub close_s2c: Option<CloseRecord>,
    /// Why the session ended (`fin`, `rst`, `end_of_input`, ..., as `session_end.reason`); None before it ended.
    pub end_reason: Option<String>,
    /// Number of gaps (uncaptured byte ranges) in the session.
    pub gaps: u64,
    /// Total bytes in those gaps.
    pub gap_bytes: u64,
    /// Number of anomalies in the session.
    pub anomalies: u64,
    /// Anomaly counts by name.
    pub anomaly_names: BTreeMap<String, u64>,
    /// As `session_end.incomplete`: no clean close handshake and TCP teardown, or bytes missing.
    pub incomplete: bool,
    /// 0-based input index of the handshake, when several inputs were read.
    pub file: Option<usize>,
}

impl SessionRow {
    /// Payload bytes on the wire, both directions together (the `--sort bytes` key).
    pub fn total_bytes(&self) -> u64 {
        self.wire_bytes.c2s + self.wire_bytes.s2c
    }
    /// Messages, both directions together (the `--sort messages` key).
    pub fn total_messages(&self) -> u64 {
        self.messages.c2s + self.messages.s2c
    }
}

/// How bad an anomaly is, for `wssniff anomalies` (worst first).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Bytes lost, misread or ambiguous: what was decoded may not be what was sent.
    Critical,
    /// A protocol violation: decoded exactly, but a peer broke the rules.
    Warning,
    /// Worth knowing, not wrong.
    Info,
}

impl Severity {
    /// The JSON name: `critical`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

/// Anomalies that mean the decoded data may be wrong or missing.
const CRITICAL: &[&str] = &[
    "ws_desync",
    "ws_length_top_bit",
    "ws_message_truncated",
    "ws_message_incomplete",
    "ws_too_many_fragments",
    "ws_too_many_packets",
    "deflate_error",
    "deflate_context_lost",
    "deflate_limit",
    "deflate_work_limit",
    "deflate_inflater_limit",
    "http_gap",
    "http_head_too_large",
    "http_pending_client_overflow",
    "tcp_conflicting_overlap",
    "tcp_conflicting_retransmission",
    "tcp_reassembly_limit",
    "tcp_late_data",
    "ip_fragment_overlap_conflict",
    "ip_fragment_expired",
    "ip_fragment_evicted",
    "ip_fragment_incomplete_at_end",
    "ip_fragment_incomplete",
    "ip_fragment_limit",
    "ip_fragment_truncated",
    "truncated_link",
    "truncated_ip",
    "truncated_tcp",
    "http_too_many_headers",
    "http_too_many_pipelined",
];

/// Anomalies that are informational.
const INFO: &[&str] = &[
    "deflate_high_ratio",
    "timestamp_backwards",
    "unusual_capture_version",
    "bad_pcapng_option",
    "http_upgrade_refused",
    "http_upgrade_unanswered",
    "http_upgrade_other_protocol",
    "not_ip",
    "not_tcp",
    "unsupported_link_type",
];

/// The severity of an anomaly name: the tables above; every other name is
/// a protocol violation (warning).
pub fn severity(name: &str) -> Severity {
    if CRITICAL.contains(&name) || name.contains("gap") || name.contains("desync") {
        Severity::Critical
    } else if INFO.contains(&name) {
        Severity::Info
    } else {
        Severity::Warning
    }
}

/// One row of `wssniff anomalies` (`"type":"anomaly_summary"` in JSON).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AnomalySummary {
    /// Anomaly name, as listed in `docs/anomalies.md`.
    pub name: String,
    /// How bad it is (see [`severity`]).
    pub severity: Severity,
    /// Occurrences over the whole run.
    pub count: u64,
    /// Sessions involved, ascending (anomalies before a handshake have none).
    pub sessions: Vec<u64>,
    /// Occurrences not attached to a session.
    pub without_session: u64,
    /// Packet number of the first occurrence (within its input file)...
    pub first_packet: Option<u64>,
    /// ...and that file's index, when several inputs were read.
    pub first_file: Option<usize>,
}

#[derive(Default)]
struct NameAcc {
    count: u64,
    sessions: BTreeSet<u64>,
    without_session: u64,
    first_packet: Option<u64>,
    first_file: Option<usize>,
}

/// Collects [`SessionRow`] and [`AnomalySummary`] rows.
#[derive(Default)]
pub struct SummarySink {
    sessions: BTreeMap<u64, SessionRow>,
    anomalies: BTreeMap<String, NameAcc>,
}

impl SummarySink {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sessions, in id (start) order.
    pub fn sessions(&self) -> Vec<SessionRow> {
        self.sessions.values().cloned().collect()
    }

    /// Anomalies by name, worst first: severity, then count (descending),
    /// then name.
    pub fn anomalies(&self) -> Vec<AnomalySummary> {
        let mut v: Vec<AnomalySummary> = self
            .anomalies
            .iter()
            .map(|(name, a)| AnomalySummary {
                name: name.clone(),
                severity: severity(name),
                count: a.count,
                sessions: a.sessions.iter().copied().collect(),
                without_session: a.without_session,
                first_packet: a.first_packet,
                first_file: a.first_file,
            })
            .collect();
        v.sort_by(|a, b| {
            (a.severity, std::cmp::Reverse(a.count), &a.name).cmp(&(
                b.severity,
                std::cmp::Reverse(b.count),
                &b.name,
            ))
        });
        v
    }
}

/// Sort keys of `wssniff sessions --sort`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    /// Start time (then id): the default.
    Start,
    /// Wire bytes, most first.
    Bytes,
    /// Anomalies, most first.
    Anomalies,
    /// Duration, longest first.
    Duration,
    /// Messages, most first.
    Messages,
}

/// Sorts summaries; ties (and `Start`) fall back to id order, so output is
/// deterministic.
pub fn sort_sessions(v: &mut [SessionRow], key: SortKey) {
    use std::cmp::Reverse;
    match key {
        SortKey::Start => v.sort_by_key(|a| (a.start, a.id)),
        SortKey::Bytes => v.sort_by_key(|s| (Reverse(s.total_bytes()), s.id)),
        SortKey::Anomalies => v.sort_by_key(|s| (Reverse(s.anomalies), s.id)),
        SortKey::Messages => v.sort_by_key(|s| (Reverse(s.total_messages()), s.id)),
        SortKey::Duration => {
            v.sort_by(|a, b| b.duration.total_cmp(&a.duration).then(a.id.cmp(&b.id)))
        }
    }
}

impl Sink for SummarySink {
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        let r = s.record;
        self.sessions.insert(
            r.id,
            SessionRow {
                id: r.id,
                client: r.client.clone(),
                server: r.server.clone(),
                uri: r.uri.clone(),
                host: r.host.clone(),
                origin: r.origin.clone(),
                subprotocol: r.subprotocol.clone(),
                extensions: r.extensions.clone(),
                start: r.ts,
                file: r.file,
                ..Default::default()
            },
        );
        Ok(())
    }

    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        let acc = self.anomalies.entry(a.name.clone()).or_default();
        acc.count += 1;
        if acc.count == 1 {
            acc.first_packet = a.packet;
            acc.first_file = a.file;
        }
        match a.session {
            Some(id) => {
                acc.sessions.insert(id);
                if let Some(s) = self.sessions.get_mut(&id) {
                    *s.anomaly_names.entry(a.name.clone()).or_default() += 1;
                }
            }
            None => acc.without_session += 1,
        }
        Ok(())
    }

    fn wants_payloads(&self) -> bool {
        false
    }

    fn session_end(&mut self, e: &SessionEndRecord) -> io::Result<()> {
        if let Some(s) = self.sessions.get_mut(&e.session) {
            s.duration = e.ts.secs_since(s.start).max(0.0);
            s.end = Some(e.ts);
            s.messages = e.messages;
            s.bytes = e.bytes;
            s.wire_bytes = e.wire_bytes;
            s.close_c2s = e.close_c2s.clone();
            s.close_s2c = e.close_s2c.clone();
            s.end_reason = Some(e.reason.clone());
            s.gaps = e.gaps;
            s.gap_bytes = e.gap_bytes;
            s.anomalies = e.anomalies;
            s.incomplete = e.incomplete;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities() {
        assert_eq!(severity("ws_desync"), Severity::Critical);
        assert_eq!(severity("tcp_conflicting_overlap"), Severity::Critical);
        assert_eq!(severity("deflate_error"), Severity::Critical);
        assert_eq!(severity("ws_unmasked_client_frame"), Severity::Warning);
        assert_eq!(severity("deflate_high_ratio"), Severity::Info);
        assert!(Severity::Critical < Severity::Warning && Severity::Warning < Severity::Info);
    }

    #[test]
    fn severity_tables_name_real_anomalies() {
        let known: BTreeSet<&str> = crate::ANOMALY_TABLES
            .iter()
            .flat_map(|(_, names)| names.iter().map(|(n, _)| *n))
            .collect();
        for name in CRITICAL.iter().chain(INFO) {
            assert!(known.contains(name), "{name} is not an anomaly name");
        }
    }

    #[test]
    fn anomalies_sorted_worst_first() {
        let mut s = SummarySink::new();
        let rec = |name: &str, session: Option<u64>| AnomalyRecord {
            name: name.to_owned(),
            session,
            flow: None,
            dir: None,
            packet: Some(7),
            ts: None,
            detail: String::new(),
            file: None,
        };
        for (n, sess) in [
            ("deflate_high_ratio", Some(1)),
            ("deflate_high_ratio", Some(2)),
            ("deflate_high_ratio", Some(2)),
            ("ws_unmasked_client_frame", Some(3)),
            ("ws_desync", None),
            ("ws_reserved_opcode", Some(3)),
            ("ws_reserved_opcode", Some(4)),
        ] {
            s.anomaly(&rec(n, sess)).unwrap();
        }
        let v = s.anomalies();
        let names: Vec<&str> = v.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "ws_desync",
                "ws_reserved_opcode",
                "ws_unmasked_client_frame",
                "deflate_high_ratio"
            ]
        );
        assert_eq!(v[0].without_session, 1);
        assert_eq!(v[3].count, 3);
        assert_eq!(v[3].sessions, vec![1, 2]);
    }
}
