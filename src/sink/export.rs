//! The export directory (`--export DIR`), format in `docs/export.md`.
//!
//! Every file is written under `.NAME.tmp`, created exclusively with
//! `O_NOFOLLOW` and mode 0600, then synced and renamed into place, so a file
//! with its final name is always complete and nothing is ever written
//! through a symlink. Each file's SHA-256 is computed as it is written.
//!
//! Memory does not grow with the number of sessions beyond their manifest
//! entries: a session's files are finalized at its end, at most
//! [`ExportOptions::max_open_sessions`] sessions keep their files open (the
//! least recently written are closed and reopened for appending), and the
//! HAR is rendered at the end from the files on disk.

use super::json::message_record;
use super::{har, MessageView, SessionView, Sink};
use crate::session::{
    export_names, tool_version, AnomalyRecord, CaptureRecord, CloseRecord, ExportGap, GapRecord,
    InputFile, Manifest, ManifestSession, MessageRecord, SessionEndRecord, SCHEMA_VERSION,
};
use crate::types::{Dir, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Names the export writer adds to a session's `anomalies` in the manifest.
pub const ANOMALIES: &[(&str, &str)] = &[
    (
        "export_gap_unplaced",
        "the pipeline reported more gaps in a session than it placed in the stream files: where they fall in c2s.bin/s2c.bin is unknown",
    ),
    (
        "export_gap_offset_mismatch",
        "a stream gap's stream offset disagrees with the bytes written before it plus earlier gaps: .bin offsets of later messages may be wrong",
    ),
];

/// Anomalies counted into a session's `conflicting_overlaps`.
const CONFLICT_ANOMALIES: [&str; 2] = ["tcp_conflicting_overlap", "tcp_conflicting_retransmission"];

pub const DEFAULT_MAX_OPEN_SESSIONS: usize = 256;
pub const DEFAULT_BUFFER_SIZE: usize = 16 * 1024;

#[derive(Clone, Debug)]
pub struct ExportOptions {
    pub dir: PathBuf,
    /// Write into an existing non-empty directory, replacing files of the same names.
    pub force: bool,
    /// The command line, recorded in the manifest.
    pub command: Vec<String>,
    pub inputs: Vec<crate::session::InputFile>,
    /// Sessions whose three stream files stay open at once (default 256, i.e.
    /// 768 descriptors). Beyond it the least recently written session's files
    /// are flushed and closed, and reopened for appending when it writes again.
    pub max_open_sessions: usize,
    /// Write buffer per open stream file, bytes (default 16 KiB): at most
    /// `3 * max_open_sessions * buffer_size` bytes of buffers in all.
    pub buffer_size: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            dir: PathBuf::new(),
            force: false,
            command: Vec::new(),
            inputs: Vec::new(),
            max_open_sessions: DEFAULT_MAX_OPEN_SESSIONS,
            buffer_size: DEFAULT_BUFFER_SIZE,
        }
    }
}

/// Writes the export directory. See the module documentation.
pub struct ExportSink {
    opts: ExportOptions,
    root: PathBuf,
    live: BTreeMap<u64, LiveSession>,
    done: BTreeMap<u64, ManifestSession>,
    /// SHA-256 of every file written, by path relative to `root`.
    hashes: BTreeMap<String, String>,
    /// Sessions with open files, by the tick of their last write: the first is
    /// the least recently used.
    lru: BTreeMap<u64, u64>,
    tick: u64,
    span: Option<(Timestamp, Timestamp)>,
    line: Vec<u8>,
    orphans: u64,
    finished: bool,
}

/// A session whose files are still being written.
struct LiveSession {
    /// `messages.jsonl`, `c2s.bin`, `s2c.bin`: see [`MESSAGES`] and [`bin_slot`].
    files: [PendingFile; 3],
    /// The session's key in `ExportSink::lru` while its files are open.
    tick: Option<u64>,
    entry: ManifestSession,
    /// Per direction, gaps in the order they were placed.
    gaps: [Vec<GapPos>; 2],
    /// Per direction, bytes missing before the current end of the `.bin`.
    skipped: [u64; 2],
    gap_records: u64,
    last_ts: Option<Timestamp>,
}

/// Where a gap is, in stream offsets (missing bytes counted) and in the `.bin`.
#[derive(Clone, Copy, Debug)]
struct GapPos {
    stream: u64,
    file: u64,
    len: u64,
}

const MESSAGES: usize = 0;

fn bin_slot(dir: Dir) -> usize {
    1 + dir.index()
}

/// `io::Error` with the path it concerns in its message.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn refuse_symlink(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "{}: is a symbolic link; refusing to write through it",
            path.display()
        ),
    )
}

