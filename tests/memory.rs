//! Proof of bounded memory: a counting global allocator (this test binary
//! only) tracks the live and peak heap while hostile traffic streams through
//! the pipeline, generated packet by packet (never a whole capture in memory).
//! Figures are printed (`--nocapture`) for BENCHMARKS.md.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use wssniff::capture::Packet;
use wssniff::pipeline::{Analyzer, Config};
use wssniff::session::StatsRecord;
use wssniff::sink::Sink;
use wssniff::synth::packet::{flags, tcp_packet};
use wssniff::synth::ws as sws;
use wssniff::types::Timestamp;

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the
// GlobalAlloc contract; we only count sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = System.alloc(l);
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l);
        LIVE.fetch_sub(l.size(), Relaxed);
    }
    // Forwarded, so that a growing buffer counts its new size only: glibc
    // grows large (mmap'd) blocks with mremap, without holding old and new
    // at once, and counting both would overstate the real peak.
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, l, new_size);
        if !q.is_null() {
            if new_size >= l.size() {
                let now = LIVE.fetch_add(new_size - l.size(), Relaxed) + new_size - l.size();
                PEAK.fetch_max(now, Relaxed);
            } else {
                LIVE.fetch_sub(l.size() - new_size, Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static A: Counting = Counting;

/// Measurements share one allocator: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Hands each generated packet (time, Ethernet frame) to the analyzer.
type Emit<'a> = &'a mut dyn FnMut(Timestamp, &[u8]);

/// A sink that keeps nothing (what `--stats` does).
struct Discard;
impl Sink for Discard {}

/// Feeds packets from `gen` through an analyzer; returns the peak heap above
/// the level at the start, in bytes.
fn peak_during(cfg: Config, gen: impl FnOnce(Emit<'_>)) -> (usize, StatsRecord) {
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let mut an = Analyzer::new(cfg, Discard);
    let mut n = 0u64;
    gen(&mut |ts, data| {
        n += 1;
        let p = Packet {
            number: n,
            ts,
            link_type: 1,
            data,
            orig_len: data.len() as u32,
        };
        an.packet(&p).unwrap();
    });
    let (_, stats) = an.finish().unwrap();
    (PEAK.load(Relaxed).saturating_sub(base), stats)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1 << 20) as f64
}

/// 200,000 flows from distinct clients to one server; with `data`, each
/// flow's SYN is followed by 1000 bytes beyond a 100-byte hole.
fn flow_flood(data: bool) -> impl FnOnce(Emit<'_>) {
    move |emit| {
        let payload = [b'x'; 1000];
        let mut buf = Vec::new();
        let dst: SocketAddr = "10.0.0.2:80".parse().unwrap();
        for i in 0..FLOOD_FLOWS {
            let src = SocketAddr::from((
                [10, 1, (i >> 16) as u8, (i >> 8) as u8],
                1024 + (i & 0xff) as u16,
            ));
            let ts = Timestamp::new(1_700_000_000, i * 1000);
            tcp_packet(&mut buf, src, dst, 1000, 0, flags::SYN, 65535, &[]);
            emit(ts, &buf);
            if data {
                // Bytes 1001..1101 never come: these wait for the hole.
                tcp_packet(&mut buf, src, dst, 1101, 0, flags::ACK, 65535, &payload);
                emit(ts, &buf);
            }
        }
    }
}

const FLOOD_FLOWS: u32 = 200_000;

/// The memcap bounds the flow table and the buffered bytes together: each
/// live flow is charged what it costs, so a flood evicts the least recently
/// used flows instead of growing past the memcap.
#[test]
fn flow_flood_with_holes_stays_under_memcap() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let flows = FLOOD_FLOWS as usize;
    // What a flow really costs against what it is charged: the same flows
    // without data, under a memcap that holds them all.
    let mut roomy = Config::default();
    roomy.tcp.memcap = 4 << 30;
    let (table, s0) = peak_during(roomy, flow_flood(false));
    let charged = s0.counters["tcp_peak_memory"] as usize;
    println!(
        "flow table alone: {FLOOD_FLOWS} flows, peak heap {:.1} MiB = {} B/flow, charged {} B/flow",
        mib(table),
        table / flows,
        charged / flows
    );
    assert_eq!(s0.counters["tcp_flows_evicted"], 0);
    assert!(
        table <= charged,
        "a flow costs {} B but is charged {} B",
        table / flows,
        charged / flows
    );

    let memcap = 64 << 20;
    let mut cfg = Config::default();
    cfg.tcp.memcap = memcap;
    let (peak, s) = peak_during(cfg, flow_flood(true));
    println!(
        "flow flood: {FLOOD_FLOWS} flows x 1000 buffered bytes (200 MB offered), memcap 64 MiB: peak heap {:.1} MiB; tcp_peak_memory {:.1} MiB, flows evicted for the memcap {}, limit hits {}",
        mib(peak),
        mib(s.counters["tcp_peak_memory"] as usize),
        s.counters["tcp_flows_evicted_memcap"],
        s.counters["tcp_limit_hits"]
    );
    assert_eq!(s.flows, 200_000);
    assert!(
        s.counters["tcp_flows_evicted_memcap"] > 0,
        "no flow was evicted"
    );
    assert_eq!(
        s.counters["tcp_flows_evicted_memcap"],
        s.counters["tcp_flows_evicted"]
    );
    assert!(s.counters["tcp_peak_memory"] <= memcap as u64);
    // The whole heap, flows, buffers, decoder and sink together, stays
    // under the memcap: the charges cover what the rest costs.
    assert!(peak < memcap, "peak {:.1} MiB", mib(peak));
}

#[test]
fn one_hole_then_200_mb_stays_under_memcap() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let memcap = 64 << 20;
    let mut cfg = Config::default();
    cfg.tcp.memcap = memcap;
    // Per-direction limits out of the way: the global memcap must hold.
    cfg.tcp.max_ooo_bytes_per_dir = 1 << 30;
    cfg.tcp.max_segments_per_dir = 1 << 24;
    let payload = [b'y'; 1448];
    let (peak, s) = peak_during(cfg, |emit| {
        let mut buf = Vec::new();
        let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let srv: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let mut ts = Timestamp::new(1_700_000_000, 0);
        tcp_packet(&mut buf, c, srv, 1000, 0, flags::SYN, 65535, &[]);
        emit(ts, &buf);
        // Byte 1001 never arrives: everything after it waits for the hole.
        let mut seq = 1002u32;
        for _ in 0..(200_000_000 / payload.len()) {
            ts = Timestamp::from_nanos(ts.as_nanos() + 1000);
            tcp_packet(&mut buf, c, srv, seq, 0, flags::ACK, 65535, &payload);
            emit(ts, &buf);
            seq = seq.wrapping_add(payload.len() as u32);
        }
    });
    println!(
        "one hole then 200 MB out of order, memcap 64 MiB: peak heap {:.1} MiB, tcp_peak_memory {:.1} MiB, limit hits {}",
        mib(peak),
        mib(s.counters["tcp_peak_memory"] as usize),
        s.counters["tcp_limit_hits"]
    );
    assert!(
        s.counters["tcp_limit_hits"] > 0,
        "the memcap was never reached"
    );
    assert!(s.counters["tcp_peak_memory"] <= memcap as u64);
    assert!(peak < memcap + (16 << 20), "peak {:.1} MiB", mib(peak));
}

/// Client and server of a WebSocket session on one flow.
const CLIENT: &str = "10.0.0.1:40000";
const SERVER: &str = "10.0.0.2:80";

/// Emits the TCP and WebSocket handshakes (with `extensions` offered and
/// accepted); returns the next client and server sequence numbers.
fn open_session(emit: Emit<'_>, ts: Timestamp, extensions: Option<&str>) -> (u32, u32) {
    open_session_from(emit, ts, extensions, CLIENT.parse().unwrap())
}

/// [`open_session`] from client `c`.
fn open_session_from(
    emit: Emit<'_>,
    ts: Timestamp,
    extensions: Option<&str>,
    c: SocketAddr,
) -> (u32, u32) {
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let s: SocketAddr = SERVER.parse().unwrap();
    let mut buf = Vec::new();
    let (mut cs, mut ss) = (1000u32, 50_000u32);
    tcp_packet(&mut buf, c, s, cs, 0, flags::SYN, 65535, &[]);
    emit(ts, &buf);
    let syn_ack = flags::SYN | flags::ACK;
    tcp_packet(&mut buf, s, c, ss, cs + 1, syn_ack, 65535, &[]);
    emit(ts, &buf);
    cs += 1;
    ss += 1;
    let req = sws::upgrade_request("h", "/", key, extensions);
    tcp_packet(&mut buf, c, s, cs, ss, flags::ACK | flags::PSH, 65535, &req);
    emit(ts, &buf);
    cs += req.len() as u32;
    let resp = sws::upgrade_response(key, extensions);
    push(emit, ts, (s, c), (ss, cs), &resp);
    (cs, ss + resp.len() as u32)
}

/// Emits one segment with PSH from `from.0` to `from.1`, at sequence and
/// acknowledgement numbers `seq_ack`.
fn push(
    emit: Emit<'_>,
    ts: Timestamp,
    from: (SocketAddr, SocketAddr),
    seq_ack: (u32, u32),
    payload: &[u8],
) {
    let mut buf = Vec::new();
    let (src, dst) = from;
    let (seq, ack) = seq_ack;
    tcp_packet(
        &mut buf,
        src,
        dst,
        seq,
        ack,
        flags::ACK | flags::PSH,
        65535,
        payload,
    );
    emit(ts, &buf);
}

/// A WebSocket session whose server sends `total` bytes of 64 KiB binary
/// frames in order, 1448 bytes a segment.
fn long_flow(total: u64) -> impl FnOnce(Emit<'_>) {
    move |emit| {
        let c: SocketAddr = CLIENT.parse().unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let mut ts = Timestamp::new(1_700_000_000, 0);
        let (cs, mut ss) = open_session(emit, ts, None);
        let mut buf = Vec::new();
        let mut frame = Vec::new();
        sws::frame(&mut frame, true, 0, 2, None, &vec![0xA5u8; 64 << 10]);
        let mut sent = 0u64;
        let mut pos = 0usize;
        while sent < total {
            let n = 1448.min(frame.len() - pos);
            ts = Timestamp::from_nanos(ts.as_nanos() + 1000);
            let chunk = &frame[pos..pos + n];
            tcp_packet(&mut buf, s, c, ss, cs, flags::ACK, 65535, chunk);
            emit(ts, &buf);
            ss = ss.wrapping_add(n as u32);
            sent += n as u64;
            pos = (pos + n) % frame.len();
        }
    }
}

#[test]
fn long_in_order_flow_has_flat_peak() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (small, s1) = peak_during(Config::default(), long_flow(100_000_000));
    let (large, s2) = peak_during(Config::default(), long_flow(400_000_000));
    println!(
        "long in-order flow: peak heap {:.2} MiB at 100 MB, {:.2} MiB at 400 MB",
        mib(small),
        mib(large)
    );
    assert!(s1.messages["binary"] >= 1500 && s2.messages["binary"] >= 6000);
    // Flat: four times the data may not cost more than 1 MiB more.
    assert!(large <= small + (1 << 20), "{small} -> {large}");
}

