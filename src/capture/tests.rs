//! Captures built in memory for every format, byte order and resolution, and
//! every error kind with its exact offset; plus the reference corpus.

use super::*;
use std::io::Write;

fn put16(out: &mut Vec<u8>, v: u16, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}
fn put32(out: &mut Vec<u8>, v: u32, be: bool) {
    out.extend_from_slice(&if be { v.to_be_bytes() } else { v.to_le_bytes() });
}

fn pcap_header(be: bool, nanos: bool, link: u32) -> Vec<u8> {
    let mut o = Vec::new();
    put32(&mut o, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }, be);
    put16(&mut o, 2, be);
    put16(&mut o, 4, be);
    put32(&mut o, 0, be);
    put32(&mut o, 0, be);
    put32(&mut o, 65535, be);
    put32(&mut o, link, be);
    o
}

fn pcap_record(o: &mut Vec<u8>, be: bool, secs: u32, frac: u32, data: &[u8], orig: u32) {
    put32(o, secs, be);
    put32(o, frac, be);
    put32(o, data.len() as u32, be);
    put32(o, orig, be);
    o.extend_from_slice(data);
}

/// Builds pcapng blocks in one byte order.
struct Ng {
    be: bool,
    out: Vec<u8>,
}

impl Ng {
    fn new(be: bool) -> Self {
        let mut n = Ng {
            be,
            out: Vec::new(),
        };
        n.shb();
        n
    }
    fn block(&mut self, ty: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let len = 12 + padded as u32;
        put32(&mut self.out, ty, self.be);
        put32(&mut self.out, len, self.be);
        self.out.extend_from_slice(body);
        self.out.resize(self.out.len() + padded - body.len(), 0);
        put32(&mut self.out, len, self.be);
    }
    fn shb(&mut self) {
        let mut b = Vec::new();
        put32(&mut b, 0x1a2b_3c4d, self.be);
        put16(&mut b, 1, self.be);
        put16(&mut b, 0, self.be);
        b.extend_from_slice(&[0xff; 8]);
        self.block(0x0a0d_0d0a, &b);
    }
    fn idb(&mut self, link: u16, snaplen: u32, opts: &[(u16, Vec<u8>)]) {
        let mut b = Vec::new();
        put16(&mut b, link, self.be);
        put16(&mut b, 0, self.be);
        put32(&mut b, snaplen, self.be);
        for (code, v) in opts {
            put16(&mut b, *code, self.be);
            put16(&mut b, v.len() as u16, self.be);
            b.extend_from_slice(v);
            b.resize(b.len().div_ceil(4) * 4, 0);
        }
        if !opts.is_empty() {
            put32(&mut b, 0, self.be);
        }
        self.block(1, &b);
    }
    fn epb(&mut self, iface: u32, ts: u64, data: &[u8], orig: u32) {
        let mut b = Vec::new();
        put32(&mut b, iface, self.be);
        put32(&mut b, (ts >> 32) as u32, self.be);
        put32(&mut b, ts as u32, self.be);
        put32(&mut b, data.len() as u32, self.be);
        put32(&mut b, orig, self.be);
        b.extend_from_slice(data);
        self.block(6, &b);
    }
    fn pb(&mut self, iface: u16, ts: u64, data: &[u8]) {
        let mut b = Vec::new();
        put16(&mut b, iface, self.be);
        put16(&mut b, 0, self.be);
        put32(&mut b, (ts >> 32) as u32, self.be);
        put32(&mut b, ts as u32, self.be);
        put32(&mut b, data.len() as u32, self.be);
        put32(&mut b, data.len() as u32, self.be);
        b.extend_from_slice(data);
        self.block(2, &b);
    }
    fn spb(&mut self, data: &[u8], orig: u32) {
        let mut b = Vec::new();
        put32(&mut b, orig, self.be);
        b.extend_from_slice(data);
        self.block(3, &b);
    }
}

fn reader(bytes: Vec<u8>) -> Result<CaptureReader, CaptureError> {
    CaptureReader::from_reader(Box::new(std::io::Cursor::new(bytes)), "test.cap")
}

