//! The adversarial corpus: hostile captures built with `wssniff::synth`
//! (independent of the analyzer), run through the whole pipeline, and
//! compared with committed golden summaries in
//! `testdata/adversarial/NAME.expected.json` (anomaly counts by name, gaps,
//! sessions, messages by opcode, selected counters). The captures are
//! generated on the fly (some are tens of MB); the expectations are committed.
//! Re-bless after an intended change with `WSSNIFF_BLESS=1 cargo test
//! --release --test it adversarial::`, and review the diff.
//!
//! Some cases also check specifics in code (payload bytes, anomaly details),
//! so that a golden file blessed from a wrong result cannot hide a bug there.

use flate2::{Compress, Compression};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wssniff::capture::CaptureReader;
use wssniff::pipeline::{Analyzer, Config};
use wssniff::session::StatsRecord;
use wssniff::sink::Collect;
use wssniff::synth::conn::Conn;
use wssniff::synth::packet::{flags, tcp_packet};
use wssniff::synth::pcap::PcapWriter;
use wssniff::synth::ws::{self as sws, LenForm};
use wssniff::tcp::OverlapPolicy;
use wssniff::types::{Dir, Timestamp};

type W = PcapWriter<Vec<u8>>;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const MASK: Option<[u8; 4]> = Some([0x11, 0x22, 0x33, 0x44]);

fn t0() -> Timestamp {
    Timestamp::new(1_700_000_000, 0)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn conn(port: u16) -> Conn {
    Conn::new(
        addr(&format!("10.0.0.1:{port}")),
        addr("10.0.0.2:80"),
        1000,
        50_000,
    )
}

/// TCP handshake plus the upgrade; the connection is ready for frames.
fn ws_open(w: &mut W, c: &mut Conn, req_ext: Option<&str>, resp_ext: Option<&str>) {
    c.handshake(w, t0()).unwrap();
    c.send(
        w,
        Dir::C2s,
        &sws::upgrade_request("example", "/ws", KEY, req_ext),
        1460,
    )
    .unwrap();
    c.send(w, Dir::S2c, &sws::upgrade_response(KEY, resp_ext), 1460)
        .unwrap();
}

fn frame(fin: bool, rsv: u8, op: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    sws::frame(&mut v, fin, rsv, op, mask, payload);
    v
}

fn text(payload: &str, dir: Dir) -> Vec<u8> {
    let mask = if dir == Dir::C2s { MASK } else { None };
    frame(true, 0, 1, mask, payload.as_bytes())
}

fn close_both(w: &mut W, c: &mut Conn) {
    c.send(
        w,
        Dir::C2s,
        &frame(true, 0, 8, MASK, &sws::close_payload(1000, "")),
        1460,
    )
    .unwrap();
    c.send(
        w,
        Dir::S2c,
        &frame(true, 0, 8, None, &sws::close_payload(1000, "")),
        1460,
    )
    .unwrap();
    c.fin(w, Dir::C2s).unwrap();
    c.fin(w, Dir::S2c).unwrap();
}

fn new_writer() -> W {
    PcapWriter::new(Vec::new()).unwrap()
}

/// Runs a capture held in memory through the pipeline.
fn analyse(pcap: Vec<u8>, cfg: Config) -> (Collect, StatsRecord) {
    let mut r = CaptureReader::from_reader(Box::new(Cursor::new(pcap)), "adversarial").unwrap();
    let mut an = Analyzer::new(cfg, Collect::default());
    while let Some(p) = r.next_packet().expect("generated captures are well-formed") {
        an.packet(&p).unwrap();
    }
    an.finish().unwrap()
}

/// Counters worth pinning: the ones that say a limit or an attack was seen.
const PINNED_COUNTERS: &[&str] = &[
    "tcp_flows_evicted",
    "tcp_flows_replaced",
    "tcp_flows_timed_out",
    "tcp_keepalives",
    "tcp_zero_window_probes",
    "tcp_overlaps",
    "tcp_conflicting_overlaps",
    "tcp_conflicting_retransmissions",
    "tcp_limit_hits",
    "tcp_limit_gap_bytes",
    "tcp_late_bytes",
    "tcp_out_of_window_segments",
    "tcp_syn_retransmissions",
    "tcp_syn_seq_changes",
    "tcp_syn_in_window",
    "tcp_rst_payload_bytes",
    "tcp_ack_gap_bytes",
    "decode_snaplen_cut",
];

fn summary(description: &str, c: &Collect, s: &StatsRecord) -> Value {
    let counters: BTreeMap<&str, u64> = PINNED_COUNTERS
        .iter()
        .filter_map(|k| s.counters.get(*k).filter(|v| **v > 0).map(|v| (*k, *v)))
        .collect();
    json!({
        "description": description,
        "flows": s.flows,
        "sessions": s.sessions,
        "messages": s.messages,
        "gaps": s.gaps,
        "gap_bytes": s.gap_bytes,
        "anomalies": s.anomalies,
        "skipped": s.skipped,
        "counters": counters,
        "incomplete_sessions": c.ends.iter().filter(|e| e.incomplete).count(),
    })
}

/// Compares with (or, under WSSNIFF_BLESS=1, writes) the golden summary.
fn golden(name: &str, got: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/adversarial")
        .join(format!("{name}.expected.json"));
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if std::env::var_os("WSSNIFF_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; generate it with WSSNIFF_BLESS=1 cargo test --release --test it adversarial::",
            path.display()
        )
    });
    let want: Value = serde_json::from_str(&want).unwrap();
    assert_eq!(
        &want,
        got,
        "{name}: output differs from {}; if intended, re-bless with WSSNIFF_BLESS=1",
        path.display()
    );
}

