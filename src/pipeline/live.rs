//! The live capture loop: packets from an interface through an analyzer,
//! until a signal, a count, a duration or a failure stops it.

use super::Analyzer;
use crate::capture::live::{LiveCapture, LiveError, SaveFile};
use crate::sink::Sink;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// When the loop stops on its own.
#[derive(Clone, Copy, Debug, Default)]
pub struct StopAfter {
    /// `-c N`: after N packets captured.
    pub count: Option<u64>,
    /// `--duration`: after this much wall-clock time.
    pub duration: Option<Duration>,
}

/// Why the loop stopped.
#[derive(Debug)]
pub enum Stop {
    /// The stop flag was raised (SIGINT, SIGTERM).
    Signal,
    /// `--count` packets were captured.
    Count,
    /// `--duration` elapsed.
    Duration,
    /// The capture failed while running.
    Failed(LiveError),
    /// Writing the output (or the `-w` file) failed.
    Output(io::Error),
}

/// Reads and analyses packets, copying each to `save` when given (`-w`),
/// until something stops it. The caller finishes the analyzer afterwards,
/// whatever the reason, so every open session still ends in its records.
pub fn capture_loop<S: Sink>(
    cap: &mut LiveCapture,
    an: &mut Analyzer<S>,
    mut save: Option<&mut SaveFile<std::fs::File>>,
    stop: &AtomicBool,
    after: StopAfter,
) -> Stop {
    let deadline = after.duration.map(|d| Instant::now() + d);
    loop {
        if stop.load(Ordering::Relaxed) {
            return Stop::Signal;
        }
        if after.count.is_some_and(|c| cap.captured() >= c) {
            return Stop::Count;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Stop::Duration;
        }
        match cap.next_packet() {
            Ok(Some(pkt)) => {
                if let Some(s) = save.as_deref_mut() {
                    if let Err(e) = s.write(&pkt) {
                        return Stop::Output(e);
                    }
                }
                if let Err(e) = an.packet(&pkt) {
                    return Stop::Output(e);
                }
            }
            Ok(None) => {
                if let Some(s) = save.as_deref_mut() {
                    if let Err(e) = s.tick() {
                        return Stop::Output(e);
                    }
                }
            }
            Err(e) => return Stop::Failed(e),
        }
    }
}
