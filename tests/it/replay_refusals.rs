//! wsreplay refuses what it cannot replay faithfully, each with its own status.
use crate::support_replay;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;
use support_replay::*;
use wssniff::session::ExportGap;

fn spec() -> Spec {
    Spec {
        messages: vec![c2s(TEXT, b"x", 1), s2c(TEXT, b"x", 2)],
        ..Default::default()
    }
}

fn client(dir: &std::path::Path, extra: &[&str]) -> Outcome {
    // Port 9 on loopback: nothing should listen; refusals must happen before connecting.
    run(
        wsreplay()
            .arg("client")
            .arg(dir)
            .args(["--target", "ws://127.0.0.1:9/", "--timeout", "2"])
            .args(extra),
        20,
    )
}

#[test]
fn session_with_gaps_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.gaps.push(ExportGap {
        dir: wssniff::types::Dir::S2c,
        offset: 3,
        len: 1448,
    });
    write_export(dir.path(), &s);
    let out = client(dir.path(), &[]);
    assert_eq!(out.code, Some(5), "{}", out.stderr);
    assert!(
        out.stderr.contains("1 gap(s), 1448 bytes") && out.stderr.contains("--allow-gaps"),
        "{}",
        out.stderr
    );
    // Allowed: it proceeds to connect, and fails there (nothing listens on port 9).
    let out = client(dir.path(), &["--allow-gaps"]);
    assert_eq!(out.code, Some(4), "{}", out.stderr);
}

#[test]
fn unknown_session_id_is_status_3() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &spec());
    let out = client(dir.path(), &["--session", "42"]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("no session 42"), "{}", out.stderr);
}

#[test]
fn modified_file_is_status_3() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &spec());
    let path = session_file(dir.path(), 1, "c2s.bin");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let out = client(dir.path(), &[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("c2s.bin: SHA-256"), "{}", out.stderr);
}

#[test]
fn missing_export_and_schema_mismatch_are_status_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = client(&dir.path().join("nope"), &[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    write_export(dir.path(), &spec());
    let manifest = dir.path().join("manifest.json");
    let text =
        std::fs::read_to_string(&manifest)
            .unwrap()
            .replacen("\"schema\": 1", "\"schema\": 99", 1);
    std::fs::write(&manifest, text).unwrap();
    let out = client(dir.path(), &[]);
    assert_eq!(out.code, Some(3), "{}", out.stderr);
    assert!(out.stderr.contains("schema 99"), "{}", out.stderr);
}

#[test]
fn plain_http_target_is_status_4() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &spec());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf);
        s.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
        )
        .unwrap();
    });
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}/"),
            "--timeout",
            "3",
        ]),
        20,
    );
    server.join().unwrap();
    assert_eq!(out.code, Some(4), "{}", out.stderr);
    assert!(
        out.stderr.contains("not a WebSocket server") && out.stderr.contains("200 OK"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_usage_is_status_2_and_list_prints_sessions() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &spec());
    let out = run(
        wsreplay()
            .arg("client")
            .arg(dir.path())
            .args(["--target", "http://x/"]),
        20,
    );
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    let out = run(wsreplay().arg("client").arg(dir.path()), 20);
    assert_eq!(out.code, Some(2), "missing --target: {}", out.stderr);
    let out = run(wsreplay().arg("list").arg(dir.path()), 20);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout
            .contains("10.0.0.1:50000 -> 10.0.0.2:8765  /chat  c2s=1 s2c=1"),
        "{}",
        out.stdout
    );
    let help = run(wsreplay().arg("--help"), 20);
    assert!(
        help.stdout.contains("5  session refused"),
        "{}",
        help.stdout
    );
}