/// Runs one case, checks its golden summary, and returns the records for
/// case-specific checks.
fn case(name: &str, description: &str, pcap: Vec<u8>, cfg: Config) -> (Collect, StatsRecord) {
    let start = Instant::now();
    let (c, s) = analyse(pcap, cfg);
    // Generous: a hang or a quadratic blow-up shows as minutes, not seconds.
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "{name} took {:?}",
        start.elapsed()
    );
    golden(name, &summary(description, &c, &s));
    (c, s)
}

fn anomaly(s: &StatsRecord, name: &str) -> u64 {
    s.anomalies.get(name).copied().unwrap_or(0)
}

fn texts(c: &Collect, dir: &str) -> Vec<String> {
    let dir: wssniff::types::Dir = serde_json::from_value(serde_json::Value::from(dir)).unwrap();
    c.messages
        .iter()
        .filter(|m| m.dir == dir)
        .filter_map(|m| m.text.clone())
        .collect()
}

// ---------------------------------------------------------------- TCP

/// Frame-relative range of the conflicting segment, per shape; the first
/// out-of-order piece is 20..30.
fn overlap_range(shape: &str) -> (usize, usize) {
    match shape {
        "same_start" => (20, 30),
        "starting_before" => (15, 25),
        "starting_after" => (25, 35),
        "contained" => (22, 27),
        _ => unreachable!(),
    }
}

/// The four overlap shapes: the server frame's bytes 20..30 arrive out of
/// order, then a conflicting version (lower-case payload) of an overlapping
/// range, then the rest.
fn overlap_capture(shape: &str) -> Vec<u8> {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let good = text("ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN", Dir::S2c);
    let bad = text("abcdefghijklmnopqrstuvwxyzabcdefghijklmn", Dir::S2c);
    let base = c.next_offset(Dir::S2c);
    let (lo, hi) = overlap_range(shape);
    let (lo, hi) = (lo as u32, hi as u32);
    c.segment(&mut w, Dir::S2c, base + 20, &good[20..30], flags::ACK)
        .unwrap();
    c.segment(
        &mut w,
        Dir::S2c,
        base + lo,
        &bad[lo as usize..hi as usize],
        flags::ACK,
    )
    .unwrap();
    c.segment(&mut w, Dir::S2c, base, &good[..20], flags::ACK)
        .unwrap();
    c.segment(
        &mut w,
        Dir::S2c,
        base + 30,
        &good[30..],
        flags::ACK | flags::PSH,
    )
    .unwrap();
    c.advance(Dir::S2c, good.len() as u32);
    close_both(&mut w, &mut c);
    w.into_inner()
}

#[test]
fn tcp_overlaps_each_shape_both_policies() {
    for shape in [
        "same_start",
        "starting_before",
        "starting_after",
        "contained",
    ] {
        for (policy, pname) in [
            (OverlapPolicy::First, "first"),
            (OverlapPolicy::Last, "last"),
        ] {
            let mut cfg = Config::default();
            cfg.tcp.overlap = policy;
            let name = format!("tcp_overlap_{shape}_{pname}");
            let (c, s) = case(
                &name,
                "out-of-order segment, then a conflicting overlapping one, then the rest",
                overlap_capture(shape),
                cfg,
            );
            // Starting before: good[..20] then overlaps the buffered bad
            // 15..20, a second conflict. Starting after: bad 30..35 is
            // delivered with the fill, so good[30..] is a conflicting
            // retransmission of delivered bytes, not an overlap.
            let want = if shape == "starting_before" { 2 } else { 1 };
            assert_eq!(anomaly(&s, "tcp_conflicting_overlap"), want, "{name}");
            let retrans = u64::from(shape == "starting_after");
            assert_eq!(
                anomaly(&s, "tcp_conflicting_retransmission"),
                retrans,
                "{name}"
            );
            let a = c
                .anomalies
                .iter()
                .find(|a| a.name == "tcp_conflicting_overlap")
                .unwrap();
            // Both versions are named: their lengths and hashes.
            assert_eq!(a.detail.matches("fnv1a").count(), 2, "{name}: {}", a.detail);
            assert!(a.detail.contains("segment len 10"), "{name}: {}", a.detail);
            // Byte-exact: arrival order is good[20..30], bad[lo..hi],
            // good[..20], good[30..]. Under `first` each byte is its first
            // arrival (bad only outside 20..30); under `last` its newest
            // while buffered (bad inside 20..30), and bytes from 30 on were
            // delivered before good[30..] came, so they stay bad.
            let (lo, hi) = overlap_range(shape);
            let mut want = *b"ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN";
            for i in lo..hi {
                let in_first_piece = (20..30).contains(&i);
                if i >= 30 || in_first_piece == (policy == OverlapPolicy::Last) {
                    want[i - 2] = want[i - 2].to_ascii_lowercase();
                }
            }
            let want = String::from_utf8(want.to_vec()).unwrap();
            assert_eq!(texts(&c, "s2c"), [want], "{name}");
        }
    }
}

