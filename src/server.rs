//! The event core: one `select()` over the listener, the wake pipe and every
//! client, moving bytes between sockets and the sans-IO [`Hub`].

use std::collections::HashMap;
use std::io::{self, IoSlice, Read};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, FD_SETSIZE};
use crate::error::{Error, Result};
use crate::event::{ClientId, Event};
use crate::frame;
use crate::idmap::IdMap;
use crate::message::Outgoing;
use crate::protocol::Hub;
use crate::stats::Stats;
use crate::sys::{self, Interest, Ready};

/// Most connections accepted in one round, so a connection storm cannot
/// starve the clients already there.
const ACCEPTS_PER_ROUND: usize = 64;
/// Slices gathered into one `sendmsg`.
const SLICES_PER_WRITE: usize = 128;
/// Size of the buffer every read goes through.
const READ_CHUNK: usize = 64 * 1024;
/// How long accepting pauses after `EMFILE`/`ENFILE`, so that a listener
/// that stays readable does not spin the loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Longest a closed connection is drained of unread input before the
/// socket is released.
const DRAIN_LINGER: Duration = Duration::from_secs(2);

/// What the server wants watched for one descriptor, for hosts that run
/// their own `poll`/`epoll` loop (see [`Server::fds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchFd {
    /// The descriptor.
    pub fd: RawFd,
    /// Wake when readable.
    pub read: bool,
    /// Wake when writable.
    pub write: bool,
}

/// Makes a blocked [`Server::poll_once`] return; cheap to clone, and safe to
/// use from any thread (and from a signal handler: it is one `write(2)`).
#[derive(Debug, Clone)]
pub struct Waker {
    fd: Arc<OwnedFd>,
}

impl Waker {
    /// Wakes the server's current or next `poll_once`.
    pub fn wake(&self) -> io::Result<()> {
        sys::wake(self.fd.as_fd())
    }

    /// The pipe's write end, for code that must wake the server from a
    /// signal handler with a bare `write(fd, "x", 1)`.
    pub fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A connection the server is finished with: it said all it had to say and
/// sent FIN; unread input is drained so that closing does not turn into a
/// reset that could destroy that last data in flight.
struct Draining {
    socket: TcpStream,
    until: Instant,
}

/// An embeddable chat server: the host creates it, then calls
/// [`poll_once`](Server::poll_once) from its own loop and takes
/// [`events`](Server::next_event).
///
/// ```no_run
/// use std::time::Duration;
/// let mut server = chat::Server::new(chat::Config::default())?;
/// println!("listening on {}", server.local_addr());
/// loop {
///     server.poll_once(Some(Duration::from_millis(500)))?;
///     while let Some(event) = server.next_event() {
///         println!("{event:?}");
///     }
/// }
/// # Ok::<(), chat::Error>(())
/// ```
///
/// # Portability
/// `select()` cannot watch a descriptor numbered `FD_SETSIZE` (1024 on
/// Linux) or above. [`Server::new`] fails with [`Error::FdTooHigh`] if the
/// listener lands there, and an accepted connection that does is answered
/// `server_full` and closed, never watched.
pub struct Server {
    cfg: Config,
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    hub: Hub,
    sockets: IdMap<TcpStream>,
    /// Client id by descriptor: every watched descriptor is below
    /// `FD_SETSIZE`, so a flat table is enough.
    by_fd: Vec<Option<ClientId>>,
    /// Open connections per source address, for `max_per_ip`.
    per_ip: HashMap<IpAddr, usize>,
    draining: Vec<Draining>,
    wake_rx: OwnedFd,
    waker: Waker,
    read_buf: Box<[u8]>,
    accept_paused_until: Option<Instant>,
    shutting_down: bool,
    // Buffers reused every round.
    interest: Interest,
    ready: Ready,
    ids: Vec<ClientId>,
}

impl Server {
    /// Binds the listener and makes an idle server.
    pub fn new(cfg: Config) -> Result<Server> {
        cfg.validate()?;
        let listener = TcpListener::bind(cfg.listen_addr).map_err(|source| Error::Bind {
            addr: cfg.listen_addr,
            source,
        })?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let (wake_rx, wake_tx) = sys::wake_pipe()?;
        for fd in [listener.as_raw_fd(), wake_rx.as_raw_fd()] {
            if !sys::selectable(fd) {
                return Err(Error::FdTooHigh {
                    fd,
                    limit: FD_SETSIZE,
                });
            }
        }
        Ok(Server {
            hub: Hub::new(&cfg),
            cfg,
            listener: Some(listener),
            local_addr,
            sockets: IdMap::default(),
            by_fd: vec![None; FD_SETSIZE],
            per_ip: HashMap::new(),
            draining: Vec::new(),
            wake_rx,
            waker: Waker {
                fd: Arc::new(wake_tx),
            },
            read_buf: vec![0; READ_CHUNK].into_boxed_slice(),
            accept_paused_until: None,
            shutting_down: false,
            interest: Interest::default(),
            ready: Ready::default(),
            ids: Vec::new(),
        })
    }

