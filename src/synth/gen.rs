//! The random WebSocket capture generator behind `wssniff-gen`.
//!
//! [`generate`] writes a classic pcap (Ethernet, µs) of `connections`
//! interleaved WebSocket sessions and a ground-truth JSON Lines file, one
//! object per message, in each direction's stream order:
//!
//! ```json
//! {"conn":0,"client_port":32768,"server_port":8080,"dir":"c2s","opcode":"text",
//!  "len":5,"sha256":"…","text":"hello","frames":1,"packets":[5]}
//! ```
//!
//! `conn` is 0-based in order of the connections' SYNs. `text` (text
//! messages) or `b64` (all others) holds the payload when `len <= 2048`;
//! close messages also carry `close_code` and `close_reason`. `compressed`
//! is present (true) when the message was sent with RSV1 under
//! permessage-deflate; `len` and `sha256` are always of the uncompressed
//! payload. `packets` are the 1-based numbers of the packets that carried
//! any byte of the message's frames (retransmitted copies included).
//! `lost` is present (true) when a segment carrying some of its bytes was
//! dropped.
//!
//! Impairments (`reorder`, `retransmit`, `loss`) apply to WebSocket data
//! segments only; the TCP and HTTP handshakes, close and FIN are always
//! clean. Several messages are written per batch (one "socket write"), so a
//! segment may carry the end of one frame and the start of the next; after
//! a dropped segment, later messages of that direction are intact on the
//! wire (not `lost`) but an analyzer may have lost frame sync.
//!
//! HTTP heads are sometimes cut in two segments, and a quarter of the
//! servers send their first message in the same write as the 101 response.
//!
//! The same config and seed always give byte-identical outputs.

use super::conn::Conn;
use super::packet::{MAX_PAYLOAD_V4, MAX_PAYLOAD_V6};
use super::pcap::PcapWriter;
use super::ws::{self, opcode};
use super::Rng;
use crate::types::{Dir, Timestamp};
use base64::Engine as _;
use flate2::{Compress, Compression};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Payload size distribution of data messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SizeMix {
    /// 0..=256 bytes.
    Small,
    /// Log-uniform 1 B ..= 256 KiB: half the messages are under 512 bytes.
    #[default]
    Mixed,
    /// Log-uniform 64 KiB ..= 4 MiB.
    Large,
}