#[test]
fn tcp_conflicting_retransmission() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let base = c.next_offset(Dir::S2c);
    c.send(&mut w, Dir::S2c, &text("original", Dir::S2c), 1460)
        .unwrap();
    c.segment(
        &mut w,
        Dir::S2c,
        base,
        &text("ORIGINAL", Dir::S2c),
        flags::ACK,
    )
    .unwrap();
    close_both(&mut w, &mut c);
    let (c, s) = case(
        "tcp_conflicting_retransmission",
        "a retransmission whose bytes differ from what was already delivered",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "tcp_conflicting_retransmission"), 1);
    assert_eq!(texts(&c, "s2c"), ["original"]);
}

#[test]
fn tcp_keepalive_and_zero_window_probe_inject_nothing() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let f = text("hello", Dir::S2c);
    c.send(&mut w, Dir::S2c, &f[..3], 1460).unwrap();
    // Keepalive: one garbage byte at next-1.
    let next = c.next_offset(Dir::S2c);
    c.segment(&mut w, Dir::S2c, next - 1, b"\0", flags::ACK)
        .unwrap();
    // Zero-window probe: the client closes its window, the server probes
    // with one (wrong) byte at next.
    c.set_window(0);
    c.segment(&mut w, Dir::C2s, c.next_offset(Dir::C2s), b"", flags::ACK)
        .unwrap();
    c.set_window(65535);
    c.segment(&mut w, Dir::S2c, next, b"Z", flags::ACK).unwrap();
    c.segment(&mut w, Dir::C2s, c.next_offset(Dir::C2s), b"", flags::ACK)
        .unwrap();
    c.send(&mut w, Dir::S2c, &f[3..], 1460).unwrap();
    close_both(&mut w, &mut c);
    let (c, s) = case(
        "tcp_keepalive_zero_window",
        "keepalive (1 byte at next-1) and zero-window probe (1 byte while the window is 0) carry no stream data",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(texts(&c, "s2c"), ["hello"]);
    assert_eq!(s.counters["tcp_keepalives"], 1);
    assert_eq!(s.counters["tcp_zero_window_probes"], 1);
    assert!(s.anomalies.is_empty(), "{:?}", s.anomalies);
}

