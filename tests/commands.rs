//! PROTOCOL.md 1.2 "More commands", through the core's in-memory pipe:
//! `nick`, `members`, `rooms`, and the host's notices.

mod common;
mod support_a;

use chat::testing::{Pipe, PipeClient};
use chat::EventKind;
use serde_json::{json, Value};
use support_a::*;

fn renamed(nick: &str, old: &str) -> Value {
    json!({"type": "presence", "nick": nick, "old": old, "state": "renamed"})
}

/// alice, bob and carol, each with every presence frame read.
fn three(server: &Pipe) -> (PipeClient, PipeClient, PipeClient) {
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    let carol = server.hello("carol");
    assert_eq!(alice.recv(), online("bob"));
    assert_eq!(alice.recv(), online("carol"));
    assert_eq!(bob.recv(), online("carol"));
    (alice, bob, carol)
}

fn join(c: &mut PipeClient, room: &str) -> Value {
    c.send(&json!({"type": "join", "room": room}));
    c.recv()
}

#[test]
fn a_rename_tells_everyone_once_and_the_host() {
    let server = Pipe::default();
    let (mut alice, mut bob, mut carol) = three(&server);
    // Rooms in common do not repeat the presence.
    for c in [&mut alice, &mut bob] {
        join(c, "#a");
        join(c, "#b");
    }
    assert_eq!(alice.recv()["state"], "joined");
    assert_eq!(alice.recv()["state"], "joined");
    server.discard_events();
    bob.send(&json!({"type": "nick", "nick": "Robert"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "nick", "nick": "Robert", "old": "bob"})
    );
    assert_eq!(alice.recv(), renamed("Robert", "bob"));
    assert_eq!(carol.recv(), renamed("Robert", "bob"));
    for c in [&mut alice, &mut bob, &mut carol] {
        assert_nothing_pending(c);
    }
    let ev = server.next_event();
    assert_eq!(ev.nick.as_deref(), Some("Robert"));
    assert!(
        matches!(&ev.kind, EventKind::Renamed { old } if &**old == "bob"),
        "{ev:?}"
    );
    // The new nick is the one that counts everywhere.
    alice.send(&json!({"type": "who"}));
    assert_eq!(alice.recv()["users"], json!(["Robert", "alice", "carol"]));
    alice.send(&json!({"type": "members", "room": "#a"}));
    assert_eq!(alice.recv()["members"], json!(["Robert", "alice"]));
    alice.send(&json!({"type": "msg", "to": "robert", "text": "hi"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "msg", "from": "alice", "to": "Robert", "text": "hi"})
    );
    alice.send(&json!({"type": "msg", "to": "bob", "text": "hi"}));
    assert_eq!(alice.recv()["code"], "no_such_user");
    bob.send(&json!({"type": "room", "room": "#a", "text": "x"}));
    assert_eq!(alice.recv()["from"], "Robert");
    // The old nick is free.
    let mut other = server.connect();
    other.send(&json!({"type": "hello", "nick": "BOB"}));
    assert_eq!(other.recv()["type"], "welcome");
}

#[test]
fn a_failed_rename_changes_nothing() {
    let server = Pipe::default();
    let (mut alice, mut bob, _carol) = three(&server);
    server.discard_events();
    for bad in ["", "a b", "é", &"x".repeat(33)] {
        bob.send(&json!({"type": "nick", "nick": bad}));
        expect_error(&mut bob, "bad_nick");
    }
    for taken in ["alice", "ALICE", "Carol"] {
        bob.send(&json!({"type": "nick", "nick": taken}));
        expect_error(&mut bob, "nick_taken");
    }
    bob.send(&json!({"type": "nick", "nick": 5}));
    expect_error(&mut bob, "bad_request");
    bob.send(&json!({"type": "nick"}));
    expect_error(&mut bob, "bad_request");
    // Its own nick, exactly: answered, nobody told.
    bob.send(&json!({"type": "nick", "nick": "bob"}));
    assert_eq!(bob.recv(), json!({"type": "nick", "nick": "bob", "old": "bob"}));
    assert_nothing_pending(&mut alice);
    assert!(server.try_next_event().is_none());
    // Its own nick in another case is a rename.
    bob.send(&json!({"type": "nick", "nick": "BOB"}));
    assert_eq!(bob.recv(), json!({"type": "nick", "nick": "BOB", "old": "bob"}));
    assert_eq!(alice.recv(), renamed("BOB", "bob"));
    // Before hello, it is not a command.
    let mut anon = server.connect();
    anon.send(&json!({"type": "nick", "nick": "zed"}));
    expect_error(&mut anon, "not_registered");
}

