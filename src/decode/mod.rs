//! decode stage: link layer, tunnels (see `tunnel`), IP (v4/v6 with
//! extension headers and fragment reassembly) and the TCP header, down to a
//! `Segment`.
//!
//! Hand-rolled on purpose: this runs once per packet and only needs a few
//! fields, so it reads them in place without building a parsed packet.
//! Checksums are not verified: checksum offloading makes them wrong on
//! captures taken on the sending host.

mod frag;
pub mod link;
#[cfg(test)]
mod tests;
pub mod tunnel;
#[cfg(test)]
mod tunnel_tests;

use crate::types::Timestamp;
use frag::{FragKey, FragResult, Fragment, Reassembler};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
pub use tunnel::{describe as describe_tunnel, Layer as TunnelLayer, TunnelKey};
use tunnel::{Walk, MAX_TUNNEL_DESCRIPTIONS};

/// TCP flag bits, as in the TCP header's flags byte.
pub mod flags {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers (connection start).
    pub const SYN: u8 = 0x02;
    /// Reset the connection.
    pub const RST: u8 = 0x04;
    /// Push.
    pub const PSH: u8 = 0x08;
    /// The acknowledgment number is valid.
    pub const ACK: u8 = 0x10;
    /// The urgent pointer is valid.
    pub const URG: u8 = 0x20;
}

/// Most decode events held between two `drain_events` calls.
pub const MAX_PENDING_EVENTS: usize = 4096;
/// Most IPv6 extension headers walked before giving up on a packet.
pub const MAX_IPV6_EXT_HEADERS: usize = 16;
/// Most encapsulation layers (VLAN tags, MPLS stacks, PPPoE, tunnels)
/// unwrapped in one packet.
pub const MAX_ENCAPSULATIONS: usize = tunnel::MAX_TUNNEL_LAYERS;

/// One TCP segment, borrowed from the packet (or from the decoder's buffer
/// when it came from reassembled IP fragments).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sender's (inner, if tunneled) IP address and TCP port.
    pub src: SocketAddr,
    /// Receiver's (inner, if tunneled) IP address and TCP port.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN/FIN).
    pub seq: u32,
    /// Acknowledgment number (meaningful when `flags::ACK` is set).
    pub ack: u32,
    /// `flags::{FIN,SYN,RST,PSH,ACK,URG}`.
    pub flags: u8,
    /// Receive window as sent (unscaled).
    pub window: u16,
    /// The captured payload.
    pub payload: &'a [u8],
    /// Payload bytes the IP length says were sent but the capture does not
    /// hold (snaplen); they follow `payload` in sequence space.
    pub missing: u32,
    /// The tunnel the segment came out of (`TunnelKey::NONE` if none);
    /// `Decoder::tunnel` describes it.
    pub tunnel: TunnelKey,
}

/// Why a packet yields no TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SkipReason {
    /// The capture's link type is not decoded.
    UnsupportedLinkType,
    /// Packet shorter than its link-layer header.
    TruncatedLink,
    /// Link-layer payload is not IPv4 or IPv6.
    NotIp,
    /// IP header (or an IPv6 extension header) cut short by the capture.
    TruncatedIp,
    /// IP header with an impossible version, header length or total length.
    BadIpHeader,
    /// IP packet that does not carry TCP (after any decoded tunnel).
    NotTcp,
    /// TCP header cut short by the capture.
    TruncatedTcp,
    /// TCP header with an impossible data offset, or longer than its IP packet.
    BadTcpHeader,
    /// A fragment was held for reassembly; its datagram is not complete yet.
    IpFragmentIncomplete,
    /// A fragment was dropped because the reassembly limits were reached.
    IpFragmentLimit,
    /// A fragment cut by the snaplen: it cannot be reassembled.
    IpFragmentTruncated,
    /// A fragment with an impossible offset or length.
    BadIpFragment,
    /// A tunnel header of a kind or version not decoded.
    UnsupportedTunnel,
    /// More encapsulation layers than `MAX_ENCAPSULATIONS`.
    TunnelTooDeep,
    /// A tunnel header cut short by the capture.
    TruncatedTunnel,
    /// A fragment of an outer IP packet carrying a tunnel (not reassembled).
    TunnelFragment,
}

