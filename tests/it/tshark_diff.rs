//! Differential test against tshark's WebSocket dissector.
//!
//! For every capture in `testdata/`, wssniff's frames (from the library
//! with frame detail kept) are compared, packet by packet, with tshark
//! 4.0.17's frame list: the precomputed `*.frames.tsv` / `NAME.tshark.tsv`,
//! and, when `tshark` is on PATH, a live run with the same fields. At message
//! level the texts tshark shows for single-frame text messages are compared
//! with ours.
//!
//! The senders' logs (`tests/it/truth.rs`) are the ground truth, and tshark 4.0
//! is wrong in known ways. Every disagreement must be listed in
//! [`EXPLAINED`] with one of the known tshark bugs ([`Bug`]); an unexplained
//! disagreement fails, and so does an explanation that no longer matches a
//! disagreement. The same list, in prose, is in `testdata/README.md`
//! ("Known disagreements with tshark 4.0").

use crate::common;
use crate::tools;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use wssniff::types::Dir;

/// tshark 4.0's known WebSocket bugs that show in these captures. Two more
/// are known and not seen here: (a) masked payloads over 256 KiB cut to
/// 262,144 bytes, and (c) the payload of a data frame after a non-final
/// continuation frame in the same segment dropped; both hit only binary
/// payloads in our captures, which this test does not compare (the frame
/// headers, which it does compare, are right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bug {
    /// (b) A fragmented message ending in an empty final frame (Python
    /// websockets always sends one) is never reassembled, and its fragments
    /// are glued onto the next fragmented message.
    EmptyFinalFrame,
    /// (d) A fragmented compressed message is inflated frame by frame
    /// ("Decompression failed"): tshark shows raw deflate bytes as text.
    PerFrameInflate,
    /// (d) After one of the above, tshark's inflate context is wrong: later
    /// compressed messages of that direction come out wrong or not at all.
    DeflateStateAfter,
}

/// Every known disagreement at message level (the text tshark shows at a
/// packet against the messages wssniff completed there): (capture, packet,
/// bug). Packet numbers are Wireshark frame numbers. At frame level there
/// is no known disagreement: every one fails.
const EXPLAINED: &[(&str, u64, Bug)] = &[
    (
        "testdata/real/node-deflate-no-ctx.pcap",
        48,
        Bug::PerFrameInflate,
    ),
    ("testdata/real/node-deflate.pcap", 38, Bug::PerFrameInflate),
    ("testdata/real/node-deflate.pcap", 41, Bug::PerFrameInflate),
    (
        "testdata/real/node-deflate.pcap",
        50,
        Bug::DeflateStateAfter,
    ),
    (
        "testdata/real/node-deflate.pcap",
        51,
        Bug::DeflateStateAfter,
    ),
    (
        "testdata/real/node-deflate.pcap",
        57,
        Bug::DeflateStateAfter,
    ),
    (
        "testdata/real/node-deflate.pcap",
        59,
        Bug::DeflateStateAfter,
    ),
    ("testdata/real/node-deflate.pcap", 68, Bug::PerFrameInflate),
    ("testdata/real/node-deflate.pcap", 119, Bug::PerFrameInflate),
    ("testdata/real/node-deflate.pcap", 122, Bug::PerFrameInflate),
    ("testdata/real/py-basic.pcap", 119, Bug::EmptyFinalFrame),
    ("testdata/real/py-echo.pcap", 21, Bug::EmptyFinalFrame),
    (
        "testdata/real/py-echo-deflate.pcap",
        21,
        Bug::PerFrameInflate,
    ),
    ("testdata/real/py-basic.pcap", 125, Bug::EmptyFinalFrame),
    (
        "testdata/real/py-client-node-server.pcap",
        41,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-client-node-server.pcap",
        44,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-default.pcap",
        38,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-default.pcap",
        42,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-mixed.pcap",
        35,
        Bug::EmptyFinalFrame,
    ),
    (
        "testdata/real/py-deflate-mixed.pcap",
        39,
        Bug::EmptyFinalFrame,
    ),
    (
        "testdata/real/py-deflate-mixed.pcap",
        45,
        Bug::DeflateStateAfter,
    ),
    (
        "testdata/real/py-deflate-no-ctx.pcap",
        44,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-no-ctx.pcap",
        48,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits12.pcap",
        50,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits12.pcap",
        54,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits15.pcap",
        48,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits15.pcap",
        52,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits9.pcap",
        52,
        Bug::PerFrameInflate,
    ),
    (
        "testdata/real/py-deflate-wbits9.pcap",
        56,
        Bug::PerFrameInflate,
    ),
];

