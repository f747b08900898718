//! Tunnels: the encapsulation layers unwrapped on the way to the TCP
//! segment, and the flow key part that keeps identical inner addresses in
//! different tunnels apart.
//!
//! The UDP tunnels are recognised by their well-known destination (or
//! source) port and a header check (VXLAN's I flag, Geneve version 0, GTP
//! version 1 with PT set), so ordinary UDP on those ports reads as UDP.

use super::{be16, be32, link, SkipReason};
use std::fmt;
use std::net::IpAddr;

/// Most encapsulation layers unwrapped in one packet (each VLAN tag, MPLS
/// label stack, PPPoE header, IP-in-IP header, GRE/ERSPAN, VXLAN, Geneve or
/// GTP-U header counts one); one more is `SkipReason::TunnelTooDeep`.
pub const MAX_TUNNEL_LAYERS: usize = 8;
/// Most labels read in one MPLS label stack.
pub const MAX_MPLS_LABELS: usize = 8;
/// Most GTP-U extension headers walked.
pub const MAX_GTP_EXTENSIONS: usize = 8;
/// Distinct tunnel descriptions a decoder remembers for
/// `Decoder::tunnel`; later ones are counted, not kept.
pub const MAX_TUNNEL_DESCRIPTIONS: usize = 4096;

/// UDP port of VXLAN (RFC 7348).
pub const UDP_VXLAN: u16 = 4789;
/// UDP port of Geneve (RFC 8926).
pub const UDP_GENEVE: u16 = 6081;
/// UDP port of GTP-U (3GPP TS 29.281).
pub const UDP_GTPU: u16 = 2152;

/// A fixed-size summary of a packet's encapsulation, part of the TCP flow
/// key: a 64-bit hash of the layers that name a tunnel the same way in both
/// directions (outer IP endpoints as an unordered pair, VXLAN/Geneve VNI,
/// GRE key, ERSPAN session). Zero: not tunneled, or only VLAN tags, MPLS
/// labels or PPPoE, which stay out of the key as before (they, like GTP-U
/// TEIDs, differ between the two directions or hop by hop).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TunnelKey(pub u64);

impl TunnelKey {
    /// Not tunneled (or only VLAN, MPLS, PPPoE layers).
    pub const NONE: TunnelKey = TunnelKey(0);

    /// True for [`TunnelKey::NONE`].
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
}

/// One unwrapped encapsulation header, as the first packet of a tunnel
/// showed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layer {
    /// 802.1Q / 802.1ad tag (`tpid` says which).
    Vlan {
        /// Tag protocol identifier: 0x8100 (802.1Q), 0x88a8 (802.1ad) or the old 0x9100.
        tpid: u16,
        /// VLAN id (12 bits).
        id: u16,
    },
    /// An MPLS label stack: its depth and bottom (service) label.
    Mpls {
        /// Number of labels in the stack (at most `MAX_MPLS_LABELS` read).
        labels: u8,
        /// The bottom-of-stack label (20 bits).
        bottom: u32,
    },
    /// A PPPoE session header (RFC 2516).
    Pppoe {
        /// PPPoE session id.
        session: u16,
    },
    /// IPv4 or IPv6 carried directly in IPv4 or IPv6 (protocols 4 and 41).
    IpInIp {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
    },
    /// GRE (RFC 2784/2890) carrying IP.
    Gre {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// GRE key, when the header has one.
        key: Option<u32>,
    },
    /// ERSPAN type II (`version` 1) or III (`version` 2) over GRE.
    Erspan {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// 1 for type II, 2 for type III.
        version: u8,
        /// ERSPAN session id (10 bits).
        session: u16,
    },
    /// VXLAN over UDP (port 4789).
    Vxlan {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// VXLAN network identifier (24 bits).
        vni: u32,
    },
    /// Geneve over UDP (port 6081).
    Geneve {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// Virtual network identifier (24 bits).
        vni: u32,
    },
    /// GTP-U over UDP (port 2152).
    Gtpu {
        /// Outer source address.
        src: IpAddr,
        /// Outer destination address.
        dst: IpAddr,
        /// Tunnel endpoint identifier of this direction.
        teid: u32,
    },
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layer::Vlan { tpid, id } => {
                let k = if tpid == 0x8100 { "vlan" } else { "qinq" };
                write!(f, "{k} id={id}")
            }
            Layer::Mpls { labels, bottom } => write!(f, "mpls labels={labels} bottom={bottom}"),
            Layer::Pppoe { session } => write!(f, "pppoe session=0x{session:04x}"),
            Layer::IpInIp { src, dst } => write!(f, "ipip {src}->{dst}"),
            Layer::Gre { src, dst, key } => match key {
                Some(k) => write!(f, "gre key=0x{k:x} {src}->{dst}"),
                None => write!(f, "gre {src}->{dst}"),
            },
            Layer::Erspan {
                src,
                dst,
                version,
                session,
            } => {
                let t = match version {
                    0 => "i",
                    1 => "ii",
                    _ => "iii",
                };
                write!(f, "erspan-{t} session={session} {src}->{dst}")
            }
            Layer::Vxlan { src, dst, vni } => write!(f, "vxlan vni={vni} {src}->{dst}"),
            Layer::Geneve { src, dst, vni } => write!(f, "geneve vni={vni} {src}->{dst}"),
            Layer::Gtpu { src, dst, teid } => write!(f, "gtpu teid=0x{teid:x} {src}->{dst}"),
        }
    }
}

