//! The readable transcript: one line per handshake, message, gap, anomaly
//! and session end. Colour only when asked (the CLI asks when stdout is a
//! terminal).

use super::{MessageView, SessionView, Sink};
use crate::session::{opcode_name, AnomalyRecord, GapRecord, SessionEndRecord, StatsRecord};
use crate::types::Dir;
use std::fmt::Write as _;
use std::io::{self, Write};

/// How the transcript looks.
#[derive(Clone, Debug)]
pub struct TranscriptOptions {
    /// Color the output with ANSI escapes.
    pub color: bool,
    /// Characters of payload preview per message (0: none).
    pub preview: usize,
    /// Print the final statistics line.
    pub summary: bool,
    /// Flush after every record (live capture, where output must appear as it happens).
    pub line_buffered: bool,
}

impl Default for TranscriptOptions {
    fn default() -> Self {
        TranscriptOptions {
            color: false,
            preview: 100,
            summary: true,
            line_buffered: false,
        }
    }
}

/// Writes the human-readable transcript of `wssniff read`.
pub struct TranscriptSink<W: Write> {
    out: W,
    opts: TranscriptOptions,
    line: String,
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const BLUE: &str = "\x1b[34m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";

impl<W: Write> TranscriptSink<W> {
    /// A transcript writer over `out`.
    pub fn new(out: W, opts: TranscriptOptions) -> Self {
        TranscriptSink {
            out,
            opts,
            line: String::with_capacity(256),
        }
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn paint(&mut self, color: &str, text: &str) {
        if self.opts.color {
            self.line.push_str(color);
            self.line.push_str(text);
            self.line.push_str(RESET);
        } else {
            self.line.push_str(text);
        }
    }

    fn session_tag(&mut self, id: Option<u64>) {
        let tag = match id {
            Some(id) => format!("#{id}"),
            None => "-".to_owned(),
        };
        let padded = format!("{tag:<5}");
        self.paint(CYAN, &padded);
    }

    /// A record's time as `HH:MM:SS.micro`, or as many blanks.
    fn clock_or_blank(&mut self, ts: Option<crate::types::Timestamp>) {
        match ts {
            Some(t) => self.line.push_str(&t.clock()),
            None => self.line.push_str("               "),
        }
    }

    fn dir_tag(&mut self, dir: Dir) {
        let (c, s) = match dir {
            Dir::C2s => (GREEN, "->"),
            Dir::S2c => (BLUE, "<-"),
        };
        self.paint(c, s);
    }

    fn end_line(&mut self) -> io::Result<()> {
        self.line.push('\n');
        self.out.write_all(self.line.as_bytes())?;
        self.line.clear();
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }
}

/// Match lines printed per message; the JSON has every span.
const MATCH_LINES: usize = 10;
/// Payload bytes of context shown each side of a match.
const MATCH_CONTEXT: usize = 24;
/// Longest part of a match shown.
const MATCH_SHOWN: usize = 80;

/// Pushes `ch` escaped for a one-line quoted preview: quotes, backslashes and
/// control characters backslashed.
fn push_escaped_char(s: &mut String, ch: char) {
    match ch {
        '\n' => s.push_str("\\n"),
        '\r' => s.push_str("\\r"),
        '\t' => s.push_str("\\t"),
        '"' => s.push_str("\\\""),
        '\\' => s.push_str("\\\\"),
        c if c.is_control() => {
            let _ = write!(s, "\\u{{{:x}}}", c as u32);
        }
        c => s.push(c),
    }
}

/// A match with a little payload either side, escaped for one line:
/// `"…before` , `match`, `after…"`. Lossy UTF-8, so binary shows as `\u{fffd}`
/// replacement characters; the offsets are what identify the bytes.
pub fn match_context(payload: &[u8], start: usize, end: usize) -> (String, String, String) {
    let len = payload.len();
    let (start, end) = (start.min(len), end.min(len).max(start.min(len)));
    let from = start.saturating_sub(MATCH_CONTEXT);
    let to = end.saturating_add(MATCH_CONTEXT).min(len);
    let shown_end = end.min(start.saturating_add(MATCH_SHOWN));
    let esc = |b: &[u8]| {
        let mut s = String::new();
        for ch in String::from_utf8_lossy(b).chars() {
            push_escaped_char(&mut s, ch);
        }
        s
    };
    let mut before = String::from(if from > 0 { "\"…" } else { "\"" });
    before.push_str(&esc(payload.get(from..start).unwrap_or(&[])));
    let mut hit = esc(payload.get(start..shown_end).unwrap_or(&[]));
    if shown_end < end {
        hit.push('…');
    }
    let mut after = esc(payload.get(end..to).unwrap_or(&[]));
    after.push_str(if to < len { "…\"" } else { "\"" });
    (before, hit, after)
}

/// `[pkt 4]`, `[pkts 4-9]` or `[pkts 4,6,9]`.
pub fn packet_list(packets: &[u64]) -> String {
    match packets {
        [] => String::new(),
        [one] => format!("[pkt {one}]"),
        [first, .., last] if (last - first) as usize + 1 == packets.len() => {
            format!("[pkts {first}-{last}]")
        }
        many if many.len() <= 6 => {
            let list: Vec<String> = many.iter().map(u64::to_string).collect();
            format!("[pkts {}]", list.join(","))
        }
        [first, .., last] => format!("[pkts {first}..{last}, {} packets]", packets.len()),
    }
}

/// A printable, single-line preview of a payload.
pub fn preview(payload: &[u8], is_text: bool, max: usize) -> String {
    let mut s = String::new();
    if max == 0 {
        return s;
    }
    if is_text {
        // The whole payload decides text or hex, so it is all validated:
        // with SIMD, since std's scalar check cost more than the rest of
        // the transcript on large messages.
        if let Ok(text) = simdutf8::basic::from_utf8(payload) {
            s.push('"');
            for (n, ch) in text.chars().enumerate() {
                if n >= max {
                    s.push('…');
                    break;
                }
                push_escaped_char(&mut s, ch);
            }
            s.push('"');
            return s;
        }
    }
    let shown = payload.len().min(max / 3 + 1);
    s.push('[');
    for (i, b) in payload[..shown].iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    if shown < payload.len() {
        s.push_str(" …");
    }
    s.push(']');
    s
}

impl<W: Write> Sink for TranscriptSink<W> {
    fn session(&mut self, sv: &SessionView<'_>) -> io::Result<()> {
        let s = sv.record;
        self.line.push_str(&s.ts.clock());
        self.line.push(' ');
        self.session_tag(Some(s.id));
        let _ = write!(self.line, " {} -> {} ", s.client, s.server);
        self.paint(BOLD, "HANDSHAKE");
        let _ = write!(self.line, " {} {}", s.request.method, s.uri);
        if let Some(h) = &s.host {
            let _ = write!(self.line, " host={h}");
        }
        if let Some(o) = &s.origin {
            let _ = write!(self.line, " origin={o}");
        }
        if let Some(p) = &s.subprotocol {
            let _ = write!(self.line, " protocol={p}");
        }
        if !s.extensions.is_empty() {
            let _ = write!(self.line, " extensions={}", s.extensions.join(", "));
        }
        let mut pk = s.request.packets.clone();
        pk.extend_from_slice(&s.response.packets);
        pk.sort_unstable();
        pk.dedup();
        let _ = write!(self.line, " {}", packet_list(&pk));
        self.end_line()
    }

    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        self.line.push_str(&m.ts.clock());
        self.line.push(' ');
        self.session_tag(Some(m.session));
        self.line.push(' ');
        self.dir_tag(m.dir);
        let _ = write!(self.line, " {:<6} {:>7}", opcode_name(m.opcode), m.len);
        if m.compressed {
            let _ = write!(self.line, " (deflate {})", m.wire_len);
        }
        if let Some((code, reason)) = m.close {
            match code {
                Some(c) => {
                    let _ = write!(self.line, " code={c}");
                }
                None => self.line.push_str(" code=none"),
            }
            if !reason.is_empty() {
                let _ = write!(
                    self.line,
                    " reason={}",
                    preview(reason.as_bytes(), true, 60)
                );
            }
        } else {
            let p = preview(m.payload, m.is_text, self.opts.preview);
            if !p.is_empty() {
                self.line.push(' ');
                self.line.push_str(&p);
            }
        }
        let mut flags = Vec::new();
        if m.truncated {
            flags.push("truncated");
        }
        if m.incomplete {
            flags.push("incomplete");
        }
        if m.inflate_failed {
            flags.push("inflate-failed");
        }
        if !flags.is_empty() {
            let f = format!(" <{}>", flags.join(","));
            self.paint(YELLOW, &f);
        }
        let pl = format!(" {}", packet_list(m.packets));
        self.paint(DIM, &pl);
        self.end_line()
    }

    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        self.message(m)?;
        for &(start, end) in spans.iter().take(MATCH_LINES) {
            self.line.push_str("                      match at ");
            let _ = write!(self.line, "{start}..{end}: ");
            let (before, hit, after) = match_context(m.payload, start, end);
            self.line.push_str(&before);
            self.paint(RED, &hit);
            self.line.push_str(&after);
            self.end_line()?;
        }
        if spans.len() > MATCH_LINES {
            let _ = write!(
                self.line,
                "                      … {} more matches",
                spans.len() - MATCH_LINES
            );
            self.end_line()?;
        }
        Ok(())
    }

