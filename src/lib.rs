//! wssniff: a passive WebSocket sniffer and forensic analyzer.
//!
//! The library is the pipeline, one module per stage (see
//! `docs/ARCHITECTURE.md`): [`capture`] → [`decode`] → [`tcp`] → [`tls`] → [`http`] →
//! [`ws`] → [`message`] → [`session`] → [`sink`]. [`pipeline`] wires them for
//! one run. [`replay`] is used only by `wsreplay`, and depends on [`session`]
//! and [`ws`], never on capture.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// The architecture: stages, their contracts, the rules they follow
/// (`docs/ARCHITECTURE.md`, included so that `cargo doc` checks its links).
#[doc = include_str!("../docs/ARCHITECTURE.md")]
pub mod architecture {}
pub mod capture;
pub mod decode;
pub mod http;
pub mod message;
pub mod pipeline;
pub mod replay;
pub mod session;
pub mod sink;
/// Test-traffic generator (feature `synth`): for tests, benches and
/// `examples/wssniff-gen.rs`; not in the default build.
#[cfg(any(test, feature = "synth"))]
#[doc(hidden)]
pub mod synth;
pub mod tcp;
pub mod tls;
pub mod types;
pub mod ws;

/// Every anomaly name each stage can report, with its meaning, by stage:
/// the source of `docs/anomalies.md` (a test keeps the two in step).
pub const ANOMALY_TABLES: &[(&str, &[(&str, &str)])] = &[
    ("capture", capture::ANOMALIES),
    ("decode", decode::ANOMALIES),
    ("tcp", tcp::ANOMALIES),
    ("tls", tls::ANOMALIES),
    ("http", http::ANOMALIES),
    ("ws", ws::ANOMALIES),
    ("message", message::ANOMALIES),
    ("export", sink::export::ANOMALIES),
    ("replay", replay::ANOMALIES),
];
