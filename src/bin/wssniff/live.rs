//! `wssniff -i IFACE [EXPRESSION]`: live capture with tcpdump's flags.
//!
//! Order of start-up, chosen so a failure leaves nothing behind and output
//! files belong to the `-Z` user: check the `-Z` user exists, open the
//! interface and set the filter, drop privileges, create the output files
//! (`-w`, `--export`), then print the readiness line. The loop stops on
//! SIGINT/SIGTERM (a flag checked at least every read timeout), `-c`,
//! `--duration` or a capture failure; every open session is then finished as
//! at the end of a file, the stats record and the export manifest are
//! written, and the kernel's counters are printed on stderr like tcpdump's.

use super::{exit, print_final_stats, ColorChoice, LimitArgs};
use clap::Args;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use wssniff::capture::live::{self, LiveCapture, LiveConfig, SaveFile};
use wssniff::pipeline::live::{capture_loop, Stop, StopAfter};
use wssniff::pipeline::{Analyzer, Outputs};
use wssniff::session::InputFile;
use wssniff::sink::filter::FilterSink;

/// Exit status after a second SIGINT/SIGTERM, as a shell reports a SIGINT death.
const EXIT_INTERRUPTED: i32 = 130;

/// Live capture options: top-level, without a subcommand, as tcpdump's.
#[derive(Args, Debug)]
pub(crate) struct LiveArgs {
    /// Capture live on IFACE (`any`: all interfaces). Output appears as
    /// messages complete; SIGINT/SIGTERM stops, finishing every open session
    ///
    /// Open sessions are reported as incomplete when the capture stops. Flows
    /// time out in packet time: idle 30 s before any payload, 3600 s once
    /// established, 120 s after FIN or RST. Needs root or CAP_NET_RAW and
    /// CAP_NET_ADMIN.
    #[arg(
        short = 'i',
        long = "interface",
        value_name = "IFACE",
        help_heading = "Live capture"
    )]
    interface: Option<String>,

    /// List the interfaces that can be captured on, and exit
    #[arg(short = 'D', long = "list-interfaces", help_heading = "Live capture")]
    list_interfaces: bool,

    /// BPF filter expression (pcap-filter(7)); or give it as trailing words
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "EXPR",
        conflicts_with = "expression",
        help_heading = "Live capture"
    )]
    filter: Option<String>,

    /// BPF filter expression as trailing words, as with tcpdump: `wssniff -i lo tcp port 8080`
    #[arg(value_name = "EXPRESSION", trailing_var_arg = true)]
    expression: Vec<String>,

    /// Bytes kept of each packet (0: the default)
    #[arg(short = 's', long = "snapshot-length", value_name = "SNAPLEN",
          default_value_t = live::DEFAULT_SNAPLEN,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(live::DEFAULT_SNAPLEN)),
          help_heading = "Live capture")]
    snaplen: u32,

    /// Do not put the interface into promiscuous mode
    #[arg(
        short = 'p',
        long = "no-promiscuous-mode",
        help_heading = "Live capture"
    )]
    no_promisc: bool,

    /// Kernel capture buffer size, in KiB (default: libpcap's, 2 MiB on Linux)
    #[arg(short = 'B', long = "buffer-size", value_name = "KiB",
          value_parser = clap::value_parser!(u32).range(1..=2_097_151),
          help_heading = "Live capture")]
    buffer_kib: Option<u32>,

    /// Stop after COUNT packets
    #[arg(short = 'c', value_name = "COUNT",
          value_parser = clap::value_parser!(u64).range(1..),
          help_heading = "Live capture")]
    count: Option<u64>,

    /// Stop after SECS seconds (fractions allowed)
    #[arg(long, value_name = "SECS", value_parser = parse_duration, help_heading = "Live capture")]
    duration: Option<Duration>,

    /// Also save every captured packet to FILE (pcap, written as it goes, within 0.2 s)
    #[arg(short = 'w', value_name = "FILE", help_heading = "Live capture")]
    write: Option<PathBuf>,

    /// After opening the interface, drop privileges to USER (and its groups)
    /// before creating any output file
    #[arg(
        short = 'Z',
        long = "relinquish-privileges",
        value_name = "USER",
        help_heading = "Live capture"
    )]
    user: Option<String>,

    // The output options mirror `read`'s (see ReadArgs), so scripts switch
    // between a file and an interface by changing only the input.
    /// Write JSON Lines (schema: docs/json.md) instead of the transcript, one flushed line per record
    #[arg(long, help_heading = "Live output")]
    json: bool,

    /// Print only the final statistics, when the capture stops
    #[arg(long, help_heading = "Live output")]
    stats: bool,

    /// Write every session to DIR for wsreplay (format: docs/export.md), as it goes
    #[arg(long, value_name = "DIR", help_heading = "Live output")]
    export: Option<PathBuf>,

    /// Allow --export into an existing non-empty directory
    #[arg(long, requires = "export", help_heading = "Live output")]
    force: bool,

    /// Colour the transcript
    #[arg(long, value_enum, default_value = "auto", help_heading = "Live output")]
    color: ColorChoice,

    /// Characters of payload shown per message in the transcript
    #[arg(
        long,
        default_value_t = 100,
        value_name = "N",
        help_heading = "Live output"
    )]
    preview: usize,

    /// Do not print the listening line and the capture counters on stderr
    #[arg(short, long, help_heading = "Live output")]
    quiet: bool,

    #[command(flatten)]
    limits: LimitArgs,

    /// Message and session filters, as for `read` (not --anomalous, which
    /// needs a second pass over a file).
    #[command(flatten)]
    select: crate::filters::FilterArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if secs <= 0.0 {
        return Err("must be more than 0".to_owned());
    }
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn usage(msg: &str) -> u8 {
    eprintln!("wssniff: {msg}");
    exit::USAGE
}

