//! The tls stage over arbitrary bytes from both sides, split by the input
//! itself (0xFF switches side, 0xFE after it is a gap), with the key log of
//! RFC 8448's trace (seed the corpus with its records to reach decryption);
//! and the handshake parsers over the raw input.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wssniff::tcp::Side;
use wssniff::tls::{
    handshake, ChunkMeta, KeyLogLimits, KeySource, KeyStore, TlsConn, TlsEvent, TlsLimits,
};
use wssniff::types::Timestamp;

const R: &str = "cb34ecb1e78163ba1c38c6dacb196a6dffa21a8d9912ec18a2ef6283024dece7";

fuzz_target!(|data: &[u8]| {
    let _ = handshake::parse_client_hello(data);
    let _ = handshake::parse_server_hello(data);
    let _ = handshake::parse_encrypted_extensions(data);
    let mut keys = KeyStore::new(KeyLogLimits::default());
    keys.feed_text(format!(
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET {R} b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21\n\
         SERVER_HANDSHAKE_TRAFFIC_SECRET {R} b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38\n\
         CLIENT_TRAFFIC_SECRET_0 {R} 9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5\n\
         SERVER_TRAFFIC_SECRET_0 {R} a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643\n").as_bytes(), KeySource::KeyLog(0));
    let limits = TlsLimits {
        max_handshake: 4096,
        max_pending: 8192,
        resync_records: 4,
        resync_scan: 4096,
        max_failures_reported: 2,
    };
    let mut conn = TlsConn::new(limits);
    let mut off = [0u64; 2];
    let mut plain = [0u64; 2];
    let mut side = Side::Orig;
    let mut out = |ev: TlsEvent<'_>| {
        if let TlsEvent::Plaintext {
            side,
            offset,
            data,
            first_packet,
            last_packet,
            ..
        } = ev
        {
            assert!(offset >= plain[side.index()]);
            assert!(first_packet <= last_packet);
            plain[side.index()] = offset + data.len() as u64;
        }
    };
    for (i, part) in data.split(|&b| b == 0xFF).enumerate() {
        let packet = i as u64 + 1;
        let part = match part.split_first() {
            Some((0xFE, rest)) => {
                conn.gap(
                    side,
                    off[side.index()],
                    3,
                    packet,
                    Timestamp::default(),
                    &mut out,
                );
                off[side.index()] += 3;
                rest
            }
            _ => part,
        };
        let meta = ChunkMeta {
            offset: off[side.index()],
            seq: 0,
            packet,
            ts: Timestamp::default(),
        };
        conn.feed(side, meta, part, &keys, &mut out);
        off[side.index()] += part.len() as u64;
        side = side.other();
    }
    conn.finish(&keys, &mut out);
});
