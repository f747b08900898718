//! Every message of every real capture must come back exactly as the
//! sending application logged it (`testdata/real/NAME.truth.jsonl`): per
//! connection and direction, in order, opcode, length, SHA-256 of the
//! decoded payload, text, close code and reason, and the RSV1 flag. No gaps,
//! no anomalies beyond informational ones, every session ended.

use crate::common;

use common::{analyse, dir_name, port_of, read_jsonl, sha256_hex, Keep, BENIGN_ANOMALIES};
use serde_json::Value;
use std::collections::BTreeMap;
use wssniff::session::opcode_name;

/// Problems found in one capture, one line each (so a failure lists them all).
fn check_capture(name: &str) -> Vec<String> {
    let pcap = format!("testdata/real/{name}.pcap");
    let truth = read_jsonl(&common::root().join(format!("testdata/real/{name}.truth.jsonl")));
    assert!(!truth.is_empty(), "{name}: empty truth file");
    let got = analyse(&pcap);
    let mut errs = Vec::new();

    for a in &got.anomalies {
        if !BENIGN_ANOMALIES.contains(&a.name.as_str()) {
            errs.push(format!(
                "unexpected anomaly {} at packet {:?}: {}",
                a.name, a.packet, a.detail
            ));
        }
    }
    for g in &got.gaps {
        errs.push(format!("unexpected gap: {g:?}"));
    }
    check_sessions_ended(&got, &mut errs);

    let client_of: BTreeMap<u64, u16> = got
        .sessions
        .iter()
        .map(|s| (s.id, port_of(&s.client)))
        .collect();
    let ports: Vec<u16> = client_of.values().copied().collect();
    let echo = is_echo_truth(&truth);
    // Truth per (client port, direction), in send order.
    let mut want: BTreeMap<(u16, String), Vec<&Value>> = BTreeMap::new();
    for t in &truth {
        let dir = t["dir"].as_str().expect("dir").to_owned();
        if echo {
            // One connection whose server echoes every data message: the
            // client's log is also the server's, in the same order.
            let Some(&port) = ports.first() else {
                errs.push("no session".into());
                break;
            };
            want.entry((port, "s2c".into())).or_default().push(t);
            want.entry((port, dir)).or_default().push(t);
        } else {
            let port = t["client_port"].as_u64().expect("client_port") as u16;
            want.entry((port, dir)).or_default().push(t);
        }
    }
    // Decoded messages per (client port, direction), in stream order.
    let mut have: BTreeMap<(u16, String), Vec<&common::Msg>> = BTreeMap::new();
    for m in &got.messages {
        if echo && m.opcode > 2 {
            continue; // an echo log lists data messages only
        }
        let port = client_of[&m.session];
        have.entry((port, dir_name(m.dir).to_owned()))
            .or_default()
            .push(m);
    }
    let truth_ports: std::collections::BTreeSet<u16> = want.keys().map(|k| k.0).collect();
    let mut session_ports = ports.clone();
    session_ports.sort_unstable();
    if session_ports != truth_ports.iter().copied().collect::<Vec<_>>() {
        errs.push(format!(
            "sessions for client ports {session_ports:?}, truth has {truth_ports:?}"
        ));
    }

    let keys: std::collections::BTreeSet<_> = want.keys().chain(have.keys()).cloned().collect();
    for key in keys {
        let w = want.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let h = have.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        if w.len() != h.len() {
            errs.push(format!(
                "port {} {}: {} messages decoded, {} sent",
                key.0,
                key.1,
                h.len(),
                w.len()
            ));
        }
        for (i, (t, m)) in w.iter().zip(h.iter()).enumerate() {
            let at = format!(
                "port {} {} message {i} (packets {:?})",
                key.0, key.1, m.packets
            );
            compare_message(&at, t, m, &mut errs);
        }
    }
    errs
}

/// The echo recordings (`record/record_echo.py`) log only the client's data
/// messages, without connection fields: a capture of one connection whose
/// server echoes every data message.
fn is_echo_truth(truth: &[Value]) -> bool {
    truth.iter().all(|t| t.get("client_port").is_none())
}

