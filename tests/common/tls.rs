//! TLS test tools: certificates made by openssl ([`pki`]), a blocking rustls
//! client that speaks the length-prefixed frames, the Python `ssl` client
//! script (`tests/python/tls_client.py`), and `openssl s_client`. Clients
//! nobody here wrote (Python's OpenSSL, s_client) check the server as much
//! as ours does.

pub mod pki;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rustls::client::ClientConnection;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ProtocolVersion, RootCertStore, StreamOwned, SupportedProtocolVersion};
use rustls_pki_types::pem::PemObject;
use serde_json::{json, Value};

#[allow(unused_imports)]
pub use pki::{KeyKind, Pki, SERVER_DNS, SERVER_IP};

use super::DEADLINE;

/// TLS 1.3 only, TLS 1.2 only, or both (the client's choice).
pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];
pub const ANY_TLS: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13, &rustls::version::TLS12];

/// A rustls client configuration trusting `ca_pem` only.
pub fn client_config(ca_pem: &[u8], versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.expect("CA PEM")).expect("CA certificate");
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// How a TLS connection ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsEnd {
    /// The server sent close_notify (then, usually, closed TCP).
    CloseNotify,
    /// TCP ended without close_notify (a truncation, as TLS sees it).
    EofWithoutCloseNotify,
    /// The connection was reset.
    Reset,
}

/// A framed-JSON client over TLS on a blocking socket whose reads time out.
pub struct TlsTestClient {
    pub stream: StreamOwned<ClientConnection, TcpStream>,
    /// How the connection ended, once it has.
    pub end: Option<TlsEnd>,
}

impl TlsTestClient {
    /// Connects to `addr` as `localhost`, trusting the test CA, and
    /// completes the handshake; panics if it fails.
    pub fn connect(addr: SocketAddr, pki: &Pki) -> TlsTestClient {
        TlsTestClient::connect_with(addr, client_config(&pki.ca_pem, ANY_TLS), SERVER_DNS)
            .expect("TLS handshake")
    }

    /// Connects and completes the handshake with `config`, asking for
    /// `server_name` (a DNS name or an IP address); the handshake's error
    /// (a certificate the client refuses, an alert) is returned.
    pub fn connect_with(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        server_name: &str,
    ) -> io::Result<TlsTestClient> {
        TlsTestClient::over(TcpStream::connect(addr)?, config, server_name)
    }

    /// [`TlsTestClient::connect_with`] over a socket connected already (one
    /// with a small receive buffer, say).
    pub fn over(sock: TcpStream, config: Arc<ClientConfig>, server_name: &str) -> io::Result<TlsTestClient> {
        sock.set_read_timeout(Some(DEADLINE))?;
        sock.set_write_timeout(Some(DEADLINE))?;
        sock.set_nodelay(true)?;
        let name = ServerName::try_from(server_name.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let conn = ClientConnection::new(config, name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, sock);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(TlsTestClient { stream, end: None })
    }

    /// Connects and registers; panics unless `welcome` comes back.
    pub fn hello(addr: SocketAddr, pki: &Pki, nick: &str) -> TlsTestClient {
        let mut c = TlsTestClient::connect(addr, pki);
        c.send(&json!({"type": "hello", "nick": nick}));
        let w = c.recv();
        assert_eq!(w["type"], "welcome", "hello as {nick}: {w}");
        c
    }

    /// The negotiated TLS version.
    pub fn version(&self) -> ProtocolVersion {
        self.stream.conn.protocol_version().expect("handshake done")
    }

    pub fn send(&mut self, v: &Value) {
        self.send_payload(v.to_string().as_bytes());
    }

    pub fn send_payload(&mut self, payload: &[u8]) {
        let mut buf = (payload.len() as u32).to_be_bytes().to_vec();
        buf.extend_from_slice(payload);
        self.send_raw(&buf);
    }

    /// Plaintext bytes as they are, inside TLS.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send over TLS");
        self.stream.flush().expect("flush TLS");
    }

    /// Sends close_notify (the client is done sending).
    pub fn send_close_notify(&mut self) {
        self.stream.conn.send_close_notify();
        while self.stream.conn.wants_write() {
            self.stream
                .conn
                .write_tls(&mut self.stream.sock)
                .expect("write close_notify");
        }
    }

