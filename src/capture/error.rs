//! Fatal capture errors: each failure mode its own kind, with the byte offset.

use std::fmt;

/// A capture that cannot be read further. Every packet before `offset` has
/// already been yielded when this is returned.
#[derive(Debug)]
pub struct CaptureError {
    /// The name the reader was opened with (a path, or "-" for stdin).
    pub path: String,
    /// Offset of the record/block (or file header) that failed, in the stream
    /// the parser sees: for gzip input that is the decompressed stream.
    pub offset: u64,
    /// What went wrong.
    pub kind: CaptureErrorKind,
    /// True when the input was gzip-compressed, so `offset` counts decompressed bytes.
    pub decompressed: bool,
}

/// The failure modes of reading a capture, each with the values that show it.
#[derive(Debug)]
pub enum CaptureErrorKind {
    /// Reading the input failed.
    Io(std::io::Error),
    /// The gzip stream ended before its end marker.
    TruncatedGzip,
    /// The gzip stream is corrupt.
    CorruptGzip(std::io::Error),
    /// The input is 0 bytes long.
    Empty,
    /// The first four bytes are not a pcap, pcapng or gzip magic number.
    BadMagic {
        /// The four bytes found.
        bytes: [u8; 4],
    },
    /// The input ended inside the pcap file header or the first pcapng block header.
    TruncatedFileHeader {
        /// Bytes the header needs.
        needed: usize,
        /// Bytes present.
        available: usize,
    },
    /// The input ended inside a pcap record header (16 bytes).
    TruncatedRecordHeader {
        /// Bytes that remained.
        available: usize,
    },
    /// The input ended inside a pcap record's data.
    TruncatedRecord {
        /// Captured length the record header declares.
        declared: u32,
        /// Bytes that remained.
        available: usize,
    },
    /// A pcap record declares more captured bytes than the reader's limit (`MAX_CAPLEN`).
    CaplenTooLarge {
        /// Captured length the record header declares.
        caplen: u32,
    },
    /// The input ended inside a pcapng block header (8 bytes).
    TruncatedBlockHeader {
        /// Bytes that remained.
        available: usize,
    },
    /// The input ended inside a pcapng block.
    TruncatedBlock {
        /// Block length the header declares.
        declared: u32,
        /// Bytes that remained.
        available: usize,
    },
    /// A pcapng block length is not a multiple of 4 of at least 12.
    BadBlockLength {
        /// The block type.
        block_type: u32,
        /// The declared block length.
        len: u32,
    },
    /// A pcapng block declares more bytes than the reader's limit (`MAX_BLOCK`).
    BlockTooLarge {
        /// The block type.
        block_type: u32,
        /// The declared block length.
        len: u32,
    },
    /// A pcapng block's trailing length differs from its leading one.
    BlockTrailerMismatch {
        /// Length at the start of the block.
        header: u32,
        /// Length at the end of the block.
        trailer: u32,
    },
    /// A Section Header Block's byte-order magic is not 1a2b3c4d in either byte order.
    BadByteOrderMagic {
        /// The four bytes found.
        bytes: [u8; 4],
    },
    /// A block's fixed fields do not fit in its declared length.
    BlockTooShort {
        /// The block type.
        block_type: u32,
        /// The declared block length.
        len: u32,
        /// Bytes its fixed fields need.
        needed: u32,
    },
    /// A packet block names an interface that its section did not describe.
    UnknownInterface {
        /// The interface id in the packet block.
        id: u32,
        /// Interfaces described in the section so far.
        known: usize,
    },
    /// A packet block comes before any Interface Description Block.
    PacketBeforeInterface {
        /// The block type.
        block_type: u32,
    },
    /// A packet block's captured length exceeds the data its block holds.
    PacketExceedsBlock {
        /// The captured length declared.
        caplen: u32,
        /// Bytes of data the block holds.
        room: u32,
    },
    /// A section describes more interfaces than the reader's limit.
    TooManyInterfaces {
        /// The limit.
        limit: usize,
    },
}

