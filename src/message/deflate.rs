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
    StreamEnd {
        /// Input bytes after the stream's end, not used.
        unused: usize,
    },
    /// Invalid data; `consumed` input bytes were used before the error.
    Error {
        /// Input bytes used before the error.
        consumed: usize,
        /// zlib's description of the error.
        message: String,
    },
    /// The work budget ran out; `consumed` input bytes were used.
    WorkLimit {
        /// Input bytes used before the budget ran out.
        consumed: usize,
    },
}

/// A raw-deflate decompressor that keeps its window across units
/// (messages, or frames for per-frame compression) unless told not to.
pub struct Inflater {
    d: Decompress,
    /// The negotiated permessage-deflate parameters this inflater follows.
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

    /// A new inflater with an empty window (counted against [`Inflater::try_new`]'s limit, not checked).
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

/// The longest deflate window: what a message can refer back to.
pub const WINDOW: usize = 32 * 1024;

/// What [`HistoryFreeInflater::inflate_message`] could tell of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    /// The message does not depend on history that was not seen: these are
    /// its bytes exactly.
    Exact(Vec<u8>),
    /// Some output depends on the unseen window (`deflate_context_missing`);
    /// the first `known_prefix` output bytes do not (but are not output as
    /// decoded: the caller keeps the compressed bytes).
    DependsOnHistory {
        /// Output bytes at the start known not to depend on the unseen window.
        known_prefix: usize,
        /// Output length of the message (bytes).
        len: usize,
    },
    /// Invalid compressed data (both inflaters agree).
    Error(String),
    /// Inflated past `max_out` bytes: not decided.
    TooLong,
}

/// Inflates a direction's permessage-deflate messages when the window
/// before the first one seen is unknown (the handshake, or earlier
/// messages, were not captured; or bytes were lost).
///
/// Two raw inflaters run side by side, one primed with 32 KiB of 0x00 as
/// the unseen window, the other with 32 KiB of 0xFF. The bit stream parses
/// the same in both (it does not depend on output bytes); an output byte
/// that comes from the unseen window, directly or through copies of copies,
/// differs between them, because every byte of the two windows differs.
/// A message with identical outputs is therefore known exactly. Both keep
/// their windows from message to message (context takeover), so once a
/// message is known, later ones that refer back into it are known too;
/// references that reach further back into the unseen window still show up
/// as differences. Under no_context_takeover both restart empty for every
/// message and every message is exact or invalid.
pub struct HistoryFreeInflater {
    zero: Decompress,
    ones: Decompress,
    /// The permessage-deflate parameters (context takeover decides whether windows carry over).
    pub params: DeflateParams,
    /// Both windows are known to be equal (all of the last 32 KiB of output
    /// agreed): the second inflater could be dropped.
    windows_equal: bool,
    agreed_run: u64,
}

impl HistoryFreeInflater {
    /// Both inflaters primed with their guessed windows.
    pub fn new(params: DeflateParams) -> Self {
        let mut me = HistoryFreeInflater {
            zero: Decompress::new(false),
            ones: Decompress::new(false),
            params,
            windows_equal: false,
            agreed_run: 0,
        };
        me.prime();
        me
    }

    fn prime(&mut self) {
        self.zero.reset(false);
        self.ones.reset(false);
        if self.params.no_context_takeover {
            self.windows_equal = true;
            return;
        }
        // A raw inflater takes a dictionary at any time; failure leaves it
        // without one, which the comparison then shows as differences or
        // errors, never as wrong bytes taken for exact.
        let _ = self.zero.set_dictionary(&[0x00; WINDOW]);
        let _ = self.ones.set_dictionary(&[0xff; WINDOW]);
    }

    /// The window is unknown again (bytes lost, a message not inflated):
    /// both inflaters restart primed with their stand-in windows.
    pub fn forget(&mut self) {
        self.windows_equal = false;
        self.agreed_run = 0;
        self.prime();
    }

    /// True once the unseen window can no longer affect any output.
    pub fn context_known(&self) -> bool {
        self.windows_equal
    }

    /// Inflates one whole message (its unmasked compressed payload, without
    /// the 4-byte tail the sender stripped) and compares the two outputs.
    pub fn inflate_message(&mut self, compressed: &[u8], max_out: usize) -> Recovered {
        if self.params.no_context_takeover {
            self.prime();
        }
        let a = inflate_bounded(&mut self.zero, compressed, max_out);
        let b = inflate_bounded(&mut self.ones, compressed, max_out);
        match (a, b) {
            (Ok(a), Ok(b)) if a == b => {
                self.agreed_run = self.agreed_run.saturating_add(a.len() as u64);
                if self.agreed_run >= WINDOW as u64 {
                    self.windows_equal = true;
                }
                Recovered::Exact(a)
            }
            (Ok(a), Ok(b)) => {
                let known_prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
                // Agreement since the last difference.
                let tail_agree = a
                    .iter()
                    .rev()
                    .zip(b.iter().rev())
                    .take_while(|(x, y)| x == y)
                    .count();
                self.agreed_run = tail_agree as u64;
                Recovered::DependsOnHistory {
                    known_prefix,
                    len: a.len(),
                }
            }
            // Both stopped part-way: what follows cannot be parsed from here.
            (Err(None), _) | (_, Err(None)) => {
                self.forget();
                Recovered::TooLong
            }
            (Err(Some(e)), _) | (_, Err(Some(e))) => {
                self.forget();
                Recovered::Error(e)
            }
        }
    }
}