impl SkipReason {
    /// Every reason, in the order of `DecodeStats::skipped`.
    pub const ALL: &'static [SkipReason] = &[
        SkipReason::UnsupportedLinkType,
        SkipReason::TruncatedLink,
        SkipReason::NotIp,
        SkipReason::TruncatedIp,
        SkipReason::BadIpHeader,
        SkipReason::NotTcp,
        SkipReason::TruncatedTcp,
        SkipReason::BadTcpHeader,
        SkipReason::IpFragmentIncomplete,
        SkipReason::IpFragmentLimit,
        SkipReason::IpFragmentTruncated,
        SkipReason::BadIpFragment,
        SkipReason::UnsupportedTunnel,
        SkipReason::TunnelTooDeep,
        SkipReason::TruncatedTunnel,
        SkipReason::TunnelFragment,
    ];

    /// Stable snake_case name, as in the `stats` record.
    pub fn name(&self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
            SkipReason::TruncatedLink => "truncated_link",
            SkipReason::NotIp => "not_ip",
            SkipReason::TruncatedIp => "truncated_ip",
            SkipReason::BadIpHeader => "bad_ip_header",
            SkipReason::NotTcp => "not_tcp",
            SkipReason::TruncatedTcp => "truncated_tcp",
            SkipReason::BadTcpHeader => "bad_tcp_header",
            SkipReason::IpFragmentIncomplete => "ip_fragment_incomplete",
            SkipReason::IpFragmentLimit => "ip_fragment_limit",
            SkipReason::IpFragmentTruncated => "ip_fragment_truncated",
            SkipReason::BadIpFragment => "bad_ip_fragment",
            SkipReason::UnsupportedTunnel => "unsupported_tunnel",
            SkipReason::TunnelTooDeep => "tunnel_too_deep",
            SkipReason::TruncatedTunnel => "truncated_tunnel",
            SkipReason::TunnelFragment => "tunnel_fragment",
        }
    }

    /// One-line explanation of the reason for people.
    pub fn meaning(&self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "packet of a link type the decoder does not handle",
            SkipReason::TruncatedLink => "packet shorter than its link-layer header",
            SkipReason::NotIp => "link-layer payload is not IPv4 or IPv6",
            SkipReason::TruncatedIp => {
                "IP header (or an IPv6 extension header) cut short by the capture"
            }
            SkipReason::BadIpHeader => {
                "IP header with an impossible version, header length or total length"
            }
            SkipReason::NotTcp => "IP packet that does not carry TCP",
            SkipReason::TruncatedTcp => "TCP header cut short by the capture",
            SkipReason::BadTcpHeader => {
                "TCP header with an impossible data offset, or longer than its IP packet"
            }
            SkipReason::IpFragmentIncomplete => {
                "IP fragment held until the rest of its datagram arrives"
            }
            SkipReason::IpFragmentLimit => {
                "IP fragment dropped: reassembly memory or datagram limit reached"
            }
            SkipReason::IpFragmentTruncated => {
                "IP fragment cut short by the capture; its datagram cannot be rebuilt"
            }
            SkipReason::BadIpFragment => "IP fragment with an impossible offset or length",
            SkipReason::UnsupportedTunnel => {
                "tunnel header of a kind or version not decoded (PPTP GRE, GRE source routing, ERSPAN IP frames)"
            }
            SkipReason::TunnelTooDeep => {
                "more encapsulation layers (VLAN tags, MPLS stacks, PPPoE, tunnels) than the nesting limit"
            }
            SkipReason::TruncatedTunnel => {
                "tunnel header (or the Ethernet frame inside it) cut short by the capture"
            }
            SkipReason::TunnelFragment => {
                "fragment of an outer IP packet that carries a tunnel; tunnel fragments are not reassembled"
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Every anomaly-like name this module reports: skip reasons (counted in
/// `DecodeStats`) and the events from `Decoder::drain_events`.
pub const ANOMALIES: &[(&str, &str)] = &[
    (
        "unsupported_link_type",
        "packet of a link type the decoder does not handle",
    ),
    (
        "truncated_link",
        "packet shorter than its link-layer header",
    ),
    ("not_ip", "link-layer payload is not IPv4 or IPv6"),
    (
        "truncated_ip",
        "IP header (or an IPv6 extension header) cut short by the capture",
    ),
    (
        "bad_ip_header",
        "IP header with an impossible version, header length or total length",
    ),
    ("not_tcp", "IP packet that does not carry TCP"),
    ("truncated_tcp", "TCP header cut short by the capture"),
    (
        "bad_tcp_header",
        "TCP header with an impossible data offset, or longer than its IP packet",
    ),
    (
        "ip_fragment_incomplete",
        "IP fragment held until the rest of its datagram arrives",
    ),
    (
        "ip_fragment_limit",
        "IP fragment dropped: reassembly memory or datagram limit reached",
    ),
    (
        "ip_fragment_truncated",
        "IP fragment cut short by the capture; its datagram cannot be rebuilt",
    ),
    (
        "bad_ip_fragment",
        "IP fragment with an impossible offset or length",
    ),
    ("unsupported_tunnel", "tunnel header of a kind or version not decoded (PPTP GRE, GRE source routing, ERSPAN IP frames)"),
    ("tunnel_too_deep", "more encapsulation layers (VLAN tags, MPLS stacks, PPPoE, tunnels) than the nesting limit"),
    ("truncated_tunnel", "tunnel header (or the Ethernet frame inside it) cut short by the capture"),
    ("tunnel_fragment", "fragment of an outer IP packet that carries a tunnel; tunnel fragments are not reassembled"),
    (
        "ip_fragment_overlap_conflict",
        "overlapping IP fragments carry different bytes; the first were kept",
    ),
    (
        "ip_fragment_expired",
        "an incomplete fragmented datagram timed out (packet time) and was dropped",
    ),
    (
        "ip_fragment_evicted",
        "an incomplete fragmented datagram was dropped to stay within the reassembly limits",
    ),
    (
        "ip_fragment_incomplete_at_end",
        "a fragmented datagram was still incomplete at the end of input",
    ),
];

/// Limits of the decoder's only state, IP fragment reassembly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeConfig {
    /// Bytes of fragments held at once, all datagrams together (default 4 MiB).
    pub max_fragment_bytes: usize,
    /// Incomplete datagrams held at once (default 1024).
    pub max_fragment_datagrams: usize,
    /// Age, in packet time, after which an incomplete datagram is dropped (default 30 s).
    pub fragment_timeout_secs: u64,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            max_fragment_bytes: 4 << 20,
            max_fragment_datagrams: 1024,
            fragment_timeout_secs: 30,
        }
    }
}

