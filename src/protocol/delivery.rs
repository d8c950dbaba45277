//! Delivery: the one place that decides what happens when a payload is
//! queued to a client, and the fan-outs that broadcasts and rooms use.
//! Every payload the core sends to one client goes through
//! [`Delivery::deliver`]; a broadcast reaches most clients without any
//! work of theirs per message (see [`Everyone`]).

use super::conn::Conn;
use super::queue::OutQueue;
use super::round_log::{Audience, RoundLogs, LOGGED_BELOW};
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

/// Every registered client, as payloads for everyone reach them.
///
/// Most clients *follow* the round's log for everyone: a broadcast is
/// logged once, counted once for all of them, and each follower's queue
/// takes what was logged since it last looked (one run of the log, one
/// entry) when it is next written, sent anything else, or at the end of
/// the round. So a broadcast to a thousand clients costs the same user
/// space as one to ten; what is left per recipient is its socket's write,
/// once per round, as for any relay. The cap rule is kept exactly: the
/// least room any follower has is known (in the log's cumulative cost), so
/// a payload that would take one past its cap is seen before it is logged
/// and that client takes what came before it and is found over its cap,
/// as if it had been offered the payload alone.
///
/// The others are *listed* and take each payload through
/// [`Delivery::deliver`]: resumable sessions (which count frames one by
/// one), and connections closing, parked or over their cap.
#[derive(Debug, Default)]
struct Everyone {
    /// Clients that follow the log (`Conn::everyone_from` is set).
    following: Vec<ClientId>,
    /// Registered clients that do not.
    listed: Vec<ClientId>,
    /// Where each is: following or not, and its place in that list.
    at: IdMap<(bool, usize)>,
}

impl Everyone {
    fn list(&mut self, following: bool) -> &mut Vec<ClientId> {
        if following {
            &mut self.following
        } else {
            &mut self.listed
        }
    }

    fn add(&mut self, id: ClientId, following: bool) {
        self.remove(id);
        let list = self.list(following);
        list.push(id);
        let at = list.len() - 1;
        self.at.insert(id, (following, at));
    }

    fn remove(&mut self, id: ClientId) {
        let Some((following, at)) = self.at.remove(&id) else {
            return;
        };
        let list = self.list(following);
        list.swap_remove(at);
        if let Some(&moved) = list.get(at) {
            self.at.insert(moved, (following, at));
        }
    }

    fn follows(&self, id: ClientId) -> bool {
        self.at.get(&id).is_some_and(|&(following, _)| following)
    }

    fn rekey(&mut self, old: ClientId, new: ClientId) {
        let Some((following, at)) = self.at.remove(&old) else {
            return;
        };
        self.list(following)[at] = new;
        self.at.insert(new, (following, at));
    }
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
    /// Bytes in every queue now, as the cap counts them (what followers
    /// have not yet taken from the log included).
    queued_bytes: u64,
    /// The most ever.
    peak_queued_bytes: u64,
    /// This round's fanned-out payloads, which queues hold runs of.
    logs: RoundLogs,
    /// Clients given a run of a log this round (some may be listed
    /// twice, or gone).
    with_runs: Vec<ClientId>,
    /// Every registered client.
    everyone: Everyone,
    /// No follower passes its cap before the log for everyone counts this
    /// much (a lower bound: the least of their [`limit`](Self::limit)s,
    /// or less).
    least_limit: usize,
    /// How many payloads were logged for everyone before this round's:
    /// followers' cursors (`Conn::everyone_from`) count every payload ever
    /// logged, so a follower that took all of a round needs no change when
    /// the round's log is cleared.
    everyone_base: u64,
    /// Followers that have not taken all of the log for everyone yet. At
    /// the round's end only these need a pass, and a round whose writes
    /// caught every follower up (each is caught up when it is written)
    /// needs none.
    behind: usize,
}

impl Delivery {
    pub fn new(cfg: &Config) -> Self {
        Delivery {
            max_queue_bytes: cfg.max_queue_bytes,
            dirty: Vec::new(),
            doomed: Vec::new(),
            queued_bytes: 0,
            peak_queued_bytes: 0,
            logs: RoundLogs::default(),
            with_runs: Vec::new(),
            everyone: Everyone::default(),
            least_limit: usize::MAX,
            everyone_base: 0,
            behind: 0,
        }
    }

    /// The cursor of a follower that has taken everything logged so far.
    fn everyone_end(&self) -> u64 {
        self.everyone_base + u64::from(self.logs.get(Audience::Everyone).len())
    }

