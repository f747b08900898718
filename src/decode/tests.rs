//! Packets built byte by byte for every link type, encapsulation, IPv6
//! extension header, padding, snaplen cut, fragment order and skip reason.

use super::*;

const T0: Timestamp = Timestamp::new(1000, 0);

fn tcp_hdr(sport: u16, dport: u16, seq: u32, flags_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&77u32.to_be_bytes());
    t.push(6 << 4); // 24-byte header: one option word
    t.push(flags_byte);
    t.extend_from_slice(&512u16.to_be_bytes());
    t.extend_from_slice(&[0, 0, 0, 0]); // checksum (never verified), urgent
    t.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
    t.extend_from_slice(payload);
    t
}

fn ipv4_raw(proto: u8, id: u16, frag: u16, body: &[u8], total: Option<u16>) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    let total = total.unwrap_or(20 + body.len() as u16);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&id.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[64, proto, 0, 0]);
    h.extend_from_slice(&[10, 0, 0, 1]);
    h.extend_from_slice(&[10, 0, 0, 2]);
    h.extend_from_slice(body);
    h
}

fn ipv4(body: &[u8]) -> Vec<u8> {
    ipv4_raw(6, 1, 0x4000, body, None)
}

fn v6(a: u8) -> [u8; 16] {
    let mut x = [0u8; 16];
    x[0] = 0x20;
    x[1] = 0x01;
    x[15] = a;
    x
}

fn ipv6(next: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    h.extend_from_slice(&v6(1));
    h.extend_from_slice(&v6(2));
    h.extend_from_slice(body);
    h
}

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn decode_ok(lt: u32, data: &[u8]) -> (SocketAddr, SocketAddr, Vec<u8>, u32, u8) {
    let mut d = Decoder::new(DecodeConfig::default());
    let s = d
        .decode(lt, data, data.len() as u32, T0)
        .expect("a segment");
    (s.src, s.dst, s.payload.to_vec(), s.missing, s.flags)
}

fn skip(lt: u32, data: &[u8]) -> SkipReason {
    let mut d = Decoder::new(DecodeConfig::default());
    let r = d
        .decode(lt, data, data.len() as u32, T0)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(d.stats().skipped_for(r), 1);
    r
}

fn v4pair() -> (SocketAddr, SocketAddr) {
    (
        "10.0.0.1:1234".parse().unwrap(),
        "10.0.0.2:80".parse().unwrap(),
    )
}

#[test]
fn ethernet_ipv4_tcp_fields() {
    let pkt = eth(
        0x0800,
        &ipv4(&tcp_hdr(1234, 80, 0xdeadbeef, 0x18 | 0xc0, b"GET /")),
    );
    let mut d = Decoder::new(DecodeConfig::default());
    let s = d.decode(1, &pkt, pkt.len() as u32, T0).unwrap();
    assert_eq!((s.src, s.dst), v4pair());
    assert_eq!((s.seq, s.ack, s.window), (0xdeadbeef, 77, 512));
    assert_eq!(s.flags, flags::PSH | flags::ACK, "ECE/CWR are not reported");
    assert_eq!((s.payload, s.missing), (&b"GET /"[..], 0));
    assert_eq!((d.stats().packets, d.stats().segments), (1, 1));
}

#[test]
fn vlan_and_qinq_and_pppoe_and_mpls() {
    let ip = ipv4(&tcp_hdr(1234, 80, 1, 0x10, b"x"));
    let mut one = vec![0, 5];
    one.extend_from_slice(&0x0800u16.to_be_bytes());
    one.extend_from_slice(&ip);
    assert_eq!(decode_ok(1, &eth(0x8100, &one)).2, b"x");
    for outer in [0x88a8u16, 0x9100, 0x8100] {
        let mut two = vec![0, 9];
        two.extend_from_slice(&0x8100u16.to_be_bytes());
        two.extend_from_slice(&one);
        assert_eq!(decode_ok(1, &eth(outer, &two)).2, b"x");
    }
    let mut pppoe = vec![0x11, 0, 0, 1, 0, 0, 0x00, 0x21];
    pppoe.extend_from_slice(&ip);
    assert_eq!(decode_ok(1, &eth(0x8864, &pppoe)).2, b"x");
    let mut mpls = vec![0, 1, 0, 64, 0, 2, 1, 64]; // two labels, bottom of stack on the second
    mpls.extend_from_slice(&ip);
    assert_eq!(decode_ok(1, &eth(0x8847, &mpls)).2, b"x");
    // A VLAN tag cut short.
    assert_eq!(skip(1, &eth(0x8100, &[0, 5])), SkipReason::TruncatedLink);
}

