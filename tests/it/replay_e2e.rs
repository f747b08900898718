//! Capture to replay, end to end, with real peers: sessions recorded between
//! Python `websockets` endpoints (testdata/record/record_echo.py) are
//! exported by `wssniff read --export`, then replayed by `wsreplay` against
//! a fresh Python `websockets` echo server (client mode) and to a tungstenite
//! client (server mode). What the peers receive must be exactly what the
//! recorded client (or server) sent, as its own log says.

use crate::support_replay;

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::{Command, Stdio};
use support_replay::{python_websockets, run, spawn_python_server, spawn_server, wait, wsreplay};

/// (opcode, sha256) of every data message the recorded client sent.
fn recorded_client_messages(name: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/real")
        .join(format!("{name}.truth.jsonl"));
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["opcode"].as_str().unwrap().to_owned(),
                v["sha256"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn export(name: &str, dir: &Path) {
    let pcap = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/real")
        .join(format!("{name}.pcap"));
    let st = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .arg("read")
        .arg(&pcap)
        .arg("--export")
        .arg(dir)
        .arg("--force")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "wssniff read --export failed: {st}");
}

/// Python websockets echo server that logs (opcode, sha256) of each message it receives.
const PY_ECHO_LOG: &str = r#"
import hashlib, json, sys
from websockets.sync.server import serve
def handler(ws):
    for msg in ws:
        data = msg.encode() if isinstance(msg, str) else msg
        print(json.dumps({"opcode": "text" if isinstance(msg, str) else "binary",
                          "sha256": hashlib.sha256(data).hexdigest()}), flush=True)
        ws.send(msg)
    print("closed", flush=True)
compression = None if sys.argv[1] == "none" else "deflate"
with serve(handler, "127.0.0.1", 0, compression=compression, max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    import threading
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
"#;

fn client_round_trip(name: &str, compression: &str) {
    if !python_websockets() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    export(name, dir.path());
    let (mut py, port, mut lines) = spawn_python_server(PY_ECHO_LOG, &[compression]);
    let out = run(
        wsreplay().arg("client").arg(dir.path()).args([
            "--target",
            &format!("ws://127.0.0.1:{port}/echo"),
            "--speed",
            "0",
            "--wait-replies",
            "--json",
            "--expect-same",
        ]),
        60,
    );
    let mut received = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if line == "closed" {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        received.push((
            v["opcode"].as_str().unwrap().to_owned(),
            v["sha256"].as_str().unwrap().to_owned(),
        ));
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
    assert_eq!(received, recorded_client_messages(name));
    let report = out.json();
    assert_eq!(report["comparison"]["same"], true, "{report}");
    if compression == "deflate" {
        assert_eq!(report["handshake"]["deflate"], true, "{report}");
    }
}

#[test]
fn client_mode_replays_an_uncompressed_capture_to_a_python_server() {
    client_round_trip("py-echo", "none");
}

#[test]
fn client_mode_replays_a_deflate_capture_to_a_python_server() {
    client_round_trip("py-echo-deflate", "deflate");
}

#[test]
fn server_mode_plays_recorded_server_messages_to_a_tungstenite_client() {
    let dir = tempfile::tempdir().unwrap();
    export("py-echo", dir.path());
    let (child, addr, _stderr) = spawn_server(wsreplay().arg("server").arg(dir.path()).args([
        "--listen",
        "127.0.0.1:0",
        "--speed",
        "0",
    ]));
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/echo")).unwrap();
    let mut got = Vec::new();
    loop {
        match ws.read() {
            Ok(tungstenite::Message::Text(t)) => {
                got.push(("text".to_owned(), hex(&Sha256::digest(t.as_bytes()))))
            }
            Ok(tungstenite::Message::Binary(b)) => {
                got.push(("binary".to_owned(), hex(&Sha256::digest(&b))))
            }
            Ok(tungstenite::Message::Close(_)) => {
                let _ = ws.close(None);
                let _ = ws.flush();
                break;
            }
            Ok(_) => {}
            Err(e) => panic!("client read failed after {} messages: {e}", got.len()),
        }
    }
    let out = wait(child, 30);
    // The recorded server was an echo: its messages are the client's.
    assert_eq!(got, recorded_client_messages("py-echo"), "{}", out.stderr);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