    fn context_break(&mut self) -> io::Result<()> {
        self.line.push_str("--");
        self.end_line()
    }

    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        self.clock_or_blank(a.ts);
        self.line.push(' ');
        self.session_tag(a.session);
        self.line.push(' ');
        match a.dir {
            Some(d) => self.dir_tag(d),
            None => self.line.push_str("  "),
        }
        self.line.push(' ');
        let name = format!("!! {}", a.name);
        self.paint(RED, &name);
        let _ = write!(self.line, ": {}", a.detail);
        if let Some(p) = a.packet {
            let pl = format!(" [pkt {p}]");
            self.paint(DIM, &pl);
        }
        self.end_line()
    }

    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        self.clock_or_blank(g.ts);
        self.line.push(' ');
        self.session_tag(g.session);
        self.line.push(' ');
        match g.dir {
            Some(d) => self.dir_tag(d),
            None => self.line.push_str("  "),
        }
        let text = format!(
            " GAP {} bytes lost at seq {} (stream offset {}, {})",
            g.len, g.seq, g.offset, g.reason
        );
        self.paint(RED, &text);
        self.end_line()
    }

    fn session_end(&mut self, e: &SessionEndRecord) -> io::Result<()> {
        self.line.push_str(&e.ts.clock());
        self.line.push(' ');
        self.session_tag(Some(e.session));
        let _ = write!(
            self.line,
            " END {}: {} messages c2s, {} s2c",
            e.reason, e.messages.c2s, e.messages.s2c
        );
        let fmt_close = |c: &Option<crate::session::CloseRecord>| match c {
            Some(c) => c.code.map_or("none".to_owned(), |v| v.to_string()),
            None => "-".to_owned(),
        };
        let _ = write!(
            self.line,
            "; close c2s={} s2c={}",
            fmt_close(&e.close_c2s),
            fmt_close(&e.close_s2c)
        );
        if e.gaps > 0 {
            let _ = write!(self.line, "; {} gaps ({} bytes)", e.gaps, e.gap_bytes);
        }
        if e.anomalies > 0 {
            let _ = write!(self.line, "; {} anomalies", e.anomalies);
        }
        if e.incomplete {
            self.line.push_str("; incomplete");
        }
        self.end_line()
    }

    fn stats(&mut self, s: &StatsRecord) -> io::Result<()> {
        if !self.opts.summary {
            return Ok(());
        }
        let messages: u64 = s.messages.values().sum();
        let anomalies: u64 = s.anomalies.values().sum();
        let _ = write!(
            self.line,
            "-- {} packets, {} bytes, {} flows, {} sessions, {} messages, {} gaps, {} anomalies",
            s.packets, s.bytes, s.flows, s.sessions, messages, s.gaps, anomalies
        );
        // Packets that carried no TCP segment are named, never silently dropped.
        let skipped: u64 = s.skipped.values().sum();
        if skipped > 0 {
            let why: Vec<String> = s.skipped.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = write!(
                self.line,
                ", {skipped} packets skipped ({})",
                why.join(", ")
            );
        }
        self.end_line()
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_line_names_skipped_packets() {
        let mut out = Vec::new();
        let mut t = TranscriptSink::new(&mut out, TranscriptOptions::default());
        let mut s = StatsRecord {
            packets: 120,
            ..Default::default()
        };
        t.stats(&s).unwrap();
        s.skipped.insert("not_tcp".into(), 116);
        s.skipped.insert("truncated_tunnel".into(), 1);
        t.stats(&s).unwrap();
        drop(t);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines[0].contains("skipped"), "{text}");
        assert!(
            lines[1].ends_with(", 117 packets skipped (not_tcp 116, truncated_tunnel 1)"),
            "{text}"
        );
    }

    #[test]
    fn packet_lists() {
        assert_eq!(packet_list(&[]), "");
        assert_eq!(packet_list(&[4]), "[pkt 4]");
        assert_eq!(packet_list(&[4, 5, 6]), "[pkts 4-6]");
        assert_eq!(packet_list(&[4, 6, 9]), "[pkts 4,6,9]");
        assert_eq!(
            packet_list(&[1, 3, 5, 7, 9, 11, 13]),
            "[pkts 1..13, 7 packets]"
        );
    }

    #[test]
    fn previews_escape_and_cut() {
        assert_eq!(preview(b"a\nb\"", true, 10), "\"a\\nb\\\"\"");
        assert_eq!(preview(b"abcdef", true, 3), "\"abc…\"");
        assert_eq!(preview(&[0, 1, 255], false, 100), "[00 01 ff]");
        assert_eq!(preview(&[0xff, 0xfe], true, 100), "[ff fe]");
        assert_eq!(preview(b"x", true, 0), "");
    }
}
