//! Accepting connections: each listener's kind decides the new client's
//! transport; a connection the server cannot take is told so in its
//! listener's language (`server_full` on plain TCP, an HTTP 503 on a
//! WebSocket listener, nothing inside TLS, which cannot speak before a
//! handshake) and closed without ever being watched.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use super::slots::{Client, ListenerKind, Slot};
use super::Server;
use crate::code::Code;
use crate::event::Via;
use crate::message::error_payload;
use crate::sys;
use crate::transport::Transport;

/// Most connections accepted in one round, so a connection storm cannot
/// starve the clients already there.
const ACCEPTS_PER_ROUND: usize = 64;
/// How long accepting pauses after `EMFILE`/`ENFILE`, so that a listener
/// that stays readable does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

impl Server {
    pub(super) fn accept_all(&mut self, fd: RawFd, kind: ListenerKind, now: Instant) {
        for _ in 0..ACCEPTS_PER_ROUND {
            let Slot::Listener(listener) = self.slots.get_mut(fd) else {
                return;
            };
            match listener.socket.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, kind, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let out_of_fds = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                    if out_of_fds {
                        log::warn!(
                            "accept failed: {e}: pausing accepts for {} ms (raise the descriptor \
                             limit, ulimit -n, or lower max_clients)",
                            ACCEPT_BACKOFF.as_millis()
                        );
                        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                        return;
                    }
                    // ECONNABORTED and the like concern one connection only.
                    log::debug!("accept failed: {e}");
                }
            }
        }
    }

    fn admit(&mut self, socket: TcpStream, peer: SocketAddr, kind: ListenerKind, now: Instant) {
        let fd = socket.as_raw_fd();
        if !sys::selectable(fd) {
            log::warn!("refused {peer}: descriptor {fd} is past what select() can watch (FD_SETSIZE)");
            return self.refuse(socket, kind, "the server cannot take more connections");
        }
        // Every descriptor counts, closed-and-draining ones included; those
        // are reaped first to make room, oldest first.
        let held = self.slots.clients() + self.slots.pending() + self.slots.drains();
        if held >= self.cfg.max_clients && !self.reap_oldest_drain(None) {
            log::warn!(
                "refused {peer}: server full ({} connections)",
                self.cfg.max_clients
            );
            return self.refuse(socket, kind, "the server cannot take more connections");
        }
        let from_peer = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        if self.cfg.max_per_ip.is_some_and(|max| from_peer >= max) && !self.reap_oldest_drain(Some(peer.ip()))
        {
            log::info!("refused {peer}: {from_peer} connections from its address already (max_per_ip)");
            return self.refuse(socket, kind, "too many connections from your address");
        }
        if let Err(e) = socket.set_nonblocking(true) {
            log::warn!("refused {peer}: {e}");
            return self.refuse(socket, kind, "the server cannot take this connection");
        }
        sys::tune_client_socket(socket.as_fd());
        if kind == ListenerKind::WebSocket || self.tls.is_some() {
            return self.start_pending(socket, peer, kind, now);
        }
        let transport = Transport::length_prefix(&self.cfg);
        let id = self.core.connect(peer, Via::Tcp, now);
        log::debug!("client {id} connected from {peer}");
        *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
        self.slots
            .insert(fd, Slot::Client(Client::new(id, socket, transport)));
    }

    /// A connection from `peer` is gone: one fewer for `max_per_ip`.
    pub(super) fn forget_peer(&mut self, peer: SocketAddr) {
        if let Some(n) = self.per_ip.get_mut(&peer.ip()) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&peer.ip());
            }
        }
    }

    /// Says why and closes, without ever watching the socket (its
    /// descriptor may be past what select() can take): `server_full` to a
    /// plain TCP client, `503 Service Unavailable` to an HTTP client of the
    /// WebSocket listener, and nothing through TLS, where no byte of ours
    /// can be read before a handshake (a plaintext frame would only look
    /// like a broken TLS record).
    fn refuse(&mut self, socket: TcpStream, kind: ListenerKind, why: &str) {
        match (kind, self.tls.is_some()) {
            (_, true) => {}
            (ListenerKind::Plain, false) => {
                let full = error_payload(Code::ServerFull.as_str(), None, None, Some(why));
                sys::send_once(socket.as_fd(), &crate::codec::length_prefix::encode(&full));
            }
            (ListenerKind::WebSocket, false) => {
                let reply = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Length: {}\r\nRetry-After: 5\r\nConnection: close\r\n\r\n{why}\n",
                    why.len() + 1
                );
                sys::send_once(socket.as_fd(), reply.as_bytes());
            }
        }
        let _ = socket.shutdown(Shutdown::Write);
        self.core.refused();
    }
}
