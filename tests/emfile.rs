//! Descriptor exhaustion in process (issue 4): when `accept` fails with
//! `EMFILE`, the listener leaves the set of descriptors the server watches
//! until the backoff ends (so a listener that stays readable cannot make
//! every `select()` return at once: no spinning), the clients already
//! connected are served meanwhile, and the waiting connection is taken once
//! descriptors come back.
//!
//! Its own test binary, with one test: it lowers `RLIMIT_NOFILE` and uses up
//! every descriptor of the whole process.

mod common;

use std::fs::File;
use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use chat::{EventKind, Server};
use common::*;
use nix::sys::resource::{getrlimit, setrlimit, Resource};
use nix::sys::socket::{self, SockaddrIn};
use serde_json::json;

/// The listening socket among this process's descriptors: bound to `addr`
/// and with no peer.
fn listener_fd(addr: SocketAddr) -> RawFd {
    let SocketAddr::V4(addr) = addr else {
        panic!("IPv4 loopback expected")
    };
    let found: Vec<RawFd> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd: &RawFd| {
            socket::getsockname::<SockaddrIn>(fd).map(SocketAddrV4::from) == Ok(addr)
                && socket::getpeername::<SockaddrIn>(fd).is_err()
        })
        .collect();
    assert_eq!(found.len(), 1, "listener for {addr}: {found:?}");
    found[0]
}

fn watches(server: &mut Server, fd: RawFd) -> bool {
    server.fds().iter().any(|w| w.fd == fd && w.read)
}

/// Pumps `server` until `done`, dropping its events; panics at the deadline.
fn pump_until(server: &mut Server, what: &str, mut done: impl FnMut(&mut Server) -> bool) {
    let end = Instant::now() + DEADLINE;
    while !done(server) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        server
            .poll_once(Some(Duration::from_millis(20)))
            .expect("poll_once");
        server.events().for_each(drop);
    }
}

#[test]
fn accept_failing_with_emfile_unwatches_the_listener_serves_the_others_and_recovers() {
    let mut server = Server::new(loopback_config()).unwrap();
    let addr = server.local_addr();
    let listener = listener_fd(addr);

    // alice registers first. The kernel completes her connection and holds
    // her hello until the server, pumped here, accepts and reads it.
    let mut alice = TestClient::connect(addr);
    alice.send(&json!({"type": "hello", "nick": "alice"}));
    let end = Instant::now() + DEADLINE;
    while !server.events().any(|e| matches!(e.kind, EventKind::Registered)) {
        assert!(Instant::now() < end, "alice never registered");
        server.poll_once(Some(Duration::from_millis(20))).unwrap();
    }
    assert_eq!(alice.recv()["type"], "welcome");
    assert!(watches(&mut server, listener));

    // Every descriptor in use: the limit brought down to what is open (at
    // most 256 above the highest), the rest filled with /dev/null, then one
    // freed for the client below.
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, (highest + 256).min(soft), hard).unwrap();
    let mut fillers = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        fillers.push(f);
    }
    assert!(!fillers.is_empty());
    drop(fillers.pop());
    let mut stuck = TestClient {
        stream: TcpStream::connect(addr).expect("the last descriptor"),
    };
    stuck.stream.set_read_timeout(Some(DEADLINE)).unwrap();
    assert!(File::open("/dev/null").is_err(), "descriptors are left");

    // The server tries to accept her, fails with EMFILE, and stops watching
    // the listener (still readable: her connection waits in the backlog).
    pump_until(&mut server, "accept to fail", |s| !watches(s, listener));
    let accepted = server.stats().accepted;
    let backoff = server.timeout().expect("a deadline: the end of the pause");
    assert!(backoff <= Duration::from_millis(100), "{backoff:?}");
    // alice is served meanwhile.
    alice.send(&json!({"type": "ping", "id": "during"}));
    let frames_out = server.stats().frames_out;
    pump_until(&mut server, "alice's pong", |s| s.stats().frames_out > frames_out);
    assert_eq!(alice.recv(), json!({"type": "pong", "id": "during"}));
    assert_eq!(server.stats().accepted, accepted, "nothing accepted meanwhile");

    // Descriptors come back: the waiting connection is taken and served.
    drop(fillers);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    pump_until(&mut server, "the waiting connection", |s| {
        s.stats().accepted > accepted
    });
    stuck.send(&json!({"type": "hello", "nick": "bob"}));
    pump_until(&mut server, "bob's welcome", |s| s.stats().registered == 2);
    assert_eq!(stuck.recv()["type"], "welcome");
    assert!(watches(&mut server, listener));
}
