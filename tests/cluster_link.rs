//! The Redis link state machine over a real socket to a real redis-server,
//! driven by a small loop that does what the server's select() loop will:
//! a non-blocking socket, `select()`, read, write, and the link's
//! deadlines as the timeout. Pipelined replies come back in order; a
//! SIGSTOPped Redis and a black-holing proxy are found dead by the reply
//! deadline; after Redis restarts empty the link reconnects, subscribes
//! again and sees its own probe; what waits during an outage is bounded
//! in bytes and age.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use chat::cluster::scripts::{self, Names};
use chat::cluster::{
    DownReason, Failure, Link, LinkConfig, LinkEvent, Phase, Probe, RedisUrl, Role, SendError, Token,
};
use chat::codec::resp::Reply;
use common::redis::{BlackHole, RedisServer};
use nix::errno::Errno;
use nix::sys::select::{select, FdSet};
use nix::sys::socket::{self, sockopt, AddressFamily, MsgFlags, SockFlag, SockType, SockaddrIn};
use nix::sys::time::{TimeVal, TimeValLike};

/// How long any wait here may take before the test fails.
const WAIT: Duration = Duration::from_secs(15);

/// One link and its socket, pumped as the server's loop will pump it.
struct Driver {
    link: Link,
    addr: SocketAddr,
    sock: Option<OwnedFd>,
    connecting: bool,
    /// Every event seen, in order, until taken.
    events: VecDeque<LinkEvent>,
}

impl Driver {
    fn new(cfg: LinkConfig, addr: SocketAddr) -> Driver {
        Driver {
            link: Link::new(cfg, Instant::now()),
            addr,
            sock: None,
            connecting: false,
            events: VecDeque::new(),
        }
    }

    fn collect(&mut self) {
        while let Some(e) = self.link.poll_event() {
            if matches!(e, LinkEvent::Down(_)) {
                // The link is down: close the socket, if it is still open.
                self.sock = None;
                self.connecting = false;
            }
            self.events.push_back(e);
        }
    }

    fn start_connect(&mut self, now: Instant) {
        let SocketAddr::V4(v4) = self.addr else {
            panic!("IPv4 only")
        };
        let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
        let fd = socket::socket(AddressFamily::Inet, SockType::Stream, flags, None).unwrap();
        self.link.connecting(now);
        match socket::connect(fd.as_raw_fd(), &SockaddrIn::from(v4)) {
            Ok(()) => self.link.connected(now),
            Err(Errno::EINPROGRESS) => self.connecting = true,
            Err(_) => return self.link.closed(now),
        }
        self.sock = Some(fd);
    }

    /// One round: connect if due, wait for the socket or the link's next
    /// deadline (at most `max_wait`), read everything, write what waits,
    /// check the deadlines.
    fn round(&mut self, max_wait: Duration) {
        let now = Instant::now();
        if self.sock.is_none() && self.link.connect_due(now) {
            self.start_connect(now);
            self.collect();
        }
        let timeout = self
            .link
            .next_deadline()
            .map_or(max_wait, |d| d.saturating_duration_since(now).min(max_wait));
        let mut tv = TimeVal::microseconds(timeout.as_micros() as i64);
        let (readable, writable) = match &self.sock {
            None => {
                // Nothing to watch: wait for the deadline, as select() does.
                let _ = select(None, None, None, None, &mut tv);
                (false, false)
            }
            Some(fd) => {
                let (mut r, mut w) = (FdSet::new(), FdSet::new());
                if !self.connecting {
                    r.insert(fd.as_fd());
                }
                if self.connecting || self.link.wants_write() {
                    w.insert(fd.as_fd());
                }
                match select(fd.as_raw_fd() + 1, &mut r, &mut w, None, &mut tv) {
                    Ok(_) => (r.contains(fd.as_fd()), w.contains(fd.as_fd())),
                    Err(_) => (false, false),
                }
            }
        };
        let now = Instant::now();
        if self.connecting && writable {
            self.connecting = false;
            let err = socket::getsockopt(self.sock.as_ref().unwrap(), sockopt::SocketError).unwrap_or(1);
            if err == 0 {
                self.link.connected(now);
            } else {
                self.link.closed(now);
            }
            self.collect();
        } else if readable {
            self.read_all(now);
        }
        if let Some(fd) = &self.sock {
            if !self.connecting && self.link.wants_write() {
                match socket::send(fd.as_raw_fd(), self.link.output(), MsgFlags::MSG_NOSIGNAL) {
                    Ok(n) => self.link.wrote(n, now),
                    Err(Errno::EAGAIN) => {}
                    Err(_) => self.link.closed(now),
                }
            }
        }
        self.link.tick(Instant::now());
        self.collect();
    }

