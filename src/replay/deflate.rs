//! permessage-deflate (RFC 7692) for an active endpoint: negotiation
//! parameters, and one compressor or decompressor per direction.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sync flush ends with, removed on the wire (RFC 7692 §7.2.1).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Parameters one direction's sender must honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirParams {
    /// The sender resets its compression context after every message.
    pub no_context_takeover: bool,
    /// LZ77 window, 8..=15.
    pub max_window_bits: u8,
}

impl Default for DirParams {
    fn default() -> Self {
        DirParams {
            no_context_takeover: false,
            max_window_bits: 15,
        }
    }
}

/// A negotiated permessage-deflate: what the client and the server send with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// How the client compresses (client-to-server messages).
    pub client: DirParams,
    /// How the server compresses (server-to-client messages).
    pub server: DirParams,
}

/// One extension of a `Sec-WebSocket-Extensions` value: the http stage's
/// [`Extension`](crate::http::Extension), so wsreplay reads offers and
/// answers with the same parser wssniff reads captures with.
pub type ExtensionOffer = crate::http::Extension;

/// The extensions of header values (`a; x=1, b` → two), parsed by the http
/// stage (RFC 6455 §9.1 syntax, quoted values unescaped). A malformed value
/// offers nothing: the peer then gets no extension, which every peer must
/// accept.
pub fn parse_extensions<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<ExtensionOffer> {
    let joined = values.into_iter().collect::<Vec<_>>().join(",");
    crate::http::parse_extensions_bounded(joined.as_bytes(), crate::http::MAX_EXTENSIONS)
        .map(|l| l.list)
        .unwrap_or_default()
}

/// The permessage-deflate a server accepted, from its response's extensions;
/// `None` when it accepted none. Unparseable window sizes fall back to 15 for
/// the peer and are reported by the caller comparing against the offer.
pub fn accepted(exts: &[ExtensionOffer]) -> Option<Negotiated> {
    let ext = exts
        .iter()
        .find(|e| e.name.eq_ignore_ascii_case("permessage-deflate"))?;
    let bits = |name: &str| {
        ext.param(name)
            .flatten()
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|b| (8..=15).contains(b))
            .unwrap_or(15)
    };
    Some(Negotiated {
        client: DirParams {
            no_context_takeover: ext.param("client_no_context_takeover").is_some(),
            max_window_bits: bits("client_max_window_bits"),
        },
        server: DirParams {
            no_context_takeover: ext.param("server_no_context_takeover").is_some(),
            max_window_bits: bits("server_max_window_bits"),
        },
    })
}

/// The response value a server sends to accept permessage-deflate with the
/// recorded parameters, given the client's offer (RFC 7692 §7.1: a server
/// may only name `client_max_window_bits` when the client offered it).
pub fn server_answer(offer: &ExtensionOffer, recorded: Negotiated) -> (String, Negotiated) {
    let mut value = String::from("permessage-deflate");
    let mut used = recorded;
    if recorded.server.no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if recorded.client.no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if recorded.server.max_window_bits < 15 {
        value.push_str(&format!(
            "; server_max_window_bits={}",
            recorded.server.max_window_bits
        ));
    }
    if recorded.client.max_window_bits < 15 && offer.param("client_max_window_bits").is_some() {
        value.push_str(&format!(
            "; client_max_window_bits={}",
            recorded.client.max_window_bits
        ));
    } else {
        used.client.max_window_bits = 15;
    }
    (value, used)
}

/// The sending half: compresses whole messages.
pub struct Compressor {
    inner: Compress,
    reset_each: bool,
}

impl Compressor {
    /// A compressor for one direction's sender (windows below 9 bits are raised to 9, as zlib requires).
    pub fn new(p: DirParams) -> Self {
        // zlib cannot produce raw deflate with an 8-bit window; 9 is the
        // smallest it does (the same limit browsers live with).
        let bits = p.max_window_bits.clamp(9, 15);
        Compressor {
            inner: Compress::new_with_window_bits(Compression::default(), false, bits),
            reset_each: p.no_context_takeover,
        }
    }

    /// The compressed payload of one message, without the sync-flush tail.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        if self.reset_each {
            self.inner.reset();
        }
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        // Input first without flushing, then the flush on its own: zlib skips
        // a sync flush that follows another with no input in between, and an
        // empty message still needs its (empty) deflate block.
        let mut taken = 0usize;
        let mut flush = FlushCompress::None;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let rest = data.get(taken..).unwrap_or_default();
            let before = (self.inner.total_in(), self.inner.total_out());
            if self.inner.compress_vec(rest, &mut out, flush).is_err() {
                break;
            }
            taken += (self.inner.total_in() - before.0) as usize;
            let stalled = before == (self.inner.total_in(), self.inner.total_out());
            if taken >= data.len() && flush == FlushCompress::None {
                flush = FlushCompress::Sync;
                continue;
            }
            // zlib's rule: a flush is complete once the output was not filled.
            if flush == FlushCompress::Sync && out.len() < out.capacity() {
                break;
            }
            if stalled && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        out
    }
}

/// The receiving half: inflates whole messages, bounded.
pub struct Decompressor {
    inner: Decompress,
    reset_each: bool,
}