/// Counters of the decode stage (the `decode_*` fields of the `stats` record).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Packets given to the decoder.
    pub packets: u64,
    /// TCP segments returned.
    pub segments: u64,
    /// Indexed like `SkipReason::ALL`; see `skipped()`.
    pub skipped: [u64; 16],
    /// Segments with `missing > 0` because the capture was cut by the snaplen.
    pub snaplen_cut: u64,
    /// Segments with `missing > 0` although the packet was captured whole:
    /// the IP length field claims more than was ever on the wire.
    pub ip_length_exceeds_packet: u64,
    /// IPv4 total length 0 (segmentation offload): the captured length was used.
    pub ip_zero_length: u64,
    /// IP fragments seen.
    pub fragments: u64,
    /// Fragmented datagrams reassembled whole.
    pub datagrams_reassembled: u64,
    /// Fragmented datagrams dropped incomplete after `fragment_timeout_secs`.
    pub datagrams_expired: u64,
    /// Fragmented datagrams dropped to stay within the fragment limits.
    pub datagrams_evicted: u64,
    /// Fragmented datagrams still incomplete at end of input.
    pub datagrams_incomplete_at_end: u64,
    /// Fragments overlapping held bytes with different content.
    pub fragment_overlap_conflicts: u64,
    /// Fragments repeating bytes already held.
    pub fragment_duplicates: u64,
    /// Largest fragment reassembly memory (bytes) held at once.
    pub fragment_bytes_peak: usize,
    /// Segments that came out of a tunnel (`Segment::tunnel` set).
    pub tunneled_segments: u64,
    /// Distinct tunnels seen beyond `MAX_TUNNEL_DESCRIPTIONS`: their flows
    /// are kept apart, but `Decoder::tunnel` cannot describe them.
    pub tunnel_descriptions_dropped: u64,
}

impl DecodeStats {
    /// Non-zero skip counts by name, in `SkipReason::ALL` order.
    pub fn skipped(&self) -> Vec<(&'static str, u64)> {
        SkipReason::ALL
            .iter()
            .filter_map(|r| {
                let n = self.skipped.get(r.index()).copied().unwrap_or(0);
                (n > 0).then_some((r.name(), n))
            })
            .collect()
    }

