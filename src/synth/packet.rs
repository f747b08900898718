//! Ethernet II + IPv4/IPv6 + TCP packet builder, with real checksums.
//!
//! This is the generator's hot path: it writes into a caller-owned buffer
//! (cleared first) and allocates nothing once that buffer has grown.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// TCP flag bits.
pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// MAC addresses of the synthetic hosts: fixed, so captures stay deterministic.
pub const SRC_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
pub const DST_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;

/// Largest TCP payload whose IPv4 total length still fits 16 bits.
pub const MAX_PAYLOAD_V4: usize = 65_535 - 20 - 20;
/// Largest TCP payload whose IPv6 payload length still fits 16 bits.
pub const MAX_PAYLOAD_V6: usize = 65_535 - 20;

const TCP_HEADER_LEN: usize = 20;
const TTL: u8 = 64;

/// Writes one Ethernet II frame carrying a TCP segment into `out` (cleared
/// first). Both addresses IPv4 gives an IPv4 packet; otherwise IPv6 (an
/// IPv4 address is then written IPv4-mapped). IP and TCP checksums are
/// computed. A payload beyond [`MAX_PAYLOAD_V4`]/[`MAX_PAYLOAD_V6`] is
/// written whole but its IP length field saturates at 65535, which makes a
/// deliberately inconsistent packet.
#[allow(clippy::too_many_arguments)]
pub fn tcp_packet(
    out: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
) {
    out.clear();
    let tcp_len = TCP_HEADER_LEN + payload.len();
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ethernet(out, ETHERTYPE_IPV4);
            let ip_start = out.len();
            let total = u16::try_from(20 + tcp_len).unwrap_or(u16::MAX);
            out.extend_from_slice(&[0x45, 0x00]);
            out.extend_from_slice(&total.to_be_bytes());
            // Identification 0 with DF, as Linux sends on established flows.
            out.extend_from_slice(&[0x00, 0x00, 0x40, 0x00, TTL, 6, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let csum = checksum(sum_words(0, &out[ip_start..ip_start + 20]));
            out[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
            let mut pseudo = sum_words(0, &s.octets());
            pseudo = sum_words(pseudo, &d.octets());
            pseudo += 6 + tcp_len as u64;
            tcp(
                out,
                src.port(),
                dst.port(),
                seq,
                ack,
                flags,
                window,
                payload,
                pseudo,
            );
        }
        (s, d) => {
            let (s, d) = (v6(s), v6(d));
            ethernet(out, ETHERTYPE_IPV6);
            let plen = u16::try_from(tcp_len).unwrap_or(u16::MAX);
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&plen.to_be_bytes());
            out.extend_from_slice(&[6, TTL]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let mut pseudo = sum_words(0, &s.octets());
            pseudo = sum_words(pseudo, &d.octets());
            pseudo += 6 + tcp_len as u64;
            tcp(
                out,
                src.port(),
                dst.port(),
                seq,
                ack,
                flags,
                window,
                payload,
                pseudo,
            );
        }
    }
}

fn v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

fn ethernet(out: &mut Vec<u8>, ethertype: u16) {
    out.extend_from_slice(&DST_MAC);
    out.extend_from_slice(&SRC_MAC);
    out.extend_from_slice(&ethertype.to_be_bytes());
}

#[allow(clippy::too_many_arguments)]
fn tcp(
    out: &mut Vec<u8>,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    payload: &[u8],
    pseudo: u64,
) {
    let start = out.len();
    out.extend_from_slice(&sport.to_be_bytes());
    out.extend_from_slice(&dport.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&ack.to_be_bytes());
    out.extend_from_slice(&[(TCP_HEADER_LEN as u8 / 4) << 4, flags]);
    out.extend_from_slice(&window.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    out.extend_from_slice(payload);
    let sum = sum_words(pseudo, &out[start..]);
    let csum = checksum(sum);
    out[start + 16..start + 18].copy_from_slice(&csum.to_be_bytes());
}

/// Adds `data` as big-endian 16-bit words (odd tail padded with a zero
/// byte) to a ones'-complement accumulator. Summing 32-bit words is the
/// same sum modulo 0xffff, and twice as fast.
pub fn sum_words(mut acc: u64, data: &[u8]) -> u64 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        let v = u64::from_be_bytes(b);
        acc += (v >> 32) + (v & 0xffff_ffff);
    }
    let mut rest = chunks.remainder();
    while rest.len() >= 2 {
        acc += u16::from_be_bytes([rest[0], rest[1]]) as u64;
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        acc += (b as u64) << 8;
    }
    acc
}