fn check_sessions_ended(got: &Keep, errs: &mut Vec<String>) {
    for s in &got.sessions {
        match got.ends.iter().find(|e| e.session == s.id) {
            None => errs.push(format!("session {} has no session_end", s.id)),
            Some(e) if e.incomplete || e.gaps != 0 => {
                errs.push(format!("session {} ended incomplete: {e:?}", s.id))
            }
            Some(_) => {}
        }
    }
}

fn compare_message(at: &str, t: &Value, m: &common::Msg, errs: &mut Vec<String>) {
    let mut err = |what: String| errs.push(format!("{at}: {what}"));
    let opcode = t["opcode"].as_str().unwrap_or("?");
    if opcode_name(m.opcode) != opcode {
        err(format!("opcode {} != sent {opcode}", opcode_name(m.opcode)));
        return; // the rest would only repeat the mismatch
    }
    let len = t["len"].as_u64().unwrap_or(u64::MAX);
    if m.len != len || m.payload.len() as u64 != len {
        err(format!(
            "len {} (held {}) != sent {len}",
            m.len,
            m.payload.len()
        ));
    }
    if m.truncated || m.incomplete || m.inflate_failed {
        err(format!(
            "flags truncated={} incomplete={} inflate_failed={}",
            m.truncated, m.incomplete, m.inflate_failed
        ));
    }
    let sha = sha256_hex(&m.payload);
    if Some(sha.as_str()) != t["sha256"].as_str() {
        err(format!("sha256 {sha} != sent {}", t["sha256"]));
    }
    if let Some(text) = t["text"].as_str() {
        if m.payload != text.as_bytes() {
            err(format!(
                "text {:?} != sent {text:?}",
                String::from_utf8_lossy(&m.payload)
            ));
        }
    }
    if let Some(b64) = t["b64"].as_str() {
        use base64::Engine as _;
        let sent = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("truth b64");
        if m.payload != sent {
            err("payload differs from sent b64".into());
        }
    }
    if let Some(c) = t["compressed"].as_bool() {
        if m.compressed != c {
            err(format!("compressed {} != sent {c}", m.compressed));
        }
    }
    if opcode == "close" {
        let code = t["close_code"].as_u64().map(|c| c as u16);
        let reason = t["close_reason"].as_str().unwrap_or("").to_owned();
        match &m.close {
            Some((c, r)) if *c == code && *r == reason => {}
            other => err(format!("close {other:?} != sent ({code:?}, {reason:?})")),
        }
    }
    if let Some(frames) = t["frames"].as_u64() {
        if m.frames.len() as u64 != frames {
            err(format!(
                "{} frames decoded, sender used {frames}",
                m.frames.len()
            ));
        }
    }
}

fn real_names() -> Vec<String> {
    common::captures_under("testdata/real")
        .iter()
        .filter_map(|p| {
            p.strip_prefix("testdata/real/")
                .and_then(|n| n.strip_suffix(".pcap"))
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn every_real_capture_has_a_truth_file() {
    let names = real_names();
    assert!(
        names.len() >= 14,
        "expected the 14 real captures, found {names:?}"
    );
    for n in &names {
        let t = common::root().join(format!("testdata/real/{n}.truth.jsonl"));
        assert!(t.exists(), "{n}: no truth file");
    }
}

#[test]
fn every_real_capture_matches_its_truth() {
    let mut failures = Vec::new();
    for name in real_names() {
        for e in check_capture(&name) {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements with the truth:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The checker itself must notice a wrong payload (guards against a test
/// that compares nothing).
#[test]
fn checker_detects_a_changed_payload() {
    let truth = read_jsonl(&common::root().join("testdata/real/py-close-codes.truth.jsonl"));
    let t = &truth[0];
    let got = analyse("testdata/real/py-close-codes.pcap");
    let mut m = got.messages[0].clone();
    let mut errs = Vec::new();
    compare_message("x", t, &m, &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    if let Some(b) = m.payload.first_mut() {
        *b ^= 1;
    }
    compare_message("x", t, &m, &mut errs);
    assert!(!errs.is_empty());
}
