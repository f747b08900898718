//! The frame-chain test: does a byte window of one TCP direction parse as a
//! chain of valid WebSocket frames? Used to start decoding a connection whose
//! handshake was not captured ([`probe`]) and to find the next frame
//! boundary after bytes were lost ([`super::FrameDecoder`] in resync mode).
//!
//! Evidence, checked frame after frame from the candidate start:
//! - RSV2 and RSV3 clear; RSV1 only on the first frame of a text or binary
//!   message (permessage-deflate), never on control frames or continuations;
//! - opcode known (0, 1, 2, 8, 9, 10);
//! - control frames: FIN set, at most 125 payload bytes;
//! - fragmentation consistent: after a data frame with FIN clear the next
//!   data frame is a continuation, after one with FIN set it is not (before
//!   the first data frame of the window either may come);
//! - length in its shortest encoding, 64-bit form with its top bit clear;
//! - the mask bit the same on every frame (and, when the caller knows the
//!   direction, the expected one): masked = client to server;
//! - where segment boundaries are known, a frame that ends inside the window
//!   is not required to end at one, but every boundary a frame ends on counts
//!   as evidence ([`ChainVerdict::aligned`]).
//!
//! A start found by searching (past a skipped prefix, or after a loss) that
//! does not lie on a known segment boundary is moved on by one frame: bytes
//! of a payload can parse as a frame ending exactly at a true frame start,
//! and from there the chain holds, so the first frame of such a start is
//! never trusted.
//!
//! A chain is [`ChainVerdict::confident`] when it holds up to the end of the
//! window (the last frame may run past it, a header may be cut by it) and
//! either [`MIN_CHAINED`] or more frames end inside the window, or (at the
//! very start of a window only, where no offset was searched for) at least
//! two frames end exactly at the window's end. The search is bounded by
//! [`SEARCH_LIMIT`] bytes.

use super::header::{opcode, parse_header, HeaderParse};

/// Bytes of a direction searched for a chain start, and the most a
/// resyncing decoder buffers: 64 KiB.
pub const SEARCH_LIMIT: usize = 64 * 1024;

/// Complete frames, chained, that make a start at the beginning of a window
/// confident.
pub const MIN_CHAINED: u32 = 3;

/// Complete frames, chained, that make a start found by searching past a
/// skipped prefix confident: each offset tried is another chance for
/// random bytes to pass, so the bar is higher (on random bytes a header
/// passes the rules with probability about 1/30; five in a row that then
/// end with the window, about 1 in 10^9 per offset).
pub const MIN_CHAINED_SEARCHED: u32 = 5;

/// Frames after which the test stops walking: this much evidence is enough,
/// and it bounds the work per candidate offset.
pub const MAX_CHECKED_FRAMES: u32 = 64;

/// What the chain test found from one start offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainVerdict {
    /// Frames whose header and payload lie wholly inside the window.
    pub frames: u32,
    /// Headers read (complete frames plus one running past the end).
    pub headers: u32,
    /// Bytes of the window the complete frames cover.
    pub covered: usize,
    /// The last frame's payload runs past the window's end.
    pub open_ended: bool,
    /// Frames that ended exactly at a known segment boundary.
    pub aligned: u32,
    /// The frames are masked (client to server).
    pub masked: bool,
    /// A data frame had RSV1 set (permessage-deflate).
    pub deflate: bool,
    /// The evidence passes the threshold documented in the module.
    pub confident: bool,
}

/// Where a direction's decoding can start, as found by [`probe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MidstreamStart {
    /// Bytes skipped before the first frame (0 when the window starts on a frame).
    pub offset: usize,
    /// Client to server (its frames are masked).
    pub masked: bool,
    /// RSV1 seen: the connection uses permessage-deflate.
    pub deflate: bool,
    /// The chain test's evidence from `offset`.
    pub verdict: ChainVerdict,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Frag {
    Unknown,
    Open,
    Closed,
}

