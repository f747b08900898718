//! The progress bar on stderr: bytes read, rate, sessions found, ETA.
//!
//! Shown only when stderr is a terminal, `--quiet` is not given and the
//! inputs together are larger than [`MIN_BYTES`] (small files finish before
//! a bar is worth drawing). Hooked through `pipeline::Progress`, which
//! `run_files` calls per file and every few thousand packets.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;
use wssniff::pipeline::{NoProgress, Progress};

/// Inputs smaller than this together get no bar.
pub const MIN_BYTES: u64 = 8 << 20;

/// A bar over all inputs together.
pub struct Bar {
    bar: ProgressBar,
    /// Bytes of the inputs before the current one.
    done_before: u64,
    current_size: u64,
}

impl Progress for Bar {
    fn file(&mut self, _index: usize, path: &str, size: Option<u64>) {
        self.done_before += self.current_size;
        self.current_size = size.unwrap_or(0);
        self.bar.set_position(self.done_before);
        self.bar.set_prefix(path.to_owned());
    }

    fn advance(&mut self, bytes: u64, sessions: u64) {
        // `bytes` counts the decompressed stream: a gzip input can exceed
        // its file size, so clamp to keep the bar and ETA sane.
        let within = bytes.min(self.current_size);
        self.bar.set_position(self.done_before + within);
        self.bar.set_message(format!("{sessions} sessions"));
    }

    fn done(&mut self) {
        self.bar.finish_and_clear();
    }
}

/// The progress reporter for a run over `files` (`Send`: a sharded run
/// drives it from its reader thread).
pub fn for_files(files: &[PathBuf], quiet: bool) -> Box<dyn Progress + Send> {
    if quiet || !std::io::stderr().is_terminal() {
        return Box::new(NoProgress);
    }
    let total: u64 = files
        .iter()
        .filter(|f| f.as_os_str() != "-")
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    if total < MIN_BYTES {
        return Box::new(NoProgress);
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{prefix:.dim} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg} ETA {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message("0 sessions");
    Box::new(Bar {
        bar,
        done_before: 0,
        current_size: 0,
    })
}