#[test]
fn every_link_type() {
    let ip4 = ipv4(&tcp_hdr(1234, 80, 1, 0x02, b""));
    let ip6 = ipv6(6, &tcp_hdr(1234, 80, 1, 0x02, b"six"));
    // Linux cooked v1: 16 bytes, protocol last.
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll.extend_from_slice(&0x0800u16.to_be_bytes());
    sll.extend_from_slice(&ip4);
    assert_eq!(decode_ok(113, &sll).4, flags::SYN);
    // Linux cooked v2: 20 bytes, protocol first.
    let mut sll2 = 0x86ddu16.to_be_bytes().to_vec();
    sll2.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0]);
    sll2.extend_from_slice(&ip6);
    assert_eq!(decode_ok(276, &sll2).2, b"six");
    for lt in [101, 12, 14] {
        assert_eq!(decode_ok(lt, &ip6).2, b"six");
        assert_eq!(decode_ok(lt, &ip4).4, flags::SYN);
    }
    assert_eq!(decode_ok(228, &ip4).0, v4pair().0);
    assert_eq!(decode_ok(229, &ip6).0, "[2001::1]:1234".parse().unwrap());
    // BSD null: host byte order, either one.
    for hdr in [[2u8, 0, 0, 0], [0, 0, 0, 2]] {
        let mut p = hdr.to_vec();
        p.extend_from_slice(&ip4);
        assert_eq!(decode_ok(0, &p).1, v4pair().1);
    }
    for af in [24u32, 28, 30] {
        let mut p = af.to_le_bytes().to_vec();
        p.extend_from_slice(&ip6);
        assert_eq!(decode_ok(0, &p).2, b"six");
        let mut p = af.to_be_bytes().to_vec();
        p.extend_from_slice(&ip6);
        assert_eq!(decode_ok(108, &p).2, b"six");
    }
    // LOOP is always network byte order.
    let mut p = 2u32.to_le_bytes().to_vec();
    p.extend_from_slice(&ip4);
    assert_eq!(skip(108, &p), SkipReason::NotIp);
}

#[test]
fn ethernet_padding_is_trimmed_by_ip_length() {
    let mut pkt = eth(0x0800, &ipv4(&tcp_hdr(1234, 80, 1, 0x10, b"")));
    pkt.extend_from_slice(&[0xee; 6]);
    let (_, _, payload, missing, _) = decode_ok(1, &pkt);
    assert_eq!((payload.len(), missing), (0, 0));
}

#[test]
fn snaplen_cut_reports_missing_payload() {
    let pkt = eth(0x0800, &ipv4(&tcp_hdr(1234, 80, 1, 0x10, &[7u8; 100])));
    let cut = &pkt[..pkt.len() - 60];
    let mut d = Decoder::new(DecodeConfig::default());
    let s = d.decode(1, cut, pkt.len() as u32, T0).unwrap();
    assert_eq!((s.payload.len(), s.missing), (40, 60));
    assert_eq!(d.stats().snaplen_cut, 1);
    // The same cut without an orig_len saying so: the IP length lies.
    let s = d.decode(1, cut, cut.len() as u32, T0).unwrap();
    assert_eq!(s.missing, 60);
    assert_eq!(d.stats().ip_length_exceeds_packet, 1);
}

#[test]
fn ipv4_zero_total_length_uses_wire_length() {
    let pkt = eth(
        0x0800,
        &ipv4_raw(6, 1, 0, &tcp_hdr(1, 2, 3, 0x10, b"tso"), Some(0)),
    );
    let mut d = Decoder::new(DecodeConfig::default());
    let s = d.decode(1, &pkt, pkt.len() as u32, T0).unwrap();
    assert_eq!((s.payload, s.missing), (&b"tso"[..], 0));
    assert_eq!(d.stats().ip_zero_length, 1);
}

