//! Sharded multi-threaded runs (`wssniff read --threads N`), with output
//! byte-identical to the single-threaded run.
//!
//! # Design
//!
//! * **Workers** (N threads) each read the whole capture themselves, with
//!   nothing shared and nothing copied between threads, and decode every
//!   packet with the real [`Decoder`](crate::decode::Decoder) (so IP
//!   fragments are reassembled before routing). That part is cheap next to
//!   the analysis, and it spares a reader thread that would copy every
//!   payload once more and be the bottleneck. Worker `i` keeps the TCP
//!   segments whose `hash(normalized 4-tuple) % N` is `i`, and runs its own
//!   [`Analyzer`] (flow table, HTTP, WebSocket, messages) over them, with a
//!   sink that renders every record with the real writer ([`JsonSink`],
//!   [`TranscriptSink`]) into memory, tagged with an ordering key. Worker 0
//!   also reports what a single-threaded run reports per packet (counts,
//!   skips, capture notices, IP-layer anomalies), exactly as
//!   [`Analyzer::packet`] does; the others drop their copy of that.
//! * **Merger** (the calling thread): writes the records of all workers in
//!   key order, then the summed statistics.
//!
//! Inputs that cannot be read once per worker (stdin, pipes, gzip-compressed
//! files, which every worker would inflate again) run with one worker
//! ([`can_shard`]).
//!
//! # Ordering key
//!
//! `(packet, phase, list, order, seq)`: the global number of the packet whose
//! processing emitted the record; phase 0 for flows timed out when that packet
//! advanced the clock (in `(list, order)` = (timeout class, packet that last
//! touched the flow) order, which is the order the single flow table expires
//! them in), phase 1 for the packet's own segment, phase 2 for what is
//! reported per packet after it (IP anomalies, capture notices); `seq` counts
//! records within that. End of input is packet `u64::MAX`: phase 0 the IP
//! fragments left over, phase 1 every flow in order of its first packet.
//!
//! # Peaks
//!
//! `tcp_peak_flows` and `tcp_peak_memory` are the largest flow count and
//! buffer memory of the whole flow table over time: the sum of the shards'
//! at some instant, not the largest of any shard. Each worker logs its flow
//! table's level (largest and final values, `timeline::Level`) for each step that changed
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
//! of any segment) enters a new second. Every worker follows the global
//! clock over all segments, its own and the others', and moves its table's
//! clock whenever it enters a new second: expiry then happens at the same
//! packet, for the same flows, as in a single-threaded run.
//!
//! # Lock step and memory
//!
//! Work moves in epochs (at most [`EPOCH_PACKETS`] packets or
//! [`EPOCH_BYTES`] bytes of payload); since every worker sees every packet,
//! all cut them at the same packets. A worker sends its records in key
//! order, in parts of about [`PART_BYTES`], the last part of an epoch
//! marked: an epoch that emits a lot (every flow flushed at the end, or
//! timed out at once) is never held whole. The merger merges the workers'
//! parts of an epoch by key; the epoch's end tells it that a worker has no
//! more records before the next one. Channels hold at most [`QUEUE_PARTS`]
//! parts (backpressure): memory is bounded whatever the capture size.
//!
//! # The one intended difference
//!
//! Limits that are global in a single-threaded run (`--max-flows`,
//! `--memcap`, `--max-inflaters`) are per shard (limit / N): output differs
//! only when one of them is hit.
//!
//! `--export` runs single-threaded (the CLI's choice): its files are written
//! per session by one writer.

mod merge;
mod outbox;
mod timeline;

use super::{Analyzer, Config, Progress, RunStats, PROGRESS_PACKETS};
use crate::capture::CaptureError;
use crate::decode::Segment;
use crate::session::{StatsRecord, Tally};
use crate::sink::{JsonSink, Sink, TranscriptSink};
use crate::types::{PacketNo, Timestamp};
use merge::{merge, Peaks};
use outbox::{Chunks, Key, Outbox, Part, ShardSink};
use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use timeline::{Level, Timeline, Watermarks};

