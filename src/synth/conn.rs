//! A scripted TCP connection: writes the packets of one client/server
//! conversation into a [`PcapWriter`], keeping sequence and acknowledgement
//! numbers right, so tests only say what is sent, not how it is numbered.
//!
//! Offsets given to [`Conn::segment`] are relative to the first data byte of
//! that direction (ISN + 1), like Wireshark's relative sequence numbers.

use super::packet::{flags, tcp_packet};
use super::pcap::PcapWriter;
use crate::types::{Dir, Timestamp};
use std::io::{self, Write};
use std::net::SocketAddr;

/// Default time between two packets of a connection.
pub const DEFAULT_STEP_NANOS: u32 = 10_000;
pub const DEFAULT_WINDOW: u16 = 65_535;

pub struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    isn: [u32; 2],
    /// Data bytes sent so far per direction (the next relative offset).
    sent: [u32; 2],
    fin_sent: [bool; 2],
    ts: Timestamp,
    step_nanos: u32,
    window: u16,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(client: SocketAddr, server: SocketAddr, isn_c: u32, isn_s: u32) -> Self {
        Conn {
            client,
            server,
            isn: [isn_c, isn_s],
            sent: [0, 0],
            fin_sent: [false, false],
            ts: Timestamp::new(1_700_000_000, 0),
            step_nanos: DEFAULT_STEP_NANOS,
            window: DEFAULT_WINDOW,
            buf: Vec::with_capacity(2048),
        }
    }

    pub fn client(&self) -> SocketAddr {
        self.client
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Timestamp of the next packet.
    pub fn time(&self) -> Timestamp {
        self.ts
    }

    pub fn set_time(&mut self, ts: Timestamp) {
        self.ts = ts;
    }

    /// Time added after every packet written.
    pub fn set_step(&mut self, nanos: u32) {
        self.step_nanos = nanos;
    }

    pub fn set_window(&mut self, window: u16) {
        self.window = window;
    }

    /// The relative offset the next in-order data byte of `dir` will have.
    pub fn next_offset(&self, dir: Dir) -> u32 {
        self.sent[dir.index()]
    }

    /// Absolute sequence number of relative `offset` in `dir`.
    pub fn seq(&self, dir: Dir, offset: u32) -> u32 {
        self.isn[dir.index()].wrapping_add(1).wrapping_add(offset)
    }

    /// Moves `dir`'s next offset on by `n` without writing anything: the
    /// bytes are "sent" but never captured (a hole), or were written by
    /// hand with [`Conn::segment`].
    pub fn advance(&mut self, dir: Dir, n: u32) {
        let i = dir.index();
        self.sent[i] = self.sent[i].wrapping_add(n);
    }

    /// SYN, SYN-ACK, ACK, the first at `ts`.
    pub fn handshake<W: Write>(&mut self, w: &mut PcapWriter<W>, ts: Timestamp) -> io::Result<()> {
        self.ts = ts;
        let (c, s) = (Dir::C2s.index(), Dir::S2c.index());
        self.raw(w, Dir::C2s, self.isn[c], 0, flags::SYN, &[])?;
        self.raw(
            w,
            Dir::S2c,
            self.isn[s],
            self.isn[c].wrapping_add(1),
            flags::SYN | flags::ACK,
            &[],
        )?;
        self.raw(
            w,
            Dir::C2s,
            self.isn[c].wrapping_add(1),
            self.isn[s].wrapping_add(1),
            flags::ACK,
            &[],
        )
    }

    /// Sends `bytes` in order as segments of at most `mss` bytes, the last
    /// one with PSH, and advances the direction's offset.
    pub fn send<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        dir: Dir,
        bytes: &[u8],
        mss: usize,
    ) -> io::Result<()> {
        let mss = mss.max(1);
        let mut chunks = bytes.chunks(mss).peekable();
        while let Some(chunk) = chunks.next() {
            let push = if chunks.peek().is_none() {
                flags::PSH
            } else {
                0
            };
            self.segment(w, dir, self.next_offset(dir), chunk, flags::ACK | push)?;
            self.advance(dir, chunk.len() as u32);
        }
        Ok(())
    }

    /// FIN|ACK at the current offset; the FIN takes one sequence number.
    pub fn fin<W: Write>(&mut self, w: &mut PcapWriter<W>, dir: Dir) -> io::Result<()> {
        self.segment(w, dir, self.next_offset(dir), &[], flags::FIN | flags::ACK)?;
        self.fin_sent[dir.index()] = true;
        Ok(())
    }

    /// RST|ACK at the current offset.
    pub fn rst<W: Write>(&mut self, w: &mut PcapWriter<W>, dir: Dir) -> io::Result<()> {
        self.segment(w, dir, self.next_offset(dir), &[], flags::RST | flags::ACK)
    }

    /// One segment at relative `seq_offset` with exactly these `flags`; the
    /// acknowledgement number (when ACK is set) covers everything the other
    /// side has sent. Does not advance anything: use it for out-of-order,
    /// retransmitted, overlapping or missing data.
    pub fn segment<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        dir: Dir,
        seq_offset: u32,
        bytes: &[u8],
        flags: u8,
    ) -> io::Result<()> {
        let other = dir.other().index();
        let ack = if flags & flags::ACK != 0 {
            let fin = u32::from(self.fin_sent[other]);
            self.seq(dir.other(), self.sent[other]).wrapping_add(fin)
        } else {
            0
        };
        self.raw(w, dir, self.seq(dir, seq_offset), ack, flags, bytes)
    }

    fn raw<W: Write>(
        &mut self,
        w: &mut PcapWriter<W>,
        dir: Dir,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: &[u8],
    ) -> io::Result<()> {
        let (src, dst) = match dir {
            Dir::C2s => (self.client, self.server),
            Dir::S2c => (self.server, self.client),
        };
        tcp_packet(
            &mut self.buf,
            src,
            dst,
            seq,
            ack,
            flags,
            self.window,
            payload,
        );
        w.write_packet(self.ts, &self.buf)?;
        self.ts = Timestamp::from_nanos(self.ts.as_nanos() + self.step_nanos as i128);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{SlicedPacket, TransportSlice};

    struct Seg {
        src_port: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        payload: Vec<u8>,
        ts: Timestamp,
    }

    /// Reads back a classic little-endian µs pcap written by PcapWriter.
    fn segments(file: &[u8]) -> Vec<Seg> {
        let mut pos = 24;
        let mut out = Vec::new();
        while pos < file.len() {
            let f = |o: usize| u32::from_le_bytes(file[pos + o..pos + o + 4].try_into().unwrap());
            let (secs, usec, caplen) = (f(0), f(4), f(8) as usize);
            let pkt = &file[pos + 16..pos + 16 + caplen];
            let sliced = SlicedPacket::from_ethernet(pkt).unwrap();
            let Some(TransportSlice::Tcp(t)) = sliced.transport else {
                panic!("not tcp")
            };
            let fl = (t.fin() as u8)
                | (t.syn() as u8) << 1
                | (t.rst() as u8) << 2
                | (t.psh() as u8) << 3
                | (t.ack() as u8) << 4;
            out.push(Seg {
                src_port: t.source_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                flags: fl,
                payload: t.payload().to_vec(),
                ts: Timestamp::new(secs as i64, usec * 1000),
            });
            pos += 16 + caplen;
        }
        out
    }

    fn conn() -> Conn {
        Conn::new(
            "10.0.0.1:40000".parse().unwrap(),
            "10.0.0.2:9000".parse().unwrap(),
            u32::MAX - 2, // wraps during the test
            1000,
        )
    }

    #[test]
    fn handshake_send_fin_numbers() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut c = conn();
        c.handshake(&mut w, Timestamp::new(10, 0)).unwrap();
        c.send(&mut w, Dir::C2s, b"abcdefg", 3).unwrap();
        c.send(&mut w, Dir::S2c, b"xy", 1460).unwrap();
        c.fin(&mut w, Dir::C2s).unwrap();
        c.fin(&mut w, Dir::S2c).unwrap();
        let s = segments(&w.into_inner());
        assert_eq!(s.len(), 3 + 3 + 1 + 2);
        assert_eq!((s[0].seq, s[0].flags), (u32::MAX - 2, flags::SYN));
        assert_eq!(
            (s[1].seq, s[1].ack, s[1].flags),
            (1000, u32::MAX - 1, flags::SYN | flags::ACK)
        );
        assert_eq!((s[2].seq, s[2].ack), (u32::MAX - 1, 1001));
        // c2s data: offsets 0, 3, 6 -> seq wraps past 2^32.
        assert_eq!(s[3].seq, u32::MAX - 1);
        assert_eq!(s[4].seq, 1);
        assert_eq!(s[5].seq, 4);
        assert_eq!(s[5].payload, b"g");
        assert_eq!(s[3].flags, flags::ACK);
        assert_eq!(s[5].flags, flags::ACK | flags::PSH);
        // s2c acks all 7 client bytes.
        assert_eq!(
            (s[6].seq, s[6].ack, s[6].payload.as_slice()),
            (1001, 5, &b"xy"[..])
        );
        // client FIN acks server data; server FIN acks the client FIN.
        assert_eq!(
            (s[7].seq, s[7].ack, s[7].flags),
            (5, 1003, flags::FIN | flags::ACK)
        );
        assert_eq!(
            (s[8].seq, s[8].ack, s[8].flags),
            (1003, 6, flags::FIN | flags::ACK)
        );
        assert_eq!(s[0].src_port, 40000);
        assert_eq!(s[1].src_port, 9000);
        // Timestamps advance by the default step.
        assert_eq!(s[0].ts, Timestamp::new(10, 0));
        assert_eq!(s[8].ts, Timestamp::new(10, 8 * DEFAULT_STEP_NANOS));
    }

    #[test]
    fn raw_segments_do_not_advance() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        let mut c = conn();
        c.handshake(&mut w, Timestamp::new(0, 0)).unwrap();
        // Out of order: second half first, then the first half.
        c.segment(&mut w, Dir::S2c, 3, b"def", flags::ACK).unwrap();
        c.segment(&mut w, Dir::S2c, 0, b"abc", flags::ACK).unwrap();
        assert_eq!(c.next_offset(Dir::S2c), 0);
        c.advance(Dir::S2c, 6);
        c.rst(&mut w, Dir::S2c).unwrap();
        let s = segments(&w.into_inner());
        assert_eq!(s[3].seq, 1004);
        assert_eq!(s[4].seq, 1001);
        assert_eq!((s[5].seq, s[5].flags), (1007, flags::RST | flags::ACK));
    }
}
