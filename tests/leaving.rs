//! PROTOCOL.md "Errors and leaving" and "Server-initiated frames and
//! limits": every way a client leaves, what it is told, and what the others
//! see; timeouts, shutdown and `server_full`.

mod common;
mod support_a;

use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use chat::{EventKind, Reason};
use common::*;
use serde_json::{json, Value};
use support_a::*;

/// alice and bob, registered, with alice's presence notice about bob read.
fn alice_and_bob(server: &ServerThread) -> (TestClient, TestClient) {
    let mut alice = TestClient::hello(server.addr, "alice");
    let bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    (alice, bob)
}

/// Waits for `nick`'s `Disconnected` event and returns its reason.
fn disconnect_reason(server: &ServerThread, nick: &str) -> Reason {
    let nick = nick.to_string();
    let ev = server.event_until(move |e| {
        matches!(e.kind, EventKind::Disconnected { .. }) && e.nick.as_deref() == Some(&nick)
    });
    match ev.kind {
        EventKind::Disconnected { reason } => reason,
        _ => unreachable!(),
    }
}

// ----- the client leaves -----

#[test]
fn closing_the_socket_is_presence_offline_disconnect() {
    let server = ServerThread::default();
    let (mut alice, bob) = alice_and_bob(&server);
    drop(bob);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    assert_eq!(disconnect_reason(&server, "bob"), Reason::Disconnect);
    alice.send(&json!({"type": "who"}));
    assert_eq!(alice.recv(), json!({"type": "users", "users": ["alice"]}));
}

#[test]
fn a_reset_is_presence_offline_disconnect() {
    let server = ServerThread::default();
    let (mut alice, bob) = alice_and_bob(&server);
    reset(bob.stream);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    assert_eq!(disconnect_reason(&server, "bob"), Reason::Disconnect);
    assert_nothing_pending(&mut alice);
}

#[test]
fn a_reset_with_output_queued_for_it_is_presence_offline_disconnect() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    // Answers are queued for bob that he will never read.
    let mut batch = Vec::new();
    for i in 0..20 {
        batch.extend(json_frame(
            &json!({"type": "ping", "id": [i, "z".repeat(30_000)]}),
        ));
    }
    bob.send_raw(&batch);
    reset(bob.stream);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    assert_nothing_pending(&mut alice);
}

#[test]
fn disconnecting_mid_frame_is_presence_offline_disconnect() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let whole = json_frame(&json!({"type": "all", "text": "never finished"}));
    let before = server.with(|s| s.stats().bytes_in);
    bob.send_raw(&whole[..whole.len() / 2]);
    wait_bytes_in(&server, before + (whole.len() / 2) as u64);
    drop(bob);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    // The half frame was never delivered.
    assert_nothing_pending(&mut alice);
}

#[test]
fn disconnecting_mid_length_prefix_is_presence_offline_disconnect() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    bob.send_raw(&[0, 0]);
    drop(bob);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
}

#[test]
fn a_half_closed_client_still_receives_what_was_queued_before() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    // About 600 KB of answers, asked for before the half-close, so more
    // than the socket buffers hold when the server sees the FIN.
    let big = "h".repeat(60_000);
    let mut batch = Vec::new();
    for i in 0..10 {
        batch.extend(json_frame(&json!({"type": "ping", "id": [i, big]})));
    }
    batch.extend(json_frame(&json!({"type": "who"})));
    bob.send_raw(&batch);
    bob.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    let got = bob.expect_closed();
    assert_eq!(got.len(), 11, "every answer asked for, then EOF");
    for (i, v) in got[..10].iter().enumerate() {
        assert_eq!(v, &json!({"type": "pong", "id": [i, big]}));
    }
    assert_eq!(got[10], json!({"type": "users", "users": ["alice", "bob"]}));
}

#[test]
fn a_half_closed_client_receives_messages_queued_for_it_before_the_fin() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    for i in 0..100 {
        alice.send(&json!({"type": "msg", "to": "bob", "text": format!("{i}")}));
    }
    // An ack proves all 100 sit in bob's queue before his FIN is read.
    alice.send(&json!({"type": "msg", "to": "bob", "text": "last", "id": 1}));
    assert_eq!(alice.recv(), json!({"type": "ack", "id": 1, "queued": 1}));
    bob.stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    let got = bob.expect_closed();
    let texts: Vec<&Value> = got.iter().map(|v| &v["text"]).collect();
    let mut expected: Vec<Value> = (0..100).map(|i| json!(format!("{i}"))).collect();
    expected.push(json!("last"));
    assert_eq!(texts, expected.iter().collect::<Vec<_>>());
}

// ----- the host kicks -----

