//! Handshake messages: reassembly across records, and the fields of
//! ClientHello, ServerHello and EncryptedExtensions this stage needs.

/// Handshake message type of a ClientHello.
pub const CLIENT_HELLO: u8 = 1;
/// Handshake message type of a ServerHello (and HelloRetryRequest).
pub const SERVER_HELLO: u8 = 2;
/// Handshake message type of a NewSessionTicket.
pub const NEW_SESSION_TICKET: u8 = 4;
/// Handshake message type of EncryptedExtensions (TLS 1.3).
pub const ENCRYPTED_EXTENSIONS: u8 = 8;
/// Handshake message type of a Finished.
pub const FINISHED: u8 = 20;
/// Handshake message type of a KeyUpdate (TLS 1.3).
pub const KEY_UPDATE: u8 = 24;

const EXT_SNI: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_EARLY_DATA: u16 = 42;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
const EXT_ECH: u16 = 0xfe0d;

/// SHA-256("HelloRetryRequest"): the random of a HelloRetryRequest (RFC 8446 §4.1.3).
pub const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

/// A bounds-checked reader over a message body.
struct Rd<'a>(&'a [u8]);

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    fn random(&mut self) -> Option<[u8; 32]> {
        self.take(32).and_then(|b| b.try_into().ok())
    }
}

/// The ClientHello fields this stage uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` field (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The 32-byte client random.
    pub random: [u8; 32],
    /// Legacy session id (0 to 32 bytes).
    pub session_id: Vec<u8>,
    /// Offered cipher suite ids, in the client's order.
    pub cipher_suites: Vec<u16>,
    /// Offered compression methods (TLS 1.3 allows only `[0]`).
    pub compression: Vec<u8>,
    /// Server name from the SNI extension, if any.
    pub sni: Option<String>,
    /// ALPN protocols offered, in order (empty without the extension).
    pub alpn: Vec<String>,
    /// Versions of the `supported_versions` extension (empty without it).
    pub supported_versions: Vec<u16>,
    /// The client offered 0-RTT early data (`early_data` extension).
    pub early_data: bool,
    /// The client sent an encrypted ClientHello extension (ECH).
    pub ech: bool,
}

/// The ServerHello fields this stage uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerHello {
    /// `legacy_version` field.
    pub legacy_version: u16,
    /// The 32-byte server random ([`HRR_RANDOM`] for a HelloRetryRequest).
    pub random: [u8; 32],
    /// Legacy session id echoed to the client.
    pub session_id: Vec<u8>,
    /// The chosen cipher suite id.
    pub cipher_suite: u16,
    /// The chosen compression method (0: none).
    pub compression: u8,
    /// From `supported_versions`, else `legacy_version`.
    pub version: u16,
    /// ALPN protocol chosen (TLS 1.2 ServerHello), if any.
    pub alpn: Option<String>,
    /// This is a HelloRetryRequest, not a real ServerHello.
    pub hello_retry: bool,
}

/// The EncryptedExtensions fields this stage uses (TLS 1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptedExtensions {
    /// ALPN protocol chosen, if any.
    pub alpn: Option<String>,
    /// The server accepted 0-RTT early data.
    pub early_data: bool,
}

/// Extensions as (type, data); `None` when the block is malformed.
fn extensions(r: &mut Rd<'_>) -> Option<Vec<(u16, Vec<u8>)>> {
    let mut out = Vec::new();
    if r.0.is_empty() {
        return Some(out); // extensions are optional before TLS 1.3
    }
    let mut e = Rd(r.vec16()?);
    while !e.0.is_empty() {
        let t = e.u16()?;
        let d = e.vec16()?;
        out.push((t, d.to_vec()));
    }
    Some(out)
}

fn alpn_list(d: &[u8]) -> Option<Vec<String>> {
    let mut r = Rd(d);
    let mut l = Rd(r.vec16()?);
    let mut out = Vec::new();
    while !l.0.is_empty() {
        out.push(String::from_utf8_lossy(l.vec8()?).into_owned());
    }
    Some(out)
}

fn sni(d: &[u8]) -> Option<String> {
    let mut r = Rd(d);
    let mut l = Rd(r.vec16()?);
    while !l.0.is_empty() {
        let t = l.u8()?;
        let name = l.vec16()?;
        if t == 0 {
            return Some(String::from_utf8_lossy(name).into_owned());
        }
    }
    None
}