#[test]
fn tcp_rst_in_and_out_of_window_and_data_after() {
    // Out of window: a RST far from the next sequence number is ignored or
    // reported; the session goes on.
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(&mut w, Dir::S2c, &text("one", Dir::S2c), 1460)
        .unwrap();
    let far = c.next_offset(Dir::S2c).wrapping_add(1 << 31);
    c.segment(&mut w, Dir::S2c, far, b"", flags::RST).unwrap();
    c.send(&mut w, Dir::S2c, &text("two", Dir::S2c), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let (c1, _) = case(
        "tcp_rst_out_of_window",
        "a RST 2^31 away from the next sequence number, then more data",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(texts(&c1, "s2c"), ["one", "two"]);

    // In window, then data after the RST (delivered, flagged).
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(&mut w, Dir::S2c, &text("one", Dir::S2c), 1460)
        .unwrap();
    c.rst(&mut w, Dir::S2c).unwrap();
    c.send(&mut w, Dir::S2c, &text("after", Dir::S2c), 1460)
        .unwrap();
    let (c2, s2) = case(
        "tcp_rst_then_data",
        "an in-window RST, then payload after it",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(c2.ends.len(), 1);
    assert_eq!(anomaly(&s2, "tcp_data_after_rst"), 1);
    assert_eq!(texts(&c2, "s2c")[0], "one");
}

#[test]
fn tcp_syn_flood_on_one_tuple_is_bounded() {
    let mut w = new_writer();
    let mut buf = Vec::new();
    let mut rng = wssniff::synth::Rng::new(1);
    for i in 0..20_000u32 {
        tcp_packet(
            &mut buf,
            addr("10.0.0.1:40000"),
            addr("10.0.0.2:80"),
            rng.next_u32(),
            0,
            flags::SYN,
            1024,
            &[],
        );
        w.write_packet(Timestamp::new(1_700_000_000, i * 1000), &buf)
            .unwrap();
    }
    let (_, s) = case(
        "tcp_syn_flood_one_tuple",
        "20,000 SYNs with random sequence numbers on one 4-tuple",
        w.into_inner(),
        Config::default(),
    );
    assert!(s.counters["tcp_peak_flows"] <= 1, "{:?}", s.counters);
}

#[test]
fn tcp_port_reuse_is_a_new_session() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(&mut w, Dir::S2c, &text("first", Dir::S2c), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let mut c2 = Conn::new(
        addr("10.0.0.1:40000"),
        addr("10.0.0.2:80"),
        7_000_000,
        9_000_000,
    );
    c2.handshake(&mut w, Timestamp::new(1_700_000_001, 0))
        .unwrap();
    c2.send(
        &mut w,
        Dir::C2s,
        &sws::upgrade_request("example", "/ws", KEY, None),
        1460,
    )
    .unwrap();
    c2.send(&mut w, Dir::S2c, &sws::upgrade_response(KEY, None), 1460)
        .unwrap();
    c2.send(&mut w, Dir::S2c, &text("second", Dir::S2c), 1460)
        .unwrap();
    close_both(&mut w, &mut c2);
    let (c, s) = case(
        "tcp_port_reuse",
        "a closed connection's 4-tuple reused by a new SYN",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(s.sessions, 2);
    assert_eq!(texts(&c, "s2c"), ["first", "second"]);
}

/// Only one direction's packets: the other side's are filtered out.
fn one_sided(keep: Dir) -> Vec<u8> {
    let mut full = new_writer();
    let mut c = conn(40000);
    ws_open(&mut full, &mut c, None, None);
    c.send(&mut full, Dir::C2s, &text("ping", Dir::C2s), 1460)
        .unwrap();
    c.send(&mut full, Dir::S2c, &text("pong", Dir::S2c), 1460)
        .unwrap();
    close_both(&mut full, &mut c);
    filter_capture(&full.into_inner(), |pkt| {
        // Ethernet(14) + IPv4 source at 12..16: 10.0.0.1 is the client.
        let from_client = pkt.get(26..30) == Some(&[10, 0, 0, 1][..]);
        from_client == (keep == Dir::C2s)
    })
}

/// Keeps the packets of a classic LE pcap for which `keep` says so.
fn filter_capture(pcap: &[u8], keep: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let mut out = pcap[..24].to_vec();
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let caplen = u32::from_le_bytes(pcap[pos + 8..pos + 12].try_into().unwrap()) as usize;
        let rec = &pcap[pos..pos + 16 + caplen];
        if keep(&rec[16..]) {
            out.extend_from_slice(rec);
        }
        pos += 16 + caplen;
    }
    out
}

#[test]
fn tcp_one_sided_captures() {
    let (c, _) = case(
        "tcp_one_sided_c2s",
        "only client-to-server packets: the upgrade request is seen, never a 101",
        one_sided(Dir::C2s),
        Config::default(),
    );
    assert!(c.sessions.is_empty());
    assert!(c
        .anomalies
        .iter()
        .any(|a| a.name == "http_upgrade_unanswered"));
    let (c, _) = case(
        "tcp_one_sided_s2c",
        "only server-to-client packets: a 101 with no request",
        one_sided(Dir::S2c),
        Config::default(),
    );
    assert!(c.sessions.is_empty());
}

#[test]
fn tcp_one_byte_out_of_order_segments() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let payload: String = (0..3000).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let f = text(&payload, Dir::S2c);
    let base = c.next_offset(Dir::S2c);
    for i in (0..f.len()).rev() {
        c.segment(&mut w, Dir::S2c, base + i as u32, &f[i..=i], flags::ACK)
            .unwrap();
    }
    c.advance(Dir::S2c, f.len() as u32);
    close_both(&mut w, &mut c);
    let (c, _) = case(
        "tcp_one_byte_reverse_segments",
        "a 3,004-byte frame sent as 1-byte segments in reverse order",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(texts(&c, "s2c"), [payload]);
}

#[test]
fn tcp_reassembly_limits() {
    // Out-of-order bytes limit (reduced): a hole, then 200 KiB beyond it.
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let base = c.next_offset(Dir::S2c);
    for i in 0..200u32 {
        c.segment(
            &mut w,
            Dir::S2c,
            base + 100 + i * 1024,
            &[b'x'; 1024],
            flags::ACK,
        )
        .unwrap();
    }
    let mut cfg = Config::default();
    cfg.tcp.max_ooo_bytes_per_dir = 64 << 10;
    let (_, s) = case(
        "tcp_ooo_bytes_limit",
        "a 100-byte hole then 200 KiB of out-of-order data, with --ooo-limit 64KiB",
        w.into_inner(),
        cfg,
    );
    assert!(anomaly(&s, "tcp_reassembly_limit") >= 1);

    // Segment-count limit (reduced).
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let base = c.next_offset(Dir::S2c);
    for i in 0..100u32 {
        c.segment(&mut w, Dir::S2c, base + 10 + 2 * i, b"y", flags::ACK)
            .unwrap();
    }
    let mut cfg = Config::default();
    cfg.tcp.max_segments_per_dir = 16;
    let (_, s) = case(
        "tcp_segment_count_limit",
        "100 one-byte out-of-order segments with holes between, with --max-segments 16",
        w.into_inner(),
        cfg,
    );
    assert!(anomaly(&s, "tcp_reassembly_limit") >= 1);
}

#[test]
fn tcp_flow_limit_and_timeouts() {
    let mut w = new_writer();
    for i in 0..300u16 {
        let mut c = conn(10_000 + i);
        c.handshake(&mut w, Timestamp::new(1_700_000_000 + i64::from(i), 0))
            .unwrap();
    }
    let mut cfg = Config::default();
    cfg.tcp.max_flows = 100;
    let (_, s) = case(
        "tcp_max_flows",
        "300 connections one second apart, with --max-flows 100",
        w.into_inner(),
        cfg,
    );
    assert!(s.counters["tcp_peak_flows"] <= 100);
    assert!(s.counters["tcp_flows_evicted"] + s.counters["tcp_flows_timed_out"] >= 200);

    // Idle timeouts in packet time: a session idle for two hours, then data.
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(&mut w, Dir::S2c, &text("before", Dir::S2c), 1460)
        .unwrap();
    c.set_time(Timestamp::new(1_700_000_000 + 7200, 0));
    c.send(&mut w, Dir::S2c, &text("after", Dir::S2c), 1460)
        .unwrap();
    let (c, s) = case(
        "tcp_idle_timeout",
        "a session idle for 2 h (over --timeout-established 3600), then more data",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(s.counters["tcp_flows_timed_out"], 1);
    assert_eq!(texts(&c, "s2c")[0], "before");
}

// ---------------------------------------------------------------- WebSocket frames

/// A server segment with the IPv4 total length set to 0 (segmentation
/// offload), so one captured segment can carry more than 64 KiB.
fn jumbo_segment(w: &mut W, c: &Conn, payload: &[u8]) {
    let mut buf = Vec::new();
    let seq = c.seq(Dir::S2c, c.next_offset(Dir::S2c));
    let ack = c.seq(Dir::C2s, c.next_offset(Dir::C2s));
    tcp_packet(
        &mut buf,
        c.server(),
        c.client(),
        seq,
        ack,
        flags::ACK,
        65535,
        payload,
    );
    buf[16] = 0;
    buf[17] = 0;
    w.write_packet(c.time(), &buf).unwrap();
}

#[test]
fn ws_100k_two_byte_frames_in_one_segment() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let mut data = Vec::with_capacity(200_000);
    for _ in 0..100_000 {
        data.extend_from_slice(&[0x82, 0x00]); // empty binary frame
    }
    jumbo_segment(&mut w, &c, &data);
    c.advance(Dir::S2c, data.len() as u32);
    close_both(&mut w, &mut c);
    let (_, s) = case(
        "ws_100k_two_byte_frames",
        "100,000 empty binary frames (2 bytes each) in one 200,000-byte segment",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(s.messages["binary"], 100_000);
}

#[test]
fn ws_length_forms() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let mut s2c = Vec::new();
    sws::frame_raw_len(&mut s2c, true, 0, 1, None, b"u16", LenForm::U16);
    sws::frame_raw_len(&mut s2c, true, 0, 1, None, b"u64", LenForm::U64);
    c.send(&mut w, Dir::S2c, &s2c, 1460).unwrap();
    // Then a 64-bit length with the top bit set: the direction desyncs.
    let mut bad = Vec::new();
    sws::frame_header(&mut bad, true, 0, 2, None, 1 << 63 | 5, LenForm::U64);
    bad.extend_from_slice(b"hello");
    c.send(&mut w, Dir::S2c, &bad, 1460).unwrap();
    c.send(&mut w, Dir::S2c, &text("lost", Dir::S2c), 1460)
        .unwrap();
    // The client direction is unaffected.
    c.send(&mut w, Dir::C2s, &text("fine", Dir::C2s), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let (c, s) = case(
        "ws_length_forms",
        "non-minimal 16- and 64-bit lengths, then a 64-bit length with the top bit set",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "ws_non_minimal_length"), 2);
    assert_eq!(anomaly(&s, "ws_length_top_bit"), 1);
    assert_eq!(texts(&c, "s2c"), ["u16", "u64"]);
    assert_eq!(texts(&c, "c2s")[0], "fine");
}

#[test]
fn ws_masking_and_rsv_violations() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(
        &mut w,
        Dir::S2c,
        &frame(true, 0, 1, MASK, b"masked by server"),
        1460,
    )
    .unwrap();
    c.send(
        &mut w,
        Dir::C2s,
        &frame(true, 0, 1, None, b"unmasked client"),
        1460,
    )
    .unwrap();
    c.send(
        &mut w,
        Dir::S2c,
        &frame(true, 0b100, 1, None, b"rsv1"),
        1460,
    )
    .unwrap();
    c.send(
        &mut w,
        Dir::S2c,
        &frame(true, 0b011, 2, None, b"rsv23"),
        1460,
    )
    .unwrap();
    close_both(&mut w, &mut c);
    let (c, s) = case(
        "ws_masking_rsv",
        "a masked server frame, an unmasked client frame, RSV bits without an extension",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "ws_masked_server_frame"), 1);
    assert_eq!(anomaly(&s, "ws_unmasked_client_frame"), 1);
    assert_eq!(anomaly(&s, "ws_rsv_without_extension"), 2);
    // Masking violations still decode the payload right.
    assert_eq!(texts(&c, "s2c")[0], "masked by server");
    assert_eq!(texts(&c, "c2s")[0], "unmasked client");
}

#[test]
fn ws_control_frame_violations() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let mut s2c = Vec::new();
    s2c.extend(frame(true, 0, 9, None, &[b'p'; 200])); // oversized ping
    s2c.extend(frame(false, 0, 9, None, b"frag ping")); // fragmented ping
    s2c.extend(frame(true, 0, 0, None, b"cont")); // its "continuation"
    s2c.extend(frame(false, 0, 1, None, b"hel")); // a fragmented message ...
    s2c.extend(frame(true, 0, 10, None, b"interleaved pong")); // ... with a pong inside
    s2c.extend(frame(true, 0, 0, None, b"lo"));
    c.send(&mut w, Dir::S2c, &s2c, 1460).unwrap();
    close_both(&mut w, &mut c);
    let (c, s) = case(
        "ws_control_frames",
        "an oversized ping (200 bytes), a fragmented ping, a pong interleaved in a fragmented text",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "ws_control_too_long"), 1);
    assert_eq!(anomaly(&s, "ws_control_fragmented"), 1);
    assert!(
        texts(&c, "s2c").contains(&"hello".to_owned()),
        "{:?}",
        texts(&c, "s2c")
    );
}

