//! `wssniff`: the command line over the library. Parsing, wiring, exit codes.
#![forbid(unsafe_code)]

mod anomalies;
mod filters;
mod progress;
mod sessions;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use wssniff::pipeline::{self, Config, Format, Outputs, RunOutcome};
use wssniff::session::{tool_version, CaptureRecord, SCHEMA_VERSION};
use wssniff::sink::{ExportOptions, JsonSink, Sink, TranscriptOptions, TranscriptSink};

#[cfg(feature = "live")]
mod live;
// Without libpcap: a stand-in that refuses `-i`/`-D` with a clear message.
#[cfg(not(feature = "live"))]
#[path = "no_live.rs"]
mod live;

/// Exit statuses (documented in the README and `--help`).
mod exit {
    pub const OK: u8 = 0;
    /// An input could not be read, or is not a capture, or is corrupt; or an output could not be written.
    pub const INPUT: u8 = 1;
    /// Bad arguments (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// An input ended in a truncated record; everything before it was analysed.
    pub const TRUNCATED: u8 = 3;
}

const EXAMPLES: &str = "\
Examples:
  wssniff read capture.pcap                 transcript of every WebSocket session
  wssniff read capture.pcapng --json | jq 'select(.type==\"message\")'
  wssniff read a.pcap b.pcap.gz --stats     several files as one capture; final statistics only
  wssniff read capture.pcap --export out/   write sessions for wsreplay (see docs/export.md)
  tcpdump -w - -i lo | wssniff read -       read a capture from stdin
  wssniff -i lo tcp port 8080               live capture, tcpdump's flags; Ctrl-C stops and finishes
  wssniff -i any --json -w all.pcap -Z nobody   live JSON Lines, also saved; privileges dropped

Exit status:
  0  success
  1  an input could not be read or is corrupt (the error names the byte offset), or output failed
  2  usage error
  3  an input ended in a truncated record (everything before it was analysed)
Live capture: 2 when it cannot start (unknown interface, bad filter, no permission, unknown -Z user);
  1 when the capture fails while running (after finishing every session)";