/// The 2 GiB flow of the adversarial list, streamed (never on disk): about
/// 2 s in release, so it runs with the suite.
#[test]
fn two_gib_in_order_flow() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (peak, s) = peak_during(Config::default(), long_flow(2 << 30));
    println!("2 GiB in-order flow: peak heap {:.2} MiB", mib(peak));
    assert_eq!(s.gaps, 0);
    // 2 GiB / 64 KiB frames, every one decoded.
    assert!(s.messages["binary"] >= 32_000, "{:?}", s.messages);
    assert!(peak < 4 << 20, "{:.2} MiB", mib(peak));
}

/// Each buffered piece is charged its payload plus a fixed overhead
/// (docs/limits.md): with 1-byte pieces, where the overhead dominates, the
/// real heap per piece (index growth included) must not exceed the charge,
/// or the memcap would not bound memory.
#[test]
fn one_byte_pieces_cost_what_they_are_charged() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const PIECES: u32 = 100_000;
    let mut cfg = Config::default();
    cfg.tcp.max_segments_per_dir = 1 << 20;
    let (peak, s) = peak_during(cfg, |emit| {
        let mut buf = Vec::new();
        let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let srv: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let ts = Timestamp::new(1_700_000_000, 0);
        tcp_packet(&mut buf, c, srv, 1000, 0, flags::SYN, 65535, &[]);
        emit(ts, &buf);
        // Every other byte after a hole at 1001: no two pieces touch.
        for i in 0..PIECES {
            tcp_packet(&mut buf, c, srv, 1002 + 2 * i, 0, flags::ACK, 65535, b"z");
            emit(ts, &buf);
        }
    });
    let charged = s.counters["tcp_peak_memory"] as usize;
    println!(
        "{PIECES} one-byte pieces: peak heap {} B/piece, charged {} B/piece",
        peak / PIECES as usize,
        charged / PIECES as usize
    );
    assert_eq!(s.counters["tcp_limit_hits"], 0);
    assert!(charged >= PIECES as usize * 2, "{charged}");
    // Slack for the flow table and the one flow's other state.
    assert!(
        peak <= charged + (1 << 20),
        "peak {peak}, charged {charged}"
    );
}