impl CaptureErrorKind {
    /// Short name of the failure, used before "at byte offset".
    fn what(&self) -> &'static str {
        use CaptureErrorKind::*;
        match self {
            Io(_) => "read error",
            TruncatedGzip => "truncated gzip stream",
            CorruptGzip(_) => "corrupt gzip stream",
            Empty => "empty file",
            BadMagic { .. } => "not a pcap or pcapng capture",
            TruncatedFileHeader { .. } => "truncated file header",
            TruncatedRecordHeader { .. } => "truncated record header",
            TruncatedRecord { .. } => "truncated record",
            CaplenTooLarge { .. } => "record too large",
            TruncatedBlockHeader { .. } => "truncated block header",
            TruncatedBlock { .. } => "truncated block",
            BadBlockLength { .. } => "bad block length",
            BlockTooLarge { .. } => "block too large",
            BlockTrailerMismatch { .. } => "block trailer mismatch",
            BadByteOrderMagic { .. } => "bad section header",
            BlockTooShort { .. } => "block too short",
            UnknownInterface { .. } => "unknown interface",
            PacketBeforeInterface { .. } => "packet before any interface",
            PacketExceedsBlock { .. } => "packet longer than its block",
            TooManyInterfaces { .. } => "too many interfaces",
        }
    }
}

impl fmt::Display for CaptureErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use CaptureErrorKind::*;
        match self {
            Io(e) => write!(f, "{e}"),
            TruncatedGzip => f.write_str("the compressed file ended early (was it still being written?)"),
            CorruptGzip(e) => write!(f, "{e}"),
            Empty => f.write_str("0 bytes: not a capture"),
            BadMagic { bytes } => write!(
                f,
                "magic bytes {:02x} {:02x} {:02x} {:02x} are neither pcap (a1b2c3d4, a1b23c4d), pcapng (0a0d0d0a) nor gzip (1f8b)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
            TruncatedFileHeader { needed, available } => {
                write!(f, "file header needs {needed} bytes, only {available} present")
            }
            TruncatedRecordHeader { available } => {
                write!(f, "record header needs 16 bytes, only {available} remain")
            }
            TruncatedRecord { declared, available } => {
                write!(f, "record header says {declared} bytes, only {available} remain")
            }
            CaplenTooLarge { caplen } => write!(
                f,
                "record says {caplen} captured bytes, more than the limit of {} (corrupt file?)",
                super::MAX_CAPLEN
            ),
            TruncatedBlockHeader { available } => {
                write!(f, "block header needs 8 bytes, only {available} remain")
            }
            TruncatedBlock { declared, available } => {
                write!(f, "block header says {declared} bytes, only {available} remain")
            }
            BadBlockLength { block_type, len } => write!(
                f,
                "block type 0x{block_type:08x} has length {len}, which is not a multiple of 4 of at least 12"
            ),
            BlockTooLarge { block_type, len } => write!(
                f,
                "block type 0x{block_type:08x} says {len} bytes, more than the limit of {} (corrupt file?)",
                super::MAX_BLOCK
            ),
            BlockTrailerMismatch { header, trailer } => {
                write!(f, "block length {header} at the start but {trailer} at the end")
            }
            BadByteOrderMagic { bytes } => write!(
                f,
                "byte-order magic {:02x} {:02x} {:02x} {:02x} is not 1a2b3c4d in either byte order",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
            BlockTooShort { block_type, len, needed } => write!(
                f,
                "block type 0x{block_type:08x} is {len} bytes, its fixed fields need {needed}"
            ),
            UnknownInterface { id, known } => write!(
                f,
                "packet names interface {id}, but only {known} interface(s) were described in this section"
            ),
            PacketBeforeInterface { block_type } => write!(
                f,
                "packet block type 0x{block_type:08x} before any Interface Description Block"
            ),
            PacketExceedsBlock { caplen, room } => {
                write!(f, "captured length {caplen} but the block holds only {room} bytes of data")
            }
            TooManyInterfaces { limit } => {
                write!(f, "more than {limit} interfaces in one section (corrupt file?)")
            }
        }
    }
}

impl CaptureError {
    /// True when the input ended in the middle of a header, record or block
    /// (a capture still being written, or cut by a copy): exit status 3.
    /// Everything else means corrupt or unreadable input: exit status 1.
    pub fn is_truncation(&self) -> bool {
        use CaptureErrorKind::*;
        matches!(
            self.kind,
            TruncatedGzip
                | TruncatedFileHeader { .. }
                | TruncatedRecordHeader { .. }
                | TruncatedRecord { .. }
                | TruncatedBlockHeader { .. }
                | TruncatedBlock { .. }
        )
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let of = if self.decompressed {
            " of the decompressed stream"
        } else {
            ""
        };
        write!(
            f,
            "{}: {} at byte offset {}{}: {}",
            self.path,
            self.kind.what(),
            self.offset,
            of,
            self.kind
        )
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            CaptureErrorKind::Io(e) | CaptureErrorKind::CorruptGzip(e) => Some(e),
            _ => None,
        }
    }
}
