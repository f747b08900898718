//! Live capture from a network interface through libpcap, opened the way
//! tcpdump opens it, and a writer that saves what was captured to a pcap
//! file as it goes.
//!
//! [`LiveCapture::open`] does everything that can fail for a reason the user
//! must fix (unknown interface, missing privileges, bad filter expression)
//! before returning, so a caller can open its output files afterwards and
//! never leave them half-written. [`LiveCapture::next_packet`] returns
//! `Ok(None)` when the read timeout expires with nothing captured, so the
//! caller's loop can notice a stop request promptly.

use super::Packet;
use crate::types::Timestamp;
use std::fmt;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// tcpdump's default snapshot length: whole packets.
pub const DEFAULT_SNAPLEN: u32 = 262_144;
/// How long one read waits for a packet before returning `Ok(None)`: the
/// longest a stop request (a signal, `--duration`) waits to be noticed.
/// The capture is non-blocking and waits in `poll(2)` itself: with
/// TPACKET_V3, libpcap's own read timeout does not bound a blocking read
/// when no packet arrives, and a signal does not end it either.
pub const READ_TIMEOUT_MS: u16 = 150;
/// Longest a packet waits in the save file's buffer before being written.
pub const SAVE_FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// Save file write buffer.
pub const SAVE_BUFFER: usize = 64 * 1024;

/// What the capture needs, with tcpdump's defaults.
#[derive(Clone, Debug)]
pub struct LiveConfig {
    /// Interface name, as `-D` lists it (`any` captures on all of them).
    pub interface: String,
    /// Bytes kept of each packet (`-s`); 0 means the default.
    pub snaplen: u32,
    /// Promiscuous mode (on unless `-p`).
    pub promisc: bool,
    /// Kernel buffer size in bytes (`-B`, given in KiB); None keeps libpcap's.
    pub buffer_bytes: Option<u32>,
    /// BPF filter expression; None or empty captures everything.
    pub filter: Option<String>,
}

impl LiveConfig {
    /// Capture on `interface` with the defaults: `DEFAULT_SNAPLEN`,
    /// promiscuous, libpcap's buffer size, no filter.
    pub fn new(interface: &str) -> Self {
        LiveConfig {
            interface: interface.to_owned(),
            snaplen: DEFAULT_SNAPLEN,
            promisc: true,
            buffer_bytes: None,
            filter: None,
        }
    }
}

/// Why a live capture could not start or stopped.
#[derive(Debug)]
pub enum LiveError {
    /// No interface of that name.
    NoSuchInterface {
        /// The name asked for.
        interface: String,
        /// Names of the interfaces that do exist.
        known: Vec<String>,
    },
    /// The process may not capture.
    PermissionDenied {
        /// The interface asked for.
        interface: String,
        /// libpcap's message.
        detail: String,
    },
    /// The filter expression does not compile.
    BadFilter {
        /// The filter expression as given.
        expr: String,
        /// libpcap's message.
        detail: String,
    },
    /// Any other failure to open the interface.
    Open {
        /// The interface asked for.
        interface: String,
        /// libpcap's message.
        detail: String,
    },
    /// Reading failed after the capture had started (the interface went
    /// down, the socket failed).
    Read {
        /// The interface being captured.
        interface: String,
        /// What failed (libpcap's or the system's message).
        detail: String,
    },
    /// The interface list could not be read.
    List {
        /// libpcap's message.
        detail: String,
    },
}

impl LiveError {
    /// Whether the capture never started (a usage problem, exit status 2),
    /// as opposed to failing while running.
    pub fn is_startup(&self) -> bool {
        !matches!(self, LiveError::Read { .. })
    }
}

