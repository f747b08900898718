//! Full-content search (`read --grep/--grep-bytes/-i/-C`), as a [`Sink`]
//! wrapper: only matching messages (and their context) reach the writer
//! behind it, with the matched byte ranges of the payload.
//!
//! What is searched: the whole decoded payload the pipeline holds (unmasked,
//! reassembled from all fragments, inflated), not a preview. A message
//! longer than the in-memory limit (`--max-message`, `--max-inflate`) is
//! searched in its first bytes only; raise the limit to search further.
//!
//! - `--grep RE`: text messages (valid UTF-8) are matched as text with a
//!   Unicode regex; every other payload with the same regex over bytes
//!   (`regex::bytes`, so UTF-8 sequences in binary data match too).
//! - `--grep-bytes HEX|RE`: every payload's bytes; hex (`de ad be ef`,
//!   `deadbeef`) is a literal byte string, anything else a bytes regex
//!   (write `(?-u)\xff` for raw bytes).
//! - Both given: a message matches if either does; spans are merged.
//!
//! Offsets are byte offsets into the decoded payload, `[start, end)`. At
//! most [`MAX_SPANS`] spans are reported per message.
//!
//! Context (`-C N`): the N messages before a match in the same session (a
//! ring per session) and the N after it, like grep; non-adjacent groups are
//! separated by [`Sink::context_break`]. Held context is bounded: at most
//! `max_context_bytes` of payload in all rings together; a message that
//! would exceed it is not held and counted in `context_dropped`.
//!
//! With an empty [`Matcher`] the sink passes everything through unchanged.
//!
//! Other records: a session's handshake record is shown just before its
//! first output (sessions without a match do not appear); its anomalies and
//! gaps are shown once the session has appeared, and its `session_end` if
//! it did. Records of no session, `capture` and `stats` pass through.

use super::{FrameView, MessageView, SessionView, Sink};
use crate::session::{
    AnomalyRecord, CaptureRecord, GapRecord, SessionEndRecord, SessionRecord, StatsRecord,
};
use crate::types::{Dir, Timestamp};
use std::collections::{BTreeMap, VecDeque};
use std::io;

/// Spans reported per message at most.
pub const MAX_SPANS: usize = 1024;
/// Default bound on payload bytes held for `-C` context, all sessions together.
pub const DEFAULT_MAX_CONTEXT_BYTES: usize = 64 << 20;

/// The compiled search.
#[derive(Clone, Debug, Default)]
pub struct Matcher {
    text: Option<regex::Regex>,
    text_as_bytes: Option<regex::bytes::Regex>,
    bytes: Option<regex::bytes::Regex>,
}

impl Matcher {
    /// `grep`: `--grep`; `grep_bytes`: `--grep-bytes` (hex or bytes regex);
    /// `ignore_case`: `-i`. `Err` names the bad pattern.
    pub fn new(
        grep: Option<&str>,
        grep_bytes: Option<&str>,
        ignore_case: bool,
    ) -> Result<Self, String> {
        let mut m = Matcher::default();
        if let Some(p) = grep {
            m.text = Some(
                regex::RegexBuilder::new(p)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("bad --grep pattern: {e}"))?,
            );
            m.text_as_bytes = Some(
                regex::bytes::RegexBuilder::new(p)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("bad --grep pattern: {e}"))?,
            );
        }
        if let Some(p) = grep_bytes {
            let pattern = match parse_hex(p) {
                Some(bytes) => {
                    let mut s = String::from("(?-u)");
                    for b in bytes {
                        s.push_str(&format!("\\x{b:02x}"));
                    }
                    s
                }
                None => p.to_owned(),
            };
            m.bytes = Some(
                regex::bytes::RegexBuilder::new(&pattern)
                    .case_insensitive(ignore_case)
                    .build()
                    .map_err(|e| format!("bad --grep-bytes pattern: {e}"))?,
            );
        }
        Ok(m)
    }

    /// Whether neither a text nor a bytes pattern is set (nothing would match).
    pub fn is_empty(&self) -> bool {
        self.text.is_none() && self.bytes.is_none()
    }

    /// The matched byte ranges of a payload, sorted, at most [`MAX_SPANS`].
    pub fn spans(&self, payload: &[u8], is_text: bool) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let text = if is_text {
            std::str::from_utf8(payload).ok()
        } else {
            None
        };
        match (text, &self.text, &self.text_as_bytes) {
            (Some(t), Some(re), _) => out.extend(
                re.find_iter(t)
                    .take(MAX_SPANS)
                    .map(|m| (m.start(), m.end())),
            ),
            (None, _, Some(re)) => out.extend(
                re.find_iter(payload)
                    .take(MAX_SPANS)
                    .map(|m| (m.start(), m.end())),
            ),
            _ => {}
        }
        if let Some(re) = &self.bytes {
            out.extend(
                re.find_iter(payload)
                    .take(MAX_SPANS)
                    .map(|m| (m.start(), m.end())),
            );
        }
        out.sort_unstable();
        out.dedup();
        out.truncate(MAX_SPANS);
        out
    }
}

