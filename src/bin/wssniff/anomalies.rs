//! `wssniff anomalies`: anomalies by name with counts and the sessions
//! involved, worst first (severity table: src/sink/summary.rs).

use super::sessions::{write_columns, write_typed};
use super::{finish_status, LimitArgs};
use clap::Args;
use std::io::{self, Write};
use std::path::PathBuf;
use wssniff::sink::summary::AnomalySummary;

#[derive(Args, Debug)]
pub struct AnomaliesArgs {
    /// Capture files, read in order as one capture; `-` reads stdin
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// JSON Lines, one `anomaly_summary` record per name (docs/json.md)
    #[arg(long)]
    pub json: bool,
    /// No progress bar
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
}

pub fn run(args: AnomaliesArgs) -> io::Result<u8> {
    let outcome = crate::sessions::summarize(&args.files, args.quiet, &args.limits)?;
    let list = outcome.sink.anomalies();
    let mut w = io::BufWriter::new(io::stdout().lock());
    if args.json {
        for a in &list {
            write_typed(&mut w, "anomaly_summary", a)?;
        }
    } else {
        write_table(&mut w, &list)?;
    }
    w.flush()?;
    Ok(finish_status(&outcome))
}

/// Sessions listed per row at most; the JSON lists them all.
const SESSIONS_SHOWN: usize = 12;

pub fn write_table(w: &mut dyn Write, list: &[AnomalySummary]) -> io::Result<()> {
    if list.is_empty() {
        return writeln!(w, "no anomalies");
    }
    let mut table = vec![vec![
        "SEVERITY".to_owned(),
        "ANOMALY".to_owned(),
        "COUNT".to_owned(),
        "FIRST PKT".to_owned(),
        "SESSIONS".to_owned(),
    ]];
    for a in list {
        let mut s: Vec<String> = a
            .sessions
            .iter()
            .take(SESSIONS_SHOWN)
            .map(|id| format!("#{id}"))
            .collect();
        if a.sessions.len() > SESSIONS_SHOWN {
            s.push(format!("… ({} sessions)", a.sessions.len()));
        }
        if a.without_session > 0 {
            s.push(format!("{} outside sessions", a.without_session));
        }
        table.push(vec![
            a.severity.as_str().to_owned(),
            a.name.clone(),
            a.count.to_string(),
            match (a.first_packet, a.first_file) {
                (None, _) => "-".to_owned(),
                (Some(p), None) => p.to_string(),
                (Some(p), Some(f)) => format!("{p} (file {f})"),
            },
            s.join(" "),
        ]);
    }
    write_columns(w, &table)
}
