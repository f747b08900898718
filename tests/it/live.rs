//! Live capture on `lo`, end to end: `wssniff -i lo` watches real WebSocket
//! peers (Python `websockets` with permessage-deflate, tungstenite without)
//! and must report exactly what they sent, as it happens; SIGINT finishes
//! every session, the stats record and the export. Also: `-Z` privilege
//! drop, start-up errors that leave nothing behind, `-c`.
//!
//! Capturing needs root (CI runs as root); otherwise the tests print SKIP.
//! Every wait is bounded.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tungstenite::Message;

use crate::tools;

const WAIT: Duration = Duration::from_secs(20);

/// The binary under test. WSSNIFF_BIN overrides it: with a target directory
/// shared between worktrees of this package, `target/release/wssniff` may be
/// another worktree's build by the time the test runs.
fn wssniff_bin() -> std::path::PathBuf {
    std::env::var_os("WSSNIFF_BIN").map_or_else(|| env!("CARGO_BIN_EXE_wssniff").into(), Into::into)
}

fn is_root(test: &str) -> bool {
    tools::need(
        test,
        "root for live capture (CI runs as root)",
        tools::root(),
    )
}

/// A port nothing listens on (the kernel's choice; released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `wssniff`, its stdout and stderr read line by line by threads.
struct Sniffer {
    child: Child,
    out: mpsc::Receiver<String>,
    err: mpsc::Receiver<String>,
    out_lines: Vec<String>,
    err_lines: Vec<String>,
}

fn lines_of(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

impl Sniffer {
    fn start(args: &[&str]) -> Sniffer {
        let mut child = Command::new(wssniff_bin())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let err = lines_of(child.stderr.take().unwrap());
        Sniffer {
            child,
            out,
            err,
            out_lines: Vec::new(),
            err_lines: Vec::new(),
        }
    }

    /// Waits for the readiness line on stderr.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            match self.err.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let ready = l.starts_with("wssniff: listening on lo, link-type ");
                    self.err_lines.push(l);
                    if ready {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.child.kill();
        panic!("no readiness line; stderr: {:?}", self.err_lines);
    }

    /// Waits until a stdout line satisfies `f` (output must appear as it
    /// happens, before the capture stops).
    fn wait_stdout(&mut self, what: &str, f: impl Fn(&str) -> bool) {
        if self.out_lines.iter().any(|l| f(l)) {
            return;
        }
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(l) = self.out.recv_timeout(Duration::from_millis(100)) {
                let hit = f(&l);
                self.out_lines.push(l);
                if hit {
                    return;
                }
            }
        }
        let _ = self.child.kill();
        panic!(
            "never saw {what} on stdout; last lines: {:?}",
            short(&self.out_lines)
        );
    }

    fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap())
    }

    fn interrupt(&self) {
        nix::sys::signal::kill(self.pid(), nix::sys::signal::Signal::SIGINT).unwrap();
    }

    /// Waits for the exit (killing it after WAIT) and collects all output.
    fn finish(mut self) -> (i32, Vec<String>, Vec<String>) {
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!("wssniff did not exit; stderr: {:?}", self.err_lines);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close with the process: the reader threads end.
        self.out_lines.extend(self.out.iter());
        self.err_lines.extend(self.err.iter());
        (status.code().unwrap_or(-1), self.out_lines, self.err_lines)
    }
}

/// The last lines, cut short, for failure messages (payloads can be large).
fn short(lines: &[String]) -> Vec<String> {
    let from = lines.len().saturating_sub(6);
    lines[from..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect()
}

fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| {
                panic!(
                    "not JSON ({e}): {}",
                    l.chars().take(300).collect::<String>()
                )
            })
        })
        .collect()
}

/// What the test sends: (opcode, payload), one entry per message.
fn script() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("text", b"hello live".to_vec()),
        ("text", "gr\u{fc}\u{df}e \u{1f30d} ".repeat(30).into_bytes()),
        ("binary", (0..=255u8).cycle().take(3000).collect()),
        ("text", Vec::new()),
        (
            "binary",
            (0..70_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
    ]
}

/// The fragmented message the Python client sends in three frames.
const FRAGMENTS: [&str; 3] = ["part one, ", "part two, ", "part three"];

/// Python websockets echo server and client (deflate on, its default). The
/// client sends the script given as JSON on stdin, then a fragmented message
/// (an iterator of strings), waits for each echo, closes with 1000.
const PY_PEERS: &str = r#"
import asyncio, json, sys
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve
port = int(sys.argv[1]); script, frags = json.load(sys.stdin)
async def echo(ws):
    async for m in ws:
        await ws.send(m)
