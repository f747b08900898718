//! Comparing what the peer sent with what was recorded.

use super::wire::Received;
use crate::session::opcode_name;
use regex::Regex;
use serde::Serialize;
use std::borrow::Cow;

/// What volatile text parts are replaced with, on both sides, before comparing.
pub const IGNORED_TOKEN: &str = "<ignored>";
const EXCERPT_BYTES: usize = 32;

/// One recorded message as the comparison sees it.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// Opcode, 0..=15.
    pub opcode: u8,
    /// Decoded payload as recorded.
    pub payload: &'a [u8],
}

/// Result of comparing the two message sequences.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Comparison {
    /// Messages recorded in the direction compared.
    pub recorded: usize,
    /// Messages received from the peer.
    pub received: usize,
    /// Messages equal at the same index (after `--ignore` masking).
    pub equal: usize,
    /// Messages that differ at the same index (opcode, payload, missing or extra).
    pub different: usize,
    /// Received messages whose payload was not kept (receive budget): not compared.
    pub not_compared: usize,
    /// Every message compared equal and none was left uncompared.
    pub same: bool,
    /// The first difference, by index; None when there is none.
    pub first_difference: Option<Difference>,
}

/// Where the two sequences first differ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// Index among the direction's messages, from 0.
    pub index: usize,
    /// `opcode`, `payload`, `missing` (recorded, not received) or `extra`.
    pub kind: &'static str,
    /// First differing byte of the (masked) payloads, for `payload`.
    pub byte_offset: Option<usize>,
    /// The recorded message at that index; None when `extra`.
    pub recorded: Option<Side>,
    /// The received message at that index; None when `missing`.
    pub received: Option<Side>,
}

/// One side of a [`Difference`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Opcode name (`text`, `binary`, ...).
    pub opcode: String,
    /// Payload length in bytes.
    pub len: usize,
    /// Bytes around the difference: quoted text, or hex for binary.
    pub excerpt: String,
}

/// Compares recorded and received messages index by index.
pub fn compare(expected: &[Expected<'_>], received: &[Received], ignore: &[Regex]) -> Comparison {
    let mut c = Comparison {
        recorded: expected.len(),
        received: received.len(),
        ..Default::default()
    };
    for i in 0..expected.len().max(received.len()) {
        let diff = match (expected.get(i), received.get(i)) {
            (Some(e), Some(r)) if r.dropped => {
                let _ = e;
                c.not_compared += 1;
                None
            }
            (Some(e), Some(r)) => {
                let a = masked(e.opcode, e.payload, ignore);
                let b = masked(r.opcode, &r.payload, ignore);
                if e.opcode != r.opcode {
                    Some(Difference {
                        index: i,
                        kind: "opcode",
                        byte_offset: None,
                        recorded: Some(side(e.opcode, &a, 0)),
                        received: Some(side(r.opcode, &b, 0)),
                    })
                } else if a != b {
                    let at = first_mismatch(&a, &b);
                    Some(Difference {
                        index: i,
                        kind: "payload",
                        byte_offset: Some(at),
                        recorded: Some(side(e.opcode, &a, at)),
                        received: Some(side(r.opcode, &b, at)),
                    })
                } else {
                    c.equal += 1;
                    None
                }
            }
            (Some(e), None) => Some(Difference {
                index: i,
                kind: "missing",
                byte_offset: None,
                recorded: Some(side(e.opcode, e.payload, 0)),
                received: None,
            }),
            (None, Some(r)) => Some(Difference {
                index: i,
                kind: "extra",
                byte_offset: None,
                recorded: None,
                received: Some(side(r.opcode, &r.payload, 0)),
            }),
            (None, None) => None,
        };
        if let Some(d) = diff {
            c.different += 1;
            if c.first_difference.is_none() {
                c.first_difference = Some(d);
            }
        }
    }
    c.same = c.different == 0 && c.not_compared == 0;
    c
}

/// Text payloads with every `--ignore` match replaced by [`IGNORED_TOKEN`].
fn masked<'a>(opcode: u8, payload: &'a [u8], ignore: &[Regex]) -> Cow<'a, [u8]> {
    if opcode != 1 || ignore.is_empty() {
        return Cow::Borrowed(payload);
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return Cow::Borrowed(payload);
    };
    let mut out = Cow::Borrowed(text);
    for re in ignore {
        if let Cow::Owned(s) = re.replace_all(&out, IGNORED_TOKEN) {
            out = Cow::Owned(s);
        }
    }
    match out {
        Cow::Borrowed(_) => Cow::Borrowed(payload),
        Cow::Owned(s) => Cow::Owned(s.into_bytes()),
    }
}

