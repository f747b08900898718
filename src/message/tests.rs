use super::deflate::tests::compress_msgs;
use super::*;
use crate::ws::opcode::{BINARY, CLOSE, CONTINUATION, PING, TEXT};
use std::time::{Duration, Instant};

/// An owned copy of an emitted message.
#[derive(Clone, Debug)]
struct Msg {
    index: u64,
    opcode: u8,
    payload: Vec<u8>,
    len: u64,
    wire_len: u64,
    compressed: bool,
    truncated: bool,
    incomplete: bool,
    utf8_valid: Option<bool>,
    packets: Vec<u64>,
    frames: Vec<FrameInfo>,
    close: Option<CloseInfo>,
    stream_start: u64,
    stream_end: u64,
    ratio_flagged: bool,
    inflate_failed: bool,
}

#[derive(Debug)]
enum Rec {
    Msg(Msg),
    Anom(&'static str, String),
}

/// Drives an assembler with frames built in the test.
struct Rig {
    a: Assembler,
    recs: Vec<Rec>,
    offset: u64,
    packet: u64,
    /// Largest payload capacity seen at any emission.
    max_capacity: usize,
}

fn ts(p: u64) -> Timestamp {
    Timestamp::new(1_700_000_000 + p as i64, 0)
}

impl Rig {
    fn new(cfg: MessageConfig, deflate: Option<DeflateParams>) -> Self {
        Rig {
            a: Assembler::new(Dir::C2s, cfg, deflate),
            recs: Vec::new(),
            offset: 0,
            packet: 0,
            max_capacity: 0,
        }
    }

    fn plain() -> Self {
        Self::new(MessageConfig::default(), None)
    }

    fn pmd(takeover: bool) -> Self {
        let p = DeflateParams {
            per_frame: false,
            no_context_takeover: !takeover,
            max_window_bits: 15,
        };
        Self::new(MessageConfig::default(), Some(p))
    }

    fn ev(&mut self, ev: FrameEvent<'_>) {
        let recs = &mut self.recs;
        self.a.on_event(ev, &mut |o| push_rec(recs, o));
        self.max_capacity = self.max_capacity.max(self.a.data.body.payload.capacity());
    }

    /// Sends one frame, its payload split into `pieces` chunks, one packet each.
    fn frame_split(
        &mut self,
        fin: bool,
        rsv: u8,
        op: u8,
        payload: &[u8],
        mask: Option<[u8; 4]>,
        pieces: usize,
    ) {
        let ext = match payload.len() {
            0..=125 => 0,
            126..=65535 => 2,
            _ => 8,
        };
        let header_len = 2 + ext + if mask.is_some() { 4 } else { 0 };
        let hdr = FrameHeader {
            fin,
            rsv,
            opcode: op,
            mask,
            len: payload.len() as u64,
            header_len,
            non_minimal: false,
            len_top_bit: false,
        };
        let wire: Vec<u8> = match mask {
            Some(k) => payload
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ k[i % 4])
                .collect(),
            None => payload.to_vec(),
        };
        self.packet += 1;
        let offset = self.offset;
        self.ev(FrameEvent::Header {
            hdr,
            offset,
            packet: self.packet,
            ts: ts(self.packet),
        });
        let step = wire.len().div_ceil(pieces.max(1)).max(1);
        for (i, chunk) in wire.chunks(step).enumerate() {
            if i > 0 {
                self.packet += 1;
            }
            let payload_offset = (i * step) as u64;
            self.ev(FrameEvent::Payload {
                data: chunk,
                payload_offset,
                mask,
                packet: self.packet,
                ts: ts(self.packet),
            });
        }
        self.ev(FrameEvent::End {
            packet: self.packet,
            ts: ts(self.packet),
        });
        self.offset += u64::from(header_len) + payload.len() as u64;
    }

    fn frame(&mut self, fin: bool, op: u8, payload: &[u8]) {
        self.frame_split(fin, 0, op, payload, None, 1);
    }

    fn finish(&mut self) {
        let recs = &mut self.recs;
        self.a
            .finish(self.packet, ts(self.packet), &mut |o| push_rec(recs, o));
    }

    fn msgs(&self) -> Vec<Msg> {
        self.recs
            .iter()
            .filter_map(|r| {
                if let Rec::Msg(m) = r {
                    Some(m.clone())
                } else {
                    None
                }
            })
            .collect()
    }

