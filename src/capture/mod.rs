//! capture stage: a streaming reader of pcap and pcapng files (gzip
//! transparent), with its own parser for speed and precise error offsets.
//!
//! Memory does not grow with the file: one read buffer (`READ_BUFFER`, grown
//! only for a record larger than it, up to `MAX_BLOCK`) is reused, and
//! `next_packet` lends a slice straight into it.

mod error;
#[cfg(feature = "live")]
pub mod live;
mod pcapng;
mod source;

#[cfg(test)]
mod tests;

pub use error::{CaptureError, CaptureErrorKind};
pub use source::READ_BUFFER;

use crate::types::{PacketNo, Timestamp};
use source::Source;
use std::io::Read;
use std::path::Path;

/// Largest captured length of one packet that is accepted; larger values are
/// refused before any allocation (they mean a corrupt file).
pub const MAX_CAPLEN: u32 = 262_144;
/// The first bytes of a gzip stream: such input is inflated as it is read.
pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Largest pcapng block accepted.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;
/// Most notices held between two `drain_notices` calls; beyond that they are
/// only counted (see `notice_counts`).
pub const MAX_PENDING_NOTICES: usize = 4096;
/// Most interfaces in one pcapng section.
pub const MAX_INTERFACES: usize = 65_536;

/// Names of the non-fatal notices this module emits.
pub const ANOMALIES: &[(&str, &str)] = &[
    (
        "caplen_exceeds_len",
        "a record's captured length is larger than its original length; the original length was raised to match",
    ),
    ("timestamp_backwards", "a packet's timestamp is earlier than the previous packet's"),
    (
        "timestamp_fraction_overflow",
        "a pcap record's microsecond/nanosecond field is not below one second; the excess was carried into the seconds",
    ),
    ("bad_tsresol", "a pcapng if_tsresol option is out of range; microseconds were assumed"),
    ("bad_pcapng_option", "a pcapng option runs past the end of its block; the rest of the options were ignored"),
    ("unusual_capture_version", "the file header has a format version this reader does not know; it was read anyway"),
];

/// One captured packet, borrowed from the reader's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// 1-based, within this reader.
    pub number: PacketNo,
    /// Capture timestamp.
    pub ts: Timestamp,
    /// LINKTYPE_* value.
    pub link_type: u32,
    /// The captured bytes (at most the snapshot length).
    pub data: &'a [u8],
    /// Length of the packet on the wire (bytes); larger than `data.len()` when cut by the snaplen.
    pub orig_len: u32,
}

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureFormat {
    /// Classic libpcap format.
    Pcap {
        /// Timestamps in nanoseconds (magic 0xa1b23c4d) rather than microseconds.
        nanos: bool,
        /// Written on a big-endian machine (fields in big-endian byte order).
        big_endian: bool,
        /// Format version from the file header (major, minor), normally (2, 4).
        version: (u16, u16),
    },
    /// The pcapng format.
    Pcapng,
}

/// A non-fatal oddity of the capture file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// One of the names in `ANOMALIES`.
    pub name: &'static str,
    /// Stream offset of the record or block concerned.
    pub offset: u64,
    /// Packet number concerned (0 when not about a packet).
    pub packet: PacketNo,
    /// Human-readable detail.
    pub detail: String,
}

enum Format {
    Pcap(PcapState),
    Pcapng(pcapng::State),
}

struct PcapState {
    big_endian: bool,
    nanos: bool,
    version: (u16, u16),
    link_type: u32,
}

/// Where a packet's bytes sit in the source buffer, plus its metadata; built
/// before the slice is lent so the parsing loops hold no borrow.
pub(crate) struct Located {
    pub(crate) data_from: usize,
    pub(crate) caplen: u32,
    pub(crate) orig_len: u32,
    pub(crate) ts: Timestamp,
    pub(crate) link_type: u32,
    /// Bytes of the record/block to consume after the packet is handed out.
    pub(crate) record_len: usize,
}