/// The hint tcpdump users need when capturing is not permitted.
pub const PERMISSION_HINT: &str = "capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities (setcap cap_net_raw,cap_net_admin=eip $(which wssniff))";

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::NoSuchInterface { interface, known } => {
                write!(f, "no such interface: {interface}")?;
                if !known.is_empty() {
                    write!(f, " (interfaces: {}; see wssniff -D)", known.join(", "))?;
                }
                Ok(())
            }
            LiveError::PermissionDenied { interface, detail } => write!(
                f,
                "permission denied opening {interface}: {PERMISSION_HINT} [libpcap: {detail}]"
            ),
            LiveError::BadFilter { expr, detail } => {
                write!(f, "bad filter expression '{expr}': {detail}")
            }
            LiveError::Open { interface, detail } => {
                write!(f, "cannot capture on {interface}: {detail}")
            }
            LiveError::Read { interface, detail } => {
                write!(f, "capture on {interface} failed: {detail}")
            }
            LiveError::List { detail } => write!(f, "cannot list interfaces: {detail}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// Whether a libpcap message means the process lacks the privilege to capture.
fn is_permission_error(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("permission") || m.contains("not permitted")
}

/// Whether a libpcap message means the interface does not exist.
fn is_no_such_device(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    m.contains("no such device") || m.contains("doesn't exist")
}

/// One interface of `-D`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfaceInfo {
    /// The name to pass to `-i`.
    pub name: String,
    /// libpcap's description of it; None when it has none.
    pub description: Option<String>,
    /// tcpdump's bracketed flags: `Up`, `Running`, `Loopback`, `Wireless`.
    pub flags: Vec<&'static str>,
}

impl fmt::Display for InterfaceInfo {
    /// tcpdump -D's form, without the number: `lo [Up, Running, Loopback]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(d) = &self.description {
            write!(f, " ({d})")?;
        }
        if !self.flags.is_empty() {
            write!(f, " [{}]", self.flags.join(", "))?;
        }
        Ok(())
    }
}

/// The interfaces libpcap can capture on, in its order.
pub fn list_interfaces() -> Result<Vec<InterfaceInfo>, LiveError> {
    let devices = pcap::Device::list().map_err(|e| LiveError::List {
        detail: e.to_string(),
    })?;
    Ok(devices
        .into_iter()
        .map(|d| {
            let mut flags = Vec::new();
            for (set, name) in [
                (d.flags.is_up(), "Up"),
                (d.flags.is_running(), "Running"),
                (d.flags.is_wireless(), "Wireless"),
                (d.flags.is_loopback(), "Loopback"),
            ] {
                if set {
                    flags.push(name);
                }
            }
            InterfaceInfo {
                name: d.name,
                description: d.desc,
                flags,
            }
        })
        .collect())
}

/// Counters of the kernel and the interface (`pcap_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Packets that passed the filter.
    pub received: u32,
    /// Dropped by the kernel for lack of buffer space.
    pub dropped: u32,
    /// Dropped by the interface or its driver.
    pub if_dropped: u32,
}

/// An open live capture.
pub struct LiveCapture {
    cap: pcap::Capture<pcap::Active>,
    interface: String,
    link_type: u32,
    snaplen: u32,
    captured: u64,
    /// A duplicate of the capture's descriptor, waited on with `poll(2)`. A
    /// separate field so waiting does not borrow `cap` while a returned
    /// packet may still borrow it.
    wait_fd: std::os::fd::OwnedFd,
}