async def main():
    async with serve(echo, "127.0.0.1", port, ping_interval=None, max_size=None):
        async with connect(f"ws://127.0.0.1:{port}/live", ping_interval=None, max_size=None) as ws:
            assert ws.protocol.extensions, "permessage-deflate was not negotiated"
            for op, hexdata in script:
                data = bytes.fromhex(hexdata)
                await ws.send(data.decode() if op == "text" else data)
                await ws.recv()
            await ws.send(iter(frags))
            await ws.recv()
            await ws.close(1000, "done")
asyncio.run(main())
print("done", flush=True)
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run_python_peers(port: u16, script: &[(&str, Vec<u8>)]) {
    let js: Vec<(String, String)> = script
        .iter()
        .map(|(op, d)| ((*op).to_owned(), hex(d)))
        .collect();
    let mut child = Command::new("python3")
        .args(["-c", PY_PEERS, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        serde_json::to_writer(&mut stdin, &(js, FRAGMENTS)).unwrap();
        stdin.flush().unwrap();
    }
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "python peers hung");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(
        status.success() && out.contains("done"),
        "python peers failed: {status}"
    );
}

/// A tungstenite echo server on `listener`, one thread per connection.
fn tungstenite_echo_server(listener: TcpListener) {
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(s) = s else { break };
            std::thread::spawn(move || {
                let Ok(mut ws) = tungstenite::accept(s) else {
                    return;
                };
                while let Ok(m) = ws.read() {
                    if (m.is_text() || m.is_binary()) && ws.send(m).is_err() {
                        return;
                    }
                }
            });
        }
    });
}

type Ws = tungstenite::WebSocket<TcpStream>;

fn tungstenite_client(port: u16, path: &str) -> Ws {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let (ws, _) = tungstenite::client(format!("ws://127.0.0.1:{port}{path}"), s).unwrap();
    ws
}

fn as_message(op: &str, d: &[u8]) -> Message {
    if op == "text" {
        Message::text(String::from_utf8(d.to_vec()).unwrap())
    } else {
        Message::binary(d.to_vec())
    }
}

/// FRAGMENTS as one text message in three frames (the client masks them).
fn send_fragmented(ws: &mut Ws) {
    use tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::protocol::frame::Frame;
    for (i, part) in FRAGMENTS.iter().enumerate() {
        let op = if i == 0 {
            OpCode::Data(Data::Text)
        } else {
            OpCode::Data(Data::Continue)
        };
        let last = i + 1 == FRAGMENTS.len();
        ws.write(Message::Frame(Frame::message(
            part.as_bytes().to_vec(),
            op,
            last,
        )))
        .unwrap();
    }
    ws.flush().unwrap();
    loop {
        let r = ws.read().unwrap();
        if r.is_text() {
            assert_eq!(r, Message::text(FRAGMENTS.concat()));
            return;
        }
    }
}

fn send_and_await_echo(ws: &mut Ws, m: Message) {
    ws.send(m.clone()).unwrap();
    loop {
        let r = ws.read().unwrap();
        if r.is_text() || r.is_binary() {
            assert_eq!(r, m, "echo differs");
            return;
        }
    }
}

/// The payload of a message record.
fn payload(m: &serde_json::Value) -> Vec<u8> {
    use base64::Engine;
    if let Some(t) = m["text"].as_str() {
        t.as_bytes().to_vec()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(m["b64"].as_str().unwrap_or(""))
            .unwrap()
    }
}

/// (opcode, payload) of the data messages of `session` in direction `dir`.
fn data_messages(recs: &[serde_json::Value], session: u64, dir: &str) -> Vec<(String, Vec<u8>)> {
    recs.iter()
        .filter(|r| r["type"] == "message" && r["session"] == session && r["dir"] == dir)
        .filter(|r| r["opcode"] == "text" || r["opcode"] == "binary")
        .map(|r| {
            assert!(
                r.get("truncated").is_none() && r.get("incomplete").is_none(),
                "{r}"
            );
            (r["opcode"].as_str().unwrap().to_owned(), payload(r))
        })
        .collect()
}

fn session_on_port(recs: &[serde_json::Value], port: u16, uri: &str) -> serde_json::Value {
    let server = format!("127.0.0.1:{port}");
    let found: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "session" && r["server"] == server.as_str() && r["uri"] == uri)
        .collect();
    assert_eq!(found.len(), 1, "sessions to {server}{uri}: {found:?}");
    found[0].clone()
}

fn sha256_hex(b: &[u8]) -> String {
    hex(&Sha256::digest(b))
}

