//! decode stage: see docs/ARCHITECTURE.md.

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

pub struct Segment<'a> {
    pub src: std::net::SocketAddr,
    pub dst: std::net::SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: &'a [u8],
    pub missing: u32, /* payload bytes cut by snaplen: they follow `payload` and are lost */
}