    /// A cursor's place in this round's log for everyone.
    fn in_round(&self, cursor: u64) -> u32 {
        (cursor - self.everyone_base) as u32
    }

    /// `id` is registered: payloads for everyone reach it from now on.
    pub fn join_everyone(&mut self, id: ClientId, conn: &mut Conn) {
        let follows = conn.session.is_none() && !conn.over_cap && !conn.is_closing();
        if follows {
            conn.everyone_from = Some(self.everyone_end());
            self.note_limit(conn);
        }
        self.everyone.add(id, follows);
    }

    /// `id` is no longer registered: what it was sent so far is in its
    /// queue, and no more payloads for everyone reach it.
    pub fn leave_everyone(&mut self, id: ClientId, conn: Option<&mut Conn>) {
        if let Some(conn) = conn {
            self.unfollow(id, conn);
        }
        self.everyone.remove(id);
    }

    /// The registered client `old` is now the connection `new` (a resume:
    /// both are resumable sessions, which never follow the log).
    pub fn rekey_everyone(&mut self, old: ClientId, new: ClientId) {
        self.everyone.rekey(old, new);
    }

    /// `conn` takes payloads one by one from now on (it is leaving, or
    /// over its cap): what it was sent so far goes into its queue.
    pub fn unfollow(&mut self, id: ClientId, conn: &mut Conn) {
        if conn.everyone_from.is_none() {
            return;
        }
        self.catch_up(id, conn);
        conn.everyone_from = None;
        self.everyone.add(id, false);
    }

    /// A follower's queue takes what the log for everyone got since it
    /// last looked, as one run.
    #[inline]
    fn catch_up(&mut self, id: ClientId, conn: &mut Conn) {
        let (was_empty, had_runs) = (conn.out.is_empty(), conn.out.has_runs());
        if !self.take_logged(conn) {
            return;
        }
        if was_empty {
            self.dirty.push(id);
        }
        if !had_runs {
            self.with_runs.push(id);
        }
    }

    /// Moves what the log for everyone has for `conn` into its queue, as
    /// one run; whether there was anything.
    #[inline]
    fn take_logged(&mut self, conn: &mut Conn) -> bool {
        let Some(from) = conn.everyone_from else {
            return false;
        };
        let end = self.everyone_end();
        if from == end {
            return false;
        }
        let log = self.logs.get(Audience::Everyone);
        let start = self.in_round(from);
        let cost = log.total_cost() - log.cost_before(start);
        conn.out.push_logged(Audience::Everyone, start, log.len(), cost);
        conn.everyone_from = Some(end);
        debug_assert!(self.behind > 0, "a follower behind that was not counted");
        self.behind = self.behind.saturating_sub(1);
        true
    }

    /// `conn` is about to be written: its queue takes what the log for
    /// everyone has for it first. It is not listed as dirty (it is being
    /// written); [`wrote`](Self::wrote) lists it among the queues with runs
    /// if the write leaves one. Returns what `wrote` needs to know.
    #[inline]
    pub fn catch_up_to_write(&mut self, conn: &mut Conn) -> bool {
        let had_runs = conn.out.has_runs();
        self.take_logged(conn);
        had_runs
    }

    /// `id` was written after [`catch_up_to_write`](Self::catch_up_to_write)
    /// (which returned `had_runs`): a run the socket did not take is turned
    /// into entries of its own at the round's end.
    #[inline]
    pub fn wrote(&mut self, id: ClientId, conn: &Conn, had_runs: bool) {
        if !had_runs && conn.out.has_runs() {
            self.with_runs.push(id);
        }
    }

    /// Whether the log for everyone has something for `conn` that its
    /// queue has not taken yet.
    pub fn has_pending(&self, conn: &Conn) -> bool {
        conn.everyone_from.is_some_and(|from| from < self.everyone_end())
    }

    /// What a follower holds against its cap, and what the log for
    /// everyone has for it that its queue has not taken yet.
    fn held(&self, conn: &Conn) -> usize {
        let log = self.logs.get(Audience::Everyone);
        let pending = conn
            .everyone_from
            .map_or(0, |from| log.total_cost() - log.cost_before(self.in_round(from)));
        conn.held_bytes() + pending
    }

    /// The cumulative cost of the log for everyone past which the follower
    /// `conn` would be over its cap.
    fn limit(&self, conn: &Conn) -> usize {
        let from = conn.everyone_from.map_or(0, |from| self.in_round(from));
        self.logs.get(Audience::Everyone).cost_before(from)
            + self.max_queue_bytes.saturating_sub(conn.held_bytes())
    }