/// (number, ts, link, data, orig_len) of every packet, and the final error if any.
type Got = (u64, Timestamp, u32, Vec<u8>, u32);
fn read_all(r: &mut CaptureReader) -> (Vec<Got>, Option<CaptureError>) {
    let mut v = Vec::new();
    loop {
        match r.next_packet() {
            Ok(Some(p)) => v.push((p.number, p.ts, p.link_type, p.data.to_vec(), p.orig_len)),
            Ok(None) => return (v, None),
            Err(e) => return (v, Some(e)),
        }
    }
}

fn err_of(bytes: Vec<u8>) -> (usize, CaptureError) {
    match reader(bytes) {
        Err(e) => (0, e),
        Ok(mut r) => {
            let (pkts, e) = read_all(&mut r);
            (pkts.len(), e.expect("an error"))
        }
    }
}

#[test]
fn pcap_all_byte_orders_and_resolutions() {
    for be in [false, true] {
        for nanos in [false, true] {
            let mut f = pcap_header(be, nanos, 1);
            pcap_record(&mut f, be, 100, 5, b"abc", 3);
            pcap_record(&mut f, be, 101, 7, b"defgh", 60);
            let mut r = reader(f).unwrap();
            assert_eq!(
                r.format(),
                CaptureFormat::Pcap {
                    nanos,
                    big_endian: be,
                    version: (2, 4)
                }
            );
            let (p, e) = read_all(&mut r);
            assert!(e.is_none());
            let unit = if nanos { 1 } else { 1000 };
            assert_eq!(
                p,
                vec![
                    (1, Timestamp::new(100, 5 * unit), 1, b"abc".to_vec(), 3),
                    (2, Timestamp::new(101, 7 * unit), 1, b"defgh".to_vec(), 60)
                ]
            );
            assert_eq!(r.link_types(), vec![1]);
            assert_eq!(r.bytes_consumed(), 24 + 16 + 3 + 16 + 5);
        }
    }
}

#[test]
fn pcap_link_type_ignores_fcs_bits() {
    let f = pcap_header(false, false, 0x1400_0071);
    let r = reader(f).unwrap();
    assert_eq!(r.link_types(), vec![113]);
}

#[test]
fn notices_caplen_and_backwards_time() {
    let mut f = pcap_header(false, false, 1);
    pcap_record(&mut f, false, 100, 0, b"abcd", 2);
    pcap_record(&mut f, false, 99, 0, b"x", 1);
    pcap_record(&mut f, false, 99, 1_500_000, b"y", 1);
    let mut r = reader(f).unwrap();
    let (p, _) = read_all(&mut r);
    assert_eq!(p[0].4, 4, "orig_len raised to caplen");
    assert_eq!(p[2].1, Timestamp::new(100, 500_000_000));
    let mut n = Vec::new();
    r.drain_notices(&mut n);
    let names: Vec<_> = n.iter().map(|n| (n.name, n.offset, n.packet)).collect();
    assert_eq!(
        names,
        vec![
            ("caplen_exceeds_len", 24, 1),
            ("timestamp_backwards", 44, 2),
            ("timestamp_fraction_overflow", 61, 2),
        ]
    );
    r.drain_notices(&mut n);
    assert_eq!(n.len(), 3, "drained once");
}

