use super::*;
use crate::decode::flags::{ACK, FIN, PSH, RST, SYN};
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Open(u64, SocketAddr),
    Data {
        flow: u64,
        side: Side,
        offset: u64,
        seq: u32,
        data: Vec<u8>,
        packet: u64,
    },
    Gap {
        flow: u64,
        side: Side,
        offset: u64,
        len: u64,
        reason: GapReason,
        packet: u64,
    },
    Fin {
        flow: u64,
        side: Side,
        packet: u64,
    },
    Rst {
        flow: u64,
        side: Side,
    },
    Anom {
        flow: u64,
        side: Side,
        name: &'static str,
        detail: String,
    },
    Close(u64, CloseReason),
}

#[derive(Default)]
struct Rec {
    evs: Vec<Ev>,
    ignore_on_data: bool,
}

impl FlowHandler for Rec {
    type State = u32;
    type Error = std::convert::Infallible;
    fn open(&mut self, info: &FlowInfo) -> u32 {
        self.evs.push(Ev::Open(info.id, info.orig));
        0
    }
    fn event(
        &mut self,
        st: &mut u32,
        info: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> Result<Interest, Self::Error> {
        *st += 1;
        let flow = info.id;
        let is_data = matches!(ev, StreamEvent::Data { .. });
        self.evs.push(match ev {
            StreamEvent::Data {
                side,
                offset,
                seq,
                data,
                packet,
                ..
            } => Ev::Data {
                flow,
                side,
                offset,
                seq,
                data: data.to_vec(),
                packet,
            },
            StreamEvent::Gap {
                side,
                offset,
                len,
                reason,
                packet,
                ..
            } => Ev::Gap {
                flow,
                side,
                offset,
                len,
                reason,
                packet,
            },
            StreamEvent::Fin { side, packet, .. } => Ev::Fin { flow, side, packet },
            StreamEvent::Rst { side, .. } => Ev::Rst { flow, side },
            StreamEvent::Anomaly { side, anomaly } => Ev::Anom {
                flow,
                side,
                name: anomaly.name,
                detail: anomaly.detail,
            },
        });
        Ok(if self.ignore_on_data && is_data {
            Interest::Ignore
        } else {
            Interest::Continue
        })
    }
    fn close(&mut self, _st: u32, info: &FlowInfo, reason: CloseReason) -> Result<(), Self::Error> {
        self.evs.push(Ev::Close(info.id, reason));
        Ok(())
    }
}

fn cli() -> SocketAddr {
    "10.0.0.1:40000".parse().unwrap()
}
fn srv() -> SocketAddr {
    "10.0.0.2:80".parse().unwrap()
}

struct T {
    table: FlowTable<u32>,
    rec: Rec,
    pkt: u64,
    secs: i64,
}

impl T {
    /// Memory in buffers: what the table holds beyond its live flows' cost.
    fn buffered(&self) -> usize {
        self.table.memory_used() - self.table.len() * self.table.flow_base_cost
    }

    fn new(cfg: TcpConfig) -> T {
        T {
            table: FlowTable::new(cfg),
            rec: Rec::default(),
            pkt: 0,
            secs: 1000,
        }
    }
    fn default() -> T {
        T::new(TcpConfig::default())
    }
    #[allow(clippy::too_many_arguments)]
    fn raw(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        fl: u8,
        window: u16,
        payload: &[u8],
        missing: u32,
    ) {
        self.pkt += 1;
        let seg = Segment {
            src,
            dst,
            seq,
            ack: 0,
            flags: fl,
            window,
            payload,
            missing,
            tunnel: Default::default(),
        };
        self.table
            .process(&seg, self.pkt, Timestamp::new(self.secs, 0), &mut self.rec);
    }
    /// Client to server.
    fn c(&mut self, seq: u32, fl: u8, payload: &[u8]) {
        self.raw(cli(), srv(), seq, fl, 1000, payload, 0);
    }
    /// Server to client.
    fn s(&mut self, seq: u32, fl: u8, payload: &[u8]) {
        self.raw(srv(), cli(), seq, fl, 1000, payload, 0);
    }
    fn finish(&mut self) {
        self.table.finish(&mut self.rec);
    }
    fn stream(&self, side: Side) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.rec.evs {
            if let Ev::Data { side: s, data, .. } = e {
                if *s == side {
                    out.extend_from_slice(data);
                }
            }
        }
        out
    }
    fn anomalies(&self) -> Vec<&'static str> {
        self.rec
            .evs
            .iter()
            .filter_map(|e| match e {
                Ev::Anom { name, .. } => Some(*name),
                _ => None,
            })
            .collect()
    }
    fn gaps(&self) -> Vec<(u64, u64, GapReason)> {
        self.rec
            .evs
            .iter()
            .filter_map(|e| match e {
                Ev::Gap {
                    offset,
                    len,
                    reason,
                    ..
                } => Some((*offset, *len, *reason)),
                _ => None,
            })
            .collect()
    }
    fn closes(&self) -> Vec<(u64, CloseReason)> {
        self.rec
            .evs
            .iter()
            .filter_map(|e| match e {
                Ev::Close(id, r) => Some((*id, *r)),
                _ => None,
            })
            .collect()
    }
    /// Data and gaps of one side must tile [0, end) in order; returns the
    /// data bytes with gaps as None.
    fn tiles(&self, side: Side) -> Vec<Option<u8>> {
        let mut out: Vec<Option<u8>> = Vec::new();
        for e in &self.rec.evs {
            match e {
                Ev::Data {
                    side: s,
                    offset,
                    data,
                    ..
                } if *s == side => {
                    assert_eq!(*offset, out.len() as u64, "data not contiguous");
                    out.extend(data.iter().map(|&b| Some(b)));
                }
                Ev::Gap {
                    side: s,
                    offset,
                    len,
                    ..
                } if *s == side => {
                    assert_eq!(*offset, out.len() as u64, "gap not contiguous");
                    out.extend(std::iter::repeat(None).take(*len as usize));
                }
                _ => {}
            }
        }
        out
    }
}

