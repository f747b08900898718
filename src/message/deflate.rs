//! permessage-deflate (RFC 7692) and the legacy `x-webkit-deflate-frame`:
//! negotiated parameters and a bounded streaming inflater.
//!
//! The inflater always uses a 15-bit window: a raw deflate stream written
//! with a smaller window only refers back within that smaller distance, so a
//! 15-bit inflater decodes it unchanged. The negotiated window size is kept
//! for reporting only.

use flate2::{Decompress, FlushDecompress, Status};

use crate::types::Dir;

/// Compression parameters for one direction, from the accepted extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateParams {
    /// `x-webkit-deflate-frame` (or `deflate-frame`): each RSV1 frame is
    /// compressed on its own, rather than each message.
    pub per_frame: bool,
    /// The sender resets its window for every message (frame, for per_frame).
    pub no_context_takeover: bool,
    /// The sender's window size as negotiated (8..=15; 15 when not given or invalid).
    pub max_window_bits: u8,
}

/// The four bytes a sender strips from the end of every compressed message
/// (the end of an empty stored block), which the receiver puts back.
pub const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Size of the output buffer inflaters write into: one per thread, shared
/// by all of its inflaters (one per compressed direction, hundreds at
/// once on a busy capture), not one each.
const INFLATE_CHUNK: usize = 32 * 1024;