#[test]
fn pcap_errors_with_exact_offsets() {
    // Empty.
    let (_, e) = err_of(Vec::new());
    assert!(matches!(e.kind, CaptureErrorKind::Empty));
    assert!(!e.is_truncation());
    // Bad magic shows the bytes.
    let (_, e) = err_of(b"GET / HTTP/1.1\r\n\r\n".to_vec());
    assert!(matches!(e.kind, CaptureErrorKind::BadMagic { bytes } if &bytes == b"GET "));
    assert!(e.to_string().contains("47 45 54 20"), "{e}");
    // Truncated file header.
    let mut f = pcap_header(false, false, 1);
    f.truncate(10);
    let (_, e) = err_of(f);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::TruncatedFileHeader {
            needed: 24,
            available: 10
        }
    ));
    assert!(e.is_truncation());
    // Truncated record header after one good record.
    let mut f = pcap_header(false, false, 1);
    pcap_record(&mut f, false, 1, 0, b"abc", 3);
    f.extend_from_slice(&[1, 2, 3, 4, 5]);
    let (n, e) = err_of(f);
    assert_eq!(n, 1);
    assert_eq!(e.offset, 43);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::TruncatedRecordHeader { available: 5 }
    ));
    assert!(e.is_truncation());
    // Truncated record body.
    let mut f = pcap_header(false, false, 1);
    pcap_record(&mut f, false, 1, 0, b"abc", 3);
    pcap_record(&mut f, false, 1, 0, &[0u8; 100], 100);
    f.truncate(f.len() - 60);
    let (n, e) = err_of(f);
    assert_eq!(n, 1);
    assert_eq!(e.offset, 43);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::TruncatedRecord {
            declared: 100,
            available: 40
        }
    ));
    assert_eq!(
        e.to_string(),
        "test.cap: truncated record at byte offset 43: record header says 100 bytes, only 40 remain"
    );
    // Absurd caplen refused before allocating.
    let mut f = pcap_header(true, false, 1);
    put32(&mut f, 1, true);
    put32(&mut f, 0, true);
    put32(&mut f, 0xffff_fff0, true);
    put32(&mut f, 10, true);
    let (n, e) = err_of(f);
    assert_eq!((n, e.offset), (0, 24));
    assert!(matches!(
        e.kind,
        CaptureErrorKind::CaplenTooLarge {
            caplen: 0xffff_fff0
        }
    ));
    assert!(!e.is_truncation());
}

#[test]
fn after_an_error_the_reader_stays_finished() {
    let mut f = pcap_header(false, false, 1);
    f.extend_from_slice(&[1, 2]);
    let mut r = reader(f).unwrap();
    assert!(r.next_packet().is_err());
    assert!(matches!(r.next_packet(), Ok(None)));
}

#[test]
fn pcapng_both_byte_orders_all_packet_blocks() {
    for be in [false, true] {
        let mut n = Ng::new(be);
        n.idb(1, 0, &[]);
        n.block(0x0000_0bad, b"custom block, skipped");
        n.epb(0, 1_000_000 * 5 + 250, b"hello", 5);
        n.block(5, b"interface statistics, skipped");
        n.pb(0, 1_000_000 * 6, b"obsolete");
        n.spb(b"simple", 6);
        let mut r = reader(n.out).unwrap();
        assert_eq!(r.format(), CaptureFormat::Pcapng);
        let (p, e) = read_all(&mut r);
        assert!(e.is_none(), "{e:?}");
        assert_eq!(
            p,
            vec![
                (1, Timestamp::new(5, 250_000), 1, b"hello".to_vec(), 5),
                (2, Timestamp::new(6, 0), 1, b"obsolete".to_vec(), 8),
                (3, Timestamp::new(6, 0), 1, b"simple".to_vec(), 6),
            ]
        );
    }
}

#[test]
fn pcapng_two_interfaces_with_resolution_and_offset() {
    let mut n = Ng::new(false);
    n.idb(1, 0, &[(9, vec![9])]); // nanoseconds
    n.idb(
        113,
        0,
        &[(9, vec![0x80 | 10]), (14, 1000i64.to_le_bytes().to_vec())],
    ); // 1/1024 s, +1000 s
    n.idb(101, 0, &[(9, vec![3]), (2, b"eth0".to_vec())]); // milliseconds
    n.epb(0, 1_500_000_000, b"a", 1);
    n.epb(1, 2048 + 256, b"b", 1);
    n.epb(2, 7_001, b"c", 1);
    let mut r = reader(n.out).unwrap();
    let (p, e) = read_all(&mut r);
    assert!(e.is_none());
    let got: Vec<_> = p.iter().map(|g| (g.1, g.2)).collect();
    assert_eq!(
        got,
        vec![
            (Timestamp::new(1, 500_000_000), 1),
            (Timestamp::new(1002, 250_000_000), 113),
            (Timestamp::new(7, 1_000_000), 101),
        ]
    );
    assert_eq!(r.link_types(), vec![1, 113, 101]);
}