/// Runs the chain test from `window[0]`. `masked` is the expected mask bit
/// when the direction is known. `boundaries` are the window offsets where
/// TCP segments began (ascending; may be empty). Returns None as soon as a
/// header breaks a rule: no chain starts here.
pub fn check(window: &[u8], masked: Option<bool>, boundaries: &[usize]) -> Option<ChainVerdict> {
    let window = window.get(..window.len().min(SEARCH_LIMIT))?;
    let mut v = ChainVerdict {
        frames: 0,
        headers: 0,
        covered: 0,
        open_ended: false,
        aligned: 0,
        masked: masked.unwrap_or(false),
        deflate: false,
        confident: false,
    };
    let mut want_mask = masked;
    let mut frag = Frag::Unknown;
    let mut pos = 0usize;
    let mut b = boundaries.iter().peekable();
    while pos < window.len() && v.frames < MAX_CHECKED_FRAMES && v.headers < 4 * MAX_CHECKED_FRAMES
    {
        let rest = window.get(pos..)?;
        let HeaderParse::Complete(h) = parse_header(rest) else {
            break;
        };
        let rsv1 = h.rsv & 0b100 != 0;
        if h.rsv & 0b011 != 0 || opcode::is_reserved(h.opcode) || h.non_minimal || h.len_top_bit {
            return None;
        }
        let is_masked = h.mask.is_some();
        match want_mask {
            Some(m) if m != is_masked => return None,
            _ => want_mask = Some(is_masked),
        }
        if opcode::is_control(h.opcode) {
            if !h.fin || h.len > 125 || rsv1 {
                return None;
            }
        } else {
            let cont = h.opcode == opcode::CONTINUATION;
            match (frag, cont) {
                (Frag::Open, false) | (Frag::Closed, true) => return None,
                _ => {}
            }
            if cont && rsv1 {
                return None;
            }
            v.deflate |= rsv1;
            frag = if h.fin { Frag::Closed } else { Frag::Open };
        }
        v.headers += 1;
        let end = u64::try_from(pos)
            .ok()?
            .saturating_add(u64::from(h.header_len))
            .saturating_add(h.len);
        if end > window.len() as u64 {
            v.open_ended = true;
            break;
        }
        pos = end as usize;
        v.covered = pos;
        v.frames += 1;
        while b.next_if(|&&x| x < pos).is_some() {}
        if b.peek() == Some(&&pos) {
            v.aligned += 1;
        }
    }
    v.masked = want_mask.unwrap_or(false);
    v.confident = v.frames >= MIN_CHAINED;
    Some(v)
}

/// A start at the very beginning of a window: also confident on fewer
/// frames when they cover it exactly.
fn confident_at_start(v: &ChainVerdict, _len: usize) -> bool {
    // Two frames exactly covering a window were once enough: a 12-byte
    // Modbus reply in the Arkime corpus capture passes that.
    v.confident
}

/// Finds the first offset of `window` (a direction's first bytes, up to
/// [`SEARCH_LIMIT`]) from which the chain test holds confidently. The
/// caller starts a [`super::FrameDecoder`] there (with `expect_masked =
/// masked`) and reports the `offset` bytes before it as skipped.
pub fn probe(window: &[u8]) -> Option<MidstreamStart> {
    search(window, None, &[])
}

/// [`probe`] with what the caller knows: the expected mask bit and the
/// window offsets where TCP segments began.
pub fn search(window: &[u8], masked: Option<bool>, boundaries: &[usize]) -> Option<MidstreamStart> {
    search_from(window, 0, masked, boundaries, false).0
}

