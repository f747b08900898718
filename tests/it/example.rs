//! `examples/embed.rs`, the library-API example, built into the tests and
//! run: it lists a real capture's sessions and replays one to a real peer.

#[path = "../../examples/embed.rs"]
mod embed;

use std::net::TcpListener;
use std::path::Path;
use tungstenite::Message;

/// A tungstenite echo server on a loopback port, for one connection.
fn echo_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                    if ws.send(m).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    (port, h)
}

fn capture() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real/py-echo.pcap")
}

#[test]
fn the_example_lists_the_sessions_of_a_capture() {
    let work = tempfile::tempdir().unwrap();
    let out = embed::run(&capture(), None, work.path()).unwrap();
    let truth = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/real/py-echo.truth.jsonl"),
    )
    .unwrap();
    // One connection; the client's data messages as it logged them, then
    // its close frame (not in this older truth file).
    let c2s = truth
        .lines()
        .filter(|l| l.contains("\"dir\": \"c2s\""))
        .count()
        + 1;
    assert!(c2s > 0);
    assert_eq!(out.sessions.len(), 1, "{:?}", out.sessions);
    assert!(
        out.sessions[0].contains(&format!("messages {c2s}/")),
        "{:?} (want {c2s} client messages)",
        out.sessions
    );
    assert!(out.replayed.is_none());
}

#[test]
fn the_example_replays_a_session_to_a_real_echo_server() {
    let work = tempfile::tempdir().unwrap();
    let (port, server) = echo_server();
    let url = format!("ws://127.0.0.1:{port}/");
    let out = embed::run(&capture(), Some(&url), &work.path().join("export")).unwrap();
    let (_, same) = out.replayed.expect("a session was replayed");
    assert!(
        same,
        "the echo server echoes what the recorded echo server sent"
    );
    server.join().unwrap();
}
