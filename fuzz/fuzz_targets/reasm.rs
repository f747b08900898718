//! The TCP reassembler fed arbitrary segment sequences of ONE consistent
//! stream, checked against the simplest reference model: every byte handed
//! on is the true byte at its offset, data and gaps tile the stream with no
//! overlap and no hole, and when the segments cover every byte up to the
//! highest one sent, the delivered stream is exactly that prefix (no gap).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use wssniff::decode::{flags, Segment};
use wssniff::tcp::{
    CloseReason, FlowHandler, FlowInfo, FlowTable, Interest, Side, StreamEvent, TcpConfig,
};
use wssniff::types::Timestamp;

const ISN: u32 = 0xFFFF_F000; // wraps within the first 4 KiB

fn truth(i: u64) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 8) ^ 0x5A) as u8
}

#[derive(Default)]
struct Model {
    next: u64,
    gaps: u64,
    data: u64,
}

struct H {
    m: Model,
}

impl FlowHandler for H {
    type State = ();
    fn open(&mut self, _: &FlowInfo) {}
    fn event(&mut self, _: &mut (), _: &FlowInfo, ev: StreamEvent<'_>) -> Interest {
        match ev {
            StreamEvent::Data { side: Side::Orig, offset, data, .. } => {
                assert_eq!(offset, self.m.next, "data not contiguous");
                for (k, &b) in data.iter().enumerate() {
                    assert_eq!(b, truth(offset + k as u64), "wrong byte at {}", offset + k as u64);
                }
                self.m.next += data.len() as u64;
                self.m.data += data.len() as u64;
            }
            StreamEvent::Gap { side: Side::Orig, offset, len, .. } => {
                assert_eq!(offset, self.m.next, "gap not contiguous");
                assert!(len > 0);
                self.m.next += len;
                self.m.gaps += 1;
            }
            _ => {}
        }
        Interest::Continue
    }
    fn close(&mut self, _: (), _: &FlowInfo, _: CloseReason) {}
}

fuzz_target!(|data: &[u8]| {
    let src: SocketAddr = "10.0.0.1:1000".parse().unwrap_or_else(|_| unreachable!());
    let dst: SocketAddr = "10.0.0.2:80".parse().unwrap_or_else(|_| unreachable!());
    let cfg = TcpConfig {
        max_segments_per_dir: 64,
        max_ooo_bytes_per_dir: 1 << 20,
        ..TcpConfig::default()
    };
    let mut table: FlowTable<()> = FlowTable::new(cfg);
    let mut h = H { m: Model::default() };
    let syn = Segment {
        src,
        dst,
        seq: ISN,
        ack: 0,
        flags: flags::SYN,
        window: 65535,
        payload: &[],
        missing: 0,
    };
    let ts = Timestamp::new(1, 0);
    table.process(&syn, 1, ts, &mut h);
    let mut covered = vec![false; 0];
    let mut buf = Vec::new();
    let mut segs = 0usize;
    for (i, op) in data.chunks_exact(3).enumerate() {
        // 12-bit offset, length up to 255: plenty of overlaps.
        let off = u64::from(u16::from_le_bytes([op[0], op[1]]) & 0x0FFF);
        let len = u64::from(op[2]);
        buf.clear();
        buf.extend((off..off + len).map(truth));
        let end = (off + len) as usize;
        // An empty segment sends no byte: it does not lengthen the stream.
        if len > 0 && covered.len() < end {
            covered.resize(end, false);
        }
        for c in covered.iter_mut().take(end).skip(off as usize) {
            *c = true;
        }
        let seg = Segment {
            src,
            dst,
            seq: ISN.wrapping_add(1).wrapping_add(off as u32),
            ack: 0,
            flags: flags::ACK,
            window: 65535,
            payload: &buf,
            missing: 0,
        };
        table.process(&seg, i as u64 + 2, ts, &mut h);
        segs += 1;
    }
    table.finish(&mut h);
    let limited = table.stats().limit_hits > 0;
    if !limited && segs <= 64 && covered.iter().all(|&c| c) {
        assert_eq!(h.m.gaps, 0, "a fully covered stream had a gap");
        assert_eq!(h.m.data, covered.len() as u64, "not every byte delivered");
    }
    // Data and gaps together cover exactly the stream sent.
    assert_eq!(h.m.next, covered.len() as u64);
});
