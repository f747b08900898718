//! Sharded multi-threaded runs (`wssniff read --threads N`), with output
//! byte-identical to the single-threaded run.
//!
//! # Design
//!
//! * **Reader** (one thread): reads the captures and decodes every packet with
//!   the real [`Decoder`](crate::decode::Decoder) (so IP fragments are
//!   reassembled before routing), counts packets and skips, and reports
//!   capture notices and IP-layer anomalies, exactly as [`Analyzer::packet`]
//!   does. Each TCP segment is copied into a batch for worker
//!   `hash(normalized 4-tuple) % N`, with its global packet number and the
//!   packet-time clock.
//! * **Workers** (N threads): each runs its own [`Analyzer`] (flow table,
//!   HTTP, WebSocket, messages) over its segments, with a sink that renders
//!   every record with the real writer ([`JsonSink`], [`TranscriptSink`]) into
//!   memory, tagged with an ordering key.
//! * **Merger** (the calling thread): writes the records of all shards in key
//!   order, then the summed statistics.
//!
//! # Ordering key
//!
//! `(packet, phase, list, order, seq)`: the global number of the packet whose
//! processing emitted the record; phase 0 for flows timed out when that packet
//! advanced the clock (in `(list, order)` = (timeout class, packet that last
//! touched the flow) order, which is the order the single flow table expires
//! them in), phase 1 for the packet's own segment, phase 2 for what the
//! reader reports after it (IP anomalies, capture notices); `seq` counts
//! records within that. End of input is packet `u64::MAX`: phase 0 the IP
//! fragments left over, phase 1 every flow in order of its first packet.
//!
//! # Peaks
//!
//! `tcp_peak_flows` and `tcp_peak_memory` are the largest flow count and
//! buffer memory of the whole flow table over time: the sum of the shards'
//! at some instant, not the largest of any shard. Each worker logs its flow
//! table's [`Level`] (largest and final values) for each step that changed
//! it, keyed like its records: one step per flow closed in order (timeouts,
//! end of input; the single table interleaves these across shards, and a
//! close can briefly raise memory), one for the rest of each phase. The
//! merger walks every shard's steps of an epoch in key order, which is the
//! single-threaded order, keeping each shard's current values: a step's
//! peak plus the other shards' current values is a value the single table
//! reached, and every value it reached is one of these. Steps are kept per
//! epoch only.
//!
//! # Packet time
//!
//! The flow table times flows out when packet time (the largest timestamp
//! of any segment) enters a new second. A shard sees only its own packets, so
//! the reader sends each segment with the global clock, and every other
//! shard a tick whenever the clock enters a new second: expiry then happens at
//! the same packet, for the same flows, as in a single-threaded run.
//!
//! # Lock step and memory
//!
//! Work moves in epochs (at most [`EPOCH_PACKETS`] packets or
//! [`EPOCH_BYTES`] bytes of payload): every worker gets one batch per epoch
//! (possibly empty) and answers with one batch of records, so the merger can
//! write an epoch as soon as every shard has answered it. Channels hold at
//! most [`QUEUE_EPOCHS`] epochs each way (backpressure): memory is bounded
//! whatever the capture size.
//!
//! # The one intended difference
//!
//! Limits that are global in a single-threaded run (`--max-flows`,
//! `--memcap`) are per shard (limit / N): output differs only when one of
//! them is hit.
//!
//! `--export` runs single-threaded (the CLI's choice): its files are written
//! per session by one writer.

use crate::capture::CaptureError;
use crate::decode::Segment;
use crate::pipeline::{Analyzer, Config, Progress};
use crate::session::{AnomalyRecord, CaptureRecord, GapRecord, SessionEndRecord, StatsRecord};
use crate::sink::{
    JsonSink, MessageView, SessionView, Sink, Tee, TranscriptOptions, TranscriptSink,
};
use crate::tcp::Level;
use crate::types::{Dir, PacketNo, Timestamp};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Most packets in one epoch.
pub const EPOCH_PACKETS: usize = 1024;
/// Most payload bytes routed in one epoch (a soft limit: one packet more).
pub const EPOCH_BYTES: usize = 1 << 20;
/// Epochs queued per channel.
pub const QUEUE_EPOCHS: usize = 2;

