//! PROTOCOL.md 1.2 "Resuming a session", through the core's in-memory
//! pipe with its virtual clock: sessions, counting, parking, the window,
//! gaps, tokens and `replaced` (the host's side: `resume_host.rs`).

mod common;
mod resume_support;
mod support_a;

use std::time::Duration;

use chat::testing::{Pipe, PipeClient};
use chat::{Config, EventKind, Reason};
use resume_support::*;
use serde_json::{json, Value};
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
fn only_a_hello_that_asks_gets_a_session_and_tokens_differ() {
    let server = pipe();
    let mut plain = server.connect();
    plain.send(&json!({"type": "hello", "nick": "plain"}));
    assert_eq!(
        plain.recv(),
        json!({"type": "welcome", "nick": "plain", "users": ["plain"]})
    );
    let a = Resumer::hello(server.connect(), "a");
    let b = Resumer::hello(server.connect(), "b");
    assert!(a.token.len() >= 22, "at least 128 bits: {}", a.token);
    assert_ne!(a.token, b.token);
    // Nobody is told anything about sessions.
    assert_eq!(plain.recv(), online("a"));
    assert_eq!(plain.recv(), online("b"));
    assert_nothing_pending(&mut plain);
}

#[test]
fn a_blip_loses_nothing_and_repeats_nothing_and_nobody_is_told() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = server.hello("carol");
    assert_eq!(alice.recv(), online("carol"));
    assert_eq!(bob.recv(), online("carol"));
    // alice's socket holds little: bob's messages pile up in her queue,
    // one of them partly written.
    alice.wire.set_window(Some(150));
    let mut expected = Vec::new();
    for i in 0..20 {
        let text = format!("to alice {i}");
        bob.send(&json!({"type": "msg", "to": "alice", "text": text}));
        expected.push(msg("bob", "alice", &text));
    }
    // Both ways: alice's messages go out while bob's come in.
    for (i, want) in expected.iter().take(3).enumerate() {
        assert_eq!(&alice.recv(), want);
        let text = format!("to bob {i}");
        alice
            .wire
            .send(&json!({"type": "msg", "to": "bob", "text": text, "id": i}));
        assert_eq!(bob.recv(), msg("alice", "bob", &text));
    }
    // The network goes; the server notices later.
    alice.wire.vanish();
    bob.send(&json!({"type": "msg", "to": "alice", "text": "while she is away"}));
    expected.push(msg("bob", "alice", "while she is away"));
    alice.wire.close();
    // Parked: every kind of frame keeps queuing for her.
    server.with(|s| s.notice_all("maintenance at noon")).unwrap();
    expected.push(json!({"type": "notice", "text": "maintenance at noon"}));
    carol.send(&json!({"type": "all", "text": "hello all"}));
    expected.push(json!({"type": "all", "from": "carol", "text": "hello all"}));
    drop(carol);
    expected.push(offline("carol", "disconnect"));
    // bob heard nothing about alice.
    assert_eq!(
        bob.recv(),
        json!({"type": "notice", "text": "maintenance at noon"})
    );
    assert_eq!(
        bob.recv(),
        json!({"type": "all", "from": "carol", "text": "hello all"})
    );
    assert_eq!(bob.recv(), offline("carol", "disconnect"));
    bob.send(&json!({"type": "who"}));
    assert_eq!(bob.recv(), json!({"type": "users", "users": ["alice", "bob"]}));
    alice.resume(server.connect());
    alice.wire.send(&json!({"type": "ping", "id": "after"}));
    while alice.recv() != json!({"type": "pong", "id": "after"}) {}
    // Every frame of her session once, in order: the acks were queued
    // among bob's messages, so they are compared apart.
    let acks: Vec<Value> = (0..3)
        .map(|i| json!({"type": "ack", "id": i, "queued": 1}))
        .collect();
    let (got_acks, rest): (Vec<Value>, Vec<Value>) = alice.frames[2..]
        .iter()
        .cloned()
        .partition(|v| v["type"] == "ack");
    assert_eq!(got_acks, acks);
    let rest: Vec<Value> = rest.into_iter().filter(|v| v["type"] != "pong").collect();
    assert_eq!(rest, expected);
    assert_nothing_pending(&mut bob);
    assert_chat_works(&mut bob, "bob", &mut alice.wire, "alice");
}