impl LiveCapture {
    /// Opens the interface, activates it and sets the filter. Immediate mode
    /// is always on, so packets are delivered as they arrive.
    pub fn open(cfg: &LiveConfig) -> Result<Self, LiveError> {
        let iface = cfg.interface.clone();
        // libpcap's own message for an unknown name varies by platform and
        // version; the device list gives a clear answer and the names to try.
        let known: Vec<String> = pcap::Device::list()
            .map(|l| l.into_iter().map(|d| d.name).collect())
            .unwrap_or_default();
        if !known.is_empty() && !known.contains(&iface) {
            return Err(LiveError::NoSuchInterface {
                interface: iface,
                known,
            });
        }
        let classify = |e: pcap::Error| {
            let detail = e.to_string();
            if is_permission_error(&detail) {
                LiveError::PermissionDenied {
                    interface: iface.clone(),
                    detail,
                }
            } else if is_no_such_device(&detail) {
                LiveError::NoSuchInterface {
                    interface: iface.clone(),
                    known: known.clone(),
                }
            } else {
                LiveError::Open {
                    interface: iface.clone(),
                    detail,
                }
            }
        };
        let snaplen = if cfg.snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            cfg.snaplen
        };
        let mut inactive = pcap::Capture::from_device(iface.as_str())
            .map_err(classify)?
            .snaplen(i32::try_from(snaplen).unwrap_or(i32::MAX))
            .promisc(cfg.promisc)
            .immediate_mode(true)
            .timeout(i32::from(READ_TIMEOUT_MS));
        if let Some(b) = cfg.buffer_bytes {
            inactive = inactive.buffer_size(i32::try_from(b).unwrap_or(i32::MAX));
        }
        let mut cap = inactive.open().map_err(classify)?;
        if let Some(expr) = cfg.filter.as_deref().filter(|f| !f.trim().is_empty()) {
            cap.filter(expr, true).map_err(|e| LiveError::BadFilter {
                expr: expr.to_owned(),
                detail: e.to_string(),
            })?;
        }
        let cap = cap.setnonblock().map_err(|e| LiveError::Open {
            interface: iface.clone(),
            detail: format!("cannot make the capture non-blocking: {e}"),
        })?;
        let wait_fd = {
            use std::os::fd::AsFd;
            cap.as_fd()
                .try_clone_to_owned()
                .map_err(|e| LiveError::Open {
                    interface: iface.clone(),
                    detail: format!("cannot duplicate the capture descriptor: {e}"),
                })?
        };
        let link_type = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        Ok(LiveCapture {
            cap,
            interface: iface,
            link_type,
            snaplen,
            captured: 0,
            wait_fd,
        })
    }

    /// Name of the interface being captured.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// LINKTYPE_* value of the packets.
    pub fn link_type(&self) -> u32 {
        self.link_type
    }

    /// Bytes kept of each packet, as in effect on the capture.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Packets returned so far.
    pub fn captured(&self) -> u64 {
        self.captured
    }

    /// tcpdump's readiness line, without the program name:
    /// `listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes`.
    pub fn listening_line(&self) -> String {
        let lt = self.cap.get_datalink();
        let name = lt
            .get_name()
            .unwrap_or_else(|_| format!("DLT_{}", self.link_type));
        let desc = lt.get_description().unwrap_or_else(|_| name.clone());
        format!(
            "listening on {}, link-type {name} ({desc}), snapshot length {} bytes",
            self.interface, self.snaplen
        )
    }

    /// The next packet, or `Ok(None)` when none was waiting; the call then
    /// waited up to [`READ_TIMEOUT_MS`] (less when a packet or a signal
    /// came) before returning. Packet numbers are 1-based in capture order.
    pub fn next_packet(&mut self) -> Result<Option<Packet<'_>>, LiveError> {
        match self.cap.next_packet() {
            Ok(p) => {
                self.captured += 1;
                // Microseconds (libpcap's default precision); a value out of
                // range cannot come from the kernel, but is clamped rather
                // than trusted.
                let usec = u32::try_from(p.header.ts.tv_usec).unwrap_or(0).min(999_999);
                // time_t is 32 bits on some targets: the conversion is not
                // useless everywhere.
                #[allow(clippy::useless_conversion)]
                let secs = i64::from(p.header.ts.tv_sec);
                let ts = Timestamp::new(secs, usec * 1000);
                Ok(Some(Packet {
                    number: self.captured,
                    ts,
                    link_type: self.link_type,
                    data: p.data,
                    orig_len: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                wait_readable(&self.wait_fd, &self.interface)?;
                Ok(None)
            }
            Err(e) => Err(LiveError::Read {
                interface: self.interface.clone(),
                detail: e.to_string(),
            }),
        }
    }

    /// The kernel's and the interface's counters; None when libpcap cannot
    /// give them.
    pub fn stats(&mut self) -> Option<LiveStats> {
        self.cap.stats().ok().map(|s| LiveStats {
            received: s.received,
            dropped: s.dropped,
            if_dropped: s.if_dropped,
        })
    }
}

/// Waits until the capture has something to read (or an error to report),
/// a signal arrives, or [`READ_TIMEOUT_MS`] passes.
fn wait_readable(fd: &std::os::fd::OwnedFd, interface: &str) -> Result<(), LiveError> {
    use nix::poll::{poll, PollFd, PollFlags};
    use std::os::fd::AsFd;
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, READ_TIMEOUT_MS) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(LiveError::Read {
            interface: interface.to_owned(),
            detail: format!("poll: {e}"),
        }),
    }
}

/// Writes captured packets to a classic pcap file (microseconds, native
/// little-endian layout, the capture's link type and snaplen), exactly as
/// libpcap delivered them. Buffered, but never holds a packet longer than
/// [`SAVE_FLUSH_INTERVAL`] once the caller calls [`SaveFile::tick`].
pub struct SaveFile<W: Write> {
    out: io::BufWriter<W>,
    last_flush: Instant,
    packets: u64,
}