const ISN_C: u32 = 1000;
const ISN_S: u32 = 5000;

fn handshake(t: &mut T) {
    t.c(ISN_C, SYN, b"");
    t.s(ISN_S, SYN | ACK, b"");
    t.c(ISN_C + 1, ACK, b"");
}

#[test]
fn in_order_data_and_fin_close() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK | PSH, b"GET / HTTP/1.1\r\n\r\n");
    t.s(ISN_S + 1, ACK | PSH, b"HTTP/1.1 101 OK\r\n\r\n");
    t.c(ISN_C + 19, ACK | FIN, b"");
    t.s(ISN_S + 20, ACK | FIN, b"");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(t.stream(Side::Resp), b"HTTP/1.1 101 OK\r\n\r\n");
    assert_eq!(
        t.rec.evs.first(),
        Some(&Ev::Open(1, cli())),
        "SYN sender is orig"
    );
    assert!(t.rec.evs.contains(&Ev::Data {
        flow: 1,
        side: Side::Orig,
        offset: 0,
        seq: ISN_C + 1,
        data: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        packet: 4
    }));
    assert!(t.rec.evs.contains(&Ev::Fin {
        flow: 1,
        side: Side::Orig,
        packet: 6
    }));
    assert!(t.rec.evs.contains(&Ev::Fin {
        flow: 1,
        side: Side::Resp,
        packet: 7
    }));
    assert_eq!(t.closes(), vec![(1, CloseReason::Fin)]);
    assert!(t.anomalies().is_empty());
    assert_eq!(t.table.len(), 0);
    assert_eq!(t.table.memory_used(), 0);
}

#[test]
fn syn_ack_first_makes_its_receiver_orig() {
    let mut t = T::default();
    t.s(ISN_S, SYN | ACK, b"");
    t.finish();
    assert_eq!(t.rec.evs.first(), Some(&Ev::Open(1, cli())));
}

#[test]
fn sequence_wraparound() {
    let mut t = T::default();
    let isn = u32::MAX - 5;
    t.c(isn, SYN, b"");
    // Out of order across the wrap: second half first.
    t.c(isn.wrapping_add(11), ACK, b"klmnopqrst");
    t.c(isn.wrapping_add(1), ACK, b"abcdefghij");
    t.c(isn.wrapping_add(21), ACK, b"uvwxyz");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"abcdefghijklmnopqrstuvwxyz");
    let offs: Vec<(u64, u32)> = t
        .rec
        .evs
        .iter()
        .filter_map(|e| match e {
            Ev::Data { offset, seq, .. } => Some((*offset, *seq)),
            _ => None,
        })
        .collect();
    assert_eq!(offs, vec![(0, u32::MAX - 4), (10, 5), (20, 15)]);
    assert!(t.gaps().is_empty());
}

#[test]
fn retransmissions_are_deduplicated() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK, b"hello ");
    t.c(ISN_C + 1, ACK, b"hello ");
    t.c(ISN_C + 4, ACK, b"lo world");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"hello world");
    assert_eq!(t.table.stats().retransmissions, 2);
    assert_eq!(t.table.stats().retransmitted_bytes, 6 + 3);
    assert!(t.anomalies().is_empty());
    let datas = t
        .rec
        .evs
        .iter()
        .filter(|e| matches!(e, Ev::Data { .. }))
        .count();
    assert_eq!(datas, 2);
}

#[test]
fn conflicting_retransmission_keeps_delivered_bytes() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK, b"transfer 100");
    t.c(ISN_C + 10, ACK, b"999 more");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"transfer 100 more");
    assert_eq!(t.anomalies(), vec!["tcp_conflicting_retransmission"]);
    assert_eq!(t.table.stats().conflicting_retransmissions, 1);
}

/// Buffered X = 'x' at [10,20); new conflicting N = 'n' at `n`; returns the
/// resolved stream, filled before with 'h'.
fn overlap_case(policy: OverlapPolicy, n: (u64, u64)) -> (Vec<u8>, Vec<&'static str>) {
    let mut t = T::new(TcpConfig {
        overlap: policy,
        ..TcpConfig::default()
    });
    t.c(ISN_C, SYN, b"");
    let at = |o: u64| ISN_C + 1 + o as u32;
    t.c(at(10), ACK, &[b'x'; 10]);
    t.c(at(n.0), ACK, &vec![b'n'; (n.1 - n.0) as usize]);
    let fill = n.0.min(10);
    t.c(at(0), ACK, &vec![b'h'; fill as usize]);
    t.finish();
    assert!(t.gaps().is_empty(), "{:?}", t.gaps());
    (t.stream(Side::Orig), t.anomalies())
}