    /// Fills `buf`, or returns how the connection ended first. Panics at
    /// the deadline, or if it ends inside a frame.
    fn read_full(&mut self, buf: &mut [u8], at_frame_start: bool) -> Result<(), TlsEnd> {
        let mut filled = 0;
        while filled < buf.len() {
            let end = match self.stream.read(&mut buf[filled..]) {
                Ok(0) => TlsEnd::CloseNotify,
                Ok(n) => {
                    filled += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => TlsEnd::EofWithoutCloseNotify,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => TlsEnd::Reset,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("waiting for a frame over TLS: {e}"),
            };
            assert!(
                at_frame_start && filled == 0,
                "the connection ended ({end:?}) inside a frame"
            );
            self.end = Some(end);
            return Err(end);
        }
        Ok(())
    }

    /// The next frame's payload, or `None` once the connection ended (see
    /// [`TlsTestClient::end`]). Panics if nothing arrives within the deadline.
    pub fn try_recv_raw(&mut self) -> Option<Vec<u8>> {
        if self.end.is_some() {
            return None;
        }
        let mut len = [0u8; 4];
        self.read_full(&mut len, true).ok()?;
        let mut payload = vec![0u8; u32::from_be_bytes(len) as usize];
        self.read_full(&mut payload, false).ok()?;
        Some(payload)
    }

    pub fn try_recv(&mut self) -> Option<Value> {
        let payload = self.try_recv_raw()?;
        Some(serde_json::from_slice(&payload).expect("server sent JSON"))
    }

    /// The next frame; panics if the connection ended.
    pub fn recv(&mut self) -> Value {
        self.try_recv()
            .expect("connection ended while waiting for a frame")
    }

    /// Skips frames until one matches; panics at the deadline.
    pub fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + DEADLINE;
        loop {
            assert!(Instant::now() < end, "no matching frame before the deadline");
            let v = self.recv();
            if pred(&v) {
                return v;
            }
        }
    }

    /// Reads frames until the connection ends; returns them and how it ended.
    pub fn expect_closed(&mut self) -> (Vec<Value>, TlsEnd) {
        let mut seen = Vec::new();
        while let Some(v) = self.try_recv() {
            seen.push(v);
            assert!(seen.len() < 100_000, "connection never closed");
        }
        (seen, self.end.expect("ended"))
    }
}

/// `python3 tests/python/tls_client.py` from the crate root. The script's
/// usage is in its docstring; `python3` comes with the machine (its `ssl`
/// module is part of the standard library).
pub fn python_tls_client() -> Command {
    let mut cmd = Command::new("python3");
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("tests/python/tls_client.py")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PYTHONUNBUFFERED", "1");
    cmd
}

/// The `openssl` program, checked to have `s_client` (installed with
/// apt-get when missing).
pub fn s_client() -> &'static Path {
    static CHECKED: OnceLock<PathBuf> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let openssl = pki::openssl();
        let ok = Command::new(openssl)
            .args(["s_client", "-help"])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "{} has no s_client: run `apt-get install openssl`",
            openssl.display()
        );
        openssl.to_path_buf()
    })
}

/// `openssl s_client` connecting to `addr` as `localhost`, verifying
/// against the test CA (failing on a bad certificate), in one TLS
/// `version` ("1.2" or "1.3"). `-quiet` prints only what the server sends
/// (binary frames) and sends stdin as it comes; `-ign_eof` keeps it reading
/// until the server closes after stdin ends.
pub fn s_client_command(addr: SocketAddr, pki: &Pki, version: &str) -> Command {
    let mut cmd = Command::new(s_client());
    cmd.args([
        "s_client",
        "-connect",
        &addr.to_string(),
        "-servername",
        SERVER_DNS,
    ])
    .arg("-CAfile")
    .arg(pki.path("ca.pem"))
    .args(["-verify_return_error", "-quiet", "-ign_eof"])
    .arg(match version {
        "1.2" => "-tls1_2",
        "1.3" => "-tls1_3",
        other => panic!("TLS version {other:?}: say 1.2 or 1.3"),
    });
    cmd
}

/// Makes sure the system has CA certificates (Debian's `ca-certificates`,
/// installed with apt-get when missing), for tests of verification
/// against the system's roots.
pub fn ensure_system_roots() {
    const BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
    if Path::new(BUNDLE).exists() {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "ca-certificates"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get")
            .arg("update")
            .stdout(std::process::Stdio::null())
            .status();
        install();
    }
    assert!(
        Path::new(BUNDLE).exists(),
        "{BUNDLE} is missing and could not be installed: run `apt-get install ca-certificates`"
    );
}
