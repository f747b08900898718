//! Real captures re-encapsulated in every tunnel kind
//! (testdata/record/reencap.py -> testdata/tunnels/) give exactly the
//! message records of the original; nDPI's tunneled captures hold the
//! WebSocket handshakes tshark finds.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn records(path: &Path) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_wssniff"))
        .args(["read", "--json"])
        .arg(path)
        .output()
        .expect("run wssniff");
    assert!(
        out.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn of_type<'a>(recs: &'a [Value], ty: &str) -> Vec<&'a Value> {
    recs.iter().filter(|r| r["type"] == ty).collect()
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_tunnel_kind_gives_the_original_messages() {
    let dir = root().join("testdata/tunnels");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("testdata/tunnels")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "{} files", files.len());
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let src = name.split('.').next().unwrap();
        let orig = records(&root().join(format!("testdata/real/{src}.pcap")));
        let got = records(&f);
        let want = of_type(&orig, "message");
        assert!(!want.is_empty());
        // Whole records: payload, opcode, dir, index, packet numbers, seq.
        assert_eq!(of_type(&got, "message"), want, "{name}");
        let sess = |r: &[Value]| -> Vec<(Value, Value, Value)> {
            of_type(r, "session")
                .iter()
                .map(|s| (s["client"].clone(), s["server"].clone(), s["uri"].clone()))
                .collect()
        };
        assert_eq!(sess(&got), sess(&orig), "{name}");
        let stats = of_type(&got, "stats");
        assert_eq!(stats[0]["skipped"], serde_json::json!({}), "{name}");
        assert_eq!(
            stats[0]["flows"],
            of_type(&orig, "stats")[0]["flows"],
            "{name}"
        );
    }
}

/// The request URIs of the upgrade requests, as tshark sees them (None if
/// tshark is not installed).
fn tshark_upgrade_uris(path: &Path) -> Option<Vec<String>> {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args([
            "-Y",
            "http.upgrade && http.request",
            "-T",
            "fields",
            "-e",
            "http.request.uri",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

#[test]
fn ndpi_tunneled_captures_hold_their_handshakes() {
    // (file, uri, host) as tshark 4 shows them (GTP-U; QinQ + GTP-U).
    for (file, uri, host) in [
        (
            "false_positives.pcapng",
            "/ws",
            "wludo.superkinglabs.com:443",
        ),
        (
            "http_origin_different_than_host.pcap",
            "/?topreferer=optawidgets.365scores.com",
            "csb.performgroup.io",
        ),
    ] {
        let p = root().join("testdata/corpus-extra/ndpi").join(file);
        let recs = records(&p);
        let sessions = of_type(&recs, "session");
        assert_eq!(sessions.len(), 1, "{file}");
        assert_eq!(sessions[0]["uri"], uri, "{file}");
        assert_eq!(sessions[0]["host"], host, "{file}");
        if let Some(uris) = tshark_upgrade_uris(&p) {
            assert_eq!(uris, [uri], "{file}: tshark");
        }
    }
}