/// Runs the top-level command: `-D`, or a live capture.
pub(crate) fn run(args: LiveArgs) -> u8 {
    if args.list_interfaces {
        return list();
    }
    let Some(interface) = args.interface.clone() else {
        if !args.expression.is_empty() {
            return usage(&format!(
                "unknown command '{}': give a subcommand (wssniff read FILE) or an interface (wssniff -i IFACE [EXPRESSION]); see wssniff --help",
                args.expression.join(" ")
            ));
        }
        return usage("nothing to do: give a subcommand (wssniff read FILE) or an interface (wssniff -i IFACE); see wssniff --help");
    };
    if args.write.as_deref() == Some(std::path::Path::new("-")) {
        return usage("-w - (pcap to stdout) is not supported; stdout carries the transcript or JSON; give a file name");
    }
    if args.select.anomalous {
        return usage("--anomalous needs a second pass over a file: save the capture with -w FILE, then run wssniff read --anomalous FILE");
    }
    if let Err(e) = args.select.build(&[], &args.limits.config()) {
        return usage(&e.to_string());
    }
    // Before anything is opened: a user that does not exist is a usage error.
    let user = match args.user.as_deref().map(lookup_user).transpose() {
        Ok(u) => u,
        Err(msg) => return usage(&msg),
    };
    let filter = match &args.filter {
        Some(f) => Some(f.clone()),
        None if !args.expression.is_empty() => Some(args.expression.join(" ")),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = install_signal_handlers(&stop) {
        eprintln!("wssniff: cannot install signal handlers: {e}");
        return exit::INPUT;
    }
    let cfg = LiveConfig {
        interface: interface.clone(),
        snaplen: args.snaplen,
        promisc: !args.no_promisc,
        buffer_bytes: args.buffer_kib.map(|k| k * 1024),
        filter,
    };
    let mut cap = match LiveCapture::open(&cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("wssniff: {e}");
            return exit::USAGE;
        }
    };
    if let Some(u) = &user {
        if let Err(msg) = drop_privileges(u) {
            eprintln!("wssniff: {msg}");
            return exit::USAGE;
        }
    }
    match capture(&args, &mut cap, &stop) {
        Ok(code) => code,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("wssniff: {e}");
            exit::INPUT
        }
    }
}

/// `-D`: tcpdump's numbered list.
fn list() -> u8 {
    match live::list_interfaces() {
        Ok(ifs) => {
            let mut out = io::stdout().lock();
            for (i, d) in ifs.iter().enumerate() {
                if writeln!(out, "{}.{d}", i + 1).is_err() {
                    break;
                }
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("wssniff: {e}");
            exit::INPUT
        }
    }
}

/// SIGINT/SIGTERM set `stop`; a second one exits at once.
fn install_signal_handlers(stop: &Arc<AtomicBool>) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as the previous signal left
        // it: set means this is the second signal.
        signal_hook::flag::register_conditional_shutdown(sig, EXIT_INTERRUPTED, Arc::clone(stop))?;
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

fn lookup_user(name: &str) -> Result<nix::unistd::User, String> {
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!("-Z {name}: no such user")),
        Err(e) => Err(format!("-Z {name}: cannot look the user up: {e}")),
    }
}