fn expected(policy: OverlapPolicy, n: (u64, u64)) -> Vec<u8> {
    let end = n.1.max(20);
    (0..end)
        .map(|o| {
            let in_x = (10..20).contains(&o);
            let in_n = (n.0..n.1).contains(&o);
            match (in_x, in_n, policy) {
                (true, true, OverlapPolicy::Last) | (false, true, _) => b'n',
                (true, _, _) => b'x',
                _ => b'h',
            }
        })
        .collect()
}

#[test]
fn overlap_shapes_under_both_policies() {
    let shapes = [
        ("same start", (10, 15)),
        ("same start longer", (10, 25)),
        ("starts before", (5, 15)),
        ("starts after", (15, 25)),
        ("contained", (12, 18)),
        ("contains", (5, 25)),
        ("exact", (10, 20)),
        ("same end", (14, 20)),
    ];
    for policy in [OverlapPolicy::First, OverlapPolicy::Last] {
        for (name, n) in shapes {
            let (got, anomalies) = overlap_case(policy, n);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&expected(policy, n)),
                "{name} {policy:?}"
            );
            assert_eq!(
                anomalies,
                vec!["tcp_conflicting_overlap"],
                "{name} {policy:?}"
            );
        }
    }
}

#[test]
fn overlap_spanning_two_buffered_pieces_and_a_hole() {
    for policy in [OverlapPolicy::First, OverlapPolicy::Last] {
        let mut t = T::new(TcpConfig {
            overlap: policy,
            ..TcpConfig::default()
        });
        t.c(ISN_C, SYN, b"");
        let at = |o: u32| ISN_C + 1 + o;
        t.c(at(10), ACK, b"AAAAA");
        t.c(at(20), ACK, b"BBBBB");
        t.c(at(12), ACK, b"nnnnnnnnnnnn"); // [12,24): conflicts with both, fills [15,20)
        t.c(at(0), ACK, b"hhhhhhhhhh");
        t.finish();
        let want: &[u8] = match policy {
            OverlapPolicy::First => b"hhhhhhhhhhAAAAAnnnnnBBBBB",
            OverlapPolicy::Last => b"hhhhhhhhhhAAnnnnnnnnnnnnB",
        };
        assert_eq!(t.stream(Side::Orig), want, "{policy:?}");
        assert_eq!(t.anomalies().len(), 2);
        assert_eq!(t.table.stats().conflicting_overlaps, 2);
    }
}

#[test]
fn conflict_detail_names_hashes_and_choice() {
    let mut t = T::default();
    t.c(ISN_C, SYN, b"");
    t.c(ISN_C + 11, ACK, b"aaaa");
    t.c(ISN_C + 11, ACK, b"bbbb");
    let detail = t.rec.evs.iter().find_map(|e| match e {
        Ev::Anom { detail, .. } => Some(detail.clone()),
        _ => None,
    });
    let detail = detail.expect("anomaly");
    assert!(detail.contains("offset 10 len 4"), "{detail}");
    assert!(
        detail.contains(&format!("{:016x}", reasm_fnv(b"aaaa"))),
        "{detail}"
    );
    assert!(
        detail.contains(&format!("{:016x}", reasm_fnv(b"bbbb"))),
        "{detail}"
    );
    assert!(detail.contains("kept the first"), "{detail}");
}

fn reasm_fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= x as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[test]
fn identical_overlaps_are_silent() {
    let mut t = T::default();
    t.c(ISN_C, SYN, b"");
    t.c(ISN_C + 6, ACK, b"fghij");
    t.c(ISN_C + 4, ACK, b"defgh");
    t.c(ISN_C + 1, ACK, b"abcdefghijk");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"abcdefghijk");
    assert!(t.anomalies().is_empty());
    assert!(t.table.stats().overlaps >= 2);
}

#[test]
fn buffered_pieces_keep_their_packet_numbers() {
    let mut t = T::default();
    t.c(ISN_C, SYN, b""); // 1
    t.c(ISN_C + 6, ACK, b"world"); // 2
    t.c(ISN_C + 1, ACK, b"hello"); // 3
    t.finish();
    let pk: Vec<(u64, u64)> = t
        .rec
        .evs
        .iter()
        .filter_map(|e| match e {
            Ev::Data { offset, packet, .. } => Some((*offset, *packet)),
            _ => None,
        })
        .collect();
    assert_eq!(pk, vec![(0, 3), (5, 2)]);
}

#[test]
fn ack_past_a_hole_reports_it_lost_at_once() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 11, ACK, b"0123456789"); // 4: hole [0,10)
    t.c(ISN_C + 21, ACK, b"abc"); // 5
    assert!(t.gaps().is_empty());
    let seg = Segment {
        src: srv(),
        dst: cli(),
        seq: ISN_S + 1,
        ack: ISN_C + 1 + 16,
        flags: ACK,
        window: 100,
        payload: b"",
        missing: 0,
        tunnel: Default::default(),
    };
    t.table
        .process(&seg, 6, Timestamp::new(1000, 0), &mut t.rec);
    assert_eq!(t.gaps(), vec![(0, 10, GapReason::Lost)]);
    assert_eq!(t.stream(Side::Orig), b"0123456789abc");
    assert_eq!(t.table.stats().ack_gap_bytes, 10);
    t.c(ISN_C + 1, ACK, b"late bytes"); // capture reordering: too late
    t.finish();
    assert_eq!(t.anomalies(), vec!["tcp_late_data"]);
    assert_eq!(t.tiles(Side::Orig).len(), 23);
    // An ACK that covers only the hole (not buffered data) is not enough.
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 11, ACK, b"0123456789");
    let seg = Segment {
        ack: ISN_C + 1 + 10,
        ..seg
    };
    t.table
        .process(&seg, 5, Timestamp::new(1000, 0), &mut t.rec);
    assert!(t.gaps().is_empty());
}