/// The search itself, from offset `from`. With `strict`, offset 0 is not
/// trusted as a frame start either (bytes after a loss): every start needs
/// [`MIN_CHAINED_SEARCHED`] frames. Also returns the first offset not yet
/// ruled out: an offset whose chain broke a rule inside the window stays
/// ruled out however many bytes follow, so a caller whose window grows
/// (a resyncing decoder) searches again from there, not from 0.
pub fn search_from(
    window: &[u8],
    from: usize,
    masked: Option<bool>,
    boundaries: &[usize],
    strict: bool,
) -> (Option<MidstreamStart>, usize) {
    let window = window.get(..window.len().min(SEARCH_LIMIT)).unwrap_or(&[]);
    let mut dead_upto = from;
    let mut shifted: Vec<usize> = Vec::new();
    for offset in from..window.len() {
        let Some(w) = window.get(offset..) else { break };
        // Cheap first-byte filter: RSV2/RSV3 clear, opcode known.
        let b0 = w.first().copied().unwrap_or(0);
        let verdict = if b0 & 0x30 != 0 || opcode::is_reserved(b0 & 0x0f) {
            None
        } else {
            shifted.clear();
            shifted.extend(
                boundaries
                    .iter()
                    .filter(|&&x| x >= offset)
                    .map(|&x| x - offset),
            );
            check(w, masked, &shifted)
        };
        let Some(v) = verdict else {
            if dead_upto == offset {
                dead_upto = offset + 1;
            }
            continue;
        };
        let ok = if offset == 0 && !strict {
            confident_at_start(&v, w.len())
        } else {
            v.frames >= MIN_CHAINED_SEARCHED
        };
        if ok {
            // Payload bytes can parse as a frame that ends exactly where a
            // true frame begins, and then the chain holds from there on. A
            // searched start is trusted only at a segment boundary (where
            // senders' writes begin); elsewhere its first frame is skipped.
            let searched = offset > 0 || strict;
            let offset = if searched && boundaries.binary_search(&offset).is_err() {
                let Some(HeaderParse::Complete(h)) = w.first().map(|_| parse_header(w)) else {
                    continue;
                };
                offset + usize::from(h.header_len) + h.len as usize
            } else {
                offset
            };
            let Some(v) = window.get(offset..).and_then(|w| check(w, masked, &[])) else {
                continue;
            };
            let start = MidstreamStart {
                offset,
                masked: v.masked,
                deflate: v.deflate,
                verdict: ChainVerdict {
                    confident: true,
                    ..v
                },
            };
            return (Some(start), dead_upto);
        }
    }
    (None, dead_upto)
}

#[cfg(test)]
mod tests {
    use super::super::header::encode_frame;
    use super::*;

    fn frames(masked: bool, n: usize) -> Vec<u8> {
        let key = masked.then_some([9, 8, 7, 6]);
        let mut s = Vec::new();
        for i in 0..n {
            match i % 4 {
                0 => encode_frame(&mut s, true, 0, opcode::TEXT, key, b"hello world"),
                1 => encode_frame(&mut s, false, 0b100, opcode::BINARY, key, &[i as u8; 300]),
                2 => encode_frame(&mut s, true, 0, opcode::CONTINUATION, key, &[1; 7_000]),
                _ => encode_frame(&mut s, true, 0, opcode::PING, key, b""),
            }
        }
        s
    }

