//! One abuser must not stall, crowd out or bloat the server: amplified
//! requests without reading (`who`, `join` of a big room), a peer that
//! keeps writing after a framing error, and a crowd of closed connections
//! whose peers stay open. Each test reproduces the attack over loopback and
//! asserts the structural property that stops it, never a timing. (Memory:
//! `idle_buffers.rs` and `queue_memory.rs`; the idle timeout before `hello`:
//! `idle_before_hello.rs`.)

mod common;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use chat::{Config, Reason, Server, Stats};
use common::*;
use nix::sys::socket::{self, sockopt, AddressFamily, SockFlag, SockType, SockaddrIn};
use serde_json::{json, Value};

/// Registered users, so that a `who` (or a `join` of the room they are all
/// in) answers about 7 KB.
const USERS: usize = 200;
const CAP: usize = 256 * 1024;
/// Small, so that a flood is many reads' worth.
const READ_BUDGET: usize = 4 * 1024;
/// Requests in the flood (72 KB of `who`, 164 KB of `join`): more than
/// the kernel takes of their answers.
const FLOOD: usize = 4000;

/// A TCP connection from `from` (a loopback address) with the smallest
/// receive buffer the kernel allows, asked before connecting so that the
/// window it advertises is tiny from the start.
fn connect_from(addr: SocketAddr, from: Option<SocketAddrV4>, min_window: bool) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("IPv4 loopback expected")
    };
    let fd = socket::socket(AddressFamily::Inet, SockType::Stream, SockFlag::empty(), None).unwrap();
    if min_window {
        socket::setsockopt(&fd, sockopt::RcvBuf, &1).unwrap();
        assert!(socket::getsockopt(&fd, sockopt::RcvBuf).unwrap() <= 4608);
    }
    if let Some(from) = from {
        socket::bind(fd.as_raw_fd(), &SockaddrIn::from(from)).unwrap();
    }
    socket::connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).unwrap();
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn frame(v: &Value) -> Vec<u8> {
    let payload = v.to_string();
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload.as_bytes());
    out
}

/// A ping and its pong: the bystander is served.
fn ping(c: &mut TestClient, id: u64) {
    c.send(&json!({"type": "ping", "id": id}));
    let pong = c.recv_until(|v| v["type"] == "pong");
    assert_eq!(pong["id"], id);
}

/// The type of a raw payload.
fn kind(payload: &[u8]) -> String {
    let v: Value = serde_json::from_slice(payload).unwrap();
    v["type"].as_str().unwrap_or_default().to_string()
}

