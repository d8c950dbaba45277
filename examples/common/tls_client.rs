//! TLS for the example client (`chat_client --tls [--ca FILE] [--insecure]`),
//! on rustls with the ring provider. Used by an example through
//! `#[path = "common/tls_client.rs"] mod tls_client;`, beside
//! `#[path = "common/any_certificate.rs"] mod any_certificate;` (its
//! `--insecure` verifier).
//!
//! ```ignore
//! let connector = TlsConnector::new(&TlsOptions { ca_file, insecure })?; // errors: Display them
//! let sock = TcpStream::connect((host, port))?;
//! let mut tls = connector.connect(sock, host)?;  // blocking handshake, clear errors
//! // Or without blocking: sock.set_nonblocking(true); let mut tls =
//! // connector.start(sock, host)?; then connector.advance(&mut tls, host)?
//! // each time the socket is ready, until it returns true.
//! // Blocking use:
//! tls.write_all(&frame)?;
//! let got = tls.read_some(&mut plaintext)?;     // appends; got.end says how it ended
//! tls.close()?;                                 // close_notify
//! // In a select() loop (socket set nonblocking after connect):
//! //   watch tls.socket() for reading, and for writing while tls.wants_write();
//! //   readable -> tls.read_some(&mut buf); writable -> tls.flush();
//! //   to send -> tls.queue(&frame); tls.flush();
//! ```
//!
//! Without a CA file the server is verified against the system's roots
//! (rustls-native-certs: Debian's `/etc/ssl/certs`, or `SSL_CERT_FILE`).
//! A server that cannot be verified is refused with a message that says
//! why and what to pass, unless `insecure`, which checks the handshake's
//! signatures but trusts any certificate.
#![allow(dead_code)]

use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ClientConnection;
use rustls::crypto::ring;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;

use crate::any_certificate::AnyCertificate;

/// How long the handshake may take before the client gives up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What to trust: `--ca FILE` and `--insecure`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Trust any certificate (still TLS, but anyone could be listening).
    pub insecure: bool,
}

/// Why TLS could not be set up or the handshake failed: a sentence for the
/// person at the terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClientError(pub String);

impl fmt::Display for TlsClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsClientError {}

/// A client configuration, made once, that connects TLS sessions.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    /// What is trusted, for error messages ("the CA in ca.pem").
    trusted: String,
    insecure: bool,
}

