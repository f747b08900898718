//! JSON Lines writer (`--json`); schema in `docs/json.md`.
//!
//! Message records are the bulk of the output, so they are written by hand
//! into one reused buffer (payloads base64-encoded in place, no allocation
//! per message). Rarer records go through serde. Both produce the field
//! order of the `session` module's types, so `serde_json` reads them back
//! into [`MessageRecord`].

use super::{MessageView, SessionView, Sink};
use crate::session::{
    opcode_name, AnomalyRecord, CaptureRecord, CloseRecord, FrameRecord, GapRecord, MessageRecord,
    SessionEndRecord, StatsRecord,
};
use crate::types::Opcode;
use base64::Engine;
use serde::Serialize;
use std::io::{self, Write};

/// Writes one JSON object per line.
pub struct JsonSink<W: Write> {
    out: W,
    buf: Vec<u8>,
    b64: String,
    /// Flush after every line (live capture), so `| jq` sees records at once.
    pub line_buffered: bool,
}

impl<W: Write> JsonSink<W> {
    /// A JSON Lines writer over `out`.
    pub fn new(out: W) -> Self {
        JsonSink {
            out,
            buf: Vec::with_capacity(64 * 1024),
            b64: String::new(),
            line_buffered: false,
        }
    }

    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    fn record<T: Serialize>(&mut self, kind: &str, rec: &T) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"type\":");
        serde_json::to_writer(&mut self.buf, kind)?;
        let body = serde_json::to_vec(rec)?;
        // `body` is an object: splice its fields after the type.
        if body.len() > 2 {
            self.buf.push(b',');
            self.buf.extend_from_slice(&body[1..]);
        } else {
            self.buf.push(b'}');
        }
        self.buf.push(b'\n');
        self.emit()
    }

    fn emit(&mut self) -> io::Result<()> {
        self.out.write_all(&self.buf)?;
        if self.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }
}

fn push_u64(buf: &mut Vec<u8>, v: u64) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

/// Writes `s` as a JSON string, byte for byte as serde_json would (so the
/// output is the same as the owned records'): `"` and `\\` backslashed,
/// control characters as `\b \t \n \f \r` or `\u00xx`, everything else
/// as is. Eight bytes are checked at a time: text is mostly plain runs, and
/// serde_json's byte-at-a-time table walk was a sixth of `--json` time.
pub(crate) fn push_str(buf: &mut Vec<u8>, s: &str) {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    /// High bit set in each byte of `w` below `n` (n <= 128). Exact for the
    /// lowest such byte, which is all that is used.
    fn below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(ONES * n as u64) & !w & HIGHS
    }
    let bytes = s.as_bytes();
    buf.reserve(bytes.len() + 2);
    buf.push(b'"');
    // `plain` starts the run of bytes not yet copied (none need escaping).
    let mut plain = 0;
    let mut i = 0;
    while let Some(c) = bytes.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        let w = u64::from_le_bytes(a);
        let m = below(w, 0x20)
            | below(w ^ (ONES * b'"' as u64), 1)
            | below(w ^ (ONES * b'\\' as u64), 1);
        if m == 0 {
            i += 8;
            continue;
        }
        let at = i + (m.trailing_zeros() / 8) as usize;
        buf.extend_from_slice(bytes.get(plain..at).unwrap_or_default());
        push_escaped_byte(buf, bytes.get(at).copied().unwrap_or_default());
        plain = at + 1;
        i = plain;
    }
    for (j, &b) in bytes.iter().enumerate().skip(i) {
        if b < 0x20 || b == b'"' || b == b'\\' {
            buf.extend_from_slice(bytes.get(plain..j).unwrap_or_default());
            push_escaped_byte(buf, b);
            plain = j + 1;
        }
    }
    buf.extend_from_slice(bytes.get(plain..).unwrap_or_default());
    buf.push(b'"');
}

fn push_escaped_byte(buf: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => buf.extend_from_slice(b"\\\""),
        b'\\' => buf.extend_from_slice(b"\\\\"),
        0x08 => buf.extend_from_slice(b"\\b"),
        0x09 => buf.extend_from_slice(b"\\t"),
        0x0a => buf.extend_from_slice(b"\\n"),
        0x0c => buf.extend_from_slice(b"\\f"),
        0x0d => buf.extend_from_slice(b"\\r"),
        0..=0x1f => buf.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[(b >> 4) as usize],
            HEX[(b & 0xf) as usize],
        ]),
        _ => buf.push(b),
    }
}