fn tmp_name(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.tmp"))
}

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Creates a file that did not exist, never following a symlink. With
/// `force` a stale temporary file (a previous run's) is unlinked first;
/// unlinking a symlink removes the link, not its target.
fn create_exclusive(path: &Path, force: bool) -> io::Result<File> {
    let open = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(path)
    };
    match open() {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && force => {
            fs::remove_file(path).map_err(|e| at(path, e))?;
            open().map_err(|e| at(path, e))
        }
        r => r.map_err(|e| at(path, e)),
    }
}

/// Creates a directory with mode 0700. An existing one is accepted only with
/// `force`, and never when it is a symlink.
fn make_dir(path: &Path, force: bool) -> io::Result<()> {
    match DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let md = fs::symlink_metadata(path).map_err(|e| at(path, e))?;
            if md.file_type().is_symlink() {
                Err(refuse_symlink(path))
            } else if !md.is_dir() {
                Err(at(
                    path,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ),
                ))
            } else if !force {
                Err(at(path, e))
            } else {
                Ok(())
            }
        }
        Err(e) => Err(at(path, e)),
    }
}

/// A `Write` that hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `dir/name` in one go (temporary name, sync, rename) and returns its
/// SHA-256. On failure the temporary file is removed.
fn write_whole(
    dir: &Path,
    name: &str,
    force: bool,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<String> {
    let tmp = tmp_name(dir, name);
    let path = dir.join(name);
    let file = create_exclusive(&tmp, force)?;
    let mut w = Hashing {
        inner: BufWriter::with_capacity(64 * 1024, file),
        hasher: Sha256::new(),
    };
    let result = body(&mut w)
        .and_then(|()| w.inner.into_inner().map_err(|e| e.into_error()))
        .and_then(|file| file.sync_all())
        .and_then(|()| fs::rename(&tmp, &path));
    match result {
        Ok(()) => Ok(hex(&w.hasher.finalize())),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(at(&path, e))
        }
    }
}

/// A file written incrementally under its temporary name.
struct PendingFile {
    tmp: PathBuf,
    path: PathBuf,
    rel: String,
    hasher: Sha256,
    len: u64,
    out: Option<BufWriter<File>>,
}

impl PendingFile {
    fn create(dir: &Path, rel_dir: &str, name: &str, force: bool, cap: usize) -> io::Result<Self> {
        let tmp = tmp_name(dir, name);
        let file = create_exclusive(&tmp, force)?;
        Ok(PendingFile {
            tmp,
            path: dir.join(name),
            rel: format!("{rel_dir}/{name}"),
            hasher: Sha256::new(),
            len: 0,
            out: Some(BufWriter::with_capacity(cap, file)),
        })
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.out = None;
        let _ = fs::remove_file(&self.tmp);
        at(&self.path, e)
    }

