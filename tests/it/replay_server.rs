//! wsreplay server mode: real clients connect and get the recorded messages.
use crate::support_replay;

use std::process::Command;
use std::time::Duration;
use support_replay::*;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::Message;

fn server_spec() -> Spec {
    Spec {
        subprotocol: Some("chat.v1".into()),
        messages: vec![
            s2c(TEXT, b"welcome", 5),
            s2c(BINARY, &[1, 2, 3, 4, 5], 6),
            c2s(TEXT, b"hi", 20),
            s2c(TEXT, b"ack: hi", 21),
            c2s(CLOSE, &close_payload(1000, "bye"), 30),
            s2c(CLOSE, &close_payload(1000, "bye"), 31),
        ],
        ..Default::default()
    }
}

#[test]
fn tungstenite_client_receives_exactly_the_recorded_server_messages() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &server_spec());
    let (child, addr, _stderr) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--wait-requests",
        "--speed",
        "0",
        "--timeout",
        "5",
        "--json",
        "--expect-same",
    ]));
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/any"))
            .unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", "chat.v1".parse().unwrap());
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut ws, resp) = tungstenite::client(req, stream).unwrap();
    assert_eq!(
        resp.headers().get("sec-websocket-protocol").unwrap(),
        "chat.v1"
    );
    let mut got = Vec::new();
    got.push(ws.read().unwrap());
    got.push(ws.read().unwrap());
    ws.send(Message::Text("hi".into())).unwrap();
    got.push(ws.read().unwrap());
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .unwrap();
    while let Ok(m) = ws.read() {
        got.push(m);
    }
    let out = wait(child, 20);
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(got[0], Message::Text("welcome".into()));
    assert_eq!(got[1], Message::Binary(vec![1, 2, 3, 4, 5]));
    assert_eq!(got[2], Message::Text("ack: hi".into()));
    match &got[3] {
        Message::Close(Some(f)) => {
            assert_eq!((u16::from(f.code), f.reason.as_ref()), (1000, "bye"))
        }
        other => panic!("expected the recorded close, got {other:?}"),
    }
    assert_eq!(got.len(), 4);
    let report = out.json();
    assert_eq!(report["mode"], "server");
    assert_eq!(report["comparison"]["same"], true, "{report}");
    assert_eq!(report["comparison"]["recorded"], 2);
    assert_eq!(report["handshake"]["subprotocol"], "chat.v1");
}

#[test]
fn a_client_sending_something_else_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &server_spec());
    let (child, addr, _stderr) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--wait-requests",
        "--timeout",
        "3",
        "--speed",
        "0",
        "--expect-same",
    ]));
    let stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (mut ws, _) = tungstenite::client(format!("ws://{addr}/"), stream).unwrap();
    ws.read().unwrap();
    ws.read().unwrap();
    ws.send(Message::Text("hello".into())).unwrap();
    ws.read().unwrap();
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let out = wait(child, 20);
    assert_eq!(
        out.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains("first difference at message 0 (payload) at byte 1"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_non_websocket_client_gets_status_4() {
    let dir = tempfile::tempdir().unwrap();
    write_export(dir.path(), &server_spec());
    let (child, addr, stderr) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--timeout",
        "3",
    ]));
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer);
    let out = wait(child, 20);
    let answer = String::from_utf8_lossy(&answer);
    let err: Vec<String> = stderr.try_iter().collect();
    let err = err.join("\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?} {read:?}");
    assert_eq!(out.code, Some(4), "stderr: {err}");
    assert!(err.contains("did not send a WebSocket handshake"), "{err}");
}

const PY_CLIENT: &str = r#"
import sys, json
from websockets.sync.client import connect
with connect(sys.argv[1], compression="deflate", subprotocols=["chat.v1"]) as ws:
    out = {"ext": [e.name for e in ws.protocol.extensions], "msgs": []}
    for i in range(2):
        m = ws.recv(timeout=10)
        out["msgs"].append(m if isinstance(m, str) else "hex:" + m.hex())
    ws.send("hi")
    m = ws.recv(timeout=10)
    out["msgs"].append(m if isinstance(m, str) else "hex:" + m.hex())
    ws.close(1000, "bye")
    print(json.dumps(out), flush=True)
"#;

#[test]
fn python_websockets_client_with_deflate_receives_the_recorded_messages() {
    if !python_websockets() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let long = "repeat me ".repeat(40);
    let mut spec = server_spec();
    spec.deflate = true;
    spec.messages[0].payload = long.clone().into_bytes();
    write_export(dir.path(), &spec);
    let (child, addr, _stderr) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--wait-requests",
        "--speed",
        "0",
        "--timeout",
        "5",
        "--json",
        "--expect-same",
    ]));
    let py = run(
        Command::new("python3").args(["-c", PY_CLIENT, &format!("ws://{addr}/")]),
        30,
    );
    let out = wait(child, 20);
    assert_eq!(py.code, Some(0), "python: {}", py.stderr);
    let got: serde_json::Value = serde_json::from_str(py.stdout.trim()).unwrap();
    assert_eq!(got["ext"][0], "permessage-deflate");
    assert_eq!(got["msgs"][0], long.as_str());
    assert_eq!(got["msgs"][1], "hex:0102030405");
    assert_eq!(got["msgs"][2], "ack: hi");
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    let report = out.json();
    assert_eq!(report["handshake"]["deflate"], true);
    assert_eq!(report["comparison"]["same"], true, "{report}");
}
