//! Helpers shared by the integration tests over real captures: finding the
//! captures, running the library with a sink that keeps payload bytes and
//! frame detail, and reading ground-truth files.
#![allow(dead_code)] // each test binary uses a different subset

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wssniff::pipeline::{run_files, Config, NoProgress};
use wssniff::session::{AnomalyRecord, GapRecord, SessionEndRecord, SessionRecord, StatsRecord};
use wssniff::sink::{MessageView, SessionView, Sink};
use wssniff::types::Dir;

/// The crate root: tests run the binary from here with relative paths, so
/// outputs that name the input are machine-independent.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Relative paths (from the crate root) of every `.pcap`/`.pcapng` under
/// `dir`, recursively, sorted.
pub fn captures_under(dir: &str) -> Vec<String> {
    fn walk(base: &Path, rel: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(base.join(rel)) else {
            return;
        };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(base, &r, out);
            } else if matches!(
                r.extension().and_then(|x| x.to_str()),
                Some("pcap" | "pcapng")
            ) {
                out.push(r.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), Path::new(dir), &mut out);
    out.sort();
    out
}

/// `testdata/real/*.pcap` and every capture of `testdata/corpus/`.
pub fn all_captures() -> Vec<String> {
    let mut v = captures_under("testdata/real");
    v.extend(captures_under("testdata/corpus"));
    v
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    wssniff::pipeline::hex(&Sha256::digest(bytes))
}

/// A frame as the library saw it.
#[derive(Clone, Debug)]
pub struct Frame {
    pub fin: bool,
    pub rsv: u8,
    pub opcode: u8,
    pub masked: bool,
    pub payload_len: u64,
    /// Offset of the frame's first byte in its direction's stream.
    pub offset: u64,
    pub packets: Vec<u64>,
}

/// A message with its full decoded payload and frames.
#[derive(Clone, Debug)]
pub struct Msg {
    pub session: u64,
    pub dir: Dir,
    pub index: u64,
    pub opcode: u8,
    pub payload: Vec<u8>,
    pub len: u64,
    pub compressed: bool,
    pub truncated: bool,
    pub incomplete: bool,
    pub inflate_failed: bool,
    pub close: Option<(Option<u16>, String)>,
    pub packets: Vec<u64>,
    pub frames: Vec<Frame>,
}

/// Keeps everything a test needs, including payload bytes and frames.
#[derive(Default)]
pub struct Keep {
    pub sessions: Vec<SessionRecord>,
    pub messages: Vec<Msg>,
    pub anomalies: Vec<AnomalyRecord>,
    pub gaps: Vec<GapRecord>,
    pub ends: Vec<SessionEndRecord>,
    pub stats: Option<StatsRecord>,
}

impl Sink for Keep {
    fn session(&mut self, s: &SessionView<'_>) -> std::io::Result<()> {
        self.sessions.push(s.record.clone());
        Ok(())
    }
    fn message(&mut self, m: &MessageView<'_>) -> std::io::Result<()> {
        self.messages.push(Msg {
            session: m.session,
            dir: m.dir,
            index: m.index,
            opcode: m.opcode,
            payload: m.payload.to_vec(),
            len: m.len,
            compressed: m.compressed,
            truncated: m.truncated,
            incomplete: m.incomplete,
            inflate_failed: m.inflate_failed,
            close: m.close.map(|(c, r)| (c, r.to_owned())),
            packets: m.packets.to_vec(),
            frames: m
                .frame_detail
                .iter()
                .map(|f| Frame {
                    fin: f.fin,
                    rsv: f.rsv,
                    opcode: f.opcode,
                    masked: f.mask.is_some(),
                    payload_len: f.payload_len,
                    offset: f.offset,
                    packets: f.packets.clone(),
                })
                .collect(),
        });
        Ok(())
    }
    fn anomaly(&mut self, a: &AnomalyRecord) -> std::io::Result<()> {
        self.anomalies.push(a.clone());
        Ok(())
    }
    fn gap(&mut self, g: &GapRecord) -> std::io::Result<()> {
        self.gaps.push(g.clone());
        Ok(())
    }
    fn session_end(&mut self, rec: &SessionEndRecord) -> std::io::Result<()> {
        self.ends.push(rec.clone());
        Ok(())
    }
    fn stats(&mut self, rec: &StatsRecord) -> std::io::Result<()> {
        self.stats = Some(rec.clone());
        Ok(())
    }
    fn wants_frames(&self) -> bool {
        true
    }
}

/// Runs the library over one capture (relative to the crate root or absolute).
pub fn analyse(path: &str) -> Keep {
    analyse_with(path, Config::default())
}

pub fn analyse_with(path: &str, cfg: Config) -> Keep {
    let p = root().join(path);
    let out = run_files(&[p], cfg, Keep::default(), &mut NoProgress)
        .unwrap_or_else(|e| panic!("{path}: sink failed: {e}"));
    assert!(
        out.capture_error.is_none(),
        "{path}: capture error {:?}",
        out.capture_error
    );
    out.sink
}

/// The client port of a session (`ip:port`, IPv6 `[addr]:port`).
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

/// Reads a JSON Lines file into values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}: bad JSON line {l:?}: {e}", path.display()))
        })
        .collect()
}

pub fn dir_name(d: Dir) -> &'static str {
    match d {
        Dir::C2s => "c2s",
        Dir::S2c => "s2c",
    }
}

/// Anomalies that are informational, not a sign of a decoding problem.
pub const BENIGN_ANOMALIES: &[&str] = &["deflate_high_ratio"];
