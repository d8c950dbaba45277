//! The host's side of the server through the core's in-memory pipe:
//! `send`, `broadcast`, their errors, and the events a client's life
//! produces, in order.

mod common;
mod support_a;

use std::collections::HashSet;

use chat::testing::Pipe;
use chat::{ClientId, Error, Event, EventKind, Reason};
use serde_json::{json, Value};
use support_a::*;

#[test]
fn send_reaches_one_client_exactly_as_given() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv();
    let alice_id = registered_id(&server, "alice");
    let payload: &[u8] = "{ \"type\" : \"note\",\n \"z\":1, \"a\":[1, 2.50] ,\"u\":\"é\\n\"}".as_bytes();
    server.with(move |s| s.send(alice_id, payload)).unwrap();
    assert_eq!(recv_raw(&mut alice).unwrap(), payload);
    assert_nothing_pending(&mut bob);
}

#[test]
fn send_reaches_a_connection_that_has_not_registered() {
    let server = Pipe::default();
    let mut c = server.connect();
    let id = server
        .event_until(|e| matches!(e.kind, EventKind::Connected))
        .client;
    server
        .with(move |s| s.send(id, br#"{"type":"motd","text":"say hello"}"#))
        .unwrap();
    assert_eq!(c.recv(), json!({"type": "motd", "text": "say hello"}));
}

#[test]
fn broadcast_reaches_every_registered_client_exactly_as_given() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv();
    let mut lurker = server.connect();
    wait_until("the lurker to be accepted", || {
        server.with(|s| s.stats().accepted) == 3
    });
    let payload: &[u8] = b"{\"type\":\"announce\",  \"text\":\"maintenance at 5\", \"n\":1.50}";
    assert_eq!(server.with(move |s| s.broadcast(payload)).unwrap(), 2);
    assert_eq!(recv_raw(&mut alice).unwrap(), payload);
    assert_eq!(recv_raw(&mut bob).unwrap(), payload);
    // Only registered clients are "every client".
    lurker.send(&json!({"type": "who"}));
    expect_error(&mut lurker, "not_registered");
}

#[test]
fn broadcast_with_nobody_registered_reaches_nobody() {
    let server = Pipe::default();
    assert_eq!(server.with(|s| s.broadcast(br#"{"type":"x"}"#)).unwrap(), 0);
}

#[test]
fn host_frames_and_client_messages_keep_their_order() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let mut bob = server.hello("bob");
    alice.recv();
    let bob_id = {
        registered_id(&server, "alice");
        registered_id(&server, "bob")
    };
    alice.send(&json!({"type": "msg", "to": "bob", "text": "1", "id": 1}));
    assert_eq!(alice.recv()["type"], "ack");
    server
        .with(move |s| s.send(bob_id, br#"{"type":"host","n":2}"#))
        .unwrap();
    alice.send(&json!({"type": "msg", "to": "bob", "text": "3"}));
    assert_eq!(bob.recv()["text"], "1");
    assert_eq!(bob.recv(), json!({"type": "host", "n": 2}));
    assert_eq!(bob.recv()["text"], "3");
}

#[test]
fn send_and_kick_to_a_gone_or_unknown_client_are_unknown_client() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let bob = server.hello("bob");
    alice.recv();
    registered_id(&server, "alice");
    let bob_id = registered_id(&server, "bob");
    drop(bob);
    server.event_until(move |e| e.client == bob_id && matches!(e.kind, EventKind::Disconnected { .. }));
    for id in [bob_id, 0, 999_999] {
        let sent = server.with(move |s| s.send(id, br#"{"type":"x"}"#));
        assert!(
            matches!(sent, Err(Error::UnknownClient(i)) if i == id),
            "{sent:?}"
        );
        let kicked = server.with(move |s| s.kick(id, None));
        assert!(
            matches!(kicked, Err(Error::UnknownClient(i)) if i == id),
            "{kicked:?}"
        );
    }
}

#[test]
fn payloads_that_are_not_one_json_object_are_refused_and_not_sent() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let id = registered_id(&server, "alice");
    let bad: [&'static [u8]; 10] = [
        b"[1]",
        b"\"x\"",
        b"42",
        b"null",
        b"{\"type\":",
        b"",
        b"   ",
        b"{} {}",
        b"not json",
        b"{\"type\":\"x\",\"t\":\"\xff\"}",
    ];
    for payload in bad {
        let sent = server.with(move |s| s.send(id, payload));
        assert!(
            matches!(sent, Err(Error::NotJsonObject(_))),
            "send {payload:?}: {sent:?}"
        );
        let all = server.with(move |s| s.broadcast(payload));
        assert!(
            matches!(all, Err(Error::NotJsonObject(_))),
            "broadcast {payload:?}: {all:?}"
        );
    }
    assert_nothing_pending(&mut alice);
}

#[test]
fn a_payload_over_max_frame_bytes_is_payload_too_large() {
    let server = Pipe::default();
    let mut alice = server.hello("alice");
    let id = registered_id(&server, "alice");
    let object = |len: usize| {
        let pad = len - br#"{"type":"big","p":""}"#.len();
        format!(r#"{{"type":"big","p":"{}"}}"#, "p".repeat(pad)).into_bytes()
    };
    let too_big = object(65537);
    let sent = server.with(move |s| s.send(id, &too_big));
    assert!(
        matches!(
            sent,
            Err(Error::PayloadTooLarge {
                len: 65537,
                max: 65536
            })
        ),
        "{sent:?}"
    );
    let too_big = object(65537);
    let all = server.with(move |s| s.broadcast(&too_big));
    assert!(
        matches!(
            all,
            Err(Error::PayloadTooLarge {
                len: 65537,
                max: 65536
            })
        ),
        "{all:?}"
    );
    let just_fits = object(65536);
    let expected = just_fits.clone();
    server.with(move |s| s.send(id, &just_fits)).unwrap();
    assert_eq!(recv_raw(&mut alice).unwrap(), expected);
}

/// The events of one client, skipping everyone else's.
fn events_of(events: &[Event], id: ClientId) -> Vec<&Event> {
    events.iter().filter(|e| e.client == id).collect()
}

#[test]
fn a_clients_events_come_in_order_with_nick_payload_and_reason() {
    let server = Pipe::default();
    let mut alice = server.connect();
    let alice_addr = alice.local_addr();
    alice.send(&json!({"type": "hello", "nick": "alice"}));
    alice.recv();
    let mut bob = server.hello("bob");
    let mut carol = server.hello("carol");
    alice.send(&json!({"type": "msg", "to": "bob", "text": "private", "from": "mallory"}));
    alice.send(&json!({"type": "all", "text": "public"}));
    bob.recv_until(|v| v["text"] == "public");
    carol.recv_until(|v| v["text"] == "public");
    alice.send(&json!({"type": "quit"}));
    alice.expect_closed();
    let events = events_until(&server, |e| {
        matches!(e.kind, EventKind::Disconnected { .. }) && e.nick.as_deref() == Some("alice")
    });
    let alice_id = events[0].client;
    let mine = events_of(&events, alice_id);
    assert_eq!(mine.len(), 5, "{mine:#?}");
    assert!(mine.iter().all(|e| e.peer == alice_addr));

    assert!(matches!(mine[0].kind, EventKind::Connected));
    assert_eq!(mine[0].nick, None);
    assert!(matches!(mine[1].kind, EventKind::Registered));
    assert_eq!(mine[1].nick.as_deref(), Some("alice"));

    let EventKind::Message(m) = &mine[2].kind else {
        panic!("{:?}", mine[2])
    };
    let payload: Value = serde_json::from_slice(m.payload()).unwrap();
    assert_eq!(
        payload,
        json!({"type": "msg", "from": "alice", "to": "bob", "text": "private"})
    );
    assert_eq!(serde_json::from_str::<Value>(m.json()).unwrap(), payload);
    assert_eq!(m.recipients, 1);

    let EventKind::Message(m) = &mine[3].kind else {
        panic!("{:?}", mine[3])
    };
    let payload: Value = serde_json::from_slice(m.payload()).unwrap();
    assert_eq!(payload, json!({"type": "all", "from": "alice", "text": "public"}));
    assert_eq!(m.recipients, 2);

    assert!(matches!(
        mine[4].kind,
        EventKind::Disconnected { reason: Reason::Quit }
    ));
    assert_eq!(mine[4].nick.as_deref(), Some("alice"));
}

#[test]
fn nick_and_peer_addr_follow_the_client() {
    let server = Pipe::default();
    let mut alice = server.connect();
    let addr = alice.local_addr();
    let id = server
        .event_until(|e| matches!(e.kind, EventKind::Connected))
        .client;
    assert_eq!(server.with(move |s| s.nick(id).map(str::to_string)), None);
    assert_eq!(server.with(move |s| s.peer_addr(id)), Some(addr));
    alice.send(&json!({"type": "hello", "nick": "Alice"}));
    alice.recv();
    assert_eq!(
        server.with(move |s| s.nick(id).map(str::to_string)).as_deref(),
        Some("Alice")
    );
    drop(alice);
    server.event_until(move |e| e.client == id && matches!(e.kind, EventKind::Disconnected { .. }));
    assert_eq!(server.with(move |s| s.peer_addr(id)), None);
}

#[test]
fn client_ids_are_never_zero_and_never_reused() {
    let server = Pipe::default();
    let mut seen = HashSet::new();
    for round in 0..40 {
        let c = if round % 2 == 0 {
            server.hello("same-nick")
        } else {
            server.connect()
        };
        let id = server
            .event_until(|e| matches!(e.kind, EventKind::Connected))
            .client;
        assert_ne!(id, 0);
        assert!(seen.insert(id), "id {id} was used twice");
        drop(c);
        server.event_until(move |e| e.client == id && matches!(e.kind, EventKind::Disconnected { .. }));
    }
}
