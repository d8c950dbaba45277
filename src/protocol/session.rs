//! A client's life in the core: it connects, registers, is timed, and
//! leaves, with what everyone else is told at each step.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use super::conn::{Conn, Phase};
use super::delivery::Kind;
use super::history::{Session, Token};
use super::timers::Due;
use super::Core;
use crate::code::Code;
use crate::event::{ClientId, EventKind, Reason, Via};
use crate::message::{encode_json, error_payload, Outgoing};

/// What the server sends a client it is about to drop: an error code and
/// an optional sentence.
pub(super) type Farewell<'a> = Option<(Code, Option<&'a str>)>;

impl Core {
    /// A new connection; returns its id (never 0, never reused).
    pub fn connect(&mut self, peer: SocketAddr, via: Via, now: Instant) -> ClientId {
        let id = self.next_id;
        self.next_id += 1;
        self.conns
            .insert(id, Conn::new(peer, via, self.rate_limits.limiter(now), now));
        self.stats.clients += 1;
        self.stats.accepted += 1;
        self.timers.connected(now);
        self.push_event(id, EventKind::Connected);
        id
    }

    /// Counts a connection refused at accept.
    pub fn refused(&mut self) {
        self.stats.refused += 1;
    }

    /// Counts a connection that failed or timed out in its TLS handshake
    /// or WebSocket upgrade, before it was a client.
    pub fn handshake_failed(&mut self) {
        self.stats.failed_handshakes += 1;
    }

    /// The peer closed its side or the socket failed: the client leaves.
    pub fn peer_gone(&mut self, id: ClientId, now: Instant) {
        self.leave(id, Reason::Disconnect, now, None);
        self.drop_doomed(now);
    }

    /// Forgets a connection whose socket the server closed. A parked
    /// session outlives it: only its connection's side is dropped.
    pub fn remove(&mut self, id: ClientId, now: Instant) {
        self.peer_gone(id, now);
        if self.detach_parked(id) {
            return;
        }
        if let Some(conn) = self.conns.remove(&id) {
            self.delivery.unqueued(conn.out.counted_bytes());
            self.stats.clients -= 1;
            self.timers.forget(id);
        }
    }

    /// Timers: handshake and idle timeouts, idle probes, approval
    /// deadlines.
    pub fn tick(&mut self, now: Instant) {
        if !self.timers.is_due(now) {
            return;
        }
        let mut due = Due::default();
        self.timers.collect(&mut self.conns, now, &mut due);
        for &id in &due.probe {
            let ping = self.timers.probe();
            self.delivery.deliver(&mut self.conns, id, &ping, Kind::Probe);
        }
        for &id in &due.expired {
            self.leave(id, Reason::Timeout, now, Some((Code::Timeout, None)));
        }
        for &id in &due.unanswered {
            let _ = self.reject(id, Some("the host did not answer in time"), now);
        }
        self.expire_parked(now);
        self.drop_doomed(now);
        self.timers.rescan(&self.conns, now);
    }

