//! The capture reader (pcap / pcapng / gzip) over arbitrary bytes: every
//! packet is read until an error or the end; nothing may panic or hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use wssniff::capture::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::from_reader(Box::new(Cursor::new(data.to_vec())), "fuzz")
    else {
        return;
    };
    let mut notices = Vec::new();
    let mut total = 0usize;
    while let Ok(Some(p)) = r.next_packet() {
        // A packet can never be longer than the caplen limit.
        assert!(p.data.len() <= wssniff::capture::MAX_CAPLEN as usize);
        total += p.data.len();
        r.drain_notices(&mut notices);
    }
    // Bytes handed out come from the input: the reader cannot invent data
    // (gzip aside, which a fuzzer rarely produces validly).
    let _ = total;
    let _ = r.bytes_consumed();
});