#[test]
fn keepalive_injects_nothing() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK, b"0123456789");
    t.c(ISN_C + 10, ACK, b"\0");
    t.c(ISN_C + 10, ACK, b"");
    t.c(ISN_C + 11, ACK, b"ab");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"0123456789ab");
    assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
    assert_eq!(t.table.stats().keepalives, 2);
}

#[test]
fn zero_window_probe_injects_nothing() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK, b"abc");
    t.raw(srv(), cli(), ISN_S + 1, ACK, 0, b"", 0); // window closed
    t.c(ISN_C + 4, ACK, b"Z"); // probe
    t.raw(srv(), cli(), ISN_S + 1, ACK, 500, b"", 0); // window opens
    t.c(ISN_C + 4, ACK, b"defg");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"abcdefg");
    assert_eq!(t.table.stats().zero_window_probes, 1);
    assert!(t.anomalies().is_empty());
}

#[test]
fn syn_on_closed_tuple_starts_new_flow() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1, ACK, b"one");
    t.c(ISN_C + 4, ACK | FIN, b"");
    t.s(ISN_S + 1, ACK | FIN, b"");
    t.c(ISN_C, SYN, b""); // retransmitted old SYN: same ISN, not new
    assert_eq!(t.table.stats().flows_created, 1);
    t.c(90_000, SYN, b"");
    t.s(70_000, SYN | ACK, b"");
    t.c(90_001, ACK, b"two");
    t.finish();
    let closes = t.closes();
    assert_eq!(
        closes,
        vec![
            (1, CloseReason::NewConnection),
            (2, CloseReason::EndOfInput)
        ]
    );
    assert!(t.rec.evs.contains(&Ev::Data {
        flow: 2,
        side: Side::Orig,
        offset: 0,
        seq: 90_001,
        data: b"two".to_vec(),
        packet: 10
    }));
    assert_eq!(t.table.stats().flows_replaced, 1);
}

#[test]
fn syn_after_rst_starts_new_flow_and_far_syn_on_live_flow_too() {
    let mut t = T::default();
    handshake(&mut t);
    t.s(ISN_S + 1, RST, b"");
    t.c(777, SYN, b"");
    assert_eq!(t.closes(), vec![(1, CloseReason::NewConnection)]);
    t.c(778, ACK, b"data");
    t.c(778 + (1 << 30), SYN, b""); // far from the live stream
    assert_eq!(t.closes().len(), 2);
    let isn3 = 778 + (1 << 30);
    t.c(isn3 + 1, ACK, b"x");
    t.c(isn3 + 100, SYN, b""); // near: stray SYN on a live flow
    t.finish();
    assert_eq!(t.table.stats().flows_created, 3);
    assert_eq!(t.anomalies(), vec!["tcp_syn_in_window"]);
    assert_eq!(t.stream(Side::Orig), b"datax");
}

#[test]
fn syn_flood_on_one_tuple_stays_bounded() {
    let mut t = T::default();
    for i in 0..10_000u32 {
        t.c(i.wrapping_mul(2_654_435_761), SYN, b"");
    }
    assert_eq!(t.table.len(), 1);
    assert_eq!(t.buffered(), 0);
    assert_eq!(t.table.stats().syn_seq_changes, 9_999);
    assert_eq!(t.anomalies(), vec!["tcp_syn_seq_changed"]);
    t.finish();
    assert_eq!(t.closes(), vec![(1, CloseReason::EndOfInput)]);
}

#[test]
fn mid_connection_start() {
    let mut t = T::default();
    t.s(9_000_000, ACK | PSH, b"server first");
    t.c(123, ACK, b"client");
    t.s(9_000_012, ACK, b"!");
    t.finish();
    assert_eq!(
        t.rec.evs.first(),
        Some(&Ev::Open(1, srv())),
        "first sender is orig"
    );
    assert_eq!(t.stream(Side::Orig), b"server first!");
    assert_eq!(t.stream(Side::Resp), b"client");
    assert!(t.rec.evs.contains(&Ev::Data {
        flow: 1,
        side: Side::Resp,
        offset: 0,
        seq: 123,
        data: b"client".to_vec(),
        packet: 2
    }));
    // Bytes before the first seen sequence number cannot be placed.
    let mut t = T::default();
    t.c(500, ACK, b"later");
    t.c(490, ACK, b"0123456789");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"later");
    assert_eq!(t.anomalies(), vec!["tcp_data_before_stream_start"]);
    assert_eq!(t.table.stats().bytes_before_start, 10);
}

