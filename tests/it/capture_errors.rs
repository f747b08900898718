//! Broken capture files, one per failure mode, run through the `wssniff`
//! binary: each gives its own error message naming the byte offset, the
//! right exit status (1 corrupt, 3 truncated), and everything before the
//! failure is analysed and reported (the session before it, complete).

use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use wssniff::synth::conn::Conn;
use wssniff::synth::pcap::{PcapWriter, PcapngWriter, TsResolution};
use wssniff::synth::ws as sws;
use wssniff::types::{Dir, Timestamp};

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The packets of one complete WebSocket session (a text message each way,
/// close handshake, FIN both ways), as Ethernet frames with timestamps.
fn session_packets() -> Vec<(Timestamp, Vec<u8>)> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let c: SocketAddr = "10.0.0.1:40000".parse().unwrap();
    let s: SocketAddr = "10.0.0.2:80".parse().unwrap();
    let mut conn = Conn::new(c, s, 1000, 50_000);
    conn.handshake(&mut w, Timestamp::new(1_700_000_000, 0))
        .unwrap();
    let mask = Some([1, 2, 3, 4]);
    let mut send = |w: &mut PcapWriter<Vec<u8>>, dir: Dir, bytes: &[u8]| {
        conn.send(w, dir, bytes, 1460).unwrap();
    };
    send(
        &mut w,
        Dir::C2s,
        &sws::upgrade_request("example", "/ws", KEY, None),
    );
    send(&mut w, Dir::S2c, &sws::upgrade_response(KEY, None));
    let mut f = Vec::new();
    sws::frame(&mut f, true, 0, 1, mask, b"hello before the damage");
    send(&mut w, Dir::C2s, &f);
    f.clear();
    sws::frame(&mut f, true, 0, 1, None, b"echo before the damage");
    send(&mut w, Dir::S2c, &f);
    f.clear();
    sws::frame(&mut f, true, 0, 8, mask, &sws::close_payload(1000, ""));
    send(&mut w, Dir::C2s, &f);
    f.clear();
    sws::frame(&mut f, true, 0, 8, None, &sws::close_payload(1000, ""));
    send(&mut w, Dir::S2c, &f);
    conn.fin(&mut w, Dir::C2s).unwrap();
    conn.fin(&mut w, Dir::S2c).unwrap();
    split_pcap(&w.into_inner())
}

/// Splits a little-endian microsecond pcap back into its packets.
fn split_pcap(file: &[u8]) -> Vec<(Timestamp, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 24;
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap());
    while at + 16 <= file.len() {
        let ts = Timestamp::new(i64::from(u32_at(file, at)), u32_at(file, at + 4) * 1000);
        let caplen = u32_at(file, at + 8) as usize;
        out.push((ts, file[at + 16..at + 16 + caplen].to_vec()));
        at += 16 + caplen;
    }
    out
}

/// A pcap holding the whole session: damage is appended after it.
fn good_pcap() -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (ts, p) in session_packets() {
        w.write_packet(ts, &p).unwrap();
    }
    w.into_inner()
}

/// A pcapng holding the whole session on interface 0.
fn good_pcapng() -> Vec<u8> {
    let mut w = PcapngWriter::new(Vec::new()).unwrap();
    w.add_interface(1, 262_144, TsResolution::Micro).unwrap();
    for (ts, p) in session_packets() {
        w.write_packet(0, ts, &p).unwrap();
    }
    w.into_inner()
}

fn pcap_record(ts_secs: u32, caplen: u32, len: u32, data: &[u8]) -> Vec<u8> {
    let mut r = Vec::new();
    for v in [ts_secs, 0, caplen, len] {
        r.extend_from_slice(&v.to_le_bytes());
    }
    r.extend_from_slice(data);
    r
}

/// A raw pcapng block: type, header length, body, trailer length.
fn pcapng_block(block_type: u32, header_len: u32, body: &[u8], trailer_len: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&block_type.to_le_bytes());
    b.extend_from_slice(&header_len.to_le_bytes());
    b.extend_from_slice(body);
    b.extend_from_slice(&trailer_len.to_le_bytes());
    b
}

/// An Enhanced Packet Block body for `interface` holding `data`.
fn epb_body(interface: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [interface, 0, 0, data.len() as u32, data.len() as u32] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(data);
    while b.len() % 4 != 0 {
        b.push(0);
    }
    b
}

struct Run {
    status: i32,
    stderr: String,
    records: Vec<Value>,
}

fn run(name: &str, bytes: &[u8]) -> Run {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("capture_errors");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .arg("read")
        .arg(&path)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    Run {
        status: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        records: stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

fn of_type<'a>(r: &'a Run, t: &str) -> Vec<&'a Value> {
    r.records.iter().filter(|v| v["type"] == t).collect()
}