/// A server frame of about 1.2 MiB that inflates to 1.25 GiB of zeros
/// (issue 3's bomb), in a session that negotiated permessage-deflate.
fn bomb_flow(frame: Vec<u8>) -> impl FnOnce(Emit<'_>) {
    move |emit| {
        let c: SocketAddr = CLIENT.parse().unwrap();
        let s: SocketAddr = SERVER.parse().unwrap();
        let ts = Timestamp::new(1_700_000_000, 0);
        let (cs, mut ss) = open_session(emit, ts, Some("permessage-deflate"));
        let mut buf = Vec::new();
        for chunk in frame.chunks(1448) {
            tcp_packet(&mut buf, s, c, ss, cs, flags::ACK, 65535, chunk);
            emit(ts, &buf);
            ss = ss.wrapping_add(chunk.len() as u32);
        }
    }
}

/// The deflate bomb holds memory under the inflate limit (16 MiB by default)
/// plus a small constant, however far it would inflate.
#[test]
fn deflate_bomb_stays_under_the_inflate_limit() {
    use flate2::{Compress, Compression, FlushCompress};
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut z = Compress::new(Compression::best(), false);
    let zeros = vec![0u8; 1 << 20];
    let mut comp = Vec::with_capacity(2 << 20);
    for _ in 0..1280 {
        z.compress_vec(&zeros, &mut comp, FlushCompress::None)
            .unwrap();
        if comp.capacity() - comp.len() < 64 << 10 {
            comp.reserve(1 << 20);
        }
    }
    comp.extend_from_slice(&sws::deflate_message(&mut z, b""));
    let mut frame = Vec::new();
    sws::frame(&mut frame, true, 0b100, 2, None, &comp);
    drop(zeros);
    let cfg = Config::default();
    let limit = cfg.message.max_inflated_bytes;
    let (peak, s) = peak_during(cfg, bomb_flow(frame));
    println!(
        "deflate bomb ({} KiB on the wire, 1.25 GiB inflated): peak heap {:.2} MiB, inflate limit {:.0} MiB",
        comp.len() >> 10,
        mib(peak),
        mib(limit)
    );
    assert_eq!(
        s.anomalies.get("deflate_limit"),
        Some(&1),
        "{:?}",
        s.anomalies
    );
    // The constant: the compressed frame itself (kept as the wire bytes) and
    // the inflater's state and scratch space.
    assert!(peak < limit + (4 << 20), "peak {:.2} MiB", mib(peak));
}

