//! Every encapsulation built by hand around one TCP segment, nested with
//! VLAN/QinQ, cut at every byte, and beyond the depth limit.

use super::link::LINKTYPE_ETHERNET;
use super::*;

const T0: Timestamp = Timestamp::new(1000, 0);
const PAYLOAD: &[u8] = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n";

fn tcp_seg(payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&40000u16.to_be_bytes());
    t.extend_from_slice(&80u16.to_be_bytes());
    t.extend_from_slice(&7u32.to_be_bytes());
    t.extend_from_slice(&9u32.to_be_bytes());
    t.extend_from_slice(&[5 << 4, flags::ACK | flags::PSH, 1, 0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    t
}

fn ip4(proto: u8, src: [u8; 4], dst: [u8; 4], body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + body.len() as u16).to_be_bytes());
    h.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src);
    h.extend_from_slice(&dst);
    h.extend_from_slice(body);
    h
}

fn ip6(next: u8, src: u8, dst: u8, body: &[u8]) -> Vec<u8> {
    let mut h = vec![0x60, 0, 0, 0];
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&[next, 64]);
    for a in [src, dst] {
        let mut x = [0u8; 16];
        x[0] = 0x20;
        x[1] = 0x01;
        x[15] = a;
        h.extend_from_slice(&x);
    }
    h.extend_from_slice(body);
    h
}

/// The inner packet every test carries: 192.168.0.1:40000 -> 192.168.0.2:80.
fn inner4() -> Vec<u8> {
    ip4(6, [192, 168, 0, 1], [192, 168, 0, 2], &tcp_seg(PAYLOAD))
}

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

fn vlan(tpid: u16, id: u16, et: u16, payload: &[u8]) -> (u16, Vec<u8>) {
    let mut f = id.to_be_bytes().to_vec();
    f.extend_from_slice(&et.to_be_bytes());
    f.extend_from_slice(payload);
    (tpid, f)
}

fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut u = sport.to_be_bytes().to_vec();
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    u
}

/// Outer IPv4 10.0.0.1 -> 10.0.0.2 (or reversed).
fn outer(proto: u8, rev: bool, body: &[u8]) -> Vec<u8> {
    let (a, b) = ([10, 0, 0, 1], [10, 0, 0, 2]);
    if rev {
        ip4(proto, b, a, body)
    } else {
        ip4(proto, a, b, body)
    }
}

fn vxlan(vni: u32, inner_eth: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08, 0, 0, 0];
    v.extend_from_slice(&(vni << 8).to_be_bytes());
    v.extend_from_slice(inner_eth);
    udp(54321, 4789, &v)
}

fn geneve(vni: u32, proto: u16, opt_words: u8, inner: &[u8]) -> Vec<u8> {
    let mut g = vec![opt_words, 0];
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(&(vni << 8).to_be_bytes());
    g.extend(std::iter::repeat(0xab).take(opt_words as usize * 4));
    g.extend_from_slice(inner);
    udp(54321, 6081, &g)
}

/// GTP-U G-PDU; `ext`: extension headers as (type, content of 4n-2 bytes).
fn gtpu(teid: u32, ext: &[(u8, Vec<u8>)], inner: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    let mut fl = 0x30;
    if !ext.is_empty() {
        fl |= 0x04 | 0x02;
        body.extend_from_slice(&[0, 5, 0, ext[0].0]);
        for (i, (_, c)) in ext.iter().enumerate() {
            body.push(((c.len() + 2) / 4) as u8);
            body.extend_from_slice(c);
            body.push(ext.get(i + 1).map_or(0, |e| e.0));
        }
    }
    body.extend_from_slice(inner);
    let mut g = vec![fl, 0xff];
    g.extend_from_slice(&(body.len() as u16).to_be_bytes());
    g.extend_from_slice(&teid.to_be_bytes());
    g.extend_from_slice(&body);
    udp(2152, 2152, &g)
}

fn gre(csum: bool, key: Option<u32>, seq: bool, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut fl = 0u16;
    let mut opt = Vec::new();
    if csum {
        fl |= 0x8000;
        opt.extend_from_slice(&[0, 0, 0, 0]);
    }
    if let Some(k) = key {
        fl |= 0x2000;
        opt.extend_from_slice(&k.to_be_bytes());
    }
    if seq {
        fl |= 0x1000;
        opt.extend_from_slice(&99u32.to_be_bytes());
    }
    let mut g = fl.to_be_bytes().to_vec();
    g.extend_from_slice(&proto.to_be_bytes());
    g.extend_from_slice(&opt);
    g.extend_from_slice(payload);
    g
}