    /// Reads until the socket would block (bounded), as the server must
    /// for a subscriber every round.
    fn read_all(&mut self, now: Instant) {
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..64 {
            let Some(fd) = &self.sock else { return };
            match socket::recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
                Ok(0) => return self.link.closed(now),
                Ok(n) => {
                    self.link.received(&buf[..n], now);
                    self.collect();
                }
                Err(Errno::EAGAIN) => return,
                Err(_) => return self.link.closed(now),
            }
        }
    }

    /// Pumps until an event matching `pred` is seen (taking it and every
    /// event before it); panics after `WAIT`.
    fn until(&mut self, what: &str, pred: impl Fn(&LinkEvent) -> bool) -> (LinkEvent, Vec<LinkEvent>) {
        let deadline = Instant::now() + WAIT;
        let mut before = Vec::new();
        loop {
            while let Some(e) = self.events.pop_front() {
                if pred(&e) {
                    return (e, before);
                }
                before.push(e);
            }
            assert!(
                Instant::now() < deadline,
                "no {what} within {WAIT:?}; saw {before:?}; {:?}",
                self.link.stats()
            );
            self.round(Duration::from_millis(100));
        }
    }

    fn until_ready(&mut self) -> Vec<LinkEvent> {
        self.until("ready", |e| *e == LinkEvent::Ready).1
    }

    fn send(&mut self, args: &[&str]) -> Token {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.link.send(Instant::now(), &args).unwrap()
    }

    fn reply_to(&mut self, token: Token) -> Reply {
        match self.until("the reply", |e| matches!(e, LinkEvent::Reply { token: t, .. } | LinkEvent::Failed { token: t, .. } if *t == token)).0 {
            LinkEvent::Reply { reply, .. } => reply,
            other => panic!("{other:?}"),
        }
    }
}

/// A config with short timeouts, so faults show within a second or two.
fn config(url: &str, role: Role, name: &str) -> LinkConfig {
    let url: RedisUrl = url.parse().unwrap();
    let mut cfg = LinkConfig::new(url, role, name);
    cfg.reply_timeout = Duration::from_millis(500);
    cfg.ping_interval = Duration::from_millis(200);
    cfg.connect_timeout = Duration::from_millis(500);
    cfg.backoff_min = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    cfg
}

fn url_of(addr: SocketAddr) -> String {
    format!("redis://{addr}/0")
}

#[test]
fn pipelined_replies_come_back_in_order() {
    let redis = RedisServer::start();
    let mut d = Driver::new(config(&redis.url(), Role::Commands, "node-a-cmd"), redis.addr());
    // Queued before the link is up: sent after the handshake.
    let first = d.send(&["SET", "greeting", "hello"]);
    d.until_ready();
    assert_eq!(d.reply_to(first), Reply::Simple(b"OK".to_vec()));
    let tokens: Vec<Token> = (0..2000).map(|_| d.send(&["INCR", "counter"])).collect();
    let get = d.send(&["GET", "greeting"]);
    let mut got = Vec::new();
    while got.len() < tokens.len() {
        match d.until("a reply", |e| matches!(e, LinkEvent::Reply { .. })).0 {
            LinkEvent::Reply { token, reply } => got.push((token, reply)),
            _ => unreachable!(),
        }
    }
    for (i, (token, reply)) in got.iter().enumerate() {
        assert_eq!((*token, reply), (tokens[i], &Reply::Integer(i as i64 + 1)));
    }
    assert_eq!(d.reply_to(get), Reply::Bulk(b"hello".to_vec()));
    let mut c = redis.client();
    let list = c.cmd(&["CLIENT", "LIST"]);
    assert!(String::from_utf8_lossy(list.as_bytes().unwrap()).contains("name=node-a-cmd"));
    let stats = d.link.stats();
    assert_eq!(
        (stats.phase, stats.replies, stats.reconnects),
        (Phase::Ready, 2002, 0)
    );
}