/// `de ad be ef`, `deadbeef`, `de:ad:be:ef` → bytes; `None` if not hex.
pub fn parse_hex(s: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = s
        .bytes()
        .filter(|b| !matches!(b, b' ' | b':' | b'\t'))
        .collect();
    if digits.is_empty() || digits.len() % 2 != 0 {
        return None;
    }
    let val = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    digits
        .chunks(2)
        .map(|p| match p {
            [a, b] => Some(val(*a)? << 4 | val(*b)?),
            _ => None,
        })
        .collect()
}

/// A message copied out of the pipeline, for the context ring.
struct OwnedMessage {
    session: u64,
    dir: Dir,
    index: u64,
    opcode: u8,
    payload: Vec<u8>,
    len: u64,
    is_text: bool,
    ts: Timestamp,
    ts_last: Timestamp,
    packets: Vec<u64>,
    file: Option<usize>,
    seq: [u32; 2],
    stream: [u64; 2],
    frames: u64,
    compressed: bool,
    wire_len: u64,
    truncated: bool,
    incomplete: bool,
    inflate_failed: bool,
    close: Option<(Option<u16>, String)>,
    frame_detail: Vec<FrameView>,
    /// Position among the session's messages seen here.
    nth: u64,
}

impl OwnedMessage {
    fn copy(m: &MessageView<'_>, nth: u64) -> Self {
        OwnedMessage {
            session: m.session,
            dir: m.dir,
            index: m.index,
            opcode: m.opcode,
            payload: m.payload.to_vec(),
            len: m.len,
            is_text: m.is_text,
            ts: m.ts,
            ts_last: m.ts_last,
            packets: m.packets.to_vec(),
            file: m.file,
            seq: m.seq,
            stream: m.stream,
            frames: m.frames,
            compressed: m.compressed,
            wire_len: m.wire_len,
            truncated: m.truncated,
            incomplete: m.incomplete,
            inflate_failed: m.inflate_failed,
            close: m.close.map(|(c, r)| (c, r.to_owned())),
            frame_detail: m.frame_detail.to_vec(),
            nth,
        }
    }

    fn view(&self) -> MessageView<'_> {
        MessageView {
            session: self.session,
            dir: self.dir,
            index: self.index,
            opcode: self.opcode,
            payload: &self.payload,
            len: self.len,
            is_text: self.is_text,
            ts: self.ts,
            ts_last: self.ts_last,
            packets: &self.packets,
            file: self.file,
            seq: self.seq,
            stream: self.stream,
            frames: self.frames,
            compressed: self.compressed,
            wire_len: self.wire_len,
            truncated: self.truncated,
            incomplete: self.incomplete,
            inflate_failed: self.inflate_failed,
            close: self.close.as_ref().map(|(c, r)| (*c, r.as_str())),
            frame_detail: &self.frame_detail,
        }
    }
}

/// Per-session search state.
struct SessionState {
    /// Handshake, held until the session's first output.
    pending: Option<(SessionRecord, Vec<u8>, Vec<u8>)>,
    shown: bool,
    ring: VecDeque<OwnedMessage>,
    /// Messages of this session seen so far.
    seen: u64,
    /// Messages still to show after the last match.
    after: usize,
}

/// Passes on only the messages that match, with context.
pub struct GrepSink<S: Sink> {
    inner: S,
    matcher: Matcher,
    context: usize,
    max_context_bytes: usize,
    held_bytes: usize,
    sessions: BTreeMap<u64, SessionState>,
    /// (session, nth) of the last message passed on.
    last: Option<(u64, u64)>,
    /// Messages that matched.
    pub matches: u64,
    /// Context messages not held because of `max_context_bytes`.
    pub context_dropped: u64,
}

impl<S: Sink> GrepSink<S> {
    /// Passes on matching messages, with `context` messages before and after (`-C`), to `inner`.
    pub fn new(inner: S, matcher: Matcher, context: usize) -> Self {
        GrepSink {
            inner,
            matcher,
            context,
            max_context_bytes: DEFAULT_MAX_CONTEXT_BYTES,
            held_bytes: 0,
            sessions: BTreeMap::new(),
            last: None,
            matches: 0,
            context_dropped: 0,
        }
    }

    /// Bounds the payload bytes held for context, all sessions together (default [`DEFAULT_MAX_CONTEXT_BYTES`]).
    pub fn with_max_context_bytes(mut self, n: usize) -> Self {
        self.max_context_bytes = n;
        self
    }

    /// Returns the wrapped sink.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Shows the session's handshake if not yet shown.
    fn show_session(&mut self, id: u64) -> io::Result<()> {
        if let Some(st) = self.sessions.get_mut(&id) {
            st.shown = true;
            if let Some((rec, req, resp)) = st.pending.take() {
                return self.inner.session(&SessionView {
                    record: &rec,
                    raw_request: &req,
                    raw_response: &resp,
                });
            }
        }
        Ok(())
    }

    /// A `--` when the next message does not follow the last one shown.
    fn separate(&mut self, session: u64, nth: u64) -> io::Result<()> {
        let adjacent = self.last == Some((session, nth.wrapping_sub(1)));
        if self.context > 0 && self.last.is_some() && !adjacent {
            self.inner.context_break()?;
        }
        self.last = Some((session, nth));
        Ok(())
    }
}

