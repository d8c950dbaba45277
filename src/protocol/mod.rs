//! Sessions and routing, with no I/O: bytes from clients in, frames into
//! output queues and events for the host out. The select loop in
//! `server.rs` moves bytes between this and the sockets; tests and fuzzers
//! drive it directly.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::conn::{Conn, Phase};
use crate::error::{Error, Result};
use crate::event::{ClientId, Event, EventKind, Reason};
use crate::frame::{self, WireFrame};
use crate::idmap::IdMap;
use crate::message::{self, Outgoing};
use crate::ratelimit::{Limiter, Verdict};
use crate::stats::Stats;

mod authority;
mod dispatch;
mod rooms;

/// What a server sends a client it is about to drop: an error code and an
/// optional sentence.
type Farewell<'a> = Option<(&'a str, Option<&'a str>)>;

/// Every client's session state and the routing between them.
#[derive(Debug)]
pub struct Hub {
    max_frame_bytes: usize,
    max_queue_bytes: usize,
    idle_timeout: Option<Duration>,
    handshake_timeout: Option<Duration>,
    close_linger: Duration,
    rate_limit_frames: Option<u64>,
    rate_limit_bytes: Option<u64>,
    rate_limit_grace: Duration,
    max_rooms_per_client: usize,
    max_members_per_room: usize,
    max_rooms: usize,
    approve_registrations: bool,
    approval_timeout: Duration,
    intercept_messages: bool,
    conns: IdMap<Conn>,
    /// Registered clients by case-folded nick.
    nicks: HashMap<String, ClientId>,
    /// Registered nicks as written, kept sorted for `welcome` and `users`.
    roster: BTreeSet<Arc<str>>,
    /// Nicks held by clients waiting for the host's approval.
    reserved: HashMap<String, ClientId>,
    rooms: rooms::Rooms,
    /// Messages waiting for the host's verdict, by ticket.
    held: HashMap<u64, authority::Held>,
    next_ticket: u64,
    events: VecDeque<Event>,
    /// Clients whose queue went from empty to not empty since the server
    /// last asked: the ones worth an immediate write attempt.
    dirty: Vec<ClientId>,
    /// Clients found over their queue cap while routing, dropped once the
    /// routing step is over (so a drop never happens mid-iteration).
    doomed: Vec<ClientId>,
    /// Reused list of recipients, so a broadcast allocates nothing per
    /// recipient.
    scratch: Vec<ClientId>,
    next_id: ClientId,
    next_ping_id: u64,
    /// No timer of any connection is due before this (a lower bound: timers
    /// only move later unless one of the calls that set them lowers it), so
    /// rounds before it skip the O(clients) timer scan.
    earliest: Option<Instant>,
    /// Connections in `Phase::Closing`, so that finding the finished ones
    /// does not scan every connection each round.
    closing: Vec<ClientId>,
    /// Shutting down: leaving clients get no presence frames about each other.
    quiet: bool,
    stats: Stats,
}

impl Hub {
    /// An empty hub with the limits of `cfg`.
    pub fn new(cfg: &Config) -> Self {
        Hub {
            max_frame_bytes: cfg.max_frame_bytes,
            max_queue_bytes: cfg.max_queue_bytes,
            idle_timeout: cfg.idle_timeout,
            handshake_timeout: cfg.handshake_timeout,
            close_linger: cfg.close_linger,
            rate_limit_frames: cfg.rate_limit_frames,
            rate_limit_bytes: cfg.rate_limit_bytes,
            rate_limit_grace: cfg.rate_limit_grace,
            max_rooms_per_client: cfg.max_rooms_per_client,
            max_members_per_room: cfg.max_members_per_room,
            max_rooms: cfg.max_rooms,
            approve_registrations: cfg.approve_registrations,
            approval_timeout: cfg.approval_timeout,
            intercept_messages: cfg.intercept_messages,
            conns: IdMap::default(),
            nicks: HashMap::new(),
            roster: BTreeSet::new(),
            reserved: HashMap::new(),
            rooms: rooms::Rooms::default(),
            held: HashMap::new(),
            next_ticket: 1,
            earliest: None,
            closing: Vec::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            doomed: Vec::new(),
            scratch: Vec::new(),
            next_id: 1,
            next_ping_id: 1,
            quiet: false,
            stats: Stats::default(),
        }
    }

