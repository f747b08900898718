//! The frame decoder and message assembler over arbitrary stream bytes, fed
//! in chunks whose sizes come from the input, with optional gaps, with and
//! without permessage-deflate.
#![no_main]
use libfuzzer_sys::fuzz_target;
use wssniff::message::{Assembler, DeflateParams, MessageConfig, Output};
use wssniff::types::{Dir, Timestamp};
use wssniff::ws::{FrameConfig, FrameDecoder, FrameEvent};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let dir = if ctl & 1 == 0 { Dir::C2s } else { Dir::S2c };
    let deflate = (ctl & 2 != 0).then(|| DeflateParams {
        no_context_takeover: ctl & 4 != 0,
        max_window_bits: 8 + (ctl >> 4) % 8,
        per_frame: ctl & 0x80 != 0,
    });
    let cfg = MessageConfig {
        // Small limits so the fuzzer reaches them.
        max_message_bytes: 4096,
        max_fragments: 64,
        max_inflated_bytes: 8192,
        max_inflate_work: 1 << 20,
        // Sometimes none at all: every compressed message is refused.
        max_inflaters: usize::from(ctl & 8 != 0),
        ..MessageConfig::default()
    };
    let mut dec = FrameDecoder::new(FrameConfig {
        expect_masked: dir == Dir::C2s,
    });
    let mut asm = Assembler::new(dir, cfg, deflate);
    let chunk = usize::from(ctl >> 3).max(1);
    let mut off = 0u64;
    let mut delivered = 0u64;
    let mut out = |o: Output<'_>| {
        if let Output::Message(m) = o {
            assert!(m.payload.len() <= 8192);
        }
    };
    for (i, piece) in rest.chunks(chunk).enumerate() {
        let ts = Timestamp::new(0, 0);
        if ctl & 8 != 0 && i % 7 == 3 {
            // A lost piece: the decoder must resync or desync, never guess.
            let _ = dec.gap(piece.len() as u64, i as u64 + 1, ts, &mut |ev| match ev {
                FrameEvent::Anomaly(_) => {}
                other => asm.on_event(other, &mut out),
            });
            asm.context_lost(i as u64 + 1, ts);
        } else {
            dec.feed(piece, off, i as u64 + 1, ts, &mut |ev| match ev {
                FrameEvent::Anomaly(_) => {}
                other => {
                    if let FrameEvent::Payload { data, .. } = &other {
                        delivered += data.len() as u64;
                    }
                    asm.on_event(other, &mut out)
                }
            });
        }
        off += piece.len() as u64;
    }
    asm.finish(0, Timestamp::new(0, 0), &mut out);
    // Payload handed on is a subset of the input.
    assert!(delivered <= rest.len() as u64);
});
