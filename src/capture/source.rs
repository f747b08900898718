//! A byte source that hands out records as slices without a second copy:
//! either one large reusable buffer filled by `read`, or a window of the
//! file mapped into memory (regular files; see [`map_window`]).

use std::io::{ErrorKind, Read};

/// Default size of the read buffer. Records larger than this (pcapng blocks up
/// to `MAX_BLOCK`) make it grow, doubling as bytes actually arrive.
pub const READ_BUFFER: usize = 1 << 20;

/// Bytes of a file mapped at a time (more for a larger record). The window
/// moves on as the file is read, so that resident memory stays at about this
/// much whatever the file's size.
pub const MAP_WINDOW: usize = 8 << 20;
fn map_window_size() -> usize {
    std::env::var("WSSNIFF_MAPW")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MAP_WINDOW)
}

pub(crate) enum Source {
    Read(Buffered),
    Mapped(Mapped),
}

impl Source {
    pub(crate) fn new(reader: Box<dyn Read + Send>, capacity: usize) -> Self {
        Source::Read(Buffered::new(reader, capacity))
    }

    /// A source over a regular file, mapped window by window.
    pub(crate) fn mapped(file: std::fs::File) -> std::io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(Source::Mapped(Mapped {
            file,
            map: None,
            start: 0,
            pos: 0,
            len,
        }))
    }

    /// Stream offset of the next unconsumed byte.
    pub(crate) fn offset(&self) -> u64 {
        match self {
            Source::Read(b) => b.offset(),
            Source::Mapped(m) => m.offset(),
        }
    }

    /// Makes at least `n` bytes available from the current position, unless
    /// the stream ends first; returns how many are available (may be < n only at EOF).
    pub(crate) fn fill(&mut self, n: usize) -> std::io::Result<usize> {
        match self {
            Source::Read(b) => b.fill(n),
            Source::Mapped(m) => m.fill(n),
        }
    }

    /// The `len` bytes at `from` bytes after the current position (empty if
    /// they were not made available by `fill`, which callers ensure).
    pub(crate) fn peek(&self, from: usize, len: usize) -> &[u8] {
        match self {
            Source::Read(b) => b.peek(from, len),
            Source::Mapped(m) => m.peek(from, len),
        }
    }

    pub(crate) fn consume(&mut self, n: usize) {
        match self {
            Source::Read(b) => b.consume(n),
            Source::Mapped(m) => m.consume(n),
        }
    }
}

/// A window of a file mapped read-only.
pub(crate) struct Mapped {
    file: std::fs::File,
    map: Option<memmap2::Mmap>,
    /// File offset of the window's first byte.
    start: u64,
    /// Next unconsumed byte, within the window.
    pos: usize,
    /// The file's size when last looked at.
    len: u64,
}

impl Mapped {
    fn window(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }

    fn offset(&self) -> u64 {
        self.start + self.pos as u64
    }

    fn fill(&mut self, n: usize) -> std::io::Result<usize> {
        let have = self.window().len().saturating_sub(self.pos);
        if have >= n {
            return Ok(have);
        }
        let at = self.offset();
        if at.saturating_add(n as u64) > self.len {
            // Read to the end as it is now, like `read` would: a capture
            // still being written has grown.
            self.len = self.file.metadata()?.len();
        }
        let len = (n.max(map_window_size()) as u64).min(self.len.saturating_sub(at)) as usize;
        // The old window goes before the new one comes: one at a time.
        self.map = None;
        self.start = at;
        self.pos = 0;
        if len > 0 {
            self.map = Some(map_window(&self.file, at, len)?);
        }
        Ok(len)
    }

    fn peek(&self, from: usize, len: usize) -> &[u8] {
        let start = self.pos + from;
        self.window().get(start..start + len).unwrap_or(&[])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.window().len());
    }
}

/// Maps `len` bytes of `file` from `offset`, read-only, with the pages
/// mapped in at once (they are read in order right after).
///
/// The one `unsafe` call of the library. It is here because reading a large
/// capture through `read` costs a copy of every byte, most of the time of
/// `read --stats` and all of what `--threads` workers could not share (the
/// figures are in BENCHMARKS.md); `--no-mmap` turns it off.
#[allow(unsafe_code)]
fn map_window(file: &std::fs::File, offset: u64, len: usize) -> std::io::Result<memmap2::Mmap> {
    // SAFETY: the map is read-only and private to this reader, and only
    // ever seen as `&[u8]` through `Mapped`, which keeps it alive. What
    // memmap2 cannot promise is that no other process changes the file
    // meanwhile: appending (a capture still being written) is harmless,
    // since only bytes below the size seen are mapped; rewriting bytes in
    // place can only change the packets read; truncating the file under the
    // window makes the next access fault (SIGBUS), as it does for tcpdump
    // and ripgrep. Files that are not regular are never mapped.
    unsafe {
        memmap2::MmapOptions::new()
            .offset(offset)
            .len(len)
            .map(file)
    }
}

pub(crate) struct Buffered {
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

impl Buffered {
    pub(crate) fn new(reader: Box<dyn Read + Send>, capacity: usize) -> Self {
        Buffered {
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
        let mut s = Buffered::new(Box::new(Dribble(std::io::Cursor::new(data.clone()))), 64);
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