/// `USERS` users in `#big`, a bystander and an abuser (minimum window) who
/// sends `FLOOD` copies of `request` without reading: once its answers
/// waiting are over half its cap, the server takes no more of its input
/// and reads no more of its socket, while the bystander is served; once it
/// reads, all of them are answered and it was never dropped.
fn flood_without_reading(request: Value, answer: &str) {
    let cfg = Config {
        max_queue_bytes: CAP,
        read_budget: READ_BUDGET,
        ..loopback_config()
    };
    let server = ServerThread::start(cfg);
    let mut users = Vec::new();
    for i in 0..USERS {
        let mut u = TestClient::hello(server.addr, &format!("user{i:03}-{}", "x".repeat(24)));
        u.send(&json!({"type": "join", "room": "#big"}));
        u.recv_until(|v| v["type"] == "joined");
        users.push(u);
        server.discard_events();
    }
    let mut bystander = TestClient::hello(server.addr, "bystander");
    let mut abuser = TestClient {
        stream: connect_from(server.addr, None, true),
    };
    abuser.send(&json!({"type": "hello", "nick": "abuser"}));
    abuser.recv_until(|v| v["type"] == "welcome");
    abuser.send(&request);
    let answer_len = loop {
        let p = abuser.try_recv_raw().unwrap();
        if kind(&p) == answer {
            break p.len();
        }
    };
    assert!(answer_len > 6000, "a big answer: {answer_len} bytes");
    // Presence of the bystander and the abuser is on its way to the users;
    // let it settle so the counters below are the flood's alone.
    ping(&mut bystander, 0);
    let before = server.with(|s| s.stats());

    let batch: Vec<u8> = (0..FLOOD).flat_map(|_| frame(&request)).collect();
    assert!(batch.len() > 4 * READ_BUDGET);
    let mut writer = abuser.stream.try_clone().unwrap();
    let flood = std::thread::spawn(move || writer.write_all(&batch));

    // Paused: the abuser's answers waiting reach half its cap.
    let end = Instant::now() + DEADLINE;
    while server.with(|s| s.stats()).queued_bytes < (CAP / 2) as u64 {
        assert!(Instant::now() < end, "the abuser's queue never filled");
        std::thread::park_timeout(Duration::from_millis(2));
    }
    // The bystander is served, many rounds go by, and nothing more of the
    // abuser's is taken or read.
    for id in 1..=20 {
        ping(&mut bystander, id);
    }
    let mid = server.with(|s| s.stats());
    for id in 21..=40 {
        ping(&mut bystander, id);
    }
    let later = server.with(|s| s.stats());
    let pings = |s: &Stats, n: u64| s.frames_in - before.frames_in - n;
    let built = pings(&mid, 20);
    assert_eq!(pings(&later, 40), built, "the abuser's input stays paused");
    let written = mid.bytes_out - before.bytes_out;
    println!(
        "{answer}: {FLOOD} requests sent, {built} answered while not reading ({answer_len} B each, \
         {written} B taken by the kernel, cap {CAP}), {} B of its input read",
        mid.bytes_in - before.bytes_in
    );
    assert!(
        built < FLOOD as u64 / 4,
        "{built} of {FLOOD} answers built while it did not read"
    );
    assert!(
        built as usize * answer_len <= CAP / 2 + answer_len + written as usize,
        "answers built ({built} x {answer_len} B) beyond half the cap plus what was written ({written} B)"
    );
    // Its socket is read no further than what was taken, plus one read
    // held: the rest waits in its own TCP window.
    let (request_len, ping_len) = (frame(&request).len(), 40);
    let read = (mid.bytes_in - before.bytes_in) as usize;
    assert!(
        read <= built as usize * request_len + 2 * READ_BUDGET + 20 * ping_len,
        "{read} bytes of the abuser's read for {built} requests taken"
    );
    assert_eq!(
        later.bytes_in - mid.bytes_in,
        20 * (frame(&json!({"type": "ping", "id": 40})).len() as u64),
        "not read at all while paused"
    );
    assert!(mid.queued_bytes <= CAP as u64, "within its cap");
    assert_eq!(mid.disconnects_for(Reason::SlowConsumer), 0);

    // It reads: every request is answered, in turn. Its receive buffer
    // grows first: with the minimum one, TCP's window stays a few hundred
    // bytes (each segment's overhead counted against it) and can stall
    // on the sender's persist timer for a fifth of a second at a time,
    // which would make this drain of megabytes take minutes.
    socket::setsockopt(&abuser.stream, sockopt::RcvBuf, &(1 << 20)).unwrap();
    let mut answers = 0;
    while answers < FLOOD {
        let p = abuser.try_recv_raw().expect("the abuser stays connected");
        if kind(&p) == answer {
            answers += 1;
        }
    }
    flood.join().unwrap().expect("the whole flood was written");
    ping(&mut bystander, 41);
    let after = server.with(|s| s.stats());
    assert_eq!(after.frames_in - before.frames_in, FLOOD as u64 + 41);
    assert_eq!(after.disconnects_for(Reason::SlowConsumer), 0);
    assert_eq!(after.clients, USERS as u64 + 2);
    drop(users);
}

#[test]
fn a_who_flood_without_reading_is_paused_at_half_the_cap() {
    flood_without_reading(json!({"type": "who"}), "users");
}

#[test]
fn a_join_flood_of_a_big_room_without_reading_is_paused_at_half_the_cap() {
    flood_without_reading(json!({"type": "join", "room": "#big"}), "joined");
}

// ----- a server pumped by the test itself -----

/// Pumps `server` until `done`, at most `DEADLINE`; checks `each` after
/// every round.
fn pump_until(server: &mut Server, mut done: impl FnMut(&mut Server) -> bool, mut each: impl FnMut(&Stats)) {
    let end = Instant::now() + DEADLINE;
    while !done(server) {
        assert!(Instant::now() < end, "the condition never held");
        server.poll_once(Some(Duration::from_millis(5))).unwrap();
        server.events().for_each(drop);
        each(&server.stats());
    }
}