/// Folds an accumulator from [`sum_words`] into the Internet checksum.
pub fn checksum(mut acc: u64) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn parse_and_check(pkt: &[u8], payload: &[u8]) {
        let sliced = SlicedPacket::from_ethernet(pkt).expect("etherparse accepts the packet");
        let Some(TransportSlice::Tcp(tcp)) = sliced.transport else {
            panic!("not TCP")
        };
        assert_eq!(tcp.payload(), payload);
        match sliced.net {
            Some(NetSlice::Ipv4(ip)) => {
                let h = ip.header().to_header();
                assert_eq!(h.header_checksum, h.calc_header_checksum());
                let calc = tcp.to_header().calc_checksum_ipv4(&h, payload).unwrap();
                assert_eq!(tcp.checksum(), calc);
                assert_eq!(h.total_len as usize, 40 + payload.len());
            }
            Some(NetSlice::Ipv6(ip)) => {
                let h = ip.header().to_header();
                let calc = tcp.to_header().calc_checksum_ipv6(&h, payload).unwrap();
                assert_eq!(tcp.checksum(), calc);
                assert_eq!(h.payload_length as usize, 20 + payload.len());
            }
            _ => panic!("no IP layer"),
        }
    }

    #[test]
    fn ipv4_packet_fields_and_checksums() {
        let mut out = Vec::new();
        let src: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let dst: SocketAddr = "10.0.0.2:8080".parse().unwrap();
        tcp_packet(
            &mut out,
            src,
            dst,
            0xdead_beef,
            7,
            flags::PSH | flags::ACK,
            512,
            b"hello!!",
        );
        assert_eq!(out.len(), 14 + 20 + 20 + 7);
        assert_eq!(&out[12..14], &[0x08, 0x00]);
        assert_eq!(&out[34..36], &40000u16.to_be_bytes());
        assert_eq!(&out[38..42], &0xdead_beefu32.to_be_bytes());
        assert_eq!(out[47], flags::PSH | flags::ACK);
        parse_and_check(&out, b"hello!!");
    }

    #[test]
    fn ipv6_packet_fields_and_checksums() {
        let mut out = Vec::new();
        let src: SocketAddr = "[fd00::1]:40000".parse().unwrap();
        let dst: SocketAddr = "[fd00::2]:80".parse().unwrap();
        let payload: Vec<u8> = (0..1001u32).map(|i| i as u8).collect();
        tcp_packet(&mut out, src, dst, 1, 2, flags::ACK, 65535, &payload);
        assert_eq!(&out[12..14], &[0x86, 0xdd]);
        assert_eq!(out.len(), 14 + 40 + 20 + 1001);
        parse_and_check(&out, &payload);
    }

    #[test]
    fn mixed_families_become_ipv6_and_buffer_is_reused() {
        let mut out = vec![0xAA; 5000];
        let src: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let dst: SocketAddr = "[fd00::2]:2".parse().unwrap();
        tcp_packet(&mut out, src, dst, 0, 0, flags::SYN, 1, &[]);
        assert_eq!(out.len(), 14 + 40 + 20);
        parse_and_check(&out, &[]);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example words: 0001 f203 f4f5 f6f7 -> sum ddf2.
        let acc = sum_words(0, &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        assert_eq!(checksum(acc), !0xddf2);
        // Odd length pads with a zero byte.
        assert_eq!(checksum(sum_words(0, &[0x12])), !0x1200);
    }
}