impl TlsConnector {
    /// Loads the trusted roots as `options` say.
    pub fn new(options: &TlsOptions) -> Result<TlsConnector, TlsClientError> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| TlsClientError(format!("TLS setup failed: {e}")))?;
        if options.insecure {
            let config = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth();
            return Ok(TlsConnector {
                config: Arc::new(config),
                trusted: "any certificate (--insecure)".into(),
                insecure: true,
            });
        }
        let (roots, trusted) = match &options.ca_file {
            Some(path) => (ca_file_roots(path)?, format!("the CA in {}", path.display())),
            None => (system_roots()?, "the system's CA certificates".to_string()),
        };
        let config = builder.with_root_certificates(roots).with_no_client_auth();
        Ok(TlsConnector {
            config: Arc::new(config),
            trusted,
            insecure: false,
        })
    }

    /// Runs the handshake on a connected socket (blocking, at most
    /// [`HANDSHAKE_TIMEOUT`]), asking for and verifying `host` (a DNS name,
    /// sent as SNI, or an IP address). The socket's read timeout is put back
    /// as it was afterwards.
    pub fn connect(&self, sock: TcpStream, host: &str) -> Result<TlsClient, TlsClientError> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            TlsClientError(format!(
                "{host:?} is not a host name or IP address TLS can verify"
            ))
        })?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| TlsClientError(format!("TLS setup failed: {e}")))?;
        // Whatever the client queues is bounded by what it types.
        conn.set_buffer_limit(None);
        let io_error = |e: io::Error| TlsClientError(format!("TLS handshake with {host} failed: {e}"));
        let previous = sock.read_timeout().map_err(io_error)?;
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(io_error)?;
        let mut sock = sock;
        while conn.is_handshaking() {
            if let Err(e) = conn.complete_io(&mut sock) {
                return Err(self.explain(e, host));
            }
        }
        sock.set_read_timeout(previous).map_err(io_error)?;
        Ok(TlsClient { conn, sock })
    }

    /// Starts a handshake on a connected socket without doing any I/O, for
    /// a select() loop: set the socket nonblocking, then call
    /// [`TlsConnector::advance`] whenever it is readable (or writable
    /// while [`TlsClient::wants_write`]) until it says the handshake is
    /// done. `host` is asked for and verified as in [`TlsConnector::connect`].
    pub fn start(&self, sock: TcpStream, host: &str) -> Result<TlsClient, TlsClientError> {
        let name = ServerName::try_from(host.to_string()).map_err(|_| {
            TlsClientError(format!(
                "{host:?} is not a host name or IP address TLS can verify"
            ))
        })?;
        let mut conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| TlsClientError(format!("TLS setup failed: {e}")))?;
        conn.set_buffer_limit(None);
        Ok(TlsClient { conn, sock })
    }

    /// Moves a handshake begun by [`TlsConnector::start`] on as far as the
    /// nonblocking socket allows: `Ok(true)` once it is done, `Ok(false)`
    /// to wait for the socket, or why it failed, as from
    /// [`TlsConnector::connect`].
    pub fn advance(&self, tls: &mut TlsClient, host: &str) -> Result<bool, TlsClientError> {
        let fail = |e: io::Error| self.explain(e, host);
        tls.flush().map_err(fail)?;
        if !tls.conn.is_handshaking() {
            return Ok(true);
        }
        match tls.conn.read_tls(&mut tls.sock) {
            Ok(0) => return Err(fail(io::ErrorKind::UnexpectedEof.into())),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Ok(false)
            }
            Err(e) => return Err(fail(e)),
        }
        if let Err(e) = tls.conn.process_new_packets() {
            // The alert rustls queued goes out, best effort.
            let _ = tls.flush();
            return Err(fail(io::Error::new(io::ErrorKind::InvalidData, e)));
        }
        tls.flush().map_err(fail)?;
        Ok(!tls.conn.is_handshaking())
    }

    /// A handshake failure as a sentence that says what to do.
    fn explain(&self, e: io::Error, host: &str) -> TlsClientError {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let text = match (tls, e.kind()) {
            (Some(rustls::Error::InvalidCertificate(cert)), _) => self.explain_certificate(cert, host),
            (Some(rustls::Error::InvalidMessage(_)), _)
            | (Some(rustls::Error::InappropriateMessage { .. }), _) => {
                format!("{host} did not answer in TLS (is this a plain, non-TLS port?): {e}")
            }
            (Some(rustls::Error::AlertReceived(alert)), _) => {
                format!("{host} refused the TLS handshake (alert {alert:?})")
            }
            (Some(other), _) => format!("TLS handshake with {host} failed: {other}"),
            (None, io::ErrorKind::UnexpectedEof) => {
                format!("{host} closed the connection during the TLS handshake (is this a TLS port?)")
            }
            (None, io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => format!(
                "no TLS answer from {host} within {} s (is this a TLS port?)",
                HANDSHAKE_TIMEOUT.as_secs()
            ),
            (None, _) => format!("TLS handshake with {host} failed: {e}"),
        };
        TlsClientError(text)
    }

    fn explain_certificate(&self, cert: &CertificateError, host: &str) -> String {
        let advice = "give the CA that signed it with --ca FILE, or --insecure to skip verification (then anyone could be listening)";
        match cert {
            CertificateError::UnknownIssuer => format!(
                "cannot verify {host}: its certificate is not signed by {}; {advice}",
                self.trusted
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => format!(
                "the certificate of {host} is not valid for the name {host:?} ({cert}); connect with a name it lists, or --insecure"
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the certificate of {host} has expired ({cert}); the server needs a new one, or --insecure")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the certificate of {host} is not valid yet ({cert}); check this machine's clock")
            }
            // webpki's reason, inside rustls' Other: a self-signed
            // certificate made without basicConstraints CA:FALSE.
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => format!(
                "the certificate of {host} is a CA certificate used as a server certificate; make it with \
                 -addext basicConstraints=critical,CA:FALSE, or have a CA sign one, or --insecure"
            ),
            other => format!("the certificate of {host} was refused: {other}; {advice}"),
        }
    }

    /// Whether any certificate is accepted.
    pub fn is_insecure(&self) -> bool {
        self.insecure
    }
}

/// How the server ended the TLS session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It sent close_notify: a clean end.
    CloseNotify,
    /// TCP closed without close_notify (what came before it may be cut).
    EofWithoutCloseNotify,
}

