//! Delivery: the one place that decides what happens when a payload is
//! queued to a client, and the one fan-out that broadcasts and rooms share.
//! Every payload the core sends goes through [`Delivery::deliver`].

use super::conn::Conn;
use super::queue::OutQueue;
use super::round_log::{RoundLog, LOGGED_BELOW};
use crate::config::Config;
use crate::event::ClientId;
use crate::idmap::IdMap;
use crate::message::Payload;

/// What a payload is to its recipient, which decides what happens when it
/// does not fit under the queue cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Anything the client asked for or was sent: over the cap, the client
    /// is a slow consumer and is dropped.
    Normal,
    /// The server's idle probe: over the cap it is skipped (a client that
    /// far behind is busy, not idle).
    Probe,
    /// The error frame that tells a client why it is dropped: over the cap,
    /// what was not started is dropped so that the reason still gets
    /// through.
    Farewell,
}

/// Queue bookkeeping shared by every client.
#[derive(Debug)]
pub(super) struct Delivery {
    max_queue_bytes: usize,
    /// Clients whose queue went from empty to not empty since the server
    /// last asked: the ones worth an immediate write attempt.
    dirty: Vec<ClientId>,
    /// Clients found over their cap, dropped once the current step is over
    /// (so a drop never happens in the middle of a fan-out).
    doomed: Vec<ClientId>,
    /// Bytes in every queue now, as the cap counts them.
    queued_bytes: u64,
    /// The most ever.
    peak_queued_bytes: u64,
    /// This round's fanned-out payloads, which queues hold runs of.
    log: RoundLog,
    /// Clients given a run of the log this round (some may be listed
    /// twice, or gone).
    with_runs: Vec<ClientId>,
}

impl Delivery {
    pub fn new(cfg: &Config) -> Self {
        Delivery {
            max_queue_bytes: cfg.max_queue_bytes,
            dirty: Vec::new(),
            doomed: Vec::new(),
            queued_bytes: 0,
            peak_queued_bytes: 0,
            log: RoundLog::default(),
            with_runs: Vec::new(),
        }
    }

    /// Queues `payload` to `id` under the cap rule for its `kind`; returns
    /// whether the queue took it.
    pub fn deliver(&mut self, conns: &mut IdMap<Conn>, id: ClientId, payload: &Payload, kind: Kind) -> bool {
        let Some(conn) = conns.get_mut(&id) else {
            return false;
        };
        if conn.is_closing() {
            return self.deliver_parked(id, conn, payload, kind);
        }
        let cost = OutQueue::cost(payload);
        if (conn.over_cap || conn.held_bytes() + cost > self.max_queue_bytes)
            && !self.over_cap(id, conn, cost, kind)
        {
            return false;
        }
        self.push(id, conn, payload.clone());
        true
    }

    /// Appends to a live connection's queue, whatever the cap: for what
    /// [`deliver`](Self::deliver) decided to take, and for the frames a
    /// resume replays (counted against the session's allowance instead).
    pub fn push(&mut self, id: ClientId, conn: &mut Conn, payload: Payload) {
        if conn.out.is_empty() {
            self.dirty.push(id);
        }
        self.queued_bytes += OutQueue::cost(&payload) as u64;
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
        conn.out.push(payload);
    }

    /// A payload that does not fit under the cap (or a client already
    /// found over it): whether to queue it anyway.
    #[cold]
    fn over_cap(&mut self, id: ClientId, conn: &mut Conn, cost: usize, kind: Kind) -> bool {
        match kind {
            Kind::Probe => false,
            Kind::Farewell => {
                if conn.held_bytes() + cost > self.max_queue_bytes {
                    let dropped = conn.out.drop_unstarted(&self.log);
                    self.unqueued(dropped);
                }
                true
            }
            Kind::Normal => {
                let allowance = conn.session.as_ref().map_or(0, |s| s.allowance);
                if !conn.over_cap && conn.held_bytes() + cost <= self.max_queue_bytes + allowance {
                    // Within what a resume's replayed backlog allows.
                    return true;
                }
                if !conn.over_cap {
                    conn.over_cap = true;
                    self.doomed.push(id);
                }
                // A resumable session keeps the frame that overflowed, and
                // what comes before it is dropped at the end of this step:
                // it parks with them (protocol 1.2), so nothing is lost.
                conn.session.is_some()
            }
        }
    }

