//! The event core: one `select()` over a table of slots (the wake pipe,
//! listeners, clients of every transport, connections being drained),
//! moving bytes between sockets, transports and the sans-IO protocol
//! [`Core`].

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Config, FD_SETSIZE};
use crate::error::{Error, Result};
use crate::event::{ClientId, Event, Reason};
use crate::protocol::Core;
use crate::sys::{self, Interest, Ready};

mod accept;
mod client;
mod cluster;
mod drain;
mod host;
mod pending;
mod slots;

use slots::{Listener, ListenerKind, Slot, Slots};

/// Largest buffer every read goes through. The buffer is `read_budget`
/// bytes up to this, so that a round takes a client's whole budget in one
/// `recv`: a 16 KiB-message stream to one client moved 28% more bytes per
/// second with 256 KiB reads than with 64 KiB ones going through a 64 KiB
/// buffer, and the default budget of 128 KiB in one read does better still.
/// Pages never read into are never touched.
const MAX_READ_CHUNK: usize = 1024 * 1024;

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
    local_addr: SocketAddr,
    /// The WebSocket listener's address, when there is one.
    ws_addr: Option<SocketAddr>,
    /// The TLS configuration of every listener, when TLS is on.
    tls: Option<crate::tls::TlsConfig>,
    /// The WebSocket upgrade rules (path, origins) and the page.
    ws: crate::codec::ws::HandshakeConfig,
    core: Core,
    slots: Slots,
    /// Open connections per source address, for `max_per_ip`.
    per_ip: HashMap<IpAddr, usize>,
    /// Clients whose transport holds decoded input the core did not take
    /// yet (a rate limit): offered again every round.
    pending_input: Vec<ClientId>,
    wake_rx: OwnedFd,
    waker: Waker,
    /// The wait's deadline, watched as a descriptor (see `sys::Alarm`).
    alarm: sys::Alarm,
    read_buf: Box<[u8]>,
    /// Bytes read and discarded from draining connections, for `Stats`.
    drained_bytes: u64,
    accept_paused_until: Option<Instant>,
    shutting_down: bool,
    /// The cluster's Redis sockets, when this server is a node of one.
    redis: Option<cluster::RedisSockets>,
    /// A shutdown waits for the cluster's goodbye until then.
    leave_by: Option<Instant>,
    // Buffers reused every round.
    interest: Interest,
    ready: Ready,
    ids: Vec<ClientId>,
    done: Vec<(ClientId, Reason)>,
}

impl Server {
    /// Binds the listeners and makes an idle server.
    pub fn new(cfg: Config) -> Result<Server> {
        cfg.validate()?;
        let tls = match &cfg.tls {
            Some(pem) => Some(crate::tls::TlsConfig::from_pem(
                &pem.cert_chain,
                &pem.private_key,
            )?),
            None => None,
        };
        let backplane = cluster::backplane(&cfg, Instant::now())?;
        let ws = crate::codec::ws::HandshakeConfig::new(&cfg.ws_path)
            .map_err(|e| Error::InvalidConfig(format!("ws_path: {}", e.0)))?;
        let ws = match &cfg.ws_allowed_origins {
            Some(origins) => ws.with_origins(origins),
            None => ws,
        };
        let (wake_rx, wake_tx) = sys::wake_pipe()?;
        let mut slots = Slots::new();
        let mut listen = |addr: SocketAddr, kind: ListenerKind| -> Result<SocketAddr> {
            let socket = sys::listen(addr, cfg.reuse_port).map_err(|source| Error::Bind { addr, source })?;
            let fd = socket.as_raw_fd();
            if !sys::selectable(fd) {
                return Err(Error::FdTooHigh {
                    fd,
                    limit: FD_SETSIZE,
                });
            }
            let bound = socket.local_addr()?;
            slots.insert(fd, Slot::Listener(Listener { socket, kind }));
            Ok(bound)
        };
        let local_addr = listen(cfg.listen_addr, ListenerKind::Plain)?;
        let ws_addr = cfg
            .ws_listen_addr
            .map(|addr| listen(addr, ListenerKind::WebSocket))
            .transpose()?;
        if !sys::selectable(wake_rx.as_raw_fd()) {
            return Err(Error::FdTooHigh {
                fd: wake_rx.as_raw_fd(),
                limit: FD_SETSIZE,
            });
        }
        slots.insert(wake_rx.as_raw_fd(), Slot::Wake);
        let alarm = sys::Alarm::new()?;
        if !sys::selectable(alarm.fd()) {
            return Err(Error::FdTooHigh {
                fd: alarm.fd(),
                limit: FD_SETSIZE,
            });
        }
        slots.insert(alarm.fd(), Slot::Alarm);
        let read_buf = vec![0; cfg.read_budget.min(MAX_READ_CHUNK)].into_boxed_slice();
        log::info!("listening on {local_addr} (at most {} clients)", cfg.max_clients);
        let mut core = Core::new(&cfg);
        let redis = backplane.map(|bp| {
            core.set_backplane(bp);
            cluster::RedisSockets::default()
        });
        Ok(Server {
            core,
            redis,
            leave_by: None,
            cfg,
            local_addr,
            ws_addr,
            tls,
            ws,
            slots,
            per_ip: HashMap::new(),
            pending_input: Vec::new(),
            wake_rx,
            waker: Waker {
                fd: Arc::new(wake_tx),
            },
            alarm,
            read_buf,
            drained_bytes: 0,
            accept_paused_until: None,
            shutting_down: false,
            interest: Interest::default(),
            ready: Ready::default(),
            ids: Vec::new(),
            done: Vec::new(),
        })
    }

