//! wssniff as a library: list the WebSocket sessions of a capture, and
//! replay one of them to a server, as `wssniff sessions` and
//! `wsreplay client` do, through the library API only.
//!
//! ```text
//! cargo run --example embed -- testdata/real/py-echo.pcap
//! cargo run --example embed -- testdata/real/py-echo.pcap ws://127.0.0.1:8765/
//! ```
//!
//! With a target, the first session is exported to a temporary directory and
//! its client side is sent to the target; the report says whether the server
//! answered what was recorded.

use std::path::{Path, PathBuf};
use wssniff::pipeline::{self, Config, NoProgress};
use wssniff::replay::export::Export;
use wssniff::replay::handshake::HeaderEdits;
use wssniff::replay::run::{run_client, ReplayOptions};
use wssniff::replay::target::Target;
use wssniff::replay::transport::TlsOptions;
use wssniff::replay::ReplayLimits;
use wssniff::sink::summary::SummarySink;
use wssniff::sink::{ExportOptions, ExportSink};

/// What the example found and did, for a caller (or a test) to check.
pub struct Outcome {
    /// One line per session: id, endpoints, URI, messages each way.
    pub sessions: Vec<String>,
    /// The replayed session's id and whether the server answered exactly
    /// what was recorded (messages compared equal, none missing).
    pub replayed: Option<(u64, bool)>,
}

/// Reads `capture`; with `target`, replays its first session there, using
/// `work` for the export.
pub fn run(capture: &Path, target: Option<&str>, work: &Path) -> Result<Outcome, String> {
    let paths = [capture.to_path_buf()];
    let read = |e: std::io::Error| format!("reading {}: {e}", capture.display());
    // The `sessions` table: a sink that keeps one row per session.
    let run = pipeline::run_files(
        &paths,
        Config::default(),
        SummarySink::new(),
        &mut NoProgress,
    )
    .map_err(read)?;
    if let Some(e) = run.capture_error {
        return Err(e.to_string());
    }
    let sessions = run
        .sink
        .sessions()
        .iter()
        .map(|r| {
            format!(
                "{} {} -> {} {} messages {}/{}",
                r.id, r.client, r.server, r.uri, r.messages.c2s, r.messages.s2c
            )
        })
        .collect();
    let replayed = match target {
        None => None,
        Some(url) => {
            // The export wsreplay reads (docs/export.md).
            let export = ExportSink::create(ExportOptions {
                dir: work.to_path_buf(),
                force: true,
                ..Default::default()
            })
            .map_err(|e| format!("cannot export to {}: {e}", work.display()))?;
            pipeline::run_files(&paths, Config::default(), export, &mut NoProgress)
                .map_err(read)?;
            Some(replay_first(work, url)?)
        }
    };
    Ok(Outcome { sessions, replayed })
}

/// Sends the first exported session's client messages to `url`.
fn replay_first(export_dir: &Path, url: &str) -> Result<(u64, bool), String> {
    let export = Export::open(export_dir).map_err(|e| e.to_string())?;
    let meta = export
        .manifest
        .sessions
        .first()
        .ok_or("the capture holds no WebSocket session")?
        .clone();
    let session = export
        .load(&meta, &ReplayLimits::default())
        .map_err(|e| e.to_string())?;
    let target = Target::parse(url).map_err(|e| e.to_string())?;
    let opts = ReplayOptions {
        speed: 0.0,
        wait: true,
        ..Default::default()
    };
    let report = run_client(
        &session,
        &target,
        url,
        &TlsOptions::default(),
        &HeaderEdits::default(),
        &opts,
    )
    .map_err(|e| e.to_string())?;
    Ok((meta.id, report.comparison.same))
}

#[allow(dead_code)] // a test includes this file as a module and calls `run`
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(capture) = args.first() else {
        eprintln!("usage: embed CAPTURE [ws://HOST:PORT/PATH]");
        std::process::exit(2);
    };
    let work = std::env::temp_dir().join(format!("wssniff-embed-{}", std::process::id()));
    let result = run(
        &PathBuf::from(capture),
        args.get(1).map(String::as_str),
        &work,
    );
    let _ = std::fs::remove_dir_all(&work);
    match result {
        Ok(o) => {
            for line in &o.sessions {
                println!("{line}");
            }
            if let Some((id, same)) = o.replayed {
                println!(
                    "replayed session {id}: {}",
                    if same {
                        "the server answered as recorded"
                    } else {
                        "the server answered differently"
                    }
                );
            }
        }
        Err(e) => {
            eprintln!("embed: {e}");
            std::process::exit(1);
        }
    }
}
