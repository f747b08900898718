//! Independent WebSocket encoding (RFC 6455, RFC 7692): handshake messages,
//! frames with any length encoding, masking, permessage-deflate.

use base64::Engine as _;
use flate2::{Compress, FlushCompress, Status};
use sha1::{Digest, Sha1};

pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// RSV1: "this message is compressed" under permessage-deflate.
pub const RSV1: u8 = 0b100;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// A client's upgrade request.
pub fn upgrade_request(host: &str, path: &str, key: &str, extensions: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: wssniff-gen\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(ext) = extensions {
        s.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// The server's `101 Switching Protocols`, with the correct accept value.
pub fn upgrade_response(key: &str, extensions: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n",
        accept_key(key)
    );
    if let Some(ext) = extensions {
        s.push_str(&format!("Sec-WebSocket-Extensions: {ext}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// How the payload length is written in a frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenForm {
    /// The shortest form, as RFC 6455 requires.
    Minimal,
    /// 126 + 16 bits, even for lengths under 126 (non-minimal).
    U16,
    /// 127 + 64 bits, even for lengths under 65536 (non-minimal).
    U64,
}

/// Appends a frame header declaring `declared_len` bytes, whatever payload
/// follows: for hostile frames (length lies, 64-bit lengths with the top bit
/// set). A length that does not fit `form` is written in the next larger
/// form, so the header itself is never self-contradictory.
pub fn frame_header(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    declared_len: u64,
    form: LenForm,
) {
    out.push((u8::from(fin) << 7) | ((rsv & 0b111) << 4) | (opcode & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let form = match form {
        LenForm::Minimal if declared_len < 126 => LenForm::Minimal,
        LenForm::Minimal | LenForm::U16 if declared_len <= u16::MAX as u64 => LenForm::U16,
        _ => LenForm::U64,
    };
    match form {
        LenForm::Minimal => out.push(mask_bit | declared_len as u8),
        LenForm::U16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(declared_len as u16).to_be_bytes());
        }
        LenForm::U64 => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&declared_len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
}

/// Appends a complete frame, minimal length encoding, masked if `mask`.
pub fn frame(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    frame_raw_len(out, fin, rsv, opcode, mask, payload, LenForm::Minimal);
}

/// Appends a complete frame with the length written in `form` (at least).
pub fn frame_raw_len(
    out: &mut Vec<u8>,
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    payload: &[u8],
    form: LenForm,
) {
    frame_header(out, fin, rsv, opcode, mask, payload.len() as u64, form);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        mask_in_place(&mut out[start..], key, 0);
    }
}

/// XORs `buf` with `key`, `buf[0]` being payload byte number `offset`.
/// Masking and unmasking are the same operation.
pub fn mask_in_place(buf: &mut [u8], key: [u8; 4], offset: usize) {
    let mut k = [0u8; 8];
    for (i, b) in k.iter_mut().enumerate() {
        *b = key[(offset + i) % 4];
    }
    let k = u64::from_ne_bytes(k);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(w) ^ k).to_ne_bytes());
    }
    let done = buf.len() - buf.len() % 8;
    for (i, b) in buf.iter_mut().enumerate().skip(done) {
        *b ^= key[(offset + i) % 4];
    }
}

/// The two-byte close code followed by the UTF-8 reason.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

/// permessage-deflate compression of one message: raw deflate, sync flush,
/// the trailing `00 00 ff ff` removed (RFC 7692 7.2.1). Reusing the same
/// `compressor` (raw: `Compress::new(level, false)`) across messages is
/// context takeover.
pub fn deflate_message(compressor: &mut Compress, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    deflate_message_into(compressor, payload, &mut out);
    out
}

/// [`deflate_message`] into a reused buffer (cleared first).
pub fn deflate_message_into(compressor: &mut Compress, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.reserve(payload.len() + payload.len() / 16 + 64);
    let start_in = compressor.total_in();
    loop {
        let consumed = (compressor.total_in() - start_in) as usize;
        let input = payload.get(consumed..).unwrap_or(&[]);
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(1024));
        }
        let status = compressor.compress_vec(input, out, FlushCompress::Sync);
        let consumed = (compressor.total_in() - start_in) as usize;
        // Done when all input went in and the flush left spare room, i.e.
        // deflate had nothing more to write.
        let spare = out.capacity() - out.len();
        match status {
            Ok(Status::Ok) | Ok(Status::BufError) if consumed == payload.len() && spare > 0 => {
                break
            }
            Ok(_) => {}
            Err(_) => break, // cannot happen for in-memory deflate; never loop forever
        }
    }
    if out.ends_with(&[0x00, 0x00, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    // A flush with nothing pending may write nothing at all; the receiver
    // appends `00 00 ff ff`, which is only an empty stored block after the
    // block-header byte, so an empty message must be sent as `00`
    // (RFC 7692 7.2.3.6).
    if out.is_empty() {
        out.push(0x00);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, Decompress, FlushDecompress};

    #[test]
    fn rfc6455_sample_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn handshake_texts() {
        let req = upgrade_request(
            "h:1",
            "/chat",
            "dGhlIHNhbXBsZSBub25jZQ==",
            Some("permessage-deflate"),
        );
        let req = String::from_utf8(req).unwrap();
        assert!(req.starts_with("GET /chat HTTP/1.1\r\nHost: h:1\r\n"));
        assert!(req.contains("\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(req.contains("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n"));
        assert!(req.ends_with("\r\n\r\n"));
        let resp = String::from_utf8(upgrade_response("dGhlIHNhbXBsZSBub25jZQ==", None)).unwrap();
        assert!(resp.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(resp.contains("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(!resp.contains("Extensions"));
    }

    #[test]
    fn rfc6455_section_5_7_examples() {
        let mut out = Vec::new();
        frame(&mut out, true, 0, opcode::TEXT, None, b"Hello");
        assert_eq!(out, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        frame(
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
        frame(&mut out, false, 0, opcode::TEXT, None, b"Hel");
        frame(&mut out, true, 0, opcode::CONTINUATION, None, b"lo");
        assert_eq!(out, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);
        out.clear();
        frame(&mut out, true, 0, opcode::PING, None, b"Hello");
        assert_eq!(out, [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    }

    fn header_of(len: usize, form: LenForm) -> Vec<u8> {
        let mut out = Vec::new();
        let payload = vec![0x5a; len];
        frame_raw_len(&mut out, true, 0, opcode::BINARY, None, &payload, form);
        assert!(out.ends_with(&payload));
        out.truncate(out.len() - len);
        out
    }

    #[test]
    fn length_encodings_at_boundaries() {
        assert_eq!(header_of(0, LenForm::Minimal), [0x82, 0x00]);
        assert_eq!(header_of(125, LenForm::Minimal), [0x82, 125]);
        assert_eq!(header_of(126, LenForm::Minimal), [0x82, 126, 0x00, 126]);
        assert_eq!(header_of(65535, LenForm::Minimal), [0x82, 126, 0xff, 0xff]);
        assert_eq!(
            header_of(65536, LenForm::Minimal),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        // Forced non-minimal forms.
        assert_eq!(header_of(5, LenForm::U16), [0x82, 126, 0, 5]);
        assert_eq!(
            header_of(5, LenForm::U64),
            [0x82, 127, 0, 0, 0, 0, 0, 0, 0, 5]
        );
        assert_eq!(
            header_of(300, LenForm::U64),
            [0x82, 127, 0, 0, 0, 0, 0, 0, 1, 44]
        );
        // Too big for the asked form: the next form up.
        assert_eq!(
            header_of(65536, LenForm::U16),
            [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn hostile_header_and_flags() {
        let mut out = Vec::new();
        frame_header(
            &mut out,
            false,
            0b111,
            0x3,
            Some([1, 2, 3, 4]),
            1 << 63,
            LenForm::Minimal,
        );
        assert_eq!(out, [0x73, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
        out.clear();
        frame(&mut out, true, RSV1, opcode::TEXT, Some([0; 4]), b"");
        assert_eq!(out, [0xc1, 0x80, 0, 0, 0, 0]);
    }

    #[test]
    fn masking_with_offset_matches_bytewise() {
        let key = [0xa1, 0xb2, 0xc3, 0xd4];
        let data: Vec<u8> = (0..37u8).collect();
        for offset in 0..5 {
            let mut fast = data.clone();
            mask_in_place(&mut fast, key, offset);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[(i + offset) % 4])
                .collect();
            assert_eq!(fast, slow, "offset {offset}");
        }
    }

    fn inflate_all(messages: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut d = Decompress::new(false);
        messages
            .iter()
            .map(|m| {
                let mut input = m.clone();
                input.extend_from_slice(&[0, 0, 0xff, 0xff]);
                let mut out = Vec::with_capacity(1 << 20);
                d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                out
            })
            .collect()
    }

    #[test]
    fn deflate_round_trips_with_context_takeover() {
        let mut c = Compress::new(Compression::fast(), false);
        let m1 = b"Hello, hello, hello, hello!".to_vec();
        let m2 = m1.clone();
        let mut big = vec![0u8; 300_000];
        crate::synth::Rng::new(3).fill(&mut big);
        let z1 = deflate_message(&mut c, &m1);
        let z2 = deflate_message(&mut c, &m2);
        let z3 = deflate_message(&mut c, &big);
        let z4 = deflate_message(&mut c, b"");
        assert!(!z1.ends_with(&[0, 0, 0xff, 0xff]));
        // The second copy refers back into the first: context takeover.
        assert!(z2.len() < z1.len());
        let back = inflate_all(&[z1, z2, z3, z4]);
        assert_eq!(back[0], m1);
        assert_eq!(back[1], m2);
        assert_eq!(back[2], big);
        assert!(back[3].is_empty());
    }

    #[test]
    fn empty_message_is_a_single_zero_byte() {
        let mut c = Compress::new(Compression::fast(), false);
        assert_eq!(deflate_message(&mut c, b""), [0x00]);
        let z1 = deflate_message(&mut c, b"abc");
        assert_eq!(deflate_message(&mut c, b""), [0x00]);
        let z3 = deflate_message(&mut c, b"abc");
        let back = inflate_all(&[vec![0x00], z1, vec![0x00], z3]);
        assert_eq!(back, [&b""[..], b"abc", b"", b"abc"]);
    }

    #[test]
    fn rfc7692_hello_sample() {
        // RFC 7692 7.2.3.1: "Hello" compressed is f2 48 cd c9 c9 07 00.
        let mut c = Compress::new(Compression::default(), false);
        assert_eq!(
            deflate_message(&mut c, b"Hello"),
            [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
        );
    }
}
