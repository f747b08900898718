//! Close frame payload: status code and reason (RFC 6455 5.5.1, 7.4).

use super::utf8::Utf8Check;

/// Status code and reason of a close frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseInfo {
    /// None when the close frame had no payload (or only one byte).
    pub code: Option<u16>,
    /// The reason text; invalid UTF-8 is replaced (lossy), see `ws_close_invalid_utf8`.
    pub reason: String,
}

/// Whether a peer may send `code` in a close frame.
///
/// RFC 6455 7.4: 1000-1003 and 1007-1011 are defined; 1012-1014 are
/// registered by IANA and widely sent, so accepted; 3000-4999 are for
/// libraries and applications. 1004 is reserved, 1005/1006/1015 must never
/// be sent on the wire, and the rest of 0-2999 is reserved or unassigned.
pub fn close_code_valid(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What is wrong with a close payload, as (anomaly name, detail).
pub type CloseProblem = (&'static str, String);

/// Parses a close payload (already unmasked). Returns the close info, whether
/// the reason is valid UTF-8 (None without a reason field), and the problems found.
pub fn parse_close(payload: &[u8], problems: &mut Vec<CloseProblem>) -> (CloseInfo, Option<bool>) {
    match payload {
        [] => (
            CloseInfo {
                code: None,
                reason: String::new(),
            },
            None,
        ),
        [b] => {
            problems.push((
                "ws_close_payload_one_byte",
                format!("close payload is the single byte 0x{b:02x}; a status code needs two"),
            ));
            (
                CloseInfo {
                    code: None,
                    reason: String::new(),
                },
                None,
            )
        }
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_valid(code) {
                problems.push((
                    "ws_close_invalid_code",
                    format!("close code {code} may not be sent"),
                ));
            }
            let mut check = Utf8Check::new();
            check.feed(reason);
            let bad = check.finish(false);
            if let Some(at) = bad {
                problems.push((
                    "ws_close_invalid_utf8",
                    format!("close reason is not UTF-8 (first invalid byte at reason offset {at})"),
                ));
            }
            let reason = String::from_utf8_lossy(reason).into_owned();
            (
                CloseInfo {
                    code: Some(code),
                    reason,
                },
                Some(bad.is_none()),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_code_table() {
        let valid = [
            1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ];
        let invalid = [
            0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ];
        for c in valid {
            assert!(close_code_valid(c), "{c} should be valid");
        }
        for c in invalid {
            assert!(!close_code_valid(c), "{c} should be invalid");
        }
    }

    #[test]
    fn parse_normal_close() {
        let mut p = Vec::new();
        let (info, utf8) = parse_close(b"\x03\xe8bye", &mut p);
        assert_eq!(
            info,
            CloseInfo {
                code: Some(1000),
                reason: "bye".into()
            }
        );
        assert_eq!(utf8, Some(true));
        assert!(p.is_empty());
    }

    #[test]
    fn parse_bad_closes() {
        let mut p = Vec::new();
        let (info, utf8) = parse_close(b"\x03", &mut p);
        assert_eq!(info.code, None);
        assert_eq!(utf8, None);
        assert_eq!(p[0].0, "ws_close_payload_one_byte");

        p.clear();
        let (info, utf8) = parse_close(b"\x03\xed\xffx", &mut p);
        assert_eq!(info.code, Some(1005));
        assert_eq!(info.reason, "\u{fffd}x");
        assert_eq!(utf8, Some(false));
        let names: Vec<_> = p.iter().map(|x| x.0).collect();
        assert_eq!(names, ["ws_close_invalid_code", "ws_close_invalid_utf8"]);

        p.clear();
        let (info, _) = parse_close(b"", &mut p);
        assert_eq!(info.code, None);
        assert!(p.is_empty());
    }
}
