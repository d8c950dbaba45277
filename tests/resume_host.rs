//! PROTOCOL.md 1.2 "Resuming a session" from the host's side, through the
//! core's in-memory pipe: the host's calls on a parked session, its events
//! and ids across a resume, the parked cap, shutdown, the counters, and
//! approval.

mod common;
mod resume_support;
mod support_a;

use std::time::Duration;

use chat::testing::{Pipe, PipeClient};
use chat::{Config, EventKind, Reason};
use resume_support::*;
use serde_json::json;
use support_a::*;

fn pipe() -> Pipe {
    Pipe::start(Config::default())
}

fn pipe_with(f: impl FnOnce(&mut Config)) -> Pipe {
    let mut cfg = Config::default();
    f(&mut cfg);
    Pipe::start(cfg)
}

/// alice (resumable) and bob (plain), with bob's presence notice read.
fn alice_and_bob(server: &Pipe) -> (Resumer<PipeClient>, PipeClient) {
    let mut alice = Resumer::hello(server.connect(), "alice");
    let bob = server.hello("bob");
    assert_eq!(alice.recv(), online("bob"));
    (alice, bob)
}

#[test]
fn a_kick_ends_a_parked_session() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let id = alice.wire.id();
    alice.wire.close();
    server.with(|s| s.send(id, br#"{"type":"x"}"#)).unwrap();
    server.with(|s| s.kick(id, None)).unwrap();
    assert_eq!(bob.recv(), offline("alice", "kicked"));
    assert!(server.with(|s| s.send(id, br#"{"type":"x"}"#)).is_err());
    let mut next = server.connect();
    next.send(&alice.resume_hello(alice.received));
    assert_resume_failed(&next.recv(), "unknown_session");
}

#[test]
fn the_host_follows_a_session_across_ids() {
    let server = pipe();
    let (mut alice, _bob) = alice_and_bob(&server);
    let first = alice.wire.id();
    server.with(|s| s.set_user_data(first, 77)).unwrap();
    alice.wire.close();
    server.with(|s| s.notice(first, "while away")).unwrap();
    server.discard_events();
    alice.resume(server.connect());
    assert_eq!(alice.recv(), json!({"type": "notice", "text": "while away"}));
    let second = alice.wire.id();
    assert_ne!(first, second);
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Resumed { .. }));
    assert_eq!(ev.client, second);
    assert_eq!(ev.user_data, 77);
    assert!(matches!(ev.kind, EventKind::Resumed { previous } if previous == first));
    assert_eq!(server.with(|s| s.user_data(second)), Some(77));
    assert_eq!(server.with(|s| s.user_data(first)), None);
    assert_eq!(
        server.with(|s| s.nick(second).map(str::to_string)),
        Some("alice".into())
    );
}

#[test]
fn parked_sessions_past_max_clients_end_oldest_first() {
    let server = pipe_with(|c| c.max_clients = 2);
    let mut watcher = server.hello("watcher");
    let mut a = Resumer::hello(server.connect(), "a");
    a.wire.close();
    let mut b = Resumer::hello(server.connect(), "b");
    b.wire.close();
    assert_eq!(watcher.recv(), online("a"));
    assert_eq!(watcher.recv(), online("b"));
    assert_nothing_pending(&mut watcher);
    assert_eq!(server.with(|s| s.stats().parked), 2);
    let mut c = Resumer::hello(server.connect(), "c");
    c.wire.close();
    assert_eq!(watcher.recv(), online("c"));
    // The third parked in place of the first.
    assert_eq!(watcher.recv(), offline("a", "disconnect"));
    assert_eq!(server.with(|s| s.stats().parked), 2);
    let mut next = server.connect();
    next.send(&a.resume_hello(a.received));
    assert_resume_failed(&next.recv(), "unknown_session");
    b.resume(server.connect());
    c.resume(server.connect());
    assert_eq!(server.with(|s| s.stats().parked), 0);
}

#[test]
fn a_shutdown_ends_parked_sessions() {
    let server = pipe();
    let (mut alice, _bob) = alice_and_bob(&server);
    let id = alice.wire.id();
    alice.wire.close();
    server.discard_events();
    server.with(|s| s.shutdown(Duration::from_secs(1)));
    let ev = server.event_until(|e| e.client == id);
    assert!(
        matches!(
            ev.kind,
            EventKind::Disconnected {
                reason: Reason::Shutdown
            }
        ),
        "{ev:?}"
    );
}

#[test]
fn stats_count_parked_sessions_resumes_and_failures() {
    let server = pipe();
    let (mut alice, _bob) = alice_and_bob(&server);
    alice.wire.close();
    let s = server.with(|s| s.stats());
    assert_eq!((s.parked, s.resumed, s.resume_failed), (1, 0, 0));
    assert_eq!(s.registered, 2);
    assert_eq!(s.clients, 1, "a parked session holds no connection");
    let mut guesser = server.connect();
    guesser.send(&json!({"type": "hello", "nick": "alice", "resume": {"session": "no", "received": 0}}));
    assert_resume_failed(&guesser.recv(), "unknown_session");
    alice.resume(server.connect());
    let s = server.with(|s| s.stats());
    assert_eq!((s.parked, s.resumed, s.resume_failed), (0, 1, 1));
    assert_eq!(
        s.disconnects_for(Reason::Disconnect),
        0,
        "a park is not a disconnect"
    );
}

#[test]
fn with_approval_a_session_is_asked_for_and_a_resume_needs_none() {
    let server = pipe_with(|c| c.approve_registrations = true);
    let mut c = server.connect();
    c.send(&json!({"type": "hello", "nick": "alice", "resumable": true}));
    let ev = server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }));
    server.with(|s| s.approve(ev.client)).unwrap();
    let welcome = c.recv();
    let token = welcome["session"].as_str().expect("a session").to_string();
    c.close();
    let mut next = server.connect();
    next.send(&json!({"type": "hello", "nick": "alice", "resume": {"session": token, "received": 0}}));
    assert_eq!(next.recv()["resumed"], true);
}