#[test]
fn ws_close_violations_and_data_after_close() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    let mut s2c = Vec::new();
    s2c.extend(frame(true, 0, 8, None, &sws::close_payload(1005, "")));
    s2c.extend(frame(true, 0, 8, None, &sws::close_payload(999, "x")));
    let mut bad_reason = 1000u16.to_be_bytes().to_vec();
    bad_reason.extend_from_slice(b"bad \xff\xfe utf8");
    s2c.extend(frame(true, 0, 8, None, &bad_reason));
    s2c.extend(frame(true, 0, 8, None, b"\x03")); // one-byte close payload
    s2c.extend(text("after close", Dir::S2c));
    c.send(&mut w, Dir::S2c, &s2c, 1460).unwrap();
    c.fin(&mut w, Dir::S2c).unwrap();
    c.fin(&mut w, Dir::C2s).unwrap();
    let (_, s) = case(
        "ws_close_violations",
        "close codes 1005 and 999, a non-UTF-8 reason, a 1-byte close payload, data after close",
        w.into_inner(),
        Config::default(),
    );
    assert!(
        s.anomalies.keys().any(|k| k.contains("close")),
        "{:?}",
        s.anomalies
    );
}

#[test]
fn ws_message_limits() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, None, None);
    c.send(
        &mut w,
        Dir::S2c,
        &frame(true, 0, 2, None, &[7u8; 5000]),
        1460,
    )
    .unwrap();
    for i in 0..40 {
        c.send(
            &mut w,
            Dir::S2c,
            &frame(i == 39, 0, if i == 0 { 1 } else { 0 }, None, b"f"),
            1460,
        )
        .unwrap();
    }
    close_both(&mut w, &mut c);
    let mut cfg = Config::default();
    cfg.message.max_message_bytes = 1024;
    cfg.message.max_fragments = 16;
    let (c, s) = case(
        "ws_message_limits",
        "a 5,000-byte message with --max-message 1024, a 40-frame message with --max-fragments 16",
        w.into_inner(),
        cfg,
    );
    assert_eq!(anomaly(&s, "ws_message_truncated"), 1);
    assert_eq!(anomaly(&s, "ws_too_many_fragments"), 1);
    // The length is the real one although only the start is kept.
    assert!(c.messages.iter().any(|m| m.len == 5000));
    assert_eq!(texts(&c, "s2c"), ["f".repeat(40)]);
}