    /// The WebSocket listener's address (the real port when 0 was asked),
    /// if there is one.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
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
        if self.redis.is_some() {
            self.redis_prepare(Instant::now());
        }
        self.core.settle();
        self.collect_interest();
        let mut ready = std::mem::take(&mut self.ready);
        let waited = self
            .select_timeout(wait)
            .and_then(|timeout| sys::wait(&self.interest, timeout, &mut ready));
        let now = Instant::now();
        if let Err(e) = waited {
            self.ready = ready;
            return Err(e.into());
        }
        for &fd in &ready.read {
            match self.slots.get_mut(fd) {
                Slot::Wake => sys::drain_pipe(self.wake_rx.as_fd()),
                Slot::Alarm => self.alarm.rang(),
                Slot::Listener(l) => {
                    let kind = l.kind;
                    self.accept_all(fd, kind, now);
                }
                Slot::Client(_) => self.read_client(fd, now),
                Slot::Pending(_) => self.read_pending(fd, now),
                Slot::Draining(_) => self.drain_closed(fd),
                Slot::Redis(which) => {
                    let which = *which;
                    self.redis_ready(which, true, false, now);
                }
                Slot::Free => {}
            }
        }
        self.resume_input(now);
        self.core.tick(now);
        self.core.pump_cluster(now);
        // Write to every client that has new output now rather than after
        // another select(): most sockets are writable, and this saves a
        // round and its system call.
        let mut ids = std::mem::take(&mut self.ids);
        ids.clear();
        for &fd in &ready.write {
            match self.slots.get_mut(fd) {
                Slot::Client(c) => {
                    c.blocked = false;
                    ids.push(c.id);
                }
                Slot::Pending(_) => self.write_pending(fd, now),
                Slot::Draining(_) => self.write_goodbye(fd),
                Slot::Redis(which) => {
                    let which = *which;
                    self.redis_ready(which, false, true, now);
                }
                _ => {}
            }
        }
        self.core.take_dirty(&mut ids);
        for &id in &ids {
            self.write_client(id, now);
        }
        self.ids = ids;
        self.core.end_round();
        let mut done = std::mem::take(&mut self.done);
        done.clear();
        self.core.finished(now, &mut done);
        for &(id, reason) in &done {
            self.finish(id, reason, now);
        }
        self.done = done;
        self.expire_drains(Some(now));
        self.expire_pending(now);
        if self.redis.is_some() {
            self.redis_flush(now);
        }
        self.ready = ready;
        Ok(self.core.events().len())
    }

    /// What `select()` itself is to wait, for a wait of `wait`: no limit
    /// once the alarm is set for the deadline (set anew only when the
    /// deadline moved earlier), or zero for a poll (which arms no timer).
    /// A wait past what `Instant` can hold is no limit.
    fn select_timeout(&mut self, wait: Option<Duration>) -> io::Result<Option<Duration>> {
        match wait {
            Some(wait) if !wait.is_zero() => {
                let now = Instant::now();
                if let Some(deadline) = now.checked_add(wait) {
                    self.alarm.ring_by(deadline, now)?;
                }
                Ok(None)
            }
            other => Ok(other),
        }
    }

    /// The next event, oldest first.
    pub fn next_event(&mut self) -> Option<Event> {
        self.core.events().pop_front()
    }

    /// Takes every waiting event.
    pub fn events(&mut self) -> impl Iterator<Item = Event> + '_ {
        self.core.events().drain(..)
    }

    /// How many events wait for the host.
    pub fn pending_events(&mut self) -> usize {
        self.core.events().len()
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
            log::info!(
                "shutting down: telling {} clients, closing in at most {} ms",
                self.core.stats().clients,
                deadline.as_millis()
            );
            self.shutting_down = true;
            self.slots.close_listeners();
            let now = Instant::now();
            // Other nodes see every local user go offline (`shutdown`) at
            // once, before the clients are told.
            self.core.leave_cluster("shutdown", now);
            self.leave_by = Some(now + deadline);
            self.core.shutdown(now, now + deadline);
            self.expire_drains(None);
            self.slots.clear_pending();
        }
        // The goodbye was answered, or cannot be sent now (Redis away: the
        // other nodes find this one gone within node_timeout instead).
        let cluster_done = self
            .core
            .backplane()
            .is_none_or(|bp| bp.is_idle() || bp.stats().commands.phase != crate::cluster::Phase::Ready)
            || self.leave_by.is_some_and(|t| Instant::now() >= t);
        self.slots.no_clients() && cluster_done
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
        if self.redis.is_some() {
            self.redis_prepare(Instant::now());
        }
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
        // Input held back (its client was far behind) that the core takes
        // now that the output was written: no socket will say so, and the
        // client is not read until it is taken.
        if self
            .pending_input
            .iter()
            .any(|&id| self.core.wants_input(id, now))
        {
            return Some(Duration::ZERO);
        }
        [
            self.core.next_deadline(),
            self.accept_paused_until,
            self.slots.next_drain_end(),
            self.slots.next_pending_deadline(),
            self.core.backplane().and_then(|bp| bp.next_deadline()),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|at| at.saturating_duration_since(now))
    }

    /// Every slot's interest: the wake pipe and draining connections
    /// always read; listeners and clients read unless the host is behind
    /// (a full event queue stops all reading: reading more would only grow
    /// it, so TCP pushes back) or, for a client, the core holds it back;
    /// clients with queued output write.
    fn collect_interest(&mut self) {
        let now = Instant::now();
        self.interest.read.clear();
        self.interest.write.clear();
        let may_read = self.core.events().len() < self.cfg.max_events;
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
        }
        let accepting = may_read && self.accept_paused_until.is_none();
        let redis = self.redis_interest();
        let Interest { read, write } = &mut self.interest;
        for (fd, slot) in self.slots.iter() {
            match slot {
                // Never held back: Redis drops a subscriber that falls
                // behind, and replies have deadlines.
                Slot::Redis(_) => {
                    if let Some((_, r, w)) = redis.iter().flatten().find(|(f, _, _)| *f == fd) {
                        if *r {
                            read.push(fd);
                        }
                        if *w {
                            write.push(fd);
                        }
                    }
                }
                Slot::Wake | Slot::Alarm => read.push(fd),
                Slot::Draining(d) => {
                    read.push(fd);
                    if !d.goodbye.is_empty() {
                        write.push(fd);
                    }
                }
                Slot::Listener(_) => {
                    if accepting {
                        read.push(fd);
                    }
                }
                Slot::Client(c) => {
                    // A client is read only while its transport holds no
                    // whole frame the core has not taken: one whose input
                    // is paused (far behind, or rate-limited) is still read
                    // until then, so its FIN is seen, and no further, so
                    // what it sends waits in its own TCP window, not here
                    // (reading while the core took a frame a round would
                    // buffer all of a flood). Held frames are offered again
                    // every round (`resume_input`).
                    let takes = !c.transport.has_pending_input();
                    let wants = self.core.wants(c.id, now);
                    if may_read && takes && wants.read {
                        read.push(fd);
                    }
                    if wants.write || c.transport.wants_write() {
                        write.push(fd);
                    }
                }
                Slot::Pending(p) => {
                    if may_read {
                        read.push(fd);
                    }
                    if p.wants_write() {
                        write.push(fd);
                    }
                }
                Slot::Free => {}
            }
        }
    }

    /// Offers the core the input that transports decoded but it did not
    /// take (a rate limit held it back), now that it may.
    fn resume_input(&mut self, now: Instant) {
        if self.pending_input.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending_input);
        pending.retain(|&id| {
            let Some(client) = self.slots.client_mut(id) else {
                return false;
            };
            if self.core.wants_input(id, now) {
                client.transport.resume(&mut self.core, id, now);
            }
            client.transport.has_pending_input() && self.core.is_open(id)
        });
        self.pending_input = pending;
    }
}
