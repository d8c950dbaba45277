//! The protocol core, with no I/O: payloads from clients in, payloads into
//! output queues and events for the host out, and timers. The select loop
//! (`server/`) moves bytes between sockets and this through the narrow API
//! below, each transport framing payloads its own way; the in-memory pipe
//! of `testing` and the fuzzers drive it without sockets.
//!
//! The core is a few parts with one job each, and the [`Core`] that joins
//! them: the nick [`registry`], the [`rooms`], host [`authority`],
//! [`delivery`] (the queue cap rule and the fan-out), [`timers`], each
//! client's [`conn`] state with its output [`queue`], and for resumable
//! sessions (protocol 1.2) their [`history`], [`parking`] and [`resume`].
//!
//! The API the loop uses:
//! - connections: [`Core::connect`], [`Core::peer_gone`], [`Core::remove`];
//! - input: [`Core::heard`], [`Core::take_input`] (payloads from a
//!   transport's [`PayloadSource`]), [`Core::wants_input`],
//!   [`Core::read_allowance`];
//! - interest: [`Core::wants`];
//! - output: [`Core::take_dirty`], [`Core::output`], [`Core::write_out`],
//!   [`Core::end_round`], [`Core::finished`];
//! - time: [`Core::tick`], [`Core::next_deadline`];
//! - the host's calls (`host.rs`), events and counters.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use crate::config::Config;
use crate::event::{ClientId, Event, EventKind, Reason, Via};
use crate::idmap::IdMap;
use crate::stats::Stats;

mod authority;
mod cluster;
mod cluster_events;
mod commands;
mod conn;
mod delivery;
mod dispatch;
mod history;
mod host;
mod input;
mod parking;
mod queue;
mod ratelimit;
mod registry;
mod resume;
mod rooms;
mod round_log;
mod session;
mod timers;

pub use input::{Next, PayloadSource, Violation};
pub use queue::{Chunk, Output, FRAME_OVERHEAD};
pub use round_log::LogFraming;

use authority::Authority;
use conn::Conn;
use conn::Phase;
use delivery::Delivery;
use parking::Resumption;
use ratelimit::RateLimits;
use registry::Registry;
use rooms::Rooms;
use timers::Timers;

/// How far one write got into a client's queue (see [`Core::write_out`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Payloads written whole from the queue's front.
    pub whole: usize,
    /// How far into the next one, in the transport's own units (its
    /// header's bytes, then the payload's).
    pub head_written: usize,
    /// Bytes that went out on the socket.
    pub wire_bytes: usize,
}

