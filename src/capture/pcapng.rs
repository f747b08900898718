//! pcapng blocks: sections in either byte order, interfaces with their own
//! link type and timestamp resolution/offset, and the three packet blocks.

use super::{
    rd_u16, rd_u32, CaptureErrorKind, CaptureReader, Format, Located, MAX_BLOCK, MAX_CAPLEN,
    MAX_INTERFACES,
};
use crate::types::Timestamp;

const SHB: u32 = 0x0a0d_0d0a;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
/// Decryption Secrets Block.
const DSB: u32 = 0x0000_000a;
/// DSB secrets type: NSS key log text.
pub const SECRETS_TLS_KEYLOG: u32 = 0x544c_534b;
/// Secrets bytes kept from DSBs until drained (one block is at most `MAX_BLOCK`).
pub const MAX_SECRETS: usize = 64 << 20;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;

#[derive(Default)]
pub(crate) struct State {
    /// Byte order of the current section; `None` before the first SHB is read.
    big_endian: Option<bool>,
    ifaces: Vec<Iface>,
    /// TLS key log texts from Decryption Secrets Blocks, until drained.
    pub(super) secrets: Vec<Vec<u8>>,
    secrets_bytes: usize,
}

struct Iface {
    link_type: u32,
    snaplen: u32,
    /// Timestamp units per second.
    units: u64,
    offset_secs: i64,
}

impl Iface {
    fn timestamp(&self, hi: u32, lo: u32) -> Timestamp {
        let raw = ((hi as u64) << 32) | lo as u64;
        let secs = raw / self.units;
        let frac = raw % self.units;
        let nanos = if self.units == 1_000_000 {
            frac * 1000
        } else if self.units == 1_000_000_000 {
            frac
        } else {
            (frac as u128 * 1_000_000_000 / self.units as u128) as u64
        };
        let secs = i64::try_from(secs)
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_secs);
        Timestamp::new(secs, nanos as u32)
    }
}

/// Units per second from an `if_tsresol` byte, if representable in a u64.
fn tsresol_units(v: u8) -> Option<u64> {
    if v & 0x80 == 0 {
        10u64.checked_pow(v as u32)
    } else {
        1u64.checked_shl((v & 0x7f) as u32)
            .filter(|_| (v & 0x7f) < 64)
    }
}

impl CaptureReader {
    fn ng_state(&mut self) -> Option<&mut State> {
        match &mut self.format {
            Format::Pcapng(s) => Some(s),
            Format::Pcap(_) => None,
        }
    }

    /// Reads blocks until one holds a packet.
    pub(super) fn next_pcapng_packet(&mut self) -> Result<Option<Located>, CaptureError> {
        loop {
            let start = self.src.offset();
            let avail = self.fill(12)?;
            if avail == 0 {
                return Ok(None);
            }
            if avail < 8 {
                return Err(self.error(
                    start,
                    CaptureErrorKind::TruncatedBlockHeader { available: avail },
                ));
            }
            let mut head = [0u8; 12];
            let got = self.src.peek(0, 12.min(avail));
            head[..got.len()].copy_from_slice(got);
            let head = &head[..];
            // The SHB type is a palindrome; its length's byte order comes from the magic after it.
            let is_shb = rd_u32(head, 0, false) == SHB;
            let be = if is_shb {
                if avail < 12 {
                    return Err(self.error(
                        start,
                        CaptureErrorKind::TruncatedBlockHeader { available: avail },
                    ));
                }
                match rd_u32(head, 8, false) {
                    0x1a2b_3c4d => false,
                    0x4d3c_2b1a => true,
                    _ => {
                        let mut bytes = [0u8; 4];
                        bytes.copy_from_slice(self.src.peek(8, 4));
                        return Err(
                            self.error(start, CaptureErrorKind::BadByteOrderMagic { bytes })
                        );
                    }
                }
            } else {
                match &self.format {
                    Format::Pcapng(s) => s.big_endian.unwrap_or(false),
                    Format::Pcap(_) => false,
                }
            };
            let block_type = rd_u32(head, 0, be);
            let len = rd_u32(head, 4, be);
            if len < 12 || len % 4 != 0 {
                return Err(self.error(start, CaptureErrorKind::BadBlockLength { block_type, len }));
            }
            if len > MAX_BLOCK {
                return Err(self.error(start, CaptureErrorKind::BlockTooLarge { block_type, len }));
            }
            let avail = self.fill(len as usize)?;
            if avail < len as usize {
                return Err(self.error(
                    start,
                    CaptureErrorKind::TruncatedBlock {
                        declared: len,
                        available: avail,
                    },
                ));
            }
            let trailer = rd_u32(self.src.peek(len as usize - 4, 4), 0, be);
            if trailer != len {
                return Err(self.error(
                    start,
                    CaptureErrorKind::BlockTrailerMismatch {
                        header: len,
                        trailer,
                    },
                ));
            }
            let found = match block_type {
                SHB => self.section_header(start, len, be).map(|()| None),
                IDB => self.interface_description(start, len, be).map(|()| None),
                EPB | PB => self.packet_block(start, block_type, len, be).map(Some),
                SPB => self.simple_packet_block(start, len, be).map(Some),
                DSB => {
                    self.secrets_block(len, be);
                    Ok(None)
                }
                // Statistics, name resolution, custom and unknown blocks carry no packets.
                _ => Ok(None),
            }?;
            match found {
                Some(loc) => return Ok(Some(loc)),
                None => self.src.consume(len as usize),
            }
        }
    }

