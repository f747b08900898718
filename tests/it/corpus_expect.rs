//! wssniff against each public suite's own expectations for its captures
//! (`testdata/corpus/`, see its README): Zeek's logs and event dumps,
//! Suricata's expected events, Arkime's session JSON, pcap2har's HAR and
//! the evsetool capture's documented contents.

use crate::common;

use base64::Engine as _;
use common::{analyse, Keep};
use serde_json::Value;
use std::collections::BTreeSet;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn text_of(m: &common::Msg) -> String {
    String::from_utf8_lossy(&m.payload).into_owned()
}

/// The text of each frame of an uncompressed message: its payload split at
/// the frames' lengths.
fn frame_texts(m: &common::Msg) -> Vec<String> {
    assert!(!m.compressed, "frame texts of a compressed message");
    let mut out = Vec::new();
    let mut rest: &[u8] = &m.payload;
    for f in &m.frames {
        let n = usize::try_from(f.payload_len)
            .unwrap_or(usize::MAX)
            .min(rest.len());
        let (head, tail) = rest.split_at(n);
        out.push(String::from_utf8_lossy(head).into_owned());
        rest = tail;
    }
    assert!(rest.is_empty(), "frames shorter than the payload");
    out
}

fn anomaly_names(k: &Keep) -> BTreeSet<String> {
    k.anomalies.iter().map(|a| a.name.clone()).collect()
}

/// Rows of a Zeek log as (field name → value) maps.
fn zeek_log(path: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(common::root().join(path)).expect("zeek log");
    let mut fields: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("#fields\t") {
            fields = f.split('\t').map(str::to_owned).collect();
        } else if fields.is_empty() && line.starts_with("ts\t") {
            // Some baselines keep the header without its `#fields` tag.
            fields = line.split('\t').map(str::to_owned).collect();
        } else if !line.starts_with('#') && !line.is_empty() {
            rows.push(
                fields
                    .iter()
                    .cloned()
                    .zip(line.split('\t').map(str::to_owned))
                    .collect(),
            );
        }
    }
    rows
}

