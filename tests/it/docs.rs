//! Keeps `docs/anomalies.md` in step with the anomaly names the code can
//! emit. `WSSNIFF_BLESS=1 cargo test --test it docs::` rewrites the generated
//! table from `wssniff::ANOMALY_TABLES`.

use std::collections::BTreeSet;
use std::path::Path;

const BEGIN: &str = "<!-- BEGIN GENERATED TABLE -->";
const END: &str = "<!-- END GENERATED TABLE -->";

fn table() -> String {
    let mut s = String::new();
    for (stage, names) in wssniff::ANOMALY_TABLES {
        s.push_str(&format!("\n### {stage}\n\n| name | meaning |\n|---|---|\n"));
        let mut sorted: Vec<_> = names.iter().collect();
        sorted.sort();
        for (name, meaning) in sorted {
            s.push_str(&format!("| `{name}` | {} |\n", meaning.replace('|', "\\|")));
        }
    }
    s
}

#[test]
fn anomalies_doc_lists_every_name() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/anomalies.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) else {
        panic!("docs/anomalies.md lacks the generated-table markers");
    };
    let fresh = format!("{}{BEGIN}\n{}\n{}", &doc[..b], table(), &doc[e..]);
    if std::env::var_os("WSSNIFF_BLESS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert_eq!(
        doc, fresh,
        "docs/anomalies.md is stale: re-bless with WSSNIFF_BLESS=1"
    );
}

#[test]
fn anomaly_names_are_unique_snake_case() {
    let mut seen = BTreeSet::new();
    for (stage, names) in wssniff::ANOMALY_TABLES {
        for (name, meaning) in *names {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{stage}: {name} is not snake_case"
            );
            assert!(!meaning.is_empty(), "{stage}: {name} has no meaning");
            assert!(seen.insert(*name), "{name} is listed by two stages");
        }
    }
    assert!(seen.contains("ws_accept_mismatch"));
    assert!(seen.contains("tcp_conflicting_overlap"));
}
