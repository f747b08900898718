//! Cipher suites, key schedules and record protection, all with `ring`:
//! TLS 1.3 (RFC 8446 §7) from the logged traffic secrets, TLS 1.2 (RFC 5246
//! §6.3, RFC 5288, RFC 7905) from the logged master secret.

use ring::{aead, hkdf, hmac};

/// Hash of a cipher suite's key schedule (HKDF in TLS 1.3, the PRF in TLS 1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hash {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
}

impl Hash {
    /// Digest length in bytes (32 or 48).
    pub fn output_len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
        }
    }
    fn hkdf(self) -> hkdf::Algorithm {
        match self {
            Hash::Sha256 => hkdf::HKDF_SHA256,
            Hash::Sha384 => hkdf::HKDF_SHA384,
        }
    }
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Hash::Sha256 => hmac::HMAC_SHA256,
            Hash::Sha384 => hmac::HMAC_SHA384,
        }
    }
}

/// Record protection algorithm of a cipher suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aead {
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

impl Aead {
    fn ring(self) -> &'static aead::Algorithm {
        match self {
            Aead::Aes128Gcm => &aead::AES_128_GCM,
            Aead::Aes256Gcm => &aead::AES_256_GCM,
            Aead::Chacha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
    /// Key length in bytes (16 or 32).
    pub fn key_len(self) -> usize {
        match self {
            Aead::Aes128Gcm => 16,
            Aead::Aes256Gcm | Aead::Chacha20Poly1305 => 32,
        }
    }
    /// TLS 1.2: bytes of the IV that come from the key block (RFC 5288: a
    /// 4-byte salt, the other 8 travel in each record; RFC 7905: all 12).
    fn tls12_fixed_iv_len(self) -> usize {
        match self {
            Aead::Aes128Gcm | Aead::Aes256Gcm => 4,
            Aead::Chacha20Poly1305 => 12,
        }
    }
    /// TLS 1.2: bytes of explicit nonce at the start of each record.
    fn tls12_explicit_len(self) -> usize {
        match self {
            Aead::Aes128Gcm | Aead::Aes256Gcm => 8,
            Aead::Chacha20Poly1305 => 0,
        }
    }
}

/// Bytes of the authentication tag at the end of every protected record.
pub const TAG_LEN: usize = 16;

/// A cipher suite this stage can decrypt.
#[derive(Debug, PartialEq, Eq)]
pub struct Suite {
    /// IANA cipher suite id.
    pub id: u16,
    /// IANA name (`"TLS_AES_128_GCM_SHA256"`).
    pub name: &'static str,
    /// Its record protection.
    pub aead: Aead,
    /// Its key schedule hash.
    pub hash: Hash,
    /// A TLS 1.3 suite (else TLS 1.2).
    pub tls13: bool,
}

macro_rules! suites {
    ($($id:expr, $name:expr, $aead:ident, $hash:ident, $t13:expr;)*) => {
        /// Every suite this stage decrypts.
        pub static SUITES: &[Suite] = &[
            $(Suite { id: $id, name: $name, aead: Aead::$aead, hash: Hash::$hash, tls13: $t13 },)*
        ];
    };
}

suites! {
    0x1301, "TLS_AES_128_GCM_SHA256", Aes128Gcm, Sha256, true;
    0x1302, "TLS_AES_256_GCM_SHA384", Aes256Gcm, Sha384, true;
    0x1303, "TLS_CHACHA20_POLY1305_SHA256", Chacha20Poly1305, Sha256, true;
    0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256, false;
    0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384, false;
    0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256, false;
    0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384, false;
    0x009c, "TLS_RSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256, false;
    0x009d, "TLS_RSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384, false;
    0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", Aes128Gcm, Sha256, false;
    0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", Aes256Gcm, Sha384, false;
    0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Chacha20Poly1305, Sha256, false;
    0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", Chacha20Poly1305, Sha256, false;
    0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", Chacha20Poly1305, Sha256, false;
}

/// The decryptable suite with IANA id `id`; `None` if not decrypted by this stage.
pub fn suite(id: u16) -> Option<&'static Suite> {
    SUITES.iter().find(|s| s.id == id)
}

/// A name for a suite this stage does not decrypt (for `tls_unsupported`).
pub fn unsupported_suite_name(id: u16) -> String {
    let known = match id {
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        _ => "",
    };
    if known.is_empty() {
        format!("0x{id:04x}")
    } else {
        format!("{known} (0x{id:04x})")
    }
}

struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-Expand-Label (RFC 8446 §7.1) into `out`.
pub fn expand_label(hash: Hash, secret: &[u8], label: &[u8], context: &[u8], out: &mut [u8]) {
    let prk = hkdf::Prk::new_less_safe(hash.hkdf(), secret);
    let len = (out.len() as u16).to_be_bytes();
    let label_len = [(6 + label.len()) as u8];
    let ctx_len = [context.len() as u8];
    let info: [&[u8]; 6] = [&len, &label_len, b"tls13 ", label, &ctx_len, context];
    // `expand` only fails for an output over 255 hash lengths; ours are at most 48 bytes.
    let ok = prk
        .expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out));
    debug_assert!(ok.is_ok());
}

/// The next application traffic secret after a KeyUpdate (RFC 8446 §7.2).
pub fn next_traffic_secret(hash: Hash, secret: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; hash.output_len()];
    expand_label(hash, secret, b"traffic upd", &[], &mut out);
    out
}

/// TLS 1.2 PRF (RFC 5246 §5): P_hash(secret, label + seed).
pub fn prf(hash: Hash, secret: &[u8], label: &[u8], seed: &[&[u8]], out: &mut [u8]) {
    let key = hmac::Key::new(hash.hmac(), secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(label);
    for s in seed {
        ctx.update(s);
    }
    let mut a = ctx.sign(); // A(1)
    let mut filled = 0;
    while filled < out.len() {
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(a.as_ref());
        ctx.update(label);
        for s in seed {
            ctx.update(s);
        }
        let block = ctx.sign();
        let n = (out.len() - filled).min(block.as_ref().len());
        if let (Some(dst), Some(src)) = (out.get_mut(filled..filled + n), block.as_ref().get(..n)) {
            dst.copy_from_slice(src);
        }
        filled += n;
        a = hmac::sign(&key, a.as_ref());
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Tls13,
    Tls12,
}

/// The read protection of one direction: key, IV and record sequence number.
pub struct Cipher {
    key: aead::LessSafeKey,
    iv: [u8; 12],
    aead: Aead,
    kind: Kind,
    /// Sequence number of the next record.
    pub seq: u64,
}

/// Why a record did not decrypt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Shorter than the tag (and explicit nonce).
    TooShort,
    /// The authentication tag did not verify.
    BadTag,
    /// TLS 1.3: the inner plaintext is all padding (no content type).
    NoContentType,
}

impl Cipher {
    /// TLS 1.3 read keys from a traffic secret. `None` if the secret does
    /// not have the suite's hash length.
    pub fn tls13(suite: &Suite, secret: &[u8]) -> Option<Cipher> {
        if secret.len() != suite.hash.output_len() {
            return None;
        }
        let mut key = [0u8; 32];
        let key = key.get_mut(..suite.aead.key_len())?;
        expand_label(suite.hash, secret, b"key", &[], key);
        let mut iv = [0u8; 12];
        expand_label(suite.hash, secret, b"iv", &[], &mut iv);
        Some(Cipher {
            key: aead::LessSafeKey::new(aead::UnboundKey::new(suite.aead.ring(), key).ok()?),
            iv,
            aead: suite.aead,
            kind: Kind::Tls13,
            seq: 0,
        })
    }

    /// TLS 1.2 read keys of both directions from the master secret:
    /// `(client_write, server_write)`.
    pub fn tls12_pair(
        suite: &Suite,
        master: &[u8],
        client_random: &[u8; 32],
        server_random: &[u8; 32],
    ) -> Option<(Cipher, Cipher)> {
        if master.len() != 48 {
            return None;
        }
        let kl = suite.aead.key_len();
        let il = suite.aead.tls12_fixed_iv_len();
        // AEAD suites have no MAC keys: client key, server key, client IV, server IV.
        let mut block = [0u8; 2 * 32 + 2 * 12];
        let block = block.get_mut(..2 * kl + 2 * il)?;
        prf(
            suite.hash,
            master,
            b"key expansion",
            &[server_random, client_random],
            block,
        );
        let make = |key: &[u8], fixed: &[u8]| -> Option<Cipher> {
            let mut iv = [0u8; 12];
            iv.get_mut(..fixed.len())?.copy_from_slice(fixed);
            Some(Cipher {
                key: aead::LessSafeKey::new(aead::UnboundKey::new(suite.aead.ring(), key).ok()?),
                iv,
                aead: suite.aead,
                kind: Kind::Tls12,
                seq: 0,
            })
        };
        let ck = block.get(..kl)?;
        let sk = block.get(kl..2 * kl)?;
        let civ = block.get(2 * kl..2 * kl + il)?;
        let siv = block.get(2 * kl + il..)?;
        Some((make(ck, civ)?, make(sk, siv)?))
    }

    /// Bytes a record body carries beyond its plaintext (TLS 1.3: without
    /// the inner content type and padding).
    pub fn overhead(&self) -> usize {
        match self.kind {
            Kind::Tls13 => TAG_LEN + 1,
            Kind::Tls12 => TAG_LEN + self.aead.tls12_explicit_len(),
        }
    }

    fn nonce(&self, seq: u64, explicit: Option<&[u8]>) -> aead::Nonce {
        let mut n = self.iv;
        match explicit {
            Some(e) => {
                if let Some(dst) = n.get_mut(4..) {
                    if dst.len() == e.len() {
                        dst.copy_from_slice(e);
                    }
                }
            }
            None => {
                for (b, s) in n.iter_mut().skip(4).zip(seq.to_be_bytes()) {
                    *b ^= s;
                }
            }
        }
        aead::Nonce::assume_unique_for_key(n)
    }

    /// Decrypts one record body in place with sequence number `seq` (the
    /// cipher's own `seq` is not touched). Returns the content type and the
    /// plaintext's range in `body`.
    pub fn open_at(
        &self,
        seq: u64,
        header: &[u8; 5],
        body: &mut [u8],
    ) -> Result<(u8, std::ops::Range<usize>), OpenError> {
        match self.kind {
            Kind::Tls13 => {
                if body.len() < TAG_LEN + 1 {
                    return Err(OpenError::TooShort);
                }
                let nonce = self.nonce(seq, None);
                let pt = self
                    .key
                    .open_in_place(nonce, aead::Aad::from(*header), body)
                    .map_err(|_| OpenError::BadTag)?;
                // The content type is the last non-zero byte; zeros after it are padding.
                let end = pt
                    .iter()
                    .rposition(|b| *b != 0)
                    .ok_or(OpenError::NoContentType)?;
                let ct = pt.get(end).copied().ok_or(OpenError::NoContentType)?;
                Ok((ct, 0..end))
            }
            Kind::Tls12 => {
                let ex = self.aead.tls12_explicit_len();
                if body.len() < TAG_LEN + ex {
                    return Err(OpenError::TooShort);
                }
                let plen = body.len() - TAG_LEN - ex;
                let nonce = self.nonce(seq, if ex > 0 { body.get(..ex) } else { None });
                let mut aad = [0u8; 13];
                aad[..8].copy_from_slice(&seq.to_be_bytes());
                aad[8..11].copy_from_slice(&header[..3]);
                aad[11..].copy_from_slice(&(plen as u16).to_be_bytes());
                let pt = self
                    .key
                    .open_within(nonce, aead::Aad::from(aad), body, ex..)
                    .map_err(|_| OpenError::BadTag)?;
                Ok((header[0], 0..pt.len()))
            }
        }
    }

    /// Encrypts (tests and benches only): the record body for `plaintext`.
    #[doc(hidden)]
    pub fn seal_at(&self, seq: u64, content_type: u8, plaintext: &[u8]) -> Vec<u8> {
        let mut body;
        let header;
        match self.kind {
            Kind::Tls13 => {
                body = plaintext.to_vec();
                body.push(content_type);
                let len = (body.len() + TAG_LEN) as u16;
                header = [0x17, 3, 3, (len >> 8) as u8, len as u8];
                let tag = self.key.seal_in_place_separate_tag(
                    self.nonce(seq, None),
                    aead::Aad::from(header),
                    &mut body,
                );
                if let Ok(t) = tag {
                    body.extend_from_slice(t.as_ref());
                }
                let mut rec = header.to_vec();
                rec.extend_from_slice(&body);
                rec
            }
            Kind::Tls12 => {
                let ex = self.aead.tls12_explicit_len();
                let explicit = seq.wrapping_add(0x1234_5678_9abc).to_be_bytes();
                let mut aad = [0u8; 13];
                aad[..8].copy_from_slice(&seq.to_be_bytes());
                aad[8..11].copy_from_slice(&[content_type, 3, 3]);
                aad[11..].copy_from_slice(&(plaintext.len() as u16).to_be_bytes());
                body = plaintext.to_vec();
                let nonce = self.nonce(seq, if ex > 0 { Some(&explicit[..]) } else { None });
                let tag =
                    self.key
                        .seal_in_place_separate_tag(nonce, aead::Aad::from(aad), &mut body);
                if let Ok(t) = tag {
                    body.extend_from_slice(t.as_ref());
                }
                let len = (body.len() + ex) as u16;
                let mut rec = vec![content_type, 3, 3, (len >> 8) as u8, len as u8];
                rec.extend_from_slice(&explicit[..ex]);
                rec.extend_from_slice(&body);
                rec
            }
        }
    }
}
