use crate::types::{Anomaly, Timestamp};
pub mod opcode {
    pub const CONTINUATION: u8 = 0;
    pub const TEXT: u8 = 1;
    pub const BINARY: u8 = 2;
    pub const CLOSE: u8 = 8;
    pub const PING: u8 = 9;
    pub const PONG: u8 = 10;
    pub fn is_control(op: u8) -> bool {
        op & 0x08 != 0
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    pub rsv: u8, /*3 bits, RSV1 = 0b100*/
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    pub len: u64,
    pub header_len: u8,
    pub non_minimal: bool,
    pub len_top_bit: bool,
}
pub enum FrameEvent<'a> {
    Header {
        hdr: FrameHeader,
        offset: u64, /*stream offset of the frame's first byte*/
        packet: u64,
        ts: Timestamp,
    },
    Payload {
        data: &'a [u8],      /*raw wire bytes, still masked*/
        payload_offset: u64, /*position of data[0] within the frame payload*/
        mask: Option<[u8; 4]>,
        packet: u64,
        ts: Timestamp,
    },
    Gap {
        len: u64,
        packet: u64,
        ts: Timestamp,
    }, // bytes lost inside the current frame's payload
    End {
        packet: u64,
        ts: Timestamp,
    }, // frame complete (a zero-length frame is Header then End)
    Anomaly(Anomaly),
}
pub fn unmask_extend(dst: &mut Vec<u8>, src: &[u8], key: [u8; 4], offset: usize) {
    dst.extend(
        src.iter()
            .enumerate()
            .map(|(i, b)| b ^ key[(offset + i) % 4]),
    )
}
