//! `read` options that select records (`--session`, `--host`, …) and search
//! payloads (`--grep`, …), turned into the library's `FilterSink` and
//! `GrepSink` (src/sink/filter.rs, src/sink/grep.rs).

use clap::{Args, ValueEnum};
use std::io;
use std::path::PathBuf;
use wssniff::pipeline::{self, Config};
use wssniff::sink::filter::{parse_time, Filter, FilterSink};
use wssniff::sink::grep::{GrepSink, Matcher};
use wssniff::sink::Sink;
use wssniff::types::{Dir, Timestamp};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum OpcodeArg {
    Text,
    Binary,
    Ping,
    Pong,
    Close,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DirArg {
    C2s,
    S2c,
}

/// Filters (README "Forensic walk-through"). All combine (AND); repeated
/// options of one kind combine with OR.
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only this session (its id, as printed); repeatable
    #[arg(long = "session", value_name = "ID", help_heading = "Filters")]
    pub sessions: Vec<u64>,
    /// Only sessions whose client or server IP, or Host header, is HOST; repeatable
    #[arg(long = "host", value_name = "HOST", help_heading = "Filters")]
    pub hosts: Vec<String>,
    /// Only sessions whose client or server port is PORT; repeatable
    #[arg(long = "port", value_name = "PORT", help_heading = "Filters")]
    pub ports: Vec<u16>,
    /// Only sessions whose request URI matches REGEX
    #[arg(long, value_name = "REGEX", help_heading = "Filters")]
    pub uri: Option<String>,
    /// Only records at or after TIME: RFC 3339, "YYYY-MM-DD HH:MM:SS" (UTC), or +30s/+5m/+1h after the capture start
    #[arg(long, value_name = "TIME", help_heading = "Filters")]
    pub since: Option<String>,
    /// Only records at or before TIME (same forms as --since)
    #[arg(long, value_name = "TIME", help_heading = "Filters")]
    pub until: Option<String>,
    /// Only messages with this opcode; repeatable
    #[arg(
        long = "opcode",
        value_enum,
        value_name = "OPCODE",
        help_heading = "Filters"
    )]
    pub opcodes: Vec<OpcodeArg>,
    /// Only messages in this direction
    #[arg(long, value_enum, value_name = "DIR", help_heading = "Filters")]
    pub dir: Option<DirArg>,
    /// Only messages of at least N decoded bytes
    #[arg(long, value_name = "N", help_heading = "Filters")]
    pub min_len: Option<u64>,
    /// Only messages of at most N decoded bytes
    #[arg(long, value_name = "N", help_heading = "Filters")]
    pub max_len: Option<u64>,
    /// Only sessions with at least one anomaly (reads the files twice; not with stdin)
    #[arg(long, help_heading = "Filters")]
    pub anomalous: bool,
}

/// Search (README "Forensic walk-through").
#[derive(Args, Debug, Clone, Default)]
pub struct GrepArgs {
    /// Only messages whose whole decoded payload matches REGEX (text as Unicode text, other payloads as bytes)
    #[arg(long, value_name = "REGEX", help_heading = "Search")]
    pub grep: Option<String>,
    /// Only messages whose payload bytes match: hex ("de ad be ef") or a bytes regex ("(?-u)\xff\x00")
    #[arg(long, value_name = "HEX|REGEX", help_heading = "Search")]
    pub grep_bytes: Option<String>,
    /// Case-insensitive --grep/--grep-bytes
    #[arg(short = 'i', long, help_heading = "Search")]
    pub ignore_case: bool,
    /// Show N messages of the same session before and after each match
    #[arg(
        short = 'C',
        long,
        value_name = "N",
        default_value_t = 0,
        help_heading = "Search"
    )]
    pub context: usize,
}

impl GrepArgs {
    pub fn active(&self) -> bool {
        self.grep.is_some() || self.grep_bytes.is_some()
    }
}

fn usage(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// The timestamp of the first packet of the first input (for `+30s`).
fn capture_start(files: &[PathBuf]) -> Option<Timestamp> {
    let first = files.first()?;
    if first.as_os_str() == "-" {
        return None;
    }
    let mut r = wssniff::capture::CaptureReader::open(first).ok()?;
    let ts = r.next_packet().ok()??.ts;
    Some(ts)
}

impl FilterArgs {
    /// The library filter; runs the first pass of `--anomalous`.
    pub fn build(&self, files: &[PathBuf], cfg: &Config) -> io::Result<Filter> {
        let needs_start = [&self.since, &self.until].iter().any(|t| {
            t.as_deref()
                .is_some_and(|t| t.trim_start().starts_with('+'))
        });
        let start = if needs_start {
            capture_start(files)
        } else {
            None
        };
        let time = |t: &Option<String>| -> io::Result<Option<Timestamp>> {
            t.as_deref()
                .map(|t| parse_time(t, start).map_err(usage))
                .transpose()
        };
        let uri = self
            .uri
            .as_deref()
            .map(|u| regex::Regex::new(u).map_err(|e| usage(format!("bad --uri pattern: {e}"))))
            .transpose()?;
        let mut filter = Filter {
            sessions: self.sessions.clone(),
            hosts: self.hosts.clone(),
            ports: self.ports.clone(),
            uri,
            only_sessions: None,
            opcodes: self
                .opcodes
                .iter()
                .map(|o| match o {
                    OpcodeArg::Text => 1,
                    OpcodeArg::Binary => 2,
                    OpcodeArg::Close => 8,
                    OpcodeArg::Ping => 9,
                    OpcodeArg::Pong => 10,
                })
                .collect(),
            dir: self.dir.map(|d| match d {
                DirArg::C2s => Dir::C2s,
                DirArg::S2c => Dir::S2c,
            }),
            min_len: self.min_len,
            max_len: self.max_len,
            since: time(&self.since)?,
            until: time(&self.until)?,
        };
        if self.anomalous {
            filter.only_sessions = Some(pipeline::anomalous_sessions(files, cfg.clone())?);
        }
        Ok(filter)
    }
}

/// The writers wrapped in the search and the filter (the filter first, so
/// the search and its context see only the selected messages). Both pass
/// everything through when not asked for anything.
pub type Wrapped<S> = FilterSink<GrepSink<S>>;

pub fn wrap<S: Sink>(sink: S, filter: Filter, grep: &GrepArgs) -> io::Result<Wrapped<S>> {
    let m = Matcher::new(
        grep.grep.as_deref(),
        grep.grep_bytes.as_deref(),
        grep.ignore_case,
    )
    .map_err(usage)?;
    Ok(FilterSink::new(
        GrepSink::new(sink, m, grep.context),
        filter,
    ))
}