// ---------------------------------------------------------------- HTTP

#[test]
fn http_megabyte_header_one_byte_per_segment() {
    let mut w = new_writer();
    let mut c = conn(40000);
    c.handshake(&mut w, t0()).unwrap();
    let mut req = b"GET /ws HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    req.resize(req.len() + (1 << 20), b'a');
    req.extend_from_slice(b"\r\n\r\n");
    c.send(&mut w, Dir::C2s, &req, 1).unwrap();
    c.fin(&mut w, Dir::C2s).unwrap();
    let (_, s) = case(
        "http_1mib_header_bytewise",
        "a request with a 1 MiB header, one byte per segment",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "http_head_too_large"), 1);
}

#[test]
fn http_extensions_with_100k_commas_and_many_headers() {
    let mut w = new_writer();
    let mut c = conn(40000);
    let commas = ",".repeat(100_000);
    let ext = format!("permessage-deflate{commas}");
    ws_open(&mut w, &mut c, Some(&ext), Some(&ext));
    c.send(&mut w, Dir::S2c, &text("still decoded", Dir::S2c), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let mut cfg = Config::default();
    cfg.http.max_head_bytes = 256 << 10;
    let (_, s) = case(
        "http_extensions_100k_commas",
        "Sec-WebSocket-Extensions with 100,000 commas (--max-handshake 256KiB)",
        w.into_inner(),
        cfg,
    );
    assert_eq!(s.sessions, 1);

    let mut w = new_writer();
    let mut c = conn(40000);
    c.handshake(&mut w, t0()).unwrap();
    let mut req = b"GET /ws HTTP/1.1\r\n".to_vec();
    for i in 0..2000 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    c.send(&mut w, Dir::C2s, &req, 1460).unwrap();
    let (_, s) = case(
        "http_too_many_headers",
        "a request with 2,000 header fields",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "http_too_many_headers"), 1);
}

