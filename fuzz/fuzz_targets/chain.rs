//! The frame-chain search and a resyncing frame decoder on arbitrary bytes:
//! no panic, starts found are where the chain test holds, the resync buffer
//! stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wssniff::types::Timestamp;
use wssniff::ws::{chain, FrameConfig, FrameDecoder};

fuzz_target!(|data: &[u8]| {
    let (&flags, rest) = data.split_first().unwrap_or((&0, &[]));
    let masked = flags & 1 != 0;
    if let Some(st) = chain::probe(rest) {
        let w = &rest[st.offset..];
        let v = chain::check(w, Some(st.masked), &[]).expect("the start found holds");
        assert!(v.frames >= 2);
    }
    let bounds: Vec<usize> = (0..rest.len()).step_by(usize::from(flags >> 1).max(1)).collect();
    let _ = chain::search_from(rest, 0, Some(masked), &bounds, true);
    // A loss first, then the bytes in pieces: the decoder searches, resyncs.
    let mut dec = FrameDecoder::new(FrameConfig { expect_masked: masked }).resyncing();
    let ts = Timestamp::default();
    dec.gap(u64::from(flags) + 1, 1, ts, &mut |_| {});
    let mut off = u64::from(flags) + 1;
    for (i, piece) in rest.chunks(usize::from(flags).max(1) * 7).enumerate() {
        dec.feed(piece, off, i as u64 + 2, ts, &mut |_| {});
        off += piece.len() as u64;
        if i % 5 == 4 {
            dec.gap(3, i as u64 + 2, ts, &mut |_| {});
            off += 3;
        }
    }
    dec.finish(0, ts, &mut |_| {});
});