impl<S: Sink> Sink for GrepSink<S> {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        self.inner.capture(rec)
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.session(s);
        }
        self.sessions.insert(
            s.record.id,
            SessionState {
                pending: Some((
                    s.record.clone(),
                    s.raw_request.to_vec(),
                    s.raw_response.to_vec(),
                )),
                shown: false,
                ring: VecDeque::new(),
                seen: 0,
                after: 0,
            },
        );
        Ok(())
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.message(m);
        }
        self.message_match(m, &[])
    }
    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.message_match(m, spans);
        }
        let spans = self.matcher.spans(m.payload, m.is_text);
        let Some(st) = self.sessions.get_mut(&m.session) else {
            // A message of a session whose handshake was filtered out.
            return Ok(());
        };
        let nth = st.seen;
        st.seen += 1;
        if spans.is_empty() {
            if st.after > 0 {
                st.after -= 1;
                self.show_session(m.session)?;
                self.separate(m.session, nth)?;
                return self.inner.message(m);
            }
            if self.context > 0 {
                let size = m.payload.len();
                if st.ring.len() == self.context {
                    if let Some(old) = st.ring.pop_front() {
                        self.held_bytes -= old.payload.len();
                    }
                }
                if self.held_bytes + size <= self.max_context_bytes {
                    self.held_bytes += size;
                    st.ring.push_back(OwnedMessage::copy(m, nth));
                } else {
                    // Keep the ring in order: what came before is no longer adjacent.
                    for old in st.ring.drain(..) {
                        self.held_bytes -= old.payload.len();
                    }
                    self.context_dropped += 1;
                }
            }
            return Ok(());
        }
        self.matches += 1;
        st.after = self.context;
        let ring: Vec<OwnedMessage> = st.ring.drain(..).collect();
        self.show_session(m.session)?;
        for old in &ring {
            self.held_bytes -= old.payload.len();
            self.separate(old.session, old.nth)?;
            self.inner.message(&old.view())?;
        }
        self.separate(m.session, nth)?;
        self.inner.message_match(m, &spans)
    }
    fn context_break(&mut self) -> io::Result<()> {
        self.inner.context_break()
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.anomaly(a);
        }
        match a.session {
            Some(id) if !self.sessions.get(&id).is_some_and(|s| s.shown) => Ok(()),
            _ => self.inner.anomaly(a),
        }
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.gap(g);
        }
        match g.session {
            Some(id) if !self.sessions.get(&id).is_some_and(|s| s.shown) => Ok(()),
            _ => self.inner.gap(g),
        }
    }
    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.stream(session, dir, data);
        }
        Ok(())
    }
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.stream_gap(session, dir, offset, len);
        }
        Ok(())
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        if self.matcher.is_empty() {
            return self.inner.session_end(rec);
        }
        let Some(st) = self.sessions.remove(&rec.session) else {
            return Ok(());
        };
        for old in &st.ring {
            self.held_bytes -= old.payload.len();
        }
        if st.shown {
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
        // A search selects messages, not whole sessions: no raw streams.
        self.matcher.is_empty() && self.inner.wants_streams()
    }
    fn wants_frames(&self) -> bool {
        self.inner.wants_frames()
    }
    fn wants_payloads(&self) -> bool {
        !self.matcher.is_empty() || self.inner.wants_payloads()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_patterns() {
        assert_eq!(parse_hex("de ad be ef"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(parse_hex("DEADBEEF"), Some(vec![0xde, 0xad, 0xbe, 0xef]));
        assert_eq!(parse_hex("de:ad"), Some(vec![0xde, 0xad]));
        assert_eq!(parse_hex("dea"), None);
        assert_eq!(parse_hex("zz"), None);
        assert_eq!(parse_hex(""), None);
    }

    #[test]
    fn spans_of_text_and_bytes() {
        let m = Matcher::new(Some("é+"), None, false).unwrap();
        assert_eq!(m.spans("aéé b é".as_bytes(), true), vec![(1, 5), (8, 10)]);
        // Binary payloads: the same regex over bytes.
        assert_eq!(m.spans(b"\xff\xc3\xa9\x00", false), vec![(1, 3)]);
        let m = Matcher::new(None, Some("ff 00"), false).unwrap();
        assert_eq!(
            m.spans(b"\x01\xff\x00\xff\x00", false),
            vec![(1, 3), (3, 5)]
        );
        let m = Matcher::new(Some("abc"), None, true).unwrap();
        assert_eq!(m.spans(b"xxABCx", true), vec![(2, 5)]);
        assert!(m.spans(b"xyz", true).is_empty());
        assert!(Matcher::new(Some("("), None, false).is_err());
    }

    #[test]
    fn spans_are_bounded() {
        let m = Matcher::new(Some("a"), None, false).unwrap();
        let payload = vec![b'a'; MAX_SPANS * 3];
        assert_eq!(m.spans(&payload, true).len(), MAX_SPANS);
    }
}