    /// A payload for a client whose connection is closing or gone: a
    /// parked session queues it (up to its cap, then it is found over it
    /// and ends as a slow consumer); anyone else takes nothing.
    #[cold]
    fn deliver_parked(&mut self, id: ClientId, conn: &mut Conn, payload: &Payload, kind: Kind) -> bool {
        let (true, Some(session), Kind::Normal) = (conn.is_parked(), conn.session.as_mut(), kind) else {
            return false;
        };
        if conn.over_cap {
            return false;
        }
        if session.held.counted_bytes() + OutQueue::cost(payload) > session.held_cap {
            conn.over_cap = true;
            self.doomed.push(id);
            return false;
        }
        session.held.push(payload.clone());
        true
    }

    /// Queues one shared payload to every recipient but `except`; returns
    /// how many queues took it. A small payload is logged once for the
    /// round, and each live recipient without a resumable session (whose
    /// frames are counted one by one) gets it as one more frame of the
    /// run at the end of its queue; anyone else, or anyone at its cap,
    /// goes through [`deliver`](Self::deliver).
    pub fn fan_out(
        &mut self,
        conns: &mut IdMap<Conn>,
        recipients: impl IntoIterator<Item = ClientId>,
        payload: &Payload,
        except: Option<ClientId>,
    ) -> usize {
        let cost = OutQueue::cost(payload);
        let loggable = payload.len() < LOGGED_BELOW;
        let mut index = None;
        let mut taken = 0;
        for id in recipients {
            if Some(id) == except {
                continue;
            }
            let Some(conn) = conns.get_mut(&id) else {
                continue;
            };
            let plain = loggable
                && conn.session.is_none()
                && !conn.over_cap
                && !conn.is_closing()
                && conn.held_bytes() + cost <= self.max_queue_bytes;
            if !plain {
                taken += usize::from(self.deliver(conns, id, payload, Kind::Normal));
                continue;
            }
            let index = *index.get_or_insert_with(|| self.log.append(payload));
            if conn.out.is_empty() {
                self.dirty.push(id);
            }
            if !conn.out.has_runs() {
                self.with_runs.push(id);
            }
            conn.out.push_logged(index, cost);
            self.queued_bytes += cost as u64;
            taken += 1;
        }
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
        taken
    }

    /// The round's log of fanned-out payloads.
    pub fn log(&self) -> &RoundLog {
        &self.log
    }

    /// The round is over: runs of the log that are still queued become
    /// entries of their own, and the log is cleared.
    pub fn end_round(&mut self, conns: &mut IdMap<Conn>) {
        for id in self.with_runs.drain(..) {
            if let Some(conn) = conns.get_mut(&id) {
                conn.out.detach(&self.log);
            }
        }
        self.log.clear();
    }

    /// Whether `conn` has so much waiting for it (half its cap) that its
    /// input is paused: what it asks for (a `who` of a thousand users, a
    /// `join` of a big room) is not built until it reads, so a client
    /// that writes requests without reading costs about its own cap, and
    /// TCP pushes back on it, not on everyone else.
    pub fn backlogged(&self, conn: &Conn) -> bool {
        conn.held_bytes() >= self.max_queue_bytes / 2
    }

    /// Bytes (as counted) left a queue: written, or dropped with it.
    pub fn unqueued(&mut self, bytes: usize) {
        self.queued_bytes -= bytes as u64;
    }

    /// The next client found over its cap, if any.
    pub fn next_doomed(&mut self) -> Option<ClientId> {
        self.doomed.pop()
    }

    /// Forgets the clients found over their cap (they are leaving anyway).
    pub fn forget_doomed(&mut self) {
        self.doomed.clear();
    }

    /// Moves the clients whose queue became non-empty into `out`.
    pub fn take_dirty(&mut self, out: &mut Vec<ClientId>) {
        out.append(&mut self.dirty);
    }

    /// Bytes in every queue now, and the most ever.
    pub fn queued(&self) -> (u64, u64) {
        (self.queued_bytes, self.peak_queued_bytes)
    }
}