#[test]
fn pcapng_new_section_resets_interfaces_and_may_switch_byte_order() {
    let mut n = Ng::new(false);
    n.idb(1, 0, &[]);
    n.idb(113, 0, &[]);
    n.epb(1, 0, b"a", 1);
    let mut m = Ng::new(true);
    m.idb(276, 0, &[]);
    m.epb(0, 0, b"b", 1);
    m.epb(1, 0, b"c", 1); // interface 1 belonged to the first section
    let first_len = n.out.len() as u64;
    n.out.extend_from_slice(&m.out);
    let (count, e) = err_of(n.out);
    assert_eq!(count, 2);
    // The bad EPB follows the second SHB (28), IDB (20) and first EPB (36).
    assert_eq!(e.offset, first_len + 28 + 20 + 36);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::UnknownInterface { id: 1, known: 1 }
    ));
}

#[test]
fn pcapng_bad_tsresol_is_a_notice() {
    let mut n = Ng::new(false);
    n.idb(1, 0, &[(9, vec![0x80 | 100])]);
    n.epb(0, 3_000_000, b"a", 1);
    let mut r = reader(n.out).unwrap();
    let (p, _) = read_all(&mut r);
    assert_eq!(p[0].1, Timestamp::new(3, 0));
    let mut notes = Vec::new();
    r.drain_notices(&mut notes);
    assert_eq!(notes.len(), 1);
    assert_eq!((notes[0].name, notes[0].offset), ("bad_tsresol", 28));
}

#[test]
fn pcapng_spb_respects_snaplen() {
    let mut n = Ng::new(false);
    n.idb(1, 4, &[]);
    n.spb(b"abcdef", 100);
    let mut r = reader(n.out).unwrap();
    let (p, _) = read_all(&mut r);
    assert_eq!((p[0].3.as_slice(), p[0].4), (&b"abcd"[..], 100));
}

#[test]
fn pcapng_errors_with_exact_offsets() {
    let base = || {
        let mut n = Ng::new(false);
        n.idb(1, 0, &[]);
        n
    };
    // Offsets: SHB 0..28, IDB 28..48, next block at 48.
    let mut n = base();
    put32(&mut n.out, 6, false);
    put32(&mut n.out, 30, false);
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BadBlockLength {
            block_type: 6,
            len: 30
        }
    ));
    assert!(!e.is_truncation());

    let mut n = base();
    put32(&mut n.out, 6, false);
    put32(&mut n.out, 8, false);
    let (_, e) = err_of(n.out);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BadBlockLength { len: 8, .. }
    ));

    let mut n = base();
    put32(&mut n.out, 6, false);
    put32(&mut n.out, 0x7fff_fff0, false);
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BlockTooLarge {
            len: 0x7fff_fff0,
            ..
        }
    ));

    let mut n = base();
    n.epb(0, 0, b"abcd", 4);
    let l = n.out.len();
    n.out[l - 4] = 99;
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BlockTrailerMismatch {
            header: 36,
            trailer: 99
        }
    ));

    let mut n = base();
    n.epb(0, 0, b"abcd", 4);
    n.epb(0, 0, b"abcd", 4);
    n.out.truncate(n.out.len() - 10);
    let (count, e) = err_of(n.out);
    assert_eq!((count, e.offset), (1, 84));
    assert!(matches!(
        e.kind,
        CaptureErrorKind::TruncatedBlock {
            declared: 36,
            available: 26
        }
    ));
    assert!(e.is_truncation());

    let mut n = base();
    n.out.extend_from_slice(&[6, 0, 0]);
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::TruncatedBlockHeader { available: 3 }
    ));
    assert!(e.is_truncation());

    let mut n = base();
    n.epb(3, 0, b"abcd", 4);
    let (_, e) = err_of(n.out);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::UnknownInterface { id: 3, known: 1 }
    ));

    let mut n = Ng::new(false);
    n.epb(0, 0, b"abcd", 4);
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 28);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::PacketBeforeInterface { block_type: 6 }
    ));

    let mut n = base();
    n.epb(0, 0, b"abcd", 4);
    n.out[48 + 20] = 200; // caplen 200 in a 36-byte block
    let (_, e) = err_of(n.out);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::PacketExceedsBlock {
            caplen: 200,
            room: 4
        }
    ));

    let mut n = base();
    n.block(6, &[0u8; 8]);
    let (_, e) = err_of(n.out);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BlockTooShort {
            block_type: 6,
            len: 20,
            needed: 32
        }
    ));

    let mut n = base();
    let mut shb = Vec::new();
    put32(&mut shb, 0x0a0d_0d0a, false);
    put32(&mut shb, 28, false);
    shb.extend_from_slice(&[1, 2, 3, 4]);
    n.out.extend_from_slice(&shb);
    let (_, e) = err_of(n.out);
    assert_eq!(e.offset, 48);
    assert!(matches!(
        e.kind,
        CaptureErrorKind::BadByteOrderMagic {
            bytes: [1, 2, 3, 4]
        }
    ));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    g.write_all(bytes).unwrap();
    g.finish().unwrap()
}