    /// The address the listener is bound to (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// One round: waits up to `timeout` (`None`: until something happens)
    /// for a socket to be ready or a timer to expire, then accepts, reads,
    /// routes and writes. Returns how many events wait for the host.
    pub fn poll_once(&mut self, timeout: Option<Duration>) -> Result<usize> {
        let wait = match (timeout, self.timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.collect_interest();
        let mut ready = std::mem::take(&mut self.ready);
        let waited = sys::wait(&self.interest, wait, &mut ready);
        let now = Instant::now();
        if let Err(e) = waited {
            self.ready = ready;
            return Err(e.into());
        }
        for &fd in &ready.read {
            if fd == self.wake_rx.as_raw_fd() {
                sys::drain_pipe(self.wake_rx.as_fd());
            } else if self.listener.as_ref().is_some_and(|l| l.as_raw_fd() == fd) {
                self.accept_all(now);
            } else if let Some(id) = self.by_fd[fd as usize] {
                self.read_client(id, now);
            } else {
                self.drain_closed(fd, now);
            }
        }
        self.hub.tick(now);
        // Write to every client that has new output now rather than after
        // another select(): most sockets are writable, and this saves a
        // round and its system call.
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        ids.extend(ready.write.iter().filter_map(|&fd| self.by_fd[fd as usize]));
        self.hub.take_dirty(&mut ids);
        for &id in &ids {
            self.write_client(id, now);
        }
        ids.clear();
        self.hub.finished(now, &mut ids);
        for &id in &ids {
            self.finish(id, now);
        }
        self.draining.retain(|d| now < d.until);
        self.ids = ids;
        self.ready = ready;
        Ok(self.hub.events().len())
    }

    /// The next event, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.hub.events().pop_front()
    }

    /// Takes every waiting event.
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.hub.events().drain(..)
    }

    /// How many events wait for the host.
    pub fn pending_events(&mut self) -> usize {
        self.hub.events().len()
    }

    /// Queues one JSON object, exactly as given, to one client.
    pub fn send(&mut self, client: ClientId, json: &[u8]) -> Result<()> {
        self.hub.send(client, json, self.live()?)
    }

    /// Queues one JSON object to every registered client (encoded once,
    /// shared by every queue). Returns how many clients it was queued to.
    pub fn broadcast(&mut self, json: &[u8]) -> Result<usize> {
        self.hub.broadcast(json, self.live()?)
    }

    /// Disconnects a client: it gets `{"type":"error","code":"kicked"}`
    /// (with `message`, if given) and others see it leave with reason
    /// `kicked`.
    pub fn kick(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        self.hub.kick(client, message, self.live()?)
    }

    /// Queues one JSON object, exactly as given, to every member of a
    /// room; returns how many members it was queued to.
    pub fn room_send(&mut self, room: &str, json: &[u8]) -> Result<usize> {
        self.hub.room_send(room, json, self.live()?)
    }

    /// A room's members, in joining order; `None` if no such room exists.
    pub fn room_members(&self, room: &str) -> Option<Vec<ClientId>> {
        self.hub.room_members(room)
    }

    /// Every room's name, sorted.
    pub fn rooms(&self) -> Vec<Arc<str>> {
        self.hub.room_names()
    }

    /// Takes a client out of a room: it gets `{"type":"parted","room":R}`
    /// and the other members see it part.
    pub fn room_remove(&mut self, client: ClientId, room: &str) -> Result<()> {
        self.hub.room_remove(client, room, self.live()?)
    }

    /// With [`Config::approve_registrations`]: lets a client whose
    /// `ApprovalRequested` event arrived register.
    pub fn approve(&mut self, client: ClientId) -> Result<()> {
        self.hub.approve(client, self.live()?)
    }

    /// With [`Config::approve_registrations`]: refuses a client's `hello`;
    /// it gets `{"type":"error","code":"rejected","message":message}`.
    pub fn reject(&mut self, client: ClientId, message: Option<&str>) -> Result<()> {
        self.hub.reject(client, message, self.live()?)
    }

    /// With [`Config::intercept_messages`]: routes a held message as it is.
    /// A message whose sender left is forgotten with it (`UnknownTicket`).
    pub fn release(&mut self, ticket: u64) -> Result<()> {
        self.hub.release(ticket, self.live()?)
    }

    /// With [`Config::intercept_messages`]: discards a held message; its
    /// sender gets `{"type":"error","code":code,"message":message}`.
    pub fn drop_held(&mut self, ticket: u64, code: &str, message: Option<&str>) -> Result<()> {
        self.hub.drop_held(ticket, code, message, self.live()?)
    }

