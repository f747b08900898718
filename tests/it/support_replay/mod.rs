//! Test support for wsreplay: builds export directories following
//! docs/export.md exactly, and runs the binary with a time bound.
#![allow(dead_code)]

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use wssniff::replay::deflate::{Compressor, DirParams};
use wssniff::replay::wire::encode_frame;
use wssniff::session::{
    export_names, CloseRecord, DeflateRecord, ExportGap, FrameRecord, Manifest, ManifestSession,
    MessageRecord, PerDir, SCHEMA_VERSION,
};
use wssniff::types::{Dir, Timestamp};

pub const TEXT: u8 = 1;
pub const BINARY: u8 = 2;
pub const CLOSE: u8 = 8;
pub const PING: u8 = 9;
pub const PONG: u8 = 10;

#[derive(Clone, Debug)]
pub struct Msg {
    pub c2s: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
    /// Milliseconds after the session start.
    pub at_ms: u64,
}

pub fn c2s(opcode: u8, payload: &[u8], at_ms: u64) -> Msg {
    Msg {
        c2s: true,
        opcode,
        payload: payload.to_vec(),
        at_ms,
    }
}
pub fn s2c(opcode: u8, payload: &[u8], at_ms: u64) -> Msg {
    Msg {
        c2s: false,
        opcode,
        payload: payload.to_vec(),
        at_ms,
    }
}
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason.as_bytes());
    p
}

#[derive(Clone, Debug)]
pub struct Spec {
    pub id: u64,
    pub uri: String,
    pub subprotocol: Option<String>,
    /// permessage-deflate negotiated in the recording (both directions, context takeover).
    pub deflate: bool,
    pub messages: Vec<Msg>,
    pub gaps: Vec<ExportGap>,
    /// Extra bytes appended to c2s.bin after the messages (malformed frames).
    pub c2s_trailer: Vec<u8>,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            id: 1,
            uri: "/chat".into(),
            subprotocol: None,
            deflate: false,
            messages: Vec::new(),
            gaps: Vec::new(),
            c2s_trailer: Vec::new(),
        }
    }
}

const START: i64 = 1_714_564_800;

fn ts(ms: u64) -> Timestamp {
    Timestamp::new(START + (ms / 1000) as i64, ((ms % 1000) * 1_000_000) as u32)
}

