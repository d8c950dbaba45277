//! One node's part in a cluster, as a state machine with no sockets: its
//! id, its two [`Link`]s to Redis (commands, subscriber), its heartbeat
//! (which runs the reaper), the cluster's [`Directory`] kept current, and
//! the chat traffic between nodes.
//!
//! The core calls [`claim`](Backplane::claim), [`release`](Backplane::release),
//! [`rename`](Backplane::rename), [`join`](Backplane::join),
//! [`part`](Backplane::part) and the relays ([`send_to`](Backplane::send_to),
//! [`broadcast`](Backplane::broadcast), [`room_send`](Backplane::room_send)),
//! asks the lookups ([`users`](Backplane::users), ...), and takes
//! [`poll_event`](Backplane::poll_event)s: outcomes, deliveries from other
//! nodes, remote presence. The select loop owns the two sockets and reports
//! on them per [`Which`] link, as it would for a bare `Link`
//! (`connect_due`, `connecting`, `connected`, `received`, `output`,
//! `wrote`, `closed`), plus [`tick`](Backplane::tick) and
//! [`next_deadline`](Backplane::next_deadline); `cluster::socket` does that
//! part for it.
//!
//! Order: every frame and script of this node goes out on its one command
//! connection, which Redis runs in order, and every node reads every
//! channel it subscribes to from its one subscriber connection, which
//! Redis fills in the order it ran the publishes. So one sender's `msg`,
//! `all` and `room` frames, and its presence, reach each node in the order
//! sent, and the node hands them to the core in that order.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use super::backplane_config::{node_id, random_u64, BackplaneConfig};
use super::backplane_event::{BackplaneEvent, BackplaneStats, JoinOutcome, Ticket, Which};
use super::directory::Directory;
use super::link::Link;
use super::link_event::{Phase, PubMessage, Token};
use super::local::{Local, WaitingJoin};
use super::scripts::{self, valid_name, BadName, Names};
use super::url::UrlError;

