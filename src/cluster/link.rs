//! One Redis connection as a state machine with no sockets.
//!
//! The caller (the select loop) owns the socket and tells the link what
//! happened: [`connecting`](Link::connecting), [`connected`](Link::connected),
//! [`received`](Link::received) bytes, [`wrote`](Link::wrote) bytes,
//! [`closed`](Link::closed), and the time ([`tick`](Link::tick)). The link
//! answers with the bytes to write ([`output`](Link::output)), events
//! ([`poll_event`](Link::poll_event)): replies matched to commands in order,
//! pushed messages, ready and down), its next deadline
//! ([`next_deadline`](Link::next_deadline)) and when to connect again
//! ([`connect_due`](Link::connect_due)).
//!
//! Every reply has a deadline; one missed means the link is dead (a
//! SIGSTOPped Redis accepts TCP and never answers; a black hole neither
//! refuses nor answers), so the link goes down and reconnects with a
//! jittered, bounded backoff. Each connection starts with AUTH, SELECT and
//! CLIENT SETNAME, then loads the scripts (commands) or subscribes again
//! to everything and waits for its own probe (subscriber). What the caller
//! queues while Redis is away waits, bounded in bytes and age.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::link_config::{LinkConfig, Role};
use super::link_event::{DownReason, Failure, LinkEvent, LinkStats, Phase, SendError, Token};
use super::outbox::{Entry, Outbox};
use super::scripts::Script;
use crate::codec::resp::{self, Decoder};

/// A step of the handshake.
#[derive(Debug, Clone, Copy)]
enum Step {
    Auth,
    Select,
    SetName,
    Load(usize),
    Ping,
}

/// Subscription commands, by the word Redis confirms them with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SubKind {
    Subscribe,
    Unsubscribe,
    PSubscribe,
    PUnsubscribe,
}

impl SubKind {
    fn word(self) -> &'static [u8] {
        match self {
            SubKind::Subscribe => b"subscribe",
            SubKind::Unsubscribe => b"unsubscribe",
            SubKind::PSubscribe => b"psubscribe",
            SubKind::PUnsubscribe => b"punsubscribe",
        }
    }
}

/// What a written command's reply means.
#[derive(Debug)]
enum Expect {
    Handshake(Step),
    User(Token),
    /// An `EVALSHA`: the arguments after the SHA are kept to send it again
    /// as `EVAL` on `NOSCRIPT`.
    Eval {
        token: Token,
        script: usize,
        tail: Vec<u8>,
        nargs: usize,
    },
    Ping,
    Sub {
        kind: SubKind,
        left: usize,
        handshake: bool,
    },
}

/// The subscriber's probe.
#[derive(Debug)]
enum ProbeState {
    Idle,
    /// Subscribed; waiting for the caller to publish this payload.
    Wanted(Vec<u8>),
    /// Published; due back by the deadline.
    Sent(Vec<u8>, Instant),
}

/// One Redis connection's state. See the module docs.
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    phase: Phase,
    outbox: Outbox<Expect>,
    in_flight: VecDeque<(Expect, Instant)>,
    decoder: Decoder,
    events: VecDeque<LinkEvent>,
    next_token: u64,
    connected_at: Instant,
    connect_deadline: Instant,
    reconnect_at: Instant,
    last_read: Instant,
    attempt: u32,
    rng: u64,
    handshake_left: usize,
    shas: Vec<Option<Vec<u8>>>,
    subs: BTreeSet<Vec<u8>>,
    psubs: BTreeSet<Vec<u8>>,
    probe: ProbeState,
    probe_nonce: u64,
    stats: LinkStats,
}

