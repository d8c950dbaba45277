//! PROTOCOL.md "Session": `hello`, nick rules, and what happens before a
//! successful `hello`, through the core's in-memory pipe.

mod common;
mod support_a;

use chat::testing::Pipe;
use serde_json::json;
use support_a::*;

#[test]
fn hello_gets_welcome_with_sorted_users_and_others_see_online() {
    let server = Pipe::default();
    let mut carol = server.hello("carol");
    let mut alice = server.hello("alice");
    assert_eq!(carol.recv(), online("alice"));
    let mut bob = server.connect();
    bob.send(&json!({"type": "hello", "nick": "bob"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "welcome", "nick": "bob", "users": ["alice", "bob", "carol"]})
    );
    assert_eq!(carol.recv(), online("bob"));
    assert_eq!(alice.recv(), online("bob"));
    // The newcomer gets no presence about itself.
    assert_nothing_pending(&mut bob);
}

/// docs/protocol.md: nicks keep their case and sort by byte order.
#[test]
fn welcome_keeps_the_registered_case_and_sorts_by_byte_order() {
    let server = Pipe::default();
    let _a = server.hello("zed");
    let _b = server.hello("Amy");
    let mut c = server.connect();
    c.send(&json!({"type": "hello", "nick": "Bob-_9"}));
    assert_eq!(
        c.recv(),
        json!({"type": "welcome", "nick": "Bob-_9", "users": ["Amy", "Bob-_9", "zed"]})
    );
}

#[test]
fn an_unregistered_connection_gets_no_presence() {
    let server = Pipe::default();
    let mut lurker = server.connect();
    let _alice = server.hello("alice");
    lurker.send(&json!({"type": "who"}));
    // The first thing the lurker hears is the answer to its own frame.
    expect_error(&mut lurker, "not_registered");
}

#[test]
fn bad_nicks_keep_the_connection_open_and_a_later_good_hello_works() {
    let server = Pipe::default();
    let mut watcher = server.hello("watcher");
    let mut c = server.connect();
    let long = "x".repeat(33);
    let bad = [
        "",
        long.as_str(),
        "al ice",
        " alice",
        "élan",
        "名前",
        "a.b",
        "a@b",
        "tab\t",
        "nul\u{0}",
    ];
    for nick in bad {
        c.send(&json!({"type": "hello", "nick": nick}));
        expect_error(&mut c, "bad_nick");
    }
    // A nick that is not a string is a malformed frame, not a bad nick.
    c.send(&json!({"type": "hello", "nick": 5}));
    expect_error(&mut c, "bad_request");
    let max = "y".repeat(32);
    c.send(&json!({"type": "hello", "nick": max}));
    assert_eq!(
        c.recv(),
        json!({"type": "welcome", "nick": max, "users": ["watcher", max]})
    );
    // Failed attempts were never announced.
    assert_eq!(watcher.recv(), online(&max));
}

#[test]
fn every_allowed_character_makes_a_valid_nick() {
    let server = Pipe::default();
    let all: String = ('A'..='Z')
        .chain('a'..='z')
        .chain('0'..='9')
        .chain(['_', '-'])
        .collect();
    let (first, second) = all.split_at(32);
    let _a = server.hello(first);
    let _b = server.hello(second);
    let _c = server.hello("-");
    let _d = server.hello("_");
}

#[test]
fn nick_taken_is_case_insensitive_and_keeps_the_connection_open() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut c = server.connect();
    for nick in ["alice", "ALICE", "Alice", "aLiCe"] {
        c.send(&json!({"type": "hello", "nick": nick}));
        expect_error(&mut c, "nick_taken");
    }
    c.send(&json!({"type": "hello", "nick": "alice2"}));
    assert_eq!(c.recv()["type"], "welcome");
    assert_eq!(alice.recv(), online("alice2"));
}

#[test]
fn a_nick_is_free_again_once_its_owner_left() {
    let server = Pipe::default();
    let mut watcher = server.hello("watcher");
    let mut alice = server.hello("alice");
    assert_eq!(watcher.recv(), online("alice"));
    alice.send(&json!({"type": "quit"}));
    assert!(alice.expect_closed().is_empty());
    assert_eq!(watcher.recv(), offline("alice", "quit"));
    let _again = server.hello("ALICE");
    assert_eq!(watcher.recv(), online("ALICE"));
}

#[test]
fn frames_before_hello_get_not_registered_and_the_connection_stays_open() {
    let server = Pipe::default();
    let mut bob = server.hello("bob");
    let mut c = server.connect();
    for v in [
        json!({"type": "msg", "to": "bob", "text": "hi"}),
        json!({"type": "all", "text": "hi"}),
        json!({"type": "all", "text": "hi", "id": 1}),
        json!({"type": "who"}),
        json!({"type": "ping", "id": 1}),
        json!({"type": "pong", "id": 1}),
        json!({"type": "quit"}),
    ] {
        c.send(&v);
        expect_error(&mut c, "not_registered");
    }
    // Nothing reached bob, and the connection can still register.
    assert_nothing_pending(&mut bob);
    c.send(&json!({"type": "hello", "nick": "alice"}));
    assert_eq!(
        c.recv(),
        json!({"type": "welcome", "nick": "alice", "users": ["alice", "bob"]})
    );
    assert_eq!(bob.recv(), online("alice"));
    assert_chat_works(&mut c, "alice", &mut bob, "bob");
}

/// docs/protocol.md: a second `hello` is a bad request and changes nothing.
#[test]
fn a_second_hello_is_refused_and_the_nick_is_unchanged() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    alice.send(&json!({"type": "hello", "nick": "other"}));
    expect_error(&mut alice, "bad_request");
    alice.send(&json!({"type": "who"}));
    assert_eq!(alice.recv(), json!({"type": "users", "users": ["alice"]}));
}
