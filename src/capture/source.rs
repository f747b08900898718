//! A byte source with one large reusable buffer, so records can be handed out
//! as slices into it without a second copy.

use std::io::{ErrorKind, Read};

/// Default size of the read buffer. Records larger than this (pcapng blocks up
/// to `MAX_BLOCK`) make it grow, doubling as bytes actually arrive.
pub const READ_BUFFER: usize = 1 << 20;

pub(crate) struct Source {
    reader: Box<dyn Read + Send>,
    buf: Vec<u8>,
    /// Next unconsumed byte in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    eof: bool,
}

impl Source {
    pub(crate) fn new(reader: Box<dyn Read + Send>, capacity: usize) -> Self {
        Source {
            reader,
            buf: vec![0; capacity.max(64)],
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    /// Stream offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Makes at least `n` bytes available from the current position, unless
    /// the stream ends first; returns how many are available (may be < n only at EOF).
    pub(crate) fn fill(&mut self, n: usize) -> std::io::Result<usize> {
        while self.end - self.pos < n && !self.eof {
            if self.pos + n > self.buf.len() {
                self.make_room(n);
            }
            let got = match self.reader.read(&mut self.buf[self.end..]) {
                Ok(g) => g,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if got == 0 {
                self.eof = true;
            } else {
                self.end += got;
            }
        }
        Ok(self.end - self.pos)
    }

    /// Moves the unconsumed bytes to the front, then grows the buffer (by
    /// doubling, never beyond `n`) only if it is full of real data.
    fn make_room(&mut self, n: usize) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        if n > self.buf.len() && self.end == self.buf.len() {
            let new_len = (self.buf.len() * 2).min(n);
            self.buf.resize(new_len, 0);
        }
    }

    /// The `len` bytes at `from` bytes after the current position (empty if
    /// they were not made available by `fill`, which callers ensure).
    pub(crate) fn peek(&self, from: usize, len: usize) -> &[u8] {
        let start = self.pos + from;
        self.buf.get(start..start + len).unwrap_or(&[])
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that returns at most 3 bytes per call, to exercise refills.
    struct Dribble(std::io::Cursor<Vec<u8>>);
    impl Read for Dribble {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(3);
            self.0.read(&mut buf[..n])
        }
    }

    #[test]
    fn fills_across_small_reads_and_grows_for_large_records() {
        let data: Vec<u8> = (0..200u8).collect();
        let mut s = Source::new(Box::new(Dribble(std::io::Cursor::new(data.clone()))), 64);
        assert!(s.fill(10).unwrap() >= 10);
        assert_eq!(s.peek(0, 10), &data[..10]);
        s.consume(10);
        assert_eq!(s.offset(), 10);
        // Larger than the buffer: it must grow.
        assert!(s.fill(150).unwrap() >= 150);
        assert_eq!(s.peek(0, 150), &data[10..160]);
        s.consume(150);
        assert_eq!(s.fill(100).unwrap(), 40);
        assert_eq!(s.peek(0, 40), &data[160..]);
        s.consume(40);
        assert_eq!(s.offset(), 200);
        assert_eq!(s.fill(1).unwrap(), 0);
    }
}
