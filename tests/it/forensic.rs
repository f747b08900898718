//! The forensic workflow end to end through the `wssniff` binary:
//! `sessions`, `anomalies`, the `read` filters and search, provenance
//! (hashes, packet numbers, sequence ranges against tshark), completions and
//! the man page.
//!
//! Expected values are computed here independently: from the unfiltered
//! `read --json` output, from `sha256sum`, from tshark, or from the bytes a
//! test wrote itself. Golden files live in `testdata/golden/forensic/`;
//! `WSSNIFF_BLESS=1 cargo test --release --test it forensic::` rewrites them.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use crate::tools;
use wssniff::synth::conn::Conn;
use wssniff::synth::pcap::PcapWriter;
use wssniff::synth::ws;
use wssniff::types::{Dir, Timestamp};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn data(rel: &str) -> String {
    root().join(rel).to_string_lossy().into_owned()
}

/// Runs wssniff from the crate root (so paths in the output are relative and
/// stable), returns stdout; asserts the exit status.
fn wssniff_status(args: &[&str], want: i32) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run wssniff");
    assert_eq!(
        out.status.code(),
        Some(want),
        "wssniff {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn wssniff(args: &[&str]) -> String {
    wssniff_status(args, 0)
}

fn lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of_type<'a>(v: &'a [Value], t: &str) -> Vec<&'a Value> {
    v.iter().filter(|r| r["type"] == t).collect()
}

fn golden(name: &str, actual: &str) {
    let path = root().join("testdata/golden/forensic").join(name);
    if std::env::var_os("WSSNIFF_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (bless with WSSNIFF_BLESS=1)", path.display()));
    assert_eq!(
        actual,
        want,
        "{} differs (re-bless with WSSNIFF_BLESS=1 if intended)",
        path.display()
    );
}

/// Identity of a message record.
type MsgKey = (u64, String, u64);

fn key(m: &Value) -> MsgKey {
    (
        m["session"].as_u64().unwrap(),
        m["dir"].as_str().unwrap().to_owned(),
        m["index"].as_u64().unwrap(),
    )
}

const CONCURRENT: &str = "testdata/real/py-concurrent.pcap";

// ---------------------------------------------------------------- sessions

#[test]
fn sessions_table_and_json() {
    let files = [
        CONCURRENT,
        "testdata/corpus/zeek/websocket.pcap",
        "testdata/corpus/zeek/oversized-close-frame.pcapng",
        "testdata/corpus/suricata-verify/websocket-compressed/example_websocket.pcap",
    ];
    let mut args = vec!["sessions", "-q"];
    args.extend(files);
    golden("sessions.txt", &wssniff(&args));
    args.push("--json");
    let json = wssniff(&args);
    golden("sessions.jsonl", &json);

    // Every summary equals what the unfiltered JSON says about the session.
    let mut read = vec!["read", "--json"];
    read.extend(files);
    let full = lines(&wssniff(&read));
    let sessions: BTreeMap<u64, &Value> = of_type(&full, "session")
        .into_iter()
        .map(|s| (s["id"].as_u64().unwrap(), s))
        .collect();
    let ends: BTreeMap<u64, &Value> = of_type(&full, "session_end")
        .into_iter()
        .map(|s| (s["session"].as_u64().unwrap(), s))
        .collect();
    let rows = lines(&json);
    assert_eq!(rows.len(), sessions.len());
    assert_eq!(rows.len(), 23);
    for r in &rows {
        assert_eq!(r["type"], "session_summary");
        let id = r["id"].as_u64().unwrap();
        let (s, e) = (sessions[&id], ends[&id]);
        for f in [
            "client",
            "server",
            "uri",
            "host",
            "origin",
            "subprotocol",
            "extensions",
        ] {
            assert_eq!(r[f], s[f], "session {id} {f}");
        }
        assert_eq!(r["start"], s["ts"]);
        assert_eq!(r["end"], e["ts"]);
        for f in [
            "messages",
            "bytes",
            "wire_bytes",
            "close_c2s",
            "close_s2c",
            "gaps",
            "anomalies",
        ] {
            assert_eq!(r[f], e[f], "session {id} {f}");
        }
        // Message and byte counts from the message records themselves.
        for dir in ["c2s", "s2c"] {
            let msgs: Vec<&Value> = of_type(&full, "message")
                .into_iter()
                .filter(|m| m["session"] == id && m["dir"] == dir)
                .collect();
            assert_eq!(r["messages"][dir].as_u64().unwrap(), msgs.len() as u64);
            let bytes: u64 = msgs.iter().map(|m| m["len"].as_u64().unwrap()).sum();
            assert_eq!(
                r["bytes"][dir].as_u64().unwrap(),
                bytes,
                "session {id} {dir}"
            );
        }
        let anomalies = of_type(&full, "anomaly")
            .iter()
            .filter(|a| a["session"] == id)
            .count();
        assert_eq!(r["anomalies"].as_u64().unwrap(), anomalies as u64);
    }
    // The deflate session: inflated bytes exceed wire bytes.
    let deflate = rows.iter().find(|r| r["uri"] == "/toggle").unwrap();
    assert!(deflate["bytes"]["s2c"].as_u64() > deflate["wire_bytes"]["s2c"].as_u64());

    // Sort orders.
    for (sort, field) in [
        ("bytes", "wire_bytes"),
        ("messages", "messages"),
        ("anomalies", "anomalies"),
        ("duration", "duration"),
    ] {
        let mut a = args.clone();
        a.extend(["--sort", sort]);
        let rows = lines(&wssniff(&a));
        let value = |r: &Value| -> f64 {
            match &r[field] {
                Value::Object(o) => o.values().map(|v| v.as_f64().unwrap()).sum(),
                v => v.as_f64().unwrap(),
            }
        };
        for w in rows.windows(2) {
            let (x, y) = (value(&w[0]), value(&w[1]));
            assert!(
                x > y || (x == y && w[0]["id"].as_u64() < w[1]["id"].as_u64()),
                "--sort {sort}: {x} then {y}"
            );
        }
    }
    let starts: Vec<String> = rows
        .iter()
        .map(|r| r["start"].as_str().unwrap().to_owned())
        .collect();
    let mut sorted = starts.clone();
    sorted.sort();
    assert_eq!(starts, sorted, "default order is by start time");
}