#[test]
fn a_stopped_redis_misses_the_reply_deadline_and_the_link_comes_back() {
    let redis = RedisServer::start();
    let mut d = Driver::new(config(&redis.url(), Role::Commands, "stopped"), redis.addr());
    d.until_ready();
    redis.pause();
    let asked = Instant::now();
    let token = d.send(&["PING"]);
    let (down, before) = d.until("down", |e| matches!(e, LinkEvent::Down(_)));
    eprintln!("down {:?} after the command", asked.elapsed());
    assert_eq!(down, LinkEvent::Down(DownReason::ReplyTimeout));
    assert_eq!(
        before,
        [LinkEvent::Failed {
            token,
            why: Failure::Lost
        }]
    );
    // While stopped, Redis still accepts connections: each handshake times
    // out in turn.
    let (again, _) = d.until("a second down", |e| matches!(e, LinkEvent::Down(_)));
    assert_eq!(again, LinkEvent::Down(DownReason::ReplyTimeout));
    redis.resume();
    d.until_ready();
    let token = d.send(&["PING"]);
    assert_eq!(d.reply_to(token), Reply::Simple(b"PONG".to_vec()));
    assert!(d.link.stats().reconnects >= 2);
}

/// A command link and a subscriber link, the probe going from one to the
/// other as the server will do it.
struct Pair {
    cmd: Driver,
    sub: Driver,
    probes: usize,
}

impl Pair {
    fn new(url: &str, addr: SocketAddr, names: &Names) -> Pair {
        let mut sub_cfg = config(url, Role::Subscriber, "n1-sub");
        sub_cfg.probe = Some(Probe {
            channel: names.node_channel("n1").into_bytes(),
            prefix: b"probe".to_vec(),
        });
        let mut sub = Driver::new(sub_cfg, addr);
        sub.link
            .subscribe(Instant::now(), names.all_channel().as_bytes())
            .unwrap();
        Pair {
            cmd: Driver::new(config(url, Role::Commands, "n1-cmd"), addr),
            sub,
            probes: 0,
        }
    }

    fn round(&mut self) {
        self.cmd.round(Duration::from_millis(20));
        self.sub.round(Duration::from_millis(20));
        if self.cmd.link.is_ready() {
            if let Some((channel, payload)) = self.sub.link.take_probe(Instant::now()) {
                self.probes += 1;
                self.cmd
                    .link
                    .send(Instant::now(), &[b"PUBLISH", &channel, &payload])
                    .unwrap();
            }
        }
    }

    /// Pumps both until both become ready (taking the events up to then).
    fn until_ready(&mut self) {
        self.until_ready_again(true, true);
    }

    /// Pumps both until each link named becomes ready (again).
    fn until_ready_again(&mut self, cmd: bool, sub: bool) {
        let deadline = Instant::now() + WAIT;
        let (mut cmd, mut sub) = (!cmd, !sub);
        while !(cmd && sub) {
            assert!(
                Instant::now() < deadline,
                "not ready: {:?} {:?}",
                self.cmd.link.stats(),
                self.sub.link.stats()
            );
            self.round();
            cmd |= self.cmd.events.drain(..).any(|e| e == LinkEvent::Ready);
            sub |= self.sub.events.drain(..).any(|e| e == LinkEvent::Ready);
        }
    }

