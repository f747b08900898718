//! Incremental UTF-8 validation of a message that arrives in pieces.
//!
//! A text message may be split anywhere, including inside a multi-byte
//! character, so the validator carries up to three bytes of an unfinished
//! character from one piece to the next. It reports the same offset as
//! validating the whole message at once would (`Utf8Error::valid_up_to`).

/// Validator state for one message.
#[derive(Clone, Debug, Default)]
pub struct Utf8Check {
    /// Bytes of a character started in an earlier piece.
    pending: [u8; 4],
    npending: usize,
    /// Message bytes fed so far (including `pending`).
    pos: u64,
    first_invalid: Option<u64>,
    /// After lost bytes we may be in the middle of a character: skip its tail.
    resync: bool,
}

impl Utf8Check {
    /// A checker at the start of a message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Back to the start of a message (forgets everything fed).
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Offset of the first invalid byte found so far.
    pub fn first_invalid(&self) -> Option<u64> {
        self.first_invalid
    }

    /// Feeds the next piece of the message.
    pub fn feed(&mut self, mut data: &[u8]) {
        if self.first_invalid.is_some() {
            self.pos += data.len() as u64;
            return;
        }
        if self.resync {
            let skip = data
                .iter()
                .take(3)
                .take_while(|b| (0x80..0xC0).contains(*b))
                .count();
            self.pos += skip as u64;
            data = data.get(skip..).unwrap_or(&[]);
            if !data.is_empty() || skip == 3 {
                self.resync = false;
            }
        }
        if self.npending > 0 {
            match self.complete_pending(data) {
                Some(rest) => data = rest,
                None => return,
            }
        }
        match simdutf8::compat::from_utf8(data) {
            Ok(_) => self.pos += data.len() as u64,
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_some() {
                    self.first_invalid = Some(self.pos + valid as u64);
                    self.pos += data.len() as u64;
                } else {
                    // An unfinished character at the end: wait for the next piece.
                    let tail = data.get(valid..).unwrap_or(&[]);
                    self.npending = tail.len().min(4);
                    self.pending[..self.npending].copy_from_slice(&tail[..self.npending]);
                    self.pos += data.len() as u64;
                }
            }
        }
    }

    /// Tries to finish the pending character with the start of `data`.
    /// Returns the part of `data` still to validate, or None when `data` was
    /// used up (or an invalid sequence was found).
    fn complete_pending<'d>(&mut self, data: &'d [u8]) -> Option<&'d [u8]> {
        let start = self.pos - self.npending as u64;
        let take = (4 - self.npending).min(data.len());
        let mut tmp = [0u8; 8];
        tmp[..self.npending].copy_from_slice(&self.pending[..self.npending]);
        tmp[self.npending..self.npending + take].copy_from_slice(&data[..take]);
        let joined = &tmp[..self.npending + take];
        let valid = match std::str::from_utf8(joined) {
            Ok(_) => joined.len(),
            Err(e) if e.valid_up_to() > 0 => e.valid_up_to(),
            Err(e) if e.error_len().is_some() => {
                self.first_invalid = Some(start);
                self.npending = 0;
                self.pos += data.len() as u64;
                return None;
            }
            Err(_) => {
                // Still unfinished: `data` was shorter than the character.
                self.pending[self.npending..self.npending + take].copy_from_slice(&data[..take]);
                self.npending += take;
                self.pos += take as u64;
                return None;
            }
        };
        // The pending character is complete; bytes after it are validated with the rest.
        let used = valid.saturating_sub(self.npending).min(data.len());
        self.npending = 0;
        self.pos += used as u64;
        data.get(used..)
    }

    /// Bytes were lost: forget the unfinished character and skip the
    /// continuation bytes that may follow the hole.
    pub fn gap(&mut self, len: u64) {
        self.npending = 0;
        self.pos += len;
        self.resync = true;
    }

    /// End of message. `cut` says the message did not end normally, in which
    /// case an unfinished last character is not a violation.
    pub fn finish(&mut self, cut: bool) -> Option<u64> {
        if self.npending > 0 && !cut && self.first_invalid.is_none() {
            self.first_invalid = Some(self.pos - self.npending as u64);
        }
        self.first_invalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(data: &[u8]) -> Option<u64> {
        std::str::from_utf8(data)
            .err()
            .map(|e| e.valid_up_to() as u64)
    }

    fn pieces(data: &[u8], cuts: &[usize]) -> Option<u64> {
        let mut v = Utf8Check::new();
        let mut last = 0;
        for &c in cuts {
            v.feed(&data[last..c]);
            last = c;
        }
        v.feed(&data[last..]);
        v.finish(false)
    }

    #[test]
    fn four_byte_char_split_at_every_position() {
        let text = "ab😀cd".as_bytes();
        for a in 0..=text.len() {
            for b in a..=text.len() {
                assert_eq!(pieces(text, &[a, b]), None, "cuts {a} {b}");
            }
        }
        // Byte by byte.
        let all: Vec<usize> = (1..text.len()).collect();
        assert_eq!(pieces(text, &all), None);
    }

    #[test]
    fn invalid_offsets_match_whole_validation() {
        let cases: &[&[u8]] = &[
            b"abc\xffdef",
            b"ab\xe0\x80\x80",
            b"\xf0\x9f\x98",
            b"ok\xed\xa0\x80",
            b"x\xc2",
            b"\xf4\x90\x80\x80",
            "h\u{e9}llo\u{1f600}".as_bytes(),
            b"\xf0\x9f\x98\x80\xf0\x9f\x98\x41",
        ];
        for data in cases {
            for a in 0..=data.len() {
                for b in a..=data.len() {
                    assert_eq!(pieces(data, &[a, b]), whole(data), "{data:?} cuts {a} {b}");
                }
            }
        }
    }

    #[test]
    fn unfinished_char_at_cut_end_is_not_flagged() {
        let mut v = Utf8Check::new();
        v.feed(b"ab\xf0\x9f");
        assert_eq!(v.finish(true), None);
        let mut v = Utf8Check::new();
        v.feed(b"ab\xf0\x9f");
        assert_eq!(v.finish(false), Some(2));
    }

    #[test]
    fn gap_resyncs_after_continuation_bytes() {
        let mut v = Utf8Check::new();
        v.feed(b"a\xf0\x9f");
        v.gap(1);
        v.feed(b"\x80bc");
        assert_eq!(v.finish(false), None);
        let mut v = Utf8Check::new();
        v.feed(b"a");
        v.gap(5);
        v.feed(b"b\xff");
        assert_eq!(v.finish(false), Some(7));
    }

    proptest::proptest! {
        #[test]
        fn random_splits_agree(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                               mut cuts in proptest::collection::vec(0usize..40, 0..6)) {
            cuts.retain(|&c| c <= data.len());
            cuts.sort_unstable();
            proptest::prop_assert_eq!(pieces(&data, &cuts), whole(&data));
        }

        #[test]
        fn random_text_with_one_bad_byte(text in "\\PC{0,30}", bad in 0usize..200, cut in 0usize..200) {
            let mut data = text.into_bytes();
            if bad < data.len() {
                data[bad] = 0xff;
            }
            let cut = cut.min(data.len());
            proptest::prop_assert_eq!(pieces(&data, &[cut]), whole(&data));
        }
    }
}