/// Most packets in one epoch.
pub const EPOCH_PACKETS: usize = 1024;
/// Most payload bytes routed in one epoch (a soft limit: one packet more).
pub const EPOCH_BYTES: usize = 1 << 20;
/// A worker sends its records on once it holds this many bytes of them.
pub const PART_BYTES: usize = 512 * 1024;
/// Parts queued per worker.
pub const QUEUE_PARTS: usize = 4;

/// Where a run cuts epochs and parts; other values than the defaults are
/// for tests, which make them tiny to shake out ordering bugs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    pub(crate) epoch_packets: usize,
    pub(crate) epoch_bytes: usize,
    pub(crate) part_bytes: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            epoch_packets: EPOCH_PACKETS,
            epoch_bytes: EPOCH_BYTES,
            part_bytes: PART_BYTES,
        }
    }
}

pub use super::output::Format;

/// How a sharded run ended, when writing did not fail.
pub struct Outcome {
    /// The run's `stats` record.
    pub stats: StatsRecord,
    /// The capture error that ended reading early, if any.
    pub capture_error: Option<CaptureError>,
}

/// The number of threads `--threads` defaults to.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Which worker gets a flow: a hash of its unordered 4-tuple, the same both
/// ways and for every packet of the flow. Every worker computes it for every
/// segment, so it is a few multiplications, not SipHash; it is fixed, so
/// runs and platforms agree.
pub fn shard_of(a: SocketAddr, b: SocketAddr, shards: usize) -> usize {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let h = mix(endpoint_word(lo) ^ mix(endpoint_word(hi)));
    (h % shards.max(1) as u64) as usize
}

fn endpoint_word(a: SocketAddr) -> u64 {
    let ip = match a.ip() {
        std::net::IpAddr::V4(v4) => u64::from(u32::from(v4)),
        std::net::IpAddr::V6(v6) => {
            let v = u128::from(v6);
            mix(v as u64) ^ (v >> 64) as u64
        }
    };
    ip ^ (u64::from(a.port()) << 40)
}

/// The splitmix64 finalizer: every input bit moves every output bit.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Per-shard share of the limits that are global in a single-threaded run.
fn shard_config(cfg: &Config, shards: usize) -> Config {
    let mut c = cfg.clone();
    c.tcp.max_flows = (c.tcp.max_flows / shards).max(1);
    c.tcp.memcap = (c.tcp.memcap / shards).max(1);
    c.message.max_inflaters = (c.message.max_inflaters / shards).max(1);
    c
}

/// Whether every worker can read `paths` on its own: regular files that are
/// not gzip-compressed (each worker would inflate the whole file again).
/// Anything else (stdin, a pipe, `.gz`) runs with one worker.
pub fn can_shard(paths: &[PathBuf]) -> bool {
    use std::io::Read;
    paths.iter().all(|p| {
        let regular =
            p.as_os_str() != "-" && std::fs::metadata(p).is_ok_and(|m| m.file_type().is_file());
        let mut magic = [0u8; 2];
        regular
            && std::fs::File::open(p)
                .and_then(|mut f| f.read_exact(&mut magic))
                .map_or(true, |()| magic != crate::capture::GZIP_MAGIC)
    })
}

/// Reads `paths` as one capture with `threads` workers (at least 1; one when
/// [`can_shard`] says no), writes the records in `format` to `out` (the
/// caller writes any `capture` record first), then the statistics; returns
/// them. `progress` is driven by worker 0; its session counts lag a few
/// epochs behind.
pub fn run_files<W: Write>(
    paths: &[PathBuf],
    cfg: Config,
    threads: usize,
    format: Format,
    out: &mut W,
    progress: &mut (dyn Progress + Send),
) -> io::Result<Outcome> {
    run_tuned(
        paths,
        cfg,
        threads,
        format,
        out,
        progress,
        Tuning::default(),
    )
}

