//! `wssniff`: the command line over the library. Parsing, wiring, exit codes.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use wssniff::pipeline::{self, Config, NoProgress, RunOutcome};
use wssniff::session::{tool_version, CaptureRecord, SCHEMA_VERSION};
use wssniff::sink::{
    ExportOptions, ExportSink, JsonSink, Sink, Tee, TranscriptOptions, TranscriptSink,
};

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
    Read(ReadArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
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

    /// Memory for all reassembly buffers together
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
        Some(Command::Read(args)) => read(args),
        None => Ok(live::run(cli.live)),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(exit::OK),
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

fn read(args: ReadArgs) -> io::Result<u8> {
    let cfg = args.limits.config();
    let stdout = io::stdout();
    let is_tty = stdout.is_terminal();
    let out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let needs_inputs = args.json || args.export.is_some();
    let inputs = if needs_inputs && !args.stats {
        pipeline::describe_inputs(&args.files)
    } else {
        Vec::new()
    };
    if let Some(dir) = &args.export {
        let opts = ExportOptions {
            dir: dir.clone(),
            force: args.force,
            command: std::env::args().collect(),
            inputs: inputs.clone(),
            ..Default::default()
        };
        let export = ExportSink::create(opts).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot export to {}: {e}", dir.display()))
        })?;
        sinks.push(Box::new(export));
    }
    let mut stats_only = None;
    if args.stats {
        stats_only = Some(args.json);
    } else if args.json {
        sinks.push(Box::new(JsonSink::new(out)));
    } else {
        let color = match args.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => is_tty && std::env::var_os("NO_COLOR").is_none(),
        };
        sinks.push(Box::new(TranscriptSink::new(
            out,
            TranscriptOptions {
                color,
                preview: args.preview,
                ..Default::default()
            },
        )));
    }
    let mut tee = Tee::new(sinks);
    if !inputs.is_empty() {
        tee.capture(&CaptureRecord {
            schema: SCHEMA_VERSION,
            tool: tool_version(),
            inputs,
        })?;
    }
    let outcome = pipeline::run_files(&args.files, cfg, tee, &mut NoProgress)?;
    if let Some(json) = stats_only {
        let mut w = io::BufWriter::new(io::stdout().lock());
        if json {
            let mut s = JsonSink::new(&mut w);
            s.stats(&outcome.stats)?;
            s.finish()?;
        } else {
            let mut s = TranscriptSink::new(&mut w, TranscriptOptions::default());
            s.stats(&outcome.stats)?;
            print_stats_detail(&mut w, &outcome.stats)?;
        }
        w.flush()?;
    }
    Ok(finish_status(&outcome))
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