    fn anoms(&self) -> Vec<&'static str> {
        self.recs
            .iter()
            .filter_map(|r| {
                if let Rec::Anom(n, _) = r {
                    Some(*n)
                } else {
                    None
                }
            })
            .collect()
    }

    fn detail(&self, name: &str) -> String {
        self.recs
            .iter()
            .find_map(|r| match r {
                Rec::Anom(n, d) if *n == name => Some(d.clone()),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn take(&mut self) -> (Vec<Msg>, Vec<&'static str>) {
        let r = (self.msgs(), self.anoms());
        self.recs.clear();
        r
    }
}

fn push_rec(recs: &mut Vec<Rec>, o: Output<'_>) {
    match o {
        Output::Anomaly(a) => recs.push(Rec::Anom(a.name, a.detail)),
        Output::Message(m) => recs.push(Rec::Msg(Msg {
            index: m.index,
            opcode: m.opcode,
            payload: m.payload.to_vec(),
            len: m.len,
            wire_len: m.wire_len,
            compressed: m.compressed,
            truncated: m.truncated,
            incomplete: m.incomplete,
            utf8_valid: m.utf8_valid,
            packets: m.packets.to_vec(),
            frames: m.frames.to_vec(),
            close: m.close,
            stream_start: m.stream_start,
            stream_end: m.stream_end,
            ratio_flagged: m.ratio_flagged,
            inflate_failed: m.inflate_failed,
        })),
    }
}

const KEY: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

#[test]
fn fragmented_text_with_interleaved_ping() {
    let mut r = Rig::plain();
    r.frame_split(false, 0, TEXT, b"Hello, ", KEY, 3);
    r.frame_split(true, 0, PING, b"ping!", KEY, 1);
    r.frame_split(true, 0, CONTINUATION, b"world", KEY, 2);
    let (m, a) = r.take();
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].index, m[0].opcode, m[0].payload.as_slice()),
        (0, PING, &b"ping!"[..])
    );
    assert_eq!(m[0].packets, [4]);
    let t = &m[1];
    assert_eq!((t.index, t.opcode), (1, TEXT));
    assert_eq!(t.payload, b"Hello, world");
    assert_eq!((t.len, t.wire_len), (12, 12));
    assert_eq!(t.utf8_valid, Some(true));
    assert!(!t.incomplete && !t.truncated && !t.compressed);
    assert_eq!(t.packets, [1, 2, 3, 5, 6]);
    assert_eq!(t.frames.len(), 2);
    assert_eq!(t.frames[0].packets, [1, 2, 3]);
    assert_eq!(t.frames[1].offset, 6 + 7 + 6 + 5);
    assert_eq!(t.frames[1].wire_len, 6 + 5);
    assert_eq!((t.stream_start, t.stream_end), (0, 6 + 7 + 6 + 5 + 6 + 5));
    assert_eq!(r.a.stats().messages, 2);
    assert_eq!(r.a.stats().control_messages, 1);
}

#[test]
fn zero_length_frames_and_keep_frames_off() {
    let cfg = MessageConfig {
        keep_frames: false,
        ..MessageConfig::default()
    };
    let mut r = Rig::new(cfg, None);
    r.frame(false, BINARY, b"");
    r.frame(true, CONTINUATION, b"");
    let (m, a) = r.take();
    assert!(a.is_empty());
    assert_eq!(m.len(), 1);
    assert!(m[0].payload.is_empty());
    assert!(m[0].frames.is_empty());
    assert_eq!(m[0].utf8_valid, None);
}

#[test]
fn continuation_without_start_is_kept() {
    let mut r = Rig::plain();
    r.frame(true, CONTINUATION, b"orphan");
    let (m, a) = r.take();
    assert_eq!(
        a,
        ["ws_continuation_without_start", "ws_message_incomplete"]
    );
    assert_eq!(
        (m[0].opcode, m[0].payload.as_slice(), m[0].incomplete),
        (CONTINUATION, &b"orphan"[..], true)
    );
}

#[test]
fn new_message_inside_fragmented() {
    let mut r = Rig::plain();
    r.frame(false, TEXT, b"first ");
    r.frame(true, BINARY, b"second");
    let (m, a) = r.take();
    assert_eq!(
        a,
        ["ws_new_message_inside_fragmented", "ws_message_incomplete"]
    );
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].payload.as_slice(), m[0].incomplete, m[0].index),
        (&b"first "[..], true, 0)
    );
    assert_eq!(
        (m[1].payload.as_slice(), m[1].incomplete, m[1].index),
        (&b"second"[..], false, 1)
    );
}

#[test]
fn rsv_anomalies() {
    let mut r = Rig::plain();
    r.frame_split(true, 0b010, TEXT, b"a", None, 1);
    r.frame_split(true, 0b100, TEXT, b"b", None, 1);
    assert_eq!(
        r.take().1,
        ["ws_rsv_without_extension", "ws_rsv_without_extension"]
    );

    let mut r = Rig::pmd(true);
    r.frame_split(true, 0b100, PING, b"p", None, 1);
    r.frame(false, TEXT, b"x");
    r.frame_split(true, 0b100, CONTINUATION, b"y", None, 1);
    let (m, a) = r.take();
    assert_eq!(a, ["ws_rsv1_on_control", "ws_rsv1_on_continuation"]);
    assert_eq!(m[0].payload, b"p");
    assert_eq!(m[1].payload, b"xy");
    assert!(!m[1].compressed);

    // Legacy per-frame deflate allows RSV1 on continuations.
    let p = DeflateParams {
        per_frame: true,
        no_context_takeover: false,
        max_window_bits: 15,
    };
    let mut r = Rig::new(MessageConfig::default(), Some(p));
    let c = compress_msgs(&[b"one ", b"two"], 15, true);
    r.frame_split(false, 0b100, TEXT, &c[0], None, 1);
    r.frame_split(true, 0b100, CONTINUATION, &c[1], None, 1);
    let (m, a) = r.take();
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(m[0].payload, b"one two");
    assert!(m[0].compressed);
}