/// `sessions` sessions that negotiate permessage-deflate and stay open, the
/// server sending each client one compressed text message.
fn compressed_sessions(sessions: u32) -> impl FnOnce(Emit<'_>) {
    use flate2::{Compress, Compression};
    move |emit| {
        let s: SocketAddr = SERVER.parse().unwrap();
        let ts = Timestamp::new(1_700_000_000, 0);
        for i in 0..sessions {
            let c = SocketAddr::from(([10, 9, (i >> 8) as u8, i as u8], 40_000));
            let (cs, ss) = open_session_from(emit, ts, Some("permessage-deflate"), c);
            let mut z = Compress::new(Compression::default(), false);
            let mut frame = Vec::new();
            let text = format!("hello from the server to client {i}");
            let comp = sws::deflate_message(&mut z, text.as_bytes());
            sws::frame(&mut frame, true, 0b100, 1, None, &comp);
            push(emit, ts, (s, c), (ss, cs), &frame);
        }
    }
}

/// Each direction being inflated keeps zlib's state and window (about
/// 47 KiB); `max_inflaters` bounds how many there are, and every message
/// beyond it is named.
#[test]
fn live_inflaters_are_bounded() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const SESSIONS: u32 = 3000;
    const LIMIT: usize = 500;
    let mut cfg = Config::default();
    cfg.message.max_inflaters = SESSIONS as usize;
    let (all, s_all) = peak_during(cfg.clone(), compressed_sessions(SESSIONS));
    cfg.message.max_inflaters = LIMIT;
    let (bounded, s_bounded) = peak_during(cfg, compressed_sessions(SESSIONS));
    let refused = SESSIONS as usize - LIMIT;
    println!(
        "{SESSIONS} compressed sessions: peak heap {:.2} MiB with an inflater each, {:.2} MiB with at most {LIMIT}",
        mib(all),
        mib(bounded)
    );
    assert_eq!(s_all.sessions, u64::from(SESSIONS));
    assert_eq!(s_all.anomalies.get("deflate_inflater_limit"), None);
    assert_eq!(
        s_bounded.anomalies.get("deflate_inflater_limit").copied(),
        Some(refused as u64),
        "{:?}",
        s_bounded.anomalies
    );
    // Each refused inflater saves at least 40 KiB.
    assert!(
        bounded + refused * (40 << 10) < all,
        "bounded {:.2} MiB, all {:.2} MiB",
        mib(bounded),
        mib(all)
    );
}
