//! Frame header parsing and encoding (RFC 6455 section 5.2).

/// Frame opcodes.
pub mod opcode {
    /// Continues a fragmented message.
    pub const CONTINUATION: u8 = 0;
    /// First frame of a text (UTF-8) message.
    pub const TEXT: u8 = 1;
    /// First frame of a binary message.
    pub const BINARY: u8 = 2;
    /// Connection close (control).
    pub const CLOSE: u8 = 8;
    /// Ping (control).
    pub const PING: u8 = 9;
    /// Pong (control).
    pub const PONG: u8 = 10;

    /// Stable lower-case name of an opcode; only the low 4 bits count.
    pub fn name(op: u8) -> &'static str {
        crate::types::Opcode::new(op).name()
    }

    /// Close, ping, pong and the reserved control opcodes 11-15.
    pub fn is_control(op: u8) -> bool {
        op & 0x08 != 0
    }

    /// Opcodes RFC 6455 leaves undefined (3-7 and 11-15).
    pub fn is_reserved(op: u8) -> bool {
        matches!(op & 0x0f, 3..=7 | 11..=15)
    }
}

/// The longest possible header: 2 fixed + 8 length + 4 mask bytes.
pub const MAX_HEADER_LEN: usize = 14;

/// One decoded frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: the last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 as three bits: RSV1 = 0b100, RSV2 = 0b010, RSV3 = 0b001.
    pub rsv: u8,
    /// Opcode (see [`opcode`]), 4 bits.
    pub opcode: u8,
    /// Masking key, present when the mask bit is set.
    pub mask: Option<[u8; 4]>,
    /// Declared payload length (as on the wire, even with the top bit set).
    pub len: u64,
    /// Bytes the header occupies on the wire (2..=14).
    pub header_len: u8,
    /// The length used a longer encoding than needed (e.g. 126 form for 5 bytes).
    pub non_minimal: bool,
    /// The 64-bit length form had its most significant bit set (forbidden).
    pub len_top_bit: bool,
}

/// Result of [`parse_header`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderParse {
    /// The whole header was in `buf`.
    Complete(FrameHeader),
    /// `buf` holds only a prefix of a header.
    NeedMore,
}

/// Parses the header at the start of `buf`; bytes after the header are ignored.
pub fn parse_header(buf: &[u8]) -> HeaderParse {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return HeaderParse::NeedMore,
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7f;
    let ext_len = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext_len + if masked { 4 } else { 0 };
    let Some(rest) = buf.get(2..header_len) else {
        return HeaderParse::NeedMore;
    };
    let (len_bytes, mask_bytes) = rest.split_at(ext_len);
    let len = match len7 {
        126 | 127 => len_bytes
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        n => u64::from(n),
    };
    let non_minimal = match len7 {
        126 => len < 126,
        127 => len <= 0xffff,
        _ => false,
    };
    let mask = match mask_bytes {
        [a, b, c, d] => Some([*a, *b, *c, *d]),
        _ => None,
    };
    HeaderParse::Complete(FrameHeader {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 0x07,
        opcode: b0 & 0x0f,
        mask,
        len,
        header_len: header_len as u8,
        non_minimal,
        len_top_bit: len7 == 127 && len >> 63 != 0,
    })
}

