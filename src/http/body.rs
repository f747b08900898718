//! Skipping HTTP/1.x message bodies (RFC 9112 section 6) without keeping them.

use super::head::Header;

/// How a body is delimited, and how much of it is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    None,
    Length(u64),
    Chunked(Chunked),
    /// Everything until the connection closes (responses only).
    UntilClose,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    Size {
        value: u64,
        digits: u8,
        in_ext: bool,
    },
    Data(u64),
    /// The CRLF after a chunk's data.
    DataEnd,
    Trailer {
        line_empty: bool,
    },
}

const CHUNK_START: Chunked = Chunked::Size {
    value: 0,
    digits: 0,
    in_ext: false,
};

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyStep {
    /// The body ended after `consumed` bytes of the data.
    Done {
        consumed: usize,
    },
    /// All the data belonged to the body, which goes on.
    More,
    Malformed(String),
}

fn content_length(headers: &[Header]) -> Result<Option<u64>, String> {
    let mut found: Option<u64> = None;
    for h in headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        // A repeated or list-valued Content-Length is fine if every value agrees.
        for part in h.value.split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = std::str::from_utf8(part)
                .ok()
                .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| {
                    format!("bad Content-Length {:?}", String::from_utf8_lossy(&h.value))
                })?;
            if found.is_some_and(|f| f != n) {
                return Err("conflicting Content-Length values".into());
            }
            found = Some(n);
        }
    }
    Ok(found)
}

fn last_coding_is_chunked(headers: &[Header]) -> Option<bool> {
    let mut codings = headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("transfer-encoding"))
        .peekable();
    codings.peek()?;
    let last = codings
        .filter_map(|h| {
            h.value
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
                .rfind(|t| !t.is_empty())
        })
        .next_back();
    Some(last.is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")))
}

pub(crate) fn request_body(headers: &[Header]) -> Result<Body, String> {
    match last_coding_is_chunked(headers) {
        Some(true) => Ok(Body::Chunked(CHUNK_START)),
        Some(false) => Err("request Transfer-Encoding does not end in chunked".into()),
        None => Ok(content_length(headers)?.map_or(Body::None, Body::Length)),
    }
}

/// `head_request`: the request was HEAD, so the response has no body whatever it says.
pub(crate) fn response_body(
    status: u16,
    headers: &[Header],
    head_request: bool,
) -> Result<Body, String> {
    if head_request || status < 200 || status == 204 || status == 304 {
        return Ok(Body::None);
    }
    match last_coding_is_chunked(headers) {
        Some(true) => Ok(Body::Chunked(CHUNK_START)),
        Some(false) => Ok(Body::UntilClose),
        None => Ok(content_length(headers)?.map_or(Body::UntilClose, Body::Length)),
    }
}