#[derive(Clone, Debug, PartialEq, Eq)]
struct Row {
    packet: u64,
    srcport: u16,
    opcode: u8,
    fin: bool,
    rsv: u8,
    mask: bool,
    len: u64,
    /// tshark's text (first 80 characters, escaped), corpus files only.
    text: Option<String>,
}

impl Row {
    fn frame_fields(&self) -> String {
        format!(
            "port {} op {} fin {} rsv {} mask {} len {}",
            self.srcport, self.opcode, self.fin as u8, self.rsv, self.mask as u8, self.len
        )
    }
}

fn tsv_path(capture: &str) -> PathBuf {
    let root = common::root();
    if let Some(rest) = capture.strip_prefix("testdata/corpus/") {
        root.join(format!("testdata/corpus/tshark/{rest}.frames.tsv"))
    } else {
        let stem = capture.strip_suffix(".pcap").unwrap_or(capture);
        root.join(format!("{stem}.tshark.tsv"))
    }
}

fn parse_bool(s: &str) -> bool {
    matches!(s, "1" | "True" | "true")
}

fn parse_rsv(s: &str) -> u8 {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(h) => u8::from_str_radix(h, 16).unwrap_or(0xff),
        None => s.parse().unwrap_or(0xff),
    }
}

fn parse_tsv(path: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut rows = Vec::new();
    for line in text.lines().skip(1).filter(|l| !l.is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        let col = |i: usize| c.get(i).copied().unwrap_or("");
        rows.push(Row {
            packet: col(0).parse().expect("frame number"),
            srcport: col(2).parse().expect("srcport"),
            opcode: col(3).parse().expect("opcode"),
            fin: parse_bool(col(4)),
            rsv: parse_rsv(col(5)),
            mask: parse_bool(col(7)),
            len: col(8).parse().expect("payload_len"),
            text: c.get(9).map(|t| t.to_string()),
        });
    }
    rows
}

/// Runs tshark live, decoding HTTP on every server port we found. The
/// per-frame fields of one packet come '|'-joined; the extended lengths are
/// present only for frames that use them, so they are consumed in order.
fn live_tshark(capture: &str, ports: &BTreeSet<u16>) -> Option<Vec<Row>> {
    let mut cmd = Command::new("tshark");
    cmd.current_dir(common::root()).arg("-r").arg(capture);
    for p in ports {
        cmd.arg("-d").arg(format!("tcp.port=={p},http"));
    }
    cmd.args([
        "-Y",
        "websocket",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]);
    for f in [
        "frame.number",
        "tcp.srcport",
        "websocket.opcode",
        "websocket.fin",
        "websocket.rsv",
        "websocket.mask",
        "websocket.payload_length",
        "websocket.payload_length_ext_16",
        "websocket.payload_length_ext_64",
    ] {
        cmd.arg("-e").arg(f);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let mut rows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let c: Vec<Vec<&str>> = line
            .split('\t')
            .map(|f| f.split('|').filter(|s| !s.is_empty()).collect())
            .collect();
        let get = |i: usize| c.get(i).cloned().unwrap_or_default();
        let packet: u64 = get(0).first()?.parse().ok()?;
        let srcport: u16 = get(1).first()?.parse().ok()?;
        let (mut ext16, mut ext64) = (get(7).into_iter(), get(8).into_iter());
        for (i, op) in get(2).iter().enumerate() {
            let pick = |col: usize| get(col).get(i).copied().unwrap_or("");
            let short: u64 = pick(6).parse().unwrap_or(0);
            let len = match short {
                126 => ext16.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                127 => ext64.next().and_then(|v| v.parse().ok()).unwrap_or(0),
                n => n,
            };
            rows.push(Row {
                packet,
                srcport,
                opcode: op.parse().unwrap_or(0xff),
                fin: parse_bool(pick(3)),
                rsv: parse_rsv(pick(4)),
                mask: parse_bool(pick(5)),
                len,
                text: None,
            });
        }
    }
    Some(rows)
}