/// Zeek's `-` is "unset".
fn zeek_opt(v: &str) -> Option<String> {
    (v != "-").then(|| v.to_owned())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Zeek's websocket.log: host, uri, user agent, subprotocol, server
/// (accepted) and client (offered) extensions, one session each.
#[test]
fn zeek_websocket_logs() {
    for (test, capture) in [
        ("websocket.broker-websocket", "broker-websocket.pcap"),
        ("websocket.jupyter-websocket", "jupyter-websocket.pcap"),
        ("websocket.key-accept-wrong", "wrong-accept-header.pcap"),
        ("websocket.wstunnel-http", "wstunnel-http.pcap"),
    ] {
        let rows = zeek_log(&format!(
            "testdata/corpus/zeek/expected/{test}/websocket.log"
        ));
        let k = analyse(&format!("testdata/corpus/zeek/{capture}"));
        assert_eq!(k.sessions.len(), rows.len(), "{test}: sessions");
        for (s, z) in k.sessions.iter().zip(&rows) {
            assert_eq!(
                s.host.as_deref(),
                zeek_opt(&z["host"]).as_deref(),
                "{test} host"
            );
            assert_eq!(s.uri, z["uri"], "{test} uri");
            assert_eq!(
                header(&s.request.headers, "User-Agent").map(str::to_owned),
                zeek_opt(&z["user_agent"]),
                "{test} user agent"
            );
            assert_eq!(
                s.subprotocol,
                zeek_opt(&z["subprotocol"]),
                "{test} subprotocol"
            );
            let accepted = (!s.extensions.is_empty()).then(|| s.extensions.join(","));
            assert_eq!(
                accepted,
                zeek_opt(&z["server_extensions"]),
                "{test} extensions"
            );
            assert_eq!(
                header(&s.request.headers, "Sec-WebSocket-Extensions").map(str::to_owned),
                zeek_opt(&z["client_extensions"]),
                "{test} offered extensions"
            );
        }
    }
}

/// Zeek's weird names mapped to our anomaly names.
#[test]
fn zeek_weirds_are_our_anomalies() {
    for (log, capture, ours) in [
        (
            "websocket.key-accept-wrong/weird.log",
            "wrong-accept-header.pcap",
            &["ws_accept_mismatch"][..],
        ),
        (
            "websocket.close-too-large/weird-pac.log",
            "oversized-close-frame.pcapng",
            &["ws_control_too_long"][..],
        ),
    ] {
        let weirds = zeek_log(&format!("testdata/corpus/zeek/expected/{log}"));
        assert!(!weirds.is_empty(), "{log}: no weird");
        let names = anomaly_names(&analyse(&format!("testdata/corpus/zeek/{capture}")));
        for want in ours {
            assert!(
                names.contains(*want),
                "{capture}: {want} missing from {names:?}"
            );
        }
    }
    // Zeek's dump of that capture: "Close length: 256".
    let dump = std::fs::read_to_string(
        common::root()
            .join("testdata/corpus/zeek/expected/websocket.close-too-large/out-pac-uncapped"),
    )
    .expect("dump");
    assert!(dump.contains("Close length: 256"));
    let k = analyse("testdata/corpus/zeek/oversized-close-frame.pcapng");
    assert!(
        // Zeek's length is the reason's: 258 payload bytes less the code.
        k.messages.iter().any(|m| m.opcode == 8
            && m.len == 258
            && m.close.as_ref().is_some_and(|(_, r)| r.len() == 256)),
        "the 258-byte close with a 256-byte reason"
    );
    // Zeek's `protocol_data_with_HTTP_upgrade_reply` for the 101 coalesced
    // with the first frame is Zeek's parser limitation, not a protocol
    // violation: we decode that frame and report nothing.
    let k = analyse("testdata/corpus/zeek/reply-ping-coalesced.pcap");
    assert!(k.anomalies.is_empty(), "{:?}", k.anomalies);
    assert!(!k.messages.is_empty());
}

/// Zeek's event dump (`websocket.events/out`, one section per capture):
/// every `websocket_frame` line (direction, fin, rsv, opcode, payload
/// length), in order, equals our frames, for each capture we have.
#[test]
fn zeek_frame_events() {
    let text = std::fs::read_to_string(
        common::root().join("testdata/corpus/zeek/expected/websocket.events/out"),
    )
    .expect("events");
    // (is_orig, fin, rsv, opcode, payload length) per frame, per capture.
    type ZeekFrameEvent = (bool, bool, u8, u8, u64);
    let mut sections: Vec<(String, Vec<ZeekFrameEvent>)> = Vec::new();
    for line in text.lines() {
        if line.ends_with(".pcap") && !line.contains(' ') {
            sections.push((line.to_owned(), Vec::new()));
            continue;
        }
        let Some(rest) = line.strip_prefix("websocket_frame, ") else {
            continue;
        };
        // uid, is_orig, fin, F, rsv, R, opcode, OP, payload_len, N
        let f: Vec<&str> = rest.split(", ").collect();
        let op =
            wssniff::session::opcode_from_name(f[7]).unwrap_or_else(|| panic!("opcode {}", f[7]));
        let frame = (
            f[1] == "T",
            f[3] == "T",
            f[5].parse::<u8>().expect("rsv"),
            op,
            f[9].parse::<u64>().expect("len"),
        );
        sections
            .last_mut()
            .expect("section before frames")
            .1
            .push(frame);
    }
    let mut compared = 0;
    for (capture, zeek) in &sections {
        let path = format!("testdata/corpus/zeek/{capture}");
        if !common::root().join(&path).exists() {
            continue; // Zeek's suite has captures the corpus did not copy
        }
        let k = analyse(&path);
        let mut ours: Vec<(u64, u64, bool, bool, u8, u8, u64)> = Vec::new();
        for m in &k.messages {
            for f in &m.frames {
                let packet = f.packets.iter().copied().max().unwrap_or(0);
                ours.push((
                    packet,
                    f.offset,
                    m.dir == wssniff::types::Dir::C2s,
                    f.fin,
                    f.rsv,
                    f.opcode,
                    f.payload_len,
                ));
            }
        }
        ours.sort_by_key(|o| (o.0, o.1));
        let ours: Vec<_> = ours
            .into_iter()
            .map(|(_, _, a, b, c, d, e)| (a, b, c, d, e))
            .collect();
        assert_eq!(&ours, zeek, "{capture}");
        compared += 1;
    }
    assert!(compared >= 3, "only {compared} Zeek sections compared");
}

/// Zeek's escaping in event dumps: `\xNN` for a byte that is not
/// printable ASCII, everything else as is.
fn zeek_unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 2..i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], b.get(i + 1), hex) {
            (b'\\', Some(b'x'), Some(v)) => {
                out.push(v);
                i += 4;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// One frame of a Zeek event dump: direction (is_orig), opcode name, payload
/// length, the data of its `websocket_frame_data` events (each capped by
/// Zeek at 120 bytes) and their declared lengths.
#[derive(Debug, Default)]
struct ZeekFrame {
    orig: bool,
    opcode: String,
    len: u64,
    chunks: Vec<(u64, Vec<u8>)>,
}

/// A capture's section of a Zeek dump: its name, frames and closes.
type ZeekSection = (String, Vec<ZeekFrame>, Vec<(bool, u16, String)>);

/// The frames and `websocket_close` events (orig, status, reason) of each
/// capture section of a Zeek dump (a dump of one capture has one section,
/// named by `default`).
fn zeek_dump(path: &str, default: &str) -> Vec<ZeekSection> {
    let text = std::fs::read_to_string(common::root().join(path)).expect("zeek dump");
    let mut out: Vec<ZeekSection> = Vec::new();
    for line in text.lines() {
        if line.ends_with(".pcap") && !line.contains(' ') {
            out.push((line.to_owned(), Vec::new(), Vec::new()));
            continue;
        }
        if out.is_empty() && line.starts_with("websocket_") {
            out.push((default.to_owned(), Vec::new(), Vec::new()));
        }
        let Some(sec) = out.last_mut() else { continue };
        let f: Vec<&str> = line.splitn(7, ", ").collect();
        match f.first().copied() {
            Some("websocket_frame") => sec.1.push(ZeekFrame {
                orig: f[2] == "T",
                opcode: line.split(", ").nth(8).expect("opcode").to_owned(),
                len: line.split(", ").nth(10).expect("len").parse().expect("len"),
                chunks: Vec::new(),
            }),
            Some("websocket_frame_data") => {
                let frame = sec
                    .1
                    .iter_mut()
                    .rev()
                    .find(|z| z.orig == (f[2] == "T"))
                    .expect("frame before its data");
                frame
                    .chunks
                    .push((f[4].parse().expect("len"), zeek_unescape(f[6])));
            }
            Some("websocket_close") => {
                let p: Vec<&str> = line.splitn(7, ", ").collect();
                sec.2
                    .push((p[2] == "T", p[4].parse().expect("status"), p[6].to_owned()));
            }
            _ => {}
        }
    }
    out
}

/// Zeek's per-frame data dumps (`out*`; the fragmented-http-reply one
/// holds only HTTP headers): every frame's opcode and length,
/// its data (up to Zeek's 120-byte cap per chunk) against our frame's
/// payload, and every close status and reason, for each capture we have.
#[test]
fn zeek_frame_data_dumps() {
    let mut compared = 0;
    for (dump, capture) in [
        ("websocket.events/out", ""),
        (
            "websocket.coalesced-reply-ping/out-coalesced",
            "reply-ping-coalesced.pcap",
        ),
    ] {
        for (cap, zeek, closes) in
            zeek_dump(&format!("testdata/corpus/zeek/expected/{dump}"), capture)
        {
            let path = format!("testdata/corpus/zeek/{cap}");
            if !common::root().join(&path).exists() {
                continue; // Zeek's suite has captures the corpus did not copy
            }
            let k = analyse(&path);
            // Our frames in wire order, each with its (unmasked) payload.
            let mut ours: Vec<(u64, u64, bool, u8, Vec<u8>)> = Vec::new();
            for m in k.messages.iter().filter(|m| !m.compressed) {
                let mut rest: &[u8] = &m.payload;
                for f in &m.frames {
                    let n = usize::try_from(f.payload_len)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let (head, tail) = rest.split_at(n);
                    rest = tail;
                    let packet = f.packets.iter().copied().max().unwrap_or(0);
                    let c2s = m.dir == wssniff::types::Dir::C2s;
                    ours.push((packet, f.offset, c2s, f.opcode, head.to_vec()));
                }
            }
            ours.sort_by_key(|o| (o.0, o.1));
            assert_eq!(ours.len(), zeek.len(), "{dump} {cap}: frame count");
            for (i, (o, z)) in ours.iter().zip(&zeek).enumerate() {
                let at = format!("{dump} {cap} frame {i}");
                assert_eq!(o.2, z.orig, "{at}: direction");
                assert_eq!(wssniff::session::opcode_name(o.3), z.opcode, "{at}: opcode");
                assert_eq!(o.4.len() as u64, z.len, "{at}: length");
                let declared: u64 = z.chunks.iter().map(|c| c.0).sum();
                assert_eq!(declared, z.len, "{at}: Zeek's data chunks");
                let mut at_byte = 0usize;
                for (n, data) in &z.chunks {
                    let ours = o.4.get(at_byte..).unwrap_or_default();
                    assert!(
                        ours.starts_with(data),
                        "{at}: data {data:?} not at byte {at_byte}"
                    );
                    at_byte += usize::try_from(*n).unwrap_or(usize::MAX);
                }
            }
            let our_closes: Vec<(bool, u16, String)> = k
                .messages
                .iter()
                .filter_map(|m| {
                    let (code, reason) = m.close.as_ref()?;
                    // Zeek's status 0: a close frame with no status code.
                    let code = code.unwrap_or(0);
                    Some((m.dir == wssniff::types::Dir::C2s, code, reason.clone()))
                })
                .collect();
            let mut a = our_closes.clone();
            let mut b = closes.clone();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{dump} {cap}: closes");
            compared += 1;
        }
    }
    assert!(compared >= 4, "only {compared} Zeek dumps compared");
}

#[test]
fn zeek_unescape_decodes_hex() {
    assert_eq!(zeek_unescape(r"a\x03\xe8b\x"), b"a\x03\xe8b\\x".to_vec());
}

/// Suricata's expectations.
#[test]
fn suricata_expectations() {
    let root = "testdata/corpus/suricata-verify";
    // Every message compressed; the inflated text is in the test's rule.
    let yaml = std::fs::read_to_string(
        common::root().join(format!("{root}/websocket-compressed/test.yaml")),
    )
    .expect("yaml");
    // The rule (not copied into the corpus; see its README) matches the
    // inflated text `TOGGLE=5659131662f54334`, and the test expects exactly
    // one alert.
    assert!(yaml.contains("count: 1") && yaml.contains("alert.signature_id: 1"));
    let k = analyse(&format!(
        "{root}/websocket-compressed/example_websocket.pcap"
    ));
    assert!(k
        .messages
        .iter()
        .filter(|m| m.opcode <= 2)
        .all(|m| m.compressed && !m.inflate_failed));
    assert_eq!(
        k.messages
            .iter()
            .filter(|m| text_of(m).contains("TOGGLE=5659131662f54334"))
            .count(),
        1,
        "inflated TOGGLE text: one message"
    );

    // A 48-byte text message in two fragments with a ping between them.
    let k = analyse(&format!("{root}/websocket-control-frag/input.pcap"));
    let text: Vec<&common::Msg> = k.messages.iter().filter(|m| m.opcode == 1).collect();
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].len, 48);
    assert_eq!(text[0].frames.len(), 2);
    assert!(
        k.messages.iter().any(|m| m.opcode == 9),
        "the interleaved ping"
    );

    // Linux cooked capture with an (unmasked) client ping.
    let k = analyse(&format!("{root}/websocket-ping/input.pcap"));
    assert_eq!(k.sessions.len(), 1);
    assert!(k
        .messages
        .iter()
        .any(|m| m.opcode == 9 && m.dir == wssniff::types::Dir::C2s));
    assert!(anomaly_names(&k).contains("ws_unmasked_client_frame"));

    // An upgrade request with no response: no session, an anomaly saying so.
    let k = analyse(&format!("{root}/http-request-header-multi/input.pcap"));
    assert!(k.sessions.is_empty());
    assert!(anomaly_names(&k).contains("http_upgrade_unanswered"));

    // 17 text frames.
    let k = analyse(&format!("{root}/websocket/basic_websockets.pcap"));
    assert_eq!(k.messages.iter().filter(|m| m.opcode == 1).count(), 17);
}

