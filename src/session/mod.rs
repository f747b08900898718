//! The session stage and its record model.
//!
//! [`SessionStage`] takes each TCP connection from the flow table: the HTTP
//! stage's handshake tracker first, then, after a `101`, a WebSocket session
//! whose two [`Direction`]s (frame decoder and message assembler) decode its
//! streams. It owns the per-session facts ([`SessionSummary`]) and the run's
//! session counts ([`SessionStats`]), and turns everything into the records
//! of [`record`], written to one [`Sink`](crate::sink::Sink).
//!
//! The records are the contract shared by the `sink` writers and by
//! `wsreplay`, which reads export directories through these types and
//! nothing else. The JSON Lines schema is documented in `docs/json.md`, the
//! export directory in `docs/export.md`.

mod direction;
mod emit;
mod files;
pub mod record;
mod stage;
mod stats;
mod ws;

pub use direction::Direction;
pub use files::FileMap;
pub use record::*;
pub use stage::{Conn, SessionStage, StageConfig};
pub use stats::{SessionStats, SessionSummary, Tally};
pub use ws::WsSession;