/// Becomes `user`, with its supplementary groups, for good.
fn drop_privileges(user: &nix::unistd::User) -> Result<(), String> {
    use nix::unistd::{initgroups, setgid, setuid, Uid};
    let fail = |what: &str, e: nix::Error| {
        format!(
            "-Z {}: {what} failed: {e} (dropping privileges needs root)",
            user.name
        )
    };
    let cname = std::ffi::CString::new(user.name.as_str())
        .map_err(|_| format!("-Z {}: invalid user name", user.name))?;
    initgroups(&cname, user.gid).map_err(|e| fail("initgroups", e))?;
    setgid(user.gid).map_err(|e| fail("setgid", e))?;
    setuid(user.uid).map_err(|e| fail("setuid", e))?;
    // setuid from root to another user is irreversible; check it is.
    if !user.uid.is_root() && setuid(Uid::from_raw(0)).is_ok() {
        return Err(format!(
            "-Z {}: could regain root after dropping it",
            user.name
        ));
    }
    Ok(())
}

/// Creates the outputs, runs the loop, finishes. Errors are output failures.
fn capture(args: &LiveArgs, cap: &mut LiveCapture, stop: &AtomicBool) -> io::Result<u8> {
    let mut save = match &args.write {
        Some(path) => {
            let f = create_private(path).map_err(|e| {
                io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
            })?;
            Some(SaveFile::new(f, cap.link_type(), cap.snaplen())?)
        }
        None => None,
    };
    let inputs = vec![InputFile {
        index: 0,
        path: cap.interface().to_owned(),
        format: Some("live".to_owned()),
        link_types: vec![cap.link_type()],
        ..Default::default()
    }];
    let stdout = io::stdout();
    let is_tty = stdout.is_terminal();
    let out = io::BufWriter::with_capacity(64 * 1024, stdout.lock());
    let outputs = Outputs {
        format: crate::format(
            args.json,
            args.stats,
            args.color.enabled(is_tty),
            args.preview,
        ),
        export: args
            .export
            .as_deref()
            .map(|d| crate::export_options(d, args.force)),
        line_buffered: true,
    };
    let inputs = if outputs.needs_inputs() {
        inputs
    } else {
        Vec::new()
    };
    let select = args.select.build(&[], &args.limits.config())?;
    let tee = FilterSink::new(outputs.build(out, inputs)?, select);
    let cfg = args.limits.config();
    let mut an = Analyzer::new(cfg, tee);
    // A long capture must not hold closed sessions (and their inflaters)
    // for the closed-flow timeout; their records come at once, too.
    an.end_sessions_at_close(true);
    an.begin_file();
    if !args.quiet {
        eprintln!("wssniff: {}", cap.listening_line());
    }

    let after = StopAfter {
        count: args.count,
        duration: args.duration,
    };
    let why = capture_loop(cap, &mut an, save.as_mut(), stop, after);

    // The orderly finish, whatever stopped the loop.
    let mut save_err = None;
    if let Some(s) = save.take() {
        save_err = s.into_inner().and_then(|f| f.sync_all()).err();
    }
    let finished = an.finish();
    if !args.quiet {
        print_capture_counters(cap);
    }
    let (_, stats) = finished?;
    if let Some(e) = save_err {
        let path = args.write.as_deref().unwrap_or(std::path::Path::new(""));
        return Err(io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", path.display()),
        ));
    }
    if args.stats {
        print_final_stats(args.json, &stats)?;
    }
    match why {
        Stop::Signal | Stop::Count | Stop::Duration => Ok(exit::OK),
        Stop::Failed(e) => {
            eprintln!("wssniff: {e}");
            eprintln!("wssniff: everything captured before that was analysed");
            Ok(exit::INPUT)
        }
        Stop::Output(e) => Err(e),
    }
}

/// tcpdump's closing lines.
fn print_capture_counters(cap: &mut LiveCapture) {
    let captured = cap.captured();
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "{captured} packet{} captured",
        if captured == 1 { "" } else { "s" }
    );
    if let Some(s) = cap.stats() {
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        let _ = writeln!(
            err,
            "{} packet{} received by filter",
            s.received,
            plural(s.received)
        );
        let _ = writeln!(
            err,
            "{} packet{} dropped by kernel",
            s.dropped,
            plural(s.dropped)
        );
        if s.if_dropped > 0 {
            let _ = writeln!(
                err,
                "{} packet{} dropped by interface",
                s.if_dropped,
                plural(s.if_dropped)
            );
        }
    }
}

/// Creates (or truncates) a file readable by its owner only, never through a
/// symlink: captured payloads are sensitive.
fn create_private(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
}
