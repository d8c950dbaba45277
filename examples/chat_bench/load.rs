//! The load itself: every client connection on one thread and one
//! edge-triggered `mio::Poll`, set up in batches, then driven until each
//! sender's messages have all been delivered (or the time bound passes).
//!
//! Flow control is per sender: it sends its next message only while fewer
//! than `window` of its messages are not yet delivered to every recipient,
//! so the load is a bounded pipeline rather than a flood that would only
//! measure queue growth.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};

use crate::conn::Conn;
use crate::link::Link;
use crate::stamp::Stamp;
use crate::wire::{self, Incoming, Target, FANOUT_CHANNEL};

/// Connections opened per batch: small enough for the server's listen
/// backlog, so no SYN is dropped and retried a second later.
const CONNECT_BATCH: usize = 64;

/// What to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Senders broadcast; every other client receives.
    Fanout,
    /// Pairs of clients message each other.
    Unicast,
    /// A fan-out, while some receivers also measure ping round trips.
    Rtt,
    /// Clients register and stay idle: the server's memory per client.
    Idle,
    /// No server: one loopback TCP stream, for the bandwidth baseline.
    Bandwidth,
}

/// The parameters of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Which server.
    pub target: Target,
    /// Its address (loopback).
    pub addr: SocketAddr,
    /// What to run.
    pub scenario: Scenario,
    /// Receiving clients (fanout, rtt, idle), or all clients (unicast).
    pub clients: usize,
    /// Broadcasting clients (fanout, rtt).
    pub senders: usize,
    /// Messages per sender.
    pub messages: u64,
    /// Text bytes per message.
    pub size: usize,
    /// Most messages per sender not yet delivered to all.
    pub window: usize,
    /// Receivers that also ping (rtt).
    pub pingers: usize,
    /// Size of each client's reads.
    pub read_bytes: usize,
    /// The whole run stops by this time.
    pub deadline: Instant,
    /// What the chat clients speak under the protocol.
    pub link: Link,
}

/// What a run measured.
pub struct Tally {
    /// Messages received by clients during the measured phase.
    pub deliveries: u64,
    /// Deliveries the plan called for.
    pub expected: u64,
    /// Bytes read by all clients during the measured phase.
    pub bytes_in: u64,
    /// From the first send to the last delivery.
    pub elapsed: Duration,
    /// Send-to-receive time of every delivery, ns.
    pub latency: Histogram<u64>,
    /// Ping round trips, ns.
    pub rtt: Histogram<u64>,
    /// Out-of-order, lost or duplicated deliveries and server errors.
    pub errors: u64,
    /// The first of them, described.
    pub first_error: Option<String>,
    /// Whether the time bound cut the run short.
    pub timed_out: bool,
}

/// One in-flight window.
struct Sender {
    conn: usize,
    /// The recipient's name (unicast) or `None` (broadcast).
    to: Option<String>,
    next: u64,
    /// The oldest sequence number not yet delivered to all.
    oldest: u64,
    /// Recipients still to receive each in-flight message, by `seq % window`.
    pending: Vec<u32>,
}

/// Everything frame handling updates (kept apart from the connections so
/// that a connection can be read while this is written).
struct State {
    target: Target,
    unicast: bool,
    base: Instant,
    window: u64,
    messages: u64,
    recipients: u32,
    senders: Vec<Sender>,
    /// Next sequence number expected, by connection and sender slot.
    expect: Vec<u64>,
    slots: usize,
    ready_left: Vec<usize>,
    not_ready: usize,
    /// The last client's nick, whose `online` presence ends the set-up.
    last_nick: String,
    settled: Vec<bool>,
    unsettled: usize,
    measuring: bool,
    deliveries: u64,
    errors: u64,
    first_error: Option<String>,
    fatal: Option<String>,
    latency: Histogram<u64>,
    rtt: Histogram<u64>,
    ping_due: Vec<usize>,
    last_delivery: Instant,
    last_pong: Instant,
}

