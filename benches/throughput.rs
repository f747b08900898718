//! Criterion benchmarks, reported as bytes/s. `cargo bench --bench throughput`.
//! Under `cargo test --all-targets` (no `--bench`) criterion runs each
//! benchmark once, and the inputs are small so that takes a moment.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::net::SocketAddr;
use wssniff::capture::CaptureReader;
use wssniff::decode::{flags, Segment};
use wssniff::http::{Feed, HandshakeTracker, HttpLimits};
use wssniff::pipeline::{Analyzer, Config};
use wssniff::sink::{JsonSink, Tee};
use wssniff::synth::gen::{generate, GenConfig};
use wssniff::tcp::{
    CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, StreamEvent, TcpConfig,
};
use wssniff::types::Timestamp;
use wssniff::ws::{encode_frame, parse_header, unmask, FrameConfig, FrameDecoder};

/// Real measurement (`cargo bench`), or criterion's one-shot test mode.
fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn bench_unmask(c: &mut Criterion) {
    let big = if full() { 64 << 20 } else { 1 << 20 };
    let mut g = c.benchmark_group("unmask");
    for size in [16usize, 125, 1500, 64 << 10, big] {
        let mut buf = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(|| unmask(black_box(&mut buf), [1, 2, 3, 4], 1))
        });
    }
    g.finish();
}

/// A stream of masked frames of mixed sizes.
fn frame_stream(total: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(total + 1024);
    let sizes = [2usize, 40, 125, 126, 1000, 4000, 70_000];
    let mut i = 0;
    while out.len() < total {
        let n = sizes[i % sizes.len()];
        encode_frame(&mut out, true, 0, 2, Some([9, 8, 7, 6]), &vec![b'x'; n]);
        i += 1;
    }
    out
}

fn bench_frames(c: &mut Criterion) {
    let stream = frame_stream(if full() { 16 << 20 } else { 256 << 10 });
    let mut g = c.benchmark_group("ws");
    g.throughput(Throughput::Bytes(stream.len() as u64));
    g.bench_function("parse_header over a stream", |b| {
        b.iter(|| {
            let mut pos = 0usize;
            let mut frames = 0u64;
            while let Some(rest) = stream.get(pos..).filter(|r| !r.is_empty()) {
                match parse_header(rest) {
                    wssniff::ws::HeaderParse::Complete(h) => {
                        pos += h.header_len as usize + h.len as usize;
                        frames += 1;
                    }
                    _ => break,
                }
            }
            black_box(frames)
        })
    });
    g.bench_function("FrameDecoder 1460-byte segments", |b| {
        b.iter(|| {
            let mut d = FrameDecoder::new(FrameConfig {
                expect_masked: true,
            });
            let mut n = 0u64;
            for (i, seg) in stream.chunks(1460).enumerate() {
                d.feed(
                    seg,
                    (i * 1460) as u64,
                    i as u64 + 1,
                    Timestamp::default(),
                    &mut |_| n += 1,
                );
            }
            black_box(n)
        })
    });
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let gen = GenConfig {
        seed: 1,
        connections: 20,
        target_bytes: if full() { 32 << 20 } else { 1 << 20 },
        mss: 1460,
        ..Default::default()
    };
    let mut pcap = Vec::new();
    generate(&gen, &mut pcap, std::io::sink()).expect("generate");
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(pcap.len() as u64));
    for json in [false, true] {
        let name = if json { "json" } else { "stats" };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut r =
                    CaptureReader::from_reader(Box::new(std::io::Cursor::new(pcap.clone())), "mem")
                        .expect("reader");
                let sinks: Vec<Box<dyn wssniff::sink::Sink>> = if json {
                    vec![Box::new(JsonSink::new(std::io::sink()))]
                } else {
                    Vec::new()
                };
                let mut an = Analyzer::new(Config::default(), Tee::new(sinks));
                while let Ok(Some(p)) = r.next_packet() {
                    an.packet(&p).expect("packet");
                }
                black_box(an.finish().expect("finish").1.packets)
            })
        });
    }
    g.finish();
}

/// Counts delivered bytes: the reassembler alone, no HTTP or WebSocket.
struct CountBytes(u64);