/// The session written before the damage is reported whole: both messages,
/// both closes, and a clean end.
fn assert_session_complete(r: &Run) {
    let sessions = of_type(r, "session");
    assert_eq!(sessions.len(), 1, "stderr: {}", r.stderr);
    let texts: Vec<&str> = of_type(r, "message")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert_eq!(
        texts,
        ["hello before the damage", "echo before the damage"],
        "stderr: {}",
        r.stderr
    );
    let ends = of_type(r, "session_end");
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0]["incomplete"], false, "{}", ends[0]);
    assert_eq!(ends[0]["close_c2s"]["code"], 1000);
    assert_eq!(ends[0]["close_s2c"]["code"], 1000);
    assert!(of_type(r, "gap").is_empty());
    assert_eq!(of_type(r, "stats").len(), 1, "stats must still be written");
}

/// Exit status, the failure's name and its offset in the message.
fn assert_error(r: &Run, status: i32, what: &str, offset: usize) {
    assert_eq!(r.status, status, "stderr: {}", r.stderr);
    let want = format!("{what} at byte offset {offset}");
    assert!(r.stderr.contains(&want), "want {want:?} in {:?}", r.stderr);
}

#[test]
fn empty_file() {
    let r = run("empty.pcap", &[]);
    assert_error(&r, 1, "empty file", 0);
}

#[test]
fn bad_magic() {
    let r = run(
        "bad-magic.pcap",
        b"GET / HTTP/1.1\r\n\r\n this is not a capture",
    );
    assert_error(&r, 1, "not a pcap or pcapng capture", 0);
    assert!(r.stderr.contains("47 45 54 20"), "{}", r.stderr);
}

#[test]
fn truncated_file_header() {
    let r = run("short-header.pcap", &good_pcap()[..10]);
    assert_error(&r, 3, "truncated file header", 0);
}

#[test]
fn truncated_record_header() {
    let mut f = good_pcap();
    let at = f.len();
    f.extend_from_slice(&[0u8; 9]);
    let r = run("short-record-header.pcap", &f);
    assert_error(&r, 3, "truncated record header", at);
    assert_session_complete(&r);
}

#[test]
fn truncated_record() {
    let mut f = good_pcap();
    let at = f.len();
    f.extend(pcap_record(1_700_000_100, 100, 100, &[0u8; 40]));
    let r = run("short-record.pcap", &f);
    assert_error(&r, 3, "truncated record", at);
    assert!(
        r.stderr.contains("says 100 bytes, only 40 remain"),
        "{}",
        r.stderr
    );
    assert_session_complete(&r);
}

#[test]
fn giant_caplen_is_refused_before_allocating() {
    let mut f = good_pcap();
    let at = f.len();
    // No data follows: were the length trusted, this would be a 4 GiB
    // allocation or a "truncated" verdict; it must be "too large".
    f.extend(pcap_record(1_700_000_100, 0xFFFF_FFF0, 0xFFFF_FFF0, &[]));
    let r = run("giant-caplen.pcap", &f);
    assert_error(&r, 1, "record too large", at);
    assert!(r.stderr.contains("4294967280"), "{}", r.stderr);
    assert_session_complete(&r);
}

#[test]
fn caplen_above_len_is_a_notice_not_an_error() {
    let mut f = good_pcap();
    f.extend(pcap_record(1_700_000_100, 60, 20, &[0u8; 60]));
    let r = run("caplen-gt-len.pcap", &f);
    assert_eq!(r.status, 0, "stderr: {}", r.stderr);
    let stats = of_type(&r, "stats");
    assert_eq!(
        stats[0]["anomalies"]["caplen_exceeds_len"], 1,
        "{}",
        stats[0]
    );
    assert_session_complete(&r);
}

#[test]
fn snaplen_cut_packets_become_gaps_never_zero_bytes() {
    let pkts = session_packets();
    // Packet 6 is the client's text frame (SYN, SYN-ACK, ACK, request, 101).
    let victim = 5;
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    let mut cut = 0;
    for (i, (ts, p)) in pkts.iter().enumerate() {
        if i == victim {
            // Keep the headers (54 = Ethernet+IPv4+TCP), the 6-byte frame
            // header and 4 payload bytes: the cut falls inside the payload.
            let keep = 54 + 6 + 4;
            cut = p.len() - keep;
            w.write_packet_with_len(*ts, &p[..keep], p.len() as u32)
                .unwrap();
        } else {
            w.write_packet(*ts, p).unwrap();
        }
    }
    let r = run("snaplen.pcap", &w.into_inner());
    assert_eq!(r.status, 0, "stderr: {}", r.stderr);
    let gaps = of_type(&r, "gap");
    assert_eq!(gaps.len(), 1, "{:?}", r.records);
    assert_eq!(gaps[0]["reason"], "snaplen");
    assert_eq!(gaps[0]["len"], cut as u64);
    assert_eq!(gaps[0]["dir"], "c2s");
    let texts: Vec<&str> = of_type(&r, "message")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    // The cut message is reported incomplete, never filled with zeros; the
    // stream stays in sync: the echo and both closes still decode.
    let msgs = of_type(&r, "message");
    let cut_msg = msgs
        .iter()
        .find(|m| m["dir"] == "c2s" && m["opcode"] == "text");
    let cut_msg = cut_msg.unwrap_or_else(|| panic!("{msgs:?}"));
    assert_eq!(cut_msg["incomplete"], true, "{cut_msg}");
    // Only the 4 captured bytes; the frame's full extent is in `stream`.
    assert_eq!(cut_msg["len"], 4, "{cut_msg}");
    assert_eq!(cut_msg["text"], "hell", "{cut_msg}");
    assert_eq!(cut_msg["stream"][1], 29, "{cut_msg}");
    assert_eq!(texts, ["hell", "echo before the damage"], "{msgs:?}");
    assert_eq!(of_type(&r, "session_end")[0]["close_c2s"]["code"], 1000);
}