/// What one [`TlsClient::read_some`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Incoming {
    /// Plaintext bytes appended to the caller's buffer.
    pub plaintext: usize,
    /// Set once the session ended (after the plaintext before it).
    pub end: Option<End>,
}

/// A client TLS session over a connected TcpStream, blocking or not.
pub struct TlsClient {
    conn: ClientConnection,
    sock: TcpStream,
}

impl TlsClient {
    /// The socket, to watch with select() (readable: [`TlsClient::read_some`];
    /// writable while [`TlsClient::wants_write`]: [`TlsClient::flush`]) or
    /// to set nonblocking.
    pub fn socket(&self) -> &TcpStream {
        &self.sock
    }

    /// "TLSv1.3 TLS13_AES_256_GCM_SHA384", for a status line.
    pub fn describe(&self) -> String {
        let version = self
            .conn
            .protocol_version()
            .map_or("TLS".into(), |v| format!("{v:?}").replace('_', "."));
        let suite = self
            .conn
            .negotiated_cipher_suite()
            .map_or(String::new(), |s| format!(" {:?}", s.suite()));
        format!("{version}{suite}")
    }

    /// Encrypts all of `plaintext` and writes it (for a blocking socket; on
    /// a nonblocking one use [`TlsClient::queue`] and [`TlsClient::flush`]).
    pub fn write_all(&mut self, plaintext: &[u8]) -> io::Result<()> {
        self.queue(plaintext);
        while self.conn.wants_write() {
            self.conn.write_tls(&mut self.sock)?;
        }
        Ok(())
    }

    /// Encrypts `plaintext` into the session's buffer (unbounded) without
    /// writing; [`TlsClient::flush`] writes it.
    pub fn queue(&mut self, plaintext: &[u8]) {
        // Unlimited buffer: the writer takes everything.
        let _ = self.conn.writer().write_all(plaintext);
    }

    /// Writes what the socket takes; `Ok(true)` once nothing is left. On a
    /// nonblocking socket a full send buffer is `Ok(false)`: watch for
    /// writability and call again.
    pub fn flush(&mut self) -> io::Result<bool> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Whether encrypted bytes wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Reads once from the socket (blocking if it is blocking and empty;
    /// on a nonblocking one, nothing there is `plaintext: 0`), decrypts, and
    /// appends all the plaintext to `out`: nothing stays hidden inside
    /// rustls for select() to miss. Bytes rustls must answer (a key update)
    /// are written too, as far as the socket takes them.
    pub fn read_some(&mut self, out: &mut Vec<u8>) -> io::Result<Incoming> {
        let start = out.len();
        let eof = match self.conn.read_tls(&mut self.sock) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Ok(Incoming {
                    plaintext: 0,
                    end: None,
                })
            }
            Err(e) => return Err(e),
        };
        let state = self
            .conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let mut reader = self.conn.reader();
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match io::Read::read(&mut reader, &mut chunk) {
                Ok(0) => break,
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        self.flush()?;
        let end = if state.peer_has_closed() {
            Some(End::CloseNotify)
        } else if eof {
            Some(End::EofWithoutCloseNotify)
        } else {
            None
        };
        Ok(Incoming {
            plaintext: out.len() - start,
            end,
        })
    }

    /// Sends close_notify (after everything queued) and writes it out as
    /// far as the socket takes it.
    pub fn close(&mut self) -> io::Result<()> {
        self.conn.send_close_notify();
        self.flush().map(|_| ())
    }
}

/// Every certificate in a PEM file, as roots.
fn ca_file_roots(path: &std::path::Path) -> Result<RootCertStore, TlsClientError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TlsClientError(format!("cannot read the CA file {}: {e}", path.display())))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsClientError(format!("the CA file {} is not readable PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsClientError(format!(
            "the CA file {} holds no certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| {
            TlsClientError(format!(
                "the CA file {} holds a certificate that cannot be a root: {e}",
                path.display()
            ))
        })?;
    }
    Ok(roots)
}

/// The system's roots (rustls-native-certs); an empty store is an error.
fn system_roots() -> Result<RootCertStore, TlsClientError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    // Certificates the parser cannot use are skipped, as browsers do.
    let (_added, _skipped) = roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let why = found.errors.first().map_or(String::new(), |e| format!(" ({e})"));
        return Err(TlsClientError(format!(
            "no system CA certificates found{why}: install them (apt-get install ca-certificates), or pass --ca FILE"
        )));
    }
    Ok(roots)
}