    /// Pumps until the subscriber gets a message; returns its payload.
    fn message(&mut self) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        loop {
            while let Some(e) = self.sub.events.pop_front() {
                match e {
                    LinkEvent::Message(m) => return m.payload,
                    LinkEvent::Down(r) => panic!("subscriber down: {r:?}"),
                    _ => {}
                }
            }
            assert!(
                Instant::now() < deadline,
                "no message: {:?}",
                self.sub.link.stats()
            );
            self.round();
        }
    }
}

#[test]
fn after_redis_restarts_empty_the_subscriber_resubscribes_and_sees_its_probe() {
    let mut redis = RedisServer::start();
    let names = Names::new("t").unwrap();
    let mut pair = Pair::new(&redis.url(), redis.addr(), &names);
    pair.until_ready();
    assert_eq!(pair.probes, 1);
    // A channel subscribed at run time must survive the restart too.
    pair.sub.link.subscribe(Instant::now(), b"extra").unwrap();
    let mut c = redis.client();
    // Subscriptions are confirmed in order: once "extra" reaches Redis the
    // all channel has 1 subscriber; wait on Redis' own count.
    let deadline = Instant::now() + WAIT;
    while c.cmd(&["PUBSUB", "NUMSUB", "extra"]).as_array().unwrap()[1] != Reply::Integer(1) {
        assert!(Instant::now() < deadline);
        pair.round();
    }
    c.cmd(&["PUBLISH", &names.all_channel(), "before"]);
    assert_eq!(pair.message(), b"before");

    redis.restart_empty();
    pair.until_ready();
    assert_eq!(pair.probes, 2, "one probe per connection");
    let mut c = redis.client();
    for channel in [names.all_channel().as_str(), "extra"] {
        assert_eq!(
            c.cmd(&["PUBLISH", channel, "after"]),
            Reply::Integer(1),
            "{channel}"
        );
        assert_eq!(pair.message(), b"after");
    }
    // The probe was the link's own: the caller never saw it.
    assert!(pair.sub.link.stats().messages == 3);
    assert!(pair.cmd.link.stats().reconnects >= 1 && pair.sub.link.stats().reconnects >= 1);
}

#[test]
fn a_black_hole_between_the_link_and_redis_is_found_by_the_deadline() {
    let redis = RedisServer::start();
    let proxy = BlackHole::start(redis.addr());
    let names = Names::new("t").unwrap();
    let mut pair = Pair::new(&url_of(proxy.addr()), proxy.addr(), &names);
    pair.until_ready();
    // Nothing is asked of the subscriber: its idle PING finds the hole.
    proxy.swallow(true);
    let cut = Instant::now();
    let (down, _) = pair.sub.until("down", |e| matches!(e, LinkEvent::Down(_)));
    eprintln!("black hole found after {:?}", cut.elapsed());
    assert_eq!(down, LinkEvent::Down(DownReason::ReplyTimeout));
    proxy.swallow(false);
    // The command link, not pumped meanwhile, asked nothing and noticed
    // nothing; the subscriber reconnects and probes again.
    pair.until_ready_again(false, true);
    let mut c = redis.client();
    c.cmd(&["PUBLISH", &names.all_channel(), "through"]);
    assert_eq!(pair.message(), b"through");
}

