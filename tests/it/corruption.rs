//! Random corruption of every testdata capture, after Wireshark's fuzz-test
//! (`editcap -E 0.02`): seeded byte flips past the file header, run through
//! the whole pipeline, which must not panic, not hang (a per-iteration
//! timeout on a worker thread), and keep its buffers under the limits.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use wssniff::capture::CaptureReader;
use wssniff::pipeline::{Analyzer, Config};
use wssniff::sink::Collect;
use wssniff::synth::Rng;

const ERROR_RATE: f64 = 0.02;
/// The whole test stays well under a minute in release on 2 cores.
const BUDGET: Duration = Duration::from_secs(40);
const PER_RUN: Duration = Duration::from_secs(20);

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            captures(&p, out);
        } else if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".pcap.gz")
        {
            out.push(p);
        }
    }
}

/// Flips about `ERROR_RATE` of the bytes after the file header (the first
/// 24 bytes of pcap; for pcapng the same prefix keeps the section header's
/// magic and byte order).
fn corrupt(data: &mut [u8], rng: &mut Rng) {
    for b in data.iter_mut().skip(24) {
        if rng.chance(ERROR_RATE) {
            *b = rng.next_u32() as u8;
        }
    }
}

/// Runs one corrupted capture; returns the reassembly peak memory.
fn analyse(data: Vec<u8>, cfg: Config) -> u64 {
    let Ok(mut r) = CaptureReader::from_reader(Box::new(Cursor::new(data)), "corrupt") else {
        return 0;
    };
    let mut an = Analyzer::new(cfg, Collect::default());
    // A corrupt record ends reading, as in the CLI; what came before counts.
    while let Ok(Some(p)) = r.next_packet() {
        an.packet(&p).unwrap();
    }
    let (_, stats) = an.finish().unwrap();
    stats.counters.get("tcp_peak_memory").copied().unwrap_or(0)
}

#[test]
fn corrupted_captures_never_panic_hang_or_grow() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut files = Vec::new();
    captures(&root, &mut files);
    assert!(files.len() >= 10, "testdata captures not found: {files:?}");
    let mut cfg = Config::default();
    cfg.tcp.memcap = 8 << 20;
    let start = Instant::now();
    let mut runs = 0u32;
    let mut seed = 0u64;
    // Round-robin over the files until the time budget is spent, so every
    // file gets iterations whatever the machine's speed.
    'outer: loop {
        for path in &files {
            if start.elapsed() > BUDGET {
                break 'outer;
            }
            seed += 1;
            let mut data = std::fs::read(path).unwrap();
            if path.extension().is_some_and(|e| e == "gz") {
                continue; // bytes flipped inside gzip only exercise the decompressor
            }
            corrupt(&mut data, &mut Rng::new(seed));
            let (tx, rx) = mpsc::channel();
            let c = cfg.clone();
            let worker = std::thread::spawn(move || {
                let _ = tx.send(analyse(data, c));
            });
            match rx.recv_timeout(PER_RUN) {
                Ok(peak) => assert!(
                    peak <= 8 << 20,
                    "{} seed {seed}: reassembly peak {peak} over the memcap",
                    path.display()
                ),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!(
                        "{} seed {seed}: no result after {PER_RUN:?} (hang?)",
                        path.display()
                    )
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let e = worker.join().err();
                    panic!(
                        "{} seed {seed}: the pipeline panicked: {e:?}",
                        path.display()
                    )
                }
            }
            runs += 1;
        }
    }
    println!(
        "corruption: {runs} corrupted runs over {} captures in {:?}",
        files.len(),
        start.elapsed()
    );
    assert!(runs as usize >= files.len(), "too few iterations: {runs}");
}
