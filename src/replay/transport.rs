//! The connection to the peer: plain TCP, or TLS (rustls, ring provider) for
//! `wss://` targets.

use super::target::Target;
use super::{ExitStatus, ReplayError};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
    StreamOwned,
};
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to verify a `wss://` server.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// PEM files whose certificates are trusted in addition to the webpki roots.
    pub ca_files: Vec<PathBuf>,
    /// Accept any certificate (self-signed test servers).
    pub insecure: bool,
}

/// A connection to the target: plain TCP (`ws://`) or TLS (`wss://`).
pub enum Conn {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Bounds the next reads; a zero duration is raised to 1 ms (std refuses zero).
    pub fn set_read_timeout(&self, d: Duration) -> io::Result<()> {
        self.tcp()
            .set_read_timeout(Some(d.max(Duration::from_millis(1))))
    }

    /// Bounds the next writes; a zero duration is raised to 1 ms (std refuses zero).
    pub fn set_write_timeout(&self, d: Duration) -> io::Result<()> {
        self.tcp()
            .set_write_timeout(Some(d.max(Duration::from_millis(1))))
    }

    /// Closes the connection (with a TLS close_notify first, for `wss://`), ignoring errors.
    pub fn shutdown(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(std::net::Shutdown::Both);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Whether an I/O error is a read timeout rather than a failure.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Connects to the target (and only to it), with TLS when `wss://`.
pub fn connect(target: &Target, tls: &TlsOptions, timeout: Duration) -> Result<Conn, ReplayError> {
    let addrs: Vec<_> = (target.host.as_str(), target.port)
        .to_socket_addrs()
        .map_err(|e| ReplayError::peer(format!("cannot resolve {}: {e}", target.host)))?
        .collect();
    let mut last = None;
    let mut stream = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(format!("{addr}: {e}")),
        }
    }
    let stream = stream.ok_or_else(|| {
        ReplayError::peer(format!(
            "cannot connect to {}:{}: {}",
            target.host,
            target.port,
            last.unwrap_or_else(|| "no address".into())
        ))
    })?;
    let _ = stream.set_nodelay(true);
    if !target.tls {
        return Ok(Conn::Plain(stream));
    }
    let config = client_config(tls)?;
    let name = ServerName::try_from(target.host.clone()).map_err(|e| {
        ReplayError::new(
            ExitStatus::Usage,
            format!("bad TLS server name {:?}: {e}", target.host),
        )
    })?;
    let conn = ClientConnection::new(Arc::new(config), name)
        .map_err(|e| ReplayError::peer(format!("TLS setup failed: {e}")))?;
    let mut tls_stream = StreamOwned::new(conn, stream);
    tls_stream
        .sock
        .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(|e| ReplayError::local(format!("socket: {e}")))?;
    // Drive the TLS handshake now so certificate errors are reported as such.
    while tls_stream.conn.is_handshaking() {
        tls_stream
            .conn
            .complete_io(&mut tls_stream.sock)
            .map_err(|e| {
                ReplayError::peer(format!(
                    "TLS handshake with {}:{} failed: {e}",
                    target.host, target.port
                ))
            })?;
    }
    Ok(Conn::Tls(Box::new(tls_stream)))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(opts: &TlsOptions) -> Result<ClientConfig, ReplayError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ReplayError::local(format!("TLS configuration: {e}")))?;
    if opts.insecure {
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider())))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for path in &opts.ca_files {
        let pem = std::fs::read(path).map_err(|e| {
            ReplayError::new(ExitStatus::Usage, format!("--ca {}: {e}", path.display()))
        })?;
        let mut added = 0;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert = cert.map_err(|e| {
                ReplayError::new(ExitStatus::Usage, format!("--ca {}: {e}", path.display()))
            })?;
            roots.add(cert).map_err(|e| {
                ReplayError::new(ExitStatus::Usage, format!("--ca {}: {e}", path.display()))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(ReplayError::new(
                ExitStatus::Usage,
                format!("--ca {}: no PEM certificate in the file", path.display()),
            ));
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// `--insecure`: accepts any server certificate, but still checks that the
/// handshake signatures are made with the presented certificate's key.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_file_without_certificates_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let opts = TlsOptions {
            ca_files: vec![path],
            insecure: false,
        };
        let e = client_config(&opts).unwrap_err();
        assert_eq!(e.status, ExitStatus::Usage);
        assert!(client_config(&TlsOptions::default()).is_ok());
        let insecure = TlsOptions {
            insecure: true,
            ..Default::default()
        };
        assert!(client_config(&insecure).is_ok());
    }
}