#[test]
fn a_parked_session_keeps_its_rooms_and_stays_listed() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.wire.send(&json!({"type": "join", "room": "#r"}));
    assert_eq!(alice.recv()["type"], "joined");
    bob.send(&json!({"type": "join", "room": "#r"}));
    assert_eq!(bob.recv()["members"], json!(["alice", "bob"]));
    assert_eq!(alice.recv()["state"], "joined");
    alice.wire.close();
    bob.send(&json!({"type": "members", "room": "#r"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "members", "room": "#r", "members": ["alice", "bob"]})
    );
    bob.send(&json!({"type": "rooms"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "rooms", "rooms": [{"room": "#r", "members": 2}]})
    );
    bob.send(&json!({"type": "room", "room": "#r", "text": "you there?", "id": 1}));
    assert_eq!(bob.recv(), json!({"type": "ack", "id": 1, "queued": 1}));
    let mut dave = server.hello("dave");
    assert_eq!(bob.recv(), online("dave"));
    dave.send(&json!({"type": "join", "room": "#r"}));
    assert_eq!(dave.recv()["members"], json!(["alice", "bob", "dave"]));
    assert_eq!(bob.recv()["state"], "joined");
    alice.resume(server.connect());
    assert_eq!(
        alice.recv(),
        json!({"type": "room", "room": "#r", "from": "bob", "text": "you there?"})
    );
    assert_eq!(alice.recv(), online("dave"));
    assert_eq!(
        alice.recv(),
        json!({"type": "presence", "nick": "dave", "room": "#r", "state": "joined"})
    );
    alice
        .wire
        .send(&json!({"type": "room", "room": "#r", "text": "back"}));
    let back = json!({"type": "room", "room": "#r", "from": "alice", "text": "back"});
    assert_eq!(bob.recv(), back);
    assert_eq!(dave.recv(), back);
    assert_nothing_pending(&mut bob);
}

#[test]
fn the_window_ends_the_session_as_its_connection_ended() {
    let server = pipe_with(|c| c.resume_window = Duration::from_secs(5));
    let (mut alice, mut bob) = alice_and_bob(&server);
    let alice_id = alice.wire.id();
    server.discard_events();
    alice.wire.close();
    let ev = server.next_event();
    assert_eq!(ev.client, alice_id);
    assert!(
        matches!(
            ev.kind,
            EventKind::Parked {
                reason: Reason::Disconnect
            }
        ),
        "{ev:?}"
    );
    assert!(server.with(|s| s.is_parked(alice_id)));
    server.advance(Duration::from_millis(4999));
    assert_nothing_pending(&mut bob);
    server.advance(Duration::from_millis(1));
    assert_eq!(bob.recv(), offline("alice", "disconnect"));
    let ev = server.next_event();
    assert_eq!(ev.client, alice_id);
    assert!(
        matches!(
            ev.kind,
            EventKind::Disconnected {
                reason: Reason::Disconnect
            }
        ),
        "{ev:?}"
    );
    assert!(!server.with(|s| s.is_parked(alice_id)));
    // Expired: the token is dead and the nick is free.
    let mut again = server.connect();
    again.send(&alice.resume_hello(alice.received));
    assert_resume_failed(&again.recv(), "unknown_session");
    again.send(&json!({"type": "hello", "nick": "alice"}));
    assert_eq!(again.recv()["type"], "welcome");
    assert_eq!(bob.recv(), online("alice"));
}

#[test]
fn a_gap_ends_the_session_and_the_connection_stays_open_for_hello() {
    // Keep at least 1 byte: the last frame written, no more.
    let server = pipe_with(|c| c.resume_retain_bytes = 1);
    let (mut alice, mut bob) = alice_and_bob(&server);
    for i in 0..3 {
        bob.send(&json!({"type": "msg", "to": "alice", "text": i.to_string()}));
    }
    // Written, never read: of frames 2 to 4 (she read frame 1, bob's
    // presence) only the last is still held.
    alice.wire.vanish();
    alice.wire.close();
    let mut next = server.connect();
    next.send(&alice.resume_hello(alice.received));
    assert_resume_failed(&next.recv(), "gap");
    assert_eq!(bob.recv(), offline("alice", "disconnect"));
    next.send(&json!({"type": "hello", "nick": "alice"}));
    assert_eq!(next.recv()["type"], "welcome");
    assert_eq!(bob.recv(), online("alice"));
}

