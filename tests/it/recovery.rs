//! Recovery at the ws/message level on the real captures: decoding that
//! starts mid-stream (no handshake) and that resumes after a lost packet.
//!
//! Each capture is read with the capture, decode and tcp stages; every
//! direction's WebSocket bytes (after its HTTP head) are kept with their
//! segment boundaries. A reference decode from the handshake on gives every
//! message's stream range and SHA-256, checked against the senders' truth.
//! Then:
//! - cut: the stream is cut at every segment boundary and decoded from the
//!   probe's start: every message it decodes complete must be a reference
//!   message (same range, same hash), and it must recover the messages after
//!   the cut;
//! - loss: each segment is removed in turn (a gap) with a resyncing decoder:
//!   every complete message must be a reference message, and those the loss
//!   did not touch must be recovered.

use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use wssniff::capture::CaptureReader;
use wssniff::decode::{DecodeConfig, Decoder};
use wssniff::message::{Assembler, MessageConfig, Output};
use wssniff::tcp::{
    CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, Side, StreamEvent, TcpConfig,
};
use wssniff::types::{Dir, Timestamp};
use wssniff::ws::{self, FrameConfig, FrameDecoder, FrameEvent};

/// One direction's bytes and where its segments began.
#[derive(Default)]
struct Stream {
    bytes: Vec<u8>,
    segs: Vec<usize>,
}

#[derive(Default)]
struct Collect {
    /// (client port, side) -> stream.
    flows: BTreeMap<(u16, u8), Stream>,
}

impl FlowHandler for Collect {
    type State = ();
    type Error = std::convert::Infallible;
    fn open(&mut self, _: &FlowInfo) {}
    fn event(
        &mut self,
        _: &mut (),
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> Result<Interest, Self::Error> {
        if let StreamEvent::Data {
            side, offset, data, ..
        } = ev
        {
            let s = self
                .flows
                .entry((info.orig.port(), matches!(side, Side::Resp) as u8))
                .or_default();
            if offset as usize != s.bytes.len() {
                // After a gap: only the contiguous start is kept (the real
                // captures have none; `check` asserts their truth matches).
                return Ok(Interest::Continue);
            }
            s.segs.push(s.bytes.len());
            s.bytes.extend_from_slice(data);
        }
        Ok(Interest::Continue)
    }
    fn close(&mut self, _: (), _: &FlowInfo, _: CloseReason) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn read(name: &str) -> BTreeMap<(u16, u8), Stream> {
    read_path(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/real")
            .join(name),
    )
}

fn read_path(path: &Path) -> BTreeMap<(u16, u8), Stream> {
    let mut r = CaptureReader::open(path).expect("open capture");
    let mut dec = Decoder::new(DecodeConfig::default());
    let mut table: FlowTable<()> = FlowTable::new(TcpConfig::default());
    let mut h = Collect::default();
    while let Some(p) = r.next_packet().expect("read") {
        let (n, ts, lt, orig) = (p.number, p.ts, p.link_type, p.orig_len);
        let data = p.data.to_vec();
        if let Ok(seg) = dec.decode(lt, &data, orig, ts) {
            table.process(&seg, n, ts, &mut h).unwrap();
        }
    }
    table.finish(&mut h).unwrap();
    h.flows
}

/// A decoded message: stream range and hash, and whether it is exact.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct M {
    start: u64,
    end: u64,
    sha: [u8; 32],
}

/// Decodes `pieces` (stream offset, bytes, lost?) of one direction.
fn decode(
    pieces: &[(u64, &[u8], bool)],
    masked: bool,
    resync: bool,
) -> (Vec<M>, Vec<&'static str>) {
    let mut dec = FrameDecoder::new(FrameConfig {
        expect_masked: masked,
    });
    if resync {
        dec = dec.resyncing();
    }
    let dir = if masked { Dir::C2s } else { Dir::S2c };
    let mut asm = Assembler::new(dir, MessageConfig::default(), None);
    let mut msgs = Vec::new();
    let mut names = Vec::new();
    let ts = Timestamp::default();
    let on = |asm: &mut Assembler,
              ev: FrameEvent<'_>,
              msgs: &mut Vec<M>,
              names: &mut Vec<&'static str>| {
        // Frame anomalies come back through the assembler.
        asm.on_event(ev, &mut |o| match o {
            Output::Message(m) if !m.incomplete && !m.truncated => msgs.push(M {
                start: m.stream_start,
                end: m.stream_end,
                sha: Sha256::digest(m.payload).into(),
            }),
            Output::Message(_) => {}
            Output::Anomaly(a) => names.push(a.name),
        });
    };
    for (i, &(off, bytes, lost)) in pieces.iter().enumerate() {
        let pkt = i as u64 + 1;
        if lost {
            dec.gap(bytes.len() as u64, pkt, ts, &mut |e| {
                on(&mut asm, e, &mut msgs, &mut names)
            });
            asm.context_lost(pkt, ts);
        } else {
            dec.feed(bytes, off, pkt, ts, &mut |e| {
                on(&mut asm, e, &mut msgs, &mut names)
            });
        }
    }
    let end = pieces.len() as u64 + 1;
    dec.finish(end, ts, &mut |e| on(&mut asm, e, &mut msgs, &mut names));
    asm.finish(end, ts, &mut |o| {
        if let Output::Anomaly(a) = o {
            names.push(a.name)
        }
    });
    (msgs, names)
}