#[test]
fn utf8_split_across_fragments_at_every_position() {
    let text = "a😀b".as_bytes();
    for cut in 0..=text.len() {
        for masked in [None, KEY] {
            let mut r = Rig::plain();
            r.frame_split(false, 0, TEXT, &text[..cut], masked, 1);
            r.frame_split(true, 0, CONTINUATION, &text[cut..], masked, 2);
            let (m, a) = r.take();
            assert!(a.is_empty(), "cut {cut}: {a:?}");
            assert_eq!(m[0].utf8_valid, Some(true), "cut {cut}");
            assert_eq!(m[0].payload, text);
        }
    }
}

#[test]
fn invalid_utf8_reports_offset_and_keeps_bytes() {
    let mut r = Rig::plain();
    r.frame(false, TEXT, b"abc");
    r.frame(true, CONTINUATION, b"d\xe2\x28\xa1");
    let (m, a) = r.take();
    assert_eq!(a, ["ws_invalid_utf8"]);
    assert_eq!(m[0].utf8_valid, Some(false));
    assert_eq!(m[0].payload, b"abcd\xe2\x28\xa1");
    let mut r = Rig::plain();
    r.frame(false, TEXT, b"abc");
    r.frame(true, CONTINUATION, b"d\xe2\x28\xa1");
    assert!(
        r.detail("ws_invalid_utf8").contains("offset 4"),
        "{}",
        r.detail("ws_invalid_utf8")
    );
    // A character left unfinished by the last frame is invalid.
    let mut r = Rig::plain();
    r.frame(true, TEXT, b"ok\xf0\x9f");
    assert_eq!(r.take().1, ["ws_invalid_utf8"]);
}

#[test]
fn close_frames() {
    let mut r = Rig::plain();
    r.frame(true, CLOSE, b"\x03\xe8done");
    let (m, a) = r.take();
    assert!(a.is_empty());
    assert_eq!(
        m[0].close,
        Some(CloseInfo {
            code: Some(1000),
            reason: "done".into()
        })
    );
    assert_eq!(m[0].utf8_valid, Some(true));
    r.frame(true, TEXT, b"late");
    assert_eq!(r.take().1, ["ws_data_after_close"]);

    let cases: &[(&[u8], &[&str])] = &[
        (b"\x03\xed", &["ws_close_invalid_code"]),
        (b"\x0b\xb8", &[]),
        (b"\x03", &["ws_close_payload_one_byte"]),
        (b"\x03\xe8\xc3\x28", &["ws_close_invalid_utf8"]),
        (b"", &[]),
    ];
    for (payload, want) in cases {
        let mut r = Rig::plain();
        r.frame_split(true, 0, CLOSE, payload, KEY, 1);
        assert_eq!(r.anoms(), *want, "{payload:?}");
    }
}

#[test]
fn message_truncated_at_limit() {
    let cfg = MessageConfig {
        max_message_bytes: 10,
        ..MessageConfig::default()
    };
    let mut r = Rig::new(cfg, None);
    r.frame_split(false, 0, TEXT, b"0123456789abc", KEY, 4);
    r.frame_split(true, 0, CONTINUATION, b"de\xff", KEY, 1);
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_truncated", "ws_invalid_utf8"]);
    assert_eq!(m[0].payload, b"0123456789");
    assert_eq!((m[0].len, m[0].wire_len, m[0].truncated), (16, 16, true));
    assert_eq!(
        m[0].utf8_valid,
        Some(false),
        "bytes past the limit are still validated"
    );
    assert!(r.max_capacity <= 10, "capacity {}", r.max_capacity);
}

#[test]
fn too_many_fragments_and_packets() {
    let cfg = MessageConfig {
        max_fragments: 3,
        ..MessageConfig::default()
    };
    let mut r = Rig::new(cfg, None);
    r.frame(false, BINARY, b"a");
    for _ in 0..3 {
        r.frame(false, CONTINUATION, b"b");
    }
    r.frame(true, CONTINUATION, b"c");
    let (m, a) = r.take();
    assert_eq!(a, ["ws_too_many_fragments", "ws_too_many_packets"]);
    assert_eq!(m[0].payload, b"abbbc");
    assert_eq!(m[0].frames.len(), 3);
    assert_eq!(m[0].packets, [1, 2, 3]);
}