    fn need(&self, start: u64, block_type: u32, len: u32, needed: u32) -> Result<(), CaptureError> {
        if len < needed {
            Err(self.error(
                start,
                CaptureErrorKind::BlockTooShort {
                    block_type,
                    len,
                    needed,
                },
            ))
        } else {
            Ok(())
        }
    }

    /// Keeps the TLS key log text of a Decryption Secrets Block (other
    /// secrets types, e.g. WireGuard or SSH, are skipped).
    fn secrets_block(&mut self, len: u32, be: bool) {
        let block = self.src.peek(0, len as usize);
        if block.len() < 20 {
            return;
        }
        let ty = rd_u32(block, 8, be);
        let n = rd_u32(block, 12, be) as usize;
        let Some(text) = block.get(16..16usize.saturating_add(n)) else {
            return;
        };
        if ty != SECRETS_TLS_KEYLOG || n > block.len().saturating_sub(20) {
            return;
        }
        let text = text.to_vec();
        if let Some(s) = self.ng_state() {
            if s.secrets_bytes + text.len() <= MAX_SECRETS {
                s.secrets_bytes += text.len();
                s.secrets.push(text);
            }
        }
    }

    fn section_header(&mut self, start: u64, len: u32, be: bool) -> Result<(), CaptureError> {
        self.need(start, SHB, len, 28)?;
        let b = self.src.peek(0, 28);
        let version = (rd_u16(b, 12, be), rd_u16(b, 14, be));
        if version.0 != 1 {
            self.notice("unusual_capture_version", start, || {
                format!("pcapng version {}.{}", version.0, version.1)
            });
        }
        if let Some(s) = self.ng_state() {
            s.big_endian = Some(be);
            s.ifaces.clear();
        }
        Ok(())
    }

    fn interface_description(
        &mut self,
        start: u64,
        len: u32,
        be: bool,
    ) -> Result<(), CaptureError> {
        self.need(start, IDB, len, 20)?;
        let block = self.src.peek(0, len as usize);
        let link_type = rd_u16(block, 8, be) as u32;
        let snaplen = rd_u32(block, 12, be);
        let mut units = 1_000_000u64;
        let mut offset_secs = 0i64;
        let mut bad_option = false;
        let mut bad_resol = None;
        let opts = block.get(16..block.len().saturating_sub(4)).unwrap_or(&[]);
        let mut at = 0usize;
        while at + 4 <= opts.len() {
            let code = rd_u16(opts, at, be);
            let olen = rd_u16(opts, at + 2, be) as usize;
            if code == OPT_END {
                break;
            }
            let Some(value) = opts.get(at + 4..at + 4 + olen) else {
                bad_option = true;
                break;
            };
            match (code, value) {
                (OPT_IF_TSRESOL, [v, ..]) => match tsresol_units(*v) {
                    Some(u) => units = u,
                    None => bad_resol = Some(*v),
                },
                (OPT_IF_TSOFFSET, _) => {
                    offset_secs = rd_u64(value, be) as i64;
                }
                _ => {}
            }
            at += 4 + olen.div_ceil(4) * 4;
        }
        if bad_option {
            self.notice("bad_pcapng_option", start, || {
                "interface description option runs past its block".to_string()
            });
        }
        if let Some(v) = bad_resol {
            self.notice("bad_tsresol", start, || {
                format!("if_tsresol 0x{v:02x} is not representable; assuming microseconds")
            });
        }
        let too_many = self
            .ng_state()
            .map(|s| s.ifaces.len() >= MAX_INTERFACES)
            .unwrap_or(false);
        if too_many {
            return Err(self.error(
                start,
                CaptureErrorKind::TooManyInterfaces {
                    limit: MAX_INTERFACES,
                },
            ));
        }
        if let Some(s) = self.ng_state() {
            s.ifaces.push(Iface {
                link_type,
                snaplen,
                units,
                offset_secs,
            });
        }
        self.note_link_type(link_type);
        Ok(())
    }

