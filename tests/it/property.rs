//! Property tests: random sessions written with `wssniff::synth` (pcap
//! writer, scripted TCP connection, independent WebSocket encoder) must be
//! decoded exactly: every message's payload, opcode, direction and order,
//! with no gaps and no anomalies. Plus the seeded generator
//! (`synth::gen::generate`) against its own truth file, without and with loss.

use crate::common;

use flate2::{Compress, Compression};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use wssniff::pipeline::{run_files, Config, NoProgress};
use wssniff::synth::conn::Conn;
use wssniff::synth::pcap::PcapWriter;
use wssniff::synth::ws::{self, opcode, RSV1};
use wssniff::types::{Dir, Timestamp};

#[derive(Clone, Debug)]
struct MsgSpec {
    c2s: bool,
    opcode: u8,
    payload: Vec<u8>,
    /// Frames for a data message (control frames are never fragmented).
    frames: usize,
    compress: bool,
}

#[derive(Clone, Debug)]
struct SessionSpec {
    ipv6: bool,
    isn: [u32; 2],
    mss: usize,
    deflate: bool,
    msgs: Vec<MsgSpec>,
    /// Per segment: swap with the next one / also send it twice.
    reorder: Vec<bool>,
    dup: Vec<bool>,
}

/// Sizes with the length-encoding and segment boundaries favoured.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        3 => prop::sample::select(vec![0usize, 1, 125, 126, 127, 65_535, 65_536, 65_537, 70_000]),
        4 => 0usize..300,
        1 => 0usize..=70_000,
    ]
}

fn msg() -> impl Strategy<Value = MsgSpec> {
    (
        any::<bool>(),
        0u8..4,
        size(),
        1usize..5,
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(c2s, kind, len, frames, compress, seed)| {
            let op = match kind {
                0 => opcode::TEXT,
                1 | 2 => opcode::BINARY,
                _ => opcode::PING,
            };
            let len = if op == opcode::PING { len % 126 } else { len };
            let mut rng = wssniff::synth::Rng::new(seed);
            let payload: Vec<u8> = if op == opcode::TEXT {
                // Valid UTF-8 with some compressible repetition.
                (0..len)
                    .map(|i| b"abc def\n"[(i + rng.below(3) as usize) % 8])
                    .collect()
            } else {
                let mut p = vec![0u8; len];
                rng.fill(&mut p);
                p
            };
            MsgSpec {
                c2s,
                opcode: op,
                frames: if op == opcode::PING { 1 } else { frames },
                compress: compress && op != opcode::PING,
                payload,
            }
        })
}

fn session() -> impl Strategy<Value = SessionSpec> {
    (
        any::<bool>(),
        (0u32..4096, 0u32..4096, any::<bool>()),
        prop_oneof![1 => 1usize..64, 3 => 64usize..1500, 1 => 1500usize..20_000],
        any::<bool>(),
        prop::collection::vec(msg(), 1..8),
        prop::collection::vec(prop::bool::weighted(0.1), 64),
        prop::collection::vec(prop::bool::weighted(0.1), 64),
    )
        .prop_map(
            |(ipv6, (a, b, wrap), mss, deflate, msgs, reorder, dup)| SessionSpec {
                ipv6,
                // Near 2^32 so sequence numbers wrap inside the session.
                isn: if wrap {
                    [u32::MAX - a, u32::MAX - b]
                } else {
                    [a * 7919, b * 104_729]
                },
                mss,
                deflate,
                msgs,
                reorder,
                dup,
            },
        )
}

/// Writes `bytes` in `mss` segments with the spec's reorderings and duplicates.
fn send_impaired(
    conn: &mut Conn,
    w: &mut PcapWriter<Vec<u8>>,
    dir: Dir,
    bytes: &[u8],
    spec: &SessionSpec,
    k: &mut usize,
) {
    let base = conn.next_offset(dir);
    let segs: Vec<(u32, &[u8])> = bytes
        .chunks(spec.mss)
        .scan(base, |off, c| {
            let at = *off;
            *off = off.wrapping_add(c.len() as u32);
            Some((at, c))
        })
        .collect();
    let mut order: Vec<usize> = (0..segs.len()).collect();
    let mut i = 0;
    while i + 1 < order.len() {
        if spec.reorder[(*k + i) % spec.reorder.len()] {
            order.swap(i, i + 1);
            i += 1;
        }
        i += 1;
    }
    for (j, &s) in order.iter().enumerate() {
        let (off, data) = segs[s];
        let flags = wssniff::synth::packet::flags::ACK | wssniff::synth::packet::flags::PSH;
        conn.segment(w, dir, off, data, flags).expect("write");
        if spec.dup[(*k + j) % spec.dup.len()] {
            conn.segment(w, dir, off, data, flags).expect("write");
        }
    }
    *k += segs.len();
    conn.advance(dir, bytes.len() as u32);
}