    /// The count of packets skipped for reason `r`.
    pub fn skipped_for(&self, r: SkipReason) -> u64 {
        self.skipped.get(r.index()).copied().unwrap_or(0)
    }
}

/// Something the decoder noticed that is not tied to a returned segment
/// (fragment conflicts and drops); the caller attaches the packet number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeEvent {
    /// Stable snake_case anomaly name (of the decode stage's `ANOMALIES`).
    pub name: &'static str,
    /// Human-readable detail (offsets, lengths).
    pub detail: String,
}

/// The decode stage: turns captured packets into TCP [`Segment`]s, unwrapping link layers and tunnels and reassembling IP fragments.
pub struct Decoder {
    cfg: DecodeConfig,
    stats: DecodeStats,
    frags: Reassembler,
    events: Vec<DecodeEvent>,
    /// The current packet's layers (reused; empty for most packets).
    layers: Vec<TunnelLayer>,
    /// Each tunnel's layers, as its first packet showed them.
    tunnels: HashMap<TunnelKey, Box<[TunnelLayer]>>,
}

/// Where an IP packet's transport header starts, and how long the IP header
/// says the transport part is.
struct Transport<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Captured transport bytes (padding trimmed).
    captured: &'a [u8],
    /// Transport length declared by the IP header.
    declared: usize,
}

impl Decoder {
    /// A decoder with these fragment limits.
    pub fn new(cfg: DecodeConfig) -> Self {
        Decoder {
            cfg,
            stats: DecodeStats::default(),
            frags: Reassembler::new(),
            events: Vec::new(),
            layers: Vec::new(),
            tunnels: HashMap::new(),
        }
    }

    /// The layers of a tunnel a segment came out of, outermost first, as
    /// its first packet showed them; render with `describe_tunnel`.
    pub fn tunnel(&self, key: TunnelKey) -> Option<&[TunnelLayer]> {
        self.tunnels.get(&key).map(|b| &b[..])
    }

    /// The counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }

    /// Incomplete fragmented datagrams currently held, and their bytes.
    pub fn fragments_held(&self) -> (usize, usize) {
        (self.frags.pending(), self.frags.held_bytes())
    }

    /// Moves pending events into `out`.
    pub fn drain_events(&mut self, out: &mut Vec<DecodeEvent>) {
        out.append(&mut self.events);
    }

    /// End of input: counts (and reports as events) the datagrams never completed.
    pub fn finish(&mut self) {
        self.frags.finish(&mut self.stats, &mut self.events);
    }

    /// Decodes one captured packet down to its TCP segment.
    pub fn decode<'a>(
        &'a mut self,
        link_type: u32,
        data: &'a [u8],
        orig_len: u32,
        ts: Timestamp,
    ) -> Result<Segment<'a>, SkipReason> {
        let Decoder {
            cfg,
            stats,
            frags,
            events,
            layers,
            tunnels,
        } = self;
        stats.packets += 1;
        let mut walk = Walk::new(layers);
        let r = decode_packet(
            frags, cfg, stats, events, &mut walk, link_type, data, orig_len, ts,
        );
        match &r {
            Ok(seg) => {
                stats.segments += 1;
                if !seg.tunnel.is_none() {
                    stats.tunneled_segments += 1;
                    remember_tunnel(tunnels, seg.tunnel, walk.layers, stats);
                }
                if seg.missing > 0 {
                    if (orig_len as usize) > data.len() {
                        stats.snaplen_cut += 1;
                    } else {
                        stats.ip_length_exceeds_packet += 1;
                    }
                }
            }
            Err(reason) => {
                if let Some(c) = stats.skipped.get_mut(reason.index()) {
                    *c += 1;
                }
            }
        }
        r
    }
}

fn remember_tunnel(
    tunnels: &mut HashMap<TunnelKey, Box<[TunnelLayer]>>,
    key: TunnelKey,
    layers: &[TunnelLayer],
    stats: &mut DecodeStats,
) {
    if tunnels.contains_key(&key) {
        return;
    }
    if tunnels.len() >= MAX_TUNNEL_DESCRIPTIONS {
        stats.tunnel_descriptions_dropped += 1;
        return;
    }
    tunnels.insert(key, layers.into());
}

/// IP protocols that carry a tunnel.
fn is_tunnel_proto(proto: u8) -> bool {
    matches!(proto, 4 | 41 | 47)
}

