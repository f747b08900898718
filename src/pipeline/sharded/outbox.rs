//! A worker's side of a sharded run: its records rendered by the real
//! writers into memory, each tagged with its ordering key, and sent to the
//! merger in bounded parts.

use super::timeline::{KeyCell, Level};
use crate::session::{AnomalyRecord, CaptureRecord, GapRecord, SessionEndRecord, StatsRecord};
use crate::sink::{MessageView, SessionView, Sink};
use crate::types::Dir;
use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::mpsc::{Receiver, SyncSender};

use super::Format;

pub(super) type Key = (u64, u8, u8, u64, u32);

/// Rendered records of one part of one worker's stream: `data` split at the
/// ends in `index`.
#[derive(Default)]
pub(super) struct Chunks {
    pub(super) data: Vec<u8>,
    pub(super) index: Vec<(Key, usize)>,
    /// The flow table's levels over the epoch, in key order (see "Peaks");
    /// only in an epoch's last part.
    pub(super) levels: Vec<(Key, Level)>,
    /// Sessions found so far by this shard (for the progress report); only
    /// in an epoch's last part.
    pub(super) sessions: u64,
}

/// What a worker sends the merger: its records in key order, in parts of
/// about [`PART_BYTES`]; `last` ends its share of an epoch.
pub(super) struct Part {
    pub(super) chunks: Chunks,
    pub(super) last: bool,
}

/// Where a worker's sinks render records: one buffer and index shared by its
/// analyzers (their records interleave in key order), sent on as a [`Part`]
/// whenever it holds [`PART_BYTES`], so that no epoch, however much it
/// emits (every flow flushed at once), is held whole.
pub(super) struct Outbox {
    pub(super) chunks: Chunks,
    pub(super) part_bytes: usize,
    /// `None`: the records are not wanted (a worker's copy of the reader
    /// duties that worker 0 reports), and are dropped.
    pub(super) tx: Option<SyncSender<Part>>,
    /// Emptied buffers back from the merger, so that parts reuse memory
    /// instead of allocating (and faulting in) megabytes afresh.
    pub(super) spare: Option<Receiver<Chunks>>,
}

impl Outbox {
    pub(super) fn new(
        tx: Option<SyncSender<Part>>,
        spare: Option<Receiver<Chunks>>,
        part_bytes: usize,
    ) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Outbox {
            chunks: Chunks::default(),
            part_bytes,
            tx,
            spare,
        }))
    }

    /// Sends what is held; false when the merger has gone (it failed).
    pub(super) fn send(
        &mut self,
        last: bool,
        levels: &mut Vec<(Key, Level)>,
        sessions: u64,
    ) -> bool {
        let Some(tx) = &self.tx else {
            self.chunks.data.clear();
            self.chunks.index.clear();
            levels.clear();
            return true;
        };
        let mut next = self
            .spare
            .as_ref()
            .and_then(|s| s.try_recv().ok())
            .unwrap_or_default();
        next.data.clear();
        next.index.clear();
        next.levels.clear();
        let mut chunks = std::mem::replace(&mut self.chunks, next);
        chunks.levels.append(levels);
        chunks.sessions = sessions;
        tx.send(Part { chunks, last }).is_ok()
    }
}

/// The bytes a writer renders, into an [`Outbox`]. Single-threaded (`Rc`):
/// each worker owns its own.
#[derive(Clone)]
pub(super) struct ChunkWriter(Rc<RefCell<Outbox>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().chunks.data.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().chunks.data.extend_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders records with the real writer and tags each with its key: a
/// wrapper around the sink, so that no stage knows the merge's ordering.
pub(super) struct ShardSink {
    pub(super) inner: Box<dyn Sink>,
    pub(super) out: Rc<RefCell<Outbox>>,
    /// Shared with the flow table's [`Timeline`](super::timeline::Timeline),
    /// which sets the close part of it.
    pub(super) key: KeyCell,
}

impl ShardSink {
    pub(super) fn new(format: &Format, out: &Rc<RefCell<Outbox>>) -> Self {
        ShardSink {
            inner: format.sink(ChunkWriter(out.clone()), false),
            out: out.clone(),
            key: KeyCell::default(),
        }
    }

    /// Records from here on come from `packet`, in `phase`.
    pub(super) fn at(&mut self, packet: u64, phase: u8) {
        self.key.set((packet, phase, 0, 0, 0));
    }

    /// Closes the record just rendered (if it wrote anything), and sends a
    /// full part on.
    pub(super) fn cut(&mut self, r: io::Result<()>) -> io::Result<()> {
        let mut out = self.out.borrow_mut();
        let len = out.chunks.data.len();
        if out.chunks.index.last().map_or(0, |l| l.1) < len {
            let key = self.key.get();
            out.chunks.index.push((key, len));
            self.key.set((key.0, key.1, key.2, key.3, key.4 + 1));
        }
        if len >= out.part_bytes && !out.send(false, &mut Vec::new(), 0) {
            r?;
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the merging thread has stopped",
            ));
        }
        r
    }
}
impl Sink for ShardSink {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        let r = self.inner.capture(rec);
        self.cut(r)
    }
    fn session(&mut self, s: &SessionView<'_>) -> io::Result<()> {
        let r = self.inner.session(s);
        self.cut(r)
    }
    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        let r = self.inner.message(m);
        self.cut(r)
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        let r = self.inner.anomaly(a);
        self.cut(r)
    }
    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        let r = self.inner.gap(g);
        self.cut(r)
    }
    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        let r = self.inner.stream(session, dir, data);
        self.cut(r)
    }
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        let r = self.inner.stream_gap(session, dir, offset, len);
        self.cut(r)
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        let r = self.inner.session_end(rec);
        self.cut(r)
    }
    // Statistics are summed and written by the merger.
    fn stats(&mut self, _rec: &StatsRecord) -> io::Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn wants_streams(&self) -> bool {
        self.inner.wants_streams()
    }
    fn wants_frames(&self) -> bool {
        self.inner.wants_frames()
    }
    fn wants_payloads(&self) -> bool {
        self.inner.wants_payloads()
    }
}
