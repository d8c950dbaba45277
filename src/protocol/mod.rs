//! The protocol core, with no I/O: payloads from clients in, payloads into
//! output queues and events for the host out, and timers. The select loop
//! (`server/`) moves bytes between sockets and this through the narrow API
//! below, each transport framing payloads its own way; the in-memory pipe
//! of `testing` and the fuzzers drive it without sockets.
//!
//! The core is a few parts with one job each, and the [`Core`] that joins
//! them: the nick [`registry`], the [`rooms`], host [`authority`],
//! [`delivery`] (the queue cap rule and the fan-out), [`timers`], and each
//! client's [`conn`] state with its output [`queue`].
//!
//! The API the loop uses:
//! - connections: [`Core::connect`], [`Core::peer_gone`], [`Core::remove`];
//! - input: [`Core::heard`], [`Core::take_input`] (payloads from a
//!   transport's [`PayloadSource`]), [`Core::wants_input`],
//!   [`Core::read_allowance`];
//! - output: [`Core::take_dirty`], [`Core::output`], [`Core::written`],
//!   [`Core::finished`];
//! - time: [`Core::tick`], [`Core::next_deadline`];
//! - the host's calls (`host.rs`), events and counters.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::event::{ClientId, Event, EventKind, Reason};
use crate::idmap::IdMap;
use crate::stats::Stats;

mod authority;
mod conn;
mod delivery;
mod dispatch;
mod host;
mod input;
mod queue;
mod ratelimit;
mod registry;
mod rooms;
mod session;
mod timers;

pub use input::{PayloadSource, Violation};
pub use queue::OutQueue;

use authority::Authority;
use conn::Conn;
use delivery::Delivery;
use ratelimit::RateLimits;
use registry::Registry;
use rooms::Rooms;
use timers::Timers;

/// Every client's session and the routing between them.
#[derive(Debug)]
pub struct Core {
    conns: IdMap<Conn>,
    registry: Registry,
    rooms: Rooms,
    authority: Authority,
    delivery: Delivery,
    timers: Timers,
    rate_limits: RateLimits,
    /// Largest payload the host may send.
    max_frame_bytes: usize,
    events: VecDeque<Event>,
    stats: Stats,
    next_id: ClientId,
    /// Shutting down: leaving clients get no presence frames about each
    /// other.
    quiet: bool,
}

impl Core {
    /// An empty core with the limits of `cfg`; each part reads the settings
    /// it enforces.
    pub fn new(cfg: &Config) -> Self {
        Core {
            conns: IdMap::default(),
            registry: Registry::default(),
            rooms: Rooms::new(cfg),
            authority: Authority::new(cfg),
            delivery: Delivery::new(cfg),
            timers: Timers::new(cfg),
            rate_limits: RateLimits::new(cfg),
            max_frame_bytes: cfg.max_frame_bytes,
            events: VecDeque::new(),
            stats: Stats::default(),
            next_id: 1,
            quiet: false,
        }
    }

    /// What waits to be written to `id`, for its transport.
    pub fn output(&self, id: ClientId) -> Option<&OutQueue> {
        self.conns.get(&id).map(|c| &c.out)
    }

    /// The transport of `id` wrote `whole` payloads from the front of its
    /// queue and is `head_written` (its own units) into the next;
    /// `wire_bytes` went out on the socket.
    pub fn written(&mut self, id: ClientId, whole: usize, head_written: usize, wire_bytes: usize) {
        if let Some(conn) = self.conns.get_mut(&id) {
            let freed = conn.out.advance(whole, head_written);
            self.delivery.unqueued(freed);
            self.stats.frames_out += whole as u64;
            self.stats.bytes_out += wire_bytes as u64;
        }
    }

    /// Moves the clients whose queue became non-empty into `out`: the ones
    /// worth a write attempt now.
    pub fn take_dirty(&mut self, out: &mut Vec<ClientId>) {
        self.delivery.take_dirty(out);
    }

    /// Closing connections that are done (flushed, or out of time), with
    /// why they closed, for the server to say its transport's goodbye and
    /// close them.
    pub fn finished(&self, now: Instant, out: &mut Vec<(ClientId, Reason)>) {
        self.timers.finished(&self.conns, now, out);
    }

    /// The earliest instant at which [`tick`](Self::tick) may have
    /// something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Whether `id` is connected and not closing.
    pub fn is_open(&self, id: ClientId) -> bool {
        self.conns.get(&id).is_some_and(|c| !c.is_closing())
    }

    /// A connected client's nick, once registered.
    pub fn nick(&self, id: ClientId) -> Option<&str> {
        self.conns.get(&id).and_then(|c| c.nick.as_deref())
    }

    /// The registered client with this nick, compared case-insensitively.
    pub fn find_client(&self, nick: &str) -> Option<ClientId> {
        self.registry.find(nick)
    }

    /// A connected client's address.
    pub fn peer(&self, id: ClientId) -> Option<SocketAddr> {
        self.conns.get(&id).map(|c| c.peer)
    }

    /// The events waiting for the host.
    pub fn events(&mut self) -> &mut VecDeque<Event> {
        &mut self.events
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let (queued, peak) = self.delivery.queued();
        Stats {
            queued_bytes: queued,
            peak_queued_bytes: peak,
            ..self.stats.clone()
        }
    }

    /// Queues an event about `id`, with its nick and user data as they are
    /// now.
    fn push_event(&mut self, id: ClientId, kind: EventKind) {
        if let Some(conn) = self.conns.get(&id) {
            self.events.push_back(Event {
                client: id,
                peer: conn.peer,
                nick: conn.event_nick(),
                user_data: conn.user_data,
                kind,
            });
        }
    }
}