fn erspan2(session: u16, frame: &[u8]) -> Vec<u8> {
    let mut e = vec![0x10, 0x00];
    e.extend_from_slice(&(session & 0x3ff).to_be_bytes());
    e.extend_from_slice(&[0, 0, 0, 0]);
    e.extend_from_slice(frame);
    gre(false, None, true, 0x88be, &e)
}

fn erspan3(session: u16, sub: bool, frame: &[u8]) -> Vec<u8> {
    let mut e = vec![0x20, 0x00];
    e.extend_from_slice(&(session & 0x3ff).to_be_bytes());
    e.extend_from_slice(&[1, 2, 3, 4, 0, 0, 0, u8::from(sub)]);
    if sub {
        e.extend_from_slice(&[9; 8]);
    }
    e.extend_from_slice(frame);
    gre(false, None, true, 0x22eb, &e)
}

fn mpls(labels: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    for (i, l) in labels.iter().enumerate() {
        let bos = u32::from(i + 1 == labels.len());
        m.extend_from_slice(&((l << 12) | (bos << 8) | 64).to_be_bytes());
    }
    m.extend_from_slice(payload);
    m
}

fn pppoe(session: u16, proto: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x11, 0];
    p.extend_from_slice(&session.to_be_bytes());
    p.extend_from_slice(&(2 + payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&proto.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Decodes an Ethernet frame to (payload, tunnel, description).
fn dec(d: &mut Decoder, frame: &[u8]) -> Result<(Vec<u8>, TunnelKey, String), SkipReason> {
    let seg = d.decode(LINKTYPE_ETHERNET, frame, frame.len() as u32, T0)?;
    assert_eq!(seg.src, "192.168.0.1:40000".parse().unwrap());
    assert_eq!(seg.dst, "192.168.0.2:80".parse().unwrap());
    assert_eq!(seg.seq, 7);
    assert_eq!(seg.missing, 0);
    let (p, k) = (seg.payload.to_vec(), seg.tunnel);
    let desc = d.tunnel(k).map(describe_tunnel).unwrap_or_default();
    Ok((p, k, desc))
}

fn dec1(frame: &[u8]) -> Result<(Vec<u8>, TunnelKey, String), SkipReason> {
    dec(&mut Decoder::new(DecodeConfig::default()), frame)
}

/// Every kind, as an Ethernet frame, with its expected description.
fn every_kind() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let e_in = eth(0x0800, &inner4());
    let v6_inner = ip6(6, 1, 2, &tcp_seg(PAYLOAD));
    let _ = v6_inner;
    vec![
        (
            "vxlan",
            eth(0x0800, &outer(17, false, &vxlan(42, &e_in))),
            "vxlan vni=42 10.0.0.1->10.0.0.2",
        ),
        (
            "geneve with options, ethernet inside",
            eth(0x0800, &outer(17, false, &geneve(7, 0x6558, 2, &e_in))),
            "geneve vni=7 10.0.0.1->10.0.0.2",
        ),
        (
            "geneve, ipv4 inside",
            eth(0x0800, &outer(17, false, &geneve(8, 0x0800, 0, &inner4()))),
            "geneve vni=8 10.0.0.1->10.0.0.2",
        ),
        (
            "gtpu",
            eth(0x0800, &outer(17, false, &gtpu(0x1234, &[], &inner4()))),
            "gtpu teid=0x1234 10.0.0.1->10.0.0.2",
        ),
        (
            "gtpu with two extension headers",
            eth(
                0x0800,
                &outer(
                    17,
                    false,
                    &gtpu(
                        0x99,
                        &[(0x85, vec![0, 9]), (0x40, vec![1, 2, 3, 4, 5, 6])],
                        &inner4(),
                    ),
                ),
            ),
            "gtpu teid=0x99 10.0.0.1->10.0.0.2",
        ),
        (
            "gre ipv4",
            eth(
                0x0800,
                &outer(47, false, &gre(false, None, false, 0x0800, &inner4())),
            ),
            "gre 10.0.0.1->10.0.0.2",
        ),
        (
            "gre checksum key seq, bridged ethernet",
            eth(
                0x0800,
                &outer(47, false, &gre(true, Some(5), true, 0x6558, &e_in)),
            ),
            "gre key=0x5 10.0.0.1->10.0.0.2",
        ),
        (
            "gre in ipv6, mpls inside",
            eth(
                0x86dd,
                &ip6(
                    47,
                    8,
                    9,
                    &gre(false, None, false, 0x8847, &mpls(&[16, 17], &inner4())),
                ),
            ),
            "gre 2001::8->2001::9 / mpls labels=2 bottom=17",
        ),
        (
            "erspan ii",
            eth(0x0800, &outer(47, false, &erspan2(100, &e_in))),
            "erspan-ii session=100 10.0.0.1->10.0.0.2",
        ),
        (
            "erspan iii with subheader",
            eth(0x0800, &outer(47, false, &erspan3(101, true, &e_in))),
            "erspan-iii session=101 10.0.0.1->10.0.0.2",
        ),
        (
            "erspan iii",
            eth(0x0800, &outer(47, false, &erspan3(102, false, &e_in))),
            "erspan-iii session=102 10.0.0.1->10.0.0.2",
        ),
        ("mpls stack", eth(0x8847, &mpls(&[1, 2, 3], &inner4())), ""),
        (
            "mpls pseudowire with control word",
            eth(
                0x8847,
                &mpls(&[1000], &[&[0u8, 0, 0, 1][..], &e_in].concat()),
            ),
            "",
        ),
        ("pppoe", eth(0x8864, &pppoe(0x2a, 0x0021, &inner4())), ""),
        (
            "ip in ip",
            eth(0x0800, &outer(4, false, &inner4())),
            "ipip 10.0.0.1->10.0.0.2",
        ),
        (
            "ipv4 in ipv6 in ipv4",
            eth(0x0800, &outer(41, false, &ip6(4, 3, 4, &inner4()))),
            "ipip 10.0.0.1->10.0.0.2 / ipip 2001::3->2001::4",
        ),
    ]
}

#[test]
fn every_encapsulation_yields_the_inner_segment() {
    for (name, frame, want) in every_kind() {
        let (p, k, desc) = dec1(&frame).unwrap_or_else(|r| panic!("{name}: {}", r.name()));
        assert_eq!(p, PAYLOAD, "{name}");
        assert_eq!(desc, want, "{name}");
        assert_eq!(k.is_none(), want.is_empty(), "{name}");
    }
}

#[test]
fn ipv6_in_ipv6_and_ipv6_inner() {
    let inner = ip6(6, 1, 2, &tcp_seg(PAYLOAD));
    let f = eth(0x86dd, &ip6(41, 8, 9, &inner));
    let mut d = Decoder::new(DecodeConfig::default());
    let seg = d.decode(LINKTYPE_ETHERNET, &f, f.len() as u32, T0).unwrap();
    assert_eq!(seg.src, "[2001::1]:40000".parse().unwrap());
    assert_eq!(seg.payload, PAYLOAD);
    let k = seg.tunnel;
    assert_eq!(
        describe_tunnel(d.tunnel(k).unwrap()),
        "ipip 2001::8->2001::9"
    );
    assert_eq!(d.stats().tunneled_segments, 1);
}

#[test]
fn qinq_then_gtpu_with_extensions() {
    let gtp = outer(17, false, &gtpu(0xabcd, &[(0x85, vec![0, 1])], &inner4()));
    let (t2, inner_tag) = vlan(0x8100, 20, 0x0800, &gtp);
    let (t1, outer_tag) = vlan(0x88a8, 10, t2, &inner_tag);
    let f = eth(t1, &outer_tag);
    let (p, _, desc) = dec1(&f).unwrap();
    assert_eq!(p, PAYLOAD);
    assert_eq!(
        desc,
        "qinq id=10 / vlan id=20 / gtpu teid=0xabcd 10.0.0.1->10.0.0.2"
    );
    // The old 0x9100 tag too, around VXLAN with VLAN inside.
    let (t, tagged_inner) = vlan(0x8100, 5, 0x0800, &inner4());
    let vx = outer(17, false, &vxlan(3, &eth(t, &tagged_inner)));
    let (t9, tagged) = vlan(0x9100, 7, 0x0800, &vx);
    let (_, _, desc) = dec1(&eth(t9, &tagged)).unwrap();
    assert_eq!(
        desc,
        "qinq id=7 / vxlan vni=3 10.0.0.1->10.0.0.2 / vlan id=5"
    );
}

#[test]
fn both_directions_share_the_key_and_vnis_differ() {
    let e_in = eth(0x0800, &inner4());
    let k = |rev: bool, vni: u32| {
        dec1(&eth(0x0800, &outer(17, rev, &vxlan(vni, &e_in))))
            .unwrap()
            .1
    };
    assert_eq!(k(false, 42), k(true, 42));
    assert_ne!(k(false, 42), k(false, 43));
    // GTP-U TEIDs differ per direction: they stay out of the key.
    let g = |teid: u32, rev: bool| {
        dec1(&eth(0x0800, &outer(17, rev, &gtpu(teid, &[], &inner4()))))
            .unwrap()
            .1
    };
    assert_eq!(g(1, false), g(2, true));
    assert!(!g(1, false).is_none());
    // Different kinds between the same endpoints differ.
    let ipip = dec1(&eth(0x0800, &outer(4, false, &inner4()))).unwrap().1;
    assert_ne!(ipip, g(1, false));
}

#[test]
fn identical_inner_flows_in_two_vnis_are_two_flows() {
    use crate::tcp::{
        CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, StreamEvent, TcpConfig,
    };
    struct Tunnels(Vec<TunnelKey>);
    impl FlowHandler for Tunnels {
        type State = ();
        type Error = std::convert::Infallible;
        fn open(&mut self, info: &FlowInfo) {
            self.0.push(info.tunnel);
        }
        fn event(
            &mut self,
            _: &mut (),
            _: &FlowInfo,
            _: StreamEvent<'_>,
        ) -> Result<Interest, Self::Error> {
            Ok(Interest::Continue)
        }
        fn close(&mut self, _: (), _: &FlowInfo, _: CloseReason) -> Result<(), Self::Error> {
            Ok(())
        }
    }
    let e_in = eth(0x0800, &inner4());
    let mut d = Decoder::new(DecodeConfig::default());
    let mut t: FlowTable<()> = FlowTable::new(TcpConfig::default());
    let mut h = Tunnels(Vec::new());
    for (i, vni) in [42, 43, 42, 43].into_iter().enumerate() {
        let f = eth(0x0800, &outer(17, i >= 2, &vxlan(vni, &e_in)));
        let seg = d.decode(LINKTYPE_ETHERNET, &f, f.len() as u32, T0).unwrap();
        t.process(&seg, i as u64 + 1, T0, &mut h).unwrap();
    }
    t.finish(&mut h).unwrap();
    assert_eq!(
        h.0.len(),
        2,
        "two VNIs, two flows; reversed outer IPs, same flows"
    );
    assert_ne!(h.0[0], h.0[1]);
    let descs: Vec<_> =
        h.0.iter()
            .map(|k| describe_tunnel(d.tunnel(*k).unwrap()))
            .collect();
    assert_eq!(
        descs,
        [
            "vxlan vni=42 10.0.0.1->10.0.0.2",
            "vxlan vni=43 10.0.0.1->10.0.0.2"
        ]
    );
}

#[test]
fn depth_limit() {
    let mut et = 0x0800;
    let mut body = inner4();
    for i in 0..MAX_ENCAPSULATIONS as u16 {
        let (t, b) = vlan(0x8100, i, et, &body);
        et = t;
        body = b;
    }
    assert_eq!(dec1(&eth(et, &body)).unwrap().0, PAYLOAD);
    let (t, b) = vlan(0x8100, 99, et, &body);
    assert_eq!(dec1(&eth(t, &b)), Err(SkipReason::TunnelTooDeep));
    // IP-in-IP nested past the limit.
    let mut p = inner4();
    for _ in 0..=MAX_ENCAPSULATIONS {
        p = outer(4, false, &p);
    }
    let mut d = Decoder::new(DecodeConfig::default());
    assert_eq!(
        dec(&mut d, &eth(0x0800, &p)),
        Err(SkipReason::TunnelTooDeep)
    );
    assert_eq!(d.stats().skipped_for(SkipReason::TunnelTooDeep), 1);
    // An MPLS stack with no bottom of stack within the label limit.
    let mut m = Vec::new();
    for _ in 0..tunnel::MAX_MPLS_LABELS {
        m.extend_from_slice(&(5u32 << 12).to_be_bytes());
    }
    m.extend_from_slice(&inner4());
    assert_eq!(dec1(&eth(0x8847, &m)), Err(SkipReason::TunnelTooDeep));
}

#[test]
fn ordinary_udp_on_tunnel_ports_and_unsupported_headers() {
    let e_in = eth(0x0800, &inner4());
    // VXLAN port without the I flag; GTP version 2; Geneve version 1.
    let mut not_vx = vxlan(1, &e_in);
    not_vx[8] = 0;
    assert_eq!(
        dec1(&eth(0x0800, &outer(17, false, &not_vx))),
        Err(SkipReason::NotTcp)
    );
    let mut gtp2 = gtpu(1, &[], &inner4());
    gtp2[8] = 0x48;
    assert_eq!(
        dec1(&eth(0x0800, &outer(17, false, &gtp2))),
        Err(SkipReason::NotTcp)
    );
    let mut gen1 = geneve(1, 0x6558, 0, &e_in);
    gen1[8] = 0x40;
    assert_eq!(
        dec1(&eth(0x0800, &outer(17, false, &gen1))),
        Err(SkipReason::NotTcp)
    );
    // GTP echo request: signalling, no packet.
    let mut echo = gtpu(1, &[], &[]);
    echo[9] = 1;
    assert_eq!(
        dec1(&eth(0x0800, &outer(17, false, &echo))),
        Err(SkipReason::NotTcp)
    );
    // PPTP's enhanced GRE (version 1).
    let mut pptp = gre(false, Some(1), false, 0x880b, &[0xff, 0x03, 0, 0x21]);
    pptp[1] |= 1;
    assert_eq!(
        dec1(&eth(0x0800, &outer(47, false, &pptp))),
        Err(SkipReason::UnsupportedTunnel)
    );
}

#[test]
fn outer_fragments_of_tunnels_are_counted() {
    let body = gre(false, None, false, 0x0800, &inner4());
    let mut frag = outer(47, false, &body[..32]);
    frag[6] = 0x20; // more fragments
    let mut d = Decoder::new(DecodeConfig::default());
    assert_eq!(
        dec(&mut d, &eth(0x0800, &frag)),
        Err(SkipReason::TunnelFragment)
    );
    let mut vx = outer(17, false, &vxlan(1, &eth(0x0800, &inner4()))[..40]);
    vx[6] = 0x20;
    assert_eq!(
        dec(&mut d, &eth(0x0800, &vx)),
        Err(SkipReason::TunnelFragment)
    );
    assert_eq!(d.stats().skipped_for(SkipReason::TunnelFragment), 2);
    assert!(d.stats().skipped().contains(&("tunnel_fragment", 2)));
}

#[test]
fn cut_at_every_byte_never_panics_and_never_yields_a_wrong_segment() {
    let mut d = Decoder::new(DecodeConfig::default());
    for (name, frame, _) in every_kind() {
        for cut in 0..frame.len() {
            let data = &frame[..cut];
            match d.decode(LINKTYPE_ETHERNET, data, frame.len() as u32, T0) {
                Ok(seg) => {
                    // Only a cut inside the payload still gives the segment.
                    assert_eq!(
                        seg.src,
                        "192.168.0.1:40000".parse().unwrap(),
                        "{name} {cut}"
                    );
                    assert_eq!(
                        seg.payload.len() + seg.missing as usize,
                        PAYLOAD.len(),
                        "{name} cut at {cut}"
                    );
                }
                Err(r) => assert!(SkipReason::ALL.contains(&r)),
            }
        }
    }
    // Corrupt every byte too (no panic; whatever it decodes to).
    for (_, frame, _) in every_kind() {
        for i in 0..frame.len() {
            for v in [0u8, 0xff, 0x0f] {
                let mut f = frame.clone();
                f[i] = v;
                let _ = d.decode(LINKTYPE_ETHERNET, &f, f.len() as u32, T0);
            }
        }
    }
}

#[test]
fn tunnel_descriptions_are_bounded() {
    let e_in = eth(0x0800, &inner4());
    let mut d = Decoder::new(DecodeConfig::default());
    for vni in 0..tunnel::MAX_TUNNEL_DESCRIPTIONS as u32 + 3 {
        let f = eth(0x0800, &outer(17, false, &vxlan(vni, &e_in)));
        assert!(dec(&mut d, &f).is_ok());
    }
    assert_eq!(d.stats().tunnel_descriptions_dropped, 3);
}