#[test]
fn live_capture_reports_every_message_as_it_happens_and_finishes_on_sigint() {
    if !is_root("live end to end") {
        return;
    }
    if !tools::need(
        "live end to end",
        "python3 with the `websockets` package (pip install websockets)",
        tools::python_websockets(),
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let export = tmp.path().join("export");
    let py_port = free_port();
    let tung = TcpListener::bind("127.0.0.1:0").unwrap();
    let tung_port = tung.local_addr().unwrap().port();
    let mut sn = Sniffer::start(&[
        "-i",
        "lo",
        // A large kernel buffer: on a loaded machine (CI, parallel builds)
        // bursts of 64 KiB loopback packets would otherwise overflow the
        // default 2 MiB ring, and the lost packets (correctly reported as
        // gaps) would make the exact comparison below meaningless.
        "-B",
        "65536",
        "--json",
        "--export",
        export.to_str().unwrap(),
        // The filter as trailing words, as with tcpdump.
        "tcp",
        "port",
        &py_port.to_string(),
        "or",
        "tcp",
        "port",
        &tung_port.to_string(),
    ]);
    sn.wait_listening();

    let script = script();
    run_python_peers(py_port, &script);

    tungstenite_echo_server(tung);
    let mut ws = tungstenite_client(tung_port, "/closed");
    // Without deflate, and a fragmented message written frame by frame.
    for (op, d) in &script {
        send_and_await_echo(&mut ws, as_message(op, d));
    }
    send_fragmented(&mut ws);
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    // Our side of the TCP teardown.
    drop(ws);
    // A second connection is still open when the capture stops.
    let mut open = tungstenite_client(tung_port, "/open");
    send_and_await_echo(&mut open, Message::text("still open"));

    // Output appears as it happens: the last echo is on stdout before SIGINT.
    sn.wait_stdout("the echo of 'still open'", |l| {
        l.contains(r#""dir":"s2c""#) && l.contains(r#""text":"still open""#)
    });
    sn.interrupt();
    let (code, out, err) = sn.finish();
    drop(open);
    assert_eq!(code, 0, "stderr: {err:?}");
    let recs = json_lines(&out);
    assert_eq!(recs[0]["type"], "capture");
    assert_eq!(recs.last().unwrap()["type"], "stats", "last record");
    assert!(
        err.iter().any(|l| l.ends_with("packets captured")),
        "{err:?}"
    );
    assert!(
        err.iter().any(|l| l.ends_with("dropped by kernel")),
        "{err:?}"
    );

    let mut sent: Vec<(String, Vec<u8>)> = script
        .iter()
        .map(|(o, d)| ((*o).to_owned(), d.clone()))
        .collect();
    sent.push(("text".to_owned(), FRAGMENTS.concat().into_bytes()));
    let tung_sent = sent.clone();

    let closed = session_on_port(&recs, tung_port, "/closed");
    let closed_id = closed["id"].as_u64().unwrap();

    // Python, deflate on: every message both ways, exactly.
    let py = session_on_port(&recs, py_port, "/live");
    assert!(
        py["deflate_c2s"].is_object(),
        "deflate not negotiated: {py}"
    );
    let py_id = py["id"].as_u64().unwrap();
    assert_eq!(data_messages(&recs, py_id, "c2s"), sent);
    assert_eq!(data_messages(&recs, py_id, "s2c"), sent);
    let frag = recs
        .iter()
        .find(|r| {
            r["type"] == "message" && r["session"] == py_id && r["text"] == FRAGMENTS.concat()
        })
        .unwrap();
    // websockets sends each item of the iterator as a frame, then an empty
    // final continuation frame when the iterator is exhausted.
    assert_eq!(frag["frames"], FRAGMENTS.len() + 1, "{frag}");
    let tung_frag = recs
        .iter()
        .find(|r| {
            r["type"] == "message"
                && r["session"] == closed_id
                && r["dir"] == "c2s"
                && r["text"] == FRAGMENTS.concat()
        })
        .unwrap();
    assert_eq!(tung_frag["frames"], 3, "{tung_frag}");
    assert!(
        recs.iter()
            .any(|r| r["type"] == "message" && r["session"] == py_id && r["compressed"] == true),
        "no compressed message in the deflate session"
    );

    // tungstenite, no deflate, closed cleanly.
    assert!(closed["deflate_c2s"].is_null());
    assert_eq!(data_messages(&recs, closed_id, "c2s"), tung_sent);
    assert_eq!(data_messages(&recs, closed_id, "s2c"), tung_sent);

    // The session still open at SIGINT is finished, as incomplete.
    let open_id = session_on_port(&recs, tung_port, "/open")["id"]
        .as_u64()
        .unwrap();
    let ends: Vec<_> = recs
        .iter()
        .filter(|r| r["type"] == "session_end" && r["session"] == open_id)
        .collect();
    assert_eq!(ends.len(), 1, "session_end of the open session");
    assert_eq!(ends[0]["incomplete"], true, "{}", ends[0]);
    for id in [py_id, closed_id] {
        let end = recs
            .iter()
            .find(|r| r["type"] == "session_end" && r["session"] == id)
            .unwrap();
        let anomalies: Vec<_> = recs
            .iter()
            .filter(|r| r["type"] == "anomaly" && r["session"] == id)
            .collect();
        assert_eq!(end["incomplete"], false, "{end} {anomalies:?}");
    }
    // Closed sessions end as they close, not when the capture stops: their
    // session_end comes before the record of the session opened after them.
    let pos = |f: &dyn Fn(&serde_json::Value) -> bool| recs.iter().position(f).unwrap();
    let open_pos = pos(&|r| r["type"] == "session" && r["id"] == open_id);
    for id in [py_id, closed_id] {
        let end_pos = pos(&|r| r["type"] == "session_end" && r["session"] == id);
        assert!(end_pos < open_pos, "session {id} ended only at the stop");
        assert_eq!(recs[end_pos]["reason"], "fin");
    }
    let stats = recs.last().unwrap();
    assert_eq!(stats["sessions"], 3, "{stats}");

    // The export is complete: a manifest with the three sessions, and every
    // file it lists has the hash it gives.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("manifest.json")).unwrap()).unwrap();
    let ids: Vec<u64> = manifest["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    let mut want = vec![py_id, closed_id, open_id];
    want.sort_unstable();
    let mut got = ids.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    let files = manifest["files"].as_object().unwrap();
    assert!(files.len() >= 3 * 5, "files: {files:?}");
    for (path, sum) in files {
        let data = std::fs::read(export.join(path)).unwrap();
        assert_eq!(sha256_hex(&data), sum.as_str().unwrap(), "{path}");
    }
    // The exported messages of the deflate session are the ones sent.
    let py_dir = export.join(
        manifest["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == py_id)
            .unwrap()["path"]
            .as_str()
            .unwrap(),
    );
    let exported = std::fs::read_to_string(py_dir.join("messages.jsonl")).unwrap();
    let n_data = exported
        .lines()
        .filter(|l| l.contains(r#""opcode":"text""#) || l.contains(r#""opcode":"binary""#))
        .count();
    assert_eq!(n_data, 2 * sent.len(), "{exported}");
}

fn uid_of(name: &str) -> u32 {
    nix::unistd::User::from_name(name)
        .unwrap()
        .unwrap()
        .uid
        .as_raw()
}

#[test]
fn privileges_are_dropped_before_the_save_file_is_created() {
    if !is_root("-Z") {
        return;
    }
    let nobody = uid_of("nobody");
    let tmp = tempfile::tempdir().unwrap();
    // nobody must be able to create the file in the directory.
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let file = tmp.path().join("saved.pcap");
    let port = free_port();
    let filter = format!("tcp port {port}");
    let mut sn = Sniffer::start(&[
        "-i",
        "lo",
        "-Z",
        "nobody",
        "-w",
        file.to_str().unwrap(),
        "--stats",
        "-f",
        &filter,
    ]);
    sn.wait_listening();
    let status = std::fs::read_to_string(format!("/proc/{}/status", sn.child.id())).unwrap();
    let uids: Vec<u32> = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .map(|u| u.parse().unwrap())
        .collect();
    assert_eq!(uids, vec![nobody; 4], "real, effective, saved, fs uid");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&file).unwrap().uid(), nobody);

    // Still capturing after the drop: a connection is saved.
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _s = l.accept().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sn.interrupt();
    let (code, _, err) = sn.finish();
    assert_eq!(code, 0, "{err:?}");
    let saved = wssniff::capture::CaptureReader::open(&file);
    let mut r = saved.unwrap();
    let mut n = 0;
    while r.next_packet().unwrap().is_some() {
        n += 1;
    }
    assert!(n >= 3, "the handshake's packets were saved ({n})");
}

#[test]
fn start_up_errors_exit_2_and_create_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("w.pcap");
    let export = tmp.path().join("out");
    let run = |args: &[&str]| {
        // Output options first: trailing words are the filter expression.
        let o = Command::new(wssniff_bin())
            .args(["-w", file.to_str().unwrap(), "--export"])
            .arg(&export)
            .args(args)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["-i", "wssniff-no-such0"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("wssniff: no such interface: wssniff-no-such0"),
        "{err}"
    );
    let (code, err) = run(&["-i", "lo", "-Z", "wssniff-no-such-user"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("-Z wssniff-no-such-user: no such user"),
        "{err}"
    );
    if nix::unistd::geteuid().is_root() {
        let (code, err) = run(&["-i", "lo", "tcp", "port"]);
        assert_eq!(code, Some(2), "{err}");
        assert!(
            err.starts_with("wssniff: bad filter expression 'tcp port': "),
            "{err}"
        );
    } else {
        // Without privilege the interface cannot be opened: the error says why.
        let (code, err) = run(&["-i", "lo"]);
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("CAP_NET_RAW"), "{err}");
    }
    assert!(!file.exists(), "-w file created");
    assert!(!export.exists(), "export directory created");
}

#[test]
fn count_stops_the_capture_by_itself() {
    if !is_root("-c") {
        return;
    }
    let port = free_port();
    let filter = format!("tcp port {port}");
    let mut sn = Sniffer::start(&["-i", "lo", "-c", "5", "--json", "-f", &filter]);
    sn.wait_listening();
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    // Each connect-accept-close gives at least 5 packets; repeat until it exits.
    let deadline = Instant::now() + WAIT;
    while sn.child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(c);
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (code, out, err) = sn.finish();
    assert_eq!(code, 0, "{err:?}");
    assert!(err.iter().any(|l| l == "5 packets captured"), "{err:?}");
    let recs = json_lines(&out);
    assert_eq!(recs.last().unwrap()["type"], "stats");
    assert_eq!(recs.last().unwrap()["packets"], 5);
}

#[test]
fn save_file_is_written_as_it_goes() {
    if !is_root("-w") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("live.pcap");
    let port = free_port();
    let filter = format!("tcp port {port}");
    let mut sn = Sniffer::start(&[
        "-i",
        "lo",
        "-q",
        "--stats",
        "-w",
        file.to_str().unwrap(),
        "-f",
        &filter,
    ]);
    // -q: no readiness line; wait for the file header instead.
    let deadline = Instant::now() + WAIT;
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 24 {
        assert!(Instant::now() < deadline, "no save file");
        std::thread::sleep(Duration::from_millis(20));
    }
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _s = l.accept().unwrap();
    // Three handshake packets (16-byte record headers + 2 x 54..74 bytes at
    // least) reach the disk within the flush interval, while it still runs.
    let deadline = Instant::now() + WAIT;
    while std::fs::metadata(&file).map_or(0, |m| m.len()) < 24 + 3 * (16 + 54) {
        assert!(
            Instant::now() < deadline,
            "packets not flushed while running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(sn.child.try_wait().unwrap().is_none());
    sn.interrupt();
    let (code, _, err) = sn.finish();
    assert_eq!(code, 0, "{err:?}");
    assert!(err.is_empty(), "-q printed {err:?}");
}

/// `read`'s message filters work live: only the client's text messages of a
/// tungstenite echo session come out; `--anomalous` is refused.
#[test]
fn message_filters_apply_to_live_capture() {
    if !is_root("live filters") {
        return;
    }
    let tung = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = tung.local_addr().unwrap().port();
    let filter = format!("tcp port {port}");
    let mut sn = Sniffer::start(&[
        "-i", "lo", "-B", "65536", "--json", "--opcode", "text", "--dir", "c2s", "-f", &filter,
    ]);
    sn.wait_listening();
    tungstenite_echo_server(tung);
    let mut ws = tungstenite_client(port, "/filtered");
    send_and_await_echo(&mut ws, Message::text("keep me"));
    send_and_await_echo(&mut ws, Message::binary(vec![1u8, 2, 3]));
    send_and_await_echo(&mut ws, Message::text("and me"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    drop(ws);
    sn.wait_stdout("the session's end", |l| {
        l.contains(r#""type":"session_end""#)
    });
    sn.interrupt();
    let (code, out, err) = sn.finish();
    assert_eq!(code, 0, "stderr: {err:?}");
    let recs = json_lines(&out);
    let msgs: Vec<(String, String)> = recs
        .iter()
        .filter(|r| r["type"] == "message")
        .map(|r| {
            (
                r["dir"].as_str().unwrap().to_owned(),
                r["text"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [("c2s", "keep me"), ("c2s", "and me")].map(|(d, t)| (d.to_owned(), t.to_owned()));
    assert_eq!(msgs, want);
    // Session-level records still come through.
    assert!(recs.iter().any(|r| r["type"] == "session"));

    let refused = Command::new(wssniff_bin())
        .args(["-i", "lo", "--anomalous", "-c", "1"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--anomalous"));
}
