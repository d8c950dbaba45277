//! Connections accepted but not clients yet: a TLS handshake, a WebSocket
//! upgrade (HTTP/1.1), or both (`wss://`). Each has the handshake deadline;
//! when it completes it becomes a client with its transport, and only then
//! does the core (and the host) hear of it. A plain HTTP request gets its
//! reply (the web page, or an error) and is closed, never a client. Failed
//! and timed-out handshakes are counted (`failed_handshakes`), and nobody
//! else notices them.

use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::slots::{Client, ListenerKind, Slot};
use super::Server;
use crate::codec::ws::{Handshake, HandshakeConfig, Outcome};
use crate::config::Config;
use crate::event::Via;
use crate::sys;
use crate::transport::tls::Tls;
use crate::transport::Transport;

/// Most bytes read from a pending connection in one round: a handshake is
/// small (a ClientHello, an HTTP head of at most 8 KiB).
const PENDING_READ: usize = 16 * 1024;
/// The deadline when the configuration sets no handshake timeout: a
/// connection that never completes its TLS handshake or upgrade must not
/// hold a descriptor forever.
const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// A connection in its handshake.
pub(super) struct Pending {
    pub socket: TcpStream,
    pub peer: SocketAddr,
    pub kind: ListenerKind,
    pub deadline: Instant,
    tls: Option<Tls>,
    http: Option<Handshake>,
    /// An HTTP reply to write whole (plaintext), then close.
    reply: Vec<u8>,
    /// It is being answered as plain HTTP: closed once the reply is out.
    replying: bool,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("peer", &self.peer)
            .field("kind", &self.kind)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Pending {
    /// What it waits for, when the select loop collects interest.
    pub fn wants_write(&self) -> bool {
        !self.reply.is_empty() || self.tls.as_ref().is_some_and(Tls::wants_write)
    }
}

/// What a round of reading did to a pending connection.
enum Step {
    /// Still waiting for the rest of its handshake.
    Wait,
    /// A client now: its transport and the bytes already decoded past the
    /// handshake.
    Client(Transport, Vec<u8>, Via),
    /// Replying to a plain HTTP request; close once written.
    Reply,
    /// Failed (a TLS error, the peer gone): close it, counted.
    Failed,
}

impl Server {
    /// An accepted connection that needs a handshake first.
    pub(super) fn start_pending(
        &mut self,
        socket: TcpStream,
        peer: SocketAddr,
        kind: ListenerKind,
        now: Instant,
    ) {
        let tls = match &self.tls {
            Some(cfg) => match crate::tls::TlsSession::new(cfg, self.tls_write_limit()) {
                Ok(session) => Some(Tls::new(session)),
                Err(_) => {
                    // Closed before it was a client: counted like a failed
                    // handshake.
                    self.core.handshake_failed();
                    return;
                }
            },
            None => None,
        };
        // The handshake timeout, or the idle timeout if shorter: a
        // connection silent that long is dropped, whatever its state.
        let limit = [self.cfg.handshake_timeout, self.cfg.idle_timeout]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(DEFAULT_DEADLINE);
        let deadline = now + limit;
        let fd = socket.as_raw_fd();
        let http = (kind == ListenerKind::WebSocket).then(Handshake::new);
        let pending = Pending {
            socket,
            peer,
            kind,
            deadline,
            tls,
            http,
            reply: Vec::new(),
            replying: false,
        };
        *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
        self.slots.insert(fd, Slot::Pending(Box::new(pending)));
    }

    /// Most TLS bytes a session buffers ahead of the socket: the usual 64
    /// KiB, or less when the queue cap is smaller (the cap counts them).
    fn tls_write_limit(&self) -> usize {
        crate::tls::DEFAULT_WRITE_LIMIT.min(self.cfg.max_queue_bytes)
    }

    /// A pending connection is readable.
    pub(super) fn read_pending(&mut self, fd: RawFd, now: Instant) {
        let step = {
            let Slot::Pending(p) = self.slots.get_mut(fd) else {
                return;
            };
            if p.replying {
                // Answered already: what it still sends is not read.
                return;
            }
            let want = PENDING_READ.min(self.read_buf.len());
            match p.socket.read(&mut self.read_buf[..want]) {
                Ok(0) => Step::Failed,
                Ok(n) => advance(p, &mut self.read_buf[..n], &self.ws, &self.cfg),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                    Step::Wait
                }
                Err(_) => Step::Failed,
            }
        };
        match step {
            Step::Wait => self.write_pending(fd, now),
            Step::Failed => self.close_pending(fd, true),
            Step::Reply => self.write_pending(fd, now),
            Step::Client(transport, early, via) => self.promote(fd, transport, early, via, now),
        }
    }