#[test]
fn incomplete_at_end_and_after_gap() {
    let mut r = Rig::plain();
    r.frame(false, TEXT, b"never ");
    r.finish();
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_incomplete"]);
    assert!(m[0].incomplete);
    assert_eq!(m[0].utf8_valid, Some(true));

    // Header and some payload, then a gap, then the end of the frame.
    let mut r = Rig::plain();
    let hdr = FrameHeader {
        fin: true,
        rsv: 0,
        opcode: TEXT,
        mask: None,
        len: 10,
        header_len: 2,
        non_minimal: false,
        len_top_bit: false,
    };
    r.ev(FrameEvent::Header {
        hdr,
        offset: 0,
        packet: 1,
        ts: ts(1),
    });
    r.ev(FrameEvent::Payload {
        data: b"abc",
        payload_offset: 0,
        mask: None,
        packet: 1,
        ts: ts(1),
    });
    r.ev(FrameEvent::Gap {
        len: 4,
        packet: 3,
        ts: ts(3),
    });
    r.ev(FrameEvent::Payload {
        data: b"hij",
        payload_offset: 7,
        mask: None,
        packet: 3,
        ts: ts(3),
    });
    r.ev(FrameEvent::End {
        packet: 3,
        ts: ts(3),
    });
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_incomplete"]);
    assert_eq!(m[0].payload, b"abchij");
    assert_eq!((m[0].len, m[0].wire_len, m[0].stream_end), (6, 10, 12));
    assert_eq!(m[0].packets, [1, 3]);

    // Frame cut by end of input.
    let mut r = Rig::plain();
    r.ev(FrameEvent::Header {
        hdr,
        offset: 0,
        packet: 1,
        ts: ts(1),
    });
    r.ev(FrameEvent::Payload {
        data: b"ab",
        payload_offset: 0,
        mask: None,
        packet: 1,
        ts: ts(1),
    });
    r.finish();
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_incomplete"]);
    assert_eq!((m[0].payload.as_slice(), m[0].stream_end), (&b"ab"[..], 4));
}

#[test]
fn passes_frame_anomalies_through() {
    let mut r = Rig::plain();
    let an = Anomaly {
        name: "ws_test",
        detail: String::new(),
        packet: 1,
        ts: ts(1),
    };
    r.ev(FrameEvent::Anomaly(an));
    assert_eq!(r.anoms(), ["ws_test"]);
    assert_eq!(r.a.stats().anomalies, 0);
}

#[test]
fn every_emitted_anomaly_is_listed() {
    for name in [
        "ws_continuation_without_start",
        "ws_new_message_inside_fragmented",
        "ws_rsv_without_extension",
        "ws_rsv1_on_control",
        "ws_rsv1_on_continuation",
        "ws_invalid_utf8",
        "ws_close_invalid_code",
        "ws_close_payload_one_byte",
        "ws_close_invalid_utf8",
        "ws_data_after_close",
        "ws_message_truncated",
        "ws_too_many_fragments",
        "ws_too_many_packets",
        "ws_message_incomplete",
        "deflate_bad_parameter",
        "deflate_multiple_extensions",
        "deflate_limit",
        "deflate_work_limit",
        "deflate_high_ratio",
        "deflate_error",
        "deflate_context_lost",
        "deflate_trailing_data",
        "deflate_context_missing",
    ] {
        assert!(
            ANOMALIES.iter().any(|(n, _)| *n == name),
            "{name} not listed"
        );
    }
    let src = [
        include_str!("mod.rs"),
        include_str!("deflate.rs"),
        include_str!("close.rs"),
    ]
    .concat();
    for (name, _) in ANOMALIES {
        assert!(
            src.matches(&format!("\"{name}\"")).count() >= 2,
            "{name} listed but never emitted"
        );
    }
}

// ---- permessage-deflate ----

fn text_msgs() -> Vec<Vec<u8>> {
    (0..4)
        .map(|i| {
            format!(
                "{{\"op\":\"update\",\"seq\":{i},\"data\":\"the same words again and again {i}\"}}"
            )
            .into_bytes()
        })
        .collect()
}

#[test]
fn deflate_with_and_without_context_takeover() {
    let msgs = text_msgs();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    for takeover in [true, false] {
        let c = compress_msgs(&refs, 15, takeover);
        let mut r = Rig::pmd(takeover);
        for (i, cm) in c.iter().enumerate() {
            r.frame_split(true, 0b100, TEXT, cm, KEY, 1 + i % 3);
        }
        let (m, a) = r.take();
        assert!(a.is_empty(), "{a:?}");
        for (got, want) in m.iter().zip(&msgs) {
            assert_eq!(&got.payload, want);
            assert!(got.compressed && !got.inflate_failed);
            assert_eq!(got.len, want.len() as u64);
            assert_eq!(got.utf8_valid, Some(true));
        }
        assert_eq!(m.len(), 4);
        if takeover {
            assert!(
                m[3].wire_len < m[0].wire_len,
                "later messages reuse the window"
            );
        }
    }
}

#[test]
fn deflate_window_bits_9_12_15() {
    let big: Vec<u8> = (0..20_000u32)
        .map(|i| b"abcdefghij"[(i * 7 % 10) as usize] ^ (i / 1000) as u8)
        .collect();
    for bits in [9u8, 12, 15] {
        let c = compress_msgs(&[&big, &big], bits, true);
        let p = DeflateParams {
            per_frame: false,
            no_context_takeover: false,
            max_window_bits: bits,
        };
        let mut r = Rig::new(MessageConfig::default(), Some(p));
        r.frame_split(true, 0b100, BINARY, &c[0], None, 7);
        r.frame_split(true, 0b100, BINARY, &c[1], None, 5);
        let (m, a) = r.take();
        assert!(
            a.iter().all(|n| *n == "deflate_high_ratio"),
            "{bits}: {a:?}"
        );
        assert_eq!(m[0].payload, big, "{bits}");
        assert_eq!(m[1].payload, big, "{bits}");
    }
}

