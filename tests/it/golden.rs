//! Golden outputs of the `wssniff` binary for every capture in
//! `testdata/real/` and `testdata/corpus/`: `read --json` and the transcript
//! (`--color never`), in `testdata/golden/<path under testdata, / as __>.jsonl`
//! and `.txt`. JSON outputs over [`FULL_LIMIT`] are stored normalized: each
//! message's `text`/`b64` replaced by the SHA-256 of its value, which keeps
//! every other field exact and the payload checked.
//!
//! Re-bless after an intended output change:
//! `WSSNIFF_BLESS=1 cargo test --release --test it golden::`, then review the diff.
//!
//! Also checks exit codes, determinism (two runs, byte-identical) and that a
//! capture cut inside a record exits 3 with everything before the cut analysed.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Outputs up to this size are stored verbatim.
const FULL_LIMIT: usize = 200 * 1024;

fn wssniff(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(args)
        .current_dir(common::root())
        .output()
        .expect("run wssniff")
}

fn golden_path(capture: &str, ext: &str) -> PathBuf {
    let rel = capture.strip_prefix("testdata/").unwrap_or(capture);
    common::root()
        .join("testdata/golden")
        .join(format!("{}.{ext}", rel.replace('/', "__")))
}

fn blessing() -> bool {
    std::env::var_os("WSSNIFF_BLESS").is_some_and(|v| v != "0")
}

/// Replaces `text`/`b64` of message records by `sha256:<hex of the value>`.
fn normalize_json(out: &str) -> String {
    let mut s = String::with_capacity(out.len() / 4);
    for line in out.lines() {
        let mut v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSON {line:?}: {e}"));
        if v["type"] == "message" {
            for field in ["text", "b64"] {
                if let Some(val) = v.get(field).and_then(|x| x.as_str()) {
                    let digest = format!("sha256:{}", common::sha256_hex(val.as_bytes()));
                    v[field] = serde_json::Value::String(digest);
                }
            }
        }
        s.push_str(&serde_json::to_string(&v).expect("serialize"));
        s.push('\n');
    }
    s
}

/// What is stored for an output: itself, or normalized when large.
fn stored_form(out: &str, json: bool) -> String {
    if json && out.len() > FULL_LIMIT {
        normalize_json(out)
    } else {
        out.to_owned()
    }
}

