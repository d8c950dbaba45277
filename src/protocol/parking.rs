//! Parking (protocol 1.2): when the connection of a resumable session ends
//! by `disconnect`, `timeout` or `slow_consumer`, the session stays, under
//! the same id, for `resume_window`: its nick stays taken, its rooms kept,
//! frames for it keep queuing (up to what it held plus `max_queue_bytes`),
//! and nobody is told. It ends, as its connection did, when the window
//! passes; a resume (`resume.rs`) moves it to a new connection instead.
//!
//! Memory: a parked session holds its tail of written frames (at least
//! `resume_retain_bytes`, less that plus one frame), the frames it held
//! when it parked (at most `max_queue_bytes` plus the one that overflowed
//! it and what followed in the same step), up to `max_queue_bytes` more,
//! and its bookkeeping; every frame by reference. At most `max_clients`
//! sessions are parked at once: one more parks in place of the oldest,
//! which ends then (as its window's end would have ended it).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::conn::Phase;
use super::delivery::Kind;
use super::session::Farewell;
use super::Core;
use crate::config::Config;
use crate::event::{ClientId, EventKind, Reason};
use crate::message::error_payload;

/// The settings of resumable sessions and the parked ones' order.
#[derive(Debug)]
pub(super) struct Resumption {
    window: Duration,
    retain: usize,
    max_queue_bytes: usize,
    /// Most sessions parked at once.
    max_parked: usize,
    /// Parked sessions with their window's end, in the order they parked
    /// (every window is as long, so also the order they expire in).
    /// Entries of sessions that resumed or ended since are skipped.
    order: VecDeque<(Instant, ClientId)>,
    /// Sessions parked now.
    parked: usize,
}

impl Resumption {
    pub fn new(cfg: &Config) -> Self {
        Resumption {
            window: cfg.resume_window,
            retain: cfg.resume_retain_bytes,
            max_queue_bytes: cfg.max_queue_bytes,
            max_parked: cfg.max_clients,
            order: VecDeque::new(),
            parked: 0,
        }
    }

    /// How many bytes of written frames a session keeps.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// Sessions parked now.
    pub fn parked(&self) -> usize {
        self.parked
    }

    /// A session stopped being parked (resumed or ended).
    pub fn unparked(&mut self) {
        self.parked -= 1;
    }
}

impl Core {
    /// Whether the client's leaving for `reason` parks its session rather
    /// than ending it.
    pub(super) fn parkable(&self, id: ClientId, reason: Reason) -> bool {
        let resumable_reason = matches!(
            reason,
            Reason::Disconnect | Reason::Timeout | Reason::SlowConsumer
        );
        resumable_reason
            && !self.quiet
            && self
                .conns
                .get(&id)
                .is_some_and(|c| c.phase == Phase::Registered && c.session.is_some())
    }

    /// Parks the session of `id`: the frames its connection had not
    /// written whole (a partly written one included, to be replayed whole)
    /// move to the session; the connection keeps only that partly written
    /// frame, to finish the stream cleanly, then gets `farewell`, and
    /// closes as a closing connection would. The host gets `Parked`.
    pub(super) fn park(&mut self, id: ClientId, reason: Reason, now: Instant, farewell: Farewell<'_>) {
        if self.resumption.parked >= self.resumption.max_parked {
            self.end_oldest_parked(now);
        }
        let max_queue_bytes = self.resumption.max_queue_bytes;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(session) = conn.session.as_mut() else {
            return;
        };
        let (held, released) = conn.out.split_off(session.uncounted);
        session.uncounted = 0;
        session.allowance = 0;
        session.held_cap = held.counted_bytes() + max_queue_bytes;
        session.held = held;
        conn.over_cap = false;
        log::debug!("client {id} ({}) parked its session: {reason}", conn.peer);
        self.delivery.unqueued(released);
        if let Some((code, message)) = farewell {
            let bye = error_payload(code.as_str(), None, None, message);
            self.delivery.deliver(&mut self.conns, id, &bye, Kind::Farewell);
        }
        let linger = self.timers.start_closing(id, now);
        let until = now + self.resumption.window;
        self.timers.wake_at(until);
        if let Some(conn) = self.conns.get_mut(&id) {
            conn.phase = Phase::Parked {
                reason,
                until,
                linger: Some(linger),
            };
        }
        self.resumption.order.push_back((until, id));
        self.resumption.parked += 1;
        self.compact_parked_order();
        self.push_event(id, EventKind::Parked { reason });
    }

    /// The server closed a parked session's connection: only the session
    /// is left. Returns whether `id` is a parked session.
    pub(super) fn detach_parked(&mut self, id: ClientId) -> bool {
        let Some(conn) = self.conns.get_mut(&id) else {
            return false;
        };
        let Phase::Parked { linger, .. } = &mut conn.phase else {
            return false;
        };
        if linger.take().is_some() {
            let freed = conn.out.clear();
            self.delivery.unqueued(freed);
            self.stats.clients -= 1;
            self.timers.forget(id);
        }
        true
    }

    /// Ends the parked sessions whose window has passed, each with the
    /// reason its connection ended for.
    pub(super) fn expire_parked(&mut self, now: Instant) {
        while let Some(&(until, id)) = self.resumption.order.front() {
            if until > now {
                break;
            }
            self.resumption.order.pop_front();
            if let Some(Phase::Parked { reason, until: u, .. }) = self.conns.get(&id).map(|c| &c.phase) {
                if *u == until {
                    let reason = *reason;
                    self.end_parked(id, reason, now);
                }
            }
        }
    }

    /// Ends a parked session for good (nothing if `id` is not parked):
    /// others see it leave with `reason`, its nick is free, the host gets
    /// `Disconnected`. A connection still flushing its farewell goes on
    /// closing.
    pub(super) fn end_parked(&mut self, id: ClientId, reason: Reason, now: Instant) {
        let Some(Phase::Parked { linger, .. }) = self.conns.get(&id).map(|c| c.phase.clone()) else {
            return;
        };
        self.resumption.unparked();
        if let Some(conn) = self.conns.get(&id) {
            log::debug!("client {id} ({}): its parked session ended: {reason}", conn.peer);
        }
        self.end_session(id, reason, now);
        match linger {
            Some(deadline) => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.phase = Phase::Closing { reason, deadline };
                }
            }
            None => {
                self.conns.remove(&id);
            }
        }
    }

    /// The parked session that parked first ends, to make room for one
    /// more (past `max_clients` parked sessions).
    fn end_oldest_parked(&mut self, now: Instant) {
        while let Some((_, id)) = self.resumption.order.pop_front() {
            if let Some(Phase::Parked { reason, .. }) = self.conns.get(&id).map(|c| &c.phase) {
                let reason = *reason;
                return self.end_parked(id, reason, now);
            }
        }
    }

    /// Drops the entries of sessions no longer parked once they outnumber
    /// the parked ones, so that churn cannot grow the list.
    fn compact_parked_order(&mut self) {
        let r = &mut self.resumption;
        if r.order.len() > 2 * r.parked + 64 {
            let conns = &self.conns;
            r.order.retain(|(until, id)| {
                conns
                    .get(id)
                    .is_some_and(|c| matches!(&c.phase, Phase::Parked { until: u, .. } if u == until))
            });
        }
    }
}