    /// Completes registration: welcome (with a session token if it asked
    /// for a resumable session), presence, event.
    pub(super) fn register(&mut self, id: ClientId, nick: Arc<str>, resumable: bool) {
        if let Some(displaced) = self.registry.insert(id, nick.clone()) {
            let conn = self.conns.get_mut(&displaced);
            self.delivery.leave_everyone(displaced, conn);
        }
        self.stats.registered += 1;
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.nick = Some(nick.clone());
            conn.phase = Phase::Registered;
            self.timers.registered(conn);
        }
        let token = resumable.then(Token::generate).flatten();
        let welcome = encode_json(&Outgoing::Welcome {
            nick: &nick,
            users: &self.all_nicks(),
            session: token.as_ref().map(Token::as_str),
            resumed: false,
        });
        self.delivery.deliver(&mut self.conns, id, &welcome, Kind::Normal);
        if let (Some(token), Some(conn)) = (token, self.conns.get_mut(&id)) {
            // Counting starts after the welcome: what is queued so far is
            // the connection's.
            let session = Session::new(token, self.resumption.retain(), conn.out.len());
            conn.session = Some(Box::new(session));
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            self.delivery.join_everyone(id, conn);
        }
        let online = encode_json(&Outgoing::Presence {
            nick: &nick,
            old: None,
            room: None,
            state: "online",
            reason: None,
        });
        self.delivery.fan_out_everyone(&mut self.conns, &online, Some(id));
        self.push_event(id, EventKind::Registered);
    }

    /// The client is gone for everyone else: its farewell, its rooms, its
    /// nick, presence and event; its connection only flushes from now on.
    /// A resumable session whose connection ended by `disconnect`,
    /// `timeout` or `slow_consumer` parks instead. Idempotent.
    pub(super) fn leave(&mut self, id: ClientId, reason: Reason, now: Instant, farewell: Farewell<'_>) {
        if !self.is_open(id) {
            return;
        }
        if self.parkable(id, reason) {
            return self.park(id, reason, now, farewell);
        }
        if let Some(conn) = self.conns.get_mut(&id) {
            // From here on it takes nothing sent to everyone.
            self.delivery.unfollow(id, conn);
        }
        if let Some((code, message)) = farewell {
            let bye = error_payload(code.as_str(), None, None, message);
            self.delivery.deliver(&mut self.conns, id, &bye, Kind::Farewell);
        }
        let approved = self.end_approval(id);
        self.cluster_unclaim(id, approved.as_ref().map(|(nick, _)| &**nick), reason, now);
        let deadline = self.timers.start_closing(id, now);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::Closing { reason, deadline };
            log_leave(id, conn.peer, conn.nick.as_deref(), reason, farewell);
        }
        self.end_session(id, reason, now);
    }

    /// A registered client's session ends for good (its connection is
    /// closing, or gone): its rooms, held messages, nick, presence, event.
    pub(super) fn end_session(&mut self, id: ClientId, reason: Reason, now: Instant) {
        for key in self.rooms.of(id).to_vec() {
            self.part(id, &key, false);
        }
        self.authority.forget_sender(id);
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.session = None;
        self.stats.disconnects[reason.index()] += 1;
        if let Some(nick) = conn.nick.clone() {
            self.registry.remove(&nick);
            self.delivery.leave_everyone(id, Some(conn));
            self.stats.registered -= 1;
            self.cluster_release(id, &nick, reason, now);
            if !self.quiet {
                let offline = encode_json(&Outgoing::Presence {
                    nick: &nick,
                    old: None,
                    room: None,
                    state: "offline",
                    reason: Some(reason.as_str()),
                });
                self.delivery.fan_out_everyone(&mut self.conns, &offline, None);
            }
        }
        self.push_event(id, EventKind::Disconnected { reason });
    }

    /// Drops every client found over its queue cap.
    pub(super) fn drop_doomed(&mut self, now: Instant) {
        while let Some(id) = self.delivery.next_doomed() {
            if self.conns.get(&id).is_some_and(Conn::is_parked) {
                // Parked, and what was queued for it passed its cap.
                self.end_parked(id, Reason::SlowConsumer, now);
                continue;
            }
            let why = Some("output queue over max_queue_bytes");
            self.leave(id, Reason::SlowConsumer, now, Some((Code::SlowConsumer, why)));
        }
    }

    /// Tells every client the server is going away and starts closing them
    /// all, giving up at `deadline`.
    pub fn shutdown(&mut self, now: Instant, deadline: Instant) {
        self.quiet = true;
        let ids: Vec<ClientId> = self.conns.keys().copied().collect();
        for id in ids {
            self.end_parked(id, Reason::Shutdown, now);
            self.leave(id, Reason::Shutdown, now, Some((Code::Shutdown, None)));
            if let Some(Phase::Closing { deadline: d, .. }) = self.conns.get_mut(&id).map(|c| &mut c.phase) {
                *d = deadline;
            }
        }
        self.timers.wake_at(deadline);
        self.delivery.forget_doomed();
    }
}

/// Logs a departure: a client dropped for cause (`slow_consumer`,
/// `timeout`, `protocol_error`) at info, with what it was told; any other
/// at debug. The host's kick message is not repeated, and nothing a client
/// sent is quoted.
fn log_leave(id: ClientId, peer: SocketAddr, nick: Option<&str>, reason: Reason, farewell: Farewell<'_>) {
    let level = match reason {
        Reason::SlowConsumer | Reason::Timeout | Reason::ProtocolError => log::Level::Info,
        _ => log::Level::Debug,
    };
    if !log::log_enabled!(level) {
        return;
    }
    let nick = nick.map(|n| format!(" ({n})")).unwrap_or_default();
    let why = match farewell {
        Some((_, Some(message))) if reason != Reason::Kicked => format!(": {message}"),
        _ => String::new(),
    };
    log::log!(level, "client {id}{nick} from {peer} left: {reason}{why}");
}
