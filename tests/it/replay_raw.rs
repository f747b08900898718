//! wsreplay --raw: the recorded wire bytes go out exactly as captured.
use crate::support_replay;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;
use support_replay::*;

type HeadAndBody = (Vec<u8>, Vec<u8>);

/// A plain TCP server that answers the handshake (when `answer`) and keeps
/// the request head and the next `want` bytes it receives.
fn recording_server(want: usize, answer: bool) -> (u16, std::thread::JoinHandle<HeadAndBody>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            s.read_exact(&mut byte).unwrap();
            buf.push(byte[0]);
        }
        let head = buf;
        let text = String::from_utf8_lossy(&head).to_string();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap_or("")
            .trim()
            .to_string();
        if answer {
            let accept = wssniff::replay::handshake::accept_key(&key);
            write!(s, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n").unwrap();
        }
        let mut body = vec![0u8; want];
        s.read_exact(&mut body).unwrap();
        (head, body)
    });
    (port, h)
}

fn raw_spec() -> Spec {
    Spec {
        messages: vec![
            c2s(TEXT, b"raw one", 10),
            s2c(TEXT, b"reply", 11),
            c2s(BINARY, &[5; 200], 20),
            c2s(CLOSE, &close_payload(1000, ""), 30),
        ],
        // An unmasked frame with a reserved opcode: malformed, and kept.
        c2s_trailer: vec![0x83, 0x01, 0x41],
        ..Default::default()
    }
}

#[test]
fn raw_client_sends_c2s_bin_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &raw_spec());
    let c2s_bin = std::fs::read(session_file(dir.path(), 1, "c2s.bin")).unwrap();
    let (port, server) = recording_server(c2s_bin.len(), true);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--raw",
            "--target",
            &format!("ws://127.0.0.1:{port}/"),
            "--timeout",
            "3",
            "--json",
        ]),
        30,
    );
    let (head, body) = server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(body, c2s_bin);
    assert!(String::from_utf8_lossy(&head).contains(&format!("Host: 127.0.0.1:{port}")));
    let report = out.json();
    assert_eq!(report["raw"], true);
    assert_eq!(report["sent"]["bytes"], c2s_bin.len());
}

#[test]
fn raw_with_handshake_sends_the_recorded_request_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &raw_spec());
    let c2s_bin = std::fs::read(session_file(dir.path(), 1, "c2s.bin")).unwrap();
    let request = std::fs::read(session_file(dir.path(), 1, "request.http")).unwrap();
    let (port, server) = recording_server(c2s_bin.len(), true);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--raw",
            "--with-handshake",
            "--target",
            &format!("ws://127.0.0.1:{port}"),
            "--timeout",
            "3",
        ]),
        30,
    );
    let (head, body) = server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(head, request);
    assert_eq!(body, c2s_bin);
}

#[test]
fn raw_server_sends_s2c_bin_exactly() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &raw_spec());
    let s2c_bin = std::fs::read(session_file(dir.path(), 1, "s2c.bin")).unwrap();
    let (child, addr, _err) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--raw",
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        "2",
    ]));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let out = wait(child, 20);
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    assert!(all.starts_with(b"HTTP/1.1 101"));
    assert!(String::from_utf8_lossy(&all[..end]).contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    assert_eq!(&all[end..], &s2c_bin[..]);
    assert_eq!(out.code, Some(0), "stdout: {}", out.stdout);
}
