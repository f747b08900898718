//! Record filters (`read --session/--host/--port/--uri/--since/--until/
//! --opcode/--dir/--min-len/--max-len/--anomalous`), as a [`Sink`] wrapper so
//! every front end (files, live capture) and every writer behind it
//! (transcript, JSON, export) sees the same selection.
//!
//! Two kinds of criteria:
//!
//! - **Session-level** (`sessions`, `hosts`, `ports`, `uri`, `only_sessions`):
//!   decided once, on the session's handshake record, and applied to every
//!   record of that session alike: `session`, `message`, `anomaly`, `gap`,
//!   stream bytes and `session_end`. A dropped session disappears whole.
//!   Records that belong to no session (anomalies and gaps before a
//!   handshake, capture-file notices) are kept only when no session-level
//!   criterion is set, since they cannot match one.
//! - **Message-level** (`opcodes`, `dir`, `min_len`, `max_len`, `since`,
//!   `until`): select `message` records of kept sessions. The time window
//!   also selects `anomaly` and `gap` records by their timestamp. The
//!   session's `session`/`session_end` records and its raw stream bytes (for
//!   the export) stay, so an exported session remains replayable.
//!
//! `--anomalous` needs to know a session's anomalies before its first
//! message, but they can come later. Over files the CLI does two passes
//! (exact): the first collects the ids of sessions with anomalies
//! ([`AnomalousSessions`]), the second filters with
//! `only_sessions = Some(ids)`. Memory: one id per kept session.

use super::{MessageView, SessionView, Sink};
use crate::session::{AnomalyRecord, CaptureRecord, GapRecord, SessionEndRecord, StatsRecord};
use crate::types::{Dir, Timestamp};
use regex::Regex;
use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, SocketAddr};

/// What to keep. The default keeps everything.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Keep only these session ids (empty: any).
    pub sessions: Vec<u64>,
    /// Keep sessions whose client or server IP, or Host header (without
    /// port, case-insensitive), equals one of these (empty: any).
    pub hosts: Vec<String>,
    /// Keep sessions whose client or server port is one of these (empty: any).
    pub ports: Vec<u16>,
    /// Keep sessions whose request URI matches.
    pub uri: Option<Regex>,
    /// Keep only these sessions (`--anomalous`, from a first pass).
    pub only_sessions: Option<BTreeSet<u64>>,
    /// Keep messages with one of these opcodes (empty: any).
    pub opcodes: Vec<u8>,
    /// `--dir`: keep messages of this direction only; None keeps both.
    pub dir: Option<Dir>,
    /// Decoded length bounds, inclusive.
    pub min_len: Option<u64>,
    /// `--max-len`: largest decoded length kept, in bytes; None for no bound.
    pub max_len: Option<u64>,
    /// Time window for messages (first frame), anomalies and gaps; inclusive.
    pub since: Option<Timestamp>,
    /// `--until`: end of the time window; None for no bound.
    pub until: Option<Timestamp>,
}