#[test]
fn fragmented_compressed_message() {
    let msg = b"fragmented and compressed, fragmented and compressed, fragmented!".repeat(20);
    let c = compress_msgs(&[&msg], 15, true).remove(0);
    let (a, rest) = c.split_at(c.len() / 3);
    let (b, d) = rest.split_at(rest.len() / 2);
    let mut r = Rig::pmd(true);
    r.frame_split(false, 0b100, TEXT, a, KEY, 2);
    r.frame_split(true, 0, PING, b"x", KEY, 1);
    r.frame_split(false, 0, CONTINUATION, b, KEY, 3);
    r.frame_split(true, 0, CONTINUATION, d, KEY, 1);
    let (m, an) = r.take();
    assert!(an.is_empty(), "{an:?}");
    assert_eq!(m[0].opcode, PING);
    assert_eq!(m[1].payload, msg);
    assert_eq!(m[1].wire_len, c.len() as u64);
    assert!(m[1].compressed);
    assert_eq!(m[1].frames.len(), 3);
}

#[test]
fn deflate_high_ratio_flagged() {
    let zeros = vec![0u8; 200_000];
    let c = compress_msgs(&[&zeros], 15, true);
    let mut r = Rig::pmd(true);
    r.frame_split(true, 0b100, BINARY, &c[0], None, 1);
    let (m, a) = r.take();
    assert_eq!(a, ["deflate_high_ratio"]);
    assert!(m[0].ratio_flagged);
    assert_eq!(m[0].payload, zeros);
}

/// A deflate stream of `blocks` repetitions of one compressed block of
/// `block_bytes` zeros (each block only refers back to itself).
fn bomb(block_bytes: usize, blocks: usize) -> Vec<u8> {
    let zeros = vec![0u8; block_bytes];
    let mut one = compress_msgs(&[&zeros], 15, false).remove(0);
    one.extend_from_slice(&DEFLATE_TAIL);
    one.repeat(blocks)
}

/// Feeds a bomb of `blocks` x 4 MiB of zeros under a work bound of
/// `work` bytes, then a normal message, and checks both.
fn run_bomb(work: u64, blocks: usize) {
    let b = bomb(4 << 20, blocks);
    let cfg = MessageConfig {
        max_inflated_bytes: 1 << 20,
        max_inflate_work: work,
        ..MessageConfig::default()
    };
    let mut r = Rig::new(
        cfg,
        Some(DeflateParams {
            per_frame: false,
            no_context_takeover: false,
            max_window_bits: 15,
        }),
    );
    let start = Instant::now();
    r.frame_split(true, 0b100, BINARY, &b, None, 64);
    let after = compress_msgs(&[b"still alive"], 15, true).remove(0);
    r.frame_split(true, 0b100, TEXT, &after, None, 1);
    eprintln!(
        "bomb of {} compressed bytes: {:?}",
        b.len(),
        start.elapsed()
    );
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    let (m, a) = r.take();
    let want_ratio = m[0].len > m[0].wire_len * 100;
    let mut want = vec!["deflate_limit", "deflate_work_limit"];
    if want_ratio {
        want.push("deflate_high_ratio");
    }
    want.push("deflate_context_lost");
    assert_eq!(a, want);
    assert_eq!(m[0].payload.len(), 1 << 20);
    assert!(m[0].truncated);
    assert!(
        m[0].len > work && m[0].len <= work + (64 << 10),
        "{}",
        m[0].len
    );
    assert!(
        r.max_capacity <= 1 << 20,
        "buffer grew to {}",
        r.max_capacity
    );
    assert_eq!(m[1].payload, b"still alive");
    assert!(r.a.stats().inflated_bytes <= work + (64 << 10));
}

#[test]
fn deflate_bomb_is_bounded_and_later_messages_decode() {
    // 1 GiB of zeros in about 1 MiB of compressed data; the work bound stops it at 64 MiB.
    run_bomb(64 << 20, 256);
}

/// The same with the default 1 GiB work bound (about 8 s unoptimized, 1 s in release).
#[test]
#[ignore]
fn deflate_bomb_default_bound() {
    run_bomb(MessageConfig::default().max_inflate_work, 320);
}

#[test]
fn deflate_limit_keeps_window_valid() {
    // Past the limit, inflation goes on so the next message (which refers
    // back into this one) still decodes.
    let first: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = first[first.len() - 20_000..].to_vec();
    let c = compress_msgs(&[&first, &second], 15, true);
    let cfg = MessageConfig {
        max_inflated_bytes: 50_000,
        ..MessageConfig::default()
    };
    let mut r = Rig::new(
        cfg,
        Some(DeflateParams {
            per_frame: false,
            no_context_takeover: false,
            max_window_bits: 15,
        }),
    );
    r.frame_split(true, 0b100, BINARY, &c[0], KEY, 9);
    r.frame_split(true, 0b100, BINARY, &c[1], KEY, 1);
    let (m, a) = r.take();
    assert_eq!(
        a,
        ["deflate_limit", "deflate_high_ratio", "deflate_high_ratio"]
    );
    assert_eq!(m[0].payload, &first[..50_000]);
    assert_eq!(m[0].len, first.len() as u64);
    assert_eq!(m[1].payload, second);
    assert!(r.max_capacity <= 50_000);
}

