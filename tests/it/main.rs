//! The integration tests, one binary: each former `tests/NAME.rs` is the
//! module `NAME` here (run one with `cargo test --test it NAME::`), so the
//! release test build links (with thin LTO) one binary instead of 17.
//! Golden files still re-bless with `WSSNIFF_BLESS=1`, e.g.
//! `WSSNIFF_BLESS=1 cargo test --release --test it golden::`.
//!
//! Layout:
//! - `common/`: helpers over real captures (finding them, a collecting sink,
//!   ground-truth files);
//! - `support_replay/`: servers, peers and runners for the wsreplay tests;
//! - `tools`: external tools (tshark, Python `websockets`, root): SKIP
//!   locally when missing, FAIL under `CI=true`; every such test asks it;
//! - one module per subject below. A new test file goes here as
//!   `tests/it/NAME.rs` plus a `mod NAME;` line, using `crate::common` /
//!   `crate::tools` rather than its own `mod common;`.
//!
//! `tests/memory.rs` stays a binary of its own: it installs a counting
//! global allocator, which would count every other test's allocations too.

mod common;
mod support_replay;
mod tools;

mod adversarial;
mod capture_errors;
mod corpus_expect;
mod corruption;
mod docs;
mod example;
mod forensic;
mod golden;
#[cfg(feature = "live")]
mod live;
mod property;
mod recovery;
mod replay_client;
mod replay_e2e;
mod replay_raw;
mod replay_refusals;
mod replay_server;
mod replay_tls;
mod tls;
mod truth;
mod tshark_diff;
mod tunnels;
