#!/usr/bin/env python3
"""Re-encapsulates every packet of a real capture in a tunnel, for
tests/tunnels.rs: the inner IP packets are kept byte for byte, only headers
are put around them (and the outer endpoints swap with the inner direction,
as on a real tunnel). Standard library only.

    testdata/record/reencap.py SRC.pcap KIND OUT.pcap
    testdata/record/reencap.py --all     # regenerates testdata/tunnels/

Kinds: vxlan geneve gre gre-key-seq-csum gre-teb gre6 erspan2 erspan3
gtpu qinq-gtpu mpls mpls-pw pppoe ipip 6in4 6in6 qinq-vxlan-vlan.
"""
import struct
import sys
from pathlib import Path

OUT_A, OUT_B = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
OUT6_A = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [1])
OUT6_B = bytes([0x20, 0x01, 0x0d, 0xb8] + [0] * 11 + [2])
MAC = bytes([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])


def read_pcap(path):
    b = Path(path).read_bytes()
    magic = b[:4]
    if magic == b"\xd4\xc3\xb2\xa1" or magic == b"\x4d\x3c\xb2\xa1":
        e = "<"
    elif magic == b"\xa1\xb2\xc3\xd4" or magic == b"\xa1\xb2\x3c\x4d":
        e = ">"
    else:
        raise SystemExit(f"{path}: not a classic pcap")
    linktype = struct.unpack(e + "I", b[20:24])[0]
    if linktype != 1:
        raise SystemExit(f"{path}: link type {linktype}, want Ethernet (1)")
    at, pkts = 24, []
    while at + 16 <= len(b):
        sec, frac, incl, orig = struct.unpack(e + "IIII", b[at:at + 16])
        data = b[at + 16:at + 16 + incl]
        at += 16 + incl
        if incl != orig:
            raise SystemExit(f"{path}: a packet is cut by the snaplen")
        pkts.append((sec, frac, data))
    return magic, e, pkts


def write_pcap(path, magic, e, pkts):
    out = bytearray(magic)
    out += struct.pack(e + "HHiIII", 2, 4, 0, 0, 262144, 1)
    for sec, frac, data in pkts:
        out += struct.pack(e + "IIII", sec, frac, len(data), len(data))
        out += data
    Path(path).write_bytes(out)


def ip4(proto, src, dst, body):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0x4000, 64, proto, 0, src, dst)
    return h + body


def ip6(nxt, src, dst, body):
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), nxt, 64, src, dst) + body


def udp(sport, dport, body):
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def eth(et, body):
    return MAC + struct.pack("!H", et) + body


def vlan(tpid, vid, et, body):
    return struct.pack("!HH", vid, et) + body, tpid


def gre(proto, body, key=None, seq=None, csum=False):
    fl, opt = 0, b""
    if csum:
        fl |= 0x8000
        opt += b"\0\0\0\0"
    if key is not None:
        fl |= 0x2000
        opt += struct.pack("!I", key)
    if seq is not None:
        fl |= 0x1000
        opt += struct.pack("!I", seq)
    return struct.pack("!HH", fl, proto) + opt + body


def ethertype_of(ip):
    return 0x0800 if ip[0] >> 4 == 4 else 0x86DD