/// A human description of a tunnel stack, outermost first:
/// `"vxlan vni=42 10.0.0.1->10.0.0.2 / gtpu teid=0x1234 10.1.0.1->10.1.0.2"`.
pub fn describe(layers: &[Layer]) -> String {
    let mut s = String::new();
    for (i, l) in layers.iter().enumerate() {
        if i > 0 {
            s.push_str(" / ");
        }
        s.push_str(&l.to_string());
    }
    s
}

/// The layers met so far in one packet, and the running key.
pub(super) struct Walk<'s> {
    depth: usize,
    hash: u64,
    keyed: bool,
    pub(super) layers: &'s mut Vec<Layer>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl<'s> Walk<'s> {
    pub(super) fn new(layers: &'s mut Vec<Layer>) -> Self {
        layers.clear();
        Walk {
            depth: 0,
            hash: FNV_OFFSET,
            keyed: false,
            layers,
        }
    }

    /// Counts one more layer against the depth limit.
    pub(super) fn enter(&mut self) -> Result<(), SkipReason> {
        self.depth += 1;
        if self.depth > MAX_TUNNEL_LAYERS {
            return Err(SkipReason::TunnelTooDeep);
        }
        Ok(())
    }

    pub(super) fn push(&mut self, l: Layer) -> Result<(), SkipReason> {
        self.enter()?;
        match l {
            Layer::Vlan { .. } | Layer::Mpls { .. } | Layer::Pppoe { .. } => {}
            Layer::IpInIp { src, dst } => self.mix_ends(1, src, dst, 0),
            Layer::Gre { src, dst, key } => {
                self.mix_ends(2, src, dst, key.map_or(0, |k| u64::from(k) | 1 << 32))
            }
            Layer::Erspan {
                src, dst, session, ..
            } => self.mix_ends(3, src, dst, u64::from(session)),
            Layer::Vxlan { src, dst, vni } => self.mix_ends(4, src, dst, u64::from(vni)),
            Layer::Geneve { src, dst, vni } => self.mix_ends(5, src, dst, u64::from(vni)),
            Layer::Gtpu { src, dst, .. } => self.mix_ends(6, src, dst, 0),
        }
        self.layers.push(l);
        Ok(())
    }

    fn mix(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.hash ^= u64::from(b);
            self.hash = self.hash.wrapping_mul(FNV_PRIME);
        }
    }

    fn mix_ip(&mut self, a: IpAddr) {
        match a {
            IpAddr::V4(a) => self.mix(&a.octets()),
            IpAddr::V6(a) => self.mix(&a.octets()),
        }
    }

    /// Mixes a keyed layer: its kind, its endpoints as an unordered pair
    /// (both directions share the key) and its id.
    fn mix_ends(&mut self, kind: u8, a: IpAddr, b: IpAddr, id: u64) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        self.mix(&[kind]);
        self.mix_ip(lo);
        self.mix_ip(hi);
        self.mix(&id.to_be_bytes());
        self.keyed = true;
    }

    pub(super) fn key(&self) -> TunnelKey {
        if !self.keyed {
            return TunnelKey::NONE;
        }
        TunnelKey(self.hash.max(1))
    }
}

