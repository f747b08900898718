//! Capture file writers: classic pcap (µs or ns, either byte order) and a
//! minimal pcapng (SHB, IDB with `if_tsresol`, EPB).

use crate::types::Timestamp;
use std::io::{self, Write};

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LINUX_SLL: u32 = 113;

/// Timestamp resolution of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TsResolution {
    #[default]
    Micro,
    Nano,
}

impl TsResolution {
    /// Units per second.
    fn per_sec(self) -> u64 {
        match self {
            TsResolution::Micro => 1_000_000,
            TsResolution::Nano => 1_000_000_000,
        }
    }

    /// Sub-second part of `ts` in this resolution (truncated, as libpcap does).
    fn frac(self, ts: Timestamp) -> u32 {
        match self {
            TsResolution::Micro => ts.nanos / 1000,
            TsResolution::Nano => ts.nanos,
        }
    }
}

/// Options for a classic pcap file header.
#[derive(Clone, Copy, Debug)]
pub struct PcapOptions {
    pub link_type: u32,
    pub resolution: TsResolution,
    /// Written into the header only; packets are never cut here (use
    /// [`PcapWriter::write_packet_with_len`] to simulate a snaplen cut).
    pub snaplen: u32,
    /// Big-endian file (magic `a1 b2 c3 d4`), as written on SPARC or by
    /// some tools; the default is little-endian.
    pub big_endian: bool,
}

impl Default for PcapOptions {
    fn default() -> Self {
        PcapOptions {
            link_type: LINKTYPE_ETHERNET,
            resolution: TsResolution::Micro,
            snaplen: 262_144,
            big_endian: false,
        }
    }
}

/// Classic pcap writer. Packet numbers are 1-based, as Wireshark shows them:
/// after a write, [`PcapWriter::packets_written`] is that packet's number.
pub struct PcapWriter<W: Write> {
    out: W,
    opts: PcapOptions,
    packets: u64,
    bytes: u64,
}

impl<W: Write> PcapWriter<W> {
    /// Little-endian, microseconds, Ethernet.
    pub fn new(out: W) -> io::Result<Self> {
        Self::with_options(out, PcapOptions::default())
    }

    pub fn with_options(mut out: W, opts: PcapOptions) -> io::Result<Self> {
        let magic: u32 = match opts.resolution {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        };
        let mut hdr = [0u8; 24];
        let put32 = |b: &mut [u8], v: u32| {
            b.copy_from_slice(&if opts.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        let put16 = |b: &mut [u8], v: u16| {
            b.copy_from_slice(&if opts.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            })
        };
        put32(&mut hdr[0..4], magic);
        put16(&mut hdr[4..6], 2);
        put16(&mut hdr[6..8], 4);
        // thiszone and sigfigs stay 0.
        put32(&mut hdr[16..20], opts.snaplen);
        put32(&mut hdr[20..24], opts.link_type);
        out.write_all(&hdr)?;
        Ok(PcapWriter {
            out,
            opts,
            packets: 0,
            bytes: 24,
        })
    }

    /// Writes one packet, captured whole.
    pub fn write_packet(&mut self, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_packet_with_len(ts, data, len)
    }

    /// Writes one packet whose original length on the wire was `orig_len`
    /// (larger than `data.len()` simulates a snaplen cut; smaller makes a
    /// deliberately inconsistent record for hostile-input tests).
    pub fn write_packet_with_len(
        &mut self,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        // pcap seconds are 32 bits; wrapping keeps pre-1970 or post-2106
        // test timestamps writable rather than an error.
        let fields = [
            ts.secs as u32,
            self.opts.resolution.frac(ts),
            caplen,
            orig_len,
        ];
        let mut rec = [0u8; 16];
        for (slot, v) in rec.chunks_exact_mut(4).zip(fields) {
            slot.copy_from_slice(&if self.opts.big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            });
        }
        self.out.write_all(&rec)?;
        self.out.write_all(data)?;
        self.packets += 1;
        self.bytes += 16 + data.len() as u64;
        Ok(())
    }

    /// Number of packets written so far (= the last packet's 1-based number).
    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    /// Bytes written so far, file header included.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    pub fn options(&self) -> PcapOptions {
        self.opts
    }

    /// Raw access, e.g. to append garbage or a truncated record in tests.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Minimal little-endian pcapng writer: one section, any number of
/// interfaces, Enhanced Packet Blocks.
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: Vec<TsResolution>,
    packets: u64,
}