/// Why a message could not be inflated.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// The deflate data is invalid; zlib's message.
    Corrupt(String),
    /// The inflated message would exceed the limit.
    TooLarge,
}

impl Decompressor {
    /// A decompressor for messages sent with `p`.
    pub fn new(p: DirParams) -> Self {
        // A 15-bit window inflates anything a smaller window produced.
        Decompressor {
            inner: Decompress::new_with_window_bits(false, 15),
            reset_each: p.no_context_takeover,
        }
    }

    /// Inflates one message's payload (tail re-appended), at most `limit` bytes.
    pub fn decompress(&mut self, data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        if self.reset_each {
            self.inner.reset(false);
        }
        let mut input = Vec::with_capacity(data.len() + SYNC_TAIL.len());
        input.extend_from_slice(data);
        input.extend_from_slice(&SYNC_TAIL);
        let mut out: Vec<u8> =
            Vec::with_capacity(data.len().saturating_mul(3).clamp(64, limit.max(64)));
        let start_in = self.inner.total_in();
        loop {
            let consumed = usize::try_from(self.inner.total_in() - start_in).unwrap_or(usize::MAX);
            let rest = input.get(consumed..).unwrap_or_default();
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooLarge);
                }
                out.reserve(out.capacity().max(1024));
            }
            let before = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
                .map_err(|e| InflateError::Corrupt(e.to_string()))?;
            if out.len() > limit {
                return Err(InflateError::TooLarge);
            }
            let all_in = rest.len() == (self.inner.total_in() - before.0) as usize;
            if matches!(status, Status::StreamEnd) || (all_in && out.len() < out.capacity()) {
                return Ok(out);
            }
            if before == (self.inner.total_in(), self.inner.total_out())
                && out.len() < out.capacity()
            {
                return Err(InflateError::Corrupt("truncated deflate data".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for nct in [false, true] {
            for bits in [9u8, 12, 15] {
                let p = DirParams {
                    no_context_takeover: nct,
                    max_window_bits: bits,
                };
                let mut c = Compressor::new(p);
                let mut d = Decompressor::new(p);
                for msg in [
                    &b"hello hello hello"[..],
                    b"",
                    b"hello again, hello hello",
                    &[0u8; 70_000][..],
                ] {
                    let z = c.compress(msg);
                    assert!(!z.ends_with(&SYNC_TAIL));
                    assert_eq!(
                        d.decompress(&z, 1 << 20)
                            .map_err(|e| format!(
                                "{e:?} nct={nct} bits={bits} len={} z={:?}",
                                msg.len(),
                                &z[..z.len().min(20)]
                            ))
                            .unwrap(),
                        msg
                    );
                }
            }
        }
    }

    #[test]
    fn rfc7692_example_inflates() {
        // RFC 7692 §7.2.3.1: "Hello" compressed.
        let mut d = Decompressor::new(DirParams::default());
        let z = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        assert_eq!(d.decompress(&z, 100).unwrap(), b"Hello");
    }

    #[test]
    fn inflate_limit_and_garbage_are_errors() {
        let mut c = Compressor::new(DirParams::default());
        let z = c.compress(&[b'a'; 100_000]);
        let mut d = Decompressor::new(DirParams::default());
        assert_eq!(d.decompress(&z, 1000), Err(InflateError::TooLarge));
        let mut d = Decompressor::new(DirParams::default());
        assert!(matches!(
            d.decompress(&[0xff, 0xff, 0xff, 0xff], 1000),
            Err(InflateError::Corrupt(_))
        ));
    }

    #[test]
    fn negotiation_reads_parameters() {
        let exts = parse_extensions([
            "permessage-deflate; client_max_window_bits=12; server_no_context_takeover",
        ]);
        let n = accepted(&exts).unwrap();
        assert_eq!(n.client.max_window_bits, 12);
        assert!(!n.client.no_context_takeover);
        assert!(n.server.no_context_takeover);
        assert_eq!(n.server.max_window_bits, 15);
        assert_eq!(
            accepted(&parse_extensions(["x-webkit-deflate-frame"])),
            None
        );
        let quoted = parse_extensions(["x-foo, permessage-deflate; client_max_window_bits=\"10\""]);
        assert_eq!(quoted.len(), 2);
        assert_eq!(accepted(&quoted).unwrap().client.max_window_bits, 10);
        assert!(parse_extensions(["permessage-deflate; =x"]).is_empty());
        let two = parse_extensions(["a", "permessage-deflate"]);
        assert_eq!(two.len(), 2, "several header values are one list");
    }

    #[test]
    fn server_answer_only_names_client_bits_when_offered() {
        let rec = Negotiated {
            client: DirParams {
                no_context_takeover: true,
                max_window_bits: 12,
            },
            server: DirParams::default(),
        };
        let bare = &parse_extensions(["permessage-deflate"])[0];
        let (v, used) = server_answer(bare, rec);
        assert_eq!(v, "permessage-deflate; client_no_context_takeover");
        assert_eq!(used.client.max_window_bits, 15);
        let with = &parse_extensions(["permessage-deflate; client_max_window_bits"])[0];
        let (v, used) = server_answer(with, rec);
        assert!(v.ends_with("client_max_window_bits=12"), "{v}");
        assert_eq!(used.client.max_window_bits, 12);
    }
}