#[test]
fn invalid_deflate_keeps_wire_bytes() {
    let mut r = Rig::pmd(true);
    let garbage = b"\xff\xfe\xfd\xfc\xfb";
    r.frame_split(true, 0b100, TEXT, garbage, KEY, 1);
    let ok = compress_msgs(&[b"fresh start"], 15, true).remove(0);
    r.frame_split(true, 0b100, TEXT, &ok, KEY, 1);
    let (m, a) = r.take();
    assert_eq!(a, ["deflate_error", "deflate_context_lost"]);
    assert!(m[0].inflate_failed && m[0].compressed);
    assert_eq!(m[0].payload, garbage);
    assert_eq!(m[0].utf8_valid, None);
    assert_eq!(m[1].payload, b"fresh start");
    assert!(!m[1].inflate_failed);
    assert_eq!(r.a.stats().inflate_failed, 1);
}

#[test]
fn context_lost_then_takeover_message() {
    let msgs = text_msgs();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| m.as_slice()).collect();
    let c = compress_msgs(&refs, 15, true);
    let mut r = Rig::pmd(true);
    r.frame_split(true, 0b100, TEXT, &c[0], None, 1);
    r.a.context_lost(2, ts(2));
    r.frame_split(true, 0b100, TEXT, &c[1], None, 1);
    let (m, a) = r.take();
    assert_eq!(m[0].payload, msgs[0]);
    assert_eq!(a[0], "deflate_context_lost");
    // The second message refers back into the lost window: it either fails
    // (wire bytes kept) or decodes to something else, never silently.
    assert!(m[1].inflate_failed || m[1].payload != msgs[1]);
    if m[1].inflate_failed {
        assert!(a.contains(&"deflate_error"));
    }

    // Without context takeover, messages stand alone: no anomaly.
    let c = compress_msgs(&refs, 15, false);
    let mut r = Rig::pmd(false);
    r.frame_split(true, 0b100, TEXT, &c[0], None, 1);
    r.a.context_lost(2, ts(2));
    r.frame_split(true, 0b100, TEXT, &c[1], None, 1);
    let (m, a) = r.take();
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(m[1].payload, msgs[1]);
}