#[derive(Parser, Debug)]
#[command(
    name = "wssniff",
    version,
    about = "Passive WebSocket sniffer and forensic analyzer",
    long_about = "Passive WebSocket sniffer and forensic analyzer.\n\nReads pcap/pcapng captures (or a live interface), reassembles TCP, finds HTTP Upgrade handshakes on any port, and decodes every WebSocket message exactly, with the packets that carried it. Protocol violations are reported as named anomalies (see docs/anomalies.md).",
    after_help = EXAMPLES,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Without a subcommand: live capture (`wssniff -i IFACE`), see live.rs.
    #[command(flatten)]
    live: live::LiveArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Analyse capture files (pcap, pcapng, optionally gzip-compressed)
    #[command(after_help = EXAMPLES)]
    Read(Box<ReadArgs>),
    /// One row per WebSocket session: endpoints, URI, timing, messages, bytes, close codes, anomalies
    Sessions(sessions::SessionsArgs),
    /// Anomalies by name, worst first, with counts and the sessions involved
    Anomalies(anomalies::AnomaliesArgs),
    /// Print a shell completion script (e.g. `wssniff completions bash > /etc/bash_completion.d/wssniff`)
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout (`wssniff man | man -l -`)
    Man,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// `auto`: colour on a terminal, unless NO_COLOR is set.
    fn enabled(self, is_tty: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum OverlapArg {
    /// Bytes that arrived first win (the default; what most stacks keep).
    First,
    /// The newest bytes win.
    Last,
}

#[derive(Args, Debug)]
struct ReadArgs {
    /// Capture files, read in order as one capture; `-` reads stdin
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,

    /// Write JSON Lines (schema: docs/json.md) instead of the transcript
    #[arg(long)]
    json: bool,

    /// Print only the final statistics
    #[arg(long)]
    stats: bool,

    /// Write every session to DIR for wsreplay (format: docs/export.md)
    #[arg(long, value_name = "DIR")]
    export: Option<PathBuf>,

    /// Allow --export into an existing non-empty directory
    #[arg(long, requires = "export")]
    force: bool,

    /// Colour the transcript
    #[arg(long, value_enum, default_value = "auto")]
    color: ColorChoice,

    /// Characters of payload shown per message in the transcript
    #[arg(long, default_value_t = 100, value_name = "N")]
    preview: usize,

    /// No progress bar
    #[arg(short, long)]
    quiet: bool,

    /// Worker threads (default: the number of cores). Flows are sharded by
    /// their 4-tuple; output is identical to --threads 1, except that the
    /// global limits --max-flows, --memcap and --max-inflaters apply per
    /// thread (limit / N), so output differs only when one of them is hit.
    /// --export, filters and --grep run single-threaded, and so do stdin
    /// and gzip-compressed files (each worker reads the whole input).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,

    #[command(flatten)]
    filter: filters::FilterArgs,

    #[command(flatten)]
    grep: filters::GrepArgs,

    #[command(flatten)]
    limits: LimitArgs,
}

/// Limits (docs/limits.md). Hitting one gives an anomaly or a gap, never a crash.
#[derive(Args, Debug, Clone)]
struct LimitArgs {
    /// Largest message held in memory; longer ones are truncated in the output (bytes)
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES", help_heading = "Limits")]
    max_message: usize,

    /// Largest inflated (permessage-deflate) message (bytes)
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES", help_heading = "Limits")]
    max_inflate: usize,

    /// Most frames recorded per message
    #[arg(
        long,
        default_value_t = 65_536,
        value_name = "N",
        help_heading = "Limits"
    )]
    max_fragments: usize,

    /// Out-of-order bytes buffered per direction
    #[arg(long, default_value_t = 16 << 20, value_name = "BYTES", help_heading = "Limits")]
    ooo_limit: usize,

    /// Out-of-order segments buffered per direction
    #[arg(
        long,
        default_value_t = 65_536,
        value_name = "N",
        help_heading = "Limits"
    )]
    max_segments: usize,

    /// Memory for the flow table and all reassembly buffers together
    #[arg(long, default_value_t = 512 << 20, value_name = "BYTES", help_heading = "Limits")]
    memcap: usize,

    /// Most TCP flows tracked at once (least recently used are evicted)
    #[arg(
        long,
        default_value_t = 1_000_000,
        value_name = "N",
        help_heading = "Limits"
    )]
    max_flows: usize,

    /// Largest HTTP handshake head (bytes)
    #[arg(long, default_value_t = 64 << 10, value_name = "BYTES", help_heading = "Limits")]
    max_handshake: usize,

    /// Most headers in a handshake
    #[arg(
        long,
        default_value_t = 1024,
        value_name = "N",
        help_heading = "Limits"
    )]
    max_headers: usize,

    /// Idle timeout, in packet time, of flows not yet established (seconds)
    #[arg(
        long,
        default_value_t = 30,
        value_name = "SECS",
        help_heading = "Limits"
    )]
    timeout_new: u64,

    /// Idle timeout, in packet time, of established flows (seconds)
    #[arg(
        long,
        default_value_t = 3600,
        value_name = "SECS",
        help_heading = "Limits"
    )]
    timeout_established: u64,

    /// Linger, in packet time, of flows closed by FIN both ways or RST (seconds)
    #[arg(
        long,
        default_value_t = 120,
        value_name = "SECS",
        help_heading = "Limits"
    )]
    timeout_closed: u64,

    /// Inflated bytes produced per message, kept or not: bounds CPU time on deflate bombs
    #[arg(long, default_value_t = 1 << 30, value_name = "BYTES", help_heading = "Limits")]
    max_inflate_work: u64,

    /// Directions inflated at once (each keeps a 32 KiB window, about 47 KiB in all); beyond, compressed messages are kept compressed
    #[arg(
        long,
        default_value_t = 2048,
        value_name = "N",
        help_heading = "Limits"
    )]
    max_inflaters: usize,

    /// Client bytes held while an upgrade request waits for its 101 (bytes)
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES", help_heading = "Limits")]
    max_pending_client: usize,

    /// Which bytes win when overlapping TCP segments disagree
    #[arg(long, value_enum, default_value = "first", help_heading = "Limits")]
    overlap: OverlapArg,
}

