//! The slot table: every descriptor the select loop watches, by number,
//! with what it is: the wake pipe, a listener (one per kind of
//! connection), a connection still in its TLS handshake or WebSocket
//! upgrade, a client of any transport, or a closed connection being
//! drained, or one of the cluster's two links to Redis. Every watched
//! descriptor is below `FD_SETSIZE`, so a flat table indexed by descriptor
//! is enough, and the loop dispatches on the slot's kind.

use std::net::{TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::time::Instant;

use super::pending::Pending;
use crate::config::FD_SETSIZE;
use crate::event::ClientId;
use crate::idmap::IdMap;
use crate::transport::Transport;

/// What kind of connections a listener takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListenerKind {
    /// TCP with length-prefixed frames (inside TLS when configured).
    Plain,
    /// HTTP upgrades to WebSocket, and the web page (inside TLS when
    /// configured).
    WebSocket,
}

/// A listening socket.
#[derive(Debug)]
pub(super) struct Listener {
    pub socket: TcpListener,
    pub kind: ListenerKind,
}

/// A connected client: its socket, its transport, its id in the core.
#[derive(Debug)]
pub(super) struct Client {
    pub id: ClientId,
    pub socket: TcpStream,
    pub transport: Transport,
    /// Its socket took less than offered the last time it was written:
    /// it is written again once `select()` says it is writable, not
    /// before (a write now would only fail). Every follower of the log
    /// for everyone is offered a write in a round that logged something,
    /// and this keeps that from costing a slow reader's socket a failed
    /// `sendmsg` every round.
    pub blocked: bool,
}

impl Client {
    pub fn new(id: ClientId, socket: TcpStream, transport: Transport) -> Self {
        Client {
            id,
            socket,
            transport,
            blocked: false,
        }
    }
}

/// A connection the server is finished with: it said all it had to say and
/// sent FIN (or is still saying its transport's goodbye, FIN after it);
/// unread input is drained so that closing does not turn into a reset
/// that could destroy that last data in flight.
#[derive(Debug)]
pub(super) struct Draining {
    pub socket: TcpStream,
    pub until: Instant,
    /// Whose descriptor it still is (for `max_per_ip`).
    pub peer: std::net::SocketAddr,
    /// Bytes it may still be drained of before it is closed anyway.
    pub left: usize,
    /// What the socket did not take yet of the transport's goodbye (a TLS
    /// close_notify, a WebSocket close frame): written when it is
    /// writable, then FIN.
    pub goodbye: Vec<u8>,
}

/// What one descriptor is.
#[derive(Debug, Default)]
pub(super) enum Slot {
    /// Not watched.
    #[default]
    Free,
    /// The read end of the wake pipe.
    Wake,
    /// The alarm: the wait's deadline.
    Alarm,
    /// A listener.
    Listener(Listener),
    /// A connection in its TLS handshake or WebSocket upgrade: not a client
    /// of the core yet.
    Pending(Box<Pending>),
    /// A client.
    Client(Client),
    /// A closed connection being drained.
    Draining(Draining),
    /// One of the cluster's two Redis connections (its socket is
    /// `cluster::LinkSockets`').
    Redis(crate::cluster::Which),
}

/// Every watched descriptor.
#[derive(Debug)]
pub(super) struct Slots {
    by_fd: Vec<Slot>,
    /// Descriptor of each client, for the calls that name a client.
    by_id: IdMap<RawFd>,
    /// One past the highest descriptor in use.
    end: usize,
    clients: usize,
    draining: Vec<RawFd>,
    pending: Vec<RawFd>,
}