thread_local! {
    static INFLATE_OUT: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Inflaters alive on this thread (see [`Inflater::try_new`]).
    static LIVE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Inflaters alive on this thread.
pub fn live_inflaters() -> usize {
    LIVE.with(|l| l.get())
}

/// A parameter of an extension, with its value if it had one.
pub type ExtensionParam = (String, Option<String>);
/// An extension as listed in a handshake header: name and parameters.
pub type Extension = (String, Vec<ExtensionParam>);

/// Extracts the deflate parameters for `dir` from the extensions the server
/// accepted in its 101 response, given as (name, [(param, value)]).
///
/// Returns None when no deflate extension was accepted. Anomalies are
/// (name, detail) pairs. Problems with a parameter that applies to one
/// direction are reported for that direction; problems that concern both
/// (unknown parameters, several deflate extensions) are reported only for
/// `Dir::C2s`, so calling this once per direction reports each problem once.
pub fn deflate_params(
    extensions: &[Extension],
    dir: Dir,
) -> (Option<DeflateParams>, Vec<(&'static str, String)>) {
    let mut anomalies = Vec::new();
    let general = dir == Dir::C2s;
    let mut found: Option<(&str, &[ExtensionParam])> = None;
    for (name, params) in extensions {
        let lower = name.to_ascii_lowercase();
        if !matches!(
            lower.as_str(),
            "permessage-deflate" | "x-webkit-deflate-frame" | "deflate-frame"
        ) {
            continue;
        }
        match found {
            None => found = Some((name.as_str(), params.as_slice())),
            Some((first, _)) if general => anomalies.push((
                "deflate_multiple_extensions",
                format!("{name} accepted in addition to {first}; only {first} is used"),
            )),
            Some(_) => {}
        }
    }
    let Some((name, params)) = found else {
        return (None, anomalies);
    };
    let per_frame = !name.eq_ignore_ascii_case("permessage-deflate");
    // Which parameter names apply to this direction.
    let (nct, mwb) = match (per_frame, dir) {
        (true, _) => ("no_context_takeover", "max_window_bits"),
        (false, Dir::C2s) => ("client_no_context_takeover", "client_max_window_bits"),
        (false, Dir::S2c) => ("server_no_context_takeover", "server_max_window_bits"),
    };
    let known: &[&str] = if per_frame {
        &["no_context_takeover", "max_window_bits"]
    } else {
        &[
            "client_no_context_takeover",
            "server_no_context_takeover",
            "client_max_window_bits",
            "server_max_window_bits",
        ]
    };
    let mut out = DeflateParams {
        per_frame,
        no_context_takeover: false,
        max_window_bits: 15,
    };
    let mut seen: Vec<String> = Vec::new();
    for (param, value) in params {
        let p = param.to_ascii_lowercase();
        let mine = p == nct || p == mwb;
        let report = mine || (general && !known.contains(&p.as_str()));
        if seen.contains(&p) {
            if report {
                anomalies.push((
                    "deflate_bad_parameter",
                    format!("{name}: parameter {p} repeated"),
                ));
            }
            if p == mwb {
                out.max_window_bits = 15;
            }
            continue;
        }
        seen.push(p.clone());
        if !known.contains(&p.as_str()) {
            if report {
                anomalies.push((
                    "deflate_bad_parameter",
                    format!("{name}: unknown parameter {p}"),
                ));
            }
        } else if p == nct {
            out.no_context_takeover = true;
            if value.is_some() {
                anomalies.push((
                    "deflate_bad_parameter",
                    format!("{name}: {p} takes no value"),
                ));
            }
        } else if p == mwb {
            match value.as_deref().map(|v| v.trim_matches('"').parse::<u8>()) {
                Some(Ok(bits)) if (8..=15).contains(&bits) => out.max_window_bits = bits,
                Some(_) => anomalies.push((
                    "deflate_bad_parameter",
                    format!(
                        "{name}: {p}={} is not 8..=15; using 15",
                        value.as_deref().unwrap_or("")
                    ),
                )),
                None if !per_frame => anomalies.push((
                    "deflate_bad_parameter",
                    format!("{name}: {p} without a value in the response; using 15"),
                )),
                None => {}
            }
        }
    }
    (Some(out), anomalies)
}

/// How a call to [`Inflater::feed`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inflated {
    /// All input consumed.
    Ok,
    /// The stream ended (a final block); the rest of the input was not used.
    StreamEnd { unused: usize },
    /// Invalid data; `consumed` input bytes were used before the error.
    Error { consumed: usize, message: String },
    /// The work budget ran out; `consumed` input bytes were used.
    WorkLimit { consumed: usize },
}

/// A raw-deflate decompressor that keeps its window across units
/// (messages, or frames for per-frame compression) unless told not to.
pub struct Inflater {
    d: Decompress,
    pub params: DeflateParams,
    /// False once the window no longer matches the sender's (a gap, an error,
    /// a stopped message): the next unit starts from a fresh window.
    window_valid: bool,
    /// A stream ended with a final block; zlib needs a reset before more input.
    ended: bool,
}

impl Drop for Inflater {
    fn drop(&mut self) {
        LIVE.with(|l| l.set(l.get().saturating_sub(1)));
    }
}

impl Inflater {
    /// A new inflater, unless `max` are alive on this thread already: each
    /// holds zlib's state and window (about 47 KiB) for as long as its
    /// direction lives, so their number bounds that memory.
    pub fn try_new(params: DeflateParams, max: usize) -> Option<Self> {
        (live_inflaters() < max).then(|| Self::new(params))
    }

    pub fn new(params: DeflateParams) -> Self {
        LIVE.with(|l| l.set(l.get() + 1));
        Inflater {
            d: Decompress::new(false),
            params,
            window_valid: true,
            ended: false,
        }
    }

    /// Starts a compressed unit. Returns true when the sender's window
    /// (context takeover) was lost and the unit is decoded from a fresh one.
    pub fn begin(&mut self) -> bool {
        let lost = !self.window_valid && !self.params.no_context_takeover;
        if self.params.no_context_takeover || !self.window_valid || self.ended {
            self.d.reset(false);
            self.window_valid = true;
            self.ended = false;
        }
        lost
    }

    /// The window no longer matches the sender's.
    pub fn lose_context(&mut self) {
        self.window_valid = false;
    }

    /// Inflates `input`, passing output to `sink` in pieces of at most
    /// `INFLATE_CHUNK` bytes. `work` counts output and stops at `max_work`.
    pub fn feed(
        &mut self,
        input: &[u8],
        work: &mut u64,
        max_work: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Inflated {
        // Taken, not borrowed, from the thread's slot: a sink that inflated
        // something itself would find it empty and use a buffer of its own.
        let mut out = INFLATE_OUT.with(|o| std::mem::take(&mut *o.borrow_mut()));
        out.resize(INFLATE_CHUNK, 0);
        let r = self.feed_into(input, &mut out, work, max_work, sink);
        INFLATE_OUT.with(|o| *o.borrow_mut() = out);
        r
    }

    fn feed_into(
        &mut self,
        mut input: &[u8],
        out: &mut [u8],
        work: &mut u64,
        max_work: u64,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Inflated {
        let mut consumed = 0usize;
        if self.ended {
            return Inflated::StreamEnd {
                unused: input.len(),
            };
        }
        loop {
            let (in0, out0) = (self.d.total_in(), self.d.total_out());
            let res = self.d.decompress(input, out, FlushDecompress::None);
            let used = (self.d.total_in() - in0) as usize;
            let produced = ((self.d.total_out() - out0) as usize).min(out.len());
            consumed += used;
            input = input.get(used..).unwrap_or(&[]);
            if produced > 0 {
                sink(out.get(..produced).unwrap_or(&[]));
            }
            *work += produced as u64;
            match res {
                Err(e) => {
                    self.window_valid = false;
                    return Inflated::Error {
                        consumed,
                        message: e.to_string(),
                    };
                }
                Ok(Status::StreamEnd) => {
                    self.ended = true;
                    return Inflated::StreamEnd {
                        unused: input.len(),
                    };
                }
                Ok(_) => {}
            }
            if *work > max_work {
                self.window_valid = false;
                return Inflated::WorkLimit { consumed };
            }
            let out_full = produced == out.len();
            if (input.is_empty() && !out_full) || (used == 0 && produced == 0) {
                return Inflated::Ok;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    fn ext(name: &str, params: &[(&str, Option<&str>)]) -> (String, Vec<(String, Option<String>)>) {
        (
            name.into(),
            params
                .iter()
                .map(|(k, v)| (k.to_string(), v.map(String::from)))
                .collect(),
        )
    }

    /// Compresses `msgs` one after another with one compressor (context
    /// takeover) or a fresh one per message, as a sender would, tail stripped.
    pub(crate) fn compress_msgs(msgs: &[&[u8]], bits: u8, takeover: bool) -> Vec<Vec<u8>> {
        let mut c = Compress::new_with_window_bits(Compression::default(), false, bits);
        msgs.iter()
            .map(|m| {
                if !takeover {
                    c = Compress::new_with_window_bits(Compression::default(), false, bits);
                }
                let mut out = Vec::with_capacity(m.len() + 64);
                let mut input: &[u8] = m;
                loop {
                    let before = c.total_in();
                    out.reserve(4096);
                    c.compress_vec(input, &mut out, FlushCompress::Sync)
                        .expect("compress");
                    input = &input[(c.total_in() - before) as usize..];
                    if input.is_empty() && out.len() < out.capacity() {
                        break;
                    }
                }
                assert!(out.ends_with(&DEFLATE_TAIL));
                out.truncate(out.len() - 4);
                out
            })
            .collect()
    }

    #[test]
    fn params_per_direction() {
        let e = [ext(
            "permessage-deflate",
            &[
                ("server_no_context_takeover", None),
                ("client_max_window_bits", Some("10")),
            ],
        )];
        let (c, a) = deflate_params(&e, Dir::C2s);
        assert_eq!(
            c,
            Some(DeflateParams {
                per_frame: false,
                no_context_takeover: false,
                max_window_bits: 10
            })
        );
        assert!(a.is_empty());
        let (s, a) = deflate_params(&e, Dir::S2c);
        assert_eq!(
            s,
            Some(DeflateParams {
                per_frame: false,
                no_context_takeover: true,
                max_window_bits: 15
            })
        );
        assert!(a.is_empty());
    }

    #[test]
    fn bad_parameters_fall_back_to_15() {
        for v in [Some("7"), Some("16"), Some("abc"), None] {
            let e = [ext("permessage-deflate", &[("server_max_window_bits", v)])];
            let (p, a) = deflate_params(&e, Dir::S2c);
            assert_eq!(p.map(|p| p.max_window_bits), Some(15), "{v:?}");
            assert_eq!(a.len(), 1, "{v:?}");
            assert_eq!(a[0].0, "deflate_bad_parameter");
        }
        let e = [ext(
            "permessage-deflate",
            &[
                ("server_max_window_bits", Some("9")),
                ("server_max_window_bits", Some("10")),
            ],
        )];
        let (p, a) = deflate_params(&e, Dir::S2c);
        assert_eq!(p.map(|p| p.max_window_bits), Some(15));
        assert_eq!(a[0].0, "deflate_bad_parameter");
        // Not reported for the other direction.
        assert!(deflate_params(&e, Dir::C2s).1.is_empty());
    }

    #[test]
    fn unknown_and_multiple_reported_once() {
        let e = [
            ext("permessage-deflate", &[("foo", None)]),
            ext("x-webkit-deflate-frame", &[]),
        ];
        let (_, c) = deflate_params(&e, Dir::C2s);
        let (_, s) = deflate_params(&e, Dir::S2c);
        let names: Vec<_> = c.iter().map(|a| a.0).collect();
        assert_eq!(
            names,
            ["deflate_multiple_extensions", "deflate_bad_parameter"]
        );
        assert!(s.is_empty());
    }

    #[test]
    fn webkit_and_absent() {
        let e = [ext(
            "x-webkit-deflate-frame",
            &[("no_context_takeover", None)],
        )];
        let (p, _) = deflate_params(&e, Dir::S2c);
        assert_eq!(
            p,
            Some(DeflateParams {
                per_frame: true,
                no_context_takeover: true,
                max_window_bits: 15
            })
        );
        assert_eq!(deflate_params(&[ext("foo", &[])], Dir::S2c).0, None);
    }

    fn inflate_all(inf: &mut Inflater, data: &[u8]) -> (Vec<u8>, Inflated) {
        let mut out = Vec::new();
        let mut work = 0;
        inf.begin();
        let r = inf.feed(data, &mut work, u64::MAX, &mut |b| out.extend_from_slice(b));
        assert_eq!(r, Inflated::Ok);
        let r = inf.feed(&DEFLATE_TAIL, &mut work, u64::MAX, &mut |b| {
            out.extend_from_slice(b)
        });
        (out, r)
    }

    #[test]
    fn inflates_every_window_size() {
        let a = b"the quick brown fox jumps over the lazy dog ".repeat(50);
        let b = b"the quick brown fox jumps over the lazy cat ".repeat(60);
        for bits in [9u8, 12, 15] {
            for takeover in [true, false] {
                let c = compress_msgs(&[&a, &b], bits, takeover);
                let params = DeflateParams {
                    per_frame: false,
                    no_context_takeover: !takeover,
                    max_window_bits: bits,
                };
                let mut inf = Inflater::new(params);
                assert_eq!(inflate_all(&mut inf, &c[0]), (a.clone(), Inflated::Ok));
                assert_eq!(
                    inflate_all(&mut inf, &c[1]),
                    (b.clone(), Inflated::Ok),
                    "bits {bits} {takeover}"
                );
            }
        }
    }

    #[test]
    fn invalid_data_is_an_error() {
        let mut inf = Inflater::new(DeflateParams {
            per_frame: false,
            no_context_takeover: false,
            max_window_bits: 15,
        });
        inf.begin();
        let mut work = 0;
        let r = inf.feed(b"\xff\xff\xff\xff", &mut work, u64::MAX, &mut |_| {});
        assert!(matches!(r, Inflated::Error { .. }), "{r:?}");
        assert!(inf.begin(), "window must be reported lost after an error");
    }
}