impl Filter {
    /// Whether any session-level criterion is set.
    pub fn selects_sessions(&self) -> bool {
        !self.sessions.is_empty()
            || !self.hosts.is_empty()
            || !self.ports.is_empty()
            || self.uri.is_some()
            || self.only_sessions.is_some()
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        !self.selects_sessions()
            && self.opcodes.is_empty()
            && self.dir.is_none()
            && self.min_len.is_none()
            && self.max_len.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The session-level decision, on the handshake record.
    pub fn keeps_session(&self, s: &crate::session::SessionRecord) -> bool {
        if !self.sessions.is_empty() && !self.sessions.contains(&s.id) {
            return false;
        }
        if let Some(only) = &self.only_sessions {
            if !only.contains(&s.id) {
                return false;
            }
        }
        let client: Option<SocketAddr> = s.client.parse().ok();
        let server: Option<SocketAddr> = s.server.parse().ok();
        if !self.ports.is_empty() {
            let hit = [client, server]
                .iter()
                .flatten()
                .any(|a| self.ports.contains(&a.port()));
            if !hit {
                return false;
            }
        }
        if !self.hosts.is_empty() {
            let host_header = s.host.as_deref().map(host_without_port);
            let hit = self.hosts.iter().any(|want| {
                let want_ip: Option<IpAddr> = want.trim_matches(['[', ']']).parse().ok();
                let ip_hit = want_ip
                    .is_some_and(|ip| [client, server].iter().flatten().any(|a| a.ip() == ip));
                let header_hit = host_header
                    .is_some_and(|h| h.eq_ignore_ascii_case(want.trim_matches(['[', ']'])));
                ip_hit || header_hit
            });
            if !hit {
                return false;
            }
        }
        if let Some(re) = &self.uri {
            if !re.is_match(&s.uri) {
                return false;
            }
        }
        true
    }

    fn in_window(&self, ts: Timestamp) -> bool {
        self.since.map_or(true, |t| ts >= t) && self.until.map_or(true, |t| ts <= t)
    }

    /// The message-level decision (the session already kept).
    pub fn keeps_message(&self, m: &MessageView<'_>) -> bool {
        (self.opcodes.is_empty() || self.opcodes.contains(&m.opcode))
            && self.dir.map_or(true, |d| d == m.dir)
            && self.min_len.map_or(true, |n| m.len >= n)
            && self.max_len.map_or(true, |n| m.len <= n)
            && self.in_window(m.ts)
    }

    /// The time window on a record's optional RFC 3339 timestamp; records
    /// without one are kept.
    fn keeps_ts(&self, ts: Option<Timestamp>) -> bool {
        match ts {
            Some(t) => self.in_window(t),
            None => true,
        }
    }
}

/// `example.com:8080` → `example.com`; `[::1]:80` → `::1`.
fn host_without_port(h: &str) -> &str {
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

/// Parses `--since`/`--until`: RFC 3339 (`2024-05-01T12:00:00.5Z`,
/// `…+02:00`), `YYYY-MM-DD HH:MM:SS[.frac]` (UTC), or, with the capture's
/// start time, `+30s`, `+5m`, `+1h`, `+1.5s`, `+250ms`.
pub fn parse_time(s: &str, capture_start: Option<Timestamp>) -> Result<Timestamp, String> {
    let s = s.trim();
    if let Some(rel) = s.strip_prefix('+') {
        let start = capture_start.ok_or_else(|| {
            format!("relative time {s:?} needs the capture's start time (no packets read?)")
        })?;
        let (num, unit_nanos) = if let Some(n) = rel.strip_suffix("ms") {
            (n, 1_000_000f64)
        } else if let Some(n) = rel.strip_suffix('s') {
            (n, 1e9)
        } else if let Some(n) = rel.strip_suffix('m') {
            (n, 60e9)
        } else if let Some(n) = rel.strip_suffix('h') {
            (n, 3600e9)
        } else {
            (rel, 1e9)
        };
        let v: f64 = num
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("bad relative time {s:?}: use e.g. +30s, +5m, +1h, +250ms"))?;
        return Ok(Timestamp::from_nanos(
            start.as_nanos() + (v * unit_nanos).round() as i128,
        ));
    }
    parse_absolute(s).ok_or_else(|| {
        format!(
            "bad time {s:?}: use RFC 3339 (2024-05-01T12:00:00Z), \"YYYY-MM-DD HH:MM:SS\" (UTC) or +30s after the capture start"
        )
    })
}

fn parse_absolute(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 19 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let digits = b.get(start..i)?;
        if digits.is_empty() {
            return None;
        }
        for k in 0..9 {
            nanos = nanos * 10 + digits.get(k).map_or(0, |c| (c - b'0') as i64);
        }
    }
    let offset_secs: i64 = match b.get(i..)? {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest.get(2) == Some(&b':') => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    let local = Timestamp::from_civil(y, mo, d, h, mi, sec, nanos as u32)?;
    Some(Timestamp::new(local.secs - offset_secs, local.nanos))
}

/// Applies a [`Filter`] to every record before passing it on.
pub struct FilterSink<S: Sink> {
    inner: S,
    filter: Filter,
    /// Ids of open sessions that passed the session-level criteria; removed
    /// at `session_end`, so memory is one id per open session.
    kept: BTreeSet<u64>,
    /// The filter keeps everything: pass records straight on.
    all: bool,
    /// Messages kept / dropped, for tests and reports.
    pub messages_kept: u64,
    /// Messages dropped by the message-level criteria.
    pub messages_dropped: u64,
}

impl<S: Sink> FilterSink<S> {
    /// Filters the records given to `inner` through `filter`.
    pub fn new(inner: S, filter: Filter) -> Self {
        FilterSink {
            inner,
            all: filter.is_empty(),
            filter,
            kept: BTreeSet::new(),
            messages_kept: 0,
            messages_dropped: 0,
        }
    }