    /// A pending connection is writable (or has something new to say): its
    /// handshake flight, or its reply, after which it is closed.
    pub(super) fn write_pending(&mut self, fd: RawFd, now: Instant) {
        let Slot::Pending(p) = self.slots.get_mut(fd) else {
            return;
        };
        let replying = p.replying;
        match flush(p) {
            Err(_) => self.close_pending(fd, !replying),
            Ok(done) if done && replying => {
                let Slot::Pending(p) = self.slots.remove(fd) else {
                    return;
                };
                self.start_draining(p.socket, p.peer, Vec::new(), now);
            }
            Ok(_) => {}
        }
    }

    /// The handshake is done: the connection becomes a client of the core
    /// with its transport, and what came after the handshake is its first
    /// input.
    fn promote(&mut self, fd: RawFd, transport: Transport, mut early: Vec<u8>, via: Via, now: Instant) {
        let Slot::Pending(p) = self.slots.remove(fd) else {
            return;
        };
        let id = self.core.connect(p.peer, via, now);
        self.slots
            .insert(fd, Slot::Client(Client::new(id, p.socket, transport)));
        if let Some(client) = self.slots.client_mut(id) {
            // Plaintext already: through the framing only.
            client
                .transport
                .received_after_handshake(&mut self.core, id, &mut early, now);
            if client.transport.has_pending_input() {
                self.pending_input.push(id);
            }
        }
        self.write_client(id, now);
    }

    /// Closes a pending connection; `failed` counts it as a failed
    /// handshake.
    pub(super) fn close_pending(&mut self, fd: RawFd, failed: bool) {
        if let Slot::Pending(p) = self.slots.remove(fd) {
            self.forget_peer(p.peer);
            if failed {
                self.core.handshake_failed();
            }
        }
    }

    /// Pending connections past their deadline: closed, counted.
    pub(super) fn expire_pending(&mut self, now: Instant) {
        for p in self.slots.expire_pending(now) {
            self.forget_peer(p.peer);
            self.core.handshake_failed();
        }
    }
}

/// Feeds bytes read to the connection's TLS session and HTTP handshake.
fn advance(p: &mut Pending, bytes: &mut [u8], ws: &HandshakeConfig, cfg: &Config) -> Step {
    let plaintext: &mut [u8] = match &mut p.tls {
        Some(tls) => match tls.receive(bytes) {
            Ok(_) if tls.is_handshaking() => return Step::Wait,
            Ok(_) => tls.plaintext(),
            Err(_) => {
                // The alert rustls queued goes out best effort.
                let fd = p.socket.as_fd();
                let _ = tls.write_records(&mut |s: &[IoSlice<'_>]| sys::send_vectored(fd, s));
                return Step::Failed;
            }
        },
        None => bytes,
    };
    let Some(http) = &mut p.http else {
        // TLS done on the plain listener: a client, with what followed.
        let early = plaintext.to_vec();
        let tls = p
            .tls
            .take()
            .expect("only TLS connections wait on the plain listener");
        return Step::Client(Transport::length_prefix(cfg).inside(tls), early, Via::Tls);
    };
    match http.input(plaintext, ws) {
        None => Step::Wait,
        Some(Outcome::Upgrade { response, rest }) => {
            let via = if p.tls.is_some() { Via::Wss } else { Via::Ws };
            let transport = Transport::websocket(cfg, response);
            let transport = match p.tls.take() {
                Some(tls) => transport.inside(tls),
                None => transport,
            };
            Step::Client(transport, rest, via)
        }
        Some(Outcome::Reply(reply)) => {
            p.reply = reply.to_vec();
            p.replying = true;
            Step::Reply
        }
    }
}

/// Writes what a pending connection has to say: TLS records, and its reply
/// (through TLS when there is one). `true` when nothing is left.
fn flush(p: &mut Pending) -> io::Result<bool> {
    let fd = p.socket.as_fd();
    let mut sink = |s: &[IoSlice<'_>]| sys::send_vectored(fd, s);
    match &mut p.tls {
        None => {
            if !p.reply.is_empty() {
                let n = sink(&[IoSlice::new(&p.reply)])?;
                p.reply.drain(..n);
            }
            Ok(p.reply.is_empty())
        }
        Some(tls) => loop {
            if !tls.write_records(&mut sink)? {
                return Ok(false);
            }
            if p.reply.is_empty() || tls.is_handshaking() {
                return Ok(p.reply.is_empty());
            }
            let n = tls.send(&[IoSlice::new(&p.reply)]);
            p.reply.drain(..n);
            if p.reply.is_empty() {
                tls.close();
            }
        },
    }
}
