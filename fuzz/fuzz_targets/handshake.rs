//! The HTTP upgrade tracker over arbitrary bytes from both sides, split by
//! the input itself (0xFF 0xFE switches side), with gaps.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wssniff::http::{Feed, HandshakeTracker, HttpLimits};
use wssniff::types::Timestamp;

fuzz_target!(|data: &[u8]| {
    let limits = HttpLimits {
        max_head_bytes: 2048,
        max_headers: 32,
        max_pending_client_bytes: 1024,
        max_pipelined: 4,
    };
    let mut t = HandshakeTracker::new(limits);
    let mut off = [0u64; 2];
    let mut side = 0usize;
    for (i, part) in data.split(|&b| b == 0xFF).enumerate() {
        let (part, gap) = match part.split_first() {
            Some((0xFE, rest)) => (rest, true),
            _ => (part, false),
        };
        if gap {
            t.gap(side);
            off[side] += 1;
        }
        match t.feed(side, part, off[side], i as u64 + 1, Timestamp::new(0, 0)) {
            Feed::Upgraded { rest, pending_client, .. } => {
                assert!(rest <= part.len());
                let held: usize = pending_client.iter().map(|c| c.data.len()).sum();
                assert!(held <= 1024);
            }
            Feed::NotHttp | Feed::Continue => {}
        }
        off[side] += part.len() as u64;
        side ^= 1;
    }
    t.finish();
    let mut an = Vec::new();
    t.drain_anomalies(&mut an);
});