/// [`run_files`] with epochs and parts cut as `tuning` says.
pub(crate) fn run_tuned<W: Write>(
    paths: &[PathBuf],
    cfg: Config,
    threads: usize,
    format: Format,
    out: &mut W,
    progress: &mut (dyn Progress + Send),
    tuning: Tuning,
) -> io::Result<Outcome> {
    let n = if can_shard(paths) { threads.max(1) } else { 1 };
    let shard_cfg = shard_config(&cfg, n);
    let sessions = AtomicU64::new(0);
    let sessions = &sessions;
    let mut progress = Some(progress);
    std::thread::scope(|scope| {
        let mut from_workers = Vec::with_capacity(n);
        let mut chunk_returns = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for me in 0..n {
            let (tx, rx) = sync_channel::<Part>(QUEUE_PARTS);
            // Emptied buffers go back to the worker that filled them.
            let (ctx, crx) = sync_channel::<Chunks>(2);
            from_workers.push(rx);
            chunk_returns.push(ctx);
            let job = Job {
                me,
                shards: n,
                paths,
                front_cfg: cfg.clone(),
                back_cfg: shard_cfg.clone(),
                format: format.clone(),
                tx,
                spare: crx,
                sessions,
                tuning,
            };
            let p = progress.take();
            let h = std::thread::Builder::new()
                .name(format!("wssniff-shard-{me}"))
                .spawn_scoped(scope, move || match p {
                    Some(p) => job.run(p),
                    None => job.run(&mut super::NoProgress),
                })?;
            handles.push(h);
        }

        // On a write error, `merge` drops its receivers, which unblocks
        // workers waiting on full channels before they are joined.
        let merged = merge(from_workers, chunk_returns, out, sessions);
        let (peaks, mut first_err) = match merged {
            Ok(p) => (p, None),
            Err(e) => (Peaks::default(), Some(e)),
        };
        let mut shard_stats = Vec::with_capacity(n + 1);
        let mut capture_error = None;
        for h in handles {
            let joined = h
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker thread panicked")));
            match joined {
                Ok(done) => {
                    shard_stats.push(done.back);
                    shard_stats.extend(done.front);
                    capture_error = capture_error.or(done.capture_error);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_err {
            return Err(e);
        }
        let mut total = RunStats::default();
        for s in &shard_stats {
            total.add(s);
        }
        // The whole table's peaks, not the largest shard's (see "Peaks").
        total.tcp.peak_flows = peaks.flows;
        total.tcp.peak_memory = peaks.memory;
        let stats = total.record();
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

/// What one worker does (see "Design").
struct Job<'a> {
    me: usize,
    shards: usize,
    paths: &'a [PathBuf],
    /// For the reader duties: the whole run's limits.
    front_cfg: Config,
    /// For this shard's flows: its share of them.
    back_cfg: Config,
    format: Format,
    tx: SyncSender<Part>,
    /// Emptied buffers back from the merger (see [`Outbox`]).
    spare: Receiver<Chunks>,
    sessions: &'a AtomicU64,
    tuning: Tuning,
}

/// How a worker ended.
struct Done {
    back: RunStats,
    /// Worker 0's reader statistics (packets, skips, IP layer).
    front: Option<RunStats>,
    capture_error: Option<CaptureError>,
}

impl Job<'_> {
    fn run(self, progress: &mut dyn Progress) -> io::Result<Done> {
        let Job {
            me,
            shards,
            paths,
            front_cfg,
            back_cfg,
            format,
            tx,
            spare,
            sessions,
            tuning,
        } = self;
        let reports = me == 0;
        let outbox = Outbox::new(Some(tx), Some(spare), tuning.part_bytes);
        // Worker 0's reader records go into its stream; the others' copies
        // are dropped.
        let front_box = if reports {
            outbox.clone()
        } else {
            Outbox::new(None, None, tuning.part_bytes)
        };
        let mut front = Analyzer::new(front_cfg, ShardSink::new(&format, &front_box));
        let mut back = Analyzer::new(back_cfg, ShardSink::new(&format, &outbox));
        let mut log = LevelLog::default();
        let key = back.sink_mut().key.clone();
        back.observe_flows(Box::new(Timeline {
            key,
            marks: log.marks.clone(),
        }));
        let mut clock = Clock {
            now: None,
            next_check_secs: i64::MIN,
        };
        let mut global: u64 = 0;
        let mut in_epoch = 0usize;
        let mut epoch_bytes = 0usize;
        let mut capture_error = None;
        let mut failed = None;
        // Sends one epoch; false when the merger has gone (it failed).
        let send_epoch = |back: &Analyzer<ShardSink>, log: &mut LevelLog| {
            if !reports {
                front_box.borrow_mut().send(true, &mut Vec::new(), 0);
            }
            outbox
                .borrow_mut()
                .send(true, &mut log.steps, back.sessions())
        };
        let found = || sessions.load(Ordering::Relaxed);
        'files: for (i, path) in paths.iter().enumerate() {
            let mut rd = match super::files::open_input(i, path, progress) {
                Ok(r) => r,
                Err(e) => {
                    capture_error = Some(e);
                    break;
                }
            };
            front.begin_file();
            back.begin_file_at(global);
            loop {
                match rd.next_packet() {
                    Ok(Some(pkt)) => {
                        global += 1;
                        front.sink_mut().at(global, 2);
                        let ts = pkt.ts;
                        let mut route = |seg: &Segment<'_>, p: PacketNo| {
                            let (now, fire) = clock.advance(ts);
                            epoch_bytes += seg.payload.len();
                            let mine = shards == 1 || shard_of(seg.src, seg.dst, shards) == me;
                            // Another shard's segment only moves the clock,
                            // and that only matters when it fires.
                            if !(mine || fire) || failed.is_some() {
                                return;
                            }
                            let r = (|| {
                                back.sink_mut().at(p, 0);
                                back.advance_clock(now)?;
                                log.step(&mut back, p, 0);
                                if mine {
                                    back.sink_mut().at(p, 1);
                                    back.segment(seg, p, ts)?;
                                    log.step(&mut back, p, 1);
                                }
                                io::Result::Ok(())
                            })();
                            if let Err(e) = r {
                                failed = Some(e);
                            }
                        };
                        front.packet_routed(&pkt, &mut route)?;
                        if let Some(e) = failed.take() {
                            return Err(e);
                        }
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
                front.notices_from(&mut rd)?;
                // Every worker sees every packet, so all cut epochs at the
                // same packets.
                if in_epoch >= tuning.epoch_packets || epoch_bytes >= tuning.epoch_bytes {
                    if !send_epoch(&back, &mut log) {
                        return Ok(Done {
                            back: back.stats(),
                            front: reports.then(|| front.stats()),
                            capture_error,
                        });
                    }
                    in_epoch = 0;
                    epoch_bytes = 0;
                }
            }
            front.notices_from(&mut rd)?;
            progress.advance(rd.bytes_consumed(), found());
        }
        progress.done();
        front.sink_mut().at(u64::MAX, 0);
        front.end_of_input()?;
        if let Some(c) = clock.now {
            back.sink_mut().at(u64::MAX, 1);
            back.advance_clock(c)?;
            log.step(&mut back, u64::MAX, 1);
        }
        back.sink_mut().at(u64::MAX, 1);
        back.end_of_input()?;
        log.step(&mut back, u64::MAX, 1);
        send_epoch(&back, &mut log);
        Ok(Done {
            back: back.stats(),
            front: reports.then(|| front.stats()),
            capture_error,
        })
    }
}

/// A worker's flow-table levels as steps keyed like its records (see
/// "Peaks" in the module documentation).
#[derive(Default)]
struct LevelLog {
    /// The level at the end of the last step.
    last: Level,
    /// Filled by the table's [`Timeline`].
    marks: Rc<RefCell<Watermarks>>,
    steps: Vec<(Key, Level)>,
}

impl LevelLog {
    /// Logs what `an` did as (`packet`, `phase`): a step per flow closed in
    /// order, under the key its records got, then one for the rest, after
    /// them, when it changed anything.
    fn step(&mut self, an: &mut Analyzer<ShardSink>, packet: u64, phase: u8) {
        let mut marks = self.marks.borrow_mut();
        for (list, order, l) in marks.closes.drain(..) {
            self.steps.push(((packet, phase, list, order, 0), l));
            self.last = l;
        }
        let (flows, memory) = an.flow_table_size();
        let l = marks.take(flows, memory);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{self, NoProgress};
    use crate::sink::{Tee, TranscriptOptions};
    use crate::synth::gen::{generate, GenConfig};
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A writer into a shared buffer: a `Tee` needs `'static` sinks.
    #[derive(Clone, Default)]
    struct Shared(Rc<RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn single(paths: &[PathBuf], cfg: &Config, format: &Format) -> (Vec<u8>, StatsRecord) {
        let w = Shared::default();
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

    /// Epochs of three packets, and every record a part of its own.
    const TINY: Tuning = Tuning {
        epoch_packets: 3,
        epoch_bytes: 100,
        part_bytes: 1,
    };

    fn sharded(
        paths: &[PathBuf],
        cfg: &Config,
        n: usize,
        format: &Format,
        tuning: Tuning,
    ) -> (Vec<u8>, StatsRecord) {
        let mut out = Vec::new();
        let r = run_tuned(
            paths,
            cfg.clone(),
            n,
            format.clone(),
            &mut out,
            &mut NoProgress,
            tuning,
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
            for (n, tuning) in [
                (1, Tuning::default()),
                (2, Tuning::default()),
                (3, Tuning::default()),
                (5, Tuning::default()),
                (1, TINY),
                (3, TINY),
            ] {
                let (got, s2) = sharded(paths, cfg, n, format, tuning);
                // Compared as text: a difference shows where it is.
                assert_eq!(
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got),
                    "{paths:?} {format:?} threads {n} {tuning:?}"
                );
                assert_eq!(s1, s2, "{paths:?} {format:?} threads {n} {tuning:?}");
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
        let rest = |packet| (packet, 1, u8::MAX, u64::MAX, u32::MAX);
        // Packet 1: shard 1 opens a flow holding 900 bytes; packet 2: shard
        // 2 one holding 1000. Then packet 9 times both out, in the single
        // table's order (by the packet that last touched each flow), and
        // flushing shard 1's briefly holds 5000 bytes.
        let run = |order1: u64, order2: u64| {
            let mut p = Peaks::default();
            p.epoch(&[
                vec![(rest(1), level(1, 900, 900))],
                vec![(rest(2), level(1, 1000, 1000))],
            ]);
            assert_eq!((p.flows, p.memory), (2, 1900));
            p.epoch(&[
                vec![((9, 0, 1, order1, 0), level(0, 0, 5000))],
                vec![((9, 0, 1, order2, 0), level(0, 0, 1000))],
            ]);
            (p.flows, p.memory)
        };
        // Shard 2's flow closes first: 5000 alone.
        assert_eq!(run(2, 1), (2, 5000));
        // Shard 1's first: shard 2 still holds its 1000 bytes.
        assert_eq!(run(1, 2), (2, 6000));
    }

    #[test]
    fn only_regular_uncompressed_files_are_read_by_every_worker() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.pcap");
        let gz = dir.path().join("a.pcap.gz");
        std::fs::write(&plain, [0xd4, 0xc3, 0xb2, 0xa1]).unwrap();
        std::fs::write(&gz, [0x1f, 0x8b, 8, 0]).unwrap();
        assert!(can_shard(std::slice::from_ref(&plain)));
        assert!(!can_shard(&[plain.clone(), gz]));
        assert!(!can_shard(&[plain.clone(), PathBuf::from("-")]));
        assert!(!can_shard(&[dir.path().to_path_buf()]));
        // A file that cannot be opened is left to the reader to report.
        assert!(!can_shard(&[dir.path().join("missing")]));
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

    #[test]
    fn shard_of_spreads_clients_of_one_server_evenly() {
        // The usual shape: one server, many clients on nearby ports and
        // addresses; v4 and v6.
        for server in ["10.0.0.2:443", "[2001:db8::2]:443"] {
            let server: SocketAddr = server.parse().unwrap();
            for n in [2usize, 3, 5] {
                let mut count = vec![0usize; n];
                for i in 0..3000u32 {
                    let ip = if server.is_ipv4() {
                        format!("10.0.{}.{}:{}", i % 7, i % 250, 40000 + i)
                    } else {
                        format!("[2001:db8::{:x}]:{}", i % 250, 40000 + i)
                    };
                    count[shard_of(ip.parse().unwrap(), server, n)] += 1;
                }
                let even = 3000 / n;
                for c in &count {
                    assert!(c.abs_diff(even) < even / 10, "{server} {n}: {count:?}");
                }
            }
        }
    }
}
