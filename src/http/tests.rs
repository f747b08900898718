//! Tracker tests: corpus handshakes (from `testdata/`, one line per TCP
//! segment: packet number, side, payload hex; extracted with tshark from
//! /work/shared/corpus) and synthetic conversations.

use super::*;
use crate::types::Timestamp;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    handshake: Option<Handshake>,
    /// Bytes after the handshake, per side: `rest` and later server data;
    /// `pending_client` and later client data.
    after: [Vec<u8>; 2],
    anomalies: Vec<&'static str>,
    not_http: bool,
}

type Segment = (u64, usize, Vec<u8>);

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn vector(text: &str) -> Vec<Segment> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), unhex(f[2]))
        })
        .collect()
}

/// Feeds every segment, `piece` bytes at a time (0: whole segments).
fn drive_with(limits: HttpLimits, segs: &[Segment], piece: usize) -> Outcome {
    let mut t = HandshakeTracker::new(limits);
    let mut offsets = [0u64; 2];
    let mut out = Outcome {
        handshake: None,
        after: [vec![], vec![]],
        anomalies: vec![],
        not_http: false,
    };
    let mut anomalies = Vec::new();
    for (packet, side, data) in segs {
        let ts = Timestamp::new(*packet as i64, 0);
        let pieces: Vec<&[u8]> = if piece == 0 {
            vec![data]
        } else {
            data.chunks(piece).collect()
        };
        for p in pieces {
            if out.handshake.is_some() {
                out.after[*side].extend_from_slice(p);
            } else if !out.not_http {
                match t.feed(*side, p, offsets[*side], *packet, ts) {
                    Feed::Continue => {}
                    Feed::NotHttp => out.not_http = true,
                    Feed::Upgraded {
                        handshake,
                        rest,
                        pending_client,
                    } => {
                        out.after[*side].extend_from_slice(&p[p.len() - rest..]);
                        let client = handshake.client_side;
                        let mut next = pending_client.first().map(|c| c.stream_offset);
                        for c in pending_client {
                            // Held chunks are contiguous and end where the client's stream is.
                            assert_eq!(Some(c.stream_offset), next);
                            next = Some(c.stream_offset + c.data.len() as u64);
                            out.after[client].extend_from_slice(&c.data);
                        }
                        // Dropped (over-limit) bytes show as a shortfall here.
                        if let Some(end) = next {
                            assert!(end <= offsets[client]);
                        }
                        out.handshake = Some(*handshake);
                    }
                }
                t.drain_anomalies(&mut anomalies);
            }
            offsets[*side] += p.len() as u64;
        }
    }
    t.finish();
    t.drain_anomalies(&mut anomalies);
    out.anomalies = anomalies.iter().map(|a| a.name).collect();
    out
}

fn drive(segs: &[Segment], piece: usize) -> Outcome {
    drive_with(HttpLimits::default(), segs, piece)
}

fn hs_names(o: &Outcome) -> Vec<&'static str> {
    o.handshake
        .as_ref()
        .unwrap()
        .anomalies
        .iter()
        .map(|a| a.name)
        .collect()
}

fn seg(packet: u64, side: usize, data: &[u8]) -> Segment {
    (packet, side, data.to_vec())
}

fn all_feedings_agree(segs: &[Segment]) -> Outcome {
    let whole = drive(segs, 0);
    for piece in [1, 2, 3, 7, 64] {
        assert_eq!(drive(segs, piece), whole, "fed {piece} bytes at a time");
    }
    whole
}