/// Reads packets from a pcap or pcapng file (optionally gzip-compressed), one at a time.
pub struct CaptureReader {
    name: String,
    src: Source,
    format: Format,
    gzip: bool,
    packets: u64,
    last_ts: Option<Timestamp>,
    /// Bytes of the previous record still to consume (the lent packet).
    pending_consume: usize,
    link_types: Vec<u32>,
    notices: Vec<Notice>,
    notice_counts: Vec<(&'static str, u64)>,
    failed: bool,
}

impl CaptureReader {
    /// Opens a capture file; "-" reads standard input.
    pub fn open(path: &Path) -> Result<Self, CaptureError> {
        Self::open_with_buffer(path, READ_BUFFER)
    }

    /// As [`CaptureReader::open`], with a read buffer of `capacity` bytes
    /// (it still grows for a larger record).
    pub fn open_with_buffer(path: &Path, capacity: usize) -> Result<Self, CaptureError> {
        let name = path.display().to_string();
        if path.as_os_str() == "-" {
            return Self::with_buffer(Box::new(std::io::stdin()), &name, capacity);
        }
        let file = std::fs::File::open(path).map_err(|e| CaptureError {
            path: name.clone(),
            offset: 0,
            kind: CaptureErrorKind::Io(e),
            decompressed: false,
        })?;
        Self::with_buffer(Box::new(file), &name, capacity)
    }

    /// Reads a capture from any byte stream; `name` is used in error messages.
    pub fn from_reader(r: Box<dyn Read + Send>, name: &str) -> Result<Self, CaptureError> {
        Self::with_buffer(r, name, READ_BUFFER)
    }

    fn with_buffer(
        r: Box<dyn Read + Send>,
        name: &str,
        capacity: usize,
    ) -> Result<Self, CaptureError> {
        let (reader, gzip) = sniff_gzip(r).map_err(|e| CaptureError {
            path: name.to_string(),
            offset: 0,
            kind: CaptureErrorKind::Io(e),
            decompressed: false,
        })?;
        let mut me = CaptureReader {
            name: name.to_string(),
            src: Source::new(reader, capacity),
            format: Format::Pcapng(pcapng::State::default()),
            gzip,
            packets: 0,
            last_ts: None,
            pending_consume: 0,
            link_types: Vec::new(),
            notices: Vec::new(),
            notice_counts: Vec::new(),
            failed: false,
        };
        me.read_file_header()?;
        Ok(me)
    }

    /// The capture's container format.
    pub fn format(&self) -> CaptureFormat {
        match &self.format {
            Format::Pcap(p) => CaptureFormat::Pcap {
                nanos: p.nanos,
                big_endian: p.big_endian,
                version: p.version,
            },
            Format::Pcapng(_) => CaptureFormat::Pcapng,
        }
    }

    /// Offset in the (decompressed) stream up to which input has been parsed.
    pub fn bytes_consumed(&self) -> u64 {
        self.src.offset() + self.pending_consume as u64
    }

    /// Distinct link types, in the order first seen.
    pub fn link_types(&self) -> Vec<u32> {
        self.link_types.clone()
    }

    /// Moves the TLS key log texts of the pcapng Decryption Secrets Blocks
    /// read so far (secrets type `TLSK`, NSS key log format) into `out`, in
    /// file order. A DSB precedes the packets it decrypts, so calling this
    /// after each `next_packet` and before using the packet is enough.
    pub fn drain_secrets(&mut self, out: &mut Vec<Vec<u8>>) {
        if let Format::Pcapng(s) = &mut self.format {
            out.append(&mut s.secrets);
        }
    }

    /// Moves the pending notices into `out`.
    pub fn drain_notices(&mut self, out: &mut Vec<Notice>) {
        out.append(&mut self.notices);
    }