/// What a client's socket is worth watching for (see [`Core::wants`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wants {
    /// It may be read: not closing, not held back by its rate limit. (A
    /// client whose input is paused because it is far behind in reading
    /// is still read until its transport holds a complete frame, so that
    /// its FIN is seen; see [`Core::wants_input`].)
    pub read: bool,
    /// Something waits to be written to it: in its queue, or sent to
    /// everyone since its queue last took from the round's log (which its
    /// next write, [`Core::settle`] or the round's end moves into its
    /// queue).
    pub write: bool,
}

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
    resumption: Resumption,
    /// Largest payload the host may send.
    max_frame_bytes: usize,
    events: VecDeque<Event>,
    stats: Stats,
    next_id: ClientId,
    /// Shutting down: leaving clients get no presence frames about each
    /// other.
    quiet: bool,
    /// The cluster, when this core is one node of one.
    cluster: Option<Box<cluster::Cluster>>,
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
            resumption: Resumption::new(cfg),
            max_frame_bytes: cfg.max_frame_bytes,
            events: VecDeque::new(),
            stats: Stats::default(),
            next_id: 1,
            quiet: false,
            cluster: None,
        }
    }

    /// What waits to be written to `id`, for its transport.
    pub fn output(&self, id: ClientId) -> Option<Output<'_>> {
        let logs = self.delivery.logs();
        self.conns.get(&id).map(|c| Output::new(&c.out, logs))
    }

    /// What the socket of `id` is worth watching for now, in one look at
    /// the client (the loop asks for every client every round).
    pub fn wants(&self, id: ClientId, now: Instant) -> Wants {
        self.conns.get(&id).map_or(Wants::default(), |c| Wants {
            read: !c.is_closing() && c.throttled_until(now).is_none(),
            write: !c.out.is_empty() || self.delivery.has_pending(c),
        })
    }

    /// Lends the transport of `id` what waits to be written to it, and
    /// takes back how far its write got (`Some`: that many payloads off
    /// the queue's front), in one look at the client: the loop writes to
    /// every client every round, and each look is a cache miss or two
    /// once the kernel's work for the write has evicted the client.
    /// `None` if `id` is not connected.
    pub fn write_out<R>(
        &mut self,
        id: ClientId,
        write: impl FnOnce(Output<'_>) -> io::Result<(Option<Written>, R)>,
    ) -> Option<io::Result<R>> {
        let conn = self.conns.get_mut(&id)?;
        let had_runs = self.delivery.catch_up_to_write(conn);
        let logs = self.delivery.logs();
        let outcome = write(Output::new(&conn.out, logs));
        if let Ok((Some(wrote), _)) = &outcome {
            let freed = match &mut conn.session {
                // A resumable session counts what was written whole and
                // keeps it for a replay (not a parked one's connection:
                // what it writes is the connection's own).
                Some(session) if matches!(conn.phase, Phase::Registered) => {
                    let freed = conn.out.advance_with(
                        logs,
                        wrote.whole,
                        wrote.head_written,
                        Some(|p| session.wrote(p)),
                    );
                    session.allowance = session.allowance.saturating_sub(freed);
                    freed
                }
                _ => conn.out.advance(logs, wrote.whole, wrote.head_written),
            };
            self.delivery.unqueued(freed);
            self.stats.frames_out += wrote.whole as u64;
            self.stats.bytes_out += wrote.wire_bytes as u64;
        }
        self.delivery.wrote(id, conn, had_runs);
        Some(outcome.map(|(_, result)| result))
    }

    /// The round is over (its writes done): what the sockets did not take
    /// of the round's fan-out becomes entries of each queue's own, and the
    /// round's log is cleared.
    pub fn end_round(&mut self) {
        self.delivery.end_round(&mut self.conns);
    }

    /// What was sent to everyone between rounds (by the host) goes into
    /// the queues it is for, so that the server's wait for sockets covers
    /// theirs.
    pub fn settle(&mut self) {
        self.delivery.catch_up_all(&mut self.conns);
    }

    /// Moves the clients worth a write attempt now into `out`: those whose
    /// queue became non-empty, and every follower of the log for everyone
    /// when something was logged that not all of them took (each takes it
    /// when written, in [`write_out`](Self::write_out)).
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

    /// Whether `id` is connected and not closing (a parked session is
    /// not: its connection ended).
    pub fn is_open(&self, id: ClientId) -> bool {
        self.conns.get(&id).is_some_and(|c| !c.is_closing())
    }

    /// Whether `id` is a parked session, waiting for a resume.
    pub fn is_parked(&self, id: ClientId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.is_parked())
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

    /// How a connected client is connected.
    pub fn via(&self, id: ClientId) -> Option<Via> {
        self.conns.get(&id).map(|c| c.via)
    }

    /// The events waiting for the host.
    pub fn events(&mut self) -> &mut VecDeque<Event> {
        &mut self.events
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        let (queued, peak) = self.delivery.queued();
        let retained: usize = self
            .conns
            .values()
            .filter_map(|c| c.session.as_ref())
            .map(|s| s.retained_bytes())
            .sum();
        let stats = Stats {
            queued_bytes: queued,
            peak_queued_bytes: peak,
            parked: self.resumption.parked() as u64,
            retained_bytes: retained as u64,
            ..self.stats.clone()
        };
        match &self.cluster {
            Some(c) => stats.with_cluster(&c.bp.stats()),
            None => stats,
        }
    }

    /// Queues an event about `id`, with its nick and user data as they are
    /// now.
    fn push_event(&mut self, id: ClientId, kind: EventKind) {
        if let Some(conn) = self.conns.get(&id) {
            self.events.push_back(Event {
                client: id,
                peer: conn.peer,
                via: conn.via,
                nick: conn.event_nick(),
                user_data: conn.user_data,
                kind,
            });
        }
    }
}