#[test]
fn corpus_reply_ping_coalesced_frame_after_101_is_rest() {
    let segs = vector(include_str!("testdata/reply_ping_coalesced.txt"));
    let o = all_feedings_agree(&segs);
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert_eq!(h.client_side, 0);
    assert_eq!(h.subprotocol.as_deref(), Some("v1"));
    assert!(h.extensions.is_empty());
    assert_eq!(
        (h.request.packets.as_slice(), h.response.packets.as_slice()),
        (&[4][..], &[6][..])
    );
    assert_eq!(h.response.ts, Timestamp::new(6, 0));
    assert!(h
        .response
        .raw
        .ends_with(b"sec-websocket-protocol: v1\r\n\r\n"));
    // The ping in the 101's segment, then the pong from the client later.
    assert!(o.after[1].starts_with(b"\x89\x04Zeek"));
    assert!(o.after[0].starts_with(b"\x8a\x84"));
    // Whole segments: `rest` is exactly the coalesced ping.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    assert!(matches!(
        t.feed(0, &segs[0].2, 0, 4, Timestamp::default()),
        Feed::Continue
    ));
    match t.feed(1, &segs[1].2, 0, 6, Timestamp::default()) {
        Feed::Upgraded {
            rest,
            pending_client,
            ..
        } => {
            assert_eq!(rest, 6);
            assert!(pending_client.is_empty());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn corpus_wrong_accept_header() {
    let o = all_feedings_agree(&vector(include_str!("testdata/wrong_accept_header.txt")));
    assert_eq!(hs_names(&o), vec!["ws_accept_mismatch"]);
}

#[test]
fn corpus_fragmented_http_reply() {
    let o = all_feedings_agree(&vector(include_str!("testdata/fragmented_http_reply.txt")));
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert_eq!(o.after[1], b"\x89\x04Zeek");
}

#[test]
fn corpus_zeek_websocket_subprotocol() {
    let o = all_feedings_agree(&vector(include_str!("testdata/zeek_websocket.txt")));
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert_eq!(h.subprotocol.as_deref(), Some("x-kaazing-handshake"));
    assert_eq!(h.request.uri, "/echo?.kl=Y");
    assert_eq!(h.response.reason, "Web Socket Protocol Handshake");
}

#[test]
fn corpus_arkime_offered_deflate_declined() {
    let o = all_feedings_agree(&vector(include_str!("testdata/arkime_websocket.txt")));
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert!(h.extensions.is_empty());
    assert_eq!(
        h.request.header("sec-websocket-extensions"),
        Some(&b"permessage-deflate; client_max_window_bits"[..])
    );
    assert!(o.after[1].starts_with(b"\x81\x17Welcome"));
}

#[test]
fn corpus_compressed_extension_accepted() {
    let o = all_feedings_agree(&vector(include_str!("testdata/compressed.txt")));
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert_eq!(
        h.extensions,
        vec![Extension {
            name: "permessage-deflate".into(),
            params: vec![("client_max_window_bits".into(), Some("15".into()))]
        }]
    );
    assert_eq!(h.response.reason, "");
}

#[test]
fn corpus_unanswered_upgrade() {
    let o = all_feedings_agree(&vector(include_str!("testdata/unanswered.txt")));
    assert!(o.handshake.is_none());
    assert!(!o.not_http);
    assert_eq!(o.anomalies, vec!["http_upgrade_unanswered"]);
}

const RFC_REQ: &[u8] = b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";
const RFC_RESP: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";

#[test]
fn rfc_sample_with_responder_as_client() {
    // The side that sends the request is the client, whatever the TCP roles.
    let o = all_feedings_agree(&[seg(1, 1, RFC_REQ), seg(2, 0, RFC_RESP)]);
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(h.client_side, 1);
    assert_eq!(hs_names(&o), Vec::<&str>::new());
    assert_eq!(h.request.raw, RFC_REQ);
    assert_eq!(h.response.raw, RFC_RESP);
}

#[test]
fn client_frames_before_101_are_pending_client() {
    let mut c = RFC_REQ.to_vec();
    c.extend_from_slice(b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58");
    let segs = [
        seg(1, 0, &c),
        seg(2, 0, b"\x89\x80\x00\x00\x00\x00"),
        seg(3, 1, RFC_RESP),
        seg(4, 0, b"\x88\x80abcd"),
    ];
    let o = all_feedings_agree(&segs);
    assert!(o.handshake.is_some());
    assert_eq!(
        o.after[0],
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\x89\x80\x00\x00\x00\x00\x88\x80abcd"
    );
    let mut t = HandshakeTracker::new(HttpLimits::default());
    t.feed(0, &c, 0, 1, Timestamp::default());
    t.feed(0, &segs[1].2, c.len() as u64, 2, Timestamp::default());
    match t.feed(1, RFC_RESP, 0, 3, Timestamp::default()) {
        Feed::Upgraded {
            pending_client,
            rest,
            ..
        } => {
            assert_eq!(rest, 0);
            assert_eq!(pending_client.len(), 2);
            assert_eq!(pending_client[0].stream_offset, RFC_REQ.len() as u64);
            assert_eq!(pending_client[0].packet, 1);
            assert_eq!(pending_client[1].stream_offset, c.len() as u64);
            assert_eq!(pending_client[1].packet, 2);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn refused_426_then_101_on_same_connection() {
    let refuse = b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 5\r\n\r\nnope!";
    let segs = [
        seg(1, 0, RFC_REQ),
        seg(2, 1, refuse),
        seg(3, 0, RFC_REQ),
        seg(4, 1, RFC_RESP),
        seg(5, 1, b"\x81\x00"),
    ];
    let o = all_feedings_agree(&segs);
    assert_eq!(o.anomalies, vec!["http_upgrade_refused"]);
    let h = o.handshake.as_ref().unwrap();
    assert_eq!(h.request.packets, vec![3]);
    assert_eq!(o.after[1], b"\x81\x00");
}

#[test]
fn refused_upgrade_releases_held_requests() {
    // The second upgrade request was sent before the refusal arrived: it was
    // held, then parsed as HTTP once the 426 showed it is not frame data.
    let refuse = b"HTTP/1.1 426 Upgrade Required\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nnope!\r\n0\r\n\r\n";
    let mut two = RFC_REQ.to_vec();
    two.extend_from_slice(&RFC_REQ.to_vec().replace_uri("/second"));
    let segs = [seg(1, 0, &two), seg(2, 1, refuse), seg(3, 1, RFC_RESP)];
    let o = all_feedings_agree(&segs);
    assert_eq!(o.anomalies, vec!["http_upgrade_refused"]);
    assert_eq!(o.handshake.as_ref().unwrap().request.uri, "/second");
}

trait ReplaceUri {
    fn replace_uri(self, uri: &str) -> Vec<u8>;
}
impl ReplaceUri for Vec<u8> {
    fn replace_uri(self, uri: &str) -> Vec<u8> {
        String::from_utf8(self)
            .unwrap()
            .replacen("/chat", uri, 1)
            .into_bytes()
    }
}

#[test]
fn pipelined_requests_pair_in_order() {
    let mut c = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody".to_vec();
    c.extend_from_slice(RFC_REQ);
    let mut s =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n".to_vec();
    s.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    s.extend_from_slice(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
    );
    s.extend_from_slice(RFC_RESP);
    s.extend_from_slice(b"\x81\x02hi");
    let o = all_feedings_agree(&[seg(1, 0, &c), seg(2, 1, &s)]);
    assert_eq!(o.anomalies, Vec::<&str>::new());
    assert_eq!(o.handshake.as_ref().unwrap().request.uri, "/chat");
    assert_eq!(o.after[1], b"\x81\x02hi");
}

#[test]
fn non_http_is_rejected_after_a_few_bytes() {
    for first in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"\x00\x00\x00\x0cHELLO",
    ] {
        let mut t = HandshakeTracker::new(HttpLimits::default());
        assert!(
            matches!(t.feed(0, first, 0, 1, Timestamp::default()), Feed::NotHttp),
            "{first:?}"
        );
        assert!(matches!(
            t.feed(1, RFC_RESP, 0, 2, Timestamp::default()),
            Feed::NotHttp
        ));
        let mut a = Vec::new();
        t.drain_anomalies(&mut a);
        assert!(a.is_empty(), "plain non-HTTP traffic is no anomaly");
    }
    // A server-first protocol: the banner is not a request.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    assert!(matches!(
        t.feed(
            1,
            b"220 mail.example.com ESMTP\r\n",
            0,
            1,
            Timestamp::default()
        ),
        Feed::NotHttp
    ));
    // Undecided after two capital letters; decided by the third byte.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    assert!(matches!(
        t.feed(0, b"GE", 0, 1, Timestamp::default()),
        Feed::Continue
    ));
    let mut t = HandshakeTracker::new(HttpLimits::default());
    assert!(matches!(
        t.feed(0, b"SS", 0, 1, Timestamp::default()),
        Feed::Continue
    ));
    assert!(matches!(
        t.feed(0, b"H-2.0", 2, 2, Timestamp::default()),
        Feed::NotHttp
    ));
}

#[test]
fn huge_head_one_byte_at_a_time_is_linear_and_bounded() {
    let mut t = HandshakeTracker::new(HttpLimits::default());
    let mut head = b"GET / HTTP/1.1\r\n".to_vec();
    head.resize(1 << 20, b'a');
    let start = std::time::Instant::now();
    let mut gave_up_at = None;
    for (i, b) in head.iter().enumerate() {
        if let Feed::NotHttp = t.feed(
            0,
            std::slice::from_ref(b),
            i as u64,
            i as u64 + 1,
            Timestamp::default(),
        ) {
            gave_up_at.get_or_insert(i);
        }
    }
    assert_eq!(gave_up_at, Some(64 * 1024 - 1));
    let mut a = Vec::new();
    t.drain_anomalies(&mut a);
    assert_eq!(
        a.iter().map(|a| a.name).collect::<Vec<_>>(),
        vec!["http_head_too_large"]
    );
    assert_eq!(a[0].packet, 64 * 1024);
    assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());

    // Without a limit in the way, a 1 MiB head fed bytewise still completes quickly.
    let limits = HttpLimits {
        max_head_bytes: 2 << 20,
        ..HttpLimits::default()
    };
    let mut big = b"GET / HTTP/1.1\r\nX: ".to_vec();
    big.resize(1 << 20, b'a');
    big.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
    let start = std::time::Instant::now();
    let o = drive_with(limits, &[seg(1, 0, &big), seg(2, 1, RFC_RESP)], 1);
    assert!(o.handshake.is_some());
    assert!(start.elapsed().as_secs() < 10, "took {:?}", start.elapsed());
}