impl State {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }

    fn handle(&mut self, at: usize, msg: Incoming, now: Instant) {
        match msg {
            Incoming::Delivery(stamp) => self.delivered(at, stamp, now),
            Incoming::Pong(id) => {
                self.last_pong = now;
                let ns = (now - self.base).as_nanos() as u64;
                let _ = self.rtt.record(ns.saturating_sub(id).max(1));
                if self.measuring {
                    self.ping_due.push(at);
                }
            }
            Incoming::Ready => {
                if let Some(left) = self.ready_left.get_mut(at).filter(|l| **l > 0) {
                    *left -= 1;
                    if *left == 0 {
                        self.not_ready -= 1;
                    }
                }
            }
            Incoming::Online(nick) => {
                if nick == self.last_nick && !self.settled[at] {
                    self.settled[at] = true;
                    self.unsettled -= 1;
                }
            }
            Incoming::Error(e) => {
                let what = format!("connection {at}: server error {e}");
                if self.not_ready > 0 {
                    self.fatal = Some(what);
                } else {
                    self.error(what);
                }
            }
            Incoming::Other => {}
        }
    }

    fn delivered(&mut self, at: usize, stamp: Stamp, now: Instant) {
        self.deliveries += 1;
        self.last_delivery = now;
        let s = stamp.sender as usize;
        if s >= self.senders.len() || stamp.seq >= self.senders[s].next {
            return self.error(format!("connection {at}: unexpected {stamp:?}"));
        }
        let slot = at * self.slots + if self.unicast { 0 } else { s };
        let expected = self.expect[slot];
        if stamp.seq != expected {
            self.error(format!(
                "connection {at}: seq {} from sender {s}, expected {expected}",
                stamp.seq
            ));
        }
        self.expect[slot] = stamp.seq + 1;
        let ns = (now - self.base).as_nanos() as u64;
        let _ = self.latency.record(ns.saturating_sub(stamp.sent_ns).max(1));
        let w = self.window;
        let sender = &mut self.senders[s];
        if stamp.seq < sender.oldest {
            return self.error(format!("connection {at}: duplicate {stamp:?}"));
        }
        let left = &mut sender.pending[(stamp.seq % w) as usize];
        *left = left.saturating_sub(1);
        while sender.oldest < sender.next && sender.pending[(sender.oldest % w) as usize] == 0 {
            sender.oldest += 1;
        }
    }

    fn all_delivered(&self) -> bool {
        self.senders
            .iter()
            .all(|s| s.next == self.messages && s.oldest == self.messages)
    }
}

/// The connections, their poller, and the state.
pub struct Load {
    plan: Plan,
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    state: State,
    /// Connections to open, and how many of them (the first) send.
    total: usize,
    sender_count: usize,
}

/// A client's name, the channel it subscribes to (Redis), and whether it
/// sends.
struct Role {
    name: String,
    subscribe: Option<String>,
    sends_to: Option<Option<String>>,
}

impl Load {
    /// Plans the connections; nothing is opened yet.
    pub fn new(plan: &Plan) -> io::Result<Load> {
        let unicast = plan.scenario == Scenario::Unicast;
        let senders = match plan.scenario {
            Scenario::Fanout | Scenario::Rtt => plan.senders,
            Scenario::Unicast => plan.clients,
            Scenario::Idle | Scenario::Bandwidth => 0,
        };
        let total = if unicast {
            plan.clients
        } else {
            senders + plan.clients
        };
        let recipients = match (plan.scenario, plan.target) {
            (Scenario::Unicast, _) => 1,
            // The chat protocol (and the relay) sends a broadcast to every
            // other client, other senders included; Redis only to
            // subscribers.
            (_, Target::Chat | Target::Relay) => total.saturating_sub(1),
            _ => plan.clients,
        };
        let hist = || Histogram::<u64>::new_with_bounds(1, 3_600_000_000_000, 3).map_err(io::Error::other);
        let slots = if unicast { 1 } else { senders.max(1) };
        let state = State {
            target: plan.target,
            unicast,
            base: Instant::now(),
            window: plan.window.max(1) as u64,
            messages: plan.messages,
            recipients: u32::try_from(recipients).map_err(io::Error::other)?,
            senders: Vec::with_capacity(senders),
            expect: vec![0; total * slots],
            slots,
            ready_left: Vec::with_capacity(total),
            not_ready: 0,
            last_nick: Self::role_of(plan, total - 1, senders).name,
            settled: vec![false; total],
            unsettled: total.saturating_sub(1),
            measuring: false,
            deliveries: 0,
            errors: 0,
            first_error: None,
            fatal: None,
            latency: hist()?,
            rtt: hist()?,
            ping_due: Vec::new(),
            last_delivery: Instant::now(),
            last_pong: Instant::now(),
        };
        Ok(Load {
            plan: plan.clone(),
            poll: Poll::new()?,
            events: Events::with_capacity(4096),
            conns: Vec::with_capacity(total),
            state,
            total,
            sender_count: senders,
        })
    }