#[test]
fn members_lists_a_room_the_sender_is_in() {
    let server = Pipe::default();
    let (mut alice, mut bob, mut carol) = three(&server);
    join(&mut carol, "#Rust");
    join(&mut alice, "#rust");
    assert_eq!(carol.recv()["state"], "joined");
    alice.send(&json!({"type": "members", "room": "#RUST"}));
    assert_eq!(
        alice.recv(),
        json!({"type": "members", "room": "#Rust", "members": ["alice", "carol"]})
    );
    bob.send(&json!({"type": "members", "room": "#rust"}));
    assert_eq!(
        without_message(bob.recv()),
        json!({"type": "error", "code": "not_in_room", "room": "#rust"})
    );
    bob.send(&json!({"type": "members", "room": "#nowhere"}));
    expect_error(&mut bob, "not_in_room");
    for bad in ["rust", "#", "#a b"] {
        bob.send(&json!({"type": "members", "room": bad}));
        expect_error(&mut bob, "bad_room");
    }
    bob.send(&json!({"type": "members"}));
    expect_error(&mut bob, "bad_request");
}

#[test]
fn rooms_lists_every_room_with_its_count_sorted() {
    let server = Pipe::default();
    let (mut alice, mut bob, mut carol) = three(&server);
    alice.send(&json!({"type": "rooms"}));
    assert_eq!(alice.recv(), json!({"type": "rooms", "rooms": []}));
    join(&mut bob, "#zeta");
    join(&mut bob, "#Alpha");
    join(&mut carol, "#alpha");
    assert_eq!(bob.recv()["state"], "joined");
    join(&mut carol, "#beta");
    // Even rooms the sender is not in.
    alice.send(&json!({"type": "rooms"}));
    assert_eq!(
        alice.recv(),
        json!({"type": "rooms", "rooms": [
            {"room": "#Alpha", "members": 2},
            {"room": "#beta", "members": 1},
            {"room": "#zeta", "members": 1},
        ]})
    );
}

#[test]
fn notices_come_from_the_host_only() {
    let server = Pipe::default();
    let (mut alice, mut bob, mut carol) = three(&server);
    let id = alice.id();
    server.with(|s| s.notice(id, "for alice \"quoted\" é")).unwrap();
    assert_eq!(
        alice.recv(),
        json!({"type": "notice", "text": "for alice \"quoted\" é"})
    );
    assert_eq!(server.with(|s| s.notice_all("for all")).unwrap(), 3);
    for c in [&mut alice, &mut bob, &mut carol] {
        assert_eq!(c.recv(), json!({"type": "notice", "text": "for all"}));
    }
    // No client can send one, under any nick.
    bob.send(&json!({"type": "notice", "text": "I am the host"}));
    expect_error(&mut bob, "unknown_type");
    let mut anon = server.connect();
    anon.send(&json!({"type": "notice", "text": "me too"}));
    expect_error(&mut anon, "unknown_type");
    // An unregistered connection gets a notice sent to it, not notice_all.
    server.with(|s| s.notice(anon.id(), "hello stranger")).unwrap();
    assert_eq!(anon.recv()["text"], "hello stranger");
    assert_eq!(server.with(|s| s.notice_all("x")).unwrap(), 3);
    assert!(!anon.has_pending());
    // Errors.
    assert!(matches!(
        server.with(|s| s.notice(987_654, "x")),
        Err(chat::Error::UnknownClient(987_654))
    ));
    let big = "x".repeat(70_000);
    assert!(matches!(
        server.with(|s| s.notice_all(&big)),
        Err(chat::Error::PayloadTooLarge { .. })
    ));
}
