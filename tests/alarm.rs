//! The loop's deadline is a timerfd `select()` watches (the alarm), set
//! again only when the deadline moves earlier. Here, over a real server on
//! the test's own thread: a host's timeout still ends `poll_once` when
//! nothing happens, and not before; a core deadline nearer than the host's
//! timeout still wakes the loop; and an alarm left set for a deadline that
//! went away ends one `poll_once` early, as documented, never late.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use chat::{Config, EventKind, Reason, Server};
use common::*;

#[test]
fn a_hosts_timeout_ends_poll_once_when_nothing_happens_and_not_before() {
    let mut server = Server::new(loopback_config()).unwrap();
    for wait in [
        Duration::from_millis(30),
        Duration::from_millis(1),
        Duration::from_millis(60),
    ] {
        let start = Instant::now();
        assert_eq!(server.poll_once(Some(wait)).unwrap(), 0);
        let took = start.elapsed();
        assert!(took >= wait, "returned after {took:?}, before its {wait:?}");
        assert!(took < DEADLINE, "returned after {took:?}");
    }
    // A zero wait is a poll: nothing to do, back at once.
    let start = Instant::now();
    server.poll_once(Some(Duration::ZERO)).unwrap();
    assert!(start.elapsed() < DEADLINE);
}

#[test]
fn a_core_deadline_nearer_than_the_hosts_timeout_wakes_the_loop() {
    let handshake = Duration::from_millis(100);
    let mut server = Server::new(Config {
        handshake_timeout: Some(handshake),
        ..loopback_config()
    })
    .unwrap();
    let start = Instant::now();
    let _silent = TcpStream::connect(server.local_addr()).unwrap();
    let reason = loop {
        assert!(start.elapsed() < DEADLINE, "no timeout within {DEADLINE:?}");
        // The host would wait a minute: the handshake deadline is nearer.
        server.poll_once(Some(Duration::from_secs(60))).unwrap();
        if let Some(reason) = server.events().find_map(|e| match e.kind {
            EventKind::Disconnected { reason } => Some(reason),
            _ => None,
        }) {
            break reason;
        }
    };
    assert_eq!(reason, Reason::Timeout);
    assert!(
        start.elapsed() >= handshake,
        "dropped after {:?}",
        start.elapsed()
    );
}

#[test]
fn an_alarm_left_for_a_deadline_that_went_away_ends_one_poll_early_never_late() {
    let mut server = Server::new(loopback_config()).unwrap();
    let first = Duration::from_millis(200);
    // A wake ends this poll at once, with the alarm still set for `first`.
    server.waker().wake().unwrap();
    let start = Instant::now();
    server.poll_once(Some(first)).unwrap();
    // The host now waits longer: the alarm set for `first` ends this one
    // early, at `first`, with nothing done.
    server.poll_once(Some(Duration::from_secs(60))).unwrap();
    let took = start.elapsed();
    assert!(took >= first, "returned after {took:?}");
    assert!(took < DEADLINE, "returned after {took:?}");
    // Rung and drained: the next short wait is its own.
    let start = Instant::now();
    server.poll_once(Some(Duration::from_millis(20))).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(20));
}

#[test]
fn a_wait_longer_than_any_deadline_can_hold_is_no_limit_and_a_wake_still_ends_it() {
    let mut server = Server::new(loopback_config()).unwrap();
    server.waker().wake().unwrap();
    server.poll_once(Some(Duration::MAX)).unwrap();
}