    /// Attaches a value to a client; every later event of it carries it.
    pub fn set_user_data(&mut self, client: ClientId, data: u64) -> Result<()> {
        self.hub.set_user_data(client, data)
    }

    /// A client's user data (0 until set).
    pub fn user_data(&self, client: ClientId) -> Option<u64> {
        self.hub.user_data(client)
    }

    /// The time, for a call that gives the server new work; refused once
    /// a shutdown has begun.
    fn live(&self) -> Result<Instant> {
        if self.shutting_down {
            return Err(Error::ShuttingDown);
        }
        Ok(Instant::now())
    }

    /// Starts a graceful shutdown on the first call: stops accepting, sends
    /// every client `{"type":"error","code":"shutdown"}` and flushes their
    /// queues, closing each when flushed or when `deadline` has passed.
    /// Keep calling [`poll_once`](Self::poll_once) until this returns `true`
    /// (every connection closed); later calls ignore `deadline`. From the
    /// first call on, calls that would give the server new work (`send`,
    /// `broadcast`, `kick`, rooms, approval, interception) return
    /// [`Error::ShuttingDown`].
    pub fn shutdown(&mut self, deadline: Duration) -> bool {
        if !self.shutting_down {
            self.shutting_down = true;
            self.listener = None;
            let now = Instant::now();
            self.hub.shutdown(now, now + deadline);
            self.draining.clear();
        }
        self.sockets.is_empty()
    }

    /// Shuts down and pumps until every connection is closed or `deadline`
    /// passed.
    pub fn shutdown_and_wait(&mut self, deadline: Duration) -> Result<()> {
        let give_up = Instant::now() + deadline;
        while !self.shutdown(deadline) {
            let left = give_up.saturating_duration_since(Instant::now());
            self.poll_once(Some(left.max(Duration::from_millis(1))))?;
        }
        Ok(())
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.hub.stats()
    }

    /// A handle that makes a blocked `poll_once` return, from any thread.
    pub fn waker(&self) -> Waker {
        self.waker.clone()
    }

    /// A connected client's nick, once registered.
    pub fn nick(&self, client: ClientId) -> Option<&str> {
        self.hub.conn(client).and_then(|c| c.nick.as_deref())
    }

    /// A connected client's address.
    pub fn peer_addr(&self, client: ClientId) -> Option<SocketAddr> {
        self.hub.conn(client).map(|c| c.peer)
    }

    /// The descriptors to watch now and for what, for a host that runs its
    /// own `poll`/`epoll` loop and calls `poll_once(Some(Duration::ZERO))`
    /// when one is ready or [`timeout`](Self::timeout) has passed. The set
    /// changes after every call that does I/O or queues output: ask again.
    pub fn fds(&mut self) -> Vec<WatchFd> {
        self.collect_interest();
        let mut out: Vec<WatchFd> = self
            .interest
            .read
            .iter()
            .map(|&fd| WatchFd {
                fd,
                read: true,
                write: false,
            })
            .collect();
        for &fd in &self.interest.write {
            match out.iter_mut().find(|w| w.fd == fd) {
                Some(w) => w.write = true,
                None => out.push(WatchFd {
                    fd,
                    read: false,
                    write: true,
                }),
            }
        }
        out
    }

    /// Longest the host may wait before calling `poll_once` again, or `None`
    /// for no limit (nothing is timed).
    pub fn timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        [
            self.hub.next_deadline(now),
            self.accept_paused_until,
            self.draining.iter().map(|d| d.until).min(),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now))
    }

    // ----- the round's steps -----

    fn collect_interest(&mut self) {
        let now = Instant::now();
        let Interest { read, write } = &mut self.interest;
        read.clear();
        write.clear();
        read.push(self.wake_rx.as_raw_fd());
        // A full event queue stops all reading: the host is behind, and
        // reading more would only grow the queue (backpressure through TCP).
        let may_read = self.hub.events().len() < self.cfg.max_events;
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
        }
        if let Some(listener) = &self.listener {
            if may_read && self.accept_paused_until.is_none() {
                read.push(listener.as_raw_fd());
            }
        }
        for (&id, socket) in &self.sockets {
            let Some(conn) = self.hub.conn(id) else { continue };
            let fd = socket.as_raw_fd();
            if may_read && conn.wants_input(now) {
                read.push(fd);
            }
            if !conn.out.is_empty() {
                write.push(fd);
            }
        }
        read.extend(self.draining.iter().map(|d| d.socket.as_raw_fd()));
    }

    fn accept_all(&mut self, now: Instant) {
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

    fn read_client(&mut self, id: ClientId, now: Instant) {
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

    fn write_client(&mut self, id: ClientId, now: Instant) {
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
    fn finish(&mut self, id: ClientId, now: Instant) {
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

    fn drain_closed(&mut self, fd: RawFd, now: Instant) {
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
fn drain(socket: &mut TcpStream, buf: &mut [u8]) -> bool {
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