fn first_mismatch(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()))
}

fn side(opcode: u8, payload: &[u8], at: usize) -> Side {
    Side {
        opcode: opcode_name(opcode).to_string(),
        len: payload.len(),
        excerpt: excerpt(opcode, payload, at),
    }
}

/// A short view of `payload` starting a little before `at`.
pub fn excerpt(opcode: u8, payload: &[u8], at: usize) -> String {
    let start = at.saturating_sub(8).min(payload.len());
    let end = (start + EXCERPT_BYTES).min(payload.len());
    let window = payload.get(start..end).unwrap_or_default();
    let prefix = if start > 0 { "…" } else { "" };
    let suffix = if end < payload.len() { "…" } else { "" };
    if opcode == 1 {
        let text = String::from_utf8_lossy(window);
        return format!("{prefix}{text:?}{suffix}");
    }
    let hex: Vec<String> = window.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}{suffix}", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rx(opcode: u8, p: &[u8]) -> Received {
        Received {
            opcode,
            payload: p.to_vec(),
            compressed: false,
            partial: false,
            dropped: false,
        }
    }

    #[test]
    fn equal_sequences_are_same() {
        let exp = [
            Expected {
                opcode: 1,
                payload: b"a",
            },
            Expected {
                opcode: 2,
                payload: b"\x00",
            },
        ];
        let c = compare(&exp, &[rx(1, b"a"), rx(2, b"\x00")], &[]);
        assert!(c.same);
        assert_eq!((c.equal, c.different), (2, 0));
        assert_eq!(c.first_difference, None);
    }

    #[test]
    fn first_difference_has_offset_and_excerpts() {
        let exp = [
            Expected {
                opcode: 1,
                payload: b"same",
            },
            Expected {
                opcode: 1,
                payload: b"hello world",
            },
            Expected {
                opcode: 1,
                payload: b"missing",
            },
        ];
        let c = compare(&exp, &[rx(1, b"same"), rx(1, b"hello there")], &[]);
        assert!(!c.same);
        assert_eq!(c.different, 2);
        let d = c.first_difference.unwrap();
        assert_eq!((d.index, d.kind, d.byte_offset), (1, "payload", Some(6)));
        assert_eq!(d.recorded.unwrap().excerpt, "\"hello world\"");
        assert_eq!(d.received.unwrap().excerpt, "\"hello there\"");
    }

    #[test]
    fn opcode_and_extra_are_differences() {
        let exp = [Expected {
            opcode: 1,
            payload: b"x",
        }];
        let c = compare(&exp, &[rx(2, b"x"), rx(9, b"")], &[]);
        assert_eq!(c.first_difference.unwrap().kind, "opcode");
        assert_eq!(c.different, 2);
        assert_eq!(c.received, 2);
    }

    #[test]
    fn ignore_masks_volatile_text_on_both_sides() {
        let re = vec![Regex::new(r#""ts":\d+"#).unwrap()];
        let exp = [Expected {
            opcode: 1,
            payload: br#"{"ts":111,"v":1}"#,
        }];
        assert!(compare(&exp, &[rx(1, br#"{"ts":999999,"v":1}"#)], &re).same);
        assert!(!compare(&exp, &[rx(1, br#"{"ts":999999,"v":2}"#)], &re).same);
        assert!(!compare(&exp, &[rx(1, br#"{"ts":999999,"v":1}"#)], &[]).same);
        // Binary payloads are never masked.
        let bin = [Expected {
            opcode: 2,
            payload: br#""ts":1"#,
        }];
        assert!(!compare(&bin, &[rx(2, br#""ts":2"#)], &re).same);
    }

    #[test]
    fn binary_excerpt_is_hex() {
        assert_eq!(excerpt(2, &[0, 1, 0xff], 0), "00 01 ff");
        let long = vec![7u8; 100];
        let e = excerpt(2, &long, 50);
        assert!(e.starts_with('…') && e.ends_with('…'), "{e}");
    }
}