#[allow(clippy::too_many_arguments)]
fn decode_packet<'a>(
    frags: &'a mut Reassembler,
    cfg: &DecodeConfig,
    stats: &mut DecodeStats,
    events: &mut Vec<DecodeEvent>,
    walk: &mut Walk<'_>,
    link_type: u32,
    data: &'a [u8],
    orig_len: u32,
    ts: Timestamp,
) -> Result<Segment<'a>, SkipReason> {
    let (mut net, off) = link::network_offset_in(link_type, data, walk)?;
    let mut ip = data.get(off..).ok_or(SkipReason::TruncatedLink)?;
    // What the wire carried after the link header, for offloaded zero lengths.
    let mut wire_len = (orig_len as usize).saturating_sub(off).max(ip.len());
    let t = loop {
        let parsed = match net {
            link::Net::V4 => ipv4(ip, wire_len, stats)?,
            link::Net::V6 => ipv6(ip, wire_len, stats)?,
        };
        let t = match parsed {
            Ip::Whole(t) => t,
            Ip::Fragment(f) => match frags.add(f, ts, cfg, stats, events) {
                FragResult::Held => return Err(SkipReason::IpFragmentIncomplete),
                FragResult::Dropped(r) => return Err(r),
                FragResult::Complete { next } => {
                    let (src, dst, v6) = match frag_src_dst(ip, net) {
                        Some(a) => a,
                        None => return Err(SkipReason::BadIpHeader),
                    };
                    let buf: &'a [u8] = &frags.out;
                    let (proto, at) = if v6 {
                        match ipv6_ext(next, buf, buf.len())? {
                            Ext::Done { next, at } => (next, at),
                            Ext::Fragment { .. } => return Err(SkipReason::BadIpFragment),
                        }
                    } else {
                        (next, 0)
                    };
                    let rest = buf.get(at..).unwrap_or(&[]);
                    // Only TCP fragments are held, so this is the segment.
                    break Transport {
                        src,
                        dst,
                        proto,
                        captured: rest,
                        declared: rest.len(),
                    };
                }
            },
        };
        // The common case first: no tunnel.
        let (inner, at) = match t.proto {
            6 => break t,
            4 => {
                walk.push(TunnelLayer::IpInIp {
                    src: t.src,
                    dst: t.dst,
                })?;
                (t.captured, (link::Net::V4, 0))
            }
            41 => {
                walk.push(TunnelLayer::IpInIp {
                    src: t.src,
                    dst: t.dst,
                })?;
                (t.captured, (link::Net::V6, 0))
            }
            47 => (t.captured, tunnel::gre(t.captured, t.src, t.dst, walk)?),
            17 => match tunnel::udp(t.captured, t.src, t.dst, walk)? {
                Some((udp_len, (n, at))) => {
                    let h = t.captured.get(udp_len..).unwrap_or(&[]);
                    (h, (n, at))
                }
                None => return Err(SkipReason::NotTcp),
            },
            _ => return Err(SkipReason::NotTcp),
        };
        let (n, at) = at;
        net = n;
        ip = inner.get(at..).ok_or(SkipReason::TruncatedTunnel)?;
        let consumed = t.captured.len() - inner.len() + at;
        wire_len = t.declared.saturating_sub(consumed).max(ip.len());
    };
    if t.proto != 6 {
        return Err(SkipReason::NotTcp);
    }
    tcp(t, walk.key())
}