#[test]
fn too_many_headers_gives_up_with_anomaly() {
    let mut c = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..20 {
        c.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    c.extend_from_slice(b"\r\n");
    let o = drive_with(
        HttpLimits {
            max_headers: 10,
            ..HttpLimits::default()
        },
        &[seg(1, 0, &c)],
        0,
    );
    assert!(o.not_http);
    assert_eq!(o.anomalies, vec!["http_too_many_headers"]);
}

#[test]
fn malformed_and_unsolicited() {
    let o = drive(&[seg(1, 0, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")], 0);
    assert_eq!((o.not_http, o.anomalies), (true, vec!["http_malformed"]));
    let o = drive(
        &[
            seg(1, 0, b"GET / HTTP/1.1\r\n\r\n"),
            seg(2, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            seg(3, 1, b"HTTP/1.1 200 OK\r\n"),
        ],
        0,
    );
    assert_eq!(
        (o.not_http, o.anomalies),
        (true, vec!["http_unsolicited_response"])
    );
    let o = drive(&[seg(1, 0, RFC_REQ), seg(2, 1, b"SSH-2.0-x\r\n")], 0);
    assert_eq!((o.not_http, o.anomalies), (true, vec!["http_malformed"]));
    let o = drive(&[seg(1, 0, b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01")], 0);
    assert_eq!((o.not_http, o.anomalies), (true, vec!["http_malformed"]));
}

#[test]
fn too_many_pipelined() {
    let c = b"GET / HTTP/1.1\r\n\r\n".repeat(5);
    let o = drive_with(
        HttpLimits {
            max_pipelined: 4,
            ..HttpLimits::default()
        },
        &[seg(1, 0, &c)],
        0,
    );
    assert_eq!(
        (o.not_http, o.anomalies),
        (true, vec!["http_too_many_pipelined"])
    );
}

#[test]
fn other_protocol_upgrade_stops_parsing() {
    let req = b"GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\nPRI * HTTP/2.0";
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n";
    let o = drive(&[seg(1, 0, req), seg(2, 1, resp)], 0);
    assert_eq!(
        (o.not_http, o.anomalies),
        (true, vec!["http_upgrade_other_protocol"])
    );
}

#[test]
fn pending_client_overflow_is_reported() {
    let limits = HttpLimits {
        max_pending_client_bytes: 4,
        ..HttpLimits::default()
    };
    let o = drive_with(
        limits,
        &[
            seg(1, 0, RFC_REQ),
            seg(2, 0, b"\x81\x80abcd\x81\x80efgh"),
            seg(3, 1, RFC_RESP),
        ],
        0,
    );
    assert_eq!(o.anomalies, vec!["http_pending_client_overflow"]);
    assert_eq!(o.after[0], b"\x81\x80ab");
}

#[test]
fn gaps_at_boundaries_and_inside_messages() {
    let ts = Timestamp::default();
    // Between messages: parsing goes on.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    t.feed(0, RFC_REQ, 0, 1, ts);
    t.gap(1);
    assert!(matches!(
        t.feed(1, RFC_RESP, 10, 2, ts),
        Feed::Upgraded { .. }
    ));
    // Inside a head: parsing stops with an anomaly.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    t.feed(0, &RFC_REQ[..20], 0, 1, ts);
    t.gap(0);
    assert!(matches!(
        t.feed(0, &RFC_REQ[30..], 30, 2, ts),
        Feed::NotHttp
    ));
    let mut a = Vec::new();
    t.drain_anomalies(&mut a);
    assert_eq!(
        a.iter().map(|a| a.name).collect::<Vec<_>>(),
        vec!["http_gap"]
    );
    // Held client bytes with a hole are still handed over on 101.
    let mut t = HandshakeTracker::new(HttpLimits::default());
    t.feed(0, RFC_REQ, 0, 1, ts);
    t.feed(0, b"\x81\x80", RFC_REQ.len() as u64, 2, ts);
    t.gap(0);
    t.feed(0, b"\x81\x80abcd", RFC_REQ.len() as u64 + 10, 3, ts);
    match t.feed(1, RFC_RESP, 0, 4, ts) {
        Feed::Upgraded { pending_client, .. } => {
            assert_eq!(pending_client.len(), 2);
            assert_eq!(pending_client[1].stream_offset, RFC_REQ.len() as u64 + 10);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn anomalies_are_listed() {
    let names: Vec<&str> = ANOMALIES.iter().map(|(n, _)| *n).collect();
    for n in [
        "http_head_too_large",
        "http_upgrade_refused",
        "http_upgrade_unanswered",
        "ws_accept_mismatch",
        "ws_missing_key",
        "ws_duplicate_key",
        "ws_missing_accept",
        "ws_bad_version",
        "ws_subprotocol_not_offered",
        "ws_extension_not_offered",
        "http_too_many_headers",
        "http_malformed",
    ] {
        assert!(names.contains(&n), "{n}");
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate names");
    assert!(names
        .iter()
        .all(|n| n.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_and_splitting_does_not_matter(
        mut c in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        s in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        piece in 1usize..9,
    ) {
        // Half the time, start like a real upgrade so the parser gets deep.
        if c.first().is_some_and(|b| b % 2 == 0) {
            c.splice(0..0, RFC_REQ.iter().copied());
        }
        let segs = [seg(1, 0, &c), seg(2, 1, RFC_RESP), seg(3, 1, &s), seg(4, 0, &s)];
        proptest::prop_assert_eq!(drive(&segs, piece), drive(&segs, 0));
    }
}

#[test]
fn other_text_protocols_are_not_malformed_http() {
    let o = drive(&[seg(1, 0, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")], 0);
    assert_eq!((o.not_http, o.anomalies), (true, Vec::<&str>::new()));
    let o = drive(
        &[seg(
            1,
            0,
            b"OPTIONS sip:probe@edge SIP/2.0\r\nVia: x\r\n\r\n",
        )],
        0,
    );
    assert_eq!((o.not_http, o.anomalies), (true, Vec::<&str>::new()));
    // After an HTTP/1 exchange, a bad version is a malformed request.
    let o = drive(
        &[
            seg(1, 0, b"GET / HTTP/1.1\r\n\r\n"),
            seg(2, 1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
            seg(3, 0, b"GET / HTTP/9.9\r\n\r\n"),
        ],
        0,
    );
    assert_eq!((o.not_http, o.anomalies), (true, vec!["http_malformed"]));
}
