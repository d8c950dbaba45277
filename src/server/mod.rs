//! The event core: one `select()` over the listener, the wake pipe and every
//! client, moving bytes between sockets and the sans-IO [`Hub`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, FD_SETSIZE};
use crate::error::{Error, Result};
use crate::event::{ClientId, Event};
use crate::idmap::IdMap;
use crate::protocol::Hub;
use crate::sys::{self, Interest, Ready};

mod host;
mod sockets;

/// Most connections accepted in one round, so a connection storm cannot
/// starve the clients already there.
const ACCEPTS_PER_ROUND: usize = 64;
/// Slices gathered into one `sendmsg`.
const SLICES_PER_WRITE: usize = 128;
/// Largest buffer every read goes through. The buffer is `read_budget`
/// bytes up to this, so that a round takes a client's whole budget in one
/// `recv`: a 16 KiB-message stream to one client moved 28% more bytes per
/// second with 256 KiB reads than with 64 KiB ones going through a 64 KiB
/// buffer, and the default budget of 128 KiB in one read does better still.
/// Pages never read into are never touched.
const MAX_READ_CHUNK: usize = 1024 * 1024;
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
        let read_buf = vec![0; cfg.read_budget.min(MAX_READ_CHUNK)].into_boxed_slice();
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
            read_buf,
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
            self.hub.next_deadline(),
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
}
