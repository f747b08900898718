//! Link layers: where the IP header starts, and which IP version it is.

use super::tunnel::{Layer, Walk, MAX_MPLS_LABELS};
use super::{be16, be32, SkipReason};

/// BSD loopback: a 4-byte address family in the capturing host's byte order, then IP.
pub const LINKTYPE_NULL: u32 = 0;
/// Ethernet II (with optional VLAN, MPLS, PPPoE layers).
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IP under the numbers some BSDs used before 101 was assigned.
pub const LINKTYPE_RAW_BSD12: u32 = 12;
/// Raw IP under another number some BSDs used before 101 was assigned.
pub const LINKTYPE_RAW_BSD14: u32 = 14;
/// Raw IP (IPv4 or IPv6, from the version nibble).
pub const LINKTYPE_RAW: u32 = 101;
/// OpenBSD loopback: a 4-byte address family in network byte order, then IP.
pub const LINKTYPE_LOOP: u32 = 108;
/// Linux cooked capture v1 (SLL, `tcpdump -i any`).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// Raw IPv4.
pub const LINKTYPE_IPV4: u32 = 228;
/// Raw IPv6.
pub const LINKTYPE_IPV6: u32 = 229;
/// Linux cooked capture v2 (SLL2).
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

/// IP version of the header that follows the link layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_PPPOE_SESSION: u16 = 0x8864;
const ETH_MPLS: u16 = 0x8847;
const ETH_MPLS_MULTI: u16 = 0x8848;
/// Transparent Ethernet bridging: an Ethernet frame follows.
const ETH_TEB: u16 = 0x6558;

/// The IP version and the offset of the IP header in `data`.
pub fn network_offset(link_type: u32, data: &[u8]) -> Result<(Net, usize), SkipReason> {
    let mut layers = Vec::new();
    network_offset_in(link_type, data, &mut Walk::new(&mut layers))
}