#[test]
fn ipv6_extension_headers() {
    let tcp = tcp_hdr(1234, 80, 1, 0x10, b"deep");
    // hop-by-hop (8) -> routing (16) -> atomic fragment (8) -> destination options (8) -> AH (12) -> TCP
    let mut b = vec![43, 0, 1, 4, 0, 0, 0, 0];
    b.extend_from_slice(&[44, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 9]); // offset 0, M=0: atomic
    b.extend_from_slice(&[51, 0, 1, 4, 0, 0, 0, 0]);
    b.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
    b.extend_from_slice(&tcp);
    assert_eq!(decode_ok(229, &ipv6(0, &b)).2, b"deep");
    // UDP behind an extension header is not TCP.
    assert_eq!(
        skip(229, &ipv6(0, &[17, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0, 0])),
        SkipReason::NotTcp
    );
    // No next header.
    assert_eq!(skip(229, &ipv6(59, &[])), SkipReason::NotTcp);
    // An extension header longer than the payload length.
    assert_eq!(
        skip(229, &ipv6(0, &[6, 3, 0, 0, 0, 0, 0, 0])),
        SkipReason::BadIpHeader
    );
    // An extension header cut by the capture.
    let full = ipv6(
        0,
        &[
            6, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ],
    );
    assert_eq!(skip(229, &full[..50]), SkipReason::TruncatedIp);
}

#[test]
fn each_skip_reason() {
    assert_eq!(skip(9999, &[0; 60]), SkipReason::UnsupportedLinkType);
    assert_eq!(skip(1, &[0; 13]), SkipReason::TruncatedLink);
    assert_eq!(skip(113, &[0; 15]), SkipReason::TruncatedLink);
    assert_eq!(skip(276, &[0; 19]), SkipReason::TruncatedLink);
    assert_eq!(skip(0, &[2, 0]), SkipReason::TruncatedLink);
    assert_eq!(skip(1, &eth(0x0806, &[0; 28])), SkipReason::NotIp);
    assert_eq!(skip(101, &[0x50; 20]), SkipReason::NotIp);
    assert_eq!(
        skip(1, &eth(0x0800, &[0x45, 0, 0])),
        SkipReason::TruncatedIp
    );
    assert_eq!(skip(1, &eth(0x0800, &[])), SkipReason::TruncatedIp);
    assert_eq!(skip(1, &eth(0x86dd, &[0x60; 39])), SkipReason::TruncatedIp);
    // IHL below 5, version mismatch, total length below the header.
    let mut bad = ipv4(&tcp_hdr(1, 2, 3, 0, b""));
    bad[0] = 0x44;
    assert_eq!(skip(228, &bad), SkipReason::BadIpHeader);
    assert_eq!(
        skip(1, &eth(0x0800, &ipv6(6, &[]))),
        SkipReason::BadIpHeader
    );
    assert_eq!(
        skip(228, &ipv4_raw(6, 1, 0, &[0; 20], Some(10))),
        SkipReason::BadIpHeader
    );
    // IHL longer than what was captured.
    let mut opts = ipv4(&[]);
    opts[0] = 0x4f;
    assert_eq!(skip(228, &opts), SkipReason::TruncatedIp);
    assert_eq!(
        skip(228, &ipv4_raw(17, 1, 0, &[0; 8], None)),
        SkipReason::NotTcp
    );
    // TCP header cut by the capture, but declared whole.
    let full = ipv4(&tcp_hdr(1, 2, 3, 0, b""));
    let mut d = Decoder::new(DecodeConfig::default());
    let r = d
        .decode(228, &full[..30], full.len() as u32, T0)
        .map(|_| ())
        .unwrap_err();
    assert_eq!(r, SkipReason::TruncatedTcp);
    // IP says the TCP part is shorter than a TCP header.
    assert_eq!(skip(228, &ipv4(&[0; 10])), SkipReason::BadTcpHeader);
    // Data offset below 5, and beyond the IP length.
    let mut t = tcp_hdr(1, 2, 3, 0, b"");
    t[12] = 4 << 4;
    assert_eq!(skip(228, &ipv4(&t)), SkipReason::BadTcpHeader);
    t[12] = 15 << 4;
    assert_eq!(skip(228, &ipv4(&t)), SkipReason::BadTcpHeader);
    // Every reason has a distinct stable name and a meaning.
    let mut names: Vec<_> = SkipReason::ALL.iter().map(|r| r.name()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), SkipReason::ALL.len());
    for r in SkipReason::ALL {
        assert!(
            ANOMALIES.iter().any(|(n, _)| n == &r.name()),
            "{}",
            r.name()
        );
        assert!(!r.meaning().is_empty());
    }
}