    /// How many notices of each name were raised so far (including any not
    /// held because more than `MAX_PENDING_NOTICES` were pending), in first-seen order.
    pub fn notice_counts(&self) -> &[(&'static str, u64)] {
        &self.notice_counts
    }

    /// The next packet, `Ok(None)` at the end of the input. After an error,
    /// returns `Ok(None)`.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        self.src.consume(self.pending_consume);
        self.pending_consume = 0;
        if self.failed {
            return Ok(None);
        }
        let located = match &self.format {
            Format::Pcap(_) => self.next_pcap_record(),
            Format::Pcapng(_) => self.next_pcapng_packet(),
        };
        let loc = match located {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        self.packets += 1;
        let offset = self.src.offset();
        let mut orig_len = loc.orig_len;
        if loc.caplen > orig_len {
            self.notice("caplen_exceeds_len", offset, || {
                format!(
                    "captured length {} > original length {orig_len}; using {}",
                    loc.caplen, loc.caplen
                )
            });
            orig_len = loc.caplen;
        }
        if let Some(prev) = self.last_ts {
            if loc.ts < prev {
                self.notice("timestamp_backwards", offset, || {
                    format!("{} is before the previous packet's {}", loc.ts, prev)
                });
            }
        }
        self.last_ts = Some(loc.ts);
        self.pending_consume = loc.record_len;
        Ok(Some(Packet {
            number: self.packets,
            ts: loc.ts,
            link_type: loc.link_type,
            data: self.src.peek(loc.data_from, loc.caplen as usize),
            orig_len,
        }))
    }

    /// Counts a notice; formats and holds it only if under `MAX_PENDING_NOTICES`
    /// (a capture where every packet is odd must not cost a string per packet).
    fn notice(&mut self, name: &'static str, offset: u64, detail: impl FnOnce() -> String) {
        match self.notice_counts.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => *c += 1,
            None => self.notice_counts.push((name, 1)),
        }
        if self.notices.len() < MAX_PENDING_NOTICES {
            self.notices.push(Notice {
                name,
                offset,
                packet: self.packets,
                detail: detail(),
            });
        }
    }

    fn note_link_type(&mut self, lt: u32) {
        if !self.link_types.contains(&lt) {
            self.link_types.push(lt);
        }
    }

    fn error(&self, offset: u64, kind: CaptureErrorKind) -> CaptureError {
        CaptureError {
            path: self.name.clone(),
            offset,
            kind,
            decompressed: self.gzip,
        }
    }

    /// Converts an I/O error from the source, telling gzip damage apart.
    fn io_error(&self, e: std::io::Error) -> CaptureError {
        let kind = if self.gzip && e.kind() == std::io::ErrorKind::UnexpectedEof {
            CaptureErrorKind::TruncatedGzip
        } else if self.gzip
            && matches!(
                e.kind(),
                std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData
            )
        {
            CaptureErrorKind::CorruptGzip(e)
        } else {
            CaptureErrorKind::Io(e)
        };
        self.error(self.src.offset(), kind)
    }

    pub(crate) fn fill(&mut self, n: usize) -> Result<usize, CaptureError> {
        self.src.fill(n).map_err(|e| self.io_error(e))
    }

    fn read_file_header(&mut self) -> Result<(), CaptureError> {
        let avail = self.fill(24)?;
        if avail == 0 {
            return Err(self.error(0, CaptureErrorKind::Empty));
        }
        if avail < 4 {
            return Err(self.error(
                0,
                CaptureErrorKind::TruncatedFileHeader {
                    needed: 4,
                    available: avail,
                },
            ));
        }
        let mut magic = [0u8; 4];
        magic.copy_from_slice(self.src.peek(0, 4));
        let (big_endian, nanos) = match u32::from_le_bytes(magic) {
            0xa1b2_c3d4 => (false, false),
            0xa1b2_3c4d => (false, true),
            0xd4c3_b2a1 => (true, false),
            0x4d3c_b2a1 => (true, true),
            0x0a0d_0d0a => {
                self.format = Format::Pcapng(pcapng::State::default());
                return Ok(());
            }
            _ => return Err(self.error(0, CaptureErrorKind::BadMagic { bytes: magic })),
        };
        if avail < 24 {
            return Err(self.error(
                0,
                CaptureErrorKind::TruncatedFileHeader {
                    needed: 24,
                    available: avail,
                },
            ));
        }
        let h = self.src.peek(0, 24);
        let version = (rd_u16(h, 4, big_endian), rd_u16(h, 6, big_endian));
        // The upper bits of the link-type field carry FCS information.
        let link_type = rd_u32(h, 20, big_endian) & 0xffff;
        self.src.consume(24);
        if version != (2, 4) && version != (2, 3) {
            self.notice("unusual_capture_version", 0, || {
                format!("pcap version {}.{}", version.0, version.1)
            });
        }
        self.note_link_type(link_type);
        self.format = Format::Pcap(PcapState {
            big_endian,
            nanos,
            version,
            link_type,
        });
        Ok(())
    }