/// What follows a tunnel header: an IP packet of a known version at an
/// offset of the payload.
pub(super) type Inner = (link::Net, usize);

/// Checks the UDP header at the start of `udp` for a tunnel on a
/// well-known port. `Ok(None)`: ordinary UDP.
pub(super) fn udp(
    udp: &[u8],
    src: IpAddr,
    dst: IpAddr,
    walk: &mut Walk<'_>,
) -> Result<Option<(usize, Inner)>, SkipReason> {
    let (Some(sport), Some(dport)) = (be16(udp, 0), be16(udp, 2)) else {
        return Err(SkipReason::NotTcp);
    };
    let port = if matches!(dport, UDP_VXLAN | UDP_GENEVE | UDP_GTPU) {
        dport
    } else {
        sport
    };
    let h = udp.get(8..).unwrap_or(&[]);
    let inner = match port {
        UDP_VXLAN => {
            // The I flag says the VNI is valid; without it, not VXLAN.
            match h.first() {
                Some(f) if f & 0x08 != 0 => {}
                Some(_) => return Ok(None),
                None => return Err(SkipReason::TruncatedTunnel),
            }
            let vni = be32(h, 4).ok_or(SkipReason::TruncatedTunnel)? >> 8;
            walk.push(Layer::Vxlan { src, dst, vni })?;
            link::ethernet(h, 8, walk)?
        }
        UDP_GENEVE => {
            let first = *h.first().ok_or(SkipReason::TruncatedTunnel)?;
            if first >> 6 != 0 {
                return Ok(None);
            }
            let hlen = 8 + (first & 0x3f) as usize * 4;
            let proto = be16(h, 2).ok_or(SkipReason::TruncatedTunnel)?;
            let vni = be32(h, 4).ok_or(SkipReason::TruncatedTunnel)? >> 8;
            if h.len() < hlen {
                return Err(SkipReason::TruncatedTunnel);
            }
            walk.push(Layer::Geneve { src, dst, vni })?;
            link::ethertype(h, hlen, proto, walk)?
        }
        UDP_GTPU => {
            let first = *h.first().ok_or(SkipReason::TruncatedTunnel)?;
            // Version 1 with PT (GTP, not GTP'); anything else is not GTP-U.
            if first & 0xf0 != 0x30 {
                return Ok(None);
            }
            let ty = *h.get(1).ok_or(SkipReason::TruncatedTunnel)?;
            let teid = be32(h, 4).ok_or(SkipReason::TruncatedTunnel)?;
            walk.push(Layer::Gtpu { src, dst, teid })?;
            if ty != 0xff {
                // Echo, error indication, end marker: signalling, no packet.
                return Err(SkipReason::NotTcp);
            }
            let at = gtpu_payload(h, first)?;
            link::by_version_tunnel(h, at)?
        }
        _ => return Ok(None),
    };
    Ok(Some((8, inner)))
}

