//! wsreplay: replays a session exported by `wssniff --export` to a live
//! server (as the client) or client (as the server). See docs/replay.md.
#![forbid(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use regex::Regex;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use wssniff::replay::export::{refusal_reason, Export, LoadedSession};
use wssniff::replay::handshake::HeaderEdits;
use wssniff::replay::run::{run_client, run_server, ReplayOptions, Report};
use wssniff::replay::target::Target;
use wssniff::replay::transport::TlsOptions;
use wssniff::replay::{ExitStatus, ReplayError, ReplayLimits};

const EXIT_CODES: &str = "\
Exit status:
  0  replay done (with --expect-same: the peer sent what was recorded)
  1  --expect-same and the peer's messages differ from the recording
  2  usage error
  3  export missing or corrupt (manifest unreadable, schema mismatch,
     SHA-256 mismatch) or unknown session id
  4  target unreachable, refused, not WebSocket, TLS failure; as server:
     the client did not send a WebSocket handshake
  5  session refused: it has gaps or conflicting overlaps (see --allow-gaps)
  6  local failure (cannot listen, I/O error)";

#[derive(Parser)]
#[command(
    name = "wsreplay",
    version,
    about = "Replay a WebSocket session exported by `wssniff --export` to a live peer",
    long_about = "Replay a WebSocket session exported by `wssniff --export` to a live peer: \
                  as the original client toward a server you name (`client`), or as the original \
                  server toward a client that connects (`server`). What the peer sends is compared \
                  with the recording. wsreplay never connects to hosts named in the capture.",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play the original client toward a server.
    #[command(after_help = EXIT_CODES)]
    Client(ClientArgs),
    /// Play the original server toward one client.
    #[command(after_help = EXIT_CODES)]
    Server(ServerArgs),
    /// List the sessions of an export.
    #[command(after_help = EXIT_CODES)]
    List {
        /// Export directory.
        dir: PathBuf,
        /// One JSON object per session.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct Common {
    /// Export directory written by `wssniff read CAPTURE --export DIR`.
    dir: PathBuf,
    /// Session id (may be omitted when the export has one session).
    #[arg(long, short = 's')]
    session: Option<u64>,
    /// Scale recorded timing: delays are divided by F; 0 = as fast as
    /// possible. Default 1, or 0 with --raw.
    #[arg(long, value_name = "F")]
    speed: Option<f64>,
    /// Seconds to wait for the handshake, for each --wait-* wait, and for
    /// the peer's close at the end.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    timeout: f64,
    /// Regex whose matches in text payloads are replaced by a fixed token on
    /// both sides before comparing (repeatable).
    #[arg(long, value_name = "REGEX")]
    ignore: Vec<String>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit with status 1 when the peer's messages differ from the recording.
    #[arg(long)]
    expect_same: bool,
    /// Send the recorded wire bytes of our side (c2s.bin or s2c.bin) exactly
    /// as captured (original masks, compression, malformed frames).
    #[arg(long)]
    raw: bool,
    /// With --raw: send the recorded handshake bytes too, instead of a fresh handshake.
    #[arg(long, requires = "raw")]
    with_handshake: bool,
    /// Replay a session with gaps or conflicting overlaps anyway.
    #[arg(long)]
    allow_gaps: bool,
}