#[test]
fn rst_flushes_and_flags_later_data() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 11, ACK, b"after-hole");
    t.s(ISN_S + 1, RST, b"");
    t.c(ISN_C + 21, ACK, b"more");
    t.finish();
    let evs: Vec<&Ev> = t
        .rec
        .evs
        .iter()
        .filter(|e| !matches!(e, Ev::Open(..)))
        .collect();
    assert_eq!(
        evs,
        vec![
            &Ev::Gap {
                flow: 1,
                side: Side::Orig,
                offset: 0,
                len: 10,
                reason: GapReason::Lost,
                packet: 4
            },
            &Ev::Data {
                flow: 1,
                side: Side::Orig,
                offset: 10,
                seq: ISN_C + 11,
                data: b"after-hole".to_vec(),
                packet: 4
            },
            &Ev::Rst {
                flow: 1,
                side: Side::Resp
            },
            &Ev::Anom {
                flow: 1,
                side: Side::Orig,
                name: "tcp_data_after_rst",
                detail: "4 bytes sent after a RST on this connection; delivered".into()
            },
            &Ev::Data {
                flow: 1,
                side: Side::Orig,
                offset: 20,
                seq: ISN_C + 21,
                data: b"more".to_vec(),
                packet: 6
            },
            &Ev::Close(1, CloseReason::Rst),
        ]
    );
}

#[test]
fn fin_waits_for_hole_and_eof_reports_missing_bytes() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 6, ACK | FIN, b"world");
    assert!(!t.rec.evs.iter().any(|e| matches!(e, Ev::Fin { .. })));
    t.c(ISN_C + 1, ACK, b"hello");
    assert!(t.rec.evs.contains(&Ev::Fin {
        flow: 1,
        side: Side::Orig,
        packet: 4
    }));
    // Server's FIN with a hole before it, never filled.
    t.s(ISN_S + 1, ACK, b"abc");
    t.s(ISN_S + 10, ACK | FIN, b"");
    t.finish();
    assert_eq!(t.gaps(), vec![(3, 6, GapReason::Lost)]);
    let n = t.rec.evs.len();
    assert_eq!(
        t.rec.evs.get(n - 2),
        Some(&Ev::Fin {
            flow: 1,
            side: Side::Resp,
            packet: 7
        })
    );
    assert_eq!(t.closes(), vec![(1, CloseReason::Fin)]);
}

#[test]
fn snaplen_cut_becomes_gap() {
    let mut t = T::default();
    handshake(&mut t);
    t.raw(cli(), srv(), ISN_C + 1, ACK, 1000, b"0123456789", 20);
    // Out of order truncated segment, then the fill.
    t.raw(cli(), srv(), ISN_C + 41, ACK, 1000, b"abcde", 5);
    t.c(ISN_C + 31, ACK, b"ABCDEFGHIJ");
    t.c(ISN_C + 51, ACK, b"end");
    t.finish();
    assert_eq!(
        t.gaps(),
        vec![(10, 20, GapReason::SnapLen), (45, 5, GapReason::SnapLen)]
    );
    let tiles = t.tiles(Side::Orig);
    assert_eq!(tiles.len(), 53);
    assert_eq!(tiles.iter().flatten().count(), 28);
    assert!(t.anomalies().is_empty());
}

#[test]
fn ooo_byte_limit_skips_ahead_with_gap_and_bounded_memory() {
    let mut t = T::new(TcpConfig {
        max_ooo_bytes_per_dir: 100,
        history_bytes_per_dir: 0,
        ..TcpConfig::default()
    });
    t.c(ISN_C, SYN, b"");
    for i in 0..10u32 {
        t.c(ISN_C + 11 + i * 30, ACK, &[b'a' + i as u8; 30]);
        assert!(t.buffered() <= 100 + 4 * reasm::PIECE_OVERHEAD + reasm::OOO_ROOT);
    }
    t.finish();
    let gaps = t.gaps();
    assert_eq!(gaps.first(), Some(&(0, 10, GapReason::BufferLimit)));
    assert_eq!(gaps.len(), 1);
    assert!(t.anomalies().contains(&"tcp_reassembly_limit"));
    let tiles = t.tiles(Side::Orig);
    assert_eq!(tiles.len(), 310);
    assert!(t.table.stats().limit_hits >= 1);
    assert_eq!(t.table.stats().limit_gap_bytes, 10);
    assert_eq!(t.table.memory_used(), 0);
}

#[test]
fn segment_limit_and_memcap_give_named_gaps() {
    let mut t = T::new(TcpConfig {
        max_segments_per_dir: 2,
        ..TcpConfig::default()
    });
    t.c(ISN_C, SYN, b"");
    for i in 0..3u32 {
        t.c(ISN_C + 2 + i * 2, ACK, b"x");
    }
    t.finish();
    assert_eq!(t.gaps().first(), Some(&(0, 1, GapReason::SegmentLimit)));

    // Room for the flow and its root, then two small pieces.
    let cap = FlowTable::<u32>::new(TcpConfig::default()).flow_base_cost
        + reasm::OOO_ROOT
        + 2 * reasm::PIECE_OVERHEAD
        + 20;
    let mut t = T::new(TcpConfig {
        memcap: cap,
        history_bytes_per_dir: 0,
        ..TcpConfig::default()
    });
    t.c(ISN_C, SYN, b"");
    t.s(ISN_S, SYN | ACK, b"");
    t.c(ISN_C + 2, ACK, b"0123456789");
    t.s(ISN_S + 2, ACK, b"0123456789");
    t.c(ISN_C + 20, ACK, b"0123456789");
    t.finish();
    assert!(
        t.gaps().iter().any(|g| g.2 == GapReason::Memcap),
        "{:?}",
        t.gaps()
    );
    assert!(t.table.stats().peak_memory <= cap as u64);
}