#[test]
fn pcapng_block_length_not_multiple_of_4() {
    let mut f = good_pcapng();
    let at = f.len();
    f.extend(pcapng_block(6, 30, &[0u8; 18], 30));
    let r = run("odd-block.pcapng", &f);
    assert_error(&r, 1, "bad block length", at);
    assert!(r.stderr.contains("length 30"), "{}", r.stderr);
    assert_session_complete(&r);
}

#[test]
fn pcapng_mismatched_trailer() {
    let mut f = good_pcapng();
    let at = f.len();
    let body = epb_body(0, &[0u8; 8]);
    let len = 12 + body.len() as u32;
    f.extend(pcapng_block(6, len, &body, len + 4));
    let r = run("bad-trailer.pcapng", &f);
    assert_error(&r, 1, "block trailer mismatch", at);
    assert_session_complete(&r);
}

#[test]
fn pcapng_unknown_interface() {
    let mut f = good_pcapng();
    let at = f.len();
    let body = epb_body(7, &[0u8; 8]);
    let len = 12 + body.len() as u32;
    f.extend(pcapng_block(6, len, &body, len));
    let r = run("unknown-if.pcapng", &f);
    assert_error(&r, 1, "unknown interface", at);
    assert!(r.stderr.contains("interface 7"), "{}", r.stderr);
    assert_session_complete(&r);
}

#[test]
fn pcapng_giant_block_is_refused_before_allocating() {
    let mut f = good_pcapng();
    let at = f.len();
    f.extend(pcapng_block(6, 0x7FFF_FFF0, &[0u8; 20], 0));
    let r = run("giant-block.pcapng", &f);
    assert_error(&r, 1, "block too large", at);
    assert_session_complete(&r);
}

#[test]
fn pcapng_truncated_block() {
    let mut f = good_pcapng();
    let at = f.len();
    let body = epb_body(0, &[0u8; 64]);
    let len = 12 + body.len() as u32;
    let block = pcapng_block(6, len, &body, len);
    f.extend_from_slice(&block[..40]);
    let r = run("short-block.pcapng", &f);
    assert_error(&r, 3, "truncated block", at);
    assert_session_complete(&r);
}

#[test]
fn timestamps_going_backwards_are_a_notice() {
    let pkts = session_packets();
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for (i, (ts, p)) in pkts.iter().enumerate() {
        // Packet 7 (the server's echo) claims to be ten seconds earlier.
        let ts = if i == 6 {
            Timestamp::new(ts.secs - 10, 0)
        } else {
            *ts
        };
        w.write_packet(ts, p).unwrap();
    }
    let r = run("backwards.pcap", &w.into_inner());
    assert_eq!(r.status, 0, "stderr: {}", r.stderr);
    let anomalies = of_type(&r, "anomaly");
    let back: Vec<&&Value> = anomalies
        .iter()
        .filter(|a| a["name"] == "timestamp_backwards")
        .collect();
    assert_eq!(back.len(), 1, "{anomalies:?}");
    assert_eq!(back[0]["packet"], 7);
    assert_session_complete(&r);
}

/// Each failure has its own wording: a user can tell them apart.
#[test]
fn failure_messages_are_distinct() {
    let mut g = good_pcap();
    g.extend(pcap_record(1, 0xFFFF_FFF0, 0, &[]));
    let mut n = good_pcapng();
    n.extend(pcapng_block(6, 30, &[0u8; 18], 30));
    let mut firsts = Vec::new();
    for (name, bytes) in [
        ("d-empty.pcap", Vec::new()),
        ("d-magic.pcap", b"nope nope nope nope nope".to_vec()),
        ("d-header.pcap", good_pcap()[..10].to_vec()),
        ("d-caplen.pcap", g),
        ("d-block.pcapng", n),
    ] {
        let r = run(name, &bytes);
        let line = r.stderr.lines().find(|l| l.contains("at byte offset"));
        let line = line.unwrap_or_else(|| panic!("{name}: {}", r.stderr));
        // "wssniff: PATH: WHAT at byte offset": keep WHAT.
        let before = line.split(" at byte offset").next().unwrap();
        let what = before.rsplit_once(": ").unwrap().1.to_string();
        firsts.push(what);
    }
    let mut uniq = firsts.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), firsts.len(), "{firsts:?}");
}
