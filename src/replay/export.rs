//! Reading an export directory (`docs/export.md`): the manifest, its SHA-256
//! proofs, and one session's recorded messages and wire bytes.

use super::{ExitStatus, ReplayError, ReplayLimits};
use crate::session::{
    export_names, CloseRecord, FrameRecord, Manifest, ManifestSession, MessageRecord,
    SCHEMA_VERSION,
};
use crate::types::{Dir, Timestamp};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// An opened export: its directory and verified-parseable manifest.
#[derive(Clone, Debug)]
pub struct Export {
    /// The export directory.
    pub dir: PathBuf,
    /// Its parsed `manifest.json`.
    pub manifest: Manifest,
}

/// One recorded message, decoded from `messages.jsonl`.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    /// Direction it was sent in.
    pub dir: Dir,
    /// Message number within its direction, from 0.
    pub index: u64,
    /// Opcode, 0..=15.
    pub opcode: u8,
    /// Decoded payload (unmasked, inflated) as recorded.
    pub payload: Vec<u8>,
    /// Time of its first frame; None when not recorded.
    pub ts: Option<Timestamp>,
    /// Offsets of the message's frames in its direction's `.bin` file.
    pub stream: [u64; 2],
    /// It was sent compressed with permessage-deflate.
    pub compressed: bool,
    /// The recorded payload is not the whole message (truncated, incomplete,
    /// or not inflatable): comparisons against it are approximate.
    pub partial: bool,
    /// Code and reason, for close messages.
    pub close: Option<CloseRecord>,
    /// Frame-level detail as recorded.
    pub frames: Vec<FrameRecord>,
}

/// Everything of one session that a replay needs.
#[derive(Clone, Debug)]
pub struct LoadedSession {
    /// The session's entry in the manifest.
    pub meta: ManifestSession,
    /// The upgrade request's bytes, from `request.http`.
    pub request: Vec<u8>,
    /// The response's bytes, from `response.http`.
    pub response: Vec<u8>,
    /// Both directions, in recorded completion order.
    pub messages: Vec<Recorded>,
    /// The client-to-server wire bytes after the handshake (`c2s.bin`).
    pub c2s: Vec<u8>,
    /// The server-to-client wire bytes after the handshake (`s2c.bin`).
    pub s2c: Vec<u8>,
}

impl LoadedSession {
    /// The recorded messages of one direction, in order.
    pub fn of(&self, dir: Dir) -> impl Iterator<Item = &Recorded> {
        self.messages.iter().filter(move |m| m.dir == dir)
    }

    /// The recorded wire bytes of one direction.
    pub fn bin(&self, dir: Dir) -> &[u8] {
        match dir {
            Dir::C2s => &self.c2s,
            Dir::S2c => &self.s2c,
        }
    }
}