/// IPv4 fragments of `body` (the TCP segment), `chunk` bytes each.
fn v4_fragments(id: u16, body: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let pieces: Vec<&[u8]> = body.chunks(chunk).collect();
    let n = pieces.len();
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let off = (i * chunk / 8) as u16;
            let mf = if i + 1 < n { 0x2000 } else { 0 };
            ipv4_raw(6, id, off | mf, p, None)
        })
        .collect()
}

fn run(d: &mut Decoder, lt: u32, pkts: &[Vec<u8>]) -> Vec<Result<Vec<u8>, SkipReason>> {
    pkts.iter()
        .map(|p| {
            d.decode(lt, p, p.len() as u32, T0)
                .map(|s| s.payload.to_vec())
        })
        .collect()
}

#[test]
fn ipv4_fragments_in_and_out_of_order() {
    let payload: Vec<u8> = (0..200u8).collect();
    let body = tcp_hdr(1234, 80, 9, 0x18, &payload);
    let frags = v4_fragments(7, &body, 64);
    assert_eq!(frags.len(), 4);
    for order in [[0usize, 1, 2, 3], [3, 1, 0, 2], [2, 3, 1, 0]] {
        let mut d = Decoder::new(DecodeConfig::default());
        let pkts: Vec<_> = order.iter().map(|i| frags[*i].clone()).collect();
        let got = run(&mut d, 228, &pkts);
        assert!(got[..3]
            .iter()
            .all(|g| *g == Err(SkipReason::IpFragmentIncomplete)));
        assert_eq!(got[3], Ok(payload.clone()));
        assert_eq!(d.stats().datagrams_reassembled, 1);
        assert_eq!(d.fragments_held(), (0, 0));
    }
}

#[test]
fn ipv6_fragments_with_options_after_the_fragment_header() {
    let tcp = tcp_hdr(1234, 80, 9, 0x18, &[5u8; 100]);
    // Fragmentable part: destination options, then TCP.
    let mut part = vec![6, 0, 0, 0, 0, 0, 0, 0];
    part.extend_from_slice(&tcp);
    let first = &part[..64];
    let second = &part[64..];
    let frag_hdr = |off: u16, more: bool| {
        let mut h = vec![60, 0];
        h.extend_from_slice(&(off | more as u16).to_be_bytes());
        h.extend_from_slice(&0xabcdu32.to_be_bytes());
        h
    };
    let mut a = frag_hdr(0, true);
    a.extend_from_slice(first);
    let mut b = frag_hdr(64, false);
    b.extend_from_slice(second);
    let mut d = Decoder::new(DecodeConfig::default());
    let got = run(&mut d, 229, &[ipv6(44, &b), ipv6(44, &a)]);
    assert_eq!(got[0], Err(SkipReason::IpFragmentIncomplete));
    assert_eq!(got[1], Ok(vec![5u8; 100]));
    // A UDP fragment is not held at all.
    let mut u = vec![17, 0, 0, 1, 0, 0, 0, 1];
    u.extend_from_slice(&[0; 16]);
    assert_eq!(
        run(&mut d, 229, &[ipv6(44, &u)])[0],
        Err(SkipReason::NotTcp)
    );
    assert_eq!(d.fragments_held().0, 0);
}

