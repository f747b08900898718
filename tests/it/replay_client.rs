//! wsreplay client mode against real third-party servers on loopback.
use crate::support_replay;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support_replay::*;
use tungstenite::Message;

type Log = Arc<Mutex<Vec<(u8, Vec<u8>)>>>;
type Headers = Arc<Mutex<Vec<(String, String)>>>;

/// A tungstenite echo server for one connection; logs every message and the
/// request headers it saw. `mangle` changes text echoes (to provoke differences).
fn echo_server(mangle: bool) -> (u16, Log, Headers, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let headers: Headers = Arc::default();
    let (log2, headers2) = (log.clone(), headers.clone());
    let h = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        #[allow(clippy::result_large_err)] // tungstenite's callback signature
        let cb = |req: &tungstenite::handshake::server::Request, resp| {
            let mut hs = headers2.lock().unwrap();
            hs.push(("uri".into(), req.uri().to_string()));
            for (n, v) in req.headers() {
                hs.push((n.to_string(), v.to_str().unwrap_or("").to_string()));
            }
            Ok(resp)
        };
        let mut ws = tungstenite::accept_hdr(stream, cb).unwrap();
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    log2.lock().unwrap().push((TEXT, t.as_bytes().to_vec()));
                    let reply = if mangle {
                        t.replace("world", "WORLD")
                    } else {
                        t
                    };
                    ws.send(Message::Text(reply)).unwrap();
                }
                Ok(Message::Binary(b)) => {
                    log2.lock().unwrap().push((BINARY, b.clone()));
                    ws.send(Message::Binary(b)).unwrap();
                }
                Ok(Message::Ping(p)) => log2.lock().unwrap().push((PING, p)),
                Ok(Message::Close(c)) => {
                    let p = c
                        .map(|c| close_payload(c.code.into(), &c.reason))
                        .unwrap_or_default();
                    log2.lock().unwrap().push((CLOSE, p));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (port, log, headers, h)
}

fn echo_spec() -> Spec {
    Spec {
        messages: vec![
            c2s(TEXT, b"hello world", 10),
            s2c(TEXT, b"hello world", 12),
            c2s(BINARY, &[0, 1, 2, 255], 20),
            s2c(BINARY, &[0, 1, 2, 255], 22),
            c2s(PING, b"ping!", 30),
            s2c(PONG, b"ping!", 31),
            c2s(TEXT, "second hello world \u{e9}".as_bytes(), 40),
            s2c(TEXT, "second hello world \u{e9}".as_bytes(), 41),
            c2s(CLOSE, &close_payload(1000, "bye"), 50),
            s2c(CLOSE, &close_payload(1000, "bye"), 51),
        ],
        ..Default::default()
    }
}

#[test]
fn tungstenite_echo_server_receives_exactly_the_recorded_client_messages() {
    let dir = tempfile::tempdir().unwrap();
    let spec = echo_spec();
    write_export(dir.path(), &spec);
    let (port, log, headers, server) = echo_server(false);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}"),
            "--speed",
            "0",
            "--wait-replies",
            "--timeout",
            "5",
            "--json",
            "--expect-same",
            "-H",
            "Cookie: sid=fresh",
            "--drop-header",
            "User-Agent",
        ]),
        30,
    );
    server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let want: Vec<(u8, Vec<u8>)> = spec
        .messages
        .iter()
        .filter(|m| m.c2s)
        .map(|m| (m.opcode, m.payload.clone()))
        .collect();
    assert_eq!(*log.lock().unwrap(), want);
    let report = out.json();
    assert_eq!(report["comparison"]["same"], true, "{report}");
    assert_eq!(report["comparison"]["recorded"], 5);
    assert_eq!(report["comparison"]["equal"], 5);
    assert_eq!(report["ended_by"], "close_frame");
    let hs = headers.lock().unwrap();
    let get = |n: &str| {
        hs.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        get("uri").as_deref(),
        Some("/chat"),
        "recorded URI kept when the target has no path"
    );
    assert_eq!(get("host"), Some(format!("127.0.0.1:{port}")));
    assert_eq!(get("cookie").as_deref(), Some("sid=fresh"));
    assert_eq!(get("user-agent"), None);
    assert_ne!(
        get("sec-websocket-key").as_deref(),
        Some("dGhlIHNhbXBsZSBub25jZQ==")
    );
}