    fn reopen(&mut self, cap: usize) -> io::Result<()> {
        if self.out.is_some() {
            return Ok(());
        }
        let file = OpenOptions::new()
            .append(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&self.tmp)
            .map_err(|e| self.fail(e))?;
        self.out = Some(BufWriter::with_capacity(cap, file));
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        let r = match self.out.as_mut() {
            Some(out) => out.write_all(data),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "file is not open",
            )),
        };
        match r {
            Ok(()) => {
                self.hasher.update(data);
                self.len += data.len() as u64;
                Ok(())
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.out.as_mut().map(|o| o.flush()) {
            Some(Err(e)) => Err(self.fail(e)),
            _ => Ok(()),
        }
    }

    /// Flushes and closes the descriptor; the file stays under its temporary name.
    fn close(&mut self) -> io::Result<()> {
        self.flush()?;
        self.out = None;
        Ok(())
    }

    /// Syncs the file and renames it into place; returns (relative path, SHA-256).
    fn commit(mut self) -> io::Result<(String, String)> {
        let file = match self.out.take() {
            Some(out) => out.into_inner().map_err(|e| e.into_error()),
            None => OpenOptions::new()
                .append(true)
                .custom_flags(nix::libc::O_NOFOLLOW)
                .open(&self.tmp),
        };
        match file
            .and_then(|f| f.sync_all())
            .and_then(|()| fs::rename(&self.tmp, &self.path))
        {
            Ok(()) => Ok((self.rel, hex(&self.hasher.finalize()))),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn abandon(self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

/// `x` as an offset in the `.bin` file, given the gaps (in stream order)
/// before it: the file holds no bytes for gaps, so each one shifts what follows.
fn file_offset(gaps: &[GapPos], x: u64) -> u64 {
    let i = gaps.partition_point(|g| g.stream <= x);
    match i.checked_sub(1).and_then(|j| gaps.get(j)) {
        None => x,
        // Inside a gap: the point where the gap falls in the file.
        Some(g) => g.file + x.saturating_sub(g.stream.saturating_add(g.len)),
    }
}

fn widen(span: &mut Option<(Timestamp, Timestamp)>, t: Timestamp) {
    *span = Some(match *span {
        None => (t, t),
        Some((a, b)) => (a.min(t), b.max(t)),
    });
}

impl ExportSink {
    /// Creates (or, with `force`, reuses) the export directory. Refuses a
    /// non-empty directory without `force`, and a symlink in place of the
    /// directory or of anything inside it that would be written through.
    pub fn create(opts: ExportOptions) -> io::Result<Self> {
        let root = opts.dir.clone();
        match fs::symlink_metadata(&root) {
            Ok(md) if md.file_type().is_symlink() => return Err(refuse_symlink(&root)),
            Ok(md) if !md.is_dir() => {
                return Err(at(
                    &root,
                    io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        "exists and is not a directory",
                    ),
                ))
            }
            Ok(_) => {
                let non_empty = fs::read_dir(&root)
                    .map_err(|e| at(&root, e))?
                    .next()
                    .is_some();
                if non_empty && !opts.force {
                    return Err(at(
                        &root,
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "directory is not empty (use --force to write into it)",
                        ),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&root)
                    .map_err(|e| at(&root, e))?;
            }
            Err(e) => return Err(at(&root, e)),
        }
        // The manifest marks a complete export: an old one must not vouch for
        // files this run is replacing.
        let manifest = root.join(export_names::MANIFEST);
        match fs::symlink_metadata(&manifest) {
            Ok(md) if md.is_dir() => {
                return Err(at(
                    &manifest,
                    io::Error::new(io::ErrorKind::AlreadyExists, "is a directory"),
                ))
            }
            Ok(_) => fs::remove_file(&manifest).map_err(|e| at(&manifest, e))?,
            Err(_) => {}
        }
        make_dir(&root.join(export_names::SESSIONS_DIR), opts.force)?;
        Ok(ExportSink {
            opts,
            root,
            live: BTreeMap::new(),
            done: BTreeMap::new(),
            hashes: BTreeMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            span: None,
            line: Vec::with_capacity(4096),
            orphans: 0,
            finished: false,
        })
    }

    /// Records for sessions this sink does not know (never started, or
    /// already ended); they are not exported.
    pub fn orphan_records(&self) -> u64 {
        self.orphans
    }

    /// Makes `id`'s files open and most recently used, closing the least
    /// recently used session's files beyond the limit. False when `id` is
    /// not a live session.
    fn open_session(&mut self, id: u64) -> io::Result<bool> {
        if self.lru.last_key_value().map(|(_, &v)| v) == Some(id) {
            return Ok(true);
        }
        let cap = self.opts.buffer_size.max(1);
        let tick = self.tick;
        let Some(s) = self.live.get_mut(&id) else {
            self.orphans += 1;
            return Ok(false);
        };
        self.tick += 1;
        match s.tick.replace(tick) {
            Some(old) => {
                self.lru.remove(&old);
            }
            None => {
                for f in s.files.iter_mut() {
                    f.reopen(cap)?;
                }
            }
        }
        self.lru.insert(tick, id);
        self.evict()?;
        Ok(true)
    }

    fn evict(&mut self) -> io::Result<()> {
        while self.lru.len() > self.opts.max_open_sessions.max(1) {
            let Some((_, victim)) = self.lru.pop_first() else {
                break;
            };
            if let Some(v) = self.live.get_mut(&victim) {
                v.tick = None;
                for f in v.files.iter_mut() {
                    f.close()?;
                }
            }
        }
        Ok(())
    }

    /// Syncs and renames a session's files, and moves its manifest entry to `done`.
    fn finalize(&mut self, id: u64, end: Option<&SessionEndRecord>) -> io::Result<()> {
        let Some(s) = self.live.remove(&id) else {
            self.orphans += 1;
            return Ok(());
        };
        if let Some(t) = s.tick {
            self.lru.remove(&t);
        }
        let mut files = s.files.into_iter();
        for f in files.by_ref() {
            match f.commit() {
                Ok((rel, digest)) => {
                    self.hashes.insert(rel, digest);
                }
                Err(e) => {
                    files.for_each(PendingFile::abandon);
                    return Err(e);
                }
            }
        }
        let mut entry = s.entry;
        match end {
            Some(rec) => {
                entry.end = rec.ts.clone();
                if let Some(t) = har::parse_rfc3339(&rec.ts) {
                    widen(&mut self.span, t);
                }
                if rec.close_c2s.is_some() {
                    entry.close_c2s = rec.close_c2s.clone();
                }
                if rec.close_s2c.is_some() {
                    entry.close_s2c = rec.close_s2c.clone();
                }
                entry.incomplete = rec.incomplete;
            }
            None => {
                entry.end = s
                    .last_ts
                    .map_or_else(|| entry.start.clone(), |t| t.rfc3339());
                entry.incomplete = true;
            }
        }
        let placed = entry.gaps.len() as u64;
        if s.gap_records > placed {
            *entry
                .anomalies
                .entry("export_gap_unplaced".to_owned())
                .or_default() += s.gap_records - placed;
        }
        self.done.insert(id, entry);
        Ok(())
    }

    fn manifest(&mut self) -> Manifest {
        let (first_ts, last_ts) = match self.span {
            Some((a, b)) => (Some(a.rfc3339()), Some(b.rfc3339())),
            None => (None, None),
        };
        Manifest {
            schema: SCHEMA_VERSION,
            tool: tool_version(),
            command: self.opts.command.clone(),
            inputs: self.opts.inputs.clone(),
            first_ts,
            last_ts,
            sessions: std::mem::take(&mut self.done).into_values().collect(),
            files: std::mem::take(&mut self.hashes),
        }
    }
}

fn touch_ts(s: &mut LiveSession, t: Timestamp) {
    s.last_ts = Some(s.last_ts.map_or(t, |l| l.max(t)));
}

impl Sink for ExportSink {
    fn capture(&mut self, rec: &CaptureRecord) -> io::Result<()> {
        if !rec.inputs.is_empty() {
            self.opts.inputs = rec.inputs.clone();
        }
        for t in rec
            .inputs
            .iter()
            .flat_map(|i: &InputFile| [&i.first_ts, &i.last_ts])
        {
            if let Some(t) = t.as_deref().and_then(har::parse_rfc3339) {
                widen(&mut self.span, t);
            }
        }
        Ok(())
    }

    fn session(&mut self, sv: &SessionView<'_>) -> io::Result<()> {
        let rec = sv.record;
        let id = rec.id;
        if self.live.contains_key(&id) || self.done.contains_key(&id) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("export: session {id} started twice"),
            ));
        }
        let force = self.opts.force;
        let cap = self.opts.buffer_size.max(1);
        let rel = export_names::session_dir(id);
        let dir = self.root.join(&rel);
        make_dir(&dir, force)?;
        for (name, raw) in [
            (export_names::REQUEST, sv.raw_request),
            (export_names::RESPONSE, sv.raw_response),
        ] {
            let digest = write_whole(&dir, name, force, |w| w.write_all(raw))?;
            self.hashes.insert(format!("{rel}/{name}"), digest);
        }
        let messages = PendingFile::create(&dir, &rel, export_names::MESSAGES, force, cap)?;
        let c2s = PendingFile::create(&dir, &rel, export_names::C2S, force, cap)
            .inspect_err(|_| messages_abandon(&dir))?;
        let s2c =
            PendingFile::create(&dir, &rel, export_names::S2C, force, cap).inspect_err(|_| {
                messages_abandon(&dir);
                let _ = fs::remove_file(tmp_name(&dir, export_names::C2S));
            })?;
        if let Some(t) = har::parse_rfc3339(&rec.ts) {
            widen(&mut self.span, t);
        }
        let entry = ManifestSession {
            id,
            path: rel,
            client: rec.client.clone(),
            server: rec.server.clone(),
            uri: rec.uri.clone(),
            host: rec.host.clone(),
            subprotocol: rec.subprotocol.clone(),
            extensions: rec.extensions.clone(),
            deflate_c2s: rec.deflate_c2s.clone(),
            deflate_s2c: rec.deflate_s2c.clone(),
            start: rec.ts.clone(),
            ..Default::default()
        };
        let tick = self.tick;
        self.tick += 1;
        self.live.insert(
            id,
            LiveSession {
                files: [messages, c2s, s2c],
                tick: Some(tick),
                entry,
                gaps: Default::default(),
                skipped: [0; 2],
                gap_records: 0,
                last_ts: None,
            },
        );
        self.lru.insert(tick, id);
        self.evict()
    }

    fn message(&mut self, m: &MessageView<'_>) -> io::Result<()> {
        if !self.open_session(m.session)? {
            return Ok(());
        }
        widen(&mut self.span, m.ts);
        widen(&mut self.span, m.ts_last);
        let Some(s) = self.live.get_mut(&m.session) else {
            return Ok(());
        };
        let mut rec: MessageRecord = message_record(m, true);
        let gaps = &s.gaps[m.dir.index()];
        if !gaps.is_empty() {
            rec.stream = rec.stream.map(|x| file_offset(gaps, x));
            for f in rec.frame_detail.iter_mut().flatten() {
                f.offset = file_offset(gaps, f.offset);
            }
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, &rec)?;
        self.line.push(b'\n');
        let file = &mut s.files[MESSAGES];
        file.write(&self.line)?;
        // A crash then loses only messages still in progress.
        file.flush()?;
        match m.dir {
            Dir::C2s => s.entry.messages.c2s += 1,
            Dir::S2c => s.entry.messages.s2c += 1,
        }
        if let (Some((code, reason)), 8) = (m.close, m.opcode) {
            let close = Some(CloseRecord {
                code,
                reason: reason.to_owned(),
            });
            match m.dir {
                Dir::C2s => s.entry.close_c2s = close,
                Dir::S2c => s.entry.close_s2c = close,
            }
        }
        touch_ts(s, m.ts_last);
        Ok(())
    }

    fn anomaly(&mut self, a: &AnomalyRecord) -> io::Result<()> {
        let Some(id) = a.session else { return Ok(()) };
        let ts = a.ts.as_deref().and_then(har::parse_rfc3339);
        let entry = match self.live.get_mut(&id) {
            Some(s) => {
                if let Some(t) = ts {
                    touch_ts(s, t);
                }
                &mut s.entry
            }
            None => match self.done.get_mut(&id) {
                Some(e) => e,
                None => {
                    self.orphans += 1;
                    return Ok(());
                }
            },
        };
        *entry.anomalies.entry(a.name.clone()).or_default() += 1;
        if CONFLICT_ANOMALIES.contains(&a.name.as_str()) {
            entry.conflicting_overlaps += 1;
        }
        Ok(())
    }

    fn gap(&mut self, g: &GapRecord) -> io::Result<()> {
        if let Some(s) = g.session.and_then(|id| self.live.get_mut(&id)) {
            s.gap_records += 1;
        }
        Ok(())
    }

    fn stream(&mut self, session: u64, dir: Dir, data: &[u8]) -> io::Result<()> {
        if data.is_empty() || !self.open_session(session)? {
            return Ok(());
        }
        match self.live.get_mut(&session) {
            Some(s) => s.files[bin_slot(dir)].write(data),
            None => Ok(()),
        }
    }

    /// `offset` is the pipeline's stream offset of the gap (missing bytes
    /// counted); the manifest records where it falls in the `.bin`, which
    /// holds no bytes for gaps: the file's current length.
    fn stream_gap(&mut self, session: u64, dir: Dir, offset: u64, len: u64) -> io::Result<()> {
        let Some(s) = self.live.get_mut(&session) else {
            self.orphans += 1;
            return Ok(());
        };
        let d = dir.index();
        let file = s.files[bin_slot(dir)].len;
        if offset != file.saturating_add(s.skipped[d]) {
            *s.entry
                .anomalies
                .entry("export_gap_offset_mismatch".to_owned())
                .or_default() += 1;
        }
        s.skipped[d] = s.skipped[d].saturating_add(len);
        s.gaps[d].push(GapPos {
            stream: offset,
            file,
            len,
        });
        s.entry.gaps.push(ExportGap {
            dir: dir.as_str().to_owned(),
            offset: file,
            len,
        });
        Ok(())
    }

    fn session_end(&mut self, rec: &SessionEndRecord) -> io::Result<()> {
        self.finalize(rec.session, Some(rec))
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        let open: Vec<u64> = self.live.keys().copied().collect();
        for id in open {
            self.finalize(id, None)?;
        }
        let force = self.opts.force;
        let root = self.root.clone();
        let done = &self.done;
        let digest = write_whole(&root, export_names::HAR, force, |w| {
            har::write_har(w, &root, done.values())
        })?;
        self.hashes.insert(export_names::HAR.to_owned(), digest);
        let manifest = self.manifest();
        write_whole(&root, export_names::MANIFEST, force, |w| {
            serde_json::to_writer_pretty(&mut *w, &manifest)?;
            w.write_all(b"\n")
        })?;
        Ok(())
    }

    fn wants_streams(&self) -> bool {
        true
    }

    fn wants_frames(&self) -> bool {
        true
    }
}

fn messages_abandon(dir: &Path) {
    let _ = fs::remove_file(tmp_name(dir, export_names::MESSAGES));
}