#[test]
fn overlapping_fragments_keep_the_first_bytes() {
    let body = tcp_hdr(1, 2, 3, 0x10, &[1u8; 40]);
    let frags = v4_fragments(9, &body, 32);
    // A forged copy of the second fragment with different bytes, sent first.
    let mut forged = frags[1].clone();
    for b in forged.iter_mut().skip(20) {
        *b = 0xff;
    }
    let mut d = Decoder::new(DecodeConfig::default());
    let got = run(&mut d, 228, &[forged, frags[0].clone(), frags[1].clone()]);
    assert_eq!(
        got[1],
        Ok([[1u8; 8].as_slice(), &[0xff; 32]].concat()),
        "first bytes kept"
    );
    assert_eq!(
        got[2],
        Err(SkipReason::IpFragmentIncomplete),
        "a late duplicate starts a new datagram"
    );
    assert_eq!(d.stats().fragment_overlap_conflicts, 0);
    // Conflict within one datagram: the overlap is detected and counted.
    let mut d = Decoder::new(DecodeConfig::default());
    let mut again = frags[0].clone();
    let n = again.len();
    again[n - 1] ^= 0x55;
    let got = run(&mut d, 228, &[frags[0].clone(), again, frags[1].clone()]);
    assert_eq!(got[2], Ok(vec![1u8; 40]));
    assert_eq!(d.stats().fragment_overlap_conflicts, 1);
    let mut ev = Vec::new();
    d.drain_events(&mut ev);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].name, "ip_fragment_overlap_conflict");
}

#[test]
fn fragment_limits_timeout_and_end_of_input() {
    let body = tcp_hdr(1, 2, 3, 0x10, &[1u8; 40]);
    let cfg = DecodeConfig {
        max_fragment_bytes: 4096,
        max_fragment_datagrams: 2,
        fragment_timeout_secs: 30,
    };
    let mut d = Decoder::new(cfg.clone());
    // Three incomplete datagrams with room for two: the oldest is evicted.
    for id in 1..=3u16 {
        let f = &v4_fragments(id, &body, 32)[0];
        assert_eq!(
            d.decode(228, f, f.len() as u32, T0).unwrap_err(),
            SkipReason::IpFragmentIncomplete
        );
    }
    assert_eq!(d.fragments_held().0, 2);
    assert_eq!(d.stats().datagrams_evicted, 1);
    // The evicted datagram's second half cannot complete it; holding it evicts another.
    let f = &v4_fragments(1, &body, 32)[1];
    assert_eq!(
        d.decode(228, f, f.len() as u32, T0).unwrap_err(),
        SkipReason::IpFragmentIncomplete
    );
    assert_eq!(d.stats().datagrams_evicted, 2);
    // 31 s later everything held has expired.
    let later = Timestamp::new(T0.secs + 31, 0);
    let f = &v4_fragments(2, &body, 32)[1];
    assert_eq!(
        d.decode(228, f, f.len() as u32, later).unwrap_err(),
        SkipReason::IpFragmentIncomplete
    );
    assert_eq!(d.stats().datagrams_expired, 2);
    d.finish();
    assert_eq!(d.stats().datagrams_incomplete_at_end, 1);
    assert_eq!(d.fragments_held(), (0, 0));
    let mut ev = Vec::new();
    d.drain_events(&mut ev);
    let names: Vec<_> = ev.iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        vec![
            "ip_fragment_evicted",
            "ip_fragment_evicted",
            "ip_fragment_expired",
            "ip_fragment_expired",
            "ip_fragment_incomplete_at_end"
        ]
    );

    // A fragment larger than the whole budget is refused.
    let mut d = Decoder::new(DecodeConfig {
        max_fragment_bytes: 100,
        ..cfg
    });
    let f = &v4_fragments(1, &tcp_hdr(1, 2, 3, 0, &[0; 200]), 64)[0];
    assert_eq!(
        d.decode(228, f, f.len() as u32, T0).unwrap_err(),
        SkipReason::IpFragmentLimit
    );
}

#[test]
fn bad_and_truncated_fragments() {
    // Non-last fragment whose length is not a multiple of 8.
    let f = ipv4_raw(6, 1, 0x2000, &[0; 30], None);
    assert_eq!(skip(228, &f), SkipReason::BadIpFragment);
    // Offset plus length beyond 65535.
    let f = ipv4_raw(6, 1, 0x1fff, &[0; 16], None);
    assert_eq!(skip(228, &f), SkipReason::BadIpFragment);
    // A fragment cut by the snaplen.
    let f = ipv4_raw(6, 1, 0x2000, &[0; 32], None);
    let mut d = Decoder::new(DecodeConfig::default());
    assert_eq!(
        d.decode(228, &f[..40], f.len() as u32, T0).unwrap_err(),
        SkipReason::IpFragmentTruncated
    );
    // A non-TCP fragment is not held.
    assert_eq!(
        skip(228, &ipv4_raw(17, 1, 0x2000, &[0; 32], None)),
        SkipReason::NotTcp
    );
}