/// Writes the fields of a message record (without the braces' opening
/// `type`), in the order of [`MessageRecord`].
pub(crate) fn write_message_fields(buf: &mut Vec<u8>, b64: &mut String, m: &MessageView<'_>) {
    buf.extend_from_slice(b"\"session\":");
    push_u64(buf, m.session);
    buf.extend_from_slice(b",\"dir\":\"");
    buf.extend_from_slice(m.dir.as_str().as_bytes());
    buf.extend_from_slice(b"\",\"index\":");
    push_u64(buf, m.index);
    buf.extend_from_slice(b",\"opcode\":\"");
    buf.extend_from_slice(opcode_name(m.opcode).as_bytes());
    buf.extend_from_slice(b"\",\"len\":");
    push_u64(buf, m.len);
    match text_of(m) {
        Some(t) => {
            buf.extend_from_slice(b",\"text\":");
            push_str(buf, t);
        }
        None => {
            b64.clear();
            base64::engine::general_purpose::STANDARD.encode_string(m.payload, b64);
            buf.extend_from_slice(b",\"b64\":\"");
            buf.extend_from_slice(b64.as_bytes());
            buf.push(b'"');
        }
    }
    buf.extend_from_slice(b",\"ts\":\"");
    buf.extend_from_slice(m.ts.rfc3339().as_bytes());
    buf.extend_from_slice(b"\",\"ts_last\":\"");
    buf.extend_from_slice(m.ts_last.rfc3339().as_bytes());
    buf.extend_from_slice(b"\",\"packets\":[");
    for (i, p) in m.packets.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        push_u64(buf, *p);
    }
    buf.extend_from_slice(b"],\"seq\":[");
    push_u64(buf, m.seq[0] as u64);
    buf.push(b',');
    push_u64(buf, m.seq[1] as u64);
    buf.extend_from_slice(b"],\"stream\":[");
    push_u64(buf, m.stream[0]);
    buf.push(b',');
    push_u64(buf, m.stream[1]);
    buf.extend_from_slice(b"],\"frames\":");
    push_u64(buf, m.frames);
    if m.compressed {
        buf.extend_from_slice(b",\"compressed\":true,\"wire_len\":");
        push_u64(buf, m.wire_len);
    }
    if m.truncated {
        buf.extend_from_slice(b",\"truncated\":true");
    }
    if m.incomplete {
        buf.extend_from_slice(b",\"incomplete\":true");
    }
    if m.inflate_failed {
        buf.extend_from_slice(b",\"inflate_failed\":true");
    }
    if let Some((code, reason)) = m.close {
        buf.extend_from_slice(b",\"close\":{\"code\":");
        match code {
            Some(c) => push_u64(buf, c as u64),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"reason\":");
        push_str(buf, reason);
        buf.push(b'}');
    }
    if let Some(f) = m.file {
        buf.extend_from_slice(b",\"file\":");
        push_u64(buf, f as u64);
    }
}

/// The payload as text, when it is shown as text.
pub(crate) fn text_of<'a>(m: &MessageView<'a>) -> Option<&'a str> {
    if m.is_text {
        simdutf8::basic::from_utf8(m.payload).ok()
    } else {
        None
    }
}