#[test]
fn what_waits_during_an_outage_is_bounded_in_bytes_and_age() {
    let mut redis = RedisServer::start();
    let mut cfg = config(&redis.url(), Role::Commands, "bounded");
    cfg.max_pending_bytes = 4096;
    cfg.max_pending_age = Duration::from_millis(800);
    let mut d = Driver::new(cfg, redis.addr());
    d.until_ready();
    redis.kill9();
    d.until("down", |e| matches!(e, LinkEvent::Down(_)));
    // Fill the output: what does not fit is refused at once and counted.
    let value = "v".repeat(100);
    let mut queued = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        match d.link.send(Instant::now(), &[b"SET", b"k", value.as_bytes()]) {
            Ok(t) => queued.push(t),
            Err(SendError::Full { limit, .. }) => {
                assert_eq!(limit, 4096);
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let stats = d.link.stats();
    assert!(
        stats.pending_bytes <= 4096 && stats.pending_bytes > 3900,
        "{stats:?}"
    );
    assert_eq!(
        (stats.refused, refused, queued.len() + refused),
        (refused as u64, refused, 200)
    );
    // Too old to send when Redis returns: each fails as expired.
    for &token in &queued {
        let (e, _) = d.until("expiry", |e| matches!(e, LinkEvent::Failed { .. }));
        assert_eq!(
            e,
            LinkEvent::Failed {
                token,
                why: Failure::Expired
            }
        );
    }
    assert_eq!(d.link.stats().pending_bytes, 0);

    // Commands queued during a short outage are sent when Redis is back.
    let early = d.send(&["SET", "k", "during"]);
    redis.restart_empty();
    d.until_ready();
    assert_eq!(d.reply_to(early), Reply::Simple(b"OK".to_vec()));
    let get = d.send(&["GET", "k"]);
    assert_eq!(d.reply_to(get), Reply::Bulk(b"during".to_vec()));
}

#[test]
fn scripts_run_by_sha_and_fall_back_to_eval_after_a_flush() {
    let redis = RedisServer::start();
    let names = Names::new("t").unwrap();
    let mut cfg = config(&redis.url(), Role::Commands, "scripts");
    cfg.scripts = scripts::ALL.to_vec();
    let mut d = Driver::new(cfg, redis.addr());
    d.until_ready();
    let prefix = names.prefix().as_bytes();
    let hb = d
        .link
        .send_eval(
            Instant::now(),
            &scripts::HEARTBEAT,
            &[],
            &[prefix, b"n1", b"10000"],
        )
        .unwrap();
    let reply = d.reply_to(hb);
    assert_eq!(reply.as_array().unwrap()[0], Reply::Bulk(b"new".to_vec()));
    redis.client().cmd(&["SCRIPT", "FLUSH"]);
    let claim = d
        .link
        .send_eval(Instant::now(), &scripts::CLAIM, &[], &[prefix, b"n1", b"alice"])
        .unwrap();
    let reply = d.reply_to(claim);
    assert_eq!(
        reply.as_array().unwrap()[0],
        Reply::Bulk(b"ok".to_vec()),
        "{reply:?}"
    );
    assert_eq!(d.link.stats().noscript, 1);
    // EVAL cached it again: the next call goes by SHA.
    let again = d
        .link
        .send_eval(Instant::now(), &scripts::CLAIM, &[], &[prefix, b"n1", b"alice"])
        .unwrap();
    assert_eq!(
        d.reply_to(again).as_array().unwrap()[0],
        Reply::Bulk(b"ok".to_vec())
    );
    assert_eq!(d.link.stats().noscript, 1);
}

#[test]
fn auth_and_select_come_from_the_url_and_a_refusal_is_reported() {
    let redis = RedisServer::start();
    let mut admin = redis.client();
    admin.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/2", redis.port());
    let mut d = Driver::new(config(&url, Role::Commands, "authed"), redis.addr());
    d.until_ready();
    let set = d.send(&["SET", "where", "db2"]);
    assert_eq!(d.reply_to(set), Reply::Simple(b"OK".to_vec()));
    let mut c = redis.client();
    c.cmd(&["AUTH", "s3cret"]);
    c.cmd(&["SELECT", "2"]);
    assert_eq!(c.cmd(&["GET", "where"]), Reply::Bulk(b"db2".to_vec()));

    let wrong = format!("redis://:nope@127.0.0.1:{}/0", redis.port());
    let mut d = Driver::new(config(&wrong, Role::Commands, "wrong"), redis.addr());
    let (down, _) = d.until("down", |e| matches!(e, LinkEvent::Down(_)));
    match down {
        LinkEvent::Down(DownReason::Refused(text)) => assert!(text.contains("WRONGPASS"), "{text}"),
        other => panic!("{other:?}"),
    }
}