/// As `network_offset`, recording VLAN/MPLS/PPPoE layers in `walk`.
pub(super) fn network_offset_in(
    link_type: u32,
    data: &[u8],
    walk: &mut Walk<'_>,
) -> Result<(Net, usize), SkipReason> {
    match link_type {
        LINKTYPE_ETHERNET => {
            let et = be16(data, 12).ok_or(SkipReason::TruncatedLink)?;
            ethertype(data, 14, et, walk)
        }
        LINKTYPE_LINUX_SLL => {
            let et = be16(data, 14).filter(|_| data.len() >= 16);
            ethertype(data, 16, et.ok_or(SkipReason::TruncatedLink)?, walk)
        }
        LINKTYPE_LINUX_SLL2 => {
            let et = be16(data, 0).filter(|_| data.len() >= 20);
            ethertype(data, 20, et.ok_or(SkipReason::TruncatedLink)?, walk)
        }
        LINKTYPE_RAW | LINKTYPE_RAW_BSD12 | LINKTYPE_RAW_BSD14 => by_version(data, 0),
        LINKTYPE_IPV4 => Ok((Net::V4, 0)),
        LINKTYPE_IPV6 => Ok((Net::V6, 0)),
        LINKTYPE_NULL => {
            let b: [u8; 4] = data
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(SkipReason::TruncatedLink)?;
            // Host byte order of the capturing machine, which we do not know.
            address_family(u32::from_le_bytes(b))
                .or_else(|| address_family(u32::from_be_bytes(b)))
                .map(|n| (n, 4))
                .ok_or(SkipReason::NotIp)
        }
        LINKTYPE_LOOP => {
            let b: [u8; 4] = data
                .get(..4)
                .and_then(|s| s.try_into().ok())
                .ok_or(SkipReason::TruncatedLink)?;
            address_family(u32::from_be_bytes(b))
                .map(|n| (n, 4))
                .ok_or(SkipReason::NotIp)
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    }
}

/// BSD address families: AF_INET is 2 everywhere; AF_INET6 is 24 (NetBSD,
/// OpenBSD), 28 (FreeBSD) or 30 (macOS).
fn address_family(af: u32) -> Option<Net> {
    match af {
        2 => Some(Net::V4),
        24 | 28 | 30 => Some(Net::V6),
        _ => None,
    }
}

fn by_version(data: &[u8], at: usize) -> Result<(Net, usize), SkipReason> {
    match data.get(at).map(|b| b >> 4) {
        Some(4) => Ok((Net::V4, at)),
        Some(6) => Ok((Net::V6, at)),
        Some(_) => Err(SkipReason::NotIp),
        None => Err(SkipReason::TruncatedIp),
    }
}

/// The Ethernet frame at `at` of a tunnel's payload (transparent Ethernet
/// bridging, VXLAN, ERSPAN, a pseudowire).
pub(super) fn ethernet(
    data: &[u8],
    at: usize,
    walk: &mut Walk<'_>,
) -> Result<(Net, usize), SkipReason> {
    let et = be16(data, at + 12).ok_or(SkipReason::TruncatedTunnel)?;
    ethertype(data, at + 14, et, walk)
}

/// The IP packet at `at` of a tunnel payload that names no protocol
/// (GTP-U's T-PDU).
pub(super) fn by_version_tunnel(data: &[u8], at: usize) -> Result<(Net, usize), SkipReason> {
    match by_version(data, at) {
        Err(SkipReason::TruncatedIp) => Err(SkipReason::TruncatedTunnel),
        r => r,
    }
}

/// Unwraps VLAN tags (802.1Q, 802.1ad, the old 0x9100), PPPoE sessions,
/// MPLS label stacks (with an Ethernet pseudowire behind a control word)
/// and bridged Ethernet down to IP.
pub(super) fn ethertype(
    data: &[u8],
    mut at: usize,
    mut et: u16,
    walk: &mut Walk<'_>,
) -> Result<(Net, usize), SkipReason> {
    loop {
        match et {
            ETH_IPV4 => return Ok((Net::V4, at)),
            ETH_IPV6 => return Ok((Net::V6, at)),
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let tci = be16(data, at).ok_or(SkipReason::TruncatedLink)?;
                walk.push(Layer::Vlan {
                    tpid: et,
                    id: tci & 0x0fff,
                })?;
                et = be16(data, at + 2).ok_or(SkipReason::TruncatedLink)?;
                at += 4;
            }
            ETH_TEB => {
                walk.enter()?;
                et = be16(data, at + 12).ok_or(SkipReason::TruncatedTunnel)?;
                at += 14;
            }
            ETH_PPPOE_SESSION => {
                let session = be16(data, at + 2).ok_or(SkipReason::TruncatedLink)?;
                let ppp = be16(data, at + 6).ok_or(SkipReason::TruncatedLink)?;
                walk.push(Layer::Pppoe { session })?;
                at += 8;
                return match ppp {
                    0x0021 => Ok((Net::V4, at)),
                    0x0057 => Ok((Net::V6, at)),
                    _ => Err(SkipReason::NotIp),
                };
            }
            ETH_MPLS | ETH_MPLS_MULTI => {
                let mut n = 0u8;
                let bottom = loop {
                    let label = be32(data, at).ok_or(SkipReason::TruncatedLink)?;
                    at += 4;
                    n += 1;
                    if label & 0x100 != 0 {
                        break label >> 12;
                    }
                    if usize::from(n) >= MAX_MPLS_LABELS {
                        return Err(SkipReason::TunnelTooDeep);
                    }
                };
                walk.push(Layer::Mpls { labels: n, bottom })?;
                // No protocol field: guess by the first nibble; 0 is a
                // pseudowire control word before an Ethernet frame.
                match data.get(at).map(|b| b >> 4) {
                    Some(4) => return Ok((Net::V4, at)),
                    Some(6) => return Ok((Net::V6, at)),
                    Some(0) => {
                        walk.enter()?;
                        et = be16(data, at + 4 + 12).ok_or(SkipReason::TruncatedLink)?;
                        at += 4 + 14;
                    }
                    Some(_) => return Err(SkipReason::NotIp),
                    None => return Err(SkipReason::TruncatedIp),
                }
            }
            _ => return Err(SkipReason::NotIp),
        }
    }
}