impl Link {
    /// A link that is down and due to connect at once.
    pub fn new(cfg: LinkConfig, now: Instant) -> Link {
        let mut subs = BTreeSet::new();
        if let Some(p) = &cfg.probe {
            subs.insert(p.channel.clone());
        }
        Link {
            decoder: Decoder::new(cfg.limits),
            shas: vec![None; cfg.scripts.len()],
            rng: cfg.seed | 1,
            cfg,
            phase: Phase::Down,
            outbox: Outbox::new(),
            in_flight: VecDeque::new(),
            events: VecDeque::new(),
            next_token: 0,
            connected_at: now,
            connect_deadline: now,
            reconnect_at: now,
            last_read: now,
            attempt: 0,
            handshake_left: 0,
            subs,
            psubs: BTreeSet::new(),
            probe: ProbeState::Idle,
            probe_nonce: 0,
            stats: LinkStats::new(now),
        }
    }

    /// The link's configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.cfg
    }

    /// Where the link is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Whether it is ready (handshake answered, probe seen).
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Its state and counters.
    pub fn stats(&self) -> LinkStats {
        LinkStats {
            pending_bytes: self.outbox.user_bytes(),
            pending_commands: self.outbox.user_commands(),
            in_flight: self.in_flight.len(),
            ..self.stats.clone()
        }
    }

    /// The next event, if any. Drain them every round.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    // --- What the caller reports ---

    /// Whether the caller should open a socket and connect now.
    pub fn connect_due(&self, now: Instant) -> bool {
        self.phase == Phase::Down && now >= self.reconnect_at
    }

    /// A non-blocking connect was started.
    pub fn connecting(&mut self, now: Instant) {
        if self.phase != Phase::Down {
            return;
        }
        if self.stats.connects > 0 {
            self.stats.reconnects += 1;
        }
        self.stats.connects += 1;
        self.connect_deadline = now + self.cfg.connect_timeout;
        self.enter(Phase::Connecting, now);
    }

    /// The TCP connection is up: the handshake is queued before everything
    /// that waits.
    pub fn connected(&mut self, now: Instant) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.connected_at = now;
        self.last_read = now;
        self.decoder = Decoder::new(self.cfg.limits);
        self.enter(Phase::Handshaking, now);
        let hs = self.handshake(now);
        // Every command queued so far is one step of the handshake.
        self.handshake_left = hs.len();
        self.outbox.prepend(hs);
    }

    /// Bytes arrived from Redis.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        if !matches!(self.phase, Phase::Handshaking | Phase::Ready) {
            return;
        }
        self.stats.bytes_in += bytes.len() as u64;
        self.last_read = now;
        self.decoder.push(bytes);
        loop {
            match self.decoder.next_reply() {
                Ok(Some(reply)) => {
                    self.on_reply(reply, now);
                    if self.phase == Phase::Down {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => return self.go_down(DownReason::Protocol(e), now),
            }
        }
    }

    /// The bytes to write now (empty unless connected).
    pub fn output(&self) -> &[u8] {
        match self.phase {
            Phase::Handshaking | Phase::Ready => self.outbox.unsent(),
            _ => &[],
        }
    }

    /// Whether there is anything to write.
    pub fn wants_write(&self) -> bool {
        !self.output().is_empty()
    }

    /// The first `n` bytes of [`output`](Self::output) were written.
    pub fn wrote(&mut self, n: usize, _now: Instant) {
        if !matches!(self.phase, Phase::Handshaking | Phase::Ready) {
            return;
        }
        self.stats.bytes_out += n as u64;
        let (base, timeout) = (self.connected_at, self.cfg.reply_timeout);
        let in_flight = &mut self.in_flight;
        self.outbox.wrote(n, |e| {
            in_flight.push_back((e.what, e.enqueued.max(base) + timeout));
        });
    }

    /// The socket closed or failed (or could not be made).
    pub fn closed(&mut self, now: Instant) {
        if self.phase != Phase::Down {
            self.go_down(DownReason::Closed, now);
        }
    }

    /// Checks every deadline against `now`. Call it every round (or when
    /// [`next_deadline`](Self::next_deadline) passes).
    pub fn tick(&mut self, now: Instant) {
        match self.phase {
            Phase::Down | Phase::Connecting => {
                if self.phase == Phase::Connecting && now >= self.connect_deadline {
                    return self.go_down(DownReason::ConnectTimeout, now);
                }
                self.expire_pending(now);
            }
            Phase::Handshaking | Phase::Ready => {
                let reply_due = self.in_flight.front().map(|(_, d)| *d);
                let unsent_due = self.outbox.front().map(|e| self.deadline_of(e));
                if reply_due.into_iter().chain(unsent_due).any(|d| now >= d) {
                    return self.go_down(DownReason::ReplyTimeout, now);
                }
                if let ProbeState::Sent(_, due) = &self.probe {
                    if now >= *due {
                        return self.go_down(DownReason::ProbeTimeout, now);
                    }
                }
                if self.ping_due().is_some_and(|d| now >= d) {
                    self.outbox
                        .push(Expect::Ping, false, now, |b| resp::write_command(b, &[b"PING"]));
                }
            }
        }
    }

    /// The earliest time [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut times: Vec<Instant> = Vec::with_capacity(4);
        match self.phase {
            Phase::Down | Phase::Connecting => {
                times.push(if self.phase == Phase::Down {
                    self.reconnect_at
                } else {
                    self.connect_deadline
                });
                if let Some(e) = self.outbox.front() {
                    times.push(e.enqueued + self.cfg.max_pending_age);
                }
            }
            Phase::Handshaking | Phase::Ready => {
                times.extend(self.in_flight.front().map(|(_, d)| *d));
                times.extend(self.outbox.front().map(|e| self.deadline_of(e)));
                if let ProbeState::Sent(_, due) = &self.probe {
                    times.push(*due);
                }
                times.extend(self.ping_due());
            }
        }
        times.into_iter().min()
    }

    // --- What the caller asks ---

    /// Queues a command (an array of bulk strings) on a command link.
    pub fn send(&mut self, now: Instant, args: &[&[u8]]) -> Result<Token, SendError> {
        self.check_room(Role::Commands, resp::command_len(args))?;
        let token = self.token();
        self.outbox
            .push(Expect::User(token), true, now, |b| resp::write_command(b, args));
        Ok(token)
    }

    /// Queues `EVALSHA` of a registered script (or `EVAL`, if its SHA is
    /// not known yet); on `NOSCRIPT` it is sent again as `EVAL` under the
    /// same token (after what was queued meanwhile).
    pub fn send_eval(
        &mut self,
        now: Instant,
        script: &Script,
        keys: &[&[u8]],
        args: &[&[u8]],
    ) -> Result<Token, SendError> {
        let index = self
            .cfg
            .scripts
            .iter()
            .position(|s| s.name == script.name)
            .ok_or(SendError::UnknownScript)?;
        let mut tail = Vec::new();
        resp::write_bulk_int(&mut tail, keys.len() as i64);
        for a in keys.iter().chain(args) {
            resp::write_bulk(&mut tail, a);
        }
        let nargs = 3 + keys.len() + args.len();
        // Encoded first (evals are rare), so the bound is checked exactly.
        let mut bytes = Vec::new();
        let by_sha = match &self.shas[index] {
            Some(sha) => {
                write_eval(&mut bytes, b"EVALSHA", sha, &tail, nargs);
                true
            }
            None => {
                write_eval(
                    &mut bytes,
                    b"EVAL",
                    self.cfg.scripts[index].source.as_bytes(),
                    &tail,
                    nargs,
                );
                false
            }
        };
        self.check_room(Role::Commands, bytes.len())?;
        let token = self.token();
        let what = if by_sha {
            Expect::Eval {
                token,
                script: index,
                tail,
                nargs,
            }
        } else {
            Expect::User(token)
        };
        self.outbox.push(what, true, now, |b| b.extend_from_slice(&bytes));
        Ok(token)
    }

    /// Fails every command of the caller's not yet written (a partly
    /// written one goes on) as [`Failure::Cancelled`].
    pub fn cancel_pending(&mut self) {
        let events = &mut self.events;
        self.outbox.remove_user(|e| {
            if let Some(token) = token_of(&e.what) {
                events.push_back(LinkEvent::Failed {
                    token,
                    why: Failure::Cancelled,
                });
            }
        });
    }

    /// Subscribes to a channel, now and on every reconnect.
    pub fn subscribe(&mut self, now: Instant, channel: &[u8]) -> Result<(), SendError> {
        self.change_sub(now, SubKind::Subscribe, channel)
    }

    /// Unsubscribes from a channel.
    pub fn unsubscribe(&mut self, now: Instant, channel: &[u8]) -> Result<(), SendError> {
        self.change_sub(now, SubKind::Unsubscribe, channel)
    }

    /// Subscribes to a pattern, now and on every reconnect.
    pub fn psubscribe(&mut self, now: Instant, pattern: &[u8]) -> Result<(), SendError> {
        self.change_sub(now, SubKind::PSubscribe, pattern)
    }

    /// Unsubscribes from a pattern.
    pub fn punsubscribe(&mut self, now: Instant, pattern: &[u8]) -> Result<(), SendError> {
        self.change_sub(now, SubKind::PUnsubscribe, pattern)
    }

    /// The channels subscribed (or to be, on the next connection).
    pub fn channels(&self) -> impl Iterator<Item = &[u8]> {
        self.subs.iter().map(Vec::as_slice)
    }

    /// The probe to publish now, `(channel, payload)`: once per connection,
    /// after the subscriptions are confirmed. Take it only when the command
    /// link can send it at once: its deadline starts now.
    pub fn take_probe(&mut self, now: Instant) -> Option<(Vec<u8>, Vec<u8>)> {
        let ProbeState::Wanted(payload) = &self.probe else {
            return None;
        };
        let payload = payload.clone();
        let channel = self
            .cfg
            .probe
            .as_ref()
            .expect("a probe is configured")
            .channel
            .clone();
        self.probe = ProbeState::Sent(payload.clone(), now + self.cfg.reply_timeout);
        Some((channel, payload))
    }

    // --- Inside ---

    fn enter(&mut self, phase: Phase, now: Instant) {
        self.phase = phase;
        self.stats.phase = phase;
        self.stats.since = now;
    }

    fn token(&mut self) -> Token {
        self.next_token += 1;
        self.stats.commands += 1;
        Token(self.next_token)
    }

    fn check_room(&mut self, role: Role, needed: usize) -> Result<(), SendError> {
        if self.cfg.role != role {
            return Err(SendError::WrongRole);
        }
        let waiting = self.outbox.user_bytes();
        if waiting + needed > self.cfg.max_pending_bytes {
            self.stats.refused += 1;
            self.stats.refused_bytes += needed as u64;
            return Err(SendError::Full {
                waiting,
                needed,
                limit: self.cfg.max_pending_bytes,
            });
        }
        Ok(())
    }

    /// When a command's reply is due: its queuing, or the connection's
    /// start if later, plus the reply timeout.
    fn deadline_of(&self, e: &Entry<Expect>) -> Instant {
        e.enqueued.max(self.connected_at) + self.cfg.reply_timeout
    }

    /// When to ping: a ready link with nothing outstanding, idle since the
    /// last byte read.
    fn ping_due(&self) -> Option<Instant> {
        (self.phase == Phase::Ready && self.in_flight.is_empty() && self.outbox.front().is_none())
            .then(|| self.last_read + self.cfg.ping_interval)
    }

    fn change_sub(&mut self, now: Instant, kind: SubKind, name: &[u8]) -> Result<(), SendError> {
        if self.cfg.role != Role::Subscriber {
            return Err(SendError::WrongRole);
        }
        let changed = match kind {
            SubKind::Subscribe => self.subs.insert(name.to_vec()),
            SubKind::Unsubscribe => self.subs.remove(name),
            SubKind::PSubscribe => self.psubs.insert(name.to_vec()),
            SubKind::PUnsubscribe => self.psubs.remove(name),
        };
        // While down, the sets are all there is: the next connection
        // subscribes to them.
        if changed && matches!(self.phase, Phase::Handshaking | Phase::Ready) {
            let expect = Expect::Sub {
                kind,
                left: 1,
                handshake: false,
            };
            self.outbox
                .push(expect, false, now, |b| write_sub(b, kind, [name].into_iter()));
        }
        Ok(())
    }

    fn expire_pending(&mut self, now: Instant) {
        let max_age = self.cfg.max_pending_age;
        let (events, stats) = (&mut self.events, &mut self.stats);
        self.outbox.pop_front_while(
            |e| now >= e.enqueued + max_age,
            |e| {
                if let Some(token) = token_of(&e.what) {
                    stats.expired += 1;
                    events.push_back(LinkEvent::Failed {
                        token,
                        why: Failure::Expired,
                    });
                }
            },
        );
    }

    fn go_down(&mut self, reason: DownReason, now: Instant) {
        let (events, stats) = (&mut self.events, &mut self.stats);
        let mut lose = |what: &Expect| {
            if let Some(token) = token_of(what) {
                stats.lost += 1;
                events.push_back(LinkEvent::Failed {
                    token,
                    why: Failure::Lost,
                });
            }
        };
        for (what, _) in self.in_flight.drain(..) {
            lose(&what);
        }
        self.outbox.reset(|e| lose(&e.what), |e| e.user);
        self.decoder = Decoder::new(self.cfg.limits);
        self.probe = ProbeState::Idle;
        self.handshake_left = 0;
        self.reconnect_at = now + self.backoff();
        self.attempt = self.attempt.saturating_add(1);
        self.enter(Phase::Down, now);
        self.stats.down_since.get_or_insert(now);
        self.stats.last_down = Some(reason.clone());
        self.events.push_back(LinkEvent::Down(reason));
    }

    /// The delay before the next connect: doubling from `backoff_min` up to
    /// `backoff_max`, uniformly jittered over its upper half so nodes that
    /// lost Redis together do not return together.
    fn backoff(&mut self) -> Duration {
        let min = self.cfg.backoff_min.as_micros().max(1) as u64;
        let max = (self.cfg.backoff_max.as_micros() as u64).max(min);
        let base = min.saturating_mul(1 << self.attempt.min(30)).min(max);
        // xorshift64*: good enough for jitter, no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        Duration::from_micros(base / 2 + r % (base / 2 + 1))
    }
}

