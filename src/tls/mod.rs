//! tls stage: recognises TLS on a TCP connection by its content (a
//! ClientHello at the start of a stream, on any port), follows the record
//! layer and handshake of both directions, and, with keys from an NSS key
//! log ([`KeyStore`]), decrypts the application data into the plaintext
//! streams the `http` stage reads.
//!
//! One [`TlsConn`] per TCP connection. The caller feeds what the `tcp` stage
//! delivers per direction ([`TlsConn::feed`] for in-order bytes,
//! [`TlsConn::gap`] for lost bytes) and receives [`TlsEvent`]s: decrypted
//! plaintext (with the packets that carried its record), plaintext gaps, and
//! named anomalies. [`Verdict::NotTls`] says early that the connection is not
//! TLS, so the caller can read it as plaintext (the bytes fed so far are
//! handed back by [`TlsConn::take_undecided`]).
//!
//! Plaintext is only ever output from a record whose authentication tag
//! verified. Supported: TLS 1.3 with AES-128-GCM, AES-256-GCM,
//! ChaCha20-Poly1305 (KeyUpdate included); TLS 1.2 AEAD suites (AES-GCM,
//! ChaCha20-Poly1305, any key exchange). Everything else is named
//! (`tls_unsupported`).

pub mod crypto;
pub mod handshake;
pub mod keylog;
#[cfg(test)]
mod tests;

pub use keylog::{
    KeyEntry, KeyLogFollower, KeyLogLimits, KeyLogStats, KeySource, KeyStore, LineBuffer,
};

use crate::tcp::Side;
use crate::types::{Anomaly, PacketNo, Timestamp};
use crypto::{Cipher, Suite};
use handshake::{HsMessage, HsReader};
use std::collections::VecDeque;

/// Every anomaly name this module can emit, with its meaning.
pub const ANOMALIES: &[(&str, &str)] = &[
    ("tls_no_key", "a TLS connection whose client random has no usable key in any key source (key log files, pcapng Decryption Secrets Blocks); the detail names the SNI and the client random to look for; nothing of it was decrypted"),
    ("tls_decrypt_failed", "a TLS record whose authentication tag did not verify (wrong key, or a corrupted record); its plaintext is not output and is reported as a gap"),
    ("tls_unsupported", "TLS recognised but not decrypted: a cipher suite or protocol version this stage does not decrypt (e.g. AES-CBC, CCM), TLS compression, 0-RTT early data, or encrypted ClientHello (ECH)"),
    ("tls_alpn_h2", "the TLS connection negotiated ALPN h2 (HTTP/2, which may carry WebSockets per RFC 8441); its HTTP/2 content is not decoded"),
    ("tls_record_malformed", "a TLS record header with an impossible content type, version or length; the direction resynchronises on the next plausible record header"),
    ("tls_handshake_malformed", "a TLS handshake message (ClientHello, ServerHello, EncryptedExtensions) that does not parse"),
    ("tls_unexpected_record", "a TLS record that is not valid in the connection's state (e.g. application data before the handshake); skipped"),
    ("tls_alert", "a TLS alert other than close_notify (level and description in the detail)"),
    ("tls_bad_key", "a key log secret does not fit the negotiated suite (wrong length); the direction is not decrypted"),
    ("tls_midstream", "TLS records without the ClientHello (the capture started mid-connection, or its start was lost): no client random, so no key can be found"),
    ("tls_resync", "after a TCP gap (or a malformed record) decryption resumed at a later record; the plaintext lost is reported as a gap (its length estimated from the ciphertext lost)"),
    ("tls_resync_failed", "after a TCP gap no record decrypted with the next sequence numbers within the scan limit; the rest of the direction is not decrypted"),
    ("tls_limit_handshake", "a handshake message longer than the handshake limit; it was skipped, not parsed"),
    ("tls_limit_pending", "ciphertext waiting for its key exceeded the pending limit; the connection is reported as tls_no_key"),
    ("tls_keylog_bad_line", "key log lines that do not parse, or are longer than the line limit, were skipped (counted in the key log statistics)"),
    ("tls_keylog_limit", "the key log size or entry limit was reached; further secrets were ignored"),
];

/// Content types.
const CT_CCS: u8 = 20;
const CT_ALERT: u8 = 21;
const CT_HANDSHAKE: u8 = 22;
const CT_APP: u8 = 23;
const CT_HEARTBEAT: u8 = 24;

/// Largest record body accepted: 2^14 + 2048 (RFC 5246 §6.2.3; TLS 1.3 allows less).
pub const MAX_RECORD_BODY: usize = (1 << 14) + 2048;
const HEADER: usize = 5;

/// Limits of one connection.
#[derive(Clone, Copy, Debug)]
pub struct TlsLimits {
    /// Largest handshake message parsed (ClientHello, ServerHello,
    /// EncryptedExtensions, Finished, KeyUpdate; others are skipped without
    /// buffering). Default 64 KiB.
    pub max_handshake: usize,
    /// Ciphertext held per connection while its key is not known yet (live
    /// capture: the key log line comes just after the handshake; a pcapng
    /// may carry a Decryption Secrets Block after the handshake it decrypts).
    /// 0 means decide at once, right for files whose keys are all known
    /// before reading (key log files, classic pcap). Default 256 KiB.
    pub max_pending: usize,
    /// Sequence numbers tried after a gap (the records lost). Default 32.
    pub resync_records: u64,
    /// Bytes scanned for a record header after a gap before giving up on the
    /// direction. Default 256 KiB.
    pub resync_scan: usize,
    /// `tls_decrypt_failed` anomalies reported per direction; later ones are
    /// counted and summed up at the end. Default 8.
    pub max_failures_reported: u64,
}

impl Default for TlsLimits {
    fn default() -> Self {
        TlsLimits {
            max_handshake: 64 << 10,
            max_pending: 256 << 10,
            resync_records: 32,
            resync_scan: 256 << 10,
            max_failures_reported: 8,
        }
    }
}

/// Where a chunk of TCP payload sits: as `tcp::StreamEvent::Data` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Stream offset of the chunk's first byte.
    pub offset: u64,
    /// TCP sequence number of the chunk's first byte.
    pub seq: u32,
    /// Packet (1-based) that carried the chunk.
    pub packet: PacketNo,
    /// Timestamp of that packet.
    pub ts: Timestamp,
}

/// Whether a connection's bytes are TLS, as far as the stage can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not enough bytes seen yet.
    Undecided,
    /// TLS: feed the connection's bytes through this stage.
    Tls,
    /// Not TLS: read the connection as plaintext; the bytes fed so far are in
    /// [`TlsConn::take_undecided`].
    NotTls,
}