#[test]
fn gzip_input_is_transparent_and_offsets_are_decompressed() {
    let mut f = pcap_header(false, true, 1);
    pcap_record(&mut f, false, 1, 2, b"abc", 3);
    pcap_record(&mut f, false, 1, 2, &[7u8; 50], 50);
    let full = f.clone();
    let mut r = reader(gzip(&f)).unwrap();
    let (p, e) = read_all(&mut r);
    assert!(e.is_none());
    assert_eq!(p.len(), 2);
    assert_eq!(r.bytes_consumed(), full.len() as u64);

    // A record cut inside the compressed data.
    f.truncate(f.len() - 20);
    let (n, e) = err_of(gzip(&f));
    assert_eq!((n, e.offset), (1, 43));
    assert!(
        e.to_string()
            .contains("at byte offset 43 of the decompressed stream"),
        "{e}"
    );
    assert!(e.is_truncation());

    // The compressed stream itself cut short.
    let mut z = gzip(&full);
    z.truncate(z.len() / 2);
    let (_, e) = err_of(z);
    assert!(e.is_truncation(), "{e}");
}

#[test]
fn large_capture_streams_through_a_small_buffer_without_copy_errors() {
    // Records straddle many refills of the 1 MiB buffer.
    let mut f = pcap_header(false, false, 1);
    let mut expect = 0u64;
    for i in 0..3000u32 {
        let len = (i * 7919) % 1500;
        let data: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
        pcap_record(&mut f, false, i, 0, &data, len);
        expect += len as u64;
    }
    let mut r = reader(f.clone()).unwrap();
    let mut got = 0u64;
    let mut count = 0u32;
    while let Some(p) = r.next_packet().unwrap() {
        assert_eq!(
            p.data.first().copied(),
            if p.data.is_empty() {
                None
            } else {
                Some(count as u8)
            }
        );
        assert_eq!(
            p.data.last().copied(),
            p.data
                .len()
                .checked_sub(1)
                .map(|l| (count + l as u32) as u8)
        );
        got += p.data.len() as u64;
        count += 1;
    }
    assert_eq!((count, got), (3000, expect));
    assert_eq!(r.bytes_consumed(), f.len() as u64);
}

#[test]
fn pcapng_block_larger_than_read_buffer() {
    let mut n = Ng::new(false);
    n.idb(1, 0, &[]);
    n.block(0x0000_0bad, &vec![0xaa; READ_BUFFER * 2 + 100]);
    n.epb(0, 0, b"after", 5);
    let mut r = reader(n.out).unwrap();
    let (p, e) = read_all(&mut r);
    assert!(e.is_none());
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].3, b"after");
}

fn corpus(rel: &str) -> Option<std::path::PathBuf> {
    let p = std::path::Path::new("/work/shared/corpus").join(rel);
    p.exists().then_some(p)
}

/// Counts and link types checked against `tshark -r FILE -T fields -e frame.number -e frame.len`.
#[test]
fn reads_reference_corpus() {
    let cases: &[(&str, u64, &[u32], u64)] = &[
        ("zeek/oversized-close-frame.pcapng", 8, &[1], 983),
        ("evsetool/cap.pcapng", 66, &[113], 8_079),
        (
            "suricata-verify/websocket-ping/input.pcap",
            19,
            &[113],
            1_693,
        ),
        ("arkime/arkime_synthetic.pcap", 918, &[1], 87_699),
    ];
    for (rel, count, links, total_len) in cases {
        let Some(path) = corpus(rel) else { continue };
        let mut r = CaptureReader::open(&path).unwrap();
        let mut n = 0;
        let mut sum = 0u64;
        let mut last = 0;
        while let Some(p) = r.next_packet().unwrap() {
            n += 1;
            sum += p.orig_len as u64;
            assert_eq!(p.number, last + 1);
            last = p.number;
        }
        assert_eq!(n, *count, "{rel}");
        if *total_len != 0 {
            assert_eq!(sum, *total_len, "{rel}");
        }
        assert_eq!(r.link_types(), links.to_vec(), "{rel}");
        assert_eq!(
            r.bytes_consumed(),
            std::fs::metadata(&path).unwrap().len(),
            "{rel}"
        );
    }
}