/// Inflates `input` plus the restored tail into a new buffer of at most
/// `max_out` bytes. Err(None): too long; Err(Some): invalid data.
fn inflate_bounded(
    d: &mut Decompress,
    input: &[u8],
    max_out: usize,
) -> Result<Vec<u8>, Option<String>> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(2).min(max_out).min(1 << 20));
    for part in [input, &DEFLATE_TAIL[..]] {
        let mut part = part;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= max_out {
                    return Err(None);
                }
                out.reserve((out.len() + 4096).min(max_out - out.len()));
            }
            let (in0, out0) = (d.total_in(), out.len());
            let res = d.decompress_vec(part, &mut out, FlushDecompress::Sync);
            let used = (d.total_in() - in0) as usize;
            part = part.get(used..).unwrap_or(&[]);
            match res {
                Err(e) => return Err(Some(e.to_string())),
                Ok(Status::StreamEnd) => return Ok(out),
                Ok(_) => {}
            }
            if part.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && out.len() == out0 && out.len() < out.capacity() {
                break;
            }
        }
    }
    Ok(out)
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

    fn takeover() -> DeflateParams {
        DeflateParams {
            per_frame: false,
            no_context_takeover: false,
            max_window_bits: 15,
        }
    }

    #[test]
    fn without_history_only_independent_messages_are_exact() {
        let a = b"the quick brown fox jumps over the lazy dog ".repeat(20);
        let b = b"the quick brown fox jumps over the lazy dog, again".to_vec();
        let c: Vec<u8> = (0..3000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let d = [&b[..], &c[..]].concat();
        let msgs: [&[u8]; 4] = [&a, &b, &c, &d];
        let comp = compress_msgs(&msgs, 15, true);
        // Seen from message 1 on: message 0 (the history) is not captured.
        let mut h = HistoryFreeInflater::new(takeover());
        // b refers back into a: unknown.
        match h.inflate_message(&comp[1], 1 << 20) {
            Recovered::DependsOnHistory { len, .. } => assert_eq!(len, b.len()),
            other => panic!("{other:?}"),
        }
        // c is pseudo-random: no reference back, exact.
        assert_eq!(
            h.inflate_message(&comp[2], 1 << 20),
            Recovered::Exact(c.clone())
        );
        // d refers to b (unknown) and c (known): not exact as a whole.
        assert!(matches!(
            h.inflate_message(&comp[3], 1 << 20),
            Recovered::DependsOnHistory { .. }
        ));
        // Everything, seen from the start: all exact.
        let mut h = HistoryFreeInflater::new(takeover());
        for (m, z) in msgs.iter().zip(&comp) {
            assert_eq!(h.inflate_message(z, 1 << 20), Recovered::Exact(m.to_vec()));
        }
    }

    #[test]
    fn a_known_message_makes_later_references_to_it_exact() {
        let a: Vec<u8> = (0..2000u32).map(|i| (i * 31 % 253) as u8).collect();
        let b: Vec<u8> = (0..2000u32).map(|i| (i * 17 % 241) as u8).collect();
        let c = [&b[..500], &b[..500]].concat();
        let comp = compress_msgs(&[&a, &b, &c], 15, true);
        let mut h = HistoryFreeInflater::new(takeover());
        assert_eq!(
            h.inflate_message(&comp[1], 1 << 20),
            Recovered::Exact(b.clone())
        );
        assert_eq!(h.inflate_message(&comp[2], 1 << 20), Recovered::Exact(c));
    }

    #[test]
    fn no_context_takeover_is_always_exact_and_limits_hold() {
        let a = b"abcabcabcabc hello hello hello".repeat(30);
        let comp = compress_msgs(&[&a, &a], 15, false);
        let mut h = HistoryFreeInflater::new(DeflateParams {
            no_context_takeover: true,
            ..takeover()
        });
        assert!(h.context_known());
        assert_eq!(
            h.inflate_message(&comp[1], 1 << 20),
            Recovered::Exact(a.clone())
        );
        assert_eq!(h.inflate_message(&comp[0], 10), Recovered::TooLong);
        let mut t = HistoryFreeInflater::new(takeover());
        let two = compress_msgs(&[&a, &a], 15, true);
        assert_eq!(
            t.inflate_message(&two[0], 1 << 20),
            Recovered::Exact(a.clone())
        );
        // A message not inflated (lost): the window is unknown again, and the
        // next one, which refers back to it, must not come out as exact.
        t.forget();
        assert!(matches!(
            t.inflate_message(&two[1], 1 << 20),
            Recovered::DependsOnHistory { .. }
        ));
        assert!(matches!(
            h.inflate_message(b"\xff\xff\xff", 1 << 20),
            Recovered::Error(_)
        ));
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
