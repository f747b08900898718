//! The tls stage over real wss:// captures (testdata/tls/, recorded by
//! testdata/record/record_tls.sh): capture → decode → tcp → tls, then the
//! decrypted streams are checked against what the applications logged.
//!
//! - each decrypted client stream starts with the HTTP upgrade request and
//!   each server stream with the 101 response;
//! - the WebSocket messages decoded from the decrypted streams (ws frame
//!   decoder, permessage-deflate inflated here) equal the truth file: per
//!   connection and direction, the same opcodes in the same order with the
//!   same payload SHA-256;
//! - the same capture with its keys embedded by editcap (pcapng Decryption
//!   Secrets Block) decrypts identically with no key file;
//! - a key log without one connection's lines gives `tls_no_key` for that
//!   connection (with its SNI and client random) and nothing else changes;
//! - tshark with the same key log decrypts the same upgrade requests.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use wssniff::capture::CaptureReader;
use wssniff::decode::{DecodeConfig, Decoder};
use wssniff::http::{Feed, HandshakeTracker, HttpLimits};
use wssniff::tcp::{
    CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, Side, StreamEvent, TcpConfig,
};
use wssniff::tls::{
    ChunkMeta, KeyLogLimits, KeySource, KeyStore, TlsConn, TlsEvent, TlsInfo, TlsLimits, Verdict,
};
use wssniff::ws::{FrameConfig, FrameDecoder, FrameEvent};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/tls")
}