#[test]
fn a_kicked_client_gets_kicked_with_the_hosts_message_and_others_see_kicked() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let mut bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    registered_id(&server, "alice");
    let bob_id = registered_id(&server, "bob");
    server
        .with(move |s| s.kick(bob_id, Some("flooding #general")))
        .unwrap();
    let frames = bob.expect_closed();
    assert_eq!(
        frames,
        vec![json!({"type": "error", "code": "kicked", "message": "flooding #general"})]
    );
    assert_eq!(alice.recv(), offline("bob", "kicked"));
    assert_eq!(disconnect_reason(&server, "bob"), Reason::Kicked);
    // Kicking a client that is gone is an error for the host.
    let again = server.with(move |s| s.kick(bob_id, None));
    assert!(matches!(again, Err(chat::Error::UnknownClient(id)) if id == bob_id));
}

#[test]
fn a_kick_without_a_message_still_says_kicked() {
    let server = ServerThread::default();
    let mut alice = TestClient::hello(server.addr, "alice");
    let id = registered_id(&server, "alice");
    server.with(move |s| s.kick(id, None)).unwrap();
    expect_error_then_close(&mut alice, "kicked");
}

#[test]
fn a_kicked_client_first_gets_what_was_queued_for_it() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    registered_id(&server, "alice");
    let bob_id = registered_id(&server, "bob");
    alice.send(&json!({"type": "msg", "to": "bob", "text": "before", "id": 1}));
    assert_eq!(alice.recv()["type"], "ack");
    server.with(move |s| s.kick(bob_id, Some("bye"))).unwrap();
    let frames = bob.expect_closed();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(
        frames[0],
        json!({"type": "msg", "from": "alice", "to": "bob", "text": "before"})
    );
    assert_error(&frames[1], "kicked");
}

// ----- timeouts -----

/// Reads frames, answering each server `ping` with its `pong`, until one
/// matches `pred`; returns it.
fn recv_answering_pings(c: &mut TestClient, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = c.recv();
        if pred(&v) {
            return v;
        }
        if v["type"] == "ping" {
            c.send(&json!({"type": "pong", "id": v["id"]}));
        }
    }
}

#[test]
fn idle_clients_are_pinged_those_that_answer_stay_and_silent_ones_time_out() {
    // Long enough that a loaded machine still answers a ping in time (the
    // ping comes after half of it, the drop after all of it).
    let idle = Duration::from_millis(800);
    let server = ServerThread::start(config_with(|c| c.idle_timeout = Some(idle)));
    let (mut alice, mut bob) = alice_and_bob(&server);
    // Bob says nothing: he is pinged, then dropped.
    let bob_reader = std::thread::spawn(move || bob.expect_closed());
    let bye = recv_answering_pings(&mut alice, |v| v["type"] == "presence");
    assert_eq!(bye, offline("bob", "timeout"));
    let bob_frames = bob_reader.join().unwrap();
    assert!(bob_frames.len() >= 2, "{bob_frames:?}");
    let (last, before) = bob_frames.split_last().unwrap();
    assert_error(last, "timeout");
    assert!(
        before
            .iter()
            .any(|v| v["type"] == "ping" && v.get("id").is_some()),
        "bob was never pinged: {bob_frames:?}"
    );
    // Alice keeps answering and stays, through several more idle periods.
    for _ in 0..3 {
        let ping = recv_answering_pings(&mut alice, |v| v["type"] == "ping");
        alice.send(&json!({"type": "pong", "id": ping["id"]}));
    }
    alice.send(&json!({"type": "who"}));
    let users = recv_answering_pings(&mut alice, |v| v["type"] == "users");
    assert_eq!(users, json!({"type": "users", "users": ["alice"]}));
    assert_eq!(disconnect_reason(&server, "bob"), Reason::Timeout);
}

#[test]
fn a_connection_without_hello_is_closed_with_timeout() {
    let server = ServerThread::start(config_with(|c| {
        c.handshake_timeout = Some(Duration::from_millis(300));
    }));
    let mut silent = TestClient::connect(server.addr);
    expect_error_then_close(&mut silent, "timeout");
    let ev = server.event_until(|e| matches!(e.kind, EventKind::Disconnected { .. }));
    assert!(matches!(
        ev.kind,
        EventKind::Disconnected {
            reason: Reason::Timeout
        }
    ));
    assert!(ev.nick.is_none());
}

#[test]
fn frames_other_than_hello_do_not_extend_the_handshake() {
    let server = ServerThread::start(config_with(|c| {
        c.handshake_timeout = Some(Duration::from_millis(300));
    }));
    let mut c = TestClient::connect(server.addr);
    let who = json_frame(&json!({"type": "who"}));
    c.send_raw(&who);
    // Keep talking, one frame per answer: the deadline still closes it.
    let mut last = None;
    while let Some(v) = c.try_recv() {
        if v["code"] == "not_registered" {
            // The server may close between the answer and this write.
            let _ = std::io::Write::write_all(&mut c.stream, &who);
        }
        last = Some(v);
    }
    assert_error(&last.expect("at least one answer"), "timeout");
}

#[test]
fn a_handshake_timeout_does_not_touch_registered_clients() {
    let server = ServerThread::start(config_with(|c| {
        c.handshake_timeout = Some(Duration::from_millis(300));
    }));
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut silent = TestClient::connect(server.addr);
    expect_error_then_close(&mut silent, "timeout");
    // Registered clients were not timed out, and heard nothing about it.
    assert_nothing_pending(&mut alice);
    assert_chat_works(&mut alice, "alice", &mut bob, "bob");
}