impl Export {
    /// Reads and checks `DIR/manifest.json` (schema version, file paths).
    pub fn open(dir: &Path) -> Result<Export, ReplayError> {
        let path = dir.join(export_names::MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| {
            ReplayError::export(format!(
                "cannot read {}: {e} (is {} an export directory written by `wssniff --export`?)",
                path.display(),
                dir.display()
            ))
        })?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| ReplayError::export(format!("{}: not valid JSON: {e}", path.display())))?;
        // Check the schema before the shape, so a newer export gets the useful message.
        match value.get("schema").and_then(|s| s.as_u64()) {
            Some(v) if v == u64::from(SCHEMA_VERSION) => {}
            Some(v) => {
                return Err(ReplayError::export(format!(
                    "{}: export schema {v}, this wsreplay reads schema {SCHEMA_VERSION}",
                    path.display()
                )))
            }
            None => {
                return Err(ReplayError::export(format!(
                    "{}: no schema version",
                    path.display()
                )))
            }
        }
        let manifest: Manifest = serde_json::from_value(value).map_err(|e| {
            ReplayError::export(format!("{}: not a wssniff manifest: {e}", path.display()))
        })?;
        for name in manifest.files.keys() {
            if !is_safe_relative(name) {
                return Err(ReplayError::export(format!(
                    "{}: file path {name:?} leaves the export directory",
                    path.display()
                )));
            }
        }
        Ok(Export {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// The session `id`, or the only session when `id` is `None`.
    pub fn select(&self, id: Option<u64>) -> Result<&ManifestSession, ReplayError> {
        let sessions = &self.manifest.sessions;
        match id {
            Some(id) => sessions.iter().find(|s| s.id == id).ok_or_else(|| {
                ReplayError::export(format!(
                    "no session {id} in this export (sessions: {})",
                    list_ids(sessions)
                ))
            }),
            None => match sessions.as_slice() {
                [only] => Ok(only),
                [] => Err(ReplayError::export("the export holds no session")),
                _ => Err(ReplayError::new(
                    ExitStatus::Usage,
                    format!(
                        "the export holds {} sessions: choose one with --session (sessions: {})",
                        sessions.len(),
                        list_ids(sessions)
                    ),
                )),
            },
        }
    }

    /// Checks the SHA-256 of every file the manifest lists.
    pub fn verify_files(&self) -> Result<(), ReplayError> {
        for (name, want) in &self.manifest.files {
            let got = sha256_file(&self.dir.join(name))?;
            if !got.eq_ignore_ascii_case(want) {
                return Err(ReplayError::export(format!(
                    "{name}: SHA-256 {got} differs from the manifest's {want}: the export was modified or damaged"
                )));
            }
        }
        Ok(())
    }

    /// Loads one session's files; each must be listed in the manifest with
    /// its SHA-256 (checked here too, on the bytes actually loaded).
    pub fn load(
        &self,
        meta: &ManifestSession,
        limits: &ReplayLimits,
    ) -> Result<LoadedSession, ReplayError> {
        let folder = export_names::session_dir(meta.id);
        if meta.path.trim_end_matches('/') != folder {
            return Err(ReplayError::export(format!(
                "session {}: folder {:?} is not the expected {folder:?}",
                meta.id, meta.path
            )));
        }
        let read = |name: &str| self.read_verified(&format!("{folder}/{name}"), limits);
        let request = read(export_names::REQUEST)?;
        let response = read(export_names::RESPONSE)?;
        let c2s = read(export_names::C2S)?;
        let s2c = read(export_names::S2C)?;
        let jsonl = read(export_names::MESSAGES)?;
        let messages = parse_messages(&jsonl, meta.id)?;
        Ok(LoadedSession {
            meta: meta.clone(),
            request,
            response,
            messages,
            c2s,
            s2c,
        })
    }

    fn read_verified(&self, name: &str, limits: &ReplayLimits) -> Result<Vec<u8>, ReplayError> {
        let want = self.manifest.files.get(name).ok_or_else(|| {
            ReplayError::export(format!("{name} is not listed in the manifest's files"))
        })?;
        let path = self.dir.join(name);
        let file = File::open(&path)
            .map_err(|e| ReplayError::export(format!("cannot open {}: {e}", path.display())))?;
        let mut bytes = Vec::new();
        file.take(limits.max_export_file_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| ReplayError::export(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() as u64 > limits.max_export_file_bytes {
            return Err(ReplayError::export(format!(
                "{name} is larger than the {} bytes wsreplay loads (ReplayLimits::max_export_file_bytes)",
                limits.max_export_file_bytes
            )));
        }
        let got = hex(&Sha256::digest(&bytes));
        if !got.eq_ignore_ascii_case(want) {
            return Err(ReplayError::export(format!(
                "{name}: SHA-256 {got} differs from the manifest's {want}: the export was modified or damaged"
            )));
        }
        Ok(bytes)
    }
}

/// Why a session cannot be replayed faithfully, if it cannot.
pub fn refusal_reason(meta: &ManifestSession) -> Option<String> {
    let mut why = Vec::new();
    if !meta.gaps.is_empty() {
        let bytes: u64 = meta.gaps.iter().map(|g| g.len).sum();
        why.push(format!(
            "{} gap(s), {bytes} bytes not captured",
            meta.gaps.len()
        ));
    }
    if meta.conflicting_overlaps > 0 {
        why.push(format!(
            "{} conflicting TCP overlap(s)",
            meta.conflicting_overlaps
        ));
    }
    if why.is_empty() {
        None
    } else {
        Some(format!(
            "session {} has {}; the recording is not what was sent (use --allow-gaps to replay it anyway)",
            meta.id,
            why.join(" and ")
        ))
    }
}

fn list_ids(sessions: &[ManifestSession]) -> String {
    if sessions.is_empty() {
        return "none".into();
    }
    let ids: Vec<String> = sessions.iter().map(|s| s.id.to_string()).collect();
    ids.join(", ")
}

/// A manifest path must stay inside the export: relative, no `..`.
fn is_safe_relative(name: &str) -> bool {
    let p = Path::new(name);
    !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_)))
}

fn sha256_file(path: &Path) -> Result<String, ReplayError> {
    let file = File::open(path)
        .map_err(|e| ReplayError::export(format!("cannot open {}: {e}", path.display())))?;
    let mut reader = BufReader::new(file);
    let mut hasher = Sha256::new();
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| ReplayError::export(format!("cannot read {}: {e}", path.display())))?;
        if buf.is_empty() {
            break;
        }
        hasher.update(buf);
        let n = buf.len();
        reader.consume(n);
    }
    Ok(hex(&hasher.finalize()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn parse_messages(jsonl: &[u8], session: u64) -> Result<Vec<Recorded>, ReplayError> {
    let mut out = Vec::new();
    for (n, line) in jsonl.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let rec: MessageRecord = serde_json::from_slice(line)
            .map_err(|e| ReplayError::export(format!("messages.jsonl line {}: {e}", n + 1)))?;
        if rec.session != session {
            return Err(ReplayError::export(format!(
                "messages.jsonl line {}: belongs to session {}, not {session}",
                n + 1,
                rec.session
            )));
        }
        out.push(
            recorded_from(rec)
                .map_err(|e| ReplayError::export(format!("messages.jsonl line {}: {e}", n + 1)))?,
        );
    }
    Ok(out)
}

fn recorded_from(rec: MessageRecord) -> Result<Recorded, String> {
    let dir = rec.dir;
    let opcode = rec.opcode.as_u8();
    let payload = match (rec.text, rec.b64) {
        (Some(t), _) => t.into_bytes(),
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map_err(|e| format!("bad base64 payload: {e}"))?,
        (None, None) => Vec::new(),
    };
    Ok(Recorded {
        dir,
        index: rec.index,
        opcode,
        partial: rec.truncated || rec.incomplete || rec.inflate_failed,
        payload,
        ts: Some(rec.ts),
        stream: rec.stream,
        compressed: rec.compressed,
        close: rec.close,
        frames: rec.frame_detail.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths_stay_inside() {
        assert!(is_safe_relative("sessions/000001/c2s.bin"));
        assert!(!is_safe_relative("../etc/passwd"));
        assert!(!is_safe_relative("/etc/passwd"));
        assert!(!is_safe_relative("sessions/../../x"));
        assert!(!is_safe_relative(""));
    }

    #[test]
    fn message_records_decode_text_and_base64() {
        let line = br#"{"session":1,"dir":"s2c","index":0,"opcode":"binary","len":3,"b64":"AQID","ts":"1970-01-01T00:00:01.000000000Z","ts_last":"1970-01-01T00:00:01.000000000Z","packets":[],"seq":[0,0],"stream":[0,5],"frames":1}
{"session":1,"dir":"c2s","index":0,"opcode":"text","len":2,"text":"hi","ts":"1970-01-01T00:00:02Z","ts_last":"1970-01-01T00:00:02Z","packets":[],"seq":[0,0],"stream":[0,8],"frames":1,"truncated":true}
"#;
        let msgs = parse_messages(line, 1).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].dir, Dir::S2c);
        assert_eq!(msgs[0].opcode, 2);
        assert_eq!(msgs[0].payload, vec![1, 2, 3]);
        assert_eq!(msgs[0].ts, Some(Timestamp::new(1, 0)));
        assert_eq!(msgs[1].payload, b"hi");
        assert!(msgs[1].partial);
        assert_eq!(msgs[1].ts, Some(Timestamp::new(2, 0)));
        let bad_ts = br#"{"session":1,"dir":"c2s","index":0,"opcode":"text","len":0,"ts":"x","ts_last":"x","packets":[],"seq":[0,0],"stream":[0,0],"frames":1}"#;
        assert!(
            parse_messages(bad_ts, 1).is_err(),
            "a bad timestamp is a bad export"
        );
        let bad_dir = br#"{"session":1,"dir":"up","index":0,"opcode":"text","len":0,"ts":"1970-01-01T00:00:02Z","ts_last":"1970-01-01T00:00:02Z","packets":[],"seq":[0,0],"stream":[0,0],"frames":1}"#;
        assert!(parse_messages(bad_dir, 1).is_err());
        assert!(
            parse_messages(line, 2).is_err(),
            "wrong session must be rejected"
        );
        assert!(parse_messages(b"{not json}\n", 1).is_err());
    }

    #[test]
    fn refusal_names_gaps_and_overlaps() {
        let mut m = ManifestSession {
            id: 3,
            ..Default::default()
        };
        assert_eq!(refusal_reason(&m), None);
        m.gaps.push(crate::session::ExportGap {
            dir: Dir::S2c,
            offset: 10,
            len: 1448,
        });
        let why = refusal_reason(&m).unwrap();
        assert!(why.contains("1448 bytes"), "{why}");
        m.gaps.clear();
        m.conflicting_overlaps = 2;
        assert!(refusal_reason(&m).unwrap().contains("2 conflicting"));
    }
}
