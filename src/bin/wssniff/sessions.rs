//! `wssniff sessions`: one row per WebSocket session (table or JSON).

use super::{finish_status, progress, LimitArgs};
use clap::{Args, ValueEnum};
use serde::Serialize;
use std::io::{self, Write};
use std::path::PathBuf;
use wssniff::pipeline::{self, RunOutcome};
use wssniff::session::CloseRecord;
use wssniff::sink::summary::{sort_sessions, SessionRow, SortKey, SummarySink};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SortArg {
    Start,
    Bytes,
    Anomalies,
    Duration,
    Messages,
}

#[derive(Args, Debug)]
pub struct SessionsArgs {
    /// Capture files, read in order as one capture; `-` reads stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// JSON Lines, one `session_summary` record per session (docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// Row order: start time (default), or most bytes/anomalies/messages, longest duration first
    #[arg(long, value_enum, default_value = "start")]
    pub sort: SortArg,
    /// Also list anomalies by name, worst first (as `wssniff anomalies`)
    #[arg(long)]
    pub anomalies: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// One pass over the files into a [`SummarySink`] (`sessions` and `anomalies`).
pub fn summarize(
    files: &[PathBuf],
    quiet: bool,
    limits: &LimitArgs,
) -> io::Result<RunOutcome<SummarySink>> {
    let mut progress = progress::for_files(files, quiet);
    pipeline::run_files(
        files,
        limits.config(),
        SummarySink::new(),
        progress.as_mut(),
    )
}

pub fn run(args: SessionsArgs) -> io::Result<u8> {
    let outcome = summarize(&args.files, args.quiet, &args.limits)?;
    let mut rows = outcome.sink.sessions();
    sort_sessions(
        &mut rows,
        match args.sort {
            SortArg::Start => SortKey::Start,
            SortArg::Bytes => SortKey::Bytes,
            SortArg::Anomalies => SortKey::Anomalies,
            SortArg::Duration => SortKey::Duration,
            SortArg::Messages => SortKey::Messages,
        },
    );
    let mut w = io::BufWriter::new(io::stdout().lock());
    if args.json {
        for r in &rows {
            write_typed(&mut w, "session_summary", r)?;
        }
    } else {
        write_table(&mut w, &rows)?;
    }
    if args.anomalies {
        let list = outcome.sink.anomalies();
        if args.json {
            for a in &list {
                write_typed(&mut w, "anomaly_summary", a)?;
            }
        } else {
            writeln!(w)?;
            super::anomalies::write_table(&mut w, &list)?;
        }
    }
    w.flush()?;
    Ok(finish_status(&outcome))
}

/// One JSON line with `"type"` first.
pub fn write_typed<T: Serialize>(w: &mut dyn Write, kind: &str, rec: &T) -> io::Result<()> {
    let body = serde_json::to_vec(rec)?;
    write!(w, "{{\"type\":\"{kind}\"")?;
    if body.len() > 2 {
        w.write_all(b",")?;
        w.write_all(body.get(1..).unwrap_or(b"}"))?;
    } else {
        w.write_all(b"}")?;
    }
    w.write_all(b"\n")
}

fn close_text(c: &Option<CloseRecord>) -> String {
    match c {
        None => "-".to_owned(),
        Some(c) => {
            let code = c.code.map_or("none".to_owned(), |c| c.to_string());
            if c.reason.is_empty() {
                code
            } else {
                let reason: String = c.reason.chars().take(24).collect();
                let more = if reason.len() < c.reason.len() {
                    "…"
                } else {
                    ""
                };
                format!("{code} {reason:?}{more}")
            }
        }
    }
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_else(|| "-".to_owned())
}

/// The table: one line per session, columns padded to their widest cell.
pub fn write_table(w: &mut dyn Write, rows: &[SessionRow]) -> io::Result<()> {
    let header = [
        "ID",
        "START",
        "DURATION",
        "CLIENT",
        "SERVER",
        "MSGS c2s/s2c",
        "WIRE c2s/s2c",
        "INFLATED c2s/s2c",
        "CLOSE c2s",
        "CLOSE s2c",
        "GAPS",
        "ANOM",
        "URI",
        "HOST",
        "ORIGIN",
        "PROTOCOL",
        "EXTENSIONS",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        table.push(vec![
            r.id.to_string(),
            r.start.date_clock().chars().take(23).collect(),
            format!("{:.3}s", r.duration),
            r.client.clone(),
            r.server.clone(),
            format!("{}/{}", r.messages.c2s, r.messages.s2c),
            format!("{}/{}", r.wire_bytes.c2s, r.wire_bytes.s2c),
            format!("{}/{}", r.bytes.c2s, r.bytes.s2c),
            close_text(&r.close_c2s),
            close_text(&r.close_s2c),
            r.gaps.to_string(),
            r.anomalies.to_string(),
            r.uri.clone(),
            opt(&r.host),
            opt(&r.origin),
            opt(&r.subprotocol),
            if r.extensions.is_empty() {
                "-".to_owned()
            } else {
                r.extensions.join(", ")
            },
        ]);
    }
    write_columns(w, &table)?;
    writeln!(w, "{} sessions", rows.len())
}

/// Left-aligned columns separated by two spaces; the last column unpadded.
pub fn write_columns(w: &mut dyn Write, table: &[Vec<String>]) -> io::Result<()> {
    let ncol = table.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            table
                .iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths.get(c).copied().unwrap_or(0);
                line.push_str(&format!("{cell:<pad$}  "));
            }
        }
        writeln!(w, "{}", line.trim_end())?;
    }
    Ok(())
}