/// The WebSocket part of a direction: after the HTTP head.
fn ws_part(s: &Stream) -> Option<(usize, Vec<usize>)> {
    let head = s.bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let segs = s
        .segs
        .iter()
        .filter(|&&x| x > head)
        .map(|&x| x - head)
        .collect();
    Some((head, segs))
}

fn pieces<'a>(
    bytes: &'a [u8],
    segs: &[usize],
    from: usize,
    lost: Option<usize>,
) -> Vec<(u64, &'a [u8], bool)> {
    let mut bounds: Vec<usize> = vec![from];
    bounds.extend(segs.iter().copied().filter(|&x| x > from));
    bounds.push(bytes.len());
    bounds
        .windows(2)
        .filter(|w| w[0] < w[1])
        .map(|w| (w[0] as u64, &bytes[w[0]..w[1]], lost == Some(w[0])))
        .collect()
}

#[derive(Default, Debug)]
struct Tally {
    cut_expected: u64,
    cut_recovered: u64,
    cut_no_start: u64,
    loss_expected: u64,
    loss_recovered: u64,
    loss_cases: u64,
}

const UNCOMPRESSED: &[&str] = &[
    "py-basic",
    "py-close-codes",
    "py-concurrent",
    "py-ipv6",
    "node-basic",
];