#[test]
fn http_pending_client_bytes_overflow() {
    let mut w = new_writer();
    let mut c = conn(40000);
    c.handshake(&mut w, t0()).unwrap();
    c.send(
        &mut w,
        Dir::C2s,
        &sws::upgrade_request("example", "/ws", KEY, None),
        1460,
    )
    .unwrap();
    for _ in 0..10 {
        c.send(
            &mut w,
            Dir::C2s,
            &frame(true, 0, 2, MASK, &[1u8; 500]),
            1460,
        )
        .unwrap();
    }
    c.send(&mut w, Dir::S2c, &sws::upgrade_response(KEY, None), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let mut cfg = Config::default();
    cfg.http.max_pending_client_bytes = 2048;
    let (_, s) = case(
        "http_pending_client_overflow",
        "5 KB of client frames before the 101, with --max-pending-client 2048",
        w.into_inner(),
        cfg,
    );
    assert_eq!(anomaly(&s, "http_pending_client_overflow"), 1);
    // Ten 508-byte frames held, 2048 bytes kept: the rest is one gap.
    assert_eq!((s.gaps, s.gap_bytes), (1, 10 * 508 - 2048));
}

// ---------------------------------------------------------------- deflate

const PMD: &str = "permessage-deflate";

#[test]
fn deflate_bomb_is_bounded_and_later_messages_decode() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, Some(PMD), Some(PMD));
    // 1.25 GiB of zeros: ~1.2 MiB compressed (deflate tops out near 1:1032).
    let mut z = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut comp = Vec::with_capacity(2 << 20);
    for _ in 0..1280 {
        z.compress_vec(&zeros, &mut comp, flate2::FlushCompress::None)
            .unwrap();
        if comp.capacity() - comp.len() < 64 << 10 {
            comp.reserve(1 << 20);
        }
    }
    let tail = sws::deflate_message(&mut z, b"");
    comp.extend_from_slice(&tail);
    let bomb = frame(true, 0b100, 2, None, &comp);
    c.send(&mut w, Dir::S2c, &bomb, 1460).unwrap();
    let later = sws::deflate_message(&mut Compress::new(Compression::default(), false), b"later");
    c.send(&mut w, Dir::S2c, &frame(true, 0b100, 1, None, &later), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let pcap = w.into_inner();
    let (c, s) = case(
        "deflate_bomb",
        "a ~1.2 MiB compressed frame inflating to 1.25 GiB, then a normal compressed message",
        pcap,
        Config::default(),
    );
    assert_eq!(anomaly(&s, "deflate_limit"), 1);
    assert_eq!(anomaly(&s, "deflate_work_limit"), 1);
    // The bomb's kept payload is capped at max_inflated_bytes.
    let bomb_msg = c
        .messages
        .iter()
        .find(|m| m.opcode == wssniff::types::Opcode::BINARY)
        .unwrap();
    // Inflation stopped near max_inflate_work (1 GiB), short of the 1.25 GiB.
    assert!(bomb_msg.len < 1280 << 20, "{}", bomb_msg.len);
    // The next message used a fresh window (its sender's compressor was new,
    // and the bomb's window is lost anyway) and still reads right.
    assert!(
        texts(&c, "s2c").contains(&"later".to_owned()),
        "{:?}",
        texts(&c, "s2c")
    );
}