/// (capture name, version, suite) as record_tls.sh asked for them.
const CAPTURES: &[(&str, &str, &str)] = &[
    ("py-tls13-aes128gcm", "TLS 1.3", "TLS_AES_128_GCM_SHA256"),
    (
        "py-tls13-aes256gcm-deflate",
        "TLS 1.3",
        "TLS_AES_256_GCM_SHA384",
    ),
    (
        "py-tls13-chacha20",
        "TLS 1.3",
        "TLS_CHACHA20_POLY1305_SHA256",
    ),
    (
        "py-tls12-aes128gcm",
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "py-tls12-chacha20-deflate",
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    ("node-tls13-deflate", "TLS 1.3", "TLS_AES_256_GCM_SHA384"),
    (
        "node-tls12-aes256gcm",
        "TLS 1.2",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
];

#[derive(Default)]
struct Flow {
    client_port: u16,
    plain: [Vec<u8>; 2],
    anomalies: Vec<(&'static str, String)>,
    gaps: u64,
    gap_bytes: [u64; 2],
    info: TlsInfo,
    verdict: Option<Verdict>,
    /// Packets of every plaintext record lie within the flow's packets.
    packets_ok: bool,
}

struct St {
    tls: TlsConn,
    flow: Flow,
}

struct H {
    keys: KeyStore,
    done: Vec<Flow>,
}

fn collect<'f>(flow: &'f mut Flow) -> impl FnMut(TlsEvent<'_>) + 'f {
    move |ev| match ev {
        TlsEvent::Plaintext {
            side,
            offset,
            data,
            first_packet,
            last_packet,
            ..
        } => {
            assert_eq!(
                offset,
                flow.plain[side.index()].len() as u64 + flow.gap_bytes[side.index()]
            );
            flow.packets_ok &= first_packet >= 1 && first_packet <= last_packet;
            flow.plain[side.index()].extend_from_slice(data);
        }
        TlsEvent::Gap { side, len, .. } => {
            flow.gaps += len;
            flow.gap_bytes[side.index()] += len;
        }
        TlsEvent::Anomaly { anomaly, .. } => flow.anomalies.push((anomaly.name, anomaly.detail)),
    }
}

impl FlowHandler for H {
    type State = St;
    fn open(&mut self, info: &FlowInfo) -> St {
        St {
            tls: TlsConn::new(TlsLimits::default()),
            flow: Flow {
                client_port: info.orig.port(),
                packets_ok: true,
                ..Default::default()
            },
        }
    }
    type Error = std::convert::Infallible;
    fn event(
        &mut self,
        st: &mut St,
        _info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> Result<Interest, Self::Error> {
        let v = {
            let mut out = collect(&mut st.flow);
            match ev {
                StreamEvent::Data {
                    side,
                    offset,
                    seq,
                    data,
                    packet,
                    ts,
                } => st.tls.feed(
                    side,
                    ChunkMeta {
                        offset,
                        seq,
                        packet,
                        ts,
                    },
                    data,
                    &self.keys,
                    &mut out,
                ),
                StreamEvent::Gap {
                    side,
                    offset,
                    len,
                    packet,
                    ts,
                    ..
                } => st.tls.gap(side, offset, len, packet, ts, &mut out),
                _ => st.tls.verdict(),
            }
        };
        st.flow.verdict = Some(v);
        Ok(Interest::Continue)
    }
    fn close(
        &mut self,
        mut st: St,
        _info: &FlowInfo,
        _reason: CloseReason,
    ) -> Result<(), Self::Error> {
        st.tls.finish(&self.keys, &mut collect(&mut st.flow));
        st.flow.info = st.tls.info().clone();
        self.done.push(st.flow);
        Ok(())
    }
}

/// Runs the stages over `pcap`; keys from `keylog` text and from the capture's DSBs.
fn run(pcap: &Path, keylog: Option<&[u8]>) -> Vec<Flow> {
    let mut keys = KeyStore::new(KeyLogLimits::default());
    if let Some(k) = keylog {
        keys.feed_text(k, KeySource::KeyLog(0));
    }
    let mut h = H {
        keys,
        done: Vec::new(),
    };
    let mut r = CaptureReader::open(pcap).unwrap();
    let mut dec = Decoder::new(DecodeConfig::default());
    let mut flows: FlowTable<St> = FlowTable::new(TcpConfig::default());
    let mut secrets = Vec::new();
    let mut n = 0;
    while let Some(p) = r.next_packet().unwrap() {
        n += 1;
        let (lt, data, orig, ts) = (p.link_type, p.data.to_vec(), p.orig_len, p.ts);
        r.drain_secrets(&mut secrets);
        for s in secrets.drain(..) {
            h.keys.feed_text(&s, KeySource::Dsb);
        }
        if let Ok(seg) = dec.decode(lt, &data, orig, ts) {
            flows.process(&seg, n, ts, &mut h).unwrap();
        }
    }
    flows.finish(&mut h).unwrap();
    h.done.sort_by_key(|f| f.client_port);
    h.done
}

fn read(name: &str, ext: &str) -> Vec<u8> {
    std::fs::read(dir().join(format!("{name}.{ext}"))).unwrap()
}

fn sha(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// (opcode name, sha256) of every message and control frame of a decrypted
/// stream after its HTTP head; compressed messages are inflated.
fn messages(stream: &[u8], c2s: bool) -> Vec<(String, String)> {
    let head_end = memchr::memmem::find(stream, b"\r\n\r\n").expect("HTTP head") + 4;
    let ws = &stream[head_end..];
    let mut dec = FrameDecoder::new(FrameConfig { expect_masked: c2s });
    let mut frames: Vec<(bool, u8, u8, Vec<u8>)> = Vec::new();
    dec.feed(
        ws,
        head_end as u64,
        1,
        Default::default(),
        &mut |ev| match ev {
            FrameEvent::Header { hdr, .. } => {
                frames.push((hdr.fin, hdr.rsv, hdr.opcode, Vec::new()))
            }
            FrameEvent::Payload {
                data,
                payload_offset,
                mask,
                ..
            } => {
                let f = frames.last_mut().unwrap();
                let mut d = data.to_vec();
                if let Some(m) = mask {
                    wssniff::ws::unmask(&mut d, m, payload_offset as usize);
                }
                f.3.extend_from_slice(&d);
            }
            FrameEvent::Anomaly(a) => panic!("ws anomaly {a:?}"),
            _ => {}
        },
    );
    let mut inflater = flate2::Decompress::new(false);
    let mut out = Vec::new();
    let mut msg: Option<(u8, bool, Vec<u8>)> = None;
    let name = |op: u8| match op {
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "other",
    };
    for (fin, rsv, op, payload) in frames {
        if op >= 8 {
            out.push((name(op).to_string(), sha(&payload)));
            continue;
        }
        let m = msg.get_or_insert((op, rsv & 4 != 0, Vec::new()));
        m.2.extend_from_slice(&payload);
        if fin {
            let (op, compressed, mut data) = msg.take().unwrap();
            if compressed {
                data.extend_from_slice(&[0, 0, 0xff, 0xff]);
                let mut inflated = Vec::with_capacity(data.len() * 4 + 64);
                let mut pos = 0;
                loop {
                    inflated.reserve(64 << 10);
                    let before = inflater.total_in();
                    inflater
                        .decompress_vec(&data[pos..], &mut inflated, flate2::FlushDecompress::Sync)
                        .unwrap();
                    pos += (inflater.total_in() - before) as usize;
                    if pos >= data.len() && inflated.len() < inflated.capacity() {
                        break;
                    }
                }
                data = inflated;
            }
            out.push((name(op).to_string(), sha(&data)));
        }
    }
    out
}

/// The truth file, per client port and direction: (opcode, sha256) in order.
fn truth(name: &str) -> BTreeMap<(u16, String), Vec<(String, String)>> {
    let mut m: BTreeMap<(u16, String), Vec<(String, String)>> = BTreeMap::new();
    for line in String::from_utf8(read(name, "truth.jsonl"))
        .unwrap()
        .lines()
    {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let port = v["client_port"].as_u64().unwrap() as u16;
        let dir = v["dir"].as_str().unwrap().to_string();
        m.entry((port, dir)).or_default().push((
            v["opcode"].as_str().unwrap().into(),
            v["sha256"].as_str().unwrap().into(),
        ));
    }
    m
}

fn check_decrypted(name: &str, flows: &[Flow], version: &str, suite: &str) {
    assert_eq!(flows.len(), 3, "{name}: three connections");
    let truth = truth(name);
    for f in flows {
        assert!(f.anomalies.is_empty(), "{name}: {:?}", f.anomalies);
        assert_eq!(f.gaps, 0, "{name}");
        assert!(f.packets_ok, "{name}");
        assert_eq!(f.verdict, Some(Verdict::Tls), "{name}");
        assert_eq!(f.info.version_name(), Some(version), "{name}");
        assert_eq!(f.info.cipher_suite_name().as_deref(), Some(suite), "{name}");
        assert_eq!(f.info.sni.as_deref(), Some("localhost"), "{name}");
        assert!(
            f.plain[0].starts_with(b"GET /c/"),
            "{name}: c2s starts {:?}",
            String::from_utf8_lossy(&f.plain[0][..20.min(f.plain[0].len())])
        );
        assert!(
            f.plain[1].starts_with(b"HTTP/1.1 101 "),
            "{name}: s2c starts {:?}",
            String::from_utf8_lossy(&f.plain[1][..20.min(f.plain[1].len())])
        );
        // The http stage takes the decrypted streams as it takes plaintext ones.
        let mut http = HandshakeTracker::new(HttpLimits::default());
        let head_len = memchr::memmem::find(&f.plain[0], b"\r\n\r\n").unwrap() + 4;
        assert!(matches!(
            http.feed(0, &f.plain[0][..head_len], 0, 1, Default::default()),
            Feed::Continue
        ));
        match http.feed(1, &f.plain[1], 0, 2, Default::default()) {
            Feed::Upgraded { handshake, .. } => assert!(
                handshake.anomalies.is_empty(),
                "{name}: {:?}",
                handshake.anomalies
            ),
            _ => panic!("{name}: the http stage saw no upgrade in the decrypted streams"),
        }
        for (side, dir) in [(Side::Orig, "c2s"), (Side::Resp, "s2c")] {
            let got = messages(&f.plain[side.index()], side == Side::Orig);
            let want = truth
                .get(&(f.client_port, dir.to_string()))
                .unwrap_or_else(|| panic!("{name}: no truth for port {}", f.client_port));
            assert_eq!(&got, want, "{name} port {} {dir}", f.client_port);
        }
    }
}

#[test]
fn real_wss_captures_decrypt_to_exactly_what_was_sent() {
    for (name, version, suite) in CAPTURES {
        let flows = run(
            &dir().join(format!("{name}.pcap")),
            Some(&read(name, "keys")),
        );
        check_decrypted(name, &flows, version, suite);
        assert_eq!(flows[0].info.key_source, Some(KeySource::KeyLog(0)));
    }
}

#[test]
fn keys_embedded_by_editcap_decrypt_with_no_key_file() {
    let (name, version, suite) = CAPTURES[0];
    let flows = run(&dir().join(format!("{name}.dsb.pcapng")), None);
    check_decrypted(name, &flows, version, suite);
    assert!(flows
        .iter()
        .all(|f| f.info.key_source == Some(KeySource::Dsb)));
    let with_file = run(
        &dir().join(format!("{name}.pcap")),
        Some(&read(name, "keys")),
    );
    for (a, b) in flows.iter().zip(&with_file) {
        assert_eq!(a.plain, b.plain);
    }
}

#[test]
fn without_keys_every_connection_is_tls_no_key() {
    for (name, _, _) in CAPTURES {
        let flows = run(&dir().join(format!("{name}.pcap")), None);
        assert_eq!(flows.len(), 3);
        for f in &flows {
            let names: Vec<_> = f.anomalies.iter().map(|a| a.0).collect();
            assert_eq!(names, vec!["tls_no_key"], "{name}");
            assert!(f.plain.iter().all(|p| p.is_empty()));
            let cr = f.info.client_random_hex().unwrap();
            assert!(
                f.anomalies[0].1.contains(&cr) && f.anomalies[0].1.contains("SNI localhost"),
                "{}",
                f.anomalies[0].1
            );
        }
    }
}

#[test]
fn key_log_without_one_connections_lines_names_that_connection() {
    for (name, version, suite) in CAPTURES {
        let keys = read(name, "keys");
        let full = run(&dir().join(format!("{name}.pcap")), Some(&keys));
        let victim = full[1].info.client_random_hex().unwrap();
        let text = String::from_utf8(keys).unwrap();
        let cut: String = text
            .lines()
            .filter(|l| !l.contains(&victim))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(cut.len() < text.len());
        let flows = run(&dir().join(format!("{name}.pcap")), Some(cut.as_bytes()));
        for (i, f) in flows.iter().enumerate() {
            if i == 1 {
                assert_eq!(f.anomalies.len(), 1, "{name}: {:?}", f.anomalies);
                assert_eq!(f.anomalies[0].0, "tls_no_key");
                assert!(f.anomalies[0].1.contains(&victim));
                assert!(f.plain.iter().all(|p| p.is_empty()));
            } else {
                assert!(f.anomalies.is_empty(), "{name}: {:?}", f.anomalies);
                assert_eq!(f.plain, full[i].plain);
                assert_eq!(f.info.version_name(), Some(*version));
                assert_eq!(f.info.cipher_suite_name().as_deref(), Some(*suite));
            }
        }
    }
}

#[test]
fn corrupted_ciphertext_byte_gives_decrypt_failed_and_no_wrong_plaintext() {
    let (name, _, _) = CAPTURES[3]; // TLS 1.2 AES-GCM
    let full = run(
        &dir().join(format!("{name}.pcap")),
        Some(&read(name, "keys")),
    );
    // Flip one byte near the end of the capture's largest packet (ciphertext).
    let mut pcap = read(name, "pcap");
    let mut off = 24;
    let (mut best, mut best_len) = (0, 0);
    while off + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        if incl > best_len {
            (best, best_len) = (off + 16, incl);
        }
        off += 16 + incl;
    }
    pcap[best + best_len - 100] ^= 0x55;
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), &pcap).unwrap();
    let flows = run(tmp.path(), Some(&read(name, "keys")));
    let failed: Vec<_> = flows
        .iter()
        .flat_map(|f| &f.anomalies)
        .map(|a| a.0)
        .collect();
    assert_eq!(failed, vec!["tls_decrypt_failed"]);
    let f = flows
        .iter()
        .zip(&full)
        .find(|(f, _)| !f.anomalies.is_empty())
        .unwrap();
    assert!(f.0.gaps > 0);
    // Each direction's output is a prefix-and-suffix of the real one: nothing invented.
    for s in 0..2 {
        let (got, want) = (&f.0.plain[s], &f.1.plain[s]);
        assert!(got.len() < want.len() || got == want);
        let prefix = got
            .iter()
            .zip(want.iter())
            .take_while(|(a, b)| a == b)
            .count();
        assert!(
            want.ends_with(&got[prefix..]),
            "bytes after the gap are the real ones"
        );
    }
}

#[test]
fn tshark_decrypts_the_same_upgrade_requests() {
    let Ok(out) = std::process::Command::new("tshark").arg("-v").output() else {
        eprintln!("tshark not installed: skipped");
        return;
    };
    assert!(out.status.success());
    for (name, _, _) in CAPTURES {
        let keys = dir().join(format!("{name}.keys"));
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(dir().join(format!("{name}.pcap")))
            .arg("-o")
            .arg(format!("tls.keylog_file:{}", keys.display()))
            .args([
                "-Y",
                "http.request",
                "-T",
                "fields",
                "-e",
                "tcp.srcport",
                "-e",
                "http.request.uri",
                "-e",
                "http.sec_websocket_key",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let mut theirs: Vec<String> = text.lines().map(str::to_string).collect();
        theirs.sort();
        let flows = run(
            &dir().join(format!("{name}.pcap")),
            Some(&read(name, "keys")),
        );
        let mut ours: Vec<String> = flows
            .iter()
            .map(|f| {
                let head = String::from_utf8_lossy(&f.plain[0]);
                let uri = head.split(' ').nth(1).unwrap_or("").to_string();
                let key = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("Sec-WebSocket-Key: ")
                            .or_else(|| l.strip_prefix("sec-websocket-key: "))
                    })
                    .unwrap_or("")
                    .to_string();
                format!("{}\t{uri}\t{key}", f.client_port)
            })
            .collect();
        ours.sort();
        assert_eq!(ours, theirs, "{name}");
    }
}

/// Classic pcap (little-endian) without its largest packet.
fn pcap_without_largest_packet(pcap: &[u8]) -> Vec<u8> {
    let mut records = Vec::new();
    let mut off = 24;
    while off + 16 <= pcap.len() {
        let incl = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        records.push((off, 16 + incl));
        off += 16 + incl;
    }
    let largest = records.iter().max_by_key(|r| r.1).copied().unwrap();
    let mut out = pcap[..24].to_vec();
    for r in records {
        if r != largest {
            out.extend_from_slice(&pcap[r.0..r.0 + r.1]);
        }
    }
    out
}

#[test]
fn lost_segment_inside_a_tls_stream_resyncs_and_reports_the_loss() {
    for (name, _, _) in CAPTURES {
        let keys = read(name, "keys");
        let full = run(&dir().join(format!("{name}.pcap")), Some(&keys));
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), pcap_without_largest_packet(&read(name, "pcap"))).unwrap();
        let flows = run(tmp.path(), Some(&keys));
        let hit: Vec<_> = flows
            .iter()
            .zip(&full)
            .filter(|(f, _)| !f.anomalies.is_empty())
            .collect();
        assert_eq!(hit.len(), 1, "{name}: one connection lost a segment");
        let (f, whole) = hit[0];
        let names: Vec<_> = f.anomalies.iter().map(|a| a.0).collect();
        assert_eq!(names, vec!["tls_resync"], "{name}: {:?}", f.anomalies);
        assert!(f.gaps > 0, "{name}: the loss is a gap");
        for s in 0..2 {
            let (got, want) = (&f.plain[s], &whole.plain[s]);
            let prefix = got
                .iter()
                .zip(want.iter())
                .take_while(|(a, b)| a == b)
                .count();
            assert!(
                want.ends_with(&got[prefix..]),
                "{name}: every byte after the gap is a real one"
            );
            if got.len() < want.len() {
                // Decryption resumed: something after the gap was decrypted.
                assert!(
                    got.len() > prefix,
                    "{name}: nothing decrypted after the gap"
                );
                // The estimate covers what is missing to within the records' overhead.
                let missing = (want.len() - got.len()) as i64;
                assert!(
                    (f.gap_bytes[s] as i64 - missing).abs() < 2048,
                    "{name}: gap {} vs missing {missing}",
                    f.gap_bytes[s]
                );
            }
        }
    }
}