    /// Interface `id` of the current section, or the matching error.
    fn iface(&self, start: u64, block_type: u32, id: u32) -> Result<&Iface, CaptureError> {
        let ifaces: &[Iface] = match &self.format {
            Format::Pcapng(s) => &s.ifaces,
            Format::Pcap(_) => &[],
        };
        if ifaces.is_empty() {
            return Err(self.error(
                start,
                CaptureErrorKind::PacketBeforeInterface { block_type },
            ));
        }
        ifaces.get(id as usize).ok_or_else(|| {
            self.error(
                start,
                CaptureErrorKind::UnknownInterface {
                    id,
                    known: ifaces.len(),
                },
            )
        })
    }

    /// Enhanced Packet Block, or the obsolete Packet Block (same layout with a
    /// 16-bit interface id followed by a drop count).
    fn packet_block(
        &mut self,
        start: u64,
        block_type: u32,
        len: u32,
        be: bool,
    ) -> Result<Located, CaptureError> {
        self.need(start, block_type, len, 32)?;
        let b = self.src.peek(0, 32);
        let id = if block_type == EPB {
            rd_u32(b, 8, be)
        } else {
            rd_u16(b, 8, be) as u32
        };
        let (hi, lo) = (rd_u32(b, 12, be), rd_u32(b, 16, be));
        let caplen = rd_u32(b, 20, be);
        let orig_len = rd_u32(b, 24, be);
        let room = len - 32;
        if caplen > room {
            return Err(self.error(start, CaptureErrorKind::PacketExceedsBlock { caplen, room }));
        }
        if caplen > MAX_CAPLEN {
            return Err(self.error(start, CaptureErrorKind::CaplenTooLarge { caplen }));
        }
        let iface = self.iface(start, block_type, id)?;
        Ok(Located {
            data_from: 28,
            caplen,
            orig_len,
            ts: iface.timestamp(hi, lo),
            link_type: iface.link_type,
            record_len: len as usize,
        })
    }

    /// Simple Packet Block: interface 0, no timestamp (the previous packet's
    /// is reused so it does not look like time going backwards).
    fn simple_packet_block(
        &mut self,
        start: u64,
        len: u32,
        be: bool,
    ) -> Result<Located, CaptureError> {
        self.need(start, SPB, len, 16)?;
        let orig_len = rd_u32(self.src.peek(0, 12), 8, be);
        let iface = self.iface(start, SPB, 0)?;
        let mut caplen = orig_len.min(len - 16);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen);
        }
        if caplen > MAX_CAPLEN {
            return Err(self.error(start, CaptureErrorKind::CaplenTooLarge { caplen }));
        }
        Ok(Located {
            data_from: 12,
            caplen,
            orig_len,
            ts: self.last_ts.unwrap_or_default(),
            link_type: iface.link_type,
            record_len: len as usize,
        })
    }
}

use super::CaptureError;

fn rd_u64(b: &[u8], be: bool) -> u64 {
    let v = b
        .get(0..8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
        .unwrap_or([0; 8]);
    if be {
        u64::from_be_bytes(v)
    } else {
        u64::from_le_bytes(v)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn tsresol_forms() {
        assert_eq!(tsresol_units(6), Some(1_000_000));
        assert_eq!(tsresol_units(9), Some(1_000_000_000));
        assert_eq!(tsresol_units(0x80 | 10), Some(1024));
        assert_eq!(tsresol_units(0x80 | 64), None);
        assert_eq!(tsresol_units(20), None);
    }

    #[test]
    fn timestamps_in_odd_units() {
        let i = Iface {
            link_type: 1,
            snaplen: 0,
            units: 1024,
            offset_secs: 100,
        };
        // 3.5 s in 1/1024 s units, plus 100 s offset.
        let t = i.timestamp(0, 3 * 1024 + 512);
        assert_eq!(t, Timestamp::new(103, 500_000_000));
        let i = Iface { units: 1000, ..i };
        assert_eq!(i.timestamp(0, 1_234), Timestamp::new(101, 234_000_000));
    }
}