enum Ip<'a> {
    Whole(Transport<'a>),
    Fragment(Fragment<'a>),
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2).map(|s| u16::from_be_bytes([s[0], s[1]]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn v4addr(b: &[u8], at: usize) -> Option<IpAddr> {
    be32(b, at).map(|v| IpAddr::V4(Ipv4Addr::from(v)))
}

fn v6addr(b: &[u8], at: usize) -> Option<IpAddr> {
    let s = b.get(at..at + 16)?;
    let a: [u8; 16] = s.try_into().ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(a)))
}

/// Source and destination of the IP header at the start of `ip`.
fn frag_src_dst(ip: &[u8], net: link::Net) -> Option<(IpAddr, IpAddr, bool)> {
    match net {
        link::Net::V4 => Some((v4addr(ip, 12)?, v4addr(ip, 16)?, false)),
        link::Net::V6 => Some((v6addr(ip, 8)?, v6addr(ip, 24)?, true)),
    }
}

fn ipv4<'a>(ip: &'a [u8], wire_len: usize, stats: &mut DecodeStats) -> Result<Ip<'a>, SkipReason> {
    let first = *ip.first().ok_or(SkipReason::TruncatedIp)?;
    if first >> 4 != 4 {
        return Err(SkipReason::BadIpHeader);
    }
    if ip.len() < 20 {
        return Err(SkipReason::TruncatedIp);
    }
    let ihl = (first & 0x0f) as usize * 4;
    if ihl < 20 {
        return Err(SkipReason::BadIpHeader);
    }
    if ip.len() < ihl {
        return Err(SkipReason::TruncatedIp);
    }
    let mut total = be16(ip, 2).ok_or(SkipReason::TruncatedIp)? as usize;
    if total == 0 {
        // Segmentation offload leaves the length to be filled in by the NIC.
        stats.ip_zero_length += 1;
        total = wire_len;
    }
    if total < ihl {
        return Err(SkipReason::BadIpHeader);
    }
    let frag = be16(ip, 6).ok_or(SkipReason::TruncatedIp)?;
    let proto = *ip.get(9).ok_or(SkipReason::TruncatedIp)?;
    let src = v4addr(ip, 12).ok_or(SkipReason::TruncatedIp)?;
    let dst = v4addr(ip, 16).ok_or(SkipReason::TruncatedIp)?;
    let end = total.min(ip.len());
    let captured = ip.get(ihl..end).unwrap_or(&[]);
    let more = frag & 0x2000 != 0;
    let offset = (frag & 0x1fff) as u32 * 8;
    if more || offset != 0 {
        if proto != 6 {
            return Err(non_tcp_fragment(proto, offset, captured));
        }
        if end < total {
            return Err(SkipReason::IpFragmentTruncated);
        }
        let id = be16(ip, 4).ok_or(SkipReason::TruncatedIp)? as u32;
        return Ok(Ip::Fragment(Fragment {
            key: FragKey {
                src,
                dst,
                proto,
                id,
            },
            offset,
            more,
            data: captured,
            next: proto,
        }));
    }
    Ok(Ip::Whole(Transport {
        src,
        dst,
        proto,
        captured,
        declared: total - ihl,
    }))
}

/// Why a fragment that is not TCP is skipped: a tunnel's (IP-in-IP, GRE,
/// or a first UDP fragment to a tunnel port) or plain not TCP.
fn non_tcp_fragment(proto: u8, offset: u32, data: &[u8]) -> SkipReason {
    let udp_tunnel = proto == 17
        && offset == 0
        && [be16(data, 0), be16(data, 2)].iter().any(|p| {
            matches!(
                p,
                Some(tunnel::UDP_VXLAN | tunnel::UDP_GENEVE | tunnel::UDP_GTPU)
            )
        });
    if is_tunnel_proto(proto) || udp_tunnel {
        SkipReason::TunnelFragment
    } else {
        SkipReason::NotTcp
    }
}

enum Ext {
    Done { next: u8, at: usize },
    Fragment { at: usize },
}

/// Walks IPv6 extension headers from `at = 0` of `b` (the bytes after the
/// fixed header), up to the first header that is not one, or to a fragment
/// header (`at` is then its start). `declared` is the payload length.
fn ipv6_ext(mut next: u8, b: &[u8], declared: usize) -> Result<Ext, SkipReason> {
    let mut at = 0usize;
    for _ in 0..MAX_IPV6_EXT_HEADERS {
        let len = match next {
            // Hop-by-hop, routing, destination options, mobility, HIP, shim6.
            0 | 43 | 60 | 135 | 139 | 140 => {
                (*b.get(at + 1).ok_or(SkipReason::TruncatedIp)? as usize + 1) * 8
            }
            // Authentication header counts 4-byte units.
            51 => (*b.get(at + 1).ok_or(SkipReason::TruncatedIp)? as usize + 2) * 4,
            44 => return Ok(Ext::Fragment { at }),
            _ => return Ok(Ext::Done { next, at }),
        };
        let nh = *b.get(at).ok_or(SkipReason::TruncatedIp)?;
        if at + len > declared {
            return Err(SkipReason::BadIpHeader);
        }
        if at + len > b.len() {
            return Err(SkipReason::TruncatedIp);
        }
        next = nh;
        at += len;
    }
    Err(SkipReason::BadIpHeader)
}