impl FromStr for SizeMix {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "small" => Ok(SizeMix::Small),
            "mixed" => Ok(SizeMix::Mixed),
            "large" => Ok(SizeMix::Large),
            _ => Err(format!(
                "unknown size mix {s:?}: expected small, mixed or large"
            )),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GenConfig {
    pub seed: u64,
    pub connections: usize,
    /// Approximate capture size; each connection closes once it has
    /// written its share (after at least one batch in each direction).
    pub target_bytes: u64,
    pub sizes: SizeMix,
    /// Split about a quarter of the data messages into 2..=8 frames, with
    /// an occasional ping between two fragments.
    pub fragment: bool,
    /// Negotiate permessage-deflate (context takeover both ways) and send
    /// about 90% of data messages compressed.
    pub deflate: bool,
    /// Probability that a data segment is swapped with the next one.
    pub reorder: f64,
    /// Probability that a data segment is written twice.
    pub retransmit: f64,
    /// Probability that a data segment is dropped.
    pub loss: f64,
    pub ipv6: bool,
    /// Largest TCP payload per packet (clamped to what the IP length field
    /// can express: 65495 for IPv4, 65515 for IPv6).
    pub mss: usize,
}

impl Default for GenConfig {
    fn default() -> Self {
        GenConfig {
            seed: 0,
            connections: 4,
            target_bytes: 1 << 20,
            sizes: SizeMix::Mixed,
            fragment: false,
            deflate: false,
            reorder: 0.0,
            retransmit: 0.0,
            loss: 0.0,
            ipv6: false,
            mss: 65_495,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GenSummary {
    pub packets: u64,
    /// Capture file size in bytes.
    pub bytes: u64,
    pub connections: usize,
    /// Truth lines written.
    pub messages: u64,
    /// WebSocket frames generated (including ones in dropped segments).
    pub frames: u64,
    pub lost_messages: u64,
    /// Server ports used, sorted, deduplicated (for `tshark -d`).
    pub server_ports: Vec<u16>,
}

/// Generates the capture into `pcap_out` and the ground truth into
/// `truth_out` (both buffered here).
pub fn generate(
    cfg: &GenConfig,
    pcap_out: impl Write,
    truth_out: impl Write,
) -> io::Result<GenSummary> {
    let mut g = Generator {
        cfg: cfg.clone(),
        w: PcapWriter::new(BufWriter::with_capacity(4 << 20, pcap_out))?,
        truth: BufWriter::with_capacity(1 << 20, truth_out),
        rng: Rng::new(cfg.seed),
        text_pool: text_pool(cfg.seed),
        s: Scratch::default(),
        summary: GenSummary::default(),
        clock: Timestamp::new(1_700_000_000, 0),
    };
    g.cfg.mss = g.cfg.mss.clamp(
        1,
        if cfg.ipv6 {
            MAX_PAYLOAD_V6
        } else {
            MAX_PAYLOAD_V4
        },
    );
    g.run()?;
    g.w.flush()?;
    g.truth.flush()?;
    g.summary.packets = g.w.packets_written();
    g.summary.bytes = g.w.bytes_written();
    g.summary.server_ports.sort_unstable();
    g.summary.server_ports.dedup();
    Ok(g.summary)
}

/// Sessions open at once: enough to interleave, few enough that the
/// analyzer also sees connections end and new ones start.
const MAX_ACTIVE: usize = 64;
const PACKET_STEP_NANOS: u32 = 5_000;
/// Payloads up to this size are copied into the truth file.
const TRUTH_PAYLOAD_MAX: usize = 2048;

/// Well-known and odd server ports; the rest are random high ports.
const PORTS: &[u16] = &[
    80, 8080, 8000, 3000, 5000, 9000, 27599, 12345, 8765, 6001, 4444, 1880,
];

const CLOSES: &[(u16, &str)] = &[
    (1000, ""),
    (1000, "bye"),
    (1001, "going away"),
    (1000, "normal closure: ✓ done"),
    (4000, "app: session expired"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Syn,
    Request,
    Response,
    Data,
    CloseFirst,
    CloseReply,
    Fin,
    Done,
}

struct Session {
    index: usize,
    conn: Conn,
    rng: Rng,
    phase: Phase,
    key: String,
    host: String,
    path: String,
    /// Per direction: the compressor and its current level.
    compressors: [Option<(Compress, u32)>; 2],
    pending_pongs: [Vec<Vec<u8>>; 2],
    budget: u64,
    written: u64,
    batches: u32,
    close_first: Dir,
    close: (u16, &'static str),
}

/// One message of a batch, with what the truth line needs.
struct MsgRec {
    dir: Dir,
    opcode: u8,
    len: u64,
    sha256: [u8; 32],
    small: Option<Vec<u8>>,
    close: Option<(u16, String)>,
    compressed: bool,
    /// Byte ranges of its frames in the batch stream.
    ranges: Vec<(usize, usize)>,
    packets: Vec<u64>,
    lost: bool,
}

impl MsgRec {
    fn end(&self) -> usize {
        self.ranges.last().map_or(0, |r| r.1)
    }
    fn overlaps(&self, a: usize, b: usize) -> bool {
        self.ranges.iter().any(|&(s, e)| s < b && a < e)
    }
}

/// Buffers reused across batches (the hot path allocates little).
#[derive(Default)]
struct Scratch {
    stream: Vec<u8>,
    payload: Vec<u8>,
    wire: Vec<u8>,
    msgs: Vec<MsgRec>,
    segments: Vec<(usize, usize)>,
    cuts: Vec<usize>,
}

#[derive(Serialize)]
struct TruthLine<'a> {
    conn: usize,
    client_port: u16,
    server_port: u16,
    dir: &'static str,
    opcode: &'static str,
    len: u64,
    sha256: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    close_reason: Option<&'a str>,
    frames: usize,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    compressed: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    lost: bool,
    packets: &'a [u64],
}

struct Generator<P: Write, T: Write> {
    cfg: GenConfig,
    w: PcapWriter<BufWriter<P>>,
    truth: BufWriter<T>,
    rng: Rng,
    text_pool: String,
    s: Scratch,
    summary: GenSummary,
    clock: Timestamp,
}

impl<P: Write, T: Write> Generator<P, T> {
    fn run(&mut self) -> io::Result<()> {
        let n = self.cfg.connections;
        let budget = self.cfg.target_bytes / n.max(1) as u64;
        let mut active: Vec<Session> = Vec::new();
        let mut started = 0;
        while started < n.min(MAX_ACTIVE) {
            active.push(self.new_session(started, budget));
            started += 1;
        }
        while !active.is_empty() {
            let pick = self.rng.below(active.len() as u64) as usize;
            let Some(sess) = active.get_mut(pick) else {
                break;
            };
            sess.conn.set_time(self.clock);
            let before = self.w.bytes_written();
            step(
                sess,
                &self.cfg,
                &mut self.w,
                &mut self.truth,
                &mut self.s,
                &self.text_pool,
                &mut self.summary,
            )?;
            sess.written += self.w.bytes_written() - before;
            let gap = self.rng.below(200) as i128 * 1000;
            self.clock = Timestamp::from_nanos(sess.conn.time().as_nanos() + gap);
            if sess.phase == Phase::Done {
                active.swap_remove(pick);
                if started < n {
                    active.push(self.new_session(started, budget));
                    started += 1;
                }
            }
        }
        self.summary.connections = n;
        Ok(())
    }

    fn new_session(&mut self, index: usize, budget: u64) -> Session {
        let mut rng =
            Rng::new(self.cfg.seed ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let port = if rng.chance(0.7) {
            PORTS[rng.below(PORTS.len() as u64) as usize % PORTS.len()]
        } else {
            20_000 + rng.below(40_000) as u16
        };
        let client_port = 32_768 + (index % 28_000) as u16;
        let (cip, sip): (IpAddr, IpAddr) = if self.cfg.ipv6 {
            (
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    0,
                    0,
                    0xc,
                    0,
                    0,
                    (index >> 16) as u16,
                    index as u16,
                )),
                IpAddr::V6(Ipv6Addr::new(
                    0xfd00,
                    0,
                    0,
                    0x5,
                    0,
                    0,
                    0,
                    1 + (index % 16) as u16,
                )),
            )
        } else {
            let i = index % 64_000;
            (
                IpAddr::V4(Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250 + 2) as u8)),
                IpAddr::V4(Ipv4Addr::new(10, 1, 0, 1 + (index % 16) as u8)),
            )
        };
        self.summary.server_ports.push(port);
        // Some ISNs sit just below 2^32 so sequence numbers wrap mid-stream.
        let isn = |rng: &mut Rng| {
            if rng.chance(0.1) {
                u32::MAX - rng.below(3000) as u32
            } else {
                rng.next_u32()
            }
        };
        let (isn_c, isn_s) = (isn(&mut rng), isn(&mut rng));
        let mut conn = Conn::new(
            SocketAddr::new(cip, client_port),
            SocketAddr::new(sip, port),
            isn_c,
            isn_s,
        );
        conn.set_step(PACKET_STEP_NANOS);
        let mut key = [0u8; 16];
        rng.fill(&mut key);
        let key = base64::engine::general_purpose::STANDARD.encode(key);
        let host = if rng.chance(0.5) {
            format!("ws{}.example.test:{port}", index % 10)
        } else {
            SocketAddr::new(sip, port).to_string()
        };
        let path = ["/", "/ws", "/socket", "/api/v1/stream", "/chat?room=42"]
            [rng.below(5) as usize % 5]
            .to_string();
        let compressors = if self.cfg.deflate {
            [
                Some((Compress::new(Compression::new(1), false), 1)),
                Some((Compress::new(Compression::new(1), false), 1)),
            ]
        } else {
            [None, None]
        };
        let close_first = if rng.chance(0.5) { Dir::C2s } else { Dir::S2c };
        let close = CLOSES[rng.below(CLOSES.len() as u64) as usize % CLOSES.len()];
        Session {
            index,
            conn,
            rng,
            phase: Phase::Syn,
            key,
            host,
            path,
            compressors,
            pending_pongs: [Vec::new(), Vec::new()],
            budget,
            written: 0,
            batches: 0,
            close_first,
            close,
        }
    }
}

/// Advances one session by one phase (one batch in the data phase).
fn step<P: Write, T: Write>(
    sess: &mut Session,
    cfg: &GenConfig,
    w: &mut PcapWriter<BufWriter<P>>,
    truth: &mut BufWriter<T>,
    s: &mut Scratch,
    pool: &str,
    summary: &mut GenSummary,
) -> io::Result<()> {
    const DEFLATE_OFFER: &str = "permessage-deflate; client_max_window_bits";
    const DEFLATE_ACCEPT: &str = "permessage-deflate";
    match sess.phase {
        Phase::Syn => {
            let ts = sess.conn.time();
            sess.conn.handshake(w, ts)?;
            sess.phase = Phase::Request;
        }
        Phase::Request => {
            let ext = cfg.deflate.then_some(DEFLATE_OFFER);
            let req = ws::upgrade_request(&sess.host, &sess.path, &sess.key, ext);
            send_maybe_split(sess, w, Dir::C2s, &req, cfg.mss)?;
            sess.phase = Phase::Response;
        }
        Phase::Response => {
            let ext = cfg.deflate.then_some(DEFLATE_ACCEPT);
            let resp = ws::upgrade_response(&sess.key, ext);
            if sess.rng.chance(0.25) {
                // The server's first message in the same write as its 101.
                build_data_batch(sess, cfg, Dir::S2c, s, pool, &resp);
                write_batch(sess, cfg, Dir::S2c, w, truth, s, summary, false)?;
            } else {
                send_maybe_split(sess, w, Dir::S2c, &resp, cfg.mss)?;
            }
            sess.phase = Phase::Data;
        }
        Phase::Data => {
            // The first two batches go one each way, so every session has
            // messages in both directions.
            let dir = match sess.batches {
                0 => Dir::C2s,
                1 => Dir::S2c,
                _ if sess.rng.chance(0.5) => Dir::C2s,
                _ => Dir::S2c,
            };
            build_data_batch(sess, cfg, dir, s, pool, &[]);
            write_batch(sess, cfg, dir, w, truth, s, summary, true)?;
            sess.batches += 1;
            if sess.batches >= 2 && sess.written >= sess.budget {
                sess.phase = Phase::CloseFirst;
            }
        }
        Phase::CloseFirst | Phase::CloseReply => {
            let dir = if sess.phase == Phase::CloseFirst {
                sess.close_first
            } else {
                sess.close_first.other()
            };
            begin_batch(sess, dir, s, &[]);
            let (code, reason) = sess.close;
            // The reply echoes the code, as most servers do, without reason.
            let reason = if sess.phase == Phase::CloseFirst {
                reason
            } else {
                ""
            };
            let payload = ws::close_payload(code, reason);
            push_control(
                sess,
                dir,
                opcode::CLOSE,
                &payload,
                s,
                Some((code, reason.to_string())),
            );
            write_batch(sess, cfg, dir, w, truth, s, summary, false)?;
            sess.phase = if sess.phase == Phase::CloseFirst {
                Phase::CloseReply
            } else {
                Phase::Fin
            };
        }
        Phase::Fin => {
            sess.conn.fin(w, Dir::S2c)?;
            sess.conn.fin(w, Dir::C2s)?;
            sess.phase = Phase::Done;
        }
        Phase::Done => {}
    }
    Ok(())
}

/// Sends an HTTP head, a fifth of the time cut in two segments at a random
/// point, so that analyzers must reassemble it.
fn send_maybe_split<W: Write>(
    sess: &mut Session,
    w: &mut PcapWriter<W>,
    dir: Dir,
    bytes: &[u8],
    mss: usize,
) -> io::Result<()> {
    if bytes.len() > 1 && sess.rng.chance(0.2) {
        let cut = sess.rng.range(1, bytes.len() as u64 - 1) as usize;
        let (a, b) = bytes.split_at(cut);
        sess.conn.send(w, dir, a, mss)?;
        sess.conn.send(w, dir, b, mss)
    } else {
        sess.conn.send(w, dir, bytes, mss)
    }
}

/// Clears the batch, starts it with `head` (non-WebSocket bytes, e.g. the
/// 101 response) and the pongs `dir` owes.
fn begin_batch(sess: &mut Session, dir: Dir, s: &mut Scratch, head: &[u8]) {
    s.stream.clear();
    s.stream.extend_from_slice(head);
    s.msgs.clear();
    let pongs = std::mem::take(&mut sess.pending_pongs[dir.index()]);
    for p in &pongs {
        push_control(sess, dir, opcode::PONG, p, s, None);
    }
}

fn build_data_batch(
    sess: &mut Session,
    cfg: &GenConfig,
    dir: Dir,
    s: &mut Scratch,
    pool: &str,
    head: &[u8],
) {
    begin_batch(sess, dir, s, head);
    let max_msgs = match cfg.sizes {
        SizeMix::Small => 8,
        SizeMix::Mixed => 4,
        SizeMix::Large => 2,
    };
    let count = sess.rng.range(1, max_msgs);
    for _ in 0..count {
        let roll = sess.rng.below(100);
        if roll < 5 {
            let mut p = vec![0u8; sess.rng.below(126) as usize];
            sess.rng.fill(&mut p);
            push_control(sess, dir, opcode::PING, &p, s, None);
            sess.pending_pongs[dir.other().index()].push(p);
            continue;
        }
        let op = if roll < 55 {
            opcode::TEXT
        } else {
            opcode::BINARY
        };
        let len = message_len(&mut sess.rng, cfg.sizes);
        let mut payload = std::mem::take(&mut s.payload);
        let mut noise = false;
        if op == opcode::TEXT {
            fill_text(&mut sess.rng, pool, len, &mut payload);
        } else if cfg.deflate && sess.rng.chance(0.9) {
            fill_structured(&mut sess.rng, pool, len, &mut payload);
        } else {
            payload.clear();
            payload.resize(len, 0);
            sess.rng.fill(&mut payload);
            noise = true;
        }
        push_data(sess, cfg, dir, op, &payload, noise, s);
        s.payload = payload;
    }
}

fn message_len(rng: &mut Rng, sizes: SizeMix) -> usize {
    let log_uniform = |rng: &mut Rng, lo: f64, hi: f64| (lo * (hi / lo).powf(rng.unit())) as usize;
    match sizes {
        SizeMix::Small => rng.below(257) as usize,
        SizeMix::Mixed => log_uniform(rng, 1.0, 262_145.0).clamp(1, 262_144),
        SizeMix::Large => log_uniform(rng, 65_536.0, 4_194_305.0).clamp(65_536, 4_194_304),
    }
}

fn mask_for(sess: &mut Session, dir: Dir) -> Option<[u8; 4]> {
    (dir == Dir::C2s).then(|| sess.rng.next_u32().to_be_bytes())
}

fn new_rec(dir: Dir, op: u8, payload: &[u8], close: Option<(u16, String)>) -> MsgRec {
    MsgRec {
        dir,
        opcode: op,
        len: payload.len() as u64,
        sha256: Sha256::digest(payload).into(),
        small: (payload.len() <= TRUTH_PAYLOAD_MAX).then(|| payload.to_vec()),
        close,
        compressed: false,
        ranges: Vec::new(),
        packets: Vec::new(),
        lost: false,
    }
}

fn push_control(
    sess: &mut Session,
    dir: Dir,
    op: u8,
    payload: &[u8],
    s: &mut Scratch,
    close: Option<(u16, String)>,
) {
    let mut rec = new_rec(dir, op, payload, close);
    let start = s.stream.len();
    let mask = mask_for(sess, dir);
    ws::frame(&mut s.stream, true, 0, op, mask, payload);
    rec.ranges.push((start, s.stream.len()));
    s.msgs.push(rec);
}

/// A text or binary message: maybe compressed, maybe fragmented, maybe with
/// a ping between two fragments.
fn push_data(
    sess: &mut Session,
    cfg: &GenConfig,
    dir: Dir,
    op: u8,
    payload: &[u8],
    noise: bool,
    s: &mut Scratch,
) {
    let mut rec = new_rec(dir, op, payload, None);
    let mut wire = std::mem::take(&mut s.wire);
    let compressor = sess.compressors[dir.index()].as_mut();
    let wire_src: &[u8] = match compressor {
        Some((c, level)) if sess.rng.chance(0.9) => {
            // Deflating noise is slow (~50 MB/s) and gains nothing: store
            // it, as a real compressor would end up doing. The stream stays
            // one context (the level change happens after a sync flush).
            let want = if noise { 0 } else { 1 };
            if *level != want && c.set_level(Compression::new(want)).is_ok() {
                *level = want;
            }
            ws::deflate_message_into(c, payload, &mut wire);
            rec.compressed = true;
            &wire
        }
        _ => payload,
    };
    let frames = if cfg.fragment && sess.rng.chance(0.25) {
        sess.rng.range(2, 8) as usize
    } else {
        1
    };
    s.cuts.clear();
    for _ in 1..frames {
        s.cuts
            .push(sess.rng.below(wire_src.len() as u64 + 1) as usize);
    }
    s.cuts.sort_unstable();
    s.cuts.push(wire_src.len());
    let mut from = 0;
    let cuts = std::mem::take(&mut s.cuts);
    for (i, &to) in cuts.iter().enumerate() {
        let first = i == 0;
        let last = i + 1 == cuts.len();
        if !first && sess.rng.chance(0.15) {
            let mut p = vec![0u8; sess.rng.below(20) as usize];
            sess.rng.fill(&mut p);
            push_control(sess, dir, opcode::PING, &p, s, None);
            sess.pending_pongs[dir.other().index()].push(p);
        }
        let start = s.stream.len();
        let rsv = if first && rec.compressed { ws::RSV1 } else { 0 };
        let fop = if first { op } else { opcode::CONTINUATION };
        let mask = mask_for(sess, dir);
        ws::frame(
            &mut s.stream,
            last,
            rsv,
            fop,
            mask,
            wire_src.get(from..to).unwrap_or(&[]),
        );
        rec.ranges.push((start, s.stream.len()));
        from = to;
    }
    s.cuts = cuts;
    s.wire = wire;
    s.msgs.push(rec);
}

/// Segments the batch stream, applies the impairments, writes the packets
/// and the batch's truth lines.
#[allow(clippy::too_many_arguments)]
fn write_batch<P: Write, T: Write>(
    sess: &mut Session,
    cfg: &GenConfig,
    dir: Dir,
    w: &mut PcapWriter<BufWriter<P>>,
    truth: &mut BufWriter<T>,
    s: &mut Scratch,
    summary: &mut GenSummary,
    impair: bool,
) -> io::Result<()> {
    s.segments.clear();
    let mut a = 0;
    while a < s.stream.len() {
        let b = (a + cfg.mss).min(s.stream.len());
        s.segments.push((a, b));
        a = b;
    }
    let base = sess.conn.next_offset(dir);
    let n = s.segments.len();
    let mut i = 0;
    while i < n {
        if impair && i + 1 < n && sess.rng.chance(cfg.reorder) {
            emit_segment(sess, cfg, dir, base, i + 1, n, w, s, impair)?;
            emit_segment(sess, cfg, dir, base, i, n, w, s, impair)?;
            i += 2;
        } else {
            emit_segment(sess, cfg, dir, base, i, n, w, s, impair)?;
            i += 1;
        }
    }
    sess.conn.advance(dir, s.stream.len() as u32);
    s.msgs.sort_by_key(MsgRec::end);
    for m in &s.msgs {
        write_truth(truth, sess, m)?;
        summary.messages += 1;
        summary.frames += m.ranges.len() as u64;
        summary.lost_messages += u64::from(m.lost);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn emit_segment<P: Write>(
    sess: &mut Session,
    cfg: &GenConfig,
    dir: Dir,
    base: u32,
    i: usize,
    n: usize,
    w: &mut PcapWriter<BufWriter<P>>,
    s: &mut Scratch,
    impair: bool,
) -> io::Result<()> {
    let Some(&(a, b)) = s.segments.get(i) else {
        return Ok(());
    };
    if impair && sess.rng.chance(cfg.loss) {
        for m in s.msgs.iter_mut().filter(|m| m.overlaps(a, b)) {
            m.lost = true;
        }
        return Ok(());
    }
    let copies = if impair && sess.rng.chance(cfg.retransmit) {
        2
    } else {
        1
    };
    let flags = super::packet::flags::ACK
        | if i + 1 == n {
            super::packet::flags::PSH
        } else {
            0
        };
    let bytes = s.stream.get(a..b).unwrap_or(&[]);
    for _ in 0..copies {
        sess.conn
            .segment(w, dir, base.wrapping_add(a as u32), bytes, flags)?;
        let pno = w.packets_written();
        for m in s.msgs.iter_mut().filter(|m| m.overlaps(a, b)) {
            m.packets.push(pno);
        }
    }
    Ok(())
}

fn write_truth<T: Write>(truth: &mut T, sess: &Session, m: &MsgRec) -> io::Result<()> {
    let mut text = None;
    let mut b64 = None;
    if let Some(p) = &m.small {
        match std::str::from_utf8(p) {
            Ok(t) if m.opcode == opcode::TEXT => text = Some(t),
            _ => b64 = Some(base64::engine::general_purpose::STANDARD.encode(p)),
        }
    }
    let line = TruthLine {
        conn: sess.index,
        client_port: sess.conn.client().port(),
        server_port: sess.conn.server().port(),
        dir: m.dir.as_str(),
        opcode: match m.opcode {
            opcode::TEXT => "text",
            opcode::BINARY => "binary",
            opcode::PING => "ping",
            opcode::PONG => "pong",
            _ => "close",
        },
        len: m.len,
        sha256: hex(&m.sha256),
        text,
        b64,
        close_code: m.close.as_ref().map(|c| c.0),
        close_reason: m.close.as_ref().map(|c| c.1.as_str()),
        frames: m.ranges.len(),
        compressed: m.compressed,
        lost: m.lost,
        packets: &m.packets,
    };
    serde_json::to_writer(&mut *truth, &line)?;
    truth.write_all(b"\n")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A 1 MiB text pool of words (ASCII and multi-byte UTF-8) that text
/// payloads are sliced from: much faster than building text word by word.
fn text_pool(seed: u64) -> String {
    const WORDS: &[&str] = &[
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "websocket",
        "frame",
        "message",
        "hello",
        "world",
        "{\"id\":",
        "42,",
        "\"ok\":true}",
        "naïve",
        "café",
        "Grüße",
        "日本語",
        "テキスト",
        "Привет",
        "مرحبا",
        "🦀",
        "🚀",
        "ünïcödé",
        "€",
        "line\n",
        "tab\t",
        "data",
        "stream",
        "packet",
    ];
    let mut rng = Rng::new(seed ^ 0x7465_7874);
    let mut pool = String::with_capacity((1 << 20) + 16);
    while pool.len() < 1 << 20 {
        pool.push_str(WORDS[rng.below(WORDS.len() as u64) as usize % WORDS.len()]);
        pool.push(' ');
    }
    pool
}

/// Exactly `len` bytes of valid UTF-8, from random slices of `pool`.
fn fill_text(rng: &mut Rng, pool: &str, len: usize, out: &mut Vec<u8>) {
    out.clear();
    while out.len() < len {
        let want = len - out.len();
        let mut start = rng.below(pool.len() as u64) as usize;
        while !pool.is_char_boundary(start) {
            start += 1;
        }
        let mut end = start.saturating_add(want).min(pool.len());
        while !pool.is_char_boundary(end) {
            end -= 1;
        }
        match pool.get(start..end) {
            Some(piece) if !piece.is_empty() => out.extend_from_slice(piece.as_bytes()),
            // Fewer bytes wanted than the character there: pad.
            _ => out.push(b' '),
        }
    }
}

/// Binary that compresses like real protocol data: pool text with four
/// random bytes every 64. Deflating pure noise runs at ~50 MB/s and would
/// make `--deflate` captures slow to generate; some noise is still sent.
fn fill_structured(rng: &mut Rng, pool: &str, len: usize, out: &mut Vec<u8>) {
    fill_text(rng, pool, len, out);
    for chunk in out.chunks_mut(64) {
        let noise = rng.next_u32().to_le_bytes();
        for (b, n) in chunk.iter_mut().zip(noise) {
            *b = n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cfg: &GenConfig) -> (Vec<u8>, Vec<u8>, GenSummary) {
        let mut pcap = Vec::new();
        let mut truth = Vec::new();
        let sum = generate(cfg, &mut pcap, &mut truth).unwrap();
        (pcap, truth, sum)
    }

    fn small_cfg(seed: u64) -> GenConfig {
        GenConfig {
            seed,
            connections: 5,
            target_bytes: 200_000,
            sizes: SizeMix::Small,
            ..GenConfig::default()
        }
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = GenConfig {
            fragment: true,
            deflate: true,
            reorder: 0.1,
            retransmit: 0.1,
            loss: 0.05,
            ..small_cfg(9)
        };
        let (p1, t1, s1) = run(&cfg);
        let (p2, t2, s2) = run(&cfg);
        assert_eq!(p1, p2);
        assert_eq!(t1, t2);
        assert_eq!(s1, s2);
        let (p3, _, _) = run(&GenConfig { seed: 10, ..cfg });
        assert_ne!(p1, p3);
    }

    #[test]
    fn truth_lines_match_summary_and_parse() {
        let (pcap, truth, sum) = run(&GenConfig {
            fragment: true,
            ..small_cfg(1)
        });
        assert_eq!(sum.bytes as usize, pcap.len());
        assert!(sum.bytes >= 200_000, "target size reached: {}", sum.bytes);
        let lines: Vec<serde_json::Value> = truth
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect();
        assert_eq!(lines.len() as u64, sum.messages);
        let frames: u64 = lines.iter().map(|l| l["frames"].as_u64().unwrap()).sum();
        assert_eq!(frames, sum.frames);
        assert!(sum.frames > sum.messages, "some messages were fragmented");
        // Every connection closes both ways, and all 5 are present.
        let closes = lines.iter().filter(|l| l["opcode"] == "close").count();
        assert_eq!(closes, 10);
        for l in &lines {
            assert!(l["packets"].as_array().is_some_and(|p| !p.is_empty()));
            let len = l["len"].as_u64().unwrap() as usize;
            // The payload copy agrees with len and sha256.
            let payload = if let Some(t) = l["text"].as_str() {
                t.as_bytes().to_vec()
            } else {
                base64::engine::general_purpose::STANDARD
                    .decode(l["b64"].as_str().unwrap())
                    .unwrap()
            };
            assert_eq!(payload.len(), len);
            assert_eq!(
                l["sha256"].as_str().unwrap(),
                hex(&Sha256::digest(&payload))
            );
        }
        let conns: std::collections::BTreeSet<u64> =
            lines.iter().map(|l| l["conn"].as_u64().unwrap()).collect();
        assert_eq!(conns.len(), 5);
    }

    #[test]
    fn loss_is_reported_in_truth() {
        let (_, truth, sum) = run(&GenConfig {
            loss: 0.3,
            ..small_cfg(4)
        });
        assert!(sum.lost_messages > 0);
        let lost = truth
            .split(|&b| b == b'\n')
            .filter(|l| l.windows(11).any(|w| w == b"\"lost\":true"))
            .count();
        assert_eq!(lost as u64, sum.lost_messages);
    }

    /// Runs tshark over a generated capture, decoding every server port as
    /// HTTP (tshark only does so by itself on well-known ports); returns
    /// one line per packet with the given fields, or None without tshark.
    fn tshark_fields(pcap: &[u8], ports: &[u16], fields: &[&str]) -> Option<Vec<String>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gen.pcap");
        std::fs::write(&path, pcap).unwrap();
        let mut cmd = std::process::Command::new("tshark");
        cmd.arg("-r")
            .arg(&path)
            .args(["-Y", "websocket", "-T", "fields"]);
        for p in ports {
            cmd.arg("-d").arg(format!("tcp.port=={p},http"));
        }
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                eprintln!("tshark not on PATH: skipping");
                return None;
            }
            Err(e) => panic!("running tshark: {e}"),
        };
        assert!(
            out.status.success(),
            "tshark failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect(),
        )
    }

    #[test]
    fn tshark_finds_every_frame_and_close_code() {
        let (pcap, truth, sum) = run(&GenConfig {
            connections: 3,
            target_bytes: 30_000,
            ..small_cfg(2)
        });
        let Some(lines) = tshark_fields(
            &pcap,
            &sum.server_ports,
            &["websocket.opcode", "websocket.payload.close.status_code"],
        ) else {
            return;
        };
        let mut seen = std::collections::BTreeMap::new();
        let mut close_codes = Vec::new();
        for l in &lines {
            let mut cols = l.split('\t');
            for op in cols
                .next()
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
            {
                *seen.entry(op.parse::<u8>().unwrap()).or_insert(0u64) += 1;
            }
            close_codes.extend(
                cols.next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        let mut want = std::collections::BTreeMap::new();
        let mut want_codes = Vec::new();
        for l in truth.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let v: serde_json::Value = serde_json::from_slice(l).unwrap();
            let op = match v["opcode"].as_str().unwrap() {
                "text" => 1,
                "binary" => 2,
                "close" => 8,
                "ping" => 9,
                _ => 10,
            };
            *want.entry(op).or_insert(0u64) += 1;
            if let Some(c) = v["close_code"].as_u64() {
                want_codes.push(c.to_string());
            }
        }
        assert_eq!(seen, want);
        assert_eq!(seen.values().sum::<u64>(), sum.frames);
        close_codes.sort();
        want_codes.sort();
        assert_eq!(close_codes, want_codes);
    }

    #[test]
    fn tshark_counts_fragmented_compressed_frames() {
        let cfg = GenConfig {
            fragment: true,
            deflate: true,
            mss: 1448,
            ipv6: true,
            ..small_cfg(12)
        };
        let (pcap, _, sum) = run(&cfg);
        let Some(lines) = tshark_fields(&pcap, &sum.server_ports, &["websocket.opcode"]) else {
            return;
        };
        let frames: u64 = lines
            .iter()
            .map(|l| l.split(',').filter(|s| !s.is_empty()).count() as u64)
            .sum();
        assert!(sum.frames > sum.messages);
        assert_eq!(frames, sum.frames);
    }

    #[test]
    fn text_is_exact_length_utf8() {
        let pool = text_pool(0);
        let mut rng = Rng::new(5);
        let mut out = Vec::new();
        for len in (0..300).chain([4096, 2_000_000]) {
            fill_text(&mut rng, &pool, len, &mut out);
            assert_eq!(out.len(), len);
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }

    #[test]
    fn message_lengths_stay_in_range() {
        let mut rng = Rng::new(2);
        for _ in 0..2000 {
            assert!(message_len(&mut rng, SizeMix::Small) <= 256);
            assert!((1..=262_144).contains(&message_len(&mut rng, SizeMix::Mixed)));
            assert!((65_536..=4_194_304).contains(&message_len(&mut rng, SizeMix::Large)));
        }
    }

    #[test]
    fn size_mix_parses() {
        assert_eq!("large".parse::<SizeMix>(), Ok(SizeMix::Large));
        assert!("huge".parse::<SizeMix>().is_err());
    }
}