    /// Ends the filter and returns the wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The wrapped sink.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Whether records of this session (or of none) pass the session-level
    /// criteria. Without such criteria every session passes, even a record
    /// that arrives after its `session_end`.
    fn session_kept(&self, id: Option<u64>) -> bool {
        if !self.filter.selects_sessions() {
            return true;
        }
        id.is_some_and(|id| self.kept.contains(&id))
    }
}

impl<S: Sink> Sink for FilterSink<S> {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        self.inner.capture(rec)
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        if !self.filter.keeps_session(s.record) {
            return Ok(());
        }
        if self.filter.selects_sessions() {
            self.kept.insert(s.record.id);
        }
        self.inner.session(s)
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        if self.all {
            return self.inner.message(m);
        }
        if self.session_kept(Some(m.session)) && self.filter.keeps_message(m) {
            self.messages_kept += 1;
            self.inner.message(m)
        } else {
            self.messages_dropped += 1;
            Ok(())
        }
    }
    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        if self.session_kept(Some(m.session)) && self.filter.keeps_message(m) {
            self.messages_kept += 1;
            self.inner.message_match(m, spans)
        } else {
            self.messages_dropped += 1;
            Ok(())
        }
    }
    fn context_break(&mut self) -> io::Result<()> {
        self.inner.context_break()
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        if self.session_kept(a.session) && self.filter.keeps_ts(a.ts) {
            self.inner.anomaly(a)
        } else {
            Ok(())
        }
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        if self.session_kept(g.session) && self.filter.keeps_ts(g.ts) {
            self.inner.gap(g)
        } else {
            Ok(())
        }
    }
    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        if self.session_kept(Some(session)) {
            self.inner.stream(session, dir, data)
        } else {
            Ok(())
        }
    }
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        if self.session_kept(Some(session)) {
            self.inner.stream_gap(session, dir, offset, len)
        } else {
            Ok(())
        }
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        let kept = self.kept.remove(&rec.session);
        if kept || !self.filter.selects_sessions() {
            self.inner.session_end(rec)
        } else {
            Ok(())
        }
    }
    fn stats(&mut self, rec: &StatsRecord) -> io::Result<()> {
        self.inner.stats(rec)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.inner.finish()
    }
    fn wants_streams(&self) -> bool {
        self.inner.wants_streams()
    }
    fn wants_frames(&self) -> bool {
        self.inner.wants_frames()
    }
    fn wants_payloads(&self) -> bool {
        self.inner.wants_payloads()
    }
}

/// First pass of `--anomalous`: the ids of sessions with at least one anomaly.
#[derive(Default, Debug)]
pub struct AnomalousSessions {
    /// Ids of the sessions with at least one anomaly.
    pub ids: BTreeSet<u64>,
}

impl Sink for AnomalousSessions {
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        if let Some(id) = a.session {
            self.ids.insert(id);
        }
        Ok(())
    }
    fn wants_payloads(&self) -> bool {
        false
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        // Counted anomalies that produced no record still make it anomalous.
        if rec.anomalies > 0 {
            self.ids.insert(rec.session);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_times() {
        let t = parse_time("2024-05-01T12:00:00Z", None).unwrap();
        assert_eq!(t.rfc3339(), "2024-05-01T12:00:00.000000000Z");
        let t = parse_time("2024-05-01 12:00:00.25", None).unwrap();
        assert_eq!(t.rfc3339(), "2024-05-01T12:00:00.250000000Z");
        let t = parse_time("2024-05-01T14:00:00+02:00", None).unwrap();
        assert_eq!(t.rfc3339(), "2024-05-01T12:00:00.000000000Z");
        let t = parse_time("2024-02-29T23:59:59.123456789-00:30", None).unwrap();
        assert_eq!(t.rfc3339(), "2024-03-01T00:29:59.123456789Z");
        for bad in [
            "2024-13-01T00:00:00Z",
            "yesterday",
            "2024-05-01",
            "+",
            "+5x",
            "+-1s",
        ] {
            assert!(
                parse_time(bad, Some(Timestamp::new(0, 0))).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn parses_relative_times() {
        let start = Timestamp::new(1000, 500);
        assert_eq!(
            parse_time("+30s", Some(start)).unwrap(),
            Timestamp::new(1030, 500)
        );
        assert_eq!(
            parse_time("+5m", Some(start)).unwrap(),
            Timestamp::new(1300, 500)
        );
        assert_eq!(
            parse_time("+1h", Some(start)).unwrap(),
            Timestamp::new(4600, 500)
        );
        assert_eq!(
            parse_time("+250ms", Some(start)).unwrap(),
            Timestamp::new(1000, 250_000_500)
        );
        assert!(parse_time("+30s", None).is_err());
    }

    #[test]
    fn strips_ports_from_host_headers() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "::1");
        assert_eq!(host_without_port("::1"), "::1");
    }
}