const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 0x0000_0001;
const EPB: u32 = 0x0000_0006;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_END: u16 = 0;

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block (section length unknown: -1).
    pub fn new(mut out: W) -> io::Result<Self> {
        let mut body = Vec::with_capacity(16);
        body.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        write_block(&mut out, SHB, &body, &[])?;
        Ok(PcapngWriter {
            out,
            interfaces: Vec::new(),
            packets: 0,
        })
    }

    /// Adds an Interface Description Block; returns its interface id.
    pub fn add_interface(
        &mut self,
        link_type: u16,
        snaplen: u32,
        resolution: TsResolution,
    ) -> io::Result<u32> {
        let mut body = Vec::with_capacity(8);
        body.extend_from_slice(&link_type.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&snaplen.to_le_bytes());
        let tsresol: u8 = match resolution {
            TsResolution::Micro => 6,
            TsResolution::Nano => 9,
        };
        let mut opts = Vec::with_capacity(12);
        push_option(&mut opts, OPT_IF_TSRESOL, &[tsresol]);
        push_option(&mut opts, OPT_END, &[]);
        write_block(&mut self.out, IDB, &body, &opts)?;
        self.interfaces.push(resolution);
        Ok((self.interfaces.len() - 1) as u32)
    }

    pub fn write_packet(&mut self, interface: u32, ts: Timestamp, data: &[u8]) -> io::Result<()> {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.write_packet_with_len(interface, ts, data, len)
    }

    /// Enhanced Packet Block. An `interface` that was never added is written
    /// as given (microsecond timestamps), for hostile-input tests.
    pub fn write_packet_with_len(
        &mut self,
        interface: u32,
        ts: Timestamp,
        data: &[u8],
        orig_len: u32,
    ) -> io::Result<()> {
        let res = self
            .interfaces
            .get(interface as usize)
            .copied()
            .unwrap_or(TsResolution::Micro);
        let units = (ts.secs as u64)
            .wrapping_mul(res.per_sec())
            .wrapping_add(res.frac(ts) as u64);
        let caplen = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let mut body = Vec::with_capacity(20 + data.len() + 3);
        body.extend_from_slice(&interface.to_le_bytes());
        body.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(units as u32).to_le_bytes());
        body.extend_from_slice(&caplen.to_le_bytes());
        body.extend_from_slice(&orig_len.to_le_bytes());
        body.extend_from_slice(data);
        pad4(&mut body);
        write_block(&mut self.out, EPB, &body, &[])?;
        self.packets += 1;
        Ok(())
    }

    pub fn packets_written(&self) -> u64 {
        self.packets
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn pad4(buf: &mut Vec<u8>) {
    while buf.len() % 4 != 0 {
        buf.push(0);
    }
}

fn push_option(opts: &mut Vec<u8>, code: u16, value: &[u8]) {
    opts.extend_from_slice(&code.to_le_bytes());
    opts.extend_from_slice(&(value.len() as u16).to_le_bytes());
    opts.extend_from_slice(value);
    pad4(opts);
}

/// type, total length, body, options, total length again.
fn write_block<W: Write>(out: &mut W, block_type: u32, body: &[u8], opts: &[u8]) -> io::Result<()> {
    let total = (12 + body.len() + opts.len()) as u32;
    out.write_all(&block_type.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(opts)?;
    out.write_all(&total.to_le_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_header_and_record_bytes() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_packet(Timestamp::new(0x0102_0304, 5_006_000), b"abc")
            .unwrap();
        assert_eq!(w.packets_written(), 1);
        let out = w.into_inner();
        let expected: Vec<u8> = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0][..],
            &[0; 8],
            &[0x00, 0x00, 0x04, 0x00], // snaplen 262144
            &[1, 0, 0, 0],
            &[0x04, 0x03, 0x02, 0x01],
            &5006u32.to_le_bytes(),
            &[3, 0, 0, 0, 3, 0, 0, 0],
            b"abc",
        ]
        .concat();
        assert_eq!(out, expected);
    }

    #[test]
    fn nanosecond_big_endian_with_cut_length() {
        let opts = PcapOptions {
            link_type: LINKTYPE_RAW,
            resolution: TsResolution::Nano,
            snaplen: 96,
            big_endian: true,
        };
        let mut w = PcapWriter::with_options(Vec::new(), opts).unwrap();
        w.write_packet_with_len(Timestamp::new(1, 123_456_789), &[9, 9], 1500)
            .unwrap();
        assert_eq!(w.bytes_written(), 24 + 16 + 2);
        let out = w.into_inner();
        assert_eq!(&out[0..4], &[0xa1, 0xb2, 0x3c, 0x4d]);
        assert_eq!(&out[16..20], &96u32.to_be_bytes());
        assert_eq!(&out[20..24], &101u32.to_be_bytes());
        assert_eq!(&out[28..32], &123_456_789u32.to_be_bytes());
        assert_eq!(&out[32..36], &2u32.to_be_bytes());
        assert_eq!(&out[36..40], &1500u32.to_be_bytes());
        assert_eq!(out.len(), 42);
    }

    #[test]
    fn pcapng_blocks_are_well_formed() {
        let mut w = PcapngWriter::new(Vec::new()).unwrap();
        let id = w.add_interface(1, 65535, TsResolution::Nano).unwrap();
        assert_eq!(id, 0);
        w.write_packet(id, Timestamp::new(2, 5), b"hello").unwrap();
        let out = w.into_inner();
        // Walk the blocks: every block's leading and trailing lengths agree
        // and are multiples of 4.
        let mut pos = 0;
        let mut types = Vec::new();
        while pos < out.len() {
            let t = u32::from_le_bytes(out[pos..pos + 4].try_into().unwrap());
            let len = u32::from_le_bytes(out[pos + 4..pos + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            let trailer =
                u32::from_le_bytes(out[pos + len - 4..pos + len].try_into().unwrap()) as usize;
            assert_eq!(len, trailer);
            types.push(t);
            if t == EPB {
                let hi = u32::from_le_bytes(out[pos + 12..pos + 16].try_into().unwrap()) as u64;
                let lo = u32::from_le_bytes(out[pos + 16..pos + 20].try_into().unwrap()) as u64;
                assert_eq!((hi << 32) | lo, 2_000_000_005);
                assert_eq!(&out[pos + 28..pos + 33], b"hello");
            }
            if t == IDB {
                // if_tsresol option right after the 8-byte body
                assert_eq!(&out[pos + 16..pos + 21], &[9, 0, 1, 0, 9]);
            }
            pos += len;
        }
        assert_eq!(types, vec![SHB, IDB, EPB]);
    }
}
