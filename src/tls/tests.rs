//! Unit tests: RFC 8448's worked TLS 1.3 trace (§3, simple 1-RTT), the TLS
//! 1.2 PRF vectors posted to the IETF TLS list, and synthetic TLS 1.2 / 1.3
//! connections sealed with the same `ring` primitives.

use super::crypto::{self, Cipher, Hash};
use super::keylog::hex_decode;
use super::*;

fn b(h: &str) -> Vec<u8> {
    let h: String = h.split_whitespace().collect();
    hex_decode(h.as_bytes()).unwrap()
}

// RFC 8448 §3: records as sent, and the secrets the key schedule derives.
const R3_CH: &str = "16030100c4010000c00303cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7000006130113031302010000910000000b0009000006736572766572ff01000100000a00140012001d0017001800190100010101020103010400230000003300260024001d002099381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c002b0003020304000d0020001e040305030603020308040805080604010501060102010402050206020202002d00020101001c00024001";
const R3_SH: &str = "160303005a020000560303a6af06a4121860dc5e6e60249cd34c95930c8ac5cb1434dac155772ed3e2692800130100002e00330024001d0020c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f002b00020304";
const R3_SFLIGHT: &str = "17030302a2d1ff334a56f5bff6594a07cc87b580233f500f45e489e7f33af35edf7869fcf40aa40aa2b8ea73f848a7ca07612ef9f945cb960b4068905123ea78b111b429ba9191cd05d2a389280f526134aadc7fc78c4b729df828b5ecf7b13bd9aefb0e57f271585b8ea9bb355c7c79020716cfb9b1183ef3ab20e37d57a6b9d7477609aee6e122a4cf51427325250c7d0e509289444c9b3a648f1d71035d2ed65b0e3cdd0cbae8bf2d0b227812cbb360987255cc744110c453baa4fcd610928d809810e4b7ed1a8fd991f06aa6248204797e36a6a73b70a2559c09ead686945ba246ab66e5edd8044b4c6de3fcf2a89441ac66272fd8fb330ef8190579b3684596c960bd596eea520a56a8d650f563aad27409960dca63d3e688611ea5e22f4415cf9538d51a200c27034272968a264ed6540c84838d89f72c24461aad6d26f59ecaba9acbbb317b66d902f4f292a36ac1b639c637ce343117b659622245317b49eeda0c6258f100d7d961ffb138647e92ea330faeea6dfa31c7a84dc3bd7e1b7a6c7178af36879018e3f252107f243d243dc7339d5684c8b0378bf30244da8c87c843f5e56eb4c5e8280a2b48052cf93b16499a66db7cca71e4599426f7d461e66f99882bd89fc50800becca62d6c74116dbd2972fda1fa80f85df881edbe5a37668936b335583b599186dc5c6918a396fa48a181d6b6fa4f9d62d513afbb992f2b992f67f8afe67f76913fa388cb5630c8ca01e0c65d11c66a1e2ac4c85977b7c7a6999bbf10dc35ae69f5515614636c0b9b68c19ed2e31c0b3b66763038ebba42f3b38edc0399f3a9f23faa63978c317fc9fa66a73f60f0504de93b5b845e275592c12335ee340bbc4fddd502784016e4b3be7ef04dda49f4b440a30cb5d2af939828fd4ae3794e44f94df5a631ede42c1719bfdabf0253fe5175be898e750edc53370d2b";
const R3_CFIN: &str = "170303003575ec4dc238cce60b298044a71e219c56cc77b0517fe9b93c7a4bfc44d87f38f80338ac98fc46deb384bd1caeacab6867d726c40546";
const R3_NST: &str = "17030300de3a6b8f90414a97d6959c3487680de5134a2b240e6cffac116e95d41d6af8f6b580dcf3d11d63c758db289a015940252f55713e061dc13e078891a38efbcf5753ad8ef170ad3c7353d16d9da773b9ca7f2b9fa1b6c0d4a3d03f75e09c30ba1e62972ac46f75f7b981be63439b2999ce13064615139891d5e4c5b406f16e3fc181a77ca475840025db2f0a77f81b5ab05b94c01346755f69232c86519d86cbeeac87aac347d143f9605d64f650db4d023e70e952ca49fe5137121c74bc2697687e248746d6df353005f3bce18696129c8153556b3b6c6779b37bf15985684f";
const R3_CDATA: &str = "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4";
const R3_SDATA: &str = "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d";
const R3_CALERT: &str = "1703030013c9872760655666b74d7ff1153efd6db6d0b0e3";
const R3_SALERT: &str = "1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9";
const R5_HRR: &str = "16030300b0020000ac0303cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c001301000084003300020017002c0074007271dcd04bb88bc3189119398a00000000eefafc76c146b823b096f8aacad365dd0030953f4edf625636e5f21bb2e23fcc654b1b5b40318d10d137abcbb87574e36e8a1f025f7dfa5d6e50781b5eda4aa15b0c8be778257d16aa3030e9e7841dd9e4c0342267e8ca0caf571fb2b7cff0f934b0002b00020304";