#[test]
fn late_data_after_gap_is_reported_not_delivered() {
    let mut t = T::new(TcpConfig {
        max_segments_per_dir: 1,
        ..TcpConfig::default()
    });
    t.c(ISN_C, SYN, b"");
    t.c(ISN_C + 3, ACK, b"cd");
    t.c(ISN_C + 6, ACK, b"f"); // limit: [0,2) becomes a gap
    t.c(ISN_C + 1, ACK, b"ab"); // late
    t.finish();
    assert_eq!(t.anomalies(), vec!["tcp_reassembly_limit", "tcp_late_data"]);
    assert_eq!(t.table.stats().late_bytes, 2);
    let tiles = t.tiles(Side::Orig);
    assert_eq!(
        tiles,
        vec![None, None, Some(b'c'), Some(b'd'), None, Some(b'f')]
    );
}

#[test]
fn far_ahead_segment_is_not_buffered() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 1 + (1 << 31) - 10, ACK, b"bogus");
    t.c(ISN_C + 1, ACK, b"ok");
    t.finish();
    assert_eq!(t.stream(Side::Orig), b"ok");
    assert_eq!(t.anomalies(), vec!["tcp_out_of_window"]);
    assert!(t.gaps().is_empty());
}

#[test]
fn lru_eviction_prefers_least_recent() {
    let mut t = T::new(TcpConfig {
        max_flows: 3,
        ..TcpConfig::default()
    });
    let addr = |p: u16| -> SocketAddr { format!("10.0.0.1:{p}").parse().unwrap() };
    for p in 1..=3u16 {
        t.raw(addr(p), srv(), 1, SYN, 100, b"", 0);
    }
    t.raw(addr(1), srv(), 2, ACK, 100, b"x", 0); // touch flow 1
    t.raw(addr(4), srv(), 1, SYN, 100, b"", 0); // evicts flow 2
    t.raw(addr(5), srv(), 1, SYN, 100, b"", 0); // evicts flow 3
    assert_eq!(
        t.closes(),
        vec![(2, CloseReason::Evicted), (3, CloseReason::Evicted)]
    );
    assert_eq!(t.table.len(), 3);
    assert_eq!(t.table.stats().flows_evicted, 2);
    t.finish();
    assert_eq!(
        t.closes(),
        vec![
            (2, CloseReason::Evicted),
            (3, CloseReason::Evicted),
            (1, CloseReason::EndOfInput),
            (4, CloseReason::EndOfInput),
            (5, CloseReason::EndOfInput)
        ]
    );
}

#[test]
fn evicting_a_flow_with_payload_is_reported() {
    let mut t = T::new(TcpConfig {
        max_flows: 2,
        ..TcpConfig::default()
    });
    let addr = |p: u16| -> SocketAddr { format!("10.0.0.1:{p}").parse().unwrap() };
    t.raw(addr(1), srv(), 1, SYN, 100, b"", 0);
    t.raw(addr(1), srv(), 2, ACK, 100, b"data", 0);
    t.raw(addr(2), srv(), 1, SYN, 100, b"", 0);
    t.raw(addr(3), srv(), 1, SYN, 100, b"", 0); // evicts flow 1, which had data
    t.raw(addr(4), srv(), 1, SYN, 100, b"", 0); // evicts flow 2, which had none
    assert_eq!(t.anomalies(), vec!["tcp_flow_evicted"]);
    assert_eq!(t.table.stats().flows_evicted, 2);
    assert_eq!(t.table.stats().flows_evicted_memcap, 0);
}

#[test]
fn timeouts_follow_packet_time_and_class() {
    let mut t = T::default();
    let addr = |p: u16| -> SocketAddr { format!("10.0.0.1:{p}").parse().unwrap() };
    t.raw(addr(1), srv(), 1, SYN, 100, b"", 0); // new: 30 s
    t.raw(addr(2), srv(), 1, ACK, 100, b"data", 0); // established: 3600 s
    t.raw(addr(3), srv(), 1, SYN, 100, b"", 0);
    t.raw(srv(), addr(3), 1, RST | ACK, 100, b"", 0); // closed: 120 s
    t.secs += 31;
    t.raw(addr(9), srv(), 1, SYN, 100, b"", 0);
    assert_eq!(t.closes(), vec![(1, CloseReason::Timeout)]);
    t.secs += 100;
    t.raw(addr(9), srv(), 1, SYN, 100, b"", 0);
    assert!(t.closes().contains(&(3, CloseReason::Rst)));
    assert!(!t.closes().iter().any(|c| c.0 == 2));
    t.secs += 3600;
    t.raw(addr(9), srv(), 1, SYN, 100, b"", 0);
    assert!(t.closes().contains(&(2, CloseReason::Timeout)));
    assert!(t.table.stats().flows_timed_out >= 3);
    // A timestamp going backwards does not rewind the clock.
    t.secs -= 10_000;
    t.raw(addr(9), srv(), 1, SYN, 100, b"", 0);
    assert_eq!(t.table.len(), 1);
}

#[test]
fn timeout_flushes_hole_as_gap() {
    let mut t = T::default();
    handshake(&mut t);
    t.c(ISN_C + 5, ACK, b"tail");
    t.secs += 4000;
    t.raw("10.9.9.9:1".parse().unwrap(), srv(), 1, SYN, 100, b"", 0);
    assert_eq!(t.gaps(), vec![(0, 4, GapReason::Lost)]);
    assert_eq!(t.stream(Side::Orig), b"tail");
    assert_eq!(t.closes(), vec![(1, CloseReason::Timeout)]);
}