// ----- protocol errors -----

#[test]
fn a_bad_length_is_presence_offline_protocol_error() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut carol = TestClient::hello(server.addr, "carol");
    alice.recv();
    bob.recv();
    bob.send_raw(&u32::MAX.to_be_bytes());
    expect_error_then_close(&mut bob, "frame_too_large");
    assert_eq!(alice.recv(), offline("bob", "protocol_error"));
    assert_eq!(carol.recv(), offline("bob", "protocol_error"));
    assert_eq!(disconnect_reason(&server, "bob"), Reason::ProtocolError);
    carol.send_raw(&[0, 0, 0, 0]);
    expect_error_then_close(&mut carol, "empty_frame");
    assert_eq!(alice.recv(), offline("carol", "protocol_error"));
}

#[test]
fn a_frame_after_a_bad_length_is_never_handled() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut batch = vec![0, 0, 0, 0];
    batch.extend(json_frame(&json!({"type": "all", "text": "smuggled"})));
    bob.send_raw(&batch);
    expect_error_then_close(&mut bob, "empty_frame");
    assert_eq!(alice.recv(), offline("bob", "protocol_error"));
    assert_nothing_pending(&mut alice);
}

// ----- shutdown -----

#[test]
fn shutdown_tells_every_client_then_closes() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    let mut lurker = TestClient::connect(server.addr);
    // Make sure the lurker is accepted before the listener goes away.
    wait_until("the lurker to be accepted", || {
        server.with(|s| s.stats().accepted) == 3
    });
    server.with(|s| s.shutdown(Duration::from_secs(2)));
    for c in [&mut alice, &mut bob, &mut lurker] {
        let frames = c.expect_closed();
        let (last, before) = frames.split_last().expect("a shutdown error before EOF");
        assert_error(last, "shutdown");
        // Whether the others' departures are announced during a shutdown is
        // the server's choice (docs/protocol.md: they are not); if they
        // are, the reason must be `shutdown`.
        for v in before {
            assert_eq!(v["type"], "presence", "{frames:?}");
            assert_eq!(v["reason"], "shutdown", "{frames:?}");
        }
    }
    assert!(server.with(|s| s.is_shutting_down()));
    // Nobody new gets in.
    match TcpStream::connect(server.addr) {
        Err(_) => {}
        Ok(stream) => {
            stream.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut c = TestClient { stream };
            let frames = c.expect_closed();
            assert!(frames.iter().all(|v| v["type"] == "error"), "{frames:?}");
        }
    }
}

#[test]
fn shutdown_flushes_what_was_queued_before_the_shutdown_error() {
    let server = ServerThread::default();
    let (mut alice, mut bob) = alice_and_bob(&server);
    for i in 0..50 {
        alice.send(&json!({"type": "msg", "to": "bob", "text": format!("{i}")}));
    }
    alice.send(&json!({"type": "msg", "to": "bob", "text": "end", "id": 0}));
    assert_eq!(alice.recv()["type"], "ack");
    server.with(|s| s.shutdown(Duration::from_secs(2)));
    let frames = bob.expect_closed();
    let (last, msgs) = frames.split_last().unwrap();
    assert_error(last, "shutdown");
    let texts: Vec<String> = msgs
        .iter()
        .map(|v| v["text"].as_str().unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = (0..50).map(|i| i.to_string()).collect();
    expected.push("end".into());
    assert_eq!(texts, expected);
}

// ----- server_full -----

#[test]
fn the_connection_over_max_clients_gets_server_full_and_a_later_one_is_admitted() {
    let server = ServerThread::start(config_with(|c| c.max_clients = 2));
    let mut alice = TestClient::hello(server.addr, "alice");
    let bob = TestClient::hello(server.addr, "bob");
    assert_eq!(alice.recv(), online("bob"));
    let mut third = TestClient::connect(server.addr);
    expect_error_then_close(&mut third, "server_full");
    // A refused connection is not a client: no event, no presence.
    assert_nothing_pending(&mut alice);
    assert_eq!(server.with(|s| s.stats().refused), 1);
    drop(bob);
    assert_eq!(alice.recv(), offline("bob", "disconnect"));
    // The slot is free once the server has let go of bob's socket.
    wait_until("bob's socket to be released", || {
        server.with(|s| s.stats().clients) == 1
    });
    let mut carol = TestClient::hello(server.addr, "carol");
    assert_eq!(alice.recv(), online("carol"));
    assert_chat_works(&mut carol, "carol", &mut alice, "alice");
}

#[test]
fn unregistered_connections_count_towards_max_clients() {
    let server = ServerThread::start(config_with(|c| c.max_clients = 2));
    let _a = TestClient::connect(server.addr);
    let _b = TestClient::connect(server.addr);
    let mut third = TestClient::connect(server.addr);
    expect_error_then_close(&mut third, "server_full");
}