    /// A follower's room shrank (it was sent something of its own, or its
    /// transport holds more): the least limit may be its.
    #[inline]
    pub fn note_limit(&mut self, conn: &Conn) {
        if conn.everyone_from.is_some() {
            self.least_limit = self.least_limit.min(self.limit(conn));
        }
    }

    /// Queues `payload` to `id` under the cap rule for its `kind`; returns
    /// whether the queue took it.
    pub fn deliver(&mut self, conns: &mut IdMap<Conn>, id: ClientId, payload: &Payload, kind: Kind) -> bool {
        let Some(conn) = conns.get_mut(&id) else {
            return false;
        };
        self.catch_up(id, conn);
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
        self.catch_up(id, conn);
        if conn.out.is_empty() {
            self.dirty.push(id);
        }
        self.queued_bytes += OutQueue::cost(&payload) as u64;
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
        conn.out.push(payload);
        self.note_limit(conn);
    }

    /// A payload that does not fit under the cap (or a client already
    /// found over it): whether to queue it anyway.
    #[cold]
    fn over_cap(&mut self, id: ClientId, conn: &mut Conn, cost: usize, kind: Kind) -> bool {
        match kind {
            Kind::Probe => false,
            Kind::Farewell => {
                self.unfollow(id, conn);
                if conn.held_bytes() + cost > self.max_queue_bytes {
                    let dropped = conn.out.drop_unstarted(&self.logs);
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
                    self.unfollow(id, conn);
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

    /// Queues one shared payload to every registered client but `except`;
    /// returns how many queues took it. The listed ones take it through
    /// [`deliver`](Self::deliver); for the followers a small payload is
    /// logged once and counted once, and a large one (which their queues
    /// would hold on its own anyway) is delivered to each.
    pub fn fan_out_everyone(
        &mut self,
        conns: &mut IdMap<Conn>,
        payload: &Payload,
        except: Option<ClientId>,
    ) -> usize {
        let mut taken = 0;
        // By index: a delivery never adds to this list, only `unfollow`
        // does, and only for followers.
        let mut i = 0;
        while let Some(&id) = self.everyone.listed.get(i) {
            if Some(id) != except {
                taken += usize::from(self.deliver(conns, id, payload, Kind::Normal));
            }
            i += 1;
        }
        if self.everyone.following.is_empty() {
            return taken;
        }
        if payload.len() >= LOGGED_BELOW {
            let followers = self.everyone.following.clone();
            for id in followers.into_iter().filter(|&id| Some(id) != except) {
                taken += usize::from(self.deliver(conns, id, payload, Kind::Normal));
            }
            return taken;
        }
        // The sender's queue takes what came before its own payload, which
        // it skips.
        let sender = except.filter(|s| conns.get(s).is_some_and(|c| c.everyone_from.is_some()));
        if let Some(s) = sender {
            if let Some(conn) = conns.get_mut(&s) {
                self.catch_up(s, conn);
            }
        }
        let cost = OutQueue::cost(payload);
        let after = self.logs.get(Audience::Everyone).total_cost() + cost;
        if after > self.least_limit {
            self.find_over_cap(conns, after, except);
        }
        let index = self.logs.get_mut(Audience::Everyone).append(payload);
        if let Some(conn) = sender.and_then(|s| conns.get_mut(&s)) {
            conn.everyone_from = Some(self.everyone_base + u64::from(index) + 1);
        }
        let followers = self.everyone.following.len() - usize::from(sender.is_some());
        // Every follower but the sender now has this payload to take.
        self.behind = followers;
        self.queued_bytes += (cost * followers) as u64;
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
        taken + followers
    }

    /// The next payload for everyone takes the log's cost to `after`, past
    /// the least limit: every follower it would take past its cap (but
    /// `except`, who does not get it) takes what came before and is found
    /// over its cap; the least limit of the others is found again.
    #[cold]
    fn find_over_cap(&mut self, conns: &mut IdMap<Conn>, after: usize, except: Option<ClientId>) {
        let mut least = usize::MAX;
        let mut i = 0;
        while let Some(&id) = self.everyone.following.get(i) {
            let Some(conn) = conns.get_mut(&id) else {
                debug_assert!(false, "a follower without a connection");
                self.everyone.remove(id);
                continue;
            };
            let limit = self.limit(conn);
            if after > limit && Some(id) != except {
                // `unfollow` takes it out of this list, at `i`.
                self.unfollow(id, conn);
                conn.over_cap = true;
                self.doomed.push(id);
                continue;
            }
            least = least.min(limit);
            i += 1;
        }
        self.least_limit = least;
    }

    /// Queues one shared payload to each of `recipients` but `except`;
    /// returns how many queues took it. A small payload is logged once for
    /// the round, and each live recipient without a resumable session
    /// (whose frames are counted one by one) gets it as one more frame of
    /// the run at the end of its queue; anyone else, or anyone at its cap,
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
            self.catch_up(id, conn);
            let plain = loggable
                && conn.session.is_none()
                && !conn.over_cap
                && !conn.is_closing()
                && conn.held_bytes() + cost <= self.max_queue_bytes;
            if !plain {
                taken += usize::from(self.deliver(conns, id, payload, Kind::Normal));
                continue;
            }
            let index = *index.get_or_insert_with(|| self.logs.get_mut(Audience::Listed).append(payload));
            if conn.out.is_empty() {
                self.dirty.push(id);
            }
            if !conn.out.has_runs() {
                self.with_runs.push(id);
            }
            conn.out.push_logged(Audience::Listed, index, index + 1, cost);
            self.note_limit(conn);
            self.queued_bytes += cost as u64;
            taken += 1;
        }
        self.peak_queued_bytes = self.peak_queued_bytes.max(self.queued_bytes);
        taken
    }

    /// The round's logs of fanned-out payloads.
    pub fn logs(&self) -> &RoundLogs {
        &self.logs
    }

    /// Every follower's queue takes what the log for everyone has for it
    /// (before its queue is written, or read).
    pub fn catch_up_all(&mut self, conns: &mut IdMap<Conn>) {
        if self.behind == 0 {
            return;
        }
        let mut i = 0;
        while let Some(&id) = self.everyone.following.get(i) {
            if let Some(conn) = conns.get_mut(&id) {
                self.catch_up(id, conn);
            }
            i += 1;
        }
    }

    /// The round is over: followers take what the log for everyone has
    /// for them, runs of the logs that are still queued become entries of
    /// their own, and the logs are cleared.
    pub fn end_round(&mut self, conns: &mut IdMap<Conn>) {
        let log = self.logs.get(Audience::Everyone);
        let (logged, total_cost) = (log.len(), log.total_cost());
        if self.behind > 0 {
            // One pass: each follower takes what is left for it, and the
            // least room is known exactly again, from the empty log.
            let mut least = usize::MAX;
            let mut i = 0;
            while let Some(&id) = self.everyone.following.get(i) {
                if let Some(conn) = conns.get_mut(&id) {
                    self.catch_up(id, conn);
                    least = least.min(self.max_queue_bytes.saturating_sub(conn.held_bytes()));
                }
                i += 1;
            }
            self.least_limit = least;
            // A follower without a connection (never expected) would
            // otherwise keep the next round's end making this pass.
            self.behind = 0;
        } else {
            // Every follower took the whole log when it was written, and
            // no follower's limit shrank but through `note_limit`: the
            // bound, moved to the empty log's costs, is still a bound
            // (`find_over_cap` finds the exact one when it is reached).
            self.least_limit = self.least_limit.saturating_sub(total_cost);
        }
        for id in self.with_runs.drain(..) {
            if let Some(conn) = conns.get_mut(&id) {
                conn.out.detach(&self.logs);
            }
        }
        self.everyone_base += u64::from(logged);
        self.logs.clear();
    }

    /// Whether `conn` has so much waiting for it (half its cap) that its
    /// input is paused: what it asks for (a `who` of a thousand users, a
    /// `join` of a big room) is not built until it reads, so a client
    /// that writes requests without reading costs about its own cap, and
    /// TCP pushes back on it, not on everyone else.
    pub fn backlogged(&self, conn: &Conn) -> bool {
        self.held(conn) >= self.max_queue_bytes / 2
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

    /// Moves the clients worth a write attempt now into `out`: those whose
    /// queue became non-empty, and every follower if any has not taken
    /// all of the log for everyone (each takes it when written: with one
    /// pass over the followers instead of two, a round touches each of a
    /// thousand clients fewer times, and each touch is a cache miss).
    pub fn take_dirty(&mut self, out: &mut Vec<ClientId>) {
        if self.behind == 0 {
            out.append(&mut self.dirty);
            return;
        }
        out.extend_from_slice(&self.everyone.following);
        let everyone = &self.everyone;
        out.extend(self.dirty.drain(..).filter(|&id| !everyone.follows(id)));
    }

    /// Bytes in every queue now, and the most ever.
    pub fn queued(&self) -> (u64, u64) {
        (self.queued_bytes, self.peak_queued_bytes)
    }
}