impl LimitArgs {
    fn config(&self) -> Config {
        let mut cfg = Config::default();
        cfg.message.max_message_bytes = self.max_message;
        cfg.message.max_inflated_bytes = self.max_inflate;
        cfg.message.max_fragments = self.max_fragments;
        cfg.tcp.max_ooo_bytes_per_dir = self.ooo_limit;
        cfg.tcp.max_segments_per_dir = self.max_segments;
        cfg.tcp.memcap = self.memcap;
        cfg.tcp.max_flows = self.max_flows;
        cfg.tcp.timeout_new_secs = self.timeout_new;
        cfg.tcp.timeout_established_secs = self.timeout_established;
        cfg.tcp.timeout_closed_secs = self.timeout_closed;
        cfg.message.max_inflate_work = self.max_inflate_work;
        cfg.message.max_inflaters = self.max_inflaters;
        cfg.http.max_pending_client_bytes = self.max_pending_client;
        cfg.tcp.overlap = match self.overlap {
            OverlapArg::First => wssniff::tcp::OverlapPolicy::First,
            OverlapArg::Last => wssniff::tcp::OverlapPolicy::Last,
        };
        cfg.http.max_head_bytes = self.max_handshake;
        cfg.http.max_headers = self.max_headers;
        cfg
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let result = match cli.command {
        Some(Command::Read(args)) => read(*args),
        Some(Command::Sessions(args)) => sessions::run(args),
        Some(Command::Anomalies(args)) => anomalies::run(args),
        Some(Command::Completions { shell }) => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "wssniff", &mut io::stdout());
            Ok(exit::OK)
        }
        Some(Command::Man) => clap_mangen::Man::new(Cli::command())
            .render(&mut io::stdout())
            .map(|_| exit::OK),
        None => Ok(live::run(cli.live)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(exit::OK),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            eprintln!("wssniff: {e}");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            eprintln!("wssniff: {e}");
            ExitCode::from(exit::INPUT)
        }
    }
}

/// The exit status for a finished run, reporting a capture error if any.
fn finish_status<S>(outcome: &RunOutcome<S>) -> u8 {
    match &outcome.capture_error {
        None => exit::OK,
        Some(e) => {
            eprintln!("wssniff: {e}");
            if e.is_truncation() {
                eprintln!("wssniff: everything before that point was analysed");
                exit::TRUNCATED
            } else {
                exit::INPUT
            }
        }
    }
}

/// The `--export DIR` options, recording the command line.
pub(crate) fn export_options(dir: &std::path::Path, force: bool) -> ExportOptions {
    ExportOptions {
        dir: dir.to_path_buf(),
        force,
        command: std::env::args().collect(),
        ..Default::default()
    }
}

/// The main output `read` and live capture write.
pub(crate) fn format(json: bool, stats: bool, color: bool, preview: usize) -> Format {
    if stats {
        Format::StatsOnly
    } else if json {
        Format::Json
    } else {
        Format::Transcript(TranscriptOptions {
            color,
            preview,
            ..Default::default()
        })
    }
}