#[test]
fn a_count_past_what_was_sent_is_a_gap() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.wire.close();
    let mut next = server.connect();
    next.send(&alice.resume_hello(alice.received + 1));
    assert_resume_failed(&next.recv(), "gap");
    assert_eq!(bob.recv(), offline("alice", "disconnect"));
}

#[test]
fn a_token_is_spent_by_its_resume() {
    let server = pipe();
    let (mut alice, _bob) = alice_and_bob(&server);
    let first = alice.token.clone();
    alice.wire.close();
    alice.resume(server.connect());
    alice.wire.close();
    let mut thief = server.connect();
    thief.send(&json!({"type": "hello", "nick": "alice", "resume": {"session": first, "received": 1}}));
    assert_resume_failed(&thief.recv(), "unknown_session");
    // The fresh token works.
    alice.resume(server.connect());
    assert_nothing_pending(&mut alice.wire);
}

#[test]
fn a_wrong_token_changes_nothing_for_the_owner() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut guesser = server.connect();
    // Live: a wrong token does not replace her connection.
    let wrong = format!("{}x", &alice.token[..alice.token.len() - 1]);
    for token in [wrong.as_str(), "", "AAAAAAAAAAAAAAAAAAAAAA"] {
        guesser.send(&json!({"type": "hello", "nick": "alice", "resume": {"session": token, "received": 1}}));
        assert_resume_failed(&guesser.recv(), "unknown_session");
    }
    guesser.send(&json!({"type": "hello", "nick": "ALICE", "resume": {"session": wrong, "received": 0}}));
    assert_resume_failed(&guesser.recv(), "unknown_session");
    assert_chat_works(&mut bob, "bob", &mut alice.wire, "alice");
    alice.received += 1;
    // Parked: the same.
    alice.wire.close();
    guesser.send(&json!({"type": "hello", "nick": "alice", "resume": {"session": wrong, "received": 1}}));
    assert_resume_failed(&guesser.recv(), "unknown_session");
    // A nick nobody has, or a plain session, has no session either.
    guesser.send(&json!({"type": "hello", "nick": "bob", "resume": {"session": alice.token, "received": 0}}));
    assert_resume_failed(&guesser.recv(), "unknown_session");
    alice.resume(server.connect());
    assert_nothing_pending(&mut bob);
    assert_chat_works(&mut bob, "bob", &mut alice.wire, "alice");
    // The guesser may still register under a free nick.
    guesser.send(&json!({"type": "hello", "nick": "guesser"}));
    assert_eq!(guesser.recv()["type"], "welcome");
}

#[test]
fn resuming_over_a_connection_still_open_replaces_it() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let old_id = alice.wire.id();
    bob.send(&json!({"type": "msg", "to": "alice", "text": "one"}));
    assert_eq!(alice.recv(), msg("bob", "alice", "one"));
    // Her network changes; the server still thinks the old one alive.
    alice.wire.set_window(Some(0));
    bob.send(&json!({"type": "msg", "to": "alice", "text": "two"}));
    server.discard_events();
    let mut old = alice.resume(server.connect());
    assert_eq!(alice.recv(), msg("bob", "alice", "two"));
    old.set_window(None);
    let frames = old.expect_closed();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_error(&frames[0], "replaced");
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Resumed { .. }));
    assert_eq!(ev.client, alice.wire.id());
    assert_eq!(ev.nick.as_deref(), Some("alice"));
    assert!(
        matches!(ev.kind, EventKind::Resumed { previous } if previous == old_id),
        "{ev:?}"
    );
    assert!(
        server.try_next_event().is_none(),
        "no Disconnected for the old id"
    );
    assert!(server.with(|s| s.kick(old_id, None)).is_err());
    assert_nothing_pending(&mut bob);
    assert_chat_works(&mut bob, "bob", &mut alice.wire, "alice");
}