#[test]
fn finish_flushes_in_creation_order() {
    let mut t = T::default();
    let addr = |p: u16| -> SocketAddr { format!("10.0.0.1:{p}").parse().unwrap() };
    for p in [3u16, 1, 2] {
        t.raw(addr(p), srv(), 100, SYN, 100, b"", 0);
        t.raw(addr(p), srv(), 111, ACK, 100, b"buffered", 0);
    }
    t.raw(addr(3), srv(), 101, ACK, 100, b"x", 0); // flow 1 most recent, partly filled
    t.finish();
    let tail: Vec<Ev> = t.rec.evs.iter().skip(4).cloned().collect();
    let flows: Vec<u64> = tail
        .iter()
        .map(|e| match e {
            Ev::Gap { flow, .. } | Ev::Data { flow, .. } | Ev::Close(flow, _) => *flow,
            _ => 0,
        })
        .collect();
    assert_eq!(flows, vec![1, 1, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(
        tail.first(),
        Some(&Ev::Gap {
            flow: 1,
            side: Side::Orig,
            offset: 1,
            len: 9,
            reason: GapReason::Lost,
            packet: 2
        })
    );
}

#[test]
fn ignored_flow_gets_no_more_events_and_is_not_recreated() {
    let mut t = T::default();
    t.rec.ignore_on_data = true;
    handshake(&mut t);
    t.c(ISN_C + 20, ACK, b"buffered");
    t.c(ISN_C + 1, ACK, b"first");
    let n = t.rec.evs.len();
    assert!(t.buffered() == 0);
    t.c(ISN_C + 6, ACK, b"more");
    t.s(ISN_S + 1, ACK, b"resp");
    assert_eq!(t.rec.evs.len(), n);
    t.finish();
    assert_eq!(t.closes(), vec![(1, CloseReason::EndOfInput)]);
    assert_eq!(t.table.stats().flows_created, 1);
    assert_eq!(t.table.stats().flows_ignored, 1);
}

#[test]
fn many_flows_with_holes_stay_within_memcap() {
    let cap = 4 << 20;
    let mut t = T::new(TcpConfig {
        memcap: cap,
        ..TcpConfig::default()
    });
    for i in 0..200_000u32 {
        let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1234));
        t.raw(a, srv(), 10, ACK, 100, b"a", 0);
        t.raw(a, srv(), 20, ACK, 100, &[b'b'; 64], 0);
    }
    // The flows themselves are charged: the oldest were evicted (their
    // holes became gaps) to make room for new ones.
    let stats = t.table.stats();
    assert!(t.table.len() < 200_000);
    assert!(stats.flows_evicted_memcap > 0);
    assert_eq!(stats.flows_evicted_memcap, stats.flows_evicted);
    assert!(t.table.memory_used() <= cap);
    assert!(stats.peak_memory <= cap as u64);
    assert!(t.gaps().iter().any(|g| g.2 == GapReason::Lost));
    t.finish();
    assert_eq!(t.table.memory_used(), 0);
    assert_eq!(t.closes().len(), 200_000);
}

#[test]
fn anomaly_names_are_listed_and_snake_case() {
    for (name, meaning) in ANOMALIES {
        assert!(name.starts_with("tcp_"));
        assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!(!meaning.is_empty());
    }
    let src = [include_str!("mod.rs"), include_str!("reasm.rs")].concat();
    let mut used: Vec<&str> = src
        .match_indices("\"tcp_")
        .filter_map(|(i, _)| src.get(i + 1..).and_then(|r| r.split('"').next()))
        .collect();
    used.sort();
    used.dedup();
    let mut listed: Vec<&str> = ANOMALIES.iter().map(|a| a.0).collect();
    listed.sort();
    assert_eq!(used, listed);
}

// --- property tests against a reference model -------------------------------

/// Cuts `stream` into segments (random boundaries), adds overlapping copies
/// with consistent bytes, shuffles, drops some and truncates to `snap`.
#[allow(clippy::too_many_arguments)]
fn feed(
    stream: &[u8],
    isn: u32,
    cuts: &[usize],
    extra: &[(usize, usize)],
    order: &[usize],
    drop: &[bool],
    snap: Option<usize>,
    cfg: TcpConfig,
) -> T {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    bounds.push(0);
    bounds.push(stream.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
    for &(a, l) in extra {
        let a = a % (stream.len() + 1);
        segs.push((a, (a + l).min(stream.len())));
    }
    let mut keyed: Vec<(usize, (usize, usize))> = segs
        .into_iter()
        .enumerate()
        .map(|(i, s)| (order.get(i).copied().unwrap_or(i), s))
        .collect();
    keyed.sort_by_key(|k| k.0);
    let mut t = T::new(cfg);
    t.c(isn, SYN, b"");
    for (i, (_, (a, b))) in keyed.into_iter().enumerate() {
        if drop.get(i).copied().unwrap_or(false) {
            continue;
        }
        let seq = isn.wrapping_add(1).wrapping_add(a as u32);
        let keep = snap.map_or(b - a, |n| n.min(b - a));
        let missing = (b - a - keep) as u32;
        t.raw(cli(), srv(), seq, ACK, 1000, &stream[a..a + keep], missing);
    }
    t.c(
        isn.wrapping_add(1).wrapping_add(stream.len() as u32),
        ACK | FIN,
        b"",
    );
    t.finish();
    t
}

fn isn_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (0u32..4000).prop_map(|d| u32::MAX - d)]
}