#[test]
fn a_differing_server_is_reported_and_fails_expect_same() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &echo_spec());
    let (port, _log, _h, server) = echo_server(true);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}/other"),
            "--speed",
            "0",
            "--wait-replies",
            "--timeout",
            "5",
            "--expect-same",
        ]),
        30,
    );
    server.join().unwrap();
    assert_eq!(
        out.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains("first difference at message 0 (payload) at byte 6"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("\"hello WORLD\""), "{}", out.stdout);
}

#[test]
fn ignore_masks_the_volatile_part() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &echo_spec());
    let (port, _log, _h, server) = echo_server(true);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}"),
            "--speed",
            "0",
            "--wait-replies",
            "--expect-same",
            "--ignore",
            "(?i)world",
            "--json",
        ]),
        30,
    );
    server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(out.json()["comparison"]["same"], true);
}

#[test]
fn pacing_follows_recorded_timing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = echo_spec();
    // Stretch the recording: the last client message 1.2 s after the start.
    for m in &mut spec.messages {
        m.at_ms *= 24;
    }
    write_export(dir.path(), &spec);
    let (port, _log, _h, server) = echo_server(false);
    let t = std::time::Instant::now();
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}"),
            "--speed",
            "1",
            "--expect-same",
        ]),
        30,
    );
    server.join().unwrap();
    let took = t.elapsed();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        took >= Duration::from_millis(1150),
        "finished too early: {took:?}"
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
}

const PY_ECHO: &str = r#"
import sys, json
from websockets.sync.server import serve
def handler(ws):
    for msg in ws:
        kind = "text" if isinstance(msg, str) else "binary"
        data = msg if isinstance(msg, str) else msg.hex()
        print(json.dumps({"kind": kind, "data": data, "ext": [e.name for e in ws.protocol.extensions]}), flush=True)
        ws.send(msg)
with serve(handler, "127.0.0.1", 0, compression="deflate") as server:
    print(server.socket.getsockname()[1], flush=True)
    import threading
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    sys.stdin.read()
"#;

#[test]
fn python_websockets_deflate_server_gets_recompressed_messages() {
    if !python_websockets() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let long = "compressible ".repeat(50);
    let spec = Spec {
        deflate: true,
        messages: vec![
            c2s(TEXT, long.as_bytes(), 10),
            s2c(TEXT, long.as_bytes(), 11),
            c2s(TEXT, long.as_bytes(), 20),
            s2c(TEXT, long.as_bytes(), 21),
            c2s(BINARY, &[9u8; 300], 30),
            s2c(BINARY, &[9u8; 300], 31),
            c2s(CLOSE, &close_payload(1000, ""), 40),
            s2c(CLOSE, &close_payload(1000, ""), 41),
        ],
        ..Default::default()
    };
    write_export(dir.path(), &spec);
    let (mut py, port, mut lines) = spawn_python_server(PY_ECHO, &[]);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}/"),
            "--speed",
            "0",
            "--wait-replies",
            "--timeout",
            "5",
            "--json",
            "--expect-same",
        ]),
        30,
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        let v: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        seen.push(v);
    }
    let _ = py.kill();
    let _ = py.wait();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(seen[0]["data"], long.as_str());
    assert_eq!(seen[1]["data"], long.as_str());
    assert_eq!(seen[2]["data"], "09".repeat(300));
    assert_eq!(seen[0]["ext"][0], "permessage-deflate");
    let report = out.json();
    assert_eq!(report["handshake"]["deflate"], true, "{report}");
    assert_eq!(report["comparison"]["same"], true, "{report}");
}