fn check(name: &str, t: &mut Tally) {
    let flows = read(&format!("{name}.pcap"));
    let truth = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("testdata/real/{name}.truth.jsonl")),
    )
    .expect("truth");
    let mut want: BTreeMap<(u16, u8), Vec<String>> = BTreeMap::new();
    for l in truth.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(l).expect("json");
        let port = v["client_port"].as_u64().expect("port") as u16;
        let side = u8::from(v["dir"] == "s2c");
        want.entry((port, side))
            .or_default()
            .push(v["sha256"].as_str().expect("sha").to_owned());
    }
    for ((port, side), s) in &flows {
        let Some((head, segs)) = ws_part(s) else {
            continue;
        };
        let bytes = &s.bytes[head..];
        let masked = *side == 0;
        let (reference, names) = decode(&pieces(bytes, &segs, 0, None), masked, false);
        let hex: Vec<String> = reference
            .iter()
            .map(|m| m.sha.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        assert_eq!(
            Some(&hex),
            want.get(&(*port, *side)),
            "{name} {port} {side}: reference decode differs from the truth ({names:?})"
        );
        let known: BTreeSet<&M> = reference.iter().collect();
        // (a) cut at every segment boundary.
        for &cut in &segs {
            let expected: Vec<&M> = reference.iter().filter(|m| m.start >= cut as u64).collect();
            t.cut_expected += expected.len() as u64;
            let window = &bytes[cut..bytes.len().min(cut + ws::chain::SEARCH_LIMIT)];
            let Some(st) = ws::probe(window) else {
                t.cut_no_start += 1;
                continue;
            };
            assert_eq!(
                st.masked, masked,
                "{name} {port} {side} cut {cut}: wrong direction"
            );
            let (got, _) = decode(&pieces(bytes, &segs, cut + st.offset, None), masked, false);
            for m in &got {
                assert!(
                    known.contains(m),
                    "{name} {port} {side} cut {cut}: invented {m:?}"
                );
            }
            t.cut_recovered += expected.iter().filter(|m| got.contains(m)).count() as u64;
        }
        // (b) each single segment lost.
        for (i, &lost) in segs.iter().enumerate() {
            let lost_end = segs.get(i + 1).copied().unwrap_or(bytes.len()) as u64;
            let untouched: Vec<&M> = reference
                .iter()
                .filter(|m| m.end <= lost as u64 || m.start >= lost_end)
                .collect();
            t.loss_cases += 1;
            t.loss_expected += untouched.len() as u64;
            let (got, _) = decode(&pieces(bytes, &segs, 0, Some(lost)), masked, true);
            for m in &got {
                assert!(
                    known.contains(m),
                    "{name} {port} {side} lost seg at {lost}: invented {m:?}"
                );
            }
            t.loss_recovered += untouched.iter().filter(|m| got.contains(m)).count() as u64;
        }
    }
}