/// What the stage hands on.
#[derive(Debug)]
pub enum TlsEvent<'a> {
    /// Decrypted application data of one record.
    Plaintext {
        /// Direction that sent the record.
        side: Side,
        /// Offset in the decrypted stream of `side`.
        offset: u64,
        /// The record's application data.
        data: &'a [u8],
        /// First and last packet that carried the record.
        first_packet: PacketNo,
        /// Last packet that carried the record.
        last_packet: PacketNo,
        /// Timestamp of the last packet of the record.
        ts: Timestamp,
        /// TCP stream offset of the record's header.
        record_offset: u64,
    },
    /// Plaintext lost at `offset` of the decrypted stream of `side`.
    Gap {
        /// Direction whose plaintext was lost.
        side: Side,
        /// Offset in the decrypted stream of `side` where the loss starts.
        offset: u64,
        /// Plaintext bytes lost (exact or estimated, see `exact`).
        len: u64,
        /// False when `len` is estimated (records lost in a TCP gap: their
        /// padding and boundaries are unknown).
        exact: bool,
        /// Packet where the loss was detected.
        packet: PacketNo,
        /// Timestamp of that packet.
        ts: Timestamp,
    },
    /// A protocol violation or a limitation (a `tls_*` name of [`ANOMALIES`]).
    Anomaly {
        /// Direction it concerns; `None` for the connection as a whole.
        side: Option<Side>,
        /// The anomaly, with its packet and detail.
        anomaly: Anomaly,
    },
}

/// What is known of the connection's TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    /// The side that sent the ClientHello.
    pub client: Option<Side>,
    /// Negotiated version (0x0303 TLS 1.2, 0x0304 TLS 1.3).
    pub version: Option<u16>,
    /// Negotiated cipher suite id (from the ServerHello).
    pub cipher_suite: Option<u16>,
    /// Server name the client asked for (SNI), if it sent one.
    pub sni: Option<String>,
    /// ALPN protocols the client offered, in its order.
    pub alpn_offered: Vec<String>,
    /// Negotiated ALPN (ServerHello in TLS 1.2, EncryptedExtensions in 1.3).
    pub alpn: Option<String>,
    /// The ClientHello's 32-byte random: the key log lookup key.
    pub client_random: Option<[u8; 32]>,
    /// The ClientHello's legacy session id (empty if none).
    pub session_id: Vec<u8>,
    /// Versions from the client's `supported_versions` extension (empty if none).
    pub offered_versions: Vec<u16>,
    /// Cipher suite ids the client offered, in its order.
    pub offered_suites: Vec<u16>,
    /// The server answered with a HelloRetryRequest.
    pub hello_retry: bool,
    /// Where the connection's keys came from; `None` while none was found.
    pub key_source: Option<KeySource>,
    /// At least one record decrypted.
    pub decrypted: bool,
}

impl TlsInfo {
    /// The negotiated version's name (`"TLS 1.3"`, ...); `None` if not negotiated yet.
    pub fn version_name(&self) -> Option<&'static str> {
        self.version.map(version_name)
    }
    /// The negotiated cipher suite's IANA name (or its hex id if unknown); `None` if not negotiated yet.
    pub fn cipher_suite_name(&self) -> Option<String> {
        self.cipher_suite.map(|id| match crypto::suite(id) {
            Some(s) => s.name.to_string(),
            None => crypto::unsupported_suite_name(id),
        })
    }
    /// The client random as 64 lowercase hex digits, as in a key log file.
    pub fn client_random_hex(&self) -> Option<String> {
        self.client_random.map(|r| hex(&r))
    }
}

/// Name of a TLS protocol version number (`"TLS 1.2"`); `"unknown"` for others.
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSL 3.0",
        0x0301 => "TLS 1.0",
        0x0302 => "TLS 1.1",
        0x0303 => "TLS 1.2",
        0x0304 => "TLS 1.3",
        _ => "unknown",
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push_str(&format!("{x:02x}"));
    }
    s
}

/// Counters of one connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsStats {
    /// TLS records seen (both directions).
    pub records: u64,
    /// Records decrypted and authenticated.
    pub decrypted_records: u64,
    /// Plaintext bytes handed on (application data).
    pub plaintext_bytes: u64,
    /// Records whose authentication tag did not verify (`tls_decrypt_failed`).
    pub failed_records: u64,
    /// Records not decrypted for want of a key (or of support).
    pub undecrypted_records: u64,
    /// Ciphertext bytes of the undecrypted records.
    pub undecrypted_bytes: u64,
    /// 0-RTT early data records (not decrypted).
    pub early_data_records: u64,
    /// Times record framing was searched for again after a TCP gap.
    pub resyncs: u64,
    /// Records not valid in their direction's state (`tls_unexpected_record`).
    pub unexpected_records: u64,
    /// Largest ciphertext (bytes) held at once waiting for a key (limit `TlsLimits::max_pending`).
    pub pending_peak: usize,
}

/// Is this the start of a TLS client stream? `Undecided` until 6 bytes.
pub fn sniff(first: &[u8]) -> (Verdict, bool) {
    // (verdict, is a ClientHello)
    let b = |i: usize| first.get(i).copied();
    let plausible_type = |t: u8| (CT_CCS..=CT_HEARTBEAT).contains(&t);
    match (b(0), b(1), b(2)) {
        (None, _, _) => return (Verdict::Undecided, false),
        (Some(t), _, _) if !plausible_type(t) => return (Verdict::NotTls, false),
        (Some(_), Some(maj), _) if maj != 3 => return (Verdict::NotTls, false),
        (Some(_), _, Some(min)) if min > 4 => return (Verdict::NotTls, false),
        _ => {}
    }
    if first.len() < 6 {
        return (Verdict::Undecided, false);
    }
    let len = u16::from_be_bytes([first[3], first[4]]) as usize;
    if len == 0 || len > MAX_RECORD_BODY {
        return (Verdict::NotTls, false);
    }
    if first[0] == CT_HANDSHAKE && first[5] == handshake::CLIENT_HELLO {
        return (Verdict::Tls, true);
    }
    (Verdict::Tls, false)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Hs13,
    Ap13,
    Tls12,
}

enum Prot {
    Plain,
    NeedKey(Want),
    Keyed(Want, Box<Cipher>),
    /// Nothing more of this direction can be decrypted.
    Dead,
}

#[derive(Clone, Copy, Debug)]
struct RecMeta {
    first_packet: PacketNo,
    last_packet: PacketNo,
    ts: Timestamp,
    offset: u64,
}

