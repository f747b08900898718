//! wsreplay against a local wss:// server with a certificate made in the test.
use crate::support_replay;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use support_replay::*;
use tungstenite::Message;

/// A TLS echo server (rustls + tungstenite) for one connection.
fn tls_echo_server(cert: &rcgen::CertifiedKey) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let conn = rustls::ServerConnection::new(config).unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        let mut got = Vec::new();
        let Ok(mut ws) = tungstenite::accept(tls) else {
            return got;
        };
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    got.push(t.clone());
                    ws.send(Message::Text(t)).unwrap();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    });
    (port, h)
}

fn spec() -> Spec {
    Spec {
        messages: vec![
            c2s(TEXT, b"over tls", 10),
            s2c(TEXT, b"over tls", 11),
            c2s(CLOSE, &close_payload(1000, ""), 20),
            s2c(CLOSE, &close_payload(1000, ""), 21),
        ],
        ..Default::default()
    }
}

fn setup() -> (tempfile::TempDir, rcgen::CertifiedKey, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_export(&dir.path().join("export").tap_mkdir(), &spec());
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let pem = dir.path().join("cert.pem");
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    (dir, cert, pem)
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for std::path::PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}

fn replay(dir: &tempfile::TempDir, port: u16, extra: &[&str]) -> Outcome {
    run(
        wsreplay()
            .arg("client")
            .arg(dir.path().join("export"))
            .args([
                "--target",
                &format!("wss://localhost:{port}/"),
                "--speed",
                "0",
                "--wait-replies",
                "--timeout",
                "5",
                "--json",
                "--expect-same",
            ])
            .args(extra),
        30,
    )
}

#[test]
fn wss_round_trip_with_ca_file() {
    let (dir, cert, pem) = setup();
    let (port, server) = tls_echo_server(&cert);
    let out = replay(&dir, port, &["--ca", pem.to_str().unwrap()]);
    let got = server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(got, vec!["over tls".to_string()]);
    assert_eq!(out.json()["comparison"]["same"], true);
}

#[test]
fn wss_round_trip_insecure() {
    let (dir, cert, _pem) = setup();
    let (port, server) = tls_echo_server(&cert);
    let out = replay(&dir, port, &["--insecure"]);
    let got = server.join().unwrap();
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(got, vec!["over tls".to_string()]);
}

#[test]
fn wss_untrusted_certificate_is_refused() {
    let (dir, cert, _pem) = setup();
    let (port, server) = tls_echo_server(&cert);
    let out = replay(&dir, port, &[]);
    let got = server.join().unwrap();
    assert_eq!(
        out.code,
        Some(4),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stderr.contains("TLS handshake"), "{}", out.stderr);
    assert!(got.is_empty());
}