    fn role_of(plan: &Plan, i: usize, senders: usize) -> Role {
        if plan.scenario == Scenario::Unicast {
            let partner = i ^ 1;
            return Role {
                name: format!("u{i}"),
                subscribe: Some(format!("u{i}")),
                sends_to: Some(Some(format!("u{partner}"))),
            };
        }
        if i < senders {
            Role {
                name: format!("s{i}"),
                subscribe: None,
                sends_to: Some(None),
            }
        } else {
            Role {
                name: format!("r{}", i - senders),
                subscribe: Some(FANOUT_CHANNEL.to_string()),
                sends_to: None,
            }
        }
    }

    /// Connects and sets up every client, in batches; for chat, waits until
    /// every client has seen the last one come online, so no presence
    /// traffic is left in flight when the measurement starts.
    pub fn set_up(&mut self) -> io::Result<()> {
        let (total, senders) = (self.total, self.sender_count);
        // The last client gets a batch of its own: registering strictly
        // after all others, its `online` is the last presence anyone gets.
        let last = total.saturating_sub(1);
        let batches = (0..last)
            .step_by(CONNECT_BATCH)
            .map(|start| start..(start + CONNECT_BATCH).min(last))
            .chain(std::iter::once(last..total));
        for batch in batches {
            for i in batch {
                let role = Self::role_of(&self.plan, i, senders);
                let mut conn = Conn::connect(
                    self.plan.addr,
                    Token(i),
                    self.poll.registry(),
                    self.plan.read_bytes,
                    &self.plan.link,
                )?;
                let steps = wire::handshake(
                    self.plan.target,
                    &mut conn.out,
                    &role.name,
                    role.subscribe.as_deref(),
                );
                conn.flush()?;
                self.conns.push(conn);
                self.state.ready_left.push(steps);
                if steps > 0 {
                    self.state.not_ready += 1;
                }
                if let Some(to) = role.sends_to {
                    self.state.senders.push(Sender {
                        conn: i,
                        to,
                        next: 0,
                        oldest: 0,
                        pending: vec![0; self.state.window as usize],
                    });
                }
            }
            self.pump_while(|s| s.not_ready > 0, "registration")?;
        }
        if self.plan.target == Target::Relay && total > 1 {
            // No welcome to wait for: the last client's probe reaching every
            // other client shows the relay accepted them all (it accepts in
            // connection order, and reads a client only once accepted).
            let name = self.state.last_nick.clone();
            let conn = &mut self.conns[last];
            crate::relay::probe(&mut conn.out, &name);
            conn.flush()?;
        }
        if matches!(self.plan.target, Target::Chat | Target::Relay) {
            self.pump_while(|s| s.unsettled > 0, "presence to settle")?;
        }
        Ok(())
    }