/// Our frames as tshark lists them: at the packet that completed the frame,
/// in stream order; plus, per such packet, the text of a single-frame text
/// message ending there.
fn our_rows(k: &common::Keep) -> Vec<Row> {
    let ports: BTreeMap<u64, (u16, u16)> = k
        .sessions
        .iter()
        .map(|s| {
            (
                s.id,
                (common::port_of(&s.client), common::port_of(&s.server)),
            )
        })
        .collect();
    let mut keyed = Vec::new();
    for m in &k.messages {
        let (cp, sp) = ports[&m.session];
        let srcport = if m.dir == Dir::C2s { cp } else { sp };
        let single_text = m.opcode == 1 && m.frames.len() == 1;
        for f in &m.frames {
            let packet = f.packets.iter().copied().max().unwrap_or(0);
            let text = single_text.then(|| String::from_utf8_lossy(&m.payload).into_owned());
            keyed.push((
                (packet, m.session, f.offset),
                Row {
                    packet,
                    srcport,
                    opcode: f.opcode,
                    fin: f.fin,
                    rsv: f.rsv,
                    mask: f.masked,
                    len: f.payload_len,
                    text,
                },
            ));
        }
    }
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// tshark's `-T fields` escaping of a string.
fn tshark_escape(s: &str) -> String {
    let mut o = String::new();
    for ch in s.chars() {
        match ch {
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c => o.push(c),
        }
    }
    o
}

/// Packets where our frames and tshark's differ, with a description.
fn disagreements(ours: &[Row], theirs: &[Row], compare_text: bool) -> BTreeMap<u64, String> {
    let mut by_packet: BTreeMap<u64, (Vec<&Row>, Vec<&Row>)> = BTreeMap::new();
    for r in ours {
        by_packet.entry(r.packet).or_default().0.push(r);
    }
    for r in theirs {
        by_packet.entry(r.packet).or_default().1.push(r);
    }
    let mut out = BTreeMap::new();
    for (packet, (o, t)) in by_packet {
        let of: Vec<String> = o.iter().map(|r| r.frame_fields()).collect();
        let tf: Vec<String> = t.iter().map(|r| r.frame_fields()).collect();
        if of != tf {
            out.insert(packet, format!("frames: wssniff {of:?}, tshark {tf:?}"));
            continue;
        }
        if !compare_text {
            continue;
        }
        for (a, b) in o.iter().zip(t.iter()) {
            let (Some(ours), Some(theirs)) = (&a.text, &b.text) else {
                continue;
            };
            let ours = tshark_escape(ours);
            let agree = if theirs.is_empty() {
                ours.is_empty()
            } else {
                ours.starts_with(theirs.as_str())
            };
            if !agree {
                out.insert(
                    packet,
                    format!("text: wssniff {ours:.80?}, tshark {theirs:?}"),
                );
            }
        }
    }
    out
}

/// Frame level (and, for the corpus files, tshark's text of single-frame
/// text messages): no known disagreement, so every one fails.
fn check_frames(
    capture: &str,
    k: &common::Keep,
    theirs: &[Row],
    source: &str,
    errs: &mut Vec<String>,
) {
    let compare_text = theirs.iter().any(|r| r.text.is_some());
    for (packet, what) in disagreements(&our_rows(k), theirs, compare_text) {
        errs.push(format!("{capture} packet {packet} ({source}): {what}"));
    }
}

/// tshark's message texts per packet (`websocket.payload.text`, which for a
/// reassembled message is the whole message), from its JSON output.
fn live_texts(capture: &str, ports: &BTreeSet<u16>) -> Option<BTreeMap<u64, Vec<String>>> {
    let mut cmd = Command::new("tshark");
    cmd.current_dir(common::root()).arg("-r").arg(capture);
    for p in ports {
        cmd.arg("-d").arg(format!("tcp.port=={p},http"));
    }
    cmd.args(["-Y", "websocket.payload.text", "-T", "json"]);
    cmd.args(["-e", "frame.number", "-e", "websocket.payload.text"]);
    let out = cmd.output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = if out.stdout.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Array(Vec::new())
    } else {
        serde_json::from_slice(&out.stdout).ok()?
    };
    let mut texts = BTreeMap::new();
    for pkt in v.as_array()? {
        let layers = &pkt["_source"]["layers"];
        let packet: u64 = layers["frame.number"][0].as_str()?.parse().ok()?;
        let t: Vec<String> = layers["websocket.payload.text"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        texts.insert(packet, t);
    }
    Some(texts)
}

/// Message level: per packet, the non-empty texts of the text messages
/// wssniff completed there against tshark's. Empty texts are left out on
/// both sides: tshark has no text field for an empty uncompressed payload.
fn check_texts(
    capture: &str,
    k: &common::Keep,
    theirs: &BTreeMap<u64, Vec<String>>,
    errs: &mut Vec<String>,
) {
    let mut ours: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for m in k
        .messages
        .iter()
        .filter(|m| m.opcode == 1 && !m.payload.is_empty())
    {
        let packet = m.packets.iter().copied().max().unwrap_or(0);
        let text = String::from_utf8_lossy(&m.payload).into_owned();
        ours.entry(packet).or_default().push(text);
    }
    let explained: BTreeMap<u64, Bug> = EXPLAINED
        .iter()
        .filter(|(c, _, _)| *c == capture)
        .map(|(_, p, b)| (*p, *b))
        .collect();
    let packets: BTreeSet<u64> = ours.keys().chain(theirs.keys()).copied().collect();
    let mut found = BTreeSet::new();
    for packet in packets {
        let o = ours.get(&packet).cloned().unwrap_or_default();
        let t: Vec<String> = theirs
            .get(&packet)
            .map(|t| t.iter().filter(|x| !x.is_empty()).cloned().collect())
            .unwrap_or_default();
        if o == t {
            continue;
        }
        found.insert(packet);
        match explained.get(&packet) {
            None => errs.push(format!(
                "{capture} packet {packet}: unexplained text disagreement: wssniff {:?}, tshark {:?}",
                o.iter().map(|x| x.chars().take(60).collect::<String>()).collect::<Vec<_>>(),
                t.iter().map(|x| x.chars().take(60).collect::<String>()).collect::<Vec<_>>(),
            )),
            Some(Bug::PerFrameInflate) => {
                // Only a fragmented compressed message can suffer it.
                let ok = k.messages.iter().any(|m| {
                    m.packets.iter().max() == Some(&packet) && m.compressed && m.frames.len() > 1
                });
                if !ok {
                    errs.push(format!(
                        "{capture} packet {packet}: explained as PerFrameInflate, but no fragmented compressed message ends there"
                    ));
                }
            }
            Some(_) => {}
        }
    }
    for (packet, bug) in &explained {
        if !found.contains(packet) {
            errs.push(format!(
                "{capture} packet {packet}: explained as {bug:?} but tshark agrees"
            ));
        }
    }
}

#[test]
fn frames_agree_with_precomputed_tshark() {
    let mut errs = Vec::new();
    for cap in common::all_captures() {
        let tsv = tsv_path(&cap);
        assert!(tsv.exists(), "{cap}: no tshark file {}", tsv.display());
        let theirs = parse_tsv(&tsv);
        check_frames(
            &cap,
            &common::analyse(&cap),
            &theirs,
            "precomputed",
            &mut errs,
        );
    }
    assert!(
        errs.is_empty(),
        "{} problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

#[test]
fn live_tshark_agrees_or_is_explained() {
    if !tools::need(
        "live tshark comparison",
        "tshark 4.0 on PATH",
        tools::tshark_4_0(),
    ) {
        return;
    }
    let mut errs = Vec::new();
    let mut texts_compared = 0;
    for cap in common::all_captures() {
        let k = common::analyse(&cap);
        let mut ports: BTreeSet<u16> = k
            .sessions
            .iter()
            .map(|s| common::port_of(&s.server))
            .collect();
        // Upgrade requests nobody answered are still HTTP on their port.
        ports.extend(
            parse_tsv(&tsv_path(&cap))
                .iter()
                .map(|r| r.srcport)
                .filter(|p| *p < 32768),
        );
        let frames = live_tshark(&cap, &ports).unwrap_or_else(|| panic!("{cap}: tshark failed"));
        check_frames(&cap, &k, &frames, "live", &mut errs);
        let texts = live_texts(&cap, &ports).unwrap_or_else(|| panic!("{cap}: tshark failed"));
        texts_compared += texts.len();
        check_texts(&cap, &k, &texts, &mut errs);
    }
    assert!(
        texts_compared > 500,
        "only {texts_compared} tshark texts seen"
    );
    assert!(
        errs.is_empty(),
        "{} problems:\n{}",
        errs.len(),
        errs.join("\n")
    );
}

/// Every explanation names a capture that exists.
#[test]
fn explanations_name_real_captures() {
    let caps = common::all_captures();
    for (c, _, _) in EXPLAINED {
        assert!(caps.iter().any(|x| x == c), "{c} is not a capture");
    }
}

#[test]
fn differ_notices_a_changed_frame() {
    let a = Row {
        packet: 5,
        srcport: 80,
        opcode: 1,
        fin: true,
        rsv: 0,
        mask: false,
        len: 3,
        text: Some("a\nb".into()),
    };
    let mut b = a.clone();
    b.text = Some("a\\nb".into());
    assert!(disagreements(std::slice::from_ref(&a), std::slice::from_ref(&b), true).is_empty());
    b.len = 4;
    assert_eq!(disagreements(std::slice::from_ref(&a), &[b], true).len(), 1);
    assert_eq!(disagreements(&[a], &[], true).len(), 1);
}