/// Parses a ClientHello body (after the 4-byte handshake header); `None` if malformed.
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut r = Rd(body);
    let mut ch = ClientHello {
        legacy_version: r.u16()?,
        random: r.random()?,
        session_id: r.vec8()?.to_vec(),
        ..Default::default()
    };
    ch.cipher_suites = r
        .vec16()?
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    ch.compression = r.vec8()?.to_vec();
    for (t, d) in extensions(&mut r)? {
        match t {
            EXT_SNI => ch.sni = sni(&d),
            EXT_ALPN => ch.alpn = alpn_list(&d)?,
            EXT_SUPPORTED_VERSIONS => {
                ch.supported_versions = Rd(&d)
                    .vec8()?
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect()
            }
            EXT_EARLY_DATA => ch.early_data = true,
            EXT_ECH => ch.ech = true,
            _ => {}
        }
    }
    Some(ch)
}

/// Parses a ServerHello body (after the 4-byte handshake header); `None` if malformed.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Rd(body);
    let mut sh = ServerHello {
        legacy_version: r.u16()?,
        random: r.random()?,
        session_id: r.vec8()?.to_vec(),
        cipher_suite: r.u16()?,
        compression: r.u8()?,
        ..Default::default()
    };
    sh.version = sh.legacy_version;
    sh.hello_retry = sh.random == HRR_RANDOM;
    for (t, d) in extensions(&mut r)? {
        match t {
            EXT_SUPPORTED_VERSIONS => sh.version = Rd(&d).u16()?,
            EXT_ALPN => sh.alpn = alpn_list(&d)?.into_iter().next(),
            _ => {}
        }
    }
    Some(sh)
}

/// Parses an EncryptedExtensions body; `None` if empty or malformed.
pub fn parse_encrypted_extensions(body: &[u8]) -> Option<EncryptedExtensions> {
    let mut r = Rd(body);
    let mut ee = EncryptedExtensions::default();
    if body.is_empty() {
        return None;
    }
    for (t, d) in extensions(&mut r)? {
        match t {
            EXT_ALPN => ee.alpn = alpn_list(&d)?.into_iter().next(),
            EXT_EARLY_DATA => ee.early_data = true,
            _ => {}
        }
    }
    Some(ee)
}

/// A handshake message as it completes.
#[derive(Debug, PartialEq, Eq)]
pub struct HsMessage {
    /// Handshake message type (`CLIENT_HELLO`, ...).
    pub msg_type: u8,
    /// `None` for types this stage skips, and for messages over the limit.
    pub body: Option<Vec<u8>>,
    /// The body was wanted but longer than the limit given to [`HsReader::feed`].
    pub over_limit: bool,
    /// Body length the message header declares (bytes).
    pub len: u32,
}

/// Reassembles handshake messages of one direction across records; keeps
/// only the bodies of the messages it parses (Certificate chains are
/// skipped, never buffered).
#[derive(Debug, Default)]
pub struct HsReader {
    hdr: [u8; 4],
    hdr_len: usize,
    remaining: u32,
    body: Vec<u8>,
    keep: bool,
    over_limit: bool,
}

fn wanted(t: u8) -> bool {
    matches!(
        t,
        CLIENT_HELLO | SERVER_HELLO | ENCRYPTED_EXTENSIONS | FINISHED | KEY_UPDATE
    )
}

impl HsReader {
    /// True while a message is incomplete.
    pub fn in_message(&self) -> bool {
        self.hdr_len > 0
    }

    /// Drops any partial message (after a gap in the stream).
    pub fn reset(&mut self) {
        *self = HsReader::default();
    }

    /// Feeds handshake-record bytes; pushes each message that completes to `out`. Bodies over `limit` bytes are not kept.
    pub fn feed(&mut self, mut data: &[u8], limit: usize, out: &mut Vec<HsMessage>) {
        while !data.is_empty() {
            if self.hdr_len < 4 {
                let n = (4 - self.hdr_len).min(data.len());
                let (a, b) = data.split_at(n);
                if let Some(dst) = self.hdr.get_mut(self.hdr_len..self.hdr_len + n) {
                    dst.copy_from_slice(a);
                }
                self.hdr_len += n;
                data = b;
                if self.hdr_len < 4 {
                    return;
                }
                self.remaining = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]);
                self.keep = wanted(self.hdr[0]);
                self.over_limit = self.keep && self.remaining as usize > limit;
                if self.over_limit {
                    self.keep = false;
                }
                self.body.clear();
                if self.keep {
                    self.body.reserve(self.remaining.min(4096) as usize);
                }
            }
            let n = (self.remaining as usize).min(data.len());
            let (a, b) = data.split_at(n);
            if self.keep {
                self.body.extend_from_slice(a);
            }
            self.remaining -= n as u32;
            data = b;
            if self.remaining == 0 {
                let len = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]);
                out.push(HsMessage {
                    msg_type: self.hdr[0],
                    body: self.keep.then(|| std::mem::take(&mut self.body)),
                    over_limit: self.over_limit,
                    len,
                });
                self.hdr_len = 0;
            }
        }
    }
}