/// Why a backplane could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackplaneError {
    /// A cluster name or node id outside `[A-Za-z0-9_.-]{1,64}`.
    #[error(transparent)]
    Name(#[from] BadName),
    /// The Redis URL's host is not an address.
    #[error(transparent)]
    Url(#[from] UrlError),
}

/// What a command's reply means.
#[derive(Debug)]
enum Pending {
    /// `abandoned`: its client left meanwhile, with this reason.
    Claim {
        ticket: Ticket,
        nick: String,
        abandoned: Option<String>,
    },
    /// A claim of a nick this node already holds (re-announcing it).
    Reclaim {
        nick: String,
    },
    Rename {
        ticket: Ticket,
        old: String,
        new: String,
    },
    Join {
        ticket: Ticket,
        nick: String,
        room: String,
    },
    /// A join made again while re-announcing: nothing to tell.
    Rejoin,
    Release {
        folded: String,
    },
    Part,
    Heartbeat {
        sent: Instant,
    },
    Snapshot,
    Probe,
    Leave,
}

/// How current the directory is.
#[derive(Debug)]
enum Sync {
    /// Maybe behind: events apply only while their versions follow on.
    Stale,
    /// A snapshot was asked for: messages wait behind it (bounded), so the
    /// presence it brings comes before them.
    Reading {
        token: Token,
        held: VecDeque<PubMessage>,
        held_bytes: usize,
    },
    /// Read from a snapshot on this subscriber connection, with every event
    /// since.
    Current,
}

/// A node's cluster membership. See the module docs.
#[derive(Debug)]
pub struct Backplane {
    cfg: BackplaneConfig,
    names: Names,
    node: String,
    prefix: Vec<u8>,
    all_channel: Vec<u8>,
    node_channel: Vec<u8>,
    addr: SocketAddr,
    cmd: Link,
    sub: Link,
    dir: Directory,
    sync: Sync,
    want_sync: bool,
    ever_synced: bool,
    /// A heartbeat was answered on this command connection.
    registered: bool,
    /// `leave` was called: no more heartbeats, claims or joins.
    left: bool,
    was_up: bool,
    next_heartbeat: Option<Instant>,
    heartbeat_in_flight: bool,
    /// A heartbeat was lost with its connection: Redis may have run it
    /// (reaping this node and answering `new` to nobody), so the next one
    /// answered re-announces whatever it says.
    heartbeat_lost: bool,
    local: Local,
    pending: HashMap<Token, Pending>,
    next_ticket: u64,
    events: VecDeque<BackplaneEvent>,
    /// The nicks a node's reaping freed, gathered until its `down`.
    down_run: Option<(String, u64, Vec<String>)>,
    /// Nicks in the directory on other nodes, and per room, or `None`
    /// after the directory changed.
    remote_counts: Option<(usize, HashMap<String, usize>)>,
    stats: BackplaneStats,
}

impl Backplane {
    /// A node that is not connected yet: both links are due to connect.
    pub fn new(cfg: BackplaneConfig, now: Instant) -> Result<Backplane, BackplaneError> {
        let names = Names::new(&cfg.cluster)?;
        let node = cfg.node_id.clone().unwrap_or_else(node_id);
        if !valid_name(&node) {
            return Err(BadName {
                what: "node id",
                name: node,
            }
            .into());
        }
        let addr = cfg.url.socket_addr()?;
        let (cmd_cfg, sub_cfg) = cfg.links(&node, &names, random_u64());
        let cmd = Link::new(cmd_cfg, now);
        let mut sub = Link::new(sub_cfg, now);
        let all_channel = names.all_channel().into_bytes();
        sub.subscribe(now, &all_channel).expect("a subscriber subscribes");
        let stats = BackplaneStats {
            node: node.clone(),
            up: false,
            commands: cmd.stats(),
            subscriber: sub.stats(),
            nodes: 0,
            users: 0,
            local_users: 0,
            reconnects: 0,
            relayed_out: 0,
            relayed_in: 0,
            relay_refused: 0,
            relay_failed: 0,
            relay_dropped: 0,
            resyncs: 0,
            gaps: 0,
            reannounces: 0,
            evictions: 0,
            heartbeats: 0,
            reaped: 0,
        };
        Ok(Backplane {
            prefix: names.prefix().as_bytes().to_vec(),
            node_channel: names.node_channel(&node).into_bytes(),
            all_channel,
            names,
            node,
            addr,
            cmd,
            sub,
            dir: Directory::default(),
            sync: Sync::Stale,
            want_sync: true,
            ever_synced: false,
            registered: false,
            left: false,
            was_up: false,
            next_heartbeat: None,
            heartbeat_in_flight: false,
            heartbeat_lost: false,
            local: Local::default(),
            pending: HashMap::new(),
            next_ticket: 0,
            events: VecDeque::new(),
            down_run: None,
            remote_counts: None,
            stats,
            cfg,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The cluster's key and channel names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The settings it runs with.
    pub fn config(&self) -> &BackplaneConfig {
        &self.cfg
    }

    /// Whether the cluster is usable: both links ready, the directory
    /// current, this node registered. While it is not, `claim`, `join` and
    /// `rename` answer `Unavailable` and local chat goes on.
    pub fn is_up(&self) -> bool {
        self.cmd.is_ready()
            && self.sub.is_ready()
            && matches!(self.sync, Sync::Current)
            && self.registered
            && !self.left
    }

    /// The next event, if any. Drain them after every call.
    pub fn poll_event(&mut self) -> Option<BackplaneEvent> {
        self.events.pop_front()
    }

    // --- Time ---

    /// Checks every deadline (replies, reconnects, pings, the heartbeat).
    pub fn tick(&mut self, now: Instant) {
        self.cmd.tick(now);
        self.sub.tick(now);
        self.pump(now);
    }

    /// The earliest time [`tick`](Self::tick) has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let heartbeat = self
            .next_heartbeat
            .filter(|_| self.cmd.is_ready() && !self.heartbeat_in_flight);
        [self.cmd.next_deadline(), self.sub.next_deadline(), heartbeat]
            .into_iter()
            .flatten()
            .min()
    }

    // --- The sockets (owned by the select loop) ---

    /// Where Redis is.
    pub fn redis_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the loop should open `which`'s socket and connect now.
    pub fn connect_due(&self, which: Which, now: Instant) -> bool {
        self.link(which).connect_due(now)
    }

    /// Whether `which` wants its socket open; false once it went down:
    /// close it.
    pub fn wants_socket(&self, which: Which) -> bool {
        self.link(which).phase() != Phase::Down
    }

    /// A non-blocking connect of `which` was started.
    pub fn connecting(&mut self, which: Which, now: Instant) {
        self.link_mut(which).connecting(now);
        self.pump(now);
    }

    /// `which`'s TCP connection is up.
    pub fn connected(&mut self, which: Which, now: Instant) {
        self.link_mut(which).connected(now);
        self.pump(now);
    }

    /// Bytes read from `which`.
    pub fn received(&mut self, which: Which, bytes: &[u8], now: Instant) {
        self.link_mut(which).received(bytes, now);
        self.pump(now);
    }

    /// The bytes to write to `which` now.
    pub fn output(&self, which: Which) -> &[u8] {
        self.link(which).output()
    }

    /// Whether `which` has bytes to write.
    pub fn wants_write(&self, which: Which) -> bool {
        self.link(which).wants_write()
    }

    /// The first `n` bytes of [`output`](Self::output) were written.
    pub fn wrote(&mut self, which: Which, n: usize, now: Instant) {
        self.link_mut(which).wrote(n, now);
        self.pump(now);
    }

    /// `which`'s socket closed or failed (or could not be made).
    pub fn closed(&mut self, which: Which, now: Instant) {
        self.link_mut(which).closed(now);
        self.pump(now);
    }

    /// State and counters.
    pub fn stats(&self) -> BackplaneStats {
        let (commands, subscriber) = (self.cmd.stats(), self.sub.stats());
        BackplaneStats {
            up: self.is_up(),
            reconnects: commands.reconnects + subscriber.reconnects,
            commands,
            subscriber,
            nodes: self.dir.nodes.len(),
            users: self.users().len(),
            local_users: self.local.users.len(),
            ..self.stats.clone()
        }
    }

    // --- Inside ---

    fn link(&self, which: Which) -> &Link {
        match which {
            Which::Commands => &self.cmd,
            Which::Subscriber => &self.sub,
        }
    }

    fn link_mut(&mut self, which: Which) -> &mut Link {
        match which {
            Which::Commands => &mut self.cmd,
            Which::Subscriber => &mut self.sub,
        }
    }

    /// Handles every link event, then what follows from them (the probe,
    /// the snapshot, the heartbeat, up or down), until nothing is left.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut any = false;
            while let Some(e) = self.cmd.poll_event() {
                any = true;
                self.on_cmd_event(e, now);
            }
            while let Some(e) = self.sub.poll_event() {
                any = true;
                self.on_sub_event(e, now);
            }
            if self.cmd.is_ready() {
                if let Some((channel, payload)) = self.sub.take_probe(now) {
                    if let Ok(token) = self.cmd.send(now, &[b"PUBLISH", &channel, &payload]) {
                        self.pending.insert(token, Pending::Probe);
                    }
                }
            }
            self.request_snapshot(now);
            self.heartbeat(now);
            // Going down cancels commands: their failures are events.
            let changed = self.update_up(now);
            if !any && !changed {
                return;
            }
        }
    }

    /// Sends the heartbeat when due (one at a time).
    fn heartbeat(&mut self, now: Instant) {
        let due = self.next_heartbeat.is_some_and(|t| now >= t);
        if !self.cmd.is_ready() || self.heartbeat_in_flight || !due || self.left {
            return;
        }
        let ttl = self.cfg.node_timeout.as_millis().to_string();
        if self
            .eval(
                now,
                &scripts::HEARTBEAT,
                &[ttl.as_bytes()],
                Pending::Heartbeat { sent: now },
            )
            .is_some()
        {
            self.heartbeat_in_flight = true;
        }
    }

    /// Tells the core when the cluster becomes usable or stops being so;
    /// on the way down, what waits to be sent for the core is cancelled
    /// (it is answered `Unavailable`). Says whether it changed.
    fn update_up(&mut self, now: Instant) -> bool {
        let up = self.is_up();
        if up == self.was_up {
            return false;
        }
        self.was_up = up;
        if up {
            self.events.push_back(BackplaneEvent::Up);
            return true;
        }
        self.events.push_back(BackplaneEvent::Down);
        let pending = &self.pending;
        self.cmd.cancel_where(|t| {
            matches!(
                pending.get(&t),
                Some(Pending::Claim { .. } | Pending::Rename { .. } | Pending::Join { .. })
            )
        });
        let waiting: Vec<WaitingJoin> = self
            .local
            .rooms
            .values_mut()
            .flat_map(|r| std::mem::take(&mut r.waiting))
            .collect();
        for j in waiting {
            self.join_failed(j.ticket, &j.nick, &j.room, JoinOutcome::Unavailable, now);
        }
        true
    }
}

#[path = "backplane_calls.rs"]
mod calls;
#[path = "backplane_replies.rs"]
mod replies;
#[path = "backplane_resync.rs"]
mod resync;
#[path = "backplane_sync.rs"]
mod sync;
#[cfg(test)]
#[path = "backplane_tests.rs"]
mod tests;
#[path = "backplane_view.rs"]
mod view;