fn build(spec: &SessionSpec) -> Vec<u8> {
    let (c, s): (IpAddr, IpAddr) = if spec.ipv6 {
        (
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(),
        )
    } else {
        (
            Ipv4Addr::new(10, 0, 0, 1).into(),
            Ipv4Addr::new(10, 0, 0, 2).into(),
        )
    };
    let mut w = PcapWriter::new(Vec::new()).expect("pcap");
    let mut conn = Conn::new(
        SocketAddr::new(c, 40000),
        SocketAddr::new(s, 8080),
        spec.isn[0],
        spec.isn[1],
    );
    conn.handshake(&mut w, Timestamp::new(1_700_000_000, 0))
        .expect("write");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let ext = spec.deflate.then_some("permessage-deflate");
    conn.send(
        &mut w,
        Dir::C2s,
        &ws::upgrade_request("h", "/p", key, ext),
        1460,
    )
    .expect("write");
    conn.send(&mut w, Dir::S2c, &ws::upgrade_response(key, ext), 1460)
        .expect("write");
    let mut comp = [
        Compress::new(Compression::default(), false),
        Compress::new(Compression::default(), false),
    ];
    let mut k = 0;
    for (n, m) in spec.msgs.iter().enumerate() {
        let dir = if m.c2s { Dir::C2s } else { Dir::S2c };
        let mask = m.c2s.then_some([n as u8, 0x5a, 0xa5, 0x33]);
        let compressed = spec.deflate && m.compress;
        let body = if compressed {
            ws::deflate_message(&mut comp[dir.index()], &m.payload)
        } else {
            m.payload.clone()
        };
        let mut bytes = Vec::new();
        let per = body.len().div_ceil(m.frames).max(1);
        let parts: Vec<&[u8]> = if body.is_empty() {
            vec![&[][..]]
        } else {
            body.chunks(per).collect()
        };
        for (i, part) in parts.iter().enumerate() {
            let op = if i == 0 {
                m.opcode
            } else {
                opcode::CONTINUATION
            };
            let rsv = if i == 0 && compressed { RSV1 } else { 0 };
            ws::frame(&mut bytes, i + 1 == parts.len(), rsv, op, mask, part);
        }
        send_impaired(&mut conn, &mut w, dir, &bytes, spec, &mut k);
    }
    conn.fin(&mut w, Dir::C2s).expect("write");
    conn.fin(&mut w, Dir::S2c).expect("write");
    w.into_inner()
}

fn analyse_bytes(pcap: &[u8]) -> common::Keep {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("s.pcap");
    std::fs::write(&p, pcap).expect("write");
    let out = run_files(
        &[p],
        Config::default(),
        common::Keep::default(),
        &mut NoProgress,
    )
    .expect("run");
    assert!(out.capture_error.is_none());
    out.sink
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_sessions_come_back_exactly(spec in session()) {
        let got = analyse_bytes(&build(&spec));
        // A message in more segments than the per-message packet list holds
        // (65,536, docs/limits.md) is rightly reported: tiny MSS, 70 kB.
        let spans_too_many = spec.msgs.iter().any(|m| (m.payload.len() + 14) / spec.mss >= 65_000);
        let bad: Vec<_> = got.anomalies.iter()
            .filter(|a| !common::BENIGN_ANOMALIES.contains(&a.name.as_str()))
            .filter(|a| !(spans_too_many && a.name == "ws_too_many_packets"))
            .map(|a| format!("{} {}", a.name, a.detail)).collect();
        prop_assert!(bad.is_empty(), "anomalies: {:?}", bad);
        prop_assert!(got.gaps.is_empty(), "gaps: {:?}", got.gaps);
        prop_assert_eq!(got.sessions.len(), 1);
        for d in [Dir::C2s, Dir::S2c] {
            let want: Vec<&MsgSpec> = spec.msgs.iter().filter(|m| m.c2s == (d == Dir::C2s)).collect();
            let have: Vec<&common::Msg> = got.messages.iter().filter(|m| m.dir == d).collect();
            prop_assert_eq!(have.len(), want.len(), "{:?} message count", d);
            for (i, (h, w)) in have.iter().zip(&want).enumerate() {
                prop_assert_eq!(h.opcode, w.opcode, "{:?} #{} opcode", d, i);
                prop_assert!(h.payload == w.payload, "{:?} #{}: payload differs ({} vs {} bytes)", d, i, h.payload.len(), w.payload.len());
                prop_assert!(!h.incomplete && !h.truncated && !h.inflate_failed);
                prop_assert_eq!(h.compressed, spec.deflate && w.compress);
            }
        }
    }
}

/// The generator's truth, per (conn, dir), in order.
fn truth_by_stream(
    truth: &[serde_json::Value],
) -> std::collections::BTreeMap<(u64, String), Vec<&serde_json::Value>> {
    let mut m: std::collections::BTreeMap<(u64, String), Vec<&serde_json::Value>> =
        Default::default();
    for t in truth {
        m.entry((
            t["client_port"].as_u64().unwrap_or(0),
            t["dir"].as_str().unwrap_or("").to_owned(),
        ))
        .or_default()
        .push(t);
    }
    m
}