    fn next_pcap_record(&mut self) -> Result<Option<Located>, CaptureError> {
        let (be, nanos, link_type) = match &self.format {
            Format::Pcap(p) => (p.big_endian, p.nanos, p.link_type),
            Format::Pcapng(_) => return Ok(None),
        };
        let start = self.src.offset();
        let avail = self.fill(16)?;
        if avail == 0 {
            return Ok(None);
        }
        if avail < 16 {
            return Err(self.error(
                start,
                CaptureErrorKind::TruncatedRecordHeader { available: avail },
            ));
        }
        let h = self.src.peek(0, 16);
        let secs = rd_u32(h, 0, be);
        let frac = rd_u32(h, 4, be);
        let caplen = rd_u32(h, 8, be);
        let orig_len = rd_u32(h, 12, be);
        if caplen > MAX_CAPLEN {
            return Err(self.error(start, CaptureErrorKind::CaplenTooLarge { caplen }));
        }
        let need = 16 + caplen as usize;
        let avail = self.fill(need)?;
        if avail < need {
            return Err(self.error(
                start,
                CaptureErrorKind::TruncatedRecord {
                    declared: caplen,
                    available: avail - 16,
                },
            ));
        }
        let unit = if nanos { 1u32 } else { 1000 };
        let per_sec = if nanos { 1_000_000_000 } else { 1_000_000 };
        let ts = if frac < per_sec {
            Timestamp::new(secs as i64, frac * unit)
        } else {
            self.notice("timestamp_fraction_overflow", start, || {
                format!("fraction field {frac} is not below {per_sec}")
            });
            Timestamp::new(
                secs as i64 + (frac / per_sec) as i64,
                (frac % per_sec) * unit,
            )
        };
        Ok(Some(Located {
            data_from: 16,
            caplen,
            orig_len,
            ts,
            link_type,
            record_len: need,
        }))
    }
}

/// Wraps the reader in a gzip decoder when the stream starts with 1f 8b.
fn sniff_gzip(mut r: Box<dyn Read + Send>) -> std::io::Result<(Box<dyn Read + Send>, bool)> {
    let mut head = [0u8; 2];
    let mut got = 0;
    while got < 2 {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let prefix = std::io::Cursor::new(head[..got].to_vec());
    let chained: Box<dyn Read + Send> = Box::new(prefix.chain(r));
    if got == 2 && head == GZIP_MAGIC {
        Ok((Box::new(flate2::read::MultiGzDecoder::new(chained)), true))
    } else {
        Ok((chained, false))
    }
}

pub(crate) fn rd_u16(b: &[u8], at: usize, be: bool) -> u16 {
    let v = b
        .get(at..at + 2)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .unwrap_or([0; 2]);
    if be {
        u16::from_be_bytes(v)
    } else {
        u16::from_le_bytes(v)
    }
}

pub(crate) fn rd_u32(b: &[u8], at: usize, be: bool) -> u32 {
    let v = b
        .get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .unwrap_or([0; 4]);
    if be {
        u32::from_be_bytes(v)
    } else {
        u32::from_le_bytes(v)
    }
}