fn read(args: ReadArgs) -> io::Result<u8> {
    let cfg = args.limits.config();
    if args.grep.active() && (args.export.is_some() || args.stats) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--grep selects messages, not sessions: it cannot be combined with --export or --stats (export the sessions it found with --session ID)",
        ));
    }
    let filter = args.filter.build(&args.files, &cfg)?;
    let stdout = io::stdout();
    let is_tty = stdout.is_terminal();
    let out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let outputs = Outputs {
        format: format(
            args.json,
            args.stats,
            args.color.enabled(is_tty),
            args.preview,
        ),
        export: args
            .export
            .as_deref()
            .map(|d| export_options(d, args.force)),
        line_buffered: false,
    };
    let inputs = if outputs.needs_inputs() {
        pipeline::describe_inputs(&args.files)
    } else {
        Vec::new()
    };
    let threads = args
        .threads
        .map_or_else(wssniff::pipeline::sharded::default_threads, |n| n as usize);
    // Filters and search run in the single-threaded pipeline: the shards'
    // serialized output cannot be filtered after the fact.
    let plain = filter.is_empty() && !args.grep.active();
    if threads > 1 && args.export.is_none() && plain {
        return read_sharded(&args, cfg, threads, outputs.format, out, inputs);
    }
    let tee = filters::wrap(outputs.build(out, inputs)?, filter, &args.grep)?;
    let mut progress = progress::for_files(&args.files, args.quiet);
    let outcome = pipeline::run_files(&args.files, cfg, tee, progress.as_mut())?;
    let grep = outcome.sink.inner();
    if grep.context_dropped > 0 {
        eprintln!(
            "wssniff: {} context messages not shown: more than {} MiB of context held",
            grep.context_dropped,
            wssniff::sink::grep::DEFAULT_MAX_CONTEXT_BYTES >> 20
        );
    }
    if args.stats {
        print_final_stats(args.json, &outcome.stats)?;
    }
    Ok(finish_status(&outcome))
}

/// `read` over several threads (`wssniff::pipeline::sharded`); same output.
fn read_sharded(
    args: &ReadArgs,
    cfg: Config,
    threads: usize,
    format: Format,
    mut out: impl Write,
    inputs: Vec<wssniff::session::InputFile>,
) -> io::Result<u8> {
    use wssniff::pipeline::sharded;
    if !inputs.is_empty() {
        JsonSink::new(&mut out).capture(&CaptureRecord {
            schema: SCHEMA_VERSION,
            tool: tool_version(),
            inputs,
        })?;
    }
    let mut progress = progress::for_files(&args.files, args.quiet);
    let outcome = sharded::run_files(
        &args.files,
        cfg,
        threads,
        format,
        &mut out,
        progress.as_mut(),
    )?;
    out.flush()?;
    drop(out);
    if args.stats {
        print_final_stats(args.json, &outcome.stats)?;
    }
    let status = RunOutcome {
        sink: (),
        stats: outcome.stats,
        capture_error: outcome.capture_error,
    };
    Ok(finish_status(&status))
}

/// The final statistics of `--stats`: one JSON record, or the transcript's
/// summary line and the counters.
fn print_final_stats(json: bool, stats: &wssniff::session::StatsRecord) -> io::Result<()> {
    let mut w = io::BufWriter::new(io::stdout().lock());
    if json {
        let mut s = JsonSink::new(&mut w);
        s.stats(stats)?;
        s.finish()?;
    } else {
        let mut s = TranscriptSink::new(&mut w, TranscriptOptions::default());
        s.stats(stats)?;
        print_stats_detail(&mut w, stats)?;
    }
    w.flush()
}

fn print_stats_detail(w: &mut dyn Write, s: &wssniff::session::StatsRecord) -> io::Result<()> {
    let section = |w: &mut dyn Write, title: &str, m: &std::collections::BTreeMap<String, u64>| {
        if m.is_empty() {
            return Ok(());
        }
        writeln!(w, "{title}:")?;
        for (k, v) in m {
            writeln!(w, "  {k:<36} {v}")?;
        }
        Ok::<(), io::Error>(())
    };
    section(w, "messages", &s.messages)?;
    section(w, "anomalies", &s.anomalies)?;
    section(w, "skipped packets", &s.skipped)?;
    section(w, "counters", &s.counters)?;
    Ok(())
}