impl FlowHandler for CountBytes {
    type State = ();
    type Error = std::convert::Infallible;
    fn open(&mut self, _: &FlowInfo) {}
    fn event(
        &mut self,
        _: &mut (),
        _: &FlowInfo,
        ev: StreamEvent<'_>,
    ) -> Result<Interest, Self::Error> {
        if let StreamEvent::Data { data, .. } = ev {
            self.0 += data.len() as u64;
        }
        Ok(Interest::Continue)
    }
    fn close(&mut self, _: (), _: &FlowInfo, _: CloseReason) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// One connection's segments: handshake, then `total` bytes from the client
/// in 1460-byte segments; `swap` exchanges every other pair (out of order).
/// A segment to send: (seq, flags, payload start, payload end).
type Seg = (u32, u8, usize, usize);

fn segments(total: usize, swap: bool) -> (Vec<u8>, Vec<Seg>) {
    let data: Vec<u8> = (0..total).map(|i| i as u8).collect();
    let mut segs = vec![(1000u32, flags::SYN, 0, 0)];
    segs.push((5000, flags::SYN | flags::ACK, 0, 0));
    segs.push((1001, flags::ACK, 0, 0));
    let mut data_segs: Vec<_> = (0..total)
        .step_by(1460)
        .map(|o| (1001 + o as u32, flags::ACK, o, (o + 1460).min(total)))
        .collect();
    if swap {
        for pair in data_segs.chunks_mut(4) {
            if pair.len() >= 2 {
                pair.swap(0, 1);
            }
        }
    }
    segs.extend(data_segs);
    (data, segs)
}

fn bench_reassembly(c: &mut Criterion) {
    let total = if full() { 16 << 20 } else { 256 << 10 };
    let client: SocketAddr = "10.0.0.1:40000".parse().expect("addr");
    let server: SocketAddr = "10.0.0.2:80".parse().expect("addr");
    let mut g = c.benchmark_group("tcp reassembly");
    g.throughput(Throughput::Bytes(total as u64));
    for swap in [false, true] {
        let (data, segs) = segments(total, swap);
        let name = if swap {
            "out of order (1 pair in 4 swapped)"
        } else {
            "in order"
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut t: FlowTable<()> = FlowTable::new(TcpConfig::default());
                let mut h = CountBytes(0);
                for (i, &(seq, fl, start, end)) in segs.iter().enumerate() {
                    let (src, dst, ack) = if fl == flags::SYN | flags::ACK {
                        (server, client, 1001)
                    } else {
                        (client, server, 5001)
                    };
                    let seg = Segment {
                        src,
                        dst,
                        seq,
                        ack,
                        flags: fl,
                        window: 65535,
                        payload: &data[start..end],
                        missing: 0,
                        tunnel: Default::default(),
                    };
                    t.process(&seg, i as u64 + 1, Timestamp::default(), &mut h);
                }
                t.finish(&mut h);
                assert_eq!(h.0, total as u64);
                black_box(h.0)
            })
        });
    }
    g.finish();
}

fn bench_handshake(c: &mut Criterion) {
    let req = wssniff::synth::ws::upgrade_request(
        "example.com",
        "/chat",
        "dGhlIHNhbXBsZSBub25jZQ==",
        Some("permessage-deflate; client_max_window_bits"),
    );
    let resp = wssniff::synth::ws::upgrade_response(
        "dGhlIHNhbXBsZSBub25jZQ==",
        Some("permessage-deflate"),
    );
    let mut g = c.benchmark_group("http");
    g.throughput(Throughput::Bytes((req.len() + resp.len()) as u64));
    g.bench_function("handshake (request + 101 response)", |b| {
        b.iter(|| {
            let mut t = HandshakeTracker::new(HttpLimits::default());
            t.feed(0, black_box(&req), 0, 4, Timestamp::default());
            let done = matches!(
                t.feed(1, black_box(&resp), 0, 5, Timestamp::default()),
                Feed::Upgraded { .. }
            );
            assert!(done);
            done
        })
    });
    g.finish();
}

/// Raw-deflate inflate through flate2 (the backend the crate is built with:
/// zlib-rs; BENCHMARKS.md compares miniz_oxide).
fn bench_inflate(c: &mut Criterion) {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    let words = [
        "hello ",
        "websocket ",
        "{\"id\": 42, ",
        "\"ok\": true} ",
        "stream ",
        "frame ",
    ];
    let size = if full() { 4 << 20 } else { 64 << 10 };
    let text: Vec<u8> = (0..size / 6)
        .flat_map(|i: usize| words[(i * 7 + i / 3) % words.len()].bytes())
        .take(size)
        .collect();
    let mut comp = Compress::new(Compression::default(), false);
    let mut z = Vec::with_capacity(text.len() + 1024);
    comp.compress_vec(&text, &mut z, FlushCompress::Finish)
        .expect("deflate");
    let mut out = Vec::with_capacity(text.len() + 1024);
    let mut g = c.benchmark_group("inflate");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("flate2 raw inflate (decompressed bytes/s)", |b| {
        b.iter(|| {
            let mut d = Decompress::new(false);
            out.clear();
            d.decompress_vec(&z, &mut out, FlushDecompress::Finish)
                .expect("inflate");
            assert_eq!(out.len(), text.len());
            black_box(out.len())
        })
    });
    g.finish();
}

/// Reading a capture file: our reader against libpcap's (the `pcap` crate).
fn bench_capture_reading(c: &mut Criterion) {
    let gen = GenConfig {
        seed: 2,
        connections: 20,
        target_bytes: if full() { 64 << 20 } else { 1 << 20 },
        mss: 1460,
        ..Default::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("read.pcap");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    generate(&gen, &mut f, std::io::sink()).expect("generate");
    drop(f);
    let size = std::fs::metadata(&path).expect("stat").len();
    let mut g = c.benchmark_group("capture reading");
    g.throughput(Throughput::Bytes(size));
    g.bench_function("wssniff CaptureReader", |b| {
        b.iter(|| {
            let mut r = CaptureReader::open(&path).expect("open");
            let mut n = 0u64;
            while let Ok(Some(p)) = r.next_packet() {
                n += p.data.len() as u64;
            }
            black_box(n)
        })
    });
    // libpcap is there only with live capture (the default feature).
    #[cfg(feature = "live")]
    g.bench_function("libpcap (pcap crate)", |b| {
        b.iter(|| {
            let mut cap = pcap::Capture::from_file(&path).expect("pcap open");
            let mut n = 0u64;
            while let Ok(p) = cap.next_packet() {
                n += p.data.len() as u64;
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_unmask,
    bench_frames,
    bench_reassembly,
    bench_handshake,
    bench_inflate,
    bench_capture_reading,
    bench_pipeline
);
criterion_main!(benches);