/// A nonblocking client of a server the test pumps: frames are read as
/// they come.
struct Pumped {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Pumped {
    fn connect(server: &mut Server, from: Option<SocketAddrV4>) -> Pumped {
        let seen = |s: &Server| s.stats().accepted + s.stats().refused;
        let before = seen(server);
        let stream = connect_from(server.local_addr(), from, false);
        stream.set_nonblocking(true).unwrap();
        pump_until(server, |s| seen(s) > before, |_| {});
        Pumped {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, v: &Value) {
        self.stream.set_nonblocking(false).unwrap();
        self.stream.write_all(&frame(v)).unwrap();
        self.stream.set_nonblocking(true).unwrap();
    }

    /// A frame if one has arrived whole.
    fn poll(&mut self) -> Option<Value> {
        let mut chunk = [0u8; 65536];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        if self.buf.len() < 4 {
            return None;
        }
        let len = u32::from_be_bytes(self.buf[..4].try_into().unwrap()) as usize;
        if self.buf.len() < 4 + len {
            return None;
        }
        let v = serde_json::from_slice(&self.buf[4..4 + len]).unwrap();
        self.buf.drain(..4 + len);
        Some(v)
    }

    /// Pumps until a frame of type `kind` arrives.
    fn expect(&mut self, server: &mut Server, kind: &str) -> Value {
        let mut got = None;
        pump_until(
            server,
            |_| {
                while let Some(v) = self.poll() {
                    if v["type"] == kind {
                        got = Some(v);
                        return true;
                    }
                }
                false
            },
            |_| {},
        );
        got.unwrap()
    }

    /// Registers.
    fn hello(server: &mut Server, nick: &str, from: Option<SocketAddrV4>) -> Pumped {
        let mut c = Pumped::connect(server, from);
        c.send(&json!({"type": "hello", "nick": nick}));
        c.expect(server, "welcome");
        c
    }

    /// Breaks the framing (a length over the limit) and writes `more`
    /// bytes after it: the server answers, closes, and drains it.
    fn break_framing(&mut self, more: usize) {
        let mut bytes = vec![0xff; 4];
        bytes.resize(4 + more, b'x');
        self.stream.set_nonblocking(false).unwrap();
        self.stream.write_all(&bytes).unwrap();
        self.stream.set_nonblocking(true).unwrap();
    }

    /// Whether the server has released the socket: a write is answered
    /// with a reset (a draining socket takes it).
    fn was_reset(&mut self) -> bool {
        let end = Instant::now() + DEADLINE;
        while Instant::now() < end {
            if self.stream.write(b"x").is_err() {
                return true;
            }
            std::thread::park_timeout(Duration::from_millis(1));
        }
        false
    }
}

#[test]
fn a_firehose_after_a_framing_error_is_drained_at_most_read_budget_per_round() {
    let cfg = Config {
        read_budget: READ_BUDGET,
        ..loopback_config()
    };
    let mut server = Server::new(cfg).unwrap();
    let mut bystander = Pumped::hello(&mut server, "bystander", None);
    let mut abuser = Pumped::connect(&mut server, None);
    abuser.break_framing(0);
    let mut hose = abuser.stream.try_clone().unwrap();
    hose.set_nonblocking(false).unwrap();
    // Writes until the server releases the socket (a reset), at most 256 MB.
    // The server drains at most 1 MiB of it (DRAIN_MAX_BYTES).
    let firehose = std::thread::spawn(move || {
        let chunk = vec![b'x'; 1 << 20];
        let mut sent = 0usize;
        for _ in 0..256 {
            match hose.write(&chunk) {
                Ok(n) => sent += n,
                Err(_) => break,
            }
        }
        sent
    });
    pump_until(&mut server, |s| s.stats().draining == 1, |_| {});
    // Every round from here drains at most the budget; the bystander is
    // served meanwhile.
    let mut last = server.stats().drained_bytes;
    let (mut rounds, mut full_rounds) = (0, 0);
    let mut check = |s: &Stats| {
        let round = s.drained_bytes - last;
        assert!(round <= READ_BUDGET as u64, "{round} bytes drained in one round");
        rounds += 1;
        full_rounds += usize::from(round == READ_BUDGET as u64);
        last = s.drained_bytes;
    };
    for id in 0..20 {
        bystander.send(&json!({"type": "ping", "id": id}));
        let mut pong = None;
        pump_until(
            &mut server,
            |_| {
                pong = bystander.poll();
                pong.is_some()
            },
            &mut check,
        );
        assert_eq!(pong.unwrap()["id"], id);
    }
    // Until the linger is over and the socket released.
    pump_until(&mut server, |s| s.stats().draining == 0, &mut check);
    let sent = firehose.join().unwrap();
    let stats = server.stats();
    println!(
        "firehose: {sent} bytes written, {} drained over {rounds} rounds ({full_rounds} at the budget of {READ_BUDGET})",
        stats.drained_bytes
    );
    assert!(full_rounds > 10, "the budget bit: {full_rounds} full rounds");
    // And the drain ended when it had taken its most, well before the
    // linger: the firehose was reset.
    assert!(
        stats.drained_bytes <= 1024 * 1024,
        "{} bytes drained from one connection",
        stats.drained_bytes
    );
    assert!(sent > 1024 * 1024, "the firehose wrote more than a drain takes");
    assert_eq!(stats.disconnects_for(Reason::ProtocolError), 1);
}

/// `n` connections that break their framing and keep writing: the server
/// has closed them, their peers have not.
fn draining_crowd(server: &mut Server, n: usize, from: Option<SocketAddrV4>, limit: usize) -> Vec<Pumped> {
    let mut crowd = Vec::new();
    for _ in 0..n {
        let mut c = Pumped::connect(server, from);
        c.break_framing(1000);
        crowd.push(c);
    }
    pump_until(
        server,
        |s| s.stats().draining as usize >= crowd.len().min(limit) && s.stats().clients == 0,
        |s| assert!(s.clients + s.draining <= limit as u64),
    );
    for c in &mut crowd {
        c.stream.write_all(b"still here").unwrap();
    }
    crowd
}

#[test]
fn draining_sockets_count_toward_max_clients_and_the_oldest_is_reaped_for_a_client() {
    const MAX: usize = 6;
    let cfg = Config {
        max_clients: MAX,
        ..loopback_config()
    };
    let mut server = Server::new(cfg).unwrap();
    let held = |s: &Stats| assert!(s.clients + s.draining <= MAX as u64, "over max_clients: {s:?}");
    let mut crowd = draining_crowd(&mut server, MAX, None, MAX);
    assert_eq!(server.stats().draining, MAX as u64);
    // A legitimate client gets in: the oldest drain makes room.
    let mut legit = vec![Pumped::connect(&mut server, None)];
    legit[0].send(&json!({"type": "hello", "nick": "legit0"}));
    legit[0].expect(&mut server, "welcome");
    held(&server.stats());
    assert_eq!(server.stats().draining, MAX as u64 - 1);
    assert!(crowd[0].was_reset(), "the oldest drain was released");
    // Each one after it too, until only clients are left: then the next is
    // refused.
    for i in 1..MAX {
        let mut c = Pumped::connect(&mut server, None);
        c.send(&json!({"type": "hello", "nick": format!("legit{i}")}));
        c.expect(&mut server, "welcome");
        held(&server.stats());
        legit.push(c);
    }
    let stats = server.stats();
    assert_eq!((stats.clients, stats.draining), (MAX as u64, 0));
    let mut refused = Pumped::connect(&mut server, None);
    assert_eq!(refused.expect(&mut server, "error")["code"], "server_full");
    for c in &mut crowd {
        assert!(c.was_reset());
    }
}

#[test]
fn draining_sockets_count_toward_max_per_ip_and_that_address_s_oldest_is_reaped() {
    const MAX: usize = 4;
    let cfg = Config {
        max_per_ip: Some(MAX),
        ..loopback_config()
    };
    let mut server = Server::new(cfg).unwrap();
    let other = SocketAddrV4::new([127, 0, 0, 2].into(), 0);
    let one = SocketAddrV4::new([127, 0, 0, 1].into(), 0);
    // The oldest drain of all is another address's.
    let mut elsewhere = draining_crowd(&mut server, 1, Some(other), usize::MAX);
    let mut crowd = draining_crowd(&mut server, MAX, Some(one), usize::MAX);
    assert_eq!(server.stats().draining, MAX as u64 + 1);
    let legit = Pumped::hello(&mut server, "legit", Some(one));
    assert_eq!(server.stats().draining, MAX as u64, "one drain reaped");
    assert!(crowd[0].was_reset(), "that address's oldest drain");
    // The other address's drain is still draining: it takes more.
    elsewhere[0].stream.write_all(b"more").unwrap();
    // Full again from 127.0.0.1: refused; from 127.0.0.2 still welcome.
    let _more: Vec<Pumped> = (1..MAX)
        .map(|i| Pumped::hello(&mut server, &format!("more{i}"), Some(one)))
        .collect();
    let mut refused = Pumped::connect(&mut server, Some(one));
    assert_eq!(refused.expect(&mut server, "error")["code"], "server_full");
    Pumped::hello(&mut server, "other", Some(other));
    drop(legit);
}