def wrap(kind, ip, fwd, n):
    """The Ethernet frame carrying inner packet `ip` in tunnel `kind`;
    `fwd`: the client-to-server direction; `n`: packet number (sequence
    numbers)."""
    a, b = (OUT_A, OUT_B) if fwd else (OUT_B, OUT_A)
    a6, b6 = (OUT6_A, OUT6_B) if fwd else (OUT6_B, OUT6_A)
    et = ethertype_of(ip)
    inner_eth = eth(et, ip)
    if kind == "vxlan":
        return eth(0x0800, ip4(17, a, b, udp(49152 + n % 1000, 4789, struct.pack("!II", 0x08000000, 42 << 8) + inner_eth)))
    if kind == "geneve":
        opts = struct.pack("!HBB", 0x0104, 0x01, 1) + b"\xaa\xbb\xcc\xdd"
        g = struct.pack("!BBHI", len(opts) // 4, 0, 0x6558, 77 << 8) + opts + inner_eth
        return eth(0x0800, ip4(17, a, b, udp(49152, 6081, g)))
    if kind == "gre":
        return eth(0x0800, ip4(47, a, b, gre(et, ip)))
    if kind == "gre-key-seq-csum":
        return eth(0x0800, ip4(47, a, b, gre(et, ip, key=0x1001, seq=n, csum=True)))
    if kind == "gre-teb":
        return eth(0x0800, ip4(47, a, b, gre(0x6558, inner_eth, key=7)))
    if kind == "gre6":
        return eth(0x86DD, ip6(47, a6, b6, gre(et, ip)))
    if kind == "erspan2":
        e = struct.pack("!HHI", 0x1000 | 10, 0x0000 | 33, 0)
        return eth(0x0800, ip4(47, OUT_A, OUT_B, gre(0x88BE, e + inner_eth, seq=n)))
    if kind == "erspan3":
        # Timestamp, SGT, then P/FT/HW ID/D/Gra/O with O set: a subheader.
        e = struct.pack("!HHIHBB", 0x2000 | 10, 34, n, 0, 0x00, 0x01) + struct.pack("!II", 0x0400_0000, 0)
        return eth(0x0800, ip4(47, OUT_A, OUT_B, gre(0x22EB, e + inner_eth, seq=n)))
    if kind in ("gtpu", "qinq-gtpu"):
        # Sequence number and a PDU session container extension header.
        teid = 0x1234 if fwd else 0x5678
        ext = struct.pack("!HBB", n & 0xFFFF, 0, 0x85) + bytes([1, 0x10 if fwd else 0x00, 9, 0])
        g = struct.pack("!BBHI", 0x30 | 0x04 | 0x02, 0xFF, len(ext) + len(ip), teid) + ext + ip
        frame = ip4(17, a, b, udp(2152, 2152, g))
        if kind == "gtpu":
            return eth(0x0800, frame)
        body, t = vlan(0x8100, 200, 0x0800, frame)
        body, t = vlan(0x88A8, 100, t, body)
        return eth(t, body)
    if kind == "mpls":
        labels = struct.pack("!II", (16 << 12) | 64, (17 << 12) | 0x100 | 64)
        return eth(0x8847, labels + ip)
    if kind == "mpls-pw":
        return eth(0x8847, struct.pack("!II", (18 << 12) | 0x100 | 64, n & 0xFFFF) + inner_eth)
    if kind == "pppoe":
        proto = 0x0021 if et == 0x0800 else 0x0057
        return eth(0x8864, struct.pack("!BBHHH", 0x11, 0, 0x2A, 2 + len(ip), proto) + ip)
    if kind == "ipip":
        return eth(0x0800, ip4(4 if et == 0x0800 else 41, a, b, ip))
    if kind == "6in4":
        return eth(0x0800, ip4(41, a, b, ip))
    if kind == "6in6":
        return eth(0x86DD, ip6(41, a6, b6, ip))
    if kind == "qinq-vxlan-vlan":
        tagged, t = vlan(0x8100, 5, et, ip)
        vx = ip4(17, a, b, udp(49152, 4789, struct.pack("!II", 0x08000000, 43 << 8) + eth(t, tagged)))
        body, t = vlan(0x8100, 300, 0x0800, vx)
        body, t = vlan(0x9100, 30, t, body)
        return eth(t, body)
    raise SystemExit(f"unknown kind {kind}")


def inner_ip(frame):
    et = struct.unpack("!H", frame[12:14])[0]
    if et not in (0x0800, 0x86DD):
        raise SystemExit(f"ethertype {et:#x}: want plain IP")
    ip = frame[14:]
    # Trim Ethernet padding by the IP length.
    if et == 0x0800:
        return ip[: struct.unpack("!H", ip[2:4])[0]]
    return ip[: 40 + struct.unpack("!H", ip[4:6])[0]]


def reencap(src, kind, out):
    magic, e, pkts = read_pcap(src)
    first = None
    res = []
    for n, (sec, frac, frame) in enumerate(pkts):
        ip = inner_ip(frame)
        src_addr = ip[12:16] if ip[0] >> 4 == 4 else ip[8:24]
        first = first or src_addr
        res.append((sec, frac, wrap(kind, ip, src_addr == first, n)))
    write_pcap(out, magic, e, res)


V4_KINDS = ["vxlan", "geneve", "gre", "gre-key-seq-csum", "gre-teb", "gre6", "erspan2",
            "erspan3", "gtpu", "qinq-gtpu", "mpls", "mpls-pw", "pppoe", "ipip",
            "qinq-vxlan-vlan"]
V6_KINDS = ["6in4", "6in6", "gtpu", "pppoe", "gre-teb"]


def main():
    if sys.argv[1:] == ["--all"]:
        root = Path(__file__).resolve().parent.parent
        out = root / "tunnels"
        out.mkdir(exist_ok=True)
        for k in V4_KINDS:
            reencap(root / "real/py-client-node-server.pcap", k, out / f"py-client-node-server.{k}.pcap")
        for k in V6_KINDS:
            reencap(root / "real/py-ipv6.pcap", k, out / f"py-ipv6.{k}.pcap")
        return
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    reencap(*sys.argv[1:])


if __name__ == "__main__":
    main()
