//! TLS around a framing: the bytes read go through the rustls session and
//! its plaintext to the framing's decoder; the framing's gathered frames go
//! into the session as plaintext, and its records out through the server's
//! own `sendmsg(MSG_NOSIGNAL)` (never rustls' `writev`, which could raise
//! SIGPIPE in a host that did not ignore it). What the session buffers is
//! counted against the client's queue cap.

use std::io::{self, IoSlice};

use crate::tls::{Received, TlsFailure, TlsSession};

/// Plaintext kept between reads beyond this is given back: one big
/// message should not pin its buffer for an idle connection.
const PLAINTEXT_KEEP: usize = 4 * 1024;

/// One connection's TLS state.
pub(crate) struct Tls {
    session: TlsSession,
    /// Where one read's plaintext lands (the framing reads it from here).
    plaintext: Vec<u8>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("buffered", &self.session.buffered())
            .field("handshaking", &self.session.is_handshaking())
            .finish()
    }
}

impl Tls {
    pub fn new(session: TlsSession) -> Self {
        Tls {
            session,
            plaintext: Vec::new(),
        }
    }

    /// Decrypts `bytes`; the plaintext is then in [`plaintext`](Self::plaintext).
    pub fn receive(&mut self, bytes: &[u8]) -> Result<Received, TlsFailure> {
        self.plaintext.clear();
        if self.plaintext.capacity() > PLAINTEXT_KEEP && bytes.len() < PLAINTEXT_KEEP {
            self.plaintext = Vec::new();
        }
        self.session.receive(bytes, &mut self.plaintext)
    }

    /// The plaintext of the last [`receive`](Self::receive).
    pub fn plaintext(&mut self) -> &mut [u8] {
        &mut self.plaintext
    }

    /// Writes the session's records to `sink`; `true` when none is left.
    pub fn write_records(
        &mut self,
        sink: &mut dyn FnMut(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<bool> {
        self.session.write_tls_with(sink)?;
        Ok(!self.session.wants_write())
    }

    /// Plaintext into the session, as far as it takes it (like a socket).
    pub fn send(&mut self, slices: &[IoSlice<'_>]) -> usize {
        self.session.send(slices)
    }

    /// Whether records wait for the socket.
    pub fn wants_write(&self) -> bool {
        self.session.wants_write()
    }

    /// TLS bytes the session holds for the socket.
    pub fn buffered(&self) -> usize {
        self.session.buffered()
    }

    /// Whether the handshake is not done yet.
    pub fn is_handshaking(&self) -> bool {
        self.session.is_handshaking()
    }

    /// Whether the peer sent close_notify.
    pub fn peer_closed(&self) -> bool {
        self.session.peer_closed()
    }

    /// Queues close_notify.
    pub fn close(&mut self) {
        self.session.close();
    }

    /// Encrypts `bytes` (the framing's last words) and takes every record
    /// out as bytes, for the best-effort goodbye written before FIN.
    pub fn seal_goodbye(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut rest = bytes;
        let mut out = Vec::new();
        let mut collect = |slices: &[IoSlice<'_>]| {
            let n: usize = slices.iter().map(|s| s.len()).sum();
            for s in slices {
                out.extend_from_slice(s);
            }
            Ok(n)
        };
        while !rest.is_empty() {
            let taken = self.session.send(&[IoSlice::new(rest)]);
            let _ = self.session.write_tls_with(&mut collect);
            if taken == 0 {
                break;
            }
            rest = &rest[taken..];
        }
        self.session.close();
        let _ = self.session.write_tls_with(&mut collect);
        out
    }
}