struct Pending {
    header: [u8; 5],
    body: Vec<u8>,
    meta: RecMeta,
}

struct Resync {
    /// Ciphertext bytes lost so far (the gap, the partial record before it,
    /// bytes skipped while scanning).
    lost: u64,
    scanned: usize,
    packet: PacketNo,
    ts: Timestamp,
}

#[derive(Default)]
struct Dir {
    /// Bytes not yet parsed into records: at most one incomplete record
    /// after each call.
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    buf_offset: u64,
    /// (stream offset, packet, ts) of each chunk with bytes in `buf`.
    chunks: VecDeque<(u64, PacketNo, Timestamp)>,
    hs: HsReader,
    prot: Option<Prot>,
    plain_offset: u64,
    pending: VecDeque<Pending>,
    resync: Option<Resync>,
    failures: u64,
    /// TLS 1.3: the current application traffic secret (for KeyUpdate).
    app_secret: Option<Vec<u8>>,
    /// TLS 1.3: a handshake record of this direction decrypted.
    hs_decrypted: bool,
    early_reported: bool,
    unexpected: u64,
}

impl Dir {
    fn prot(&self) -> &Prot {
        self.prot.as_ref().unwrap_or(&Prot::Plain)
    }
}

/// One TCP connection's TLS: both directions.
pub struct TlsConn {
    limits: TlsLimits,
    verdict: Verdict,
    undecided: Vec<(Side, ChunkMeta, Vec<u8>)>,
    dirs: [Dir; 2],
    info: TlsInfo,
    server_random: Option<[u8; 32]>,
    suite: Option<&'static Suite>,
    early_data_offered: bool,
    ech_offered: bool,
    pending_bytes: usize,
    no_key_reported: bool,
    /// Packet and time of the first record that waited for a key.
    first_wait: Option<(PacketNo, Timestamp)>,
    h2_reported: bool,
    stats: TlsStats,
    scratch: Vec<u8>,
}

/// Where a [`TlsConn`] sends its events.
pub type Out<'o> = dyn FnMut(TlsEvent<'_>) + 'o;

fn emit(
    out: &mut Out<'_>,
    side: Option<Side>,
    name: &'static str,
    detail: String,
    packet: PacketNo,
    ts: Timestamp,
) {
    out(TlsEvent::Anomaly {
        side,
        anomaly: Anomaly {
            name,
            detail,
            packet,
            ts,
        },
    });
}

fn valid_header(h: &[u8; 5]) -> bool {
    let len = u16::from_be_bytes([h[3], h[4]]) as usize;
    (CT_CCS..=CT_HEARTBEAT).contains(&h[0])
        && h[1] == 3
        && h[2] <= 4
        && len <= MAX_RECORD_BODY
        && (len > 0 || h[0] == CT_APP)
}

impl TlsConn {
    /// A connection in state `Undecided`, with these limits.
    pub fn new(limits: TlsLimits) -> Self {
        TlsConn {
            limits,
            verdict: Verdict::Undecided,
            undecided: Vec::new(),
            dirs: [Dir::default(), Dir::default()],
            info: TlsInfo::default(),
            server_random: None,
            suite: None,
            early_data_offered: false,
            ech_offered: false,
            pending_bytes: 0,
            no_key_reported: false,
            first_wait: None,
            h2_reported: false,
            stats: TlsStats::default(),
            scratch: Vec::new(),
        }
    }

    /// What the bytes seen so far are.
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// What is known of the connection's TLS so far.
    pub fn info(&self) -> &TlsInfo {
        &self.info
    }

    /// The connection's counters so far.
    pub fn stats(&self) -> &TlsStats {
        &self.stats
    }

    /// Ciphertext waits for a key: call [`TlsConn::retry_keys`] when the
    /// key store grows (live capture).
    pub fn waiting_for_key(&self) -> bool {
        !self.no_key_reported
            && self
                .dirs
                .iter()
                .any(|d| !d.pending.is_empty() || matches!(d.prot(), Prot::NeedKey(_)))
    }

    /// Heap bytes held (record buffers, held ciphertext, scratch), for a
    /// memory cap.
    pub fn heap_bytes(&self) -> usize {
        let dirs: usize = self
            .dirs
            .iter()
            .map(|d| {
                d.buf.capacity()
                    + d.chunks.capacity() * 32
                    + d.pending
                        .iter()
                        .map(|p| p.body.capacity() + 64)
                        .sum::<usize>()
            })
            .sum();
        dirs + self.scratch.capacity()
            + self
                .undecided
                .iter()
                .map(|u| u.2.capacity() + 48)
                .sum::<usize>()
    }

    /// After `Verdict::NotTls`: the chunks fed before the verdict, in order,
    /// for the plaintext path.
    pub fn take_undecided(&mut self) -> Vec<(Side, ChunkMeta, Vec<u8>)> {
        std::mem::take(&mut self.undecided)
    }

    fn is_tls13(&self) -> bool {
        self.info.version == Some(0x0304)
    }

    fn client(&self) -> Side {
        self.info.client.unwrap_or(Side::Orig)
    }

    /// In-order bytes of one direction.
    pub fn feed(
        &mut self,
        side: Side,
        meta: ChunkMeta,
        data: &[u8],
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) -> Verdict {
        match self.verdict {
            Verdict::NotTls => return Verdict::NotTls,
            Verdict::Tls => {}
            Verdict::Undecided => {
                self.undecided.push((side, meta, data.to_vec()));
                let mut first = Vec::new();
                for (s, _, d) in &self.undecided {
                    if *s == side {
                        first.extend_from_slice(d);
                    }
                }
                let (v, is_ch) = sniff(&first);
                match v {
                    Verdict::Undecided => return Verdict::Undecided,
                    Verdict::NotTls => {
                        self.verdict = Verdict::NotTls;
                        return Verdict::NotTls;
                    }
                    Verdict::Tls => {
                        self.verdict = Verdict::Tls;
                        if is_ch {
                            self.info.client = Some(side);
                        } else {
                            emit(out, Some(side), "tls_midstream", "TLS records with no ClientHello before them: the connection cannot be decrypted (no client random)".into(), meta.packet, meta.ts);
                            for d in &mut self.dirs {
                                d.prot = Some(Prot::Dead);
                            }
                        }
                        let chunks = std::mem::take(&mut self.undecided);
                        for (s, m, d) in chunks {
                            self.feed_tls(s, m, &d, keys, out);
                        }
                        return Verdict::Tls;
                    }
                }
            }
        }
        self.feed_tls(side, meta, data, keys, out);
        Verdict::Tls
    }