impl Body {
    /// Skips body bytes at the start of `data`.
    pub fn skip(&mut self, data: &[u8]) -> BodyStep {
        match self {
            Body::None => BodyStep::Done { consumed: 0 },
            Body::UntilClose => BodyStep::More,
            Body::Length(left) => {
                let n = (*left).min(data.len() as u64);
                *left -= n;
                if *left == 0 {
                    BodyStep::Done {
                        consumed: n as usize,
                    }
                } else {
                    BodyStep::More
                }
            }
            Body::Chunked(state) => skip_chunked(state, data),
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    char::from(b).to_digit(16).map(u64::from)
}

fn skip_chunked(state: &mut Chunked, data: &[u8]) -> BodyStep {
    let mut i = 0usize;
    while i < data.len() {
        if let Chunked::Data(left) = state {
            let n = (*left).min((data.len() - i) as u64);
            *left -= n;
            i += n as usize;
            if *left == 0 {
                *state = Chunked::DataEnd;
            }
            continue;
        }
        let Some(&b) = data.get(i) else { break };
        i += 1;
        match state {
            Chunked::Size {
                value,
                digits,
                in_ext,
            } => match (b, hex(b)) {
                (_, Some(d)) if !*in_ext => {
                    if *digits >= 16 {
                        return BodyStep::Malformed("chunk size longer than 16 hex digits".into());
                    }
                    *value = *value << 4 | d;
                    *digits += 1;
                }
                (b'\n', _) => {
                    if *digits == 0 {
                        return BodyStep::Malformed("chunk size line without a size".into());
                    }
                    *state = if *value == 0 {
                        Chunked::Trailer { line_empty: true }
                    } else {
                        Chunked::Data(*value)
                    };
                }
                (b'\r', _) => {}
                (b';' | b' ' | b'\t', _) => *in_ext = true,
                _ if *in_ext => {}
                _ => {
                    return BodyStep::Malformed(format!(
                        "unexpected byte 0x{b:02x} in a chunk size"
                    ))
                }
            },
            Chunked::DataEnd => match b {
                b'\r' => {}
                b'\n' => *state = CHUNK_START,
                _ => return BodyStep::Malformed("chunk data longer than its size".into()),
            },
            Chunked::Trailer { line_empty } => match b {
                b'\r' => {}
                b'\n' if *line_empty => return BodyStep::Done { consumed: i },
                b'\n' => *line_empty = true,
                _ => *line_empty = false,
            },
            Chunked::Data(_) => {}
        }
    }
    BodyStep::More
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdrs(list: &[(&str, &str)]) -> Vec<Header> {
        list.iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: v.as_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn delimitation_rules() {
        assert_eq!(request_body(&hdrs(&[])), Ok(Body::None));
        assert_eq!(
            request_body(&hdrs(&[("Content-Length", "5")])),
            Ok(Body::Length(5))
        );
        assert_eq!(
            request_body(&hdrs(&[("content-length", "5, 5")])),
            Ok(Body::Length(5))
        );
        assert!(request_body(&hdrs(&[("Content-Length", "5"), ("Content-Length", "6")])).is_err());
        assert!(request_body(&hdrs(&[("Content-Length", "-1")])).is_err());
        assert!(request_body(&hdrs(&[("Transfer-Encoding", "gzip")])).is_err());
        assert_eq!(
            request_body(&hdrs(&[("Transfer-Encoding", "gzip, chunked")])),
            Ok(Body::Chunked(CHUNK_START))
        );
        assert_eq!(
            response_body(200, &hdrs(&[("Content-Length", "5")]), true),
            Ok(Body::None)
        );
        assert_eq!(
            response_body(304, &hdrs(&[("Content-Length", "5")]), false),
            Ok(Body::None)
        );
        assert_eq!(response_body(426, &hdrs(&[]), false), Ok(Body::UntilClose));
        assert_eq!(
            response_body(200, &hdrs(&[("Transfer-Encoding", "gzip")]), false),
            Ok(Body::UntilClose)
        );
    }

    #[test]
    fn length_body() {
        let mut b = Body::Length(5);
        assert_eq!(b.skip(b"abc"), BodyStep::More);
        assert_eq!(b.skip(b"deFGH"), BodyStep::Done { consumed: 2 });
    }

    #[test]
    fn chunked_whole_and_byte_by_byte() {
        let body = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut b = request_body(&hdrs(&[("Transfer-Encoding", "chunked")])).unwrap();
        assert_eq!(
            b.skip(body),
            BodyStep::Done {
                consumed: body.len() - 4
            }
        );
        let mut b = Body::Chunked(CHUNK_START);
        for (i, byte) in body.iter().enumerate() {
            let step = b.skip(std::slice::from_ref(byte));
            if i == body.len() - 5 {
                assert_eq!(step, BodyStep::Done { consumed: 1 });
                break;
            }
            assert_eq!(step, BodyStep::More, "byte {i}");
        }
    }

    #[test]
    fn chunked_errors() {
        assert!(matches!(
            Body::Chunked(CHUNK_START).skip(b"zz\r\n"),
            BodyStep::Malformed(_)
        ));
        assert!(matches!(
            Body::Chunked(CHUNK_START).skip(b"\r\n"),
            BodyStep::Malformed(_)
        ));
        assert!(matches!(
            Body::Chunked(CHUNK_START).skip(b"11111111111111111\r\n"),
            BodyStep::Malformed(_)
        ));
        assert!(matches!(
            Body::Chunked(CHUNK_START).skip(b"2\r\nabc\r\n"),
            BodyStep::Malformed(_)
        ));
        // A huge declared chunk is skipped lazily, never allocated.
        assert_eq!(
            Body::Chunked(CHUNK_START).skip(b"ffffffffffffffff\r\nabc"),
            BodyStep::More
        );
    }
}