const R3_RANDOM: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";
const R3_C_HS: &str = "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21";
const R3_S_HS: &str = "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38";
const R3_C_AP: &str = "9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5";
const R3_S_AP: &str = "a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643";

fn r3_keylog() -> String {
    format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {R3_RANDOM} {R3_C_HS}\n\
         SERVER_HANDSHAKE_TRAFFIC_SECRET {R3_RANDOM} {R3_S_HS}\n\
         CLIENT_TRAFFIC_SECRET_0 {R3_RANDOM} {R3_C_AP}\n\
         SERVER_TRAFFIC_SECRET_0 {R3_RANDOM} {R3_S_AP}\n"
    )
}

fn store(text: &str) -> KeyStore {
    let mut ks = KeyStore::new(KeyLogLimits::default());
    ks.feed_text(text.as_bytes(), KeySource::KeyLog(0));
    ks
}

/// What a connection produced, owned.
#[derive(Default, Debug)]
struct Got {
    plain: [Vec<u8>; 2],
    /// (side, offset, len, first_packet, last_packet)
    records: Vec<(Side, u64, usize, PacketNo, PacketNo)>,
    gaps: Vec<(Side, u64, u64)>,
    anomalies: Vec<(&'static str, String)>,
}

impl Got {
    fn names(&self) -> Vec<&'static str> {
        self.anomalies.iter().map(|a| a.0).collect()
    }
    fn sink(&mut self) -> impl FnMut(TlsEvent<'_>) + '_ {
        move |ev| match ev {
            TlsEvent::Plaintext {
                side,
                offset,
                data,
                first_packet,
                last_packet,
                ..
            } => {
                assert_eq!(
                    offset,
                    (self.plain[side.index()].len() + self.gap_bytes(side)) as u64
                );
                self.plain[side.index()].extend_from_slice(data);
                self.records
                    .push((side, offset, data.len(), first_packet, last_packet));
            }
            TlsEvent::Gap {
                side, offset, len, ..
            } => self.gaps.push((side, offset, len)),
            TlsEvent::Anomaly { anomaly, .. } => {
                self.anomalies.push((anomaly.name, anomaly.detail))
            }
        }
    }
    fn gap_bytes(&self, side: Side) -> usize {
        self.gaps
            .iter()
            .filter(|g| g.0 == side)
            .map(|g| g.2 as usize)
            .sum()
    }
}

/// Feeds `(side, record hex)` in order, each record cut into `chunk`-byte
/// chunks, one packet per chunk.
fn run(
    script: &[(Side, Vec<u8>)],
    chunk: usize,
    keys: &KeyStore,
    limits: TlsLimits,
) -> (Got, TlsConn) {
    let mut conn = TlsConn::new(limits);
    let mut got = Got::default();
    let mut offs = [0u64; 2];
    let mut packet = 0;
    {
        let mut sink = got.sink();
        for (side, bytes) in script {
            for c in bytes.chunks(chunk) {
                packet += 1;
                let meta = ChunkMeta {
                    offset: offs[side.index()],
                    seq: 0,
                    packet,
                    ts: Timestamp::new(packet as i64, 0),
                };
                conn.feed(*side, meta, c, keys, &mut sink);
                offs[side.index()] += c.len() as u64;
            }
        }
        conn.finish(keys, &mut sink);
    }
    (got, conn)
}

fn r3_script() -> Vec<(Side, Vec<u8>)> {
    use Side::*;
    vec![
        (Orig, b(R3_CH)),
        (Resp, [b(R3_SH), b(R3_SFLIGHT)].concat()),
        (Orig, b(R3_CFIN)),
        (Resp, b(R3_NST)),
        (Orig, b(R3_CDATA)),
        (Resp, b(R3_SDATA)),
        (Orig, b(R3_CALERT)),
        (Resp, b(R3_SALERT)),
    ]
}

fn zero_to_49() -> Vec<u8> {
    (0u8..50).collect()
}

#[test]
fn rfc8448_key_schedule_keys_and_ivs() {
    let mut key = [0u8; 16];
    let mut iv = [0u8; 12];
    crypto::expand_label(Hash::Sha256, &b(R3_S_HS), b"key", &[], &mut key);
    crypto::expand_label(Hash::Sha256, &b(R3_S_HS), b"iv", &[], &mut iv);
    assert_eq!(key.to_vec(), b("3fce516009c21727d0f2e4e86ee403bc"));
    assert_eq!(iv.to_vec(), b("5d313eb2671276ee13000b30"));
    crypto::expand_label(Hash::Sha256, &b(R3_C_AP), b"key", &[], &mut key);
    crypto::expand_label(Hash::Sha256, &b(R3_C_AP), b"iv", &[], &mut iv);
    assert_eq!(key.to_vec(), b("17422dda596ed5d9acd890e3c63f5051"));
    assert_eq!(iv.to_vec(), b("5b78923dee08579033e523d9"));
    crypto::expand_label(Hash::Sha256, &b(R3_S_AP), b"key", &[], &mut key);
    crypto::expand_label(Hash::Sha256, &b(R3_S_AP), b"iv", &[], &mut iv);
    assert_eq!(key.to_vec(), b("9f02283b6c9c07efc26bb9f2ac92e356"));
    assert_eq!(iv.to_vec(), b("cf782b88dd83549aadf1e984"));
}

#[test]
fn rfc8448_record_decrypts_and_reseals_identically() {
    let suite = crypto::suite(0x1301).unwrap();
    let c = Cipher::tls13(suite, &b(R3_C_AP)).unwrap();
    let rec = b(R3_CDATA);
    let header: [u8; 5] = rec[..5].try_into().unwrap();
    let mut body = rec[5..].to_vec();
    let (ct, range) = c.open_at(0, &header, &mut body).unwrap();
    assert_eq!(ct, 23);
    assert_eq!(&body[range], &zero_to_49()[..]);
    assert_eq!(c.seal_at(0, 23, &zero_to_49()), rec);
    // The same record under the wrong sequence number does not verify.
    let mut body = rec[5..].to_vec();
    assert_eq!(
        c.open_at(1, &header, &mut body),
        Err(crypto::OpenError::BadTag)
    );
}

#[test]
fn rfc8448_connection_decrypts_both_directions() {
    let keys = store(&r3_keylog());
    for chunk in [100_000, 7, 1] {
        let (got, conn) = run(&r3_script(), chunk, &keys, TlsLimits::default());
        assert_eq!(got.plain[0], zero_to_49(), "chunk {chunk}");
        assert_eq!(got.plain[1], zero_to_49(), "chunk {chunk}");
        assert!(got.anomalies.is_empty(), "{:?}", got.anomalies);
        assert!(got.gaps.is_empty());
        let info = conn.info();
        assert_eq!(info.client, Some(Side::Orig));
        assert_eq!(info.version_name(), Some("TLS 1.3"));
        assert_eq!(
            info.cipher_suite_name().as_deref(),
            Some("TLS_AES_128_GCM_SHA256")
        );
        assert_eq!(info.sni.as_deref(), Some("server"));
        assert_eq!(info.client_random_hex().as_deref(), Some(R3_RANDOM));
        assert_eq!(info.offered_suites, vec![0x1301, 0x1303, 0x1302]);
        assert_eq!(info.offered_versions, vec![0x0304]);
        assert_eq!(info.key_source, Some(KeySource::KeyLog(0)));
        assert!(info.decrypted);
        assert_eq!(conn.stats().decrypted_records, 7);
        assert_eq!(conn.verdict(), Verdict::Tls);
    }
}

#[test]
fn packets_of_a_record_spanning_chunks() {
    let keys = store(&r3_keylog());
    // One byte per packet: the client's data record is its 3rd record.
    let (got, _) = run(&r3_script(), 1, &keys, TlsLimits::default());
    let ch = b(R3_CH).len() as u64;
    let sh = (b(R3_SH).len() + b(R3_SFLIGHT).len()) as u64;
    let cfin = b(R3_CFIN).len() as u64;
    let nst = b(R3_NST).len() as u64;
    let first = ch + sh + cfin + nst + 1;
    let last = first + b(R3_CDATA).len() as u64 - 1;
    let rec = got.records.iter().find(|r| r.0 == Side::Orig).unwrap();
    assert_eq!((rec.3, rec.4), (first, last));
}

#[test]
fn corrupted_record_gives_decrypt_failed_and_a_gap_then_decryption_goes_on() {
    let keys = store(&r3_keylog());
    let mut script = r3_script();
    let mut nst = b(R3_NST);
    nst[40] ^= 1;
    script[3].1 = nst; // server seq 0 under the application keys
    let mut cdata = b(R3_CDATA);
    cdata[20] ^= 0x80;
    script[4].1 = cdata;
    let (got, conn) = run(&script, 1000, &keys, TlsLimits::default());
    assert_eq!(
        got.names(),
        vec!["tls_decrypt_failed", "tls_decrypt_failed"]
    );
    assert!(
        got.plain[0].is_empty(),
        "no plaintext from a record whose tag failed"
    );
    assert_eq!(
        got.plain[1],
        zero_to_49(),
        "the next record (seq 1) decrypts"
    );
    assert_eq!(conn.stats().failed_records, 2);
    // Both failures are reported as lost plaintext.
    assert_eq!(got.gap_bytes(Side::Orig), 50);
    assert_eq!(got.gap_bytes(Side::Resp), b(R3_NST).len() - 5 - 17);
}

#[test]
fn missing_key_gives_tls_no_key_with_sni_and_random() {
    // The connection's lines removed; another connection's line present.
    let other = format!("CLIENT_RANDOM {} {}\n", "00".repeat(32), "11".repeat(48));
    let keys = store(&other);
    for max_pending in [0, 1 << 20] {
        let limits = TlsLimits {
            max_pending,
            ..Default::default()
        };
        let (got, conn) = run(&r3_script(), 100_000, &keys, limits);
        assert_eq!(got.names(), vec!["tls_no_key"], "pending {max_pending}");
        let detail = &got.anomalies[0].1;
        assert!(detail.contains("SNI server"), "{detail}");
        assert!(detail.contains(R3_RANDOM), "{detail}");
        assert!(got.plain.iter().all(|p| p.is_empty()));
        assert_eq!(conn.stats().decrypted_records, 0);
        assert!(conn.stats().undecrypted_bytes > 700, "{:?}", conn.stats());
    }
}

#[test]
fn only_handshake_secrets_decrypt_the_handshake_but_not_the_data() {
    let text: String = r3_keylog()
        .lines()
        .take(2)
        .map(|l| format!("{l}\n"))
        .collect();
    let keys = store(&text);
    let (got, conn) = run(&r3_script(), 100_000, &keys, TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_no_key"]);
    assert_eq!(conn.stats().decrypted_records, 2); // both Finished flights
}

#[test]
fn ciphertext_waits_for_a_key_that_arrives_later() {
    let mut keys = store("");
    let mut conn = TlsConn::new(TlsLimits::default());
    let mut got = Got::default();
    let mut off = [0u64; 2];
    {
        let mut sink = got.sink();
        for (i, (side, bytes)) in r3_script().into_iter().enumerate() {
            let meta = ChunkMeta {
                offset: off[side.index()],
                seq: 0,
                packet: i as u64 + 1,
                ts: Timestamp::default(),
            };
            conn.feed(side, meta, &bytes, &keys, &mut sink);
            off[side.index()] += bytes.len() as u64;
        }
    }
    assert!(got.plain.iter().all(|p| p.is_empty()));
    assert!(conn.stats().pending_peak > 0);
    assert!(conn.waiting_for_key());
    assert!(conn.heap_bytes() >= conn.stats().pending_peak);
    keys.feed_text(r3_keylog().as_bytes(), KeySource::KeyLog(0));
    {
        let mut sink = got.sink();
        conn.retry_keys(&keys, &mut sink);
        conn.finish(&keys, &mut sink);
    }
    assert_eq!(got.plain[0], zero_to_49());
    assert_eq!(got.plain[1], zero_to_49());
    assert!(got.anomalies.is_empty(), "{:?}", got.anomalies);
    assert!(!conn.waiting_for_key());
}

#[test]
fn pending_limit_gives_limit_and_no_key() {
    let keys = store("");
    let limits = TlsLimits {
        max_pending: 100,
        ..Default::default()
    };
    let (got, _) = run(&r3_script(), 100_000, &keys, limits);
    assert_eq!(got.names(), vec!["tls_limit_pending", "tls_no_key"]);
}

#[test]
fn truncated_record_at_end_outputs_nothing_of_it() {
    let keys = store(&r3_keylog());
    let mut script = r3_script();
    script.truncate(5);
    let cut = script[4].1.len() - 3;
    script[4].1.truncate(cut);
    let (got, _) = run(&script, 9, &keys, TlsLimits::default());
    assert!(got.plain[0].is_empty());
    assert!(got.anomalies.is_empty(), "{:?}", got.anomalies);
    // Reported as lost: the declared 67 bytes less tag and content type.
    assert_eq!(got.gaps, vec![(Side::Orig, 0, 50)]);
}

#[test]
fn resync_after_a_tcp_gap_trial_decrypts_the_next_sequence_number() {
    let keys = store(&r3_keylog());
    let mut conn = TlsConn::new(TlsLimits::default());
    let mut got = Got::default();
    let script = r3_script();
    let mut off = [0u64; 2];
    {
        let mut sink = got.sink();
        for (i, (side, bytes)) in script.iter().enumerate() {
            let meta = ChunkMeta {
                offset: off[side.index()],
                seq: 0,
                packet: i as u64 + 1,
                ts: Timestamp::default(),
            };
            if i == 3 {
                // The NewSessionTicket lost, but for its last 10 bytes.
                let lost = bytes.len() - 10;
                conn.gap(
                    *side,
                    off[side.index()],
                    lost as u64,
                    meta.packet,
                    meta.ts,
                    &mut sink,
                );
                let m = ChunkMeta {
                    offset: meta.offset + lost as u64,
                    ..meta
                };
                conn.feed(*side, m, &bytes[lost..], &keys, &mut sink);
            } else {
                conn.feed(*side, meta, bytes, &keys, &mut sink);
            }
            off[side.index()] += bytes.len() as u64;
        }
        conn.finish(&keys, &mut sink);
    }
    assert_eq!(got.names(), vec!["tls_resync"]);
    assert_eq!(
        got.plain[1],
        zero_to_49(),
        "record seq 1 found after the gap"
    );
    assert_eq!(got.plain[0], zero_to_49());
    assert_eq!(got.gaps.len(), 1);
    assert_eq!(got.gaps[0].0, Side::Resp);
}

#[test]
fn malformed_record_header_resyncs() {
    let keys = store(&r3_keylog());
    let mut script = r3_script();
    // Garbage between the client's Finished and its data record.
    script[2]
        .1
        .extend_from_slice(&[0x99, 0x03, 0x03, 0x00, 0x01, 0xff]);
    let (got, _) = run(&script, 100_000, &keys, TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_record_malformed", "tls_resync"]);
    assert_eq!(got.plain[0], zero_to_49());
}

#[test]
fn not_tls_is_decided_at_once_and_gives_the_bytes_back() {
    let keys = store("");
    let mut conn = TlsConn::new(TlsLimits::default());
    let mut sink = |_: TlsEvent<'_>| panic!("no event expected");
    let m = ChunkMeta {
        offset: 0,
        seq: 1,
        packet: 1,
        ts: Timestamp::default(),
    };
    assert_eq!(
        conn.feed(Side::Orig, m, b"GE", &keys, &mut sink),
        Verdict::NotTls
    );
    assert_eq!(conn.take_undecided(), vec![(Side::Orig, m, b"GE".to_vec())]);
    // Five bytes that look like a record header, and then not a ClientHello.
    let mut conn = TlsConn::new(TlsLimits::default());
    assert_eq!(
        conn.feed(Side::Orig, m, &[0x16, 3, 1], &keys, &mut sink),
        Verdict::Undecided
    );
    assert_eq!(sniff(&[0x16, 3, 1, 0, 0, 1]).0, Verdict::NotTls);
    assert_eq!(sniff(b"HTTP/1.1 101").0, Verdict::NotTls);
    assert_eq!(sniff(&b(R3_CH)[..6]), (Verdict::Tls, true));
}

#[test]
fn midstream_tls_is_named() {
    let keys = store(&r3_keylog());
    let script = vec![(Side::Orig, b(R3_CDATA)), (Side::Resp, b(R3_SDATA))];
    let (got, conn) = run(&script, 100_000, &keys, TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_midstream"]);
    assert_eq!(conn.verdict(), Verdict::Tls);
}

#[test]
fn hello_retry_request_is_recognised() {
    let rec = b(R5_HRR);
    let sh = handshake::parse_server_hello(&rec[9..]).unwrap();
    assert!(sh.hello_retry);
    assert_eq!(sh.version, 0x0304);
    assert_eq!(sh.cipher_suite, 0x1301);
}

#[test]
fn tls12_prf_vectors() {
    let mut out = [0u8; 100];
    crypto::prf(
        Hash::Sha256,
        &b("9bbe436ba940f017b17652849a71db35"),
        b"test label",
        &[&b("a0ba9f936cda311827a6f796ffd5198c")],
        &mut out,
    );
    assert_eq!(out.to_vec(), b("e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff70187347b66"));
    let mut out = [0u8; 148];
    crypto::prf(
        Hash::Sha384,
        &b("b80b733d6ceefcdc71566ea48e5567df"),
        b"test label",
        &[&b("cd665cf6a8447dd6ff8b27555edb7465")],
        &mut out,
    );
    assert_eq!(out.to_vec(), b("7b0c18e9ced410ed1804f2cfa34a336a1c14dffb4900bb5fd7942107e81c83cde9ca0faa60be9fe34f82b1233c9146a0e534cb400fed2700884f9dc236f80edd8bfa961144c9e8d792eca722a7b32fc3d416d473ebc2c5fd4abfdad05d9184259b5bf8cd4d90fa0d31e2dec479e4f1a26066f2eea9a69236a3e52655c9e9aee691c8f3a26854308d5eaa3be85e0990703d73e56f"));
}

// ---- synthetic connections -------------------------------------------------

fn hs_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![msg_type, 0, (body.len() >> 8) as u8, body.len() as u8];
    m.extend_from_slice(body);
    let mut r = vec![22, 3, 3, (m.len() >> 8) as u8, m.len() as u8];
    r.extend_from_slice(&m);
    r
}

fn client_hello(random: &[u8; 32], alpn: &str) -> Vec<u8> {
    client_hello_with(random, alpn, &[])
}

/// A ClientHello with `extra` appended to its extensions.
fn client_hello_with(random: &[u8; 32], alpn: &str, extra: &[u8]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(random);
    b.push(0); // session id
    b.extend_from_slice(&[0, 4, 0xc0, 0x2f, 0xcc, 0xa8]);
    b.extend_from_slice(&[1, 0]); // null compression
    let mut ext = Vec::new();
    let name = b"example.test";
    let sni_len = name.len() + 3;
    ext.extend_from_slice(&[
        0,
        0,
        0,
        (sni_len + 2) as u8,
        0,
        sni_len as u8,
        0,
        0,
        name.len() as u8,
    ]);
    ext.extend_from_slice(name);
    ext.extend_from_slice(&[
        0,
        16,
        0,
        (alpn.len() + 3) as u8,
        0,
        (alpn.len() + 1) as u8,
        alpn.len() as u8,
    ]);
    ext.extend_from_slice(alpn.as_bytes());
    ext.extend_from_slice(extra);
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    hs_record(1, &b)
}

fn server_hello(
    random: &[u8; 32],
    suite: u16,
    version_ext: Option<u16>,
    alpn: Option<&str>,
) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(random);
    b.push(0);
    b.extend_from_slice(&suite.to_be_bytes());
    b.push(0);
    let mut ext = Vec::new();
    if let Some(v) = version_ext {
        ext.extend_from_slice(&[0, 43, 0, 2]);
        ext.extend_from_slice(&v.to_be_bytes());
    }
    if let Some(a) = alpn {
        ext.extend_from_slice(&[
            0,
            16,
            0,
            (a.len() + 3) as u8,
            0,
            (a.len() + 1) as u8,
            a.len() as u8,
        ]);
        ext.extend_from_slice(a.as_bytes());
    }
    b.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    b.extend_from_slice(&ext);
    hs_record(2, &b)
}

fn tls12_connection(suite_id: u16) {
    let cr = [0x42u8; 32];
    let sr = [0x24u8; 32];
    let master = [0x77u8; 48];
    let suite = crypto::suite(suite_id).unwrap();
    let (cw, sw) = Cipher::tls12_pair(suite, &master, &cr, &sr).unwrap();
    let keys = store(&format!("CLIENT_RANDOM {} {}\n", hex(&cr), hex(&master)));
    let ccs = vec![20, 3, 3, 0, 1, 1];
    let fin = [20u8, 0, 0, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    let big: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
    let mut c2s = [
        client_hello(&cr, "http/1.1"),
        ccs.clone(),
        cw.seal_at(0, 22, &fin),
    ]
    .concat();
    let mut expect_c = Vec::new();
    for (i, piece) in big.chunks(16384).enumerate() {
        c2s.extend_from_slice(&cw.seal_at(i as u64 + 1, 23, piece));
        expect_c.extend_from_slice(piece);
    }
    let s2c = [
        server_hello(&sr, suite_id, None, Some("http/1.1")),
        ccs,
        sw.seal_at(0, 22, &fin),
        sw.seal_at(1, 23, b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
    ]
    .concat();
    let ch_len = client_hello(&cr, "http/1.1").len();
    let script = vec![
        (Side::Orig, c2s[..ch_len].to_vec()),
        (Side::Resp, s2c),
        (Side::Orig, c2s[ch_len..].to_vec()),
    ];
    for chunk in [1460, 3] {
        let (got, conn) = run(&script, chunk, &keys, TlsLimits::default());
        assert!(got.anomalies.is_empty(), "{:?}", got.anomalies);
        assert_eq!(got.plain[0], expect_c);
        assert_eq!(got.plain[1], b"HTTP/1.1 101 Switching Protocols\r\n\r\n");
        assert_eq!(conn.info().version_name(), Some("TLS 1.2"));
        assert_eq!(conn.info().cipher_suite_name().as_deref(), Some(suite.name));
        assert_eq!(conn.info().alpn.as_deref(), Some("http/1.1"));
        assert_eq!(conn.info().sni.as_deref(), Some("example.test"));
    }
}

#[test]
fn tls12_ecdhe_rsa_aes128_gcm() {
    tls12_connection(0xc02f);
}

#[test]
fn tls12_chacha20_poly1305() {
    tls12_connection(0xcca8);
}

#[test]
fn tls12_aes256_gcm_sha384() {
    tls12_connection(0xc030);
}

#[test]
fn tls12_cbc_suite_is_unsupported_and_h2_is_named() {
    let cr = [1u8; 32];
    let script = vec![
        (Side::Orig, client_hello(&cr, "h2")),
        (Side::Resp, server_hello(&[2; 32], 0xc013, None, Some("h2"))),
    ];
    let (got, _) = run(&script, 100, &store(""), TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_alpn_h2", "tls_unsupported"]);
    assert!(got.anomalies[1]
        .1
        .contains("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"));
}

/// TLS 1.3 with synthetic secrets: each suite, a KeyUpdate, and padding.
fn tls13_connection(suite_id: u16) {
    let suite = crypto::suite(suite_id).unwrap();
    let hl = suite.hash.output_len();
    let cr = [0x5au8; 32];
    let secrets: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; hl]).collect();
    let keys = store(&format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
        hex(&secrets[0]), hex(&secrets[1]), hex(&secrets[2]), hex(&secrets[3]), r = hex(&cr)
    ));
    let c = |i: usize| Cipher::tls13(suite, &secrets[i]).unwrap();
    let fin = vec![20u8, 0, 0, hl as u8]
        .into_iter()
        .chain(std::iter::repeat(9).take(hl))
        .collect::<Vec<u8>>();
    let ee = [8u8, 0, 0, 11, 0, 9, 0, 16, 0, 5, 0, 3, 2, b'h', b'2'];
    let ccs = vec![20, 3, 3, 0, 1, 1];
    let c2s = [
        client_hello(&cr, "h2"),
        ccs.clone(),
        c(0).seal_at(0, 22, &fin),
        c(2).seal_at(0, 23, b"hello"),
        c(2).seal_at(1, 22, &[24, 0, 0, 1, 0]),
    ]
    .concat();
    let next = crypto::next_traffic_secret(suite.hash, &secrets[2]);
    let c_next = Cipher::tls13(suite, &next).unwrap();
    let mut padded = b" world".to_vec();
    padded.push(23);
    padded.extend_from_slice(&[0; 20]);
    // A padded record: `seal_at` appends the content type byte, here the last 0 of the padding.
    let c2s = [
        c2s,
        c_next.seal_at(0, 23, b"after update"),
        c_next.seal_at(1, 0, &padded[..padded.len() - 1]),
    ]
    .concat();
    let s2c = [
        server_hello(&[0xa5; 32], suite_id, Some(0x0304), None),
        ccs,
        c(1).seal_at(0, 22, &[ee.to_vec(), fin.clone()].concat()),
        c(3).seal_at(0, 23, b"HTTP/1.1 101 OK\r\n\r\n"),
    ]
    .concat();
    let ch_len = client_hello(&cr, "h2").len();
    let script = vec![
        (Side::Orig, c2s[..ch_len].to_vec()),
        (Side::Resp, s2c),
        (Side::Orig, c2s[ch_len..].to_vec()),
    ];
    let (got, conn) = run(&script, 500, &keys, TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_alpn_h2"]);
    assert_eq!(got.plain[0], b"helloafter update world");
    assert_eq!(got.plain[1], b"HTTP/1.1 101 OK\r\n\r\n");
    assert_eq!(conn.info().alpn.as_deref(), Some("h2"));
    assert_eq!(conn.info().cipher_suite_name().as_deref(), Some(suite.name));
}

#[test]
fn tls13_aes128_gcm_key_update_padding() {
    tls13_connection(0x1301);
}

#[test]
fn tls13_aes256_gcm_sha384() {
    tls13_connection(0x1302);
}

#[test]
fn tls13_chacha20() {
    tls13_connection(0x1303);
}

#[test]
fn wrong_length_secret_is_bad_key() {
    let suite = crypto::suite(0x1302).unwrap();
    assert!(Cipher::tls13(suite, &[1u8; 32]).is_none());
}

#[test]
fn arbitrary_bytes_never_panic() {
    let keys = store(&r3_keylog());
    let mut seed = 0x1234_5678u64;
    for n in 0..300 {
        let mut script = r3_script();
        // Flip some bytes anywhere, truncate some records.
        for (_, rec) in script.iter_mut() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let i = (seed >> 33) as usize % rec.len();
            rec[i] ^= (seed >> 13) as u8 | 1;
            if n % 3 == 0 {
                let cut = (seed >> 40) as usize % rec.len();
                rec.truncate(cut.max(1));
            }
        }
        let _ = run(&script, 1 + n % 17, &keys, TlsLimits::default());
    }
}

#[test]
fn lost_server_hello_names_the_records_once_per_direction() {
    let keys = store(&r3_keylog());
    let mut script = r3_script();
    script[1].1 = b(R3_SFLIGHT); // the ServerHello never arrived
    let (got, conn) = run(&script, 100_000, &keys, TlsLimits::default());
    let n = got
        .names()
        .iter()
        .filter(|n| **n == "tls_unexpected_record")
        .count();
    assert_eq!(n, 4, "{:?}", got.anomalies); // first of each direction, then a summary of each
    assert_eq!(got.names().len(), 4);
    assert_eq!(conn.stats().unexpected_records, 7);
    assert!(got.plain.iter().all(|p| p.is_empty()));
}

struct Tls13Keys {
    suite: &'static crypto::Suite,
    keys: KeyStore,
    secrets: Vec<Vec<u8>>,
}

fn tls13_keys(cr: &[u8; 32]) -> Tls13Keys {
    let suite = crypto::suite(0x1301).unwrap();
    let secrets: Vec<Vec<u8>> = (1..=4u8).map(|i| vec![i; 32]).collect();
    let keys = store(&format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {}\nSERVER_HANDSHAKE_TRAFFIC_SECRET {r} {}\nCLIENT_TRAFFIC_SECRET_0 {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n",
        hex(&secrets[0]),
        hex(&secrets[1]),
        hex(&secrets[2]),
        hex(&secrets[3]),
        r = hex(cr)
    ));
    Tls13Keys {
        suite,
        keys,
        secrets,
    }
}

impl Tls13Keys {
    fn c(&self, i: usize) -> Cipher {
        Cipher::tls13(self.suite, &self.secrets[i]).unwrap()
    }
}

const FIN32: [u8; 36] = {
    let mut f = [9u8; 36];
    f[0] = 20;
    f[1] = 0;
    f[2] = 0;
    f[3] = 32;
    f
};

#[test]
fn zero_rtt_early_data_is_named_and_skipped() {
    let cr = [0x33u8; 32];
    let k = tls13_keys(&cr);
    let early = Cipher::tls13(k.suite, &[0x99; 32]).unwrap();
    let c2s_1 = [
        client_hello_with(&cr, "http/1.1", &[0, 42, 0, 0]),
        early.seal_at(0, 23, b"GET /early HTTP/1.1\r\n\r\n"),
    ]
    .concat();
    let s2c = [
        server_hello(&[7; 32], 0x1301, Some(0x0304), None),
        k.c(1)
            .seal_at(0, 22, &[&[8u8, 0, 0, 2, 0, 0][..], &FIN32].concat()),
        k.c(3).seal_at(0, 23, b"HTTP/1.1 101 OK\r\n\r\n"),
    ]
    .concat();
    // One more early record arrives after the ServerHello: it fails under the handshake keys and is skipped.
    let c2s_2 = [
        early.seal_at(1, 23, b"more early data"),
        k.c(0).seal_at(0, 22, &FIN32),
        k.c(2).seal_at(0, 23, b"GET / HTTP/1.1\r\n\r\n"),
    ]
    .concat();
    let script = vec![(Side::Orig, c2s_1), (Side::Resp, s2c), (Side::Orig, c2s_2)];
    let (got, conn) = run(&script, 1000, &k.keys, TlsLimits::default());
    assert_eq!(got.names(), vec!["tls_unsupported"], "{:?}", got.anomalies);
    assert!(got.anomalies[0].1.contains("0-RTT"));
    assert_eq!(got.plain[0], b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(got.plain[1], b"HTTP/1.1 101 OK\r\n\r\n");
    assert_eq!(conn.stats().early_data_records, 2);
    assert_eq!(got.gaps.iter().filter(|g| g.0 == Side::Orig).count(), 2);
}

#[test]
fn hello_retry_request_then_second_client_hello_decrypts() {
    let cr = [0x44u8; 32];
    let k = tls13_keys(&cr);
    let ccs = vec![20, 3, 3, 0, 1, 1];
    let script = vec![
        (Side::Orig, client_hello(&cr, "http/1.1")),
        (
            Side::Resp,
            [
                server_hello(&handshake::HRR_RANDOM, 0x1301, Some(0x0304), None),
                ccs.clone(),
            ]
            .concat(),
        ),
        (Side::Orig, [ccs, client_hello(&cr, "http/1.1")].concat()),
        (
            Side::Resp,
            [
                server_hello(&[8; 32], 0x1301, Some(0x0304), None),
                k.c(1)
                    .seal_at(0, 22, &[&[8u8, 0, 0, 2, 0, 0][..], &FIN32].concat()),
                k.c(3).seal_at(0, 23, b"s2c"),
            ]
            .concat(),
        ),
        (
            Side::Orig,
            [k.c(0).seal_at(0, 22, &FIN32), k.c(2).seal_at(0, 23, b"c2s")].concat(),
        ),
    ];
    let (got, conn) = run(&script, 1000, &k.keys, TlsLimits::default());
    assert!(got.anomalies.is_empty(), "{:?}", got.anomalies);
    assert!(conn.info().hello_retry);
    assert_eq!(got.plain, [b"c2s".to_vec(), b"s2c".to_vec()]);
}

#[test]
fn finished_lost_in_a_gap_switches_to_the_application_keys() {
    let cr = [0x55u8; 32];
    let k = tls13_keys(&cr);
    let mut conn = TlsConn::new(TlsLimits::default());
    let mut got = Got::default();
    {
        let mut sink = got.sink();
        let m = |offset: u64, packet: u64| ChunkMeta {
            offset,
            seq: 0,
            packet,
            ts: Timestamp::default(),
        };
        let ch = client_hello(&cr, "x");
        conn.feed(Side::Orig, m(0, 1), &ch, &k.keys, &mut sink);
        let sh = server_hello(&[8; 32], 0x1301, Some(0x0304), None);
        let flight = k
            .c(1)
            .seal_at(0, 22, &[&[8u8, 0, 0, 2, 0, 0][..], &FIN32].concat());
        conn.feed(
            Side::Resp,
            m(0, 2),
            &[sh.clone(), flight].concat(),
            &k.keys,
            &mut sink,
        );
        // The client's Finished record is lost whole.
        let fin = k.c(0).seal_at(0, 22, &FIN32);
        conn.gap(
            Side::Orig,
            ch.len() as u64,
            fin.len() as u64,
            3,
            Timestamp::default(),
            &mut sink,
        );
        let data = k.c(2).seal_at(0, 23, b"after the lost Finished");
        conn.feed(
            Side::Orig,
            m((ch.len() + fin.len()) as u64, 4),
            &data,
            &k.keys,
            &mut sink,
        );
        conn.finish(&k.keys, &mut sink);
    }
    assert_eq!(got.plain[0], b"after the lost Finished");
    assert_eq!(got.names(), vec!["tls_resync"]);
}
