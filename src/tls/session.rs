//! One TLS connection, sans-IO, for a select() loop: a wrapper around
//! rustls' buffered `ServerConnection` that keeps its pitfalls out of the
//! loop.
//!
//! - [`TlsSession::receive`] takes any amount of bytes the loop read. One
//!   `read_tls` takes at most about one record, so it is fed in a loop, with
//!   `process_new_packets` after each and the plaintext drained after each:
//!   rustls' 16 KiB received-plaintext cap never fills, so no data is ever
//!   left hidden inside rustls while select() waits on the socket.
//! - [`TlsSession::send`] takes plaintext as gathered slices (a frame
//!   header and a shared payload): rustls encrypts straight from them into
//!   its records, the one copy it makes anyway. What it accepts is bounded
//!   by the write limit, counted in TLS bytes waiting for the socket.
//! - [`TlsSession::write_tls_with`] hands those TLS bytes, as slices, to the
//!   caller's own `sendmsg(MSG_NOSIGNAL)`: rustls' own `writev` would raise
//!   SIGPIPE in a host that did not ignore it.
//! - After every call, [`TlsSession::wants_write`] says whether there is
//!   something to write (handshake replies, tickets, alerts, close_notify,
//!   data), so the loop asks for writability exactly then.

use std::fmt;
use std::io::{self, BufRead, IoSlice, Write};

use rustls::{AlertDescription, ProtocolVersion, ServerConnection};

use super::TlsConfig;

/// The write limit a server would normally use: TLS bytes buffered before
/// [`TlsSession::send`] accepts no more (four full records).
pub const DEFAULT_WRITE_LIMIT: usize = 64 * 1024;

/// What one [`TlsSession::receive`] produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Plaintext bytes appended to the caller's buffer.
    pub plaintext: usize,
    /// The handshake completed during this call (reported once).
    pub handshake_done: bool,
    /// The peer has sent close_notify: it sends nothing more, and bytes
    /// after it are ignored. Stays true once seen.
    pub peer_closed: bool,
}

/// A fatal TLS error: the connection is over. rustls has usually queued an
/// alert saying why: [`TlsSession::wants_write`] is then true, and a best
/// effort [`TlsSession::write_tls_with`] sends it before closing.
#[derive(Debug, Clone, thiserror::Error)]
#[error("TLS {} failed: {error}{}", if *.during_handshake { "handshake" } else { "session" }, alert_note(.alert))]
pub struct TlsFailure {
    /// What went wrong.
    pub error: rustls::Error,
    /// The alert queued for the peer, when it is readable (a plaintext
    /// alert: before the handshake's keys are in use); `None` when there is
    /// none or it is encrypted.
    pub alert: Option<AlertDescription>,
    /// Whether the handshake had not completed yet.
    pub during_handshake: bool,
}

fn alert_note(alert: &Option<AlertDescription>) -> String {
    alert.map_or_else(String::new, |a| format!(" (alert {a:?} queued)"))
}

/// One server-side TLS connection. Owns rustls' buffers and nothing else:
/// the bytes read come from the caller's buffer, plaintext goes into the
/// caller's buffer, TLS bytes leave through the caller's send function.
pub struct TlsSession {
    conn: ServerConnection,
    /// TLS bytes inside rustls waiting for the socket: rustls' own count,
    /// read back after every change, minus what was written since.
    pending_tls: usize,
    /// What [`TlsSession::send`] fills up to (rustls applies it).
    #[allow(dead_code)]
    write_limit: usize,
    handshake_reported: bool,
    peer_closed: bool,
    /// close_notify (or a fatal alert) is queued: nothing more is sent.
    closing: bool,
    failure: Option<TlsFailure>,
}

impl TlsSession {
    /// A new connection waiting for a ClientHello. `write_limit` bounds the
    /// TLS bytes buffered by [`TlsSession::send`] (see there). rustls
    /// checks the configuration again here; one built by [`TlsConfig`]
    /// passes (an error would mean closing the connection).
    pub fn new(config: &TlsConfig, write_limit: usize) -> Result<TlsSession, rustls::Error> {
        let mut conn = ServerConnection::new(config.rustls().clone())?;
        // rustls applies the limit to the TLS bytes it holds, to the
        // plaintext written through its writer only (handshake messages
        // and alerts always go in); it then accepts less, like a socket.
        let write_limit = write_limit.max(1);
        conn.set_buffer_limit(Some(write_limit));
        Ok(TlsSession {
            conn,
            pending_tls: 0,
            write_limit,
            handshake_reported: false,
            peer_closed: false,
            closing: false,
            failure: None,
        })
    }