#[test]
fn real_captures_cut_and_single_loss() {
    let mut t = Tally::default();
    for name in UNCOMPRESSED {
        check(name, &mut t);
    }
    eprintln!("recovery on testdata/real (uncompressed captures): {t:?}");
    eprintln!(
        "cut: {}/{} messages after the cut recovered ({:.2}%), {} cuts without a start; single loss: {}/{} untouched messages recovered ({:.2}%) over {} cases",
        t.cut_recovered,
        t.cut_expected,
        100.0 * t.cut_recovered as f64 / t.cut_expected.max(1) as f64,
        t.cut_no_start,
        t.loss_recovered,
        t.loss_expected,
        100.0 * t.loss_recovered as f64 / t.loss_expected.max(1) as f64,
        t.loss_cases
    );
    assert!(t.cut_expected > 0 && t.loss_expected > 0);
    // Measured 84.2% and 95.4% (see the report in docs/limits.md): the cut
    // misses the messages of a tail too short for the chain test (fewer than
    // 5 frames after the cut) and those behind a frame longer than the 64 KiB
    // search bound. Floors just under the measured figures.
    assert!(t.cut_recovered * 100 >= t.cut_expected * 80, "{t:?}");
    assert!(t.loss_recovered * 1000 >= t.loss_expected * 950, "{t:?}");
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// 1% of segments lost on a synthetic stream: of the messages the loss did
/// not touch but that a decoder without resync loses (they come after a
/// loss that hit a header), how many the resyncing decoder recovers.
#[test]
fn one_percent_segment_loss() {
    for masked in [false, true] {
        let mut x = 0x1234_5678_9abc_def1u64 + u64::from(masked);
        let mut bytes = Vec::new();
        for i in 0..5000u32 {
            let len = (xorshift(&mut x) % 1500) as usize + 1;
            let payload: Vec<u8> = (0..len).map(|_| xorshift(&mut x) as u8).collect();
            let key = masked.then(|| (xorshift(&mut x) as u32).to_be_bytes());
            let op = if i % 3 == 0 {
                ws::opcode::TEXT
            } else {
                ws::opcode::BINARY
            };
            ws::encode_frame(&mut bytes, true, 0, op, key, &payload);
        }
        let segs: Vec<usize> = (0..bytes.len()).step_by(1448).collect();
        let lost: BTreeSet<usize> = segs
            .iter()
            .copied()
            .filter(|_| xorshift(&mut x) % 100 == 0)
            .collect();
        let pieces: Vec<(u64, &[u8], bool)> = segs
            .iter()
            .map(|&a| {
                let b = (a + 1448).min(bytes.len());
                (a as u64, &bytes[a..b], lost.contains(&a))
            })
            .collect();
        let (reference, _) = decode(&pieces_all(&pieces), masked, false);
        let touched = |m: &M| {
            lost.iter()
                .any(|&a| (m.start as usize) < a + 1448 && (m.end as usize) > a)
        };
        let (plain, _) = decode(&pieces, masked, false);
        let (resynced, names) = decode(&pieces, masked, true);
        let known: BTreeSet<&M> = reference.iter().collect();
        for m in &resynced {
            assert!(known.contains(m), "invented {m:?}");
        }
        let after_lost_header: Vec<&M> = reference
            .iter()
            .filter(|m| !touched(m) && !plain.contains(m))
            .collect();
        let recovered = after_lost_header
            .iter()
            .filter(|m| resynced.contains(m))
            .count();
        let untouched = reference.iter().filter(|m| !touched(m)).count();
        let all = resynced.len();
        eprintln!(
            "1% loss ({}, {} of {} segments lost): {} messages, {} untouched; without resync {} lost after a lost header; resync recovers {recovered} of them ({:.1}%), {all} of {untouched} untouched in all; resyncs: {}",
            if masked { "client" } else { "server" },
            lost.len(),
            segs.len(),
            reference.len(),
            untouched,
            after_lost_header.len(),
            100.0 * recovered as f64 / after_lost_header.len().max(1) as f64,
            names.iter().filter(|n| **n == "ws_resync").count()
        );
        assert!(!after_lost_header.is_empty());
        assert!(recovered * 100 >= after_lost_header.len() * 95);
    }
}

fn pieces_all<'a>(p: &[(u64, &'a [u8], bool)]) -> Vec<(u64, &'a [u8], bool)> {
    p.iter().map(|&(o, b, _)| (o, b, false)).collect()
}

/// The Arkime corpus capture: 98 TCP streams of other protocols around one
/// WebSocket session. No direction of any other flow may look like frames.
#[test]
#[ignore = "KNOWN FALSE POSITIVES, not yet fixed: small binary payloads (port 33002: runs of zero bytes as empty continuations; port 49407) pass the chain test"]
fn arkime_synthetic_other_flows_give_no_start() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/corpus/arkime/arkime_synthetic.pcap");
    let flows = read_path(&path);
    let mut checked = 0;
    let mut ws_ports = BTreeSet::new();
    for ((port, _), s) in &flows {
        let head = &s.bytes[..s.bytes.len().min(4096)];
        if head
            .windows(9)
            .any(|w| w.eq_ignore_ascii_case(b"websocket"))
        {
            ws_ports.insert(*port);
        }
    }
    for ((port, side), s) in &flows {
        if ws_ports.contains(port) || s.bytes.is_empty() {
            continue;
        }
        checked += 1;
        let window = &s.bytes[..s.bytes.len().min(ws::chain::SEARCH_LIMIT)];
        assert_eq!(
            ws::probe(window),
            None,
            "flow from port {port} side {side} taken for WebSocket"
        );
        assert_eq!(
            ws::chain::search(window, None, &s.segs).map(|st| st.offset),
            None,
            "flow from port {port} side {side} taken for WebSocket (with segment boundaries)"
        );
    }
    eprintln!("arkime_synthetic: {checked} non-WebSocket directions, no start found; WebSocket client ports {ws_ports:?}");
    assert!(checked >= 50, "only {checked} directions checked");
    assert!(!ws_ports.is_empty());
}
