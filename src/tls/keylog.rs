//! NSS key log files (`SSLKEYLOGFILE`): the secrets a TLS endpoint logged,
//! indexed by the connection's client random.
//!
//! Format (one line per secret): `LABEL <client_random hex> <secret hex>`.
//! `#` starts a comment. Labels used here: `CLIENT_RANDOM` (TLS 1.2 master
//! secret), `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
//! `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0` (TLS 1.3). Other labels
//! (`EXPORTER_SECRET`, `CLIENT_EARLY_TRAFFIC_SECRET`, `RSA`, ...) are counted
//! and ignored. Nothing in a key log is fatal: bad lines are counted.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Where a connection's keys came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// The n-th `--tls-keylog` file (0-based).
    KeyLog(u16),
    /// A pcapng Decryption Secrets Block.
    Dsb,
}

impl KeySource {
    /// `"keylog"` or `"pcapng_dsb"`, as in the JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySource::KeyLog(_) => "keylog",
            KeySource::Dsb => "pcapng_dsb",
        }
    }
}

/// Limits of one key store.
#[derive(Clone, Copy, Debug)]
pub struct KeyLogLimits {
    /// Longest line accepted; longer ones are counted and skipped. Default 1024.
    pub max_line: usize,
    /// Bytes of key log text read, all sources together; beyond, input is
    /// counted and ignored. Default 256 MiB.
    pub max_bytes: u64,
    /// Client randoms held (one entry is about 400 bytes with all TLS 1.3
    /// secrets). Default 1,000,000.
    pub max_entries: usize,
}

impl Default for KeyLogLimits {
    fn default() -> Self {
        KeyLogLimits {
            max_line: 1024,
            max_bytes: 256 << 20,
            max_entries: 1_000_000,
        }
    }
}

/// Counters of what the key store read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLogStats {
    /// Lines read.
    pub lines: u64,
    /// Secrets stored (a repeated identical line counts once per line).
    pub secrets: u64,
    /// Comment lines (`#`).
    pub comments: u64,
    /// Empty lines.
    pub blank: u64,
    /// Lines with a label this reader does not use.
    pub other_labels: u64,
    /// Lines that do not parse (wrong field count, bad hex, wrong lengths).
    pub malformed: u64,
    /// Lines over `max_line`, skipped.
    pub too_long: u64,
    /// Bytes ignored beyond `max_bytes`.
    pub bytes_over_limit: u64,
    /// Lines ignored because `max_entries` client randoms are held.
    pub entries_over_limit: u64,
}

/// The secrets known for one client random.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyEntry {
    /// TLS 1.2 (and earlier) master secret, 48 bytes.
    pub master: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_HANDSHAKE_TRAFFIC_SECRET`.
    pub client_hs: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_HANDSHAKE_TRAFFIC_SECRET`.
    pub server_hs: Option<Vec<u8>>,
    /// TLS 1.3 `CLIENT_TRAFFIC_SECRET_0`.
    pub client_ap: Option<Vec<u8>>,
    /// TLS 1.3 `SERVER_TRAFFIC_SECRET_0`.
    pub server_ap: Option<Vec<u8>>,
    /// Source of the first secret stored for this client random.
    pub source: Option<KeySource>,
}

#[derive(Clone, Copy)]
enum Label {
    ClientRandom,
    ClientHs,
    ServerHs,
    ClientAp,
    ServerAp,
}

fn label_of(s: &[u8]) -> Option<Label> {
    Some(match s {
        b"CLIENT_RANDOM" => Label::ClientRandom,
        b"CLIENT_HANDSHAKE_TRAFFIC_SECRET" => Label::ClientHs,
        b"SERVER_HANDSHAKE_TRAFFIC_SECRET" => Label::ServerHs,
        b"CLIENT_TRAFFIC_SECRET_0" => Label::ClientAp,
        b"SERVER_TRAFFIC_SECRET_0" => Label::ServerAp,
        _ => return None,
    })
}

/// All secrets of a run, from every source, indexed by client random.
#[derive(Debug, Default)]
pub struct KeyStore {
    map: HashMap<[u8; 32], KeyEntry>,
    limits: KeyLogLimits,
    stats: KeyLogStats,
    bytes_read: u64,
    generation: u64,
}

/// Splits a growing byte stream into complete lines, keeping the
/// incomplete tail for the next call (a key log is appended line by line).
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: Vec<u8>,
    /// The current line is already over the limit: skip to its newline.
    skipping: bool,
}

impl KeyStore {
    /// An empty store with these limits.
    pub fn new(limits: KeyLogLimits) -> Self {
        KeyStore {
            limits,
            ..Default::default()
        }
    }

