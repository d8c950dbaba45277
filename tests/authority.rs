//! Host authority: approval of registrations, interception of messages,
//! user data in events, through the core's in-memory pipe (deadlines on
//! its virtual clock).

mod common;

use std::time::Duration;

use chat::testing::Pipe;
use chat::{Config, EventKind};
use common::*;
use serde_json::json;

fn approval_config() -> Config {
    Config {
        approve_registrations: true,
        ..loopback_config()
    }
}

#[test]
fn approval_lets_in_only_who_the_host_approves() {
    let server = Pipe::start(approval_config());
    let mut alice = server.connect();
    alice.send(&json!({"type": "hello", "nick": "alice", "token": "secret-1"}));
    let ev = server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }));
    assert_eq!(ev.nick.as_deref(), Some("alice"));
    let EventKind::ApprovalRequested { token } = &ev.kind else {
        unreachable!()
    };
    assert_eq!(token.as_deref(), Some("secret-1"));

    // While waiting: registered to nobody, nick reserved, frames refused.
    alice.send(&json!({"type": "who"}));
    assert_eq!(alice.recv()["code"], "not_registered");
    let mut other = server.connect();
    other.send(&json!({"type": "hello", "nick": "ALICE"}));
    assert_eq!(other.recv()["code"], "nick_taken");

    let id = ev.client;
    server.with(move |s| s.approve(id)).unwrap();
    assert_eq!(
        alice.recv(),
        json!({"type":"welcome","nick":"alice","users":["alice"]})
    );
    server.event_until(|e| matches!(e.kind, EventKind::Registered) && e.client == id);
    assert!(matches!(
        server.with(move |s| s.approve(id)),
        Err(chat::Error::NotAwaitingApproval(_))
    ));
    assert!(matches!(
        server.with(|s| s.approve(4242)),
        Err(chat::Error::UnknownClient(4242))
    ));
    assert!(matches!(
        server.with(|s| s.reject(4242, None)),
        Err(chat::Error::UnknownClient(4242))
    ));

    // Rejected: told why, free to try again.
    let mut mallory = server.connect();
    mallory.send(&json!({"type": "hello", "nick": "mallory", "token": "forged"}));
    let ev = server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }));
    let mid = ev.client;
    server
        .with(move |s| s.reject(mid, Some("unknown token")))
        .unwrap();
    assert_eq!(
        mallory.recv(),
        json!({"type":"error","code":"rejected","message":"unknown token"})
    );
    mallory.send(&json!({"type": "hello", "nick": "mallory"}));
    server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { token: None }));
}

#[test]
fn an_unanswered_hello_is_rejected_at_the_deadline() {
    let cfg = Config {
        approval_timeout: Duration::from_millis(200),
        ..approval_config()
    };
    let server = Pipe::start(cfg);
    let mut c = server.connect();
    c.send(&json!({"type": "hello", "nick": "waiter"}));
    server.advance(Duration::from_millis(199));
    assert!(!c.has_pending(), "rejected before the deadline");
    server.advance(Duration::from_millis(1));
    let v = c.recv();
    assert_eq!(v["code"], "rejected");
    assert_eq!(v["message"], "the host did not answer in time");
    // The nick is free again.
    let mut d = server.connect();
    d.send(&json!({"type": "hello", "nick": "waiter"}));
    server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }) && e.client != 1);
}

#[test]
fn a_client_leaving_while_waiting_frees_its_nick() {
    let server = Pipe::start(approval_config());
    let mut c = server.connect();
    c.send(&json!({"type": "hello", "nick": "ghost"}));
    let ev = server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }));
    drop(c);
    server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }) && e.client == ev.client);
    let mut d = server.connect();
    d.send(&json!({"type": "hello", "nick": "ghost"}));
    let again = server.event_until(|e| matches!(e.kind, EventKind::ApprovalRequested { .. }));
    assert_ne!(again.client, ev.client);
}

#[test]
fn intercepted_messages_wait_for_release_or_drop() {
    let cfg = Config {
        intercept_messages: true,
        ..loopback_config()
    };
    let server = Pipe::start(cfg);
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv(); // bob online

    alice.send(&json!({"type": "all", "text": "nice words", "id": 1}));
    let held = server.event_until(|e| matches!(e.kind, EventKind::Intercepted(_)));
    let EventKind::Intercepted(h) = &held.kind else {
        unreachable!()
    };
    let as_sent: serde_json::Value = serde_json::from_str(h.json()).unwrap();
    assert_eq!(as_sent, json!({"type":"all","text":"nice words","id":1}));
    let ticket = h.ticket;
    // Nothing routed yet: who still answers at once, the message does not.
    bob.send(&json!({"type": "who"}));
    assert_eq!(bob.recv()["type"], "users");
    server.with(move |s| s.release(ticket)).unwrap();
    assert_eq!(
        bob.recv(),
        json!({"type":"all","from":"alice","text":"nice words"})
    );
    assert_eq!(alice.recv(), json!({"type":"ack","id":1,"queued":1}));
    assert!(matches!(
        server.with(move |s| s.release(ticket)),
        Err(chat::Error::UnknownTicket(_))
    ));

    alice.send(&json!({"type": "msg", "to": "bob", "text": "bad words"}));
    let held = server.event_until(|e| matches!(e.kind, EventKind::Intercepted(_)));
    let EventKind::Intercepted(h) = held.kind else {
        unreachable!()
    };
    server
        .with(move |s| s.drop_held(h.ticket, "moderated", Some("mind your language")))
        .unwrap();
    assert_eq!(
        alice.recv(),
        json!({"type":"error","code":"moderated","message":"mind your language"})
    );
    // bob got nothing: his next frame is the answer to his own ping.
    bob.send(&json!({"type": "ping", "id": 2}));
    assert_eq!(bob.recv(), json!({"type":"pong","id":2}));

    // A held message whose sender left is discarded on release.
    alice.send(&json!({"type": "all", "text": "last words"}));
    let held = server.event_until(|e| matches!(e.kind, EventKind::Intercepted(_)));
    let EventKind::Intercepted(h) = held.kind else {
        unreachable!()
    };
    alice.send(&json!({"type": "quit"}));
    server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert!(matches!(
        server.with(move |s| s.release(h.ticket)),
        Err(chat::Error::UnknownTicket(_))
    ));
}

#[test]
fn user_data_travels_in_every_later_event() {
    let server = Pipe::default();
    let mut alice = server.connect();
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Connected));
    assert_eq!(ev.user_data, 0);
    let id = ev.client;
    server
        .with(move |s| s.set_user_data(id, 0xfeed_beef_0000_0001))
        .unwrap();
    assert_eq!(server.with(move |s| s.user_data(id)), Some(0xfeed_beef_0000_0001));
    alice.send(&json!({"type": "hello", "nick": "alice"}));
    alice.recv();
    alice.send(&json!({"type": "all", "text": "x"}));
    alice.send(&json!({"type": "quit"}));
    for _ in 0..3 {
        let ev = server.next_event();
        assert_eq!(ev.user_data, 0xfeed_beef_0000_0001, "{ev:?}");
    }
    assert!(matches!(
        server.with(|s| s.set_user_data(999, 1)),
        Err(chat::Error::UnknownClient(999))
    ));
}