/// Arkime's session JSON: frame count, frames masked by the client, payload
/// bytes and text samples of each WebSocket session.
#[test]
fn arkime_expectations() {
    for (test, capture) in [
        ("websocket.test", "websocket.pcap"),
        ("arkime_synthetic.test", "arkime_synthetic.pcap"),
    ] {
        let v: Value = serde_json::from_str(
            &std::fs::read_to_string(common::root().join(format!("testdata/corpus/arkime/{test}")))
                .expect("test"),
        )
        .expect("json");
        let ws: Vec<&Value> = v["sessions3"]
            .as_array()
            .expect("sessions3")
            .iter()
            .filter_map(|s| s["body"].get("websocket"))
            .collect();
        let k = analyse(&format!("testdata/corpus/arkime/{capture}"));
        assert_eq!(k.sessions.len(), ws.len(), "{test}: sessions");
        let w = ws[0];
        let frames: Vec<&common::Frame> = k.messages.iter().flat_map(|m| &m.frames).collect();
        assert_eq!(
            frames.len() as u64,
            w["frameCnt"].as_u64().expect("frameCnt"),
            "{test} frames"
        );
        if let Some(masked) = w["maskedFromClient"].as_u64() {
            assert_eq!(
                frames.iter().filter(|f| f.masked).count() as u64,
                masked,
                "{test} masked"
            );
        }
        if let Some(bytes) = w["payloadBytes"].as_u64() {
            let ours: u64 = frames.iter().map(|f| f.payload_len).sum();
            assert_eq!(ours, bytes, "{test} payload bytes");
        }
        // Arkime samples text per frame, not per message: a fragmented
        // message shows as one sample per frame.
        let texts: BTreeSet<String> = k
            .messages
            .iter()
            .filter(|m| m.opcode == 1)
            .flat_map(frame_texts)
            .collect();
        for t in w["textSample"].as_array().into_iter().flatten() {
            assert!(
                texts.contains(t.as_str().expect("text")),
                "{test}: text {t} missing"
            );
        }
        if let Some(code) = w.get("closeCode").and_then(Value::as_array) {
            let ours: BTreeSet<u64> = k
                .messages
                .iter()
                .filter_map(|m| m.close.as_ref()?.0)
                .map(u64::from)
                .collect();
            for c in code {
                assert!(
                    ours.contains(&c.as_u64().expect("code")),
                    "{test}: close code {c}"
                );
            }
        }
        if let Some(reasons) = w.get("closeReason").and_then(Value::as_array) {
            let ours: BTreeSet<String> = k
                .messages
                .iter()
                .filter_map(|m| Some(m.close.as_ref()?.1.clone()))
                .collect();
            for r in reasons {
                assert!(
                    ours.contains(r.as_str().expect("reason")),
                    "{test}: close reason {r}"
                );
            }
        }
    }
}