#[test]
fn deflate_invalid_data_and_context_after_gap() {
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, Some(PMD), Some(PMD));
    c.send(
        &mut w,
        Dir::S2c,
        &frame(true, 0b100, 1, None, b"\xff\xff\xff garbage"),
        1460,
    )
    .unwrap();
    let ok = sws::deflate_message(&mut Compress::new(Compression::default(), false), b"fresh");
    c.send(&mut w, Dir::S2c, &frame(true, 0b100, 1, None, &ok), 1460)
        .unwrap();
    close_both(&mut w, &mut c);
    let (c1, s) = case(
        "deflate_invalid_data",
        "a compressed frame with invalid deflate data, then a valid one",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(anomaly(&s, "deflate_error"), 1);
    assert!(texts(&c1, "s2c").contains(&"fresh".to_owned()));

    // Context takeover across a hole: 3 payload bytes of message 2 are lost
    // (the frame stays in sync), message 3 refers back to the window.
    let mut w = new_writer();
    let mut c = conn(40000);
    ws_open(&mut w, &mut c, Some(PMD), Some(PMD));
    let mut z = Compress::new(Compression::default(), false);
    let words = "the quick brown fox jumps over the lazy dog";
    for (i, m) in [words, "unrelated second message", words]
        .iter()
        .enumerate()
    {
        let f = frame(
            true,
            0b100,
            1,
            None,
            &sws::deflate_message(&mut z, m.as_bytes()),
        );
        if i == 1 {
            c.send(&mut w, Dir::S2c, &f[..4], 1460).unwrap();
            c.advance(Dir::S2c, 3); // never captured
            c.send(&mut w, Dir::S2c, &f[7..], 1460).unwrap();
        } else {
            c.send(&mut w, Dir::S2c, &f, 1460).unwrap();
        }
    }
    close_both(&mut w, &mut c);
    let (c2, s) = case(
        "deflate_context_after_gap",
        "context takeover: 3 bytes of message 2 lost in a hole, message 3 refers to the window",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(s.gaps, 1);
    assert!(anomaly(&s, "deflate_context_lost") >= 1);
    // Never a guessed plaintext: the third message is either right or flagged.
    let t = texts(&c2, "s2c");
    assert_eq!(t.first().map(String::as_str), Some(words));
}

#[test]
fn deflate_bad_parameters() {
    for (name, resp) in [
        (
            "out_of_range",
            "permessage-deflate; server_max_window_bits=20",
        ),
        (
            "non_numeric",
            "permessage-deflate; server_max_window_bits=abc",
        ),
        (
            "repeated",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ),
        ("unknown", "permessage-deflate; frobnicate=1"),
    ] {
        let mut w = new_writer();
        let mut c = conn(40000);
        ws_open(&mut w, &mut c, Some(PMD), Some(resp));
        let m = sws::deflate_message(&mut Compress::new(Compression::default(), false), b"msg");
        c.send(&mut w, Dir::S2c, &frame(true, 0b100, 1, None, &m), 1460)
            .unwrap();
        close_both(&mut w, &mut c);
        let (c, s) = case(
            &format!("deflate_param_{name}"),
            &format!("a 101 answering with `{resp}`"),
            w.into_inner(),
            Config::default(),
        );
        assert_eq!(
            anomaly(&s, "deflate_bad_parameter"),
            1,
            "{name}: {:?}",
            s.anomalies
        );
        // The window falls back to 15 bits; the message still inflates.
        assert_eq!(texts(&c, "s2c"), ["msg"], "{name}");
    }
}

// ---------------------------------------------------------------- scale

#[test]
fn flows_200k_each_with_one_hole() {
    let mut w = new_writer();
    let mut buf = Vec::new();
    for i in 0..200_000u32 {
        let src = SocketAddr::from((
            [10, 1, (i >> 16) as u8, (i >> 8) as u8],
            1024 + (i & 0xff) as u16,
        ));
        let dst = addr("10.0.0.2:80");
        let ts = Timestamp::new(1_700_000_000, i * 1000);
        tcp_packet(&mut buf, src, dst, 1000, 0, flags::SYN, 65535, &[]);
        w.write_packet(ts, &buf).unwrap();
        // Bytes 100.. arrive, 0..100 never do.
        tcp_packet(
            &mut buf,
            src,
            dst,
            1101,
            0,
            flags::ACK,
            65535,
            b"GET / HTTP/1.1\r\n",
        );
        w.write_packet(ts, &buf).unwrap();
    }
    let (_, s) = case(
        "flows_200k_holes",
        "200,000 flows, each with a 100-byte hole before its only data",
        w.into_inner(),
        Config::default(),
    );
    assert_eq!(s.flows, 200_000);
    assert_eq!(s.counters["tcp_gaps"], 200_000);
}

// ---------------------------------------------------------------- docs

/// Every limit option of `wssniff read` is documented in docs/limits.md.
#[test]
fn limits_doc_lists_every_limit_option() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(["read", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    let limits = help
        .split_once("Limits:")
        .map(|(_, rest)| rest)
        .expect("a Limits section in `wssniff read --help`");
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/limits.md"))
            .unwrap();
    let options: Vec<&str> = limits
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("--"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(options.len() >= 15, "{options:?}");
    for o in options {
        assert!(
            doc.contains(&format!("`--{o}")),
            "--{o} missing from docs/limits.md"
        );
    }
}
