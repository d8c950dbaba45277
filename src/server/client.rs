//! One client's socket in a round: read into its transport, write its
//! queue through its transport, and close it without losing its last
//! frames.

use std::io::{self, Read};
use std::os::fd::{AsFd, RawFd};
use std::time::Instant;

use super::slots::{Client, Slot};
use super::Server;
use crate::event::{ClientId, Reason};
use crate::sys;

impl Server {
    /// Reads a client up to its budget for the round, handing what arrives
    /// to its transport.
    pub(super) fn read_client(&mut self, fd: RawFd, now: Instant) {
        let mut budget = self.cfg.read_budget;
        while budget > 0 {
            let Slot::Client(client) = self.slots.get_mut(fd) else {
                return;
            };
            let id = client.id;
            let want = budget
                .min(self.read_buf.len())
                .min(self.core.read_allowance(id, now));
            match client.socket.read(&mut self.read_buf[..want]) {
                Ok(0) => {
                    // The peer closed its side: it leaves, and what is queued
                    // for it is still flushed (it may only have half-closed).
                    self.core.peer_gone(id, now);
                    return;
                }
                Ok(n) => {
                    self.core.heard(id, n, now);
                    client
                        .transport
                        .received(&mut self.core, id, &mut self.read_buf[..n], now);
                    let held = client.transport.has_pending_input();
                    if held && !self.pending_input.contains(&id) {
                        self.pending_input.push(id);
                    }
                    if client.transport.wants_write() {
                        // A pong or TLS records to send: this round.
                        self.write_client(id, now);
                    }
                    budget -= n;
                    let stop = n < want
                        || held
                        || !self.core.wants_input(id, now)
                        || self.core.events().len() >= self.cfg.max_events;
                    if stop {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    log::debug!("client {id}: read failed: {e}");
                    return self.close(id, now);
                }
            }
        }
    }

    /// Writes what is queued for a client until its socket is full,
    /// unless its socket was full the last time and `select()` has not
    /// said it is writable since.
    pub(super) fn write_client(&mut self, id: ClientId, now: Instant) {
        let Some(client) = self.slots.client_mut(id) else {
            return;
        };
        if client.blocked {
            return;
        }
        let fd = client.socket.as_fd();
        let mut sink = |slices: &[io::IoSlice<'_>]| sys::send_vectored(fd, slices);
        let flushed = client.transport.flush(&mut self.core, id, &mut sink);
        match flushed {
            Ok(all) => client.blocked = !all,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => client.blocked = true,
            Err(e) => {
                log::debug!("client {id}: write failed: {e}");
                self.close(id, now)
            }
        }
    }

    /// A closing connection flushed (or ran out of time): its transport's
    /// goodbye, FIN, drain what the peer still sends for a moment, then
    /// release it.
    pub(super) fn finish(&mut self, id: ClientId, reason: Reason, now: Instant) {
        let peer = self.core.peer(id);
        let Some(Client {
            socket,
            mut transport,
            ..
        }) = self.forget_client(id, now)
        else {
            return;
        };
        let Some(peer) = peer else { return };
        // The goodbye goes now as far as the socket takes it; what it does
        // not take (a peer slow to read its last frames) is written when
        // it is writable, before FIN, while the connection drains.
        let goodbye = transport.goodbye(reason).unwrap_or_default();
        self.start_draining(socket, peer, goodbye, now);
    }

    /// The socket failed: the client leaves and the socket closes now.
    fn close(&mut self, id: ClientId, now: Instant) {
        if let Some(peer) = self.core.peer(id) {
            self.forget_peer(peer);
        }
        drop(self.forget_client(id, now));
    }

    /// Takes a client out of the table and the core (its socket, still its
    /// peer's descriptor, is the caller's to close or drain).
    fn forget_client(&mut self, id: ClientId, now: Instant) -> Option<Client> {
        let fd = self.slots.fd_of(id)?;
        let Slot::Client(client) = self.slots.remove(fd) else {
            return None;
        };
        self.pending_input.retain(|&p| p != id);
        self.core.remove(id, now);
        Some(client)
    }
}