/// Segment counts and payload bytes equal `tshark -Y tcp -T fields -e tcp.len`.
#[test]
fn decodes_reference_corpus_like_tshark() {
    use crate::capture::CaptureReader;
    for (rel, want_segs, want_bytes) in [
        ("suricata-verify/websocket-ping/input.pcap", 19u64, 381u64),
        ("evsetool/cap.pcapng", 66, 3543),
        ("zeek/oversized-close-frame.pcapng", 8, 551),
        ("pcap2har/ipv4-websocket-segmented.pcap", 23, 6589),
        ("arkime/arkime_synthetic.pcap", 733, 21822),
    ] {
        let path = std::path::Path::new("/work/shared/corpus").join(rel);
        if !path.exists() {
            continue;
        }
        let mut r = CaptureReader::open(&path).unwrap();
        let mut d = Decoder::new(DecodeConfig::default());
        let mut bytes = 0u64;
        while let Some(p) = r.next_packet().unwrap() {
            if let Ok(s) = d.decode(p.link_type, p.data, p.orig_len, p.ts) {
                assert_eq!(s.missing, 0);
                bytes += s.payload.len() as u64;
            }
        }
        assert_eq!(
            (d.stats().segments, bytes),
            (want_segs, want_bytes),
            "{rel}: {:?}",
            d.stats().skipped()
        );
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]
        /// Arbitrary and damaged packets on every link type never panic, and a
        /// segment's payload always lies within what was captured.
        #[test]
        fn damaged_packets_never_panic(
            lt in proptest::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276]),
            flips in proptest::collection::vec((0usize..120, any::<u8>()), 0..8),
            cut in 0usize..140,
            v6 in any::<bool>(),
        ) {
            let tcp = tcp_hdr(1, 2, 3, 0x18, &[9u8; 40]);
            let ip = if v6 { ipv6(6, &tcp) } else { ipv4(&tcp) };
            let mut pkt = match lt {
                1 => eth(if v6 { 0x86dd } else { 0x0800 }, &ip),
                0 | 108 => { let mut p = if v6 { 30u32 } else { 2 }.to_be_bytes().to_vec(); p.extend_from_slice(&ip); p }
                113 => { let mut p = vec![0; 14]; p.extend_from_slice(&if v6 { 0x86ddu16 } else { 0x0800 }.to_be_bytes()); p.extend_from_slice(&ip); p }
                276 => { let mut p = if v6 { 0x86ddu16 } else { 0x0800 }.to_be_bytes().to_vec(); p.extend_from_slice(&[0; 18]); p.extend_from_slice(&ip); p }
                _ => ip,
            };
            let orig = pkt.len() as u32;
            for (at, b) in flips {
                if let Some(x) = pkt.get_mut(at) { *x = b; }
            }
            pkt.truncate(cut);
            let mut d = Decoder::new(DecodeConfig::default());
            for _ in 0..3 {
                if let Ok(s) = d.decode(lt, &pkt, orig, T0) {
                    prop_assert!(s.payload.len() <= pkt.len());
                }
            }
            d.finish();
            prop_assert_eq!(d.fragments_held(), (0, 0));
        }
    }
}

/// Prints segments and skips for every corpus capture (compare with
/// `tshark -Y tcp`): `cargo test --lib decode::tests::corpus_survey -- --ignored --nocapture`.
#[test]
#[ignore]
fn corpus_survey() {
    use crate::capture::CaptureReader;
    let out = std::process::Command::new("find")
        .args([
            "/work/shared/corpus",
            "-name",
            "*.pcap*",
            "-not",
            "-name",
            "*.tsv",
        ])
        .output()
        .unwrap();
    let mut files: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    files.sort();
    for f in files {
        let mut r = CaptureReader::open(std::path::Path::new(&f)).unwrap();
        let mut d = Decoder::new(DecodeConfig::default());
        let mut bytes = 0u64;
        while let Some(p) = r.next_packet().unwrap() {
            if let Ok(s) = d.decode(p.link_type, p.data, p.orig_len, p.ts) {
                bytes += s.payload.len() as u64;
            }
        }
        println!(
            "{f} {} {} {:?}",
            d.stats().segments,
            bytes,
            d.stats().skipped()
        );
    }
}