#[test]
fn quit_and_kick_end_a_session_for_good() {
    let server = pipe();
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.wire.send(&json!({"type": "quit"}));
    alice.read_to_close();
    assert_eq!(bob.recv(), offline("alice", "quit"));
    let mut next = server.connect();
    next.send(&alice.resume_hello(alice.received));
    assert_resume_failed(&next.recv(), "unknown_session");

    let mut carol = Resumer::hello(server.connect(), "carol");
    assert_eq!(bob.recv(), online("carol"));
    let id = carol.wire.id();
    server.with(|s| s.kick(id, Some("bye"))).unwrap();
    let bye = carol.read_to_close();
    assert_error(&bye[0], "kicked");
    assert_eq!(bob.recv(), offline("carol", "kicked"));
    next.send(&carol.resume_hello(carol.received));
    assert_resume_failed(&next.recv(), "unknown_session");
}

#[test]
fn a_slow_consumer_parks_and_resumes_with_everything() {
    let server = pipe_with(|c| {
        c.max_queue_bytes = 2000;
        c.max_frame_bytes = 1000;
    });
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.wire.set_window(Some(0));
    let mut sent = Vec::new();
    let text = "x".repeat(300);
    for i in 0..8 {
        let t = format!("{i}{text}");
        bob.send(&json!({"type": "msg", "to": "alice", "text": t, "id": i}));
        sent.push(msg("bob", "alice", &t));
    }
    // The sixth overflowed her queue: she parked; bob saw nothing of it
    // and every ack says queued 1, the overflowing one included.
    for i in 0..8 {
        assert_eq!(bob.recv(), json!({"type": "ack", "id": i, "queued": 1}));
    }
    assert_nothing_pending(&mut bob);
    let id = alice.wire.id();
    assert!(server.with(|s| s.is_parked(id)));
    // Her old connection says why, then closes.
    alice.wire.set_window(None);
    let last = alice.read_to_close();
    assert_error(last.last().unwrap(), "slow_consumer");
    alice.resume(server.connect());
    alice.wire.send(&json!({"type": "ping", "id": 0}));
    while alice.recv()["type"] != "pong" {}
    let got: Vec<Value> = alice
        .frames
        .iter()
        .filter(|v| v["type"] == "msg")
        .cloned()
        .collect();
    assert_eq!(got, sent);
}

#[test]
fn frames_queued_while_parked_are_capped() {
    let server = pipe_with(|c| {
        c.max_queue_bytes = 1000;
        c.max_frame_bytes = 500;
    });
    let (mut alice, mut bob) = alice_and_bob(&server);
    alice.wire.close();
    let text = "y".repeat(200);
    let mut n = 0;
    while n < 50 {
        bob.send(&json!({"type": "msg", "to": "alice", "text": text}));
        n += 1;
        if bob.has_pending() {
            break;
        }
    }
    assert_eq!(bob.recv(), offline("alice", "slow_consumer"));
    assert!(
        n < 10,
        "the cap is max_queue_bytes beyond what she held: {n} frames"
    );
    let mut next = server.connect();
    next.send(&alice.resume_hello(alice.received));
    assert_resume_failed(&next.recv(), "unknown_session");
}

#[test]
fn a_timeout_parks_too() {
    let server = pipe_with(|c| c.idle_timeout = Some(Duration::from_secs(10)));
    let (mut alice, mut bob) = alice_and_bob(&server);
    server.advance(Duration::from_secs(6));
    assert_eq!(bob.recv()["type"], "ping");
    bob.send(&json!({"type": "pong", "id": 1}));
    server.advance(Duration::from_millis(4500));
    // bob answered in time; alice did not read her ping and is dropped.
    let frames = alice.read_to_close();
    assert_eq!(frames[0]["type"], "ping");
    assert_error(frames.last().unwrap(), "timeout");
    assert_nothing_pending(&mut bob);
    alice.resume(server.connect());
    assert_nothing_pending(&mut alice.wire);
}