/// What the run writes.
#[derive(Clone, Debug)]
pub enum Format {
    /// JSON Lines ([`JsonSink`]), ending with the stats record.
    Json,
    /// The transcript ([`TranscriptSink`]).
    Transcript(TranscriptOptions),
    /// Nothing but the statistics returned.
    StatsOnly,
}

impl Format {
    fn sink(&self, w: ChunkWriter) -> Box<dyn Sink> {
        match self {
            Format::Json => Box::new(JsonSink::new(w)),
            Format::Transcript(o) => Box::new(TranscriptSink::new(w, o.clone())),
            Format::StatsOnly => Box::new(Tee::default()),
        }
    }
}

/// How a sharded run ended, when writing did not fail.
pub struct Outcome {
    pub stats: StatsRecord,
    pub capture_error: Option<CaptureError>,
}

/// The number of threads `--threads` defaults to.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

type Key = (u64, u8, u8, u64, u32);

/// Rendered records of one epoch of one stream: `data` split at `ends`.
#[derive(Default)]
struct Chunks {
    data: Vec<u8>,
    index: Vec<(Key, usize)>,
    /// The flow table's levels over the epoch, in key order (see "Peaks").
    levels: Vec<(Key, Level)>,
    /// Sessions found so far by this shard (for the progress report).
    sessions: u64,
}

/// The bytes a writer renders, shared with the [`ShardSink`] that cuts them
/// into records. Single-threaded (`Rc`): each shard owns its own.
#[derive(Clone, Default)]
struct ChunkWriter(Rc<RefCell<Vec<u8>>>);

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Renders records with the real writer and tags each with its key.
struct ShardSink {
    inner: Box<dyn Sink>,
    buf: ChunkWriter,
    index: Vec<(Key, usize)>,
    key: Key,
}

impl ShardSink {
    fn new(format: &Format) -> Self {
        let buf = ChunkWriter::default();
        ShardSink {
            inner: format.sink(buf.clone()),
            buf,
            index: Vec::new(),
            key: (0, 0, 0, 0, 0),
        }
    }

    /// Records from here on come from `packet`, in `phase`.
    fn at(&mut self, packet: u64, phase: u8) {
        self.key = (packet, phase, 0, 0, 0);
    }

    /// Closes the record just rendered (if it wrote anything).
    fn cut(&mut self, r: io::Result<()>) -> io::Result<()> {
        let len = self.buf.0.borrow().len();
        if self.index.last().map_or(0, |l| l.1) < len {
            self.index.push((self.key, len));
            self.key.4 += 1;
        }
        r
    }