// --------------------------------------------------------------- anomalies

#[test]
fn anomalies_by_name_worst_first() {
    let files = [
        "testdata/corpus/arkime/arkime_synthetic.pcap",
        "testdata/corpus/zeek/oversized-close-frame.pcapng",
        "testdata/corpus/zeek/wstunnel-http.pcap",
        "testdata/corpus/suricata-verify/websocket-ping/input.pcap",
        "testdata/real/py-deflate-default.pcap",
    ];
    let mut args = vec!["anomalies", "-q"];
    args.extend(files);
    golden("anomalies.txt", &wssniff(&args));
    args.push("--json");
    let json = wssniff(&args);
    golden("anomalies.jsonl", &json);
    let rows = lines(&json);

    let mut read = vec!["read", "--json"];
    read.extend(files);
    let full = lines(&wssniff(&read));
    let mut want: BTreeMap<String, (u64, BTreeSet<u64>)> = BTreeMap::new();
    for a in of_type(&full, "anomaly") {
        let e = want
            .entry(a["name"].as_str().unwrap().to_owned())
            .or_default();
        e.0 += 1;
        if let Some(s) = a["session"].as_u64() {
            e.1.insert(s);
        }
    }
    assert!(
        want.len() >= 3,
        "test needs several anomaly names: {want:?}"
    );
    let got: BTreeMap<String, (u64, BTreeSet<u64>)> = rows
        .iter()
        .map(|r| {
            let sessions = r["sessions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_u64().unwrap())
                .collect();
            (
                r["name"].as_str().unwrap().to_owned(),
                (r["count"].as_u64().unwrap(), sessions),
            )
        })
        .collect();
    assert_eq!(got, want);
    let rank = |s: &str| {
        ["critical", "warning", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    for w in rows.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let ka = (
            rank(a["severity"].as_str().unwrap()),
            std::cmp::Reverse(a["count"].as_u64()),
        );
        let kb = (
            rank(b["severity"].as_str().unwrap()),
            std::cmp::Reverse(b["count"].as_u64()),
        );
        assert!(ka <= kb, "not worst first: {a} then {b}");
    }
    // `sessions --anomalies` appends the same rows.
    let mut s = vec!["sessions", "--json", "--anomalies"];
    s.extend(files);
    let both = lines(&wssniff(&s));
    let tail: Vec<&Value> = of_type(&both, "anomaly_summary");
    assert_eq!(tail.len(), rows.len());
    assert_eq!(tail.into_iter().cloned().collect::<Vec<_>>(), rows);
}

// ----------------------------------------------------------------- filters

/// The files the filter tests read together: 20 clean sessions of a Python
/// echo load, and corpus sessions with other hosts, ports and anomalies.
const FILTER_FILES: &[&str] = &[
    CONCURRENT,
    "testdata/corpus/zeek/websocket.pcap",
    "testdata/corpus/zeek/oversized-close-frame.pcapng",
    "testdata/corpus/zeek/wstunnel-http.pcap",
];

struct Full {
    records: Vec<Value>,
    sessions: BTreeMap<u64, Value>,
}

impl Full {
    fn load() -> Full {
        let mut args = vec!["read", "--json"];
        args.extend(FILTER_FILES);
        let records = lines(&wssniff(&args));
        let sessions = of_type(&records, "session")
            .into_iter()
            .map(|s| (s["id"].as_u64().unwrap(), s.clone()))
            .collect();
        Full { records, sessions }
    }

    fn messages(&self) -> Vec<&Value> {
        of_type(&self.records, "message")
    }
}

/// Runs `read --json FILTER_FILES extra` and checks the surviving messages
/// are exactly those `keep_msg` selects among sessions `keep_session`
/// selects; session-level records must follow the session selection.
fn check_filter(
    full: &Full,
    extra: &[&str],
    keep_session: &dyn Fn(&Value) -> bool,
    keep_msg: &dyn Fn(&Value) -> bool,
) -> usize {
    let mut args = vec!["read", "--json"];
    args.extend(FILTER_FILES);
    args.extend(extra);
    let out = lines(&wssniff(&args));
    let kept_sessions: BTreeSet<u64> = full
        .sessions
        .iter()
        .filter(|(_, s)| keep_session(s))
        .map(|(id, _)| *id)
        .collect();
    let want: Vec<MsgKey> = full
        .messages()
        .into_iter()
        .filter(|m| kept_sessions.contains(&m["session"].as_u64().unwrap()) && keep_msg(m))
        .map(key)
        .collect();
    let got: Vec<MsgKey> = of_type(&out, "message").into_iter().map(key).collect();
    assert_eq!(got, want, "filter {extra:?}");
    // Whole sessions: handshake and end records of exactly the kept sessions.
    let ids = |t: &str, f: &str| -> BTreeSet<u64> {
        of_type(&out, t)
            .iter()
            .map(|r| r[f].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids("session", "id"), kept_sessions, "filter {extra:?}");
    assert_eq!(
        ids("session_end", "session"),
        kept_sessions,
        "filter {extra:?}"
    );
    for a in of_type(&out, "anomaly") {
        if let Some(s) = a["session"].as_u64() {
            assert!(
                kept_sessions.contains(&s),
                "anomaly of a dropped session: {a}"
            );
        }
    }
    // Messages are passed on unchanged.
    let by_key: BTreeMap<MsgKey, &Value> =
        full.messages().into_iter().map(|m| (key(m), m)).collect();
    for m in of_type(&out, "message") {
        assert_eq!(&m, by_key.get(&key(m)).unwrap());
    }
    assert_eq!(out.first().unwrap()["type"], "capture");
    assert_eq!(out.last().unwrap()["type"], "stats");
    got.len()
}

fn all(_: &Value) -> bool {
    true
}

/// `(date, nanoseconds of the day)` of an RFC 3339 UTC timestamp as wssniff
/// writes them (`2026-11-23T16:21:21.724000000Z`).
fn instant(ts: &str) -> (String, u64) {
    let (date, time) = ts.split_once('T').unwrap();
    let time = time.trim_end_matches('Z');
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos = ((p[0] * 60 + p[1]) * 60 + p[2]) * 1_000_000_000 + frac.parse::<u64>().unwrap();
    (date.to_owned(), nanos)
}

#[test]
fn filters_alone_and_combined() {
    let full = Full::load();
    assert_eq!(full.sessions.len(), 23);
    let s = |id: u64| move |x: &Value| x["id"].as_u64() == Some(id);
    let ids: Vec<u64> = full.sessions.keys().copied().collect();
    let (a, b) = (ids[3], ids[7]);
    let (a_s, b_s) = (a.to_string(), b.to_string());
    let n = check_filter(
        &full,
        &["--session", &a_s, "--session", &b_s],
        &|x| s(a)(x) || s(b)(x),
        &all,
    );
    assert_eq!(n, 64);

    // --host: an IP (client or server side) or the Host header.
    check_filter(
        &full,
        &["--host", "54.148.114.85"],
        &|x| x["server"].as_str().unwrap().starts_with("54.148.114.85:"),
        &all,
    );
    let n = check_filter(
        &full,
        &["--host", "SANDBOX.kaazing.net"],
        &|x| x["host"] == "sandbox.kaazing.net",
        &all,
    );
    assert!(n > 0);

    // --port: either side.
    let client_port = full.sessions[&a]["client"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_owned();
    check_filter(&full, &["--port", &client_port], &s(a), &all);
    let n = check_filter(
        &full,
        &["--port", "80"],
        &|x| x["server"].as_str().unwrap().ends_with(":80"),
        &all,
    );
    assert!(n > 0);

    // --uri REGEX.
    let n = check_filter(
        &full,
        &["--uri", "^/c/1[0-9]$"],
        &|x| {
            let u = x["uri"].as_str().unwrap();
            u.len() == 5 && u.starts_with("/c/1")
        },
        &all,
    );
    assert_eq!(n, 10 * 32);

    // Message-level: opcode, direction, length.
    check_filter(
        &full,
        &["--opcode", "close", "--opcode", "ping"],
        &all,
        &|m| m["opcode"] == "close" || m["opcode"] == "ping",
    );
    check_filter(&full, &["--dir", "s2c"], &all, &|m| m["dir"] == "s2c");
    let len = |m: &Value| m["len"].as_u64().unwrap();
    let n = check_filter(
        &full,
        &["--min-len", "500", "--max-len", "900"],
        &all,
        &|m| (500..=900).contains(&len(m)),
    );
    assert!(n > 0);

    // Time window: absolute (two spellings) and relative to the capture start.
    let concurrent: Vec<&Value> = full
        .messages()
        .into_iter()
        .filter(|m| {
            full.sessions[&m["session"].as_u64().unwrap()]["client"]
                .as_str()
                .unwrap()
                .starts_with("127.")
        })
        .collect();
    let since = concurrent[100]["ts"].as_str().unwrap().to_owned();
    let until = concurrent[400]["ts"].as_str().unwrap().to_owned();
    let until_spaced = until.replacen('T', " ", 1).trim_end_matches('Z').to_owned();
    let n = check_filter(
        &full,
        &["--since", &since, "--until", &until_spaced],
        &all,
        &|m| {
            let t = m["ts"].as_str().unwrap();
            t >= since.as_str() && t <= until.as_str()
        },
    );
    assert!(n >= 301, "{n}");
    let capture = &full.records[0]["inputs"][0];
    let (day, start) = instant(capture["first_ts"].as_str().unwrap());
    let threshold = start + 60_000_000; // +60ms
    let n = check_filter(&full, &["--since", "+60ms"], &all, &|m| {
        let (d, t) = instant(m["ts"].as_str().unwrap());
        d > day || (d == day && t >= threshold)
    });
    assert!(n > 0 && n < concurrent.len());
    check_filter(&full, &["--until", "+0.1s"], &all, &|m| {
        let (d, t) = instant(m["ts"].as_str().unwrap());
        d < day || (d == day && t <= start + 100_000_000)
    });

    // --anomalous: exactly the sessions with an anomaly (two passes).
    let anomalous: BTreeSet<u64> = of_type(&full.records, "anomaly")
        .iter()
        .filter_map(|a| a["session"].as_u64())
        .collect();
    assert!(!anomalous.is_empty() && anomalous.len() < full.sessions.len());
    check_filter(
        &full,
        &["--anomalous"],
        &|x| anomalous.contains(&x["id"].as_u64().unwrap()),
        &all,
    );

    // Combined: AND across kinds.
    let n = check_filter(
        &full,
        &[
            "--port",
            "18103",
            "--uri",
            "/c/1",
            "--dir",
            "c2s",
            "--min-len",
            "700",
            "--opcode",
            "text",
            "--opcode",
            "binary",
        ],
        &|x| {
            x["server"].as_str().unwrap().ends_with(":18103")
                && x["uri"].as_str().unwrap().contains("/c/1")
        },
        &|m| {
            m["dir"] == "c2s" && len(m) >= 700 && (m["opcode"] == "text" || m["opcode"] == "binary")
        },
    );
    assert!(n > 0);
    let local = |x: &Value| {
        ["client", "server"]
            .iter()
            .any(|f| x[*f].as_str().unwrap().starts_with("127.0.0.1:"))
    };
    let n = check_filter(
        &full,
        &["--anomalous", "--host", "127.0.0.1"],
        &|x| local(x) && anomalous.contains(&x["id"].as_u64().unwrap()),
        &all,
    );
    assert!(n < check_filter(&full, &["--host", "127.0.0.1"], &local, &all));
}

#[test]
fn filters_apply_to_transcript_and_export() {
    let full = Full::load();
    let id = *full.sessions.keys().nth(5).unwrap();
    let id_s = id.to_string();
    // Transcript: only that session's messages.
    let mut args = vec!["read", "--color", "never"];
    args.extend(FILTER_FILES);
    args.extend(["--session", &id_s, "--opcode", "close"]);
    let t = wssniff(&args);
    let closes = t.lines().filter(|l| l.contains("close")).count();
    assert!(closes >= 2, "{t}");
    for other in full.sessions.keys().filter(|k| **k != id) {
        assert!(
            !t.contains(&format!("#{other} ")),
            "session {other} leaked:\n{t}"
        );
    }
    // Export: one session folder, its messages complete.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out_s = out.to_string_lossy().into_owned();
    let mut args = vec!["read"];
    args.extend(FILTER_FILES);
    args.extend(["--session", &id_s, "--export", &out_s]);
    wssniff(&args);
    let folders: Vec<String> = std::fs::read_dir(out.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(folders, vec![format!("{id:06}")]);
    let exported = std::fs::read_to_string(
        out.join("sessions")
            .join(&folders[0])
            .join("messages.jsonl"),
    )
    .unwrap();
    let want = full
        .messages()
        .iter()
        .filter(|m| m["session"].as_u64() == Some(id))
        .count();
    assert_eq!(exported.lines().count(), want);
}

// ------------------------------------------------------------------ search

/// A capture with one session: a 1 MiB binary message in 7 masked frames
/// with `token` at `at`, a few text messages, and one compressed text
/// message (permessage-deflate) carrying `token` too.
fn search_capture(path: &Path, token: &[u8], at: usize) -> Vec<u8> {
    let mut w = PcapWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    let mut c = Conn::new(
        "10.1.1.1:40000".parse().unwrap(),
        "10.2.2.2:8080".parse().unwrap(),
        1_000,
        9_000_000,
    );
    c.handshake(&mut w, Timestamp::new(1_700_000_000, 0))
        .unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let ext = Some("permessage-deflate");
    c.send(
        &mut w,
        Dir::C2s,
        &ws::upgrade_request("search.test", "/s", key, ext),
        1460,
    )
    .unwrap();
    c.send(&mut w, Dir::S2c, &ws::upgrade_response(key, ext), 1460)
        .unwrap();
    let mask = Some([1, 2, 3, 4]);
    let send_text = |c: &mut Conn, w: &mut PcapWriter<std::fs::File>, s: &str, dir: Dir| {
        let mut f = Vec::new();
        ws::frame(
            &mut f,
            true,
            0,
            ws::opcode::TEXT,
            if dir == Dir::C2s { mask } else { None },
            s.as_bytes(),
        );
        c.send(w, dir, &f, 1460).unwrap();
    };
    for i in 0..4 {
        send_text(&mut c, &mut w, &format!("before {i}"), Dir::C2s);
    }
    let mut big = vec![0u8; 1 << 20];
    wssniff::synth::Rng::new(7).fill(&mut big);
    // Keep the token unique: no other place may hold its bytes by chance.
    big[at..at + token.len()].copy_from_slice(token);
    let mut f = Vec::new();
    let parts: Vec<&[u8]> = big.chunks(big.len() / 7 + 1).collect();
    for (i, p) in parts.iter().enumerate() {
        let op = if i == 0 {
            ws::opcode::BINARY
        } else {
            ws::opcode::CONTINUATION
        };
        ws::frame(&mut f, i + 1 == parts.len(), 0, op, mask, p);
    }
    c.send(&mut w, Dir::C2s, &f, 1460).unwrap();
    for i in 0..4 {
        send_text(&mut c, &mut w, &format!("after {i}"), Dir::C2s);
    }
    // Compressed server message with the token as text at offset 5000.
    let mut text = "lorem ipsum ".repeat(1000).into_bytes();
    text.truncate(5000);
    text.extend_from_slice(token);
    text.extend_from_slice(b" trailing words");
    let mut z = flate2::Compress::new(flate2::Compression::default(), false);
    let deflated = ws::deflate_message(&mut z, &text);
    let mut f = Vec::new();
    ws::frame(&mut f, true, ws::RSV1, ws::opcode::TEXT, None, &deflated);
    c.send(&mut w, Dir::S2c, &f, 1460).unwrap();
    let mut f = Vec::new();
    ws::frame(
        &mut f,
        true,
        0,
        ws::opcode::CLOSE,
        mask,
        &ws::close_payload(1000, "done"),
    );
    c.send(&mut w, Dir::C2s, &f, 1460).unwrap();
    let mut f = Vec::new();
    ws::frame(
        &mut f,
        true,
        0,
        ws::opcode::CLOSE,
        None,
        &ws::close_payload(1000, "done"),
    );
    c.send(&mut w, Dir::S2c, &f, 1460).unwrap();
    c.fin(&mut w, Dir::C2s).unwrap();
    c.fin(&mut w, Dir::S2c).unwrap();
    w.flush().unwrap();
    text
}

#[test]
fn grep_finds_deep_and_compressed_matches() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("search.pcap");
    let token = b"NEEDLE-7f3a9c-TOKEN";
    let at = 900_000;
    let text = search_capture(&cap, token, at);
    let cap_s = cap.to_string_lossy().into_owned();

    let all_msgs = lines(&wssniff(&["read", "--json", &cap_s]));
    let messages = of_type(&all_msgs, "message");
    assert_eq!(messages.len(), 12);

    let out = lines(&wssniff(&[
        "read",
        "--json",
        &cap_s,
        "--grep",
        "NEEDLE-[0-9a-f]+-TOKEN",
    ]));
    let hits = of_type(&out, "message");
    assert_eq!(hits.len(), 2, "{hits:?}");
    let big = hits[0];
    assert_eq!(big["len"], 1 << 20);
    assert_eq!(big["frames"], 7);
    let span = serde_json::json!([[at, at + token.len()]]);
    assert_eq!(big["match"], span);
    // The packets are those of the unfiltered record of the same message.
    let same = messages.iter().find(|m| key(m) == key(big)).unwrap();
    assert_eq!(big["packets"], same["packets"]);
    assert!(big["packets"].as_array().unwrap().len() > 700);
    let comp = hits[1];
    assert_eq!(comp["compressed"], true);
    let off = text.windows(token.len()).position(|w| w == token).unwrap();
    assert_eq!(comp["match"], serde_json::json!([[off, off + token.len()]]));
    // The session record comes before its matches; no other message records.
    assert_eq!(of_type(&out, "session").len(), 1);

    // -i, --grep-bytes as hex and as a bytes regex.
    let lower = String::from_utf8_lossy(token).to_lowercase();
    let n = of_type(
        &lines(&wssniff(&[
            "read", "--json", &cap_s, "--grep", &lower, "-i",
        ])),
        "message",
    )
    .len();
    assert_eq!(n, 2);
    let n = of_type(
        &lines(&wssniff(&["read", "--json", &cap_s, "--grep", &lower])),
        "message",
    )
    .len();
    assert_eq!(n, 0);
    let hex: String = token.iter().map(|b| format!("{b:02x} ")).collect();
    let out = lines(&wssniff(&[
        "read",
        "--json",
        &cap_s,
        "--grep-bytes",
        hex.trim(),
    ]));
    assert_eq!(of_type(&out, "message").len(), 2);
    let out = lines(&wssniff(&[
        "read",
        "--json",
        &cap_s,
        "--grep-bytes",
        r"(?-u)NEEDLE-\x37",
    ]));
    assert_eq!(
        of_type(&out, "message")[0]["match"],
        serde_json::json!([[at, at + 8]])
    );

    // -C 2: two messages before and after in the same session, in order.
    let out = lines(&wssniff(&[
        "read", "--json", &cap_s, "--grep", "NEEDLE", "-C", "2", "--dir", "c2s",
    ]));
    let texts: Vec<String> = of_type(&out, "message")
        .iter()
        .map(|m| m["text"].as_str().unwrap_or("<binary>").to_owned())
        .collect();
    assert_eq!(
        texts,
        ["before 2", "before 3", "<binary>", "after 0", "after 1"]
    );

    // Transcript: the span with context, and `--` between groups.
    let t = wssniff(&[
        "read",
        "--color",
        "never",
        &cap_s,
        "--grep",
        "before [03]",
        "-C",
        "0",
    ]);
    assert!(t.contains("match at 0..8: \"before 0\""), "{t}");
    // before 0 (+1 after), --, (1 before +) after 2: one separator.
    let t = wssniff(&[
        "read",
        "--color",
        "never",
        &cap_s,
        "--grep",
        "before 0|after 2",
        "-C",
        "1",
    ]);
    assert_eq!(t.lines().filter(|l| *l == "--").count(), 1, "{t}");
    assert!(
        t.contains("\"before 1\"") && t.contains("\"after 3\"") && !t.contains("\"before 2\""),
        "{t}"
    );
    let t = wssniff(&[
        "read",
        "--color",
        "never",
        &cap_s,
        "--grep",
        "NEEDLE-[0-9a-f]+-TOKEN",
    ]);
    assert!(
        t.contains(&format!("match at {at}..{}", at + token.len())),
        "{t}"
    );

    // Determinism.
    let a = wssniff(&["read", "--json", &cap_s, "--grep", "NEEDLE", "-C", "3"]);
    let b = wssniff(&["read", "--json", &cap_s, "--grep", "NEEDLE", "-C", "3"]);
    assert_eq!(a, b);
    // Bad pattern: usage error.
    wssniff_status(&["read", &cap_s, "--grep", "("], 2);
}

// -------------------------------------------------------------- provenance

/// tshark's frame numbers of WebSocket frames with FIN set, per TCP source
/// port, in order: the packets that completed each message.
fn tshark_message_ends(file: &str) -> BTreeMap<u16, Vec<u64>> {
    let out = Command::new("tshark")
        .args([
            "-r",
            file,
            "-Y",
            "websocket",
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "tcp.srcport",
            "-e",
            "websocket.fin",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut by_port: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
    for l in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = l.split('\t').collect();
        let frame: u64 = f[0].parse().unwrap();
        let port: u16 = f[1].parse().unwrap();
        for fin in f[2].split(',') {
            if fin == "1" || fin == "True" {
                by_port.entry(port).or_default().push(frame);
            }
        }
    }
    by_port
}

/// tshark's raw TCP sequence number and payload length per frame.
fn tshark_seqs(file: &str) -> BTreeMap<u64, (u64, u64)> {
    let out = Command::new("tshark")
        .args([
            "-r",
            file,
            "-T",
            "fields",
            "-e",
            "frame.number",
            "-e",
            "tcp.seq_raw",
            "-e",
            "tcp.len",
        ])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Some((
                f[0].parse().ok()?,
                (f.get(1)?.parse().ok()?, f.get(2)?.parse().ok()?),
            ))
        })
        .collect()
}

fn sha256sum(file: &str) -> String {
    let out = Command::new("sha256sum").arg(file).output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn provenance_matches_sha256sum_and_tshark() {
    let files = [
        "testdata/real/py-basic.pcap",
        "testdata/real/py-close-codes.pcap",
    ];
    let out = lines(&wssniff(&["read", "--json", files[0], files[1]]));
    let capture = &out[0];
    assert_eq!(capture["type"], "capture");
    for (i, f) in files.iter().enumerate() {
        let input = &capture["inputs"][i];
        assert_eq!(input["index"], i);
        assert_eq!(input["path"], *f);
        assert_eq!(input["sha256"], sha256sum(&data(f)));
        assert_eq!(input["size"], std::fs::metadata(data(f)).unwrap().len());
        assert_eq!(input["link_types"], serde_json::json!([1]));
    }
    if !tools::need(
        "provenance against tshark",
        "tshark on PATH",
        tools::tshark(),
    ) {
        return;
    }
    let sessions: BTreeMap<u64, &Value> = of_type(&out, "session")
        .into_iter()
        .map(|s| (s["id"].as_u64().unwrap(), s))
        .collect();
    let mut checked_seq = 0;
    for (i, f) in files.iter().enumerate() {
        let ends = tshark_message_ends(&data(f));
        let seqs = tshark_seqs(&data(f));
        let mut ours: BTreeMap<u16, Vec<u64>> = BTreeMap::new();
        for m in of_type(&out, "message") {
            let file = m["file"].as_u64().unwrap_or(0);
            if file != i as u64 {
                continue;
            }
            let s = sessions[&m["session"].as_u64().unwrap()];
            let side = if m["dir"] == "c2s" {
                "client"
            } else {
                "server"
            };
            let port: u16 = s[side]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            let packets: Vec<u64> = m["packets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_u64().unwrap())
                .collect();
            ours.entry(port)
                .or_default()
                .push(*packets.iter().max().unwrap());
            // Single-packet messages that fill their packet: the sequence
            // range is the packet's.
            let stream = m["stream"].as_array().unwrap();
            let wire = stream[1].as_u64().unwrap() - stream[0].as_u64().unwrap();
            if let [p] = packets[..] {
                let (seq, len) = seqs[&p];
                if len == wire {
                    assert_eq!(
                        m["seq"],
                        serde_json::json!([seq, (seq + len) % (1 << 32)]),
                        "{m}"
                    );
                    checked_seq += 1;
                }
            }
        }
        assert_eq!(
            ours, ends,
            "{f}: packets that complete each message, per direction"
        );
        assert!(ours.values().map(Vec::len).sum::<usize>() > 20);
    }
    assert!(checked_seq > 20, "{checked_seq}");
    // `file` appears only on records of the second input.
    assert!(of_type(&out, "message").iter().any(|m| m["file"] == 1));
    assert!(of_type(&out, "message")
        .iter()
        .all(|m| m["file"].is_null() || m["file"] == 1));
}

// ------------------------------------------------- completions and man page

#[test]
fn completions_and_man_page() {
    for shell in ["bash", "zsh", "fish"] {
        let out = wssniff(&["completions", shell]);
        for sub in ["read", "sessions", "anomalies", "completions", "man"] {
            assert!(out.contains(sub), "{shell} completion lacks {sub}");
        }
        assert!(
            out.contains("grep-bytes") && out.contains("anomalous"),
            "{shell}"
        );
    }
    let man = wssniff(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH wssniff"),
        "{}",
        &man[..200.min(man.len())]
    );
    for sub in ["read", "sessions", "anomalies"] {
        assert!(man.contains(sub));
    }
    wssniff_status(&["completions", "nosuchshell"], 2);
}

#[test]
fn anomalous_refuses_stdin() {
    let out = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(["read", "-", "--anomalous"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("save the capture"));
}

// ---------------------------------------------------------------- progress

/// Runs wssniff under `script` (a pseudo-terminal), returns what it drew.
fn on_a_terminal(args: &str) -> Option<String> {
    let log = tempfile::NamedTempFile::new().unwrap();
    let cmd = format!("{} {args} >/dev/null", env!("CARGO_BIN_EXE_wssniff"));
    let out = Command::new("script")
        .args(["-qec", &cmd])
        .arg(log.path())
        .current_dir(root())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(std::fs::read_to_string(log.path()).unwrap())
}

#[test]
fn progress_bar_only_on_a_terminal() {
    // 5 x 2.4 MiB: above the 8 MiB threshold.
    let p = "testdata/real/py-basic.pcap";
    let big = format!("read --stats {p} {p} {p} {p} {p}");
    if !tools::need(
        "progress bar",
        "util-linux `script` (a pseudo-terminal)",
        tools::script(),
    ) {
        return;
    }
    let drawn = on_a_terminal(&big).expect("wssniff under `script`");
    assert!(drawn.contains("ETA") && drawn.contains("MiB"), "{drawn}");
    let quiet = on_a_terminal(&format!("{big} --quiet")).unwrap();
    assert!(!quiet.contains("ETA"), "{quiet}");
    let small = on_a_terminal(&format!("read --stats {p}")).unwrap();
    assert!(!small.contains("ETA"), "{small}");
    // Not a terminal: nothing on stderr.
    let out = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(["read", "--stats", p, p, p, p, p])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