    /// Secrets for a client random.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&KeyEntry> {
        self.map.get(client_random)
    }

    /// Client randoms held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when no secret is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Changes whenever a secret is added: a connection waiting for its
    /// key looks again only then.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// What the store has read so far.
    pub fn stats(&self) -> &KeyLogStats {
        &self.stats
    }

    /// The key log problems so far, as anomalies to report once (name,
    /// detail): `tls_keylog_bad_line` for malformed or over-long lines,
    /// `tls_keylog_limit` for input ignored beyond the limits.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let s = &self.stats;
        let mut v = Vec::new();
        if s.malformed + s.too_long > 0 {
            v.push((
                "tls_keylog_bad_line",
                format!(
                    "{} key log lines do not parse and {} are longer than {} bytes; skipped ({} lines read, {} secrets kept)",
                    s.malformed, s.too_long, self.limits.max_line, s.lines, s.secrets
                ),
            ));
        }
        if s.bytes_over_limit + s.entries_over_limit > 0 {
            v.push((
                "tls_keylog_limit",
                format!(
                    "{} key log bytes beyond the {}-byte limit and {} lines beyond the {}-connection limit were ignored",
                    s.bytes_over_limit, self.limits.max_bytes, s.entries_over_limit, self.limits.max_entries
                ),
            ));
        }
        v
    }

    /// Parses a complete key log text (a whole file, or a pcapng Decryption
    /// Secrets Block); a last line without newline is parsed too.
    pub fn feed_text(&mut self, text: &[u8], source: KeySource) {
        let mut lb = LineBuffer::default();
        self.feed_bytes(&mut lb, text, source);
        self.finish_lines(&mut lb, source);
    }

    /// Parses the complete lines of `bytes` (following what `lines` kept
    /// from earlier calls); an incomplete last line waits in `lines`.
    pub fn feed_bytes(&mut self, lines: &mut LineBuffer, bytes: &[u8], source: KeySource) {
        let room = self.limits.max_bytes.saturating_sub(self.bytes_read);
        let take = (bytes.len() as u64).min(room) as usize;
        self.stats.bytes_over_limit += (bytes.len() - take) as u64;
        self.bytes_read += take as u64;
        let mut rest = bytes.get(..take).unwrap_or_default();
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let (piece, after) = rest.split_at(nl);
            rest = after.get(1..).unwrap_or_default();
            if lines.skipping {
                lines.skipping = false;
                continue;
            }
            if lines.partial.is_empty() {
                self.parse_line(piece, source);
            } else if lines.partial.len() + piece.len() > self.limits.max_line {
                lines.partial.clear();
                self.stats.lines += 1;
                self.stats.too_long += 1;
            } else {
                let mut line = std::mem::take(&mut lines.partial);
                line.extend_from_slice(piece);
                self.parse_line(&line, source);
                line.clear();
                lines.partial = line;
            }
        }
        if lines.skipping {
            return;
        }
        if take < bytes.len() {
            // The limit cut this line: it is part of what was ignored.
            lines.partial.clear();
            lines.skipping = true;
            return;
        }
        if lines.partial.len() + rest.len() > self.limits.max_line {
            lines.partial.clear();
            lines.skipping = true;
            self.stats.lines += 1;
            self.stats.too_long += 1;
        } else {
            lines.partial.extend_from_slice(rest);
        }
    }

    /// End of a source: parses a last line that had no newline.
    pub fn finish_lines(&mut self, lines: &mut LineBuffer, source: KeySource) {
        if !lines.partial.is_empty() && !lines.skipping {
            let line = std::mem::take(&mut lines.partial);
            self.parse_line(&line, source);
        }
        lines.partial.clear();
        lines.skipping = false;
    }

    fn parse_line(&mut self, line: &[u8], source: KeySource) {
        self.stats.lines += 1;
        if line.len() > self.limits.max_line {
            self.stats.too_long += 1;
            return;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            self.stats.blank += 1;
            return;
        }
        if trimmed.first() == Some(&b'#') {
            self.stats.comments += 1;
            return;
        }
        let mut fields = trimmed
            .split(|b| *b == b' ' || *b == b'\t')
            .filter(|f| !f.is_empty());
        let (Some(label), Some(random), Some(secret), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            self.stats.malformed += 1;
            return;
        };
        let Some(label) = label_of(label) else {
            self.stats.other_labels += 1;
            return;
        };
        let (Some(random), Some(secret)) = (hex_decode(random), hex_decode(secret)) else {
            self.stats.malformed += 1;
            return;
        };
        let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else {
            self.stats.malformed += 1;
            return;
        };
        let secret_ok = match label {
            Label::ClientRandom => secret.len() == 48,
            // SHA-256 or SHA-384 suites.
            _ => secret.len() == 32 || secret.len() == 48,
        };
        if !secret_ok {
            self.stats.malformed += 1;
            return;
        }
        if !self.map.contains_key(&random) && self.map.len() >= self.limits.max_entries {
            self.stats.entries_over_limit += 1;
            return;
        }
        let e = self.map.entry(random).or_default();
        let slot = match label {
            Label::ClientRandom => &mut e.master,
            Label::ClientHs => &mut e.client_hs,
            Label::ServerHs => &mut e.server_hs,
            Label::ClientAp => &mut e.client_ap,
            Label::ServerAp => &mut e.server_ap,
        };
        // The first line wins, as in Wireshark: a later different line for
        // the same connection is most likely a mix-up of files.
        if slot.is_none() {
            *slot = Some(secret);
            self.generation += 1;
        }
        e.source.get_or_insert(source);
        self.stats.secrets += 1;
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lower- or upper-case hex, even length.
pub fn hex_decode(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|p| Some(hex_val(p[0])? << 4 | hex_val(p[1])?))
        .collect()
}