/// pcap2har's `_webSocketMessages`: the same messages (direction, opcode,
/// bytes), from the library and from our own HAR export.
#[test]
fn pcap2har_messages() {
    let har: Value = serde_json::from_str(
        &std::fs::read_to_string(
            common::root().join("testdata/corpus/pcap2har/ipv4-websocket-segmented.expected.har"),
        )
        .expect("har"),
    )
    .expect("json");
    let want: Vec<(String, u64, Vec<u8>)> = har["log"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .flat_map(|e| {
            e["_webSocketMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|m| {
            (
                m["type"].as_str().expect("type").to_owned(),
                m["opcode"].as_u64().expect("opcode"),
                B64.decode(m["data"].as_str().expect("data")).expect("b64"),
            )
        })
        .collect();
    assert!(
        want.iter().any(|w| w.2.len() == 5379),
        "the 5379-byte message"
    );
    let capture = "testdata/corpus/pcap2har/ipv4-websocket-segmented.pcap";
    let k = analyse(capture);
    let ours: Vec<(String, u64, Vec<u8>)> = k
        .messages
        .iter()
        .filter(|m| m.opcode <= 2)
        .map(|m| {
            let t = if m.dir == wssniff::types::Dir::C2s {
                "send"
            } else {
                "receive"
            };
            (t.to_owned(), u64::from(m.opcode), m.payload.clone())
        })
        .collect();
    assert_eq!(ours, want);

    // Our HAR export carries the same.
    let dir = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .current_dir(common::root())
        .args(["read", "-q", capture, "--export"])
        .arg(dir.path().join("x"))
        .output()
        .expect("run");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours_har: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("x/sessions.har")).expect("sessions.har"),
    )
    .expect("json");
    let exported: Vec<Vec<u8>> = ours_har["log"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .flat_map(|e| {
            e["_webSocketMessages"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|m| m["opcode"].as_u64().is_some_and(|o| o <= 2))
        .map(|m| {
            let d = m["data"].as_str().expect("data");
            B64.decode(d).unwrap_or_else(|_| d.as_bytes().to_vec())
        })
        .collect();
    assert_eq!(
        exported,
        want.iter().map(|w| w.2.clone()).collect::<Vec<_>>()
    );
}

/// evsetool: OCPP over permessage-deflate with context takeover. The
/// corpus README says packets 25 and 43 carry the `Accepted` answers; that
/// is wrong: 25 and 27 do (one per session), and packet 43 carries
/// `[3,"cee3e36b-…",{}]`, which tshark shows as well
/// (`corpus/tshark/evsetool/cap.pcapng.frames.tsv`). See testdata/README.md.
#[test]
fn evsetool_compressed_ocpp() {
    let k = analyse("testdata/corpus/evsetool/cap.pcapng");
    assert_eq!(k.sessions.len(), 2);
    let text_in = |packet: u64| -> String {
        let m = k
            .messages
            .iter()
            .find(|m| m.packets.contains(&packet) && m.opcode == 1)
            .unwrap_or_else(|| panic!("no text message in packet {packet}"));
        assert!(m.compressed, "packet {packet} is compressed");
        text_of(m)
    };
    let prefix = r#"[3,"bad9a3f6-ca80-4901-bb76-9034b8900b5b",{"status":"Accepted""#;
    for packet in [25u64, 27] {
        assert!(
            text_in(packet).starts_with(prefix),
            "packet {packet}: {}",
            text_in(packet)
        );
    }
    assert_eq!(
        text_in(43),
        r#"[3,"cee3e36b-34fb-45a8-a6b8-f5d394f32beb",{}]"#
    );
    let sessions: BTreeSet<u64> = [25u64, 27]
        .iter()
        .filter_map(|p| {
            k.messages
                .iter()
                .find(|m| m.packets.contains(p))
                .map(|m| m.session)
        })
        .collect();
    assert_eq!(sessions.len(), 2, "one Accepted per session");
    assert!(k.messages.iter().all(|m| !m.inflate_failed));
    assert!(k.anomalies.is_empty(), "{:?}", k.anomalies);
}
