//! Criterion benchmarks, reported as bytes/s. `cargo bench --bench throughput`.
//! Under `cargo test --all-targets` (no `--bench`) criterion runs each
//! benchmark once, and the inputs are small so that takes a moment.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wssniff::capture::CaptureReader;
use wssniff::pipeline::{Analyzer, Config};
use wssniff::sink::{JsonSink, Tee};
use wssniff::synth::gen::{generate, GenConfig};
use wssniff::types::Timestamp;
use wssniff::ws::{encode_frame, parse_header, unmask, FrameConfig, FrameDecoder};

/// Real measurement (`cargo bench`), or criterion's one-shot test mode.
fn full() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn bench_unmask(c: &mut Criterion) {
    let big = if full() { 64 << 20 } else { 64 << 10 };
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

criterion_group!(benches, bench_unmask, bench_frames, bench_pipeline);
criterion_main!(benches);