#[test]
fn gap_inside_compressed_message() {
    let c = compress_msgs(&[b"abcdefghijklmnopqrstuvwxyz"], 15, true).remove(0);
    let mut r = Rig::pmd(true);
    let hdr = FrameHeader {
        fin: true,
        rsv: 0b100,
        opcode: TEXT,
        mask: None,
        len: c.len() as u64,
        header_len: 2,
        non_minimal: false,
        len_top_bit: false,
    };
    r.ev(FrameEvent::Header {
        hdr,
        offset: 0,
        packet: 1,
        ts: ts(1),
    });
    r.ev(FrameEvent::Payload {
        data: &c[..4],
        payload_offset: 0,
        mask: None,
        packet: 1,
        ts: ts(1),
    });
    r.ev(FrameEvent::Gap {
        len: c.len() as u64 - 4,
        packet: 2,
        ts: ts(2),
    });
    r.ev(FrameEvent::End {
        packet: 2,
        ts: ts(2),
    });
    let ok = compress_msgs(&[b"next"], 15, true).remove(0);
    r.frame_split(true, 0b100, TEXT, &ok, None, 1);
    assert!(r.detail("deflate_context_lost").contains("packet 2"));
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_incomplete", "deflate_context_lost"]);
    assert!(m[0].incomplete);
    assert_eq!(m[1].payload, b"next");
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Server frames of suricata-verify websocket-compressed/example_websocket.pcap
/// (packets 8..26, one unmasked frame per TCP segment), from
/// `tshark -r example_websocket.pcap -Y 'tcp.srcport==5000' -T fields -e tcp.payload`.
const SURICATA_FRAMES: &[&str] = &[
    "c126f2768db435304f4eb23435b54c4d4b33324c354e353649334e4a4a31b4303231484a4c360600",
    "c1170af17777f771b5354ab1304832324a4d49324e4c4b0600",
    "c112820a9a981a18249aa7a5259958585a980200",
    "c112820a9a9ba59898a65aa4a6a4261a1ba40100",
    "c114820a1a1a585858981958a418a558a6a518980100",
    "c11382099b1a599818a65a98182727a5a61a9a0200",
    "c114820a5b9aa6249b19a625a5181ba79a1a19250100",
    "c114820a1b18a426272725199a265b98981858a60000",
    "c10f820a271b0325cc12cd9393d34c0000",
    "c114820a999a995a1a1a1b9a9919a5999a181b9b0000",
];

#[test]
fn suricata_compressed_capture_decodes() {
    let ext = vec![(
        "permessage-deflate".to_string(),
        vec![("client_max_window_bits".to_string(), Some("15".to_string()))],
    )];
    let (params, an) = deflate_params(&ext, Dir::S2c);
    assert!(an.is_empty());
    let mut r = Rig::new(MessageConfig::default(), params);
    for f in SURICATA_FRAMES {
        let raw = hex(f);
        assert_eq!(raw[0], 0xc1, "FIN+RSV1+TEXT");
        let len = usize::from(raw[1] & 0x7f);
        assert!(len < 126 && raw[1] & 0x80 == 0);
        r.frame_split(true, 0b100, TEXT, &raw[2..2 + len], None, 1);
    }
    let (m, a) = r.take();
    assert!(a.is_empty(), "{a:?}");
    let texts: Vec<String> = m
        .iter()
        .map(|m| String::from_utf8(m.payload.clone()).unwrap())
        .collect();
    assert_eq!(texts[0], "KEY=07cb9559eff21e3e34f3bbd18240bac3");
    assert_eq!(texts[1], "TOGGLE=2d80b22edb3afc");
    assert_eq!(texts[9], "TOGGLE=5659131662f54334");
    assert_eq!(m.len(), 10);
    assert!(m.iter().all(|m| m.compressed && m.utf8_valid == Some(true)));
}

/// A message compressed into a final (BFINAL) block, as some senders do.
fn compress_final(msg: &[u8]) -> Vec<u8> {
    let mut c = flate2::Compress::new(flate2::Compression::default(), false);
    let mut out = Vec::with_capacity(msg.len() + 64);
    let status = c
        .compress_vec(msg, &mut out, flate2::FlushCompress::Finish)
        .expect("compress");
    assert_eq!(status, flate2::Status::StreamEnd);
    out
}

#[test]
fn final_block_and_trailing_data() {
    let mut r = Rig::pmd(true);
    r.frame_split(true, 0b100, TEXT, &compress_final(b"final block"), None, 1);
    let ok = compress_msgs(&[b"after"], 15, true).remove(0);
    r.frame_split(true, 0b100, TEXT, &ok, None, 1);
    let (m, a) = r.take();
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(m[0].payload, b"final block");
    assert_eq!(m[1].payload, b"after");

    let mut r = Rig::pmd(true);
    let mut c = compress_final(b"final block");
    c.extend_from_slice(b"junk");
    r.frame_split(true, 0b100, TEXT, &c, None, 1);
    let (m, a) = r.take();
    assert_eq!(a, ["deflate_trailing_data"]);
    assert_eq!(m[0].payload, b"final block");
}

#[test]
fn context_lost_inside_fragmented_compressed_message() {
    let msg = b"0123456789".repeat(30);
    let c = compress_msgs(&[&msg], 15, true).remove(0);
    let mut r = Rig::pmd(true);
    r.frame_split(false, 0b100, BINARY, &c[..c.len() / 2], None, 1);
    r.a.context_lost(2, ts(2));
    r.frame_split(true, 0, CONTINUATION, &c[c.len() / 2..], None, 1);
    let ok = compress_msgs(&[b"next"], 15, true).remove(0);
    r.frame_split(true, 0b100, TEXT, &ok, None, 1);
    let detail = r.detail("deflate_context_lost");
    assert!(r.detail("deflate_context_lost").contains("packet 2"));
    let (m, a) = r.take();
    assert_eq!(a, ["ws_message_incomplete", "deflate_context_lost"]);
    assert!(m[0].incomplete && !m[0].inflate_failed);
    assert!(detail.contains("packet 2"), "{detail}");
    assert!(
        msg.starts_with(&m[0].payload),
        "what was inflated is a prefix"
    );
    assert_eq!(m[0].wire_len, c.len() as u64);
    assert_eq!(m[1].payload, b"next");
}

/// Without payloads kept, every message still has its length, validity,
/// truncation and anomalies, and nothing is stored.
#[test]
fn counting_only_matches_keeping_but_stores_nothing() {
    let run = |keep: bool| {
        let cfg = MessageConfig {
            keep_payloads: keep,
            max_message_bytes: 8,
            ..MessageConfig::default()
        };
        let mut r = Rig::new(cfg, None);
        r.frame_split(false, 0, TEXT, b"abc", KEY, 2);
        r.frame_split(true, 0, CONTINUATION, b"d\xe2\x28\xa1", KEY, 3);
        r.frame_split(true, 0, BINARY, &[7u8; 100], KEY, 7);
        r.frame_split(true, 0, TEXT, "héllo wörld".as_bytes(), KEY, 5);
        r.frame(true, CLOSE, b"\x03\xe8bye");
        let cap = r.a.data.body.payload.capacity();
        let (m, a) = r.take();
        (m, a, cap)
    };
    let (kept, kept_anoms, _) = run(true);
    let (counted, counted_anoms, cap) = run(false);
    assert_eq!(kept_anoms, counted_anoms);
    assert!(kept_anoms.contains(&"ws_invalid_utf8"));
    assert!(kept_anoms.contains(&"ws_message_truncated"));
    assert_eq!(kept.len(), counted.len());
    for (k, c) in kept.iter().zip(&counted) {
        assert_eq!(
            (k.len, k.wire_len, k.truncated, k.utf8_valid, &k.close),
            (c.len, c.wire_len, c.truncated, c.utf8_valid, &c.close)
        );
        if k.opcode == CLOSE {
            assert_eq!(k.payload, c.payload);
        } else {
            assert!(c.payload.is_empty() && !k.payload.is_empty());
        }
    }
    assert_eq!(cap, 0);
}

#[test]
fn inflater_limit_keeps_compressed_bytes_then_recovers() {
    for takeover in [false, true] {
        let c = compress_msgs(&[b"first message", b"second message"], 15, takeover);
        let p = DeflateParams {
            per_frame: false,
            no_context_takeover: !takeover,
            max_window_bits: 15,
        };
        // Room for one more inflater on this thread than there is now.
        let cfg = MessageConfig {
            max_inflaters: super::deflate::live_inflaters() + 1,
            ..MessageConfig::default()
        };
        let mut a = Rig::new(cfg.clone(), Some(p));
        a.frame_split(true, 0b100, TEXT, &c[0], KEY, 1);
        assert_eq!(a.msgs()[0].payload, b"first message");

        // A second direction finds the limit reached: its message is kept
        // as the compressed bytes, and named.
        let mut b = Rig::new(cfg, Some(p));
        b.frame_split(true, 0b100, TEXT, &c[0], KEY, 2);
        let m = b.msgs();
        assert_eq!(b.anoms(), ["deflate_inflater_limit"]);
        assert!(m[0].compressed && m[0].inflate_failed);
        assert_eq!(m[0].payload, c[0]);
        assert_eq!(m[0].utf8_valid, None);

        // Once the first direction is gone, the second inflates again; with
        // context takeover its window is unknown, which is said.
        drop(a);
        b.recs.clear();
        b.frame_split(true, 0b100, TEXT, &c[if takeover { 1 } else { 0 }], KEY, 1);
        let m = b.msgs();
        if takeover {
            let a = b.anoms();
            assert_eq!(a[0], "deflate_context_lost");
            // The message refers back into a window this side never saw:
            // it fails (wire bytes kept, named) or decodes to something else.
            assert!(m[0].inflate_failed || m[0].payload != b"second message");
            assert!(!m[0].inflate_failed || a.contains(&"deflate_error"));
        } else {
            assert!(b.anoms().is_empty(), "{:?}", b.anoms());
            assert_eq!(m[0].payload, b"first message");
            assert!(!m[0].inflate_failed);
        }
    }
}

#[test]
fn without_deflate_history_outputs_only_exact_messages() {
    let p = DeflateParams {
        per_frame: false,
        no_context_takeover: false,
        max_window_bits: 15,
    };
    let first = b"hello hello hello, the history the capture missed".to_vec();
    let refers = b"hello hello hello, the history again".to_vec();
    let fresh: Vec<u8> = (0..500u32).map(|i| (i * 7919 % 251) as u8).collect();
    let again = [&fresh[..200], &fresh[..200]].concat();
    let c = compress_msgs(&[&first, &refers, &fresh, &again], 15, true);
    let mut r = Rig {
        a: Assembler::without_deflate_history(Dir::C2s, MessageConfig::default(), p),
        recs: Vec::new(),
        offset: 0,
        packet: 0,
        max_capacity: 0,
    };
    // The capture starts after `first`.
    r.frame_split(true, 0b100, TEXT, &c[1], KEY, 2);
    r.frame_split(false, 0b100, BINARY, &c[2][..10], None, 1);
    r.frame_split(true, 0, CONTINUATION, &c[2][10..], None, 3);
    r.frame(true, TEXT, b"plain");
    r.frame_split(true, 0b100, BINARY, &c[3], KEY, 1);
    let (m, a) = r.take();
    assert_eq!(m.len(), 4);
    // Refers back into the unseen message: kept compressed, named.
    assert!(m[0].inflate_failed && m[0].compressed);
    assert_eq!(m[0].payload, c[1]);
    assert_eq!(m[0].utf8_valid, None);
    assert_eq!(a, ["deflate_context_missing"]);
    // Independent of the unseen history: exact.
    assert_eq!(m[1].payload, fresh);
    assert!(!m[1].inflate_failed && m[1].compressed);
    assert_eq!(m[1].len, fresh.len() as u64);
    assert_eq!(m[2].payload, b"plain");
    // Refers back only into a message known exactly: exact too.
    assert_eq!(m[3].payload, again);
    assert!(!m[3].inflate_failed);

    // A loss makes the window unknown again.
    let c = compress_msgs(&[&fresh, &again], 15, true);
    let mut r = Rig {
        a: Assembler::without_deflate_history(Dir::C2s, MessageConfig::default(), p),
        recs: Vec::new(),
        offset: 0,
        packet: 0,
        max_capacity: 0,
    };
    r.frame_split(true, 0b100, BINARY, &c[0], None, 1);
    r.a.context_lost(9, ts(9));
    r.frame_split(true, 0b100, BINARY, &c[1], None, 1);
    let (m, a) = r.take();
    assert_eq!(m[0].payload, fresh);
    assert!(m[1].inflate_failed);
    assert_eq!(a, ["deflate_context_missing"]);
}