    // ----- what the I/O layer calls -----

    /// A new connection; returns its id.
    pub fn connect(&mut self, peer: SocketAddr, now: Instant) -> ClientId {
        let id = self.next_id;
        self.next_id += 1;
        let limiter = Limiter::new(self.rate_limit_frames, self.rate_limit_bytes, now);
        self.conns
            .insert(id, Conn::new(peer, self.max_frame_bytes, limiter, now));
        self.stats.clients += 1;
        self.stats.accepted += 1;
        if let Some(t) = self.handshake_timeout {
            self.wake_at(now + t);
        }
        self.push_event(id, EventKind::Connected);
        id
    }

    /// Counts a connection refused at accept.
    pub fn refused(&mut self) {
        self.stats.refused += 1;
    }

    /// Bytes read from a client: handles every complete frame its rate
    /// limit allows; the rest waits in its decoder.
    pub fn receive(&mut self, id: ClientId, bytes: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        conn.last_heard = now;
        conn.pinged = false;
        if let Some(limiter) = &mut conn.limiter {
            limiter.took_bytes(bytes.len(), now);
        }
        self.stats.bytes_in += bytes.len() as u64;
        self.process_input(id, bytes, now);
    }

    /// Handles the complete frames waiting in a client's decoder, then those
    /// in `fresh` (just read), as many as its frame budget allows, then
    /// applies its rate-limit verdict. Frames in `fresh` are handled where
    /// they lie: only a partial frame at the end (or what the rate limit
    /// holds back) is copied into the decoder.
    fn process_input(&mut self, id: ClientId, fresh: &[u8], now: Instant) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        // The decoder is taken out for the loop so that handling a frame can
        // borrow the whole hub; `FrameDecoder::new` does not allocate.
        let mut decoder = std::mem::replace(&mut conn.decoder, frame::FrameDecoder::new(0));
        let max = decoder.max_payload();
        let mut fresh = fresh;
        if decoder.buffered() > 0 {
            // A partial frame is waiting: the new bytes continue it.
            decoder.push(fresh);
            fresh = &[];
        }
        loop {
            let waiting = decoder.has_frame() || !matches!(frame::split_frame(fresh, max), Ok(None));
            let Some(conn) = self.conns.get_mut(&id) else {
                break;
            };
            if !waiting || conn.is_closing() || !conn.limiter.as_mut().is_none_or(|l| l.try_frame(now)) {
                break;
            }
            let next = if decoder.has_frame() {
                decoder.next_frame()
            } else {
                frame::split_frame(fresh, max).map(|split| {
                    split.map(|(payload, used)| {
                        fresh = &fresh[used..];
                        payload
                    })
                })
            };
            match next {
                Ok(Some(payload)) => {
                    self.stats.frames_in += 1;
                    self.dispatch(id, payload, now);
                }
                Ok(None) => break,
                Err(err) => {
                    decoder.fail(err);
                    fresh = &[];
                    let message = match err {
                        frame::FrameError::Empty => "a frame length of 0 is not allowed".to_string(),
                        frame::FrameError::TooLarge(n) => {
                            format!("frame of {n} bytes is over the limit of {}", self.max_frame_bytes)
                        }
                    };
                    self.leave(id, Reason::ProtocolError, now, Some((err.code(), Some(&message))));
                    break;
                }
            }
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            if !conn.is_closing() {
                decoder.push(fresh);
            }
            conn.decoder = decoder;
        }
        self.police(id, now);
        self.drop_doomed(now);
    }

    /// Tells a client newly over its rate limit, and drops one that has
    /// stayed over it past the grace period.
    fn police(&mut self, id: ClientId, now: Instant) {
        let grace = self.rate_limit_grace;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        let Some(limiter) = &mut conn.limiter else { return };
        let verdict = limiter.check(now, grace);
        if let Some(until) = limiter.blocked_until(now) {
            // Its input resumes then: a round must come.
            self.wake_at(until);
        }
        match verdict {
            Verdict::Fine | Verdict::Throttled => {}
            Verdict::Warn => {
                let why = "over the rate limit: input paused until it recovers";
                self.reply_error(id, "rate_limited", None, Some(why));
            }
            Verdict::Drop => {
                let why = Some("over the rate limit for too long");
                self.leave(
                    id,
                    Reason::ProtocolError,
                    now,
                    Some((Reason::ProtocolError.as_str(), why)),
                );
            }
        }
    }

    /// The peer closed its side or the socket failed: the client leaves.
    pub fn peer_gone(&mut self, id: ClientId, now: Instant) {
        self.leave(id, Reason::Disconnect, now, None);
        self.drop_doomed(now);
    }

    /// Forgets a connection whose socket the server closed.
    pub fn remove(&mut self, id: ClientId, now: Instant) {
        self.peer_gone(id, now);
        if let Some(conn) = self.conns.remove(&id) {
            self.stats.unqueued(conn.out.queued_bytes());
            self.stats.clients -= 1;
            self.closing.retain(|&c| c != id);
        }
    }

    /// `written` bytes of a client's queue reached its socket.
    pub fn written(&mut self, id: ClientId, written: usize) {
        if let Some(conn) = self.conns.get_mut(&id) {
            let frames = conn.out.consume(written);
            self.stats.frames_out += frames as u64;
            self.stats.bytes_out += written as u64;
            self.stats.unqueued(written);
        }
    }

    /// Timers: handshake and idle timeouts, idle probes, and input held
    /// back by a rate limit that may now go on.
    pub fn tick(&mut self, now: Instant) {
        if self.earliest.is_none_or(|t| now < t) {
            return;
        }
        let mut resumable = std::mem::take(&mut self.scratch);
        resumable.clear();
        resumable.extend(self.conns.iter().filter_map(|(&id, conn)| {
            (conn.limiter.is_some() && conn.decoder.has_frame() && conn.wants_input(now)).then_some(id)
        }));
        for &id in &resumable {
            self.process_input(id, &[], now);
        }
        let mut expired = resumable;
        expired.clear();
        let mut unanswered = Vec::new();
        for (&id, conn) in &mut self.conns {
            match &conn.phase {
                Phase::AwaitingApproval { deadline, .. } => {
                    if now >= *deadline {
                        unanswered.push(id);
                    }
                }
                Phase::Handshake => {
                    if self
                        .handshake_timeout
                        .is_some_and(|t| now >= conn.connected_at + t)
                    {
                        expired.push(id);
                    }
                }
                Phase::Registered => {
                    let Some(idle) = self.idle_timeout else { continue };
                    if now >= conn.last_heard + idle {
                        expired.push(id);
                    } else if !conn.pinged && now >= conn.last_heard + idle / 2 {
                        conn.pinged = true;
                        let ping = frame::encode_json(&Outgoing::Ping {
                            id: self.next_ping_id,
                        });
                        self.next_ping_id += 1;
                        if conn.out.queued_bytes() + ping.len() <= self.max_queue_bytes {
                            if conn.out.is_empty() {
                                self.dirty.push(id);
                            }
                            self.stats.queued(ping.len());
                            conn.out.push(ping);
                        }
                    }
                }
                Phase::Closing { .. } => {}
            }
        }
        for &id in &expired {
            self.leave(id, Reason::Timeout, now, Some((Reason::Timeout.as_str(), None)));
        }
        for id in unanswered {
            let _ = self.reject(id, Some("the host did not answer in time"), now);
        }
        self.scratch = expired;
        self.drop_doomed(now);
        self.earliest = self.scan_deadlines(now);
    }

    /// Lowers the bound on the next timer.
    pub(super) fn wake_at(&mut self, at: Instant) {
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
    }

    /// The earliest instant at which [`tick`](Self::tick) has something to
    /// do, or a closing connection must be given up (possibly earlier: then
    /// a round finds nothing due and costs little).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// Every connection's next timer, exactly: O(clients).
    fn scan_deadlines(&self, now: Instant) -> Option<Instant> {
        let throttled = self
            .conns
            .values()
            .filter_map(|conn| conn.throttled_until(now))
            .min();
        let timers = self
            .conns
            .values()
            .filter_map(|conn| match &conn.phase {
                Phase::AwaitingApproval { deadline, .. } => Some(*deadline),
                Phase::Handshake => self.handshake_timeout.map(|t| conn.connected_at + t),
                Phase::Registered => self.idle_timeout.map(|idle| {
                    if conn.pinged {
                        conn.last_heard + idle
                    } else {
                        conn.last_heard + idle / 2
                    }
                }),
                Phase::Closing { deadline, .. } => Some(*deadline),
            })
            .min();
        throttled.into_iter().chain(timers).min()
    }

    /// Closing connections that are done: flushed, or out of time.
    pub fn finished(&self, now: Instant, out: &mut Vec<ClientId>) {
        out.extend(self.closing.iter().copied().filter(|id| {
            self.conns.get(id).is_some_and(|conn| match &conn.phase {
                Phase::Closing { deadline, .. } => conn.out.is_empty() || now >= *deadline,
                _ => false,
            })
        }));
    }

    /// Takes the list of clients whose queue became non-empty.
    pub fn take_dirty(&mut self, out: &mut Vec<ClientId>) {
        out.append(&mut self.dirty);
    }

    /// A client's state, for the I/O layer.
    pub fn conn(&self, id: ClientId) -> Option<&Conn> {
        self.conns.get(&id)
    }

    /// The events waiting for the host.
    pub fn events(&mut self) -> &mut VecDeque<Event> {
        &mut self.events
    }

    /// The counters.
    pub fn stats(&self) -> Stats {
        self.stats.clone()
    }

    // ----- what the host calls -----

    /// Queues one JSON object, as given, to one client.
    pub fn send(&mut self, id: ClientId, payload: &[u8], now: Instant) -> Result<()> {
        self.check_payload(payload)?;
        if self.conns.get(&id).is_none_or(Conn::is_closing) {
            return Err(Error::UnknownClient(id));
        }
        self.enqueue(id, frame::encode(payload));
        self.drop_doomed(now);
        Ok(())
    }

    /// Queues one JSON object to every registered client; returns how many
    /// queues took it.
    pub fn broadcast(&mut self, payload: &[u8], now: Instant) -> Result<usize> {
        self.check_payload(payload)?;
        let queued = self.fan_out(frame::encode(payload), None);
        self.drop_doomed(now);
        Ok(queued)
    }

    /// Disconnects a client with reason `kicked`; `message` goes to it in
    /// the error frame.
    pub fn kick(&mut self, id: ClientId, message: Option<&str>, now: Instant) -> Result<()> {
        if self.conns.get(&id).is_none_or(Conn::is_closing) {
            return Err(Error::UnknownClient(id));
        }
        self.leave(id, Reason::Kicked, now, Some((Reason::Kicked.as_str(), message)));
        self.drop_doomed(now);
        Ok(())
    }

    /// Tells every client the server is going away and starts closing them
    /// all, giving up at `deadline`.
    pub fn shutdown(&mut self, now: Instant, deadline: Instant) {
        self.quiet = true;
        let ids: Vec<ClientId> = self.conns.keys().copied().collect();
        for id in ids {
            self.leave(id, Reason::Shutdown, now, Some((Reason::Shutdown.as_str(), None)));
            if let Some(Phase::Closing { deadline: d, .. }) = self.conns.get_mut(&id).map(|c| &mut c.phase) {
                *d = deadline;
            }
            self.wake_at(deadline);
        }
        self.doomed.clear();
    }

    // ----- routing -----

    fn check_payload(&self, payload: &[u8]) -> Result<()> {
        if payload.len() > self.max_frame_bytes {
            return Err(Error::PayloadTooLarge {
                len: payload.len(),
                max: self.max_frame_bytes,
            });
        }
        if !message::looks_like_object(payload) {
            return Err(Error::NotJsonObject("it does not start with '{'".into()));
        }
        // serde_json does not check UTF-8 in what it skips, and clients
        // are promised UTF-8 JSON.
        std::str::from_utf8(payload).map_err(|e| Error::NotJsonObject(e.to_string()))?;
        serde_json::from_slice::<serde::de::IgnoredAny>(payload)
            .map_err(|e| Error::NotJsonObject(e.to_string()))?;
        // Every payload a client gets has a string `type` (PROTOCOL.md);
        // the host's too (fuzzing finding F2).
        #[derive(serde::Deserialize)]
        struct Typed<'a> {
            #[serde(rename = "type", borrow)]
            kind: Option<&'a serde_json::value::RawValue>,
        }
        let typed: Typed<'_> =
            serde_json::from_slice(payload).map_err(|e| Error::NotJsonObject(e.to_string()))?;
        if !typed.kind.is_some_and(|k| k.get().starts_with('"')) {
            return Err(Error::NotJsonObject("it has no string \"type\"".into()));
        }
        // Clients parse what the host sends; most JSON parsers (serde_json
        // among them) refuse deeper nesting than this.
        if !message::nesting_within(payload, message::MAX_DEPTH) {
            return Err(Error::NotJsonObject(format!(
                "nested more than {} levels deep",
                message::MAX_DEPTH
            )));
        }
        Ok(())
    }

    fn reply_error(&mut self, id: ClientId, code: &str, to: Option<&str>, message: Option<&str>) {
        let frame = frame::encode_json(&Outgoing::Error {
            code,
            to,
            room: None,
            message,
        });
        self.enqueue(id, frame);
    }

    /// Queues `frame` to every registered client but `except`; returns how
    /// many took it.
    fn fan_out(&mut self, frame: WireFrame, except: Option<ClientId>) -> usize {
        let mut recipients = std::mem::take(&mut self.scratch);
        recipients.clear();
        recipients.extend(self.nicks.values().copied().filter(|&r| Some(r) != except));
        let mut queued = 0;
        for &r in &recipients {
            queued += usize::from(self.enqueue(r, frame.clone()));
        }
        self.scratch = recipients;
        queued
    }

    /// Appends a frame to a client's queue; a client that would pass its cap
    /// is marked for dropping instead.
    fn enqueue(&mut self, id: ClientId, frame: WireFrame) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        if conn.is_closing() {
            return false;
        }
        if conn.out.queued_bytes() + frame.len() > self.max_queue_bytes {
            self.doomed.push(id);
            return false;
        }
        if conn.out.is_empty() {
            self.dirty.push(id);
        }
        self.stats.queued(frame.len());
        conn.out.push(frame);
        true
    }

    fn drop_doomed(&mut self, now: Instant) {
        while let Some(id) = self.doomed.pop() {
            let code = Reason::SlowConsumer.as_str();
            self.leave(
                id,
                Reason::SlowConsumer,
                now,
                Some((code, Some("output queue over max_queue_bytes"))),
            );
        }
    }

    /// The client is gone for everyone else: presence, event, and its
    /// connection only flushes from now on. Idempotent.
    fn leave(&mut self, id: ClientId, reason: Reason, now: Instant, farewell: Farewell<'_>) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.is_closing() {
            return;
        }
        if let Some((code, message)) = farewell {
            let bye = frame::encode_json(&Outgoing::Error {
                code,
                to: None,
                room: None,
                message,
            });
            if conn.out.queued_bytes() + bye.len() > self.max_queue_bytes {
                // Too much is waiting (a slow consumer): what was not started
                // is dropped so that the reason still gets through.
                let dropped = conn.out.drop_unstarted();
                self.stats.unqueued(dropped);
            }
            if conn.out.is_empty() {
                self.dirty.push(id);
            }
            self.stats.queued(bye.len());
            conn.out.push(bye);
        }
        let was_waiting = matches!(conn.phase, Phase::AwaitingApproval { .. });
        let rooms = std::mem::take(&mut conn.rooms);
        if was_waiting {
            self.end_approval(id);
        }
        for key in &rooms {
            self.part(id, key, false);
        }
        if !self.held.is_empty() {
            self.held.retain(|_, h| h.sender != id);
        }
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.phase = Phase::Closing {
            reason,
            deadline: now + self.close_linger,
        };
        self.stats.disconnects[reason.index()] += 1;
        if let Some(nick) = conn.nick.clone() {
            self.nicks.remove(&message::fold(&nick));
            self.roster.remove(&nick);
            self.stats.registered -= 1;
            if !self.quiet {
                let offline = Outgoing::Presence {
                    nick: &nick,
                    room: None,
                    state: "offline",
                    reason: Some(reason.as_str()),
                };
                self.fan_out(frame::encode_json(&offline), None);
            }
        }
        self.closing.push(id);
        self.wake_at(now + self.close_linger);
        self.push_event(id, EventKind::Disconnected { reason });
    }

    fn push_event(&mut self, id: ClientId, kind: EventKind) {
        if let Some(conn) = self.conns.get(&id) {
            let nick = match &conn.phase {
                Phase::AwaitingApproval { nick, .. } => Some(nick.clone()),
                _ => conn.nick.clone(),
            };
            let user_data = conn.user_data;
            self.events.push_back(Event {
                client: id,
                peer: conn.peer,
                nick,
                user_data,
                kind,
            });
        }
    }
}