/// A key log file that grows while wssniff runs (live capture): each
/// `reload` parses only the complete lines appended since the last one.
#[derive(Debug)]
pub struct KeyLogFollower {
    path: PathBuf,
    source: KeySource,
    offset: u64,
    lines: LineBuffer,
    /// Inode of the file read: a replaced file is read from its start.
    ino: Option<u64>,
}

impl KeyLogFollower {
    /// A follower of the key log at `path` that has read nothing yet; its secrets are tagged `source`.
    pub fn new(path: &Path, source: KeySource) -> Self {
        KeyLogFollower {
            path: path.to_path_buf(),
            source,
            offset: 0,
            lines: LineBuffer::default(),
            ino: None,
        }
    }

    /// Reads what was appended since the last call; returns how many bytes.
    /// A file that shrank (rewritten) is read again from its start. A file
    /// that does not exist yet is not an error (the client has not started).
    pub fn reload(&mut self, store: &mut KeyStore) -> std::io::Result<u64> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e),
        };
        let meta = f.metadata()?;
        let len = meta.len();
        let ino = inode(&meta);
        if len < self.offset || (self.ino.is_some() && ino != self.ino) {
            self.offset = 0;
            self.lines = LineBuffer::default();
        }
        self.ino = ino;
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = vec![0u8; 64 << 10];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            store.feed_bytes(
                &mut self.lines,
                buf.get(..n).unwrap_or_default(),
                self.source,
            );
            total += n as u64;
        }
        self.offset += total;
        Ok(total)
    }

    /// Reads the whole file once (offline use): `reload` plus its last line
    /// even without a newline.
    pub fn load_all(&mut self, store: &mut KeyStore) -> std::io::Result<u64> {
        let n = self.reload(store)?;
        store.finish_lines(&mut self.lines, self.source);
        Ok(n)
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(m.ino())
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";

    fn random(h: &str) -> [u8; 32] {
        hex_decode(h.as_bytes()).unwrap().try_into().unwrap()
    }

    #[test]
    fn parses_labels_comments_and_bad_lines() {
        let text = format!(
            "# a comment\n\
             \n\
             CLIENT_RANDOM {R1} {m}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {R1} {s32}\r\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {R1} {s48}\n\
             EXPORTER_SECRET {R1} {s32}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1}\n\
             CLIENT_TRAFFIC_SECRET_0 {R1} zz\n\
             CLIENT_TRAFFIC_SECRET_0 abcd {s32}\n\
             SERVER_TRAFFIC_SECRET_0 {R1} {s32}",
            m = "11".repeat(48),
            s32 = "22".repeat(32),
            s48 = "33".repeat(48),
        );
        let mut ks = KeyStore::new(KeyLogLimits::default());
        ks.feed_text(text.as_bytes(), KeySource::KeyLog(0));
        let e = ks.get(&random(R1)).unwrap();
        assert_eq!(e.master.as_deref(), Some(&[0x11u8; 48][..]));
        assert_eq!(e.client_hs.as_deref(), Some(&[0x22u8; 32][..]));
        assert_eq!(e.server_hs.as_deref(), Some(&[0x33u8; 48][..]));
        assert_eq!(e.client_ap, None);
        assert_eq!(e.server_ap.as_deref(), Some(&[0x22u8; 32][..]));
        assert_eq!(e.source, Some(KeySource::KeyLog(0)));
        let s = ks.stats();
        assert_eq!(s.lines, 10);
        assert_eq!(s.comments, 1);
        assert_eq!(s.blank, 1);
        assert_eq!(s.other_labels, 1);
        assert_eq!(s.malformed, 3);
        assert_eq!(s.secrets, 4);
        let p = ks.problems();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].0, "tls_keylog_bad_line");
        assert!(p[0].1.starts_with("3 key log lines"), "{}", p[0].1);
    }

    #[test]
    fn incremental_feed_parses_only_complete_lines() {
        let line = format!("CLIENT_RANDOM {R1} {}\n", "ab".repeat(48));
        let mut ks = KeyStore::new(KeyLogLimits::default());
        let mut lb = LineBuffer::default();
        let (a, b) = line.as_bytes().split_at(40);
        ks.feed_bytes(&mut lb, a, KeySource::KeyLog(1));
        assert!(ks.get(&random(R1)).is_none());
        assert_eq!(ks.generation(), 0);
        ks.feed_bytes(&mut lb, b, KeySource::KeyLog(1));
        assert!(ks.get(&random(R1)).unwrap().master.is_some());
        assert_eq!(ks.generation(), 1);
        assert_eq!(ks.stats().lines, 1);
    }

    #[test]
    fn over_long_lines_are_counted_and_skipped_across_chunks() {
        let limits = KeyLogLimits {
            max_line: 200,
            ..Default::default()
        };
        let mut ks = KeyStore::new(limits);
        let mut lb = LineBuffer::default();
        let long = "x".repeat(150);
        ks.feed_bytes(&mut lb, long.as_bytes(), KeySource::Dsb);
        ks.feed_bytes(&mut lb, long.as_bytes(), KeySource::Dsb); // now 300: over
        ks.feed_bytes(&mut lb, b"yyy\n", KeySource::Dsb);
        let good = format!("CLIENT_RANDOM {R1} {}\n", "ab".repeat(48));
        ks.feed_bytes(&mut lb, good.as_bytes(), KeySource::Dsb);
        assert_eq!(ks.stats().too_long, 1);
        assert_eq!(ks.stats().lines, 2);
        assert!(ks.get(&random(R1)).is_some());
    }

    #[test]
    fn byte_and_entry_limits() {
        let limits = KeyLogLimits {
            max_entries: 1,
            ..Default::default()
        };
        let mut ks = KeyStore::new(limits);
        let r2 = "00".repeat(32);
        let text = format!(
            "CLIENT_RANDOM {R1} {m}\nCLIENT_RANDOM {r2} {m}\n",
            m = "ab".repeat(48)
        );
        ks.feed_text(text.as_bytes(), KeySource::KeyLog(0));
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.stats().entries_over_limit, 1);

        let mut ks = KeyStore::new(KeyLogLimits {
            max_bytes: 10,
            ..Default::default()
        });
        ks.feed_text(text.as_bytes(), KeySource::KeyLog(0));
        assert!(ks.is_empty());
        assert_eq!(ks.stats().bytes_over_limit, text.len() as u64 - 10);
        assert_eq!(ks.problems()[0].0, "tls_keylog_limit");
    }

    #[test]
    fn follower_reads_appended_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keys.log");
        let mut ks = KeyStore::new(KeyLogLimits::default());
        let mut f = KeyLogFollower::new(&p, KeySource::KeyLog(0));
        assert_eq!(f.reload(&mut ks).unwrap(), 0);
        let line = format!("CLIENT_RANDOM {R1} {}\n", "ab".repeat(48));
        std::fs::write(&p, &line.as_bytes()[..30]).unwrap();
        f.reload(&mut ks).unwrap();
        assert!(ks.is_empty());
        std::fs::write(&p, line.as_bytes()).unwrap();
        f.reload(&mut ks).unwrap();
        assert_eq!(ks.len(), 1);
        assert_eq!(ks.stats().lines, 1);
        assert_eq!(f.reload(&mut ks).unwrap(), 0, "nothing new");
        // Rewritten shorter (a new run of the client): read again from the start.
        std::fs::write(&p, b"# new run\n").unwrap();
        f.reload(&mut ks).unwrap();
        let other = format!("CLIENT_RANDOM {} {}\n", "01".repeat(32), "ab".repeat(48));
        let mut text = b"# new run\n".to_vec();
        text.extend_from_slice(other.as_bytes());
        std::fs::write(&p, &text).unwrap();
        f.reload(&mut ks).unwrap();
        assert_eq!(ks.len(), 2);
        assert_eq!(ks.stats().comments, 1);
    }
}