/// Compares with (or blesses) one golden file; returns a failure message.
fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if blessing() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir golden");
        std::fs::write(path, actual).expect("write golden");
        return None;
    }
    let Ok(want) = std::fs::read_to_string(path) else {
        return Some(format!(
            "{}: missing; run WSSNIFF_BLESS=1 cargo test --release --test it golden::",
            path.display()
        ));
    };
    if want == actual {
        return None;
    }
    let (w, a): (Vec<_>, Vec<_>) = (want.lines().collect(), actual.lines().collect());
    let first = w
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(w.len().min(a.len()));
    Some(format!(
        "{} differs at line {} ({} golden lines, {} now):\n  golden: {}\n  now:    {}",
        path.display(),
        first + 1,
        w.len(),
        a.len(),
        w.get(first).map(|l| truncate(l)).unwrap_or("<end>"),
        a.get(first).map(|l| truncate(l)).unwrap_or("<end>"),
    ))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(300) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = wssniff(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "wssniff {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

#[test]
fn golden_outputs_of_every_capture() {
    let captures = common::all_captures();
    assert!(captures.len() >= 30, "captures found: {captures:?}");
    let mut failures = Vec::new();
    for cap in &captures {
        let json = run_ok(&["read", "-q", cap, "--json"]);
        let again = run_ok(&["read", "-q", cap, "--json"]);
        if json != again {
            failures.push(format!("{cap}: two --json runs differ"));
        }
        let text = run_ok(&["read", "-q", cap, "--color", "never"]);
        let text_again = run_ok(&["read", "-q", cap, "--color", "never"]);
        if text != text_again {
            failures.push(format!("{cap}: two transcript runs differ"));
        }
        failures.extend(check_golden(
            &golden_path(cap, "jsonl"),
            &stored_form(&json, true),
        ));
        failures.extend(check_golden(
            &golden_path(cap, "txt"),
            &stored_form(&text, false),
        ));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `--stats` keeps no payload (no sink reads one), yet its statistics must
/// be exactly those of a full `--json` run: same messages, same anomalies
/// (truncation included, hence the second run with a tiny message limit).
#[test]
fn stats_only_run_counts_what_a_full_run_counts() {
    let mut failures = Vec::new();
    for cap in &common::all_captures() {
        for extra in [&[][..], &["--max-message", "7", "--max-inflate", "7"][..]] {
            let full = run_ok(&[&["read", "-q", cap, "--json"][..], extra].concat());
            let full_stats = full
                .lines()
                .find(|l| l.starts_with(r#"{"type":"stats""#))
                .unwrap_or_default();
            let stats = run_ok(&[&["read", "-q", cap, "--stats", "--json"][..], extra].concat());
            if stats.trim_end() != full_stats {
                failures.push(format!(
                    "{cap} {extra:?}:\n  --stats: {stats}\n  --json:  {full_stats}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every golden file belongs to a capture that still exists (no stale ones).
#[test]
fn no_stale_goldens() {
    let captures = common::all_captures();
    let dir = common::root().join("testdata/golden");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    for e in rd.flatten() {
        // Subdirectories belong to other suites (golden/forensic: tests/it/forensic.rs).
        if e.path().is_dir() {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let known = captures.iter().any(|c| {
            let g = |ext| golden_path(c, ext);
            g("jsonl").ends_with(&name) || g("txt").ends_with(&name)
        });
        assert!(known, "stale golden {name}: no capture for it");
    }
}

#[test]
fn normalizer_keeps_everything_but_payloads() {
    let line = r#"{"type":"message","len":2,"text":"hi","frames":1}
{"type":"stats","text":"kept"}
"#;
    let n = normalize_json(line);
    assert!(
        n.contains(&format!("sha256:{}", common::sha256_hex(b"hi"))),
        "{n}"
    );
    assert!(
        n.contains(r#""frames":1"#) && n.contains(r#""text":"kept""#),
        "{n}"
    );
    assert!(!n.contains(r#""hi""#));
}

/// A capture cut inside a packet record: exit 3, the error on stderr, and
/// every message wholly before the cut decoded exactly as from the full file.
#[test]
fn truncated_capture_exits_3_after_analysing_what_precedes() {
    let src = common::root().join("testdata/real/py-close-codes.pcap");
    let bytes = std::fs::read(&src).expect("read capture");
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = dir.path().join("cut.pcap");
    // Two thirds in: a few sessions complete, the cut lands inside a record
    // (a record boundary there would be a coincidence we check for below).
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write cut copy");

    let out = wssniff(&["read", "-q", "--json", cut.to_str().expect("utf-8 path")]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.stderr.is_empty(),
        "a truncation must be reported on stderr"
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(
        records.last().map(|r| r["type"].clone()),
        Some("stats".into())
    );
    let read_packets = records
        .last()
        .map(|r| r["packets"].as_u64().unwrap_or(0))
        .unwrap_or(0);
    assert!(read_packets > 10, "only {read_packets} packets analysed");

    let full = run_ok(&["read", "-q", "--json", "testdata/real/py-close-codes.pcap"]);
    let full_msgs: Vec<serde_json::Value> = full
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter(|r| r["type"] == "message")
        .collect();
    let full_packets = full
        .lines()
        .last()
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|r| r["packets"].as_u64())
        .unwrap_or(0);
    assert!(
        read_packets < full_packets,
        "the cut copy should hold fewer packets ({read_packets} vs {full_packets})"
    );
    let before_cut: Vec<&serde_json::Value> = full_msgs
        .iter()
        .filter(|m| {
            m["packets"].as_array().is_some_and(|p| {
                p.iter()
                    .all(|n| n.as_u64().unwrap_or(u64::MAX) <= read_packets)
            })
        })
        .collect();
    let cut_msgs: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["type"] == "message").collect();
    assert!(before_cut.len() >= 4, "cut too early to test anything");
    assert_eq!(
        &cut_msgs[..before_cut.len().min(cut_msgs.len())],
        &before_cut[..],
        "messages before the cut must be identical to the full run's"
    );
    // The session cut off mid-way is still reported as ended (incomplete).
    let sessions = records.iter().filter(|r| r["type"] == "session").count();
    let ends = records
        .iter()
        .filter(|r| r["type"] == "session_end")
        .count();
    assert_eq!(sessions, ends, "every session gets a session_end");
}

#[test]
fn unreadable_input_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture at all").expect("write");
    let out = wssniff(&["read", "-q", junk.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let missing = wssniff(&["read", "-q", "testdata/does-not-exist.pcap"]);
    assert_eq!(missing.status.code(), Some(1));
}
