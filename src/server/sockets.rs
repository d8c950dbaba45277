//! The steps of one round that touch sockets: accept, read, write, and
//! closing connections without losing their last frames.

use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

use super::{Draining, Server, ACCEPTS_PER_ROUND, ACCEPT_BACKOFF, DRAIN_LINGER, SLICES_PER_WRITE};
use crate::event::ClientId;
use crate::frame;
use crate::message::Outgoing;
use crate::sys;

impl Server {
    pub(super) fn accept_all(&mut self, now: Instant) {
        for _ in 0..ACCEPTS_PER_ROUND {
            let Some(listener) = &self.listener else { return };
            match listener.accept() {
                Ok((socket, peer)) => self.admit(socket, peer, now),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let out_of_fds = matches!(
                        e.raw_os_error(),
                        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
                    );
                    if out_of_fds {
                        self.accept_paused_until = Some(now + ACCEPT_BACKOFF);
                        return;
                    }
                    // ECONNABORTED and the like concern one connection only.
                }
            }
        }
    }

    fn admit(&mut self, socket: TcpStream, peer: SocketAddr, now: Instant) {
        let fd = socket.as_raw_fd();
        if !sys::selectable(fd) || self.sockets.len() >= self.cfg.max_clients {
            return self.refuse(socket, "the server cannot take more connections");
        }
        let from_peer = self.per_ip.get(&peer.ip()).copied().unwrap_or(0);
        if self.cfg.max_per_ip.is_some_and(|max| from_peer >= max) {
            return self.refuse(socket, "too many connections from your address");
        }
        if socket.set_nonblocking(true).is_err() {
            return self.refuse(socket, "the server cannot take this connection");
        }
        sys::tune_client_socket(socket.as_fd());
        let id = self.hub.connect(peer, now);
        *self.per_ip.entry(peer.ip()).or_insert(0) += 1;
        self.by_fd[fd as usize] = Some(id);
        self.sockets.insert(id, socket);
    }

    /// Answers `server_full` and closes, without ever watching the socket
    /// (its descriptor may be past what select() can take).
    fn refuse(&mut self, socket: TcpStream, why: &str) {
        let full = frame::encode_json(&Outgoing::Error {
            code: "server_full",
            to: None,
            room: None,
            message: Some(why),
        });
        sys::send_once(socket.as_fd(), &full);
        let _ = socket.shutdown(Shutdown::Write);
        self.hub.refused();
    }

    pub(super) fn read_client(&mut self, id: ClientId, now: Instant) {
        let mut budget = self.cfg.read_budget;
        while budget > 0 {
            let Some(socket) = self.sockets.get_mut(&id) else {
                return;
            };
            let allowance = self
                .hub
                .conn(id)
                .and_then(|c| c.limiter.as_ref())
                .map_or(usize::MAX, |l| l.read_allowance(now));
            let want = budget.min(self.read_buf.len()).min(allowance);
            match socket.read(&mut self.read_buf[..want]) {
                Ok(0) => {
                    // The peer closed its side: it leaves, and what is queued
                    // for it is still flushed (it may only have half-closed).
                    self.hub.peer_gone(id, now);
                    return;
                }
                Ok(n) => {
                    self.hub.receive(id, &self.read_buf[..n], now);
                    budget -= n;
                    let stop = n < want
                        || self.hub.conn(id).is_none_or(|c| !c.wants_input(now))
                        || self.hub.events().len() >= self.cfg.max_events;
                    if stop {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.close(id, now),
            }
        }
    }

    pub(super) fn write_client(&mut self, id: ClientId, now: Instant) {
        loop {
            let (Some(socket), Some(conn)) = (self.sockets.get(&id), self.hub.conn(id)) else {
                return;
            };
            if conn.out.is_empty() {
                return;
            }
            let mut slices = [IoSlice::new(&[]); SLICES_PER_WRITE];
            let n = conn.out.slices(&mut slices);
            let offered: usize = slices[..n].iter().map(|s| s.len()).sum();
            match sys::send_vectored(socket.as_fd(), &slices[..n]) {
                Ok(written) => {
                    self.hub.written(id, written);
                    if written < offered {
                        return; // the socket buffer is full
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return self.close(id, now),
            }
        }
    }

    /// A closing connection flushed (or ran out of time): send FIN, drain
    /// what the peer still sends for a moment, then release it.
    pub(super) fn finish(&mut self, id: ClientId, now: Instant) {
        let Some(socket) = self.forget(id, now) else {
            return;
        };
        let _ = socket.shutdown(Shutdown::Write);
        if self.shutting_down {
            // The server is going away: one drain, then closed now.
            let mut socket = socket;
            drain(&mut socket, &mut self.read_buf);
            return;
        }
        let mut draining = Draining {
            socket,
            until: now + DRAIN_LINGER.min(self.cfg.close_linger),
        };
        if !drain(&mut draining.socket, &mut self.read_buf) {
            self.draining.push(draining);
        }
    }

    pub(super) fn drain_closed(&mut self, fd: RawFd, now: Instant) {
        if let Some(i) = self.draining.iter().position(|d| d.socket.as_raw_fd() == fd) {
            if drain(&mut self.draining[i].socket, &mut self.read_buf) || now >= self.draining[i].until {
                self.draining.swap_remove(i);
            }
        }
    }

    /// The socket failed: the client leaves and the socket closes now.
    fn close(&mut self, id: ClientId, now: Instant) {
        drop(self.forget(id, now));
    }

    fn forget(&mut self, id: ClientId, now: Instant) -> Option<TcpStream> {
        let socket = self.sockets.remove(&id)?;
        self.by_fd[socket.as_raw_fd() as usize] = None;
        if let Some(peer) = self.hub.conn(id).map(|c| c.peer.ip()) {
            if let Some(n) = self.per_ip.get_mut(&peer) {
                *n -= 1;
                if *n == 0 {
                    self.per_ip.remove(&peer);
                }
            }
        }
        self.hub.remove(id, now);
        Some(socket)
    }
}

/// Reads and discards what is waiting; true when the peer has closed or the
/// socket failed (nothing more to wait for).
pub(super) fn drain(socket: &mut TcpStream, buf: &mut [u8]) -> bool {
    loop {
        match socket.read(buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}