/// Where a G-PDU's T-PDU starts, past the optional fields and the
/// extension header chain.
fn gtpu_payload(h: &[u8], first: u8) -> Result<usize, SkipReason> {
    if first & 0x07 == 0 {
        return Ok(8);
    }
    let mut next = *h.get(11).ok_or(SkipReason::TruncatedTunnel)?;
    let mut at = 12usize;
    if first & 0x04 == 0 {
        return Ok(at);
    }
    for _ in 0..MAX_GTP_EXTENSIONS {
        if next == 0 {
            return Ok(at);
        }
        // Length in 4-byte units, counting the length and next-type bytes.
        let units = *h.get(at).ok_or(SkipReason::TruncatedTunnel)? as usize;
        if units == 0 {
            return Err(SkipReason::UnsupportedTunnel);
        }
        let end = at + units * 4;
        next = *h.get(end - 1).ok_or(SkipReason::TruncatedTunnel)?;
        at = end;
    }
    Err(SkipReason::TunnelTooDeep)
}

const GRE_C: u16 = 0x8000;
const GRE_R: u16 = 0x4000;
const GRE_K: u16 = 0x2000;
const GRE_S: u16 = 0x1000;
const GRE_ERSPAN2: u16 = 0x88be;
const GRE_ERSPAN3: u16 = 0x22eb;

/// GRE (RFC 2784 with RFC 2890's key and sequence number), and ERSPAN
/// types I, II and III inside it.
pub(super) fn gre(
    g: &[u8],
    src: IpAddr,
    dst: IpAddr,
    walk: &mut Walk<'_>,
) -> Result<Inner, SkipReason> {
    let fl = be16(g, 0).ok_or(SkipReason::TruncatedTunnel)?;
    let proto = be16(g, 2).ok_or(SkipReason::TruncatedTunnel)?;
    // Version 1 is PPTP's enhanced GRE; source routing (RFC 1701) is obsolete.
    if fl & 0x0007 != 0 || fl & GRE_R != 0 {
        return Err(SkipReason::UnsupportedTunnel);
    }
    let mut at = 4usize;
    if fl & GRE_C != 0 {
        at += 4;
    }
    let key = if fl & GRE_K != 0 {
        let k = be32(g, at).ok_or(SkipReason::TruncatedTunnel)?;
        at += 4;
        Some(k)
    } else {
        None
    };
    if fl & GRE_S != 0 {
        at += 4;
    }
    if g.len() < at {
        return Err(SkipReason::TruncatedTunnel);
    }
    match proto {
        // Type I has no ERSPAN header (and no sequence number).
        GRE_ERSPAN2 if fl & GRE_S == 0 => {
            walk.push(Layer::Erspan {
                src,
                dst,
                version: 0,
                session: 0,
            })?;
            link::ethernet(g, at, walk)
        }
        GRE_ERSPAN2 => {
            let e = g.get(at..at + 8).ok_or(SkipReason::TruncatedTunnel)?;
            if e[0] >> 4 != 1 {
                return Err(SkipReason::UnsupportedTunnel);
            }
            let session = u16::from_be_bytes([e[2], e[3]]) & 0x03ff;
            walk.push(Layer::Erspan {
                src,
                dst,
                version: 1,
                session,
            })?;
            link::ethernet(g, at + 8, walk)
        }
        GRE_ERSPAN3 => {
            let e = g.get(at..at + 12).ok_or(SkipReason::TruncatedTunnel)?;
            if e[0] >> 4 != 2 {
                return Err(SkipReason::UnsupportedTunnel);
            }
            let session = u16::from_be_bytes([e[2], e[3]]) & 0x03ff;
            // Frame type 0 is Ethernet; 2 (IP frames) is not decoded.
            if (e[10] >> 2) & 0x1f != 0 {
                return Err(SkipReason::UnsupportedTunnel);
            }
            // The O flag adds an 8-byte platform-specific subheader.
            let sub = if e[11] & 0x01 != 0 { 8 } else { 0 };
            walk.push(Layer::Erspan {
                src,
                dst,
                version: 2,
                session,
            })?;
            link::ethernet(g, at + 12 + sub, walk)
        }
        _ => {
            walk.push(Layer::Gre { src, dst, key })?;
            link::ethertype(g, at, proto, walk)
        }
    }
}