/// Appends a header with the shortest length encoding.
pub fn encode_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
) {
    out.push(u8::from(fin) << 7 | (rsv & 0x07) << 4 | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len < 126 {
        out.push(mask_bit | len as u8);
    } else if len <= 0xffff {
        out.push(mask_bit | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&len.to_be_bytes());
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends a whole frame; with a mask, the appended payload copy is masked.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    encode_header(out, fin, rsv, opcode, mask, payload.len() as u64);
    match mask {
        // Masking is its own inverse.
        Some(key) => super::mask::unmask_extend(out, payload, key, 0),
        None => out.extend_from_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(buf: &[u8]) -> FrameHeader {
        match parse_header(buf) {
            HeaderParse::Complete(h) => h,
            HeaderParse::NeedMore => panic!("expected a complete header from {buf:02x?}"),
        }
    }

    #[test]
    fn length_boundaries_round_trip_and_every_prefix_needs_more() {
        let lens = [0u64, 1, 125, 126, 127, 65535, 65536, 1 << 32, u64::MAX >> 1];
        for &len in &lens {
            for mask in [None, Some([1, 2, 3, 4])] {
                let mut buf = Vec::new();
                encode_header(&mut buf, true, 0b101, opcode::BINARY, mask, len);
                let h = complete(&buf);
                assert_eq!(h.len, len);
                assert_eq!(h.mask, mask);
                assert_eq!(h.rsv, 0b101);
                assert_eq!(h.opcode, opcode::BINARY);
                assert!(h.fin);
                assert!(!h.non_minimal);
                assert!(!h.len_top_bit);
                assert_eq!(usize::from(h.header_len), buf.len());
                let expected_len =
                    2 + match len {
                        0..=125 => 0,
                        126..=65535 => 2,
                        _ => 8,
                    } + if mask.is_some() { 4 } else { 0 };
                assert_eq!(buf.len(), expected_len);
                for cut in 0..buf.len() {
                    assert_eq!(
                        parse_header(&buf[..cut]),
                        HeaderParse::NeedMore,
                        "len {len} cut {cut}"
                    );
                }
                // Trailing payload bytes do not change the header.
                buf.extend_from_slice(b"payload");
                assert_eq!(complete(&buf), h);
            }
        }
    }

    #[test]
    fn non_minimal_encodings_are_flagged() {
        let h = complete(&[0x81, 126, 0, 5]);
        assert_eq!((h.len, h.non_minimal, h.header_len), (5, true, 4));
        let h = complete(&[0x81, 126, 0, 126]);
        assert!(!h.non_minimal);
        let h = complete(&[0x82, 127, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        assert_eq!((h.len, h.non_minimal, h.header_len), (65535, true, 10));
        let h = complete(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
        assert_eq!((h.len, h.non_minimal), (65536, false));
    }

    #[test]
    fn top_bit_is_flagged() {
        let h = complete(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1]);
        assert!(h.len_top_bit);
        assert_eq!(h.len, (1 << 63) | 1);
        assert!(!complete(&[0x82, 127, 0x7f, 0, 0, 0, 0, 0, 0, 1]).len_top_bit);
    }

    #[test]
    fn flags_and_opcodes() {
        let h = complete(&[0x70 | 0x09, 0x80, 9, 8, 7, 6]);
        assert!(!h.fin);
        assert_eq!(h.rsv, 0b111);
        assert_eq!(h.opcode, opcode::PING);
        assert_eq!(h.mask, Some([9, 8, 7, 6]));
        assert_eq!(h.header_len, 6);
        assert_eq!(opcode::name(0), "continuation");
        assert_eq!(opcode::name(8), "close");
        assert_eq!(opcode::name(10), "pong");
        assert_eq!(opcode::name(3), "reserved-3");
        assert_eq!(opcode::name(15), "reserved-15");
        assert!(opcode::is_control(8) && opcode::is_control(11));
        assert!(!opcode::is_control(2));
        assert!(opcode::is_reserved(3) && opcode::is_reserved(11));
        assert!(!opcode::is_reserved(10) && !opcode::is_reserved(0));
    }

    #[test]
    fn encode_frame_masks_payload() {
        let mut out = Vec::new();
        // RFC 6455 5.7: a masked "Hello".
        encode_frame(
            &mut out,
            true,
            0,
            opcode::TEXT,
            Some([0x37, 0xfa, 0x21, 0x3d]),
            b"Hello",
        );
        assert_eq!(
            out,
            [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
        out.clear();
        encode_frame(&mut out, true, 0, opcode::TEXT, None, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }
}