    /// `len` bytes of a direction lost at stream offset `offset`.
    pub fn gap(
        &mut self,
        side: Side,
        offset: u64,
        len: u64,
        packet: PacketNo,
        ts: Timestamp,
        out: &mut Out<'_>,
    ) -> Verdict {
        let _ = out;
        match self.verdict {
            Verdict::NotTls => return Verdict::NotTls,
            Verdict::Undecided => {
                // The stream's start is lost: no ClientHello, nothing to decrypt.
                self.verdict = Verdict::NotTls;
                return Verdict::NotTls;
            }
            Verdict::Tls => {}
        }
        let d = &mut self.dirs[side.index()];
        if matches!(d.prot(), Prot::Dead) {
            return Verdict::Tls;
        }
        let partial = d.buf.len() as u64;
        d.buf.clear();
        d.chunks.clear();
        d.buf_offset = offset.saturating_add(len);
        let r = d.resync.get_or_insert(Resync {
            lost: 0,
            scanned: 0,
            packet,
            ts,
        });
        r.lost = r.lost.saturating_add(len).saturating_add(partial);
        d.hs.reset();
        Verdict::Tls
    }

    /// Keys may have arrived (live capture: the key log grew): decrypts what
    /// waited for them.
    pub fn retry_keys(&mut self, keys: &KeyStore, out: &mut Out<'_>) {
        if self.verdict != Verdict::Tls {
            return;
        }
        for side in [Side::Orig, Side::Resp] {
            self.drain_pending(side, keys, out);
        }
    }

    /// End of the connection: what still waits for a key is reported.
    pub fn finish(&mut self, keys: &KeyStore, out: &mut Out<'_>) {
        if self.verdict != Verdict::Tls {
            return;
        }
        self.retry_keys(keys, out);
        if self
            .dirs
            .iter()
            .any(|d| !d.pending.is_empty() || matches!(d.prot(), Prot::NeedKey(_)))
        {
            let (packet, ts) = self.first_wait.unwrap_or_default();
            self.report_no_key(None, out, packet, ts);
        }
        for side in [Side::Orig, Side::Resp] {
            let i = side.index();
            let d = &mut self.dirs[i];
            if let Some(r) = d.resync.take() {
                if matches!(d.prot(), Prot::Keyed(..)) {
                    let est = r.lost;
                    out(TlsEvent::Gap {
                        side,
                        offset: d.plain_offset,
                        len: est,
                        exact: false,
                        packet: r.packet,
                        ts: r.ts,
                    });
                    d.plain_offset += est;
                }
            }
            // A record cut by the end of the capture: its plaintext is lost.
            if let (Some(h), Prot::Keyed(_, c)) = (d.buf.get(..HEADER), d.prot()) {
                let declared = u16::from_be_bytes([h[3], h[4]]) as usize;
                let est = declared.saturating_sub(c.overhead()) as u64;
                let (packet, ts) = d.chunks.front().map(|c| (c.1, c.2)).unwrap_or_default();
                if h[0] == CT_APP && est > 0 {
                    out(TlsEvent::Gap {
                        side,
                        offset: d.plain_offset,
                        len: est,
                        exact: false,
                        packet,
                        ts,
                    });
                    d.plain_offset += est;
                }
            }
            d.buf.clear();
            if d.unexpected > 1 {
                emit(
                    out,
                    Some(side),
                    "tls_unexpected_record",
                    format!(
                        "{} records of this direction were not valid in its state in all",
                        d.unexpected
                    ),
                    0,
                    Timestamp::default(),
                );
            }
            let reported = self.limits.max_failures_reported;
            if d.failures > reported {
                emit(out, Some(side), "tls_decrypt_failed", format!("{} records of this direction failed to decrypt in all ({} reported one by one)", d.failures, reported), 0, Timestamp::default());
            }
        }
    }

    fn feed_tls(
        &mut self,
        side: Side,
        meta: ChunkMeta,
        data: &[u8],
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let d = &mut self.dirs[side.index()];
        if matches!(d.prot(), Prot::Dead) {
            self.stats.undecrypted_bytes += data.len() as u64;
            return;
        }
        if d.buf.is_empty() {
            d.buf_offset = meta.offset;
            d.chunks.clear();
        }
        d.chunks
            .push_back((d.buf_offset + d.buf.len() as u64, meta.packet, meta.ts));
        d.buf.extend_from_slice(data);
        self.process(side, keys, out);
    }

    fn record_meta(d: &Dir, start: usize, end: usize) -> RecMeta {
        let at = |off: u64| {
            let i = d.chunks.partition_point(|c| c.0 <= off);
            d.chunks
                .get(i.saturating_sub(1))
                .map(|c| (c.1, c.2))
                .unwrap_or_default()
        };
        let s = d.buf_offset + start as u64;
        let e = d.buf_offset + end.saturating_sub(1) as u64;
        let (fp, _) = at(s);
        let (lp, ts) = at(e);
        RecMeta {
            first_packet: fp,
            last_packet: lp,
            ts,
            offset: s,
        }
    }

    fn process(&mut self, side: Side, keys: &KeyStore, out: &mut Out<'_>) {
        let i = side.index();
        let mut buf = std::mem::take(&mut self.dirs[i].buf);
        let mut pos = 0usize;
        loop {
            if matches!(self.dirs[i].prot(), Prot::Dead) {
                self.stats.undecrypted_bytes += (buf.len() - pos) as u64;
                pos = buf.len();
                break;
            }
            let Some(h) = buf.get(pos..pos + HEADER) else {
                break;
            };
            let header: [u8; 5] = [h[0], h[1], h[2], h[3], h[4]];
            let len = u16::from_be_bytes([h[3], h[4]]) as usize;
            if self.dirs[i].resync.is_some() {
                match self.resync_at(
                    side,
                    &header,
                    buf.get(pos + HEADER..pos + HEADER + len),
                    keys,
                    out,
                ) {
                    ResyncStep::Skip => {
                        pos += 1;
                        continue;
                    }
                    ResyncStep::Wait => break,
                    ResyncStep::Found => {}
                }
            } else if !valid_header(&header) {
                let meta = Self::record_meta(&self.dirs[i], pos, pos + HEADER);
                emit(out, Some(side), "tls_record_malformed", format!("record header {} at stream offset {}: impossible type, version or length; scanning for the next record", hex(&header), meta.offset), meta.first_packet, meta.ts);
                self.dirs[i].resync = Some(Resync {
                    lost: 0,
                    scanned: 0,
                    packet: meta.first_packet,
                    ts: meta.ts,
                });
                continue;
            }
            let end = pos + HEADER + len;
            if buf.len() < end {
                break;
            }
            let meta = Self::record_meta(&self.dirs[i], pos, end);
            if let Some(body) = buf.get_mut(pos + HEADER..end) {
                self.stats.records += 1;
                self.on_record(side, header, body, meta, keys, out);
            }
            pos = end;
        }
        let d = &mut self.dirs[i];
        buf.drain(..pos.min(buf.len()));
        d.buf_offset += pos as u64;
        d.buf = buf;
        while d.chunks.len() > 1 && d.chunks.get(1).is_some_and(|c| c.0 <= d.buf_offset) {
            d.chunks.pop_front();
        }
        if d.buf.is_empty() {
            d.chunks.clear();
        }
    }