/// Writes `dir` as `wssniff --export` would for one session.
pub fn write_export(dir: &Path, spec: &Spec) {
    let folder = export_names::session_dir(spec.id);
    std::fs::create_dir_all(dir.join(&folder)).unwrap();
    let ext = if spec.deflate {
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    } else {
        ""
    };
    let proto_req = spec
        .subprotocol
        .as_ref()
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: recorded.example:8765\r\nUser-Agent: recorded-agent/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{proto_req}{ext}Cookie: sid=recorded\r\n\r\n",
        spec.uri
    );
    let ext_resp = if spec.deflate {
        "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    } else {
        ""
    };
    let proto_resp = spec
        .subprotocol
        .as_ref()
        .map(|p| format!("Sec-WebSocket-Protocol: {p}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{proto_resp}{ext_resp}\r\n"
    );
    let mut bins: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut comp = [
        Compressor::new(DirParams::default()),
        Compressor::new(DirParams::default()),
    ];
    let mut index = [0u64; 2];
    let mut lines = String::new();
    for (n, m) in spec.messages.iter().enumerate() {
        let d = if m.c2s { 0 } else { 1 };
        let mask = m.c2s.then_some([0x11, 0x22, 0x33, (n % 256) as u8]);
        let control = m.opcode >= 8;
        let compressed = spec.deflate && !control;
        let wire_payload = if compressed {
            comp[d].compress(&m.payload)
        } else {
            m.payload.clone()
        };
        let start = bins[d].len() as u64;
        encode_frame(
            &mut bins[d],
            true,
            if compressed { 4 } else { 0 },
            m.opcode,
            mask,
            &wire_payload,
        );
        let end = bins[d].len() as u64;
        let text = m.opcode == TEXT && std::str::from_utf8(&m.payload).is_ok();
        let close = (m.opcode == CLOSE).then(|| CloseRecord {
            code: (m.payload.len() >= 2).then(|| u16::from_be_bytes([m.payload[0], m.payload[1]])),
            reason: String::from_utf8_lossy(m.payload.get(2..).unwrap_or_default()).into_owned(),
        });
        let rec = MessageRecord {
            session: spec.id,
            dir: if m.c2s { Dir::C2s } else { Dir::S2c },
            index: index[d],
            opcode: wssniff::types::Opcode::new(m.opcode),
            len: m.payload.len() as u64,
            text: text.then(|| String::from_utf8(m.payload.clone()).unwrap()),
            b64: (!text).then(|| base64::engine::general_purpose::STANDARD.encode(&m.payload)),
            ts: ts(m.at_ms),
            ts_last: ts(m.at_ms),
            packets: vec![n as u64 + 4],
            seq: [0, 0],
            stream: [start, end],
            frames: 1,
            compressed,
            wire_len: compressed.then_some(wire_payload.len() as u64),
            close,
            frame_detail: Some(vec![FrameRecord {
                fin: true,
                rsv: if compressed { 4 } else { 0 },
                opcode: m.opcode,
                mask: mask.map(|k| k.iter().map(|b| format!("{b:02x}")).collect()),
                payload_len: wire_payload.len() as u64,
                wire_len: end - start,
                offset: start,
                packets: vec![n as u64 + 4],
            }]),
            ..Default::default()
        };
        index[d] += 1;
        lines.push_str(&serde_json::to_string(&rec).unwrap());
        lines.push('\n');
    }
    bins[0].extend_from_slice(&spec.c2s_trailer);
    let mut files = BTreeMap::new();
    let mut put = |name: String, bytes: &[u8]| {
        std::fs::write(dir.join(&name), bytes).unwrap();
        files.insert(name, hex(&Sha256::digest(bytes)));
    };
    put(
        format!("{folder}/{}", export_names::REQUEST),
        request.as_bytes(),
    );
    put(
        format!("{folder}/{}", export_names::RESPONSE),
        response.as_bytes(),
    );
    put(
        format!("{folder}/{}", export_names::MESSAGES),
        lines.as_bytes(),
    );
    put(format!("{folder}/{}", export_names::C2S), &bins[0]);
    put(format!("{folder}/{}", export_names::S2C), &bins[1]);
    put(
        export_names::HAR.to_string(),
        br#"{"log":{"version":"1.2","creator":{"name":"wssniff","version":"0.1.0"},"entries":[]}}"#,
    );
    let last = spec.messages.iter().map(|m| m.at_ms).max().unwrap_or(0);
    let deflate = spec.deflate.then_some(DeflateRecord {
        no_context_takeover: false,
        max_window_bits: 15,
        per_frame: false,
    });
    let manifest = Manifest {
        schema: SCHEMA_VERSION,
        tool: "wssniff 0.1.0".into(),
        command: vec![
            "wssniff".into(),
            "read".into(),
            "test.pcap".into(),
            "--export".into(),
            "out".into(),
        ],
        inputs: vec![],
        first_ts: Some(ts(0)),
        last_ts: Some(ts(last)),
        sessions: vec![ManifestSession {
            id: spec.id,
            path: folder.clone(),
            client: "10.0.0.1:50000".into(),
            server: "10.0.0.2:8765".into(),
            uri: spec.uri.clone(),
            host: Some("recorded.example:8765".into()),
            subprotocol: spec.subprotocol.clone(),
            extensions: if spec.deflate {
                vec!["permessage-deflate".into()]
            } else {
                vec![]
            },
            deflate_c2s: deflate.clone(),
            deflate_s2c: deflate,
            start: ts(0),
            end: ts(last),
            messages: PerDir {
                c2s: index[0],
                s2c: index[1],
            },
            close_c2s: None,
            close_s2c: None,
            gaps: spec.gaps.clone(),
            conflicting_overlaps: 0,
            anomalies: BTreeMap::new(),
            incomplete: false,
        }],
        files,
    };
    std::fs::write(
        dir.join(export_names::MANIFEST),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    )
    .unwrap();
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn session_file(dir: &Path, id: u64, name: &str) -> PathBuf {
    dir.join(export_names::session_dir(id)).join(name)
}

pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

pub fn wsreplay() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wsreplay"))
}

/// Runs to completion, killed after `secs`.
pub fn run(cmd: &mut Command, secs: u64) -> Outcome {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, secs)
}

/// Waits for a spawned child (stdout and stderr piped), killing it after `secs`.
pub fn wait(mut child: Child, secs: u64) -> Outcome {
    let mut out = child.stdout.take().unwrap();
    let err = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = err {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wsreplay did not finish within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome {
        code,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    }
}

/// Starts `wsreplay server …--listen 127.0.0.1:0` and returns it with its
/// address, read from the readiness line. The returned child's stderr is
/// forwarded into a string the outcome gets.
pub fn spawn_server(cmd: &mut Command) -> (Child, std::net::SocketAddr, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("no readiness line from wsreplay server");
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
    (child, addr.parse().unwrap(), rx)
}

/// A Python server script's stdout lines.
pub type PyLines = std::io::Lines<BufReader<std::process::ChildStdout>>;

/// Starts `python3 -c SCRIPT ARGS…`, whose first stdout line is the port it
/// listens on; returns the child, that port and the rest of its stdout.
pub fn spawn_python_server(script: &str, args: &[&str]) -> (Child, u16, PyLines) {
    let mut py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(py.stdout.take().unwrap()).lines();
    let port: u16 = lines.next().unwrap().unwrap().trim().parse().unwrap();
    (py, port, lines)
}

/// Whether Python's `websockets` is importable: if not, SKIP, or under CI a
/// failure (`crate::tools`).
pub fn python_websockets() -> bool {
    crate::tools::need(
        "wsreplay against a Python peer",
        "python3 with the `websockets` package (pip install websockets)",
        crate::tools::python_websockets(),
    )
}