fn ipv6<'a>(ip: &'a [u8], wire_len: usize, stats: &mut DecodeStats) -> Result<Ip<'a>, SkipReason> {
    let first = *ip.first().ok_or(SkipReason::TruncatedIp)?;
    if first >> 4 != 6 {
        return Err(SkipReason::BadIpHeader);
    }
    if ip.len() < 40 {
        return Err(SkipReason::TruncatedIp);
    }
    let mut payload_len = be16(ip, 4).ok_or(SkipReason::TruncatedIp)? as usize;
    if payload_len == 0 {
        // Jumbogram or segmentation offload: take the length from the wire.
        stats.ip_zero_length += 1;
        payload_len = wire_len.saturating_sub(40);
    }
    let next = *ip.get(6).ok_or(SkipReason::TruncatedIp)?;
    let src = v6addr(ip, 8).ok_or(SkipReason::TruncatedIp)?;
    let dst = v6addr(ip, 24).ok_or(SkipReason::TruncatedIp)?;
    let end = (40 + payload_len).min(ip.len());
    let body = ip.get(40..end).unwrap_or(&[]);
    let mut next = next;
    let mut base = 0usize;
    // At most one fragment header is honoured; an atomic one (offset 0, no
    // more fragments) is just skipped.
    for _ in 0..2 {
        let rest = body.get(base..).unwrap_or(&[]);
        match ipv6_ext(next, rest, payload_len - base)? {
            Ext::Done { next, at } => {
                let at = base + at;
                return Ok(Ip::Whole(Transport {
                    src,
                    dst,
                    proto: next,
                    captured: body.get(at..).unwrap_or(&[]),
                    declared: payload_len - at,
                }));
            }
            Ext::Fragment { at, .. } => {
                let at = base + at;
                if at + 8 > payload_len {
                    return Err(SkipReason::BadIpHeader);
                }
                let fh = body.get(at..at + 8).ok_or(SkipReason::TruncatedIp)?;
                let fnext = fh[0];
                let offword = u16::from_be_bytes([fh[2], fh[3]]);
                let offset = (offword & 0xfff8) as u32;
                let more = offword & 1 != 0;
                let id = u32::from_be_bytes([fh[4], fh[5], fh[6], fh[7]]);
                if offset == 0 && !more {
                    next = fnext;
                    base = at + 8;
                    continue;
                }
                // Only TCP (possibly behind more extension headers) is worth holding.
                if !matches!(fnext, 6 | 0 | 43 | 60 | 51 | 135 | 139 | 140) {
                    let data = body.get(at + 8..).unwrap_or(&[]);
                    return Err(non_tcp_fragment(fnext, offset, data));
                }
                if end < 40 + payload_len {
                    return Err(SkipReason::IpFragmentTruncated);
                }
                return Ok(Ip::Fragment(Fragment {
                    key: FragKey {
                        src,
                        dst,
                        proto: 0,
                        id,
                    },
                    offset,
                    more,
                    data: body.get(at + 8..).unwrap_or(&[]),
                    next: fnext,
                }));
            }
        }
    }
    Err(SkipReason::BadIpHeader)
}

fn tcp(t: Transport<'_>, tunnel: TunnelKey) -> Result<Segment<'_>, SkipReason> {
    let b = t.captured;
    if t.declared < 20 {
        return Err(SkipReason::BadTcpHeader);
    }
    if b.len() < 20 {
        return Err(SkipReason::TruncatedTcp);
    }
    let (Some(sport), Some(dport), Some(seq), Some(ack), Some(doff), Some(fl), Some(window)) = (
        be16(b, 0),
        be16(b, 2),
        be32(b, 4),
        be32(b, 8),
        b.get(12),
        b.get(13),
        be16(b, 14),
    ) else {
        return Err(SkipReason::TruncatedTcp);
    };
    let hlen = (*doff >> 4) as usize * 4;
    if hlen < 20 || hlen > t.declared {
        return Err(SkipReason::BadTcpHeader);
    }
    let payload = b.get(hlen..).ok_or(SkipReason::TruncatedTcp)?;
    let missing = t.declared.saturating_sub(b.len());
    Ok(Segment {
        src: SocketAddr::new(t.src, sport),
        dst: SocketAddr::new(t.dst, dport),
        seq,
        ack,
        flags: fl & 0x3f,
        window,
        payload,
        missing: u32::try_from(missing).unwrap_or(u32::MAX),
        tunnel,
    })
}
