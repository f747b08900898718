//! Runs over capture files: one analyzer reads them in order as one
//! capture; and the description of each input for the `capture` record.

use super::{Analyzer, Config, PROGRESS_PACKETS};
use crate::session::StatsRecord;
use crate::sink::Sink;
use std::io;

/// How a run over capture files ended, when the sink did not fail.
pub struct RunOutcome<S> {
    /// The sink, given back for the caller to finish or inspect.
    pub sink: S,
    /// The run's `stats` record (also given to the sink).
    pub stats: StatsRecord,
    /// The capture error that ended reading early, after everything before
    /// it was analysed and every flow was flushed.
    pub capture_error: Option<crate::capture::CaptureError>,
}

/// Called after every packet with the bytes read so far of the current
/// input, for progress reporting.
pub trait Progress {
    /// Reading of input `index` starts: its path and size on disk (None when not known, as for stdin).
    fn file(&mut self, _index: usize, _path: &str, _size: Option<u64>) {}
    /// Progress within the current input: bytes read so far, and sessions seen so far.
    fn advance(&mut self, _bytes: u64, _sessions: u64) {}
    /// The run is over.
    fn done(&mut self) {}
}

/// No progress reporting.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Opens input `index` of a run and tells the progress display about it.
pub(crate) fn open_input(
    index: usize,
    path: &std::path::Path,
    progress: &mut dyn Progress,
) -> Result<crate::capture::CaptureReader, crate::capture::CaptureError> {
    let reader = crate::capture::CaptureReader::open(path)?;
    let size = std::fs::metadata(path).ok().map(|m| m.len());
    progress.file(index, &path.display().to_string(), size);
    Ok(reader)
}

/// Reads the capture files in order, as one capture, through one analyzer.
/// `Err` only when the sink fails (or the first file cannot be opened at all
/// is reported as a capture error in the outcome).
pub fn run_files<S: Sink>(
    paths: &[std::path::PathBuf],
    cfg: Config,
    sink: S,
    progress: &mut dyn Progress,
) -> io::Result<RunOutcome<S>> {
    let mut an = Analyzer::new(cfg, sink);
    let mut capture_error = None;
    'files: for (i, path) in paths.iter().enumerate() {
        let mut reader = match open_input(i, path, progress) {
            Ok(r) => r,
            Err(e) => {
                capture_error = Some(e);
                break;
            }
        };
        an.begin_file();
        let mut n: u64 = 0;
        loop {
            match reader.next_packet() {
                Ok(Some(pkt)) => {
                    an.packet(&pkt)?;
                    n += 1;
                    if n % PROGRESS_PACKETS == 0 {
                        progress.advance(reader.bytes_consumed(), an.sessions());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    capture_error = Some(e);
                    break 'files;
                }
            }
            an.notices_from(&mut reader)?;
        }
        an.notices_from(&mut reader)?;
        progress.advance(reader.bytes_consumed(), an.sessions());
    }
    progress.done();
    let (sink, stats) = an.finish()?;
    Ok(RunOutcome {
        sink,
        stats,
        capture_error,
    })
}

/// Describes each input for the `capture` record: size and SHA-256 of the
/// file as stored, its format, link types, packet count and time span. The
/// digest and the packet scan read the file side by side on two threads
/// (the digest is the longer; the scan hides behind it). stdin (`-`) cannot
/// be read twice and gets only its path.
pub fn describe_inputs(paths: &[std::path::PathBuf]) -> Vec<crate::session::InputFile> {
    let mut out = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let mut info = crate::session::InputFile {
            index,
            path: path.display().to_string(),
            ..Default::default()
        };
        if path.as_os_str() != "-" {
            info.size = std::fs::metadata(path).ok().map(|m| m.len());
            let digest = std::thread::scope(|s| {
                let digest = s.spawn(|| sha256_file(path).ok());
                scan_input(path, &mut info);
                digest.join().ok().flatten()
            });
            info.sha256 = digest;
        }
        out.push(info);
    }
    out
}

/// Read buffer of the description pass. Kept under glibc's initial mmap
/// threshold (128 KiB): freeing a larger, mmap'd buffer raises that
/// threshold for the rest of the run, and the analysis's message buffers then
/// fragment the heap (peak RSS on a 1 GB capture went from 47 to 100 MiB).
const DESCRIBE_BUFFER: usize = 64 * 1024;

/// The packet count, time span, format and link types of one input file.
fn scan_input(path: &std::path::Path, info: &mut crate::session::InputFile) {
    let Ok(mut r) = crate::capture::CaptureReader::open_with_buffer(path, DESCRIBE_BUFFER) else {
        return;
    };
    let mut packets = 0u64;
    let (mut first, mut last) = (None, None);
    while let Ok(Some(p)) = r.next_packet() {
        packets += 1;
        first.get_or_insert(p.ts);
        last = Some(p.ts);
    }
    info.format = Some(match r.format() {
        crate::capture::CaptureFormat::Pcapng => "pcapng".to_owned(),
        _ => "pcap".to_owned(),
    });
    info.link_types = r.link_types();
    info.packets = Some(packets);
    info.first_ts = first;
    info.last_ts = last;
}

/// SHA-256 of a file as stored, in lowercase hex.
pub fn sha256_file(path: &std::path::Path) -> io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; DESCRIBE_BUFFER];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// The ids of the sessions that have at least one anomaly: the first pass of
/// `--anomalous`, which must read the input twice because a session's
/// anomalies may come after its first messages.
pub fn anomalous_sessions(
    paths: &[std::path::PathBuf],
    cfg: Config,
) -> io::Result<std::collections::BTreeSet<u64>> {
    if paths.iter().any(|f| f.as_os_str() == "-") {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--anomalous reads the input twice and cannot read stdin: save the capture to a file first",
        ));
    }
    let first = run_files(
        paths,
        cfg,
        crate::sink::filter::AnomalousSessions::default(),
        &mut NoProgress,
    )?;
    Ok(first.sink.ids)
}