/// The owned record of a message (export, tests).
pub fn message_record(m: &MessageView<'_>, with_frames: bool) -> MessageRecord {
    let text = text_of(m).map(str::to_owned);
    let b64 = if text.is_none() {
        Some(base64::engine::general_purpose::STANDARD.encode(m.payload))
    } else {
        None
    };
    MessageRecord {
        session: m.session,
        dir: m.dir,
        index: m.index,
        opcode: Opcode::new(m.opcode),
        len: m.len,
        text,
        b64,
        ts: m.ts,
        ts_last: m.ts_last,
        packets: m.packets.to_vec(),
        seq: m.seq,
        stream: m.stream,
        frames: m.frames,
        compressed: m.compressed,
        wire_len: m.compressed.then_some(m.wire_len),
        truncated: m.truncated,
        incomplete: m.incomplete,
        inflate_failed: m.inflate_failed,
        close: m.close.map(|(code, reason)| CloseRecord {
            code,
            reason: reason.to_owned(),
        }),
        file: m.file,
        frame_detail: with_frames.then(|| {
            m.frame_detail
                .iter()
                .map(|f| FrameRecord {
                    fin: f.fin,
                    rsv: f.rsv,
                    opcode: f.opcode,
                    mask: f
                        .mask
                        .map(|k| k.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                    payload_len: f.payload_len,
                    wire_len: f.wire_len,
                    offset: f.offset,
                    packets: f.packets.clone(),
                })
                .collect()
        }),
    }
}

impl<W: Write> Sink for JsonSink<W> {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        self.record("capture", rec)
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        self.record("session", s.record)
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"type\":\"message\",");
        write_message_fields(&mut self.buf, &mut self.b64, m);
        self.buf.extend_from_slice(b"}\n");
        self.emit()
    }
    fn message_match(&mut self, m: &MessageView<'_>, spans: &[(usize, usize)]) -> io::Result<()> {
        self.buf.clear();
        self.buf.extend_from_slice(b"{\"type\":\"message\",");
        write_message_fields(&mut self.buf, &mut self.b64, m);
        self.buf.extend_from_slice(b",\"match\":[");
        for (i, (start, end)) in spans.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.buf.push(b'[');
            push_u64(&mut self.buf, *start as u64);
            self.buf.push(b',');
            push_u64(&mut self.buf, *end as u64);
            self.buf.push(b']');
        }
        self.buf.extend_from_slice(b"]}\n");
        self.emit()
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        self.record("anomaly", a)
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        self.record("gap", g)
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        self.record("session_end", rec)
    }
    fn stats(&mut self, rec: &StatsRecord) -> io::Result<()> {
        self.record("stats", rec)
    }
    fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn push_str_is_serde_jsons_escaping() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::SmallRng::seed_from_u64(5);
        let alphabet = [
            'a', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '€', '😀', '/', '\t', '\u{8}',
            '\u{c}', '\r',
        ];
        for len in 0..200 {
            for _ in 0..20 {
                let s: String = (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect();
                let mut got = Vec::new();
                super::push_str(&mut got, &s);
                assert_eq!(got, serde_json::to_vec(&s).unwrap(), "{s:?}");
            }
        }
        let all: String = (0u8..=0x7f).map(char::from).collect();
        let mut got = Vec::new();
        super::push_str(&mut got, &all);
        assert_eq!(got, serde_json::to_vec(&all).unwrap());
    }

    use super::*;
    use crate::types::{Dir, Timestamp};

    fn view<'a>(payload: &'a [u8], is_text: bool, packets: &'a [u64]) -> MessageView<'a> {
        MessageView {
            session: 3,
            dir: Dir::S2c,
            index: 7,
            opcode: if is_text { 1 } else { 2 },
            payload,
            len: payload.len() as u64,
            is_text,
            ts: Timestamp::new(1_700_000_000, 5),
            ts_last: Timestamp::new(1_700_000_001, 0),
            packets,
            file: None,
            seq: [100, 200],
            stream: [10, 110],
            frames: 2,
            compressed: true,
            wire_len: 40,
            truncated: false,
            incomplete: true,
            inflate_failed: false,
            close: None,
            frame_detail: &[],
        }
    }

    #[test]
    fn hand_written_message_matches_serde_model() {
        for (payload, is_text) in [
            (&b"he said \"hi\"\n\x01"[..], true),
            (&[0u8, 255, 10, 34][..], false),
            (&b""[..], true),
        ] {
            let m = view(payload, is_text, &[4, 5, 9]);
            let mut sink = JsonSink::new(Vec::new());
            sink.message(&m).unwrap();
            let out = sink.into_inner();
            assert_eq!(out.last(), Some(&b'\n'));
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["type"], "message");
            let rec: MessageRecord = serde_json::from_value(v).unwrap();
            assert_eq!(rec, message_record(&m, false));
        }
    }

    #[test]
    fn record_splices_type_first() {
        let mut sink = JsonSink::new(Vec::new());
        sink.gap(&GapRecord {
            flow: 2,
            len: 5,
            reason: "lost".into(),
            ..Default::default()
        })
        .unwrap();
        let s = String::from_utf8(sink.into_inner()).unwrap();
        assert!(
            s.starts_with("{\"type\":\"gap\",\"session\":null,\"flow\":2"),
            "{s}"
        );
        assert!(s.ends_with("}\n"));
    }
}
