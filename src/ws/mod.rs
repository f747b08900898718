//! ws stage: RFC 6455 framing.
//!
//! [`parse_header`] reads one frame header from at most 14 bytes;
//! [`FrameDecoder`] turns one direction's byte stream into [`FrameEvent`]s
//! without ever buffering payload: payload bytes are handed on as slices of
//! the input, still masked, and [`unmask`]/[`unmask_extend`] remove the mask
//! where the message layer copies them. Nothing here allocates from a length
//! the input declares.
//!
//! What this stage judges is the frame header alone (masking direction,
//! reserved opcodes, length encoding, control-frame rules). RSV bits without a
//! negotiated extension, fragmentation order, UTF-8 and close payloads belong
//! to the message layer.

pub mod chain;
mod decoder;
mod header;
mod mask;

pub use chain::{probe, ChainVerdict, MidstreamStart};
pub use decoder::{FrameConfig, FrameDecoder, FrameEvent, RESYNC_LIMIT};
pub use header::{
    encode_frame, encode_header, opcode, parse_header, FrameHeader, HeaderParse, MAX_HEADER_LEN,
};
pub use mask::{unmask, unmask_extend};

/// Every anomaly name this stage can emit, with its meaning.
pub const ANOMALIES: &[(&str, &str)] = &[
    ("ws_unmasked_client_frame", "a client-to-server frame was not masked (RFC 6455 5.1 requires it)"),
    ("ws_masked_server_frame", "a server-to-client frame was masked (RFC 6455 5.1 forbids it)"),
    ("ws_reserved_opcode", "a frame used a reserved opcode (3-7, 11-15); its length is still known, decoding stays in sync"),
    ("ws_non_minimal_length", "the payload length was not encoded in the shortest form"),
    ("ws_length_top_bit", "a 64-bit payload length had its most significant bit set; the direction is treated as desynchronized"),
    ("ws_control_too_long", "a control frame (close, ping, pong) declared more than 125 payload bytes"),
    ("ws_control_fragmented", "a control frame had FIN=0 (control frames must not be fragmented)"),
    ("ws_desync", "bytes were lost where a frame header was expected (or the length was unusable); the rest of the direction is not decoded"),
    ("ws_resync_search", "bytes were lost where a frame header was expected (or the length was unusable); the decoder searches the following bytes for the next frame boundary"),
    ("ws_resync", "decoding resumed after a loss at a chain of valid frames; detail gives the captured bytes skipped and their stream offsets"),
    ("ws_resync_failed", "the stream ended while searching for a frame boundary after a loss; detail gives the captured bytes not decoded"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Timestamp;

    #[test]
    fn every_emitted_anomaly_is_listed() {
        let names: Vec<&str> = ANOMALIES.iter().map(|(n, _)| *n).collect();
        let mut dedup = names.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), names.len());
        // Streams that between them trigger every anomaly; the trailing gap
        // desyncs each decoder.
        let streams: [(&[u8], bool); 3] = [
            (
                &[
                    0x83, 0x00, 0x82, 0x7e, 0x00, 0x01, 0xaa, 0x09, 0x7e, 0x00, 0x80,
                ],
                false,
            ),
            (&[0x82, 0x80, 1, 2, 3, 4], false),
            (&[0x82, 0x00, 0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0], true),
        ];
        let mut seen = Vec::new();
        for (s, masked) in streams {
            let mut dec = FrameDecoder::new(FrameConfig {
                expect_masked: masked,
            });
            let mut collect = |e: FrameEvent<'_>| {
                if let FrameEvent::Anomaly(a) = e {
                    seen.push(a.name);
                }
            };
            dec.feed(s, 0, 1, Timestamp::default(), &mut collect);
            dec.gap(1, 2, Timestamp::default(), &mut collect);
        }
        // Resync: one that finds a chain, one that does not.
        let mut chain = Vec::new();
        for _ in 0..6 {
            encode_frame(&mut chain, true, 0, opcode::PING, None, b"p");
        }
        for (tail, end) in [(&chain[..], 0u64), (&[0x83u8][..], 1)] {
            let mut dec = FrameDecoder::new(FrameConfig {
                expect_masked: false,
            })
            .resyncing();
            let mut collect = |e: FrameEvent<'_>| {
                if let FrameEvent::Anomaly(a) = e {
                    seen.push(a.name);
                }
            };
            dec.gap(1, 1, Timestamp::default(), &mut collect);
            dec.feed(tail, 1, 2, Timestamp::default(), &mut collect);
            dec.finish(3 + end, Timestamp::default(), &mut collect);
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen, dedup);
    }
}
