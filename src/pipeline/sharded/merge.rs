//! The merger's side of a sharded run: the workers' parts written in key
//! order, epoch by epoch, and the whole flow table's peaks.

use super::outbox::{Chunks, Key, Part};
use super::timeline::Level;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};

/// The whole flow table's levels, summed from the shards' steps.
#[derive(Default)]
pub(super) struct Peaks {
    /// Each worker's current level (indexed like its stream).
    pub(super) current: Vec<Level>,
    pub(super) flows: u64,
    pub(super) memory: u64,
    /// One epoch's steps of every shard: (key, shard, level).
    pub(super) steps: Vec<(Key, usize, Level)>,
}

impl Peaks {
    /// Walks one epoch's steps in single-threaded order.
    pub(super) fn epoch(&mut self, levels: &[Vec<(Key, Level)>]) {
        self.current.resize(levels.len(), Level::default());
        self.steps.clear();
        for (s, l) in levels.iter().enumerate() {
            self.steps.extend(l.iter().map(|&(k, l)| (k, s, l)));
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

/// One worker's stream of parts, as the merger reads it.
pub(super) struct Stream {
    pub(super) rx: Receiver<Part>,
    pub(super) back: SyncSender<Chunks>,
    pub(super) cur: Chunks,
    /// Next record of `cur`, and where its bytes start.
    pub(super) next: usize,
    pub(super) start: usize,
    /// Its last part of the current epoch has come.
    pub(super) done: bool,
    pub(super) levels: Vec<(Key, Level)>,
    pub(super) sessions: u64,
}

impl Stream {
    /// Takes the worker's next part (waiting for it); false when the
    /// worker has hung up.
    pub(super) fn fetch(&mut self) -> bool {
        let Ok(part) = self.rx.recv() else {
            return false;
        };
        let used = std::mem::replace(&mut self.cur, part.chunks);
        let _ = self.back.try_send(used);
        self.next = 0;
        self.start = 0;
        self.levels.append(&mut self.cur.levels);
        if part.last {
            self.done = true;
            self.sessions = self.cur.sessions;
        }
        true
    }

    /// The key of the next record, fetching parts until there is one or
    /// the epoch is over for this worker (`Ok(None)`); `Err` when the worker
    /// hung up.
    pub(super) fn peek(&mut self) -> Result<Option<Key>, ()> {
        loop {
            if let Some(&(k, _)) = self.cur.index.get(self.next) {
                return Ok(Some(k));
            }
            if self.done {
                return Ok(None);
            }
            if !self.fetch() {
                return Err(());
            }
        }
    }
}

/// Writes epoch after epoch until the workers are done: within an epoch,
/// the workers' streams merged by key (each is in key order); returns the
/// whole flow table's peaks.
pub(super) fn merge<W: Write>(
    workers: Vec<Receiver<Part>>,
    returns: Vec<SyncSender<Chunks>>,
    out: &mut W,
    sessions: &AtomicU64,
) -> io::Result<Peaks> {
    let mut streams: Vec<Stream> = workers
        .into_iter()
        .zip(returns)
        .map(|(rx, back)| Stream {
            rx,
            back,
            cur: Chunks::default(),
            next: 0,
            start: 0,
            done: false,
            levels: Vec::new(),
            sessions: 0,
        })
        .collect();
    let mut peaks = Peaks::default();
    let mut levels: Vec<Vec<(Key, Level)>> = Vec::new();
    loop {
        for s in &mut streams {
            s.done = false;
        }
        loop {
            // The smallest next key of all streams (few: a linear scan).
            let mut best: Option<(Key, usize)> = None;
            for (i, s) in streams.iter_mut().enumerate() {
                match s.peek() {
                    Ok(Some(k)) if best.map_or(true, |b| k < b.0) => best = Some((k, i)),
                    Ok(_) => {}
                    // Every worker sends the same epochs: the first to hang
                    // up at an epoch's start means the end; elsewhere, a
                    // failure its join reports.
                    Err(()) => return Ok(peaks),
                }
            }
            let Some((_, i)) = best else {
                break;
            };
            let Some(s) = streams.get_mut(i) else {
                break;
            };
            let end = s.cur.index.get(s.next).map_or(s.start, |r| r.1);
            if let Some(bytes) = s.cur.data.get(s.start..end) {
                out.write_all(bytes)?;
            }
            s.start = end;
            s.next += 1;
        }
        levels.resize_with(streams.len(), Vec::new);
        for (l, s) in levels.iter_mut().zip(&mut streams) {
            l.clear();
            l.append(&mut s.levels);
        }
        peaks.epoch(&levels);
        sessions.store(streams.iter().map(|s| s.sessions).sum(), Ordering::Relaxed);
    }
}