proptest! {
    // PROPTEST_CASES overrides the count for longer hunts.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(300),
        ..ProptestConfig::default()
    })]

    #[test]
    fn reordered_duplicated_stream_is_delivered_exactly(
        stream in proptest::collection::vec(any::<u8>(), 0..2000),
        isn in isn_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        extra in proptest::collection::vec((any::<usize>(), 1usize..300), 0..15),
        order in proptest::collection::vec(any::<usize>(), 60),
        last in any::<bool>(),
    ) {
        let cfg = TcpConfig {
            overlap: if last { OverlapPolicy::Last } else { OverlapPolicy::First },
            ..TcpConfig::default()
        };
        let t = feed(&stream, isn, &cuts, &extra, &order, &[], None, cfg);
        prop_assert_eq!(t.stream(Side::Orig), stream);
        prop_assert!(t.gaps().is_empty());
        prop_assert!(t.anomalies().is_empty(), "{:?}", t.anomalies());
        let fin = Ev::Fin { flow: 1, side: Side::Orig, packet: t.pkt };
        prop_assert!(t.rec.evs.contains(&fin));
        prop_assert_eq!(t.table.memory_used(), 0);
    }

    #[test]
    fn with_losses_data_and_gaps_tile_the_stream(
        stream in proptest::collection::vec(any::<u8>(), 1..2000),
        isn in isn_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..40),
        extra in proptest::collection::vec((any::<usize>(), 1usize..300), 0..15),
        order in proptest::collection::vec(any::<usize>(), 60),
        drop in proptest::collection::vec(proptest::bool::weighted(0.2), 60),
        tight in any::<bool>(),
        last in any::<bool>(),
        snap in proptest::option::weighted(0.2, 1usize..200),
    ) {
        let overlap = if last { OverlapPolicy::Last } else { OverlapPolicy::First };
        let cfg = if tight {
            TcpConfig { max_ooo_bytes_per_dir: 300, max_segments_per_dir: 4, history_bytes_per_dir: 64, overlap, ..TcpConfig::default() }
        } else {
            TcpConfig { overlap, ..TcpConfig::default() }
        };
        let t = feed(&stream, isn, &cuts, &extra, &order, &drop, snap, cfg);
        let tiles = t.tiles(Side::Orig);
        prop_assert_eq!(tiles.len(), stream.len());
        for (i, tile) in tiles.iter().enumerate() {
            if let Some(b) = tile {
                prop_assert_eq!(*b, stream[i], "byte {}", i);
            }
        }
        prop_assert!(!t.anomalies().iter().any(|a| a.contains("conflict")));
        prop_assert_eq!(t.table.memory_used(), 0);
    }
}

/// Throughput of the in-order path; run with
/// `cargo test --release --lib tcp::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    struct Count(u64);
    impl FlowHandler for Count {
        type State = ();
        type Error = std::convert::Infallible;
        fn open(&mut self, _: &FlowInfo) {}
        fn event(
            &mut self,
            _: &mut (),
            _: &FlowInfo,
            ev: StreamEvent<'_>,
        ) -> Result<Interest, Self::Error> {
            if let StreamEvent::Data { data, .. } = ev {
                self.0 += data.len() as u64;
            }
            Ok(Interest::Continue)
        }
        fn close(&mut self, _: (), _: &FlowInfo, _: CloseReason) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let payload = vec![0x5au8; 65_000];
    let mut table: FlowTable<()> = FlowTable::new(TcpConfig::default());
    let mut h = Count(0);
    let n = 50_000u64;
    let start = std::time::Instant::now();
    let mut seq = 1u32;
    for i in 0..n {
        let seg = Segment {
            src: cli(),
            dst: srv(),
            seq,
            ack: 0,
            flags: ACK,
            window: 100,
            payload: &payload,
            missing: 0,
            tunnel: Default::default(),
        };
        table.process(&seg, i + 1, Timestamp::new(0, 0), &mut h);
        seq = seq.wrapping_add(payload.len() as u32);
    }
    let secs = start.elapsed().as_secs_f64();
    let gbps = h.0 as f64 / secs / 1e9;
    println!("{} bytes in {secs:.3} s: {gbps:.2} GB/s", h.0);
    assert_eq!(h.0, n * payload.len() as u64);
}

/// A million live flows; run like `throughput`.
#[test]
#[ignore]
fn million_flows() {
    let mut t = T::new(TcpConfig::default());
    let start = std::time::Instant::now();
    for i in 0..1_000_000u32 {
        let a = SocketAddr::from(([10, (i >> 16) as u8, (i >> 8) as u8, i as u8], 1234));
        t.raw(a, srv(), 10, SYN, 100, b"", 0);
    }
    assert_eq!(t.table.len(), 1_000_000);
    println!(
        "1M flows in {:.2} s; Flow<u32> is {} bytes",
        start.elapsed().as_secs_f64(),
        std::mem::size_of::<Flow<u32>>()
    );
    t.rec.evs.clear();
    t.finish();
    assert_eq!(t.closes().len(), 1_000_000);
}
