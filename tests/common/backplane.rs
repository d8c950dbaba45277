//! Backplanes over real sockets to a real redis-server, several at once in
//! one test select() loop (as each server's loop will pump its own), each
//! with a fake core that records what it is told. A node can be left
//! unpumped (its host stopped calling it) or dropped (killed: no goodbye).
//! Every wait has a deadline.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chat::cluster::{
    Backplane, BackplaneConfig, BackplaneEvent, ClaimOutcome, JoinOutcome, LinkSockets, Presence, RedisUrl,
    Ticket,
};
use nix::sys::select::{select, FdSet};
use nix::sys::time::{TimeVal, TimeValLike};

/// How long any wait here may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// What a node's fake core was told.
#[derive(Debug, Default)]
pub struct FakeCore {
    /// Every event, in order.
    pub log: Vec<BackplaneEvent>,
    /// Claim outcomes by ticket.
    pub claims: HashMap<Ticket, ClaimOutcome>,
    /// Join outcomes by ticket.
    pub joins: HashMap<Ticket, JoinOutcome>,
    /// Frames from other nodes, in order: (kind, to or room, payload).
    pub frames: Vec<(&'static str, String, String)>,
}

impl FakeCore {
    fn take(&mut self, e: BackplaneEvent) {
        match &e {
            BackplaneEvent::Claim { ticket, outcome, .. } => {
                self.claims.insert(*ticket, outcome.clone());
            }
            BackplaneEvent::Join { ticket, outcome, .. } => {
                self.joins.insert(*ticket, outcome.clone());
            }
            BackplaneEvent::Deliver { to, payload, .. } => self.frame("msg", to, payload),
            BackplaneEvent::Broadcast { payload, .. } => self.frame("all", "", payload),
            BackplaneEvent::Room { room, payload, .. } => self.frame("room", room, payload),
            _ => {}
        }
        self.log.push(e);
    }

    fn frame(&mut self, kind: &'static str, to: &str, payload: &[u8]) {
        let text = String::from_utf8(payload.to_vec()).unwrap();
        self.frames.push((kind, to.to_string(), text));
    }

