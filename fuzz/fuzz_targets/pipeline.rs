//! The whole pipeline on arbitrary capture bytes (with small limits, so the
//! fuzzer reaches them).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::io::Cursor;
use wssniff::capture::CaptureReader;
use wssniff::pipeline::{Analyzer, Config};
use wssniff::sink::Collect;

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::from_reader(Box::new(Cursor::new(data.to_vec())), "fuzz")
    else {
        return;
    };
    let mut cfg = Config::default();
    cfg.tcp.max_ooo_bytes_per_dir = 4096;
    cfg.tcp.max_segments_per_dir = 16;
    cfg.tcp.memcap = 64 << 10;
    cfg.tcp.max_flows = 8;
    cfg.message.max_message_bytes = 4096;
    cfg.message.max_inflated_bytes = 8192;
    cfg.message.max_inflate_work = 1 << 20;
    cfg.http.max_head_bytes = 4096;
    let mut an = Analyzer::new(cfg, Collect::default());
    while let Ok(Some(p)) = r.next_packet() {
        if an.packet(&p).is_err() {
            return;
        }
    }
    let _ = an.finish();
});