/// Throughput check on a large file: `WSSNIFF_BENCH_PCAP=/path cargo test
/// --release --lib capture::tests::throughput -- --ignored --nocapture`.
#[test]
#[ignore]
fn throughput() {
    let Ok(path) = std::env::var("WSSNIFF_BENCH_PCAP") else {
        return;
    };
    let t = std::time::Instant::now();
    let mut r = CaptureReader::open(std::path::Path::new(&path)).unwrap();
    let mut d = crate::decode::Decoder::new(crate::decode::DecodeConfig::default());
    let decode = std::env::var("WSSNIFF_BENCH_DECODE").is_ok();
    let (mut n, mut bytes, mut segs) = (0u64, 0u64, 0u64);
    while let Some(p) = r.next_packet().unwrap() {
        n += 1;
        bytes += p.data.len() as u64;
        if decode && d.decode(p.link_type, p.data, p.orig_len, p.ts).is_ok() {
            segs += 1;
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let total = r.bytes_consumed() as f64;
    println!(
        "{n} packets, {bytes} data bytes, {segs} segments, {:.2} GB/s, {:.1} Mpkt/s",
        total / secs / 1e9,
        n as f64 / secs / 1e6
    );
    assert!(n > 0);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Damaged captures end in packets then at most one error, never a panic.
        #[test]
        fn damaged_captures_never_panic(flips in proptest::collection::vec((0usize..400, any::<u8>()), 0..12), cut in 0usize..400, ng in any::<bool>()) {
            let mut f = if ng {
                let mut n = Ng::new(false);
                n.idb(1, 0, &[(9, vec![9])]);
                n.epb(0, 5, &[1u8; 40], 40);
                n.spb(&[2u8; 30], 30);
                n.idb(113, 0, &[]);
                n.epb(1, 6, &[3u8; 50], 60);
                n.out
            } else {
                let mut f = pcap_header(false, false, 1);
                for i in 0..6u8 {
                    pcap_record(&mut f, false, i as u32, 0, &vec![i; 20 + i as usize * 10], 100);
                }
                f
            };
            for (at, b) in flips {
                if let Some(x) = f.get_mut(at) { *x = b; }
            }
            f.truncate(cut.max(1));
            if let Ok(mut r) = reader(f.clone()) {
                let (pkts, _) = read_all(&mut r);
                prop_assert!(pkts.len() <= 6);
                prop_assert!(r.bytes_consumed() <= f.len() as u64);
                prop_assert!(matches!(r.next_packet(), Ok(None)));
            }
        }
    }
}

#[test]
fn pcapng_decryption_secrets_blocks_are_surfaced() {
    for be in [false, true] {
        let mut n = Ng::new(be);
        n.idb(1, 0, &[]);
        let text = b"CLIENT_RANDOM 00 11\n";
        let mut dsb = Vec::new();
        put32(&mut dsb, 0x544c_534b, be);
        put32(&mut dsb, text.len() as u32, be);
        dsb.extend_from_slice(text);
        n.block(0x0a, &dsb);
        let mut other = Vec::new();
        put32(&mut other, 0x5753_4b4c, be); // WireGuard keys: not for us
        put32(&mut other, 4, be);
        other.extend_from_slice(b"abcd");
        n.block(0x0a, &other);
        n.epb(0, 1_000_000, b"hello", 5);
        let mut r = reader(n.out).unwrap();
        let mut secrets = Vec::new();
        r.drain_secrets(&mut secrets);
        assert!(secrets.is_empty());
        assert!(r.next_packet().unwrap().is_some());
        r.drain_secrets(&mut secrets);
        assert_eq!(secrets, vec![text.to_vec()]);
        r.drain_secrets(&mut secrets);
        assert_eq!(secrets.len(), 1);
    }
}