    /// The presence events seen, in order.
    pub fn presence(&self) -> Vec<&Presence> {
        self.log
            .iter()
            .filter_map(|e| match e {
                BackplaneEvent::Presence(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// How many events match `pred`.
    pub fn count(&self, pred: impl Fn(&BackplaneEvent) -> bool) -> usize {
        self.log.iter().filter(|e| pred(e)).count()
    }
}

/// One node: its backplane, its sockets, its fake core.
pub struct Node {
    pub bp: Backplane,
    pub socks: LinkSockets,
    pub core: FakeCore,
    /// False: its host stopped pumping it.
    pub pumped: bool,
}

impl Node {
    /// A node `id` of cluster `cluster` on Redis at `url`.
    pub fn new(url: &str, cluster: &str, id: &str, node_timeout: Duration) -> Node {
        Node::with(url, cluster, id, node_timeout, |_| {})
    }

    /// As [`new`](Self::new), with the config changed by `tune`.
    pub fn with(
        url: &str,
        cluster: &str,
        id: &str,
        node_timeout: Duration,
        tune: impl FnOnce(&mut BackplaneConfig),
    ) -> Node {
        let url: RedisUrl = url.parse().unwrap();
        let mut cfg = BackplaneConfig::new(url, cluster, node_timeout);
        cfg.node_id = Some(id.to_string());
        tune(&mut cfg);
        Node {
            bp: Backplane::new(cfg, Instant::now()).unwrap(),
            socks: LinkSockets::new(),
            core: FakeCore::default(),
            pumped: true,
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.bp.poll_event() {
            self.core.take(e);
        }
    }

    pub fn claim(&mut self, nick: &str) -> Ticket {
        let t = self.bp.claim(nick, Instant::now());
        self.collect();
        t
    }

    pub fn join(&mut self, nick: &str, room: &str) -> Ticket {
        let t = self.bp.join(nick, room, 0, Instant::now());
        self.collect();
        t
    }
}

/// Several nodes pumped by one select() loop.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// `n` nodes named `n0`, `n1`, ... of cluster `cluster` on `url`.
    pub fn new(url: &str, cluster: &str, n: usize, node_timeout: Duration) -> Cluster {
        Cluster {
            nodes: (0..n)
                .map(|i| Node::new(url, cluster, &format!("n{i}"), node_timeout))
                .collect(),
        }
    }

    /// One round for every pumped node: connects due, one select() over
    /// all their sockets (at most `max_wait`, less if a deadline is
    /// nearer), reads, writes, deadlines.
    pub fn round(&mut self, max_wait: Duration) {
        let now = Instant::now();
        let mut deadline = now + max_wait;
        for n in self.nodes.iter_mut().filter(|n| n.pumped) {
            n.socks.prepare(&mut n.bp, now);
            n.collect();
            if let Some(d) = n.bp.next_deadline() {
                deadline = deadline.min(d);
            }
        }
        let mut ready = Vec::new();
        {
            let (mut r, mut w) = (FdSet::new(), FdSet::new());
            let mut nfds = 0;
            let mut watched = Vec::new();
            for (i, n) in self.nodes.iter().enumerate().filter(|(_, n)| n.pumped) {
                for watch in n.socks.interest(&n.bp) {
                    let fd = n.socks.fd(watch.which).expect("open");
                    if watch.read {
                        r.insert(fd);
                    }
                    if watch.write {
                        w.insert(fd);
                    }
                    nfds = nfds.max(watch.fd + 1);
                    watched.push((i, watch.which, fd));
                }
            }
            let timeout = deadline.saturating_duration_since(Instant::now());
            let mut tv = TimeVal::microseconds(timeout.as_micros() as i64);
            if select(nfds, &mut r, &mut w, None, &mut tv).is_ok() {
                for (i, which, fd) in watched {
                    let (readable, writable) = (r.contains(fd), w.contains(fd));
                    if readable || writable {
                        ready.push((i, which, readable, writable));
                    }
                }
            }
        }
        let now = Instant::now();
        for (i, which, readable, writable) in ready {
            let n = &mut self.nodes[i];
            n.socks.ready(&mut n.bp, which, readable, writable, now);
        }
        for n in self.nodes.iter_mut().filter(|n| n.pumped) {
            n.bp.tick(now);
            n.socks.flush(&mut n.bp, now);
            n.collect();
        }
    }

    /// Pumps until `done` says so; panics after [`WAIT`], showing `what`.
    pub fn until(&mut self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        self.until_within(what, WAIT, &mut done);
    }

    /// As [`until`](Self::until), with its own deadline.
    pub fn until_within(&mut self, what: &str, wait: Duration, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + wait;
        while !done(self) {
            if Instant::now() >= deadline {
                let stats: Vec<_> = self.nodes.iter().map(|n| n.bp.stats()).collect();
                panic!("not {what} within {wait:?}: {stats:#?}");
            }
            self.round(Duration::from_millis(20));
        }
    }

    /// Pumps until every pumped node is up.
    pub fn until_up(&mut self) {
        self.until("up", |c| {
            c.nodes.iter().filter(|n| n.pumped).all(|n| n.bp.is_up())
        });
    }

    /// Pumps until every pumped node lists exactly `users`.
    pub fn until_users(&mut self, users: &[&str]) {
        let want: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        self.until(&format!("users {want:?}"), |c| {
            c.nodes
                .iter()
                .filter(|n| n.pumped)
                .all(|n| n.bp.users() == want.iter().map(String::as_str).collect::<Vec<_>>())
        });
    }

    /// Claims `nick` on node `i` and waits for the outcome.
    pub fn claim(&mut self, i: usize, nick: &str) -> ClaimOutcome {
        let t = self.nodes[i].claim(nick);
        self.until(&format!("claim of {nick}"), |c| {
            c.nodes[i].core.claims.contains_key(&t)
        });
        self.nodes[i].core.claims[&t].clone()
    }

    /// Joins `nick` on node `i` to `room` and waits for the outcome.
    pub fn join(&mut self, i: usize, nick: &str, room: &str) -> JoinOutcome {
        let t = self.nodes[i].join(nick, room);
        self.until(&format!("join of {nick} to {room}"), |c| {
            c.nodes[i].core.joins.contains_key(&t)
        });
        self.nodes[i].core.joins[&t].clone()
    }
}