    /// The records rendered so far; `spare` (emptied) takes their place.
    fn take(&mut self, spare: Option<Chunks>) -> Chunks {
        let mut spare = spare.unwrap_or_default();
        spare.data.clear();
        spare.index.clear();
        spare.levels.clear();
        Chunks {
            data: std::mem::replace(&mut *self.buf.0.borrow_mut(), spare.data),
            index: std::mem::replace(&mut self.index, spare.index),
            levels: spare.levels,
            sessions: 0,
        }
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
    fn order_hint(&mut self, list: u8, order: u64) {
        self.key.2 = list;
        self.key.3 = order;
        self.key.4 = 0;
    }
}

/// A segment (or a clock tick, or a file boundary) for a worker.
enum Item {
    Seg {
        packet: PacketNo,
        ts: Timestamp,
        clock: Timestamp,
        src: SocketAddr,
        dst: SocketAddr,
        seq: u32,
        ack: u32,
        flags: u8,
        window: u16,
        missing: u32,
        /// Payload range in the batch's `data`.
        start: usize,
        end: usize,
    },
    Tick {
        packet: PacketNo,
        clock: Timestamp,
    },
    BeginFile(PacketNo),
}

/// One epoch of one worker's input.
#[derive(Default)]
struct Batch {
    items: Vec<Item>,
    data: Vec<u8>,
    /// Last batch: flush every flow. Carries the final packet-time clock.
    finish: Option<Option<Timestamp>>,
}

/// Which worker gets a flow: a hash of its unordered 4-tuple, the same both
/// ways and for every packet of the flow.
pub fn shard_of(a: SocketAddr, b: SocketAddr, shards: usize) -> usize {
    let key = if a <= b { (a, b) } else { (b, a) };
    // SipHash with fixed keys: deterministic across runs and platforms.
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    key.hash(&mut h);
    (h.finish() % shards.max(1) as u64) as usize
}

/// Per-shard share of the limits that are global in a single-threaded run.
fn shard_config(cfg: &Config, shards: usize) -> Config {
    let mut c = cfg.clone();
    c.tcp.max_flows = (c.tcp.max_flows / shards).max(1);
    c.tcp.memcap = (c.tcp.memcap / shards).max(1);
    c
}

/// Reads `paths` as one capture with `threads` workers (at least 1), writes
/// the records in `format` to `out` (the caller writes any `capture` record
/// first), then the statistics; returns them. `progress` is driven from the
/// reader thread; its session counts lag a few epochs behind.
pub fn run_files<W: Write>(
    paths: &[PathBuf],
    cfg: Config,
    threads: usize,
    format: Format,
    out: &mut W,
    progress: &mut (dyn Progress + Send),
) -> io::Result<Outcome> {
    let n = threads.max(1);
    let shard_cfg = shard_config(&cfg, n);
    let sessions = AtomicU64::new(0);
    let sessions = &sessions;
    std::thread::scope(|scope| {
        let mut to_workers = Vec::with_capacity(n);
        let mut from_workers = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let mut batch_returns = Vec::with_capacity(n);
        let mut chunk_returns = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = sync_channel::<Batch>(QUEUE_EPOCHS);
            let (otx, orx) = sync_channel::<Chunks>(QUEUE_EPOCHS);
            // Emptied buffers go back where they were filled (see `Spare`).
            let (btx, brx) = sync_channel::<Batch>(1);
            let (ctx, crx) = sync_channel::<Chunks>(1);
            to_workers.push(tx);
            from_workers.push(orx);
            batch_returns.push(brx);
            chunk_returns.push(ctx);
            let c = shard_cfg.clone();
            let f = format.clone();
            let spare = Spare {
                give: btx,
                take: crx,
            };
            let h = std::thread::Builder::new()
                .name(format!("wssniff-shard-{i}"))
                .spawn_scoped(scope, move || worker(c, &f, rx, otx, spare))?;
            handles.push(h);
        }
        let (rtx, rrx) = sync_channel::<Chunks>(QUEUE_EPOCHS);
        let f = format.clone();
        let reader_handle = std::thread::Builder::new()
            .name("wssniff-reader".to_owned())
            .spawn_scoped(scope, move || {
                let to = Outputs {
                    workers: to_workers,
                    returned: batch_returns,
                    merger: rtx,
                };
                reader(paths, cfg, &f, to, progress, sessions)
            })?;

        let merged = merge(&rrx, &from_workers, &chunk_returns, out, sessions);
        drop(chunk_returns);
        // Unblock every thread before joining (on a write error they would
        // wait on full channels).
        drop(rrx);
        drop(from_workers);
        let joined = |r: std::thread::Result<io::Result<StatsRecord>>| {
            r.unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")))
        };
        let mut shard_stats = Vec::with_capacity(n);
        let (peaks, mut first_err) = match merged {
            Ok(p) => (p, None),
            Err(e) => (Peaks::default(), Some(e)),
        };
        for h in handles {
            match joined(h.join()) {
                Ok(s) => shard_stats.push(s),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        let (reader_stats, capture_error) = match reader_handle.join() {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(first_err.unwrap_or(e)),
            Err(_) => {
                return Err(first_err.unwrap_or_else(|| io::Error::other("the reader panicked")))
            }
        };
        if let Some(e) = first_err {
            return Err(e);
        }
        shard_stats.push(reader_stats);
        let mut stats = sum_stats(&shard_stats);
        // The whole table's peaks, not the largest shard's (see "Peaks").
        for (k, v) in [
            ("tcp_peak_flows", peaks.flows),
            ("tcp_peak_memory", peaks.memory),
        ] {
            if let Some(c) = stats.counters.get_mut(k) {
                *c = v;
            }
        }
        match &format {
            Format::Json => {
                let mut s = JsonSink::new(&mut *out);
                s.stats(&stats)?;
                s.finish()?;
            }
            Format::Transcript(o) => {
                let mut s = TranscriptSink::new(&mut *out, o.clone());
                s.stats(&stats)?;
                s.finish()?;
            }
            Format::StatsOnly => out.flush()?,
        }
        Ok(Outcome {
            stats,
            capture_error,
        })
    })
}

/// The whole flow table's levels, summed from the shards' steps.
#[derive(Default)]
struct Peaks {
    /// Each shard's current level (indexed like `epoch`: 0 is the reader).
    current: Vec<Level>,
    flows: u64,
    memory: u64,
    /// One epoch's steps of every shard: (key, shard, level).
    steps: Vec<(Key, usize, Level)>,
}

impl Peaks {
    /// Walks one epoch's steps in single-threaded order.
    fn epoch(&mut self, epoch: &[Chunks]) {
        self.current.resize(epoch.len(), Level::default());
        self.steps.clear();
        for (s, c) in epoch.iter().enumerate() {
            self.steps.extend(c.levels.iter().map(|&(k, l)| (k, s, l)));
        }
        // A key is unique within a shard: (key, shard) orders every step.
        self.steps.sort_unstable_by_key(|&(k, s, _)| (k, s));
        let mut flows: u64 = self.current.iter().map(|l| l.flows).sum();
        let mut memory: u64 = self.current.iter().map(|l| l.memory).sum();
        for &(_, s, l) in &self.steps {
            let Some(cur) = self.current.get_mut(s) else {
                continue;
            };
            let other_flows = flows.saturating_sub(cur.flows);
            let other_memory = memory.saturating_sub(cur.memory);
            self.flows = self.flows.max(other_flows + l.peak_flows);
            self.memory = self.memory.max(other_memory + l.peak_memory);
            flows = other_flows + l.flows;
            memory = other_memory + l.memory;
            *cur = l;
        }
        self.steps.clear();
    }
}

/// Writes epoch after epoch, each in key order, until the reader is done;
/// returns the whole flow table's peaks.
fn merge<W: Write>(
    reader: &Receiver<Chunks>,
    workers: &[Receiver<Chunks>],
    returns: &[SyncSender<Chunks>],
    out: &mut W,
    sessions: &AtomicU64,
) -> io::Result<Peaks> {
    let mut epoch: Vec<Chunks> = Vec::with_capacity(workers.len() + 1);
    let mut order: Vec<(Key, usize, usize, usize)> = Vec::new();
    let mut peaks = Peaks::default();
    while let Ok(r) = reader.recv() {
        epoch.clear();
        epoch.push(r);
        for w in workers {
            // A worker that stopped early failed: its join reports why.
            match w.recv() {
                Ok(c) => epoch.push(c),
                Err(_) => return Ok(peaks),
            }
        }
        peaks.epoch(&epoch);
        sessions.store(epoch.iter().map(|c| c.sessions).sum(), Ordering::Relaxed);
        order.clear();
        for (s, c) in epoch.iter().enumerate() {
            let mut start = 0;
            for &(key, end) in &c.index {
                order.push((key, s, start, end));
                start = end;
            }
        }
        // Keys are unique across shards: an unstable sort is deterministic.
        order.sort_unstable_by_key(|o| o.0);
        for &(_, s, start, end) in &order {
            if let Some(bytes) = epoch.get(s).and_then(|c| c.data.get(start..end)) {
                out.write_all(bytes)?;
            }
        }
        // Worker `i`'s chunks are `epoch[i + 1]`: give their buffers back.
        for (c, back) in epoch.drain(..).skip(1).zip(returns) {
            let _ = back.try_send(c);
        }
    }
    Ok(peaks)
}

/// Emptied buffers travelling back, so that each epoch reuses the memory of
/// an earlier one instead of allocating (and faulting in) megabytes afresh:
/// a worker gives its input batches back to the reader and takes back its
/// rendered chunks from the merger. Bounded channels; when one is full the
/// buffer is simply freed.
struct Spare {
    give: SyncSender<Batch>,
    take: Receiver<Chunks>,
}

fn worker(
    cfg: Config,
    format: &Format,
    rx: Receiver<Batch>,
    tx: SyncSender<Chunks>,
    spare: Spare,
) -> io::Result<StatsRecord> {
    let mut an = Analyzer::new(cfg, ShardSink::new(format));
    an.trace_levels();
    let mut log = LevelLog::default();
    while let Ok(mut batch) = rx.recv() {
        for item in &batch.items {
            match *item {
                Item::BeginFile(base) => an.begin_file_at(base),
                Item::Tick { packet, clock } => {
                    an.sink_mut().at(packet, 0);
                    an.advance_clock(clock)?;
                    log.step(&mut an, packet, 0);
                }
                Item::Seg {
                    packet,
                    ts,
                    clock,
                    src,
                    dst,
                    seq,
                    ack,
                    flags,
                    window,
                    missing,
                    start,
                    end,
                } => {
                    an.sink_mut().at(packet, 0);
                    an.advance_clock(clock)?;
                    log.step(&mut an, packet, 0);
                    an.sink_mut().at(packet, 1);
                    let seg = Segment {
                        src,
                        dst,
                        seq,
                        ack,
                        flags,
                        window,
                        payload: batch.data.get(start..end).unwrap_or(&[]),
                        missing,
                    };
                    an.segment(&seg, packet, ts)?;
                    log.step(&mut an, packet, 1);
                }
            }
        }
        let last = batch.finish.is_some();
        if let Some(clock) = batch.finish {
            if let Some(c) = clock {
                an.sink_mut().at(u64::MAX, 1);
                an.advance_clock(c)?;
                log.step(&mut an, u64::MAX, 1);
            }
            an.sink_mut().at(u64::MAX, 1);
            an.end_of_input()?;
            log.step(&mut an, u64::MAX, 1);
        }
        let mut chunks = an.sink_mut().take(spare.take.try_recv().ok());
        chunks.levels.append(&mut log.steps);
        chunks.sessions = an.sessions();
        if tx.send(chunks).is_err() || last {
            break;
        }
        batch.items.clear();
        batch.data.clear();
        let _ = spare.give.try_send(batch);
    }
    Ok(an.stats())
}

/// A worker's flow-table levels as steps keyed like its records (see
/// "Peaks" in the module documentation).
#[derive(Default)]
struct LevelLog {
    /// The level at the end of the last step.
    last: Level,
    closes: Vec<(u8, PacketNo, Level)>,
    steps: Vec<(Key, Level)>,
}

impl LevelLog {
    /// Logs what `an` did as (`packet`, `phase`): a step per flow closed in
    /// order, under the key its records got, then one for the rest, after
    /// them, when it changed anything.
    fn step(&mut self, an: &mut Analyzer<ShardSink>, packet: u64, phase: u8) {
        an.take_close_levels(&mut self.closes);
        for (list, order, l) in self.closes.drain(..) {
            self.steps.push(((packet, phase, list, order, 0), l));
            self.last = l;
        }
        let l = an.take_level();
        if l != self.last.flat() {
            self.steps
                .push(((packet, phase, u8::MAX, u64::MAX, u32::MAX), l));
        }
        self.last = l;
    }
}

/// Packet-time clock as the flow table keeps it, to know when it fires.
struct Clock {
    now: Option<Timestamp>,
    next_check_secs: i64,
}

impl Clock {
    /// Advances to `ts`; whether the table checks timeouts at this packet.
    fn advance(&mut self, ts: Timestamp) -> (Timestamp, bool) {
        let now = match self.now {
            Some(c) if c >= ts => c,
            _ => {
                self.now = Some(ts);
                ts
            }
        };
        let fire = now.secs >= self.next_check_secs;
        if fire {
            self.next_check_secs = now.secs.saturating_add(1);
        }
        (now, fire)
    }
}

type ReaderResult = io::Result<(StatsRecord, Option<CaptureError>)>;

/// Where the reader sends its work.
struct Outputs {
    workers: Vec<SyncSender<Batch>>,
    /// Emptied batches coming back from each worker (see [`Spare`]).
    returned: Vec<Receiver<Batch>>,
    merger: SyncSender<Chunks>,
}

/// How often (packets) the reader reports progress, as `pipeline::run_files`.
const PROGRESS_PACKETS: u64 = 4096;

fn reader(
    paths: &[PathBuf],
    cfg: Config,
    format: &Format,
    to: Outputs,
    progress: &mut (dyn Progress + Send),
    sessions: &AtomicU64,
) -> ReaderResult {
    let Outputs {
        workers: to_workers,
        returned,
        merger: to_merger,
    } = to;
    let n = to_workers.len();
    let mut an = Analyzer::new(cfg, ShardSink::new(format));
    let mut batches: Vec<Batch> = (0..n).map(|_| Batch::default()).collect();
    let mut clock = Clock {
        now: None,
        next_check_secs: i64::MIN,
    };
    let mut global: u64 = 0;
    let mut in_epoch = 0usize;
    let mut epoch_bytes = 0usize;
    let mut capture_error = None;
    let mut notices = Vec::new();
    // Sends one epoch to everyone; false when the merger has gone (it failed).
    let send_epoch = |batches: &mut Vec<Batch>, an: &mut Analyzer<ShardSink>| -> bool {
        for ((b, tx), back) in batches.iter_mut().zip(&to_workers).zip(&returned) {
            let next = back.try_recv().unwrap_or_default();
            if tx.send(std::mem::replace(b, next)).is_err() {
                return false;
            }
        }
        to_merger.send(an.sink_mut().take(None)).is_ok()
    };
    let found = || sessions.load(Ordering::Relaxed);
    'files: for (i, path) in paths.iter().enumerate() {
        let mut rd = match crate::pipeline::open_input(i, path, progress) {
            Ok(r) => r,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        an.begin_file();
        for b in batches.iter_mut() {
            b.items.push(Item::BeginFile(global));
        }
        loop {
            match rd.next_packet() {
                Ok(Some(pkt)) => {
                    global += 1;
                    let packet = global;
                    an.sink_mut().at(packet, 2);
                    let ts = pkt.ts;
                    let mut route = |seg: &Segment<'_>, p: PacketNo| {
                        let (now, fire) = clock.advance(ts);
                        let w = shard_of(seg.src, seg.dst, n);
                        if fire {
                            for (i, b) in batches.iter_mut().enumerate() {
                                if i != w {
                                    b.items.push(Item::Tick {
                                        packet: p,
                                        clock: now,
                                    });
                                }
                            }
                        }
                        if let Some(b) = batches.get_mut(w) {
                            let start = b.data.len();
                            b.data.extend_from_slice(seg.payload);
                            b.items.push(Item::Seg {
                                packet: p,
                                ts,
                                clock: now,
                                src: seg.src,
                                dst: seg.dst,
                                seq: seg.seq,
                                ack: seg.ack,
                                flags: seg.flags,
                                window: seg.window,
                                missing: seg.missing,
                                start,
                                end: b.data.len(),
                            });
                        }
                        epoch_bytes += seg.payload.len();
                    };
                    an.packet_routed(&pkt, &mut route)?;
                    in_epoch += 1;
                    if global % PROGRESS_PACKETS == 0 {
                        progress.advance(rd.bytes_consumed(), found());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    capture_error = Some(e);
                    break 'files;
                }
            }
            rd.drain_notices(&mut notices);
            for nt in notices.drain(..) {
                an.notice(&nt)?;
            }
            if in_epoch >= EPOCH_PACKETS || epoch_bytes >= EPOCH_BYTES {
                if !send_epoch(&mut batches, &mut an) {
                    return Ok((an.stats(), capture_error));
                }
                in_epoch = 0;
                epoch_bytes = 0;
            }
        }
        rd.drain_notices(&mut notices);
        for nt in notices.drain(..) {
            an.notice(&nt)?;
        }
        progress.advance(rd.bytes_consumed(), found());
    }
    progress.done();
    an.sink_mut().at(u64::MAX, 0);
    an.end_of_input()?;
    for b in batches.iter_mut() {
        b.finish = Some(clock.now);
    }
    send_epoch(&mut batches, &mut an);
    Ok((an.stats(), capture_error))
}

/// The statistics of the whole run from the shards' (the reader's included):
/// sums, except `tcp_peak_*` counters, the largest of any shard.
pub fn sum_stats(parts: &[StatsRecord]) -> StatsRecord {
    fn add(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>, peak_max: bool) {
        for (k, v) in from {
            let e = into.entry(k.clone()).or_default();
            if peak_max && k.starts_with("tcp_peak_") {
                *e = (*e).max(*v);
            } else {
                *e += v;
            }
        }
    }
    let mut s = StatsRecord::default();
    for p in parts {
        s.packets += p.packets;
        s.bytes += p.bytes;
        add(&mut s.skipped, &p.skipped, false);
        s.flows += p.flows;
        s.sessions += p.sessions;
        add(&mut s.messages, &p.messages, false);
        s.gaps += p.gaps;
        s.gap_bytes += p.gap_bytes;
        add(&mut s.anomalies, &p.anomalies, false);
        add(&mut s.counters, &p.counters, true);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{self, NoProgress};
    use crate::synth::gen::{generate, GenConfig};

    fn single(paths: &[PathBuf], cfg: &Config, format: &Format) -> (Vec<u8>, StatsRecord) {
        // Writers into a shared buffer: a `Tee` needs `'static` sinks.
        let w = ChunkWriter::default();
        let sink: Box<dyn Sink> = match format {
            Format::Json => Box::new(JsonSink::new(w.clone())),
            Format::Transcript(o) => Box::new(TranscriptSink::new(w.clone(), o.clone())),
            Format::StatsOnly => Box::new(Tee::default()),
        };
        let r =
            pipeline::run_files(paths, cfg.clone(), Tee::new(vec![sink]), &mut NoProgress).unwrap();
        let out = w.0.borrow().clone();
        (out, r.stats)
    }

    fn sharded(
        paths: &[PathBuf],
        cfg: &Config,
        n: usize,
        format: &Format,
    ) -> (Vec<u8>, StatsRecord) {
        let mut out = Vec::new();
        let r = run_files(
            paths,
            cfg.clone(),
            n,
            format.clone(),
            &mut out,
            &mut NoProgress,
        )
        .unwrap();
        (out, r.stats)
    }

    fn assert_identical(paths: &[PathBuf], cfg: &Config) -> StatsRecord {
        let formats = [
            Format::Json,
            Format::Transcript(TranscriptOptions {
                summary: true,
                ..Default::default()
            }),
        ];
        let mut stats = StatsRecord::default();
        for format in &formats {
            let (want, s1) = single(paths, cfg, format);
            assert!(!want.is_empty());
            for n in [1, 2, 3, 5] {
                let (got, s2) = sharded(paths, cfg, n, format);
                // Compared as text: a difference shows where it is.
                assert_eq!(
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got),
                    "{paths:?} {format:?} threads {n}"
                );
                assert_eq!(s1, s2, "{paths:?} {format:?} threads {n}");
            }
            stats = s1;
        }
        stats
    }

    fn testdata_captures() -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut dirs = vec![
            PathBuf::from("testdata/real"),
            PathBuf::from("testdata/corpus"),
        ];
        while let Some(d) = dirs.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if p.is_dir() {
                    dirs.push(p);
                } else if [".pcap", ".pcapng", ".cap", ".pcap.gz"]
                    .iter()
                    .any(|x| name.ends_with(x))
                {
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn every_testdata_capture_is_identical_sharded() {
        let caps = testdata_captures();
        assert!(caps.len() >= 10, "found only {caps:?}");
        for c in &caps {
            assert_identical(std::slice::from_ref(c), &Config::default());
        }
        // Several files as one capture: file indexes and per-file numbers.
        assert_identical(&caps[..3], &Config::default());
    }

    /// Rewrites a pcap's timestamps, stretching time `factor` times, so that
    /// flows go idle long enough to time out.
    fn stretch_time(pcap: &[u8], factor: u64) -> Vec<u8> {
        let mut out = pcap.to_vec();
        let magic = u32::from_le_bytes(out[0..4].try_into().unwrap());
        let per_sec: u64 = match magic {
            0xa1b2_c3d4 => 1_000_000,
            0xa1b2_3c4d => 1_000_000_000,
            m => panic!("unexpected pcap magic {m:#x}"),
        };
        let mut at = 24;
        let mut base = None;
        while at + 16 <= out.len() {
            let secs = u32::from_le_bytes(out[at..at + 4].try_into().unwrap()) as u64;
            let frac = u32::from_le_bytes(out[at + 4..at + 8].try_into().unwrap()) as u64;
            let t = secs * per_sec + frac;
            let b = *base.get_or_insert(t);
            let t2 = b + (t - b) * factor;
            out[at..at + 4].copy_from_slice(&((t2 / per_sec) as u32).to_le_bytes());
            out[at + 4..at + 8].copy_from_slice(&((t2 % per_sec) as u32).to_le_bytes());
            let incl = u32::from_le_bytes(out[at + 8..at + 12].try_into().unwrap()) as usize;
            at += 16 + incl;
        }
        out
    }

    #[test]
    fn timeouts_reordering_and_loss_are_identical_sharded() {
        let gen = GenConfig {
            seed: 7,
            connections: 24,
            target_bytes: 2 << 20,
            fragment: true,
            deflate: true,
            reorder: 0.05,
            retransmit: 0.03,
            loss: 0.02,
            mss: 1460,
            ..Default::default()
        };
        let mut pcap = Vec::new();
        generate(&gen, &mut pcap, io::sink()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stretched.pcap");
        std::fs::write(&path, stretch_time(&pcap, 1_000)).unwrap();
        let mut cfg = Config::default();
        cfg.tcp.timeout_new_secs = 1;
        cfg.tcp.timeout_established_secs = 2;
        cfg.tcp.timeout_closed_secs = 2;
        let stats = assert_identical(&[path], &cfg);
        let counter = |k: &str| stats.counters.get(k).copied().unwrap_or(0);
        assert!(counter("tcp_flows_timed_out") > 0, "no timeouts: {stats:?}");
        assert!(stats.sessions > 5, "no sessions: {stats:?}");
        assert!(counter("tcp_gaps") > 0, "no loss: {stats:?}");
        assert!(counter("tcp_ooo_segments") > 0, "no reordering: {stats:?}");
    }

    #[test]
    fn stats_sum_and_peaks_take_the_largest() {
        let mut a = StatsRecord {
            packets: 3,
            ..Default::default()
        };
        a.counters.insert("tcp_peak_flows".into(), 5);
        a.counters.insert("tcp_segments".into(), 2);
        let mut b = a.clone();
        b.counters.insert("tcp_peak_flows".into(), 7);
        let s = sum_stats(&[a, b]);
        assert_eq!(s.packets, 6);
        assert_eq!(s.counters["tcp_peak_flows"], 7);
        assert_eq!(s.counters["tcp_segments"], 4);
    }

    fn level(flows: u64, memory: u64, peak_memory: u64) -> Level {
        Level {
            peak_flows: flows,
            flows,
            peak_memory,
            memory,
        }
    }

    #[test]
    fn peaks_add_shards_in_single_threaded_order() {
        let chunks = |levels: Vec<(Key, Level)>| Chunks {
            levels,
            ..Default::default()
        };
        let rest = |packet| (packet, 1, u8::MAX, u64::MAX, u32::MAX);
        // Packet 1: shard 1 opens a flow holding 900 bytes; packet 2: shard
        // 2 one holding 1000. Then packet 9 times both out, in the single
        // table's order (by the packet that last touched each flow), and
        // flushing shard 1's briefly holds 5000 bytes.
        let run = |order1: u64, order2: u64| {
            let mut p = Peaks::default();
            p.epoch(&[
                chunks(vec![]),
                chunks(vec![(rest(1), level(1, 900, 900))]),
                chunks(vec![(rest(2), level(1, 1000, 1000))]),
            ]);
            assert_eq!((p.flows, p.memory), (2, 1900));
            p.epoch(&[
                chunks(vec![]),
                chunks(vec![((9, 0, 1, order1, 0), level(0, 0, 5000))]),
                chunks(vec![((9, 0, 1, order2, 0), level(0, 0, 1000))]),
            ]);
            (p.flows, p.memory)
        };
        // Shard 2's flow closes first: 5000 alone.
        assert_eq!(run(2, 1), (2, 5000));
        // Shard 1's first: shard 2 still holds its 1000 bytes.
        assert_eq!(run(1, 2), (2, 6000));
    }

    #[test]
    fn shard_of_is_symmetric_and_in_range() {
        let a: SocketAddr = "10.0.0.1:1234".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        for n in 1..8 {
            assert_eq!(shard_of(a, b, n), shard_of(b, a, n));
            assert!(shard_of(a, b, n) < n);
        }
    }
}