    /// A small xorshift, so the false-positive test covers many seeds
    /// deterministically.
    fn random(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn a_chain_of_frames_is_found_at_every_start_inside_a_frame() {
        for masked in [false, true] {
            let s = frames(masked, 8);
            let v = check(&s, None, &[]).expect("chain");
            assert!(v.confident);
            assert_eq!((v.frames, v.masked, v.deflate), (8, masked, true));
            assert_eq!(v.covered, s.len());
            // Starting anywhere inside a frame finds the next one.
            let m = if masked { 4 } else { 0 };
            let second = 2 + m + 11;
            let third = second + 4 + m + 300;
            let mut starts = Vec::new();
            let mut p = 0;
            while let Some(HeaderParse::Complete(h)) = s.get(p..).map(parse_header) {
                starts.push(p);
                p += usize::from(h.header_len) + h.len as usize;
            }
            assert_eq!(starts[1..3], [second, third]);
            for cut in 1..third {
                let st = probe(&s[cut..]).expect("start");
                // A searched start off a segment boundary skips its first
                // frame: the second true frame at or after the cut.
                let found = cut + st.offset;
                if st.offset == 0 {
                    // The start of a window is trusted: here a payload
                    // piece that parses as a frame converging on the chain.
                    continue;
                }
                let next = starts.iter().position(|&x| x >= cut).expect("frame");
                assert!(starts.contains(&found), "cut {cut} found {found}");
                assert!(
                    found == starts[next] || found == starts[next + 1],
                    "cut {cut} found {found}"
                );
                // With the cut known as a segment start, the first true
                // frame after it is kept... unless it does not start there.
                let st = search(&s[cut..], None, &[0]).expect("start");
                assert!(starts.contains(&(cut + st.offset)));
                assert_eq!(st.masked, masked);
            }
        }
    }

    #[test]
    fn rule_breaking_headers_are_rejected() {
        let bad: &[&[u8]] = &[
            &[0xa1, 0x00],             // RSV2
            &[0x83, 0x00],             // reserved opcode
            &[0x89, 0x7e, 0x00, 0x7e], // control > 125 (and 16-bit form)
            &[0x09, 0x00],             // control without FIN
            &[0xc9, 0x00],             // RSV1 on ping
            &[0xc0, 0x00],             // RSV1 on continuation
            &[0x82, 0x7e, 0x00, 0x05], // non-minimal length
            &[0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0],
        ];
        assert!(check(&[0xc1, 0x00], None, &[]).is_some());
        for b in bad {
            assert_eq!(check(b, None, &[]), None, "{b:02x?}");
        }
        // Mask bit must stay the same, and match the expected one.
        assert_eq!(
            check(&[0x81, 0x00, 0x81, 0x80, 1, 2, 3, 4], None, &[]),
            None
        );
        assert_eq!(check(&[0x81, 0x00], Some(true), &[]), None);
        // Fragmentation order.
        assert_eq!(check(&[0x01, 0x00, 0x81, 0x00], None, &[]), None);
        assert_eq!(check(&[0x81, 0x00, 0x80, 0x00], None, &[]), None);
        assert!(check(&[0x80, 0x00, 0x01, 0x00, 0x89, 0x00, 0x80, 0x00], None, &[]).is_some());
    }

    #[test]
    fn thresholds() {
        let mut two = Vec::new();
        encode_frame(&mut two, true, 0, opcode::TEXT, None, b"ab");
        encode_frame(&mut two, true, 0, opcode::TEXT, None, b"cd");
        let v = check(&two, None, &[0, 4, 8]).expect("chain");
        assert!(!v.confident);
        assert_eq!(v.aligned, 2);
        // Two frames exactly covering a whole window are not enough (a
        // 12-byte Modbus reply passes that).
        assert_eq!(probe(&two), None);
        let mut three = two.clone();
        encode_frame(&mut three, true, 0, opcode::TEXT, None, b"ef");
        assert_eq!(probe(&three).map(|s| s.offset), Some(0));
        // Three are not enough when searched past a skipped prefix.
        let mut skewed = vec![0x00];
        skewed.extend_from_slice(&three);
        assert_eq!(probe(&skewed), None);
        // One frame alone is never enough.
        assert_eq!(probe(&two[..4]), None);
    }

    #[test]
    fn no_chain_in_random_bytes_tls_ssh_or_http() {
        let mut hits = 0;
        for seed in 0..2000u64 {
            let len = 16 + (seed as usize * 37) % 4000;
            if probe(&random(seed, len)).is_some() {
                hits += 1;
            }
        }
        assert_eq!(hits, 0, "random windows taken for WebSocket");
        // 64 KiB windows: the whole search bound.
        for seed in 0..20u64 {
            assert_eq!(
                probe(&random(seed + 10_000, SEARCH_LIMIT)),
                None,
                "seed {seed}"
            );
        }
        let mut tls = vec![
            0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
        ];
        tls.extend(random(7, 500));
        tls.extend_from_slice(&[0x17, 0x03, 0x03, 0x00, 0x40]);
        tls.extend(random(8, 64));
        assert_eq!(probe(&tls), None);
        let ssh = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n\x00\x00\x05\xdc\x06\x14";
        assert_eq!(probe(ssh), None);
        let http = b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n";
        assert_eq!(probe(http), None);
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello";
        assert_eq!(probe(resp), None);
    }

    #[test]
    fn offsets_ruled_out_stay_ruled_out() {
        let mut s = vec![0x83u8, 0x00, 0x83];
        let body = frames(true, 6);
        s.extend_from_slice(&body);
        let (found, dead) = search_from(&s, 0, Some(true), &[], true);
        // The first frame of a start off a segment boundary is skipped.
        assert_eq!(found.map(|f| f.offset), Some(20));
        assert_eq!(dead, 3, "offsets 0 to 2 break a rule");
        let (found, _) = search_from(&s, 0, Some(true), &[3], true);
        assert_eq!(found.map(|f| f.offset), Some(3));
        let (found, dead) = search_from(&s[..40], 0, Some(true), &[], true);
        assert_eq!(found, None);
        assert_eq!(dead, 3);
        assert_eq!(
            search_from(&s, dead, Some(true), &[3], true)
                .0
                .map(|f| f.offset),
            Some(3)
        );
    }

    #[test]
    fn search_is_bounded() {
        // A chain that starts only past the bound is not found.
        let mut s = vec![0x83u8; SEARCH_LIMIT];
        s.extend(frames(false, 4));
        assert_eq!(probe(&s), None);
    }
}
