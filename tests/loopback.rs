//! The protocol over real sockets on 127.0.0.1: a smaller set of the
//! conformance checks that run in memory (`session.rs`, `protocol.rs`,
//! `framing.rs`, `rooms.rs`, through the core's pipe), to show the select
//! loop and the TCP transport give the same answers. Tests about sockets
//! themselves (resets, half-closes, slow readers, descriptors) are in
//! `leaving.rs`, `bad_input.rs`, `backpressure.rs`, `faults.rs` and the
//! others.

mod common;
mod support_a;

use chat::EventKind;
use common::*;
use serde_json::{json, Value};
use support_a::*;

#[test]
fn hello_gets_welcome_with_sorted_users_and_others_see_online() {
    let server = ServerThread::default();
    let mut carol = TestClient::hello(server.addr, "carol");
    let mut alice = TestClient::hello(server.addr, "alice");
    assert_eq!(carol.recv(), online("alice"));
    let mut bob = TestClient::connect(server.addr);
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
#[test]
fn nick_taken_is_case_insensitive_and_keeps_the_connection_open() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut c = TestClient::connect(server.addr);
    for nick in ["alice", "ALICE", "Alice", "aLiCe"] {
        c.send(&json!({"type": "hello", "nick": nick}));
        expect_error(&mut c, "nick_taken");
    }
    c.send(&json!({"type": "hello", "nick": "alice2"}));
    assert_eq!(c.recv()["type"], "welcome");
    assert_eq!(alice.recv(), online("alice2"));
}
/// alice and bob, registered, with alice's presence notice about bob read.
fn alice_and_bob(server: &ServerThread) -> (TestClient, TestClient) {
    let mut alice = TestClient::hello(server.addr, "alice");
    let bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    (alice, bob)
}
#[test]
fn msg_reaches_only_its_recipient() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = TestClient::hello(server.addr, "carol");
    alice.recv();
    bob.recv();
    alice.send(&json!({"type": "msg", "to": "bob", "text": "hi"}));
    assert_eq!(
        bob.recv(),
        json!({"type": "msg", "from": "alice", "to": "bob", "text": "hi"})
    );
    assert_nothing_pending(&mut carol);
    assert_nothing_pending(&mut alice);
}
#[test]
fn all_reaches_every_other_registered_client_without_echo() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = TestClient::hello(server.addr, "carol");
    alice.recv();
    bob.recv();
    let mut lurker = TestClient::connect(server.addr);
    alice.send(&json!({"type": "all", "text": "hello all"}));
    let expected = json!({"type": "all", "from": "alice", "text": "hello all"});
    assert_eq!(bob.recv(), expected);
    assert_eq!(carol.recv(), expected);
    assert_nothing_pending(&mut alice);
    // Unregistered connections are not part of "every registered client".
    lurker.send(&json!({"type": "who"}));
    expect_error(&mut lurker, "not_registered");
}
#[test]
fn quit_flushes_what_is_queued_then_closes_and_others_see_quit() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    // About 600 KB of answers queued ahead of the quit, more than a socket
    // buffer is likely to take at once, all sent without reading.
    let big = "q".repeat(60_000);
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.extend(json_frame(&json!({"type": "ping", "id": [i, big]})));
    }
    batch.extend(json_frame(&json!({"type": "who"})));
    batch.extend(json_frame(&json!({"type": "quit"})));
    bob.send_raw(&batch);
    let got = bob.expect_closed();
    assert_eq!(got.len(), 11, "every queued answer, then EOF");
    for (i, v) in got[..10].iter().enumerate() {
        assert_eq!(v, &json!({"type": "pong", "id": [i, big]}));
    }
    assert_eq!(got[10], json!({"type": "users", "users": ["alice", "bob"]}));
    assert_eq!(alice.recv(), offline("bob", "quit"));
}
#[test]
fn order_from_one_sender_is_preserved_to_each_recipient() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = TestClient::hello(server.addr, "carol");
    alice.recv();
    bob.recv();
    const N: usize = 1000;
    // Alternate unicast and broadcast, in small writes and one big one.
    for i in 0..N / 2 {
        alice.send(&json!({"type": "msg", "to": "bob", "text": format!("{i}")}));
    }
    let mut batch = Vec::new();
    for i in N / 2..N {
        batch.extend(json_frame(&json!({"type": "all", "text": format!("{i}")})));
    }
    alice.send_raw(&batch);
    for i in 0..N {
        let v = bob.recv();
        assert_eq!(v["from"], "alice");
        assert_eq!(v["text"], format!("{i}"), "bob got {v} at position {i}");
    }
    for i in N / 2..N {
        assert_eq!(
            carol.recv(),
            json!({"type": "all", "from": "alice", "text": format!("{i}")})
        );
    }
}
#[test]
fn text_as_large_as_the_frame_allows_is_delivered() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let overhead = json!({"type": "msg", "to": "bob", "text": ""}).to_string().len();
    let text = "é".repeat((65536 - overhead) / 2);
    alice.send(&json!({"type": "msg", "to": "bob", "text": text}));
    assert_eq!(bob.recv()["text"], Value::String(text));
}
#[test]
fn an_unknown_type_is_answered_unknown_type_and_the_connection_stays_open() {
    assert_answered_and_open(
        &[
            br#"{"type":"dance"}"#,
            br#"{"type":""}"#,
            br#"{"type":"MSG","to":"bob","text":"hi"}"#,
            br#"{"type":"welcome","nick":"x","users":[]}"#,
            br#"{"type":"error","code":"x"}"#,
        ],
        "unknown_type",
    );
}
/// A `ping` whose frame has the same length for every `n`.
fn numbered_ping(n: usize) -> Vec<u8> {
    json_frame(&json!({"type": "ping", "id": format!("{n:06}")}))
}
#[test]
fn a_frame_split_at_every_byte_boundary_is_reassembled() {
    let server = ServerThread::default();
    let mut c = TestClient::hello(server.addr, "alice");
    let mut sent = server.with(|s| s.stats().bytes_in);
    let len = numbered_ping(0).len();
    for cut in 1..len {
        let bytes = numbered_ping(cut);
        c.send_raw(&bytes[..cut]);
        // The first part must really be in the server before the rest is
        // sent, or the two writes could arrive as one read.
        wait_bytes_in(&server, sent + cut as u64);
        c.send_raw(&bytes[cut..]);
        assert_eq!(c.recv(), json!({"type": "pong", "id": format!("{cut:06}")}));
        sent += len as u64;
    }
}
#[test]
fn many_frames_in_one_write_are_all_handled_in_order() {
    let server = ServerThread::default();
    let mut c = TestClient::connect(server.addr);
    let mut batch = json_frame(&json!({"type": "hello", "nick": "alice"}));
    for i in 0..500 {
        batch.extend(json_frame(&json!({"type": "ping", "id": i})));
    }
    batch.extend(json_frame(&json!({"type": "who"})));
    c.send_raw(&batch);
    assert_eq!(
        c.recv(),
        json!({"type": "welcome", "nick": "alice", "users": ["alice"]})
    );
    for i in 0..500 {
        assert_eq!(c.recv(), json!({"type": "pong", "id": i}));
    }
    assert_eq!(c.recv(), json!({"type": "users", "users": ["alice"]}));
}
#[test]
fn length_u32_max_gets_frame_too_large_then_close() {
    let server = ServerThread::default();
    let mut c = TestClient::hello(server.addr, "alice");
    c.send_raw(&u32::MAX.to_be_bytes());
    expect_error_then_close(&mut c, "frame_too_large");
}
/// The answer comes as soon as the 4 length bytes are in: the server does
/// not wait for (or reserve room for) the 4 GiB it announced, and keeps
/// serving everyone else.
#[test]
fn a_huge_length_is_refused_before_any_payload_and_the_server_survives() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    for _ in 0..20 {
        let mut evil = TestClient::connect(server.addr);
        evil.send_raw(&u32::MAX.to_be_bytes());
        evil.send_raw(b"{\"type\":");
        expect_error_then_close(&mut evil, "frame_too_large");
    }
    assert_chat_works(&mut alice, "alice", &mut bob, "bob");
    assert_chat_works(&mut bob, "bob", &mut alice, "alice");
}
fn joined(c: &mut TestClient, room: &str) -> serde_json::Value {
    c.send(&json!({"type": "join", "room": room}));
    c.recv_until(|v| v["type"] == "joined")
}
#[test]
fn join_part_and_talk_in_a_room() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    let mut carol = TestClient::hello(server.addr, "carol");
    alice.recv(); // bob online
    alice.recv(); // carol online
    bob.recv(); // carol online

    assert_eq!(
        joined(&mut alice, "#Rust"),
        json!({"type":"joined","room":"#Rust","members":["alice"]})
    );
    // Names compare case-insensitively; the first spelling stays.
    assert_eq!(
        joined(&mut bob, "#rust"),
        json!({"type":"joined","room":"#Rust","members":["alice","bob"]})
    );
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#Rust","state":"joined"})
    );

    bob.send(&json!({"type": "room", "room": "#RUST", "text": "hi room", "id": 5}));
    assert_eq!(
        alice.recv(),
        json!({"type":"room","room":"#Rust","from":"bob","text":"hi room"})
    );
    assert_eq!(bob.recv(), json!({"type":"ack","id":5,"queued":1}));

    // carol is not a member: she gets not_in_room and hears nothing.
    carol.send(&json!({"type": "room", "room": "#rust", "text": "let me in"}));
    assert_eq!(
        carol.recv(),
        json!({"type":"error","code":"not_in_room","room":"#rust"})
    );
    carol.send(&json!({"type": "part", "room": "#rust"}));
    assert_eq!(
        carol.recv(),
        json!({"type":"error","code":"not_in_room","room":"#rust"})
    );

    bob.send(&json!({"type": "part", "room": "#rust"}));
    assert_eq!(bob.recv(), json!({"type":"parted","room":"#Rust"}));
    assert_eq!(
        alice.recv(),
        json!({"type":"presence","nick":"bob","room":"#Rust","state":"parted"})
    );

    // Joining twice only repeats the member list, with no presence.
    assert_eq!(
        joined(&mut alice, "#rust"),
        json!({"type":"joined","room":"#Rust","members":["alice"]})
    );

    // The host sees joins and parts, in order.
    let kinds: Vec<String> = std::iter::from_fn(|| Some(server.next_event()))
        .filter_map(|e| match e.kind {
            EventKind::Joined { room } => Some(format!("{} joined {room}", e.nick.unwrap())),
            EventKind::Parted { room } => Some(format!("{} parted {room}", e.nick.unwrap())),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(
        kinds,
        ["alice joined #Rust", "bob joined #Rust", "bob parted #Rust"]
    );
}
#[test]
fn room_messages_share_one_frame_and_respect_the_queue_cap() {
    // 50 members, one message: every member but the sender gets it once.
    let server = ServerThread::default();
    let mut members: Vec<TestClient> = (0..50)
        .map(|i| TestClient::hello(server.addr, &format!("m{i}")))
        .collect();
    for m in members.iter_mut() {
        joined(m, "#big");
    }
    members[0].send(&json!({"type": "room", "room": "#big", "text": "all of you", "id": "x"}));
    assert_eq!(members[0].recv_until(|v| v["type"] == "ack")["queued"], 49);
    for m in members.iter_mut().skip(1) {
        assert_eq!(m.recv_until(|v| v["type"] == "room")["text"], "all of you");
    }
}

/// Sends each payload and expects `code`, then proves the connection is
/// still open and registered.
fn assert_answered_and_open(payloads: &[&[u8]], code: &str) {
    assert_answered_and_open_with(ServerThread::default(), payloads, code);
}

fn assert_answered_and_open_with(server: ServerThread, payloads: &[&[u8]], code: &str) {
    let (mut alice, mut bob) = alice_and_bob(&server);
    for p in payloads {
        alice.send_payload(p);
        let v = alice.recv();
        assert_error(&v, code);
        assert_chat_works(&mut alice, "alice", &mut bob, "bob");
    }
    assert_nothing_pending(&mut bob);
}