    /// Runs the senders (and pingers) until every message is delivered or
    /// the deadline passes.
    pub fn measure(&mut self) -> io::Result<Tally> {
        let bytes_before: u64 = self.conns.iter().map(|c| c.bytes_in).sum();
        self.state.measuring = true;
        let first_receiver = self.state.senders.len();
        if self.plan.scenario == Scenario::Rtt {
            let last = (first_receiver + self.plan.pingers).min(self.conns.len());
            self.state.ping_due.extend(first_receiver..last);
        }
        let ping_target = if self.state.senders.is_empty() {
            self.plan.messages * self.plan.pingers as u64
        } else {
            0
        };
        let started = Instant::now();
        self.state.last_delivery = started;
        let mut timed_out = false;
        loop {
            self.send_due()?;
            let done = if self.plan.scenario == Scenario::Rtt && self.state.senders.is_empty() {
                self.state.rtt.len() >= ping_target
            } else {
                self.state.all_delivered()
            };
            if done {
                break;
            }
            if Instant::now() >= self.plan.deadline {
                timed_out = true;
                self.state.last_delivery = Instant::now();
                self.state.last_pong = self.state.last_delivery;
                break;
            }
            self.pump(Duration::from_millis(100))?;
        }
        let expected =
            self.state.senders.len() as u64 * self.plan.messages * u64::from(self.state.recipients);
        let bytes_in = self.conns.iter().map(|c| c.bytes_in).sum::<u64>() - bytes_before;
        let s = &mut self.state;
        // Pings alone (rtt without senders): the run ends with the last pong.
        let end = if s.senders.is_empty() {
            s.last_pong
        } else {
            s.last_delivery
        };
        Ok(Tally {
            deliveries: s.deliveries,
            expected,
            bytes_in,
            elapsed: end.max(started) - started,
            latency: s.latency.clone(),
            rtt: s.rtt.clone(),
            errors: s.errors,
            first_error: s.first_error.take(),
            timed_out,
        })
    }

    /// Fills every sender's window and sends due pings, one write per
    /// connection.
    fn send_due(&mut self) -> io::Result<()> {
        let now_ns = (Instant::now() - self.state.base).as_nanos() as u64;
        let s = &mut self.state;
        for (k, sender) in s.senders.iter_mut().enumerate() {
            let conn = &mut self.conns[sender.conn];
            let mut wrote = false;
            while sender.next < s.messages && sender.next - sender.oldest < s.window {
                let stamp = Stamp {
                    sender: k as u32,
                    seq: sender.next,
                    sent_ns: now_ns,
                };
                wire::message(
                    s.target,
                    &mut conn.out,
                    sender.to.as_deref(),
                    stamp,
                    self.plan.size,
                );
                sender.pending[(sender.next % s.window) as usize] = s.recipients;
                sender.next += 1;
                wrote = true;
            }
            if wrote {
                conn.flush()?;
            }
        }
        let senders_busy = s.senders.iter().any(|x| x.next < s.messages);
        for i in s.ping_due.drain(..) {
            if senders_busy || s.senders.is_empty() {
                wire::ping(s.target, &mut self.conns[i].out, now_ns);
                self.conns[i].flush()?;
            }
        }
        Ok(())
    }

    fn pump_while(&mut self, busy: impl Fn(&State) -> bool, what: &str) -> io::Result<()> {
        while busy(&self.state) {
            if Instant::now() >= self.plan.deadline {
                return Err(io::Error::other(format!("time bound reached waiting for {what}")));
            }
            self.pump(Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// One wait for readiness, and the reads and writes it allows.
    fn pump(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            other => other?,
        }
        let target = self.plan.target;
        let state = &mut self.state;
        for ev in self.events.iter() {
            let i = ev.token().0;
            let conn = &mut self.conns[i];
            if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                match conn.read_frames(target, |m, now| state.handle(i, m, now)) {
                    Ok(true) => {}
                    Ok(false) => state.fatal = Some(format!("connection {i} closed by the server")),
                    Err(e) => state.fatal = Some(format!("connection {i}: {e}")),
                }
            }
            if ev.is_writable() && conn.unsent() > 0 {
                conn.flush()?;
            }
        }
        match state.fatal.take() {
            Some(f) => Err(io::Error::other(f)),
            None => Ok(()),
        }
    }
}