fn run_generated(loss: f64) -> (common::Keep, Vec<serde_json::Value>) {
    use wssniff::synth::gen::{generate, GenConfig, SizeMix};
    let cfg = GenConfig {
        seed: 7,
        connections: 20,
        target_bytes: 5 << 20,
        sizes: SizeMix::Mixed,
        fragment: true,
        deflate: true,
        reorder: 0.05,
        retransmit: 0.05,
        loss,
        ..GenConfig::default()
    };
    let (mut pcap, mut truth) = (Vec::new(), Vec::new());
    let summary = generate(&cfg, &mut pcap, &mut truth).expect("generate");
    if loss > 0.0 {
        assert!(summary.lost_messages > 0, "loss {loss} lost nothing");
    }
    let truth: Vec<serde_json::Value> = String::from_utf8(truth)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("truth JSON"))
        .collect();
    (analyse_bytes(&pcap), truth)
}

fn ports(got: &common::Keep) -> std::collections::BTreeMap<u64, u64> {
    got.sessions
        .iter()
        .map(|s| (s.id, u64::from(common::port_of(&s.client))))
        .collect()
}

#[test]
fn generated_capture_matches_generator_truth() {
    let (got, truth) = run_generated(0.0);
    let bad: Vec<_> = got
        .anomalies
        .iter()
        .filter(|a| !common::BENIGN_ANOMALIES.contains(&a.name.as_str()))
        .collect();
    assert!(bad.is_empty(), "anomalies: {bad:?}");
    assert!(got.gaps.is_empty(), "gaps: {:?}", got.gaps);
    assert_eq!(got.sessions.len(), 20);
    let port = ports(&got);
    let want = truth_by_stream(&truth);
    let mut compared = 0;
    for ((cport, dir), ts) in &want {
        let have: Vec<&common::Msg> = got
            .messages
            .iter()
            .filter(|m| port[&m.session] == *cport && common::dir_name(m.dir) == dir)
            .collect();
        assert_eq!(have.len(), ts.len(), "port {cport} {dir}");
        for (i, (h, t)) in have.iter().zip(ts).enumerate() {
            assert_eq!(
                wssniff::session::opcode_name(h.opcode),
                t["opcode"].as_str().unwrap_or(""),
                "port {cport} {dir} #{i}"
            );
            assert_eq!(
                h.len,
                t["len"].as_u64().unwrap_or(u64::MAX),
                "port {cport} {dir} #{i}"
            );
            assert_eq!(
                Some(common::sha256_hex(&h.payload).as_str()),
                t["sha256"].as_str(),
                "port {cport} {dir} #{i}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, truth.len());
}

#[test]
fn generated_capture_with_loss_reports_lost_messages() {
    let (got, truth) = run_generated(0.02);
    assert!(!got.gaps.is_empty(), "loss must show as gaps");
    let port = ports(&got);
    let want = truth_by_stream(&truth);
    let (mut exact, mut lost_flagged) = (0, 0);
    for ((cport, dir), ts) in &want {
        let have: Vec<&common::Msg> = got
            .messages
            .iter()
            .filter(|m| port[&m.session] == *cport && common::dir_name(m.dir) == dir)
            .collect();
        // Every message we report complete must be one that was sent, in
        // order: compare the complete ones against the unlost truth by hash.
        let sent: Vec<&str> = ts
            .iter()
            .filter(|t| t["lost"].as_bool() != Some(true))
            .filter_map(|t| t["sha256"].as_str())
            .collect();
        let mut next = 0;
        for h in &have {
            if h.incomplete || h.inflate_failed {
                lost_flagged += 1;
                continue;
            }
            let sha = common::sha256_hex(&h.payload);
            match sent[next..].iter().position(|s| *s == sha) {
                Some(p) => {
                    next += p + 1;
                    exact += 1;
                }
                None => panic!(
                    "port {cport} {dir}: complete message #{} (packets {:?}) was never sent intact",
                    h.index, h.packets
                ),
            }
        }
        // Messages before the first loss of the stream are all exact.
        let first_lost = ts
            .iter()
            .position(|t| t["lost"].as_bool() == Some(true))
            .unwrap_or(ts.len());
        for (i, t) in ts.iter().take(first_lost).enumerate() {
            let h = have
                .get(i)
                .unwrap_or_else(|| panic!("port {cport} {dir}: message #{i} missing"));
            assert_eq!(
                Some(common::sha256_hex(&h.payload).as_str()),
                t["sha256"].as_str()
            );
        }
    }
    assert!(exact > truth.len() / 2, "{exact} exact of {}", truth.len());
    assert!(
        lost_flagged > 0 || got.gaps.iter().all(|g| g.session.is_none()),
        "losses but nothing flagged incomplete"
    );
}