    fn resync_at(
        &mut self,
        side: Side,
        header: &[u8; 5],
        body: Option<&[u8]>,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) -> ResyncStep {
        let i = side.index();
        let limits = self.limits;
        let tls13 = self.is_tls13();
        // Under the handshake keys the gap may have taken the Finished: the
        // next records are then under the application keys.
        let app = match self.dirs[i].prot() {
            Prot::Keyed(Want::Hs13, _) => self.app_cipher(side, keys),
            _ => None,
        };
        let d = &mut self.dirs[i];
        let skip = |d: &mut Dir, out: &mut Out<'_>| {
            let r = d.resync.as_mut();
            if let Some(r) = r {
                r.lost += 1;
                r.scanned += 1;
                if r.scanned > limits.resync_scan {
                    emit(out, Some(side), "tls_resync_failed", format!("no record decrypted within {} bytes after the gap; the rest of this direction is not decrypted", limits.resync_scan), r.packet, r.ts);
                    d.prot = Some(Prot::Dead);
                }
            }
            ResyncStep::Skip
        };
        let plausible = valid_header(header)
            && match d.prot() {
                Prot::Keyed(..) | Prot::NeedKey(_) => {
                    header[0] == CT_APP
                        || (!tls13 && (header[0] == CT_HANDSHAKE || header[0] == CT_ALERT))
                }
                _ => matches!(header[0], CT_HANDSHAKE | CT_CCS | CT_ALERT),
            }
            && header[2] >= 1
            && header[2] <= 3;
        if !plausible {
            return skip(d, out);
        }
        let Some(body) = body else {
            return ResyncStep::Wait;
        };
        let found_seq = match d.prot() {
            Prot::Keyed(_, c) => {
                let mut hit = None;
                for s in c.seq..c.seq.saturating_add(limits.resync_records) {
                    self.scratch.clear();
                    self.scratch.extend_from_slice(body);
                    if c.open_at(s, header, &mut self.scratch).is_ok() {
                        hit = Some((s, s - c.seq, c.overhead()));
                        break;
                    }
                }
                if hit.is_none() {
                    if let Some((app, secret)) = app {
                        for s in 0..limits.resync_records {
                            self.scratch.clear();
                            self.scratch.extend_from_slice(body);
                            if app.open_at(s, header, &mut self.scratch).is_ok() {
                                // Records lost under the application keys: `s`.
                                hit = Some((s, s, app.overhead()));
                                d.app_secret = Some(secret);
                                d.prot = Some(Prot::Keyed(Want::Ap13, Box::new(app)));
                                break;
                            }
                        }
                    }
                }
                match hit {
                    Some((s, lost, overhead))
                        if matches!(d.prot(), Prot::Keyed(Want::Ap13, _))
                            && lost == 0
                            && s == 0 =>
                    {
                        // Only handshake records were lost: nothing of the plaintext stream.
                        d.resync = None;
                        self.stats.resyncs += 1;
                        let _ = overhead;
                        emit(out, Some(side), "tls_resync", "decryption resumed after the gap with the application keys (the handshake's end was lost, none of the application data)".into(), 0, Timestamp::default());
                        return ResyncStep::Found;
                    }
                    Some(h) => Some(h),
                    None => return skip(d, out),
                }
            }
            _ => None,
        };
        let Some(r) = d.resync.take() else {
            return ResyncStep::Found;
        };
        self.stats.resyncs += 1;
        match found_seq {
            Some((s, lost_records, overhead)) => {
                let est = r
                    .lost
                    .saturating_sub(lost_records * (HEADER + overhead) as u64);
                if let Some(Prot::Keyed(_, c)) = d.prot.as_mut() {
                    c.seq = s;
                }
                emit(out, Some(side), "tls_resync", format!("decryption resumed {} ciphertext bytes after the gap, at record sequence number {s} ({lost_records} records lost; about {est} plaintext bytes)", r.lost), r.packet, r.ts);
                out(TlsEvent::Gap {
                    side,
                    offset: d.plain_offset,
                    len: est,
                    exact: false,
                    packet: r.packet,
                    ts: r.ts,
                });
                d.plain_offset += est;
            }
            None => {
                emit(out, Some(side), "tls_resync", format!("record layer resumed {} bytes after the gap (before decryption started: handshake messages may be lost)", r.lost), r.packet, r.ts);
            }
        }
        ResyncStep::Found
    }

    fn on_record(
        &mut self,
        side: Side,
        header: [u8; 5],
        body: &mut [u8],
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let i = side.index();
        let ct = header[0];
        if ct == CT_CCS && (self.is_tls13() || !matches!(self.dirs[i].prot(), Prot::Plain)) {
            return; // TLS 1.3 middlebox compatibility, or a repeated CCS
        }
        if !self.dirs[i].pending.is_empty() || matches!(self.dirs[i].prot(), Prot::NeedKey(_)) {
            self.drain_pending(side, keys, out);
        }
        enum State {
            Dead,
            Hold,
            Plain,
            Keyed,
        }
        let d = &self.dirs[i];
        let state = match d.prot() {
            Prot::Dead => State::Dead,
            Prot::NeedKey(_) => State::Hold,
            _ if !d.pending.is_empty() => State::Hold,
            Prot::Plain => State::Plain,
            Prot::Keyed(..) => State::Keyed,
        };
        match state {
            State::Dead => {
                self.stats.undecrypted_records += 1;
                self.stats.undecrypted_bytes += body.len() as u64;
            }
            State::Hold => self.hold(side, header, body, meta, out),
            State::Keyed => self.decrypt(side, header, body, meta, keys, out),
            State::Plain => match ct {
                CT_HANDSHAKE => self.on_handshake_bytes(side, body, meta, keys, out),
                // Before a ServerHello (TLS 1.3 middlebox compatibility with early data) a CCS means nothing.
                CT_CCS if self.info.version == Some(0x0303) => {
                    self.dirs[i].prot = Some(Prot::NeedKey(Want::Tls12));
                    self.try_key(side, keys, meta, out);
                }
                CT_ALERT => self.on_alert(side, body, meta, out),
                CT_APP => {
                    if side == self.client() && self.early_data_offered {
                        self.early_data(side, body.len(), meta, out);
                    } else {
                        self.stats.undecrypted_records += 1;
                        self.unexpected(side, format!("application data record of {} bytes before the keys of this direction are in use", body.len()), meta, out);
                    }
                }
                _ => {}
            },
        }
    }

    fn early_data(&mut self, side: Side, len: usize, meta: RecMeta, out: &mut Out<'_>) {
        self.stats.early_data_records += 1;
        self.stats.undecrypted_records += 1;
        let d = &mut self.dirs[side.index()];
        if !d.early_reported {
            d.early_reported = true;
            emit(
                out,
                Some(side),
                "tls_unsupported",
                "0-RTT early data is not decrypted".into(),
                meta.first_packet,
                meta.ts,
            );
        }
        let est = len.saturating_sub(crypto::TAG_LEN + 1) as u64;
        out(TlsEvent::Gap {
            side,
            offset: d.plain_offset,
            len: est,
            exact: false,
            packet: meta.first_packet,
            ts: meta.ts,
        });
        d.plain_offset += est;
    }

    fn hold(&mut self, side: Side, header: [u8; 5], body: &[u8], meta: RecMeta, out: &mut Out<'_>) {
        if self.no_key_reported {
            self.stats.undecrypted_records += 1;
            self.stats.undecrypted_bytes += body.len() as u64;
            return;
        }
        if self.pending_bytes + body.len() > self.limits.max_pending {
            if self.limits.max_pending > 0 {
                emit(
                    out,
                    Some(side),
                    "tls_limit_pending",
                    format!(
                        "more than {} bytes of ciphertext waited for a key",
                        self.limits.max_pending
                    ),
                    meta.first_packet,
                    meta.ts,
                );
            }
            self.stats.undecrypted_records += 1;
            self.stats.undecrypted_bytes += body.len() as u64;
            self.report_no_key(Some(side), out, meta.first_packet, meta.ts);
            return;
        }
        self.first_wait.get_or_insert((meta.first_packet, meta.ts));
        self.pending_bytes += body.len();
        self.stats.pending_peak = self.stats.pending_peak.max(self.pending_bytes);
        self.dirs[side.index()].pending.push_back(Pending {
            header,
            body: body.to_vec(),
            meta,
        });
    }

    fn report_no_key(
        &mut self,
        side: Option<Side>,
        out: &mut Out<'_>,
        packet: PacketNo,
        ts: Timestamp,
    ) {
        for d in &mut self.dirs {
            for p in d.pending.drain(..) {
                self.stats.undecrypted_records += 1;
                self.stats.undecrypted_bytes += p.body.len() as u64;
            }
            if matches!(d.prot(), Prot::NeedKey(_)) {
                d.prot = Some(Prot::Dead);
            }
        }
        self.pending_bytes = 0;
        if self.no_key_reported {
            return;
        }
        self.no_key_reported = true;
        let sni = self.info.sni.as_deref().unwrap_or("(none)");
        let cr = self
            .info
            .client_random_hex()
            .unwrap_or_else(|| "(unknown)".into());
        let ver = self.info.version_name().unwrap_or("unknown version");
        let ech = if self.ech_offered {
            "; the ClientHello offers ECH: the key may be logged under the inner ClientHello's random"
        } else {
            ""
        };
        emit(out, side, "tls_no_key", format!("no key for this {ver} connection (SNI {sni}, client random {cr}) in any key source{ech}"), packet, ts);
    }

    fn drain_pending(&mut self, side: Side, keys: &KeyStore, out: &mut Out<'_>) {
        let i = side.index();
        loop {
            if matches!(self.dirs[i].prot(), Prot::NeedKey(_)) {
                let m = self.dirs[i].pending.front().map(|p| p.meta);
                let m = m.unwrap_or(RecMeta {
                    first_packet: 0,
                    last_packet: 0,
                    ts: Timestamp::default(),
                    offset: 0,
                });
                if !self.try_key(side, keys, m, out) {
                    return;
                }
            }
            if !matches!(self.dirs[i].prot(), Prot::Keyed(..)) {
                return;
            }
            let Some(mut p) = self.dirs[i].pending.pop_front() else {
                return;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(p.body.len());
            self.decrypt(side, p.header, &mut p.body, p.meta, keys, out);
        }
    }

    /// Turns `NeedKey` into `Keyed` if the key store has the secret.
    fn try_key(&mut self, side: Side, keys: &KeyStore, meta: RecMeta, out: &mut Out<'_>) -> bool {
        let i = side.index();
        let Prot::NeedKey(want) = *self.dirs[i].prot() else {
            return matches!(self.dirs[i].prot(), Prot::Keyed(..));
        };
        let (Some(cr), Some(suite)) = (self.info.client_random, self.suite) else {
            return false;
        };
        let Some(e) = keys.get(&cr) else {
            if self.limits.max_pending == 0 {
                self.report_no_key(Some(side), out, meta.first_packet, meta.ts);
            }
            return false;
        };
        let is_client = side == self.client();
        let cipher = match want {
            Want::Hs13 | Want::Ap13 => {
                let secret = match (want, is_client) {
                    (Want::Hs13, true) => &e.client_hs,
                    (Want::Hs13, false) => &e.server_hs,
                    (_, true) => &e.client_ap,
                    (_, false) => &e.server_ap,
                };
                let Some(secret) = secret else {
                    if self.limits.max_pending == 0 {
                        self.report_no_key(Some(side), out, meta.first_packet, meta.ts);
                    }
                    return false;
                };
                if want == Want::Ap13 {
                    self.dirs[i].app_secret = Some(secret.clone());
                }
                Cipher::tls13(suite, secret)
            }
            Want::Tls12 => {
                let (Some(master), Some(sr)) = (&e.master, &self.server_random) else {
                    if self.limits.max_pending == 0 {
                        self.report_no_key(Some(side), out, meta.first_packet, meta.ts);
                    }
                    return false;
                };
                Cipher::tls12_pair(suite, master, &cr, sr)
                    .map(|(c, s)| if is_client { c } else { s })
            }
        };
        self.info.key_source = self.info.key_source.or(e.source);
        match cipher {
            Some(c) => {
                self.dirs[i].prot = Some(Prot::Keyed(want, Box::new(c)));
                true
            }
            None => {
                emit(
                    out,
                    Some(side),
                    "tls_bad_key",
                    format!(
                        "the key log secret for client random {} does not fit {}",
                        hex(&cr),
                        suite.name
                    ),
                    meta.first_packet,
                    meta.ts,
                );
                self.dirs[i].prot = Some(Prot::Dead);
                false
            }
        }
    }

    fn decrypt(
        &mut self,
        side: Side,
        header: [u8; 5],
        body: &mut [u8],
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let i = side.index();
        let tls13 = self.is_tls13();
        let is_client = side == self.client();
        let early_possible =
            tls13 && is_client && self.early_data_offered && !self.dirs[i].hs_decrypted;
        if tls13 && header[0] == CT_ALERT && body.len() == 2 {
            // A plaintext alert: the peer failed before it had keys.
            return self.on_alert(side, body, meta, out);
        }
        if tls13 && header[0] != CT_APP {
            let detail = format!(
                "TLS 1.3 record of outer type {} after the handshake keys",
                header[0]
            );
            self.unexpected(side, detail, meta, out);
            return;
        }
        let Some(Prot::Keyed(want, c)) = self.dirs[i].prot.as_mut() else {
            return;
        };
        let want = *want;
        let seq = c.seq;
        let overhead = c.overhead();
        // A failed open leaves the body scrambled: keep a copy where a second try may follow.
        let retry = want == Want::Hs13 && !early_possible;
        if retry {
            self.scratch.clear();
            self.scratch.extend_from_slice(body);
        }
        match c.open_at(seq, &header, body) {
            Ok((ct, range)) => {
                c.seq += 1;
                self.stats.decrypted_records += 1;
                self.info.decrypted = true;
                if want == Want::Hs13 {
                    self.dirs[i].hs_decrypted = true;
                }
                let pt = body.get(range).unwrap_or_default();
                self.on_plaintext(side, ct, pt, meta, keys, out);
            }
            Err(_) if early_possible => self.early_data(side, body.len(), meta, out),
            Err(e) => {
                c.seq += 1;
                if retry && self.try_app_keys(side, &header, keys) {
                    // The Finished was lost: the record is already under the application keys.
                    let mut copy = std::mem::take(&mut self.scratch);
                    self.decrypt(side, header, &mut copy, meta, keys, out);
                    self.scratch = copy;
                    return;
                }
                self.stats.failed_records += 1;
                let d = &mut self.dirs[i];
                d.failures += 1;
                if d.failures <= self.limits.max_failures_reported {
                    emit(out, Some(side), "tls_decrypt_failed", format!("record at stream offset {} ({} bytes, sequence number {seq}) did not decrypt ({e:?}): wrong key or corrupted record; its plaintext is reported as a gap", meta.offset, body.len()), meta.first_packet, meta.ts);
                }
                let est = body.len().saturating_sub(overhead) as u64;
                if want != Want::Hs13 {
                    out(TlsEvent::Gap {
                        side,
                        offset: d.plain_offset,
                        len: est,
                        exact: !tls13,
                        packet: meta.first_packet,
                        ts: meta.ts,
                    });
                    d.plain_offset += est;
                }
            }
        }
    }

    /// TLS 1.3: the read cipher of `side`'s application traffic secret, and the secret.
    fn app_cipher(&self, side: Side, keys: &KeyStore) -> Option<(Cipher, Vec<u8>)> {
        let (cr, suite) = (self.info.client_random?, self.suite?);
        let e = keys.get(&cr)?;
        let secret = if side == self.client() {
            e.client_ap.as_ref()?
        } else {
            e.server_ap.as_ref()?
        };
        Some((Cipher::tls13(suite, secret)?, secret.clone()))
    }

    /// TLS 1.3, handshake keys in use but a record failed: does it open
    /// with the application keys (sequence 0)? If so, switch to them.
    fn try_app_keys(&mut self, side: Side, header: &[u8; 5], keys: &KeyStore) -> bool {
        let Some((c, secret)) = self.app_cipher(side, keys) else {
            return false;
        };
        let mut tmp = self.scratch.clone();
        if c.open_at(0, header, &mut tmp).is_err() {
            return false;
        }
        let d = &mut self.dirs[side.index()];
        d.app_secret = Some(secret);
        d.prot = Some(Prot::Keyed(Want::Ap13, Box::new(c)));
        true
    }

    fn on_plaintext(
        &mut self,
        side: Side,
        ct: u8,
        pt: &[u8],
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let i = side.index();
        match ct {
            CT_APP => {
                let want = match self.dirs[i].prot() {
                    Prot::Keyed(w, _) => Some(*w),
                    _ => None,
                };
                if want == Some(Want::Hs13) {
                    self.unexpected(
                        side,
                        "application data under the handshake keys".into(),
                        meta,
                        out,
                    );
                    return;
                }
                let d = &mut self.dirs[i];
                self.stats.plaintext_bytes += pt.len() as u64;
                if !pt.is_empty() {
                    out(TlsEvent::Plaintext {
                        side,
                        offset: d.plain_offset,
                        data: pt,
                        first_packet: meta.first_packet,
                        last_packet: meta.last_packet,
                        ts: meta.ts,
                        record_offset: meta.offset,
                    });
                }
                d.plain_offset += pt.len() as u64;
            }
            CT_HANDSHAKE => self.on_handshake_bytes(side, pt, meta, keys, out),
            CT_ALERT => self.on_alert(side, pt, meta, out),
            _ => self.unexpected(
                side,
                format!("decrypted record of content type {ct}"),
                meta,
                out,
            ),
        }
    }

    /// A record not valid in the direction's state: reported once per
    /// direction, counted always (a lost ServerHello makes every later record
    /// one), summed up at the end.
    fn unexpected(&mut self, side: Side, detail: String, meta: RecMeta, out: &mut Out<'_>) {
        self.stats.unexpected_records += 1;
        let d = &mut self.dirs[side.index()];
        d.unexpected += 1;
        if d.unexpected == 1 {
            emit(
                out,
                Some(side),
                "tls_unexpected_record",
                format!("{detail}; skipped (later ones in this direction are counted)"),
                meta.first_packet,
                meta.ts,
            );
        }
    }

    fn on_alert(&mut self, side: Side, body: &[u8], meta: RecMeta, out: &mut Out<'_>) {
        if let [level, desc] = body {
            if *desc != 0 {
                emit(
                    out,
                    Some(side),
                    "tls_alert",
                    format!("alert level {level} description {desc}"),
                    meta.first_packet,
                    meta.ts,
                );
            }
        }
    }

    fn on_handshake_bytes(
        &mut self,
        side: Side,
        data: &[u8],
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let mut msgs = Vec::new();
        self.dirs[side.index()]
            .hs
            .feed(data, self.limits.max_handshake, &mut msgs);
        let mut switch = None;
        for m in msgs {
            if let Some(w) = self.on_hs_message(side, m, meta, keys, out) {
                switch = Some(w);
            }
        }
        let i = side.index();
        match switch {
            Some(Switch::App) => {
                self.dirs[i].prot = Some(Prot::NeedKey(Want::Ap13));
                self.try_key(side, keys, meta, out);
            }
            Some(Switch::KeyUpdate) => {
                let (Some(suite), Some(secret)) = (self.suite, self.dirs[i].app_secret.take())
                else {
                    return;
                };
                let next = crypto::next_traffic_secret(suite.hash, &secret);
                let c = Cipher::tls13(suite, &next);
                self.dirs[i].app_secret = Some(next);
                if let Some(c) = c {
                    self.dirs[i].prot = Some(Prot::Keyed(Want::Ap13, Box::new(c)));
                }
            }
            None => {}
        }
    }

    fn on_hs_message(
        &mut self,
        side: Side,
        m: HsMessage,
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) -> Option<Switch> {
        let (p, ts) = (meta.first_packet, meta.ts);
        if m.over_limit {
            emit(
                out,
                Some(side),
                "tls_limit_handshake",
                format!(
                    "handshake message type {} of {} bytes is over the {}-byte limit; not parsed",
                    m.msg_type, m.len, self.limits.max_handshake
                ),
                p,
                ts,
            );
            return None;
        }
        let body = m.body?;
        match m.msg_type {
            handshake::CLIENT_HELLO => {
                let Some(ch) = handshake::parse_client_hello(&body) else {
                    emit(
                        out,
                        Some(side),
                        "tls_handshake_malformed",
                        "ClientHello does not parse".into(),
                        p,
                        ts,
                    );
                    return None;
                };
                if self.info.client_random.is_none() {
                    self.info.client_random = Some(ch.random);
                    self.info.sni = ch.sni;
                    self.info.alpn_offered = ch.alpn;
                    self.info.session_id = ch.session_id;
                    self.info.offered_versions = ch.supported_versions;
                    self.info.offered_suites = ch.cipher_suites;
                    self.ech_offered = ch.ech;
                }
                self.early_data_offered = ch.early_data;
                None
            }
            handshake::SERVER_HELLO => {
                let Some(sh) = handshake::parse_server_hello(&body) else {
                    emit(
                        out,
                        Some(side),
                        "tls_handshake_malformed",
                        "ServerHello does not parse".into(),
                        p,
                        ts,
                    );
                    return None;
                };
                if sh.hello_retry {
                    self.info.hello_retry = true;
                    return None;
                }
                self.on_server_hello(sh, side, meta, keys, out);
                None
            }
            handshake::ENCRYPTED_EXTENSIONS => {
                let Some(ee) = handshake::parse_encrypted_extensions(&body) else {
                    emit(
                        out,
                        Some(side),
                        "tls_handshake_malformed",
                        "EncryptedExtensions does not parse".into(),
                        p,
                        ts,
                    );
                    return None;
                };
                if ee.early_data {
                    emit(
                        out,
                        Some(side),
                        "tls_unsupported",
                        "the server accepted 0-RTT early data, which is not decrypted".into(),
                        p,
                        ts,
                    );
                }
                if ee.alpn.is_some() {
                    self.info.alpn = ee.alpn;
                    self.check_h2(side, meta, out);
                }
                None
            }
            handshake::FINISHED if self.is_tls13() => {
                matches!(self.dirs[side.index()].prot(), Prot::Keyed(Want::Hs13, _))
                    .then_some(Switch::App)
            }
            handshake::KEY_UPDATE if self.is_tls13() => {
                matches!(self.dirs[side.index()].prot(), Prot::Keyed(Want::Ap13, _))
                    .then_some(Switch::KeyUpdate)
            }
            _ => None,
        }
    }

    fn check_h2(&mut self, side: Side, meta: RecMeta, out: &mut Out<'_>) {
        if self.info.alpn.as_deref() == Some("h2") && !self.h2_reported {
            self.h2_reported = true;
            let sni = self.info.sni.as_deref().unwrap_or("(none)");
            emit(out, Some(side), "tls_alpn_h2", format!("ALPN h2 negotiated (SNI {sni}): HTTP/2, which may carry WebSockets (RFC 8441), is not decoded"), meta.first_packet, meta.ts);
        }
    }

    fn on_server_hello(
        &mut self,
        sh: handshake::ServerHello,
        side: Side,
        meta: RecMeta,
        keys: &KeyStore,
        out: &mut Out<'_>,
    ) {
        let (p, ts) = (meta.first_packet, meta.ts);
        if self.info.version.is_some() {
            // A second ServerHello (renegotiation): its keys would need the
            // new randoms; the first handshake's keys stay in use.
            return;
        }
        self.server_random = Some(sh.random);
        self.info.version = Some(sh.version);
        self.info.cipher_suite = Some(sh.cipher_suite);
        if sh.alpn.is_some() {
            self.info.alpn = sh.alpn;
            self.check_h2(side, meta, out);
        }
        let problem = if sh.compression != 0 {
            Some(format!("TLS compression method {}", sh.compression))
        } else if sh.version != 0x0303 && sh.version != 0x0304 {
            Some(format!(
                "protocol version {} (0x{:04x})",
                version_name(sh.version),
                sh.version
            ))
        } else {
            match crypto::suite(sh.cipher_suite) {
                Some(s) if s.tls13 == (sh.version == 0x0304) => {
                    self.suite = Some(s);
                    None
                }
                _ => Some(format!(
                    "cipher suite {}",
                    crypto::unsupported_suite_name(sh.cipher_suite)
                )),
            }
        };
        if let Some(what) = problem {
            let sni = self.info.sni.as_deref().unwrap_or("(none)");
            emit(
                out,
                Some(side),
                "tls_unsupported",
                format!("{what} is not decrypted (SNI {sni})"),
                p,
                ts,
            );
            for d in &mut self.dirs {
                d.prot = Some(Prot::Dead);
            }
            return;
        }
        if sh.version == 0x0304 {
            for s in [Side::Orig, Side::Resp] {
                let d = &mut self.dirs[s.index()];
                if matches!(d.prot(), Prot::Plain) {
                    d.prot = Some(Prot::NeedKey(Want::Hs13));
                }
            }
            self.try_key(side, keys, meta, out);
            self.try_key(side.other(), keys, meta, out);
        }
    }
}

enum ResyncStep {
    Skip,
    Wait,
    Found,
}

#[derive(Clone, Copy)]
enum Switch {
    App,
    KeyUpdate,
}