/// The caller's token of a command, if it is the caller's.
fn token_of(what: &Expect) -> Option<Token> {
    match what {
        Expect::User(t) | Expect::Eval { token: t, .. } => Some(*t),
        _ => None,
    }
}

fn write_sub<N: AsRef<[u8]>>(out: &mut Vec<u8>, kind: SubKind, names: impl ExactSizeIterator<Item = N>) {
    let word: &[u8] = match kind {
        SubKind::Subscribe => b"SUBSCRIBE",
        SubKind::Unsubscribe => b"UNSUBSCRIBE",
        SubKind::PSubscribe => b"PSUBSCRIBE",
        SubKind::PUnsubscribe => b"PUNSUBSCRIBE",
    };
    resp::write_array_len(out, 1 + names.len());
    resp::write_bulk(out, word);
    for n in names {
        resp::write_bulk(out, n.as_ref());
    }
}

fn write_eval(out: &mut Vec<u8>, verb: &[u8], script: &[u8], tail: &[u8], nargs: usize) {
    resp::write_array_len(out, nargs);
    resp::write_bulk(out, verb);
    resp::write_bulk(out, script);
    out.extend_from_slice(tail);
}

#[path = "link_handshake.rs"]
mod handshake;
#[path = "link_publish.rs"]
mod publish;
#[path = "link_replies.rs"]
mod replies;
#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