#[derive(Args)]
struct ClientArgs {
    #[command(flatten)]
    common: Common,
    /// ws://HOST:PORT/PATH or wss://…; without a path, the recorded URI is used.
    #[arg(long, value_name = "URL")]
    target: String,
    /// Add or replace a handshake header (repeatable): -H 'Cookie: a=b'.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// Remove a recorded handshake header (repeatable).
    #[arg(long, value_name = "NAME")]
    drop_header: Vec<String>,
    /// PEM file of a CA to trust for wss:// (in addition to the webpki roots).
    #[arg(long, value_name = "FILE")]
    ca: Vec<PathBuf>,
    /// Do not verify the wss:// server's certificate (self-signed test servers).
    #[arg(long)]
    insecure: bool,
    /// Before each client message, wait until the server messages that
    /// preceded it in the recording have arrived (--timeout per wait).
    #[arg(long)]
    wait_replies: bool,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    common: Common,
    /// Address to listen on (port 0: any free port; see the readiness line).
    #[arg(long, value_name = "ADDR:PORT")]
    listen: String,
    /// Before each server message, wait until the client messages that
    /// preceded it in the recording have arrived (--timeout per wait).
    #[arg(long)]
    wait_requests: bool,
    /// Serve one client, then exit (the default).
    #[arg(long, conflicts_with = "forever")]
    once: bool,
    /// Serve clients one after another until killed.
    #[arg(long)]
    forever: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(status) => ExitCode::from(status.code() as u8),
        Err(e) => {
            eprintln!("wsreplay: {e}");
            ExitCode::from(e.status.code() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<ExitStatus, ReplayError> {
    match cli.command {
        Command::List { dir, json } => list(&dir, json),
        Command::Client(args) => client(args),
        Command::Server(args) => server(args),
    }
}

fn usage(msg: impl Into<String>) -> ReplayError {
    ReplayError::new(ExitStatus::Usage, msg)
}

fn list(dir: &std::path::Path, json: bool) -> Result<ExitStatus, ReplayError> {
    let export = Export::open(dir)?;
    for s in &export.manifest.sessions {
        if json {
            let v = serde_json::json!({
                "id": s.id, "client": s.client, "server": s.server, "uri": s.uri,
                "host": s.host, "messages": s.messages, "gaps": s.gaps.len(),
                "incomplete": s.incomplete,
            });
            println!("{v}");
        } else {
            println!(
                "{:>6}  {} -> {}  {}  c2s={} s2c={}{}{}",
                s.id,
                s.client,
                s.server,
                s.uri,
                s.messages.c2s,
                s.messages.s2c,
                if s.gaps.is_empty() {
                    String::new()
                } else {
                    format!("  gaps={}", s.gaps.len())
                },
                if s.incomplete { "  incomplete" } else { "" }
            );
        }
    }
    Ok(ExitStatus::Ok)
}

fn options(c: &Common, wait: bool) -> Result<ReplayOptions, ReplayError> {
    let speed = c.speed.unwrap_or(if c.raw { 0.0 } else { 1.0 });
    if !speed.is_finite() || speed < 0.0 {
        return Err(usage(format!("--speed {speed}: must be 0 or positive")));
    }
    if !c.timeout.is_finite() || c.timeout <= 0.0 || c.timeout > 86_400.0 {
        return Err(usage(format!(
            "--timeout {}: must be between 0 and 86400 seconds",
            c.timeout
        )));
    }
    let ignore = c
        .ignore
        .iter()
        .map(|r| Regex::new(r).map_err(|e| usage(format!("--ignore {r:?}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ReplayOptions {
        speed,
        wait,
        timeout: Duration::from_secs_f64(c.timeout),
        ignore,
        raw: c.raw,
        with_handshake: c.with_handshake,
        limits: ReplayLimits::default(),
    })
}

fn load(c: &Common, limits: &ReplayLimits) -> Result<LoadedSession, ReplayError> {
    let export = Export::open(&c.dir)?;
    let meta = export.select(c.session)?;
    if let Some(why) = refusal_reason(meta) {
        if !c.allow_gaps {
            return Err(ReplayError::new(ExitStatus::Refused, why));
        }
    }
    export.load(meta, limits)
}

fn finish(report: &Report, c: &Common) -> ExitStatus {
    if c.json {
        match serde_json::to_string(report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("wsreplay: cannot write the report: {e}");
                return ExitStatus::Local;
            }
        }
    } else {
        print!("{}", report.render_text());
    }
    if c.expect_same && !report.comparison.same {
        ExitStatus::Different
    } else {
        ExitStatus::Ok
    }
}

fn client(args: ClientArgs) -> Result<ExitStatus, ReplayError> {
    let opts = options(&args.common, args.wait_replies)?;
    let target = Target::parse(&args.target)?;
    let mut edits = HeaderEdits::default();
    for h in &args.headers {
        edits.set.push(HeaderEdits::parse_set(h).map_err(usage)?);
    }
    edits.drop = args.drop_header.clone();
    let tls = TlsOptions {
        ca_files: args.ca.clone(),
        insecure: args.insecure,
    };
    if !target.tls && (args.insecure || !args.ca.is_empty()) {
        return Err(usage("--ca and --insecure only apply to wss:// targets"));
    }
    let session = load(&args.common, &opts.limits)?;
    let report = run_client(&session, &target, &args.target, &tls, &edits, &opts)?;
    Ok(finish(&report, &args.common))
}

fn server(args: ServerArgs) -> Result<ExitStatus, ReplayError> {
    let opts = options(&args.common, args.wait_requests)?;
    let session = load(&args.common, &opts.limits)?;
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| ReplayError::local(format!("cannot listen on {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ReplayError::local(format!("listener: {e}")))?;
    eprintln!("listening on {addr}");
    let mut worst = ExitStatus::Ok;
    loop {
        let status = match run_server(&session, &listener, &opts) {
            Ok(report) => finish(&report, &args.common),
            Err(e) if args.forever && e.status == ExitStatus::Peer => {
                eprintln!("wsreplay: {e}");
                e.status
            }
            Err(e) => return Err(e),
        };
        if status != ExitStatus::Ok {
            worst = status;
        }
        if !args.forever {
            return Ok(worst);
        }
    }
}