impl Slots {
    pub fn new() -> Self {
        Slots {
            by_fd: std::iter::repeat_with(Slot::default).take(FD_SETSIZE).collect(),
            by_id: IdMap::default(),
            end: 0,
            clients: 0,
            draining: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The slot of `fd` (which must be below `FD_SETSIZE`).
    pub fn get_mut(&mut self, fd: RawFd) -> &mut Slot {
        &mut self.by_fd[fd as usize]
    }

    /// Every slot in use, with its descriptor.
    pub fn iter(&self) -> impl Iterator<Item = (RawFd, &Slot)> + '_ {
        self.by_fd[..self.end]
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s, Slot::Free))
            .map(|(fd, s)| (fd as RawFd, s))
    }

    /// Puts `slot` at `fd`, which must be free.
    pub fn insert(&mut self, fd: RawFd, slot: Slot) {
        let at = fd as usize;
        debug_assert!(matches!(self.by_fd[at], Slot::Free));
        match &slot {
            Slot::Client(c) => {
                self.by_id.insert(c.id, fd);
                self.clients += 1;
            }
            Slot::Draining(_) => self.draining.push(fd),
            Slot::Pending(_) => self.pending.push(fd),
            _ => {}
        }
        self.by_fd[at] = slot;
        self.end = self.end.max(at + 1);
    }

    /// Empties the slot at `fd` and returns what it held.
    pub fn remove(&mut self, fd: RawFd) -> Slot {
        let slot = std::mem::take(&mut self.by_fd[fd as usize]);
        match &slot {
            Slot::Client(c) => {
                self.by_id.remove(&c.id);
                self.clients -= 1;
            }
            Slot::Draining(_) => self.draining.retain(|&d| d != fd),
            Slot::Pending(_) => self.pending.retain(|&p| p != fd),
            _ => {}
        }
        while self.end > 0 && matches!(self.by_fd[self.end - 1], Slot::Free) {
            self.end -= 1;
        }
        slot
    }

    /// The client `id`, if connected.
    pub fn client_mut(&mut self, id: ClientId) -> Option<&mut Client> {
        let fd = *self.by_id.get(&id)?;
        match &mut self.by_fd[fd as usize] {
            Slot::Client(c) => Some(c),
            _ => None,
        }
    }

    /// The descriptor of client `id`.
    pub fn fd_of(&self, id: ClientId) -> Option<RawFd> {
        self.by_id.get(&id).copied()
    }

    /// Clients connected.
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// Connections still in their TLS handshake or WebSocket upgrade.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// When the first pending connection's handshake deadline passes.
    pub fn next_pending_deadline(&self) -> Option<Instant> {
        self.pending
            .iter()
            .filter_map(|&fd| match &self.by_fd[fd as usize] {
                Slot::Pending(p) => Some(p.deadline),
                _ => None,
            })
            .min()
    }

    /// Takes out every pending connection whose handshake deadline passed.
    pub fn expire_pending(&mut self, now: Instant) -> Vec<Pending> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let late: Vec<RawFd> = self
            .pending
            .iter()
            .copied()
            .filter(|&fd| matches!(&self.by_fd[fd as usize], Slot::Pending(p) if now >= p.deadline))
            .collect();
        late.into_iter()
            .filter_map(|fd| match self.remove(fd) {
                Slot::Pending(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    /// When the first drain ends.
    pub fn next_drain_end(&self) -> Option<Instant> {
        self.draining
            .iter()
            .filter_map(|&fd| match &self.by_fd[fd as usize] {
                Slot::Draining(d) => Some(d.until),
                _ => None,
            })
            .min()
    }

    /// Drains whose time is up at `now`, or all of them (`None`).
    pub fn drains_done(&self, now: Option<Instant>) -> Vec<RawFd> {
        if self.draining.is_empty() {
            return Vec::new();
        }
        self.draining
            .iter()
            .copied()
            .filter(|&fd| {
                matches!(&self.by_fd[fd as usize], Slot::Draining(d) if now.is_none_or(|now| now >= d.until))
            })
            .collect()
    }

    /// The drain that started first (of a peer at `ip`, or of anyone).
    pub fn oldest_drain(&self, ip: Option<std::net::IpAddr>) -> Option<RawFd> {
        // `draining` is in the order drains started.
        self.draining
            .iter()
            .copied()
            .find(|&fd| match &self.by_fd[fd as usize] {
                Slot::Draining(d) => ip.is_none_or(|ip| d.peer.ip() == ip),
                _ => false,
            })
    }

    /// Connections being drained.
    pub fn drains(&self) -> usize {
        self.draining.len()
    }

    /// Closes every pending connection now (a shutdown).
    pub fn clear_pending(&mut self) {
        for fd in self.pending.clone() {
            self.remove(fd);
        }
    }

    /// Closes every listener (a shutdown stops accepting).
    pub fn close_listeners(&mut self) {
        let listeners: Vec<RawFd> = self
            .iter()
            .filter(|(_, s)| matches!(s, Slot::Listener(_)))
            .map(|(fd, _)| fd)
            .collect();
        for fd in listeners {
            self.remove(fd);
        }
    }

    /// Whether no client is connected.
    pub fn no_clients(&self) -> bool {
        self.clients == 0
    }
}
