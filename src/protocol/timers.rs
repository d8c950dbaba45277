//! Timers: handshake and idle timeouts, idle probes, approval deadlines,
//! rate-limit pauses and closing deadlines. This decides what is due; the
//! core acts on it. A lower bound on the next deadline keeps rounds before
//! it from scanning every connection.

use std::time::{Duration, Instant};

use super::conn::{Conn, Phase};
use crate::config::Config;
use crate::event::ClientId;
use crate::idmap::IdMap;
use crate::message::{encode_json, Outgoing, Payload};

/// What [`Timers::collect`] found due.
#[derive(Debug, Default)]
pub(super) struct Due {
    /// Silent past the idle timeout, or no `hello` within the handshake
    /// timeout: dropped as `timeout`.
    pub expired: Vec<ClientId>,
    /// Waiting for the host's approval past its deadline: rejected.
    pub unanswered: Vec<ClientId>,
    /// Silent for half the idle timeout: sent a `ping`.
    pub probe: Vec<ClientId>,
}

/// The timeouts and the bound on the next deadline.
#[derive(Debug)]
pub(super) struct Timers {
    idle: Option<Duration>,
    handshake: Option<Duration>,
    close_linger: Duration,
    /// No timer of any connection is due before this (a lower bound:
    /// timers only move later unless one of the calls that set them lowers
    /// it), so rounds before it skip the O(clients) scan.
    earliest: Option<Instant>,
    /// Connections closing, so that finding the finished ones does not scan
    /// every connection each round.
    closing: Vec<ClientId>,
    next_ping_id: u64,
}

impl Timers {
    pub fn new(cfg: &Config) -> Self {
        Timers {
            idle: cfg.idle_timeout,
            handshake: cfg.handshake_timeout,
            close_linger: cfg.close_linger,
            earliest: None,
            closing: Vec::new(),
            next_ping_id: 1,
        }
    }

    /// Lowers the bound on the next deadline.
    pub fn wake_at(&mut self, at: Instant) {
        self.earliest = Some(self.earliest.map_or(at, |e| e.min(at)));
    }

    /// The earliest instant something may be due (possibly earlier than
    /// anything is: then a round finds nothing and costs little).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.earliest
    }

    /// Whether a scan may find something due now.
    pub fn is_due(&self, now: Instant) -> bool {
        self.earliest.is_some_and(|t| now >= t)
    }

    /// A new connection's handshake deadline.
    pub fn connected(&mut self, now: Instant) {
        if let Some(t) = [self.handshake, self.idle].into_iter().flatten().min() {
            self.wake_at(now + t);
        }
    }

    /// A client registered: its first idle probe.
    pub fn registered(&mut self, conn: &Conn) {
        if let Some(idle) = self.idle {
            self.wake_at(conn.last_heard + idle / 2);
        }
    }

    /// Finds what is due in every connection; marks the probed ones.
    pub fn collect(&mut self, conns: &mut IdMap<Conn>, now: Instant, due: &mut Due) {
        for (&id, conn) in conns.iter_mut() {
            match &conn.phase {
                Phase::AwaitingApproval { deadline, .. } => {
                    if now >= *deadline {
                        due.unanswered.push(id);
                    }
                }
                Phase::Handshake => {
                    if self.handshake_deadline(conn).is_some_and(|at| now >= at) {
                        due.expired.push(id);
                    }
                }
                Phase::Registered => {
                    let Some(idle) = self.idle else { continue };
                    if now >= conn.last_heard + idle {
                        due.expired.push(id);
                    } else if !conn.pinged && now >= conn.last_heard + idle / 2 {
                        conn.pinged = true;
                        due.probe.push(id);
                    }
                }
                // The resume window is the core's (`Resumption`); the
                // connection's linger is `finished`'s.
                Phase::Closing { .. } | Phase::Parked { .. } => {}
            }
        }
    }

    /// When a connection that has not registered is dropped: at the
    /// handshake timeout, or after the idle timeout of silence if that
    /// comes first (a connection that answers nothing for the idle timeout
    /// is dropped, registered or not).
    fn handshake_deadline(&self, conn: &Conn) -> Option<Instant> {
        let handshake = self.handshake.map(|t| conn.connected_at + t);
        let idle = self.idle.map(|t| conn.last_heard + t);
        handshake.into_iter().chain(idle).min()
    }

    /// The next idle probe's payload.
    pub fn probe(&mut self) -> Payload {
        let ping = encode_json(&Outgoing::Ping {
            id: self.next_ping_id,
        });
        self.next_ping_id += 1;
        ping
    }

    /// Sets the bound to every connection's next timer, exactly:
    /// O(clients), after a scan.
    pub fn rescan(&mut self, conns: &IdMap<Conn>, now: Instant) {
        let throttled = conns.values().filter_map(|conn| conn.throttled_until(now)).min();
        let timers = conns
            .values()
            .filter_map(|conn| match &conn.phase {
                Phase::AwaitingApproval { deadline, .. } => Some(*deadline),
                Phase::Handshake => self.handshake_deadline(conn),
                Phase::Registered => self.idle.map(|idle| {
                    if conn.pinged {
                        conn.last_heard + idle
                    } else {
                        conn.last_heard + idle / 2
                    }
                }),
                Phase::Closing { deadline, .. } => Some(*deadline),
                Phase::Parked { until, linger, .. } => Some(linger.map_or(*until, |l| l.min(*until))),
            })
            .min();
        self.earliest = throttled.into_iter().chain(timers).min();
    }

    /// A connection starts closing: when to give up flushing it.
    pub fn start_closing(&mut self, id: ClientId, now: Instant) -> Instant {
        let deadline = now + self.close_linger;
        self.closing.push(id);
        self.wake_at(deadline);
        deadline
    }

    /// A connection is gone.
    pub fn forget(&mut self, id: ClientId) {
        self.closing.retain(|&c| c != id);
    }

    /// Closing connections that are done (flushed, or out of time), with
    /// why they closed.
    pub fn finished(
        &self,
        conns: &IdMap<Conn>,
        now: Instant,
        out: &mut Vec<(ClientId, crate::event::Reason)>,
    ) {
        out.extend(self.closing.iter().filter_map(|id| {
            let conn = conns.get(id)?;
            match &conn.phase {
                Phase::Closing { deadline, reason }
                    if (conn.out.is_empty() && conn.transport_held == 0) || now >= *deadline =>
                {
                    Some((*id, *reason))
                }
                // A parked session's connection: done when its farewell is
                // out (the session stays).
                Phase::Parked {
                    reason,
                    linger: Some(deadline),
                    ..
                } if conn.out.is_empty() || now >= *deadline => Some((*id, *reason)),
                _ => None,
            }
        }));
    }
}