    /// Feeds `tls` (bytes just read from the socket, any amount, split
    /// anywhere) through rustls, appending the plaintext it produces to
    /// `plaintext`. Afterwards check [`TlsSession::wants_write`]: a
    /// handshake flight, a session ticket or an alert may be waiting.
    ///
    /// On a TLS error the plaintext decrypted before it stays appended (it
    /// was authentic), the failure is returned (and again by every later
    /// call), and the alert rustls queued is what
    /// [`TlsSession::write_tls_with`] sends.
    pub fn receive(&mut self, mut tls: &[u8], plaintext: &mut Vec<u8>) -> Result<Received, TlsFailure> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let start = plaintext.len();
        while !tls.is_empty() && !self.peer_closed {
            match self.conn.read_tls(&mut tls) {
                // After close_notify rustls reads nothing more.
                Ok(0) => break,
                Ok(_) => {}
                // The deframer refused to buffer more (a handshake message
                // over rustls' 64 KiB bound): no alert is queued for that.
                Err(e) => return Err(self.fail(rustls::Error::General(e.to_string()))),
            }
            let state = self.conn.process_new_packets();
            // Drained after every record batch, error or not, so the 16 KiB
            // cap never stops read_tls.
            self.drain_plaintext(plaintext);
            match state {
                Ok(io) => {
                    self.pending_tls = io.tls_bytes_to_write();
                    self.peer_closed |= io.peer_has_closed();
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        if !self.peer_closed {
            self.shrink_read_buffer();
        }
        let handshake_done = !self.handshake_reported && !self.conn.is_handshaking();
        self.handshake_reported |= handshake_done;
        Ok(Received {
            plaintext: plaintext.len() - start,
            handshake_done,
            peer_closed: self.peer_closed,
        })
    }

    /// Offers plaintext to send, as gathered slices (for example a 4-byte
    /// frame header and a shared payload, or several frames): they become
    /// as few records as their length allows, encrypted straight from the
    /// slices. Returns how many bytes were taken, from the front, like a
    /// socket: fewer than offered (possibly 0) when the write limit is
    /// reached; the caller keeps the rest and offers it again after
    /// [`TlsSession::write_tls_with`] made room.
    ///
    /// Takes nothing (0) while the handshake is on, after close_notify was
    /// queued, or after a failure: what the caller queues before the
    /// handshake completes stays in the caller's queue, counted there.
    ///
    /// The limit is rustls': it accepts up to `write_limit` minus the TLS
    /// bytes already held, so [`TlsSession::buffered`] stays under
    /// `write_limit` plus one record's overhead per record (22 to 29 bytes
    /// per 16 KiB), plus any handshake or alert bytes.
    pub fn send(&mut self, plaintext: &[IoSlice<'_>]) -> usize {
        if !self.can_send() {
            return 0;
        }
        // rustls' plaintext writer never fails: it takes what fits.
        let taken = self.conn.writer().write_vectored(plaintext).unwrap_or(0);
        if taken > 0 {
            self.refresh_pending();
        }
        taken
    }

    /// Plaintext bytes [`TlsSession::send`] would take now (0 when it takes
    /// none: handshaking, closing, failed, or full).
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn room(&self) -> usize {
        if self.can_send() {
            self.write_limit.saturating_sub(self.pending_tls)
        } else {
            0
        }
    }

    /// Hands the waiting TLS bytes to `send`, which writes what it can of
    /// the slices (one `sendmsg(MSG_NOSIGNAL | MSG_DONTWAIT)`) and returns
    /// how many bytes it wrote, or an error. Called again while everything
    /// offered was written and more waits (at most 64 records per call of
    /// `send`); stops at the first short write or `WouldBlock`, since the
    /// socket is full. Returns the bytes written in all; real errors (EPIPE,
    /// ECONNRESET) are returned as they are, with nothing consumed.
    pub fn write_tls_with<F>(&mut self, send: F) -> io::Result<usize>
    where
        F: FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    {
        let mut out = SendFn { send, short: false };
        let mut total = 0;
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut out) {
                Ok(0) => break,
                Ok(n) => {
                    total += n;
                    self.pending_tls = self.pending_tls.saturating_sub(n);
                    if out.short {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    /// Queues close_notify (after everything already taken by
    /// [`TlsSession::send`]); the session then takes no more plaintext.
    /// Does nothing after a failure (its alert already says goodbye) or a
    /// second time. Write it out with [`TlsSession::write_tls_with`], then
    /// close the socket.
    pub fn close(&mut self) {
        if self.closing || self.failure.is_some() {
            return;
        }
        self.closing = true;
        self.conn.send_close_notify();
        self.refresh_pending();
    }

    /// Whether TLS bytes wait for the socket: watch it for writability.
    pub fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// TLS bytes held inside rustls for the socket: what a queue cap must
    /// add to the caller's own queued bytes.
    pub fn buffered(&self) -> usize {
        self.pending_tls
    }

    /// Whether the handshake has not completed yet (the handshake deadline
    /// runs while this is true).
    pub fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether close_notify was queued by [`TlsSession::close`].
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// The failure that ended the session, if any.
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn failure(&self) -> Option<&TlsFailure> {
        self.failure.as_ref()
    }

    /// The negotiated version, once known.
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The negotiated cipher suite's name, once known.
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn cipher_suite(&self) -> Option<rustls::CipherSuite> {
        self.conn.negotiated_cipher_suite().map(|s| s.suite())
    }

    /// The host name the client asked for (SNI), if it sent one.
    // Read by the tests and by a host's diagnostics, not the server itself.
    #[allow(dead_code)]
    pub fn server_name(&self) -> Option<&str> {
        self.conn.server_name()
    }

    fn can_send(&self) -> bool {
        !self.closing && self.failure.is_none() && !self.conn.is_handshaking()
    }

    /// Lets rustls give back the read buffer a large record grew. Its
    /// buffer grows by doubling while a record arrives (to 32 KiB for one
    /// 16 KiB record) and is cut back to 4 KiB only at the start of its
    /// next read, when it holds no partial record: so an idle connection
    /// would keep 32 KiB after one large message (measured: 34.9 KiB of
    /// heap per idle connection, 6.2 KiB with this). An empty read is such
    /// a start. rustls notes the empty read as EOF, which changes only what
    /// its plaintext reader says once empty (UnexpectedEof rather than
    /// WouldBlock), and `drain_plaintext` stops at either.
    fn shrink_read_buffer(&mut self) {
        let _ = self.conn.read_tls(&mut io::empty());
    }

    /// Appends every plaintext byte rustls holds to `out`.
    fn drain_plaintext(&mut self, out: &mut Vec<u8>) {
        let mut reader = self.conn.reader();
        // fill_buf errs with WouldBlock when empty (or UnexpectedEof, which
        // the loop learns from its own recv); Ok(empty) after close_notify.
        while let Ok(chunk) = reader.fill_buf() {
            if chunk.is_empty() {
                break;
            }
            let n = chunk.len();
            out.extend_from_slice(chunk);
            reader.consume(n);
        }
    }

    /// Reads rustls' count of TLS bytes to write. `process_new_packets` is
    /// the only accessor rustls has for it; with every received record
    /// already processed (receive processes all it reads) it processes
    /// nothing and only reports, or sends a key update rustls asked for.
    fn refresh_pending(&mut self) {
        match self.conn.process_new_packets() {
            Ok(io) => self.pending_tls = io.tls_bytes_to_write(),
            Err(e) => {
                self.fail(e);
            }
        }
    }

    /// Records a fatal error and reads back the alert rustls queued for it.
    fn fail(&mut self, error: rustls::Error) -> TlsFailure {
        let failure = TlsFailure {
            error,
            alert: self.queued_plaintext_alert(),
            during_handshake: self.conn.is_handshaking(),
        };
        self.closing = true;
        self.failure = Some(failure.clone());
        failure
    }

    /// The description of the plaintext alert record among the TLS bytes
    /// waiting, read without consuming them (a writer that looks and takes
    /// nothing); also recounts those bytes, since a failed
    /// `process_new_packets` reports no count.
    fn queued_plaintext_alert(&mut self) -> Option<AlertDescription> {
        #[derive(Default)]
        struct Peek {
            alert: Option<AlertDescription>,
            bytes: usize,
        }
        impl Write for Peek {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.write_vectored(&[IoSlice::new(buf)])
            }
            fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
                for buf in bufs {
                    self.bytes += buf.len();
                    // Each slice is one record; an unencrypted alert is
                    // type 21, a version, length 2, level, description.
                    if let [21, 3, _, 0, 2, _, desc] = **buf {
                        self.alert = Some(AlertDescription::from(desc));
                    }
                }
                Ok(0)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut peek = Peek::default();
        let _ = self.conn.write_tls(&mut peek);
        self.pending_tls = peek.bytes;
        peek.alert
    }
}

impl fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("pending_tls", &self.pending_tls)
            .field("peer_closed", &self.peer_closed)
            .field("closing", &self.closing)
            .field("failure", &self.failure)
            .finish()
    }
}

/// The caller's send function as the `io::Write` rustls writes TLS to.
struct SendFn<F> {
    send: F,
    /// The last write took less than offered: the socket is full.
    short: bool,
}

impl<F: FnMut(&[IoSlice<'_>]) -> io::Result<usize>> Write for SendFn<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let offered: usize = bufs.iter().map(|b| b.len()).sum();
        let n = (self.send)(bufs)?;
        self.short = n < offered;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
