//! Synthetic WebSocket capture generator: a seeded, reproducible pcap of
//! interleaved sessions plus a ground-truth JSON Lines file of every message.
//!
//! cargo run --release --example wssniff-gen -- --seed 1 --connections 200 \
//!     --size 1G --sizes mixed -o /tmp/big.pcap --truth /tmp/big.truth.jsonl

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::time::Instant;
use wssniff::synth::gen::{generate, GenConfig, SizeMix};

#[derive(Parser, Debug)]
#[command(
    name = "wssniff-gen",
    about = "Generate a synthetic WebSocket capture and its ground truth"
)]
struct Args {
    /// PRNG seed: the same arguments and seed give byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of WebSocket connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Approximate capture size, with an optional K, M or G suffix (powers of 1024).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    size: u64,
    /// Message size mix: small (<= 256 B), mixed (1 B..256 KiB), large (64 KiB..4 MiB).
    #[arg(long, default_value = "mixed")]
    sizes: SizeMix,
    /// Split some messages into 2..8 frames.
    #[arg(long)]
    fragment: bool,
    /// Negotiate permessage-deflate and compress most messages.
    #[arg(long)]
    deflate: bool,
    /// Probability that a data segment is swapped with the next one.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    reorder: f64,
    /// Probability that a data segment is sent twice.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    retransmit: f64,
    /// Probability that a data segment is dropped (its messages are marked lost).
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    loss: f64,
    /// Use IPv6 addresses.
    #[arg(long)]
    ipv6: bool,
    /// Largest TCP payload per packet (65495 is loopback's; 1448 is Ethernet's).
    #[arg(long, default_value_t = 65_495)]
    mss: usize,
    /// Capture file to write ("-" for stdout).
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
    /// Ground-truth JSON Lines file (default: discarded).
    #[arg(long)]
    truth: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, mult) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'm' | 'M')) => (&s[..i], 1 << 20),
        Some((i, 'g' | 'G')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("bad size {s:?}: expected a number with an optional K, M or G suffix")
    })?;
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

fn parse_probability(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "bad probability {s:?}: expected a number from 0 to 1"
        )),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.mss == 0 {
        bail!("--mss must be at least 1");
    }
    let cfg = GenConfig {
        seed: args.seed,
        connections: args.connections,
        target_bytes: args.size,
        sizes: args.sizes,
        fragment: args.fragment,
        deflate: args.deflate,
        reorder: args.reorder,
        retransmit: args.retransmit,
        loss: args.loss,
        ipv6: args.ipv6,
        mss: args.mss,
    };
    let pcap: Box<dyn io::Write> = if args.output.as_os_str() == "-" {
        Box::new(io::stdout().lock())
    } else {
        Box::new(
            File::create(&args.output)
                .with_context(|| format!("cannot create {}", args.output.display()))?,
        )
    };
    let truth: Box<dyn io::Write> = match &args.truth {
        Some(p) => {
            Box::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?)
        }
        None => Box::new(io::sink()),
    };
    let start = Instant::now();
    let sum = generate(&cfg, pcap, truth).context("writing the capture")?;
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wssniff-gen: {} connections, {} messages ({} frames, {} lost), {} packets, {} bytes in {:.2} s ({:.0} MB/s); server ports {:?}",
        sum.connections,
        sum.messages,
        sum.frames,
        sum.lost_messages,
        sum.packets,
        sum.bytes,
        secs,
        sum.bytes as f64 / 1e6 / secs.max(1e-9),
        sum.server_ports,
    );
    Ok(())
}