impl<W: Write> SaveFile<W> {
    /// Writes the pcap file header (`link_type` is a LINKTYPE_* value,
    /// `snaplen` in bytes) to `out` and flushes it.
    pub fn new(out: W, link_type: u32, snaplen: u32) -> io::Result<Self> {
        let mut out = io::BufWriter::with_capacity(SAVE_BUFFER, out);
        let mut hdr = [0u8; 24];
        hdr[0..4].copy_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        hdr[4..6].copy_from_slice(&2u16.to_le_bytes());
        hdr[6..8].copy_from_slice(&4u16.to_le_bytes());
        hdr[16..20].copy_from_slice(&snaplen.to_le_bytes());
        hdr[20..24].copy_from_slice(&link_type.to_le_bytes());
        out.write_all(&hdr)?;
        out.flush()?;
        Ok(SaveFile {
            out,
            last_flush: Instant::now(),
            packets: 0,
        })
    }

    /// Appends one packet.
    pub fn write(&mut self, pkt: &Packet<'_>) -> io::Result<()> {
        let caplen = u32::try_from(pkt.data.len()).unwrap_or(u32::MAX);
        let mut rec = [0u8; 16];
        // pcap seconds are 32 bits, as in every file tcpdump writes.
        rec[0..4].copy_from_slice(&(pkt.ts.secs as u32).to_le_bytes());
        rec[4..8].copy_from_slice(&(pkt.ts.nanos / 1000).to_le_bytes());
        rec[8..12].copy_from_slice(&caplen.to_le_bytes());
        rec[12..16].copy_from_slice(&pkt.orig_len.to_le_bytes());
        self.out.write_all(&rec)?;
        self.out.write_all(pkt.data)?;
        self.packets += 1;
        self.tick()
    }

    /// Flushes when the oldest buffered packet has waited long enough; call
    /// it when a read times out too, so an idle capture is on disk.
    pub fn tick(&mut self) -> io::Result<()> {
        if self.last_flush.elapsed() >= SAVE_FLUSH_INTERVAL {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes every buffered packet to the underlying writer now.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Packets written so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Flushes and returns the writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::CaptureReader;

    #[test]
    fn save_file_round_trips_through_the_reader() {
        let mut buf = Vec::new();
        {
            let mut w = SaveFile::new(&mut buf, 1, 1234).unwrap();
            let data = [7u8; 60];
            for i in 0..3u32 {
                let p = Packet {
                    number: u64::from(i) + 1,
                    ts: Timestamp::new(1_700_000_000 + i64::from(i), 123_456_000),
                    link_type: 1,
                    data: &data[..20 + i as usize],
                    orig_len: 100 + i,
                };
                w.write(&p).unwrap();
            }
            assert_eq!(w.packets(), 3);
            w.flush().unwrap();
        }
        let mut r = CaptureReader::from_reader(Box::new(std::io::Cursor::new(buf)), "t").unwrap();
        let mut n = 0u32;
        while let Some(p) = r.next_packet().unwrap() {
            assert_eq!(
                p.ts,
                Timestamp::new(1_700_000_000 + i64::from(n), 123_456_000)
            );
            assert_eq!(p.data.len(), 20 + n as usize);
            assert_eq!(p.orig_len, 100 + n);
            assert_eq!(p.link_type, 1);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn errors_are_classified_from_libpcap_messages() {
        assert!(is_permission_error(
            "You don't have permission to capture on that device (socket: Operation not permitted)"
        ));
        assert!(!is_permission_error("No such device exists"));
        assert!(is_no_such_device("SIOCGIFHWADDR: No such device"));
        let e = LiveError::PermissionDenied {
            interface: "lo".into(),
            detail: "x".into(),
        };
        let s = e.to_string();
        assert!(s.starts_with("permission denied opening lo: "), "{s}");
        assert!(s.contains("CAP_NET_RAW"), "{s}");
        assert!(e.is_startup());
        assert!(!LiveError::Read {
            interface: "lo".into(),
            detail: "down".into()
        }
        .is_startup());
    }

    #[test]
    fn unknown_interface_is_refused_before_opening() {
        // Listing interfaces needs no privilege; an unknown name is refused
        // whoever runs the test.
        match LiveCapture::open(&LiveConfig::new("wssniff-no-such-if0")) {
            Err(LiveError::NoSuchInterface { interface, .. }) => {
                assert_eq!(interface, "wssniff-no-such-if0")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("opened a non-existent interface"),
        }
    }
}
