//! Criterion benchmarks of the tls stage, as plaintext bytes/s:
//! `cargo bench --bench tls`. Under `cargo test --all-targets` criterion runs
//! each benchmark once on a small input.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wssniff::tcp::Side;
use wssniff::tls::crypto::{self, Cipher};
use wssniff::tls::{ChunkMeta, KeyLogLimits, KeySource, KeyStore, TlsConn, TlsEvent, TlsLimits};
use wssniff::types::Timestamp;

fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// One record opened in place, per suite (TLS 1.3 keys; 1.2 costs the same).
fn bench_open_record(c: &mut Criterion) {
    let mut g = c.benchmark_group("tls_open_record");
    for id in [0x1301u16, 0x1302, 0x1303] {
        let suite = crypto::suite(id).unwrap();
        let cipher = Cipher::tls13(suite, &vec![7u8; suite.hash.output_len()]).unwrap();
        let rec = cipher.seal_at(0, 23, &vec![0x42u8; 16384]);
        let header: [u8; 5] = rec[..5].try_into().unwrap();
        let mut body = rec[5..].to_vec();
        g.throughput(Throughput::Bytes(16384));
        g.bench_with_input(BenchmarkId::from_parameter(suite.name), &id, |b, _| {
            b.iter(|| {
                body.copy_from_slice(&rec[5..]);
                black_box(cipher.open_at(0, &header, &mut body).unwrap());
            })
        });
    }
    g.finish();
}

fn hs_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut r = vec![
        22,
        3,
        3,
        0,
        0,
        msg_type,
        0,
        (body.len() >> 8) as u8,
        body.len() as u8,
    ];
    r.extend_from_slice(body);
    let len = (r.len() - 5) as u16;
    r[3..5].copy_from_slice(&len.to_be_bytes());
    r
}

fn hello(random: &[u8; 32], suites: &[u8]) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend_from_slice(random);
    b.push(0);
    b.extend_from_slice(suites);
    b
}

/// A TLS 1.2 AES-128-GCM connection through `TlsConn`: the server's
/// stream, fed in 64 KiB chunks as tcp delivers it.
fn bench_conn(c: &mut Criterion) {
    let (cr, sr, master) = ([1u8; 32], [2u8; 32], [3u8; 48]);
    let suite = crypto::suite(0xc02f).unwrap();
    let (_, sw) = Cipher::tls12_pair(suite, &master, &cr, &sr).unwrap();
    let mut keys = KeyStore::new(KeyLogLimits::default());
    let hexs = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    keys.feed_text(
        format!("CLIENT_RANDOM {} {}\n", hexs(&cr), hexs(&master)).as_bytes(),
        KeySource::KeyLog(0),
    );
    let mut ch = hello(&cr, &[0, 2, 0xc0, 0x2f]);
    ch.extend_from_slice(&[1, 0]);
    let mut sh = hello(&sr, &[0xc0, 0x2f]);
    sh.push(0);
    let client = hs_record(1, &ch);
    let size: usize = if full() { 64 << 20 } else { 1 << 20 };
    let mut server = [
        hs_record(2, &sh),
        vec![20, 3, 3, 0, 1, 1],
        sw.seal_at(0, 22, &[20, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ]
    .concat();
    let piece = vec![0x61u8; 16384];
    for i in 0..size / 16384 {
        server.extend_from_slice(&sw.seal_at(i as u64 + 1, 23, &piece));
    }
    let mut g = c.benchmark_group("tls_conn");
    g.throughput(Throughput::Bytes(size as u64));
    g.sample_size(10);
    g.bench_function("tls12_aes128gcm_64k_chunks", |b| {
        b.iter(|| {
            let mut conn = TlsConn::new(TlsLimits::default());
            let mut n = 0u64;
            let mut out = |ev: TlsEvent<'_>| {
                if let TlsEvent::Plaintext { data, .. } = ev {
                    n += data.len() as u64;
                }
            };
            let meta = |offset: u64, packet: u64| ChunkMeta {
                offset,
                seq: 0,
                packet,
                ts: Timestamp::default(),
            };
            conn.feed(Side::Orig, meta(0, 1), &client, &keys, &mut out);
            let mut off = 0u64;
            for (i, chunk) in server.chunks(64 << 10).enumerate() {
                conn.feed(Side::Resp, meta(off, i as u64 + 2), chunk, &keys, &mut out);
                off += chunk.len() as u64;
            }
            assert_eq!(n, size as u64);
        })
    });
    g.finish();
}

criterion_group!(benches, bench_open_record, bench_conn);
criterion_main!(benches);
